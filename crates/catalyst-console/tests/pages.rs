//! Router-level tests: every page through `tower::ServiceExt::oneshot`.
mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use catalyst_console::Catalog;
use catalyst_provision::service::{DeploymentService, ServiceConfig};
use catalyst_store::file::FileStore;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use support::{admin_auth, app, example_catalog, valid_request, PacedDryRun};

const TOKEN: &str = "tok-NEVER-SHOWN-0123456789abcdef0123456789abcdef0123456789abcdef0123";

struct Fixture {
    /// The app, every request carrying the sovereign-admin token unless it has its own.
    app: Router,
    /// The app as an anonymous browser sees it.
    anon: Router,
    auth: Arc<catalyst_api::auth::Authenticator>,
    admin: String,
    service: Arc<DeploymentService>,
    _dir: tempfile::TempDir,
}

async fn fixture(catalog: Catalog) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path().join("deployments")).unwrap());
    let provisioner = PacedDryRun::new(dir.path(), 0, std::time::Duration::ZERO);
    let service = DeploymentService::start(store, provisioner, ServiceConfig::default())
        .await
        .unwrap();
    let (auth, admin) = admin_auth(dir.path());
    let anon = app(service.clone(), "http://127.0.0.1:9", catalog, auth.clone());
    let bearer = format!("Bearer {admin}");
    let app = anon.clone().layer(axum::middleware::map_request(
        move |mut req: Request<Body>| {
            let bearer = bearer.clone();
            async move {
                if !req.headers().contains_key(header::AUTHORIZATION)
                    && !req.headers().contains_key(header::COOKIE)
                {
                    req.headers_mut()
                        .insert(header::AUTHORIZATION, bearer.parse().unwrap());
                }
                req
            }
        },
    ));
    Fixture {
        app,
        anon,
        auth,
        admin,
        service,
        _dir: dir,
    }
}

struct Page {
    status: StatusCode,
    content_type: String,
    location: String,
    set_cookie: String,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Page {
    let resp = app.clone().oneshot(req).await.unwrap();
    let h = |name| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    if resp.headers().contains_key(header::CONTENT_TYPE)
        && resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    {
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"));
    }
    let (status, content_type, location, set_cookie) = (
        resp.status(),
        h(header::CONTENT_TYPE),
        h(header::LOCATION),
        h(header::SET_COOKIE),
    );
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        content_type,
        location,
        set_cookie,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(app: &Router, path: &str) -> Page {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

fn assert_html(p: &Page, path: &str) {
    assert_eq!(p.status, StatusCode::OK, "{path}: {}", p.body);
    assert!(
        p.content_type.starts_with("text/html"),
        "{path}: {}",
        p.content_type
    );
    assert!(p.body.starts_with("<!doctype html>"), "{path}");
    assert!(p.body.contains("/assets/console.css"), "{path}");
    assert!(
        p.body.contains("<script src=\"/assets/session.js\" defer>"),
        "{path}"
    );
    assert!(!p.body.contains(TOKEN), "{path} shows the token");
    // Nothing from another host.
    for attr in [
        "src=\"http",
        "href=\"http://",
        "href=\"https://",
        "src=\"//",
        "href=\"//",
    ] {
        assert!(
            !p.body.contains(attr),
            "{path} loads from another host ({attr})"
        );
    }
}

async fn create_ready(f: &Fixture, label: &str) -> String {
    let req = Request::post("/api/v1/deployments")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(valid_request(label, TOKEN).to_string()))
        .unwrap();
    let p = send(&f.app, req).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let id = serde_json::from_str::<Value>(&p.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let parsed = catalyst_core::DeploymentId::parse(&id).unwrap();
    for _ in 0..400 {
        if f.service.view(&parsed).unwrap().done {
            return id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("deployment did not finish");
}

#[tokio::test]
async fn root_redirects_to_the_wizard_until_a_sovereign_is_ready() {
    let f = fixture(Catalog::empty()).await;
    let p = get(&f.app, "/").await;
    assert!(p.status.is_redirection());
    assert_eq!(p.location, "/sovereign/wizard");
    create_ready(&f, "acme").await;
    let p = get(&f.app, "/").await;
    assert_eq!(p.location, "/sovereign/deployments");
}

#[tokio::test]
async fn wizard_page_carries_the_core_provider_catalog_and_every_step() {
    let f = fixture(example_catalog()).await;
    let p = get(&f.app, "/sovereign/wizard").await;
    assert_html(&p, "/sovereign/wizard");
    for step in 1..=7 {
        assert!(
            p.body.contains(&format!("data-step=\"{step}\"")),
            "step {step}"
        );
    }
    let start = p.body.find("id=\"wizard-data\">").unwrap() + "id=\"wizard-data\">".len();
    let end = start + p.body[start..].find("</script>").unwrap();
    let data: Value = serde_json::from_str(&p.body[start..end]).unwrap();
    let codes: Vec<&str> = data["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = catalyst_core::catalog::PROVIDERS
        .iter()
        .map(|p| p.code)
        .collect();
    assert_eq!(codes, expected);
    assert_eq!(data["poolDomains"][0], "omani.works");
    let comps = data["components"].as_array().unwrap();
    let gitea = comps.iter().find(|c| c["name"] == "bp-gitea").unwrap();
    assert_eq!(
        gitea["depends"],
        serde_json::json!(["bp-postgres", "bp-keycloak"])
    );
    assert!(comps
        .iter()
        .any(|c| c["name"] == "bp-cert-manager" && c["listed"] == false));
    // Every control has a label.
    for id in [
        "org-name",
        "org-industry",
        "org-size",
        "hetzner-project",
        "subdomain",
        "pool-domain",
        "byo-domain",
        "registrar",
        "registrar-token",
        "org-email",
        "comp-search",
    ] {
        assert!(
            p.body.contains(&format!("for=\"{id}\"")),
            "no label for {id}"
        );
    }
    for topo in ["citadel", "dual", "zoned", "compact", "solo"] {
        assert!(p.body.contains(&format!("value=\"{topo}\"")), "{topo}");
    }
}

#[tokio::test]
async fn deployments_and_progress_pages_show_state_but_no_secret() {
    let f = fixture(Catalog::empty()).await;
    let p = get(&f.app, "/sovereign/deployments").await;
    assert_html(&p, "/sovereign/deployments");
    assert!(p.body.contains("No deployment yet"));
    let id = create_ready(&f, "acme").await;
    let p = get(&f.app, "/sovereign/deployments").await;
    assert_html(&p, "/sovereign/deployments");
    assert!(p
        .body
        .contains(&format!("href=\"/sovereign/provision/{id}\"")));
    assert!(p.body.contains("acme.omani.works"));
    assert!(p.body.contains("status-ready"));
    assert!(p.body.contains("dry run"));
    let p = get(&f.app, &format!("/sovereign/provision/{id}")).await;
    assert_html(&p, "provision");
    assert!(p.body.contains(&format!("data-id=\"{id}\"")));
    assert!(p.body.contains("Dry run — nothing was provisioned"));
    assert!(p.body.contains("https://console.acme.omani.works"));
    assert!(p.body.contains("data-phase=\"tofu-apply\""));
    // The record on disk and the events do not hold the token either (the API's own tests
    // cover that); here: no page does.
    for path in ["/", "/sovereign/wizard", "/marketplace"] {
        let p = get(&f.app, path).await;
        assert!(!p.body.contains(TOKEN), "{path}");
    }
}

#[tokio::test]
async fn unknown_pages_are_html_404s() {
    let f = fixture(example_catalog()).await;
    for path in [
        "/sovereign/provision/0123456789abcdef",
        "/sovereign/provision/not-an-id",
        "/sovereign/provision/..%2F..%2Fetc",
        "/marketplace/bp-nope",
        "/marketplace/bp-gitea?version=9.9.9",
        "/marketplace/Not%20A%20Name",
    ] {
        let p = get(&f.app, path).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
        assert!(p.content_type.starts_with("text/html"), "{path}");
    }
    let p = get(&f.app, "/assets/nope.js").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn assets_are_embedded_with_their_types() {
    let f = fixture(Catalog::empty()).await;
    for (path, ty) in [
        ("/assets/console.css", "text/css"),
        ("/assets/wizard.js", "text/javascript"),
        ("/assets/provision.js", "text/javascript"),
        ("/assets/marketplace.js", "text/javascript"),
        ("/assets/install.js", "text/javascript"),
        ("/assets/deployments.js", "text/javascript"),
        ("/assets/session.js", "text/javascript"),
    ] {
        let p = get(&f.app, path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}");
        assert!(p.content_type.starts_with(ty), "{path}: {}", p.content_type);
        assert!(
            !p.body.contains("http://") && !p.body.contains("https://"),
            "{path} names another host"
        );
    }
}

#[tokio::test]
async fn marketplace_lists_listed_blueprints_and_filters_on_the_server() {
    let f = fixture(example_catalog()).await;
    let p = get(&f.app, "/marketplace").await;
    assert_html(&p, "/marketplace");
    for name in [
        "bp-postgres",
        "bp-keycloak",
        "bp-gitea",
        "bp-grafana",
        "bp-loki",
        "bp-valkey",
        "bp-outline",
    ] {
        assert!(p.body.contains(&format!("data-name=\"{name}\"")), "{name}");
    }
    assert!(
        !p.body.contains("data-name=\"bp-cert-manager\""),
        "unlisted is not listed"
    );
    assert!(p.body.contains("7 of 7 Blueprints"));
    let p = get(&f.app, "/marketplace?family=observability").await;
    assert!(p.body.contains("2 of 7 Blueprints"));
    assert!(p.body.contains("data-name=\"bp-loki\"") && !p.body.contains("data-name=\"bp-gitea\""));
    let p = get(&f.app, "/marketplace?q=SINGLE+sign-on").await;
    assert!(p.body.contains("data-name=\"bp-keycloak\""));
    assert!(p.body.contains("1 of 7 Blueprints"), "{}", p.body);
    let p = get(&f.app, "/marketplace").await;
    let empty = fixture(Catalog::empty()).await;
    let e = get(&empty.app, "/marketplace").await;
    assert_html(&e, "/marketplace (empty)");
    assert!(e.body.contains("--catalog"));
    drop(p);
}

#[tokio::test]
async fn blueprint_page_shows_versions_tree_and_a_schema_form() {
    let f = fixture(example_catalog()).await;
    let p = get(&f.app, "/marketplace/bp-outline").await;
    assert_html(&p, "/marketplace/bp-outline");
    assert!(p.body.contains("0.9.0"));
    // The resolved tree reaches the unlisted cert-manager through keycloak, and picks
    // postgres 1.3.0 for outline's ^1.3.
    let tree = &p.body[p.body.find("id=\"dep-tree\"").unwrap()..];
    for name in ["bp-postgres", "bp-valkey", "bp-keycloak", "bp-cert-manager"] {
        assert!(tree.contains(&format!(">{name}</a>")), "{name} in tree");
    }
    assert!(tree.contains("1.3.0"));
    assert!(p.body.contains("name=\"/hostname\""));
    // An unlisted Blueprint resolves by name.
    assert_html(&get(&f.app, "/marketplace/cert-manager").await, "unlisted");
    // Older version by query.
    let p = get(&f.app, "/marketplace/bp-postgres?version=1.2.0").await;
    assert_html(&p, "postgres 1.2.0");
    assert!(!p.body.contains("name=\"/majorVersion\""));
    assert!(get(&f.app, "/marketplace/bp-postgres")
        .await
        .body
        .contains("name=\"/majorVersion\""));
}

#[tokio::test]
async fn blueprint_page_has_an_install_form_with_a_row_per_dependency() {
    let f = fixture(example_catalog()).await;
    // Public page, read without a session: the form is drawn (hidden until the script finds a
    // session that may install) beside the CLI command and a sign-in link.
    let p = get(&f.anon, "/marketplace/bp-gitea").await;
    assert_html(&p, "/marketplace/bp-gitea");
    let install = &p.body[p.body.find("id=\"install\"").expect("an Install section")..];
    assert!(install.contains("<form id=\"install-form\" hidden"));
    assert!(install.contains(
        "catalyst app install gitea --org ORG --env dev --blueprint bp-gitea --version 1.0.2"
    ));
    assert!(
        install.contains("href=\"/login?next=/marketplace/bp-gitea%3Fversion%3D1.0.2%23install\"")
    );
    for label in ["install-org", "install-env", "install-name"] {
        assert!(
            install.contains(&format!("<label for=\"{label}\">")),
            "{label}"
        );
    }
    assert!(install.contains("id=\"install-name\" name=\"name\" value=\"gitea\""));
    // One row per dependency of the resolved tree, each once (postgres is reached twice),
    // in tree order, with the version the plan picks and "create new" chosen.
    let rows: Vec<(&str, &str)> = install
        .match_indices("data-dep=\"")
        .map(|(i, m)| {
            let rest = &install[i + m.len()..];
            let name = &rest[..rest.find('"').unwrap()];
            let marker = "data-dep-version=\"";
            let v = &rest[rest.find(marker).unwrap() + marker.len()..];
            (name, &v[..v.find('"').unwrap()])
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("bp-postgres", "1.3.0"),
            ("bp-keycloak", "1.1.0"),
            ("bp-cert-manager", "1.0.0")
        ]
    );
    assert_eq!(install.matches("data-choice=\"new\"").count(), 3);
    assert!(install.contains("<code data-role=\"new-name\">gitea-keycloak</code>"));
    // A new dependency's values: its own form, ids kept apart from the configuration form.
    assert!(install.contains("id=\"dep1-cfg-realm\" name=\"/realm\""));
    assert!(p.body.contains("id=\"cfg-hostname\" name=\"/hostname\""));
    assert!(p
        .body
        .contains("<script src=\"/assets/install.js\" defer></script>"));
    // The schemas the script types values by.
    let marker = "id=\"install-data\">";
    let data = &p.body[p.body.find(marker).unwrap() + marker.len()..];
    let data: Value = serde_json::from_str(&data[..data.find("</script>").unwrap()]).unwrap();
    assert_eq!(data["blueprint"], "bp-gitea");
    assert_eq!(data["version"], "1.0.2");
    assert_eq!(data["schema"]["required"][0], "hostname");
    assert_eq!(data["dependencies"]["bp-keycloak"]["required"][0], "realm");
    assert!(data["dependencies"]["bp-cert-manager"].is_null());
    // No dependencies, no rows.
    let p = get(&f.anon, "/marketplace/bp-loki").await;
    assert!(p.body.contains("id=\"install-form\""));
    assert!(!p.body.contains("data-dep=\""));
}

async fn post_form(app: &Router, path: &str, form: &str) -> Page {
    send(
        app,
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn the_config_form_is_validated_on_the_server() {
    let f = fixture(example_catalog()).await;
    // Missing required realm, replicas out of range.
    let p = post_form(
        &f.app,
        "/marketplace/bp-keycloak",
        "%2Frealm=&%2Freplicas=9&%2FadminPassword=hunter2-secret",
    )
    .await;
    assert_html(&p, "keycloak invalid");
    assert!(p.body.contains("The values are not valid"), "{}", p.body);
    assert!(p.body.contains("aria-invalid=\"true\""));
    assert!(
        !p.body.contains("hunter2-secret"),
        "a password is never echoed"
    );
    let p = post_form(
        &f.app,
        "/marketplace/bp-keycloak",
        "%2Frealm=acme&%2Freplicas=2&%2FadminPassword=hunter2-secret",
    )
    .await;
    assert!(p.body.contains("These values are valid"), "{}", p.body);
    assert!(
        p.body.contains("&#34;realm&#34;: &#34;acme&#34;"),
        "{}",
        p.body
    );
    assert!(
        !p.body.contains("hunter2-secret"),
        "a password is never echoed"
    );
    // Not a number: reported, not a 4xx.
    let p = post_form(&f.app, "/marketplace/bp-loki", "%2FretentionDays=forever").await;
    assert!(p.body.contains("The values are not valid"));
    assert!(p.body.contains("value=\"forever\""));
    // Defaults are applied and shown.
    let p = post_form(&f.app, "/marketplace/bp-postgres?version=1.3.0", "").await;
    assert!(p.body.contains("These values are valid"), "{}", p.body);
    assert!(
        p.body.contains("&#34;majorVersion&#34;: &#34;16&#34;"),
        "{}",
        p.body
    );
}

#[test]
fn the_example_catalog_loads_cleanly() {
    let c = example_catalog();
    assert_eq!(c.entries().len(), 8);
    assert_eq!(c.listed().count(), 7);
    assert_eq!(c.get("postgres").unwrap().versions, vec!["1.3.0", "1.2.0"]);
    assert_eq!(
        c.families(),
        vec![
            "application",
            "data",
            "observability",
            "platform",
            "security"
        ]
    );
    let tree = c.tree("bp-gitea", "1.0.2");
    assert!(tree.error.is_none() && tree.missing.is_empty(), "{tree:?}");
    assert_eq!(tree.layers.len(), 3, "{:?}", tree.layers);
}

#[tokio::test]
async fn admin_pages_need_a_sign_in_and_the_session_cookie_never_holds_the_token() {
    let f = fixture(example_catalog()).await;
    // Anonymous: the admin pages send the browser to the sign-in page; public ones answer.
    for path in ["/", "/sovereign/wizard", "/sovereign/deployments"] {
        let p = get(&f.anon, path).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(p.location, format!("/login?next={path}"), "{path}");
    }
    for path in ["/marketplace", "/marketplace/bp-gitea", "/login"] {
        assert_html(&get(&f.anon, path).await, path);
    }
    let p = get(&f.anon, "/api/v1/deployments").await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        serde_json::from_str::<Value>(&p.body).unwrap()["error"],
        "unauthorized"
    );

    // A wrong token: back to the form with a message.
    let login = |form: String| {
        Request::post("/api/v1/session")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(form))
            .unwrap()
    };
    let p = send(
        &f.anon,
        login("token=cat_nope&next=%2Fsovereign%2Fdeployments".into()),
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(
        p.location,
        "/login?error=invalid&next=/sovereign/deployments"
    );
    assert!(p.set_cookie.is_empty());
    let p = get(&f.anon, "/login?error=invalid&next=/sovereign/deployments").await;
    assert!(p.body.contains("not valid"));

    // No signing in from another site (login CSRF), and no JSON smuggled in a text/plain form.
    let p = send(
        &f.anon,
        Request::post("/api/v1/session")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from(format!("{{\"token\":\"{}\"}}", f.admin)))
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", p.body);
    for (ct, body) in [
        (
            "application/x-www-form-urlencoded",
            format!("token={}", f.admin),
        ),
        ("application/json", format!("{{\"token\":\"{}\"}}", f.admin)),
    ] {
        let p = send(
            &f.anon,
            Request::post("/api/v1/session")
                .header(header::CONTENT_TYPE, ct)
                .header("sec-fetch-site", "cross-site")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{ct}: {}", p.body);
        assert!(p.set_cookie.is_empty(), "{ct}");
    }

    // The right token: a session cookie (HttpOnly, SameSite=Strict) without the token, and
    // the browser goes on to `next` — never to another host.
    let p = send(
        &f.anon,
        login(format!("token={}&next=%2Fsovereign%2Fdeployments", f.admin)),
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location, "/sovereign/deployments");
    assert!(p.set_cookie.contains("HttpOnly") && p.set_cookie.contains("SameSite=Strict"));
    assert!(!p.set_cookie.contains(&f.admin));
    assert!(!p.set_cookie.contains(f.admin.trim_start_matches("cat_")));
    let cookie = p.set_cookie.split(';').next().unwrap().to_string();
    let p = send(
        &f.anon,
        login(format!("token={}&next=https%3A%2F%2Fevil.example", f.admin)),
    )
    .await;
    assert_eq!(p.location, "/");
    let p = send(
        &f.anon,
        login(format!("token={}&next=%2F%2Fevil.example", f.admin)),
    )
    .await;
    assert_eq!(p.location, "/");

    let with_cookie = |method: &str, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::COOKIE, &cookie)
    };
    let p = send(
        &f.anon,
        with_cookie("GET", "/sovereign/deployments")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_html(&p, "/sovereign/deployments with the cookie");
    let p = send(
        &f.anon,
        with_cookie("GET", "/api/v1/session")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&p.body).unwrap()["role"],
        "sovereign-admin"
    );
    // A write with the cookie from another site is refused; from this one it goes through.
    let create = |origin: &str| {
        with_cookie("POST", "/api/v1/deployments")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::HOST, "console.example")
            .header(header::ORIGIN, origin)
            .body(Body::from(valid_request("cookie", TOKEN).to_string()))
            .unwrap()
    };
    let p = send(&f.anon, create("https://evil.example")).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);
    assert!(p.body.contains("cross-origin"));
    let p = send(&f.anon, create("http://console.example")).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    // A tampered cookie is worthless.
    let mut forged = cookie.clone();
    forged.insert(forged.find('=').unwrap() + 1, 'x');
    let p = send(
        &f.anon,
        Request::get("/sovereign/deployments")
            .header(header::COOKIE, forged)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);

    // A non-admin is told so on the sign-in page.
    let viewer = f
        .auth
        .tokens()
        .create(catalyst_api::auth::Role::OrgViewer, Some("acme"), "vera")
        .unwrap();
    let p = send(
        &f.anon,
        Request::get("/sovereign/wizard")
            .header(header::AUTHORIZATION, format!("Bearer {viewer}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location, "/login?next=/sovereign/wizard&error=forbidden");

    // Signing out clears the cookie.
    let p = send(
        &f.anon,
        Request::post("/api/v1/session/end")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(p.set_cookie.contains("Max-Age=0"));
}
