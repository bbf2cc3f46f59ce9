//! SGP.22 ES10b outside the profile download (§5.7.9-5.7.11, §5.7.13, §5.7.15-5.7.16 of
//! v2.x): the eUICC challenge, notifications (metadata, the signed form, listing,
//! retrieving, removing), cancelling a session, memory reset and the default SM-DP+
//! address. Encodings follow `rsp.asn` (AUTOMATIC TAGS, so an untagged component of a
//! SEQUENCE whose other components carry no tag gets `[n]` by position).

use super::der;
use super::info::BitString;
use super::{tag, Es10Error, Iccid};
use crate::tlv;

/// `NotificationEvent ::= BIT STRING { notificationInstall(0), notificationEnable(1),
/// notificationDisable(2), notificationDelete(3) }`: one profile management operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NotificationEvent {
    Install = 0,
    Enable = 1,
    Disable = 2,
    Delete = 3,
}

impl NotificationEvent {
    pub const ALL: [NotificationEvent; 4] = [
        NotificationEvent::Install,
        NotificationEvent::Enable,
        NotificationEvent::Disable,
        NotificationEvent::Delete,
    ];

    /// The bit number in the BIT STRING.
    pub fn bit(self) -> usize {
        self as usize
    }

    /// The name lpac prints (`install`, `enable`, `disable`, `delete`).
    pub fn name(self) -> &'static str {
        match self {
            NotificationEvent::Install => "install",
            NotificationEvent::Enable => "enable",
            NotificationEvent::Disable => "disable",
            NotificationEvent::Delete => "delete",
        }
    }

    pub fn from_name(name: &str) -> Option<NotificationEvent> {
        NotificationEvent::ALL
            .into_iter()
            .find(|e| e.name() == name)
    }

    /// The BIT STRING value with only this bit set (DER: trailing zero bits trimmed), e.g.
    /// enable = `06 40`.
    pub fn value(self) -> Vec<u8> {
        EventSet::of(&[self]).value()
    }

    /// From a BIT STRING value in which exactly one bit is set ("Only one bit SHALL be set
    /// to 1" in NotificationMetadata).
    pub fn from_value(v: &[u8]) -> Result<NotificationEvent, Es10Error> {
        let set = EventSet::from_value(v)?;
        let mut events = set.iter();
        match (events.next(), events.next()) {
            (Some(e), None) => Ok(e),
            _ => Err(Es10Error::Invalid {
                field: "profileManagementOperation",
                reason: "exactly one operation bit must be set",
            }),
        }
    }
}

/// A set of [`NotificationEvent`]s: a search filter, or which operations of a profile
/// must be notified. Bits beyond the four defined ones are ignored when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventSet(u8);

impl EventSet {
    pub fn of(events: &[NotificationEvent]) -> EventSet {
        EventSet(events.iter().fold(0, |acc, e| acc | 1 << e.bit()))
    }

    pub fn contains(self, e: NotificationEvent) -> bool {
        self.0 & (1 << e.bit()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = NotificationEvent> {
        NotificationEvent::ALL
            .into_iter()
            .filter(move |e| self.contains(*e))
    }

    /// The BIT STRING value (unused-bits byte first).
    pub fn value(self) -> Vec<u8> {
        let bits: Vec<usize> = self.iter().map(NotificationEvent::bit).collect();
        BitString::from_bits(&bits).value()
    }

    pub fn from_value(v: &[u8]) -> Result<EventSet, Es10Error> {
        let bits = BitString::from_value(v, "NotificationEvent")?;
        Ok(EventSet::of(
            &NotificationEvent::ALL
                .into_iter()
                .filter(|e| bits.bit(e.bit()))
                .collect::<Vec<_>>(),
        ))
    }
}

/// `NotificationMetadata` (`BF2F`): what a notification is about, unsigned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NotificationMetadata {
    /// `seqNumber [0] INTEGER`: unique on the card, never reused.
    pub seq: u32,
    /// `profileManagementOperation [1]`.
    pub event: NotificationEvent,
    /// `notificationAddress UTF8String`: the FQDN the LPA forwards it to.
    pub address: String,
    /// `iccid` of the profile, when it has one.
    pub iccid: Option<Iccid>,
}

impl NotificationMetadata {
    /// The DER the eUICC signs (`tbsOtherNotification`) and lists.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        der::push_uint(&mut body, tag::SEQ_NUMBER, self.seq);
        tlv::push(&mut body, tag::NOTIFICATION_EVENT, &self.event.value());
        tlv::push(&mut body, tag::UTF8_STRING, self.address.as_bytes());
        if let Some(i) = &self.iccid {
            tlv::push(&mut body, tag::ICCID, i.as_bytes());
        }
        tlv::build(tag::NOTIFICATION_METADATA, &body)
    }

    /// From the value of a `BF2F`. Unknown fields (extensions) are skipped.
    pub fn parse_value(value: &[u8]) -> Result<NotificationMetadata, Es10Error> {
        let c = der::read_all(value)?;
        let seq = der::find(&c, tag::SEQ_NUMBER).ok_or(Es10Error::Missing("seqNumber (80)"))?;
        let event = der::find(&c, tag::NOTIFICATION_EVENT)
            .ok_or(Es10Error::Missing("profileManagementOperation (81)"))?;
        let address = der::find(&c, tag::UTF8_STRING)
            .ok_or(Es10Error::Missing("notificationAddress (0C)"))?;
        Ok(NotificationMetadata {
            seq: der::read_uint(seq, "seqNumber")?,
            event: NotificationEvent::from_value(event)?,
            address: utf8(address, "notificationAddress")?,
            iccid: der::find(&c, tag::ICCID)
                .map(Iccid::from_bytes)
                .transpose()?,
        })
    }

    pub fn parse(bytes: &[u8]) -> Result<NotificationMetadata, Es10Error> {
        NotificationMetadata::parse_value(der::read_expected(bytes, tag::NOTIFICATION_METADATA)?)
    }
}

fn utf8(v: &[u8], field: &'static str) -> Result<String, Es10Error> {
    String::from_utf8(v.to_vec()).map_err(|_| Es10Error::Invalid {
        field,
        reason: "not UTF-8",
    })
}

/// `OtherSignedNotification` (`30`): the metadata as signed, the eUICC's signature over
/// those exact bytes (`5F37`, r || s), the eUICC certificate and the EUM certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OtherSignedNotification {
    pub metadata: NotificationMetadata,
    /// The `BF2F` data object exactly as received: what the signature covers.
    pub tbs: Vec<u8>,
    /// `euiccNotificationSignature [APPLICATION 55]`: 64 bytes r || s for P-256.
    pub signature: Vec<u8>,
    /// `euiccCertificate` (DER X.509, tag `30`).
    pub euicc_certificate: Vec<u8>,
    /// `eumCertificate` (DER X.509, tag `30`).
    pub eum_certificate: Vec<u8>,
}

impl OtherSignedNotification {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = self.tbs.clone();
        tlv::push(&mut body, tag::SIGNATURE, &self.signature);
        body.extend_from_slice(&self.euicc_certificate);
        body.extend_from_slice(&self.eum_certificate);
        tlv::build(tag::SEQUENCE, &body)
    }

    /// From the value of its `30`. The certificates are checked to be one DER object each,
    /// not decoded.
    pub fn parse_value(value: &[u8]) -> Result<OtherSignedNotification, Es10Error> {
        let mut rest = value;
        let mut next = |expected: u32| -> Result<(&[u8], &[u8]), Es10Error> {
            let (obj, after) = der::read_one(rest)?;
            if obj.tag != expected {
                return Err(Es10Error::UnexpectedTag {
                    expected,
                    found: obj.tag,
                });
            }
            let raw = rest.get(..rest.len() - after.len()).unwrap_or_default();
            rest = after;
            Ok((raw, obj.value))
        };
        let (tbs, metadata) = next(tag::NOTIFICATION_METADATA)?;
        let (_, signature) = next(tag::SIGNATURE)?;
        let (euicc, _) = next(tag::SEQUENCE)?;
        let (eum, _) = next(tag::SEQUENCE)?;
        Ok(OtherSignedNotification {
            metadata: NotificationMetadata::parse_value(metadata)?,
            tbs: tbs.to_vec(),
            signature: signature.to_vec(),
            euicc_certificate: euicc.to_vec(),
            eum_certificate: eum.to_vec(),
        })
    }
}

/// `PendingNotification ::= CHOICE { profileInstallationResult [55], otherSignedNotification }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PendingNotification {
    /// `BF37`, kept as its DER: this card installs no profile over the air, so it never
    /// sends one; an LPA may meet one from other cards.
    ProfileInstallationResult(Vec<u8>),
    Other(OtherSignedNotification),
}

impl PendingNotification {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            PendingNotification::ProfileInstallationResult(der) => der.clone(),
            PendingNotification::Other(n) => n.to_bytes(),
        }
    }

    /// The metadata of an `Other` notification.
    pub fn metadata(&self) -> Option<&NotificationMetadata> {
        match self {
            PendingNotification::Other(n) => Some(&n.metadata),
            PendingNotification::ProfileInstallationResult(_) => None,
        }
    }
}

/// `searchCriteria` of `RetrieveNotificationsListRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationSearch {
    /// `seqNumber [0]`: that one notification.
    Seq(u32),
    /// `profileManagementOperation [1]`: every notification of these operations.
    Events(EventSet),
}

impl NotificationSearch {
    pub fn matches(&self, m: &NotificationMetadata) -> bool {
        match self {
            NotificationSearch::Seq(s) => m.seq == *s,
            NotificationSearch::Events(set) => set.contains(m.event),
        }
    }
}

/// `ListNotificationResponse` (`BF28`): `A0 { BF2F … }` or the error `81 <code>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListNotificationResponse {
    Ok(Vec<NotificationMetadata>),
    /// `listNotificationsResultError`: only `undefinedError(127)` is defined.
    UndefinedError,
}

impl ListNotificationResponse {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            ListNotificationResponse::Ok(list) => choice_ok(
                tag::LIST_NOTIFICATION,
                &list
                    .iter()
                    .flat_map(NotificationMetadata::to_bytes)
                    .collect::<Vec<u8>>(),
            ),
            ListNotificationResponse::UndefinedError => choice_error(tag::LIST_NOTIFICATION, 127),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<ListNotificationResponse, Es10Error> {
        match read_choice(bytes, tag::LIST_NOTIFICATION)? {
            Choice::Ok(items) => der::read_all(items)?
                .into_iter()
                .map(|e| match e.tag {
                    tag::NOTIFICATION_METADATA => NotificationMetadata::parse_value(e.value),
                    found => Err(Es10Error::UnexpectedTag {
                        expected: tag::NOTIFICATION_METADATA,
                        found,
                    }),
                })
                .collect::<Result<_, _>>()
                .map(ListNotificationResponse::Ok),
            Choice::Error(127) => Ok(ListNotificationResponse::UndefinedError),
            Choice::Error(code) => Err(unknown_code("ListNotification", code)),
        }
    }
}

/// `RetrieveNotificationsListResponse` (`BF2B`): `A0 { PendingNotification … }` or the
/// error `81 <code>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RetrieveNotificationsListResponse {
    Ok(Vec<PendingNotification>),
    /// `noResultAvailable(1)`: nothing matches the search.
    NoResultAvailable,
    UndefinedError,
}

impl RetrieveNotificationsListResponse {
    pub fn to_bytes(&self) -> Vec<u8> {
        let t = tag::RETRIEVE_NOTIFICATIONS_LIST;
        match self {
            RetrieveNotificationsListResponse::Ok(list) => choice_ok(
                t,
                &list
                    .iter()
                    .flat_map(PendingNotification::to_bytes)
                    .collect::<Vec<u8>>(),
            ),
            RetrieveNotificationsListResponse::NoResultAvailable => choice_error(t, 1),
            RetrieveNotificationsListResponse::UndefinedError => choice_error(t, 127),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<RetrieveNotificationsListResponse, Es10Error> {
        match read_choice(bytes, tag::RETRIEVE_NOTIFICATIONS_LIST)? {
            Choice::Ok(mut rest) => {
                let mut list = Vec::new();
                while !rest.is_empty() {
                    let (obj, after) = der::read_one(rest)?;
                    let raw = rest.get(..rest.len() - after.len()).unwrap_or_default();
                    list.push(match obj.tag {
                        tag::PROFILE_INSTALLATION_RESULT => {
                            PendingNotification::ProfileInstallationResult(raw.to_vec())
                        }
                        tag::SEQUENCE => PendingNotification::Other(
                            OtherSignedNotification::parse_value(obj.value)?,
                        ),
                        found => {
                            return Err(Es10Error::UnexpectedTag {
                                expected: tag::SEQUENCE,
                                found,
                            })
                        }
                    });
                    rest = after;
                }
                Ok(RetrieveNotificationsListResponse::Ok(list))
            }
            Choice::Error(1) => Ok(RetrieveNotificationsListResponse::NoResultAvailable),
            Choice::Error(127) => Ok(RetrieveNotificationsListResponse::UndefinedError),
            Choice::Error(code) => Err(unknown_code("RetrieveNotificationsList", code)),
        }
    }
}

/// `GetEuiccChallengeResponse` (`BF2E { 80 10 <challenge> }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EuiccChallenge(pub [u8; 16]);

impl EuiccChallenge {
    pub fn to_bytes(&self) -> Vec<u8> {
        tlv::build(
            tag::GET_EUICC_CHALLENGE,
            &tlv::build(tag::SEQ_NUMBER, &self.0),
        )
    }

    pub fn parse(bytes: &[u8]) -> Result<EuiccChallenge, Es10Error> {
        let c = der::read_all(der::read_expected(bytes, tag::GET_EUICC_CHALLENGE)?)?;
        let v = der::find(&c, 0x80).ok_or(Es10Error::Missing("euiccChallenge (80)"))?;
        Ok(EuiccChallenge(v.try_into().map_err(|_| {
            Es10Error::Invalid {
                field: "euiccChallenge",
                reason: "an Octet16 has 16 bytes",
            }
        })?))
    }
}

/// `CancelSessionResponse` (`BF41`). A card with no download session in progress answers
/// `cancelSessionResponseError`; the signed `Ok` form is kept as its DER when parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CancelSessionResponse {
    /// The value of `cancelSessionResponseOk [0]` (`A0`).
    Ok(Vec<u8>),
    /// `invalidTransactionId(5)`.
    InvalidTransactionId,
    /// `undefinedError(127)`.
    UndefinedError,
}

impl CancelSessionResponse {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            CancelSessionResponse::Ok(v) => choice_ok(tag::CANCEL_SESSION, v),
            CancelSessionResponse::InvalidTransactionId => choice_error(tag::CANCEL_SESSION, 5),
            CancelSessionResponse::UndefinedError => choice_error(tag::CANCEL_SESSION, 127),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<CancelSessionResponse, Es10Error> {
        match read_choice(bytes, tag::CANCEL_SESSION)? {
            Choice::Ok(v) => Ok(CancelSessionResponse::Ok(v.to_vec())),
            Choice::Error(5) => Ok(CancelSessionResponse::InvalidTransactionId),
            Choice::Error(127) => Ok(CancelSessionResponse::UndefinedError),
            Choice::Error(code) => Err(unknown_code("CancelSession", code)),
        }
    }
}

/// `resetOptions [2] BIT STRING` of `EuiccMemoryResetRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ResetOptions {
    /// `deleteOperationalProfiles(0)`.
    pub delete_operational_profiles: bool,
    /// `deleteFieldLoadedTestProfiles(1)`.
    pub delete_test_profiles: bool,
    /// `resetDefaultSmdpAddress(2)`.
    pub reset_default_smdp_address: bool,
}

impl ResetOptions {
    fn bits(&self) -> BitString {
        let bits: Vec<usize> = [
            self.delete_operational_profiles,
            self.delete_test_profiles,
            self.reset_default_smdp_address,
        ]
        .iter()
        .enumerate()
        .filter_map(|(i, set)| set.then_some(i))
        .collect();
        BitString::from_bits(&bits)
    }

    fn from_value(v: &[u8]) -> Result<ResetOptions, Es10Error> {
        let b = BitString::from_value(v, "resetOptions")?;
        Ok(ResetOptions {
            delete_operational_profiles: b.bit(0),
            delete_test_profiles: b.bit(1),
            reset_default_smdp_address: b.bit(2),
        })
    }
}

/// `GetCertsResponse` (`BF56`, SGP.32 / SGP.22 v3 ES10b.GetCerts): `certs [0] SEQUENCE
/// { eumCertificate [5] Certificate, euiccCertificate [6] Certificate }` =
/// `A0 { A5 <EUM> A6 <eUICC> }` (IMPLICIT under AUTOMATIC TAGS: each certificate's SEQUENCE
/// tag becomes `A5` / `A6`, its contents unchanged), or `getCertsError [1]` = `81 <code>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GetCertsResponse {
    /// Both certificates as plain DER (tag `30`).
    Certs {
        eum_certificate: Vec<u8>,
        euicc_certificate: Vec<u8>,
    },
    /// `invalidCiPKId(1)`: the eUICC has no chain to the CI asked for.
    InvalidCiPkid,
    UndefinedError,
}

/// A DER SEQUENCE re-tagged (same length octets) as `tag`, or back.
fn retag(der: &[u8], tag: u8) -> Vec<u8> {
    let mut v = der.to_vec();
    if let Some(first) = v.first_mut() {
        *first = tag;
    }
    v
}

impl GetCertsResponse {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            GetCertsResponse::Certs {
                eum_certificate,
                euicc_certificate,
            } => {
                let mut certs = retag(eum_certificate, 0xA5);
                certs.extend(retag(euicc_certificate, 0xA6));
                choice_ok(tag::GET_CERTS, &certs)
            }
            GetCertsResponse::InvalidCiPkid => choice_error(tag::GET_CERTS, 1),
            GetCertsResponse::UndefinedError => choice_error(tag::GET_CERTS, 127),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<GetCertsResponse, Es10Error> {
        match read_choice(bytes, tag::GET_CERTS)? {
            Choice::Ok(mut rest) => {
                let mut take = |expected: u32| -> Result<Vec<u8>, Es10Error> {
                    let (obj, after) = der::read_one(rest)?;
                    if obj.tag != expected {
                        return Err(Es10Error::UnexpectedTag {
                            expected,
                            found: obj.tag,
                        });
                    }
                    let raw = rest.get(..rest.len() - after.len()).unwrap_or_default();
                    rest = after;
                    Ok(retag(raw, 0x30))
                };
                Ok(GetCertsResponse::Certs {
                    eum_certificate: take(0xA5)?,
                    euicc_certificate: take(0xA6)?,
                })
            }
            Choice::Error(1) => Ok(GetCertsResponse::InvalidCiPkid),
            Choice::Error(127) => Ok(GetCertsResponse::UndefinedError),
            Choice::Error(code) => Err(unknown_code("GetCerts", code)),
        }
    }
}

/// The two sides of SGP.22's answer CHOICE `{ ok [0] ..., error [1] INTEGER }`.
pub(crate) enum Choice<'a> {
    /// The value of `A0`.
    Ok(&'a [u8]),
    /// The code in `81`.
    Error(u32),
}

/// `<tag> { A0 { value } }`.
pub(crate) fn choice_ok(function: u32, value: &[u8]) -> Vec<u8> {
    tlv::build(function, &tlv::build(tag::CHOICE_0, value))
}

/// `<tag> { 81 01 <code> }`.
pub(crate) fn choice_error(function: u32, code: u8) -> Vec<u8> {
    tlv::build(function, &tlv::build(tag::LIST_ERROR, &[code]))
}

/// Read `<tag> { A0 {…} | 81 code }`.
pub(crate) fn read_choice(bytes: &[u8], function: u32) -> Result<Choice<'_>, Es10Error> {
    let choice = der::read_exactly_one(der::read_expected(bytes, function)?)?;
    match choice.tag {
        tag::CHOICE_0 => Ok(Choice::Ok(choice.value)),
        tag::LIST_ERROR => Ok(Choice::Error(der::read_uint(choice.value, "error code")?)),
        found => Err(Es10Error::UnexpectedTag {
            expected: tag::CHOICE_0,
            found,
        }),
    }
}

pub(crate) fn unknown_code(function: &'static str, code: u32) -> Es10Error {
    Es10Error::UnknownResultCode { function, code }
}

/// The ES10b/ES10c requests of this module, as parsed from a STORE DATA payload (the
/// dispatch on the top-level tag lives in [`super::Es10Request`]).
pub(crate) mod request {
    use super::*;
    use crate::es10::der::DataObject;

    pub fn list_notification(c: &[DataObject<'_>]) -> Result<Option<EventSet>, Es10Error> {
        der::find(c, tag::NOTIFICATION_EVENT)
            .map(EventSet::from_value)
            .transpose()
    }

    pub fn retrieve(c: &[DataObject<'_>]) -> Result<Option<NotificationSearch>, Es10Error> {
        let Some(v) = der::find(c, tag::CHOICE_0) else {
            return Ok(None);
        };
        let inner = der::read_exactly_one(v)?;
        Ok(Some(match inner.tag {
            tag::SEQ_NUMBER => NotificationSearch::Seq(der::read_uint(inner.value, "seqNumber")?),
            tag::NOTIFICATION_EVENT => {
                NotificationSearch::Events(EventSet::from_value(inner.value)?)
            }
            found => {
                return Err(Es10Error::UnexpectedTag {
                    expected: tag::SEQ_NUMBER,
                    found,
                })
            }
        }))
    }

    pub fn seq_number(c: &[DataObject<'_>]) -> Result<u32, Es10Error> {
        let v = der::find(c, tag::SEQ_NUMBER).ok_or(Es10Error::Missing("seqNumber (80)"))?;
        der::read_uint(v, "seqNumber")
    }

    pub fn cancel_session(c: &[DataObject<'_>]) -> Result<(Vec<u8>, u32), Es10Error> {
        let id = der::find(c, 0x80).ok_or(Es10Error::Missing("transactionId (80)"))?;
        if id.is_empty() || id.len() > 16 {
            return Err(Es10Error::Invalid {
                field: "transactionId",
                reason: "a TransactionId has 1 to 16 bytes",
            });
        }
        let reason = der::find(c, 0x81).ok_or(Es10Error::Missing("reason (81)"))?;
        Ok((id.to_vec(), der::read_uint(reason, "reason")?))
    }

    pub fn memory_reset(c: &[DataObject<'_>]) -> Result<ResetOptions, Es10Error> {
        let v = der::find(c, tag::RESET_OPTIONS).ok_or(Es10Error::Missing("resetOptions (82)"))?;
        ResetOptions::from_value(v)
    }

    pub fn default_dp_address(c: &[DataObject<'_>]) -> Result<String, Es10Error> {
        let v = der::find(c, 0x80).ok_or(Es10Error::Missing("defaultDpAddress (80)"))?;
        let address = utf8(v, "defaultDpAddress")?;
        // An FQDN has at most 255 characters (RFC 1035 §2.3.4); an empty one resets it.
        if address.len() > 255 {
            return Err(Es10Error::Invalid {
                field: "defaultDpAddress",
                reason: "longer than an FQDN (255 characters)",
            });
        }
        Ok(address)
    }

    /// The body (value of the top-level tag) of each request of this module.
    pub fn list_notification_body(filter: &Option<EventSet>) -> Vec<u8> {
        filter
            .map(|f| tlv::build(tag::NOTIFICATION_EVENT, &f.value()))
            .unwrap_or_default()
    }

    pub fn retrieve_body(search: &Option<NotificationSearch>) -> Vec<u8> {
        match search {
            None => Vec::new(),
            Some(NotificationSearch::Seq(s)) => {
                let mut inner = Vec::new();
                der::push_uint(&mut inner, tag::SEQ_NUMBER, *s);
                tlv::build(tag::CHOICE_0, &inner)
            }
            Some(NotificationSearch::Events(set)) => tlv::build(
                tag::CHOICE_0,
                &tlv::build(tag::NOTIFICATION_EVENT, &set.value()),
            ),
        }
    }

    pub fn seq_body(seq: u32) -> Vec<u8> {
        let mut body = Vec::new();
        der::push_uint(&mut body, tag::SEQ_NUMBER, seq);
        body
    }

    pub fn cancel_session_body(transaction_id: &[u8], reason: u32) -> Vec<u8> {
        let mut body = tlv::build(0x80, transaction_id);
        der::push_uint(&mut body, 0x81, reason);
        body
    }

    pub fn get_certs(c: &[DataObject<'_>]) -> Option<Vec<u8>> {
        der::find(c, 0x80).map(<[u8]>::to_vec)
    }

    pub fn get_certs_body(ci_pkid: &Option<Vec<u8>>) -> Vec<u8> {
        ci_pkid
            .as_ref()
            .map(|k| tlv::build(0x80, k))
            .unwrap_or_default()
    }

    pub fn memory_reset_body(options: &ResetOptions) -> Vec<u8> {
        tlv::build(tag::RESET_OPTIONS, &options.bits().value())
    }
}
