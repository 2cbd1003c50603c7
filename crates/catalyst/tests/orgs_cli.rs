//! The README's GitOps walk-through against the real binary: an offline token, an
//! Organization, an Environment and a Blueprint with dependencies installed through the CLI,
//! then `git clone` of the Application's repository over smart HTTP.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn catalyst(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_catalyst"));
    c.current_dir(repo())
        .args(args)
        .env_remove("CATALYST_TOKEN");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn token_org_env_install_and_git_clone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let token = ok(catalyst(
        &[
            "token",
            "create",
            "--data-dir",
            data_s,
            "--role",
            "sovereign-admin",
            "--name",
            "root",
        ],
        &[],
    ))
    .trim()
    .to_string();
    assert!(token.starts_with("cat_"));
    let bad = catalyst(
        &[
            "token",
            "create",
            "--data-dir",
            data_s,
            "--role",
            "org-admin",
        ],
        &[],
    );
    assert!(!bad.status.success(), "org-admin needs --org");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .current_dir(repo())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data_s,
        ])
        .args(["--provisioner", "dry-run", "--catalog", "examples/catalog"])
        .env_remove("CATALYST_DATABASE_URL")
        .env_remove("CATALYST_CATALOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _served = Served(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "catalyst did not start listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let server = format!("http://127.0.0.1:{port}");
    let env = [
        ("CATALYST_SERVER", server.as_str()),
        ("CATALYST_TOKEN", token.as_str()),
    ];
    ok(catalyst(
        &["org", "create", "acme", "--contact", "ops@acme.example"],
        &env,
    ));
    ok(catalyst(&["env", "create", "dev", "--org", "acme"], &env));
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, "hostname: git.acme.example\n").unwrap();
    let kc = dir.path().join("keycloak.yaml");
    std::fs::write(&kc, "realm: acme\n").unwrap();
    let kc_arg = format!("bp-keycloak={}", kc.display());
    let out = ok(catalyst(
        &[
            "app",
            "install",
            "code",
            "--org",
            "acme",
            "--env",
            "dev",
            "--blueprint",
            "bp-gitea",
            "--values",
            values.to_str().unwrap(),
            "--dependency-values",
            &kc_arg,
        ],
        &env,
    ));
    for repo in [
        "acme/code ",
        "acme/code-postgres ",
        "acme/code-keycloak ",
        "acme/code-cert-manager ",
    ] {
        assert!(out.contains(repo), "{out}");
    }
    let denied = catalyst(&["org", "list"], &[("CATALYST_SERVER", server.as_str())]);
    assert!(!denied.status.success());

    // Members: adding one prints their token once; it works as that role and stops working
    // when the member is removed.
    let out = ok(catalyst(
        &["org", "add-member", "acme", "vera", "--role", "org-viewer"],
        &env,
    ));
    let vera = out
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .unwrap_or_else(|| panic!("no token printed: {out}"))
        .to_string();
    let listed = ok(catalyst(&["org", "members", "acme", "-o", "json"], &env));
    assert!(
        listed.contains("vera") && listed.contains("org-viewer"),
        "{listed}"
    );
    assert!(!listed.contains(&vera), "the token is shown only once");
    let as_vera = [
        ("CATALYST_SERVER", server.as_str()),
        ("CATALYST_TOKEN", vera.as_str()),
    ];
    // `list` prints a table like every other list: a header, then a row per Application and
    // Environment.
    let apps = ok(catalyst(&["app", "list", "--org", "acme"], &as_vera));
    let mut lines = apps.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "ENVIRONMENT",
            "BLUEPRINT",
            "VERSION",
            "COMMIT",
            "DEPENDS-ON"
        ],
        "{apps}"
    );
    let code_row: Vec<&str> = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|r| r[0] == "code")
        .unwrap_or_else(|| panic!("no row for code: {apps}"));
    assert_eq!(code_row[1], "acme-dev", "{apps}");
    let envs = ok(catalyst(&["env", "list", "--org", "acme"], &as_vera));
    assert!(envs.starts_with("NAME"), "{envs}");
    assert!(envs.contains("acme-dev"), "{envs}");
    let refused = catalyst(&["env", "create", "stg", "--org", "acme"], &as_vera);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("forbidden"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    ok(catalyst(&["org", "remove-member", "acme", "vera"], &env));
    let gone = catalyst(&["app", "list", "--org", "acme"], &as_vera);
    assert!(!gone.status.success());

    // `git` in the test's environment (no prompt), asserting success.
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let clone = dir.path().join("code");
    let code_url = format!("http://root:{token}@127.0.0.1:{port}/git/acme/code.git");
    git(&[
        "clone",
        "--branch",
        "develop",
        &code_url,
        clone.to_str().unwrap(),
    ]);
    let hr = std::fs::read_to_string(clone.join("flux/helmrelease.yaml")).unwrap();
    assert!(
        hr.contains("- name: code-postgres") && hr.contains("- name: code-keycloak"),
        "{hr}"
    );
    assert!(clone.join("flux/ocirepository.yaml").is_file());

    // The Environment's Flux plumbing in system/catalyst-config: a Kustomization per
    // Application with the plan's dependsOn across repositories, a GitRepository per
    // repository; `kubectl kustomize` builds the Environment's folder.
    let config = dir.path().join("catalyst-config");
    let config_url = format!("http://root:{token}@127.0.0.1:{port}/git/system/catalyst-config.git");
    git(&["clone", "--quiet", &config_url, config.to_str().unwrap()]);
    let plumbing = config.join("environments/acme-dev");
    let read = |p: &str| std::fs::read_to_string(plumbing.join(p)).unwrap();
    // `applications/<shard>/<app>.yaml`, `sources/<shard>/<app>.yaml`.
    let [source, application] =
        [0, 1].map(|i| move |app: &str| catalyst_gitops::plumbing::app_paths(app)[i].clone());
    let code = read(&application("code"));
    assert!(
        code.contains("- name: code-keycloak") && code.contains("- name: code-postgres"),
        "{code}"
    );
    assert!(read(&application("code-keycloak")).contains("- name: code-cert-manager"));
    assert!(read(&source("code-postgres")).contains("/git/acme/code-postgres.git"));
    assert!(read("notifications/provider.yaml").contains("/api/v1/hooks/flux"));
    if let Some(kubectl) = catalyst_testkit::kubectl() {
        let out = Command::new(&kubectl)
            .args(["kustomize"])
            .arg(&plumbing)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl kustomize environments/acme-dev: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let built = String::from_utf8_lossy(&out.stdout);
        // Namespace, vcluster (2), the two Secrets, Provider, Alert, and 2 for each of 4
        // Applications.
        assert_eq!(built.split("\n---\n").count(), 15, "{built}");
    }

    // No token, key or password in any committed file of any repository.
    let key = std::fs::read_to_string(data.join("auth/flux-webhook.key")).unwrap_or_default();
    let flux_git = std::fs::read_to_string(data.join("auth/flux-git.token")).unwrap_or_default();
    let secrets: Vec<&str> = [token.as_str(), vera.as_str(), key.trim(), flux_git.trim()]
        .into_iter()
        .filter(|s| s.len() >= 16)
        .collect();
    for dir in [&config, &clone] {
        for e in walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_type().is_file() && !e.path().components().any(|c| c.as_os_str() == ".git")
            })
        {
            let text = String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned();
            for s in &secrets {
                assert!(!text.contains(s), "{} holds a secret", e.path().display());
            }
        }
    }

    // Uninstalling with its dependencies removes exactly what the install added.
    ok(catalyst(
        &[
            "app",
            "uninstall",
            "code",
            "--org",
            "acme",
            "--env",
            "dev",
            "--cascade",
        ],
        &env,
    ));
    git(&[
        "-C",
        config.to_str().unwrap(),
        "pull",
        "--quiet",
        "--ff-only",
    ]);
    let left: Vec<String> = walkdir::WalkDir::new(plumbing.join("applications"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!read("kustomization.yaml").contains("code"));
}
