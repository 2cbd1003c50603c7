//! Builders shared by the store tests.
#![allow(dead_code)]

use catalyst_core::{
    DeploymentId, DeploymentRecord, DeploymentSpec, DeploymentStatus, DomainMode, Event,
    EventDraft, Level, RegionSpec,
};
use chrono::{TimeZone, Utc};

/// A deployment id made from a number.
pub fn id(n: u64) -> DeploymentId {
    DeploymentId::from_random_bytes(n.to_be_bytes())
}

/// A pending record with a plausible spec.
pub fn record(id: &DeploymentId) -> DeploymentRecord {
    DeploymentRecord {
        id: id.clone(),
        status: DeploymentStatus::Pending,
        spec: DeploymentSpec {
            org_name: "Omantel".into(),
            org_email: "ops@omantel.example".into(),
            sovereign_fqdn: "k8s.omantel.example".into(),
            domain_mode: DomainMode::ByoManual,
            pool_domain: None,
            subdomain: None,
            hetzner_project_id: "proj-1".into(),
            regions: vec![RegionSpec {
                provider: "hetzner".into(),
                cloud_region: "fsn1".into(),
                control_plane_size: "cpx32".into(),
                worker_size: "cpx42".into(),
                worker_count: 2,
            }],
            ha_enabled: false,
            ssh_public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx test".into(),
            components: Vec::new(),
        },
        result: None,
        error: None,
        started_at: Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).single().unwrap(),
        finished_at: None,
        last_seq: 0,
        dry_run: false,
        reservation: None,
        status_seq: 0,
    }
}

/// Events `from..=to`, tofu-like lines.
pub fn events(from: u64, to: u64) -> Vec<Event> {
    (from..=to)
        .map(|seq| {
            EventDraft::new(
                Utc.timestamp_opt(1_735_787_045 + seq as i64, 0)
                    .single()
                    .unwrap(),
                "tofu",
                if seq % 7 == 0 {
                    Level::Warn
                } else {
                    Level::Info
                },
                format!("hcloud_server.control_plane[0]: Still creating... [{seq}s elapsed]"),
            )
            .sequenced(seq)
        })
        .collect()
}
