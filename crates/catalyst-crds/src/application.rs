//! `Application`: `catalyst.yaml` at the root of an Application repository, on each env branch
//! (`catalyst_gitops::app::AppDoc::resource`).
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::schema;

/// An Application: one Blueprint version installed into one Environment.
#[derive(CustomResource, Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[kube(
    group = "catalyst.openova.io",
    version = "v1alpha1",
    kind = "Application",
    namespaced,
    shortname = "app",
    category = "catalyst",
    status = "ApplicationStatus",
    doc = "An Application installed from a Blueprint into an Environment. catalyst.yaml of the Application repository <org>/<app>, one per env branch.",
    printcolumn = r#"{"name": "Organization", "type": "string", "jsonPath": ".spec.organization"}"#,
    printcolumn = r#"{"name": "Environment", "type": "string", "jsonPath": ".spec.environment"}"#,
    printcolumn = r#"{"name": "Blueprint", "type": "string", "jsonPath": ".spec.blueprint.name"}"#,
    printcolumn = r#"{"name": "Version", "type": "string", "jsonPath": ".spec.blueprint.version"}"#,
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// The Organization.
    #[schemars(schema_with = "schema::slug")]
    pub organization: String,
    /// The Environment, `<org>-<env type>`.
    #[schemars(schema_with = "schema::environment")]
    pub environment: String,
    /// The Blueprint and the version pinned on this branch.
    pub blueprint: BlueprintRef,
    /// Applications this one waits for (Flux `dependsOn` across repositories).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<DependencyRef>,
    /// What the dependencies offer, passed to the chart as `values.dependencies.<alias>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_object")]
    pub dependencies: Option<Map<String, Value>>,
}

/// A pinned Blueprint version.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
pub struct BlueprintRef {
    /// `bp-<name>`.
    #[schemars(schema_with = "schema::blueprint")]
    pub name: String,
    /// The exact version.
    #[schemars(schema_with = "schema::semver")]
    pub version: String,
    /// The artifact's digest, when admitted or known to the catalog (Flux pulls by digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::digest")]
    pub digest: Option<String>,
}

/// A link to an Application this one depends on.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
pub struct DependencyRef {
    /// The Application depended on (same Organization and Environment).
    #[schemars(schema_with = "schema::slug")]
    pub application: String,
    /// Its Blueprint.
    #[schemars(schema_with = "schema::blueprint")]
    pub blueprint: String,
    /// The name the dependent's chart sees it under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// Where an Application stands, as the read side knows it (`catalyst_spine::AppStatus`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApplicationPhase {
    /// Committed to Git; Flux has not reported on this commit yet.
    Committed,
    /// Flux is reconciling it.
    Reconciling,
    /// Flux reports it ready.
    Ready,
    /// Flux reports a failure.
    Failed,
}

/// The observed state of an Application (never committed to Git).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// The phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ApplicationPhase>,
    /// The commit of the env branch the phase is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::commit")]
    pub commit: Option<String>,
    /// Flux's last message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
