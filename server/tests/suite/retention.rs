//! Forward secrecy at rest and bounded tables: a connection's keys leave the database files
//! when it expires (pruning) or is replaced; pruning deletes at most `max_rows` per table per
//! run; nonces and audit entries go after their retention, and a replayed R stays refused.
use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use secure_channel::mutual::Connection;
use server::config::{GrantFile, Until};
use server::store::{
    AuditDecision, AuditEntry, ConnectionRecord, NewRegistration, PruneLimits, SqliteStore, Store,
};
use zeroize::Zeroizing;

/// Pruning that keeps nonces and audit entries (retention far beyond the test's clock).
fn keep_all_but_connections() -> PruneLimits {
    PruneLimits {
        max_rows: 1000,
        nonce_retention_secs: 365 * 86_400,
        audit_retention_secs: 365 * 86_400,
    }
}

/// Every 32-byte value (64 hex digits) in a serialized connection: its keys.
fn hex_keys(json: &[u8]) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s)
                if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                out.push(s.to_uppercase())
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(o) => o.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let v: serde_json::Value = serde_json::from_slice(json).expect("a serialized connection");
    let mut out = Vec::new();
    walk(&v, &mut out);
    out.sort();
    out.dedup();
    out
}

/// The keys of a connection: the server's record (send, receive and any server-only key),
/// checked to hold the SE end's send and receive keys.
fn connection_keys(store: &SqliteStore, se_end: &Connection) -> Vec<String> {
    let record = store
        .connection(&se_end.cid())
        .expect("read the connection")
        .expect("the server holds the connection");
    let server_keys = hex_keys(&record.state);
    let se_json = Zeroizing::new(serde_json::to_vec(se_end).expect("serialize the SE end"));
    let se_keys = hex_keys(&se_json);
    assert_eq!(se_keys.len(), 2, "the SE end has a send and a receive key");
    for k in &se_keys {
        assert!(server_keys.contains(k), "the server holds the SE's keys");
    }
    server_keys
}

/// The database and its WAL as they are on disk now.
fn database_files(w: &World) -> Vec<(String, Vec<u8>)> {
    let db = w.db_path();
    let mut files = Vec::new();
    for suffix in ["", "-wal", "-journal"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(bytes) = std::fs::read(&path) {
            files.push((path.display().to_string(), bytes));
        }
    }
    files
}

/// Which of `keys` occur in the files: as upper- or lower-case hex, or as raw bytes.
fn keys_in_files(w: &World, keys: &[String]) -> Vec<String> {
    let files = database_files(w);
    let mut found = Vec::new();
    for k in keys {
        let forms = [
            k.to_uppercase().into_bytes(),
            k.to_lowercase().into_bytes(),
            hex::decode(k).expect("hex"),
        ];
        for (name, bytes) in &files {
            if forms.iter().any(|f| bytes.windows(f.len()).any(|w| w == f)) {
                found.push(format!("{}.. in {name}", &k[..8]));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_connection_s_keys_leave_the_database_files_when_pruned() {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let mut se = FakeSe::new(&w.ca);
    let mut conn = register_ok(&srv.url, &mut se, &srv.public).await;
    call_ok(&srv.url, &mut conn, "echo", b"leaves a last answer").await;
    let cid = conn.cid();
    let keys = connection_keys(&srv.store, &conn);
    assert!(
        !keys_in_files(&w, &keys).is_empty(),
        "the test must see the keys in the files before pruning"
    );
    assert!(srv.store.last_answer(&cid).unwrap().is_some());

    // Valid while now < expiry: one second before, pruning keeps it.
    let expiry = conn.expiry();
    let r = srv
        .store
        .prune(expiry - 1, &keep_all_but_connections())
        .unwrap();
    assert_eq!(r.connections, 0);
    assert!(srv.store.connection(&cid).unwrap().is_some());

    w.set_now(expiry);
    let r = srv
        .store
        .prune(expiry, &keep_all_but_connections())
        .unwrap();
    assert_eq!((r.connections, r.last_answers), (1, 1), "{r:?}");
    assert!(r.wal_truncated, "{r:?}");
    assert!(srv.store.connection(&cid).unwrap().is_none());
    assert!(srv.store.last_answer(&cid).unwrap().is_none());
    assert_eq!(keys_in_files(&w, &keys), Vec::<String>::new());
    // A message on the pruned connection: unknown now (it was 403 expired before pruning).
    let m = conn
        .seal_call(&secure_channel::mutual::Call {
            name: "echo".into(),
            data: b"late".to_vec(),
        })
        .unwrap();
    let a = post(&srv.url, &messages_path(SERVICE), &message_body(&m)).await;
    assert_error(&a, 404, "unknown_connection");
    srv.stop().await;
    // Nothing comes back after a restart either (the WAL held no old page).
    assert_eq!(keys_in_files(&w, &keys), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_registration_replaces_the_connection_and_deletes_its_keys() {
    let w = World::new().grant_all(NOW + 86_400).grant(GrantFile {
        service: OTHER_SERVICE.into(),
        eid: "*".into(),
        iccid: None,
        calls: None,
        until: Until::Unix(NOW + 86_400),
    });
    let srv = w.start_server().await;
    let mut se = FakeSe::new(&w.ca);
    let mut old = register_ok(&srv.url, &mut se, &srv.public).await;
    call_ok(&srv.url, &mut old, "echo", b"old").await;
    let old_keys = connection_keys(&srv.store, &old);
    // Another container of the same SE, and the same container for another service, keep
    // their connections.
    let mut sibling = FakeSe::with_subject(&w.ca, subject(EID_HEX, "89000123456789012358"));
    let sibling_conn = register_ok(&srv.url, &mut sibling, &srv.public).await;
    let reg = se.registration(OTHER_SERVICE, &srv.public);
    let a = post(
        &srv.url,
        &register_path(OTHER_SERVICE),
        &register_body(&reg),
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    let other_service_conn = secure_channel::mutual::se_accept_answer(
        &reg.pending,
        &srv.public,
        &parse_answer(&a.json),
        NOW,
    )
    .expect("granted")
    .connection;

    let mut new = register_ok(&srv.url, &mut se, &srv.public).await;
    assert!(srv.store.connection(&old.cid()).unwrap().is_none());
    assert!(srv.store.last_answer(&old.cid()).unwrap().is_none());
    assert!(srv.store.connection(&sibling_conn.cid()).unwrap().is_some());
    assert!(srv
        .store
        .connection(&other_service_conn.cid())
        .unwrap()
        .is_some());
    assert_eq!(srv.store.counts().unwrap().connections, 3);
    let m = old
        .seal_call(&secure_channel::mutual::Call {
            name: "echo".into(),
            data: b"old again".to_vec(),
        })
        .unwrap();
    let a = post(&srv.url, &messages_path(SERVICE), &message_body(&m)).await;
    assert_error(&a, 404, "unknown_connection");
    call_ok(&srv.url, &mut new, "echo", b"new").await;

    // The next pruning run (nothing expired) checkpoints: the old keys leave the files,
    // the live connections' keys stay.
    let new_keys = connection_keys(&srv.store, &new);
    let r = srv.store.prune(NOW, &keep_all_but_connections()).unwrap();
    assert_eq!(r.connections, 0);
    assert!(r.wal_truncated);
    assert_eq!(keys_in_files(&w, &old_keys), Vec::<String>::new());
    assert!(!keys_in_files(&w, &new_keys).is_empty());
    srv.stop().await;
}

/// `n` committed registrations of distinct containers at `time`, each with a connection
/// that expired at `time + 1`: n nonces, n connections, n audit entries.
fn fill(store: &SqliteStore, first: u32, n: u32, time: u64) {
    for i in first..first + n {
        let mut subject_id = [0u8; 26];
        subject_id[..4].copy_from_slice(&i.to_be_bytes());
        let mut cid = [0u8; 16];
        cid[..4].copy_from_slice(&i.to_be_bytes());
        let mut nonce = [0xAA; 16];
        nonce[..4].copy_from_slice(&i.to_be_bytes());
        let audit = AuditEntry {
            time,
            subject: format!("S{i}"),
            service: SERVICE.into(),
            decision: AuditDecision::Registered,
            reason: String::new(),
            cid: Some(hex::encode_upper(cid)),
        };
        store
            .commit_registration(&NewRegistration {
                nonce,
                subject_id,
                counter: 1,
                connection: Some(ConnectionRecord {
                    cid,
                    service: SERVICE.into(),
                    subject: format!("S{i}"),
                    scope: vec!["echo".into()],
                    expires_at: time + 1,
                    state: Zeroizing::new(vec![0x5A; 200]),
                    up_counter: 0,
                    down_counter: 0,
                    created_at: time,
                }),
                audit,
            })
            .expect("commit");
    }
}

#[test]
fn one_pruning_run_deletes_at_most_max_rows_per_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("server.db")).unwrap();
    let limits = PruneLimits {
        max_rows: 5,
        nonce_retention_secs: 10,
        audit_retention_secs: 10,
    };
    let later = NOW + 1000;
    // limit + 1 rows: one run deletes the limit, the next the rest.
    fill(&store, 0, 6, NOW);
    let r = store.prune(later, &limits).unwrap();
    assert_eq!(
        (r.connections, r.last_answers, r.nonces, r.audit, r.more),
        (5, 0, 5, 5, true)
    );
    let r = store.prune(later, &limits).unwrap();
    assert_eq!((r.connections, r.nonces, r.audit, r.more), (1, 1, 1, false));
    let c = store.counts().unwrap();
    assert_eq!((c.connections, c.nonces, c.audit), (0, 0, 0));
    // limit - 1 rows: one run, and it says nothing more waits.
    fill(&store, 100, 4, NOW);
    let r = store.prune(later, &limits).unwrap();
    assert_eq!((r.connections, r.nonces, r.audit, r.more), (4, 4, 4, false));
    // exactly the limit: all of it in one run.
    fill(&store, 200, 5, NOW);
    let r = store.prune(later, &limits).unwrap();
    assert_eq!((r.connections, r.nonces, r.audit), (5, 5, 5));
    assert_eq!(store.prune(later, &limits).unwrap().connections, 0);
}

#[test]
fn nonces_and_audit_entries_go_after_their_retention_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("server.db")).unwrap();
    fill(&store, 0, 3, NOW);
    fill(&store, 10, 2, NOW + 50);
    let limits = PruneLimits {
        max_rows: 1000,
        nonce_retention_secs: 100,
        audit_retention_secs: 200,
    };
    // Age == retention: kept.
    let r = store.prune(NOW + 100, &limits).unwrap();
    assert_eq!((r.nonces, r.audit), (0, 0));
    // Age == retention + 1: the nonces of the first batch go, their audit entries stay.
    let r = store.prune(NOW + 101, &limits).unwrap();
    assert_eq!((r.nonces, r.audit), (3, 0));
    let r = store.prune(NOW + 201, &limits).unwrap();
    assert_eq!((r.nonces, r.audit), (2, 3));
    let left = store.audit_log(10).unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|e| e.time == NOW + 50));
    let c = store.counts().unwrap();
    assert_eq!((c.nonces, c.audit, c.connections), (0, 2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_registration_is_still_refused_once_its_nonce_is_pruned() {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let mut se = FakeSe::new(&w.ca);
    let reg = se.registration(SERVICE, &srv.public);
    let body = register_body(&reg);
    assert_eq!(
        post(&srv.url, &register_path(SERVICE), &body).await.status,
        200
    );
    w.set_now(NOW + 10);
    let limits = PruneLimits {
        nonce_retention_secs: 5,
        ..keep_all_but_connections()
    };
    assert_eq!(srv.store.prune(NOW + 10, &limits).unwrap().nonces, 1);
    assert_eq!(srv.store.counts().unwrap().nonces, 0);
    // The registration counter, which is never pruned, refuses it.
    let a = post(&srv.url, &register_path(SERVICE), &body).await;
    assert_error(&a, 409, "stale_counter");
    assert_eq!(srv.store.counts().unwrap().connections, 1);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maintenance_task_prunes_every_interval() {
    let mut w = World::new().grant_all(NOW + 86_400);
    w.prune_interval = Some("1s".into());
    let srv = w.start_server().await;
    let mut se = FakeSe::new(&w.ca);
    let conn = register_ok(&srv.url, &mut se, &srv.public).await;
    assert_eq!(srv.engine.config().prune_interval, Duration::from_secs(1));
    w.set_now(conn.expiry());
    let task = tokio::spawn(server::prune::run(
        Arc::clone(&srv.engine),
        srv.engine.config().prune_interval,
    ));
    let pruned = async {
        while srv.store.connection(&conn.cid()).unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, pruned)
        .await
        .expect("the task prunes the expired connection");
    task.abort();
    srv.stop().await;
}
