//! Install of a Blueprint with a 3-deep dependency chain (bp-shop → bp-api → bp-db: three
//! Application repositories, one commit each, plus the Environment's Flux plumbing in
//! system/catalyst-config) into a Sovereign already holding `BENCH_APPS` (default 10 000)
//! Applications, in process (gix); and the same through the `git` CLI backend holding
//! `BENCH_CLI_APPS` (default 1 000: filling 10 000 through the CLI takes too long), next to
//! gix at that size, interleaved in the same run. Prints the fill time of each and p50/p95/p99
//! from request to committed (fsynced) refs. `BENCH_WITHOUT_PLUMBING=1` adds gix without the
//! plumbing commit; `BENCH_DIR` puts the repositories elsewhere (a tmpfs leaves fsync out);
//! `BENCH_KEEP=1` leaves them there afterwards: deleting ~100 000 files makes ext4 slow to
//! allocate inodes for the next minutes (it skips recently freed ones one by one), which
//! would slow the next run down.
//!
//! `cargo bench -p catalyst-gitops --bench install` (`BENCH_APPS`, `BENCH_CLI_APPS`,
//! `BENCH_INSTALLS` override).
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
/// Applications (each install also moves the Environment's plumbing in
/// system/catalyst-config), through the `git` CLI when `cli`; returns it and the fill time.
fn filled(dir: &Path, apps: usize, plumbing: bool, cli: bool) -> (Sovereign, Duration) {
    let catalog_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/catalog");
    let (catalog, _) = load_catalog(&[(Source::Public, catalog_dir)]).expect("catalog");
    let s = Sovereign::open(dir.join("git"), Arc::new(catalog), RenderOptions::default())
        .expect("open");
    let s = if plumbing { s } else { s.without_plumbing() };
    let s = if cli { s.with_git_cli() } else { s };
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
    (s, start.elapsed())
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

/// One Sovereign measured: which backend, how full, with or without plumbing.
struct Setup {
    label: String,
    sovereign: Sovereign,
    commits: usize,
    times: Vec<Duration>,
    _dir: Option<tempfile::TempDir>,
}

fn main() {
    let apps = env_usize("BENCH_APPS", 10_000);
    let cli_apps = env_usize("BENCH_CLI_APPS", 1000);
    let installs = env_usize("BENCH_INSTALLS", 100);
    let without_plumbing = std::env::var("BENCH_WITHOUT_PLUMBING").is_ok_and(|v| v == "1");
    let keep = std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1");
    // Where the repositories live (`BENCH_DIR`, e.g. a tmpfs to leave fsync out): the system
    // temporary directory by default.
    let base = std::env::var_os("BENCH_DIR").map(std::path::PathBuf::from);
    let org = OrgName::parse("acme").expect("org");
    // (label, Applications, plumbing, CLI)
    let mut plan = vec![(format!("gix, {apps} Applications"), apps, true, false)];
    if cli_apps != apps && cli_apps > 0 {
        plan.push((
            format!("gix, {cli_apps} Applications"),
            cli_apps,
            true,
            false,
        ));
    }
    if cli_apps > 0 {
        plan.push((
            format!("git CLI, {cli_apps} Applications"),
            cli_apps,
            true,
            true,
        ));
    }
    if without_plumbing {
        plan.push((
            format!("gix without plumbing, {apps} Applications"),
            apps,
            false,
            false,
        ));
    }
    let mut setups = Vec::new();
    for (label, n, plumbing, cli) in plan {
        let dir = match &base {
            Some(b) => tempfile::tempdir_in(b),
            None => tempfile::tempdir(),
        }
        .expect("tempdir");
        let (sovereign, took) = filled(dir.path(), n, plumbing, cli);
        println!(
            "fill {label}: {:.1} s ({:.2} ms per install)",
            took.as_secs_f64(),
            took.as_secs_f64() * 1000.0 / n.max(1) as f64
        );
        setups.push(Setup {
            label,
            sovereign,
            commits: if plumbing { 4 } else { 3 },
            times: Vec::new(),
            _dir: if keep {
                println!("kept {}", dir.keep().display());
                None
            } else {
                Some(dir)
            },
        });
    }
    // Installs alternate between the setups so every one sees the same machine load.
    for i in 0..installs {
        for s in &mut setups {
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
                .sovereign
                .install(&call(format!("bench-{i}")), &org, &req)
                .expect("install");
            s.times.push(t.elapsed());
            assert_eq!(w.commits.len(), s.commits);
        }
    }
    for s in &mut setups {
        s.times.sort();
        println!(
            "install bp-shop (3-deep chain, {} repos) into a Sovereign, {}: n={installs} p50={:.1?} p95={:.1?} p99={:.1?} max={:.1?}",
            s.commits,
            s.label,
            pct(&s.times, 0.50),
            pct(&s.times, 0.95),
            pct(&s.times, 0.99),
            s.times[s.times.len() - 1]
        );
    }
    let find = |label: &str| setups.iter().find(|s| s.label == label);
    if let (Some(g), Some(c)) = (
        find(&format!("gix, {cli_apps} Applications"))
            .or(find(&format!("gix, {apps} Applications")).filter(|_| apps == cli_apps)),
        find(&format!("git CLI, {cli_apps} Applications")),
    ) {
        let ratio = |p: f64| pct(&c.times, p).as_secs_f64() / pct(&g.times, p).as_secs_f64();
        println!(
            "git CLI / gix at {cli_apps} Applications: p50 x{:.1}, p95 x{:.1}, p99 x{:.1}",
            ratio(0.50),
            ratio(0.95),
            ratio(0.99)
        );
    }
}
