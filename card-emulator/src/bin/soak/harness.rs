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
        let mut child = Command::new(emulator)
            .args(["run", "--stdio", "--state"])
            .arg(state)
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

/// A `card-emulator run --listen 127.0.0.1:PORT` process and what it logged.
pub struct ListenCard {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl ListenCard {
    /// Start on a free loopback port and wait until the emulator says it listens (its own
    /// log line, the real signal). A port taken between our probe and its bind makes the
    /// emulator exit: try another, a bounded number of times.
    pub fn start(emulator: &Path, state: &Path) -> Result<ListenCard, String> {
        let mut last = String::new();
        for _ in 0..8 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("no free loopback port: {e}"))?
                .port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut child = Command::new(emulator)
                .args(["run", "--listen", &addr.to_string(), "--state"])
                .arg(state)
                .env("RUST_LOG", "debug")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", emulator.display()))?;
            let stderr = child.stderr.take().ok_or("no stderr pipe")?;
            let log = Arc::new(Mutex::new(Vec::new()));
            let (tx, rx) = mpsc::channel();
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("listening for vpcd on") {
                        let _ = tx.send(true);
                    }
                    if let Ok(mut l) = sink.lock() {
                        l.push(line);
                    }
                }
                let _ = tx.send(false);
            });
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(true) => return Ok(ListenCard { child, addr, log }),
                Ok(false) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = log.lock().map(|l| l.join("\n")).unwrap_or_default();
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

    /// Every line logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Wait (bounded) until a logged line contains `needle`; true when it appeared.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.log().iter().any(|l| l.contains(needle)) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lines logged that contain `needle`.
    pub fn count_log(&self, needle: &str) -> usize {
        self.log().iter().filter(|l| l.contains(needle)).count()
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

/// The vpcd side of the protocol: 2-byte big-endian length frames; `01` power on,
/// `00` power off, `02` reset, `04` get ATR, longer payloads are APDUs.
pub struct Vpcd {
    pub stream: TcpStream,
}

impl Vpcd {
    pub fn connect(addr: SocketAddr) -> Result<Vpcd, String> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
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
