//! The card manager's GlobalPlatform side, driven by the host half of the same
//! secure-channel crate that real tools' protocol is tested against: SCP03/SCP02 opening,
//! wrapped GET STATUS, GET DATA, PUT KEY, admin writes into a disabled container, policy.

use crate::common;
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
    rotate(&mut c, true, true);
    let mut host = open03(&mut c, &keys(&KEYS03), 0x30, SecurityLevel::FULL).unwrap();
    // INSTALL [for personalization] of container B's ISD-P, then DGIs.
    let (_, sw) = sec(
        &mut c,
        &mut host,
        "80E6200016000010A0000005591010FFFFFFFF890000110000000000",
    );
    assert_eq!(sw, 0x9000);
    let text = b"PROVISIONED";
    let key = server_key();
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
    assert_eq!(c.state().enabled_container(), Some(1));
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

// ---------------------------------------------------------------------------------------
// Trust anchors only under secret keys: the terminal plays the attacker. It knows the
// public GlobalPlatform test keys (40..4F), not the keys the owner rotated to.

/// The owner's secret SCP03 (KVN 30) and SCP02 (KVN 20) keys after rotation.
const KEYS03: [[u8; 16]; 3] = [[0x21; 16], [0x22; 16], [0x23; 16]];
const KEYS02: [[u8; 16]; 3] = [[0x31; 16], [0x32; 16], [0x33; 16]];
const ISDP_A: &str = "A0000005591010FFFFFFFF8900001000";

fn keys(k: &[[u8; 16]; 3]) -> StaticKeys {
    StaticKeys::new(&k[0], &k[1], &k[2]).unwrap()
}

fn open02(
    c: &mut Card,
    keys: &StaticKeys,
    kvn: u8,
    level: SecurityLevel,
) -> Result<scp02::HostSession, String> {
    assert!(tx(c, ISD).ends_with("9000"));
    let hs = scp02::HostHandshake::new(keys, kvn).unwrap();
    let r = c.transmit(&hs.initialize_update());
    let (host, ea) = hs.authenticate(&r, level).map_err(|e| e.to_string())?;
    let r = c.transmit(&ea);
    host.confirm(&r).map_err(|e| e.to_string())?;
    Ok(host)
}

/// PUT KEY replacing key set `kvn` by `new` under the same KVN (GPC §11.8): AES keys (`88`)
/// for SCP03, DES keys (`80`) for SCP02, each encrypted by the session (`encrypt`).
fn put_key_apdu(
    kvn: u8,
    new: &[[u8; 16]; 3],
    aes: bool,
    encrypt: impl Fn(&[u8]) -> Vec<u8>,
) -> String {
    let mut data = vec![kvn];
    for k in new {
        let enc = encrypt(k);
        if aes {
            data.extend([0x88, (enc.len() + 1) as u8, 0x10]);
            data.extend(&enc);
            data.push(0x03);
            data.extend(secure_channel::kcv_aes(k).unwrap());
        } else {
            data.extend([0x80, enc.len() as u8]);
            data.extend(&enc);
            data.push(0x03);
            data.extend(secure_channel::kcv_des3(k).unwrap());
        }
    }
    let mut plain = vec![0x80, 0xD8, kvn, 0x81, data.len() as u8];
    plain.extend(&data);
    plain.push(0x00);
    apdu_specs::hexfmt::upper(&plain)
}

/// The owner rotates the SCP03 set (KVN 30) to [`KEYS03`] and/or the SCP02 set (KVN 20) to
/// [`KEYS02`], each inside a channel opened with its current (test) keys.
fn rotate(c: &mut Card, scp03: bool, scp02: bool) {
    let test = StaticKeys::gp_default();
    if scp03 {
        let mut host = open03(c, &test, 0x30, SecurityLevel::C_MAC).unwrap();
        let apdu = put_key_apdu(0x30, &KEYS03, true, |k| host.encrypt_key(k).unwrap());
        assert_eq!(sec(c, &mut host, &apdu).1, 0x9000);
    }
    if scp02 {
        let mut host = open02(c, &test, 0x20, SecurityLevel::C_MAC).unwrap();
        let apdu = put_key_apdu(0x20, &KEYS02, false, |k| host.encrypt_key(k).unwrap());
        assert_eq!(sec(c, &mut host, &apdu).1, 0x9000);
    }
    let sets = &c.state().gp.key_sets;
    assert_eq!(
        sets.iter().filter(|k| k.is_publicly_known()).count(),
        usize::from(!scp03) + usize::from(!scp02)
    );
}

/// A fresh server key (a real P-256 point).
fn server_key() -> [u8; 65] {
    secure_channel::mutual::SigningKey::generate()
        .unwrap()
        .verifying_key()
        .to_sec1()
}

/// DGI A001 as the terminal sends it: `80 service 81 key`.
fn anchor_dgi(service: &[u8], key: &[u8]) -> Vec<u8> {
    let mut anchor = apdu_specs::tlv::build(0x80, service);
    anchor.extend(apdu_specs::tlv::build(0x81, key));
    let mut dgi = vec![0xA0, 0x01, anchor.len() as u8];
    dgi.extend(anchor);
    dgi
}

/// INSTALL [for personalization] of container A, then STORE DATA of `dgis`; the STORE DATA SW.
fn personalize_a(
    c: &mut Card,
    host: &mut dyn secure_channel::HostSecureChannel,
    dgis: &[u8],
) -> u16 {
    let (_, sw) = sec(c, host, &format!("80E6200016000010{ISDP_A}00000000"));
    assert_eq!(sw, 0x9000);
    let mut plain = vec![0x80, 0xE2, 0x88, 0x00, dgis.len() as u8];
    plain.extend(dgis);
    sec(c, host, &apdu_specs::hexfmt::upper(&plain)).1
}

/// Everything the containers hold (files, PINs, trust anchors, applet state).
fn containers(c: &Card) -> Vec<card_emulator::state::Container> {
    c.state().containers().to_vec()
}

#[test]
fn a_terminal_with_the_public_test_keys_cannot_install_a_trust_anchor() {
    let mut c = common::card();
    let before = containers(&c);
    let evil = anchor_dgi(b"demo", &server_key());
    // SCP03 KVN 30 at the strongest level: authenticated, but with keys everyone knows.
    let mut host = open03(&mut c, &StaticKeys::gp_default(), 0, SecurityLevel::FULL).unwrap();
    assert_eq!(personalize_a(&mut c, &mut host, &evil), 0x6985);
    // SCP02 KVN 20, C-MAC + C-DECRYPTION: the same.
    let mut host = open02(
        &mut c,
        &StaticKeys::gp_default(),
        0x20,
        SecurityLevel::C_DEC_C_MAC,
    )
    .unwrap();
    assert_eq!(personalize_a(&mut c, &mut host, &evil), 0x6985);
    // A file DGI in the same STORE DATA is not written either.
    let mut both = vec![0x6F, 0x01, 0x03, 0xAA, 0xBB, 0xCC];
    both.extend(&evil);
    assert_eq!(personalize_a(&mut c, &mut host, &both), 0x6985);
    assert_eq!(containers(&c), before, "a refused anchor changed the card");
    // File personalization alone still works with the test keys (GP tools out of the box).
    assert_eq!(personalize_a(&mut c, &mut host, &both[..6]), 0x9000);
}

#[test]
fn rotating_only_the_scp03_keys_leaves_the_scp02_test_keys_and_anchors_refused() {
    let mut c = common::card();
    rotate(&mut c, true, false);
    let before = containers(&c);
    let evil = anchor_dgi(b"demo", &server_key());
    // Even the owner, through the rotated SCP03 set: the card still has a public key set.
    let mut host = open03(&mut c, &keys(&KEYS03), 0x30, SecurityLevel::FULL).unwrap();
    assert_eq!(personalize_a(&mut c, &mut host, &evil), 0x6985);
    // The attacker through the SCP02 set that kept the test keys.
    let mut host = open02(
        &mut c,
        &StaticKeys::gp_default(),
        0x20,
        SecurityLevel::C_DEC_C_MAC,
    )
    .unwrap();
    assert_eq!(personalize_a(&mut c, &mut host, &evil), 0x6985);
    assert_eq!(containers(&c), before);
}

#[test]
fn a_key_set_that_only_shares_one_test_key_still_counts_as_public() {
    let mut c = common::card();
    rotate(&mut c, false, true);
    // SCP03 KVN 30 gets secret ENC and MAC but keeps the test DEK 40..4F.
    let mut host = open03(
        &mut c,
        &StaticKeys::gp_default(),
        0x30,
        SecurityLevel::C_MAC,
    )
    .unwrap();
    let new = [KEYS03[0], KEYS03[1], *b"@ABCDEFGHIJKLMNO"];
    let apdu = put_key_apdu(0x30, &new, true, |k| host.encrypt_key(k).unwrap());
    assert_eq!(sec(&mut c, &mut host, &apdu).1, 0x9000);
    let mut host = open03(&mut c, &keys(&new), 0x30, SecurityLevel::FULL).unwrap();
    assert_eq!(
        personalize_a(&mut c, &mut host, &anchor_dgi(b"demo", &server_key())),
        0x6985
    );
    assert!(c.state().containers()[0].trust_anchors.is_empty());
}

#[test]
fn after_rotating_every_key_set_an_anchor_needs_c_mac_and_c_decryption() {
    let mut c = common::card();
    rotate(&mut c, true, true);
    let before = containers(&c);
    let (k1, k2) = (server_key(), server_key());
    // C-MAC alone: 6982 through either protocol, nothing written.
    let mut host = open03(&mut c, &keys(&KEYS03), 0x30, SecurityLevel::C_MAC).unwrap();
    assert_eq!(
        personalize_a(&mut c, &mut host, &anchor_dgi(b"demo", &k1)),
        0x6982
    );
    let mut host = open03(&mut c, &keys(&KEYS03), 0x30, SecurityLevel::C_MAC_R_MAC).unwrap();
    assert_eq!(
        personalize_a(&mut c, &mut host, &anchor_dgi(b"demo", &k1)),
        0x6982
    );
    let mut host = open02(&mut c, &keys(&KEYS02), 0x20, SecurityLevel::C_MAC).unwrap();
    assert_eq!(
        personalize_a(&mut c, &mut host, &anchor_dgi(b"demo", &k1)),
        0x6982
    );
    assert_eq!(containers(&c), before);
    // C-MAC + C-DECRYPTION with the secret keys: installed (SCP03), then replaced (SCP02).
    let mut host = open03(&mut c, &keys(&KEYS03), 0x30, SecurityLevel::C_DEC_C_MAC).unwrap();
    assert_eq!(
        personalize_a(&mut c, &mut host, &anchor_dgi(b"demo", &k1)),
        0x9000
    );
    assert_eq!(c.state().containers()[0].trust_anchors[0].public_key, k1);
    let mut host = open02(&mut c, &keys(&KEYS02), 0x20, SecurityLevel::C_DEC_C_MAC).unwrap();
    assert_eq!(
        personalize_a(&mut c, &mut host, &anchor_dgi(b"demo", &k2)),
        0x9000
    );
    let anchors = &c.state().containers()[0].trust_anchors;
    assert_eq!(anchors.len(), 1);
    assert_eq!(
        (anchors[0].service.as_str(), &anchors[0].public_key[..]),
        ("demo", &k2[..])
    );
    // The attacker's test keys no longer open either set.
    assert!(open03(&mut c, &StaticKeys::gp_default(), 0x30, SecurityLevel::FULL).is_err());
    assert!(open02(
        &mut c,
        &StaticKeys::gp_default(),
        0x20,
        SecurityLevel::C_DEC_C_MAC
    )
    .is_err());
}

#[test]
fn a_trust_anchor_must_be_a_p256_point_for_a_well_formed_service_id() {
    let mut c = common::card();
    rotate(&mut c, true, true);
    let before = containers(&c);
    let good = server_key();
    let mut off_curve = good;
    off_curve[64] ^= 0x01;
    let mut compressed = vec![0x02 | (good[64] & 1)];
    compressed.extend(&good[1..33]);
    let mut not_hex = good;
    not_hex[0] = 0x05;
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("not on the curve", anchor_dgi(b"demo", &off_curve)),
        ("no point at all", anchor_dgi(b"demo", &[0x04; 65])),
        ("64 bytes", anchor_dgi(b"demo", &good[..64])),
        ("compressed", anchor_dgi(b"demo", &compressed)),
        ("not 04", anchor_dgi(b"demo", &not_hex)),
        ("empty service id", anchor_dgi(b"", &good)),
        ("33-byte service id", anchor_dgi(&[b'a'; 33], &good)),
        ("service id not UTF-8", anchor_dgi(&[0xC3, 0x28], &good)),
        ("no key", {
            let t = apdu_specs::tlv::build(0x80, b"demo");
            [vec![0xA0, 0x01, t.len() as u8], t].concat()
        }),
    ];
    let mut host = open03(&mut c, &keys(&KEYS03), 0x30, SecurityLevel::FULL).unwrap();
    for (what, dgi) in &bad {
        assert_eq!(personalize_a(&mut c, &mut host, dgi), 0x6A80, "{what}");
    }
    assert_eq!(containers(&c), before);
    // The limits themselves: 1 and 32 bytes of UTF-8.
    for id in [&b"x"[..], &[b'a'; 32], "caf\u{e9}".as_bytes()] {
        assert_eq!(
            personalize_a(&mut c, &mut host, &anchor_dgi(id, &good)),
            0x9000
        );
    }
    assert_eq!(c.state().containers()[0].trust_anchors.len(), 3);
}
