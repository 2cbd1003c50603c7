//! The catalog: every known Blueprint version, from three sources, with visibility rules.
//!
//! - `listed` appears in listings and resolves for everyone;
//! - `unlisted` resolves by name for everyone but is not listed;
//! - `private` resolves and lists only for its owning Organization.
//!
//! Everything in an Organization source belongs to that Organization and is seen by it alone.

use std::collections::BTreeMap;
use std::fmt;

use semver::Version;
use serde::Serialize;

use crate::model::{Blueprint, BlueprintName, Visibility};

/// Where a catalog root comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "organization")]
pub enum Source {
    /// The public catalog.
    Public,
    /// Curated by the Sovereign's administrators.
    Sovereign,
    /// Private to one Organization (its `shared-blueprints` repository).
    Organization(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Public => f.write_str("public"),
            Source::Sovereign => f.write_str("sovereign"),
            Source::Organization(o) => write!(f, "organization {o}"),
        }
    }
}

/// Who is looking: an Organization, or nobody in particular.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Viewer {
    /// The viewing Organization, if any.
    pub organization: Option<String>,
}

/// One Blueprint version in the catalog.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The Blueprint.
    pub blueprint: Blueprint,
    /// Its source.
    pub source: Source,
    /// The file it was read from.
    pub file: String,
}

/// A version of the same Blueprint was already in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} {version} is defined twice: {first} and {second}")]
pub struct DuplicateVersion {
    /// The Blueprint.
    pub name: BlueprintName,
    /// The version.
    pub version: Version,
    /// The file kept.
    pub first: String,
    /// The file ignored.
    pub second: String,
}

/// What a name lookup found.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// Visible versions, highest first (never empty).
    Found(Vec<&'a Entry>),
    /// The Blueprint exists but the viewer may not see it.
    Hidden(&'a Entry),
    /// No such Blueprint.
    Missing,
}

/// Every known Blueprint version.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    // Versions of each name, highest first.
    by_name: BTreeMap<BlueprintName, Vec<Entry>>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Adds a version. A name+version already present is kept and the new one is refused.
    pub fn insert(&mut self, entry: Entry) -> Result<(), DuplicateVersion> {
        let list = self
            .by_name
            .entry(entry.blueprint.name.clone())
            .or_default();
        match list.binary_search_by(|e| entry.blueprint.version.cmp(&e.blueprint.version)) {
            Ok(i) => Err(DuplicateVersion {
                name: entry.blueprint.name.clone(),
                version: entry.blueprint.version.clone(),
                first: list[i].file.clone(),
                second: entry.file,
            }),
            Err(i) => {
                list.insert(i, entry);
                Ok(())
            }
        }
    }

    /// Number of Blueprint versions.
    pub fn len(&self) -> usize {
        self.by_name.values().map(Vec::len).sum()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Whether `viewer` may see `entry`.
    pub fn visible(entry: &Entry, viewer: &Viewer) -> bool {
        match (&entry.source, entry.blueprint.visibility) {
            (Source::Organization(o), _) => viewer.organization.as_deref() == Some(o.as_str()),
            (_, Visibility::Private) => false,
            _ => true,
        }
    }

    /// Looks a name up for `viewer`.
    pub fn lookup(&self, name: &BlueprintName, viewer: &Viewer) -> Lookup<'_> {
        let Some(all) = self.by_name.get(name) else {
            return Lookup::Missing;
        };
        let seen: Vec<&Entry> = all.iter().filter(|e| Self::visible(e, viewer)).collect();
        if seen.is_empty() {
            all.first().map_or(Lookup::Missing, Lookup::Hidden)
        } else {
            Lookup::Found(seen)
        }
    }

    /// Every version of every Blueprint, regardless of visibility (lint looks at all of them).
    pub fn all(&self) -> impl Iterator<Item = &Entry> {
        self.by_name.values().flatten()
    }

    /// All versions of `name`, highest first, regardless of visibility.
    pub fn versions_of(&self, name: &BlueprintName) -> &[Entry] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// One exact version visible to `viewer`.
    pub fn get(&self, name: &BlueprintName, version: &Version, viewer: &Viewer) -> Option<&Entry> {
        self.by_name
            .get(name)?
            .iter()
            .find(|e| &e.blueprint.version == version && Self::visible(e, viewer))
    }

    /// What `catalyst blueprint list` shows: the highest visible version of each Blueprint that is
    /// `listed` (or `private`, or in the viewer's Organization source), sorted by name. With
    /// `all`, unlisted Blueprints are included too.
    pub fn list(&self, viewer: &Viewer, all: bool) -> Vec<&Entry> {
        self.by_name
            .values()
            .filter_map(|versions| {
                versions.iter().find(|e| {
                    Self::visible(e, viewer)
                        && (all || e.blueprint.visibility != Visibility::Unlisted)
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bp(name: &str, version: &str, visibility: &str) -> Blueprint {
        Blueprint::from_yaml(&format!(
            "apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata: {{name: {name}}}\nspec: {{version: {version}, visibility: {visibility}}}\n"
        ))
        .unwrap()
    }

    fn entry(name: &str, version: &str, visibility: &str, source: Source) -> Entry {
        Entry {
            blueprint: bp(name, version, visibility),
            source,
            file: format!("{name}-{version}"),
        }
    }

    #[test]
    fn visibility_rules() {
        let mut c = Catalog::new();
        c.insert(entry("a", "1.0.0", "listed", Source::Public))
            .unwrap();
        c.insert(entry("a", "2.0.0", "listed", Source::Sovereign))
            .unwrap();
        c.insert(entry("b", "1.0.0", "unlisted", Source::Public))
            .unwrap();
        c.insert(entry(
            "p",
            "1.0.0",
            "private",
            Source::Organization("acme".into()),
        ))
        .unwrap();
        c.insert(entry("q", "1.0.0", "private", Source::Public))
            .unwrap();
        let nobody = Viewer::default();
        let acme = Viewer {
            organization: Some("acme".into()),
        };
        let names = |v: &Viewer| -> Vec<String> {
            c.list(v, false)
                .iter()
                .map(|e| format!("{}@{}", e.blueprint.name, e.blueprint.version))
                .collect()
        };
        assert_eq!(names(&nobody), vec!["bp-a@2.0.0"]);
        assert_eq!(names(&acme), vec!["bp-a@2.0.0", "bp-p@1.0.0"]);
        let b = BlueprintName::parse("b").unwrap();
        assert!(matches!(c.lookup(&b, &nobody), Lookup::Found(v) if v.len() == 1));
        let p = BlueprintName::parse("p").unwrap();
        assert!(matches!(c.lookup(&p, &nobody), Lookup::Hidden(_)));
        assert!(matches!(c.lookup(&p, &acme), Lookup::Found(_)));
        let q = BlueprintName::parse("q").unwrap();
        assert!(matches!(c.lookup(&q, &acme), Lookup::Hidden(_)));
        let dup = c.insert(entry("a", "1.0.0", "listed", Source::Public));
        assert!(dup.is_err());
    }
}
