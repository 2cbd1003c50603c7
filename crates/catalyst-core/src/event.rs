//! Deployment events: the append-only history of a pipeline run.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::status::DeploymentStatus;

/// Severity of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Progress.
    Info,
    /// Something to look at (tofu's stderr, a non-fatal problem).
    Warn,
    /// A failure.
    Error,
}

impl Level {
    /// The wire/storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Where one cloud resource is in `tofu apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceState {
    /// `apply_start`.
    Applying,
    /// `apply_complete`.
    Applied,
    /// `apply_errored`.
    Errored,
}

/// Per-resource progress reported by the provisioner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceProgress {
    /// Resource address, e.g. `hcloud_server.control_plane[0]`.
    pub address: String,
    /// Resource type, e.g. `hcloud_server`.
    pub resource_type: String,
    /// Planned action (`create`, `update`, `delete`, …).
    pub action: String,
    /// Where it is.
    pub state: ResourceState,
    /// Seconds spent, when the provisioner reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_seconds: Option<u64>,
}

/// An event as the pipeline produces it, before it has a sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDraft {
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Pipeline phase (`tofu-init`, `tofu`, `flux-bootstrap`, …).
    pub phase: String,
    /// Severity.
    pub level: Level,
    /// Human text.
    pub message: String,
    /// Set when the deployment runs with the dry-run provisioner.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Set on the event that records a status change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DeploymentStatus>,
    /// Set on per-resource progress events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceProgress>,
}

impl EventDraft {
    /// A plain event.
    pub fn new(
        time: DateTime<Utc>,
        phase: impl Into<String>,
        level: Level,
        message: impl Into<String>,
    ) -> Self {
        EventDraft {
            time,
            phase: phase.into(),
            level,
            message: message.into(),
            dry_run: false,
            status: None,
            resource: None,
        }
    }

    /// Gives the draft its place in the log.
    pub fn sequenced(self, seq: u64) -> Event {
        Event { seq, draft: self }
    }
}

/// A stored event: a draft with its sequence number (1-based, gap-free, per deployment).
/// The sequence number is the SSE `id:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the deployment's log, starting at 1.
    pub seq: u64,
    /// The content.
    #[serde(flatten)]
    pub draft: EventDraft,
}
