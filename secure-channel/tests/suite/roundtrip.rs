//! Properties: what the host wraps the card unwraps to the same command (and back for
//! responses) at every level, and a wrapped APDU with any bit flipped is refused.

use apdu_specs::{Cla, Command};
use proptest::prelude::*;
use secure_channel::{
    scp02, scp03, CardChallenge, CardConfig, CardSecureChannel, HostSecureChannel,
    InitializeUpdate, ScpError, SecurityLevel, StaticKeys,
};

#[derive(Debug, Clone, Copy)]
enum Proto {
    Scp03 { key_len: usize, s16: bool },
    Scp02,
}

const AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

fn keys(len: usize) -> StaticKeys {
    let k = |base: u8| {
        (0..len as u8)
            .map(|i| base ^ i.wrapping_mul(7))
            .collect::<Vec<u8>>()
    };
    StaticKeys::new(&k(0x11), &k(0x22), &k(0x33)).unwrap()
}

type Pair = (Box<dyn CardSecureChannel>, Box<dyn HostSecureChannel>);

/// Open a card and a host session against each other, deterministically.
fn open(proto: Proto, level: SecurityLevel, channel: u8) -> Pair {
    let with_sw = |d: &[u8]| [d, &[0x90, 0x00]].concat();
    match proto {
        Proto::Scp03 { key_len, s16 } => {
            let keys = keys(key_len);
            let n = if s16 { 16 } else { 8 };
            let host = scp03::HostHandshake::with_challenge(&keys, 0x30, &vec![0x5A; n])
                .unwrap()
                .on_channel(channel)
                .unwrap();
            let request = InitializeUpdate::parse(&host.initialize_update()).unwrap();
            let (mut card, rsp) = scp03::CardSession::initialize_update(
                &keys,
                &CardConfig::scp03(0x30, &AID),
                5,
                &request,
                CardChallenge::Fixed(&vec![0xC3; n]),
            )
            .unwrap();
            let (host, ea) = host.authenticate(&with_sw(&rsp), level).unwrap();
            assert_eq!(card.external_authenticate(&ea).unwrap(), level);
            (Box::new(card), Box::new(host))
        }
        Proto::Scp02 => {
            let keys = keys(16);
            let host = scp02::HostHandshake::with_challenge(&keys, 0x20, &[0x5A; 8])
                .unwrap()
                .on_channel(channel)
                .unwrap();
            let request = InitializeUpdate::parse(&host.initialize_update()).unwrap();
            let (mut card, rsp) = scp02::CardSession::initialize_update(
                &keys,
                &CardConfig::scp02(0x20, &AID),
                5,
                &request,
                CardChallenge::Fixed(&[0xC3; 6]),
            )
            .unwrap();
            let (host, ea) = host.authenticate(&with_sw(&rsp), level).unwrap();
            assert_eq!(card.external_authenticate(&ea).unwrap(), level);
            (Box::new(card), Box::new(host))
        }
    }
}

fn levels(proto: Proto) -> Vec<SecurityLevel> {
    match proto {
        Proto::Scp03 { .. } => SecurityLevel::ALL.to_vec(),
        Proto::Scp02 => vec![
            SecurityLevel::NONE,
            SecurityLevel::C_MAC,
            SecurityLevel::C_DEC_C_MAC,
        ],
    }
}

fn arb_proto() -> impl Strategy<Value = Proto> {
    prop_oneof![
        (prop::sample::select(vec![16usize, 24, 32]), any::<bool>())
            .prop_map(|(key_len, s16)| Proto::Scp03 { key_len, s16 }),
        Just(Proto::Scp02),
    ]
}

/// (CLA without channel, INS, P1, P2, data, Le, forced extended)
type RawCommand = (bool, bool, u8, u8, u8, Vec<u8>, Option<usize>, bool);

fn arb_command(max_data: usize) -> impl Strategy<Value = RawCommand> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..=max_data),
        prop::option::of(1usize..=256),
        any::<bool>(),
    )
}

fn build(raw: &RawCommand, channel: u8, proto: Proto) -> Vec<u8> {
    let (proprietary, chained, ins, p1, p2, data, le, ext) = raw.clone();
    // A chained proprietary command on channel 19 would need CLA FF with SM: no such class.
    let chained = chained && !(proprietary && channel == 19);
    let cla = Cla::encode(proprietary, channel, chained, false).unwrap();
    let ext = ext && matches!(proto, Proto::Scp03 { .. });
    Command::new(cla, ins, p1, p2)
        .with_data(data)
        .with_le(le)
        .extended(ext)
        .to_bytes()
        .unwrap()
}

fn same_command(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Command::parse(a).unwrap(), Command::parse(b).unwrap());
    (a.cla, a.ins, a.p1, a.p2, a.data(), a.le()) == (b.cla, b.ins, b.p1, b.p2, b.data(), b.le())
}

const SWS: [u16; 7] = [0x9000, 0x9000, 0x6283, 0x63C1, 0x6A82, 0x6982, 0x6D00];

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn host_wrap_then_card_unwrap_is_identity_at_every_level(
        proto in arb_proto(),
        level_pick in any::<prop::sample::Index>(),
        channel in prop::sample::select(vec![0u8, 1, 3, 4, 19]),
        exchanges in prop::collection::vec(
            (arb_command(300), prop::collection::vec(any::<u8>(), 0..300), prop::sample::select(SWS.to_vec())),
            1..5,
        ),
    ) {
        let level = level_pick.get(&levels(proto)).to_owned();
        let (mut card, mut host) = open(proto, level, channel);
        for (raw, rsp_data, sw) in exchanges {
            let mut raw = raw;
            if matches!(proto, Proto::Scp02) {
                raw.5.truncate(239); // SCP02: short APDUs only, room for padding and C-MAC
            }
            let plain = build(&raw, channel, proto);
            let wire = host.wrap_command(&plain).unwrap();
            if level != SecurityLevel::NONE {
                prop_assert_ne!(&wire, &plain);
            }
            let back = card.unwrap_command(&wire).unwrap();
            prop_assert!(same_command(&back, &plain), "{:02X?} -> {:02X?} -> {:02X?}", plain, wire, back);

            let response = card.wrap_response(&rsp_data, sw);
            let (data, got_sw) = host.unwrap_response(&response).unwrap();
            prop_assert_eq!(got_sw, sw);
            if level.r_mac() && !secure_channel::is_protected_status(sw) {
                prop_assert_eq!(response.len(), 2, "error SW goes out alone");
                prop_assert!(data.is_empty());
            } else {
                prop_assert_eq!(data, rsp_data);
            }
        }
    }
}

/// Every single-bit flip of a wrapped command is refused, except in Le (never MACed, GP Amd D
/// §6.2.4 / Card Spec E.4.4), where it changes Le and nothing else.
#[test]
fn flipping_any_bit_of_a_wrapped_command_is_refused() {
    let protos = [
        Proto::Scp03 {
            key_len: 16,
            s16: false,
        },
        Proto::Scp03 {
            key_len: 24,
            s16: true,
        },
        Proto::Scp03 {
            key_len: 32,
            s16: false,
        },
        Proto::Scp02,
    ];
    for proto in protos {
        for level in levels(proto).into_iter().filter(|l| l.c_mac()) {
            for channel in [0u8, 2, 7] {
                let cla = Cla::encode(true, channel, false, false).unwrap();
                let plain = Command::new(cla, 0xE2, 0x91, 0x00)
                    .with_data(&b"\xBF\x3E\x03\x5C\x01\x5A some data"[..])
                    .with_le(256)
                    .to_bytes()
                    .unwrap();
                let wire = open(proto, level, channel).1.wrap_command(&plain).unwrap();
                let le_at = wire.len() - 1;
                for bit in 0..wire.len() * 8 {
                    let mut flipped = wire.clone();
                    flipped[bit / 8] ^= 1 << (bit % 8);
                    let (mut card, _) = open(proto, level, channel);
                    let result = card.unwrap_command(&flipped);
                    if bit / 8 == le_at {
                        let back = result.unwrap();
                        let (b, p) = (
                            Command::parse(&back).unwrap(),
                            Command::parse(&plain).unwrap(),
                        );
                        assert_eq!((b.cla, b.ins, b.data()), (p.cla, p.ins, p.data()));
                        assert_ne!(b.le(), p.le());
                    } else {
                        assert!(
                            result.is_err(),
                            "{proto:?} {level} ch{channel}: bit {bit} of {wire:02X?} accepted"
                        );
                        assert!(matches!(card.unwrap_command(&wire), Err(ScpError::Aborted)));
                    }
                }
            }
        }
    }
}

/// Every single-bit flip of an R-MACed response is refused by the host.
#[test]
fn flipping_any_bit_of_a_protected_response_is_refused() {
    for proto in [
        Proto::Scp03 {
            key_len: 16,
            s16: false,
        },
        Proto::Scp03 {
            key_len: 32,
            s16: true,
        },
    ] {
        for level in [
            SecurityLevel::C_MAC_R_MAC,
            SecurityLevel::C_DEC_C_MAC_R_MAC,
            SecurityLevel::FULL,
        ] {
            let (mut card, mut host) = open(proto, level, 0);
            let wire = host.wrap_command(&[0x80, 0xCA, 0x00, 0x66, 0x00]).unwrap();
            card.unwrap_command(&wire).unwrap();
            let response = card.wrap_response(b"\x66\x03\x73\x01\x00", 0x9000);
            for bit in 0..response.len() * 8 {
                let mut flipped = response.clone();
                flipped[bit / 8] ^= 1 << (bit % 8);
                let (mut card, mut host) = open(proto, level, 0);
                card.unwrap_command(&host.wrap_command(&[0x80, 0xCA, 0x00, 0x66, 0x00]).unwrap())
                    .unwrap();
                assert!(
                    host.unwrap_response(&flipped).is_err(),
                    "{proto:?} {level}: bit {bit} accepted"
                );
            }
            assert_eq!(
                host.unwrap_response(&response).unwrap(),
                (b"\x66\x03\x73\x01\x00".to_vec(), 0x9000)
            );
        }
    }
}

#[test]
fn replayed_and_reordered_commands_are_refused() {
    for proto in [
        Proto::Scp03 {
            key_len: 16,
            s16: false,
        },
        Proto::Scp02,
    ] {
        let (mut card, mut host) = open(proto, SecurityLevel::C_MAC, 0);
        let first = host
            .wrap_command(&[0x80, 0xF2, 0x80, 0x00, 0x02, 0x4F, 0x00, 0x00])
            .unwrap();
        let second = host
            .wrap_command(&[0x80, 0xF2, 0x40, 0x00, 0x02, 0x4F, 0x00, 0x00])
            .unwrap();
        assert!(
            card.unwrap_command(&second).is_err(),
            "{proto:?}: out of order"
        );
        let (mut card, _) = open(proto, SecurityLevel::C_MAC, 0);
        card.unwrap_command(&first).unwrap();
        assert!(card.unwrap_command(&first).is_err(), "{proto:?}: replay");
    }
}

#[test]
fn commands_on_another_channel_or_without_mac_are_refused() {
    for proto in [
        Proto::Scp03 {
            key_len: 16,
            s16: false,
        },
        Proto::Scp02,
    ] {
        let (mut card, mut host) = open(proto, SecurityLevel::C_MAC, 1);
        assert!(
            host.wrap_command(&[0x82, 0xF2, 0x80, 0x00]).is_err(),
            "host: wrong channel"
        );
        let wire = host.wrap_command(&[0x81, 0xF2, 0x80, 0x00]).unwrap();
        let mut other = wire.clone();
        other[0] = 0x86; // same command on channel 2
        assert!(card.unwrap_command(&other).is_err());
        let (mut card, _) = open(proto, SecurityLevel::C_MAC, 1);
        let err = card.unwrap_command(&[0x81, 0xF2, 0x80, 0x00]).unwrap_err();
        assert_eq!(
            (err.clone(), err.status_word()),
            (ScpError::MissingMac(0x81), 0x6982)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// No input makes the card or host panic, whatever state they are in.
    #[test]
    fn arbitrary_bytes_never_panic(
        proto in arb_proto(),
        level_pick in any::<prop::sample::Index>(),
        garbage in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let level = level_pick.get(&levels(proto)).to_owned();
        let (mut card, mut host) = open(proto, level, 0);
        let _ = card.unwrap_command(&garbage);
        let _ = host.unwrap_response(&garbage);
        let _ = host.wrap_command(&garbage);
        let _ = InitializeUpdate::parse(&garbage);
        let _ = scp03::InitUpdateResponse::parse(&garbage);
        let _ = scp02::InitUpdateResponse::parse(&garbage);
        let hs = scp03::HostHandshake::with_challenge(&keys(16), 0, &[0; 8]).unwrap();
        let _ = hs.authenticate(&garbage, level);
        let hs = scp02::HostHandshake::with_challenge(&keys(16), 0, &[0; 8]).unwrap();
        let _ = hs.authenticate(&garbage, SecurityLevel::C_MAC);
        let req = InitializeUpdate::parse(&[0x80, 0x50, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0]).unwrap();
        let (mut c3, _) = scp03::CardSession::initialize_update(
            &keys(16), &CardConfig::scp03(0x30, &AID), 1, &req, CardChallenge::FromConfig).unwrap();
        let _ = c3.external_authenticate(&garbage);
        let (mut c2, _) = scp02::CardSession::initialize_update(
            &keys(16), &CardConfig::scp02(0x20, &AID), 1, &req, CardChallenge::FromConfig).unwrap();
        let _ = c2.external_authenticate(&garbage);
    }
}
