//! The thin file-system edge: finds Blueprint files and reads them. Everything else is pure.
//!
//! A path is a `blueprint.yaml` (or `*.blueprint.yaml`) file, a Blueprint folder (holding
//! `blueprint.yaml`, and maybe `chart/Chart.yaml`), or a catalog root: a folder of Blueprint
//! folders and/or `*.blueprint.yaml` files.

use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, Entry, Source};
use crate::diag::{codes, Diagnostic};
use crate::lint::LintFile;
use crate::model::{parse_blueprint_text, Visibility};
use crate::yaml::Pos;

/// A file-system problem.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Nothing that looks like a Blueprint there.
    #[error("{0}: no blueprint.yaml, *.blueprint.yaml or Blueprint folder found")]
    Empty(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LoadError + '_ {
    move |source| LoadError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn is_blueprint_file(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        n == "blueprint.yaml"
            || n == "blueprint.yml"
            || n.ends_with(".blueprint.yaml")
            || n.ends_with(".blueprint.yml")
    })
}

/// The Blueprint files under `path`, sorted.
pub fn discover(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let own = path.join("blueprint.yaml");
    if own.is_file() {
        return Ok(vec![own]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io(path))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_file() && is_blueprint_file(&p) {
            out.push(p);
        } else if p.is_dir() && p.join("blueprint.yaml").is_file() {
            out.push(p.join("blueprint.yaml"));
        }
    }
    if out.is_empty() {
        return Err(LoadError::Empty(path.display().to_string()));
    }
    Ok(out)
}

/// Reads one Blueprint file (and `chart/Chart.yaml` next to a `blueprint.yaml`).
pub fn read(path: &Path) -> Result<LintFile, LoadError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let chart_path = path.parent().map(|d| d.join("chart").join("Chart.yaml"));
    let chart = match chart_path {
        Some(c) if c.is_file() => Some((
            c.display().to_string(),
            std::fs::read_to_string(&c).map_err(io(&c))?,
        )),
        _ => None,
    };
    Ok(LintFile {
        file: path.display().to_string(),
        text,
        chart,
    })
}

/// Reads every Blueprint file under each path.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<LintFile>, LoadError> {
    let mut out = Vec::new();
    for p in paths {
        for f in discover(p)? {
            out.push(read(&f)?);
        }
    }
    Ok(out)
}

/// Builds a catalog from roots. Files that do not parse, and duplicate versions, become
/// diagnostics; the rest is loaded.
pub fn load_catalog(roots: &[(Source, PathBuf)]) -> Result<(Catalog, Vec<Diagnostic>), LoadError> {
    let mut catalog = Catalog::new();
    let mut diags = Vec::new();
    for (source, root) in roots {
        for path in discover(root)? {
            let f = read(&path)?;
            let Some(bp) = parse_blueprint_text(&f.text, &f.file, &mut diags) else {
                continue;
            };
            let pos = Pos { line: 1, column: 1 };
            if bp.visibility == Visibility::Private && !matches!(source, Source::Organization(_)) {
                diags.push(
                    Diagnostic::warning(
                        codes::PRIVATE_OUTSIDE_ORG,
                        &f.file,
                        pos,
                        format!("{} is private but in the {source} catalog, so nobody can see it", bp.name),
                    )
                    .with_hint("put it in its Organization's catalog (--org-catalog ORG=DIR), or make it unlisted"),
                );
            }
            if let Err(dup) = catalog.insert(Entry {
                blueprint: bp,
                source: source.clone(),
                file: f.file.clone(),
            }) {
                diags.push(Diagnostic::error(
                    codes::DUPLICATE_VERSION,
                    &f.file,
                    pos,
                    dup.to_string(),
                ));
            }
        }
    }
    Ok((catalog, diags))
}
