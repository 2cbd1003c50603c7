//! Artifact references: `[oci://]host[:port]/repo[:tag][@sha256:…]` for a registry and
//! `oci:DIR[:name[:tag]][@sha256:…]` for an OCI image-layout directory.

use std::fmt;
use std::path::PathBuf;

use crate::{Digest, Error, Result};

/// Where an artifact lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A repository in an OCI distribution registry.
    Registry {
        /// `host[:port]`.
        host: String,
        /// The repository path, e.g. `openova-io/bp-cilium`.
        repository: String,
    },
    /// An OCI image-layout directory; `name` selects entries whose ref name is `name:tag`.
    Layout {
        /// The directory.
        path: PathBuf,
        /// The artifact name inside it (e.g. `bp-cilium`), if given.
        name: Option<String>,
    },
}

/// What to fetch inside a repository: a tag (mutable) or a digest (pinned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A tag, resolved to a digest before anything is trusted.
    Tag(String),
    /// A digest.
    Digest(Digest),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tag(t) => write!(f, ":{t}"),
            Target::Digest(d) => write!(f, "@{d}"),
        }
    }
}

/// A parsed artifact reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry repository or layout directory.
    pub location: Location,
    /// The tag, if given.
    pub tag: Option<String>,
    /// The digest, if given; it wins over the tag.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a registry or layout reference.
    pub fn parse(text: &str) -> Result<Self> {
        let err = |reason: &str| Error::Reference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let (rest, digest) = match text.rsplit_once('@') {
            Some((rest, d)) => (rest, Some(d.parse::<Digest>()?)),
            None => (text, None),
        };
        if let Some(layout) = rest.strip_prefix("oci:").filter(|r| !r.starts_with("//")) {
            let mut parts = layout.splitn(3, ':');
            let path = parts.next().unwrap_or_default();
            if path.is_empty() {
                return Err(err("the layout directory is empty"));
            }
            let name = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
            let tag = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
            if let Some(n) = &name {
                check_component(n).map_err(|r| err(&r))?;
            }
            if let Some(t) = &tag {
                check_tag(t).map_err(|r| err(&r))?;
            }
            return Ok(Self {
                location: Location::Layout {
                    path: PathBuf::from(path),
                    name,
                },
                tag,
                digest,
            });
        }
        let rest = rest.strip_prefix("oci://").unwrap_or(rest);
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| err("expected host/repository[:tag][@digest]"))?;
        if !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(err(
                "the first component must be a registry host (e.g. ghcr.io or 127.0.0.1:5000)",
            ));
        }
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_string())),
            _ => (path, None),
        };
        for component in repository.split('/') {
            check_component(component).map_err(|r| err(&r))?;
        }
        if let Some(t) = &tag {
            check_tag(t).map_err(|r| err(&r))?;
        }
        Ok(Self {
            location: Location::Registry {
                host: host.to_string(),
                repository: repository.to_string(),
            },
            tag,
            digest,
        })
    }

    /// What to fetch: the digest when given, else the tag, else `latest`.
    pub fn target(&self) -> Target {
        match (&self.digest, &self.tag) {
            (Some(d), _) => Target::Digest(d.clone()),
            (None, Some(t)) => Target::Tag(t.clone()),
            (None, None) => Target::Tag("latest".into()),
        }
    }

    /// The same location, pinned to `digest` (the tag dropped).
    pub fn pinned(&self, digest: &Digest) -> Self {
        Self {
            location: self.location.clone(),
            tag: None,
            digest: Some(digest.clone()),
        }
    }

    /// The last path component of the repository (or the layout name), e.g. `bp-cilium`.
    pub fn short_name(&self) -> Option<&str> {
        match &self.location {
            Location::Registry { repository, .. } => repository.rsplit('/').next(),
            Location::Layout { name, .. } => name.as_deref(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::Registry { host, repository } => write!(f, "{host}/{repository}")?,
            Location::Layout { path, name } => {
                write!(f, "oci:{}", path.display())?;
                if let Some(n) = name {
                    write!(f, ":{n}")?;
                }
            }
        }
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn check_component(c: &str) -> Result<(), String> {
    let ok = !c.is_empty()
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && c.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name component {c:?} must be lowercase letters, digits, '.', '_' or '-'"
        ))
    }
}

/// Validates a tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`).
pub fn check_tag(t: &str) -> Result<(), String> {
    let ok = !t.is_empty()
        && t.len() <= 128
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {t:?} must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: &str) {
        let got = match Reference::parse(input) {
            Ok(r) => format!("{:?} tag={:?} digest={:?}", r.location, r.tag, r.digest),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect, "{input}");
    }

    #[test]
    fn references() {
        check(
            "ghcr.io/openova-io/bp-cilium:1.2.3",
            r#"Registry { host: "ghcr.io", repository: "openova-io/bp-cilium" } tag=Some("1.2.3") digest=None"#,
        );
        check(
            "oci://127.0.0.1:5000/bp-x",
            r#"Registry { host: "127.0.0.1:5000", repository: "bp-x" } tag=None digest=None"#,
        );
        check(
            "oci:/tmp/mirror:bp-x:1.0.0",
            r#"Layout { path: "/tmp/mirror", name: Some("bp-x") } tag=Some("1.0.0") digest=None"#,
        );
        check(
            "oci:./m",
            r#"Layout { path: "./m", name: None } tag=None digest=None"#,
        );
        check(
            "bp-x:1.0",
            "error: invalid reference \"bp-x:1.0\": expected host/repository[:tag][@digest]",
        );
        check(
            "docker/bp-x:1.0",
            "error: invalid reference \"docker/bp-x:1.0\": the first component must be a registry host (e.g. ghcr.io or 127.0.0.1:5000)",
        );
        check(
            "h.io/Bp:1",
            "error: invalid reference \"h.io/Bp:1\": name component \"Bp\" must be lowercase letters, digits, '.', '_' or '-'",
        );
        let d = Digest::of(b"x");
        let r = Reference::parse(&format!("h.io/a/b:1@{d}")).unwrap();
        assert_eq!(r.target(), Target::Digest(d.clone()));
        assert_eq!(r.to_string(), format!("h.io/a/b:1@{d}"));
        assert_eq!(r.short_name(), Some("b"));
    }
}
