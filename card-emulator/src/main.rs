//! `card-emulator`: create, inspect and run a virtual smart card.

use anyhow::{Context, Result};
use card_emulator::ca::IssuerCa;
use card_emulator::store::{Compaction, FileStore};
use card_emulator::{inspect, profile, trace, vpcd, Card, VirtualCard};
use clap::{Parser, Subcommand};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

mod doctor;

#[derive(Parser)]
#[command(
    name = "card-emulator",
    version,
    about = "A virtual ISO 7816-4 smart card for testing smart-card software.",
    long_about = "A virtual ISO 7816-4 smart card for testing smart-card software.\n\n\
Typical use:\n  card-emulator init --state card.json        # create a card from the default profile\n  \
card-emulator inspect --state card.json     # show its files and PIN counters\n  \
card-emulator run --state card.json --stdio # talk to it: hex APDUs in, hex responses out\n\n\
The card's state lives in a snapshot file and its journal (FILE.journal); every \
state-changing APDU is one atomic, durable journal entry."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum CaCmd {
    /// Create an issuer CA key (P-256) in a new file (mode 0600).
    Create {
        /// The CA file to write.
        #[arg(long)]
        out: PathBuf,
        /// The CA's name (the certificates' issuer identifier).
        #[arg(long, default_value = "vSE issuer CA")]
        name: String,
        /// Replace an existing file (cards it certified will no longer be trusted).
        #[arg(long)]
        force: bool,
    },
    /// Print the CA public key (hex, SEC1 uncompressed): configure it in the server.
    PublicKey {
        /// The CA file.
        #[arg(long)]
        ca: PathBuf,
    },
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a new card state file from a personalization profile.
    #[command(
        long_about = "Create a new card state file from a personalization profile (TOML).\n\n\
Without --profile the built-in default profile is used; `card-emulator profile` prints it \
so you can copy and edit it. The state file is written with mode 0600.\n\n\
Every card gets its own SGP.22 eUICC key and a TEST certificate chain CI -> EUM -> eUICC \
(the eUICC certificate names the card's EID). The CI certificate, public, is written as PEM \
to STATE.ci.pem (or --ci-cert FILE): it is the trust anchor that verifies the card's \
notifications and certificates, e.g. `openssl verify -CAfile card.json.ci.pem -untrusted \
eum.pem euicc.pem`. No GSMA root trusts it."
    )]
    Init {
        /// Where to write the card state (e.g. card.json).
        #[arg(long)]
        state: PathBuf,
        /// Personalization profile (TOML). Default: the built-in profile.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Replace an existing state file (its card is lost).
        #[arg(long)]
        force: bool,
        /// Issuer CA file that certifies the containers' SE keys; created if missing.
        /// Default: STATE.ca.json beside the state file.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Where to write the card's SGP.22 test CI certificate (PEM), the trust anchor of
        /// its eUICC certificate. Default: STATE.ci.pem beside the state file. Replaced only
        /// with --force.
        #[arg(long, value_name = "FILE")]
        ci_cert: Option<PathBuf>,
    },
    /// The card issuer CA: create one, or print its public key for the server.
    #[command(subcommand)]
    Ca(CaCmd),
    /// Print the built-in default profile (TOML), to copy and edit.
    Profile,
    /// Show a card: file tree with sizes, PIN tries left (never PIN values), and how its
    /// state is stored (snapshot, journal entries).
    #[command(
        long_about = "Show a card: file tree with sizes, PIN tries left (never PIN values), and \
how its state is stored: the snapshot file (format version, generation) and the journal \
STATE.journal with one line per entry (what each committed APDU replaced). The state shown \
is the snapshot with the journal applied; inspect only reads, even while the card runs.\n\n\
With --json, print instead the whole merged state as one version-3 state file (JSON). It \
holds the card's keys: keep it private, e.g. `(umask 077; card-emulator inspect --state \
card.json --json > copy.json)`; `card-emulator run --state copy.json` runs a card from it."
    )]
    Inspect {
        /// The card state file.
        #[arg(long)]
        state: PathBuf,
        /// Print the merged state (snapshot + journal) as one state file, JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the card: plug it into pcscd's vpcd reader, or talk over stdio.
    #[command(long_about = "Run the card.\n\n\
By default the card connects to the vpcd reader driver of a local pcscd \
(127.0.0.1:35963, reader \"Virtual PCD 00 00\"); every PC/SC program then sees it. \
It waits and reconnects by itself while pcscd is down or restarts. Stop it with Ctrl-C \
or SIGTERM: every APDU is already durable.\n\n\
  card-emulator run --state card.json              # reader Virtual PCD 00 00\n\
  card-emulator run --state card.json --slot 1     # reader Virtual PCD 00 01\n\
  card-emulator run --state card.json --trace      # log each APDU (PIN data redacted)\n\n\
With --stdio the card reads one line at a time on standard input and answers one line \
on standard output:\n  a hex APDU (spaces allowed)  ->  the hex response (data + SW)\n  \
reset | power-on | atr       ->  the hex ATR\n  power-off                    ->  OK\n  \
# comment or empty line      ->  nothing\nA line that is not valid hex answers `ERROR <reason>`.")]
    Run {
        /// The card state file (create one with `card-emulator init`).
        #[arg(long)]
        state: PathBuf,
        /// Talk over standard input/output (one hex APDU per line) instead of vpcd.
        #[arg(long, conflicts_with_all = ["vpcd", "slot", "listen"])]
        stdio: bool,
        /// vpcd address to connect to (HOST:PORT). Default 127.0.0.1:35963.
        #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["slot", "listen"])]
        vpcd: Option<String>,
        /// vpcd slot N of the local pcscd: port 35963+N (reader "Virtual PCD 00 0N").
        #[arg(long, value_name = "N", conflicts_with = "listen")]
        slot: Option<u16>,
        /// Reversed mode: listen on ADDR (IP:PORT or PORT) for vpcd to connect to the card.
        /// Note: pcscd 1.9.9 aborts in this mode when a slot is empty (vsmartcard #131).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Log every APDU with its status word and timing on stderr (PIN data redacted).
        #[arg(long)]
        trace: bool,
        /// Fold the journal into a fresh snapshot before it passes BYTES (default: 1 MiB or
        /// twice the snapshot). For crash campaigns that need frequent compactions.
        #[arg(long, value_name = "BYTES", hide = true)]
        compact_journal_after: Option<u64>,
    },
    /// Check that PC/SC programs can reach the card: pcscd, vpcd, the port, an ATR round trip.
    #[command(
        long_about = "Check that PC/SC programs can reach a card on vpcd slot N.\n\n\
Checks, each printed as OK or FAIL with the exact fix: pcscd is installed; the \
vsmartcard-vpcd reader configuration is installed; pcscd is running; the vpcd port \
35963+N accepts a connection on 127.0.0.1; and a GetATR round trip through a real PC/SC \
connect to \"Virtual PCD 00 0N\" (doctor plugs in a throwaway in-memory card for it, then \
unplugs it; when a `card-emulator run` already holds the slot, doctor checks that card \
instead). With --state FILE, also that card's GlobalPlatform keys: WARN, with the command \
that rotates them, while a key set is a publicly known test key (the card then refuses \
trust anchors). Exits with status 1 when any check fails; warnings do not."
    )]
    Doctor {
        /// vpcd slot N to check: port 35963+N, reader "Virtual PCD 00 0N".
        #[arg(long, value_name = "N", default_value_t = 0)]
        slot: u16,
        /// Also check this card's state: WARN while its GlobalPlatform keys are public test keys.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
}

fn open_card(path: &Path, compact_after: Option<u64>) -> Result<Card> {
    let mut store = FileStore::open(path)?;
    if let Some(bytes) = compact_after {
        store = store.with_compaction(Compaction::after_bytes(bytes));
    }
    Ok(Card::open(Box::new(store))?)
}

fn init_logging(trace: bool) {
    let default = if trace { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn run_stdio(card: &mut Card) -> Result<()> {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.context("reading standard input")?;
        let line = line.trim();
        let answer = match line {
            "" => continue,
            l if l.starts_with('#') => continue,
            "reset" => apdu_specs::hexfmt::upper(&card.reset()),
            "power-on" => apdu_specs::hexfmt::upper(&card.power_on()),
            "atr" => apdu_specs::hexfmt::upper(&card.atr()),
            "power-off" => {
                card.power_off();
                "OK".to_string()
            }
            hex => match apdu_specs::hexfmt::parse(hex) {
                Ok(apdu) => {
                    let t = Instant::now();
                    let rsp = card.transmit(&apdu);
                    trace::exchange(&apdu, &rsp, t.elapsed());
                    apdu_specs::hexfmt::upper(&rsp)
                }
                Err(e) => format!("ERROR {e}"),
            },
        };
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Ca(CaCmd::Create { out, name, force }) => {
            let ca = IssuerCa::generate(&name)?;
            ca.save(&out, force)?;
            println!("created issuer CA {name:?} in {}", out.display());
            println!("public key (give it to the server): {}", ca.public_hex());
            Ok(())
        }
        Cmd::Ca(CaCmd::PublicKey { ca }) => {
            println!("{}", IssuerCa::load(&ca)?.public_hex());
            Ok(())
        }
        Cmd::Init {
            state,
            profile,
            force,
            ca,
            ci_cert,
        } => {
            init_logging(false);
            let text = match &profile {
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read profile {}", p.display()))?,
                None => profile::DEFAULT_PROFILE.to_string(),
            };
            let mut card = profile::build(&text).with_context(|| match &profile {
                Some(p) => format!("in profile {}", p.display()),
                None => "in the built-in profile".to_string(),
            })?;
            if state.exists() && !force {
                anyhow::bail!(
                    "state file {} already exists; pass --force to replace it",
                    state.display()
                );
            }
            let ci_path = ci_cert.unwrap_or_else(|| {
                let mut p = state.clone().into_os_string();
                p.push(".ci.pem");
                PathBuf::from(p)
            });
            // Checked before the state is written, so a refusal leaves nothing half made.
            if ci_path.exists() && !force {
                anyhow::bail!(
                    "CI certificate file {} already exists; pass --force to replace it, or \
                     choose another file with --ci-cert",
                    ci_path.display()
                );
            }
            if !card.containers().is_empty() {
                let ca_path = ca.unwrap_or_else(|| {
                    let mut p = state.clone().into_os_string();
                    p.push(".ca.json");
                    PathBuf::from(p)
                });
                let issuer = if ca_path.exists() {
                    IssuerCa::load(&ca_path)?
                } else {
                    let issuer = IssuerCa::generate("vSE issuer CA")?;
                    issuer.save(&ca_path, false)?;
                    println!("created issuer CA in {}", ca_path.display());
                    issuer
                };
                issuer.personalize(&mut card, card_emulator::system_clock())?;
                println!(
                    "SE keys generated and certified for {} container(s); CA public key: {}",
                    card.containers().len(),
                    issuer.public_hex()
                );
            }
            FileStore::create(&state, &card, force)?;
            println!("created card \"{}\" in {}", card.label, state.display());
            if let Some(id) = card.euicc_identity() {
                // Public data: the default mode (0644 under the usual umask) is right.
                // `create_new` without --force: a file made since the check above survives.
                let mut options = std::fs::OpenOptions::new();
                options.write(true);
                if force {
                    options.create(true).truncate(true);
                } else {
                    options.create_new(true);
                }
                options
                    .open(&ci_path)
                    .and_then(|mut f| f.write_all(id.ci_pem().as_bytes()))
                    .with_context(|| {
                        format!("cannot write the CI certificate {}", ci_path.display())
                    })?;
                println!(
                    "SGP.22 test CI certificate (trust anchor of the card's eUICC certificate \
                     and notifications) in {}; verify with `openssl verify -CAfile {} ...`",
                    ci_path.display(),
                    ci_path.display()
                );
            }
            Ok(())
        }
        Cmd::Profile => {
            print!("{}", profile::DEFAULT_PROFILE);
            Ok(())
        }
        Cmd::Inspect { state, json } => {
            let store = FileStore::open(&state)?;
            if json {
                std::io::stdout().write_all(&store.dump()?)?;
                return Ok(());
            }
            let (card, storage) = store.inspect()?;
            print!("{}{storage}", inspect::report(&card));
            Ok(())
        }
        Cmd::Doctor { slot, state } => {
            let mut out = std::io::stdout().lock();
            let paths = doctor::Paths::default();
            let ok = doctor::run(slot, state.as_deref(), &paths, &mut out)
                .context("writing the report")?;
            drop(out);
            if !ok {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Run {
            state,
            stdio,
            vpcd,
            slot,
            listen,
            trace,
            compact_journal_after,
        } => {
            init_logging(trace);
            let mut card = open_card(&state, compact_journal_after)?;
            if stdio {
                return run_stdio(&mut card);
            }
            let endpoint = match (vpcd, slot, listen) {
                (Some(addr), _, _) => vpcd::Endpoint::connect(addr),
                (_, Some(n), _) => vpcd::Endpoint::slot(n)?,
                (_, _, Some(addr)) => vpcd::Endpoint::listen(&addr)?,
                _ => vpcd::Endpoint::default(),
            };
            card.limit_response_length(vpcd::MAX_PAYLOAD);
            let shutdown = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(sig, shutdown.clone())
                    .context("cannot install the signal handler")?;
            }
            tracing::info!(
                "card \"{}\" from {}: {endpoint}",
                card.state().label,
                state.display()
            );
            let opts = vpcd::ServeOptions {
                trace,
                ..Default::default()
            };
            vpcd::serve(&mut card, endpoint, &opts, &shutdown).map_err(|e| {
                anyhow::anyhow!("{e}\nIs pcscd running with vsmartcard-vpcd installed? Try `card-emulator doctor`.")
            })?;
            tracing::info!("stopped; the card state is in {}", state.display());
            Ok(())
        }
    }
}
