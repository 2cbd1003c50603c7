//! What Flux tells the Sovereign about an Application: the body notification-controller POSTs
//! to a `generic-hmac` Provider (API `notification.toolkit.fluxcd.io/v1beta3`).
//!
//! Three pure steps, in the order a receiver runs them:
//! 1. [`verify_signature`]: the `X-Signature: <hash>=<hex HMAC of the raw body>` header, keyed
//!    by the `token` of the Provider's Secret, checked in constant time;
//! 2. [`parse`]: the JSON event (`involvedObject`, `severity`, `reason`, `message`, `metadata`,
//!    `reportingController`, `timestamp`) into a [`FluxEvent`];
//! 3. [`FluxEvent::to_draft`]: the `flux.ready` / `flux.failed` / `flux.reconciling` event the
//!    [projection](crate::projection) applies to the Application's card in its Environment.
//!
//! Delivery is at-least-once and per object, and notification-controller drops duplicates for
//! a while, so the projection keeps the last state it saw and a replayed event changes nothing.
//! No IO here: the HTTP receiver lives elsewhere.

use chrono::{DateTime, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::{Sha224, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

use crate::event::EventDraft;

/// Why a request's `X-Signature` header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The HMAC key is empty: anyone could sign with it, so nothing is accepted.
    #[error(
        "no HMAC key is configured for Flux notifications (the Provider Secret's `token` is empty)"
    )]
    NoKey,
    /// The request has no `X-Signature` header (or an empty one).
    #[error("the X-Signature header is missing")]
    Missing,
    /// The header is not `<sha224|sha256|sha384|sha512>=<hex digest>`.
    #[error("the X-Signature header is malformed: {0}")]
    Malformed(String),
    /// The header is well formed, but the body was not signed with this key.
    #[error("the X-Signature does not match the body")]
    Mismatch,
}

/// The HMAC of `body` under `key`, with hash `M`.
fn hmac_tag<M: Mac + KeyInit>(key: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let mut mac = <M as KeyInit>::new_from_slice(key).ok()?;
    mac.update(body);
    Some(mac.finalize().into_bytes().to_vec())
}

/// Checks `header` (the value of `X-Signature`: `<hash>=<hex>`) against the HMAC of the raw
/// `body` bytes under `key` (the Provider Secret's `token`).
///
/// The hash is `sha256` (what notification-controller sends), or `sha224`, `sha384`, `sha512`;
/// its name is case-insensitive, the hex digest may be upper or lower case, and white space
/// around the value is ignored. The digests are compared in constant time.
pub fn verify_signature(
    key: &[u8],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    if key.is_empty() {
        return Err(SignatureError::NoKey);
    }
    let header = header.map(str::trim).unwrap_or_default();
    if header.is_empty() {
        return Err(SignatureError::Missing);
    }
    let Some((alg, digest)) = header.split_once('=') else {
        return Err(SignatureError::Malformed(
            "expected `<hash>=<hex digest>`, found no `=`".to_owned(),
        ));
    };
    let alg = alg.trim().to_ascii_lowercase();
    let expected = match alg.as_str() {
        "sha224" => hmac_tag::<Hmac<Sha224>>(key, body),
        "sha256" => hmac_tag::<Hmac<Sha256>>(key, body),
        "sha384" => hmac_tag::<Hmac<Sha384>>(key, body),
        "sha512" => hmac_tag::<Hmac<Sha512>>(key, body),
        _ => {
            let shown: String = alg.chars().take(16).collect();
            return Err(SignatureError::Malformed(format!(
                "unknown hash function {shown:?} (expected sha224, sha256, sha384 or sha512)"
            )));
        }
    };
    // HMAC takes keys of any length, so this is never `None`; refuse rather than panic.
    let Some(expected) = expected else {
        return Err(SignatureError::Mismatch);
    };
    let given = hex::decode(digest.trim())
        .map_err(|e| SignatureError::Malformed(format!("the digest is not hex: {e}")))?;
    if given.len() != expected.len() {
        return Err(SignatureError::Malformed(format!(
            "a {alg} digest has {} bytes, the header gives {}",
            expected.len(),
            given.len()
        )));
    }
    if bool::from(given.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Why a notification body was refused. Each variant names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON.
    #[error("the Flux event is not JSON: {0}")]
    NotJson(String),
    /// The body is JSON, but not an object.
    #[error("the Flux event is not a JSON object")]
    NotAnObject,
    /// A required field is absent (or `null`).
    #[error("the Flux event has no `{0}`")]
    Missing(&'static str),
    /// A field is present but unusable.
    #[error("the Flux event's `{field}` {problem}")]
    Invalid {
        /// The field, as a JSON path (`involvedObject.kind`).
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// How serious Flux says an event is (the Alert's `eventSeverity` vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// `info`: a normal event.
    Info,
    /// `error`: a warning event (a failed action).
    Error,
}

impl Severity {
    /// `info` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Error => "error",
        }
    }
}

/// Where an Application stands after a Flux event: the `status` of its `flux.*` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Installed or upgraded, tests passed, in sync.
    Ready,
    /// An action failed, or a failure was remediated (rolled back or uninstalled).
    Failed,
    /// Flux is working on it (progressing, waiting for dependencies, applying changes).
    Reconciling,
}

impl Outcome {
    /// `ready`, `failed` or `reconciling` (the projection's `AppStatus` names).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ready => "ready",
            Outcome::Failed => "failed",
            Outcome::Reconciling => "reconciling",
        }
    }

    /// The `flux.*` event kind: `flux.ready`, `flux.failed`, `flux.reconciling`.
    pub fn event_kind(self) -> &'static str {
        match self {
            Outcome::Ready => "flux.ready",
            Outcome::Failed => "flux.failed",
            Outcome::Reconciling => "flux.reconciling",
        }
    }
}

/// One event from Flux, as notification-controller forwards it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluxEvent {
    /// The involved object's kind: `HelmRelease`, `Kustomization`, `GitRepository`, ….
    pub kind: String,
    /// The involved object's name (for a `HelmRelease` or `Kustomization`: the Application).
    pub name: String,
    /// The involved object's namespace (`<org>-<env_type>` when the Environment's objects live
    /// in a namespace of that name).
    pub namespace: String,
    /// The Environment the Alert that forwarded the event names, from `metadata` key
    /// [`ENVIRONMENT_KEY`] (an Alert's `spec.eventMetadata`): the way to tell Environments apart
    /// when their Flux objects live in `flux-system` of a cluster of their own.
    pub environment: Option<String>,
    /// `info` or `error`.
    pub severity: Severity,
    /// The CamelCase reason (`InstallSucceeded`, `UpgradeFailed`, `Progressing`, …).
    pub reason: String,
    /// Flux's human text.
    pub message: String,
    /// The revision from `metadata`: `<group>/revision` of the involved object's API group
    /// (`main@sha1:<commit>` for a Kustomization, the chart version for a HelmRelease).
    pub revision: Option<String>,
    /// `reportingController`: `kustomize-controller`, `helm-controller`, ….
    pub reporting_controller: Option<String>,
    /// When Flux recorded it.
    pub timestamp: Option<DateTime<Utc>>,
}

/// The `metadata` key naming the Environment (`<org>-<env_type>`); Catalyst's Alerts add it with
/// `spec.eventMetadata`, and Flux keeps what the emitter set if it was there already.
pub const ENVIRONMENT_KEY: &str = "catalyst.openova.io/environment";

/// The env types an Environment namespace ends with.
const ENV_TYPES: [&str; 5] = ["prod", "stg", "uat", "dev", "poc"];

/// A required string field of `obj`; `path` is its full JSON path, for the error.
fn required<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &'static str,
    non_empty: bool,
) -> Result<&'a str, ParseError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(ParseError::Missing(path)),
        Some(Value::String(s)) if non_empty && s.trim().is_empty() => Err(ParseError::Invalid {
            field: path,
            problem: "is empty".to_owned(),
        }),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(ParseError::Invalid {
            field: path,
            problem: format!("must be a string, not {}", json_type(other)),
        }),
    }
}

/// An optional string field of `obj` (`null` counts as absent).
fn optional<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &'static str,
) -> Result<Option<&'a str>, ParseError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ParseError::Invalid {
            field: path,
            problem: format!("must be a string, not {}", json_type(other)),
        }),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The revision in `metadata`: the value of `<group>/revision` for the involved object's API
/// group, else of the first key (in key order) ending in `/revision`. Non-string values and
/// every other entry (the `token` entries included) are ignored.
fn revision(metadata: Option<&Value>, group: Option<&str>) -> Option<String> {
    let metadata = metadata?.as_object()?;
    let text = |k: &str| metadata.get(k).and_then(Value::as_str).map(str::to_owned);
    if let Some(group) = group.filter(|g| !g.is_empty()) {
        if let Some(rev) = text(&format!("{group}/revision")) {
            return Some(rev);
        }
    }
    metadata
        .iter()
        .filter(|(k, _)| k.ends_with("/revision"))
        .find_map(|(_, v)| v.as_str().map(str::to_owned))
}

/// Parses a notification body.
///
/// Required: `involvedObject.kind`, `.name`, `.namespace` (non-empty strings), `severity`
/// (`info` or `error`), `reason` (non-empty) and `message` (a string). Optional:
/// `involvedObject.apiVersion` (its group picks the revision key), `metadata` (a string map),
/// `reportingController`, `timestamp` (RFC 3339). Unknown fields are ignored; so are
/// `metadata` entries other than the revision and [`ENVIRONMENT_KEY`] (a `token` entry is never
/// read). Never panics.
pub fn parse(body: &[u8]) -> Result<FluxEvent, ParseError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let Value::Object(root) = value else {
        return Err(ParseError::NotAnObject);
    };
    let involved = match root.get("involvedObject") {
        None | Some(Value::Null) => return Err(ParseError::Missing("involvedObject")),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(ParseError::Invalid {
                field: "involvedObject",
                problem: format!("must be an object, not {}", json_type(other)),
            })
        }
    };
    let kind = required(involved, "kind", "involvedObject.kind", true)?;
    let name = required(involved, "name", "involvedObject.name", true)?;
    let namespace = required(involved, "namespace", "involvedObject.namespace", true)?;
    let api_version = optional(involved, "apiVersion", "involvedObject.apiVersion")?;
    let severity = match required(&root, "severity", "severity", true)? {
        s if s.eq_ignore_ascii_case("info") => Severity::Info,
        s if s.eq_ignore_ascii_case("error") => Severity::Error,
        s => {
            let shown: String = s.chars().take(32).collect();
            return Err(ParseError::Invalid {
                field: "severity",
                problem: format!("must be `info` or `error`, not {shown:?}"),
            });
        }
    };
    let reason = required(&root, "reason", "reason", true)?;
    let message = required(&root, "message", "message", false)?;
    match root.get("metadata") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(other) => {
            return Err(ParseError::Invalid {
                field: "metadata",
                problem: format!("must be an object, not {}", json_type(other)),
            })
        }
    }
    // `helm.toolkit.fluxcd.io/v2` → `helm.toolkit.fluxcd.io`; a core `v1` has no group.
    let group = api_version.and_then(|v| v.split_once('/')).map(|(g, _)| g);
    let revision = revision(root.get("metadata"), group);
    let environment = root
        .get("metadata")
        .and_then(|m| m.get(ENVIRONMENT_KEY))
        .and_then(Value::as_str)
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty());
    let reporting_controller =
        optional(&root, "reportingController", "reportingController")?.map(str::to_owned);
    let timestamp = match optional(&root, "timestamp", "timestamp")? {
        None => None,
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t.trim())
                .map_err(|e| ParseError::Invalid {
                    field: "timestamp",
                    problem: format!("is not RFC 3339: {e}"),
                })?
                .with_timezone(&Utc),
        ),
    };
    Ok(FluxEvent {
        kind: kind.to_owned(),
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        environment,
        severity,
        reason: reason.to_owned(),
        message: message.to_owned(),
        revision,
        reporting_controller,
        timestamp,
    })
}

/// Info reasons that end in `Succeeded` but leave a HelmRelease failing: helm-controller's
/// remediations (its v2 spec lists them under "Failed HelmRelease": `Ready=False`).
const REMEDIATED: [&str; 2] = ["RollbackSucceeded", "UninstallSucceeded"];

/// True for an Organization name: the shape of `catalyst_core::names::OrgName`
/// (`^[a-z][a-z0-9-]{2,31}$`), without its reserved list.
fn is_org_name(s: &str) -> bool {
    let b = s.as_bytes();
    (3..=32).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

impl FluxEvent {
    /// What this event says about the Application, if anything.
    ///
    /// Only `HelmRelease` and `Kustomization` events set an Application's status; every other
    /// kind (`GitRepository`, `OCIRepository`, `HelmChart`, …) gives `None`. Then:
    /// - severity `error` → [`Outcome::Failed`] (`InstallFailed`, `UpgradeFailed`,
    ///   `TestFailed`, `RollbackFailed`, `UninstallFailed`, `ArtifactFailed`, `BuildFailed`,
    ///   `HealthCheckFailed`, `ReconciliationFailed`, `DriftDetected`, …);
    /// - `RollbackSucceeded`, `UninstallSucceeded` → [`Outcome::Failed`]: these are
    ///   helm-controller's remediations of a failed install or upgrade, and its spec lists them
    ///   as reasons of a *failing* HelmRelease (`Ready=False`; "any remediated state is
    ///   considered an error");
    /// - any other reason ending in `Succeeded` (`ReconciliationSucceeded`, `InstallSucceeded`,
    ///   `UpgradeSucceeded`, `TestSucceeded`), and helm-controller's `DriftCorrected` (drift is
    ///   only corrected on a release that is otherwise in sync, and no success event follows) →
    ///   [`Outcome::Ready`];
    /// - any other `info` reason (`Progressing`, `ProgressingWithRetry`, `DependencyNotReady`,
    ///   `ArtifactOutdated`, `HealthCheckCanceled`, `PendingRelease`, …) → [`Outcome::Reconciling`].
    ///
    /// Checked against the sources: helm-controller `api/v2/condition_types.go`, its
    /// `internal/reconcile/*` (which reason goes with a Normal or Warning event) and
    /// `docs/spec/v2/helmreleases.md` (Ready: `InstallSucceeded` | `UpgradeSucceeded` |
    /// `TestSucceeded`; failing: the `*Failed` reasons and `RollbackSucceeded` |
    /// `UninstallSucceeded`); kustomize-controller `api/v1/condition_types.go` and
    /// `internal/controller/kustomization_controller.go`, whose events carry the reason of the
    /// Kustomization's Ready condition at that moment (`Progressing` while applying,
    /// `ReconciliationSucceeded` on the closing success event; `info`/`error` when there is
    /// no Ready condition yet), and `docs/spec/v1/kustomizations.md`.
    pub fn outcome(&self) -> Option<Outcome> {
        if self.kind != "HelmRelease" && self.kind != "Kustomization" {
            return None;
        }
        let reason = self.reason.as_str();
        Some(match self.severity {
            Severity::Error => Outcome::Failed,
            Severity::Info if REMEDIATED.contains(&reason) => Outcome::Failed,
            Severity::Info if reason.ends_with("Succeeded") || reason == "DriftCorrected" => {
                Outcome::Ready
            }
            Severity::Info => Outcome::Reconciling,
        })
    }

    /// The Environment the event is about (`<org>-<env_type>`): the one the Alert names in
    /// `metadata` ([`ENVIRONMENT_KEY`]) when it names one, else the involved object's namespace.
    pub fn environment_name(&self) -> &str {
        self.environment.as_deref().unwrap_or(&self.namespace)
    }

    /// The Organization and env type of the Environment the event is about
    /// ([`FluxEvent::environment_name`], split at its last `-`, with env type one of `prod`,
    /// `stg`, `uat`, `dev`, `poc` and an Organization name of `a-z0-9-` starting with a letter,
    /// 3 to 32 characters). `None` for anything else (`flux-system`, `kube-system`, …).
    pub fn target(&self) -> Option<(String, String)> {
        let (org, env_type) = self.environment_name().rsplit_once('-')?;
        (ENV_TYPES.contains(&env_type) && is_org_name(org))
            .then(|| (org.to_owned(), env_type.to_owned()))
    }

    /// The `flux.*` event for the Application this event is about, or `None` when it says
    /// nothing about one ([`FluxEvent::outcome`] or [`FluxEvent::target`] is `None`).
    ///
    /// `id` must be stable for the same notification (a replay is then recorded once);
    /// `received` is the time used when Flux gave none. The Environment is
    /// [`FluxEvent::environment_name`], the
    /// subject `<org>/<application>`, and `data` carries what the projection reads
    /// (`application`, `status`, `message`, `revision`) plus `reason`, `objectKind` and
    /// `controller`.
    pub fn to_draft(&self, id: String, received: DateTime<Utc>) -> Option<EventDraft> {
        let outcome = self.outcome()?;
        let (org, _env_type) = self.target()?;
        Some(EventDraft {
            id,
            kind: outcome.event_kind().to_owned(),
            subject: format!("{org}/{}", self.name),
            org: Some(org),
            env: Some(self.environment_name().to_owned()),
            time: self.timestamp.unwrap_or(received),
            data: json!({
                "application": self.name,
                "status": outcome.as_str(),
                "message": self.message,
                "revision": self.revision,
                "reason": self.reason,
                "objectKind": self.kind,
                "controller": self.reporting_controller,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::{AppStatus, Projection};
    use proptest::prelude::*;

    const KEY: &[u8] = b"s3cr3t-token-from-the-provider-secret";
    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    fn sign<M: Mac + KeyInit>(alg: &str, key: &[u8], body: &[u8]) -> String {
        format!("{alg}={}", hex::encode(hmac_tag::<M>(key, body).unwrap()))
    }

    fn sha256(key: &[u8], body: &[u8]) -> String {
        sign::<Hmac<Sha256>>("sha256", key, body)
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A body in the documented shape (written for these tests).
    fn body(
        api_version: &str,
        kind: &str,
        name: &str,
        namespace: &str,
        severity: &str,
        reason: &str,
        metadata: Value,
    ) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "involvedObject": {
                "apiVersion": api_version,
                "kind": kind,
                "name": name,
                "namespace": namespace,
                "uid": "7d0c6a4e-1f7b-4c52-9a55-2b1d8f0e3c11",
            },
            "severity": severity,
            "timestamp": "2026-12-06T10:15:30Z",
            "message": format!("{kind} {name}: {reason}"),
            "reason": reason,
            "metadata": metadata,
            "reportingController": if kind == "HelmRelease" { "helm-controller" } else { "kustomize-controller" },
            "reportingInstance": "controller-6b7c9d8f5-x2k4q",
        }))
        .unwrap()
    }

    fn helm_install() -> Vec<u8> {
        body(
            "helm.toolkit.fluxcd.io/v2",
            "HelmRelease",
            "web",
            "acme-dev",
            "info",
            "InstallSucceeded",
            json!({"helm.toolkit.fluxcd.io/revision": "1.4.2",
                   "helm.toolkit.fluxcd.io/token": "sha256:4f2a"}),
        )
    }

    fn kustomization_ready() -> Vec<u8> {
        body(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            "web",
            "acme-dev",
            "info",
            "ReconciliationSucceeded",
            json!({"kustomize.toolkit.fluxcd.io/revision": format!("develop@sha1:{COMMIT}"),
                   "kustomize.toolkit.fluxcd.io/commit_status": "update"}),
        )
    }

    #[test]
    fn helmrelease_install_succeeded_is_ready() {
        let e = parse(&helm_install()).unwrap();
        assert_eq!(
            e,
            FluxEvent {
                kind: "HelmRelease".into(),
                name: "web".into(),
                namespace: "acme-dev".into(),
                environment: None,
                severity: Severity::Info,
                reason: "InstallSucceeded".into(),
                message: "HelmRelease web: InstallSucceeded".into(),
                revision: Some("1.4.2".into()),
                reporting_controller: Some("helm-controller".into()),
                timestamp: Some(at("2026-12-06T10:15:30Z")),
            }
        );
        assert_eq!(e.outcome(), Some(Outcome::Ready));
        assert_eq!(e.target(), Some(("acme".into(), "dev".into())));
        let d = e.to_draft("n1".into(), at("2026-12-06T11:00:00Z")).unwrap();
        assert_eq!(d.kind, "flux.ready");
        assert_eq!(d.org.as_deref(), Some("acme"));
        assert_eq!(d.env.as_deref(), Some("acme-dev"));
        assert_eq!(d.subject, "acme/web");
        assert_eq!(d.time, at("2026-12-06T10:15:30Z"));
        assert_eq!(
            d.data,
            json!({"application": "web", "status": "ready",
                   "message": "HelmRelease web: InstallSucceeded", "revision": "1.4.2",
                   "reason": "InstallSucceeded", "objectKind": "HelmRelease",
                   "controller": "helm-controller"})
        );
        assert_eq!(d.into_event().route(), "ws.acme-dev.flux.web");
    }

    #[test]
    fn kustomization_reconciliation_succeeded_carries_the_git_revision() {
        let e = parse(&kustomization_ready()).unwrap();
        assert_eq!(e.kind, "Kustomization");
        assert_eq!(e.revision, Some(format!("develop@sha1:{COMMIT}")));
        assert_eq!(
            e.reporting_controller.as_deref(),
            Some("kustomize-controller")
        );
        assert_eq!(e.outcome(), Some(Outcome::Ready));
        let d = e.to_draft("n2".into(), at("2026-12-06T11:00:00Z")).unwrap();
        assert_eq!(d.kind, "flux.ready");
        assert_eq!(d.data["revision"], format!("develop@sha1:{COMMIT}"));
        assert_eq!(d.data["objectKind"], "Kustomization");
    }

    #[test]
    fn error_upgrade_failed_is_failed() {
        let b = body(
            "helm.toolkit.fluxcd.io/v2",
            "HelmRelease",
            "web-postgres",
            "acme-corp-prod",
            "error",
            "UpgradeFailed",
            json!({"helm.toolkit.fluxcd.io/revision": "15.2.0"}),
        );
        let e = parse(&b).unwrap();
        assert_eq!(e.severity, Severity::Error);
        assert_eq!(e.outcome(), Some(Outcome::Failed));
        assert_eq!(e.target(), Some(("acme-corp".into(), "prod".into())));
        let d = e.to_draft("n3".into(), at("2026-12-06T11:00:00Z")).unwrap();
        assert_eq!(d.kind, "flux.failed");
        assert_eq!(d.subject, "acme-corp/web-postgres");
        assert_eq!(d.env.as_deref(), Some("acme-corp-prod"));
        assert_eq!(d.data["status"], "failed");
        assert_eq!(d.data["reason"], "UpgradeFailed");
    }

    #[test]
    fn gitrepository_events_set_no_status() {
        let b = body(
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            "web",
            "acme-dev",
            "info",
            "NewArtifact",
            json!({"source.toolkit.fluxcd.io/revision": format!("develop@sha1:{COMMIT}")}),
        );
        let e = parse(&b).unwrap();
        assert_eq!(e.revision, Some(format!("develop@sha1:{COMMIT}")));
        assert_eq!(e.target(), Some(("acme".into(), "dev".into())));
        assert_eq!(e.outcome(), None);
        assert_eq!(e.to_draft("n4".into(), Utc::now()), None);
        let failed = FluxEvent {
            severity: Severity::Error,
            kind: "OCIRepository".into(),
            ..e
        };
        assert_eq!(failed.outcome(), None);
    }

    #[test]
    fn token_metadata_is_ignored() {
        let b = body(
            "helm.toolkit.fluxcd.io/v2",
            "HelmRelease",
            "web",
            "acme-uat",
            "info",
            "UpgradeSucceeded",
            json!({"token": "very-secret-alert-token",
                   "helm.toolkit.fluxcd.io/token": "sha256:deadbeef-config-digest",
                   "helm.toolkit.fluxcd.io/revision": "2.0.0",
                   "helm.toolkit.fluxcd.io/appVersion": "v9"}),
        );
        let e = parse(&b).unwrap();
        assert_eq!(e.revision.as_deref(), Some("2.0.0"));
        let d = e.to_draft("n5".into(), Utc::now()).unwrap();
        let text = serde_json::to_string(&d.data).unwrap();
        assert!(!text.contains("very-secret-alert-token"), "{text}");
        assert!(!text.contains("deadbeef"), "{text}");
        // A body with only a token still parses, without a revision.
        let b = body(
            "helm.toolkit.fluxcd.io/v2",
            "HelmRelease",
            "web",
            "acme-uat",
            "info",
            "UpgradeSucceeded",
            json!({"token": "very-secret-alert-token"}),
        );
        assert_eq!(parse(&b).unwrap().revision, None);
    }

    #[test]
    fn revision_prefers_the_objects_api_group() {
        let meta = json!({
            "aaa.example.com/revision": "other",
            "kustomize.toolkit.fluxcd.io/originRevision": "origin",
            "kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc",
        });
        let b = body(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            "web",
            "acme-dev",
            "info",
            "Progressing",
            meta.clone(),
        );
        assert_eq!(
            parse(&b).unwrap().revision.as_deref(),
            Some("main@sha1:abc")
        );
        // Another group: the first `*/revision` key; never `originRevision`.
        let b = body(
            "v1",
            "Kustomization",
            "web",
            "acme-dev",
            "info",
            "Progressing",
            meta,
        );
        assert_eq!(parse(&b).unwrap().revision.as_deref(), Some("other"));
        let b = body(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            "web",
            "acme-dev",
            "info",
            "Progressing",
            json!({"kustomize.toolkit.fluxcd.io/originRevision": "origin", "x/revision": 7}),
        );
        assert_eq!(parse(&b).unwrap().revision, None);
        // Older revision format is passed through as is.
        let b = body(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            "web",
            "acme-dev",
            "info",
            "Progressing",
            json!({"kustomize.toolkit.fluxcd.io/revision": format!("main/{COMMIT}")}),
        );
        assert_eq!(parse(&b).unwrap().revision, Some(format!("main/{COMMIT}")));
    }

    #[test]
    fn reasons_map_to_outcomes() {
        let e = parse(&kustomization_ready()).unwrap();
        let with = |kind: &str, severity: Severity, reason: &str| {
            FluxEvent {
                kind: kind.into(),
                severity,
                reason: reason.into(),
                ..e.clone()
            }
            .outcome()
        };
        use Outcome::*;
        use Severity::{Error as E, Info as I};
        for (kind, sev, reason, want) in [
            ("HelmRelease", I, "InstallSucceeded", Ready),
            ("HelmRelease", I, "UpgradeSucceeded", Ready),
            ("HelmRelease", I, "TestSucceeded", Ready),
            ("HelmRelease", I, "DriftCorrected", Ready),
            ("HelmRelease", I, "RollbackSucceeded", Failed),
            ("HelmRelease", I, "UninstallSucceeded", Failed),
            ("HelmRelease", E, "InstallFailed", Failed),
            ("HelmRelease", E, "TestFailed", Failed),
            ("HelmRelease", E, "DriftDetected", Failed),
            ("HelmRelease", I, "DependencyNotReady", Reconciling),
            ("HelmRelease", I, "HealthCheckCanceled", Reconciling),
            ("Kustomization", I, "ReconciliationSucceeded", Ready),
            ("Kustomization", I, "Progressing", Reconciling),
            ("Kustomization", I, "ProgressingWithRetry", Reconciling),
            ("Kustomization", I, "DependencyNotReady", Reconciling),
            ("Kustomization", I, "ArtifactOutdated", Reconciling),
            ("Kustomization", I, "info", Reconciling),
            ("Kustomization", E, "HealthCheckFailed", Failed),
            ("Kustomization", E, "ReconciliationSucceeded", Failed),
            ("Kustomization", E, "error", Failed),
        ] {
            assert_eq!(
                with(kind, sev, reason),
                Some(want),
                "{kind} {sev:?} {reason}"
            );
        }
        for kind in [
            "GitRepository",
            "OCIRepository",
            "HelmChart",
            "HelmRepository",
            "helmrelease",
        ] {
            assert_eq!(with(kind, I, "ReconciliationSucceeded"), None, "{kind}");
        }
    }

    #[test]
    fn targets_are_org_and_env_type() {
        let e = parse(&helm_install()).unwrap();
        let target = |ns: &str| {
            FluxEvent {
                namespace: ns.into(),
                ..e.clone()
            }
            .target()
        };
        for (ns, org, env) in [
            ("acme-dev", "acme", "dev"),
            ("acme-prod", "acme", "prod"),
            ("acme-stg", "acme", "stg"),
            ("acme-uat", "acme", "uat"),
            ("acme-poc", "acme", "poc"),
            ("acme-corp-prod", "acme-corp", "prod"),
            ("a1b-dev", "a1b", "dev"),
        ] {
            assert_eq!(target(ns), Some((org.to_owned(), env.to_owned())), "{ns}");
        }
        for ns in [
            "flux-system",
            "kube-system",
            "default",
            "acme",
            "acme-qa",
            "acme-dev-",
            "-dev",
            "dev",
            "Acme-dev",
            "acme-DEV",
            "ac-dev",
            "1acme-dev",
            "acme_x-dev",
            "acme.x-dev",
            "ācme-dev",
            "",
        ] {
            assert_eq!(target(ns), None, "{ns:?}");
        }
        // No target, no draft, whatever the outcome.
        let lost = FluxEvent {
            namespace: "flux-system".into(),
            ..e
        };
        assert_eq!(lost.outcome(), Some(Outcome::Ready));
        assert_eq!(lost.to_draft("x".into(), Utc::now()), None);
    }

    /// Objects in `flux-system` of an Environment's own cluster: the Alert's `eventMetadata`
    /// names the Environment, and wins over the namespace.
    #[test]
    fn the_alerts_environment_metadata_names_the_environment() {
        let b = body(
            "helm.toolkit.fluxcd.io/v2",
            "HelmRelease",
            "web",
            "flux-system",
            "error",
            "UpgradeFailed",
            json!({"helm.toolkit.fluxcd.io/revision": "1.4.3",
                   ENVIRONMENT_KEY: "acme-stg"}),
        );
        let e = parse(&b).unwrap();
        assert_eq!(e.environment.as_deref(), Some("acme-stg"));
        assert_eq!(e.target(), Some(("acme".into(), "stg".into())));
        let draft = e.to_draft("f1".into(), Utc::now()).unwrap();
        assert_eq!(draft.env.as_deref(), Some("acme-stg"));
        assert_eq!(draft.subject, "acme/web");
        assert_eq!(draft.data["revision"], "1.4.3");
        // Also over a namespace that looks like another Environment; blank is no name.
        let other = FluxEvent {
            namespace: "acme-dev".into(),
            ..e.clone()
        };
        assert_eq!(other.target(), Some(("acme".into(), "stg".into())));
        let blank = body(
            "helm.toolkit.fluxcd.io/v2",
            "HelmRelease",
            "web",
            "acme-dev",
            "info",
            "UpgradeSucceeded",
            json!({ENVIRONMENT_KEY: "  "}),
        );
        let blank = parse(&blank).unwrap();
        assert_eq!(blank.environment, None);
        assert_eq!(blank.target(), Some(("acme".into(), "dev".into())));
        let bad = FluxEvent {
            environment: Some("not an environment".into()),
            ..e
        };
        assert_eq!(bad.target(), None);
    }

    #[test]
    fn draft_uses_received_time_without_timestamp_and_null_revision() {
        let b = serde_json::to_vec(&json!({
            "involvedObject": {"kind": "Kustomization", "name": "api", "namespace": "acme-stg"},
            "severity": "info", "reason": "Progressing", "message": "",
            "future": {"field": [1, 2, 3]},
        }))
        .unwrap();
        let e = parse(&b).unwrap();
        assert_eq!(
            (
                e.revision.clone(),
                e.timestamp,
                e.reporting_controller.clone()
            ),
            (None, None, None)
        );
        let received = at("2026-12-07T08:00:00Z");
        let d = e.to_draft("n6".into(), received).unwrap();
        assert_eq!(d.time, received);
        assert_eq!(d.kind, "flux.reconciling");
        assert_eq!(d.data["revision"], Value::Null);
        assert_eq!(d.data["controller"], Value::Null);
        assert_eq!(d.data["message"], "");
    }

    #[test]
    fn drafts_drive_the_projection() {
        let mut p = Projection::new();
        let mut installed = EventDraft {
            id: "i1".into(),
            kind: "application.installed".into(),
            org: Some("acme".into()),
            env: Some("acme-dev".into()),
            subject: "acme/web".into(),
            time: at("2026-12-06T10:00:00Z"),
            data: json!({"applications": [{"name": "web", "environment": "acme-dev", "envType": "dev",
                         "branch": "develop", "commit": COMMIT, "blueprint": "bp-web", "version": "1.4.2"}]}),
        }
        .into_event();
        installed.catalystseq = 1;
        p.apply(&installed);
        let mut flux = parse(&kustomization_ready())
            .unwrap()
            .to_draft("n7".into(), Utc::now())
            .unwrap()
            .into_event();
        flux.catalystseq = 2;
        p.apply(&flux);
        let card = p.applications("acme", Some("acme-dev"))[0];
        assert_eq!(card.status, AppStatus::Ready);
        assert_eq!(card.revision, Some(format!("develop@sha1:{COMMIT}")));
        assert_eq!(
            card.message.as_deref(),
            Some("Kustomization web: ReconciliationSucceeded")
        );
        assert_eq!(card.updated, at("2026-12-06T10:15:30Z"));
    }

    #[test]
    fn parse_errors_name_the_field() {
        let good: Value = serde_json::from_slice(&helm_install()).unwrap();
        let broken = |edit: &dyn Fn(&mut Value)| {
            let mut v = good.clone();
            edit(&mut v);
            parse(&serde_json::to_vec(&v).unwrap()).unwrap_err()
        };
        assert!(matches!(parse(b"not json"), Err(ParseError::NotJson(_))));
        assert!(matches!(parse(b""), Err(ParseError::NotJson(_))));
        assert_eq!(parse(b"[1]"), Err(ParseError::NotAnObject));
        assert_eq!(parse(b"{}"), Err(ParseError::Missing("involvedObject")));
        assert_eq!(
            broken(&|v| v["involvedObject"] = json!("HelmRelease/web")),
            ParseError::Invalid {
                field: "involvedObject",
                problem: "must be an object, not a string".into()
            }
        );
        for (key, path) in [
            ("kind", "involvedObject.kind"),
            ("name", "involvedObject.name"),
            ("namespace", "involvedObject.namespace"),
        ] {
            assert_eq!(
                broken(&|v| {
                    v["involvedObject"].as_object_mut().unwrap().remove(key);
                }),
                ParseError::Missing(path)
            );
            assert_eq!(
                broken(&|v| v["involvedObject"][key] = json!("")),
                ParseError::Invalid {
                    field: path,
                    problem: "is empty".into()
                }
            );
            assert_eq!(
                broken(&|v| v["involvedObject"][key] = json!(3)),
                ParseError::Invalid {
                    field: path,
                    problem: "must be a string, not a number".into()
                }
            );
        }
        for key in ["severity", "reason", "message"] {
            let err = broken(&|v| {
                v.as_object_mut().unwrap().remove(key);
            });
            assert_eq!(
                err,
                ParseError::Missing(match key {
                    "severity" => "severity",
                    "reason" => "reason",
                    _ => "message",
                })
            );
            assert!(err.to_string().contains(key), "{err}");
        }
        let err = broken(&|v| v["severity"] = json!("warning"));
        assert!(
            matches!(
                err,
                ParseError::Invalid {
                    field: "severity",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("severity"), "{err}");
        assert!(matches!(
            broken(&|v| v["timestamp"] = json!("yesterday")),
            ParseError::Invalid {
                field: "timestamp",
                ..
            }
        ));
        assert!(matches!(
            broken(&|v| v["metadata"] = json!(["a/revision"])),
            ParseError::Invalid {
                field: "metadata",
                ..
            }
        ));
        assert!(matches!(
            broken(&|v| v["reportingController"] = json!(false)),
            ParseError::Invalid {
                field: "reportingController",
                ..
            }
        ));
        assert!(matches!(
            broken(&|v| v["involvedObject"]["apiVersion"] = json!({})),
            ParseError::Invalid {
                field: "involvedObject.apiVersion",
                ..
            }
        ));
        // `null` optional fields are absent; severity is case-insensitive.
        let mut v = good.clone();
        v["metadata"] = Value::Null;
        v["timestamp"] = Value::Null;
        v["severity"] = json!("ERROR");
        let e = parse(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(
            (e.revision, e.timestamp, e.severity),
            (None, None, Severity::Error)
        );
    }

    #[test]
    fn good_sha256_signature_verifies() {
        let b = helm_install();
        let header = sha256(KEY, &b);
        assert_eq!(verify_signature(KEY, Some(&header), &b), Ok(()));
        // Upper-case hex, upper-case name, surrounding blanks.
        let upper = format!(
            "  SHA256={}  ",
            header["sha256=".len()..].to_ascii_uppercase()
        );
        assert_eq!(verify_signature(KEY, Some(&upper), &b), Ok(()));
    }

    #[test]
    fn good_sha512_sha384_sha224_signatures_verify() {
        let b = kustomization_ready();
        let h512 = sign::<Hmac<Sha512>>("sha512", KEY, &b);
        assert_eq!(h512.len(), "sha512=".len() + 128);
        assert_eq!(verify_signature(KEY, Some(&h512), &b), Ok(()));
        let h384 = sign::<Hmac<Sha384>>("sha384", KEY, &b);
        assert_eq!(verify_signature(KEY, Some(&h384), &b), Ok(()));
        let h224 = sign::<Hmac<Sha224>>("sha224", KEY, &b);
        assert_eq!(verify_signature(KEY, Some(&h224), &b), Ok(()));
        // A digest under the wrong name has the wrong length.
        let renamed = h512.replacen("sha512", "sha256", 1);
        assert!(matches!(
            verify_signature(KEY, Some(&renamed), &b),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn known_vector_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let header = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(
            verify_signature(b"Jefe", Some(header), b"what do ya want for nothing?"),
            Ok(())
        );
    }

    #[test]
    fn wrong_key_is_a_mismatch() {
        let b = helm_install();
        let header = sha256(b"another-token", &b);
        assert_eq!(
            verify_signature(KEY, Some(&header), &b),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_header_is_missing() {
        let b = helm_install();
        assert_eq!(
            verify_signature(KEY, None, &b),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(KEY, Some("   "), &b),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(KEY, None, &b).unwrap_err().to_string(),
            "the X-Signature header is missing"
        );
    }

    #[test]
    fn garbage_headers_are_malformed() {
        let b = helm_install();
        let good = sha256(KEY, &b);
        let hex_part = &good["sha256=".len()..];
        for header in [
            "garbage".to_owned(),
            hex_part.to_owned(),
            "sha256=".to_owned(),
            "sha256=xyz".to_owned(),
            "sha256=abc".to_owned(),
            format!("md5={hex_part}"),
            format!("sha1={hex_part}"),
            format!("={hex_part}"),
            format!("sha256={hex_part}00"),
            format!("sha256={}", &hex_part[2..]),
            format!("sha256= {hex_part} ,sha512=00"),
        ] {
            let err = verify_signature(KEY, Some(&header), &b).unwrap_err();
            assert!(
                matches!(err, SignatureError::Malformed(_)),
                "{header:?}: {err:?}"
            );
            assert!(err
                .to_string()
                .starts_with("the X-Signature header is malformed"));
        }
    }

    #[test]
    fn body_changed_by_one_byte_is_a_mismatch() {
        let b = helm_install();
        let header = sha256(KEY, &b);
        for i in [0, b.len() / 2, b.len() - 1] {
            let mut changed = b.clone();
            changed[i] ^= 0x01;
            assert_eq!(
                verify_signature(KEY, Some(&header), &changed),
                Err(SignatureError::Mismatch),
                "byte {i}"
            );
        }
        let mut longer = b.clone();
        longer.push(b' ');
        assert_eq!(
            verify_signature(KEY, Some(&header), &longer),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn an_empty_key_accepts_nothing() {
        let b = helm_install();
        let header = sha256(b"", &b);
        assert_eq!(
            verify_signature(b"", Some(&header), &b),
            Err(SignatureError::NoKey)
        );
    }

    /// Any JSON value, a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,12}".prop_map(Value::from),
            prop_oneof![
                Just("info"),
                Just("error"),
                Just("HelmRelease"),
                Just("Kustomization"),
                Just("acme-dev"),
                Just("flux-system"),
                Just("-dev"),
                Just("x/revision"),
                Just("2026-12-06T10:15:30Z"),
                Just("helm.toolkit.fluxcd.io/v2"),
                Just("/"),
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("kind".to_owned()),
                        Just("name".to_owned()),
                        Just("namespace".to_owned()),
                        Just("apiVersion".to_owned()),
                        Just("token".to_owned()),
                        Just("helm.toolkit.fluxcd.io/revision".to_owned()),
                        ".{0,8}",
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            body in prop::collection::vec(any::<u8>(), 0..512),
            key in prop::collection::vec(any::<u8>(), 0..80),
            header in prop::option::of(".{0,160}"),
            alg in "(sha256|sha512|sha224|sha384|SHA256|.{0,8})",
            digest in prop::collection::vec(any::<u8>(), 0..80),
        ) {
            let _ = parse(&body);
            let _ = verify_signature(&key, header.as_deref(), &body);
            let forged = format!("{alg}={}", hex::encode(&digest));
            let verdict = verify_signature(&key, Some(&forged), &body);
            if key.is_empty() {
                prop_assert_eq!(verdict, Err(SignatureError::NoKey));
            }
        }

        #[test]
        fn arbitrary_event_shapes_never_panic(
            involved in any_json(),
            severity in any_json(),
            reason in any_json(),
            message in any_json(),
            metadata in any_json(),
            timestamp in any_json(),
            controller in any_json(),
        ) {
            let v = json!({"involvedObject": involved, "severity": severity, "reason": reason,
                           "message": message, "metadata": metadata, "timestamp": timestamp,
                           "reportingController": controller});
            let bytes = serde_json::to_vec(&v).unwrap();
            if let Ok(e) = parse(&bytes) {
                let _ = e.outcome();
                let _ = e.target();
                if let Some(d) = e.to_draft("p".into(), Utc::now()) {
                    prop_assert!(d.kind.starts_with("flux."));
                    prop_assert_eq!(d.env.as_deref(), Some(e.namespace.as_str()));
                }
            }
        }

        #[test]
        fn a_signature_verifies_only_its_body(
            body in prop::collection::vec(any::<u8>(), 0..256),
            key in prop::collection::vec(any::<u8>(), 1..64),
            flip in any::<prop::sample::Index>(),
        ) {
            let header = sha256(&key, &body);
            prop_assert_eq!(verify_signature(&key, Some(&header), &body), Ok(()));
            if !body.is_empty() {
                let mut changed = body.clone();
                changed[flip.index(body.len())] ^= 0x80;
                prop_assert_eq!(verify_signature(&key, Some(&header), &changed), Err(SignatureError::Mismatch));
            }
        }
    }
}
