//! Counters of malformed requests (bodies that are not the JSON, hex or TLV expected): kept
//! in memory and logged at debug, never written to the database, so garbage costs no
//! fsync and no audit row. The maintenance task logs a summary at info (`prune.rs`).
//!
//! Requests that parse but fail a check (certificate, signature, replay, policy) are
//! audited by the engine as before.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ApiError;

/// What was wrong with a malformed request, from its error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedKind {
    /// `malformed_json`: not the JSON object of the route.
    Json,
    /// `malformed_hex`: a field is not hex.
    Hex,
    /// `malformed_registration`: R does not decode.
    Registration,
    /// `malformed_message`: the `73` message does not decode.
    Message,
    /// `unsupported_version`: a protocol version this server does not speak.
    Version,
    /// Any other code the engine counted as malformed.
    Other,
}

impl MalformedKind {
    pub const ALL: [MalformedKind; 6] = [
        MalformedKind::Json,
        MalformedKind::Hex,
        MalformedKind::Registration,
        MalformedKind::Message,
        MalformedKind::Version,
        MalformedKind::Other,
    ];

    /// The kind of an error code of the HTTP API.
    pub fn of(code: &str) -> MalformedKind {
        match code {
            "malformed_json" => MalformedKind::Json,
            "malformed_hex" => MalformedKind::Hex,
            "malformed_registration" => MalformedKind::Registration,
            "malformed_message" => MalformedKind::Message,
            "unsupported_version" => MalformedKind::Version,
            _ => MalformedKind::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MalformedKind::Json => "json",
            MalformedKind::Hex => "hex",
            MalformedKind::Registration => "registration",
            MalformedKind::Message => "message",
            MalformedKind::Version => "version",
            MalformedKind::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How many malformed requests of each kind, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MalformedCounts([u64; MalformedKind::ALL.len()]);

impl MalformedCounts {
    pub fn get(&self, kind: MalformedKind) -> u64 {
        self.0[kind.index()]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The requests counted since `earlier`.
    pub fn since(&self, earlier: &MalformedCounts) -> MalformedCounts {
        let mut d = [0; MalformedKind::ALL.len()];
        for (i, v) in d.iter_mut().enumerate() {
            *v = self.0[i].saturating_sub(earlier.0[i]);
        }
        MalformedCounts(d)
    }
}

impl fmt::Display for MalformedCounts {
    /// `json 3, hex 1` (the kinds with a count).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for kind in MalformedKind::ALL {
            let n = self.get(kind);
            if n > 0 {
                write!(f, "{}{} {n}", if first { "" } else { ", " }, kind.name())?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// The engine's counters, one atomic per kind.
#[derive(Debug, Default)]
pub struct MalformedCounters {
    counts: [AtomicU64; MalformedKind::ALL.len()],
}

impl MalformedCounters {
    /// Counts `err` (the answer to a request that did not parse), logs it at debug, and
    /// returns it.
    pub fn record(&self, route: &'static str, service: &str, err: ApiError) -> ApiError {
        let kind = MalformedKind::of(err.code);
        self.counts[kind.index()].fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            route,
            service,
            code = err.code,
            "malformed request (counted, not audited): {}",
            err.message
        );
        err
    }

    pub fn snapshot(&self) -> MalformedCounts {
        let mut c = [0; MalformedKind::ALL.len()];
        for (v, a) in c.iter_mut().zip(&self.counts) {
            *v = a.load(Ordering::Relaxed);
        }
        MalformedCounts(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_counter() {
        let c = MalformedCounters::default();
        let codes = [
            "malformed_json",
            "malformed_hex",
            "malformed_registration",
            "malformed_message",
            "unsupported_version",
            "something_else",
        ];
        for (i, (kind, code)) in MalformedKind::ALL.into_iter().zip(codes).enumerate() {
            assert_eq!(kind.index(), i);
            assert_eq!(MalformedKind::of(code), kind, "{code}");
        }
        let before = c.snapshot();
        c.record(
            "register",
            "demo",
            ApiError::bad_request("malformed_hex", "x"),
        );
        c.record(
            "messages",
            "demo",
            ApiError::bad_request("malformed_hex", "x"),
        );
        c.record(
            "messages",
            "demo",
            ApiError::bad_request("malformed_json", "x"),
        );
        let d = c.snapshot().since(&before);
        assert_eq!(d.get(MalformedKind::Hex), 2);
        assert_eq!(d.total(), 3);
        assert_eq!(d.to_string(), "json 1, hex 2");
        assert_eq!(MalformedCounts::default().to_string(), "none");
    }
}
