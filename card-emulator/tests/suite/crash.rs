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

/// `CRASH_SEED`, or a fresh seed from the clock.
fn crash_seed() -> u64 {
    std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(0x9E3779B97F4A7C15)
        })
}

/// `card-emulator init` of `profile` (TOML) in `dir`; the state file's path.
fn init_card(dir: &std::path::Path, profile: &str) -> std::path::PathBuf {
    let path = dir.join("profile.toml");
    std::fs::write(&path, profile).unwrap();
    let state = dir.join("card.json");
    let ok = Command::new(env!("CARGO_BIN_EXE_card-emulator"))
        .args(["init", "--state"])
        .arg(&state)
        .arg("--profile")
        .arg(&path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    state
}

/// SIGKILL the session's process after a random 0.5 to 20.5 ms.
fn kill_soon(s: &Session, rng: &mut Rng) -> std::thread::JoinHandle<()> {
    let delay = Duration::from_micros(500 + rng.below(20_000));
    let victim = s.child.clone();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let mut c = victim.lock().unwrap();
        let _ = c.kill(); // SIGKILL
        let _ = c.wait();
    })
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
    let seed = crash_seed();
    eprintln!("crash test: {kills} kills, CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let state = init_card(dir.path(), PROFILE);
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
        let killer = kill_soon(&s, &mut rng);
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

/// Two containers whose every switch and removal makes or drops SGP.22 notifications.
const SWITCH_PROFILE: &str = r#"
label = "crash test: switches"
[[container]]
iccid = "8944476500001224158"
enabled = true
application_fid = "7F10"
application_name = "F0 56 53 45 43 4F 4E 54"
[[container]]
iccid = "89000123456789012341"
application_fid = "7F10"
application_name = "F0 56 53 45 43 4F 4E 54"
"#;

const ICCIDS: [&str; 2] = ["984474560000214251F8", "98001032547698103214"];

/// An ES10 command of the switch storm.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// EnableProfile of container `to` (the other one is enabled).
    Switch { to: usize },
    /// NotificationSent of `seq`.
    Remove { seq: u32 },
}

/// One ES10 function on the basic channel of a stdio card; `None` when the process is gone.
fn es10_stdio(s: &mut Session, payload: &str) -> Option<String> {
    let len = payload.len() / 2;
    let mut r = s.send(&format!("80E29100{len:02X}{payload}"))?;
    let mut data = String::new();
    while r.len() == 4 && r.starts_with("61") {
        r = s.send(&format!("80C00000{}", &r[2..]))?;
        data.push_str(&r[..r.len() - 4]);
        r = r[r.len() - 4..].to_string();
    }
    assert_eq!(r, "9000", "SW of {payload}");
    Some(data)
}

/// (seq, event bit, ICCID hex) of each pending notification, and which container is enabled.
type Notes = Vec<(u32, u8, String)>;

fn observe(s: &mut Session) -> (Notes, Option<usize>) {
    use apdu_specs::es10::{ListNotificationResponse, ProfileInfoListResponse, ProfileState};
    let hex = |h: String| apdu_specs::hexfmt::parse(&h).unwrap();
    let list = es10_stdio(s, "BF2800").expect("alive");
    let ListNotificationResponse::Ok(list) = ListNotificationResponse::parse(&hex(list)).unwrap()
    else {
        panic!("ListNotification error")
    };
    let notes = list
        .iter()
        .map(|m| {
            let iccid = m.iccid.map(|i| apdu_specs::hexfmt::upper(i.as_bytes()));
            (m.seq, m.event.bit() as u8, iccid.unwrap_or_default())
        })
        .collect();
    let profiles = es10_stdio(s, "BF2D00").expect("alive");
    let ProfileInfoListResponse::Ok(profiles) =
        ProfileInfoListResponse::parse(&hex(profiles)).unwrap()
    else {
        panic!("ProfileInfoList error")
    };
    let enabled = profiles
        .iter()
        .position(|p| p.state == Some(ProfileState::Enabled));
    (notes, enabled)
}

/// SIGKILL during ES10c switches and notification removals: after each restart the enabled
/// container and the notification list agree with one of the two sides of the cut command
/// (a switch and its two notifications land together or not at all), sequence numbers only
/// grow, and nothing acknowledged is lost.
#[test]
fn sigkill_during_switches_keeps_notifications_in_step_with_the_containers() {
    let kills = kills_from_env(60, 3);
    let seed = crash_seed();
    eprintln!("switch crash test: {kills} kills, CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let state = init_card(dir.path(), SWITCH_PROFILE);
    // What is acknowledged: the list, the enabled container, the last number given.
    let mut notes: Notes = Vec::new();
    let mut enabled = Some(0usize);
    let mut last_seq = 0u32;
    let mut cut_in_flight = 0;
    // The command sent but not answered when the process died.
    let mut in_flight: Option<Cut> = None;
    for round in 0..=kills {
        let mut s = Session::start(&state);
        assert_eq!(
            s.must("00A4040010A0000005591010FFFFFFFF8900000100").len(),
            4,
            "SELECT ISD-R"
        );
        let (seen, seen_enabled) = observe(&mut s);
        if (seen.clone(), seen_enabled) != (notes.clone(), enabled) {
            // Only the command cut by the kill may differ, and wholly.
            match in_flight {
                Some(Cut::Switch { to }) => {
                    let mut after = notes.clone();
                    if let Some(from) = enabled {
                        after.push((last_seq + 1, 2, ICCIDS[from].into()));
                        after.push((last_seq + 2, 1, ICCIDS[to].into()));
                    }
                    assert_eq!((&seen, seen_enabled), (&after, Some(to)), "round {round}: a switch landed in part");
                    last_seq += 2;
                }
                Some(Cut::Remove { seq }) => {
                    let after: Notes = notes.iter().filter(|n| n.0 != seq).cloned().collect();
                    assert_eq!((&seen, seen_enabled), (&after, enabled), "round {round}: a removal landed in part");
                }
                None => panic!(
                    "round {round}: state changed without a command: {seen:?} {seen_enabled:?}, expected {notes:?} {enabled:?}"
                ),
            }
            notes = seen;
            enabled = seen_enabled;
        }
        if round == kills {
            drop(s.stdin);
            let _ = s.child.lock().unwrap().wait();
            break;
        }
        let killer = kill_soon(&s, &mut rng);
        loop {
            // Keep the list short of the capacity (the oldest would be dropped otherwise).
            let op = match notes.first() {
                Some(n) if notes.len() >= 16 || rng.below(4) == 0 => Cut::Remove { seq: n.0 },
                _ => Cut::Switch {
                    to: 1 - enabled.unwrap_or(1),
                },
            };
            in_flight = Some(op);
            let answer = match op {
                Cut::Switch { to } => {
                    es10_stdio(&mut s, &format!("BF3111A00C5A0A{}810100", ICCIDS[to]))
                }
                Cut::Remove { seq } => {
                    let mut body = Vec::new();
                    apdu_specs::der::push_uint(&mut body, 0x80, seq);
                    es10_stdio(
                        &mut s,
                        &apdu_specs::hexfmt::upper(&apdu_specs::tlv::build(0xBF30, &body)),
                    )
                }
            };
            let Some(answer) = answer else {
                cut_in_flight += 1;
                break;
            };
            match op {
                Cut::Switch { to } => {
                    assert_eq!(answer, "BF3103800100");
                    let from = enabled.expect("one is enabled");
                    notes.push((last_seq + 1, 2, ICCIDS[from].into()));
                    notes.push((last_seq + 2, 1, ICCIDS[to].into()));
                    last_seq += 2;
                    enabled = Some(to);
                }
                Cut::Remove { seq } => {
                    assert_eq!(answer, "BF3003800100");
                    notes.retain(|n| n.0 != seq);
                }
            }
        }
        killer.join().unwrap();
    }
    assert!(
        cut_in_flight > kills / 4,
        "too few kills hit a command in flight: {cut_in_flight}"
    );
    eprintln!(
        "switch crash test: {kills} kills, {cut_in_flight} cut a command; last seq {last_seq}"
    );
}

/// echo.wat (card-emulator/applets/) in container A: load file and instance AIDs.
const ECHO_PACKAGE: &str = "A0000000F1EC4F00";
const ECHO_APPLET: &str = "A0000000F1EC4F0001";
const ISDP_A: &str = "A0000005591010FFFFFFFF8900001000";

/// echo.wat loaded into container A of the card in `state` and installed with 16 bytes of
/// storage, in process (SCP03 with the test keys, as the GP tests do); the state file keeps it.
/// This test's share of `CRASH_KILLS` (one in `share`), or `default` without it.
fn kills_from_env(default: u32, share: u32) -> u32 {
    std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(default, |n: u32| n.div_ceil(share))
}

fn install_echo(state: &std::path::Path) {
    use card_emulator::applet_host::GpHost;
    use card_emulator::VirtualCard;
    let hex = |s: &str| apdu_specs::hexfmt::parse(s).unwrap();
    let store = card_emulator::store::FileStore::open(state).unwrap();
    let mut c = card_emulator::Card::open(Box::new(store)).unwrap();
    c.power_on();
    let tx = &mut |a: &[u8]| c.transmit(a);
    let keys = secure_channel::StaticKeys::gp_default();
    let mut gp = GpHost::open(tx, &keys).unwrap();
    let module =
        wat::parse_str(card_emulator::applet_sources::wat_text("echo.wat").unwrap()).unwrap();
    let sw = gp.load(tx, &hex(ISDP_A), &hex(ECHO_PACKAGE), &module);
    assert_eq!(sw.unwrap(), 0x9000, "loading echo.wat");
    let sw = gp.install(tx, &hex(ECHO_PACKAGE), &hex(ECHO_APPLET), &[], Some(16));
    assert_eq!(sw.unwrap(), 0x9000, "installing echo.wat");
}

/// echo's storage as the state file holds it (the store loads it as a restart does).
fn echo_storage(state: &std::path::Path) -> Vec<u8> {
    use card_emulator::store::Store;
    let st = card_emulator::store::FileStore::open(state)
        .and_then(|s| s.load())
        .unwrap_or_else(|e| panic!("the state does not load: {e}"));
    let aid = apdu_specs::hexfmt::parse(ECHO_APPLET).unwrap();
    st.containers()[0]
        .applets
        .iter()
        .find(|a| a.aid == aid)
        .expect("echo is installed in container A")
        .storage
        .clone()
}

/// SIGKILL while a loaded applet writes its storage: each command is one transaction, so
/// after each restart echo's counter is the acknowledged value, or one more when a `80 20`
/// was cut; a write the applet made before throwing (`80 50`: `AA AA AA AA` at offset 4,
/// then 6A80) never reaches the state, answered or cut.
#[test]
fn sigkill_during_applet_writes_keeps_each_applet_storage_before_or_after_the_command() {
    let kills = kills_from_env(40, 5);
    let seed = crash_seed();
    eprintln!("applet crash test: {kills} kills, CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let state = init_card(dir.path(), card_emulator::profile::DEFAULT_PROFILE);
    install_echo(&state);
    let select = format!("00A40400{:02X}{ECHO_APPLET}", ECHO_APPLET.len() / 2);
    // The acknowledged counter, and whether a `80 20` was cut (sent, not answered).
    let mut counter = 0u32;
    let mut increment_cut = false;
    let (mut cut_in_flight, mut thrown) = (0, 0);
    for round in 0..=kills {
        // The state the killed process left loads, and holds the counter before or after
        // the cut command, and never the thrown write.
        let storage = echo_storage(&state);
        assert_eq!(storage.len(), 16, "round {round}");
        let c = u32::from_be_bytes(storage[..4].try_into().unwrap());
        assert!(
            c == counter || (increment_cut && c == counter + 1),
            "round {round}: echo's counter is {c}, acknowledged {counter}, 80 20 cut: {increment_cut}"
        );
        assert_eq!(
            storage[4..8],
            [0; 4],
            "round {round}: a write rolled back by 80 50's throw is in the state"
        );
        counter = c;
        increment_cut = false;
        let mut s = Session::start(&state);
        assert_eq!(s.must(&select), "9000", "round {round}: SELECT echo");
        assert_eq!(
            s.must("8022000000"),
            format!("{counter:08X}9000"),
            "round {round}: 80 22 disagrees with the state"
        );
        if round == kills {
            drop(s.stdin);
            let _ = s.child.lock().unwrap().wait();
            break;
        }
        let killer = kill_soon(&s, &mut rng);
        loop {
            if rng.below(4) == 0 {
                let Some(r) = s.send("8050000004AAAAAAAA") else {
                    cut_in_flight += 1;
                    break;
                };
                assert_eq!(r, "6A80", "round {round}: 80 50");
                thrown += 1;
            } else {
                increment_cut = true;
                let Some(r) = s.send("8020000000") else {
                    cut_in_flight += 1;
                    break;
                };
                increment_cut = false;
                counter += 1;
                assert_eq!(r, format!("{counter:08X}9000"), "round {round}: 80 20");
            }
        }
        killer.join().unwrap();
    }
    assert!(
        cut_in_flight > kills / 4,
        "too few kills hit a command in flight: {cut_in_flight}"
    );
    assert!(thrown > 0, "no 80 50 was answered");
    eprintln!(
        "applet crash test: {kills} kills, {cut_in_flight} cut a command, {thrown} throws answered; counter {counter}"
    );
}
