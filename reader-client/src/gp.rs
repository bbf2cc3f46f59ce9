//! GlobalPlatform card-manager commands, host side (GP Card Spec v2.3.1 §11): SELECT of the
//! security domain, GET DATA (card data, CPLC, key information), GET STATUS, PUT KEY (one
//! set, or every SCP02/SCP03 set the key information lists), INSTALL [for
//! personalization] + STORE DATA of a trust anchor (DGI A001), and the life of a loaded
//! applet (apdu-specs/docs/applets.md): INSTALL [for load] + LOAD of a WebAssembly module,
//! INSTALL [for install and make selectable] of an instance, DELETE.
//!
//! Each function takes any [`Transport`]: inside a secure channel pass the [`Scp`]
//! decorator, in the clear the bare transport. Commands are built, and answers parsed, by
//! the same `apdu_specs::gp` types the card uses; this module adds the conversation
//! (61xx, 6310, the check of PUT KEY's confirmation) and advice for humans.

use crate::exchange::transmit_following;
use crate::scp::{Scp, ScpOptions, ScpVersion};
use crate::{ClientError, Transport};
use apdu_specs::gp::{self as codec, GpDataError};
use apdu_specs::ins::iso;
use apdu_specs::Response;
use apdu_specs::{hexfmt, Command, Status};
use secure_channel::{kcv_aes, kcv_des3, ScpError, SecurityLevel, StaticKeys};
use serde::Serialize;
use std::fmt;

/// The GlobalPlatform default issuer security domain.
pub const ISD_AID: [u8; 8] = apdu_specs::es10::GP_ISD_AID;

/// GET DATA objects (GP Card Spec §11.3.3.1, §H.2, §H.6): the codec's.
pub use apdu_specs::gp::object;

/// Why a GlobalPlatform command failed.
#[derive(Debug, thiserror::Error)]
pub enum GpError {
    #[error(transparent)]
    Transport(#[from] ClientError),
    #[error("{command} answered {status}{advice}")]
    Status {
        command: &'static str,
        status: Status,
        advice: &'static str,
    },
    #[error("{what} is malformed: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("PUT KEY: the card confirmed {got} but we sent {expected} (KVN and key check values); the new keys may not be what you typed, keep the old ones at hand")]
    KcvMismatch { expected: String, got: String },
    #[error("PUT KEY: {0}")]
    Key(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<GpDataError> for GpError {
    fn from(e: GpDataError) -> GpError {
        GpError::Malformed {
            what: e.what,
            reason: e.reason,
        }
    }
}

fn advice(sw: u16) -> &'static str {
    match sw {
        0x6982 => {
            ": security status not satisfied (open a secure channel first, or at a higher --level)"
        }
        0x6985 => ": conditions of use not satisfied",
        0x6A86 => ": wrong P1 P2 (the card does not offer this object or scope)",
        0x6A88 => ": referenced data not found (the card does not have this object)",
        0x6D00 => ": instruction not supported (is a security domain selected?)",
        0x6E00 => ": class not supported (is a security domain selected?)",
        0x6A80 => ": the card refused the command data",
        0x9484 => ": algorithm not supported (key type)",
        0x9485 => ": invalid key check value",
        _ => "",
    }
}

/// Send `apdu` (following `61xx`) and require `9000`.
fn run(t: &mut dyn Transport, command: &'static str, apdu: &[u8]) -> Result<Vec<u8>, GpError> {
    let r = transmit_following(t, apdu, true)?;
    expect_success(command, r)
}

fn expect_success(command: &'static str, r: Response) -> Result<Vec<u8>, GpError> {
    match r.status {
        Status::Success => Ok(r.data),
        status => Err(GpError::Status {
            command,
            advice: advice(status.to_u16()),
            status,
        }),
    }
}

/// The class byte `80|ch` (`00|ch` for SELECT) on channels 0..=3.
fn cla(proprietary: bool, channel: u8) -> u8 {
    apdu_specs::Cla::encode(proprietary, channel, false, false).unwrap_or(0x80)
}

/// A GlobalPlatform command of the codec (built for channel 0) as bytes for `channel`.
fn apdu_on(mut cmd: Command<'_>, channel: u8) -> Result<Vec<u8>, GpError> {
    cmd.cla = cla(cmd.cla & 0x80 != 0, channel);
    cmd.to_bytes().map_err(|e| GpError::Invalid(e.to_string()))
}

/// SELECT a security domain by AID on `channel` (GP Card Spec §11.9); returns the FCI.
pub fn select(t: &mut dyn Transport, aid: &[u8], channel: u8) -> Result<Vec<u8>, GpError> {
    let cmd = Command::new(0x00, iso::SELECT, 0x04, 0x00)
        .with_data(aid)
        .with_le(256);
    run(t, "SELECT of the security domain", &apdu_on(cmd, channel)?)
}

/// GET DATA `80 CA <tag> 00` (GP Card Spec §11.3); returns the data object with its tag.
pub fn get_data(t: &mut dyn Transport, tag: u16, channel: u8) -> Result<Vec<u8>, GpError> {
    let cmd = codec::GetData { object: tag }.to_command();
    run(t, "GET DATA", &apdu_on(cmd, channel)?)
}

/// An object identifier in dotted form (`1.2.840.114283.4.3.112` style).
pub use apdu_specs::gp::oid_string;

/// Card recognition data (GP Card Spec §H.2), decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CardData {
    /// GlobalPlatform version from the card management type OID (`60`), e.g. `2.3.1`.
    pub gp_version: Option<String>,
    /// Secure channel protocols offered (`64`): (SCP, i parameter), e.g. `(3, 0x70)`.
    pub scp: Vec<(u8, u8)>,
    /// Every tag with its OID, as sent.
    pub oids: Vec<(String, String)>,
}

/// Parse `66 { 73 { 06 <oid> 60 {06} 63 {06} 64 {06} … } }`.
pub fn parse_card_data(bytes: &[u8]) -> Result<CardData, GpError> {
    let data = codec::CardRecognitionData::parse(bytes)?;
    Ok(CardData {
        gp_version: data.gp_version(),
        scp: data.scps(),
        oids: data
            .objects
            .iter()
            .map(|o| (format!("{:02X}", o.tag), oid_string(&o.oid)))
            .collect(),
    })
}

/// The CPLC fields in order, with their lengths (GP Card Spec §H.6; 42 bytes).
pub const CPLC_FIELDS: [(&str, usize); 18] = codec::Cplc::FIELDS;

/// Parse `9F7F 2A <42 bytes>` into named hex fields.
pub fn parse_cplc(bytes: &[u8]) -> Result<Vec<(&'static str, String)>, GpError> {
    let cplc = codec::Cplc::parse(bytes)?;
    Ok(cplc
        .fields()
        .into_iter()
        .map(|(name, field)| (name, hexfmt::upper(field)))
        .collect())
}

/// One key of the Key Information Template (GP Card Spec §11.3.3.1, `C0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub id: u8,
    pub version: u8,
    /// (key type, key length in bytes) per component: `88` AES, `80` DES, …
    pub components: Vec<(u8, u16)>,
}

/// Name of a key type (GP Card Spec Table 11-16).
pub fn key_type_name(t: u8) -> String {
    match t {
        codec::key_type::DES => "DES".to_string(),
        codec::key_type::AES => "AES".to_string(),
        0x85 => "TLS PRF".to_string(),
        0x90 => "HMAC-SHA1".to_string(),
        0xA0..=0xA8 => "RSA".to_string(),
        0xB0..=0xB9 => "ECC".to_string(),
        other => format!("type {other:02X}"),
    }
}

/// Parse `E0 { C0 <id> <version> (<type> <len>)… … }`, basic and extended (`FF` type marker).
pub fn parse_key_info(bytes: &[u8]) -> Result<Vec<KeyInfo>, GpError> {
    Ok(codec::KeyInformation::parse(bytes)?
        .keys
        .into_iter()
        .map(|k| KeyInfo {
            id: k.id,
            version: k.version,
            components: k
                .components
                .iter()
                .map(|c| (c.key_type, c.length))
                .collect(),
        })
        .collect())
}

/// What GET STATUS lists (P1, GP Card Spec §11.4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StatusScope {
    /// `80`: the issuer security domain.
    Isd,
    /// `40`: applications and security domains (our containers' ISD-Ps among them).
    Applications,
    /// `20`: executable load files.
    LoadFiles,
    /// `10`: executable load files with their modules (`84`).
    LoadFilesAndModules,
}

impl StatusScope {
    /// The codec's scope.
    pub fn to_codec(self) -> codec::StatusScope {
        match self {
            StatusScope::Isd => codec::StatusScope::Isd,
            StatusScope::Applications => codec::StatusScope::Applications,
            StatusScope::LoadFiles => codec::StatusScope::LoadFiles,
            StatusScope::LoadFilesAndModules => codec::StatusScope::LoadFilesAndModules,
        }
    }

    pub fn p1(self) -> u8 {
        self.to_codec().p1()
    }
}

/// One GET STATUS entry (`E3 { 4F aid, 9F70 life cycle, C5 privileges, C4 load file, CC
/// security domain, 84 modules… }`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusEntry {
    #[serde(serialize_with = "hex_ser")]
    pub aid: Vec<u8>,
    pub life_cycle: u8,
    #[serde(serialize_with = "opt_hex_ser")]
    pub privileges: Option<Vec<u8>>,
    /// `C4`: for an application, the load file (package) it was installed from.
    #[serde(serialize_with = "opt_hex_ser")]
    pub load_file: Option<Vec<u8>>,
    /// `CC`: the associated security domain (for an applet: its container's ISD-P).
    #[serde(serialize_with = "opt_hex_ser")]
    pub associated_sd: Option<Vec<u8>>,
    /// `84`: the modules of a load file (GET STATUS P1 `10`).
    #[serde(serialize_with = "hex_list_ser")]
    pub modules: Vec<Vec<u8>>,
}

fn hex_ser<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hexfmt::upper(v))
}

fn hex_list_ser<S: serde::Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|m| hexfmt::upper(m)))
}

fn opt_hex_ser<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&hexfmt::upper(v)),
        None => s.serialize_none(),
    }
}

/// The name of a life cycle state (GP Card Spec §5.1, §11.1.1).
pub fn life_cycle_name(scope: StatusScope, v: u8) -> String {
    use codec::life_cycle::*;
    let name = match (scope, v) {
        (StatusScope::Isd, OP_READY) => "OP_READY",
        (StatusScope::Isd, INITIALIZED) => "INITIALIZED",
        (StatusScope::Isd, SECURED) => "SECURED",
        (StatusScope::Isd, CARD_LOCKED) => "CARD_LOCKED",
        (StatusScope::Isd, TERMINATED) => "TERMINATED",
        (StatusScope::LoadFiles | StatusScope::LoadFilesAndModules, LOADED) => "LOADED",
        (_, INSTALLED) => "INSTALLED",
        (_, SELECTABLE) => "SELECTABLE",
        (_, PERSONALIZED) => "PERSONALIZED",
        (_, v) if v & 0x83 == 0x83 => "LOCKED",
        _ => "",
    };
    if name.is_empty() {
        format!("{v:02X}")
    } else {
        format!("{name} ({v:02X})")
    }
}

/// Parse the entries of one GET STATUS answer (tag format, P2 b2 = 1).
pub fn parse_status(data: &[u8]) -> Result<Vec<StatusEntry>, GpError> {
    Ok(codec::RegistryEntry::parse_all(data)?
        .into_iter()
        .map(|e| StatusEntry {
            aid: e.aid,
            life_cycle: e.life_cycle,
            privileges: e.privileges,
            load_file: e.load_file,
            associated_sd: e.associated_sd,
            modules: e.modules,
        })
        .collect())
}

/// Most GET STATUS continuations before the card is declared broken.
const MAX_STATUS_ROUNDS: usize = 256;

/// GET STATUS `80 F2 <scope> 02 02 4F 00 00`, repeated with P2 `03` while the card answers
/// `6310` (GP Card Spec §11.4). A card with nothing in scope answers `6A88`: an empty list.
pub fn get_status(
    t: &mut dyn Transport,
    scope: StatusScope,
    channel: u8,
) -> Result<Vec<StatusEntry>, GpError> {
    let mut out = Vec::new();
    let mut query = codec::GetStatus::all(scope.to_codec());
    for _ in 0..MAX_STATUS_ROUNDS {
        let apdu = apdu_on(query.to_command(), channel)?;
        let r = transmit_following(t, &apdu, true)?;
        match r.status {
            Status::Success => {
                out.extend(parse_status(&r.data)?);
                return Ok(out);
            }
            Status::MoreDataAvailable => {
                out.extend(parse_status(&r.data)?);
                query.next = true;
            }
            Status::ReferencedDataNotFound if out.is_empty() => return Ok(out),
            status => {
                return Err(GpError::Status {
                    command: "GET STATUS",
                    advice: advice(status.to_u16()),
                    status,
                })
            }
        }
    }
    Err(GpError::Malformed {
        what: "GET STATUS",
        reason: format!("still 6310 after {MAX_STATUS_ROUNDS} continuations"),
    })
}

/// The load files (packages) of the card with their modules: GET STATUS P1 `10`, or P1
/// `20` (no modules) from a card that does not offer `10` (`6A86`). Empty when the card
/// has none (`6A88`).
pub fn get_load_files(t: &mut dyn Transport, channel: u8) -> Result<Vec<StatusEntry>, GpError> {
    match get_status(t, StatusScope::LoadFilesAndModules, channel) {
        Err(GpError::Status {
            status: Status::IncorrectP1P2,
            ..
        }) => get_status(t, StatusScope::LoadFiles, channel),
        other => other,
    }
}

/// How a session encrypts a key for PUT KEY (see [`Scp::encrypt_key`]).
pub type EncryptKey<'a> = dyn Fn(&[u8]) -> Result<Vec<u8>, ClientError> + 'a;

/// A PUT KEY command ready to send, with the confirmation the card must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutKey {
    pub apdu: Vec<u8>,
    /// `<new KVN> <KCV ENC> <KCV MAC> <KCV DEK>`: what the card answers on success.
    pub expected: Vec<u8>,
}

/// Build PUT KEY (GP Card Spec §11.8, Amd D §7.2) for a whole key set (ENC, MAC, DEK as key
/// identifiers 1, 2, 3): P1 = the KVN to replace (`00`: add a new set), P2 = `81` (first
/// key identifier 1, several keys). Each key: SCP03 `88 <1+n> <key length> <AES-CBC under
/// K-DEK> 03 <KCV>`; SCP02 `80 <n> <3DES-ECB under S-DEK> 03 <KCV>`. `encrypt` is the
/// session's key encryption ([`Scp::encrypt_key`]).
pub fn put_key_command(
    version: ScpVersion,
    replace_kvn: Option<u8>,
    new_kvn: u8,
    keys: &StaticKeys,
    channel: u8,
    encrypt: &EncryptKey<'_>,
) -> Result<PutKey, GpError> {
    let mut components = Vec::with_capacity(3);
    for key in [keys.enc(), keys.mac(), keys.dek()] {
        let kcv = match version {
            ScpVersion::Scp03 => kcv_aes(key),
            ScpVersion::Scp02 => {
                if key.len() != 16 {
                    return Err(GpError::Key(format!(
                        "SCP02 keys are 16 bytes (two-key 3DES), got {}",
                        key.len()
                    )));
                }
                kcv_des3(key)
            }
        }
        .map_err(|e| GpError::Key(e.to_string()))?;
        let encrypted = encrypt(key)?;
        let too_long = || GpError::Key(format!("key of {} bytes is too long", key.len()));
        let key_type = match version {
            ScpVersion::Scp03 => codec::KeyType::Aes,
            ScpVersion::Scp02 => codec::KeyType::Des,
        };
        // The component's length byte covers the key length byte (AES) and the cryptogram.
        let length_byte = encrypted.len() + usize::from(key_type == codec::KeyType::Aes);
        u8::try_from(length_byte).map_err(|_| too_long())?;
        components.push(codec::KeyComponent {
            key_type,
            key_len: u8::try_from(key.len()).map_err(|_| too_long())?,
            encrypted,
            kcv,
        });
    }
    let keys: [codec::KeyComponent; 3] = components
        .try_into()
        .map_err(|_| GpError::Key("a key set has three keys".into()))?;
    let put = codec::PutKey {
        replace_kvn,
        new_kvn,
        keys,
    };
    let cmd = put.to_command();
    if cmd.data().len() > 255 {
        return Err(GpError::Key("key set too long".into()));
    }
    Ok(PutKey {
        apdu: apdu_on(cmd, channel)?,
        expected: put.confirmation().to_bytes(),
    })
}

/// Replace (or add, with `replace_kvn` `None`) a key set inside a secure channel and check
/// the KVN and key check values the card confirms. Returns `false` when the card answered
/// `9000` without the confirmation data (some cards do), `true` when it matched.
pub fn put_key<T: Transport>(
    scp: &mut Scp<T>,
    replace_kvn: Option<u8>,
    new_kvn: u8,
    keys: &StaticKeys,
) -> Result<bool, GpError> {
    let cmd = {
        let s: &Scp<T> = scp;
        put_key_command(s.version(), replace_kvn, new_kvn, keys, s.channel(), &|k| {
            s.encrypt_key(k)
        })?
    };
    let data = run(scp, "PUT KEY", &cmd.apdu)?;
    if data.is_empty() {
        return Ok(false);
    }
    if data != cmd.expected {
        return Err(GpError::KcvMismatch {
            expected: hexfmt::upper(&cmd.expected),
            got: hexfmt::upper(&data),
        });
    }
    Ok(true)
}

/// One secure-channel key set of the card, as its Key Information Template lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySet {
    pub kvn: u8,
    pub version: ScpVersion,
}

impl fmt::Display for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KVN {:02X} ({})", self.kvn, self.version)
    }
}

/// The secure-channel key sets among `keys` (GET DATA `E0`), one per KVN in card order: AES
/// keys (`88`) make an SCP03 set, DES keys (`80`) an SCP02 set; other key types (RSA, ECC,
/// ...) are not secure-channel keys and are left out.
pub fn scp_key_sets(keys: &[KeyInfo]) -> Vec<KeySet> {
    let mut out: Vec<KeySet> = Vec::new();
    for k in keys {
        let version = match k.components.first() {
            Some((0x88, _)) => ScpVersion::Scp03,
            Some((0x80, _)) => ScpVersion::Scp02,
            _ => continue,
        };
        if !out.iter().any(|s| s.kvn == k.version) {
            out.push(KeySet {
                kvn: k.version,
                version,
            });
        }
    }
    out
}

/// SELECT the security domain `sd` and read its secure-channel key sets (GET DATA `E0` in
/// the clear, as GlobalPlatform tools do before any channel).
pub fn key_sets(t: &mut dyn Transport, sd: &[u8]) -> Result<Vec<KeySet>, GpError> {
    select(t, sd, 0)?;
    let sets = scp_key_sets(&parse_key_info(&get_data(t, object::KEY_INFORMATION, 0)?)?);
    if sets.is_empty() {
        return Err(GpError::Invalid(
            "the key information template (GET DATA 00E0) lists no SCP02 or SCP03 key set".into(),
        ));
    }
    Ok(sets)
}

/// Whether every key fits the protocol (SCP02: 16-byte two-key 3DES).
fn fits(version: ScpVersion, keys: &StaticKeys) -> bool {
    version == ScpVersion::Scp03
        || [keys.enc(), keys.mac(), keys.dek()]
            .iter()
            .all(|k| k.len() == 16)
}

/// Open a channel on key set `set` of the security domain `sd` (selected anew) with `keys`.
fn open_set<'t>(
    t: &'t mut dyn Transport,
    sd: &[u8],
    set: KeySet,
    keys: &StaticKeys,
    level: SecurityLevel,
) -> Result<Scp<&'t mut dyn Transport>, GpError> {
    select(t, sd, 0)?;
    let mut options = ScpOptions::new(set.version, level);
    options.kvn = set.kvn;
    Ok(Scp::open(t, keys, &options)?)
}

/// Whether `keys` open key set `set` of the security domain `sd`. The card cryptogram of
/// INITIALIZE UPDATE is checked here: with other keys nothing more is sent, so the card
/// counts no failed authentication.
pub fn opens(
    t: &mut dyn Transport,
    sd: &[u8],
    set: KeySet,
    keys: &StaticKeys,
) -> Result<bool, GpError> {
    if !fits(set.version, keys) {
        return Ok(false);
    }
    match open_set(t, sd, set, keys, SecurityLevel::C_MAC) {
        Ok(_) => Ok(true),
        Err(GpError::Transport(ClientError::Scp {
            source: ScpError::CardCryptogram,
            ..
        })) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The key sets of the security domain `sd` that the public GlobalPlatform test keys
/// (40..4F) still open.
pub fn sets_with_test_keys(t: &mut dyn Transport, sd: &[u8]) -> Result<Vec<KeySet>, GpError> {
    let mut out = Vec::new();
    for set in key_sets(t, sd)? {
        if opens(t, sd, set, &StaticKeys::gp_default())? {
            out.push(set);
        }
    }
    Ok(out)
}

/// What [`rotate_key_sets`] did to one key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// PUT KEY replaced its keys, under `new_kvn`; `confirmed` when the card echoed the KVN
    /// and key check values.
    Rotated { new_kvn: u8, confirmed: bool },
    /// The new keys open it already (an earlier rotation): nothing sent.
    AlreadyRotated,
    /// Left as it was, and why.
    Kept { reason: String },
}

/// One key set after [`rotate_key_sets`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetRotation {
    /// The set as the card listed it before.
    pub set: KeySet,
    pub rotation: Rotation,
    /// Whether it still holds publicly known keys (the test keys still open it, or it was
    /// rotated to publicly known keys): the card then refuses trust anchors.
    pub public: bool,
}

/// The SCP02 levels are 00, 01 and 03: a level with R-MAC or R-ENC becomes 03 there.
fn level_for(version: ScpVersion, level: SecurityLevel) -> SecurityLevel {
    match version {
        ScpVersion::Scp02 if level.r_mac() || level.r_enc() => SecurityLevel::C_DEC_C_MAC,
        _ => level,
    }
}

/// Rotate every secure-channel key set of the security domain `sd` (the SCP03 and SCP02 sets
/// its key information template lists, GET DATA `E0`) to `new`: for each, a channel opened
/// with its `current` keys at `level` and PUT KEY replacing it (GP Card Spec §11.8). A set
/// keeps its KVN unless `renumber` = (old, new) names it. A set the new keys open already
/// is left alone, so running this again is harmless. A set that cannot be rotated (other
/// current keys, SCP02 with keys that are not 16 bytes, a refusal) is reported with the
/// reason and whether the public test keys still open it.
pub fn rotate_key_sets(
    t: &mut dyn Transport,
    sd: &[u8],
    current: &StaticKeys,
    new: &StaticKeys,
    level: SecurityLevel,
    renumber: Option<(u8, u8)>,
) -> Result<Vec<SetRotation>, GpError> {
    let mut out = Vec::new();
    for set in key_sets(t, sd)? {
        let new_kvn = match renumber {
            Some((old, kvn)) if old == set.kvn => kvn,
            _ => set.kvn,
        };
        let (rotation, opened_with_current) = rotate_one(
            t,
            sd,
            set,
            current,
            new,
            level_for(set.version, level),
            new_kvn,
        )?;
        let public = match (&rotation, opened_with_current) {
            (Rotation::Rotated { .. } | Rotation::AlreadyRotated, _) => new.is_publicly_known(),
            (Rotation::Kept { .. }, true) => current.is_publicly_known(),
            (Rotation::Kept { .. }, false) => opens(t, sd, set, &StaticKeys::gp_default())?,
        };
        out.push(SetRotation {
            set,
            rotation,
            public,
        });
    }
    Ok(out)
}

/// One set of [`rotate_key_sets`]: what happened, and whether `current` opened it. Only
/// SELECT and GET DATA errors propagate; anything about the set itself is reported.
fn rotate_one(
    t: &mut dyn Transport,
    sd: &[u8],
    set: KeySet,
    current: &StaticKeys,
    new: &StaticKeys,
    level: SecurityLevel,
    new_kvn: u8,
) -> Result<(Rotation, bool), GpError> {
    let kept = |reason: String| Rotation::Kept { reason };
    if !fits(set.version, new) {
        let reason = "SCP02 keys are 16 bytes (two-key 3DES): give 16-byte new keys to rotate it";
        return Ok((kept(reason.into()), false));
    }
    if opens(t, sd, set, new)? {
        return Ok((Rotation::AlreadyRotated, false));
    }
    if !fits(set.version, current) {
        return Ok((
            kept("the given current keys do not fit SCP02 (16 bytes)".into()),
            false,
        ));
    }
    let mut scp = match open_set(t, sd, set, current, level) {
        Ok(scp) => scp,
        Err(GpError::Transport(ClientError::Scp {
            source: ScpError::CardCryptogram,
            ..
        })) => {
            let reason = "the given keys do not open it (give its current keys with --key or --enc/--mac/--dek)";
            return Ok((kept(reason.into()), false));
        }
        Err(e) => return Ok((kept(format!("opening {}: {e}", set.version)), false)),
    };
    let rotation = match put_key(&mut scp, Some(set.kvn), new_kvn, new) {
        Ok(confirmed) => Rotation::Rotated { new_kvn, confirmed },
        Err(e) => kept(e.to_string()),
    };
    Ok((rotation, true))
}

/// The largest LOAD block that fits a short APDU inside any secure channel: with C-MAC (8
/// bytes) and C-DECRYPTION (padding `80 00…` to the next multiple of 16 for SCP03, of 8 for
/// SCP02) a block of n bytes is sent as 16 × ⌈(n + 1) / 16⌉ + 8 bytes (SCP02: 8 × ⌈(n + 1) /
/// 8⌉ + 8), at most 255 for n ≤ 239.
pub const LOAD_BLOCK_SIZE: usize = 239;

fn check_aid(what: &str, aid: &[u8]) -> Result<(), GpError> {
    if (5..=16).contains(&aid.len()) {
        Ok(())
    } else {
        Err(GpError::Invalid(format!(
            "{what} has {} bytes; an AID has 5..16 bytes (10..32 hex digits)",
            aid.len()
        )))
    }
}

/// INSTALL [for load] (GP Card Spec §11.5.2.1): `80 E6 02 00 Lc <n> <load file AID> <n>
/// <security domain AID> 00 00 00 00`, announcing the load file `load_file_aid` for the
/// security domain `sd_aid` (a container's ISD-P; empty: the enabled container).
pub fn install_for_load_command(
    load_file_aid: &[u8],
    sd_aid: &[u8],
    channel: u8,
) -> Result<Vec<u8>, GpError> {
    check_aid("the package (load file) AID", load_file_aid)?;
    if !sd_aid.is_empty() {
        check_aid("the container (security domain) AID", sd_aid)?;
    }
    let install = codec::Install::ForLoad {
        load_file_aid: load_file_aid.to_vec(),
        security_domain_aid: sd_aid.to_vec(),
        load_parameters: Vec::new(),
    };
    apdu_on(install.to_command(), channel)
}

/// The LOAD commands of `module` (GP Card Spec §11.6): `C4 <length> <module>` in blocks of
/// at most `block_size` bytes (1..=255; [`LOAD_BLOCK_SIZE`] fits every secure channel),
/// numbered from `00` (modulo 256), P1 `80` on the last.
pub fn load_commands(
    module: &[u8],
    block_size: usize,
    channel: u8,
) -> Result<Vec<Vec<u8>>, GpError> {
    if !(1..=255).contains(&block_size) {
        return Err(GpError::Invalid(format!(
            "a LOAD block has 1..255 bytes, not {block_size}"
        )));
    }
    // More than 256 blocks (a 64 KiB module in 239-byte blocks): the numbers wrap after FF,
    // as GlobalPlatform tools do; the card checks them modulo 256.
    let blocks = codec::Load::blocks(module, block_size);
    blocks
        .into_iter()
        .map(|b| apdu_on(b.to_command(), channel))
        .collect()
}

/// What the card means when it refuses `command`, a step of loading, installing or deleting
/// an applet (apdu-specs/docs/applets.md).
fn applet_advice(command: &str, sw: u16) -> &'static str {
    match (command, sw) {
        ("LOAD", 0x6A80) => ": the card refused the module (not a valid applet, see apdu-specs/docs/applets.md: exports `memory` and `process`, imports only from `se`)",
        ("LOAD", 0x6A86) => ": a block out of order (start again: the load begins with INSTALL [for load])",
        (_, 0x6A80) => ": the card refused the command data (check the AIDs: --container is a container's ISD-P AID, see `reader-client gp status`)",
        (_, 0x6A84) => ": not enough memory (the module, its memory or the --storage asked for is larger than the card's [applets] limits, or the container holds too many applets)",
        (_, 0x6A88) => ": no such package, container or applet (see `reader-client gp status`)",
        (_, 0x6985) => ": conditions of use not satisfied (the AID exists already, a package still has applets (use --related), or it is in the wrong state)",
        (_, other) => advice(other),
    }
}

/// Send `apdu` and require `9000`, explaining refusals with [`applet_advice`].
fn run_applet(
    t: &mut dyn Transport,
    command: &'static str,
    apdu: &[u8],
) -> Result<Vec<u8>, GpError> {
    let r = transmit_following(t, apdu, true)?;
    match r.status {
        Status::Success => Ok(r.data),
        status => Err(GpError::Status {
            command,
            advice: applet_advice(command, status.to_u16()),
            status,
        }),
    }
}

/// Load `module` (a WebAssembly applet) as the package `load_file_aid` into the container
/// whose ISD-P is `sd_aid`: INSTALL [for load], then the LOAD blocks. Pass the [`Scp`]
/// session. Returns the number of LOAD commands sent.
pub fn load(
    t: &mut dyn Transport,
    load_file_aid: &[u8],
    sd_aid: &[u8],
    module: &[u8],
    block_size: usize,
    channel: u8,
) -> Result<usize, GpError> {
    let install = install_for_load_command(load_file_aid, sd_aid, channel)?;
    let blocks = load_commands(module, block_size, channel)?;
    run_applet(t, "INSTALL [for load]", &install)?;
    for block in &blocks {
        run_applet(t, "LOAD", block)?;
    }
    Ok(blocks.len())
}

/// What INSTALL [for install and make selectable] creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppletInstall {
    /// The package (executable load file).
    pub package_aid: Vec<u8>,
    /// The module in it (for a WebAssembly applet: the package AID again).
    pub module_aid: Vec<u8>,
    /// The new instance's AID, which SELECT takes.
    pub applet_aid: Vec<u8>,
    /// Application-specific install parameters (the value of `C9`).
    pub params: Vec<u8>,
    /// Persistent storage in bytes (`EF { C8 }`); `None`: the card's default.
    pub storage: Option<u32>,
}

/// INSTALL [for install and make selectable] (GP Card Spec §11.5.2.2): `80 E6 0C 00 Lc <n>
/// <package> <n> <module> <n> <applet> 01 00 <n> { C9 <params> [EF { C8 <storage> }] } 00 00`.
pub fn install_for_install_command(
    install: &AppletInstall,
    channel: u8,
) -> Result<Vec<u8>, GpError> {
    check_aid("the package (load file) AID", &install.package_aid)?;
    check_aid("the module AID", &install.module_aid)?;
    check_aid("the applet (application) AID", &install.applet_aid)?;
    let parameters = codec::InstallParameters {
        application: install.params.clone(),
        non_volatile_quota: install.storage,
    };
    if parameters.to_bytes().len() > 255 {
        return Err(GpError::Invalid(format!(
            "install parameters of {} bytes do not fit the INSTALL command",
            install.params.len()
        )));
    }
    let cmd = codec::Install::ForInstall {
        load_file_aid: install.package_aid.clone(),
        module_aid: install.module_aid.clone(),
        application_aid: install.applet_aid.clone(),
        privileges: vec![0x00],
        parameters,
        make_selectable: true,
    }
    .to_command();
    // As for LOAD: what fits a short APDU once padded and MACed by the secure channel.
    if cmd.data().len() > LOAD_BLOCK_SIZE {
        return Err(GpError::Invalid(format!(
            "the INSTALL data would have {} bytes, more than the {LOAD_BLOCK_SIZE} a secure channel carries in a short APDU: use shorter --params",
            cmd.data().len()
        )));
    }
    apdu_on(cmd, channel)
}

/// Install (and make selectable) an instance of a loaded package. Pass the [`Scp`] session.
pub fn install(t: &mut dyn Transport, install: &AppletInstall, channel: u8) -> Result<(), GpError> {
    let apdu = install_for_install_command(install, channel)?;
    run_applet(t, "INSTALL [for install and make selectable]", &apdu)?;
    Ok(())
}

/// DELETE (GP Card Spec §11.2): `80 E4 00 <00|80> Lc 4F <n> <AID> 00`; `related` (P2 `80`)
/// also deletes what depends on it (a package with its applets).
pub fn delete_command(aid: &[u8], related: bool, channel: u8) -> Result<Vec<u8>, GpError> {
    check_aid("the AID to delete", aid)?;
    let cmd = codec::Delete {
        aid: aid.to_vec(),
        related,
    };
    apdu_on(cmd.to_command(), channel)
}

/// Delete an applet instance or a package (with `related`, its instances too). Pass the
/// [`Scp`] session.
pub fn delete(
    t: &mut dyn Transport,
    aid: &[u8],
    related: bool,
    channel: u8,
) -> Result<(), GpError> {
    run_applet(t, "DELETE", &delete_command(aid, related, channel)?)?;
    Ok(())
}

/// INSTALL [for personalization] of the application `aid` (GP Card Spec §11.5.2.3):
/// `80 E6 20 00 Lc 00 00 <len> <aid> 00 00 00 00`: no load file, no module, no privileges,
/// no parameters, no token. The STORE DATA commands that follow go to that application.
pub fn install_for_personalization_command(aid: &[u8], channel: u8) -> Result<Vec<u8>, GpError> {
    if !(5..=16).contains(&aid.len()) {
        return Err(GpError::Invalid(format!(
            "an AID has 5..16 bytes, not {}",
            aid.len()
        )));
    }
    let install = codec::Install::ForPersonalization { aid: aid.to_vec() };
    apdu_on(install.to_command(), channel)
}

/// STORE DATA of one DGI as the last (only) block (GP Card Spec §11.11): P1 `88` = last
/// block, DGI format; P2 = block number 0. Data: DGI (2 bytes), length (1 byte, or
/// `FF` + 2 bytes from 255 on), value.
pub fn store_dgi_command(dgi: u16, value: &[u8], channel: u8) -> Result<Vec<u8>, GpError> {
    if value.len() > usize::from(u16::MAX) {
        return Err(GpError::Invalid(format!(
            "DGI value of {} bytes",
            value.len()
        )));
    }
    let store = codec::StoreData::dgis(&[codec::Dgi {
        dgi,
        value: value.to_vec(),
    }]);
    if store.data.len() > 255 {
        return Err(GpError::Invalid(format!(
            "DGI of {} bytes does not fit one short STORE DATA",
            store.data.len()
        )));
    }
    apdu_on(store.to_command(), channel)
}

/// Install `anchor` (the server key trusted for one service) into the container whose
/// ISD-P is `isdp_aid`: INSTALL [for personalization] then STORE DATA of DGI `A001`
/// `{80 service, 81 key}` (mutual-auth.md, "Admin"). Pass the [`Scp`] session: the card
/// takes these in admin mode only, inside a secure channel on its ISD.
pub fn install_anchor(
    t: &mut dyn Transport,
    isdp_aid: &[u8],
    anchor: &apdu_specs::auth::TrustAnchor,
    channel: u8,
) -> Result<(), GpError> {
    run(
        t,
        "INSTALL [for personalization]",
        &install_for_personalization_command(isdp_aid, channel)?,
    )?;
    let store = store_dgi_command(
        apdu_specs::auth::DGI_TRUST_ANCHOR,
        &anchor.to_bytes(),
        channel,
    )?;
    match transmit_following(t, &store, true)?.status {
        Status::Success => Ok(()),
        status => Err(GpError::Status {
            command: "STORE DATA (DGI A001)",
            advice: anchor_advice(status.to_u16()),
            status,
        }),
    }
}

/// What to do when the card refuses a trust anchor (mutual-auth.md, "Admin").
fn anchor_advice(sw: u16) -> &'static str {
    match sw {
        0x6985 => ": the card takes trust anchors only once none of its GlobalPlatform key sets is a public test key (40..4F). Rotate every key set first, and keep the new key: `reader-client gp put-key --new-key HEX`; then `reader-client gp --key HEX install-anchor ...`",
        0x6982 => ": a trust anchor needs C-MAC and C-DECRYPTION on the channel (--level enc or full)",
        0x6A80 => ": the card refused the anchor: the server key must be a P-256 point (65 bytes, 04 || X || Y) and the service id 1..32 bytes of UTF-8",
        other => advice(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn install_and_store_dgi_layouts() {
        let aid = hex!("A0000005591010FFFFFFFF8900001000");
        let i = install_for_personalization_command(&aid, 0).unwrap();
        assert_eq!(&i[..8], &hex!("80E6200016000010"));
        assert_eq!(&i[8..24], &aid);
        assert_eq!(&i[24..], &hex!("00000000"));
        assert!(install_for_personalization_command(&[1, 2], 0).is_err());
        let s = store_dgi_command(0xA001, &[0xAA; 3], 1).unwrap();
        assert_eq!(s, hex!("81E2880006A00103AAAAAA"));
        let long = store_dgi_command(0xA001, &[0; 255], 0).unwrap_err();
        assert!(long.to_string().contains("short STORE DATA"), "{long}");
    }

    const PKG: [u8; 16] = hex!("A0000005591010FFFFFFFF8900000100");
    const ISDP: [u8; 16] = hex!("A0000005591010FFFFFFFF8900001000");
    const APP: [u8; 16] = hex!("A0000005591010FFFFFFFF8900000101");

    #[test]
    fn applet_command_layouts() {
        let l = install_for_load_command(&PKG, &ISDP, 0).unwrap();
        assert_eq!(&l[..6], &hex!("80E6020025 10"));
        assert_eq!(&l[39..], &hex!("00 00 00 00"));
        let l = install_for_load_command(&PKG, &[], 1).unwrap();
        assert_eq!(&l[..6], &hex!("81E6020015 10"));
        assert!(install_for_load_command(&PKG[..4], &ISDP, 0).is_err());
        assert!(install_for_load_command(&PKG, &ISDP[..4], 0).is_err());
        let install = AppletInstall {
            package_aid: PKG.to_vec(),
            module_aid: PKG.to_vec(),
            applet_aid: APP.to_vec(),
            params: vec![],
            storage: None,
        };
        let i = install_for_install_command(&install, 0).unwrap();
        assert_eq!(&i[..5], &hex!("80E60C0039"));
        assert_eq!(&i[56..], &hex!("0100 02C900 00 00"));
        let with = AppletInstall {
            params: vec![1, 2],
            storage: Some(4096),
            ..install.clone()
        };
        let i = install_for_install_command(&with, 0).unwrap();
        assert_eq!(&i[56..], &hex!("0100 0A C9020102 EF04C8021000 00 00"));
        let huge = AppletInstall {
            params: vec![0; 250],
            ..install.clone()
        };
        assert!(install_for_install_command(&huge, 0).is_err());
        let bad = AppletInstall {
            applet_aid: vec![1; 17],
            ..install
        };
        assert!(install_for_install_command(&bad, 0).is_err());
        assert_eq!(
            delete_command(&APP[..5], true, 0).unwrap(),
            hex!("80E40080 07 4F05A000000559 00")
        );
        assert!(delete_command(&[1, 2], false, 0).is_err());
    }

    #[test]
    fn load_commands_split_the_module_into_numbered_blocks() {
        let module: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let blocks = load_commands(&module, LOAD_BLOCK_SIZE, 0).unwrap();
        // C4 82 03E8 + 1000 bytes = 1004 = 4 x 239 + 48.
        assert_eq!(blocks.len(), 5);
        for (i, b) in blocks.iter().enumerate() {
            let p1 = if i == 4 { 0x80 } else { 0x00 };
            assert_eq!(&b[..4], &[0x80, 0xE8, p1, i as u8]);
            let lc = if i == 4 { 48 } else { 239 };
            assert_eq!(b[4], lc);
        }
        assert_eq!(&blocks[0][5..9], &hex!("C48203E8"));
        assert!(load_commands(&module, 0, 0).is_err());
        assert!(load_commands(&module, 256, 0).is_err());
        // 64 KiB in 239-byte blocks: 275 blocks, numbers wrap after FF.
        let big = load_commands(&vec![0; 65536], LOAD_BLOCK_SIZE, 0).unwrap();
        assert_eq!(big.len(), 275);
        assert_eq!((big[256][3], big[274][2], big[274][3]), (0x00, 0x80, 18));
    }

    #[test]
    fn oids_decode_like_gp_card_data() {
        assert_eq!(oid_string(&hex!("2A864886FC6B01")), "1.2.840.114283.1");
        assert_eq!(
            oid_string(&hex!("2A864886FC6B040370")),
            "1.2.840.114283.4.3.112"
        );
    }

    #[test]
    fn card_data_gives_gp_version_and_scp() {
        // GP Card Spec §H.2 layout: GP 2.3.1, SCP03 i=70.
        use apdu_specs::tlv::build;
        let oid = |tag: u32, v: &[u8]| build(tag, &build(0x06, v));
        let inner = [
            build(0x06, &hex!("2A864886FC6B01")),
            oid(0x60, &hex!("2A864886FC6B02020301")),
            oid(0x63, &hex!("2A864886FC6B03")),
            oid(0x64, &hex!("2A864886FC6B040370")),
        ]
        .concat();
        let d = build(0x66, &build(0x73, &inner));
        let c = parse_card_data(&d).unwrap();
        assert_eq!(c.gp_version.as_deref(), Some("2.3.1"));
        assert_eq!(c.scp, vec![(3, 0x70)]);
        assert!(parse_card_data(&hex!("6600")).is_err());
    }

    #[test]
    fn cplc_has_42_bytes_in_18_fields() {
        let mut d = vec![0x9F, 0x7F, 0x2A];
        d.extend(0..42u8);
        let f = parse_cplc(&d).unwrap();
        assert_eq!(f.len(), 18);
        assert_eq!(f[0], ("IC fabricator", "0001".to_string()));
        assert_eq!(f[6], ("IC serial number", "0C0D0E0F".to_string()));
        assert_eq!(f[17].1, "26272829");
        assert!(parse_cplc(&[0x9F, 0x7F, 0x01, 0x00]).is_err());
    }

    #[test]
    fn key_information_basic_and_extended() {
        let k = parse_key_info(&hex!("E012 C00401308810 C00402308810 C00403308810")).unwrap();
        assert_eq!(k.len(), 3);
        assert_eq!(
            k[0],
            KeyInfo {
                id: 1,
                version: 0x30,
                components: vec![(0x88, 16)]
            }
        );
        let k = parse_key_info(&hex!("E00B C00901 20 FF80 0010 0100 00")).unwrap();
        assert_eq!(k[0].components, vec![(0x80, 16)]);
    }

    #[test]
    fn status_entries_need_aid_and_life_cycle() {
        let e = parse_status(&hex!(
            "E3 13 4F 08 A000000151000000 9F70 01 0F C5 03 9EFE80"
        ))
        .unwrap();
        assert_eq!(e[0].aid, hex!("A000000151000000"));
        assert_eq!(e[0].life_cycle, 0x0F);
        assert_eq!(e[0].privileges.as_deref(), Some(&hex!("9EFE80")[..]));
        assert_eq!(life_cycle_name(StatusScope::Isd, 0x0F), "SECURED (0F)");
        let app = parse_status(&hex!(
            "E3 1C 4F 05 A000000001 9F70 01 07 C5 01 00 C4 05 A000000002 CC 05 A000000003"
        ))
        .unwrap();
        assert_eq!(app[0].load_file.as_deref(), Some(&hex!("A000000002")[..]));
        assert_eq!(
            app[0].associated_sd.as_deref(),
            Some(&hex!("A000000003")[..])
        );
        assert_eq!(
            life_cycle_name(StatusScope::Applications, app[0].life_cycle),
            "SELECTABLE (07)"
        );
        let json = serde_json::to_value(&app[0]).unwrap();
        assert_eq!(json["load_file"], "A000000002");
        assert_eq!(json["modules"], serde_json::json!([]));
        assert!(parse_status(&hex!("E3 03 9F70 01 07")).is_err());
        assert!(parse_status(&hex!("E1 00")).is_err());
    }

    #[test]
    fn put_key_scp03_layout() {
        let keys = StaticKeys::gp_default();
        let cmd = put_key_command(ScpVersion::Scp03, Some(0x30), 0x31, &keys, 0, &|k| {
            Ok(k.to_vec())
        })
        .unwrap();
        // 80 D8 30 81 46 31 { 88 11 10 <16> 03 <kcv> } x3 00
        assert_eq!(&cmd.apdu[..6], &hex!("80D830814631"));
        assert_eq!(&cmd.apdu[6..9], &hex!("881110"));
        assert_eq!(&cmd.apdu[25..29], &hex!("03504A77"));
        assert_eq!(cmd.apdu.len(), 5 + 1 + 3 * 23 + 1);
        assert_eq!(cmd.expected, hex!("31504A77504A77504A77"));
        let cmd =
            put_key_command(ScpVersion::Scp02, None, 0x21, &keys, 1, &|k| Ok(k.to_vec())).unwrap();
        assert_eq!(&cmd.apdu[..8], &hex!("81D8008143218010"));
    }

    /// Key rotation and trust anchors against the real card in-process: the terminal knows
    /// the public test keys; the card takes anchors only once every key set is secret.
    mod against_the_card {
        use super::super::*;
        use crate::InProcess;
        use card_emulator::{profile, Card};

        fn card() -> InProcess<Card> {
            InProcess::new(Card::in_memory(
                profile::build(profile::DEFAULT_PROFILE).unwrap(),
            ))
        }

        fn new_keys() -> StaticKeys {
            StaticKeys::new(&[0x21; 16], &[0x22; 16], &[0x23; 16]).unwrap()
        }

        fn anchor() -> apdu_specs::auth::TrustAnchor {
            apdu_specs::auth::TrustAnchor {
                service_id: "demo".into(),
                server_public_key: secure_channel::mutual::SigningKey::generate()
                    .unwrap()
                    .verifying_key()
                    .to_sec1(),
            }
        }

        const SCP03: KeySet = KeySet {
            kvn: 0x30,
            version: ScpVersion::Scp03,
        };
        const SCP02: KeySet = KeySet {
            kvn: 0x20,
            version: ScpVersion::Scp02,
        };
        const ISDP_A: [u8; 16] = hex_literal::hex!("A0000005591010FFFFFFFF8900001000");

        /// Install `anchor()` into container A through `set` opened with `keys` at `level`.
        fn install(
            t: &mut InProcess<Card>,
            set: KeySet,
            keys: &StaticKeys,
            level: SecurityLevel,
        ) -> Result<(), GpError> {
            let mut scp = open_set(t, &ISD_AID, set, keys, level)?;
            install_anchor(&mut scp, &ISDP_A, &anchor(), 0)
        }

        #[test]
        fn the_key_information_names_both_key_sets() {
            let mut t = card();
            assert_eq!(key_sets(&mut t, &ISD_AID).unwrap(), vec![SCP03, SCP02]);
            assert_eq!(
                sets_with_test_keys(&mut t, &ISD_AID).unwrap(),
                vec![SCP03, SCP02]
            );
            // Probing with the test keys is not a failed authentication.
            assert_eq!(t.card().state().gp.auth_failures, 0);
        }

        #[test]
        fn install_anchor_with_the_test_keys_fails_and_says_to_rotate_them() {
            let mut t = card();
            let e = install(
                &mut t,
                SCP03,
                &StaticKeys::gp_default(),
                SecurityLevel::FULL,
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("6985"), "{e}");
            assert!(e.contains("reader-client gp put-key --new-key"), "{e}");
            assert!(t.card().state().containers()[0].trust_anchors.is_empty());
        }

        #[test]
        fn rotating_every_key_set_then_the_anchor_goes_in_with_c_mac_and_c_dec() {
            let mut t = card();
            let new = new_keys();
            let default = StaticKeys::gp_default();
            let level = SecurityLevel::FULL;
            let r = rotate_key_sets(&mut t, &ISD_AID, &default, &new, level, None).unwrap();
            assert_eq!(r.len(), 2);
            for (got, set) in r.iter().zip([SCP03, SCP02]) {
                assert_eq!(got.set, set);
                let rotated = Rotation::Rotated {
                    new_kvn: set.kvn,
                    confirmed: true,
                };
                assert_eq!(got.rotation, rotated, "{set}");
                assert!(!got.public, "{set}");
            }
            let sets = &t.card().state().gp.key_sets;
            assert!(sets.iter().all(|k| !k.is_publicly_known()), "{sets:?}");
            assert!(sets_with_test_keys(&mut t, &ISD_AID).unwrap().is_empty());
            // Again: nothing to do.
            let again = rotate_key_sets(&mut t, &ISD_AID, &default, &new, level, None).unwrap();
            assert!(again.iter().all(|s| s.rotation == Rotation::AlreadyRotated));
            // C-MAC alone is refused with its advice; C-MAC + C-DEC through SCP02 is taken.
            let e = install(&mut t, SCP03, &new, SecurityLevel::C_MAC).unwrap_err();
            assert!(e.to_string().contains("--level enc"), "{e}");
            install(&mut t, SCP02, &new, SecurityLevel::C_DEC_C_MAC).unwrap();
            assert_eq!(t.card().state().containers()[0].trust_anchors.len(), 1);
        }

        #[test]
        fn a_set_left_on_the_test_keys_is_reported_public() {
            let mut t = card();
            // 32-byte keys cannot go into the SCP02 set.
            let aes256 = StaticKeys::from_single(&[0x44; 32]).unwrap();
            let default = StaticKeys::gp_default();
            let level = SecurityLevel::FULL;
            let r = rotate_key_sets(
                &mut t,
                &ISD_AID,
                &default,
                &aes256,
                level,
                Some((0x30, 0x31)),
            )
            .unwrap();
            assert_eq!(
                r[0].rotation,
                Rotation::Rotated {
                    new_kvn: 0x31,
                    confirmed: true
                }
            );
            assert!(!r[0].public);
            assert!(
                matches!(&r[1].rotation, Rotation::Kept { reason } if reason.contains("16 bytes")),
                "{:?}",
                r[1]
            );
            assert!(r[1].public);
            let kvns: Vec<u8> = t.card().state().gp.key_sets.iter().map(|k| k.kvn).collect();
            assert_eq!(kvns, [0x31, 0x20]);
            // The owner's SCP03 keys do not make the card take an anchor while SCP02 is public.
            let set = KeySet { kvn: 0x31, ..SCP03 };
            let e = install(&mut t, set, &aes256, SecurityLevel::FULL).unwrap_err();
            assert!(e.to_string().contains("6985"), "{e}");
            // Keys that do not open a set leave it alone, and say so.
            let wrong = StaticKeys::from_single(&[0x55; 16]).unwrap();
            let r = rotate_key_sets(&mut t, &ISD_AID, &wrong, &new_keys(), level, None).unwrap();
            for s in &r {
                assert!(
                    matches!(&s.rotation, Rotation::Kept { reason } if reason.contains("do not open")),
                    "{s:?}"
                );
            }
            assert_eq!((r[0].public, r[1].public), (false, true));
            assert_eq!(t.card().state().gp.auth_failures, 0);
        }
    }

    mod against_the_fake_sd {
        use super::super::*;
        use crate::fake_sd::FakeSd;
        use crate::scp::ScpOptions;
        use crate::InProcess;
        use hex_literal::hex;
        use secure_channel::{ScpError, SecurityLevel};

        fn session<'a>(
            t: &'a mut InProcess<FakeSd>,
            v: ScpVersion,
            keys: &StaticKeys,
        ) -> Result<Scp<&'a mut InProcess<FakeSd>>, ClientError> {
            select(t, &ISD_AID, 0).unwrap();
            Scp::open(t, keys, &ScpOptions::new(v, SecurityLevel::C_DEC_C_MAC))
        }

        #[test]
        fn get_status_follows_6310_with_p2_03() {
            let mut t = InProcess::new(FakeSd::new(ScpVersion::Scp03));
            t.card_mut().hook = Box::new(|plain| match plain {
                [0x80, 0xF2, 0x40, 0x02, ..] => {
                    Some(hex!("E3 0E 4F 08 A000000151000000 9F70 01 0F 6310").to_vec())
                }
                [0x80, 0xF2, 0x40, 0x03, ..] => Some(
                    hex!("E3 16 4F 10 A0000005591010FFFFFFFF8900001000 9F70 01 07 9000").to_vec(),
                ),
                [0x80, 0xF2, 0x20, ..] => Some(hex!("6A88").to_vec()),
                [0x80, 0xCA, 0x9F, 0x7F, ..] => Some(hex!("6A88").to_vec()),
                _ => None,
            });
            let mut scp = session(&mut t, ScpVersion::Scp03, &StaticKeys::gp_default()).unwrap();
            let e = get_status(&mut scp, StatusScope::Applications, 0).unwrap();
            assert_eq!(e.len(), 2);
            assert_eq!(e[1].aid, hex!("A0000005591010FFFFFFFF8900001000"));
            assert_eq!(e[1].life_cycle, 0x07);
            assert!(get_status(&mut scp, StatusScope::LoadFiles, 0)
                .unwrap()
                .is_empty());
            let err = get_data(&mut scp, object::CPLC, 0).unwrap_err();
            assert!(err.to_string().contains("6A88"), "{err}");
        }

        type Seen = std::rc::Rc<std::cell::RefCell<Vec<Vec<u8>>>>;

        /// A fake SD whose hook answers INSTALL, LOAD and DELETE with `answer` and keeps
        /// every plain command.
        fn recording(
            v: ScpVersion,
            answer: fn(&[u8]) -> Option<Vec<u8>>,
        ) -> (InProcess<FakeSd>, Seen) {
            let mut t = InProcess::new(FakeSd::new(v));
            let seen: Seen = Default::default();
            let log = seen.clone();
            t.card_mut().hook = Box::new(move |plain| {
                log.borrow_mut().push(plain.to_vec());
                answer(plain)
            });
            (t, seen)
        }

        fn accept_applet_commands(plain: &[u8]) -> Option<Vec<u8>> {
            match plain {
                [_, 0xE6 | 0xE8 | 0xE4, ..] => Some(hex!("9000").to_vec()),
                _ => None,
            }
        }

        #[test]
        fn load_sends_install_for_load_then_blocks_that_fit_short_apdus() {
            const PKG: [u8; 16] = hex!("A0000005591010FFFFFFFF8900000100");
            const ISDP: [u8; 16] = hex!("A0000005591010FFFFFFFF8900001000");
            let module: Vec<u8> = (0..3000u32).map(|i| (i * 13) as u8).collect();
            for (v, level) in [
                (ScpVersion::Scp03, SecurityLevel::FULL),
                (ScpVersion::Scp03, SecurityLevel::C_DEC_C_MAC),
                (ScpVersion::Scp02, SecurityLevel::C_DEC_C_MAC),
            ] {
                let (mut t, seen) = recording(v, accept_applet_commands);
                select(&mut t, &ISD_AID, 0).unwrap();
                let mut scp = Scp::open(
                    &mut t,
                    &StaticKeys::gp_default(),
                    &ScpOptions::new(v, level),
                )
                .unwrap();
                let n = load(&mut scp, &PKG, &ISDP, &module, LOAD_BLOCK_SIZE, 0).unwrap();
                drop(scp);
                assert_eq!(n, 13, "{v}");
                let seen = seen.borrow();
                let sent: Vec<&Vec<u8>> = seen.iter().filter(|c| c[1] != 0x82).collect();
                assert_eq!(&sent[0][..4], &hex!("80E60200"), "{v}");
                let mut data = Vec::new();
                for (i, c) in sent[1..].iter().enumerate() {
                    let cmd = apdu_specs::Command::parse(c).unwrap();
                    let l = codec::Load::parse(&cmd).unwrap();
                    assert_eq!((l.block, l.last), (i as u8, i == 12), "{v}");
                    data.extend(l.data);
                }
                assert_eq!(codec::load_file_data(&data), Ok(&module[..]), "{v}");
                // Every wrapped command is a short APDU (Lc <= 255).
                for w in &t.card().wire {
                    assert!(w.len() <= 5 + 255 + 1, "{v}: {} bytes", w.len());
                }
            }
        }

        #[test]
        fn a_refused_load_names_the_command_and_the_status_word() {
            let (mut t, _) = recording(ScpVersion::Scp03, |plain| match plain {
                [0x80, 0xE8, 0x80, ..] => Some(hex!("6A80").to_vec()),
                [0x80, 0xE6, 0x0C, ..] => Some(hex!("6A84").to_vec()),
                [0x80, 0xE4, 0x00, 0x00, ..] => Some(hex!("6985").to_vec()),
                other => accept_applet_commands(other),
            });
            let mut scp = session(&mut t, ScpVersion::Scp03, &StaticKeys::gp_default()).unwrap();
            let pkg = hex!("A000000559101001");
            let e = load(&mut scp, &pkg, &[], &[0; 500], 239, 0)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("LOAD answered 6A80"), "{e}");
            assert!(e.contains("not a valid applet"), "{e}");
            let install_one = AppletInstall {
                package_aid: pkg.to_vec(),
                module_aid: pkg.to_vec(),
                applet_aid: hex!("A00000055910100101").to_vec(),
                params: vec![],
                storage: Some(1 << 20),
            };
            let e = install(&mut scp, &install_one, 0).unwrap_err().to_string();
            assert!(
                e.starts_with("INSTALL [for install and make selectable] answered 6A84"),
                "{e}"
            );
            assert!(e.contains("not enough memory"), "{e}");
            let e = delete(&mut scp, &pkg, false, 0).unwrap_err().to_string();
            assert!(
                e.contains("DELETE answered 6985") && e.contains("--related"),
                "{e}"
            );
            delete(&mut scp, &pkg, true, 0).unwrap();
        }

        #[test]
        fn load_files_come_with_modules_or_without_from_older_cards() {
            let (mut t, _) = recording(ScpVersion::Scp03, |plain| match plain {
                [0x80, 0xF2, 0x10, 0x02, ..] => Some(
                    hex!("E3 18 4F 08 A000000559101001 9F70 01 01 84 08 A000000559101001 9000")
                        .to_vec(),
                ),
                _ => None,
            });
            let mut scp = session(&mut t, ScpVersion::Scp03, &StaticKeys::gp_default()).unwrap();
            let files = get_load_files(&mut scp, 0).unwrap();
            assert_eq!(files.len(), 1);
            assert_eq!(files[0].modules, vec![hex!("A000000559101001").to_vec()]);
            assert_eq!(
                life_cycle_name(StatusScope::LoadFilesAndModules, files[0].life_cycle),
                "LOADED (01)"
            );
            drop(scp);
            let (mut t, seen) = recording(ScpVersion::Scp03, |plain| match plain {
                [0x80, 0xF2, 0x10, ..] => Some(hex!("6A86").to_vec()),
                [0x80, 0xF2, 0x20, 0x02, ..] => {
                    Some(hex!("E3 0E 4F 08 A000000559101001 9F70 01 01 6310").to_vec())
                }
                [0x80, 0xF2, 0x20, 0x03, ..] => Some(hex!("6A88").to_vec()),
                _ => None,
            });
            let mut scp = session(&mut t, ScpVersion::Scp03, &StaticKeys::gp_default()).unwrap();
            let e = get_load_files(&mut scp, 0).unwrap_err();
            // 6A88 after a 6310 is a broken listing, not an empty one.
            assert!(e.to_string().contains("6A88"), "{e}");
            drop(scp);
            let p1s: Vec<u8> = seen
                .borrow()
                .iter()
                .filter(|c| c[1] == 0xF2)
                .map(|c| c[2])
                .collect();
            assert_eq!(p1s, [0x10, 0x20, 0x20]);
        }

        #[test]
        fn put_key_replaces_the_key_set_and_the_new_keys_open_the_next_session() {
            for v in [ScpVersion::Scp03, ScpVersion::Scp02] {
                let mut t = InProcess::new(FakeSd::new(v));
                let new = StaticKeys::new(&[0x21; 16], &[0x22; 16], &[0x23; 16]).unwrap();
                let mut scp = session(&mut t, v, &StaticKeys::gp_default()).unwrap();
                let kvn = scp.card_kvn();
                assert!(put_key(&mut scp, Some(kvn), kvn, &new).unwrap(), "{v}");
                drop(scp);
                assert!(matches!(
                    session(&mut t, v, &StaticKeys::gp_default()),
                    Err(ClientError::Scp {
                        source: ScpError::CardCryptogram,
                        ..
                    })
                ));
                assert!(session(&mut t, v, &new).is_ok(), "{v}");
            }
        }

        #[test]
        fn put_key_refuses_a_card_confirming_other_check_values() {
            let mut t = InProcess::new(FakeSd::new(ScpVersion::Scp03));
            t.card_mut().hook = Box::new(|plain| match plain {
                [0x80, 0xD8, ..] => Some(hex!("30 000000 504A77 504A77 9000").to_vec()),
                _ => None,
            });
            let mut scp = session(&mut t, ScpVersion::Scp03, &StaticKeys::gp_default()).unwrap();
            let e = put_key(&mut scp, Some(0x30), 0x30, &StaticKeys::gp_default()).unwrap_err();
            assert!(matches!(e, GpError::KcvMismatch { .. }), "{e}");
        }
    }
}
