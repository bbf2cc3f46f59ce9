//! What each subcommand does, one module per group, and the one place that opens the card.

mod auth;
mod containers;
mod demo;
mod gp;
mod reader;
mod script;

use crate::cli::{Cli, Cmd};
use anyhow::{Context, Result};
use reader_client::pcsc_reader::Pcsc;
use reader_client::{Traced, Transport};

/// Runs the parsed command line; the `Ok` value is the exit code (0 success, 1 the card or a
/// check said no). An `Err` is a usage or I/O failure: `main` prints it and exits 2.
pub fn run(cli: Cli) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    let trace = cli.trace;
    match cli.cmd {
        Cmd::Readers => reader::readers(&mut out),
        Cmd::Atr { reader, decode } => reader::atr(reader.as_deref(), decode.as_deref(), &mut out),
        Cmd::Send { reader, raw, apdus } => {
            reader::send(reader.as_deref(), raw, &apdus, trace, &mut out)
        }
        Cmd::Script {
            reader,
            follow,
            strict,
            file,
        } => script::script(reader.as_deref(), follow, strict, &file, trace, &mut out),
        Cmd::Conform {
            reader,
            in_process,
            junit,
            paths,
        } => {
            let card = CardSource::new(reader, in_process, StateChanges::Discarded);
            script::conform(&card, junit.as_deref(), &paths, trace, &mut out)
        }
        Cmd::Containers {
            reader,
            in_process,
            json,
            action,
        } => {
            let card = CardSource::new(reader, in_process, StateChanges::Discarded);
            containers::run(&card, action, json, trace, &mut out)
        }
        Cmd::Gp(args) => gp::run(*args, trace, &mut out),
        Cmd::Register { common } => auth::run(common, None, trace, &mut out),
        Cmd::Service { common, call, data } => {
            auth::run(common, Some((call, data)), trace, &mut out)
        }
        Cmd::Demo {
            in_process,
            pcsc,
            bin_dir,
        } => demo::run(in_process, pcsc, bin_dir, &mut out),
    }
}

/// What happens to an `--in-process=STATE` card's changes when the command ends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StateChanges {
    /// The card runs on an in-memory copy; the file is never written (conform, containers, gp).
    Discarded,
    /// The card runs on the file itself (register and service, so `service` continues what
    /// `register` began).
    WrittenBack,
}

/// The card a command talks to, as `--reader` and `--in-process[=STATE]` name it.
pub struct CardSource {
    reader: Option<String>,
    /// `Some("")` is bare `--in-process`: the default profile, in memory.
    in_process: Option<String>,
    changes: StateChanges,
}

impl CardSource {
    pub fn new(
        reader: Option<String>,
        in_process: Option<String>,
        changes: StateChanges,
    ) -> CardSource {
        CardSource {
            reader,
            in_process,
            changes,
        }
    }

    /// A card behind PC/SC only (the commands without `--in-process`).
    pub fn pcsc(reader: Option<&str>) -> CardSource {
        CardSource::new(reader.map(str::to_string), None, StateChanges::Discarded)
    }

    /// Open the card, PC/SC or in-process, wrapped in the tracer when `--trace` asks.
    pub fn open(&self, trace: bool) -> Result<Box<dyn Transport>> {
        let t = match &self.in_process {
            Some(state) => in_process(state, self.changes)?,
            None => {
                let card = Pcsc::establish()?.open(self.reader.as_deref())?;
                eprintln!("Using reader: {}", card.reader());
                Box::new(card) as Box<dyn Transport>
            }
        };
        Ok(if trace {
            Box::new(Traced::new(t, std::io::stderr()))
        } else {
            t
        })
    }
}

/// The card emulator inside this process: the default profile for an empty STATE, else STATE
/// loaded into memory or, for `WrittenBack`, opened in place.
#[cfg(feature = "in-process")]
fn in_process(state: &str, changes: StateChanges) -> Result<Box<dyn Transport>> {
    use card_emulator::store::{self, FileStore};
    use card_emulator::{profile, Card};
    use reader_client::InProcess;
    use std::path::Path;
    let card = if state.is_empty() {
        let st = profile::build(profile::DEFAULT_PROFILE)
            .context("building the default card profile")?;
        Card::in_memory(st)
    } else if changes == StateChanges::WrittenBack {
        let store = FileStore::open(Path::new(state))
            .with_context(|| format!("opening the card state {state}"))?;
        let card = Card::open(Box::new(store))
            .with_context(|| format!("loading the card state {state}"))?;
        eprintln!("Using an in-process card on {state} (changes are written back)");
        card
    } else {
        // The snapshot with its journal applied (`store::decode` reads the snapshot alone).
        let file = FileStore::open(Path::new(state))?;
        let st =
            store::Store::load(&file).with_context(|| format!("reading the card state {state}"))?;
        Card::in_memory(st)
    };
    Ok(Box::new(InProcess::new(card)))
}

#[cfg(not(feature = "in-process"))]
fn in_process(_state: &str, _changes: StateChanges) -> Result<Box<dyn Transport>> {
    anyhow::bail!(
        "this reader-client was built without the `in-process` feature (the card emulator); \
         use a PC/SC reader, or rebuild with the default features"
    )
}

/// One hex byte from the command line (`30`, `0x30`).
fn parse_byte(s: &str, what: &str) -> Result<u8> {
    u8::from_str_radix(s.trim_start_matches("0x"), 16)
        .with_context(|| format!("{what} {s:?} is not one hex byte (e.g. 30)"))
}
