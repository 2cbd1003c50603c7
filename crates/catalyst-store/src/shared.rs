//! Several servers on one store (PostgreSQL): who runs which deployment, and word of every
//! change.
//!
//! - **Leases.** A deployment is run by the server holding its lease (a row in
//!   `catalyst_deployment_leases`: owner, a description of the holder, expiry on PostgreSQL's
//!   clock). The runner takes the lease before the deployment's row exists, renews it while the
//!   run lasts and releases it at the end. A lease that expired (its server died or lost the
//!   database) can be taken by any server, once: taking is one conditional upsert. The taker
//!   marks the deployment failed with the orphaned-resources message, so a deployment is never
//!   run twice and never stays in flight forever.
//! - **Changes.** Every write of the store sends a `NOTIFY` on a channel of the store's own
//!   (database and schema): `s <id>` (snapshot created or replaced), `e <id> <last seq>` (events
//!   appended), `d <id>` (deleted), `c <id>` (cancellation requested by another server). A
//!   server listens on one connection of its own and reconnects when it drops, answering each
//!   (re)connection with [`Change::Resync`] because notifications sent meanwhile are lost.

use std::time::Duration;

use async_trait::async_trait;
use catalyst_core::{DeploymentId, DeploymentRecord};
use tokio::sync::mpsc;

use crate::StoreError;

/// Who holds a lease: a stable id (one per data directory, so a restarted server recognises
/// its own leases) and a description for people (`pid=… listen=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseOwner {
    /// Stable identity compared when taking a lease.
    pub id: String,
    /// What operators see in messages about the holder.
    pub about: String,
}

/// One notification from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The snapshot was created or replaced: reload it.
    Snapshot(DeploymentId),
    /// Events were appended; the log now ends at `last_seq`.
    Events {
        /// The deployment.
        id: DeploymentId,
        /// Its last stored sequence number.
        last_seq: u64,
    },
    /// The deployment and its log were deleted.
    Deleted(DeploymentId),
    /// Another server asks the runner to cancel.
    CancelRequested(DeploymentId),
    /// Notifications may have been missed (first connection, or a reconnection): reload all.
    Resync,
}

impl Change {
    /// Parses a notification payload; `None` for anything else.
    pub fn parse(payload: &str) -> Option<Change> {
        let mut parts = payload.split(' ');
        let kind = parts.next()?;
        let id = DeploymentId::parse(parts.next()?).ok()?;
        let change = match kind {
            "s" => Change::Snapshot(id),
            "e" => Change::Events {
                id,
                last_seq: parts.next()?.parse().ok()?,
            },
            "d" => Change::Deleted(id),
            "c" => Change::CancelRequested(id),
            _ => return None,
        };
        parts.next().is_none().then_some(change)
    }

    /// The payload [`Change::parse`] reads (`None` for `Resync`, which is never sent).
    pub fn payload(&self) -> Option<String> {
        Some(match self {
            Change::Snapshot(id) => format!("s {id}"),
            Change::Events { id, last_seq } => format!("e {id} {last_seq}"),
            Change::Deleted(id) => format!("d {id}"),
            Change::CancelRequested(id) => format!("c {id}"),
            Change::Resync => return None,
        })
    }
}

/// Coordination between servers sharing one store.
#[async_trait]
pub trait SharedStore: Send + Sync + 'static {
    /// Takes the lease on `id` until now + `ttl` unless another owner holds one that has not
    /// expired (the same owner renews it). True when taken.
    async fn take_lease(
        &self,
        id: &DeploymentId,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Extends every lease `owner` holds; returns the deployments it still holds.
    async fn renew_leases(
        &self,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<Vec<DeploymentId>, StoreError>;

    /// Gives the lease on `id` up, when `owner` holds it.
    async fn release_lease(&self, id: &DeploymentId, owner: &LeaseOwner) -> Result<(), StoreError>;

    /// Deployments not finished whose lease expired or that have none: nobody runs them.
    async fn unleased(&self) -> Result<Vec<DeploymentId>, StoreError>;

    /// Who holds the lease on `id` (its description), if anyone does and it has not expired.
    async fn lease_holder(&self, id: &DeploymentId) -> Result<Option<String>, StoreError>;

    /// One deployment, with `last_seq` matching its stored log; `None` when it does not exist.
    async fn load(&self, id: &DeploymentId) -> Result<Option<DeploymentRecord>, StoreError>;

    /// Asks whichever server runs `id` to cancel it.
    async fn request_cancel(&self, id: &DeploymentId) -> Result<(), StoreError>;

    /// Starts listening; changes arrive on the receiver until it is dropped. The first item
    /// is [`Change::Resync`], once the listener is in place.
    fn changes(&self) -> mpsc::Receiver<Change>;
}

/// Milliseconds of a TTL as PostgreSQL takes them.
pub(crate) fn ttl_ms(ttl: Duration) -> f64 {
    ttl.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let id = DeploymentId::parse("0123456789abcdef").unwrap();
        for change in [
            Change::Snapshot(id.clone()),
            Change::Events {
                id: id.clone(),
                last_seq: 42,
            },
            Change::Deleted(id.clone()),
            Change::CancelRequested(id.clone()),
        ] {
            let payload = change.payload().unwrap();
            assert_eq!(Change::parse(&payload), Some(change), "{payload}");
        }
        assert_eq!(Change::Resync.payload(), None);
        for bad in [
            "",
            "s",
            "x 0123456789abcdef",
            "s 0123",
            "e 0123456789abcdef",
            "e 0123456789abcdef x",
            "s 0123456789abcdef extra",
        ] {
            assert_eq!(Change::parse(bad), None, "{bad:?}");
        }
    }
}
