//! Process and wire harness for campaigns against a real `card-emulator` process: stdio sessions, reversed-mode (`run --listen`) servers and a vpcd client.
//!
//! Shared by the `soak` binary and the card's integration tests (included with `#[path]`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// xorshift64: a reproducible random stream from a seed (never 0).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A seed from the clock, for runs that do not replay one.
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 | 1)
        .unwrap_or(0x9E37_79B9_7F4A_7C15)
}

pub fn hex(bytes: &[u8]) -> String {
    apdu_specs::hexfmt::upper(bytes)
}

pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    apdu_specs::hexfmt::parse(s).map_err(|e| format!("{s:?} is not hex: {e}"))
}

/// `card-emulator init --state STATE` from the built-in profile (creates the issuer CA next to it).
pub fn init_state(emulator: &Path, state: &Path) -> Result<(), String> {
    let out = Command::new(emulator)
        .args(["init", "--force", "--state"])
        .arg(state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot start {}: {e}", emulator.display()))?;
    if !out.status.success() {
        return Err(format!(
            "card-emulator init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A `card-emulator run --stdio` process: one hex APDU per line in, one hex answer out.
pub struct StdioCard {
    pub child: Arc<Mutex<Child>>,
    pub pid: u32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl StdioCard {
    pub fn start(emulator: &Path, state: &Path) -> Result<StdioCard, String> {
        Self::start_with(emulator, state, &[])
    }

    /// With more `run` arguments (a campaign's tiny journal bound, for instance).
    pub fn start_with(
        emulator: &Path,
        state: &Path,
        run_args: &[String],
    ) -> Result<StdioCard, String> {
        let mut child = Command::new(emulator)
            .args(["run", "--stdio", "--state"])
            .arg(state)
            .args(run_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", emulator.display()))?;
        let pid = child.id();
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout pipe")?);
        Ok(StdioCard {
            child: Arc::new(Mutex::new(child)),
            pid,
            stdin,
            stdout,
        })
    }

    /// Send one APDU; `None` when the process is gone (killed).
    pub fn send(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        writeln!(self.stdin, "{}", hex(apdu)).ok()?;
        self.stdin.flush().ok()?;
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => apdu_specs::hexfmt::parse(line.trim()).ok(),
        }
    }

    /// Read one answer line (after a kill: what the card wrote before it died, if anything).
    pub fn read_answer(&mut self) -> Option<Vec<u8>> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => apdu_specs::hexfmt::parse(line.trim()).ok(),
        }
    }

    /// Write one APDU line without waiting for the answer (for cuts right after sending).
    pub fn write_line_only(&mut self, apdu: &[u8]) {
        let _ = writeln!(self.stdin, "{}", hex(apdu));
        let _ = self.stdin.flush();
    }

    /// SIGKILL this process (the one we started, by its handle) and reap it.
    pub fn kill(&self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Close stdin and wait for a clean exit.
    pub fn finish(self) {
        drop(self.stdin);
        if let Ok(mut c) = self.child.lock() {
            let _ = c.wait();
        }
    }
}

/// What a child process wrote on stderr, line by line, collected by a reader thread.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Every line logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Wait (bounded) until a logged line contains `needle`; true when it appeared.
    pub fn wait(&self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.lines().iter().any(|l| l.contains(needle)) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lines logged that contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }
}

/// `card-emulator ARGS --state STATE` with debug logging on a collected stderr; the receiver
/// gets `true` once a line contains `ready` (`false` if stderr closes first).
fn spawn_logged(
    emulator: &Path,
    args: &[&str],
    state: &Path,
    ready: &'static str,
) -> Result<(Child, Log, mpsc::Receiver<bool>), String> {
    let mut child = Command::new(emulator)
        .args(args)
        .arg("--state")
        .arg(state)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", emulator.display()))?;
    let stderr = child.stderr.take().ok_or("no stderr pipe")?;
    let log = Log::default();
    let (tx, rx) = mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(ready) {
                let _ = tx.send(true);
            }
            if let Ok(mut l) = sink.0.lock() {
                l.push(line);
            }
        }
        let _ = tx.send(false);
    });
    Ok((child, log, rx))
}

/// A `card-emulator run --listen 127.0.0.1:PORT` process and what it logged.
pub struct ListenCard {
    child: Child,
    pub addr: SocketAddr,
    pub log: Log,
}

impl ListenCard {
    /// Start on a free loopback port and wait until the emulator says it listens (its own
    /// log line, the real signal). A port taken between our probe and its bind makes the
    /// emulator exit: try another, a bounded number of times.
    pub fn start(emulator: &Path, state: &Path) -> Result<ListenCard, String> {
        Self::start_with(emulator, state, &[])
    }

    /// With more `run` arguments (a campaign's tiny journal bound, for instance).
    pub fn start_with(
        emulator: &Path,
        state: &Path,
        run_args: &[String],
    ) -> Result<ListenCard, String> {
        let mut last = String::new();
        for _ in 0..8 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("no free loopback port: {e}"))?
                .port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let addr_arg = addr.to_string();
            let mut args = vec!["run", "--listen", &addr_arg];
            args.extend(run_args.iter().map(String::as_str));
            let (mut child, log, rx) =
                spawn_logged(emulator, &args, state, "listening for vpcd on")?;
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(true) => return Ok(ListenCard { child, addr, log }),
                Ok(false) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = log.lines().join("\n");
                }
            }
        }
        Err(format!("card-emulator run --listen never listened: {last}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Connect as vpcd would.
    pub fn connect(&self) -> Result<Vpcd, String> {
        Vpcd::connect(self.addr)
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL the process we started and reap it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ListenCard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback listener standing in for pcscd's vpcd, with SO_REUSEADDR so that it can be
/// closed and bound again on the same port (vpcd restarting).
pub fn vpcd_listener(addr: SocketAddr) -> Result<TcpListener, String> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).map_err(|e| e.to_string())?;
    s.set_reuse_address(true).map_err(|e| e.to_string())?;
    s.bind(&addr.into())
        .map_err(|e| format!("cannot bind {addr}: {e}"))?;
    s.listen(8).map_err(|e| e.to_string())?;
    let l: TcpListener = s.into();
    l.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(l)
}

/// A `card-emulator run --vpcd 127.0.0.1:PORT` process (the default connect mode) dialing a
/// listener of ours, as it dials pcscd's vpcd.
pub struct DialingCard {
    child: Child,
    pub addr: SocketAddr,
    listener: Option<TcpListener>,
    pub log: Log,
}

impl DialingCard {
    pub fn start(emulator: &Path, state: &Path) -> Result<DialingCard, String> {
        let listener = vpcd_listener(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (child, log, _ready) =
            spawn_logged(emulator, &["run", "--vpcd", &addr.to_string()], state, "-")?;
        Ok(DialingCard {
            child,
            addr,
            listener: Some(listener),
            log,
        })
    }

    /// The card's next connection (bounded wait: it dials again after each hang-up).
    pub fn accept(&self) -> Result<Vpcd, String> {
        let listener = self
            .listener
            .as_ref()
            .ok_or("the vpcd listener is closed")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                    return Vpcd::from_stream(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "the card did not dial {} within 20 s; log:\n{}",
                            self.addr,
                            self.log.lines().join("\n")
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(format!("accept: {e}")),
            }
        }
    }

    /// vpcd goes away: the listener is closed (dials are refused).
    pub fn close_listener(&mut self) {
        self.listener = None;
    }

    /// vpcd comes back on the same port.
    pub fn reopen_listener(&mut self) -> Result<(), String> {
        self.listener = Some(vpcd_listener(self.addr)?);
        Ok(())
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for DialingCard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The vpcd side of the protocol: 2-byte big-endian length frames; `01` power on,
/// `00` power off, `02` reset, `04` get ATR, longer payloads are APDUs.
pub struct Vpcd {
    pub stream: TcpStream,
}

impl Vpcd {
    pub fn connect(addr: SocketAddr) -> Result<Vpcd, String> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        Vpcd::from_stream(stream)
    }

    /// A connection made either way (we dialed, or the card dialed us).
    pub fn from_stream(stream: TcpStream) -> Result<Vpcd, String> {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        Ok(Vpcd { stream })
    }

    pub fn send_frame(&mut self, payload: &[u8]) -> io::Result<()> {
        let len = u16::try_from(payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "payload over 65535"))?;
        let mut f = len.to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        self.stream.write_all(&f)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 2];
        self.stream.read_exact(&mut len)?;
        let mut payload = vec![0u8; u16::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut payload)?;
        Ok(payload)
    }

    pub fn power_on(&mut self) -> io::Result<()> {
        self.send_frame(&[0x01])
    }

    pub fn power_off(&mut self) -> io::Result<()> {
        self.send_frame(&[0x00])
    }

    pub fn reset(&mut self) -> io::Result<()> {
        self.send_frame(&[0x02])
    }

    pub fn atr(&mut self) -> io::Result<Vec<u8>> {
        self.send_frame(&[0x04])?;
        self.read_frame()
    }

    pub fn transmit(&mut self, apdu: &[u8]) -> io::Result<Vec<u8>> {
        self.send_frame(apdu)?;
        self.read_frame()
    }

    /// Transmit hex; the answer as upper-case hex (panics on I/O errors: test helper).
    pub fn tx(&mut self, apdu_hex: &str) -> String {
        let apdu = unhex(apdu_hex).unwrap_or_else(|e| panic!("{e}"));
        hex(&self
            .transmit(&apdu)
            .unwrap_or_else(|e| panic!("vpcd transmit {apdu_hex}: {e}")))
    }
}

/// The emulator binary next to this executable (`target/<profile>/card-emulator`).
pub fn sibling_emulator() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(format!("card-emulator{}", std::env::consts::EXE_SUFFIX))
}
