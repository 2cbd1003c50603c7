//! Validated names: parsing is the only way in, so the rest of the crate never re-checks them
//! and every name is safe as a path segment and a Git ref component.
use std::fmt;

use serde::{Serialize, Serializer};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} name {name:?} {reason}")]
pub struct NameError {
    /// What kind of name (`Organization`, `Application`, …).
    pub kind: &'static str,
    /// The refused input.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// Names an Organization may not take (PRODUCT.md §1), besides `kube-*` and every provider,
/// region, building-block and env-type code.
pub const RESERVED: &[&str] = &[
    "catalyst",
    "crossplane",
    "flux",
    "gitea",
    "system",
    "mgt",
    "rtz",
    "dmz",
];

fn slug(kind: &'static str, s: &str) -> Result<(), NameError> {
    let err = |reason: &str| NameError {
        kind,
        name: s.chars().take(64).collect(),
        reason: reason.to_string(),
    };
    let bytes = s.as_bytes();
    if !(3..=32).contains(&bytes.len()) {
        return Err(err("must be 3 to 32 characters"));
    }
    if !bytes[0].is_ascii_lowercase() {
        return Err(err("must start with a lowercase letter"));
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return Err(err("may contain only a-z, 0-9 and '-'"));
    }
    Ok(())
}

/// True when `s` is reserved for the platform (PRODUCT.md §1).
pub fn is_reserved(s: &str) -> bool {
    RESERVED.contains(&s)
        || s.starts_with("kube-")
        || EnvType::parse(s).is_ok()
        || crate::catalog::PROVIDERS
            .iter()
            .any(|p| p.code == s || p.regions.iter().any(|r| r.code == s))
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(String);
        impl $ty {
            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

name_type!(
    /// An Organization name: `^[a-z][a-z0-9-]{2,31}$`, not reserved.
    OrgName
);
name_type!(
    /// An Application name: `^[a-z][a-z0-9-]{2,31}$` (also its repository and namespace).
    AppName
);

impl OrgName {
    /// Parses and checks the reserved list.
    pub fn parse(s: &str) -> Result<OrgName, NameError> {
        slug("Organization", s)?;
        if is_reserved(s) {
            return Err(NameError {
                kind: "Organization",
                name: s.to_string(),
                reason: "is reserved (system, flux, crossplane, catalyst, gitea, kube-*, provider, region, building-block and env-type codes)".to_string(),
            });
        }
        Ok(OrgName(s.to_string()))
    }
}

impl AppName {
    /// Parses an Application name.
    pub fn parse(s: &str) -> Result<AppName, NameError> {
        slug("Application", s)?;
        if s.ends_with(".git") || s == "shared-blueprints" {
            return Err(NameError {
                kind: "Application",
                name: s.to_string(),
                reason: "is reserved".to_string(),
            });
        }
        Ok(AppName(s.to_string()))
    }
}

/// An Environment type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EnvType {
    /// Production (`main`).
    Prod,
    /// Staging (`staging`).
    Stg,
    /// User acceptance (`uat`).
    Uat,
    /// Development (`develop`).
    Dev,
    /// Proof of concept (`poc`).
    Poc,
}

impl EnvType {
    /// Every env type.
    pub const ALL: [EnvType; 5] = [
        EnvType::Dev,
        EnvType::Stg,
        EnvType::Uat,
        EnvType::Prod,
        EnvType::Poc,
    ];

    /// Parses `prod|stg|uat|dev|poc`.
    pub fn parse(s: &str) -> Result<EnvType, NameError> {
        Ok(match s {
            "prod" => EnvType::Prod,
            "stg" => EnvType::Stg,
            "uat" => EnvType::Uat,
            "dev" => EnvType::Dev,
            "poc" => EnvType::Poc,
            _ => {
                return Err(NameError {
                    kind: "Environment type",
                    name: s.chars().take(64).collect(),
                    reason: "must be one of prod, stg, uat, dev, poc".to_string(),
                })
            }
        })
    }

    /// The code (`dev`).
    pub fn as_str(self) -> &'static str {
        match self {
            EnvType::Prod => "prod",
            EnvType::Stg => "stg",
            EnvType::Uat => "uat",
            EnvType::Dev => "dev",
            EnvType::Poc => "poc",
        }
    }

    /// The branch of every Application repository for this env type (PRODUCT.md §3.5).
    pub fn branch(self) -> &'static str {
        match self {
            EnvType::Prod => "main",
            EnvType::Stg => "staging",
            EnvType::Uat => "uat",
            EnvType::Dev => "develop",
            EnvType::Poc => "poc",
        }
    }
}

impl fmt::Display for EnvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{org}-{env_type}`.
pub fn env_name(org: &OrgName, env: EnvType) -> String {
    format!("{org}-{env}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_names() {
        for ok in ["acme", "a-1b", "abcdefghijabcdefghijabcdefghij12"] {
            assert!(OrgName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Acme",
            "1acme",
            "ac_me",
            "system",
            "kube-x",
            "dev",
            "hetzner",
            "fsn1",
            "mgt",
            "abcdefghijabcdefghijabcdefghij123",
        ] {
            assert!(OrgName::parse(bad).is_err(), "{bad}");
        }
    }
}
