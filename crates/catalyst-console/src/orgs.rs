//! The Organization pages, for every signed-in caller — what their role lets them see, read
//! from the projection (`catalyst-spine`), never from Git or a store:
//!
//! - `/orgs`: the Organizations the caller may see (all for sovereign-admin);
//! - `/orgs/{org}`: its Environments, its Applications counted by status, its members;
//! - `/orgs/{org}/environments/{env}`: the Environment view — App cards grouped by status, the
//!   backing services and what uses what;
//! - `/orgs/{org}/applications/{app}`: the Application in each Environment (Blueprint, version,
//!   status with Flux's message and revision) and its history (who changed what, when, with
//!   which commits).
//!
//! Another Organization's page is a 404, exactly as for one that does not exist. The pages read
//! without JavaScript; `live.js` follows the Organization's event stream and re-renders the
//! page's live region in place (a render reads the projection, so an event seen twice changes
//! nothing).
use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use catalyst_spine::{AppStatus, Projection};
use serde_json::Value;

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
    org: String,
    env: String,
    env_type: String,
    groups: Vec<(&'static str, Vec<Card>)>,
    applications: usize,
    backing: Vec<String>,
    uses: Vec<(String, String)>,
    policy: String,
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

/// One change in an Application's history (its audit entries, newest first).
struct Change {
    time: String,
    kind: String,
    actor: String,
    environment: String,
    commits: String,
}

#[derive(Template)]
#[template(path = "application.html")]
struct AppPage {
    nav: &'static str,
    viewer: Viewer,
    org: String,
    app: String,
    cards: Vec<Card>,
    history: Vec<Change>,
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
        rows,
    })
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
    if !viewer.sees(&org) {
        return Err(not_found(&format!("Organization {org}")));
    }
    let read = projection(&state)?;
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
        org,
        display_name,
        envs,
        by_status,
        applications,
        members,
    })
}

/// `GET /orgs/{org}/environments/{env}` (`dev` or `acme-dev`).
pub async fn environment(
    State(state): St,
    Extension(viewer): Extension<Viewer>,
    Path((org, env)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    if !viewer.sees(&org) {
        return Err(not_found(&format!("Organization {org}")));
    }
    let env = if env.starts_with(&format!("{org}-")) {
        env
    } else {
        format!("{org}-{env}")
    };
    let read = projection(&state)?;
    let (o, e) = (org.clone(), env.clone());
    let found = read.read(move |p| {
        let view = p.orgs().get(&o)?;
        let policy = view
            .environments
            .iter()
            .find(|x| str_at(x, "/environment/metadata/name") == e)
            .map(|x| policy_words(&x["policy"]))?;
        let cards = p.cards(&o, Some(&e));
        let backing = cards
            .iter()
            .filter(|(_, users)| !users.is_empty())
            .map(|(c, _)| c.name.clone())
            .collect();
        let uses = cards
            .iter()
            .flat_map(|(c, _)| c.depends_on.iter().map(|d| (c.name.clone(), d.clone())))
            .collect();
        let mut groups: BTreeMap<usize, (&'static str, Vec<Card>)> = BTreeMap::new();
        let applications = cards.len();
        for (c, users) in cards {
            let i = AppStatus::ALL
                .iter()
                .position(|s| *s == c.status)
                .unwrap_or(0);
            groups
                .entry(i)
                .or_insert_with(|| (c.status.as_str(), Vec::new()))
                .1
                .push(Card::of(c, users));
        }
        Some((
            policy,
            groups.into_values().collect(),
            applications,
            backing,
            uses,
        ))
    });
    let Some((policy, groups, applications, backing, uses)) = found else {
        return Err(not_found(&format!("Environment {env}")));
    };
    page(&EnvPage {
        nav: "orgs",
        viewer,
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
    })
}

/// `GET /orgs/{org}/applications/{app}`.
pub async fn application(
    State(state): St,
    Extension(viewer): Extension<Viewer>,
    Path((org, app)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    if !viewer.sees(&org) {
        return Err(not_found(&format!("Organization {org}")));
    }
    let read = projection(&state)?;
    let (o, a) = (org.clone(), app.clone());
    let (cards, history) = read.read(move |p| {
        let cards: Vec<Card> = p
            .cards(&o, None)
            .into_iter()
            .filter(|(c, _)| c.name == a)
            .map(|(c, users)| Card::of(c, users))
            .collect();
        let subject = format!("{o}/{a}");
        let history = p
            .audit()
            .iter()
            .rev()
            .filter(|e| e.subject == subject && e.org.as_deref() == Some(o.as_str()))
            .take(HISTORY)
            .map(|e| Change {
                time: e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                kind: e
                    .kind
                    .strip_prefix(catalyst_spine::event::TYPE_PREFIX)
                    .unwrap_or(&e.kind)
                    .to_owned(),
                actor: e.actor.clone().unwrap_or_default(),
                environment: e.environment.clone().unwrap_or_default(),
                commits: e
                    .commits
                    .iter()
                    .map(|c| c.chars().take(12).collect::<String>())
                    .collect::<Vec<_>>()
                    .join(" "),
            })
            .collect();
        (cards, history)
    });
    if cards.is_empty() {
        return Err(not_found(&format!("Application {app}")));
    }
    page(&AppPage {
        nav: "orgs",
        viewer,
        org,
        app,
        cards,
        history,
    })
}
