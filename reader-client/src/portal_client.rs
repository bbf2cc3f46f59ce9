//! The portal's HTTP/JSON API, client side (mutual-auth.md "HTTP"): POST R, get R'; POST an up message, get the down message.
//!
//! Plain HTTP/1.1 with a blocking client (`ureq`, no TLS stack): the portal is untrusted
//! by design, so the protocol protects itself; the transport only carries blobs.

use apdu_specs::hexfmt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long one request to the portal may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Why a request to the portal failed.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("the portal URL {0:?} is not http://HOST:PORT (this client speaks plain HTTP; use a local TLS proxy for https)")]
    BadUrl(String),
    #[error("{url} answered HTTP {status} {code}: {message}")]
    Refused {
        url: String,
        status: u16,
        /// The machine code of the JSON error (`bad_signature`, `replay`, ...).
        code: String,
        message: String,
    },
    #[error("cannot reach the portal at {url}: {reason} (is `portal run` listening there?)")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered something that is not the expected JSON: {reason}")]
    BadAnswer { url: String, reason: String },
}

impl PortalError {
    /// True when the request may not have reached the server or its answer was lost (no
    /// connection, the portal answered 502/503/504, or a 408: the server's request timeout
    /// fires also when the handler was slow, possibly after it committed): sending the same
    /// bytes again is safe, the server answers a repeat of a committed request as one.
    pub fn is_outage(&self) -> bool {
        match self {
            PortalError::Unreachable { .. } => true,
            PortalError::Refused { status, .. } => matches!(status, 408 | 502..=504),
            _ => false,
        }
    }

    /// The JSON error code of a refusal (`bad_signature`, `replay`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            PortalError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct RegisterRequest<'a> {
    r: &'a str,
}

#[derive(Deserialize)]
struct RegisterResponse {
    r_prime: String,
}

#[derive(Serialize, Deserialize)]
struct MessageBody {
    message: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    message: String,
}

/// A portal at a base URL (`http://127.0.0.1:8081`).
pub struct PortalClient {
    base: String,
    agent: ureq::Agent,
}

impl PortalClient {
    pub fn new(base: &str) -> Result<PortalClient, PortalError> {
        let trimmed = base.trim_end_matches('/');
        if !trimmed.starts_with("http://") || trimmed.len() <= "http://".len() {
            return Err(PortalError::BadUrl(base.to_string()));
        }
        Ok(PortalClient {
            base: trimmed.to_string(),
            agent: ureq::AgentBuilder::new().timeout(TIMEOUT).build(),
        })
    }

    /// The route of `what` (`register`, `messages`) for `service`.
    pub fn url(&self, service: &str, what: &str) -> String {
        format!("{}/v1/services/{service}/{what}", self.base)
    }

    fn post<T: Serialize, A: for<'de> Deserialize<'de>>(
        &self,
        url: &str,
        body: &T,
    ) -> Result<A, PortalError> {
        let bad = |reason: String| PortalError::BadAnswer {
            url: url.to_string(),
            reason,
        };
        match self.agent.post(url).send_json(body) {
            Ok(resp) => resp.into_json::<A>().map_err(|e| bad(e.to_string())),
            Err(ureq::Error::Status(status, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
                    Ok(e) => (e.error, e.message),
                    Err(_) => ("-".to_string(), text.chars().take(200).collect()),
                };
                Err(PortalError::Refused {
                    url: url.to_string(),
                    status,
                    code,
                    message,
                })
            }
            Err(ureq::Error::Transport(t)) => Err(PortalError::Unreachable {
                url: url.to_string(),
                reason: t.to_string(),
            }),
        }
    }

    /// Steps 1-3: the sealed R to the server via the portal; the sealed R' back.
    pub fn register(&self, service: &str, sealed_r: &[u8]) -> Result<Vec<u8>, PortalError> {
        let url = self.url(service, "register");
        let r = hexfmt::upper(sealed_r);
        let a: RegisterResponse = self.post(&url, &RegisterRequest { r: &r })?;
        hexfmt::parse(&a.r_prime).map_err(|e| PortalError::BadAnswer {
            url: url.clone(),
            reason: format!("r_prime is not hex: {e}"),
        })
    }

    /// Step 6: one protected up message to the server via the portal; the down message back.
    pub fn message(&self, service: &str, up: &[u8]) -> Result<Vec<u8>, PortalError> {
        let url = self.url(service, "messages");
        let a: MessageBody = self.post(
            &url,
            &MessageBody {
                message: hexfmt::upper(up),
            },
        )?;
        hexfmt::parse(&a.message).map_err(|e| PortalError::BadAnswer {
            url,
            reason: format!("message is not hex: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn outages_are_the_answers_a_request_may_have_crossed_unanswered() {
        let refused = |status| PortalError::Refused {
            status,
            code: "x".into(),
            message: "y".into(),
            url: "http://127.0.0.1:1/".into(),
        };
        for s in [408, 502, 503, 504] {
            assert!(refused(s).is_outage(), "{s}");
        }
        for s in [400, 404, 409, 413, 500] {
            assert!(!refused(s).is_outage(), "{s}");
        }
    }

    use super::*;

    #[test]
    fn urls_are_plain_http_and_routes_follow_the_contract() {
        let p = PortalClient::new("http://127.0.0.1:8081/").unwrap();
        assert_eq!(
            p.url("demo", "register"),
            "http://127.0.0.1:8081/v1/services/demo/register"
        );
        assert!(PortalClient::new("https://portal.example").is_err());
        assert!(PortalClient::new("http://").is_err());
    }

    #[test]
    fn an_unreachable_portal_says_so() {
        // Port 9 (discard) on loopback: nothing listens in a test sandbox.
        let p = PortalClient::new("http://127.0.0.1:9").unwrap();
        let e = p.register("demo", &[1]).unwrap_err();
        assert!(matches!(e, PortalError::Unreachable { .. }), "{e}");
    }
}
