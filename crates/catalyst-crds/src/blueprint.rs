//! `Blueprint`: a catalog entry in its canonical form (`catalyst blueprint fmt`,
//! `catalyst_blueprint::Blueprint::to_canonical`).
//!
//! Catalogs are written in two dialects, `catalyst.openova.io/v1alpha1` and
//! `catalyst.openova.io/v1` (the one `fmt` writes). Their canonical forms have the same shape,
//! so the CRD serves both versions with this one schema (v1alpha1 stored, conversion `None`).
//! The looser spellings the engine also reads — `metadata.version`, a bare string in `depends` —
//! are catalog input only: a cluster would drop `metadata.version` and refuses the string; `fmt`
//! rewrites both.
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::schema;

/// A Blueprint: the unit of installable software in a catalog.
#[derive(CustomResource, Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[kube(
    group = "catalyst.openova.io",
    version = "v1alpha1",
    kind = "Blueprint",
    namespaced,
    shortname = "bp",
    category = "catalyst",
    doc = "A Blueprint of a catalog, in the canonical form `catalyst blueprint fmt` writes: version, card, visibility, configSchema, dependencies, upgrade rules.",
    printcolumn = r#"{"name": "Version", "type": "string", "jsonPath": ".spec.version"}"#,
    printcolumn = r#"{"name": "Visibility", "type": "string", "jsonPath": ".spec.visibility"}"#,
    printcolumn = r#"{"name": "Title", "type": "string", "jsonPath": ".spec.card.title"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BlueprintSpec {
    /// The release version.
    #[schemars(schema_with = "schema::semver")]
    pub version: String,
    /// The marketplace card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// `listed`, `unlisted` (the default) or `private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// The JSON Schema of the Blueprint's configuration (drives the console's form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_object")]
    pub config_schema: Option<Map<String, Value>>,
    /// Placement modes and region counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_schema: Option<PlacementSchema>,
    /// Blueprints this one needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends: Option<Vec<Dependency>>,
    /// Where the workload comes from (a chart folder, or a source reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Manifests>,
    /// Versions that upgrade in place, and those that cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrades: Option<Upgrades>,
    /// Values advertised to dependents (`values.dependencies.<alias>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_object")]
    pub outputs: Option<Map<String, Value>>,
    /// The owning team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// What the workload exposes for observability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<Observability>,
    /// Secrets the workload rotates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Vec<Rotation>>,
}

/// Where a Blueprint may be seen.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// In listings; installable by everyone on the Sovereign.
    Listed,
    /// Not in listings; resolvable by name.
    Unlisted,
    /// Only for the owning Organization.
    Private,
}

/// The marketplace card. Catalyst reads `title`, the first of `summary`/`tagline`/`description`,
/// and `category` (or `family`); the others are shown as they are.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq, JsonSchema)]
pub struct Card {
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// One-line summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Tagline (older spelling of the summary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tagline: Option<String>,
    /// Longer description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Category (`application`, `data`, `composite`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Family (the `v1` dialect's category).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Icon path or URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Screenshot paths or URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshots: Option<Vec<String>>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Licence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Documentation URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation: Option<String>,
    /// Documentation URL (the `v1` dialect's spelling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs: Option<String>,
}

/// `placementSchema`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementSchema {
    /// Supported modes (`single-region`, `active-active`, `active-hotstandby`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<Vec<String>>,
    /// The default mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Fewest regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_regions: Option<u32>,
    /// Most regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_regions: Option<u32>,
}

/// One `depends` entry.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
pub struct Dependency {
    /// The Blueprint depended on (`bp-<name>`, or a bare name in the `v1` dialect).
    #[schemars(length(min = 1))]
    pub blueprint: String,
    /// Acceptable versions (a Helm-style range; any when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The name the dependent's chart sees it under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// A predicate on the dependent's configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Values passed to the dependency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_object")]
    pub values: Option<Map<String, Value>>,
}

/// `manifests`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
pub struct Manifests {
    /// The chart folder inside the Blueprint (`./chart`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// A source reference (`{kind: HelmChart|Kustomize, ref: oci://…}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ManifestSource>,
    /// Values per size overlay (`small`, `medium`, `large`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_object")]
    pub overlays: Option<Map<String, Value>>,
}

/// `manifests.source`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
pub struct ManifestSource {
    /// `HelmChart` or `Kustomize`.
    pub kind: String,
    /// Where from (`oci://…`).
    #[serde(rename = "ref")]
    pub reference: String,
}

/// `upgrades`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq, JsonSchema)]
pub struct Upgrades {
    /// Version ranges that upgrade to this version in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<String>>,
    /// Version ranges that cannot (recreate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Vec<String>>,
}

/// `owner`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq, JsonSchema)]
pub struct Owner {
    /// The owning team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// How to reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// `observability`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq, JsonSchema)]
pub struct Observability {
    /// Metrics (`prometheus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// Logs (`stdout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    /// Traces (`otlp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<String>,
}

/// One `rotation` entry.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
pub struct Rotation {
    /// What kind of secret.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// How long it lives.
    pub ttl: String,
}
