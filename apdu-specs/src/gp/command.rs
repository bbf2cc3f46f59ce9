//! GlobalPlatform commands, one type each: built by the host, parsed by the card.
//!
//! `to_command` gives the C-APDU on the basic channel (class `80`; a client on another
//! channel sets the class byte). `parse` reads what the card received (secure messaging
//! already removed) and fails with the status word the card answers. Checks that need the
//! card's state or policy (is a secure channel open, does the key set exist) stay on the
//! card; the order of checks here is the card's, so that every malformed command keeps
//! its status word.
//!
//! Builders write one-byte lengths (AIDs of 5..=16 bytes, key components under 255): a
//! caller with values from a user checks them first, as `reader-client` does; whatever
//! `parse` returns always rebuilds to the same command.

use super::response::Dgi;
use super::{install_p1, key_type, object, status_p1, status_p2, store_data_p1};
use super::{CLA, PUT_KEY_P2_KEY_SET};
use crate::ins::gp as ins;
use crate::{Cla, Command, Status};
use std::borrow::Cow;

/// Le `00` of a short command: the card answers what it has.
const LE: usize = 256;

/// The secure-messaging bit of a class byte: `04` in the first layout (channels 0-3),
/// `20` in the further layout (4-19), as the secure channel reads it.
fn has_sm(cla: u8) -> bool {
    let bit = if cla & 0x40 == 0 { 0x04 } else { 0x20 };
    cla & bit != 0
}

fn expect_ins(cmd: &Command<'_>, ins: u8) -> Result<(), Status> {
    if cmd.ins == ins {
        Ok(())
    } else {
        Err(Status::InsNotSupported)
    }
}

/// INITIALIZE UPDATE, `80 50 <KVN> 00 Lc <host challenge> 00` (Card Spec v2.3.1 §E.5.1;
/// Amendment D §7.1.1): opens a secure channel on key set `kvn` (`00`: the default set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitializeUpdate {
    pub kvn: u8,
    /// 8 bytes (SCP02, SCP03 S8) or 16 bytes (SCP03 S16).
    pub host_challenge: Vec<u8>,
}

impl InitializeUpdate {
    pub fn to_command(&self) -> Command<'static> {
        Command::new(CLA, ins::INITIALIZE_UPDATE, self.kvn, 0x00)
            .with_data(self.host_challenge.clone())
            .with_le(LE)
    }

    /// Everything wrong with INITIALIZE UPDATE is `6700`, as the secure channel answers:
    /// a class that is not GlobalPlatform or carries secure messaging, P2 other than `00`,
    /// a challenge of neither 8 nor 16 bytes.
    pub fn parse(cmd: &Command<'_>) -> Result<Self, Status> {
        expect_ins(cmd, ins::INITIALIZE_UPDATE)?;
        let cla = Cla::decode(cmd.cla).map_err(|_| Status::WrongLength)?;
        if !cla.is_proprietary() || has_sm(cmd.cla) || cmd.p2 != 0x00 {
            return Err(Status::WrongLength);
        }
        let challenge = cmd.data();
        if challenge.len() != 8 && challenge.len() != 16 {
            return Err(Status::WrongLength);
        }
        Ok(InitializeUpdate {
            kvn: cmd.p1,
            host_challenge: challenge.to_vec(),
        })
    }
}

/// EXTERNAL AUTHENTICATE, `84 82 <level> 00 Lc <host cryptogram> <C-MAC>` (Card Spec
/// v2.3.1 §E.5.2; Amendment D §7.1.2): the header and the split of the data only. The
/// level's meaning, the cryptogram and the MAC are the secure channel's to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAuthenticate {
    /// P1: the security level asked for (`01` C-MAC, `03` C-DEC + C-MAC, `33` all).
    pub level: u8,
    /// 8 bytes (S8) or 16 (S16).
    pub host_cryptogram: Vec<u8>,
    /// As long as the cryptogram.
    pub mac: Vec<u8>,
}

impl ExternalAuthenticate {
    /// Class `84`: this command always carries a C-MAC.
    pub fn to_command(&self) -> Command<'static> {
        let mut data = self.host_cryptogram.clone();
        data.extend_from_slice(&self.mac);
        Command::new(CLA | 0x04, ins::EXTERNAL_AUTHENTICATE, self.level, 0x00).with_data(data)
    }

    /// `6982` without the secure-messaging bit (the command must carry its MAC), `6700`
    /// for P2 other than `00` or data that is not cryptogram and MAC of 8 or 16 bytes each.
    pub fn parse(cmd: &Command<'_>) -> Result<Self, Status> {
        expect_ins(cmd, ins::EXTERNAL_AUTHENTICATE)?;
        if cmd.cla & 0x80 == 0 || !has_sm(cmd.cla) {
            return Err(Status::SecurityStatusNotSatisfied);
        }
        if cmd.p2 != 0x00 {
            return Err(Status::WrongLength);
        }
        let data = cmd.data();
        if data.len() != 16 && data.len() != 32 {
            return Err(Status::WrongLength);
        }
        let (cryptogram, mac) = data.split_at(data.len() / 2);
        Ok(ExternalAuthenticate {
            level: cmd.p1,
            host_cryptogram: cryptogram.to_vec(),
            mac: mac.to_vec(),
        })
    }
}

/// What GET STATUS lists (P1, Card Spec v2.3.1 §11.4.2.1, Table 11-33).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusScope {
    /// `80`: the issuer security domain.
    Isd,
    /// `40`: applications and security domains.
    Applications,
    /// `20`: executable load files.
    LoadFiles,
    /// `10`: executable load files and their modules.
    LoadFilesAndModules,
    /// Any other P1: refused in a first GET STATUS (`6A86`), carried along in a "next" one
    /// (the card continues the listing it started and does not read P1 again).
    Other(u8),
}

impl StatusScope {
    pub fn p1(self) -> u8 {
        match self {
            StatusScope::Isd => status_p1::ISD,
            StatusScope::Applications => status_p1::APPLICATIONS,
            StatusScope::LoadFiles => status_p1::LOAD_FILES,
            StatusScope::LoadFilesAndModules => status_p1::LOAD_FILES_AND_MODULES,
            StatusScope::Other(p1) => p1,
        }
    }

    pub fn from_p1(p1: u8) -> StatusScope {
        match p1 {
            status_p1::ISD => StatusScope::Isd,
            status_p1::APPLICATIONS => StatusScope::Applications,
            status_p1::LOAD_FILES => StatusScope::LoadFiles,
            status_p1::LOAD_FILES_AND_MODULES => StatusScope::LoadFilesAndModules,
            other => StatusScope::Other(other),
        }
    }
}

/// GET STATUS, `80 F2 <scope> <02|03> Lc 4F <n> <AID prefix> 00` (Card Spec v2.3.1 §11.4),
/// answers in tag format ([`super::RegistryEntry`]); `6310` when more entries follow, fetched
/// with `next` set (P2 `03`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetStatus {
    pub scope: StatusScope,
    /// Entries whose AID starts with this (empty: all).
    pub aid_prefix: Vec<u8>,
    /// P2 `03`: the entries after those already answered.
    pub next: bool,
}

impl GetStatus {
    /// The first GET STATUS of `scope`, every AID.
    pub fn all(scope: StatusScope) -> GetStatus {
        GetStatus {
            scope,
            aid_prefix: Vec::new(),
            next: false,
        }
    }

    pub fn to_command(&self) -> Command<'static> {
        let p2 = if self.next {
            status_p2::NEXT
        } else {
            status_p2::FIRST
        };
        let mut data = vec![0x4F, self.aid_prefix.len() as u8];
        data.extend_from_slice(&self.aid_prefix);
        Command::new(CLA, ins::GET_STATUS, self.scope.p1(), p2)
            .with_data(data)
            .with_le(LE)
    }

    /// A first GET STATUS needs `4F <n> <n bytes>` (`6A80`) and a known scope (`6A86`); a
    /// "next" one is taken as it comes (its P1 and data repeat the first); any other P2
    /// (only the tag format is offered) is `6A86`.
    pub fn parse(cmd: &Command<'_>) -> Result<Self, Status> {
        expect_ins(cmd, ins::GET_STATUS)?;
        let filter = match cmd.data() {
            [0x4F, n, aid @ ..] if usize::from(*n) == aid.len() => Some(aid.to_vec()),
            _ => None,
        };
        let scope = StatusScope::from_p1(cmd.p1);
        match cmd.p2 {
            status_p2::NEXT => Ok(GetStatus {
                scope,
                aid_prefix: filter.unwrap_or_default(),
                next: true,
            }),
            status_p2::FIRST => {
                let aid_prefix = filter.ok_or(Status::IncorrectData)?;
                if let StatusScope::Other(_) = scope {
                    return Err(Status::IncorrectP1P2);
                }
                Ok(GetStatus {
                    scope,
                    aid_prefix,
                    next: false,
                })
            }
            _ => Err(Status::IncorrectP1P2),
        }
    }
}

/// GET DATA, `80 CA <tag> 00` (Card Spec v2.3.1 §11.3): one of [`object::ALL`] (card data,
/// CPLC, key information template).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetData {
    /// P1-P2: the tag of the data object ([`object`]).
    pub object: u16,
}

impl GetData {
    pub fn to_command(&self) -> Command<'static> {
        let [p1, p2] = self.object.to_be_bytes();
        Command::new(CLA, ins::GET_DATA, p1, p2).with_le(LE)
    }

    /// `6A88` for an object the card does not offer; command data is ignored.
    pub fn parse(cmd: &Command<'_>) -> Result<Self, Status> {
        expect_ins(cmd, ins::GET_DATA)?;
        let object = u16::from_be_bytes([cmd.p1, cmd.p2]);
        if !object::ALL.contains(&object) {
            return Err(Status::ReferencedDataNotFound);
        }
        Ok(GetData { object })
    }
}

/// Key type of a PUT KEY component (Table 11-16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `80`: a 16-byte two-key 3DES key (SCP02), 3DES-ECB under the session DEK.
    Des,
    /// `88`: an AES key (SCP03), AES-CBC under the static DEK, with its clear length.
    Aes,
}

impl KeyType {
    pub fn code(self) -> u8 {
        match self {
            KeyType::Des => key_type::DES,
            KeyType::Aes => key_type::AES,
        }
    }
}

/// One key of PUT KEY (Card Spec v2.3.1 §11.8.2.3, Amendment D §7.2): type, the key
/// encrypted under the DEK, and its key check value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyComponent {
    pub key_type: KeyType,
    /// The clear key's length: sent for AES (first byte of the key data); DES keys are
    /// 16 bytes and the length is not sent.
    pub key_len: u8,
    pub encrypted: Vec<u8>,
    /// `03 <KCV>`: the first three bytes of the key encrypting a block of `00` (DES) or
    /// `01` (AES).
    pub kcv: [u8; 3],
}

/// The length of a DES key component (two-key 3DES).
const DES_KEY_LEN: u8 = 16;

impl KeyComponent {
    fn push(&self, out: &mut Vec<u8>) {
        out.push(self.key_type.code());
        match self.key_type {
            KeyType::Aes => {
                out.push((self.encrypted.len() + 1) as u8);
                out.push(self.key_len);
            }
            KeyType::Des => out.push(self.encrypted.len() as u8),
        }
        out.extend_from_slice(&self.encrypted);
        out.push(self.kcv.len() as u8);
        out.extend_from_slice(&self.kcv);
    }

    /// One component from the front of `rest`, with what follows. `6700` for a truncated
    /// component, a missing `03 <KCV>` or an AES key without its length; `6A80` for a
    /// type other than DES or AES.
    fn read(rest: &[u8]) -> Result<(KeyComponent, &[u8]), Status> {
        let [code, len, tail @ ..] = rest else {
            return Err(Status::WrongLength);
        };
        let (block, tail) = tail
            .split_at_checked(usize::from(*len))
            .ok_or(Status::WrongLength)?;
        let [3, k0, k1, k2, tail @ ..] = tail else {
            return Err(Status::WrongLength);
        };
        let (key_type, key_len, encrypted) = match *code {
            key_type::AES => {
                let (&n, enc) = block.split_first().ok_or(Status::WrongLength)?;
                (KeyType::Aes, n, enc)
            }
            key_type::DES => (KeyType::Des, DES_KEY_LEN, block),
            _ => return Err(Status::IncorrectData),
        };
        let component = KeyComponent {
            key_type,
            key_len,
            encrypted: encrypted.to_vec(),
            kcv: [*k0, *k1, *k2],
        };
        Ok((component, tail))
    }
}

/// PUT KEY of a whole key set, `80 D8 <old KVN|00> 81 Lc <new KVN> <ENC> <MAC> <DEK> 00`
/// (Card Spec v2.3.1 §11.8; Amendment D §7.2): replaces key set `replace_kvn` (`None`, P1
/// `00`: adds one) with keys 1, 2, 3 (P2 `81`: several keys from identifier 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutKey {
    pub replace_kvn: Option<u8>,
    pub new_kvn: u8,
    /// ENC, MAC and DEK, all of one type.
    pub keys: [KeyComponent; 3],
}

impl PutKey {
    pub fn to_command(&self) -> Command<'static> {
        let mut data = vec![self.new_kvn];
        for k in &self.keys {
            k.push(&mut data);
        }
        Command::new(
            CLA,
            ins::PUT_KEY,
            self.replace_kvn.unwrap_or(0x00),
            PUT_KEY_P2_KEY_SET,
        )
        .with_data(data)
        .with_le(LE)
    }

    /// What the card answers on success: the new KVN and the three check values.
    pub fn confirmation(&self) -> super::PutKeyConfirmation {
        super::PutKeyConfirmation {
            kvn: self.new_kvn,
            kcvs: self.keys.iter().map(|k| k.kcv).collect(),
        }
    }

    /// `6A86` for P2 other than `81`; `6700` for missing or truncated data, other than
    /// three keys, or bytes after them; `6A80` for a key type other than DES or AES, or a
    /// set that mixes them. Decryption and check values are the card's (`6A80`).
    pub fn parse(cmd: &Command<'_>) -> Result<Self, Status> {
        expect_ins(cmd, ins::PUT_KEY)?;
        if cmd.p2 != PUT_KEY_P2_KEY_SET {
            return Err(Status::IncorrectP1P2);
        }
        let (&new_kvn, rest) = cmd.data().split_first().ok_or(Status::WrongLength)?;
        let (enc, rest) = KeyComponent::read(rest)?;
        let (mac, rest) = KeyComponent::read(rest)?;
        if mac.key_type != enc.key_type {
            return Err(Status::IncorrectData);
        }
        let (dek, rest) = KeyComponent::read(rest)?;
        if dek.key_type != enc.key_type {
            return Err(Status::IncorrectData);
        }
        if !rest.is_empty() {
            return Err(Status::WrongLength);
        }
        Ok(PutKey {
            replace_kvn: (cmd.p1 != 0).then_some(cmd.p1),
            new_kvn,
            keys: [enc, mac, dek],
        })
    }
}

/// INSTALL (Card Spec v2.3.1 §11.5): [for load], [for install] and/or [for make selectable],
/// and [for personalization], by P1 ([`install_p1`]). P2 is always `00`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// §11.5.2.3, `80 E6 20 00 Lc 00 00 <n> <AID> 00 00 00 00`: the application (here: a
    /// container, by its ISD-P or application AID) that the following STORE DATA commands
    /// personalize. No load file, module, privileges, parameters or token.
    ForPersonalization { aid: Vec<u8> },
    /// §11.5.2.1 (Table 11-46), `80 E6 02 00 Lc <n> <load file AID> <n> <security domain AID>
    /// <n> <hash> <n> <load parameters> <n> <token> 00`: announces the LOAD commands that
    /// follow. The hash is not built (length `00`) and, when received, is checked for its
    /// length and ignored; the token is always empty.
    ForLoad {
        /// The executable load file's AID (5..=16 bytes).
        load_file_aid: Vec<u8>,
        /// The security domain (here: the ISD-P of a container) that will hold the load
        /// file; empty for the card's choice. 0 or 5..=16 bytes.
        security_domain_aid: Vec<u8>,
        /// Load parameters as sent (§11.5.2.3.7; usually empty), not interpreted here.
        load_parameters: Vec<u8>,
    },
    /// §11.5.2.2 (Table 11-47), `80 E6 <04|08|0C> 00 Lc <n> <executable load file AID> <n>
    /// <module AID> <n> <application AID> <n> <privileges> <n> <install parameters> <n>
    /// <token> 00`: P1 `0C` installs and makes selectable (`make_selectable`), `04` installs
    /// only. P1 `08` alone (§11.5.2.3.3, [for make selectable] of an installed application)
    /// is the same variant with `make_selectable` and an empty load file and module AID:
    /// [`Install::to_command`] sends `08` for exactly that shape.
    ForInstall {
        /// The executable load file (5..=16 bytes; empty for P1 `08` only).
        load_file_aid: Vec<u8>,
        /// The executable module in it (5..=16 bytes; empty for P1 `08` only).
        module_aid: Vec<u8>,
        /// The new application's AID (5..=16 bytes).
        application_aid: Vec<u8>,
        /// 1 or 3 bytes (§6.6.1); `00`: none.
        privileges: Vec<u8>,
        /// The install parameters field: `C9` application specific, `EF` system specific.
        parameters: InstallParameters,
        /// P1 b4: make the application selectable in the same command.
        make_selectable: bool,
    },
}

/// The install parameters field of INSTALL [for install] (Card Spec v2.3.1 §11.5.2.3.7,
/// Tables 11-49 and 11-50): `C9 <n> <application specific>` (required, may be empty) and
/// optionally `EF { C8 <n> <non-volatile memory quota> }` (system specific). Other tags
/// (at the top level or inside `EF`) are skipped when read and not rebuilt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallParameters {
    /// The value of `C9` (application specific), empty when absent.
    pub application: Vec<u8>,
    /// `EF { C8 02 nn nn }`: the non-volatile memory quota in bytes (§11.5.2.3.7; the
    /// applet's storage), `None` when absent.
    pub non_volatile_quota: Option<u32>,
}

/// Tags of the install parameters field (Tables 11-49, 11-50).
const TAG_APPLICATION_PARAMETERS: u32 = 0xC9;
const TAG_SYSTEM_PARAMETERS: u32 = 0xEF;
const TAG_NON_VOLATILE_QUOTA: u32 = 0xC8;

impl InstallParameters {
    /// `C9 <n> <application>` then, with a quota, `EF { C8 <2 or 4 bytes> }`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = crate::tlv::build(TAG_APPLICATION_PARAMETERS, &self.application);
        if let Some(q) = self.non_volatile_quota {
            // Two bytes as GlobalPlatform shows it, four for a quota above 65 535.
            let quota = match u16::try_from(q) {
                Ok(short) => short.to_be_bytes().to_vec(),
                Err(_) => q.to_be_bytes().to_vec(),
            };
            let ef = crate::tlv::build(TAG_NON_VOLATILE_QUOTA, &quota);
            crate::tlv::push(&mut out, TAG_SYSTEM_PARAMETERS, &ef);
        }
        out
    }

    /// `6A80` unless the bytes are BER-TLV objects with a `C9` (possibly empty), and any
    /// `EF` holds TLV objects whose `C8`, if present, has 1..=4 bytes.
    pub fn parse(bytes: &[u8]) -> Result<InstallParameters, Status> {
        let fields = crate::der::read_all(bytes).map_err(|_| Status::IncorrectData)?;
        let application = crate::der::find(&fields, TAG_APPLICATION_PARAMETERS)
            .ok_or(Status::IncorrectData)?
            .to_vec();
        let non_volatile_quota = match crate::der::find(&fields, TAG_SYSTEM_PARAMETERS) {
            None => None,
            Some(ef) => {
                let system = crate::der::read_all(ef).map_err(|_| Status::IncorrectData)?;
                match crate::der::find(&system, TAG_NON_VOLATILE_QUOTA) {
                    None => None,
                    Some(q) if (1..=4).contains(&q.len()) => {
                        Some(q.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
                    }
                    Some(_) => return Err(Status::IncorrectData),
                }
            }
        };
        Ok(InstallParameters {
            application,
            non_volatile_quota,
        })
    }
}

/// Reads the one-byte-length fields of INSTALL data (`<n> <n bytes>` each); every failure
/// is `6A80`.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn next(&mut self) -> Result<&'a [u8], Status> {
        let (&n, rest) = self.0.split_first().ok_or(Status::IncorrectData)?;
        let (field, rest) = rest
            .split_at_checked(usize::from(n))
            .ok_or(Status::IncorrectData)?;
        self.0 = rest;
        Ok(field)
    }

    fn aid(&mut self) -> Result<&'a [u8], Status> {
        let aid = self.next()?;
        if !(5..=16).contains(&aid.len()) {
            return Err(Status::IncorrectData);
        }
        Ok(aid)
    }

    /// An empty AID or one of 5..=16 bytes.
    fn optional_aid(&mut self) -> Result<&'a [u8], Status> {
        let aid = self.next()?;
        if !aid.is_empty() && !(5..=16).contains(&aid.len()) {
            return Err(Status::IncorrectData);
        }
        Ok(aid)
    }

    /// An empty token, and nothing after it.
    fn end(mut self) -> Result<(), Status> {
        if !self.next()?.is_empty() || !self.0.is_empty() {
            return Err(Status::IncorrectData);
        }
        Ok(())
    }
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    out.push(field.len() as u8);
    out.extend_from_slice(field);
}

impl Install {
    pub fn to_command(&self) -> Command<'static> {
        let (p1, data) = match self {
            Install::ForPersonalization { aid } => {
                let mut data = vec![0x00, 0x00, aid.len() as u8];
                data.extend_from_slice(aid);
                data.extend_from_slice(&[0x00, 0x00, 0x00]);
                (install_p1::FOR_PERSONALIZATION, data)
            }
            Install::ForLoad {
                load_file_aid,
                security_domain_aid,
                load_parameters,
            } => {
                let mut data = Vec::new();
                push_field(&mut data, load_file_aid);
                push_field(&mut data, security_domain_aid);
                push_field(&mut data, &[]);
                push_field(&mut data, load_parameters);
                push_field(&mut data, &[]);
                (install_p1::FOR_LOAD, data)
            }
            Install::ForInstall {
                load_file_aid,
                module_aid,
                application_aid,
                privileges,
                parameters,
                make_selectable,
            } => {
                let selectable_only =
                    *make_selectable && load_file_aid.is_empty() && module_aid.is_empty();
                let p1 = match (selectable_only, make_selectable) {
                    (true, _) => install_p1::FOR_MAKE_SELECTABLE,
                    (false, true) => install_p1::FOR_INSTALL | install_p1::FOR_MAKE_SELECTABLE,
                    (false, false) => install_p1::FOR_INSTALL,
                };
                let params = if selectable_only && *parameters == InstallParameters::default() {
                    Vec::new()
                } else {
                    parameters.to_bytes()
                };
                let mut data = Vec::new();
                push_field(&mut data, load_file_aid);
                push_field(&mut data, module_aid);
                push_field(&mut data, application_aid);
                push_field(&mut data, privileges);
                push_field(&mut data, &params);
                push_field(&mut data, &[]);
                (p1, data)
            }
        };
        Command::new(CLA, ins::INSTALL, p1, 0x00)
            .with_data(data)
            .with_le(LE)
    }

    /// By P1 (`6A86` for P2 other than `00` or a P1 other than `02`, `04`, `08`, `0C`,
    /// `20`), then the data, whose every refusal is `6A80`:
    /// - `20`: the data start `00 00 <n>` with n AID bytes (what follows is not read).
    /// - `02`: load file AID of 5..=16 bytes, security domain AID empty or 5..=16, a hash
    ///   (ignored), load parameters, an empty token, nothing after.
    /// - `04`, `0C`: load file, module and application AIDs of 5..=16 bytes, privileges of
    ///   1 or 3 bytes, install parameters ([`InstallParameters::parse`]), an empty token,
    ///   nothing after.
    /// - `08`: as `0C` with the load file and module AIDs empty, and the install parameters
    ///   empty or as for `0C`.
    pub fn parse(cmd: &Command<'_>) -> Result<Self, Status> {
        expect_ins(cmd, ins::INSTALL)?;
        if cmd.p2 != 0x00 {
            return Err(Status::IncorrectP1P2);
        }
        const INSTALL_AND_SELECTABLE: u8 =
            install_p1::FOR_INSTALL | install_p1::FOR_MAKE_SELECTABLE;
        match cmd.p1 {
            install_p1::FOR_PERSONALIZATION => match cmd.data() {
                [0, 0, n, rest @ ..] if rest.len() >= usize::from(*n) => {
                    Ok(Install::ForPersonalization {
                        aid: rest[..usize::from(*n)].to_vec(),
                    })
                }
                _ => Err(Status::IncorrectData),
            },
            install_p1::FOR_LOAD => {
                let mut f = Fields(cmd.data());
                let load_file_aid = f.aid()?.to_vec();
                let security_domain_aid = f.optional_aid()?.to_vec();
                let _hash = f.next()?;
                let load_parameters = f.next()?.to_vec();
                f.end()?;
                Ok(Install::ForLoad {
                    load_file_aid,
                    security_domain_aid,
                    load_parameters,
                })
            }
            p1 @ (install_p1::FOR_INSTALL
            | install_p1::FOR_MAKE_SELECTABLE
            | INSTALL_AND_SELECTABLE) => {
                let selectable_only = p1 == install_p1::FOR_MAKE_SELECTABLE;
                let mut f = Fields(cmd.data());
                let (load_file_aid, module_aid) = if selectable_only {
                    let (elf, module) = (f.next()?, f.next()?);
                    if !elf.is_empty() || !module.is_empty() {
                        return Err(Status::IncorrectData);
                    }
                    (Vec::new(), Vec::new())
                } else {
                    (f.aid()?.to_vec(), f.aid()?.to_vec())
                };
                let application_aid = f.aid()?.to_vec();
                let privileges = f.next()?.to_vec();
                if privileges.len() != 1 && privileges.len() != 3 {
                    return Err(Status::IncorrectData);
                }
                let params = f.next()?;
                let parameters = if selectable_only && params.is_empty() {
                    InstallParameters::default()
                } else {
                    InstallParameters::parse(params)?
                };
                f.end()?;
                Ok(Install::ForInstall {
                    load_file_aid,
                    module_aid,
                    application_aid,
                    privileges,
                    parameters,
                    make_selectable: p1 & install_p1::FOR_MAKE_SELECTABLE != 0,
                })
            }
            _ => Err(Status::IncorrectP1P2),
        }
    }
}

/// LOAD, `80 E8 <00|80> <block> Lc <block of the load file> 00` (Card Spec v2.3.1 §11.6):
/// one block of the load file data block (`C4 <length> <load file>`, see [`Load::blocks`]
/// and [`load_file_data`]) after INSTALL [for load]; P1 `80` marks the last block, P2
/// numbers them from `00`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    /// P1 `80`: the last block (`00`: more follow).
    pub last: bool,
    /// P2: the block number, from `00` (modulo 256 for a file of more than 256 blocks).
    pub block: u8,
    pub data: Vec<u8>,
}

/// LOAD P1 (§11.6.2.1): b8 set on the last block.
const LOAD_LAST_BLOCK: u8 = 0x80;
/// The tag of the load file data block (§11.6.2.3).
const TAG_LOAD_FILE_DATA_BLOCK: u32 = 0xC4;

impl Load {
    pub fn to_command(&self) -> Command<'static> {
        let p1 = if self.last { LOAD_LAST_BLOCK } else { 0x00 };
        Command::new(CLA, ins::LOAD, p1, self.block)
            .with_data(self.data.clone())
            .with_le(LE)
    }

    /// `6A86` for P1 other than `00` or `80`; `6700` for a block without data. The block
    /// number (P2) is the card's to check against the sequence.
    pub fn parse(cmd: &Command<'_>) -> Result<Load, Status> {
        expect_ins(cmd, ins::LOAD)?;
        let last = match cmd.p1 {
            0x00 => false,
            LOAD_LAST_BLOCK => true,
            _ => return Err(Status::IncorrectP1P2),
        };
        if cmd.data().is_empty() {
            return Err(Status::WrongLength);
        }
        Ok(Load {
            last,
            block: cmd.p2,
            data: cmd.data().to_vec(),
        })
    }

    /// Split a load file into LOAD commands: `C4 <BER length> <module>` cut into blocks of
    /// at most `block_size` bytes (at least 1), numbered from 0 (wrapping after `FF`), the
    /// last one flagged. Under a secure channel with C-MAC and C-DECRYPTION and short
    /// APDUs, 239 bytes is the largest block whose padded, MACed form fits Lc 255.
    pub fn blocks(module: &[u8], block_size: usize) -> Vec<Load> {
        let data = crate::tlv::build(TAG_LOAD_FILE_DATA_BLOCK, module);
        let chunks: Vec<&[u8]> = data.chunks(block_size.max(1)).collect();
        let n = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| Load {
                last: i + 1 == n,
                block: i as u8,
                data: chunk.to_vec(),
            })
            .collect()
    }
}

/// The card's side of LOAD (Card Spec v2.3.1 §11.6.2.3): the load file inside the
/// concatenated blocks, which must be exactly one `C4` data object (length `nn`, `81 nn`,
/// `82 nnnn` or `83 nnnnnn`) and nothing else; `6A80` otherwise.
pub fn load_file_data(concatenated: &[u8]) -> Result<&[u8], Status> {
    crate::der::read_expected(concatenated, TAG_LOAD_FILE_DATA_BLOCK)
        .map_err(|_| Status::IncorrectData)
}

/// STORE DATA, `80 E2 <P1> <block> Lc <data>` (Card Spec v2.3.1 §11.11): P1 says whether
/// this is the last block and how the data are structured ([`store_data_p1`]: DGIs for
/// personalization, BER-TLV for SGP.22 ES10, whose segmentation is
/// [`crate::es10::StoreDataAssembler`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreData<'a> {
    pub p1: u8,
    /// P2: the block number, from `00`.
    pub block: u8,
    /// Borrowed from the command when the card parses it (every ES10c request is a STORE
    /// DATA: no copy on that path), owned when the host builds it.
    pub data: Cow<'a, [u8]>,
}

impl StoreData<'static> {
    /// The only (last) block of DGIs, block `00` (P1 `88`).
    pub fn dgis(dgis: &[Dgi]) -> StoreData<'static> {
        StoreData {
            p1: store_data_p1::LAST_BLOCK | store_data_p1::DGI,
            block: 0,
            data: Cow::Owned(dgis.iter().flat_map(Dgi::to_bytes).collect()),
        }
    }
}

impl<'a> StoreData<'a> {
    /// The same block, owning its data.
    pub fn into_owned(self) -> StoreData<'static> {
        StoreData {
            p1: self.p1,
            block: self.block,
            data: Cow::Owned(self.data.into_owned()),
        }
    }

    pub fn is_last_block(&self) -> bool {
        self.p1 & store_data_p1::LAST_BLOCK != 0
    }

    /// Whether P1 says DGI format (b4; the card's test for personalization).
    pub fn is_dgi_format(&self) -> bool {
        self.p1 & store_data_p1::DGI != 0
    }

    /// Case 3: no Le (lpac sends ES10 blocks this way).
    pub fn to_command(&self) -> Command<'static> {
        Command::new(CLA, ins::STORE_DATA, self.p1, self.block).with_data(self.data.to_vec())
    }

    /// Any P1, P2 and data: what they mean depends on the sequence, which the card keeps.
    pub fn parse(cmd: &'a Command<'_>) -> Result<StoreData<'a>, Status> {
        expect_ins(cmd, ins::STORE_DATA)?;
        Ok(StoreData {
            p1: cmd.p1,
            block: cmd.p2,
            data: Cow::Borrowed(cmd.data()),
        })
    }

    /// The DGIs of the data (`6700` when one is truncated).
    pub fn read_dgis(&self) -> Result<Vec<(u16, &[u8])>, Status> {
        Dgi::read_all(&self.data)
    }
}

/// DELETE of one application or load file, `80 E4 00 <00|80> Lc 4F <n> <AID> 00` (Card Spec
/// v2.3.1 §11.2); P2 `80` deletes the object and its related objects (a load file with its
/// applications).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub aid: Vec<u8>,
    pub related: bool,
}

impl Delete {
    pub fn to_command(&self) -> Command<'static> {
        let mut data = vec![0x4F, self.aid.len() as u8];
        data.extend_from_slice(&self.aid);
        let p2 = if self.related { 0x80 } else { 0x00 };
        Command::new(CLA, ins::DELETE, 0x00, p2)
            .with_data(data)
            .with_le(LE)
    }

    /// `6A86` for P1 other than `00` (one command, not a series) or P2 other than `00`/`80`;
    /// `6A80` unless the data are exactly `4F <n> <AID of 5..=16 bytes>`.
    pub fn parse(cmd: &Command<'_>) -> Result<Self, Status> {
        expect_ins(cmd, ins::DELETE)?;
        if cmd.p1 != 0x00 || !matches!(cmd.p2, 0x00 | 0x80) {
            return Err(Status::IncorrectP1P2);
        }
        match cmd.data() {
            [0x4F, n, aid @ ..] if usize::from(*n) == aid.len() && (5..=16).contains(n) => {
                Ok(Delete {
                    aid: aid.to_vec(),
                    related: cmd.p2 == 0x80,
                })
            }
            _ => Err(Status::IncorrectData),
        }
    }
}

/// Any GlobalPlatform command of this codec, by instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpCommand<'a> {
    InitializeUpdate(InitializeUpdate),
    ExternalAuthenticate(ExternalAuthenticate),
    GetStatus(GetStatus),
    GetData(GetData),
    PutKey(PutKey),
    Install(Install),
    Load(Load),
    StoreData(StoreData<'a>),
    Delete(Delete),
}

impl<'a> GpCommand<'a> {
    /// The same command, owning its data.
    pub fn into_owned(self) -> GpCommand<'static> {
        match self {
            GpCommand::InitializeUpdate(c) => GpCommand::InitializeUpdate(c),
            GpCommand::ExternalAuthenticate(c) => GpCommand::ExternalAuthenticate(c),
            GpCommand::GetStatus(c) => GpCommand::GetStatus(c),
            GpCommand::GetData(c) => GpCommand::GetData(c),
            GpCommand::PutKey(c) => GpCommand::PutKey(c),
            GpCommand::Install(c) => GpCommand::Install(c),
            GpCommand::Load(c) => GpCommand::Load(c),
            GpCommand::StoreData(c) => GpCommand::StoreData(c.into_owned()),
            GpCommand::Delete(c) => GpCommand::Delete(c),
        }
    }

    pub fn to_command(&self) -> Command<'static> {
        match self {
            GpCommand::InitializeUpdate(c) => c.to_command(),
            GpCommand::ExternalAuthenticate(c) => c.to_command(),
            GpCommand::GetStatus(c) => c.to_command(),
            GpCommand::GetData(c) => c.to_command(),
            GpCommand::PutKey(c) => c.to_command(),
            GpCommand::Install(c) => c.to_command(),
            GpCommand::Load(c) => c.to_command(),
            GpCommand::StoreData(c) => c.to_command(),
            GpCommand::Delete(c) => c.to_command(),
        }
    }

    /// `6E00` for an interindustry class, `6D00` for an instruction not in
    /// [`crate::ins::gp`], otherwise the command's own `parse`.
    pub fn parse(cmd: &'a Command<'_>) -> Result<GpCommand<'a>, Status> {
        if cmd.cla & 0x80 == 0 {
            return Err(Status::ClaNotSupported);
        }
        Ok(match cmd.ins {
            ins::INITIALIZE_UPDATE => GpCommand::InitializeUpdate(InitializeUpdate::parse(cmd)?),
            ins::EXTERNAL_AUTHENTICATE => {
                GpCommand::ExternalAuthenticate(ExternalAuthenticate::parse(cmd)?)
            }
            ins::GET_STATUS => GpCommand::GetStatus(GetStatus::parse(cmd)?),
            ins::GET_DATA => GpCommand::GetData(GetData::parse(cmd)?),
            ins::PUT_KEY => GpCommand::PutKey(PutKey::parse(cmd)?),
            ins::INSTALL => GpCommand::Install(Install::parse(cmd)?),
            ins::LOAD => GpCommand::Load(Load::parse(cmd)?),
            ins::STORE_DATA => GpCommand::StoreData(StoreData::parse(cmd)?),
            ins::DELETE => GpCommand::Delete(Delete::parse(cmd)?),
            _ => return Err(Status::InsNotSupported),
        })
    }
}
