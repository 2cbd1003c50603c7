//! Rendering: the template subset, tfvars against the OpenTofu variables, staging, cloud-init.
mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use catalyst_core::DomainMode;
use catalyst_provision::render::{
    self, render_template, RenderError, TofuSettings, K3S_TOKEN_PLACEHOLDER, TFVARS_FILE,
    TOKEN_VARIABLE,
};
use common::*;
use serde_json::{json, Map, Value};

fn vars() -> Map<String, Value> {
    match json!({"name": "omantel", "count": 2, "ha": true, "empty": "", "list": [1], "nothing": null})
    {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn check(template: &str, expect: &str) {
    assert_eq!(
        render_template(template, &vars()).unwrap(),
        expect,
        "template {template:?}"
    );
}

fn check_err(template: &str, want: impl Fn(&RenderError) -> bool) {
    match render_template(template, &vars()) {
        Err(e) if want(&e) => {}
        other => panic!("template {template:?}: unexpected {other:?}"),
    }
}

#[test]
fn template_interpolation_and_escapes() {
    check("", "");
    check("plain text, no markers", "plain text, no markers");
    check("hello ${name}!", "hello omantel!");
    check("${name}${name}", "omantelomantel");
    check("${ name }", "omantel");
    check("n=${count} ha=${ha} e=[${empty}]", "n=2 ha=true e=[]");
    check("$${name}", "${name}");
    check("$$${name}", "$${name}");
    check("%%{ if x }", "%{ if x }");
    check("cost: 5$ or 5% $ % $$ %%", "cost: 5$ or 5% $ % $$ %%");
    check("a } b {", "a } b {");
    check("ünïcode ${name} ✓", "ünïcode omantel ✓");
    check("line1\n${name}\n", "line1\nomantel\n");
}

#[test]
fn template_errors() {
    check_err(
        "x\n${nope}",
        |e| matches!(e, RenderError::UnknownVariable { name, line: 2 } if name == "nope"),
    );
    check_err("%{ if ha }yes%{ endif }", |e| {
        matches!(e, RenderError::Directive { line: 1 })
    });
    check_err("a\nb\n${name", |e| {
        matches!(e, RenderError::Unterminated { line: 3 })
    });
    check_err("${var.name}", |e| {
        matches!(e, RenderError::Expression { .. })
    });
    check_err("${upper(name)}", |e| {
        matches!(e, RenderError::Expression { .. })
    });
    check_err("${~name}", |e| matches!(e, RenderError::Expression { .. }));
    check_err("${}", |e| matches!(e, RenderError::Expression { .. }));
    check_err("${list}", |e| matches!(e, RenderError::NotScalar { .. }));
    check_err("${nothing}", |e| matches!(e, RenderError::NotScalar { .. }));
}

#[test]
fn tfvars_snapshot() {
    let settings = TofuSettings::new("/infra/hetzner", "/var/lib/catalyst/tofu");
    insta::assert_json_snapshot!("tfvars", render::tfvars(&job(), &settings));
}

#[test]
fn tfvars_never_hold_the_token_and_regions_is_always_an_array() {
    let settings = TofuSettings::default();
    let vars = render::tfvars(&job(), &settings);
    assert!(!vars.contains_key(TOKEN_VARIABLE));
    assert!(!Value::Object(vars.clone()).to_string().contains(TOKEN));
    assert!(vars["regions"].is_array());
    assert!(vars["ssh_allowed_cidrs"].is_array());

    let mut job = job();
    job.spec.domain_mode = DomainMode::ByoApi;
    job.spec.pool_domain = None;
    job.spec.subdomain = None;
    job.spec.sovereign_fqdn = "k8s.example.com".into();
    let vars = render::tfvars(&job, &settings);
    assert_eq!(vars["domain_mode"], "byo-api");
    assert_eq!(vars["pool_domain"], "");
    assert_eq!(vars["sovereign_subdomain"], "");
}

#[test]
fn control_plane_cloud_init_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let rendered = render::cloud_init(&settings(tmp.path()), &job()).unwrap();
    insta::assert_snapshot!("control_plane_cloud_init", rendered.control_plane);
    assert!(rendered.worker.contains("node-ip: \"10.0.1.10\""));
    assert!(rendered.worker.contains(K3S_TOKEN_PLACEHOLDER));
    for text in [&rendered.control_plane, &rendered.worker] {
        assert!(text.starts_with("#cloud-config\n"));
        assert!(!text.contains(TOKEN));
        // The escape survived as apt's own syntax.
        assert!(text.contains("\"${distro_id}:${distro_codename}-security\""));
    }
}

#[test]
fn cloud_init_needs_the_templates() {
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = settings(tmp.path());
    settings.module_dir = tmp.path().join("nowhere");
    let err = render::cloud_init(&settings, &job()).unwrap_err();
    assert!(
        matches!(err, RenderError::Io { action: "read", .. }),
        "{err}"
    );
}

#[test]
fn org_fields_are_json_encoded_in_cloud_init() {
    let tmp = tempfile::tempdir().unwrap();
    let mut job = job();
    job.spec.org_name = "Acme \"<Ops>\" & Co\nLtd".into();
    let rendered = render::cloud_init(&settings(tmp.path()), &job).unwrap();
    assert!(rendered
        .control_plane
        .contains(r#""orgName": "Acme \"\u003cOps\u003e\" \u0026 Co\nLtd","#));
}

/// The variable blocks of infra/hetzner/variables.tf: name → (has default, sensitive).
fn declared_variables() -> Vec<(String, bool, bool)> {
    let text = std::fs::read_to_string(module_dir().join("variables.tf")).unwrap();
    let body = hcl::parse(&text).expect("variables.tf is valid HCL");
    body.blocks()
        .filter(|b| b.identifier() == "variable")
        .map(|b| {
            let name = b.labels()[0].as_str().to_owned();
            let has_default = b.body().attributes().any(|a| a.key() == "default");
            let sensitive = b
                .body()
                .attributes()
                .any(|a| a.key() == "sensitive" && matches!(a.expr(), hcl::Expression::Bool(true)));
            (name, has_default, sensitive)
        })
        .collect()
}

#[test]
fn tfvars_match_the_declared_variables() {
    let declared = declared_variables();
    let names: BTreeSet<&str> = declared.iter().map(|(n, _, _)| n.as_str()).collect();
    let written = render::tfvars(&job(), &TofuSettings::default());
    for key in written.keys() {
        assert!(
            names.contains(key.as_str()),
            "tfvars writes undeclared {key}"
        );
    }
    for (name, has_default, sensitive) in &declared {
        if name == render::GIT_TOKEN_VARIABLE {
            assert!(*sensitive, "gitops_token must be sensitive");
            assert!(
                !written.contains_key(name),
                "gitops_token must never be written"
            );
        } else if name == TOKEN_VARIABLE {
            assert!(*sensitive, "hcloud_token must be sensitive");
            assert!(!has_default, "hcloud_token must have no default");
            assert!(
                !written.contains_key(name),
                "hcloud_token must never be written"
            );
        } else {
            assert!(
                !sensitive,
                "{name} is sensitive but would be written to a file"
            );
            assert!(written.contains_key(name), "tfvars does not write {name}");
        }
    }
    assert!(names.contains(TOKEN_VARIABLE));
}

#[test]
fn every_tf_file_is_valid_hcl_and_templates_use_no_directives() {
    let mut tf = 0;
    for entry in std::fs::read_dir(module_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        match path.extension().and_then(|e| e.to_str()) {
            Some("tf") => {
                hcl::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                tf += 1;
            }
            Some("tftpl") => assert!(!text.contains("%{"), "{}", path.display()),
            _ => {}
        }
    }
    assert!(tf >= 5);
}

#[test]
fn staging_copies_the_configuration_privately_and_writes_tfvars() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = settings(&tmp.path().join("work"));
    let job = job();
    let workdir = render::stage(&settings, &job).unwrap();
    assert_eq!(workdir, tmp.path().join("work").join(ID));

    // A configuration file the directory no longer has is removed; tofu's own files stay.
    std::fs::write(workdir.join("old.tf"), "# gone").unwrap();
    std::fs::write(workdir.join("terraform.tfstate"), "{}").unwrap();
    render::stage(&settings, &job).unwrap();

    let mut names: Vec<String> = std::fs::read_dir(&workdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = std::fs::read_dir(module_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tf") || n.ends_with(".tftpl"))
        .chain([TFVARS_FILE.to_owned(), "terraform.tfstate".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(names, expected);

    for name in names.iter().filter(|n| *n != "terraform.tfstate") {
        let mode = std::fs::metadata(workdir.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let written: Value =
        serde_json::from_slice(&std::fs::read(workdir.join(TFVARS_FILE)).unwrap()).unwrap();
    assert_eq!(written, Value::Object(render::tfvars(&job, &settings)));
    assert_absent_from_files(tmp.path(), TOKEN);
}

/// `tofu` or `terraform` on PATH, if any.
fn hcl_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["tofu", "terraform"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn real_templatefile(
    bin: &Path,
    dir: &Path,
    job: &catalyst_provision::ProvisionJob,
) -> (String, String) {
    for name in [
        "variables.tf",
        "cloudinit.tf",
        render::CONTROL_PLANE_TEMPLATE,
        render::WORKER_TEMPLATE,
    ] {
        std::fs::copy(module_dir().join(name), dir.join(name)).unwrap();
    }
    let vars = render::tfvars(job, &TofuSettings::default());
    std::fs::write(
        dir.join(TFVARS_FILE),
        serde_json::to_vec_pretty(&vars).unwrap(),
    )
    .unwrap();
    let check = r#"
locals {
  k3s_token = "PLACEHOLDER"
}
output "control_plane" {
  value     = templatefile("${path.module}/cloudinit-control-plane.tftpl", local.control_plane_cloudinit[0])
  sensitive = true
}
output "worker" {
  value = templatefile("${path.module}/cloudinit-worker.tftpl", local.worker_cloudinit[0])
}
"#
    .replace("PLACEHOLDER", K3S_TOKEN_PLACEHOLDER);
    std::fs::write(dir.join("check.tf"), check).unwrap();
    let tofu = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .env("TF_VAR_hcloud_token", TOKEN)
            .env("TF_VAR_gitops_token", render::GIT_TOKEN_PLACEHOLDER)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}: {}{}",
            bin.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    tofu(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let outputs: Value = serde_json::from_slice(&tofu(&["output", "-json"])).unwrap();
    let get = |name: &str| outputs[name]["value"].as_str().unwrap().to_owned();
    (get("control_plane"), get("worker"))
}

/// The dry run's cloud-init is byte for byte what OpenTofu's templatefile() produces from the
/// same tfvars, and those tfvars pass every variable validation. Needs `tofu` or `terraform`
/// on PATH (no providers, no network); skipped otherwise.
#[test]
fn cloud_init_matches_real_templatefile() {
    let Some(bin) = hcl_binary() else {
        eprintln!("skipped: neither tofu nor terraform is on PATH");
        return;
    };
    let mut odd = job();
    odd.spec.org_name = "Acme \"<Ops>\" & Co \u{2028} Ünïcode ✓ 'x' \\ end".into();
    odd.spec.org_email = "ops+sovereign@acme.io".into();
    odd.spec.hetzner_project_id = "proj-<1>".into();
    odd.spec.domain_mode = DomainMode::ByoManual;
    odd.spec.pool_domain = None;
    odd.spec.subdomain = None;
    odd.spec.ha_enabled = true;
    for job in [job(), odd] {
        let tmp = tempfile::tempdir().unwrap();
        let (control_plane, worker) = real_templatefile(&bin, tmp.path(), &job);
        let ours = render::cloud_init(&TofuSettings::new(module_dir(), tmp.path()), &job).unwrap();
        assert_eq!(ours.control_plane, control_plane);
        assert_eq!(ours.worker, worker);
    }
}
