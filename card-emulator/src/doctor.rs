//! `card-emulator doctor`: checks that pcscd + vpcd can carry a card to PC/SC programs, printing the fix for each failure.
//!
//! The checks run in order, each printing `OK`, `FAIL` (with the exact fix) or `SKIP` (when
//! a check it depends on failed):
//!
//! 1. pcscd is installed;
//! 2. the vsmartcard-vpcd reader configuration is installed (a `/etc/reader.conf.d` entry
//!    whose `LIBPATH` exists, or an `ifd-vpcd.bundle`);
//! 3. pcscd is running (its socket accepts a connection, or its pid file names a live process);
//! 4. the vpcd port `35963 + N` accepts a TCP connection on 127.0.0.1;
//! 5. a GetATR round trip through a real PC/SC connect: doctor serves a throwaway in-memory
//!    card (default profile) on the connection of check 4, waits for pcscd to see it, connects
//!    to `Virtual PCD 00 0N` and compares the ATR; then it unplugs that card. When the slot
//!    already holds a card (a running `card-emulator run`), doctor says so and checks that
//!    card's ATR instead.
//!
//! With `--state FILE`, one more check reads that card's state: `WARN` (not a failure) while
//! a GlobalPlatform key set holds a publicly known test key, with the command that rotates
//! them (the card refuses trust anchors until then).

use card_emulator::inspect;
use card_emulator::store::FileStore;
use card_emulator::vpcd::{self, ServeOptions, DEFAULT_PORT};
use card_emulator::{profile, Card, VirtualCard};
use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use std::ffi::CString;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long pcscd gets to notice the throwaway card (one vpcd poll is 400 ms).
const CARD_APPEAR_TIMEOUT: Duration = Duration::from_secs(6);
/// How long one TCP dial of the vpcd port may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Fail {
        fix: String,
    },
    /// Works, but should be fixed before real use; does not fail the run.
    Warn {
        fix: String,
    },
    Skip,
}

/// One printed line: what was checked, what was found, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub detail: String,
    pub verdict: Verdict,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            detail: detail.into(),
            verdict: Verdict::Ok,
        }
    }
    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            detail: detail.into(),
            verdict: Verdict::Fail { fix: fix.into() },
        }
    }
    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            detail: detail.into(),
            verdict: Verdict::Warn { fix: fix.into() },
        }
    }
    fn skip(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            detail: detail.into(),
            verdict: Verdict::Skip,
        }
    }
    fn passed(&self) -> bool {
        !matches!(self.verdict, Verdict::Fail { .. })
    }
    fn is_ok(&self) -> bool {
        self.verdict == Verdict::Ok
    }

    /// `OK    name: detail`, or `FAIL  name: detail` followed by `      fix: ...`.
    pub fn render(&self) -> String {
        let tag = match self.verdict {
            Verdict::Ok => "OK  ",
            Verdict::Fail { .. } => "FAIL",
            Verdict::Warn { .. } => "WARN",
            Verdict::Skip => "SKIP",
        };
        let mut s = format!("{tag}  {}: {}\n", self.name, self.detail);
        if let Verdict::Fail { fix } | Verdict::Warn { fix } = &self.verdict {
            for (i, line) in fix.lines().enumerate() {
                let lead = if i == 0 { "fix: " } else { "     " };
                s.push_str(&format!("      {lead}{line}\n"));
            }
        }
        s
    }
}

/// Where doctor looks for things (the real system paths by default; tests point elsewhere).
#[derive(Debug, Clone)]
pub struct Paths {
    /// Directories searched for the `pcscd` program (besides `PATH`).
    pub sbin_dirs: Vec<PathBuf>,
    /// pcscd's reader configuration directory (`/etc/reader.conf.d`).
    pub reader_conf_dir: PathBuf,
    /// pcscd's driver directories (for an `ifd-vpcd.bundle`).
    pub driver_dirs: Vec<PathBuf>,
    /// pcscd's client socket.
    pub pcscd_socket: PathBuf,
    /// pcscd's pid file.
    pub pcscd_pid_file: PathBuf,
}

impl Default for Paths {
    fn default() -> Paths {
        // pcsc-lite lets the socket be moved with PCSCLITE_CSOCK_NAME; follow it as clients do.
        let socket = std::env::var_os("PCSCLITE_CSOCK_NAME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/run/pcscd/pcscd.comm"));
        Paths {
            sbin_dirs: ["/usr/sbin", "/usr/local/sbin", "/sbin"]
                .iter()
                .map(PathBuf::from)
                .collect(),
            reader_conf_dir: PathBuf::from("/etc/reader.conf.d"),
            driver_dirs: [
                "/usr/lib/pcsc/drivers",
                "/usr/local/lib/pcsc/drivers",
                "/usr/lib64/pcsc/drivers",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
            pcscd_socket: socket,
            pcscd_pid_file: PathBuf::from("/run/pcscd/pcscd.pid"),
        }
    }
}

/// Check 1: is the `pcscd` program installed?
pub fn check_pcscd_installed(paths: &Paths) -> Check {
    const NAME: &str = "pcscd installed";
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    match on_path
        .iter()
        .chain(paths.sbin_dirs.iter())
        .map(|d| d.join("pcscd"))
        .find(|p| p.is_file())
    {
        Some(p) => Check::ok(NAME, p.display().to_string()),
        None => Check::fail(
            NAME,
            "no pcscd program on PATH or in the sbin directories",
            "apt-get install pcscd",
        ),
    }
}

/// A vpcd reader configuration found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcdConf {
    /// The configuration file (or the bundle directory).
    pub source: PathBuf,
    /// The driver library it loads.
    pub library: PathBuf,
    /// The TCP port of slot 0, when the configuration states one.
    pub port: Option<u16>,
}

/// Parse `0x8C7B` or `35963`.
fn parse_port(text: &str) -> Option<u16> {
    let t = text.trim().trim_matches('"');
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// The vpcd entry of one reader.conf file (`LIBPATH .../libifdvpcd.so`, `CHANNELID 0x8C7B`
/// or `DEVICENAME /dev/null:0x8C7B`); `None` when the file configures another driver.
pub fn parse_reader_conf(text: &str) -> Option<(PathBuf, Option<u16>)> {
    let mut library = None;
    let mut channel = None;
    let mut device_port = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(2, char::is_whitespace);
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match key.to_ascii_uppercase().as_str() {
            "LIBPATH" if value.contains("vpcd") => library = Some(PathBuf::from(value)),
            "CHANNELID" => channel = parse_port(value),
            "DEVICENAME" => device_port = value.rsplit_once(':').and_then(|(_, p)| parse_port(p)),
            _ => {}
        }
    }
    library.map(|l| (l, channel.or(device_port)))
}

/// Every vpcd configuration installed: reader.conf entries and `ifd-vpcd.bundle` directories.
pub fn find_vpcd_confs(paths: &Paths) -> Vec<VpcdConf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&paths.reader_conf_dir) {
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            if let Some((library, port)) = parse_reader_conf(&text) {
                found.push(VpcdConf {
                    source: f,
                    library,
                    port,
                });
            }
        }
    }
    for d in &paths.driver_dirs {
        let bundle = d.join("ifd-vpcd.bundle");
        if bundle.is_dir() {
            found.push(VpcdConf {
                source: bundle.clone(),
                library: bundle,
                port: None,
            });
        }
    }
    found
}

const RESTART_PCSCD: &str =
    "then restart pcscd so it loads the driver: `systemctl restart pcscd`, \
or stop your `pcscd --foreground` and start it again";

/// Check 2: is vsmartcard-vpcd's reader configuration installed, and does it serve `port`?
pub fn check_vpcd_conf(paths: &Paths, slot: u16, port: u16) -> Check {
    const NAME: &str = "vsmartcard-vpcd reader configuration";
    let confs = find_vpcd_confs(paths);
    let fix_install = format!("apt-get install vsmartcard-vpcd\n{RESTART_PCSCD}");
    let Some(conf) = confs.iter().find(|c| c.library.exists()) else {
        return match confs.first() {
            Some(c) => Check::fail(
                NAME,
                format!(
                    "{} names the driver {}, which does not exist",
                    c.source.display(),
                    c.library.display()
                ),
                format!("apt-get install --reinstall vsmartcard-vpcd\n{RESTART_PCSCD}"),
            ),
            None => Check::fail(
                NAME,
                format!(
                    "no vpcd entry in {} and no ifd-vpcd.bundle in the pcscd driver directories",
                    paths.reader_conf_dir.display()
                ),
                fix_install,
            ),
        };
    };
    let base = conf.port.unwrap_or(DEFAULT_PORT);
    if base.checked_add(slot) != Some(port) {
        return Check::fail(
            NAME,
            format!(
                "{} makes vpcd listen on port {base} (+ slot), not on {DEFAULT_PORT}",
                conf.source.display()
            ),
            format!(
                "run the card with `card-emulator run --vpcd 127.0.0.1:{}`, or set CHANNELID 0x{DEFAULT_PORT:04X} in {} and restart pcscd",
                u32::from(base) + u32::from(slot),
                conf.source.display()
            ),
        );
    }
    Check::ok(
        NAME,
        format!(
            "{} -> {} (slot 0 on port {base})",
            conf.source.display(),
            conf.library.display()
        ),
    )
}

fn process_alive(pid_file: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    Path::new("/proc")
        .join(pid.to_string())
        .exists()
        .then_some(pid)
}

/// Check 3: does pcscd answer on its socket (or does its pid file name a live process)?
pub fn check_pcscd_running(paths: &Paths) -> Check {
    const NAME: &str = "pcscd running";
    let sock = &paths.pcscd_socket;
    match UnixStream::connect(sock) {
        Ok(_) => Check::ok(NAME, format!("{} accepts connections", sock.display())),
        Err(e) => {
            if let Some(pid) = process_alive(&paths.pcscd_pid_file) {
                return Check::ok(
                    NAME,
                    format!(
                        "process {pid} (from {}), although {} refused a connection: {e}",
                        paths.pcscd_pid_file.display(),
                        sock.display()
                    ),
                );
            }
            let why = if sock.exists() {
                format!(
                    "{} exists but refuses connections ({e}): a stale socket",
                    sock.display()
                )
            } else {
                format!(
                    "no {} and no live pid in {}",
                    sock.display(),
                    paths.pcscd_pid_file.display()
                )
            };
            Check::fail(
                NAME,
                why,
                "start it: `pcscd --foreground &` (as root), or `systemctl start pcscd`",
            )
        }
    }
}

/// The pcscd reader name of vpcd slot `slot`, as Debian's pcscd lists it.
pub fn reader_name(slot: u16) -> String {
    format!("Virtual PCD 00 {slot:02}")
}

/// The reader for `slot` among `names`: the exact Debian name, else any `Virtual PCD XX NN`
/// whose slot number is `slot` (another reader configuration loaded first shifts `XX`).
pub fn pick_reader(names: &[String], slot: u16) -> Option<String> {
    let exact = reader_name(slot);
    if let Some(n) = names.iter().find(|n| **n == exact) {
        return Some(n.clone());
    }
    let suffix = format!(" {slot:02}");
    names
        .iter()
        .find(|n| n.starts_with("Virtual PCD") && n.ends_with(&suffix))
        .cloned()
}

/// What pcscd says about the slot's reader.
struct SlotState {
    reader: String,
    card_atr: Option<Vec<u8>>,
}

fn pcsc_err(op: &str, e: pcsc::Error) -> String {
    format!("{op}: {e} ({:#010X})", e as u32)
}

fn reader_state(ctx: &Context, reader: &str) -> Result<(Option<Vec<u8>>, ReaderState), String> {
    let cname = CString::new(reader).map_err(|_| format!("bad reader name {reader:?}"))?;
    let mut rs = [ReaderState::new(cname, State::UNAWARE)];
    ctx.get_status_change(Duration::ZERO, &mut rs)
        .map_err(|e| pcsc_err("SCardGetStatusChange", e))?;
    let [s] = rs;
    let ev = s.event_state();
    let atr = (ev.contains(State::PRESENT) && !ev.contains(State::MUTE)).then(|| s.atr().to_vec());
    Ok((atr, s))
}

fn slot_state(ctx: &Context, slot: u16) -> Result<SlotState, String> {
    let names: Vec<String> = match ctx.list_readers_owned() {
        Ok(n) => n
            .into_iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect(),
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(pcsc_err("SCardListReaders", e)),
    };
    let reader = pick_reader(&names, slot).ok_or_else(|| {
        format!(
            "pcscd lists no reader {:?} (readers: {})",
            reader_name(slot),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )
    })?;
    let (card_atr, _) = reader_state(ctx, &reader)?;
    Ok(SlotState { reader, card_atr })
}

/// Wait until `reader` holds a card; its ATR as pcscd saw it.
fn wait_for_card(ctx: &Context, reader: &str, timeout: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let (atr, s) = reader_state(ctx, reader)?;
        if let Some(atr) = atr {
            return Ok(atr);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(format!("no card appeared in {reader:?} within {timeout:?}"));
        }
        let mut rs = [s];
        rs[0].sync_current_state();
        match ctx.get_status_change(deadline - now, &mut rs) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(pcsc_err("SCardGetStatusChange", e)),
        }
    }
}

/// Connect to the card in `reader` (shared) and read its ATR from the connection. T=0 first:
/// asking for "T=0 or T=1" lets pcscd choose T=1 for a card that offers both, and it keeps
/// that until the card is reset, locking out T=0-only clients; doctor must not do that.
fn connect_atr(ctx: &Context, reader: &str) -> Result<Vec<u8>, String> {
    let cname = CString::new(reader).map_err(|_| format!("bad reader name {reader:?}"))?;
    let card = match ctx.connect(&cname, ShareMode::Shared, Protocols::T0) {
        Err(pcsc::Error::ProtoMismatch) => {
            ctx.connect(&cname, ShareMode::Shared, Protocols::T0 | Protocols::T1)
        }
        other => other,
    }
    .map_err(|e| pcsc_err("SCardConnect", e))?;
    let atr = card
        .status2_owned()
        .map_err(|e| pcsc_err("SCardStatus", e))?
        .atr()
        .to_vec();
    // Leave the card as it is: it may be someone else's running card.
    let _ = card.disconnect(Disposition::LeaveCard);
    Ok(atr)
}

/// Whether `atr` offers T=0 (ISO 7816-3 §8.2.3: implicit without TD1, else named by a TDi).
pub fn offers_t0(atr: &[u8]) -> bool {
    let Some(&t0) = atr.get(1) else {
        return false;
    };
    let (mut y, mut at, mut first) = (t0 >> 4, 2usize, true);
    loop {
        // TAi, TBi, TCi present per bits 5..7 of Y; TDi per bit 8.
        at += (y & 0x7).count_ones() as usize;
        if y & 0x8 == 0 {
            return first; // no TD1 at all: T=0 only
        }
        let Some(&td) = atr.get(at) else {
            return false;
        };
        if td & 0x0F == 0 {
            return true;
        }
        (y, at, first) = (td >> 4, at + 1, false);
    }
}

/// Whether a T=0-only connection (as lpac makes) is refused with a protocol mismatch.
fn t0_refused(ctx: &Context, reader: &str) -> bool {
    let Ok(cname) = CString::new(reader) else {
        return false;
    };
    match ctx.connect(&cname, ShareMode::Shared, Protocols::T0) {
        Ok(card) => {
            let _ = card.disconnect(Disposition::LeaveCard);
            false
        }
        Err(e) => e == pcsc::Error::ProtoMismatch,
    }
}

/// A throwaway in-memory card (default profile) served over one vpcd connection on a thread.
struct ThrowawayCard {
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    atr: Vec<u8>,
}

impl ThrowawayCard {
    fn serve(stream: TcpStream) -> Result<ThrowawayCard, String> {
        let shutdown = Arc::new(AtomicBool::new(false));
        let flag = shutdown.clone();
        let (tx, rx) = mpsc::channel();
        let opts = ServeOptions {
            poll_interval: Duration::from_millis(50),
            reconnect: false,
            ..ServeOptions::default()
        };
        let thread = std::thread::Builder::new()
            .name("doctor-card".into())
            .spawn(move || {
                let state = match profile::build(profile::DEFAULT_PROFILE) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(format!("the built-in profile does not build: {e}")));
                        return;
                    }
                };
                let mut card = Card::in_memory(state);
                let _ = tx.send(Ok(card.atr()));
                let _ = vpcd::serve_stream(&mut card, stream, &opts, &flag);
            })
            .map_err(|e| format!("cannot start the card thread: {e}"))?;
        let mut me = ThrowawayCard {
            shutdown,
            thread: Some(thread),
            atr: Vec::new(),
        };
        me.atr = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the card thread did not start".to_string())??;
        Ok(me)
    }
}

impl Drop for ThrowawayCard {
    /// Unplug the card: stop serving and close the connection (vpcd then reports it removed).
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    apdu_specs::hexfmt::upper(bytes)
}

/// Checks 4 and 5, which talk to pcscd: the vpcd port and the PC/SC ATR round trip.
fn check_port_and_atr(slot: u16, port: u16) -> (Check, Check) {
    const PORT: &str = "vpcd port";
    const ATR: &str = "PC/SC connect and ATR";
    let port_name = format!("127.0.0.1:{port}");
    let port_fix = format!(
        "is pcscd running with vsmartcard-vpcd loaded (restart pcscd after installing it)? \
is a firewall blocking 127.0.0.1 port {port}? (`ss -ltnp | grep {port}` shows who listens)"
    );
    let ctx = match Context::establish(Scope::User) {
        Ok(c) => c,
        Err(e) => {
            return (
                Check::skip(
                    PORT,
                    format!("{port_name} not tried: pcscd is not reachable"),
                ),
                Check::fail(
                    ATR,
                    pcsc_err("SCardEstablishContext", e),
                    "start pcscd: `pcscd --foreground &` (as root), or `systemctl start pcscd`",
                ),
            );
        }
    };
    let slot_state = match slot_state(&ctx, slot) {
        Ok(s) => s,
        Err(e) => {
            return (
                Check::skip(PORT, format!("{port_name} not tried: {e}")),
                Check::fail(
                    ATR,
                    e,
                    format!(
                        "apt-get install vsmartcard-vpcd\n{RESTART_PCSCD}\n(vpcd serves slots 0 and 1; use --slot 0 or --slot 1)"
                    ),
                ),
            );
        }
    };
    let reader = slot_state.reader;

    // The slot is taken (a running `card-emulator run`, vicc...): check that card instead.
    if let Some(seen) = slot_state.card_atr {
        let port_check = Check::ok(
            PORT,
            format!(
                "{port_name} is in use by the card already in {reader:?} (slot taken; that is fine)"
            ),
        );
        let atr_check = match connect_atr(&ctx, &reader) {
            Ok(atr) if offers_t0(&atr) && t0_refused(&ctx, &reader) => Check::warn(
                ATR,
                format!(
                    "{reader:?} holds a card (ATR {}) that pcscd keeps in T=1: an earlier \
program negotiated T=1, so T=0-only clients (lpac, pySim-shell) fail with \
SCARD_E_PROTO_MISMATCH (8010000F) until the card is reset",
                    hex(&atr)
                ),
                "reset the card: restart its `card-emulator run` (or unplug and plug it); for \
good, personalize it with `protocols = [\"T=0\"]` (the default profile's choice, as \
real eUICCs) so that no program can leave it in T=1",
            ),
            Ok(atr) => Check::ok(
                ATR,
                format!(
                    "{reader:?} holds a card already (a running `card-emulator run`?); its ATR is {}",
                    hex(&atr)
                ),
            ),
            Err(e) => Check::fail(
                ATR,
                format!(
                    "{reader:?} holds a card (ATR {} per pcscd) but connecting failed: {e}",
                    hex(&seen)
                ),
                "another program may hold the card exclusively: close it, or unplug that card \
(stop its `card-emulator run`) and run doctor again",
            ),
        };
        return (port_check, atr_check);
    }

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = match TcpStream::connect_timeout(&addr, DIAL_TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            return (
                Check::fail(PORT, format!("{port_name}: {e}"), port_fix),
                Check::skip(ATR, "not tried: the vpcd port did not accept a connection"),
            )
        }
    };
    let port_check = Check::ok(PORT, format!("{port_name} accepts a connection"));
    let card = match ThrowawayCard::serve(stream) {
        Ok(c) => c,
        Err(e) => {
            return (
                port_check,
                Check::fail(ATR, e, "report this as a bug in card-emulator"),
            )
        }
    };
    let result =
        wait_for_card(&ctx, &reader, CARD_APPEAR_TIMEOUT).and_then(|_| connect_atr(&ctx, &reader));
    let want = card.atr.clone();
    drop(card);
    let atr_check = match result {
        Ok(atr) if atr == want => Check::ok(
            ATR,
            format!(
                "a throwaway card in {reader:?} answered ATR {} through pcscd (then unplugged)",
                hex(&atr)
            ),
        ),
        Ok(atr) => Check::fail(
            ATR,
            format!(
                "{reader:?} reported ATR {} but the throwaway card sent {}",
                hex(&atr),
                hex(&want)
            ),
            "another card may have connected to the slot at the same time: stop it and run doctor again",
        ),
        Err(e) => Check::fail(
            ATR,
            e,
            format!(
                "pcscd accepted the connection on {port_name} but did not present the card: \
is that port really vpcd's (`ss -ltnp | grep {port}`)? restart pcscd and run doctor again"
            ),
        ),
    };
    (port_check, atr_check)
}

/// Check 6 (with `--state`): the card's GlobalPlatform key sets. A `WARN` while one holds a
/// publicly known test key: any terminal can then administer the card, and it refuses trust
/// anchors (DGI A001, 6985) until every set is secret.
pub fn check_gp_keys(state: &Path) -> Check {
    const NAME: &str = "GlobalPlatform keys";
    const FIX: &str =
        "give the state file of your card (`card-emulator init --state FILE` creates one)";
    let card = match FileStore::open(state).and_then(|s| s.inspect()) {
        Ok((card, _)) => card,
        Err(e) => {
            let detail = format!("cannot read the card state {}: {e}", state.display());
            return Check::fail(NAME, detail, FIX);
        }
    };
    let public = inspect::public_key_sets(&card);
    if public.is_empty() {
        return Check::ok(
            NAME,
            format!("{}: every key set is secret", state.display()),
        );
    }
    Check::warn(
        NAME,
        format!(
            "{}: {} still use publicly known test keys; any terminal can administer the card, \
and it refuses trust anchors (DGI A001, 6985) until every key set is secret",
            state.display(),
            public.join(" and ")
        ),
        format!(
            "with the card running (`card-emulator run --state {}`), rotate every key set:\n\
{}\n\
and keep that key: it is the card's admin key from then on (`reader-client gp --key HEX ...`)",
            state.display(),
            inspect::ROTATE_KEYS
        ),
    )
}

/// Run every check for `slot` (and the keys of the card in `state`, when given), printing
/// each as it completes; `Ok(true)` when none failed.
pub fn run(
    slot: u16,
    state: Option<&Path>,
    paths: &Paths,
    out: &mut dyn Write,
) -> io::Result<bool> {
    let Some(port) = DEFAULT_PORT.checked_add(slot) else {
        writeln!(
            out,
            "FAIL  slot {slot}: port {DEFAULT_PORT} + {slot} does not fit in 16 bits"
        )?;
        return Ok(false);
    };
    writeln!(
        out,
        "card-emulator doctor: slot {slot} (reader \"{}\", vpcd port {port})",
        reader_name(slot)
    )?;
    let mut checks = Vec::new();
    let mut emit = |c: Check, out: &mut dyn Write| -> io::Result<()> {
        out.write_all(c.render().as_bytes())?;
        out.flush()?;
        checks.push(c);
        Ok(())
    };
    let installed = check_pcscd_installed(paths);
    emit(installed, out)?;
    emit(check_vpcd_conf(paths, slot, port), out)?;
    let running = check_pcscd_running(paths);
    let up = running.is_ok();
    emit(running, out)?;
    if up {
        let (p, a) = check_port_and_atr(slot, port);
        emit(p, out)?;
        emit(a, out)?;
    } else {
        emit(
            Check::skip(
                "vpcd port",
                format!("127.0.0.1:{port} not tried: pcscd is not running"),
            ),
            out,
        )?;
        emit(
            Check::skip("PC/SC connect and ATR", "not tried: pcscd is not running"),
            out,
        )?;
    }
    if let Some(state) = state {
        emit(check_gp_keys(state), out)?;
    }
    let failed = checks.iter().filter(|c| !c.passed()).count();
    let warned = checks
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Warn { .. }))
        .count();
    if failed == 0 {
        writeln!(
            out,
            "all checks passed: PC/SC programs will see `card-emulator run --slot {slot}`"
        )?;
        if warned > 0 {
            writeln!(
                out,
                "{warned} warning(s): see the fix under each WARN above"
            )?;
        }
    } else {
        writeln!(
            out,
            "{failed} check(s) failed; apply the fixes above and run `card-emulator doctor` again"
        )?;
    }
    Ok(failed == 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn offers_t0_reads_the_protocols_of_the_atr() {
        assert!(super::offers_t0(&[0x3B, 0x00])); // no TD1: T=0 only
        assert!(super::offers_t0(&card_emulator::atr::build(b"abc", &[0])));
        assert!(super::offers_t0(&card_emulator::atr::build(
            b"abc",
            &[0, 1]
        )));
        assert!(!super::offers_t0(&card_emulator::atr::build(b"abc", &[1])));
        // TA1 and TD1 (T=1), TD2 (T=0... not valid order, but read as offered).
        assert!(super::offers_t0(&[0x3B, 0x90, 0x11, 0x81, 0x00]));
        assert!(!super::offers_t0(&[0x3B]));
        assert!(!super::offers_t0(&[0x3B, 0x80])); // TD1 announced but missing
    }

    use super::*;

    fn paths_in(dir: &Path) -> Paths {
        Paths {
            sbin_dirs: vec![dir.join("sbin")],
            reader_conf_dir: dir.join("reader.conf.d"),
            driver_dirs: vec![dir.join("drivers")],
            pcscd_socket: dir.join("pcscd.comm"),
            pcscd_pid_file: dir.join("pcscd.pid"),
        }
    }

    const DEBIAN_CONF: &str = "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME   /dev/null:0x8C7B\n\
LIBPATH      @LIB@\nCHANNELID    0x8C7B\n";

    #[test]
    fn reader_conf_parsing_finds_the_vpcd_library_and_port() {
        let (lib, port) =
            parse_reader_conf(&DEBIAN_CONF.replace("@LIB@", "/x/libifdvpcd.so")).unwrap();
        assert_eq!(lib, PathBuf::from("/x/libifdvpcd.so"));
        assert_eq!(port, Some(35963));
        // DEVICENAME alone gives the port too; another driver's file is not vpcd's.
        let t = "LIBPATH /x/libifdvpcd.so\nDEVICENAME /dev/null:35964\n";
        assert_eq!(parse_reader_conf(t).unwrap().1, Some(35964));
        assert_eq!(
            parse_reader_conf("LIBPATH /x/libccidtwin.so\nCHANNELID 1\n"),
            None
        );
        assert_eq!(parse_reader_conf("# LIBPATH /x/libifdvpcd.so\n"), None);
    }

    #[test]
    fn vpcd_conf_check_fails_with_the_install_fix_then_passes_once_installed() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths_in(dir.path());
        let c = check_vpcd_conf(&p, 0, 35963);
        assert!(!c.passed());
        assert!(
            c.render().contains("apt-get install vsmartcard-vpcd"),
            "{}",
            c.render()
        );
        assert!(c.render().contains("restart pcscd"), "{}", c.render());

        std::fs::create_dir_all(&p.reader_conf_dir).unwrap();
        let lib = dir.path().join("libifdvpcd.so");
        let conf = p.reader_conf_dir.join("vpcd");
        std::fs::write(
            &conf,
            DEBIAN_CONF.replace("@LIB@", &lib.display().to_string()),
        )
        .unwrap();
        let c = check_vpcd_conf(&p, 0, 35963);
        assert!(c.render().contains("does not exist"), "{}", c.render());
        std::fs::write(&lib, b"").unwrap();
        let c = check_vpcd_conf(&p, 1, 35964);
        assert!(c.is_ok(), "{}", c.render());
        // A configuration on another port: --slot cannot reach it.
        std::fs::write(
            &conf,
            DEBIAN_CONF
                .replace("@LIB@", &lib.display().to_string())
                .replace("0x8C7B", "40000"),
        )
        .unwrap();
        let c = check_vpcd_conf(&p, 0, 35963);
        assert!(
            c.render().contains("--vpcd 127.0.0.1:40000"),
            "{}",
            c.render()
        );
    }

    #[test]
    fn pcscd_checks_say_how_to_install_and_start_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths_in(dir.path());
        let c = check_pcscd_running(&p);
        assert!(!c.passed());
        assert!(
            c.render().contains("pcscd --foreground &"),
            "{}",
            c.render()
        );
        assert!(
            c.render().contains("systemctl start pcscd"),
            "{}",
            c.render()
        );
        // A listening socket counts as running.
        let _l = std::os::unix::net::UnixListener::bind(&p.pcscd_socket).unwrap();
        assert!(check_pcscd_running(&p).is_ok());

        std::fs::create_dir_all(&p.sbin_dirs[0]).unwrap();
        let installed = check_pcscd_installed(&p);
        if !installed.is_ok() {
            assert!(installed.render().contains("apt-get install pcscd"));
        }
        std::fs::write(p.sbin_dirs[0].join("pcscd"), b"").unwrap();
        assert!(check_pcscd_installed(&p).is_ok());
    }

    #[test]
    fn a_live_pid_file_counts_as_running() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths_in(dir.path());
        std::fs::write(&p.pcscd_pid_file, format!("{}\n", std::process::id())).unwrap();
        assert!(check_pcscd_running(&p).is_ok());
    }

    #[test]
    fn the_slot_reader_is_found_by_its_debian_name_or_slot_suffix() {
        let names = vec![
            "Virtual PCD 00 00".to_string(),
            "Virtual PCD 00 01".to_string(),
        ];
        assert_eq!(pick_reader(&names, 1).as_deref(), Some("Virtual PCD 00 01"));
        let shifted = vec![
            "CCID twin 00 00".to_string(),
            "Virtual PCD 01 00".to_string(),
        ];
        assert_eq!(
            pick_reader(&shifted, 0).as_deref(),
            Some("Virtual PCD 01 00")
        );
        assert_eq!(pick_reader(&shifted, 1), None);
    }

    #[test]
    fn test_keys_are_warned_about_with_the_command_that_rotates_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let mut state = profile::build(profile::DEFAULT_PROFILE).unwrap();
        FileStore::create(&path, &state, false).unwrap();
        let c = check_gp_keys(&path);
        assert!(c.passed(), "a warning must not fail doctor");
        let text = c.render();
        assert!(text.starts_with("WARN  GlobalPlatform keys: "), "{text}");
        assert!(
            text.contains("KVN 30 (SCP03) and KVN 20 (SCP02) still use publicly known test keys"),
            "{text}"
        );
        assert!(text.contains("fix: with the card running"), "{text}");
        assert!(
            text.contains("reader-client gp put-key --new-key"),
            "{text}"
        );
        // Every set secret: OK.
        for (i, k) in state.gp.key_sets.iter_mut().enumerate() {
            let b = 0x21 + i as u8 * 3;
            (k.enc, k.mac, k.dek) = (vec![b; 16], vec![b + 1; 16], vec![b + 2; 16]);
        }
        FileStore::create(&path, &state, true).unwrap();
        assert!(
            check_gp_keys(&path).is_ok(),
            "{}",
            check_gp_keys(&path).render()
        );
        // A missing file is a failure that says what to give.
        let c = check_gp_keys(&dir.path().join("none.json"));
        assert!(
            !c.passed() && c.render().contains("card-emulator init"),
            "{}",
            c.render()
        );
    }

    #[test]
    fn failed_checks_render_their_fix_under_them() {
        let c = Check::fail("x", "broken", "do this\nthen that");
        assert_eq!(
            c.render(),
            "FAIL  x: broken\n      fix: do this\n           then that\n"
        );
        assert_eq!(Check::ok("y", "fine").render(), "OK    y: fine\n");
    }
}
