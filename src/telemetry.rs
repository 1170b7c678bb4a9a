//! Logs, request ids and metrics. A request's log line carries the route template
//! (`/api/v1/victims/{id}`), never the raw path or query string, which could hold a searched name.
//! The template is read once the router has chosen the route (D130): asked before, actix-web walks
//! its map of every route again, and does not find routes grouped under a shared prefix. `observe`
//! records it in the request's span, which the request's log line then carries.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

use crate::config::{LogFormat, Settings};
use crate::openapi::route_table::RouteTable;

pub fn init_logging(settings: &Settings) {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_new(&settings.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The root span of every request: method, route template, status, request id, user id.
pub struct HavenRootSpan;

impl RootSpanBuilder for HavenRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().map(|id| id.to_string()).unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            // Recorded by `observe` once routing is done.
            route = tracing::field::Empty,
            request_id = %request_id,
            user_id = tracing::field::Empty,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if let Ok(response) = outcome {
            span.record("status", response.status().as_u16());
            let status = response.status();
            if status.is_server_error() {
                tracing::warn!(parent: &span, status = status.as_u16(), "request failed");
            } else {
                tracing::info!(parent: &span, status = status.as_u16(), "request");
            }
        } else {
            DefaultRootSpanBuilder::on_request_end(span, outcome);
        }
    }
}

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    report_reads: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("haven_http_requests_total", "HTTP requests by method, route template and status"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "haven_http_request_duration_seconds",
                "HTTP request latency by method, route template and status",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let report_reads = IntCounterVec::new(
            Opts::new(
                "haven_report_reads_total",
                "Report rollup reads by where they were served: replica, primary (no replica), \
                 primary_replica_behind, primary_replica_down",
            ),
            &["from"],
        )
        .expect("valid metric");
        registry.register(Box::new(requests.clone())).expect("register");
        registry.register(Box::new(latency.clone())).expect("register");
        registry.register(Box::new(report_reads.clone())).expect("register");
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self())).expect("register");
        Metrics { registry, requests, latency, report_reads }
    }

    /// Counts a report's rollup read by where it was served.
    pub fn report_read(&self, source: crate::reports::replica::Source) {
        self.report_reads.with_label_values(&[source.label()]).inc();
    }

    pub fn render(&self) -> String {
        TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Records request metrics and returns the request id in `X-Request-Id`.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let metrics = req.app_data::<actix_web::web::Data<Metrics>>().cloned();
    // Only standard methods become label values: arbitrary tokens would grow the registry.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let routes = req.app_data::<actix_web::web::Data<RouteTable>>().cloned();
    // Read only when no route answered (a cheap clone: the path's bytes are shared).
    let uri = req.uri().clone();
    let result = next.call(req).await;
    let (status, answered) = match &result {
        Ok(response) => (response.status(), response.request().match_pattern()),
        Err(e) => (e.as_response_error().status_code(), None),
    };
    // The route that answered, as actix recorded it while routing; else (a wrong method, a request
    // cut off by its deadline) the template the path matches, from the API document.
    let route = answered
        .or_else(|| routes.as_ref().and_then(|t| t.template_for(uri.path())).map(str::to_owned))
        .unwrap_or_else(|| "unmatched".into());
    Span::current().record("route", route.as_str());
    let status = status.as_u16().to_string();
    if let Some(metrics) = metrics {
        let labels = [method.as_str(), route.as_str(), status.as_str()];
        metrics.requests.with_label_values(&labels).inc();
        metrics.latency.with_label_values(&labels).observe(started.elapsed().as_secs_f64());
    }
    let mut response = result?;
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(HeaderName::from_static("x-request-id"), id);
    }
    Ok(response)
}
