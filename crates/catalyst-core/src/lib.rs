//! Catalyst's pure domain: the vocabulary every other crate speaks.
//!
//! Invariants: no IO, no tokio, no randomness source of its own (callers pass random bytes in),
//! no wire JSON (types derive serde only so the storage adapters can persist them; the HTTP
//! crate maps them to its own wire types by hand).
#![forbid(unsafe_code)]

pub mod catalog;
pub mod deployment;
pub mod event;
pub mod ids;
pub mod names;
pub mod request;
pub mod secret;
pub mod status;

pub use deployment::{DeploymentRecord, ProvisionResult};
pub use event::{Event, EventDraft, Level, ResourceProgress, ResourceState};
pub use ids::{DeploymentId, InvalidId};
pub use request::{
    DeploymentInput, DeploymentSpec, DomainMode, FieldError, RegionInput, RegionSpec,
};
pub use secret::Secret;
pub use status::DeploymentStatus;
