//! What the two HTTP services, `server` and `portal`, share: the serve loop (header
//! timeout, TLS handshake, graceful shutdown, SIGINT/SIGTERM), TLS files and the plain-HTTP
//! rule, their JSON error answers, their configuration error, their log set-up and their
//! Prometheus metrics.
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod logging;
pub mod metrics;
mod serve;
pub mod tls;

pub use config::ConfigError;
pub use error::ApiError;
pub use serve::{serve, serve_with_tls, shutdown_signal};
