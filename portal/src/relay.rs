//! The relay itself: two POST routes forwarded unchanged to one of the service's server
//! instances (one retry elsewhere when a connection fails), `/healthz`, and JSON errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::Config;
use crate::upstreams::{Instance, Upstreams};
use http_serve::error::{ApiError, StatusTexts};

/// What the portal says for statuses its layers produce (timeout, body limit, no route).
/// Its own answers use the shared `{"error", "message"}` shape of [`http_serve::error`].
const STATUS_TEXTS: StatusTexts = StatusTexts {
    timeout:
        "the request took too long (the body was not received in time, or the server was slow)",
    body_too_large: "the request body exceeds the portal's limit (max_body_bytes)",
    not_found:
        "no such route; the portal relays POST /v1/services/{service}/register and /messages",
};

/// An error status produced by a layer (timeout, body limit) or the router, without a JSON
/// body, gets one. Answers relayed from the server keep their body.
async fn json_error_bodies(resp: Response) -> Response {
    http_serve::error::with_json_body(resp, &STATUS_TEXTS)
}

/// The relay's shared state: the configuration, the server instances with their health,
/// and one HTTP client (connection pool) for requests and one for health checks.
#[derive(Debug, Clone)]
pub struct Relay {
    config: Arc<Config>,
    client: reqwest::Client,
    health_client: reqwest::Client,
    upstreams: Arc<Upstreams>,
}

impl Relay {
    /// A relay for `config`. The client ignores proxy environment variables: the portal
    /// talks to the configured URLs and nothing else. An https:// server's certificate must
    /// chain to `upstream_ca_file` (no built-in or system roots).
    ///
    /// Health checks run only once [`Relay::spawn_health_checks`] is called; without them,
    /// an instance taken out by a failed connection comes back only by answering a request
    /// it is tried for (a retry, or when no instance is healthy).
    pub fn new(config: Config) -> Result<Relay, reqwest::Error> {
        let client = upstream_client(
            &config,
            config.upstream_timeout,
            config.upstream_timeout.min(Duration::from_secs(5)),
        )?;
        let health_client = upstream_client(&config, config.health_timeout, config.health_timeout)?;
        let upstreams = Arc::new(Upstreams::new(&config));
        Ok(Relay {
            config: Arc::new(config),
            client,
            health_client,
            upstreams,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every server instance with its health: [`Upstreams::snapshot`] gives
    /// `(service, url, healthy, consecutive_failures)` for each.
    pub fn upstreams(&self) -> &Arc<Upstreams> {
        &self.upstreams
    }

    /// Starts the background health checks (`GET /healthz` of every instance every
    /// `health_interval`, within `health_timeout`). They stop when the relay (every clone,
    /// the router's included) is dropped, or when the handle is aborted. Needs a Tokio
    /// runtime.
    pub fn spawn_health_checks(&self) -> tokio::task::JoinHandle<()> {
        self.upstreams
            .spawn_health_checks(self.health_client.clone(), self.config.health_interval)
    }
}

/// A client that ignores proxy settings and trusts only `upstream_ca_file`.
fn upstream_client(
    config: &Config,
    timeout: Duration,
    connect_timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .timeout(timeout)
        .connect_timeout(connect_timeout);
    if let Some((_, certs)) = &config.upstream_ca {
        for cert in certs {
            builder = builder.add_root_certificate(reqwest::Certificate::from_der(cert)?);
        }
    }
    builder.build()
}

/// The portal's routes with their limits.
pub fn router(relay: Relay) -> Router {
    let limit = relay.config.max_body_bytes;
    let timeout = relay.config.request_timeout;
    // GET /metrics (portal/README.md "Metrics"); the portal answers it, never relays it.
    let mut metrics = http_serve::metrics::Metrics::new();
    let upstreams = relay.upstreams().clone();
    metrics.register_upstream_health("portal", move || {
        let rows = upstreams.snapshot().into_iter();
        rows.map(|u| http_serve::metrics::UpstreamHealth {
            service: u.service,
            url: u.url,
            healthy: u.healthy,
            consecutive_failures: u64::from(u.consecutive_failures),
        })
        .collect()
    });
    let routes = Router::new()
        .route(
            "/v1/services/{service}/register",
            post(|s, p, b| forward(s, p, b, "register")),
        )
        .route(
            "/v1/services/{service}/messages",
            post(|s, p, b| forward(s, p, b, "messages")),
        )
        .route("/healthz", get(healthz))
        .with_state(relay)
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::map_response(json_error_bodies));
    metrics.install(routes)
}

async fn healthz(State(relay): State<Relay>) -> Response {
    let body = serde_json::json!({
        "status": "ok",
        "services": relay.config.services.keys().collect::<Vec<_>>(),
    });
    axum::Json(body).into_response()
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn forward(
    State(relay): State<Relay>,
    Path(service): Path<String>,
    body: Body,
    route: &'static str,
) -> Response {
    let started = Instant::now();
    let resp = forward_inner(&relay, &service, body, route).await;
    let status = match &resp {
        Ok(r) => r.status(),
        Err(e) => e.status,
    };
    tracing::info!(
        service = %service,
        route,
        status = status.as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "relayed"
    );
    match resp {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() {
                tracing::warn!(service = %service, route, "{}", e.message);
            }
            e.into_response()
        }
    }
}

async fn forward_inner(
    relay: &Relay,
    service: &str,
    body: Body,
    route: &'static str,
) -> Result<Response, ApiError> {
    // An unknown service is answered 404 before the body is read.
    let path = upstream_path(&relay.config, service, route, &[])?;
    let limit = relay.config.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large(limit))?;
    let attempts = relay.upstreams.attempts(service).unwrap_or_default();
    let mut unreachable: Vec<(&Instance, String)> = Vec::new();
    for (n, instance) in attempts.iter().enumerate() {
        let base = instance.url();
        let sent = relay
            .client
            .post(format!("{base}{path}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(bytes.clone())
            .send()
            .await;
        let upstream = match sent {
            Ok(upstream) => upstream,
            Err(e) if failed_before_answer(&e) => {
                let detail = error_chain(&e);
                instance.request_failed(&detail);
                if n + 1 < attempts.len() {
                    tracing::warn!(
                        service = %service,
                        url = %base,
                        "cannot reach this server instance ({detail}); trying another"
                    );
                }
                unreachable.push((instance, detail));
                continue;
            }
            // Sent, and maybe acted on: never retried.
            Err(e) => return Err(upstream_error(service, base, &e)),
        };
        let status = upstream.status();
        if !status.is_server_error() {
            instance.request_answered();
        }
        let content_type = upstream.headers().get(header::CONTENT_TYPE).cloned();
        let body = read_limited(upstream, limit).await.map_err(|e| match e {
            ReadError::TooLarge => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                format!("the server of service `{service}` answered more than {limit} bytes"),
            ),
            ReadError::Http(e) => upstream_error(service, base, &e),
        })?;
        let mut resp = (status, body).into_response();
        if let Some(ct) = content_type {
            resp.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        return Ok(resp);
    }
    Err(all_unreachable(service, &unreachable))
}

/// Whether a `send()` error happened before any byte of an answer came back, on a
/// connection that failed: refused, reset, closed or timed out while connecting, or cut
/// before the answer began. Only then is the request tried on another instance. A timeout
/// after the request was sent is not such an error (the server may still be working on it).
fn failed_before_answer(e: &reqwest::Error) -> bool {
    if e.is_connect() {
        return true;
    }
    if e.is_timeout() || !e.is_request() {
        return false;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return true;
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            if matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::BrokenPipe
                    | K::NotConnected
                    | K::UnexpectedEof
            ) {
                return true;
            }
        }
        source = s.source();
    }
    false
}

/// 502 when no tried instance could be reached.
fn all_unreachable(service: &str, tried: &[(&Instance, String)]) -> ApiError {
    let (urls, details): (Vec<&str>, Vec<&str>) =
        tried.iter().map(|(i, d)| (i.url(), d.as_str())).unzip();
    let message = match tried {
        [] => format!("the portal has no server for service `{service}`"),
        [(i, detail)] => format!(
            "the server of service `{service}` at {} is unreachable ({detail}); is it running, \
             and is the portal's URL for it right?",
            i.url()
        ),
        _ => format!(
            "no server instance of service `{service}` is reachable (tried {}: {}); are they \
             running, and are the portal's URLs for them right?",
            urls.join(", "),
            details.join("; ")
        ),
    };
    ApiError::new(StatusCode::BAD_GATEWAY, "upstream_unavailable", message)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body exceeds the portal's limit of {limit} bytes"),
    )
}

/// Where one request goes, decided without I/O: the path under a server instance's base URL
/// for `service` and `route` (`/v1/services/<id percent-encoded as one segment>/<route>`),
/// or the portal's own 404 (unknown service) or 413 (body over `max_body_bytes`). The body
/// itself is relayed unchanged.
pub fn upstream_path(
    config: &Config,
    service: &str,
    route: &str,
    body: &[u8],
) -> Result<String, ApiError> {
    if !config.services.contains_key(service) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_service",
            format!(
                "the portal relays no service `{service}`; check the service id (this portal relays: {})",
                config
                    .services
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if body.len() > config.max_body_bytes {
        return Err(too_large(config.max_body_bytes));
    }
    Ok(format!("/v1/services/{}/{route}", encode_segment(service)))
}

enum ReadError {
    TooLarge,
    Http(reqwest::Error),
}

async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Bytes, ReadError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Http)? {
        if out.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// An error with its causes, `: `-separated.
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

fn upstream_error(service: &str, base: &str, e: &reqwest::Error) -> ApiError {
    let detail = error_chain(e);
    if e.is_timeout() {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            format!(
                "the server of service `{service}` at {base} did not answer in time ({detail})"
            ),
        )
    } else if e.is_connect() {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            format!(
                "the server of service `{service}` at {base} is unreachable ({detail}); is it running, and is the portal's URL for it right?"
            ),
        )
    } else {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("relaying to the server of service `{service}` at {base} failed ({detail})"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("demo-1.x_~"), "demo-1.x_~");
        assert_eq!(encode_segment("a b?é"), "a%20b%3F%C3%A9");
    }
}
