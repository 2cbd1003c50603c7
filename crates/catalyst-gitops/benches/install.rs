//! Install of a Blueprint with a 3-deep dependency chain (bp-shop → bp-api → bp-db: three
//! Application repositories, one commit each) into a Sovereign already holding
//! `BENCH_APPS` (default 1 000) Applications; prints p50/p99 from request to committed refs.
//!
//! `cargo bench -p catalyst-gitops --bench install` (`BENCH_APPS`, `BENCH_INSTALLS` override).
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalyst_blueprint::load::load_catalog;
use catalyst_blueprint::render::RenderOptions;
use catalyst_blueprint::Source;
use catalyst_gitops::{Actor, AppName, Call, EnvType, InstallRequest, OrgName, Sovereign};
use serde_json::json;

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

fn main() {
    let apps = env_usize("BENCH_APPS", 1000);
    let installs = env_usize("BENCH_INSTALLS", 100);
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/catalog");
    let (catalog, _) = load_catalog(&[(Source::Public, catalog_dir)]).expect("catalog");
    let s = Sovereign::open(
        dir.path().join("git"),
        Arc::new(catalog),
        RenderOptions::default(),
    )
    .expect("open");
    let org = OrgName::parse("acme").expect("org");
    let call = |id: String| Call {
        actor: Actor {
            name: "bench".into(),
            email: "bench@acme.example".into(),
        },
        request_id: id,
        dry_run: false,
        if_match: None,
    };
    s.create_org(&call("org".into()), &org, &json!({}))
        .expect("org");
    s.create_env(&call("env".into()), &org, EnvType::Dev, &json!([]))
        .expect("env");
    let start = Instant::now();
    for i in 0..apps {
        let req = InstallRequest {
            app: AppName::parse(&format!("db-{i:05}")).expect("name"),
            env: EnvType::Dev,
            blueprint: "bp-db".into(),
            values: json!({"size": "small"}),
            use_existing: Default::default(),
            dependency_values: Default::default(),
        };
        s.install(&call(format!("fill-{i}")), &org, &req)
            .expect("fill");
    }
    eprintln!("filled {apps} Applications in {:.1?}", start.elapsed());
    let mut times = Vec::with_capacity(installs);
    for i in 0..installs {
        let req = InstallRequest {
            app: AppName::parse(&format!("shop-{i:04}")).expect("name"),
            env: EnvType::Dev,
            blueprint: "bp-shop@^1".into(),
            values: json!({"replicas": 2}),
            use_existing: Default::default(),
            dependency_values: Default::default(),
        };
        let t = Instant::now();
        let w = s
            .install(&call(format!("bench-{i}")), &org, &req)
            .expect("install");
        times.push(t.elapsed());
        assert_eq!(w.commits.len(), 3);
    }
    times.sort();
    println!(
        "install bp-shop (3-deep chain, 3 repos) into a Sovereign with {apps} Applications: n={installs} p50={:.1?} p99={:.1?} max={:.1?}",
        pct(&times, 0.50),
        pct(&times, 0.99),
        times[times.len() - 1]
    );
}
