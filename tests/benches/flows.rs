//! Complete flows per second (registration + one `echo` call) from fake SEs through the
//! portal to the server over loopback HTTP, with 1 and 16 concurrent terminals and SQLite
//! durability full and normal, and the mean latency of each step. `cargo bench -p e2e-tests --bench flows [-- SECONDS]`.
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
use server::store::Durability;

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

async fn run(terminals: usize, seconds: f64, durability: Durability) {
    let mut w = World::new().grant_all(NOW + 86_400);
    w.durability = durability;
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
    println!(
        "{durability:?} durability, {terminals:>2} terminal(s): {flows} flows in {elapsed:.1} s = {:.0} flows/s; mean ms per flow: build R {:.2}, register over HTTP {:.2}, verify R' + seal {:.2}, echo over HTTP {:.2}",
        flows as f64 / elapsed,
        per(&steps.build_r),
        per(&steps.register_http),
        per(&steps.verify_r_prime),
        per(&steps.echo_http),
    );
    portal.stop().await;
    srv.stop().await;
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
    rt.block_on(async {
        for durability in [Durability::Full, Durability::Normal] {
            run(1, seconds, durability).await;
            run(16, seconds, durability).await;
        }
    });
}
