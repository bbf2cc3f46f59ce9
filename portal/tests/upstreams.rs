//! Several server instances behind one service, on loopback: requests take turns, a
//! connection that fails before any answer is retried once elsewhere, an error answer or a
//! timeout is not, health checks take a stopped instance out and put it back, and with no
//! instance healthy every one is still tried.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing;
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(30);
/// Bound on every wait for a health change (the checks run every 50 ms in these tests).
const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// 200 with the instance's name.
    Answer,
    /// 500 with a JSON error naming the instance.
    Fail,
    /// Never answers.
    Hang,
}

#[derive(Clone)]
struct FakeState {
    name: &'static str,
    mode: Mode,
    hits: Arc<AtomicUsize>,
    healthz: Arc<AtomicU16>,
}

/// A fake server instance on loopback: counts relayed requests, answers per its mode, and
/// answers `GET /healthz` with the status in `healthz` (200 at first).
struct Fake {
    addr: SocketAddr,
    url: String,
    hits: Arc<AtomicUsize>,
    healthz: Arc<AtomicU16>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn fake(addr: SocketAddr, name: &'static str, mode: Mode) -> Fake {
    let state = FakeState {
        name,
        mode,
        hits: Arc::default(),
        healthz: Arc::new(AtomicU16::new(200)),
    };
    async fn relayed(State(s): State<FakeState>) -> axum::response::Response {
        s.hits.fetch_add(1, Ordering::SeqCst);
        match s.mode {
            Mode::Answer => (StatusCode::OK, s.name).into_response(),
            Mode::Fail => (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "application/json")],
                format!(r#"{{"error":"internal","message":"{}"}}"#, s.name),
            )
                .into_response(),
            Mode::Hang => std::future::pending().await,
        }
    }
    async fn healthz(State(s): State<FakeState>) -> StatusCode {
        StatusCode::from_u16(s.healthz.load(Ordering::SeqCst)).unwrap()
    }
    let app = Router::new()
        .route("/v1/services/{service}/{route}", routing::post(relayed))
        .route("/healthz", routing::get(healthz))
        .with_state(state.clone());
    // The port of a stopped instance may be taken back a moment later: bounded retries.
    let started = Instant::now();
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if started.elapsed() < DEADLINE => {
                eprintln!("binding {addr} again: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot bind {addr}: {e}"),
        }
    };
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Fake {
        addr,
        url: format!("http://{addr}"),
        hits: state.hits,
        healthz: state.healthz,
        stop,
        task,
    }
}

impl Fake {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops listening and closes its connections; returns its address.
    async fn stop(self) -> SocketAddr {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(WAIT, self.task).await;
        self.addr
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A URL nothing listens on (the port was just free).
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

fn config(services: &[(&str, &str)]) -> portal::Config {
    let flags: Vec<String> = services.iter().map(|(s, u)| format!("{s}={u}")).collect();
    let mut c = portal::Config::from_parts(Default::default(), None, &flags).unwrap();
    c.health_interval = Duration::from_millis(50);
    c.health_timeout = Duration::from_millis(500);
    c
}

struct Portal {
    url: String,
    relay: portal::Relay,
    stop: oneshot::Sender<()>,
}

impl Portal {
    async fn start(config: portal::Config, health_checks: bool) -> Portal {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let relay = portal::Relay::new(config).unwrap();
        if health_checks {
            relay.spawn_health_checks();
        }
        let (stop, rx) = oneshot::channel::<()>();
        tokio::spawn(portal::serve(
            listener,
            portal::router(relay.clone()),
            WAIT,
            async move {
                let _ = rx.await;
            },
        ));
        Portal { url, relay, stop }
    }

    fn health(&self, url: &str) -> portal::UpstreamStatus {
        self.relay
            .upstreams()
            .snapshot()
            .into_iter()
            .find(|s| s.url == url)
            .unwrap()
    }

    /// Waits (bounded) until the instance at `url` is (un)healthy.
    async fn wait_health(&self, url: &str, healthy: bool) {
        let started = Instant::now();
        while self.health(url).healthy != healthy {
            assert!(
                started.elapsed() < DEADLINE,
                "{url} not marked healthy={healthy} within {DEADLINE:?}: {:?}",
                self.health(url)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn post(&self, service: &str) -> (u16, String) {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(WAIT)
            .build()
            .unwrap();
        let resp = client
            .post(format!("{}/v1/services/{service}/register", self.url))
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    fn stop(self) {
        let _ = self.stop.send(());
    }
}

fn error_code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_take_turns_over_the_healthy_instances() {
    let a = fake(any_port(), "a", Mode::Answer).await;
    let b = fake(any_port(), "b", Mode::Answer).await;
    let portal = Portal::start(config(&[("demo", &a.url), ("demo", &b.url)]), false).await;
    let mut bodies = Vec::new();
    for _ in 0..6 {
        let (status, body) = portal.post("demo").await;
        assert_eq!(status, 200, "{body}");
        bodies.push(body);
    }
    assert_eq!(bodies, ["a", "b", "a", "b", "a", "b"]);
    assert_eq!((a.hits(), b.hits()), (3, 3));
    let snapshot = portal.relay.upstreams().snapshot();
    assert_eq!(
        snapshot,
        [
            portal::UpstreamStatus {
                service: "demo".into(),
                url: a.url.clone(),
                healthy: true,
                consecutive_failures: 0,
            },
            portal::UpstreamStatus {
                service: "demo".into(),
                url: b.url.clone(),
                healthy: true,
                consecutive_failures: 0,
            },
        ]
    );
    portal.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retried_once_on_another_instance_and_takes_it_out() {
    let dead = dead_url();
    let b = fake(any_port(), "b", Mode::Answer).await;
    // No health checks: only the failed connection can take the dead instance out.
    let portal = Portal::start(config(&[("demo", &dead), ("demo", &b.url)]), false).await;
    // The first turn is the dead instance's: the client sees only the retry's answer.
    assert_eq!(portal.post("demo").await, (200, "b".to_owned()));
    let down = portal.health(&dead);
    assert!(!down.healthy && down.consecutive_failures == 1, "{down:?}");
    for _ in 0..3 {
        assert_eq!(portal.post("demo").await, (200, "b".to_owned()));
    }
    assert_eq!(b.hits(), 4);
    assert_eq!(
        portal.health(&dead).consecutive_failures,
        1,
        "not tried again"
    );

    // Two instances down: one retry, then 502 naming both.
    let (dead1, dead2) = (dead_url(), dead_url());
    let portal2 = Portal::start(config(&[("gone", &dead1), ("gone", &dead2)]), false).await;
    let (status, body) = portal2.post("gone").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(error_code(&body), "upstream_unavailable");
    assert!(body.contains(&dead1) && body.contains(&dead2), "{body}");
    portal.stop();
    portal2.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_instance_is_bypassed_taken_out_and_put_back_when_it_returns() {
    let a = fake(any_port(), "a", Mode::Answer).await;
    let b = fake(any_port(), "b", Mode::Answer).await;
    let a_url = a.url.clone();
    let portal = Portal::start(config(&[("demo", &a.url), ("demo", &b.url)]), true).await;
    for _ in 0..2 {
        assert_eq!(portal.post("demo").await.0, 200);
    }
    assert_eq!(a.hits(), 1, "both instances in use before the stop");

    let addr = a.stop().await;
    for _ in 0..6 {
        assert_eq!(portal.post("demo").await, (200, "b".to_owned()));
    }
    portal.wait_health(&a_url, false).await;
    assert!(portal.health(&b.url).healthy);

    let a = fake(addr, "a", Mode::Answer).await;
    assert_eq!(a.url, a_url);
    portal.wait_health(&a_url, true).await;
    let mut answered_by_a = false;
    for _ in 0..4 {
        let (status, body) = portal.post("demo").await;
        assert_eq!(status, 200);
        answered_by_a |= body == "a";
    }
    assert!(answered_by_a, "the instance is used again once back");
    portal.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_instance_healthy_every_one_is_still_tried() {
    let dead = dead_url();
    let b = fake(any_port(), "b", Mode::Answer).await;
    // b answers requests, but its /healthz says it is not ready: both are taken out.
    b.healthz.store(503, Ordering::SeqCst);
    let portal = Portal::start(config(&[("demo", &dead), ("demo", &b.url)]), true).await;
    portal.wait_health(&dead, false).await;
    portal.wait_health(&b.url, false).await;
    assert_eq!(portal.post("demo").await, (200, "b".to_owned()));
    assert_eq!(b.hits(), 1);
    portal.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_answer_is_relayed_and_not_retried() {
    let a = fake(any_port(), "a", Mode::Fail).await;
    let b = fake(any_port(), "b", Mode::Answer).await;
    let portal = Portal::start(config(&[("demo", &a.url), ("demo", &b.url)]), false).await;
    let (status, body) = portal.post("demo").await;
    assert_eq!(status, 500);
    assert_eq!(body, r#"{"error":"internal","message":"a"}"#);
    assert_eq!((a.hits(), b.hits()), (1, 0), "not retried on b");
    assert!(
        portal.health(&a.url).healthy,
        "an answer is no connection failure"
    );
    assert_eq!(portal.post("demo").await, (200, "b".to_owned()));
    portal.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_hangs_gets_a_timeout_and_no_retry() {
    let a = fake(any_port(), "a", Mode::Hang).await;
    let b = fake(any_port(), "b", Mode::Answer).await;
    let mut c = config(&[("demo", &a.url), ("demo", &b.url)]);
    c.upstream_timeout = Duration::from_millis(300);
    let portal = Portal::start(c, false).await;
    let (status, body) = portal.post("demo").await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(error_code(&body), "upstream_timeout");
    assert_eq!((a.hits(), b.hits()), (1, 0), "not retried on b");
    assert_eq!(portal.post("demo").await, (200, "b".to_owned()));
    portal.stop();
}
