//! The FCPs the card answers to SELECT with P2=04 (ETSI TS 102 221 §11.1.1.3), read by a
//! decoder of this file written from the clause's tables (not the card's encoder, not
//! reader-client's decoder): the clause's coding first, then every kind of file of the
//! default profile, with sizes checked against what READ BINARY / READ RECORD return.

use crate::common::{card, tx};
use card_emulator::Card;

/// A data object of an FCP. TS 102 221 §11.1.1.3 uses one-byte tags only.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tlv {
    tag: u8,
    value: Vec<u8>,
}

/// A sequence of BER-TLVs with one-byte tags and lengths in one, two (81 xx) or three
/// (82 xx xx) bytes; anything else is an error, as is a value running past the end.
fn parse_tlvs(mut b: &[u8]) -> Result<Vec<Tlv>, String> {
    let mut out = Vec::new();
    while let [tag, rest @ ..] = b {
        if tag & 0x1F == 0x1F {
            return Err(format!("tag {tag:02X} announces a multi-byte tag"));
        }
        let (len, rest) = match rest {
            [n, r @ ..] if *n < 0x80 => (*n as usize, r),
            [0x81, n, r @ ..] if *n >= 0x80 => (*n as usize, r),
            [0x82, hi, lo, r @ ..] => (u16::from_be_bytes([*hi, *lo]) as usize, r),
            _ => return Err(format!("bad length after tag {tag:02X}")),
        };
        if rest.len() < len {
            return Err(format!(
                "tag {tag:02X}: {len} bytes announced, {} left",
                rest.len()
            ));
        }
        out.push(Tlv {
            tag: *tag,
            value: rest[..len].to_vec(),
        });
        b = &rest[len..];
    }
    Ok(out)
}

/// EF structure, b3..b1 of the file descriptor byte (§11.1.1.4.3, table 11.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Structure {
    NoInformation,
    Transparent,
    LinearFixed,
    Cyclic,
    BerTlv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileType {
    /// MF, DF or ADF: b6..b1 = 111000.
    Df,
    /// b6..b4 = 000.
    WorkingEf(Structure),
    /// b6..b4 = 001.
    InternalEf(Structure),
}

/// Tag 82 (§11.1.1.4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Descriptor {
    /// b7 of the file descriptor byte.
    shareable: bool,
    file_type: FileType,
    /// Always 21 in TS 102 221.
    data_coding: u8,
    /// Linear fixed and cyclic EFs: record length (2 bytes) and number of records (1 byte).
    records: Option<(u16, u8)>,
}

fn structure(b3_b1: u8) -> Result<Structure, String> {
    match b3_b1 {
        0b000 => Ok(Structure::NoInformation),
        0b001 => Ok(Structure::Transparent),
        0b010 => Ok(Structure::LinearFixed),
        0b110 => Ok(Structure::Cyclic),
        s => Err(format!("EF structure {s:03b} is RFU")),
    }
}

fn descriptor(v: &[u8]) -> Result<Descriptor, String> {
    let (&fdb, rest) = v.split_first().ok_or("empty file descriptor")?;
    if fdb & 0x80 != 0 {
        return Err(format!("file descriptor byte {fdb:02X}: b8 shall be 0"));
    }
    let file_type = match fdb & 0x3F {
        0x38 => FileType::Df,
        0x39 => FileType::WorkingEf(Structure::BerTlv),
        t if t & 0x38 == 0x00 => FileType::WorkingEf(structure(t & 0x07)?),
        t if t & 0x38 == 0x08 => FileType::InternalEf(structure(t & 0x07)?),
        _ => return Err(format!("file descriptor byte {fdb:02X}: RFU file type")),
    };
    let (&data_coding, rest) = rest.split_first().ok_or("no data coding byte")?;
    let is_record = matches!(
        file_type,
        FileType::WorkingEf(Structure::LinearFixed | Structure::Cyclic)
            | FileType::InternalEf(Structure::LinearFixed | Structure::Cyclic)
    );
    let records = match (is_record, rest) {
        (true, [hi, lo, n]) => Some((u16::from_be_bytes([*hi, *lo]), *n)),
        (false, []) => None,
        _ => {
            return Err(format!(
                "file descriptor of {} bytes for {file_type:?}",
                v.len()
            ))
        }
    };
    Ok(Descriptor {
        shareable: fdb & 0x40 != 0,
        file_type,
        data_coding,
        records,
    })
}

/// Tags 8C (compact), AB (expanded) and 8B (referenced to EF.ARR), §11.1.1.4.7.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Security {
    /// ISO 7816-4 compact format: the access mode byte, then one security condition byte per
    /// bit set among b7..b1, from b7 down.
    Compact {
        am: u8,
        sc: Vec<u8>,
    },
    Expanded(Vec<u8>),
    /// EF.ARR's FID and a record number (or SE id / record pairs).
    Referenced {
        arr: u16,
        rest: Vec<u8>,
    },
}

fn compact(v: &[u8]) -> Result<Security, String> {
    let (&am, sc) = v.split_first().ok_or("empty compact security attributes")?;
    if am & 0x80 != 0 {
        return Err(format!(
            "AM byte {am:02X}: b8=1 (command-coded) is not used here"
        ));
    }
    if sc.len() != (am & 0x7F).count_ones() as usize {
        return Err(format!("AM byte {am:02X} with {} SC bytes", sc.len()));
    }
    Ok(Security::Compact {
        am,
        sc: sc.to_vec(),
    })
}

/// One key reference of the PIN status template (§9.5.2): enabled when its PS_DO bit is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyRef {
    reference: u8,
    enabled: bool,
    usage_qualifier: Option<u8>,
}

/// Tag C6: `90 PS_DO`, then per key reference an optional `95 01 usage qualifier` and
/// `83 01 key reference`. The n-th key reference listed is enabled when the n-th bit of the
/// PS_DO, from b8 of its first byte down, is 1.
fn pin_status(v: &[u8]) -> Result<Vec<KeyRef>, String> {
    let tlvs = parse_tlvs(v)?;
    let (first, rest) = tlvs.split_first().ok_or("empty PIN status template")?;
    if first.tag != 0x90 || first.value.is_empty() {
        return Err(format!(
            "PIN status template starts with {first:?}, not 90 PS_DO"
        ));
    }
    let ps_do = &first.value;
    let mut out = Vec::new();
    let mut qualifier = None;
    for t in rest {
        match (t.tag, t.value.as_slice()) {
            (0x95, [q]) if qualifier.is_none() => qualifier = Some(*q),
            (0x83, [r]) => {
                let n = out.len();
                let byte = ps_do.get(n / 8).ok_or(format!(
                    "PS_DO of {} byte(s) for key reference {}",
                    ps_do.len(),
                    n + 1
                ))?;
                out.push(KeyRef {
                    reference: *r,
                    enabled: byte & (0x80 >> (n % 8)) != 0,
                    usage_qualifier: qualifier.take(),
                });
            }
            _ => return Err(format!("unexpected {t:?} in the PIN status template")),
        }
    }
    if qualifier.is_some() {
        return Err("usage qualifier without a key reference".into());
    }
    Ok(out)
}

/// Tag 88 (§11.1.1.4.8): absent, the SFI is b5..b1 of the FID; present and empty, the file
/// has none; else the SFI is in b8..b4 (b3..b1 = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sfi {
    ImpliedByFid(u8),
    NotSupported,
    Explicit(u8),
}

fn number(v: &[u8]) -> Result<u64, String> {
    if v.is_empty() || v.len() > 8 {
        return Err(format!("a size of {} bytes", v.len()));
    }
    Ok(v.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
}

/// A decoded FCP template; `tags` keeps the data objects in the order they came.
#[derive(Debug, Default)]
struct Fcp {
    tags: Vec<u8>,
    descriptor: Option<Descriptor>,
    fid: Option<u16>,
    df_name: Option<Vec<u8>>,
    proprietary: Option<Vec<Tlv>>,
    life_cycle: Option<u8>,
    security: Vec<Security>,
    pins: Option<Vec<KeyRef>>,
    file_size: Option<u64>,
    total_size: Option<u64>,
    sfi_tag: Option<Vec<u8>>,
    unknown: Vec<Tlv>,
}

impl Fcp {
    fn sfi(&self) -> Result<Sfi, String> {
        match (self.sfi_tag.as_deref(), self.fid) {
            (None, Some(fid)) => Ok(Sfi::ImpliedByFid((fid & 0x1F) as u8)),
            (None, None) => Err("no 88 and no FID to imply an SFI".into()),
            (Some([]), _) => Ok(Sfi::NotSupported),
            (Some([b]), _) if b & 0x07 == 0 && b >> 3 != 0 => Ok(Sfi::Explicit(b >> 3)),
            (Some(v), _) => Err(format!("SFI data object {v:02X?}")),
        }
    }

    fn has(&self, tag: u8) -> bool {
        self.tags.contains(&tag)
    }
}

/// Decode a whole response data field: exactly one `62` template.
fn decode(data: &[u8]) -> Result<Fcp, String> {
    let top = parse_tlvs(data)?;
    let [Tlv { tag: 0x62, value }] = top.as_slice() else {
        return Err(format!("not one FCP template (62): {top:02X?}"));
    };
    let mut f = Fcp::default();
    for t in parse_tlvs(value)? {
        if f.tags.contains(&t.tag) {
            return Err(format!("tag {:02X} twice", t.tag));
        }
        f.tags.push(t.tag);
        let v = t.value.as_slice();
        match t.tag {
            0x82 => f.descriptor = Some(descriptor(v)?),
            0x83 => match v {
                [hi, lo] => f.fid = Some(u16::from_be_bytes([*hi, *lo])),
                _ => return Err(format!("FID of {} bytes", v.len())),
            },
            0x84 if (1..=16).contains(&v.len()) => f.df_name = Some(v.to_vec()),
            0xA5 => f.proprietary = Some(parse_tlvs(v)?),
            0x8A => match v {
                [lcsi] => f.life_cycle = Some(*lcsi),
                _ => return Err(format!("life cycle status of {} bytes", v.len())),
            },
            0x8C => f.security.push(compact(v)?),
            0xAB => f.security.push(Security::Expanded(v.to_vec())),
            0x8B => match v {
                [hi, lo, rest @ ..] if !rest.is_empty() => f.security.push(Security::Referenced {
                    arr: u16::from_be_bytes([*hi, *lo]),
                    rest: rest.to_vec(),
                }),
                _ => return Err(format!("referenced security attributes {v:02X?}")),
            },
            0xC6 => f.pins = Some(pin_status(v)?),
            0x80 => f.file_size = Some(number(v)?),
            0x81 => f.total_size = Some(number(v)?),
            0x88 if v.len() <= 1 => f.sfi_tag = Some(v.to_vec()),
            _ => f.unknown.push(t),
        }
    }
    Ok(f)
}

/// Which kind of file an FCP is checked as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mf,
    Df,
    Adf,
    Ef,
}

/// The data objects TS 102 221 makes mandatory for `kind` that `fcp` lacks: table 11.3 for
/// the MF, a DF or an ADF (82, 83 but for an ADF, 84 for an ADF, 8A, one of 8B/8C/AB, C6;
/// A5 for the MF only, holding the UICC characteristics 80), table 11.4 for an EF (82, 83,
/// 8A, one of 8B/8C/AB, 80).
fn missing(fcp: &Fcp, kind: Kind) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut need = |present: bool, what: &'static str| {
        if !present {
            out.push(what);
        }
    };
    need(fcp.has(0x82), "82 file descriptor");
    need(fcp.security.len() == 1, "exactly one of 8B/8C/AB");
    need(fcp.has(0x8A), "8A life cycle status");
    match kind {
        Kind::Ef => {
            need(fcp.has(0x83), "83 file identifier");
            need(fcp.has(0x80), "80 file size");
        }
        Kind::Mf | Kind::Df | Kind::Adf => {
            need(kind == Kind::Adf || fcp.has(0x83), "83 file identifier");
            need(kind != Kind::Adf || fcp.has(0x84), "84 DF name (AID)");
            // Our reading of table 11.3: A5 (proprietary information) is optional (O) for a
            // DF or an ADF and mandatory for the MF only, which carries the UICC
            // characteristics in it (§11.1.1.4.6.1).
            need(
                kind != Kind::Mf || fcp.has(0xA5),
                "A5 proprietary information",
            );
            need(fcp.has(0xC6), "C6 PIN status template");
            let uicc_characteristics = fcp
                .proprietary
                .iter()
                .flatten()
                .any(|t| t.tag == 0x80 && t.value.len() == 1);
            need(
                kind != Kind::Mf || uicc_characteristics,
                "A5/80 UICC characteristics",
            );
        }
    }
    out
}

// --- The clause's coding, on byte strings built from its tables -------------------------
//
// TS 102 221 gives no complete FCP as a worked example; these strings are put together from
// the tables of §11.1.1.4 (file descriptor byte, data coding byte 21, life cycle 05 =
// operational and activated), the compact security attributes of §9.2.x ('8C 03 03 10 00':
// UPDATE after user verification, READ always) and the PIN status template of §9.5.2.

fn hex(s: &str) -> Vec<u8> {
    apdu_specs::hexfmt::parse(s).unwrap_or_else(|e| panic!("{s}: {e:?}"))
}

#[test]
fn file_descriptor_byte_follows_table_11_5() {
    let d = |s: &str| descriptor(&hex(s));
    let df = d("78 21").unwrap();
    assert_eq!(
        (df.shareable, df.file_type, df.data_coding),
        (true, FileType::Df, 0x21)
    );
    let df = d("38 21").unwrap();
    assert_eq!((df.shareable, df.file_type), (false, FileType::Df));
    let t = d("41 21").unwrap();
    assert_eq!(
        (t.shareable, t.file_type, t.records),
        (true, FileType::WorkingEf(Structure::Transparent), None)
    );
    let l = d("42 21 00 1C 0A").unwrap();
    assert_eq!(l.file_type, FileType::WorkingEf(Structure::LinearFixed));
    assert_eq!(l.records, Some((0x1C, 10)));
    let c = d("46 21 00 08 05").unwrap();
    assert_eq!(c.file_type, FileType::WorkingEf(Structure::Cyclic));
    assert_eq!(c.records, Some((8, 5)));
    assert_eq!(
        d("09 21").unwrap().file_type,
        FileType::InternalEf(Structure::Transparent)
    );
    assert_eq!(
        d("79 21").unwrap().file_type,
        FileType::WorkingEf(Structure::BerTlv)
    );
    // b8 set, RFU structures, a record EF without its record fields, a DF with them.
    for bad in [
        "F8 21",
        "43 21",
        "45 21",
        "42 21",
        "78 21 00 10 01",
        "41",
        "18 21",
    ] {
        assert!(d(bad).is_err(), "{bad} decoded");
    }
}

#[test]
fn pin_status_template_bits_enable_key_references_in_order() {
    // Application PIN 01 enabled, second application PIN 81 disabled, ADM 0A enabled, the
    // universal PIN 11 (usage qualifier 08: use it) enabled: PS_DO 1011 0000.
    let pins = pin_status(&hex(
        "90 01 B0 83 01 01 83 01 81 83 01 0A 95 01 08 83 01 11",
    ))
    .unwrap();
    let got: Vec<(u8, bool, Option<u8>)> = pins
        .iter()
        .map(|k| (k.reference, k.enabled, k.usage_qualifier))
        .collect();
    assert_eq!(
        got,
        [
            (0x01, true, None),
            (0x81, false, None),
            (0x0A, true, None),
            (0x11, true, Some(0x08))
        ]
    );
    // Nine key references need a second PS_DO byte.
    let nine: String = (1..=9).map(|r| format!("8301{r:02X}")).collect();
    assert!(pin_status(&hex(&format!("9001FF{nine}"))).is_err());
    let p = pin_status(&hex(&format!("9002FF80{nine}"))).unwrap();
    assert!(p.iter().all(|k| k.enabled), "{p:?}");
    assert!(pin_status(&hex("830101")).is_err(), "no PS_DO first");
}

#[test]
fn fcps_built_from_the_clause_tables_decode_field_by_field() {
    // An MF: shareable DF, FID 3F00, A5 { 80 UICC characteristics 71 }, operational,
    // compact attributes, PIN 01 enabled.
    let mf = decode(&hex(
        "62 1B 82 02 78 21 83 02 3F 00 A5 03 80 01 71 8A 01 05 8C 01 00 C6 06 90 01 80 83 01 01",
    ))
    .unwrap();
    assert_eq!(missing(&mf, Kind::Mf), Vec::<&str>::new());
    assert_eq!(mf.fid, Some(0x3F00));
    // The same without A5: complete for a DF (A5 is optional there), not for the MF.
    let no_a5 = decode(&hex(
        "62 16 82 02 78 21 83 02 3F 00 8A 01 05 8C 01 00 C6 06 90 01 80 83 01 01",
    ))
    .unwrap();
    assert_eq!(missing(&no_a5, Kind::Df), Vec::<&str>::new());
    assert_eq!(
        missing(&no_a5, Kind::Mf),
        ["A5 proprietary information", "A5/80 UICC characteristics"]
    );
    assert_eq!(mf.life_cycle, Some(0x05));
    assert_eq!(
        mf.proprietary,
        Some(vec![Tlv {
            tag: 0x80,
            value: vec![0x71]
        }])
    );
    // An ADF: no FID needed, its AID in 84.
    let adf = decode(&hex(
        "62 28 82 02 78 21 84 10 A0 00 00 00 87 10 02 FF FF FF FF 89 07 09 00 00 \
         A5 00 8A 01 05 8B 03 2F 06 02 C6 06 90 01 00 83 01 01",
    ))
    .unwrap();
    assert_eq!(missing(&adf, Kind::Adf), Vec::<&str>::new());
    assert_eq!(missing(&adf, Kind::Df), ["83 file identifier"]);
    assert_eq!(
        adf.security,
        [Security::Referenced {
            arr: 0x2F06,
            rest: vec![0x02]
        }]
    );
    assert_eq!(adf.pins.as_ref().map(|p| p[0].enabled), Some(false));
    // A transparent EF of 10 bytes, UPDATE after PIN, READ always, SFI 02.
    let ef = decode(&hex(
        "62 1B 82 02 41 21 83 02 2F E2 8A 01 05 8C 03 03 10 00 80 02 00 0A 81 02 00 0A 88 01 10",
    ))
    .unwrap();
    assert_eq!(missing(&ef, Kind::Ef), Vec::<&str>::new());
    assert_eq!((ef.file_size, ef.total_size), (Some(10), Some(10)));
    assert_eq!(ef.sfi(), Ok(Sfi::Explicit(2)));
    assert_eq!(
        ef.security,
        [Security::Compact {
            am: 0x03,
            sc: vec![0x10, 0x00]
        }]
    );
    // 88 absent: the SFI is the FID's low five bits; 88 empty: none.
    let no88 = decode(&hex(
        "62 11 82 02 41 21 83 02 6F 07 8A 01 05 8C 01 00 80 01 09",
    ))
    .unwrap();
    assert_eq!(no88.sfi(), Ok(Sfi::ImpliedByFid(0x07)));
    let empty88 = decode(&hex("62 06 83 02 6F 07 88 00")).unwrap();
    assert_eq!(empty88.sfi(), Ok(Sfi::NotSupported));
    assert_eq!(
        missing(&empty88, Kind::Ef),
        [
            "82 file descriptor",
            "exactly one of 8B/8C/AB",
            "8A life cycle status",
            "80 file size"
        ]
    );
    // Malformed: not a 62 template, a length past the end, a repeated tag, AM/SC mismatch.
    for bad in [
        "6F 04 83 02 3F 00",
        "62 05 83 02 3F 00",
        "62 08 83 02 3F 00 83 02 3F 00",
        "62 04 8C 02 03 00",
    ] {
        assert!(decode(&hex(bad)).is_err(), "{bad} decoded");
    }
}

// --- The card -------------------------------------------------------------------------

/// Send `apdu` (hex), expect 9000, return the data bytes.
fn ok(c: &mut Card, apdu: &str) -> Vec<u8> {
    let r = tx(c, apdu);
    assert!(r.ends_with("9000"), "{apdu} -> {r}");
    hex(&r[..r.len() - 4])
}

/// SELECT with P2=04 (return the FCP) and Le=00, decoded.
fn select_fcp(c: &mut Card, p1: u8, data: &str) -> Fcp {
    let d = hex(data);
    let apdu = format!(
        "00A4{p1:02X}04{:02X}{}00",
        d.len(),
        apdu_specs::hexfmt::upper(&d)
    );
    let bytes = ok(c, &apdu);
    decode(&bytes).unwrap_or_else(|e| panic!("{apdu}: {e}\n{bytes:02X?}"))
}

fn read_binary_all(c: &mut Card, size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < size {
        let n = (size - out.len()).min(0xFF);
        let off = out.len();
        let chunk = ok(c, &format!("00B0{:04X}{n:02X}", off));
        assert_eq!(chunk.len(), n, "READ BINARY at {off}");
        out.extend(chunk);
    }
    // One byte past the end: 6B00 (offset beyond the file) or 6282 (end reached).
    let past = tx(c, &format!("00B0{size:04X}01"));
    assert!(
        past == "6B00" || past == "6282",
        "READ BINARY past {size}: {past}"
    );
    out
}

fn descriptor_of(f: &Fcp) -> &Descriptor {
    f.descriptor
        .as_ref()
        .unwrap_or_else(|| panic!("no 82: {f:?}"))
}

#[test]
fn select_mf_3g_style_returns_a_complete_mf_fcp() {
    let mut c = card();
    let mf = select_fcp(&mut c, 0x00, "3F00");
    assert_eq!(missing(&mf, Kind::Mf), Vec::<&str>::new(), "{mf:?}");
    let d = descriptor_of(&mf);
    assert_eq!(
        (d.file_type, d.data_coding, d.records),
        (FileType::Df, 0x21, None)
    );
    assert_eq!(mf.fid, Some(0x3F00));
    assert_eq!(mf.life_cycle, Some(0x05), "operational and activated");
    // UICC characteristics: clock stop allowed (b1).
    let uc = mf
        .proprietary
        .iter()
        .flatten()
        .find(|t| t.tag == 0x80)
        .unwrap();
    assert_eq!(uc.value[0] & 0x01, 0x01, "{uc:?}");
    // The card PIN 81 guards the MF, enabled.
    let pins = mf.pins.as_ref().unwrap();
    assert!(
        pins.iter().any(|k| k.reference == 0x81 && k.enabled),
        "{pins:?}"
    );
    assert!(mf.unknown.is_empty(), "{:?}", mf.unknown);
    // P2=0C: the same selection, no FCP.
    assert_eq!(tx(&mut c, "00A4000C023F00"), "9000");
}

#[test]
fn ef_iccid_fcp_matches_its_ten_bcd_bytes() {
    let mut c = card();
    ok(&mut c, "00A4000C023F00");
    let ef = select_fcp(&mut c, 0x00, "2FE2");
    assert_eq!(missing(&ef, Kind::Ef), Vec::<&str>::new(), "{ef:?}");
    let d = descriptor_of(&ef);
    assert_eq!(d.file_type, FileType::WorkingEf(Structure::Transparent));
    assert_eq!((d.data_coding, d.records), (0x21, None));
    assert_eq!(ef.fid, Some(0x2FE2));
    assert_eq!(ef.file_size, Some(10));
    assert!(ef.total_size.is_none_or(|t| t >= 10), "{ef:?}");
    // TS 102 221 §13.2: READ always, UPDATE never here (the card rewrites it on a switch).
    assert_eq!(
        ef.security,
        [Security::Compact {
            am: 0x03,
            sc: vec![0xFF, 0x00]
        }]
    );
    // The content: the enabled container's ICCID 8944476500001224158 in BCD, each byte's
    // low nibble first, padded with F. (That it follows an ES10c EnableProfile is tested
    // by es10c.rs, ef_iccid_follows_the_enabled_container_durably.)
    let content = read_binary_all(&mut c, 10);
    assert_eq!(content, hex("98 44 74 56 00 00 21 42 51 F8"));
    let digits: String = content
        .iter()
        .flat_map(|b| [b & 0x0F, b >> 4])
        .take_while(|n| *n != 0x0F)
        .map(|n| char::from(b'0' + n))
        .collect();
    assert_eq!(digits, "8944476500001224158");
    // P2=0C: no FCP.
    assert_eq!(tx(&mut c, "00A4000C022FE2"), "9000");
}

#[test]
fn ef_dir_fcp_describes_a_linear_fixed_ef_whose_records_read_at_that_length() {
    let mut c = card();
    ok(&mut c, "00A4000C023F00");
    let ef = select_fcp(&mut c, 0x00, "2F00");
    assert_eq!(missing(&ef, Kind::Ef), Vec::<&str>::new(), "{ef:?}");
    let d = descriptor_of(&ef);
    assert_eq!(d.file_type, FileType::WorkingEf(Structure::LinearFixed));
    let (len, n) = d.records.unwrap_or_else(|| panic!("{d:?}"));
    assert_eq!((len, n), (21, 1));
    assert_eq!(ef.file_size, Some(u64::from(len) * u64::from(n)));
    // Record 1: exactly the record length, an application template 61 holding the demo
    // application's AID (4F 08 F0 "VSEDEMO").
    let rec = ok(&mut c, &format!("00B20104{len:02X}"));
    assert_eq!(rec.len(), usize::from(len));
    assert_eq!(&rec[..12], hex("61 13 4F 08 F0 56 53 45 44 45 4D 4F"));
    assert_eq!(tx(&mut c, &format!("00B2{:02X}04{len:02X}", n + 1)), "6A83");
    assert_eq!(tx(&mut c, "00A4000C022F00"), "9000");
}

/// READ RECORD `r` of the current EF and, by its SFI, of the same EF: both must agree.
fn read_record_both_ways(c: &mut Card, r: u8, sfi: u8, len: u16) -> Vec<u8> {
    let current = ok(c, &format!("00B2{r:02X}04{len:02X}"));
    let by_sfi = ok(c, &format!("00B2{r:02X}{:02X}{len:02X}", sfi << 3 | 4));
    assert_eq!(current, by_sfi, "record {r} by SFI {sfi:02X}");
    current
}

#[test]
fn record_efs_under_a_df_hold_the_count_of_records_their_fcp_gives() {
    let mut c = card();
    ok(&mut c, "00A4000C023F00");
    ok(&mut c, "00A4000C025000");
    ok(&mut c, "002000810431323334"); // 5003 is updated after the PIN
    for (fid, structure, len, n, sfi) in [
        ("5003", Structure::LinearFixed, 16u16, 8u8, 3u8),
        ("5004", Structure::Cyclic, 8, 5, 4),
    ] {
        let ef = select_fcp(&mut c, 0x00, fid);
        assert_eq!(missing(&ef, Kind::Ef), Vec::<&str>::new(), "{fid}: {ef:?}");
        let d = descriptor_of(&ef);
        assert_eq!(d.file_type, FileType::WorkingEf(structure), "{fid}");
        assert_eq!(d.records, Some((len, n)), "{fid}");
        assert_eq!(ef.file_size, Some(u64::from(len) * u64::from(n)), "{fid}");
        assert_eq!(ef.sfi(), Ok(Sfi::Explicit(sfi)), "{fid}");
        // The card creates records with APPEND RECORD (ISO 7816-4): fill the EF up to the
        // count of its FCP, then every record reads back at the record length, through the
        // current EF and through the SFI, and record n+1 does not exist.
        let present = (1..=n)
            .take_while(|r| tx(&mut c, &format!("00B2{r:02X}04{len:02X}")) != "6A83")
            .count() as u8;
        for i in present..n {
            let rec = format!("{:02X}", 0xA0 + i).repeat(usize::from(len));
            ok(&mut c, &format!("00E20000{len:02X}{rec}"));
        }
        for r in 1..=n {
            let rec = read_record_both_ways(&mut c, r, sfi, len);
            assert_eq!(rec.len(), usize::from(len), "{fid} record {r}");
        }
        assert_eq!(
            tx(&mut c, &format!("00B2{:02X}04{len:02X}", n + 1)),
            "6A83",
            "{fid}"
        );
        if structure == Structure::LinearFixed {
            let full = tx(
                &mut c,
                &format!("00E20000{len:02X}{}", "EE".repeat(usize::from(len))),
            );
            assert_eq!(full, "6A84", "{fid}: no room past {n} records");
        }
    }
}

#[test]
fn df_fcp_selected_by_fid_has_descriptor_fid_life_cycle_security_and_pins() {
    let mut c = card();
    ok(&mut c, "00A4000C023F00");
    let df = select_fcp(&mut c, 0x00, "5000");
    let d = descriptor_of(&df);
    assert_eq!(
        (d.file_type, d.data_coding, d.records),
        (FileType::Df, 0x21, None)
    );
    assert_eq!(df.fid, Some(0x5000));
    assert_eq!(
        df.df_name.as_deref(),
        Some(hex("F0 56 53 45 44 45 4D 4F").as_slice())
    );
    assert_eq!(df.life_cycle, Some(0x05));
    assert_eq!(df.security.len(), 1, "{df:?}");
    let pins = df.pins.as_ref().unwrap();
    assert!(
        pins.iter().any(|k| k.reference == 0x81 && k.enabled),
        "{pins:?}"
    );
    // Everything table 11.3 asks of a DF (A5 is optional for it).
    assert_eq!(missing(&df, Kind::Df), Vec::<&str>::new(), "{df:?}");
    // An EF of that DF: its size is what READ BINARY reads.
    let ef = select_fcp(&mut c, 0x00, "5002");
    assert_eq!(missing(&ef, Kind::Ef), Vec::<&str>::new(), "{ef:?}");
    assert_eq!(ef.file_size, Some(64));
    assert_eq!(
        ef.security,
        [Security::Compact {
            am: 0x03,
            sc: vec![0x10, 0x10]
        }]
    );
    ok(&mut c, "002000810431323334");
    let content = read_binary_all(&mut c, 64);
    assert!(
        content.starts_with(b"secret: only after VERIFY"),
        "{content:02X?}"
    );
    assert_eq!(tx(&mut c, "00A4000C025000"), "9000");
}

#[test]
fn adf_selected_by_aid_carries_its_df_name() {
    let mut c = card();
    // The enabled container's application, by AID F0 "VSECONT".
    let aid = "F0 56 53 45 43 4F 4E 54";
    let adf = select_fcp(&mut c, 0x04, aid);
    assert_eq!(adf.df_name, Some(hex(aid)));
    let d = descriptor_of(&adf);
    assert_eq!((d.file_type, d.data_coding), (FileType::Df, 0x21));
    assert_eq!(adf.life_cycle, Some(0x05));
    assert_eq!(adf.security.len(), 1, "{adf:?}");
    assert!(
        adf.pins
            .as_ref()
            .is_some_and(|p| p.iter().any(|k| k.enabled)),
        "{adf:?}"
    );
    assert_eq!(missing(&adf, Kind::Adf), Vec::<&str>::new(), "{adf:?}");
    // Its EF 6F01 (88 00: no SFI, not the 01 its FID would imply) and its content.
    let ef = select_fcp(&mut c, 0x00, "6F01");
    assert_eq!(missing(&ef, Kind::Ef), Vec::<&str>::new(), "{ef:?}");
    assert_eq!(ef.sfi(), Ok(Sfi::NotSupported), "{ef:?}");
    let text = b"container A: public data";
    assert_eq!(ef.file_size, Some(text.len() as u64));
    assert_eq!(read_binary_all(&mut c, text.len()), text);
    // P2=0C by AID: no FCP.
    assert_eq!(tx(&mut c, "00A4040C08F0565345434F4E54"), "9000");
}

// --- Where the card once departed from the clause -----------------------------------

/// §11.1.1.4.8: without tag 88 an EF's SFI is the low five bits of its FID; an EF without
/// one says `88 00`. §13.1 gives EF.DIR the SFI 1E, which the card gives it. §13.2 would
/// give EF.ICCID the SFI 02, but the default profile's demo EF 2F02 holds SFI 02 at the MF:
/// EF.ICCID has no SFI and says `88 00` (the profile's comment on 2FE2). Every EF of the
/// default profile says which SFI it has, so no tool infers one from a FID.
#[test]
fn ef_dir_has_sfi_1e_ef_iccid_none_and_every_ef_fcp_carries_88() {
    let mut c = card();
    ok(&mut c, "00A4000C023F00");
    let dir = select_fcp(&mut c, 0x00, "2F00");
    assert_eq!(dir.sfi(), Ok(Sfi::Explicit(0x1E)), "{dir:?}");
    let iccid = select_fcp(&mut c, 0x00, "2FE2");
    assert_eq!(iccid.sfi_tag, Some(vec![]), "{iccid:?}");
    assert_eq!(iccid.sfi(), Ok(Sfi::NotSupported));
    // READ RECORD 1 by SFI 1E (P2 = 1E << 3 | 4 = F4) with the current EF elsewhere.
    assert_eq!(
        ok(&mut c, "00B201F415")[..12],
        hex("61 13 4F 08 F0 56 53 45 44 45 4D 4F"),
        "EF.DIR by SFI 1E"
    );
    // SFI 02 at the MF reads 2F02, not EF.ICCID.
    assert_eq!(ok(&mut c, "00B0820005"), b"Hello");

    // Every EF the default profile lists: the card-global ones by path from the MF, the
    // enabled container's under its ADF (by AID).
    let (global, containers) = card_emulator::profile::DEFAULT_PROFILE
        .split_once("[[container]]")
        .unwrap();
    let enabled = containers.split("[[container]]").next().unwrap();
    let paths = |part: &str| -> Vec<String> {
        part.lines()
            .filter_map(|l| l.strip_prefix("path = \""))
            .map(|p| p.trim_end_matches('"').replace('/', ""))
            .collect()
    };
    let mut efs = 0;
    let mut check = |f: Fcp, what: &str| {
        if descriptor_of(&f).file_type != FileType::Df {
            assert!(f.sfi_tag.is_some(), "{what}: no 88 in {f:?}");
            assert!(f.sfi().is_ok(), "{what}: {:?}", f.sfi());
            efs += 1;
        }
    };
    for p in paths(global) {
        check(select_fcp(&mut c, 0x08, &p), &p);
    }
    for p in paths(enabled) {
        select_fcp(&mut c, 0x04, "F0 56 53 45 43 4F 4E 54");
        check(select_fcp(&mut c, 0x00, &p), &p);
    }
    assert!(efs >= 12, "only {efs} EFs checked");
}

/// A linear fixed EF of a UICC has as many records as its descriptor says (§11.1.1.4.3,
/// file size = record length x number of records): EF.DIR, never updated, counts exactly
/// the records it holds. (The card's other record EFs count their room for APPEND RECORD,
/// ISO 7816-4; record_efs_under_a_df_hold_the_count_of_records_their_fcp_gives fills them.)
#[test]
fn every_record_ef_dir_counts_can_be_read() {
    let mut c = card();
    ok(&mut c, "00A4000C023F00");
    let d = select_fcp(&mut c, 0x00, "2F00").descriptor.unwrap();
    let (len, n) = d.records.unwrap();
    assert!(n >= 1, "{d:?}");
    for r in 1..=n {
        assert_eq!(
            ok(&mut c, &format!("00B2{r:02X}04{len:02X}")).len(),
            usize::from(len)
        );
    }
    assert_eq!(tx(&mut c, &format!("00B2{:02X}04{len:02X}", n + 1)), "6A83");
}

/// §9.5.2: the PIN status template lists key references, each a distinct PIN: the one
/// VERIFY with that reference reaches from the DF. The enabled container's ADF has its own
/// PIN 81, which shadows the card's PIN 81 there, so it lists 81 once.
#[test]
fn pin_status_templates_list_each_key_reference_once() {
    let mut c = card();
    for aid in ["F0 56 53 45 43 4F 4E 54", "F0 56 53 45 44 45 4D 4F"] {
        let f = select_fcp(&mut c, 0x04, aid);
        let refs: Vec<u8> = f.pins.iter().flatten().map(|k| k.reference).collect();
        let mut unique = refs.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(refs.len(), unique.len(), "{aid}: {refs:02X?}");
        assert!(f.pins.iter().flatten().all(|k| k.enabled), "{aid}: {f:?}");
    }
    // From the ADF, VERIFY 81 reaches the container's PIN: a wrong value counts down its
    // tries, not the card's (seen from the MF).
    select_fcp(&mut c, 0x04, "F0 56 53 45 43 4F 4E 54");
    assert_eq!(tx(&mut c, "002000810439393939"), "63C2");
    ok(&mut c, "00A4000C023F00");
    assert_eq!(tx(&mut c, "0020008100"), "63C3");
}
