//! The read side of Catalyst: one event spine, one projection.
//!
//! Layers, each calling only down: [`event`] (CloudEvents 1.0 envelopes and their routing
//! subjects; pure) and [`codec`] (the checksummed line format of the log; pure) → [`log`] (the
//! embedded backend: an append-only, fsynced file under `<data-dir>/events` with group commit,
//! exactly-once by event id) → [`projection`] (the read model, rebuilt by applying events in
//! order; pure). [`flux`] reads what Flux's notification-controller posts to a `generic-hmac`
//! Provider (signature check, parsing, and the `flux.*` event for the Application it concerns;
//! pure).
#![forbid(unsafe_code)]

pub mod codec;
pub mod event;
pub mod flux;
pub mod jetstream;
pub mod log;
pub mod projection;
pub mod projector;

pub use event::{CloudEvent, EventDraft};
pub use jetstream::{JetStreamConfig, JetStreamLog};
pub use log::{FileLog, Memory, Spine};
pub use projection::{AppCard, AppStatus, AuditEntry, Projection, TokenView};
pub use projector::Projector;

/// What can go wrong on the spine.
#[derive(Debug, thiserror::Error)]
pub enum SpineError {
    /// The log could not be read or written.
    #[error("event log {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An event could not be encoded.
    #[error("cannot encode an event: {0}")]
    Encoding(String),
    /// The writer stopped (an earlier write failed; the log refuses writes until restarted).
    #[error("the event log writer has stopped: {0}")]
    Stopped(String),
}
