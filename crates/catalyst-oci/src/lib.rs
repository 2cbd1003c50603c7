//! Blueprint artifacts as OCI artifacts: reproducible packaging, image-layout directories, a
//! registry client (OCI distribution spec), cosign-compatible key-pair signatures, signed bundles
//! for offline verification, the install trust policy, mirroring and inspection.
//!
//! Everything that moves artifacts goes through [`store::Repo`], which both an OCI image-layout
//! directory ([`layout::LayoutRepo`]) and a registry repository ([`registry::RegistryRepo`])
//! implement, so signing, verification, mirroring and inspection are written once.
#![forbid(unsafe_code)]

pub mod bundle;
mod cosign_key;
pub mod digest;
pub mod inspect;
pub mod layout;
pub mod manifest;
pub mod media;
pub mod package;
pub mod policy;
pub mod reference;
pub mod registry;
pub mod sign;
pub mod store;
pub mod transfer;
mod yaml;

pub use digest::Digest;
pub use policy::{admit, admit_reference, Admitted, Refusal, TrustPolicy};
pub use reference::{Reference, Target};

use std::path::PathBuf;

/// Everything that can go wrong in this crate. Each variant names what a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error (in the message, not repeated as a source).
        error: std::io::Error,
    },
    /// The Blueprint folder cannot be packaged (missing files, unreadable YAML, bad chart metadata).
    #[error("cannot package the Blueprint: {0}")]
    Package(String),
    /// A reference (`host/repo:tag`, `oci:DIR:name:tag`, …) could not be parsed.
    #[error("invalid reference {reference:?}: {reason}")]
    Reference {
        /// The text given.
        reference: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A digest string is not `sha256:<64 lowercase hex>`.
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    Digest(String),
    /// A manifest, index or other document is malformed.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being read.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// A tag, manifest or blob does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Content does not hash to the digest it is addressed by.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was fetched.
        what: String,
        /// The digest it was addressed by.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// The registry answered with an unexpected status.
    #[error("registry {url}: HTTP {status}: {detail}")]
    Registry {
        /// The request URL (never contains credentials).
        url: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error text, shortened.
        detail: String,
    },
    /// The registry rejected our credentials or we have none for it.
    #[error("registry {url}: authentication failed: {detail}")]
    Auth {
        /// The request URL.
        url: String,
        /// What went wrong (never the secret).
        detail: String,
    },
    /// The registry could not be reached.
    #[error("registry {url}: {detail}")]
    Transport {
        /// The request URL.
        url: String,
        /// The transport error.
        detail: String,
    },
    /// A key file could not be read or used.
    #[error("key: {0}")]
    Key(String),
    /// The artifact was refused by verification.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |error| Error::Io { path, error }
}
