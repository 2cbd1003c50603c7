//! The provisioner trait: what brings a Sovereign's infrastructure up.
use async_trait::async_trait;
use catalyst_core::{DeploymentId, DeploymentSpec, DeploymentStatus, EventDraft, Level, Secret};
use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One run of the pipeline for one deployment.
#[derive(Debug, Clone)]
pub struct ProvisionJob {
    /// The deployment.
    pub id: DeploymentId,
    /// What to build.
    pub spec: DeploymentSpec,
    /// The Hetzner token; handed to OpenTofu through the child's environment only.
    pub hetzner_token: Secret,
    /// 1 for the first run, 2 for the first retry, …
    pub attempt: u32,
    /// Where Flux on the new Sovereign reads its bootstrap tree (Catalyst's own Git), once the
    /// service has committed it; `None` without a [`BootstrapPublisher`] (the operator's
    /// `gitops_repo_url` setting then stands).
    pub git: Option<GitSource>,
}

/// Where Flux on a new Sovereign reads the Sovereign's bootstrap tree, and how.
#[derive(Debug, Clone)]
pub struct GitSource {
    /// The repository's smart HTTP URL (`<public url>/git/system/sovereign-<id>.git`).
    pub url: String,
    /// The branch Flux follows.
    pub branch: String,
    /// The folder Flux applies (`./clusters/<fqdn>`).
    pub path: String,
    /// The commit the tree is at.
    pub commit: String,
    /// The read token of that repository alone; handed to OpenTofu through the child's
    /// environment only (`TF_VAR_gitops_token`), never written to a file or a log.
    pub token: Secret,
}

/// Commits a deployment's bootstrap tree to Catalyst's Git and says where Flux finds it.
/// Blocking (Git writes); the service calls it off the async threads before each run.
pub trait BootstrapPublisher: Send + Sync {
    /// Renders and commits the tree for `spec` (the same spec commits the same tree).
    fn publish(&self, id: &DeploymentId, spec: &DeploymentSpec) -> Result<GitSource, String>;
}

/// What the provisioner found out (OpenTofu outputs). `None` when nothing was applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvisionOutput {
    /// `control_plane_ip` output.
    pub control_plane_ip: Option<String>,
    /// `load_balancer_ip` output.
    pub load_balancer_ip: Option<String>,
}

/// Why a run did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The cancellation token fired (user cancel or timeout); the child processes were killed.
    #[error("provisioning was cancelled")]
    Cancelled,
    /// A step failed.
    #[error("{step}: {message}")]
    Step {
        /// Which step (`stage tofu module`, `tofu plan`, …).
        step: String,
        /// What went wrong.
        message: String,
    },
}

impl ProvisionError {
    /// A failed step.
    pub fn step(step: impl Into<String>, message: impl Into<String>) -> Self {
        ProvisionError::Step {
            step: step.into(),
            message: message.into(),
        }
    }
}

/// What a provisioner reports while it runs.
#[derive(Debug, Clone)]
pub enum SinkMessage {
    /// An event for the deployment's log.
    Event(EventDraft),
    /// The pipeline moved on (`provisioning`, `tofu-applying`, `flux-bootstrapping`).
    Status(DeploymentStatus),
}

/// Where a provisioner sends its events. Sending waits when the recorder is behind (back
/// pressure), so no event is ever dropped.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: mpsc::Sender<SinkMessage>,
}

impl EventSink {
    /// A sink and the receiving end the recorder drains.
    pub fn channel(capacity: usize) -> (EventSink, mpsc::Receiver<SinkMessage>) {
        let (tx, rx) = mpsc::channel(capacity);
        (EventSink { tx }, rx)
    }

    /// Sends an event. Returns quietly if the recorder is gone (the run is being torn down).
    pub async fn emit(&self, draft: EventDraft) {
        let _ = self.tx.send(SinkMessage::Event(draft)).await;
    }

    /// Sends a plain event stamped now.
    pub async fn log(&self, phase: &str, level: Level, message: impl Into<String>) {
        self.emit(EventDraft::new(Utc::now(), phase, level, message))
            .await;
    }

    /// Sends an info event stamped now.
    pub async fn info(&self, phase: &str, message: impl Into<String>) {
        self.log(phase, Level::Info, message).await;
    }

    /// Reports a status change.
    pub async fn status(&self, status: DeploymentStatus) {
        let _ = self.tx.send(SinkMessage::Status(status)).await;
    }
}

/// Brings up the infrastructure of a Sovereign.
#[async_trait]
pub trait Provisioner: Send + Sync + 'static {
    /// `tofu` or `dry-run`.
    fn name(&self) -> &'static str;

    /// True when nothing is applied.
    fn dry_run(&self) -> bool;

    /// Runs the whole pipeline (stage, init, plan, apply, outputs, flux bootstrap), reporting
    /// events and status changes through `sink`. Must stop promptly (killing any child process
    /// group) when `cancel` fires, and must have delivered every event to `sink` before returning.
    async fn provision(
        &self,
        job: ProvisionJob,
        sink: EventSink,
        cancel: CancellationToken,
    ) -> Result<ProvisionOutput, ProvisionError>;
}
