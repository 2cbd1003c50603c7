//! Shared benchmark support: the upstream baseline (whole record rewritten with temp file +
//! fsync + rename on every event) and a realistic event generator. Used by the persist bench
//! (catalyst-store) and the pipeline bench (catalyst-provision, via `#[path]`).
#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use catalyst_core::{
    DeploymentId, DeploymentRecord, DeploymentSpec, DeploymentStatus, DomainMode, Event,
    EventDraft, Level, RegionSpec,
};
use chrono::{TimeZone, Utc};
use serde::Serialize;

/// The baseline stops after this long and reports how far it got.
pub const BASELINE_BUDGET: Duration = Duration::from_secs(180);

pub fn id(n: u64) -> DeploymentId {
    DeploymentId::from_random_bytes(n.to_be_bytes())
}

pub fn record(id: &DeploymentId) -> DeploymentRecord {
    DeploymentRecord {
        id: id.clone(),
        status: DeploymentStatus::TofuApplying,
        spec: DeploymentSpec {
            org_name: "Omantel".into(),
            org_email: "ops@omantel.example".into(),
            sovereign_fqdn: "omantel.omani.works".into(),
            domain_mode: DomainMode::Pool,
            pool_domain: Some("omani.works".into()),
            subdomain: Some("omantel".into()),
            hetzner_project_id: "proj-7".into(),
            regions: vec![RegionSpec {
                provider: "hetzner".into(),
                cloud_region: "fsn1".into(),
                control_plane_size: "cpx32".into(),
                worker_size: "cpx42".into(),
                worker_count: 3,
            }],
            ha_enabled: false,
            ssh_public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxbenchkey bench".into(),
            components: Vec::new(),
        },
        result: None,
        error: None,
        started_at: Utc::now(),
        finished_at: None,
        last_seq: 0,
        dry_run: false,
        reservation: None,
        status_seq: 0,
    }
}

/// Realistic `tofu apply` output lines (~150 bytes of event JSON each).
pub fn events(n: u64) -> Vec<Event> {
    const RESOURCES: [&str; 6] = [
        "hcloud_server.control_plane[0]",
        "hcloud_server.worker[2]",
        "hcloud_load_balancer.ingress",
        "hcloud_network_subnet.nodes",
        "hcloud_firewall.cluster",
        "hcloud_ssh_key.sovereign_admin",
    ];
    let t0 = Utc
        .with_ymd_and_hms(2025, 3, 4, 5, 6, 7)
        .single()
        .unwrap_or_else(Utc::now);
    (1..=n)
        .map(|seq| {
            let r = RESOURCES[(seq % 6) as usize];
            EventDraft::new(
                t0 + chrono::Duration::seconds(seq as i64),
                "tofu",
                Level::Info,
                format!(
                    "{r}: Still creating... [{}m{}s elapsed]",
                    seq / 60,
                    seq % 60
                ),
            )
            .sequenced(seq)
        })
        .collect()
}

/// The upstream record: everything, events included, in one pretty JSON file.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamRecord<'a> {
    pub id: &'a str,
    pub status: &'a str,
    pub request: &'a DeploymentSpec,
    pub started_at: String,
    pub finished_at: &'a str,
    pub events: Vec<UpstreamEvent<'a>>,
}

#[derive(Serialize)]
pub struct UpstreamEvent<'a> {
    pub time: String,
    pub phase: &'a str,
    pub level: &'a str,
    pub message: &'a str,
}

/// Upstream's `Save`: encode the whole record, CreateTemp, write, fsync, close, rename.
pub fn baseline_save(
    dir: &Path,
    id: &str,
    rec: &UpstreamRecord<'_>,
    n: u64,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    let tmp = dir.join(format!(".{id}.{n}.json.tmp"));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(format!("{id}.json")))
}

/// Returns (events written, elapsed).
pub fn run_baseline(dir: &Path, evs: &[Event]) -> std::io::Result<(u64, Duration)> {
    fs::create_dir_all(dir)?;
    let d = id(1);
    let r = record(&d);
    let mut rec = UpstreamRecord {
        id: d.as_str(),
        status: "tofu-applying",
        request: &r.spec,
        started_at: r.started_at.to_rfc3339(),
        finished_at: "0001-01-01T00:00:00Z",
        events: Vec::new(),
    };
    let start = Instant::now();
    let mut done = 0;
    for e in evs {
        rec.events.push(UpstreamEvent {
            time: e.draft.time.to_rfc3339(),
            phase: &e.draft.phase,
            level: e.draft.level.as_str(),
            message: &e.draft.message,
        });
        done += 1;
        baseline_save(dir, d.as_str(), &rec, done)?;
        if start.elapsed() > BASELINE_BUDGET {
            break;
        }
    }
    Ok((done, start.elapsed()))
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub fn fresh(base: &Path, name: &str) -> PathBuf {
    let p = base.join(name);
    let _ = fs::remove_dir_all(&p);
    p
}
