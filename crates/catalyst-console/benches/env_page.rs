//! The Environment page of an Environment with 1 000 Applications, rendered server-side from the
//! projection (issue 12's figure: p95 < 50 ms): the console's own router, called in process with
//! a signed-in org-viewer, the projection fed through a real event log (`FileLog`).
//!
//! Run: `cargo bench -p catalyst-console --bench env_page` (`ENV_PAGE_APPS`, `ENV_PAGE_RUNS`
//! override 1000 and 200).
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use catalyst_console::{Catalog, ConsoleState, Viewer};
use catalyst_provision::dry_run::DryRunProvisioner;
use catalyst_provision::render::TofuSettings;
use catalyst_provision::service::{DeploymentService, ServiceConfig};
use catalyst_spine::{EventDraft, FileLog, Projector, Spine};
use catalyst_store::file::FileStore;
use serde_json::json;
use tower::ServiceExt;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn event(
    kind: &str,
    env: Option<&str>,
    data: serde_json::Value,
    n: usize,
) -> catalyst_spine::CloudEvent {
    EventDraft {
        id: format!("bench-{n}"),
        kind: kind.into(),
        org: Some("acme".into()),
        env: env.map(Into::into),
        subject: "acme".into(),
        time: chrono::Utc::now(),
        data,
    }
    .into_event()
}

#[tokio::main]
async fn main() {
    let apps = env_usize("ENV_PAGE_APPS", 1000);
    let runs = env_usize("ENV_PAGE_RUNS", 200);
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = FileLog::open(dir.path().join("events")).unwrap();
    let spine: Arc<dyn Spine> = Arc::new(log);
    let mut events = vec![event(
        "organization.created",
        None,
        json!({"actor": "root", "organization": {"metadata": {"name": "acme"}},
               "environments": [{"environment": {"metadata": {"name": "acme-dev"}}, "policy": {"spec": {"rules": []}}}]}),
        0,
    )];
    // Installs of ten Applications each; every tenth Application uses the one before it.
    for batch in 0..apps.div_ceil(10) {
        let applications: Vec<_> = (0..10)
            .map(|i| batch * 10 + i)
            .filter(|n| *n < apps)
            .map(|n| {
                let deps: Vec<String> = if n % 10 == 9 {
                    vec![format!("app-{}", n - 1)]
                } else {
                    vec![]
                };
                json!({"name": format!("app-{n}"), "environment": "acme-dev", "envType": "dev",
                       "branch": "develop", "commit": format!("{n:040x}"), "blueprint": "bp-valkey",
                       "version": "1.0.0", "dependsOn": deps})
            })
            .collect();
        events.push(event(
            "application.installed",
            Some("acme-dev"),
            json!({"actor": "ann", "requestId": format!("r{batch}"), "commits": [], "applications": applications}),
            batch + 1,
        ));
    }
    spine.append(events).unwrap();
    let projector = Arc::new(Projector::new(spine));
    projector.catch_up();

    let settings = TofuSettings::new(dir.path().join("module"), dir.path().join("runs"));
    let store = Arc::new(FileStore::open(dir.path().join("deployments")).unwrap());
    let service = DeploymentService::start(
        store,
        Arc::new(DryRunProvisioner::new(settings)),
        ServiceConfig::default(),
    )
    .await
    .unwrap();
    let state = ConsoleState::new(service, Catalog::default()).with_read(projector);
    let members = catalyst_console::routers(Arc::new(state)).members;
    let viewer = Viewer {
        name: "viewer".into(),
        role: "org-viewer".into(),
        org: Some("acme".into()),
    };
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs + 10 {
        let mut req = Request::get("/orgs/acme/environments/dev")
            .body(Body::empty())
            .unwrap();
        req.extensions_mut().insert(viewer.clone());
        let t = Instant::now();
        let resp = members.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        times.push(t.elapsed());
        bytes = body.len();
        assert!(String::from_utf8_lossy(&body).contains(&format!("data-app=\"app-{}\"", apps - 1)));
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
