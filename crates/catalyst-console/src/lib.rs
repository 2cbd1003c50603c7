//! The web console of Catalyst: the Sovereign wizard, the live provisioning progress page, the
//! deployments list and the marketplace.
//!
//! Invariants: pages are server-rendered HTML (askama templates, checked at compile time) with
//! small progressive JavaScript; one stylesheet; every asset is embedded in the binary and
//! nothing is loaded from another host. The console reads deployments only through the
//! deployment service and never sees a credential: the browser talks to `/api/v1` directly for
//! everything that carries one (credential check, SSH key, create, retry), and the wizard keeps
//! secrets in memory only. Providers, regions and sizes come from `catalyst_core::catalog`, the
//! same table the API validates against.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod assets;
pub mod catalog;
mod error;
mod pages;
mod view;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use catalyst_provision::service::DeploymentService;

pub use catalog::{Catalog, CatalogEntry};
pub use error::ConsoleError;

/// Everything the console's pages need.
pub struct ConsoleState {
    /// The deployment service (read-only use: views and lists).
    pub service: Arc<DeploymentService>,
    /// The Blueprint catalog shown by the wizard's Components step and the marketplace.
    pub catalog: Arc<Catalog>,
}

impl ConsoleState {
    /// State over a service and a catalog.
    pub fn new(service: Arc<DeploymentService>, catalog: Catalog) -> Self {
        ConsoleState {
            service,
            catalog: Arc::new(catalog),
        }
    }
}

/// The console's routes: `/`, `/sovereign/{wizard,deployments,provision/{id}}`, `/marketplace`,
/// `/marketplace/{name}` and the embedded assets under `/assets/`. Merge it with the API router.
pub fn router(state: Arc<ConsoleState>) -> Router {
    Router::new()
        .route("/", get(pages::root))
        .route("/sovereign", get(pages::root))
        .route("/sovereign/", get(pages::root))
        .route("/sovereign/wizard", get(pages::wizard))
        .route("/sovereign/deployments", get(pages::deployments))
        .route("/sovereign/provision/{id}", get(pages::provision))
        .route("/marketplace", get(pages::marketplace))
        .route(
            "/marketplace/{name}",
            get(pages::blueprint).post(pages::blueprint_submit),
        )
        .route("/assets/{file}", get(assets::serve))
        .with_state(state)
}
