//! The provisioning pipeline: the deployment service (runs, statuses, the event broadcast),
//! the provisioners (OpenTofu and dry-run), and the small side integrations of the wizard
//! (SSH key generation, Hetzner credential check).
//!
//! Invariants: credentials live in memory only (in a `Secret`), never in a stored record, an
//! event, a file or a log line; an event is published to subscribers only after the store has
//! made it durable; the terminal status is stored before any subscriber sees `done`.
#![forbid(unsafe_code)]

pub mod dry_run;
pub mod hetzner;
pub mod names;
pub mod provisioner;
pub mod render;
pub mod service;
pub mod sshkey;
pub mod tofu;

pub use provisioner::{
    BootstrapPublisher, EventSink, GitSource, ProvisionError, ProvisionJob, ProvisionOutput,
    Provisioner, SinkMessage,
};
