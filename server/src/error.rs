//! HTTP error answers: a status and `{"error": "machine_code", "message": "text for humans"}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One error answer of the HTTP API. `code` is stable (clients match on it); `message` says
/// what failed and what to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to process the request; its log says why",
        )
    }

    /// The answer for a status that a layer (timeout, body limit, routing) produced
    /// without a body of ours.
    pub fn for_status(status: StatusCode) -> ApiError {
        match status {
            StatusCode::REQUEST_TIMEOUT => ApiError::new(
                status,
                "timeout",
                "the request took too long (body not received in time or processing too slow)",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                status,
                "body_too_large",
                "the request body exceeds the server's limit (max_body_bytes)",
            ),
            StatusCode::NOT_FOUND => ApiError::new(
                status,
                "not_found",
                "no such route; the API is POST /v1/services/{service}/register and /messages",
            ),
            StatusCode::METHOD_NOT_ALLOWED => {
                ApiError::new(status, "method_not_allowed", "this route takes POST")
            }
            s => ApiError::new(
                s,
                "http_error",
                s.canonical_reason().unwrap_or("HTTP error").to_owned(),
            ),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            error: self.code,
            message: &self.message,
        })
        .unwrap_or_else(|_| b"{\"error\":\"internal\",\"message\":\"\"}".to_vec());
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// Response middleware: an error status without a JSON body (from the timeout or body-limit
/// layers, or the router) gets our JSON error body.
pub async fn json_error_bodies(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return resp;
    }
    ApiError::for_status(status).into_response()
}
