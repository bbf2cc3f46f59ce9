//! HTTP hardening of the server and the portal: body limits, malformed input, timeouts,
//! routing errors; every error answer is JSON with a machine code and a message.
use crate::common;

use std::io::{Read, Write};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_gets_400_with_a_message() {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let cases: &[(&str, &[u8], &str)] = &[
        ("register", b"{not json", "malformed_json"),
        ("register", b"", "malformed_json"),
        ("register", b"{\"r\": \"00\"}", "malformed_registration"),
        ("register", b"{\"signature\": \"00\"}", "malformed_json"),
        (
            "register",
            b"{\"r\": \"00\", \"signature\": \"00\", \"extra\": 1}",
            "malformed_json",
        ),
        ("register", b"[1,2]", "malformed_json"),
        ("register", b"{\"r\": \"zz\"}", "malformed_hex"),
        ("register", b"{\"r\": \"700100\"}", "malformed_registration"),
        (
            "register",
            b"{\"r\": \"7003800101\"}",
            "unsupported_version",
        ),
        (
            "register",
            b"{\"r\": \"710100\", \"signature\": \"00\"}",
            "unsupported_version",
        ),
        ("messages", b"{\"message\": 5}", "malformed_json"),
        ("messages", b"{\"message\": \"abc\"}", "malformed_hex"),
        ("messages", b"{\"message\": \"7300\"}", "malformed_message"),
    ];
    for (route, body, code) in cases {
        let path = format!("/v1/services/{SERVICE}/{route}");
        let a = post_raw(&srv.url, &path, body.to_vec()).await;
        assert_error(&a, 400, code);
    }
    // Malformed requests are counted, not audited (tests/limits.rs).
    assert_eq!(decisions(srv.store.as_ref()), Vec::<String>::new());
    assert_eq!(
        srv.engine.malformed().snapshot().total(),
        cases.len() as u64
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_get_json_errors() {
    let w = World::new();
    let srv = w.start_server().await;
    let a = post_raw(&srv.url, "/v2/nothing", b"{}".to_vec()).await;
    assert_error(&a, 404, "not_found");
    let resp = client()
        .get(format!("{}{}", srv.url, register_path(SERVICE)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let v: serde_json::Value = resp.json_body().await;
    assert_eq!(v["error"], "method_not_allowed");
    let health: serde_json::Value = client()
        .get(format!("{}/healthz", srv.url))
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["public_key"].as_str().unwrap(),
        hex::encode_upper(srv.public.to_sec1())
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_too_slow_with_its_body_gets_408_and_with_its_headers_is_cut_off() {
    let mut w = World::new();
    w.request_timeout_ms = Some(300);
    let srv = w.start_server().await;
    let addr = srv.url.trim_start_matches("http://").to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            s,
            "POST /v1/services/demo/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"r\""
        )
        .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        // Read until the answer's JSON body is complete (bounded by the read timeout).
        loop {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.ends_with(b"}") {
                break;
            }
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"timeout\""), "{answer}");

    // Headers never finished: the server closes the connection (header read timeout).
    let addr = srv.url.trim_start_matches("http://").to_owned();
    let closed = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(s, "POST /v1/services/demo/register HTTP/1.1\r\nHost: x\r\n").unwrap();
        let mut buf = Vec::new();
        // Ok(0) (or a reset) once the server hangs up; WouldBlock/TimedOut would mean it never did.
        match s.read_to_end(&mut buf) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    })
    .await
    .unwrap();
    assert!(
        closed,
        "the server kept a connection with unfinished headers open"
    );
    srv.stop().await;
}

/// `reqwest` is built without its `json` feature; parse the body ourselves.
trait JsonBody {
    async fn json_body(self) -> serde_json::Value;
}

impl JsonBody for reqwest::Response {
    async fn json_body(self) -> serde_json::Value {
        let bytes = self.bytes().await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }
}
