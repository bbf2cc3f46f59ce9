//! The service provider's server of the mutual authentication (seed document 1).
//!
//! It checks registration requests R (certificate chain to the issuer CA, SE signature,
//! fresh nonce, rising registration counter), decides the grant from its policy, answers
//! a signed R' (a refusal is signed too), terminates the AES-GCM secure connection and
//! executes the calls `echo` and `provision`. The wire contract is
//! `apdu-specs/docs/mutual-auth.md`; the crypto is `secure_channel::mutual`, written once for
//! card and server. `server/README.md` documents the CLI, configuration and HTTP errors.
//!
//! Layers: [`config`] and [`policy`] (what is allowed), [`store`] (durable state behind the
//! [`store::Store`] trait, SQLite by default), [`service`] (the protocol, synchronous),
//! [`http`] (axum routes, limits, JSON errors), [`keyfile`] (the data directory);
//! beside the engine: [`prune`] (the maintenance task: pruning, summaries), [`ratelimit`]
//! (per-SE registration budget), [`malformed`] (counters of requests that do not parse).
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod http;
pub mod keyfile;
pub mod malformed;
pub mod policy;
pub mod prune;
pub mod ratelimit;
pub mod service;
pub mod store;

pub use config::{Config, Overrides};
pub use error::ApiError;
pub use http::router;
pub use http_serve::serve;
pub use service::{system_clock, Clock, Engine};
pub use store::{SqliteStore, Store};
