//! Lint: every problem in a set of Blueprint files, as rustc-style diagnostics. Pure: the caller
//! reads the files (see [`crate::load`]).

use serde_json::Value;

use crate::catalog::{Catalog, Entry, Source};
use crate::diag::{codes, sort, Diagnostic, Severity};
use crate::model::{parse_blueprint_text, Blueprint, PLACEMENT_MODES};
use crate::yaml::{self, Node, Pos};

/// One file to lint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintFile {
    /// The path as shown in diagnostics.
    pub file: String,
    /// Its text.
    pub text: String,
    /// `chart/Chart.yaml` next to it, if present: (path shown, text).
    pub chart: Option<(String, String)>,
}

/// What lint found.
#[derive(Debug, Clone, Default)]
pub struct LintReport {
    /// Every diagnostic, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// Files checked.
    pub files: usize,
}

impl LintReport {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, s: Severity) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == s).count()
    }
}

/// Lints `files`. Dependencies are checked against the linted files plus `known` (other catalog
/// roots the caller supplied).
pub fn lint(files: &[LintFile], known: &Catalog) -> LintReport {
    let mut diags = Vec::new();
    let mut catalog = known.clone();
    let mut linted: Vec<(Blueprint, String)> = Vec::new();
    for f in files {
        for (pos, word) in yaml::yaml11_booleans(&f.text) {
            diags.push(
                Diagnostic::warning(
                    codes::YAML11_BOOLEAN,
                    &f.file,
                    pos,
                    format!(
                        "`{word}` is the string {word:?} here but the boolean {} to YAML 1.1 readers (Helm, kubectl)",
                        matches!(word.to_ascii_lowercase().as_str(), "y" | "yes" | "on")
                    ),
                )
                .with_hint(format!("quote it (\"{word}\") if a string is meant, or write true/false")),
            );
        }
        let Some(bp) = parse_blueprint_text(&f.text, &f.file, &mut diags) else {
            continue;
        };
        check_blueprint(&bp, f, &mut diags);
        let entry = Entry {
            blueprint: bp.clone(),
            source: Source::Public,
            file: f.file.clone(),
        };
        if let Err(dup) = catalog.insert(entry) {
            diags.push(
                Diagnostic::error(
                    codes::DUPLICATE_VERSION,
                    &f.file,
                    bp.version_pos,
                    format!(
                        "{} {} is also defined in {}",
                        dup.name, dup.version, dup.first
                    ),
                )
                .with_hint("bump the version or remove one of the files"),
            );
        }
        linted.push((bp, f.file.clone()));
    }
    let catalog_size = catalog.all().count();
    for (bp, file) in &linted {
        check_dependencies(bp, file, &catalog, catalog_size > 1, &mut diags);
    }
    sort(&mut diags);
    LintReport {
        diagnostics: diags,
        files: files.len(),
    }
}

/// The Blueprint name a path implies: `x.blueprint.yaml` → `x`, `x/blueprint.yaml` → `x`.
fn name_from_path(file: &str) -> Option<&str> {
    let path = std::path::Path::new(file);
    let base = path.file_name()?.to_str()?;
    let stem = base
        .strip_suffix(".blueprint.yaml")
        .or_else(|| base.strip_suffix(".blueprint.yml"));
    match stem {
        Some(s) => Some(s),
        None if base == "blueprint.yaml" || base == "blueprint.yml" => {
            path.parent()?.file_name()?.to_str()
        }
        None => None,
    }
}

fn check_blueprint(bp: &Blueprint, f: &LintFile, diags: &mut Vec<Diagnostic>) {
    let file = f.file.as_str();
    if let Some(expected) = name_from_path(file) {
        let short = expected.strip_prefix("bp-").unwrap_or(expected);
        // Version suffixes (`x-1.0.0.blueprint.yaml`) are fine: several versions share a root.
        let versioned = short.strip_prefix(bp.name.short()).is_some_and(|rest| {
            rest.starts_with('-') && rest[1..].starts_with(|c: char| c.is_ascii_digit())
        });
        if short != bp.name.short() && !versioned && !expected.is_empty() && expected != "." {
            diags.push(
                Diagnostic::warning(
                    codes::NAME_MISMATCH,
                    file,
                    bp.name_pos,
                    format!(
                        "{} is defined in a file or folder named {expected:?}",
                        bp.name
                    ),
                )
                .with_hint(format!(
                    "name the file {}.blueprint.yaml or the folder {}/",
                    bp.name.short(),
                    bp.name.short()
                )),
            );
        }
    }
    if bp.card.title.is_none() {
        diags.push(
            Diagnostic::warning(
                codes::CARD_TITLE,
                file,
                bp.name_pos,
                format!("{} has no spec.card.title", bp.name),
            )
            .with_hint("the console shows the title on the Blueprint's card"),
        );
    }
    if let Some(p) = &bp.placement {
        for (mode, pos) in p.modes.iter().zip(&p.mode_pos) {
            if !PLACEMENT_MODES.contains(&mode.as_str()) {
                diags.push(
                    Diagnostic::error(
                        codes::PLACEMENT_MODE,
                        file,
                        *pos,
                        format!("unknown placement mode {mode:?}"),
                    )
                    .with_hint(format!("use one of: {}", PLACEMENT_MODES.join(", "))),
                );
            }
        }
        if let Some(d) = &p.default {
            if !p.modes.contains(d) {
                diags.push(
                    Diagnostic::error(
                        codes::PLACEMENT_DEFAULT,
                        file,
                        p.default_pos,
                        format!(
                            "placement default {d:?} is not among the modes [{}]",
                            p.modes.join(", ")
                        ),
                    )
                    .with_hint("pick the default from placementSchema.modes, or add it there"),
                );
            }
        }
        if let (Some(min), Some(max)) = (p.min_regions, p.max_regions) {
            if min > max {
                diags.push(
                    Diagnostic::error(
                        codes::REGIONS_INVERTED,
                        file,
                        p.min_pos,
                        format!("minRegions ({min}) is greater than maxRegions ({max})"),
                    )
                    .with_hint("swap them"),
                );
            }
        }
    }
    let mut seen_alias: Vec<&str> = Vec::new();
    for (i, dep) in bp.depends.iter().enumerate() {
        if dep.blueprint == bp.name {
            diags.push(
                Diagnostic::error(
                    codes::SELF_DEPENDENCY,
                    file,
                    dep.pos,
                    format!("{} depends on itself", bp.name),
                )
                .with_hint("remove this entry"),
            );
        }
        if bp.depends[..i].iter().any(|d| d.blueprint == dep.blueprint) {
            diags.push(
                Diagnostic::warning(
                    codes::DUPLICATE_DEPENDENCY,
                    file,
                    dep.pos,
                    format!("{} is listed twice in depends", dep.blueprint),
                )
                .with_hint("merge the two entries"),
            );
        }
        if let Some(alias) = dep.alias.as_deref() {
            let ok = alias.starts_with(|c: char| c.is_ascii_alphabetic())
                && alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                diags.push(
                    Diagnostic::error(
                        codes::ALIAS,
                        file,
                        dep.pos,
                        format!("alias {alias:?} is not an identifier"),
                    )
                    .with_hint(
                        "charts read it as .Values.dependencies.<alias>; use letters, digits and _",
                    ),
                );
            } else if seen_alias.contains(&alias) {
                diags.push(
                    Diagnostic::error(
                        codes::ALIAS,
                        file,
                        dep.pos,
                        format!("alias {alias:?} is used twice"),
                    )
                    .with_hint("give each dependency its own alias"),
                );
            }
            seen_alias.push(alias);
        }
    }
    if let Some((chart_file, chart_text)) = &f.chart {
        check_chart(bp, file, chart_file, chart_text, diags);
    }
    if let Some(schema) = &bp.config_schema {
        check_schema(bp, file, schema, &f.text, diags);
    }
}

fn check_chart(
    bp: &Blueprint,
    file: &str,
    chart_file: &str,
    chart_text: &str,
    diags: &mut Vec<Diagnostic>,
) {
    let chart = match yaml::parse(chart_text) {
        Ok(c) => c,
        Err(e) => {
            diags.push(Diagnostic::error(
                codes::CHART_YAML,
                chart_file,
                e.pos,
                format!("invalid YAML: {}", e.message),
            ));
            return;
        }
    };
    let Some(v) = chart.get("version") else {
        diags.push(Diagnostic::error(
            codes::CHART_VERSION,
            chart_file,
            chart.pos,
            "Chart.yaml has no version",
        ));
        return;
    };
    let text = v.scalar_text().unwrap_or_default();
    if text != bp.version.to_string() {
        diags.push(
            Diagnostic::error(
                codes::CHART_VERSION,
                file,
                bp.version_pos,
                format!(
                    "Blueprint version {} differs from {chart_file} version {text}",
                    bp.version
                ),
            )
            .with_hint("the chart is published under its Chart.yaml version; keep both equal"),
        );
    }
}

fn check_schema(
    bp: &Blueprint,
    file: &str,
    schema: &Value,
    text: &str,
    diags: &mut Vec<Diagnostic>,
) {
    if let Err(e) = crate::schema::check_schema(schema) {
        diags.push(
            Diagnostic::error(codes::SCHEMA, file, bp.schema_pos, e.to_string())
                .with_hint("configSchema must be a JSON Schema (draft 2020-12)"),
        );
        return;
    }
    // Point at the `default:` key of the offending subschema when we can find it.
    let doc = yaml::parse(text).ok();
    let schema_node = doc
        .as_ref()
        .and_then(|d| d.get("spec"))
        .and_then(|s| s.get("configSchema"));
    for bad in crate::schema::check_defaults(schema) {
        let pos = schema_node
            .and_then(|n| locate(n, &bad.schema_pointer))
            .and_then(|n| n.entry("default"))
            .map_or(bp.schema_pos, |(k, _)| k.pos);
        diags.push(
            Diagnostic::error(
                codes::SCHEMA_DEFAULT,
                file,
                pos,
                format!("configSchema{}: {}", bad.schema_pointer, bad.message),
            )
            .with_hint("make the default satisfy its own schema"),
        );
    }
}

fn locate<'a>(node: &'a Node, pointer: &str) -> Option<&'a Node> {
    let mut cur = node;
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        cur = match cur.as_seq() {
            Some(items) => items.get(seg.parse::<usize>().ok()?)?,
            None => cur.get(&seg)?,
        };
    }
    Some(cur)
}

fn check_dependencies(
    bp: &Blueprint,
    file: &str,
    catalog: &Catalog,
    report_unknown: bool,
    diags: &mut Vec<Diagnostic>,
) {
    for dep in &bp.depends {
        let versions = catalog.versions_of(&dep.blueprint);
        if versions.is_empty() {
            if report_unknown {
                diags.push(
                    Diagnostic::warning(
                        codes::UNKNOWN_DEPENDENCY,
                        file,
                        dep.pos,
                        format!("{} is not in the linted catalog", dep.blueprint),
                    )
                    .with_hint(
                        "lint the whole catalog, or add the root that has it with --catalog",
                    ),
                );
            }
            continue;
        }
        if !versions
            .iter()
            .any(|e| dep.version.matches(&e.blueprint.version))
        {
            let known: Vec<String> = versions
                .iter()
                .map(|e| e.blueprint.version.to_string())
                .collect();
            diags.push(
                Diagnostic::error(
                    codes::UNSATISFIABLE,
                    file,
                    pos_or(dep.version_pos, dep.pos),
                    format!(
                        "no known version of {} satisfies {} (known: {})",
                        dep.blueprint,
                        dep.version,
                        known.join(", ")
                    ),
                )
                .with_hint(format!(
                    "widen the range, e.g. ^{}",
                    versions[0].blueprint.version.major
                )),
            );
        }
    }
}

fn pos_or(a: Pos, b: Pos) -> Pos {
    if a.line == 0 {
        b
    } else {
        a
    }
}
