//! Rendering and committing one Sovereign's bootstrap tree (`clusters/<fqdn>/` of
//! `catalog/bootstrap/`, 12 components) to a new `system/sovereign-<id>` repository, as a
//! deployment does before its run; and, in the same run, rendering alone (no Git) and a commit
//! of an unchanged tree (a retry: nothing written). Prints median and p95 of each.
//!
//! `cargo bench -p catalyst-gitops --bench bootstrap` (`BENCH_TREES` overrides the count, 40).
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalyst_blueprint::load::load_catalog;
use catalyst_blueprint::Source;
use catalyst_gitops::bootstrap::{BootstrapSettings, SovereignChoice};
use catalyst_gitops::sovereign_git::SovereignRepos;
use catalyst_gitops::Actor;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut d: Vec<Duration>) {
    d.sort();
    println!(
        "{what:<34} n={:<4} median {:>8.2} ms   p95 {:>8.2} ms",
        d.len(),
        pct(&d, 0.5).as_secs_f64() * 1e3,
        pct(&d, 0.95).as_secs_f64() * 1e3
    );
}

fn main() {
    let n: usize = std::env::var("BENCH_TREES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog/bootstrap");
    let (catalog, _) = load_catalog(&[(Source::Public, dir)]).expect("catalog/bootstrap");
    let tmp = tempfile::tempdir().expect("tmp");
    let repos = SovereignRepos::new(
        tmp.path().join("git"),
        Arc::new(catalog),
        BootstrapSettings::default(),
    );
    let actor = Actor {
        name: "bench".into(),
        email: "bench@localhost".into(),
    };
    let (mut render, mut commit, mut again) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let choice = SovereignChoice {
            fqdn: format!("s{i}.omani.works"),
            region: "fsn1".into(),
            components: Vec::new(),
        };
        let t = Instant::now();
        repos.render(&choice).expect("render");
        render.push(t.elapsed());
        let id = format!("{i:016x}");
        let t = Instant::now();
        let c = repos.commit(&id, &choice, &actor, "bench").expect("commit");
        commit.push(t.elapsed());
        assert!(c.changed);
        let t = Instant::now();
        let c = repos.commit(&id, &choice, &actor, "bench").expect("commit");
        again.push(t.elapsed());
        assert!(!c.changed);
    }
    report("render only", render);
    report("render + commit (new repository)", commit);
    report("render + unchanged commit", again);
}
