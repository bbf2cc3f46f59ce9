//! The HTTP API (axum): routes, body limit, request timeout, JSON errors, and `GET /metrics`
//! (the shared HTTP series of [`http_serve::metrics`] plus the store's commit latency).

use std::fmt;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_serve::metrics::Metrics;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::{json_error_bodies, ApiError, STATUS_TEXTS};
use crate::service::Engine;
use crate::store::Store;

/// The routes of mutual-auth.md ("HTTP") plus `GET /healthz`, with the body limit and the
/// request timeout of the configuration, and `GET /metrics` (outside both).
pub fn router(engine: Arc<Engine>) -> Router {
    let limit = engine.config().max_body_bytes;
    let timeout = engine.config().request_timeout;
    let mut metrics = Metrics::new();
    metrics.register_collector(StoreCollector(engine.store().clone()));
    let routes = Router::new()
        .route("/v1/services/{service}/register", post(register))
        .route("/v1/services/{service}/messages", post(messages))
        .route("/healthz", get(healthz))
        .with_state(engine)
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::map_response(json_error_bodies));
    metrics.install(routes)
}

/// `store_commit_latency_seconds{quantile}`, `store_commit_latency_max_seconds`,
/// `store_writes_total` and `store_transactions_total`, read from [`Store::commit_latency`]
/// at each scrape (nothing for a store that does not measure it).
struct StoreCollector(Arc<dyn Store>);

impl fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreCollector")
    }
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let Some(l) = self.0.commit_latency() else {
            return Ok(());
        };
        {
            let mut family = encoder.encode_descriptor(
                "store_commit_latency_seconds",
                "Time a write method of the store took until its commit was durable, since \
                 the store was opened, by quantile",
                None,
                MetricType::Gauge,
            )?;
            for (quantile, took) in [("0.5", l.p50), ("0.95", l.p95), ("0.99", l.p99)] {
                let labels = [("quantile", quantile)];
                ConstGauge::new(took.as_secs_f64()).encode(family.encode_family(&labels)?)?;
            }
        }
        ConstGauge::new(l.max.as_secs_f64()).encode(encoder.encode_descriptor(
            "store_commit_latency_max_seconds",
            "The longest write of the store since it was opened",
            None,
            MetricType::Gauge,
        )?)?;
        // Counters: the encoder adds `_total`. writes / transactions is the group-commit
        // batch factor.
        ConstCounter::new(l.writes).encode(encoder.encode_descriptor(
            "store_writes",
            "Writes the store answered (registrations, messages, audit entries)",
            None,
            MetricType::Counter,
        )?)?;
        ConstCounter::new(l.transactions).encode(encoder.encode_descriptor(
            "store_transactions",
            "Transactions the store committed for those writes (fewer with group commit)",
            None,
            MetricType::Counter,
        )?)?;
        Ok(())
    }
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
