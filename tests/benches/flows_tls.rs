//! What HTTPS costs: complete flows per second (registration + one `echo` call) from 16
//! fake-SE terminals through the portal to the server, over plain HTTP and over HTTPS on
//! both hops, in the same run and alternating. Keep-alive connections, as terminals and the
//! portal's pool reuse them; then a new terminal connection per request (a handshake per
//! request, as a terminal process started per command pays).
//! `cargo bench -p e2e-tests --bench flows_tls [-- SECONDS]`.
//!
//! The TLS pairs come from `server init --tls` (the binary), one for the server and one for
//! the portal. Everything listens on loopback ephemeral ports.
#[path = "../../server/tests/suite/common/mod.rs"]
mod common;
#[allow(dead_code)]
mod shared;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use secure_channel::mutual;
use server::store::{Durability, Store};
use server::{Engine, SqliteStore};

/// Terminals, as in `flows`.
const TERMINALS: usize = 16;

/// HTTP or HTTPS on both hops; keep-alive or a new terminal connection per request.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Mode {
    tls: bool,
    keep_alive: bool,
}

fn tls_config(pair: &shared::Pair) -> Arc<rustls::ServerConfig> {
    http_serve::tls::server_config(&http_serve::tls::TlsFiles {
        cert: pair.cert.clone(),
        key: pair.key.clone(),
    })
    .expect("TLS pair")
}

/// Serves `router` on an ephemeral loopback port, over TLS when `tls` is given.
async fn spawn(
    router: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = http_serve::serve_with_tls(listener, router, WAIT, tls, async move {
            let _ = rx.await;
        })
        .await;
    });
    (format!("{scheme}://{addr}"), tx, task)
}

/// flows/s of one mode.
async fn run(
    mode: Mode,
    durability: Durability,
    seconds: f64,
    server_pair: &shared::Pair,
    portal_pair: &shared::Pair,
) -> f64 {
    let mut w = World::new().grant_all(NOW + 86_400);
    w.sqlite.durability = durability;
    let store = Arc::new(SqliteStore::open_with_options(&w.db_path(), w.sqlite).expect("database"));
    let key = server::keyfile::load_key(w.dir.path()).expect("key");
    let clock = w.clock.clone();
    let engine = Engine::new(
        w.config(),
        key,
        store.clone() as Arc<dyn Store>,
        Arc::new(move || clock.load(Ordering::SeqCst)),
    )
    .expect("engine");
    let public = mutual::VerifyingKey::from_sec1(&engine.public_key()).expect("public key");
    let (server_url, server_stop, server_task) = spawn(
        server::router(Arc::new(engine)),
        mode.tls.then(|| tls_config(server_pair)),
    )
    .await;

    let mut file = portal::config::ConfigFile::default();
    if mode.tls {
        file.upstream_ca_file = Some(server_pair.cert.clone());
    }
    let mut config = portal::Config::from_parts(file, None, &[format!("{SERVICE}={server_url}")])
        .expect("portal config");
    config.listen = "127.0.0.1:0".parse().expect("addr");
    let relay = portal::Relay::new(config).expect("relay");
    let (portal_url, portal_stop, portal_task) = spawn(
        portal::router(relay),
        mode.tls.then(|| tls_config(portal_pair)),
    )
    .await;

    let flows = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for i in 0..TERMINALS {
        let iccid = format!("8900012345678901{i:04}");
        let se = FakeSe::with_subject(&w.ca, subject(EID_HEX, &iccid));
        tasks.push(tokio::spawn(shared::terminal(
            shared::terminal_client(&portal_pair.cert, mode.keep_alive),
            portal_url.clone(),
            se,
            public,
            (NOW, until),
            flows.clone(),
        )));
    }
    for t in tasks {
        t.await.expect("terminal");
    }
    let rate = flows.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let _ = portal_stop.send(());
    let _ = server_stop.send(());
    for t in [portal_task, server_task] {
        tokio::time::timeout(WAIT, t)
            .await
            .expect("stops in time")
            .expect("task");
    }
    rate
}

fn main() {
    let seconds: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let server_pair = shared::make_pair(&dir.path().join("server"));
    let portal_pair = shared::make_pair(&dir.path().join("portal"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (durability, keep_alive) in [
        (Durability::Normal, true),
        (Durability::Full, true),
        (Durability::Normal, false),
    ] {
        // Alternating, twice each, so drift (page cache, CPU frequency) hits both alike.
        let (mut plain, mut tls) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            for t in [false, true] {
                let mode = Mode { tls: t, keep_alive };
                let rate = rt.block_on(run(mode, durability, seconds, &server_pair, &portal_pair));
                println!(
                    "{durability:?} durability, {TERMINALS} terminals, {}, {}: {rate:.0} flows/s",
                    if t { "HTTPS" } else { "HTTP " },
                    if keep_alive {
                        "keep-alive"
                    } else {
                        "new terminal connection per request"
                    },
                );
                if t { &mut tls } else { &mut plain }.push(rate);
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (p, s) = (mean(&plain), mean(&tls));
        println!(
            "=> {durability:?} durability, {}: HTTP {p:.0} flows/s, HTTPS {s:.0} flows/s: HTTPS costs {:.1} %",
            if keep_alive { "keep-alive" } else { "new connection per request" },
            (1.0 - s / p.max(1.0)) * 100.0
        );
    }
}
