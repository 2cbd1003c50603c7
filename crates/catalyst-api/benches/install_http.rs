//! Install of a Blueprint with a 3-deep dependency chain (bp-shop → bp-api → bp-db: three
//! Application repositories, one commit each) into a Sovereign already holding `BENCH_APPS`
//! (default 1 000) Applications — through the whole path `catalyst serve` runs: HTTP router,
//! bearer-token check, dependency resolution, value validation, and admission of every
//! artifact (digest lookup in the `<data-dir>/oci` image layout and a signature check against a
//! trusted key) before the commits. Each measured HTTP install is paired, in the same run and on
//! the same repositories, with a direct `Sovereign::install` without HTTP, token or admission
//! (the figure `benches/install.rs` in catalyst-gitops measures), so the ratio is the price of
//! the full path.
//!
//! `cargo bench -p catalyst-api --bench install_http` (`BENCH_APPS`, `BENCH_INSTALLS` override).
#[path = "../tests/support/blueprints.rs"]
mod blueprints;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use catalyst_api::orgs::admission::{ArtifactStore, OciAdmission};
use catalyst_api::orgs::auth::{Authenticator, Role};
use catalyst_api::orgs::{router, OrgApi};
use catalyst_blueprint::render::RenderOptions;
use catalyst_blueprint::Source;
use catalyst_gitops::{Actor, AppName, Call, EnvType, InstallRequest, OrgName, Sovereign};
use catalyst_oci::layout::{Layout, LayoutRepo};
use catalyst_oci::package::package_dir;
use catalyst_oci::sign::{sign, PublicKey, SigningKey};
use catalyst_oci::store::Opener;
use catalyst_oci::transfer::push_package;
use catalyst_oci::TrustPolicy;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn call(id: String) -> Call {
    Call {
        actor: Actor {
            name: "bench".into(),
            email: "bench@acme.example".into(),
        },
        request_id: id,
        dry_run: false,
        if_match: None,
    }
}

fn install(app: String, blueprint: &str) -> InstallRequest {
    InstallRequest {
        app: AppName::parse(&app).expect("name"),
        env: EnvType::Dev,
        blueprint: blueprint.into(),
        values: json!({}),
        use_existing: Default::default(),
        dependency_values: Default::default(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let apps = env_usize("BENCH_APPS", 1000);
    let installs = env_usize("BENCH_INSTALLS", 100);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
    std::fs::create_dir_all(&root).expect("bench dir");
    let dir = tempfile::tempdir_in(&root).expect("tempdir");
    let data = dir.path().to_path_buf();

    // Three Blueprints, packaged, pushed into <data>/oci and signed.
    let src = data.join("src");
    let folders = [
        blueprints::blueprint(&src, "db", "bp-db", "1.0.0", ""),
        blueprints::blueprint(
            &src,
            "api",
            "bp-api",
            "1.0.0",
            "  depends:\n    - blueprint: bp-db\n      version: ^1\n",
        ),
        blueprints::blueprint(
            &src,
            "shop",
            "bp-shop",
            "1.0.0",
            "  depends:\n    - blueprint: bp-api\n      version: ^1\n",
        ),
    ];
    let key = SigningKey::generate();
    let layout = Layout::create(&data.join("oci")).expect("layout");
    for folder in &folders {
        let pkg = package_dir(folder).expect("package");
        let repo = LayoutRepo::new(layout.clone(), &pkg.chart_name);
        let digest = push_package(&pkg, &repo, None).await.expect("push");
        sign(&repo, &digest, &key).await.expect("sign");
    }
    let key_path = data.join("release.pub");
    std::fs::write(&key_path, key.public_key().to_pem().expect("pem")).expect("key");
    let (catalog, _) = catalyst_blueprint::load::load_catalog(&[(Source::Sovereign, src.clone())])
        .expect("catalog");
    let catalog = Arc::new(catalog);
    let admission = OciAdmission::new(
        ArtifactStore::Layout(data.join("oci")),
        Opener::default(),
        TrustPolicy {
            keys: vec![PublicKey::load(&key_path).expect("trusted key")],
            bundles: Vec::new(),
        },
    );
    let full = Arc::new(
        Sovereign::open_with_spine(
            data.join("git"),
            catalog.clone(),
            RenderOptions::default(),
            Some(Arc::new(
                catalyst_spine::FileLog::open(data.join("events"))
                    .expect("event log")
                    .0,
            )),
        )
        .expect("open")
        .with_admission(Arc::new(admission)),
    );
    let auth = Arc::new(Authenticator::open(&data, None).expect("auth"));
    let token = auth
        .tokens()
        .create(Role::SovereignAdmin, None, "bench")
        .expect("token");
    let app = router(Arc::new(OrgApi::new(full.clone(), auth).expect("a spine")));
    let send = |uri: &'static str, body: Value| {
        let app = app.clone();
        let req = Request::post(uri)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        async move {
            let resp = app.oneshot(req).await.expect("router");
            let status = resp.status();
            let bytes = resp.into_body().collect().await.expect("body").to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    for (uri, body) in [
        ("/api/v1/orgs", json!({"name": "acme"})),
        ("/api/v1/orgs/acme/environments", json!({"envType": "dev"})),
    ] {
        let (s, v) = send(uri, body).await;
        assert_eq!(s, StatusCode::CREATED, "{uri}: {v}");
    }

    // Fill: single-repository installs, admitted like any other.
    let start = Instant::now();
    let filler = full.clone();
    tokio::task::spawn_blocking(move || {
        let org = OrgName::parse("acme").expect("org");
        for i in 0..apps {
            filler
                .install(
                    &call(format!("fill-{i}")),
                    &org,
                    &install(format!("db-{i:05}"), "bp-db"),
                )
                .expect("fill");
        }
    })
    .await
    .expect("fill task");
    eprintln!("filled {apps} Applications in {:.1?}", start.elapsed());

    // The baseline: the same repositories through a second handle without admission.
    let bare = Arc::new(
        Sovereign::open(data.join("git"), catalog, RenderOptions::default()).expect("open"),
    );
    let (mut http, mut direct) = (Vec::new(), Vec::new());
    for i in 0..installs {
        let t = Instant::now();
        let (s, v) = send(
            "/api/v1/orgs/acme/applications",
            json!({"name": format!("shop-{i:04}"), "environment": "dev", "blueprint": "bp-shop"}),
        )
        .await;
        http.push(t.elapsed());
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["commits"].as_array().map(Vec::len), Some(3), "{v}");

        let b = bare.clone();
        let t = Instant::now();
        let w = tokio::task::spawn_blocking(move || {
            let org = OrgName::parse("acme").expect("org");
            b.install(
                &call(format!("direct-{i}")),
                &org,
                &install(format!("mall-{i:04}"), "bp-shop"),
            )
        })
        .await
        .expect("direct task")
        .expect("direct install");
        direct.push(t.elapsed());
        assert_eq!(w.commits.len(), 3);
    }
    // Every Flux source of the full path pins a digest, never a tag.
    let shop = full.app_repo(
        &OrgName::parse("acme").expect("org"),
        &AppName::parse("shop-0000").expect("app"),
    );
    let source = String::from_utf8(
        shop.read("develop", "flux/ocirepository.yaml")
            .expect("read")
            .expect("file"),
    )
    .expect("utf-8");
    assert!(source.contains("digest: sha256:"), "{source}");
    http.sort();
    direct.sort();
    println!(
        "install bp-shop (3-deep chain, 3 repos) into {apps} Applications, n={installs} each, interleaved:"
    );
    println!(
        "  HTTP + token + admission (signed, digest-pinned): p50={:.1?} p99={:.1?} max={:.1?}",
        pct(&http, 0.50),
        pct(&http, 0.99),
        http[http.len() - 1]
    );
    println!(
        "  direct Sovereign::install, no admission:          p50={:.1?} p99={:.1?} max={:.1?}",
        pct(&direct, 0.50),
        pct(&direct, 0.99),
        direct[direct.len() - 1]
    );
    println!(
        "  ratio full/direct: p50 {:.2}x, p99 {:.2}x",
        pct(&http, 0.50).as_secs_f64() / pct(&direct, 0.50).as_secs_f64(),
        pct(&http, 0.99).as_secs_f64() / pct(&direct, 0.99).as_secs_f64()
    );
}
