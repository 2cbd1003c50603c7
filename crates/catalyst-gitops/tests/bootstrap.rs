//! A Sovereign's bootstrap tree (`catalyst_gitops::bootstrap`) from Catalyst's own catalog,
//! `catalog/bootstrap/`: the layout, the order, the Flux schemas, values and left-out components.

use std::collections::BTreeMap;

use catalyst_blueprint::catalog::{Entry, Source};
use catalyst_blueprint::load::load_catalog;
use catalyst_blueprint::{Blueprint, Catalog};
use catalyst_gitops::bootstrap::{render, BootstrapSettings, SovereignChoice};
use catalyst_gitops::GitopsError;
use serde_json::Value;

use catalyst_testkit::BOOTSTRAP_ORDER as ORDER;

fn catalog() -> Catalog {
    let dir = catalyst_testkit::repo_root().join("catalog/bootstrap");
    let (catalog, diags) = load_catalog(&[(Source::Public, dir)]).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    catalog
}

/// The bootstrap catalog plus two listed (optional) components: `bp-harbor` (needs
/// cert-manager) and `bp-grafana` (needs harbor).
fn catalog_with_options() -> Catalog {
    let mut c = catalog();
    for (name, deps) in [
        (
            "bp-harbor",
            "  - blueprint: bp-cert-manager\n    version: ^1\n",
        ),
        ("bp-grafana", "  - blueprint: bp-harbor\n    version: ^1\n"),
    ] {
        let text = format!(
            "apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata:\n  name: {name}\n\
             spec:\n  version: 1.2.0\n  card:\n    title: {name}\n    summary: An optional component.\n\
             \x20 visibility: listed\n  manifests:\n    chart: ./chart\n  depends:\n{deps}"
        );
        c.insert(Entry {
            blueprint: Blueprint::from_yaml(&text).unwrap(),
            source: Source::Public,
            file: format!("{name}.yaml"),
        })
        .unwrap();
    }
    c
}

fn choice(components: &[&str]) -> SovereignChoice {
    SovereignChoice {
        fqdn: "omantel.omani.works".into(),
        region: "fsn1".into(),
        components: components.iter().map(|s| s.to_string()).collect(),
    }
}

fn tree(catalog: &Catalog, components: &[&str]) -> BTreeMap<String, Vec<u8>> {
    render(catalog, &choice(components), &BootstrapSettings::default()).unwrap()
}

fn doc(tree: &BTreeMap<String, Vec<u8>>, path: &str) -> Value {
    let text = std::str::from_utf8(&tree[path]).unwrap();
    catalyst_blueprint::yaml::parse_json(text).unwrap()
}

/// The component folders in the order of the root `kustomization.yaml`.
fn components(tree: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    doc(tree, "kustomization.yaml")["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().trim_end_matches(".yaml").to_owned())
        .collect()
}

#[test]
fn the_tree_of_one_sovereign() {
    let t = tree(&catalog(), &[]);
    let text: String = t
        .iter()
        .map(|(p, b)| format!("# {p}\n{}", std::str::from_utf8(b).unwrap()))
        .collect();
    insta::assert_snapshot!("bootstrap_tree_omantel", text);
}

#[test]
fn the_order_is_the_bootstrap_order() {
    let t = tree(&catalog(), &[]);
    let expected: Vec<String> = ORDER
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{:02}-{n}", i + 1))
        .collect();
    assert_eq!(components(&t), expected);
    // Each component's Kustomization waits for the one before it (and nothing later).
    for (i, folder) in expected.iter().enumerate() {
        let k = doc(&t, &format!("{folder}.yaml"));
        assert_eq!(k["spec"]["wait"], true);
        assert_eq!(
            k["spec"]["path"],
            format!("./clusters/omantel.omani.works/{folder}")
        );
        let deps: Vec<&str> = k["spec"]["dependsOn"]
            .as_array()
            .map(|a| a.iter().map(|d| d["name"].as_str().unwrap()).collect())
            .unwrap_or_default();
        if i == 0 {
            assert!(deps.is_empty());
        } else {
            assert!(
                deps.contains(&format!("bp-{}", ORDER[i - 1]).as_str()),
                "{folder}: {deps:?}"
            );
        }
        for d in deps {
            let at = ORDER.iter().position(|n| format!("bp-{n}") == d).unwrap();
            assert!(at < i, "{folder} depends on the later {d}");
        }
    }
    // Same input, same bytes.
    assert_eq!(t, tree(&catalog(), &[]));
}

#[test]
fn every_flux_object_satisfies_the_flux_crd_schemas() {
    let flux =
        catalyst_testkit::FluxSchemas::load(|t| catalyst_blueprint::yaml::parse_json(t).unwrap());
    let t = tree(&catalog_with_options(), &["grafana"]);
    let mut checked = 0;
    for path in t.keys() {
        let o = doc(&t, path);
        if o["apiVersion"] == "kustomize.config.k8s.io/v1beta1" {
            continue;
        }
        flux.check(&o).unwrap_or_else(|e| panic!("{path}: {e}"));
        checked += 1;
    }
    assert_eq!(checked, 3 * 14, "a Kustomization, source and release each");
}

#[test]
fn values_carry_the_fqdn_and_region_and_are_validated() {
    let t = tree(&catalog(), &[]);
    for n in ORDER
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{:02}-{n}", i + 1))
    {
        let hr = doc(&t, &format!("{n}/helmrelease.yaml"));
        assert_eq!(
            hr["spec"]["values"]["global"]["sovereignFQDN"],
            "omantel.omani.works"
        );
        assert_eq!(hr["spec"]["values"]["global"]["region"], "fsn1");
        let oci = doc(&t, &format!("{n}/ocirepository.yaml"));
        assert!(oci["spec"]["ref"]["tag"].is_string() || oci["spec"]["ref"]["digest"].is_string());
    }
    let mut bad = choice(&[]);
    bad.region = "FSN 1".into();
    match render(&catalog(), &bad, &BootstrapSettings::default()) {
        Err(GitopsError::InvalidValues(problems)) => {
            assert!(
                problems.iter().all(|p| p.pointer == "/global/region"),
                "{problems:?}"
            );
            assert_eq!(problems.len(), 12, "{problems:?}");
        }
        other => panic!("{other:?}"),
    }
    let mut bad = choice(&[]);
    bad.fqdn = "../../etc".into();
    assert!(matches!(
        render(&catalog(), &bad, &BootstrapSettings::default()),
        Err(GitopsError::Invalid(_))
    ));
    assert!(matches!(
        render(&catalog(), &choice(&["nope"]), &BootstrapSettings::default()),
        Err(GitopsError::Invalid(m)) if m.contains("bp-nope")
    ));
}

#[test]
fn components_left_out_are_left_out() {
    let c = catalog_with_options();
    let kit: Vec<&str> = ORDER.to_vec();
    let names = |t: &BTreeMap<String, Vec<u8>>| -> Vec<String> {
        components(t)
            .into_iter()
            .map(|f| f.split_once('-').unwrap().1.to_owned())
            .collect()
    };
    // Nothing optional chosen: the kit alone, even though the catalog offers more.
    let none = tree(&c, &[]);
    assert_eq!(names(&none), kit);
    assert!(!none
        .keys()
        .any(|p| p.contains("harbor") || p.contains("grafana")));
    // Harbor chosen: harbor, not grafana.
    let harbor = tree(&c, &["bp-harbor"]);
    let n = names(&harbor);
    assert!(n.contains(&"harbor".to_owned()) && !n.contains(&"grafana".to_owned()));
    assert_eq!(n.len(), 13);
    // Grafana chosen: harbor comes along, as grafana's dependency, before it.
    let both = tree(&c, &["grafana"]);
    let n = names(&both);
    let h = n.iter().position(|x| x == "harbor").unwrap();
    let g = n.iter().position(|x| x == "grafana").unwrap();
    assert!(h < g);
    let folder = &components(&both)[g];
    let k = doc(&both, &format!("{folder}.yaml"));
    assert_eq!(k["spec"]["dependsOn"][0]["name"], "bp-harbor");
    // Naming a mandatory component changes nothing.
    assert_eq!(tree(&c, &["gitea", "bp-cilium"]), none);
}
