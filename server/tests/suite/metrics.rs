//! `GET /metrics`: requests by route template and status, the request duration histogram,
//! the store's commit latency; unknown paths as `unmatched`; no identifier in any series.
use crate::common;

use common::*;

async fn scrape(base: &str) -> (String, String) {
    let resp = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, resp.text().await.expect("metrics text"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_flow_by_route_template_and_show_the_store_commit_latency() {
    let w = World::new().grant_all(NOW + 3600);
    let srv = w.start_server().await;
    let mut se = FakeSe::new(&w.ca);
    let mut conn = register_ok(&srv.url, &mut se, &srv.public).await;
    call_ok(&srv.url, &mut conn, "echo", b"hi").await;
    // A path with an id in it that no route matches.
    let unknown = client()
        .get(format!("{}/v1/connections/{EID_HEX}", srv.url))
        .send()
        .await
        .expect("unknown path");
    assert_eq!(unknown.status(), 404);

    let (content_type, text) = scrape(&srv.url).await;
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let register = "/v1/services/{service}/register";
    let messages = "/v1/services/{service}/messages";
    for route in [register, messages] {
        assert_eq!(
            sample(
                &text,
                "http_requests_total",
                &[("route", route), ("method", "POST"), ("status", "200")]
            ),
            Some(1.0),
            "{route}: {text}"
        );
        // The flow latency: one observation per call, in the buckets up to +Inf.
        assert_eq!(
            sample(
                &text,
                "http_request_duration_seconds_count",
                &[("route", route)]
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                "http_request_duration_seconds_bucket",
                &[("route", route), ("le", "+Inf")]
            ),
            Some(1.0),
            "{text}"
        );
        assert!(
            sample(
                &text,
                "http_request_duration_seconds_sum",
                &[("route", route)]
            )
            .is_some_and(|s| s > 0.0),
            "{text}"
        );
    }
    assert_eq!(
        sample(
            &text,
            "http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        Some(1.0),
        "{text}"
    );
    for q in ["0.5", "0.95", "0.99"] {
        assert!(
            sample(&text, "store_commit_latency_seconds", &[("quantile", q)])
                .is_some_and(|s| s > 0.0),
            "quantile {q}: {text}"
        );
    }
    assert!(
        sample(&text, "store_commit_latency_max_seconds", &[]).is_some_and(|s| s > 0.0),
        "{text}"
    );
    // A registration and a message: two writes at least, each in some transaction.
    let writes = sample(&text, "store_writes_total", &[]).expect("store_writes_total");
    let transactions =
        sample(&text, "store_transactions_total", &[]).expect("store_transactions_total");
    assert!(writes >= 2.0, "{text}");
    assert!((1.0..=writes).contains(&transactions), "{text}");

    // No identifier of the flow anywhere: not the EID, the CID, the subject, nor a raw path.
    let cid_hex = hex::encode(conn.cid());
    let subject_hex = hex::encode(subject(EID_HEX, ICCID_DIGITS));
    let lower = text.to_ascii_lowercase();
    for secret in [
        EID_HEX.to_ascii_lowercase(),
        cid_hex,
        subject_hex,
        ICCID_DIGITS.to_owned(),
    ] {
        assert!(!lower.contains(&secret), "{secret} in {text}");
    }
    assert!(!text.contains("/v1/connections"), "{text}");
    assert!(
        !text.contains(&format!("/v1/services/{SERVICE}/")),
        "{text}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_outside_the_body_limit_and_counted_like_any_route() {
    let mut w = World::new();
    // The smallest limit the configuration accepts: the metrics text outgrows it, and a
    // scrape is not held to it (only request bodies are).
    w.max_body_bytes = Some(1024);
    let srv = w.start_server().await;
    scrape(&srv.url).await;
    let (_, text) = scrape(&srv.url).await;
    assert!(text.len() > 1024, "{}", text.len());
    assert_eq!(
        sample(
            &text,
            "http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "200")]
        ),
        Some(1.0),
        "{text}"
    );
    srv.stop().await;
}
