//! The deployment state machine.
use serde::{Deserialize, Serialize};

/// Where a deployment is: `pending → provisioning → tofu-applying → flux-bootstrapping →
/// ready | failed | cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeploymentStatus {
    /// Accepted and stored; the pipeline has not started yet.
    Pending,
    /// The pipeline is preparing (staging the module, `tofu init`).
    Provisioning,
    /// `tofu plan` / `tofu apply` are running.
    TofuApplying,
    /// Infrastructure exists; outputs are read and Flux is bootstrapping on the new cluster.
    FluxBootstrapping,
    /// The pipeline finished successfully.
    Ready,
    /// The pipeline failed (or the control plane restarted under it).
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl DeploymentStatus {
    /// All statuses, in pipeline order.
    pub const ALL: [DeploymentStatus; 7] = [
        DeploymentStatus::Pending,
        DeploymentStatus::Provisioning,
        DeploymentStatus::TofuApplying,
        DeploymentStatus::FluxBootstrapping,
        DeploymentStatus::Ready,
        DeploymentStatus::Failed,
        DeploymentStatus::Cancelled,
    ];

    /// The wire/storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Pending => "pending",
            DeploymentStatus::Provisioning => "provisioning",
            DeploymentStatus::TofuApplying => "tofu-applying",
            DeploymentStatus::FluxBootstrapping => "flux-bootstrapping",
            DeploymentStatus::Ready => "ready",
            DeploymentStatus::Failed => "failed",
            DeploymentStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the wire/storage spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// True once the pipeline has stopped: `ready`, `failed` or `cancelled`.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DeploymentStatus::Ready | DeploymentStatus::Failed | DeploymentStatus::Cancelled
        )
    }

    fn rank(self) -> u8 {
        match self {
            DeploymentStatus::Pending => 0,
            DeploymentStatus::Provisioning => 1,
            DeploymentStatus::TofuApplying => 2,
            DeploymentStatus::FluxBootstrapping => 3,
            _ => 4,
        }
    }

    /// Whether the pipeline may move from `self` to `next`.
    ///
    /// In-flight statuses only move forward; any in-flight status may end (ready, failed,
    /// cancelled); a terminal deployment only leaves its state through a retry, which restarts
    /// it at `pending`.
    pub fn can_move_to(self, next: DeploymentStatus) -> bool {
        if self.is_terminal() {
            return next == DeploymentStatus::Pending;
        }
        if next.is_terminal() {
            return next != DeploymentStatus::Ready || self == DeploymentStatus::FluxBootstrapping;
        }
        next.rank() > self.rank()
    }
}

impl std::fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use DeploymentStatus::*;

    #[test]
    fn happy_path_is_allowed() {
        let path = [
            Pending,
            Provisioning,
            TofuApplying,
            FluxBootstrapping,
            Ready,
        ];
        for w in path.windows(2) {
            assert!(w[0].can_move_to(w[1]), "{} -> {}", w[0], w[1]);
        }
    }

    #[test]
    fn ready_only_after_flux() {
        assert!(!Provisioning.can_move_to(Ready));
        assert!(!TofuApplying.can_move_to(Ready));
        assert!(TofuApplying.can_move_to(Failed));
        assert!(Pending.can_move_to(Cancelled));
    }

    proptest! {
        #[test]
        fn never_backwards_while_in_flight(a in 0usize..7, b in 0usize..7) {
            let (from, to) = (DeploymentStatus::ALL[a], DeploymentStatus::ALL[b]);
            if from.can_move_to(to) && !from.is_terminal() && !to.is_terminal() {
                prop_assert!(to.rank() > from.rank());
            }
            if from.is_terminal() {
                prop_assert_eq!(from.can_move_to(to), to == Pending);
            }
        }

        #[test]
        fn spelling_round_trips(a in 0usize..7) {
            let s = DeploymentStatus::ALL[a];
            prop_assert_eq!(DeploymentStatus::parse(s.as_str()), Some(s));
        }
    }
}
