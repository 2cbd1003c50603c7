//! One normalized Blueprint type for both upstream dialects.
//!
//! Dialect A (`catalyst.openova.io/v1alpha1`, `bp-<name>`) and dialect B (`catalyst.openova.io/v1`,
//! bare names); version in `spec.version` or `metadata.version`; `depends` as strings or objects;
//! `card.summary|tagline|description`. The parsed document is kept, so unknown fields survive
//! [`Blueprint::to_canonical`].

use std::fmt;

use semver::Version;
use serde::Serialize;
use serde_json::Value;

use crate::diag::{codes, Diagnostic};
use crate::range::VersionRange;
use crate::when::When;
use crate::yaml::{Node, NodeValue, Pos};

/// The apiVersion `fmt` writes.
pub const CANONICAL_API_VERSION: &str = "catalyst.openova.io/v1";
/// The apiVersions read.
pub const API_VERSIONS: [&str; 2] = ["catalyst.openova.io/v1alpha1", "catalyst.openova.io/v1"];
/// Placement modes a Blueprint may declare.
pub const PLACEMENT_MODES: [&str; 3] = ["single-region", "active-active", "active-hotstandby"];

/// A Blueprint name, always `bp-<name>`: lowercase letters, digits and `-`, at most 63 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct BlueprintName(String);

impl TryFrom<String> for BlueprintName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        BlueprintName::parse(&s)
    }
}

impl From<BlueprintName> for String {
    fn from(n: BlueprintName) -> String {
        n.0
    }
}

/// Why a name is not a Blueprint name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Blueprint name {name:?}: {reason}")]
pub struct NameError {
    /// The name given.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl BlueprintName {
    /// Parses `bp-<name>` or a bare `<name>` (normalized to `bp-<name>`).
    pub fn parse(s: &str) -> Result<BlueprintName, NameError> {
        let err = |reason| NameError {
            name: s.to_string(),
            reason,
        };
        let short = s.strip_prefix("bp-").unwrap_or(s);
        if short.is_empty() {
            return Err(err("empty name"));
        }
        if !short
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(err("use lowercase letters, digits and '-' only"));
        }
        if !short.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(err("must start with a lowercase letter"));
        }
        if short.ends_with('-') || short.contains("--") {
            return Err(err("no trailing or doubled '-'"));
        }
        if short.len() + 3 > 63 {
            return Err(err("longer than 63 characters with the bp- prefix"));
        }
        Ok(BlueprintName(format!("bp-{short}")))
    }

    /// `bp-<name>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<name>` without the prefix (Helm release name, namespace).
    pub fn short(&self) -> &str {
        &self.0[3..]
    }
}

impl fmt::Display for BlueprintName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a Blueprint may be seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// In listings; installable by everyone on the Sovereign.
    Listed,
    /// Not in listings; resolvable by name.
    Unlisted,
    /// Visible only to the owning Organization.
    Private,
}

impl Visibility {
    /// Parses `listed|unlisted|private`.
    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "listed" => Some(Visibility::Listed),
            "unlisted" => Some(Visibility::Unlisted),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Listed => "listed",
            Visibility::Unlisted => "unlisted",
            Visibility::Private => "private",
        }
    }
}

/// The marketplace card (the fields Catalyst reads; the rest stays in the document).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Card {
    /// Title.
    pub title: Option<String>,
    /// One of `summary`, `tagline`, `description` (first present, in that order).
    pub summary: Option<String>,
    /// `category` (dialect A) or `family` (dialect B).
    pub category: Option<String>,
}

/// Placement schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// Supported modes.
    pub modes: Vec<String>,
    /// Default mode.
    pub default: Option<String>,
    /// Minimum region count.
    pub min_regions: Option<u64>,
    /// Maximum region count.
    pub max_regions: Option<u64>,
    #[serde(skip)]
    pub(crate) pos: Pos,
    #[serde(skip)]
    pub(crate) mode_pos: Vec<Pos>,
    #[serde(skip)]
    pub(crate) default_pos: Pos,
    #[serde(skip)]
    pub(crate) min_pos: Pos,
}

/// One `spec.depends` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dependency {
    /// The Blueprint depended on.
    pub blueprint: BlueprintName,
    /// Acceptable versions (`*` when none is given).
    pub version: VersionRange,
    /// Name the dependent uses for it (`.Values.dependencies.<alias>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Condition on the dependent's configuration.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_when")]
    pub when: Option<When>,
    /// Values passed to the dependency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Value>,
    /// Where the entry is.
    #[serde(skip)]
    pub pos: Pos,
    #[serde(skip)]
    pub(crate) version_pos: Pos,
}

fn ser_when<S: serde::Serializer>(w: &Option<When>, s: S) -> Result<S::Ok, S::Error> {
    match w {
        Some(w) => s.serialize_str(w.as_str()),
        None => s.serialize_none(),
    }
}

/// `spec.upgrades`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Upgrades {
    /// Versions that may upgrade to this one in place.
    pub from: Vec<VersionRange>,
    /// Versions with no upgrade path (recreate).
    pub blocks: Vec<VersionRange>,
}

/// A Blueprint, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct Blueprint {
    /// `bp-<name>`.
    pub name: BlueprintName,
    /// The release version.
    pub version: Version,
    /// apiVersion as written.
    pub api_version: String,
    /// Card fields.
    pub card: Card,
    /// Visibility (`unlisted` when omitted).
    pub visibility: Visibility,
    /// configSchema (JSON Schema), if any.
    pub config_schema: Option<Value>,
    /// placementSchema, if any.
    pub placement: Option<Placement>,
    /// Dependencies.
    pub depends: Vec<Dependency>,
    /// Upgrade rules.
    pub upgrades: Upgrades,
    /// `spec.outputs`: values advertised to dependents.
    pub outputs: Value,
    /// OCI digest of the published artifact, when the document records it
    /// (`metadata.annotations["catalyst.openova.io/digest"]`).
    pub digest: Option<String>,
    /// The parsed document (unknown fields live here).
    pub(crate) doc: Node,
    pub(crate) name_pos: Pos,
    pub(crate) version_pos: Pos,
    pub(crate) schema_pos: Pos,
}

/// Parses a Blueprint document. Problems are pushed to `diags` (with `file` as their file);
/// `None` when the document has no usable name or version.
pub fn parse_blueprint(doc: &Node, file: &str, diags: &mut Vec<Diagnostic>) -> Option<Blueprint> {
    let top = doc.pos;
    if doc.as_map().is_none() {
        diags.push(
            Diagnostic::error(
                codes::NOT_A_BLUEPRINT,
                file,
                top,
                format!("expected a Blueprint mapping, found {}", doc.kind()),
            )
            .with_hint("a blueprint.yaml starts with `apiVersion: catalyst.openova.io/v1`"),
        );
        return None;
    }
    match doc.get("kind").and_then(Node::as_str) {
        Some("Blueprint") => {}
        other => diags.push(
            Diagnostic::error(
                codes::NOT_A_BLUEPRINT,
                file,
                doc.get("kind").map_or(top, |n| n.pos),
                format!("kind is {:?}, expected \"Blueprint\"", other.unwrap_or("")),
            )
            .with_hint("set `kind: Blueprint`"),
        ),
    }
    let api_version = doc
        .get("apiVersion")
        .and_then(Node::as_str)
        .unwrap_or("")
        .to_string();
    if !API_VERSIONS.contains(&api_version.as_str()) {
        diags.push(
            Diagnostic::error(
                codes::NOT_A_BLUEPRINT,
                file,
                doc.get("apiVersion").map_or(top, |n| n.pos),
                format!("unknown apiVersion {api_version:?}"),
            )
            .with_hint(format!("use {CANONICAL_API_VERSION}")),
        );
    }
    let empty = Node::new(NodeValue::Map(Vec::new()));
    let metadata = map_field(doc, "metadata", file, diags).unwrap_or(&empty);
    let spec = map_field(doc, "spec", file, diags).unwrap_or(&empty);

    let name_node = metadata.get("name");
    let name_pos = name_node.map_or(metadata.pos, |n| n.pos);
    let name = match name_node.and_then(Node::as_str) {
        None => {
            diags.push(
                Diagnostic::error(codes::NAME, file, name_pos, "metadata.name is missing")
                    .with_hint("name the Blueprint `bp-<folder>`"),
            );
            None
        }
        Some(s) => match BlueprintName::parse(s) {
            Ok(n) => Some(n),
            Err(e) => {
                diags.push(
                    Diagnostic::error(codes::NAME, file, name_pos, e.to_string())
                        .with_hint("names are `bp-` + lowercase letters, digits and '-'"),
                );
                None
            }
        },
    };

    let version = parse_version(metadata, spec, file, diags);

    let card_node = map_field(spec, "card", file, diags);
    let text = |k: &str| card_node.and_then(|c| c.get(k)).and_then(Node::scalar_text);
    let card = Card {
        title: text("title"),
        summary: text("summary")
            .or_else(|| text("tagline"))
            .or_else(|| text("description")),
        category: text("category").or_else(|| text("family")),
    };

    let visibility = match spec.get("visibility") {
        None
        | Some(Node {
            value: NodeValue::Null,
            ..
        }) => Visibility::Unlisted,
        Some(n) => match n.as_str().and_then(Visibility::parse) {
            Some(v) => v,
            None => {
                diags.push(
                    Diagnostic::error(
                        codes::VISIBILITY,
                        file,
                        n.pos,
                        format!(
                            "unknown visibility {:?}",
                            n.scalar_text().unwrap_or_else(|| n.kind().to_string())
                        ),
                    )
                    .with_hint("use one of: listed, unlisted, private"),
                );
                Visibility::Unlisted
            }
        },
    };

    let schema_node = spec.get("configSchema");
    let config_schema = schema_node.map(Node::to_json);
    let placement =
        map_field(spec, "placementSchema", file, diags).map(|p| parse_placement(p, file, diags));
    let depends = parse_depends(spec, file, diags);
    let upgrades = parse_upgrades(spec, file, diags);
    let outputs = spec
        .get("outputs")
        .map(Node::to_json)
        .unwrap_or(Value::Null);
    let digest = metadata
        .get("annotations")
        .and_then(|a| a.get("catalyst.openova.io/digest"))
        .and_then(Node::as_str)
        .map(str::to_string);

    let (version, version_pos) = version?;
    Some(Blueprint {
        name: name?,
        version,
        api_version,
        card,
        visibility,
        config_schema,
        placement,
        depends,
        upgrades,
        outputs,
        digest,
        doc: doc.clone(),
        name_pos,
        version_pos,
        schema_pos: schema_node.map_or(top, |n| n.pos),
    })
}

/// Parses one YAML text holding one Blueprint.
pub fn parse_blueprint_text(
    text: &str,
    file: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Blueprint> {
    match crate::yaml::parse(text) {
        Ok(doc) => parse_blueprint(&doc, file, diags),
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    codes::YAML,
                    file,
                    e.pos,
                    format!("invalid YAML: {}", e.message),
                )
                .with_hint("fix the YAML syntax"),
            );
            None
        }
    }
}

fn map_field<'a>(
    parent: &'a Node,
    key: &str,
    file: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<&'a Node> {
    let n = parent.get(key)?;
    match n.value {
        NodeValue::Map(_) => Some(n),
        NodeValue::Null => None,
        _ => {
            diags.push(Diagnostic::error(
                codes::FIELD_TYPE,
                file,
                n.pos,
                format!("`{key}` must be a mapping, found {}", n.kind()),
            ));
            None
        }
    }
}

fn parse_version(
    metadata: &Node,
    spec: &Node,
    file: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<(Version, Pos)> {
    let in_spec = spec.get("version");
    let in_meta = metadata.get("version");
    if let (Some(a), Some(b)) = (in_spec, in_meta) {
        if a.scalar_text() != b.scalar_text() {
            diags.push(
                Diagnostic::error(
                    codes::VERSION_TWICE,
                    file,
                    b.pos,
                    format!(
                        "metadata.version {:?} differs from spec.version {:?}",
                        b.scalar_text().unwrap_or_default(),
                        a.scalar_text().unwrap_or_default()
                    ),
                )
                .with_hint("keep the version in spec.version only"),
            );
        }
    }
    let Some(node) = in_spec.or(in_meta) else {
        diags.push(
            Diagnostic::error(
                codes::VERSION,
                file,
                spec.pos,
                "the Blueprint has no version",
            )
            .with_hint("add `spec.version: 1.0.0`"),
        );
        return None;
    };
    let text = node.scalar_text().unwrap_or_default();
    match Version::parse(&text) {
        Ok(v) => Some((v, node.pos)),
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    codes::VERSION,
                    file,
                    node.pos,
                    format!("version {text:?} is not semver: {e}"),
                )
                .with_hint("use MAJOR.MINOR.PATCH, e.g. 1.0.0"),
            );
            None
        }
    }
}

fn parse_placement(p: &Node, file: &str, diags: &mut Vec<Diagnostic>) -> Placement {
    let mut out = Placement {
        pos: p.pos,
        ..Placement::default()
    };
    if let Some(modes) = p.get("modes") {
        match modes.as_seq() {
            Some(items) => {
                for m in items {
                    out.modes.push(m.scalar_text().unwrap_or_default());
                    out.mode_pos.push(m.pos);
                }
            }
            None => diags.push(Diagnostic::error(
                codes::FIELD_TYPE,
                file,
                modes.pos,
                "placementSchema.modes must be a list",
            )),
        }
    }
    if let Some(d) = p.get("default") {
        out.default = d.scalar_text();
        out.default_pos = d.pos;
    }
    let mut count = |key: &str, slot: &mut Option<u64>| {
        if let Some(n) = p.get(key) {
            match n.to_json().as_u64() {
                Some(v) => *slot = Some(v),
                None => diags.push(Diagnostic::error(
                    codes::FIELD_TYPE,
                    file,
                    n.pos,
                    format!("placementSchema.{key} must be a non-negative integer"),
                )),
            }
        }
    };
    count("minRegions", &mut out.min_regions);
    count("maxRegions", &mut out.max_regions);
    out.min_pos = p.get("minRegions").map_or(p.pos, |n| n.pos);
    out
}

fn parse_depends(spec: &Node, file: &str, diags: &mut Vec<Diagnostic>) -> Vec<Dependency> {
    let Some(node) = spec.get("depends") else {
        return Vec::new();
    };
    let items = match &node.value {
        NodeValue::Seq(items) => items,
        NodeValue::Null => return Vec::new(),
        _ => {
            diags.push(Diagnostic::error(
                codes::FIELD_TYPE,
                file,
                node.pos,
                format!("`depends` must be a list, found {}", node.kind()),
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for item in items {
        let (name_node, version_node) = match &item.value {
            NodeValue::String(_) => (Some(item), None),
            NodeValue::Map(_) => (item.get("blueprint"), item.get("version")),
            _ => {
                diags.push(Diagnostic::error(
                    codes::FIELD_TYPE,
                    file,
                    item.pos,
                    format!("a dependency is a name or a mapping, found {}", item.kind()),
                ));
                continue;
            }
        };
        let Some(name_text) = name_node.and_then(Node::as_str) else {
            diags.push(
                Diagnostic::error(
                    codes::NAME,
                    file,
                    item.pos,
                    "dependency without `blueprint`",
                )
                .with_hint("write `- blueprint: bp-<name>`"),
            );
            continue;
        };
        let name_pos = name_node.map_or(item.pos, |n| n.pos);
        let blueprint = match BlueprintName::parse(name_text) {
            Ok(n) => n,
            Err(e) => {
                diags.push(Diagnostic::error(
                    codes::NAME,
                    file,
                    name_pos,
                    e.to_string(),
                ));
                continue;
            }
        };
        let version_pos = version_node.map_or(name_pos, |n| n.pos);
        let version = match version_node.and_then(Node::scalar_text) {
            None => VersionRange::any(),
            Some(text) => match VersionRange::parse(&text) {
                Ok(r) => r,
                Err(e) => {
                    diags.push(
                        Diagnostic::error(codes::RANGE, file, version_pos, e.to_string())
                            .with_hint(
                                "use a Helm-style range such as ^1, ~1.2, >=1.0 <2 or 1.2.x",
                            ),
                    );
                    continue;
                }
            },
        };
        let alias = item.get("alias").and_then(Node::scalar_text);
        let when = match item.get("when") {
            None => None,
            Some(w) => match When::parse(&w.scalar_text().unwrap_or_default()) {
                Ok(w) => Some(w),
                Err(e) => {
                    diags.push(
                        Diagnostic::error(codes::WHEN, file, w.pos, e.to_string()).with_hint(
                            "write a predicate such as {{ .config.postgres.mode == 'embedded' }}",
                        ),
                    );
                    None
                }
            },
        };
        out.push(Dependency {
            blueprint,
            version,
            alias,
            when,
            values: item.get("values").map(Node::to_json),
            pos: item.pos,
            version_pos,
        });
    }
    out
}

fn parse_upgrades(spec: &Node, file: &str, diags: &mut Vec<Diagnostic>) -> Upgrades {
    let mut out = Upgrades::default();
    let Some(u) = spec.get("upgrades") else {
        return out;
    };
    for (key, slot) in [("from", &mut out.from), ("blocks", &mut out.blocks)] {
        let Some(list) = u.get(key) else { continue };
        let Some(items) = list.as_seq() else {
            diags.push(Diagnostic::error(
                codes::FIELD_TYPE,
                file,
                list.pos,
                format!("upgrades.{key} must be a list"),
            ));
            continue;
        };
        for item in items {
            let text = item.scalar_text().unwrap_or_default();
            match VersionRange::parse(&text) {
                Ok(r) => slot.push(r),
                Err(e) => diags.push(
                    Diagnostic::error(codes::UPGRADE_RANGE, file, item.pos, e.to_string())
                        .with_hint("use a range such as 1.2.x or ^1"),
                ),
            }
        }
    }
    out
}

impl Blueprint {
    /// Parses from YAML text, failing on the first error (for callers that do not lint).
    pub fn from_yaml(text: &str) -> Result<Blueprint, crate::Error> {
        let mut diags = Vec::new();
        let bp = parse_blueprint_text(text, "<input>", &mut diags);
        match (
            bp,
            diags
                .into_iter()
                .find(|d| d.severity == crate::Severity::Error),
        ) {
            (Some(bp), None) => Ok(bp),
            (_, Some(d)) => Err(crate::Error::Invalid(d.render(None))),
            (None, None) => Err(crate::Error::Invalid("not a Blueprint".to_string())),
        }
    }

    /// The document in canonical form: `apiVersion: catalyst.openova.io/v1`, `bp-` name, version
    /// in `spec.version`, `card.summary`, explicit visibility, object-form `depends`, known keys in
    /// a fixed order and unknown keys after them, in their original order.
    pub fn to_canonical(&self) -> Node {
        let doc = &self.doc;
        let empty = Node::new(NodeValue::Map(Vec::new()));
        let metadata = doc
            .get("metadata")
            .filter(|m| m.as_map().is_some())
            .unwrap_or(&empty);
        let spec = doc
            .get("spec")
            .filter(|m| m.as_map().is_some())
            .unwrap_or(&empty);

        let mut meta_entries = vec![(Node::str("name"), Node::str(self.name.as_str()))];
        meta_entries.extend(rest(metadata, &["name", "version"]));

        let mut spec_entries = vec![(Node::str("version"), Node::str(self.version.to_string()))];
        if let Some(card) = spec.get("card").filter(|c| c.as_map().is_some()) {
            spec_entries.push((Node::str("card"), canonical_card(card)));
        }
        spec_entries.push((Node::str("visibility"), Node::str(self.visibility.as_str())));
        for key in ["owner", "configSchema", "placementSchema", "manifests"] {
            if let Some((k, v)) = spec.entry(key) {
                spec_entries.push((k.clone(), v.clone()));
            }
        }
        if let Some(deps) = spec.get("depends") {
            let items = deps
                .as_seq()
                .unwrap_or(&[])
                .iter()
                .map(|d| canonical_dependency(d, &self.depends))
                .collect();
            spec_entries.push((Node::str("depends"), Node::new(NodeValue::Seq(items))));
        }
        spec_entries.extend(rest(
            spec,
            &[
                "version",
                "card",
                "visibility",
                "owner",
                "configSchema",
                "placementSchema",
                "manifests",
                "depends",
            ],
        ));

        let mut top = vec![
            (Node::str("apiVersion"), Node::str(CANONICAL_API_VERSION)),
            (Node::str("kind"), Node::str("Blueprint")),
            (
                Node::str("metadata"),
                Node::new(NodeValue::Map(meta_entries)),
            ),
            (Node::str("spec"), Node::new(NodeValue::Map(spec_entries))),
        ];
        top.extend(rest(doc, &["apiVersion", "kind", "metadata", "spec"]));
        Node::new(NodeValue::Map(top))
    }

    /// The canonical document as YAML text.
    pub fn to_canonical_yaml(&self) -> String {
        crate::yaml::to_string(&self.to_canonical())
    }

    /// Schema defaults applied to `values` (see [`crate::schema::apply_defaults`]).
    pub fn config_with_defaults(&self, values: &Value) -> Value {
        match &self.config_schema {
            Some(s) => crate::schema::apply_defaults(s, values),
            None => values.clone(),
        }
    }
}

fn rest(map: &Node, known: &[&str]) -> Vec<(Node, Node)> {
    map.as_map()
        .unwrap_or(&[])
        .iter()
        .filter(|(k, _)| !known.contains(&k.key_text().as_str()))
        .cloned()
        .collect()
}

fn canonical_card(card: &Node) -> Node {
    let mut entries = Vec::new();
    if let Some(e) = card.entry("title") {
        entries.push((e.0.clone(), e.1.clone()));
    }
    // The first of summary/tagline/description becomes `summary`; the others stay as they are.
    let chosen = ["summary", "tagline", "description"]
        .into_iter()
        .find(|k| card.get(k).is_some());
    if let Some(k) = chosen {
        if let Some(v) = card.get(k) {
            entries.push((Node::str("summary"), v.clone()));
        }
    }
    let mut skip = vec!["title"];
    skip.extend(chosen);
    entries.extend(rest(card, &skip));
    Node::new(NodeValue::Map(entries))
}

fn canonical_dependency(item: &Node, parsed: &[Dependency]) -> Node {
    let name_text = match &item.value {
        NodeValue::String(s) => s.clone(),
        _ => item
            .get("blueprint")
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_string(),
    };
    let name = BlueprintName::parse(&name_text)
        .map(|n| n.as_str().to_string())
        .unwrap_or(name_text);
    let mut entries = vec![(Node::str("blueprint"), Node::str(name.clone()))];
    if item.as_map().is_some() {
        for key in ["version", "alias", "when", "values"] {
            if let Some((k, v)) = item.entry(key) {
                entries.push((k.clone(), v.clone()));
            }
        }
        entries.extend(rest(
            item,
            &["blueprint", "version", "alias", "when", "values"],
        ));
    } else if parsed.iter().all(|d| d.blueprint.as_str() != name) {
        // An unparseable string entry is kept as written.
        return item.clone();
    }
    Node::new(NodeValue::Map(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata:
  name: bp-demo
  labels:
    catalyst.openova.io/section: pts-1
spec:
  version: 1.2.3
  card:
    title: Demo
    tagline: A demo.
    shiny: yes
  visibility: listed
  depends:
    - bp-db
    - blueprint: idp
      version: ^1
      alias: idp
      extra: kept
  futureField: {a: 1}
";

    const B: &str = "apiVersion: catalyst.openova.io/v1
kind: Blueprint
metadata:
  name: demo
  version: 1.2.3
spec:
  card:
    title: Demo
    description: A demo.
";

    #[test]
    fn both_dialects_normalize() {
        let a = Blueprint::from_yaml(A).unwrap();
        let b = Blueprint::from_yaml(B).unwrap();
        assert_eq!(a.name.as_str(), "bp-demo");
        assert_eq!(b.name.as_str(), "bp-demo");
        assert_eq!(a.version, b.version);
        assert_eq!(a.card.summary.as_deref(), Some("A demo."));
        assert_eq!(b.card.summary.as_deref(), Some("A demo."));
        assert_eq!(a.visibility, Visibility::Listed);
        assert_eq!(b.visibility, Visibility::Unlisted);
        assert_eq!(a.depends.len(), 2);
        assert_eq!(a.depends[0].blueprint.as_str(), "bp-db");
        assert!(a.depends[0].version.is_any());
        assert_eq!(a.depends[1].blueprint.as_str(), "bp-idp");
        assert_eq!(a.depends[1].alias.as_deref(), Some("idp"));
    }

    #[test]
    fn canonical_form_keeps_unknown_fields_and_is_stable() {
        let a = Blueprint::from_yaml(A).unwrap();
        let text = a.to_canonical_yaml();
        assert!(text.contains("futureField"), "{text}");
        assert!(text.contains("extra: kept"), "{text}");
        assert!(
            text.contains("shiny: yes") || text.contains("shiny: 'yes'"),
            "{text}"
        );
        assert!(text.contains("- blueprint: bp-db\n"), "{text}");
        let again = Blueprint::from_yaml(&text).unwrap();
        assert_eq!(again.to_canonical_yaml(), text);
        assert_eq!(again.name, a.name);
        assert_eq!(again.depends, {
            let mut d = a.depends.clone();
            for (x, y) in d.iter_mut().zip(&again.depends) {
                x.pos = y.pos;
                x.version_pos = y.version_pos;
            }
            d
        });
        assert_eq!(again.card, a.card);
    }

    #[test]
    fn names() {
        assert_eq!(BlueprintName::parse("cnpg").unwrap().as_str(), "bp-cnpg");
        assert_eq!(BlueprintName::parse("bp-cnpg").unwrap().short(), "cnpg");
        for bad in ["", "bp-", "Bad", "a_b", "-a", "a-", "1abc", "a--b"] {
            assert!(BlueprintName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
