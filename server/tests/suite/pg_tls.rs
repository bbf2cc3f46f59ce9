//! TLS to PostgreSQL: a throw-away cluster with `ssl = on` and the pair of `server init
//! --tls`, accepting TCP logins over TLS only; the store verifies its certificate against
//! `database_ca_file` (its host name included), refuses a wrong CA at start, and
//! `sslmode=require` against a cluster without TLS stops the start with the fix named.
use crate::pg;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use server::store::{AuditDecision, AuditEntry, DatabaseUrl, PgOptions, PgStore, Store};

const BIN: &str = env!("CARGO_BIN_EXE_server");

fn server(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("SERVER_DATABASE")
        .output()
        .expect("run server")
}

fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `server init --data DIR --tls`: a data directory and its self-signed pair for
/// localhost, 127.0.0.1 and ::1; the certificate's path.
fn init_with_tls(dir: &Path) -> PathBuf {
    let out = server(&["init", "--data", dir.to_str().unwrap(), "--tls"]);
    assert!(out.status.success(), "{}", printed(&out));
    dir.join("tls-cert.pem")
}

fn issuer_ca() -> String {
    let ca = secure_channel::mutual::SigningKey::generate().unwrap();
    hex::encode(ca.verifying_key().to_sec1())
}

fn open(url: &str, ca: Option<&Path>) -> Result<PgStore, String> {
    let mut u = DatabaseUrl::parse(url).map_err(|e| e.to_string())?;
    if let Some(ca) = ca {
        u = u.with_ca_file(ca).map_err(|e| e.to_string())?;
    }
    PgStore::open(&u, &PgOptions::default()).map_err(|e| e.to_string())
}

/// `server run` on port 0 with the database settings in `args`: `Ok` once it printed its
/// address (then it is killed), else everything it printed when it stopped.
fn run_server(data: &Path, args: &[&str]) -> Result<(), String> {
    let ca = issuer_ca();
    let mut child = Command::new(BIN)
        .args(["run", "--data"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0", "--issuer-ca", &ca])
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("SERVER_DATABASE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn server run");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(crate::common::WAIT).unwrap_or_default();
    if line.starts_with("server listening on ") {
        let _ = child.kill();
        let _ = child.wait();
        return Ok(());
    }
    let out = child.wait_with_output().expect("server run ends");
    Err(format!("{line}{}", printed(&out)))
}

#[test]
fn the_store_speaks_tls_verified_by_the_ca_file_and_a_wrong_ca_or_host_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cert = init_with_tls(&dir.path().join("pg-pair"));
    let pair = dir.path().join("pg-pair");
    let Some(cluster) = pg::tls_cluster(
        "the_store_speaks_tls_verified_by_the_ca_file",
        &cert,
        &pair.join("tls-key.pem"),
    ) else {
        return;
    };
    let db = cluster.new_database_name();
    let password = cluster.password.clone();
    let url = |host: &str, query: &str| {
        format!(
            "postgres://{}:{password}@{host}:{}/{db}{query}",
            pg::ROLE,
            cluster.port
        )
    };

    // The right CA: sslmode=require, verify-full, or none (prefer, TLS as the CA is set).
    for query in ["?sslmode=require", "?sslmode=verify-full", ""] {
        let store =
            open(&url("127.0.0.1", query), Some(&cert)).unwrap_or_else(|e| panic!("{query}: {e}"));
        store
            .audit(&AuditEntry {
                time: 1,
                subject: "s".into(),
                service: "demo".into(),
                decision: AuditDecision::Registered,
                reason: format!("over TLS {query}"),
                cid: None,
            })
            .unwrap();
        assert!(!store.audit_log(10).unwrap().is_empty());
    }

    // The cluster takes TCP logins over TLS only: plain TCP is refused, the fix named.
    for query in ["?sslmode=disable", ""] {
        let e = open(&url("127.0.0.1", query), None).unwrap_err();
        assert!(e.contains("no encryption"), "{query}: {e}");
        assert!(e.contains("database_ca_file"), "{query}: {e}");
        assert!(!e.contains(&password), "{e}");
    }

    // Another CA (another `init --tls` pair): refused at start, the setting named.
    let other = init_with_tls(&dir.path().join("other-pair"));
    let e = open(&url("127.0.0.1", "?sslmode=require"), Some(&other)).unwrap_err();
    assert!(e.contains("not trusted by database_ca_file"), "{e}");
    assert!(e.contains("other-pair"), "{e}");
    assert!(!e.contains(&password), "{e}");

    // The certificate names 127.0.0.1, not 127.0.0.2 (same cluster, same CA).
    let e = open(&url("127.0.0.2", "?sslmode=require"), Some(&cert)).unwrap_err();
    assert!(e.contains("does not name the host"), "{e}");

    // The same through `server run`: --database-ca-file, and database_ca_file in server.toml.
    let data = dir.path().join("srv");
    assert!(server(&["init", "--data", data.to_str().unwrap()])
        .status
        .success());
    let good = url("127.0.0.1", "?sslmode=require");
    run_server(
        &data,
        &[
            "--database",
            &good,
            "--database-ca-file",
            cert.to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("server run with the right CA: {e}"));
    let e = run_server(
        &data,
        &[
            "--database",
            &good,
            "--database-ca-file",
            other.to_str().unwrap(),
        ],
    )
    .unwrap_err();
    assert!(e.contains("not trusted by database_ca_file"), "{e}");
    assert!(!e.contains(&password), "{e}");

    let from_file = dir.path().join("from-file");
    let out = server(&[
        "init",
        "--data",
        from_file.to_str().unwrap(),
        "--database",
        &good,
    ]);
    assert!(out.status.success(), "{}", printed(&out));
    assert!(!printed(&out).contains(&password));
    std::fs::copy(&cert, from_file.join("postgres-ca.pem")).unwrap();
    let toml = from_file.join("server.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("# database_ca_file = ", "database_ca_file = ");
    std::fs::write(&toml, text).unwrap();
    run_server(&from_file, &[]).unwrap_or_else(|e| panic!("database_ca_file in the file: {e}"));
    let audit = server(&["audit", "--data", from_file.to_str().unwrap()]);
    assert!(audit.status.success(), "{}", printed(&audit));
}

#[test]
fn sslmode_require_against_a_cluster_without_tls_stops_the_start_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cert = init_with_tls(&dir.path().join("pair"));
    let Some(cluster) = pg::cluster("sslmode_require_against_a_cluster_without_tls") else {
        return;
    };
    let url = format!("{}?sslmode=require", cluster.new_database());
    let e = open(&url, Some(&cert)).unwrap_err();
    assert!(e.contains("does not accept TLS"), "{e}");
    assert!(!e.contains(&cluster.password), "{e}");

    let data = dir.path().join("srv");
    assert!(server(&["init", "--data", data.to_str().unwrap()])
        .status
        .success());
    let e = run_server(
        &data,
        &[
            "--database",
            &url,
            "--database-ca-file",
            cert.to_str().unwrap(),
        ],
    )
    .unwrap_err();
    assert!(e.contains("does not accept TLS"), "{e}");
    assert!(e.contains("ssl = on"), "{e}");
    assert!(e.contains("sslmode=disable"), "{e}");
    assert!(!e.contains(&cluster.password), "{e}");
}

#[test]
fn a_database_off_loopback_without_tls_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srv");
    assert!(server(&["init", "--data", data.to_str().unwrap()])
        .status
        .success());
    let e = run_server(
        &data,
        &["--database", "postgres://app:hunter2@192.0.2.1:5432/vsc"],
    )
    .unwrap_err();
    assert!(e.contains("not on loopback"), "{e}");
    assert!(e.contains("sslmode=require"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}
