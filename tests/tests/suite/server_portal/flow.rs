//! The mutual authentication through the portal to the server over loopback HTTP, with a
//! fake SE (shared crypto): the whole flow, a refusal, replays and tampered messages as the
//! portal relays them.
use super::portal::start_portal;
use crate::common;

use common::*;
use secure_channel::mutual::{self, Call, CallStatus, MutualError, ProtectedMessage};
use server::config::{GrantFile, Until};
use server::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_through_the_portal_registers_then_echoes_and_provisions() {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let portal = start_portal(&[(SERVICE, &srv.url)]).await;
    let mut se = FakeSe::new(&w.ca);

    let mut conn = register_ok(&portal.url, &mut se, &srv.public).await;
    assert_eq!(conn.scope(), ["echo", "provision"]);
    assert_eq!(
        conn.expiry(),
        NOW + 3600,
        "capped by connection_lifetime_secs"
    );

    let r = call_ok(&portal.url, &mut conn, "echo", b"hello through the portal").await;
    assert_eq!(r.status, CallStatus::Ok);
    assert_eq!(r.data, b"hello through the portal");
    assert_eq!(r.credential, None);

    let r = call_ok(&portal.url, &mut conn, "provision", b"").await;
    assert_eq!(r.status, CallStatus::Ok);
    let credential = r.credential.expect("provision issues a credential");
    assert_eq!(credential.len(), server::service::CREDENTIAL_LEN);

    let second = call_ok(&portal.url, &mut conn, "provision", b"").await;
    assert_ne!(second.credential, Some(credential), "credentials are fresh");

    let counts = srv.store.counts().unwrap();
    assert_eq!((counts.connections, counts.credentials), (1, 2));
    assert_eq!(
        decisions(srv.store.as_ref()),
        [
            "registered",
            "call_executed",
            "call_executed",
            "call_executed"
        ]
    );
    let log = srv.store.audit_log(1).unwrap();
    assert!(log[0].subject.starts_with(EID_HEX.to_uppercase().as_str()));
    assert!(log[0].subject.ends_with(ICCID_DIGITS));
    portal.stop().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_se_gets_a_signed_refusal_and_no_connection() {
    // Only another SE is granted.
    let w = World::new().grant(GrantFile {
        service: SERVICE.into(),
        eid: "89049032000000000000000000000001".into(),
        iccid: None,
        calls: None,
        until: Until::Unix(NOW + 86_400),
    });
    let srv = w.start_server().await;
    let portal = start_portal(&[(SERVICE, &srv.url)]).await;
    let mut se = FakeSe::new(&w.ca);
    let reg = se.registration(SERVICE, &srv.public);
    let a = post(&portal.url, &register_path(SERVICE), &register_body(&reg)).await;
    assert_eq!(a.status, 200, "a refusal is an answer: {:?}", a.json);
    let rp = parse_answer(&a.json);
    // The refusal is sealed and signed by the server; only the SE reads it.
    let answer = open_answer(&reg, &srv.public, &rp);
    assert!(!answer.granted);
    assert!(answer.scope.is_empty());
    assert_eq!(
        mutual::se_accept_answer(&reg.pending, &srv.public, &rp, NOW).unwrap_err(),
        MutualError::NotGranted
    );
    assert_eq!(srv.store.counts().unwrap().connections, 0);
    assert_eq!(decisions(srv.store.as_ref()), ["refused"]);
    portal.stop().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_registration_gets_409_and_no_second_grant() {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let portal = start_portal(&[(SERVICE, &srv.url)]).await;
    let mut se = FakeSe::new(&w.ca);
    let reg = se.registration(SERVICE, &srv.public);
    let body = register_body(&reg);
    let first = post(&portal.url, &register_path(SERVICE), &body).await;
    assert_eq!(first.status, 200);
    let replay = post(&portal.url, &register_path(SERVICE), &body).await;
    assert_error(&replay, 409, "replay");
    let c = srv.store.counts().unwrap();
    assert_eq!((c.nonces, c.connections), (1, 1));
    assert_eq!(decisions(srv.store.as_ref()), ["registered", "replay"]);

    // A fresh nonce with an old counter (a cloned or rolled-back card) is refused too.
    let stale = se.registration_with_counter(SERVICE, &srv.public, se.counter);
    let a = post(&portal.url, &register_path(SERVICE), &register_body(&stale)).await;
    assert_error(&a, 409, "stale_counter");
    assert_eq!(srv.store.counts().unwrap().connections, 1);
    // The next counter registers; its connection replaces the first (same SE, same service).
    register_ok(&portal.url, &mut se, &srv.public).await;
    assert_eq!(srv.store.counts().unwrap().connections, 1);
    portal.stop().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampered_message_is_refused_and_changes_nothing() {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let portal = start_portal(&[(SERVICE, &srv.url), (OTHER_SERVICE, &srv.url)]).await;
    let mut se = FakeSe::new(&w.ca);
    let mut conn = register_ok(&portal.url, &mut se, &srv.public).await;
    let m = conn
        .seal_call(&Call {
            name: "provision".into(),
            data: b"x".to_vec(),
        })
        .unwrap();
    let bytes = m.to_bytes();
    let path = messages_path(SERVICE);
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x04;
        let a = post(
            &portal.url,
            &path,
            &serde_json::json!({"message": hex::encode(&b)}),
        )
        .await;
        let code = a.json["error"].as_str().unwrap_or("").to_owned();
        assert!(
            matches!(
                (a.status, code.as_str()),
                (400, "malformed_message")
                    | (401, "authentication_failed")
                    | (404, "unknown_connection")
            ),
            "flip at {i}: {} {:?}",
            a.status,
            a.json
        );
    }
    // Truncated: not a padded size any more, refused before any key is used.
    let truncated = ProtectedMessage {
        ciphertext: m.ciphertext[..m.ciphertext.len() - 1].to_vec(),
        ..m.clone()
    };
    let a = post(&portal.url, &path, &message_body(&truncated)).await;
    assert_error(&a, 400, "malformed_message");
    // Sent to another service's URL.
    let a = post(
        &portal.url,
        &messages_path(OTHER_SERVICE),
        &message_body(&m),
    )
    .await;
    assert_error(&a, 400, "service_mismatch");
    assert_eq!(
        srv.store.counts().unwrap().credentials,
        0,
        "nothing provisioned"
    );
    let stored = srv.store.connection(&conn.cid()).unwrap().unwrap();
    assert_eq!((stored.up_counter, stored.down_counter), (0, 0));

    // The genuine message still goes through; the answer, tampered, fails at the SE.
    let a = post(&portal.url, &path, &message_body(&m)).await;
    assert_eq!(a.status, 200);
    let down = parse_message(&a.json);
    let down_bytes = down.to_bytes();
    for i in 0..down_bytes.len() {
        let mut b = down_bytes.clone();
        b[i] ^= 0x10;
        let mut probe = conn.clone();
        if let Ok(msg) = ProtectedMessage::parse(&b) {
            assert!(
                probe.open_result(&msg).is_err(),
                "down flip at {i} accepted"
            );
        }
    }
    let r = conn.open_result(&down).unwrap();
    assert!(r.credential.is_some());
    portal.stop().await;
    srv.stop().await;
}
