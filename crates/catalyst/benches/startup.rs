//! Start-up with 10 000 finished deployments on disk: time from spawning `catalyst serve` to
//! `/readyz` answering 200.
//!
//! Run: `cargo bench -p catalyst --bench startup` (env `STARTUP_DEPLOYMENTS`, default 10000;
//! `STARTUP_EVENTS`, default 20 events each).
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use catalyst_core::{
    DeploymentId, DeploymentRecord, DeploymentSpec, DeploymentStatus, DomainMode, EventDraft,
    Level, ProvisionResult, RegionSpec,
};
use catalyst_store::file::FileStore;
use catalyst_store::DeploymentStore;
use chrono::Utc;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let n = env_or("STARTUP_DEPLOYMENTS", 10_000);
    let per = env_or("STARTUP_EVENTS", 20);
    let dir = common::scratch();
    let store = Arc::new(FileStore::open(dir.path().join("deployments")).unwrap());
    let made = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut bytes = [0u8; 8];
            bytes[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            let id = DeploymentId::from_random_bytes(bytes);
            let fqdn = format!("s{i}.example.com");
            let now = Utc::now();
            let mut record = DeploymentRecord {
                id: id.clone(),
                status: DeploymentStatus::Pending,
                spec: DeploymentSpec {
                    org_name: "Bench".into(),
                    org_email: "bench@example.com".into(),
                    sovereign_fqdn: fqdn.clone(),
                    domain_mode: DomainMode::ByoManual,
                    pool_domain: None,
                    subdomain: None,
                    hetzner_project_id: "1".into(),
                    regions: vec![RegionSpec {
                        provider: "hetzner".into(),
                        cloud_region: "fsn1".into(),
                        control_plane_size: "cpx32".into(),
                        worker_size: String::new(),
                        worker_count: 0,
                    }],
                    ha_enabled: false,
                    ssh_public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl b@b".into(),
                    components: Vec::new(),
                },
                result: None,
                error: None,
                started_at: now,
                finished_at: None,
                last_seq: 0,
                dry_run: false,
                reservation: None,
                status_seq: 0,
            };
            store.create(&record).await.unwrap();
            let events: Vec<_> = (0..per)
                .map(|k| {
                    EventDraft::new(now, "tofu", Level::Info, format!("hcloud_server.control_plane[0]: Still creating... [{k}0s elapsed]"))
                        .sequenced(k as u64 + 1)
                })
                .collect();
            store.append_events(&id, &events).await.unwrap();
            record.last_seq = per as u64;
            record.status = DeploymentStatus::Ready;
            record.finished_at = Some(now);
            record.result = Some(ProvisionResult::for_fqdn(&fqdn, None, None, false));
            store.save_snapshot(&record).await.unwrap();
        }));
        if tasks.len() >= 256 {
            for t in tasks.drain(..) {
                t.await.unwrap();
            }
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(store);
    println!(
        "prepared {n} finished deployments × {per} events in {:.1}s",
        made.elapsed().as_secs_f64()
    );

    let mut runs = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let c = common::Catalyst::start(
            dir.path(),
            &["--provisioner", "dry-run"],
            &[common::quiet()],
        );
        runs.push(c.wait_ready(started));
        drop(c);
    }
    let med: Duration = common::median(runs.clone());
    println!(
        "startup: {n} finished deployments on disk → /readyz 200 in median {:.0} ms (runs: {:?})",
        med.as_secs_f64() * 1e3,
        runs.iter()
            .map(|d| format!("{:.0}ms", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
    );
    println!("command: cargo bench -p catalyst --bench startup");
}
