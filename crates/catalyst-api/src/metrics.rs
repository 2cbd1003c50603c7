//! Prometheus text metrics: requests, deployments by status, events appended, SSE subscribers.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Counters kept by the HTTP layer.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    subscribers: Arc<AtomicI64>,
}

/// Decrements the subscriber gauge when a stream ends.
pub struct SubscriberGuard(Arc<AtomicI64>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ApiMetrics {
    /// Registers an SSE subscriber for as long as the guard lives.
    pub fn subscriber(&self) -> SubscriberGuard {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        SubscriberGuard(self.subscribers.clone())
    }

    /// Current SSE subscribers.
    pub fn subscribers(&self) -> i64 {
        self.subscribers.load(Ordering::Relaxed)
    }
}

/// Middleware counting requests by method, route template and status.
pub async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let mut map = state
        .metrics
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    *map.entry((method, route, status)).or_default() += 1;
    response
}

/// `GET /metrics`.
pub async fn render(State(state): State<Arc<AppState>>) -> Response {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP catalyst_http_requests_total HTTP requests by method, route and status."
    );
    let _ = writeln!(out, "# TYPE catalyst_http_requests_total counter");
    {
        let map = state
            .metrics
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for ((method, route, status), n) in map.iter() {
            let _ = writeln!(
                out,
                "catalyst_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                route.replace('"', "")
            );
        }
    }
    let _ = writeln!(out, "# HELP catalyst_deployments Deployments by status.");
    let _ = writeln!(out, "# TYPE catalyst_deployments gauge");
    for (status, n) in state.service.count_by_status() {
        let _ = writeln!(out, "catalyst_deployments{{status=\"{status}\"}} {n}");
    }
    let m = state.service.metrics();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let limits = state.auth.limits();
    for (name, kind, help, value) in [
        (
            "catalyst_events_appended_total",
            "counter",
            "Deployment events made durable and published.",
            load(&m.events_appended),
        ),
        (
            "catalyst_store_errors_total",
            "counter",
            "Failed store writes.",
            load(&m.store_errors),
        ),
        (
            "catalyst_sse_subscribers",
            "gauge",
            "Open SSE log streams.",
            state.metrics.subscribers().max(0) as u64,
        ),
        (
            "catalyst_sse_subscribers_cut_off_total",
            "counter",
            "Subscribers cut off for lagging behind.",
            load(&m.subscribers_cut_off),
        ),
        (
            "catalyst_streams_refused_total",
            "counter",
            "SSE streams refused: the holder had the most open.",
            load(&state.auth.streams().refused),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    }
    let _ = writeln!(
        out,
        "# HELP catalyst_sign_in_limited_total Credential checks refused with 429, by limit."
    );
    let _ = writeln!(out, "# TYPE catalyst_sign_in_limited_total counter");
    for (by, limiter) in [("client", &limits.failures), ("holder", &limits.sign_ins)] {
        let _ = writeln!(
            out,
            "catalyst_sign_in_limited_total{{by=\"{by}\"}} {}",
            load(&limiter.refused)
        );
    }
    if let Some(read) = &state.read {
        read.render(&mut out);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
