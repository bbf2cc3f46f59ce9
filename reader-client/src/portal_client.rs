//! The portal's HTTP/JSON API, client side (mutual-auth.md "HTTP"): POST R, get R'; POST an up message, get the down message.
//!
//! HTTP/1.1 with a blocking client (`ureq`); https:// URLs verify the portal's certificate
//! against `--ca-file` or else the system's roots (rustls, `ring`). The portal is untrusted
//! by design, so the protocol protects itself; TLS keeps the blobs and metadata private.

use apdu_specs::hexfmt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long one request to the portal may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Why a request to the portal failed.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("the portal URL {0:?} is not http://HOST:PORT or https://HOST:PORT")]
    BadUrl(String),
    #[error("cannot use --ca-file {path}: {reason}; give the PEM certificate of the CA that signed the portal's certificate (for a `server init --tls` test pair: DIR/tls-cert.pem)")]
    CaFile { path: PathBuf, reason: String },
    #[error("no trusted root certificates: {0}; give the portal's CA with --ca-file FILE")]
    NoRoots(String),
    #[error("the portal at {url} presented a certificate this client does not trust ({reason}); give the CA that signed it with --ca-file FILE, and check that the URL's host is one the certificate names")]
    Untrusted { url: String, reason: String },
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

/// A portal at a base URL (`http://127.0.0.1:8081`, `https://portal.example`).
pub struct PortalClient {
    base: String,
    agent: ureq::Agent,
}

impl PortalClient {
    /// A client of the portal at `base`; an https:// portal is verified against the
    /// system's root certificates.
    pub fn new(base: &str) -> Result<PortalClient, PortalError> {
        PortalClient::with_ca_file(base, None)
    }

    /// A client of the portal at `base`; an https:// portal is verified against the
    /// certificates of the PEM file `ca_file`, or the system's roots when `None`.
    pub fn with_ca_file(base: &str, ca_file: Option<&Path>) -> Result<PortalClient, PortalError> {
        let trimmed = base.trim_end_matches('/');
        let https = trimmed.starts_with("https://") && trimmed.len() > "https://".len();
        let http = trimmed.starts_with("http://") && trimmed.len() > "http://".len();
        if !http && !https {
            return Err(PortalError::BadUrl(base.to_string()));
        }
        let mut agent = ureq::AgentBuilder::new().timeout(TIMEOUT);
        if https {
            agent = agent.tls_config(tls_config(ca_file)?);
        }
        Ok(PortalClient {
            base: trimmed.to_string(),
            agent: agent.build(),
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
            Err(ureq::Error::Transport(t)) => match certificate_error(&t) {
                Some(reason) => Err(PortalError::Untrusted {
                    url: url.to_string(),
                    reason,
                }),
                None => Err(PortalError::Unreachable {
                    url: url.to_string(),
                    reason: t.to_string(),
                }),
            },
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

/// The TLS configuration for an https:// portal: the certificates of `ca_file`, or the
/// system's roots; the `ring` provider.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, PortalError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let bad = |reason: String| PortalError::CaFile {
                path: path.to_owned(),
                reason,
            };
            let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let certs = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("not PEM ({e})")))?;
            if certs.is_empty() {
                return Err(bad("no CERTIFICATE section found".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or("the system has none".to_string(), |e| e.to_string());
                return Err(PortalError::NoRoots(why));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PortalError::NoRoots(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificate error behind a failed request, if that is what failed (in words).
fn certificate_error(t: &ureq::Transport) -> Option<String> {
    // rustls' error arrives inside an io::Error, whose `source()` skips it: look inside.
    fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
        e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        })
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(e) = source {
        if let Some(rustls::Error::InvalidCertificate(c)) = rustls_error(e) {
            return Some(format!("{c:?}"));
        }
        source = e.source();
    }
    None
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
    fn urls_are_http_or_https_and_routes_follow_the_contract() {
        let p = PortalClient::new("http://127.0.0.1:8081/").unwrap();
        assert_eq!(
            p.url("demo", "register"),
            "http://127.0.0.1:8081/v1/services/demo/register"
        );
        assert!(PortalClient::new("ftp://portal.example").is_err());
        assert!(PortalClient::new("http://").is_err());
        assert!(PortalClient::new("https://").is_err());
    }

    #[test]
    fn a_bad_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "garbage\n").unwrap();
        let e = PortalClient::with_ca_file("https://127.0.0.1:1", Some(&path))
            .err()
            .unwrap();
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        assert!(e.to_string().contains("--ca-file"), "{e}");
        // Plain HTTP never reads it.
        assert!(PortalClient::with_ca_file("http://127.0.0.1:1", Some(&path)).is_ok());
    }

    #[test]
    fn an_unreachable_portal_says_so() {
        // Port 9 (discard) on loopback: nothing listens in a test sandbox.
        let p = PortalClient::new("http://127.0.0.1:9").unwrap();
        let e = p.register("demo", &[1]).unwrap_err();
        assert!(matches!(e, PortalError::Unreachable { .. }), "{e}");
    }
}
