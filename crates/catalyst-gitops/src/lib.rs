//! The GitOps write path of Catalyst: every change to an Organization, Environment or
//! Application is one Git commit per repository touched, in bare repositories under
//! `--data-dir/git`, which Flux pulls over smart HTTP.
//!
//! Layers, each calling only down: [`names`] (validated names) → [`config`], [`app`],
//! [`policy`], [`plumbing`], [`bootstrap`] (pure documents and rules) → [`repo`] (the only module that touches Git repositories: in process with gitoxide; no `git` process on the write path) →
//! [`sovereign`] (the operations: locks, optimistic concurrency, all-or-nothing ref updates,
//! and one event per change on the spine, `catalyst-spine`, through the journal as outbox);
//! [`sovereign_git`] commits each provisioned Sovereign's bootstrap tree to
//! `system/sovereign-<deployment id>`. [`yaml`] is the only module that knows YAML.
#![forbid(unsafe_code)]

pub mod admission;
pub mod app;
pub mod bootstrap;
pub mod config;
pub mod names;
pub mod plumbing;
pub mod policy;
pub mod push;
pub mod repo;
pub mod sovereign;
pub mod sovereign_git;
pub mod yaml;

pub use admission::{Admission, AdmissionError};
pub use names::{AppName, EnvType, NameError, OrgName};
pub use repo::{Actor, Repo};
pub use sovereign::{
    Call, CommitInfo, InstallRequest, Promotion, Sovereign, UpgradeRequest, Written,
};

/// `apiVersion` of every Catalyst resource written to Git.
pub const API_VERSION: &str = "catalyst.openova.io/v1alpha1";

/// One configSchema error in a write's values: which Blueprint's values, where, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueProblem {
    /// The Blueprint whose values are at fault (the Application's or a dependency's).
    pub blueprint: String,
    /// JSON pointer into those values (`/` for the whole document).
    pub pointer: String,
    /// The schema's message.
    pub message: String,
}

impl ValueProblem {
    /// The problem `e` in the values of Blueprint `blueprint`.
    pub fn of(blueprint: String, e: catalyst_blueprint::schema::ValueError) -> ValueProblem {
        ValueProblem {
            blueprint,
            pointer: if e.pointer.is_empty() {
                "/".to_owned()
            } else {
                e.pointer
            },
            message: e.message,
        }
    }
}

impl std::fmt::Display for ValueProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} values {}: {}",
            self.blueprint, self.pointer, self.message
        )
    }
}

/// Everything that can go wrong on the write path; each variant is something a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum GitopsError {
    /// The object does not exist (or is not visible).
    #[error("{0} not found")]
    NotFound(String),
    /// The object exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The branch moved: `If-Match` named a stale commit, or a concurrent change won.
    #[error("{0}")]
    Conflict(String),
    /// The change's event could not be recorded on the spine (the change is not made).
    #[error("cannot record the event: {0}")]
    Events(String),
    /// A name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A request is invalid (what and why).
    #[error("{0}")]
    Invalid(String),
    /// Values do not satisfy the configSchema (one per error, with its JSON pointer).
    #[error("values do not satisfy the configSchema: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidValues(Vec<ValueProblem>),
    /// Dependencies cannot be resolved.
    #[error("{0}")]
    Resolve(String),
    /// A promotion rule of the destination's EnvironmentPolicy is not met.
    #[error("EnvironmentPolicy rule {rule} is not met: {detail}")]
    PolicyUnmet {
        /// The rule kind (`pr-required`, `soak`, `change-window`, `re-score-gate`).
        rule: String,
        /// Why.
        detail: String,
    },
    /// An existing dependency Application runs a version the new requirement does not accept
    /// (what needs which range, and which Application runs what).
    #[error("{0}")]
    DependencyMismatch(String),
    /// A Blueprint artifact is refused by the Sovereign's trust settings; nothing was written.
    #[error("Blueprint {blueprint}: {detail}")]
    Untrusted {
        /// `bp-<name> <version>`.
        blueprint: String,
        /// The refusal (unsigned, bad signature, unknown key, …), naming the digest.
        detail: String,
    },
    /// The artifact store cannot be read; nothing was written.
    #[error("the Blueprint artifact store cannot be read: {0}")]
    ArtifactStore(String),
    /// Other Applications depend on this one.
    #[error("{0}")]
    HasDependents(String),
    /// A document in Git does not read back.
    #[error("stored document is unreadable: {0}")]
    Corrupt(String),
    /// `git` failed.
    #[error("{0}")]
    Git(String),
    /// File-system failure.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
