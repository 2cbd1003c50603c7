//! What a Sovereign's Flux needs from Catalyst, end to end through the real binary: the
//! Environment plumbing's two Secrets hold only Flux post-build variables; substituted as the
//! chart's `catalyst-environments` Kustomization substitutes them (from the `catalyst-flux`
//! Secret, whose keys are the files `--flux-git-token-file` and `--flux-webhook-key-file`
//! read), the `catalyst-git` Secret clones every GitRepository source of the plumbing on its
//! branch, and the `catalyst-flux-webhook` Secret signs a notification `/api/v1/hooks/flux`
//! accepts. Flux's Git token reads and does nothing else: no push, no API, no provisioned
//! Sovereign's bootstrap repository; a wrong token reads nothing.
mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;
use support::Catalyst;

const FLUX_GIT_TOKEN: &str = "flux-git-read-token-0123456789abcdef";
const FLUX_WEBHOOK_KEY: &str = "flux-webhook-key-0123456789abcdef";

/// `git ARGS…` in `dir` (no prompt, no user config) as `user`/`password` through a credential
/// helper reading them from the environment.
fn git(dir: &Path, auth: (&str, &str), args: &[&str]) -> Output {
    Command::new("git")
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Flux")
        .env("GIT_AUTHOR_EMAIL", "flux@acme.example")
        .env("GIT_COMMITTER_NAME", "Flux")
        .env("GIT_COMMITTER_EMAIL", "flux@acme.example")
        .env("FLUX_USER", auth.0)
        .env("FLUX_PASSWORD", auth.1)
        .args([
            "-c",
            "credential.helper=",
            "-c",
            "credential.helper=!f() { echo username=$FLUX_USER; echo password=$FLUX_PASSWORD; }; f",
        ])
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: Output) {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn refused(out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "git succeeded: {err}");
    err
}

/// The value of the first `key: value` line of `text` (the plumbing's YAML is flat enough).
fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim_matches('\'')
        .to_owned()
}

/// Flux's post-build substitution with the `catalyst-flux` Secret's keys as variables.
fn substitute(text: &str) -> String {
    text.replace("${catalyst_git_token}", FLUX_GIT_TOKEN)
        .replace("${catalyst_flux_webhook_token}", FLUX_WEBHOOK_KEY)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plumbing_secrets_substituted_as_flux_does_read_every_source_and_sign_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let (token_file, key_file) = (dir.path().join("flux-git"), dir.path().join("flux-hook"));
    std::fs::write(&token_file, format!("{FLUX_GIT_TOKEN}\n")).unwrap();
    std::fs::write(&key_file, FLUX_WEBHOOK_KEY).unwrap();
    let server = Catalyst::console(
        &dir.path().join("data"),
        &[
            "--flux-git-token-file",
            token_file.to_str().unwrap(),
            "--flux-webhook-key-file",
            key_file.to_str().unwrap(),
        ],
    );
    server
        .organization("acme", &[("dev", json!({"rules": []}))])
        .await;
    for (name, blueprint) in [("orders-db", "bp-postgres"), ("cache", "bp-valkey")] {
        let (status, v) = server
            .post_json(
                "/api/v1/orgs/acme/applications",
                &json!({"name": name, "environment": "dev", "blueprint": blueprint}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
    }
    let flux = ("flux", FLUX_GIT_TOKEN);

    // Flux's token clones system/catalyst-config (what the chart's GitRepository reads).
    let config = dir.path().join("config");
    ok(git(
        dir.path(),
        flux,
        &[
            "clone",
            "--quiet",
            &format!("{}/git/system/catalyst-config.git", server.base),
            config.to_str().unwrap(),
        ],
    ));
    let plumbing = config.join("environments/acme-dev");
    let read = |p: &str| std::fs::read_to_string(plumbing.join(p)).unwrap();

    // The Secrets hold variables, never a credential.
    let git_secret = read("secrets/git.yaml");
    let hook_secret = read("secrets/flux-webhook.yaml");
    for text in [&git_secret, &hook_secret] {
        assert!(!text.contains(FLUX_GIT_TOKEN) && !text.contains(FLUX_WEBHOOK_KEY));
    }
    assert_eq!(field(&git_secret, "namespace"), "acme-dev");
    assert_eq!(field(&git_secret, "name"), "catalyst-git");
    assert_eq!(field(&hook_secret, "name"), "catalyst-flux-webhook");

    // Substituted, the catalyst-git Secret clones every source of the plumbing on its branch.
    let git_secret = substitute(&git_secret);
    let creds = (
        field(&git_secret, "username"),
        field(&git_secret, "password"),
    );
    let mut sources = 0;
    let source_files = walkdir::WalkDir::new(plumbing.join("sources"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.file_name() != "kustomization.yaml");
    for e in source_files {
        let text = std::fs::read_to_string(e.path()).unwrap();
        assert!(
            text.contains("secretRef:\n    name: catalyst-git"),
            "{text}"
        );
        let url = field(&text, "url");
        let path = url
            .strip_prefix(catalyst_gitops::sovereign::DEFAULT_PUBLIC_URL)
            .unwrap_or_else(|| panic!("{url} is not under --public-url"));
        let target = dir.path().join(format!("source-{sources}"));
        ok(git(
            dir.path(),
            (&creds.0, &creds.1),
            &[
                "clone",
                "--quiet",
                "--branch",
                &field(&text, "branch"),
                &format!("{}{path}", server.base),
                target.to_str().unwrap(),
            ],
        ));
        assert!(target.join("catalyst.yaml").is_file());
        sources += 1;
    }
    assert_eq!(sources, 2, "one source per Application");

    // Substituted, the catalyst-flux-webhook Secret signs what the webhook accepts.
    let key = field(&substitute(&hook_secret), "token");
    let body = json!({
        "involvedObject": {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                           "name": "orders-db", "namespace": "acme-dev",
                           "uid": "5bb5a2a4-8e58-4b2e-9f1c-0d7d3c1f2a11"},
        "severity": "info", "timestamp": "2026-12-07T10:15:00Z",
        "message": "Helm install succeeded for release acme-dev/orders-db.v1",
        "reason": "InstallSucceeded", "metadata": {},
        "reportingController": "helm-controller", "reportingInstance": "helm-controller-0"
    })
    .to_string();
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/hooks/flux"))
        .header("content-type", "application/json")
        .header("x-signature", support::flux_signature(&key, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());

    // The substituted folder still builds.
    if let Some(kubectl) = catalyst_testkit::kubectl() {
        for p in ["secrets/git.yaml", "secrets/flux-webhook.yaml"] {
            std::fs::write(plumbing.join(p), substitute(&read(p))).unwrap();
        }
        let o = Command::new(kubectl)
            .arg("kustomize")
            .arg(&plumbing)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let built = String::from_utf8_lossy(&o.stdout);
        assert_eq!(built.matches("kind: Secret").count(), 2, "{built}");
    }

    // Flux's token only reads: no push to system/catalyst-config or an Application repository.
    std::fs::write(config.join("README.md"), "flux was here\n").unwrap();
    ok(git(&config, flux, &["add", "README.md"]));
    ok(git(&config, flux, &["commit", "--quiet", "-m", "flux"]));
    let err = refused(git(&config, flux, &["push", "--quiet", "origin", "HEAD"]));
    assert!(err.contains("403") || err.contains("denied"), "{err}");
    let app = dir.path().join("source-0");
    std::fs::write(app.join("README.md"), "flux was here\n").unwrap();
    ok(git(&app, flux, &["add", "README.md"]));
    ok(git(&app, flux, &["commit", "--quiet", "-m", "flux"]));
    refused(git(&app, flux, &["push", "--quiet", "origin", "HEAD"]));
    // No bootstrap repository of a provisioned Sovereign.
    refused(git(
        dir.path(),
        flux,
        &[
            "ls-remote",
            &format!("{}/git/system/sovereign-0123456789abcdef.git", server.base),
        ],
    ));
    // No API.
    let r = reqwest::Client::new()
        .get(server.url("/api/v1/orgs"))
        .bearer_auth(FLUX_GIT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // A wrong token reads nothing.
    refused(git(
        dir.path(),
        ("flux", "flux-git-read-token-0123456789abcdeX"),
        &[
            "ls-remote",
            &format!("{}/git/system/catalyst-config.git", server.base),
        ],
    ));
}

/// `serve` refuses a Flux Git token too short to be a secret, saying which file.
#[test]
fn a_short_flux_git_token_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flux-git");
    std::fs::write(&file, "short").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--flux-git-token-file")
        .arg(&file)
        .env_remove("CATALYST_DATABASE_URL")
        .env_remove("CATALYST_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shorter than 16") && err.contains("flux-git"),
        "{err}"
    );
}
