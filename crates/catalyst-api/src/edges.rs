//! What every request and response goes through at the edge: security headers and the
//! request timeout.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// A request must have its answer (status and headers) within this long. Streams are not
/// affected: their handlers answer at once and the body follows.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Headers every response carries (API, console, Git): no MIME sniffing, no framing by other
/// sites, no referrer leaving the site, and — when a TLS-terminating proxy says the request came
/// over HTTPS (`X-Forwarded-Proto: https`) — HSTS. A header a handler set itself is kept.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let https = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if https {
        h.entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static("max-age=31536000"));
    }
    resp
}

/// Answers 503 `timeout` (JSON, `Retry-After: 5`) when the handler has not answered within
/// `limit`. Git's smart HTTP (`/git/…`) is exempt: a large push legitimately takes longer.
/// A write the handler already handed to a blocking task still completes, which the detail says.
pub async fn request_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/git/") {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            let mut resp = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "no answer within {} s; a write may still complete — check its effect before repeating it",
                    limit.as_secs_f64()
                ),
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_slow_answer_is_a_json_503_and_git_is_exempt() {
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "late"
        };
        let app = axum::Router::new()
            .route("/api/v1/slow", get(slow))
            .route("/git/slow", get(slow))
            .route("/api/v1/fast", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(50),
                request_timeout,
            ));
        let call = |path: &'static str| {
            let app = app.clone();
            async move {
                app.oneshot(Request::get(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap()
            }
        };
        let resp = call("/api/v1/slow").await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "5");
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "timeout", "{v}");
        assert_eq!(call("/api/v1/fast").await.status(), StatusCode::OK);
        assert_eq!(call("/git/slow").await.status(), StatusCode::OK);
    }
}
