//! The stored snapshot of a deployment.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ids::DeploymentId, request::DeploymentSpec, status::DeploymentStatus};

/// What a successful pipeline produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProvisionResult {
    /// The Sovereign's FQDN.
    pub sovereign_fqdn: String,
    /// Public IPv4 of the first control-plane server; `None` when nothing was applied.
    #[serde(default)]
    pub control_plane_ip: Option<String>,
    /// Public IPv4 of the load balancer; `None` when nothing was applied.
    #[serde(default)]
    pub load_balancer_ip: Option<String>,
    /// `https://console.<fqdn>`.
    pub console_url: String,
    /// `https://gitea.<fqdn>`.
    pub gitops_repo_url: String,
    /// True when the dry-run provisioner produced this result.
    #[serde(default)]
    pub dry_run: bool,
}

impl ProvisionResult {
    /// The URLs derived from the FQDN, with the IPs the provisioner reported.
    pub fn for_fqdn(
        fqdn: &str,
        control_plane_ip: Option<String>,
        load_balancer_ip: Option<String>,
        dry_run: bool,
    ) -> Self {
        ProvisionResult {
            sovereign_fqdn: fqdn.to_owned(),
            control_plane_ip,
            load_balancer_ip,
            console_url: format!("https://console.{fqdn}"),
            gitops_repo_url: format!("https://gitea.{fqdn}"),
            dry_run,
        }
    }
}

/// A pool-domain reservation held by a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolReservation {
    /// Pool apex, e.g. `omani.works`.
    pub pool_domain: String,
    /// The reserved label.
    pub subdomain: String,
    /// Opaque reservation token (not a credential).
    pub reservation_token: String,
}

/// The snapshot of one deployment, as stored. Holds no secret: the credential lives in memory
/// only, and `spec` carries none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The id.
    pub id: DeploymentId,
    /// Current status.
    pub status: DeploymentStatus,
    /// The validated request, without credentials.
    pub spec: DeploymentSpec,
    /// Set when `ready`.
    #[serde(default)]
    pub result: Option<ProvisionResult>,
    /// Set when `failed` or `cancelled`.
    #[serde(default)]
    pub error: Option<String>,
    /// Creation time.
    pub started_at: DateTime<Utc>,
    /// When the last run ended.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Sequence number of the last event in the log (0 = none).
    #[serde(default)]
    pub last_seq: u64,
    /// True when the deployment runs with the dry-run provisioner.
    #[serde(default)]
    pub dry_run: bool,
    /// Pool-domain reservation, when in `pool` mode and a manager is configured.
    #[serde(default)]
    pub reservation: Option<PoolReservation>,
    /// Sequence number of the event that set the current status (0: none since creation). The
    /// spine's record of that change is `deployment-<id>-<status_seq>`, which start-up checks.
    #[serde(default)]
    pub status_seq: u64,
}

/// The operator message a deployment gets when the control plane finds it in flight at start-up.
pub fn restart_orphan_message(id: &DeploymentId, fqdn: &str) -> String {
    format!(
        "catalyst-api restarted during provisioning — deployment {id} was abandoned mid-apply. \
         Hetzner resources labelled `catalyst.openova.io/sovereign={fqdn}` are orphans and must be \
         purged manually (hcloud server, load balancer, network, firewall, ssh-key) before retrying. \
         Retry the deployment (supplying the Hetzner token again) or start a new one."
    )
}

impl DeploymentRecord {
    /// Marks an in-flight record found at start-up as failed. Returns false when it was not in flight.
    pub fn fail_orphaned(&mut self, now: DateTime<Utc>) -> bool {
        if self.status.is_terminal() {
            return false;
        }
        self.error = Some(restart_orphan_message(&self.id, &self.spec.sovereign_fqdn));
        self.status = DeploymentStatus::Failed;
        self.finished_at = Some(now);
        true
    }
}
