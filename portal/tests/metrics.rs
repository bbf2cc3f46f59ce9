//! `GET /metrics` of the portal: its own request counters and upstream health, answered by
//! the portal itself and never relayed to a server.
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing;
use axum::Router;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(30);

/// Text the fake server puts in its own `/metrics`: it must never reach a portal client.
const SERVER_MARKER: &str = "fake_server_only_metric";

/// A fake server: `register` answers 200 `{}`, `GET /metrics` answers its own marker.
async fn fake_server() -> (String, oneshot::Sender<()>) {
    let app = Router::new()
        .route(
            "/v1/services/{service}/{route}",
            routing::post(|| async {
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    "{}",
                )
                    .into_response()
            }),
        )
        .route(
            "/metrics",
            routing::get(|| async { format!("{SERVER_MARKER} 1\n") }),
        );
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
    (url, tx)
}

async fn start_portal(upstream: &str) -> (String, oneshot::Sender<()>) {
    let flags = vec![format!("demo={upstream}")];
    let config = portal::Config::from_parts(Default::default(), None, &flags).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let router = portal::router(portal::Relay::new(config).unwrap());
    tokio::spawn(portal::serve(listener, router, WAIT, async move {
        let _ = rx.await;
    }));
    (url, tx)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .unwrap()
}

/// The value of the one sample whose line starts with `name{` and has every label of
/// `labels` (in any order).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_answers_its_own_metrics_after_a_relayed_request() {
    let (server, stop_server) = fake_server().await;
    let (portal, stop_portal) = start_portal(&server).await;
    let c = client();
    let a = c
        .post(format!("{portal}/v1/services/demo/register"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 200);
    // Not a route of the portal: answered 404 by the portal, counted as `unmatched`.
    let a = c
        .get(format!("{portal}/v1/services/demo/secret-looking-path"))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 404);

    let resp = c.get(format!("{portal}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()[header::CONTENT_TYPE].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = resp.text().await.unwrap();
    let register = "/v1/services/{service}/register";
    assert_eq!(
        sample(
            &text,
            "http_requests_total",
            &[("route", register), ("method", "POST"), ("status", "200")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "http_request_duration_seconds_count",
            &[("route", register)]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "portal_upstream_up",
            &[("service", "demo"), ("url", &server)]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("portal_upstream_consecutive_failures{"),
        "{text}"
    );
    assert!(!text.contains("secret-looking-path"), "{text}");
    assert!(!text.contains("/v1/services/demo/"), "{text}");
    assert!(!text.contains(SERVER_MARKER), "{text}");

    // A scrape is counted like any request (seen by the next one).
    let text = c
        .get(format!("{portal}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(
            &text,
            "http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "200")]
        ),
        Some(1.0),
        "{text}"
    );
    let _ = stop_portal.send(());
    let _ = stop_server.send(());
}
