//! GlobalPlatform answers and data structures: card recognition data, CPLC, key information
//! template, GET STATUS registry entries, the PUT KEY confirmation and STORE DATA's DGIs.

use super::{key_type, tag};
use crate::der;
use crate::{tlv, Status};

/// Why bytes from the card are not the structure asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} is malformed: {reason}")]
pub struct GpDataError {
    pub what: &'static str,
    pub reason: String,
}

fn bad(what: &'static str) -> impl Fn(der::DerError) -> GpDataError {
    move |e| GpDataError {
        what,
        reason: e.to_string(),
    }
}

fn invalid(what: &'static str, reason: impl Into<String>) -> GpDataError {
    GpDataError {
        what,
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------
// Object identifiers

/// GlobalPlatform's OID arc, `1.2.840.114283`, encoded.
pub const GP_OID_ARC: [u8; 6] = [0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B];
const GP_ARC_TEXT: &str = "1.2.840.114283.";

/// The OID `1.2.840.114283.<arcs>` encoded (base 128, X.690 §8.19).
pub fn gp_oid(arcs: &[u32]) -> Vec<u8> {
    let mut out = GP_OID_ARC.to_vec();
    for arc in arcs {
        let mut groups = Vec::new();
        let mut v = *arc;
        loop {
            groups.push((v & 0x7F) as u8);
            v >>= 7;
            if v == 0 {
                break;
            }
        }
        let last = groups.len() - 1;
        out.extend(
            groups
                .iter()
                .rev()
                .enumerate()
                .map(|(i, g)| if i < last { g | 0x80 } else { *g }),
        );
    }
    out
}

/// An object identifier in dotted form (`1.2.840.114283.4.3.112`).
pub fn oid_string(bytes: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for (i, b) in bytes.iter().enumerate() {
        acc = (acc << 7) | u64::from(b & 0x7F);
        if b & 0x80 == 0 {
            if parts.is_empty() && i < 8 {
                let (first, second) = match acc {
                    0..=39 => (0, acc),
                    40..=79 => (1, acc - 40),
                    _ => (2, acc - 80),
                };
                parts.extend([first, second]);
            } else {
                parts.push(acc);
            }
            acc = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

// ---------------------------------------------------------------------------------------
// GET DATA 66

/// One object of the card recognition data: `06 <oid>` itself, or a tag wrapping one
/// (`60 { 06 <oid> }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecognitionObject {
    pub tag: u32,
    pub oid: Vec<u8>,
}

/// Card recognition data, GET DATA `66` (Card Spec v2.3.1 §H.2):
/// `66 { 73 { 06 GP.1, 60 { 06 GP.2.<version> }, 63 { 06 GP.3 }, 64 { 06 GP.4.<scp>.<i> }… } }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardRecognitionData {
    /// In card order. Objects that carry no OID are not kept.
    pub objects: Vec<RecognitionObject>,
}

impl CardRecognitionData {
    /// A card of GlobalPlatform `version` (`[2, 3, 1]`) offering `scps` as (protocol, i).
    pub fn new(version: &[u32], scps: &[(u8, u8)]) -> CardRecognitionData {
        let mut objects = vec![
            RecognitionObject {
                tag: tag::OID,
                oid: gp_oid(&[1]),
            },
            RecognitionObject {
                tag: tag::CARD_MANAGEMENT_TYPE,
                oid: gp_oid(&[&[2][..], version].concat()),
            },
            RecognitionObject {
                tag: tag::CARD_IDENTIFICATION_SCHEME,
                oid: gp_oid(&[3]),
            },
        ];
        objects.extend(scps.iter().map(|(scp, i)| RecognitionObject {
            tag: tag::SECURE_CHANNEL_PROTOCOL,
            oid: gp_oid(&[4, u32::from(*scp), u32::from(*i)]),
        }));
        CardRecognitionData { objects }
    }

    /// The GlobalPlatform version of the card management type (`60`), e.g. `2.3.1`.
    pub fn gp_version(&self) -> Option<String> {
        self.objects
            .iter()
            .filter(|o| o.tag == tag::CARD_MANAGEMENT_TYPE)
            .find_map(|o| {
                oid_string(&o.oid)
                    .strip_prefix(GP_ARC_TEXT)?
                    .strip_prefix("2.")
                    .map(str::to_string)
            })
    }

    /// The secure channel protocols offered (`64`) as (SCP, i), e.g. `(3, 0x70)`.
    pub fn scps(&self) -> Vec<(u8, u8)> {
        self.objects
            .iter()
            .filter(|o| o.tag == tag::SECURE_CHANNEL_PROTOCOL)
            .filter_map(|o| {
                let text = oid_string(&o.oid);
                let nums: Vec<u8> = text
                    .strip_prefix(GP_ARC_TEXT)?
                    .split('.')
                    .filter_map(|n| n.parse().ok())
                    .collect();
                match nums.as_slice() {
                    [4, scp, i, ..] => Some((*scp, *i)),
                    _ => None,
                }
            })
            .collect()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut inner = Vec::new();
        for o in &self.objects {
            if o.tag == tag::OID {
                tlv::push(&mut inner, tag::OID, &o.oid);
            } else {
                tlv::push(&mut inner, o.tag, &tlv::build(tag::OID, &o.oid));
            }
        }
        tlv::build(
            tag::CARD_DATA,
            &tlv::build(tag::CARD_RECOGNITION_DATA, &inner),
        )
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, GpDataError> {
        let what = "card data (GET DATA 66)";
        let outer = der::read_expected(bytes, tag::CARD_DATA).map_err(bad(what))?;
        let inner = der::read_expected(outer, tag::CARD_RECOGNITION_DATA).map_err(bad(what))?;
        let mut objects = Vec::new();
        for o in der::read_all(inner).map_err(bad(what))? {
            let oid = if o.tag == tag::OID {
                o.value
            } else {
                match der::read_all(o.value)
                    .ok()
                    .and_then(|c| der::find(&c, tag::OID))
                {
                    Some(v) => v,
                    None => continue,
                }
            };
            objects.push(RecognitionObject {
                tag: o.tag,
                oid: oid.to_vec(),
            });
        }
        Ok(CardRecognitionData { objects })
    }
}

// ---------------------------------------------------------------------------------------
// GET DATA 9F7F

/// Card Production Life Cycle data, GET DATA `9F7F` (Card Spec v2.3.1 §H.6): 42 bytes in
/// 18 fixed fields ([`Cplc::FIELDS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cplc {
    pub data: [u8; Cplc::LEN],
}

impl Cplc {
    pub const LEN: usize = 42;

    /// The fields in order, with their lengths.
    pub const FIELDS: [(&'static str, usize); 18] = [
        ("IC fabricator", 2),
        ("IC type", 2),
        ("operating system ID", 2),
        ("operating system release date", 2),
        ("operating system release level", 2),
        ("IC fabrication date", 2),
        ("IC serial number", 4),
        ("IC batch identifier", 2),
        ("IC module fabricator", 2),
        ("IC module packaging date", 2),
        ("ICC manufacturer", 2),
        ("IC embedding date", 2),
        ("IC pre-personalizer", 2),
        ("IC pre-personalization date", 2),
        ("IC pre-personalization equipment", 4),
        ("IC personalizer", 2),
        ("IC personalization date", 2),
        ("IC personalization equipment", 4),
    ];

    /// Every field with its bytes.
    pub fn fields(&self) -> Vec<(&'static str, &[u8])> {
        let mut rest = &self.data[..];
        let mut out = Vec::with_capacity(Self::FIELDS.len());
        for (name, len) in Self::FIELDS {
            let (field, tail) = rest.split_at(len);
            out.push((name, field));
            rest = tail;
        }
        out
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        tlv::build(tag::CPLC, &self.data)
    }

    /// `9F7F <len> <42 bytes>`; bytes beyond the 42 (some cards pad) are not kept.
    pub fn parse(bytes: &[u8]) -> Result<Self, GpDataError> {
        let what = "CPLC (GET DATA 9F7F)";
        let v = der::read_expected(bytes, tag::CPLC).map_err(bad(what))?;
        let data = v
            .get(..Self::LEN)
            .and_then(|d| <[u8; Self::LEN]>::try_from(d).ok())
            .ok_or_else(|| invalid(what, format!("{} bytes, 42 expected", bytes.len())))?;
        Ok(Cplc { data })
    }
}

// ---------------------------------------------------------------------------------------
// GET DATA E0

/// One component of a key: its type ([`key_type`]) and length in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyComponentInfo {
    pub key_type: u8,
    pub length: u16,
    /// Extended format (`FF <type> <length(2)> <usage length> <usage> <access length>
    /// <access>`): the key usage and access bytes; `None` in the basic format.
    pub extended: Option<(Vec<u8>, Vec<u8>)>,
}

/// One key of the key information template: `C0 <id> <version> <components>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: u8,
    /// The key version number (KVN) of its key set.
    pub version: u8,
    pub components: Vec<KeyComponentInfo>,
}

/// Key Information Template, GET DATA `E0` (Card Spec v2.3.1 §11.3.3.1, Tables 11-17 and
/// 11-18): `E0 { C0 … }`, in the basic and the extended format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyInformation {
    pub keys: Vec<KeyInfo>,
}

impl KeyInfo {
    /// A key of one basic-format component.
    pub fn basic(id: u8, version: u8, key_type: u8, length: u8) -> KeyInfo {
        KeyInfo {
            id,
            version,
            components: vec![KeyComponentInfo {
                key_type,
                length: u16::from(length),
                extended: None,
            }],
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![self.id, self.version];
        for c in &self.components {
            match &c.extended {
                None => v.extend_from_slice(&[c.key_type, c.length as u8]),
                Some((usage, access)) => {
                    v.extend_from_slice(&[key_type::EXTENDED, c.key_type]);
                    v.extend_from_slice(&c.length.to_be_bytes());
                    v.push(usage.len() as u8);
                    v.extend_from_slice(usage);
                    v.push(access.len() as u8);
                    v.extend_from_slice(access);
                }
            }
        }
        tlv::build(tag::KEY_INFORMATION, &v)
    }
}

impl KeyInformation {
    pub fn to_bytes(&self) -> Vec<u8> {
        let body: Vec<u8> = self.keys.iter().flat_map(KeyInfo::to_bytes).collect();
        tlv::build(tag::KEY_INFORMATION_TEMPLATE, &body)
    }

    /// Children other than `C0` are skipped; a key's usage and access bytes may be cut
    /// short at the end of an extended component (read as empty).
    pub fn parse(bytes: &[u8]) -> Result<Self, GpDataError> {
        let what = "key information template (GET DATA E0)";
        let body = der::read_expected(bytes, tag::KEY_INFORMATION_TEMPLATE).map_err(bad(what))?;
        let mut keys = Vec::new();
        for k in der::read_all(body).map_err(bad(what))? {
            if k.tag != tag::KEY_INFORMATION {
                continue;
            }
            let [id, version, rest @ ..] = k.value else {
                return Err(invalid(what, "C0 shorter than 2 bytes"));
            };
            let mut rest: &[u8] = rest;
            let mut components = Vec::new();
            while let Some((&t, tail)) = rest.split_first() {
                if t == key_type::EXTENDED {
                    let [kt, h, l, tail @ ..] = tail else {
                        return Err(invalid(what, "truncated extended key component"));
                    };
                    let (usage, tail) = counted(tail);
                    let (access, tail) = counted(tail);
                    components.push(KeyComponentInfo {
                        key_type: *kt,
                        length: u16::from_be_bytes([*h, *l]),
                        extended: Some((usage.to_vec(), access.to_vec())),
                    });
                    rest = tail;
                } else {
                    let (&len, tail) = tail
                        .split_first()
                        .ok_or_else(|| invalid(what, "key type without a length"))?;
                    components.push(KeyComponentInfo {
                        key_type: t,
                        length: u16::from(len),
                        extended: None,
                    });
                    rest = tail;
                }
            }
            keys.push(KeyInfo {
                id: *id,
                version: *version,
                components,
            });
        }
        Ok(KeyInformation { keys })
    }
}

/// `<n> <n bytes>` from the front of `input`, as much of it as there is.
fn counted(input: &[u8]) -> (&[u8], &[u8]) {
    match input.split_first() {
        None => (&[], &[]),
        Some((&n, tail)) => tail.split_at(usize::from(n).min(tail.len())),
    }
}

// ---------------------------------------------------------------------------------------
// GET STATUS

/// One entry of a GET STATUS answer in tag format (Card Spec v2.3.1 §11.4.3.1, Table
/// 11-36): `E3 { 4F <AID>, 9F70 <life cycle state>, C5 <privileges>, C4 <load file AID>,
/// CC <associated security domain AID>, 84 <module AID>… }`, the optional fields written
/// only when present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryEntry {
    pub aid: Vec<u8>,
    /// §5.1.1 (ISD) or §5.3.1 (applications): see [`super::life_cycle`].
    pub life_cycle: u8,
    /// Three bytes (§6.6.1); absent for load files.
    pub privileges: Option<Vec<u8>>,
    /// `C4`: for an application, the executable load file it was installed from.
    pub load_file: Option<Vec<u8>>,
    /// `CC`: the associated security domain's AID.
    pub associated_sd: Option<Vec<u8>>,
    /// `84`: the executable module AIDs of a load file (GET STATUS P1 `10`).
    pub modules: Vec<Vec<u8>>,
}

impl RegistryEntry {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = tlv::build(tag::AID, &self.aid);
        tlv::push(&mut e, tag::LIFE_CYCLE_STATE, &[self.life_cycle]);
        for (t, v) in [
            (tag::PRIVILEGES, &self.privileges),
            (tag::LOAD_FILE_AID, &self.load_file),
            (tag::ASSOCIATED_SD, &self.associated_sd),
        ] {
            if let Some(v) = v {
                tlv::push(&mut e, t, v);
            }
        }
        for m in &self.modules {
            tlv::push(&mut e, tag::MODULE_AID, m);
        }
        tlv::build(tag::REGISTRY_ENTRY, &e)
    }

    /// Every entry of one answer. Each must be `E3` with an AID and a life cycle state;
    /// other fields (`CE`, `CF`, … of other cards) are skipped.
    pub fn parse_all(data: &[u8]) -> Result<Vec<Self>, GpDataError> {
        let what = "GET STATUS answer";
        let mut out = Vec::new();
        for e in der::read_all(data).map_err(bad(what))? {
            if e.tag != tag::REGISTRY_ENTRY {
                return Err(invalid(
                    what,
                    format!("entry with tag {:X}, E3 expected", e.tag),
                ));
            }
            let fields = der::read_all(e.value).map_err(bad(what))?;
            let aid = der::find(&fields, tag::AID)
                .ok_or_else(|| invalid(what, "entry without AID (4F)"))?;
            let Some([life_cycle, ..]) = der::find(&fields, tag::LIFE_CYCLE_STATE) else {
                return Err(invalid(what, "entry without life cycle state (9F70)"));
            };
            let optional = |t| der::find(&fields, t).map(<[u8]>::to_vec);
            out.push(RegistryEntry {
                aid: aid.to_vec(),
                life_cycle: *life_cycle,
                privileges: optional(tag::PRIVILEGES),
                load_file: optional(tag::LOAD_FILE_AID),
                associated_sd: optional(tag::ASSOCIATED_SD),
                modules: fields
                    .iter()
                    .filter(|f| f.tag == tag::MODULE_AID)
                    .map(|f| f.value.to_vec())
                    .collect(),
            });
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------
// PUT KEY

/// What the card answers to PUT KEY (Card Spec v2.3.1 §11.8.3): the new KVN and the key
/// check value of each key, in the order sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutKeyConfirmation {
    pub kvn: u8,
    pub kcvs: Vec<[u8; 3]>,
}

impl PutKeyConfirmation {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![self.kvn];
        for k in &self.kcvs {
            v.extend_from_slice(k);
        }
        v
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, GpDataError> {
        let what = "PUT KEY confirmation";
        let (&kvn, rest) = bytes.split_first().ok_or_else(|| invalid(what, "empty"))?;
        if rest.len() % 3 != 0 {
            return Err(invalid(
                what,
                format!("{} bytes of check values, not a multiple of 3", rest.len()),
            ));
        }
        let kcvs = rest.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        Ok(PutKeyConfirmation { kvn, kcvs })
    }
}

// ---------------------------------------------------------------------------------------
// STORE DATA

/// One Data Grouping Identifier of STORE DATA in DGI format (Card Spec v2.3.1 §11.11.2.2):
/// DGI (2 bytes), length (1 byte below 255, else `FF` and 2 bytes), value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dgi {
    pub dgi: u16,
    pub value: Vec<u8>,
}

impl Dgi {
    /// Values longer than 65 535 bytes cannot be encoded; the caller refuses them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.dgi.to_be_bytes().to_vec();
        match u8::try_from(self.value.len()) {
            Ok(l) if l < 0xFF => out.push(l),
            _ => {
                out.push(0xFF);
                out.extend_from_slice(&(self.value.len() as u16).to_be_bytes());
            }
        }
        out.extend_from_slice(&self.value);
        out
    }

    /// Every DGI of the data, borrowed; `6700` when one is truncated.
    pub fn read_all(mut rest: &[u8]) -> Result<Vec<(u16, &[u8])>, Status> {
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (dgi, len, tail) = match rest {
                [a, b, 0xFF, h, l, tail @ ..] => (
                    u16::from_be_bytes([*a, *b]),
                    usize::from(u16::from_be_bytes([*h, *l])),
                    tail,
                ),
                [a, b, n, tail @ ..] => (u16::from_be_bytes([*a, *b]), usize::from(*n), tail),
                _ => return Err(Status::WrongLength),
            };
            let (value, tail) = tail.split_at_checked(len).ok_or(Status::WrongLength)?;
            out.push((dgi, value));
            rest = tail;
        }
        Ok(out)
    }
}
