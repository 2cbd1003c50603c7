//! `catalyst blueprint …` driven through the real binary: exit codes, formats, and the README's
//! commands against the upstream catalog.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_catalyst"))
}

fn testdata(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../catalyst-blueprint/testdata")
        .join(p)
        .display()
        .to_string()
}

/// The upstream corpus's `upstream-b8d7a8b`; `None` (after saying why) when it is absent.
fn upstream() -> Option<PathBuf> {
    catalyst_testkit::upstream_corpus().map(|c| c.join("upstream-b8d7a8b"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = bin().arg("blueprint").args(args).output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

#[test]
fn lint_exit_codes_and_formats() {
    let (code, out, _) = run(&["lint", &testdata("catalog")]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning[BP0023]: bp-search is not in the linted catalog"),
        "{out}"
    );
    assert!(
        out.ends_with("6 files checked: 0 errors, 1 warning\n"),
        "{out}"
    );

    let (code, _, _) = run(&["lint", "--deny-warnings", &testdata("catalog")]);
    assert_eq!(code, 1);

    let (code, out, _) = run(&["lint", &testdata("bad")]);
    assert_eq!(code, 1);
    assert!(
        out.contains("error[BP0010]: unknown visibility \"public\"\n  --> "),
        "{out}"
    );
    assert!(out.contains("bp-broken/blueprint.yaml:9:15\n"), "{out}");
    assert!(
        out.contains("= help: use one of: listed, unlisted, private"),
        "{out}"
    );

    let (code, out, _) = run(&["lint", "-o", "json", &testdata("bad")]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["errors"], 9);
    assert_eq!(v["diagnostics"][1]["code"], "BP0010");
    assert_eq!(v["diagnostics"][1]["line"], 9);
    assert_eq!(v["diagnostics"][1]["column"], 15);

    let (code, _, err) = run(&["lint", "/nonexistent/catalog"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: cannot read /nonexistent/catalog"),
        "{err}"
    );
    let (code, _, _) = run(&["lint"]);
    assert_eq!(code, 2, "usage error");
}

#[test]
fn fmt_writes_the_canonical_form() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("postgres.blueprint.yaml");
    std::fs::copy(testdata("catalog/postgres.blueprint.yaml"), &file).unwrap();
    let f = file.display().to_string();
    let (code, out, _) = run(&["fmt", "--check", &f]);
    assert_eq!(code, 1);
    assert!(out.contains("is not in canonical form"));
    let (code, _, _) = run(&["fmt", &f]);
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata:\n  name: bp-postgres\nspec:\n  version: 1.1.0\n  card:\n    title: Postgres\n    summary: PostgreSQL via CNPG.\n  visibility: unlisted\n"), "{text}");
    let (code, _, _) = run(&["fmt", "--check", &f]);
    assert_eq!(code, 0, "idempotent");
}

#[test]
fn validate_values_reports_pointers_and_applies_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, "replicas: zero\npostgres: {mode: cloud}\n").unwrap();
    let bp = testdata("catalog/app.blueprint.yaml");
    let (code, _, err) = run(&["validate-values", &bp, &values.display().to_string()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("error: /postgres/mode: \"cloud\" is not one of"),
        "{err}"
    );
    assert!(
        err.contains("error: /replicas: \"zero\" is not of type \"integer\""),
        "{err}"
    );

    std::fs::write(&values, "replicas: 3\n").unwrap();
    let (code, out, _) = run(&[
        "validate-values",
        &bp,
        &values.display().to_string(),
        "-o",
        "json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["values"],
        serde_json::json!({"postgres": {"mode": "embedded"}, "replicas": 3})
    );
    assert_eq!(v["extensions"][0]["keyword"], "x-catalyst-widget");
    assert_eq!(v["extensions"][0]["pointer"], "/replicas");
}

#[test]
fn list_honours_visibility() {
    let (code, out, _) = run(&["list", "--catalog", &testdata("catalog")]);
    assert_eq!(code, 0);
    // A table: a header row, then one row per Blueprint.
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, vec!["NAME", "bp-app", "bp-portal"]);
    let (_, out, _) = run(&[
        "list",
        "--all",
        "-o",
        "json",
        "--catalog",
        &testdata("catalog"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4);

    // An Organization's catalog is seen by that Organization only.
    let org = format!("acme={}", testdata("catalog"));
    let (code, out, _) = run(&["list", "--org-catalog", &org]);
    assert_eq!(
        (code, out.trim_end()),
        (0, "NAME  VERSION  VISIBILITY  SUMMARY"),
        "nothing but the header"
    );
    let (_, out, _) = run(&[
        "list",
        "--org-catalog",
        &org,
        "--as-org",
        "acme",
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["source"], "organization acme");
    let (code, out, _) = run(&["resolve", "app", "--org-catalog", &org]);
    assert_eq!(code, 1);
    assert!(
        out.contains("bp-app: private to Organization acme; required by request bp-app"),
        "{out}"
    );
    let (code, _, err) = run(&["list", "--org-catalog", "no-equals-sign"]);
    assert_eq!(code, 2);
    assert!(err.contains("expected ORG=DIR"), "{err}");
}

#[test]
fn resolve_formats_and_failures() {
    let cat = testdata("catalog");
    let (code, out, _) = run(&["resolve", "app", "--catalog", &cat]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Install plan for bp-app:\n  layer 1:\n    bp-cert-manager 1.1.1\n  layer 2:\n    bp-postgres 1.1.0  after bp-cert-manager 1.1.1\n  layer 3:\n    bp-app 1.2.0  after bp-postgres 1.1.0 as db, bp-cert-manager 1.1.1 as certs\n"
    );
    let (code, out, _) = run(&["resolve", "app", "--catalog", &cat, "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["layers"][2][0]["name"], "bp-app");
    let (code, out, _) = run(&["resolve", "app", "--catalog", &cat, "-o", "yaml"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("requests:\n- bp-app\nlayers:\n"), "{out}");

    // Missing dependency: the plan is printed and names it; exit 1.
    let (code, out, _) = run(&["resolve", "portal", "--catalog", &cat]);
    assert_eq!(code, 1);
    assert!(
        out.contains("bp-search: not in the catalog; required by bp-portal 0.3.0 (^2)"),
        "{out}"
    );

    // Conflict: explained on stderr; exit 1.
    let (code, _, err) = run(&["resolve", "app@^1.2", "postgres@^2", "--catalog", &cat]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: no version of bp-postgres satisfies every requirement\n"),
        "{err}"
    );
    assert!(err.contains("help: "), "{err}");

    let (code, _, err) = run(&["resolve", "Not_A_Name", "--catalog", &cat]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["resolve", "--catalog", &cat]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("name at least one Blueprint"), "{err}");
}

#[test]
fn render_from_a_plan_file() {
    let cat = testdata("catalog");
    let (code, plan, _) = run(&["resolve", "app", "--catalog", &cat, "-o", "json"]);
    assert_eq!(code, 0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    std::fs::write(&file, &plan).unwrap();
    let f = file.display().to_string();
    let (code, from_plan, err) = run(&["render", "--plan", &f, "--catalog", &cat]);
    assert_eq!(code, 0, "{err}");
    let (_, direct, _) = run(&["render", "app", "--catalog", &cat]);
    assert_eq!(from_plan, direct);

    // A hand-edited plan whose values break the configSchema is refused.
    let mut v: serde_json::Value = serde_json::from_str(&plan).unwrap();
    v["layers"][2][0]["values"]["replicas"] = serde_json::json!("many");
    std::fs::write(&file, v.to_string()).unwrap();
    let (code, _, err) = run(&["render", "--plan", &f, "--catalog", &cat]);
    assert_eq!(code, 1);
    assert!(
        err.contains("bp-app values /replicas: \"many\" is not of type \"integer\""),
        "{err}"
    );
    // … and so is one that installs a Blueprint before its dependency.
    let mut v: serde_json::Value = serde_json::from_str(&plan).unwrap();
    v["layers"].as_array_mut().unwrap().reverse();
    std::fs::write(&file, v.to_string()).unwrap();
    let (code, _, err) = run(&["render", "--plan", &f]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the plan is inconsistent: bp-app depends on bp-postgres 1.1.0"),
        "{err}"
    );
    let (code, _, _) = run(&["render", "--plan", &f, "app", "--catalog", &cat]);
    assert_eq!(code, 2, "--plan and requests conflict");
}

#[test]
fn upgrade_and_uninstall_plans() {
    let cat = testdata("catalog");
    let (code, out, _) = run(&[
        "plan-upgrade",
        "app",
        "--catalog",
        &cat,
        "--installed",
        "bp-app@1.0.0,bp-postgres@1.0.2",
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "  1. install   bp-cert-manager 1.1.1\n  2. upgrade   bp-postgres 1.0.2 -> 1.1.0\n  3. upgrade   bp-app 1.0.0 -> 1.2.0\n");
    let (code, out, _) = run(&[
        "plan-upgrade",
        "postgres@^2",
        "--catalog",
        &cat,
        "--installed",
        "bp-postgres@1.1.0",
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains(
            "blocked   bp-postgres 1.1.0 -> 2.0.0  (bp-postgres 2.0.0 blocks upgrades from 1.x"
        ),
        "{out}"
    );

    let installed = "bp-app@1.2.0,bp-postgres@1.1.0,bp-cert-manager@1.1.1";
    let (code, _, err) = run(&[
        "plan-uninstall",
        "postgres",
        "--catalog",
        &cat,
        "--installed",
        installed,
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("bp-postgres is still needed by bp-app"),
        "{err}"
    );
    let (code, out, _) = run(&[
        "plan-uninstall",
        "postgres",
        "--cascade",
        "--catalog",
        &cat,
        "--installed",
        installed,
        "-o",
        "json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["steps"][0]["name"], "bp-app");
    assert_eq!(v["steps"][1]["name"], "bp-postgres");
}

#[test]
fn readme_commands_work_on_the_upstream_catalog() {
    let Some(up) = upstream() else {
        return;
    };
    let up = up.display().to_string();
    let (code, out, _) = run(&["lint", &up]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning[BP0080]: `Off` is the string \"Off\" here but the boolean false to YAML 1.1 readers (Helm, kubectl)\n"), "{out}");
    assert!(
        out.ends_with("48 files checked: 0 errors, 2 warnings\n"),
        "{out}"
    );
    let (code, _, _) = run(&["lint", "--deny-warnings", &up]);
    assert_eq!(code, 1);

    let (code, out, _) = run(&["resolve", "bp-matrix", "--catalog", &up]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("  layer 3:\n    bp-matrix 1.0.0  after bp-cnpg 1.0.0, bp-keycloak 1.1.2, bp-cert-manager 1.1.1\n"), "{out}");

    // Without values bp-matrix's required serverName is missing: render refuses.
    let (code, _, err) = run(&["render", "bp-matrix", "--catalog", &up]);
    assert_eq!(code, 1);
    assert!(
        err.contains("bp-matrix values /: \"serverName\" is a required property"),
        "{err}"
    );
    let values = format!("bp-matrix={}", testdata("matrix-values.yaml"));
    let (code, out, err) = run(&["render", "bp-matrix", "--catalog", &up, "--values", &values]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("\nkind: HelmRelease\n").count(), 5);
    assert_eq!(out.matches("\nkind: OCIRepository\n").count(), 5);
    assert!(
        out.contains(
            "  dependsOn:\n  - name: bp-cnpg\n  - name: bp-keycloak\n  - name: bp-cert-manager\n"
        ),
        "{out}"
    );
}
