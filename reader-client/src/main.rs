//! `reader-client`: the terminal on the command line (readers, ATR, APDUs, scripts, conformance runs, containers, GlobalPlatform).
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use apdu_specs::es10::ProfileId;
use apdu_specs::hexfmt;
use clap::{Parser, Subcommand};
use reader_client::atr::Atr;
use reader_client::conform::{self, RunOptions};
use reader_client::containers as view;
use reader_client::es10_client::{Es10Client, Outcome};
use reader_client::gp::{self, StatusScope};
use reader_client::pcsc_reader::Pcsc;
use reader_client::scp::{self, Scp, ScpOptions, ScpVersion};
use reader_client::script::{self, Dialect};
use reader_client::{transmit_following, InProcess, Traced, Transport};
use secure_channel::{SecurityLevel, StaticKeys};
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
    /// Manage the card's enhanced containers (eSIM-style profiles) over SGP.22 ES10c, as lpac does.
    #[command(
        long_about = "List, enable, disable, rename and delete the card's containers through its card manager\n\
(the SGP.22 ISD-R, A0000005591010FFFFFFFF8900000100), speaking ES10c exactly as the lpac eSIM tool\n\
does: TERMINAL CAPABILITIES, MANAGE CHANNEL open, SELECT ISD-R on that channel, STORE DATA in\n\
120-byte blocks, MANAGE CHANNEL close.\n\n\
ID is a container's ICCID (19 or 20 digits) or its ISD-P AID (32 hex digits), as `containers list`\n\
shows them. At most one container is enabled; enabling one disables the other. Only a disabled\n\
container can be deleted, and deleting it removes its files and keys for good.\n\n\
Results print with their SGP.22 names (ok, iccidOrAidNotFound, profileNotInDisabledState, ...);\n\
any result but ok exits with status 1 and says what to do. With --in-process the commands run on\n\
an in-process copy of STATE (or of the default profile): useful to try things out, but changes are\n\
NOT written back to the file.",
        after_help = "Examples:\n  \
reader-client containers list\n  \
reader-client containers list --json\n  \
reader-client containers enable 89000123456789012341\n  \
reader-client containers nickname A0000005591010FFFFFFFF8900001100 travel\n  \
reader-client containers disable 89000123456789012341\n  \
reader-client containers delete 89000123456789012341"
    )]
    Containers {
        /// Reader index or name substring (default: the first reader with a card).
        #[arg(short, long, global = true, conflicts_with = "in_process")]
        reader: Option<String>,
        /// Run against an in-process card instead of PC/SC: `--in-process=STATE` copies that state file (never written back), bare `--in-process` uses the default profile.
        #[arg(long, global = true, value_name = "STATE", num_args = 0..=1, require_equals = true, default_missing_value = "")]
        in_process: Option<String>,
        /// Print JSON for scripts instead of text.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        action: ContainersCmd,
    },
    /// GlobalPlatform card management inside an SCP02/SCP03 secure channel: card info, GET STATUS, PUT KEY.
    #[command(
        long_about = "Talk to the card's issuer security domain the GlobalPlatform way: SELECT it (--sd), open a\n\
secure channel (INITIALIZE UPDATE, EXTERNAL AUTHENTICATE) with SCP03 (AES) or SCP02 (3DES), then\n\
send every command wrapped (C-MAC, and C-DEC / R-MAC / R-ENC by --level).\n\n\
Keys: --key HEX uses one key for ENC, MAC and DEK; --enc/--mac/--dek give the three. Without\n\
either, the GlobalPlatform test key 404142434445464748494A4B4C4D4E4F is used (our card's factory\n\
keys: KVN 30 for SCP03, 20 for SCP02, which is what --kvn defaults to; --kvn 00 lets the card pick).\n\n\
Levels: mac = C-MAC (01); enc = C-DEC + C-MAC (03); full = C-DEC + C-MAC + R-MAC + R-ENC (33,\n\
SCP03 only). Default: full for SCP03, enc for SCP02.",
        after_help = "Examples:\n  \
reader-client gp info\n  \
reader-client gp --scp 02 --level mac status\n  \
reader-client gp --key 404142434445464748494A4B4C4D4E4F put-key --new-key 000102030405060708090A0B0C0D0E0F"
    )]
    Gp(Box<GpArgs>),
}

/// Options of `reader-client gp`.
#[derive(clap::Args)]
struct GpArgs {
    /// Reader index or name substring (default: the first reader with a card).
    #[arg(short, long, global = true, conflicts_with = "in_process")]
    reader: Option<String>,
    /// Run against an in-process card instead of PC/SC: `--in-process=STATE` copies that state file (never written back), bare `--in-process` uses the default profile.
    #[arg(long, global = true, value_name = "STATE", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    in_process: Option<String>,
    /// Secure channel protocol: 03 (AES) or 02 (3DES).
    #[arg(long, global = true, value_name = "02|03", default_value = "03", value_parser = clap::value_parser!(ScpVersion))]
    scp: ScpVersion,
    /// One static key (hex) for ENC, MAC and DEK.
    #[arg(long, global = true, value_name = "HEX", conflicts_with_all = ["enc", "mac", "dek"])]
    key: Option<String>,
    /// Static ENC key (hex); needs --mac and --dek.
    #[arg(long, global = true, value_name = "HEX", requires_all = ["mac", "dek"])]
    enc: Option<String>,
    /// Static MAC key (hex); needs --enc and --dek.
    #[arg(long, global = true, value_name = "HEX", requires_all = ["enc", "dek"])]
    mac: Option<String>,
    /// Static DEK key (hex); needs --enc and --mac.
    #[arg(long, global = true, value_name = "HEX", requires_all = ["enc", "mac"])]
    dek: Option<String>,
    /// Key version number for INITIALIZE UPDATE, hex (default: 30 for SCP03, 20 for SCP02; 00 lets the card pick).
    #[arg(long, global = true, value_name = "HEX")]
    kvn: Option<String>,
    /// Security level: mac, enc or full (or the P1 in hex: 01 03 11 13 33).
    #[arg(long, global = true, value_name = "LEVEL")]
    level: Option<String>,
    /// AID of the security domain to select (hex).
    #[arg(
        long,
        global = true,
        value_name = "AID",
        default_value = "A000000151000000"
    )]
    sd: String,
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    action: GpCmd,
}

#[derive(Subcommand)]
enum ContainersCmd {
    /// Show every container: ICCID, state, nickname, provider, profile name, class, ISD-P AID.
    List,
    /// Enable the container ID (the enabled one, if any, is disabled in the same step).
    Enable {
        /// ICCID (19-20 digits) or ISD-P AID (32 hex digits).
        id: String,
    },
    /// Disable the container ID, leaving no container enabled.
    Disable {
        /// ICCID (19-20 digits) or ISD-P AID (32 hex digits).
        id: String,
    },
    /// Set the nickname of the container ID (an empty NAME clears it).
    Nickname {
        /// ICCID (19-20 digits) or ISD-P AID (32 hex digits).
        id: String,
        /// The new nickname (UTF-8, at most 64 characters).
        name: String,
    },
    /// Delete the disabled container ID with its files, keys and applications.
    Delete {
        /// ICCID (19-20 digits) or ISD-P AID (32 hex digits).
        id: String,
    },
}

#[derive(Subcommand)]
enum GpCmd {
    /// The security domain's AID, card data (GP version, SCP), CPLC and key information.
    Info {
        /// Read in the clear, without opening a secure channel (most cards allow these GET DATA).
        #[arg(long)]
        plain: bool,
    },
    /// GET STATUS: the issuer security domain, then applications and security domains with life cycle states.
    Status,
    /// PUT KEY: replace the key set used to authenticate (or add one with --add); KCVs are checked.
    #[command(
        long_about = "Replace the key set this session authenticated with by a new one (ENC, MAC, DEK as key\n\
identifiers 1-3), sent encrypted under the DEK with key check values; the card's confirmation\n\
(new KVN and KCVs) is checked. Keep the new keys: the old ones stop working.\n\
With --add the set is added under --new-kvn and the current one stays."
    )]
    PutKey {
        /// One new key (hex) for ENC, MAC and DEK.
        #[arg(long, value_name = "HEX", conflicts_with_all = ["new_enc", "new_mac", "new_dek"], required_unless_present = "new_enc")]
        new_key: Option<String>,
        /// New ENC key (hex); needs --new-mac and --new-dek.
        #[arg(long, value_name = "HEX", requires_all = ["new_mac", "new_dek"])]
        new_enc: Option<String>,
        /// New MAC key (hex).
        #[arg(long, value_name = "HEX", requires_all = ["new_enc", "new_dek"])]
        new_mac: Option<String>,
        /// New DEK key (hex).
        #[arg(long, value_name = "HEX", requires_all = ["new_enc", "new_mac"])]
        new_dek: Option<String>,
        /// Key version number of the new set, hex (default: the one being replaced).
        #[arg(long, value_name = "HEX")]
        new_kvn: Option<String>,
        /// Add a new key set (P1 00) instead of replacing the current one; needs --new-kvn.
        #[arg(long, requires = "new_kvn")]
        add: bool,
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
        Cmd::Containers {
            reader,
            in_process,
            json,
            action,
        } => {
            let open = || match &in_process {
                Some(state) => open_in_process(state, cli.trace),
                None => open_pcsc(reader.as_deref(), cli.trace),
            };
            containers(open, action, json, &mut out)
        }
        Cmd::Gp(args) => {
            let GpArgs {
                reader,
                in_process,
                scp,
                key,
                enc,
                mac,
                dek,
                kvn,
                level,
                sd,
                json,
                action,
            } = *args;
            let keys = static_keys(
                key.as_deref(),
                enc.as_deref(),
                mac.as_deref(),
                dek.as_deref(),
            )?;
            let mut options = ScpOptions::new(
                scp,
                match level {
                    Some(l) => scp::parse_level(&l).map_err(anyhow::Error::msg)?,
                    None if scp == ScpVersion::Scp02 => SecurityLevel::C_DEC_C_MAC,
                    None => SecurityLevel::FULL,
                },
            );
            if let Some(k) = kvn {
                options.kvn = parse_byte(&k, "--kvn")?;
            }
            let sd = hexfmt::parse(&sd).with_context(|| format!("--sd {sd:?} is not hex"))?;
            let mut t = match &in_process {
                Some(state) => open_in_process(state, cli.trace)?,
                None => open_pcsc(reader.as_deref(), cli.trace)?,
            };
            let fci = gp::select(t.as_mut(), &sd, 0).with_context(|| {
                format!(
                    "selecting the security domain {} (use --sd AID for another one)",
                    hexfmt::upper(&sd)
                )
            })?;
            if let GpCmd::Info { plain: true } = action {
                return gp_info(t.as_mut(), &fci, json, &mut out);
            }
            let mut session = Scp::open(t, &keys, &options).context(
                "opening the secure channel (check --scp, --kvn and the keys; the card counts failed attempts)",
            )?;
            eprintln!(
                "Secure channel: {} KVN {:02X}, level {}",
                session.version(),
                session.card_kvn(),
                options.level
            );
            match action {
                GpCmd::Info { .. } => gp_info(&mut session, &fci, json, &mut out),
                GpCmd::Status => gp_status(&mut session, json, &mut out),
                GpCmd::PutKey {
                    new_key,
                    new_enc,
                    new_mac,
                    new_dek,
                    new_kvn,
                    add,
                } => {
                    let new_keys = static_keys(
                        new_key.as_deref(),
                        new_enc.as_deref(),
                        new_mac.as_deref(),
                        new_dek.as_deref(),
                    )?;
                    let current = session.card_kvn();
                    let new_kvn = match new_kvn {
                        Some(k) => parse_byte(&k, "--new-kvn")?,
                        None => current,
                    };
                    let replace = if add { None } else { Some(current) };
                    let confirmed = gp::put_key(&mut session, replace, new_kvn, &new_keys)?;
                    let what = match replace {
                        Some(old) => format!("key set {old:02X} replaced by key set {new_kvn:02X}"),
                        None => format!("key set {new_kvn:02X} added"),
                    };
                    if json {
                        writeln!(
                            out,
                            "{}",
                            serde_json::json!({"put_key": what, "kvn": new_kvn, "confirmed": confirmed})
                        )?;
                    } else if confirmed {
                        writeln!(
                            out,
                            "{what}; the card confirmed the KVN and key check values"
                        )?;
                    } else {
                        writeln!(out, "{what}; the card answered 9000 without confirming the key check values")?;
                    }
                    Ok(0)
                }
            }
        }
    }
}

/// One hex byte from the command line (`30`, `0x30`).
fn parse_byte(s: &str, what: &str) -> Result<u8> {
    u8::from_str_radix(s.trim_start_matches("0x"), 16)
        .with_context(|| format!("{what} {s:?} is not one hex byte (e.g. 30)"))
}

/// The static keys from --key or --enc/--mac/--dek; the GP test keys when none is given.
fn static_keys(
    key: Option<&str>,
    enc: Option<&str>,
    mac: Option<&str>,
    dek: Option<&str>,
) -> Result<StaticKeys> {
    let hex = |h: &str, what: &str| -> Result<Vec<u8>> {
        hexfmt::parse(h).with_context(|| format!("{what} is not hex"))
    };
    let keys = match (key, enc, mac, dek) {
        (Some(k), ..) => StaticKeys::from_single(&hex(k, "the key")?),
        (None, Some(e), Some(m), Some(d)) => StaticKeys::new(
            &hex(e, "the ENC key")?,
            &hex(m, "the MAC key")?,
            &hex(d, "the DEK key")?,
        ),
        _ => {
            eprintln!("Using the GlobalPlatform test keys 404142...4F (give --key or --enc/--mac/--dek for others)");
            return Ok(StaticKeys::gp_default());
        }
    };
    keys.context("keys are 16, 24 or 32 bytes (SCP02: 16)")
}

fn parse_id(id: &str) -> Result<ProfileId> {
    id.parse().map_err(|e| {
        anyhow::anyhow!(
            "{id:?} is neither an ICCID (19 or 20 digits) nor an ISD-P AID (32 hex digits): {e}; \
             `reader-client containers list` shows both"
        )
    })
}

/// `reader-client containers ...`: one ES10c session, one function.
fn containers(
    open: impl FnOnce() -> Result<Box<dyn Transport>>,
    action: ContainersCmd,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32> {
    // Parse the ID before touching the card.
    let id = match &action {
        ContainersCmd::List => None,
        ContainersCmd::Enable { id }
        | ContainersCmd::Disable { id }
        | ContainersCmd::Nickname { id, .. }
        | ContainersCmd::Delete { id } => Some(parse_id(id)?),
    };
    let mut t = open()?;
    let mut c =
        Es10Client::open(t.as_mut()).context("opening the card manager (ISD-R) over ES10c")?;
    let outcome = match (action, id) {
        (ContainersCmd::Enable { .. }, Some(id)) => Outcome::of(c.enable(&id)?),
        (ContainersCmd::Disable { .. }, Some(id)) => Outcome::of(c.disable(&id)?),
        (ContainersCmd::Nickname { name, .. }, Some(id)) => {
            Outcome::of(c.set_nickname(&id, &name)?)
        }
        (ContainersCmd::Delete { .. }, Some(id)) => Outcome::of(c.delete(&id)?),
        _ => {
            let list = c.list_profiles()?;
            c.close()?;
            if json {
                writeln!(out, "{}", view::list_json(&list))?;
            } else {
                write!(out, "{}", view::list_table(&list))?;
            }
            return Ok(0);
        }
    };
    c.close()?;
    if json {
        writeln!(out, "{}", view::outcome_json(&outcome))?;
    } else {
        writeln!(out, "{}: {}", outcome.function, outcome.name)?;
    }
    if outcome.is_ok() {
        Ok(0)
    } else {
        eprintln!(
            "error: {} answered {}: {}",
            outcome.function,
            outcome.name,
            outcome.advice()
        );
        Ok(1)
    }
}

/// `gp info`: FCI, card data, CPLC and key information; objects the card lacks are reported, not fatal.
fn gp_info(t: &mut dyn Transport, fci: &[u8], json: bool, out: &mut dyn Write) -> Result<i32> {
    use apdu_specs::es10::der;
    let aid = der::read_expected(fci, 0x6F)
        .ok()
        .and_then(|v| der::read_all(v).ok())
        .and_then(|c| der::find(&c, 0x84).map(hexfmt::upper));
    let card_data = gp::get_data(t, gp::object::CARD_DATA, 0).and_then(|d| gp::parse_card_data(&d));
    let cplc = gp::get_data(t, gp::object::CPLC, 0).and_then(|d| gp::parse_cplc(&d));
    let keys = gp::get_data(t, gp::object::KEY_INFO, 0).and_then(|d| gp::parse_key_info(&d));
    if json {
        let v = serde_json::json!({
            "aid": aid,
            "card_data": card_data.as_ref().ok(),
            "cplc": cplc.as_ref().ok().map(|f| f.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<std::collections::BTreeMap<_, _>>()),
            "keys": keys.as_ref().ok(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    writeln!(
        out,
        "Security domain: {}",
        aid.as_deref().unwrap_or("(no AID in the FCI)")
    )?;
    match card_data {
        Ok(c) => {
            writeln!(out, "Card data:")?;
            writeln!(
                out,
                "  GlobalPlatform version: {}",
                c.gp_version.as_deref().unwrap_or("-")
            )?;
            for (scp, i) in &c.scp {
                writeln!(out, "  secure channel: SCP{scp:02} i={i:02X}")?;
            }
            for (tag, oid) in &c.oids {
                writeln!(out, "  {tag}: {oid}")?;
            }
        }
        Err(e) => writeln!(out, "Card data: not available ({e})")?,
    }
    match cplc {
        Ok(fields) => {
            writeln!(out, "CPLC:")?;
            for (name, value) in fields {
                writeln!(out, "  {name}: {value}")?;
            }
        }
        Err(e) => writeln!(out, "CPLC: not available ({e})")?,
    }
    match keys {
        Ok(keys) => {
            writeln!(out, "Keys:")?;
            for k in keys {
                let comps: Vec<String> = k
                    .components
                    .iter()
                    .map(|(t, len)| {
                        format!("{} {}-bit", gp::key_type_name(*t), u32::from(*len) * 8)
                    })
                    .collect();
                writeln!(
                    out,
                    "  KVN {:02X} ID {:02X}: {}",
                    k.version,
                    k.id,
                    comps.join(", ")
                )?;
            }
        }
        Err(e) => writeln!(out, "Keys: not available ({e})")?,
    }
    Ok(0)
}

/// `gp status`: ISD, then applications and security domains.
fn gp_status(t: &mut dyn Transport, json: bool, out: &mut dyn Write) -> Result<i32> {
    let isd = gp::get_status(t, StatusScope::Isd, 0).context("GET STATUS of the ISD")?;
    let apps = gp::get_status(t, StatusScope::Applications, 0)
        .context("GET STATUS of the applications and security domains")?;
    if json {
        let v = serde_json::json!({ "isd": isd, "applications": apps });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    for (label, scope, entries) in [
        ("ISD", StatusScope::Isd, &isd),
        ("APP", StatusScope::Applications, &apps),
    ] {
        for e in entries {
            let privileges = e
                .privileges
                .as_deref()
                .map(hexfmt::upper)
                .unwrap_or_default();
            writeln!(
                out,
                "{label}: {}  {}{}",
                hexfmt::upper(&e.aid),
                gp::life_cycle_name(scope, e.life_cycle),
                if privileges.is_empty() {
                    String::new()
                } else {
                    format!("  privileges {privileges}")
                }
            )?;
        }
    }
    Ok(0)
}
