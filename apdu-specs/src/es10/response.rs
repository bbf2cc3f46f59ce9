//! ES10c answers of the card: EID, profile list, and the result codes of
//! enable / disable / delete / set-nickname (SGP.22 §5.7.14-5.7.21).

use super::der;
use super::notify::{choice_error, choice_ok, read_choice, unknown_code, Choice};
use super::request::MAX_NICKNAME_CHARS;
use super::{tag, Aid, Eid, Es10Error, Iccid};
use crate::tlv;

/// `GetEuiccDataResponse` (`BF3E { 5A 10 <EID> }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EidResponse {
    pub eid: Eid,
}

impl EidResponse {
    pub fn to_bytes(&self) -> Vec<u8> {
        tlv::build(tag::GET_EUICC_DATA, &tlv::build(tag::EID, &self.eid.0))
    }

    pub fn parse(bytes: &[u8]) -> Result<EidResponse, Es10Error> {
        let body = der::read_all(der::read_expected(bytes, tag::GET_EUICC_DATA)?)?;
        let eid = der::find(&body, tag::EID).ok_or(Es10Error::Missing("eidValue (5A)"))?;
        let eid = eid.try_into().map_err(|_| Es10Error::Invalid {
            field: "eid",
            reason: "an EID has 16 bytes",
        })?;
        Ok(EidResponse { eid: Eid(eid) })
    }
}

/// `profileState [112]` (`9F70`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileState {
    Disabled = 0,
    Enabled = 1,
}

/// `profileClass [21]` (`95`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileClass {
    Test = 0,
    Provisioning = 1,
    Operational = 2,
}

impl ProfileState {
    pub fn code(self) -> u8 {
        self as u8
    }
    pub(crate) fn from_value(v: &[u8]) -> Result<ProfileState, Es10Error> {
        match der::read_uint(v, "profileState")? {
            0 => Ok(ProfileState::Disabled),
            1 => Ok(ProfileState::Enabled),
            _ => Err(Es10Error::Invalid {
                field: "profileState",
                reason: "not 0 (disabled) or 1 (enabled)",
            }),
        }
    }
}

impl ProfileClass {
    pub fn code(self) -> u8 {
        self as u8
    }
    pub(crate) fn from_value(v: &[u8]) -> Result<ProfileClass, Es10Error> {
        match der::read_uint(v, "profileClass")? {
            0 => Ok(ProfileClass::Test),
            1 => Ok(ProfileClass::Provisioning),
            2 => Ok(ProfileClass::Operational),
            _ => Err(Es10Error::Invalid {
                field: "profileClass",
                reason: "not 0 (test), 1 (provisioning) or 2 (operational)",
            }),
        }
    }
}

/// One `ProfileInfo` (`E3`). Every field is OPTIONAL in SGP.22 (a tag list may ask for
/// any subset); a card normally sends all of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ProfileInfo {
    /// `5A`.
    pub iccid: Option<Iccid>,
    /// `4F`.
    pub isdp_aid: Option<Aid>,
    /// `9F70`.
    pub state: Option<ProfileState>,
    /// `90`, at most 64 characters.
    pub nickname: Option<String>,
    /// `91`, at most 32 characters.
    pub service_provider_name: Option<String>,
    /// `92`, at most 64 characters.
    pub profile_name: Option<String>,
    /// `95`.
    pub profile_class: Option<ProfileClass>,
}

/// The tags a card returns when the request has no tag list, in encoding order.
pub const PROFILE_INFO_TAGS: [u32; 7] = [
    tag::ICCID,
    tag::ISDP_AID,
    tag::PROFILE_STATE,
    tag::NICKNAME,
    tag::SERVICE_PROVIDER_NAME,
    tag::PROFILE_NAME,
    tag::PROFILE_CLASS,
];

fn utf8(v: &[u8], field: &'static str, max_chars: usize) -> Result<String, Es10Error> {
    let s = std::str::from_utf8(v).map_err(|_| Es10Error::Invalid {
        field,
        reason: "not UTF-8",
    })?;
    if s.chars().count() > max_chars {
        return Err(Es10Error::Invalid {
            field,
            reason: "longer than SGP.22 allows",
        });
    }
    Ok(s.to_owned())
}

impl ProfileInfo {
    /// Only the fields whose tag is in `tag_list` (all of them for `None`).
    pub fn filtered(&self, tag_list: Option<&[u32]>) -> ProfileInfo {
        let Some(tags) = tag_list else {
            return self.clone();
        };
        let keep = |t: u32| tags.contains(&t);
        ProfileInfo {
            iccid: self.iccid.filter(|_| keep(tag::ICCID)),
            isdp_aid: self.isdp_aid.clone().filter(|_| keep(tag::ISDP_AID)),
            state: self.state.filter(|_| keep(tag::PROFILE_STATE)),
            nickname: self.nickname.clone().filter(|_| keep(tag::NICKNAME)),
            service_provider_name: self
                .service_provider_name
                .clone()
                .filter(|_| keep(tag::SERVICE_PROVIDER_NAME)),
            profile_name: self
                .profile_name
                .clone()
                .filter(|_| keep(tag::PROFILE_NAME)),
            profile_class: self.profile_class.filter(|_| keep(tag::PROFILE_CLASS)),
        }
    }

    /// The `E3` data object, fields in ASN.1 order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        if let Some(i) = &self.iccid {
            tlv::push(&mut body, tag::ICCID, i.as_bytes());
        }
        if let Some(a) = &self.isdp_aid {
            tlv::push(&mut body, tag::ISDP_AID, a.as_bytes());
        }
        if let Some(s) = self.state {
            tlv::push(&mut body, tag::PROFILE_STATE, &[s.code()]);
        }
        for (t, v) in [
            (tag::NICKNAME, &self.nickname),
            (tag::SERVICE_PROVIDER_NAME, &self.service_provider_name),
            (tag::PROFILE_NAME, &self.profile_name),
        ] {
            if let Some(v) = v {
                tlv::push(&mut body, t, v.as_bytes());
            }
        }
        if let Some(c) = self.profile_class {
            tlv::push(&mut body, tag::PROFILE_CLASS, &[c.code()]);
        }
        tlv::build(tag::PROFILE_INFO, &body)
    }

    /// From the value of an `E3`. Fields we do not model (icon, PPRs, …) are skipped.
    pub fn parse_value(value: &[u8]) -> Result<ProfileInfo, Es10Error> {
        let mut p = ProfileInfo::default();
        for f in der::read_all(value)? {
            match f.tag {
                tag::ICCID => p.iccid = Some(Iccid::from_bytes(f.value)?),
                tag::ISDP_AID => p.isdp_aid = Some(Aid::new(f.value)?),
                tag::PROFILE_STATE => p.state = Some(ProfileState::from_value(f.value)?),
                tag::NICKNAME => {
                    p.nickname = Some(utf8(f.value, "profileNickname", MAX_NICKNAME_CHARS)?)
                }
                tag::SERVICE_PROVIDER_NAME => {
                    p.service_provider_name = Some(utf8(f.value, "serviceProviderName", 32)?)
                }
                tag::PROFILE_NAME => p.profile_name = Some(utf8(f.value, "profileName", 64)?),
                tag::PROFILE_CLASS => p.profile_class = Some(ProfileClass::from_value(f.value)?),
                _ => {}
            }
        }
        Ok(p)
    }
}

/// `profileInfoListError [1]` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileInfoListError {
    IncorrectInputValues = 1,
    UndefinedError = 127,
}

/// `ProfileInfoListResponse` (`BF2D`): `A0 { E3 … }` or the error `81 <code>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProfileInfoListResponse {
    Ok(Vec<ProfileInfo>),
    Error(ProfileInfoListError),
}

impl ProfileInfoListResponse {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            ProfileInfoListResponse::Ok(list) => choice_ok(
                tag::PROFILE_INFO_LIST,
                &list
                    .iter()
                    .flat_map(ProfileInfo::to_bytes)
                    .collect::<Vec<u8>>(),
            ),
            ProfileInfoListResponse::Error(e) => choice_error(tag::PROFILE_INFO_LIST, *e as u8),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<ProfileInfoListResponse, Es10Error> {
        match read_choice(bytes, tag::PROFILE_INFO_LIST)? {
            Choice::Ok(items) => {
                let mut list = Vec::new();
                for e in der::read_all(items)? {
                    if e.tag != tag::PROFILE_INFO {
                        return Err(Es10Error::UnexpectedTag {
                            expected: tag::PROFILE_INFO,
                            found: e.tag,
                        });
                    }
                    list.push(ProfileInfo::parse_value(e.value)?);
                }
                Ok(ProfileInfoListResponse::Ok(list))
            }
            Choice::Error(1) => Ok(ProfileInfoListResponse::Error(
                ProfileInfoListError::IncorrectInputValues,
            )),
            Choice::Error(127) => Ok(ProfileInfoListResponse::Error(
                ProfileInfoListError::UndefinedError,
            )),
            Choice::Error(code) => Err(unknown_code("ProfileInfoList", code)),
        }
    }
}

/// A result code answered as `<tag> 03 80 01 <code>`: enable, disable, delete, nickname.
pub trait ResultCode: Sized + Copy {
    /// The function's top-level tag.
    const TAG: u32;
    /// The function's name, for error messages.
    const FUNCTION: &'static str;
    fn code(self) -> u8;
    fn from_code(code: u32) -> Option<Self>;

    /// `<tag> 03 80 01 <code>`.
    fn to_bytes(self) -> Vec<u8> {
        tlv::build(Self::TAG, &tlv::build(tag::RESULT, &[self.code()]))
    }

    fn parse(bytes: &[u8]) -> Result<Self, Es10Error> {
        let body = der::read_all(der::read_expected(bytes, Self::TAG)?)?;
        let v = der::find(&body, tag::RESULT).ok_or(Es10Error::Missing("result (80)"))?;
        let code = der::read_uint(v, "result")?;
        Self::from_code(code).ok_or(Es10Error::UnknownResultCode {
            function: Self::FUNCTION,
            code,
        })
    }
}

macro_rules! result_codes {
    ($(#[$doc:meta])* $name:ident, $tag:expr, $function:literal { $( $variant:ident = $code:literal, )* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $( $variant = $code, )* }

        impl $name {
            /// Every code, in table order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];
        }

        impl ResultCode for $name {
            const TAG: u32 = $tag;
            const FUNCTION: &'static str = $function;
            fn code(self) -> u8 { self as u8 }
            fn from_code(code: u32) -> Option<Self> {
                match code { $( $code => Some($name::$variant), )* _ => None }
            }
        }
    };
}

result_codes!(
    /// `EnableProfileResponse` (`BF31`) result.
    EnableResult, tag::ENABLE_PROFILE, "EnableProfile" {
        Ok = 0, IccidOrAidNotFound = 1, ProfileNotInDisabledState = 2, DisallowedByPolicy = 3,
        WrongProfileReenabling = 4, CatBusy = 5, UndefinedError = 127,
    }
);
result_codes!(
    /// `DisableProfileResponse` (`BF32`) result.
    DisableResult, tag::DISABLE_PROFILE, "DisableProfile" {
        Ok = 0, IccidOrAidNotFound = 1, ProfileNotInEnabledState = 2, DisallowedByPolicy = 3,
        CatBusy = 5, UndefinedError = 127,
    }
);
result_codes!(
    /// `DeleteProfileResponse` (`BF33`) result.
    DeleteResult, tag::DELETE_PROFILE, "DeleteProfile" {
        Ok = 0, IccidOrAidNotFound = 1, ProfileNotInDisabledState = 2, DisallowedByPolicy = 3,
        UndefinedError = 127,
    }
);
result_codes!(
    /// `SetNicknameResponse` (`BF29`) result.
    SetNicknameResult, tag::SET_NICKNAME, "SetNickname" {
        Ok = 0, IccidNotFound = 1, UndefinedError = 127,
    }
);
result_codes!(
    /// `NotificationSentResponse` (`BF30`) `deleteNotificationStatus`.
    NotificationSentResult, tag::NOTIFICATION_SENT, "NotificationSent" {
        Ok = 0, NothingToDelete = 1, UndefinedError = 127,
    }
);
result_codes!(
    /// `EuiccMemoryResetResponse` (`BF34`) `resetResult`.
    MemoryResetResult, tag::EUICC_MEMORY_RESET, "EuiccMemoryReset" {
        Ok = 0, NothingToDelete = 1, CatBusy = 5, UndefinedError = 127,
    }
);
result_codes!(
    /// `SetDefaultDpAddressResponse` (`BF3F`) `setDefaultDpAddressResult`.
    SetDefaultDpAddressResult, tag::SET_DEFAULT_DP_ADDRESS, "SetDefaultDpAddress" {
        Ok = 0, UndefinedError = 127,
    }
);
