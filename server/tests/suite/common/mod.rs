//! Test harness: an in-process server on an ephemeral loopback port, a movable clock, a
//! fake SE built from the shared crypto, and a small HTTP client. The whole-system tests and
//! benches in `tests/` (which add the portal) include this file too.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use secure_channel::mutual::{
    self, Call, CallResult, Certificate, Connection, PendingRegistration, ProtectedMessage,
    SealedAnswer, SealedRegistration, ServerAnswer, SigningKey, VerifyingKey, SUBJECT_LEN,
};
use server::config::{ConfigFile, GrantFile, ServiceFile, Until};
use server::store::Store;
use server::{Config, Engine, Overrides, SqliteStore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The test's "now" (Unix seconds); the server reads it through its clock.
pub const NOW: u64 = 1_800_000_000;
pub const SERVICE: &str = "demo";
/// A second configured service, to swap service ids.
pub const OTHER_SERVICE: &str = "other";
/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(30);

/// The issuer CA and the policy of a test world.
pub struct World {
    pub ca: SigningKey,
    pub dir: tempfile::TempDir,
    pub clock: Arc<AtomicU64>,
    pub grants: Vec<GrantFile>,
    pub max_body_bytes: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    /// How the store is opened (durability, group commit).
    pub sqlite: server::store::SqliteOptions,
    /// `registrations_per_minute_per_se`; the harness default is `Some(0)`, unlimited (the
    /// benchmarks register one SE in a loop).
    pub registrations_per_minute_per_se: Option<u32>,
    /// `prune_interval` (the maintenance task).
    pub prune_interval: Option<String>,
}

impl World {
    /// A CA, a data directory with a server key, and a clock at [`NOW`].
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        server::keyfile::create_key(dir.path()).expect("server key");
        World {
            ca: SigningKey::generate().expect("CA key"),
            dir,
            clock: Arc::new(AtomicU64::new(NOW)),
            grants: Vec::new(),
            max_body_bytes: None,
            request_timeout_ms: None,
            sqlite: server::store::SqliteOptions::default(),
            registrations_per_minute_per_se: Some(0),
            prune_interval: None,
        }
    }

    /// Grants `service` to every SE of the CA until `until`.
    pub fn grant_all(mut self, until: u64) -> World {
        self.grants.push(GrantFile {
            service: SERVICE.into(),
            eid: "*".into(),
            iccid: None,
            calls: None,
            until: Until::Unix(until),
        });
        self
    }

    pub fn grant(mut self, g: GrantFile) -> World {
        self.grants.push(g);
        self
    }

    pub fn set_now(&self, now: u64) {
        self.clock.store(now, Ordering::SeqCst);
    }

    pub fn config(&self) -> Config {
        let mut services = std::collections::BTreeMap::new();
        services.insert(
            SERVICE.to_string(),
            ServiceFile {
                calls: vec!["echo".into(), "provision".into()],
            },
        );
        services.insert(
            OTHER_SERVICE.to_string(),
            ServiceFile {
                calls: vec!["echo".into()],
            },
        );
        let file = ConfigFile {
            listen: Some("127.0.0.1:0".into()),
            issuer_ca_public_key: Some(hex::encode(self.ca.verifying_key().to_sec1())),
            max_body_bytes: self.max_body_bytes,
            request_timeout_ms: self.request_timeout_ms,
            connection_lifetime_secs: None,
            durability: None,
            prune_interval: self.prune_interval.clone(),
            prune_max_rows: None,
            nonce_retention: None,
            audit_retention: None,
            registrations_per_minute_per_se: self.registrations_per_minute_per_se,
            services,
            grants: self
                .grants
                .iter()
                .map(|g| GrantFile {
                    service: g.service.clone(),
                    eid: g.eid.clone(),
                    iccid: g.iccid.clone(),
                    calls: g.calls.clone(),
                    until: g.until.clone(),
                })
                .collect(),
            ..ConfigFile::default()
        };
        Config::from_parts(file, &Overrides::default()).expect("test config")
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join(server::keyfile::DB_FILE)
    }

    /// Starts a server on an ephemeral loopback port over the world's data directory.
    pub async fn start_server(&self) -> TestServer {
        let store: Arc<SqliteStore> = Arc::new(
            SqliteStore::open_with_options(&self.db_path(), self.sqlite).expect("open database"),
        );
        let key = server::keyfile::load_key(self.dir.path()).expect("load key");
        let clock = self.clock.clone();
        let config = self.config();
        let header_timeout = config.request_timeout;
        let engine = Engine::new(
            config,
            key,
            store.clone() as Arc<dyn Store>,
            Arc::new(move || clock.load(Ordering::SeqCst)),
        )
        .expect("engine");
        let public = engine.public_key();
        let engine = Arc::new(engine);
        let router = server::router(engine.clone());
        let (url, stop, task) = spawn_http(router, header_timeout, |l, r, t, s| {
            Box::pin(async move {
                let _ = server::serve(l, r, t, s).await;
            })
        })
        .await;
        TestServer {
            url,
            store,
            engine,
            public: VerifyingKey::from_sec1(&public).expect("server public key"),
            stop: Some(stop),
            task: Some(task),
        }
    }
}

/// How to serve a router until the given future completes (`server::serve`, `portal::serve`).
pub type ServeFn = fn(
    tokio::net::TcpListener,
    axum::Router,
    Duration,
    std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Serves `router` on an ephemeral loopback port: (base URL, stop sender, task).
pub async fn spawn_http(
    router: axum::Router,
    header_timeout: Duration,
    serve: ServeFn,
) -> (String, oneshot::Sender<()>, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        router,
        header_timeout,
        Box::pin(async move {
            let _ = rx.await;
        }),
    ));
    (format!("http://{addr}"), tx, task)
}

/// A running in-process server.
pub struct TestServer {
    pub url: String,
    pub store: Arc<SqliteStore>,
    /// The engine behind the routes (its counters, its maintenance).
    pub engine: Arc<Engine>,
    pub public: VerifyingKey,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Graceful stop; waits (bounded) until the server task has ended.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(WAIT, t)
                .await
                .expect("server stops in time")
                .expect("server task");
        }
    }
}

/// A secure element as the card would act, from the shared crypto.
pub struct FakeSe {
    pub key: SigningKey,
    pub cert: Certificate,
    pub counter: u32,
}

/// EID of the fake SEs (32 hex digits) and a container's ICCID.
pub const EID_HEX: &str = "89049032123451234512345678901235";
pub const ICCID_DIGITS: &str = "89000123456789012341";

pub fn subject(eid_hex: &str, iccid_digits: &str) -> [u8; SUBJECT_LEN] {
    let mut s = [0u8; SUBJECT_LEN];
    let eid = hex::decode(eid_hex).expect("eid hex");
    s[..16].copy_from_slice(&eid);
    let iccid = apdu_specs::es10::Iccid::from_digits(iccid_digits).expect("iccid");
    s[16..].copy_from_slice(iccid.as_bytes());
    s
}

impl FakeSe {
    pub fn new(ca: &SigningKey) -> FakeSe {
        FakeSe::with_subject(ca, subject(EID_HEX, ICCID_DIGITS))
    }

    pub fn with_subject(ca: &SigningKey, subject: [u8; SUBJECT_LEN]) -> FakeSe {
        let key = SigningKey::generate().expect("SE key");
        let cert = mutual::issue_certificate(
            ca,
            &[0x01],
            "VSE test CA",
            subject,
            (NOW + 10 * 365 * 86_400) as u32,
            &key.verifying_key(),
        )
        .expect("certificate");
        FakeSe {
            key,
            cert,
            counter: 0,
        }
    }

    /// GET REGISTRATION: R with a fresh nonce and the next counter, sealed to `server`.
    pub fn registration(&mut self, service: &str, server: &VerifyingKey) -> Reg {
        self.counter += 1;
        self.registration_with_counter(service, server, self.counter)
    }

    /// R with a given counter (an old or cloned card's).
    pub fn registration_with_counter(
        &self,
        service: &str,
        server: &VerifyingKey,
        counter: u32,
    ) -> Reg {
        let (pending, sealed) =
            mutual::se_build_registration(&self.key, &self.cert, service, counter, server)
                .expect("registration");
        Reg { pending, sealed }
    }
}

/// What the SE keeps and what it sends for one registration.
pub struct Reg {
    pub pending: PendingRegistration,
    pub sealed: SealedRegistration,
}

/// The JSON body of a registration.
pub fn register_body(reg: &Reg) -> serde_json::Value {
    serde_json::json!({ "r": hex::encode(reg.sealed.to_bytes()) })
}

/// Parses a 200 registration answer into the sealed R'.
pub fn parse_answer(v: &serde_json::Value) -> SealedAnswer {
    let r = hex::decode(v["r_prime"].as_str().expect("r_prime")).expect("hex");
    SealedAnswer::parse(&r).expect("sealed R' parses")
}

/// The SE's view of an answer: authenticated R' (grant, scope, expiry inside).
pub fn open_answer(reg: &Reg, server_pub: &VerifyingKey, rp: &SealedAnswer) -> ServerAnswer {
    mutual::se_verify_answer(&reg.pending, server_pub, rp)
        .expect("the SE authenticates R'")
        .answer()
        .answer
        .clone()
}

/// A protected message as the messages route takes it.
pub fn message_body(m: &ProtectedMessage) -> serde_json::Value {
    serde_json::json!({ "message": hex::encode(m.to_bytes()) })
}

pub fn parse_message(v: &serde_json::Value) -> ProtectedMessage {
    let bytes = hex::decode(v["message"].as_str().expect("message")).expect("hex");
    ProtectedMessage::parse(&bytes).expect("73 parses")
}

/// HTTP answer: status and JSON (Null when the body is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: serde_json::Value,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .expect("client")
}

pub async fn post_raw(base: &str, path: &str, body: Vec<u8>) -> Answer {
    post_via(&client(), base, path, body).await
}

/// [`post_raw`] on a given client (keeps its connections alive between requests).
pub async fn post_via(client: &reqwest::Client, base: &str, path: &str, body: Vec<u8>) -> Answer {
    let resp = client
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    Answer {
        status,
        json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    }
}

pub async fn post(base: &str, path: &str, body: &serde_json::Value) -> Answer {
    post_raw(base, path, serde_json::to_vec(body).expect("json")).await
}

pub fn register_path(service: &str) -> String {
    format!("/v1/services/{service}/register")
}

pub fn messages_path(service: &str) -> String {
    format!("/v1/services/{service}/messages")
}

/// Registers and opens the SE's end of the connection (asserting a grant).
pub async fn register_ok(base: &str, se: &mut FakeSe, server_pub: &VerifyingKey) -> Connection {
    register_ok_at(base, se, server_pub, NOW).await
}

/// [`register_ok`] with the SE's clock at `now`.
pub async fn register_ok_at(
    base: &str,
    se: &mut FakeSe,
    server_pub: &VerifyingKey,
    now: u64,
) -> Connection {
    let reg = se.registration(SERVICE, server_pub);
    let a = post(base, &register_path(SERVICE), &register_body(&reg)).await;
    assert_eq!(a.status, 200, "registration: {:?}", a.json);
    let rp = parse_answer(&a.json);
    mutual::se_accept_answer(&reg.pending, server_pub, &rp, now)
        .expect("SE accepts R'")
        .connection
}

/// Sends one call and opens the answer (asserting 200).
pub async fn call_ok(base: &str, conn: &mut Connection, name: &str, data: &[u8]) -> CallResult {
    let m = conn
        .seal_call(&Call {
            name: name.into(),
            data: data.to_vec(),
        })
        .expect("seal");
    let a = post(base, &messages_path(SERVICE), &message_body(&m)).await;
    assert_eq!(a.status, 200, "call {name}: {:?}", a.json);
    conn.open_result(&parse_message(&a.json))
        .expect("SE opens the result")
}

/// The audit decisions recorded so far, in order.
pub fn decisions(store: &dyn Store) -> Vec<String> {
    store
        .audit_log(10_000)
        .expect("audit log")
        .into_iter()
        .map(|e| e.decision.as_str().to_string())
        .collect()
}

/// In a `GET /metrics` text (Prometheus format): the value of the one sample whose line
/// starts with `name{` (or is `name value`) and has every label of `labels`, in any order.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Asserts an error answer: status, machine code, and a non-empty message.
pub fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{:?}", a.json);
    assert_eq!(a.json["error"], code, "{:?}", a.json);
    assert!(
        a.json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{:?}",
        a.json
    );
}

pub fn data_dir(w: &World) -> &Path {
    w.dir.path()
}
