//! The deployment's figures in one run (issue 14): complete flows per second (registration +
//! one `echo` call) from 16 fake-SE terminals through the real `portal` process to real
//! `server` processes: SQLite with group commit off, then on; PostgreSQL with 1, then 2
//! instances sharing one database and one key; each over plain HTTP and over HTTPS on both
//! hops; with every instance's store commit latency (p50, p95, p99, max, writes per
//! transaction, from its `GET /metrics`). Then OpenSSL mutual-TLS full handshakes per
//! second with 16 clients, the reference. Rounds alternate the configurations, so drift
//! (page cache, CPU frequency, a neighbour) hits them alike.
//!
//! `cargo bench -p e2e-tests --bench deployment [-- SECONDS [ROUNDS [ONLY]]]` (default 5 s,
//! 2 rounds; ONLY runs the stores whose name contains it, such as `PostgreSQL`). PostgreSQL runs in a throw-away cluster (`apt-get install postgresql`); without
//! it the PostgreSQL lines say SKIPPED. The terminals, the portal, the servers and
//! PostgreSQL share this machine's cores: on a small machine every figure is bounded by CPU.
#[allow(dead_code)]
#[path = "../src/bin/backend-soak/backend.rs"]
mod backend;
#[path = "../../server/tests/suite/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../../server/tests/suite/pg.rs"]
mod pg;
#[allow(dead_code)]
mod shared;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend::{Backend, Limits, Tls, Topology};
use common::*;
use secure_channel::mutual::{SigningKey, VerifyingKey};

const TERMINALS: usize = 16;

/// The store behind the portal.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Store {
    Sqlite { group_commit: bool },
    Postgres { instances: usize },
}

impl Store {
    const ALL: [Store; 4] = [
        Store::Sqlite {
            group_commit: false,
        },
        Store::Sqlite { group_commit: true },
        Store::Postgres { instances: 1 },
        Store::Postgres { instances: 2 },
    ];

    fn name(self) -> String {
        match self {
            Store::Sqlite { group_commit } => format!(
                "SQLite, group commit {}",
                if group_commit { "on " } else { "off" }
            ),
            Store::Postgres { instances } => format!(
                "PostgreSQL, {instances} instance{}",
                if instances == 1 { " " } else { "s" }
            ),
        }
    }
}

/// One instance's `store_*` series.
#[derive(Debug)]
struct Latency {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    writes: f64,
    transactions: f64,
}

impl Latency {
    fn parse(metrics: &str) -> Latency {
        let value = |name, labels: &[(&str, &str)]| sample(metrics, name, labels).unwrap_or(0.0);
        let quantile = |q| value("store_commit_latency_seconds", &[("quantile", q)]);
        Latency {
            p50: quantile("0.5"),
            p95: quantile("0.95"),
            p99: quantile("0.99"),
            max: value("store_commit_latency_max_seconds", &[]),
            writes: value("store_writes_total", &[]),
            transactions: value("store_transactions_total", &[]),
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commit ms p50 {:.2} p95 {:.2} p99 {:.2} max {:.2}, {:.1} writes/transaction",
            self.p50 * 1e3,
            self.p95 * 1e3,
            self.p99 * 1e3,
            self.max * 1e3,
            self.writes / self.transactions.max(1.0)
        )
    }
}

/// What every run shares.
struct Bench {
    server_bin: std::path::PathBuf,
    portal_bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    ca: SigningKey,
    tls: Tls,
    pg: Option<Arc<pg::PgCluster>>,
    seconds: f64,
    runs: AtomicU64,
}

impl Bench {
    /// flows/s of one configuration, and each instance's commit latency.
    async fn run(&self, store: Store, https: bool) -> Option<(f64, Vec<Latency>)> {
        let (database, instances, group_commit) = match store {
            Store::Sqlite { group_commit } => (None, 1, group_commit),
            Store::Postgres { instances } => {
                (Some(self.pg.as_ref()?.new_database()), instances, true)
            }
        };
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.path().join(format!("run{n}"));
        std::fs::create_dir_all(&dir).expect("run directory");
        let ca_hex = hex::encode_upper(self.ca.verifying_key().to_sec1());
        let limits = Limits {
            max_body_bytes: 64 * 1024,
            request_timeout_ms: 20_000,
            group_commit,
        };
        let topology = Topology {
            database: database.as_deref(),
            instances,
            tls: https.then_some(&self.tls),
        };
        let mut backend = Backend::start(
            &self.server_bin,
            &self.portal_bin,
            &dir,
            &ca_hex,
            SERVICE,
            limits,
            topology,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", store.name()));
        let public = VerifyingKey::from_sec1(&backend.server_key).expect("server key");
        let client = |cert: &Path| {
            if https {
                shared::terminal_client(cert, true)
            } else {
                client()
            }
        };
        let flows = Arc::new(AtomicU64::new(0));
        let now = card_emulator::system_clock();
        let started = Instant::now();
        let until = started + Duration::from_secs_f64(self.seconds);
        let tasks: Vec<_> = (0..TERMINALS)
            .map(|i| {
                // One container per terminal: registration counters are per container.
                let iccid = format!("8900012345678901{i:04}");
                let se = FakeSe::with_subject(&self.ca, subject(EID_HEX, &iccid));
                tokio::spawn(shared::terminal(
                    client(&self.tls.portal_cert),
                    backend.portal_url.clone(),
                    se,
                    public,
                    (now, until),
                    flows.clone(),
                ))
            })
            .collect();
        for t in tasks {
            t.await.expect("terminal");
        }
        let rate = flows.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
        let metrics = client(&self.tls.server_cert);
        let mut latencies = Vec::new();
        for url in &backend.server_urls {
            let text = metrics
                .get(format!("{url}/metrics"))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .expect("GET /metrics")
                .text()
                .await
                .expect("metrics text");
            latencies.push(Latency::parse(&text));
        }
        backend.stop();
        Some((rate, latencies))
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut numbers = args.iter().filter_map(|a| a.parse::<f64>().ok());
    let seconds = numbers.next().unwrap_or(5.0);
    let rounds = numbers.next().unwrap_or(2.0).max(1.0) as usize;
    let only = args.iter().find(|a| a.parse::<f64>().is_err());
    let dir = tempfile::tempdir().expect("tempdir");
    let server_pair = shared::make_pair(&dir.path().join("server-tls"));
    let portal_pair = shared::make_pair(&dir.path().join("portal-tls"));
    let bench = Bench {
        server_bin: e2e_tests::workspace_bin("server").expect("server binary"),
        portal_bin: e2e_tests::workspace_bin("portal").expect("portal binary"),
        ca: SigningKey::generate().expect("CA key"),
        tls: Tls {
            server_cert: server_pair.cert,
            server_key: server_pair.key,
            portal_cert: portal_pair.cert,
            portal_key: portal_pair.key,
        },
        pg: pg::cluster("deployment bench (PostgreSQL lines)"),
        dir,
        seconds,
        runs: AtomicU64::new(0),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // (store, https) -> flows/s of each round.
    let mut rates: Vec<((Store, bool), Vec<f64>)> = Vec::new();
    for round in 1..=rounds {
        for https in [false, true] {
            for store in Store::ALL {
                if only.is_some_and(|o| !store.name().contains(o.as_str())) {
                    continue;
                }
                let Some((rate, latencies)) = rt.block_on(bench.run(store, https)) else {
                    println!("{}: SKIPPED, PostgreSQL is not installed", store.name());
                    continue;
                };
                let shown: Vec<String> = latencies.iter().map(ToString::to_string).collect();
                println!(
                    "round {round}, {}, {}, {TERMINALS} terminals: {rate:.0} flows/s; {}",
                    store.name(),
                    if https { "HTTPS" } else { "HTTP " },
                    shown.join("; ")
                );
                match rates.iter_mut().find(|(k, _)| *k == (store, https)) {
                    Some((_, v)) => v.push(rate),
                    None => rates.push(((store, https), vec![rate])),
                }
            }
        }
    }
    let mean = |store: Store, https: bool| {
        rates
            .iter()
            .find(|(k, _)| *k == (store, https))
            .map(|(_, v)| v.iter().sum::<f64>() / v.len() as f64)
    };
    println!("\n=> {TERMINALS} terminals, flows/s, mean of {rounds} round(s):");
    println!(
        "   {:<28} {:>7} {:>7} {:>12}",
        "", "HTTP", "HTTPS", "HTTPS costs"
    );
    for store in Store::ALL {
        if let (Some(plain), Some(tls)) = (mean(store, false), mean(store, true)) {
            println!(
                "   {:<28} {plain:>7.0} {tls:>7.0} {:>11.1} %",
                store.name(),
                (1.0 - tls / plain.max(1.0)) * 100.0
            );
        }
    }
    let off = Store::Sqlite {
        group_commit: false,
    };
    let on = Store::Sqlite { group_commit: true };
    for https in [false, true] {
        let scheme = if https { "HTTPS" } else { "HTTP " };
        if let (Some(off), Some(on)) = (mean(off, https), mean(on, https)) {
            println!(
                "=> {scheme}: SQLite group commit on / off: {:.2}x (target 2x)",
                on / off.max(1.0)
            );
            if let Some(pg2) = mean(Store::Postgres { instances: 2 }, https) {
                println!(
                    "=> {scheme}: 2 PostgreSQL instances / SQLite with group commit: {:.2} (target >= 1)",
                    pg2 / on.max(1.0)
                );
            }
        }
    }
    match shared::mtls(TERMINALS, seconds.ceil() as u64) {
        Some(rate) => println!(
            "=> OpenSSL mutual TLS (TLS 1.3, ECDHE-ECDSA P-256, client certificate), {TERMINALS} clients: {rate:.0} full handshakes/s (the reference)"
        ),
        None => println!("=> OpenSSL mutual-TLS reference SKIPPED: openssl is not installed or failed"),
    }
}
