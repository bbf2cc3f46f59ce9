//! The APDU case matrix in the manner of jCardSim's ApduExtendedCasesTest: cases 1-4 ×
//! short/extended × boundary Le (0, 1, 255, 256, 257, 65535, 65536) and Lc (0, 1, 255, 256, 65535).

use crate::common;
use apdu_specs::{Command, Response, Status};
use card_emulator::{profile, Card, VirtualCard};
use common::*;

fn send(card: &mut Card, cmd: &Command) -> Response {
    Response::parse(&card.transmit(&cmd.to_bytes().unwrap())).unwrap()
}

/// The card with the 64 KiB EF 5006 current, filled with a known pattern.
fn card_on_big_file() -> Card {
    let mut c = card();
    select_app(&mut c);
    select_ef(&mut c, "5006");
    let pattern: Vec<u8> = (0..65535u32).map(|i| (i % 251) as u8).collect();
    let r = send(&mut c, &Command::new(0, 0xD6, 0, 0).with_data(pattern));
    assert_eq!(r.status, Status::Success);
    c
}

fn expected(offset: usize, n: usize) -> Vec<u8> {
    (offset..offset + n).map(|i| (i % 251) as u8).collect()
}

#[test]
fn case1_short_has_no_data_either_way() {
    let mut c = card();
    let r = send(&mut c, &Command::new(0, 0xA4, 0, 0x0C));
    assert_eq!((r.data.len(), r.status), (0, Status::Success));
}

#[test]
fn case2_short_le_boundaries() {
    let mut c = card_on_big_file();
    for (le, wire) in [(1usize, 1u8), (255, 255), (256, 0)] {
        let cmd = Command::new(0, 0xB0, 0, 0).with_le(le);
        assert_eq!(*cmd.to_bytes().unwrap().last().unwrap(), wire);
        let r = send(&mut c, &cmd);
        assert_eq!(r.status, Status::Success, "Le {le}");
        assert_eq!(r.data, expected(0, le), "Le {le}");
    }
}

#[test]
fn case2_extended_le_boundaries() {
    let mut c = card_on_big_file();
    for le in [1usize, 255, 256, 257, 65535] {
        let r = send(
            &mut c,
            &Command::new(0, 0xB0, 0, 0).with_le(le).extended(true),
        );
        assert_eq!(r.status, Status::Success, "Le {le}");
        assert_eq!(r.data, expected(0, le), "Le {le}");
    }
    // Le 0000 = 65536: the file has exactly 65536 bytes.
    let cmd = Command::new(0, 0xB0, 0, 0).with_le(65536);
    assert!(cmd.to_bytes().unwrap().ends_with(&[0, 0, 0]));
    let r = send(&mut c, &cmd);
    assert_eq!((r.data.len(), r.status), (65536, Status::Success));
    // Past the end: fewer bytes and 6282.
    let r = send(&mut c, &Command::new(0, 0xB0, 0x7F, 0xFF).with_le(65535));
    assert_eq!(
        (r.data.len(), r.status),
        (65536 - 0x7FFF, Status::EndOfFile)
    );
}

#[test]
fn case3_short_and_extended_lc_boundaries() {
    let mut c = card_on_big_file();
    // Lc 0 is not a case 3 APDU: UPDATE BINARY without data is a wrong length.
    assert_eq!(
        send(&mut c, &Command::new(0, 0xD6, 0, 0)).status,
        Status::WrongLength
    );
    for lc in [1usize, 255, 256, 65535] {
        let data: Vec<u8> = (0..lc).map(|i| (i as u8) ^ 0x5A).collect();
        let cmd = Command::new(0, 0xD6, 0, 0).with_data(data.clone());
        assert_eq!(cmd.is_extended(), lc > 255);
        assert_eq!(send(&mut c, &cmd).status, Status::Success, "Lc {lc}");
        let r = send(
            &mut c,
            &Command::new(0, 0xB0, 0, 0).with_le(lc).extended(true),
        );
        assert_eq!(r.data, data, "Lc {lc}");
    }
    // Lc 255 forced extended is accepted too.
    let cmd = Command::new(0, 0xD6, 0, 0)
        .with_data(vec![7u8; 255])
        .extended(true);
    assert_eq!(send(&mut c, &cmd).status, Status::Success);
}

#[test]
fn case4_short_and_extended() {
    let mut c = card();
    let aid = vec![0xF0, 0x56, 0x53, 0x45, 0x44, 0x45, 0x4D, 0x4F];
    let fci = send(
        &mut c,
        &Command::new(0, 0xA4, 4, 0)
            .with_data(aid.clone())
            .with_le(256),
    );
    assert_eq!(fci.status, Status::Success);
    assert_eq!(fci.data[0], 0x6F);
    let n = fci.data.len();
    for le in [n, 255, 256] {
        let r = send(
            &mut c,
            &Command::new(0, 0xA4, 4, 0)
                .with_data(aid.clone())
                .with_le(le),
        );
        assert_eq!(r, fci, "Le {le}");
    }
    // Le 1 (short) is shorter than the FCI: 6Cxx with the exact length.
    let r = send(
        &mut c,
        &Command::new(0, 0xA4, 4, 0)
            .with_data(aid.clone())
            .with_le(1),
    );
    assert_eq!(r.status, Status::WrongLe(n as u8));
    for le in [257usize, 65535, 65536] {
        let r = send(
            &mut c,
            &Command::new(0, 0xA4, 4, 0)
                .with_data(aid.clone())
                .with_le(le),
        );
        assert_eq!(r, fci, "Le {le}");
    }
    // Extended Le 1: the card sends one byte and keeps the rest for GET RESPONSE.
    let r = send(
        &mut c,
        &Command::new(0, 0xA4, 4, 0)
            .with_data(aid)
            .with_le(1)
            .extended(true),
    );
    assert_eq!(r.data, fci.data[..1]);
    assert_eq!(r.status, Status::BytesAvailable((n - 1) as u8));
    let rest = send(&mut c, &Command::new(0, 0xC0, 0, 0).with_le(256));
    assert_eq!(rest.data, fci.data[1..]);
}

#[test]
fn case4_extended_lc_with_data_answer() {
    let mut c = card();
    // SELECT by path with a 3-byte Lc.
    let cmd = Command::new(0, 0xA4, 8, 4)
        .with_data(vec![0x50, 0x00, 0x50, 0x06])
        .with_le(65536);
    assert!(cmd.is_extended());
    let r = send(&mut c, &cmd);
    assert_eq!(r.status, Status::Success);
    assert!(r.data.windows(4).any(|w| w == [0x80, 0x02, 0x00, 0x00]) || r.data[0] == 0x62);
}

/// A card with a 600-byte data object: answers longer than 256 bytes in short mode.
#[test]
fn answers_longer_than_256_come_in_61xx_chunks() {
    let text = format!(
        "label = \"long\"\n[[data_object]]\ntag = 0x7F21\nhex = \"{}\"\n",
        "AB".repeat(600)
    );
    let mut c = Card::in_memory(profile::build(&text).unwrap());
    c.power_on();
    let r = tx(&mut c, "00CA7F2100");
    assert_eq!(r.len(), 2 * 258);
    assert!(r.starts_with("7F21820258"));
    assert!(r.ends_with("6100"));
    let r2 = tx(&mut c, "00C0000000");
    assert!(r2.ends_with("615D"), "{}", &r2[r2.len() - 4..]);
    assert_eq!(r2.len(), 2 * 258);
    let r3 = tx(&mut c, "00C000005D");
    assert_eq!(r3.len(), 2 * (0x5D + 2));
    assert!(r3.ends_with("9000"));
    // The same answer in one piece with extended Le.
    let whole = tx(&mut c, "00CA7F21000000");
    assert_eq!(whole.len(), 2 * (605 + 2));
}

#[test]
fn a_transport_limit_cuts_answers_and_announces_the_rest() {
    let mut c = card_on_big_file();
    c.limit_response_length(65535);
    let r = send(&mut c, &Command::new(0, 0xB0, 0, 0).with_le(65536));
    assert_eq!(r.data, expected(0, 65533));
    assert_eq!(r.status, Status::BytesAvailable(3));
    let rest = send(&mut c, &Command::new(0, 0xC0, 0, 0).with_le(65536));
    // The pattern covers bytes 0..65535; the last byte of the EF was never written.
    let mut tail = expected(65533, 2);
    tail.push(0);
    assert_eq!((rest.data, rest.status), (tail, Status::Success));
}
