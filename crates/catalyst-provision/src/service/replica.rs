//! Several servers on one shared store.
//!
//! - A deployment is run by the server holding its lease ([`SharedStore::take_lease`]): taken
//!   before the deployment's row exists (create) or before a retry claims the run, renewed every
//!   third of its TTL while the run lasts, released when the run has stored its end.
//! - Every server sweeps for in-flight deployments whose lease expired (their server died):
//!   the one that takes the lease fails the deployment with the orphaned-resources message. A
//!   server that finds it lost a lease it still runs under stops that run (someone else has
//!   failed it already), so nothing runs twice.
//! - Every server follows the others' deployments through the store's change notifications:
//!   snapshots are reloaded, appended events move the deployment's head (subscribers read them
//!   from the store), deletions drop it, and a cancellation asked of another server is passed
//!   on to the runner.

use std::sync::Arc;
use std::time::Duration;

use catalyst_core::{DeploymentId, DeploymentRecord};
use catalyst_store::{Change, LeaseOwner, SharedStore, StoreError};
use tracing::{error, info, warn};

use super::{
    list_key, spine_events_of, Deployment, DeploymentService, DeploymentView, ServiceError,
    StopReason,
};

/// How this server shares its store with others.
#[derive(Clone)]
pub struct Coordination {
    /// The store's leases and notifications (the same store as the service's).
    pub shared: Arc<dyn SharedStore>,
    /// This server, as lease holder.
    pub owner: LeaseOwner,
    /// How long a lease lasts without renewal: how long a dead server's deployment stays in
    /// flight before another server fails it.
    pub lease_ttl: Duration,
}

impl std::fmt::Debug for Coordination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordination")
            .field("owner", &self.owner)
            .field("lease_ttl", &self.lease_ttl)
            .finish_non_exhaustive()
    }
}

impl DeploymentService {
    fn is_local(&self, id: &DeploymentId) -> bool {
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    /// Takes the lease on `id` (always granted without a shared store). True when this server
    /// may run it.
    pub(super) async fn take_lease(&self, id: &DeploymentId) -> Result<bool, StoreError> {
        let Some(c) = &self.coordination else {
            return Ok(true);
        };
        // Marked first, so the store's notifications about it are known to be this server's.
        let newly = self
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone());
        let taken = c.shared.take_lease(id, &c.owner, c.lease_ttl).await;
        if !matches!(taken, Ok(true)) && newly {
            self.local
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
        }
        taken
    }

    /// Gives the lease on `id` up; a failure is logged (the lease then expires on its own, and
    /// the deployment it guards has finished).
    pub(super) async fn release_lease(&self, id: &DeploymentId) {
        let Some(c) = &self.coordination else {
            return;
        };
        if let Err(e) = c.shared.release_lease(id, &c.owner).await {
            warn!(deployment = %id, error = %e, "Releasing a deployment lease failed; it expires on its own.");
        }
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Starts following the other servers: store notifications, lease renewal, orphan sweeps.
    pub(super) fn follow_other_servers(self: &Arc<Self>) {
        let Some(c) = &self.coordination else {
            return;
        };
        let mut changes = c.shared.changes();
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                let change = tokio::select! {
                    change = changes.recv() => change,
                    _ = service.shutdown.cancelled() => return,
                };
                let Some(change) = change else { return };
                if let Err(e) = service.apply_change(change).await {
                    warn!(error = %e, "Following another server's change failed; the next notification or resync catches up.");
                }
            }
        });
        let service = self.clone();
        let period = c.lease_ttl / 3;
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = service.shutdown.cancelled() => return,
                }
                match service.keep_leases().await {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        warn!(error = %e, "Renewing deployment leases failed; retrying. Runs whose lease expires meanwhile are failed by another server.");
                    }
                    Err(_) => {}
                }
            }
        });
    }

    /// Renews this server's leases, stops runs whose lease another server took, and fails the
    /// deployments nobody holds a lease on any more.
    async fn keep_leases(&self) -> Result<(), StoreError> {
        let Some(c) = &self.coordination else {
            return Ok(());
        };
        let held = c.shared.renew_leases(&c.owner, c.lease_ttl).await?;
        let running: Vec<Arc<Deployment>> = {
            let map = self.deployments.read().unwrap_or_else(|p| p.into_inner());
            map.values()
                .filter(|d| d.lock().run.is_some())
                .cloned()
                .collect()
        };
        // A run whose lease was released has ended (the release comes just before its slot
        // frees up); only one that still counts as this server's has lost its lease.
        for dep in running
            .iter()
            .filter(|d| !held.contains(&d.id) && self.is_local(&d.id))
        {
            error!(deployment = %dep.id, "This server lost the lease of a deployment it runs (it could not renew in time) and another server has failed it; stopping the run here.");
            self.stop_run(dep, StopReason::Shutdown);
        }
        for id in c.shared.unleased().await? {
            if self.is_local(&id) || !self.take_lease(&id).await? {
                continue;
            }
            let failed = self.fail_unleased(&id).await;
            self.release_lease(&id).await;
            failed?;
        }
        Ok(())
    }

    /// Fails `id`, whose lease this server just took because it had expired, unless it
    /// finished meanwhile.
    async fn fail_unleased(&self, id: &DeploymentId) -> Result<(), StoreError> {
        let Some(c) = &self.coordination else {
            return Ok(());
        };
        let Some(record) = c.shared.load(id).await? else {
            return Ok(());
        };
        let dep = self.adopt(record).await;
        if dep.lock().record.status.is_terminal() {
            return Ok(());
        }
        info!(deployment = %id, "The server running this deployment stopped renewing its lease.");
        self.fail_orphan(&dep).await
    }

    /// Cancels a run of this server with `reason` (a reason already set wins).
    pub(super) fn stop_run(&self, dep: &Deployment, reason: StopReason) -> bool {
        let inner = dep.lock();
        let Some(run) = &inner.run else {
            return false;
        };
        run.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(reason);
        run.cancel.cancel();
        true
    }

    /// `cancel` of a deployment another server runs: the runner is asked through the store;
    /// waits (up to `wait`) to see it finish.
    pub(super) async fn cancel_elsewhere(
        &self,
        dep: &Arc<Deployment>,
        wait: Duration,
    ) -> Result<DeploymentView, ServiceError> {
        let Some(c) = &self.coordination else {
            // Without a shared store every in-flight deployment runs here.
            return Err(ServiceError::Finished(dep.lock().record.status));
        };
        c.shared.request_cancel(&dep.id).await?;
        info!(deployment = %dep.id, "Cancellation requested of the server running it.");
        let mut head = dep.head.subscribe();
        let finished = async {
            while !dep.view().record.status.is_terminal() {
                if head.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(wait, finished).await;
        Ok(dep.view())
    }

    async fn apply_change(&self, change: Change) -> Result<(), StoreError> {
        match change {
            Change::CancelRequested(id) => {
                if let Ok(dep) = self.get(&id) {
                    if self.stop_run(&dep, StopReason::User) {
                        info!(deployment = %id, "Cancellation requested through another server.");
                    }
                }
            }
            Change::Resync => self.resync().await?,
            Change::Snapshot(id) if !self.is_local(&id) => self.reload(&id).await?,
            Change::Deleted(id) if !self.is_local(&id) => self.forget(&id),
            Change::Events { id, last_seq } if !self.is_local(&id) => match self.get(&id) {
                Ok(dep) => advance(&dep, last_seq),
                Err(_) => self.reload(&id).await?,
            },
            Change::Snapshot(_) | Change::Deleted(_) | Change::Events { .. } => {}
        }
        Ok(())
    }

    /// Reads `id` from the store again.
    async fn reload(&self, id: &DeploymentId) -> Result<(), StoreError> {
        let Some(c) = &self.coordination else {
            return Ok(());
        };
        match c.shared.load(id).await? {
            Some(record) => {
                self.adopt(record).await;
            }
            None => self.forget(id),
        }
        Ok(())
    }

    /// Everything from the store again (notifications may have been missed).
    async fn resync(&self) -> Result<(), StoreError> {
        let loaded = self.store.load_all().await?;
        let present: std::collections::HashSet<DeploymentId> =
            loaded.records.iter().map(|r| r.id.clone()).collect();
        for record in loaded.records {
            if !self.is_local(&record.id) {
                self.adopt(record).await;
            }
        }
        let gone: Vec<DeploymentId> = self
            .deployments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|id| !present.contains(*id))
            .cloned()
            .collect();
        for id in gone.iter().filter(|id| !self.is_local(id)) {
            self.forget(id);
        }
        Ok(())
    }

    /// Takes a stored record as the state of a deployment this server does not run (added
    /// when new), wakes its subscribers and records on the spine what it lacks of it.
    async fn adopt(&self, record: DeploymentRecord) -> Arc<Deployment> {
        let events = spine_events_of(&record);
        let dep = match self.get(&record.id) {
            Ok(dep) => {
                let head = {
                    let mut inner = dep.lock();
                    if inner.run.is_none() {
                        // The window ends at `last_seq`; events it lacks are read from the store.
                        let last = inner.record.last_seq.max(record.last_seq);
                        if last != inner.record.last_seq {
                            inner.window.clear();
                        }
                        let before = list_key(&inner.record);
                        inner.record = record;
                        inner.record.last_seq = last;
                        let after = list_key(&inner.record);
                        if before != after {
                            let mut order = self.order.write().unwrap_or_else(|p| p.into_inner());
                            order.remove(&before);
                            order.insert(after);
                        }
                    }
                    inner.record.last_seq
                };
                dep.head.send_replace(head);
                dep
            }
            Err(_) => {
                let key = list_key(&record);
                let dep = Deployment::new(record, None);
                let dep = self
                    .deployments
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(dep.id.clone())
                    .or_insert(dep)
                    .clone();
                self.order
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key);
                dep
            }
        };
        if let Some(spine) = self.spine.get() {
            let missing: Vec<_> = events
                .into_iter()
                .filter(|e| !spine.contains(&e.id))
                .collect();
            if !missing.is_empty() {
                self.record_on_spine(missing).await;
            }
        }
        dep
    }

    /// Drops a deployment another server deleted.
    fn forget(&self, id: &DeploymentId) {
        let removed = self
            .deployments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(dep) = removed {
            let key = list_key(&dep.lock().record);
            self.order
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            // Subscribers see the head move and read the store, which says it is gone.
            dep.head.send_modify(|_| {});
        }
    }
}

/// Another server appended events up to `last_seq`: subscribers read them from the store.
fn advance(dep: &Deployment, last_seq: u64) {
    let head = {
        let mut inner = dep.lock();
        if inner.run.is_some() || last_seq <= inner.record.last_seq {
            return;
        }
        inner.record.last_seq = last_seq;
        inner.window.clear();
        last_seq
    };
    dep.head.send_replace(head);
}
