//! The shared store: PostgreSQL through `tokio-postgres` and a `deadpool-postgres` pool, for
//! one or several server instances on one database.
//!
//! Sync over async: [`Store`] is synchronous and the engine calls it on tokio's blocking
//! threads (`spawn_blocking`), so each method runs its async body with [`Handle::block_on`]
//! on the runtime that drives the pool's connections. Two ways to get that runtime:
//! - [`PgStore::connect`] (async) shares the caller's runtime: the connections run on its
//!   worker threads. [`PgStore::open`] does the same when it is called on a thread of a
//!   multi-thread runtime that may block (a `spawn_blocking` thread).
//! - Elsewhere (no runtime, e.g. `server run` before its HTTP runtime exists, `server audit`,
//!   plain tests) [`PgStore::open`] builds a small runtime of its own, one worker thread that
//!   drives the connections, shut down when the store is dropped.
//!
//! Either way, never call a method from an async task: tokio refuses to block a thread that
//! drives tasks ("Cannot start a runtime from within a runtime").
//!
//! The guarantees are SQLite's, across processes: every method is one transaction (READ
//! COMMITTED); a nonce is accepted once (primary key: SQLSTATE 23505 is
//! [`CommitError::ReplayedNonce`]); a registration counter only moves up (`INSERT ... ON
//! CONFLICT DO UPDATE ... WHERE last_counter < excluded.last_counter`, which locks the
//! container's row and sees the latest committed counter); a message counter is a
//! compare-and-set (`UPDATE ... WHERE up_counter = $expected`, re-checked after a concurrent
//! update). A transaction that PostgreSQL aborts on a serialization failure or a deadlock
//! (SQLSTATE 40001, 40P01) is run again, a bounded number of times.
//!
//! TLS (rustls, [`PgTls`]): the URL's `sslmode` (`disable`, `prefer`, `require`; `verify-full`
//! is `require`, which always verifies the certificate and the host name) and a CA file
//! ([`DatabaseUrl::with_ca_file`]). A host off loopback needs `sslmode=require`, or an
//! explicit `sslmode=disable`: [`DatabaseUrl::parse`] refuses anything else.
//!
//! Forward secrecy at rest differs from SQLite's: PostgreSQL has no `secure_delete`, so the
//! bytes of a deleted connection stay in heap pages until VACUUM (autovacuum) reuses them and
//! in WAL segments until they are recycled; nothing at the SQL level replaces the truncating
//! checkpoint. Encrypt the database's disk and keep its WAL archive short (server/README.md).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime as PoolRuntime,
    TimeoutType,
};
use futures_util::future::{join, join3, join4};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use zeroize::Zeroizing;

use super::sqlite::Stats;
use super::*;

/// The schema, one migration per version, in order. Each runs once, in the transaction that
/// records its version in `schema_migrations`; a released migration is never edited, a
/// change is a new one.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "
CREATE TABLE nonces (
    nonce   bytea PRIMARY KEY,
    seen_at bigint NOT NULL
);
CREATE TABLE registration_counters (
    subject      bytea PRIMARY KEY,
    last_counter bigint NOT NULL
);
CREATE TABLE connections (
    cid          bytea PRIMARY KEY,
    service      text NOT NULL,
    subject      text NOT NULL,
    scope        text NOT NULL,
    expires_at   bigint NOT NULL,
    state        bytea NOT NULL,
    up_counter   bigint NOT NULL,
    down_counter bigint NOT NULL,
    created_at   bigint NOT NULL
);
CREATE TABLE last_answers (
    cid       bytea PRIMARY KEY,
    up_sha256 bytea NOT NULL,
    down      bytea NOT NULL
);
CREATE TABLE credentials (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cid       bytea NOT NULL,
    subject   text NOT NULL,
    service   text NOT NULL,
    issued_at bigint NOT NULL,
    sha256    bytea NOT NULL
);
CREATE TABLE audit (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time     bigint NOT NULL,
    subject  text NOT NULL,
    service  text NOT NULL,
    decision text NOT NULL,
    reason   text NOT NULL,
    cid      text
);
CREATE INDEX connections_by_subject ON connections (subject, service);
CREATE INDEX connections_by_expiry ON connections (expires_at);
CREATE INDEX nonces_by_time ON nonces (seen_at);
CREATE INDEX audit_by_time ON audit (time);
",
)];

/// The newest schema version this server knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Key of the transaction-scoped advisory lock held while migrating, so two instances that
/// start together migrate one after the other (any constant, the same in every instance).
const MIGRATION_LOCK: i64 = 0x5345_5256_4552_0001;

/// How many times one method's transaction runs at most when PostgreSQL aborts it on a
/// serialization failure or a deadlock.
const MAX_ATTEMPTS: u32 = 5;

const URL_FORM: &str = "write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME, or leave `database` out to use the embedded SQLite database DIR/server.db";

/// What the URL's `sslmode` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DatabaseTls {
    /// No `sslmode`: as `prefer`.
    Unset,
    /// `sslmode=disable`: plain TCP, even off loopback (said explicitly).
    Disable,
    /// `sslmode=prefer`: TLS when a CA file is set and the server offers it, else plain;
    /// loopback only (an attacker on the path could refuse TLS).
    Prefer,
    /// `sslmode=require` (or `verify-full`): TLS or no connection, the certificate verified
    /// against the CA file or the system's CAs, its host name included.
    Require,
}

/// A PostgreSQL URL as configured (`database` in server.toml, `--database`), parsed, and
/// the CA file that verifies the server's certificate (`database_ca_file`). Its password
/// is never shown: `Display` prints `postgres://USER@HOST:PORT/DBNAME`, `Debug` that and
/// the TLS settings.
#[derive(Clone)]
pub struct DatabaseUrl {
    config: tokio_postgres::Config,
    shown: String,
    tls: DatabaseTls,
    ca_file: Option<PathBuf>,
}

impl DatabaseUrl {
    /// Parses `postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME` (query options such as
    /// `?connect_timeout=5` are tokio-postgres's; `sslmode` is one of `disable`, `prefer`,
    /// `require`, `verify-full`) and refuses a host off loopback without
    /// `sslmode=require` or an explicit `sslmode=disable`. The error never repeats the text.
    pub fn parse(text: &str) -> Result<DatabaseUrl, StoreError> {
        let text = text.trim();
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Err(StoreError::Open(format!(
                "the database URL does not start with postgres://; {URL_FORM}"
            )));
        }
        let (text, tls) = take_sslmode(text)?;
        let config = tokio_postgres::Config::from_str(&text).map_err(|e| {
            StoreError::Open(format!(
                "the database URL is malformed ({}); {URL_FORM}",
                describe(&e)
            ))
        })?;
        if config.get_hosts().is_empty() {
            return Err(StoreError::Open(format!(
                "the database URL names no host; {URL_FORM}"
            )));
        }
        if config.get_dbname().is_none_or(str::is_empty) {
            return Err(StoreError::Open(format!(
                "the database URL names no database (the /DBNAME part); {URL_FORM}"
            )));
        }
        let shown = redacted(&config);
        if !is_local(&config) && !matches!(tls, DatabaseTls::Require | DatabaseTls::Disable) {
            let asked = match tls {
                DatabaseTls::Prefer => {
                    "sslmode=prefer falls back to plain text when TLS is refused"
                }
                _ => "it asks for no TLS",
            };
            return Err(StoreError::Open(format!(
                "the database {shown} is not on loopback and {asked}, so the password and the \
                 session keys could cross the network in plain text; add ?sslmode=require to \
                 the URL (the certificate is verified against database_ca_file, or the \
                 system's CAs without it), or ?sslmode=disable on a network you trust"
            )));
        }
        Ok(DatabaseUrl {
            config,
            shown,
            tls,
            ca_file: None,
        })
    }

    /// Verifies the server's certificate against the CA certificate(s) of this PEM file
    /// (read when the store opens) instead of the system's CAs; with `sslmode` unset or
    /// `prefer`, it also turns TLS on. Refused with `sslmode=disable`.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Result<DatabaseUrl, StoreError> {
        if self.tls == DatabaseTls::Disable {
            return Err(StoreError::Open(format!(
                "a CA file is set for {}, whose URL says sslmode=disable; remove \
                 database_ca_file (--database-ca-file), or write sslmode=require",
                self.shown
            )));
        }
        self.ca_file = Some(path.into());
        Ok(self)
    }

    /// The CA file, if one is set.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// How the store will connect, for the log: `plain`, `TLS (verified against FILE)`...
    pub fn transport(&self) -> String {
        let against = match &self.ca_file {
            Some(ca) => format!("verified against {}", ca.display()),
            None => "verified against the system's CAs".to_owned(),
        };
        match (self.tls, &self.ca_file) {
            (DatabaseTls::Disable, _) => "plain TCP (sslmode=disable)".to_owned(),
            (DatabaseTls::Unset | DatabaseTls::Prefer, None) => {
                "plain TCP (loopback; no database_ca_file)".to_owned()
            }
            (DatabaseTls::Unset | DatabaseTls::Prefer, Some(_)) => {
                format!("TLS if the server offers it, {against}")
            }
            (DatabaseTls::Require, _) => format!("TLS, {against}"),
        }
    }
}

/// Reads `sslmode` from the query of `text`: its meaning, and the text
/// tokio-postgres parses (`verify-full` written as `require`, which verifies the host name
/// here). Modes this store cannot honour are refused with what to write instead.
fn take_sslmode(text: &str) -> Result<(zeroize::Zeroizing<String>, DatabaseTls), StoreError> {
    let mut out = zeroize::Zeroizing::new(String::with_capacity(text.len()));
    let mut tls = DatabaseTls::Unset;
    let Some((base, query)) = text.split_once('?') else {
        out.push_str(text);
        return Ok((out, tls));
    };
    out.push_str(base);
    out.push('?');
    for (i, param) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let Some(mode) = param.strip_prefix("sslmode=") else {
            out.push_str(param);
            continue;
        };
        tls = match mode {
            "disable" => DatabaseTls::Disable,
            "prefer" => DatabaseTls::Prefer,
            "require" | "verify-full" => DatabaseTls::Require,
            "verify-ca" => {
                return Err(StoreError::Open(
                    "sslmode=verify-ca is not supported: this server always verifies the host \
                     name too; write sslmode=verify-full (or require, the same here) and make \
                     sure the certificate names the host of the URL"
                        .into(),
                ))
            }
            other => {
                return Err(StoreError::Open(format!(
                    "sslmode={other} is not supported; write sslmode=require (TLS, verified), \
                     verify-full (the same), prefer (loopback only) or disable"
                )))
            }
        };
        out.push_str(match tls {
            DatabaseTls::Disable => "sslmode=disable",
            DatabaseTls::Prefer => "sslmode=prefer",
            _ => "sslmode=require",
        });
    }
    Ok((out, tls))
}

/// True when every host of the URL is this machine: a Unix socket, `localhost`, or a
/// loopback address (`hostaddr` decides where `hostaddr` is given).
fn is_local(c: &tokio_postgres::Config) -> bool {
    let addrs = c.get_hostaddrs();
    if !addrs.is_empty() {
        return addrs.iter().all(|a| http_serve::tls::is_loopback(*a));
    }
    c.get_hosts().iter().all(|h| match h {
        Host::Tcp(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<IpAddr>()
                    .is_ok_and(http_serve::tls::is_loopback)
        }
        Host::Unix(_) => true,
    })
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({}, {})", self.shown, self.transport())
    }
}

/// `postgres://USER@HOST:PORT/DBNAME`: the URL without its password (nor options).
fn redacted(c: &tokio_postgres::Config) -> String {
    let ports = c.get_ports();
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports
                .get(i)
                .or(if ports.len() == 1 {
                    ports.first()
                } else {
                    None
                })
                .copied()
                .unwrap_or(5432);
            match h {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let user = c.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    format!(
        "postgres://{user}{}/{}",
        hosts.join(","),
        c.get_dbname().unwrap_or_default()
    )
}

/// A PostgreSQL error in one line: the server's own message and SQLSTATE when it answered,
/// else what failed and why (`tokio_postgres::Error`'s `Display` omits its cause).
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Pool size and timeouts of a [`PgStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections this instance keeps at most (PostgreSQL's `max_connections` is shared by
    /// every instance).
    pub max_connections: usize,
    /// Time allowed to open one connection (TCP, authentication): an unreachable database
    /// stops the server at start after this long.
    pub connect_timeout: Duration,
    /// Time a call waits for a free connection when all are busy.
    pub wait_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(10),
        }
    }
}

/// PostgreSQL behind a connection pool; see the module documentation for the runtime.
pub struct PgStore {
    pool: Pool,
    handle: Handle,
    /// The store's own runtime, when it was opened where none could be shared.
    own: Option<Runtime>,
    shown: String,
    options: PgOptions,
    /// Latency of the write methods, as [`SqliteStore`](super::SqliteStore) keeps it.
    stats: Arc<Stats>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgStore({})", self.shown)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.pool.close();
        // Without waiting: dropping a runtime may happen on a thread of another runtime
        // (the server's, at shutdown), where a blocking shutdown would panic.
        if let Some(rt) = self.own.take() {
            rt.shutdown_background();
        }
    }
}

impl PgStore {
    /// Connects, checks the schema and migrates it (see [`PgStore::connect`]), from
    /// synchronous code: shares the current multi-thread runtime if this thread may block
    /// on it (a `spawn_blocking` thread), else runs a runtime of its own.
    pub fn open(url: &DatabaseUrl, options: &PgOptions) -> Result<PgStore, StoreError> {
        let shared = Handle::try_current()
            .ok()
            .filter(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        let (handle, own) = match shared {
            Some(h) => (h, None),
            None => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("pg-store")
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        StoreError::Open(format!(
                            "cannot start the PostgreSQL store's runtime thread: {e}"
                        ))
                    })?;
                (rt.handle().clone(), Some(rt))
            }
        };
        let pool = build_pool(url, options)?;
        handle.block_on(start(&pool, url, options))?;
        Ok(PgStore {
            pool,
            handle,
            own,
            shown: url.shown.clone(),
            options: *options,
            stats: Arc::new(Stats::new()),
        })
    }

    /// Connects to the database on the caller's runtime, refuses a schema newer than this
    /// server's and applies the missing migrations (in one transaction, under an advisory
    /// lock). The store's methods must then be called from blocking threads.
    pub async fn connect(url: &DatabaseUrl, options: &PgOptions) -> Result<PgStore, StoreError> {
        let pool = build_pool(url, options)?;
        start(&pool, url, options).await?;
        Ok(PgStore {
            pool,
            handle: Handle::current(),
            own: None,
            shown: url.shown.clone(),
            options: *options,
            stats: Arc::new(Stats::new()),
        })
    }

    /// Runs `once` with a pooled connection, again (bounded) when PostgreSQL aborted it on a
    /// serialization failure or a deadlock.
    fn run<T, E, F, Fut>(&self, mut once: F) -> Result<T, E>
    where
        F: FnMut(Object) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<StoreError> + Retry,
    {
        self.handle.block_on(async {
            let mut attempt = 1;
            loop {
                let client = self
                    .pool
                    .get()
                    .await
                    .map_err(|e| E::from(self.pool_error(e)))?;
                match once(client).await {
                    Err(e) if e.retryable() && attempt < MAX_ATTEMPTS => {
                        tracing::debug!(
                            attempt,
                            "PostgreSQL aborted a transaction (serialization failure or \
                             deadlock); running it again"
                        );
                        tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                        attempt += 1;
                    }
                    result => return result,
                }
            }
        })
    }

    /// Runs one write method and records its latency (each is one transaction; a write
    /// that failed or was refused committed none).
    fn timed<T, E>(
        &self,
        keep: fn(&Result<T, E>) -> bool,
        write: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = write();
        self.stats.record_alone(started.elapsed(), keep(&result));
        result
    }

    fn pool_error(&self, e: PoolError) -> StoreError {
        let at = &self.shown;
        StoreError::Pool(match e {
            PoolError::Timeout(TimeoutType::Wait) => format!(
                "all {} connections to {at} stayed busy for {} s; the database is slow or \
                 overloaded: check its load and locks (pg_stat_activity)",
                self.options.max_connections,
                self.options.wait_timeout.as_secs()
            ),
            PoolError::Timeout(_) => format!(
                "{at} did not accept a connection within {} s; is the database server running \
                 and reachable?",
                self.options.connect_timeout.as_secs()
            ),
            PoolError::Backend(pg) => format!(
                "cannot connect to {at}: {}; is the database server running and reachable?",
                describe(&pg)
            ),
            other => format!("cannot get a connection to {at}: {other}"),
        })
    }
}

fn build_pool(url: &DatabaseUrl, options: &PgOptions) -> Result<Pool, StoreError> {
    let mut config = url.config.clone();
    config.connect_timeout(options.connect_timeout);
    if config.get_application_name().is_none() {
        config.application_name("server");
    }
    let (mode, tls) = PgTls::for_url(url)?;
    config.ssl_mode(mode);
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.max_connections.max(1))
        .runtime(PoolRuntime::Tokio1)
        .wait_timeout(Some(options.wait_timeout))
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.connect_timeout))
        .build()
        .map_err(|e| StoreError::Open(format!("cannot set up the PostgreSQL pool: {e}")))
}

/// TLS to PostgreSQL: tokio-postgres's connector over tokio-rustls (on http-serve's `ring`
/// provider), verifying the server's certificate and its host name; `None`: TLS is off
/// (the connection's `sslmode` is then `disable`, so it is never asked for a handshake).
#[derive(Clone)]
pub(crate) struct PgTls(Option<Arc<rustls::ClientConfig>>);

impl PgTls {
    /// The `sslmode` the connections use and the connector, as `url` asks: TLS with the CA
    /// file or, for `require` without one, the system's CAs; plain for `disable`, and for
    /// `prefer` (or none) without a CA file (loopback only: [`DatabaseUrl::parse`]).
    /// Reads the CA file now: a missing or malformed one stops the start.
    pub(crate) fn for_url(url: &DatabaseUrl) -> Result<(SslMode, PgTls), StoreError> {
        let mode = match (url.tls, &url.ca_file) {
            (DatabaseTls::Disable, _) | (DatabaseTls::Unset | DatabaseTls::Prefer, None) => {
                return Ok((SslMode::Disable, PgTls(None)))
            }
            (DatabaseTls::Unset | DatabaseTls::Prefer, Some(_)) => SslMode::Prefer,
            (DatabaseTls::Require, _) => SslMode::Require,
        };
        let roots = match &url.ca_file {
            Some(ca) => http_serve::tls::root_store(ca).map_err(|e| {
                StoreError::Open(format!(
                    "database_ca_file (--database-ca-file) is not usable: {e}"
                ))
            })?,
            None => system_roots(url)?,
        };
        let mut config = rustls::ClientConfig::builder_with_provider(http_serve::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Open(format!("cannot set up TLS to PostgreSQL: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // PostgreSQL's ALPN name (required by its direct TLS negotiation, harmless before).
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok((mode, PgTls(Some(Arc::new(config)))))
    }
}

/// The system's CA certificates (rustls-native-certs), for `sslmode=require` without a CA
/// file; none found is an error naming `database_ca_file`.
fn system_roots(url: &DatabaseUrl) -> Result<rustls::RootCertStore, StoreError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = match found.errors.first() {
            Some(e) => format!(" ({e})"),
            None => String::new(),
        };
        return Err(StoreError::Open(format!(
            "{} asks for TLS (sslmode=require) without database_ca_file, so the system's CA \
             certificates should verify the database server, but none were found{why}; set \
             database_ca_file in server.toml (or --database-ca-file) to the PEM of the CA \
             that issued the database server's certificate",
            url.shown
        )));
    }
    Ok(roots)
}

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type TlsConnect = PgTlsConnect;
    type Error = TlsFailure;

    fn make_tls_connect(&mut self, domain: &str) -> Result<PgTlsConnect, TlsFailure> {
        // Asked for every connection, TLS or not: without TLS there is nothing to check.
        let Some(config) = self.0.clone() else {
            return Ok(PgTlsConnect(None));
        };
        let name = ServerName::try_from(domain.to_owned()).map_err(|e| TlsFailure {
            reason: format!("`{domain}` cannot be checked against a certificate ({e})"),
            certificate: None,
        })?;
        Ok(PgTlsConnect(Some((
            tokio_rustls::TlsConnector::from(config),
            name,
        ))))
    }
}

/// One handshake, for one connection to one host; `None`: TLS is off (never asked).
pub(crate) struct PgTlsConnect(Option<(tokio_rustls::TlsConnector, ServerName<'static>)>);

impl<S> TlsConnect<S> for PgTlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = TlsFailure;
    type Future = Pin<Box<dyn Future<Output = Result<PgTlsStream<S>, TlsFailure>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let Some((connector, name)) = self.0 else {
                return Err(TlsFailure {
                    reason: "TLS is off for this database (sslmode=disable)".into(),
                    certificate: None,
                });
            };
            connector
                .connect(name, stream)
                .await
                .map(|s| PgTlsStream(Box::new(s)))
                .map_err(TlsFailure::from_io)
        })
    }
}

/// Why a TLS handshake with PostgreSQL failed; `certificate` when the server's certificate
/// was refused (the start-up error then says which setting to fix).
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub(crate) struct TlsFailure {
    reason: String,
    certificate: Option<rustls::CertificateError>,
}

impl TlsFailure {
    fn from_io(e: io::Error) -> TlsFailure {
        let certificate = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(rustls::Error::InvalidCertificate(c)) => Some(c.clone()),
            _ => None,
        };
        TlsFailure {
            reason: e.to_string(),
            certificate,
        }
    }
}

/// A TLS connection to PostgreSQL (boxed: a rustls session is large).
pub(crate) struct PgTlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for PgTlsStream<S> {
    /// No SCRAM channel binding (`tls-server-end-point`): the certificate is verified, and
    /// SCRAM-SHA-256 without `-PLUS` is what the server then uses.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// The first connection (its failure says what to fix) and the migrations.
async fn start(pool: &Pool, url: &DatabaseUrl, options: &PgOptions) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(|e| open_error(url, options, e))?;
    migrate(&mut client).await
}

fn open_error(url: &DatabaseUrl, options: &PgOptions, e: PoolError) -> StoreError {
    let at = &url.shown;
    let check = "check `database` in server.toml or --database";
    StoreError::Open(match e {
        PoolError::Timeout(_) => format!(
            "cannot connect to PostgreSQL at {at}: no answer within {} s; is the database \
             server running and reachable from here? ({check})",
            options.connect_timeout.as_secs()
        ),
        PoolError::Backend(pg) => {
            let why = describe(&pg);
            let code = pg.code();
            let tls = std::error::Error::source(&pg).and_then(|e| e.downcast_ref::<TlsFailure>());
            if let Some(TlsFailure {
                certificate: Some(c),
                ..
            }) = tls
            {
                tls_certificate_error(url, c, &why)
            } else if tls.is_some() {
                format!(
                    "cannot connect to PostgreSQL at {at}: {why}; check the database server's \
                     TLS settings (ssl, ssl_cert_file, ssl_key_file in postgresql.conf) and its log"
                )
            } else if why.contains("server does not support TLS") {
                format!(
                    "PostgreSQL at {at} does not accept TLS, and the URL asks for it \
                     (sslmode=require); turn TLS on in the database server (ssl = on, \
                     ssl_cert_file and ssl_key_file in postgresql.conf), or, on loopback or a \
                     network you trust, write sslmode=disable in the URL"
                )
            } else if why.contains("no encryption") && url.ca_file.is_none() {
                format!(
                    "PostgreSQL at {at} refused a connection without TLS ({why}); set \
                     database_ca_file in server.toml (or --database-ca-file) to the CA of its \
                     certificate, and sslmode=require in the URL"
                )
            } else if code == Some(&SqlState::INVALID_PASSWORD)
                || code == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
                || why.contains("password missing")
            {
                format!(
                    "PostgreSQL at {at} refused the login ({why}); check the user and password \
                     in the database URL, and pg_hba.conf on the database server"
                )
            } else if code == Some(&SqlState::INVALID_CATALOG_NAME) {
                format!(
                    "PostgreSQL at {at}: {why}; create it (createdb -O USER DBNAME) or fix the \
                     name in the database URL"
                )
            } else if pg.as_db_error().is_some() {
                format!("PostgreSQL at {at} refused the connection: {why}")
            } else {
                format!(
                    "cannot connect to PostgreSQL at {at}: {why}; is the database server running \
                     and listening there? ({check})"
                )
            }
        }
        other => format!("cannot connect to PostgreSQL at {at}: {other}"),
    })
}

/// The start-up error for a server certificate rustls refused: which setting to fix.
fn tls_certificate_error(url: &DatabaseUrl, c: &rustls::CertificateError, why: &str) -> String {
    let at = &url.shown;
    let trusted_by = match &url.ca_file {
        Some(ca) => format!("database_ca_file {}", ca.display()),
        None => "the system's CAs (no database_ca_file is set)".to_owned(),
    };
    match c {
        rustls::CertificateError::NotValidForName
        | rustls::CertificateError::NotValidForNameContext { .. } => format!(
            "PostgreSQL at {at}: its TLS certificate does not name the host of the URL ({why}); \
             connect with a host name or address the certificate carries, or have the \
             certificate reissued for this host"
        ),
        rustls::CertificateError::Expired
        | rustls::CertificateError::ExpiredContext { .. }
        | rustls::CertificateError::NotValidYet
        | rustls::CertificateError::NotValidYetContext { .. } => format!(
            "PostgreSQL at {at}: its TLS certificate is outside its validity period ({why}); \
             renew the database server's certificate, or check this machine's clock"
        ),
        _ => format!(
            "PostgreSQL at {at}: its TLS certificate is not trusted by {trusted_by} ({why}); \
             set database_ca_file in server.toml (or --database-ca-file) to the PEM of the CA \
             that issued the database server's certificate"
        ),
    }
}

/// Applies the migrations this database lacks, in one transaction under an advisory lock;
/// refuses a database whose schema is newer than this server's (and then writes nothing).
async fn migrate(client: &mut Object) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    bigint PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::bigint FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "PostgreSQL schema migrated");
    }
    tx.commit().await?;
    Ok(())
}

/// Whether PostgreSQL aborted the transaction in a way that running it again may fix.
trait Retry {
    fn retryable(&self) -> bool;
}

impl Retry for StoreError {
    fn retryable(&self) -> bool {
        match self {
            StoreError::Pg(e) => matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
            ),
            _ => false,
        }
    }
}

impl Retry for CommitError {
    fn retryable(&self) -> bool {
        matches!(self, CommitError::Store(e) if e.retryable())
    }
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v)
        .map_err(|_| StoreError::Corrupt(format!("{v} does not fit a database integer")))
}

fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative value {v}")))
}

async fn insert_audit(
    tx: &deadpool_postgres::Transaction<'_>,
    e: &AuditEntry,
) -> Result<(), StoreError> {
    let st = tx
        .prepare_cached(
            "INSERT INTO audit (time, subject, service, decision, reason, cid)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    tx.execute(
        &st,
        &[
            &to_i64(e.time)?,
            &e.subject,
            &e.service,
            &e.decision.as_str(),
            &e.reason,
            &e.cid,
        ],
    )
    .await?;
    Ok(())
}

/// Deletes the connections `select` yields (locking them, so a concurrent message commit on
/// one either finishes first or finds it gone), then their last answers, each statement
/// seeing what committed before it; how many of each.
async fn delete_connections(
    tx: &deadpool_postgres::Transaction<'_>,
    delete_returning_cid: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<(u64, u64), StoreError> {
    let st = tx.prepare_cached(delete_returning_cid).await?;
    let cids: Vec<Vec<u8>> = tx
        .query(&st, params)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    if cids.is_empty() {
        return Ok((0, 0));
    }
    let st = tx
        .prepare_cached("DELETE FROM last_answers WHERE cid = ANY($1)")
        .await?;
    let answers = tx.execute(&st, &[&cids]).await?;
    Ok((cids.len() as u64, answers))
}

/// The statements of one registration, pipelined: sent together, answered in order, in
/// three round trips to the database between BEGIN and COMMIT instead of seven. A statement
/// after a failed one fails too (the transaction is aborted) and everything is rolled back
/// when the transaction drops, so only the first failure is looked at.
async fn commit_registration(mut client: Object, reg: &NewRegistration) -> Result<(), CommitError> {
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let time = to_i64(reg.audit.time)?;
    let nonce_st = tx
        .prepare_cached("INSERT INTO nonces (nonce, seen_at) VALUES ($1, $2)")
        .await
        .map_err(StoreError::from)?;
    // Raises the counter only if it is above the stored one; the row stays locked until
    // commit, so registrations of one container are serialized here.
    let counter_st = tx
        .prepare_cached(
            "INSERT INTO registration_counters (subject, last_counter) VALUES ($1, $2)
             ON CONFLICT (subject) DO UPDATE SET last_counter = excluded.last_counter
             WHERE registration_counters.last_counter < excluded.last_counter",
        )
        .await
        .map_err(StoreError::from)?;
    let subject_id: &[u8] = &reg.subject_id;
    let (nonce, raised) = join(
        tx.execute(&nonce_st, &[&&reg.nonce[..], &time]),
        tx.execute(&counter_st, &[&subject_id, &i64::from(reg.counter)]),
    )
    .await;
    match nonce {
        Ok(_) => {}
        // A concurrent transaction with the same nonce made this one wait, then committed.
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(CommitError::ReplayedNonce)
        }
        Err(e) => return Err(StoreError::from(e).into()),
    }
    if raised.map_err(StoreError::from)? != 1 {
        let last: i64 = tx
            .query_one(
                "SELECT last_counter FROM registration_counters WHERE subject = $1",
                &[&subject_id],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(StoreError::from)?;
        let last = u32::try_from(last)
            .map_err(|_| StoreError::Corrupt(format!("registration counter {last}")))?;
        // Dropping the transaction rolls it back: the nonce is not recorded either.
        return Err(CommitError::StaleCounter {
            got: reg.counter,
            last,
        });
    }
    let audit = insert_audit(&tx, &reg.audit);
    let Some(c) = &reg.connection else {
        audit.await?;
        tx.commit().await.map_err(StoreError::from)?;
        return Ok(());
    };
    let st = tx
        .prepare_cached(
            "INSERT INTO connections (cid, service, subject, scope, expires_at, state,
                 up_counter, down_counter, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await
        .map_err(StoreError::from)?;
    let state: &[u8] = &c.state;
    let (scope, expires_at, up, down, created_at) = (
        c.scope.join(","),
        to_i64(c.expires_at)?,
        to_i64(c.up_counter)?,
        to_i64(c.down_counter)?,
        to_i64(c.created_at)?,
    );
    let (replaced, inserted, audited) = join3(
        delete_connections(
            &tx,
            "DELETE FROM connections WHERE subject = $1 AND service = $2 AND cid <> $3
             RETURNING cid",
            &[&c.subject, &c.service, &&c.cid[..]],
        ),
        tx.execute(
            &st,
            &[
                &&c.cid[..],
                &c.service,
                &c.subject,
                &scope,
                &expires_at,
                &state,
                &up,
                &down,
                &created_at,
            ],
        ),
        audit,
    )
    .await;
    replaced?;
    inserted.map_err(StoreError::from)?;
    audited?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

async fn connection(
    client: Object,
    cid: &[u8; 16],
) -> Result<Option<ConnectionRecord>, StoreError> {
    let st = client
        .prepare_cached(
            "SELECT service, subject, scope, expires_at, state, up_counter, down_counter,
                 created_at
             FROM connections WHERE cid = $1",
        )
        .await?;
    let Some(r) = client.query_opt(&st, &[&&cid[..]]).await? else {
        return Ok(None);
    };
    let scope: String = r.try_get(2)?;
    Ok(Some(ConnectionRecord {
        cid: *cid,
        service: r.try_get(0)?,
        subject: r.try_get(1)?,
        scope: scope
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        expires_at: to_u64(r.try_get(3)?)?,
        state: Zeroizing::new(r.try_get(4)?),
        up_counter: to_u64(r.try_get(5)?)?,
        down_counter: to_u64(r.try_get(6)?)?,
        created_at: to_u64(r.try_get(7)?)?,
    }))
}

/// The compare-and-set and the writes of one message, pipelined as in
/// [`commit_registration`]: when the compare-and-set misses, what was sent after it is
/// rolled back with the transaction.
async fn commit_message(mut client: Object, msg: &MessageCommit) -> Result<bool, StoreError> {
    let tx = client.transaction().await?;
    // A concurrent commit with the same expected counter makes this one wait for the row,
    // then re-check the condition against what it committed.
    let cas_st = tx
        .prepare_cached(
            "UPDATE connections SET up_counter = $2, down_counter = $3, state = $5
             WHERE cid = $1 AND up_counter = $4",
        )
        .await?;
    let answer_st = tx
        .prepare_cached(
            "INSERT INTO last_answers (cid, up_sha256, down) VALUES ($1, $2, $3)
             ON CONFLICT (cid) DO UPDATE SET up_sha256 = excluded.up_sha256,
                 down = excluded.down",
        )
        .await?;
    let credential_st = match msg.credential {
        Some(_) => Some(
            tx.prepare_cached(
                "INSERT INTO credentials (cid, subject, service, issued_at, sha256)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .await?,
        ),
        None => None,
    };
    let state: &[u8] = &msg.new_state;
    let (new_up, new_down, expected_up, time) = (
        to_i64(msg.new_up)?,
        to_i64(msg.new_down)?,
        to_i64(msg.expected_up)?,
        to_i64(msg.audit.time)?,
    );
    let cid: &[u8] = &msg.cid;
    let credential = async {
        match (&msg.credential, &credential_st) {
            (Some(c), Some(st)) => tx
                .execute(
                    st,
                    &[
                        &cid,
                        &msg.audit.subject,
                        &msg.audit.service,
                        &time,
                        &&c.sha256[..],
                    ],
                )
                .await
                .map(|_| ()),
            _ => Ok(()),
        }
    };
    let (changed, credential, answer, audited) = join4(
        tx.execute(&cas_st, &[&cid, &new_up, &new_down, &expected_up, &state]),
        credential,
        tx.execute(
            &answer_st,
            &[&cid, &&msg.answer.up_sha256[..], &msg.answer.down],
        ),
        insert_audit(&tx, &msg.audit),
    )
    .await;
    if changed? != 1 {
        return Ok(false);
    }
    credential?;
    answer?;
    audited?;
    tx.commit().await?;
    Ok(true)
}

async fn last_answer(client: Object, cid: &[u8; 16]) -> Result<Option<LastAnswer>, StoreError> {
    let st = client
        .prepare_cached("SELECT up_sha256, down FROM last_answers WHERE cid = $1")
        .await?;
    let Some(r) = client.query_opt(&st, &[&&cid[..]]).await? else {
        return Ok(None);
    };
    let hash: Vec<u8> = r.try_get(0)?;
    let up_sha256 = hash.try_into().map_err(|h: Vec<u8>| {
        StoreError::Corrupt(format!("a last answer's hash has {} bytes", h.len()))
    })?;
    Ok(Some(LastAnswer {
        up_sha256,
        down: r.try_get(1)?,
    }))
}

async fn audit(mut client: Object, entry: &AuditEntry) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    insert_audit(&tx, entry).await?;
    tx.commit().await?;
    Ok(())
}

async fn audit_log(client: Object, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
    let st = client
        .prepare_cached(
            "SELECT time, subject, service, decision, reason, cid FROM
             (SELECT * FROM audit ORDER BY id DESC LIMIT $1) AS last ORDER BY id ASC",
        )
        .await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    for r in client.query(&st, &[&limit]).await? {
        let decision: String = r.try_get(3)?;
        let decision = AuditDecision::parse(&decision)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown audit decision `{decision}`")))?;
        out.push(AuditEntry {
            time: to_u64(r.try_get(0)?)?,
            subject: r.try_get(1)?,
            service: r.try_get(2)?,
            decision,
            reason: r.try_get(4)?,
            cid: r.try_get(5)?,
        });
    }
    Ok(out)
}

async fn counts(client: Object) -> Result<StoreCounts, StoreError> {
    // One statement: one snapshot.
    let r = client
        .query_one(
            "SELECT (SELECT count(*) FROM nonces), (SELECT count(*) FROM connections),
                    (SELECT count(*) FROM credentials), (SELECT count(*) FROM audit)",
            &[],
        )
        .await?;
    Ok(StoreCounts {
        nonces: to_u64(r.try_get(0)?)?,
        connections: to_u64(r.try_get(1)?)?,
        credentials: to_u64(r.try_get(2)?)?,
        audit: to_u64(r.try_get(3)?)?,
    })
}

async fn prune(
    mut client: Object,
    now: u64,
    limits: &PruneLimits,
) -> Result<PruneReport, StoreError> {
    let max = to_i64(limits.max_rows)?;
    let nonce_cutoff = to_i64(now.saturating_sub(limits.nonce_retention_secs))?;
    let audit_cutoff = to_i64(now.saturating_sub(limits.audit_retention_secs))?;
    let now = to_i64(now)?;
    let mut report = PruneReport::default();
    let tx = client.transaction().await?;
    // A connection is valid while now < expires_at (mutual-auth.md). SKIP LOCKED: two
    // instances pruning together share the work instead of waiting for each other.
    (report.connections, report.last_answers) = delete_connections(
        &tx,
        "DELETE FROM connections WHERE cid IN
             (SELECT cid FROM connections WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2
              FOR UPDATE SKIP LOCKED)
         RETURNING cid",
        &[&now, &max],
    )
    .await?;
    report.nonces = tx
        .execute(
            "DELETE FROM nonces WHERE nonce IN
                 (SELECT nonce FROM nonces WHERE seen_at < $1 ORDER BY seen_at LIMIT $2
                  FOR UPDATE SKIP LOCKED)",
            &[&nonce_cutoff, &max],
        )
        .await?;
    report.audit = tx
        .execute(
            "DELETE FROM audit WHERE id IN
                 (SELECT id FROM audit WHERE time < $1 ORDER BY time LIMIT $2
                  FOR UPDATE SKIP LOCKED)",
            &[&audit_cutoff, &max],
        )
        .await?;
    report.more = [report.connections, report.nonces, report.audit]
        .iter()
        .any(|&n| n >= limits.max_rows);
    tx.commit().await?;
    // No WAL of this server's to truncate: PostgreSQL's WAL and the space of deleted rows
    // are the database server's (VACUUM, checkpoints); see the module documentation.
    report.wal_truncated = true;
    Ok(report)
}

impl Store for PgStore {
    fn commit_registration(&self, reg: &NewRegistration) -> Result<(), CommitError> {
        self.timed(Result::is_ok, || {
            self.run(|client| commit_registration(client, reg))
        })
    }

    fn connection(&self, cid: &[u8; 16]) -> Result<Option<ConnectionRecord>, StoreError> {
        self.run(|client| connection(client, cid))
    }

    fn commit_message(&self, msg: &MessageCommit) -> Result<bool, StoreError> {
        self.timed(
            |r| matches!(r, Ok(true)),
            || self.run(|client| commit_message(client, msg)),
        )
    }

    fn last_answer(&self, cid: &[u8; 16]) -> Result<Option<LastAnswer>, StoreError> {
        self.run(|client| last_answer(client, cid))
    }

    fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.timed(Result::is_ok, || self.run(|client| audit(client, entry)))
    }

    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.run(|client| audit_log(client, limit))
    }

    fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.run(counts)
    }

    fn prune(&self, now: u64, limits: &PruneLimits) -> Result<PruneReport, StoreError> {
        self.run(|client| prune(client, now, limits))
    }

    fn commit_latency(&self) -> Option<CommitLatency> {
        Some(self.stats.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let u = DatabaseUrl::parse("postgres://app:hunter2@127.0.0.1:5433/vsc").unwrap();
        assert_eq!(u.to_string(), "postgres://app@127.0.0.1:5433/vsc");
        assert!(!format!("{u:?}").contains("hunter2"));
        let u = DatabaseUrl::parse("postgresql://db.example/vsc?sslmode=require").unwrap();
        assert_eq!(u.to_string(), "postgres://db.example:5432/vsc");
    }

    #[test]
    fn sslmode_is_read_and_verify_full_is_require() {
        for (url, tls) in [
            ("postgres://a:hunter2@127.0.0.1/vsc", DatabaseTls::Unset),
            (
                "postgres://a@127.0.0.1/vsc?sslmode=disable",
                DatabaseTls::Disable,
            ),
            (
                "postgres://a@127.0.0.1/vsc?sslmode=prefer",
                DatabaseTls::Prefer,
            ),
            (
                "postgres://a@127.0.0.1/vsc?sslmode=require",
                DatabaseTls::Require,
            ),
            (
                "postgres://a@db.example/vsc?connect_timeout=3&sslmode=verify-full",
                DatabaseTls::Require,
            ),
            (
                "postgres://a@127.0.0.1/vsc?sslmode=disable&sslmode=require",
                DatabaseTls::Require,
            ),
        ] {
            let u = DatabaseUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(u.tls, tls, "{url}");
            let want = match tls {
                DatabaseTls::Disable => SslMode::Disable,
                DatabaseTls::Require => SslMode::Require,
                _ => SslMode::Prefer,
            };
            assert_eq!(u.config.get_ssl_mode(), want, "{url}");
        }
        for (bad, fix) in [
            (
                "postgres://a:hunter2@127.0.0.1/vsc?sslmode=verify-ca",
                "verify-full",
            ),
            (
                "postgres://a:hunter2@127.0.0.1/vsc?sslmode=allow",
                "sslmode=require",
            ),
            (
                "postgres://a:hunter2@127.0.0.1/vsc?sslmode=REQUIRE",
                "sslmode=require",
            ),
        ] {
            let e = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains(fix), "{bad}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn a_host_off_loopback_needs_sslmode_require_or_an_explicit_disable() {
        for local in [
            "postgres://a@127.0.0.1/vsc",
            "postgres://a@127.0.0.2:5433/vsc?sslmode=prefer",
            "postgres://a@localhost/vsc",
            "postgres://a@[::1]/vsc",
            "postgres://a@%2Fvar%2Frun%2Fpostgresql/vsc",
            "postgres://a@db.example/vsc?hostaddr=127.0.0.1",
        ] {
            DatabaseUrl::parse(local).unwrap_or_else(|e| panic!("{local}: {e}"));
        }
        for remote in [
            "postgres://a:hunter2@db.example/vsc",
            "postgres://a:hunter2@10.0.0.5/vsc?sslmode=prefer",
            "postgres://a:hunter2@127.0.0.1,db.example/vsc",
            "postgres://a:hunter2@localhost/vsc?hostaddr=10.0.0.5",
            "postgres://a:hunter2@[2001:db8::1]/vsc",
        ] {
            let e = DatabaseUrl::parse(remote).unwrap_err().to_string();
            assert!(e.contains("not on loopback"), "{remote}: {e}");
            assert!(e.contains("?sslmode=require"), "{remote}: {e}");
            assert!(e.contains("?sslmode=disable"), "{remote}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
            for ok in ["sslmode=require", "sslmode=disable"] {
                let sep = if remote.contains('?') { '&' } else { '?' };
                let url = format!("{remote}{sep}{ok}");
                DatabaseUrl::parse(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
            }
        }
    }

    #[test]
    fn tls_is_used_as_sslmode_and_the_ca_file_say() {
        let mode = |url: &DatabaseUrl| PgTls::for_url(url).map(|(m, t)| (m, t.0.is_some()));
        let plain = DatabaseUrl::parse("postgres://a@127.0.0.1/vsc").unwrap();
        assert_eq!(mode(&plain).unwrap(), (SslMode::Disable, false));
        assert!(plain.transport().starts_with("plain TCP"));
        let disable = DatabaseUrl::parse("postgres://a@db.example/vsc?sslmode=disable").unwrap();
        assert_eq!(mode(&disable).unwrap(), (SslMode::Disable, false));
        let e = disable.with_ca_file("ca.pem").unwrap_err().to_string();
        assert!(
            e.contains("sslmode=disable") && e.contains("database_ca_file"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-ca.pem");
        for url in [
            "postgres://a@127.0.0.1/vsc",
            "postgres://a@db.example/vsc?sslmode=require",
        ] {
            let u = DatabaseUrl::parse(url)
                .unwrap()
                .with_ca_file(&missing)
                .unwrap();
            assert!(u.transport().contains("no-ca.pem"), "{}", u.transport());
            assert!(format!("{u:?}").contains("TLS"), "{u:?}");
            let e = mode(&u).unwrap_err().to_string();
            assert!(e.contains("database_ca_file"), "{e}");
            assert!(e.contains("no-ca.pem"), "{e}");
        }
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let u = DatabaseUrl::parse("postgres://a@127.0.0.1/vsc?sslmode=require")
            .unwrap()
            .with_ca_file(&garbage)
            .unwrap();
        let e = mode(&u).unwrap_err().to_string();
        assert!(e.contains("CERTIFICATE"), "{e}");
    }

    #[test]
    fn a_malformed_url_is_refused_without_being_repeated() {
        for bad in [
            "mysql://app:hunter2@127.0.0.1/vsc",
            "postgres://app:hunter2@127.0.0.1:port/vsc",
            "postgres://app:hunter2@127.0.0.1:5432",
            "postgres://app:hunter2@127.0.0.1:5432/vsc?colour=blue",
            "/var/lib/server.db",
        ] {
            let e = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(
                e.contains("postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME"),
                "{e}"
            );
        }
    }
}
