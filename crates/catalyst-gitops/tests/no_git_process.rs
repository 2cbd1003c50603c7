//! The write path spawns no `git` process: a 3-deep Blueprint install, values change,
//! upgrade, rollback and cascading uninstall with `PATH` pointing at a `git` that records
//! every call and fails. One test in its own process (PATH is process-wide), set before any
//! thread starts; then the real `git` checks every repository with `fsck --strict`.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use catalyst_blueprint::load::load_catalog;
use catalyst_blueprint::render::RenderOptions;
use catalyst_blueprint::Source;
use catalyst_gitops::{Actor, AppName, Call, EnvType, InstallRequest, OrgName, Sovereign};
use serde_json::json;

fn call(id: &str) -> Call {
    Call {
        actor: Actor {
            name: "alice".into(),
            email: "alice@acme.example".into(),
        },
        request_id: id.into(),
        dry_run: false,
        if_match: None,
    }
}

fn repositories(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for owner in std::fs::read_dir(root).unwrap().flatten() {
        let Ok(rd) = std::fs::read_dir(owner.path()) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().ends_with(".git") {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn install_upgrade_rollback_uninstall_run_no_git_process() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = dir.path().join("git-calls");
    let fake = bin.join("git");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\nexit 1\n", calls.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::set_var("PATH", &bin);

    let catalog_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/catalog");
    let (catalog, _) = load_catalog(&[(Source::Public, catalog_dir)]).unwrap();
    let root = dir.path().join("git");
    let s = Sovereign::open(&root, Arc::new(catalog), RenderOptions::default()).unwrap();
    let org = OrgName::parse("acme").unwrap();
    let web = AppName::parse("web").unwrap();
    s.create_org(&call("org"), &org, &json!({})).unwrap();
    s.create_env(&call("env"), &org, EnvType::Dev, &json!([]))
        .unwrap();
    let installed = s
        .install(
            &call("install"),
            &org,
            &InstallRequest {
                app: web.clone(),
                env: EnvType::Dev,
                blueprint: "bp-shop@1.0.0".into(),
                values: json!({}),
                use_existing: Default::default(),
                dependency_values: Default::default(),
            },
        )
        .unwrap();
    // web, web-api, web-db and the Environment's plumbing in system/catalyst-config.
    assert_eq!(installed.commits.len(), 4, "{installed:?}");
    let first = installed
        .commits
        .iter()
        .find(|c| c.repo == "acme/web")
        .unwrap()
        .commit
        .clone();
    s.set_values(
        &call("values"),
        &org,
        &web,
        EnvType::Dev,
        &json!({"replicas": 3}),
    )
    .unwrap();
    s.upgrade(&call("upgrade"), &org, &web, EnvType::Dev, "^1")
        .unwrap();
    s.rollback(&call("rollback"), &org, &web, EnvType::Dev, &first[..12])
        .unwrap();
    let removed = s
        .uninstall(&call("uninstall"), &org, &web, EnvType::Dev, true)
        .unwrap();
    assert!(removed.commits.len() >= 3, "{removed:?}");
    assert_eq!(s.app_repo(&org, &web).log("develop").unwrap().len(), 5);
    drop(s);

    std::env::set_var("PATH", &path);
    assert!(
        !calls.exists(),
        "git was run: {}",
        std::fs::read_to_string(&calls).unwrap_or_default()
    );
    let repos = repositories(&root);
    assert_eq!(repos.len(), 4, "{repos:?}");
    for repo in repos {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&repo)
            .args(["fsck", "--strict", "--no-dangling"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git fsck --strict {}: {}",
            repo.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
