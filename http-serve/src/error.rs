//! HTTP error answers: a status and `{"error": "machine_code", "message": "text for humans"}`,
//! the same shape from the server and from the portal, so a terminal reads both alike.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One error answer of an HTTP API. `code` is stable (clients match on it); `message` says
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

/// What a service says when one of its layers (timeout, body limit, routing) answers an
/// error without a body: each names its own limit and routes.
#[derive(Debug)]
pub struct StatusTexts {
    /// 408 `timeout`.
    pub timeout: &'static str,
    /// 413 `body_too_large`.
    pub body_too_large: &'static str,
    /// 404 `not_found`: which routes exist.
    pub not_found: &'static str,
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
    pub fn for_status(status: StatusCode, texts: &StatusTexts) -> ApiError {
        match status {
            StatusCode::REQUEST_TIMEOUT => ApiError::new(status, "timeout", texts.timeout),
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(status, "body_too_large", texts.body_too_large)
            }
            StatusCode::NOT_FOUND => ApiError::new(status, "not_found", texts.not_found),
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

impl ApiError {
    /// The JSON body `{"error": code, "message": message}`.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody {
            error: self.code,
            message: &self.message,
        })
        .unwrap_or_else(|_| b"{\"error\":\"internal\",\"message\":\"\"}".to_vec())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// For response middleware: an error status without a JSON body (from the timeout or
/// body-limit layers, or the router) gets our JSON error body; JSON answers (ours, or the
/// server's relayed by the portal) pass unchanged.
pub fn with_json_body(resp: Response, texts: &StatusTexts) -> Response {
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
    ApiError::for_status(status, texts).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXTS: StatusTexts = StatusTexts {
        timeout: "t",
        body_too_large: "b",
        not_found: "n",
    };

    async fn body_of(resp: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_bare_error_status_gets_a_json_body_and_json_passes_unchanged() {
        let bare = StatusCode::PAYLOAD_TOO_LARGE.into_response();
        let resp = with_json_body(bare, &TEXTS);
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let v = body_of(resp).await;
        assert_eq!(
            (v["error"].as_str(), v["message"].as_str()),
            (Some("body_too_large"), Some("b"))
        );

        let ours = ApiError::bad_request("malformed_json", "why").into_response();
        let v = body_of(with_json_body(ours, &TEXTS)).await;
        assert_eq!(v["error"], "malformed_json");

        let ok = with_json_body(StatusCode::OK.into_response(), &TEXTS);
        assert_eq!(ok.status(), StatusCode::OK);
    }
}
