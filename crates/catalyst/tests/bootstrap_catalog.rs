//! `catalog/bootstrap/`, Catalyst's own catalog of the Sovereign's bootstrap kit, through the real
//! binary: it lints clean with `--deny-warnings`, resolving `bp-catalyst-platform` installs the kit
//! in the upstream order, and every wrapper chart pins its upstream chart as its provenance says.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The bootstrap order (cilium → … → powerdns → catalyst-platform).
const ORDER: [&str; 12] = [
    "bp-cilium",
    "bp-cert-manager",
    "bp-flux",
    "bp-crossplane",
    "bp-sealed-secrets",
    "bp-spire",
    "bp-nats-jetstream",
    "bp-openbao",
    "bp-keycloak",
    "bp-gitea",
    "bp-powerdns",
    "bp-catalyst-platform",
];

/// An upstream chart: name, version, repository.
type Pin = (&'static str, &'static str, &'static str);

/// Upstream charts per wrapper folder, in declared dependency order.
const UPSTREAM: [(&str, &[Pin]); 11] = [
    ("cilium", &[("cilium", "1.16.5", "https://helm.cilium.io")]),
    (
        "cert-manager",
        &[("cert-manager", "v1.16.2", "https://charts.jetstack.io")],
    ),
    (
        "flux",
        &[(
            "flux2",
            "2.14.1",
            "https://fluxcd-community.github.io/helm-charts",
        )],
    ),
    (
        "crossplane",
        &[(
            "crossplane",
            "1.18.0",
            "https://charts.crossplane.io/stable",
        )],
    ),
    (
        "sealed-secrets",
        &[(
            "sealed-secrets",
            "2.16.1",
            "https://bitnami-labs.github.io/sealed-secrets",
        )],
    ),
    (
        "spire",
        &[
            (
                "spire-crds",
                "0.5.0",
                "https://spiffe.github.io/helm-charts-hardened",
            ),
            (
                "spire",
                "0.21.0",
                "https://spiffe.github.io/helm-charts-hardened",
            ),
        ],
    ),
    (
        "nats-jetstream",
        &[("nats", "1.2.0", "https://nats-io.github.io/k8s/helm/charts")],
    ),
    (
        "openbao",
        &[(
            "openbao",
            "0.16.0",
            "https://openbao.github.io/openbao-helm",
        )],
    ),
    (
        "keycloak",
        &[(
            "keycloak",
            "25.2.0",
            "oci://registry-1.docker.io/bitnamicharts",
        )],
    ),
    (
        "gitea",
        &[("gitea", "10.5.0", "https://dl.gitea.com/charts")],
    ),
    (
        "powerdns",
        &[("powerdns", "0.10.0", "https://schich.tel/helm-charts")],
    ),
];

fn catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog/bootstrap")
}

fn run(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .arg("blueprint")
        .args(args)
        .output()
        .unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    catalyst_blueprint::yaml::parse_json(&text)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

#[test]
fn lints_clean_with_deny_warnings() {
    let dir = catalog().display().to_string();
    let (code, out, err) = run(&["lint", "--deny-warnings", &dir]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.ends_with("12 files checked: 0 errors, 0 warnings\n"),
        "{out}"
    );
    let (code, out, err) = run(&["fmt", "--check", &dir]);
    assert_eq!(code, 0, "not in canonical form:\n{out}{err}");
}

#[test]
fn catalyst_platform_resolves_to_the_bootstrap_order() {
    let dir = catalog().display().to_string();
    let (code, out, err) = run(&[
        "resolve",
        "bp-catalyst-platform",
        "--catalog",
        &dir,
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["missing"], serde_json::json!([]), "{out}");
    let layers = plan["layers"].as_array().unwrap();
    // One Blueprint per layer: the order is the only one the dependencies allow.
    for layer in layers {
        assert_eq!(layer.as_array().unwrap().len(), 1, "{layer}");
    }
    let order: Vec<&str> = layers
        .iter()
        .flat_map(|l| l.as_array().unwrap())
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ORDER);
    let last = &layers[11][0];
    assert_eq!(last["version"], "0.1.0");
}

#[test]
fn wrappers_pin_their_upstream_charts() {
    for (name, charts) in UPSTREAM {
        let chart_dir = catalog().join(name).join("chart");
        let chart = yaml_file(&chart_dir.join("Chart.yaml"));
        let bp = yaml_file(&catalog().join(name).join("blueprint.yaml"));
        assert_eq!(chart["name"], format!("bp-{name}"));
        assert_eq!(chart["version"], bp["spec"]["version"], "{name}");
        assert_eq!(bp["spec"]["visibility"], "unlisted", "{name}");
        let deps: Vec<(&str, &str, &str)> = chart["dependencies"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no dependencies"))
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap(),
                    d["version"].as_str().unwrap(),
                    d["repository"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(deps, charts, "{name}");
        let values = yaml_file(&chart_dir.join("values.yaml"));
        let upstream = &values["catalystBlueprint"]["upstream"];
        let (c, v, r) = charts[charts.len() - 1];
        assert_eq!(
            (
                upstream["chart"].as_str(),
                upstream["version"].as_str(),
                upstream["repo"].as_str()
            ),
            (Some(c), Some(v), Some(r)),
            "{name}: catalystBlueprint.upstream"
        );
        // Nothing vendored: the upstream archives come from `helm dependency build`.
        assert!(!chart_dir.join("charts").exists(), "{name}");
    }
    // bp-catalyst-platform's chart is Catalyst's own, deploy/chart/.
    let chart = yaml_file(&catalog().join("catalyst-platform/chart/Chart.yaml"));
    let own =
        yaml_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/chart/Chart.yaml"));
    assert_eq!(chart, own);
    assert_eq!(chart["name"], "bp-catalyst-platform");
}
