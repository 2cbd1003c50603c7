//! Deployment identifiers.
use std::fmt;

use serde::{Deserialize, Serialize};

/// A deployment id: exactly 16 lowercase hex characters (8 random bytes), as upstream mints them.
///
/// Parsing is the only way in, so an id can never contain a path separator, `.` or `..`, and the
/// storage adapters may use it as a file name without further checks.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeploymentId(String);

/// Why a string is not a deployment id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid deployment id {0:?}: expected 16 lowercase hex characters")]
pub struct InvalidId(pub String);

impl DeploymentId {
    /// Builds an id from 8 random bytes supplied by the caller.
    pub fn from_random_bytes(bytes: [u8; 8]) -> Self {
        let mut s = String::with_capacity(16);
        for b in bytes {
            s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        DeploymentId(s)
    }

    /// Parses an id, rejecting anything that is not 16 lowercase hex characters.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(DeploymentId(s.to_owned()))
        } else {
            Err(InvalidId(s.to_owned()))
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DeploymentId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        DeploymentId::parse(&s)
    }
}

impl From<DeploymentId> for String {
    fn from(id: DeploymentId) -> String {
        id.0
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeploymentId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_escapes() {
        for bad in [
            "",
            ".",
            "..",
            "../escape",
            "a/b",
            "c:\\windows",
            "0123456789abcdeF",
            "0123456789abcde/",
        ] {
            assert!(
                DeploymentId::parse(bad).is_err(),
                "{bad:?} must be rejected"
            );
        }
    }

    proptest! {
        #[test]
        fn random_bytes_round_trip(bytes in any::<[u8; 8]>()) {
            let id = DeploymentId::from_random_bytes(bytes);
            prop_assert_eq!(DeploymentId::parse(id.as_str()).unwrap(), id);
        }

        #[test]
        fn parsed_ids_are_safe_file_names(s in ".{0,20}") {
            if let Ok(id) = DeploymentId::parse(&s) {
                prop_assert!(!id.as_str().contains(['/', '\\', '.']));
                prop_assert_eq!(id.as_str().len(), 16);
            }
        }
    }
}
