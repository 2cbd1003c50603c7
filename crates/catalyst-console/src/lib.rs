//! The web console of Catalyst: the Sovereign wizard, the live provisioning progress page, the
//! deployments list and the marketplace.
//!
//! Invariants: pages are server-rendered HTML (askama templates, checked at compile time) with
//! small progressive JavaScript; one stylesheet; every asset is embedded in the binary and
//! nothing is loaded from another host. The console reads deployments only through the
//! deployment service and never sees a credential: the browser talks to `/api/v1` directly for
//! everything that carries one (credential check, SSH key, create, retry), and the wizard keeps
//! secrets in memory only. The wizard, progress and deployments pages are for sovereign-admins:
//! [`routers`] hands them out separately so the server can guard them; `/login` posts the
//! token to the API, which answers with an HttpOnly session cookie. Providers, regions and sizes come from `catalyst_core::catalog`, the
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

/// The console's routes, split by who may see them.
pub struct ConsoleRouters {
    /// `/login`, `/marketplace`, `/marketplace/{name}` and the assets under `/assets/`.
    pub public: Router,
    /// `/`, `/sovereign/{wizard,deployments,provision/{id}}`: deployments are sovereign-admin
    /// business, so the server guards these (the API crate's `guard_pages`).
    pub admin: Router,
}

/// The console's routes; merge both with the API router, the admin ones behind a guard.
pub fn routers(state: Arc<ConsoleState>) -> ConsoleRouters {
    let public = Router::new()
        .route("/login", get(pages::login))
        .route("/marketplace", get(pages::marketplace))
        .route(
            "/marketplace/{name}",
            get(pages::blueprint).post(pages::blueprint_submit),
        )
        .route("/assets/{file}", get(assets::serve))
        .with_state(state.clone());
    let admin = Router::new()
        .route("/", get(pages::root))
        .route("/sovereign", get(pages::root))
        .route("/sovereign/", get(pages::root))
        .route("/sovereign/wizard", get(pages::wizard))
        .route("/sovereign/deployments", get(pages::deployments))
        .route("/sovereign/provision/{id}", get(pages::provision))
        .with_state(state);
    ConsoleRouters { public, admin }
}
