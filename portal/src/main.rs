//! `portal`: command line of the stateless relay between terminals and service servers.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The untrusted third-party portal of the mutual authentication: relays registration and
/// secure-connection messages between terminals and service servers. It holds no key and
/// keeps no state.
#[derive(Debug, Parser)]
#[command(name = "portal", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the relay until SIGINT/SIGTERM.
    ///
    /// Routes: POST /v1/services/{service}/register and /v1/services/{service}/messages
    /// (bodies forwarded unchanged to the service's server), GET /healthz.
    ///
    /// Plain HTTP is allowed on loopback; on any other address give --tls-cert and
    /// --tls-key, or --insecure-http when a TLS proxy in front encrypts the traffic.
    ///
    /// Example: portal run --service demo=http://127.0.0.1:8080
    ///
    /// Several instances of one server (same signing key and database): repeat --service
    /// for the id, e.g. --service demo=http://127.0.0.1:8080 --service
    /// demo=http://127.0.0.1:8082. Requests are spread round-robin over the healthy
    /// instances; an instance that refuses a connection, or fails unhealthy_after health
    /// checks (GET /healthz every health_interval_ms) in a row, is taken out until it
    /// answers again; a request whose connection failed before any answer is retried once
    /// on another instance.
    ///
    /// HTTPS both ways: portal run --listen 0.0.0.0:8443 --tls-cert portal-cert.pem
    /// --tls-key portal-key.pem --upstream-ca-file server-cert.pem
    /// --service demo=https://server.example:8080
    Run {
        /// Address to listen on (loopback by default; port 0 picks a free port, printed on
        /// start).
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<SocketAddr>,
        /// TOML file: listen, max_body_bytes, request_timeout_ms, upstream_timeout_ms,
        /// tls_cert, tls_key, upstream_ca_file, insecure_http, health_interval_ms (1000),
        /// health_timeout_ms (1000), unhealthy_after (2) and a [services] table of
        /// id = "http[s]://server:port" or id = ["URL", "URL", ...] for several instances
        /// (paths relative to the file).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// A service and the base URL of its server (repeatable; repeating an id adds an
        /// instance of its server; an id given here replaces the file's entry for it). An
        /// https:// server needs --upstream-ca-file; http:// reaches a loopback server
        /// only, unless --insecure-http.
        #[arg(long = "service", value_name = "ID=URL")]
        services: Vec<String>,
        /// Serve HTTPS with this certificate chain (PEM, the portal's first), overriding
        /// `tls_cert`; needs --tls-key.
        #[arg(long, value_name = "FILE")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM, mode 0600 or stricter), overriding `tls_key`.
        #[arg(long, value_name = "FILE")]
        tls_key: Option<PathBuf>,
        /// PEM file of the CA (or the self-signed certificate) that https:// servers'
        /// certificates are verified against, overriding `upstream_ca_file`.
        #[arg(long, value_name = "FILE")]
        upstream_ca_file: Option<PathBuf>,
        /// Allow plain HTTP off loopback: listening on a non-loopback address without TLS
        /// (a TLS proxy in front) and http:// servers that are not on loopback.
        #[arg(long)]
        insecure_http: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    http_serve::logging::init();
    match cli.command {
        Command::Run {
            listen,
            config,
            services,
            tls_cert,
            tls_key,
            upstream_ca_file,
            insecure_http,
        } => run(
            listen,
            config,
            services,
            portal::config::TlsFlags {
                tls_cert,
                tls_key,
                upstream_ca_file,
                insecure_http,
            },
        ),
    }
}

fn run(
    listen: Option<SocketAddr>,
    config: Option<PathBuf>,
    services: Vec<String>,
    tls_flags: portal::config::TlsFlags,
) -> anyhow::Result<()> {
    let config = portal::Config::load(config.as_deref(), listen, &services, &tls_flags)
        .context("the portal's configuration is not usable")?;
    let tls = config
        .tls
        .as_ref()
        .map(http_serve::tls::server_config)
        .transpose()
        .context("the portal's TLS certificate and key are not usable")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}; is another process using the port? (try --listen 127.0.0.1:0)",
                    config.listen
                )
            })?;
        let addr = listener.local_addr()?;
        for (id, urls) in &config.services {
            for url in urls {
                tracing::info!(service = %id, server = %url, "relaying");
            }
        }
        let header_timeout = config.request_timeout;
        let relay = portal::Relay::new(config).context(
            "cannot build the HTTP client; is upstream_ca_file a valid CA certificate?",
        )?;
        let health_checks = relay.spawn_health_checks();
        let scheme = if tls.is_some() { "https" } else { "http" };
        // The address goes to stdout alone on its line so scripts and tests can read it.
        println!("portal listening on {scheme}://{addr}");
        let served = http_serve::serve_with_tls(listener, portal::router(relay), header_timeout, tls, http_serve::shutdown_signal())
            .await
            .context("the portal stopped on an I/O error");
        health_checks.abort();
        served
    })
}
