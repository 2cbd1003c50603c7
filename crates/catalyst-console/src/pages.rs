//! Page handlers.
use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use catalyst_core::{DeploymentId, DeploymentStatus};
use serde::Deserialize;

use crate::catalog::{form_fields, values_from_form, Catalog, CatalogEntry, FormField, Tree};
use crate::error::ConsoleError;
use crate::view::{
    self, script_json, DeploymentRow, Topology, COMPLIANCE, INDUSTRIES, NAMESERVERS, ORG_SIZES,
    REGISTRARS, TOPOLOGIES,
};
use crate::{ConsoleState, Viewer};

type St = State<Arc<ConsoleState>>;

/// Only this origin: scripts, styles, connections (the API and its SSE streams) and form
/// posts. Inline `style` attributes are allowed (indentation of trees and forms); inline
/// scripts are not.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Pages are never cached (they show live state) and may load nothing from another host.
pub(crate) fn page<T: Template>(t: &T) -> Result<Response, ConsoleError> {
    Ok(html_response(StatusCode::OK, t.render()?))
}

/// An HTML response with the console's headers.
pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(html),
    )
        .into_response()
}

/// True once at least one deployment is ready: a Sovereign exists.
fn sovereign_exists(state: &ConsoleState) -> bool {
    state
        .service
        .count_by_status()
        .iter()
        .any(|(s, n)| *s == DeploymentStatus::Ready && *n > 0)
}

/// `GET /` for a signed-in caller: a member of an Organization lands on it; a sovereign-admin
/// on the wizard until a Sovereign exists, then on the deployments list.
pub async fn landing(State(state): St, Extension(viewer): Extension<Viewer>) -> Redirect {
    match (&viewer.org, viewer.is_admin()) {
        (Some(org), false) => Redirect::to(&format!("/orgs/{org}")),
        (None, false) => Redirect::to("/orgs"),
        _ => root(State(state)).await,
    }
}

/// `GET /sovereign`: the wizard until a Sovereign exists, then the deployments list.
pub async fn root(State(state): St) -> Redirect {
    if sovereign_exists(&state) {
        Redirect::to("/sovereign/deployments")
    } else {
        Redirect::to("/sovereign/wizard")
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: &'static str,
    next: String,
    error: String,
}

/// `?next=/path&error=invalid`.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    error: Option<String>,
}

/// `GET /login`: the sign-in form (it posts to `POST /api/v1/session`, which sets the session
/// cookie and sends the browser on to `next`).
pub async fn login(Query(q): Query<LoginQuery>) -> Result<Response, ConsoleError> {
    // The API checks `next` again before it redirects anywhere.
    let next = q.next.unwrap_or_else(|| "/".into());
    let error = match q.error.as_deref() {
        None | Some("") => String::new(),
        Some("invalid") => "That token is not valid (or has been revoked).".into(),
        Some("forbidden") => "That token is valid, but this page needs a sovereign-admin.".into(),
        Some(_) => "Sign-in failed; try again.".into(),
    };
    page(&LoginPage {
        nav: "login",
        next,
        error,
    })
}

#[derive(Template)]
#[template(path = "wizard.html")]
struct WizardPage<'a> {
    nav: &'static str,
    data_json: String,
    topologies: &'a [Topology],
    default_topology: &'static str,
    industries: &'a [&'a str],
    org_sizes: &'a [&'a str],
    compliance: &'a [&'a str],
    registrars: &'a [(&'a str, &'a str)],
    nameservers: &'a [&'a str],
    pool_domains: &'a [String],
    families: Vec<String>,
    has_components: bool,
    dry_run: bool,
}

/// `GET /sovereign/wizard`.
pub async fn wizard(State(state): St) -> Result<Response, ConsoleError> {
    let pool_domains = &state.service.config().pool_domains;
    let data = view::wizard_data(pool_domains, &state.catalog, state.service.dry_run());
    page(&WizardPage {
        nav: "wizard",
        data_json: script_json(&data),
        topologies: TOPOLOGIES,
        default_topology: view::DEFAULT_TOPOLOGY,
        industries: INDUSTRIES,
        org_sizes: ORG_SIZES,
        compliance: COMPLIANCE,
        registrars: REGISTRARS,
        nameservers: NAMESERVERS,
        pool_domains,
        families: state.catalog.families(),
        has_components: !state.catalog.entries().is_empty(),
        dry_run: state.service.dry_run(),
    })
}

#[derive(Template)]
#[template(path = "deployments.html")]
struct DeploymentsPage {
    nav: &'static str,
    rows: Vec<DeploymentRow>,
}

/// `GET /sovereign/deployments`: newest first.
pub async fn deployments(State(state): St) -> Result<Response, ConsoleError> {
    let rows = state
        .service
        .list(500, None)?
        .iter()
        .map(|v| DeploymentRow::from_record(&v.record))
        .collect();
    page(&DeploymentsPage {
        nav: "deployments",
        rows,
    })
}

/// The phases of the pipeline, in order, with their labels.
const PHASES: &[(&str, &str)] = &[
    ("tofu-init", "Prepare OpenTofu"),
    ("tofu-plan", "Plan infrastructure"),
    ("tofu-apply", "Apply infrastructure"),
    ("tofu-output", "Read outputs"),
    ("flux-bootstrap", "Bootstrap Flux"),
];

#[derive(Template)]
#[template(path = "provision.html")]
struct ProvisionPage<'a> {
    nav: &'static str,
    d: DeploymentRow,
    phases: &'a [(&'a str, &'a str)],
}

/// `GET /sovereign/provision/{id}`.
pub async fn provision(State(state): St, Path(id): Path<String>) -> Result<Response, ConsoleError> {
    let not_found = || ConsoleError::NotFound(format!("There is no deployment {id:?}."));
    let id = DeploymentId::parse(&id).map_err(|_| not_found())?;
    let view = state.service.view(&id).map_err(|_| not_found())?;
    page(&ProvisionPage {
        nav: "deployments",
        d: DeploymentRow::from_record(&view.record),
        phases: PHASES,
    })
}

/// `?q=&family=` of the marketplace.
#[derive(Debug, Default, Deserialize)]
pub struct MarketQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    family: String,
}

#[derive(Template)]
#[template(path = "marketplace.html")]
struct MarketplacePage<'a> {
    nav: &'static str,
    q: &'a str,
    family: &'a str,
    families: Vec<String>,
    cards: Vec<&'a CatalogEntry>,
    total: usize,
}

/// Does a card match the search text (title, name, summary, family; case-insensitive)?
fn matches(e: &CatalogEntry, q: &str, family: &str) -> bool {
    let q = q.trim().to_lowercase();
    (family.is_empty() || e.family == family)
        && (q.is_empty()
            || [&e.name, &e.title, &e.summary, &e.family]
                .iter()
                .any(|f| f.to_lowercase().contains(&q)))
}

/// `GET /marketplace`: the listed Blueprints, filtered on the server too (works without JS).
pub async fn marketplace(
    State(state): St,
    Query(q): Query<MarketQuery>,
) -> Result<Response, ConsoleError> {
    let total = state.catalog.listed().count();
    let cards = state
        .catalog
        .listed()
        .filter(|e| matches(e, &q.q, &q.family))
        .collect();
    page(&MarketplacePage {
        nav: "marketplace",
        q: &q.q,
        family: &q.family,
        families: state.catalog.families(),
        cards,
        total,
    })
}

#[derive(Template)]
#[template(path = "blueprint.html")]
struct BlueprintPage<'a> {
    nav: &'static str,
    e: &'a CatalogEntry,
    version: String,
    tree: Tree,
    has_schema: bool,
    fields: Vec<FormField>,
    /// After a submit: `Some(true)` valid, `Some(false)` invalid.
    outcome: Option<bool>,
    /// Problems that have no control of their own (e.g. a root-level error).
    other_errors: Vec<String>,
    /// The values with defaults applied, after a valid submit.
    resolved_values: String,
    /// The Install section.
    install: InstallForm,
}

/// The Install section of a Blueprint page: drawn on the server (so it reads without
/// JavaScript), driven by `assets/install.js` against `/api/v1` for a signed-in caller.
struct InstallForm {
    /// The default Application name (the Blueprint's name without `bp-`).
    app: String,
    /// One row per dependency of the resolved tree, each once.
    deps: Vec<InstallDep>,
    /// For the script: the configSchemas that type the values (`view::install_data`).
    data_json: String,
}

/// One dependency in the Install section: "create a new Application" (with its own values)
/// or "use an existing Application" running that Blueprint.
struct InstallDep {
    /// `bp-<name>`.
    name: String,
    /// The version the plan picks.
    version: String,
    /// The name a new Application for it gets (`<app>-<short name>`, the API's rule).
    short: String,
    /// Its configSchema form, ids prefixed so they are unique on the page.
    fields: Vec<FormField>,
}

/// `?version=` of the detail page.
#[derive(Debug, Default, Deserialize)]
pub struct VersionQuery {
    #[serde(default)]
    version: String,
}

fn blueprint_page<'a>(
    state: &'a ConsoleState,
    name: &str,
    version: &str,
    submitted: Option<&[(String, String)]>,
) -> Result<BlueprintPage<'a>, ConsoleError> {
    let catalog = &state.catalog;
    let e = catalog
        .get(name)
        .ok_or_else(|| ConsoleError::NotFound(format!("There is no Blueprint {name:?}.")))?;
    let version = if version.is_empty() {
        e.latest().unwrap_or_default().to_owned()
    } else if e.versions.iter().any(|v| v == version) {
        version.to_owned()
    } else {
        return Err(ConsoleError::NotFound(format!(
            "{} has no version {version:?}.",
            e.name
        )));
    };
    let tree = catalog.tree(&e.name, &version);
    let schema = catalog.config_schema(&e.name, &version);
    let mut outcome = None;
    let mut other_errors = Vec::new();
    let mut resolved_values = String::new();
    let fields = match (schema, submitted) {
        (None, _) => Vec::new(),
        (Some(schema), None) => form_fields(schema, &serde_json::Value::Null),
        (Some(schema), Some(pairs)) => {
            let values = values_from_form(schema, pairs);
            let mut fields = form_fields(schema, &values);
            match catalog.validate(&e.name, &version, &values) {
                Some(Ok(checked)) => {
                    outcome = Some(checked.valid);
                    for err in &checked.errors {
                        match fields.iter_mut().find(|f| f.pointer == err.pointer) {
                            Some(f) if f.error.is_empty() => f.error = err.message.clone(),
                            Some(f) => {
                                f.error.push_str("; ");
                                f.error.push_str(&err.message);
                            }
                            None => other_errors.push(if err.pointer.is_empty() {
                                err.message.clone()
                            } else {
                                format!("{}: {}", err.pointer, err.message)
                            }),
                        }
                    }
                    if checked.valid {
                        resolved_values =
                            serde_json::to_string_pretty(&redact(schema, checked.values))
                                .unwrap_or_default();
                    }
                }
                Some(Err(schema_error)) => {
                    outcome = Some(false);
                    other_errors.push(schema_error.to_string());
                }
                None => {}
            }
            fields
        }
    };
    let install = install_form(catalog, e, &version, &tree);
    Ok(BlueprintPage {
        nav: "marketplace",
        e,
        version,
        tree,
        has_schema: schema.is_some(),
        fields,
        outcome,
        other_errors,
        resolved_values,
        install,
    })
}

/// The Install section for one version: every dependency of its resolved tree once (depth
/// > 0, in tree order), with the schemas the script types values by.
fn install_form(catalog: &Catalog, e: &CatalogEntry, version: &str, tree: &Tree) -> InstallForm {
    let deps: Vec<InstallDep> = tree
        .rows
        .iter()
        .filter(|r| r.depth > 0 && !r.repeated)
        .filter_map(|r| Some((r, r.version.as_deref()?)))
        .enumerate()
        .map(|(i, (r, v))| InstallDep {
            name: r.name.clone(),
            version: v.to_owned(),
            short: r.name.strip_prefix("bp-").unwrap_or(&r.name).to_owned(),
            fields: catalog
                .config_schema(&r.name, v)
                .map(|s| form_fields(s, &serde_json::Value::Null))
                .unwrap_or_default()
                .into_iter()
                .map(|mut f| {
                    f.id = format!("dep{i}-{}", f.id);
                    f
                })
                .collect(),
        })
        .collect();
    let schemas = deps
        .iter()
        .map(|d| (d.name.as_str(), catalog.config_schema(&d.name, &d.version)));
    InstallForm {
        app: e.name.strip_prefix("bp-").unwrap_or(&e.name).to_owned(),
        data_json: script_json(&view::install_data(
            &e.name,
            version,
            catalog.config_schema(&e.name, version),
            schemas,
        )),
        deps,
    }
}

/// Replaces the values of password-hinted properties, so a secret is never echoed.
fn redact(schema: &serde_json::Value, mut values: serde_json::Value) -> serde_json::Value {
    for f in form_fields(schema, &serde_json::Value::Null) {
        if f.kind == "password" {
            if let Some(v) = values.pointer_mut(&f.pointer) {
                *v = serde_json::Value::String("<redacted>".into());
            }
        }
    }
    values
}

/// `GET /marketplace/{name}?version=`: a listed or unlisted Blueprint (unlisted ones resolve by
/// name): versions, resolved dependency tree, configSchema form.
pub async fn blueprint(
    State(state): St,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<Response, ConsoleError> {
    page(&blueprint_page(&state, &name, &q.version, None)?)
}

/// `POST /marketplace/{name}?version=`: validates the configSchema form on the server.
pub async fn blueprint_submit(
    State(state): St,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    page(&blueprint_page(&state, &name, &q.version, Some(&pairs))?)
}
