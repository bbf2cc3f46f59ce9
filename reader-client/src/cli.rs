//! The command line: every subcommand, flag and help text of `reader-client` (what runs
//! them is in `cmd`).

use clap::{Parser, Subcommand};
use reader_client::scp::ScpVersion;
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
pub struct Cli {
    /// Print every APDU sent and received, with its status meaning and round-trip time (stderr).
    #[arg(long, global = true)]
    pub trace: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
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
(the SGP.22 ISD-R, F0564150504C4554), speaking ES10c exactly as the lpac eSIM tool\n\
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
    /// GlobalPlatform card management inside an SCP02/SCP03 secure channel: card info, GET STATUS, PUT KEY, applets.
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
reader-client gp --key HEX status\n  \
reader-client gp load counter.wasm --container A0000005591010FFFFFFFF8900001000 --package-aid F0564150504C4554\n  \
reader-client gp install --package-aid F0564150504C4554 --applet-aid F0564150504C455401"
    )]
    Gp(Box<GpArgs>),
    /// Seed steps 1-5: register the enabled container with a service's server through the portal.
    #[command(
        long_about = "Run the seed steps 1-5 on one card connection and print each step:\n\
SELECT the authentication applet (F04D4155544801) of the enabled container, VERIFY its PIN,\n\
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
echo 1234 | reader-client register --pin-stdin --portal http://127.0.0.1:8081 --service demo\n  \
reader-client register --portal https://127.0.0.1:8443 --ca-file DIR/tls-cert.pem --service demo"
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
the SE stores in EF 6F10 of the enabled container; this command then VERIFYs the container\n\
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
pub struct AuthArgs {
    /// Base URL of the portal, e.g. http://127.0.0.1:8081 or https://portal.example:8443.
    #[arg(long, value_name = "URL")]
    pub portal: String,
    /// PEM file of the CA that signed an https:// portal's certificate (a self-signed test
    /// pair: the certificate itself); default: the system's root certificates.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// The service identifier (as configured in the server and the portal).
    #[arg(long, value_name = "ID")]
    pub service: String,
    /// Reader index or name substring (default: the first reader with a card).
    #[arg(short, long, conflicts_with = "in_process")]
    pub reader: Option<String>,
    /// Run against an in-process card: `--in-process=STATE` opens that state file and writes changes back; bare `--in-process` uses the default profile in memory.
    #[arg(long, value_name = "STATE", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub in_process: Option<String>,
    /// Read the container PIN from one line of standard input (else VSE_PIN, else a prompt without echo).
    #[arg(long)]
    pub pin_stdin: bool,
}

/// Options of `reader-client gp`.
#[derive(clap::Args)]
pub struct GpArgs {
    /// Reader index or name substring (default: the first reader with a card).
    #[arg(short, long, global = true, conflicts_with = "in_process")]
    pub reader: Option<String>,
    /// Run against an in-process card instead of PC/SC: `--in-process=STATE` copies that state file (never written back), bare `--in-process` uses the default profile.
    #[arg(long, global = true, value_name = "STATE", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub in_process: Option<String>,
    /// Secure channel protocol: 03 (AES) or 02 (3DES).
    #[arg(long, global = true, value_name = "02|03", default_value = "03", value_parser = clap::value_parser!(ScpVersion))]
    pub scp: ScpVersion,
    /// One static key (hex) for ENC, MAC and DEK.
    #[arg(long, global = true, value_name = "HEX", conflicts_with_all = ["enc", "mac", "dek"])]
    pub key: Option<String>,
    /// Static ENC key (hex); needs --mac and --dek.
    #[arg(long, global = true, value_name = "HEX", requires_all = ["mac", "dek"])]
    pub enc: Option<String>,
    /// Static MAC key (hex); needs --enc and --dek.
    #[arg(long, global = true, value_name = "HEX", requires_all = ["enc", "dek"])]
    pub mac: Option<String>,
    /// Static DEK key (hex); needs --enc and --mac.
    #[arg(long, global = true, value_name = "HEX", requires_all = ["enc", "mac"])]
    pub dek: Option<String>,
    /// Key version number for INITIALIZE UPDATE, hex (default: 30 for SCP03, 20 for SCP02; 00 lets the card pick).
    #[arg(long, global = true, value_name = "HEX")]
    pub kvn: Option<String>,
    /// Security level: mac, enc or full (or the P1 in hex: 01 03 11 13 33).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub level: Option<String>,
    /// AID of the security domain to select (hex).
    #[arg(
        long,
        global = true,
        value_name = "AID",
        default_value = "A000000151000000"
    )]
    pub sd: String,
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: GpCmd,
}

#[derive(Subcommand)]
pub enum ContainersCmd {
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
    /// The eUICC: EID, SGP.22 version, SM-DP+/SM-DS addresses, CI key identifiers, and its
    /// certificate chain (EUM and eUICC certificates, ES10b GetCerts).
    #[command(
        after_help = "Verify the chain with the CI certificate `card-emulator init` exported:\n  \
reader-client containers info --json   # each certificate's DER is in chain[].der (hex)\n  \
openssl verify -CAfile card.json.ci.pem -untrusted eum.pem euicc.pem"
    )]
    Info,
    /// Pending SGP.22 notifications (made by enable, disable and delete): list them, or
    /// remove one an SM-DP+ has received (ES10b RemoveNotificationFromList).
    #[command(after_help = "Examples:\n  \
reader-client containers notifications            # SEQ, OPERATION, ICCID, ADDRESS\n  \
reader-client containers notifications --signed   # with each signed notification (DER, hex)\n  \
reader-client containers notifications --remove 3")]
    Notifications {
        /// Remove the notification with this sequence number instead of listing.
        #[arg(long, value_name = "SEQ")]
        remove: Option<u32>,
        /// Also fetch each notification as the eUICC signed it (RetrieveNotificationsList).
        #[arg(long, conflicts_with = "remove")]
        signed: bool,
    },
}

#[derive(Subcommand)]
pub enum GpCmd {
    /// The security domain's AID, card data (GP version, SCP), CPLC and key information.
    Info {
        /// Read in the clear, without opening a secure channel (most cards allow these GET DATA).
        #[arg(long)]
        plain: bool,
    },
    /// GET STATUS: the issuer security domain, load files (packages), then applications and security domains with life cycle states.
    #[command(
        long_about = "GET STATUS (P1 80, 10 or 20, 40), following 6310 continuations: one line per entry.\n  \
ISD: the issuer security domain, with its life cycle (OP_READY, SECURED, ...) and privileges\n  \
PKG: each load file (package, e.g. a loaded WebAssembly applet), LOADED, with its modules\n  \
APP: each application: the containers' ISD-Ps and the installed applets (SELECTABLE, ...),\n       \
with the package it came from and its container (associated security domain)\n\n\
A card with nothing in a scope (6A88) shows no line for it.",
        after_help = "Example:\n  \
reader-client gp status\n  \
reader-client gp status --json"
    )]
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
    /// Load a WebAssembly applet (.wasm, or .wat text) into a container as a package: INSTALL [for load] + LOAD.
    #[command(
        long_about = "Inside the secure channel: INSTALL [for load] (package AID, container's ISD-P AID as the\n\
security domain), then LOAD commands carrying `C4 <length> <module>` in blocks of --block-size\n\
bytes, numbered from 00, the last one flagged. The card checks the module when the last block\n\
arrives (apdu-specs/docs/applets.md): it must export `memory` and `process`, import only from\n\
`se`, and fit the card's [applets] limits (64 KiB by default); nothing is kept otherwise.\n\n\
FILE is a binary WebAssembly module, or WebAssembly text when its name ends in .wat (compiled\n\
here). Then create an instance with `reader-client gp install`.\n\n\
Block size: 239 bytes (the default) is the largest block that fits a short APDU in every\n\
secure channel: with C-DECRYPTION the block is padded to the next multiple of 16 (SCP03) or 8\n\
(SCP02) and the 8-byte C-MAC follows, 240 + 8 = 248 <= 255. Larger blocks (up to 255) only\n\
work at --level mac.",
        after_help = "Examples:\n  \
reader-client gp load counter.wasm --container A0000005591010FFFFFFFF8900001000 --package-aid F0564150504C4554\n  \
reader-client gp --key HEX load counter.wat --container A0000005591010FFFFFFFF8900001000 --package-aid F0564150504C4554"
    )]
    Load {
        /// The applet: a .wasm module, or a .wat text file.
        file: PathBuf,
        /// ISD-P AID of the container that will hold the package (hex; `reader-client containers list` shows them).
        #[arg(long, value_name = "ISDP_AID")]
        container: String,
        /// AID to give the package (load file), hex, 5..16 bytes.
        #[arg(long, value_name = "AID")]
        package_aid: String,
        /// Bytes of the load file per LOAD command (1..255; 239 fits any secure channel level).
        #[arg(long, value_name = "N", default_value_t = 239, value_parser = clap::value_parser!(u16).range(1..=255))]
        block_size: u16,
    },
    /// Create an applet instance from a loaded package: INSTALL [for install and make selectable].
    #[command(
        long_about = "Inside the secure channel: INSTALL [for install and make selectable] (P1 0C) of an\n\
instance of the package's module with its own AID, privileges 00. The applet's `install`\n\
export runs on the card; its status word decides. The instance lives in the package's\n\
container and is selectable (SELECT by --applet-aid) while that container is enabled.\n\n\
--params gives the application-specific install parameters (tag C9; the applet reads them\n\
with se.params); --storage the size of its persistent storage in bytes (EF { C8 }, the\n\
non-volatile memory quota; the card's default, 1024, when omitted).",
        after_help = "Examples:\n  \
reader-client gp install --package-aid F0564150504C4554 --applet-aid F0564150504C455401\n  \
reader-client gp install --package-aid F0564150504C4554 --applet-aid F0564150504C455402 --params 0102 --storage 4096"
    )]
    Install {
        /// The loaded package (load file) AID, hex.
        #[arg(long, value_name = "AID")]
        package_aid: String,
        /// AID of the new applet instance, hex, 5..16 bytes.
        #[arg(long, value_name = "AID")]
        applet_aid: String,
        /// The module in the package, hex (default: the package AID: one module per WebAssembly package).
        #[arg(long, value_name = "AID")]
        module_aid: Option<String>,
        /// Application-specific install parameters (the value of tag C9), hex (default: empty).
        #[arg(long, value_name = "HEX", default_value = "")]
        params: String,
        /// Persistent storage for the instance, in bytes (EF { C8 } quota; default: the card's).
        #[arg(long, value_name = "BYTES")]
        storage: Option<u32>,
    },
    /// Delete an applet instance or a package (DELETE); --related also deletes a package's instances.
    #[command(
        long_about = "Inside the secure channel: DELETE (80 E4 00 00, 4F AID) of an applet instance (with its\n\
storage) or of a package. A package that still has instances is refused (6985) unless\n\
--related (P2 80) deletes them with it.",
        after_help = "Examples:\n  \
reader-client gp delete F0564150504C455401\n  \
reader-client gp delete F0564150504C4554 --related"
    )]
    Delete {
        /// AID of the applet instance or package, hex.
        aid: String,
        /// Also delete what depends on it (a package's instances): P2 80.
        #[arg(long)]
        related: bool,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn gp(args: &[&str]) -> GpArgs {
        let cli = Cli::try_parse_from([&["reader-client", "gp"], args].concat())
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        match cli.cmd {
            Cmd::Gp(a) => *a,
            _ => panic!("not gp"),
        }
    }

    fn refused(args: &[&str]) -> String {
        match Cli::try_parse_from([&["reader-client", "gp"], args].concat()) {
            Ok(_) => panic!("{args:?} parsed"),
            Err(e) => e.to_string(),
        }
    }

    const ISDP: &str = "A0000005591010FFFFFFFF8900001000";
    const PKG: &str = "F0564150504C4554";
    const APP: &str = "F0564150504C455401";

    #[test]
    fn gp_load_takes_a_file_container_package_and_block_size() {
        let a = gp(&["load", "x.wat", "--container", ISDP, "--package-aid", PKG]);
        let GpCmd::Load {
            file,
            container,
            package_aid,
            block_size,
        } = a.action
        else {
            panic!()
        };
        assert_eq!(file, PathBuf::from("x.wat"));
        assert_eq!((container.as_str(), package_aid.as_str()), (ISDP, PKG));
        assert_eq!(block_size, 239);
        // Global options after the subcommand.
        let a = gp(&[
            "load",
            "x.wasm",
            "--container",
            ISDP,
            "--package-aid",
            PKG,
            "--block-size",
            "100",
            "--key",
            "404142434445464748494A4B4C4D4E4F",
            "--json",
        ]);
        assert!(a.json && a.key.is_some());
        assert!(matches!(
            a.action,
            GpCmd::Load {
                block_size: 100,
                ..
            }
        ));
        for bad in ["0", "256"] {
            let e = refused(&[
                "load",
                "x.wasm",
                "--container",
                ISDP,
                "--package-aid",
                PKG,
                "--block-size",
                bad,
            ]);
            assert!(e.contains("--block-size"), "{e}");
        }
        assert!(refused(&["load", "x.wasm", "--package-aid", PKG]).contains("--container"));
        assert!(refused(&["load", "x.wasm", "--container", ISDP]).contains("--package-aid"));
        assert!(refused(&["load", "--container", ISDP, "--package-aid", PKG]).contains("FILE"));
    }

    #[test]
    fn gp_install_defaults_and_options() {
        let a = gp(&["install", "--package-aid", PKG, "--applet-aid", APP]);
        let GpCmd::Install {
            package_aid,
            applet_aid,
            module_aid,
            params,
            storage,
        } = a.action
        else {
            panic!()
        };
        assert_eq!((package_aid.as_str(), applet_aid.as_str()), (PKG, APP));
        assert_eq!((module_aid, params.as_str(), storage), (None, "", None));
        let a = gp(&[
            "install",
            "--package-aid",
            PKG,
            "--applet-aid",
            APP,
            "--module-aid",
            PKG,
            "--params",
            "0102",
            "--storage",
            "4096",
        ]);
        let GpCmd::Install {
            module_aid,
            params,
            storage,
            ..
        } = a.action
        else {
            panic!()
        };
        assert_eq!(module_aid.as_deref(), Some(PKG));
        assert_eq!((params.as_str(), storage), ("0102", Some(4096)));
        assert!(refused(&["install", "--package-aid", PKG]).contains("--applet-aid"));
        assert!(refused(&[
            "install",
            "--package-aid",
            PKG,
            "--applet-aid",
            APP,
            "--storage",
            "lots"
        ])
        .contains("--storage"));
    }

    #[test]
    fn gp_delete_and_status() {
        let a = gp(&["delete", APP]);
        assert!(matches!(a.action, GpCmd::Delete { ref aid, related: false } if aid == APP));
        let a = gp(&["delete", PKG, "--related"]);
        assert!(matches!(a.action, GpCmd::Delete { related: true, .. }));
        assert!(refused(&["delete"]).contains("AID"));
        assert!(matches!(gp(&["status", "--json"]).action, GpCmd::Status));
    }

    #[test]
    fn gp_help_texts_have_examples() {
        for sub in ["load", "install", "delete", "status"] {
            let e = refused(&[sub, "--help"]);
            assert!(e.contains("Example"), "{sub}: {e}");
        }
    }
}
