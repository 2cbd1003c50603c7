//! An Environment's Flux plumbing in `system/catalyst-config`, under
//! `environments/<org>-<env>/`: what makes a cluster run the Environment's Applications and
//! report back. Pure: the files follow from the Environment and its Applications alone, so every
//! write regenerates them and uninstalling removes exactly what installing added.
//!
//! - `namespace.yaml`: the Environment's namespace `<org>-<env>` on the host cluster;
//! - `vcluster/ocirepository.yaml`, `vcluster/helmrelease.yaml`: its vcluster, the `bp-vcluster`
//!   Blueprint's chart as HelmRelease `<org>-<env>`;
//! - `sources/<shard>/<app>.yaml`: a `GitRepository` per Application repository, on the
//!   Environment's branch, read from Catalyst's own Git with the `catalyst-git` Secret;
//! - `applications/<shard>/<app>.yaml`: a `Kustomization` per Application applying its
//!   repository, with `dependsOn` the Applications it uses (the Blueprint plan's edges, across
//!   repositories), `wait` so a dependent starts only once what it uses is ready;
//! - `sources/<shard>/kustomization.yaml`, `applications/<shard>/kustomization.yaml`: the files
//!   of one shard. `<shard>` ([`shard`]) is two hex digits of a stable hash of the Application's
//!   name, so an Environment of N Applications has at most 256 shards of about N/256 each and a
//!   write touches one small listing per folder, never one that grows with N;
//! - `notifications/provider.yaml`, `notifications/alert.yaml`: a `generic-hmac` Provider posting
//!   to Catalyst's `/api/v1/hooks/flux` (key from the `catalyst-flux-webhook` Secret the bootstrap
//!   creates) and an Alert for the Environment's HelmReleases and Kustomizations, naming the
//!   Environment in its event metadata — Flux's status comes back to the read side;
//! - `secrets/git.yaml`, `secrets/flux-webhook.yaml`: the two Secrets the sources and the
//!   Provider read, in the Environment's namespace, with their values left as Flux
//!   post-build variables (`${catalyst_git_token}`, `${catalyst_flux_webhook_token}`): the
//!   Flux `Kustomization` that applies `environments/` substitutes them from a Secret in
//!   Catalyst's namespace (the chart's `catalyst-flux`), so no credential is ever in Git;
//! - `kustomization.yaml`: every file above outside the shards, and the shard folders, so
//!   `kubectl kustomize environments/<org>-<env>` builds the lot.
use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::names::{env_name, EnvType, OrgName};
use crate::yaml;

/// Where the cluster finds Catalyst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlumbingSettings {
    /// Catalyst's Git over smart HTTP as the cluster reaches it (`https://catalyst.example/git`).
    pub git_url: String,
    /// Catalyst's Flux webhook as the cluster reaches it
    /// (`https://catalyst.example/api/v1/hooks/flux`).
    pub hook_url: String,
    /// OCI registry path of the Blueprints (`oci://ghcr.io/openova-io`), for `bp-vcluster`.
    pub registry: String,
    /// Reconcile interval.
    pub interval: String,
}

impl PlumbingSettings {
    /// Settings for a Catalyst reached at `public_url` (`https://catalyst.example`).
    pub fn for_url(public_url: &str, registry: &str, interval: &str) -> PlumbingSettings {
        let base = public_url.trim_end_matches('/');
        PlumbingSettings {
            git_url: format!("{base}/git"),
            hook_url: format!("{base}/api/v1/hooks/flux"),
            registry: registry.trim_end_matches('/').to_owned(),
            interval: interval.to_owned(),
        }
    }
}

/// Name of the Secret holding Catalyst's Git credentials for Flux (made by the bootstrap).
pub const GIT_SECRET: &str = "catalyst-git";
/// Name of the Secret holding the Flux webhook key (`token`; made by the bootstrap).
pub const HOOK_SECRET: &str = "catalyst-flux-webhook";

/// The user name in the `catalyst-git` Secret (Catalyst reads only the password).
pub const GIT_USERNAME: &str = "flux";
/// The Flux post-build variable holding Catalyst's Git read token for Flux (the
/// `catalyst-git` Secret's `password`).
pub const GIT_TOKEN_VAR: &str = "catalyst_git_token";
/// The Flux post-build variable holding the Flux webhook key (the `catalyst-flux-webhook`
/// Secret's `token`).
pub const HOOK_TOKEN_VAR: &str = "catalyst_flux_webhook_token";

/// The folder of an Environment's plumbing in `system/catalyst-config`.
pub fn dir(org: &OrgName, env: EnvType) -> String {
    format!("environments/{}", env_name(org, env))
}

/// One Application of the Environment: its name and the Applications it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlumbedApp {
    /// The Application.
    pub name: String,
    /// The Applications it depends on (same Environment).
    pub depends_on: Vec<String>,
}

fn labels(org: &OrgName, env: EnvType) -> Value {
    json!({
        "catalyst.openova.io/organization": org.as_str(),
        "catalyst.openova.io/environment": env_name(org, env),
    })
}

fn meta(org: &OrgName, env: EnvType, name: &str) -> Value {
    json!({"name": name, "namespace": env_name(org, env), "labels": labels(org, env)})
}

/// The shard of an Application's plumbing files: the low byte of the 32-bit FNV-1a hash of its
/// name, as two hex digits. Stable: it decides where existing files are, so it never changes.
pub fn shard(app: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in app.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{:02x}", h & 0xff)
}

/// The files of one Application, by path relative to [`dir`].
pub fn app_paths(app: &str) -> [String; 2] {
    let s = shard(app);
    [
        format!("sources/{s}/{app}.yaml"),
        format!("applications/{s}/{app}.yaml"),
    ]
}

/// Where the file an Application had before its plumbing was sharded
/// (`sources/<app>.yaml`, `applications/<app>.yaml`) were; an uninstall removes them too.
pub fn unsharded_app_paths(app: &str) -> [String; 2] {
    [
        format!("sources/{app}.yaml"),
        format!("applications/{app}.yaml"),
    ]
}

/// The shard folder holding `path` and the file's name in it (`sources/3f/web.yaml` →
/// `("sources/3f", "web.yaml")`); `None` for a file the top-level `kustomization.yaml` lists.
pub fn in_shard(path: &str) -> Option<(&str, &str)> {
    let (folder, rest) = path.split_once('/')?;
    if folder != "sources" && folder != "applications" {
        return None;
    }
    let (s, file) = rest.split_once('/')?;
    (!file.contains('/')).then_some((&path[..folder.len() + 1 + s.len()], file))
}

/// The `kustomization.yaml` files of a plumbing folder holding `paths` (relative to [`dir`],
/// without listings): one per shard listing its files, and the top-level one listing the
/// other files and the shard folders. By path relative to [`dir`].
pub fn listings<'a>(paths: impl Iterator<Item = &'a str>) -> BTreeMap<String, Vec<u8>> {
    let mut top: Vec<&str> = Vec::new();
    let mut shards: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in paths.filter(|p| !p.ends_with("kustomization.yaml")) {
        match in_shard(p) {
            Some((folder, file)) => shards.entry(folder).or_default().push(file),
            None => top.push(p),
        }
    }
    let mut out = BTreeMap::new();
    for (folder, files) in shards {
        top.push(folder);
        out.insert(
            format!("{folder}/kustomization.yaml"),
            kustomization(files.into_iter()),
        );
    }
    out.insert("kustomization.yaml".into(), kustomization(top.into_iter()));
    out
}

/// One Application's `GitRepository` and `Kustomization` (paths as [`app_paths`]).
pub fn app_files(
    org: &OrgName,
    env: EnvType,
    a: &PlumbedApp,
    s: &PlumbingSettings,
) -> BTreeMap<String, Vec<u8>> {
    let ns = env_name(org, env);
    let [source, kustomization] = app_paths(&a.name);
    let mut deps: Vec<&String> = a.depends_on.iter().collect();
    deps.sort();
    deps.dedup();
    let mut spec = json!({"interval": s.interval, "path": "./", "prune": true, "wait": true,
                          "timeout": "10m", "targetNamespace": ns,
                          "sourceRef": {"kind": "GitRepository", "name": a.name}});
    if !deps.is_empty() {
        spec["dependsOn"] = deps.iter().map(|d| json!({"name": d})).collect();
    }
    BTreeMap::from([
        (
            source,
            yaml::to_string(
                &json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                   "metadata": meta(org, env, &a.name),
                   "spec": {"interval": s.interval,
                            "url": format!("{}/{org}/{}.git", s.git_url, a.name),
                            "ref": {"branch": env.branch()},
                            "secretRef": {"name": GIT_SECRET}}}),
            )
            .into_bytes(),
        ),
        (
            kustomization,
            yaml::to_string(
                &json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": meta(org, env, &a.name), "spec": spec}),
            )
            .into_bytes(),
        ),
    ])
}

/// The `kustomization.yaml` listing `paths` (relative to [`dir`]).
pub fn kustomization<'a>(paths: impl Iterator<Item = &'a str>) -> Vec<u8> {
    const HEAD: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n";
    let mut resources: Vec<&str> = paths.filter(|p| *p != "kustomization.yaml").collect();
    resources.sort_unstable();
    resources.dedup();
    if !resources.is_empty() && resources.iter().all(|r| plain(r)) {
        // What the YAML serializer writes for these, without building a document: the
        // top-level listing of an Environment names up to 512 shard folders and is rewritten
        // on every write.
        let mut out = String::with_capacity(
            HEAD.len() + 11 + resources.iter().map(|r| r.len() + 3).sum::<usize>(),
        );
        out.push_str(HEAD);
        out.push_str("resources:\n");
        for r in resources {
            out.push_str("- ");
            out.push_str(r);
            out.push('\n');
        }
        return out.into_bytes();
    }
    yaml::to_string(&json!({"apiVersion": "kustomize.config.k8s.io/v1beta1",
                            "kind": "Kustomization", "resources": resources}))
    .into_bytes()
}

/// True when YAML writes `path` as a plain scalar: a file (`….yaml`) or folder path of
/// letters, digits and `-_./`, starting with a letter or digit — nothing YAML could read as
/// another type (a number, a boolean, null) or as syntax.
fn plain(path: &str) -> bool {
    path.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && (path.ends_with(".yaml") || path.contains('/'))
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
}

/// The `resources` of a `kustomization.yaml` as [`kustomization`] writes it (`None` when it
/// is not in that form): a line scan, far cheaper than parsing the YAML of a listing of a few
/// hundred shard folders on every write.
pub fn resources_of(listing: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(listing).ok()?;
    let (_, items) = text.split_once("\nresources:\n")?;
    items
        .lines()
        .map(|l| {
            let item = l.strip_prefix("- ")?;
            let plain = !item.is_empty()
                && item
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
            plain.then(|| item.to_owned())
        })
        .collect()
}

/// Every file of the Environment's plumbing, by path relative to [`dir`]. `apps` in any order.
pub fn files(
    org: &OrgName,
    env: EnvType,
    apps: &[PlumbedApp],
    s: &PlumbingSettings,
) -> BTreeMap<String, Vec<u8>> {
    let ns = env_name(org, env);
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut put = |path: &str, v: Value| {
        out.insert(path.to_owned(), yaml::to_string(&v).into_bytes());
    };
    put(
        "namespace.yaml",
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": ns, "labels": labels(org, env)}}),
    );
    put(
        "vcluster/ocirepository.yaml",
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
               "metadata": meta(org, env, "bp-vcluster"),
               "spec": {"interval": s.interval, "url": format!("{}/bp-vcluster", s.registry),
                        "ref": {"semver": "*"},
                        "layerSelector": {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "operation": "copy"}}}),
    );
    put(
        "vcluster/helmrelease.yaml",
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
               "metadata": meta(org, env, &ns),
               "spec": {"interval": s.interval, "releaseName": ns,
                        "chartRef": {"kind": "OCIRepository", "name": "bp-vcluster"},
                        "install": {"remediation": {"retries": 3}},
                        "upgrade": {"remediation": {"retries": 3}},
                        "values": {"organization": org.as_str(), "environment": ns}}}),
    );
    put(
        "secrets/git.yaml",
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": meta(org, env, GIT_SECRET),
               "stringData": {"username": GIT_USERNAME,
                              "password": format!("${{{GIT_TOKEN_VAR}}}")}}),
    );
    put(
        "secrets/flux-webhook.yaml",
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": meta(org, env, HOOK_SECRET),
               "stringData": {"token": format!("${{{HOOK_TOKEN_VAR}}}")}}),
    );
    put(
        "notifications/provider.yaml",
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
               "metadata": meta(org, env, "catalyst"),
               "spec": {"type": "generic-hmac", "address": s.hook_url,
                        "secretRef": {"name": HOOK_SECRET}}}),
    );
    put(
        "notifications/alert.yaml",
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
               "metadata": meta(org, env, "catalyst"),
               "spec": {"providerRef": {"name": "catalyst"}, "eventSeverity": "info",
                        "eventSources": [{"kind": "HelmRelease", "name": "*"},
                                         {"kind": "Kustomization", "name": "*"}],
                        "eventMetadata": {"catalyst.openova.io/environment": ns}}}),
    );
    for a in apps {
        out.extend(app_files(org, env, a, s));
    }
    let k = listings(out.keys().map(String::as_str));
    out.extend(k);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PlumbingSettings {
        PlumbingSettings::for_url(
            "https://catalyst.acme.example/",
            "oci://ghcr.io/openova-io",
            "5m",
        )
    }

    fn app(name: &str, deps: &[&str]) -> PlumbedApp {
        PlumbedApp {
            name: name.into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn files_follow_the_applications_and_nothing_else() {
        let org = OrgName::parse("acme").unwrap();
        let empty = files(&org, EnvType::Dev, &[], &settings());
        let two = files(
            &org,
            EnvType::Dev,
            &[app("web", &["web-db"]), app("web-db", &[])],
            &settings(),
        );
        let added: Vec<&String> = two.keys().filter(|k| !empty.contains_key(*k)).collect();
        let (web, db) = (shard("web"), shard("web-db"));
        let mut want = vec![
            format!("applications/{db}/web-db.yaml"),
            format!("applications/{web}/web.yaml"),
            format!("sources/{db}/web-db.yaml"),
            format!("sources/{web}/web.yaml"),
        ];
        for folder in ["applications", "sources"] {
            want.push(format!("{folder}/{db}/kustomization.yaml"));
            want.push(format!("{folder}/{web}/kustomization.yaml"));
        }
        want.sort();
        want.dedup();
        assert_eq!(added, want.iter().collect::<Vec<_>>());
        // The order of the Applications does not matter; removing them restores the empty set.
        let swapped = files(
            &org,
            EnvType::Dev,
            &[app("web-db", &[]), app("web", &["web-db"])],
            &settings(),
        );
        assert_eq!(two, swapped);
        let kust = String::from_utf8(two["kustomization.yaml"].clone()).unwrap();
        assert!(
            kust.contains(&format!("- applications/{web}\n")) && kust.contains("namespace.yaml"),
            "{kust}"
        );
        let listed =
            String::from_utf8(two[&format!("applications/{web}/kustomization.yaml")].clone())
                .unwrap();
        assert!(listed.contains("- web.yaml\n"), "{listed}");
        let web = String::from_utf8(two[&format!("applications/{web}/web.yaml")].clone()).unwrap();
        assert!(web.contains("dependsOn:\n  - name: web-db"), "{web}");
        let src =
            String::from_utf8(two[&format!("sources/{}/web.yaml", shard("web"))].clone()).unwrap();
        assert!(
            src.contains("url: https://catalyst.acme.example/git/acme/web.git")
                && src.contains("branch: develop"),
            "{src}"
        );
        // The Secrets carry variables for Flux to substitute, never a credential.
        let git = String::from_utf8(two["secrets/git.yaml"].clone()).unwrap();
        assert!(
            git.contains("name: catalyst-git") && git.contains("password: ${catalyst_git_token}"),
            "{git}"
        );
        let hook = String::from_utf8(two["secrets/flux-webhook.yaml"].clone()).unwrap();
        assert!(
            hook.contains("token: ${catalyst_flux_webhook_token}"),
            "{hook}"
        );
        // The listing reads back as written.
        let listed = resources_of(&two["kustomization.yaml"]).unwrap();
        assert_eq!(
            kustomization(listed.iter().map(String::as_str)),
            two["kustomization.yaml"]
        );
        assert!(listed.contains(&format!("sources/{}", shard("web-db"))));
        assert_eq!(
            resources_of(b"kind: Kustomization\nresources:\n- 'a b'\n"),
            None
        );
        // The shard is stable (it says where existing files are).
        assert_eq!(
            (shard("web"), shard("db-00001")),
            ("91".into(), "a1".into())
        );
        assert_eq!(
            in_shard("sources/91/web.yaml"),
            Some(("sources/91", "web.yaml"))
        );
        assert_eq!(in_shard("vcluster/helmrelease.yaml"), None);
        // The listing written without the serializer is what the serializer writes.
        for paths in [
            vec!["web.yaml"],
            vec![
                "sources/3f",
                "applications/00",
                "namespace.yaml",
                "vcluster/helmrelease.yaml",
            ],
            vec![
                "1.yaml",
                "0x10.yaml",
                "true.yaml",
                "null/x",
                "a_b.c-d.yaml",
                "x/1e3",
            ],
            vec!["1e3", "true", "- x.yaml", "a b.yaml", "#.yaml", "", "yes"],
            vec![],
        ] {
            let mut sorted = paths.clone();
            sorted.sort_unstable();
            sorted.dedup();
            let serialized = yaml::to_string(
                &json!({"apiVersion": "kustomize.config.k8s.io/v1beta1",
                                                      "kind": "Kustomization", "resources": sorted}),
            );
            assert_eq!(
                String::from_utf8(kustomization(paths.into_iter())).unwrap(),
                serialized
            );
        }
        let provider = String::from_utf8(two["notifications/provider.yaml"].clone()).unwrap();
        assert!(
            provider.contains("address: https://catalyst.acme.example/api/v1/hooks/flux"),
            "{provider}"
        );
    }
}
