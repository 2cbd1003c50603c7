//! The pool-domain allocator as the deployment service sees it: reserve a name when a
//! `pool`-mode deployment is created, commit it with the load-balancer address when the run
//! succeeds, release it when the run fails, is cancelled, or the deployment is deleted.
//! Implemented outside this crate (the API wires the pool-domain manager in).
use async_trait::async_trait;
use catalyst_core::deployment::PoolReservation;

/// Why a name operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is held by someone else.
    #[error("the subdomain is already reserved or active")]
    Conflict,
    /// The allocator could not complete the operation.
    #[error("pool-domain manager: {0}")]
    Unavailable(String),
}

/// Reserves, commits and releases pool subdomains.
#[async_trait]
pub trait NameAllocator: Send + Sync {
    /// Reserves `sub` under `pool`.
    async fn reserve(
        &self,
        pool: &str,
        sub: &str,
        created_by: &str,
    ) -> Result<PoolReservation, NameError>;
    /// Makes the reservation active with records pointing at `lb_ip`.
    async fn commit(
        &self,
        reservation: &PoolReservation,
        fqdn: &str,
        lb_ip: &str,
    ) -> Result<(), NameError>;
    /// Frees the name (an already-free name is not an error).
    async fn release(&self, reservation: &PoolReservation) -> Result<(), NameError>;
}
