//! A deployment's bootstrap tree in Catalyst's own Git, through the real binary: a dry-run
//! deployment commits `clusters/<fqdn>/` to `system/sovereign-<id>` before it runs; `git clone`
//! over smart HTTP works with that deployment's read token and a sovereign-admin's, and is
//! refused with another deployment's token or an Organization's; `kubectl kustomize` builds it
//! in the bootstrap order; the dry run's tfvars and cloud-init point Flux at it without the
//! token; `catalyst sovereign render --deployment` writes the same tree; no token is in any
//! committed file, any file under the data directory or the log; deleting the deployment
//! removes the repository.
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{deployment_request, Catalyst};

/// `git ARGS` without a prompt; (success, stderr).
fn git(args: &[&str]) -> (bool, String) {
    let out = Command::new("git")
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file under `dir` (recursively), with its bytes.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn create(c: &Catalyst, label: &str, hetzner: &str, components: &[&str]) -> String {
    let mut body = deployment_request(label, Some(hetzner));
    body["components"] = serde_json::json!(components);
    let (status, v) = c.post_json("/api/v1/deployments", &body).await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let done = c
        .poll_json(
            &format!("/api/v1/deployments/{id}"),
            Duration::from_secs(60),
            |v| v["status"] == "ready" || v["status"] == "failed",
        )
        .await;
    assert_eq!(done["status"], "ready", "{done}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_commits_its_bootstrap_tree_which_only_its_token_and_admins_read() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let c = Catalyst::start_with(
        &data,
        &[
            "--provisioner",
            "dry-run",
            "--catalog",
            "examples/catalog",
            "--public-url",
            "https://catalyst.acme.example",
        ],
        |cmd| {
            cmd.current_dir(support::repo());
        },
    );
    let hetzner = "h".repeat(64);

    // A component outside the bootstrap catalog is refused before anything runs.
    let mut body = deployment_request("nope", Some(&hetzner));
    body["components"] = serde_json::json!(["bp-nope"]);
    let (status, v) = c.post_json("/api/v1/deployments", &body).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["field"], "components", "{v}");

    let a = create(&c, "alpha", &hetzner, &["grafana"]).await;
    let b = create(&c, "beta", &hetzner, &[]).await;

    let key = std::fs::read_to_string(data.join("auth/sovereign-git.key")).unwrap();
    let token_a = catalyst_api::sovereign_git::deployment_token(key.trim(), &a);
    let token_b = catalyst_api::sovereign_git::deployment_token(key.trim(), &b);
    let url = |id: &str, token: &str| {
        format!(
            "http://catalyst:{token}@127.0.0.1:{}/git/system/sovereign-{id}.git",
            c.port
        )
    };

    // A's token and a sovereign-admin's clone A's repository.
    let with_token = tmp.path().join("a-token");
    let (ok, err) = git(&[
        "clone",
        &url(&a, token_a.expose()),
        with_token.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let with_admin = tmp.path().join("a-admin");
    let (ok, err) = git(&["clone", &url(&a, &c.admin), with_admin.to_str().unwrap()]);
    assert!(ok, "{err}");
    // B's token, an Organization's token and no token are refused.
    let (ok, _) = git(&[
        "clone",
        &url(&a, token_b.expose()),
        tmp.path().join("x1").to_str().unwrap(),
    ]);
    assert!(!ok, "B's token opened A's repository");
    let (status, v) = c
        .post_json(
            "/api/v1/orgs",
            &serde_json::json!({"name": "acme", "displayName": "Acme"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let org_admin = support::create_token(&data, "org-admin", Some("acme"), "acme-admin");
    let (ok, _) = git(&[
        "clone",
        &url(&a, &org_admin),
        tmp.path().join("x2").to_str().unwrap(),
    ]);
    assert!(
        !ok,
        "an Organization's token opened a Sovereign's repository"
    );
    let anonymous = format!("http://127.0.0.1:{}/git/system/sovereign-{a}.git", c.port);
    let (ok, _) = git(&["clone", &anonymous, tmp.path().join("x3").to_str().unwrap()]);
    assert!(!ok);
    // A's token opens nothing else: not B's repository, not system/catalyst-config, not the API.
    let (ok, _) = git(&[
        "clone",
        &url(&b, token_a.expose()),
        tmp.path().join("x4").to_str().unwrap(),
    ]);
    assert!(!ok);
    let config = format!(
        "http://catalyst:{}@127.0.0.1:{}/git/system/catalyst-config.git",
        token_a.expose(),
        c.port
    );
    let (ok, _) = git(&["clone", &config, tmp.path().join("x5").to_str().unwrap()]);
    assert!(!ok);
    let api = c
        .client()
        .get(c.url("/api/v1/deployments"))
        .bearer_auth(token_a.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);

    // The tree: clusters/alpha.omani.works/, the kit in the bootstrap order with the chosen
    // component and what it needs.
    let tree = with_token.join("clusters/alpha.omani.works");
    let root = std::fs::read_to_string(tree.join("kustomization.yaml")).unwrap();
    let listed: Vec<String> = root
        .lines()
        .filter_map(|l| l.strip_prefix("- "))
        .map(|l| {
            l.split_once('-')
                .unwrap()
                .1
                .trim_end_matches(".yaml")
                .to_owned()
        })
        .collect();
    let kit: Vec<&str> = listed
        .iter()
        .map(String::as_str)
        .filter(|n| !matches!(*n, "grafana" | "loki"))
        .collect();
    assert_eq!(kit, catalyst_testkit::BOOTSTRAP_ORDER);
    assert!(
        listed.iter().any(|n| n == "grafana") && listed.iter().any(|n| n == "loki"),
        "{listed:?}"
    );
    let b_tree = c
        .get_json(&format!("/api/v1/deployments/{b}/bootstrap"))
        .await
        .1;
    assert!(
        !b_tree["files"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("grafana")),
        "B chose no component"
    );

    // The dry run's tfvars and cloud-init point Flux at the repository, without the token.
    let (_, events) = c.get_json(&format!("/api/v1/deployments/{a}/events")).await;
    let text = events["events"].to_string();
    assert!(
        text.contains(&format!(
            "\\\"gitops_repo_url\\\": \\\"https://catalyst.acme.example/git/system/sovereign-{a}.git\\\""
        )),
        "{text}"
    );
    assert!(text.contains("./clusters/alpha.omani.works"), "{text}");
    assert!(text.contains("name: catalyst-git"), "{text}");

    // `catalyst sovereign render --deployment` writes the committed tree.
    let out = tmp.path().join("rendered");
    let o = Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .args([
            "sovereign",
            "render",
            "--deployment",
            &a,
            "--server",
            &c.base,
            "-o",
        ])
        .arg(&out)
        .env("CATALYST_TOKEN", &c.admin)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut cloned: Vec<_> = files_under(&tree)
        .into_iter()
        .map(|(p, b)| (p.strip_prefix(&tree).unwrap().to_path_buf(), b))
        .collect();
    let mut written: Vec<_> = files_under(&out)
        .into_iter()
        .map(|(p, b)| (p.strip_prefix(&out).unwrap().to_path_buf(), b))
        .collect();
    cloned.sort();
    written.sort();
    assert_eq!(cloned, written);

    // No token in a committed file, a file under the data directory, or the log.
    let secrets = [
        token_a.expose(),
        token_b.expose(),
        hetzner.as_str(),
        key.trim(),
    ];
    for (path, bytes) in files_under(&with_token)
        .into_iter()
        .chain(files_under(&data))
    {
        // The key itself, and the test clone's own remote URL (which carries the token).
        if path.ends_with("sovereign-git.key") || path.starts_with(with_token.join(".git")) {
            continue;
        }
        for s in &secrets {
            assert!(!contains(&bytes, s), "{} holds a secret", path.display());
        }
    }
    let log = c.log();
    for s in &secrets {
        assert!(!log.contains(s), "the log holds a secret");
    }

    if let Some(kubectl) = catalyst_testkit::kubectl() {
        let o = Command::new(kubectl)
            .arg("kustomize")
            .arg(&tree)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout)
                .matches("kind: Kustomization")
                .count(),
            listed.len()
        );
    }

    // Deleting the deployment removes its repository: the token opens nothing any more.
    let del = c
        .client()
        .delete(c.url(&format!("/api/v1/deployments/{b}")))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    assert!(!data.join(format!("git/system/sovereign-{b}.git")).exists());
    let (ok, _) = git(&[
        "clone",
        &url(&b, token_b.expose()),
        tmp.path().join("x6").to_str().unwrap(),
    ]);
    assert!(!ok);
}
