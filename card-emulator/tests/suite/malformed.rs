//! The malformed-APDU table, run in-process and through the vpcd protocol against `card-emulator run --listen`.
//!
//! The table has two halves: `apdu-specs/conformance/malformed.apdu` (what PC/SC can carry;
//! reader-client also runs it in-process and through pcscd) and [`SHORT`] below (0- to
//! 3-byte APDUs and a chain over the Nc limit, which a PC/SC script cannot carry). Through
//! vpcd a 0-byte frame is ignored and a 1-byte frame is a control code, so those rows get
//! no answer there: the test proves the emulator stays silent and keeps serving.

use crate::harness;

use card_emulator::{profile, Card, VirtualCard};
use harness::{hex, unhex, ListenCard, Vpcd};
use std::path::{Path, PathBuf};

/// One step of a case: an APDU (or a warm reset) and the expected answer pattern.
#[derive(Debug, Clone)]
enum Step {
    Reset(String),
    Apdu(Vec<u8>, String),
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    steps: Vec<Step>,
}

/// Rows PC/SC cannot carry: (name, APDU hex, SW). ISO 7816-3 §12.1: an APDU has at least
/// the 4 header bytes; fewer is a length error.
const SHORT: &[(&str, &str, &str)] = &[
    ("0-byte APDU -> 6700", "", "6700"),
    ("1-byte APDU -> 6700", "A4", "6700"),
    ("2-byte APDU -> 6700", "00A4", "6700"),
    ("3-byte APDU -> 6700", "00A400", "6700"),
    (
        "3-byte APDU with CLA FF -> 6700 (length before class)",
        "FFFFFF",
        "6700",
    ),
    (
        "2-byte APDU 9000 (a response echoed back) -> 6700",
        "9000",
        "6700",
    ),
    (
        "4-byte case 1 header is well formed -> 9000",
        "00A4000C",
        "9000",
    ),
];

fn malformed_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../apdu-specs/conformance/malformed.apdu")
}

/// Parse the subset of the conformance format that malformed.apdu uses (see FORMAT.md).
fn parse_suite(text: &str) -> Vec<Case> {
    let mut cases = vec![Case {
        name: "(setup)".into(),
        steps: Vec::new(),
    }];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if let Some(name) = line.strip_prefix("# case: ") {
            cases.push(Case {
                name: name.to_string(),
                steps: Vec::new(),
            });
        } else if let Some(p) = line.strip_prefix("# expect: ") {
            let last = cases
                .last_mut()
                .and_then(|c| c.steps.last_mut())
                .unwrap_or_else(|| panic!("line {}: expect without a step", n + 1));
            match last {
                Step::Reset(e) | Step::Apdu(_, e) => *e = p.to_string(),
            }
        } else if line.starts_with('#') || line.is_empty() {
        } else if line == "reset" {
            cases
                .last_mut()
                .unwrap()
                .steps
                .push(Step::Reset(String::new()));
        } else {
            let bytes = unhex(&line.replace(' ', "")).unwrap();
            cases
                .last_mut()
                .unwrap()
                .steps
                .push(Step::Apdu(bytes, String::new()));
        }
    }
    cases
}

/// Match a FORMAT.md pattern (hex, `XX`, nibble `X`, `..`) against the whole answer.
fn matches(pattern: &str, answer: &[u8]) -> bool {
    let mut toks: Vec<String> = Vec::new();
    for t in pattern.split_whitespace() {
        if t == ".." || t == "*" {
            toks.push("..".into());
        } else {
            for i in (0..t.len()).step_by(2) {
                toks.push(t[i..(i + 2).min(t.len())].to_uppercase());
            }
        }
    }
    fn go(t: &[String], a: &[u8]) -> bool {
        match t.split_first() {
            None => a.is_empty(),
            Some((first, rest)) if first == ".." => (0..=a.len()).any(|i| go(rest, &a[i..])),
            Some((first, rest)) => {
                let Some((b, more)) = a.split_first() else {
                    return false;
                };
                let want = first.as_bytes();
                let got = format!("{b:02X}");
                let got = got.as_bytes();
                want.len() == 2
                    && (0..2).all(|i| want[i] == b'X' || want[i] == got[i])
                    && go(rest, more)
            }
        }
    }
    go(&toks, answer)
}

fn short_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = SHORT
        .iter()
        .map(|(name, apdu, sw)| Case {
            name: name.to_string(),
            steps: vec![Step::Apdu(unhex(apdu).unwrap(), sw.to_string())],
        })
        .collect();
    // A chain whose total data exceeds 65535 bytes (Nc limit) -> 6700 on the piece that overflows.
    // (Each piece fits a vpcd frame: 65520 + 16 = 65536 data bytes in all.)
    let mut first = unhex("10D6000000FFF0").unwrap();
    first.extend(std::iter::repeat_n(0u8, 0xFFF0));
    let mut second = unhex("00D60000000010").unwrap();
    second.extend([0u8; 16]);
    cases.push(Case {
        name: "a chain over 65535 data bytes -> 6700".into(),
        steps: vec![
            Step::Apdu(unhex("00A4080C0450005006").unwrap(), "9000".into()),
            Step::Apdu(first, "9000".into()),
            Step::Apdu(second, "6700".into()),
            // The chain is gone: the next piece runs alone.
            Step::Apdu(unhex("00D6000001AA").unwrap(), "9000".into()),
            Step::Apdu(unhex("00D600000100").unwrap(), "9000".into()),
        ],
    });
    cases
}

fn run_in_process(cases: &[Case]) -> Vec<String> {
    let mut card = Card::in_memory(profile::build(profile::DEFAULT_PROFILE).unwrap());
    card.power_on();
    let mut failures = Vec::new();
    for c in cases {
        for s in &c.steps {
            let (sent, answer, want) = match s {
                Step::Reset(want) => ("reset".to_string(), card.reset(), want),
                Step::Apdu(apdu, want) => (hex(apdu), card.transmit(apdu), want),
            };
            if !want.is_empty() && !matches(want, &answer) {
                failures.push(format!(
                    "{}: {sent} answered {} (want {want})",
                    c.name,
                    hex(&answer)
                ));
            }
        }
    }
    failures
}

/// Run every case through vpcd frames; rows vpcd cannot carry as APDUs must get no answer.
fn run_through_vpcd(v: &mut Vpcd, cases: &[Case], atr: &[u8]) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut silent = 0;
    for c in cases {
        for s in &c.steps {
            match s {
                Step::Reset(want) => {
                    v.reset().unwrap();
                    let a = v.atr().unwrap();
                    if !matches(want, &a) {
                        failures.push(format!("{}: ATR after reset {}", c.name, hex(&a)));
                    }
                }
                Step::Apdu(apdu, _) if apdu.len() <= 1 => {
                    // 0 bytes: an empty frame (ignored); 1 byte: a control code (A4 is
                    // unknown, ignored). The next answer must be the ATR we then ask for.
                    v.send_frame(apdu).unwrap();
                    let a = v.atr().unwrap();
                    if a != atr {
                        failures.push(format!(
                            "{}: the emulator answered a {}-byte frame: {}",
                            c.name,
                            apdu.len(),
                            hex(&a)
                        ));
                    }
                    silent += 1;
                }
                Step::Apdu(apdu, want) => {
                    let a = v.transmit(apdu).unwrap();
                    if !want.is_empty() && !matches(want, &a) {
                        failures.push(format!(
                            "{}: {} answered {} (want {want})",
                            c.name,
                            hex(apdu),
                            hex(&a)
                        ));
                    }
                }
            }
        }
    }
    (failures, silent)
}

#[test]
fn pattern_matcher_handles_wildcards() {
    assert!(matches("63CX", &[0x63, 0xC3]));
    assert!(matches("3B ..", &[0x3B, 1, 2]));
    assert!(matches("01 9000", &[1, 0x90, 0]));
    assert!(!matches("6700", &[0x67, 0x00, 0x00]));
    assert!(matches(
        "6F0A 820138 .. 9000",
        &[0x6F, 0x0A, 0x82, 1, 0x38, 5, 0x90, 0]
    ));
}

#[test]
fn every_malformation_gets_its_status_word_in_process() {
    let text = std::fs::read_to_string(malformed_file()).unwrap();
    let file = parse_suite(&text);
    assert!(file.len() > 60, "the table lost rows: {}", file.len());
    let mut failures = run_in_process(&file);
    failures.extend(run_in_process(&short_cases()));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_malformation_gets_its_status_word_through_vpcd() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("card.json");
    let emulator = Path::new(env!("CARGO_BIN_EXE_card-emulator"));
    harness::init_state(emulator, &state).unwrap();
    let server = ListenCard::start(emulator, &state).unwrap();
    let mut v = server.connect().unwrap();
    v.power_on().unwrap();
    let atr = v.atr().unwrap();
    assert_eq!(atr.first(), Some(&0x3B));
    let text = std::fs::read_to_string(malformed_file()).unwrap();
    let mut cases = parse_suite(&text);
    cases.extend(short_cases());
    let (failures, silent) = run_through_vpcd(&mut v, &cases, &atr);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(silent, 2, "the 0- and 1-byte rows");
    // Power off between rows clears channels; the card still answers.
    v.power_off().unwrap();
    v.power_on().unwrap();
    assert_eq!(v.tx("00A4000C023F00"), "9000");
    let steps: usize = cases.iter().map(|c| c.steps.len()).sum();
    eprintln!(
        "malformed table: {} cases, {steps} steps through vpcd",
        cases.len()
    );
}
