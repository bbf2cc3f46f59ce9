//! Crash test: SIGKILL the emulator process at random instants during a storm of UPDATE
//! BINARY, UPDATE RECORD and wrong VERIFY; after each restart every file holds exactly one
//! written version (never a mix) and the PIN try counter never came back. The card's journal
//! bound is small (a compaction every few commits), so kills also land in compactions.
//!
//! `CRASH_KILLS=N` sets the number of kills (default 200); `CRASH_SEED` replays a run.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROFILE: &str = r#"
label = "crash test"
[[pin]]
reference = 0x81
value = "1234"
max_tries = 15
puk = "12345678"
puk_max_tries = 15
[[file]]
path = "1001"
type = "transparent"
size = 256
[[file]]
path = "1002"
type = "linear-fixed"
record_length = 32
max_records = 1
records = ["0000000000000000000000000000000000000000000000000000000000000000"]
"#;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Binary(u32),
    Record(u32),
    WrongPin,
    Unblock,
}

/// What the test knows for sure (acknowledged) and what may or may not have happened.
#[derive(Debug)]
struct Knowledge {
    binary: u32,
    record: u32,
    tries: u8,
    in_flight: Option<Op>,
}

struct Session {
    child: Arc<Mutex<Child>>,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Session {
    fn start(state: &std::path::Path) -> Session {
        let mut child = Command::new(env!("CARGO_BIN_EXE_card-emulator"))
            .args([
                "run",
                "--stdio",
                "--compact-journal-after",
                "4096",
                "--state",
            ])
            .arg(state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start card-emulator");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Session {
            child: Arc::new(Mutex::new(child)),
            stdin,
            stdout,
        }
    }

    /// Send one line; `None` when the process is gone.
    fn send(&mut self, line: &str) -> Option<String> {
        writeln!(self.stdin, "{line}").ok()?;
        self.stdin.flush().ok()?;
        let mut answer = String::new();
        match self.stdout.read_line(&mut answer) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(answer.trim().to_string()),
        }
    }

    fn must(&mut self, line: &str) -> String {
        self.send(line)
            .expect("the emulator died outside of a kill")
    }
}

fn payload(v: u32, len: usize) -> String {
    apdu_specs::hexfmt::upper(&v.to_be_bytes()).repeat(len / 4)
}

/// Every 4-byte word of the data is the same version number: return it, or fail on a mix.
fn single_version(data_hex: &str, what: &str) -> u32 {
    let bytes = apdu_specs::hexfmt::parse(data_hex).unwrap();
    let words: Vec<u32> = bytes
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert!(
        words.iter().all(|w| *w == words[0]),
        "{what} holds a mix of versions: {words:?}"
    );
    words[0]
}

fn check_after_restart(s: &mut Session, k: &mut Knowledge) {
    assert_eq!(s.must("00A4000C021001"), "9000");
    let r = s.must("00B0000000");
    assert!(r.ends_with("9000"), "{r}");
    let v = single_version(&r[..r.len() - 4], "EF 1001");
    let in_flight = k.in_flight.take();
    match in_flight {
        Some(Op::Binary(n)) => assert!(
            v == k.binary || v == n,
            "EF 1001 is {v}, expected {} or {n}",
            k.binary
        ),
        _ => assert_eq!(v, k.binary, "EF 1001 lost or invented a write"),
    }
    k.binary = v;
    assert_eq!(s.must("00A4000C021002"), "9000");
    let r = s.must("00B2010400");
    let v = single_version(&r[..r.len() - 4], "EF 1002 record 1");
    match in_flight {
        Some(Op::Record(n)) => assert!(
            v == k.record || v == n,
            "record is {v}, expected {} or {n}",
            k.record
        ),
        _ => assert_eq!(v, k.record, "record 1 lost or invented a write"),
    }
    k.record = v;
    let r = s.must("00200081");
    assert!(r.starts_with("63C"), "{r}");
    let t = u8::from_str_radix(&r[3..], 16).unwrap();
    match in_flight {
        Some(Op::WrongPin) => assert!(
            t == k.tries || t + 1 == k.tries,
            "PIN tries {t} after a cut wrong VERIFY, were {}",
            k.tries
        ),
        Some(Op::Unblock) => assert!(t == k.tries || t == 15, "PIN tries {t}"),
        _ => assert_eq!(t, k.tries, "PIN try counter changed without a command"),
    }
    k.tries = t;
}

fn storm(s: &mut Session, k: &mut Knowledge, rng: &mut Rng) {
    loop {
        let op = if k.tries <= 2 {
            Op::Unblock
        } else {
            match rng.below(3) {
                0 => Op::Binary(k.binary + 1),
                1 => Op::Record(k.record + 1),
                _ => Op::WrongPin,
            }
        };
        let lines: Vec<String> = match op {
            Op::Binary(v) => vec![
                "00A4000C021001".into(),
                format!("00D6000000 0100 {}", payload(v, 256)),
            ],
            Op::Record(v) => vec![
                "00A4000C021002".into(),
                format!("00DC010420{}", payload(v, 32)),
            ],
            Op::WrongPin => vec!["002000810439393939".into()],
            Op::Unblock => vec!["002C0181083132333435363738".into()],
        };
        let (prep, cmd) = lines.split_at(lines.len() - 1);
        for p in prep {
            match s.send(p) {
                Some(r) => assert_eq!(r, "9000"),
                None => return,
            }
        }
        k.in_flight = Some(op);
        let Some(r) = s.send(&cmd[0]) else {
            return;
        };
        k.in_flight = None;
        match op {
            Op::Binary(v) => {
                assert_eq!(r, "9000");
                k.binary = v;
            }
            Op::Record(v) => {
                assert_eq!(r, "9000");
                k.record = v;
            }
            Op::WrongPin => {
                assert_eq!(r, format!("63C{:X}", k.tries - 1));
                k.tries -= 1;
            }
            Op::Unblock => {
                assert_eq!(r, "9000");
                k.tries = 15;
            }
        }
    }
}

#[test]
fn sigkill_at_random_instants_never_mixes_versions_or_restores_pin_tries() {
    let kills: u32 = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(0x9E3779B97F4A7C15)
        });
    eprintln!("crash test: {kills} kills, CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.toml");
    std::fs::write(&profile, PROFILE).unwrap();
    let state = dir.path().join("card.json");
    let ok = Command::new(env!("CARGO_BIN_EXE_card-emulator"))
        .args(["init", "--state"])
        .arg(&state)
        .arg("--profile")
        .arg(&profile)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let mut k = Knowledge {
        binary: 0,
        record: 0,
        tries: 15,
        in_flight: None,
    };
    let started = Instant::now();
    let mut cut_in_flight = 0;
    for _ in 0..kills {
        let mut s = Session::start(&state);
        check_after_restart(&mut s, &mut k);
        let delay = Duration::from_micros(500 + rng.below(20_000));
        let victim = s.child.clone();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            let mut c = victim.lock().unwrap();
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        });
        storm(&mut s, &mut k, &mut rng);
        killer.join().unwrap();
        if k.in_flight.is_some() {
            cut_in_flight += 1;
        }
    }
    let mut s = Session::start(&state);
    check_after_restart(&mut s, &mut k);
    drop(s.stdin);
    let _ = s.child.lock().unwrap().wait();
    eprintln!(
        "crash test: {kills} kills ({cut_in_flight} with a write in flight) in {:.1} s; final versions: binary {}, record {}, PIN tries {}",
        started.elapsed().as_secs_f64(),
        k.binary,
        k.record,
        k.tries
    );
    assert!(
        cut_in_flight > kills / 4,
        "too few kills hit a write in flight: {cut_in_flight}"
    );
}
