//! The journal (state format 3): every commit is one appended entry that replays to the
//! card's state; a torn tail, a kill during compaction and a failed append lose nothing
//! acknowledged; a damaged entry before the end is refused with the fix; old formats load and
//! are rewritten only at the next commit; both files are private; the bound holds.

use crate::common;
use card_emulator::state::CardState;
use card_emulator::store::{Compaction, FileStore, Storage, Store, StoreError};
use card_emulator::{profile, Card, VirtualCard};
use common::tx;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SELECT_APP: &str = "00A4040C08F056534544454D4F";
const SELECT_ISD_R: &str = "00A4040C10A0000005591010FFFFFFFF8900000100";
const SELECT_CONTAINER_APP: &str = "00A4040C08F0565345434F4E54";
const ICCID_A: &str = "984474560000214251F8";
const ICCID_B: &str = "98001032547698103214";

fn new_file(dir: &tempfile::TempDir) -> PathBuf {
    new_card(dir, profile::DEFAULT_PROFILE)
}

fn new_card(dir: &tempfile::TempDir, profile: &str) -> PathBuf {
    let path = dir.path().join("card.json");
    let state = profile::build(profile).unwrap();
    FileStore::create(&path, &state, false).unwrap();
    path
}

/// A small card (a few hundred bytes of state), for tests that load it thousands of times.
const SMALL: &str = r#"
label = "small"
[[pin]]
reference = 0x81
value = "1234"
max_tries = 3
[[file]]
path = "5000"
type = "df"
name = "F0 56 53 45 44 45 4D 4F"
[[file]]
path = "5000/5005"
type = "transparent"
size = 256
"#;

fn journal(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".journal");
    PathBuf::from(p)
}

fn open_with(path: &Path, compaction: Compaction) -> Card {
    let store = FileStore::open(path).unwrap().with_compaction(compaction);
    let mut c = Card::open(Box::new(store)).unwrap();
    c.power_on();
    c
}

fn open(path: &Path) -> Card {
    open_with(path, Compaction::default())
}

fn load(path: &Path) -> Result<CardState, StoreError> {
    FileStore::open(path)?.load()
}

fn storage(path: &Path) -> Storage {
    FileStore::open(path).unwrap().inspect().unwrap().1
}

/// UPDATE BINARY of EF 5005 (selected) with `n` bytes of `v`.
fn update(c: &mut Card, v: u8, n: usize) {
    let apdu = format!("00D60000{n:02X}{}", format!("{v:02X}").repeat(n));
    assert_eq!(tx(c, &apdu), "9000");
}

fn select_5005(c: &mut Card) {
    assert_eq!(tx(c, SELECT_APP), "9000");
    assert_eq!(tx(c, "00A4020C025005"), "9000");
}

#[test]
fn every_commit_appends_entries_that_replay_to_the_cards_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(&dir);
    let mut c = open(&path);
    let nickname = "BF290F5A0A".to_string() + ICCID_A + "900178";
    let steps: Vec<(String, &str)> = vec![
        (SELECT_APP.into(), "9000"),
        ("00A4020C025005".into(), "9000"),
        ("00D6000003ABCDEF".into(), "9000"),
        ("002000810439393939".into(), "63C2"),
        ("002000810431323334".into(), "9000"),
        ("00A4020C025003".into(), "9000"),
        (format!("00DC010410{}", "5A".repeat(16)), "9000"),
        // Container A: its PIN and a file of its tree.
        (SELECT_CONTAINER_APP.into(), "9000"),
        ("00A4020C026F01".into(), "9000"),
        ("002000810439393939".into(), "63C2"),
        ("002000810431323334".into(), "9000"),
        ("00D6000004C0FFEE00".into(), "9000"),
        // The card manager: nickname, then a switch to B (two containers' cores).
        (SELECT_ISD_R.into(), "9000"),
        (format!("80E2910012{nickname}00"), "BF290380010090"),
        (
            format!("80E2910014BF3111A00C5A0A{ICCID_B}81010000"),
            "BF310380010090",
        ),
    ];
    let mut entries = 0;
    for (apdu, want) in &steps {
        let before = c.state().clone();
        let r = tx(&mut c, apdu);
        assert!(r.starts_with(want), "{apdu} -> {r}");
        assert_eq!(&load(&path).unwrap(), c.state(), "after {apdu}");
        let s = storage(&path);
        assert_eq!(s.generation, Some(1), "no snapshot was written");
        assert_eq!(s.stale(), 0);
        if *c.state() == before {
            assert_eq!(s.entries.len(), entries, "{apdu} changed nothing");
        } else {
            assert!(s.entries.len() > entries, "{apdu} wrote no entry");
        }
        entries = s.entries.len();
    }
    let s = storage(&path);
    assert!(s.entries.iter().all(|e| e.applied));
    assert!(
        s.entries.iter().any(|e| e
            .summary
            .contains("container A0000005591010FFFFFFFF8900001100")),
        "{s}"
    );
    // Deleting container A changes the shape: a fresh snapshot, an empty journal.
    let delete = format!("80E291000FBF330C5A0A{ICCID_A}00");
    assert!(tx(&mut c, &delete).starts_with("BF3303800100"));
    let s = storage(&path);
    assert_eq!((s.generation, s.journal_bytes), (Some(2), 0));
    assert_eq!(&load(&path).unwrap(), c.state());
    assert_eq!(c.state().containers().len(), 1);
    // And entries go on after it.
    select_5005(&mut c);
    update(&mut c, 0x77, 8);
    drop(c);
    let c = open(&path);
    assert_eq!(storage(&path).applied(), 1);
    assert_eq!(&load(&path).unwrap(), c.state());
}

#[test]
fn a_torn_tail_at_any_byte_of_the_last_entry_is_the_state_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_card(&dir, SMALL);
    let mut c = open(&path);
    select_5005(&mut c);
    update(&mut c, 0x11, 200);
    assert_eq!(tx(&mut c, "002000810439393939"), "63C2");
    let before = c.state().clone();
    let start = std::fs::metadata(journal(&path)).unwrap().len();
    update(&mut c, 0x22, 250);
    let after = c.state().clone();
    drop(c);
    let bytes = std::fs::read(journal(&path)).unwrap();
    assert!(bytes.len() as u64 > start);
    for cut in start as usize..bytes.len() {
        std::fs::write(journal(&path), &bytes[..cut]).unwrap();
        assert_eq!(load(&path).unwrap(), before, "journal cut at {cut}");
        // A file system may leave zeros where the append never reached the disk.
        let mut zeroed = bytes[..cut].to_vec();
        zeroed.resize(bytes.len(), 0);
        std::fs::write(journal(&path), &zeroed).unwrap();
        assert_eq!(load(&path).unwrap(), before, "zeros from {cut}");
    }
    // A damaged checksum in the last entry: never acknowledged either.
    let mut bad = bytes.clone();
    let last = bad.len() - 2;
    bad[last] ^= 0x01;
    std::fs::write(journal(&path), &bad).unwrap();
    assert_eq!(load(&path).unwrap(), before);
    std::fs::write(journal(&path), &bytes).unwrap();
    assert_eq!(load(&path).unwrap(), after);
    // With a torn tail, the next commit compacts: the tail is gone, nothing is lost.
    std::fs::write(journal(&path), &bytes[..bytes.len() - 7]).unwrap();
    let mut c = open(&path);
    select_5005(&mut c);
    update(&mut c, 0x33, 4);
    let s = storage(&path);
    assert_eq!((s.generation, s.journal_bytes, s.torn), (Some(2), 0, None));
    assert_eq!(&load(&path).unwrap(), c.state());
    assert_eq!(c.state().pins, before.pins);
    assert_eq!(tx(&mut c, "00B0000005"), "33333333119000");
}

#[test]
fn a_kill_between_the_snapshot_rename_and_emptying_the_journal_applies_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(&dir);
    let mut c = open(&path);
    select_5005(&mut c);
    for v in 1..=3 {
        update(&mut c, v, 16);
    }
    assert_eq!(tx(&mut c, "002000810439393939"), "63C2");
    let state = c.state().clone();
    drop(c);
    let old = std::fs::read(journal(&path)).unwrap();
    assert_eq!(storage(&path).applied(), 4);
    // Compaction: snapshot generation 2, then the journal emptied...
    let mut store = FileStore::open(&path).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded, state);
    store.commit(&loaded).unwrap();
    drop(store);
    assert_eq!(std::fs::metadata(journal(&path)).unwrap().len(), 0);
    // ...but the kill came before the journal was emptied: its entries name generation 1.
    std::fs::write(journal(&path), &old).unwrap();
    let s = storage(&path);
    assert_eq!((s.generation, s.applied(), s.stale()), (Some(2), 0, 4));
    assert_eq!(load(&path).unwrap(), state);
    // Had the kill come before the rename, the temporary file is all that is left over.
    std::fs::write(dir.path().join("card.json.tmp"), b"{\"format\": \"vse-ca").unwrap();
    assert_eq!(load(&path).unwrap(), state);
    // The next card compacts at its first commit: generation 3, the old entries gone.
    let mut c = open(&path);
    select_5005(&mut c);
    update(&mut c, 9, 1);
    let s = storage(&path);
    assert_eq!((s.generation, s.entries.len()), (Some(3), 0));
    assert_eq!(tx(&mut c, "00B0000002"), "09039000");
    assert_eq!(c.state().pins[0].tries_left, 2);
    assert_eq!(&load(&path).unwrap(), c.state());
}

#[test]
fn a_card_created_over_another_takes_a_generation_no_old_entry_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(&dir);
    let mut c = open(&path);
    select_5005(&mut c);
    update(&mut c, 1, 16);
    update(&mut c, 2, 16);
    drop(c);
    let old = std::fs::read(journal(&path)).unwrap();
    // `init --force`: the same profile again, over the card and its journal.
    let fresh = profile::build(profile::DEFAULT_PROFILE).unwrap();
    FileStore::create(&path, &fresh, true).unwrap();
    assert_eq!(std::fs::metadata(journal(&path)).unwrap().len(), 0);
    // A kill before the old journal was emptied: none of its entries applies.
    std::fs::write(journal(&path), &old).unwrap();
    let s = storage(&path);
    assert_eq!((s.generation, s.applied(), s.stale()), (Some(2), 0, 2));
    assert_eq!(load(&path).unwrap(), fresh);
}

fn golden(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn version_of(path: &Path) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["version"].as_u64().unwrap()
}

#[test]
fn old_formats_load_and_become_version_3_only_at_the_next_commit() {
    for (name, select, verify, expect) in [
        (
            "card-state-v1.json",
            ["00A4040C08F056534544454D4F", "00A4020C025005"],
            None,
            "474F4C4431",
        ),
        (
            "card-state-v2.json",
            ["00A4040C08F0565345434F4E54", "00A4020C026F01"],
            // Container A's files need its PIN for UPDATE BINARY.
            Some("002000810431323334"),
            "474F4C44",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let bytes = golden(name);
        std::fs::write(&path, &bytes).unwrap();
        let mut c = open(&path);
        for s in select {
            assert_eq!(tx(&mut c, s), "9000");
        }
        let n = expect.len() / 2;
        assert_eq!(
            tx(&mut c, &format!("00B00000{n:02X}")),
            format!("{expect}9000")
        );
        drop(c);
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} was rewritten");
        assert!(!journal(&path).exists(), "{name}: a journal appeared");
        assert!(storage(&path)
            .to_string()
            .contains("at the card's next commit"));
        // The first commit writes a version-3 snapshot (an old one has no generation); the
        // next ones are journal entries.
        let mut c = open(&path);
        for s in select {
            assert_eq!(tx(&mut c, s), "9000");
        }
        let writes = verify.into_iter().chain(["00D600000142", "00D600010143"]);
        for (i, w) in writes.enumerate() {
            assert_eq!(tx(&mut c, w), "9000", "{name} {w}");
            assert_eq!(version_of(&path), 3);
            let s = storage(&path);
            assert_eq!(s.generation, Some(1));
            assert!(s.applied() >= i, "{name}: {s}");
        }
        assert_eq!(&load(&path).unwrap(), c.state());
        drop(c);
        let mut c = open(&path);
        for s in select {
            assert_eq!(tx(&mut c, s), "9000");
        }
        let mut want = format!("4243{}", &expect[4..]);
        want.push_str("9000");
        assert_eq!(tx(&mut c, &format!("00B00000{n:02X}")), want, "{name}");
    }
}

/// Three entries in a journal, and where each starts.
fn three_entries(dir: &tempfile::TempDir) -> (PathBuf, Vec<u64>) {
    let path = new_file(dir);
    let mut c = open(&path);
    select_5005(&mut c);
    for v in 1..=3 {
        update(&mut c, v, 8);
    }
    let s = storage(&path);
    assert_eq!(s.applied(), 3);
    (path, s.entries.iter().map(|e| e.offset).collect())
}

fn refused(path: &Path) -> StoreError {
    let files = [
        std::fs::read(path).unwrap(),
        std::fs::read(journal(path)).unwrap(),
    ];
    let e = Card::open(Box::new(FileStore::open(path).unwrap()))
        .err()
        .expect("a damaged journal must be refused");
    assert_eq!(std::fs::read(path).unwrap(), files[0]);
    assert_eq!(std::fs::read(journal(path)).unwrap(), files[1]);
    e
}

#[test]
fn a_damaged_entry_before_the_end_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (path, at) = three_entries(&dir);
    let good = std::fs::read(journal(&path)).unwrap();
    // A flipped byte in the second entry's payload.
    let mut bad = good.clone();
    bad[at[1] as usize + 40] ^= 0x04;
    std::fs::write(journal(&path), &bad).unwrap();
    let e = refused(&path);
    match &e {
        StoreError::Journal { offset, kept, .. } => assert_eq!((*offset, *kept), (at[1], 1)),
        other => panic!("{other}"),
    }
    let text = e.to_string();
    let j = journal(&path).display().to_string();
    assert!(
        text.contains(&j) && text.contains(&format!("truncate -s {} {j}", at[1])),
        "{text}"
    );
    assert!(
        text.contains("checksum") && text.contains("entry after it"),
        "{text}"
    );
    // The fix it names works: the first commit is kept.
    std::fs::write(journal(&path), &good[..at[1] as usize]).unwrap();
    let mut c = open(&path);
    select_5005(&mut c);
    assert_eq!(tx(&mut c, "00B0000002"), "01019000");
    drop(c);

    // A damaged length in the second entry's header.
    let dir = tempfile::tempdir().unwrap();
    let (path, at) = three_entries(&dir);
    let mut bad = std::fs::read(journal(&path)).unwrap();
    bad[at[1] as usize] ^= 0x10;
    std::fs::write(journal(&path), &bad).unwrap();
    let e = refused(&path);
    assert!(
        matches!(e, StoreError::Journal { offset, .. } if offset == at[1]),
        "{e}"
    );

    // A missing entry: the third follows the first.
    let dir = tempfile::tempdir().unwrap();
    let (path, at) = three_entries(&dir);
    let all = std::fs::read(journal(&path)).unwrap();
    let mut gap = all[..at[1] as usize].to_vec();
    gap.extend_from_slice(&all[at[2] as usize..]);
    std::fs::write(journal(&path), &gap).unwrap();
    let e = refused(&path);
    assert!(
        e.to_string()
            .contains("entry 3 of generation 1 follows entry 1"),
        "{e}"
    );
}

#[test]
fn snapshot_and_journal_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(&dir);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&path), mode(&journal(&path))), (0o600, 0o600));
    // A journal that went missing is created private again.
    std::fs::remove_file(journal(&path)).unwrap();
    let mut c = open_with(&path, Compaction::after_bytes(20_000));
    select_5005(&mut c);
    update(&mut c, 1, 100);
    assert_eq!(mode(&journal(&path)), 0o600);
    for v in 0..10 {
        update(&mut c, v, 100);
    }
    assert!(
        storage(&path).generation > Some(1),
        "no compaction happened"
    );
    assert_eq!((mode(&path), mode(&journal(&path))), (0o600, 0o600));
    // Widened by hand: the next writer makes both private again (the journal when it opens
    // it, the snapshot when it compacts the journal it found).
    drop(c);
    for p in [path.clone(), journal(&path)] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut c = open(&path);
    select_5005(&mut c);
    update(&mut c, 7, 1);
    update(&mut c, 8, 1);
    assert_eq!((mode(&path), mode(&journal(&path))), (0o600, 0o600));
}

#[test]
fn the_journal_never_passes_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(&dir);
    let bound = 30_000;
    let mut c = open_with(&path, Compaction::after_bytes(bound));
    select_5005(&mut c);
    let mut generations = std::collections::BTreeSet::new();
    for i in 0..40u8 {
        update(&mut c, i, 250);
        let s = storage(&path);
        assert!(s.journal_bytes <= bound, "{} bytes", s.journal_bytes);
        generations.insert(s.generation);
        assert_eq!(&load(&path).unwrap(), c.state());
    }
    // Each entry holds the 4096-byte EF 5005 (about 8.4 KB): 3 fit, the 4th compacts.
    assert!(generations.len() >= 9, "{generations:?}");
    drop(c);

    let dir = tempfile::tempdir().unwrap();
    let path = new_file(&dir);
    let by_entries = Compaction {
        entries: 3,
        ..Compaction::default()
    };
    let mut c = open_with(&path, by_entries);
    select_5005(&mut c);
    for i in 0..10 {
        update(&mut c, i, 4);
        assert!(storage(&path).applied() <= 3);
    }
    // Each snapshot takes the commit that found the journal full: 3 entries, then one.
    assert_eq!(storage(&path).generation, Some(3));

    // The default: 1 MiB or twice the snapshot, whichever is larger.
    let d = Compaction::default();
    assert_eq!((d.journal_bytes, d.snapshot_factor), (1 << 20, 2));
}

/// `card-emulator` with a file size limit (RLIMIT_FSIZE) and SIGXFSZ ignored: a write
/// past `limit` fails with EFBIG, like a full disk.
fn limited_card(path: &Path, limit: u64) -> std::process::Child {
    Command::new("env")
        .arg("--ignore-signal=XFSZ")
        .arg("prlimit")
        .arg(format!("--fsize={limit}"))
        .arg(env!("CARGO_BIN_EXE_card-emulator"))
        .args(["run", "--stdio", "--state"])
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("env and prlimit (coreutils, util-linux) run card-emulator")
}

#[test]
fn a_failed_append_changes_nothing_and_loses_nothing() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(&dir);
    // Entries of EF 5005 are about 8.4 KB: the third append passes 20 000 bytes.
    let mut child = limited_card(&path, 20_000);
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut send = |apdu: &str| {
        writeln!(stdin, "{apdu}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        line.trim().to_string()
    };
    assert_eq!(send(SELECT_APP), "9000");
    assert_eq!(send("00A4020C025005"), "9000");
    assert_eq!(send("00D6000002AAAA"), "9000");
    assert_eq!(send("00D6000002BBBB"), "9000");
    let good = std::fs::metadata(journal(&path)).unwrap().len();
    assert_eq!(send("00D6000002CCCC"), "6581", "the write past the limit");
    assert_eq!(
        send("00B0000002"),
        "BBBB9000",
        "the failed write was rolled back"
    );
    assert_eq!(
        std::fs::metadata(journal(&path)).unwrap().len(),
        good,
        "the failed append was cut"
    );
    // The next commit compacts, and the snapshot does not fit either.
    assert_eq!(send("00D6000002DDDD"), "6581");
    assert_eq!(send("00B0000002"), "BBBB9000");
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(storage(&path).applied(), 2);
    // Without the limit, the card goes on from the last acknowledged write.
    let mut c = open(&path);
    select_5005(&mut c);
    assert_eq!(tx(&mut c, "00B0000002"), "BBBB9000");
    update(&mut c, 0xEE, 2);
    assert_eq!(storage(&path).generation, Some(2));
    assert_eq!(&load(&path).unwrap(), c.state());
}

#[test]
fn inspect_lists_the_journal_and_json_prints_the_merged_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(&dir);
    let mut c = open(&path);
    select_5005(&mut c);
    update(&mut c, 0x5A, 3);
    assert_eq!(tx(&mut c, "002000810439393939"), "63C2");
    let state = c.state().clone();
    drop(c);
    let run = |json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_card-emulator"));
        cmd.args(["inspect", "--state"]).arg(&path);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let text = String::from_utf8(run(false)).unwrap();
    assert!(text.contains("PIN 81  2/3 tries left"), "{text}");
    assert!(text.contains("format version 3, generation 1"), "{text}");
    assert!(text.contains("2 entries applied to the snapshot"), "{text}");
    assert!(
        text.contains("generation 1 seq 1") && text.contains("(5005)"),
        "{text}"
    );
    assert!(
        text.contains("generation 1 seq 2") && text.contains("card"),
        "{text}"
    );
    let dump = run(true);
    assert_eq!(card_emulator::store::decode(&dump, "dump").unwrap(), state);
    // inspect only reads.
    assert_eq!(storage(&path).applied(), 2);
}
