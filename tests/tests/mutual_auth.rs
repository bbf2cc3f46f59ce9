//! Seed document 1 end to end: `reader-client register` / `service` / `demo` against the real
//! `server` and `portal` binaries (through real pcscd where installed), and a hostile portal
//! that tampers with every message type: each case is refused with the documented error.

use apdu_specs::auth::Call;
use apdu_specs::{hexfmt, Status};
use card_emulator::ca::IssuerCa;
use card_emulator::{profile, system_clock, Card};
use e2e_tests::{output_text, run_with_timeout, url_in, workspace_bin, Pcscd, Proc, RunningCard};
use reader_client::flow::{self, FlowError};
use reader_client::portal_client::PortalClient;
use reader_client::scp::{Scp, ScpOptions, ScpVersion};
use reader_client::{gp, InProcess, Transport};
use secure_channel::{SecurityLevel, StaticKeys};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PIN: &[u8] = b"1234";
const AID_A: &str = "A0000005591010FFFFFFFF8900001000";
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Services the backend offers: granted, granted (for swaps), never granted, grant in the past.
const SERVICES: [&str; 4] = ["demo", "other", "denied", "expired"];

fn now() -> u64 {
    system_clock()
}

/// Wait until `proc` prints a line containing `marker`; the URL on it.
fn wait_url(proc: &mut Proc, marker: &str) -> String {
    let line = proc
        .wait_line(marker, START_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    url_in(&line).unwrap_or_default()
}

/// The real server and portal on loopback ephemeral ports, stopped by PID when dropped.
struct Backend {
    _dir: tempfile::TempDir,
    data: PathBuf,
    ca: String,
    server: Proc,
    portal: Proc,
    server_url: String,
    portal_url: String,
    server_key: [u8; 65],
}

impl Backend {
    fn start(ca: &str) -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("server");
        let mut init = Command::new(workspace_bin("server").unwrap());
        init.args(["init", "--data"]).arg(&data);
        let out = run_with_timeout(init, TOOL_TIMEOUT).unwrap();
        assert!(out.status.success(), "{}", output_text(&out));
        let key = String::from_utf8_lossy(&out.stdout);
        let key = hexfmt::parse(key.lines().next().unwrap_or_default()).unwrap();
        let (server, server_url) = Self::run_server(&data, ca, "127.0.0.1:0");
        let mut cmd = Command::new(workspace_bin("portal").unwrap());
        cmd.args(["run", "--listen", "127.0.0.1:0"]);
        for s in SERVICES {
            cmd.args(["--service", &format!("{s}={server_url}")]);
        }
        let mut portal = Proc::spawn(cmd, "portal").unwrap();
        let portal_url = wait_url(&mut portal, "listening on");
        Backend {
            _dir: dir,
            data,
            ca: ca.to_string(),
            server,
            portal,
            server_url,
            portal_url,
            server_key: key.as_slice().try_into().unwrap(),
        }
    }

    fn run_server(data: &Path, ca: &str, listen: &str) -> (Proc, String) {
        let hour = now() + 3600;
        let mut cmd = Command::new(workspace_bin("server").unwrap());
        cmd.args(["run", "--listen", listen, "--issuer-ca", ca])
            .args(["--service", "demo=echo,provision"])
            .args(["--service", "other=echo"])
            .args(["--service", "denied=echo"])
            .args(["--service", "expired=echo"])
            .args(["--grant", &format!("demo:*:*:{hour}")])
            .args(["--grant", &format!("other:*:*:{hour}")])
            .args(["--grant", &format!("expired:*:*:{}", now() - 60)])
            .arg("--data")
            .arg(data);
        let mut p = Proc::spawn(cmd, "server").unwrap();
        let url = wait_url(&mut p, "listening on");
        (p, url)
    }

    /// Stop the server and start it again on the same address and data.
    fn restart_server(&mut self) {
        self.server.terminate(Duration::from_secs(10));
        let addr = self.server_url.trim_start_matches("http://").to_string();
        let (p, url) = Self::run_server(&self.data, &self.ca, &addr);
        assert_eq!(url, self.server_url);
        self.server = p;
    }

    /// The decisions of the audit table, oldest first.
    fn audit(&self) -> Vec<String> {
        let mut cmd = Command::new(workspace_bin("server").unwrap());
        cmd.args(["audit", "--limit", "100000", "--data"])
            .arg(&self.data);
        let out = run_with_timeout(cmd, TOOL_TIMEOUT).unwrap();
        assert!(out.status.success(), "{}", output_text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split('\t').nth(3).map(str::to_string))
            .collect()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.portal.terminate(Duration::from_secs(5));
        self.server.terminate(Duration::from_secs(5));
    }
}

/// An in-process card from the default profile, certified by `ca`, trusting `key` for every
/// service of [`SERVICES`] in container A (SCP03 + INSTALL [for personalization] + DGI A001).
fn in_process_card(ca: &IssuerCa, key: &[u8; 65]) -> InProcess<Card> {
    let mut state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    ca.personalize(&mut state, now()).unwrap();
    let mut t = InProcess::new(Card::in_memory(state));
    gp::select(&mut t, &gp::ISD_AID, 0).unwrap();
    let mut scp = Scp::open(
        &mut t,
        &StaticKeys::gp_default(),
        &ScpOptions::new(ScpVersion::Scp03, SecurityLevel::FULL),
    )
    .unwrap();
    for s in SERVICES {
        let anchor = apdu_specs::auth::TrustAnchor {
            service_id: s.into(),
            server_public_key: *key,
        };
        gp::install_anchor(&mut scp, &hexfmt::parse(AID_A).unwrap(), &anchor, 0).unwrap();
    }
    drop(scp);
    t
}

// ---------------------------------------------------------------------------------------
// The hostile portal: a relay in front of the real portal that mutates one message type.

#[derive(Debug, Clone, PartialEq)]
enum Mutation {
    None,
    /// Flip bit 0 of byte i of the request blob (R, or the up message).
    FlipRequest(usize),
    /// Flip a bit of the signature sent with R (or of R' when in a response).
    FlipRequestSignature(usize),
    FlipResponse(usize),
    FlipResponseSignature(usize),
    TruncateRequest,
    TruncateResponse,
    /// Send the previous (recorded) request instead of this one.
    ReplayRequest,
    /// Answer the previous (recorded) response instead of this one.
    ReplayResponse,
    /// Forward to another service's route.
    SwapService(&'static str),
    /// Forward, keep the answer and fail with 502 (the next answer can then be delivered first).
    WithholdResponse,
    /// [`Mutation::WithholdResponse`] once, then relay faithfully (an answer lost in transit).
    WithholdFirstResponse,
    /// Do not forward; fail with 502 (the next request then arrives "before" this one).
    DropRequest,
}

#[derive(Default)]
struct Recorded {
    request: Option<String>,
    response: Option<String>,
}

struct RelayState {
    /// `register` or `messages`: the route the mutation applies to.
    route: &'static str,
    mutation: Mutation,
    register: Recorded,
    messages: Recorded,
}

struct Hostile {
    url: String,
    state: Arc<Mutex<RelayState>>,
}

impl Hostile {
    fn start(portal_url: &str) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(RelayState {
            route: "register",
            mutation: Mutation::None,
            register: Recorded::default(),
            messages: Recorded::default(),
        }));
        let (st, upstream) = (state.clone(), portal_url.to_string());
        std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(20))
                .build();
            for conn in listener.incoming().map_while(Result::ok) {
                let _ = serve(conn, &agent, &upstream, &st);
            }
        });
        Hostile { url, state }
    }

    fn set(&self, route: &'static str, m: Mutation) {
        let mut s = self.state.lock().unwrap();
        s.route = route;
        s.mutation = m;
    }
}

fn blob_field(route: &str, response: bool, signature: bool) -> &'static str {
    match (route, response, signature) {
        ("register", false, false) => "r",
        ("register", true, false) => "r_prime",
        ("register", _, true) => "signature",
        _ => "message",
    }
}

/// Apply `f` to the hex blob `field` of a JSON body.
fn mutate(body: &str, field: &str, f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut v: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => return body.to_string(),
    };
    if let Some(h) = v.get(field).and_then(|x| x.as_str()) {
        let mut b = hexfmt::parse(h).unwrap_or_default();
        f(&mut b);
        v[field] = serde_json::Value::String(hexfmt::upper(&b));
    }
    v.to_string()
}

fn flip(i: usize) -> impl FnOnce(&mut Vec<u8>) {
    move |b| {
        let n = b.len().max(1);
        if let Some(x) = b.get_mut(i % n) {
            *x ^= 0x01;
        }
    }
}

fn truncate(b: &mut Vec<u8>) {
    b.truncate(b.len() / 2);
}

/// One HTTP/1.1 exchange on `conn` (Connection: close).
fn serve(
    mut conn: TcpStream,
    agent: &ureq::Agent,
    upstream: &str,
    state: &Mutex<RelayState>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let route: &'static str = if path.ends_with("/register") {
        "register"
    } else {
        "messages"
    };
    let (mutation, active) = {
        let s = state.lock().unwrap();
        (s.mutation.clone(), s.route == route)
    };
    let mutation = if active { mutation } else { Mutation::None };
    let recorded_request = {
        let s = state.lock().unwrap();
        let r = if route == "register" {
            &s.register
        } else {
            &s.messages
        };
        r.request.clone()
    };
    let sent = match &mutation {
        Mutation::FlipRequest(i) => mutate(&body, blob_field(route, false, false), flip(*i)),
        Mutation::FlipRequestSignature(i) => {
            mutate(&body, blob_field(route, false, true), flip(*i))
        }
        Mutation::TruncateRequest => mutate(&body, blob_field(route, false, false), truncate),
        Mutation::ReplayRequest => recorded_request.unwrap_or_else(|| body.clone()),
        _ => body.clone(),
    };
    if let Mutation::SwapService(to) = &mutation {
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() == 5 {
            path = format!("/{}/{}/{to}/{}", parts[1], parts[2], parts[4]);
        }
    }
    let (status, answer) = if mutation == Mutation::DropRequest {
        (
            502,
            r#"{"error":"dropped","message":"hostile portal"}"#.to_string(),
        )
    } else {
        match agent
            .post(&format!("{upstream}{path}"))
            .set("content-type", "application/json")
            .send_string(&sent)
        {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap_or_default()),
            Err(e) => (502, format!(r#"{{"error":"upstream","message":"{e}"}}"#)),
        }
    };
    let (status, delivered) = {
        let mut s = state.lock().unwrap();
        let r = if route == "register" {
            &mut s.register
        } else {
            &mut s.messages
        };
        let previous = r.response.clone();
        if mutation != Mutation::ReplayRequest {
            r.request = Some(body.clone());
        }
        let out = match &mutation {
            _ if status != 200 => (status, answer.clone()),
            Mutation::FlipResponse(i) => (
                200,
                mutate(&answer, blob_field(route, true, false), flip(*i)),
            ),
            Mutation::FlipResponseSignature(i) => (
                200,
                mutate(&answer, blob_field(route, true, true), flip(*i)),
            ),
            Mutation::TruncateResponse => (
                200,
                mutate(&answer, blob_field(route, true, false), truncate),
            ),
            Mutation::ReplayResponse => (200, previous.unwrap_or_else(|| answer.clone())),
            Mutation::WithholdResponse | Mutation::WithholdFirstResponse => (
                502,
                r#"{"error":"withheld","message":"hostile portal"}"#.to_string(),
            ),
            _ => (200, answer.clone()),
        };
        if status == 200 {
            r.response = Some(answer);
        }
        if mutation == Mutation::WithholdFirstResponse {
            s.mutation = Mutation::None;
        }
        out
    };
    write!(
        conn,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{delivered}",
        delivered.len()
    )?;
    conn.flush()
}

// ---------------------------------------------------------------------------------------

struct World {
    backend: Backend,
    hostile: Hostile,
    client: PortalClient,
    card: InProcess<Card>,
}

impl World {
    fn new() -> World {
        let ca = IssuerCa::generate("e2e CA").unwrap();
        let backend = Backend::start(&ca.public_hex());
        let hostile = Hostile::start(&backend.portal_url);
        let client = PortalClient::new(&hostile.url).unwrap();
        let card = in_process_card(&ca, &backend.server_key);
        World {
            backend,
            hostile,
            client,
            card,
        }
    }

    /// A new card connection (a warm reset: volatile state gone, durable state kept).
    fn t(&mut self) -> &mut dyn Transport {
        self.card.reset().unwrap();
        &mut self.card
    }

    fn register(&mut self, service: &str) -> Result<flow::Registered, FlowError> {
        let client = PortalClient::new(&self.hostile.url).unwrap();
        flow::register(self.t(), &client, service, PIN, &mut std::io::sink())
    }

    fn call(&mut self, name: &str) -> Result<flow::Served, FlowError> {
        let client = PortalClient::new(&self.hostile.url).unwrap();
        let call = Call {
            name: name.into(),
            data: b"ping".to_vec(),
        };
        flow::service(
            self.t(),
            &client,
            "demo",
            &call,
            Some(PIN),
            &mut std::io::sink(),
        )
    }

    /// EF 6F10 of container A, read after VERIFY.
    fn credential_ef(&mut self) -> Vec<u8> {
        reader_client::auth_client::read_credential(self.t(), PIN).unwrap()
    }
}

fn card_sw(r: Result<impl std::fmt::Debug, FlowError>) -> Status {
    match r {
        Err(e) => e
            .card_status()
            .unwrap_or_else(|| panic!("expected a card refusal, got: {e}")),
        Ok(v) => panic!("expected a card refusal, got success {v:?}"),
    }
}

fn server_code(r: Result<impl std::fmt::Debug, FlowError>) -> String {
    match r {
        Err(e) => e
            .server_code()
            .unwrap_or_else(|| panic!("expected a server refusal, got: {e}"))
            .to_string(),
        Ok(v) => panic!("expected a server refusal, got success {v:?}"),
    }
}

#[test]
fn a_hostile_portal_tampering_with_r_is_refused_by_the_server_and_opens_nothing() {
    let mut w = World::new();
    let _ = &w.client;
    let mut cases = 0;
    // Every 4th byte of R, and bytes of its signature.
    for i in (0..309).step_by(4) {
        w.hostile.set("register", Mutation::FlipRequest(i));
        let code = server_code(w.register("demo"));
        assert!(
            [
                "bad_signature",
                "bad_certificate",
                "malformed_registration",
                "service_mismatch",
                "certificate_expired"
            ]
            .contains(&code.as_str()),
            "byte {i} of R: {code}"
        );
        cases += 1;
    }
    for i in [0, 31, 32, 63] {
        w.hostile.set("register", Mutation::FlipRequestSignature(i));
        assert_eq!(
            server_code(w.register("demo")),
            "bad_signature",
            "sig byte {i}"
        );
        cases += 1;
    }
    w.hostile.set("register", Mutation::TruncateRequest);
    assert_eq!(server_code(w.register("demo")), "malformed_registration");
    w.hostile.set("register", Mutation::SwapService("other"));
    assert_eq!(server_code(w.register("demo")), "service_mismatch");
    // Nothing was registered, and the SE has no channel.
    let audit = w.backend.audit();
    assert!(!audit.iter().any(|d| d == "registered"), "{audit:?}");
    assert!(audit.len() >= cases, "{} audit rows", audit.len());
    w.hostile.set("register", Mutation::None);
    assert_eq!(card_sw(w.call("echo")), Status::NoSecureConnection);
    // A genuine R, then the same R replayed: refused as a replay.
    w.register("demo").unwrap();
    w.hostile.set("register", Mutation::ReplayRequest);
    assert_eq!(server_code(w.register("demo")), "replay");
    assert_eq!(w.backend.audit().last().map(String::as_str), Some("replay"));
}

#[test]
fn a_hostile_portal_tampering_with_r_prime_is_refused_by_the_se_and_opens_nothing() {
    let mut w = World::new();
    for i in (0..144).step_by(3) {
        w.hostile.set("register", Mutation::FlipResponse(i));
        let sw = card_sw(w.register("demo"));
        assert!(
            [Status::BadServerSignature, Status::IncorrectData].contains(&sw),
            "byte {i} of R': {sw}"
        );
    }
    for i in [0, 32, 63] {
        w.hostile
            .set("register", Mutation::FlipResponseSignature(i));
        assert_eq!(card_sw(w.register("demo")), Status::BadServerSignature);
    }
    w.hostile.set("register", Mutation::TruncateResponse);
    let sw = card_sw(w.register("demo"));
    assert!(
        [Status::BadServerSignature, Status::IncorrectData].contains(&sw),
        "{sw}"
    );
    w.hostile.set("register", Mutation::None);
    assert_eq!(card_sw(w.call("echo")), Status::NoSecureConnection);
    // An old R' (answering an earlier R) does not answer the pending one.
    w.hostile.set("register", Mutation::ReplayResponse);
    assert_eq!(card_sw(w.register("demo")), Status::BadServerSignature);
    // R' of another service (the request swapped to `other`, which is also trusted).
    w.hostile.set("register", Mutation::SwapService("other"));
    assert_eq!(server_code(w.register("demo")), "service_mismatch");
    w.hostile.set("register", Mutation::None);
    assert_eq!(card_sw(w.call("echo")), Status::NoSecureConnection);
}

#[test]
fn an_answer_lost_on_the_way_is_recovered_by_sending_the_same_message_again() {
    let mut w = World::new();
    w.register("demo").unwrap();
    w.hostile.set("messages", Mutation::WithholdFirstResponse);
    let served = w.call("provision").unwrap();
    assert_eq!(served.result.status, apdu_specs::auth::CallStatus::Ok);
    let audit = w.backend.audit();
    assert_eq!(
        audit[audit.len() - 2..],
        ["call_executed".to_string(), "answer_resent".to_string()],
        "{audit:?}"
    );
    // The credential the SE stored is the one issued once; the connection goes on in step.
    assert!(w.credential_ef().iter().any(|b| *b != 0));
    w.call("echo").unwrap();
}

#[test]
fn a_hostile_portal_tampering_with_protected_messages_is_refused_and_provisions_nothing() {
    let mut w = World::new();
    let up_cases = [
        Mutation::FlipRequest(0),
        Mutation::FlipRequest(6),
        Mutation::FlipRequest(22),
        Mutation::FlipRequest(33),
        Mutation::FlipRequest(60),
        Mutation::TruncateRequest,
        Mutation::SwapService("other"),
    ];
    for m in up_cases {
        w.hostile.set("messages", Mutation::None);
        w.register("demo").unwrap();
        w.hostile.set("messages", m.clone());
        let code = server_code(w.call("provision"));
        assert!(
            [
                "authentication_failed",
                "malformed_message",
                "unknown_connection",
                "service_mismatch"
            ]
            .contains(&code.as_str()),
            "{m:?}: {code}"
        );
    }
    assert!(!w.backend.audit().iter().any(|d| d == "call_executed"));
    // Replay of an up message after it was served; and reordering (call 1 dropped, call 2 first).
    w.hostile.set("messages", Mutation::None);
    w.register("demo").unwrap();
    w.call("echo").unwrap();
    // The last message again instead of the new one: the server sends that message's stored
    // answer again (as it does for a client whose answer was lost), which the SE has already
    // taken: refused.
    w.hostile.set("messages", Mutation::ReplayRequest);
    assert_eq!(card_sw(w.call("echo")), Status::MessageAuthenticationFailed);
    assert_eq!(
        w.backend.audit().last().map(String::as_str),
        Some("answer_resent")
    );
    w.hostile.set("messages", Mutation::None);
    w.register("demo").unwrap();
    w.hostile.set("messages", Mutation::DropRequest);
    assert!(w.call("echo").is_err());
    w.hostile.set("messages", Mutation::None);
    assert_eq!(server_code(w.call("echo")), "authentication_failed");

    // Down messages: modified, truncated, replayed, reordered: the SE refuses, EF stays empty.
    let down_cases = [
        Mutation::FlipResponse(0),
        Mutation::FlipResponse(6),
        Mutation::FlipResponse(22),
        Mutation::FlipResponse(40),
        Mutation::TruncateResponse,
        Mutation::ReplayResponse,
    ];
    for m in down_cases {
        w.hostile.set("messages", Mutation::None);
        w.register("demo").unwrap();
        if m == Mutation::ReplayResponse {
            w.call("echo").unwrap();
        }
        w.hostile.set("messages", m.clone());
        let sw = card_sw(w.call("provision"));
        assert!(
            [Status::MessageAuthenticationFailed, Status::IncorrectData].contains(&sw),
            "{m:?}: {sw}"
        );
    }
    w.hostile.set("messages", Mutation::None);
    w.register("demo").unwrap();
    w.hostile.set("messages", Mutation::WithholdResponse);
    assert!(w.call("echo").is_err());
    w.hostile.set("messages", Mutation::None);
    assert_eq!(
        card_sw(w.call("provision")),
        Status::MessageAuthenticationFailed
    );
    assert!(
        w.credential_ef().iter().all(|b| *b == 0),
        "a credential was stored"
    );
    // The same card and servers still work untampered.
    w.register("demo").unwrap();
    let served = w.call("provision").unwrap();
    assert!(served.credential_ef.unwrap().iter().any(|b| *b != 0));
}

#[test]
fn a_denied_se_an_expired_grant_and_a_server_restart() {
    let mut w = World::new();
    // No grant for `denied`: a signed refusal, 9302 at the SE, audited as refused.
    let e = w.register("denied").unwrap_err();
    assert_eq!(e.card_status(), Some(Status::ServiceNotGranted));
    assert!(e.to_string().contains("grant policy"), "{e}");
    assert_eq!(
        w.backend.audit().last().map(String::as_str),
        Some("refused")
    );
    // A grant that ended: refused by the server's policy.
    assert_eq!(card_sw(w.register("expired")), Status::ServiceNotGranted);
    // A grant the SE finds expired (its clock two hours ahead): 9303, no channel.
    fn ahead() -> u64 {
        system_clock() + 7200
    }
    w.card.card_mut().set_clock(ahead);
    assert_eq!(card_sw(w.register("demo")), Status::GrantExpired);
    w.card.card_mut().set_clock(system_clock);
    assert_eq!(card_sw(w.call("echo")), Status::NoSecureConnection);
    // Register, restart the server, then the service: the connection survived in its database.
    w.register("demo").unwrap();
    w.backend.restart_server();
    let served = w.call("echo").unwrap();
    assert_eq!(served.result.data, b"ping");
    let served = w.call("provision").unwrap();
    assert!(served.credential_ef.unwrap().iter().any(|b| *b != 0));
}

/// `reader-client <args>` with VSE_PIN set.
fn reader_client(args: &[&str], pin: bool) -> std::process::Output {
    let mut cmd = Command::new(workspace_bin("reader-client").unwrap());
    cmd.args(args);
    if pin {
        cmd.env("VSE_PIN", "1234");
    }
    run_with_timeout(cmd, TOOL_TIMEOUT).unwrap()
}

#[test]
fn register_and_service_through_real_pcscd() {
    let Some(_pcscd) = Pcscd::start("register_and_service_through_real_pcscd").unwrap() else {
        return;
    };
    let card = RunningCard::start(0).unwrap();
    let mut ca_file = card.state_path().into_os_string();
    ca_file.push(".ca.json");
    let mut cmd = Command::new(workspace_bin("card-emulator").unwrap());
    cmd.args(["ca", "public-key", "--ca"]).arg(&ca_file);
    let out = run_with_timeout(cmd, TOOL_TIMEOUT).unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let backend = Backend::start(String::from_utf8_lossy(&out.stdout).trim());
    let key = hexfmt::upper(&backend.server_key);
    let r = card.reader.as_str();
    let out = reader_client(
        &[
            "gp",
            "install-anchor",
            "--reader",
            r,
            "--container",
            AID_A,
            "--service",
            "demo",
            "--server-key",
            &key,
        ],
        false,
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let portal = backend.portal_url.as_str();
    let out = reader_client(
        &[
            "--trace",
            "register",
            "--reader",
            r,
            "--portal",
            portal,
            "--service",
            "demo",
        ],
        true,
    );
    let text = output_text(&out);
    assert!(out.status.success(), "{text}\n{}", card.log_text());
    for step in 1..=5 {
        assert!(text.contains(&format!("[step {step}]")), "{text}");
    }
    assert!(text.contains("Virtual PCD"), "{text}");
    assert!(
        !text.contains("31 32 33 34") && !text.contains("31323334"),
        "PIN leaked: {text}"
    );
    let out = reader_client(
        &[
            "service",
            "--reader",
            r,
            "--portal",
            portal,
            "--service",
            "demo",
            "--call",
            "echo",
            "--data",
            "68656C6C6F",
        ],
        false,
    );
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("echo: 68656C6C6F") && text.contains("[step 6]"),
        "{text}"
    );
    let out = reader_client(
        &[
            "service",
            "--reader",
            r,
            "--portal",
            portal,
            "--service",
            "demo",
            "--call",
            "provision",
        ],
        true,
    );
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("READ BINARY EF 6F10: 64 bytes"), "{text}");
    // A service the server does not grant: exit 1 with the advice.
    let out = reader_client(
        &[
            "register",
            "--reader",
            r,
            "--portal",
            portal,
            "--service",
            "other",
        ],
        true,
    );
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(output_text(&out).contains("9306"), "{}", output_text(&out));
    let audit = backend.audit();
    assert!(
        audit.iter().filter(|d| *d == "call_executed").count() == 2,
        "{audit:?}"
    );
}

#[test]
fn demo_exits_0_and_names_the_reader_and_each_step() {
    // With pcscd installed the demo uses the harness's pcscd (a free vpcd reader);
    // without it, the in-process card.
    let pcscd = Pcscd::start("demo (through pcscd)").unwrap();
    let out = reader_client(&["demo"], false);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("reader: "), "{text}");
    if pcscd.is_some() {
        assert!(text.contains("PC/SC reader `Virtual PCD"), "{text}");
    }
    for step in 1..=6 {
        assert!(text.contains(&format!("[step {step}]")), "{text}");
    }
    assert_eq!(text.matches("EnableProfile").count(), 1, "{text}");
    assert!(text.contains("demo ok: 2 container(s)"), "{text}");
}
