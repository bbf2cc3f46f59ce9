//! Complete flows per second (registration + one `echo` call) from fake SEs through the
//! portal to the server over loopback HTTP, with 1 and 16 concurrent terminals, SQLite
//! durability full and normal, group commit on and off; the mean latency of each step and
//! the store's commit latency (call to durable answer). `cargo bench -p e2e-tests --bench flows [-- SECONDS]`.
//!
//! The SE side is the shared crypto in-process (no card, no APDUs): this measures what
//! the server and the portal cost. The card-in-process benchmark of issue 5 item 9 adds
//! the applet and the reader-client on top.
#[path = "../../server/tests/suite/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../tests/suite/server_portal/portal.rs"]
mod portal;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use portal::start_portal;
use secure_channel::mutual::{self, Call};
use server::store::{
    AuditDecision, AuditEntry, ConnectionRecord, Durability, LastAnswer, MessageCommit,
    NewRegistration, SqliteOptions, Store,
};
use server::SqliteStore;

#[derive(Default)]
struct Steps {
    build_r: AtomicU64,
    register_http: AtomicU64,
    verify_r_prime: AtomicU64,
    echo_http: AtomicU64,
    flows: AtomicU64,
}

fn add(a: &AtomicU64, since: Instant) -> Instant {
    let now = Instant::now();
    a.fetch_add((now - since).as_micros() as u64, Ordering::Relaxed);
    now
}

async fn terminal(
    base: String,
    mut se: FakeSe,
    public: mutual::VerifyingKey,
    until: Instant,
    steps: Arc<Steps>,
) {
    let http = client();
    let post = |path: String, body: serde_json::Value| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            post_via(
                &http,
                &base,
                &path,
                serde_json::to_vec(&body).expect("json"),
            )
            .await
        }
    };
    while Instant::now() < until {
        let t = Instant::now();
        let pending = se.registration(SERVICE, &public);
        let body = register_body(&pending);
        let t = add(&steps.build_r, t);
        let a = post(register_path(SERVICE), body).await;
        assert_eq!(a.status, 200, "{:?}", a.json);
        let t = add(&steps.register_http, t);
        let rp = parse_answer(&a.json);
        let mut conn = mutual::se_accept_answer(&pending.pending, &public, &rp, NOW)
            .expect("granted")
            .connection;
        let m = conn
            .seal_call(&Call {
                name: "echo".into(),
                data: b"ping".to_vec(),
            })
            .expect("seal");
        let t = add(&steps.verify_r_prime, t);
        let a = post(messages_path(SERVICE), message_body(&m)).await;
        assert_eq!(a.status, 200, "{:?}", a.json);
        let r = conn
            .open_result(&parse_message(&a.json))
            .expect("open result");
        assert_eq!(r.data, b"ping");
        add(&steps.echo_http, t);
        steps.flows.fetch_add(1, Ordering::Relaxed);
    }
}

/// flows/s of one configuration.
async fn run(terminals: usize, seconds: f64, options: SqliteOptions) -> f64 {
    let mut w = World::new().grant_all(NOW + 86_400);
    w.sqlite = options;
    let srv = w.start_server().await;
    let portal = start_portal(&[(SERVICE, &srv.url)]).await;
    let steps = Arc::new(Steps::default());
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for i in 0..terminals {
        // One container per terminal: registration counters are per container.
        let iccid = format!("8900012345678901{:04}", i);
        let se = FakeSe::with_subject(&w.ca, subject(EID_HEX, &iccid));
        tasks.push(tokio::spawn(terminal(
            portal.url.clone(),
            se,
            srv.public,
            until,
            steps.clone(),
        )));
    }
    for t in tasks {
        t.await.expect("terminal");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let flows = steps.flows.load(Ordering::Relaxed);
    let per = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / flows.max(1) as f64 / 1000.0;
    let rate = flows as f64 / elapsed;
    let l = srv.store.commit_latency_snapshot();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{:?} durability, group commit {}, {terminals:>2} terminal(s): {flows} flows in {elapsed:.1} s = {rate:.0} flows/s; mean ms per flow: build R {:.2}, register over HTTP {:.2}, verify R' + seal {:.2}, echo over HTTP {:.2}; store commit latency ms p50 {:.2} p95 {:.2} p99 {:.2} max {:.2}, {:.1} writes per transaction",
        options.durability,
        if options.group_commit { "on " } else { "off" },
        per(&steps.build_r),
        per(&steps.register_http),
        per(&steps.verify_r_prime),
        per(&steps.echo_http),
        ms(l.p50),
        ms(l.p95),
        ms(l.p99),
        ms(l.max),
        l.writes as f64 / l.transactions.max(1) as f64,
    );
    portal.stop().await;
    srv.stop().await;
    rate
}

/// The store alone, the two writes of a flow (registration with its connection, then one
/// message) from `threads` threads, no crypto nor HTTP: what group commit gives the store.
fn store_only(threads: u32, seconds: f64, options: SqliteOptions) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open_with_options(&dir.path().join("server.db"), options).expect("open"),
    );
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let audit = AuditEntry {
                    time: NOW,
                    subject: format!("S{t}"),
                    service: SERVICE.into(),
                    decision: AuditDecision::Registered,
                    reason: String::new(),
                    cid: None,
                };
                let mut subject_id = [0u8; 26];
                subject_id[..4].copy_from_slice(&t.to_be_bytes());
                let mut flows = 0u32;
                while Instant::now() < until {
                    let mut cid = [0u8; 16];
                    cid[..4].copy_from_slice(&t.to_be_bytes());
                    cid[4..8].copy_from_slice(&flows.to_be_bytes());
                    store
                        .commit_registration(&NewRegistration {
                            nonce: cid,
                            subject_id,
                            counter: flows + 1,
                            connection: Some(ConnectionRecord {
                                cid,
                                service: SERVICE.into(),
                                subject: format!("S{t}"),
                                scope: vec!["echo".into()],
                                expires_at: NOW + 3600,
                                state: vec![0x5A; 200].into(),
                                up_counter: 0,
                                down_counter: 0,
                                created_at: NOW,
                            }),
                            audit: audit.clone(),
                        })
                        .expect("registration");
                    let passed = store
                        .commit_message(&MessageCommit {
                            cid,
                            expected_up: 0,
                            new_up: 1,
                            new_down: 1,
                            new_state: vec![0x5B; 200].into(),
                            credential: None,
                            answer: LastAnswer {
                                up_sha256: [1; 32],
                                down: vec![0x73; 64],
                            },
                            audit: audit.clone(),
                        })
                        .expect("message");
                    assert!(passed);
                    flows += 1;
                }
                flows
            })
        })
        .collect();
    let flows: u32 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    let rate = f64::from(flows) / started.elapsed().as_secs_f64();
    let l = store.commit_latency_snapshot();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "store alone, {:?} durability, group commit {}, {threads} threads: {rate:.0} flows/s (2 writes each); commit latency ms p50 {:.2} p95 {:.2} p99 {:.2} max {:.2}, {:.1} writes per transaction",
        options.durability,
        if options.group_commit { "on " } else { "off" },
        ms(l.p50),
        ms(l.p95),
        ms(l.p99),
        ms(l.max),
        l.writes as f64 / l.transactions.max(1) as f64,
    );
    rate
}

fn main() {
    let seconds: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rates = Vec::new();
    rt.block_on(async {
        for durability in [Durability::Full, Durability::Normal] {
            for group_commit in [true, false] {
                let options = SqliteOptions {
                    durability,
                    group_commit,
                };
                for terminals in [1, 16] {
                    rates.push((options, terminals, run(terminals, seconds, options).await));
                }
            }
        }
    });
    let rate = |durability, group_commit, terminals| {
        rates
            .iter()
            .find(|(o, t, _)| {
                *o == SqliteOptions {
                    durability,
                    group_commit,
                } && *t == terminals
            })
            .map_or(0.0, |r| r.2)
    };
    let mut alone = Vec::new();
    for durability in [Durability::Full, Durability::Normal] {
        for group_commit in [true, false] {
            let options = SqliteOptions {
                durability,
                group_commit,
            };
            alone.push(store_only(16, seconds, options));
        }
    }
    for (i, durability) in [Durability::Full, Durability::Normal]
        .into_iter()
        .enumerate()
    {
        let (on, off) = (alone[2 * i], alone[2 * i + 1]);
        println!(
            "store alone, {durability:?} durability, 16 threads: group commit {on:.0} flows/s, one transaction per write {off:.0} flows/s: {:.2}x",
            on / off.max(1.0)
        );
    }
    for durability in [Durability::Full, Durability::Normal] {
        let (on, off) = (rate(durability, true, 16), rate(durability, false, 16));
        println!(
            "{durability:?} durability, 16 terminals: group commit {on:.0} flows/s, one transaction per write {off:.0} flows/s: {:.2}x",
            on / off.max(1.0)
        );
    }
}
