//! Every answer a test receives is checked against the API's OpenAPI description
//! (`catalyst_api::openapi`): a router wrapped in [`conform`] panics — failing the test — on an
//! answer the description does not allow.
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use catalyst_testkit::openapi::Conformance;

fn checker() -> &'static Conformance {
    static C: OnceLock<Conformance> = OnceLock::new();
    C.get_or_init(|| {
        Conformance::new(serde_json::from_str(catalyst_api::openapi::json()).expect("JSON"))
    })
}

/// `app`, with every `/api/v1` and `/git` answer checked against the description.
pub fn conform(app: axum::Router) -> axum::Router {
    app.layer(axum::middleware::from_fn(check))
}

async fn check(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    if !(path.starts_with("/api/v1/") || path.starts_with("/git/")) {
        return response;
    }
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("text/event-stream"))
    {
        if let Err(e) = checker().check(&method, &path, status, content_type.as_deref(), None) {
            panic!("answer outside the OpenAPI description: {e}");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the answer's body is readable");
    if let Err(e) = checker().check(
        &method,
        &path,
        status,
        content_type.as_deref(),
        Some(&bytes),
    ) {
        panic!("answer outside the OpenAPI description: {e}");
    }
    Response::from_parts(parts, Body::from(bytes))
}
