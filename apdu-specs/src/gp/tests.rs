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

const PACKAGE: &str = "A0000005591010FFFFFFFF8900000100";
const ISDP: &str = "A0000005591010FFFFFFFF8900001000";
const APPLET: &str = "A0000005591010FFFFFFFF8900000101";

fn for_load() -> Install {
    Install::ForLoad {
        load_file_aid: h(PACKAGE),
        security_domain_aid: h(ISDP),
        load_parameters: vec![],
    }
}

fn for_install(make_selectable: bool) -> Install {
    Install::ForInstall {
        load_file_aid: h(PACKAGE),
        module_aid: h(PACKAGE),
        application_aid: h(APPLET),
        privileges: h("00"),
        parameters: InstallParameters {
            application: h("0102"),
            non_volatile_quota: Some(0x0400),
        },
        make_selectable,
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
        GpCommand::Install(for_load()),
        GpCommand::Install(Install::ForLoad {
            load_file_aid: h("A000000001"),
            security_domain_aid: vec![],
            load_parameters: h("EF00"),
        }),
        GpCommand::Install(for_install(true)),
        GpCommand::Install(for_install(false)),
        GpCommand::Install(Install::ForInstall {
            load_file_aid: vec![],
            module_aid: vec![],
            application_aid: h("A0000000010203"),
            privileges: h("000000"),
            parameters: InstallParameters::default(),
            make_selectable: true,
        }),
        GpCommand::Load(Load {
            last: false,
            block: 0,
            data: vec![0xC4, 0x05],
        }),
        GpCommand::Load(Load {
            last: true,
            block: 0xFF,
            data: vec![0x55; 239],
        }),
        GpCommand::Delete(Delete {
            aid: h("A000000001"),
            related: false,
        }),
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
    // P1 10 (extradition) and 40 (registry update) are not offered.
    assert_eq!(status_of("80E61000 03 000000 00"), Status::IncorrectP1P2);
    assert_eq!(status_of("80E64000 03 000000 00"), Status::IncorrectP1P2);
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
fn install_for_load_and_for_install_layouts() {
    let l = wire(&for_load().to_command());
    assert_eq!(
        l,
        h(&format!("80E60200 25 10{PACKAGE} 10{ISDP} 00 00 00 00"))
    );
    let i = wire(&for_install(true).to_command());
    // 10 AID x3, 01 00 privileges, 0B { C9 02 0102, EF 04 { C8 02 0400 } }, 00 token.
    assert_eq!(
        i,
        h(&format!(
            "80E60C00 41 10{PACKAGE} 10{PACKAGE} 10{APPLET} 0100 0A C9020102 EF04C8020400 00 00"
        ))
    );
    let i = wire(&for_install(false).to_command());
    assert_eq!(&i[..4], &h("80E60400")[..]);
    // Without parameters: C9 00 alone.
    let bare = Install::ForInstall {
        load_file_aid: h(PACKAGE),
        module_aid: h(PACKAGE),
        application_aid: h(APPLET),
        privileges: h("00"),
        parameters: InstallParameters::default(),
        make_selectable: true,
    };
    let b = wire(&bare.to_command());
    assert_eq!(&b[b.len() - 7..], &h("0100 02C900 00 00")[..]);
    // A quota above 65 535 takes four bytes.
    let big = InstallParameters {
        application: vec![],
        non_volatile_quota: Some(0x0001_0000),
    };
    assert_eq!(big.to_bytes(), h("C900 EF06 C80400010000"));
    assert_eq!(InstallParameters::parse(&big.to_bytes()), Ok(big));
    // Make selectable alone: empty load file and module, empty parameters.
    let ms = Install::ForInstall {
        load_file_aid: vec![],
        module_aid: vec![],
        application_aid: h(APPLET),
        privileges: h("00"),
        parameters: InstallParameters::default(),
        make_selectable: true,
    };
    assert_eq!(
        wire(&ms.to_command()),
        h(&format!("80E60800 17 00 00 10{APPLET} 0100 00 00 00"))
    );
}

#[test]
fn install_parameters_read_c9_and_the_quota() {
    let p = |s: &str| InstallParameters::parse(&h(s));
    assert_eq!(p("C900"), Ok(InstallParameters::default()));
    assert_eq!(
        p("C90101 EF03 C80120"),
        Ok(InstallParameters {
            application: vec![1],
            non_volatile_quota: Some(0x20)
        })
    );
    // Four-byte quota, other tags skipped (in EF and at the top level), order free.
    assert_eq!(
        p("EF0A C7020000 C80400008000 CA00 C90102"),
        Ok(InstallParameters {
            application: vec![2],
            non_volatile_quota: Some(0x8000)
        })
    );
    // EF without C8: no quota.
    assert_eq!(p("C900 EF02 C700"), Ok(InstallParameters::default()));
    // Long form lengths are BER.
    let long = p(&format!("C981 80{}", "AA".repeat(128))).unwrap();
    assert_eq!(long.application.len(), 128);
    for bad in [
        "",                         // C9 required
        "EF03 C80120",              // C9 required
        "C901",                     // truncated
        "C900 FF",                  // padding
        "C900 EF02 C800",           // empty quota
        "C900 EF07 C8050000000001", // five-byte quota
        "C900 EF03 C802",           // truncated inside EF
        "C900 EF01 C8",
    ] {
        assert_eq!(p(bad), Err(Status::IncorrectData), "{bad}");
    }
}

#[test]
fn install_for_load_and_for_install_refusals() {
    let aid5 = "05A000000001";
    let aid4 = "04A0000000";
    let aid17 = format!("11{}", "A0".repeat(17));
    let install = |p1: &str, data: String| {
        let data = h(&data);
        let mut apdu = h(&format!("80E6{p1}00"));
        apdu.push(data.len() as u8);
        apdu.extend(data);
        parse_wire(&apdu)
    };
    // [for load]
    assert!(install("02", format!("{aid5} 00 00 00 00")).is_ok());
    assert!(install("02", format!("{aid5} {aid5} 00 00 00")).is_ok());
    // The hash is taken and ignored.
    assert_eq!(
        install("02", format!("{aid5} {aid5} 02AABB 0101 00")),
        Ok(GpCommand::Install(Install::ForLoad {
            load_file_aid: h("A000000001"),
            security_domain_aid: h("A000000001"),
            load_parameters: vec![1],
        }))
    );
    for (why, data) in [
        ("short load file AID", format!("{aid4} 00 00 00 00")),
        ("long load file AID", format!("{aid17} 00 00 00 00")),
        ("empty load file AID", "00 00 00 00 00".to_string()),
        ("short SD AID", format!("{aid5} {aid4} 00 00 00")),
        ("hash past the end", format!("{aid5} 00 05AABB")),
        ("no token", format!("{aid5} 00 00 00")),
        ("a token", format!("{aid5} 00 00 00 01AA")),
        ("trailing bytes", format!("{aid5} 00 00 00 00 00")),
        ("length past the end", format!("{aid5} 00 00 09 00")),
    ] {
        assert_eq!(
            install("02", data),
            Err(Status::IncorrectData),
            "for load: {why}"
        );
    }
    // [for install] (and make selectable)
    let good = format!("{aid5} {aid5} {aid5} 0100 02C900 00");
    for p1 in ["04", "0C"] {
        let Ok(GpCommand::Install(Install::ForInstall {
            make_selectable, ..
        })) = install(p1, good.clone())
        else {
            panic!("{p1}")
        };
        assert_eq!(make_selectable, p1 == "0C");
    }
    assert!(install("0C", format!("{aid5} {aid5} {aid5} 03000000 02C900 00")).is_ok());
    for (why, data) in [
        (
            "empty load file AID",
            format!("00 {aid5} {aid5} 0100 02C900 00"),
        ),
        (
            "short module AID",
            format!("{aid5} {aid4} {aid5} 0100 02C900 00"),
        ),
        (
            "long application AID",
            format!("{aid5} {aid5} {aid17} 0100 02C900 00"),
        ),
        (
            "two privilege bytes",
            format!("{aid5} {aid5} {aid5} 020000 02C900 00"),
        ),
        (
            "no privileges",
            format!("{aid5} {aid5} {aid5} 00 02C900 00"),
        ),
        ("no C9", format!("{aid5} {aid5} {aid5} 0100 00 00")),
        ("bad TLV", format!("{aid5} {aid5} {aid5} 0100 02C905 00")),
        (
            "bad quota",
            format!("{aid5} {aid5} {aid5} 0100 06C900EF02C800 00"),
        ),
        ("a token", format!("{aid5} {aid5} {aid5} 0100 02C900 01AA")),
        ("no token", format!("{aid5} {aid5} {aid5} 0100 02C900")),
        ("trailing bytes", format!("{good} 00")),
        (
            "parameters past the end",
            format!("{aid5} {aid5} {aid5} 0100 09C900"),
        ),
    ] {
        assert_eq!(
            install("0C", data),
            Err(Status::IncorrectData),
            "for install: {why}"
        );
    }
    // [for make selectable] alone: empty load file and module, parameters empty or C9.
    assert!(install("08", format!("00 00 {aid5} 0100 00 00")).is_ok());
    assert!(install("08", format!("00 00 {aid5} 0100 02C900 00")).is_ok());
    assert_eq!(
        install("08", format!("{aid5} 00 {aid5} 0100 00 00")),
        Err(Status::IncorrectData)
    );
    // P2 other than 00, P1 not offered.
    assert_eq!(
        status_of(&format!("80E60C01 18 {good} 00")),
        Status::IncorrectP1P2
    );
    assert_eq!(
        status_of(&format!("80E60201 06 {aid5} 00")),
        Status::IncorrectP1P2
    );
    for p1 in ["00", "01", "06", "0E", "10", "22", "80"] {
        assert_eq!(
            install(p1, good.clone()),
            Err(Status::IncorrectP1P2),
            "P1 {p1}"
        );
    }
}

#[test]
fn load_layout_and_refusals() {
    let l = Load {
        last: true,
        block: 3,
        data: h("AABB"),
    };
    assert_eq!(wire(&l.to_command()), h("80E88003 02 AABB 00"));
    assert_eq!(
        parse_wire(&h("80E80001 01 CC")),
        Ok(GpCommand::Load(Load {
            last: false,
            block: 1,
            data: h("CC")
        }))
    );
    assert_eq!(status_of("80E80100 01 CC"), Status::IncorrectP1P2);
    assert_eq!(status_of("80E8C000 01 CC"), Status::IncorrectP1P2);
    assert_eq!(status_of("80E80000"), Status::WrongLength);
    assert_eq!(status_of("80E88000 00"), Status::WrongLength);
}

#[test]
fn load_blocks_concatenate_to_the_load_file() {
    for size in [
        0usize, 1, 0x7D, 0x7E, 0x7F, 0x80, 0x81, 0xFC, 0xFD, 0xFE, 0xFF, 0x100, 0x101, 0x3FFF,
        0xFFFC, 0xFFFD, 0xFFFF, 0x10000, 0x10001,
    ] {
        let module: Vec<u8> = (0..size).map(|i| (i * 7 + 1) as u8).collect();
        for block_size in [1usize, 16, 239, 255, 0x1_0000] {
            let blocks = Load::blocks(&module, block_size);
            assert!(!blocks.is_empty());
            let n = blocks.len();
            for (i, b) in blocks.iter().enumerate() {
                assert_eq!(b.block, i as u8, "{size}/{block_size}");
                assert_eq!(b.last, i + 1 == n, "{size}/{block_size}");
                assert!(!b.data.is_empty() && b.data.len() <= block_size);
            }
            let all: Vec<u8> = blocks.iter().flat_map(|b| b.data.clone()).collect();
            assert_eq!(all[0], 0xC4);
            assert_eq!(load_file_data(&all), Ok(&module[..]), "{size}/{block_size}");
            // Every block parses back to itself through the wire.
            if block_size <= 255 && n < 300 {
                for b in &blocks {
                    assert_eq!(
                        parse_wire(&wire(&b.to_command())),
                        Ok(GpCommand::Load(b.clone()))
                    );
                }
            }
        }
    }
    // The length forms at their boundaries.
    let header = |size: usize| Load::blocks(&vec![0; size], 0x20000)[0].data[..5].to_vec();
    assert_eq!(&header(0x7F)[..2], &h("C47F")[..]);
    assert_eq!(&header(0x80)[..3], &h("C48180")[..]);
    assert_eq!(&header(0xFF)[..3], &h("C481FF")[..]);
    assert_eq!(&header(0x100)[..4], &h("C4820100")[..]);
    assert_eq!(header(0x10000), h("C483010000"));
    // 256 blocks and more: numbers wrap.
    let many = Load::blocks(&[0; 300], 1);
    assert_eq!(
        (many[256].block, many[303].block, many[303].last),
        (0, 47, true)
    );
    // Zero block size is taken as 1.
    assert_eq!(Load::blocks(&[9], 0).len(), 3);
}

#[test]
fn load_file_data_is_one_c4_object() {
    assert_eq!(load_file_data(&h("C400")), Ok(&[][..]));
    assert_eq!(load_file_data(&h("C40201 02")), Ok(&h("0102")[..]));
    assert_eq!(load_file_data(&h("C48102 0102")), Ok(&h("0102")[..]));
    assert_eq!(load_file_data(&h("C4820002 0102")), Ok(&h("0102")[..]));
    assert_eq!(load_file_data(&h("C483000002 0102")), Ok(&h("0102")[..]));
    for bad in [
        "",
        "C4",
        "C402 01",           // shorter than its length
        "C401 0102",         // trailing byte
        "C400 C400",         // two objects
        "C380 0102",         // indefinite length
        "C48400000002 0102", // four-byte length
        "C5020102",          // another tag
        "00C400",            // padding before
    ] {
        assert_eq!(load_file_data(&h(bad)), Err(Status::IncorrectData), "{bad}");
    }
}

#[test]
fn get_status_of_load_files_and_modules() {
    for (scope, p1) in [
        (StatusScope::LoadFiles, "20"),
        (StatusScope::LoadFilesAndModules, "10"),
        (StatusScope::Applications, "40"),
        (StatusScope::Isd, "80"),
    ] {
        let first = wire(&GetStatus::all(scope).to_command());
        assert_eq!(first, h(&format!("80F2{p1}02 02 4F00 00")));
        let mut next = GetStatus::all(scope);
        next.next = true;
        let again = wire(&next.to_command());
        assert_eq!(again, h(&format!("80F2{p1}03 02 4F00 00")));
        assert_eq!(
            parse_wire(&first),
            Ok(GpCommand::GetStatus(GetStatus::all(scope)))
        );
        assert_eq!(parse_wire(&again), Ok(GpCommand::GetStatus(next)));
    }
}

#[test]
fn registry_entries_of_load_files_and_applications() {
    let app = RegistryEntry {
        aid: h(APPLET),
        life_cycle: life_cycle::SELECTABLE,
        privileges: Some(h("000000")),
        load_file: Some(h(PACKAGE)),
        associated_sd: Some(h(ISDP)),
        modules: vec![],
    };
    let bytes = app.to_bytes();
    assert_eq!(
        bytes,
        h(&format!(
            "E3 3F 4F10{APPLET} 9F700107 C503000000 C410{PACKAGE} CC10{ISDP}"
        ))
    );
    let file = RegistryEntry {
        aid: h(PACKAGE),
        life_cycle: life_cycle::LOADED,
        modules: vec![h(PACKAGE), h("A000000001")],
        ..RegistryEntry::default()
    };
    let fbytes = file.to_bytes();
    assert_eq!(
        fbytes,
        h(&format!(
            "E3 2F 4F10{PACKAGE} 9F700101 8410{PACKAGE} 8405A000000001"
        ))
    );
    let both = [bytes, fbytes].concat();
    assert_eq!(RegistryEntry::parse_all(&both), Ok(vec![app, file]));
    // Other cards' fields (CF, CE) are skipped, in any order.
    let other = h("E3 18 CE0101 4F05A000000001 CF0100 9F700103 CC05A000000002");
    let e = RegistryEntry::parse_all(&other).unwrap();
    assert_eq!(e[0].associated_sd, Some(h("A000000002")));
    assert_eq!(
        (e[0].privileges.clone(), e[0].load_file.clone()),
        (None, None)
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
            ..RegistryEntry::default()
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
    for ins in [0x50u8, 0x82, 0xF2, 0xCA, 0xD8, 0xE6, 0xE8, 0xE2, 0xE4] {
        for p in [
            0x00u8, 0x02, 0x03, 0x04, 0x08, 0x0C, 0x10, 0x20, 0x80, 0x81, 0xFF,
        ] {
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
    for b in [
        &[][..],
        &[0xE0, 0x81][..],
        &[0x66, 0x02, 0x73, 0x05][..],
        &[0xC4, 0x83, 0xFF, 0xFF, 0xFF][..],
        &[0xC4, 0x84][..],
    ] {
        let _ = load_file_data(b);
        let _ = InstallParameters::parse(b);
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
