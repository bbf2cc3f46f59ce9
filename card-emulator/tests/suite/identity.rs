//! Containers are named by identity (ISD-P AID), never by list position: after an ES10c
//! DeleteProfile shifts the list, a personalization session opened by INSTALL [for
//! personalization] and a channel's selected applet or files still mean the same
//! container, or the card refuses with a status word.

use crate::common;
use apdu_specs::tlv;
use card_emulator::state::{CardState, Container, FileBody};
use card_emulator::{profile, Card, VirtualCard};
use common::tx;
use common::CONTAINER_C;
use secure_channel::{scp03, SecurityLevel, StaticKeys};

const AID_A: &str = "A0000005591010FFFFFFFF8900001000";
const AID_B: &str = "A0000005591010FFFFFFFF8900001100";
const AID_C: &str = "A0000005591010FFFFFFFF8900001200";
const ISD_R: &str = "A0000005591010FFFFFFFF8900000100";

fn hex(s: &str) -> Vec<u8> {
    apdu_specs::hexfmt::parse(s).unwrap()
}

fn upper(b: &[u8]) -> String {
    apdu_specs::hexfmt::upper(b)
}

fn three_containers() -> Card {
    let text = format!("{}{CONTAINER_C}", profile::DEFAULT_PROFILE);
    let state = profile::build(&text).unwrap();
    assert_eq!(state.containers().len(), 3);
    assert_eq!(upper(&state.containers()[2].isdp_aid), AID_C);
    let mut c = Card::in_memory(state);
    c.power_on();
    c
}

fn by_aid<'a>(s: &'a CardState, aid: &str) -> Option<&'a Container> {
    let aid = hex(aid);
    s.containers().iter().find(|c| c.isdp_aid == aid)
}

fn text_of(c: &Container, fid: u16) -> Vec<u8> {
    c.files
        .iter()
        .find(|f| f.fid == fid)
        .map(|f| match &f.body {
            FileBody::Transparent { data } => data.clone(),
            _ => Vec::new(),
        })
        .unwrap_or_default()
}

/// One ES10c function on channel 1 (opened and given the ISD-R on first use), in clear;
/// returns the SGP.22 result code.
fn es10(c: &mut Card, payload: &[u8]) -> u8 {
    let _ = tx(c, "0070000101");
    assert_eq!(tx(c, &format!("01A4040C10{ISD_R}")), "9000");
    let mut apdu = vec![0x81, 0xE2, 0x91, 0x00, payload.len() as u8];
    apdu.extend(payload);
    apdu.push(0);
    let r = c.transmit(&apdu);
    assert_eq!(&r[r.len() - 2..], &[0x90, 0x00], "ES10c: {}", upper(&r));
    r[r.len() - 3]
}

fn enable(c: &mut Card, aid: &str) -> u8 {
    let mut body = tlv::build(0xA0, &tlv::build(0x4F, &hex(aid)));
    body.extend(tlv::build(0x81, &[0x00]));
    es10(c, &tlv::build(0xBF31, &body))
}

fn delete(c: &mut Card, aid: &str) -> u8 {
    es10(c, &tlv::build(0xBF33, &tlv::build(0x4F, &hex(aid))))
}

/// SCP03 at full level with the default test keys on channel 0, through the GP ISD.
fn open_scp03(c: &mut Card) -> scp03::HostSession {
    assert!(tx(c, "00A4040008A00000015100000000").ends_with("9000"));
    let hs = scp03::HostHandshake::new(&StaticKeys::gp_default(), 0).unwrap();
    let r = c.transmit(&hs.initialize_update());
    let (host, ea) = hs.authenticate(&r, SecurityLevel::FULL).unwrap();
    host.confirm(&c.transmit(&ea)).unwrap();
    host
}

/// A plain command through the session; (data, SW).
fn secured(c: &mut Card, host: &mut scp03::HostSession, plain: &[u8]) -> (Vec<u8>, u16) {
    let wire = host.wrap_command(plain).unwrap();
    host.unwrap_response(&c.transmit(&wire)).unwrap()
}

fn install_for_personalization(c: &mut Card, host: &mut scp03::HostSession, aid: &str) -> u16 {
    let aid = hex(aid);
    let mut data = vec![0x00, 0x00, aid.len() as u8];
    data.extend(&aid);
    data.extend([0x00, 0x00, 0x00]);
    let mut plain = vec![0x80, 0xE6, 0x20, 0x00, data.len() as u8];
    plain.extend(&data);
    plain.push(0x00);
    secured(c, host, &plain).1
}

/// STORE DATA (DGI format, last block): EF 6F01 gets `text`, and a trust anchor for
/// `service` with a dummy key.
fn store_dgis(c: &mut Card, host: &mut scp03::HostSession, text: &[u8], service: &str) -> u16 {
    let mut anchor = tlv::build(0x80, service.as_bytes());
    anchor.extend(tlv::build(0x81, &[0x04; 65]));
    let mut dgis = vec![0x6F, 0x01, text.len() as u8];
    dgis.extend(text);
    dgis.extend([0xA0, 0x01, anchor.len() as u8]);
    dgis.extend(&anchor);
    let mut plain = vec![0x80, 0xE2, 0x88, 0x00, dgis.len() as u8];
    plain.extend(&dgis);
    secured(c, host, &plain).1
}

fn services(c: &Container) -> Vec<&str> {
    c.trust_anchors.iter().map(|a| a.service.as_str()).collect()
}

fn anchored(c: &Container, service: &str) -> bool {
    c.trust_anchors.iter().any(|a| a.service == service)
}

#[test]
fn personalization_keeps_writing_the_named_container_after_an_earlier_one_is_deleted() {
    let mut c = three_containers();
    // B enabled, so A is disabled and can be deleted.
    assert_eq!(enable(&mut c, AID_B), 0);
    let mut host = open_scp03(&mut c);
    assert_eq!(
        install_for_personalization(&mut c, &mut host, AID_B),
        0x9000
    );
    // The LPA on channel 1 deletes A, listed before B: B and C move up one place.
    assert_eq!(delete(&mut c, AID_A), 0);
    assert!(by_aid(c.state(), AID_A).is_none());
    let b_before = by_aid(c.state(), AID_B).unwrap().clone();
    let c_before = by_aid(c.state(), AID_C).unwrap().clone();

    let sw = store_dgis(&mut c, &mut host, b"PERSONALIZED", "late");

    let b_after = by_aid(c.state(), AID_B).unwrap();
    let c_after = by_aid(c.state(), AID_C).unwrap();
    assert!(
        *c_after == c_before,
        "the STORE DATA for B (ISD-P {AID_B}) answered {sw:04X} and changed container C \
         ({AID_C}): 6F01 {:?} -> {:?}, trust anchors {:?} -> {:?}",
        String::from_utf8_lossy(&text_of(&c_before, 0x6F01)),
        String::from_utf8_lossy(&text_of(c_after, 0x6F01)),
        services(&c_before),
        services(c_after),
    );
    if sw == 0x9000 {
        assert!(text_of(b_after, 0x6F01).starts_with(b"PERSONALIZED"));
        assert!(anchored(b_after, "late"));
    } else {
        assert!(*b_after == b_before, "refused ({sw:04X}) but B changed");
    }
    assert_eq!(c.state().enabled_container(), Some(0));
    assert!(b_after.enabled);
}

#[test]
fn personalization_of_a_deleted_container_is_refused_and_writes_no_other() {
    let mut c = common::card();
    assert_eq!(enable(&mut c, AID_B), 0);
    let mut host = open_scp03(&mut c);
    assert_eq!(
        install_for_personalization(&mut c, &mut host, AID_A),
        0x9000
    );
    let deleted = delete(&mut c, AID_A);
    let b_before = by_aid(c.state(), AID_B).unwrap().clone();

    let sw = store_dgis(&mut c, &mut host, b"FOR A ONLY", "for-a");

    let b_after = by_aid(c.state(), AID_B).unwrap();
    assert!(
        *b_after == b_before,
        "the STORE DATA for A (ISD-P {AID_A}, deleted: result {deleted}) answered {sw:04X} \
         and changed container B ({AID_B}): 6F01 {:?} -> {:?}, trust anchors {:?} -> {:?}",
        String::from_utf8_lossy(&text_of(&b_before, 0x6F01)),
        String::from_utf8_lossy(&text_of(b_after, 0x6F01)),
        services(&b_before),
        services(b_after),
    );
    match by_aid(c.state(), AID_A) {
        // A is gone: nothing may accept a write for it.
        None => assert_ne!(sw, 0x9000, "a write for a deleted container was accepted"),
        // The card refused the delete while A was being personalized: A gets the write.
        Some(a) => {
            assert_ne!(deleted, 0);
            assert_eq!(sw, 0x9000);
            assert!(text_of(a, 0x6F01).starts_with(b"FOR A ONLY"));
        }
    }
}

/// GET DATA 5A of the authentication applet on `ch`, following 61xx; (data, SW) as hex.
fn identity(c: &mut Card, ch: u8) -> (String, String) {
    let mut r = tx(c, &format!("{:02X}CA005A00", 0x80 | ch));
    let mut data = String::new();
    while r.len() == 4 && r.starts_with("61") {
        r = tx(c, &format!("{ch:02X}C00000{}", &r[2..]));
        data.push_str(&r[..r.len() - 4]);
        r = r[r.len() - 4..].to_string();
    }
    if r.len() > 4 {
        data.push_str(&r[..r.len() - 4]);
        r = r[r.len() - 4..].to_string();
    }
    (data, r)
}

#[test]
fn a_channel_keeps_its_container_when_an_earlier_container_is_deleted() {
    let mut c = three_containers();
    assert_eq!(enable(&mut c, AID_C), 0);
    let iccid_c = upper(&by_aid(c.state(), AID_C).unwrap().iccid);
    let others: Vec<(String, String)> = [AID_A, AID_B]
        .iter()
        .map(|a| (a.to_string(), upper(&by_aid(c.state(), a).unwrap().iccid)))
        .collect();
    // Channel 2: C's authentication applet, C's PIN verified.
    assert_eq!(tx(&mut c, "0070000202"), "9000");
    assert!(tx(&mut c, "02A4040007F04D415554480100").ends_with("9000"));
    assert_eq!(tx(&mut c, "022000810431323334"), "9000");
    let (id, sw) = identity(&mut c, 2);
    assert_eq!(sw, "9000");
    assert!(id.contains(&iccid_c) && id.contains(AID_C), "{id}");
    // Channel 3: C's files, EF 6F02 current, C's PIN verified.
    assert_eq!(tx(&mut c, "0070000303"), "9000");
    assert_eq!(tx(&mut c, "03A4040C08F0565345434F4E54"), "9000");
    assert_eq!(tx(&mut c, "03A4020C026F02"), "9000");
    assert_eq!(tx(&mut c, "032000810431323334"), "9000");
    let secret_c = format!("{}9000", upper(b"container C: secret"));
    assert_eq!(tx(&mut c, "03B0000013"), secret_c);

    // A and B are deleted one after the other: C moves from the third place to the first.
    assert_eq!(delete(&mut c, AID_A), 0);
    assert_eq!(delete(&mut c, AID_B), 0);
    assert_eq!(c.state().containers().len(), 1);

    let (id, sw) = identity(&mut c, 2);
    for (aid, iccid) in &others {
        assert!(
            !id.contains(aid) && !id.contains(iccid),
            "channel 2 now answers for deleted container {aid}: {id}"
        );
    }
    if sw == "9000" {
        assert!(id.contains(&iccid_c) && id.contains(AID_C), "{id}");
    }
    let r = tx(&mut c, "03B0000013");
    assert!(
        r == secret_c || r.len() == 4,
        "channel 3 reads something else than C's EF 6F02: {r}"
    );
    // The files of channel 3 are still C's.
    let r = tx(&mut c, "03A4020C026F01");
    if r == "9000" {
        let data = tx(&mut c, "03B0000018");
        assert_eq!(data, format!("{}9000", upper(b"container C: public data")));
    }
}

#[test]
fn a_channel_on_the_enabled_container_keeps_it_when_a_disabled_one_before_it_is_deleted() {
    // Two containers: B enabled on channel 2 (applet) and channel 3 (files), A deleted.
    let mut c = common::card();
    assert_eq!(enable(&mut c, AID_B), 0);
    assert_eq!(tx(&mut c, "0070000202"), "9000");
    assert!(tx(&mut c, "02A4040007F04D415554480100").ends_with("9000"));
    assert_eq!(tx(&mut c, "0070000303"), "9000");
    assert_eq!(tx(&mut c, "03A4040C08F0565345434F4E54"), "9000");
    assert_eq!(tx(&mut c, "03A4020C026F01"), "9000");
    assert_eq!(delete(&mut c, AID_A), 0);
    let (id, sw) = identity(&mut c, 2);
    assert_eq!(sw, "9000");
    assert!(id.contains(AID_B) && !id.contains(AID_A), "{id}");
    assert_eq!(
        tx(&mut c, "03B0000018"),
        format!("{}9000", upper(b"container B: public data"))
    );
}
