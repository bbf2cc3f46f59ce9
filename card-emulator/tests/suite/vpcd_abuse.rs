//! vpcd framing abuse against `card-emulator run`, listening (`--listen`) and dialing (`--vpcd`, the default mode): garbage, lying lengths, half frames, hang-ups mid-frame, empty frames, an oversized answer; the emulator logs, keeps serving (listens again, or dials again), and the card state is intact.

use crate::harness;

use harness::{DialingCard, ListenCard, Log, Vpcd};
use std::path::{Path, PathBuf};
use std::time::Duration;

const CONTENT: &str = "5645525349304E2D31";

/// Write a known content in EF 5005 and spend one wrong PIN try; return the VERIFY status.
fn prepare(v: &mut Vpcd) -> String {
    v.power_on().unwrap();
    assert_eq!(v.tx("00A4040C08F056534544454D4F"), "9000");
    assert_eq!(v.tx("00A4020C025005"), "9000");
    assert_eq!(v.tx(&format!("00D6000009{CONTENT}")), "9000");
    assert_eq!(v.tx("002000810439393939"), "63C2");
    v.tx("00200081")
}

/// A fresh connection sees the written EF and the same PIN counter.
fn intact(mut v: Vpcd, pin_status: &str, case: &str) {
    v.power_on().unwrap();
    let atr = v.atr().unwrap_or_else(|e| panic!("{case}: no ATR: {e}"));
    assert_eq!(atr.first(), Some(&0x3B), "{case}");
    assert_eq!(v.tx("00A4040C08F056534544454D4F"), "9000", "{case}");
    assert_eq!(v.tx("00A4020C025005"), "9000", "{case}");
    assert_eq!(v.tx("00B0000009"), format!("{CONTENT}9000"), "{case}");
    assert_eq!(v.tx("00200081"), pin_status, "{case}: PIN counter changed");
}

type Abuse = fn(&mut Vpcd);

/// Each abuse runs on a fresh connection, which is then hung up.
fn abuses() -> Vec<(&'static str, Abuse)> {
    vec![
        ("garbage bytes then hang-up", |v| {
            v.send_raw(&[0xDE, 0xAD, 0xBE, 0xEF, 0x13, 0x37, 0x00, 0xFF, 0x42])
                .unwrap();
        }),
        ("a length larger than what follows, then hang-up", |v| {
            v.send_raw(&[0x01, 0x00, 0x00, 0xA4, 0x00]).unwrap();
        }),
        (
            "the largest length (65535) with 3 bytes, then hang-up",
            |v| {
                v.send_raw(&[0xFF, 0xFF, 0x00, 0xB0, 0x00]).unwrap();
            },
        ),
        ("half a length prefix, then hang-up", |v| {
            v.send_raw(&[0x00]).unwrap();
        }),
        ("a hang-up in the middle of a wrong VERIFY frame", |v| {
            // 9-byte VERIFY announced, 6 sent: the card must not count a try.
            v.send_raw(&[0x00, 0x09, 0x00, 0x20, 0x00, 0x81, 0x04, 0x39])
                .unwrap();
        }),
        (
            "0-length frames, then a valid exchange, then hang-up",
            |v| {
                v.send_raw(&[0, 0, 0, 0, 0, 0]).unwrap();
                v.power_on().unwrap();
                assert_eq!(v.tx("00A4000C023F00"), "9000");
            },
        ),
        ("unknown 1-byte control codes, then hang-up", |v| {
            for c in [0x03u8, 0x05, 0x7F, 0xFF] {
                v.send_frame(&[c]).unwrap();
            }
            assert_eq!(v.atr().unwrap().first(), Some(&0x3B));
        }),
        (
            "an answer larger than a frame (Le 65536 on 64 KiB), then hang-up",
            |v| {
                v.power_on().unwrap();
                assert_eq!(v.tx("00A4040C08F056534544454D4F"), "9000");
                assert_eq!(v.tx("00A4020C025006"), "9000");
                let r = v
                    .transmit(&[0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x00])
                    .unwrap();
                // 65535 bytes at most per frame: the card cuts the data and announces the rest.
                assert!(r.len() <= 65535, "{}", r.len());
                assert_eq!(&r[r.len() - 2..], &[0x61, 0x03], "rest announced");
                assert_eq!(v.tx("00C0000003"), "0000009000");
            },
        ),
        (
            "a frame claiming 65535 bytes sent in full (garbage APDU)",
            |v| {
                let mut f = vec![0xFF, 0xFF];
                f.extend(std::iter::repeat_n(0xAB, 65535));
                v.send_raw(&f).unwrap();
                let r = v.read_frame().unwrap();
                assert_eq!(r.len(), 2, "an SW");
            },
        ),
        ("a hang-up with an answer unread", |v| {
            v.send_frame(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00])
                .unwrap();
        }),
    ]
}

/// The emulator logged the truncated, empty and unknown frames of [`abuses`].
fn logged_every_abuse(log: &Log) {
    assert!(
        log.wait("in the middle of a frame", Duration::from_secs(10)),
        "{:?}",
        log.lines()
    );
    assert!(
        log.count("in the middle of a frame") >= 4,
        "{:?}",
        log.lines()
    );
    assert!(log.count("empty frame") >= 3, "{:?}", log.lines());
    assert!(log.count("unknown control code") >= 4, "{:?}", log.lines());
}

fn fresh_state(dir: &Path) -> (PathBuf, &'static Path) {
    let state = dir.join("card.json");
    let emulator = Path::new(env!("CARGO_BIN_EXE_card-emulator"));
    harness::init_state(emulator, &state).unwrap();
    (state, emulator)
}

#[test]
fn framing_abuse_leaves_the_listener_serving_and_the_state_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (state, emulator) = fresh_state(dir.path());
    let mut server = ListenCard::start(emulator, &state).unwrap();
    let pin = prepare(&mut server.connect().unwrap());
    assert_eq!(pin, "63C2");
    let mut cases = 0;
    for (case, abuse) in abuses() {
        abuse(&mut server.connect().unwrap()); // then hang-up
        intact(server.connect().unwrap(), &pin, case);
        assert!(server.alive(), "{case}: the emulator exited");
        cases += 1;
    }
    // A second connection while the first is open waits its turn; the first is served.
    let mut first = server.connect().unwrap();
    let mut second = server.connect().unwrap();
    first.power_on().unwrap();
    assert_eq!(first.tx("00A4000C023F00"), "9000");
    drop(first);
    second.power_on().unwrap();
    assert_eq!(second.tx("00A4000C023F00"), "9000");
    drop(second);
    cases += 1;
    logged_every_abuse(&server.log);
    intact(server.connect().unwrap(), &pin, "after every abuse");
    eprintln!("vpcd abuse (listen mode): {cases} cases, state intact, listener alive");
}

#[test]
fn framing_abuse_by_the_vpcd_it_dials_leaves_the_card_dialing_and_the_state_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (state, emulator) = fresh_state(dir.path());
    let mut card = DialingCard::start(emulator, &state).unwrap();
    let pin = prepare(&mut card.accept().unwrap());
    assert_eq!(pin, "63C2");
    let mut cases = 0;
    for (case, abuse) in abuses() {
        // Each hang-up makes the card dial again: the next connection is its reconnect.
        abuse(&mut card.accept().unwrap());
        intact(card.accept().unwrap(), &pin, case);
        assert!(card.alive(), "{case}: the emulator exited");
        cases += 1;
    }
    // vpcd (pcscd) goes away for a while and comes back on the same port, mid-frame.
    let mut v = card.accept().unwrap();
    v.send_raw(&[0x00, 0x09, 0x00, 0x20]).unwrap();
    drop(v);
    card.close_listener();
    assert!(
        card.log.wait("waiting for vpcd", Duration::from_secs(10)),
        "{:?}",
        card.log.lines()
    );
    std::thread::sleep(Duration::from_millis(300)); // a few refused dials
    card.reopen_listener().unwrap();
    intact(card.accept().unwrap(), &pin, "vpcd back after an outage");
    cases += 1;
    logged_every_abuse(&card.log);
    assert!(
        card.log.count("connected to vpcd") >= cases,
        "{:?}",
        card.log.lines()
    );
    eprintln!("vpcd abuse (connect mode): {cases} cases, state intact, card dialing");
}
