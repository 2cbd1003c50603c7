//! The GitOps write path's [`Admission`] port over `catalyst-oci`: each Blueprint an install,
//! upgrade or promotion pins is looked up as the artifact `bp-<name>:<version>` in the
//! Sovereign's artifact store (an OCI image-layout directory, `<data-dir>/oci` by default, or a
//! registry, `--registry`) and, when trusted keys are configured, passed through
//! [`catalyst_oci::admit`]: the digest it returns is what the Flux source pins.
//!
//! Without trusted keys the digest is still resolved and pinned when the artifact exists; a
//! missing artifact keeps the catalog's pin (digest if it records one, else the exact tag) with
//! a warning. With trusted keys, an artifact that is missing, unsigned, badly signed or signed
//! by an unknown key refuses the call.
use std::future::Future;
use std::path::PathBuf;

use catalyst_gitops::{Admission, AdmissionError};
use catalyst_oci::reference::Location;
use catalyst_oci::store::{resolve, Opener};
use catalyst_oci::{Digest, Error, Reference, TrustPolicy};

/// Where the Sovereign's Blueprint artifacts live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactStore {
    /// An OCI image-layout directory; the artifact of `bp-x` 1.2.0 is the entry `bp-x:1.2.0`
    /// (what `catalyst blueprint package -o DIR` and `mirror … oci:DIR` write).
    Layout(PathBuf),
    /// A registry: the artifact of `bp-x` 1.2.0 is `<host>/<namespace>/bp-x:1.2.0` (what
    /// `catalyst blueprint push DIR <host>/<namespace>/bp-x` writes).
    Registry {
        /// `host[:port]`.
        host: String,
        /// Repository path prefix, possibly empty.
        namespace: String,
    },
}

impl ArtifactStore {
    /// Parses `--registry`: `[oci://]host[:port][/namespace]`.
    pub fn registry(text: &str) -> Result<Self, String> {
        let trimmed = text.trim().trim_end_matches('/');
        let probe = format!("{trimmed}/bp-probe");
        let parsed = Reference::parse(&probe).map_err(|e| format!("--registry {text:?}: {e}"))?;
        match parsed.location {
            Location::Registry { host, repository }
                if parsed.tag.is_none() && parsed.digest.is_none() =>
            {
                let namespace = repository
                    .strip_suffix("bp-probe")
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_string();
                Ok(Self::Registry { host, namespace })
            }
            _ => Err(format!(
                "--registry {text:?}: expected host[:port][/namespace], e.g. ghcr.io/openova-io"
            )),
        }
    }

    /// The base URL Flux pulls from (`oci://host/namespace`), for a registry.
    pub fn flux_url(&self) -> Option<String> {
        match self {
            Self::Registry { host, namespace } if namespace.is_empty() => {
                Some(format!("oci://{host}"))
            }
            Self::Registry { host, namespace } => Some(format!("oci://{host}/{namespace}")),
            Self::Layout(_) => None,
        }
    }

    /// The reference of `blueprint` at `version` (by `digest` when given). Tags cannot hold
    /// `+`; like `catalyst blueprint push`, it is written `_`.
    fn reference(&self, blueprint: &str, version: &str, digest: Option<Digest>) -> Reference {
        let location = match self {
            Self::Layout(path) => Location::Layout {
                path: path.clone(),
                name: Some(blueprint.to_string()),
            },
            Self::Registry { host, namespace } => Location::Registry {
                host: host.clone(),
                repository: if namespace.is_empty() {
                    blueprint.to_string()
                } else {
                    format!("{namespace}/{blueprint}")
                },
            },
        };
        Reference {
            location,
            tag: Some(version.replace('+', "_")),
            digest,
        }
    }
}

/// Admits Blueprint artifacts from an [`ArtifactStore`] under a [`TrustPolicy`].
pub struct OciAdmission {
    store: ArtifactStore,
    opener: Opener,
    policy: TrustPolicy,
}

impl OciAdmission {
    /// Artifacts from `store` (registries opened with `opener`'s client and credentials),
    /// checked against `policy`; an empty policy checks no signature.
    pub fn new(store: ArtifactStore, opener: Opener, policy: TrustPolicy) -> Self {
        Self {
            store,
            opener,
            policy,
        }
    }

    /// Whether a signature by a trusted key is required.
    pub fn requires_signatures(&self) -> bool {
        !self.policy.keys.is_empty() || !self.policy.bundles.is_empty()
    }

    /// The store artifacts are looked up in.
    pub fn store(&self) -> &ArtifactStore {
        &self.store
    }

    /// [`Admission::admit`], asynchronously.
    pub async fn check(
        &self,
        blueprint: &str,
        version: &str,
        digest: Option<&str>,
    ) -> Result<Option<String>, AdmissionError> {
        let known = match digest {
            Some(d) => Some(d.parse::<Digest>().map_err(|e| {
                AdmissionError::Refused(format!("the catalog's digest is unusable: {e}"))
            })?),
            None => None,
        };
        let reference = self.store.reference(blueprint, version, known);
        let outcome = match self.opener.open(&reference, false) {
            Ok(repo) if self.requires_signatures() => {
                catalyst_oci::admit(repo.as_ref(), &reference, &self.policy)
                    .await
                    .map(|a| a.digest)
            }
            Ok(repo) => match resolve(repo.as_ref(), &reference.target()).await {
                // A digest from the catalog is only an address: check it exists.
                Ok(d) => match repo.manifest(&d).await {
                    Ok(Some(_)) => Ok(d),
                    Ok(None) => Err(Error::NotFound(format!(
                        "manifest {d} in {}",
                        repo.describe()
                    ))),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match outcome {
            Ok(d) => {
                tracing::info!(%blueprint, %version, digest = %d, signed = self.requires_signatures(), "Admitted a Blueprint artifact.");
                Ok(Some(d.to_string()))
            }
            Err(Error::Refused(refusal)) => Err(AdmissionError::Refused(refusal.to_string())),
            Err(Error::NotFound(what)) if self.requires_signatures() => {
                Err(AdmissionError::Refused(format!(
                    "no artifact {reference} in the artifact store ({what}); push and sign it first"
                )))
            }
            Err(Error::NotFound(what)) => {
                tracing::warn!(%blueprint, %version, artifact = %reference, %what, "No Blueprint artifact in the store and no trusted keys: pinning the catalog's version instead of a verified digest.");
                Ok(None)
            }
            Err(e @ (Error::DigestMismatch { .. } | Error::Malformed { .. })) => Err(
                AdmissionError::Refused(format!("artifact {reference}: {e}")),
            ),
            Err(e) => Err(AdmissionError::Unavailable(format!(
                "artifact {reference}: {e}"
            ))),
        }
    }
}

impl Admission for OciAdmission {
    fn admit(
        &self,
        blueprint: &str,
        version: &str,
        digest: Option<&str>,
    ) -> Result<Option<String>, AdmissionError> {
        block_on(self.check(blueprint, version, digest))?
    }
}

/// Runs `f` to completion from the write path's blocking thread (the handlers call the
/// Sovereign through `spawn_blocking`, whose threads can enter the runtime); outside any
/// runtime (a synchronous caller), on a runtime of its own.
fn block_on<F: Future>(f: F) -> Result<F::Output, AdmissionError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => Ok(handle.block_on(f)),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(f))
            .map_err(|e| AdmissionError::Unavailable(format!("cannot start a runtime: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_flag() {
        assert_eq!(
            ArtifactStore::registry("oci://ghcr.io/openova-io/"),
            Ok(ArtifactStore::Registry {
                host: "ghcr.io".into(),
                namespace: "openova-io".into()
            })
        );
        let local = ArtifactStore::registry("127.0.0.1:5000").unwrap();
        assert_eq!(local.flux_url().as_deref(), Some("oci://127.0.0.1:5000"));
        assert_eq!(
            local.reference("bp-db", "1.2.0+build.1", None).to_string(),
            "127.0.0.1:5000/bp-db:1.2.0_build.1"
        );
        assert!(ArtifactStore::registry("not a host").is_err());
        assert!(ArtifactStore::registry("ghcr.io/x:latest").is_err());
    }
}
