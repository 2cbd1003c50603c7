//! Pool-domain and registrar routes: the pool-domain manager's API (same routes and JSON shapes
//! as upstream), served from the allocator in `catalyst-dns`.
//!
//! Every error is `{"error","detail"}` (registrar errors add `registrar` and `domain`). The
//! reservation token appears only in the reserve answer; registrar tokens never appear in a
//! response or a log line.
use std::sync::Arc;

use crate::extract::{Path, Query};
use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use catalyst_core::deployment::PoolReservation;
use catalyst_core::Secret;
use catalyst_dns::allocator::{Committed, Released};
use catalyst_dns::model::{self, Allocation, CommitAction};
use catalyst_dns::registrar::{propagation_hint, RegistrarError, Registry};
use catalyst_dns::{Allocator, CheckResult, DnsError, DnsOutcome};
use catalyst_provision::names::{NameAllocator, NameError};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{error, info};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::handlers::Body;
use crate::AppState;

type St = State<Arc<AppState>>;
type AppResult<T> = Result<T, ApiError>;

/// What the pool routes serve from.
pub struct PoolApi {
    /// The allocator.
    pub allocator: Arc<Allocator>,
    /// Registrar adapters.
    pub registrars: Registry,
}

fn pool_api(state: &AppState) -> AppResult<&PoolApi> {
    state.pool.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "pool-not-configured",
            "this control plane has no pool-domain manager configured",
        )
    })
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The allocation object of commit/release/list answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocationBody {
    pool_domain: String,
    subdomain: String,
    state: &'static str,
    reserved_at: String,
    created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    #[serde(rename = "sovereignFQDN", skip_serializing_if = "Option::is_none")]
    sovereign_fqdn: Option<String>,
    #[serde(rename = "loadBalancerIP", skip_serializing_if = "Option::is_none")]
    load_balancer_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reservation_token: Option<String>,
    /// Whether this manager publishes the Sovereign's records in PowerDNS (reserve and commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    dns_managed: Option<bool>,
    /// Whether a commit republished an active allocation's records (commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    republished: Option<bool>,
}

impl AllocationBody {
    /// The wire form; the token only when `with_token`.
    fn from(a: &Allocation, with_token: bool) -> Self {
        let active = a.state == catalyst_dns::AllocationState::Active;
        AllocationBody {
            pool_domain: a.pool_domain.clone(),
            subdomain: a.subdomain.clone(),
            state: a.state.as_str(),
            reserved_at: ts(a.reserved_at),
            created_by: a.created_by.clone(),
            expires_at: if active { None } else { a.expires_at.map(ts) },
            sovereign_fqdn: a.sovereign_fqdn.clone().filter(|s| !s.is_empty()),
            load_balancer_ip: a.load_balancer_ip.clone().filter(|s| !s.is_empty()),
            reservation_token: if with_token {
                a.reservation_token.clone()
            } else {
                None
            },
            dns_managed: None,
            republished: None,
        }
    }
}

/// Maps an allocator error to its answer.
pub fn dns_error(e: DnsError) -> ApiError {
    let detail = e.to_string();
    let (status, code) = match &e {
        DnsError::InvalidFormat => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-format"),
        DnsError::UnsupportedPool(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unsupported-pool"),
        DnsError::Reserved(_) => (StatusCode::UNPROCESSABLE_ENTITY, "reserved"),
        DnsError::MissingLbIp => (StatusCode::UNPROCESSABLE_ENTITY, "missing-lb-ip"),
        DnsError::InvalidLbIp => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-lb-ip"),
        DnsError::Conflict => (StatusCode::CONFLICT, "conflict"),
        DnsError::NotFound => (StatusCode::NOT_FOUND, "not-found"),
        DnsError::AlreadyActive => (StatusCode::CONFLICT, "already-active"),
        DnsError::Releasing => (StatusCode::CONFLICT, "releasing"),
        DnsError::Expired => (StatusCode::GONE, "reservation-expired"),
        DnsError::TokenMismatch => (StatusCode::FORBIDDEN, "token-mismatch"),
        DnsError::Store(_) => {
            error!(error = %detail, "Allocation store failure.");
            (StatusCode::INTERNAL_SERVER_ERROR, "store-error")
        }
        DnsError::PowerDns(_) => {
            error!(error = %detail, "PowerDNS failure.");
            (StatusCode::INTERNAL_SERVER_ERROR, "powerdns-error")
        }
    };
    ApiError::new(status, code, detail)
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> AppResult<T> {
    serde_json::from_slice(body).map_err(|_| ApiError::invalid_body("invalid JSON body"))
}

/// `GET /api/v1/pool` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatusBody {
    /// The pool domains this manager allocates names under.
    managed_domains: Vec<String>,
    /// The name servers the pool domains delegate to.
    nameservers: Vec<String>,
    /// Whether records are published in PowerDNS.
    dns_managed: bool,
    /// The allocation store's backend.
    store: String,
    /// Whether the store answered just now.
    store_ok: bool,
    /// The registrar adapters wired in.
    registrars: Vec<String>,
}

/// `GET /api/v1/pool`: what this manager does.
#[utoipa::path(
    get,
    path = "/pool",
    tag = "pool",
    responses(
        (status = 200, description = "What this pool-domain manager does.", body = PoolStatusBody),
        (status = 503, description = "`pool-not-configured`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn status(State(state): St) -> AppResult<Json<PoolStatusBody>> {
    let p = pool_api(&state)?;
    let store_ok = p.allocator.store().ping().await.is_ok();
    Ok(Json(PoolStatusBody {
        managed_domains: p.allocator.managed_domains(),
        nameservers: p.allocator.config().nameservers.clone(),
        dns_managed: p.allocator.dns_managed(),
        store: p.allocator.store().backend().to_string(),
        store_ok,
        registrars: p.registrars.names().into_iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/reserved` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReservedBody {
    /// Labels no Sovereign may take.
    reserved: &'static [&'static str],
}

/// `GET /api/v1/reserved`.
#[utoipa::path(
    get,
    path = "/reserved",
    tag = "pool",
    security(()),
    responses((status = 200, description = "The reserved labels.", body = ReservedBody))
)]
pub(crate) async fn reserved() -> Json<ReservedBody> {
    Json(ReservedBody {
        reserved: model::RESERVED,
    })
}

/// `?sub=` of check and release.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubQuery {
    /// The subdomain label.
    #[serde(default)]
    sub: String,
}

/// Wire form of a check answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckBody {
    available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fqdn: Option<String>,
}

impl From<CheckResult> for CheckBody {
    fn from(c: CheckResult) -> Self {
        CheckBody {
            available: c.available,
            reason: c.reason,
            detail: c.detail,
            fqdn: c.fqdn,
        }
    }
}

/// `GET /api/v1/pool/{domain}/check?sub=`: always 200 unless the store fails.
#[utoipa::path(
    get,
    path = "/pool/{domain}/check",
    tag = "pool",
    security(()),
    params(("domain" = String, Path, description = "The pool domain"), SubQuery),
    responses(
        (status = 200, description = "Whether the name can be reserved; read `available`.", body = CheckBody),
        (status = 422, description = "`unsupported-pool` or `invalid-format`.", body = crate::error::ErrorBody),
        (status = 503, description = "`pool-not-configured`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn check(
    State(state): St,
    Path(domain): Path<String>,
    Query(q): Query<SubQuery>,
) -> AppResult<Json<CheckBody>> {
    let p = pool_api(&state)?;
    let c = p
        .allocator
        .check(&domain, &q.sub)
        .await
        .map_err(dns_error)?;
    Ok(Json(c.into()))
}

/// `POST /api/v1/pool/{domain}/reserve` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReserveRequest {
    #[serde(default)]
    subdomain: String,
    #[serde(default)]
    created_by: String,
}

/// `POST /api/v1/pool/{domain}/reserve`.
#[utoipa::path(
    post,
    path = "/pool/{domain}/reserve",
    tag = "pool",
    params(("domain" = String, Path, description = "The pool domain")),
    request_body = ReserveRequest,
    responses(
        (status = 201, description = "Reserved; `reservationToken` (returned only here) commits or releases it.", body = AllocationBody),
        (status = 409, description = "`conflict`: the name is taken.", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid-format`, `unsupported-pool` or `reserved`.", body = crate::error::ErrorBody),
        (status = 503, description = "`pool-not-configured`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn reserve(
    State(state): St,
    Path(domain): Path<String>,
    Body(body): Body,
) -> AppResult<Response> {
    let p = pool_api(&state)?;
    let req: ReserveRequest = decode(&body)?;
    let a = p
        .allocator
        .reserve(&domain, &req.subdomain, &req.created_by)
        .await
        .map_err(dns_error)?;
    let mut body = AllocationBody::from(&a, true);
    body.dns_managed = Some(p.allocator.dns_managed());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `POST /api/v1/pool/{domain}/commit` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitRequest {
    #[serde(default)]
    subdomain: String,
    #[serde(default)]
    reservation_token: String,
    #[serde(default, rename = "sovereignFQDN")]
    sovereign_fqdn: String,
    #[serde(default, rename = "loadBalancerIP")]
    load_balancer_ip: String,
}

/// A commit whose DNS step failed (202): the row is committed; commit again to publish.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitPendingBody {
    /// What happened and what to do.
    warning: &'static str,
    /// PowerDNS's failure.
    detail: String,
    /// The allocation.
    #[serde(flatten)]
    allocation: AllocationBody,
}

/// A release whose DNS step failed (202): the allocation stays `releasing`; release again.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleasePendingBody {
    /// What happened and what to do.
    warning: &'static str,
    /// PowerDNS's failure.
    detail: String,
    /// The allocation.
    freed: AllocationBody,
}

/// `POST /api/v1/pool/{domain}/commit`: 200, or 202 when the records could not be published
/// (commit again with the same token and address to publish them).
#[utoipa::path(
    post,
    path = "/pool/{domain}/commit",
    tag = "pool",
    params(("domain" = String, Path, description = "The pool domain")),
    request_body = CommitRequest,
    responses(
        (status = 200, description = "Active; the records are published.", body = AllocationBody),
        (status = 202, description = "Committed, but PowerDNS failed: commit again to publish.", body = CommitPendingBody),
        (status = 403, description = "`token-mismatch`.", body = crate::error::ErrorBody),
        (status = 409, description = "`already-active` or `releasing`.", body = crate::error::ErrorBody),
        (status = 410, description = "`reservation-expired`.", body = crate::error::ErrorBody),
        (status = 422, description = "`missing-lb-ip`, `invalid-lb-ip`, `invalid-format`.", body = crate::error::ErrorBody),
        (status = 503, description = "`pool-not-configured`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn commit(
    State(state): St,
    Path(domain): Path<String>,
    Body(body): Body,
) -> AppResult<Response> {
    let p = pool_api(&state)?;
    let req: CommitRequest = decode(&body)?;
    let Committed {
        allocation,
        action,
        dns,
    } = p
        .allocator
        .commit(
            &domain,
            &req.subdomain,
            &req.reservation_token,
            &req.sovereign_fqdn,
            &req.load_balancer_ip,
        )
        .await
        .map_err(dns_error)?;
    let mut view = AllocationBody::from(&allocation, false);
    Ok(match dns {
        DnsOutcome::Failed(detail) => (
            StatusCode::ACCEPTED,
            Json(CommitPendingBody {
                warning: "row committed but PowerDNS write failed; retry commit to publish DNS",
                detail,
                allocation: view,
            }),
        )
            .into_response(),
        dns => {
            view.dns_managed = Some(dns != DnsOutcome::NotManaged);
            view.republished = Some(action == CommitAction::Republish);
            (StatusCode::OK, Json(view)).into_response()
        }
    })
}

/// `DELETE /api/v1/pool/{domain}/release` body (or `?sub=`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReleaseBody {
    #[serde(default)]
    subdomain: String,
}

/// `DELETE /api/v1/pool/{domain}/release` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleasedBody {
    /// The allocation that was freed.
    freed: AllocationBody,
    /// Whether its records were removed from PowerDNS.
    dns_managed: bool,
}

/// `DELETE /api/v1/pool/{domain}/release`: body `{"subdomain"}` or `?sub=`. 200 when the row
/// and DNS are gone; 202 when DNS teardown failed (the allocation stays `releasing`; release
/// again to finish).
#[utoipa::path(
    delete,
    path = "/pool/{domain}/release",
    tag = "pool",
    params(("domain" = String, Path, description = "The pool domain"), SubQuery),
    request_body(content = ReleaseBody, description = "Optional when `?sub=` names the subdomain."),
    responses(
        (status = 200, description = "Freed; the records are gone.", body = ReleasedBody),
        (status = 202, description = "Kept as `releasing`: PowerDNS teardown failed; release again.", body = ReleasePendingBody),
        (status = 422, description = "`unsupported-pool` or `invalid-format`.", body = crate::error::ErrorBody),
        (status = 503, description = "`pool-not-configured`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn release(
    State(state): St,
    Path(domain): Path<String>,
    Query(q): Query<SubQuery>,
    Body(body): Body,
) -> AppResult<Response> {
    let p = pool_api(&state)?;
    let sub = match serde_json::from_slice::<ReleaseBody>(&body) {
        Ok(b) if !b.subdomain.trim().is_empty() => b.subdomain,
        _ => q.sub,
    };
    let Released { freed, dns } = p
        .allocator
        .release(&domain, &sub)
        .await
        .map_err(dns_error)?;
    let freed = AllocationBody::from(&freed, false);
    Ok(match dns {
        DnsOutcome::Failed(detail) => (
            StatusCode::ACCEPTED,
            Json(ReleasePendingBody {
                warning: "allocation kept as releasing because PowerDNS teardown failed; re-run release to clean up DNS (idempotent)",
                detail,
                freed,
            }),
        )
            .into_response(),
        dns => Json(ReleasedBody {
            freed,
            dns_managed: dns != DnsOutcome::NotManaged,
        })
        .into_response(),
    })
}

/// `GET /api/v1/pool/{domain}/list` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocationsBody {
    /// The pool domain.
    pool_domain: String,
    /// Every allocation, ordered by subdomain (without tokens).
    allocations: Vec<AllocationBody>,
}

/// `GET /api/v1/pool/{domain}/list`: every allocation, ordered by subdomain, without tokens.
#[utoipa::path(
    get,
    path = "/pool/{domain}/list",
    tag = "pool",
    params(("domain" = String, Path, description = "The pool domain")),
    responses(
        (status = 200, description = "The allocations.", body = AllocationsBody),
        (status = 422, description = "`unsupported-pool` or `invalid-format`.", body = crate::error::ErrorBody),
        (status = 503, description = "`pool-not-configured`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): St,
    Path(domain): Path<String>,
) -> AppResult<Json<AllocationsBody>> {
    let p = pool_api(&state)?;
    let rows = p.allocator.list(&domain).await.map_err(dns_error)?;
    let allocations: Vec<AllocationBody> = rows
        .iter()
        .map(|a| AllocationBody::from(a, false))
        .collect();
    Ok(Json(AllocationsBody {
        pool_domain: model::normalise(&domain),
        allocations,
    }))
}

/// Body of the registrar routes.
#[derive(Deserialize, ToSchema)]
pub struct RegistrarRequest {
    /// The domain at the registrar.
    #[serde(default)]
    domain: String,
    /// The registrar API credentials (never stored, logged or echoed).
    #[serde(default)]
    token: String,
    /// The name servers to set (`set-ns`).
    #[serde(default)]
    nameservers: Option<Vec<String>>,
}

/// The validated parts of a registrar request.
struct RegistrarCall {
    registrar: &'static str,
    adapter: Arc<dyn catalyst_dns::registrar::Registrar>,
    domain: String,
    token: Secret,
    nameservers: Vec<String>,
}

fn is_domain(d: &str) -> bool {
    d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// Shared front half of both registrar routes: lookup, body, required fields.
fn registrar_call(
    state: &AppState,
    registrar: &str,
    body: &[u8],
    want_ns: bool,
) -> Result<RegistrarCall, Box<Response>> {
    let Some(p) = state.pool.as_deref() else {
        return Err(Box::new(
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no-registrars-configured",
                "this control plane has no registrar adapters wired in",
            )
            .into_response(),
        ));
    };
    let name = model::normalise(registrar);
    let Some(adapter) = p.registrars.get(&name) else {
        info!(registrar = %name, outcome = "unsupported-registrar", "Registrar request.");
        return Err(Box::new(
            (
                StatusCode::NOT_FOUND,
                Json(json!({
                    "error": "unsupported-registrar",
                    "detail": format!("no adapter for registrar {name}"),
                    "supported": p.registrars.names(),
                })),
            )
                .into_response(),
        ));
    };
    let shape = if want_ns {
        "request body must be JSON {domain, token, nameservers}"
    } else {
        "request body must be JSON {domain, token}"
    };
    let req: RegistrarRequest = serde_json::from_slice(body).map_err(|_| {
        Box::new(ApiError::new(StatusCode::BAD_REQUEST, "invalid-body", shape).into_response())
    })?;
    let token = Secret::new(req.token);
    let domain = model::normalise(&req.domain);
    let unprocessable = |code, detail: &str| {
        Box::new(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail).into_response())
    };
    if domain.is_empty() {
        return Err(unprocessable("missing-domain", "domain is required"));
    }
    if !is_domain(&domain) {
        return Err(unprocessable(
            "invalid-domain",
            "domain must be a DNS name such as example.com",
        ));
    }
    if token.is_blank() {
        return Err(unprocessable(
            "missing-token",
            "registrar API credentials are required",
        ));
    }
    let nameservers = model::normalise_names(req.nameservers.iter().flatten().map(String::as_str));
    if want_ns && nameservers.is_empty() {
        return Err(unprocessable(
            "missing-nameservers",
            "nameservers must be a non-empty array",
        ));
    }
    Ok(RegistrarCall {
        registrar: adapter.name(),
        adapter,
        domain,
        token,
        nameservers,
    })
}

fn registrar_error(call: &RegistrarCall, e: &RegistrarError) -> Response {
    let r = call.registrar;
    let d = &call.domain;
    let (status, code, detail) = match e {
        RegistrarError::InvalidToken => (
            StatusCode::UNAUTHORIZED,
            "invalid-token",
            format!("credentials rejected by {r}"),
        ),
        RegistrarError::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            format!("{r} rate-limited the request"),
        ),
        RegistrarError::DomainNotInAccount => (
            StatusCode::FORBIDDEN,
            "domain-not-in-account",
            format!("{d} is not visible to the supplied {r} credentials"),
        ),
        RegistrarError::ApiUnavailable => (
            StatusCode::BAD_GATEWAY,
            "api-unavailable",
            format!("{r} API is unreachable"),
        ),
        RegistrarError::Other(msg) => {
            error!(registrar = r, domain = %d, error = %msg, "Registrar call failed.");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "registrar-error",
                "registrar API call failed (see the Catalyst logs by registrar+domain)".to_owned(),
            )
        }
    };
    (
        status,
        Json(json!({"error": code, "detail": detail, "registrar": r, "domain": d})),
    )
        .into_response()
}

fn log_outcome(call: &RegistrarCall, outcome: &str) {
    info!(registrar = call.registrar, domain = %call.domain, outcome, "Registrar request.");
}

/// `POST /api/v1/registrar/{registrar}/validate` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrarValidBody {
    /// Always true (a rejection is an error answer).
    valid: bool,
    /// The registrar.
    registrar: &'static str,
    /// The domain.
    domain: String,
}

/// `POST /api/v1/registrar/{registrar}/set-ns` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct NameserversSetBody {
    /// Always true (a failure is an error answer).
    success: bool,
    /// The registrar.
    registrar: &'static str,
    /// The domain.
    domain: String,
    /// The name servers the registrar now reports.
    nameservers: Vec<String>,
    /// How long the change usually takes to propagate.
    propagation: &'static str,
}

/// `POST /api/v1/registrar/{registrar}/validate`.
#[utoipa::path(
    post,
    path = "/registrar/{registrar}/validate",
    tag = "pool",
    security(()),
    params(("registrar" = String, Path, description = "`cloudflare`, `godaddy`, `namecheap`, `ovh`, `dynadot`, …")),
    request_body = RegistrarRequest,
    responses(
        (status = 200, description = "The credentials see the domain.", body = RegistrarValidBody),
        (status = 401, description = "`invalid-token`: the registrar rejected the credentials (adds `registrar`, `domain`).", body = crate::error::ErrorBody),
        (status = 403, description = "`domain-not-in-account`.", body = crate::error::ErrorBody),
        (status = 404, description = "`unsupported-registrar` (adds `supported`).", body = crate::error::ErrorBody),
        (status = 422, description = "`missing-domain`, `invalid-domain`, `missing-token`.", body = crate::error::ErrorBody),
        (status = 429, description = "`rate-limited` by the registrar.", body = crate::error::ErrorBody),
        (status = 502, description = "`api-unavailable`: the registrar is unreachable.", body = crate::error::ErrorBody),
        (status = 503, description = "`no-registrars-configured`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn registrar_validate(
    State(state): St,
    Path(registrar): Path<String>,
    Body(body): Body,
) -> Response {
    let call = match registrar_call(&state, &registrar, &body, false) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match call
        .adapter
        .validate_token(call.token.expose(), &call.domain)
        .await
    {
        Ok(()) => {
            log_outcome(&call, "ok");
            Json(RegistrarValidBody {
                valid: true,
                registrar: call.registrar,
                domain: call.domain.clone(),
            })
            .into_response()
        }
        Err(e) => {
            log_outcome(&call, e.outcome());
            registrar_error(&call, &e)
        }
    }
}

/// `POST /api/v1/registrar/{registrar}/set-ns`: validate, set, read back.
#[utoipa::path(
    post,
    path = "/registrar/{registrar}/set-ns",
    tag = "pool",
    params(("registrar" = String, Path, description = "`cloudflare`, `godaddy`, `namecheap`, `ovh`, `dynadot`, …")),
    request_body = RegistrarRequest,
    responses(
        (status = 200, description = "Set and read back.", body = NameserversSetBody),
        (status = 401, description = "`invalid-token`: the registrar rejected the credentials (adds `registrar`, `domain`).", body = crate::error::ErrorBody),
        (status = 403, description = "`domain-not-in-account`.", body = crate::error::ErrorBody),
        (status = 404, description = "`unsupported-registrar` (adds `supported`).", body = crate::error::ErrorBody),
        (status = 422, description = "`missing-domain`, `invalid-domain`, `missing-token`, `missing-nameservers`.", body = crate::error::ErrorBody),
        (status = 429, description = "`rate-limited` by the registrar.", body = crate::error::ErrorBody),
        (status = 502, description = "`api-unavailable`: the registrar is unreachable.", body = crate::error::ErrorBody),
        (status = 503, description = "`no-registrars-configured`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn registrar_set_ns(
    State(state): St,
    Path(registrar): Path<String>,
    Body(body): Body,
) -> Response {
    let call = match registrar_call(&state, &registrar, &body, true) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let token = call.token.expose();
    let result = async {
        call.adapter.validate_token(token, &call.domain).await?;
        call.adapter
            .set_nameservers(token, &call.domain, &call.nameservers)
            .await
    }
    .await;
    if let Err(e) = result {
        log_outcome(&call, e.outcome());
        return registrar_error(&call, &e);
    }
    let confirmed = match call.adapter.get_nameservers(token, &call.domain).await {
        Ok(ns) if !ns.is_empty() => ns,
        _ => call.nameservers.clone(),
    };
    log_outcome(&call, "ok");
    Json(NameserversSetBody {
        success: true,
        registrar: call.registrar,
        domain: call.domain.clone(),
        nameservers: confirmed,
        propagation: propagation_hint(call.registrar),
    })
    .into_response()
}

/// The allocator as the deployment service's [`NameAllocator`].
pub struct PoolNames(pub Arc<Allocator>);

fn name_error(e: DnsError) -> NameError {
    match e {
        DnsError::Conflict
        | DnsError::AlreadyActive
        | DnsError::Releasing
        | DnsError::Reserved(_) => NameError::Conflict,
        other => NameError::Unavailable(other.to_string()),
    }
}

#[async_trait]
impl NameAllocator for PoolNames {
    async fn reserve(
        &self,
        pool: &str,
        sub: &str,
        created_by: &str,
    ) -> Result<PoolReservation, NameError> {
        let a = self
            .0
            .reserve(pool, sub, created_by)
            .await
            .map_err(name_error)?;
        Ok(PoolReservation {
            pool_domain: a.pool_domain,
            subdomain: a.subdomain,
            reservation_token: a.reservation_token.unwrap_or_default(),
        })
    }

    async fn commit(&self, r: &PoolReservation, fqdn: &str, lb_ip: &str) -> Result<(), NameError> {
        let c = self
            .0
            .commit(
                &r.pool_domain,
                &r.subdomain,
                &r.reservation_token,
                fqdn,
                lb_ip,
            )
            .await
            .map_err(name_error)?;
        match c.dns {
            DnsOutcome::Failed(e) => Err(NameError::Unavailable(e)),
            _ => Ok(()),
        }
    }

    async fn release(&self, r: &PoolReservation) -> Result<(), NameError> {
        match self.0.release(&r.pool_domain, &r.subdomain).await {
            Ok(Released {
                dns: DnsOutcome::Failed(e),
                ..
            }) => Err(NameError::Unavailable(e)),
            Ok(_) | Err(DnsError::NotFound) => Ok(()),
            Err(e) => Err(name_error(e)),
        }
    }
}
