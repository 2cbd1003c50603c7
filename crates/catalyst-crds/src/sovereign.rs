//! `Sovereign`: the deployed control plane itself, described by what its deployment was created
//! with (`catalyst_core::DeploymentSpec`, less anything provider-private) and the one runtime
//! setting the reference architecture names, `keycloakTopology` (§1.2, §2.1).
use catalyst_core::{DeploymentSpec, DomainMode};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema;

/// A Sovereign: one deployed Catalyst. One per cluster, so cluster-scoped.
#[derive(CustomResource, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "catalyst.openova.io",
    version = "v1alpha1",
    kind = "Sovereign",
    shortname = "sov",
    category = "catalyst",
    status = "SovereignStatus",
    doc = "A Sovereign: one deployed Catalyst control plane, its domain, regions and Keycloak topology.",
    printcolumn = r#"{"name": "FQDN", "type": "string", "jsonPath": ".spec.fqdn"}"#,
    printcolumn = r#"{"name": "Domain mode", "type": "string", "jsonPath": ".spec.domainMode"}"#,
    printcolumn = r#"{"name": "Keycloak", "type": "string", "jsonPath": ".spec.keycloakTopology"}"#,
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SovereignSpec {
    /// The Sovereign's domain (lower case).
    #[schemars(length(min = 1, max = 253))]
    pub fqdn: String,
    /// How the domain is managed.
    pub domain_mode: SovereignDomainMode,
    /// The pool apex (`pool` mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_domain: Option<String>,
    /// The label under the pool apex (`pool` mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    /// Who the Sovereign was deployed for.
    pub owner: SovereignOwner,
    /// At least one region; the first is the primary (where the control plane runs).
    #[schemars(length(min = 1))]
    pub regions: Vec<SovereignRegion>,
    /// A highly available control plane.
    #[serde(default)]
    pub high_availability: bool,
    /// One Keycloak per Organization (SME) or one shared instance with a realm per
    /// Organization (corporate).
    #[serde(default)]
    pub keycloak_topology: KeycloakTopology,
}

/// How a Sovereign's domain is managed (`catalyst_core::DomainMode`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SovereignDomainMode {
    /// A subdomain of a pool domain, allocated by the pool-domain manager.
    Pool,
    /// The customer's domain; NS records changed at the registrar by hand.
    ByoManual,
    /// The customer's domain; NS records changed through the registrar's API.
    ByoApi,
}

impl From<DomainMode> for SovereignDomainMode {
    fn from(m: DomainMode) -> Self {
        match m {
            DomainMode::Pool => SovereignDomainMode::Pool,
            DomainMode::ByoManual => SovereignDomainMode::ByoManual,
            DomainMode::ByoApi => SovereignDomainMode::ByoApi,
        }
    }
}

/// The Keycloak topology.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KeycloakTopology {
    /// One Keycloak per Organization (the SME default).
    #[default]
    PerOrganization,
    /// One shared instance, a realm per Organization (the corporate default).
    SharedSovereign,
}

/// Who a Sovereign was deployed for.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
pub struct SovereignOwner {
    /// The organisation's display name.
    pub name: String,
    /// The first sovereign-admin's email.
    pub email: String,
}

/// One region of a Sovereign.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SovereignRegion {
    /// Provider code (`hetzner`, …).
    pub provider: String,
    /// The provider's region code.
    pub cloud_region: String,
    /// Control-plane server type.
    pub control_plane_size: String,
    /// Worker server type (empty without workers).
    #[serde(default)]
    pub worker_size: String,
    /// Workers, 0–50.
    #[serde(default)]
    #[schemars(range(min = 0, max = 50))]
    pub worker_count: u32,
}

/// The observed state of a Sovereign.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SovereignStatus {
    /// The deployment that provisioned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// The deployment's status (`pending` … `ready`, `failed`, `cancelled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::deployment_status")]
    pub phase: Option<String>,
    /// A human-readable note on the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl SovereignSpec {
    /// The Sovereign a validated deployment request describes (no credential is in either).
    pub fn from_deployment(d: &DeploymentSpec, keycloak_topology: KeycloakTopology) -> Self {
        SovereignSpec {
            fqdn: d.sovereign_fqdn.clone(),
            domain_mode: d.domain_mode.into(),
            pool_domain: d.pool_domain.clone(),
            subdomain: d.subdomain.clone(),
            owner: SovereignOwner {
                name: d.org_name.clone(),
                email: d.org_email.clone(),
            },
            regions: d
                .regions
                .iter()
                .map(|r| SovereignRegion {
                    provider: r.provider.clone(),
                    cloud_region: r.cloud_region.clone(),
                    control_plane_size: r.control_plane_size.clone(),
                    worker_size: r.worker_size.clone(),
                    worker_count: r.worker_count,
                })
                .collect(),
            high_availability: d.ha_enabled,
            keycloak_topology,
        }
    }
}
