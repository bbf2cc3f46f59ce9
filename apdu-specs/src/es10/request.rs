//! ES10b and ES10c requests (SGP.22 §5.7): one typed value per function, parsed from and
//! encoded to the reassembled STORE DATA payload.

use super::der::{self, DataObject};
use super::notify::{request as es10b, EventSet, NotificationSearch, ResetOptions};
use super::response::{ProfileClass, ProfileInfo};
use super::{tag, Aid, Es10Error, Iccid, ProfileId};
use crate::tlv;

/// Longest nickname, in characters (`UTF8String (SIZE(0..64))`).
pub const MAX_NICKNAME_CHARS: usize = 64;

/// `GetEuiccDataRequest` (`BF3E`): the tags asked for; lpac asks for `5A` (the EID).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GetEuiccData {
    /// Value of the `5C` tag list, as sent.
    pub tag_list: Vec<u8>,
}

impl GetEuiccData {
    /// The request lpac sends: `BF3E 03 5C 01 5A`.
    pub fn eid() -> GetEuiccData {
        GetEuiccData {
            tag_list: vec![0x5A],
        }
    }

    /// Whether the EID (`5A`) is asked for.
    pub fn wants_eid(&self) -> bool {
        der::read_tag_list(&self.tag_list).is_ok_and(|t| t.contains(&tag::EID))
    }
}

/// `searchCriteria [0] CHOICE` of `ProfileInfoListRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SearchCriteria {
    /// `4F`.
    IsdpAid(Aid),
    /// `5A`.
    Iccid(Iccid),
    /// `95`.
    ProfileClass(ProfileClass),
}

impl SearchCriteria {
    /// Whether a profile matches (a profile lacking the searched field does not).
    pub fn matches(&self, p: &ProfileInfo) -> bool {
        match self {
            SearchCriteria::IsdpAid(a) => p.isdp_aid.as_ref() == Some(a),
            SearchCriteria::Iccid(i) => p.iccid.as_ref() == Some(i),
            SearchCriteria::ProfileClass(c) => p.profile_class == Some(*c),
        }
    }
}

/// `ProfileInfoListRequest` (`BF2D`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ProfileInfoListRequest {
    pub search: Option<SearchCriteria>,
    /// The `5C` tag list: which `ProfileInfo` fields to return (`None`: the card's default set).
    pub tag_list: Option<Vec<u32>>,
}

/// One ES10c request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Es10Request {
    /// `BF3E`.
    GetEuiccData(GetEuiccData),
    /// `BF2D`.
    ProfileInfoList(ProfileInfoListRequest),
    /// `BF31 { A0 { 5A | 4F } 81 refreshFlag }`.
    EnableProfile { id: ProfileId, refresh: bool },
    /// `BF32 { A0 { 5A | 4F } 81 refreshFlag }`.
    DisableProfile { id: ProfileId, refresh: bool },
    /// `BF33 { 5A | 4F }`.
    DeleteProfile { id: ProfileId },
    /// `BF29 { 5A iccid 90 nickname }`.
    SetNickname { iccid: Iccid, nickname: String },
    /// `BF3C`.
    GetEuiccConfiguredAddresses,
    /// `BF43`.
    GetRat,
    /// `BF20`.
    GetEuiccInfo1,
    /// `BF22`.
    GetEuiccInfo2,
    /// `BF2E {}`.
    GetEuiccChallenge,
    /// `BF28 { 81 operations? }`: the metadata of pending notifications.
    ListNotification { filter: Option<EventSet> },
    /// `BF2B { A0 { 80 seq | 81 operations }? }`: pending notifications, signed.
    RetrieveNotificationsList { search: Option<NotificationSearch> },
    /// `BF30 { 80 seq }` (RemoveNotificationFromList).
    NotificationSent { seq: u32 },
    /// `BF41 { 80 transactionId 81 reason }`.
    CancelSession {
        transaction_id: Vec<u8>,
        reason: u32,
    },
    /// `BF34 { 82 resetOptions }`.
    EuiccMemoryReset { options: ResetOptions },
    /// `BF3F { 80 defaultDpAddress }`.
    SetDefaultDpAddress { address: String },
    /// `BF56 { 80 euiccCiPKId? }`: the EUM and eUICC certificates (for the CI given).
    GetCerts { ci_pkid: Option<Vec<u8>> },
}

fn check_nickname(nickname: &str) -> Result<(), Es10Error> {
    if nickname.chars().count() > MAX_NICKNAME_CHARS {
        return Err(Es10Error::Invalid {
            field: "nickname",
            reason: "longer than 64 characters",
        });
    }
    Ok(())
}

impl Es10Request {
    /// The top-level tag of this request (and of its answer).
    pub fn tag(&self) -> u32 {
        match self {
            Es10Request::GetEuiccData(_) => tag::GET_EUICC_DATA,
            Es10Request::ProfileInfoList(_) => tag::PROFILE_INFO_LIST,
            Es10Request::EnableProfile { .. } => tag::ENABLE_PROFILE,
            Es10Request::DisableProfile { .. } => tag::DISABLE_PROFILE,
            Es10Request::DeleteProfile { .. } => tag::DELETE_PROFILE,
            Es10Request::SetNickname { .. } => tag::SET_NICKNAME,
            Es10Request::GetEuiccConfiguredAddresses => tag::EUICC_CONFIGURED_ADDRESSES,
            Es10Request::GetRat => tag::GET_RAT,
            Es10Request::GetEuiccInfo1 => tag::EUICC_INFO1,
            Es10Request::GetEuiccInfo2 => tag::EUICC_INFO2,
            Es10Request::GetEuiccChallenge => tag::GET_EUICC_CHALLENGE,
            Es10Request::ListNotification { .. } => tag::LIST_NOTIFICATION,
            Es10Request::RetrieveNotificationsList { .. } => tag::RETRIEVE_NOTIFICATIONS_LIST,
            Es10Request::NotificationSent { .. } => tag::NOTIFICATION_SENT,
            Es10Request::CancelSession { .. } => tag::CANCEL_SESSION,
            Es10Request::EuiccMemoryReset { .. } => tag::EUICC_MEMORY_RESET,
            Es10Request::SetDefaultDpAddress { .. } => tag::SET_DEFAULT_DP_ADDRESS,
            Es10Request::GetCerts { .. } => tag::GET_CERTS,
        }
    }

    /// The function's name in SGP.22, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Es10Request::GetEuiccData(_) => "GetEuiccData",
            Es10Request::ProfileInfoList(_) => "ProfileInfoList",
            Es10Request::EnableProfile { .. } => "EnableProfile",
            Es10Request::DisableProfile { .. } => "DisableProfile",
            Es10Request::DeleteProfile { .. } => "DeleteProfile",
            Es10Request::SetNickname { .. } => "SetNickname",
            Es10Request::GetEuiccConfiguredAddresses => "EuiccConfiguredAddresses",
            Es10Request::GetRat => "GetRAT",
            Es10Request::GetEuiccInfo1 => "GetEuiccInfo1",
            Es10Request::GetEuiccInfo2 => "GetEuiccInfo2",
            Es10Request::GetEuiccChallenge => "GetEuiccChallenge",
            Es10Request::ListNotification { .. } => "ListNotification",
            Es10Request::RetrieveNotificationsList { .. } => "RetrieveNotificationsList",
            Es10Request::NotificationSent { .. } => "RemoveNotificationFromList",
            Es10Request::CancelSession { .. } => "CancelSession",
            Es10Request::EuiccMemoryReset { .. } => "EuiccMemoryReset",
            Es10Request::SetDefaultDpAddress { .. } => "SetDefaultDpAddress",
            Es10Request::GetCerts { .. } => "GetCerts",
        }
    }

    /// The top-level tag of a payload, even one that [`Es10Request::parse`] refuses: lets
    /// the card answer a malformed `BF2D` with `BF2D { 81 01 }` (incorrectInputValues)
    /// rather than a bare status word.
    pub fn function_tag(payload: &[u8]) -> Option<u32> {
        der::read_tag(payload).ok().map(|(t, _)| t)
    }

    /// Parse a whole STORE DATA payload: exactly one data object. Unknown child fields
    /// are skipped (ASN.1 extension markers); missing mandatory ones are errors; an
    /// unknown top-level tag is [`Es10Error::UnknownFunction`].
    pub fn parse(payload: &[u8]) -> Result<Es10Request, Es10Error> {
        let top = der::read_exactly_one(payload)?;
        if !top.is_constructed() {
            return Err(Es10Error::UnknownFunction(top.tag));
        }
        let children = der::read_all(top.value)?;
        let c = children.as_slice();
        Ok(match top.tag {
            tag::GET_EUICC_DATA => Es10Request::GetEuiccData(GetEuiccData {
                tag_list: der::find(c, tag::TAG_LIST)
                    .ok_or(Es10Error::Missing("tagList (5C)"))?
                    .to_vec(),
            }),
            tag::PROFILE_INFO_LIST => Es10Request::ProfileInfoList(parse_list_request(c)?),
            tag::ENABLE_PROFILE => {
                let (id, refresh) = parse_switch(c)?;
                Es10Request::EnableProfile { id, refresh }
            }
            tag::DISABLE_PROFILE => {
                let (id, refresh) = parse_switch(c)?;
                Es10Request::DisableProfile { id, refresh }
            }
            tag::DELETE_PROFILE => {
                let first = c
                    .iter()
                    .find(|t| t.tag == tag::ICCID || t.tag == tag::ISDP_AID)
                    .ok_or(Es10Error::Missing("iccid (5A) or isdpAid (4F)"))?;
                Es10Request::DeleteProfile {
                    id: ProfileId::from_tlv(first)?,
                }
            }
            tag::SET_NICKNAME => {
                let iccid = der::find(c, tag::ICCID).ok_or(Es10Error::Missing("iccid (5A)"))?;
                let nick = der::find(c, tag::NICKNAME)
                    .ok_or(Es10Error::Missing("profileNickname (90)"))?;
                let nickname = std::str::from_utf8(nick)
                    .map_err(|_| Es10Error::Invalid {
                        field: "nickname",
                        reason: "not UTF-8",
                    })?
                    .to_owned();
                check_nickname(&nickname)?;
                Es10Request::SetNickname {
                    iccid: Iccid::from_bytes(iccid)?,
                    nickname,
                }
            }
            tag::EUICC_CONFIGURED_ADDRESSES => Es10Request::GetEuiccConfiguredAddresses,
            tag::GET_RAT => Es10Request::GetRat,
            tag::EUICC_INFO1 => Es10Request::GetEuiccInfo1,
            tag::EUICC_INFO2 => Es10Request::GetEuiccInfo2,
            tag::GET_EUICC_CHALLENGE => Es10Request::GetEuiccChallenge,
            tag::LIST_NOTIFICATION => Es10Request::ListNotification {
                filter: es10b::list_notification(c)?,
            },
            tag::RETRIEVE_NOTIFICATIONS_LIST => Es10Request::RetrieveNotificationsList {
                search: es10b::retrieve(c)?,
            },
            tag::NOTIFICATION_SENT => Es10Request::NotificationSent {
                seq: es10b::seq_number(c)?,
            },
            tag::CANCEL_SESSION => {
                let (transaction_id, reason) = es10b::cancel_session(c)?;
                Es10Request::CancelSession {
                    transaction_id,
                    reason,
                }
            }
            tag::EUICC_MEMORY_RESET => Es10Request::EuiccMemoryReset {
                options: es10b::memory_reset(c)?,
            },
            tag::SET_DEFAULT_DP_ADDRESS => Es10Request::SetDefaultDpAddress {
                address: es10b::default_dp_address(c)?,
            },
            tag::GET_CERTS => Es10Request::GetCerts {
                ci_pkid: es10b::get_certs(c),
            },
            other => return Err(Es10Error::UnknownFunction(other)),
        })
    }

    /// Encode as the STORE DATA payload (DER, as lpac sends it).
    pub fn to_bytes(&self) -> Result<Vec<u8>, Es10Error> {
        let mut body = Vec::new();
        match self {
            Es10Request::GetEuiccData(g) => tlv::push(&mut body, tag::TAG_LIST, &g.tag_list),
            Es10Request::ProfileInfoList(r) => {
                if let Some(s) = &r.search {
                    let inner = match s {
                        SearchCriteria::IsdpAid(a) => tlv::build(tag::ISDP_AID, a.as_bytes()),
                        SearchCriteria::Iccid(i) => tlv::build(tag::ICCID, i.as_bytes()),
                        SearchCriteria::ProfileClass(c) => {
                            tlv::build(tag::PROFILE_CLASS, &[c.code()])
                        }
                    };
                    tlv::push(&mut body, tag::CHOICE_0, &inner);
                }
                if let Some(tags) = &r.tag_list {
                    let mut list = Vec::new();
                    for t in tags {
                        tlv::push_tag(&mut list, *t);
                    }
                    tlv::push(&mut body, tag::TAG_LIST, &list);
                }
            }
            Es10Request::EnableProfile { id, refresh }
            | Es10Request::DisableProfile { id, refresh } => {
                tlv::push(&mut body, tag::CHOICE_0, &id.to_tlv());
                tlv::push(
                    &mut body,
                    tag::REFRESH_FLAG,
                    &[if *refresh { 0xFF } else { 0x00 }],
                );
            }
            Es10Request::DeleteProfile { id } => body = id.to_tlv(),
            Es10Request::SetNickname { iccid, nickname } => {
                check_nickname(nickname)?;
                tlv::push(&mut body, tag::ICCID, iccid.as_bytes());
                tlv::push(&mut body, tag::NICKNAME, nickname.as_bytes());
            }
            Es10Request::GetEuiccConfiguredAddresses
            | Es10Request::GetRat
            | Es10Request::GetEuiccInfo1
            | Es10Request::GetEuiccInfo2
            | Es10Request::GetEuiccChallenge => {}
            Es10Request::ListNotification { filter } => {
                body = es10b::list_notification_body(filter)
            }
            Es10Request::RetrieveNotificationsList { search } => {
                body = es10b::retrieve_body(search)
            }
            Es10Request::NotificationSent { seq } => body = es10b::seq_body(*seq),
            Es10Request::CancelSession {
                transaction_id,
                reason,
            } => body = es10b::cancel_session_body(transaction_id, *reason),
            Es10Request::EuiccMemoryReset { options } => body = es10b::memory_reset_body(options),
            Es10Request::SetDefaultDpAddress { address } => {
                tlv::push(&mut body, 0x80, address.as_bytes())
            }
            Es10Request::GetCerts { ci_pkid } => body = es10b::get_certs_body(ci_pkid),
        }
        Ok(tlv::build(self.tag(), &body))
    }
}

fn parse_switch(c: &[DataObject<'_>]) -> Result<(ProfileId, bool), Es10Error> {
    let choice = der::find(c, tag::CHOICE_0).ok_or(Es10Error::Missing("profileIdentifier (A0)"))?;
    let inner = der::read_exactly_one(choice)?;
    let id = ProfileId::from_tlv(&inner)?;
    let flag = der::find(c, tag::REFRESH_FLAG).ok_or(Es10Error::Missing("refreshFlag (81)"))?;
    let refresh = match flag {
        [b] => *b != 0,
        _ => {
            return Err(Es10Error::Invalid {
                field: "refreshFlag",
                reason: "a BOOLEAN has one byte",
            })
        }
    };
    Ok((id, refresh))
}

fn parse_list_request(c: &[DataObject<'_>]) -> Result<ProfileInfoListRequest, Es10Error> {
    let search = match der::find(c, tag::CHOICE_0) {
        None => None,
        Some(v) => {
            let inner = der::read_exactly_one(v)?;
            Some(match inner.tag {
                tag::ISDP_AID => SearchCriteria::IsdpAid(Aid::new(inner.value)?),
                tag::ICCID => SearchCriteria::Iccid(Iccid::from_bytes(inner.value)?),
                tag::PROFILE_CLASS => {
                    SearchCriteria::ProfileClass(ProfileClass::from_value(inner.value)?)
                }
                found => {
                    return Err(Es10Error::UnexpectedTag {
                        expected: tag::ICCID,
                        found,
                    })
                }
            })
        }
    };
    let tag_list = der::find(c, tag::TAG_LIST)
        .map(der::read_tag_list)
        .transpose()?;
    Ok(ProfileInfoListRequest { search, tag_list })
}
