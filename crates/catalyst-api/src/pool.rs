//! Pool-domain and registrar routes: the pool-domain manager's API (same routes and JSON shapes
//! as upstream), served from the allocator in `catalyst-dns`.
//!
//! Every error is `{"error","detail"}` (registrar errors add `registrar` and `domain`). The
//! reservation token appears only in the reserve answer; registrar tokens never appear in a
//! response or a log line.
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Path, Query, State};
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
use serde_json::{json, Value};
use tracing::{error, info};

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
#[derive(Debug, Serialize)]
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

/// `GET /api/v1/pool`: what this manager does.
pub(crate) async fn status(State(state): St) -> AppResult<Json<Value>> {
    let p = pool_api(&state)?;
    let store_ok = p.allocator.store().ping().await.is_ok();
    Ok(Json(json!({
        "managedDomains": p.allocator.managed_domains(),
        "nameservers": p.allocator.config().nameservers,
        "dnsManaged": p.allocator.dns_managed(),
        "store": p.allocator.store().backend(),
        "storeOk": store_ok,
        "registrars": p.registrars.names(),
    })))
}

/// `GET /api/v1/reserved`.
pub(crate) async fn reserved() -> Json<Value> {
    Json(json!({ "reserved": model::RESERVED }))
}

/// `?sub=` of check and release.
#[derive(Debug, Default, Deserialize)]
pub struct SubQuery {
    #[serde(default)]
    sub: String,
}

/// Wire form of a check answer.
#[derive(Debug, Serialize)]
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReserveRequest {
    #[serde(default)]
    subdomain: String,
    #[serde(default)]
    created_by: String,
}

/// `POST /api/v1/pool/{domain}/reserve`.
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
    let mut body = serde_json::to_value(AllocationBody::from(&a, true))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    body["dnsManaged"] = json!(p.allocator.dns_managed());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommitBody {
    #[serde(default)]
    subdomain: String,
    #[serde(default)]
    reservation_token: String,
    #[serde(default, rename = "sovereignFQDN")]
    sovereign_fqdn: String,
    #[serde(default, rename = "loadBalancerIP")]
    load_balancer_ip: String,
}

/// `POST /api/v1/pool/{domain}/commit`: 200, or 202 when the records could not be published
/// (commit again with the same token and address to publish them).
pub(crate) async fn commit(
    State(state): St,
    Path(domain): Path<String>,
    Body(body): Body,
) -> AppResult<Response> {
    let p = pool_api(&state)?;
    let req: CommitBody = decode(&body)?;
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
    let view = AllocationBody::from(&allocation, false);
    Ok(match dns {
        DnsOutcome::Failed(detail) => (
            StatusCode::ACCEPTED,
            Json(json!({
                "warning": "row committed but PowerDNS write failed; retry commit to publish DNS",
                "detail": detail,
                "poolDomain": view.pool_domain,
                "subdomain": view.subdomain,
                "state": view.state,
                "sovereignFQDN": view.sovereign_fqdn,
                "loadBalancerIP": view.load_balancer_ip,
            })),
        )
            .into_response(),
        dns => {
            let mut body =
                serde_json::to_value(&view).map_err(|e| ApiError::internal(e.to_string()))?;
            body["dnsManaged"] = json!(dns != DnsOutcome::NotManaged);
            body["republished"] = json!(action == CommitAction::Republish);
            (StatusCode::OK, Json(body)).into_response()
        }
    })
}

#[derive(Debug, Deserialize)]
struct ReleaseBody {
    #[serde(default)]
    subdomain: String,
}

/// `DELETE /api/v1/pool/{domain}/release`: body `{"subdomain"}` or `?sub=`. 200 when the row
/// and DNS are gone; 202 when DNS teardown failed (the allocation stays `releasing`; release
/// again to finish).
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
            Json(json!({
                "warning": "allocation kept as releasing because PowerDNS teardown failed; re-run release to clean up DNS (idempotent)",
                "detail": detail,
                "freed": freed,
            })),
        )
            .into_response(),
        dns => Json(json!({ "freed": freed, "dnsManaged": dns != DnsOutcome::NotManaged }))
            .into_response(),
    })
}

/// `GET /api/v1/pool/{domain}/list`: every allocation, ordered by subdomain, without tokens.
pub(crate) async fn list(State(state): St, Path(domain): Path<String>) -> AppResult<Json<Value>> {
    let p = pool_api(&state)?;
    let rows = p.allocator.list(&domain).await.map_err(dns_error)?;
    let allocations: Vec<AllocationBody> = rows
        .iter()
        .map(|a| AllocationBody::from(a, false))
        .collect();
    Ok(Json(json!({
        "poolDomain": model::normalise(&domain),
        "allocations": allocations,
    })))
}

#[derive(Deserialize)]
struct RegistrarRequest {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    token: String,
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

/// `POST /api/v1/registrar/{registrar}/validate`.
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
            Json(json!({"valid": true, "registrar": call.registrar, "domain": call.domain}))
                .into_response()
        }
        Err(e) => {
            log_outcome(&call, e.outcome());
            registrar_error(&call, &e)
        }
    }
}

/// `POST /api/v1/registrar/{registrar}/set-ns`: validate, set, read back.
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
    Json(json!({
        "success": true,
        "registrar": call.registrar,
        "domain": call.domain,
        "nameservers": confirmed,
        "propagation": propagation_hint(call.registrar),
    }))
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
