//! Before each run: the deployment's bootstrap tree is committed to Catalyst's own Git (by the
//! [`BootstrapPublisher`] wired in), and the run learns where Flux will read it and with which
//! read token. Without a publisher the run goes on with the operator's `gitops_repo_url`.
use std::sync::Arc;

use catalyst_core::Level;

use super::DeploymentService;
use crate::provisioner::{BootstrapPublisher, EventSink, ProvisionError, ProvisionJob};
use crate::tofu::phase;

impl DeploymentService {
    /// Wires the bootstrap-tree publisher in (once; later calls are ignored).
    pub fn set_bootstrap_publisher(&self, publisher: Arc<dyn BootstrapPublisher>) {
        let _ = self.bootstrap.set(publisher);
    }

    /// Commits `job`'s bootstrap tree (when a publisher is wired in) and returns the job with
    /// its Git source; the event says which commit Flux will reconcile.
    pub(super) async fn publish_bootstrap(
        &self,
        mut job: ProvisionJob,
        sink: &EventSink,
    ) -> Result<ProvisionJob, ProvisionError> {
        let Some(publisher) = self.bootstrap.get().cloned() else {
            return Ok(job);
        };
        let (id, spec) = (job.id.clone(), job.spec.clone());
        let published = tokio::task::spawn_blocking(move || publisher.publish(&id, &spec))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        match published {
            Ok(source) => {
                sink.info(
                    phase::FLUX_BOOTSTRAP,
                    format!(
                        "Committed the bootstrap tree {} of {} to {} (branch {}, commit {}); \
                         Flux on the new Sovereign reconciles it from there with this \
                         deployment's read token.",
                        source.path,
                        job.spec.sovereign_fqdn,
                        source.url,
                        source.branch,
                        source.commit
                    ),
                )
                .await;
                job.git = Some(source);
                Ok(job)
            }
            Err(message) => {
                sink.log(
                    phase::FLUX_BOOTSTRAP,
                    Level::Error,
                    format!("Could not commit the bootstrap tree: {message}"),
                )
                .await;
                Err(ProvisionError::step("commit the bootstrap tree", message))
            }
        }
    }
}
