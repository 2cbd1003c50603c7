//! The Blueprint engine: one model for both upstream `blueprint.yaml` dialects, lint,
//! configSchema validation, the dependency resolver and install plan, upgrade and uninstall
//! plans, and rendering to Flux objects.
//!
//! Pure: nothing here touches the file system or the network except [`load`], the thin edge
//! that reads Blueprint files for the CLI.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod catalog;
pub mod diag;
pub mod lifecycle;
pub mod lint;
pub mod load;
pub mod model;
pub mod range;
pub mod render;
pub mod resolve;
pub mod schema;
pub mod when;
pub mod yaml;

pub use catalog::{Catalog, Entry, Source, Viewer};
pub use diag::{Diagnostic, Severity};
pub use model::{Blueprint, BlueprintName, Visibility};
pub use range::VersionRange;
pub use resolve::{resolve_plan, Options, Plan, Request, ResolveError};

/// Errors of the Blueprint engine's convenience entry points.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not a valid Blueprint (the rendered diagnostic says why).
    #[error("{0}")]
    Invalid(String),
}
