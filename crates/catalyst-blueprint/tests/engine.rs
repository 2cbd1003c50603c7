//! Engine tests over the crate's own small fixtures (`testdata/`) and inline catalogs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use catalyst_blueprint::catalog::{Catalog, Entry, Source, Viewer};
use catalyst_blueprint::lifecycle::{plan_uninstall, plan_upgrade, Action, UninstallError};
use catalyst_blueprint::lint::{lint, LintFile};
use catalyst_blueprint::load::{load_catalog, read_all};
use catalyst_blueprint::render::{render, to_yaml_stream, RenderOptions};
use catalyst_blueprint::resolve::{resolve_plan, Options, Plan, Request, ResolveError};
use catalyst_blueprint::{Blueprint, BlueprintName};
use semver::Version;
use serde_json::{json, Value};

fn testdata(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(p)
}

fn small() -> Catalog {
    let (c, diags) = load_catalog(&[(Source::Public, testdata("catalog"))]).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    c
}

fn req(s: &str) -> Request {
    Request::parse(s).unwrap()
}

fn name(s: &str) -> BlueprintName {
    BlueprintName::parse(s).unwrap()
}

/// A catalog from `name@version: dep@range, dep@range` lines.
fn inline(spec: &str) -> Catalog {
    let mut c = Catalog::new();
    for line in spec.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (head, deps) = line.split_once(':').unwrap_or((line, ""));
        let (n, v) = head.trim().split_once('@').unwrap();
        let deps: Vec<String> = deps
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| match d.split_once('@') {
                Some((dn, r)) => format!("    - {{blueprint: {dn}, version: \"{r}\"}}\n"),
                None => format!("    - {d}\n"),
            })
            .collect();
        let text = format!(
            "apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata:\n  name: {n}\nspec:\n  version: {v}\n  card: {{title: {n}}}\n  depends:\n{}",
            if deps.is_empty() { "    []\n".to_string() } else { deps.concat() }
        );
        let bp = Blueprint::from_yaml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        c.insert(Entry {
            blueprint: bp,
            source: Source::Public,
            file: head.to_string(),
        })
        .unwrap();
    }
    c
}

fn order(plan: &Plan) -> Vec<String> {
    plan.layers
        .iter()
        .map(|l| {
            l.iter()
                .map(|p| format!("{}@{}", p.name.short(), p.version))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

// ---------------------------------------------------------------- lint

fn lint_codes(text: &str) -> Vec<&'static str> {
    let f = LintFile {
        file: "t.yaml".into(),
        text: text.into(),
        chart: None,
    };
    lint(&[f], &Catalog::new())
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect()
}

const HEAD: &str = "apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata:\n  name: bp-x\n";

#[test]
fn lint_cases() {
    let cases: &[(&str, &[&str])] = &[
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n", &[]),
        ("spec:\n  version: 1.0\n  card: {title: X}\n", &["BP0005"]),
        ("spec:\n  card: {title: X}\n", &["BP0005"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  visibility: public\n", &["BP0010"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  placementSchema: {modes: [single-region], default: active-active}\n", &["BP0011"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  placementSchema: {modes: [single-region], minRegions: 2, maxRegions: 1}\n", &["BP0012"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  placementSchema: {modes: [everywhere]}\n", &["BP0013"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  depends: [bp-x]\n", &["BP0020"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  depends: [{blueprint: dep, version: '^^1'}]\n", &["BP0021"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  depends: [dep, dep]\n", &["BP0024"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  depends: [{blueprint: dep, when: '.a =='}]\n", &["BP0025"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  depends: [{blueprint: dep, alias: 'my-db'}]\n", &["BP0026"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  configSchema: {type: objekt}\n", &["BP0040"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  configSchema: {properties: {num: {type: integer, default: x}}}\n", &["BP0041"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  upgrades: {from: ['1.x.y.z']}\n", &["BP0050"]),
        ("spec:\n  version: 1.0.0\n", &["BP0070"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  configSchema: {properties: {m: {type: string, enum: [Off, Auto], default: Off}}}\n", &["BP0080", "BP0080"]),
        ("spec:\n  version: 1.0.0\n  card: {title: X}\n  configSchema: {properties: {m: {type: string, enum: ['Off', Auto], default: \"Off\"}}}\n", &[]),
    ];
    for (body, expect) in cases {
        let got = lint_codes(&format!("{HEAD}{body}"));
        assert_eq!(&got, expect, "for:\n{body}");
    }
    assert_eq!(lint_codes("a: [1\n"), vec!["BP0001"]);
    assert_eq!(
        lint_codes("kind: Blueprint\nmetadata: {name: Bad_Name}\nspec: {version: 1.0.0}\n"),
        vec!["BP0002", "BP0004"]
    );
}

#[test]
fn lint_checks_the_name_against_the_path() {
    let text = format!("{HEAD}spec:\n  version: 1.0.0\n  card: {{title: X}}\n");
    for (file, expect) in [
        ("cat/x.blueprint.yaml", vec![]),
        ("cat/bp-x/blueprint.yaml", vec![]),
        ("cat/x/blueprint.yaml", vec![]),
        ("cat/x-1.2.0.blueprint.yaml", vec![]),
        ("cat/y.blueprint.yaml", vec!["BP0007"]),
        ("cat/xy/blueprint.yaml", vec!["BP0007"]),
        ("cat/x-old.blueprint.yaml", vec!["BP0007"]),
    ] {
        let f = LintFile {
            file: file.into(),
            text: text.clone(),
            chart: None,
        };
        let got: Vec<&str> = lint(&[f], &Catalog::new())
            .diagnostics
            .iter()
            .map(|d| d.code)
            .collect();
        assert_eq!(got, expect, "{file}");
    }
}

#[test]
fn lint_bad_fixtures_point_at_the_problem() {
    let files = read_all(&[testdata("bad")]).unwrap();
    let report = lint(&files, &Catalog::new());
    let got: Vec<String> = report
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
    assert_eq!(
        got,
        vec![
            "blueprint.yaml:6:12 BP0030",
            "blueprint.yaml:9:15 BP0010",
            "blueprint.yaml:15:9 BP0041",
            "blueprint.yaml:18:14 BP0011",
            "blueprint.yaml:19:17 BP0012",
            "blueprint.yaml:22:7 BP0020",
            "blueprint.yaml:24:16 BP0022",
            "blueprint.yaml:26:16 BP0021",
            "other.blueprint.yaml:9:5 BP0040",
        ]
    );
    assert!(report.diagnostics.iter().all(|d| d.hint.is_some()));
}

#[test]
fn lint_accepts_the_small_catalog() {
    let files = read_all(&[testdata("catalog")]).unwrap();
    let report = lint(&files, &Catalog::new());
    let codes: Vec<(&str, &str)> = report
        .diagnostics
        .iter()
        .map(|d| (d.code, d.message.as_str()))
        .collect();
    // bp-search is referenced by bp-portal and published nowhere: a warning, not an error.
    assert_eq!(
        codes,
        vec![("BP0023", "bp-search is not in the linted catalog")]
    );
}

// ---------------------------------------------------------------- resolve

#[test]
fn resolves_the_small_catalog_with_when_alias_and_values() {
    let plan = resolve_plan(&small(), &[req("bp-app")], &Options::default()).unwrap();
    assert_eq!(
        order(&plan),
        vec!["cert-manager@1.1.1", "postgres@1.1.0", "app@1.2.0"]
    );
    let app = plan.get(&name("app")).unwrap();
    assert_eq!(app.depends_on[0].alias.as_deref(), Some("db"));
    assert_eq!(
        app.values,
        json!({"postgres": {"mode": "embedded"}, "replicas": 2})
    );
    let pg = plan.get(&name("postgres")).unwrap();
    assert_eq!(pg.values, json!({"databases": ["app"]}));
    assert!(plan.missing.is_empty());

    // `when` false: postgres is not installed.
    let mut values = BTreeMap::new();
    values.insert(name("app"), json!({"postgres": {"mode": "external"}}));
    let opts = Options {
        values,
        ..Options::default()
    };
    let plan = resolve_plan(&small(), &[req("app")], &opts).unwrap();
    assert_eq!(order(&plan), vec!["cert-manager@1.1.1", "app@1.2.0"]);
    assert_eq!(
        plan.get(&name("app")).unwrap().skipped[0].name.as_str(),
        "bp-postgres"
    );
}

#[test]
fn ranges_pick_the_highest_satisfying_version() {
    let plan = resolve_plan(&small(), &[req("app@~1.0")], &Options::default()).unwrap();
    // app 1.0.0 depends on bp-postgres (any): the highest is 2.0.0.
    assert_eq!(order(&plan), vec!["postgres@2.0.0", "app@1.0.0"]);
    let plan = resolve_plan(
        &small(),
        &[req("app@~1.0"), req("postgres@^1")],
        &Options::default(),
    )
    .unwrap();
    assert_eq!(
        order(&plan),
        vec!["cert-manager@1.1.1", "postgres@1.1.0", "app@1.0.0"]
    );
}

#[test]
fn missing_dependencies_are_named_with_who_needs_them() {
    let plan = resolve_plan(&small(), &[req("portal")], &Options::default()).unwrap();
    assert_eq!(plan.missing.len(), 1);
    let m = &plan.missing[0];
    assert_eq!(m.name.as_str(), "bp-search");
    assert_eq!(m.required_by, vec!["bp-portal 0.3.0 (^2)"]);
    assert!(plan
        .to_text()
        .contains("bp-search: not in the catalog; required by bp-portal 0.3.0 (^2)"));
    assert!(render(&plan, &RenderOptions::default()).is_err());
}

#[test]
fn diamonds_unify() {
    let c = inline(
        "top@1.0.0: left@^1, right@^1
         left@1.0.0: base@^1
         right@1.0.0: base@>=1.1 <2
         base@1.0.0
         base@1.1.0
         base@1.2.0
         base@2.0.0",
    );
    let plan = resolve_plan(&c, &[req("top")], &Options::default()).unwrap();
    assert_eq!(
        order(&plan),
        vec!["base@1.2.0", "left@1.0.0 right@1.0.0", "top@1.0.0"]
    );
}

#[test]
fn backtracks_to_a_lower_version_of_a_dependent() {
    let c = inline(
        "top@1.0.0: a@*, b@*
         a@2.0.0: x@^2
         a@1.0.0: x@^1
         b@1.0.0: x@^1
         x@1.0.0
         x@2.0.0",
    );
    let plan = resolve_plan(&c, &[req("top")], &Options::default()).unwrap();
    assert_eq!(
        order(&plan),
        vec!["x@1.0.0", "a@1.0.0 b@1.0.0", "top@1.0.0"]
    );
}

#[test]
fn backjumps_over_unrelated_decisions() {
    // Twelve unrelated Blueprints with four versions each sit between the culprit (b) and the
    // conflict (c): chronological backtracking would try 4^12 combinations first.
    let mut spec = String::from("root@1.0.0: b@*");
    for i in 0..12 {
        spec.push_str(&format!(", a{i}@*"));
    }
    spec.push_str(", c@^1\nb@2.0.0: c@^2\nb@1.0.0: c@^1\nc@1.0.0\nc@2.0.0\n");
    for i in 0..12 {
        for v in ["1.0.0", "1.1.0", "1.2.0", "1.3.0"] {
            spec.push_str(&format!("a{i}@{v}\n"));
        }
    }
    let opts = Options {
        step_budget: 100,
        ..Options::default()
    };
    let plan = resolve_plan(&inline(&spec), &[req("root")], &opts).unwrap();
    assert_eq!(plan.get(&name("b")).unwrap().version, Version::new(1, 0, 0));
    assert_eq!(
        plan.get(&name("a7")).unwrap().version,
        Version::new(1, 3, 0)
    );
}

#[test]
fn conflicts_are_explained_with_both_chains() {
    let c = inline(
        "web@1.0.0: db@^1
         jobs@2.0.0: queue@^1
         queue@1.0.0: db@^2
         db@1.0.0
         db@2.0.0",
    );
    let err = resolve_plan(&c, &[req("web"), req("jobs@^2")], &Options::default()).unwrap_err();
    let ResolveError::Conflict(conflict) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(conflict.name.as_str(), "bp-db");
    let text = err.to_string();
    assert_eq!(
        text,
        "no version of bp-db satisfies every requirement
  because you asked for bp-web,
  and bp-web 1.0.0 depends on bp-db ^1,
  and you asked for bp-jobs ^2,
  and bp-jobs 2.0.0 depends on bp-queue ^1,
  and bp-queue 1.0.0 depends on bp-db ^2,
  and bp-db 1.0.0 was already chosen, which is not ^2 (versions: 2.0.0, 1.0.0),
  so bp-web and bp-jobs ^2 cannot be installed together.
  help: change the request (bp-web, bp-jobs ^2), or publish a version of bp-db that satisfies ^1 and ^2"
    );
}

#[test]
fn conflicts_list_the_alternatives_tried() {
    let c = inline(
        "web@1.0.0: db@^1
         jobs@2.0.0: db@^2
         jobs@1.0.0: db@^3
         db@1.0.0
         db@2.0.0",
    );
    let err = resolve_plan(&c, &[req("web"), req("jobs")], &Options::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("  and bp-jobs 2.0.0 depends on bp-db ^2,\n"),
        "{text}"
    );
    assert!(
        text.contains("  the alternatives tried fail too:\n    bp-db: bp-jobs 1.0.0 needs ^3 (versions: 2.0.0, 1.0.0)\n"),
        "{text}"
    );
}

#[test]
fn unsatisfiable_request_is_explained() {
    let c = inline("a@1.0.0\na@1.1.0");
    let err = resolve_plan(&c, &[req("a@^3")], &Options::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("no version of bp-a is ^3 (versions: 1.1.0, 1.0.0)"),
        "{err}"
    );
}

#[test]
fn cycles_are_reported_with_their_path() {
    let c = inline("a@1.0.0: b@^1\nb@1.0.0: c@^1\nc@1.0.0: a@^1");
    let err = resolve_plan(&c, &[req("a")], &Options::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dependency cycle: bp-a -> bp-b -> bp-c -> bp-a"
    );
}

#[test]
fn private_blueprints_resolve_only_for_their_organization() {
    let mut c = small();
    let bp = Blueprint::from_yaml(
        "apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata: {name: secret}\nspec: {version: 1.0.0, visibility: private, depends: [bp-cert-manager]}\n",
    )
    .unwrap();
    c.insert(Entry {
        blueprint: bp,
        source: Source::Organization("acme".into()),
        file: "s".into(),
    })
    .unwrap();
    let plan = resolve_plan(&c, &[req("secret")], &Options::default()).unwrap();
    assert_eq!(plan.missing[0].reason, "private to Organization acme");
    let opts = Options {
        viewer: Viewer {
            organization: Some("acme".into()),
        },
        ..Options::default()
    };
    let plan = resolve_plan(&c, &[req("secret")], &opts).unwrap();
    assert_eq!(order(&plan), vec!["cert-manager@1.1.1", "secret@1.0.0"]);
}

#[test]
fn private_blueprints_outside_an_organization_catalog_are_flagged() {
    let dir = std::env::temp_dir().join(format!("catalyst-bp-private-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("p.blueprint.yaml"),
        "apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata: {name: p}\nspec: {version: 1.0.0, visibility: private}\n",
    )
    .unwrap();
    let (_, public) = load_catalog(&[(Source::Public, dir.clone())]).unwrap();
    let (_, org) = load_catalog(&[(Source::Organization("acme".into()), dir.clone())]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        public.iter().map(|d| d.code).collect::<Vec<_>>(),
        vec!["BP0061"]
    );
    assert!(org.is_empty());
}

// ---------------------------------------------------------------- render

/// The strict schema of a vendored Flux CRD (`fixtures/flux-crds/`).
fn crd_schema(file: &str) -> Value {
    let crd = catalyst_blueprint::yaml::parse_json(&catalyst_testkit::flux_crd_text(file)).unwrap();
    catalyst_testkit::strict_crd_schema(&crd)
}

#[test]
fn render_snapshot_and_flux_crd_schemas() {
    let plan = resolve_plan(&small(), &[req("app")], &Options::default()).unwrap();
    let objects = render(&plan, &RenderOptions::default()).unwrap();
    insta::assert_snapshot!("render_app", to_yaml_stream(&objects));

    let hr =
        jsonschema::validator_for(&crd_schema("helm.toolkit.fluxcd.io_helmreleases.yaml")).unwrap();
    let oci =
        jsonschema::validator_for(&crd_schema("source.toolkit.fluxcd.io_ocirepositories.yaml"))
            .unwrap();
    for o in &objects {
        let v = match o["kind"].as_str() {
            Some("HelmRelease") => &hr,
            Some("OCIRepository") => &oci,
            other => panic!("unexpected kind {other:?}"),
        };
        let errors: Vec<String> = v
            .iter_errors(o)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", o["metadata"]["name"]);
    }
    // The check has teeth: a field Flux does not know is rejected.
    let mut bad = objects[1].clone();
    bad["spec"]["disableTakeOwnership"] = json!(true);
    assert!(!hr.is_valid(&bad));
}

// ---------------------------------------------------------------- lifecycle

fn installed(items: &[(&str, &str)]) -> BTreeMap<BlueprintName, Version> {
    items
        .iter()
        .map(|(n, v)| (name(n), Version::parse(v).unwrap()))
        .collect()
}

#[test]
fn upgrade_orders_dependencies_first_and_stops_at_blocked_edges() {
    let c = small();
    let viewer = Viewer::default();
    let now = installed(&[("app", "1.0.0"), ("postgres", "1.0.3")]);
    let target = resolve_plan(&c, &[req("app")], &Options::default()).unwrap();
    let up = plan_upgrade(&now, &target, &c, &viewer);
    let steps: Vec<(String, Action)> = up
        .steps
        .iter()
        .map(|s| (s.name.to_string(), s.action))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("bp-cert-manager".into(), Action::Install),
            ("bp-postgres".into(), Action::Upgrade),
            ("bp-app".into(), Action::Upgrade),
        ]
    );
    // postgres 2.0.0 blocks upgrades from 1.x; app waits for it.
    let target = resolve_plan(&c, &[req("app@~1.0")], &Options::default()).unwrap();
    let up = plan_upgrade(&now, &target, &c, &viewer);
    assert!(up.is_blocked());
    assert_eq!(up.steps[0].action, Action::Blocked);
    assert!(up.steps[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("blocks upgrades from 1.x"));
    assert_eq!(up.steps[1].action, Action::Keep);
    // postgres 1.1.0 upgrades only from 1.0.x.
    let now = installed(&[("postgres", "0.9.0")]);
    let target = resolve_plan(&c, &[req("postgres@^1")], &Options::default()).unwrap();
    let up = plan_upgrade(&now, &target, &c, &viewer);
    let last = up.steps.last().unwrap();
    assert_eq!(last.action, Action::Blocked);
    assert_eq!(
        last.reason.as_deref(),
        Some("bp-postgres 1.1.0 upgrades only from 1.0.x, not from 0.9.0")
    );
}

#[test]
fn uninstall_goes_in_reverse_order_and_refuses_needed_blueprints() {
    let c = small();
    let viewer = Viewer::default();
    let now = installed(&[
        ("app", "1.2.0"),
        ("postgres", "1.1.0"),
        ("cert-manager", "1.1.1"),
    ]);
    let err = plan_uninstall(&now, &[name("postgres")], false, &c, &viewer).unwrap_err();
    assert!(
        matches!(&err, UninstallError::StillNeeded { needed } if needed[0].1 == vec![name("app")])
    );
    let p = plan_uninstall(&now, &[name("cert-manager")], true, &c, &viewer).unwrap();
    let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["bp-app", "bp-postgres", "bp-cert-manager"]);
    let p = plan_uninstall(&now, &[name("app")], false, &c, &viewer).unwrap();
    assert_eq!(p.steps.len(), 1);
}
