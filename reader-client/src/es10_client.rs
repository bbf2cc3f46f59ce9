//! The local profile assistant side of SGP.22 ES10c, sent exactly as lpac sends it.
//!
//! The opening (protocols.md §A.1, lpac `euicc/euicc.c`): TERMINAL CAPABILITIES on the basic
//! channel (answer ignored), MANAGE CHANNEL open (exactly one data byte + `9000`), SELECT of
//! the ISD-R on that channel without Le (`90xx` or `61xx`). Each ES10 function then travels
//! as STORE DATA blocks of 120 bytes in class `80|ch`, the answer fetched with GET RESPONSE
//! in class `80|ch` (not `00|ch`) while the card says `61xx`. [`Es10Client::close`] (or
//! dropping the client) sends MANAGE CHANNEL close `00 70 80 ch 00`.
//!
//! Works over any [`Transport`]: PC/SC, the in-process card, or a secure channel
//! ([`crate::scp::Scp`]) bound to an already selected channel via [`Es10Client::attach`].

use crate::exchange::transmit_following;
use crate::{ClientError, Transport};
use apdu_specs::es10::{
    self, store_data_apdus, Aid, DeleteResult, DisableResult, EnableResult, Es10Error, Es10Request,
    Iccid, ProfileClass, ProfileId, ProfileInfo, ProfileInfoListRequest, ProfileInfoListResponse,
    ProfileState, ResultCode, SetNicknameResult, StoreDataError,
};
use apdu_specs::ins::{es10 as es10_ins, iso};
use apdu_specs::Response;
use apdu_specs::Status;
use std::fmt;

/// TERMINAL CAPABILITIES as lpac sends it before anything else (ETSI TS 102 221 §11.1.19).
#[rustfmt::skip]
pub const TERMINAL_CAPABILITIES: [u8; 15] = [
    0x80, es10_ins::TERMINAL_CAPABILITIES, 0x00, 0x00, 0x0A,
    0xA9, 0x08, 0x81, 0x00, 0x82, 0x01, 0x01, 0x83, 0x01, 0x07,
];
/// MANAGE CHANNEL open, the card picks the channel (ISO 7816-4 §11.1.2).
pub const MANAGE_CHANNEL_OPEN: [u8; 5] = [0x00, iso::MANAGE_CHANNEL, 0x00, 0x00, 0x01];
/// Most GET RESPONSE commands one ES10 function may need before the card is declared broken.
const MAX_GET_RESPONSE: usize = 1024;

/// Why an ES10c exchange failed (the card's *result codes* are not errors: see [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum Es10ClientError {
    #[error(transparent)]
    Transport(#[from] ClientError),
    #[error("MANAGE CHANNEL open answered {0}: the card has no free logical channel (close other sessions or reset the card) or does not support logical channels")]
    ChannelOpen(String),
    #[error("SELECT of the ISD-R {aid} answered {status}: this card is not an eUICC, or its card manager is not at that AID")]
    SelectIsdR { aid: String, status: Status },
    #[error("{function}: STORE DATA answered {status}; the card refused the ES10 request (6A80: malformed, 6A81: function not supported, 6982: a secure channel may be required)")]
    StoreData {
        function: &'static str,
        status: Status,
    },
    #[error("{function}: the card's answer is not valid SGP.22 ({source})")]
    Decode {
        function: &'static str,
        #[source]
        source: Es10Error,
    },
    #[error("cannot encode the ES10 request: {0}")]
    Encode(#[from] Es10Error),
    #[error("cannot segment the ES10 request: {0}")]
    Segment(#[from] StoreDataError),
    #[error(
        "{function}: the card kept answering 61xx after {MAX_GET_RESPONSE} GET RESPONSE commands"
    )]
    EndlessGetResponse { function: &'static str },
    #[error("ProfileInfoList answered the error {0}")]
    ListError(&'static str),
    #[error("{function} answered the error {code}")]
    Refused {
        function: &'static str,
        code: &'static str,
    },
    #[error(
        "no container has {0} (run `reader-client containers list` to see the ICCIDs and AIDs)"
    )]
    NotFound(String),
    #[error("container {0} has no ICCID, which SetNickname needs")]
    NoIccid(String),
}

/// How to open the ISD-R.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Es10Options {
    /// The ISD-R AID (lpac: `LPAC_CUSTOM_ISD_R_AID`).
    pub isd_r: Vec<u8>,
    /// STORE DATA segment size (lpac: `LPAC_CUSTOM_ES10X_MSS`, default 120).
    pub mss: usize,
}

impl Default for Es10Options {
    fn default() -> Es10Options {
        Es10Options {
            isd_r: es10::ISD_R_AID.to_vec(),
            mss: es10::DEFAULT_MSS,
        }
    }
}

/// An ES10c session with the ISD-R on one logical channel.
pub struct Es10Client<'t> {
    t: &'t mut dyn Transport,
    channel: u8,
    mss: usize,
    /// Whether this client opened the channel (and so closes it).
    owns_channel: bool,
    closed: bool,
}

/// The SGP.22 name of a result code (`ok`, `iccidOrAidNotFound`, …): the ASN.1 identifier,
/// derived from the one table of codes in `apdu_specs::es10` (variant names are the ASN.1
/// names with the first letter capitalised).
pub fn result_name<R: ResultCode + fmt::Debug>(r: R) -> String {
    let debug = format!("{r:?}");
    let mut chars = debug.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => debug,
    }
}

/// The outcome of a management function: which function, its result code and SGP.22 name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub function: &'static str,
    pub code: u8,
    /// SGP.22 name (`ok`, `profileNotInDisabledState`, …).
    pub name: String,
}

impl Outcome {
    pub fn of<R: ResultCode + fmt::Debug>(r: R) -> Outcome {
        Outcome {
            function: R::FUNCTION,
            code: r.code(),
            name: result_name(r),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.code == 0
    }

    /// What the user can do about a non-ok result.
    pub fn advice(&self) -> &'static str {
        match (self.function, self.name.as_str()) {
            (_, "ok") => "",
            (_, "iccidOrAidNotFound" | "iccidNotFound") => {
                "no container has that ICCID or ISD-P AID; run `reader-client containers list`"
            }
            ("EnableProfile", "profileNotInDisabledState") => {
                "that container is already enabled"
            }
            ("DeleteProfile", "profileNotInDisabledState") => {
                "only a disabled container can be deleted; disable it first with `reader-client containers disable ID`"
            }
            ("DisableProfile", "profileNotInEnabledState") => "that container is already disabled",
            (_, "disallowedByPolicy") => {
                "the card's policy forbids this (the profile may require a GlobalPlatform secure channel for ES10)"
            }
            ("EnableProfile" | "DisableProfile" | "DeleteProfile", "undefinedError") => {
                "the card refused without a specific reason; a full notification list does this: \
                 `reader-client containers notifications` lists them, `--remove SEQ` clears one an SM-DP+ received"
            }
            ("NotificationSent", "nothingToDelete") => {
                "no pending notification has that sequence number; `reader-client containers notifications` lists them"
            }
            (_, "catBusy") => "the card is busy with a proactive session; retry",
            (_, "wrongProfileReenabling") => {
                "the card refuses to re-enable this profile right after a switch; retry later"
            }
            _ => "the card failed without saying why; see its log (card-emulator run --trace)",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.function, self.name, self.code)
    }
}

fn status_of(r: &Response) -> u16 {
    r.status.to_u16()
}

impl<'t> Es10Client<'t> {
    /// lpac's opening with the default ISD-R and segment size.
    pub fn open(t: &'t mut dyn Transport) -> Result<Es10Client<'t>, Es10ClientError> {
        Es10Client::open_with(t, &Es10Options::default())
    }

    /// TERMINAL CAPABILITIES (answer ignored), MANAGE CHANNEL open, SELECT ISD-R on it.
    pub fn open_with(
        t: &'t mut dyn Transport,
        options: &Es10Options,
    ) -> Result<Es10Client<'t>, Es10ClientError> {
        // SGP.22 §5.7 / lpac: sent and its answer ignored (cards that do not know it say 6D00).
        let _ = t.transmit(&TERMINAL_CAPABILITIES)?;
        let r = crate::exchange::parse_response(&t.transmit(&MANAGE_CHANNEL_OPEN)?)?;
        let channel = match (r.data.as_slice(), r.status) {
            ([ch @ 1..=3], Status::Success) => *ch,
            (data, status) => {
                return Err(Es10ClientError::ChannelOpen(format!(
                    "{} data byte(s) {}, SW {status}; lpac needs exactly one byte (1..3) + 9000",
                    data.len(),
                    apdu_specs::hexfmt::spaced(data)
                )))
            }
        };
        let mut client = Es10Client {
            t,
            channel,
            mss: options.mss,
            owns_channel: true,
            closed: false,
        };
        client.select(&options.isd_r)?;
        Ok(client)
    }

    /// Use a channel on which the ISD-R is already selected (e.g. inside a secure channel);
    /// [`Es10Client::close`] then leaves the channel open.
    pub fn attach(t: &'t mut dyn Transport, channel: u8) -> Es10Client<'t> {
        Es10Client {
            t,
            channel,
            mss: es10::DEFAULT_MSS,
            owns_channel: false,
            closed: false,
        }
    }

    /// The logical channel in use.
    pub fn channel(&self) -> u8 {
        self.channel
    }

    fn select(&mut self, aid: &[u8]) -> Result<(), Es10ClientError> {
        let lc = u8::try_from(aid.len()).unwrap_or(u8::MAX);
        let mut apdu = vec![self.channel, iso::SELECT, 0x04, 0x00, lc];
        apdu.extend_from_slice(aid);
        // No Le, as lpac; the FCI (if announced with 61xx) is fetched and discarded.
        let r = transmit_following(self.t, &apdu, true)?;
        if status_of(&r) >> 8 != 0x90 {
            return Err(Es10ClientError::SelectIsdR {
                aid: apdu_specs::hexfmt::upper(aid),
                status: r.status,
            });
        }
        Ok(())
    }

    /// One ES10 function: the request in STORE DATA blocks, the whole answer (joined across
    /// GET RESPONSE in class `80|ch`).
    pub fn call(&mut self, request: &Es10Request) -> Result<Vec<u8>, Es10ClientError> {
        let function = request.name();
        let cla = 0x80 | self.channel;
        let payload = request.to_bytes()?;
        let blocks = store_data_apdus(cla, &payload, self.mss)?;
        let mut data = Vec::new();
        let last = blocks.len().saturating_sub(1);
        for (i, block) in blocks.iter().enumerate() {
            let mut r = crate::exchange::parse_response(&self.t.transmit(block)?)?;
            let mut get_responses = 0;
            while let Status::BytesAvailable(n) = r.status {
                data.extend_from_slice(&r.data);
                get_responses += 1;
                if get_responses > MAX_GET_RESPONSE {
                    return Err(Es10ClientError::EndlessGetResponse { function });
                }
                r = crate::exchange::parse_response(&self.t.transmit(&[
                    cla,
                    iso::GET_RESPONSE,
                    0,
                    0,
                    n,
                ])?)?;
            }
            data.extend_from_slice(&r.data);
            // lpac: success is SW1 = 9x.
            if status_of(&r) >> 12 != 0x9 {
                return Err(Es10ClientError::StoreData {
                    function,
                    status: r.status,
                });
            }
            if i != last {
                data.clear();
            }
        }
        Ok(data)
    }

    /// ProfileInfoList (`BF2D`) with no search criteria and every field.
    pub fn list_profiles(&mut self) -> Result<Vec<ProfileInfo>, Es10ClientError> {
        let request = Es10Request::ProfileInfoList(ProfileInfoListRequest::default());
        let answer = self.call(&request)?;
        match ProfileInfoListResponse::parse(&answer).map_err(|source| Es10ClientError::Decode {
            function: "ProfileInfoList",
            source,
        })? {
            ProfileInfoListResponse::Ok(list) => Ok(list),
            ProfileInfoListResponse::Error(e) => Err(Es10ClientError::ListError(match e {
                es10::ProfileInfoListError::IncorrectInputValues => "incorrectInputValues",
                es10::ProfileInfoListError::UndefinedError => "undefinedError",
            })),
        }
    }

    /// One function whose answer `parse` reads.
    fn answer<T>(
        &mut self,
        request: &Es10Request,
        parse: impl FnOnce(&[u8]) -> Result<T, Es10Error>,
    ) -> Result<T, Es10ClientError> {
        let answer = self.call(request)?;
        parse(&answer).map_err(|source| Es10ClientError::Decode {
            function: request.name(),
            source,
        })
    }

    /// GetEuiccData (`BF3E`): the EID.
    pub fn eid(&mut self) -> Result<es10::Eid, Es10ClientError> {
        let request = Es10Request::GetEuiccData(es10::GetEuiccData::eid());
        Ok(self.answer(&request, es10::EidResponse::parse)?.eid)
    }

    /// GetEuiccInfo1 (`BF20`): the SGP.22 version and the CIs the eUICC trusts and signs for.
    pub fn euicc_info1(&mut self) -> Result<es10::EuiccInfo1, Es10ClientError> {
        self.answer(&Es10Request::GetEuiccInfo1, es10::EuiccInfo1::parse)
    }

    /// EuiccConfiguredAddresses (`BF3C`): default SM-DP+ and root SM-DS.
    pub fn configured_addresses(
        &mut self,
    ) -> Result<es10::EuiccConfiguredAddresses, Es10ClientError> {
        self.answer(
            &Es10Request::GetEuiccConfiguredAddresses,
            es10::EuiccConfiguredAddresses::parse,
        )
    }

    /// GetCerts (`BF56`): the EUM and eUICC certificates, or why the card has none.
    pub fn certificates(&mut self) -> Result<es10::GetCertsResponse, Es10ClientError> {
        let request = Es10Request::GetCerts { ci_pkid: None };
        self.answer(&request, es10::GetCertsResponse::parse)
    }

    /// ListNotification (`BF28`), every operation: the pending notifications' metadata.
    pub fn list_notifications(
        &mut self,
    ) -> Result<Vec<es10::NotificationMetadata>, Es10ClientError> {
        let request = Es10Request::ListNotification { filter: None };
        match self.answer(&request, es10::ListNotificationResponse::parse)? {
            es10::ListNotificationResponse::Ok(list) => Ok(list),
            es10::ListNotificationResponse::UndefinedError => Err(Es10ClientError::Refused {
                function: request.name(),
                code: "undefinedError",
            }),
        }
    }

    /// RetrieveNotificationsList (`BF2B`): the signed notifications `search` selects (all
    /// for `None`); none matching is an empty list.
    pub fn retrieve_notifications(
        &mut self,
        search: Option<es10::NotificationSearch>,
    ) -> Result<Vec<es10::PendingNotification>, Es10ClientError> {
        let request = Es10Request::RetrieveNotificationsList { search };
        match self.answer(&request, es10::RetrieveNotificationsListResponse::parse)? {
            es10::RetrieveNotificationsListResponse::Ok(list) => Ok(list),
            es10::RetrieveNotificationsListResponse::NoResultAvailable => Ok(Vec::new()),
            es10::RetrieveNotificationsListResponse::UndefinedError => {
                Err(Es10ClientError::Refused {
                    function: request.name(),
                    code: "undefinedError",
                })
            }
        }
    }

    /// RemoveNotificationFromList (`BF30`, NotificationSent): the LPA delivered `seq`.
    pub fn remove_notification(
        &mut self,
        seq: u32,
    ) -> Result<es10::NotificationSentResult, Es10ClientError> {
        self.result(&Es10Request::NotificationSent { seq })
    }

    fn result<R: ResultCode>(&mut self, request: &Es10Request) -> Result<R, Es10ClientError> {
        let answer = self.call(request)?;
        R::parse(&answer).map_err(|source| Es10ClientError::Decode {
            function: R::FUNCTION,
            source,
        })
    }

    /// EnableProfile (`BF31`), refreshFlag false (as `lpac profile enable X`).
    pub fn enable(&mut self, id: &ProfileId) -> Result<EnableResult, Es10ClientError> {
        self.result(&Es10Request::EnableProfile {
            id: id.clone(),
            refresh: false,
        })
    }

    /// DisableProfile (`BF32`), refreshFlag false.
    pub fn disable(&mut self, id: &ProfileId) -> Result<DisableResult, Es10ClientError> {
        self.result(&Es10Request::DisableProfile {
            id: id.clone(),
            refresh: false,
        })
    }

    /// DeleteProfile (`BF33`): only a disabled profile can go.
    pub fn delete(&mut self, id: &ProfileId) -> Result<DeleteResult, Es10ClientError> {
        self.result(&Es10Request::DeleteProfile { id: id.clone() })
    }

    /// SetNickname (`BF29`). SGP.22 names the profile by ICCID only; an ISD-P AID is
    /// resolved to its ICCID through ProfileInfoList first.
    pub fn set_nickname(
        &mut self,
        id: &ProfileId,
        nickname: &str,
    ) -> Result<SetNicknameResult, Es10ClientError> {
        let iccid = match id {
            ProfileId::Iccid(i) => *i,
            ProfileId::IsdpAid(aid) => self.iccid_of(aid)?,
        };
        self.result(&Es10Request::SetNickname {
            iccid,
            nickname: nickname.to_string(),
        })
    }

    fn iccid_of(&mut self, aid: &Aid) -> Result<Iccid, Es10ClientError> {
        let list = self.list_profiles()?;
        let p = list
            .iter()
            .find(|p| p.isdp_aid.as_ref() == Some(aid))
            .ok_or_else(|| Es10ClientError::NotFound(format!("ISD-P AID {aid}")))?;
        p.iccid
            .ok_or_else(|| Es10ClientError::NoIccid(aid.to_string()))
    }

    /// MANAGE CHANNEL close `00 70 80 ch 00` (when this client opened the channel).
    pub fn close(mut self) -> Result<(), Es10ClientError> {
        self.close_channel()
    }

    fn close_channel(&mut self) -> Result<(), Es10ClientError> {
        if self.closed || !self.owns_channel {
            self.closed = true;
            return Ok(());
        }
        self.closed = true;
        let r = crate::exchange::parse_response(&self.t.transmit(&[
            0x00,
            iso::MANAGE_CHANNEL,
            0x80,
            self.channel,
            0x00,
        ])?)?;
        if r.status != Status::Success {
            return Err(Es10ClientError::ChannelOpen(format!(
                "MANAGE CHANNEL close of channel {} answered {}",
                self.channel, r.status
            )));
        }
        Ok(())
    }
}

impl Drop for Es10Client<'_> {
    /// Best effort: leave no channel open behind an early return.
    fn drop(&mut self) {
        let _ = self.close_channel();
    }
}

/// SGP.22 name of a profile state.
pub fn state_name(s: ProfileState) -> &'static str {
    match s {
        ProfileState::Disabled => "disabled",
        ProfileState::Enabled => "enabled",
    }
}

/// SGP.22 name of a profile class.
pub fn class_name(c: ProfileClass) -> &'static str {
    match c {
        ProfileClass::Test => "test",
        ProfileClass::Provisioning => "provisioning",
        ProfileClass::Operational => "operational",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tests::fn_card;
    use crate::InProcess;
    use card_emulator::{profile, Card};

    const ICCID_A: &str = "8944476500001224158";
    const ICCID_B: &str = "89000123456789012341";

    fn card() -> InProcess<Card> {
        InProcess::new(Card::in_memory(
            profile::build(profile::DEFAULT_PROFILE).unwrap(),
        ))
    }

    fn id(s: &str) -> ProfileId {
        s.parse().unwrap()
    }

    #[test]
    fn lists_enables_disables_and_deletes_on_the_in_process_card() {
        let mut t = card();
        let mut c = Es10Client::open(&mut t).unwrap();
        assert_eq!(c.channel(), 1);
        let l = c.list_profiles().unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].iccid.unwrap().to_string(), ICCID_A);
        assert_eq!(l[0].state, Some(ProfileState::Enabled));
        assert_eq!(c.enable(&id(ICCID_B)).unwrap(), EnableResult::Ok);
        assert_eq!(
            c.enable(&id(ICCID_B)).unwrap(),
            EnableResult::ProfileNotInDisabledState
        );
        assert_eq!(
            c.delete(&id(ICCID_B)).unwrap(),
            DeleteResult::ProfileNotInDisabledState
        );
        assert_eq!(c.disable(&id(ICCID_B)).unwrap(), DisableResult::Ok);
        assert_eq!(
            c.disable(&id(ICCID_B)).unwrap(),
            DisableResult::ProfileNotInEnabledState
        );
        let aid_a = "A0000005591010FFFFFFFF8900001000";
        assert_eq!(c.delete(&id(aid_a)).unwrap(), DeleteResult::Ok);
        assert_eq!(
            c.enable(&id(aid_a)).unwrap(),
            EnableResult::IccidOrAidNotFound
        );
        let l = c.list_profiles().unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].state, Some(ProfileState::Disabled));
        c.close().unwrap();
        // The channel is closed: its class is refused.
        let r = t
            .transmit(&[0x81, 0xE2, 0x91, 0x00, 0x03, 0xBF, 0x2D, 0x00])
            .unwrap();
        assert_eq!(r, vec![0x68, 0x81]);
    }

    #[test]
    fn nickname_by_iccid_and_by_aid() {
        let mut t = card();
        let mut c = Es10Client::open(&mut t).unwrap();
        assert_eq!(
            c.set_nickname(&id(ICCID_A), "work").unwrap(),
            SetNicknameResult::Ok
        );
        assert_eq!(
            c.set_nickname(&id("A0000005591010FFFFFFFF8900001100"), "home")
                .unwrap(),
            SetNicknameResult::Ok
        );
        let l = c.list_profiles().unwrap();
        assert_eq!(l[0].nickname.as_deref(), Some("work"));
        assert_eq!(l[1].nickname.as_deref(), Some("home"));
        assert!(matches!(
            c.set_nickname(&id("A0000005591010FFFFFFFF8900001700"), "x"),
            Err(Es10ClientError::NotFound(_))
        ));
        assert_eq!(
            c.set_nickname(&id("89000123456789012349"), "x").unwrap(),
            SetNicknameResult::IccidNotFound
        );
    }

    #[test]
    fn sends_exactly_lpacs_sequence_with_120_byte_blocks_and_8x_get_response() {
        let mut sent: Vec<String> = Vec::new();
        let mut t = fn_card(|apdu| {
            sent.push(apdu_specs::hexfmt::upper(apdu));
            match apdu {
                [0x80, 0xAA, ..] => vec![0x6D, 0x00],
                [0x00, 0x70, 0x00, 0x00, 0x01] => vec![0x02, 0x90, 0x00],
                [0x02, 0xA4, ..] => vec![0x61, 0x05],
                [0x02, 0xC0, 0, 0, 5] => vec![1, 2, 3, 4, 5, 0x90, 0x00],
                [0x82, 0xE2, 0x11, ..] => vec![0x90, 0x00],
                [0x82, 0xE2, 0x91, ..] => vec![0xBF, 0x29, 0x61, 0x04],
                // SW 9100 is success too (lpac: SW1 = 9x).
                [0x82, 0xC0, 0, 0, 4] => vec![0x03, 0x80, 0x01, 0x00, 0x91, 0x00],
                [0x00, 0x70, 0x80, 0x02, 0x00] => vec![0x90, 0x00],
                _ => vec![0x6D, 0x00],
            }
        });
        let mut c = Es10Client::open(&mut t).unwrap();
        // BF29 4E { 5A 0A <iccid> 90 40 <64 bytes> }: 81 bytes, three blocks of at most 40.
        c.mss = 40;
        assert_eq!(
            c.set_nickname(&id(ICCID_A), &"n".repeat(64)).unwrap(),
            SetNicknameResult::Ok
        );
        c.close().unwrap();
        let _ = t.into_inner();
        assert_eq!(sent[0], "80AA00000AA9088100820101830107");
        assert_eq!(sent[1], "0070000001");
        assert_eq!(sent[2], "02A4040010A0000005591010FFFFFFFF8900000100");
        assert_eq!(sent[3], "02C0000005");
        assert!(sent[4].starts_with("82E2110028BF29"), "{}", sent[4]);
        assert!(sent[5].starts_with("82E2110128"), "{}", sent[5]);
        assert!(sent[6].starts_with("82E29102"), "{}", sent[6]);
        assert_eq!(sent[7], "82C0000004");
        assert_eq!(sent[8], "0070800200");
        assert_eq!(sent.len(), 9);
    }

    #[test]
    fn channel_open_needs_exactly_one_byte_and_9000() {
        for answer in [vec![0x90, 0x00], vec![1, 2, 0x90, 0x00], vec![0x6A, 0x81]] {
            let a = answer.clone();
            let mut t = fn_card(move |apdu| match apdu {
                [0x00, 0x70, ..] => a.clone(),
                _ => vec![0x90, 0x00],
            });
            assert!(
                matches!(
                    Es10Client::open(&mut t),
                    Err(Es10ClientError::ChannelOpen(_))
                ),
                "{answer:02X?}"
            );
        }
    }

    #[test]
    fn a_card_without_isd_r_is_reported() {
        let mut t = fn_card(|apdu| match apdu {
            [0x00, 0x70, ..] => vec![0x01, 0x90, 0x00],
            [0x01, 0xA4, ..] => vec![0x6A, 0x82],
            _ => vec![0x90, 0x00],
        });
        let e = Es10Client::open(&mut t).err().unwrap();
        assert!(e.to_string().contains("not an eUICC"), "{e}");
    }

    #[test]
    fn result_names_are_the_sgp22_identifiers() {
        assert_eq!(result_name(EnableResult::Ok), "ok");
        assert_eq!(
            result_name(EnableResult::IccidOrAidNotFound),
            "iccidOrAidNotFound"
        );
        assert_eq!(
            result_name(DisableResult::ProfileNotInEnabledState),
            "profileNotInEnabledState"
        );
        assert_eq!(result_name(EnableResult::CatBusy), "catBusy");
        assert_eq!(
            result_name(SetNicknameResult::IccidNotFound),
            "iccidNotFound"
        );
        let o = Outcome::of(DeleteResult::ProfileNotInDisabledState);
        assert!(!o.is_ok());
        assert!(o.advice().contains("disable it first"), "{}", o.advice());
        assert_eq!(
            o.to_string(),
            "DeleteProfile: profileNotInDisabledState (2)"
        );
    }
}
