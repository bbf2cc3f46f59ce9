//! The card manager's GlobalPlatform commands (Card Specification v2.3.1 §11, Amendment D):
//! INITIALIZE UPDATE, GET STATUS, GET DATA, PUT KEY, and INSTALL [for personalization] with
//! STORE DATA of DGIs, which writes into any container (admin mode, inside a secure channel).
//!
//! Each command is parsed by its `apdu_specs::gp` type after the card's policy had its say
//! (so a refused channel answers 6982 before any parameter is looked at); what needs the
//! card's state (key sets, containers, the session's DEK) is checked here.

use super::card_manager::ManagementSession;
use crate::commands::{Ctx, Outcome, Response};
use crate::secure::ChannelScp;
use crate::state::{FileBody, KeySet, TrustAnchor};
use crate::vm::policy::{enter_admin, Function};
use crate::vm::{Admin, Vm};
use apdu_specs::gp::{
    self, CardRecognitionData, Cplc, GetData, GetStatus, Install, KeyInfo, KeyInformation, KeyType,
    PutKey, RegistryEntry, StatusScope, StoreData,
};
use apdu_specs::{Command, Status};
use secure_channel::SecurityLevel;
use secure_channel::{
    kcv_aes, kcv_des3, scp02, scp03, AnySession, CardChallenge, CardConfig, InitializeUpdate,
    ScpError, StaticKeys,
};

fn scp_status(e: ScpError) -> Status {
    Status::from_u16(e.status_word())
}

/// Admin mode for a GlobalPlatform management function, as the card's policy decides
/// (6982 when it refuses the channel: GP management needs an authenticated secure channel;
/// 6985 when it refuses a trust anchor while test keys remain).
fn admin<'v, 'a>(
    vm: &'v mut Vm<'a>,
    function: Function,
    secure: Option<SecurityLevel>,
) -> Result<Admin<'v, 'a>, Status> {
    enter_admin(vm, function, secure).map_err(|d| d.status())
}

// GP Amendment D §7.1 (SCP03) / Card Spec E.5.1 (SCP02): INITIALIZE UPDATE.
pub fn initialize_update(ctx: &mut Ctx, session: &mut ManagementSession, cmd: &Command) -> Outcome {
    ctx.chan.scp = None;
    // A load belongs to the secure channel it started in: a new one abandons it.
    session.load = None;
    let parsed = gp::InitializeUpdate::parse(cmd)?;
    let channel = apdu_specs::Cla::decode(cmd.cla)
        .map_err(|_| Status::WrongLength)?
        .channel();
    let iu = InitializeUpdate::on_channel(channel, parsed);
    // KVN 00 means "the default key set": the first SCP03 set.
    let set: KeySet = ctx
        .vm
        .key_sets()
        .iter()
        .find(|k| {
            if iu.kvn == 0 {
                k.scp == 3
            } else {
                k.kvn == iu.kvn
            }
        })
        .cloned()
        .ok_or(Status::ReferencedDataNotFound)?;
    let keys = StaticKeys::new(&set.enc, &set.mac, &set.dek).map_err(scp_status)?;
    let (session, data) = match set.scp {
        3 => {
            // The counter is incremented and durable before it is used (Amd D §6.2.2.1).
            let seq = ctx
                .vm
                .next_scp03_counter(scp03::MAX_SEQUENCE_COUNTER)
                .ok_or(Status::ConditionsNotSatisfied)?;
            ctx.vm.commit()?;
            let config = CardConfig::scp03(set.kvn, &session.aid);
            let (s, data) = scp03::CardSession::initialize_update(
                &keys,
                &config,
                seq,
                &iu,
                CardChallenge::FromConfig,
            )
            .map_err(scp_status)?;
            (AnySession::Scp03(s), data)
        }
        _ => {
            let config = CardConfig::scp02(set.kvn, &session.aid);
            // The last value is never used: the counter could not advance past it, and a
            // session keyed on it could be replayed (the counter stops, it never wraps).
            let seq = ctx.vm.gp().scp02_counter;
            if seq == u16::MAX {
                return Err(Status::ConditionsNotSatisfied);
            }
            let (s, data) = scp02::CardSession::initialize_update(
                &keys,
                &config,
                seq,
                &iu,
                CardChallenge::FromConfig,
            )
            .map_err(scp_status)?;
            (AnySession::Scp02(s), data)
        }
    };
    ctx.chan.scp = Some(ChannelScp::new(session, set.kvn));
    Ok(Response::ok(data))
}

/// Largest GET STATUS answer before 6310 asks for the rest.
const STATUS_CHUNK: usize = 240;

/// ISD-P life cycle (SGP.02 §2.2.1.1): enabled 3F, disabled 1F.
fn isdp_life_cycle(enabled: bool) -> u8 {
    if enabled {
        0x3F
    } else {
        0x1F
    }
}

// GP Card Spec §11.4: GET STATUS, P1 80 (ISD) or 40 (applications and security domains),
// P2 02 (first, TLV format) or 03 (next); 6310 when more entries follow. A "next" without
// a listing in progress is 6A88.
pub fn get_status(ctx: &mut Ctx, session: &mut ManagementSession, cmd: &Command) -> Outcome {
    let admin = admin(&mut ctx.vm, Function::GetStatus, ctx.secure)?;
    let query = GetStatus::parse(cmd)?;
    let mut rest = if query.next {
        if session.status_rest.is_empty() {
            return Err(Status::ReferencedDataNotFound);
        }
        std::mem::take(&mut session.status_rest)
    } else {
        let mut entries = Vec::new();
        let mut push_entry = |entry: RegistryEntry| {
            if entry.aid.starts_with(&query.aid_prefix) {
                entries.extend(entry.to_bytes());
            }
        };
        let sd = |aid: &[u8], life_cycle: u8, privileges: [u8; 3]| RegistryEntry {
            aid: aid.to_vec(),
            life_cycle,
            privileges: Some(privileges.to_vec()),
            ..RegistryEntry::default()
        };
        match query.scope {
            // ISD: SECURED, security domain with card lock, terminate, CVM, ... privileges.
            StatusScope::Isd => push_entry(sd(
                &session.aid,
                gp::life_cycle::SECURED,
                [0x9E, 0xFE, 0x80],
            )),
            StatusScope::Applications => {
                for c in admin.containers() {
                    push_entry(sd(
                        &c.isdp_aid,
                        isdp_life_cycle(c.enabled),
                        [0x80, 0x00, 0x00],
                    ));
                    super::gp_load::application_entries(c, &mut push_entry);
                }
            }
            // The loaded applets' load files (the containers are not load files).
            StatusScope::LoadFiles => {
                super::gp_load::load_file_entries(&admin, false, &mut push_entry)
            }
            StatusScope::LoadFilesAndModules => {
                super::gp_load::load_file_entries(&admin, true, &mut push_entry)
            }
            StatusScope::Other(_) => return Err(Status::IncorrectP1P2),
        }
        entries
    };
    if rest.is_empty() {
        return Err(Status::ReferencedDataNotFound);
    }
    // Split at an entry boundary so each answer holds whole E3 objects.
    let mut cut = 0;
    let mut at = 0;
    while at < rest.len() {
        let len = rest.get(at + 1).copied().unwrap_or(0) as usize + 2;
        if at + len > STATUS_CHUNK && cut > 0 {
            break;
        }
        at += len;
        cut = at;
    }
    let cut = cut.min(rest.len());
    let more = rest.split_off(cut);
    if more.is_empty() {
        Ok(Response::ok(rest))
    } else {
        session.status_rest = more;
        Ok(Response::warn(rest, Status::MoreDataAvailable))
    }
}

/// CPLC (GP Card Spec §H.6): 42 bytes of chip and personalization data, serial from the EID.
fn cplc(eid: &[u8]) -> Cplc {
    let mut v = vec![
        0x56, 0x53, // IC fabricator: "VS"
        0x00, 0x01, // IC type
        0x56, 0x53, // OS identifier
        0x60, 0x01, // OS release date (2026, day 001 in YDDD)
        0x00, 0x01, // OS release level
        0x60, 0x01, // IC fabrication date
    ];
    let serial = eid.get(eid.len().saturating_sub(4)..).unwrap_or(&[]);
    v.extend_from_slice(serial);
    v.resize(Cplc::LEN, 0x00);
    let mut data = [0; Cplc::LEN];
    data.copy_from_slice(&v);
    Cplc { data }
}

/// Card recognition data (GP Card Spec §H.2): GP 2.3.1, SCP03 i=70 and SCP02 i=55.
fn card_data() -> CardRecognitionData {
    CardRecognitionData::new(&[2, 3, 1], &[(3, 0x70), (2, 0x55)])
}

// GP Card Spec §11.3: GET DATA of the card manager: CPLC, card data, key information.
pub fn get_data(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    let object = GetData::parse(cmd)?.object;
    Ok(Response::ok(match object {
        gp::object::CPLC => cplc(ctx.vm.eid()).to_bytes(),
        gp::object::CARD_DATA => card_data().to_bytes(),
        _ => {
            let mut info = KeyInformation::default();
            for set in ctx.vm.key_sets() {
                let (key_type, len) = if set.scp == 3 {
                    (gp::key_type::AES, set.enc.len() as u8)
                } else {
                    (gp::key_type::DES, 0x10)
                };
                for id in 1..=3u8 {
                    info.keys.push(KeyInfo::basic(id, set.kvn, key_type, len));
                }
            }
            info.to_bytes()
        }
    }))
}

// GP Card Spec §11.8 / Amendment D §7.2: PUT KEY replacing (P1 = KVN) or adding (P1 = 00)
// a key set of three keys (P2 = 81), each encrypted under the DEK and checked by its KCV.
pub fn put_key(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    let mut admin = admin(&mut ctx.vm, Function::PutKey, ctx.secure)?;
    // The card looks at P2 before it asks for the session's DEK, and at the data after.
    let parsed = PutKey::parse(cmd);
    if parsed == Err(Status::IncorrectP1P2) {
        return Err(Status::IncorrectP1P2);
    }
    let Some(scp) = ctx.chan.scp.as_ref() else {
        return Err(Status::SecurityStatusNotSatisfied);
    };
    let put = parsed?;
    let mut keys = Vec::new();
    for k in &put.keys {
        let clear = scp
            .decrypt_key(&k.encrypted, usize::from(k.key_len))
            .map_err(|_| Status::IncorrectData)?;
        let kcv = match k.key_type {
            KeyType::Aes => kcv_aes(&clear),
            KeyType::Des => kcv_des3(&clear),
        }
        .map_err(|_| Status::IncorrectData)?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&kcv[..], &k.kcv[..])) {
            return Err(Status::IncorrectData);
        }
        keys.push(clear.to_vec());
    }
    let new_kvn = put.new_kvn;
    let [enc, mac, dek] = <[Vec<u8>; 3]>::try_from(keys).map_err(|_| Status::WrongLength)?;
    let set = KeySet {
        kvn: new_kvn,
        scp: if put.keys[0].key_type == KeyType::Aes {
            3
        } else {
            2
        },
        enc,
        mac,
        dek,
    };
    let sets = admin.key_sets_mut();
    let clash = sets
        .iter()
        .any(|k| k.kvn == new_kvn && put.replace_kvn.is_none_or(|old| k.kvn != old));
    if clash {
        return Err(Status::IncorrectData);
    }
    match put.replace_kvn {
        None => sets.push(set),
        Some(old) => {
            *sets
                .iter_mut()
                .find(|k| k.kvn == old)
                .ok_or(Status::ReferencedDataNotFound)? = set
        }
    }
    Ok(Response::ok(put.confirmation().to_bytes()))
}

// GP Card Spec §11.5.2.3: INSTALL [for personalization] names the container (by its ISD-P
// AID or its application's AID) that the following DGI STORE DATA commands write into.
// INSTALL [for load] and [for install] are the loaded applets' (`gp_load`).
pub fn install(ctx: &mut Ctx, session: &mut ManagementSession, cmd: &Command) -> Outcome {
    // The policy has its say on the channel before any parameter is looked at.
    let function = if cmd.p1 == gp::install_p1::FOR_PERSONALIZATION {
        Function::Personalize
    } else {
        Function::ManageApplets
    };
    admin(&mut ctx.vm, function, ctx.secure)?;
    match Install::parse(cmd)? {
        Install::ForPersonalization { aid } => personalize(ctx, session, &aid),
        other => super::gp_load::install(ctx, session, other),
    }
}

fn personalize(ctx: &mut Ctx, session: &mut ManagementSession, aid: &[u8]) -> Outcome {
    let admin = admin(&mut ctx.vm, Function::Personalize, ctx.secure)?;
    let containers = admin.containers();
    // By ISD-P AID (the identity); by application AID only where that names one container
    // (or, shared by several, the enabled one among them): never the first in the list.
    let by_app: Vec<_> = containers
        .iter()
        .filter(|c| c.files.first().and_then(|f| f.name.as_deref()) == Some(aid))
        .collect();
    let id = match containers.iter().find(|c| c.isdp_aid == aid) {
        Some(c) => c.id(),
        None => match by_app.as_slice() {
            [] => return Err(Status::ReferencedDataNotFound),
            [one] => one.id(),
            several => several
                .iter()
                .find(|c| c.enabled)
                .map(|c| c.id())
                .ok_or(Status::IncorrectData)?,
        },
    };
    session.personalize = Some(id);
    Ok(Response::ok(vec![0x00]))
}

/// DGI of a trust anchor: `80` service id (UTF-8), `81` public key.
pub use apdu_specs::auth::DGI_TRUST_ANCHOR;

/// A trust anchor as DGI A001 carries it (mutual-auth.md, "Admin"): `80` service id of 1..32
/// bytes of UTF-8, `81` a SEC1 uncompressed point on P-256, nothing else; 6A80 otherwise.
fn trust_anchor(value: &[u8]) -> Result<TrustAnchor, Status> {
    let anchor = apdu_specs::auth::TrustAnchor::parse(value).map_err(|_| Status::IncorrectData)?;
    secure_channel::mutual::VerifyingKey::from_sec1(&anchor.server_public_key)
        .map_err(|_| Status::IncorrectData)?;
    Ok(TrustAnchor {
        service: anchor.service_id,
        public_key: anchor.server_public_key.to_vec(),
    })
}

// GP Card Spec §11.11 STORE DATA in DGI format, in admin mode: DGI = FID of a transparent EF
// of the container (its content from offset 0), or A001 = a trust anchor for a service, which
// the policy allows only under secret keys and C-MAC + C-DECRYPTION (Function::InstallTrustAnchor).
pub fn store_dgi(ctx: &mut Ctx, session: &mut ManagementSession, store: &StoreData) -> Outcome {
    let writes = store.read_dgis();
    // A trust anchor asks the policy for more (writes that do not parse are refused below,
    // after the policy had its say on the channel).
    let function = match &writes {
        Ok(w) if w.iter().any(|(dgi, _)| *dgi == DGI_TRUST_ANCHOR) => Function::InstallTrustAnchor,
        _ => Function::Personalize,
    };
    let mut admin = admin(&mut ctx.vm, function, ctx.secure)?;
    let id = session.personalize.ok_or(Status::ConditionsNotSatisfied)?;
    let writes = writes?;
    // Applied to a copy: a bad DGI leaves the container as it was. A container deleted
    // since INSTALL answers 6A88; no other container is ever written.
    admin.edit_container(id, |container| {
        for (dgi, value) in writes {
            if dgi == DGI_TRUST_ANCHOR {
                let anchor = trust_anchor(value)?;
                container
                    .trust_anchors
                    .retain(|a| a.service != anchor.service);
                container.trust_anchors.push(anchor);
            } else {
                let f = container
                    .files
                    .iter_mut()
                    .find(|f| f.fid == dgi)
                    .ok_or(Status::FileNotFound)?;
                let FileBody::Transparent { data } = &mut f.body else {
                    return Err(Status::IncompatibleFileStructure);
                };
                let target = data.get_mut(..value.len()).ok_or(Status::NotEnoughMemory)?;
                target.copy_from_slice(value);
            }
        }
        Ok(())
    })?;
    Ok(Response::done())
}
