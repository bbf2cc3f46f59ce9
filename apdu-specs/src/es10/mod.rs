//! SGP.22 ES10b and ES10c, the typed codec: the requests a local profile assistant (lpac)
//! sends to the ISD-R inside STORE DATA, the answers the card gives, and STORE DATA
//! segmentation.
//!
//! Both directions for every message: the card parses requests and encodes answers, the
//! terminal encodes requests and parses answers. Pure functions; no I/O. Parsers take
//! bytes from outside and never panic: any input yields a value or an [`Es10Error`].
//!
//! Sources: SGP.22 v2.x ASN.1 (`rsp.asn`, as shipped in lpac) and lpac's traces in
//! `shared/reference/protocols.md` §A.

pub mod cert;
pub mod der;
pub mod ids;
pub mod info;
pub mod notify;
pub mod request;
pub mod response;
pub mod store_data;

pub use ids::{luhn_valid, Aid, Eid, Iccid, ProfileId, ECASD_AID, GP_ISD_AID, ISD_R_AID};
pub use info::{
    BitString, CertificationData, EuiccConfiguredAddresses, EuiccInfo1, EuiccInfo2,
    ExtCardResource, RatResponse, Version,
};
pub use notify::{
    CancelSessionResponse, EuiccChallenge, EventSet, GetCertsResponse, ListNotificationResponse,
    NotificationEvent, NotificationMetadata, NotificationSearch, OtherSignedNotification,
    PendingNotification, ResetOptions, RetrieveNotificationsListResponse,
};
pub use request::{Es10Request, GetEuiccData, ProfileInfoListRequest, SearchCriteria};
pub use response::{
    DeleteResult, DisableResult, EidResponse, EnableResult, MemoryResetResult,
    NotificationSentResult, ProfileClass, ProfileInfo, ProfileInfoListError,
    ProfileInfoListResponse, ProfileState, ResultCode, SetDefaultDpAddressResult,
    SetNicknameResult,
};
pub use store_data::{
    segment, store_data_apdus, StoreDataAssembler, StoreDataError, StoreDataProgress, DEFAULT_MSS,
};

use crate::Status;

/// Every ES10 tag we speak, declared once.
pub mod tag {
    // Top-level functions (request and response share the tag).
    /// GetEuiccDataRequest / response (EID), `[62]`.
    pub const GET_EUICC_DATA: u32 = 0xBF3E;
    /// ProfileInfoListRequest / response, `[45]`.
    pub const PROFILE_INFO_LIST: u32 = 0xBF2D;
    /// EnableProfileRequest / response, `[49]`.
    pub const ENABLE_PROFILE: u32 = 0xBF31;
    /// DisableProfileRequest / response, `[50]`.
    pub const DISABLE_PROFILE: u32 = 0xBF32;
    /// DeleteProfileRequest / response, `[51]`.
    pub const DELETE_PROFILE: u32 = 0xBF33;
    /// SetNicknameRequest / response, `[41]`.
    pub const SET_NICKNAME: u32 = 0xBF29;
    /// EuiccConfiguredAddressesRequest / response, `[60]`.
    pub const EUICC_CONFIGURED_ADDRESSES: u32 = 0xBF3C;
    /// GetRatRequest / response, `[67]`.
    pub const GET_RAT: u32 = 0xBF43;
    /// GetEuiccInfo1Request / EUICCInfo1, `[32]`.
    pub const EUICC_INFO1: u32 = 0xBF20;
    /// GetEuiccInfo2Request / EUICCInfo2, `[34]`.
    pub const EUICC_INFO2: u32 = 0xBF22;
    /// GetEuiccChallengeRequest / response, `[46]`.
    pub const GET_EUICC_CHALLENGE: u32 = 0xBF2E;
    /// ListNotificationRequest / response, `[40]`.
    pub const LIST_NOTIFICATION: u32 = 0xBF28;
    /// RetrieveNotificationsListRequest / response, `[43]`.
    pub const RETRIEVE_NOTIFICATIONS_LIST: u32 = 0xBF2B;
    /// NotificationSentRequest / response (RemoveNotificationFromList), `[48]`.
    pub const NOTIFICATION_SENT: u32 = 0xBF30;
    /// CancelSessionRequest / response, `[65]`.
    pub const CANCEL_SESSION: u32 = 0xBF41;
    /// EuiccMemoryResetRequest / response, `[52]`.
    pub const EUICC_MEMORY_RESET: u32 = 0xBF34;
    /// SetDefaultDpAddressRequest / response, `[63]`.
    pub const SET_DEFAULT_DP_ADDRESS: u32 = 0xBF3F;
    /// GetCertsRequest / response, `[86]` (SGP.22 v3, SGP.32).
    pub const GET_CERTS: u32 = 0xBF56;

    // Fields.
    /// `eidValue [APPLICATION 26]` in the GetEuiccData answer (same number as ICCID).
    pub const EID: u32 = 0x5A;
    /// `Iccid ::= [APPLICATION 26] OCTET STRING (SIZE(10))`.
    pub const ICCID: u32 = 0x5A;
    /// `isdpAid [APPLICATION 15]`.
    pub const ISDP_AID: u32 = 0x4F;
    /// `tagList [APPLICATION 28]`.
    pub const TAG_LIST: u32 = 0x5C;
    /// `profileIdentifier [0]` (enable/disable) and `searchCriteria [0]` (list).
    pub const CHOICE_0: u32 = 0xA0;
    /// `refreshFlag [1] BOOLEAN` (enable/disable).
    pub const REFRESH_FLAG: u32 = 0x81;
    /// `[0] INTEGER` result code of enable/disable/delete/nickname.
    pub const RESULT: u32 = 0x80;
    /// `profileInfoListError [1]`.
    pub const LIST_ERROR: u32 = 0x81;
    /// `ProfileInfo ::= [PRIVATE 3] SEQUENCE`.
    pub const PROFILE_INFO: u32 = 0xE3;
    /// `profileState [112]`.
    pub const PROFILE_STATE: u32 = 0x9F70;
    /// `profileNickname [16]` (also in SetNicknameRequest).
    pub const NICKNAME: u32 = 0x90;
    /// `serviceProviderName [17]`.
    pub const SERVICE_PROVIDER_NAME: u32 = 0x91;
    /// `profileName [18]`.
    pub const PROFILE_NAME: u32 = 0x92;
    /// `profileClass [21]`.
    pub const PROFILE_CLASS: u32 = 0x95;
    /// `NotificationMetadata ::= [47] SEQUENCE`.
    pub const NOTIFICATION_METADATA: u32 = 0xBF2F;
    /// `ProfileInstallationResult ::= [55] SEQUENCE`.
    pub const PROFILE_INSTALLATION_RESULT: u32 = 0xBF37;
    /// `seqNumber [0] INTEGER` (and every other first automatic tag).
    pub const SEQ_NUMBER: u32 = 0x80;
    /// `profileManagementOperation [1] NotificationEvent`.
    pub const NOTIFICATION_EVENT: u32 = 0x81;
    /// `resetOptions [2] BIT STRING`.
    pub const RESET_OPTIONS: u32 = 0x82;
    /// Universal UTF8String (`notificationAddress`).
    pub const UTF8_STRING: u32 = 0x0C;
    /// Universal SEQUENCE (`OtherSignedNotification`, a certificate).
    pub const SEQUENCE: u32 = 0x30;
    /// `[APPLICATION 55]`: an eUICC signature.
    pub const SIGNATURE: u32 = 0x5F37;
}

/// Why an ES10 payload could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Es10Error {
    #[error("malformed BER-TLV: {0}")]
    Tlv(&'static str),
    #[error("{0} byte(s) after the ES10 data object; send exactly one")]
    TrailingData(usize),
    /// A well-formed request whose top-level tag is no ES10 function we implement.
    #[error("ES10 function with tag {0:X} is not supported by this card")]
    UnknownFunction(u32),
    #[error("expected tag {expected:X}, found {found:X}")]
    UnexpectedTag { expected: u32, found: u32 },
    #[error("mandatory field {0} is missing")]
    Missing(&'static str),
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error("{function} answered result code {code}, which SGP.22 does not define for it")]
    UnknownResultCode { function: &'static str, code: u32 },
}

impl Es10Error {
    /// The status word a card answers when a STORE DATA payload fails to parse:
    /// `6A81` for a function we do not implement, `6A80` for anything malformed.
    pub fn status(&self) -> Status {
        match self {
            Es10Error::UnknownFunction(_) => Status::FunctionNotSupported,
            _ => Status::IncorrectData,
        }
    }
}

#[cfg(test)]
mod tests;
