//! The port through which installs, upgrades and promotions admit Blueprint artifacts: look the
//! Blueprint up in the Sovereign's artifact store, check it against the trust settings, and
//! hand back the digest to pin. The write path is synchronous and does no network IO itself;
//! an adapter (`catalyst_api::orgs::admission::OciAdmission`, over `catalyst-oci`) implements
//! this trait and is installed with [`crate::Sovereign::with_admission`].

/// Why an artifact cannot be admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// The trust settings refuse the artifact (unsigned, bad signature, unknown key, digest
    /// mismatch, or no artifact at all while signatures are required). The text says why.
    #[error("{0}")]
    Refused(String),
    /// The artifact store cannot be read (registry unreachable, authentication failed, an
    /// unreadable layout directory). Never contains a credential.
    #[error("{0}")]
    Unavailable(String),
}

/// Admits Blueprint artifacts. Called on a blocking thread, with the Organization's lock held,
/// before anything is written.
pub trait Admission: Send + Sync {
    /// Looks up `blueprint` (`bp-<name>`) at `version` — by `digest` when the catalog records
    /// one, else by the version tag — and checks it. `Ok(Some(digest))`: pin this digest.
    /// `Ok(None)`: the store has no such artifact and no signature is required; the caller
    /// keeps what it knew (the catalog's digest, else the exact tag).
    fn admit(
        &self,
        blueprint: &str,
        version: &str,
        digest: Option<&str>,
    ) -> Result<Option<String>, AdmissionError>;
}
