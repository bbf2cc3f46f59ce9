//! The card's persistent state: one serde struct, versioned by the store that writes it.
//!
//! Volatile state (selection, security status, pending responses) lives in `channel.rs`
//! and is never persisted.

use serde::{Deserialize, Serialize};

/// Index of a file in [`CardState::files`]; index 0 is always the MF.
pub type FileId = usize;

/// Everything the card remembers across power cycles and restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardState {
    /// Human name of the card, shown by `inspect`.
    pub label: String,
    /// ATR historical bytes (at most 15).
    #[serde(with = "hex_bytes")]
    pub historical_bytes: Vec<u8>,
    /// The transmission protocols the ATR offers, in order (the first is the default).
    /// T=0 alone unless the profile says otherwise: real eUICCs offer T=0 only, and a card
    /// that also offers T=1 stays in T=1 after a tool negotiated it, which T=0-only LPAs
    /// (lpac) cannot connect to. Set at personalization; absent from the file when T=0.
    #[serde(default = "t0_only", skip_serializing_if = "is_t0_only")]
    pub atr_protocols: Vec<u8>,
    /// The eUICC's SGP.22 identity: its signing key and the CI -> EUM -> eUICC chain. Made at
    /// personalization (`profile::build`); absent in cards created before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) euicc: Option<crate::pki::EuiccIdentity>,
    /// The file tree as an arena; `files[0]` is the MF, parents before children.
    pub files: Vec<FileNode>,
    pub pins: Vec<PinRecord>,
    /// Card-level data objects answered by GET DATA, by tag.
    pub data_objects: Vec<DataObject>,
    /// The enhanced containers; at most one is enabled. Private: a running
    /// card reaches them only through the virtual machine (`vm`).
    #[serde(default)]
    pub(crate) containers: Vec<Container>,
    /// eUICC identifier (16 bytes), answered by ES10c GetEuiccData.
    #[serde(default, with = "hex_bytes")]
    pub eid: Vec<u8>,
    #[serde(default)]
    pub policy: Policy,
    /// GlobalPlatform key sets and counters of the card manager.
    #[serde(default)]
    pub gp: GpState,
    /// The card's trusted time floor (Unix seconds): the latest server time it has accepted
    /// in a signed R'. Expiry is checked against the later of this and the host clock, so
    /// rolling the host clock back revives nothing. Only moves up.
    #[serde(default)]
    pub time_floor: u64,
    /// SGP.22 notifications waiting for the LPA, and their sequence counter.
    #[serde(default, skip_serializing_if = "Notifications::is_empty")]
    pub notifications: Notifications,
    /// The default SM-DP+ address (ES10a/ES10b SetDefaultDpAddress); empty when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_dp_address: String,
    /// What loaded applets may use (fuel, memory, sizes). Fixed at personalization.
    #[serde(default, skip_serializing_if = "AppletLimits::is_default")]
    pub applet_limits: AppletLimits,
}

/// The card's pending SGP.22 notifications (SGP.22 §3.5) and what numbers them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifications {
    /// The last sequence number given. Only moves up: a number is never given twice, even
    /// after its notification was removed, so an SM-DP+ never mistakes one for another.
    pub last_seq: u32,
    /// Oldest first. At most [`Notifications::CAPACITY`]: an operation whose notification
    /// would not fit is refused (undefinedError), so none an SM-DP+ has not received is
    /// ever dropped; the LPA removes delivered ones (RemoveNotificationFromList).
    pub pending: Vec<Notification>,
}

impl Notifications {
    /// How many notifications the card keeps.
    pub const CAPACITY: usize = 64;

    pub fn is_empty(&self) -> bool {
        self.last_seq == 0 && self.pending.is_empty()
    }
}

/// One pending notification: its metadata and the eUICC's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub seq: u32,
    /// SGP.22 NotificationEvent bit: 0 install, 1 enable, 2 disable, 3 delete.
    pub event: u8,
    /// Where the LPA forwards it (an FQDN).
    pub address: String,
    /// The profile's ICCID (10 bytes, SGP.22 coding).
    #[serde(with = "hex_bytes")]
    pub iccid: Vec<u8>,
    /// The eUICC's signature (r || s) over the metadata's DER; empty on a card without an
    /// eUICC identity, whose notifications can be listed but not retrieved.
    #[serde(with = "hex_bytes")]
    pub signature: Vec<u8>,
}

/// The card manager's GlobalPlatform secrets and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpState {
    pub key_sets: Vec<KeySet>,
    /// SCP03 sequence counter (3 bytes), incremented at every INITIALIZE UPDATE.
    pub scp03_counter: u32,
    /// SCP02 sequence counter, incremented after every opened channel.
    pub scp02_counter: u16,
    /// Failed authentications (wrong host cryptogram, wrong C-MAC), ever.
    pub auth_failures: u32,
}

/// The GlobalPlatform test key every tool knows (GPPro, pySim): 40 41 ... 4F.
pub const GP_DEFAULT_KEY: [u8; 16] = [
    0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F,
];

impl Default for GpState {
    /// SCP03 key set KVN 30 and SCP02 key set KVN 20, both with the default test key.
    fn default() -> GpState {
        let k = GP_DEFAULT_KEY.to_vec();
        GpState {
            key_sets: vec![
                KeySet {
                    kvn: 0x30,
                    scp: 3,
                    enc: k.clone(),
                    mac: k.clone(),
                    dek: k.clone(),
                },
                KeySet {
                    kvn: 0x20,
                    scp: 2,
                    enc: k.clone(),
                    mac: k.clone(),
                    dek: k,
                },
            ],
            scp03_counter: 0,
            scp02_counter: 0,
            auth_failures: 0,
        }
    }
}

/// One key set: ENC, MAC and DEK of one key version, for SCP02 (3DES) or SCP03 (AES).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySet {
    pub kvn: u8,
    /// 2 or 3.
    pub scp: u8,
    #[serde(with = "hex_bytes")]
    pub enc: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub mac: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub dek: Vec<u8>,
}

impl KeySet {
    pub fn is_default(&self) -> bool {
        [&self.enc, &self.mac, &self.dek]
            .iter()
            .all(|k| k.as_slice() == GP_DEFAULT_KEY)
    }

    /// Whether any of ENC, MAC and DEK is a publicly known key
    /// ([`secure_channel::well_known_key`]: the GP test key 40..4F and a few more): then
    /// anyone may open a secure channel with this set (or read what is sent under its DEK).
    pub fn is_publicly_known(&self) -> bool {
        [&self.enc, &self.mac, &self.dek]
            .iter()
            .any(|k| secure_channel::well_known_key(k).is_some())
    }
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeySet(KVN {:02X}, SCP0{}, keys redacted)",
            self.kvn, self.scp
        )
    }
}

/// A server key a container trusts for one service (installed in admin mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustAnchor {
    pub service: String,
    #[serde(with = "hex_bytes")]
    pub public_key: Vec<u8>,
}

/// What the card manager allows, and under which conditions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// ES10c management (enable, disable, delete, nickname, list) only inside a
    /// GlobalPlatform secure channel. Off by default, like an eUICC serving its LPA.
    #[serde(default)]
    pub es10_requires_secure_channel: bool,
}

/// An enhanced container: an eUICC profile with its own file tree and PINs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// ICCID as 10 BCD bytes with swapped nibbles (SGP.22 coding).
    #[serde(with = "hex_bytes")]
    pub iccid: Vec<u8>,
    /// AID of the container's security domain (ISD-P).
    #[serde(with = "hex_bytes")]
    pub isdp_aid: Vec<u8>,
    pub nickname: String,
    pub service_provider: String,
    pub profile_name: String,
    /// SGP.22 profileClass: 0 test, 1 provisioning, 2 operational.
    pub profile_class: u8,
    /// Enabled (SGP.22's word; the seed document says "enabled"); at most one container
    /// has it.
    pub enabled: bool,
    /// The container's own tree: `files[0]` is its application DF (parent None).
    pub files: Vec<FileNode>,
    pub pins: Vec<PinRecord>,
    /// Server keys this container trusts, per service (installed in admin mode).
    #[serde(default)]
    pub trust_anchors: Vec<TrustAnchor>,
    /// The authentication applet's keys, certificate and connection state.
    #[serde(default)]
    pub auth: AuthState,
    /// Which operations on this container make a notification, and where it goes (the
    /// profile's notificationConfigurationInfo, SGP.22 §2.4.4). Fixed at personalization.
    #[serde(default, skip_serializing_if = "NotifyConfig::is_empty")]
    pub notify: NotifyConfig,
    /// WebAssembly load files (GlobalPlatform executable load files) loaded into this
    /// container over GlobalPlatform (apdu-specs/docs/applets.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_files: Vec<LoadFile>,
    /// Applet instances installed from them; they answer SELECT only while the container
    /// is enabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applets: Vec<AppletInstance>,
}

/// A load file: one validated WebAssembly module, by its AID (the package).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadFile {
    #[serde(with = "hex_bytes")]
    pub aid: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub module: Vec<u8>,
}

impl std::fmt::Debug for LoadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LoadFile({}, {} bytes)",
            apdu_specs::hexfmt::upper(&self.aid),
            self.module.len()
        )
    }
}

/// An applet instance: its AID, where it comes from, and what it keeps across power cycles.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppletInstance {
    #[serde(with = "hex_bytes")]
    pub aid: Vec<u8>,
    /// The load file it was installed from (in the same container).
    #[serde(with = "hex_bytes")]
    pub load_file: Vec<u8>,
    /// GlobalPlatform privileges (GPC §6.6.1) as given at INSTALL.
    #[serde(with = "hex_bytes")]
    pub privileges: Vec<u8>,
    /// Its persistent storage, sized at INSTALL.
    #[serde(with = "hex_bytes")]
    pub storage: Vec<u8>,
    /// The instance's P-256 private key (32 bytes), made at INSTALL; the applet uses it
    /// through host functions and no command answers it.
    #[serde(with = "hex_bytes")]
    pub key: Vec<u8>,
}

impl std::fmt::Debug for AppletInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AppletInstance({} from {}, {} bytes of storage, key redacted)",
            apdu_specs::hexfmt::upper(&self.aid),
            apdu_specs::hexfmt::upper(&self.load_file),
            self.storage.len()
        )
    }
}

/// What a loaded applet may use: the profile's `[applets]` limits
/// (apdu-specs/docs/applets.md, "Limits").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppletLimits {
    /// Fuel per call of an export (about one unit per instruction).
    pub fuel: u64,
    /// Most linear memory an instance may have, in bytes.
    pub memory_bytes: u32,
    /// Largest load file, in bytes.
    pub module_bytes: u32,
    /// Largest storage an INSTALL may ask for, in bytes.
    pub storage_bytes: u32,
    /// Deepest call stack.
    pub max_recursion: u32,
    /// Load files plus instances per container.
    pub max_applets: u32,
}

impl Default for AppletLimits {
    fn default() -> AppletLimits {
        AppletLimits {
            fuel: 10_000_000,
            memory_bytes: 1 << 20,
            module_bytes: 65_536,
            storage_bytes: 32_768,
            max_recursion: 1_024,
            max_applets: 16,
        }
    }
}

impl AppletLimits {
    pub fn is_default(&self) -> bool {
        *self == AppletLimits::default()
    }
}

/// A profile's notification configuration: one address for a set of operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyConfig {
    /// NotificationEvent bits (1 << 0 install, 1 << 1 enable, 1 << 2 disable, 1 << 3 delete).
    pub events: u8,
    pub address: String,
}

impl NotifyConfig {
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }
}

/// The mutual-authentication applet's state in one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    /// The SE's P-256 private key, generated at personalization. No command answers it and
    /// `inspect` never shows it; it lives only in this (0600) state file.
    #[serde(default, with = "hex_bytes")]
    pub se_key: Vec<u8>,
    /// The SE certificate (`7F21`) issued by the card issuer CA.
    #[serde(default, with = "hex_bytes")]
    pub certificate: Vec<u8>,
    /// Registration counter (strictly increasing, in R).
    #[serde(default)]
    pub counter: u32,
    /// The R sent and its ephemeral key, until VERIFY SERVER.
    #[serde(default, with = "stored")]
    pub pending: Option<Pending>,
    /// The open secure connection, with its keys and counters.
    #[serde(default, with = "stored")]
    pub connection: Option<secure_channel::mutual::Connection>,
}

/// A pending registration, comparable by the R it sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pending(pub secure_channel::mutual::PendingRegistration);

impl PartialEq for Pending {
    fn eq(&self, other: &Pending) -> bool {
        self.0.signed().to_bytes() == other.0.signed().to_bytes()
    }
}

impl Eq for Pending {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileNode {
    pub fid: u16,
    pub parent: Option<FileId>,
    /// DF name (application identifier) for DFs that have one.
    #[serde(
        default,
        with = "opt_hex_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<Vec<u8>>,
    /// Short EF identifier (1..30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sfi: Option<u8>,
    pub read: Access,
    pub update: Access,
    pub body: FileBody,
}

/// Access condition of one operation on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    Always,
    /// Satisfied once the PIN with this reference was verified on the channel.
    Pin(u8),
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum FileBody {
    Df {
        children: Vec<FileId>,
    },
    Transparent {
        #[serde(with = "hex_bytes")]
        data: Vec<u8>,
    },
    /// Linear-fixed or cyclic records of one fixed length.
    Records {
        cyclic: bool,
        record_length: u8,
        max_records: u8,
        /// Record 1 first. For cyclic files record 1 is the most recently appended.
        #[serde(with = "vec_hex_bytes")]
        records: Vec<Vec<u8>>,
    },
}

impl FileNode {
    pub fn is_df(&self) -> bool {
        matches!(self.body, FileBody::Df { .. })
    }
}

/// A PIN with its retry counter and optional unblocking PUK. Values are stored salted
/// and hashed, never in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRecord {
    /// P2 of VERIFY (e.g. `81`).
    pub reference: u8,
    pub min_length: u8,
    pub max_length: u8,
    pub value: Secret,
    pub max_tries: u8,
    pub tries_left: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub puk: Option<PukRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PukRecord {
    pub value: Secret,
    pub max_tries: u8,
    pub tries_left: u8,
}

/// A salted SHA-256 of a PIN or PUK, with its length (CHANGE REFERENCE DATA splits
/// old || new at it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    pub length: u8,
    #[serde(with = "hex_bytes")]
    pub salt: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub digest: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes, redacted)", self.length)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataObject {
    pub tag: u16,
    #[serde(with = "hex_bytes")]
    pub value: Vec<u8>,
}

/// Values of another crate (`secure-channel`) kept in the state file, tagged with the form
/// this crate wrote them in: `{"form": 1, "value": ..}`. A refactor of that crate that
/// changes their serde shape must bump [`stored::FORM`] (the v3 golden file test fails
/// otherwise), and a file written in another form is refused with a clear error instead
/// of being misread. Version 2 files stored the bare value; it still loads.
mod stored {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// The form of the authentication applet's pending registration and connection.
    pub const FORM: u32 = 1;

    #[derive(Serialize)]
    struct Out<'a, T> {
        form: u32,
        value: &'a T,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum In<T> {
        Tagged {
            form: u32,
            value: T,
        },
        /// Version 2: the bare value.
        Bare(T),
    }

    pub fn serialize<T: Serialize, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(value) => Out { form: FORM, value }.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        match Option::<In<T>>::deserialize(d)? {
            None => Ok(None),
            Some(In::Bare(v)) => Ok(Some(v)),
            Some(In::Tagged { form: FORM, value }) => Ok(Some(value)),
            Some(In::Tagged { form, .. }) => Err(serde::de::Error::custom(format!(
                "a secure-connection value in form {form}; this card-emulator reads form {FORM}. Use the card-emulator that wrote the file"
            ))),
        }
    }
}

/// Serde as upper-case hex strings: readable state files, stable golden files.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&apdu_specs::hexfmt::upper(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        apdu_specs::hexfmt::parse(&text).map_err(serde::de::Error::custom)
    }
}

mod opt_hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => super::hex_bytes::serialize(b, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| apdu_specs::hexfmt::parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod vec_hex_bytes {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(&apdu_specs::hexfmt::upper(b))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| apdu_specs::hexfmt::parse(t).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Structural checks of one file tree: an arena rooted at `files[0]`, parents before
/// children, bodies consistent.
fn validate_tree(files: &[FileNode], what: &str) -> Result<(), String> {
    let root = files
        .first()
        .ok_or(format!("{what}: the file tree is empty"))?;
    if root.parent.is_some() || !root.is_df() {
        return Err(format!("{what}: the root must be a DF without parent"));
    }
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            let p = f
                .parent
                .ok_or(format!("{what}: file {i} ({:04X}) has no parent", f.fid))?;
            if p >= i {
                return Err(format!(
                    "{what}: file {i} has parent {p} that is not before it"
                ));
            }
            match &files[p].body {
                FileBody::Df { children } if children.contains(&i) => {}
                _ => {
                    return Err(format!(
                        "{what}: file {i} is not listed by its parent DF {p}"
                    ))
                }
            }
        }
        match &f.body {
            FileBody::Df { children } => {
                if children.iter().any(|c| *c >= files.len() || *c <= i) {
                    return Err(format!("{what}: DF {i} lists a child that does not exist"));
                }
            }
            FileBody::Transparent { .. } => {}
            FileBody::Records {
                record_length,
                max_records,
                records,
                ..
            } => {
                if records.len() > *max_records as usize
                    || records.iter().any(|r| r.len() != *record_length as usize)
                {
                    return Err(format!("{what}: record file {:04X} is inconsistent", f.fid));
                }
            }
        }
    }
    Ok(())
}

fn validate_pins(pins: &[PinRecord], what: &str) -> Result<(), String> {
    for p in pins {
        if p.tries_left > p.max_tries || p.max_tries == 0 || p.max_tries > 15 {
            return Err(format!(
                "{what}: PIN {:02X} has an invalid retry counter",
                p.reference
            ));
        }
        if let Some(puk) = &p.puk {
            if puk.tries_left > puk.max_tries || puk.max_tries == 0 || puk.max_tries > 15 {
                return Err(format!(
                    "{what}: PUK of PIN {:02X} has an invalid retry counter",
                    p.reference
                ));
            }
        }
    }
    Ok(())
}

impl CardState {
    /// A state holding nothing, made without allocating: what a `Vm` keeps while it lends
    /// the real one to a loaded applet's call (`vm::applet`).
    pub(crate) fn placeholder() -> CardState {
        CardState {
            label: String::new(),
            historical_bytes: Vec::new(),
            atr_protocols: Vec::new(),
            euicc: None,
            files: Vec::new(),
            pins: Vec::new(),
            data_objects: Vec::new(),
            containers: Vec::new(),
            eid: Vec::new(),
            policy: Policy::default(),
            gp: GpState {
                key_sets: Vec::new(),
                scp03_counter: 0,
                scp02_counter: 0,
                auth_failures: 0,
            },
            time_floor: 0,
            notifications: Notifications::default(),
            default_dp_address: String::new(),
            applet_limits: AppletLimits::default(),
        }
    }

    /// Structural checks a loaded state must pass before the card trusts it: every tree
    /// is rooted and consistent, counters within limits, at most one container enabled.
    pub fn validate(&self) -> Result<(), String> {
        validate_tree(&self.files, "card")?;
        if self.files[0].fid != apdu_specs::ins::fid::MF {
            return Err("files[0] must be the MF 3F00".into());
        }
        if self.historical_bytes.len() > 15 {
            return Err("more than 15 historical bytes".into());
        }
        if !matches!(self.atr_protocols.as_slice(), [0] | [1] | [0, 1]) {
            return Err("atr_protocols must be [0], [1] or [0, 1]".into());
        }
        validate_pins(&self.pins, "card")?;
        if self.containers.iter().filter(|c| c.enabled).count() > 1 {
            return Err("more than one container is enabled".into());
        }
        for (i, c) in self.containers.iter().enumerate() {
            let what = format!("container {i}");
            if c.iccid.len() != 10 || !(5..=16).contains(&c.isdp_aid.len()) {
                return Err(format!("{what}: ICCID must be 10 bytes and the AID 5..16"));
            }
            if self.containers[..i]
                .iter()
                .any(|o| o.isdp_aid == c.isdp_aid)
            {
                return Err(format!(
                    "{what}: ISD-P AID {} names another container too (it is the container's identity)",
                    apdu_specs::hexfmt::upper(&c.isdp_aid)
                ));
            }
            validate_tree(&c.files, &what)?;
            validate_pins(&c.pins, &what)?;
        }
        Ok(())
    }

    /// The eUICC's SGP.22 identity (signing key and certificate chain), if the card has one.
    pub fn euicc_identity(&self) -> Option<&crate::pki::EuiccIdentity> {
        self.euicc.as_ref()
    }

    /// The container table, read only.
    pub fn containers(&self) -> &[Container] {
        &self.containers
    }

    /// The container table for building or personalizing a state outside a running card
    /// (profiles, the issuer CA, fixtures). A running card never hands its state out: its
    /// commands reach containers through `vm` only.
    pub fn containers_mut(&mut self) -> &mut Vec<Container> {
        &mut self.containers
    }

    /// The position of the enabled container in the table, if any (for
    /// reports; everything that must keep pointing at a container holds its [`ContainerId`]).
    pub fn enabled_container(&self) -> Option<usize> {
        self.containers.iter().position(|c| c.enabled)
    }

    /// Write the enabled container's ICCID into EF.ICCID (`2FE2` under the MF, TS 102 221
    /// §13.2), as a UICC shows the ICCID of its active profile; all `FF` with none enabled.
    /// Returns the EF when its content changed. A card without EF.ICCID (older profiles)
    /// is left as it is.
    pub(crate) fn sync_ef_iccid(&mut self) -> Option<FileId> {
        let ef = crate::fs::child_by_fid(&self.files, crate::fs::MF, EF_ICCID)?;
        let iccid = self
            .containers
            .iter()
            .find(|c| c.enabled)
            .map(|c| c.iccid.clone());
        let FileBody::Transparent { data } = &mut self.files.get_mut(ef)?.body else {
            return None;
        };
        let mut new = iccid.unwrap_or_default();
        new.resize(data.len(), 0xFF);
        if *data == new {
            return None;
        }
        *data = new;
        Some(ef)
    }

    /// The identity of the enabled container, if any.
    pub fn enabled_id(&self) -> Option<ContainerId> {
        self.containers
            .iter()
            .find(|c| c.enabled)
            .map(Container::id)
    }

    /// The container with identity `id`, whatever its state.
    pub fn container(&self, id: ContainerId) -> Option<&Container> {
        self.containers.iter().find(|c| c.isdp_aid == id.aid())
    }

    pub(crate) fn container_mut(&mut self, id: ContainerId) -> Option<&mut Container> {
        self.containers.iter_mut().find(|c| c.isdp_aid == id.aid())
    }
}

/// EF.ICCID's file identifier (ETSI TS 102 221 §13.2).
pub const EF_ICCID: u16 = 0x2FE2;

fn t0_only() -> Vec<u8> {
    vec![0]
}

fn is_t0_only(protocols: &Vec<u8>) -> bool {
    protocols.as_slice() == [0]
}

/// A container's stable identity: its ISD-P AID (5 to 16 bytes), which never changes while
/// the container exists. Trees, channels, sessions and pending work name containers by it,
/// never by their position in the table, so deleting or adding one re-targets nothing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerId {
    len: u8,
    bytes: [u8; 16],
}

impl ContainerId {
    /// The identity of an ISD-P AID; `None` unless it is 5 to 16 bytes long.
    pub fn new(aid: &[u8]) -> Option<ContainerId> {
        if !(5..=16).contains(&aid.len()) {
            return None;
        }
        let mut bytes = [0u8; 16];
        bytes[..aid.len()].copy_from_slice(aid);
        Some(ContainerId {
            len: aid.len() as u8,
            bytes,
        })
    }

    pub fn aid(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Container({})", apdu_specs::hexfmt::upper(self.aid()))
    }
}

impl std::fmt::Display for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&apdu_specs::hexfmt::upper(self.aid()))
    }
}

impl Container {
    /// The container's identity. `validate` guarantees every loaded container's AID fits;
    /// a malformed one maps to an identity no command can name (all zero, length 0).
    pub fn id(&self) -> ContainerId {
        ContainerId::new(&self.isdp_aid).unwrap_or(ContainerId {
            len: 0,
            bytes: [0; 16],
        })
    }
}
