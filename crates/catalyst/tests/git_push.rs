//! `git push` over smart HTTP against the real binary with a real `git` client: the same rules
//! as the API (roles, branches, EnvironmentPolicy, configSchema, generated files), refusals as
//! `remote: <file>: <json-pointer>: <message>` lines, accepted pushes recorded like API writes.
mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;
use support::Catalyst;

/// `git ARGS…` in `dir` (no prompt, no user config), authenticating as `user` with `token`
/// through a credential helper that reads them from the environment.
fn git(dir: &Path, auth: Option<(&str, &str)>, args: &[&str]) -> Output {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Dana")
        .env("GIT_AUTHOR_EMAIL", "dana@acme.example")
        .env("GIT_COMMITTER_NAME", "Dana")
        .env("GIT_COMMITTER_EMAIL", "dana@acme.example");
    if let Some((user, token)) = auth {
        c.env("PUSH_USER", user).env("PUSH_TOKEN", token).args([
            "-c",
            "credential.helper=",
            "-c",
            "credential.helper=!f() { echo username=$PUSH_USER; echo password=$PUSH_TOKEN; }; f",
        ]);
    }
    c.args(args).output().unwrap()
}

/// `git clone --branch develop URL INTO` in `dir` as `auth` (must succeed).
fn clone_develop(dir: &Path, auth: (&str, &str), url: &str, into: &Path) {
    ok(git(
        dir,
        Some(auth),
        &[
            "clone",
            "--quiet",
            "--branch",
            "develop",
            url,
            into.to_str().unwrap(),
        ],
    ));
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn refused(out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the push was accepted: {err}");
    err
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{}: {text}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// The commit a branch of the served repository is at.
fn remote_head(dir: &Path, auth: (&str, &str), url: &str, branch: &str) -> String {
    let out = ok_stdout(git(dir, Some(auth), &["ls-remote", url, branch]));
    out.split_whitespace().next().unwrap_or_default().to_owned()
}

fn ok_stdout(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn pushes_follow_the_api_rules() {
    let dir = tempfile::tempdir().unwrap();
    let server = Catalyst::console(&dir.path().join("data"), &[]);
    server
        .organization(
            "acme",
            &[
                ("dev", json!({"rules": []})),
                (
                    "prod",
                    json!({"rules": [{"kind": "pr-required", "minApprovals": 1}]}),
                ),
            ],
        )
        .await;
    for env in ["dev", "prod"] {
        let (status, v) = server
            .post_json(
                "/api/v1/orgs/acme/applications",
                &json!({"name": "orders-db", "environment": env, "blueprint": "bp-postgres", "version": "1.2.0", "values": {"instances": 2}}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
    }
    let dana = server.member("acme", "dana", "org-developer").await;
    let vic = server.member("acme", "vic", "org-viewer").await;
    let url = format!("{}/git/acme/orders-db.git", server.base);
    let work = dir.path().join("orders-db");
    let as_dana = ("dana", dana.as_str());
    clone_develop(dir.path(), as_dana, &url, &work);
    let values = work.join("values.yaml");
    let release = work.join("flux/helmrelease.yaml");

    // A values change with its regenerated HelmRelease: accepted, recorded like the API's.
    edit(&values, "instances: 2", "instances: 3");
    edit(&release, "instances: 2", "instances: 3");
    ok(git(
        &work,
        None,
        &["commit", "--quiet", "-am", "Three instances"],
    ));
    let pushed = ok_stdout(git(&work, None, &["rev-parse", "HEAD"]));
    ok(git(
        &work,
        Some(as_dana),
        &["push", "--quiet", "origin", "develop"],
    ));
    assert_eq!(
        remote_head(&work, as_dana, &url, "develop"),
        pushed.trim(),
        "the pushed commit is the branch head"
    );
    let (status, v) = server
        .get_json("/api/v1/orgs/acme/applications/orders-db")
        .await;
    assert_eq!(status, 200, "{v}");
    let dev = v["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["envType"] == "dev")
        .unwrap();
    assert_eq!(dev["values"]["instances"], 3, "{v}");
    assert_eq!(dev["commit"], pushed.trim(), "{v}");
    let (_, audit) = server.get_json("/api/v1/orgs/acme/audit").await;
    let text = audit.to_string();
    assert!(
        text.contains("application.values-changed") && text.contains("\"dana\""),
        "{audit}"
    );

    // An invalid value: refused with its JSON pointer; the branch does not move.
    edit(&values, "instances: 3", "instances: 9");
    edit(&release, "instances: 3", "instances: 9");
    ok(git(&work, None, &["commit", "--quiet", "-am", "Nine"]));
    let err = refused(git(&work, Some(as_dana), &["push", "origin", "develop"]));
    assert!(err.contains("remote: values.yaml: /instances:"), "{err}");
    assert!(err.contains("invalid change"), "{err}");
    assert_eq!(remote_head(&work, as_dana, &url, "develop"), pushed.trim());

    // values.yaml changed but the rendered HelmRelease not: refused, naming where it differs.
    ok(git(
        &work,
        None,
        &["reset", "--quiet", "--hard", "origin/develop"],
    ));
    edit(&values, "instances: 3", "instances: 4");
    ok(git(
        &work,
        None,
        &["commit", "--quiet", "-am", "Four, by hand"],
    ));
    let err = refused(git(&work, Some(as_dana), &["push", "origin", "develop"]));
    assert!(
        err.contains(
            "remote: flux/helmrelease.yaml: /spec/values/instances: is 3, Catalyst generates 4"
        ),
        "{err}"
    );

    // A force push (rewriting the pushed commit): refused as non-fast-forward.
    ok(git(&work, None, &["reset", "--quiet", "--hard", "HEAD~2"]));
    edit(&values, "instances: 2", "instances: 1");
    edit(&release, "instances: 2", "instances: 1");
    ok(git(&work, None, &["commit", "--quiet", "-am", "Rewrite"]));
    let err = refused(git(
        &work,
        Some(as_dana),
        &["push", "--force", "origin", "develop"],
    ));
    assert!(err.contains("non-fast-forward"), "{err}");
    assert!(err.contains("force pushes are refused"), "{err}");
    assert_eq!(remote_head(&work, as_dana, &url, "develop"), pushed.trim());

    // Deleting an env branch and pushing an unknown branch: refused.
    let err = refused(git(&work, Some(as_dana), &["push", "origin", ":develop"]));
    assert!(err.contains("develop"), "{err}");
    let err = refused(git(
        &work,
        Some(as_dana),
        &["push", "origin", "HEAD:refs/heads/feature"],
    ));
    assert!(err.contains("unknown branch"), "{err}");

    // main (prod) while its EnvironmentPolicy has an unmet rule: refused naming the rule and
    // the way to promote.
    ok(git(
        &work,
        Some(as_dana),
        &["fetch", "--quiet", "origin", "main"],
    ));
    ok(git(
        &work,
        None,
        &["checkout", "--quiet", "-B", "main", "origin/main"],
    ));
    edit(&values, "instances: 2", "instances: 3");
    edit(&release, "instances: 2", "instances: 3");
    ok(git(
        &work,
        None,
        &["commit", "--quiet", "-am", "Prod three"],
    ));
    let before = remote_head(&work, as_dana, &url, "main");
    let err = refused(git(&work, Some(as_dana), &["push", "origin", "main"]));
    assert!(err.contains("pr-required"), "{err}");
    assert!(err.contains("catalyst app promote"), "{err}");
    assert_eq!(remote_head(&work, as_dana, &url, "main"), before);

    // An org-viewer may clone but never push.
    ok(git(&work, None, &["checkout", "--quiet", "develop"]));
    ok(git(
        &work,
        None,
        &["reset", "--quiet", "--hard", "origin/develop"],
    ));
    edit(&values, "instances: 3", "instances: 2");
    edit(&release, "instances: 3", "instances: 2");
    ok(git(&work, None, &["commit", "--quiet", "-am", "Viewer"]));
    let err = refused(git(
        &work,
        Some(("vic", vic.as_str())),
        &["push", "origin", "develop"],
    ));
    assert!(err.contains("403"), "{err}");
    assert_eq!(remote_head(&work, as_dana, &url, "develop"), pushed.trim());
}

#[tokio::test(flavor = "multi_thread")]
async fn system_config_pushes_need_sovereign_admin_and_valid_resources() {
    let dir = tempfile::tempdir().unwrap();
    let server = Catalyst::console(&dir.path().join("data"), &[]);
    server
        .organization("acme", &[("dev", json!({"rules": []}))])
        .await;
    let owner = server.member("acme", "olga", "org-admin").await;
    let url = format!("{}/git/system/catalyst-config.git", server.base);
    let work = dir.path().join("config");
    let admin = ("test-admin", server.admin.as_str());
    ok(git(
        dir.path(),
        Some(admin),
        &["clone", "--quiet", &url, work.to_str().unwrap()],
    ));
    let org = work.join("organizations/acme.yaml");
    let head = remote_head(&work, admin, &url, "main");

    // An org-admin may not even see the repository.
    let text = std::fs::read_to_string(&org).unwrap();
    let named = text.replace("spec:\n", "spec:\n  displayName: Acme Corp\n");
    std::fs::write(&org, &named).unwrap();
    ok(git(&work, None, &["commit", "--quiet", "-am", "Rename"]));
    let err = refused(git(
        &work,
        Some(("olga", owner.as_str())),
        &["push", "origin", "main"],
    ));
    assert!(err.contains("not found"), "{err}");
    assert_eq!(remote_head(&work, admin, &url, "main"), head);

    // sovereign-admin with a resource its CRD refuses: the JSON pointer in `remote:`.
    ok(git(
        &work,
        None,
        &["reset", "--quiet", "--hard", "origin/main"],
    ));
    std::fs::write(&org, text.replace("spec:\n", "spec:\n  displayName: 42\n")).unwrap();
    ok(git(&work, None, &["commit", "--quiet", "-am", "Bad name"]));
    let err = refused(git(&work, Some(admin), &["push", "origin", "main"]));
    assert!(
        err.contains("remote: organizations/acme.yaml: /spec/displayName:"),
        "{err}"
    );
    assert_eq!(remote_head(&work, admin, &url, "main"), head);

    // The plumbing is Catalyst's.
    ok(git(
        &work,
        None,
        &["reset", "--quiet", "--hard", "origin/main"],
    ));
    let ns = work.join("environments/acme-dev/namespace.yaml");
    std::fs::write(
        &ns,
        std::fs::read_to_string(&ns).unwrap() + "# mine\nextra: 1\n",
    )
    .unwrap();
    ok(git(
        &work,
        None,
        &["commit", "--quiet", "-am", "Touch plumbing"],
    ));
    let err = refused(git(&work, Some(admin), &["push", "origin", "main"]));
    assert!(
        err.contains("remote: environments/acme-dev/namespace.yaml: /:"),
        "{err}"
    );

    // A valid change: accepted and recorded like the API's.
    ok(git(
        &work,
        None,
        &["reset", "--quiet", "--hard", "origin/main"],
    ));
    std::fs::write(&org, &named).unwrap();
    ok(git(&work, None, &["commit", "--quiet", "-am", "Rename"]));
    ok(git(
        &work,
        Some(admin),
        &["push", "--quiet", "origin", "main"],
    ));
    let (status, v) = server.get_json("/api/v1/orgs/acme").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["organization"]["spec"]["displayName"], "Acme Corp", "{v}");
    let (_, audit) = server.get_json("/api/v1/orgs/acme/audit").await;
    assert!(
        audit.to_string().contains("organization.updated"),
        "{audit}"
    );
}

/// `bp-shop` 1.2.0, written for the test next to the gitops test catalog (bp-shop 1.0.0/1.1.0 →
/// bp-api → bp-db): it also uses `bp-db` directly, so an upgrade to it changes the
/// Application's dependencies (the Environment's plumbing) without adding an Application.
const SHOP_1_2_0: &str = "apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata:
  name: bp-shop
spec:
  version: 1.2.0
  card:
    title: Shop
    summary: A web shop that also talks to its database directly.
  visibility: listed
  configSchema:
    type: object
    additionalProperties: false
    properties:
      replicas:
        type: integer
        minimum: 1
        default: 1
      title:
        type: string
        default: My shop
  depends:
    - blueprint: bp-api
      version: ^1
      alias: api
    - blueprint: bp-db
      version: ^1
      alias: db
";

/// A file of `system/catalyst-config` at `main`, read from the bare repository.
fn config_file(data: &Path, path: &str) -> String {
    ok_stdout(
        Command::new("git")
            .arg("--git-dir")
            .arg(data.join("git/system/catalyst-config.git"))
            .args(["show", &format!("main:{path}")])
            .output()
            .unwrap(),
    )
}

/// An upgrade by `git push`, end to end: the version changed in `catalyst.yaml` with the files
/// the API generates for it (taken from the API's own dry run of the same upgrade) is accepted,
/// recorded as `application.upgraded` by the pusher, shown by `catalyst app get`, and moves the
/// Environment's Flux plumbing in `system/catalyst-config` with it; a version the catalog does
/// not have, or the version alone without the regenerated files, is refused with `remote:`
/// lines and the branch does not move.
#[tokio::test(flavor = "multi_thread")]
async fn a_version_change_pushed_with_its_generated_files_upgrades_the_application() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("catalog-extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("shop-1.2.0.blueprint.yaml"), SHOP_1_2_0).unwrap();
    let data = dir.path().join("data");
    let server = Catalyst::start_with(
        &data,
        &[
            "--provisioner",
            "dry-run",
            "--catalog",
            "crates/catalyst-gitops/testdata/catalog",
            "--catalog",
            extra.to_str().unwrap(),
        ],
        |cmd| {
            cmd.current_dir(support::repo());
        },
    );
    server
        .organization("acme", &[("dev", json!({"rules": []}))])
        .await;
    let (status, v) = server
        .post_json(
            "/api/v1/orgs/acme/applications",
            &json!({"name": "web", "environment": "dev", "blueprint": "bp-shop", "version": "1.0.0", "values": {"replicas": 2}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let [_, application] = catalyst_gitops::plumbing::app_paths("web");
    let plumbing = &format!("environments/acme-dev/{application}");
    let before = config_file(&data, plumbing);
    assert!(
        before.contains("web-api") && !before.contains("web-db"),
        "{before}"
    );

    let dana = server.member("acme", "dana", "org-developer").await;
    let as_dana = ("dana", dana.as_str());
    let url = format!("{}/git/acme/web.git", server.base);
    let work = dir.path().join("web");
    clone_develop(dir.path(), as_dana, &url, &work);
    let head = remote_head(&work, as_dana, &url, "develop");
    let doc = work.join("catalyst.yaml");

    // A version the catalog does not have: refused at catalyst.yaml's pointer.
    // (`spec.blueprint.version` only: `spec.dependencies.api.version` is web-api's.)
    let pinned = "name: bp-shop\n    version: 1.0.0";
    edit(&doc, pinned, "name: bp-shop\n    version: 9.9.9");
    ok(git(
        &work,
        None,
        &["commit", "--quiet", "-am", "Shop 9.9.9"],
    ));
    let err = refused(git(&work, Some(as_dana), &["push", "origin", "develop"]));
    assert!(
        err.contains("remote: catalyst.yaml: /spec/blueprint/version:") && err.contains("9.9.9"),
        "{err}"
    );
    assert!(err.contains("invalid change"), "{err}");
    assert_eq!(remote_head(&work, as_dana, &url, "develop"), head);

    // The version alone, without the files it regenerates: refused, naming a generated file.
    ok(git(
        &work,
        None,
        &["reset", "--quiet", "--hard", "origin/develop"],
    ));
    edit(&doc, pinned, "name: bp-shop\n    version: 1.2.0");
    ok(git(
        &work,
        None,
        &["commit", "--quiet", "-am", "Shop 1.2.0, by hand"],
    ));
    let err = refused(git(&work, Some(as_dana), &["push", "origin", "develop"]));
    assert!(
        err.contains("remote: flux/ocirepository.yaml: /metadata/labels/openova.io~1blueprint-version: is \"1.0.0\", Catalyst generates \"1.2.0\""),
        "{err}"
    );
    assert!(
        err.contains("remote: catalyst.yaml: /spec/dependencies/db: is absent, Catalyst generates"),
        "the dependency 1.2.0 adds is named: {err}"
    );
    assert_eq!(remote_head(&work, as_dana, &url, "develop"), head);

    // Refused pushes record nothing and leave the plumbing alone.
    let (_, audit) = server
        .get_json("/api/v1/orgs/acme/audit?type=application.upgraded")
        .await;
    assert_eq!(audit["entries"], json!([]), "{audit}");
    assert_eq!(config_file(&data, plumbing), before);

    // The same upgrade as a dry run of the CLI: its diff of acme/web is what the API would
    // commit; applied to the clone, committed and pushed.
    let (code, out, err) = support::cli(
        dir.path(),
        &[
            "app",
            "upgrade",
            "web",
            "--org",
            "acme",
            "--env",
            "dev",
            "--version",
            "1.2.0",
            "--dry-run",
            "-o",
            "json",
            "--server",
            &server.base,
            "--token",
            &dana,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["dryRun"], true, "{plan}");
    let commits = plan["commits"].as_array().unwrap();
    let repos: Vec<&str> = commits
        .iter()
        .map(|c| c["repo"].as_str().unwrap())
        .collect();
    assert!(
        repos.contains(&"acme/web") && repos.contains(&"system/catalyst-config"),
        "the upgrade writes web and the plumbing only: {plan}"
    );
    assert_eq!(repos.len(), 2, "{plan}");
    let diff = commits.iter().find(|c| c["repo"] == "acme/web").unwrap()["diff"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(git(
        &work,
        None,
        &["reset", "--quiet", "--hard", "origin/develop"],
    ));
    let patch = dir.path().join("upgrade.patch");
    std::fs::write(&patch, &diff).unwrap();
    ok(git(
        &work,
        None,
        &["apply", "--index", patch.to_str().unwrap()],
    ));
    let text = std::fs::read_to_string(&doc).unwrap();
    assert!(
        text.contains("version: 1.2.0") && text.contains("web-db"),
        "{text}"
    );
    ok(git(
        &work,
        None,
        &[
            "commit",
            "--quiet",
            "-m",
            "Shop 1.2.0: use the database directly",
        ],
    ));
    let pushed = ok_stdout(git(&work, None, &["rev-parse", "HEAD"]));
    let pushed = pushed.trim();
    ok(git(
        &work,
        Some(as_dana),
        &["push", "--quiet", "origin", "develop"],
    ));
    assert_eq!(remote_head(&work, as_dana, &url, "develop"), pushed);

    // The API and the CLI show the new version at the pushed commit.
    let (code, out, err) = support::cli(
        dir.path(),
        &[
            "app",
            "get",
            "web",
            "--org",
            "acme",
            "-o",
            "json",
            "--server",
            &server.base,
            "--token",
            &dana,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    let dev = got["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["envType"] == "dev")
        .unwrap_or_else(|| panic!("{got}"))
        .clone();
    assert_eq!(dev["version"], "1.2.0", "{got}");
    assert_eq!(dev["commit"], pushed, "{got}");
    let (status, v) = server
        .get_json("/api/v1/orgs/acme/applications?environment=dev")
        .await;
    assert_eq!(status, 200, "{v}");
    let card = v["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "web")
        .unwrap()
        .clone();
    assert_eq!(card["version"], "1.2.0", "{v}");
    assert_eq!(card["commit"], pushed, "{v}");
    assert!(
        card["dependsOn"].to_string().contains("web-db"),
        "the card follows the new dependencies: {card}"
    );

    // One event, the pusher's.
    let (_, audit) = server
        .get_json("/api/v1/orgs/acme/audit?type=application.upgraded")
        .await;
    let entries: Vec<&serde_json::Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.to_string().contains(pushed))
        .collect();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["actor"], "dana", "{audit}");
    // The same event carries the plumbing commit, which is config's head.
    let config_head = ok_stdout(
        Command::new("git")
            .arg("--git-dir")
            .arg(data.join("git/system/catalyst-config.git"))
            .args(["rev-parse", "main"])
            .output()
            .unwrap(),
    );
    assert!(
        entries[0]["commits"].to_string().contains(&format!(
            "system/catalyst-config@main:{}",
            config_head.trim()
        )),
        "{audit}"
    );

    // The Environment's plumbing moved with it: web's Kustomization now waits for web-db too,
    // exactly as the dry run said it would.
    let after = config_file(&data, plumbing);
    assert!(
        after.contains("web-api") && after.contains("web-db"),
        "{after}"
    );
    let config_diff = commits
        .iter()
        .find(|c| c["repo"] == "system/catalyst-config")
        .unwrap()["diff"]
        .as_str()
        .unwrap();
    let section = config_diff
        .split("diff --git ")
        .find(|s| s.starts_with(&format!("a/{plumbing} ")))
        .unwrap_or_else(|| panic!("{config_diff}"));
    for line in section
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
    {
        assert!(after.contains(&line[1..]), "{line:?} missing from {after}");
    }

    // And the repositories stay sound.
    for repo in ["acme/web", "system/catalyst-config"] {
        ok_stdout(
            Command::new("git")
                .arg("--git-dir")
                .arg(data.join(format!("git/{repo}.git")))
                .args(["fsck", "--strict", "--no-progress"])
                .output()
                .unwrap(),
        );
    }
}
