//! The embedded assets: one stylesheet and the small scripts, served from `/assets/`.
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// `(file name, content type, body)`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../assets/console.css"),
    ),
    (
        "wizard.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/wizard.js"),
    ),
    (
        "provision.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/provision.js"),
    ),
    (
        "deployments.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/deployments.js"),
    ),
    (
        "session.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/session.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/live.js"),
    ),
    (
        "manage.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/manage.js"),
    ),
    (
        "install.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/install.js"),
    ),
    (
        "marketplace.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/marketplace.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
];

/// `GET /assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
