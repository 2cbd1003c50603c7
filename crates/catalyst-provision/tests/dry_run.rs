//! The dry-run provisioner: same phases and statuses, nothing applied, no token anywhere.
mod common;

use catalyst_core::DeploymentStatus;
use catalyst_provision::dry_run::{DryRunProvisioner, DRY_RUN_MARK};
use catalyst_provision::tofu::phase;
use catalyst_provision::{ProvisionError, ProvisionOutput, Provisioner};
use common::*;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn walks_the_phases_and_shows_what_it_would_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let prov = DryRunProvisioner::new(settings(tmp.path()));
    assert_eq!(prov.name(), "dry-run");
    assert!(prov.dry_run());

    let (result, messages) = run(&prov, job(), CancellationToken::new(), 2).await;
    assert_eq!(result.unwrap(), ProvisionOutput::default());
    assert_eq!(
        statuses(&messages),
        [
            DeploymentStatus::Provisioning,
            DeploymentStatus::TofuApplying,
            DeploymentStatus::FluxBootstrapping
        ]
    );

    let events = events(&messages);
    let phases: Vec<&str> = events.iter().map(|e| e.phase.as_str()).collect();
    let mut distinct = phases.clone();
    distinct.dedup();
    assert_eq!(
        distinct,
        [
            phase::TOFU_INIT,
            phase::TOFU_PLAN,
            phase::TOFU_APPLY,
            phase::TOFU_OUTPUT,
            phase::FLUX_BOOTSTRAP
        ]
    );
    for e in &events {
        assert!(e.message.starts_with(DRY_RUN_MARK), "{}", e.message);
        assert!(
            !serde_json::to_string(e).unwrap().contains(TOKEN),
            "the token leaked into {}",
            e.message
        );
    }

    let tfvars = events
        .iter()
        .find(|e| e.message.contains("tofu.auto.tfvars.json would contain"))
        .expect("tfvars event");
    let json_start = tfvars.message.find('{').unwrap();
    let shown: serde_json::Value = serde_json::from_str(&tfvars.message[json_start..]).unwrap();
    assert_eq!(shown["deployment_id"], ID);
    assert_eq!(shown["sovereign_fqdn"], "omantel.omani.works");
    assert!(shown.get("hcloud_token").is_none());

    let control_plane = events
        .iter()
        .find(|e| e.message.contains("Cloud-init of control-plane node 1"))
        .expect("control-plane cloud-init event");
    assert!(control_plane.message.contains("#cloud-config"));
    // Flux reads the Sovereign's own bootstrap folder; the read token is a placeholder.
    assert!(control_plane
        .message
        .contains("path: \"./clusters/omantel.omani.works\""));
    assert!(control_plane
        .message
        .contains(catalyst_provision::render::GIT_TOKEN_PLACEHOLDER));
    assert!(events
        .iter()
        .any(|e| e.message.contains("Cloud-init of worker node 1")
            && e.message.contains("#cloud-config")));

    // Nothing was written.
    assert!(files_under(tmp.path()).is_empty());
}

#[tokio::test]
async fn honours_cancellation() {
    let tmp = tempfile::tempdir().unwrap();
    let prov = DryRunProvisioner::new(settings(tmp.path()));
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (result, messages) = run(&prov, job(), cancel, 2).await;
    assert!(matches!(result, Err(ProvisionError::Cancelled)));
    assert_eq!(statuses(&messages), [DeploymentStatus::Provisioning]);
}
