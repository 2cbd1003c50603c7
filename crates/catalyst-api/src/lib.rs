//! The HTTP surface of Catalyst: the axum router, wire JSON, SSE streams and metrics.
//!
//! Invariants: this is the only crate that knows wire JSON (`wire.rs`); every error leaves as
//! `{"error": code, "detail": text}` (`error.rs`); bodies are limited to 64 KiB; no handler
//! touches storage directly — everything goes through the deployment service; credentials
//! received in a body are wrapped in `Secret` immediately and never echoed or logged.
#![forbid(unsafe_code)]

pub mod edges;
pub mod error;
pub mod extract;
#[doc(hidden)]
pub mod fuzzing;
mod handlers;
pub mod metrics;
pub mod openapi;
pub mod orgs;
pub mod pool;
pub mod session;
pub mod sovereign_git;
pub mod sse;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use catalyst_provision::hetzner::HetznerClient;
use catalyst_provision::service::DeploymentService;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    /// The provisioned Sovereigns' bootstrap repositories (`None`: not kept).
    pub sovereign_git: Option<Arc<sovereign_git::SovereignGit>>,
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
            sovereign_git: None,
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

/// Guards console pages that every signed-in caller may open (each shows what the caller's
/// role reaches): the caller's `Identity` is in the request's extensions; without a credential
/// the browser is sent to `/login?next=…`.
pub fn guard_member_pages(state: &Arc<AppState>, pages: Router) -> Router {
    pages.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_signed_in_page::<AppState>,
    ))
}

/// The full router.
pub fn router(state: Arc<AppState>) -> Router {
    router_with(state, [])
}

/// The provisioning API's routes under `/api/v1`: what a Sovereign's signup wizard needs
/// before anyone holds a token (checks only), sign-in, and this API's description. Every route
/// is registered from its handler's OpenAPI annotation (`openapi.rs`).
fn public_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(handlers::validate_credentials))
        .routes(routes!(handlers::generate_ssh_key))
        .routes(routes!(handlers::check_subdomain))
        .routes(routes!(pool::reserved))
        .routes(routes!(pool::check))
        .routes(routes!(pool::registrar_validate))
        .routes(routes!(
            session::session_create,
            session::session_get,
            session::session_delete
        ))
        .routes(routes!(session::session_end))
        .routes(routes!(openapi::serve))
}

/// Deployments and pool-domain writes: sovereign-admin business (the guard is added by the
/// router).
fn admin_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(
            handlers::create_deployment,
            handlers::list_deployments
        ))
        .routes(routes!(
            handlers::get_deployment,
            handlers::delete_deployment
        ))
        .routes(routes!(handlers::get_events))
        .routes(routes!(sovereign_git::get_bootstrap))
        .routes(routes!(sse::stream_logs))
        .routes(routes!(handlers::cancel_deployment))
        .routes(routes!(handlers::retry_phase))
        .routes(routes!(pool::status))
        .routes(routes!(pool::reserve))
        .routes(routes!(pool::commit))
        .routes(routes!(pool::release))
        .routes(routes!(pool::list))
        .routes(routes!(pool::registrar_set_ns))
}

/// Every provisioning route under `/api/v1`, for the description.
pub(crate) fn api_routes() -> OpenApiRouter<Arc<AppState>> {
    public_routes().merge(admin_routes())
}

/// The full router with other routers (the console, Organizations) merged in, so that the
/// request metrics, the 404/405 fallbacks and the body limit cover every route.
pub fn router_with(state: Arc<AppState>, others: impl IntoIterator<Item = Router>) -> Router {
    let (public, _) = public_routes().split_for_parts();
    let (admin, _) = admin_routes().split_for_parts();
    let admin = admin.route_layer(axum::middleware::from_fn_with_state(
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
