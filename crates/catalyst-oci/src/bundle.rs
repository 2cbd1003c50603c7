//! Signed bundles: a list of artifact digests signed once, so a whole Blueprint set can be
//! verified offline (e.g. next to a mirrored image-layout directory).
//!
//! The file is a DSSE envelope (`payloadType` = `application/vnd.catalyst.bundle.v1+json`,
//! base64 `payload`, `signatures[{keyid, sig}]`); the signature is ECDSA P-256 over the DSSE
//! pre-authentication encoding of the payload.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::sign::{PublicKey, SigningKey};
use crate::{media, Digest, Error, Refusal, Result};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The signed content: which artifacts, by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The artifacts.
    pub artifacts: Vec<BundleEntry>,
}

/// One artifact in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleEntry {
    /// Where it was when bundled (for people; not trusted).
    pub reference: String,
    /// The manifest digest (trusted).
    pub digest: Digest,
}

impl Bundle {
    /// Whether `digest` is listed.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.artifacts.iter().any(|a| &a.digest == digest)
    }
}

/// A DSSE envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The payload's media type.
    pub payload_type: String,
    /// The base64 payload.
    pub payload: String,
    /// The signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The signing key's id.
    pub keyid: String,
    /// The base64 DER signature.
    pub sig: String,
}

/// DSSE pre-authentication encoding.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Signs `bundle` with `key`; returns the envelope file's bytes.
pub fn sign_bundle(bundle: &Bundle, key: &SigningKey) -> Vec<u8> {
    let payload = serde_json::to_vec(bundle).unwrap_or_default();
    let sig = key.sign(&pae(media::BUNDLE_PAYLOAD, &payload));
    let envelope = Envelope {
        payload_type: media::BUNDLE_PAYLOAD.into(),
        payload: B64.encode(&payload),
        signatures: vec![EnvelopeSignature {
            keyid: key.public_key().id().to_string(),
            sig: B64.encode(sig),
        }],
    };
    serde_json::to_vec_pretty(&envelope).unwrap_or_default()
}

/// Verifies an envelope file against `keys` and returns the bundle it vouches for.
pub fn verify_bundle(bytes: &[u8], keys: &[PublicKey]) -> Result<Bundle> {
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| Error::Malformed {
        what: "bundle".into(),
        detail: e.to_string(),
    })?;
    if envelope.payload_type != media::BUNDLE_PAYLOAD {
        return Err(Error::Malformed {
            what: "bundle".into(),
            detail: format!(
                "payloadType {:?} is not {}",
                envelope.payload_type,
                media::BUNDLE_PAYLOAD
            ),
        });
    }
    let payload = B64
        .decode(envelope.payload.trim())
        .map_err(|e| Error::Malformed {
            what: "bundle".into(),
            detail: format!("payload is not base64: {e}"),
        })?;
    let digest = Digest::of(&payload);
    let message = pae(&envelope.payload_type, &payload);
    let verified = envelope.signatures.iter().any(|s| {
        B64.decode(s.sig.trim())
            .map(|der| keys.iter().any(|k| k.verify(&message, &der)))
            .unwrap_or(false)
    });
    if !verified {
        let trusted_claim = envelope
            .signatures
            .iter()
            .any(|s| keys.iter().any(|k| k.id() == s.keyid));
        return Err(if envelope.signatures.is_empty() {
            Refusal::Unsigned { digest }
        } else if trusted_claim {
            Refusal::BadSignature {
                digest,
                reason: "the bundle signature does not match its content".into(),
            }
        } else {
            Refusal::UnknownKey {
                digest,
                key_ids: envelope
                    .signatures
                    .iter()
                    .map(|s| s.keyid.clone())
                    .collect(),
            }
        }
        .into());
    }
    serde_json::from_slice(&payload).map_err(|e| Error::Malformed {
        what: "bundle payload".into(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_tamper() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let bundle = Bundle {
            artifacts: vec![BundleEntry {
                reference: "r.io/bp-a:1.0.0".into(),
                digest: Digest::of(b"a"),
            }],
        };
        let file = sign_bundle(&bundle, &key);
        let got = verify_bundle(&file, &[key.public_key()]).unwrap();
        assert_eq!(got, bundle);
        assert!(got.contains(&Digest::of(b"a")));
        let err = verify_bundle(&file, &[other.public_key()]).unwrap_err();
        assert!(
            matches!(err, Error::Refused(Refusal::UnknownKey { .. })),
            "{err}"
        );
        let mut env: Envelope = serde_json::from_slice(&file).unwrap();
        let forged = Bundle {
            artifacts: vec![BundleEntry {
                reference: "r.io/bp-a:1.0.0".into(),
                digest: Digest::of(b"evil"),
            }],
        };
        env.payload = B64.encode(serde_json::to_vec(&forged).unwrap());
        let err =
            verify_bundle(&serde_json::to_vec(&env).unwrap(), &[key.public_key()]).unwrap_err();
        assert!(
            matches!(err, Error::Refused(Refusal::BadSignature { .. })),
            "{err}"
        );
    }
}
