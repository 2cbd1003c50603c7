//! Fixtures shared by the provisioner tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use catalyst_core::{
    DeploymentId, DeploymentSpec, DeploymentStatus, DomainMode, EventDraft, RegionSpec, Secret,
};
use catalyst_provision::render::TofuSettings;
use catalyst_provision::{
    EventSink, ProvisionError, ProvisionJob, ProvisionOutput, Provisioner, SinkMessage,
};
use tokio_util::sync::CancellationToken;

/// The Hetzner token of every fixture job; tests check it never leaks.
pub const TOKEN: &str = "hcloud-test-token-DO-NOT-LEAK-4f7c9a1e2b3d5f6a7b8c9d0e1f2a3b4c5d6e";

/// A fixed deployment id.
pub const ID: &str = "0123456789abcdef";

/// `crates/catalyst-provision`.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The OpenTofu configuration shipped in the repository.
pub fn module_dir() -> PathBuf {
    crate_dir().join("../../infra/hetzner")
}

/// The stand-in `tofu`.
pub fn standin() -> PathBuf {
    crate_dir().join("tests/standin/tofu")
}

/// A fixed, valid spec: pool mode, one region with two workers.
pub fn spec() -> DeploymentSpec {
    DeploymentSpec {
        org_name: "Acme Financial".into(),
        org_email: "platform@acme.io".into(),
        sovereign_fqdn: "omantel.omani.works".into(),
        domain_mode: DomainMode::Pool,
        pool_domain: Some("omani.works".into()),
        subdomain: Some("omantel".into()),
        hetzner_project_id: "1234567".into(),
        regions: vec![RegionSpec {
            provider: "hetzner".into(),
            cloud_region: "fsn1".into(),
            control_plane_size: "cpx32".into(),
            worker_size: "cpx42".into(),
            worker_count: 2,
        }],
        ha_enabled: false,
        ssh_public_key:
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl catalyst@test"
                .into(),
        components: Vec::new(),
    }
}

/// The fixed job.
pub fn job() -> ProvisionJob {
    ProvisionJob {
        id: DeploymentId::parse(ID).expect("fixture id"),
        spec: spec(),
        hetzner_token: Secret::new(TOKEN),
        attempt: 1,
        git: None,
    }
}

/// Settings with the shipped configuration and `work_root`.
pub fn settings(work_root: &Path) -> TofuSettings {
    TofuSettings::new(module_dir(), work_root)
}

/// Runs `prov` to the end, collecting everything it reported (through a small channel, so
/// back pressure is exercised). Returns once the provisioner returned and every sink clone is
/// gone.
pub async fn run(
    prov: &dyn Provisioner,
    job: ProvisionJob,
    cancel: CancellationToken,
    capacity: usize,
) -> (Result<ProvisionOutput, ProvisionError>, Vec<SinkMessage>) {
    let (sink, mut rx) = EventSink::channel(capacity);
    let collector = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(m) = rx.recv().await {
            all.push(m);
        }
        all
    });
    let result = prov.provision(job, sink, cancel).await;
    let messages = collector.await.expect("collector");
    (result, messages)
}

/// The status changes, in order.
pub fn statuses(messages: &[SinkMessage]) -> Vec<DeploymentStatus> {
    messages
        .iter()
        .filter_map(|m| match m {
            SinkMessage::Status(s) => Some(*s),
            SinkMessage::Event(_) => None,
        })
        .collect()
}

/// The events, in order.
pub fn events(messages: &[SinkMessage]) -> Vec<EventDraft> {
    messages
        .iter()
        .filter_map(|m| match m {
            SinkMessage::Event(e) => Some(e.clone()),
            SinkMessage::Status(_) => None,
        })
        .collect()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Panics when `needle` occurs in any file under `dir`.
pub fn assert_absent_from_files(dir: &Path, needle: &str) {
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{} contains the token",
            f.display()
        );
    }
}
