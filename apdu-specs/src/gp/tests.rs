use super::*;
use crate::{Command, Status};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// The command as bytes, parsed back as the card receives it.
fn wire(c: &Command<'_>) -> Vec<u8> {
    c.to_bytes().unwrap()
}

fn parse_wire(bytes: &[u8]) -> Result<GpCommand<'static>, Status> {
    GpCommand::parse(&Command::parse(bytes).unwrap()).map(GpCommand::into_owned)
}

fn aes_key(kcv: [u8; 3]) -> KeyComponent {
    KeyComponent {
        key_type: KeyType::Aes,
        key_len: 16,
        encrypted: vec![0x11; 16],
        kcv,
    }
}

fn put_key() -> PutKey {
    PutKey {
        replace_kvn: Some(0x30),
        new_kvn: 0x31,
        keys: [aes_key([1, 2, 3]), aes_key([4, 5, 6]), aes_key([7, 8, 9])],
    }
}

fn every_command() -> Vec<GpCommand<'static>> {
    vec![
        GpCommand::InitializeUpdate(InitializeUpdate {
            kvn: 0x30,
            host_challenge: vec![0xAA; 8],
        }),
        GpCommand::InitializeUpdate(InitializeUpdate {
            kvn: 0x00,
            host_challenge: vec![0xAA; 16],
        }),
        GpCommand::ExternalAuthenticate(ExternalAuthenticate {
            level: 0x33,
            host_cryptogram: vec![1; 8],
            mac: vec![2; 8],
        }),
        GpCommand::GetStatus(GetStatus::all(StatusScope::Isd)),
        GpCommand::GetStatus(GetStatus {
            scope: StatusScope::Applications,
            aid_prefix: h("A0000005591010"),
            next: true,
        }),
        GpCommand::GetData(GetData {
            object: object::CPLC,
        }),
        GpCommand::PutKey(put_key()),
        GpCommand::Install(Install::ForPersonalization {
            aid: h("A0000005591010FFFFFFFF8900001000"),
        }),
        GpCommand::StoreData(StoreData::dgis(&[Dgi {
            dgi: 0xA001,
            value: vec![0xAA; 3],
        }])),
        GpCommand::Delete(Delete {
            aid: h("A000000151000000"),
            related: true,
        }),
    ]
}

#[test]
fn every_command_round_trips_through_the_wire() {
    for c in every_command() {
        let bytes = wire(&c.to_command());
        assert_eq!(parse_wire(&bytes), Ok(c.clone()), "{}", hex::encode(&bytes));
    }
}

#[test]
fn commands_have_the_documented_layouts() {
    let iu = InitializeUpdate {
        kvn: 0x30,
        host_challenge: h("0102030405060708"),
    };
    assert_eq!(wire(&iu.to_command()), h("80503000 08 0102030405060708 00"));
    assert_eq!(
        wire(&GetStatus::all(StatusScope::Applications).to_command()),
        h("80F24002 02 4F00 00")
    );
    assert_eq!(
        wire(
            &GetData {
                object: object::KEY_INFORMATION
            }
            .to_command()
        ),
        h("80CA00E0 00")
    );
    let aid = h("A0000005591010FFFFFFFF8900001000");
    let i = wire(&Install::ForPersonalization { aid: aid.clone() }.to_command());
    assert_eq!(&i[..8], &h("80E6200016000010")[..]);
    assert_eq!(&i[8..24], &aid[..]);
    assert_eq!(&i[24..], &h("00000000")[..]);
    let s = StoreData::dgis(&[Dgi {
        dgi: 0xA001,
        value: vec![0xAA; 3],
    }]);
    assert_eq!(wire(&s.to_command()), h("80E28800 06 A00103AAAAAA"));
    // 80 D8 30 81 46 31 { 88 11 10 <16> 03 <kcv> } x3 00
    let p = wire(&put_key().to_command());
    assert_eq!(&p[..9], &h("80D830814631881110")[..]);
    assert_eq!(&p[25..29], &h("03010203")[..]);
    assert_eq!(p.len(), 5 + 1 + 3 * 23 + 1);
    let ea = ExternalAuthenticate {
        level: 0x01,
        host_cryptogram: vec![1; 8],
        mac: vec![2; 8],
    };
    assert_eq!(&wire(&ea.to_command())[..5], &h("8482010010")[..]);
}

#[test]
fn des_put_key_has_no_length_byte() {
    let des = |kcv| KeyComponent {
        key_type: KeyType::Des,
        key_len: 16,
        encrypted: vec![0x22; 16],
        kcv,
    };
    let p = PutKey {
        replace_kvn: None,
        new_kvn: 0x21,
        keys: [des([1, 1, 1]), des([2, 2, 2]), des([3, 3, 3])],
    };
    let bytes = wire(&p.to_command());
    assert_eq!(&bytes[..8], &h("80D8008143218010")[..]);
    assert_eq!(parse_wire(&bytes), Ok(GpCommand::PutKey(p.clone())));
    assert_eq!(p.confirmation().to_bytes(), h("21 010101 020202 030303"));
}

fn status_of(apdu: &str) -> Status {
    parse_wire(&h(apdu)).unwrap_err()
}

#[test]
fn initialize_update_refusals_are_6700() {
    // Challenge of 7 and 9 bytes around the 8 taken, and 17 after the 16 taken.
    for apdu in [
        "80500000 07 01020304050607 00",
        "80500000 09 010203040506070809 00",
        "80500000 11 0102030405060708090A0B0C0D0E0F1011 00",
        "80500001 08 0102030405060708 00",
        "84500000 08 0102030405060708 00",
        "80500000 00",
    ] {
        assert_eq!(status_of(apdu), Status::WrongLength, "{apdu}");
    }
    assert!(parse_wire(&h("80500000 08 0102030405060708 00")).is_ok());
    assert!(parse_wire(&h("83500000 10 0102030405060708090A0B0C0D0E0F10 00")).is_ok());
}

#[test]
fn external_authenticate_needs_its_mac_and_two_halves() {
    assert_eq!(
        status_of("80820100 10 01010101010101010202020202020202"),
        Status::SecurityStatusNotSatisfied
    );
    assert_eq!(
        status_of("84820101 10 01010101010101010202020202020202"),
        Status::WrongLength
    );
    assert_eq!(
        status_of("84820100 0F 010101010101010102020202020202"),
        Status::WrongLength
    );
    let s16 = format!("84823300 20 {}", "01".repeat(32));
    let Ok(GpCommand::ExternalAuthenticate(ea)) = parse_wire(&h(&s16)) else {
        panic!()
    };
    assert_eq!((ea.host_cryptogram.len(), ea.mac.len()), (16, 16));
}

#[test]
fn get_status_refusals_in_the_cards_order() {
    // Unknown P2 (only the tag format is offered).
    assert_eq!(status_of("80F24000 02 4F00 00"), Status::IncorrectP1P2);
    assert_eq!(status_of("80F24001 02 4F00 00"), Status::IncorrectP1P2);
    // Unknown scope in a first command.
    assert_eq!(status_of("80F20102 02 4F00 00"), Status::IncorrectP1P2);
    // The data are read before the scope: both wrong is 6A80.
    assert_eq!(status_of("80F20102 02 4F01 00"), Status::IncorrectData);
    assert_eq!(status_of("80F24002 02 4F01 00"), Status::IncorrectData);
    assert_eq!(status_of("80F24002 00"), Status::IncorrectData);
    assert_eq!(status_of("80F24002 03 4F0200 00"), Status::IncorrectData);
    // A "next" is taken whatever its P1 and data.
    let Ok(GpCommand::GetStatus(g)) = parse_wire(&h("80F20103 01 FF 00")) else {
        panic!()
    };
    assert_eq!((g.scope, g.next), (StatusScope::Other(1), true));
    for scope in [
        StatusScope::Isd,
        StatusScope::Applications,
        StatusScope::LoadFiles,
        StatusScope::LoadFilesAndModules,
    ] {
        assert_eq!(StatusScope::from_p1(scope.p1()), scope);
    }
}

#[test]
fn get_data_offers_three_objects() {
    for o in object::ALL {
        let c = GetData { object: o };
        assert_eq!(GetData::parse(&c.to_command()), Ok(c));
    }
    assert_eq!(status_of("80CA0067 00"), Status::ReferencedDataNotFound);
    assert_eq!(status_of("80CA9F7E 00"), Status::ReferencedDataNotFound);
}

#[test]
fn put_key_refusals_in_the_cards_order() {
    let good = hex::encode(wire(&put_key().to_command()));
    let body = &good[10..good.len() - 2];
    let with = |p1p2: &str, data: &str| {
        let data = h(data);
        let mut apdu = h(&format!("80D8{p1p2}"));
        if !data.is_empty() {
            apdu.push(data.len() as u8);
            apdu.extend(data);
        }
        GpCommand::parse(&Command::parse(&apdu).unwrap()).map(GpCommand::into_owned)
    };
    assert!(with("3081", body).is_ok());
    assert_eq!(with("3001", body), Err(Status::IncorrectP1P2));
    assert_eq!(with("3081", ""), Err(Status::WrongLength));
    assert_eq!(with("3081", "31"), Err(Status::WrongLength));
    // Truncated: the last byte of the last check value is missing.
    assert_eq!(
        with("3081", &body[..body.len() - 2]),
        Err(Status::WrongLength)
    );
    // A byte after the three keys.
    assert_eq!(with("3081", &format!("{body}00")), Err(Status::WrongLength));
    // Two keys only.
    assert_eq!(with("3081", &body[..2 + 2 * 46]), Err(Status::WrongLength));
    // Check value tag other than 03.
    let mut no_kcv = body.to_string();
    no_kcv.replace_range(2 + 38..2 + 40, "04");
    assert_eq!(with("3081", &no_kcv), Err(Status::WrongLength));
    // Unknown key type; a set mixing AES and DES.
    let mut rsa = body.to_string();
    rsa.replace_range(2..4, "A1");
    assert_eq!(with("3081", &rsa), Err(Status::IncorrectData));
    let mut mixed = body.to_string();
    mixed.replace_range(2 + 46..2 + 48, "80");
    assert_eq!(with("3081", &mixed), Err(Status::IncorrectData));
    // AES key data without its length byte.
    assert_eq!(with("3081", "31 8800 03000000"), Err(Status::WrongLength));
    // P1 00 adds a set.
    let Ok(GpCommand::PutKey(p)) = with("0081", body) else {
        panic!()
    };
    assert_eq!(p.replace_kvn, None);
}

#[test]
fn install_refusals() {
    assert_eq!(status_of("80E60C00 03 000000 00"), Status::IncorrectP1P2);
    assert_eq!(status_of("80E62001 03 000000 00"), Status::IncorrectP1P2);
    assert_eq!(status_of("80E62000 03 010000 00"), Status::IncorrectData);
    assert_eq!(status_of("80E62000 04 00000501 00"), Status::IncorrectData);
    assert_eq!(status_of("80E62000 02 0000 00"), Status::IncorrectData);
    // Bytes after the AID are not read (the card takes them today).
    assert_eq!(
        parse_wire(&h("80E62000 06 000002A1A2FF 00")),
        Ok(GpCommand::Install(Install::ForPersonalization {
            aid: h("A1A2")
        }))
    );
}

#[test]
fn delete_refusals() {
    assert_eq!(
        status_of("80E48000 07 4F05A000000001 00"),
        Status::IncorrectP1P2
    );
    assert_eq!(
        status_of("80E40001 07 4F05A000000001 00"),
        Status::IncorrectP1P2
    );
    assert_eq!(
        status_of("80E40000 06 4F04A0000000 00"),
        Status::IncorrectData
    );
    assert_eq!(
        status_of("80E40000 07 4F06A000000001 00"),
        Status::IncorrectData
    );
    assert!(parse_wire(&h("80E40000 07 4F05A000000001 00")).is_ok());
}

#[test]
fn class_and_instruction_refusals() {
    assert_eq!(status_of("00CA9F7F 00"), Status::ClaNotSupported);
    assert_eq!(status_of("80F00000 00"), Status::InsNotSupported);
    // A parser handed another instruction says so instead of misreading it.
    let bytes = h("80CA9F7F00");
    let c = Command::parse(&bytes).unwrap();
    assert_eq!(PutKey::parse(&c), Err(Status::InsNotSupported));
}

#[test]
fn store_data_carries_any_block_and_reads_dgis() {
    let bytes = h("80E21103 02 AABB");
    let cmd = Command::parse(&bytes).unwrap();
    let s = StoreData::parse(&cmd).unwrap();
    assert_eq!((s.p1, s.block, s.is_dgi_format()), (0x11, 3, false));
    assert!(!s.is_last_block());
    let d = StoreData::dgis(&[
        Dgi {
            dgi: 0x0101,
            value: vec![1; 254],
        },
        Dgi {
            dgi: 0x0102,
            value: vec![2; 255],
        },
    ]);
    assert!(d.is_dgi_format() && d.is_last_block());
    // 254 fits the short length; 255 takes FF and two bytes.
    assert_eq!(&d.data[..3], &h("0101FE")[..]);
    assert_eq!(&d.data[257..262], &h("0102FF00FF")[..]);
    let dgis = d.read_dgis().unwrap();
    assert_eq!(dgis.len(), 2);
    assert_eq!((dgis[1].0, dgis[1].1.len()), (0x0102, 255));
    for truncated in ["01", "0101", "010102AA", "0101FF0002AA"] {
        assert_eq!(
            Dgi::read_all(&h(truncated)),
            Err(Status::WrongLength),
            "{truncated}"
        );
    }
    assert_eq!(Dgi::read_all(&[]), Ok(vec![]));
}

/// The card's answer before this codec existed, byte for byte.
const CARD_DATA: &str = "663E 733C 06072A864886FC6B01 600C060A2A864886FC6B02020301 \
                         6309 06072A864886FC6B03 640B06092A864886FC6B040370 \
                         640B06092A864886FC6B040255";

#[test]
fn card_recognition_data_gives_version_and_protocols() {
    let c = CardRecognitionData::new(&[2, 3, 1], &[(3, 0x70), (2, 0x55)]);
    assert_eq!(c.to_bytes(), h(CARD_DATA));
    let p = CardRecognitionData::parse(&h(CARD_DATA)).unwrap();
    assert_eq!(p, c);
    assert_eq!(p.gp_version().as_deref(), Some("2.3.1"));
    assert_eq!(p.scps(), vec![(3, 0x70), (2, 0x55)]);
    assert!(CardRecognitionData::parse(&h("6600")).is_err());
    assert_eq!(oid_string(&gp_oid(&[4, 3, 0x70])), "1.2.840.114283.4.3.112");
    assert_eq!(oid_string(&gp_oid(&[200])), "1.2.840.114283.200");
}

#[test]
fn cplc_has_42_bytes_in_18_fields() {
    let mut d = h("9F7F2A");
    d.extend(0..42u8);
    let c = Cplc::parse(&d).unwrap();
    assert_eq!(c.to_bytes(), d);
    let f = c.fields();
    assert_eq!(f.len(), 18);
    assert_eq!(f[0], ("IC fabricator", &[0u8, 1][..]));
    assert_eq!(f[6], ("IC serial number", &[12u8, 13, 14, 15][..]));
    assert!(Cplc::parse(&h("9F7F0100")).is_err());
    let mut short = h("9F7F29");
    short.extend(0..41u8);
    assert!(Cplc::parse(&short).is_err());
}

#[test]
fn key_information_basic_and_extended() {
    let bytes = h("E012 C00401308810 C00402308810 C00403308810");
    let k = KeyInformation::parse(&bytes).unwrap();
    assert_eq!(k.keys.len(), 3);
    assert_eq!(k.keys[0], KeyInfo::basic(1, 0x30, 0x88, 16));
    assert_eq!(k.to_bytes(), bytes);
    let ext = h("E00B C00901 20 FF80 0010 0100 00");
    let k = KeyInformation::parse(&ext).unwrap();
    assert_eq!(k.keys[0].components[0].key_type, 0x80);
    assert_eq!(k.keys[0].components[0].length, 16);
    assert_eq!(k.to_bytes(), ext);
    assert!(KeyInformation::parse(&h("E003 C00101")).is_err());
    assert!(KeyInformation::parse(&h("E004 C0020101 88")).is_err());
    assert!(KeyInformation::parse(&h("E005 C00301 01FF")).is_err());
}

#[test]
fn registry_entries_need_aid_and_life_cycle() {
    let bytes = h("E3 13 4F 08 A000000151000000 9F70 01 0F C5 03 9EFE80");
    let e = RegistryEntry::parse_all(&bytes).unwrap();
    assert_eq!(
        e,
        vec![RegistryEntry {
            aid: h("A000000151000000"),
            life_cycle: life_cycle::SECURED,
            privileges: Some(h("9EFE80")),
        }]
    );
    assert_eq!(e[0].to_bytes(), bytes);
    assert!(RegistryEntry::parse_all(&h("E3 03 9F70 01 07")).is_err());
    assert!(RegistryEntry::parse_all(&h("E3 04 4F 02 A0A1")).is_err());
    assert!(RegistryEntry::parse_all(&h("E1 00")).is_err());
    assert_eq!(RegistryEntry::parse_all(&[]), Ok(vec![]));
}

#[test]
fn put_key_confirmation_round_trips() {
    let c = put_key().confirmation();
    assert_eq!(c.to_bytes(), h("31 010203 040506 070809"));
    assert_eq!(PutKeyConfirmation::parse(&c.to_bytes()), Ok(c));
    assert!(PutKeyConfirmation::parse(&[]).is_err());
    assert!(PutKeyConfirmation::parse(&h("31 0102")).is_err());
}

#[test]
fn no_parser_panics_on_short_or_odd_input() {
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for ins in [0x50u8, 0x82, 0xF2, 0xCA, 0xD8, 0xE6, 0xE2, 0xE4] {
        for p in [0x00u8, 0x02, 0x03, 0x20, 0x81, 0xFF] {
            for data in [
                &[][..],
                &[0x4F][..],
                &[0xFF; 7][..],
                &[0x00; 3][..],
                &[0x88, 0xFF][..],
            ] {
                let mut c = vec![0x80 | (p & 0x07), ins, p, p];
                if !data.is_empty() {
                    c.push(data.len() as u8);
                    c.extend_from_slice(data);
                }
                inputs.push(c);
            }
        }
    }
    for i in inputs {
        let _ = GpCommand::parse(&Command::parse(&i).unwrap());
    }
    for b in [&[][..], &[0xE0, 0x81][..], &[0x66, 0x02, 0x73, 0x05][..]] {
        let _ = CardRecognitionData::parse(b);
        let _ = KeyInformation::parse(b);
        let _ = RegistryEntry::parse_all(b);
        let _ = Cplc::parse(b);
    }
}

/// Arbitrary C-APDUs in the GlobalPlatform class, biased towards the codec's instructions.
fn arb_gp_apdu() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let ins = prop_oneof![
        proptest::sample::select(
            crate::ins::gp::TABLE
                .iter()
                .map(|i| i.code)
                .collect::<Vec<_>>()
        ),
        any::<u8>(),
    ];
    (
        0x80u8..=0x87,
        ins,
        any::<u8>(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..120),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(|(cla, ins, p1, p2, data, le)| {
            let mut c = vec![cla, ins, p1, p2];
            if !data.is_empty() {
                c.push(data.len() as u8);
                c.extend(data);
            }
            c.extend(le);
            c
        })
}

proptest::proptest! {
    /// What the card accepts, the host builds again to the same command (the fuzz target's
    /// property, replayed in `cargo test`).
    #[test]
    fn parsed_commands_rebuild_to_themselves(apdu in arb_gp_apdu()) {
        if let Ok(cmd) = Command::parse(&apdu) {
            if let Ok(c) = GpCommand::parse(&cmd) {
                let rebuilt = c.to_command();
                proptest::prop_assert_eq!(GpCommand::parse(&rebuilt), Ok(c));
            }
        }
    }

    #[test]
    fn parsed_answers_encode_to_themselves(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
        if let Ok(k) = KeyInformation::parse(&bytes) {
            proptest::prop_assert_eq!(KeyInformation::parse(&k.to_bytes()), Ok(k));
        }
        if let Ok(e) = RegistryEntry::parse_all(&bytes) {
            let again: Vec<u8> = e.iter().flat_map(RegistryEntry::to_bytes).collect();
            proptest::prop_assert_eq!(RegistryEntry::parse_all(&again), Ok(e));
        }
        if let Ok(c) = CardRecognitionData::parse(&bytes) {
            proptest::prop_assert_eq!(CardRecognitionData::parse(&c.to_bytes()), Ok(c));
        }
        if let Ok(c) = PutKeyConfirmation::parse(&bytes) {
            proptest::prop_assert_eq!(&c.to_bytes(), &bytes);
        }
        if let Ok(d) = Dgi::read_all(&bytes) {
            let again: Vec<u8> = d
                .iter()
                .flat_map(|(dgi, v)| Dgi { dgi: *dgi, value: v.to_vec() }.to_bytes())
                .collect();
            proptest::prop_assert_eq!(Dgi::read_all(&again), Ok(d));
        }
    }
}
