//! A pushed values change, server side from the received request to the acknowledgement:
//! `Sovereign::receive_pack` parsing the commands, storing the thin pack in quarantine
//! (`git index-pack`), judging the commit as the API's `set_values` would (render and compare
//! every generated file), migrating the pack and moving the branch through `apply` (journal,
//! plumbing check, the event appended durably to the spine). Pushes are built beforehand by a
//! real `git` (a chain of commits, each changing `storageGi` in `values.yaml` and the
//! HelmRelease) and sent one after another; prints p50/p95/p99.
//!
//! `cargo bench -p catalyst-gitops --bench push` (`BENCH_PUSHES`, default 200).
#[path = "../tests/push_support/mod.rs"]
mod push_support;

use std::time::{Duration, Instant};

use push_support::*;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let pushes: usize = std::env::var("BENCH_PUSHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let s = sovereign(dir.path());
    let work = working_copy(&s, &dir.path().join("work"));
    let bodies: Vec<Vec<u8>> = (0..pushes)
        .map(|i| values_push(&s, &work, 11 + (i % 2000) as u32, false).2)
        .collect();
    let mut times = Vec::with_capacity(pushes);
    for (i, body) in bodies.iter().enumerate() {
        let c = call("bench", format!("push-{i}"), None);
        let t = Instant::now();
        let out = s.receive_pack(&c, "acme", APP, body).expect("push");
        times.push(t.elapsed());
        assert!(accepted(&out), "{}", String::from_utf8_lossy(&out));
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "push (values change, receive → acknowledged), {pushes} pushes: p50 {:.1?}  p95 {:.1?}  p99 {:.1?}  mean {:.1?}  max {:.1?}",
        pct(&times, 0.5),
        pct(&times, 0.95),
        pct(&times, 0.99),
        mean,
        times[times.len() - 1]
    );
}
