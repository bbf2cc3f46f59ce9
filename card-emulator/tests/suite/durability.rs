//! Durable state: restarts keep what was committed, PIN counters are durable before the
//! comparison, damaged or unknown files are refused and left untouched.

use crate::common;
use card_emulator::state::CardState;
use card_emulator::store::{FileStore, Store, StoreError};
use card_emulator::{profile, Card, VirtualCard};
use common::tx;
use std::os::unix::fs::PermissionsExt;

fn new_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("card.json");
    let state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    FileStore::create(&path, &state, false).unwrap();
    path
}

fn open(path: &std::path::Path) -> Card {
    let mut c = Card::open(Box::new(FileStore::open(path).unwrap())).unwrap();
    c.power_on();
    c
}

#[test]
fn writes_and_pin_counters_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(&dir);
    let mut c = open(&path);
    assert_eq!(tx(&mut c, "00A4080C0450005005"), "9000");
    assert_eq!(tx(&mut c, "00D6000003ABCDEF"), "9000");
    assert_eq!(tx(&mut c, "002000810439393939"), "63C2");
    drop(c);
    let mut c = open(&path);
    assert_eq!(tx(&mut c, "00A4080C0450005005"), "9000");
    assert_eq!(tx(&mut c, "00B0000003"), "ABCDEF9000");
    assert_eq!(tx(&mut c, "00200081"), "63C2");
}

#[test]
fn state_file_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(&dir);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut c = open(&path);
    assert_eq!(tx(&mut c, "00A4080C0450005005"), "9000");
    assert_eq!(tx(&mut c, "00D6000001AA"), "9000");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn state_file_holds_no_pin_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(&dir);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("\"1234\""),
        "the PIN appears in the state file"
    );
    // The eUICC certificate spells the EID in ASCII digits, and the default EID holds
    // "1234": search everything but the certificate chain.
    fn drop_chain(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("euicc");
                m.values_mut().for_each(drop_chain);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(drop_chain),
            _ => {}
        }
    }
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    drop_chain(&mut json);
    assert!(text.contains("\"euicc\""), "the state has its chain");
    assert!(!json.to_string().contains("31323334"));
}

/// A store that refuses to write: models a full disk or a read-only file system.
struct FailingStore(CardState);

impl Store for FailingStore {
    fn load(&self) -> Result<CardState, StoreError> {
        Ok(self.0.clone())
    }
    fn commit(&mut self, _: &CardState) -> Result<(), StoreError> {
        Err(StoreError::Write {
            path: "test".into(),
            source: std::io::Error::other("disk full"),
        })
    }
}

#[test]
fn pin_is_not_compared_when_the_decrement_cannot_be_made_durable() {
    let state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    let mut c = Card::open(Box::new(FailingStore(state))).unwrap();
    c.power_on();
    // The right PIN is not accepted: its comparison never happened.
    assert_eq!(tx(&mut c, "002000810431323334"), "6581");
    assert_eq!(tx(&mut c, "00200081"), "63C3");
    assert_eq!(c.state().pins[0].tries_left, 3);
    // A failed write leaves the in-memory state as it was.
    assert_eq!(tx(&mut c, "00A4080C0450005005"), "9000");
    assert_eq!(tx(&mut c, "00D6000001AA"), "6581");
    assert_eq!(tx(&mut c, "00B0000001"), "009000");
}

#[test]
fn missing_file_says_how_to_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let e = FileStore::open(&dir.path().join("none.json"))
        .err()
        .unwrap();
    assert!(matches!(e, StoreError::Missing(_)));
    assert!(e.to_string().contains("card-emulator init --state"), "{e}");
}

#[test]
fn init_refuses_to_replace_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(&dir);
    let state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    assert!(matches!(
        FileStore::create(&path, &state, false),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(FileStore::create(&path, &state, true).is_ok());
}

fn refused_and_untouched(bytes: &[u8]) -> StoreError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    std::fs::write(&path, bytes).unwrap();
    let e = Card::open(Box::new(FileStore::open(&path).unwrap()))
        .err()
        .expect("a damaged state must be refused");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file was modified"
    );
    e
}

#[test]
fn corrupt_files_are_refused_and_never_rewritten() {
    let good = card_emulator::store::encode(&profile::build(profile::DEFAULT_PROFILE).unwrap());
    // Truncated at several points.
    for cut in [0, 1, 20, good.len() / 2, good.len() - 3] {
        let e = refused_and_untouched(&good[..cut]);
        assert!(matches!(e, StoreError::Corrupt { .. }), "cut {cut}: {e}");
    }
    // A flipped byte inside the state: the checksum catches it.
    let text = String::from_utf8(good.clone()).unwrap();
    let flipped = text.replacen("\"tries_left\": 3", "\"tries_left\": 2", 1);
    assert_ne!(flipped, text);
    let e = refused_and_untouched(flipped.as_bytes());
    assert!(e.to_string().contains("checksum"), "{e}");
    // Another program's JSON.
    let e = refused_and_untouched(
        b"{\"format\": \"other\", \"version\": 1, \"crc32\": \"\", \"state\": {}}",
    );
    assert!(e.to_string().contains("format"), "{e}");
}

#[test]
fn unknown_versions_are_refused_with_a_clear_message() {
    let good = card_emulator::store::encode(&profile::build(profile::DEFAULT_PROFILE).unwrap());
    let text = String::from_utf8(good).unwrap();
    let future = text.replacen("\"version\": 3", "\"version\": 99", 1);
    let e = refused_and_untouched(future.as_bytes());
    assert!(
        matches!(e, StoreError::UnknownVersion { found: 99, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("newer card-emulator"), "{e}");
}

#[test]
fn a_stale_temporary_file_does_not_matter() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_file(&dir);
    std::fs::write(dir.path().join("card.json.tmp"), b"half a write").unwrap();
    let mut c = open(&path);
    assert_eq!(tx(&mut c, "00A4080C0450005005"), "9000");
    assert_eq!(tx(&mut c, "00D6000001AB"), "9000");
    drop(c);
    let mut c = open(&path);
    assert_eq!(tx(&mut c, "00A4080C0450005005"), "9000");
    assert_eq!(tx(&mut c, "00B0000001"), "AB9000");
}
