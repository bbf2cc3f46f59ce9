//! What the two HTTP services, `server` and `portal`, share: the serve loop (header
//! timeout, graceful shutdown, SIGINT/SIGTERM), their JSON error answers, their
//! configuration error and their log set-up.
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod logging;
mod serve;

pub use config::ConfigError;
pub use error::ApiError;
pub use serve::{serve, shutdown_signal};
