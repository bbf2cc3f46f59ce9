//! Harness for end-to-end tests: locating the workspace binaries, starting and stopping them.
//!
//! - [`Pcscd::start`] gives a test the machine's one pcscd: it takes a process-wide lock and
//!   a machine-wide lock file (only one pcscd can run per machine), starts
//!   `pcscd --foreground` and waits until its vpcd readers are listed. Dropping the guard
//!   stops that pcscd by its PID. When pcscd or the vpcd driver is not installed it prints a
//!   loud `SKIPPED` line and returns `None`, so the test can return early.
//! - [`Proc`] is a child process stopped by PID when dropped (never by name).
//! - [`workspace_bin`] finds (and first builds, once per test process) a workspace binary.
//! - [`wait_for_card`] / [`wait_for_no_card`] wait on pcscd events with a deadline.
//! - [`RunningCard`] is the real `card-emulator run --slot N` on a fresh state, plugged in.
#![forbid(unsafe_code)]

use reader_client::pcsc_reader::{Pcsc, ReaderInfo};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long pcscd gets to list its readers after start.
pub const PCSCD_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a card gets to appear in a reader (one vpcd poll is 400 ms; the card backs off up to 1 s).
pub const CARD_TIMEOUT: Duration = Duration::from_secs(15);

/// Print a loud skip notice (visible with `--nocapture` and in the captured output of a test).
pub fn skipped(test: &str, reason: &str) {
    let line = format!("\n******** SKIPPED {test}: {reason} ********\n");
    println!("{line}");
    eprintln!("{line}");
}

/// The directory holding the workspace binaries of this build (`target/debug`, `target/release`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // Test executables live in target/<profile>/deps/; binaries in target/<profile>/.
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

fn cargo_profile(dir: &Path) -> String {
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(p) => p.to_string(),
    }
}

/// Build the binaries the tests drive (a no-op when fresh), once per test process, so a
/// `cargo test -p e2e-tests` never runs a stale `reader-client` or `card-emulator`.
fn ensure_built() -> Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO")
                .ok()
                .or_else(|| option_env!("CARGO").map(str::to_string))
                .unwrap_or_else(|| "cargo".to_string());
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
            let out = Command::new(cargo)
                .arg("build")
                .arg("--quiet")
                .arg("--manifest-path")
                .arg(manifest)
                .args([
                    "-p",
                    "reader-client",
                    "-p",
                    "card-emulator",
                    "-p",
                    "server",
                    "-p",
                    "portal",
                    "--bins",
                ])
                .arg("--profile")
                .arg(cargo_profile(&target_dir()))
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run cargo build: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "cargo build of the workspace binaries failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        })
        .clone()
}

/// A workspace binary (`reader-client`, `card-emulator`, `server`, `portal`), built first if needed.
pub fn workspace_bin(name: &str) -> Result<PathBuf, String> {
    ensure_built()?;
    let p = sibling_bin(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!("{} was not built", p.display()))
    }
}

/// A binary beside the running executable (`target/<profile>/NAME`), without building it:
/// for programs such as `backend-soak` that are started by hand.
pub fn sibling_bin(name: &str) -> PathBuf {
    target_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// The first `http://...` or `https://...` word of a line (what `server run` / `portal run`
/// print on start).
pub fn url_in(line: &str) -> Option<String> {
    line.split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(str::to_string)
}

/// Find a program on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Debian's system python with pyscard (`/usr/bin/python3`, not a venv's), or `None` after
/// printing the skip notice for `test`.
pub fn pyscard_python(test: &str) -> Option<&'static Path> {
    let python = Path::new("/usr/bin/python3");
    let found = python.exists()
        && Command::new(python)
            .args(["-c", "import smartcard"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !found {
        skipped(
            test,
            "/usr/bin/python3 with pyscard is not installed (apt-get install python3-pyscard)",
        );
        return None;
    }
    Some(python)
}

/// A log file for a child's output in the temp dir, unique per process and call.
pub fn log_path(stem: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "e2e-{stem}-{}-{}.log",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ))
}

/// A child process with its output in a log file; stopped by its PID when dropped.
pub struct Proc {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Proc {
    /// Start `cmd` with stdout and stderr to a fresh log file.
    pub fn spawn(mut cmd: Command, name: &str) -> Result<Proc, String> {
        let log = log_path(name);
        let file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Proc {
            child,
            name: name.to_string(),
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The output so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `Some(status)` once the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL (through the handle of the child we started) and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wait until the output has a line containing `marker` (a real readiness signal such
    /// as "listening on"); that line, or why it never came.
    pub fn wait_line(&mut self, marker: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.log_text().lines().find(|l| l.contains(marker)) {
                return Ok(l.to_string());
            }
            if let Some(st) = self.exited() {
                return Err(format!(
                    "{} exited ({st}) before printing `{marker}`:\n{}",
                    self.name,
                    self.log_text()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} printed no `{marker}` within {timeout:?}:\n{}",
                    self.name,
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM by PID, wait up to `grace` for the exit, then SIGKILL.
    pub fn terminate(&mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "{} (pid {}) ignored SIGTERM for {grace:?}; killing it",
            self.name,
            self.pid()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    /// Stops the process; its log is kept only when the test is failing (the path is printed).
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(5));
        if std::thread::panicking() {
            eprintln!("{} log kept: {}", self.name, self.log.display());
        } else {
            let _ = fs::remove_file(&self.log);
        }
    }
}

/// Run a command to completion with a deadline; on timeout it is killed by PID.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    let shown = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(r) => r.map_err(|e| format!("{shown}: {e}")),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            Err(format!("{shown} did not finish within {timeout:?}"))
        }
    }
}

/// The text of an output, stdout then stderr, for assertion messages.
pub fn output_text(o: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A lock file in the temp dir owned by one process at a time (stale owners are detected
/// by their PID no longer existing).
struct MachineLock {
    path: PathBuf,
}

impl MachineLock {
    fn acquire(name: &str, timeout: Duration) -> Result<MachineLock, String> {
        let path = std::env::temp_dir().join(name);
        let deadline = Instant::now() + timeout;
        let mut announced = false;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(MachineLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let mut owner = String::new();
                    if let Ok(mut f) = File::open(&path) {
                        let _ = f.read_to_string(&mut owner);
                    }
                    let owner = owner.trim();
                    let alive = !owner.is_empty() && Path::new("/proc").join(owner).exists();
                    if !alive {
                        // Written by a test process that no longer exists (or half-written: retry).
                        if owner.is_empty() && !announced {
                            announced = true;
                            continue;
                        }
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if !announced {
                        eprintln!(
                            "waiting for test process {owner} to release {}",
                            path.display()
                        );
                        announced = true;
                    }
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "{} is held by process {owner} for more than {timeout:?}",
                            path.display()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
    }
}

impl Drop for MachineLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The machine's pcscd, for one test at a time.
pub struct Pcscd {
    proc: Option<Proc>,
    _lock: MachineLock,
    _guard: MutexGuard<'static, ()>,
}

fn process_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Run a timing-sensitive test alone within this test binary: the guard excludes every
/// other holder, the pcscd tests included (they hold it while their pcscd runs). The tests
/// of this crate share one binary, so without it a load campaign with short request
/// timeouts would run beside real-tool tests on a 2-core machine.
pub fn exclusive() -> MutexGuard<'static, ()> {
    process_lock()
}

/// Where Debian's vsmartcard-vpcd installs its reader configuration.
pub const VPCD_READER_CONF: &str = "/etc/reader.conf.d/vpcd";

impl Pcscd {
    /// Own the machine's pcscd for the caller's lifetime; `Ok(None)` means "skip the test"
    /// (the reason is already printed).
    pub fn start(test: &str) -> Result<Option<Pcscd>, String> {
        let Some(pcscd) = which("pcscd").or_else(|| which("/usr/sbin/pcscd")) else {
            skipped(
                test,
                "pcscd is not installed (apt-get install pcscd vsmartcard-vpcd)",
            );
            return Ok(None);
        };
        if !Path::new(VPCD_READER_CONF).exists() {
            skipped(
                test,
                "the vpcd reader driver is not installed (apt-get install vsmartcard-vpcd)",
            );
            return Ok(None);
        }
        let guard = process_lock();
        let lock = MachineLock::acquire("e2e-tests-pcscd.lock", Duration::from_secs(600))?;
        if Pcsc::establish().is_ok() {
            return Err(
                "a pcscd that these tests did not start is running; stop it (systemctl stop pcscd pcscd.socket) \
                 so the tests can run their own"
                    .to_string(),
            );
        }
        let mut me = Pcscd {
            proc: None,
            _lock: lock,
            _guard: guard,
        };
        me.launch(&pcscd)?;
        Ok(Some(me))
    }

    fn launch(&mut self, pcscd: &Path) -> Result<(), String> {
        let mut cmd = Command::new(pcscd);
        cmd.arg("--foreground");
        let mut p = Proc::spawn(cmd, "pcscd")?;
        let deadline = Instant::now() + PCSCD_START_TIMEOUT;
        loop {
            if let Some(st) = p.exited() {
                return Err(format!(
                    "pcscd exited at start ({st}); are you root? log:\n{}",
                    p.log_text()
                ));
            }
            if let Ok(ctx) = Pcsc::establish() {
                if let Ok(rs) = ctx.readers() {
                    if rs.iter().any(|r| r.name.starts_with("Virtual PCD")) {
                        break;
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "pcscd listed no vpcd reader within {PCSCD_START_TIMEOUT:?}; log:\n{}",
                    p.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.proc = Some(p);
        Ok(())
    }

    /// Stop pcscd (SIGTERM by PID) and wait for it to end.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate(Duration::from_secs(10));
        }
    }

    /// Stop and start again; returns when the readers are listed.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let pcscd = which("pcscd").ok_or("pcscd vanished")?;
        self.launch(&pcscd)
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }

    pub fn log_text(&self) -> String {
        self.proc.as_ref().map(Proc::log_text).unwrap_or_default()
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The pcscd reader name of vpcd slot `n`.
pub fn vpcd_reader(slot: u16) -> String {
    format!("Virtual PCD 00 {slot:02}")
}

/// Wait until the reader named by `selector` holds a card.
pub fn wait_for_card(selector: &str, timeout: Duration) -> Result<ReaderInfo, String> {
    let ctx = Pcsc::establish().map_err(|e| e.to_string())?;
    ctx.wait_for_card(Some(selector), timeout)
        .map_err(|e| format!("waiting {timeout:?} for a card in {selector:?}: {e}"))
}

/// Wait until the reader named by `selector` is empty (the card went away).
pub fn wait_for_no_card(selector: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let ctx = Pcsc::establish().map_err(|e| e.to_string())?;
        match ctx.choose(Some(selector)) {
            Ok(r) if !r.card_present => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the card in {selector:?} was still present after {timeout:?}"
            ));
        }
        ctx.wait_for_change(Duration::from_millis(500).min(deadline - Instant::now()));
    }
}

/// A fresh directory in the temp dir, unique per process and call (removed by its owner).
pub fn fresh_dir(stem: &str) -> Result<PathBuf, String> {
    let dir = log_path(stem).with_extension("d");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// The real `card-emulator run --slot N` on a fresh `card-emulator init` state (default
/// profile), plugged into the harness's pcscd: [`RunningCard::start`] returns once pcscd
/// shows the card in the slot's reader. Dropping it stops the card by PID and removes its state.
pub struct RunningCard {
    proc: Proc,
    dir: PathBuf,
    /// The slot's reader name (`Virtual PCD 00 0N`).
    pub reader: String,
    /// The ATR pcscd saw.
    pub atr: Vec<u8>,
}

impl RunningCard {
    pub fn start(slot: u16) -> Result<RunningCard, String> {
        RunningCard::start_with_profile(slot, None)
    }

    /// A card personalized from `profile` (TOML text), or the built-in profile with `None`.
    pub fn start_with_profile(slot: u16, profile: Option<&str>) -> Result<RunningCard, String> {
        let ce = workspace_bin("card-emulator")?;
        let dir = fresh_dir("card-state")?;
        let state = dir.join("card.json");
        let mut init = Command::new(&ce);
        init.args(["init", "--state"]).arg(&state);
        if let Some(text) = profile {
            let path = dir.join("profile.toml");
            fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            init.arg("--profile").arg(path);
        }
        let out = run_with_timeout(init, Duration::from_secs(60))?;
        if !out.status.success() {
            let _ = fs::remove_dir_all(&dir);
            return Err(format!("card-emulator init failed: {}", output_text(&out)));
        }
        let mut run = Command::new(&ce);
        run.args(["run", "--slot", &slot.to_string(), "--state"])
            .arg(&state);
        let proc = Proc::spawn(run, "card-emulator-run")?;
        let reader = vpcd_reader(slot);
        let mut me = RunningCard {
            proc,
            dir,
            reader,
            atr: Vec::new(),
        };
        let info = wait_for_card(&me.reader, CARD_TIMEOUT)
            .map_err(|e| format!("{e}\ncard-emulator log:\n{}", me.proc.log_text()))?;
        me.atr = info.atr;
        Ok(me)
    }

    /// The card's state file (its issuer CA is `<state>.ca.json` beside it).
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("card.json")
    }

    /// The card's log so far (for assertion messages).
    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// `reader-client <args> --reader <this card's reader>`, within a minute.
    pub fn reader_client(&self, args: &[&str]) -> Output {
        let rc = workspace_bin("reader-client").unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(rc);
        cmd.args(args).args(["--reader", &self.reader]);
        run_with_timeout(cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`RunningCard::reader_client`] that must succeed: its standard output.
    pub fn reader_client_ok(&self, args: &[&str]) -> String {
        let out = self.reader_client(args);
        assert!(
            out.status.success(),
            "reader-client {args:?}\n{}\ncard log:\n{}",
            output_text(&out),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Unplug the card: SIGTERM, then wait until pcscd shows the reader empty.
    pub fn stop(&mut self) -> Result<(), String> {
        self.proc.terminate(Duration::from_secs(5));
        match self.proc.exited() {
            Some(st) if st.success() => {}
            other => {
                return Err(format!(
                    "card-emulator run did not exit cleanly: {other:?}\n{}",
                    self.proc.log_text()
                ))
            }
        }
        wait_for_no_card(&self.reader, CARD_TIMEOUT)
    }
}

impl Drop for RunningCard {
    fn drop(&mut self) {
        self.proc.terminate(Duration::from_secs(5));
        let _ = fs::remove_dir_all(&self.dir);
    }
}
