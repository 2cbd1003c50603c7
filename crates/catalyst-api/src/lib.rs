//! The HTTP surface of Catalyst: the axum router, wire JSON, SSE streams and metrics.
//!
//! Invariants: this is the only crate that knows wire JSON (`wire.rs`); every error leaves as
//! `{"error": code, "detail": text}` (`error.rs`); bodies are limited to 64 KiB; no handler
//! touches storage directly — everything goes through the deployment service; credentials
//! received in a body are wrapped in `Secret` immediately and never echoed or logged.
#![forbid(unsafe_code)]

pub mod edges;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
mod handlers;
pub mod metrics;
pub mod orgs;
pub mod pool;
mod sse;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use catalyst_provision::hetzner::HetznerClient;
use catalyst_provision::service::DeploymentService;

pub use error::ApiError;
pub use orgs::auth;
use orgs::auth::{Authenticator, HasAuth};

/// Largest request body accepted (64 KiB).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Everything the handlers need.
pub struct AppState {
    /// The deployment service.
    pub service: Arc<DeploymentService>,
    /// Hetzner API client for credential checks.
    pub hetzner: HetznerClient,
    /// Request and stream metrics.
    pub metrics: metrics::ApiMetrics,
    /// Interval of SSE keepalive comments.
    pub keepalive: Duration,
    /// How DNS lookups for BYO subdomain checks are made.
    pub resolver: handlers::Resolver,
    /// The pool-domain manager and registrar adapters (`None`: those routes answer 503).
    pub pool: Option<Arc<pool::PoolApi>>,
    /// Who may call: deployments and pool-domain writes are sovereign-admin business.
    pub auth: Arc<Authenticator>,
    /// The read side's metrics, served on `/metrics` too, when the read side is mounted.
    pub read: Option<Arc<orgs::read::ReadMetrics>>,
}

impl AppState {
    /// State with the default keepalive (15 s) and the system resolver.
    pub fn new(
        service: Arc<DeploymentService>,
        hetzner: HetznerClient,
        auth: Arc<Authenticator>,
    ) -> Self {
        AppState {
            service,
            hetzner,
            metrics: metrics::ApiMetrics::default(),
            keepalive: Duration::from_secs(15),
            resolver: handlers::Resolver::system(),
            pool: None,
            auth,
            read: None,
        }
    }
}

impl HasAuth for AppState {
    fn auth(&self) -> &Authenticator {
        &self.auth
    }
}

/// Guards console pages (or any HTML routes) for sovereign-admins: without a credential the
/// browser is sent to `/login?next=…`.
pub fn guard_pages(state: &Arc<AppState>, pages: Router) -> Router {
    pages.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_sovereign_admin_page::<AppState>,
    ))
}

/// The full router.
pub fn router(state: Arc<AppState>) -> Router {
    router_with(state, [])
}

/// The full router with other routers (the console, Organizations) merged in, so that the
/// request metrics, the 404/405 fallbacks and the body limit cover every route.
pub fn router_with(state: Arc<AppState>, others: impl IntoIterator<Item = Router>) -> Router {
    // What a Sovereign's signup wizard needs before anyone holds a token; checks only.
    let public = Router::new()
        .route(
            "/credentials/validate",
            post(handlers::validate_credentials),
        )
        .route("/sshkey/generate", post(handlers::generate_ssh_key))
        .route("/subdomains/check", post(handlers::check_subdomain))
        .route("/reserved", get(pool::reserved))
        .route("/pool/{domain}/check", get(pool::check))
        .route(
            "/registrar/{registrar}/validate",
            post(pool::registrar_validate),
        )
        .route(
            "/session",
            post(auth::session_create::<AppState>)
                .get(auth::session_get)
                .delete(auth::session_delete),
        )
        .route("/session/end", post(auth::session_end));
    // Deployments and pool-domain writes: sovereign-admin business.
    let admin = Router::new()
        .route(
            "/deployments",
            post(handlers::create_deployment).get(handlers::list_deployments),
        )
        .route(
            "/deployments/{id}",
            get(handlers::get_deployment).delete(handlers::delete_deployment),
        )
        .route("/deployments/{id}/events", get(handlers::get_events))
        .route("/deployments/{id}/logs", get(sse::stream_logs))
        .route(
            "/deployments/{id}/cancel",
            post(handlers::cancel_deployment),
        )
        .route(
            "/deployments/{id}/phases/{phase}/retry",
            post(handlers::retry_phase),
        )
        .route("/pool", get(pool::status))
        .route("/pool/{domain}/reserve", post(pool::reserve))
        .route("/pool/{domain}/commit", post(pool::commit))
        .route("/pool/{domain}/release", delete(pool::release))
        .route("/pool/{domain}/list", get(pool::list))
        .route(
            "/registrar/{registrar}/set-ns",
            post(pool::registrar_set_ns),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_sovereign_admin::<AppState>,
        ));
    let api = public.merge(admin);
    let base = Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(metrics::render))
        .nest("/api/v1", api)
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(state.clone());
    let merged = others.into_iter().fold(base, Router::merge);
    merged
        .layer(axum::middleware::from_fn_with_state(state, metrics::track))
        .layer(axum::middleware::from_fn_with_state(
            edges::REQUEST_TIMEOUT,
            edges::request_timeout,
        ))
        .layer(axum::middleware::from_fn(edges::security_headers))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}
