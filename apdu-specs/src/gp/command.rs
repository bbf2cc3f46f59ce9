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

/// INSTALL (Card Spec v2.3.1 §11.5). The card offers only INSTALL [for personalization].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// §11.5.2.3, `80 E6 20 00 Lc 00 00 <n> <AID> 00 00 00 00`: the application (here: a
    /// container, by its ISD-P or application AID) that the following STORE DATA commands
    /// personalize. No load file, module, privileges, parameters or token.
    ForPersonalization { aid: Vec<u8> },
}

impl Install {
    pub fn to_command(&self) -> Command<'static> {
        match self {
            Install::ForPersonalization { aid } => {
                let mut data = vec![0x00, 0x00, aid.len() as u8];
                data.extend_from_slice(aid);
                data.extend_from_slice(&[0x00, 0x00, 0x00]);
                Command::new(CLA, ins::INSTALL, install_p1::FOR_PERSONALIZATION, 0x00)
                    .with_data(data)
                    .with_le(LE)
            }
        }
    }

    /// `6A86` for any other INSTALL (P1-P2 other than `20 00`); `6A80` unless the data
    /// start `00 00 <n>` with n AID bytes (what follows the AID is not read).
    pub fn parse(cmd: &Command<'_>) -> Result<Self, Status> {
        expect_ins(cmd, ins::INSTALL)?;
        if (cmd.p1, cmd.p2) != (install_p1::FOR_PERSONALIZATION, 0x00) {
            return Err(Status::IncorrectP1P2);
        }
        match cmd.data() {
            [0, 0, n, rest @ ..] if rest.len() >= usize::from(*n) => {
                Ok(Install::ForPersonalization {
                    aid: rest[..usize::from(*n)].to_vec(),
                })
            }
            _ => Err(Status::IncorrectData),
        }
    }
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
/// v2.3.1 §11.2); P2 `80` deletes the object and its related objects. Not offered by the
/// card (`6D00`); here for clients of other cards.
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
            ins::STORE_DATA => GpCommand::StoreData(StoreData::parse(cmd)?),
            ins::DELETE => GpCommand::Delete(Delete::parse(cmd)?),
            _ => return Err(Status::InsNotSupported),
        })
    }
}
