//! Blueprint folders for tests and benches that package real artifacts (shared with
//! `benches/install_http.rs` through `#[path]`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Writes the Blueprint folder `root/<dir>` (blueprint.yaml + a chart named after it).
pub fn blueprint(root: &Path, dir: &str, name: &str, version: &str, depends: &str) -> PathBuf {
    let path = root.join(dir);
    std::fs::create_dir_all(path.join("chart/templates")).unwrap();
    std::fs::write(
        path.join("blueprint.yaml"),
        format!(
            "apiVersion: catalyst.openova.io/v1alpha1\nkind: Blueprint\nmetadata:\n  name: {name}\nspec:\n  version: {version}\n  card:\n    title: {name}\n    summary: A test Blueprint.\n  visibility: listed\n{depends}"
        ),
    )
    .unwrap();
    std::fs::write(
        path.join("chart/Chart.yaml"),
        format!("apiVersion: v2\nname: {name}\nversion: {version}\ntype: application\n"),
    )
    .unwrap();
    std::fs::write(
        path.join("chart/templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
    )
    .unwrap();
    path
}
