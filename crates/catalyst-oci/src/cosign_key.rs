//! cosign's encrypted private-key format (`ENCRYPTED SIGSTORE PRIVATE KEY`, formerly `ENCRYPTED
//! COSIGN PRIVATE KEY`): base64 JSON `{kdf: scrypt{N,r,p}, salt}, cipher: nacl/secretbox{nonce},
//! ciphertext}` whose plaintext is the PKCS#8 DER private key. NaCl's box puts the 16-byte tag
//! before the ciphertext.

use base64::Engine as _;
use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const TAG: usize = 16;
/// The PEM label cosign writes today.
pub(crate) const LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn derive(password: &[u8], salt: &[u8], p: &ScryptParams) -> Result<[u8; 32]> {
    if !p.n.is_power_of_two() || p.n < 2 || p.n > 1 << 20 {
        return Err(Error::Key(format!("unsupported scrypt N={}", p.n)));
    }
    let params = scrypt::Params::new(p.n.trailing_zeros() as u8, p.r, p.p, 32)
        .map_err(|e| Error::Key(format!("bad scrypt parameters: {e}")))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut key)
        .map_err(|e| Error::Key(format!("scrypt: {e}")))?;
    Ok(key)
}

/// Decrypts the PEM body (already base64-decoded) into PKCS#8 DER.
pub(crate) fn decrypt(body: &[u8], password: &[u8]) -> Result<Vec<u8>> {
    let bad = |d: &str| Error::Key(format!("encrypted cosign key: {d}"));
    let env: Envelope = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
    if env.kdf.name != "scrypt" || env.cipher.name != "nacl/secretbox" {
        return Err(bad(&format!(
            "unsupported kdf {:?} / cipher {:?}",
            env.kdf.name, env.cipher.name
        )));
    }
    let salt = B64
        .decode(&env.kdf.salt)
        .map_err(|_| bad("salt is not base64"))?;
    let nonce = B64
        .decode(&env.cipher.nonce)
        .map_err(|_| bad("nonce is not base64"))?;
    let sealed = B64
        .decode(&env.ciphertext)
        .map_err(|_| bad("ciphertext is not base64"))?;
    if nonce.len() != 24 || sealed.len() < TAG {
        return Err(bad("nonce or ciphertext has the wrong length"));
    }
    let key = derive(password, &salt, &env.kdf.params)?;
    let cipher = XSalsa20Poly1305::new(&key.into());
    let (tag, data) = sealed.split_at(TAG);
    let mut buf = data.to_vec();
    cipher
        .decrypt_in_place_detached(
            crypto_secretbox::Nonce::from_slice(&nonce),
            b"",
            &mut buf,
            crypto_secretbox::Tag::from_slice(tag),
        )
        .map_err(|_| {
            Error::Key("wrong password for the encrypted key (or the key file is damaged)".into())
        })?;
    Ok(buf)
}

/// Encrypts PKCS#8 DER the way cosign does (scrypt N=2^`log_n`, r=8, p=1); returns the PEM body.
pub(crate) fn encrypt(der: &[u8], password: &[u8], log_n: u8) -> Result<Vec<u8>> {
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let params = ScryptParams {
        n: 1u64 << log_n,
        r: 8,
        p: 1,
    };
    let key = derive(password, &salt, &params)?;
    let cipher = XSalsa20Poly1305::new(&key.into());
    let mut buf = der.to_vec();
    let tag = cipher
        .encrypt_in_place_detached(crypto_secretbox::Nonce::from_slice(&nonce), b"", &mut buf)
        .map_err(|_| Error::Key("encryption failed".into()))?;
    let mut sealed = tag.to_vec();
    sealed.extend_from_slice(&buf);
    let env = Envelope {
        kdf: Kdf {
            name: "scrypt".into(),
            params,
            salt: B64.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: B64.encode(nonce),
        },
        ciphertext: B64.encode(sealed),
    };
    serde_json::to_vec(&env).map_err(|e| Error::Key(e.to_string()))
}

/// Wraps `body` in a PEM block labelled `label` (64-column base64).
pub(crate) fn pem(label: &str, body: &[u8]) -> String {
    let b64 = B64.encode(body);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The base64-decoded body of the PEM block labelled `label`, if present.
pub(crate) fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = text[start..].find(&end)? + start;
    let b64: String = text[start..stop].split_whitespace().collect();
    B64.decode(b64).ok()
}
