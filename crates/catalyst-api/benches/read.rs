//! The read side over HTTP, through the real router with a sovereign-admin bearer token:
//!
//! - **Lists with 10 000 Applications in the projection** (10 Organizations × 3 Environments,
//!   ~333 App cards per Organization and Environment, installed as 3-deep `dependsOn` chains,
//!   with Flux statuses): `GET /api/v1/orgs/acme/applications?environment=dev` (334 cards) and
//!   the whole Organization (1 000 cards), 2 000 requests each, interleaved, p50/p95/p99; the
//!   tiny `GET /api/v1/orgs/acme/environments` alongside shows the fixed cost (router, token,
//!   one blocking hop).
//! - **Write → SSE delivery to 1 000 subscribers**: 1 000 `GET /api/v1/orgs/acme/events` streams,
//!   then 50 times one event appended to the spine (durable, from a blocking task); latency from
//!   before the append to each subscriber's frame with that event's id, p50/p99 over all 50 000
//!   deliveries.
//!
//! - **The same SSE delivery on JetStream** (when NATS answers at `$CATALYST_TEST_NATS_URL`,
//!   default 127.0.0.1:4222): the spine a `JetStreamLog` on a stream of the bench's own
//!   (deleted after), seeded with the same events; an append returns once JetStream
//!   acknowledged it and the mirror has it.
//!
//! The spine is seeded directly with events (no Git installs). Scratch under `target/bench-tmp`.
//!
//! `cargo bench -p catalyst-api --bench read`
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use catalyst_api::orgs::auth::{Authenticator, Role};
use catalyst_api::orgs::{router, OrgApi};
use catalyst_blueprint::render::RenderOptions;
use catalyst_gitops::Sovereign;
use catalyst_spine::{CloudEvent, EventDraft, FileLog, JetStreamConfig, JetStreamLog, Spine};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const ORGS: [&str; 10] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "wayne",
    "stark",
    "wonka",
    "tyrell",
    "cyberdyne",
];
/// `(envType, branch, Applications)`: 1 000 per Organization.
const ENVS: [(&str, &str, usize); 3] = [
    ("dev", "develop", 334),
    ("stg", "staging", 333),
    ("prod", "main", 333),
];
const REQUESTS: usize = 2_000;
const WARMUP: usize = 100;
const SUBSCRIBERS: usize = 1_000;
const ROUNDS: usize = 50;

fn commit(n: u64) -> String {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut s = String::with_capacity(40);
    for _ in 0..5 {
        x = x.rotate_left(13).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ n;
        s.push_str(&format!("{:08x}", x as u32));
    }
    s
}

fn time(n: u64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_796_547_600 + n as i64, 0).expect("time")
}

/// The seed: per Organization, `organization.created`, then per Environment one
/// `application.installed` per chain of up to three (`app-NNNN` → `app-NNNN+1` → …), then one
/// Flux report per Application (every 13th failed).
fn seed() -> Vec<CloudEvent> {
    let mut out = Vec::new();
    let mut n = 0u64;
    let mut next = || {
        n += 1;
        n
    };
    for org in ORGS {
        let envs: Vec<Value> = ENVS
            .iter()
            .map(|(t, _, _)| {
                json!({"environment": {"apiVersion": "catalyst.openova.io/v1", "kind": "Environment",
                        "metadata": {"name": format!("{org}-{t}")}, "spec": {"envType": t}},
                       "policy": {"requireApproval": *t == "prod"}})
            })
            .collect();
        let i = next();
        out.push(
            EventDraft {
                id: format!("git-{}", commit(i)),
                kind: "organization.created".into(),
                org: Some(org.into()),
                env: None,
                subject: org.into(),
                time: time(i),
                data: json!({"actor": "root", "organization": {"metadata": {"name": org}},
                             "environments": envs}),
            }
            .into_event(),
        );
        for (t, branch, count) in ENVS {
            let env = format!("{org}-{t}");
            let name = |k: usize| format!("app-{k:04}");
            for start in (0..count).step_by(3) {
                let i = next();
                let apps: Vec<Value> = (start..(start + 3).min(count))
                    .map(|k| {
                        let deps: Vec<String> = if k + 1 < (start + 3).min(count) {
                            vec![name(k + 1)]
                        } else {
                            vec![]
                        };
                        json!({"name": name(k), "environment": env, "envType": t, "branch": branch,
                               "commit": commit(i * 8 + k as u64), "blueprint": format!("bp-{}", k % 3),
                               "version": "1.0.0", "dependsOn": deps})
                    })
                    .collect();
                let commits: Vec<Value> = apps
                    .iter()
                    .map(|a| json!({"repo": format!("{org}/{}", a["name"].as_str().unwrap_or_default()), "branch": branch, "commit": a["commit"]}))
                    .collect();
                out.push(
                    EventDraft {
                        id: format!("git-{}", commit(i)),
                        kind: "application.installed".into(),
                        org: Some(org.into()),
                        env: Some(env.clone()),
                        subject: format!("{org}/{}", name(start)),
                        time: time(i),
                        data: json!({"actor": format!("dev@{org}.example"), "requestId": format!("req-{i}"),
                                     "commits": commits, "applications": apps}),
                    }
                    .into_event(),
                );
            }
            for k in 0..count {
                let i = next();
                let failed = k % 13 == 0;
                out.push(
                    EventDraft {
                        id: format!("flux-{i}"),
                        kind: if failed { "flux.failed" } else { "flux.ready" }.into(),
                        org: Some(org.into()),
                        env: Some(env.clone()),
                        subject: format!("{org}/{}", name(k)),
                        time: time(i),
                        data: json!({"application": name(k), "status": if failed { "failed" } else { "ready" },
                                     "revision": format!("{branch}@sha1:{}", commit(i)),
                                     "message": if failed { "Helm install failed" } else { "Helm install succeeded" }}),
                    }
                    .into_event(),
                );
            }
        }
    }
    out
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn get(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request")
}

/// One GET through the router, body read to the end.
async fn fetch(app: &Router, uri: &str, token: &str) -> (StatusCode, bytes::Bytes) {
    let resp = app.clone().oneshot(get(uri, token)).await.expect("router");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

fn report(name: &str, mut v: Vec<Duration>) -> Duration {
    v.sort();
    let p95 = pct(&v, 0.95);
    println!(
        "{name}: p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} requests)",
        ms(pct(&v, 0.50)),
        ms(p95),
        ms(pct(&v, 0.99)),
        ms(v[v.len() - 1]),
        v.len()
    );
    p95
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
    std::fs::create_dir_all(&root).expect("bench dir");
    let dir = tempfile::tempdir_in(&root).expect("tempdir");

    // The spine, seeded directly.
    let (log, _) = FileLog::open(dir.path().join("events")).expect("event log");
    let spine: Arc<dyn Spine> = Arc::new(log);
    let (app, token, api) = serve(spine.clone(), dir.path()).await;

    lists(&app, &token, &api).await;
    sse(&app, &token, &spine, "embedded log", 50.0).await;

    match catalyst_testkit::TestStream::new("bench_read") {
        None => println!("SSE on JetStream: skipped, NATS does not answer"),
        Some(stream) => {
            let mut config = JetStreamConfig::new(stream.url.clone());
            config.stream = stream.name.clone();
            config.subject_prefix = stream.prefix();
            config.kv_prefix = stream.kv_prefix();
            let log = tokio::task::spawn_blocking(move || JetStreamLog::open(config))
                .await
                .expect("open task")
                .expect("the JetStream spine");
            let spine: Arc<dyn Spine> = Arc::new(log);
            let js_dir = tempfile::tempdir_in(&root).expect("tempdir");
            let (app, token, _api) = serve(spine.clone(), js_dir.path()).await;
            sse(&app, &token, &spine, "JetStream", 100.0).await;
            drop(stream);
        }
    }
}

/// Seeds `spine`, opens a Sovereign and the Organization API over it; the router, a
/// sovereign-admin token and the API.
async fn serve(spine: Arc<dyn Spine>, dir: &std::path::Path) -> (Router, String, Arc<OrgApi>) {
    let events = seed();
    let seeded = events.len();
    {
        let spine = spine.clone();
        tokio::task::spawn_blocking(move || {
            let mut events = events;
            while !events.is_empty() {
                let rest = events.split_off(events.len().min(1_000));
                spine.append(events).expect("append");
                events = rest;
            }
        })
        .await
        .expect("seed");
    }
    let sovereign = Sovereign::open_with_spine(
        dir.join("git"),
        Arc::new(catalyst_blueprint::Catalog::new()),
        RenderOptions::default(),
        Some(spine.clone()),
    )
    .expect("sovereign");
    let auth = Arc::new(Authenticator::open(dir, None).expect("auth"));
    // 1 000 streams of one holder: past the default cap on purpose.
    auth.streams().set_max(SUBSCRIBERS + 10);
    let token = auth
        .tokens()
        .create(Role::SovereignAdmin, None, "bench")
        .expect("token");
    let api = Arc::new(OrgApi::new(Arc::new(sovereign), auth).expect("a spine"));
    let app = router(api.clone());
    let cards: usize = api
        .read
        .read(|p| p.orgs().values().map(|v| v.apps.len()).sum());
    println!(
        "seeded {seeded} events: {cards} App cards in {} Organizations",
        ORGS.len()
    );
    assert_eq!(cards, 10_000);
    (app, token, api)
}

/// The list cases and the in-process "used by" comparison.
async fn lists(app: &Router, token: &str, api: &OrgApi) {
    let token = token.to_owned();
    let env_uri = "/api/v1/orgs/acme/applications?environment=dev";
    let org_uri = "/api/v1/orgs/acme/applications";
    let tiny_uri = "/api/v1/orgs/acme/environments";
    for (uri, want) in [(env_uri, 334), (org_uri, 1_000)] {
        let (s, body) = fetch(app, uri, &token).await;
        assert_eq!(s, StatusCode::OK);
        let v: Value = serde_json::from_slice(&body).expect("json");
        let apps = v["applications"].as_array().expect("applications");
        assert_eq!(apps.len(), want, "{uri}");
        assert!(apps
            .iter()
            .any(|a| a["usedBy"].as_array().is_some_and(|u| !u.is_empty())));
        println!("{uri}: {} cards, {} KB", apps.len(), body.len() / 1024);
    }
    let (mut env_t, mut org_t, mut tiny_t) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..WARMUP + REQUESTS {
        for (uri, out) in [
            (env_uri, &mut env_t),
            (org_uri, &mut org_t),
            (tiny_uri, &mut tiny_t),
        ] {
            let t = Instant::now();
            let (s, body) = fetch(app, uri, &token).await;
            let took = t.elapsed();
            assert!(s == StatusCode::OK && !body.is_empty());
            if i >= WARMUP {
                out.push(took);
            }
        }
    }
    let p95_env = report("GET applications?environment=dev (334 cards)", env_t);
    let p95_org = report("GET applications, whole Organization (1 000 cards)", org_t);
    report(
        "GET environments (fixed cost: router, token, blocking hop)",
        tiny_t,
    );
    println!(
        "p95 target < 5 ms; upstream catalog-svc SLO p95 < 200 ms: {:.0}× (Environment page), {:.0}× (whole Organization)",
        200.0 / ms(p95_env),
        200.0 / ms(p95_org)
    );
    // "usedBy" in process, the way the page computes it (`Projection::cards`, one pass) against
    // asking `Projection::used_by` per card (what the page did before: quadratic), same run.
    let (mut one_pass, mut per_card) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let t = Instant::now();
        let n: usize = api.read.read(|p| {
            p.cards("acme", Some("acme-dev"))
                .into_iter()
                .map(|(_, users)| users.len())
                .sum()
        });
        one_pass.push(t.elapsed());
        let t = Instant::now();
        let m: usize = api.read.read(|p| {
            p.applications("acme", Some("acme-dev"))
                .into_iter()
                .map(|c| p.used_by(c).len())
                .sum()
        });
        per_card.push(t.elapsed());
        assert!(n > 0 && n == m);
    }
    one_pass.sort();
    per_card.sort();
    println!(
        "  usedBy for the 334 dev cards (in process): one pass p50 {:.3} ms, per card p50 {:.3} ms ({:.0}×)",
        ms(pct(&one_pass, 0.5)),
        ms(pct(&per_card, 0.5)),
        ms(pct(&per_card, 0.5)) / ms(pct(&one_pass, 0.5)).max(1e-6)
    );
}

/// Write → SSE delivery to 1 000 subscribers of acme's events on `spine` (`label`), against a
/// p99 target of `target_ms`.
async fn sse(app: &Router, token: &str, spine: &Arc<dyn Spine>, label: &str, target_ms: f64) {
    let token = token.to_owned();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    for _ in 0..SUBSCRIBERS {
        let resp = app
            .clone()
            .oneshot(get("/api/v1/orgs/acme/events", &token))
            .await
            .expect("router");
        assert_eq!(resp.status(), StatusCode::OK);
        let mut body = resp.into_body();
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut pending = String::new();
            while let Some(frame) = body.frame().await {
                let now = Instant::now();
                let Ok(data) = frame.expect("frame").into_data() else {
                    continue;
                };
                pending.push_str(std::str::from_utf8(&data).expect("utf-8"));
                while let Some(end) = pending.find("\n\n") {
                    let seq = pending[..end]
                        .lines()
                        .find_map(|l| l.strip_prefix("id: "))
                        .and_then(|s| s.trim().parse::<u64>().ok());
                    if let Some(seq) = seq {
                        if tx.send((seq, now)).is_err() {
                            return;
                        }
                    }
                    pending.drain(..end + 2);
                }
            }
        });
    }
    drop(tx);
    let mut deliveries = Vec::with_capacity(ROUNDS * SUBSCRIBERS);
    let mut appends = Vec::with_capacity(ROUNDS);
    // Round 0 warms up (every stream polled once) and is not counted.
    for round in 0..=ROUNDS {
        let event = EventDraft {
            id: format!("bench-sse-{label}-{round}"),
            kind: "application.upgraded".into(),
            org: Some("acme".into()),
            env: Some("acme-dev".into()),
            subject: "acme/app-0000".into(),
            time: chrono::Utc::now(),
            data: json!({"actor": "dev@acme.example", "requestId": format!("sse-{round}"),
                "commits": [{"repo": "acme/app-0000", "branch": "develop", "commit": commit(round as u64)}],
                "applications": [{"name": "app-0000", "environment": "acme-dev", "envType": "dev",
                    "branch": "develop", "commit": commit(round as u64), "blueprint": "bp-0",
                    "version": format!("1.0.{round}"), "dependsOn": ["app-0001"]}]}),
        }
        .into_event();
        let s = spine.clone();
        let t0 = Instant::now();
        let recorded = tokio::task::spawn_blocking(move || s.append(vec![event]))
            .await
            .expect("append task")
            .expect("append");
        let appended = t0.elapsed();
        let seq = recorded[0].catalystseq;
        let mut got = 0;
        while got < SUBSCRIBERS {
            let (s, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("a delivery within 30 s")
                .expect("subscribers alive");
            assert_eq!(s, seq, "every subscriber gets each event once, in order");
            got += 1;
            if round > 0 {
                deliveries.push(at - t0);
            }
        }
        if round > 0 {
            appends.push(appended);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    deliveries.sort();
    appends.sort();
    let p99 = pct(&deliveries, 0.99);
    println!(
        "SSE write → delivery on the {label}, {SUBSCRIBERS} subscribers × {ROUNDS} events: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} deliveries); append alone p50 {:.2} ms",
        ms(pct(&deliveries, 0.5)),
        ms(p99),
        ms(deliveries[deliveries.len() - 1]),
        deliveries.len(),
        ms(pct(&appends, 0.5))
    );
    println!(
        "p99 target < {target_ms} ms; upstream SSE SLO < 2 s: {:.0}×",
        2000.0 / ms(p99)
    );
}
