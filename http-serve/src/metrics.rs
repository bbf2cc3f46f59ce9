//! Prometheus metrics of an HTTP service: the registry, the request counter and duration
//! histogram by route template, the middleware that records them, and `GET /metrics`.
//!
//! Labels carry routes (the matched template, such as `/v1/services/{service}/register`,
//! never the raw path), methods and status codes only: no identifier, key or subject of a
//! request ever becomes a label, and the number of series stays bounded whatever clients
//! send. A crate adds its own series (or a [`Collector`] read at scrape time) to
//! [`Metrics::registry_mut`] before [`Metrics::install`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    prometheus_text, DescriptorEncoder, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Where [`Metrics::install`] serves the metrics.
pub const METRICS_PATH: &str = "/metrics";

/// The `Content-Type` of `GET /metrics`: the Prometheus text format, version 0.0.4
/// (`text/plain; version=0.0.4; charset=utf-8`).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The `route` label of a request that matched no route (its raw path is never a label).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Upper bounds (seconds) of the request duration buckets: 1 ms to 10 s.
pub const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The registry of one service and its HTTP series:
/// `http_requests_total{route,method,status}` and `http_request_duration_seconds{route}`.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry holding the two HTTP families, nothing recorded yet.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let duration: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        // The counter's `_total` suffix is added by the encoder.
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status code",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from receiving a request to its response headers, by route template",
            duration.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
        }
    }

    /// The registry, to add a crate's own metrics or collectors before [`Metrics::install`].
    /// Whatever is added must follow this module's rule: no secret and no per-request
    /// identifier in a label.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Adds a collector, asked for its series at every scrape.
    pub fn register_collector(&mut self, collector: impl Collector) {
        self.registry.register_collector(Box::new(collector));
    }

    /// Adds `{prefix}_upstream_up{service,url}` (1 healthy, 0 not) and
    /// `{prefix}_upstream_consecutive_failures{service,url}`, read from `snapshot` at every
    /// scrape. The user-info part of a URL (`user:password@`) is never exposed.
    pub fn register_upstream_health<F>(&mut self, prefix: &str, snapshot: F)
    where
        F: Fn() -> Vec<UpstreamHealth> + Send + Sync + 'static,
    {
        self.registry
            .sub_registry_with_prefix(prefix)
            .register_collector(Box::new(UpstreamHealthCollector(Box::new(snapshot))));
    }

    /// Records one answered request.
    fn observe(&self, route: String, method: &Method, status: StatusCode, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                method: method_label(method),
                status: status.as_u16(),
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
    }

    /// The registry in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// Adds `GET /metrics` to `router` and wraps its routes (those added so far, the new one
    /// and the fallback) with the middleware recording requests. Call it last, once every
    /// route and layer is in place: `/metrics` then passes through none of the router's own
    /// layers (no body limit, no timeout), and the recorded duration includes them all.
    pub fn install(self, router: Router) -> Router {
        let metrics = Arc::new(self);
        router
            .route(METRICS_PATH, get(serve_metrics).with_state(metrics.clone()))
            .layer(axum::middleware::from_fn_with_state(metrics, record))
    }
}

/// The `method` label: the standard methods by name, any other as `other` (so a client
/// cannot add series by inventing methods).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The middleware: the route template from [`MatchedPath`] (set by the router before a
/// route's layers run; absent on the fallback), the status and the time to the response.
async fn record(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let started = Instant::now();
    let resp = next.run(req).await;
    metrics.observe(route, &method, resp.status(), started.elapsed());
    resp
}

async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => {
            tracing::error!("encoding the metrics failed (a collector returned an error)");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// One upstream as its health checker sees it, for [`Metrics::register_upstream_health`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamHealth {
    /// The service id the upstream serves.
    pub service: String,
    /// The upstream's base URL (any user-info is removed before it becomes a label).
    pub url: String,
    pub healthy: bool,
    /// Failed requests or probes since the last success.
    pub consecutive_failures: u64,
}

type Snapshot = Box<dyn Fn() -> Vec<UpstreamHealth> + Send + Sync>;

struct UpstreamHealthCollector(Snapshot);

impl fmt::Debug for UpstreamHealthCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UpstreamHealthCollector")
    }
}

/// `url` without its user-info (`scheme://user:password@host` → `scheme://host`).
fn without_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..scheme_end + 3], &rest[at + 1..]),
        None => url.to_owned(),
    }
}

impl Collector for UpstreamHealthCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let snapshot = (self.0)();
        let labelled: Vec<[(&str, String); 2]> = snapshot
            .iter()
            .map(|u| {
                [
                    ("service", u.service.clone()),
                    ("url", without_userinfo(&u.url)),
                ]
            })
            .collect();
        {
            let mut family = encoder.encode_descriptor(
                "upstream_up",
                "Whether the upstream server is healthy (1) or not (0)",
                None,
                MetricType::Gauge,
            )?;
            for (labels, u) in labelled.iter().zip(&snapshot) {
                ConstGauge::new(i64::from(u.healthy)).encode(family.encode_family(labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "upstream_consecutive_failures",
            "Failed requests or probes to the upstream server since its last success",
            None,
            MetricType::Gauge,
        )?;
        for (labels, u) in labelled.iter().zip(&snapshot) {
            let failures = i64::try_from(u.consecutive_failures).unwrap_or(i64::MAX);
            ConstGauge::new(failures).encode(family.encode_family(labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_never_reaches_a_label() {
        assert_eq!(
            without_userinfo("https://u:secret@host:8443/base"),
            "https://host:8443/base"
        );
        assert_eq!(
            without_userinfo("http://127.0.0.1:1/"),
            "http://127.0.0.1:1/"
        );
        assert_eq!(without_userinfo("http://host/a@b"), "http://host/a@b");
        assert_eq!(without_userinfo("no scheme"), "no scheme");
    }

    #[test]
    fn requests_are_counted_by_route_method_and_status() {
        let metrics = Metrics::new();
        let route = "/v1/services/{service}/register";
        metrics.observe(
            route.into(),
            &Method::POST,
            StatusCode::OK,
            Duration::from_millis(3),
        );
        metrics.observe(
            route.into(),
            &Method::POST,
            StatusCode::OK,
            Duration::from_millis(30),
        );
        let ext = Method::from_bytes(b"SPLURGE").unwrap();
        metrics.observe(
            UNMATCHED_ROUTE.into(),
            &ext,
            StatusCode::NOT_FOUND,
            Duration::ZERO,
        );
        let text = metrics.encode().unwrap();
        assert!(text.contains(
            "http_requests_total{route=\"/v1/services/{service}/register\",method=\"POST\",status=\"200\"} 2\n"
        ), "{text}");
        assert!(
            text.contains(
                "http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "http_request_duration_seconds_bucket{le=\"0.005\",route=\"/v1/services/{service}/register\"} 1\n"
        ) || text.contains(
            "http_request_duration_seconds_bucket{route=\"/v1/services/{service}/register\",le=\"0.005\"} 1\n"
        ), "{text}");
        assert!(text.contains(
            "http_request_duration_seconds_count{route=\"/v1/services/{service}/register\"} 2\n"
        ), "{text}");
        assert!(!text.contains("SPLURGE"));
    }

    #[test]
    fn upstream_health_is_read_at_scrape_time() {
        let mut metrics = Metrics::new();
        metrics.register_upstream_health("portal", || {
            vec![UpstreamHealth {
                service: "demo".into(),
                url: "https://user:pw@a.example:8443".into(),
                healthy: false,
                consecutive_failures: 3,
            }]
        });
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                "portal_upstream_up{service=\"demo\",url=\"https://a.example:8443\"} 0\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "portal_upstream_consecutive_failures{service=\"demo\",url=\"https://a.example:8443\"} 3\n"
        ), "{text}");
        assert!(!text.contains("pw@"));
    }
}
