//! The server's HTTP error answers: the shared `{"error", "message"}` shape of
//! [`http_serve::error`], with the server's words for what its layers refuse.

use axum::response::Response;
use http_serve::error::StatusTexts;
pub use http_serve::error::{ApiError, ErrorBody};

/// What the server says for statuses its layers produce (timeout, body limit, no route).
pub const STATUS_TEXTS: StatusTexts = StatusTexts {
    timeout: "the request took too long (body not received in time or processing too slow)",
    body_too_large: "the request body exceeds the server's limit (max_body_bytes)",
    not_found: "no such route; the API is POST /v1/services/{service}/register and /messages",
};

/// Response middleware: an error status without a JSON body (from the timeout or body-limit
/// layers, or the router) gets our JSON error body.
pub async fn json_error_bodies(resp: Response) -> Response {
    http_serve::error::with_json_body(resp, &STATUS_TEXTS)
}
