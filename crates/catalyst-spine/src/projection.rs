//! The read model: the state every list and detail view shows, built only by applying events in
//! log order ([`Projection::apply`]). Pure and deterministic: the same events give the same
//! projection, byte for byte ([`Projection::to_json`]), whether applied live or rebuilt.
//!
//! What the events carry (event-carried state: each event says what its objects are now, so no
//! view ever reads Git or a store):
//! - `data.organization`: the Organization resource (`null`: gone) and `data.environments`: its
//!   Environments (`[{environment, policy}]`), on every change to `system/catalyst-config`;
//! - `data.applications`: the state of each Application branch a change touched (`name`,
//!   `environment`, `envType`, `branch`, `commit`, `blueprint`, `version`, `dependsOn`, `values`
//!   — the branch's `values.yaml`), and `data.removed`: `[{name, environment}]` uninstalled;
//! - `flux.*` events: `data.application`, `data.status` (`ready`, `failed`, `reconciling`),
//!   `data.message`, `data.revision` for one Application in `catalystenv`;
//! - `token.created` / `token.revoked`: `data.tokenId`, `data.name`, `data.role`, `data.org`,
//!   `data.created` — the tokens that can sign in (never a token or its hash);
//! - `signin.failed`: only the audit log;
//! - `data.actor`, `data.requestId`, `data.commits`, `data.message` (the commit's subject) for
//!   the audit log.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::event::CloudEvent;

/// Where an Application stands, as far as the Sovereign knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppStatus {
    /// Committed to Git; Flux has not reported on this commit yet.
    Committed,
    /// Flux is reconciling it.
    Reconciling,
    /// Flux reports it ready.
    Ready,
    /// Flux reports a failure.
    Failed,
}

impl AppStatus {
    /// Every status, in display order.
    pub const ALL: [AppStatus; 4] = [
        AppStatus::Failed,
        AppStatus::Reconciling,
        AppStatus::Committed,
        AppStatus::Ready,
    ];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::Committed => "committed",
            AppStatus::Reconciling => "reconciling",
            AppStatus::Ready => "ready",
            AppStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<AppStatus> {
        AppStatus::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One Application in one Environment: the App card.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppCard {
    /// The Application.
    pub name: String,
    /// Its Organization.
    pub org: String,
    /// `<org>-<env_type>`.
    pub environment: String,
    /// `dev`, `stg`, `prod`, `uat`, `poc`.
    pub env_type: String,
    /// The Git branch of that Environment.
    pub branch: String,
    /// The Blueprint.
    pub blueprint: String,
    /// Its version.
    pub version: String,
    /// The last commit on the branch.
    pub commit: String,
    /// Who made the last change.
    pub actor: Option<String>,
    /// When the last change or status came.
    pub updated: DateTime<Utc>,
    /// The Applications it depends on.
    pub depends_on: Vec<String>,
    /// Where it stands.
    pub status: AppStatus,
    /// Flux's message, when it reported one.
    pub message: Option<String>,
    /// The revision Flux reports.
    pub revision: Option<String>,
    /// The branch's `values.yaml` (`null` when the event that set the card did not carry it).
    pub values: Value,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Position in the log.
    pub seq: u64,
    /// When.
    pub time: DateTime<Utc>,
    /// The event kind (`application.installed`).
    pub kind: String,
    /// Who.
    pub actor: Option<String>,
    /// The Organization, if any.
    pub org: Option<String>,
    /// The Environment, if any.
    pub environment: Option<String>,
    /// The object.
    pub subject: String,
    /// The request that caused it.
    pub request_id: Option<String>,
    /// Commits written (`repo@branch:commit`).
    pub commits: Vec<String>,
    /// The commit message's subject (`Change values of web in acme-dev`).
    pub message: Option<String>,
}

/// A token that can sign in, as far as the events say (never the token or its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenView {
    /// The token record's id.
    pub id: String,
    /// Its holder.
    pub name: String,
    /// The role it carries.
    pub role: String,
    /// Its Organization (`None`: Sovereign-wide).
    pub org: Option<String>,
    /// When it was made (RFC 3339, as the token store has it).
    pub created: String,
}

/// One Organization's part of the projection.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OrgView {
    /// The Organization resource (`null` when only its Applications were seen).
    pub organization: Value,
    /// Its Environments, `{environment, policy}` each.
    pub environments: Vec<Value>,
    /// Its App cards, by (Application, Environment).
    pub apps: BTreeMap<(String, String), AppCard>,
}

/// The read model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Projection {
    seq: u64,
    orgs: BTreeMap<String, OrgView>,
    audit: Vec<AuditEntry>,
    tokens: BTreeMap<String, TokenView>,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

impl Projection {
    /// An empty projection.
    pub fn new() -> Projection {
        Projection::default()
    }

    /// The sequence number of the last event applied.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Applies one event. Events must come in log order; one at or before [`Projection::seq`]
    /// is ignored, so applying a log twice changes nothing.
    pub fn apply(&mut self, e: &CloudEvent) {
        if e.catalystseq <= self.seq {
            return;
        }
        self.seq = e.catalystseq;
        let kind = e.short_kind().to_owned();
        let actor = text(&e.data["actor"]);
        self.audit.push(AuditEntry {
            seq: e.catalystseq,
            time: e.time,
            kind: kind.clone(),
            actor: actor.clone(),
            org: e.catalystorg.clone(),
            environment: e.catalystenv.clone(),
            subject: e.subject.clone(),
            request_id: text(&e.data["requestId"]),
            commits: e.data["commits"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    format!(
                        "{}@{}:{}",
                        c["repo"].as_str().unwrap_or_default(),
                        c["branch"].as_str().unwrap_or_default(),
                        c["commit"].as_str().unwrap_or_default()
                    )
                })
                .collect(),
            message: text(&e.data["message"]),
        });
        match kind.as_str() {
            "token.created" => {
                if let Some(id) = text(&e.data["tokenId"]) {
                    let token = TokenView {
                        id: id.clone(),
                        name: text(&e.data["name"]).unwrap_or_default(),
                        role: text(&e.data["role"]).unwrap_or_default(),
                        org: text(&e.data["org"]),
                        created: text(&e.data["created"]).unwrap_or_default(),
                    };
                    self.tokens.insert(id, token);
                }
                return;
            }
            "token.revoked" => {
                if let Some(id) = text(&e.data["tokenId"]) {
                    self.tokens.remove(&id);
                }
                return;
            }
            k if k.starts_with("signin.") => return,
            _ => {}
        }
        let Some(org) = e.catalystorg.clone() else {
            return;
        };
        if kind == "organization.deleted" {
            self.orgs.remove(&org);
            return;
        }
        if kind.starts_with("flux.") {
            self.apply_flux(&org, e);
            return;
        }
        let view = self.orgs.entry(org.clone()).or_default();
        if let Some(doc) = e.data.get("organization") {
            view.organization = doc.clone();
        }
        if let Some(envs) = e.data.get("environments").and_then(Value::as_array) {
            view.environments = envs.clone();
        }
        for a in e.data["applications"].as_array().into_iter().flatten() {
            let (Some(name), Some(env)) = (text(&a["name"]), text(&a["environment"])) else {
                continue;
            };
            let commit = text(&a["commit"]).unwrap_or_default();
            let old = view.apps.get(&(name.clone(), env.clone()));
            // A card keeps Flux's word while its commit stands; a new commit starts over.
            let (status, message, revision) = match old {
                Some(c) if c.commit == commit => (c.status, c.message.clone(), c.revision.clone()),
                Some(c) => (AppStatus::Committed, None, c.revision.clone()),
                None => (AppStatus::Committed, None, None),
            };
            let card = AppCard {
                name: name.clone(),
                org: org.clone(),
                environment: env.clone(),
                env_type: text(&a["envType"]).unwrap_or_default(),
                branch: text(&a["branch"]).unwrap_or_default(),
                blueprint: text(&a["blueprint"]).unwrap_or_default(),
                version: text(&a["version"]).unwrap_or_default(),
                commit,
                actor: actor.clone(),
                updated: e.time,
                depends_on: a["dependsOn"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(text)
                    .collect(),
                status,
                message,
                revision,
                values: a.get("values").cloned().unwrap_or(Value::Null),
            };
            view.apps.insert((name, env), card);
        }
        for r in e.data["removed"].as_array().into_iter().flatten() {
            if let (Some(name), Some(env)) = (text(&r["name"]), text(&r["environment"])) {
                view.apps.remove(&(name, env));
            }
        }
    }

    fn apply_flux(&mut self, org: &str, e: &CloudEvent) {
        let (Some(env), Some(app)) = (&e.catalystenv, text(&e.data["application"])) else {
            return;
        };
        let Some(card) = self
            .orgs
            .get_mut(org)
            .and_then(|v| v.apps.get_mut(&(app, env.clone())))
        else {
            return;
        };
        if let Some(status) = e.data["status"].as_str().and_then(AppStatus::parse) {
            card.status = status;
        }
        card.message = text(&e.data["message"]);
        if let Some(rev) = text(&e.data["revision"]) {
            card.revision = Some(rev);
        }
        card.updated = e.time;
    }

    /// The Organizations, by name.
    pub fn orgs(&self) -> &BTreeMap<String, OrgView> {
        &self.orgs
    }

    /// An Organization's App cards, optionally of one Environment (`<org>-<env_type>`), by name
    /// then Environment.
    pub fn applications(&self, org: &str, environment: Option<&str>) -> Vec<&AppCard> {
        self.orgs
            .get(org)
            .into_iter()
            .flat_map(|v| v.apps.values())
            .filter(|c| environment.is_none_or(|e| c.environment == e))
            .collect()
    }

    /// An Organization's App cards (optionally of one Environment), each with the Applications
    /// of its Environment that depend on it ("used by"); linear in the number of cards.
    pub fn cards(&self, org: &str, environment: Option<&str>) -> Vec<(&AppCard, Vec<&str>)> {
        let cards = self.applications(org, environment);
        let mut users: std::collections::HashMap<(&str, &str), Vec<&str>> =
            std::collections::HashMap::new();
        for c in &cards {
            for d in &c.depends_on {
                users
                    .entry((c.environment.as_str(), d.as_str()))
                    .or_default()
                    .push(c.name.as_str());
            }
        }
        cards
            .into_iter()
            .map(|c| {
                let u = users
                    .remove(&(c.environment.as_str(), c.name.as_str()))
                    .unwrap_or_default();
                (c, u)
            })
            .collect()
    }

    /// The Applications in the same Environment that depend on `card`.
    pub fn used_by(&self, card: &AppCard) -> Vec<String> {
        self.applications(&card.org, Some(&card.environment))
            .into_iter()
            .filter(|c| c.depends_on.contains(&card.name))
            .map(|c| c.name.clone())
            .collect()
    }

    /// Every card of Blueprint `blueprint`, of one Organization or all.
    pub fn blueprint_usage(&self, blueprint: &str, org: Option<&str>) -> Vec<&AppCard> {
        self.orgs
            .iter()
            .filter(|(name, _)| org.is_none_or(|o| o == name.as_str()))
            .flat_map(|(_, v)| v.apps.values())
            .filter(|c| c.blueprint == blueprint)
            .collect()
    }

    /// The audit log, oldest first.
    pub fn audit(&self) -> &[AuditEntry] {
        &self.audit
    }

    /// The tokens that can sign in, by record id.
    pub fn tokens(&self) -> &BTreeMap<String, TokenView> {
        &self.tokens
    }

    /// The whole projection as canonical JSON (sorted keys): two projections of the same events
    /// give the same bytes.
    pub fn to_json(&self) -> Value {
        let orgs: serde_json::Map<String, Value> = self
            .orgs
            .iter()
            .map(|(name, v)| {
                let apps: Vec<Value> = v
                    .apps
                    .values()
                    .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
                    .collect();
                (
                    name.clone(),
                    json!({"organization": v.organization, "environments": v.environments, "applications": apps}),
                )
            })
            .collect();
        json!({
            "seq": self.seq,
            "organizations": orgs,
            "audit": serde_json::to_value(&self.audit).unwrap_or(Value::Null),
            "tokens": serde_json::to_value(&self.tokens).unwrap_or(Value::Null),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventDraft;

    fn ev(seq: u64, kind: &str, env: Option<&str>, data: Value) -> CloudEvent {
        let mut e = EventDraft {
            id: format!("e{seq}"),
            kind: kind.into(),
            org: Some("acme".into()),
            env: env.map(Into::into),
            subject: "acme/web".into(),
            time: DateTime::from_timestamp(1_800_000_000 + seq as i64, 0).unwrap(),
            data,
        }
        .into_event();
        e.catalystseq = seq;
        e
    }

    fn app(name: &str, commit: &str, version: &str, deps: &[&str]) -> Value {
        json!({"name": name, "environment": "acme-dev", "envType": "dev", "branch": "develop",
               "commit": commit, "blueprint": format!("bp-{name}"), "version": version, "dependsOn": deps})
    }

    fn events() -> Vec<CloudEvent> {
        vec![
            ev(
                1,
                "organization.created",
                None,
                json!({"actor": "root", "organization": {"metadata": {"name": "acme"}}, "environments": []}),
            ),
            ev(
                2,
                "application.installed",
                Some("acme-dev"),
                json!({"actor": "ann", "requestId": "r1",
                "commits": [{"repo": "acme/web", "branch": "develop", "commit": "c1"}],
                "applications": [app("web", "c1", "1.0.0", &["web-postgres"]), app("web-postgres", "c0", "15.0.0", &[])]}),
            ),
            ev(
                3,
                "flux.ready",
                Some("acme-dev"),
                json!({"application": "web", "status": "ready", "revision": "develop@sha1:c1", "message": "Helm install succeeded"}),
            ),
            ev(
                4,
                "flux.failed",
                Some("acme-dev"),
                json!({"application": "web-postgres", "status": "failed", "message": "timeout"}),
            ),
        ]
    }

    #[test]
    fn cards_follow_commits_and_flux() {
        let mut p = Projection::new();
        for e in events() {
            p.apply(&e);
        }
        let cards = p.applications("acme", None);
        assert_eq!(cards.len(), 2);
        let web = cards[0];
        assert_eq!((web.name.as_str(), web.status), ("web", AppStatus::Ready));
        assert_eq!(web.revision.as_deref(), Some("develop@sha1:c1"));
        assert_eq!(web.actor.as_deref(), Some("ann"));
        assert_eq!(p.used_by(cards[1]), ["web"]);
        let with_users: Vec<(&str, Vec<&str>)> = p
            .cards("acme", Some("acme-dev"))
            .into_iter()
            .map(|(c, u)| (c.name.as_str(), u))
            .collect();
        assert_eq!(with_users, [("web", vec![]), ("web-postgres", vec!["web"])]);
        assert_eq!(cards[1].status, AppStatus::Failed);
        assert_eq!(p.blueprint_usage("bp-web", None).len(), 1);
        assert_eq!(p.blueprint_usage("bp-web", Some("other")).len(), 0);
        assert_eq!(p.audit().len(), 4);
        assert_eq!(p.audit()[1].commits, ["acme/web@develop:c1"]);

        // A new commit starts the card over (committed), keeping the last revision Flux gave.
        p.apply(&ev(
            5,
            "application.upgraded",
            Some("acme-dev"),
            json!({"actor": "bob", "applications": [app("web", "c2", "1.1.0", &["web-postgres"])]}),
        ));
        let web = p.applications("acme", Some("acme-dev"))[0].clone();
        assert_eq!(
            (web.status, web.version.as_str()),
            (AppStatus::Committed, "1.1.0")
        );
        assert_eq!(web.message, None);
        assert_eq!(web.revision.as_deref(), Some("develop@sha1:c1"));

        // Uninstalled, then the Organization deleted.
        p.apply(&ev(
            6,
            "application.uninstalled",
            Some("acme-dev"),
            json!({"removed": [{"name": "web", "environment": "acme-dev"}]}),
        ));
        assert_eq!(p.applications("acme", None).len(), 1);
        p.apply(&ev(
            7,
            "organization.deleted",
            None,
            json!({"organization": null}),
        ));
        assert!(p.orgs().is_empty());
        assert_eq!(p.seq(), 7);
    }

    #[test]
    fn applying_twice_changes_nothing_and_rebuilds_are_identical() {
        let mut a = Projection::new();
        for e in events() {
            a.apply(&e);
        }
        let once = a.to_json();
        for e in events() {
            a.apply(&e);
        }
        assert_eq!(a.to_json(), once);
        let mut b = Projection::new();
        for e in events() {
            b.apply(&e);
        }
        assert_eq!(
            serde_json::to_vec(&b.to_json()).unwrap(),
            serde_json::to_vec(&once).unwrap()
        );
    }

    #[test]
    fn flux_for_an_unknown_application_changes_nothing_but_the_audit() {
        let mut p = Projection::new();
        p.apply(&ev(
            1,
            "flux.ready",
            Some("acme-dev"),
            json!({"application": "ghost", "status": "ready"}),
        ));
        assert!(p.orgs().is_empty());
        assert_eq!(p.audit().len(), 1);
    }
}
