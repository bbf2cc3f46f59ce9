//! Personalization profiles: the TOML a user writes, turned into a fresh card state.

use crate::pin::hash_secret;
use crate::state::{
    Access, AppletLimits, CardState, Container, DataObject, FileBody, FileNode, GpState, KeySet,
    NotifyConfig, PinRecord, Policy, PukRecord,
};
use apdu_specs::es10::{Aid, Iccid, NotificationEvent};
use serde::Deserialize;
use thiserror::Error;

/// The built-in default profile, printed by `card-emulator profile`.
pub const DEFAULT_PROFILE: &str = include_str!("default-profile.toml");

/// The EID of cards whose profile names none (a test EID, 32 digits).
pub const DEFAULT_EID: &str = "89049032123451234512345678901235";

/// Default historical bytes: compact TLV with card capabilities and the card's name.
pub const DEFAULT_HISTORICAL_BYTES: &[u8] = &[
    0x80, 0x73, 0xC0, 0x00, 0xCB, 0x57, b'R', b'u', b's', b't', b'V', b'S', b'E',
];

#[derive(Debug, Error)]
pub enum ProfileError {
    #[error("profile is not valid TOML for a card: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("profile: {0}")]
    Invalid(String),
    #[error("the OS random generator failed: {0}")]
    Random(#[from] getrandom::Error),
    #[error("cannot make the eUICC's SGP.22 certificate chain: {0}")]
    Pki(#[from] crate::pki::PkiError),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, ProfileError> {
    Err(ProfileError::Invalid(msg.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    label: String,
    historical_bytes: Option<String>,
    /// The protocols the ATR offers: ["T=0"] (default), ["T=1"] or ["T=0", "T=1"].
    protocols: Option<Vec<String>>,
    #[serde(default)]
    pin: Vec<PinSpec>,
    #[serde(default)]
    data_object: Vec<DataObjectSpec>,
    #[serde(default)]
    file: Vec<FileSpec>,
    /// eUICC identifier, 32 decimal digits. Default: a fixed test EID.
    eid: Option<String>,
    #[serde(default)]
    container: Vec<ContainerSpec>,
    #[serde(default)]
    policy: Policy,
    /// GlobalPlatform key sets of the card manager. Default: KVN 30 (SCP03) and KVN 20
    /// (SCP02) with the test key 40..4F.
    #[serde(default)]
    key_set: Vec<KeySetSpec>,
    /// What loaded WebAssembly applets may use (apdu-specs/docs/applets.md, "Limits").
    #[serde(default)]
    applets: AppletLimits,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeySetSpec {
    kvn: u8,
    /// 2 (3DES, 16-byte keys) or 3 (AES-128/192/256).
    scp: u8,
    /// One key for ENC, MAC and DEK, or give enc, mac and dek.
    key: Option<String>,
    enc: Option<String>,
    mac: Option<String>,
    dek: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerSpec {
    /// 19 or 20 decimal digits.
    iccid: String,
    /// ISD-P AID (hex). Default: A0000005591010FFFFFFFF89000010 00 + container index.
    isdp_aid: Option<String>,
    #[serde(default)]
    nickname: String,
    #[serde(default)]
    service_provider: String,
    #[serde(default)]
    profile_name: String,
    /// test | provisioning | operational
    #[serde(default = "default_class")]
    class: String,
    #[serde(default)]
    enabled: bool,
    /// Operations that make an SGP.22 notification (install, enable, disable, delete).
    /// Default: enable, disable and delete.
    notify: Option<Vec<String>>,
    /// Where the LPA forwards this container's notifications (an FQDN). Default: the GSMA
    /// test SM-DP+ of SGP.26.
    notification_address: Option<String>,
    /// The container's application DF: FID and DF name (AID; may repeat in other containers).
    application_fid: String,
    application_name: String,
    #[serde(default)]
    pin: Vec<PinSpec>,
    #[serde(default)]
    file: Vec<FileSpec>,
}

fn default_class() -> String {
    "operational".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinSpec {
    reference: u8,
    value: String,
    #[serde(default = "default_min")]
    min_length: u8,
    #[serde(default = "default_max")]
    max_length: u8,
    #[serde(default = "default_tries")]
    max_tries: u8,
    puk: Option<String>,
    #[serde(default = "default_puk_tries")]
    puk_max_tries: u8,
}

fn default_min() -> u8 {
    4
}
fn default_max() -> u8 {
    8
}
fn default_tries() -> u8 {
    3
}
fn default_puk_tries() -> u8 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataObjectSpec {
    tag: u16,
    hex: Option<String>,
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    sfi: Option<u8>,
    size: Option<usize>,
    hex: Option<String>,
    text: Option<String>,
    record_length: Option<u8>,
    max_records: Option<u8>,
    #[serde(default)]
    records: Vec<String>,
    read: Option<String>,
    update: Option<String>,
}

fn parse_hex(what: &str, text: &str) -> Result<Vec<u8>, ProfileError> {
    apdu_specs::hexfmt::parse(text).map_err(|e| ProfileError::Invalid(format!("{what}: {e}")))
}

fn parse_access(
    text: Option<&str>,
    first_pin: Option<u8>,
    what: &str,
) -> Result<Access, ProfileError> {
    match text.unwrap_or("always") {
        "always" => Ok(Access::Always),
        "never" => Ok(Access::Never),
        "pin" => match first_pin {
            Some(r) => Ok(Access::Pin(r)),
            None => invalid(format!(
                "{what}: access \"pin\" but the profile defines no PIN"
            )),
        },
        other => match other
            .strip_prefix("pin:")
            .map(|h| u8::from_str_radix(h, 16))
        {
            Some(Ok(r)) => Ok(Access::Pin(r)),
            _ => invalid(format!(
                "{what}: access {other:?} is not always, never, pin or pin:XX"
            )),
        },
    }
}

fn build_pins(specs: &[PinSpec]) -> Result<Vec<PinRecord>, ProfileError> {
    let mut pins: Vec<PinRecord> = Vec::new();
    for s in specs {
        let what = format!("PIN {:02X}", s.reference);
        let len = s.value.len();
        if s.min_length == 0 || s.min_length > s.max_length || s.max_length > 64 {
            return invalid(format!("{what}: need 1 <= min_length <= max_length <= 64"));
        }
        if len < s.min_length as usize || len > s.max_length as usize {
            return invalid(format!(
                "{what}: value length {len} is outside min_length..max_length"
            ));
        }
        if !(1..=15).contains(&s.max_tries) || !(1..=15).contains(&s.puk_max_tries) {
            return invalid(format!(
                "{what}: retry limits must be 1..15 (63Cx shows one hex digit)"
            ));
        }
        if pins.iter().any(|q| q.reference == s.reference) {
            return invalid(format!("{what}: reference defined twice"));
        }
        pins.push(PinRecord {
            reference: s.reference,
            min_length: s.min_length,
            max_length: s.max_length,
            value: hash_secret(s.value.as_bytes())?,
            max_tries: s.max_tries,
            tries_left: s.max_tries,
            puk: match &s.puk {
                Some(puk) if !puk.is_empty() && puk.len() <= 64 => Some(PukRecord {
                    value: hash_secret(puk.as_bytes())?,
                    max_tries: s.puk_max_tries,
                    tries_left: s.puk_max_tries,
                }),
                Some(_) => return invalid(format!("{what}: PUK must be 1..64 bytes")),
                None => None,
            },
        });
    }
    Ok(pins)
}

/// Build a fresh card state from profile text.
pub fn build(text: &str) -> Result<CardState, ProfileError> {
    let p: Profile = toml::from_str(text)?;
    let historical_bytes = match &p.historical_bytes {
        Some(h) => parse_hex("historical_bytes", h)?,
        None => DEFAULT_HISTORICAL_BYTES.to_vec(),
    };
    if historical_bytes.len() > 15 {
        return invalid("historical_bytes: at most 15 bytes fit in an ATR");
    }
    let atr_protocols = match p.protocols.as_deref() {
        None => vec![0],
        Some(names) => {
            let names: Vec<&str> = names.iter().map(|n| n.trim()).collect();
            match names.as_slice() {
                ["T=0"] => vec![0],
                ["T=1"] => vec![1],
                ["T=0", "T=1"] => vec![0, 1],
                _ => {
                    return invalid(format!(
                        "protocols: {names:?} is not one of [\"T=0\"] (the default, as eUICCs), \
                         [\"T=1\"] or [\"T=0\", \"T=1\"]"
                    ))
                }
            }
        }
    };
    let pins = build_pins(&p.pin)?;
    let first_pin = pins.first().map(|p| p.reference);
    let mut data_objects = Vec::new();
    for d in &p.data_object {
        let value = match (&d.hex, &d.text) {
            (Some(h), None) => parse_hex(&format!("data object {:04X}", d.tag), h)?,
            (None, Some(t)) => t.as_bytes().to_vec(),
            _ => {
                return invalid(format!(
                    "data object {:04X}: give exactly one of hex, text",
                    d.tag
                ))
            }
        };
        data_objects.push(DataObject { tag: d.tag, value });
    }
    let root = FileNode {
        fid: apdu_specs::ins::fid::MF,
        parent: None,
        name: None,
        sfi: None,
        read: Access::Always,
        update: Access::Always,
        body: FileBody::Df { children: vec![] },
    };
    let files = build_tree(root, &p.file, first_pin)?;
    let mut containers = Vec::new();
    for (i, c) in p.container.iter().enumerate() {
        let what = format!("container {i}");
        let pins = build_pins(&c.pin)?;
        let fid = u16::from_str_radix(&c.application_fid, 16)
            .or_else(|_| invalid(format!("{what}: application_fid must be 4 hex digits")))?;
        let name = parse_hex(&what, &c.application_name)?;
        if name.is_empty() || name.len() > 16 {
            return invalid(format!("{what}: application_name must be 1..16 bytes"));
        }
        let root = FileNode {
            fid,
            parent: None,
            name: Some(name),
            sfi: None,
            read: Access::Always,
            update: Access::Always,
            body: FileBody::Df { children: vec![] },
        };
        let first = pins.first().map(|p| p.reference).or(first_pin);
        let files = build_tree(root, &c.file, first)?;
        let profile_class = match c.class.as_str() {
            "test" => 0,
            "provisioning" => 1,
            "operational" => 2,
            other => {
                return invalid(format!(
                    "{what}: class {other:?} is not test, provisioning or operational"
                ))
            }
        };
        let isdp_aid = match &c.isdp_aid {
            Some(h) => parse_hex(&what, h)?,
            None => u8::try_from(i)
                .ok()
                .and_then(Aid::isdp)
                .ok_or_else(|| ProfileError::Invalid(format!("{what}: too many containers")))?
                .as_bytes()
                .to_vec(),
        };
        containers.push(Container {
            iccid: Iccid::from_digits(&c.iccid)
                .map_err(|e| ProfileError::Invalid(format!("{what}: ICCID {:?}: {e}", c.iccid)))?
                .as_bytes()
                .to_vec(),
            isdp_aid,
            nickname: c.nickname.clone(),
            service_provider: c.service_provider.clone(),
            profile_name: c.profile_name.clone(),
            profile_class,
            enabled: c.enabled,
            files,
            pins,
            trust_anchors: Vec::new(),
            auth: Default::default(),
            notify: build_notify(&what, c)?,
            load_files: Vec::new(),
            applets: Vec::new(),
        });
    }
    let eid = match &p.eid {
        Some(e) if e.len() == 32 && e.bytes().all(|b| b.is_ascii_digit()) => parse_hex("eid", e)?,
        Some(_) => return invalid("eid must be 32 decimal digits"),
        None => parse_hex("eid", DEFAULT_EID)?,
    };
    // Every card gets its own key and test chain (SGP.22 notifications are signed by it):
    // a fixed one shared by all cards would make their signatures interchangeable.
    let euicc = Some(crate::pki::EuiccIdentity::generate(&eid)?);
    let mut state = CardState {
        label: p.label,
        historical_bytes,
        atr_protocols,
        euicc,
        files,
        pins,
        data_objects,
        containers,
        eid,
        policy: p.policy,
        gp: build_gp(&p.key_set)?,
        time_floor: 0,
        notifications: Default::default(),
        default_dp_address: String::new(),
        applet_limits: p.applets,
    };
    state.sync_ef_iccid();
    state.validate().map_err(ProfileError::Invalid)?;
    Ok(state)
}

/// The notification address of containers whose profile names none.
pub const DEFAULT_NOTIFICATION_ADDRESS: &str = "testsmdpplus1.example.com";

fn build_notify(what: &str, c: &ContainerSpec) -> Result<NotifyConfig, ProfileError> {
    let names: Vec<&str> = match &c.notify {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => vec!["enable", "disable", "delete"],
    };
    let mut events = 0u8;
    for name in names {
        let Some(e) = NotificationEvent::from_name(name) else {
            return invalid(format!(
                "{what}: notify {name:?} is not install, enable, disable or delete"
            ));
        };
        events |= 1 << e.bit();
    }
    let address = c
        .notification_address
        .clone()
        .unwrap_or_else(|| DEFAULT_NOTIFICATION_ADDRESS.to_owned());
    if address.is_empty() || address.len() > 255 {
        return invalid(format!(
            "{what}: notification_address must be an FQDN of 1 to 255 characters"
        ));
    }
    Ok(NotifyConfig { events, address })
}

fn build_gp(specs: &[KeySetSpec]) -> Result<GpState, ProfileError> {
    let mut gp = GpState::default();
    if specs.is_empty() {
        return Ok(gp);
    }
    gp.key_sets.clear();
    for k in specs {
        let what = format!("key set {:02X}", k.kvn);
        let (enc, mac, dek) = match (&k.key, &k.enc, &k.mac, &k.dek) {
            (Some(one), None, None, None) => {
                let v = parse_hex(&what, one)?;
                (v.clone(), v.clone(), v)
            }
            (None, Some(e), Some(m), Some(d)) => (
                parse_hex(&what, e)?,
                parse_hex(&what, m)?,
                parse_hex(&what, d)?,
            ),
            _ => return invalid(format!("{what}: give either key, or enc, mac and dek")),
        };
        let lengths_ok = match k.scp {
            2 => [&enc, &mac, &dek].iter().all(|x| x.len() == 16),
            3 => [&enc, &mac, &dek]
                .iter()
                .all(|x| matches!(x.len(), 16 | 24 | 32)),
            _ => return invalid(format!("{what}: scp must be 2 or 3")),
        };
        if !lengths_ok {
            return invalid(format!(
                "{what}: SCP02 keys have 16 bytes, SCP03 keys 16, 24 or 32"
            ));
        }
        if gp.key_sets.iter().any(|s| s.kvn == k.kvn) {
            return invalid(format!("{what}: defined twice"));
        }
        gp.key_sets.push(KeySet {
            kvn: k.kvn,
            scp: k.scp,
            enc,
            mac,
            dek,
        });
    }
    Ok(gp)
}

/// Build a file tree under `root` from the profile's `[[file]]` entries (paths relative to it).
fn build_tree(
    root: FileNode,
    specs: &[FileSpec],
    first_pin: Option<u8>,
) -> Result<Vec<FileNode>, ProfileError> {
    let mut files = vec![root];
    for f in specs {
        let what = format!("file {}", f.path);
        let fids = f
            .path
            .split('/')
            .map(|c| u16::from_str_radix(c.trim(), 16))
            .collect::<Result<Vec<u16>, _>>()
            .or_else(|_| invalid(format!("{what}: path must be FIDs in hex separated by /")))?;
        let Some((&fid, parents)) = fids.split_last() else {
            return invalid(format!("{what}: empty path"));
        };
        if fid == apdu_specs::ins::fid::MF || fid == 0xFFFF || fid == 0x3FFF {
            return invalid(format!("{what}: FID {fid:04X} is reserved"));
        }
        let mut parent = 0usize;
        for pf in parents {
            parent = child_by_fid(&files, parent, *pf)
                .filter(|c| files[*c].is_df())
                .ok_or_else(|| {
                    ProfileError::Invalid(format!(
                        "{what}: parent DF {pf:04X} not defined before it"
                    ))
                })?;
        }
        if child_by_fid(&files, parent, fid).is_some() {
            return invalid(format!("{what}: defined twice"));
        }
        if let Some(s) = f.sfi {
            if !(1..=30).contains(&s) {
                return invalid(format!("{what}: sfi must be 1..30"));
            }
        }
        let content = match (&f.hex, &f.text) {
            (Some(h), None) => Some(parse_hex(&what, h)?),
            (None, Some(t)) => Some(t.as_bytes().to_vec()),
            (None, None) => None,
            _ => return invalid(format!("{what}: give at most one of hex, text")),
        };
        let body = match f.kind.as_str() {
            "df" => FileBody::Df { children: vec![] },
            "transparent" => {
                let mut data = content.unwrap_or_default();
                let size = f.size.unwrap_or(data.len());
                if data.len() > size || size > 0x10000 {
                    return invalid(format!(
                        "{what}: content longer than size, or size above 65536"
                    ));
                }
                data.resize(size, 0);
                FileBody::Transparent { data }
            }
            kind @ ("linear-fixed" | "cyclic") => {
                let (Some(record_length), Some(max_records)) = (f.record_length, f.max_records)
                else {
                    return invalid(format!(
                        "{what}: record files need record_length and max_records"
                    ));
                };
                if record_length == 0 || max_records == 0 {
                    return invalid(format!(
                        "{what}: record_length and max_records must be at least 1"
                    ));
                }
                let records = f
                    .records
                    .iter()
                    .map(|r| parse_hex(&what, r))
                    .collect::<Result<Vec<_>, _>>()?;
                if records.len() > max_records as usize
                    || records.iter().any(|r| r.len() != record_length as usize)
                {
                    return invalid(format!(
                        "{what}: each record must be record_length bytes, at most max_records"
                    ));
                }
                FileBody::Records {
                    cyclic: kind == "cyclic",
                    record_length,
                    max_records,
                    records,
                }
            }
            other => return invalid(format!("{what}: unknown type {other:?}")),
        };
        let name = f.name.as_deref().map(|n| parse_hex(&what, n)).transpose()?;
        if name.as_ref().is_some_and(|n| n.is_empty() || n.len() > 16) {
            return invalid(format!("{what}: a DF name has 1..16 bytes"));
        }
        let id = files.len();
        files.push(FileNode {
            fid,
            parent: Some(parent),
            name,
            sfi: f.sfi,
            read: parse_access(f.read.as_deref(), first_pin, &what)?,
            update: parse_access(f.update.as_deref(), first_pin, &what)?,
            body,
        });
        if let FileBody::Df { children } = &mut files[parent].body {
            children.push(id);
        }
    }
    Ok(files)
}

fn child_by_fid(files: &[FileNode], df: usize, fid: u16) -> Option<usize> {
    match &files[df].body {
        FileBody::Df { children } => children.iter().copied().find(|c| files[*c].fid == fid),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_builds() {
        let s = build(DEFAULT_PROFILE).unwrap();
        assert_eq!(s.files[0].fid, 0x3F00);
        assert!(s.files.iter().any(|f| f.fid == 0x5006));
        assert_eq!(s.pins[0].tries_left, 3);
    }

    #[test]
    fn errors_name_the_problem() {
        let bad = "label = \"x\"\n[[file]]\npath = \"5000/5001\"\ntype = \"transparent\"\n";
        let e = build(bad).unwrap_err().to_string();
        assert!(e.contains("parent DF 5000"), "{e}");
        let bad =
            "label = \"x\"\n[[file]]\npath = \"1000\"\ntype = \"transparent\"\nread = \"pin\"\n";
        let e = build(bad).unwrap_err().to_string();
        assert!(e.contains("defines no PIN"), "{e}");
    }

    #[test]
    fn protocols_default_to_t0_and_the_profile_chooses_them() {
        assert_eq!(build(DEFAULT_PROFILE).unwrap().atr_protocols, [0]);
        let with = |p: &str| build(&format!("label = \"x\"\nprotocols = {p}\n"));
        assert_eq!(with(r#"["T=0", "T=1"]"#).unwrap().atr_protocols, [0, 1]);
        assert_eq!(with(r#"["T=1"]"#).unwrap().atr_protocols, [1]);
        for bad in [
            r#"[]"#,
            r#"["T=1", "T=0"]"#,
            r#"["T=2"]"#,
            r#"["T=0", "T=0"]"#,
        ] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("protocols:"), "{bad}: {e}");
        }
        // The default is not written into the state file: files stay as they were.
        let text = serde_json::to_string(&build(DEFAULT_PROFILE).unwrap()).unwrap();
        assert!(!text.contains("atr_protocols"));
        let both = serde_json::to_string(&with(r#"["T=0", "T=1"]"#).unwrap()).unwrap();
        assert!(both.contains("\"atr_protocols\":[0,1]"));
    }
}
