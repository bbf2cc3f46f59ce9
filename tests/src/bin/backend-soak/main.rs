//! `backend-soak`: the server and portal under load and faults: N concurrent terminals run seed-1 flows through the real `portal` and `server` processes while the server is SIGKILLed and restarted, hostile clients abuse both, and the database and every R are checked afterwards.
#![forbid(unsafe_code)]

mod backend;
mod hostile;
mod terminal;

use backend::{Backend, Limits, Topology};
use clap::Parser;
use server::store::Store;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use terminal::{SentR, Terminal};

/// The one service of the campaign.
pub const SERVICE: &str = "demo";

/// What the terminals, the hostile clients and the killer share.
#[derive(Default)]
pub struct Gate {
    pub flows_done: AtomicU64,
    /// Raised when the load is over.
    pub stop: AtomicBool,
    /// The server's incarnation (raised at each restart).
    pub generation: AtomicU64,
    /// True from the SIGKILL until the restarted server listens.
    pub down: AtomicBool,
}

#[derive(Parser)]
#[command(
    name = "backend-soak",
    about = "Load and faults against the real server and portal: concurrent terminals (in-process \
             cards) run seed-1 flows (registration + echo or provision) through the portal while \
             the server is SIGKILLed and restarted; hostile clients send oversized bodies, \
             malformed JSON and slow requests. Afterwards: every grant a terminal received is in \
             the server's database and its connection still works, and every R ever sent is \
             refused when replayed. Exits 1 on any violated invariant, 2 when it cannot run.",
    after_help = "Example: backend-soak --terminals 16 --flows 1000 --kills 1\n\
                  Build first: cargo build --release -p server -p portal -p e2e-tests --bins"
)]
struct Cli {
    /// Concurrent terminals, one card each.
    #[arg(long, default_value_t = 16)]
    terminals: usize,
    /// Flows per terminal.
    #[arg(long, default_value_t = 1000)]
    flows: u64,
    /// Server SIGKILLs, spread evenly over the run (each followed by a restart).
    #[arg(long, default_value_t = 1)]
    kills: u64,
    /// Replay each terminal's R right after its grant every N flows (0: never mid-run).
    #[arg(long, default_value_t = 8)]
    replay_every: u64,
    /// Request timeout of server and portal in ms (slow clients are cut off after it).
    #[arg(long, default_value_t = 1000)]
    request_timeout_ms: u64,
    /// Slow clients of each kind (body, headers) holding a connection at once, per target.
    #[arg(long, default_value_t = 8)]
    slow_clients: usize,
    /// Body limit of server and portal in bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    max_body_bytes: usize,
    /// The server binary (default: the one beside this program).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The portal binary (default: the one beside this program).
    #[arg(long)]
    portal_bin: Option<PathBuf>,
    /// Keep the server's data here (default: a temporary directory, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The PostgreSQL database every server instance uses (postgres://USER:PASSWORD@HOST:PORT/DB;
    /// it should be empty: the campaign counts its rows). Default: the embedded SQLite file.
    #[arg(
        long,
        value_name = "URL",
        env = "BACKEND_SOAK_DATABASE",
        hide_env_values = true
    )]
    database: Option<String>,
    /// Server instances behind the portal, sharing the signing key and the database (more
    /// than one needs --database). Each --kills SIGKILLs one instance in turn; with several
    /// (and --kills above 0), one more kill takes all of them down at once.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// SQLite group commit: `on` (the server's default) or `off` (one commit and fsync per
    /// write), to measure one against the other.
    #[arg(long, value_parser = ["on", "off"], default_value = "on")]
    group_commit: String,
}

fn main() {
    let cli = Cli::parse();
    let bin = |given: &Option<PathBuf>, name: &str| {
        let p = given
            .clone()
            .unwrap_or_else(|| e2e_tests::sibling_bin(name));
        if !p.is_file() {
            eprintln!(
                "backend-soak: no {name} binary at {}; build it (cargo build --release -p {name}) or pass --{name}-bin",
                p.display()
            );
            std::process::exit(2);
        }
        p
    };
    if cli.instances == 0 || (cli.instances > 1 && cli.database.is_none()) {
        eprintln!(
            "backend-soak: --instances {} needs --database postgres://... (several instances share one PostgreSQL database; the SQLite file serves one)",
            cli.instances
        );
        std::process::exit(2);
    }
    let server_bin = bin(&cli.server_bin, "server");
    let portal_bin = bin(&cli.portal_bin, "portal");
    let (dir, temporary) = match &cli.dir {
        Some(d) => (d.clone(), false),
        None => match e2e_tests::fresh_dir("backend-soak") {
            Ok(d) => (d, true),
            Err(e) => {
                eprintln!("backend-soak: {e}");
                std::process::exit(2);
            }
        },
    };
    let code = match campaign(&cli, &server_bin, &portal_bin, &dir) {
        Ok(violations) => i32::from(violations > 0),
        Err(e) => {
            eprintln!("backend-soak: cannot run: {e}");
            2
        }
    };
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::process::exit(code);
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// The database the instances shared, opened as the campaign's auditor.
fn open_store(backend: &Backend) -> Result<Box<dyn Store>, String> {
    match &backend.database {
        Some(url) => {
            let url = server::store::DatabaseUrl::parse(url).map_err(|e| e.to_string())?;
            let store = server::store::PgStore::open(&url, &server::store::PgOptions::default())
                .map_err(|e| e.to_string())?;
            Ok(Box::new(store))
        }
        None => {
            let db = backend.data.join(server::keyfile::DB_FILE);
            let store =
                server::SqliteStore::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
            Ok(Box::new(store))
        }
    }
}

/// The whole campaign; the number of violations.
fn campaign(cli: &Cli, server_bin: &Path, portal_bin: &Path, dir: &Path) -> Result<usize, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let limits = Limits {
        max_body_bytes: cli.max_body_bytes,
        request_timeout_ms: cli.request_timeout_ms,
        group_commit: cli.group_commit == "on",
    };
    let ca = card_emulator::ca::IssuerCa::generate("backend-soak CA").map_err(|e| e.to_string())?;
    let mut backend = Backend::start(
        server_bin,
        portal_bin,
        dir,
        &ca.public_hex(),
        SERVICE,
        limits,
        Topology {
            database: cli.database.as_deref(),
            instances: cli.instances,
            tls: None,
        },
    )?;
    // One instance at a time, then (with several) all of them at once.
    let mut schedule: Vec<Vec<usize>> = (0..cli.kills as usize)
        .map(|k| vec![k % backend.instances()])
        .collect();
    if backend.instances() > 1 && cli.kills > 0 {
        schedule.push((0..backend.instances()).collect());
    }
    println!(
        "backend-soak: {} terminals x {} flows, {} SIGKILL event(s) over {} server instance(s) on {}; servers {}, portal {}",
        cli.terminals,
        cli.flows,
        schedule.len(),
        backend.instances(),
        if backend.database.is_some() { "PostgreSQL" } else { "SQLite" },
        backend.server_urls.join(" "),
        backend.portal_url
    );
    let gate = Arc::new(Gate::default());
    let mut terminals = Vec::new();
    for n in 0..cli.terminals {
        let card = terminal::card(&ca, &backend.server_key, n)?;
        terminals.push(Terminal::new(n, card, &backend.portal_url, gate.clone()));
    }
    let mut violations: Vec<String> = Vec::new();

    // -- load, with the kills and the hostile clients --------------------------------------
    let total = cli.terminals as u64 * cli.flows;
    let started = Instant::now();
    let hostile_targets = vec![
        (
            "server",
            backend.server_urls[0]
                .trim_start_matches("http://")
                .to_string(),
        ),
        (
            "portal",
            backend.portal_url.trim_start_matches("http://").to_string(),
        ),
    ];
    let hostile = {
        let gate = gate.clone();
        let slow = cli.slow_clients;
        std::thread::spawn(move || hostile::run(hostile_targets, limits, slow, gate))
    };
    let mut handles = Vec::new();
    for mut t in terminals {
        let flows = cli.flows;
        let replay_every = cli.replay_every;
        handles.push(std::thread::spawn(move || {
            for _ in 0..flows {
                if !t.flow(replay_every) {
                    break;
                }
            }
            t
        }));
    }
    let mut downtimes = Vec::new();
    let events = schedule.len() as u64;
    for (k, which) in (1..).zip(&schedule) {
        let at = total * k / (events + 1);
        while gate.flows_done.load(Ordering::SeqCst) < at
            && !handles.iter().all(|h| h.is_finished())
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        gate.down.store(true, Ordering::SeqCst);
        let down = backend.kill_and_restart(which, SERVICE)?;
        gate.generation.fetch_add(1, Ordering::SeqCst);
        gate.down.store(false, Ordering::SeqCst);
        let whom = if which.len() == backend.instances() && which.len() > 1 {
            "every instance".to_string()
        } else {
            format!("instance {}", which[0])
        };
        println!(
            "kill {k}: SIGKILL of {whom} after {} flows, listening again after {:.0} ms",
            gate.flows_done.load(Ordering::SeqCst),
            down.as_secs_f64() * 1000.0
        );
        downtimes.push(down);
    }
    let mut terminals: Vec<Terminal> = Vec::new();
    for h in handles {
        terminals.push(h.join().map_err(|_| "a terminal thread panicked")?);
    }
    let load_time = started.elapsed();
    gate.stop.store(true, Ordering::SeqCst);
    let hostile = hostile.join().map_err(|_| "the hostile thread panicked")?;

    // -- the database after a final SIGKILL -------------------------------------------------
    backend.kill_servers();
    // A new registration of an SE replaces its previous connection (and deletes its keys),
    // so every grant received must be in the `registered` audit (committed), and each
    // terminal's last connection in the connections table.
    let (db_connections, db_registered, missing) = {
        let store = open_store(&backend)?;
        let counts = store.counts().map_err(|e| e.to_string())?;
        let registered: std::collections::HashSet<String> = store
            .audit_log(100_000_000)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|e| e.decision == server::store::AuditDecision::Registered)
            .filter_map(|e| e.cid)
            .collect();
        let mut missing = 0u64;
        for t in &terminals {
            for cid in &t.report.granted {
                if !registered.contains(&apdu_specs::hexfmt::upper(cid)) {
                    missing += 1;
                }
            }
            if let Some(last) = t.report.granted.last() {
                if store.connection(last).map_err(|e| e.to_string())?.is_none() {
                    missing += 1;
                }
            }
        }
        (counts.connections, registered.len() as u64, missing)
    };
    if missing > 0 {
        violations.push(format!(
            "{missing} grants a terminal received are not in the database (committed grants lost)"
        ));
    }
    backend.restart_servers(SERVICE)?;

    // -- every terminal's last connection still works ---------------------------------------
    let mut usable = 0u64;
    let mut checked = 0u64;
    for t in &mut terminals {
        if t.report.granted.is_empty() || !t.report.violations.is_empty() {
            continue;
        }
        checked += 1;
        match t.call("echo", b"after the final SIGKILL") {
            Ok(_) => usable += 1,
            Err(e) => violations.push(format!(
                "terminal {}: its connection does not work after the final kill: {e}",
                t.id
            )),
        }
    }

    // -- every R ever sent, replayed ---------------------------------------------------------
    let replay_started = Instant::now();
    let all: Vec<SentR> = terminals
        .iter()
        .flat_map(|t| t.report.sent.iter().cloned())
        .collect();
    let replayed = all.len() as u64;
    let chunk = all.len().div_ceil(cli.terminals.max(1)).max(1);
    let replay_failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = all
            .chunks(chunk)
            .zip(terminals.iter_mut())
            .map(|(rs, t)| {
                s.spawn(move || {
                    rs.iter()
                        .filter_map(|r| t.replay(r, "final").err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["replay thread panicked".into()])
            })
            .collect()
    });
    let replay_time = replay_started.elapsed();
    let second_grants = replay_failures
        .iter()
        .filter(|f| f.contains("second time"))
        .count();
    violations.extend(replay_failures);
    backend.stop();

    // -- the report ---------------------------------------------------------------------------
    let sum = |f: &dyn Fn(&terminal::Report) -> u64| -> u64 {
        terminals.iter().map(|t| f(&t.report)).sum()
    };
    let flows = sum(&|r| r.flows);
    let granted = sum(&|r| r.granted.len() as u64);
    let lost_reg = sum(&|r| r.lost_register_answers);
    let recovered = sum(&|r| r.recovered_messages);
    let mut lat: Vec<u64> = terminals
        .iter()
        .flat_map(|t| t.report.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    for t in &terminals {
        violations.extend(t.report.violations.iter().cloned());
    }
    if flows != total {
        violations.push(format!("{flows} flows completed of {total}"));
    }
    // Grants the server committed = grants received + registration answers lost in kills;
    // each SE keeps one connection (the last), so at most one per terminal remains.
    if db_registered != granted + lost_reg || db_connections > terminals.len() as u64 {
        violations.push(format!(
            "the database holds {db_connections} connections and {db_registered} `registered` audit entries; \
             the terminals ({}) received {granted} grants and lost {lost_reg} answers",
            terminals.len()
        ));
    }
    let hostile_tallies = [
        ("oversized -> 413", &hostile.oversized),
        ("malformed -> 400", &hostile.malformed),
        ("slow body -> 408", &hostile.slow_body),
        ("slow headers -> cut", &hostile.slow_headers),
    ];
    for (_, t) in &hostile_tallies {
        violations.extend(t.failures.iter().cloned());
    }
    let secs = load_time.as_secs_f64();
    println!(
        "load: {flows} flows in {secs:.1} s = {:.0} flows/s; flow latency p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms",
        flows as f64 / secs.max(1e-9),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
    );
    let downs: Vec<String> = downtimes
        .iter()
        .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
        .collect();
    println!(
        "kills: {} (down {}), requests retried {}; registration answers lost in a kill {lost_reg}, \
         messages answered after an outage {recovered}",
        downtimes.len(),
        downs.join(", "),
        sum(&|r| r.retries),
    );
    println!(
        "grants: received {granted} ({} provision), committed {db_connections} connections + {db_registered} audited, \
         missing after the final SIGKILL {missing}; last connections usable afterwards {usable} of {checked}",
        sum(&|r| r.provisions),
    );
    println!(
        "replays: mid-run {} refused, final {replayed} R replayed in {:.1} s, second grants {second_grants}",
        sum(&|r| r.midrun_replays),
        replay_time.as_secs_f64()
    );
    let h: Vec<String> = hostile_tallies
        .iter()
        .map(|(name, t)| {
            format!(
                "{name} {}/{} ({} during outages)",
                t.expected,
                t.sent - t.outage,
                t.outage
            )
        })
        .collect();
    println!("hostile: {}", h.join(", "));
    for v in violations.iter().take(20) {
        println!("  violation: {v}");
    }
    println!("violations {}", violations.len());
    Ok(violations.len())
}
