//! The Environment page of an Environment with 1 000 Applications, rendered server-side from the
//! projection (issue 12's figure: p95 < 50 ms): the console's own router, called in process with
//! a signed-in org-viewer, the projection fed through a real event log (`FileLog`).
//!
//! The page shows the first 100 cards (failed first) with the status totals and a pager.
//!
//! Run: `cargo bench -p catalyst-console --bench env_page` (`ENV_PAGE_APPS`, `ENV_PAGE_RUNS`
//! override 1000 and 200).
use std::time::Instant;

use tower::ServiceExt;

#[path = "../tests/support/environment.rs"]
mod environment;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let apps = env_usize("ENV_PAGE_APPS", 1000);
    let runs = env_usize("ENV_PAGE_RUNS", 200);
    let dir = tempfile::tempdir().unwrap();
    let members = environment::environment_with(dir.path(), apps).await;
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs + 10 {
        let req = environment::viewer_get("/orgs/acme/environments/dev");
        let t = Instant::now();
        let resp = members.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        times.push(t.elapsed());
        bytes = body.len();
        let html = String::from_utf8_lossy(&body);
        assert!(html.contains("data-app=\"app-0\""), "the first page");
    }
    let mut times: Vec<_> = times.split_off(10); // warm-up left out
    times.sort();
    let q = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "env_page: {apps} Applications, {runs} renders, {} KiB each: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms (target p95 < 50 ms)",
        bytes / 1024,
        q(0.50).as_secs_f64() * 1e3,
        q(0.95).as_secs_f64() * 1e3,
        q(0.99).as_secs_f64() * 1e3,
    );
}
