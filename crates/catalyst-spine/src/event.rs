//! CloudEvents 1.0 envelopes (structured JSON) and where each one is routed.
//!
//! Every state change of the Sovereign is one [`CloudEvent`]: `id` (stable, so a producer that
//! publishes the same change twice — an outbox replayed after a crash — is recorded once),
//! `source`, `type` (`io.openova.catalyst.<kind>`), `subject`, `time`, `data`, and the extension
//! attributes `catalystseq` (the position in the log, given by the log), `catalystorg` and
//! `catalystenv` (the Organization and Environment it belongs to, for filters and isolation).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The prefix of every event type.
pub const TYPE_PREFIX: &str = "io.openova.catalyst.";

/// One event, as stored in the log and sent on every stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// CloudEvents spec version: `1.0`.
    pub specversion: String,
    /// Unique and stable per change.
    pub id: String,
    /// Where it happened: `/catalyst/orgs/<org>`, `/catalyst/deployments`, `/catalyst/pool`,
    /// `/catalyst/sovereign`.
    pub source: String,
    /// What happened: `io.openova.catalyst.application.installed`, ….
    #[serde(rename = "type")]
    pub kind: String,
    /// The object: `acme/web`, a deployment id, a pool name.
    pub subject: String,
    /// When (RFC 3339, UTC).
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// Position in the log (1, 2, 3, …); 0 until the log records it.
    #[serde(default)]
    pub catalystseq: u64,
    /// The Organization the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalystorg: Option<String>,
    /// The Environment (`<org>-<env_type>`) the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalystenv: Option<String>,
    /// The details.
    pub data: Value,
}

mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// An event before the log has it: what a producer says.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    /// Stable id (see [`CloudEvent::id`]).
    pub id: String,
    /// The kind without the prefix: `application.installed`.
    pub kind: String,
    /// The Organization, if any.
    pub org: Option<String>,
    /// The Environment (`<org>-<env_type>`), if any.
    pub env: Option<String>,
    /// The object.
    pub subject: String,
    /// When.
    pub time: DateTime<Utc>,
    /// The details.
    pub data: Value,
}

impl EventDraft {
    /// The envelope (`catalystseq` 0: the log numbers it). `time` keeps milliseconds, as the
    /// JSON does, so an event in memory and the same event read back are equal (a live
    /// projection and a rebuilt one are the same bytes).
    pub fn into_event(self) -> CloudEvent {
        use chrono::SubsecRound;
        let source = match (&self.org, self.kind.split('.').next()) {
            (Some(org), _) => format!("/catalyst/orgs/{org}"),
            (None, Some("deployment")) => "/catalyst/deployments".to_owned(),
            (None, Some("pool")) => "/catalyst/pool".to_owned(),
            (None, _) => "/catalyst/sovereign".to_owned(),
        };
        CloudEvent {
            specversion: "1.0".to_owned(),
            id: self.id,
            source,
            kind: format!("{TYPE_PREFIX}{}", self.kind),
            subject: self.subject,
            time: self.time.trunc_subsecs(3),
            datacontenttype: "application/json".to_owned(),
            catalystseq: 0,
            catalystorg: self.org,
            catalystenv: self.env,
            data: self.data,
        }
    }
}

/// A NATS subject token: no `.`, `*`, `>` or white space.
fn token(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| match c {
            '.' | '*' | '>' => '_',
            c if c.is_whitespace() => '_',
            c => c,
        })
        .collect();
    if t.is_empty() {
        "_".to_owned()
    } else {
        t
    }
}

impl CloudEvent {
    /// The kind without the `io.openova.catalyst.` prefix.
    pub fn short_kind(&self) -> &str {
        self.kind.strip_prefix(TYPE_PREFIX).unwrap_or(&self.kind)
    }

    /// The subject it is routed on (the spine's subjects): `ws.<org>-<env>.app.<name>`,
    /// `ws.<org>-<env>.flux.<name>`, `ws.<org>-<env>.git.<commit>`, `sovereign.deployments.<id>`,
    /// `sovereign.orgs.<org>`, `sovereign.pool.<name>`.
    pub fn route(&self) -> String {
        let kind = self.short_kind();
        let family = kind.split('.').next().unwrap_or_default();
        let last = self.subject.rsplit('/').next().unwrap_or(&self.subject);
        match (family, &self.catalystenv, &self.catalystorg) {
            ("application", Some(env), _) => format!("ws.{}.app.{}", token(env), token(last)),
            ("flux", Some(env), _) => format!("ws.{}.flux.{}", token(env), token(last)),
            ("git", Some(env), _) => format!("ws.{}.git.{}", token(env), token(last)),
            ("deployment", _, _) => format!("sovereign.deployments.{}", token(&self.subject)),
            ("pool", _, _) => format!("sovereign.pool.{}", token(&self.subject)),
            (_, _, Some(org)) => format!("sovereign.orgs.{}", token(org)),
            _ => format!("sovereign.{}", token(family)),
        }
    }

    /// `time` as RFC 3339 with milliseconds.
    pub fn time_text(&self) -> String {
        self.time.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(kind: &str, org: Option<&str>, env: Option<&str>, subject: &str) -> CloudEvent {
        EventDraft {
            id: "x".into(),
            kind: kind.into(),
            org: org.map(Into::into),
            env: env.map(Into::into),
            subject: subject.into(),
            time: DateTime::parse_from_rfc3339("2026-12-06T10:00:00.123Z")
                .unwrap()
                .with_timezone(&Utc),
            data: json!({"a": 1}),
        }
        .into_event()
    }

    #[test]
    fn routes_follow_the_spine_subjects() {
        let app = draft(
            "application.installed",
            Some("acme"),
            Some("acme-dev"),
            "acme/web",
        );
        assert_eq!(app.route(), "ws.acme-dev.app.web");
        assert_eq!(app.source, "/catalyst/orgs/acme");
        assert_eq!(
            draft("flux.ready", Some("acme"), Some("acme-prod"), "acme/web").route(),
            "ws.acme-prod.flux.web"
        );
        assert_eq!(
            draft("git.pushed", Some("acme"), Some("acme-dev"), "0a1b2c").route(),
            "ws.acme-dev.git.0a1b2c"
        );
        let d = draft("deployment.created", None, None, "0123456789abcdef");
        assert_eq!(d.route(), "sovereign.deployments.0123456789abcdef");
        assert_eq!(d.source, "/catalyst/deployments");
        assert_eq!(
            draft("pool.reserved", None, None, "acme.omani.works").route(),
            "sovereign.pool.acme_omani_works"
        );
        assert_eq!(
            draft("organization.created", Some("acme"), None, "acme").route(),
            "sovereign.orgs.acme"
        );
    }

    #[test]
    fn structured_json_round_trips() {
        let mut e = draft(
            "application.installed",
            Some("acme"),
            Some("acme-dev"),
            "acme/web",
        );
        e.catalystseq = 7;
        let text = serde_json::to_string(&e).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "io.openova.catalyst.application.installed");
        assert_eq!(v["time"], "2026-12-06T10:00:00.123Z");
        assert_eq!(v["catalystseq"], 7);
        assert_eq!(v["datacontenttype"], "application/json");
        let back: CloudEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.short_kind(), "application.installed");
    }
}
