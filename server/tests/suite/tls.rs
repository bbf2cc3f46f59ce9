//! `server run` over HTTPS with the pair `server init --tls` writes, and the start-time
//! refusals: an open key (chmod 600), a garbage certificate (the file named), plain HTTP on
//! a non-loopback address without --insecure-http. Loopback only; `0.0.0.0:0` is bound once,
//! with --insecure-http, and the server is killed as soon as it says it listens.
use crate::common::WAIT;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use secure_channel::mutual::SigningKey;

const BIN: &str = env!("CARGO_BIN_EXE_server");

/// `server init [--tls] --data DIR/d`: the data directory.
fn init(dir: &Path, tls: bool) -> PathBuf {
    let data = dir.join("d");
    let mut cmd = Command::new(BIN);
    cmd.arg("init").arg("--data").arg(&data);
    if tls {
        cmd.arg("--tls");
    }
    let out = cmd
        .env("RUST_LOG", "warn")
        .output()
        .expect("run server init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    data
}

fn issuer_ca() -> String {
    hex::encode(SigningKey::generate().unwrap().verifying_key().to_sec1())
}

/// `server run` that must stop at start: its stderr.
fn refused(data: &Path, extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["run", "--issuer-ca", &issuer_ca(), "--data"])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run server");
    assert!(!out.status.success(), "the server started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A `server run` child, killed (by its PID, through `Child`) when dropped.
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

fn start(data: &Path, listen: &str, extra: &[&str]) -> Running {
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--issuer-ca",
            &issuer_ca(),
            "--listen",
            listen,
            "--data",
        ])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn server run");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx.recv_timeout(WAIT);
    let mut running = Running {
        child,
        url: String::new(),
    };
    let line = line.unwrap_or_else(|e| panic!("no listening line: {e}"));
    running.url = line
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    running
}

/// A client trusting exactly `ca` (PEM file), or nothing.
fn client(ca: Option<&Path>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .timeout(WAIT);
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

/// The error and its sources, in one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(e) = source {
        s.push_str(": ");
        s.push_str(&e.to_string());
        source = e.source();
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_init_pair_is_trusted_by_its_certificate_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = init(dir.path(), true);
    let toml = std::fs::read_to_string(data.join("server.toml")).unwrap();
    assert!(toml.contains("\ntls_cert = \"tls-cert.pem\""), "{toml}");
    let key_mode = std::fs::metadata(data.join("tls-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);

    let srv = start(&data, "127.0.0.1:0", &[]);
    assert!(srv.url.starts_with("https://127.0.0.1:"), "{}", srv.url);
    let cert = data.join("tls-cert.pem");
    let trusted = client(Some(&cert));
    for url in [srv.url.clone(), srv.url.replace("127.0.0.1", "localhost")] {
        let r = trusted.get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
    }

    let e = client(None)
        .get(format!("{}/healthz", srv.url))
        .send()
        .await
        .unwrap_err();
    let e = chain(&e);
    assert!(e.contains("certificate"), "{e}");
    // A failed handshake drops that connection only: the server still answers.
    let r = trusted
        .get(format!("{}/healthz", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Plain HTTP to the TLS port gets no answer.
    assert!(client(None)
        .get(format!("{}/healthz", srv.url.replace("https", "http")))
        .send()
        .await
        .is_err());
}

#[test]
fn an_open_tls_key_is_refused_with_the_chmod_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = init(dir.path(), true);
    let key = data.join("tls-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::remove_file(data.join("server.db")).unwrap();
    let err = refused(&data, &["--listen", "127.0.0.1:0"]);
    assert!(
        err.contains(&format!("run `chmod 600 {}`", key.display())),
        "{err}"
    );
    assert!(!data.join("server.db").exists(), "the database was created");
}

#[test]
fn a_garbage_certificate_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = init(dir.path(), true);
    let cert = data.join("tls-cert.pem");
    std::fs::write(&cert, "this is not a certificate\n").unwrap();
    let err = refused(&data, &["--listen", "127.0.0.1:0"]);
    assert!(
        err.contains(&format!("{} is not a PEM certificate file", cert.display())),
        "{err}"
    );
    // A key that is not the certificate's: the command-line pair overrides the file's.
    let other = init(&dir.path().join("other"), true);
    let err = refused(
        &data,
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &other.join("tls-cert.pem").display().to_string(),
            "--tls-key",
            &data.join("tls-key.pem").display().to_string(),
        ],
    );
    assert!(err.contains("is the certificate's"), "{err}");
}

#[test]
fn plain_http_off_loopback_needs_insecure_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = init(dir.path(), false);
    let err = refused(&data, &["--listen", "0.0.0.0:0"]);
    assert!(
        err.contains("refusing plain HTTP on 0.0.0.0:0") && err.contains("--insecure-http"),
        "{err}"
    );
    let srv = start(&data, "0.0.0.0:0", &["--insecure-http"]);
    assert!(srv.url.starts_with("http://0.0.0.0:"), "{}", srv.url);
    drop(srv);
    // Loopback needs no flag (the other tests), and the same files over TLS are fine anywhere:
    // checked without binding by the configuration's unit tests.
}
