//! The `server` binary: init, public-key, run, audit, --help, and a SIGKILL between
//! registration and message that leaves the committed connection usable.
use crate::common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use common::*;
use secure_channel::mutual::VerifyingKey;

const BIN: &str = env!("CARGO_BIN_EXE_server");

fn server(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run server")
}

/// A `server run` child and the base URL it printed.
struct Running {
    child: Child,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path, extra: &[&str]) -> Running {
    let mut child = Command::new(BIN)
        .args(["run", "--data"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn server run");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = match rx.recv_timeout(WAIT) {
        Ok(l) => l,
        Err(e) => {
            let _ = child.kill();
            panic!("server run printed no address in time: {e}");
        }
    };
    let url = line
        .strip_prefix("server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Running { child, url }
}

fn unix_now() -> u64 {
    server::config::unix_now()
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["init", "--help"],
        vec!["public-key", "--help"],
        vec!["run", "--help"],
        vec!["audit", "--help"],
    ] {
        let out = server(&args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("--data") || args == ["--help"],
            "{args:?}: {text}"
        );
    }
    let run = String::from_utf8_lossy(&server(&["run", "--help"]).stdout).into_owned();
    for flag in [
        "--listen",
        "--issuer-ca",
        "--grant",
        "--service",
        "--config",
    ] {
        assert!(run.contains(flag), "run --help lacks {flag}");
    }
}

#[test]
fn init_creates_a_private_key_a_database_and_a_config_and_refuses_to_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srv");
    let out = server(&["init", "--data", data.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(public.len(), 130);
    VerifyingKey::from_sec1(&hex::decode(&public).unwrap()).expect("a P-256 point");
    let advice = String::from_utf8_lossy(&out.stderr);
    assert!(advice.contains("trust anchor") && advice.contains("issuer_ca_public_key"));
    assert!(!advice.contains(
        std::fs::read_to_string(data.join("server.key"))
            .unwrap()
            .trim()
    ));
    let mode = std::fs::metadata(data.join("server.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(data.join("server.db").exists());
    assert!(data.join("server.toml").exists());

    let again = server(&["public-key", "--data", data.to_str().unwrap()]);
    assert_eq!(String::from_utf8(again.stdout).unwrap().trim(), public);

    let twice = server(&["init", "--data", data.to_str().unwrap()]);
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already holds a server key"));

    // The starter configuration has no CA key yet: run says what to set.
    let run = server(&[
        "run",
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("card-emulator ca public-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_after_registration_leaves_the_connection_usable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srv");
    assert!(server(&["init", "--data", data.to_str().unwrap()])
        .status
        .success());
    let ca = secure_channel::mutual::SigningKey::generate().unwrap();
    let ca_hex = hex::encode(ca.verifying_key().to_sec1());
    let args = [
        "--issuer-ca",
        ca_hex.as_str(),
        "--grant",
        "demo:*:echo,provision:2100-01-01T00:00:00Z",
    ];
    let srv = start(&data, &args);
    let public_hex =
        String::from_utf8(server(&["public-key", "--data", data.to_str().unwrap()]).stdout)
            .unwrap();
    let public = VerifyingKey::from_sec1(&hex::decode(public_hex.trim()).unwrap()).unwrap();

    let mut se = FakeSe::new(&ca);
    let now = unix_now();
    let pending = se.registration(SERVICE, &public);
    let a = post(&srv.url, &register_path(SERVICE), &register_body(&pending)).await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    let rp = parse_answer(&a.json);
    let mut conn = secure_channel::mutual::se_accept_answer(&pending.pending, &public, &rp, now)
        .expect("granted")
        .connection;
    drop(srv); // SIGKILL, no graceful shutdown

    let srv = start(&data, &args);
    let r = call_ok(&srv.url, &mut conn, "echo", b"after SIGKILL").await;
    assert_eq!(r.data, b"after SIGKILL");
    // The replay store survived as well.
    let replay = post(&srv.url, &register_path(SERVICE), &register_body(&pending)).await;
    assert_error(&replay, 409, "replay");
    drop(srv);

    let audit = server(&["audit", "--data", data.to_str().unwrap()]);
    let log = String::from_utf8_lossy(&audit.stdout);
    for decision in ["registered", "call_executed", "replay"] {
        assert!(log.contains(decision), "audit lacks {decision}: {log}");
    }
}

/// Everything `server init` printed, stdout and stderr.
fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn init_database_writes_the_url_into_a_0600_config_and_never_prints_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srv");
    let url = "postgres://app:hunter2@127.0.0.1:5432/vsc";
    let out = server(&["init", "--data", data.to_str().unwrap(), "--database", url]);
    assert!(out.status.success(), "{}", printed(&out));
    let shown = printed(&out);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("postgres://app@127.0.0.1:5432/vsc"),
        "{shown}"
    );
    let config = data.join("server.toml");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "server.toml holds a password");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.lines().any(|l| l == format!("database = \"{url}\"")),
        "{text}"
    );
    assert!(
        !data.join("server.db").exists(),
        "PostgreSQL: no SQLite file"
    );
    // `server run` reads the URL back: with no CA key set it stops on that, not on the URL.
    let run = server(&["run", "--data", data.to_str().unwrap()]);
    assert!(!run.status.success());
    let shown = printed(&run);
    assert!(shown.contains("issuer_ca_public_key"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn init_database_with_tls_names_both_and_without_database_keeps_the_old_mode() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srv");
    let url = "postgres://app:hunter2@localhost/vsc?sslmode=disable";
    let out = server(&[
        "init",
        "--data",
        data.to_str().unwrap(),
        "--tls",
        "--database",
        url,
    ]);
    assert!(out.status.success(), "{}", printed(&out));
    assert!(!printed(&out).contains("hunter2"));
    let text = std::fs::read_to_string(data.join("server.toml")).unwrap();
    assert!(text.contains("\ntls_cert = \"tls-cert.pem\""), "{text}");
    assert!(
        text.contains(&format!("\ndatabase = \"{url}\"\n")),
        "{text}"
    );

    let plain = dir.path().join("plain");
    assert!(server(&["init", "--data", plain.to_str().unwrap()])
        .status
        .success());
    let text = std::fs::read_to_string(plain.join("server.toml")).unwrap();
    assert!(text.contains("\n# database = "), "{text}");
}

#[test]
fn init_with_a_bad_database_url_writes_nothing_and_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    for (url, fix) in [
        ("sqlite:server.db", "postgres://USER"),
        ("postgres://app:hunter2@127.0.0.1:x/vsc", "postgres://USER"),
        ("postgres://app:hunter2@127.0.0.1:5432/", "DBNAME"),
    ] {
        let data = dir.path().join("srv");
        let out = server(&["init", "--data", data.to_str().unwrap(), "--database", url]);
        assert!(!out.status.success(), "{url}");
        let shown = printed(&out);
        assert!(shown.contains("--database"), "{url}: {shown}");
        assert!(shown.contains(fix), "{url}: {shown}");
        assert!(!shown.contains("hunter2"), "{url}: {shown}");
        assert!(!data.exists(), "{url}: init wrote {}", data.display());
    }
    // An existing server.toml would be kept without the URL: refused before any write.
    let data = dir.path().join("kept");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("server.toml"), "listen = \"127.0.0.1:9\"\n").unwrap();
    let out = server(&[
        "init",
        "--data",
        data.to_str().unwrap(),
        "--database",
        "postgres://app:hunter2@127.0.0.1/vsc",
    ]);
    assert!(!out.status.success());
    assert!(
        printed(&out).contains("already exists"),
        "{}",
        printed(&out)
    );
    assert!(!printed(&out).contains("hunter2"));
    assert!(!data.join("server.key").exists());
}
