//! SSE fan-out: N subscribers on one deployment while the pipeline emits events at a fixed rate;
//! delivery latency (emit → received by the client over HTTP) p50/p99, and a check that every
//! subscriber got every event once and in order.
//!
//! Run: `cargo bench -p catalyst-api --bench fanout` (env `FANOUT_SUBSCRIBERS`, `FANOUT_EVENTS`,
//! `FANOUT_RATE` override 1000, 3000, 1000/s).
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use catalyst_api::AppState;
use catalyst_core::{DeploymentStatus, Level};
use catalyst_provision::hetzner::HetznerClient;
use catalyst_provision::service::{DeploymentService, ServiceConfig};
use catalyst_provision::{EventSink, ProvisionError, ProvisionJob, ProvisionOutput, Provisioner};
use catalyst_store::file::FileStore;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Emits `events` log lines at `rate`/s, each carrying its emit time, once the gate opens.
struct PacedEmitter {
    events: usize,
    rate: u64,
    gate: Arc<Semaphore>,
}

#[async_trait]
impl Provisioner for PacedEmitter {
    fn name(&self) -> &'static str {
        "bench-paced-emitter"
    }
    fn dry_run(&self) -> bool {
        false
    }
    async fn provision(
        &self,
        _job: ProvisionJob,
        sink: EventSink,
        _cancel: CancellationToken,
    ) -> Result<ProvisionOutput, ProvisionError> {
        sink.status(DeploymentStatus::Provisioning).await;
        self.gate.acquire().await.expect("gate").forget();
        sink.status(DeploymentStatus::TofuApplying).await;
        let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / self.rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for _ in 0..self.events {
            tick.tick().await;
            sink.log("tofu", Level::Info, format!("t={}", now_nanos()))
                .await;
        }
        sink.status(DeploymentStatus::FluxBootstrapping).await;
        Ok(ProvisionOutput::default())
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[u128], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1e6
}

#[tokio::main]
async fn main() {
    let subscribers = env_or("FANOUT_SUBSCRIBERS", 1000);
    let events = env_or("FANOUT_EVENTS", 3000);
    let rate = env_or("FANOUT_RATE", 1000) as u64;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
    std::fs::create_dir_all(&root).unwrap();
    let dir = tempfile::tempdir_in(&root).unwrap();

    let gate = Arc::new(Semaphore::new(0));
    let provisioner = Arc::new(PacedEmitter {
        events,
        rate,
        gate: gate.clone(),
    });
    let store = Arc::new(FileStore::open(dir.path().join("deployments")).unwrap());
    let service = DeploymentService::start(store, provisioner, ServiceConfig::default())
        .await
        .unwrap();
    let auth = Arc::new(catalyst_api::auth::Authenticator::open(dir.path(), None).unwrap());
    let admin = auth
        .tokens()
        .create(catalyst_api::auth::Role::SovereignAdmin, None, "bench")
        .unwrap();
    let state = Arc::new(AppState::new(
        service.clone(),
        HetznerClient::new("http://127.0.0.1:9").unwrap(),
        auth,
    ));
    let app = catalyst_api::router(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {admin}").parse().unwrap(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .default_headers(headers)
        .build()
        .unwrap();
    let body = serde_json::json!({
        "orgName": "Bench", "orgEmail": "bench@example.com",
        "sovereignFQDN": "bench.example.com", "sovereignDomainMode": "byo-manual",
        "hetznerToken": "x".repeat(64), "hetznerProjectID": "1",
        "regions": [{"provider": "hetzner", "cloudRegion": "fsn1", "controlPlaneSize": "cpx32"}],
        "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl b@b"
    });
    let created: serde_json::Value = client
        .post(format!("http://{addr}/api/v1/deployments"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();

    let mut tasks = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let client = client.clone();
        let url = format!("http://{addr}/api/v1/deployments/{id}/logs");
        tasks.push(tokio::spawn(async move {
            let resp = client.get(url).send().await.unwrap();
            let mut stream = resp.bytes_stream();
            let mut buf = Vec::<u8>::new();
            let mut latencies = Vec::new();
            let mut ids = Vec::new();
            let mut done = false;
            while let Some(Ok(chunk)) = stream.next().await {
                let received = now_nanos();
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
                    let block: Vec<u8> = buf.drain(..pos + 2).collect();
                    let text = String::from_utf8_lossy(&block);
                    if text.contains("event: done") {
                        done = true;
                    }
                    for line in text.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            ids.push(v.parse::<u64>().unwrap());
                        }
                        if let Some(i) = line.find("\"t=") {
                            let rest = &line[i + 3..];
                            let end = rest.find('"').unwrap();
                            let sent: u128 = rest[..end].parse().unwrap();
                            latencies.push(received.saturating_sub(sent));
                        }
                    }
                }
            }
            (latencies, ids, done)
        }));
    }
    // Wait until every subscriber is attached, then start emitting.
    while state.metrics.subscribers() < subscribers as i64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = std::time::Instant::now();
    gate.add_permits(1);
    let mut all = Vec::with_capacity(subscribers * events);
    let mut reference: Option<Vec<u64>> = None;
    for t in tasks {
        let (lat, ids, done) = t.await.unwrap();
        assert!(done, "every subscriber got done");
        assert_eq!(lat.len(), events, "every subscriber got every event");
        assert_eq!(
            ids,
            (1..=ids.len() as u64).collect::<Vec<_>>(),
            "in order, once"
        );
        match &reference {
            Some(r) => assert_eq!(r, &ids),
            None => reference = Some(ids),
        }
        all.extend(lat);
    }
    let wall = started.elapsed();
    all.sort_unstable();
    println!(
        "fanout: {subscribers} subscribers × {events} events at {rate}/s: {} deliveries in {:.2}s; \
         delivery latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        wall.as_secs_f64(),
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 1.0),
    );
    println!("command: cargo bench -p catalyst-api --bench fanout");
}
