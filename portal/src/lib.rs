//! The third-party portal: a stateless HTTP(S) relay between terminals and service servers.
//!
//! It maps a service id to the base URLs of its server instances (spreading requests over
//! the healthy ones, see [`upstreams`]) and forwards the two POST routes of the
//! mutual-authentication API (apdu-specs/docs/mutual-auth.md, "HTTP") with their bodies
//! unchanged. It holds no key and keeps no state: it cannot read or forge what it relays,
//! and anything it alters is refused by the SE or the server. What it does enforce is
//! hygiene: a body size limit and timeouts on both sides, and JSON errors for everything it
//! answers itself (unknown service 404, server unreachable 502, server too slow 504).
#![forbid(unsafe_code)]

pub mod config;
pub mod relay;
pub mod upstreams;

pub use config::{Config, ConfigError};
pub use http_serve::{serve, serve_with_tls};
pub use relay::{router, Relay};
pub use upstreams::{UpstreamStatus, Upstreams};
