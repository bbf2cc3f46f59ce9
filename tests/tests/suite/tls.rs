//! HTTPS end to end with the real binaries: `server init --tls` pairs for the server and the
//! portal, the portal relaying to the server over TLS (verified against its
//! upstream_ca_file), and reader-client's portal client verifying the portal with --ca-file.

use crate::mutual_auth::in_process_card;
use apdu_specs::auth::{Call, CallStatus};
use apdu_specs::hexfmt;
use card_emulator::ca::IssuerCa;
use card_emulator::system_clock;
use e2e_tests::{output_text, run_with_timeout, workspace_bin, Proc};
use reader_client::flow;
use reader_client::portal_client::{PortalClient, PortalError};
use reader_client::Transport;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PIN: &[u8] = b"1234";
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// `server init --tls --data DIR`: the server's public key.
fn init_tls(dir: &Path) -> [u8; 65] {
    let mut init = Command::new(workspace_bin("server").unwrap());
    init.args(["init", "--tls", "--data"]).arg(dir);
    let out = run_with_timeout(init, TOOL_TIMEOUT).unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let key = String::from_utf8_lossy(&out.stdout);
    let key = hexfmt::parse(key.lines().next().unwrap_or_default()).unwrap();
    key.as_slice().try_into().unwrap()
}

/// The `https://` URL a service prints once listening.
fn https_url(proc: &mut Proc) -> String {
    let line = proc
        .wait_line("listening on", START_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    line.split_whitespace()
        .find(|w| w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no https URL in {line:?}"))
        .to_string()
}

#[test]
fn register_and_call_through_a_tls_portal_to_a_tls_server() {
    let dir = tempfile::tempdir().unwrap();
    let (server_dir, portal_dir) = (dir.path().join("server"), dir.path().join("portal"));
    let server_key = init_tls(&server_dir);
    // Only this directory's TLS pair is used: the portal's own certificate.
    init_tls(&portal_dir);
    let (server_cert, portal_cert) = (
        server_dir.join("tls-cert.pem"),
        portal_dir.join("tls-cert.pem"),
    );
    let ca = IssuerCa::generate("tls e2e CA").unwrap();

    // TLS from the starter server.toml that `init --tls` wrote.
    let mut cmd = Command::new(workspace_bin("server").unwrap());
    cmd.args([
        "run",
        "--listen",
        "127.0.0.1:0",
        "--issuer-ca",
        &ca.public_hex(),
    ])
    .args(["--grant", &format!("demo:*:*:{}", system_clock() + 3600)])
    .arg("--data")
    .arg(&server_dir);
    let mut server = Proc::spawn(cmd, "server-tls").unwrap();
    let server_url = https_url(&mut server);

    // Without upstream_ca_file an https:// server is refused at start.
    let mut cmd = Command::new(workspace_bin("portal").unwrap());
    cmd.args(["run", "--listen", "127.0.0.1:0"])
        .args(["--service", &format!("demo={server_url}")]);
    let out = run_with_timeout(cmd, TOOL_TIMEOUT).unwrap();
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("upstream_ca_file"),
        "{}",
        output_text(&out)
    );

    let mut cmd = Command::new(workspace_bin("portal").unwrap());
    cmd.args(["run", "--listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&portal_cert)
        .arg("--tls-key")
        .arg(portal_dir.join("tls-key.pem"))
        .arg("--upstream-ca-file")
        .arg(&server_cert)
        .args(["--service", &format!("demo={server_url}")]);
    let mut portal = Proc::spawn(cmd, "portal-tls").unwrap();
    let portal_url = https_url(&mut portal);

    // reader-client's client with --ca-file: the whole flow, over two TLS hops.
    let mut card = in_process_card(&ca, &server_key);
    let client = PortalClient::with_ca_file(&portal_url, Some(&portal_cert)).unwrap();
    card.reset().unwrap();
    let reg = flow::register(&mut card, &client, "demo", PIN, &mut std::io::sink()).unwrap();
    assert_eq!(reg.scope, ["echo", "provision"]);
    let call = Call {
        name: "echo".into(),
        data: b"over TLS".to_vec(),
    };
    card.reset().unwrap();
    let served = flow::service(
        &mut card,
        &client,
        "demo",
        &call,
        Some(PIN),
        &mut std::io::sink(),
    )
    .unwrap();
    assert_eq!(served.result.status, CallStatus::Ok);
    assert_eq!(served.result.data, b"over TLS");

    // The server's certificate does not vouch for the portal, nor do the system's roots
    // (where the machine has any: without, `new` says so).
    let mut clients = vec![PortalClient::with_ca_file(&portal_url, Some(&server_cert)).unwrap()];
    match PortalClient::new(&portal_url) {
        Ok(c) => clients.push(c),
        Err(e) => assert!(matches!(e, PortalError::NoRoots(_)), "{e}"),
    }
    for client in clients {
        match client.register("demo", &[1]) {
            Err(e @ PortalError::Untrusted { .. }) => {
                assert!(e.to_string().contains("--ca-file"), "{e}");
                assert!(!e.is_outage());
            }
            other => panic!("expected an untrusted certificate, got {other:?}"),
        }
    }

    portal.terminate(Duration::from_secs(5));
    server.terminate(Duration::from_secs(5));
}

#[test]
fn reader_client_names_a_bad_ca_file_before_touching_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let mut cmd = Command::new(workspace_bin("reader-client").unwrap());
    cmd.args([
        "register",
        "--portal",
        "https://127.0.0.1:9",
        "--service",
        "demo",
    ])
    .arg("--ca-file")
    .arg(&ca)
    .arg("--in-process")
    .env("VSE_PIN", "1234");
    let out = run_with_timeout(cmd, TOOL_TIMEOUT).unwrap();
    assert!(!out.status.success());
    let text = output_text(&out);
    assert!(
        text.contains(&format!("cannot use --ca-file {}", ca.display())),
        "{text}"
    );
}
