//! The bootstrap catalog `catalyst serve` renders Sovereigns' bootstrap trees from: the
//! Blueprints of `catalog/bootstrap/` built into the binary (so a server needs no checkout),
//! or a folder given with `--bootstrap-catalog`. The `--catalog` Blueprints are added, so a
//! component the wizard offers from the marketplace resolves too.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use catalyst_blueprint::load::load_catalog;
use catalyst_blueprint::{Catalog, Entry, Severity, Source};

/// `catalog/bootstrap/<name>/blueprint.yaml`, as built in.
const BUILT_IN: [(&str, &str); 12] = [
    (
        "cilium",
        include_str!("../../../catalog/bootstrap/cilium/blueprint.yaml"),
    ),
    (
        "cert-manager",
        include_str!("../../../catalog/bootstrap/cert-manager/blueprint.yaml"),
    ),
    (
        "flux",
        include_str!("../../../catalog/bootstrap/flux/blueprint.yaml"),
    ),
    (
        "crossplane",
        include_str!("../../../catalog/bootstrap/crossplane/blueprint.yaml"),
    ),
    (
        "sealed-secrets",
        include_str!("../../../catalog/bootstrap/sealed-secrets/blueprint.yaml"),
    ),
    (
        "spire",
        include_str!("../../../catalog/bootstrap/spire/blueprint.yaml"),
    ),
    (
        "nats-jetstream",
        include_str!("../../../catalog/bootstrap/nats-jetstream/blueprint.yaml"),
    ),
    (
        "openbao",
        include_str!("../../../catalog/bootstrap/openbao/blueprint.yaml"),
    ),
    (
        "keycloak",
        include_str!("../../../catalog/bootstrap/keycloak/blueprint.yaml"),
    ),
    (
        "gitea",
        include_str!("../../../catalog/bootstrap/gitea/blueprint.yaml"),
    ),
    (
        "powerdns",
        include_str!("../../../catalog/bootstrap/powerdns/blueprint.yaml"),
    ),
    (
        "catalyst-platform",
        include_str!("../../../catalog/bootstrap/catalyst-platform/blueprint.yaml"),
    ),
];

/// The built-in bootstrap Blueprints.
pub fn built_in() -> Result<Catalog> {
    let mut catalog = Catalog::new();
    for (name, text) in BUILT_IN {
        let file = format!("catalog/bootstrap/{name}/blueprint.yaml");
        let mut diags = Vec::new();
        let parsed = catalyst_blueprint::model::parse_blueprint_text(text, &file, &mut diags);
        if let Some(d) = diags.iter().find(|d| d.severity == Severity::Error) {
            bail!(
                "the built-in bootstrap catalog is broken: {file}: {}",
                d.message
            );
        }
        let Some(blueprint) = parsed else {
            bail!("the built-in bootstrap catalog is broken: {file}");
        };
        catalog
            .insert(Entry {
                blueprint,
                source: Source::Public,
                file,
            })
            .map_err(|e| anyhow::anyhow!("the built-in bootstrap catalog: {e}"))?;
    }
    Ok(catalog)
}

/// The bootstrap catalog: `dir` (or the built-in one), plus the `extra` roots' Blueprints that
/// it lacks.
pub fn load(dir: Option<&PathBuf>, extra: &[PathBuf]) -> Result<Catalog> {
    let mut catalog = match dir {
        Some(d) => {
            let (c, diags) = load_catalog(&[(Source::Public, d.clone())])
                .with_context(|| format!("cannot read --bootstrap-catalog {}", d.display()))?;
            if let Some(e) = diags.iter().find(|x| x.severity == Severity::Error) {
                bail!(
                    "--bootstrap-catalog {}: {}: {}",
                    d.display(),
                    e.file,
                    e.message
                );
            }
            c
        }
        None => built_in()?,
    };
    let roots: Vec<_> = extra
        .iter()
        .map(|r| (Source::Sovereign, r.clone()))
        .collect();
    let (more, _) = load_catalog(&roots).context("cannot load --catalog")?;
    for e in more.all() {
        if catalog.versions_of(&e.blueprint.name).is_empty() {
            let _ = catalog.insert(e.clone());
        }
    }
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_catalog_is_the_folder() {
        let built = built_in().unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../catalog/bootstrap");
        let (folder, _) = load_catalog(&[(Source::Public, dir)]).unwrap();
        let names = |c: &Catalog| {
            let mut v: Vec<String> = c
                .all()
                .map(|e| format!("{}@{}", e.blueprint.name, e.blueprint.version))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            names(&built),
            names(&folder),
            "a Blueprint was added to catalog/bootstrap but not to BUILT_IN"
        );
    }
}
