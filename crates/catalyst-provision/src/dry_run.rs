//! The dry-run provisioner: walks the same phases and status changes as the OpenTofu one and
//! shows what it would hand to OpenTofu (the tfvars) and to the servers (cloud-init), but runs
//! nothing and creates nothing. It needs no tofu binary and writes no file.
use async_trait::async_trait;
use catalyst_core::DeploymentStatus;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::provisioner::{EventSink, ProvisionError, ProvisionJob, ProvisionOutput, Provisioner};
use crate::render::{self, TofuSettings, TFVARS_FILE};
use crate::tofu::{flux_bootstrap_message, phase};

/// Opening words of every dry-run event.
pub const DRY_RUN_MARK: &str = "[dry run — not applied]";

/// Renders everything, applies nothing, and says so.
#[derive(Debug, Clone, Default)]
pub struct DryRunProvisioner {
    settings: TofuSettings,
}

impl DryRunProvisioner {
    /// A dry-run provisioner rendering with `settings` (only `module_dir` is read, for the
    /// cloud-init templates; nothing is written to `work_root`).
    pub fn new(settings: TofuSettings) -> Self {
        DryRunProvisioner { settings }
    }

    /// The settings.
    pub fn settings(&self) -> &TofuSettings {
        &self.settings
    }
}

fn check(cancel: &CancellationToken) -> Result<(), ProvisionError> {
    if cancel.is_cancelled() {
        Err(ProvisionError::Cancelled)
    } else {
        Ok(())
    }
}

#[async_trait]
impl Provisioner for DryRunProvisioner {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    fn dry_run(&self) -> bool {
        true
    }

    async fn provision(
        &self,
        job: ProvisionJob,
        sink: EventSink,
        cancel: CancellationToken,
    ) -> Result<ProvisionOutput, ProvisionError> {
        let spec = &job.spec;
        let settings = &self.settings;
        let say = |phase: &'static str, text: String| {
            let sink = sink.clone();
            async move { sink.info(phase, format!("{DRY_RUN_MARK} {text}")).await }
        };

        sink.status(DeploymentStatus::Provisioning).await;
        check(&cancel)?;
        let tfvars = serde_json::to_string_pretty(&render::tfvars(&job, settings))
            .map_err(|e| ProvisionError::step("render tfvars", e.to_string()))?;
        let cloud_init = render::cloud_init(settings, &job)
            .map_err(|e| ProvisionError::step("render cloud-init", e.to_string()))?;
        say(
            phase::TOFU_INIT,
            format!(
                "Would stage the OpenTofu configuration from {} into {} and run `tofu init`.",
                settings.module_dir.display(),
                settings.workdir(&job.id).display()
            ),
        )
        .await;
        say(
            phase::TOFU_INIT,
            format!(
                "{TFVARS_FILE} would contain (the Hetzner token is not in it: OpenTofu gets it \
                 from the TF_VAR_hcloud_token environment variable only):\n{tfvars}"
            ),
        )
        .await;

        check(&cancel)?;
        sink.status(DeploymentStatus::TofuApplying).await;
        let primary = spec.primary();
        let control_planes = if spec.ha_enabled { 3 } else { 1 };
        say(
            phase::TOFU_PLAN,
            format!(
                "Would run `tofu plan` for a network, a firewall, an SSH key, {control_planes} \
                 control-plane server(s) of type {}, {} worker(s){} and a load balancer in {}.",
                primary.control_plane_size,
                primary.worker_count,
                if primary.worker_count > 0 {
                    format!(" of type {}", primary.worker_size)
                } else {
                    String::new()
                },
                primary.cloud_region
            ),
        )
        .await;

        check(&cancel)?;
        say(
            phase::TOFU_APPLY,
            "Would run `tofu apply`; no Hetzner resource is created.".to_owned(),
        )
        .await;
        say(
            phase::TOFU_APPLY,
            format!(
                "Cloud-init of control-plane node 1 (from {}):\n{}",
                settings.module_dir.display(),
                cloud_init.control_plane
            ),
        )
        .await;
        if primary.worker_count > 0 {
            say(
                phase::TOFU_APPLY,
                format!(
                    "Cloud-init of worker node 1 (from {}):\n{}",
                    settings.module_dir.display(),
                    cloud_init.worker
                ),
            )
            .await;
        }

        check(&cancel)?;
        say(
            phase::TOFU_OUTPUT,
            "Would read the OpenTofu outputs; nothing was created, so there are no IP addresses."
                .to_owned(),
        )
        .await;

        check(&cancel)?;
        sink.status(DeploymentStatus::FluxBootstrapping).await;
        say(
            phase::FLUX_BOOTSTRAP,
            format!("On a real run: {}", flux_bootstrap_message(&job, settings)),
        )
        .await;
        info!(deployment = %job.id, "Dry run finished; nothing was applied.");
        Ok(ProvisionOutput::default())
    }
}
