//! What the pages show: the wizard's fixed choices, the page data handed to the scripts, and
//! deployment rows. The provider table itself lives in `catalyst_core::catalog`.
use catalyst_core::catalog::PROVIDERS;
use catalyst_core::{DeploymentRecord, DeploymentStatus};
use serde::Serialize;
use serde_json::{json, Value};

use crate::catalog::Catalog;

/// A topology the wizard offers: how many regions and what each is for.
#[derive(Debug, Clone, Copy)]
pub struct Topology {
    /// Code (`zoned`).
    pub code: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Who it is for.
    pub audience: &'static str,
    /// One label per region.
    pub regions: &'static [&'static str],
    /// Marked as the recommended choice.
    pub recommended: bool,
}

/// The topology pre-selected on a fresh wizard.
pub const DEFAULT_TOPOLOGY: &str = "zoned";

/// Topologies, in the order shown.
pub const TOPOLOGIES: &[Topology] = &[
    Topology {
        code: "citadel",
        name: "Citadel",
        audience: "Tier-1 Bank",
        regions: &[
            "CP Region 1 — MGMT",
            "CP Region 2 — MGMT",
            "DP Region 1 — DMZ + RTZ",
            "DP Region 2 — DMZ + RTZ",
        ],
        recommended: false,
    },
    Topology {
        code: "dual",
        name: "Dual",
        audience: "Enterprise",
        regions: &["Region 1 — MGMT + DMZ + RTZ", "Region 2 — MGMT + DMZ + RTZ"],
        recommended: true,
    },
    Topology {
        code: "zoned",
        name: "Zoned",
        audience: "Mid-market",
        regions: &["Region 1 — DMZ / RTZ / MGMT", "Region 2 — DMZ / RTZ / MGMT"],
        recommended: false,
    },
    Topology {
        code: "compact",
        name: "Compact",
        audience: "Starter",
        regions: &["Region 1 — Primary", "Region 2 — Secondary"],
        recommended: false,
    },
    Topology {
        code: "solo",
        name: "Solo",
        audience: "Dev / POC",
        regions: &["Region 1 — All Components"],
        recommended: false,
    },
];

/// Label of the optional air-gap region.
pub const AIRGAP_REGION: &str = "AIR-GAP Region";

/// Industries of the Organisation step.
pub const INDUSTRIES: &[&str] = &[
    "Financial Services",
    "Banking",
    "Insurance",
    "Healthcare",
    "Telecommunications",
    "Energy & Utilities",
    "Retail",
    "Manufacturing",
    "Government",
    "Technology",
    "Other",
];

/// Organisation sizes.
pub const ORG_SIZES: &[&str] = &[
    "Under 100",
    "100–500",
    "500–2,000",
    "2,000–10,000",
    "10,000+",
];

/// Compliance frameworks (they only inform component defaults; nothing is sent).
pub const COMPLIANCE: &[&str] = &[
    "PCI DSS",
    "ISO 27001",
    "SOC 2",
    "GDPR",
    "HIPAA",
    "DORA",
    "NIS2",
    "FedRAMP",
];

/// Registrars the `byo-api` domain mode can drive.
pub const REGISTRARS: &[(&str, &str)] = &[
    ("cloudflare", "Cloudflare"),
    ("namecheap", "Namecheap"),
    ("godaddy", "GoDaddy"),
    ("ovh", "OVH"),
    ("dynadot", "Dynadot"),
];

/// Nameservers a `byo-manual` domain is delegated to.
pub const NAMESERVERS: &[&str] = &["ns1.openova.io", "ns2.openova.io", "ns3.openova.io"];

/// The wizard's page data: providers (from the core catalog), topologies, pool domains and the
/// Blueprint components. Read by `wizard.js`.
pub fn wizard_data(pool_domains: &[String], catalog: &Catalog, dry_run: bool) -> Value {
    let providers: Vec<Value> = PROVIDERS
        .iter()
        .map(|p| {
            json!({
                "code": p.code,
                "name": p.name,
                "provisionable": p.provisionable,
                "regions": p.regions.iter().map(|r| json!({"code": r.code, "name": r.name})).collect::<Vec<_>>(),
                "sizes": p.sizes.iter().map(|s| json!({
                    "id": s.id, "vcpu": s.vcpu, "ramGb": s.ram_gb,
                    "eurPerHour": s.eur_per_hour, "recommended": s.recommended,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let topologies: Vec<Value> = TOPOLOGIES
        .iter()
        .map(|t| json!({"code": t.code, "name": t.name, "regions": t.regions}))
        .collect();
    json!({
        "providers": providers,
        "topologies": topologies,
        "defaultTopology": DEFAULT_TOPOLOGY,
        "airgapRegion": AIRGAP_REGION,
        "poolDomains": pool_domains,
        "components": catalog.component_data(),
        "dryRun": dry_run,
    })
}

/// The Install section's data for `assets/install.js`: the Blueprint, its version and the
/// configSchemas (its own and each dependency's) that type the form values the way
/// `catalog::values_from_form` does on the server.
pub fn install_data<'a>(
    blueprint: &str,
    version: &str,
    schema: Option<&Value>,
    deps: impl Iterator<Item = (&'a str, Option<&'a Value>)>,
) -> Value {
    let deps: serde_json::Map<String, Value> = deps
        .map(|(name, s)| (name.to_owned(), s.cloned().unwrap_or(Value::Null)))
        .collect();
    json!({
        "blueprint": blueprint,
        "version": version,
        "schema": schema.cloned().unwrap_or(Value::Null),
        "dependencies": deps,
    })
}

/// JSON safe to place inside `<script type="application/json">`: `<` is escaped so the text
/// can never close the element.
pub fn script_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "null".to_owned())
        .replace('<', "\\u003c")
}

/// One deployment as the list and the progress page show it.
#[derive(Debug, Clone)]
pub struct DeploymentRow {
    /// Id.
    pub id: String,
    /// Sovereign FQDN.
    pub fqdn: String,
    /// Organisation name.
    pub org: String,
    /// Status code (`ready`).
    pub status: &'static str,
    /// Status in words.
    pub status_label: &'static str,
    /// Start, RFC 3339.
    pub started_at: String,
    /// Start, for people (UTC, minutes).
    pub started_human: String,
    /// End, RFC 3339, when finished.
    pub finished_at: Option<String>,
    /// True for a dry run.
    pub dry_run: bool,
    /// Error text of a failed deployment.
    pub error: Option<String>,
    /// Primary region.
    pub region: String,
    /// Result fields `(label, value, is_link)` of a ready deployment.
    pub result: Vec<(&'static str, String, bool)>,
}

/// Words for a status.
pub fn status_label(status: DeploymentStatus) -> &'static str {
    match status {
        DeploymentStatus::Pending => "Pending",
        DeploymentStatus::Provisioning => "Provisioning",
        DeploymentStatus::TofuApplying => "Applying infrastructure",
        DeploymentStatus::FluxBootstrapping => "Bootstrapping Flux",
        DeploymentStatus::Ready => "Ready",
        DeploymentStatus::Failed => "Failed",
        DeploymentStatus::Cancelled => "Cancelled",
    }
}

impl DeploymentRow {
    /// From a stored record.
    pub fn from_record(r: &DeploymentRecord) -> Self {
        let mut result = Vec::new();
        if let Some(res) = &r.result {
            result.push(("Sovereign", res.sovereign_fqdn.clone(), false));
            result.push(("Console", res.console_url.clone(), !res.dry_run));
            result.push((
                "GitOps repository",
                res.gitops_repo_url.clone(),
                !res.dry_run,
            ));
            if let Some(ip) = &res.control_plane_ip {
                result.push(("Control-plane IP", ip.clone(), false));
            }
            if let Some(ip) = &res.load_balancer_ip {
                result.push(("Load-balancer IP", ip.clone(), false));
            }
        }
        DeploymentRow {
            id: r.id.to_string(),
            fqdn: r.spec.sovereign_fqdn.clone(),
            org: r.spec.org_name.clone(),
            status: r.status.as_str(),
            status_label: status_label(r.status),
            started_at: r
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            started_human: r.started_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            finished_at: r
                .finished_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            dry_run: r.dry_run,
            error: r.error.clone(),
            region: r
                .spec
                .regions
                .first()
                .map(|x| x.cloud_region.clone())
                .unwrap_or_default(),
            result,
        }
    }

    /// True once the deployment reached a terminal status.
    pub fn finished(&self) -> bool {
        matches!(self.status, "ready" | "failed" | "cancelled")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let s = script_json(&json!({"x": "</script><script>alert(1)</script>"}));
        assert!(!s.contains("</"));
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["x"], "</script><script>alert(1)</script>");
    }

    #[test]
    fn wizard_data_uses_the_core_provider_catalog() {
        let data = wizard_data(&["omani.works".into()], &Catalog::empty(), true);
        let providers = data["providers"].as_array().unwrap();
        assert_eq!(providers.len(), PROVIDERS.len());
        assert_eq!(providers[0]["code"], "hetzner");
        let hetzner_sizes = providers[0]["sizes"].as_array().unwrap();
        assert!(hetzner_sizes
            .iter()
            .any(|s| s["id"] == "cpx32" && s["recommended"] == true));
        assert_eq!(data["defaultTopology"], "zoned");
    }
}
