//! Durable storage of deployments: snapshots plus an append-only event log per deployment.
//!
//! Invariants: an event is acknowledged (the future of `append_events` resolves) only once it is
//! durable (fsynced / committed); appending costs O(bytes of the new events), never a rewrite of
//! the record; snapshots are replaced atomically; nothing here ever sees a credential (the
//! types it stores have none).
#![forbid(unsafe_code)]

use async_trait::async_trait;
use catalyst_core::{DeploymentId, DeploymentRecord, Event};

pub mod file;
mod pg_shared;
pub mod postgres;
pub mod shared;
mod upstream;

pub use file::FileStore;
pub use postgres::PgStore;
pub use shared::{Change, LeaseOwner, SharedStore};

/// Errors of a store backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system failed.
    #[error("store I/O error on {path}: {source}")]
    Io {
        /// What was being touched.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// PostgreSQL failed.
    #[error("store database error: {0}")]
    Database(String),
    /// A record could not be encoded or decoded.
    #[error("store encoding error: {0}")]
    Encoding(String),
    /// The deployment does not exist.
    #[error("deployment {0} not found in the store")]
    NotFound(DeploymentId),
    /// An append did not continue the log gap-free.
    #[error("event sequence gap for {id}: log ends at {last}, got {got}")]
    SequenceGap {
        /// The deployment.
        id: DeploymentId,
        /// Last stored sequence number.
        last: u64,
        /// First sequence number offered.
        got: u64,
    },
}

/// A problem found while loading that did not stop the load (a garbage file, a torn tail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadWarning {
    /// File or row the warning is about.
    pub location: String,
    /// What was wrong and what was done about it.
    pub message: String,
}

/// Everything found at start-up.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every readable deployment, with `last_seq` matching its durable log.
    pub records: Vec<DeploymentRecord>,
    /// Files skipped or repaired.
    pub warnings: Vec<LoadWarning>,
}

/// Storage of deployment snapshots and their append-only event logs.
#[async_trait]
pub trait DeploymentStore: Send + Sync + 'static {
    /// Short backend name for logs and metrics (`file`, `postgres`).
    fn backend(&self) -> &'static str;

    /// Stores a new deployment's snapshot durably (before the API answers 201).
    async fn create(&self, record: &DeploymentRecord) -> Result<(), StoreError>;

    /// Replaces a deployment's snapshot atomically and durably.
    async fn save_snapshot(&self, record: &DeploymentRecord) -> Result<(), StoreError>;

    /// Appends events (consecutive `seq`, continuing the log) durably; resolves once they are on
    /// stable storage. Concurrent calls for different deployments share fsyncs/commits.
    async fn append_events(&self, id: &DeploymentId, events: &[Event]) -> Result<(), StoreError>;

    /// Events with `seq > after`, in order, at most `limit`.
    async fn events_after(
        &self,
        id: &DeploymentId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// Loads every deployment (repairing torn logs, skipping garbage with a warning, importing
    /// upstream records where the backend supports it).
    async fn load_all(&self) -> Result<Loaded, StoreError>;

    /// Deletes a deployment and its log. Idempotent.
    async fn delete(&self, id: &DeploymentId) -> Result<(), StoreError>;

    /// Proves the store can write right now (for `/readyz`).
    async fn check_writable(&self) -> Result<(), StoreError>;
}
