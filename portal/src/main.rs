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
    /// Example: portal run --service demo=http://127.0.0.1:8080
    Run {
        /// Address to listen on (loopback by default; port 0 picks a free port, printed on
        /// start).
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<SocketAddr>,
        /// TOML file: listen, max_body_bytes, request_timeout_ms, upstream_timeout_ms and a
        /// [services] table of id = "http://server:port".
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// A service and the base URL of its server (repeatable; adds to or replaces the
        /// file's entries).
        #[arg(long = "service", value_name = "ID=URL")]
        services: Vec<String>,
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
        } => run(listen, config, services),
    }
}

fn run(
    listen: Option<SocketAddr>,
    config: Option<PathBuf>,
    services: Vec<String>,
) -> anyhow::Result<()> {
    let config = portal::Config::load(config.as_deref(), listen, &services)
        .context("the portal's configuration is not usable")?;
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
        for (id, url) in &config.services {
            tracing::info!(service = %id, server = %url, "relaying");
        }
        let header_timeout = config.request_timeout;
        let relay = portal::Relay::new(config).context("cannot build the HTTP client")?;
        // The address goes to stdout alone on its line so scripts and tests can read it.
        println!("portal listening on http://{addr}");
        portal::serve(listener, portal::router(relay), header_timeout, http_serve::shutdown_signal())
            .await
            .context("the portal stopped on an I/O error")
    })
}
