//! The portal against a recording fake server on loopback: bodies and answers relayed
//! unchanged, limits, timeouts, unknown services, server down; and the `portal` binary.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing;
use axum::Router;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(30);

type Seen = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A fake server: records (service, route, body); `register` answers 201 with the body
/// reversed, `messages` answers 409 with a JSON error, service `slow` never answers.
async fn fake_server() -> (String, Seen, oneshot::Sender<()>) {
    let seen: Seen = Arc::default();
    async fn handle(
        State(seen): State<Seen>,
        Path((service, route)): Path<(String, String)>,
        body: Bytes,
    ) -> axum::response::Response {
        seen.lock()
            .unwrap()
            .push((service.clone(), route.clone(), body.to_vec()));
        if service == "slow" {
            std::future::pending::<()>().await;
        }
        if route == "register" {
            let mut b = body.to_vec();
            b.reverse();
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/x-test")],
                b,
            )
                .into_response()
        } else {
            (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"error":"replay","message":"from the server"}"#,
            )
                .into_response()
        }
    }
    let app = Router::new()
        .route("/v1/services/{service}/{route}", routing::post(handle))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    (url, seen, tx)
}

async fn start_portal(config: portal::Config) -> (String, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let router = portal::router(portal::Relay::new(config).unwrap());
    tokio::spawn(portal::serve(listener, router, WAIT, async move {
        let _ = rx.await;
    }));
    (url, tx)
}

fn config(services: &[(&str, &str)]) -> portal::Config {
    let flags: Vec<String> = services.iter().map(|(s, u)| format!("{s}={u}")).collect();
    portal::Config::from_parts(Default::default(), None, &flags).unwrap()
}

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

async fn post(url: &str, body: &[u8]) -> Answer {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .unwrap();
    let resp = client.post(url).body(body.to_vec()).send().await.unwrap();
    Answer {
        status: resp.status().as_u16(),
        content_type: resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        body: resp.bytes().await.unwrap().to_vec(),
    }
}

fn assert_error(a: &Answer, status: u16, code: &str) {
    let v = a.json();
    assert_eq!(a.status, status, "{v:?}");
    assert_eq!(v["error"], code, "{v:?}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_and_answers_are_relayed_unchanged() {
    let (server, seen, stop) = fake_server().await;
    let (portal, stop_portal) = start_portal(config(&[("demo", &server), ("a b", &server)])).await;
    let body = b"{ \"r\" :\"00\",\n \"signature\": \"AB\" }".to_vec();
    let a = post(&format!("{portal}/v1/services/demo/register"), &body).await;
    assert_eq!(a.status, 201);
    assert_eq!(a.content_type, "application/x-test");
    let mut reversed = body.clone();
    reversed.reverse();
    assert_eq!(a.body, reversed);

    // An error of the server passes through as the server wrote it.
    let a = post(&format!("{portal}/v1/services/demo/messages"), b"{}").await;
    assert_eq!(a.status, 409);
    assert_eq!(a.json()["message"], "from the server");

    // A service id that needs escaping reaches the server intact.
    let a = post(&format!("{portal}/v1/services/a%20b/register"), b"x").await;
    assert_eq!(a.status, 201);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("demo".into(), "register".into(), body),
            ("demo".into(), "messages".into(), b"{}".to_vec()),
            ("a b".into(), "register".into(), b"x".to_vec()),
        ]
    );
    let _ = stop.send(());
    let _ = stop_portal.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_unknown_services_and_slow_or_dead_servers_get_json_errors() {
    let (server, seen, stop) = fake_server().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut c = config(&[("demo", &server), ("slow", &server), ("down", &dead)]);
    c.upstream_timeout = Duration::from_millis(300);
    c.max_body_bytes = 1024;
    let (portal, stop_portal) = start_portal(c).await;

    let at_limit = post(
        &format!("{portal}/v1/services/demo/register"),
        &[b'x'; 1024],
    )
    .await;
    assert_eq!(at_limit.status, 201);
    let over = post(
        &format!("{portal}/v1/services/demo/register"),
        &[b'x'; 1025],
    )
    .await;
    assert_error(&over, 413, "body_too_large");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "the oversized body was not forwarded"
    );

    assert_error(
        &post(&format!("{portal}/v1/services/nosuch/register"), b"{}").await,
        404,
        "unknown_service",
    );
    let down = post(&format!("{portal}/v1/services/down/messages"), b"{}").await;
    assert_error(&down, 502, "upstream_unavailable");
    assert!(down.json()["message"].as_str().unwrap().contains("`down`"));
    assert_error(
        &post(&format!("{portal}/v1/services/slow/register"), b"{}").await,
        504,
        "upstream_timeout",
    );
    assert_error(
        &post(&format!("{portal}/elsewhere"), b"{}").await,
        404,
        "not_found",
    );
    let _ = stop.send(());
    let _ = stop_portal.send(());
}

#[test]
fn the_binary_has_help_and_refuses_to_start_without_services() {
    let bin = env!("CARGO_BIN_EXE_portal");
    for args in [vec!["--help"], vec!["run", "--help"]] {
        let out = Command::new(bin).args(&args).output().unwrap();
        assert!(out.status.success());
    }
    let help = Command::new(bin).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--service") && help.contains("--config") && help.contains("--listen"));
    let out = Command::new(bin).arg("run").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--service ID=URL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_relays_with_a_config_file() {
    let (server, seen, stop) = fake_server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portal.toml");
    std::fs::write(
        &file,
        format!("listen = \"127.0.0.1:0\"\n[services]\ndemo = \"{server}\"\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portal"))
        .args(["run", "--config"])
        .arg(&file)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx.recv_timeout(WAIT);
    let result = async {
        let line = line.expect("portal printed its address");
        let url = line
            .strip_prefix("portal listening on ")
            .unwrap()
            .to_owned();
        let a = post(&format!("{url}/v1/services/demo/register"), b"abc").await;
        assert_eq!((a.status, a.body.as_slice()), (201, &b"cba"[..]));
        assert_error(
            &post(&format!("{url}/v1/services/other/register"), b"abc").await,
            404,
            "unknown_service",
        );
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = stop.send(());
    assert_eq!(seen.lock().unwrap().len(), 1);
    result
}
