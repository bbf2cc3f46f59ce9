//! What unauthenticated or abusive traffic costs: malformed bodies are counted in memory,
//! never written to the database; registrations over the per-SE rate limit get 429, charged
//! only to the SE whose signature verified.
use crate::common;

use common::*;
use secure_channel::mutual::SigningKey;
use server::malformed::MalformedKind;
use server::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_counted_and_do_not_grow_the_audit_table() {
    let w = World::new().grant_all(NOW + 86_400);
    let srv = w.start_server().await;
    let bodies: &[(&str, &[u8])] = &[
        ("register", b"{not json"),
        ("register", b""),
        ("register", b"[1,2]"),
        ("register", b"{\"r\": \"zz\"}"),
        ("register", b"{\"r\": \"710100\"}"),
        ("register", b"{\"r\": \"00\"}"),
        ("messages", b"{\"message\": 5}"),
        ("messages", b"{\"message\": \"abc\"}"),
        ("messages", b"{\"message\": \"7300\"}"),
    ];
    let mut expected = std::collections::BTreeMap::<&str, u64>::new();
    for round in 0..3 {
        for (route, body) in bodies {
            let path = format!("/v1/services/{SERVICE}/{route}");
            let a = post_raw(&srv.url, &path, body.to_vec()).await;
            assert_eq!(a.status, 400, "{route} {:?}: {:?}", body, a.json);
            let code = a.json["error"].as_str().expect("an error code");
            if round == 0 {
                *expected.entry(MalformedKind::of(code).name()).or_default() += 1;
            }
        }
    }
    assert_eq!(
        srv.store.counts().unwrap().audit,
        0,
        "{:?}",
        decisions(srv.store.as_ref())
    );
    let counts = srv.engine.malformed().snapshot();
    assert_eq!(counts.total(), 3 * bodies.len() as u64);
    for kind in MalformedKind::ALL {
        let want = 3 * expected.get(kind.name()).copied().unwrap_or(0);
        assert_eq!(counts.get(kind), want, "{}", kind.name());
    }
    assert!(counts.get(MalformedKind::Json) >= 9 && counts.get(MalformedKind::Hex) >= 6);

    // A request that parses but fails a check is still audited.
    let mut rogue = FakeSe::new(&SigningKey::generate().unwrap());
    let a = post(
        &srv.url,
        &register_path(SERVICE),
        &register_body(&rogue.registration(SERVICE, &srv.public)),
    )
    .await;
    assert_error(&a, 401, "bad_certificate");
    assert_eq!(decisions(srv.store.as_ref()), ["bad_certificate"]);
    assert_eq!(srv.engine.malformed().snapshot().total(), counts.total());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_over_the_per_se_limit_get_429_and_other_ses_do_not() {
    let mut w = World::new().grant_all(NOW + 86_400);
    w.registrations_per_minute_per_se = Some(3);
    let srv = w.start_server().await;
    let path = register_path(SERVICE);
    let mut se = FakeSe::new(&w.ca);
    // Up to the limit: granted.
    let first = se.registration(SERVICE, &srv.public);
    assert_eq!(
        post(&srv.url, &path, &register_body(&first)).await.status,
        200
    );
    register_ok(&srv.url, &mut se, &srv.public).await;
    register_ok(&srv.url, &mut se, &srv.public).await;
    // limit + 1: 429 with the usual error shape, and nothing committed.
    let nonces = srv.store.counts().unwrap().nonces;
    let over = se.registration(SERVICE, &srv.public);
    let a = post(&srv.url, &path, &register_body(&over)).await;
    assert_error(&a, 429, "rate_limited");
    assert!(
        a.json["message"].as_str().unwrap().contains("20 s"),
        "{:?}",
        a.json
    );
    assert_eq!(srv.store.counts().unwrap().nonces, nonces);
    let a = post(&srv.url, &path, &register_body(&over)).await;
    assert_error(&a, 429, "rate_limited");

    // Another SE (another container of the same EID) has its own budget.
    let mut other = FakeSe::with_subject(&w.ca, subject(EID_HEX, "89000123456789012358"));
    register_ok(&srv.url, &mut other, &srv.public).await;
    // A forged R naming the limited SE (certificate from another CA) fails its check, 401,
    // and a replay of its old R is refused as a replay: neither is a rate-limit answer.
    let mut forger = FakeSe::with_subject(
        &SigningKey::generate().unwrap(),
        subject(EID_HEX, ICCID_DIGITS),
    );
    forger.counter = 1000;
    let a = post(
        &srv.url,
        &path,
        &register_body(&forger.registration(SERVICE, &srv.public)),
    )
    .await;
    assert_error(&a, 401, "bad_certificate");
    let a = post(&srv.url, &path, &register_body(&first)).await;
    assert_error(&a, 409, "replay");

    // 20 s later (60 s / 3) one more passes: the R refused with 429 is still good.
    w.set_now(NOW + 20);
    assert_eq!(
        post(&srv.url, &path, &register_body(&over)).await.status,
        200
    );
    let a = post(
        &srv.url,
        &path,
        &register_body(&se.registration(SERVICE, &srv.public)),
    )
    .await;
    assert_error(&a, 429, "rate_limited");
    // One audit entry per refusal episode, not per refused request.
    let d = decisions(srv.store.as_ref());
    assert_eq!(
        d.iter().filter(|d| *d == "rate_limited").count(),
        2,
        "{d:?}"
    );
    assert_eq!(srv.engine.registration_limiter().refused(), 3);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_of_a_limited_se_s_requests_do_not_spend_its_budget() {
    let mut w = World::new().grant_all(NOW + 86_400);
    w.registrations_per_minute_per_se = Some(2);
    let srv = w.start_server().await;
    let path = register_path(SERVICE);
    let mut se = FakeSe::new(&w.ca);
    let first = se.registration(SERVICE, &srv.public);
    assert_eq!(
        post(&srv.url, &path, &register_body(&first)).await.status,
        200
    );
    // Whoever saw R (the portal) sends it again and again.
    for _ in 0..10 {
        let a = post(&srv.url, &path, &register_body(&first)).await;
        assert_error(&a, 409, "replay");
    }
    // The SE's own budget is intact: its second registration of the minute passes.
    register_ok(&srv.url, &mut se, &srv.public).await;
    srv.stop().await;
}
