//! The server's configuration: `server.toml`, command-line overrides, and their validation.
//!
//! The file is read once at start; everything is checked before the server binds its port,
//! so a typo is an error at start with the offending entry named, never a refusal at run time.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apdu_specs::es10::{Eid, Iccid};
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use crate::policy::{Grant, Policy, SubjectPattern};
use crate::store::{DatabaseUrl, Durability, PruneLimits};

use http_serve::config::invalid;
pub use http_serve::ConfigError;

/// Default address: loopback only; exposing the server is an explicit decision.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default request body limit (bytes): an R with its certificate is about 450 bytes and a
/// protected message at most about 4.2 KiB, so 16 KiB leaves room and nothing more.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;
/// Default time a request may take, reading the body included.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Default lifetime cap of a secure connection (seconds), whatever the grant says.
pub const DEFAULT_CONNECTION_LIFETIME_SECS: u64 = 3600;

/// Default time between two pruning runs of `server run`.
pub const DEFAULT_PRUNE_INTERVAL: &str = "60s";
/// Default bound on the rows one pruning run deletes per table.
pub const DEFAULT_PRUNE_MAX_ROWS: u64 = 1000;
/// Default time a seen SE nonce is kept (the registration counter refuses an old R after).
pub const DEFAULT_NONCE_RETENTION: &str = "7d";
/// Default time an audit entry is kept.
pub const DEFAULT_AUDIT_RETENTION: &str = "90d";
/// Default registrations a minute per SE container: a card takes a fraction of a second
/// per registration and a user registers once per connection; a loop does not pass.
pub const DEFAULT_REGISTRATIONS_PER_MINUTE_PER_SE: u32 = 60;

/// The longest service identifier R may carry (mutual-auth.md, tag `81`).
pub const MAX_SERVICE_ID_LEN: usize = 32;

/// `server.toml` as written by a human (see the starter file that `server init` writes).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<String>,
    pub issuer_ca_public_key: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    pub connection_lifetime_secs: Option<u64>,
    /// `full` (default) or `normal`: see [`Durability`].
    pub durability: Option<Durability>,
    /// SQLite group commit (default true): see [`crate::store::SqliteOptions`].
    pub group_commit: Option<bool>,
    /// PostgreSQL instead of the embedded SQLite database:
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME` (never shown with its password).
    pub database: Option<RawDatabaseUrl>,
    /// PEM CA certificate(s) that verify the PostgreSQL server's certificate, relative to the
    /// file's directory.
    pub database_ca_file: Option<PathBuf>,
    /// Time between two pruning runs (`60s`, humantime).
    pub prune_interval: Option<String>,
    /// Rows one pruning run deletes at most, per table.
    pub prune_max_rows: Option<u64>,
    /// How long a seen SE nonce is kept (`7d`).
    pub nonce_retention: Option<String>,
    /// How long an audit entry is kept (`90d`).
    pub audit_retention: Option<String>,
    /// Registrations a minute per SE container on this instance; 0: unlimited.
    pub registrations_per_minute_per_se: Option<u32>,
    /// HTTPS: certificate chain and private key (PEM), relative to the file's directory.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Plain HTTP on a non-loopback address (behind a TLS proxy).
    pub insecure_http: Option<bool>,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceFile>,
    #[serde(default)]
    pub grants: Vec<GrantFile>,
}

/// One `[services.ID]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    /// The calls this service offers (`echo`, `provision`).
    pub calls: Vec<String>,
}

/// One `[[grants]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantFile {
    pub service: String,
    /// `*` or the EID (32 hex digits).
    pub eid: String,
    /// The ICCID (decimal digits) of one container of that SE; absent: every container.
    pub iccid: Option<String>,
    /// The calls granted; absent: all calls of the service.
    pub calls: Option<Vec<String>>,
    /// Until when: Unix seconds or RFC 3339 (`2027-01-01T00:00:00Z`).
    pub until: Until,
}

/// A point in time as a human writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Until {
    Unix(u64),
    Text(String),
}

impl Until {
    /// Unix seconds.
    pub fn to_unix(&self) -> Result<u64, String> {
        match self {
            Until::Unix(s) => Ok(*s),
            Until::Text(t) => parse_time(t),
        }
    }
}

/// Unix seconds or RFC 3339 (`2027-01-01T00:00:00Z`) to Unix seconds.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    let t = humantime::parse_rfc3339_weak(text).map_err(|e| {
        format!("`{text}` is neither Unix seconds nor RFC 3339 (2027-01-01T00:00:00Z): {e}")
    })?;
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| format!("`{text}` is before 1970"))
}

/// A database URL as written (`database` in server.toml, `--database`, `SERVER_DATABASE`),
/// not yet checked. It may hold a password, so no formatting shows it: `Debug` and
/// `Display` print `postgres://USER@HOST:PORT/DBNAME` (or a placeholder when the text does
/// not parse), and the text is overwritten with zeros when dropped. [`RawDatabaseUrl::expose`]
/// is the one way to the text; [`DatabaseUrl::parse`] checks it.
#[derive(Clone, PartialEq, Eq)]
pub struct RawDatabaseUrl(Zeroizing<String>);

impl RawDatabaseUrl {
    pub fn new(text: impl Into<String>) -> RawDatabaseUrl {
        RawDatabaseUrl(Zeroizing::new(text.into()))
    }

    /// The URL as written, password included: parse it, never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Checks the URL as `server run` does.
    pub fn parse(&self) -> Result<DatabaseUrl, crate::store::StoreError> {
        DatabaseUrl::parse(self.expose())
    }
}

impl fmt::Display for RawDatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DatabaseUrl::parse(self.expose()) {
            Ok(url) => write!(f, "{url}"),
            Err(_) => f.write_str("(a database URL that does not parse; not shown)"),
        }
    }
}

impl fmt::Debug for RawDatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawDatabaseUrl({self})")
    }
}

/// Never fails: the URL is checked with the rest of the configuration, so a command-line
/// parser never repeats it in an error.
impl FromStr for RawDatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<RawDatabaseUrl, Self::Err> {
        Ok(RawDatabaseUrl::new(text))
    }
}

impl<'de> Deserialize<'de> for RawDatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawDatabaseUrl, D::Error> {
        String::deserialize(d).map(RawDatabaseUrl::new)
    }
}

/// The calls the server knows how to execute.
pub const KNOWN_CALLS: &[&str] = &["echo", "provision"];

/// Command-line overrides of the file (`server run --help`).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub issuer_ca_public_key: Option<String>,
    /// `ID=CALL,CALL`: adds or replaces a service.
    pub services: Vec<String>,
    /// `SERVICE:SUBJECT:CALLS:UNTIL`: appended after the file's grants.
    pub grants: Vec<String>,
    pub request_timeout_ms: Option<u64>,
    pub max_body_bytes: Option<usize>,
    /// `--database URL`: PostgreSQL instead of SQLite, overriding `database`.
    pub database: Option<RawDatabaseUrl>,
    /// `--database-ca-file` (relative to the working directory), overriding
    /// `database_ca_file`.
    pub database_ca_file: Option<PathBuf>,
    pub registrations_per_minute_per_se: Option<u32>,
    /// `--tls-cert`, `--tls-key` (relative to the working directory), `--insecure-http`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub insecure_http: bool,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// HTTPS with these files; `None`: plain HTTP (loopback, or `insecure_http`).
    pub tls: Option<http_serve::tls::TlsFiles>,
    /// SEC1 uncompressed point (65 bytes) of the issuer CA.
    pub issuer_ca_public_key: Vec<u8>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub connection_lifetime_secs: u64,
    pub durability: Durability,
    /// SQLite: concurrent writes share a commit and its fsync ([`crate::store::SqliteOptions`]).
    pub group_commit: bool,
    /// PostgreSQL store; `None`: the embedded SQLite database (the password is never shown).
    pub database: Option<DatabaseUrl>,
    /// Time between two pruning runs of the maintenance task.
    pub prune_interval: Duration,
    /// What one pruning run deletes.
    pub prune: PruneLimits,
    /// 0: unlimited.
    pub registrations_per_minute_per_se: u32,
    /// Service id -> calls offered.
    pub services: BTreeMap<String, Vec<String>>,
    pub policy: Policy,
}

impl Config {
    /// Reads `path` (absent file: an error naming `server init`) and applies `overrides`.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut file: ConfigFile = http_serve::config::read_toml(path, "server")?;
        for p in [
            &mut file.tls_cert,
            &mut file.tls_key,
            &mut file.database_ca_file,
        ]
        .into_iter()
        .flatten()
        {
            *p = http_serve::tls::relative_to_file(path, p);
        }
        Config::from_parts(file, overrides)
    }

    /// Validates a parsed file plus overrides.
    pub fn from_parts(file: ConfigFile, overrides: &Overrides) -> Result<Config, ConfigError> {
        let listen = match (&overrides.listen, &file.listen) {
            (Some(a), _) => *a,
            (None, Some(text)) => SocketAddr::from_str(text)
                .map_err(|e| invalid("listen", format!("`{text}` is not IP:PORT ({e})")))?,
            (None, None) => SocketAddr::from_str(DEFAULT_LISTEN)
                .map_err(|e| invalid("listen", e.to_string()))?,
        };
        let tls = http_serve::tls::check_listen(
            listen,
            &http_serve::tls::ListenSettings {
                tls_cert: overrides.tls_cert.clone().or(file.tls_cert),
                tls_key: overrides.tls_key.clone().or(file.tls_key),
                insecure_http: overrides.insecure_http || file.insecure_http.unwrap_or(false),
            },
        )?;
        let ca_hex = overrides
            .issuer_ca_public_key
            .clone()
            .or(file.issuer_ca_public_key)
            .unwrap_or_default();
        let issuer_ca_public_key = parse_public_key(&ca_hex).map_err(|reason| {
            invalid(
                "issuer_ca_public_key",
                format!("{reason}; export it with `card-emulator ca public-key --ca CA_FILE` and set it in server.toml or with --issuer-ca")
            )
        })?;

        let mut services = BTreeMap::new();
        for (id, s) in file.services {
            services.insert(id, s.calls);
        }
        for spec in &overrides.services {
            let (id, calls) = spec
                .split_once('=')
                .ok_or_else(|| invalid("--service", format!("`{spec}` is not ID=CALL,CALL")))?;
            services.insert(id.to_owned(), split_calls(calls));
        }
        for (id, calls) in &services {
            check_service_id(id).map_err(|r| invalid(format!("service `{id}`"), r))?;
            if calls.is_empty() {
                return Err(invalid(
                    format!("service `{id}`"),
                    "offers no call; list some of: echo, provision",
                ));
            }
            for c in calls {
                if !KNOWN_CALLS.contains(&c.as_str()) {
                    return Err(invalid(
                        format!("service `{id}`"),
                        format!("unknown call `{c}`; the server executes: echo, provision"),
                    ));
                }
            }
        }

        let mut grants = Vec::new();
        for (i, g) in file.grants.into_iter().enumerate() {
            let what = format!("grants[{i}] (service `{}`)", g.service);
            let until = g.until.to_unix().map_err(|r| invalid(&what, r))?;
            let subject =
                SubjectPattern::parse(&g.eid, g.iccid.as_deref()).map_err(|r| invalid(&what, r))?;
            grants.push(make_grant(
                &services, &what, g.service, subject, g.calls, until,
            )?);
        }
        for spec in &overrides.grants {
            let what = format!("--grant `{spec}`");
            let mut parts = spec.splitn(4, ':');
            let (Some(service), Some(subject), Some(calls), Some(until)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(invalid(what, "expected SERVICE:SUBJECT:CALLS:UNTIL"));
            };
            let (eid, iccid) = match subject.split_once('/') {
                Some((e, i)) => (e, Some(i)),
                None => (subject, None),
            };
            let subject = SubjectPattern::parse(eid, iccid).map_err(|r| invalid(&what, r))?;
            let calls = if calls == "*" {
                None
            } else {
                Some(split_calls(calls))
            };
            let until = parse_time(until).map_err(|r| invalid(&what, r))?;
            grants.push(make_grant(
                &services,
                &what,
                service.to_owned(),
                subject,
                calls,
                until,
            )?);
        }

        let max_body_bytes = overrides
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", "below 1024 no registration fits"));
        }
        let timeout_ms = overrides
            .request_timeout_ms
            .or(file.request_timeout_ms)
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(invalid("request_timeout_ms", "must be at least 1"));
        }
        let connection_lifetime_secs = file
            .connection_lifetime_secs
            .unwrap_or(DEFAULT_CONNECTION_LIFETIME_SECS);
        if connection_lifetime_secs == 0 {
            return Err(invalid("connection_lifetime_secs", "must be at least 1"));
        }
        let prune_interval = duration(
            "prune_interval",
            file.prune_interval.as_deref(),
            DEFAULT_PRUNE_INTERVAL,
        )?;
        let max_rows = file.prune_max_rows.unwrap_or(DEFAULT_PRUNE_MAX_ROWS);
        if max_rows == 0 {
            return Err(invalid("prune_max_rows", "must be at least 1"));
        }
        let prune = PruneLimits {
            max_rows,
            nonce_retention_secs: duration(
                "nonce_retention",
                file.nonce_retention.as_deref(),
                DEFAULT_NONCE_RETENTION,
            )?
            .as_secs(),
            audit_retention_secs: duration(
                "audit_retention",
                file.audit_retention.as_deref(),
                DEFAULT_AUDIT_RETENTION,
            )?
            .as_secs(),
        };
        let registrations_per_minute_per_se = overrides
            .registrations_per_minute_per_se
            .or(file.registrations_per_minute_per_se)
            .unwrap_or(DEFAULT_REGISTRATIONS_PER_MINUTE_PER_SE);
        Ok(Config {
            listen,
            tls,
            issuer_ca_public_key,
            max_body_bytes,
            request_timeout: Duration::from_millis(timeout_ms),
            connection_lifetime_secs,
            durability: file.durability.unwrap_or_default(),
            group_commit: file.group_commit.unwrap_or(true),
            database: database(
                overrides.database.as_ref().or(file.database.as_ref()),
                overrides.database_ca_file.clone().or(file.database_ca_file),
            )?,
            prune_interval,
            prune,
            registrations_per_minute_per_se,
            services,
            policy: Policy { grants },
        })
    }
}

/// The PostgreSQL store's URL, checked as [`DatabaseUrl::parse`] checks it, with its CA file.
pub fn database(
    url: Option<&RawDatabaseUrl>,
    ca_file: Option<PathBuf>,
) -> Result<Option<DatabaseUrl>, ConfigError> {
    let url = match (url, ca_file) {
        (None, None) => return Ok(None),
        (None, Some(_)) => {
            return Err(invalid(
                "database_ca_file",
                "is set, but no PostgreSQL `database` is; set database (or --database), or \
                 remove database_ca_file",
            ))
        }
        (Some(url), ca_file) => {
            let url = url
                .parse()
                .map_err(|e| invalid("database", e.to_string()))?;
            match ca_file {
                Some(ca) => url
                    .with_ca_file(ca)
                    .map_err(|e| invalid("database_ca_file", e.to_string()))?,
                None => url,
            }
        }
    };
    Ok(Some(url))
}

/// A duration as a human writes it (`60s`, `15m`, `7d`), at least one second; `default`
/// when absent.
fn duration(what: &str, text: Option<&str>, default: &str) -> Result<Duration, ConfigError> {
    let text = text.unwrap_or(default).trim();
    let d = humantime::parse_duration(text).map_err(|e| {
        invalid(
            what,
            format!("`{text}` is not a duration such as 60s, 15m, 12h or 90d: {e}"),
        )
    })?;
    if d < Duration::from_secs(1) {
        return Err(invalid(what, format!("`{text}` is below one second")));
    }
    Ok(d)
}

fn make_grant(
    services: &BTreeMap<String, Vec<String>>,
    what: &str,
    service: String,
    subject: SubjectPattern,
    calls: Option<Vec<String>>,
    until: u64,
) -> Result<Grant, ConfigError> {
    let offered = services.get(&service).ok_or_else(|| {
        invalid(
            what,
            format!("service `{service}` is not configured; add a [services.{service}] table"),
        )
    })?;
    let calls = match calls {
        None => offered.clone(),
        Some(calls) => {
            for c in &calls {
                if !offered.contains(c) {
                    return Err(invalid(
                        what,
                        format!("call `{c}` is not offered by service `{service}`"),
                    ));
                }
            }
            calls
        }
    };
    Ok(Grant {
        service,
        subject,
        calls,
        until,
    })
}

fn split_calls(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A service identifier as R carries it: UTF-8, 1..32 bytes, no control characters, no `/`
/// (it is a path segment of the HTTP API).
pub fn check_service_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_SERVICE_ID_LEN {
        return Err(format!(
            "a service id has 1 to {MAX_SERVICE_ID_LEN} bytes of UTF-8"
        ));
    }
    if id.chars().any(|c| c.is_control() || c == '/' || c == ',') {
        return Err("a service id has no control character, `/` or `,`".into());
    }
    Ok(())
}

/// A SEC1 uncompressed P-256 point in hex: 65 bytes starting with `04`.
pub fn parse_public_key(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("no issuer CA public key is configured".into());
    }
    let bytes = hex::decode(text).map_err(|e| format!("the public key is not hex ({e})"))?;
    if bytes.len() != 65 || bytes.first() != Some(&0x04) {
        return Err(format!(
            "a public key is 65 bytes starting with 04 (SEC1 uncompressed), got {} bytes",
            bytes.len()
        ));
    }
    Ok(bytes)
}

impl SubjectPattern {
    /// `eid` is `*` or 32 hex digits; `iccid` (decimal digits) narrows to one container.
    pub fn parse(eid: &str, iccid: Option<&str>) -> Result<SubjectPattern, String> {
        let eid = eid.trim();
        let iccid = match iccid.map(str::trim) {
            None | Some("") | Some("*") => None,
            Some(text) => Some(
                Iccid::from_digits(text)
                    .map_err(|e| format!("iccid `{text}`: {e} (write the decimal digits)"))?,
            ),
        };
        if eid == "*" {
            if iccid.is_some() {
                return Err("an ICCID needs the EID of its SE (eid = \"*\" with an iccid)".into());
            }
            return Ok(SubjectPattern::Any);
        }
        let eid = Eid::from_str(eid).map_err(|e| format!("eid `{eid}`: {e}"))?;
        Ok(match iccid {
            None => SubjectPattern::Se(eid.0),
            Some(i) => SubjectPattern::Container(eid.0, *i.as_bytes()),
        })
    }
}

/// Seconds since the Unix epoch now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The starter `server.toml` that `server init` writes.
pub fn starter_config() -> String {
    format!(
        r#"# Configuration of the mutual-authentication server (server/README.md explains every key).
# Command-line options of `server run` override what is set here.

# Where to listen. Loopback by default: put the server behind the portal or a reverse proxy.
listen = "{DEFAULT_LISTEN}"

# HTTPS: certificate chain and private key in PEM (the key mode 0600), relative to this
# file. Without them the server speaks plain HTTP, which it refuses on a non-loopback
# address unless insecure_http = true (a TLS proxy in front). `server init --tls` writes a
# self-signed pair for localhost.
# tls_cert = "tls-cert.pem"
# tls_key = "tls-key.pem"
# insecure_http = false

# Public key of the card issuer CA that certifies the SE keys: 65 bytes, hex, SEC1
# uncompressed (04 || X || Y). Print it with `card-emulator ca public-key --ca CA_FILE`.
issuer_ca_public_key = ""

# Request body limit (bytes), time allowed per request (ms), and the longest life of a
# secure connection (seconds; a grant that ends sooner ends the connection sooner).
max_body_bytes = {DEFAULT_MAX_BODY_BYTES}
request_timeout_ms = {DEFAULT_REQUEST_TIMEOUT_MS}
connection_lifetime_secs = {DEFAULT_CONNECTION_LIFETIME_SECS}

# SQLite durability: "full" fsyncs every commit (grants and nonces survive a power loss);
# "normal" survives a crash or SIGKILL of the server but may lose the last commits on power
# loss, for more registrations per second.
durability = "full"

# SQLite group commit: the writes of concurrent requests share one commit, so one fsync;
# each request is still answered only once its own write is durable. false: one commit and
# one fsync per write (slower under load).
group_commit = true

# PostgreSQL instead of the embedded SQLite database DIR/server.db, e.g. for several server
# instances on one database; the schema is created and migrated at start. Prefer the
# SERVER_DATABASE environment variable when the URL holds a password (else keep this file
# mode 0600). TLS: `?sslmode=require` verifies the database server's certificate and host
# name against database_ca_file (PEM, relative to this file), or the system's CAs without
# it; a host off loopback needs sslmode=require, or sslmode=disable said explicitly.
# database = "postgres://USER@127.0.0.1:5432/DBNAME"
# database_ca_file = "postgres-ca.pem"

# Pruning, every prune_interval and at most prune_max_rows rows per table per run: expired
# connections (their session keys are deleted, overwritten with zeros, and the WAL is
# truncated), SE nonces older than nonce_retention (a replayed R is still refused by its
# registration counter, which is kept), audit entries older than audit_retention.
# Durations: 60s, 15m, 12h, 90d.
prune_interval = "{DEFAULT_PRUNE_INTERVAL}"
prune_max_rows = {DEFAULT_PRUNE_MAX_ROWS}
nonce_retention = "{DEFAULT_NONCE_RETENTION}"
audit_retention = "{DEFAULT_AUDIT_RETENTION}"

# Registrations a minute per SE container (its certificate's EID and ICCID), counted once
# the SE's signature verified; more get HTTP 429. Each server instance counts its own.
# 0: unlimited.
registrations_per_minute_per_se = {DEFAULT_REGISTRATIONS_PER_MINUTE_PER_SE}

# Services: id -> the calls it offers (the server executes `echo` and `provision`).
[services.demo]
calls = ["echo", "provision"]

# Grant policy, read in order: the first entry that matches the SE and the service decides.
# An SE that no entry matches is refused (with a signed refusal).
#
# [[grants]]
# service = "demo"
# eid = "*"                          # every SE certified by the issuer CA, or 32 hex digits
# # iccid = "89000123456789012341"   # only this container of that EID (decimal digits)
# calls = ["echo", "provision"]      # absent: every call of the service
# until = "2027-01-01T00:00:00Z"     # RFC 3339 or Unix seconds
"#
    )
}

/// The starter `server.toml` with `tls_cert` and `tls_key` set to the pair `server init
/// --tls` writes beside it.
pub fn starter_config_with_tls() -> String {
    starter_config()
        .replace("# tls_cert = ", "tls_cert = ")
        .replace("# tls_key = ", "tls_key = ")
}

/// The starter `server.toml` of `server init`: with `tls_cert` and `tls_key` set when `tls`
/// ([`starter_config_with_tls`]), and with `database` set to `database` (uncommented) when
/// given. The text may then hold a password: write it with mode 0600.
pub fn starter_config_for(tls: bool, database: Option<&RawDatabaseUrl>) -> Zeroizing<String> {
    let text = Zeroizing::new(if tls {
        starter_config_with_tls()
    } else {
        starter_config()
    });
    let Some(url) = database else {
        return text;
    };
    let line = Zeroizing::new(format!("database = {}", *toml_string(url.expose())));
    Zeroizing::new(text.replacen(STARTER_DATABASE_LINE, &line, 1))
}

/// The commented `database` line of the starter file, which `server init --database`
/// replaces.
const STARTER_DATABASE_LINE: &str = "# database = \"postgres://USER@127.0.0.1:5432/DBNAME\"";

/// `text` as a TOML basic string: quoted, with `"`, `\` and control characters escaped.
fn toml_string(text: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(text.len() + 2));
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> String {
        format!("04{}", "aa".repeat(64))
    }

    fn parse(text: &str, o: &Overrides) -> Result<Config, ConfigError> {
        let file: ConfigFile =
            http_serve::config::parse_toml(text, std::path::Path::new("t"), "server")?;
        Config::from_parts(file, o)
    }

    #[test]
    fn starter_config_parses_once_the_ca_key_is_set() {
        let starter = starter_config();
        assert!(parse(&starter, &Overrides::default()).is_err());
        let o = Overrides {
            issuer_ca_public_key: Some(ca()),
            ..Overrides::default()
        };
        let c = parse(&starter, &o).unwrap();
        assert_eq!(c.services["demo"], vec!["echo", "provision"]);
        assert!(c.policy.grants.is_empty());
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.prune_interval, Duration::from_secs(60));
        assert_eq!(
            c.prune,
            PruneLimits {
                max_rows: DEFAULT_PRUNE_MAX_ROWS,
                nonce_retention_secs: 7 * 86_400,
                audit_retention_secs: 90 * 86_400,
            }
        );
        assert_eq!(
            c.registrations_per_minute_per_se,
            DEFAULT_REGISTRATIONS_PER_MINUTE_PER_SE
        );
    }

    #[test]
    fn pruning_and_rate_limit_settings_are_read_and_checked() {
        let base = format!("issuer_ca_public_key = \"{}\"\n", ca());
        let c = parse(
            &format!(
                "{base}prune_interval = \"5m\"\nprune_max_rows = 10\nnonce_retention = \"12h\"\n\
                 audit_retention = \"30d\"\nregistrations_per_minute_per_se = 0\n"
            ),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.prune_interval, Duration::from_secs(300));
        assert_eq!(c.prune.max_rows, 10);
        assert_eq!(c.prune.nonce_retention_secs, 43_200);
        assert_eq!(c.prune.audit_retention_secs, 30 * 86_400);
        assert_eq!(c.registrations_per_minute_per_se, 0);
        let o = Overrides {
            registrations_per_minute_per_se: Some(5),
            ..Overrides::default()
        };
        let c = parse(&format!("{base}registrations_per_minute_per_se = 30\n"), &o).unwrap();
        assert_eq!(c.registrations_per_minute_per_se, 5);
        for bad in [
            "prune_interval = \"0s\"",
            "prune_interval = \"soon\"",
            "prune_interval = 60",
            "prune_max_rows = 0",
            "nonce_retention = \"500ms\"",
            "audit_retention = \"ninety days\"",
            "registrations_per_minute_per_se = -1",
        ] {
            let e = parse(&format!("{base}{bad}\n"), &Overrides::default());
            assert!(e.is_err(), "{bad}");
        }
    }

    #[test]
    fn grants_from_file_and_command_line() {
        let text = format!(
            r#"issuer_ca_public_key = "{}"
[services.demo]
calls = ["echo", "provision"]
[[grants]]
service = "demo"
eid = "89049032000000000000000000000001"
iccid = "89000123456789012341"
calls = ["echo"]
until = "2030-01-01T00:00:00Z"
"#,
            ca()
        );
        let o = Overrides {
            grants: vec!["demo:*:*:1700000000".into()],
            ..Overrides::default()
        };
        let c = parse(&text, &o).unwrap();
        assert_eq!(c.policy.grants.len(), 2);
        assert_eq!(c.policy.grants[0].until, 1_893_456_000);
        assert_eq!(c.policy.grants[0].calls, vec!["echo"]);
        assert!(matches!(
            c.policy.grants[0].subject,
            SubjectPattern::Container(..)
        ));
        assert_eq!(c.policy.grants[1].subject, SubjectPattern::Any);
        assert_eq!(c.policy.grants[1].calls, vec!["echo", "provision"]);
    }

    #[test]
    fn a_grant_for_an_unconfigured_service_or_call_is_an_error() {
        let base = format!(
            "issuer_ca_public_key = \"{}\"\n[services.demo]\ncalls = [\"echo\"]\n",
            ca()
        );
        for g in [
            "other:*:*:0",
            "demo:*:provision:0",
            "demo:xyz:*:0",
            "demo:*:*:soon",
        ] {
            let o = Overrides {
                grants: vec![g.into()],
                ..Overrides::default()
            };
            assert!(parse(&base, &o).is_err(), "{g}");
        }
    }

    #[test]
    fn a_database_url_is_checked_at_start_and_never_shown_with_its_password() {
        let base = format!("issuer_ca_public_key = \"{}\"\n", ca());
        let c = parse(&base, &Overrides::default()).unwrap();
        assert!(c.database.is_none(), "SQLite stays the default");
        let file = format!("{base}database = \"postgres://app:hunter2@127.0.0.1:5432/vsc\"\n");
        let c = parse(&file, &Overrides::default()).unwrap();
        let url = c.database.as_ref().unwrap().to_string();
        assert_eq!(url, "postgres://app@127.0.0.1:5432/vsc");
        assert!(!format!("{c:?}").contains("hunter2"));
        let o = Overrides {
            database: Some(RawDatabaseUrl::new("postgres://other@127.0.0.1:6543/db2")),
            ..Overrides::default()
        };
        let c = parse(&file, &o).unwrap();
        assert_eq!(
            c.database.unwrap().to_string(),
            "postgres://other@127.0.0.1:6543/db2"
        );
        for bad in ["sqlite:server.db", "postgres://app:hunter2@127.0.0.1:x/vsc"] {
            let e = parse(
                &format!("{base}database = \"{bad}\"\n"),
                &Overrides::default(),
            )
            .unwrap_err()
            .to_string();
            assert!(e.starts_with("database: "), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn debug_of_the_file_and_the_overrides_never_shows_the_database_password() {
        for url in [
            "postgres://app:hunter2@127.0.0.1:5432/vsc",
            "postgres://app@127.0.0.1:5432/vsc?password=hunter2",
            // Does not parse (the port): still hidden.
            "postgres://app:hunter2@127.0.0.1:x/vsc",
        ] {
            let file: ConfigFile = http_serve::config::parse_toml(
                &format!("database = \"{url}\"\n"),
                Path::new("t"),
                "server",
            )
            .unwrap();
            assert_eq!(file.database.as_ref().unwrap().expose(), url);
            let shown = format!("{file:?} {file:#?}");
            assert!(shown.contains("RawDatabaseUrl("), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
            let o = Overrides {
                database: Some(url.parse().unwrap()),
                ..Overrides::default()
            };
            let shown = format!("{o:?} {o:#?} {}", o.database.as_ref().unwrap());
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let o = Overrides {
            database: Some(RawDatabaseUrl::new(
                "postgres://app:hunter2@127.0.0.1:5432/vsc",
            )),
            ..Overrides::default()
        };
        assert!(
            format!("{o:?}").contains("postgres://app@127.0.0.1:5432/vsc"),
            "{o:?}"
        );
    }

    #[test]
    fn database_ca_file_is_relative_to_the_file_and_needs_a_database_with_tls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        let base = format!("issuer_ca_public_key = \"{}\"\n", ca());
        std::fs::write(
            &path,
            format!(
                "{base}database = \"postgres://app:hunter2@db.example/vsc?sslmode=require\"\n\
                 database_ca_file = \"pg-ca.pem\"\n"
            ),
        )
        .unwrap();
        let c = Config::load(&path, &Overrides::default()).unwrap();
        let url = c.database.as_ref().unwrap();
        assert_eq!(url.ca_file(), Some(dir.path().join("pg-ca.pem").as_path()));
        assert!(!format!("{c:?}").contains("hunter2"));
        let o = Overrides {
            database_ca_file: Some(PathBuf::from("other.pem")),
            ..Overrides::default()
        };
        let c = Config::load(&path, &o).unwrap();
        assert_eq!(c.database.unwrap().ca_file(), Some(Path::new("other.pem")));

        let e = parse(
            &format!("{base}database_ca_file = \"ca.pem\"\n"),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("database_ca_file: "), "{e}");
        assert!(e.contains("set database"), "{e}");
        let e = parse(
            &format!(
                "{base}database = \"postgres://a:hunter2@127.0.0.1/v?sslmode=disable\"\n\
                 database_ca_file = \"ca.pem\"\n"
            ),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sslmode=disable"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = parse(
            &format!("{base}database = \"postgres://a:hunter2@db.example/v\"\n"),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("database: ") && e.contains("sslmode=require"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn init_database_sets_the_url_uncommented_and_it_reads_back() {
        assert_eq!(*starter_config_for(false, None), starter_config());
        assert_eq!(*starter_config_for(true, None), starter_config_with_tls());
        assert!(starter_config().contains(STARTER_DATABASE_LINE));
        for url in [
            "postgres://app:hunter2@127.0.0.1:5432/vsc",
            "postgres://app:a%22b%5Cc@127.0.0.1/vsc?connect_timeout=3",
            "postgres://app:q\"uo\\te\tx@127.0.0.1/vsc",
        ] {
            let raw = RawDatabaseUrl::new(url);
            for tls in [false, true] {
                let text = starter_config_for(tls, Some(&raw));
                assert!(!text.contains(STARTER_DATABASE_LINE));
                let file: ConfigFile =
                    http_serve::config::parse_toml(&text, Path::new("t"), "server").unwrap();
                assert_eq!(
                    file.database.as_ref().map(RawDatabaseUrl::expose),
                    Some(url)
                );
                assert_eq!(file.tls_cert.is_some(), tls);
            }
        }
    }

    #[test]
    fn tls_entries_and_the_plain_http_rule() {
        let o = Overrides {
            issuer_ca_public_key: Some(ca()),
            ..Overrides::default()
        };
        let c = parse(&starter_config_with_tls(), &o).unwrap();
        let tls = c.tls.expect("init --tls names the pair");
        assert_eq!(tls.cert, Path::new("tls-cert.pem"));
        assert_eq!(tls.key, Path::new("tls-key.pem"));
        assert!(parse(&starter_config(), &o).unwrap().tls.is_none());
        let open = format!(
            "issuer_ca_public_key = \"{}\"\nlisten = \"0.0.0.0:8080\"\n",
            ca()
        );
        let e = parse(&open, &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("--insecure-http"), "{e}");
        assert!(parse(
            &format!("{open}insecure_http = true\n"),
            &Overrides::default()
        )
        .is_ok());
        let flag = Overrides {
            insecure_http: true,
            ..Overrides::default()
        };
        assert!(parse(&open, &flag).unwrap().tls.is_none());
        let half = format!("{open}tls_cert = \"c.pem\"\n");
        assert!(
            parse(&half, &flag).is_err(),
            "a certificate without its key"
        );
    }

    #[test]
    fn unknown_keys_and_calls_are_errors() {
        assert!(parse(
            &format!("issuer_ca_public_key = \"{}\"\nlisten_on = 1\n", ca()),
            &Overrides::default()
        )
        .is_err());
        assert!(parse(
            &format!(
                "issuer_ca_public_key = \"{}\"\n[services.x]\ncalls = [\"rm\"]\n",
                ca()
            ),
            &Overrides::default()
        )
        .is_err());
    }
}
