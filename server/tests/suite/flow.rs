//! The mutual authentication end to end over loopback HTTP: a fake SE (shared crypto)
//! through the portal to the server; grants, refusals, replays, tampering, restarts.
use crate::common;

use common::*;
use secure_channel::mutual::{self, Call, CallStatus, MutualError, ProtectedMessage, SealedAnswer};
use server::config::{GrantFile, Until};
use server::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_outside_the_granted_scope_is_refused_inside_the_connection() {
    let w = World::new().grant(GrantFile {
        service: SERVICE.into(),
        eid: EID_HEX.into(),
        iccid: Some(ICCID_DIGITS.into()),
        calls: Some(vec!["echo".into()]),
        until: Until::Text("2030-01-01T00:00:00Z".into()),
    });
    let srv = w.start_server().await;
    let mut se = FakeSe::new(&w.ca);
    let mut conn = register_ok(&srv.url, &mut se, &srv.public).await;
    assert_eq!(conn.scope(), ["echo"]);
    // The card would refuse to send it (9302); a terminal-side forgery cannot, since only
    // the SE can seal. Here the fake SE seals it anyway: the server refuses it, sealed.
    let r = call_ok(&srv.url, &mut conn, "provision", b"").await;
    assert_eq!(r.status, CallStatus::Refused);
    assert_eq!(r.credential, None);
    let r = call_ok(&srv.url, &mut conn, "rm-rf", b"").await;
    assert_eq!(r.status, CallStatus::Refused);
    // The connection stays in step after refusals.
    let r = call_ok(&srv.url, &mut conn, "echo", b"still here").await;
    assert_eq!(r.data, b"still here");
    assert_eq!(srv.store.counts().unwrap().credentials, 0);
    assert_eq!(
        decisions(srv.store.as_ref()),
        [
            "registered",
            "call_refused",
            "call_refused",
            "call_executed"
        ]
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_grant_is_refused_and_an_expired_connection_is_closed() {
    // A grant that ended before now: signed refusal.
    let w = World::new().grant_all(NOW - 1);
    let srv = w.start_server().await;
    let mut se = FakeSe::new(&w.ca);
    let reg = se.registration(SERVICE, &srv.public);
    let a = post(&srv.url, &register_path(SERVICE), &register_body(&reg)).await;
    assert_eq!(a.status, 200);
    let rp = parse_answer(&a.json);
    assert!(!open_answer(&reg, &srv.public, &rp).granted);
    let log = srv.store.audit_log(1).unwrap();
    assert!(log[0].reason.contains("expired"), "{:?}", log[0]);
    srv.stop().await;

    // A grant that ends 100 s from now: the connection ends with it.
    let w = World::new().grant_all(NOW + 100);
    let srv = w.start_server().await;
    let mut se = FakeSe::new(&w.ca);
    let mut conn = register_ok(&srv.url, &mut se, &srv.public).await;
    assert_eq!(conn.expiry(), NOW + 100);
    call_ok(&srv.url, &mut conn, "echo", b"in time").await;
    w.set_now(NOW + 100);
    let m = conn
        .seal_call(&Call {
            name: "echo".into(),
            data: b"too late".to_vec(),
        })
        .unwrap();
    let a = post(&srv.url, &messages_path(SERVICE), &message_body(&m)).await;
    assert_error(&a, 403, "expired");
    assert_eq!(
        decisions(srv.store.as_ref()),
        ["registered", "call_executed", "expired"]
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampered_registration_is_refused_and_grants_nothing() {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let mut se = FakeSe::new(&w.ca);
    let reg = se.registration(SERVICE, &srv.public);
    let wire = reg.sealed.to_bytes();
    let path = register_path(SERVICE);

    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    // One bit flipped in every byte of the sealed R: the clear fields are its AAD, the
    // rest is authenticated ciphertext, so nothing survives.
    for i in 0..wire.len() {
        let mut r2 = wire.clone();
        r2[i] ^= 0x01;
        let a = post(&srv.url, &path, &serde_json::json!({"r": hex::encode(&r2)})).await;
        assert!(
            matches!(a.status, 400 | 401),
            "flip at {i} not refused: {} {:?}",
            a.status,
            a.json
        );
        *codes
            .entry(a.json["error"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    // Truncated, trailing bytes, and the version 01 body shape.
    for r2 in [
        &wire[..wire.len() - 1],
        &[wire.clone(), vec![0]].concat()[..],
    ] {
        let a = post(&srv.url, &path, &serde_json::json!({"r": hex::encode(r2)})).await;
        assert_error(&a, 400, "malformed_registration");
    }
    let v1 = serde_json::json!({"r": hex::encode(&wire), "signature": hex::encode([0u8; 64])});
    assert_error(
        &post(&srv.url, &path, &v1).await,
        400,
        "unsupported_version",
    );
    // The portal swaps the service id in the URL: R names another service.
    let a = post(
        &srv.url,
        &register_path(OTHER_SERVICE),
        &register_body(&reg),
    )
    .await;
    assert_error(&a, 400, "service_mismatch");
    // Sealed to another server's key: this server cannot open it.
    let other_server = mutual::SigningKey::generate().unwrap().verifying_key();
    let mut se2 = FakeSe::new(&w.ca);
    let a = post(
        &srv.url,
        &path,
        &register_body(&se2.registration(SERVICE, &other_server)),
    )
    .await;
    assert_error(&a, 401, "sealed_registration");
    // A certificate from another CA.
    let mut rogue = FakeSe::new(&mutual::SigningKey::generate().unwrap());
    let a = post(
        &srv.url,
        &path,
        &register_body(&rogue.registration(SERVICE, &srv.public)),
    )
    .await;
    assert_error(&a, 401, "bad_certificate");

    for code in ["sealed_registration", "malformed_registration"] {
        assert!(codes.contains_key(code), "no {code} among {codes:?}");
    }
    let c = srv.store.counts().unwrap();
    assert_eq!((c.nonces, c.connections), (0, 0), "nothing was granted");
    assert!(!decisions(srv.store.as_ref())
        .iter()
        .any(|d| d == "registered" || d == "refused"));
    // The genuine request still registers: refusals burnt no nonce.
    let a = post(&srv.url, &path, &register_body(&reg)).await;
    assert_eq!(a.status, 200);
    assert!(open_answer(&reg, &srv.public, &parse_answer(&a.json)).granted);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampered_server_answer_is_refused_by_the_se() {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let mut se = FakeSe::new(&w.ca);
    let reg = se.registration(SERVICE, &srv.public);
    let a = post(&srv.url, &register_path(SERVICE), &register_body(&reg)).await;
    let rp = parse_answer(&a.json);
    let bytes = rp.to_bytes();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x80;
        let Ok(forged) = SealedAnswer::parse(&b) else {
            continue; // refused by the parser (6A80 on the card)
        };
        assert!(
            mutual::se_accept_answer(&reg.pending, &srv.public, &forged, NOW).is_err(),
            "flip at {i} accepted"
        );
    }
    // An answer to another R (a replayed R' from an earlier registration).
    let other = se.registration(SERVICE, &srv.public);
    assert!(matches!(
        mutual::se_accept_answer(&other.pending, &srv.public, &rp, NOW),
        Err(MutualError::AnswerMismatch(_))
    ));
    mutual::se_accept_answer(&reg.pending, &srv.public, &rp, NOW).expect("the genuine R'");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_reordered_messages_are_refused() {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let mut se = FakeSe::new(&w.ca);
    let mut conn = register_ok(&srv.url, &mut se, &srv.public).await;
    let path = messages_path(SERVICE);
    let seal = |conn: &mut mutual::Connection, d: &[u8]| {
        conn.seal_call(&Call {
            name: "echo".into(),
            data: d.to_vec(),
        })
        .unwrap()
    };
    let m1 = seal(&mut conn, b"1");
    let m2 = seal(&mut conn, b"2");
    let m3 = seal(&mut conn, b"3");

    // m2 before m1: reordered.
    assert_error(
        &post(&srv.url, &path, &message_body(&m2)).await,
        401,
        "authentication_failed",
    );
    let a1 = post(&srv.url, &path, &message_body(&m1)).await;
    assert_eq!(a1.status, 200);
    // m1 again while it is the last message: its answer was lost, the same answer again.
    let again = post(&srv.url, &path, &message_body(&m1)).await;
    assert_eq!((again.status, &again.json), (200, &a1.json));
    // m3 skipping m2.
    assert_error(
        &post(&srv.url, &path, &message_body(&m3)).await,
        401,
        "authentication_failed",
    );
    let a2 = post(&srv.url, &path, &message_body(&m2)).await;
    // m1 once m2 is accepted: replayed.
    assert_error(
        &post(&srv.url, &path, &message_body(&m1)).await,
        401,
        "authentication_failed",
    );
    let a3 = post(&srv.url, &path, &message_body(&m3)).await;
    assert_eq!((a2.status, a3.status), (200, 200));
    assert_eq!(
        decisions(srv.store.as_ref()),
        [
            "registered",
            "authentication_failed",
            "call_executed",
            "answer_resent",
            "authentication_failed",
            "call_executed",
            "authentication_failed",
            "call_executed"
        ]
    );

    // The SE side: each down message carries the counter of the call it answers; the SE
    // (which sealed m1..m3) takes the answer to its last call, once, and no other.
    let (d1, d2, d3) = (
        parse_message(&a1.json),
        parse_message(&a2.json),
        parse_message(&a3.json),
    );
    assert_eq!((d1.counter, d2.counter, d3.counter), (1, 2, 3));
    assert!(conn.open_result(&d1).is_err());
    assert!(conn.open_result(&d2).is_err());
    assert_eq!(conn.open_result(&d3).unwrap().data, b"3");
    assert!(conn.open_result(&d3).is_err());
    srv.stop().await;
}

/// A world granting everything, its server, and a registered connection.
async fn registered() -> (World, TestServer, mutual::Connection) {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let mut se = FakeSe::new(&w.ca);
    let conn = register_ok(&srv.url, &mut se, &srv.public).await;
    (w, srv, conn)
}

/// The next `provision` call, sealed.
fn provision_call(conn: &mut mutual::Connection) -> mutual::ProtectedMessage {
    conn.seal_call(&Call {
        name: "provision".into(),
        data: Vec::new(),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_sent_again_after_a_restart_and_only_for_an_exact_copy() {
    let (w, srv, mut conn) = registered().await;
    let m = provision_call(&mut conn);
    let first = post(&srv.url, &messages_path(SERVICE), &message_body(&m)).await;
    assert_eq!(first.status, 200);
    // The answer never reached the SE; the server goes down and comes back.
    srv.stop().await;
    let srv = w.start_server().await;
    let again = post(&srv.url, &messages_path(SERVICE), &message_body(&m)).await;
    assert_eq!((again.status, &again.json), (200, &first.json));
    // A copy with one ciphertext bit flipped, or the tag cut, is no copy: refused.
    let mut flipped = m.clone();
    flipped.ciphertext[0] ^= 1;
    let mut cut = m.clone();
    cut.ciphertext.pop();
    assert_error(
        &post(&srv.url, &messages_path(SERVICE), &message_body(&flipped)).await,
        401,
        "authentication_failed",
    );
    assert_error(
        &post(&srv.url, &messages_path(SERVICE), &message_body(&cut)).await,
        400,
        "malformed_message",
    );
    // The SE takes the answer once, and the credential was issued once.
    let down = parse_message(&again.json);
    assert!(conn.open_result(&down).unwrap().credential.is_some());
    assert!(conn.open_result(&down).is_err());
    assert_eq!(srv.store.counts().unwrap().credentials, 1);
    // And the connection goes on in step.
    assert_eq!(
        call_ok(&srv.url, &mut conn, "echo", b"next").await.data,
        b"next"
    );
    srv.stop().await;
}

/// Copy the database files (main, WAL and shared memory) of a stopped server.
fn copy_db(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(to).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("server.db"))
        {
            std::fs::remove_file(p).unwrap();
        }
    }
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if let Some(name) = p
            .file_name()
            .filter(|n| n.to_string_lossy().starts_with("server.db"))
        {
            std::fs::copy(&p, to.join(name)).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_database_seals_the_same_answer_never_a_second_plaintext_under_one_nonce() {
    // The thief of backups, or an operator restoring one: the server's database goes back
    // to a snapshot taken before a provision call, and the recorded up message is replayed.
    let (w, srv, mut conn) = registered().await;
    srv.stop().await;
    let db_dir = w.db_path().parent().unwrap().to_path_buf();
    let snapshot = w.dir.path().join("snapshot");
    copy_db(&db_dir, &snapshot);
    let srv = w.start_server().await;
    let m = provision_call(&mut conn);
    let first = post(&srv.url, &messages_path(SERVICE), &message_body(&m)).await;
    assert_eq!(first.status, 200);
    srv.stop().await;
    // Restore: the server has forgotten that it ran this message.
    copy_db(&snapshot, &db_dir);
    let srv = w.start_server().await;
    assert_eq!(
        srv.store.counts().unwrap().credentials,
        0,
        "the snapshot predates the call"
    );
    let again = post(&srv.url, &messages_path(SERVICE), &message_body(&m)).await;
    // It runs the call again and seals byte for byte the same answer: same key, same
    // nonce (the up message's counter), same plaintext (the credential is derived).
    assert_eq!(again.status, 200, "{:?}", again.json);
    assert_eq!(again.json, first.json);
    let down = parse_message(&first.json);
    let credential = conn.open_result(&down).unwrap().credential.unwrap();
    assert_eq!(credential.len(), server::service::CREDENTIAL_LEN);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_copies_of_one_message_the_call_runs_once() {
    let (_w, srv, mut conn) = registered().await;
    let m = provision_call(&mut conn);
    let body = message_body(&m);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (url, body) = (srv.url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            post(&url, &messages_path(SERVICE), &body).await
        }));
    }
    // Copies that arrive after the first commit get its answer again; copies that raced
    // it lose the compare-and-set (409). Either way the call runs once.
    let mut answers = Vec::new();
    for t in tasks {
        let a = t.await.unwrap();
        match a.status {
            200 => answers.push(a.json),
            409 => assert_error(&a, 409, "replay"),
            s => panic!("unexpected {s}: {:?}", a.json),
        }
    }
    assert!(!answers.is_empty());
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(srv.store.counts().unwrap().credentials, 1);
    let executed = decisions(srv.store.as_ref())
        .iter()
        .filter(|d| *d == "call_executed")
        .count();
    assert_eq!(executed, 1);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_survives_a_server_restart() {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let mut se = FakeSe::new(&w.ca);
    let mut conn = register_ok(&srv.url, &mut se, &srv.public).await;
    call_ok(&srv.url, &mut conn, "echo", b"before").await;
    srv.stop().await;

    let srv = w.start_server().await;
    let r = call_ok(&srv.url, &mut conn, "echo", b"after restart").await;
    assert_eq!(r.data, b"after restart");
    // The replay store survived too.
    let m = conn
        .seal_call(&Call {
            name: "echo".into(),
            data: vec![],
        })
        .unwrap();
    let mut stale = m.clone();
    stale.counter = 1;
    assert_error(
        &post(&srv.url, &messages_path(SERVICE), &message_body(&stale)).await,
        401,
        "authentication_failed",
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_connection_and_unknown_service_are_404() {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let m = ProtectedMessage {
        cid: [7; 16],
        counter: 1,
        ciphertext: vec![0; 256 + 16],
    };
    assert_error(
        &post(&srv.url, &messages_path(SERVICE), &message_body(&m)).await,
        404,
        "unknown_connection",
    );
    let mut se = FakeSe::new(&w.ca);
    let p = se.registration("nosuch", &srv.public);
    assert_error(
        &post(&srv.url, &register_path("nosuch"), &register_body(&p)).await,
        404,
        "unknown_service",
    );
    assert_eq!(
        decisions(srv.store.as_ref()),
        ["unknown_connection", "unknown_service"]
    );
    srv.stop().await;
}
