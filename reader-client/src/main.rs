//! `reader-client`: the terminal on the command line (readers, ATR, APDUs, scripts, conformance runs).
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use apdu_specs::hexfmt;
use clap::{Parser, Subcommand};
use reader_client::atr::Atr;
use reader_client::conform::{self, RunOptions};
use reader_client::pcsc_reader::Pcsc;
use reader_client::script::{self, Dialect};
use reader_client::{transmit_following, InProcess, Traced, Transport};
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "reader-client",
    version,
    about = "Talk to smart cards over PC/SC: list readers, decode the ATR, send APDUs, run scripts and conformance suites.",
    after_help = "The card under test is usually our emulator behind pcscd's vpcd reader:\n  \
pcscd --foreground &            (or: systemctl start pcscd)\n  \
card-emulator run --state card.json\n  \
reader-client send 00A4040000\n\n\
Readers are chosen with --reader INDEX or --reader SUBSTRING of the name; without it,\n\
the first reader holding a card is used."
)]
struct Cli {
    /// Print every APDU sent and received, with its status meaning and round-trip time (stderr).
    #[arg(long, global = true)]
    trace: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the PC/SC readers and whether each holds a card.
    #[command(
        long_about = "List the PC/SC readers, their index (for --reader), whether a card is present and its ATR.\n\n\
With vsmartcard-vpcd installed, pcscd shows `Virtual PCD 00 00` (card port 35963) and `Virtual PCD 00 01` (port 35964)."
    )]
    Readers,
    /// Show the card's ATR with its interface bytes, protocols, historical bytes and TCK decoded.
    Atr {
        /// Reader index or name substring (default: the first reader with a card).
        #[arg(short, long)]
        reader: Option<String>,
        /// Decode this ATR (hex) instead of asking a reader.
        #[arg(long, value_name = "HEX")]
        decode: Option<String>,
    },
    /// Send APDUs (hex, spaces optional; one argument per APDU) in one card session.
    #[command(
        long_about = "Send APDUs in one card session and print each response's data and status word with its meaning.\n\n\
Each argument is one APDU in hex; spaces and colons inside an argument are ignored, so\n  \
reader-client send 00A4040000 '00 B0 00 00 00'\n\
sends two APDUs. Unless --raw is given, 61xx is followed by GET RESPONSE (class 00 with the\n\
command's channel) and 6Cxx by resending the command with the corrected Le, and the joined\n\
answer is printed. Exits with status 1 if any final status word is not 9000 (use --raw to see\n\
what the card really answered first)."
    )]
    Send {
        /// Reader index or name substring (default: the first reader with a card).
        #[arg(short, long)]
        reader: Option<String>,
        /// Do not follow 61xx (GET RESPONSE) or 6Cxx (corrected Le): print what the card answered.
        #[arg(long)]
        raw: bool,
        /// The APDUs, in hex.
        #[arg(required = true, value_name = "APDU")]
        apdus: Vec<String>,
    },
    /// Run a script in scriptor's format (hex APDU lines, `reset`, `#` comments, `exit`).
    #[command(
        long_about = "Run a script in scriptor's format (pcsc-tools): one APDU per line in hex, `reset` to\n\
warm-reset the card, `#` comments, `exit` to stop, and `\\` at the end of a line to continue an APDU.\n\
Like scriptor, answers are printed as is: write GET RESPONSE lines yourself, or pass --follow.\n\
Use `-` as FILE to read standard input."
    )]
    Script {
        /// Reader index or name substring (default: the first reader with a card).
        #[arg(short, long)]
        reader: Option<String>,
        /// Follow 61xx with GET RESPONSE and 6Cxx with the corrected Le (scriptor does not).
        #[arg(long)]
        follow: bool,
        /// Accept only what scriptor itself accepts (comments in column 1, 2-digit hex fields...).
        #[arg(long)]
        strict: bool,
        /// The script file (`-` for standard input).
        file: PathBuf,
    },
    /// Run conformance suites (.apdu files with `# expect:` lines) and report per file and case.
    #[command(
        long_about = "Run conformance suites: .apdu files (or directories of them) in the format of\n\
apdu-specs/conformance/FORMAT.md; scriptor runs the same files unchanged, ignoring the expectations.\n\n\
Prints a table per file with one line per case, then a TOTAL line; exits with status 1 on any\n\
mismatch or unreadable file. The card is warm-reset before each file. With --in-process the suites\n\
run against the card emulator inside this process, without pcscd: from a copy of STATE (the file is\n\
never written) or, without STATE, from the default profile."
    )]
    Conform {
        /// Reader index or name substring (default: the first reader with a card).
        #[arg(short, long, conflicts_with = "in_process")]
        reader: Option<String>,
        /// Run against an in-process card instead of PC/SC: `--in-process=STATE` copies that state file, bare `--in-process` uses the default profile.
        #[arg(long, value_name = "STATE", num_args = 0..=1, require_equals = true, default_missing_value = "")]
        in_process: Option<String>,
        /// Also write the results as JUnit XML to this file.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// .apdu files and directories (searched recursively for *.apdu).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Open the PC/SC card, wrapped in the tracer when asked.
fn open_pcsc(reader: Option<&str>, trace: bool) -> Result<Box<dyn Transport>> {
    let pcsc = Pcsc::establish()?;
    let card = pcsc.open(reader)?;
    eprintln!("Using reader: {}", card.reader());
    Ok(wrap(Box::new(card), trace))
}

fn wrap(t: Box<dyn Transport>, trace: bool) -> Box<dyn Transport> {
    if trace {
        Box::new(Traced::new(t, std::io::stderr()))
    } else {
        t
    }
}

fn open_in_process(state: &str, trace: bool) -> Result<Box<dyn Transport>> {
    use card_emulator::{profile, store, Card};
    let st = if state.is_empty() {
        profile::build(profile::DEFAULT_PROFILE).context("building the default card profile")?
    } else {
        let bytes =
            std::fs::read(state).with_context(|| format!("reading the card state {state}"))?;
        store::decode(&bytes, state)?
    };
    Ok(wrap(Box::new(InProcess::new(Card::in_memory(st))), trace))
}

fn run(cli: Cli) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    match cli.cmd {
        Cmd::Readers => {
            let pcsc = Pcsc::establish()?;
            let readers = pcsc.readers()?;
            if readers.is_empty() {
                bail!(reader_client::ClientError::NoReaders);
            }
            for r in readers {
                let card = if r.card_present {
                    format!("card {}", hexfmt::spaced(&r.atr))
                } else {
                    "no card".to_string()
                };
                writeln!(out, "{}: {}  [{card}]", r.index, r.name)?;
            }
            Ok(0)
        }
        Cmd::Atr { reader, decode } => {
            let raw = match decode {
                Some(h) => hexfmt::parse(&h).with_context(|| format!("reading the ATR {h:?}"))?,
                None => {
                    let pcsc = Pcsc::establish()?;
                    let card = pcsc.open(reader.as_deref())?;
                    let (atr, proto) = card.status()?;
                    writeln!(out, "Reader: {}", card.reader())?;
                    if let Some(p) = proto {
                        writeln!(out, "Active protocol: {p:?}")?;
                    }
                    atr
                }
            };
            match Atr::parse(&raw) {
                Ok(a) => {
                    write!(out, "{}", a.describe())?;
                    Ok(if a.tck_valid() == Some(false) { 1 } else { 0 })
                }
                Err(e) => {
                    writeln!(out, "ATR: {}", hexfmt::spaced(&raw))?;
                    writeln!(out, "  not a valid ISO 7816-3 ATR: {e}")?;
                    Ok(1)
                }
            }
        }
        Cmd::Send { reader, raw, apdus } => {
            let parsed: Vec<Vec<u8>> = apdus
                .iter()
                .map(|a| {
                    let b = hexfmt::parse(a).with_context(|| format!("APDU {a:?} is not hex"))?;
                    if b.len() < 4 {
                        bail!(
                            "APDU {a:?} has {} byte(s); an APDU needs at least CLA INS P1 P2",
                            b.len()
                        );
                    }
                    Ok(b)
                })
                .collect::<Result<_>>()?;
            let mut t = open_pcsc(reader.as_deref(), cli.trace)?;
            let mut code = 0;
            for apdu in parsed {
                let r = transmit_following(t.as_mut(), &apdu, !raw)?;
                if !r.data.is_empty() {
                    writeln!(out, "{}", hexfmt::spaced(&r.data))?;
                }
                writeln!(out, "SW {}", r.status)?;
                if r.status != apdu_specs::Status::Success {
                    code = 1;
                }
            }
            Ok(code)
        }
        Cmd::Script {
            reader,
            follow,
            strict,
            file,
        } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
                    .context("reading the script from stdin")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let dialect = if strict {
                Dialect::Scriptor
            } else {
                Dialect::Lenient
            };
            let items =
                script::parse(&text, dialect).with_context(|| format!("in {}", file.display()))?;
            let mut t = open_pcsc(reader.as_deref(), cli.trace)?;
            script::run(t.as_mut(), &items, follow, &mut out)?;
            Ok(0)
        }
        Cmd::Conform {
            reader,
            in_process,
            junit,
            paths,
        } => {
            let files = conform::collect_files(&paths)?;
            if files.is_empty() {
                bail!("no .apdu files under {paths:?}");
            }
            let mut t = match &in_process {
                Some(state) => open_in_process(state, cli.trace)?,
                None => open_pcsc(reader.as_deref(), cli.trace)?,
            };
            let mut reports = Vec::new();
            for f in &files {
                let r = conform::run_file(t.as_mut(), f, &RunOptions::default());
                write!(out, "{}", conform::render_table(&r))?;
                out.flush()?;
                reports.push(r);
            }
            writeln!(out, "{}", conform::render_summary(&reports))?;
            if let Some(j) = junit {
                std::fs::write(&j, conform::junit_xml(&reports))
                    .with_context(|| format!("writing JUnit XML to {}", j.display()))?;
            }
            Ok(if reports.iter().all(|r| r.passed()) {
                0
            } else {
                1
            })
        }
    }
}
