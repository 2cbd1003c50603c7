//! What `system/catalyst-config` holds: `Organization`, `Environment`, `EnvironmentPolicy` and
//! `PromotionApprovals` (`catalyst_gitops::config` and `Sovereign::approve` write them, in the
//! `catalyst-system` namespace).
use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema;

/// An Organization: the multi-tenancy unit of a Sovereign, with its members.
#[derive(CustomResource, Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[kube(
    group = "catalyst.openova.io",
    version = "v1alpha1",
    kind = "Organization",
    namespaced,
    shortname = "org",
    category = "catalyst",
    doc = "An Organization of the Sovereign: its contact, plan and members. Stored in system/catalyst-config/organizations/<org>.yaml.",
    printcolumn = r#"{"name": "Display name", "type": "string", "jsonPath": ".spec.displayName"}"#,
    printcolumn = r#"{"name": "Contact", "type": "string", "jsonPath": ".spec.contact"}"#,
    printcolumn = r#"{"name": "Plan", "type": "string", "jsonPath": ".spec.plan"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationSpec {
    /// The name shown in the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Who to reach about the Organization (an email address, usually).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// The billing plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Labels policies select Organizations by (e.g. `tier: regulated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::string_map")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Members and their roles, sorted by name.
    #[serde(default)]
    pub members: Vec<Member>,
}

/// One member of an Organization.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
pub struct Member {
    /// The member's (token holder's) name.
    #[schemars(schema_with = "schema::member")]
    pub name: String,
    /// `org-admin`, `org-developer`, `org-viewer`, `security-officer` or `billing-admin`.
    #[schemars(schema_with = "schema::member_role")]
    pub role: String,
}

/// An Environment, `<org>-<env type>`: one branch of every Application repository of the
/// Organization.
#[derive(CustomResource, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "catalyst.openova.io",
    version = "v1alpha1",
    kind = "Environment",
    namespaced,
    shortname = "env",
    category = "catalyst",
    doc = "An Environment <org>-<env type> of an Organization: the Git branch every Application repository of the Organization has for it. Stored in system/catalyst-config/environments/<org>-<env>.yaml.",
    printcolumn = r#"{"name": "Organization", "type": "string", "jsonPath": ".spec.organization"}"#,
    printcolumn = r#"{"name": "Type", "type": "string", "jsonPath": ".spec.envType"}"#,
    printcolumn = r#"{"name": "Branch", "type": "string", "jsonPath": ".spec.branch"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// The Organization.
    #[schemars(schema_with = "schema::slug")]
    pub organization: String,
    /// `prod`, `stg`, `uat`, `dev` or `poc`.
    #[schemars(schema_with = "schema::env_type")]
    pub env_type: String,
    /// The branch of the Application repositories (`main`, `staging`, `uat`, `develop`, `poc`).
    #[schemars(schema_with = "schema::branch")]
    pub branch: String,
}

/// The promotion rules into one Environment.
#[derive(CustomResource, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "catalyst.openova.io",
    version = "v1alpha1",
    kind = "EnvironmentPolicy",
    plural = "environmentpolicies",
    namespaced,
    shortname = "envpol",
    category = "catalyst",
    doc = "The rules a promotion into an Environment must meet (pr-required, soak, change-window, re-score-gate). Stored in system/catalyst-config/policies/<org>-<env>-policy.yaml.",
    printcolumn = r#"{"name": "Environments", "type": "string", "jsonPath": ".spec.appliesTo.environments"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentPolicySpec {
    /// The Environments the rules gate.
    pub applies_to: AppliesTo,
    /// The rules, judged in order; the first one unmet refuses the promotion.
    pub rules: Vec<PolicyRule>,
}

/// What an EnvironmentPolicy applies to.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
pub struct AppliesTo {
    /// Environment names, `<org>-<env type>`.
    #[schemars(schema_with = "schema::environments")]
    pub environments: Vec<String>,
}

/// The kind of a promotion rule.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RuleKind {
    /// Approvals of the source commit (`minApprovals`).
    PrRequired,
    /// The source must be unchanged for `duration`.
    Soak,
    /// Only within `duration` after a `cron` firing.
    ChangeWindow,
    /// An RE score of at least `minScore` (no score source yet: always unmet).
    ReScoreGate,
}

/// One promotion rule. Which fields a kind needs is checked when the policy is written.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// The rule's kind.
    pub kind: RuleKind,
    /// `pr-required`: approvals needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_approvals: Option<u32>,
    /// `pr-required`: who may approve (teams or names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<Vec<String>>,
    /// `soak`, `change-window`: `90s`, `30m`, `72h`, `2d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub duration: Option<String>,
    /// `change-window`: five-field cron of the window's openings (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::cron")]
    pub cron: Option<String>,
    /// `soak`: the Environment promoted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::environment")]
    pub source_environment: Option<String>,
    /// `re-score-gate`: the lowest score admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub min_score: Option<u32>,
    /// `re-score-gate`: `blocking` or `advisory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

/// The approvals recorded for promoting one Application into one Environment.
#[derive(CustomResource, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "catalyst.openova.io",
    version = "v1alpha1",
    kind = "PromotionApprovals",
    singular = "promotionapprovals",
    plural = "promotionapprovals",
    namespaced,
    shortname = "approvals",
    category = "catalyst",
    doc = "Approvals of promoting an Application into an Environment, each for one source commit. Stored in system/catalyst-config/approvals/<org>/<app>-<env>.yaml.",
    printcolumn = r#"{"name": "Application", "type": "string", "jsonPath": ".spec.application"}"#,
    printcolumn = r#"{"name": "Environment", "type": "string", "jsonPath": ".spec.environment"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PromotionApprovalsSpec {
    /// The Application.
    #[schemars(schema_with = "schema::slug")]
    pub application: String,
    /// The destination Environment.
    #[schemars(schema_with = "schema::environment")]
    pub environment: String,
    /// The approvals, oldest first.
    pub approvals: Vec<Approval>,
}

/// One approval of one source commit.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
pub struct Approval {
    /// Who approved.
    #[schemars(length(min = 1))]
    pub by: String,
    /// The source branch's commit approved.
    #[schemars(schema_with = "schema::commit")]
    pub commit: String,
    /// The source env type.
    #[schemars(schema_with = "schema::env_type")]
    pub from: String,
    /// When (RFC 3339).
    #[schemars(schema_with = "schema::time")]
    pub time: String,
}
