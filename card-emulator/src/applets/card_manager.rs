//! The card manager: ISD-R of SGP.22 (ES10c over STORE DATA) and GlobalPlatform ISD.
//!
//! Management functions run with the VM in admin mode, inside a scope that only the
//! card's policy (`vm::policy::enter_admin`) opens; listing and switching containers goes
//! through that scope like everything else.

use super::Applet;
use crate::commands::{Ctx, Outcome, Response};
use crate::state::{Container, ContainerId};
use crate::vm::policy::{enter_admin, Function};
use crate::vm::Admin;
use apdu_specs::es10::{
    self, Aid, CancelSessionResponse, DeleteResult, DisableResult, Eid, EidResponse, EnableResult,
    Es10Request, EuiccChallenge, EuiccConfiguredAddresses, EuiccInfo1, EuiccInfo2, ExtCardResource,
    GetCertsResponse, Iccid, ListNotificationResponse, MemoryResetResult, NotificationEvent,
    NotificationMetadata, NotificationSentResult, OtherSignedNotification, PendingNotification,
    ProfileClass, ProfileId, ProfileInfo, ProfileInfoListResponse, ProfileState, RatResponse,
    ResetOptions, ResultCode, RetrieveNotificationsListResponse, SetDefaultDpAddressResult,
    SetNicknameResult, StoreDataAssembler, StoreDataProgress,
};
use apdu_specs::gp::StoreData;
use apdu_specs::ins::{es10 as es10_ins, gp};
use apdu_specs::{tlv, Command, Status};

pub struct CardManager;

/// The card manager's management session on one channel: what a multi-command exchange
/// (STORE DATA blocks, GET STATUS continuation, personalization target) keeps between
/// commands. Not the secure channel, which is the channel's [`crate::secure::ChannelScp`].
#[derive(Debug, Default)]
pub struct ManagementSession {
    /// The AID it was selected with (ISD-R or GlobalPlatform ISD).
    pub aid: Vec<u8>,
    store_data: StoreDataAssembler,
    /// GET STATUS entries not yet sent (answered with 6310 before).
    pub status_rest: Vec<u8>,
    /// Container chosen by INSTALL [for personalization] for DGI STORE DATA, by identity:
    /// deleting another container never re-targets it.
    pub personalize: Option<ContainerId>,
    /// A load file being received (INSTALL [for load], then LOAD blocks).
    pub load: Option<super::gp_load::LoadInProgress>,
}

impl Applet for CardManager {
    type Instance = ManagementSession;

    fn matches(name: &[u8]) -> bool {
        let prefix_of = |aid: &[u8]| name.len() >= 5 && aid.starts_with(name);
        prefix_of(&es10::ISD_R_AID) || prefix_of(&es10::GP_ISD_AID)
    }

    // GlobalPlatform Card Spec §11.1.3: FCI with the AID and proprietary data.
    fn select(_ctx: &mut Ctx, session: &mut ManagementSession, name: &[u8]) -> Outcome {
        session.aid = if es10::ISD_R_AID.starts_with(name) {
            es10::ISD_R_AID.to_vec()
        } else {
            es10::GP_ISD_AID.to_vec()
        };
        let mut proprietary = Vec::new();
        tlv::push(&mut proprietary, 0x9F65, &[0xFF]); // maximum length of command data
        let mut fci = Vec::new();
        tlv::push(&mut fci, 0x84, &session.aid);
        tlv::push(&mut fci, 0xA5, &proprietary);
        Ok(Response::ok(tlv::build(0x6F, &fci)))
    }

    fn process(ctx: &mut Ctx, session: &mut ManagementSession, cmd: &Command) -> Outcome {
        if cmd.cla & 0x80 == 0 {
            return Err(Status::ClaNotSupported);
        }
        match cmd.ins {
            // SGP.22 §5.7.1 / ETSI TS 102 221: accepted, nothing to keep.
            es10_ins::TERMINAL_CAPABILITIES => Ok(Response::done()),
            // P1 says DGIs (personalization) or else ES10 BER-TLV.
            gp::STORE_DATA => {
                let block = StoreData::parse(cmd)?;
                if block.is_dgi_format() {
                    super::gp::store_dgi(ctx, session, &block)
                } else {
                    store_data(ctx, session, &block)
                }
            }
            gp::INITIALIZE_UPDATE => super::gp::initialize_update(ctx, session, cmd),
            gp::GET_STATUS => super::gp::get_status(ctx, session, cmd),
            gp::GET_DATA => super::gp::get_data(ctx, cmd),
            gp::PUT_KEY => super::gp::put_key(ctx, cmd),
            gp::INSTALL => super::gp::install(ctx, session, cmd),
            gp::LOAD => super::gp_load::load(ctx, session, cmd),
            gp::DELETE => super::gp_load::delete(ctx, cmd),
            _ => Err(Status::InsNotSupported),
        }
    }
}

// GlobalPlatform Card Spec §11.11 STORE DATA, SGP.22 §5.7: ES10 functions in blocks.
fn store_data(ctx: &mut Ctx, session: &mut ManagementSession, block: &StoreData) -> Outcome {
    match session.store_data.feed(block.p1, block.block, &block.data) {
        Err(e) => Err(e.status()),
        Ok(StoreDataProgress::Incomplete) => Ok(Response::done()),
        Ok(StoreDataProgress::Complete(payload)) => {
            let request = Es10Request::parse(&payload).map_err(|e| e.status())?;
            let Ok(mut admin) = enter_admin(&mut ctx.vm, Function::Es10, ctx.secure) else {
                return Ok(Response::ok(refused_by_policy(&request)));
            };
            es10c(&mut admin, request).map(Response::ok)
        }
    }
}

/// The SGP.22 answer for a function the policy does not allow without a secure channel.
fn refused_by_policy(request: &Es10Request) -> Vec<u8> {
    match request {
        Es10Request::EnableProfile { .. } => EnableResult::DisallowedByPolicy.to_bytes(),
        Es10Request::DisableProfile { .. } => DisableResult::DisallowedByPolicy.to_bytes(),
        Es10Request::DeleteProfile { .. } => DeleteResult::DisallowedByPolicy.to_bytes(),
        Es10Request::SetNickname { .. } => SetNicknameResult::UndefinedError.to_bytes(),
        Es10Request::ProfileInfoList(_) => {
            ProfileInfoListResponse::Error(es10::ProfileInfoListError::UndefinedError).to_bytes()
        }
        Es10Request::ListNotification { .. } => ListNotificationResponse::UndefinedError.to_bytes(),
        Es10Request::RetrieveNotificationsList { .. } => {
            RetrieveNotificationsListResponse::UndefinedError.to_bytes()
        }
        Es10Request::NotificationSent { .. } => NotificationSentResult::UndefinedError.to_bytes(),
        Es10Request::CancelSession { .. } => CancelSessionResponse::UndefinedError.to_bytes(),
        Es10Request::EuiccMemoryReset { .. } => MemoryResetResult::UndefinedError.to_bytes(),
        Es10Request::SetDefaultDpAddress { .. } => {
            SetDefaultDpAddressResult::UndefinedError.to_bytes()
        }
        Es10Request::GetCerts { .. } => GetCertsResponse::UndefinedError.to_bytes(),
        _ => Vec::new(),
    }
}

fn info(c: &Container) -> ProfileInfo {
    ProfileInfo {
        iccid: Iccid::from_bytes(&c.iccid).ok(),
        isdp_aid: Aid::new(&c.isdp_aid).ok(),
        state: Some(if c.enabled {
            ProfileState::Enabled
        } else {
            ProfileState::Disabled
        }),
        nickname: Some(c.nickname.clone()),
        service_provider_name: Some(c.service_provider.clone()),
        profile_name: Some(c.profile_name.clone()),
        profile_class: Some(match c.profile_class {
            0 => ProfileClass::Test,
            1 => ProfileClass::Provisioning,
            _ => ProfileClass::Operational,
        }),
    }
}

/// The container a ProfileId names, with whether it is enabled.
fn find(containers: &[Container], id: &ProfileId) -> Option<(ContainerId, bool)> {
    containers
        .iter()
        .find(|c| match id {
            ProfileId::Iccid(i) => c.iccid == i.as_bytes(),
            ProfileId::IsdpAid(a) => c.isdp_aid == a.as_bytes(),
        })
        .map(|c| (c.id(), c.enabled))
}

/// Run one ES10c function (admin mode). Errors are SWs; SGP.22 result codes are data.
fn es10c(admin: &mut Admin, request: Es10Request) -> Result<Vec<u8>, Status> {
    let containers = admin.containers();
    Ok(match request {
        Es10Request::GetEuiccData(_) => {
            let eid: [u8; 16] = admin
                .eid()
                .try_into()
                .map_err(|_| Status::ReferencedDataNotFound)?;
            EidResponse { eid: Eid(eid) }.to_bytes()
        }
        Es10Request::ProfileInfoList(req) => {
            let list = containers
                .iter()
                .map(info)
                .filter(|p| req.search.as_ref().is_none_or(|s| s.matches(p)))
                .map(|p| p.filtered(req.tag_list.as_deref()))
                .collect();
            ProfileInfoListResponse::Ok(list).to_bytes()
        }
        // Each operation records its notifications first, so that the operation's own
        // commit makes both durable (SGP.22 §3.2: enabling one profile while another is
        // enabled notifies the disable of that one too). When they would not fit, the
        // operation is refused with undefinedError and nothing changes: the oldest
        // notifications, which no SM-DP+ has received yet, are never dropped.
        Es10Request::EnableProfile { id, .. } => match find(containers, &id) {
            None => EnableResult::IccidOrAidNotFound.to_bytes(),
            Some((_, true)) => EnableResult::ProfileNotInDisabledState.to_bytes(),
            Some((c, false)) => {
                let mut wanted = vec![(c, NotificationEvent::Enable)];
                if let Some(before) = admin.enabled() {
                    wanted.insert(0, (before, NotificationEvent::Disable));
                }
                if !admin.notifications_fit(&wanted) {
                    return Ok(EnableResult::UndefinedError.to_bytes());
                }
                for (id, event) in wanted {
                    admin.notify(id, event)?;
                }
                admin.switch(Some(c))?;
                EnableResult::Ok.to_bytes()
            }
        },
        Es10Request::DisableProfile { id, .. } => match find(containers, &id) {
            None => DisableResult::IccidOrAidNotFound.to_bytes(),
            Some((_, false)) => DisableResult::ProfileNotInEnabledState.to_bytes(),
            Some((c, true)) => {
                if !admin.notifications_fit(&[(c, NotificationEvent::Disable)]) {
                    return Ok(DisableResult::UndefinedError.to_bytes());
                }
                admin.notify(c, NotificationEvent::Disable)?;
                admin.switch(None)?;
                DisableResult::Ok.to_bytes()
            }
        },
        Es10Request::DeleteProfile { id } => match find(containers, &id) {
            None => DeleteResult::IccidOrAidNotFound.to_bytes(),
            Some((_, true)) => DeleteResult::ProfileNotInDisabledState.to_bytes(),
            Some((c, false)) => {
                if !admin.notifications_fit(&[(c, NotificationEvent::Delete)]) {
                    return Ok(DeleteResult::UndefinedError.to_bytes());
                }
                admin.notify(c, NotificationEvent::Delete)?;
                admin.delete(c)?;
                DeleteResult::Ok.to_bytes()
            }
        },
        Es10Request::SetNickname { iccid, nickname } => {
            match find(containers, &ProfileId::Iccid(iccid)) {
                None => SetNicknameResult::IccidNotFound.to_bytes(),
                Some((c, _)) => {
                    admin.set_nickname(c, nickname)?;
                    SetNicknameResult::Ok.to_bytes()
                }
            }
        }
        Es10Request::GetEuiccConfiguredAddresses => EuiccConfiguredAddresses {
            default_dp_address: Some(admin.default_dp_address())
                .filter(|a| !a.is_empty())
                .map(str::to_owned),
            root_ds_address: "lpa.ds.gsma.com".into(),
        }
        .to_bytes(),
        Es10Request::GetRat => RatResponse::default().to_bytes(),
        Es10Request::GetEuiccInfo1 => {
            let mut info = EuiccInfo1::plausible();
            // The card signs with its own test CI's chain and verifies both CIs.
            if let Some(identity) = admin.euicc_identity() {
                let ours = identity.ci_key_id();
                info.ci_pkid_for_signing = vec![ours.clone()];
                info.ci_pkid_for_verification.insert(0, ours);
            }
            info.to_bytes()
        }
        Es10Request::GetEuiccInfo2 => EuiccInfo2::plausible(ExtCardResource {
            installed_applications: containers.len() as u32,
            free_non_volatile_memory: 512 * 1024,
            free_volatile_memory: 16 * 1024,
        })
        .to_bytes(),
        Es10Request::GetEuiccChallenge => {
            let mut challenge = [0u8; 16];
            getrandom::getrandom(&mut challenge).map_err(|e| {
                tracing::error!("OS random generator failed: {e}");
                Status::MemoryFailure
            })?;
            EuiccChallenge(challenge).to_bytes()
        }
        Es10Request::ListNotification { filter } => ListNotificationResponse::Ok(
            pending(admin)
                .filter(|(m, _)| filter.is_none_or(|f| f.contains(m.event)))
                .map(|(m, _)| m)
                .collect(),
        )
        .to_bytes(),
        Es10Request::RetrieveNotificationsList { search } => {
            let Some(identity) = admin.euicc_identity() else {
                return Ok(RetrieveNotificationsListResponse::UndefinedError.to_bytes());
            };
            let list: Vec<PendingNotification> = pending(admin)
                .filter(|(m, _)| search.is_none_or(|s| s.matches(m)))
                .map(|(metadata, signature)| {
                    PendingNotification::Other(OtherSignedNotification {
                        tbs: metadata.to_bytes(),
                        metadata,
                        signature,
                        euicc_certificate: identity.euicc_certificate.clone(),
                        eum_certificate: identity.eum_certificate.clone(),
                    })
                })
                .collect();
            if list.is_empty() {
                RetrieveNotificationsListResponse::NoResultAvailable.to_bytes()
            } else {
                RetrieveNotificationsListResponse::Ok(list).to_bytes()
            }
        }
        Es10Request::NotificationSent { seq } => if admin.remove_notification(seq)? {
            NotificationSentResult::Ok
        } else {
            NotificationSentResult::NothingToDelete
        }
        .to_bytes(),
        // No profile download runs on this card, so no session can be cancelled.
        Es10Request::CancelSession { .. } => CancelSessionResponse::InvalidTransactionId.to_bytes(),
        Es10Request::EuiccMemoryReset { options } => memory_reset(admin, options)?.to_bytes(),
        Es10Request::SetDefaultDpAddress { address } => {
            admin.set_default_dp_address(address)?;
            SetDefaultDpAddressResult::Ok.to_bytes()
        }
        Es10Request::GetCerts { ci_pkid } => match admin.euicc_identity() {
            None => GetCertsResponse::UndefinedError,
            Some(i) if ci_pkid.is_some_and(|k| k != i.ci_key_id()) => {
                GetCertsResponse::InvalidCiPkid
            }
            Some(i) => GetCertsResponse::Certs {
                eum_certificate: i.eum_certificate.clone(),
                euicc_certificate: i.euicc_certificate.clone(),
            },
        }
        .to_bytes(),
    })
}

/// The pending notifications as metadata with their signatures, oldest first. Entries
/// whose stored event is no NotificationEvent (a hand-edited state) are skipped.
fn pending<'a>(admin: &'a Admin) -> impl Iterator<Item = (NotificationMetadata, Vec<u8>)> + 'a {
    admin.notifications().pending.iter().filter_map(|n| {
        let event = NotificationEvent::ALL
            .into_iter()
            .find(|e| e.bit() == usize::from(n.event))?;
        Some((
            NotificationMetadata {
                seq: n.seq,
                event,
                address: n.address.clone(),
                iccid: Iccid::from_bytes(&n.iccid).ok(),
            },
            n.signature.clone(),
        ))
    })
}

/// SGP.22 §5.7.19 EuiccMemoryReset: delete the operational and/or test profiles the options
/// name, whatever their state (the enabled one is disabled first), and/or clear the default
/// SM-DP+ address. Provisioning profiles stay. No notification is made for these deletions.
fn memory_reset(admin: &mut Admin, options: ResetOptions) -> Result<MemoryResetResult, Status> {
    let doomed: Vec<ContainerId> = admin
        .containers()
        .iter()
        .filter(|c| match c.profile_class {
            0 => options.delete_test_profiles,
            2 => options.delete_operational_profiles,
            _ => false,
        })
        .map(Container::id)
        .collect();
    let reset_address =
        options.reset_default_smdp_address && !admin.default_dp_address().is_empty();
    if doomed.is_empty() && !reset_address {
        return Ok(MemoryResetResult::NothingToDelete);
    }
    admin.memory_reset(&doomed, reset_address)?;
    Ok(MemoryResetResult::Ok)
}
