//! Complete seed-1 flows per second with the card's authentication applet in-process:
//! GET REGISTRATION (APDUs) -> portal -> server -> VERIFY SERVER -> SECURE SEND -> portal ->
//! server `echo` -> SECURE RECEIVE, with 1 and 16 concurrent terminals (one card each), and
//! the mean latency of each step. In the same run, OpenSSL mutual-TLS full handshakes per
//! second (ECDHE-ECDSA P-256, client certificate required) with 1 and 16 concurrent clients
//! as the reference. `cargo bench -p e2e-tests --bench card_flows [-- SECONDS]`.
#[path = "../../server/tests/suite/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../tests/suite/server_portal/portal.rs"]
mod portal;
#[allow(dead_code)]
mod shared;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apdu_specs::auth::{AuthCommand, Call, GetRegistration, SealedAnswer};
use apdu_specs::Status;
use card_emulator::ca::IssuerCa;
use card_emulator::state::TrustAnchor;
use card_emulator::{profile, Card, VirtualCard};
use common::*;
use portal::start_portal;
use server::store::Durability;

fn now() -> u64 {
    NOW
}

/// One APDU exchange, following 61xx: (data, status).
fn exchange(card: &mut Card, apdu: &[u8]) -> (Vec<u8>, Status) {
    let mut data = Vec::new();
    let mut r = card.transmit(apdu);
    loop {
        let (d, sw) = r.split_at(r.len() - 2);
        data.extend_from_slice(d);
        match Status::from_u16(u16::from_be_bytes([sw[0], sw[1]])) {
            Status::BytesAvailable(n) => r = card.transmit(&[0x00, 0xC0, 0x00, 0x00, n]),
            s => return (data, s),
        }
    }
}

fn send(card: &mut Card, cmd: AuthCommand) -> Vec<u8> {
    let (data, sw) = exchange(card, &cmd.to_command().to_bytes().expect("apdu"));
    assert_eq!(sw, Status::Success, "{cmd:?}");
    data
}

/// A personalized card certified by the world's CA, trusting `server` for the service.
/// The trust anchor is put into the state directly: this is a benchmark fixture (the
/// product installs it in admin mode over SCP03, see card-emulator/tests/mutual_auth.rs).
fn card(w: &World, server: &secure_channel::mutual::VerifyingKey, n: usize) -> Card {
    let mut state = profile::build(profile::DEFAULT_PROFILE).expect("profile");
    // One card per terminal, each with its own EID (registration counters are per container).
    state.eid[14..].copy_from_slice(&(n as u16).to_be_bytes());
    IssuerCa::from_key("VSE test CA", w.ca.clone())
        .personalize(&mut state, NOW)
        .expect("personalize");
    state.containers_mut()[0].trust_anchors.push(TrustAnchor {
        service: SERVICE.into(),
        public_key: server.to_sec1().to_vec(),
    });
    let mut card = Card::in_memory(state);
    card.set_clock(now);
    card.power_on();
    assert!(card
        .transmit(&hex::decode("00A4040C07F04D4155544801").expect("hex"))
        .ends_with(&[0x90, 0x00]));
    assert_eq!(
        card.transmit(&hex::decode("002000810431323334").expect("hex")),
        [0x90, 0x00]
    );
    card
}

#[derive(Default)]
struct Steps {
    get_registration: AtomicU64,
    register_http: AtomicU64,
    verify_server: AtomicU64,
    secure_send: AtomicU64,
    echo_http: AtomicU64,
    secure_receive: AtomicU64,
    flows: AtomicU64,
}

fn add(a: &AtomicU64, since: Instant) -> Instant {
    let now = Instant::now();
    a.fetch_add((now - since).as_micros() as u64, Ordering::Relaxed);
    now
}

async fn terminal(base: String, mut card: Card, until: Instant, steps: Arc<Steps>) {
    let http = client();
    while Instant::now() < until {
        let t = Instant::now();
        let r = send(
            &mut card,
            AuthCommand::GetRegistration(GetRegistration {
                service_id: SERVICE.into(),
            }),
        );
        let body = serde_json::json!({ "r": hex::encode(&r) });
        let t = add(&steps.get_registration, t);
        let a = post_via(
            &http,
            &base,
            &register_path(SERVICE),
            serde_json::to_vec(&body).expect("json"),
        )
        .await;
        assert_eq!(a.status, 200, "{:?}", a.json);
        let t = add(&steps.register_http, t);
        let answer: SealedAnswer = parse_answer(&a.json);
        send(&mut card, AuthCommand::VerifyServer(answer));
        let t = add(&steps.verify_server, t);
        let up = send(
            &mut card,
            AuthCommand::SecureSend(Call {
                name: "echo".into(),
                data: b"ping".to_vec(),
            }),
        );
        let up = apdu_specs::auth::ProtectedMessage::parse(&up).expect("up");
        let t = add(&steps.secure_send, t);
        let a = post_via(
            &http,
            &base,
            &messages_path(SERVICE),
            serde_json::to_vec(&message_body(&up)).expect("json"),
        )
        .await;
        assert_eq!(a.status, 200, "{:?}", a.json);
        let t = add(&steps.echo_http, t);
        let result = send(
            &mut card,
            AuthCommand::SecureReceive(parse_message(&a.json)),
        );
        assert_eq!(
            apdu_specs::auth::CallResult::parse(&result)
                .expect("result")
                .data,
            b"ping"
        );
        add(&steps.secure_receive, t);
        steps.flows.fetch_add(1, Ordering::Relaxed);
    }
}

async fn run(terminals: usize, seconds: f64, durability: Durability) -> f64 {
    let mut w = World::new().grant_all(NOW + 86_400);
    w.sqlite.durability = durability;
    let srv = w.start_server().await;
    let portal = start_portal(&[(SERVICE, &srv.url)]).await;
    let steps = Arc::new(Steps::default());
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..terminals)
        .map(|n| {
            tokio::spawn(terminal(
                portal.url.clone(),
                card(&w, &srv.public, n),
                until,
                steps.clone(),
            ))
        })
        .collect();
    for t in tasks {
        t.await.expect("terminal");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let flows = steps.flows.load(Ordering::Relaxed);
    let per = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / flows.max(1) as f64 / 1000.0;
    let rate = flows as f64 / elapsed;
    println!(
        "card in-process, SQLite {durability:?}, {terminals:>2} terminal(s): {flows} flows in {elapsed:.1} s = {rate:.0} flows/s; mean ms per flow: GET REGISTRATION {:.2}, register via portal {:.2}, VERIFY SERVER {:.2}, SECURE SEND {:.2}, echo via portal {:.2}, SECURE RECEIVE {:.2}",
        per(&steps.get_registration),
        per(&steps.register_http),
        per(&steps.verify_server),
        per(&steps.secure_send),
        per(&steps.echo_http),
        per(&steps.secure_receive),
    );
    portal.stop().await;
    srv.stop().await;
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
    // (durability, terminals) -> flows/s; full = fsync per commit (survives power loss),
    // normal = WAL without fsync per commit (survives a process kill, as the tests require).
    let ours: Vec<(Durability, usize, f64)> = rt.block_on(async {
        let mut v = Vec::new();
        for durability in [Durability::Full, Durability::Normal] {
            for terminals in [1, 16] {
                v.push((
                    durability,
                    terminals,
                    run(terminals, seconds, durability).await,
                ));
            }
        }
        v
    });
    for clients in [1usize, 16] {
        match shared::mtls(clients, seconds.ceil() as u64) {
            Some(rate) => {
                let ratios: Vec<String> = ours
                    .iter()
                    .filter(|(_, t, _)| *t == clients)
                    .map(|(d, _, r)| format!("{d:?} {:.2}", r / rate.max(0.001)))
                    .collect();
                println!(
                    "OpenSSL mTLS (TLS 1.3, ECDHE-ECDSA P-256, client certificate), {clients:>2} client(s): {rate:.0} full handshakes/s; ours / mTLS: {}",
                    ratios.join(", ")
                )
            }
            None => println!("OpenSSL mTLS reference skipped: openssl not installed or failed"),
        }
    }
}
