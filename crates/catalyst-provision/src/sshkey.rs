//! SSH key generation for the wizard's "generate a key for me" button (`POST /api/v1/sshkey/generate`).
//!
//! A fresh Ed25519 keypair is drawn from the OS RNG on every call. The public half is returned in
//! `authorized_keys` format, the private half as an unencrypted openssh-key-v1 PEM document, and
//! nothing is kept server-side. Only the fingerprint is ever logged.
use std::fmt;

use rand::rngs::OsRng;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};

/// The comment used when no (usable) FQDN is supplied.
pub const DEFAULT_COMMENT: &str = "catalyst";

/// A freshly generated keypair, ready to hand to the wizard.
///
/// `Debug` is implemented by hand and never prints the private key.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    /// `ssh-ed25519 <base64 wire blob> <comment>` — one `authorized_keys` line, exactly 3 fields.
    pub public_key: String,
    /// The private key: openssh-key-v1, cipher `none`, PEM `OPENSSH PRIVATE KEY`, LF line
    /// endings, trailing newline.
    pub private_key: String,
    /// `SHA256:<unpadded standard base64 of sha256(public key wire blob)>`.
    pub fingerprint: String,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("public_key", &self.public_key)
            .field("private_key", &"<redacted>")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// Why a key could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum SshKeyError {
    /// The keypair could not be generated.
    #[error("could not generate Ed25519 keypair")]
    Generate(#[source] ssh_key::Error),
    /// The keypair could not be encoded in OpenSSH format.
    #[error("could not serialize private key")]
    Serialize(#[source] ssh_key::Error),
}

/// The key comment for an optional FQDN: `catalyst` when the FQDN is absent or blank, else
/// `catalyst@<fqdn>` with the FQDN trimmed and every character outside `[A-Za-z0-9.-]` removed
/// (so the `authorized_keys` line always has exactly three fields). An FQDN with no allowed
/// character at all yields `catalyst`.
pub fn key_comment(fqdn: Option<&str>) -> String {
    let cleaned: String = fqdn
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect();
    if cleaned.is_empty() {
        DEFAULT_COMMENT.to_owned()
    } else {
        format!("{DEFAULT_COMMENT}@{cleaned}")
    }
}

/// Generates a fresh Ed25519 keypair from the OS RNG, commented per [`key_comment`].
pub fn generate(fqdn: Option<&str>) -> Result<GeneratedKey, SshKeyError> {
    let mut key = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).map_err(|e| {
        tracing::error!(error = %e, "ssh key generation failed");
        SshKeyError::Generate(e)
    })?;
    key.set_comment(key_comment(fqdn));

    let private_key = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| {
            tracing::error!(error = %e, "ssh private key serialisation failed");
            SshKeyError::Serialize(e)
        })?
        .to_string();
    let public_key = key.public_key().to_openssh().map_err(|e| {
        tracing::error!(error = %e, "ssh public key serialisation failed");
        SshKeyError::Serialize(e)
    })?;
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();

    tracing::info!(fingerprint = %fingerprint, "generated ssh keypair");
    Ok(GeneratedKey {
        public_key,
        private_key,
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    use base64::Engine as _;
    use sha2::{Digest, Sha256};

    const PEM_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
    const PEM_END: &str = "-----END OPENSSH PRIVATE KEY-----\n";

    fn fields(public_key: &str) -> Vec<&str> {
        public_key.split(' ').collect()
    }

    #[test]
    fn response_shape() {
        let k = generate(Some("omantel.omani.works")).unwrap();
        assert!(!k.public_key.is_empty());
        assert!(!k.private_key.is_empty());
        assert!(!k.fingerprint.is_empty());
    }

    #[test]
    fn public_key_authorized_keys_format() {
        let k = generate(Some("omantel.omani.works")).unwrap();
        assert!(
            k.public_key.starts_with("ssh-ed25519 AAAA"),
            "{}",
            k.public_key
        );
        assert!(!k.public_key.ends_with('\n'));
        let f = fields(&k.public_key);
        assert_eq!(f.len(), 3, "{}", k.public_key);
        assert_eq!(f[0], "ssh-ed25519");
        let blob = STANDARD.decode(f[1]).expect("valid base64");
        assert!(!blob.is_empty());
        assert_eq!(f[2], "catalyst@omantel.omani.works");
    }

    #[test]
    fn public_key_default_comment() {
        for fqdn in [None, Some(""), Some("   ")] {
            let k = generate(fqdn).unwrap();
            let f = fields(&k.public_key);
            assert_eq!(f.len(), 3);
            assert_eq!(f[2], "catalyst", "fqdn {fqdn:?}");
        }
    }

    #[test]
    fn private_key_pem_shape() {
        let k = generate(None).unwrap();
        assert!(k.private_key.starts_with(PEM_BEGIN));
        assert!(k.private_key.ends_with(PEM_END));
        assert!(!k.private_key.contains('\r'));
        assert_eq!(k.private_key.matches("-----BEGIN").count(), 1);
        let body: String = k.private_key[PEM_BEGIN.len()..k.private_key.len() - PEM_END.len()]
            .lines()
            .collect();
        let der = STANDARD.decode(body).expect("PEM body is base64");
        assert!(der.starts_with(b"openssh-key-v1\0"));
    }

    #[test]
    fn fingerprint_format() {
        let k = generate(None).unwrap();
        let b64 = k
            .fingerprint
            .strip_prefix("SHA256:")
            .expect("SHA256: prefix");
        assert!(!b64.ends_with('='));
        assert_eq!(STANDARD_NO_PAD.decode(b64).unwrap().len(), 32);
    }

    #[test]
    fn fingerprint_matches_independent_computation() {
        let k = generate(Some("a.example")).unwrap();
        let blob = STANDARD.decode(fields(&k.public_key)[1]).unwrap();
        let expected = format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(&blob)));
        assert_eq!(k.fingerprint, expected);
    }

    #[test]
    fn two_calls_produce_different_keys() {
        let a = generate(None).unwrap();
        let b = generate(None).unwrap();
        assert_ne!(a.public_key, b.public_key);
        assert_ne!(a.private_key, b.private_key);
        assert_ne!(a.fingerprint, b.fingerprint);
    }

    #[test]
    fn build_key_comment() {
        assert_eq!(key_comment(None), "catalyst");
        assert_eq!(key_comment(Some("")), "catalyst");
        assert_eq!(key_comment(Some("   ")), "catalyst");
        assert_eq!(
            key_comment(Some("  omantel.omani.works \n")),
            "catalyst@omantel.omani.works"
        );
        assert_eq!(key_comment(Some("a b.example")), "catalyst@ab.example");
        assert_eq!(
            key_comment(Some("x\ty;rm -rf/_é.Co-1")),
            "catalyst@xyrm-rf.Co-1"
        );
        assert_eq!(key_comment(Some(" !! ")), "catalyst");
    }

    #[test]
    fn sanitised_comment_keeps_three_fields() {
        let k = generate(Some("my host .example")).unwrap();
        let f = fields(&k.public_key);
        assert_eq!(f.len(), 3, "{}", k.public_key);
        assert_eq!(f[2], "catalyst@myhost.example");
    }

    #[test]
    fn private_key_round_trips_to_same_public_key() {
        let k = generate(Some("omantel.omani.works")).unwrap();
        let parsed = PrivateKey::from_openssh(&k.private_key).expect("parses");
        assert!(!parsed.is_encrypted());
        assert_eq!(parsed.algorithm(), Algorithm::Ed25519);
        assert_eq!(parsed.comment(), "catalyst@omantel.omani.works");
        assert_eq!(parsed.public_key().to_openssh().unwrap(), k.public_key);
        assert_eq!(
            parsed.fingerprint(HashAlg::Sha256).to_string(),
            k.fingerprint
        );
    }

    #[test]
    fn debug_hides_private_key() {
        let k = generate(None).unwrap();
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("PRIVATE KEY"));
        assert!(!dbg.contains(&k.private_key));
        assert!(dbg.contains(&k.fingerprint));
    }
}
