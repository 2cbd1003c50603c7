//! Organizations, Environments, Applications and Git over HTTP: the RBAC matrix, real `git
//! clone`/`fsck` over smart HTTP, exact commits and trailers per call, secrets never at rest.
#[path = "support/conform.rs"]
mod conform;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use catalyst_api::orgs::auth::{Authenticator, Role};
use catalyst_api::orgs::{router, OrgApi};
use catalyst_blueprint::render::RenderOptions;
use catalyst_blueprint::Source;
use catalyst_gitops::Sovereign;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Env {
    dir: tempfile::TempDir,
    app: axum::Router,
    api: Arc<OrgApi>,
    tokens: Vec<(&'static str, String)>,
}

/// The Flux webhook key of the test Sovereign.
const FLUX_KEY: &str = "flux-provider-token-of-the-test";

impl Env {
    fn token(&self, who: &str) -> &str {
        &self.tokens.iter().find(|(n, _)| *n == who).unwrap().1
    }
}

fn catalog() -> catalyst_blueprint::Catalog {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalyst-gitops/testdata/catalog");
    catalyst_blueprint::load::load_catalog(&[(Source::Public, dir)])
        .unwrap()
        .0
}

async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-request-id", "req-1");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

async fn setup() -> Env {
    setup_with(catalog()).await
}

async fn setup_with(catalog: catalyst_blueprint::Catalog) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let sovereign = Sovereign::open_with_spine(
        dir.path().join("git"),
        Arc::new(catalog),
        RenderOptions::default(),
        Some(Arc::new(
            catalyst_spine::FileLog::open(dir.path().join("events"))
                .unwrap()
                .0,
        )),
    )
    .unwrap();
    let auth = Arc::new(Authenticator::open(dir.path(), None).unwrap());
    let store = auth.tokens().clone();
    let mut tokens = vec![(
        "admin",
        store.create(Role::SovereignAdmin, None, "root").unwrap(),
    )];
    for (who, role) in [
        ("org-admin", Role::OrgAdmin),
        ("org-developer", Role::OrgDeveloper),
        ("org-viewer", Role::OrgViewer),
        ("security-officer", Role::SecurityOfficer),
        ("billing-admin", Role::BillingAdmin),
    ] {
        tokens.push((who, store.create(role, Some("acme"), who).unwrap()));
    }
    tokens.push((
        "other-org-admin",
        store
            .create(Role::OrgAdmin, Some("globex"), "mallory")
            .unwrap(),
    ));
    let api = Arc::new(
        OrgApi::new(Arc::new(sovereign), auth)
            .unwrap()
            .with_flux_key(FLUX_KEY),
    );
    let app = conform::conform(router(api.clone()));
    let env = Env {
        dir,
        app,
        api,
        tokens,
    };
    let admin = env.token("admin").to_string();
    for (uri, body) in [
        (
            "/api/v1/orgs",
            json!({"name": "acme", "contact": "ops@acme.example"}),
        ),
        ("/api/v1/orgs", json!({"name": "globex"})),
        ("/api/v1/orgs/acme/environments", json!({"envType": "dev"})),
        ("/api/v1/orgs/acme/environments", json!({"envType": "stg"})),
        (
            "/api/v1/orgs/acme/applications",
            json!({"name": "web", "environment": "dev", "blueprint": "bp-shop", "values": {"replicas": 2}}),
        ),
    ] {
        let (s, v, _) = send(&env.app, "POST", uri, Some(&admin), Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{uri}: {v}");
    }
    env
}

const ROLES: [&str; 7] = [
    "admin",
    "org-admin",
    "org-developer",
    "org-viewer",
    "security-officer",
    "billing-admin",
    "other-org-admin",
];

#[tokio::test]
async fn rbac_matrix() {
    let env = setup().await;
    // Mutations run as dry runs, so every cell sees the same state.
    use StatusCode as S;
    const OK: S = S::OK;
    const NO: S = S::FORBIDDEN;
    const NF: S = S::NOT_FOUND;
    let read_org = [OK, OK, OK, OK, OK, OK, NF];
    let read_apps = [OK, OK, OK, OK, OK, NO, NF];
    let write_apps = [OK, OK, OK, NO, NO, NO, NF];
    let manage = [OK, OK, NO, NO, NO, NO, NF];
    let approve = [OK, OK, NO, NO, OK, NO, NF];
    let cases: Vec<(&str, &str, Option<Value>, [S; 7])> = vec![
        ("GET", "/api/v1/orgs", None, [OK; 7]),
        (
            "POST",
            "/api/v1/orgs?dryRun=true",
            Some(json!({"name": "initech"})),
            [OK, NO, NO, NO, NO, NO, NO],
        ),
        ("GET", "/api/v1/orgs/acme", None, read_org),
        (
            "DELETE",
            "/api/v1/orgs/acme?dryRun=true",
            None,
            [S::CONFLICT, NO, NO, NO, NO, NO, NF],
        ),
        ("GET", "/api/v1/orgs/acme/environments", None, read_org),
        (
            "POST",
            "/api/v1/orgs/acme/environments?dryRun=true",
            Some(json!({"envType": "prod"})),
            manage,
        ),
        ("GET", "/api/v1/orgs/acme/environments/dev", None, read_org),
        (
            "DELETE",
            "/api/v1/orgs/acme/environments/stg?dryRun=true",
            None,
            manage,
        ),
        ("GET", "/api/v1/orgs/acme/members", None, read_org),
        (
            "POST",
            "/api/v1/orgs/acme/members?dryRun=true",
            Some(json!({"name": "bob", "role": "org-viewer"})),
            manage,
        ),
        ("GET", "/api/v1/orgs/acme/applications", None, read_apps),
        (
            "POST",
            "/api/v1/orgs/acme/applications?dryRun=true",
            Some(json!({"name": "db2", "environment": "dev", "blueprint": "bp-db"})),
            write_apps,
        ),
        ("GET", "/api/v1/orgs/acme/applications/web", None, read_apps),
        (
            "PUT",
            "/api/v1/orgs/acme/applications/web/values?dryRun=true",
            Some(json!({"environment": "dev", "values": {"replicas": 5}})),
            write_apps,
        ),
        (
            "POST",
            "/api/v1/orgs/acme/applications/web/upgrade?dryRun=true",
            Some(json!({"environment": "dev", "version": "1.0.0"})),
            write_apps,
        ),
        (
            "POST",
            "/api/v1/orgs/acme/applications/web/approvals?dryRun=true",
            Some(json!({"from": "dev", "to": "stg"})),
            approve,
        ),
        (
            "POST",
            "/api/v1/orgs/acme/applications/web-db/promote?dryRun=true",
            Some(json!({"from": "dev", "to": "stg"})),
            write_apps,
        ),
        (
            "DELETE",
            "/api/v1/orgs/acme/applications/web?environment=dev&dryRun=true",
            None,
            write_apps,
        ),
        (
            "GET",
            "/git/acme/web.git/info/refs?service=git-upload-pack",
            None,
            read_apps,
        ),
        (
            "GET",
            "/git/system/catalyst-config.git/info/refs?service=git-upload-pack",
            None,
            [OK, NF, NF, NF, NF, NF, NF],
        ),
    ];
    let mut failures = Vec::new();
    for (method, uri, body, expected) in &cases {
        let (s, _, _) = send(&env.app, method, uri, None, body.clone()).await;
        if s != S::UNAUTHORIZED {
            failures.push(format!("{method} {uri} without a token: {s}"));
        }
        let (s, _, _) = send(&env.app, method, uri, Some("cat_0000"), body.clone()).await;
        if s != S::UNAUTHORIZED {
            failures.push(format!("{method} {uri} with a bad token: {s}"));
        }
        for (i, role) in ROLES.iter().enumerate() {
            let (s, v, _) = send(&env.app, method, uri, Some(env.token(role)), body.clone()).await;
            if s != expected[i] {
                failures.push(format!(
                    "{method} {uri} as {role}: {s} (want {}) {v}",
                    expected[i]
                ));
            }
            if !s.is_success() && !uri.starts_with("/git") {
                assert!(
                    v["error"].is_string() && v["detail"].is_string(),
                    "{method} {uri}: {v}"
                );
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Another Organization's objects do not exist for the caller; a listing shows only its own.
    let (_, v, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs",
        Some(env.token("org-viewer")),
        None,
    )
    .await;
    assert_eq!(v["organizations"].as_array().unwrap().len(), 1);
    let (_, v, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs",
        Some(env.token("admin")),
        None,
    )
    .await;
    assert_eq!(v["organizations"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn errors_names_if_match_dry_run_and_members() {
    let env = setup().await;
    let admin = env.token("admin");
    for bad in ["system", "ab", "Acme", "kube-x", "hetzner", "dev"] {
        let (s, v, _) = send(
            &env.app,
            "POST",
            "/api/v1/orgs",
            Some(admin),
            Some(json!({"name": bad})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        assert_eq!(v["error"], "invalid-name");
    }
    let (s, v, _) = send(
        &env.app,
        "POST",
        "/api/v1/orgs",
        Some(admin),
        Some(json!({"name": "acme"})),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("already-exists"))
    );
    let (s, v, _) = send(
        &env.app,
        "POST",
        "/api/v1/orgs",
        Some(admin),
        Some(json!("x")),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v, _) = send(&env.app, "PATCH", "/api/v1/orgs/acme", Some(admin), None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method-not-allowed"))
    );
    // Values are validated against the configSchema before anything is written.
    let (s, v, _) = send(&env.app, "POST", "/api/v1/orgs/acme/applications", Some(admin), Some(json!({"name": "bad", "environment": "dev", "blueprint": "bp-shop", "values": {"replicas": 0}}))).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid-values")),
        "{v}"
    );
    // Each schema error names its field (a JSON pointer) and the Blueprint whose values hold it.
    assert_eq!(
        (
            v["fields"][0]["field"].as_str(),
            v["fields"][0]["blueprint"].as_str()
        ),
        (Some("/replicas"), Some("bp-shop")),
        "{v}"
    );
    assert!(!v["fields"][0]["message"].as_str().unwrap().is_empty());
    assert!(!env.dir.path().join("git/acme/bad.git").exists());
    let (s, v, _) = send(
        &env.app,
        "POST",
        "/api/v1/orgs/acme/applications",
        Some(admin),
        Some(json!({"name": "xyz1", "environment": "dev", "blueprint": "bp-nope"})),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unresolvable")),
        "{v}"
    );

    // If-Match: the ETag of a read, stale after a write.
    let (_, app, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/applications/web",
        Some(admin),
        None,
    )
    .await;
    let head = app["environments"][0]["commit"]
        .as_str()
        .unwrap()
        .to_string();
    let put = |replicas: u32, tag: &str| {
        Request::builder()
            .method("PUT")
            .uri("/api/v1/orgs/acme/applications/web/values")
            .header("authorization", format!("Bearer {admin}"))
            .header("if-match", format!("\"{tag}\""))
            .header("x-request-id", format!("put-{replicas}"))
            .body(Body::from(
                json!({"environment": "dev", "values": {"replicas": replicas}}).to_string(),
            ))
            .unwrap()
    };
    let r = env.app.clone().oneshot(put(3, &head)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let etag = r.headers()["etag"]
        .to_str()
        .unwrap()
        .trim_matches('"')
        .to_string();
    let r = env.app.clone().oneshot(put(4, &head)).await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v: Value =
        serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["error"], "stale");

    // The commit carries the caller as author and the trailers.
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(env.dir.path().join("git/acme/web.git"))
        .args(["show", "-s", "--format=%an%n%B", &etag])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("root\n"), "{text}");
    assert!(
        text.contains("Catalyst-Request-Id: put-3\nCatalyst-Actor: root"),
        "{text}"
    );

    // Dry run: the diff, nothing written.
    let (s, v, _) = send(
        &env.app,
        "PUT",
        "/api/v1/orgs/acme/applications/web/values?dryRun=true",
        Some(admin),
        Some(json!({"environment": "dev", "values": {"replicas": 9}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["dryRun"], true);
    assert!(
        v["commits"][0]["diff"]
            .as_str()
            .unwrap()
            .contains("+replicas: 9"),
        "{v}"
    );

    // Promotion gated by the destination's policy names the unmet rule.
    let (s, _, _) = send(&env.app, "POST", "/api/v1/orgs/acme/environments", Some(admin), Some(json!({"envType": "prod", "policy": {"rules": [{"kind": "pr-required", "minApprovals": 2}]}}))).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v, _) = send(
        &env.app,
        "POST",
        "/api/v1/orgs/acme/applications/web-db/promote",
        Some(admin),
        Some(json!({"from": "dev", "to": "prod"})),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str(), v["field"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("policy-unmet"),
            Some("pr-required")
        ),
        "{v}"
    );
    // Where that promotion stands: the rule, the approvals given, what is unmet.
    let path = "/api/v1/orgs/acme/applications/web-db/promotion?from=dev&to=prod";
    let (s, v, _) = send(&env.app, "GET", path, Some(env.token("org-viewer")), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["allowed"].as_bool(),
            v["unmet"]["rule"].as_str(),
            v["to"].as_str()
        ),
        (Some(false), Some("pr-required"), Some("acme-prod")),
        "{v}"
    );
    assert_eq!(v["rules"][0]["minApprovals"], 2);
    assert_eq!(v["approvals"], json!([]));
    for by in ["org-admin", "security-officer"] {
        let (s, v, _) = send(
            &env.app,
            "POST",
            "/api/v1/orgs/acme/applications/web-db/approvals",
            Some(env.token(by)),
            Some(json!({"from": "dev", "to": "prod"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v, _) = send(&env.app, "GET", path, Some(env.token("org-viewer")), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["allowed"], true, "{v}");
    assert!(v.get("unmet").is_none(), "{v}");
    assert_eq!(v["approvals"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["source"].as_str().unwrap().len(), 40, "{v}");
    // Unknown Environments are refused; another Organization does not exist.
    let (s, _, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/applications/web-db/promotion?from=dev&to=nope",
        Some(env.token("org-viewer")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Members: a token is issued once; the new member can read, and is gone after removal.
    let (s, v, _) = send(
        &env.app,
        "POST",
        "/api/v1/orgs/acme/members",
        Some(env.token("org-admin")),
        Some(json!({"name": "bob", "role": "org-viewer"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let bob = v["token"].as_str().unwrap().to_string();
    let (s, _, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/applications",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = send(
        &env.app,
        "POST",
        "/api/v1/orgs/acme/members",
        Some(env.token("org-admin")),
        Some(json!({"name": "eve", "role": "sovereign-admin"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _, _) = send(
        &env.app,
        "DELETE",
        "/api/v1/orgs/acme/members/bob",
        Some(env.token("org-admin")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/applications",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // No token ever lands in a file under the data dir.
    let mut all: Vec<&str> = env.tokens.iter().map(|(_, t)| t.as_str()).collect();
    all.push(&bob);
    scan(env.dir.path(), &all);
}

fn scan(dir: &Path, secrets: &[&str]) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            scan(&p, secrets);
        } else {
            let bytes = std::fs::read(&p).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for s in secrets {
                assert!(
                    !text.contains(s) && !text.contains(&s[4..]),
                    "a token is in {}",
                    p.display()
                );
            }
        }
    }
}

fn git(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", cwd)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clone_over_smart_http_with_the_real_git() {
    let env = setup().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = env.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let work = tempfile::tempdir().unwrap();
    let dev = env.token("org-developer").to_string();
    let other = env.token("other-org-admin").to_string();
    let admin = env.token("admin").to_string();
    let wd = work.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let url = |tok: &str, path: &str| format!("http://x:{tok}@{addr}/git/{path}");
        let out = git(
            &[
                "clone",
                "--branch",
                "develop",
                &url(&dev, "acme/web.git"),
                "web",
            ],
            &wd,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hr = std::fs::read_to_string(wd.join("web/flux/helmrelease.yaml")).unwrap();
        assert!(
            hr.contains("kind: HelmRelease") && hr.contains("- name: web-api"),
            "{hr}"
        );
        let out = git(&["fsck", "--strict"], &wd.join("web"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = git(
            &[
                "log",
                "--format=%an|%(trailers:key=Catalyst-Request-Id,valueonly)",
            ],
            &wd.join("web"),
        );
        assert_eq!(String::from_utf8_lossy(&log.stdout).trim(), "root|req-1");
        // Pushing is refused.
        std::fs::write(wd.join("web/x.txt"), "x").unwrap();
        git(
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-qam",
                "x",
            ],
            &wd.join("web"),
        );
        git(&["add", "x.txt"], &wd.join("web"));
        git(
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-qm",
                "x",
            ],
            &wd.join("web"),
        );
        let out = git(&["push", "origin", "develop"], &wd.join("web"));
        assert!(!out.status.success());
        // Without a token, or with another Organization's, there is nothing to clone.
        let out = git(
            &["clone", &format!("http://{addr}/git/acme/web.git"), "anon"],
            &wd,
        );
        assert!(!out.status.success());
        let out = git(&["clone", &url(&other, "acme/web.git"), "other"], &wd);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not found"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The Sovereign's config repository, for sovereign-admin.
        let out = git(
            &[
                "clone",
                &url(&admin, "system/catalyst-config.git"),
                "config",
            ],
            &wd,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(wd.join("config/organizations/acme.yaml").is_file());
        assert!(wd.join("config/policies/acme-dev-policy.yaml").is_file());
        let out = git(&["fsck", "--strict"], &wd.join("config"));
        assert!(out.status.success());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn domain_events_stream_per_organization() {
    let env = setup().await;
    let req = Request::builder()
        .uri("/api/v1/orgs/acme/events")
        .header(
            "authorization",
            format!("Bearer {}", env.token("org-viewer")),
        )
        .body(Body::empty())
        .unwrap();
    let resp = env.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (s, _, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/events",
        Some(env.token("other-org-admin")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let mut body = resp.into_body();
    // A change in another Organization is not seen; one in acme is.
    let admin = env.token("admin");
    let (s, _, _) = send(
        &env.app,
        "POST",
        "/api/v1/orgs/globex/environments",
        Some(admin),
        Some(json!({"envType": "dev"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, _) = send(
        &env.app,
        "PUT",
        "/api/v1/orgs/acme/applications/web/values",
        Some(admin),
        Some(json!({"environment": "dev", "values": {"replicas": 7}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(
        text.contains("event: io.openova.catalyst.application.values-changed"),
        "{text}"
    );
    let data: Value =
        serde_json::from_str(text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(data["subject"], "acme/web");
    assert_eq!(data["source"], "/catalyst/orgs/acme");
    assert_eq!(data["specversion"], "1.0");
    assert!(data["id"].is_string() && data["time"].is_string());
    assert_eq!(data["data"]["requestId"], "req-1");
    assert_eq!(data["catalystenv"], "acme-dev");
    let seq: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(data["catalystseq"], seq);

    // Resuming after the event before it gives it again, once, and nothing of globex.
    let resumed = |last: u64, query: &'static str| {
        let req = Request::builder()
            .uri(format!("/api/v1/orgs/acme/events{query}"))
            .header(
                "authorization",
                format!("Bearer {}", env.token("org-viewer")),
            )
            .header("last-event-id", last.to_string())
            .body(Body::empty())
            .unwrap();
        let app = env.app.clone();
        async move {
            let mut body = app.oneshot(req).await.unwrap().into_body();
            let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
        }
    };
    let again = resumed(seq - 1, "").await;
    assert_eq!(
        again.matches("\nid: ").count() + usize::from(again.starts_with("id: ")),
        1,
        "{again}"
    );
    assert!(again.starts_with(&format!("id: {seq}\n")), "{again}");
    // From the start, filtered by type: acme's history of that kind only.
    let history = resumed(0, "?type=environment").await;
    assert!(
        history.contains("io.openova.catalyst.environment.created"),
        "{history}"
    );
    assert!(!history.contains("globex"), "{history}");
    assert!(!history.contains("application."), "{history}");
}

#[tokio::test]
async fn application_cards_come_from_the_projection() {
    let env = setup().await;
    let viewer = env.token("org-viewer").to_string();
    let (s, v, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/applications?environment=dev",
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let cards = v["applications"].as_array().unwrap();
    let web = cards.iter().find(|c| c["name"] == "web").expect("web");
    assert_eq!(web["status"], "committed");
    assert_eq!(web["environment"], "acme-dev");
    assert_eq!(web["actor"], "root");
    assert!(web["commit"].as_str().unwrap().len() >= 40, "{web}");
    // What web depends on names it in its "used by".
    for dep in web["dependsOn"].as_array().unwrap() {
        let d = cards
            .iter()
            .find(|c| &c["name"] == dep)
            .expect("dependency card");
        assert!(
            d["usedBy"].as_array().unwrap().contains(&json!("web")),
            "{d}"
        );
    }
    // The same for every reader with the right; another Organization's reader sees nothing.
    let (s, _, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/applications",
        Some(env.token("other-org-admin")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/applications?environment=prod",
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(
        (s, v["applications"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );

    // The Environment view: cards grouped by status, backing services, what uses what.
    let (s, view, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/environments/dev",
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["environment"]["metadata"]["name"], "acme-dev");
    let committed: Vec<&str> = view["applications"]["committed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(committed.contains(&"web"), "{view}");
    assert_eq!(view["applications"]["ready"], json!([]));
    for dep in web["dependsOn"].as_array().unwrap() {
        assert!(
            view["backingServices"].as_array().unwrap().contains(dep),
            "{view}"
        );
        assert!(
            view["uses"]
                .as_array()
                .unwrap()
                .contains(&json!({"from": "web", "to": dep})),
            "{view}"
        );
    }
    let (s, _, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/environments/prod",
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Where a Blueprint is used: every Organization for sovereign-admin, one's own otherwise.
    let bp = web["blueprint"].as_str().unwrap().to_string();
    let (s, v, _) = send(
        &env.app,
        "GET",
        &format!("/api/v1/blueprints/{bp}/usage"),
        Some(env.token("admin")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["usage"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["application"] == "web" && u["organization"] == "acme"),
        "{v}"
    );
    let (_, v, _) = send(
        &env.app,
        "GET",
        &format!("/api/v1/blueprints/{bp}/usage"),
        Some(env.token("other-org-admin")),
        None,
    )
    .await;
    assert_eq!(
        v["usage"],
        json!([]),
        "another Organization's usage is not shown"
    );
    let (_, v, _) = send(
        &env.app,
        "GET",
        &format!("/api/v1/blueprints/{bp}/usage"),
        Some(&viewer),
        None,
    )
    .await;
    assert!(!v["usage"].as_array().unwrap().is_empty());

    // The audit log: sovereign-admin sees everything; an Organization's reader its own part.
    let (s, v, _) = send(
        &env.app,
        "GET",
        "/api/v1/audit?type=organization",
        Some(env.token("admin")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let orgs: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["organization"].as_str())
        .collect();
    assert!(orgs.contains(&"acme") && orgs.contains(&"globex"), "{v}");
    let (s, v, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/audit?limit=1",
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
    let next = v["nextCursor"].as_u64().expect("more pages");
    let (_, page2, _) = send(
        &env.app,
        "GET",
        &format!("/api/v1/orgs/acme/audit?after={next}&limit=1000"),
        Some(&viewer),
        None,
    )
    .await;
    assert!(page2["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["organization"] == "acme" && e["seq"].as_u64().unwrap() > next));
    assert_eq!(page2["nextCursor"], Value::Null);
    for who in [
        "org-admin",
        "org-developer",
        "org-viewer",
        "billing-admin",
        "other-org-admin",
    ] {
        let (s, _, _) = send(&env.app, "GET", "/api/v1/audit", Some(env.token(who)), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{who}");
    }
    let (s, v, _) = send(
        &env.app,
        "GET",
        "/api/v1/audit",
        Some(env.token("security-officer")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["organization"] == "acme"),
        "{v}"
    );
    let (s, _, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/audit?since=yesterday",
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// The gitops test catalog with `catalog-next` (bp-shop 2.0.0 adds bp-cache, 3.0.0 needs bp-api
/// ^2), and `shop` installed at bp-shop ^1 (setup's `web` runs the highest, 3.0.0); the
/// org-developer's token.
async fn setup_next() -> (Env, String) {
    let gitops = Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalyst-gitops/testdata");
    let (catalog, _) = catalyst_blueprint::load::load_catalog(&[
        (Source::Public, gitops.join("catalog")),
        (Source::Public, gitops.join("catalog-next")),
    ])
    .unwrap();
    let env = setup_with(catalog).await;
    let dev = env.token("org-developer").to_string();
    let (s, v) = post(
        &env,
        &dev,
        "/api/v1/orgs/acme/applications",
        json!({"name": "shop", "environment": "dev", "blueprint": "bp-shop", "version": "^1"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (env, dev)
}

/// POSTs `body` to `uri` as `dev`: the status and the answer.
async fn post(env: &Env, dev: &str, uri: &str, body: Value) -> (StatusCode, Value) {
    let (s, v, _) = send(&env.app, "POST", uri, Some(dev), Some(body)).await;
    (s, v)
}

/// POSTs `body` to `uri` as `dev`, which must answer 422 `invalid-field`: the field it names.
async fn invalid_field(env: &Env, dev: &str, uri: &str, body: Value) -> String {
    let (s, v) = post(env, dev, uri, body).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid-field")),
        "{v}"
    );
    v["field"].as_str().unwrap_or_default().to_string()
}

/// The repositories of the commits of a write answer.
fn repos(v: &Value) -> Vec<&str> {
    v["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["repo"].as_str().unwrap())
        .collect()
}

/// An upgrade whose new version adds a dependency: `useExisting` and `dependencyValues` reach
/// the write path, a dry run shows every repository's diff, a range the existing dependency
/// Application does not satisfy is 409 `dependency-mismatch`.
#[tokio::test]
async fn upgrade_with_new_dependencies_over_http() {
    let (env, dev) = setup_next().await;
    let up = "/api/v1/orgs/acme/applications/shop/upgrade";
    let (s, v) = post(
        &env,
        &dev,
        up,
        json!({"environment": "dev", "version": "3.0.0"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"], "dependency-mismatch");
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("bp-shop 3.0.0 needs bp-api ^2"), "{detail}");
    assert!(detail.contains("shop-api runs bp-api 1.0.0"), "{detail}");
    let (s, v) = post(&env, &dev, up, json!({"environment": "dev", "version": "2.0.0", "dependencyValues": {"bp-cache": {"memory": 8}}})).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid-values")),
        "{v}"
    );
    let body = json!({"environment": "dev", "version": "2.0.0", "useExisting": "nope"});
    assert_eq!(invalid_field(&env, &dev, up, body).await, "useExisting");
    let body = json!({"environment": "dev", "version": "2.0.0", "dependencyValues": {"bp-cache": {"memory": 32}}});
    let (s, v) = post(&env, &dev, &format!("{up}?dryRun=true"), body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        repos(&v),
        ["acme/shop-cache", "acme/shop", "system/catalyst-config"],
        "{v}"
    );
    assert!(
        v["commits"][0]["diff"]
            .as_str()
            .unwrap()
            .contains("+memory: 32"),
        "{v}"
    );
    let (s, v, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/applications/shop-cache",
        Some(&dev),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the dry run wrote nothing: {v}");
    let (s, v) = post(&env, &dev, up, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["commits"].as_array().unwrap().len(),
        3,
        "two repositories and the plumbing: {v}"
    );
    let (s, v, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/applications/shop",
        Some(&dev),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["environments"][0]["version"], "2.0.0");
    assert_eq!(
        v["environments"][0]["dependsOn"],
        json!(["shop-api", "shop-cache"])
    );
}

/// Upgrading a dependency out of a range its dependent declares is 409 `dependency-mismatch`;
/// `withDependencies` upgrades the dependency and the Application in one call.
#[tokio::test]
async fn upgrade_protects_dependents_and_takes_dependencies_along_over_http() {
    let (env, dev) = setup_next().await;
    let (s, v) = post(
        &env,
        &dev,
        "/api/v1/orgs/acme/applications/shop-api/upgrade",
        json!({"environment": "dev", "version": "2.0.0"}),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("dependency-mismatch")),
        "{v}"
    );
    let broken = "shop (bp-shop 1.1.0) needs bp-api ^1; bp-api 2.0.0 would break it";
    assert!(v["detail"].as_str().unwrap().contains(broken), "{v}");
    let up = "/api/v1/orgs/acme/applications/shop/upgrade";
    let body = json!({"environment": "dev", "version": "3.0.0", "withDependencies": "yes"});
    assert_eq!(
        invalid_field(&env, &dev, up, body).await,
        "withDependencies"
    );
    let (s, v) = post(
        &env,
        &dev,
        up,
        json!({"environment": "dev", "version": "3.0.0", "withDependencies": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(repos(&v), ["acme/shop-api", "acme/shop"], "{v}");
    for (name, version) in [("shop", "3.0.0"), ("shop-api", "2.0.0")] {
        let (s, v, _) = send(
            &env.app,
            "GET",
            &format!("/api/v1/orgs/acme/applications/{name}"),
            Some(&dev),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["environments"][0]["version"], version, "{name}: {v}");
    }
}

// ---------------------------------------------------------------- status from Flux

/// A body as Flux's notification-controller sends it (fields as its v1beta3 spec documents).
fn flux_body(
    kind: &str,
    name: &str,
    severity: &str,
    reason: &str,
    message: &str,
    revision: &str,
) -> String {
    let group = if kind == "HelmRelease" {
        "helm.toolkit.fluxcd.io"
    } else {
        "kustomize.toolkit.fluxcd.io"
    };
    let version = if kind == "HelmRelease" { "v2" } else { "v1" };
    json!({
        "involvedObject": {"apiVersion": format!("{group}/{version}"), "kind": kind, "name": name,
                           "namespace": "acme-dev", "uid": "5bb5a2a4-8e58-4b2e-9f1c-0d7d3c1f2a11"},
        "severity": severity,
        "timestamp": "2026-12-06T10:15:00Z",
        "message": message,
        "reason": reason,
        "metadata": {format!("{group}/revision"): revision, format!("{group}/token"): "d41d8cd98f00"},
        "reportingController": if kind == "HelmRelease" { "helm-controller" } else { "kustomize-controller" },
        "reportingInstance": "controller-6f7c9d8b5-qx2lp"
    })
    .to_string()
}

fn sign(key: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn hook(env: &Env, body: &str, signature: Option<String>) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method("POST")
        .uri("/api/v1/hooks/flux")
        .header("content-type", "application/json");
    if let Some(sig) = signature {
        req = req.header("x-signature", sig);
    }
    let resp = env
        .app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn card(env: &Env, name: &str) -> Value {
    let (s, v, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/applications?environment=dev",
        Some(env.token("org-viewer")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    v["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn signed_flux_events_set_application_status() {
    let env = setup().await;
    let ready = flux_body(
        "HelmRelease",
        "web",
        "info",
        "InstallSucceeded",
        "Helm install succeeded for release acme-dev/web.v1 with chart bp-shop@3.0.0",
        "3.0.0",
    );

    // Unsigned, wrongly signed, or signed with another key: 401, nothing changes.
    let before = card(&env, "web").await;
    assert_eq!(hook(&env, &ready, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        hook(&env, &ready, Some("sha256=00".into())).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = hook(&env, &ready, Some(sign("another-key", &ready))).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid-signature"))
    );
    assert_eq!(card(&env, "web").await, before);

    // Ready, with the revision Flux reports; a re-delivery is recorded once.
    let (s, v) = hook(&env, &ready, Some(sign(FLUX_KEY, &ready))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let seq = v["seq"].as_u64().unwrap();
    let (s, v) = hook(&env, &ready, Some(sign(FLUX_KEY, &ready))).await;
    assert_eq!((s, v["seq"].as_u64()), (StatusCode::ACCEPTED, Some(seq)));
    let web = card(&env, "web").await;
    assert_eq!(
        (web["status"].as_str(), web["revision"].as_str()),
        (Some("ready"), Some("3.0.0")),
        "{web}"
    );
    assert!(
        !web.to_string().contains("d41d8cd98f00"),
        "Flux's token never shows: {web}"
    );

    // Failed, with Flux's message.
    let failed = flux_body("Kustomization", "web", "error", "HealthCheckFailed", "health check failed after 5m0s: timeout waiting for: [Deployment/acme-dev/web status: 'InProgress']", "develop@sha1:0123456789abcdef0123456789abcdef01234567");
    let (s, _) = hook(&env, &failed, Some(sign(FLUX_KEY, &failed))).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let web = card(&env, "web").await;
    assert_eq!(web["status"], "failed");
    assert!(
        web["message"]
            .as_str()
            .unwrap()
            .starts_with("health check failed"),
        "{web}"
    );

    // Not an Application of this Sovereign: 404, recorded for the audit log.
    let ghost = flux_body(
        "HelmRelease",
        "ghost",
        "info",
        "InstallSucceeded",
        "ok",
        "1.0.0",
    );
    let (s, v) = hook(&env, &ghost, Some(sign(FLUX_KEY, &ghost))).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not-found"))
    );
    // A source's event carries no Application status.
    let source = flux_body("Kustomization", "web", "info", "Progressing", "x", "r")
        .replace("\"Kustomization\"", "\"GitRepository\"");
    let (s, v) = hook(&env, &source, Some(sign(FLUX_KEY, &source))).await;
    assert_eq!(
        (s, v["applied"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{v}"
    );
    // Malformed and oversized bodies.
    let (s, _) = hook(
        &env,
        "{\"severity\": 1}",
        Some(sign(FLUX_KEY, "{\"severity\": 1}")),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    let (s, v) = hook(&env, &big, Some(sign(FLUX_KEY, &big))).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("request-too-large")),
        "{v}"
    );

    // Replay: a projection rebuilt from the log is the live one, byte for byte.
    let spine = env.api.read.spine().clone();
    let rebuilt = catalyst_spine::Projector::new(spine);
    let live = env
        .api
        .read
        .read(|p| serde_json::to_vec(&p.to_json()).unwrap());
    assert_eq!(
        rebuilt.read(|p| serde_json::to_vec(&p.to_json()).unwrap()),
        live
    );
    let audit = env.api.read.read(|p| {
        p.audit()
            .iter()
            .filter(|a| a.kind.starts_with("flux."))
            .count()
    });
    assert_eq!(audit, 3, "ready once, failed, and the unknown object");
}

/// Every read-side route and stream, as every role of acme, sovereign-admin and another
/// Organization's admin: the right status, and nothing of another Organization.
#[tokio::test]
async fn read_side_routes_follow_roles_and_organizations() {
    let env = setup().await;
    let status = |uri: &str, who: &str| {
        let req = Request::builder()
            .uri(uri)
            .header("authorization", format!("Bearer {}", env.token(who)))
            .body(Body::empty())
            .unwrap();
        let app = env.app.clone();
        async move { app.oneshot(req).await.unwrap().status().as_u16() }
    };
    let who = [
        "admin",
        "org-admin",
        "org-developer",
        "org-viewer",
        "security-officer",
        "billing-admin",
        "other-org-admin",
    ];
    for (uri, want) in [
        (
            "/api/v1/orgs/acme/applications",
            [200, 200, 200, 200, 200, 403, 404],
        ),
        (
            "/api/v1/orgs/acme/environments",
            [200, 200, 200, 200, 200, 200, 404],
        ),
        (
            "/api/v1/orgs/acme/environments/dev",
            [200, 200, 200, 200, 200, 200, 404],
        ),
        (
            "/api/v1/orgs/acme/audit",
            [200, 200, 200, 200, 200, 200, 404],
        ),
        (
            "/api/v1/orgs/acme/events",
            [200, 200, 200, 200, 200, 200, 404],
        ),
        ("/api/v1/audit", [200, 403, 403, 403, 200, 403, 403]),
        ("/api/v1/events", [200, 403, 403, 403, 403, 403, 403]),
        (
            "/api/v1/blueprints/bp-shop/usage",
            [200, 200, 200, 200, 200, 403, 200],
        ),
        ("/api/v1/orgs", [200, 200, 200, 200, 200, 200, 200]),
    ] {
        for (w, expected) in who.iter().zip(want) {
            assert_eq!(status(uri, w).await, expected, "{uri} as {w}");
        }
        let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let anonymous = env
            .app
            .clone()
            .oneshot(req)
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(anonymous, 401, "{uri} without a token");
    }
    // What another Organization's admin reads never names acme.
    for uri in ["/api/v1/orgs", "/api/v1/blueprints/bp-shop/usage"] {
        let (_, v, _) = send(
            &env.app,
            "GET",
            uri,
            Some(env.token("other-org-admin")),
            None,
        )
        .await;
        assert!(!v.to_string().contains("acme"), "{uri}: {v}");
    }
}

/// A body over the limit is a JSON 413 on every write route, and nothing is written.
#[tokio::test]
async fn oversized_bodies_are_a_json_413() {
    let env = setup().await;
    let big = json!({"name": "x".repeat(2 * 1024 * 1024)});
    for uri in [
        "/api/v1/orgs",
        "/api/v1/orgs/acme/applications",
        "/api/v1/orgs/acme/environments",
    ] {
        let (s, v, _) = send(
            &env.app,
            "POST",
            uri,
            Some(env.token("admin")),
            Some(big.clone()),
        )
        .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("request-too-large")),
            "{uri}: {v}"
        );
    }
    let (_, v, _) = send(
        &env.app,
        "GET",
        "/api/v1/orgs",
        Some(env.token("admin")),
        None,
    )
    .await;
    assert_eq!(
        v["organizations"].as_array().unwrap().len(),
        2,
        "nothing was created: {v}"
    );
}
