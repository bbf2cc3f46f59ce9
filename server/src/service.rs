//! The server's side of the protocol (mutual-auth.md): registration (R -> R') and
//! protected messages, each one synchronous function from request body to answer.
//!
//! Sans async: the HTTP layer runs these in `spawn_blocking`, since they sign, derive keys
//! and write the database. Every decision is audited; nothing here panics on input.

use std::sync::Arc;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use secure_channel::mutual::{
    self, Call, CallResult, CallStatus, Connection, MutualError, ProtectedMessage,
    SealedRegistration, SignedRegistration, SigningKey, VerifyingKey,
};

use crate::config::Config;
use crate::error::ApiError;
use crate::policy::Decision;
use crate::store::{
    AuditDecision, AuditEntry, CommitError, ConnectionRecord, IssuedCredential, LastAnswer,
    MessageCommit, NewRegistration, Store,
};

/// Where the server reads the time (Unix seconds); tests move it.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(crate::config::unix_now)
}

/// Body of `POST /v1/services/{service}/register`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The sealed R, the `70` TLV, hex.
    pub r: String,
    /// Version 01 sent sigR here, beside R in clear: present means an old client, which
    /// gets a clear error instead of a downgrade.
    #[serde(default)]
    pub signature: Option<String>,
}

/// Answer of a registration: the sealed R' (granted or refused, always signed inside).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterResponse {
    /// The sealed R', the `78` TLV, hex.
    pub r_prime: String,
}

/// Body of `POST /v1/services/{service}/messages` and its answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    /// A protected message, the `73` TLV, hex.
    pub message: String,
}

/// Length of a credential issued by `provision`: 32 bytes from the OS CSPRNG.
pub const CREDENTIAL_LEN: usize = 32;

/// Verified SE certificates kept per instance (about 100 bytes each).
const CERTIFICATE_CACHE_ENTRIES: usize = 100_000;

/// The protocol engine: configuration, server key, issuer CA, store, clock.
pub struct Engine {
    config: Config,
    key: SigningKey,
    ca: VerifyingKey,
    store: Arc<dyn Store>,
    clock: Clock,
    /// Per-SE registration budget (in memory, this instance's).
    registrations: crate::ratelimit::RegistrationLimiter,
    /// Requests that do not parse: counted, not audited.
    malformed: crate::malformed::MalformedCounters,
    /// SE certificates whose CA signature verified (expiry still checked on every use).
    certificates: mutual::CertificateCache,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("services", &self.config.services)
            .finish_non_exhaustive()
    }
}

/// `EID/ICCID` for the audit log: EID in hex, ICCID in digits.
pub fn subject_text(eid: &[u8; 16], iccid: &[u8; 10]) -> String {
    let iccid = apdu_specs::es10::Iccid::from_bytes(iccid)
        .map(|i| i.digits())
        .unwrap_or_else(|_| hex::encode_upper(iccid));
    format!("{}/{}", hex::encode_upper(eid), iccid)
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!("the request body is not the expected JSON object: {e}"),
        )
    })
}

fn parse_hex(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    hex::decode(text.trim()).map_err(|e| {
        ApiError::bad_request(
            "malformed_hex",
            format!("`{field}` is not an even number of hex digits: {e}"),
        )
    })
}

/// Everything the server refuses with 400 before looking at its state or keys: a
/// `register` body decoded into the sealed R (`70`, strict and canonical). Pure (no store,
/// clock or key), so the fuzzer drives it. A version 01 body is refused by name.
pub fn parse_register_body(body: &[u8]) -> Result<SealedRegistration, ApiError> {
    let req: RegisterRequest = parse_json(body)?;
    if req.signature.is_some() {
        return Err(ApiError::bad_request(
            "unsupported_version",
            "this is a protocol version 01 registration (R and its signature in clear); this server speaks only version 02 and never downgrades: update the client (reader-client) and the card",
        ));
    }
    let r = parse_hex("r", &req.r)?;
    SealedRegistration::parse(&r).map_err(|e| {
        let code = match e {
            apdu_specs::auth::AuthError::UnsupportedVersion(_) => "unsupported_version",
            _ => "malformed_registration",
        };
        ApiError::bad_request(
            code,
            format!("R is not a valid sealed registration request (70): {e}"),
        )
    })
}

/// A `messages` body decoded into the protected message (`73`) it carries. Pure, as
/// [`parse_register_body`].
pub fn parse_message_body(body: &[u8]) -> Result<ProtectedMessage, ApiError> {
    let req: MessageBody = parse_json(body)?;
    let bytes = parse_hex("message", &req.message)?;
    ProtectedMessage::parse(&bytes).map_err(|e| {
        ApiError::bad_request(
            "malformed_message",
            format!("not a protected message (73): {e}"),
        )
    })
}

impl Engine {
    /// An engine over `store`. Fails if the configured CA key is not a P-256 point.
    pub fn new(
        config: Config,
        key: SigningKey,
        store: Arc<dyn Store>,
        clock: Clock,
    ) -> Result<Engine, MutualError> {
        let ca = VerifyingKey::from_sec1(&config.issuer_ca_public_key)?;
        Ok(Engine {
            registrations: crate::ratelimit::RegistrationLimiter::new(
                config.registrations_per_minute_per_se,
            ),
            malformed: Default::default(),
            certificates: mutual::CertificateCache::new(CERTIFICATE_CACHE_ENTRIES),
            config,
            key,
            ca,
            store,
            clock,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The server's public key (SEC1 uncompressed), the SE's trust anchor.
    pub fn public_key(&self) -> [u8; 65] {
        self.key.verifying_key().to_sec1()
    }

    /// The engine's clock (Unix seconds).
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    pub fn registration_limiter(&self) -> &crate::ratelimit::RegistrationLimiter {
        &self.registrations
    }

    /// Counts of the requests that did not parse (not audited).
    pub fn malformed(&self) -> &crate::malformed::MalformedCounters {
        &self.malformed
    }

    fn audit(
        &self,
        now: u64,
        subject: &str,
        service: &str,
        decision: AuditDecision,
        reason: impl Into<String>,
        cid: Option<&[u8; 16]>,
    ) {
        let entry = AuditEntry {
            time: now,
            subject: subject.to_owned(),
            service: service.to_owned(),
            decision,
            reason: reason.into(),
            cid: cid.map(hex::encode_upper),
        };
        tracing::info!(
            subject = %entry.subject,
            service = %entry.service,
            decision = %entry.decision,
            cid = entry.cid.as_deref().unwrap_or("-"),
            "{}",
            entry.reason
        );
        if let Err(e) = self.store.audit(&entry) {
            tracing::error!("cannot write the audit log: {e}");
        }
    }

    /// Audits a refusal and returns it as the HTTP error.
    fn refuse(
        &self,
        now: u64,
        subject: &str,
        service: &str,
        decision: AuditDecision,
        err: ApiError,
        cid: Option<&[u8; 16]>,
    ) -> ApiError {
        self.audit(now, subject, service, decision, err.message.clone(), cid);
        err
    }

    /// `POST /v1/services/{service}/register`: checks R and answers a signed R'.
    pub fn register(&self, service: &str, body: &[u8]) -> Result<RegisterResponse, ApiError> {
        let now = (self.clock)();
        let unknown = "-";
        let malformed = |e: ApiError| self.malformed.record("register", service, e);
        let sealed = parse_register_body(body).map_err(malformed)?;
        if !self.config.services.contains_key(service) {
            return Err(self.refuse(
                now,
                unknown,
                service,
                AuditDecision::UnknownService,
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_service",
                    format!("this server offers no service `{service}`; check the service id"),
                ),
                None,
            ));
        }
        if sealed.service_id != service {
            return Err(self.refuse(
                now,
                unknown,
                service,
                AuditDecision::ServiceMismatch,
                ApiError::bad_request(
                    "service_mismatch",
                    format!(
                        "R is for service `{}`, posted to `{service}`",
                        sealed.service_id
                    ),
                ),
                None,
            ));
        }
        let signed = mutual::server_open_registration(&self.key, &sealed).map_err(|e| {
            self.refuse(
                now,
                unknown,
                service,
                AuditDecision::Malformed,
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "sealed_registration",
                    format!("{e}: R was sealed to another server key, or altered on the way"),
                ),
                None,
            )
        })?;
        let cert = &signed.registration.certificate;
        let (eid, iccid) = (cert.eid(), cert.iccid());
        let subject = subject_text(&eid, &iccid);

        if let Err(e) = mutual::server_verify_registration_cached(
            &self.ca,
            &signed,
            service,
            now,
            Some(&self.certificates),
        ) {
            let (decision, err) = verification_error(&e);
            return Err(self.refuse(now, &subject, service, decision, err, None));
        }
        // The per-SE budget, once the SE's signature verified (ratelimit.rs).
        let counter = signed.registration.counter;
        if let Err(limited) = self.registrations.check(&cert.subject, counter, now) {
            let (err, decision) = (limited.error(), AuditDecision::RateLimited);
            if !limited.first {
                return Err(err);
            }
            return Err(self.refuse(now, &subject, service, decision, err, None));
        }

        let r = &signed.registration;
        let grant = match self.config.policy.decide(service, &eid, &iccid, now) {
            Decision::Granted { calls, until } => {
                let expiry = until
                    .min(now.saturating_add(self.config.connection_lifetime_secs))
                    .min(u64::from(cert.expiry));
                mutual::Grant::Granted {
                    scope: calls,
                    expiry,
                }
            }
            Decision::Refused { reason } => {
                return self.answer(
                    now,
                    &signed,
                    &subject,
                    service,
                    mutual::Grant::Refused,
                    reason,
                );
            }
        };
        let reason = match &grant {
            mutual::Grant::Granted { scope, expiry } => {
                format!(
                    "granted {} until {expiry} (counter {})",
                    scope.join(","),
                    r.counter
                )
            }
            mutual::Grant::Refused => String::new(),
        };
        self.answer(now, &signed, &subject, service, grant, reason)
    }

    /// Signs R', stores nonce, counter, connection and audit in one transaction.
    fn answer(
        &self,
        now: u64,
        signed: &SignedRegistration,
        subject: &str,
        service: &str,
        grant: mutual::Grant,
        reason: String,
    ) -> Result<RegisterResponse, ApiError> {
        let granted = matches!(grant, mutual::Grant::Granted { .. });
        let (r_prime, conn) =
            mutual::server_answer(&self.key, signed, grant, now).map_err(|e| {
                tracing::error!("cannot build R': {e}");
                ApiError::internal()
            })?;
        let r = &signed.registration;
        let connection = match &conn {
            Some(c) => Some(ConnectionRecord {
                cid: c.cid(),
                service: service.to_owned(),
                subject: subject.to_owned(),
                scope: c.scope().to_vec(),
                expires_at: c.expiry(),
                state: serialize_connection(c)?,
                up_counter: c.received(),
                down_counter: c.sent(),
                created_at: now,
            }),
            None => None,
        };
        let decision = if granted {
            AuditDecision::Registered
        } else {
            AuditDecision::Refused
        };
        let cid = conn.as_ref().map(|c| c.cid());
        let audit = AuditEntry {
            time: now,
            subject: subject.to_owned(),
            service: service.to_owned(),
            decision,
            reason: reason.clone(),
            cid: cid.as_ref().map(hex::encode_upper),
        };
        let reg = NewRegistration {
            nonce: r.se_nonce,
            subject_id: r.certificate.subject,
            counter: r.counter,
            connection,
            audit,
        };
        let committed = self.store.commit_registration(&reg);
        self.registrations
            .settle(&r.certificate.subject, r.counter, committed.is_ok());
        match committed {
            Ok(()) => {}
            Err(CommitError::ReplayedNonce) => {
                return Err(self.refuse(
                    now,
                    subject,
                    service,
                    AuditDecision::Replay,
                    ApiError::new(
                        StatusCode::CONFLICT,
                        "replay",
                        "this registration request was seen before (SE nonce already used); ask the SE for a fresh one (GET REGISTRATION)",
                    ),
                    None,
                ))
            }
            Err(CommitError::StaleCounter { got, last }) => {
                // The counters go to the audit only: the answer crosses the portal, and
                // version 02 seals the counter so the portal cannot follow a card by it.
                self.audit(
                    now,
                    subject,
                    service,
                    AuditDecision::StaleCounter,
                    format!("registration counter {got} is not above the last one seen for this container ({last}): an old or cloned request"),
                    None,
                );
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "stale_counter",
                    "the registration counter is not above the last one seen for this container: an old or cloned request; ask the SE for a fresh one (GET REGISTRATION)",
                ));
            }
            Err(CommitError::Store(e)) => {
                tracing::error!("cannot commit the registration: {e}");
                return Err(ApiError::internal());
            }
        }
        tracing::info!(
            subject,
            service,
            decision = %decision,
            cid = cid.map(hex::encode_upper).as_deref().unwrap_or("-"),
            "{reason}"
        );
        Ok(RegisterResponse {
            r_prime: hex::encode_upper(r_prime.to_bytes()),
        })
    }

    /// `POST /v1/services/{service}/messages`: opens a call, executes it, seals the result.
    pub fn message(&self, service: &str, body: &[u8]) -> Result<MessageBody, ApiError> {
        let now = (self.clock)();
        let malformed = |e: ApiError| self.malformed.record("messages", service, e);
        let msg = parse_message_body(body).map_err(malformed)?;
        let record = match self.store.connection(&msg.cid) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err(self.refuse(
                    now,
                    "-",
                    service,
                    AuditDecision::UnknownConnection,
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "unknown_connection",
                        "no secure connection has this connection id; register first",
                    ),
                    Some(&msg.cid),
                ))
            }
            Err(e) => {
                tracing::error!("cannot read the connection: {e}");
                return Err(ApiError::internal());
            }
        };
        let subject = record.subject.clone();
        let cid = record.cid;
        if record.service != service {
            return Err(self.refuse(
                now,
                &subject,
                service,
                AuditDecision::ServiceMismatch,
                ApiError::bad_request(
                    "service_mismatch",
                    format!(
                        "this connection belongs to service `{}`, not `{service}`",
                        record.service
                    ),
                ),
                Some(&cid),
            ));
        }
        let mut conn: Connection = deserialize_connection(&record)?;
        if let Err(e) = conn.check_fresh(now) {
            return Err(self.refuse(
                now,
                &subject,
                service,
                AuditDecision::Expired,
                ApiError::new(StatusCode::FORBIDDEN, "expired", e.to_string()),
                Some(&cid),
            ));
        }
        let up_sha256 = sha256(&msg.to_bytes());
        if msg.counter == record.up_counter {
            if let Some(down) = self.resend(&cid, &up_sha256)? {
                self.audit(
                    now,
                    &subject,
                    service,
                    AuditDecision::AnswerResent,
                    format!(
                        "message {} came again (its answer was lost): the same answer, the call not run again",
                        msg.counter
                    ),
                    Some(&cid),
                );
                return Ok(MessageBody {
                    message: hex::encode_upper(down),
                });
            }
        }
        let expected_up = conn.received();
        let plain = conn.open(&msg).map_err(|e| {
            self.refuse(
                now,
                &subject,
                service,
                AuditDecision::AuthenticationFailed,
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "authentication_failed",
                    e.to_string(),
                ),
                Some(&cid),
            )
        })?;
        let (result, decision, mut reason, credential) = self.execute(&conn, &plain)?;
        if expected_up == 0 {
            // The first up message that opens is the SE's key confirmation: until then the
            // connection carried nothing.
            reason.push_str(" (first message: the SE confirmed the session keys)");
        }
        let sealed = conn.seal_result(&result).map_err(|e| {
            tracing::error!("cannot seal the result: {e}");
            ApiError::internal()
        })?;
        let commit = MessageCommit {
            cid,
            expected_up,
            new_up: conn.received(),
            new_down: conn.sent(),
            new_state: serialize_connection(&conn)?,
            credential,
            answer: LastAnswer {
                up_sha256,
                down: sealed.to_bytes(),
            },
            audit: AuditEntry {
                time: now,
                subject: subject.clone(),
                service: service.to_owned(),
                decision,
                reason: reason.clone(),
                cid: Some(hex::encode_upper(cid)),
            },
        };
        match self.store.commit_message(&commit) {
            Ok(true) => {}
            Ok(false) => {
                return Err(self.refuse(
                    now,
                    &subject,
                    service,
                    AuditDecision::AuthenticationFailed,
                    ApiError::new(
                        StatusCode::CONFLICT,
                        "replay",
                        "another message with this counter was accepted first (replayed or concurrent message)",
                    ),
                    Some(&cid),
                ))
            }
            Err(e) => {
                tracing::error!("cannot commit the message: {e}");
                return Err(ApiError::internal());
            }
        }
        tracing::info!(subject, service, decision = %decision, cid = hex::encode_upper(cid), "{reason}");
        Ok(MessageBody {
            message: hex::encode_upper(sealed.to_bytes()),
        })
    }

    /// The stored answer when `up_sha256` is the last message accepted on the connection:
    /// an exact copy only (same bytes, hence same counter and tag), so nothing new is
    /// revealed and the SE, which accepts each down counter once, takes it at most once.
    fn resend(&self, cid: &[u8; 16], up_sha256: &[u8; 32]) -> Result<Option<Vec<u8>>, ApiError> {
        match self.store.last_answer(cid) {
            Ok(Some(last)) if &last.up_sha256 == up_sha256 => Ok(Some(last.down)),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::error!("cannot read the last answer: {e}");
                Err(ApiError::internal())
            }
        }
    }

    /// Runs one authenticated call. Refusals and failures are sealed answers (status 01/02),
    /// not HTTP errors: the SE learns them authenticated, and the counters stay in step.
    #[allow(clippy::type_complexity)]
    fn execute(
        &self,
        conn: &Connection,
        plain: &[u8],
    ) -> Result<(CallResult, AuditDecision, String, Option<IssuedCredential>), ApiError> {
        let answer = |status, data: &str| CallResult {
            status,
            data: data.as_bytes().to_vec(),
            credential: None,
        };
        let call = match Call::parse(plain) {
            Ok(c) => c,
            Err(e) => {
                let why = format!("the call (74) does not decode: {e}");
                return Ok((
                    answer(CallStatus::Failed, &why),
                    AuditDecision::CallFailed,
                    why,
                    None,
                ));
            }
        };
        if conn.check_scope(&call.name).is_err() {
            let why = format!(
                "call `{}` is outside the granted scope ({})",
                call.name,
                conn.scope().join(",")
            );
            return Ok((
                answer(CallStatus::Refused, &why),
                AuditDecision::CallRefused,
                why,
                None,
            ));
        }
        match call.name.as_str() {
            "echo" => Ok((
                CallResult {
                    status: CallStatus::Ok,
                    data: call.data.clone(),
                    credential: None,
                },
                AuditDecision::CallExecuted,
                format!("echo of {} bytes", call.data.len()),
                None,
            )),
            "provision" => {
                // Derived from the connection and the message counter, never drawn: if a
                // restored database makes the server run this message again, it seals the
                // same plaintext under the same (key, nonce), never a second one.
                let credential = conn.derive_credential(conn.received()).map_err(|e| {
                    tracing::error!("cannot derive a credential: {e}");
                    ApiError::internal()
                })?;
                let sha256 = sha256(credential.as_slice());
                Ok((
                    CallResult {
                        status: CallStatus::Ok,
                        data: Vec::new(),
                        credential: Some(credential.to_vec()),
                    },
                    AuditDecision::CallExecuted,
                    format!(
                        "provisioned a {CREDENTIAL_LEN}-byte credential, SHA-256 {}",
                        hex::encode_upper(sha256)
                    ),
                    Some(IssuedCredential { sha256 }),
                ))
            }
            other => {
                let why = format!("this server does not execute call `{other}`");
                Ok((
                    answer(CallStatus::Refused, &why),
                    AuditDecision::CallRefused,
                    why,
                    None,
                ))
            }
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn serialize_connection(c: &Connection) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    // Room for the whole state at once: a growing Vec would leave copies of the keys in
    // freed memory that nothing zeroizes (a state is well under 2 KiB: keys, CID, scope).
    let mut out = Zeroizing::new(Vec::with_capacity(4096));
    serde_json::to_writer(&mut *out, c).map_err(|e| {
        tracing::error!("cannot serialize a connection: {e}");
        ApiError::internal()
    })?;
    Ok(out)
}

fn deserialize_connection(record: &ConnectionRecord) -> Result<Connection, ApiError> {
    let conn: Connection = serde_json::from_slice(&record.state).map_err(|e| {
        tracing::error!(
            cid = hex::encode_upper(record.cid),
            "stored connection unreadable: {e}"
        );
        ApiError::internal()
    })?;
    if conn.cid() != record.cid || conn.received() != record.up_counter {
        tracing::error!(
            cid = hex::encode_upper(record.cid),
            "stored connection disagrees with its row"
        );
        return Err(ApiError::internal());
    }
    Ok(conn)
}

/// How a failed check of R is answered and audited.
fn verification_error(e: &MutualError) -> (AuditDecision, ApiError) {
    let unauthorized =
        |code, e: &MutualError| ApiError::new(StatusCode::UNAUTHORIZED, code, e.to_string());
    match e {
        MutualError::BadCertificateSignature | MutualError::WrongKeyUsage(_) => (
            AuditDecision::BadCertificate,
            unauthorized("bad_certificate", e),
        ),
        // No dates in the answer: the portal reads it, and the certificate's expiry would
        // help it tell SEs apart.
        MutualError::CertificateExpired { .. } => (
            AuditDecision::CertificateExpired,
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "certificate_expired",
                "the SE certificate has expired; the card issuer must renew it",
            ),
        ),
        MutualError::BadSignature(_) => (
            AuditDecision::BadSignature,
            unauthorized("bad_signature", e),
        ),
        MutualError::WrongService { .. } => (
            AuditDecision::ServiceMismatch,
            ApiError::bad_request(
                "service_mismatch",
                format!("{e}: R names another service than the URL"),
            ),
        ),
        MutualError::InvalidPublicKey(_) => (
            AuditDecision::Malformed,
            ApiError::bad_request("malformed_registration", e.to_string()),
        ),
        other => (
            AuditDecision::Malformed,
            ApiError::bad_request("malformed_registration", other.to_string()),
        ),
    }
}
