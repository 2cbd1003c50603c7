//! A Sovereign's bootstrap tree, `clusters/<fqdn>/`: the bootstrap kit resolved by the Blueprint
//! engine and laid out for Flux. Pure: the files follow from the bootstrap catalog, the
//! Sovereign's FQDN and region and the components the user chose.
//!
//! What is installed: `bp-catalyst-platform` and every `unlisted` Blueprint of the bootstrap
//! catalog (the kit every Sovereign runs), plus each chosen component (a `listed` Blueprint the
//! wizard's Components step offers) and whatever those need. A `listed` Blueprint nobody chose
//! and nothing chosen needs is left out.
//!
//! Layout, per Blueprint in the plan's order (`NN` counts from `01`):
//! - `NN-<name>/ocirepository.yaml`, `NN-<name>/helmrelease.yaml`: its Flux source and release
//!   as [`catalyst_blueprint::render`] makes them (digest when the catalog records one, else the
//!   exact version tag; values checked against the configSchema), and
//!   `NN-<name>/kustomization.yaml` listing the two;
//! - `NN-<name>.yaml`: a Flux `Kustomization` `bp-<name>` applying `./clusters/<fqdn>/NN-<name>`
//!   with `dependsOn` the Kustomizations of the Blueprints the plan installs it after, and
//!   `wait`, so a component starts only once what it needs is ready;
//! - `kustomization.yaml`: the `NN-<name>.yaml` files, so the root Kustomization the cloud-init
//!   creates (`path: ./clusters/<fqdn>`) applies the per-component Kustomizations and each of
//!   them applies its folder (nothing is applied twice).
//!
//! Every Blueprint gets `global.sovereignFQDN` and `global.region`; `bp-catalyst-platform` also
//! `flux.enabled` with `flux.existingSecret: catalyst-flux` (the Secret the cloud-init makes), so
//! the Sovereign's own Catalyst hands its Environments' plumbing to Flux.
use std::collections::{BTreeMap, BTreeSet};

use catalyst_blueprint::render::{render as render_flux, RenderError, RenderOptions};
use catalyst_blueprint::resolve::Request;
use catalyst_blueprint::{resolve_plan, BlueprintName, Catalog, Options, VersionRange, Visibility};
use serde_json::{json, Value};

use crate::{yaml, GitopsError, ValueProblem};

/// The Blueprint the tree is resolved for (Catalyst itself; it depends on the kit).
pub const ROOT: &str = "bp-catalyst-platform";
/// The Secret in `catalyst-system` the cloud-init makes for the Sovereign's own Catalyst and its
/// Environments' Flux plumbing (`username`, `password`, `catalyst_git_token`,
/// `catalyst_flux_webhook_token`; random, never in Git).
pub const FLUX_SECRET: &str = "catalyst-flux";

/// Where the Flux objects come from and how they reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapSettings {
    /// OCI registry path the Blueprints are published under (`oci://ghcr.io/openova-io`).
    pub registry: String,
    /// Pull secret for the registry (in `flux-system`), if any.
    pub pull_secret: Option<String>,
    /// The `GitRepository` (in `flux-system`) that serves the tree, made by the cloud-init.
    pub git_source: String,
    /// Reconcile interval of sources, releases and Kustomizations.
    pub interval: String,
    /// How long a component's Kustomization waits for its resources to be ready.
    pub timeout: String,
}

impl Default for BootstrapSettings {
    fn default() -> Self {
        let render = RenderOptions::default();
        BootstrapSettings {
            registry: render.registry,
            pull_secret: render.pull_secret,
            git_source: "catalyst".to_owned(),
            interval: render.interval,
            timeout: "30m".to_owned(),
        }
    }
}

/// What the wizard chose for one Sovereign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SovereignChoice {
    /// The Sovereign's FQDN (`omantel.omani.works`).
    pub fqdn: String,
    /// Its provider region (`fsn1`).
    pub region: String,
    /// The components chosen (`bp-<name>` or `<name>`); the mandatory kit needs not be named.
    pub components: Vec<String>,
}

/// Where the kit's releases run when not in a namespace of their own name (upstream's
/// bootstrap kit). cilium and flux must match what cloud-init installed (`kube-system`,
/// `flux-system`), so that their HelmReleases adopt those installs rather than add second ones.
const NAMESPACES: [(&str, &str); 7] = [
    ("bp-cilium", "kube-system"),
    ("bp-sealed-secrets", "kube-system"),
    ("bp-flux", "flux-system"),
    ("bp-crossplane", "crossplane-system"),
    ("bp-spire", "spire-system"),
    ("bp-nats-jetstream", "nats-system"),
    ("bp-catalyst-platform", "catalyst-system"),
];

/// The tree's folder in the system repository: `clusters/<fqdn>`.
pub fn dir(fqdn: &str) -> String {
    format!("clusters/{fqdn}")
}

/// A DNS name of lowercase labels (it becomes a path segment, so nothing else gets through).
fn check_fqdn(fqdn: &str) -> Result<(), GitopsError> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if fqdn.len() > 253 || fqdn.split('.').count() < 2 || !fqdn.split('.').all(label_ok) {
        return Err(GitopsError::Invalid(format!(
            "{fqdn:?} is not a Sovereign FQDN (lowercase DNS labels separated by dots, e.g. omantel.omani.works)"
        )));
    }
    Ok(())
}

/// The files of `clusters/<fqdn>/`, paths relative to that folder ([`dir`]).
pub fn render(
    catalog: &Catalog,
    choice: &SovereignChoice,
    settings: &BootstrapSettings,
) -> Result<BTreeMap<String, Vec<u8>>, GitopsError> {
    check_fqdn(&choice.fqdn)?;
    let root = BlueprintName::parse(ROOT).map_err(|e| GitopsError::Invalid(e.to_string()))?;
    if catalog.versions_of(&root).is_empty() {
        return Err(GitopsError::Invalid(format!(
            "the bootstrap catalog has no {ROOT}"
        )));
    }
    // Mandatory: the root and every unlisted Blueprint; then the chosen ones.
    let mut names: BTreeSet<BlueprintName> = BTreeSet::from([root.clone()]);
    for e in catalog.all() {
        if e.blueprint.visibility == Visibility::Unlisted {
            names.insert(e.blueprint.name.clone());
        }
    }
    for c in &choice.components {
        let name = BlueprintName::parse(c.trim())
            .map_err(|e| GitopsError::Invalid(format!("component {c:?}: {e}")))?;
        if catalog.versions_of(&name).is_empty() {
            return Err(GitopsError::Invalid(format!(
                "component {name} is not in the bootstrap catalog"
            )));
        }
        names.insert(name);
    }
    let mut requests = vec![Request {
        name: root.clone(),
        range: VersionRange::any(),
    }];
    requests.extend(
        names
            .into_iter()
            .filter(|n| *n != root)
            .map(|name| Request {
                name,
                range: VersionRange::any(),
            }),
    );

    let globals = json!({"global": {"sovereignFQDN": choice.fqdn, "region": choice.region}});
    let opts = Options {
        values: catalog
            .all()
            .map(|e| {
                let mut v = globals.clone();
                if e.blueprint.name.as_str() == ROOT {
                    // The Sovereign's own Catalyst hands its Environments to Flux, with the
                    // Secret the cloud-init makes (catalyst-system/catalyst-flux).
                    v["flux"] = json!({"enabled": true, "existingSecret": FLUX_SECRET});
                }
                (e.blueprint.name.clone(), v)
            })
            .collect(),
        ..Options::default()
    };
    let plan =
        resolve_plan(catalog, &requests, &opts).map_err(|e| GitopsError::Resolve(e.to_string()))?;
    let objects = render_flux(
        &plan,
        &RenderOptions {
            registry: settings.registry.clone(),
            namespace: "flux-system".to_owned(),
            interval: settings.interval.clone(),
            pull_secret: settings.pull_secret.clone(),
        },
    )
    .map_err(|e| match e {
        RenderError::InvalidValues(errors) => GitopsError::InvalidValues(
            errors
                .into_iter()
                .map(|(n, e)| ValueProblem::of(n, e))
                .collect(),
        ),
        other => GitopsError::Resolve(other.to_string()),
    })?;

    let planned: Vec<_> = plan.iter().collect();
    let width = planned.len().to_string().len().max(2);
    let folders: BTreeMap<&str, String> = planned
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                p.name.as_str(),
                format!("{:0width$}-{}", i + 1, p.name.short()),
            )
        })
        .collect();
    let base = dir(&choice.fqdn);
    let mut out = BTreeMap::new();
    let mut listed = Vec::new();
    // `render` yields, per Blueprint in plan order, its source and then its release.
    for (p, pair) in planned.iter().zip(objects.chunks(2)) {
        let name = p.name.as_str();
        let folder = &folders[name];
        let mut put = |path: String, v: &Value| {
            out.insert(path, yaml::to_string(v).into_bytes());
        };
        put(format!("{folder}/ocirepository.yaml"), &pair[0]);
        let mut release = pair[1].clone();
        if let Some((_, ns)) = NAMESPACES.iter().find(|(bp, _)| *bp == name) {
            release["spec"]["targetNamespace"] = json!(ns);
        }
        put(format!("{folder}/helmrelease.yaml"), &release);
        put(
            format!("{folder}/kustomization.yaml"),
            &json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                    "resources": ["ocirepository.yaml", "helmrelease.yaml"]}),
        );
        let depends_on: Vec<Value> = p
            .depends_on
            .iter()
            .filter(|e| e.version.is_some())
            .map(|e| json!({"name": e.name.as_str()}))
            .collect();
        let mut spec = json!({
            "interval": settings.interval,
            "path": format!("./{base}/{folder}"),
            "prune": true,
            "wait": true,
            "timeout": settings.timeout,
            "sourceRef": {"kind": "GitRepository", "name": settings.git_source},
        });
        if !depends_on.is_empty() {
            spec["dependsOn"] = Value::Array(depends_on);
        }
        put(
            format!("{folder}.yaml"),
            &json!({
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": {
                    "name": name,
                    "namespace": "flux-system",
                    "labels": {
                        "app.kubernetes.io/managed-by": "catalyst",
                        "openova.io/blueprint": name,
                        "openova.io/blueprint-version": p.version.to_string(),
                    },
                },
                "spec": spec,
            }),
        );
        listed.push(format!("{folder}.yaml"));
    }
    out.insert(
        "kustomization.yaml".to_owned(),
        yaml::to_string(&json!({"apiVersion": "kustomize.config.k8s.io/v1beta1",
                                "kind": "Kustomization", "resources": listed}))
        .into_bytes(),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdns_that_are_not_dns_names_are_refused() {
        for bad in [
            "",
            "localhost",
            "../etc",
            "a..b",
            "Omantel.omani.works",
            "a/b.c",
            "-a.b",
        ] {
            assert!(check_fqdn(bad).is_err(), "{bad}");
        }
        check_fqdn("omantel.omani.works").unwrap();
    }
}
