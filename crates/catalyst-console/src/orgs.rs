//! The Organization pages, for every signed-in caller — what their role lets them see, read
//! from the projection (`catalyst-spine`), never from Git or a store:
//!
//! - `/orgs`: the Organizations the caller may see (all for sovereign-admin);
//! - `/orgs/{org}`: its Environments, its Applications counted by status, its members;
//! - `/orgs/{org}/environments/{env}`: the Environment view — App cards grouped by status, the
//!   backing services and what uses what;
//! - `/orgs/{org}/applications/{app}`: the Application in each Environment (Blueprint, version,
//!   status with Flux's message and revision) and its history (who changed what, when, with
//!   which commits);
//! - `/audit` (sovereign-admin: everything; a security-officer: their Organization's) and
//!   `/orgs/{org}/audit`: the audit log, filtered by actor, type and time, 100 rows a page.
//!
//! Another Organization's page is a 404, exactly as for one that does not exist. The pages read
//! without JavaScript; `live.js` follows the Organization's event stream and re-renders the
//! page's live region in place (a render reads the projection, so an event seen twice changes
//! nothing).
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use catalyst_spine::{AppStatus, Projection};
use serde_json::Value;

use crate::catalog::{form_fields, FormField};
use crate::error::ConsoleError;
use crate::pages::page;
use crate::{ConsoleState, Viewer};

type St = State<Arc<ConsoleState>>;

/// One Organization in the list.
struct OrgRow {
    name: String,
    display_name: String,
    environments: usize,
    applications: usize,
    /// `(status, count)` of its Applications, statuses with none left out.
    by_status: Vec<(&'static str, usize)>,
}

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage {
    nav: &'static str,
    viewer: Viewer,
    /// The projection's position before the page was read: its event stream starts there.
    seq: u64,
    rows: Vec<OrgRow>,
}

/// One Environment of an Organization.
struct EnvRow {
    name: String,
    env_type: String,
    applications: usize,
    /// The EnvironmentPolicy's rules, in words.
    policy: String,
}

/// One member.
struct MemberRow {
    name: String,
    role: String,
}

#[derive(Template)]
#[template(path = "org.html")]
struct OrgPage {
    nav: &'static str,
    viewer: Viewer,
    /// The projection's position before the page was read: its event stream starts there.
    seq: u64,
    org: String,
    display_name: String,
    envs: Vec<EnvRow>,
    by_status: Vec<(&'static str, usize)>,
    applications: usize,
    members: Vec<MemberRow>,
}

/// An App card.
struct Card {
    environment: String,
    env_type: String,
    branch: String,
    commit: String,
    name: String,
    blueprint: String,
    version: String,
    status: &'static str,
    message: String,
    revision: String,
    actor: String,
    updated: String,
    depends_on: Vec<String>,
    used_by: Vec<String>,
}

#[derive(Template)]
#[template(path = "environment.html")]
struct EnvPage {
    nav: &'static str,
    viewer: Viewer,
    /// The projection's position before the page was read: its event stream starts there.
    seq: u64,
    org: String,
    env: String,
    env_type: String,
    /// `(status, how many in all, this page's cards)`.
    groups: Vec<(&'static str, usize, Vec<Card>)>,
    applications: usize,
    backing: Vec<String>,
    uses: Vec<(String, String)>,
    policy: String,
    /// 1-based; [`CARDS_PAGE`] cards a page.
    page: usize,
    pages: usize,
    /// The first and last card shown (1-based).
    shown: (usize, usize),
}

/// App cards an Environment page shows at once (`?page=N` for the rest).
const CARDS_PAGE: usize = 100;

/// `?page=` of the Environment page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    page: Option<usize>,
}

impl Card {
    fn of(c: &catalyst_spine::AppCard, users: Vec<&str>) -> Card {
        Card {
            environment: c.environment.clone(),
            env_type: c.env_type.clone(),
            branch: c.branch.clone(),
            commit: c.commit.chars().take(12).collect(),
            name: c.name.clone(),
            blueprint: c.blueprint.clone(),
            version: c.version.clone(),
            status: c.status.as_str(),
            message: c.message.clone().unwrap_or_default(),
            revision: c.revision.clone().unwrap_or_default(),
            actor: c.actor.clone().unwrap_or_default(),
            updated: c.updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            depends_on: c.depends_on.clone(),
            used_by: users.into_iter().map(str::to_owned).collect(),
        }
    }
}

/// One commit in an Application's history (from its audit entries, newest first).
struct Change {
    time: String,
    kind: String,
    /// The commit message's subject (the change's kind when the event did not carry it).
    message: String,
    actor: String,
    environment: String,
    /// `dev`, `stg`, … (empty: a branch no Environment of the page has).
    env_type: String,
    /// The full commit id (what Rollback returns to).
    commit: String,
    /// True when it is what the Environment's branch holds now.
    current: bool,
}

impl Change {
    fn short(&self) -> &str {
        &self.commit[..self.commit.len().min(12)]
    }
}

/// What a writer may change of the Application in one Environment.
struct Manage {
    environment: String,
    env_type: String,
    /// The branch's head (`If-Match` of the writes).
    commit: String,
    blueprint: String,
    version: String,
    /// The values form (configSchema controls filled with the branch's values).
    fields: Vec<FormField>,
    /// False when the Blueprint version has no configSchema (or is not in the catalog).
    has_schema: bool,
    /// Newer versions of the Blueprint the catalog has, newest first.
    newer: Vec<String>,
    /// The next Environment to promote into (`stg`), with its policy in words.
    next: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "application.html")]
struct AppPage {
    nav: &'static str,
    viewer: Viewer,
    /// The projection's position before the page was read: its event stream starts there.
    seq: u64,
    org: String,
    app: String,
    cards: Vec<Card>,
    history: Vec<Change>,
    /// The write controls (empty for a caller who may not change Applications).
    manage: Vec<Manage>,
    /// Whether the caller may change Applications of this Organization.
    writes: bool,
    /// Whether the caller may approve promotions.
    approves: bool,
}

/// How many changes the history shows.
const HISTORY: usize = 100;

fn projection(state: &ConsoleState) -> Result<&catalyst_spine::Projector, ConsoleError> {
    state
        .read
        .as_deref()
        .ok_or_else(|| ConsoleError::NotFound("this server has no read side".into()))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn counts(p: &Projection, org: &str, env: Option<&str>) -> (usize, Vec<(&'static str, usize)>) {
    let cards = p.applications(org, env);
    let by_status = AppStatus::ALL
        .iter()
        .map(|s| (s.as_str(), cards.iter().filter(|c| c.status == *s).count()))
        .filter(|(_, n)| *n > 0)
        .collect();
    (cards.len(), by_status)
}

/// An EnvironmentPolicy's rules in words (`none` without rules).
fn policy_words(policy: &Value) -> String {
    let rules: Vec<String> = policy
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| match r {
            Value::Object(o) => o
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}: {s}"),
                    other => format!("{k}: {other}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
            other => other.to_string(),
        })
        .collect();
    if rules.is_empty() {
        "no rules".to_owned()
    } else {
        rules.join("; ")
    }
}

/// `GET /orgs`.
pub async fn list(
    State(state): St,
    Extension(viewer): Extension<Viewer>,
) -> Result<Response, ConsoleError> {
    let read = projection(&state)?;
    // Before the content: an event between the two is shown again, never missed.
    let seq = read.read(|p| p.seq());
    let v = viewer.clone();
    let rows = read.read(move |p| {
        p.orgs()
            .iter()
            .filter(|(name, o)| !o.organization.is_null() && v.sees(name))
            .map(|(name, o)| {
                let (applications, by_status) = counts(p, name, None);
                OrgRow {
                    name: name.clone(),
                    display_name: str_at(&o.organization, "/spec/displayName").to_owned(),
                    environments: o.environments.len(),
                    applications,
                    by_status,
                }
            })
            .collect()
    });
    page(&OrgsPage {
        nav: "orgs",
        viewer,
        seq,
        rows,
    })
}

/// Another Organization is "not found", exactly as one that does not exist.
fn visible(viewer: &Viewer, org: &str) -> Result<(), ConsoleError> {
    if viewer.sees(org) {
        Ok(())
    } else {
        Err(not_found(&format!("Organization {org}")))
    }
}

fn not_found(what: &str) -> ConsoleError {
    ConsoleError::NotFound(format!(
        "{what} does not exist, or your sign-in does not reach it. Go back to the Organizations you can see."
    ))
}

/// `GET /orgs/{org}`.
pub async fn org(
    State(state): St,
    Extension(viewer): Extension<Viewer>,
    Path(org): Path<String>,
) -> Result<Response, ConsoleError> {
    visible(&viewer, &org)?;
    let read = projection(&state)?;
    // Before the content: an event between the two is shown again, never missed.
    let seq = read.read(|p| p.seq());
    let name = org.clone();
    let found = read.read(move |p| {
        let o = p.orgs().get(&name).filter(|o| !o.organization.is_null())?;
        let envs = o
            .environments
            .iter()
            .map(|e| {
                let env = str_at(e, "/environment/metadata/name").to_owned();
                EnvRow {
                    applications: p.applications(&name, Some(&env)).len(),
                    env_type: env
                        .strip_prefix(&format!("{name}-"))
                        .unwrap_or(&env)
                        .to_owned(),
                    name: env,
                    policy: policy_words(&e["policy"]),
                }
            })
            .collect();
        let members = o
            .organization
            .pointer("/spec/members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|m| MemberRow {
                name: str_at(m, "/name").to_owned(),
                role: str_at(m, "/role").to_owned(),
            })
            .collect();
        let (applications, by_status) = counts(p, &name, None);
        Some((
            str_at(&o.organization, "/spec/displayName").to_owned(),
            envs,
            members,
            applications,
            by_status,
        ))
    });
    let Some((display_name, envs, members, applications, by_status)) = found else {
        return Err(not_found(&format!("Organization {org}")));
    };
    page(&OrgPage {
        nav: "orgs",
        viewer,
        seq,
        org,
        display_name,
        envs,
        by_status,
        applications,
        members,
    })
}

/// `GET /orgs/{org}/environments/{env}` (`dev` or `acme-dev`), `?page=N`: the cards grouped
/// by status (failed first), [`CARDS_PAGE`] a page.
pub async fn environment(
    State(state): St,
    Extension(viewer): Extension<Viewer>,
    Path((org, env)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    visible(&viewer, &org)?;
    let env = if env.starts_with(&format!("{org}-")) {
        env
    } else {
        format!("{org}-{env}")
    };
    let read = projection(&state)?;
    // Before the content: an event between the two is shown again, never missed.
    let seq = read.read(|p| p.seq());
    let (o, e) = (org.clone(), env.clone());
    let wanted = q.page.unwrap_or(1).max(1);
    let found = read.read(move |p| {
        let view = p.orgs().get(&o)?;
        let policy = view
            .environments
            .iter()
            .find(|x| str_at(x, "/environment/metadata/name") == e)
            .map(|x| policy_words(&x["policy"]))?;
        let mut cards = p.cards(&o, Some(&e));
        let backing = cards
            .iter()
            .filter(|(_, users)| !users.is_empty())
            .map(|(c, _)| c.name.clone())
            .collect();
        let uses = cards
            .iter()
            .flat_map(|(c, _)| c.depends_on.iter().map(|d| (c.name.clone(), d.clone())))
            .collect();
        let rank = |s: AppStatus| AppStatus::ALL.iter().position(|x| *x == s).unwrap_or(0);
        // Stable: by status in display order, by name within a status.
        cards.sort_by_key(|(c, _)| rank(c.status));
        let applications = cards.len();
        let mut totals = [0usize; AppStatus::ALL.len()];
        for (c, _) in &cards {
            totals[rank(c.status)] += 1;
        }
        let pages = applications.div_ceil(CARDS_PAGE).max(1);
        let number = wanted.min(pages);
        let mut groups: Vec<(&'static str, usize, Vec<Card>)> = Vec::new();
        for (c, users) in cards
            .into_iter()
            .skip((number - 1) * CARDS_PAGE)
            .take(CARDS_PAGE)
        {
            let status = c.status.as_str();
            match groups.last_mut() {
                Some((s, _, list)) if *s == status => list.push(Card::of(c, users)),
                _ => groups.push((status, totals[rank(c.status)], vec![Card::of(c, users)])),
            }
        }
        let first = (number - 1) * CARDS_PAGE;
        let shown = (
            (first + 1).min(applications),
            (first + CARDS_PAGE).min(applications),
        );
        Some((
            policy,
            groups,
            applications,
            backing,
            uses,
            (number, pages, shown),
        ))
    });
    let Some((policy, groups, applications, backing, uses, (number, pages, shown))) = found else {
        return Err(not_found(&format!("Environment {env}")));
    };
    page(&EnvPage {
        nav: "orgs",
        viewer,
        seq,
        env_type: env
            .strip_prefix(&format!("{org}-"))
            .unwrap_or(&env)
            .to_owned(),
        org,
        env,
        groups,
        applications,
        backing,
        uses,
        policy,
        page: number,
        pages,
        shown,
    })
}

/// Promotion order of Environment types: a change moves right.
const PROMOTION_ORDER: [&str; 5] = ["poc", "dev", "uat", "stg", "prod"];

/// The Environment after `env_type` in promotion order among `present`, with its policy.
fn next_env(env_type: &str, present: &[(String, String)]) -> Option<(String, String)> {
    let at = PROMOTION_ORDER.iter().position(|t| *t == env_type)?;
    PROMOTION_ORDER[at + 1..]
        .iter()
        .find_map(|t| present.iter().find(|(e, _)| e == t).cloned())
}

/// The write controls of one card: the values form from the installed version's configSchema,
/// the newer versions, the next Environment.
fn manage_of(
    catalog: &crate::Catalog,
    c: &catalyst_spine::AppCard,
    envs: &[(String, String)],
) -> Manage {
    let schema = catalog.config_schema(&c.blueprint, &c.version);
    let fields = schema
        .map(|schema| {
            let mut fields = form_fields(schema, &c.values);
            for f in &mut fields {
                f.id = format!("{}-{}", c.env_type, f.id);
                // What the branch does not set stays unset (its default applies, and follows
                // an upgrade); the help names the default.
                let unset = c.values.pointer(&f.pointer).is_none();
                if unset && !matches!(f.kind, "checkbox" | "group") && !f.value.is_empty() {
                    f.help = format!("{} Default: {}.", f.help, f.value)
                        .trim_start()
                        .to_owned();
                    f.value.clear();
                }
            }
            fields
        })
        .unwrap_or_default();
    let current = semver::Version::parse(&c.version).ok();
    let newer = catalog
        .get(&c.blueprint)
        .map(|e| {
            e.versions
                .iter()
                .filter(|v| match (semver::Version::parse(v), &current) {
                    (Ok(v), Some(cur)) => v > *cur,
                    _ => false,
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Manage {
        environment: c.environment.clone(),
        env_type: c.env_type.clone(),
        commit: c.commit.clone(),
        blueprint: c.blueprint.clone(),
        version: c.version.clone(),
        has_schema: schema.is_some(),
        fields,
        newer,
        next: next_env(&c.env_type, envs),
    }
}

/// `GET /orgs/{org}/applications/{app}`.
pub async fn application(
    State(state): St,
    Extension(viewer): Extension<Viewer>,
    Path((org, app)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    visible(&viewer, &org)?;
    let read = projection(&state)?;
    // Before the content: an event between the two is shown again, never missed.
    let seq = read.read(|p| p.seq());
    let writes = viewer.writes_apps(&org);
    let approves = viewer.approves(&org);
    let (o, a, catalog) = (org.clone(), app.clone(), state.catalog.clone());
    let (cards, history, manage) = read.read(move |p| {
        let mine: Vec<(&catalyst_spine::AppCard, Vec<&str>)> = p
            .cards(&o, None)
            .into_iter()
            .filter(|(c, _)| c.name == a)
            .collect();
        let envs: Vec<(String, String)> = p
            .orgs()
            .get(&o)
            .map(|v| {
                v.environments
                    .iter()
                    .map(|e| {
                        let name = str_at(e, "/environment/metadata/name");
                        (
                            name.strip_prefix(&format!("{o}-"))
                                .unwrap_or(name)
                                .to_owned(),
                            policy_words(&e["policy"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let manage = if writes || approves {
            mine.iter()
                .map(|(c, _)| manage_of(&catalog, c, &envs))
                .collect()
        } else {
            Vec::new()
        };
        // `acme/web@develop:<commit>` of this Application's repository.
        let repo = format!("{o}/{a}@");
        let history = p
            .audit()
            .iter()
            .rev()
            .filter(|e| e.org.as_deref() == Some(o.as_str()))
            .flat_map(|e| {
                let (mine, repo) = (&mine, &repo);
                e.commits.iter().filter_map(move |c| {
                    let (branch, commit) = c.strip_prefix(repo.as_str())?.split_once(':')?;
                    let card = mine
                        .iter()
                        .find(|(c, _)| c.branch == branch)
                        .map(|(c, _)| c);
                    let kind = e
                        .kind
                        .strip_prefix(catalyst_spine::event::TYPE_PREFIX)
                        .unwrap_or(&e.kind)
                        .to_owned();
                    Some(Change {
                        time: e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        message: e.message.clone().unwrap_or_else(|| kind.clone()),
                        kind,
                        actor: e.actor.clone().unwrap_or_default(),
                        environment: card.map(|c| c.environment.clone()).unwrap_or_default(),
                        env_type: card.map(|c| c.env_type.clone()).unwrap_or_default(),
                        current: card.is_some_and(|c| c.commit == commit),
                        commit: commit.to_owned(),
                    })
                })
            })
            .take(HISTORY)
            .collect();
        let cards: Vec<Card> = mine
            .into_iter()
            .map(|(c, users)| Card::of(c, users))
            .collect();
        (cards, history, manage)
    });
    if cards.is_empty() {
        return Err(not_found(&format!("Application {app}")));
    }
    page(&AppPage {
        nav: "orgs",
        viewer,
        seq,
        org,
        app,
        cards,
        history,
        manage,
        writes,
        approves,
    })
}

/// `?actor=&type=&since=&until=&after=` of the audit pages.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditFilter {
    #[serde(default)]
    actor: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    after: Option<u64>,
}

/// One row of the audit log.
struct AuditRow {
    seq: u64,
    time: String,
    kind: String,
    actor: String,
    org: String,
    environment: String,
    subject: String,
    commits: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: &'static str,
    viewer: Viewer,
    /// The Organization the page is about (`None`: the whole log).
    org: Option<String>,
    action: String,
    filter: AuditFilter,
    rows: Vec<AuditRow>,
    /// `?…&after=N` of the next page, when there is one.
    next: Option<String>,
    problem: String,
}

/// Rows per audit page.
const AUDIT_PAGE: usize = 100;

fn time_filter(v: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    if v.trim().is_empty() {
        return Ok(None);
    }
    let v = v.trim();
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| Some(t.with_timezone(&chrono::Utc)))
        .or_else(|_| {
            // The browser's datetime-local input: `2026-12-07T10:00`, read as UTC.
            chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M").map(|t| Some(t.and_utc()))
        })
        .map_err(|_| format!("{v:?} is not a time; use 2026-12-07T10:00 (UTC)"))
}

fn audit_page(
    state: &ConsoleState,
    viewer: Viewer,
    org: Option<String>,
    action: String,
    filter: AuditFilter,
) -> Result<Response, ConsoleError> {
    let read = projection(state)?;
    let (since, until, problem) = match (time_filter(&filter.since), time_filter(&filter.until)) {
        (Ok(s), Ok(u)) => (s, u, String::new()),
        (Err(p), _) | (_, Err(p)) => (None, None, p),
    };
    let (o, actor, kind, after) = (
        org.clone(),
        filter.actor.trim().to_owned(),
        filter.kind.trim().to_owned(),
        filter.after.unwrap_or(0),
    );
    let (rows, more) = read.read(move |p| {
        let mut matching = p.audit().iter().filter(|e| {
            e.seq > after
                && o.as_ref().is_none_or(|o| e.org.as_ref() == Some(o))
                && (actor.is_empty() || e.actor.as_deref() == Some(actor.as_str()))
                && (kind.is_empty() || e.kind == kind || e.kind.starts_with(&format!("{kind}.")))
                && since.is_none_or(|s| e.time >= s)
                && until.is_none_or(|u| e.time < u)
        });
        let rows: Vec<AuditRow> = matching
            .by_ref()
            .take(AUDIT_PAGE)
            .map(|e| AuditRow {
                seq: e.seq,
                time: e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                kind: e.kind.clone(),
                actor: e.actor.clone().unwrap_or_default(),
                org: e.org.clone().unwrap_or_default(),
                environment: e.environment.clone().unwrap_or_default(),
                subject: e.subject.clone(),
                commits: e
                    .commits
                    .iter()
                    .map(|c| c.chars().take(12).collect::<String>())
                    .collect::<Vec<_>>()
                    .join(" "),
            })
            .collect();
        let more = matching.next().is_some();
        (rows, more)
    });
    let next = match (more, rows.last()) {
        (true, Some(last)) => Some(
            [
                ("actor", filter.actor.as_str()),
                ("type", filter.kind.as_str()),
                ("since", filter.since.as_str()),
                ("until", filter.until.as_str()),
            ]
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", query_escape(v)))
            .chain(std::iter::once(format!("after={}", last.seq)))
            .collect::<Vec<_>>()
            .join("&"),
        ),
        _ => None,
    };
    page(&AuditPage {
        nav: "audit",
        viewer,
        org,
        action,
        filter,
        rows,
        next,
        problem,
    })
}

/// Percent-encodes a query value.
fn query_escape(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `GET /audit`.
pub async fn audit(
    State(state): St,
    Extension(viewer): Extension<Viewer>,
    axum::extract::Query(filter): axum::extract::Query<AuditFilter>,
) -> Result<Response, ConsoleError> {
    let org = match (viewer.is_admin(), viewer.role.as_str(), &viewer.org) {
        (true, _, _) => None,
        (false, "security-officer", Some(org)) => Some(org.clone()),
        _ => {
            return Err(ConsoleError::Forbidden(
                "The audit log is for sovereign-admins and security officers. Your Organization's changes are on its own page.".into(),
            ))
        }
    };
    audit_page(&state, viewer, org, "/audit".into(), filter)
}

/// `GET /orgs/{org}/audit`.
pub async fn org_audit(
    State(state): St,
    Extension(viewer): Extension<Viewer>,
    Path(org): Path<String>,
    axum::extract::Query(filter): axum::extract::Query<AuditFilter>,
) -> Result<Response, ConsoleError> {
    visible(&viewer, &org)?;
    let known = projection(&state)?.read({
        let org = org.clone();
        move |p| {
            p.orgs()
                .get(&org)
                .is_some_and(|o| !o.organization.is_null())
        }
    });
    if !known {
        return Err(not_found(&format!("Organization {org}")));
    }
    let action = format!("/orgs/{org}/audit");
    audit_page(&state, viewer, Some(org), action, filter)
}
