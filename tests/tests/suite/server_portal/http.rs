//! HTTP hardening where the portal takes part: body limits at both, and the portal's own
//! answers for an unknown service and a server that is down.
use super::portal::start_portal;
use crate::common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_at_server_and_portal() {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let portal = start_portal(&[(SERVICE, &srv.url)]).await;
    let limit = server::config::DEFAULT_MAX_BODY_BYTES;
    for base in [&srv.url, &portal.url] {
        for path in [register_path(SERVICE), messages_path(SERVICE)] {
            // limit - 1 and limit: read, then refused as JSON (not a size problem).
            for len in [limit - 1, limit] {
                let a = post_raw(base, &path, vec![b' '; len]).await;
                assert_error(&a, 400, "malformed_json");
            }
            let a = post_raw(base, &path, vec![b' '; limit + 1]).await;
            assert_error(&a, 413, "body_too_large");
        }
    }
    portal.stop().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_answers_404_for_an_unknown_service_and_502_for_a_server_down() {
    // A port that was free a moment ago: nothing listens there.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let portal = start_portal(&[(SERVICE, &dead)]).await;
    let a = post_raw(&portal.url, &register_path("nosuch"), b"{}".to_vec()).await;
    assert_error(&a, 404, "unknown_service");
    let a = post_raw(&portal.url, &register_path(SERVICE), b"{}".to_vec()).await;
    assert_error(&a, 502, "upstream_unavailable");
    assert!(a.json["message"].as_str().unwrap().contains("`demo`"));
    portal.stop().await;
}
