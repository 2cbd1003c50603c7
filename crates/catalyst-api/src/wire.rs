//! Wire JSON: request and response shapes of the provisioning API, converted by hand from and
//! to the domain types. Field names follow upstream `catalyst-api` exactly.
use catalyst_core::{
    DeploymentInput, DeploymentRecord, Event, Level, ProvisionResult, RegionInput, ResourceState,
    Secret,
};
use catalyst_provision::service::DeploymentView;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/deployments` body.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct CreateDeploymentRequest {
    org_name: String,
    org_email: String,
    #[serde(rename = "sovereignFQDN", alias = "sovereignFqdn")]
    sovereign_fqdn: String,
    sovereign_domain_mode: String,
    sovereign_pool_domain: String,
    sovereign_subdomain: String,
    hetzner_token: Option<String>,
    #[serde(rename = "hetznerProjectID", alias = "hetznerProjectId")]
    hetzner_project_id: String,
    region: String,
    control_plane_size: String,
    worker_size: String,
    worker_count: i64,
    ha_enabled: bool,
    regions: Option<Vec<RegionWire>>,
    ssh_public_key: String,
    /// Optional components (Blueprint names) installed besides the bootstrap kit.
    components: Vec<String>,
}

/// One region of a create request.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct RegionWire {
    provider: String,
    cloud_region: String,
    control_plane_size: String,
    worker_size: String,
    worker_count: i64,
}

impl CreateDeploymentRequest {
    /// Into the domain's unvalidated input.
    pub fn into_input(self) -> DeploymentInput {
        DeploymentInput {
            org_name: self.org_name,
            org_email: self.org_email,
            sovereign_fqdn: self.sovereign_fqdn,
            domain_mode: self.sovereign_domain_mode,
            pool_domain: self.sovereign_pool_domain,
            subdomain: self.sovereign_subdomain,
            hetzner_token: self.hetzner_token.map(Secret::new),
            hetzner_project_id: self.hetzner_project_id,
            region: self.region,
            control_plane_size: self.control_plane_size,
            worker_size: self.worker_size,
            worker_count: self.worker_count,
            ha_enabled: self.ha_enabled,
            regions: self
                .regions
                .unwrap_or_default()
                .into_iter()
                .map(|r| RegionInput {
                    provider: r.provider,
                    cloud_region: r.cloud_region,
                    control_plane_size: r.control_plane_size,
                    worker_size: r.worker_size,
                    worker_count: r.worker_count,
                })
                .collect(),
            ssh_public_key: self.ssh_public_key,
            components: self.components,
        }
    }
}

/// `POST …/phases/{phase}/retry` body (optional).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryRequest {
    /// The Hetzner token, required when the control plane restarted since the deployment ran.
    pub hetzner_token: Option<String>,
}

/// `POST …/phases/{phase}/retry` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryBody {
    /// The deployment id.
    pub id: String,
    /// Its status, or `manual-retry-required` for a Phase 1 (Flux) phase.
    pub status: &'static str,
    /// The phase.
    pub phase: String,
    /// Where to follow the logs.
    #[serde(rename = "streamURL")]
    pub stream_url: String,
    /// What happens now.
    pub message: String,
    /// The runbook section for a manual retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbook: Option<&'static str>,
}

/// `201` body of a create.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedBody {
    /// The id.
    pub id: String,
    /// The status right after creation.
    pub status: &'static str,
    /// Where to follow the logs.
    #[serde(rename = "streamURL")]
    pub stream_url: String,
}

/// Upstream's `Result` shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultBody {
    #[serde(rename = "sovereignFQDN")]
    sovereign_fqdn: String,
    #[serde(rename = "controlPlaneIP", skip_serializing_if = "Option::is_none")]
    control_plane_ip: Option<String>,
    #[serde(rename = "loadBalancerIP", skip_serializing_if = "Option::is_none")]
    load_balancer_ip: Option<String>,
    #[serde(rename = "consoleURL")]
    console_url: String,
    #[serde(rename = "gitopsRepoURL")]
    gitops_repo_url: String,
    #[serde(rename = "dryRun", skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
}

impl From<&ProvisionResult> for ResultBody {
    fn from(r: &ProvisionResult) -> Self {
        ResultBody {
            sovereign_fqdn: r.sovereign_fqdn.clone(),
            control_plane_ip: r.control_plane_ip.clone(),
            load_balancer_ip: r.load_balancer_ip.clone(),
            console_url: r.console_url.clone(),
            gitops_repo_url: r.gitops_repo_url.clone(),
            dry_run: r.dry_run,
        }
    }
}

/// RFC 3339, UTC, seconds precision (as upstream).
pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Upstream's `State()` shape, plus `dryRun`, `domainMode` and `done`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateBody {
    id: String,
    status: &'static str,
    started_at: String,
    finished_at: Option<String>,
    #[serde(rename = "sovereignFQDN")]
    sovereign_fqdn: String,
    region: String,
    num_events: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<ResultBody>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
    domain_mode: &'static str,
    org_name: String,
}

impl StateBody {
    /// From a record.
    pub fn from_record(r: &DeploymentRecord) -> Self {
        StateBody {
            id: r.id.to_string(),
            status: r.status.as_str(),
            started_at: timestamp(&r.started_at),
            finished_at: r.finished_at.as_ref().map(timestamp),
            sovereign_fqdn: r.spec.sovereign_fqdn.clone(),
            region: r
                .spec
                .regions
                .first()
                .map(|x| x.cloud_region.clone())
                .unwrap_or_default(),
            num_events: r.last_seq,
            error: r.error.clone(),
            result: r.result.as_ref().map(ResultBody::from),
            dry_run: r.dry_run,
            domain_mode: r.spec.domain_mode.as_str(),
            org_name: r.spec.org_name.clone(),
        }
    }
}

impl From<&DeploymentView> for StateBody {
    fn from(v: &DeploymentView) -> Self {
        StateBody::from_record(&v.record)
    }
}

/// `GET …/{id}/events` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsBody {
    /// The state.
    pub state: StateBody,
    /// The most recent events (at most 10 000), oldest first.
    pub events: Vec<EventBody>,
    /// True when the pipeline has finished.
    pub done: bool,
}

/// `GET /api/v1/deployments` body.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListBody {
    /// Newest first.
    pub deployments: Vec<StateBody>,
    /// Pass as `?cursor=` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Per-resource progress on the wire.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceBody {
    address: String,
    resource_type: String,
    action: String,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_seconds: Option<u64>,
}

/// Upstream's `Event` shape (`time`, `phase`, `level`, `message`) plus `seq` (also the SSE
/// `id:`), and `dryRun`, `status`, `resource` when they apply.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventBody {
    seq: u64,
    time: String,
    phase: String,
    level: &'static str,
    message: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<ResourceBody>,
}

impl From<&Event> for EventBody {
    fn from(e: &Event) -> Self {
        let d = &e.draft;
        EventBody {
            seq: e.seq,
            time: timestamp(&d.time),
            phase: d.phase.clone(),
            level: match d.level {
                Level::Info => "info",
                Level::Warn => "warn",
                Level::Error => "error",
            },
            message: d.message.clone(),
            dry_run: d.dry_run,
            status: d.status.map(|s| s.as_str()),
            resource: d.resource.as_ref().map(|r| ResourceBody {
                address: r.address.clone(),
                resource_type: r.resource_type.clone(),
                action: r.action.clone(),
                state: match r.state {
                    ResourceState::Applying => "applying",
                    ResourceState::Applied => "applied",
                    ResourceState::Errored => "errored",
                },
                elapsed_seconds: r.elapsed_seconds,
            }),
        }
    }
}

/// `POST /api/v1/credentials/validate` body.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct CredentialsRequest {
    /// The token to check.
    pub token: String,
    /// Provider (only `hetzner` can be checked).
    pub provider: String,
}

/// `POST /api/v1/credentials/validate` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialsBody {
    /// True when the provider accepted the token.
    pub valid: bool,
    /// Human text.
    pub message: String,
}

/// A `400` of `POST /api/v1/credentials/validate`: the token cannot be a provider token
/// (a check answer), or the body is not the route's JSON (an error).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum CredentialsRejection<'a> {
    /// `valid: false`.
    Checked(CredentialsBody),
    /// `invalid-body`.
    Invalid(crate::error::ErrorBody<'a>),
}

/// `POST /api/v1/sshkey/generate` body.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct SshKeyRequest {
    /// FQDN for the key comment.
    pub fqdn: String,
}

/// `POST /api/v1/sshkey/generate` answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SshKeyBody {
    /// authorized_keys line.
    pub public_key: String,
    /// OpenSSH private key (returned once, never kept).
    pub private_key: String,
    /// `SHA256:…`.
    pub fingerprint: String,
}

/// `POST /api/v1/subdomains/check` body.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct SubdomainRequest {
    /// The label.
    pub subdomain: String,
    /// The apex.
    pub pool_domain: String,
}

/// `POST /api/v1/subdomains/check` answer.
#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct SubdomainBody {
    /// Whether the name can be used.
    pub available: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Human text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The resulting FQDN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
}
