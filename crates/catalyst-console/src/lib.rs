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
mod orgs;
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
    /// The read side's projection, which the Organization pages show (`None`: no such pages).
    pub read: Option<Arc<catalyst_spine::Projector>>,
}

impl ConsoleState {
    /// State over a service and a catalog.
    pub fn new(service: Arc<DeploymentService>, catalog: Catalog) -> Self {
        ConsoleState {
            service,
            catalog: Arc::new(catalog),
            read: None,
        }
    }

    /// The same, with the Organization pages reading `projector`.
    pub fn with_read(mut self, projector: Arc<catalyst_spine::Projector>) -> Self {
        self.read = Some(projector);
        self
    }
}

/// Who looks at a page: the server's sign-in guard puts one in the request's extensions for
/// [`ConsoleRouters::members`] (the console itself never sees a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The token's (or OIDC subject's) name.
    pub name: String,
    /// `sovereign-admin`, `org-admin`, `org-developer`, `org-viewer`, `security-officer`,
    /// `billing-admin`.
    pub role: String,
    /// The Organization an Organization-scoped caller belongs to.
    pub org: Option<String>,
}

impl Viewer {
    /// A sovereign-admin sees every Organization.
    pub fn is_admin(&self) -> bool {
        self.role == "sovereign-admin"
    }

    /// Whether Organization `org` is visible to this viewer.
    pub fn sees(&self, org: &str) -> bool {
        self.is_admin() || self.org.as_deref() == Some(org)
    }

    /// Whether this viewer may install, change, upgrade, roll back and promote Applications of
    /// `org` (the server decides again).
    pub fn writes_apps(&self, org: &str) -> bool {
        self.is_admin()
            || (matches!(self.role.as_str(), "org-admin" | "org-developer")
                && self.org.as_deref() == Some(org))
    }

    /// Whether this viewer may approve promotions in `org` (the server decides again, and the
    /// destination's EnvironmentPolicy decides whether approvals are needed).
    pub fn approves(&self, org: &str) -> bool {
        self.is_admin()
            || (matches!(self.role.as_str(), "org-admin" | "security-officer")
                && self.org.as_deref() == Some(org))
    }

    /// Whether this viewer may add and remove members of `org` (the server decides again).
    pub fn manages_members(&self, org: &str) -> bool {
        self.is_admin() || (self.role == "org-admin" && self.org.as_deref() == Some(org))
    }
}

/// The console's routes, split by who may see them.
pub struct ConsoleRouters {
    /// `/login`, `/marketplace`, `/marketplace/{name}` and the assets under `/assets/`.
    pub public: Router,
    /// `/sovereign/{wizard,deployments,provision/{id}}`: deployments are sovereign-admin
    /// business, so the server guards these (the API crate's `guard_pages`).
    pub admin: Router,
    /// `/` (where a caller lands: their Organization, or a sovereign-admin's wizard or
    /// deployments), `/orgs`, `/orgs/{org}`, `/orgs/{org}/environments/{env}`: for every signed-in caller,
    /// each page showing what the caller's role reaches; the server's guard signs the caller in
    /// and puts a [`Viewer`] in the request's extensions.
    pub members: Router,
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
        .route("/sovereign", get(pages::root))
        .route("/sovereign/", get(pages::root))
        .route("/sovereign/wizard", get(pages::wizard))
        .route("/sovereign/deployments", get(pages::deployments))
        .route("/sovereign/provision/{id}", get(pages::provision))
        .with_state(state.clone());
    let members = Router::new()
        .route("/", get(pages::landing))
        .route("/orgs", get(orgs::list))
        .route("/orgs/{org}", get(orgs::org))
        .route("/orgs/{org}/environments/{env}", get(orgs::environment))
        .route("/orgs/{org}/applications/{app}", get(orgs::application))
        .route("/orgs/{org}/audit", get(orgs::org_audit))
        .route("/audit", get(orgs::audit))
        .with_state(state);
    ConsoleRouters {
        public,
        admin,
        members,
    }
}
