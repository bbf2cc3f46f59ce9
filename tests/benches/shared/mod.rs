//! What the flow benchmarks share (each includes this module): the terminal loop of fake
//! SEs, TLS pairs from `server init --tls`, and the OpenSSL mutual-TLS reference.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use secure_channel::mutual::{self, Call};

/// A TLS pair from `server init --tls`: (certificate, key).
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_pair(dir: &Path) -> Pair {
    let bin = e2e_tests::workspace_bin("server").expect("server binary");
    let out = Command::new(bin)
        .args(["init", "--tls", "--data"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("server init --tls");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Pair {
        cert: dir.join("tls-cert.pem"),
        key: dir.join("tls-key.pem"),
    }
}

/// The terminal's client: trusting the portal's certificate; pooled or not.
pub fn terminal_client(portal_cert: &Path, keep_alive: bool) -> reqwest::Client {
    let pem = std::fs::read(portal_cert).expect("portal certificate");
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
        .timeout(WAIT);
    if !keep_alive {
        b = b.pool_max_idle_per_host(0);
    }
    b.build().expect("client")
}

/// One terminal: flows (registration + one `echo` call) until `until`, counted in `flows`;
/// `now` is the SE's clock (Unix seconds) for the grant's expiry.
pub async fn terminal(
    http: reqwest::Client,
    base: String,
    mut se: FakeSe,
    public: mutual::VerifyingKey,
    (now, until): (u64, Instant),
    flows: Arc<AtomicU64>,
) {
    while Instant::now() < until {
        let pending = se.registration(SERVICE, &public);
        let body = serde_json::to_vec(&register_body(&pending)).expect("json");
        let a = post_via(&http, &base, &register_path(SERVICE), body).await;
        assert_eq!(a.status, 200, "{:?}", a.json);
        let rp = parse_answer(&a.json);
        let mut conn = mutual::se_accept_answer(&pending.pending, &public, &rp, now)
            .expect("granted")
            .connection;
        let m = conn
            .seal_call(&Call {
                name: "echo".into(),
                data: b"ping".to_vec(),
            })
            .expect("seal");
        let body = serde_json::to_vec(&message_body(&m)).expect("json");
        let a = post_via(&http, &base, &messages_path(SERVICE), body).await;
        assert_eq!(a.status, 200, "{:?}", a.json);
        let r = conn
            .open_result(&parse_message(&a.json))
            .expect("open result");
        assert_eq!(r.data, b"ping");
        flows.fetch_add(1, Ordering::Relaxed);
    }
}

/// OpenSSL mTLS full handshakes per second: `s_server` requiring a client certificate,
/// `clients` parallel `s_time -new` loops. `None` when openssl is not installed.
pub fn mtls(clients: usize, seconds: u64) -> Option<f64> {
    let dir = tempfile::tempdir().ok()?;
    let d = dir.path();
    let ssl = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
            .filter(|s| s.success())
    };
    let curve = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    ssl(&[
        &[
            "req", "-x509", "-days", "2", "-subj", "/CN=ca", "-keyout", "ca.key", "-out", "ca.pem",
        ][..],
        &curve,
    ]
    .concat())?;
    for who in ["server", "client"] {
        let key = format!("{who}.key");
        let csr = format!("{who}.csr");
        let pem = format!("{who}.pem");
        let subj = format!("/CN={who}");
        ssl(&[
            &["req", "-subj", &subj, "-keyout", &key, "-out", &csr][..],
            &curve,
        ]
        .concat())?;
        ssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
        ])?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "server.pem",
            "-key",
            "server.key",
            "-CAfile",
            "ca.pem",
            "-Verify",
            "1",
            "-www",
            "-quiet",
            "-no_ticket",
            "-tls1_3",
        ])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // Wait until the server accepts (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let _ = server.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let runs: Vec<_> = (0..clients)
        .filter_map(|_| {
            Command::new("openssl")
                .args([
                    "s_time",
                    "-connect",
                    &format!("127.0.0.1:{port}"),
                    "-new",
                    "-cert",
                    "client.pem",
                    "-key",
                    "client.key",
                    "-CAfile",
                    "ca.pem",
                    "-time",
                    &seconds.to_string(),
                ])
                .current_dir(d)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .ok()
        })
        .collect();
    let mut total = 0.0;
    for r in runs {
        let out = r.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "N connections in T.TTs; R connections/user sec, ..." then "N connections in S real seconds"
        let line = text
            .lines()
            .find(|l| l.contains("connections in") && l.contains("real seconds"))?;
        let mut words = line.split_whitespace();
        let n: f64 = words.next()?.parse().ok()?;
        let secs: f64 = line
            .split("connections in ")
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        total += n / secs.max(0.001);
    }
    let _ = server.kill();
    let _ = server.wait();
    Some(total)
}
