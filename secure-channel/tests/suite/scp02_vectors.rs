//! Published SCP02 sessions replayed byte-exact from both ends.

use secure_channel::scp02::{self, CardSession, HostHandshake};
use secure_channel::{
    CardChallenge, CardConfig, InitializeUpdate, ScpError, SecurityLevel, StaticKeys,
};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("test vector hex")
}

fn with_sw(data: &[u8]) -> Vec<u8> {
    [data, &[0x90, 0x00]].concat()
}

// osmocom/pysim tests/unittests/test_globalplatform.py, SCP02_Test (real card trace):
// KIC/KID/KIK, INITIALIZE UPDATE with KVN 20, response, EXTERNAL AUTHENTICATE level 01 and the
// four ISO cases wrapped with C-MAC and ICV encryption.
fn pysim_keys() -> StaticKeys {
    StaticKeys::new(
        &h("100102030405060708090a0b0c0d0e0f"),
        &h("101102030405060708090a0b0c0d0e0f"),
        &h("102102030405060708090a0b0c0d0e0f"),
    )
    .unwrap()
}
const PYSIM_IU_CMD: &str = "805020000840A62C37FA6304F800";
const PYSIM_IU_RSP: &str = "00000000000000000000 70 02 0001 6B4524ABEE7C F32EA3838BC148F3";
const PYSIM_EXT_AUTH: &str = "8482010010BA6961667737C5BCEBECE14C7D6A4376";
const PYSIM_CASES: [(&str, &str); 4] = [
    ("80F22002", "84F220020814DB34FA4341DCA8"),
    ("80CA006600", "84CA00660855ED7C5FF069512B00"),
    (
        "80F220020A4F0212345C054F9F70C5",
        "84F22002124F0212345C054F9F70C58FC1B380C4228AF8",
    ),
    ("80F28002024F0000", "84F280020A4F003B95F09317DE6A4E00"),
];

fn pysim_host() -> scp02::HostSession {
    let host = HostHandshake::with_challenge(
        &pysim_keys(),
        0x20,
        &[0x40, 0xA6, 0x2C, 0x37, 0xFA, 0x63, 0x04, 0xF8],
    )
    .unwrap();
    assert_eq!(host.initialize_update(), h(PYSIM_IU_CMD));
    let (session, ea) = host
        .authenticate(&with_sw(&h(PYSIM_IU_RSP)), SecurityLevel::C_MAC)
        .unwrap();
    assert_eq!(ea, h(PYSIM_EXT_AUTH));
    session
}

#[test]
fn host_reproduces_the_pysim_trace() {
    let mut host = pysim_host();
    assert_eq!((host.kvn(), host.sequence_counter()), (0x70, 0x0001));
    for (plain, wrapped) in PYSIM_CASES {
        assert_eq!(host.wrap_command(&h(plain)).unwrap(), h(wrapped), "{plain}");
        assert_eq!(
            host.unwrap_response(&[0x90, 0x00]).unwrap(),
            (vec![], 0x9000)
        );
    }
}

#[test]
fn card_answers_and_unwraps_the_pysim_trace() {
    let request = InitializeUpdate::parse(&h(PYSIM_IU_CMD)).unwrap();
    assert_eq!(request.kvn, 0x20);
    // The trace does not say which AID the card derived its challenge from (if any): replay it.
    let config = CardConfig {
        kvn: 0x70,
        ..CardConfig::scp02(0x70, &[])
    };
    let (mut card, rsp) = CardSession::initialize_update(
        &pysim_keys(),
        &config,
        0x0001,
        &request,
        CardChallenge::Fixed(&h("6B4524ABEE7C")),
    )
    .unwrap();
    assert_eq!(rsp, h(PYSIM_IU_RSP));
    assert_eq!(
        card.external_authenticate(&h(PYSIM_EXT_AUTH)).unwrap(),
        SecurityLevel::C_MAC
    );
    for (plain, wrapped) in PYSIM_CASES {
        assert_eq!(
            card.unwrap_command(&h(wrapped)).unwrap(),
            h(plain),
            "{wrapped}"
        );
        assert_eq!(card.wrap_response(&[0x01], 0x9000), [0x01, 0x90, 0x00]);
    }
}

#[test]
fn host_refuses_a_wrong_card_cryptogram() {
    // osmocom/pysim test_globalplatform.py SCP02_Auth_Test.test_mutual_auth_fail_card_cryptogram:
    // last response byte set to FF.
    let mut rsp = h(PYSIM_IU_RSP);
    rsp[27] = 0xFF;
    let host = HostHandshake::with_challenge(
        &pysim_keys(),
        0x20,
        &[0x40, 0xA6, 0x2C, 0x37, 0xFA, 0x63, 0x04, 0xF8],
    )
    .unwrap();
    assert_eq!(
        host.authenticate(&with_sw(&rsp), SecurityLevel::C_MAC)
            .err(),
        Some(ScpError::CardCryptogram)
    );
}

#[test]
fn put_key_psk_encryption_of_the_pysim_session() {
    // osmocom/pysim test_globalplatform.py PutKey_PSK_Test: the 16-byte TLS PSK
    // 303132…3F encrypted under the S-DEK of the SCP02_Test session = 15ABF1FE16CCC5AA13743394442942CD.
    let host = pysim_host();
    let psk = h("303132333435363738393a3b3c3d3e3f");
    let block = host.encrypt_key(&psk).unwrap();
    assert_eq!(block, h("15abf1fe16ccc5aa13743394442942cd"));
    assert_eq!(
        host.decrypt_key(&block, 16).unwrap().as_slice(),
        psk.as_slice()
    );
}

#[test]
fn default_key_handshake_of_protocols_md_c7() {
    // protocols.md C.7 (DERIVED with the verified reference code; no public source):
    // keys 404142…4F, sequence counter 0001, host challenge 0001020304050607, card challenge 111213141516.
    let keys = StaticKeys::gp_default();
    let host = HostHandshake::with_challenge(&keys, 0x00, &[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    let request = InitializeUpdate::parse(&host.initialize_update()).unwrap();
    let config = CardConfig::scp02(0x20, &h("A000000151000000"));
    let (mut card, rsp) = CardSession::initialize_update(
        &keys,
        &config,
        0x0001,
        &request,
        CardChallenge::Fixed(&h("111213141516")),
    )
    .unwrap();
    let parsed = scp02::InitUpdateResponse::parse(&rsp).unwrap();
    assert_eq!(parsed.card_cryptogram.to_vec(), h("B42DC852AE170AD4"));
    let (_, ea) = host
        .authenticate(&with_sw(&rsp), SecurityLevel::C_MAC)
        .unwrap();
    assert_eq!(ea, h("84820100103DB5CE382BFA8D41E4636E722BC04DB9"));
    assert_eq!(
        card.external_authenticate(&ea).unwrap(),
        SecurityLevel::C_MAC
    );
}

#[test]
fn pseudo_random_challenge_is_what_the_card_announces() {
    // i=55: the card derives its challenge from the C-MAC session key and the SD AID
    // (GP Card Spec E.4.2.1); the host's view of the response must agree.
    let keys = StaticKeys::gp_default();
    let aid = h("A000000151000000");
    let expected = scp02::pseudo_random_challenge(&keys, 0x0007, &aid).unwrap();
    let host = HostHandshake::new(&keys, 0x00).unwrap();
    let request = InitializeUpdate::parse(&host.initialize_update()).unwrap();
    let (_, rsp) = CardSession::initialize_update(
        &keys,
        &CardConfig::scp02(0xFF, &aid),
        0x0007,
        &request,
        CardChallenge::FromConfig,
    )
    .unwrap();
    assert_eq!(
        scp02::InitUpdateResponse::parse(&rsp)
            .unwrap()
            .card_challenge,
        expected
    );
    assert!(host
        .authenticate(&with_sw(&rsp), SecurityLevel::C_DEC_C_MAC)
        .is_ok());
}

#[test]
fn scp02_refuses_r_mac_levels() {
    let host = pysim_host_handshake();
    assert_eq!(
        host.authenticate(&with_sw(&h(PYSIM_IU_RSP)), SecurityLevel::C_MAC_R_MAC)
            .err(),
        Some(ScpError::UnsupportedLevel(0x11))
    );
}

fn pysim_host_handshake() -> HostHandshake {
    HostHandshake::with_challenge(
        &pysim_keys(),
        0x20,
        &[0x40, 0xA6, 0x2C, 0x37, 0xFA, 0x63, 0x04, 0xF8],
    )
    .unwrap()
}
