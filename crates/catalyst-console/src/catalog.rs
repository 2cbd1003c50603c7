//! The Blueprint catalog as the console shows it: cards for the marketplace and the wizard's
//! Components step, dependency trees and configSchema forms. Everything Blueprint-specific —
//! parsing, visibility, resolution, validation — is the Blueprint engine's
//! (`catalyst-blueprint`); this module only shapes its answers for pages.
use std::collections::BTreeSet;
use std::path::PathBuf;

use catalyst_blueprint::load::{load_catalog, LoadError};
use catalyst_blueprint::model::Visibility;
use catalyst_blueprint::resolve::Request;
use catalyst_blueprint::schema::{validate_values, SchemaError, Validated};
use catalyst_blueprint::{
    resolve_plan, BlueprintName, Options, Severity, Source, VersionRange, Viewer,
};
use semver::Version;
use serde_json::{json, Map, Value};

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A root could not be read.
    #[error("cannot read the Blueprint catalog: {0}")]
    Load(#[from] LoadError),
}

/// One Blueprint (all its visible versions) as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// `bp-<name>`.
    pub name: String,
    /// Card title.
    pub title: String,
    /// Card summary.
    pub summary: String,
    /// Family / category (lowercase), empty when the Blueprint names none.
    pub family: String,
    /// Versions, newest first.
    pub versions: Vec<String>,
    /// Blueprints the newest version depends on (`bp-<name>`).
    pub depends: Vec<String>,
    /// True when the Blueprint appears in listings (`visibility: listed`).
    pub listed: bool,
}

impl CatalogEntry {
    /// The newest version, if any.
    pub fn latest(&self) -> Option<&str> {
        self.versions.first().map(String::as_str)
    }
}

/// One node of a resolved dependency tree, depth-first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeRow {
    /// Nesting depth (0 is the Blueprint itself).
    pub depth: usize,
    /// `bp-<name>`.
    pub name: String,
    /// Chosen version; `None` when the catalog lacks the Blueprint.
    pub version: Option<String>,
    /// True when the node was already shown higher up (a diamond), so its children are not
    /// repeated.
    pub repeated: bool,
}

/// The resolved dependency tree of one Blueprint version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    /// Depth-first rows.
    pub rows: Vec<TreeRow>,
    /// Install layers (what may install in parallel), first layer first.
    pub layers: Vec<Vec<String>>,
    /// Required Blueprints the catalog cannot provide, with who requires them.
    pub missing: Vec<String>,
    /// Why resolution failed, when it did.
    pub error: Option<String>,
}

/// The catalog: every non-private Blueprint the Sovereign knows.
#[derive(Debug, Default)]
pub struct Catalog {
    engine: catalyst_blueprint::Catalog,
    entries: Vec<CatalogEntry>,
    warnings: Vec<String>,
}

impl Catalog {
    /// No Blueprints.
    pub fn empty() -> Self {
        Catalog::default()
    }

    /// Loads the roots (folders of Blueprint folders or of `*.blueprint.yaml` files) as the
    /// Sovereign-curated source. Files that do not parse become [`Catalog::warnings`].
    pub fn load(roots: &[PathBuf]) -> Result<Self, CatalogError> {
        let roots: Vec<(Source, PathBuf)> = roots
            .iter()
            .map(|r| (Source::Sovereign, r.clone()))
            .collect();
        let (engine, diags) = load_catalog(&roots)?;
        let warnings = diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| {
                format!(
                    "{}:{}:{}: {} [{}]",
                    d.file, d.line, d.column, d.message, d.code
                )
            })
            .collect();
        Ok(Catalog::from_engine(engine, warnings))
    }

    /// Wraps an engine catalog.
    pub fn from_engine(engine: catalyst_blueprint::Catalog, warnings: Vec<String>) -> Self {
        let viewer = Viewer::default();
        let mut entries: Vec<CatalogEntry> = engine
            .list(&viewer, true)
            .into_iter()
            .map(|latest| {
                let bp = &latest.blueprint;
                let versions = engine
                    .versions_of(&bp.name)
                    .iter()
                    .filter(|e| catalyst_blueprint::Catalog::visible(e, &viewer))
                    .map(|e| e.blueprint.version.to_string())
                    .collect();
                CatalogEntry {
                    name: bp.name.to_string(),
                    title: bp
                        .card
                        .title
                        .clone()
                        .unwrap_or_else(|| bp.name.short().to_owned()),
                    summary: bp
                        .card
                        .summary
                        .clone()
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                    family: bp
                        .card
                        .category
                        .clone()
                        .unwrap_or_default()
                        .trim()
                        .to_lowercase(),
                    versions,
                    depends: bp.depends.iter().map(|d| d.blueprint.to_string()).collect(),
                    listed: bp.visibility == Visibility::Listed,
                }
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Catalog {
            engine,
            entries,
            warnings,
        }
    }

    /// Problems met while loading (files skipped).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every visible entry, by name.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The entries that appear in listings.
    pub fn listed(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.iter().filter(|e| e.listed)
    }

    /// Looks an entry up by `bp-<name>` or `<name>`.
    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        let name = BlueprintName::parse(name).ok()?;
        self.entries.iter().find(|e| e.name == name.as_str())
    }

    /// Families of the listed entries, sorted, without duplicates.
    pub fn families(&self) -> Vec<String> {
        self.listed()
            .map(|e| e.family.clone())
            .filter(|f| !f.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The wizard's component data: every visible entry with its direct dependencies (the
    /// script computes the closure as the person picks).
    pub fn component_data(&self) -> Value {
        Value::Array(
            self.entries
                .iter()
                .map(|e| {
                    json!({
                        "name": e.name, "title": e.title, "summary": e.summary,
                        "family": e.family, "version": e.latest(), "depends": e.depends,
                        "listed": e.listed,
                    })
                })
                .collect(),
        )
    }

    fn version_entry(
        &self,
        name: &str,
        version: &str,
    ) -> Option<&catalyst_blueprint::catalog::Entry> {
        let name = BlueprintName::parse(name).ok()?;
        let version = Version::parse(version).ok()?;
        self.engine.get(&name, &version, &Viewer::default())
    }

    /// The configSchema of one version, if it has one.
    pub fn config_schema(&self, name: &str, version: &str) -> Option<&Value> {
        self.version_entry(name, version)?
            .blueprint
            .config_schema
            .as_ref()
    }

    /// Validates values against one version's configSchema (the engine's validator).
    pub fn validate(
        &self,
        name: &str,
        version: &str,
        values: &Value,
    ) -> Option<Result<Validated, SchemaError>> {
        let schema = self.config_schema(name, version)?;
        Some(validate_values(schema, values))
    }

    /// Resolves one version and lays its dependencies out as a tree.
    pub fn tree(&self, name: &str, version: &str) -> Tree {
        let (Ok(bp), Ok(v)) = (BlueprintName::parse(name), Version::parse(version)) else {
            return Tree {
                error: Some(format!("{name} {version} is not a Blueprint version")),
                ..Tree::default()
            };
        };
        let req = Request {
            name: bp.clone(),
            range: VersionRange::exact(&v),
        };
        let plan = match resolve_plan(&self.engine, &[req], &Options::default()) {
            Ok(p) => p,
            Err(e) => {
                return Tree {
                    error: Some(e.to_string()),
                    ..Tree::default()
                }
            }
        };
        let mut rows = Vec::new();
        let mut shown = BTreeSet::new();
        let mut stack = vec![(0usize, bp, Some(v))];
        while let Some((depth, n, ver)) = stack.pop() {
            let repeated = !shown.insert(n.clone());
            rows.push(TreeRow {
                depth,
                name: n.to_string(),
                version: ver.as_ref().map(Version::to_string),
                repeated,
            });
            if repeated {
                continue;
            }
            if let Some(p) = plan.get(&n) {
                for edge in p.depends_on.iter().rev() {
                    stack.push((depth + 1, edge.name.clone(), edge.version.clone()));
                }
            }
        }
        Tree {
            rows,
            layers: plan
                .layers
                .iter()
                .map(|l| {
                    l.iter()
                        .map(|p| format!("{} {}", p.name, p.version))
                        .collect()
                })
                .collect(),
            missing: plan
                .missing
                .iter()
                .map(|m| {
                    format!(
                        "{} (required by {}): {}",
                        m.name,
                        m.required_by.join(", "),
                        m.reason
                    )
                })
                .collect(),
            error: None,
        }
    }
}

/// One control of a configSchema form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    /// JSON pointer of the value (`/backends/anthropic/enabled`); also the control's name.
    pub pointer: String,
    /// HTML id.
    pub id: String,
    /// Label (the property path, or the schema's `title`).
    pub label: String,
    /// Help text (`description`).
    pub help: String,
    /// `text`, `password`, `number`, `checkbox`, `select` or `group` (a heading for a nested
    /// object).
    pub kind: &'static str,
    /// Current value as text.
    pub value: String,
    /// Choices of a `select`.
    pub options: Vec<String>,
    /// `min` of a number.
    pub min: String,
    /// `max` of a number.
    pub max: String,
    /// `step` of a number (`1` for integers, `any` otherwise).
    pub step: &'static str,
    /// Required by the schema.
    pub required: bool,
    /// Validation error at this pointer, after a submit.
    pub error: String,
    /// Nesting depth.
    pub depth: usize,
    /// The schema's JSON type (`string`, `integer`, `number`, `boolean`, `object`): how a
    /// browser types the control's text (a `select` of numbers sends numbers).
    pub json_type: String,
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The form for a configSchema: one control per leaf property, groups for nested objects.
/// `values` fills the controls (defaults when empty).
pub fn form_fields(schema: &Value, values: &Value) -> Vec<FormField> {
    let mut out = Vec::new();
    walk(schema, values, "", 0, &mut out);
    out
}

fn walk(schema: &Value, values: &Value, pointer: &str, depth: usize, out: &mut Vec<FormField>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let req = schema
        .get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (key, prop) in props {
        let ptr = format!("{pointer}/{}", pointer_escape(key));
        let label = prop
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or(key)
            .to_owned();
        let help = prop
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let current = values
            .pointer(&ptr)
            .cloned()
            .or_else(|| prop.get("default").cloned());
        let is_required = req.iter().any(|r| r.as_str() == Some(key.as_str()));
        let ty = prop.get("type").and_then(Value::as_str).unwrap_or("string");
        let mut field = FormField {
            id: format!("cfg{}", ptr.replace(['/', '~'], "-")),
            pointer: ptr.clone(),
            label,
            help,
            kind: "text",
            value: current.as_ref().map(text_of).unwrap_or_default(),
            options: Vec::new(),
            min: prop.get("minimum").map(text_of).unwrap_or_default(),
            max: prop.get("maximum").map(text_of).unwrap_or_default(),
            step: "any",
            required: is_required,
            error: String::new(),
            depth,
            json_type: ty.to_owned(),
        };
        if ty == "object" && prop.get("properties").is_some() {
            field.kind = "group";
            field.value.clear();
            out.push(field);
            walk(prop, values, &ptr, depth + 1, out);
            continue;
        }
        if let Some(choices) = prop.get("enum").and_then(Value::as_array) {
            field.kind = "select";
            field.options = choices.iter().map(text_of).collect();
        } else {
            field.kind = match ty {
                "boolean" => "checkbox",
                "integer" => {
                    field.step = "1";
                    "number"
                }
                "number" => "number",
                _ if prop.get("x-catalyst-ui-hint").and_then(Value::as_str) == Some("password") => {
                    "password"
                }
                _ => "text",
            };
        }
        if field.kind == "password" {
            // A secret is never echoed back into the page.
            field.value.clear();
        }
        out.push(field);
    }
}

/// Turns submitted form pairs (`pointer`, text) into values typed by the schema. Empty text
/// leaves the property out (so defaults apply); text that does not parse as the schema's type
/// is kept as a string, so the validator reports it. Unchecked checkboxes become `false`.
pub fn values_from_form(schema: &Value, pairs: &[(String, String)]) -> Value {
    let mut root = Value::Object(Map::new());
    for f in form_fields(schema, &Value::Null) {
        if f.kind == "group" {
            continue;
        }
        let ty = schema_at(schema, &f.pointer)
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("string");
        let submitted = pairs
            .iter()
            .rev()
            .find(|(k, _)| k == &f.pointer)
            .map(|(_, v)| v.trim().to_owned());
        let value = match (ty, submitted) {
            ("boolean", s) => Value::Bool(matches!(s.as_deref(), Some("true" | "on"))),
            (_, None) => continue,
            (_, Some(s)) if s.is_empty() => continue,
            ("integer", Some(s)) => s
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::String(s)),
            ("number", Some(s)) => s
                .parse::<f64>()
                .ok()
                .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
                .unwrap_or(Value::String(s)),
            (_, Some(s)) => Value::String(s),
        };
        set_pointer(&mut root, &f.pointer, value);
    }
    root
}

fn unescape(seg: &str) -> String {
    seg.replace("~1", "/").replace("~0", "~")
}

fn schema_at<'a>(schema: &'a Value, pointer: &str) -> Option<&'a Value> {
    let mut cur = schema;
    for seg in pointer.split('/').skip(1) {
        cur = cur.get("properties")?.get(unescape(seg))?;
    }
    Some(cur)
}

fn set_pointer(root: &mut Value, pointer: &str, value: Value) {
    let segs: Vec<String> = pointer.split('/').skip(1).map(unescape).collect();
    let mut cur = root;
    for (i, seg) in segs.iter().enumerate() {
        let Value::Object(map) = cur else { return };
        if i + 1 == segs.len() {
            map.insert(seg.clone(), value);
            return;
        }
        cur = map
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["hostname"],
            "properties": {
                "hostname": {"type": "string", "format": "hostname", "description": "Public name"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 5, "default": 2},
                "tier": {"type": "string", "enum": ["small", "large"], "default": "small"},
                "adminPassword": {"type": "string", "x-catalyst-ui-hint": "password"},
                "backup": {"type": "object", "properties": {
                    "enabled": {"type": "boolean", "default": true},
                    "a/b": {"type": "number"}
                }}
            }
        })
    }

    #[test]
    fn form_fields_follow_the_schema() {
        let f = form_fields(&schema(), &Value::Null);
        let kinds: Vec<(&str, &str)> = f.iter().map(|x| (x.pointer.as_str(), x.kind)).collect();
        assert!(kinds.contains(&("/hostname", "text")));
        assert!(kinds.contains(&("/replicas", "number")));
        assert!(kinds.contains(&("/tier", "select")));
        assert!(kinds.contains(&("/adminPassword", "password")));
        assert!(kinds.contains(&("/backup", "group")));
        assert!(kinds.contains(&("/backup/enabled", "checkbox")));
        assert!(kinds.contains(&("/backup/a~1b", "number")));
        let replicas = f.iter().find(|x| x.pointer == "/replicas").unwrap();
        assert_eq!((replicas.value.as_str(), replicas.min.as_str()), ("2", "1"));
        assert!(
            f.iter()
                .find(|x| x.pointer == "/hostname")
                .unwrap()
                .required
        );
    }

    #[test]
    fn form_values_are_typed_by_the_schema() {
        let pairs = vec![
            ("/hostname".to_owned(), " app.example.com ".to_owned()),
            ("/replicas".to_owned(), "three".to_owned()),
            ("/tier".to_owned(), "".to_owned()),
            ("/backup/a~1b".to_owned(), "1.5".to_owned()),
        ];
        let v = values_from_form(&schema(), &pairs);
        assert_eq!(
            v,
            json!({"hostname": "app.example.com", "replicas": "three",
                   "backup": {"enabled": false, "a/b": 1.5}})
        );
    }
}
