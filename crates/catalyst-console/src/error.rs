//! Errors of the console's pages, rendered as an HTML page.
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use catalyst_provision::service::ServiceError;
use tracing::warn;

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The caller's role does not reach this page.
    #[error("{0}")]
    Forbidden(String),
    /// A template failed to render (a bug: templates are checked at compile time).
    #[error("the page could not be rendered: {0}")]
    Render(#[from] askama::Error),
    /// The deployment service failed.
    #[error("the deployment service failed: {0}")]
    Service(#[from] ServiceError),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    detail: String,
    nav: &'static str,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            ConsoleError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            ConsoleError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not for your role"),
            ConsoleError::Service(ServiceError::NotFound) => (StatusCode::NOT_FOUND, "Not found"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
        };
        if status.is_server_error() {
            warn!(error = %self, "A console page failed.");
        }
        let page = ErrorPage {
            title,
            detail: self.to_string(),
            nav: "",
        };
        match page.render() {
            Ok(html) => crate::pages::html_response(status, html),
            Err(_) => (status, self.to_string()).into_response(),
        }
    }
}
