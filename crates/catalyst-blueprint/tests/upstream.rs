//! The upstream corpus (`$CATALYST_UPSTREAM_CORPUS`, default `../shared/fixtures/blueprints`;
//! skipped visibly when absent, a failure under `CATALYST_REQUIRE_SERVICES=1`): every file loads, lint reports the real
//! problems and nothing spurious, and `bp-matrix` resolves against `upstream-b8d7a8b`.

use std::path::{Path, PathBuf};

use catalyst_blueprint::catalog::{Catalog, Source};
use catalyst_blueprint::lint::lint;
use catalyst_blueprint::load::{load_catalog, read_all};
use catalyst_blueprint::render::{render, RenderOptions};
use catalyst_blueprint::resolve::{resolve_plan, Options, Request};
use catalyst_blueprint::BlueprintName;

/// `<corpus>/<name>`; `None` (after saying why) when the corpus is absent.
fn root(name: &str) -> Option<PathBuf> {
    catalyst_testkit::upstream_corpus().map(|c| c.join(name))
}

#[test]
fn every_upstream_file_loads() {
    for (dir, count) in [("upstream-418cead", 11), ("upstream-b8d7a8b", 48)] {
        let Some(dir_path) = root(dir) else { return };
        let (catalog, diags) = load_catalog(&[(Source::Public, dir_path)]).unwrap();
        assert!(diags.is_empty(), "{dir}: {diags:#?}");
        assert_eq!(catalog.len(), count, "{dir}");
        for e in catalog.all() {
            assert!(e.blueprint.name.as_str().starts_with("bp-"));
            // The canonical form parses back to the same Blueprint.
            let again =
                catalyst_blueprint::Blueprint::from_yaml(&e.blueprint.to_canonical_yaml()).unwrap();
            assert_eq!(again.name, e.blueprint.name);
            assert_eq!(again.version, e.blueprint.version);
            assert_eq!(again.depends.len(), e.blueprint.depends.len());
            assert_eq!(again.card, e.blueprint.card);
            assert_eq!(again.config_schema, e.blueprint.config_schema);
            assert_eq!(again.outputs, e.blueprint.outputs);
            // … and is lint-clean (the YAML 1.1 booleans come out quoted).
            let f = catalyst_blueprint::lint::LintFile {
                file: format!("{}.blueprint.yaml", e.blueprint.name.short()),
                text: e.blueprint.to_canonical_yaml(),
                chart: None,
            };
            let report = lint(&[f], &Catalog::new());
            assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
        }
    }
}

#[test]
fn lint_reports_nothing_spurious_on_upstream() {
    for dir in ["upstream-418cead", "upstream-b8d7a8b"] {
        let Some(dir_path) = root(dir) else { return };
        let files = read_all(&[dir_path]).unwrap();
        let report = lint(&files, &Catalog::new());
        for d in &report.diagnostics {
            println!("{}", d.render(None));
        }
        let found: Vec<String> = report
            .diagnostics
            .iter()
            .map(|d| {
                format!(
                    "{}:{}:{} {}",
                    Path::new(&d.file).file_name().unwrap().to_string_lossy(),
                    d.line,
                    d.column,
                    d.code
                )
            })
            .collect();
        // The one real problem in the corpus: bp-vpa's `Off` is a string to us but the boolean
        // false to Helm (YAML 1.1), so the default would fail its own `type: string` there.
        let expected: &[&str] = match dir {
            "upstream-b8d7a8b" => &[
                "vpa.blueprint.yaml:20:16 BP0080",
                "vpa.blueprint.yaml:21:18 BP0080",
            ],
            _ => &[],
        };
        assert_eq!(found, expected, "{dir}");
        assert_eq!(report.errors(), 0, "{dir}");
    }
}

#[test]
fn matrix_resolves_against_b8d7a8b() {
    let Some(b8d) = root("upstream-b8d7a8b") else {
        return;
    };
    let (catalog, _) = load_catalog(&[(Source::Public, b8d)]).unwrap();
    let plan = resolve_plan(
        &catalog,
        &[Request::parse("bp-matrix").unwrap()],
        &Options::default(),
    )
    .unwrap();
    print!("{}", plan.to_text());
    let order: Vec<&BlueprintName> = plan.iter().map(|p| &p.name).collect();
    let pos = |n: &str| order.iter().position(|x| x.as_str() == n).unwrap();
    for p in plan.iter() {
        for d in &p.depends_on {
            if d.version.is_some() {
                assert!(
                    pos(d.name.as_str()) < pos(p.name.as_str()),
                    "{} before {}",
                    d.name,
                    p.name
                );
            }
        }
    }
    assert_eq!(order.last().unwrap().as_str(), "bp-matrix");
    assert!(plan.missing.is_empty(), "{:?}", plan.missing);
    // bp-matrix requires serverName: render checks values against the configSchema.
    assert!(render(&plan, &RenderOptions::default()).is_err());
    let mut values = std::collections::BTreeMap::new();
    values.insert(
        BlueprintName::parse("matrix").unwrap(),
        serde_json::json!({"serverName": "chat.example.org"}),
    );
    let opts = Options {
        values,
        ..Options::default()
    };
    let plan = resolve_plan(&catalog, &[Request::parse("bp-matrix").unwrap()], &opts).unwrap();
    let objects = render(&plan, &RenderOptions::default()).unwrap();
    assert_eq!(objects.len(), plan.iter().count() * 2);
}

#[test]
fn matrix_plan_names_what_the_catalog_lacks() {
    // The 418cead catalog has keycloak and cert-manager but no cnpg (and no matrix).
    let (Some(old), Some(new)) = (root("upstream-418cead"), root("upstream-b8d7a8b")) else {
        return;
    };
    let (mut catalog, _) = load_catalog(&[(Source::Public, old)]).unwrap();
    let (newer, _) = load_catalog(&[(Source::Public, new)]).unwrap();
    let matrix = newer.versions_of(&BlueprintName::parse("matrix").unwrap())[0].clone();
    catalog.insert(matrix).unwrap();
    let plan = resolve_plan(
        &catalog,
        &[Request::parse("matrix@^1").unwrap()],
        &Options::default(),
    )
    .unwrap();
    let missing: Vec<(&str, &[String])> = plan
        .missing
        .iter()
        .map(|m| (m.name.as_str(), m.required_by.as_slice()))
        .collect();
    assert_eq!(
        missing,
        vec![("bp-cnpg", &["bp-matrix 1.0.0 (^1)".to_string()][..])]
    );
    let order: Vec<String> = plan
        .iter()
        .map(|p| format!("{}@{}", p.name, p.version))
        .collect();
    assert_eq!(
        order,
        vec![
            "bp-cert-manager@1.0.0",
            "bp-keycloak@1.0.0",
            "bp-matrix@1.0.0"
        ]
    );
}
