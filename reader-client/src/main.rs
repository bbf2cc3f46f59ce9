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
reader-client gp put-key --new-key $(openssl rand -hex 16)   # every key set, from the test keys\n  \
reader-client gp --key HEX status"
    )]
    Gp(Box<GpArgs>),
    /// Seed steps 1-5: register the activated container with a service's server through the portal.
    #[command(
        long_about = "Run the seed steps 1-5 on one card connection and print each step:\n\
SELECT the authentication applet (F04D4155544801) of the activated container, VERIFY its PIN,\n\
GET REGISTRATION (R, signed by the SE), then\n  \
1. R to the server via the portal (POST URL/v1/services/ID/register)\n  \
2. the server authenticates the SE (issuer CA certificate, SE signature, fresh nonce, policy)\n  \
3. R' (signed by the server: grant, scope, expiry) back via the portal\n  \
4. VERIFY SERVER request to the SE with R'\n  \
5. the SE verifies the server's signature with its trust anchor, the grant and the expiry.\n\
On success the container holds a secure connection (durable: `reader-client service` uses it\n\
on a later connection). Any refusal exits with status 1 and says what to check.\n\n\
The container PIN is read from the VSE_PIN environment variable, or one line of standard input\n\
with --pin-stdin, or else asked on the terminal without echo. It is never printed, and --trace\n\
redacts VERIFY data.\n\n\
With --in-process=STATE the card runs inside this process on that state file, and its changes\n\
(counter, pending registration, connection) ARE written back, so `service --in-process=STATE`\n\
can continue; bare --in-process uses the default profile in memory.",
        after_help = "Examples:\n  \
reader-client register --portal http://127.0.0.1:8081 --service demo\n  \
VSE_PIN=1234 reader-client register --portal http://127.0.0.1:8081 --service demo --reader 0\n  \
echo 1234 | reader-client register --pin-stdin --portal http://127.0.0.1:8081 --service demo"
    )]
    Register {
        #[command(flatten)]
        common: AuthArgs,
    },
    /// Seed step 6: one call over the secure connection (SECURE SEND -> server -> SECURE RECEIVE).
    #[command(
        long_about = "Run seed step 6 on a new card connection, over the secure connection that\n\
`reader-client register` opened (it is durable in the card): SECURE SEND of the call (the SE\n\
seals it with AES-GCM), POST of the protected message to the portal, SECURE RECEIVE of the\n\
server's protected answer (the SE checks it), and print the result.\n\n\
Calls: `echo` (the result is the data sent) and `provision` (the server issues a credential that\n\
the SE stores in EF 6F10 of the activated container; this command then VERIFYs the container\n\
PIN and reads the EF back with READ BINARY to show it). The PIN is needed for provision only\n\
(VSE_PIN, --pin-stdin or the prompt, as for register).",
        after_help = "Examples:\n  \
reader-client service --portal http://127.0.0.1:8081 --service demo --call echo --data 48656C6C6F\n  \
VSE_PIN=1234 reader-client service --portal http://127.0.0.1:8081 --service demo --call provision"
    )]
    Service {
        #[command(flatten)]
        common: AuthArgs,
        /// The call: echo or provision.
        #[arg(long, value_name = "NAME")]
        call: String,
        /// Call data in hex (default: none).
        #[arg(long, value_name = "HEX", default_value = "")]
        data: String,
    },
    /// Start a server, a portal and a card, and run the whole mutual authentication for every container.
    #[command(
        long_about = "The main job: start `server` (fresh key and database in a temporary directory, the card's\n\
issuer CA key, service `demo` = echo,provision granted to any SE for one hour) and `portal` on\n\
loopback ports, and a card from the default profile: behind pcscd + vpcd (`card-emulator run\n\
--slot N`) when pcscd is usable (a running one with a free vpcd reader, or one the demo starts,\n\
which needs root), otherwise in-process. Then rotate every GlobalPlatform key set of the card\n\
from the public test keys to fresh random keys (kept with mode 0600 in gp-keys.json in the\n\
working directory; the card takes trust anchors only under secret keys), install the server key\n\
into every container with them (SCP03, INSTALL [for personalization] + STORE DATA DGI A001)\n\
and, container after container (switching with ES10c EnableProfile), run register (steps\n\
1-5), an echo and a provision call (step 6) and READ BINARY of the credential. Prints a transcript naming the reader and each step; exits 0 only\n\
when everything worked. Every process it started is stopped by its PID at the end, also on failure.\n\n\
The binaries server, portal and card-emulator are taken from the directory of reader-client\n\
(build them with `cargo build --bins`), or from --bin-dir."
    )]
    Demo {
        /// Run the card in-process even when pcscd is usable.
        #[arg(long, conflicts_with = "pcsc")]
        in_process: bool,
        /// Require pcscd + vpcd (fail instead of falling back to in-process).
        #[arg(long)]
        pcsc: bool,
        /// Directory holding server, portal and card-emulator [default: beside reader-client].
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
    },
}

/// Options shared by `register` and `service`.
#[derive(clap::Args)]
struct AuthArgs {
    /// Base URL of the portal (plain HTTP), e.g. http://127.0.0.1:8081.
    #[arg(long, value_name = "URL")]
    portal: String,
    /// The service identifier (as configured in the server and the portal).
    #[arg(long, value_name = "ID")]
    service: String,
    /// Reader index or name substring (default: the first reader with a card).
    #[arg(short, long, conflicts_with = "in_process")]
    reader: Option<String>,
    /// Run against an in-process card: `--in-process=STATE` opens that state file and writes changes back; bare `--in-process` uses the default profile in memory.
    #[arg(long, value_name = "STATE", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    in_process: Option<String>,
    /// Read the container PIN from one line of standard input (else VSE_PIN, else a prompt without echo).
    #[arg(long)]
    pin_stdin: bool,
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
    /// PUT KEY: rotate every SCP03 and SCP02 key set of the card to new keys (or add one set with --add); KCVs are checked.
    #[command(
        long_about = "Rotate every secure-channel key set of the card to the new keys: read the key\n\
information template (GET DATA 00E0) to find the SCP03 (AES) and SCP02 (DES) sets, then for\n\
each open a channel with its current keys (--key or --enc/--mac/--dek; the GlobalPlatform test\n\
keys when none is given) and PUT KEY the new ENC, MAC and DEK (key identifiers 1-3), sent\n\
encrypted under the DEK with key check values; the card's confirmation (KVN and KCVs) is\n\
checked. Each set keeps its KVN; --new-kvn renumbers the set that --scp/--kvn names (default\n\
the SCP03 set). A set the new keys open already is left alone, so running it again is\n\
harmless. SCP02 takes 16-byte keys only.\n\n\
Then it says which sets, if any, still open with the public test keys 40..4F, and exits 1 if\n\
one does: while any set is public the card refuses trust anchors (install-anchor answers\n\
6985). Keep the new keys: the old ones stop working.\n\n\
With --add one set is added under --new-kvn (in the channel that --scp/--kvn opens) and the\n\
current sets stay.",
        after_help = "Examples:\n  \
reader-client gp put-key --new-key $(openssl rand -hex 16)\n  \
reader-client gp --key OLD_HEX put-key --new-key NEW_HEX"
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
    /// Install a server's public key into a container as the trust anchor of a service (DGI A001).
    #[command(
        long_about = "Inside the secure channel: INSTALL [for personalization] of the container's ISD-P, then\n\
STORE DATA (P1 88, DGI format) of DGI A001 {80 service id, 81 server public key}. The card\n\
takes it in admin mode, also for a disabled container. The key is what `server init` or\n\
`server public-key --data DIR` prints (65 bytes, SEC1 uncompressed, hex). (The option is\n\
--server-key because --key already names the secure channel's static key.)\n\n\
The card takes a trust anchor only under secret keys: while any of its GlobalPlatform key\n\
sets is a public test key it answers 6985 (rotate them all first: `reader-client gp put-key\n\
--new-key HEX`, then pass that key with --key), and the channel needs C-MAC and\n\
C-DECRYPTION (--level enc or full; 6982 otherwise).",
        after_help = "Example:\n  \
reader-client gp --key HEX install-anchor --container A0000005591010FFFFFFFF8900001000 --service demo --server-key 04AB..."
    )]
    InstallAnchor {
        /// ISD-P AID of the container (hex; `reader-client containers list` shows them).
        #[arg(long, value_name = "ISDP_AID")]
        container: String,
        /// The service identifier the key is trusted for (1..32 bytes of UTF-8).
        #[arg(long, value_name = "ID")]
        service: String,
        /// The server's public key (hex, 65 bytes, 04 || X || Y).
        #[arg(long, value_name = "HEX")]
        server_key: String,
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
        // The snapshot with its journal applied (`store::decode` reads the snapshot alone).
        let file = store::FileStore::open(std::path::Path::new(state))?;
        store::Store::load(&file).with_context(|| format!("reading the card state {state}"))?
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
        cmd @ (Cmd::Register { .. } | Cmd::Service { .. }) => {
            auth_command(cmd, cli.trace, &mut out)
        }
        Cmd::Demo {
            in_process,
            pcsc,
            bin_dir,
        } => {
            use reader_client::demo::{self, CardMode, DemoOptions};
            let bin_dir = match bin_dir {
                Some(d) => d,
                None => std::env::current_exe()
                    .context("locating reader-client")?
                    .parent()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default(),
            };
            let mode = match (in_process, pcsc) {
                (true, _) => CardMode::InProcess,
                (_, true) => CardMode::Pcsc,
                _ => CardMode::Auto,
            };
            match demo::run(&DemoOptions { bin_dir, mode }, &mut out) {
                Ok(()) => Ok(0),
                Err(e) => {
                    out.flush()?;
                    eprintln!("demo failed: {e}");
                    Ok(1)
                }
            }
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
            if let GpCmd::PutKey { add: false, .. } = action {
                return gp_rotate(t.as_mut(), &sd, &keys, &options, action, json, &mut out);
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
                GpCmd::InstallAnchor {
                    container,
                    service,
                    server_key,
                } => {
                    let aid = hexfmt::parse(&container)
                        .with_context(|| format!("--container {container:?} is not hex"))?;
                    let anchor = trust_anchor(&service, &server_key)?;
                    let channel = session.channel();
                    gp::install_anchor(&mut session, &aid, &anchor, channel)
                        .context("installing the trust anchor")?;
                    if json {
                        writeln!(
                            out,
                            "{}",
                            serde_json::json!({"installed": true, "container": hexfmt::upper(&aid), "service": service})
                        )?;
                    } else {
                        writeln!(
                            out,
                            "trust anchor for service `{service}` installed into container {} (DGI A001)",
                            hexfmt::upper(&aid)
                        )?;
                    }
                    Ok(0)
                }
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
                    let mut t = session.into_inner();
                    let public = gp::sets_with_test_keys(t.as_mut(), &sd)?;
                    if !public.is_empty() {
                        eprintln!("{}", still_public_warning(&public));
                    }
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

/// What to say about key sets the public test keys still open.
fn still_public_warning(public: &[gp::KeySet]) -> String {
    let names: Vec<String> = public.iter().map(ToString::to_string).collect();
    format!(
        "WARNING: {} still {} with the public GlobalPlatform test keys 40..4F: any terminal can \
administer the card, and it refuses trust anchors (6985) until every key set is rotated: \
reader-client gp put-key --new-key HEX",
        names.join(" and "),
        if names.len() == 1 { "opens" } else { "open" }
    )
}

/// `gp put-key` without --add: rotate every SCP03/SCP02 key set of the card, then say which
/// sets the public test keys still open (exit 1 if any).
fn gp_rotate(
    t: &mut dyn Transport,
    sd: &[u8],
    keys: &StaticKeys,
    options: &ScpOptions,
    action: GpCmd,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32> {
    let GpCmd::PutKey {
        new_key,
        new_enc,
        new_mac,
        new_dek,
        new_kvn,
        ..
    } = action
    else {
        bail!("not put-key");
    };
    let new_keys = static_keys(
        new_key.as_deref(),
        new_enc.as_deref(),
        new_mac.as_deref(),
        new_dek.as_deref(),
    )?;
    if new_keys.is_publicly_known() {
        bail!("the new keys are publicly known test keys; choose secret ones, e.g. --new-key $(openssl rand -hex 16)");
    }
    let renumber = match new_kvn {
        Some(k) => {
            let new = parse_byte(&k, "--new-kvn")?;
            let sets = gp::key_sets(t, sd)?;
            let old = sets
                .iter()
                .find(|s| {
                    s.version == options.version && (options.kvn == 0 || s.kvn == options.kvn)
                })
                .with_context(|| {
                    format!(
                        "the card has no {} key set with KVN {:02X} for --new-kvn (see `reader-client gp info`)",
                        options.version, options.kvn
                    )
                })?;
            Some((old.kvn, new))
        }
        None => None,
    };
    let report = gp::rotate_key_sets(t, sd, keys, &new_keys, options.level, renumber)
        .context("rotating the key sets")?;
    let public: Vec<gp::KeySet> = report.iter().filter(|r| r.public).map(|r| r.set).collect();
    if json {
        let sets: Vec<serde_json::Value> = report
            .iter()
            .map(|r| {
                let (result, new_kvn, confirmed, reason) = match &r.rotation {
                    gp::Rotation::Rotated { new_kvn, confirmed } => {
                        ("rotated", Some(*new_kvn), Some(*confirmed), None)
                    }
                    gp::Rotation::AlreadyRotated => ("already rotated", None, None, None),
                    gp::Rotation::Kept { reason } => ("kept", None, None, Some(reason.clone())),
                };
                serde_json::json!({
                    "kvn": format!("{:02X}", r.set.kvn),
                    "scp": r.set.version.to_string(),
                    "result": result,
                    "new_kvn": new_kvn.map(|k| format!("{k:02X}")),
                    "confirmed": confirmed,
                    "reason": reason,
                    "public_test_keys": r.public,
                })
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({"key_sets": sets, "all_rotated": public.is_empty()})
        )?;
    } else {
        for r in &report {
            let what = match &r.rotation {
                gp::Rotation::Rotated { new_kvn, confirmed } => format!(
                    "rotated: key set {:02X} replaced by key set {new_kvn:02X}{}",
                    r.set.kvn,
                    if *confirmed {
                        "; the card confirmed the KVN and key check values"
                    } else {
                        "; the card answered 9000 without confirming the key check values"
                    }
                ),
                gp::Rotation::AlreadyRotated => "already rotated: the new keys open it".into(),
                gp::Rotation::Kept { reason } => format!("NOT rotated: {reason}"),
            };
            writeln!(out, "{}: {what}", r.set)?;
        }
        if public.is_empty() {
            writeln!(
                out,
                "no key set opens with the public test keys any more; keep the new keys, they are the card's admin keys now"
            )?;
        }
    }
    if public.is_empty() {
        Ok(0)
    } else {
        eprintln!("{}", still_public_warning(&public));
        Ok(1)
    }
}

/// The card for `register` / `service`: PC/SC, or in-process (written back with a STATE).
fn open_auth_card(common: &AuthArgs, trace: bool) -> Result<Box<dyn Transport>> {
    use card_emulator::{store::FileStore, Card};
    match common.in_process.as_deref() {
        Some("") => open_in_process("", trace),
        Some(state) => {
            let store = FileStore::open(std::path::Path::new(state))
                .with_context(|| format!("opening the card state {state}"))?;
            let card = Card::open(Box::new(store))
                .with_context(|| format!("loading the card state {state}"))?;
            eprintln!("Using an in-process card on {state} (changes are written back)");
            Ok(wrap(Box::new(InProcess::new(card)), trace))
        }
        None => open_pcsc(common.reader.as_deref(), trace),
    }
}

/// The container PIN: one stdin line with --pin-stdin, else VSE_PIN, else a prompt without echo.
fn read_pin(pin_stdin: bool) -> Result<zeroize::Zeroizing<String>> {
    let pin = if pin_stdin {
        let mut line = zeroize::Zeroizing::new(String::new());
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the PIN from standard input")?;
        zeroize::Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string())
    } else if let Ok(p) = std::env::var("VSE_PIN") {
        zeroize::Zeroizing::new(p)
    } else {
        zeroize::Zeroizing::new(rpassword::prompt_password("Container PIN: ").context(
            "no terminal to ask the PIN on: pass --pin-stdin (PIN on standard input) or set VSE_PIN",
        )?)
    };
    if pin.is_empty() {
        bail!("the PIN is empty");
    }
    Ok(pin)
}

fn trust_anchor(service: &str, key: &str) -> Result<apdu_specs::auth::TrustAnchor> {
    let bytes = hexfmt::parse(key).with_context(|| "--server-key is not hex".to_string())?;
    let server_public_key: [u8; 65] = bytes.as_slice().try_into().map_err(|_| {
        anyhow::anyhow!(
            "--server-key has {} bytes; a P-256 public key is 65 (04 || X || Y), as `server public-key` prints it",
            bytes.len()
        )
    })?;
    if service.is_empty() || service.len() > apdu_specs::auth::MAX_ID_LEN {
        bail!("--service must have 1..32 bytes");
    }
    Ok(apdu_specs::auth::TrustAnchor {
        service_id: service.to_string(),
        server_public_key,
    })
}

/// `register`, `service`: print the transcript; a refusal exits 1 with the reason.
fn auth_command(cmd: Cmd, trace: bool, out: &mut dyn Write) -> Result<i32> {
    use reader_client::flow;
    use reader_client::portal_client::PortalClient;
    let (common, call) = match cmd {
        Cmd::Register { common } => (common, None),
        Cmd::Service { common, call, data } => {
            let data =
                hexfmt::parse(&data).with_context(|| format!("--data {data:?} is not hex"))?;
            (common, Some(apdu_specs::auth::Call { name: call, data }))
        }
        _ => bail!("not an authentication command"),
    };
    let portal = PortalClient::new(&common.portal)?;
    // Registration and every call need the container PIN (the cardholder gates the SE).
    let pin = Some(read_pin(common.pin_stdin)?);
    let mut t = open_auth_card(&common, trace)?;
    writeln!(out, "reader: {}", t.name())?;
    let r = match &call {
        None => {
            writeln!(
                out,
                "register with service `{}` via {}",
                common.service, common.portal
            )?;
            flow::register(
                t.as_mut(),
                &portal,
                &common.service,
                pin.as_deref().map(String::as_bytes).unwrap_or_default(),
                out,
            )
            .map(|reg| {
                format!(
                    "registered: secure connection open for `{}` until {}",
                    reg.scope.join(","),
                    reg.expiry
                )
            })
        }
        Some(call) => {
            writeln!(
                out,
                "service `{}` call `{}` via {}",
                common.service, call.name, common.portal
            )?;
            flow::service(
                t.as_mut(),
                &portal,
                &common.service,
                call,
                pin.as_deref().map(String::as_bytes),
                out,
            )
            .map(|s| match (call.name.as_str(), s.credential_ef) {
                ("echo", _) => format!("echo: {}", hexfmt::upper(&s.result.data)),
                ("provision", Some(_)) => {
                    "provision: credential stored in EF 6F10 and read back".to_string()
                }
                (name, _) => format!("{name}: ok, result {}", hexfmt::upper(&s.result.data)),
            })
        }
    };
    match r {
        Ok(summary) => {
            writeln!(out, "{summary}")?;
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(1)
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
