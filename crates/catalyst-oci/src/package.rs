//! Reproducible packaging of a Blueprint folder (`blueprint.yaml` + `chart/`) into an OCI artifact
//! that Helm and Flux pull as an ordinary chart.
//!
//! Reproducibility: chart files are walked in sorted path order, every tar entry gets mode 0644,
//! uid/gid 0, empty owner names and mtime 0; the gzip header has mtime 0, no file name and OS byte
//! 255; the config is the chart's `Chart.yaml` as compact JSON. The same folder therefore yields
//! the same manifest digest (with the same `flate2` build: the compressor is part of the recipe).

use std::io::Write;
use std::path::Path;

use flate2::{Compression, GzBuilder};

use crate::manifest::{Descriptor, Manifest};
use crate::{io_err, media, yaml, Digest, Error, Result};

/// A packaged Blueprint: the manifest and every blob it references.
#[derive(Debug, Clone)]
pub struct Package {
    /// The manifest bytes.
    pub manifest: Vec<u8>,
    /// The manifest digest: the artifact's identity.
    pub digest: Digest,
    /// Config and layers, with their bytes.
    pub blobs: Vec<(Descriptor, Vec<u8>)>,
    /// The chart's `name`.
    pub chart_name: String,
    /// The chart's `version` (the default tag).
    pub chart_version: String,
}

impl Package {
    /// The chart archive (the Helm content layer).
    pub fn chart_archive(&self) -> &[u8] {
        self.blobs
            .iter()
            .find(|(d, _)| d.media_type == media::HELM_CHART)
            .map(|(_, b)| b.as_slice())
            .unwrap_or_default()
    }
}

/// Packages the Blueprint folder `dir`.
pub fn package_dir(dir: &Path) -> Result<Package> {
    let bp_path = dir.join("blueprint.yaml");
    let chart_dir = dir.join("chart");
    let blueprint = std::fs::read(&bp_path).map_err(|e| {
        Error::Package(format!(
            "{}: {e} (a Blueprint folder holds blueprint.yaml and chart/)",
            bp_path.display()
        ))
    })?;
    let blueprint = normalize_yaml(&blueprint);
    let bp = yaml::to_json(&blueprint, "blueprint.yaml")?;
    if !bp.is_object() {
        return Err(Error::Package(
            "blueprint.yaml is not a YAML mapping".into(),
        ));
    }
    let chart_yaml_path = chart_dir.join("Chart.yaml");
    let chart_yaml = std::fs::read(&chart_yaml_path)
        .map_err(|e| Error::Package(format!("{}: {e}", chart_yaml_path.display())))?;
    let chart = yaml::to_json(&chart_yaml, "chart/Chart.yaml")?;
    let (chart_name, chart_version) = yaml::chart_name_version(&chart).ok_or_else(|| {
        Error::Package("chart/Chart.yaml needs string fields `name` and `version`".into())
    })?;
    let archive = chart_archive(&chart_dir, &chart_name)?;
    let config =
        serde_json::to_vec(&sorted_keys(chart)).map_err(|e| Error::Package(e.to_string()))?;

    let config_desc = Descriptor::of(media::HELM_CONFIG, &config);
    let chart_desc = Descriptor::of(media::HELM_CHART, &archive);
    let bp_desc = Descriptor::of(media::BLUEPRINT, &blueprint)
        .with_annotation(media::ANN_TITLE, "blueprint.yaml");
    let mut manifest = Manifest::new(
        config_desc.clone(),
        vec![chart_desc.clone(), bp_desc.clone()],
    );
    manifest
        .annotations
        .insert(media::ANN_TITLE.into(), chart_name.clone());
    manifest
        .annotations
        .insert(media::ANN_VERSION.into(), chart_version.clone());
    let manifest = manifest.to_bytes();
    Ok(Package {
        digest: Digest::of(&manifest),
        manifest,
        blobs: vec![
            (config_desc, config),
            (chart_desc, archive),
            (bp_desc, blueprint),
        ],
        chart_name,
        chart_version,
    })
}

/// The same value with object keys in sorted order at every level, whatever map type
/// `serde_json` was built with (its `preserve_order` feature may be on elsewhere in a build).
fn sorted_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted_keys(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted_keys).collect())
        }
        other => other,
    }
}

/// LF line endings, no BOM, one trailing newline: the normalized form we publish.
fn normalize_yaml(bytes: &[u8]) -> Vec<u8> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len() + 1);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            continue;
        }
        out.push(b);
    }
    while out.ends_with(b"\n\n") {
        out.pop();
    }
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

/// Builds the chart archive of `chart_dir` with entries under `<prefix>/`, as `helm package`
/// lays them out, honouring `.helmignore` (simple globs) and skipping `.git`.
pub fn chart_archive(chart_dir: &Path, prefix: &str) -> Result<Vec<u8>> {
    let ignore = std::fs::read_to_string(chart_dir.join(".helmignore"))
        .map(|s| HelmIgnore::parse(&s))
        .unwrap_or_default();
    let mut files = Vec::new();
    walk(chart_dir, "", &ignore, &mut files)?;
    files.sort();

    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::new(6));
    let mut tar = tar::Builder::new(gz);
    for rel in &files {
        let path = chart_dir.join(rel);
        let data = std::fs::read(&path).map_err(io_err(&path))?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        let name = format!("{prefix}/{rel}");
        tar.append_data(&mut header, &name, data.as_slice())
            .map_err(|e| Error::Package(format!("{name}: {e}")))?;
    }
    let gz = tar
        .into_inner()
        .map_err(|e| Error::Package(format!("tar: {e}")))?;
    let mut out = gz
        .finish()
        .map_err(|e| Error::Package(format!("gzip: {e}")))?;
    out.flush().ok();
    Ok(out)
}

fn walk(root: &Path, rel: &str, ignore: &HelmIgnore, out: &mut Vec<String>) -> Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let entries = std::fs::read_dir(&dir).map_err(io_err(&dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err(&dir))?;
        let name = entry.file_name();
        let name = name.to_str().ok_or_else(|| {
            Error::Package(format!(
                "{}: file name is not UTF-8",
                entry.path().display()
            ))
        })?;
        let child = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let meta = std::fs::metadata(entry.path()).map_err(io_err(entry.path()))?;
        let is_dir = meta.is_dir();
        if name == ".git" || ignore.ignored(&child, is_dir) {
            continue;
        }
        if is_dir {
            if entry.file_type().map(|t| t.is_symlink()).unwrap_or(false) {
                return Err(Error::Package(format!(
                    "{}: symlinked directories are not packaged; copy the directory instead",
                    entry.path().display()
                )));
            }
            walk(root, &child, ignore, out)?;
        } else if meta.is_file() {
            out.push(child);
        }
    }
    Ok(())
}

/// The subset of `.helmignore` we honour: comments, `dir/` patterns, and `*`/`?` globs matched
/// against the base name (patterns without `/`) or the relative path.
#[derive(Debug, Default)]
struct HelmIgnore {
    patterns: Vec<(String, bool)>,
}

impl HelmIgnore {
    fn parse(text: &str) -> Self {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
            .map(|l| match l.strip_suffix('/') {
                Some(d) => (d.trim_start_matches("./").to_string(), true),
                None => (l.trim_start_matches("./").to_string(), false),
            })
            .collect();
        Self { patterns }
    }

    fn ignored(&self, rel: &str, is_dir: bool) -> bool {
        let base = rel.rsplit('/').next().unwrap_or(rel);
        self.patterns.iter().any(|(p, dir_only)| {
            (!dir_only || is_dir)
                && if p.contains('/') {
                    glob(p.as_bytes(), rel.as_bytes())
                } else {
                    glob(p.as_bytes(), base.as_bytes())
                }
        })
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob(p, &s[1..])),
        (Some(b'?'), Some(c)) if *c != b'/' => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_normalization() {
        assert!(glob(b"*.tgz", b"a.tgz"));
        assert!(!glob(b"*.tgz", b"a.tgz.x"));
        assert!(glob(b"tests/*.sh", b"tests/a.sh"));
        assert!(!glob(b"*", b"a/b"));
        let ig = HelmIgnore::parse("# c\n.DS_Store\n*.swp\nci/\n");
        assert!(ig.ignored("x/.DS_Store", false));
        assert!(ig.ignored("ci", true));
        assert!(!ig.ignored("ci", false));
        assert_eq!(
            normalize_yaml(b"\xEF\xBB\xBFa: 1\r\nb: 2\r\n\n\n"),
            b"a: 1\nb: 2\n"
        );
    }
}
