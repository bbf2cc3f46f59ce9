//! The ISD-R's ES10b functions outside a download: the eUICC challenge, notifications
//! (made by enable, disable and delete, signed, listed, retrieved, removed, durable),
//! cancelling a session, memory reset and the default SM-DP+ address.

use crate::common::{self, es10, open_isd_r, tx};
use apdu_specs::es10::{
    CancelSessionResponse, EuiccChallenge, EuiccConfiguredAddresses, ListNotificationResponse,
    MemoryResetResult, NotificationEvent, NotificationMetadata, NotificationSentResult,
    OtherSignedNotification, PendingNotification, ProfileInfoListResponse, ResultCode,
    RetrieveNotificationsListResponse, SetDefaultDpAddressResult,
};
use apdu_specs::hexfmt::{parse as hex, upper};
use card_emulator::state::Notifications;
use card_emulator::{profile, Card};
use p256::ecdsa::signature::Verifier;
use x509_cert::der::Decode;

const ICCID_A: &str = "984474560000214251F8"; // 8944476500001224158, enabled at start
const ICCID_B: &str = "98001032547698103214"; // 89000123456789012341

fn card() -> Card {
    let mut c = common::card();
    open_isd_r(&mut c);
    c
}

fn enable(c: &mut Card, iccid: &str) -> String {
    es10(c, &format!("BF3111A00C5A0A{iccid}810100"))
}

fn disable(c: &mut Card, iccid: &str) -> String {
    es10(c, &format!("BF3211A00C5A0A{iccid}810100"))
}

fn delete(c: &mut Card, iccid: &str) -> String {
    es10(c, &format!("BF330C5A0A{iccid}"))
}

fn list(c: &mut Card) -> Vec<NotificationMetadata> {
    match ListNotificationResponse::parse(&hex(&es10(c, "BF2800")).unwrap()).unwrap() {
        ListNotificationResponse::Ok(l) => l,
        e => panic!("{e:?}"),
    }
}

fn ops(list: &[NotificationMetadata]) -> Vec<(u32, NotificationEvent, String)> {
    list.iter()
        .map(|m| {
            (
                m.seq,
                m.event,
                m.iccid
                    .as_ref()
                    .map(|i| upper(i.as_bytes()))
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn retrieve(c: &mut Card, payload: &str) -> RetrieveNotificationsListResponse {
    RetrieveNotificationsListResponse::parse(&hex(&es10(c, payload)).unwrap()).unwrap()
}

fn remove(c: &mut Card, seq: u32) -> NotificationSentResult {
    let mut body = Vec::new();
    apdu_specs::der::push_uint(&mut body, 0x80, seq);
    let payload = apdu_specs::tlv::build(0xBF30, &body);
    NotificationSentResult::parse(&hex(&es10(c, &upper(&payload))).unwrap()).unwrap()
}

/// The public key in a DER certificate.
fn public_key(cert: &[u8]) -> p256::ecdsa::VerifyingKey {
    let cert = x509_cert::Certificate::from_der(cert).expect("a DER certificate");
    let spki = cert.tbs_certificate.subject_public_key_info;
    p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .expect("a P-256 key")
}

fn verifies(n: &OtherSignedNotification) -> bool {
    let Ok(sig) = p256::ecdsa::Signature::from_slice(&n.signature) else {
        return false;
    };
    public_key(&n.euicc_certificate)
        .verify(&n.tbs, &sig)
        .is_ok()
}

#[test]
fn enable_disable_and_delete_leave_numbered_notifications_lpac_can_list() {
    let mut c = card();
    assert!(list(&mut c).is_empty(), "a new card has none");
    // Enabling B while A is enabled disables A: two notifications (SGP.22 §3.2).
    assert_eq!(enable(&mut c, ICCID_B), "BF3103800100");
    assert_eq!(disable(&mut c, ICCID_B), "BF3203800100");
    assert_eq!(delete(&mut c, ICCID_B), "BF3303800100");
    let l = list(&mut c);
    assert_eq!(
        ops(&l),
        vec![
            (1, NotificationEvent::Disable, ICCID_A.to_string()),
            (2, NotificationEvent::Enable, ICCID_B.to_string()),
            (3, NotificationEvent::Disable, ICCID_B.to_string()),
            (4, NotificationEvent::Delete, ICCID_B.to_string()),
        ]
    );
    assert!(l
        .iter()
        .all(|m| m.address == profile::DEFAULT_NOTIFICATION_ADDRESS));
    // Refused operations make none.
    assert_eq!(enable(&mut c, ICCID_B), "BF3103800101"); // deleted: not found
    assert_eq!(disable(&mut c, ICCID_A), "BF3203800102"); // not enabled
    assert_eq!(list(&mut c).len(), 4);
    // The filter keeps only the operations asked for: {disable} = 81 02 05 20.
    let only = match ListNotificationResponse::parse(
        &hex(&es10(&mut c, "BF2804810205 20".replace(' ', "").as_str())).unwrap(),
    )
    .unwrap()
    {
        ListNotificationResponse::Ok(l) => l,
        e => panic!("{e:?}"),
    };
    assert_eq!(only.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 3]);
}

#[test]
fn retrieved_notifications_are_signed_by_the_euicc_over_the_exact_metadata() {
    let mut c = card();
    assert_eq!(disable(&mut c, ICCID_A), "BF3203800100");
    assert_eq!(enable(&mut c, ICCID_B), "BF3103800100");
    let RetrieveNotificationsListResponse::Ok(all) = retrieve(&mut c, "BF2B00") else {
        panic!("no list")
    };
    assert_eq!(all.len(), 2);
    for p in &all {
        let PendingNotification::Other(n) = p else {
            panic!("{p:?}")
        };
        assert_eq!(n.tbs, n.metadata.to_bytes());
        assert!(verifies(n), "signature of {:?}", n.metadata);
        // Any flipped bit of what was signed breaks it.
        let mut forged = n.clone();
        forged.tbs[6] ^= 1;
        assert!(!verifies(&forged));
        // The EUM certificate issued the eUICC certificate.
        let eum = x509_cert::Certificate::from_der(&n.eum_certificate).unwrap();
        let euicc = x509_cert::Certificate::from_der(&n.euicc_certificate).unwrap();
        assert_eq!(euicc.tbs_certificate.issuer, eum.tbs_certificate.subject);
    }
    // searchCriteria seqNumber 2 (lpac `notification process 2`): that one only.
    let RetrieveNotificationsListResponse::Ok(one) = retrieve(&mut c, "BF2B05A003800102") else {
        panic!("no list")
    };
    assert_eq!(
        one.iter()
            .filter_map(PendingNotification::metadata)
            .map(|m| m.seq)
            .collect::<Vec<_>>(),
        vec![2]
    );
    // Nothing matches: noResultAvailable.
    assert_eq!(
        retrieve(&mut c, "BF2B05A003800163"),
        RetrieveNotificationsListResponse::NoResultAvailable
    );
}

#[test]
fn removed_notifications_are_gone_and_their_numbers_never_come_back() {
    let mut c = card();
    assert_eq!(disable(&mut c, ICCID_A), "BF3203800100");
    assert_eq!(enable(&mut c, ICCID_A), "BF3103800100");
    assert_eq!(remove(&mut c, 1), NotificationSentResult::Ok);
    assert_eq!(remove(&mut c, 1), NotificationSentResult::NothingToDelete);
    assert_eq!(remove(&mut c, 99), NotificationSentResult::NothingToDelete);
    assert_eq!(remove(&mut c, 2), NotificationSentResult::Ok);
    assert!(list(&mut c).is_empty());
    assert_eq!(disable(&mut c, ICCID_A), "BF3203800100");
    assert_eq!(
        ops(&list(&mut c)),
        vec![(3, NotificationEvent::Disable, ICCID_A.into())]
    );
}

#[test]
fn a_full_notification_list_keeps_the_oldest_and_refuses_the_operation() {
    let mut c = card();
    for i in 0..Notifications::CAPACITY {
        let r = if i % 2 == 0 {
            disable(&mut c, ICCID_A)
        } else {
            enable(&mut c, ICCID_A)
        };
        assert!(r.ends_with("800100"), "{i}: {r}");
    }
    let full = list(&mut c);
    assert_eq!(full.len(), Notifications::CAPACITY);
    // A is enabled; disabling it would make a 65th: undefinedError, and nothing changes.
    assert_eq!(disable(&mut c, ICCID_A), "BF320380017F");
    // Enabling B needs two (disable A, enable B): refused too.
    assert_eq!(enable(&mut c, ICCID_B), "BF310380017F");
    assert_eq!(
        list(&mut c),
        full,
        "the oldest are kept, no number was taken"
    );
    assert_eq!(
        tx(&mut c, "00A4040C08F0565345434F4E54"),
        "9000",
        "A is still enabled"
    );
    // The LPA delivers the oldest: room for one again, and numbers go on.
    assert_eq!(remove(&mut c, 1), NotificationSentResult::Ok);
    assert_eq!(disable(&mut c, ICCID_A), "BF3203800100");
    let l = list(&mut c);
    assert_eq!(l.len(), Notifications::CAPACITY);
    assert_eq!(
        l.last().map(|m| m.seq),
        Some(Notifications::CAPACITY as u32 + 1)
    );
    assert_eq!(l.first().map(|m| m.seq), Some(2));
}

#[test]
fn notifications_and_their_counter_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::default_card_file(dir.path());
    let open = || common::open_file_card(&path);
    let mut c = open();
    assert_eq!(disable(&mut c, ICCID_A), "BF3203800100");
    assert_eq!(enable(&mut c, ICCID_B), "BF3103800100");
    assert_eq!(remove(&mut c, 1), NotificationSentResult::Ok);
    let before = list(&mut c);
    drop(c); // no shutdown: what is on disk is what a kill leaves
    let mut c = open();
    assert_eq!(list(&mut c), before);
    assert_eq!(delete(&mut c, ICCID_A), "BF3303800100");
    assert_eq!(
        list(&mut c).iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![2, 3]
    );
}

#[test]
fn the_challenge_is_fresh_and_no_session_can_be_cancelled() {
    let mut c = card();
    let a = EuiccChallenge::parse(&hex(&es10(&mut c, "BF2E00")).unwrap()).unwrap();
    let b = EuiccChallenge::parse(&hex(&es10(&mut c, "BF2E00")).unwrap()).unwrap();
    assert_ne!(a, b);
    let r = es10(
        &mut c,
        "BF410980040102030481 0100".replace(' ', "").as_str(),
    );
    assert_eq!(
        CancelSessionResponse::parse(&hex(&r).unwrap()).unwrap(),
        CancelSessionResponse::InvalidTransactionId
    );
}

#[test]
fn the_default_smdp_address_is_set_shown_and_reset() {
    let mut c = card();
    let addresses =
        |c: &mut Card| EuiccConfiguredAddresses::parse(&hex(&es10(c, "BF3C00")).unwrap()).unwrap();
    assert_eq!(addresses(&mut c).default_dp_address, None);
    let r = es10(&mut c, &format!("BF3F0D800B{}", upper(b"smdp.test.x")));
    assert_eq!(
        SetDefaultDpAddressResult::parse(&hex(&r).unwrap()).unwrap(),
        SetDefaultDpAddressResult::Ok
    );
    assert_eq!(
        addresses(&mut c).default_dp_address.as_deref(),
        Some("smdp.test.x")
    );
    // Memory reset with resetDefaultSmdpAddress (bit 2) only: profiles stay.
    let r = es10(&mut c, "BF3404820205 20".replace(' ', "").as_str());
    assert_eq!(
        MemoryResetResult::parse(&hex(&r).unwrap()).unwrap(),
        MemoryResetResult::Ok
    );
    assert_eq!(addresses(&mut c).default_dp_address, None);
    let ProfileInfoListResponse::Ok(profiles) =
        ProfileInfoListResponse::parse(&hex(&es10(&mut c, "BF2D00")).unwrap()).unwrap()
    else {
        panic!()
    };
    assert_eq!(profiles.len(), 2);
}

#[test]
fn memory_reset_deletes_operational_profiles_in_one_step() {
    let mut c = card();
    // deleteOperationalProfiles (bit 0): both demo containers are operational, A enabled.
    let r = es10(&mut c, "BF3404820207 80".replace(' ', "").as_str());
    assert_eq!(
        MemoryResetResult::parse(&hex(&r).unwrap()).unwrap(),
        MemoryResetResult::Ok
    );
    let ProfileInfoListResponse::Ok(profiles) =
        ProfileInfoListResponse::parse(&hex(&es10(&mut c, "BF2D00")).unwrap()).unwrap()
    else {
        panic!()
    };
    assert!(profiles.is_empty());
    // The enabled container's files are gone from runtime mode; EF.ICCID is all FF.
    assert_eq!(tx(&mut c, "00A4000C022FE2"), "9000");
    assert_eq!(tx(&mut c, "00B000000A"), format!("{}9000", "FF".repeat(10)));
    // Nothing left: nothingToDelete.
    let r = es10(&mut c, "BF3404820207 80".replace(' ', "").as_str());
    assert_eq!(
        MemoryResetResult::parse(&hex(&r).unwrap()).unwrap(),
        MemoryResetResult::NothingToDelete
    );
    assert!(list(&mut c).is_empty(), "a reset makes no notifications");
}

#[test]
fn malformed_es10b_requests_get_a_status_word_and_change_nothing() {
    let mut c = card();
    assert_eq!(disable(&mut c, ICCID_A), "BF3203800100");
    for bad in ["BF3000", "BF3003800180", "BF2B05A003820107", "BF3400"] {
        let bytes = hex(bad).unwrap();
        let r = tx(&mut c, &format!("81E29100{:02X}{bad}", bytes.len()));
        assert_eq!(r, "6A80", "{bad}");
    }
    // An ES10 tag this card does not implement: 6A81 (function not supported).
    assert_eq!(tx(&mut c, "81E2910003BF3800"), "6A81");
    assert_eq!(list(&mut c).len(), 1);
}
