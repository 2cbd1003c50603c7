//! Install of a Blueprint with a 3-deep dependency chain (bp-shop → bp-api → bp-db: three
//! Application repositories, one commit each) into a Sovereign already holding
//! `BENCH_APPS` (default 1 000) Applications; prints p50/p99 from request to committed refs,
//! with the Environment's Flux plumbing kept (a fourth commit, to system/catalyst-config) and
//! without it, interleaved in the same run.
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

/// A Sovereign under `dir` with `acme` and `acme-dev` filled with `apps` single-repository
/// Applications.
fn filled(dir: &Path, apps: usize, plumbing: bool) -> Sovereign {
    let catalog_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/catalog");
    let (catalog, _) = load_catalog(&[(Source::Public, catalog_dir)]).expect("catalog");
    let s = Sovereign::open(dir.join("git"), Arc::new(catalog), RenderOptions::default())
        .expect("open");
    let s = if plumbing { s } else { s.without_plumbing() };
    let org = OrgName::parse("acme").expect("org");
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
    eprintln!(
        "filled {apps} Applications ({}) in {:.1?}",
        if plumbing { "with plumbing" } else { "without" },
        start.elapsed()
    );
    s
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

fn main() {
    let apps = env_usize("BENCH_APPS", 1000);
    let installs = env_usize("BENCH_INSTALLS", 100);
    let org = OrgName::parse("acme").expect("org");
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    // The same Sovereign twice: keeping each Environment's Flux plumbing (the product), and
    // without it (the baseline); installs alternate between them so both see the same load.
    let with = filled(a.path(), apps, true);
    let without = filled(b.path(), apps, false);
    let (mut t_with, mut t_without) = (Vec::new(), Vec::new());
    for i in 0..installs {
        for (s, times, commits) in [(&with, &mut t_with, 4), (&without, &mut t_without, 3)] {
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
            assert_eq!(w.commits.len(), commits);
        }
    }
    for (label, times) in [
        ("with the Environment's plumbing (4 repos)", &mut t_with),
        ("without plumbing (3 repos, baseline)", &mut t_without),
    ] {
        times.sort();
        println!(
            "install bp-shop (3-deep chain) into a Sovereign with {apps} Applications, {label}: n={installs} p50={:.1?} p99={:.1?} max={:.1?}",
            pct(times, 0.50),
            pct(times, 0.99),
            times[times.len() - 1]
        );
    }
    let extra = |p: f64| pct(&t_with, p).saturating_sub(pct(&t_without, p));
    println!(
        "plumbing on top of the install: p50 +{:.1?}, p99 +{:.1?}",
        extra(0.50),
        extra(0.99)
    );
}
