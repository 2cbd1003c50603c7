//! The one place that reads YAML: chart metadata, the `name`/`version` of a `blueprint.yaml`
//! (kept minimal on purpose; `catalyst-blueprint` owns the model) and image references in values.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::{Error, Result};

/// Parses YAML bytes into a JSON value.
pub(crate) fn to_json(bytes: &[u8], what: &str) -> Result<Value> {
    serde_norway::from_slice::<Value>(bytes).map_err(|e| Error::Malformed {
        what: what.to_string(),
        detail: e.to_string(),
    })
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
}

/// `name` and `version` of a chart's `Chart.yaml`.
pub(crate) fn chart_name_version(chart: &Value) -> Option<(String, String)> {
    let name = str_at(chart, &["name"])?;
    let version = match chart.get("version")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Some((name.to_string(), version))
}

/// `metadata.name` and `spec.version` (or `metadata.version`, the documented dialect).
pub(crate) fn blueprint_name_version(bp: &Value) -> (Option<String>, Option<String>) {
    let name = str_at(bp, &["metadata", "name"]).map(str::to_string);
    let version = str_at(bp, &["spec", "version"])
        .or_else(|| str_at(bp, &["metadata", "version"]))
        .map(str::to_string);
    (name, version)
}

fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn plausible(image: &str) -> bool {
    !image.contains("{{") && !image.contains(char::is_whitespace) && !image.is_empty()
}

/// Collects container image references from chart values: `image: "repo:tag"`, maps with
/// `repository` plus `tag`/`digest` (and an optional `registry`), and `images:` string lists.
pub(crate) fn images_in_values(values: &Value, out: &mut BTreeSet<String>) {
    match values {
        Value::Object(map) => {
            if let Some(repo) = scalar(map.get("repository")) {
                let tag = scalar(map.get("tag"));
                let digest = scalar(map.get("digest"));
                if tag.is_some() || digest.is_some() || map.contains_key("registry") {
                    let mut image = match scalar(map.get("registry")) {
                        Some(reg) => format!("{}/{}", reg.trim_end_matches('/'), repo),
                        None => repo,
                    };
                    if let Some(t) = tag {
                        image = format!("{image}:{t}");
                    }
                    if let Some(d) = digest {
                        image = format!("{image}@{d}");
                    }
                    if plausible(&image) {
                        out.insert(image);
                    }
                }
            }
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("image", Value::String(s)) if plausible(s.trim()) => {
                        out.insert(s.trim().to_string());
                    }
                    ("images", Value::Array(items)) => {
                        for item in items {
                            match item {
                                Value::String(s) if plausible(s.trim()) => {
                                    out.insert(s.trim().to_string());
                                }
                                other => images_in_values(other, out),
                            }
                        }
                    }
                    _ => images_in_values(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| images_in_values(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(values: &str, expect: &[&str]) {
        let mut out = BTreeSet::new();
        images_in_values(&to_json(values.as_bytes(), "values").unwrap(), &mut out);
        assert_eq!(out.into_iter().collect::<Vec<_>>(), expect, "{values}");
    }

    #[test]
    fn image_patterns() {
        check("image: nginx:1.27\n", &["nginx:1.27"]);
        check(
            "cilium:\n  image:\n    repository: quay.io/cilium/cilium\n    tag: v1.16.5\n",
            &["quay.io/cilium/cilium:v1.16.5"],
        );
        check(
            "a:\n  image:\n    registry: docker.io\n    repository: bitnami/keycloak\n    tag: 25.0.1\n    digest: sha256:abc\n",
            &["docker.io/bitnami/keycloak:25.0.1@sha256:abc"],
        );
        check(
            "catalystBlueprint:\n  images: [ghcr.io/a/b:1, ghcr.io/a/c:2]\nx:\n  repository: r/x\n  tag: 1.5\n",
            &["ghcr.io/a/b:1", "ghcr.io/a/c:2", "r/x:1.5"],
        );
        check("image: \"{{ .Values.x }}\"\nrepository: only-a-repo\n", &[]);
    }
}
