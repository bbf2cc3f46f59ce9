//! The `Store` contract, proved on both backends with the same test bodies: the embedded
//! SQLite store and PostgreSQL (a throw-away cluster, `pg.rs`). Replayed nonce, stale
//! counter, compare-and-set, last answer, audit, prune; and across two instances on one
//! database (two processes' worth: two connections or two pools), 16 threads racing for one
//! nonce, one counter value, one compare-and-set: exactly one winner. Then what only
//! PostgreSQL has: migrations, a schema from the future, the errors of a bad database URL.

use std::any::Any;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use server::store::{
    AuditDecision, AuditEntry, CommitError, ConnectionRecord, DatabaseUrl, IssuedCredential,
    LastAnswer, MessageCommit, NewRegistration, PgOptions, PgStore, PruneLimits, SqliteStore,
    Store, StoreError,
};
use zeroize::Zeroizing;

use crate::pg;

/// One database for one test, opened as many times as the test wants.
struct Db {
    open: Box<dyn Fn() -> Arc<dyn Store>>,
    _keep: Box<dyn Any>,
}

impl Db {
    fn open(&self) -> Arc<dyn Store> {
        (self.open)()
    }
}

fn sqlite() -> Db {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("server.db");
    Db {
        open: Box::new(move || Arc::new(SqliteStore::open(&path).expect("open SQLite"))),
        _keep: Box::new(dir),
    }
}

fn postgres(test: &str) -> Option<Db> {
    let cluster = pg::cluster(test)?;
    let url = DatabaseUrl::parse(&cluster.new_database()).expect("test URL");
    Some(Db {
        open: Box::new(move || {
            Arc::new(PgStore::open(&url, &PgOptions::default()).expect("open PostgreSQL"))
        }),
        _keep: Box::new(cluster),
    })
}

/// Each case as a test on each backend: `store_contract::sqlite::CASE` and
/// `store_contract::postgres::CASE`.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $case() {
                super::$case(&super::sqlite());
            })*
        }
        mod postgres {
            $(#[test]
            fn $case() {
                let test = concat!("store_contract::postgres::", stringify!($case));
                if let Some(db) = super::postgres(test) {
                    super::$case(&db);
                }
            })*
        }
    };
}

contract!(
    replayed_nonce_and_stale_counter_commit_nothing,
    counters_advance_by_compare_and_set_only,
    a_new_registration_replaces_the_connection_and_its_last_answer,
    the_audit_log_gives_the_last_entries_oldest_first,
    pruning_deletes_what_expired_in_bounded_runs_and_keeps_the_counters,
    one_nonce_has_one_winner_across_two_instances,
    one_counter_value_has_one_winner_across_two_instances,
    one_compare_and_set_has_one_winner_across_two_instances,
);

fn audit(decision: AuditDecision, time: u64, reason: &str) -> AuditEntry {
    AuditEntry {
        time,
        subject: "s".into(),
        service: "demo".into(),
        decision,
        reason: reason.into(),
        cid: None,
    }
}

fn conn(cid: u8, subject: &str, expires_at: u64) -> ConnectionRecord {
    ConnectionRecord {
        cid: [cid; 16],
        service: "demo".into(),
        subject: subject.into(),
        scope: vec!["echo".into(), "provision".into()],
        expires_at,
        state: Zeroizing::new(vec![7; 64]),
        up_counter: 0,
        down_counter: 0,
        created_at: 10,
    }
}

fn reg(nonce: u8, counter: u32, cid: u8) -> NewRegistration {
    NewRegistration {
        nonce: [nonce; 16],
        subject_id: [1; 26],
        counter,
        connection: Some(conn(cid, "s", 100)),
        audit: audit(AuditDecision::Registered, 10, "r"),
    }
}

fn message(cid: u8, expected_up: u64, tag: u8) -> MessageCommit {
    MessageCommit {
        cid: [cid; 16],
        expected_up,
        new_up: expected_up + 1,
        new_down: expected_up + 1,
        new_state: Zeroizing::new(vec![8; 64]),
        credential: Some(IssuedCredential { sha256: [tag; 32] }),
        answer: LastAnswer {
            up_sha256: [tag; 32],
            down: vec![0x73, tag],
        },
        audit: audit(AuditDecision::CallExecuted, 20, "call"),
    }
}

fn replayed_nonce_and_stale_counter_commit_nothing(db: &Db) {
    let s = db.open();
    s.commit_registration(&reg(1, 5, 1)).unwrap();
    assert!(matches!(
        s.commit_registration(&reg(1, 6, 2)),
        Err(CommitError::ReplayedNonce)
    ));
    assert!(matches!(
        s.commit_registration(&reg(2, 5, 3)),
        Err(CommitError::StaleCounter { got: 5, last: 5 })
    ));
    let c = s.counts().unwrap();
    assert_eq!((c.nonces, c.connections, c.audit), (1, 1, 1));
    // The stale registration recorded no nonce: the same nonce with the next counter passes.
    s.commit_registration(&reg(2, 6, 4)).unwrap();
    assert_eq!(s.counts().unwrap().connections, 1);
    assert!(s.connection(&[1; 16]).unwrap().is_none());
    assert!(s.connection(&[4; 16]).unwrap().is_some());
}

fn counters_advance_by_compare_and_set_only(db: &Db) {
    let s = db.open();
    s.commit_registration(&reg(1, 1, 9)).unwrap();
    assert_eq!(s.last_answer(&[9; 16]).unwrap(), None);
    assert!(s.commit_message(&message(9, 0, 0)).unwrap());
    assert!(!s.commit_message(&message(9, 0, 0xAA)).unwrap());
    // The refused compare-and-set left the first commit's answer: a lost answer is sent again.
    assert_eq!(
        s.last_answer(&[9; 16]).unwrap(),
        Some(message(9, 0, 0).answer)
    );
    assert!(s.commit_message(&message(9, 1, 1)).unwrap());
    assert_eq!(
        s.last_answer(&[9; 16]).unwrap(),
        Some(message(9, 1, 1).answer)
    );
    assert!(s.commit_message(&message(9, 2, 2)).unwrap());
    let c = s.connection(&[9; 16]).unwrap().unwrap();
    assert_eq!((c.up_counter, c.down_counter), (3, 3));
    assert_eq!(c.scope, vec!["echo", "provision"]);
    assert_eq!(&c.state[..], &[8; 64][..]);
    assert_eq!(s.counts().unwrap().credentials, 3);
    assert!(!s.commit_message(&message(9, 0, 0)).unwrap());
    assert!(!s.commit_message(&message(8, 0, 0)).unwrap(), "no such CID");
    assert!(s.connection(&[8; 16]).unwrap().is_none());
    let log = s.audit_log(10).unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(log.last().unwrap().decision, AuditDecision::CallExecuted);
}

fn a_new_registration_replaces_the_connection_and_its_last_answer(db: &Db) {
    let s = db.open();
    s.commit_registration(&reg(1, 1, 1)).unwrap();
    assert!(s.commit_message(&message(1, 0, 1)).unwrap());
    assert!(s.last_answer(&[1; 16]).unwrap().is_some());
    // Another container's connection to the same service stays.
    let other = NewRegistration {
        subject_id: [2; 26],
        connection: Some(conn(2, "other", 100)),
        ..reg(2, 1, 2)
    };
    s.commit_registration(&other).unwrap();
    s.commit_registration(&reg(3, 2, 3)).unwrap();
    assert!(s.connection(&[1; 16]).unwrap().is_none());
    assert_eq!(s.last_answer(&[1; 16]).unwrap(), None);
    assert!(s.connection(&[2; 16]).unwrap().is_some());
    assert!(s.connection(&[3; 16]).unwrap().is_some());
    // A refusal (no connection) commits the nonce, the counter and the audit entry.
    let refused = NewRegistration {
        connection: None,
        audit: audit(AuditDecision::Refused, 11, "no grant"),
        ..reg(4, 3, 0)
    };
    s.commit_registration(&refused).unwrap();
    let c = s.counts().unwrap();
    assert_eq!((c.nonces, c.connections, c.credentials), (4, 2, 1));
}

fn the_audit_log_gives_the_last_entries_oldest_first(db: &Db) {
    let s = db.open();
    for i in 0..5u64 {
        let mut e = audit(
            AuditDecision::ALL[i as usize],
            100 + i,
            &format!("entry {i}"),
        );
        e.cid = (i % 2 == 0).then(|| format!("{i:032x}"));
        s.audit(&e).unwrap();
    }
    let log = s.audit_log(3).unwrap();
    let reasons: Vec<&str> = log.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, ["entry 2", "entry 3", "entry 4"]);
    assert_eq!(log[0].decision, AuditDecision::ALL[2]);
    assert_eq!(log[0].cid.as_deref(), Some(format!("{:032x}", 2).as_str()));
    assert_eq!(log[1].cid, None);
    assert_eq!(log[2].time, 104);
    assert_eq!(s.audit_log(100).unwrap().len(), 5);
    assert_eq!(s.counts().unwrap().audit, 5);
}

fn pruning_deletes_what_expired_in_bounded_runs_and_keeps_the_counters(db: &Db) {
    let s = db.open();
    // Three containers with connections expiring at 100, one at 1000; nonces seen at 10.
    for i in 1..=4u8 {
        let expires = if i == 4 { 1000 } else { 100 };
        let r = NewRegistration {
            subject_id: [i; 26],
            connection: Some(conn(i, &format!("s{i}"), expires)),
            ..reg(i, 1, i)
        };
        s.commit_registration(&r).unwrap();
        assert!(s.commit_message(&message(i, 0, i)).unwrap());
    }
    s.audit(&audit(AuditDecision::Internal, 500, "recent"))
        .unwrap();
    let limits = PruneLimits {
        max_rows: 2,
        nonce_retention_secs: 50,
        audit_retention_secs: 50,
    };
    // At 99 nothing has expired yet (valid while now < expires_at).
    let r = s.prune(60, &limits).unwrap();
    assert_eq!((r.connections, r.nonces, r.audit), (0, 0, 0));
    let r = s.prune(150, &limits).unwrap();
    assert_eq!((r.connections, r.last_answers), (2, 2));
    assert_eq!((r.nonces, r.audit), (2, 2));
    assert!(r.more);
    assert!(r.wal_truncated);
    let r = s.prune(150, &limits).unwrap();
    assert_eq!((r.connections, r.last_answers, r.nonces), (1, 1, 2));
    let r = s.prune(150, &limits).unwrap();
    assert_eq!((r.connections, r.nonces), (0, 0));
    let c = s.counts().unwrap();
    assert_eq!((c.nonces, c.connections), (0, 1));
    // 8 old audit entries, 2 a run: the last two wait for the next run.
    assert_eq!(c.audit, 3);
    let mut runs = 0;
    while s.prune(150, &limits).unwrap().more {
        runs += 1;
        assert!(runs < 10, "pruning ends");
    }
    assert_eq!(s.counts().unwrap().audit, 1);
    assert_eq!(s.audit_log(10).unwrap()[0].reason, "recent");
    assert!(s.connection(&[4; 16]).unwrap().is_some());
    assert!(s.last_answer(&[4; 16]).unwrap().is_some());
    assert_eq!(s.last_answer(&[1; 16]).unwrap(), None);
    // The nonce is gone but the counter is kept: the same R is still refused.
    let again = NewRegistration {
        subject_id: [1; 26],
        ..reg(1, 1, 9)
    };
    assert!(matches!(
        s.commit_registration(&again),
        Err(CommitError::StaleCounter { got: 1, last: 1 })
    ));
}

const RACERS: usize = 16;

/// Runs `f(i, store)` on 16 threads released together, alternating two instances of the
/// same database; the results in thread order.
fn race<T: Send>(db: &Db, f: impl Fn(usize, &dyn Store) -> T + Sync) -> Vec<T> {
    let stores = [db.open(), db.open()];
    let start = Barrier::new(RACERS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..RACERS)
            .map(|i| {
                let (store, start, f) = (&stores[i % 2], &start, &f);
                scope.spawn(move || {
                    start.wait();
                    f(i, store.as_ref())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("racer"))
            .collect()
    })
}

fn one_nonce_has_one_winner_across_two_instances(db: &Db) {
    let results = race(db, |i, s| {
        // One nonce; distinct counters and CIDs, so only the nonce decides.
        s.commit_registration(&reg(7, 1 + i as u32, 100 + i as u8))
    });
    let won = results.iter().filter(|r| r.is_ok()).count();
    let replayed = results
        .iter()
        .filter(|r| matches!(r, Err(CommitError::ReplayedNonce)))
        .count();
    assert_eq!((won, replayed), (1, RACERS - 1), "{results:?}");
    let c = db.open().counts().unwrap();
    assert_eq!((c.nonces, c.connections, c.audit), (1, 1, 1));
}

fn one_counter_value_has_one_winner_across_two_instances(db: &Db) {
    let results = race(db, |i, s| {
        s.commit_registration(&reg(i as u8, 7, 100 + i as u8))
    });
    let won = results.iter().filter(|r| r.is_ok()).count();
    let stale = results
        .iter()
        .filter(|r| matches!(r, Err(CommitError::StaleCounter { got: 7, last: 7 })))
        .count();
    assert_eq!((won, stale), (1, RACERS - 1), "{results:?}");
    let c = db.open().counts().unwrap();
    assert_eq!((c.nonces, c.connections, c.audit), (1, 1, 1));
}

fn one_compare_and_set_has_one_winner_across_two_instances(db: &Db) {
    db.open().commit_registration(&reg(1, 1, 9)).unwrap();
    let results = race(db, |i, s| s.commit_message(&message(9, 0, i as u8)));
    let winners: Vec<usize> = (0..RACERS)
        .filter(|&i| matches!(results[i], Ok(true)))
        .collect();
    assert!(
        results.iter().all(|r| r.is_ok()),
        "no store error: {results:?}"
    );
    assert_eq!(winners.len(), 1, "{results:?}");
    let s = db.open();
    let c = s.connection(&[9; 16]).unwrap().unwrap();
    assert_eq!((c.up_counter, c.down_counter), (1, 1));
    assert_eq!(s.counts().unwrap().credentials, 1);
    assert_eq!(
        s.last_answer(&[9; 16]).unwrap(),
        Some(message(9, 0, winners[0] as u8).answer),
        "the winner's answer is the one kept"
    );
}

// PostgreSQL only.

fn url_of(cluster: &pg::PgCluster) -> DatabaseUrl {
    DatabaseUrl::parse(&cluster.new_database()).unwrap()
}

#[test]
fn postgres_instances_starting_together_migrate_once() {
    let Some(cluster) = pg::cluster("postgres_instances_starting_together_migrate_once") else {
        return;
    };
    let url = url_of(&cluster);
    let start = Barrier::new(4);
    let opened: Vec<Result<PgStore, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (url, start) = (&url, &start);
                scope.spawn(move || {
                    start.wait();
                    PgStore::open(url, &PgOptions::default())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &opened {
        assert!(o.is_ok(), "{:?}", o.as_ref().err());
    }
    let db = url.to_string().rsplit('/').next().unwrap().to_owned();
    let versions = cluster
        .psql(
            &db,
            "SELECT string_agg(version::text, ',') FROM schema_migrations",
        )
        .unwrap();
    assert_eq!(versions.trim(), "1");
}

#[test]
fn postgres_refuses_a_schema_from_the_future_and_writes_nothing() {
    let test = "postgres_refuses_a_schema_from_the_future_and_writes_nothing";
    let Some(cluster) = pg::cluster(test) else {
        return;
    };
    let url = url_of(&cluster);
    let db = url.to_string().rsplit('/').next().unwrap().to_owned();
    drop(PgStore::open(&url, &PgOptions::default()).unwrap());
    cluster
        .psql(&db, "INSERT INTO schema_migrations (version) VALUES (99)")
        .unwrap();
    let e = PgStore::open(&url, &PgOptions::default()).unwrap_err();
    assert!(matches!(
        e,
        StoreError::SchemaTooNew {
            found: 99,
            known: 1
        }
    ));
    assert_eq!(
        e.to_string(),
        "database schema version 99 is newer than this server (1); upgrade the server"
    );
    let versions = cluster
        .psql(&db, "SELECT count(*) FROM schema_migrations")
        .unwrap();
    assert_eq!(versions.trim(), "2");
}

#[test]
fn postgres_refuses_a_wrong_password_and_a_missing_database_with_the_fix() {
    let test = "postgres_refuses_a_wrong_password_and_a_missing_database_with_the_fix";
    let Some(cluster) = pg::cluster(test) else {
        return;
    };
    let wrong = DatabaseUrl::parse(&cluster.url("postgres", "hunter2")).unwrap();
    let e = PgStore::open(&wrong, &PgOptions::default())
        .unwrap_err()
        .to_string();
    eprintln!("wrong password: {e}");
    assert!(e.contains("refused the login"), "{e}");
    assert!(e.contains("check the user and password"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    let missing = DatabaseUrl::parse(&cluster.url("nosuchdb", &cluster.password)).unwrap();
    let e = PgStore::open(&missing, &PgOptions::default())
        .unwrap_err()
        .to_string();
    eprintln!("missing database: {e}");
    assert!(e.contains("createdb"), "{e}");
    assert!(!e.contains(&cluster.password), "{e}");
}

/// The engine's way: the store shares the server's runtime and is called on its blocking
/// threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shares_the_callers_runtime_from_blocking_threads() {
    let test = "postgres_shares_the_callers_runtime_from_blocking_threads";
    let Some(cluster) = tokio::task::spawn_blocking(move || pg::cluster(test))
        .await
        .unwrap()
    else {
        return;
    };
    let url = {
        let c = cluster.clone();
        tokio::task::spawn_blocking(move || url_of(&c))
            .await
            .unwrap()
    };
    let store: Arc<dyn Store> =
        Arc::new(PgStore::connect(&url, &PgOptions::default()).await.unwrap());
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.commit_registration(&reg(1, 1, 1)))
        .await
        .unwrap()
        .unwrap();
    // Opened synchronously on a blocking thread, a second store shares the runtime too.
    let second = tokio::task::spawn_blocking(move || {
        let s = PgStore::open(&url, &PgOptions::default()).unwrap();
        s.counts().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(second.connections, 1);
    // Dropped on the runtime: the pool closes without blocking it.
    drop(store);
    drop(cluster);
}

#[test]
fn an_unreachable_database_stops_the_start_within_the_connect_timeout() {
    // A closed port: refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = DatabaseUrl::parse(&format!("postgres://app:hunter2@127.0.0.1:{port}/vsc")).unwrap();
    let e = PgStore::open(&url, &PgOptions::default())
        .unwrap_err()
        .to_string();
    eprintln!("closed port: {e}");
    assert!(
        e.starts_with(&format!(
            "cannot connect to PostgreSQL at postgres://app@127.0.0.1:{port}/vsc"
        )),
        "{e}"
    );
    assert!(e.contains("is the database server running"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    // A port that accepts TCP and never answers: bounded by the connect timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = DatabaseUrl::parse(&format!("postgres://app@127.0.0.1:{port}/vsc")).unwrap();
    let options = PgOptions {
        connect_timeout: Duration::from_secs(1),
        ..PgOptions::default()
    };
    let t = Instant::now();
    let e = PgStore::open(&url, &options).unwrap_err().to_string();
    eprintln!("silent port: {e}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(e.contains("cannot connect to PostgreSQL at"), "{e}");
    drop(silent);
}

#[test]
fn server_run_with_an_unreachable_database_stops_at_start_and_writes_nothing() {
    let bin = env!("CARGO_BIN_EXE_server");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = std::process::Command::new(bin)
        .args(["init", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(init.status.success());
    let listing = |d: &std::path::Path| {
        let mut files: Vec<(String, u64)> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        files.sort();
        files
    };
    let before = listing(&data);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = std::process::Command::new(bin)
        .args(["run", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .args(["--issuer-ca", &format!("04{}", "aa".repeat(64))])
        .env(
            "SERVER_DATABASE",
            format!("postgres://app:hunter2@127.0.0.1:{port}/vsc"),
        )
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    eprintln!("{stderr}");
    assert!(!run.status.success());
    assert!(run.stdout.is_empty(), "it never listened");
    assert!(
        stderr.contains(&format!(
            "cannot connect to PostgreSQL at postgres://app@127.0.0.1:{port}/vsc"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert_eq!(listing(&data), before, "nothing written");
    let bad = std::process::Command::new(bin)
        .args(["audit", "--data"])
        .arg(&data)
        .args([
            "--database",
            "postgres://app:hunter2@127.0.0.1:notaport/vsc",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    eprintln!("{stderr}");
    assert!(!bad.status.success());
    assert!(stderr.contains("the database URL is malformed"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
