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
    self, Call, CallResult, CallStatus, Connection, MutualError, ProtectedMessage, Registration,
    SignedRegistration, SigningKey, VerifyingKey, SIGNATURE_LEN,
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
    /// R, the `71` TLV, hex.
    pub r: String,
    /// sigR, 64 bytes, hex.
    pub signature: String,
}

/// Answer of a registration: R' (granted or refused, always signed).
#[derive(Debug, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// R', the `72` TLV, hex.
    pub r_prime: String,
    /// sigR', 64 bytes, hex.
    pub signature: String,
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

/// The protocol engine: configuration, server key, issuer CA, store, clock.
pub struct Engine {
    config: Config,
    key: SigningKey,
    ca: VerifyingKey,
    store: Arc<dyn Store>,
    clock: Clock,
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

/// The JSON and hex layers of a `register` body: the bytes of R and of sigR, unchecked.
pub fn decode_register_json(body: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ApiError> {
    let req: RegisterRequest = parse_json(body)?;
    let r = parse_hex("r", &req.r)?;
    let signature = parse_hex("signature", &req.signature)?;
    Ok((r, signature))
}

/// R (`71`, strict and canonical) and a 64-byte raw signature; the signature is not verified.
pub fn decode_registration(r: &[u8], signature: &[u8]) -> Result<SignedRegistration, ApiError> {
    let registration = Registration::parse(r).map_err(|e| {
        ApiError::bad_request(
            "malformed_registration",
            format!("R is not a valid registration request (71): {e}"),
        )
    })?;
    let signature: [u8; SIGNATURE_LEN] = signature.try_into().map_err(|_| {
        ApiError::bad_request(
            "malformed_registration",
            format!(
                "the signature has {} bytes; ECDSA P-256 raw r||s has 64",
                signature.len()
            ),
        )
    })?;
    Ok(SignedRegistration {
        registration,
        signature,
    })
}

/// Everything the server refuses with 400 before looking at its state: a `register` body
/// decoded into R and sigR. Pure (no store, clock or key), so the fuzzer drives it.
pub fn parse_register_body(body: &[u8]) -> Result<SignedRegistration, ApiError> {
    let (r, signature) = decode_register_json(body)?;
    decode_registration(&r, &signature)
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
        let malformed =
            |e: ApiError| self.refuse(now, unknown, service, AuditDecision::Malformed, e, None);
        let (r_bytes, sig_bytes) = decode_register_json(body).map_err(malformed)?;
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
        let signed = decode_registration(&r_bytes, &sig_bytes).map_err(malformed)?;
        let cert = &signed.registration.certificate;
        let (eid, iccid) = (cert.eid(), cert.iccid());
        let subject = subject_text(&eid, &iccid);

        if let Err(e) = mutual::server_verify_registration(&self.ca, &signed, service, now) {
            let (decision, err) = verification_error(&e);
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
        let (r_prime, conn) = mutual::server_answer(&self.key, signed, grant).map_err(|e| {
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
        match self.store.commit_registration(&reg) {
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
                return Err(self.refuse(
                    now,
                    subject,
                    service,
                    AuditDecision::StaleCounter,
                    ApiError::new(
                        StatusCode::CONFLICT,
                        "stale_counter",
                        format!("registration counter {got} is not above the last one seen for this container ({last}): an old or cloned request"),
                    ),
                    None,
                ))
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
            r_prime: hex::encode_upper(r_prime.answer.to_bytes()),
            signature: hex::encode_upper(r_prime.signature),
        })
    }

    /// `POST /v1/services/{service}/messages`: opens a call, executes it, seals the result.
    pub fn message(&self, service: &str, body: &[u8]) -> Result<MessageBody, ApiError> {
        let now = (self.clock)();
        let malformed =
            |e: ApiError| self.refuse(now, "-", service, AuditDecision::Malformed, e, None);
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
        let (result, decision, reason, credential) = self.execute(&conn, &plain)?;
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
                let credential = mutual::random_bytes::<CREDENTIAL_LEN>().map_err(|e| {
                    tracing::error!("cannot issue a credential: {e}");
                    ApiError::internal()
                })?;
                let credential = Zeroizing::new(credential);
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
    serde_json::to_vec(c).map(Zeroizing::new).map_err(|e| {
        tracing::error!("cannot serialize a connection: {e}");
        ApiError::internal()
    })
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
        MutualError::CertificateExpired { .. } => (
            AuditDecision::CertificateExpired,
            unauthorized("certificate_expired", e),
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
