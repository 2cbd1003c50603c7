//! Route handlers of the provisioning API.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::extract::{Path, Query};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use catalyst_core::request::is_dns_label;
use catalyst_core::{DeploymentId, Secret};
use catalyst_provision::hetzner::{self, HetznerError, TokenCheck};
use catalyst_provision::service::{encode_cursor, RetryOutcome};
use catalyst_provision::sshkey;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::error::ResolveErrorKind;
use hickory_resolver::TokioAsyncResolver;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tracing::{info, warn};

use crate::error::ApiError;
use crate::wire::{
    CreateDeploymentRequest, CreatedBody, CredentialsBody, CredentialsRequest, EventBody,
    EventsBody, ListBody, RetryBody, RetryRequest, SshKeyBody, SshKeyRequest, StateBody,
    SubdomainBody, SubdomainRequest,
};
use crate::AppState;

type AppResult<T> = Result<T, ApiError>;
type St = State<Arc<AppState>>;

/// Decodes a JSON body; an empty body decodes as `T::default()` when `allow_empty`.
pub(crate) fn decode<T: DeserializeOwned + Default>(
    body: &Bytes,
    allow_empty: bool,
) -> AppResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if allow_empty {
            Ok(T::default())
        } else {
            Err(ApiError::invalid_body(
                "request body is empty; expected a JSON object",
            ))
        };
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_body(format!(
            "request body is not valid JSON for this route: {e}"
        ))
    })
}

/// A body, or the JSON error for one that is too large or unreadable.
pub(crate) struct Body(pub Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Body(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request-too-large",
                format!("request body must be at most {} bytes", crate::BODY_LIMIT),
            )),
            Err(e) => Err(ApiError::invalid_body(format!(
                "could not read the request body: {e}"
            ))),
        }
    }
}

pub(crate) fn parse_id(id: &str) -> AppResult<DeploymentId> {
    DeploymentId::parse(id).map_err(|_| ApiError::deployment_not_found())
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the store can write right now.
pub async fn readyz(State(state): St) -> Response {
    match state.service.store().check_writable().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            warn!(error = %e, "Readiness check failed: the store cannot write.");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                format!("the deployment store cannot write: {e}"),
            )
            .into_response()
        }
    }
}

/// Fallback for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such route")
}

/// Fallback for a known route with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this route does not accept that method",
    )
}

/// `POST /api/v1/deployments`.
#[utoipa::path(
    post,
    path = "/deployments",
    tag = "deployments",
    request_body = CreateDeploymentRequest,
    responses(
        (status = 201, description = "Created; the pipeline runs. Follow `streamURL`.", body = CreatedBody,
            headers(("Location" = String, description = "The deployment's URL"))),
        (status = 409, description = "`subdomain-conflict`: the Sovereign's name is in use.", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid-field` (every invalid field in `fields`) or `credential-required`.", body = crate::error::ErrorBody),
    )
)]
pub async fn create_deployment(State(state): St, Body(body): Body) -> AppResult<Response> {
    let req: CreateDeploymentRequest = decode(&body, false)?;
    let (spec, token) = req
        .into_input()
        .validate(&state.service.config().pool_domains)
        .map_err(ApiError::validation)?;
    // The bootstrap tree must render (every component in the bootstrap catalog) before
    // anything is reserved or run.
    if let Some(git) = &state.sovereign_git {
        if let Err(e) = git.repos().render(&crate::sovereign_git::choice_of(&spec)) {
            return Err(ApiError::validation(vec![catalyst_core::FieldError {
                field: "components".into(),
                message: e.to_string(),
            }]));
        }
    }
    if let Some(other) = state.service.fqdn_in_use(&spec.sovereign_fqdn) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "subdomain-conflict",
            format!(
                "{} is already used by deployment {other}, which has not failed — pick a different name or delete that deployment",
                spec.sovereign_fqdn
            ),
        ));
    }
    let view = state.service.create(spec, token).await?;
    let id = view.record.id.to_string();
    let body = CreatedBody {
        stream_url: format!("/api/v1/deployments/{id}/logs"),
        id: id.clone(),
        status: view.record.status.as_str(),
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/deployments/{id}"))],
        Json(body),
    )
        .into_response())
}

/// `?limit=&cursor=` of the list route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1–500 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// `GET /api/v1/deployments`: newest first.
#[utoipa::path(
    get,
    path = "/deployments",
    tag = "deployments",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of deployments, newest first.", body = ListBody),
        (status = 400, description = "`invalid-query`: a bad `limit` or `cursor`.", body = crate::error::ErrorBody),
    )
)]
pub async fn list_deployments(
    State(state): St,
    Query(q): Query<ListQuery>,
) -> AppResult<Json<ListBody>> {
    let limit = match q.limit.as_deref() {
        None | Some("") => 50,
        Some(s) => match s.parse::<usize>() {
            Ok(n @ 1..=500) => n,
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-query",
                    "limit must be an integer between 1 and 500",
                ))
            }
        },
    };
    if let Some(c) = q.cursor.as_deref() {
        if !c.is_empty() && catalyst_provision::service::decode_cursor(c).is_none() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-query",
                "cursor is not one this server handed out",
            ));
        }
    }
    let page = state
        .service
        .list(limit + 1, q.cursor.as_deref().filter(|c| !c.is_empty()))?;
    let next_cursor = (page.len() > limit).then(|| encode_cursor(&page[limit - 1].record));
    Ok(Json(ListBody {
        deployments: page.iter().take(limit).map(StateBody::from).collect(),
        next_cursor,
    }))
}

/// `GET /api/v1/deployments/{id}`.
#[utoipa::path(
    get,
    path = "/deployments/{id}",
    tag = "deployments",
    params(("id" = String, Path, description = "The deployment id")),
    responses((status = 200, description = "The deployment.", body = StateBody))
)]
pub async fn get_deployment(
    State(state): St,
    Path(id): Path<String>,
) -> AppResult<Json<StateBody>> {
    let view = state.service.view(&parse_id(&id)?)?;
    Ok(Json(StateBody::from(&view)))
}

/// `DELETE /api/v1/deployments/{id}`: finished deployments only.
#[utoipa::path(
    delete,
    path = "/deployments/{id}",
    tag = "deployments",
    params(("id" = String, Path, description = "The deployment id")),
    responses(
        (status = 204, description = "Deleted (its record and event log)."),
        (status = 409, description = "`still-running`: only a finished deployment can be deleted.", body = crate::error::ErrorBody),
    )
)]
pub async fn delete_deployment(State(state): St, Path(id): Path<String>) -> AppResult<StatusCode> {
    let id = parse_id(&id)?;
    state.service.delete(&id).await?;
    // Its bootstrap repository goes with it (and its read token opens nothing any more).
    if let Some(git) = state.sovereign_git.clone() {
        let removed = tokio::task::spawn_blocking(move || git.repos().remove(id.as_str())).await;
        if let Ok(Err(e)) = removed {
            warn!(error = %e, "Could not remove a deleted deployment's bootstrap repository.");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/deployments/{id}/events`.
#[utoipa::path(
    get,
    path = "/deployments/{id}/events",
    tag = "deployments",
    params(("id" = String, Path, description = "The deployment id")),
    responses((status = 200, description = "The state and the most recent events.", body = EventsBody))
)]
pub async fn get_events(State(state): St, Path(id): Path<String>) -> AppResult<Json<EventsBody>> {
    let (view, events) = state.service.recent_events(&parse_id(&id)?).await?;
    Ok(Json(EventsBody {
        state: StateBody::from(&view),
        events: events.iter().map(EventBody::from).collect(),
        done: view.done,
    }))
}

/// `POST /api/v1/deployments/{id}/cancel`: stops an in-flight deployment.
#[utoipa::path(
    post,
    path = "/deployments/{id}/cancel",
    tag = "deployments",
    params(("id" = String, Path, description = "The deployment id")),
    responses(
        (status = 200, description = "Cancelled and finished.", body = StateBody),
        (status = 202, description = "Cancel requested; the run is stopping.", body = StateBody),
        (status = 409, description = "`already-finished`.", body = crate::error::ErrorBody),
    )
)]
pub async fn cancel_deployment(State(state): St, Path(id): Path<String>) -> AppResult<Response> {
    let view = state
        .service
        .cancel(&parse_id(&id)?, Duration::from_secs(15))
        .await?;
    let code = if view.done {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((code, Json(StateBody::from(&view))).into_response())
}

/// `POST /api/v1/deployments/{id}/phases/{phase}/retry`.
#[utoipa::path(
    post,
    path = "/deployments/{id}/phases/{phase}/retry",
    tag = "deployments",
    params(
        ("id" = String, Path, description = "The deployment id"),
        ("phase" = String, Path, description = "The phase to retry (`tofu-apply`, …)"),
    ),
    request_body(content = RetryRequest, description = "Optional: the Hetzner token, when the server restarted since the run."),
    responses(
        (status = 200, description = "Retry accepted, or the manual action Phase 1 needs.", body = RetryBody),
        (status = 400, description = "`unknown-phase`.", body = crate::error::ErrorBody),
        (status = 409, description = "`in-flight`: the deployment is still running.", body = crate::error::ErrorBody),
        (status = 422, description = "`credential-required`.", body = crate::error::ErrorBody),
    )
)]
pub async fn retry_phase(
    State(state): St,
    Path((id, phase)): Path<(String, String)>,
    Body(body): Body,
) -> AppResult<Json<RetryBody>> {
    let id = parse_id(&id)?;
    let req: RetryRequest = decode(&body, true)?;
    let token = req.hetzner_token.map(Secret::new);
    let stream_url = format!("/api/v1/deployments/{id}/logs");
    Ok(Json(match state.service.retry(&id, &phase, token).await? {
        RetryOutcome::Rerun(view) => RetryBody {
            id: id.to_string(),
            status: view.record.status.as_str(),
            message: "Phase 0 retry accepted — re-running the OpenTofu pipeline against the existing working directory (idempotent). Reopen the SSE stream to follow progress.".to_owned(),
            phase,
            stream_url,
            runbook: None,
        },
        RetryOutcome::ManualActionRequired(_) => RetryBody {
            id: id.to_string(),
            status: "manual-retry-required",
            message: format!("Phase 1 ({phase}) is owned by Flux on the new Sovereign — operator action required if automatic remediation exhausted."),
            phase,
            stream_url,
            runbook: Some("docs/RUNBOOK-PROVISIONING.md#rollback-procedures-per-phase"),
        },
    }))
}

/// `POST /api/v1/credentials/validate`.
#[utoipa::path(
    post,
    path = "/credentials/validate",
    tag = "wizard",
    security(()),
    request_body = CredentialsRequest,
    responses(
        (status = 200, description = "Hetzner answered: `valid` says whether the token has read & write access.", body = CredentialsBody),
        (status = 400, description = "The token cannot be a Hetzner token (`valid: false`), or the body is not JSON (`invalid-body`).", body = crate::wire::CredentialsRejection),
        (status = 422, description = "`unsupported-provider`.", body = crate::error::ErrorBody),
        (status = 503, description = "Hetzner could not be reached (`valid: false`).", body = CredentialsBody),
    )
)]
pub async fn validate_credentials(State(state): St, Body(body): Body) -> AppResult<Response> {
    let req: CredentialsRequest = decode(&body, false)?;
    let provider = req.provider.trim().to_ascii_lowercase();
    if !provider.is_empty() && provider != "hetzner" {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported-provider",
            format!("credentials for {provider:?} cannot be checked yet; only hetzner"),
        ));
    }
    let token = Secret::new(req.token.trim());
    let answer = |code: StatusCode, valid: bool, message: &str| {
        (
            code,
            Json(CredentialsBody {
                valid,
                message: message.to_owned(),
            }),
        )
            .into_response()
    };
    if let Err(msg) = hetzner::precheck(&token) {
        return Ok(answer(StatusCode::BAD_REQUEST, false, msg));
    }
    Ok(match state.hetzner.check_token(&token).await {
        Ok(TokenCheck::Valid) => answer(StatusCode::OK, true, "read/write access confirmed"),
        Ok(TokenCheck::Rejected) => answer(
            StatusCode::OK,
            false,
            "token rejected — ensure it has Read & Write permissions",
        ),
        Err(HetznerError::InvalidToken) => answer(
            StatusCode::BAD_REQUEST,
            false,
            "token contains characters that cannot be sent to Hetzner",
        ),
        Err(e) => {
            warn!(error = %e, "Hetzner credential check failed.");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                false,
                "could not reach Hetzner API — check network connectivity",
            )
        }
    })
}

/// `POST /api/v1/sshkey/generate`: a fresh Ed25519 key pair; the private key is returned once.
#[utoipa::path(
    post,
    path = "/sshkey/generate",
    tag = "wizard",
    security(()),
    request_body(content = SshKeyRequest, description = "Optional: the FQDN for the key's comment."),
    responses((status = 200, description = "A fresh Ed25519 key pair; the private key is returned once and never kept.", body = SshKeyBody,
        headers(("Cache-Control" = String, description = "`no-store`"))))
)]
pub async fn generate_ssh_key(Body(body): Body) -> AppResult<Response> {
    let req: SshKeyRequest = decode(&body, true)?;
    let fqdn = Some(req.fqdn.as_str()).filter(|f| !f.trim().is_empty());
    let key = sshkey::generate(fqdn).map_err(|e| ApiError::internal(e.to_string()))?;
    info!(fingerprint = %key.fingerprint, "Generated an SSH key pair.");
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(SshKeyBody {
            public_key: key.public_key.clone(),
            private_key: key.private_key.clone(),
            fingerprint: key.fingerprint.clone(),
        }),
    )
        .into_response())
}

/// How BYO subdomain checks resolve names.
pub struct Resolver(TokioAsyncResolver);

impl Resolver {
    /// The system's resolver (`/etc/resolv.conf`), 2 s timeout.
    pub fn system() -> Self {
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 1;
        let (config, _) = hickory_resolver::system_conf::read_system_conf()
            .unwrap_or_else(|_| (ResolverConfig::default(), ResolverOpts::default()));
        Resolver(TokioAsyncResolver::tokio(config, opts))
    }

    /// A resolver asking one name server (UDP+TCP), 2 s timeout.
    pub fn with_nameserver(addr: SocketAddr) -> Self {
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 1;
        let group = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
        Resolver(TokioAsyncResolver::tokio(
            ResolverConfig::from_parts(None, vec![], group),
            opts,
        ))
    }
}

/// `POST /api/v1/subdomains/check`. Always 200 for well-formed JSON; read `available`.
#[utoipa::path(
    post,
    path = "/subdomains/check",
    tag = "wizard",
    security(()),
    request_body = SubdomainRequest,
    responses(
        (status = 200, description = "Whether the name can be used; read `available`.", body = SubdomainBody),
        (status = 400, description = "The body is not JSON (`reason: invalid-format`).", body = SubdomainBody),
    )
)]
pub async fn check_subdomain(State(state): St, Body(body): Body) -> Response {
    let req: SubdomainRequest = match decode(&body, false) {
        Ok(r) => r,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(SubdomainBody {
                    available: false,
                    reason: Some("invalid-format"),
                    detail: Some("request body could not be parsed as JSON".into()),
                    fqdn: None,
                }),
            )
                .into_response()
        }
    };
    Json(subdomain_answer(&state, &req).await).into_response()
}

async fn subdomain_answer(state: &AppState, req: &SubdomainRequest) -> SubdomainBody {
    let sub = req.subdomain.trim().to_ascii_lowercase();
    let pool = req.pool_domain.trim().to_ascii_lowercase();
    if !is_dns_label(&sub) {
        return SubdomainBody {
            available: false,
            reason: Some("invalid-format"),
            detail: Some(
                "subdomain must be a-z, 0-9 and hyphens, start with a letter, max 63 characters"
                    .into(),
            ),
            fqdn: None,
        };
    }
    let fqdn = format!("{sub}.{pool}");
    let unavailable = |reason: &'static str, detail: String| SubdomainBody {
        available: false,
        reason: Some(reason),
        detail: Some(detail),
        fqdn: Some(fqdn.clone()),
    };
    if let Some(p) = state
        .pool
        .as_deref()
        .filter(|p| p.allocator.is_managed(&pool))
    {
        return match p.allocator.check(&pool, &sub).await {
            Ok(c) => SubdomainBody {
                available: c.available,
                reason: c.reason,
                detail: c.detail,
                fqdn: c.fqdn,
            },
            Err(e) => {
                warn!(error = %e, "Pool-domain check failed.");
                unavailable(
                    "pdm-unavailable",
                    "the pool-domain manager could not answer; try again".into(),
                )
            }
        };
    }
    if state.service.config().pool_domains.contains(&pool) {
        if RESERVED_LABELS.contains(&sub.as_str()) {
            return unavailable(
                "reserved",
                format!("{sub} is reserved by the platform — pick a different name"),
            );
        }
        if let Some(id) = state.service.fqdn_in_use(&fqdn) {
            return unavailable(
                "active-state",
                format!("{fqdn} is already used by deployment {id} — pick a different name"),
            );
        }
        return SubdomainBody {
            available: true,
            reason: None,
            detail: None,
            fqdn: Some(fqdn),
        };
    }
    match state.resolver.0.lookup_ip(fqdn.as_str()).await {
        Ok(ips) if ips.iter().next().is_some() => unavailable(
            "exists",
            "this subdomain already resolves in DNS — pick a different name".into(),
        ),
        Ok(_) => SubdomainBody {
            available: true,
            reason: None,
            detail: None,
            fqdn: Some(fqdn),
        },
        Err(e) => match e.kind() {
            ResolveErrorKind::NoRecordsFound { .. } => SubdomainBody {
                available: true,
                reason: None,
                detail: None,
                fqdn: Some(fqdn),
            },
            _ => unavailable("lookup-error", format!("DNS lookup failed: {e}")),
        },
    }
}

/// Labels a pool Sovereign may not take (they name platform endpoints).
pub const RESERVED_LABELS: &[&str] = &[
    "www", "api", "admin", "console", "gitea", "harbor", "docs", "mail", "ns1", "ns2", "ns3",
    "catalyst", "system", "openova",
];
