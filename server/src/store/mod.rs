//! The server's durable state behind one trait: seen nonces, registration counters,
//! connections and their counters, issued credentials, and the audit log; and their pruning.
//!
//! [`Store`] is synchronous: callers on the async runtime run it in `spawn_blocking`. Each
//! method is one transaction, so a crash (even SIGKILL) leaves either all of a decision or
//! none of it. [`SqliteStore`] is the default; a PostgreSQL store shared by several server
//! instances implements the same trait (the UNIQUE nonce and the compare-and-set of the
//! counters are what make that safe).
//!
//! Forward secrecy at rest: a connection's keys leave the database when the connection is
//! replaced (a new registration of the same container for the same service) or expires
//! ([`Store::prune`]). SQLite runs with `secure_delete` (deleted content is overwritten with
//! zeros) and [`Store::prune`] ends with a `TRUNCATE` checkpoint, so the WAL keeps no old
//! page either.

mod postgres;
mod sqlite;

pub use postgres::{DatabaseUrl, PgOptions, PgStore};
pub use sqlite::{CommitLatency, SqliteOptions, SqliteStore};

use std::fmt;

use zeroize::Zeroizing;

/// A storage failure (the database itself, not a protocol decision).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("the database is in a state this server cannot read: {0}")]
    Corrupt(String),
    #[error("the database lock is poisoned (a previous operation panicked)")]
    Poisoned,
    /// A SQLite write was not carried out: it panicked (and was rolled back), or was lost.
    #[error("SQLite write: {0}")]
    Writer(String),
    #[error(
        "PostgreSQL error: {}; check that the database server is up (its log says more)",
        postgres::describe(.0)
    )]
    Pg(#[from] tokio_postgres::Error),
    /// No connection could be had from the PostgreSQL pool (the message says why).
    #[error("no PostgreSQL connection: {0}")]
    Pool(String),
    /// The database cannot be used at start: a malformed URL, an unreachable server, a
    /// refused login (the message names the fix).
    #[error("{0}")]
    Open(String),
    #[error(
        "database schema version {found} is newer than this server ({known}); upgrade the server"
    )]
    SchemaTooNew { found: i64, known: i64 },
}

/// Why a registration could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("this SE nonce was seen before: the registration request is replayed")]
    ReplayedNonce,
    #[error(
        "registration counter {got} is not above the last one seen ({last}) for this container"
    )]
    StaleCounter { got: u32, last: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the audit log records; stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditDecision {
    Registered,
    Refused,
    Replay,
    StaleCounter,
    Malformed,
    UnknownService,
    ServiceMismatch,
    BadCertificate,
    CertificateExpired,
    BadSignature,
    UnknownConnection,
    Expired,
    AuthenticationFailed,
    CallExecuted,
    CallRefused,
    CallFailed,
    /// The last message of a connection came again (its answer was lost): the stored
    /// answer was sent again, the call not executed again.
    AnswerResent,
    /// A registration over the per-SE rate limit (429); audited once per episode, the
    /// following refusals of the same SE are only counted (see `ratelimit.rs`).
    RateLimited,
    Internal,
}

impl AuditDecision {
    pub const ALL: &'static [AuditDecision] = &[
        AuditDecision::Registered,
        AuditDecision::Refused,
        AuditDecision::Replay,
        AuditDecision::StaleCounter,
        AuditDecision::Malformed,
        AuditDecision::UnknownService,
        AuditDecision::ServiceMismatch,
        AuditDecision::BadCertificate,
        AuditDecision::CertificateExpired,
        AuditDecision::BadSignature,
        AuditDecision::UnknownConnection,
        AuditDecision::Expired,
        AuditDecision::AuthenticationFailed,
        AuditDecision::CallExecuted,
        AuditDecision::CallRefused,
        AuditDecision::CallFailed,
        AuditDecision::AnswerResent,
        AuditDecision::RateLimited,
        AuditDecision::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditDecision::Registered => "registered",
            AuditDecision::Refused => "refused",
            AuditDecision::Replay => "replay",
            AuditDecision::StaleCounter => "stale_counter",
            AuditDecision::Malformed => "malformed",
            AuditDecision::UnknownService => "unknown_service",
            AuditDecision::ServiceMismatch => "service_mismatch",
            AuditDecision::BadCertificate => "bad_certificate",
            AuditDecision::CertificateExpired => "certificate_expired",
            AuditDecision::BadSignature => "bad_signature",
            AuditDecision::UnknownConnection => "unknown_connection",
            AuditDecision::Expired => "expired",
            AuditDecision::AuthenticationFailed => "authentication_failed",
            AuditDecision::CallExecuted => "call_executed",
            AuditDecision::CallRefused => "call_refused",
            AuditDecision::CallFailed => "call_failed",
            AuditDecision::AnswerResent => "answer_resent",
            AuditDecision::RateLimited => "rate_limited",
            AuditDecision::Internal => "internal",
        }
    }

    pub fn parse(text: &str) -> Option<AuditDecision> {
        Self::ALL.iter().copied().find(|d| d.as_str() == text)
    }
}

impl fmt::Display for AuditDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the audit log. `subject` is `EID/ICCID` when known, `-` otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub time: u64,
    pub subject: String,
    pub service: String,
    pub decision: AuditDecision,
    pub reason: String,
    /// Hex CID of the connection concerned, if any.
    pub cid: Option<String>,
}

/// A secure connection as stored. `state` is the serialized server end of the connection
/// (`secure_channel::mutual::Connection`, keys included: never logged, zeroized when dropped);
/// the counters are also kept in their own columns for the compare-and-set.
#[derive(Clone)]
pub struct ConnectionRecord {
    pub cid: [u8; 16],
    pub service: String,
    pub subject: String,
    pub scope: Vec<String>,
    pub expires_at: u64,
    pub state: Zeroizing<Vec<u8>>,
    /// Last up counter accepted (0: none yet).
    pub up_counter: u64,
    /// Last down counter used (0: none yet).
    pub down_counter: u64,
    pub created_at: u64,
}

impl fmt::Debug for ConnectionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionRecord")
            .field("cid", &hex::encode(self.cid))
            .field("service", &self.service)
            .field("subject", &self.subject)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("state", &"<redacted>")
            .field("up_counter", &self.up_counter)
            .field("down_counter", &self.down_counter)
            .finish()
    }
}

/// Everything one accepted registration writes, in one transaction.
#[derive(Debug, Clone)]
pub struct NewRegistration {
    pub nonce: [u8; 16],
    /// EID || ICCID from the certificate.
    pub subject_id: [u8; 26],
    pub counter: u32,
    /// Present when granted.
    pub connection: Option<ConnectionRecord>,
    pub audit: AuditEntry,
}

/// A credential issued by `provision`: only its SHA-256 is kept.
#[derive(Debug, Clone)]
pub struct IssuedCredential {
    pub sha256: [u8; 32],
}

/// The answer to the last message accepted on a connection, kept so that a client whose
/// answer was lost (a crash, a dropped connection) can send the same message again and get
/// the same answer, without the call running twice.
#[derive(Clone, PartialEq, Eq)]
pub struct LastAnswer {
    /// SHA-256 of the up message (`73`) as received.
    pub up_sha256: [u8; 32],
    /// The sealed down message (`73`) answered.
    pub down: Vec<u8>,
}

impl fmt::Debug for LastAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LastAnswer")
            .field("up_sha256", &hex::encode(self.up_sha256))
            .field("down", &format_args!("{} bytes", self.down.len()))
            .finish()
    }
}

/// Everything one executed message writes, in one transaction.
#[derive(Debug, Clone)]
pub struct MessageCommit {
    pub cid: [u8; 16],
    /// The up counter the connection had when the message was opened.
    pub expected_up: u64,
    pub new_up: u64,
    pub new_down: u64,
    /// The connection state after opening and sealing (serialized, secret).
    pub new_state: Zeroizing<Vec<u8>>,
    pub credential: Option<IssuedCredential>,
    /// Replaces the connection's [`LastAnswer`].
    pub answer: LastAnswer,
    pub audit: AuditEntry,
}

/// Row counts, for tests and `server status`-like tools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub nonces: u64,
    pub connections: u64,
    pub credentials: u64,
    pub audit: u64,
}

/// How much one [`Store::prune`] run may delete, and what it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneLimits {
    /// At most this many rows per table per run (connections, nonces, audit; a
    /// connection's last answer goes with it), so a run holds the database briefly.
    pub max_rows: u64,
    /// Nonces seen more than this many seconds ago are deleted. Safe because a replayed R
    /// is also refused by its registration counter (kept per container, never pruned):
    /// every R ever committed has a counter at or below the container's last one.
    pub nonce_retention_secs: u64,
    /// Audit entries older than this many seconds are deleted.
    pub audit_retention_secs: u64,
}

/// What one [`Store::prune`] run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Expired connections deleted (keys included).
    pub connections: u64,
    /// Last answers deleted with them.
    pub last_answers: u64,
    pub nonces: u64,
    pub audit: u64,
    /// Some table reached [`PruneLimits::max_rows`]: more rows may wait for the next run.
    pub more: bool,
    /// The WAL was checkpointed into the database and truncated to zero bytes (false: a
    /// reader held it; the next run tries again).
    pub wal_truncated: bool,
}

/// The storage the server needs. Every method is atomic.
pub trait Store: Send + Sync + 'static {
    /// Records the nonce (UNIQUE: a replay fails with [`CommitError::ReplayedNonce`]), checks
    /// and raises the registration counter of the container, stores the connection if any
    /// (deleting, with their last answers, the connections it replaces: those of the same
    /// subject and service), and appends the audit entry. All or nothing.
    fn commit_registration(&self, reg: &NewRegistration) -> Result<(), CommitError>;

    /// The connection with this CID, if any.
    fn connection(&self, cid: &[u8; 16]) -> Result<Option<ConnectionRecord>, StoreError>;

    /// Compare-and-set of the counters: succeeds (true) only if the stored up counter still
    /// equals `expected_up`, so of two requests carrying the same counter only one passes.
    /// On success also records the credential, the last answer and the audit entry; on
    /// false writes nothing.
    fn commit_message(&self, msg: &MessageCommit) -> Result<bool, StoreError>;

    /// The answer to the last message accepted on this connection, if any.
    fn last_answer(&self, cid: &[u8; 16]) -> Result<Option<LastAnswer>, StoreError>;

    /// Appends one audit entry on its own.
    fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// The last `limit` audit entries, oldest first.
    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    /// How many rows each table holds.
    fn counts(&self) -> Result<StoreCounts, StoreError>;

    /// Deletes, at most `limits.max_rows` per table, the connections expired at `now` (with
    /// their keys and last answers), the nonces and the audit entries older than their
    /// retention; then makes sure no deleted byte stays in the files (secure delete and a
    /// truncating WAL checkpoint for SQLite). Registration counters are kept.
    fn prune(&self, now: u64, limits: &PruneLimits) -> Result<PruneReport, StoreError>;

    /// Commit latency of the write methods since the store was opened, read lock-free (the
    /// metrics scrape calls it on the async runtime); `None` where a store does not measure
    /// it.
    fn commit_latency(&self) -> Option<CommitLatency> {
        None
    }
}

/// How hard SQLite works to keep a commit (`PRAGMA synchronous`, WAL mode either way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync at every commit: a committed grant, nonce or counter survives a power loss.
    #[default]
    Full,
    /// fsync at checkpoints only: a commit survives a crash or SIGKILL of the server, but
    /// the last commits may be lost on power loss or an OS crash (faster under load).
    Normal,
}
