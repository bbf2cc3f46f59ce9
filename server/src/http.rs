//! The HTTP API (axum): routes, body limit, request timeout, JSON errors, serving.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::{json_error_bodies, ApiError};
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
        ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE)
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

/// Serves `router` on `listener` until `shutdown` completes, then finishes the requests in
/// flight. HTTP/1.1 only. A client must send its request headers within `header_timeout`
/// (and the whole request within the router's timeout), so a slow or idle client cannot
/// hold a connection open forever.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (close_tx, close_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Per-connection errors (reset before accept) and resource exhaustion
                    // (EMFILE): keep serving, without spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let mut close = close_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!("connection ended: {e}");
                    }
                }
                _ = close.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(close);
        });
    }
    drop(listener);
    drop(close_rx);
    let _ = close_tx.send(());
    close_tx.closed().await;
    Ok(())
}
