//! An Environment with many Applications, fed through a real event log (`FileLog`) into a
//! projection, and the console's members router over it: what the Environment page's test and
//! its benchmark (`benches/env_page.rs`, which includes this file) render.
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use catalyst_console::{Catalog, ConsoleState, Viewer};
use catalyst_provision::dry_run::DryRunProvisioner;
use catalyst_provision::render::TofuSettings;
use catalyst_provision::service::{DeploymentService, ServiceConfig};
use catalyst_spine::{EventDraft, FileLog, Projector, Spine};
use catalyst_store::file::FileStore;
use serde_json::json;

fn event(
    kind: &str,
    env: Option<&str>,
    data: serde_json::Value,
    n: usize,
) -> catalyst_spine::CloudEvent {
    EventDraft {
        id: format!("fixture-{n}"),
        kind: kind.into(),
        org: Some("acme".into()),
        env: env.map(Into::into),
        subject: "acme".into(),
        time: chrono::Utc::now(),
        data,
    }
    .into_event()
}

/// The members router over Organization `acme` whose `acme-dev` holds `apps` Applications
/// (`app-0`, `app-1`, …; every tenth uses the one before it; `app-N` with N % 7 == 0 failed).
pub async fn environment_with(dir: &Path, apps: usize) -> Router {
    let (log, _) = FileLog::open(dir.join("events")).unwrap();
    let spine: Arc<dyn Spine> = Arc::new(log);
    let mut events = vec![event(
        "organization.created",
        None,
        json!({"actor": "root", "organization": {"metadata": {"name": "acme"}},
               "environments": [{"environment": {"metadata": {"name": "acme-dev"}}, "policy": {"spec": {"rules": []}}}]}),
        0,
    )];
    // Installs of ten Applications each.
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
    let next = events.len();
    for n in (0..apps).step_by(7) {
        events.push(event(
            "flux.failed",
            Some("acme-dev"),
            json!({"application": format!("app-{n}"), "status": "failed", "message": "timeout"}),
            next + n,
        ));
    }
    spine.append(events).unwrap();
    let projector = Arc::new(Projector::new(spine));
    projector.catch_up();

    let settings = TofuSettings::new(dir.join("module"), dir.join("runs"));
    let store = Arc::new(FileStore::open(dir.join("deployments")).unwrap());
    let service = DeploymentService::start(
        store,
        Arc::new(DryRunProvisioner::new(settings)),
        ServiceConfig::default(),
    )
    .await
    .unwrap();
    let state = ConsoleState::new(service, Catalog::default()).with_read(projector);
    catalyst_console::routers(Arc::new(state)).members
}

/// `GET path` as an org-viewer of `acme`: the request.
pub fn viewer_get(path: &str) -> Request<Body> {
    let mut req = Request::get(path).body(Body::empty()).unwrap();
    req.extensions_mut().insert(Viewer {
        name: "viewer".into(),
        role: "org-viewer".into(),
        org: Some("acme".into()),
    });
    req
}
