//! Organizations, Environments, members and Applications over `/api/v1/orgs`, plus read-only
//! Git smart HTTP under `/git`. Every mutation is one Git commit per repository touched
//! (`catalyst-gitops`); this module only authenticates, authorizes, speaks wire JSON and maps
//! errors.
//!
//! Wire rules: `?dryRun=true` on any mutation answers 200 with the diff it would commit;
//! `If-Match: <commit>` makes the write conditional (409 `stale` otherwise); `X-Request-Id`
//! becomes the `Catalyst-Request-Id` trailer (a random id when absent); the caller's token name
//! is the commit author and the `Catalyst-Actor` trailer. A member of one Organization gets 404
//! for another's objects; a missing right in one's own Organization is 403.
pub mod admission;
pub mod auth;
pub mod auth_events;
pub mod bodies;
pub mod git_http;
pub mod hooks;
pub mod limit;
pub mod oidc;
pub mod read;
pub mod wake;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::extract::{Path, Query};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use catalyst_gitops::{
    Actor, AppName, Call, EnvType, GitopsError, InstallRequest, OrgName, Sovereign, UpgradeRequest,
    Written,
};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::auth::{org_not_found, Authenticator, HasAuth, Identity, Right, Role};
use self::bodies::{MembersBody, OrganizationBody, WrittenBody};
use crate::ApiError;

/// Largest Git request body (16 MiB; clones send only wants and haves).
pub const GIT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// What the handlers need.
pub struct OrgApi {
    /// The GitOps state.
    pub sovereign: Arc<Sovereign>,
    /// Tokens, OIDC and console sessions (shared with the provisioning API).
    pub auth: Arc<Authenticator>,
    /// The projection every list reads, following the spine the GitOps state records on.
    pub read: Arc<catalyst_spine::Projector>,
    /// The HMAC key Flux's notifications are signed with (the Provider Secret's `token`; empty:
    /// every notification is refused).
    pub flux_key: String,
    /// The read side's metrics (served on `/metrics` with the rest).
    pub metrics: Arc<read::ReadMetrics>,
    /// Recent events' SSE frames, encoded once for every stream.
    pub frames: Arc<read::FrameCache>,
    /// Wakes an Organization's event streams for its own events only.
    pub wake: Arc<wake::OrgWake>,
    /// Cancelled when the server shuts down: every event stream ends with a comment saying
    /// where to resume.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The provisioned Sovereigns' bootstrap repositories, whose per-deployment read tokens
    /// open `/git/system/sovereign-<id>.git` (`None`: only sovereign-admins read those).
    pub sovereign_git: Option<Arc<crate::sovereign_git::SovereignGit>>,
    /// The token Flux reads this Sovereign's repositories with (the `catalyst-git` Secret's
    /// password; empty: none). Read-only: `system/catalyst-config` and every Application
    /// repository, over `/git` only.
    pub flux_git_token: String,
}

impl OrgApi {
    /// The API over `sovereign`, whose lists read the projection of the spine it records on;
    /// `None` when it records on none.
    pub fn new(sovereign: Arc<Sovereign>, auth: Arc<Authenticator>) -> Option<OrgApi> {
        let spine = sovereign.spine()?.clone();
        let read = Arc::new(catalyst_spine::Projector::new(spine.clone()));
        Some(OrgApi {
            wake: Arc::new(wake::OrgWake::new(spine)),
            shutdown: tokio_util::sync::CancellationToken::new(),
            sovereign,
            auth,
            metrics: Arc::new(read::ReadMetrics::new(read.clone())),
            frames: Arc::default(),
            read,
            flux_key: String::new(),
            sovereign_git: None,
            flux_git_token: String::new(),
        })
    }

    /// The same, accepting Flux notifications signed with `key`.
    pub fn with_flux_key(mut self, key: impl Into<String>) -> OrgApi {
        self.flux_key = key.into();
        self
    }

    /// The same, letting Flux fetch this Sovereign's repositories with `token`.
    pub fn with_flux_git_token(mut self, token: impl Into<String>) -> OrgApi {
        self.flux_git_token = token.into();
        self
    }

    /// The same, serving the provisioned Sovereigns' bootstrap repositories to their tokens.
    pub fn with_sovereign_git(mut self, git: Arc<crate::sovereign_git::SovereignGit>) -> OrgApi {
        self.sovereign_git = Some(git);
        self
    }
}

impl HasAuth for OrgApi {
    fn auth(&self) -> &Authenticator {
        &self.auth
    }
}

/// Every route under `/api/v1` (Organizations, Environments, members, Applications, the read
/// side, the Flux webhook), each registered from its handler's OpenAPI annotation.
pub(crate) fn api_routes() -> OpenApiRouter<Arc<OrgApi>> {
    OpenApiRouter::new()
        .routes(routes!(read::list_orgs, create_org))
        .routes(routes!(get_org, delete_org))
        .routes(routes!(read::list_envs, create_env))
        .routes(routes!(read::get_env, delete_env))
        .routes(routes!(list_members, add_member))
        .routes(routes!(remove_member))
        .routes(routes!(read::org_events))
        .routes(routes!(read::org_audit))
        .routes(routes!(read::all_events))
        .routes(routes!(read::audit))
        .routes(routes!(read::blueprint_usage))
        .routes(routes!(read::list_apps, install))
        .routes(routes!(get_app, uninstall))
        .routes(routes!(set_values))
        .routes(routes!(upgrade))
        .routes(routes!(rollback))
        .routes(routes!(approve))
        .routes(routes!(promote))
        .routes(routes!(promotion))
}

/// Git over smart HTTP under `/git`.
pub(crate) fn git_routes() -> OpenApiRouter<Arc<OrgApi>> {
    OpenApiRouter::new()
        .routes(routes!(git_http::info_refs))
        .routes(routes!(git_http::upload_pack_rpc))
        .routes(routes!(git_http::receive_pack))
}

/// Flux's notifications under `/api/v1` (the handler reads, and limits with a JSON 413, its body
/// itself, so no body limit layer).
pub(crate) fn hook_routes() -> OpenApiRouter<Arc<OrgApi>> {
    OpenApiRouter::new().routes(routes!(hooks::flux_event))
}

/// The routes: `/api/v1/orgs…` and `/git/…` (merge into the main router; no fallback here).
pub fn router(state: Arc<OrgApi>) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let (hooks, _) = hook_routes().split_for_parts();
    let api = api
        .layer(DefaultBodyLimit::max(crate::BODY_LIMIT))
        .merge(hooks);
    let (git, _) = git_routes().split_for_parts();
    let git = git.layer(DefaultBodyLimit::max(GIT_BODY_LIMIT)).layer(
        axum::middleware::from_fn_with_state(state.clone(), git_http::deployment_reader),
    );
    Router::new()
        .nest("/api/v1", api)
        .merge(git)
        .method_not_allowed_fallback(crate::handlers::method_not_allowed)
        .with_state(state)
}

/// Maps write-path errors onto statuses and stable codes.
pub fn gitops_error(e: GitopsError) -> ApiError {
    let detail = e.to_string();
    match e {
        GitopsError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not-found", detail),
        GitopsError::AlreadyExists(_) => {
            ApiError::new(StatusCode::CONFLICT, "already-exists", detail)
        }
        GitopsError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "stale", detail),
        GitopsError::Name(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-name", detail)
        }
        GitopsError::Invalid(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request", detail)
        }
        GitopsError::InvalidValues(problems) => {
            let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-values", detail);
            err.fields = problems
                .into_iter()
                .map(|p| crate::error::FieldErrorBody {
                    field: p.pointer,
                    message: p.message,
                    blueprint: Some(p.blueprint),
                })
                .collect();
            err
        }
        GitopsError::Resolve(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unresolvable", detail)
        }
        GitopsError::PolicyUnmet { rule, .. } => {
            let mut err = ApiError::new(StatusCode::CONFLICT, "policy-unmet", detail);
            err.field = Some(rule);
            err
        }
        GitopsError::Untrusted { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "untrusted-artifact",
            detail,
        ),
        GitopsError::ArtifactStore(_) => {
            tracing::warn!(error = %detail, "The Blueprint artifact store cannot be read.");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "artifact-store-unavailable",
                detail,
            )
        }
        GitopsError::Events(_) => {
            tracing::error!(error = %detail, "The event log refuses writes.");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "events-unavailable",
                detail,
            )
        }
        GitopsError::HasDependents(_) => {
            ApiError::new(StatusCode::CONFLICT, "has-dependents", detail)
        }
        GitopsError::DependencyMismatch(_) => {
            ApiError::new(StatusCode::CONFLICT, "dependency-mismatch", detail)
        }
        GitopsError::Corrupt(_) | GitopsError::Git(_) | GitopsError::Io(_) => {
            tracing::error!(error = %detail, "The GitOps write path failed.");
            ApiError::internal("the Git write path failed; nothing was changed — try again")
        }
    }
}

/// `?dryRun=true`, `?environment=dev`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct Flags {
    /// `true`: answer 200 with the diff the write would commit; nothing is written.
    #[serde(default)]
    #[param(value_type = Option<bool>)]
    dry_run: Option<String>,
    /// The Environment (`dev` or `acme-dev`) where the body does not name one.
    #[serde(default)]
    environment: Option<String>,
    /// Uninstall: also remove the dependencies nothing else uses.
    #[serde(default)]
    #[param(value_type = Option<bool>)]
    cascade: Option<String>,
}

/// `{org}` of a route (described once for all of them).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct OrgPath {
    /// The Organization.
    org: String,
}

/// `{org}` and `{app}` of a route (described once for all of them).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct AppPath {
    /// The Organization.
    org: String,
    /// The Application.
    app: String,
}

/// The headers every write reads (described once for all of them).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct WriteHeaders {
    /// Write only if the repository's head is this commit (409 `stale` otherwise).
    #[param(rename = "If-Match")]
    if_match: Option<String>,
    /// Recorded as the commit's `Catalyst-Request-Id` trailer.
    #[param(rename = "X-Request-Id")]
    request_id: Option<String>,
}

/// The refusals every write can answer (described once for all of them).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum WriteRefusals {
    /// `stale` (`If-Match` names another commit), `already-exists`, `policy-unmet`,
    /// `has-dependents` or `dependency-mismatch`.
    #[response(status = 409)]
    Conflict(#[to_schema] crate::error::ErrorBody<'static>),
    /// `invalid-field`, `invalid-name`, `invalid-request`, `invalid-values`, `unresolvable` or
    /// `untrusted-artifact`.
    #[response(status = 422)]
    Invalid(#[to_schema] crate::error::ErrorBody<'static>),
}

fn truthy(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("true" | "1" | ""))
}

fn call(id: &Identity, headers: &HeaderMap, flags: &Flags) -> Call {
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()));
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_string()
        })
        .filter(|v| !v.is_empty() && v != "*");
    let domain = id.org.as_deref().unwrap_or("sovereign");
    Call {
        actor: Actor {
            name: id.name.clone(),
            email: format!("{}@{domain}.catalyst.invalid", id.name),
        },
        request_id,
        dry_run: truthy(&flags.dry_run),
        if_match,
    }
}

async fn run<T: Send + 'static>(
    api: &Arc<OrgApi>,
    f: impl FnOnce(&Sovereign) -> Result<T, GitopsError> + Send + 'static,
) -> Result<T, ApiError> {
    let s = api.sovereign.clone();
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .map_err(|_| ApiError::internal("the write path stopped unexpectedly"))?
        .map_err(gitops_error)
}

fn body(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_body(format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::invalid_body("the body must be a JSON object"));
    }
    Ok(v)
}

/// 422 `invalid-field` naming the field `name`.
fn invalid_field(name: &str, detail: String) -> ApiError {
    let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", detail);
    e.field = Some(name.to_string());
    e
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_field(name, format!("{name} is required (a string)")))
}

/// An optional boolean field (absent: false).
fn flag(v: &Value, name: &str) -> Result<bool, ApiError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid_field(name, format!("{name}: true or false"))),
    }
}

fn org_name(s: &str) -> Result<OrgName, ApiError> {
    // An unparseable name cannot exist: same 404 as a missing one.
    OrgName::parse(s).map_err(|_| org_not_found())
}

fn app_name(s: &str) -> Result<AppName, ApiError> {
    AppName::parse(s)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not-found", "Application not found"))
}

/// `dev` or `acme-dev`.
fn env_type(org: &OrgName, s: &str, what: &str) -> Result<EnvType, ApiError> {
    let code = s.strip_prefix(&format!("{org}-")).unwrap_or(s);
    EnvType::parse(code).map_err(|e| {
        let mut err = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            format!("{what}: {e}"),
        );
        err.field = Some(what.to_string());
        err
    })
}

fn written(status: StatusCode, out: WrittenBody) -> Response {
    let status = if out.dry_run { StatusCode::OK } else { status };
    let etag = out.commits.last().map(|c| format!("\"{}\"", c.commit));
    let dry_run = out.dry_run;
    let mut r = (status, Json(out)).into_response();
    if let Some(tag) = etag.filter(|_| !dry_run) {
        if let Ok(v) = header::HeaderValue::from_str(&tag) {
            r.headers_mut().insert(header::ETAG, v);
        }
    }
    r
}

fn with_etag(v: impl serde::Serialize, commit: Option<String>) -> Response {
    let mut r = Json(v).into_response();
    if let Some(Ok(h)) = commit.map(|c| header::HeaderValue::from_str(&format!("\"{c}\""))) {
        r.headers_mut().insert(header::ETAG, h);
    }
    r
}

type Res = Result<Response, ApiError>;

// ---- Organizations ----------------------------------------------------------------------

#[utoipa::path(
    post,
    path = "/orgs",
    tag = "organizations",
    params(
        Flags,
        WriteHeaders,
    ),
    request_body = bodies::CreateOrgRequest,
    responses(
        (status = 201, description = "Created (one commit to system/catalyst-config).", body = WrittenBody),
        (status = 200, description = "Dry run: the diff.", body = WrittenBody),
        WriteRefusals,
    )
)]
async fn create_org(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    headers: HeaderMap,
    Query(f): Query<Flags>,
    crate::handlers::Body(b): crate::handlers::Body,
) -> Res {
    id.authorize_sovereign()?;
    let v = body(&b)?;
    let name = field(&v, "name")?;
    let org = OrgName::parse(name).map_err(|e| {
        let mut err = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-name",
            e.to_string(),
        );
        err.field = Some("name".into());
        err
    })?;
    let c = call(&id, &headers, &f);
    let o = org.clone();
    let w = run(&api, move |s| s.create_org(&c, &o, &v)).await?;
    Ok(written(
        StatusCode::CREATED,
        WrittenBody::of(w).named(org.as_str()),
    ))
}

#[utoipa::path(
    get,
    path = "/orgs/{org}",
    tag = "organizations",
    params(OrgPath),
    responses((status = 200, description = "The Organization; `ETag` is the config head.", body = OrganizationBody,
        headers(("ETag" = String, description = "The head of system/catalyst-config"))))
)]
async fn get_org(State(api): State<Arc<OrgApi>>, id: Identity, Path(org): Path<String>) -> Res {
    id.authorize(&org, Right::ReadOrg)?;
    let org = org_name(&org)?;
    let (doc, head) = run(&api, move |s| Ok((s.get_org(&org)?, s.config_head()?))).await?;
    Ok(with_etag(
        OrganizationBody {
            organization: doc,
            commit: head.clone(),
        },
        head,
    ))
}

#[utoipa::path(
    delete,
    path = "/orgs/{org}",
    tag = "organizations",
    params(
        OrgPath,
        Flags,
        WriteHeaders,
    ),
    responses(
        (status = 200, description = "Deleted.", body = WrittenBody),
        WriteRefusals,
    )
)]
async fn delete_org(w: Write) -> Res {
    let (org, _) = w.begin_org(Right::ManageOrgs)?;
    w.write(StatusCode::OK, move |s, c| s.delete_org(c, &org))
        .await
}

// ---- Environments -----------------------------------------------------------------------

#[utoipa::path(
    post,
    path = "/orgs/{org}/environments",
    tag = "organizations",
    params(
        OrgPath,
        Flags,
        WriteHeaders,
    ),
    request_body = bodies::CreateEnvRequest,
    responses(
        (status = 201, description = "Created.", body = WrittenBody),
        (status = 200, description = "Dry run: the diff.", body = WrittenBody),
        WriteRefusals,
    )
)]
async fn create_env(w: Write) -> Res {
    let (org, v) = w.begin_org(Right::ManageEnvs)?;
    let env = env_type(
        &org,
        field(&v, "envType").or_else(|_| field(&v, "name"))?,
        "envType",
    )?;
    let rules = v.pointer("/policy/rules").cloned().unwrap_or(json!([]));
    let o = org.clone();
    let committed = w
        .commit(move |s, c| s.create_env(c, &o, env, &rules))
        .await?;
    Ok(written(
        StatusCode::CREATED,
        WrittenBody::of(committed).named(format!("{org}-{env}")),
    ))
}

#[utoipa::path(
    delete,
    path = "/orgs/{org}/environments/{env}",
    tag = "organizations",
    params(
        OrgPath,
        ("env" = String, Path, description = "The Environment"),
        Flags,
        WriteHeaders,
    ),
    responses(
        (status = 200, description = "Deleted.", body = WrittenBody),
        WriteRefusals,
    )
)]
async fn delete_env(w: Write) -> Res {
    let (org, _) = w.begin_org(Right::ManageEnvs)?;
    let env = w.env_param(&org)?;
    w.write(StatusCode::OK, move |s, c| s.delete_env(c, &org, env))
        .await
}

// ---- Members ----------------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/orgs/{org}/members",
    tag = "organizations",
    params(OrgPath),
    responses((status = 200, description = "The members.", body = MembersBody))
)]
async fn list_members(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Path(org): Path<String>,
) -> Res {
    id.authorize(&org, Right::ReadOrg)?;
    let org = org_name(&org)?;
    let m = run(&api, move |s| s.members(&org)).await?;
    Ok(Json(MembersBody { members: m }).into_response())
}

/// Adds a member and issues their token (returned once, stored hashed).
#[utoipa::path(
    post,
    path = "/orgs/{org}/members",
    tag = "organizations",
    params(
        OrgPath,
        Flags,
        WriteHeaders,
    ),
    request_body = bodies::AddMemberRequest,
    responses(
        (status = 201, description = "Added; `token` is shown once.", body = WrittenBody),
        (status = 200, description = "Dry run: the diff.", body = WrittenBody),
        WriteRefusals,
    )
)]
async fn add_member(w: Write) -> Res {
    let (org, v) = w.begin_org(Right::ManageMembers)?;
    let name = field(&v, "name")?.to_string();
    if !auth::valid_token_name(&name) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "name: 1-64 characters of a-z, 0-9, '-', '_', '.', '@'",
        ));
    }
    let role = Role::parse(field(&v, "role")?)
        .filter(|r| *r != Role::SovereignAdmin)
        .ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "role: one of org-admin, org-developer, org-viewer, security-officer, billing-admin"))?;
    let (o, n) = (org.clone(), name.clone());
    let committed = w
        .commit(move |s, c| s.set_member(c, &o, &n, role.as_str()))
        .await?;
    if committed.dry_run {
        return Ok(written(StatusCode::OK, WrittenBody::of(committed)));
    }
    let tokens = w.api.auth.tokens().clone();
    let (o, n) = (org.to_string(), name.clone());
    let token = tokio::task::spawn_blocking(move || tokens.create(role, Some(&o), &n))
        .await
        .map_err(|_| ApiError::internal("token store stopped"))?
        .map_err(|e| {
            tracing::error!(error = %e, "Cannot store a member token.");
            ApiError::internal(
                "the member was added but no token could be stored; add the member again",
            )
        })?;
    record_token_changes(&w).await;
    let mut out = WrittenBody::of(committed).named(name);
    out.role = Some(role.as_str().to_owned());
    out.token = Some(token);
    Ok(written(StatusCode::CREATED, out))
}

#[utoipa::path(
    delete,
    path = "/orgs/{org}/members/{name}",
    tag = "organizations",
    params(
        OrgPath,
        ("name" = String, Path, description = "The member"),
        Flags,
        WriteHeaders,
    ),
    responses(
        (status = 200, description = "Removed; their token is revoked.", body = WrittenBody),
        WriteRefusals,
    )
)]
async fn remove_member(w: Write) -> Res {
    let (org, _) = w.begin_org(Right::ManageMembers)?;
    let name = w.param("name").to_string();
    // The token goes before the commit: a crash (or a failed commit) between the two leaves a
    // member who is still listed but cannot sign in, and removing again finishes; the other
    // order left a removed member whose token kept working (found by the fault campaign).
    if !truthy(&w.flags.dry_run) {
        let (o, n) = (org.clone(), name.clone());
        let listed = run(&w.api, move |s| {
            Ok(s.members(&o)?.iter().any(|m| m["name"] == n.as_str()))
        })
        .await?;
        if listed {
            let tokens = w.api.auth.tokens().clone();
            let (o, n) = (org.to_string(), name.clone());
            tokio::task::spawn_blocking(move || tokens.revoke(&o, &n))
                .await
                .map_err(|_| ApiError::internal("token store stopped"))?
                .map_err(|e| {
                    tracing::error!(error = %e, "Cannot revoke a member token.");
                    ApiError::internal(
                        "the member's token could not be revoked, so the member was not removed; try again",
                    )
                })?;
            record_token_changes(&w).await;
        }
    }
    let (o, n) = (org.clone(), name.clone());
    let committed = w.commit(move |s, c| s.remove_member(c, &o, &n)).await?;
    Ok(written(StatusCode::OK, WrittenBody::of(committed)))
}

/// Records the token file's changes on the spine with the caller as actor. A failure is
/// logged, not answered: the token is stored, and the watcher records it within seconds.
async fn record_token_changes(w: &Write) {
    let Some(events) = w.api.auth.events().cloned() else {
        return;
    };
    let actor = w.id.name.clone();
    match tokio::task::spawn_blocking(move || events.reconcile(&actor)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Recording a token change on the event log failed; the watcher retries.")
        }
        Err(_) => tracing::warn!("The task recording a token change stopped."),
    }
}

// ---- Applications -----------------------------------------------------------------------

/// `useExisting` (Blueprint name → Application name) and `dependencyValues` (Blueprint name →
/// values) of an install or upgrade body; both optional.
#[allow(clippy::type_complexity)]
fn dependency_fields(
    v: &Value,
) -> Result<(BTreeMap<String, String>, BTreeMap<String, Value>), ApiError> {
    fn map<T: serde::de::DeserializeOwned>(
        v: &Value,
        field: &str,
        what: &str,
    ) -> Result<BTreeMap<String, T>, ApiError> {
        match v.get(field) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(u) => serde_json::from_value(u.clone()).map_err(|_| {
                invalid_field(
                    field,
                    format!("{field}: an object of Blueprint name → {what}"),
                )
            }),
        }
    }
    Ok((
        map(v, "useExisting", "Application name")?,
        map(v, "dependencyValues", "values")?,
    ))
}

#[utoipa::path(
    post,
    path = "/orgs/{org}/applications",
    tag = "applications",
    params(
        OrgPath,
        Flags,
        WriteHeaders,
    ),
    request_body = bodies::InstallRequest,
    responses(
        (status = 201, description = "Installed (with the dependencies it needed).", body = WrittenBody),
        (status = 200, description = "Dry run: the plan's diff.", body = WrittenBody),
        WriteRefusals,
        (status = 503, description = "`artifact-store-unavailable` or `events-unavailable`.", body = crate::error::ErrorBody),
    )
)]
async fn install(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    headers: HeaderMap,
    Query(f): Query<Flags>,
    Path(org): Path<String>,
    crate::handlers::Body(b): crate::handlers::Body,
) -> Res {
    id.authorize(&org, Right::WriteApps)?;
    let org = org_name(&org)?;
    let v = body(&b)?;
    let app = AppName::parse(field(&v, "name")?).map_err(|e| {
        let mut err = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-name",
            e.to_string(),
        );
        err.field = Some("name".into());
        err
    })?;
    let env = env_type(&org, field(&v, "environment")?, "environment")?;
    let mut blueprint = field(&v, "blueprint")?.to_string();
    if let Some(version) = v.get("version").and_then(Value::as_str) {
        blueprint = format!("{blueprint}@{version}");
    }
    let values = v.get("values").cloned().unwrap_or(json!({}));
    let (use_existing, dependency_values) = dependency_fields(&v)?;
    let req = InstallRequest {
        app: app.clone(),
        env,
        blueprint,
        values,
        use_existing,
        dependency_values,
    };
    let c = call(&id, &headers, &f);
    let w = run(&api, move |s| s.install(&c, &org, &req)).await?;
    Ok(written(
        StatusCode::CREATED,
        WrittenBody::of(w).named(app.as_str()),
    ))
}

#[utoipa::path(
    get,
    path = "/orgs/{org}/applications/{app}",
    tag = "applications",
    params(
        AppPath,
    ),
    responses((status = 200, description = "The Application in every Environment: Blueprint, version, values, last commit.", body = Object))
)]
async fn get_app(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Path((org, app)): Path<(String, String)>,
) -> Res {
    id.authorize(&org, Right::ReadApps)?;
    let (org, app) = (org_name(&org)?, app_name(&app)?);
    let v = run(&api, move |s| s.get_app(&org, &app)).await?;
    Ok(Json(v).into_response())
}

fn env_of(org: &OrgName, v: &Value, f: &Flags) -> Result<EnvType, ApiError> {
    match v
        .get("environment")
        .and_then(Value::as_str)
        .or(f.environment.as_deref())
    {
        Some(e) => env_type(org, e, "environment"),
        None => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "environment is required (dev, stg, …)",
        )),
    }
}

/// A write under `/orgs/{org}/…`: who calls, the raw path parameters and body, and the
/// request's metadata. Names and body are parsed only after the caller is authorized, so a
/// stranger learns nothing from a malformed request.
struct Write {
    api: Arc<OrgApi>,
    id: Identity,
    headers: HeaderMap,
    flags: Flags,
    params: std::collections::HashMap<String, String>,
    body: Bytes,
}

impl axum::extract::FromRequest<Arc<OrgApi>> for Write {
    type Rejection = Response;

    async fn from_request(
        req: axum::extract::Request,
        api: &Arc<OrgApi>,
    ) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let id = Identity::from_request_parts(&mut parts, api).await?;
        let Path(params) =
            Path::<std::collections::HashMap<String, String>>::from_request_parts(&mut parts, api)
                .await
                .map_err(IntoResponse::into_response)?;
        let Query(flags) = Query::<Flags>::from_request_parts(&mut parts, api)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let req = axum::extract::Request::from_parts(parts, body);
        let crate::handlers::Body(body) = crate::handlers::Body::from_request(req, api)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Write {
            api: api.clone(),
            id,
            headers,
            flags,
            params,
            body,
        })
    }
}

impl Write {
    /// A path parameter (empty when the route has none of that name).
    fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }

    /// Authorizes `right` on the Organization, then parses its name and the body.
    fn begin_org(&self, right: Right) -> Result<(OrgName, Value), ApiError> {
        self.id.authorize(self.param("org"), right)?;
        Ok((org_name(self.param("org"))?, body(&self.body)?))
    }

    /// Authorizes `right` on the Organization, then parses the names and the body.
    fn begin(&self, right: Right) -> Result<(OrgName, AppName, Value), ApiError> {
        let (org, v) = self.begin_org(right)?;
        Ok((org, app_name(self.param("app"))?, v))
    }

    /// The Environment named in the path (404 when it cannot exist).
    fn env_param(&self, org: &OrgName) -> Result<EnvType, ApiError> {
        env_type(org, self.param("env"), "environment")
            .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not-found", "Environment not found"))
    }

    /// Runs the write on the Sovereign's Git write path; returns what it committed.
    async fn commit(
        &self,
        f: impl FnOnce(&Sovereign, &Call) -> Result<Written, GitopsError> + Send + 'static,
    ) -> Result<Written, ApiError> {
        let c = call(&self.id, &self.headers, &self.flags);
        run(&self.api, move |s| f(s, &c)).await
    }

    /// Runs the write and answers with what it committed.
    async fn write(
        self,
        status: StatusCode,
        f: impl FnOnce(&Sovereign, &Call) -> Result<Written, GitopsError> + Send + 'static,
    ) -> Res {
        let w = self.commit(f).await?;
        Ok(written(status, WrittenBody::of(w)))
    }
}

#[utoipa::path(
    delete,
    path = "/orgs/{org}/applications/{app}",
    tag = "applications",
    params(
        AppPath,
        Flags,
        WriteHeaders,
    ),
    responses(
        (status = 200, description = "Uninstalled from the Environment.", body = WrittenBody),
        WriteRefusals,
    )
)]
async fn uninstall(w: Write) -> Res {
    let (org, app, _) = w.begin(Right::WriteApps)?;
    let env = env_of(&org, &json!({}), &w.flags)?;
    let cascade = truthy(&w.flags.cascade);
    w.write(StatusCode::OK, move |s, c| {
        s.uninstall(c, &org, &app, env, cascade)
    })
    .await
}

#[utoipa::path(
    put,
    path = "/orgs/{org}/applications/{app}/values",
    tag = "applications",
    params(
        AppPath,
        Flags,
        WriteHeaders,
    ),
    request_body = bodies::ValuesRequest,
    responses(
        (status = 200, description = "Committed (or, dry run, the diff).", body = WrittenBody),
        WriteRefusals,
    )
)]
async fn set_values(w: Write) -> Res {
    let (org, app, v) = w.begin(Right::WriteApps)?;
    let env = env_of(&org, &v, &w.flags)?;
    let values = v
        .get("values")
        .cloned()
        .filter(Value::is_object)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "values is required (an object)",
            )
        })?;
    w.write(StatusCode::OK, move |s, c| {
        s.set_values(c, &org, &app, env, &values)
    })
    .await
}

#[utoipa::path(
    post,
    path = "/orgs/{org}/applications/{app}/upgrade",
    tag = "applications",
    params(
        AppPath,
        Flags,
        WriteHeaders,
    ),
    request_body = bodies::UpgradeRequest,
    responses(
        (status = 200, description = "Upgraded (or, dry run, the plan's diff).", body = WrittenBody),
        WriteRefusals,
        (status = 503, description = "`artifact-store-unavailable`.", body = crate::error::ErrorBody),
    )
)]
async fn upgrade(w: Write) -> Res {
    let (org, app, v) = w.begin(Right::WriteApps)?;
    let env = env_of(&org, &v, &w.flags)?;
    let (use_existing, dependency_values) = dependency_fields(&v)?;
    let req = UpgradeRequest {
        app,
        env,
        version: field(&v, "version")?.to_string(),
        use_existing,
        dependency_values,
        with_dependencies: flag(&v, "withDependencies")?,
    };
    w.write(StatusCode::OK, move |s, c| s.upgrade_with(c, &org, &req))
        .await
}

#[utoipa::path(
    post,
    path = "/orgs/{org}/applications/{app}/rollback",
    tag = "applications",
    params(
        AppPath,
        Flags,
        WriteHeaders,
    ),
    request_body = bodies::RollbackRequest,
    responses(
        (status = 200, description = "Rolled back (a new commit with the old content).", body = WrittenBody),
        WriteRefusals,
    )
)]
async fn rollback(w: Write) -> Res {
    let (org, app, v) = w.begin(Right::WriteApps)?;
    let env = env_of(&org, &v, &w.flags)?;
    let to = field(&v, "to")?.to_string();
    w.write(StatusCode::OK, move |s, c| {
        s.rollback(c, &org, &app, env, &to)
    })
    .await
}

fn from_to(org: &OrgName, v: &Value) -> Result<(EnvType, EnvType), ApiError> {
    Ok((
        env_type(org, field(v, "from")?, "from")?,
        env_type(org, field(v, "to")?, "to")?,
    ))
}

#[utoipa::path(
    post,
    path = "/orgs/{org}/applications/{app}/approvals",
    tag = "applications",
    params(
        AppPath,
        Flags,
        WriteHeaders,
    ),
    request_body = bodies::PromotionRequest,
    responses(
        (status = 201, description = "Approval recorded.", body = WrittenBody),
        (status = 200, description = "Dry run: the diff.", body = WrittenBody),
        WriteRefusals,
    )
)]
async fn approve(w: Write) -> Res {
    let (org, app, v) = w.begin(Right::Approve)?;
    let (from, to) = from_to(&org, &v)?;
    w.write(StatusCode::CREATED, move |s, c| {
        s.approve(c, &org, &app, from, to)
    })
    .await
}

/// `?from=&to=` of the promotion state.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PromotionQuery {
    /// The source Environment (`dev` or `acme-dev`).
    from: String,
    /// The destination Environment.
    to: String,
}

#[utoipa::path(
    get,
    path = "/orgs/{org}/applications/{app}/promotion",
    tag = "applications",
    params(
        AppPath,
        PromotionQuery,
    ),
    responses(
        (status = 200, description = "Where promoting the Application from one Environment into another stands: the source commit, the destination's EnvironmentPolicy rules, the approvals given for that commit and the first rule not met (`unmet` absent: a promotion is allowed now).", body = bodies::PromotionBody),
        (status = 422, description = "`invalid-field`: `from` or `to` is no Environment type.", body = crate::error::ErrorBody),
    )
)]
async fn promotion(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Path((org, app)): Path<(String, String)>,
    Query(q): Query<PromotionQuery>,
) -> Res {
    id.authorize(&org, Right::ReadApps)?;
    let (org, app) = (org_name(&org)?, app_name(&app)?);
    let (from, to) = (
        env_type(&org, &q.from, "from")?,
        env_type(&org, &q.to, "to")?,
    );
    let (fname, tname) = (
        catalyst_gitops::names::env_name(&org, from),
        catalyst_gitops::names::env_name(&org, to),
    );
    let p = run(&api, move |s| s.promotion(&org, &app, from, to)).await?;
    Ok(Json(bodies::PromotionBody::of(fname, tname, p)).into_response())
}

#[utoipa::path(
    post,
    path = "/orgs/{org}/applications/{app}/promote",
    tag = "applications",
    params(
        AppPath,
        Flags,
        WriteHeaders,
    ),
    request_body = bodies::PromotionRequest,
    responses(
        (status = 200, description = "Promoted (or, dry run, the diff). 409 `policy-unmet` names what the EnvironmentPolicy still needs.", body = WrittenBody),
        WriteRefusals,
    )
)]
async fn promote(w: Write) -> Res {
    let (org, app, v) = w.begin(Right::WriteApps)?;
    let (from, to) = from_to(&org, &v)?;
    w.write(StatusCode::OK, move |s, c| {
        s.promote(c, &org, &app, from, to)
    })
    .await
}
