//! `reader-client demo`: starts a server, a portal and a card, provisions trust and runs the whole seed-1 flow for every container, printing a transcript.
//!
//! Trust is provisioned the way an owner must: the card's GlobalPlatform key sets are rotated
//! from the public test keys to random keys (kept in [`GP_KEYS_FILE`], mode 0600, in the
//! working directory), and the server key goes in under those.
//!
//! The card runs behind pcscd + vpcd (`card-emulator run --slot N`) when pcscd is usable:
//! an already running pcscd with a free vpcd reader, or one started here (root needed);
//! otherwise in-process. Every process started here is stopped by its PID when [`run`]
//! returns, on success or failure.

use crate::auth_client;
use crate::es10_client::{Es10Client, Outcome};
use crate::flow::{self, FlowError};
use crate::gp;
use crate::pcsc_reader::Pcsc;
use crate::portal_client::PortalClient;
use crate::scp::{Scp, ScpOptions, ScpVersion};
use crate::Transport;
use apdu_specs::auth::{Call, TrustAnchor};
use apdu_specs::es10::{ProfileId, ProfileState};
use apdu_specs::hexfmt;
use secure_channel::{SecurityLevel, StaticKeys};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The service the demo configures.
pub const SERVICE: &str = "demo";
/// The container PIN of the default profile.
pub const DEFAULT_PIN: &str = "1234";
/// How long a started process gets to say it is listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the card gets to appear in its vpcd reader.
pub const CARD_TIMEOUT: Duration = Duration::from_secs(15);
/// Where Debian's vsmartcard-vpcd installs its reader configuration.
pub const VPCD_READER_CONF: &str = "/etc/reader.conf.d/vpcd";
/// The file (in the demo's working directory, mode 0600) that keeps the GlobalPlatform keys
/// the demo rotates the card to.
pub const GP_KEYS_FILE: &str = "gp-keys.json";

/// Which card link the demo uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardMode {
    /// pcscd + vpcd when usable, in-process otherwise.
    Auto,
    /// pcscd + vpcd, or fail.
    Pcsc,
    /// The card inside this process.
    InProcess,
}

/// What the demo needs to know.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Directory holding `server`, `portal` and `card-emulator` (normally beside this binary).
    pub bin_dir: PathBuf,
    pub mode: CardMode,
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{what}: {reason}")]
    Setup { what: String, reason: String },
    #[error("container {iccid}: {source}")]
    Flow {
        iccid: String,
        #[source]
        source: Box<FlowError>,
    },
    #[error("{0}")]
    Card(String),
    #[error("writing the transcript: {0}")]
    Output(#[from] std::io::Error),
}

fn setup(what: impl Into<String>) -> impl FnOnce(String) -> DemoError {
    let what = what.into();
    move |reason| DemoError::Setup { what, reason }
}

fn card_err(what: &str) -> impl Fn(&dyn std::fmt::Display) -> DemoError + '_ {
    move |e| DemoError::Card(format!("{what}: {e}"))
}

/// A child process, stopped by its PID (SIGTERM, then SIGKILL after a grace) when dropped.
pub struct Managed {
    child: Child,
    name: String,
}

impl Managed {
    /// Start `cmd` with stdout piped; return once a stdout line contains `marker`, with that line.
    pub fn start(
        mut cmd: Command,
        name: &str,
        marker: &str,
        timeout: Duration,
    ) -> Result<(Managed, String), DemoError> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| setup(format!("starting {name}"))(e.to_string()))?;
        let stdout = child.stdout.take();
        let me = Managed {
            child,
            name: name.to_string(),
        };
        let Some(stdout) = stdout else {
            return Err(setup(format!("starting {name}"))("no stdout".into()));
        };
        let (tx, rx) = mpsc::channel();
        let marker = marker.to_string();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut sent = false;
            for line in lines.by_ref().map_while(Result::ok) {
                if !sent && line.contains(&marker) {
                    let _ = tx.send(line);
                    sent = true;
                }
            }
        });
        match rx.recv_timeout(timeout) {
            Ok(line) => Ok((me, line)),
            Err(_) => Err(setup(format!("starting {name}"))(format!(
                "it did not report `{}` within {timeout:?} (run it by hand to see why)",
                marker_hint(name)
            ))),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM by PID, wait up to 5 s, then SIGKILL.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn marker_hint(name: &str) -> &str {
    match name {
        "server" => "server listening on",
        "portal" => "portal listening on",
        _ => "ready",
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Managed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {})", self.name, self.child.id())
    }
}

/// Run a program to completion; its stdout, or its stderr as the error.
fn output(bin: &Path, args: &[&std::ffi::OsStr]) -> Result<String, DemoError> {
    let shown = format!(
        "{} {}",
        bin.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| setup(shown.clone())(e.to_string()))?;
    if !out.status.success() {
        return Err(setup(shown)(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The URL in a `... listening on http://ADDR` line.
fn url_of(line: &str) -> String {
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_default()
        .to_string()
}

fn bin(dir: &Path, name: &str) -> Result<PathBuf, DemoError> {
    let p = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if p.is_file() {
        Ok(p)
    } else {
        Err(setup(format!("finding {name}"))(format!(
            "{} does not exist; build the workspace binaries first: cargo build --bins",
            p.display()
        )))
    }
}

/// Whether this process runs as root (from /proc, without libc).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The card link: a vpcd reader of pcscd, or the card in this process.
enum Link {
    Pcsc {
        ctx: Pcsc,
        reader: String,
        /// Kept for their PIDs: stopped when the link is dropped (card first).
        _card: Managed,
        _pcscd: Option<Managed>,
    },
    #[cfg(feature = "in-process")]
    InProcess(Box<crate::InProcess<card_emulator::Card>>),
}

impl Link {
    /// A new card connection (PC/SC: a new SCardConnect; in-process: a warm reset).
    fn connect(&mut self) -> Result<Box<dyn Transport + '_>, DemoError> {
        match self {
            Link::Pcsc { ctx, reader, .. } => Ok(Box::new(
                ctx.connect(reader)
                    .map_err(|e| card_err("connecting to the card")(&e))?,
            )),
            #[cfg(feature = "in-process")]
            Link::InProcess(c) => {
                c.reset().map_err(|e| card_err("resetting the card")(&e))?;
                Ok(Box::new(c.as_mut()))
            }
        }
    }
}

/// A free vpcd reader of a running pcscd: (context, reader name, slot).
fn free_vpcd_reader() -> Result<(Pcsc, String, u16), String> {
    let ctx = Pcsc::establish().map_err(|e| e.to_string())?;
    let readers = ctx.readers().map_err(|e| e.to_string())?;
    let free = readers
        .iter()
        .filter(|r| !r.card_present)
        .find_map(|r| {
            let slot = r.name.strip_prefix("Virtual PCD 00 ")?;
            let slot: u16 = slot.get(..2)?.parse().ok()?;
            Some((r.name.clone(), slot))
        })
        .ok_or_else(|| "pcscd lists no free vpcd reader (Virtual PCD 00 0N)".to_string())?;
    Ok((ctx, free.0, free.1))
}

/// Start `card-emulator run --slot N` and wait until pcscd shows the card.
fn pcsc_link(ce: &Path, state: &Path, pcscd: Option<Managed>) -> Result<(Link, String), String> {
    let (ctx, reader, slot) = free_vpcd_reader()?;
    let mut cmd = Command::new(ce);
    cmd.args(["run", "--slot", &slot.to_string(), "--state"])
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start card-emulator run: {e}"))?;
    let card = Managed {
        child,
        name: "card-emulator".into(),
    };
    ctx.wait_for_card(Some(&reader), CARD_TIMEOUT)
        .map_err(|e| format!("the card did not appear in {reader}: {e}"))?;
    let how = format!(
        "PC/SC reader `{reader}` (pcscd{} + vpcd; card-emulator run --slot {slot}, pid {})",
        match &pcscd {
            Some(p) => format!(" started by the demo, pid {}", p.pid()),
            None => " already running".to_string(),
        },
        card.pid()
    );
    Ok((
        Link::Pcsc {
            ctx,
            reader,
            _card: card,
            _pcscd: pcscd,
        },
        how,
    ))
}

/// Start our own pcscd (root, pcscd and vpcd installed, none running) and wait for its readers.
fn start_pcscd() -> Result<Managed, String> {
    let pcscd = which("pcscd").ok_or("pcscd is not installed")?;
    if !Path::new(VPCD_READER_CONF).exists() {
        return Err("the vpcd reader driver is not installed (vsmartcard-vpcd)".into());
    }
    if !is_root() {
        return Err("starting pcscd needs root".into());
    }
    let child = Command::new(pcscd)
        .arg("--foreground")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start pcscd: {e}"))?;
    let mut p = Managed {
        child,
        name: "pcscd".into(),
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(st)) = p.child.try_wait() {
            return Err(format!("pcscd exited at start ({st})"));
        }
        if let Ok(ctx) = Pcsc::establish() {
            if ctx
                .readers()
                .is_ok_and(|rs| rs.iter().any(|r| r.name.starts_with("Virtual PCD")))
            {
                return Ok(p);
            }
        }
        if Instant::now() >= deadline {
            p.stop();
            return Err("pcscd listed no vpcd reader in time".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The card in this process, on the demo's state file.
#[cfg(feature = "in-process")]
fn in_process_link(state: &Path, why: String) -> Result<(Link, String), DemoError> {
    use card_emulator::store::FileStore;
    use card_emulator::Card;
    let store = FileStore::open(state).map_err(|e| card_err("opening the card state")(&e))?;
    let card = Card::open(Box::new(store)).map_err(|e| card_err("loading the card")(&e))?;
    Ok((
        Link::InProcess(Box::new(crate::InProcess::new(card))),
        format!("in-process card (no PC/SC: {why})"),
    ))
}

#[cfg(not(feature = "in-process"))]
fn in_process_link(_state: &Path, why: String) -> Result<(Link, String), DemoError> {
    Err(DemoError::Card(format!(
        "no in-process card: this reader-client was built without the `in-process` feature, \
         and PC/SC is not usable ({why})"
    )))
}

/// Choose and open the card link.
fn open_link(mode: CardMode, ce: &Path, state: &Path) -> Result<(Link, String), DemoError> {
    let in_process = |why: String| in_process_link(state, why);
    if mode == CardMode::InProcess {
        return in_process("--in-process given".into());
    }
    let attempt = match Pcsc::establish() {
        Ok(_) => pcsc_link(ce, state, None),
        Err(_) => start_pcscd().and_then(|p| pcsc_link(ce, state, Some(p))),
    };
    match (attempt, mode) {
        (Ok(l), _) => Ok(l),
        (Err(e), CardMode::Pcsc) => Err(DemoError::Card(format!("PC/SC is not usable: {e}"))),
        (Err(e), _) => in_process(e),
    }
}

/// A container as the ISD-R lists it.
#[derive(Debug, Clone)]
struct Container {
    iccid: String,
    aid: Vec<u8>,
    enabled: bool,
}

fn list_containers(t: &mut dyn Transport) -> Result<Vec<Container>, DemoError> {
    let mut c = Es10Client::open(t).map_err(|e| card_err("opening the ISD-R over ES10c")(&e))?;
    let list = c
        .list_profiles()
        .map_err(|e| card_err("ES10c ProfileInfoList")(&e))?;
    c.close()
        .map_err(|e| card_err("closing the ES10c channel")(&e))?;
    Ok(list
        .iter()
        .filter_map(|p| {
            Some(Container {
                iccid: p.iccid.map(|i| i.to_string())?,
                aid: p.isdp_aid.as_ref()?.as_bytes().to_vec(),
                enabled: p.state == Some(ProfileState::Enabled),
            })
        })
        .collect())
}

/// The GlobalPlatform keys kept in `path` (`{"enc", "mac", "dek"}` in hex, mode 0600), or
/// fresh random 16-byte keys (they fit SCP03 and SCP02) written there first; `true` when
/// they were created now. A file that others may read is refused.
pub fn load_or_create_gp_keys(path: &Path) -> Result<(StaticKeys, bool), DemoError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let what = format!("the GlobalPlatform keys in {}", path.display());
    let fail = |reason: String| DemoError::Setup {
        what: what.clone(),
        reason,
    };
    if path.exists() {
        let mode = std::fs::metadata(path)
            .map_err(|e| fail(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(fail(format!(
                "the file has mode {:o}: others may read the card's admin keys; chmod 600 it",
                mode & 0o777
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
        let key = |name: &str| -> Result<zeroize::Zeroizing<Vec<u8>>, DemoError> {
            let h = v[name].as_str().unwrap_or_default();
            hexfmt::parse(h)
                .map(zeroize::Zeroizing::new)
                .map_err(|e| fail(format!("\"{name}\" is not a hex key: {e}")))
        };
        let keys = StaticKeys::new(&key("enc")?, &key("mac")?, &key("dek")?)
            .map_err(|e| fail(e.to_string()))?;
        return Ok((keys, false));
    }
    let keys = loop {
        let mut k = Vec::new();
        for _ in 0..3 {
            k.push(zeroize::Zeroizing::new(
                secure_channel::mutual::random_bytes::<16>().map_err(|e| fail(e.to_string()))?,
            ));
        }
        let keys =
            StaticKeys::new(&k[0][..], &k[1][..], &k[2][..]).map_err(|e| fail(e.to_string()))?;
        if !keys.is_publicly_known() {
            break keys;
        }
    };
    let text = zeroize::Zeroizing::new(
        serde_json::json!({
            "enc": hexfmt::upper(keys.enc()),
            "mac": hexfmt::upper(keys.mac()),
            "dek": hexfmt::upper(keys.dek()),
        })
        .to_string(),
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| fail(e.to_string()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| fail(e.to_string()))?;
    Ok((keys, true))
}

/// Seconds since 1970.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Run the demo, writing the transcript to `out`. `Ok` only when every container
/// registered, echoed, was provisioned and its credential read back.
pub fn run(opts: &DemoOptions, out: &mut dyn Write) -> Result<(), DemoError> {
    let started = Instant::now();
    let ce = bin(&opts.bin_dir, "card-emulator")?;
    let server_bin = bin(&opts.bin_dir, "server")?;
    let portal_bin = bin(&opts.bin_dir, "portal")?;
    let dir = tempfile::Builder::new()
        .prefix("vse-demo-")
        .tempdir()
        .map_err(|e| setup("creating a temporary directory")(e.to_string()))?;
    let state = dir.path().join("card.json");
    let ca_file = dir.path().join("card.json.ca.json");
    let data = dir.path().join("server");
    writeln!(
        out,
        "vSE demo: mutual authentication through an untrusted portal (seed document 1)"
    )?;
    writeln!(
        out,
        "working directory {} (removed at the end)",
        dir.path().display()
    )?;

    // The card and its issuer CA.
    output(
        &ce,
        &["init".as_ref(), "--state".as_ref(), state.as_os_str()],
    )?;
    let ca = output(
        &ce,
        &[
            "ca".as_ref(),
            "public-key".as_ref(),
            "--ca".as_ref(),
            ca_file.as_os_str(),
        ],
    )?
    .trim()
    .to_string();
    writeln!(
        out,
        "card: card-emulator init (default profile); issuer CA key {}...",
        &ca[..ca.len().min(16)]
    )?;

    // The server: key, then run with the CA key, the service and the grant.
    let server_key = output(
        &server_bin,
        &["init".as_ref(), "--data".as_ref(), data.as_os_str()],
    )?
    .lines()
    .next()
    .unwrap_or_default()
    .trim()
    .to_string();
    let key_bytes = hexfmt::parse(&server_key)
        .map_err(|e| setup("reading the server's public key")(e.to_string()))?;
    let server_public_key: [u8; 65] = key_bytes.as_slice().try_into().map_err(|_| {
        setup("reading the server's public key")(format!("{} bytes, 65 expected", key_bytes.len()))
    })?;
    let until = now() + 3600;
    let mut cmd = Command::new(&server_bin);
    cmd.args(["run", "--listen", "127.0.0.1:0", "--issuer-ca", &ca])
        .args(["--service", &format!("{SERVICE}=echo,provision")])
        .args(["--grant", &format!("{SERVICE}:*:echo,provision:{until}")])
        .arg("--data")
        .arg(&data);
    let (server, line) = Managed::start(cmd, "server", "listening on", START_TIMEOUT)?;
    let server_url = url_of(&line);
    writeln!(
        out,
        "server: {server_url} (pid {}), service `{SERVICE}` = echo,provision granted to any SE of the CA until {until} (one hour)",
        server.pid()
    )?;
    let mut cmd = Command::new(&portal_bin);
    cmd.args(["run", "--listen", "127.0.0.1:0", "--service"])
        .arg(format!("{SERVICE}={server_url}"));
    let (portal, line) = Managed::start(cmd, "portal", "listening on", START_TIMEOUT)?;
    let portal_url = url_of(&line);
    writeln!(
        out,
        "portal: {portal_url} (pid {}), relays `{SERVICE}` to the server, holds no key",
        portal.pid()
    )?;
    let client =
        PortalClient::new(&portal_url).map_err(|e| setup("the portal URL")(e.to_string()))?;

    let (mut link, how) = open_link(opts.mode, &ce, &state)?;
    writeln!(out, "reader: {how}")?;

    // Keys: the card takes trust anchors only once none of its GlobalPlatform key sets is a
    // public test key, so every set is rotated to secret keys first (kept for a second run).
    let keys_path = dir.path().join(GP_KEYS_FILE);
    let (gp_keys, created) = load_or_create_gp_keys(&keys_path)?;
    // Trust: the server key into every container, in admin mode inside SCP03.
    let containers = {
        let mut t = link.connect()?;
        let containers = list_containers(t.as_mut())?;
        let rotated = gp::rotate_key_sets(
            t.as_mut(),
            &gp::ISD_AID,
            &StaticKeys::gp_default(),
            &gp_keys,
            SecurityLevel::C_DEC_C_MAC,
            None,
        )
        .map_err(|e| card_err("rotating the GlobalPlatform keys")(&e))?;
        writeln!(
            out,
            "keys: every GlobalPlatform key set of the card moved off the public test keys 40..4F (the card takes trust anchors only under secret keys), to {} kept in {} (mode 0600):",
            if created { "fresh random keys" } else { "the keys" },
            keys_path.display()
        )?;
        for r in &rotated {
            let what = match &r.rotation {
                gp::Rotation::Rotated { .. } => "rotated with PUT KEY".to_string(),
                gp::Rotation::AlreadyRotated => "already rotated".to_string(),
                gp::Rotation::Kept { reason } => format!("NOT rotated: {reason}"),
            };
            writeln!(out, "  {}: {what}", r.set)?;
        }
        let public: Vec<String> = rotated
            .iter()
            .filter(|r| r.public)
            .map(|r| r.set.to_string())
            .collect();
        if !public.is_empty() {
            return Err(DemoError::Card(format!(
                "{} still open(s) with the public test keys; the card would refuse the trust anchors",
                public.join(" and ")
            )));
        }
        gp::select(t.as_mut(), &gp::ISD_AID, 0).map_err(|e| card_err("SELECT of the ISD")(&e))?;
        let mut scp = Scp::open(
            t.as_mut(),
            &gp_keys,
            &ScpOptions::new(ScpVersion::Scp03, SecurityLevel::FULL),
        )
        .map_err(|e| card_err("opening SCP03 on the ISD with the rotated keys")(&e))?;
        let anchor = TrustAnchor {
            service_id: SERVICE.to_string(),
            server_public_key,
        };
        for c in &containers {
            gp::install_anchor(&mut scp, &c.aid, &anchor, 0)
                .map_err(|e| card_err("installing the trust anchor")(&e))?;
            writeln!(
                out,
                "trust: server key installed for `{SERVICE}` into container {} (ISD-P {}): SCP03 level 33 with the rotated keys, INSTALL [for personalization] + STORE DATA DGI A001",
                c.iccid,
                hexfmt::upper(&c.aid)
            )?;
        }
        containers
    };
    if containers.is_empty() {
        return Err(DemoError::Card("the card lists no containers".into()));
    }

    for c in &containers {
        writeln!(out)?;
        writeln!(
            out,
            "== container {} (ISD-P {}) ==",
            c.iccid,
            hexfmt::upper(&c.aid)
        )?;
        if !c.enabled {
            let mut t = link.connect()?;
            let mut es10 = Es10Client::open(t.as_mut())
                .map_err(|e| card_err("opening the ISD-R over ES10c")(&e))?;
            let id = ProfileId::IsdpAid(
                apdu_specs::es10::Aid::new(&c.aid).map_err(|e| card_err("the ISD-P AID")(&e))?,
            );
            let o = Outcome::of(
                es10.enable(&id)
                    .map_err(|e| card_err("ES10c EnableProfile")(&e))?,
            );
            es10.close()
                .map_err(|e| card_err("closing the ES10c channel")(&e))?;
            writeln!(out, "  [es10c]  EnableProfile {}: {}", c.iccid, o.name)?;
            if !o.is_ok() {
                return Err(DemoError::Card(format!(
                    "EnableProfile {}: {} ({})",
                    c.iccid,
                    o.name,
                    o.advice()
                )));
            }
        }
        let flow_err = |source| DemoError::Flow {
            iccid: c.iccid.clone(),
            source: Box::new(source),
        };
        let pin = DEFAULT_PIN.as_bytes();
        {
            let mut t = link.connect()?;
            writeln!(out, "  connection 1: register (steps 1-5)")?;
            flow::register(t.as_mut(), &client, SERVICE, pin, out).map_err(flow_err)?;
        }
        let echo = format!("hello from container {}", c.iccid);
        {
            let mut t = link.connect()?;
            writeln!(out, "  connection 2: service `echo` (step 6)")?;
            let call = Call {
                name: "echo".into(),
                data: echo.clone().into_bytes(),
            };
            let served = flow::service(t.as_mut(), &client, SERVICE, &call, Some(pin), out)
                .map_err(flow_err)?;
            if served.result.data != echo.as_bytes() {
                return Err(DemoError::Card("the echo came back different".into()));
            }
        }
        {
            let mut t = link.connect()?;
            writeln!(
                out,
                "  connection 3: service `provision` (step 6), then READ BINARY of the credential"
            )?;
            let call = Call {
                name: "provision".into(),
                data: Vec::new(),
            };
            let served = flow::service(t.as_mut(), &client, SERVICE, &call, Some(pin), out)
                .map_err(flow_err)?;
            match served.credential_ef {
                Some(ef) if ef.iter().any(|b| *b != 0) => {}
                _ => {
                    return Err(DemoError::Card(format!(
                        "EF {:04X} of container {} holds no credential after provision",
                        auth_client::CREDENTIAL_EF,
                        c.iccid
                    )))
                }
            }
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "demo ok: {} container(s) registered, echoed and provisioned through the portal in {:.1} s; stopping the processes started (pids {}, {})",
        containers.len(),
        started.elapsed().as_secs_f64(),
        server.pid(),
        portal.pid()
    )?;
    drop(link);
    drop(portal);
    drop(server);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn gp_keys_are_created_secret_with_mode_0600_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(GP_KEYS_FILE);
        let (keys, created) = load_or_create_gp_keys(&path).unwrap();
        assert!(created && !keys.is_publicly_known());
        assert_eq!(keys.enc().len(), 16, "SCP02 needs 16-byte keys");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, created) = load_or_create_gp_keys(&path).unwrap();
        assert!(!created);
        assert_eq!(
            (again.enc(), again.mac(), again.dek()),
            (keys.enc(), keys.mac(), keys.dek())
        );
        // Readable by others: refused.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create_gp_keys(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}
