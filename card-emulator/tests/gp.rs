//! The card manager's GlobalPlatform side, driven by the host half of the same
//! secure-channel crate that real tools' protocol is tested against: SCP03/SCP02 opening,
//! wrapped GET STATUS, GET DATA, PUT KEY, admin writes into a disabled container, policy.

mod common;
use card_emulator::{profile, Card, VirtualCard};
use common::tx;
use secure_channel::{scp02, scp03, SecurityLevel, StaticKeys};

const ISD: &str = "00A4040008A00000015100000000";

fn hex(s: &str) -> Vec<u8> {
    apdu_specs::hexfmt::parse(s).unwrap()
}

fn open03(
    c: &mut Card,
    keys: &StaticKeys,
    kvn: u8,
    level: SecurityLevel,
) -> Result<scp03::HostSession, String> {
    assert!(tx(c, ISD).ends_with("9000"));
    let hs = scp03::HostHandshake::new(keys, kvn).unwrap();
    let r = c.transmit(&hs.initialize_update());
    let (host, ea) = hs.authenticate(&r, level).map_err(|e| e.to_string())?;
    let r = c.transmit(&ea);
    host.confirm(&r).map_err(|e| e.to_string())?;
    Ok(host)
}

/// Send a plain command through the session; returns (data, SW).
fn sec(
    c: &mut Card,
    host: &mut dyn secure_channel::HostSecureChannel,
    plain: &str,
) -> (Vec<u8>, u16) {
    let wire = host.wrap_command(&hex(plain)).unwrap();
    let r = c.transmit(&wire);
    host.unwrap_response(&r).unwrap()
}

#[test]
fn scp03_full_level_get_status_lists_every_container_with_its_life_cycle() {
    let mut c = common::card();
    let mut host = open03(&mut c, &StaticKeys::gp_default(), 0, SecurityLevel::FULL).unwrap();
    let (data, sw) = sec(&mut c, &mut host, "80F24002024F0000");
    assert_eq!(sw, 0x9000);
    let text = apdu_specs::hexfmt::upper(&data);
    assert!(
        text.contains("4F10A0000005591010FFFFFFFF89000010009F70013F"),
        "{text}"
    );
    assert!(
        text.contains("4F10A0000005591010FFFFFFFF89000011009F70011F"),
        "{text}"
    );
    let (data, sw) = sec(&mut c, &mut host, "80F28002024F0000");
    assert_eq!(sw, 0x9000);
    assert!(
        apdu_specs::hexfmt::upper(&data).starts_with("E3"),
        "{data:02X?}"
    );
    // Next occurrence with nothing left.
    let (_, sw) = sec(&mut c, &mut host, "80F24003024F0000");
    assert_eq!(sw, 0x6A88);
}

#[test]
fn management_needs_the_secure_channel_get_data_does_not() {
    let mut c = common::card();
    assert!(tx(&mut c, ISD).ends_with("9000"));
    assert_eq!(tx(&mut c, "80F24002024F0000"), "6982");
    let info = tx(&mut c, "80CA00E000");
    assert!(
        info.starts_with("E0") && info.contains("C00401308810") && info.contains("C00401208010"),
        "{info}"
    );
    assert!(tx(&mut c, "80CA9F7F00").starts_with("9F7F2A"));
    assert!(tx(&mut c, "80CA006600")
        .starts_with("663E733C06072A864886FC6B01600C060A2A864886FC6B02020301"));
    assert_eq!(tx(&mut c, "80CA123400"), "6A88");
}

#[test]
fn a_wrong_host_cryptogram_answers_6300_and_is_counted_durably() {
    let mut c = common::card();
    let wrong = StaticKeys::from_single(&[0x11; 16]).unwrap();
    assert!(tx(&mut c, ISD).ends_with("9000"));
    let hs = scp03::HostHandshake::new(&wrong, 0).unwrap();
    let r = c.transmit(&hs.initialize_update());
    // The host notices the card cryptogram does not match its keys.
    assert!(hs.authenticate(&r, SecurityLevel::C_MAC).is_err());
    // Replay a host cryptogram computed with the right keys for another challenge: refused.
    let good = scp03::HostHandshake::new(&StaticKeys::gp_default(), 0).unwrap();
    let r = c.transmit(&good.initialize_update());
    let (_, mut ea) = good.authenticate(&r, SecurityLevel::C_MAC).unwrap();
    ea[6] ^= 0x01;
    assert_eq!(c.transmit(&ea), [0x63, 0x00]);
    assert_eq!(c.state().gp.auth_failures, 1);
    // The session is gone.
    assert_eq!(tx(&mut c, "84F2400200"), "6882");
}

#[test]
fn a_wrong_c_mac_answers_6982_and_closes_the_session() {
    let mut c = common::card();
    let mut host = open03(&mut c, &StaticKeys::gp_default(), 0, SecurityLevel::C_MAC).unwrap();
    let mut wire = host.wrap_command(&hex("80F24002024F0000")).unwrap();
    let last = wire.len() - 2;
    wire[last] ^= 0x80;
    assert_eq!(c.transmit(&wire), [0x69, 0x82]);
    assert_eq!(c.state().gp.auth_failures, 1);
    let wire = host.wrap_command(&hex("80F24002024F0000")).unwrap();
    assert_eq!(c.transmit(&wire), [0x68, 0x82]);
}

#[test]
fn a_clear_command_inside_a_session_ends_it() {
    let mut c = common::card();
    let mut host = open03(&mut c, &StaticKeys::gp_default(), 0, SecurityLevel::C_MAC).unwrap();
    assert_eq!(tx(&mut c, "80F24002024F0000"), "6982");
    let wire = host.wrap_command(&hex("80F24002024F0000")).unwrap();
    assert_eq!(c.transmit(&wire), [0x68, 0x82]);
}

#[test]
fn put_key_replaces_the_scp03_key_set_and_only_the_new_keys_open() {
    let mut c = common::card();
    let mut host = open03(&mut c, &StaticKeys::gp_default(), 0, SecurityLevel::FULL).unwrap();
    let new: [[u8; 16]; 3] = [[0x21; 16], [0x22; 16], [0x23; 16]];
    let mut data = vec![0x31];
    let mut kcvs = vec![0x31];
    for k in &new {
        let enc = host.encrypt_key(k).unwrap();
        let kcv = secure_channel::kcv_aes(k).unwrap();
        data.extend([0x88, (enc.len() + 1) as u8, 0x10]);
        data.extend(&enc);
        data.push(0x03);
        data.extend(kcv);
        kcvs.extend(kcv);
    }
    let mut plain = vec![0x80, 0xD8, 0x30, 0x81, data.len() as u8];
    plain.extend(&data);
    plain.push(0x00);
    let wire = host.wrap_command(&plain).unwrap();
    let (answer, sw) = host.unwrap_response(&c.transmit(&wire)).unwrap();
    assert_eq!((answer, sw), (kcvs, 0x9000));
    assert_eq!(c.state().gp.key_sets[0].kvn, 0x31);
    // The default keys no longer open a channel; the new ones do.
    assert!(open03(&mut c, &StaticKeys::gp_default(), 0, SecurityLevel::C_MAC).is_err());
    let keys = StaticKeys::new(&new[0], &new[1], &new[2]).unwrap();
    assert!(open03(&mut c, &keys, 0x31, SecurityLevel::C_MAC).is_ok());
}

#[test]
fn put_key_with_a_wrong_kcv_changes_nothing() {
    let mut c = common::card();
    let mut host = open03(&mut c, &StaticKeys::gp_default(), 0, SecurityLevel::C_MAC).unwrap();
    let k = [0x21u8; 16];
    let enc = host.encrypt_key(&k).unwrap();
    let mut data = vec![0x31];
    for _ in 0..3 {
        data.extend([0x88, (enc.len() + 1) as u8, 0x10]);
        data.extend(&enc);
        data.extend([0x03, 0x00, 0x00, 0x00]);
    }
    let mut plain = vec![0x80, 0xD8, 0x30, 0x81, data.len() as u8];
    plain.extend(&data);
    let wire = host.wrap_command(&plain).unwrap();
    let (_, sw) = host.unwrap_response(&c.transmit(&wire)).unwrap();
    assert_eq!(sw, 0x6A80);
    assert_eq!(c.state().gp.key_sets[0].kvn, 0x30);
}

#[test]
fn admin_writes_a_file_and_a_trust_anchor_into_a_disabled_container() {
    let mut c = common::card();
    let mut host = open03(&mut c, &StaticKeys::gp_default(), 0, SecurityLevel::FULL).unwrap();
    // INSTALL [for personalization] of container B's ISD-P, then DGIs.
    let (_, sw) = sec(
        &mut c,
        &mut host,
        "80E6200016000010A0000005591010FFFFFFFF890000110000000000",
    );
    assert_eq!(sw, 0x9000);
    let text = b"PROVISIONED";
    let key = [0x04u8; 65];
    let mut anchor = apdu_specs::tlv::build(0x80, b"echo");
    anchor.extend(apdu_specs::tlv::build(0x81, &key));
    let mut dgis = vec![0x6F, 0x01, text.len() as u8];
    dgis.extend(text);
    dgis.extend([0xA0, 0x01, anchor.len() as u8]);
    dgis.extend(&anchor);
    let mut plain = vec![0x80, 0xE2, 0x88, 0x00, dgis.len() as u8];
    plain.extend(&dgis);
    let wire = host.wrap_command(&plain).unwrap();
    let (_, sw) = host.unwrap_response(&c.transmit(&wire)).unwrap();
    assert_eq!(sw, 0x9000);
    let b = &c.state().containers()[1];
    assert!(!b.enabled);
    assert_eq!(b.trust_anchors[0].service, "echo");
    assert_eq!(b.trust_anchors[0].public_key, key);
    // A DGI for a missing file is refused and nothing is written.
    let plain = hex("80E288000C 1234 03 AABBCC 6F01 03 DDEEFF"
        .replace(' ', "")
        .as_str());
    let wire = host.wrap_command(&plain).unwrap();
    let (_, sw) = host.unwrap_response(&c.transmit(&wire)).unwrap();
    assert_eq!(sw, 0x6A82);
    assert!(c.state().containers()[1].files.iter().any(|f| matches!(&f.body, card_emulator::state::FileBody::Transparent { data } if data.starts_with(b"PROVISIONED"))));
    // Unreachable at runtime until container B is enabled (this SELECT also ends the session).
    assert_eq!(tx(&mut c, "00A4040C08F0565345434F4E54"), "9000");
    assert_eq!(tx(&mut c, "00A4020C026F01"), "9000");
    assert_eq!(
        tx(&mut c, "00B000000B"),
        "636F6E7461696E65722041".to_string() + "9000"
    );
}

#[test]
fn scp02_opens_with_its_own_key_set() {
    let mut c = common::card();
    assert!(tx(&mut c, ISD).ends_with("9000"));
    let hs = scp02::HostHandshake::new(&StaticKeys::gp_default(), 0x20).unwrap();
    let r = c.transmit(&hs.initialize_update());
    let (mut host, ea) = hs.authenticate(&r, SecurityLevel::C_MAC).unwrap();
    assert_eq!(c.transmit(&ea), [0x90, 0x00]);
    assert_eq!(c.state().gp.scp02_counter, 1);
    let (data, sw) = sec(&mut c, &mut host, "80F24002024F0000");
    assert_eq!(sw, 0x9000);
    assert_eq!(data[0], 0xE3);
}

#[test]
fn policy_lets_es10c_management_through_only_inside_a_secure_channel() {
    let text = profile::DEFAULT_PROFILE.replace(
        "es10_requires_secure_channel = false",
        "es10_requires_secure_channel = true",
    );
    let mut c = Card::in_memory(profile::build(&text).unwrap());
    c.power_on();
    let enable_b = "80E2910014BF3111A00C5A0A9800103254769810321481010000";
    assert!(tx(&mut c, ISD).ends_with("9000"));
    assert_eq!(tx(&mut c, enable_b), "BF31038001039000");
    let mut host = open03(&mut c, &StaticKeys::gp_default(), 0, SecurityLevel::FULL).unwrap();
    let (data, sw) = sec(&mut c, &mut host, enable_b);
    assert_eq!((data, sw), (hex("BF3103800100"), 0x9000));
    assert_eq!(c.state().active_container(), Some(1));
}

#[test]
fn the_scp02_counter_stops_at_its_maximum_and_no_session_repeats_a_counter_value() {
    let mut state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    state.gp.scp02_counter = 0xFFFD;
    let mut c = Card::in_memory(state);
    c.power_on();
    let mut seen = Vec::new();
    for expected_counter in [0xFFFE, 0xFFFF] {
        assert!(tx(&mut c, ISD).ends_with("9000"));
        let hs = scp02::HostHandshake::new(&StaticKeys::gp_default(), 0x20).unwrap();
        let r = c.transmit(&hs.initialize_update());
        // GP Card Spec E.5.1.6: the sequence counter is bytes 12-13 of the answer.
        seen.push(u16::from_be_bytes([r[12], r[13]]));
        let (_, ea) = hs.authenticate(&r, SecurityLevel::C_MAC).unwrap();
        assert_eq!(c.transmit(&ea), [0x90, 0x00]);
        assert_eq!(c.state().gp.scp02_counter, expected_counter);
    }
    assert_eq!(seen, [0xFFFD, 0xFFFE]);
    // 0xFFFF could never advance: INITIALIZE UPDATE refuses instead of wrapping to 0000.
    assert!(tx(&mut c, ISD).ends_with("9000"));
    let hs = scp02::HostHandshake::new(&StaticKeys::gp_default(), 0x20).unwrap();
    assert_eq!(c.transmit(&hs.initialize_update()), [0x69, 0x85]);
    assert_eq!(c.state().gp.scp02_counter, 0xFFFF);
    // SCP03 (its own counter) still opens.
    assert!(open03(&mut c, &StaticKeys::gp_default(), 0, SecurityLevel::C_MAC).is_ok());
}
