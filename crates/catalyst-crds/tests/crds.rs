//! The generated CRDs: their text (snapshot), the rules Kubernetes holds a CRD to, and that
//! the documents Catalyst writes — Blueprints of every catalog in canonical form, a Sovereign
//! from a deployment — are valid objects of them, while misspelt ones are not.
use std::path::{Path, PathBuf};

use catalyst_blueprint::yaml;
use serde_json::{json, Value};

/// All CRDs as one multi-document YAML, as `catalyst crds` prints them.
fn text() -> String {
    catalyst_crds::documents()
        .iter()
        .map(yaml::to_string)
        .collect::<Vec<_>>()
        .join("---\n")
}

fn crd(kind: &str) -> Value {
    catalyst_crds::documents()
        .into_iter()
        .find(|c| c["spec"]["names"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"))
}

/// Every problem the API server would find in `doc` as an object of its kind and version.
fn problems(doc: &Value) -> Vec<String> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let version = doc["apiVersion"]
        .as_str()
        .and_then(|a| a.strip_prefix("catalyst.openova.io/"))
        .unwrap_or_default();
    let Some(schema) = catalyst_testkit::strict_crd_version_schema(&crd(kind), version) else {
        return vec![format!("no CRD serves {kind} {version}")];
    };
    let v = jsonschema::validator_for(&schema).unwrap();
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn generated_crds_snapshot() {
    insta::assert_snapshot!("crds", text());
}

#[test]
fn the_output_is_stable() {
    assert_eq!(text(), text());
    let kinds: Vec<Value> = catalyst_crds::documents()
        .iter()
        .map(|c| c["spec"]["names"]["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        json!([
            "Sovereign",
            "Organization",
            "Environment",
            "EnvironmentPolicy",
            "PromotionApprovals",
            "Application",
            "Blueprint"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
}

#[test]
fn names_scope_versions_and_subresources() {
    // (kind, plural, short name, scope, status subresource)
    let expect = [
        ("Sovereign", "sovereigns", "sov", "Cluster", true),
        ("Organization", "organizations", "org", "Namespaced", false),
        ("Environment", "environments", "env", "Namespaced", false),
        (
            "EnvironmentPolicy",
            "environmentpolicies",
            "envpol",
            "Namespaced",
            false,
        ),
        (
            "PromotionApprovals",
            "promotionapprovals",
            "approvals",
            "Namespaced",
            false,
        ),
        ("Application", "applications", "app", "Namespaced", true),
        ("Blueprint", "blueprints", "bp", "Namespaced", false),
    ];
    for (kind, plural, short, scope, status) in expect {
        let c = crd(kind);
        assert_eq!(c["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(c["kind"], "CustomResourceDefinition");
        assert_eq!(
            c["metadata"]["name"],
            format!("{plural}.catalyst.openova.io")
        );
        assert_eq!(c["spec"]["group"], "catalyst.openova.io");
        assert_eq!(c["spec"]["names"]["plural"], plural);
        assert_eq!(c["spec"]["names"]["shortNames"], json!([short]));
        assert_eq!(c["spec"]["names"]["categories"], json!(["catalyst"]));
        assert_eq!(c["spec"]["scope"], scope);
        let versions = c["spec"]["versions"].as_array().unwrap();
        let stored: Vec<&Value> = versions.iter().filter(|v| v["storage"] == true).collect();
        assert_eq!(stored.len(), 1, "{kind}: exactly one storage version");
        assert_eq!(stored[0]["name"], catalyst_crds::VERSION);
        for v in versions {
            assert_eq!(v["served"], true);
            assert_eq!(
                v["subresources"].get("status").is_some(),
                status,
                "{kind} {}: status subresource",
                v["name"]
            );
            assert_eq!(v["schema"], versions[0]["schema"], "{kind}: one schema");
        }
    }
    let served: Vec<Value> = crd("Blueprint")["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].clone())
        .collect();
    assert_eq!(served, [json!("v1alpha1"), json!("v1")]);
}

/// The schema node a printer column's `.a.b.c` path leads to.
fn node_at<'a>(schema: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = schema;
    for key in path.trim_start_matches('.').split('.') {
        node = node.get("properties")?.get(key)?;
    }
    Some(node)
}

#[test]
fn every_printer_column_names_a_field_of_the_schema() {
    for c in catalyst_crds::documents() {
        for v in c["spec"]["versions"].as_array().unwrap() {
            let schema = &v["schema"]["openAPIV3Schema"];
            for col in v["additionalPrinterColumns"].as_array().unwrap() {
                let path = col["jsonPath"].as_str().unwrap();
                if path == ".metadata.creationTimestamp" {
                    continue;
                }
                assert!(
                    node_at(schema, path).is_some(),
                    "{} column {}: {path} is not in the schema",
                    c["spec"]["names"]["kind"],
                    col["name"]
                );
            }
        }
    }
}

/// The structural-schema rules the API server enforces on a CRD (beyond what
/// `kubernetes-validate` checks): every node has a type unless it preserves unknown fields or
/// is int-or-string; no `$ref`, `definitions`, `additionalProperties` beside `properties`,
/// `uniqueItems: true`; `x-kubernetes-preserve-unknown-fields` only `true`.
fn structural_problems(node: &Value, at: &str, out: &mut Vec<String>) {
    let Some(o) = node.as_object() else {
        out.push(format!("{at}: not a schema object"));
        return;
    };
    let preserve = o.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    let int_or_string = o.get("x-kubernetes-int-or-string") == Some(&json!(true));
    if o.get("type").and_then(Value::as_str).is_none() && !preserve && !int_or_string {
        out.push(format!("{at}: no type"));
    }
    for banned in ["$ref", "definitions", "$defs", "$schema", "anyOf", "oneOf"] {
        if o.contains_key(banned) {
            out.push(format!("{at}: {banned} is not structural"));
        }
    }
    if o.contains_key("properties") && o.contains_key("additionalProperties") {
        out.push(format!(
            "{at}: properties and additionalProperties together"
        ));
    }
    if o.get("uniqueItems") == Some(&json!(true)) {
        out.push(format!("{at}: uniqueItems: true is refused"));
    }
    if let Some(p) = o.get("x-kubernetes-preserve-unknown-fields") {
        if p != &json!(true) {
            out.push(format!(
                "{at}: x-kubernetes-preserve-unknown-fields must be true"
            ));
        }
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            structural_problems(v, &format!("{at}.{k}"), out);
        }
    }
    if let Some(items) = o.get("items") {
        structural_problems(items, &format!("{at}[]"), out);
    }
    if let Some(ap) = o.get("additionalProperties").filter(|a| a.is_object()) {
        structural_problems(ap, &format!("{at}{{}}"), out);
    }
}

#[test]
fn every_schema_is_structural() {
    for c in catalyst_crds::documents() {
        for v in c["spec"]["versions"].as_array().unwrap() {
            let mut out = Vec::new();
            structural_problems(
                &v["schema"]["openAPIV3Schema"],
                c["spec"]["names"]["kind"].as_str().unwrap(),
                &mut out,
            );
            assert!(out.is_empty(), "{out:#?}");
        }
    }
}

// ---------------------------------------------------------------- Blueprints

fn blueprint_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".blueprint.yaml") || n == "blueprint.yaml")
        })
        .collect();
    out.sort();
    out
}

/// Every Blueprint under `dir`, canonical form, must be a valid object of both served
/// versions; returns how many were checked.
fn check_catalog(dir: &Path) -> usize {
    let mut n = 0;
    for file in blueprint_files(dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut diags = Vec::new();
        let Some(bp) = catalyst_blueprint::model::parse_blueprint_text(
            &text,
            &file.to_string_lossy(),
            &mut diags,
        ) else {
            // Not a Blueprint the engine accepts (lint fixtures): nothing a cluster would get.
            continue;
        };
        let canonical = bp.to_canonical().to_json();
        for version in ["v1alpha1", "v1"] {
            let mut doc = canonical.clone();
            doc["apiVersion"] = json!(format!("catalyst.openova.io/{version}"));
            let p = problems(&doc);
            assert!(p.is_empty(), "{} as {version}: {p:#?}", file.display());
        }
        n += 1;
    }
    n
}

#[test]
fn every_catalog_blueprint_in_canonical_form_is_a_valid_object() {
    let root = catalyst_testkit::repo_root();
    let mut n = check_catalog(&root.join("examples/catalog"));
    n += check_catalog(&root.join("crates/catalyst-gitops/testdata/catalog"));
    n += check_catalog(&root.join("crates/catalyst-gitops/testdata/catalog-next"));
    assert!(n >= 12, "only {n} Blueprints checked");
    if let Some(corpus) = catalyst_testkit::upstream_corpus() {
        let mut upstream = 0;
        for entry in std::fs::read_dir(&corpus).unwrap() {
            let dir = entry.unwrap().path();
            if dir.is_dir() {
                upstream += check_catalog(&dir);
            }
        }
        assert!(
            upstream >= 50,
            "only {upstream} upstream Blueprints checked"
        );
    }
}

#[test]
fn our_example_catalog_files_are_valid_objects_as_written() {
    let root = catalyst_testkit::repo_root();
    for file in blueprint_files(&root.join("examples/catalog")) {
        let doc = yaml::parse_json(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let p = problems(&doc);
        assert!(p.is_empty(), "{}: {p:#?}", file.display());
    }
}

#[test]
fn catalog_input_spellings_a_cluster_would_not_keep_are_refused() {
    let base = json!({
        "apiVersion": "catalyst.openova.io/v1",
        "kind": "Blueprint",
        "metadata": {"name": "bp-web"},
        "spec": {"version": "1.0.0", "depends": [{"blueprint": "bp-db", "version": "^1"}]},
    });
    assert!(problems(&base).is_empty(), "{:?}", problems(&base));
    let cases = [
        // A bare string in `depends` (the engine reads it; `fmt` writes the object form).
        ("/spec/depends/0", json!("bp-db")),
        // A misspelt field.
        ("/spec/visiblity", json!("listed")),
        ("/spec/visibility", json!("public")),
        ("/spec/version", json!("1.0")),
    ];
    for (pointer, value) in cases {
        let mut doc = base.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = doc.pointer_mut(parent).unwrap();
        match target {
            Value::Array(a) => a[key.parse::<usize>().unwrap()] = value.clone(),
            Value::Object(o) => {
                o.insert(key.to_string(), value.clone());
            }
            _ => unreachable!(),
        }
        assert!(
            !problems(&doc).is_empty(),
            "{pointer} = {value} was accepted"
        );
    }
    let mut doc = base.clone();
    doc["spec"].as_object_mut().unwrap().remove("version");
    assert!(
        !problems(&doc).is_empty(),
        "a Blueprint without spec.version"
    );
    let mut doc = base;
    doc["apiVersion"] = json!("catalyst.openova.io/v2");
    assert_eq!(problems(&doc), ["no CRD serves Blueprint v2"]);
}

// ---------------------------------------------------------------- Sovereign

#[test]
fn a_sovereign_from_a_deployment_is_a_valid_object() {
    let spec = catalyst_core::DeploymentSpec {
        org_name: "Acme".into(),
        org_email: "platform@acme.io".into(),
        sovereign_fqdn: "acme.omani.works".into(),
        domain_mode: catalyst_core::DomainMode::Pool,
        pool_domain: Some("omani.works".into()),
        subdomain: Some("acme".into()),
        hetzner_project_id: "1".into(),
        regions: vec![catalyst_core::RegionSpec {
            provider: "hetzner".into(),
            cloud_region: "fsn1".into(),
            control_plane_size: "cpx32".into(),
            worker_size: "cpx32".into(),
            worker_count: 1,
        }],
        ha_enabled: false,
        ssh_public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@laptop".into(),
        components: Vec::new(),
    };
    let sov = catalyst_crds::Sovereign::new(
        "acme",
        catalyst_crds::SovereignSpec::from_deployment(
            &spec,
            catalyst_crds::sovereign::KeycloakTopology::default(),
        ),
    );
    let doc = serde_json::to_value(&sov).unwrap();
    assert!(problems(&doc).is_empty(), "{:#?}", problems(&doc));
    assert_eq!(doc["spec"]["fqdn"], "acme.omani.works");
    assert_eq!(doc["spec"]["keycloakTopology"], "per-organization");
    assert_eq!(doc["spec"]["regions"][0]["cloudRegion"], "fsn1");
}

// ---------------------------------------------------------------- patterns

/// The name patterns agree with the parsers of `catalyst-core` (reserved names aside, which
/// only the write path knows to refuse).
#[test]
fn name_patterns_agree_with_the_name_parsers() {
    let matches = |pattern: &str, s: &str| {
        jsonschema::validator_for(&json!({"type": "string", "pattern": pattern}))
            .unwrap()
            .is_valid(&json!(s))
    };
    let names = [
        "acme",
        "a1-b",
        "abc",
        "ab",
        "Acme",
        "1abc",
        "a_b",
        "acme.git",
        "acme-",
        "-acme",
        "abcdefghijklmnopqrstuvwxyz012345",
        "abcdefghijklmnopqrstuvwxyz0123456",
        "web-db",
        "shared-blueprints",
        "",
        "ac me",
    ];
    for s in names {
        let parsed = catalyst_core::names::AppName::parse(s).is_ok() || s == "shared-blueprints";
        assert_eq!(matches(catalyst_crds::schema::SLUG, s), parsed, "{s:?}");
    }
    for e in catalyst_core::names::EnvType::ALL {
        let name = format!("acme-{}", e.as_str());
        assert!(matches(catalyst_crds::schema::ENVIRONMENT, &name), "{name}");
    }
    for bad in ["acme", "acme-qa", "acme-prod-1", "Acme-dev"] {
        assert!(!matches(catalyst_crds::schema::ENVIRONMENT, bad), "{bad}");
    }
    for version in [
        "1.2.0",
        "1.0.0-rc.1+build.5",
        "0.0.0",
        "1.2",
        "01.2.0",
        "v1.2.0",
        "latest",
    ] {
        assert_eq!(
            matches(catalyst_crds::schema::SEMVER, version),
            semver::Version::parse(version).is_ok(),
            "{version}"
        );
    }
}
