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
    ok(git(
        dir.path(),
        Some(as_dana),
        &[
            "clone",
            "--quiet",
            "--branch",
            "develop",
            &url,
            work.to_str().unwrap(),
        ],
    ));
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
