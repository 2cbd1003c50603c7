//! The install trust policy the GitOps path calls: resolve the reference to a digest, check that
//! the content hashes to what it claims, check a signature by a trusted key (or membership in a
//! verified bundle), and hand back the digest to write downstream — or a [`Refusal`] that says
//! exactly why not.

use crate::bundle::Bundle;
use crate::sign::{check_signatures, signatures, PublicKey, SignatureCheck};
use crate::store::{fetch_image_manifest, resolve, Opener, Repo};
use crate::{Digest, Error, Reference, Result};

/// The Sovereign's trust settings.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    /// Keys whose cosign signatures are accepted.
    pub keys: Vec<PublicKey>,
    /// Bundles already verified against trusted keys; a listed digest is accepted.
    pub bundles: Vec<Bundle>,
}

/// Why an artifact is refused. Every variant names the artifact digest it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No signature exists for the digest (and no trusted bundle lists it).
    #[error("artifact {digest} is not signed (no signature under tag sha256-{}.sig and no trusted bundle lists it)", digest.hex())]
    Unsigned {
        /// The artifact.
        digest: Digest,
    },
    /// A signature is malformed or, by its key id, made by a trusted key yet does not verify.
    #[error("artifact {digest} has a bad signature: {reason}")]
    BadSignature {
        /// The artifact.
        digest: Digest,
        /// What was wrong.
        reason: String,
    },
    /// Signatures exist but none verifies under a trusted key.
    #[error("artifact {digest} is signed, but by no trusted key (signature key ids: {})", if key_ids.is_empty() { "not stated".to_string() } else { key_ids.join(", ") })]
    UnknownKey {
        /// The artifact.
        digest: Digest,
        /// The key ids the signatures claim (ours carry one; cosign's do not).
        key_ids: Vec<String>,
    },
    /// Content does not hash to its digest, or a signature vouches for another digest.
    #[error("digest mismatch in {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked, naming the artifact.
        what: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
    },
}

/// How an admitted artifact was vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifiedBy {
    /// A cosign signature by the key with this id.
    Key(String),
    /// A verified bundle.
    Bundle,
}

/// An artifact that passed the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The digest to pin downstream (never the tag).
    pub digest: Digest,
    /// The reference pinned to that digest.
    pub pinned: String,
    /// What vouched for it.
    pub verified_by: VerifiedBy,
}

/// Resolves `reference` in `repo`, verifies it under `policy` and returns the digest to pin.
/// Refusals come back as [`Error::Refused`]; transport and lookup problems as other errors.
pub async fn admit(
    repo: &dyn Repo,
    reference: &Reference,
    policy: &TrustPolicy,
) -> Result<Admitted> {
    let digest = resolve(repo, &reference.target()).await?;
    let verified_by = verify_digest(repo, &digest, policy).await?;
    Ok(Admitted {
        pinned: reference.pinned(&digest).to_string(),
        digest,
        verified_by,
    })
}

/// Opens the repository `reference` points into (a registry, or a layout directory for an
/// air-gapped Sovereign) and [`admit`]s it: the one call the GitOps path needs.
pub async fn admit_reference(
    opener: &Opener,
    reference: &Reference,
    policy: &TrustPolicy,
) -> Result<Admitted> {
    let repo = opener.open(reference, false)?;
    admit(repo.as_ref(), reference, policy).await
}

/// Verifies the artifact `digest`: every blob hashes to its descriptor and a trusted key (or a
/// trusted bundle) vouches for the manifest digest.
pub async fn verify_digest(
    repo: &dyn Repo,
    digest: &Digest,
    policy: &TrustPolicy,
) -> Result<VerifiedBy> {
    if policy.keys.is_empty() && policy.bundles.is_empty() {
        return Err(Error::Key(
            "no trusted keys: pass --key FILE or --trusted-keys DIR".into(),
        ));
    }
    let manifest = fetch_image_manifest(repo, digest)
        .await
        .map_err(|e| mismatch_as_refusal(e, digest))?;
    for blob in manifest.blobs() {
        repo.blob(&blob.digest).await.map_err(|e| match e {
            Error::DigestMismatch {
                expected, actual, ..
            } => Refusal::DigestMismatch {
                what: format!(
                    "layer {expected} ({}) of artifact {digest}",
                    blob.media_type
                ),
                expected,
                actual,
            }
            .into(),
            other => other,
        })?;
    }
    let found = signatures(repo, digest)
        .await
        .map_err(|e| mismatch_as_refusal(e, digest))?;
    let refusal = match check_signatures(digest, &found, &policy.keys) {
        SignatureCheck::Verified(id) => return Ok(VerifiedBy::Key(id)),
        SignatureCheck::Unsigned => Refusal::Unsigned {
            digest: digest.clone(),
        },
        SignatureCheck::Bad(reason) => Refusal::BadSignature {
            digest: digest.clone(),
            reason,
        },
        SignatureCheck::UnknownKey(key_ids) => Refusal::UnknownKey {
            digest: digest.clone(),
            key_ids,
        },
        SignatureCheck::WrongDigest(actual) => Refusal::DigestMismatch {
            what: format!("signature payload for artifact {digest}"),
            expected: digest.clone(),
            actual,
        },
    };
    if policy.bundles.iter().any(|b| b.contains(digest)) {
        return Ok(VerifiedBy::Bundle);
    }
    Err(refusal.into())
}

fn mismatch_as_refusal(e: Error, digest: &Digest) -> Error {
    match e {
        Error::DigestMismatch {
            what,
            expected,
            actual,
        } => Refusal::DigestMismatch {
            what: format!("{what} (artifact {digest})"),
            expected,
            actual,
        }
        .into(),
        other => other,
    }
}
