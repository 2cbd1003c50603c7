//! The web console served by the real binary, started the way the README says
//! (`catalyst serve --catalog examples/catalog`), and through `CATALYST_CATALOG`.
mod support;

use std::path::Path;

use support::{repo, Catalyst};

fn serve(data_dir: &Path, args: &[&str], env: &[(&str, String)]) -> Catalyst {
    let mut all = vec!["--provisioner", "dry-run"];
    all.extend_from_slice(args);
    Catalyst::start_with(data_dir, &all, |cmd| {
        cmd.current_dir(repo());
        for (k, v) in env {
            cmd.env(k, v);
        }
    })
}

/// The marketplace page as an anonymous browser gets it.
async fn marketplace(s: &Catalyst) -> String {
    client()
        .get(format!("{}/marketplace", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_console_signs_in_with_a_token_from_token_create() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &["--catalog", "examples/catalog"], &[]);
    let c = client();
    let r = c
        .get(format!("{}/sovereign/deployments", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/login?next=/sovereign/deployments"
    );
    let r = c
        .post(format!("{}/api/v1/session", s.base))
        .form(&[
            ("token", s.admin.as_str()),
            ("next", "/sovereign/deployments"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(!cookie.contains(&s.admin));
    let cookie = cookie.split(';').next().unwrap().to_string();
    let r = c
        .get(format!("{}/sovereign/deployments", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("No deployment yet"));
    // Nothing under the data dir holds the token.
    for e in walkdir::WalkDir::new(dir.path()).into_iter().flatten() {
        if e.file_type().is_file() {
            let bytes = std::fs::read(e.path()).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(&s.admin),
                "{}",
                e.path().display()
            );
        }
    }
}

#[tokio::test]
async fn serve_with_the_example_catalog_serves_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &["--catalog", "examples/catalog"], &[]);
    let c = s.client();
    let r = c.get(format!("{}/", s.base)).send().await.unwrap();
    assert!(r.status().is_redirection());
    assert_eq!(r.headers()["location"], "/sovereign/wizard");
    for (path, needle) in [
        ("/sovereign/wizard", "id=\"wizard-data\""),
        ("/sovereign/deployments", "No deployment yet"),
        ("/marketplace", "data-name=\"bp-gitea\""),
        ("/marketplace/bp-outline", "id=\"dep-tree\""),
    ] {
        let r = c.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.text().await.unwrap().contains(needle), "{path}");
    }
    // The API is still there, next to the console.
    let r = c.get(format!("{}/healthz", s.base)).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn the_catalog_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = repo().join("examples/catalog").display().to_string();
    let s = serve(dir.path(), &[], &[("CATALYST_CATALOG", catalog)]);
    let body = marketplace(&s).await;
    assert!(body.contains("7 of 7 Blueprints"), "{body}");
    // Without a catalog the marketplace says how to give it one.
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = serve(dir2.path(), &[], &[]);
    let body = marketplace(&s2).await;
    assert!(body.contains("--catalog"));
}

#[tokio::test]
async fn settings_can_come_from_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("catalyst.yaml");
    std::fs::write(
        &config,
        format!(
            "# catalyst serve settings\ncatalog:\n  - {}\nprovisioner: dry-run\npool_domains: [omani.works]\n",
            repo().join("examples/catalog").display()
        ),
    )
    .unwrap();
    let s = serve(dir.path(), &["--config", config.to_str().unwrap()], &[]);
    let body = marketplace(&s).await;
    assert!(body.contains("7 of 7 Blueprints"), "{body}");
    let pool: serde_json::Value = s
        .client()
        .get(format!("{}/api/v1/pool", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        pool["managedDomains"],
        serde_json::json!(["omani.works"]),
        "{pool}"
    );
}

/// `GET path` with `token` as bearer (or none): (status, Location, body).
async fn page_as(s: &Catalyst, token: Option<&str>, path: &str) -> (u16, String, String) {
    let mut req = client().get(format!("{}{path}", s.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, r.text().await.unwrap())
}

#[tokio::test]
async fn organization_pages_show_what_the_callers_role_reaches() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &["--catalog", "examples/catalog"], &[]);
    for (path, body) in [
        ("/api/v1/orgs", serde_json::json!({"name": "acme"})),
        ("/api/v1/orgs", serde_json::json!({"name": "globex"})),
        (
            "/api/v1/orgs/acme/environments",
            serde_json::json!({"envType": "dev"}),
        ),
        (
            "/api/v1/orgs/acme/applications",
            serde_json::json!({"name": "cache", "environment": "dev", "blueprint": "bp-valkey"}),
        ),
    ] {
        let (status, v) = s.post_json(path, &body).await;
        assert_eq!(status, 201, "{path}: {v}");
    }
    let (status, v) = s
        .post_json(
            "/api/v1/orgs/acme/members",
            &serde_json::json!({"name": "dana", "role": "org-viewer"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let dana = v["token"].as_str().unwrap().to_owned();

    // Without a credential: to the sign-in page, back here afterwards.
    let (status, location, _) = page_as(&s, None, "/orgs").await;
    assert_eq!((status, location.as_str()), (303, "/login?next=/orgs"));

    // The sovereign-admin sees every Organization.
    let (status, _, html) = page_as(&s, Some(&s.admin), "/orgs").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"data-org="acme""#) && html.contains(r#"data-org="globex""#));

    // A member of acme sees acme only; globex is a 404, as one that does not exist.
    let (status, _, html) = page_as(&s, Some(&dana), "/orgs").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(r#"data-org="acme""#) && !html.contains("globex"),
        "{html}"
    );
    let (status, _, html) = page_as(&s, Some(&dana), "/orgs/globex").await;
    assert_eq!(status, 404, "{html}");
    let (status, _, missing) = page_as(&s, Some(&dana), "/orgs/nope").await;
    assert_eq!(status, 404);
    assert_eq!(
        html.replace("globex", "X"),
        missing.replace("nope", "X"),
        "another Organization's page reads exactly like a missing one"
    );

    // The Organization: its Environment, its Application counted, its members.
    let (status, _, html) = page_as(&s, Some(&dana), "/orgs/acme").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"data-env="acme-dev""#), "{html}");
    assert!(html.contains(r#"data-member="dana""#), "{html}");
    assert!(html.contains("1 in all"), "{html}");
    // The stream starts where the page was read: no event between the two is missed.
    assert!(html.contains(r#"data-live="/api/v1/orgs/acme/events?lastEventId="#));

    // Write controls follow the role (the API decides again): an org-viewer gets none; the
    // sovereign-admin may create Organizations and manage members; an org-admin manages the
    // members of their own Organization.
    assert!(!html.contains(r#"id="add-member""#) && !html.contains("data-remove-member"));
    let (_, _, list) = page_as(&s, Some(&dana), "/orgs").await;
    assert!(!list.contains(r#"id="create-org""#));
    // Deployments are drawn for a sovereign-admin only, without JavaScript too.
    assert!(!list.contains(r#"href="/sovereign/"#), "{list}");
    let (_, _, list) = page_as(&s, Some(&s.admin), "/orgs").await;
    assert!(list.contains(r#"id="create-org""#) && list.contains("/assets/manage.js"));
    assert!(list.contains(r#"href="/sovereign/deployments""#), "{list}");
    let (status, v) = s
        .post_json(
            "/api/v1/orgs/acme/members",
            &serde_json::json!({"name": "olga", "role": "org-admin"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let olga = v["token"].as_str().unwrap().to_owned();
    let (_, _, page) = page_as(&s, Some(&olga), "/orgs/acme").await;
    assert!(page.contains(r#"id="add-member""#), "{page}");
    assert!(page.contains(r#"data-remove-member="dana""#), "{page}");
    let (status, _, js) = page_as(&s, None, "/assets/manage.js").await;
    assert_eq!(status, 200);
    assert!(js.contains("/api/v1/orgs/${encodeURIComponent(org)}/members"));

    // The Environment view: the App card, with its Blueprint, grouped by status.
    for env in ["dev", "acme-dev"] {
        let (status, _, html) =
            page_as(&s, Some(&dana), &format!("/orgs/acme/environments/{env}")).await;
        assert_eq!(status, 200, "{html}");
        assert!(
            html.contains(r#"data-app="cache""#) && html.contains("bp-valkey"),
            "{html}"
        );
        assert!(html.contains("signed in as dana (org-viewer)"), "{html}");
    }
    let (status, _, _) = page_as(&s, Some(&dana), "/orgs/acme/environments/prod").await;
    assert_eq!(status, 404);
    // The Application: per Environment, and its history (who installed it, with which commit).
    let (status, _, app) = page_as(&s, Some(&dana), "/orgs/acme/applications/cache").await;
    assert_eq!(status, 200, "{app}");
    assert!(
        app.contains(r#"data-env="acme-dev""#) && app.contains("bp-valkey"),
        "{app}"
    );
    assert!(
        app.contains(r#"data-kind="application.installed""#),
        "{app}"
    );
    assert!(app.contains("test-admin"), "the installer is named: {app}");
    // An org-viewer gets no write control and no script for them.
    assert!(
        !app.contains("data-manage")
            && !app.contains("data-rollback")
            && !app.contains("/assets/app.js"),
        "{app}"
    );
    // The sovereign-admin gets the values form, Roll back on past commits (none yet) and
    // app.js.
    let (_, _, admin_app) = page_as(&s, Some(&s.admin), "/orgs/acme/applications/cache").await;
    assert!(
        admin_app.contains(r#"data-manage="dev""#) && admin_app.contains("/assets/app.js"),
        "{admin_app}"
    );
    let (status, _, _) = page_as(&s, Some(&dana), "/orgs/acme/applications/nope").await;
    assert_eq!(status, 404);
    let (status, _, _) = page_as(&s, Some(&dana), "/orgs/globex/applications/cache").await;
    assert_eq!(status, 404);

    // The audit log: all of it for the sovereign-admin; not for an org-viewer, who reads their
    // Organization's part on its own page; filters by type; a bad time is said in words.
    let (status, _, log) = page_as(&s, Some(&s.admin), "/audit").await;
    assert_eq!(status, 200, "{log}");
    assert!(
        log.contains("organization.created") && log.contains("globex"),
        "{log}"
    );
    let (status, _, _) = page_as(&s, Some(&dana), "/audit").await;
    assert_eq!(status, 403);
    let (status, _, log) = page_as(&s, Some(&dana), "/orgs/acme/audit").await;
    assert_eq!(status, 200, "{log}");
    assert!(
        log.contains(r#"data-kind="application.installed""#),
        "{log}"
    );
    assert!(
        !log.contains("globex"),
        "another Organization's entries: {log}"
    );
    let (_, _, log) = page_as(&s, Some(&dana), "/orgs/acme/audit?type=application").await;
    assert!(
        log.contains("application.installed")
            && !log.contains(r#"data-kind="organization.created""#),
        "{log}"
    );
    let (status, _, log) = page_as(&s, Some(&dana), "/orgs/acme/audit?since=yesterday").await;
    assert_eq!(status, 200);
    assert!(log.contains("is not a time"), "{log}");
    let (status, _, _) = page_as(&s, Some(&dana), "/orgs/globex/audit").await;
    assert_eq!(status, 404);
    // Pages read without JavaScript and load nothing from another host.
    assert!(!html.contains("http://") && !html.contains("https://"));
    let (status, _, js) = page_as(&s, None, "/assets/live.js").await;
    assert_eq!(status, 200);
    assert!(
        js.contains("EventSource")
            && js.contains("\"io.openova.catalyst.\"")
            && js.contains("\"application.installed\"")
    );
}
