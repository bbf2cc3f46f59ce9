//! `server`: command line of the mutual-authentication server (init, public-key, run, audit).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use server::config::RawDatabaseUrl;
use server::keyfile::{self, CONFIG_FILE};
use server::store::Store;

mod selfsigned;

/// The service provider's server of the mutual authentication: verifies secure elements
/// (certificate, signature, fresh nonce), grants services by policy with a signed answer,
/// and serves `echo` and `provision` over the AES-GCM secure connection.
///
/// Start with `server init --data DIR`, set the issuer CA key and grants in DIR/server.toml,
/// then `server run --data DIR`.
#[derive(Debug, Parser)]
#[command(name = "server", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
// Parsed once at start: the size of `Run` costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Create the data directory: the server's P-256 signing key (server.key, mode 0600),
    /// the SQLite database (server.db, WAL mode; none with --database) and a starter
    /// server.toml; print the public key to install into containers as their trust anchor.
    Init {
        /// Data directory to create (refused if it already holds a key).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Also create a self-signed TLS pair for localhost, 127.0.0.1 and ::1 (tls-cert.pem,
        /// tls-key.pem 0600; one year) and name it in the starter server.toml. For tests
        /// and loopback: clients trust it with --ca-file DIR/tls-cert.pem (reader-client) or
        /// upstream_ca_file (portal).
        #[arg(long)]
        tls: bool,
        /// PostgreSQL instead of the embedded SQLite database: write `database = "URL"` into
        /// the new server.toml (then mode 0600: the URL may hold a password) and create no
        /// server.db. postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME, checked as `server run`
        /// checks it before anything is written. A password on the command line is visible
        /// to `ps` while init runs: prefer SERVER_DATABASE at `server run`.
        #[arg(long, value_name = "URL")]
        database: Option<RawDatabaseUrl>,
    },
    /// Print the server's public key (hex, 65 bytes, SEC1 uncompressed).
    PublicKey {
        /// Data directory made by `server init`.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
    /// Serve the HTTP API until SIGINT/SIGTERM.
    ///
    /// Routes: POST /v1/services/{service}/register, POST /v1/services/{service}/messages,
    /// GET /healthz. The address is printed on stdout once listening. Every prune_interval
    /// (server.toml) expired connections, old nonces and old audit entries are deleted.
    Run(RunArgs),
    /// Print the last entries of the audit log (time, subject, service, decision, reason).
    Audit {
        /// Data directory made by `server init`.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// How many entries, newest last.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// PostgreSQL database to read instead of DIR/server.db [default: `database` of
        /// DIR/server.toml, if set].
        #[arg(
            long,
            value_name = "URL",
            env = "SERVER_DATABASE",
            hide_env_values = true
        )]
        database: Option<RawDatabaseUrl>,
        /// CA certificate(s) in PEM that verify the PostgreSQL server [default:
        /// `database_ca_file` of DIR/server.toml, if set].
        #[arg(long, value_name = "FILE")]
        database_ca_file: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Data directory made by `server init`.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Configuration file [default: DIR/server.toml].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, overriding `listen` of the file (default 127.0.0.1:8080;
    /// port 0 picks a free port).
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<SocketAddr>,
    /// PostgreSQL database instead of the embedded SQLite DIR/server.db, overriding
    /// `database`: postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME. The schema is created or
    /// migrated at start. Pass a password through the environment variable, which `ps` does
    /// not show.
    #[arg(
        long,
        value_name = "URL",
        env = "SERVER_DATABASE",
        hide_env_values = true
    )]
    database: Option<RawDatabaseUrl>,
    /// CA certificate(s) in PEM that verify the PostgreSQL server's certificate (its host
    /// name included), overriding `database_ca_file`: TLS to the database (sslmode in the
    /// URL: prefer, the default, or require). Without it, sslmode=require trusts the
    /// system's CAs.
    #[arg(long, value_name = "FILE")]
    database_ca_file: Option<PathBuf>,
    /// Issuer CA public key (hex, 65 bytes), overriding `issuer_ca_public_key`.
    #[arg(long = "issuer-ca", value_name = "HEX")]
    issuer_ca: Option<String>,
    /// Add or replace a service and its calls, e.g. `demo=echo,provision` (repeatable).
    #[arg(long = "service", value_name = "ID=CALLS")]
    services: Vec<String>,
    /// Append a grant after the file's: SERVICE:SUBJECT:CALLS:UNTIL with SUBJECT `*`, an
    /// EID (32 hex digits) or EID/ICCID (ICCID in digits), CALLS `*` or `echo,provision`,
    /// UNTIL Unix seconds or RFC 3339. E.g. `demo:*:*:2027-01-01T00:00:00Z` (repeatable).
    #[arg(long = "grant", value_name = "SPEC")]
    grants: Vec<String>,
    /// Time allowed per request in milliseconds, overriding `request_timeout_ms`.
    #[arg(long, value_name = "MS")]
    request_timeout_ms: Option<u64>,
    /// Request body limit in bytes, overriding `max_body_bytes`.
    #[arg(long, value_name = "BYTES")]
    max_body_bytes: Option<usize>,
    /// Registrations a minute per SE container (0: unlimited), overriding
    /// `registrations_per_minute_per_se`.
    #[arg(long, value_name = "N")]
    registrations_per_minute_per_se: Option<u32>,
    /// Serve HTTPS with this certificate chain (PEM, the server's first), overriding
    /// `tls_cert`; needs --tls-key.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM, mode 0600 or stricter), overriding `tls_key`.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (a TLS proxy in front of this port);
    /// without TLS, such an address is refused at start.
    #[arg(long)]
    insecure_http: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    http_serve::logging::init();
    match cli.command {
        Command::Init {
            data,
            tls,
            database,
        } => init(&data, tls, database.as_ref()),
        Command::PublicKey { data } => {
            let key = keyfile::load_key(&data)?;
            println!("{}", hex::encode_upper(key.verifying_key().to_sec1()));
            Ok(())
        }
        Command::Run(args) => run(args),
        Command::Audit {
            data,
            limit,
            database,
            database_ca_file,
        } => audit(&data, database, database_ca_file, limit),
    }
}

fn init(data: &Path, tls: bool, database: Option<&RawDatabaseUrl>) -> anyhow::Result<()> {
    let config = data.join(CONFIG_FILE);
    // Checked before anything is written, as `server run` checks it.
    let postgres = match database {
        Some(raw) => {
            let url = raw.parse().context("--database is not usable")?;
            if config.exists() {
                anyhow::bail!(
                    "{} already exists and would be kept without the database URL; set                      `database` in it and run init without --database, or move it away",
                    config.display()
                );
            }
            Some(url)
        }
        None => None,
    };
    keyfile::create_data_dir(data)?;
    let key = keyfile::create_key(data)?;
    let tls_files = if tls {
        Some(selfsigned::create(data)?)
    } else {
        None
    };
    if postgres.is_none() {
        let db = keyfile::create_db_file(data)?;
        server::SqliteStore::open(&db)
            .with_context(|| format!("cannot create the database {}", db.display()))?;
    }
    let wrote_config = if config.exists() {
        false
    } else {
        let text = server::config::starter_config_for(tls_files.is_some(), database);
        if database.is_some() {
            // The URL may hold a password: 0600, like the keys.
            keyfile::write_new_secret_file(&config, text.as_bytes())?;
        } else {
            std::fs::write(&config, text.as_bytes())
                .with_context(|| format!("cannot write {}", config.display()))?;
        }
        true
    };
    let public = hex::encode_upper(key.verifying_key().to_sec1());
    println!("{public}");
    eprintln!(
        "Server initialized in {dir}: signing key server.key (0600), {db}{cfg}.
The line above is the server's public key. Next:
  1. Install it into each container as the trust anchor of the service, in admin mode
     (GlobalPlatform STORE DATA, DGI A001 {{80 service id, 81 public key}}).
  2. Put the issuer CA public key (`card-emulator ca public-key --ca CA_FILE`) in {config} as
     issuer_ca_public_key, and add [[grants]] for the SEs you serve.
  3. Start: server run --data {dir}
`server public-key --data {dir}` prints the key again.",
        dir = data.display(),
        db = match &postgres {
            // Without its password: the URL's Display never shows it.
            Some(url) => format!(
                "database PostgreSQL {url} (its schema is created at the first `server run`)"
            ),
            None => "database server.db".to_owned(),
        },
        cfg = if postgres.is_some() {
            ", starter configuration server.toml (0600: it holds the database URL)"
        } else if wrote_config {
            ", starter configuration server.toml"
        } else {
            " (existing server.toml kept)"
        },
        config = config.display(),
    );
    if let Some((cert, key)) = &tls_files {
        eprintln!(
            "TLS: self-signed certificate {cert} (localhost, 127.0.0.1, ::1; one year) and its key \
{key} (0600){named}. Clients trust it with `reader-client --ca-file {cert}` or the portal's \
upstream_ca_file.",
            cert = cert.display(),
            key = key.display(),
            named = if wrote_config {
                ", named in server.toml"
            } else {
                "; add tls_cert and tls_key to the existing server.toml"
            },
        );
    }
    Ok(())
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let key = keyfile::load_key(&args.data)?;
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| args.data.join(CONFIG_FILE));
    let overrides = server::Overrides {
        listen: args.listen,
        issuer_ca_public_key: args.issuer_ca,
        services: args.services,
        grants: args.grants,
        database: args.database,
        database_ca_file: args.database_ca_file,
        request_timeout_ms: args.request_timeout_ms,
        max_body_bytes: args.max_body_bytes,
        registrations_per_minute_per_se: args.registrations_per_minute_per_se,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        insecure_http: args.insecure_http,
    };
    let config = server::Config::load(&config_path, &overrides)
        .context("the server's configuration is not usable")?;
    // Before anything is written: a bad certificate or an open key stops the start here.
    let tls = config
        .tls
        .as_ref()
        .map(http_serve::tls::server_config)
        .transpose()
        .context("the server's TLS certificate and key are not usable")?;
    let sqlite = server::store::SqliteOptions {
        durability: config.durability,
        group_commit: config.group_commit,
    };
    let store = open_store(&args.data, config.database.as_ref(), sqlite)?;
    let listen = config.listen;
    let grants = config.policy.grants.len();
    let engine = server::Engine::new(config, key, store, server::system_clock())
        .context("issuer_ca_public_key is not a P-256 public key; copy it again from `card-emulator ca public-key --ca CA_FILE`")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
            format!("cannot listen on {listen}; is another process using the port? (try --listen 127.0.0.1:0)")
        })?;
        let addr = listener.local_addr()?;
        tracing::info!(
            services = ?engine.config().services.keys().collect::<Vec<_>>(),
            grants,
            "server ready"
        );
        // The address goes to stdout alone on its line so scripts and tests can read it.
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("server listening on {scheme}://{addr}");
        let header_timeout = engine.config().request_timeout;
        let prune_interval = engine.config().prune_interval;
        let engine = Arc::new(engine);
        // Pruning (expired connections and their keys, old nonces and audit entries) and the
        // summaries of unaudited refusals; ends with the runtime.
        tokio::spawn(server::prune::run(engine.clone(), prune_interval));
        http_serve::serve_with_tls(listener, server::router(engine), header_timeout, tls, http_serve::shutdown_signal())
            .await
            .context("the server stopped on an I/O error")
    })
}

/// PostgreSQL when a database URL is set (its store runs its own small runtime: none exists
/// yet), else SQLite DIR/server.db. A PostgreSQL error names the fix and writes nothing.
fn open_store(
    data: &Path,
    database: Option<&server::store::DatabaseUrl>,
    sqlite: server::store::SqliteOptions,
) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(url) = database {
        tracing::info!(database = %url, transport = %url.transport(), "store: PostgreSQL");
        let store = server::store::PgStore::open(url, &server::store::PgOptions::default())?;
        return Ok(Arc::new(store));
    }
    let db = keyfile::create_db_file(data)?;
    Ok(Arc::new(
        server::SqliteStore::open_with_options(&db, sqlite)
            .with_context(|| format!("cannot open the database {}", db.display()))?,
    ))
}

fn audit(
    data: &Path,
    database: Option<RawDatabaseUrl>,
    ca_file: Option<PathBuf>,
    limit: usize,
) -> anyhow::Result<()> {
    // --database and --database-ca-file, else `database` and `database_ca_file` of
    // DIR/server.toml (read for those keys alone).
    let config = data.join(CONFIG_FILE);
    let file = if config.exists() {
        http_serve::config::read_toml::<server::config::ConfigFile>(&config, "server")?
    } else {
        server::config::ConfigFile::default()
    };
    let file_ca = file
        .database_ca_file
        .map(|ca| http_serve::tls::relative_to_file(&config, &ca));
    let url = server::config::database(
        database.as_ref().or(file.database.as_ref()),
        ca_file.or(file_ca),
    )
    .context("the database settings are not usable")?;
    let store = match url {
        Some(url) => open_store(data, Some(&url), Default::default())?,
        None => {
            let db = data.join(keyfile::DB_FILE);
            if !db.exists() {
                anyhow::bail!(
                    "{} does not exist; create the server with `server init --data DIR`",
                    db.display()
                );
            }
            Arc::new(server::SqliteStore::open(&db)?)
        }
    };
    for e in store.audit_log(limit)? {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.time)
            ),
            e.subject,
            e.service,
            e.decision,
            e.reason
        );
    }
    Ok(())
}
