//! The HTTP API (axum): routes, body limit, request timeout, JSON errors.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::{json_error_bodies, ApiError, STATUS_TEXTS};
use crate::service::Engine;

/// The routes of mutual-auth.md ("HTTP") plus `GET /healthz`, with the body limit and the
/// request timeout of the configuration.
pub fn router(engine: Arc<Engine>) -> Router {
    let limit = engine.config().max_body_bytes;
    let timeout = engine.config().request_timeout;
    Router::new()
        .route("/v1/services/{service}/register", post(register))
        .route("/v1/services/{service}/messages", post(messages))
        .route("/healthz", get(healthz))
        .with_state(engine)
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::map_response(json_error_bodies))
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE, &STATUS_TEXTS)
    } else {
        ApiError::bad_request(
            "bad_body",
            format!("cannot read the request body: {rejection}"),
        )
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!("request task failed: {e}");
        ApiError::internal()
    })?
}

async fn register(
    State(engine): State<Arc<Engine>>,
    Path(service): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return body_error(r).into_response(),
    };
    match run_blocking(move || engine.register(&service, &body)).await {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn messages(
    State(engine): State<Arc<Engine>>,
    Path(service): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return body_error(r).into_response(),
    };
    match run_blocking(move || engine.message(&service, &body)).await {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn healthz(State(engine): State<Arc<Engine>>) -> Response {
    let services: Vec<&String> = engine.config().services.keys().collect();
    Json(serde_json::json!({
        "status": "ok",
        "public_key": hex::encode_upper(engine.public_key()),
        "services": services,
    }))
    .into_response()
}
