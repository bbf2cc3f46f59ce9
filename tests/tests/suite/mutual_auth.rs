//! Seed document 1 end to end: `reader-client register` / `service` / `demo` against the real
//! `server` and `portal` binaries (through real pcscd where installed), and a hostile portal
//! that tampers with every message type (protocol version 02: sealed R and R', padded
//! protected messages): each case is refused with the documented error, and what the portal
//! records shows no identity, counter, scope or expiry in clear.

use apdu_specs::auth::{
    Call, Certificate, SealedAnswer, SealedRegistration, ANSWER_BUCKETS, GCM_TAG_LEN,
    REGISTRATION_BUCKETS,
};
use apdu_specs::{hexfmt, tlv, Status};
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
            // The hostile-portal tests register hundreds of times a minute with one SE.
            .args(["--registrations-per-minute-per-se", "0"])
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
pub(crate) fn in_process_card(ca: &IssuerCa, key: &[u8; 65]) -> InProcess<Card> {
    let mut state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    ca.personalize(&mut state, now()).unwrap();
    let mut t = InProcess::new(Card::in_memory(state));
    // The card takes trust anchors only once no key set is a public test key: rotate first.
    let owner = StaticKeys::new(&[0x5A; 16], &[0x5B; 16], &[0x5C; 16]).unwrap();
    let rotated = gp::rotate_key_sets(
        &mut t,
        &gp::ISD_AID,
        &StaticKeys::gp_default(),
        &owner,
        SecurityLevel::C_DEC_C_MAC,
        None,
    )
    .unwrap();
    assert!(rotated.iter().all(|r| !r.public), "test keys remain");
    gp::select(&mut t, &gp::ISD_AID, 0).unwrap();
    let mut scp = Scp::open(
        &mut t,
        &owner,
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
// The hostile portal: a relay in front of the real portal that mutates one message type
// and records every body it sees.

#[derive(Debug, Clone, PartialEq)]
enum Mutation {
    None,
    /// Flip bit 0 of byte i of the request blob (the sealed R, or the up message).
    FlipRequest(usize),
    /// Flip bit 0 of byte i of the ciphertext (`86`) inside the sealed R (where version 01
    /// carried sigR in clear; R and sigR are now inside).
    FlipRequestSealed(usize),
    /// Flip bit 0 of byte i of the response blob (the sealed R', or the down message).
    FlipResponse(usize),
    /// Flip bit 0 of byte i of the ciphertext (`86`) inside the sealed R'.
    FlipResponseSealed(usize),
    /// Add the version 01 `signature` field to the register body (a downgrade attempt).
    AddSignatureField,
    /// Do not forward; keep the request for [`Mutation::ReleaseHeld`] and fail with 502.
    HoldRequest,
    /// Send the held request instead of this one (an old R delivered late).
    ReleaseHeld,
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
    /// The request [`Mutation::HoldRequest`] kept.
    held: Option<String>,
}

/// One exchange as the relay saw it: every body that crossed the portal, both ways.
#[derive(Debug, Clone)]
struct Exchange {
    route: &'static str,
    /// The body the terminal sent.
    received: String,
    /// The body forwarded upstream (after the mutation; empty when not forwarded).
    forwarded: String,
    /// The upstream's status and body.
    status: u16,
    answer: String,
    /// The body delivered to the terminal.
    delivered: String,
}

impl Exchange {
    fn bodies(&self) -> [&str; 4] {
        [
            &self.received,
            &self.forwarded,
            &self.answer,
            &self.delivered,
        ]
    }
}

struct RelayState {
    /// `register` or `messages`: the route the mutation applies to.
    route: &'static str,
    mutation: Mutation,
    register: Recorded,
    messages: Recorded,
    /// Every exchange, oldest first.
    log: Vec<Exchange>,
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
            log: Vec::new(),
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

    /// Every exchange recorded so far, oldest first.
    fn log(&self) -> Vec<Exchange> {
        self.state.lock().unwrap().log.clone()
    }
}

fn blob_field(route: &str, response: bool) -> &'static str {
    match (route, response) {
        ("register", false) => "r",
        ("register", true) => "r_prime",
        _ => "message",
    }
}

/// Flip bit 0 of byte i of the `86` ciphertext inside a sealed R (`70`) or R' (`78`),
/// keeping every clear field and the encoding valid.
fn flip_sealed(i: usize) -> impl FnOnce(&mut Vec<u8>) {
    move |b| {
        if let Ok(mut r) = SealedRegistration::parse(b) {
            flip(i)(&mut r.sealed);
            *b = r.to_bytes();
        } else if let Ok(mut a) = SealedAnswer::parse(b) {
            flip(i)(&mut a.sealed);
            *b = a.to_bytes();
        }
    }
}

/// Add the version 01 `signature` field (64 bytes, hex) to a register body.
fn add_signature(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut v) => {
            v["signature"] = serde_json::Value::String("00".repeat(64));
            v.to_string()
        }
        Err(_) => body.to_string(),
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
    let (recorded_request, held) = {
        let mut s = state.lock().unwrap();
        let r = if route == "register" {
            &mut s.register
        } else {
            &mut s.messages
        };
        let held = match mutation {
            Mutation::ReleaseHeld => r.held.take(),
            _ => None,
        };
        (r.request.clone(), held)
    };
    let field = blob_field(route, false);
    let sent = match &mutation {
        Mutation::FlipRequest(i) => mutate(&body, field, flip(*i)),
        Mutation::FlipRequestSealed(i) => mutate(&body, field, flip_sealed(*i)),
        Mutation::AddSignatureField => add_signature(&body),
        Mutation::TruncateRequest => mutate(&body, field, truncate),
        Mutation::ReplayRequest => recorded_request.unwrap_or_else(|| body.clone()),
        Mutation::ReleaseHeld => held.unwrap_or_else(|| body.clone()),
        _ => body.clone(),
    };
    if let Mutation::SwapService(to) = &mutation {
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() == 5 {
            path = format!("/{}/{}/{to}/{}", parts[1], parts[2], parts[4]);
        }
    }
    let forwarded = !matches!(mutation, Mutation::DropRequest | Mutation::HoldRequest);
    let (status, answer) = if !forwarded {
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
        if mutation == Mutation::HoldRequest {
            r.held = Some(body.clone());
        }
        let field = blob_field(route, true);
        let out = match &mutation {
            _ if status != 200 => (status, answer.clone()),
            Mutation::FlipResponse(i) => (200, mutate(&answer, field, flip(*i))),
            Mutation::FlipResponseSealed(i) => (200, mutate(&answer, field, flip_sealed(*i))),
            Mutation::TruncateResponse => (200, mutate(&answer, field, truncate)),
            Mutation::ReplayResponse => (200, previous.unwrap_or_else(|| answer.clone())),
            Mutation::WithholdResponse | Mutation::WithholdFirstResponse => (
                502,
                r#"{"error":"withheld","message":"hostile portal"}"#.to_string(),
            ),
            _ => (200, answer.clone()),
        };
        if status == 200 {
            r.response = Some(answer.clone());
        }
        if mutation == Mutation::WithholdFirstResponse {
            s.mutation = Mutation::None;
        }
        s.log.push(Exchange {
            route,
            received: body,
            forwarded: if forwarded { sent } else { String::new() },
            status,
            answer,
            delivered: out.1.clone(),
        });
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
        self.call_with(name, b"ping")
    }

    /// Step 6 on a new card connection: VERIFY of the PIN, then the call `name` with `data`.
    fn call_with(&mut self, name: &str, data: &[u8]) -> Result<flow::Served, FlowError> {
        let client = PortalClient::new(&self.hostile.url).unwrap();
        let call = Call {
            name: name.into(),
            data: data.to_vec(),
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

/// Length of the sealed R for `service`: `70 {80 02, 81 service, 83 key, 86 sealed}`.
fn sealed_r_len(service: &str) -> usize {
    SealedRegistration {
        service_id: service.into(),
        se_ephemeral: [0x04; 65],
        sealed: vec![0; REGISTRATION_BUCKETS[0] + GCM_TAG_LEN],
    }
    .to_bytes()
    .len()
}

/// Length of the sealed R': `78 {80 02, 89 key, 86 sealed}`.
fn sealed_r_prime_len() -> usize {
    SealedAnswer {
        server_ephemeral: [0x04; 65],
        sealed: vec![0; ANSWER_BUCKETS[0] + GCM_TAG_LEN],
    }
    .to_bytes()
    .len()
}

/// What the server answers for a sealed R a portal altered: it does not parse, or names
/// another service than its route, or does not open with the server's key.
const R_TAMPERED: [&str; 4] = [
    "sealed_registration",
    "unsupported_version",
    "malformed_registration",
    "service_mismatch",
];

/// The refusals the server audits (malformed bodies are only counted).
const AUDITED: [&str; 2] = ["sealed_registration", "service_mismatch"];

#[test]
fn a_hostile_portal_tampering_with_r_is_refused_by_the_server_and_opens_nothing() {
    let mut w = World::new();
    let mut audited = 0;
    // Every byte of the clear part of the sealed R, every 4th byte of its ciphertext.
    let len = sealed_r_len("demo");
    let clear = len - REGISTRATION_BUCKETS[0] - GCM_TAG_LEN;
    for i in (0..clear).chain((clear..len).step_by(4)) {
        w.hostile.set("register", Mutation::FlipRequest(i));
        let code = server_code(w.register("demo"));
        assert!(
            R_TAMPERED.contains(&code.as_str()),
            "byte {i} of the sealed R: {code}"
        );
        if i >= clear {
            assert_eq!(code, "sealed_registration", "byte {i} of the sealed R");
        }
        audited += usize::from(AUDITED.contains(&code.as_str()));
    }
    // `70 82 02 60 80 01 02`: version 03 is not spoken (and 01 never downgraded to).
    w.hostile.set("register", Mutation::FlipRequest(6));
    assert_eq!(server_code(w.register("demo")), "unsupported_version");
    // Where version 01 carried sigR in clear: R || sigR are inside the ciphertext, and
    // any change to it (first block, the signature's place, the padding, the GCM tag)
    // makes it not open.
    for i in [0, 100, 400, 511, 512, 527] {
        w.hostile.set("register", Mutation::FlipRequestSealed(i));
        assert_eq!(
            server_code(w.register("demo")),
            "sealed_registration",
            "sealed byte {i}"
        );
        audited += 1;
    }
    // A version 01 body (a `signature` beside R): refused by name, never downgraded to.
    w.hostile.set("register", Mutation::AddSignatureField);
    assert_eq!(server_code(w.register("demo")), "unsupported_version");
    w.hostile.set("register", Mutation::TruncateRequest);
    assert_eq!(server_code(w.register("demo")), "malformed_registration");
    w.hostile.set("register", Mutation::SwapService("other"));
    assert_eq!(server_code(w.register("demo")), "service_mismatch");
    audited += 1;
    // Nothing was registered, and the SE has no channel.
    let audit = w.backend.audit();
    assert!(!audit.iter().any(|d| d == "registered"), "{audit:?}");
    assert!(audit.len() >= audited, "{} audit rows", audit.len());
    w.hostile.set("register", Mutation::None);
    assert_eq!(card_sw(w.call("echo")), Status::NoSecureConnection);
    // A genuine R, then the same R replayed: refused as a replay.
    w.register("demo").unwrap();
    w.hostile.set("register", Mutation::ReplayRequest);
    assert_eq!(server_code(w.register("demo")), "replay");
    assert_eq!(w.backend.audit().last().map(String::as_str), Some("replay"));
    // An R held back, a newer one registered, then the old one delivered: a stale counter.
    w.hostile.set("register", Mutation::HoldRequest);
    assert!(w.register("demo").is_err());
    w.hostile.set("register", Mutation::None);
    w.register("demo").unwrap();
    w.hostile.set("register", Mutation::ReleaseHeld);
    assert_eq!(server_code(w.register("demo")), "stale_counter");
    assert_eq!(
        w.backend.audit().last().map(String::as_str),
        Some("stale_counter")
    );
}

#[test]
fn a_hostile_portal_tampering_with_r_prime_is_refused_by_the_se_and_opens_nothing() {
    let mut w = World::new();
    // Every byte of the clear part of the sealed R', every 5th byte of its ciphertext.
    let len = sealed_r_prime_len();
    let clear = len - ANSWER_BUCKETS[0] - GCM_TAG_LEN;
    for i in (0..clear).chain((clear..len).step_by(5)) {
        w.hostile.set("register", Mutation::FlipResponse(i));
        let sw = card_sw(w.register("demo"));
        assert!(
            [Status::BadServerSignature, Status::IncorrectData].contains(&sw),
            "byte {i} of the sealed R': {sw}"
        );
        if i >= clear {
            assert_eq!(sw, Status::BadServerSignature, "byte {i} of the sealed R'");
        }
    }
    // R' || sigR' are inside: a change anywhere in the ciphertext (the grant's place, the
    // padding, the tag) fails the key confirmation.
    for i in [0, 200, 639, 640, 655] {
        w.hostile.set("register", Mutation::FlipResponseSealed(i));
        assert_eq!(
            card_sw(w.register("demo")),
            Status::BadServerSignature,
            "sealed byte {i}"
        );
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
fn an_r_prime_replayed_to_a_later_r_is_refused() {
    let mut w = World::new();
    // The server answered R1, the portal withheld R'1 (the SE never saw it) and delivers
    // it for R2: R' is bound to the whole R it answers, so it does not open for R2.
    w.hostile.set("register", Mutation::WithholdResponse);
    assert!(w.register("demo").is_err());
    w.hostile.set("register", Mutation::ReplayResponse);
    assert_eq!(card_sw(w.register("demo")), Status::BadServerSignature);
    assert!(w.card.card().state().containers()[0]
        .auth
        .connection
        .is_none());
    let audit = w.backend.audit();
    assert_eq!(
        audit.iter().filter(|d| *d == "registered").count(),
        2,
        "{audit:?}"
    );
    // An R' the SE accepted, replayed to its next R: refused, and the SE's connection
    // stays as it was (the server, which answered the new R, superseded its end of it:
    // one connection per SE and service).
    w.hostile.set("register", Mutation::None);
    w.register("demo").unwrap();
    let connection = |w: &World| {
        let c = &w.card.card().state().containers()[0].auth.connection;
        serde_json::to_value(c.as_ref().expect("a connection")).unwrap()
    };
    let opened = connection(&w);
    w.hostile.set("register", Mutation::ReplayResponse);
    assert_eq!(card_sw(w.register("demo")), Status::BadServerSignature);
    assert_eq!(connection(&w), opened);
    w.hostile.set("register", Mutation::None);
    assert_eq!(server_code(w.call("echo")), "unknown_connection");
    w.register("demo").unwrap();
    let served = w.call("echo").unwrap();
    assert_eq!(served.result.data, b"ping");
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
    // An answer withheld, then delivered late for the next call: the SE takes only the
    // answer to its last up message.
    w.hostile.set("messages", Mutation::None);
    w.register("demo").unwrap();
    w.hostile.set("messages", Mutation::WithholdResponse);
    assert!(w.call("echo").is_err());
    w.hostile.set("messages", Mutation::ReplayResponse);
    assert_eq!(
        card_sw(w.call("provision")),
        Status::MessageAuthenticationFailed
    );
    assert!(
        w.credential_ef().iter().all(|b| *b == 0),
        "a credential was stored"
    );
    // The lost answers broke nothing: the next call on the same connection is served.
    w.hostile.set("messages", Mutation::None);
    let served = w.call("provision").unwrap();
    assert!(served.credential_ef.unwrap().iter().any(|b| *b != 0));
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

/// SECURE SEND of `echo` exactly as a terminal sends it (`80 14 00 00 Lc {81 82} 00`): the
/// card's whole answer.
fn raw_secure_send(t: &mut dyn Transport) -> Vec<u8> {
    let call = Call {
        name: "echo".into(),
        data: b"ping".to_vec(),
    };
    let data = call.body_bytes();
    let mut apdu = vec![0x80, apdu_specs::auth::ins::SECURE_SEND, 0x00, 0x00];
    apdu.push(u8::try_from(data.len()).unwrap());
    apdu.extend_from_slice(&data);
    apdu.push(0x00);
    t.transmit(&apdu).unwrap()
}

/// What a terminal that does not know the PIN learns on a new card connection: the raw
/// answer to SECURE SEND, and the status words of SECURE RECEIVE and GET REGISTRATION.
fn pin_less_probe(w: &mut World) -> (Vec<u8>, Option<Status>, Option<Status>) {
    use reader_client::auth_client;
    let fake_down = apdu_specs::auth::ProtectedMessage {
        cid: [0x11; 16],
        counter: 1,
        ciphertext: vec![0; apdu_specs::auth::MESSAGE_BUCKETS[0] + GCM_TAG_LEN],
    }
    .to_bytes();
    let t = w.t();
    auth_client::select(t).unwrap();
    let send = raw_secure_send(t);
    let receive = auth_client::secure_receive(t, &fake_down).unwrap_err();
    let register = auth_client::get_registration(t, "demo").unwrap_err();
    (send, receive.status(), register.status())
}

#[test]
fn a_terminal_without_the_pin_gets_6982_whether_or_not_a_connection_exists() {
    let mut w = World::new();
    let none = pin_less_probe(&mut w);
    let denied = Some(Status::SecurityStatusNotSatisfied);
    assert_eq!(none, (vec![0x69, 0x82], denied, denied));
    // After a registration (a new card connection: the PIN verified for it is gone), the
    // same answers, byte for byte: the terminal cannot tell whether a connection exists.
    w.register("demo").unwrap();
    assert_eq!(pin_less_probe(&mut w), none);
    // Its service flow stops at SECURE SEND: no up message reaches the portal.
    let before = w.hostile.log().len();
    let call = Call {
        name: "echo".into(),
        data: b"ping".to_vec(),
    };
    w.card.reset().unwrap();
    let sink = &mut std::io::sink();
    let r = flow::service(&mut w.card, &w.client, "demo", &call, None, sink);
    assert_eq!(card_sw(r), Status::SecurityStatusNotSatisfied);
    assert_eq!(
        w.hostile.log().len(),
        before,
        "an up message reached the portal"
    );
    // The connection is untouched: the cardholder's first call is up message 1.
    let served = w.call("echo").unwrap();
    assert_eq!(served.result.data, b"ping");
    let up = w.hostile.log().last().unwrap().received.clone();
    let up: serde_json::Value = serde_json::from_str(&up).unwrap();
    let up = hexfmt::parse(up["message"].as_str().unwrap()).unwrap();
    let up = apdu_specs::auth::ProtectedMessage::parse(&up).unwrap();
    assert_eq!(up.counter, 1);
}

#[test]
fn echo_and_provision_have_the_same_length_on_the_wire() {
    let mut w = World::new();
    w.register("demo").unwrap();
    w.call("echo").unwrap();
    w.call("provision").unwrap();
    // Data of another length within the first bucket: still the same length.
    w.call_with("echo", &[0x55; 150]).unwrap();
    let messages: Vec<Exchange> = w
        .hostile
        .log()
        .into_iter()
        .filter(|e| e.route == "messages")
        .collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    let sealed_len = |body: &str| {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let m = hexfmt::parse(v["message"].as_str().unwrap()).unwrap();
        apdu_specs::auth::ProtectedMessage::parse(&m)
            .unwrap()
            .ciphertext
            .len()
    };
    let bucket = apdu_specs::auth::MESSAGE_BUCKETS[0] + GCM_TAG_LEN;
    for e in &messages {
        assert_eq!(e.status, 200, "{e:?}");
        assert_eq!(e.received.len(), messages[0].received.len(), "up: {e:?}");
        assert_eq!(
            e.delivered.len(),
            messages[0].delivered.len(),
            "down: {e:?}"
        );
        assert_eq!(sealed_len(&e.received), bucket);
        assert_eq!(sealed_len(&e.delivered), bucket);
    }
}

#[test]
fn the_portal_sees_no_identity_counter_scope_or_expiry_in_clear() {
    let mut w = World::new();
    // Everything that crosses the portal: a grant and both calls, a refused SE, a grant
    // that ended, a replay, a stale counter, a tampered R and a tampered up message.
    let granted = w.register("demo").unwrap();
    assert_eq!(granted.scope, ["echo", "provision"]);
    w.call("echo").unwrap();
    w.call("provision").unwrap();
    assert_eq!(card_sw(w.register("denied")), Status::ServiceNotGranted);
    assert_eq!(card_sw(w.register("expired")), Status::ServiceNotGranted);
    w.register("demo").unwrap();
    w.hostile.set("register", Mutation::ReplayRequest);
    assert_eq!(server_code(w.register("demo")), "replay");
    w.hostile.set("register", Mutation::HoldRequest);
    assert!(w.register("demo").is_err());
    w.hostile.set("register", Mutation::None);
    let last = w.register("demo").unwrap();
    w.hostile.set("register", Mutation::ReleaseHeld);
    assert_eq!(server_code(w.register("demo")), "stale_counter");
    w.hostile.set("register", Mutation::FlipRequestSealed(0));
    assert_eq!(server_code(w.register("demo")), "sealed_registration");
    w.hostile.set("register", Mutation::None);
    w.register("demo").unwrap();
    w.hostile.set("messages", Mutation::FlipRequest(60));
    assert!(w.call("echo").is_err());
    w.hostile.set("messages", Mutation::None);

    // What the card would have to hide: its certificate and what is in it, each
    // registration counter it used, and the grant the server gave.
    let auth = w.card.card().state().containers()[0].auth.clone();
    let cert = Certificate::parse(&auth.certificate).unwrap();
    let mut hidden: Vec<(String, Vec<u8>)> = vec![
        ("certificate (7F21)".into(), auth.certificate.clone()),
        ("SE public key".into(), cert.public_key.to_vec()),
        ("EID".into(), cert.eid().to_vec()),
        ("ICCID".into(), cert.iccid().to_vec()),
        ("certificate signature".into(), cert.signature.to_vec()),
        ("scope".into(), b"echo,provision".to_vec()),
    ];
    for e in [granted.expiry, last.expiry] {
        hidden.push((format!("expiry {e}"), e.to_be_bytes().to_vec()));
    }
    assert!(auth.counter >= 8, "counter {}", auth.counter);
    for c in 1..=auth.counter {
        let counter = tlv::build(
            apdu_specs::auth::tag::REGISTRATION_COUNTER,
            &c.to_be_bytes(),
        );
        hidden.push((format!("registration counter TLV {c}"), counter));
    }
    let texts = [
        ("ICCID digits", flow::iccid_digits(&cert.iccid())),
        ("scope", "echo,provision".to_string()),
        ("scope", "provision".to_string()),
        ("expiry", granted.expiry.to_string()),
        ("expiry", last.expiry.to_string()),
    ];
    let log = w.hostile.log();
    assert_eq!(log.len(), 13, "{log:?}");
    for e in &log {
        for body in e.bodies() {
            let upper = body.to_ascii_uppercase();
            for (what, bytes) in &hidden {
                assert!(
                    !upper.contains(&hexfmt::upper(bytes)),
                    "{what} crossed the portal in clear ({} route): {body}",
                    e.route
                );
            }
            for (what, text) in &texts {
                assert!(
                    !body.contains(text.as_str()),
                    "{what} crossed the portal in clear ({} route): {body}",
                    e.route
                );
            }
        }
        // Error messages are for humans, and the portal reads them too: no counter value.
        if e.route != "register" || e.status == 200 {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&e.answer) {
            let message = v["message"].as_str().unwrap_or_default();
            let numbers: Vec<u64> = message
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse().ok())
                .collect();
            assert!(
                !numbers
                    .iter()
                    .any(|n| (1..=u64::from(auth.counter)).contains(n)),
                "an error message names a registration counter: {message}"
            );
        }
    }
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
    let install = |keys: &[&str]| {
        let mut args = vec!["gp"];
        args.extend(keys);
        args.extend(["install-anchor", "--reader", r, "--container", AID_A]);
        args.extend(["--service", "demo", "--server-key", key.as_str()]);
        reader_client(&args, false)
    };
    // With the public test keys the card refuses (6985) and the terminal says what to do.
    let out = install(&[]);
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("6985") && text.contains("reader-client gp put-key --new-key"),
        "{text}"
    );
    // Rotate every key set, then install under the new key.
    let owner = "2122232425262728292A2B2C2D2E2F30";
    let out = reader_client(&["gp", "put-key", "--reader", r, "--new-key", owner], false);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("KVN 30 (SCP03): rotated") && text.contains("KVN 20 (SCP02): rotated"),
        "{text}"
    );
    let out = install(&["--key", owner]);
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
        // Every call needs the container PIN (SECURE SEND answers 6982 without it).
        true,
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
    // The anchors went in under fresh keys, not the public test keys.
    assert!(
        text.contains("gp-keys.json (mode 0600)")
            && text.contains("KVN 30 (SCP03): rotated")
            && text.contains("KVN 20 (SCP02): rotated")
            && text.contains("with the rotated keys"),
        "{text}"
    );
    assert_eq!(text.matches("EnableProfile").count(), 1, "{text}");
    assert!(text.contains("demo ok: 2 container(s)"), "{text}");
}
