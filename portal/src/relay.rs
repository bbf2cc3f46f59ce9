//! The relay itself: two POST routes forwarded unchanged, `/healthz`, and JSON errors.

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

/// The relay's shared state: the configuration and one HTTP client (connection pool).
#[derive(Debug, Clone)]
pub struct Relay {
    config: Arc<Config>,
    client: reqwest::Client,
}

impl Relay {
    /// A relay for `config`. The client ignores proxy environment variables: the portal
    /// talks to the configured URLs and nothing else. An https:// server's certificate must
    /// chain to `upstream_ca_file` (no built-in or system roots).
    pub fn new(config: Config) -> Result<Relay, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .timeout(config.upstream_timeout)
            .connect_timeout(config.upstream_timeout.min(Duration::from_secs(5)));
        if let Some((_, certs)) = &config.upstream_ca {
            for cert in certs {
                builder = builder.add_root_certificate(reqwest::Certificate::from_der(cert)?);
            }
        }
        let client = builder.build()?;
        Ok(Relay {
            config: Arc::new(config),
            client,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// The portal's routes with their limits.
pub fn router(relay: Relay) -> Router {
    let limit = relay.config.max_body_bytes;
    let timeout = relay.config.request_timeout;
    Router::new()
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
        .layer(axum::middleware::map_response(json_error_bodies))
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
    let url = upstream_url(&relay.config, service, route, &[])?;
    let limit = relay.config.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large(limit))?;
    let base = relay
        .config
        .services
        .get(service)
        .map(String::as_str)
        .unwrap_or_default();
    let upstream = relay
        .client
        .post(&url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(bytes)
        .send()
        .await
        .map_err(|e| upstream_error(service, base, &e))?;
    let status = upstream.status();
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
    Ok(resp)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body exceeds the portal's limit of {limit} bytes"),
    )
}

/// Where one request goes, decided without I/O: the server URL for `service` and `route`
/// (the service id percent-encoded as one path segment), or the portal's own 404 (unknown
/// service) or 413 (body over `max_body_bytes`). The body itself is relayed unchanged.
pub fn upstream_url(
    config: &Config,
    service: &str,
    route: &str,
    body: &[u8],
) -> Result<String, ApiError> {
    let Some(base) = config.services.get(service) else {
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
    };
    if body.len() > config.max_body_bytes {
        return Err(too_large(config.max_body_bytes));
    }
    Ok(format!(
        "{base}/v1/services/{}/{route}",
        encode_segment(service)
    ))
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

fn upstream_error(service: &str, base: &str, e: &reqwest::Error) -> ApiError {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
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
