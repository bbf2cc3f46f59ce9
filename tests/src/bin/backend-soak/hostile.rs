//! Hostile clients beside the load, against the server and the portal: oversized bodies (413), malformed JSON (400 with a message), a body sent too slowly (408) and headers never finished (connection cut).

use crate::backend::Limits;
use crate::{Gate, SERVICE};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one kind of abuse got.
#[derive(Default, Clone)]
pub struct Tally {
    pub sent: u64,
    /// Answered as expected.
    pub expected: u64,
    /// Not judged: the server was down or restarting during the request.
    pub outage: u64,
    pub failures: Vec<String>,
}

#[derive(Default, Clone)]
pub struct Report {
    pub oversized: Tally,
    pub malformed: Tally,
    pub slow_body: Tally,
    pub slow_headers: Tally,
}

/// A raw HTTP/1.1 exchange: the status and the body, or an I/O error.
struct Raw {
    status: u16,
    body: String,
}

fn read_answer(s: &mut TcpStream) -> std::io::Result<Raw> {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok(Raw { status, body })
}

fn connect(addr: &str, read_timeout: Duration) -> std::io::Result<TcpStream> {
    let sock = addr
        .parse()
        .map_err(|e| std::io::Error::other(format!("{addr}: {e}")))?;
    let s = TcpStream::connect_timeout(&sock, Duration::from_secs(5))?;
    s.set_read_timeout(Some(read_timeout))?;
    Ok(s)
}

fn post(addr: &str, body: &[u8], wait: Duration) -> std::io::Result<Raw> {
    let mut s = connect(addr, wait)?;
    write!(
        s,
        "POST /v1/services/{SERVICE}/register HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    // The peer may answer 413 and close before taking the whole body: not an error here.
    let _ = s.write_all(body);
    read_answer(&mut s)
}

/// A JSON error answer with this status and code and a non-empty message.
fn json_error(r: &Raw, status: u16, code: &str) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_str(&r.body)
        .map_err(|e| format!("{} answer is not JSON ({e}): {:?}", r.status, r.body))?;
    let message_ok = v["message"].as_str().is_some_and(|m| !m.is_empty());
    if r.status == status && v["error"] == code && message_ok {
        Ok(())
    } else {
        Err(format!(
            "expected {status} `{code}` with a message, got {} {}",
            r.status, r.body
        ))
    }
}

/// The server's incarnation and whether it was down, taken before a request.
#[derive(Clone, Copy, PartialEq)]
struct Snapshot(u64, bool);

fn snapshot(gate: &Gate) -> Snapshot {
    Snapshot(
        gate.generation.load(Ordering::SeqCst),
        gate.down.load(Ordering::SeqCst),
    )
}

/// Judge one abuse: a failure counts unless the server was down or restarted while the
/// request ran (then the answer tells nothing about the limits).
fn judge(tally: &mut Tally, gate: &Gate, before: Snapshot, what: String, r: Result<(), String>) {
    let after = snapshot(gate);
    let outage = before.1 || after.1 || before.0 != after.0;
    tally.sent += 1;
    match r {
        Ok(()) => tally.expected += 1,
        Err(_) if outage => tally.outage += 1,
        Err(e) => tally.failures.push(format!("{what}: {e}")),
    }
}

/// Runs rounds of every abuse against `targets` (name, host:port) until the gate says stop.
/// `slow`: how many slow clients of each kind hold a connection at once.
pub fn run(
    targets: Vec<(&'static str, String)>,
    limits: Limits,
    slow: usize,
    gate: Arc<Gate>,
) -> Report {
    let mut rep = Report::default();
    let timeout = Duration::from_millis(limits.request_timeout_ms);
    // Answers must come within the timeout plus this much scheduling slack on a loaded machine.
    let slack = Duration::from_secs(5);
    // Two rounds at least, so that a short load still sees every abuse judged outside an outage.
    let mut rounds = 0;
    while rounds < 2 || !gate.stop.load(Ordering::SeqCst) {
        rounds += 1;
        for (target, addr) in &targets {
            let addr = addr.as_str();
            let before = snapshot(&gate);
            let oversized = {
                let mut body = b"{\"r\": \"".to_vec();
                body.resize(limits.max_body_bytes + 1, b'0');
                post(addr, &body, timeout + slack)
                    .map_err(|e| e.to_string())
                    .and_then(|r| json_error(&r, 413, "body_too_large"))
            };
            let what = |kind: &str| format!("{kind} at the {target}");
            judge(
                &mut rep.oversized,
                &gate,
                before,
                what("oversized body"),
                oversized,
            );
            let before = snapshot(&gate);
            let malformed = post(addr, b"{\"r\": \"70\", ", timeout + slack)
                .map_err(|e| e.to_string())
                .and_then(|r| json_error(&r, 400, "malformed_json"));
            judge(
                &mut rep.malformed,
                &gate,
                before,
                what("malformed JSON"),
                malformed,
            );
            // `slow` clients of each kind at once, each holding a connection open while the
            // terminals go on.
            let before = snapshot(&gate);
            let (bodies, headers) = std::thread::scope(|s| {
                let bodies: Vec<_> = (0..slow)
                    .map(|_| s.spawn(|| slow_body(addr, timeout, slack)))
                    .collect();
                let headers: Vec<_> = (0..slow)
                    .map(|_| s.spawn(|| slow_headers(addr, timeout, slack)))
                    .collect();
                let join = |hs: Vec<std::thread::ScopedJoinHandle<'_, Result<(), String>>>| {
                    hs.into_iter()
                        .map(|h| h.join().unwrap_or(Err("panicked".into())))
                        .collect::<Vec<_>>()
                };
                (join(bodies), join(headers))
            });
            for r in bodies {
                judge(&mut rep.slow_body, &gate, before, what("slow body"), r);
            }
            for r in headers {
                judge(
                    &mut rep.slow_headers,
                    &gate,
                    before,
                    what("slow headers"),
                    r,
                );
            }
        }
    }
    rep
}

/// Headers complete, 10 of 100 announced body bytes, then silence: 408 `timeout` in time.
fn slow_body(addr: &str, timeout: Duration, slack: Duration) -> Result<(), String> {
    let t = Instant::now();
    let mut s = connect(addr, timeout + slack).map_err(|e| e.to_string())?;
    write!(
        s,
        "POST /v1/services/{SERVICE}/register HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"r\": \"71"
    )
    .map_err(|e| e.to_string())?;
    let r = read_answer(&mut s).map_err(|e| e.to_string())?;
    let took = t.elapsed();
    json_error(&r, 408, "timeout")?;
    if took > timeout + slack {
        return Err(format!("408 after {took:?}"));
    }
    Ok(())
}

/// Half a request line and one header, then silence: the connection is closed in time.
fn slow_headers(addr: &str, timeout: Duration, slack: Duration) -> Result<(), String> {
    let t = Instant::now();
    let mut s = connect(addr, timeout + slack).map_err(|e| e.to_string())?;
    write!(
        s,
        "POST /v1/services/{SERVICE}/register HTTP/1.1\r\nHost: {addr}\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(format!("still open after {:?}: {e}", t.elapsed())),
    }
    let took = t.elapsed();
    if took > timeout + slack {
        return Err(format!("closed only after {took:?}"));
    }
    Ok(())
}
