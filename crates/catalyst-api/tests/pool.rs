//! Pool-domain and registrar routes through the router: every status of the upstream API,
//! the fixes (422 for reserved names, idempotent commit and release), a real PowerDNS for the
//! race and outage cases, and the deployment service reserving, committing and releasing.

#[path = "../../catalyst-dns/tests/support/mod.rs"]
mod dns_support;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use catalyst_api::pool::{PoolApi, PoolNames};
use catalyst_api::AppState;
use catalyst_dns::registrar::{RegistrarUrls, Registry};
use catalyst_dns::{Allocator, PoolConfig, PowerDns, SqliteAllocationStore};
use catalyst_provision::hetzner::HetznerClient;
use catalyst_provision::service::{DeploymentService, ServiceConfig};
use catalyst_store::file::FileStore;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use support::{admin_auth, as_caller, Script, ScriptedProvisioner};
use tower::ServiceExt;

struct Harness {
    /// The router as a sovereign-admin calls it.
    app: axum::Router,
    /// The router as an anonymous caller sees it.
    anon: axum::Router,
    auth: Arc<catalyst_api::auth::Authenticator>,
    service: Arc<DeploymentService>,
    _dir: tempfile::TempDir,
}

async fn harness(
    ttl: Duration,
    dns: Option<PowerDns>,
    registrars: Registry,
    script: Script,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteAllocationStore::open(dir.path().join("pool.sqlite3")).unwrap());
    let allocator = Arc::new(Allocator::new(
        PoolConfig {
            pool_domains: vec!["omani.works".into(), "openova.io".into()],
            nameservers: vec!["ns1.openova.io".into(), "ns2.openova.io".into()],
            reservation_ttl: ttl,
        },
        store,
        dns,
    ));
    allocator.bootstrap().await.unwrap();
    let dstore = Arc::new(FileStore::open(dir.path().join("deployments")).unwrap());
    let service = DeploymentService::start(
        dstore,
        ScriptedProvisioner::new(script),
        ServiceConfig::default(),
    )
    .await
    .unwrap();
    service.set_name_allocator(Arc::new(PoolNames(allocator.clone())));
    let (auth, admin) = admin_auth(dir.path());
    let mut state = AppState::new(
        service.clone(),
        HetznerClient::new("http://127.0.0.1:9").unwrap(),
        auth.clone(),
    );
    state.pool = Some(Arc::new(PoolApi {
        allocator,
        registrars,
    }));
    let anon = support::conform::conform(catalyst_api::router(Arc::new(state)));
    Harness {
        app: as_caller(anon.clone(), &admin),
        anon,
        auth,
        service,
        _dir: dir,
    }
}

async fn call(app: &axum::Router, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(
            body.map(|b| Body::from(b.to_owned()))
                .unwrap_or_else(Body::empty),
        )
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status >= 400 {
        assert!(
            v["error"].is_string() && v["detail"].is_string(),
            "{status} {path}: {v}"
        );
    }
    (status, v)
}

/// `POST /api/v1/deployments` for `label.omani.works`: the status and the answer.
async fn create(app: &axum::Router, label: &str) -> (u16, Value) {
    call(
        app,
        "POST",
        "/api/v1/deployments",
        Some(&j(support::valid_request(label))),
    )
    .await
}

/// Creates a deployment that must be accepted; its id.
async fn create_ok(app: &axum::Router, label: &str) -> String {
    let (s, v) = create(app, label).await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

fn j(v: Value) -> String {
    v.to_string()
}

#[tokio::test]
async fn wizard_checks_are_public_and_everything_else_is_sovereign_admin_business() {
    let h = harness(
        Duration::from_secs(600),
        None,
        Registry::default(),
        Script::default(),
    )
    .await;
    // What a signup wizard needs before anyone holds a token: checks, no state changes.
    for (method, path, body) in [
        ("GET", "/api/v1/reserved", None),
        ("GET", "/api/v1/pool/omani.works/check?sub=acme", None),
        (
            "POST",
            "/api/v1/subdomains/check",
            Some(r#"{"subdomain":"acme","poolDomain":"omani.works"}"#),
        ),
        ("POST", "/api/v1/sshkey/generate", Some("{}")),
    ] {
        let (s, v) = call(&h.anon, method, path, body).await;
        assert!(s == 200 || s == 201, "{method} {path}: {s} {v}");
    }
    // Every Organization-scoped role is refused; only sovereign-admin gets through.
    use catalyst_api::auth::Role;
    let others: Vec<axum::Router> = Role::ALL
        .into_iter()
        .filter(|r| *r != Role::SovereignAdmin)
        .map(|r| {
            let token = h.auth.tokens().create(r, Some("acme"), r.as_str()).unwrap();
            as_caller(h.anon.clone(), &token)
        })
        .collect();
    assert_eq!(others.len(), 5);
    let create = j(support::valid_request("acme"));
    for (method, path, body) in [
        ("GET", "/api/v1/deployments", None),
        ("POST", "/api/v1/deployments", Some(create.as_str())),
        ("GET", "/api/v1/deployments/0123456789abcdef", None),
        ("GET", "/api/v1/deployments/0123456789abcdef/events", None),
        ("GET", "/api/v1/deployments/0123456789abcdef/logs", None),
        ("POST", "/api/v1/deployments/0123456789abcdef/cancel", None),
        ("DELETE", "/api/v1/deployments/0123456789abcdef", None),
        (
            "POST",
            "/api/v1/deployments/0123456789abcdef/phases/tofu-apply/retry",
            Some("{}"),
        ),
        ("GET", "/api/v1/pool", None),
        ("GET", "/api/v1/pool/omani.works/list", None),
        (
            "POST",
            "/api/v1/pool/omani.works/reserve",
            Some(r#"{"subdomain":"acme"}"#),
        ),
        ("POST", "/api/v1/pool/omani.works/commit", Some("{}")),
        ("DELETE", "/api/v1/pool/omani.works/release?sub=acme", None),
        ("POST", "/api/v1/registrar/cloudflare/set-ns", Some("{}")),
    ] {
        let (s, v) = call(&h.anon, method, path, body).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (401, Some("unauthorized")),
            "{method} {path}"
        );
        for other in &others {
            let (s, v) = call(other, method, path, body).await;
            assert_eq!(
                (s, v["error"].as_str()),
                (403, Some("forbidden")),
                "{method} {path}"
            );
        }
    }
    // Nothing was created or reserved by the refused calls; the admin sees the (empty) lists.
    assert!(h.service.list(10, None).unwrap().is_empty());
    let (s, v) = call(&h.app, "GET", "/api/v1/deployments", None).await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = call(&h.app, "GET", "/api/v1/pool/omani.works/list", None).await;
    assert_eq!(v["allocations"], json!([]), "{v}");
}

#[tokio::test]
async fn every_status_of_the_pool_routes() {
    let h = harness(
        Duration::from_secs(600),
        None,
        Registry::default(),
        Script::default(),
    )
    .await;
    let app = &h.app;
    let (s, v) = call(app, "GET", "/api/v1/reserved", None).await;
    assert_eq!(s, 200);
    assert!(v["reserved"].as_array().unwrap().contains(&json!("api")));
    let (_, v) = call(app, "GET", "/api/v1/pool", None).await;
    assert_eq!(v["dnsManaged"], false);
    assert_eq!(v["managedDomains"], json!(["omani.works", "openova.io"]));

    // check
    for (q, reason) in [
        ("/api/v1/pool/omani.works/check?sub=1bad", "invalid-format"),
        (
            "/api/v1/pool/example.com/check?sub=acme",
            "unsupported-pool",
        ),
        ("/api/v1/pool/omani.works/check?sub=api", "reserved"),
    ] {
        let (s, v) = call(app, "GET", q, None).await;
        assert_eq!(
            (s, v["available"].clone(), v["reason"].as_str()),
            (200, json!(false), Some(reason)),
            "{q}"
        );
    }
    let (_, v) = call(app, "GET", "/api/v1/pool/omani.works/check?sub=Acme", None).await;
    assert_eq!(v, json!({"available": true, "fqdn": "acme.omani.works"}));

    // reserve
    let r = "/api/v1/pool/omani.works/reserve";
    assert_eq!(call(app, "POST", r, Some("{nope")).await.0, 400);
    for (sub, code) in [("1bad", "invalid-format"), ("api", "reserved")] {
        let (s, v) = call(app, "POST", r, Some(&j(json!({"subdomain": sub})))).await;
        assert_eq!((s, v["error"].as_str()), (422, Some(code)));
    }
    let (s, v) = call(
        app,
        "POST",
        "/api/v1/pool/example.com/reserve",
        Some(&j(json!({"subdomain": "acme"}))),
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (422, Some("unsupported-pool")));
    let (s, v) = call(
        app,
        "POST",
        r,
        Some(&j(json!({"subdomain": " ACME ", "createdBy": "me"}))),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (
            v["state"].as_str(),
            v["createdBy"].as_str(),
            v["dnsManaged"].as_bool()
        ),
        (Some("reserved"), Some("me"), Some(false))
    );
    assert!(
        v["expiresAt"].as_str().unwrap().ends_with('Z')
            && v["reservedAt"].as_str().unwrap().len() == 20
    );
    let token = v["reservationToken"].as_str().unwrap().to_owned();
    let (s, v) = call(app, "POST", r, Some(&j(json!({"subdomain": "acme"})))).await;
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")));
    let (_, v) = call(app, "GET", "/api/v1/pool/omani.works/check?sub=acme", None).await;
    assert_eq!(v["reason"], "reserved-state");

    // commit
    let c = "/api/v1/pool/omani.works/commit";
    let body = |sub: &str, tok: &str, ip: &str| {
        j(
            json!({"subdomain": sub, "reservationToken": tok, "sovereignFQDN": "acme.omani.works", "loadBalancerIP": ip}),
        )
    };
    assert_eq!(call(app, "POST", c, Some("[")).await.0, 400);
    for (b, status, code) in [
        (body("1bad", &token, "10.0.0.1"), 422, "invalid-format"),
        (body("acme", &token, " "), 422, "missing-lb-ip"),
        (body("acme", &token, "300.1.1.1"), 422, "invalid-lb-ip"),
        (body("ghost", &token, "10.0.0.1"), 404, "not-found"),
        (
            body("acme", "00000000-0000-4000-8000-000000000000", "10.0.0.1"),
            403,
            "token-mismatch",
        ),
        (
            body("acme", "not-a-uuid", "10.0.0.1"),
            403,
            "token-mismatch",
        ),
    ] {
        let (s, v) = call(app, "POST", c, Some(&b)).await;
        assert_eq!((s, v["error"].as_str()), (status, Some(code)), "{b}");
    }
    let (s, v) = call(
        app,
        "POST",
        "/api/v1/pool/example.com/commit",
        Some(&body("acme", &token, "10.0.0.1")),
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (422, Some("unsupported-pool")));
    let (s, v) = call(app, "POST", c, Some(&body("acme", &token, "10.0.0.1"))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["state"].as_str(),
            v["loadBalancerIP"].as_str(),
            v["republished"].as_bool()
        ),
        (Some("active"), Some("10.0.0.1"), Some(false))
    );
    assert!(v.get("reservationToken").is_none() && v.get("expiresAt").is_none());
    let (s, v) = call(app, "POST", c, Some(&body("acme", &token, "10.0.0.1"))).await;
    assert_eq!(
        (s, v["republished"].as_bool()),
        (200, Some(true)),
        "commit is idempotent"
    );
    let (s, v) = call(app, "POST", c, Some(&body("acme", &token, "10.0.0.2"))).await;
    assert_eq!((s, v["error"].as_str()), (409, Some("already-active")));

    // list never shows tokens
    call(app, "POST", r, Some(&j(json!({"subdomain": "beta"})))).await;
    let (s, v) = call(app, "GET", "/api/v1/pool/Omani.Works/list", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["poolDomain"], "omani.works");
    let subs: Vec<_> = v["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["subdomain"].as_str().unwrap())
        .collect();
    assert_eq!(subs, ["acme", "beta"]);
    assert!(!v.to_string().contains("reservationToken"));
    assert_eq!(
        call(app, "GET", "/api/v1/pool/example.com/list", None)
            .await
            .0,
        422
    );

    // release: body, or ?sub= when there is no body
    let (s, v) = call(
        app,
        "DELETE",
        "/api/v1/pool/omani.works/release",
        Some(&j(json!({"subdomain": "acme"}))),
    )
    .await;
    assert_eq!((s, v["freed"]["state"].as_str()), (200, Some("active")));
    let (s, _) = call(
        app,
        "DELETE",
        "/api/v1/pool/omani.works/release?sub=beta",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = call(
        app,
        "DELETE",
        "/api/v1/pool/omani.works/release?sub=beta",
        None,
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (404, Some("not-found")));
    assert_eq!(
        call(
            app,
            "DELETE",
            "/api/v1/pool/omani.works/release?sub=-x",
            None
        )
        .await
        .0,
        422
    );
    assert_eq!(
        call(
            app,
            "DELETE",
            "/api/v1/pool/example.com/release?sub=acme",
            None
        )
        .await
        .0,
        422
    );
}

#[tokio::test]
async fn an_expired_reservation_answers_410() {
    let h = harness(
        Duration::from_millis(200),
        None,
        Registry::default(),
        Script::default(),
    )
    .await;
    let (_, v) = call(
        &h.app,
        "POST",
        "/api/v1/pool/omani.works/reserve",
        Some(&j(json!({"subdomain": "late"}))),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let body =
        j(json!({"subdomain": "late", "reservationToken": "wrong", "loadBalancerIP": "10.0.0.1"}));
    let (s, v2) = call(
        &h.app,
        "POST",
        "/api/v1/pool/omani.works/commit",
        Some(&body),
    )
    .await;
    assert_eq!(
        (s, v2["error"].as_str()),
        (410, Some("reservation-expired")),
        "expired wins over a wrong token"
    );
    let body = j(
        json!({"subdomain": "late", "reservationToken": v["reservationToken"], "loadBalancerIP": "10.0.0.1"}),
    );
    assert_eq!(
        call(
            &h.app,
            "POST",
            "/api/v1/pool/omani.works/commit",
            Some(&body)
        )
        .await
        .0,
        410
    );
}

#[tokio::test]
async fn pool_routes_without_a_manager_answer_503() {
    let dir = tempfile::tempdir().unwrap();
    let service = DeploymentService::start(
        Arc::new(FileStore::open(dir.path().join("d")).unwrap()),
        ScriptedProvisioner::new(Script::default()),
        ServiceConfig::default(),
    )
    .await
    .unwrap();
    let (auth, admin) = admin_auth(dir.path());
    let app = as_caller(
        catalyst_api::router(Arc::new(AppState::new(
            service,
            HetznerClient::new("http://127.0.0.1:9").unwrap(),
            auth,
        ))),
        &admin,
    );
    let (s, v) = call(&app, "GET", "/api/v1/pool/omani.works/check?sub=a", None).await;
    assert_eq!((s, v["error"].as_str()), (503, Some("pool-not-configured")));
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/registrar/cloudflare/validate",
        Some("{}"),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (503, Some("no-registrars-configured"))
    );
}

/// Collects log output of the current thread.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuf {
    type Writer = LogBuf;
    fn make_writer(&'a self) -> LogBuf {
        self.clone()
    }
}

#[tokio::test]
async fn registrar_routes_map_errors_and_never_echo_or_log_tokens() {
    // A Cloudflare stand-in: token "good" owns example.com, "bad" is rejected, "slow" is throttled.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|req: axum::extract::Request| async move {
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let ok = |result: Value| {
            (
                StatusCode::OK,
                axum::Json(json!({"success": true, "errors": [], "result": result})),
            )
        };
        match auth.as_str() {
            "Bearer SECRET-bad-token" => (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"success": false, "errors": [{"code": 10000}]})),
            ),
            "Bearer SECRET-slow-token" => (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({}))),
            _ => match req.uri().path() {
                "/cloudflare/zones" => ok(json!([{"id": "z1", "name": "example.com"}])),
                "/cloudflare/zones/z1" if req.method() == "GET" => {
                    ok(json!({"name_servers": ["ns1.openova.io", "ns2.openova.io"]}))
                }
                _ => ok(json!({})),
            },
        }
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let logs = LogBuf::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = harness(
        Duration::from_secs(60),
        None,
        Registry::with_all(&RegistrarUrls::all_at(&base)),
        Script::default(),
    )
    .await;
    let app = &h.app;
    let v_path = "/api/v1/registrar/Cloudflare/validate";
    let (s, v) = call(
        app,
        "POST",
        v_path,
        Some(&j(
            json!({"domain": " Example.COM ", "token": "SECRET-good-token"}),
        )),
    )
    .await;
    assert_eq!(
        (s, v.clone()),
        (
            200,
            json!({"valid": true, "registrar": "cloudflare", "domain": "example.com"})
        )
    );
    let (s, v) = call(
        app,
        "POST",
        v_path,
        Some(&j(
            json!({"domain": "example.com", "token": "SECRET-bad-token"}),
        )),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str(), v["registrar"].as_str()),
        (401, Some("invalid-token"), Some("cloudflare"))
    );
    let (s, v) = call(
        app,
        "POST",
        v_path,
        Some(&j(
            json!({"domain": "example.com", "token": "SECRET-slow-token"}),
        )),
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (429, Some("rate-limited")));
    let (s, v) = call(
        app,
        "POST",
        v_path,
        Some(&j(
            json!({"domain": "other.com", "token": "SECRET-good-token"}),
        )),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (403, Some("domain-not-in-account"))
    );
    let (s, v) = call(app, "POST", "/api/v1/registrar/gandi/validate", Some("{}")).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (404, Some("unsupported-registrar"))
    );
    assert_eq!(
        v["supported"],
        json!(["cloudflare", "dynadot", "godaddy", "namecheap", "ovh"])
    );
    assert_eq!(call(app, "POST", v_path, Some("nope")).await.0, 400);
    for (b, code) in [
        (json!({"token": "SECRET-good-token"}), "missing-domain"),
        (json!({"domain": "example.com"}), "missing-token"),
        (
            json!({"domain": "exa mple/../x", "token": "SECRET-good-token"}),
            "invalid-domain",
        ),
    ] {
        let (s, v) = call(app, "POST", v_path, Some(&j(b))).await;
        assert_eq!((s, v["error"].as_str()), (422, Some(code)));
    }
    let ns_path = "/api/v1/registrar/cloudflare/set-ns";
    let (s, v) = call(
        app,
        "POST",
        ns_path,
        Some(&j(
            json!({"domain": "example.com", "token": "SECRET-good-token", "nameservers": []}),
        )),
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (422, Some("missing-nameservers")));
    let (s, v) = call(app, "POST", ns_path, Some(&j(json!({"domain": "example.com", "token": "SECRET-good-token", "nameservers": ["NS1.openova.io.", "ns2.openova.io", "ns1.openova.io", ""]})))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["nameservers"],
        json!(["ns1.openova.io", "ns2.openova.io"])
    );
    assert!(v["propagation"].as_str().unwrap().starts_with("cloudflare"));
    let (s, _) = call(
        app,
        "POST",
        ns_path,
        Some(&j(
            json!({"domain": "example.com", "token": "SECRET-bad-token", "nameservers": ["a.b"]}),
        )),
    )
    .await;
    assert_eq!(s, 401);
    // Registrar down → 502.
    server.abort();
    let _ = server.await;
    let (s, v) = call(
        app,
        "POST",
        v_path,
        Some(&j(
            json!({"domain": "example.com", "token": "SECRET-good-token"}),
        )),
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (502, Some("api-unavailable")));

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("outcome") && text.contains("invalid-token"),
        "outcomes are logged:\n{text}"
    );
    assert!(
        !text.contains("SECRET"),
        "a token reached the logs:\n{text}"
    );
}

async fn wait_done(app: &axum::Router, id: &str) -> Value {
    for _ in 0..400 {
        let (_, v) = call(app, "GET", &format!("/api/v1/deployments/{id}"), None).await;
        if matches!(v["status"].as_str(), Some("ready" | "failed" | "cancelled")) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            return call(app, "GET", &format!("/api/v1/deployments/{id}"), None)
                .await
                .1;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("deployment {id} did not finish");
}

async fn allocation(app: &axum::Router, sub: &str) -> Option<Value> {
    let (_, v) = call(app, "GET", "/api/v1/pool/omani.works/list", None).await;
    v["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["subdomain"] == sub)
        .cloned()
}

#[tokio::test]
async fn pool_deployments_reserve_commit_and_release_their_name() {
    let h = harness(
        Duration::from_secs(600),
        None,
        Registry::default(),
        Script::default(),
    )
    .await;
    let app = &h.app;
    // Held by someone else → 409 subdomain-conflict, nothing created.
    call(
        app,
        "POST",
        "/api/v1/pool/omani.works/reserve",
        Some(&j(json!({"subdomain": "taken"}))),
    )
    .await;
    let (s, v) = create(app, "taken").await;
    assert_eq!((s, v["error"].as_str()), (409, Some("subdomain-conflict")));
    assert!(h.service.list(10, None).unwrap().is_empty());

    // Success → committed with the provisioner's load-balancer address.
    let id = create_ok(app, "omantel").await;
    let done = wait_done(app, &id).await;
    assert_eq!(done["status"], "ready");
    let a = allocation(app, "omantel").await.expect("allocation");
    assert_eq!(
        (a["state"].as_str(), a["loadBalancerIP"].as_str()),
        (Some("active"), Some("203.0.113.20"))
    );
    assert_eq!(a["createdBy"], format!("catalyst/deployment-{id}"));
    // subdomains/check answers from the allocator.
    let (_, v) = call(
        app,
        "POST",
        "/api/v1/subdomains/check",
        Some(&j(
            json!({"subdomain": "omantel", "poolDomain": "omani.works"}),
        )),
    )
    .await;
    assert_eq!(
        (v["available"].as_bool(), v["reason"].as_str()),
        (Some(false), Some("active-state"))
    );
    let (_, v) = call(
        app,
        "POST",
        "/api/v1/subdomains/check",
        Some(&j(
            json!({"subdomain": "taken", "poolDomain": "omani.works"}),
        )),
    )
    .await;
    assert_eq!(v["reason"], "reserved-state");
    let (_, v) = call(
        app,
        "POST",
        "/api/v1/subdomains/check",
        Some(&j(
            json!({"subdomain": "fresh", "poolDomain": "omani.works"}),
        )),
    )
    .await;
    assert_eq!(v["available"], true);
    // Delete → released.
    let (s, _) = call(app, "DELETE", &format!("/api/v1/deployments/{id}"), None).await;
    assert_eq!(s, 204);
    assert!(allocation(app, "omantel").await.is_none());
}

#[tokio::test]
async fn a_failed_deployment_releases_its_name_and_a_retry_takes_it_again() {
    let script = Script {
        fail: Some("boom".into()),
        ..Script::default()
    };
    let h = harness(Duration::from_secs(600), None, Registry::default(), script).await;
    let app = &h.app;
    let id = create_ok(app, "acme").await;
    assert_eq!(wait_done(app, &id).await["status"], "failed");
    assert!(
        allocation(app, "acme").await.is_none(),
        "released on failure"
    );
    let (s, v) = call(
        app,
        "POST",
        &format!("/api/v1/deployments/{id}/phases/tofu-apply/retry"),
        Some("{}"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        allocation(app, "acme").await.is_some(),
        "reserved again for the retry"
    );
    assert_eq!(wait_done(app, &id).await["status"], "failed");
    assert!(allocation(app, "acme").await.is_none());
}

#[tokio::test]
async fn over_http_with_a_real_powerdns() {
    let Some(mut pdns) = dns_support::Pdns::start() else {
        return;
    };
    let h = harness(
        Duration::from_secs(600),
        Some(pdns.client()),
        Registry::default(),
        Script::default(),
    )
    .await;
    let app = &h.app;
    let reserve = j(json!({"subdomain": "race"}));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (app, body) = (app.clone(), reserve.clone());
            tokio::spawn(async move {
                call(
                    &app,
                    "POST",
                    "/api/v1/pool/omani.works/reserve",
                    Some(&body),
                )
                .await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    let mut token = String::new();
    for t in tasks {
        let (s, v) = t.await.unwrap();
        if s == 201 {
            token = v["reservationToken"].as_str().unwrap().to_owned();
        }
        statuses.push(s);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        63,
        "{statuses:?}"
    );
    assert_eq!(
        pdns.zones().await,
        ["omani.works", "openova.io", "race.omani.works"]
    );

    let commit = j(
        json!({"subdomain": "race", "reservationToken": token, "sovereignFQDN": "race.omani.works", "loadBalancerIP": "198.51.100.7"}),
    );
    pdns.pause();
    let (s, v) = call(
        app,
        "POST",
        "/api/v1/pool/omani.works/commit",
        Some(&commit),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert!(
        v["warning"].as_str().unwrap().contains("retry commit")
            && v["detail"].as_str().unwrap().contains("powerdns write")
    );
    pdns.resume();
    let (s, v) = call(
        app,
        "POST",
        "/api/v1/pool/omani.works/commit",
        Some(&commit),
    )
    .await;
    assert_eq!(
        (s, v["republished"].as_bool(), v["dnsManaged"].as_bool()),
        (200, Some(true), Some(true)),
        "{v}"
    );
    let out = pdns.dig("harbor.race.omani.works", "A");
    assert!(
        dns_support::answers(&out)
            .iter()
            .any(|(_, t, d)| t == "A" && d == "198.51.100.7"),
        "{out}"
    );

    pdns.pause();
    let (s, v) = call(
        app,
        "DELETE",
        "/api/v1/pool/omani.works/release?sub=race",
        None,
    )
    .await;
    assert_eq!(
        (s, v["freed"]["state"].as_str()),
        (202, Some("active")),
        "{v}"
    );
    pdns.resume();
    let (s, v) = call(
        app,
        "DELETE",
        "/api/v1/pool/omani.works/release?sub=race",
        None,
    )
    .await;
    assert_eq!(
        (s, v["freed"]["state"].as_str()),
        (200, Some("releasing")),
        "release again finishes: {v}"
    );
    assert_eq!(
        dns_support::dig_status(&pdns.dig("race.omani.works", "A")),
        "NXDOMAIN"
    );
    assert_eq!(pdns.zones().await, ["omani.works", "openova.io"]);
}

#[tokio::test]
async fn a_cancelled_deployment_releases_its_name() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let script = Script {
        gate: Some(gate),
        ..Script::default()
    };
    let h = harness(Duration::from_secs(600), None, Registry::default(), script).await;
    let app = &h.app;
    let id = create_ok(app, "halt").await;
    let held = allocation(app, "halt")
        .await
        .expect("reserved while running");
    assert_eq!(held["state"], "reserved");
    let (s, _) = call(
        app,
        "POST",
        &format!("/api/v1/deployments/{id}/cancel"),
        None,
    )
    .await;
    assert!(s == 200 || s == 202, "{s}");
    assert_eq!(wait_done(app, &id).await["status"], "cancelled");
    assert!(
        allocation(app, "halt").await.is_none(),
        "released on cancel"
    );
}
