//! The read side over HTTP: every view here reads the projection (`catalyst-spine`), never Git
//! or a store, and every stream reads the spine.
//!
//! - `GET /api/v1/orgs/{org}/applications[?environment=]`: App cards (status from Flux, last
//!   commit and actor, dependencies and "used by").
//! - `GET /api/v1/orgs/{org}/events[?environment=&type=]`: SSE, `id:` = the spine's sequence
//!   number; it starts with the next event, or after the one `Last-Event-ID` names (`0`: the
//!   whole history); every subscriber gets every event once, in order (it reads the log from its
//!   cursor, so a slow one falls behind, never loses one).
//! - `GET /api/v1/orgs/{org}/audit` and `GET /api/v1/audit`: who did what, filtered by actor,
//!   type and time, paginated by cursor.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use crate::extract::{Path, Query};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::{Bytes, BytesMut};
use catalyst_spine::{AppCard, AuditEntry, CloudEvent, Projection, Spine};
use futures::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Identity, Right, Role};
use super::{org_name, OrgApi, OrgPath};
use crate::ApiError;

type Res = Result<Response, ApiError>;

/// What the read side counts for `/metrics`.
#[derive(Debug)]
pub struct ReadMetrics {
    projector: Arc<catalyst_spine::Projector>,
    subscribers: Arc<std::sync::atomic::AtomicI64>,
    webhook: [std::sync::atomic::AtomicU64; WEBHOOK_OUTCOMES.len()],
}

/// The outcomes of `POST /hooks/flux` that are counted.
pub const WEBHOOK_OUTCOMES: [&str; 5] = [
    "applied",
    "ignored",
    "unknown-object",
    "invalid-signature",
    "invalid-body",
];

/// Held by an open event stream; counts it.
pub struct StreamGuard(Arc<std::sync::atomic::AtomicI64>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl ReadMetrics {
    /// Metrics over `projector` (and the spine it follows).
    pub fn new(projector: Arc<catalyst_spine::Projector>) -> ReadMetrics {
        ReadMetrics {
            projector,
            subscribers: Arc::default(),
            webhook: Default::default(),
        }
    }

    fn stream(&self) -> StreamGuard {
        self.subscribers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        StreamGuard(self.subscribers.clone())
    }

    /// Counts one webhook call by its outcome (one of [`WEBHOOK_OUTCOMES`]).
    pub fn webhook(&self, outcome: &str) {
        if let Some(i) = WEBHOOK_OUTCOMES.iter().position(|o| *o == outcome) {
            self.webhook[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The Prometheus text of these metrics.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        use std::sync::atomic::Ordering::Relaxed;
        let spine = self.projector.spine();
        let _ = writeln!(
            out,
            "# HELP catalyst_spine_events_total Events recorded on the spine, by type."
        );
        let _ = writeln!(out, "# TYPE catalyst_spine_events_total counter");
        for (kind, n) in spine.counts_by_type() {
            let _ = writeln!(
                out,
                "catalyst_spine_events_total{{type=\"{kind}\",backend=\"{}\"}} {n}",
                spine.backend()
            );
        }
        let _ = writeln!(out, "# HELP catalyst_projector_lag_events Events the projection is behind the head of the spine.");
        let _ = writeln!(out, "# TYPE catalyst_projector_lag_events gauge");
        let _ = writeln!(
            out,
            "catalyst_projector_lag_events {}",
            self.projector.lag()
        );
        let _ = writeln!(out, "# HELP catalyst_event_stream_subscribers Open event streams (/events, /orgs/{{org}}/events).");
        let _ = writeln!(out, "# TYPE catalyst_event_stream_subscribers gauge");
        let _ = writeln!(
            out,
            "catalyst_event_stream_subscribers {}",
            self.subscribers.load(Relaxed)
        );
        let _ = writeln!(out, "# HELP catalyst_flux_webhook_calls_total Calls of POST /api/v1/hooks/flux, by outcome.");
        let _ = writeln!(out, "# TYPE catalyst_flux_webhook_calls_total counter");
        for (outcome, n) in WEBHOOK_OUTCOMES.iter().zip(&self.webhook) {
            let _ = writeln!(
                out,
                "catalyst_flux_webhook_calls_total{{outcome=\"{outcome}\"}} {}",
                n.load(Relaxed)
            );
        }
    }
}

/// How often an idle stream sends a keepalive comment.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// `?environment=` (`dev` or `acme-dev`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppsQuery {
    /// Only this Environment's (`dev` or `acme-dev`).
    environment: Option<String>,
}

/// The full Environment name for `?environment=`: `acme-dev` as is, `dev` as `acme-dev`.
fn env_filter(org: &str, env: Option<&str>) -> Option<String> {
    env.filter(|e| !e.is_empty()).map(|e| {
        if e.starts_with(&format!("{org}-")) {
            e.to_string()
        } else {
            format!("{org}-{e}")
        }
    })
}

/// An App card on the wire: an Application in one Environment, its status from Flux, its last
/// commit and who made it, what it depends on and what uses it.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CardWire<'a> {
    name: &'a str,
    environment: &'a str,
    env_type: &'a str,
    branch: &'a str,
    commit: &'a str,
    blueprint: &'a str,
    version: &'a str,
    depends_on: &'a [String],
    used_by: Vec<&'a str>,
    status: &'static str,
    message: Option<&'a str>,
    revision: Option<&'a str>,
    actor: Option<&'a str>,
    updated: String,
}

impl<'a> CardWire<'a> {
    fn of((c, used_by): (&'a AppCard, Vec<&'a str>)) -> CardWire<'a> {
        CardWire {
            name: &c.name,
            environment: &c.environment,
            env_type: &c.env_type,
            branch: &c.branch,
            commit: &c.commit,
            blueprint: &c.blueprint,
            version: &c.version,
            depends_on: &c.depends_on,
            used_by,
            status: c.status.as_str(),
            message: c.message.as_deref(),
            revision: c.revision.as_deref(),
            actor: c.actor.as_deref(),
            updated: c
                .updated
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

/// `GET /api/v1/orgs/{org}/applications` answer.
#[derive(serde::Serialize, ToSchema)]
pub struct ApplicationsBody<'a> {
    /// The App cards, by Environment and name.
    applications: Vec<CardWire<'a>>,
}

/// `GET /api/v1/orgs/{org}/applications`.
#[utoipa::path(
    get,
    path = "/orgs/{org}/applications",
    tag = "read",
    params(OrgPath, AppsQuery),
    responses((status = 200, description = "The Organization's App cards.", body = ApplicationsBody))
)]
pub async fn list_apps(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Path(org): Path<String>,
    Query(q): Query<AppsQuery>,
) -> Res {
    id.authorize(&org, Right::ReadApps)?;
    let org = org_name(&org)?.to_string();
    let env = env_filter(&org, q.environment.as_deref());
    // Serialized under the projection's read lock, straight from the cards.
    let body = project(&api, move |p| {
        p.orgs().get(&org)?;
        let applications = p
            .cards(&org, env.as_deref())
            .into_iter()
            .map(CardWire::of)
            .collect();
        serde_json::to_vec(&ApplicationsBody { applications }).ok()
    })
    .await?
    .ok_or_else(super::auth::org_not_found)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `?lastEventId=&environment=&type=` of the event streams.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume after this event (`0`: the whole history); the `Last-Event-ID` header wins.
    #[serde(rename = "lastEventId")]
    #[param(value_type = Option<u64>)]
    last_event_id: Option<String>,
    /// Only this Environment's events (`acme-dev`; `dev` under an Organization).
    environment: Option<String>,
    /// Only this type (`application.installed`), family (`application`) or full CloudEvents type.
    #[serde(rename = "type")]
    kind: Option<String>,
}

const EVENTS_DOC: &str = "Server-sent events: `id:` is the spine's sequence number, `event:` the \
    event's type, `data:` the CloudEvent (JSON). Starts with the next event, or after the one \
    `Last-Event-ID` names; `: keepalive` comments while idle; on shutdown a final comment says \
    which `Last-Event-ID` to resume with.";

/// `id: <seq>\nevent: <type>\ndata: <CloudEvent JSON>\n\n`.
fn encode(e: &CloudEvent) -> Bytes {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".to_owned());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        e.catalystseq, e.kind
    ))
}

/// How many recent frames [`FrameCache`] keeps.
const FRAMES_KEPT: usize = 8192;

/// The SSE frames of recent events, shared by every stream: an event is encoded once however
/// many subscribers send it (a subscriber far behind encodes its own).
#[derive(Debug, Default)]
pub struct FrameCache {
    frames: std::sync::RwLock<std::collections::VecDeque<(u64, Bytes)>>,
}

impl FrameCache {
    fn frame(&self, e: &CloudEvent) -> Bytes {
        let seq = e.catalystseq;
        {
            let r = self.frames.read().unwrap_or_else(|p| p.into_inner());
            if let Ok(i) = r.binary_search_by_key(&seq, |(s, _)| *s) {
                return r[i].1.clone();
            }
        }
        let frame = encode(e);
        let mut w = self.frames.write().unwrap_or_else(|p| p.into_inner());
        if let Err(i) = w.binary_search_by_key(&seq, |(s, _)| *s) {
            w.insert(i, (seq, frame.clone()));
            while w.len() > FRAMES_KEPT {
                w.pop_front();
            }
        }
        frame
    }
}

struct Cursor<F> {
    frames: Arc<FrameCache>,
    spine: Arc<dyn Spine>,
    after: u64,
    head: tokio::sync::watch::Receiver<u64>,
    keep: F,
    shutdown: tokio_util::sync::CancellationToken,
    ended: bool,
    _guard: StreamGuard,
    _slot: super::limit::StreamSlot,
}

/// The events of `spine` after `after` that `keep` accepts, as SSE frames, forever; `head`
/// wakes the stream (the spine's head, or one Organization's watch from [`super::wake`]).
fn spine_stream<F>(
    api: &OrgApi,
    spine: Arc<dyn Spine>,
    head: tokio::sync::watch::Receiver<u64>,
    after: u64,
    keep: F,
    slot: super::limit::StreamSlot,
) -> impl Stream<Item = Result<Bytes, Infallible>>
where
    F: Fn(&CloudEvent) -> bool + Send + 'static,
{
    let guard = api.metrics.stream();
    stream::unfold(
        Cursor {
            frames: api.frames.clone(),
            spine,
            after,
            head,
            keep,
            shutdown: api.shutdown.clone(),
            ended: false,
            _guard: guard,
            _slot: slot,
        },
        |mut c| async move {
            if c.ended {
                return None;
            }
            loop {
                let batch = c.spine.read_after(c.after, 512);
                if let Some(last) = batch.last() {
                    c.after = last.catalystseq;
                    let mut buf = BytesMut::new();
                    for e in batch.iter().filter(|e| (c.keep)(e)) {
                        buf.extend_from_slice(&c.frames.frame(e));
                    }
                    if !buf.is_empty() {
                        return Some((Ok(buf.freeze()), c));
                    }
                    continue;
                }
                let woken = tokio::select! {
                    woken = tokio::time::timeout(KEEPALIVE, c.head.changed()) => woken,
                    _ = c.shutdown.cancelled() => {
                        // The server is stopping: the client resumes from here, elsewhere or
                        // after the restart.
                        c.ended = true;
                        let last = format!(
                            ": shutting down; reconnect with Last-Event-ID: {}\n\n",
                            c.after
                        );
                        return Some((Ok(Bytes::from(last)), c));
                    }
                };
                match woken {
                    Err(_) => return Some((Ok(Bytes::from_static(b": keepalive\n\n")), c)),
                    Ok(Err(_)) => return None,
                    Ok(Ok(())) => continue,
                }
            }
        },
    )
}

fn sse(stream: impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// `GET /api/v1/orgs/{org}/events`.
#[utoipa::path(
    get,
    path = "/orgs/{org}/events",
    tag = "read",
    params(
        OrgPath,
        EventsQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event"),
    ),
    responses(
        (status = 200, description = EVENTS_DOC, content_type = "text/event-stream", body = crate::sse::SseFrame),
        (status = 400, description = "`invalid-last-event-id`.", body = crate::error::ErrorBody),
    )
)]
pub async fn org_events(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Path(org): Path<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Res {
    id.authorize(&org, Right::ReadOrg)?;
    let org = org_name(&org)?.to_string();
    let slot = match api.auth.open_stream(&id) {
        Ok(slot) => slot,
        Err(refused) => return Ok(*refused),
    };
    let spine = api.read.spine().clone();
    // Subscribed before the first read, so no event of the Organization slips between.
    let head = api.wake.subscribe(&org);
    let after = crate::sse::resume_from(&headers, q.last_event_id.as_deref())?
        .unwrap_or_else(|| spine.head());
    let env = env_filter(&org, q.environment.as_deref());
    let kind = q.kind.filter(|k| !k.is_empty());
    let keep = move |e: &CloudEvent| {
        e.catalystorg.as_deref() == Some(org.as_str())
            && env
                .as_ref()
                .is_none_or(|env| e.catalystenv.as_ref() == Some(env))
            && kind
                .as_ref()
                .is_none_or(|k| type_matches(e.short_kind(), k))
    };
    Ok(sse(spine_stream(&api, spine, head, after, keep, slot)))
}

/// `GET /api/v1/events` (sovereign-admin): every event.
#[utoipa::path(
    get,
    path = "/events",
    tag = "read",
    params(
        EventsQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event"),
    ),
    responses(
        (status = 200, description = EVENTS_DOC, content_type = "text/event-stream", body = crate::sse::SseFrame),
        (status = 400, description = "`invalid-last-event-id`.", body = crate::error::ErrorBody),
    )
)]
pub async fn all_events(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Res {
    id.authorize_sovereign()?;
    let slot = match api.auth.open_stream(&id) {
        Ok(slot) => slot,
        Err(refused) => return Ok(*refused),
    };
    let spine = api.read.spine().clone();
    let head = spine.watch();
    let after = crate::sse::resume_from(&headers, q.last_event_id.as_deref())?
        .unwrap_or_else(|| spine.head());
    let env = q.environment.filter(|e| !e.is_empty());
    let kind = q.kind.filter(|k| !k.is_empty());
    let keep = move |e: &CloudEvent| {
        env.as_ref()
            .is_none_or(|env| e.catalystenv.as_ref() == Some(env))
            && kind
                .as_ref()
                .is_none_or(|k| type_matches(e.short_kind(), k))
    };
    Ok(sse(spine_stream(&api, spine, head, after, keep, slot)))
}

/// `type=application.installed`, `type=application` (a family) or the full CloudEvents type.
fn type_matches(short_kind: &str, wanted: &str) -> bool {
    let wanted = wanted
        .strip_prefix(catalyst_spine::event::TYPE_PREFIX)
        .unwrap_or(wanted);
    short_kind == wanted
        || short_kind
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// `?actor=&type=&since=&until=&after=&limit=` of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this actor's entries.
    actor: Option<String>,
    /// Only this type or family.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// From this time on (RFC 3339).
    since: Option<String>,
    /// Before this time (RFC 3339).
    until: Option<String>,
    /// After this entry (`nextCursor` of the previous page).
    after: Option<u64>,
    /// Page size, 1–1000 (default 100).
    limit: Option<usize>,
}

/// One audit log entry.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryBody {
    /// The event's sequence number.
    seq: u64,
    /// When (RFC 3339, milliseconds).
    time: String,
    /// The event type (`application.installed`, …).
    #[serde(rename = "type")]
    kind: String,
    /// Who did it.
    actor: Option<String>,
    /// The Organization.
    organization: Option<String>,
    /// The Environment.
    environment: Option<String>,
    /// What it was done to.
    subject: String,
    /// The request's id (`X-Request-Id`).
    request_id: Option<String>,
    /// The commits it made.
    commits: Vec<String>,
}

/// A page of the audit log.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    /// Oldest first.
    entries: Vec<AuditEntryBody>,
    /// Pass as `?after=` for the next page; null on the last page.
    next_cursor: Option<u64>,
}

fn time_param(
    name: &str,
    v: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid-query",
                        format!("{name} must be an RFC 3339 time, e.g. 2026-12-06T10:00:00Z"),
                    )
                })
        })
        .transpose()
}

fn audit_json(a: &AuditEntry) -> AuditEntryBody {
    AuditEntryBody {
        seq: a.seq,
        time: a.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        kind: a.kind.clone(),
        actor: a.actor.clone(),
        organization: a.org.clone(),
        environment: a.environment.clone(),
        subject: a.subject.clone(),
        request_id: a.request_id.clone(),
        commits: a.commits.clone(),
    }
}

async fn audit_page(api: &OrgApi, org: Option<String>, q: AuditQuery) -> Res {
    let since = time_param("since", q.since.as_deref())?;
    let until = time_param("until", q.until.as_deref())?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let after = q.after.unwrap_or(0);
    let (entries, more) = project(api, move |p| {
        let mut matching = p.audit().iter().filter(|a| {
            a.seq > after
                && org.as_ref().is_none_or(|o| a.org.as_ref() == Some(o))
                && q.actor.as_ref().is_none_or(|w| a.actor.as_ref() == Some(w))
                && q.kind.as_ref().is_none_or(|k| type_matches(&a.kind, k))
                && since.is_none_or(|s| a.time >= s)
                && until.is_none_or(|u| a.time < u)
        });
        let page: Vec<AuditEntryBody> = matching.by_ref().take(limit).map(audit_json).collect();
        let more = matching.next().is_some();
        (page, more)
    })
    .await?;
    let next_cursor = if more {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries,
        next_cursor,
    })
    .into_response())
}

/// `GET /api/v1/orgs/{org}/audit`: the Organization's part of the audit log.
#[utoipa::path(
    get,
    path = "/orgs/{org}/audit",
    tag = "read",
    params(OrgPath, AuditQuery),
    responses(
        (status = 200, description = "A page of the audit log.", body = AuditPage),
        (status = 400, description = "`invalid-query`: `since`/`until` are not RFC 3339 times.", body = crate::error::ErrorBody),
    )
)]
pub async fn org_audit(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Path(org): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Res {
    id.authorize(&org, Right::ReadOrg)?;
    let org = org_name(&org)?.to_string();
    audit_page(&api, Some(org), q).await
}

/// `GET /api/v1/audit`: the whole audit log (sovereign-admin), or a security-officer's
/// Organization's part.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "read",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of the audit log.", body = AuditPage),
        (status = 400, description = "`invalid-query`: `since`/`until` are not RFC 3339 times.", body = crate::error::ErrorBody),
    )
)]
pub async fn audit(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Query(q): Query<AuditQuery>,
) -> Res {
    let org = match (id.role, &id.org) {
        (Role::SovereignAdmin, _) => None,
        (Role::SecurityOfficer, Some(org)) => Some(org.clone()),
        _ => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the audit log is for sovereign-admin and security-officer",
            ))
        }
    };
    audit_page(&api, org, q).await
}

/// Reads the projection off the async threads.
async fn project<T: Send + 'static>(
    api: &OrgApi,
    f: impl FnOnce(&Projection) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let read = api.read.clone();
    tokio::task::spawn_blocking(move || read.read(f))
        .await
        .map_err(|_| ApiError::internal("the projection stopped"))
}

/// `GET /api/v1/orgs` answer.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct OrganizationsBody {
    /// The Organization resources (`catalyst.openova.io/v1alpha1` `Organization`).
    #[schema(value_type = Vec<Object>)]
    organizations: Vec<Value>,
}

/// `GET /api/v1/orgs/{org}/environments` answer.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct EnvironmentsBody {
    /// `{environment, policy}`: the `Environment` and `EnvironmentPolicy` resources.
    #[schema(value_type = Vec<Object>)]
    environments: Vec<Value>,
}

/// `GET /api/v1/orgs`: the Organizations the caller may see (all for sovereign-admin).
#[utoipa::path(
    get,
    path = "/orgs",
    tag = "organizations",
    responses((status = 200, description = "The Organizations the caller may see (all for sovereign-admin).", body = OrganizationsBody))
)]
pub async fn list_orgs(State(api): State<Arc<OrgApi>>, id: Identity) -> Res {
    let orgs = project(&api, move |p| {
        p.orgs()
            .iter()
            .filter(|(name, v)| {
                !v.organization.is_null()
                    && (id.role == Role::SovereignAdmin || id.org.as_deref() == Some(name.as_str()))
            })
            .map(|(_, v)| v.organization.clone())
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(Json(OrganizationsBody {
        organizations: orgs,
    })
    .into_response())
}

/// `GET /api/v1/orgs/{org}/environments`: `[{environment, policy}]`.
#[utoipa::path(
    get,
    path = "/orgs/{org}/environments",
    tag = "organizations",
    params(OrgPath),
    responses((status = 200, description = "The Organization's Environments and their policies.", body = EnvironmentsBody))
)]
pub async fn list_envs(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Path(org): Path<String>,
) -> Res {
    id.authorize(&org, Right::ReadOrg)?;
    let org = org_name(&org)?.to_string();
    let envs = project(&api, move |p| {
        p.orgs()
            .get(&org)
            .filter(|v| !v.organization.is_null())
            .map(|v| v.environments.clone())
    })
    .await?
    .ok_or_else(super::auth::org_not_found)?;
    Ok(Json(EnvironmentsBody { environments: envs }).into_response())
}

/// `GET /api/v1/orgs/{org}/environments/{env}`: the Environment view — the Environment and its
/// policy, its Applications grouped by status, the backing services (Applications others depend
/// on) and what uses what.
#[utoipa::path(
    get,
    path = "/orgs/{org}/environments/{env}",
    tag = "read",
    params(
        OrgPath,
        ("env" = String, Path, description = "The Environment (`dev` or `acme-dev`)"),
    ),
    responses((status = 200, description = "`{environment, policy, applications: {<status>: [App card]}, backingServices: [name], uses: [{from, to}]}`.", body = Object))
)]
pub async fn get_env(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Path((org, env)): Path<(String, String)>,
) -> Res {
    id.authorize(&org, Right::ReadOrg)?;
    let org = org_name(&org)?;
    let env_type = super::env_type(&org, &env, "environment")
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not-found", "Environment not found"))?;
    let name = format!("{org}-{}", env_type.as_str());
    let org = org.to_string();
    let view = project(&api, move |p| {
        let v = p.orgs().get(&org)?;
        let found = v
            .environments
            .iter()
            .find(|e| {
                e.pointer("/environment/metadata/name")
                    .and_then(Value::as_str)
                    == Some(&name)
            })?
            .clone();
        let cards = p.cards(&org, Some(&name));
        let backing: Vec<&str> = cards
            .iter()
            .filter(|(_, users)| !users.is_empty())
            .map(|(c, _)| c.name.as_str())
            .collect();
        let mut grouped = serde_json::Map::new();
        for status in catalyst_spine::AppStatus::ALL {
            let of: Vec<Value> = cards
                .iter()
                .filter(|(c, _)| c.status == status)
                .map(|(c, users)| {
                    serde_json::to_value(CardWire::of((c, users.clone()))).unwrap_or(Value::Null)
                })
                .collect();
            grouped.insert(status.as_str().to_owned(), Value::Array(of));
        }
        let cards: Vec<&AppCard> = cards.into_iter().map(|(c, _)| c).collect();
        let uses: Vec<Value> = cards
            .iter()
            .flat_map(|c| {
                c.depends_on
                    .iter()
                    .map(move |d| json!({"from": c.name, "to": d}))
            })
            .collect();
        let mut out = found;
        out["applications"] = Value::Object(grouped);
        out["backingServices"] = json!(backing);
        out["uses"] = Value::Array(uses);
        Some(out)
    })
    .await?
    .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not-found", "Environment not found"))?;
    Ok(Json(view).into_response())
}

/// `GET /api/v1/blueprints/{name}/usage`: where a Blueprint is used (Application, Environment,
/// version, status); an Organization-scoped caller sees only their Organization's.
#[utoipa::path(
    get,
    path = "/blueprints/{name}/usage",
    tag = "read",
    params(("name" = String, Path, description = "The Blueprint")),
    responses((status = 200, description = "Where the Blueprint is used.", body = UsageBody))
)]
pub async fn blueprint_usage(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Path(name): Path<String>,
) -> Res {
    let org = match (id.role, &id.org) {
        (Role::SovereignAdmin, _) => None,
        (role, Some(org)) if role.allows(Right::ReadApps) => Some(org.clone()),
        (role, _) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("role {} may not read Applications", role.as_str()),
            ))
        }
    };
    let usage = project(&api, move |p| {
        p.blueprint_usage(&name, org.as_deref())
            .into_iter()
            .map(|c| UsageEntry {
                organization: c.org.clone(),
                application: c.name.clone(),
                environment: c.environment.clone(),
                version: c.version.clone(),
                status: c.status.as_str(),
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(Json(UsageBody { usage }).into_response())
}

/// One use of a Blueprint.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct UsageEntry {
    /// The Organization.
    organization: String,
    /// The Application.
    application: String,
    /// The Environment.
    environment: String,
    /// The Blueprint version it runs.
    version: String,
    /// Its status.
    status: &'static str,
}

/// `GET /api/v1/blueprints/{name}/usage` answer.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct UsageBody {
    /// Every Application built from the Blueprint.
    usage: Vec<UsageEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64) -> CloudEvent {
        let mut e = catalyst_spine::EventDraft {
            id: format!("e{seq}"),
            kind: "organization.created".into(),
            org: Some("acme".into()),
            env: None,
            subject: "acme".into(),
            time: chrono::Utc::now(),
            data: json!({}),
        }
        .into_event();
        e.catalystseq = seq;
        e
    }

    #[test]
    fn types_match_by_name_family_or_full_type() {
        for wanted in [
            "application.installed",
            "application",
            "io.openova.catalyst.application.installed",
            "io.openova.catalyst.application",
        ] {
            assert!(type_matches("application.installed", wanted), "{wanted}");
        }
        for wanted in ["app", "application.installe", "pool", "installed"] {
            assert!(!type_matches("application.installed", wanted), "{wanted}");
        }
    }

    #[test]
    fn a_frame_is_encoded_once_and_the_cache_stays_bounded() {
        let cache = FrameCache::default();
        let a = cache.frame(&ev(2));
        let b = cache.frame(&ev(2));
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "the second subscriber gets the same bytes"
        );
        assert!(a.starts_with(b"id: 2\nevent: io.openova.catalyst.organization.created\ndata: {"));
        // Out of order (a subscriber far behind) still lands in order.
        cache.frame(&ev(1));
        let seqs: Vec<u64> = cache
            .frames
            .read()
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(seqs, [1, 2]);
        for seq in 3..(FRAMES_KEPT as u64 + 10) {
            cache.frame(&ev(seq));
        }
        let frames = cache.frames.read().unwrap();
        assert_eq!(frames.len(), FRAMES_KEPT);
        assert_eq!(frames.back().unwrap().0, FRAMES_KEPT as u64 + 9);
    }
}
