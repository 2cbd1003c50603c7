//! ECDSA P-256 keys and cosign-compatible signatures.
//!
//! A signature is cosign's: the simple-signing JSON payload naming the manifest digest, signed with
//! ECDSA P-256 over SHA-256 (ASN.1 DER, base64 in the `dev.cosignproject.cosign/signature`
//! annotation), stored as a layer of media type `application/vnd.dev.cosign.simplesigning.v1+json`
//! in an OCI manifest tagged `sha256-<hex>.sig` in the artifact's repository. Keys are PEM:
//! PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) private keys, SPKI (`PUBLIC KEY`) public keys
//! — the format `cosign public-key` prints.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey as EcSigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use serde::{Deserialize, Serialize};

use crate::manifest::{Descriptor, Manifest};
use crate::store::Repo;
use crate::{cosign_key, io_err, media, Digest, Error, Result};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A private signing key. `Debug` shows only the key id.
#[derive(Clone)]
pub struct SigningKey {
    inner: EcSigningKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, <redacted>)", self.public_key().id())
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self {
            inner: EcSigningKey::random(&mut rand::rngs::OsRng),
        }
    }

    /// Reads a PEM private key: PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY`, or cosign's
    /// `ENCRYPTED SIGSTORE PRIVATE KEY` / `ENCRYPTED COSIGN PRIVATE KEY` (needs `password`).
    pub fn from_pem(text: &str, password: Option<&[u8]>) -> Result<Self> {
        let text = text.trim();
        for label in [cosign_key::LABEL, "ENCRYPTED COSIGN PRIVATE KEY"] {
            if text.contains(&format!("BEGIN {label}")) {
                let body = cosign_key::pem_body(text, label)
                    .ok_or_else(|| Error::Key(format!("{label}: the PEM body is not base64")))?;
                let password = password.ok_or_else(|| {
                    Error::Key("the key is encrypted: set COSIGN_PASSWORD (or CATALYST_KEY_PASSWORD) to its password".into())
                })?;
                let der = cosign_key::decrypt(&body, password)?;
                let secret = p256::SecretKey::from_pkcs8_der(&der).map_err(|e| {
                    Error::Key(format!("decrypted key is not a P-256 PKCS#8 key: {e}"))
                })?;
                return Ok(Self {
                    inner: EcSigningKey::from(secret),
                });
            }
        }
        let secret = if text.contains("BEGIN EC PRIVATE KEY") {
            p256::SecretKey::from_sec1_pem(text)
                .map_err(|e| Error::Key(format!("EC PRIVATE KEY: {e}")))?
        } else {
            p256::SecretKey::from_pkcs8_pem(text)
                .map_err(|e| Error::Key(format!("not a PKCS#8 P-256 private key: {e}")))?
        };
        Ok(Self {
            inner: EcSigningKey::from(secret),
        })
    }

    /// Reads a private key file (`password` for cosign's encrypted format).
    pub fn load(path: &Path, password: Option<&[u8]>) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        Self::from_pem(&text, password).map_err(|e| Error::Key(format!("{}: {e}", path.display())))
    }

    /// The key in cosign's encrypted format (scrypt N=2^`log_n`, r=8, p=1; cosign uses 15),
    /// which `cosign sign --key` reads with the same password.
    pub fn to_encrypted_pem(&self, password: &[u8], log_n: u8) -> Result<String> {
        let der = self
            .inner
            .to_pkcs8_der()
            .map_err(|e| Error::Key(e.to_string()))?;
        let body = cosign_key::encrypt(der.as_bytes(), password, log_n)?;
        Ok(cosign_key::pem(cosign_key::LABEL, &body))
    }

    /// The key as PKCS#8 PEM (handle as a secret).
    pub fn to_pem(&self) -> Result<String> {
        self.inner
            .to_pkcs8_pem(LineEnding::LF)
            .map(|z| z.to_string())
            .map_err(|e| Error::Key(e.to_string()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::new(*self.inner.verifying_key(), "generated")
    }

    /// Signs `message` (ECDSA P-256, SHA-256), returning the ASN.1 DER signature.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig: Signature = self.inner.sign(message);
        sig.to_der().as_bytes().to_vec()
    }
}

/// A public key that may verify signatures, with its id and where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    inner: VerifyingKey,
    id: String,
    label: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} from {})", self.id, self.label)
    }
}

impl PublicKey {
    fn new(inner: VerifyingKey, label: &str) -> Self {
        let der = inner
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        Self {
            id: Digest::of(&der).hex()[..16].to_string(),
            inner,
            label: label.to_string(),
        }
    }

    /// Reads an SPKI `PUBLIC KEY` PEM (as `cosign public-key` prints); `label` names its source.
    pub fn from_pem(text: &str, label: &str) -> Result<Self> {
        let key = p256::PublicKey::from_public_key_pem(text.trim())
            .map_err(|e| Error::Key(format!("{label}: not a P-256 public key PEM: {e}")))?;
        Ok(Self::new(VerifyingKey::from(key), label))
    }

    /// Reads a public key file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        Self::from_pem(&text, &path.display().to_string())
    }

    /// Reads every `*.pub` and `*.pem` file in `dir` (sorted by name).
    pub fn load_dir(dir: &Path) -> Result<Vec<Self>> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("pub" | "pem"))
            })
            .collect();
        paths.sort();
        let keys = paths
            .iter()
            .map(|p| Self::load(p))
            .collect::<Result<Vec<_>>>()?;
        if keys.is_empty() {
            return Err(Error::Key(format!(
                "{}: no public keys (*.pub or *.pem) found",
                dir.display()
            )));
        }
        Ok(keys)
    }

    /// The key as SPKI PEM.
    pub fn to_pem(&self) -> Result<String> {
        self.inner
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| Error::Key(e.to_string()))
    }

    /// A short id: the first 16 hex digits of the SHA-256 of the DER public key.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the key came from (a file path).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether `der_signature` is a valid signature of `message` by this key.
    pub fn verify(&self, message: &[u8], der_signature: &[u8]) -> bool {
        Signature::from_der(der_signature)
            .map(|s| self.inner.verify(message, &s).is_ok())
            .unwrap_or(false)
    }
}

/// cosign's simple-signing payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimpleSigning {
    /// The signed claims.
    pub critical: Critical,
    /// Unsigned-by-convention extras (cosign writes `null`).
    pub optional: Option<serde_json::Value>,
}

/// The `critical` section of a simple-signing payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Critical {
    /// The repository the signature was made for.
    pub identity: Identity,
    /// The signed manifest digest.
    pub image: Image,
    /// Always `cosign container image signature`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `critical.identity`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    /// `host/repository`.
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    /// The manifest digest.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// The payload cosign signs for `digest` in repository `identity`.
pub fn simple_signing_payload(identity: &str, digest: &Digest) -> Vec<u8> {
    let payload = SimpleSigning {
        critical: Critical {
            identity: Identity {
                docker_reference: identity.to_string(),
            },
            image: Image {
                docker_manifest_digest: digest.to_string(),
            },
            kind: "cosign container image signature".into(),
        },
        optional: None,
    };
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// One signature found on an artifact.
#[derive(Debug, Clone)]
pub struct FoundSignature {
    /// The payload layer's descriptor.
    pub descriptor: Descriptor,
    /// The payload bytes (digest-checked).
    pub payload: Vec<u8>,
    /// The base64 signature annotation, if any.
    pub signature: Option<String>,
    /// Our key-id annotation, if any.
    pub key_id: Option<String>,
}

/// The signature manifest of `digest`, if any.
pub async fn signature_manifest(
    repo: &dyn Repo,
    digest: &Digest,
) -> Result<Option<(Digest, Manifest)>> {
    let Some(sig_digest) = repo.resolve_tag(&digest.signature_tag()).await? else {
        return Ok(None);
    };
    let Some(bytes) = repo.manifest(&sig_digest).await? else {
        return Ok(None);
    };
    Ok(Some((sig_digest, Manifest::parse(&bytes)?)))
}

/// Every simple-signing layer stored for `digest`.
pub async fn signatures(repo: &dyn Repo, digest: &Digest) -> Result<Vec<FoundSignature>> {
    let Some((_, manifest)) = signature_manifest(repo, digest).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == media::COSIGN_SIMPLESIGNING)
    {
        let payload = repo.blob(&layer.digest).await?;
        out.push(FoundSignature {
            payload,
            signature: layer.annotations.get(media::ANN_COSIGN_SIGNATURE).cloned(),
            key_id: layer.annotations.get(media::ANN_KEY_ID).cloned(),
            descriptor: layer.clone(),
        });
    }
    Ok(out)
}

/// Signs artifact `digest` in `repo` with `key`, adding a layer to its signature manifest (a
/// previous signature by the same key is replaced). Returns the signature manifest digest.
pub async fn sign(repo: &dyn Repo, digest: &Digest, key: &SigningKey) -> Result<Digest> {
    crate::store::fetch_manifest(repo, digest).await?;
    let payload = simple_signing_payload(&repo.identity(), digest);
    let signature = B64.encode(key.sign(&payload));
    let key_id = key.public_key().id().to_string();
    let layer = Descriptor::of(media::COSIGN_SIMPLESIGNING, &payload)
        .with_annotation(media::ANN_COSIGN_SIGNATURE, &signature)
        .with_annotation(media::ANN_KEY_ID, &key_id);
    let mut layers = match signature_manifest(repo, digest).await? {
        Some((_, m)) => m.layers,
        None => Vec::new(),
    };
    layers.retain(|l| l.annotations.get(media::ANN_KEY_ID) != Some(&key_id));
    layers.push(layer);
    repo.put_blob(&Digest::of(&payload), payload).await?;
    let config = cosign_config(&layers);
    let config_desc = Descriptor::of(media::OCI_CONFIG, &config);
    repo.put_blob(&config_desc.digest, config).await?;
    let manifest = Manifest::new(config_desc, layers).to_bytes();
    repo.put_manifest(
        media::OCI_MANIFEST,
        &manifest,
        Some(&digest.signature_tag()),
    )
    .await
}

/// The image config cosign writes for a signature manifest (content is not verified by anyone;
/// we write the same shape so tools that read it are not surprised).
fn cosign_config(layers: &[Descriptor]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {}
    }))
    .unwrap_or_default()
}

/// Why a set of signatures does not admit an artifact, before it becomes a [`crate::Refusal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Accepted: verified by the key with this id.
    Verified(String),
    /// No signature at all.
    Unsigned,
    /// A signature by a trusted key (by its key-id annotation) does not verify, or is malformed.
    Bad(String),
    /// Signatures verify under no trusted key; the key ids they claim.
    UnknownKey(Vec<String>),
    /// A trusted key signed a payload for another digest.
    WrongDigest(Digest),
}

/// Checks `found` signatures of `digest` against `keys`.
pub fn check_signatures(
    digest: &Digest,
    found: &[FoundSignature],
    keys: &[PublicKey],
) -> SignatureCheck {
    if found.is_empty() {
        return SignatureCheck::Unsigned;
    }
    let mut bad: Option<String> = None;
    let mut wrong_digest: Option<Digest> = None;
    let mut claimed = Vec::new();
    for sig in found {
        let Some(der) = sig
            .signature
            .as_deref()
            .and_then(|s| B64.decode(s.trim()).ok())
        else {
            bad.get_or_insert_with(|| {
                format!(
                    "signature layer {} has no valid base64 signature annotation",
                    sig.descriptor.digest
                )
            });
            continue;
        };
        if let Some(id) = &sig.key_id {
            claimed.push(id.clone());
        }
        let Some(key) = keys.iter().find(|k| k.verify(&sig.payload, &der)) else {
            if let Some(id) = &sig.key_id {
                if keys.iter().any(|k| k.id() == id) {
                    bad.get_or_insert_with(|| {
                        format!(
                            "the signature by trusted key {id} does not match its payload {}",
                            sig.descriptor.digest
                        )
                    });
                }
            }
            continue;
        };
        let signed: Option<SimpleSigning> = serde_json::from_slice(&sig.payload).ok();
        match signed.map(|p| p.critical.image.docker_manifest_digest) {
            Some(d) if d == digest.to_string() => {
                return SignatureCheck::Verified(key.id().to_string())
            }
            Some(d) => {
                if let Ok(d) = d.parse() {
                    wrong_digest.get_or_insert(d);
                } else {
                    bad.get_or_insert_with(|| {
                        format!("signed payload names an invalid digest {d:?}")
                    });
                }
            }
            None => {
                bad.get_or_insert_with(|| {
                    "signed payload is not a cosign simple-signing document".to_string()
                });
            }
        }
    }
    if let Some(d) = wrong_digest {
        return SignatureCheck::WrongDigest(d);
    }
    if let Some(reason) = bad {
        return SignatureCheck::Bad(reason);
    }
    claimed.sort();
    claimed.dedup();
    SignatureCheck::UnknownKey(claimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_cosign_shaped() {
        let d = Digest::of(b"m");
        let p = String::from_utf8(simple_signing_payload("reg.io/a/bp-x", &d)).unwrap();
        assert_eq!(
            p,
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"reg.io/a/bp-x"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
    }

    #[test]
    fn keys_round_trip_and_verify() {
        let k = SigningKey::generate();
        let pem = k.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let k2 = SigningKey::from_pem(&pem, None).unwrap();
        let pubk = PublicKey::from_pem(&k.public_key().to_pem().unwrap(), "t").unwrap();
        let sig = k2.sign(b"hello");
        assert!(pubk.verify(b"hello", &sig));
        assert!(!pubk.verify(b"hullo", &sig));
        assert!(!format!("{k:?}").contains("PRIVATE"));
        assert!(SigningKey::from_pem("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nx\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----", Some(b"")).is_err());
        // cosign's encrypted format round-trips; a wrong or missing password is explained.
        let enc = k.to_encrypted_pem(b"pw", 10).unwrap();
        assert!(enc.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let k3 = SigningKey::from_pem(&enc, Some(b"pw")).unwrap();
        assert!(pubk.verify(b"x", &k3.sign(b"x")));
        let err = SigningKey::from_pem(&enc, Some(b"nope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("wrong password"), "{err}");
        let err = SigningKey::from_pem(&enc, None).unwrap_err().to_string();
        assert!(err.contains("COSIGN_PASSWORD"), "{err}");
    }
}
