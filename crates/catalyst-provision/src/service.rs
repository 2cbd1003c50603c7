//! The deployment service: creates deployments, runs the pipeline, records every event durably
//! and broadcasts it to every subscriber.
//!
//! How an event travels: the provisioner sends it into an [`EventSink`]; the run's recorder
//! drains whatever has queued up (so a burst becomes one batch), gives each event the next
//! sequence number, has the store make the batch durable (one fsync for the batch), and only
//! then publishes it into the deployment's in-memory window and wakes subscribers. Subscribers
//! never get a private queue: each keeps a cursor into the shared, ordered log, so every one of
//! them sees every event once and in order, and a slow one costs no memory. One that falls out
//! of the window while tailing is cut off and resumes from the store with `Last-Event-ID`.
//!
//! The terminal status is written to the store before it becomes visible in memory, so no
//! subscriber can see `done` with a non-terminal status.
//!
//! Several servers on one shared store (PostgreSQL) coordinate through [`replica`]: a
//! deployment is run by the holder of its lease, and every server follows the others'
//! deployments from the store's change notifications.
mod bootstrap;
mod replica;

pub use replica::Coordination;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;
use std::time::Duration;

use catalyst_core::{
    DeploymentId, DeploymentRecord, DeploymentSpec, DeploymentStatus, Event, EventDraft, Level,
    ProvisionResult, Secret,
};
use catalyst_spine::{CloudEvent, EventDraft as SpineDraft, Spine, SpineError};
use catalyst_store::{DeploymentStore, StoreError};
use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::names::{NameAllocator, NameError};
use crate::provisioner::{EventSink, ProvisionError, ProvisionJob, Provisioner, SinkMessage};
use catalyst_core::deployment::PoolReservation;
use catalyst_core::request::DomainMode;

/// Phase ids a phase-0 retry accepts (the whole OpenTofu pipeline runs again).
pub const PHASE0_PHASES: [&str; 5] = [
    "tofu-init",
    "tofu-plan",
    "tofu-apply",
    "tofu-output",
    "flux-bootstrap",
];

/// Phase ids owned by Flux on the new Sovereign (bootstrap-kit HelmReleases).
pub const PHASE1_PHASES: [&str; 11] = [
    "cilium",
    "cert-manager",
    "flux",
    "crossplane",
    "sealed-secrets",
    "spire",
    "jetstream",
    "openbao",
    "keycloak",
    "gitea",
    "bp-catalyst-platform",
];

/// Tunables of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Pool apex domains this Sovereign allocates under.
    pub pool_domains: Vec<String>,
    /// A run is cancelled (and fails) after this long.
    pub provision_timeout: Duration,
    /// Events kept in memory per deployment (the most recent ones). Also the `/events` cap.
    pub event_window: usize,
    /// Most events handed to a subscriber in one read.
    pub read_batch: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            pool_domains: vec!["omani.works".into(), "openova.io".into()],
            provision_timeout: Duration::from_secs(30 * 60),
            event_window: 10_000,
            read_batch: 1_000,
        }
    }
}

/// Errors a caller of the service can act on.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such deployment.
    #[error("deployment not found")]
    NotFound,
    /// A run is in progress.
    #[error(
        "deployment is still in-flight — wait for the current phase to finish before retrying"
    )]
    InFlight,
    /// The deployment has already finished.
    #[error("deployment already finished with status {0}")]
    Finished(DeploymentStatus),
    /// The deployment is still running, so it cannot be deleted.
    #[error("deployment is still running (status {0}); cancel it first")]
    NotFinished(DeploymentStatus),
    /// The credential is no longer in memory (the control plane restarted).
    #[error("the Hetzner token for this deployment is no longer held (Catalyst never stores it); send it again as hetznerToken in the retry body")]
    CredentialRequired,
    /// The phase is not a known phase id.
    #[error("unknown phase {0:?} — expected one of the OpenTofu phases (tofu-init, tofu-plan, tofu-apply, tofu-output, flux-bootstrap) or a bootstrap-kit component")]
    UnknownPhase(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The pool subdomain is held by another allocation.
    #[error("{0} is already reserved or active — pick a different name")]
    SubdomainConflict(String),
    /// The pool-domain manager could not reserve the name.
    #[error("{0}")]
    NamesUnavailable(String),
}

/// A deployment's state as shown to readers.
#[derive(Debug, Clone)]
pub struct DeploymentView {
    /// The stored snapshot.
    pub record: DeploymentRecord,
    /// True when no run is in progress and the terminal state is stored.
    pub done: bool,
}

/// What a retry did.
#[derive(Debug, Clone)]
pub enum RetryOutcome {
    /// The OpenTofu pipeline runs again.
    Rerun(DeploymentView),
    /// The phase is reconciled by Flux on the Sovereign; an instruction event was recorded.
    ManualActionRequired(DeploymentView),
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ServiceMetrics {
    /// Events made durable and published.
    pub events_appended: AtomicU64,
    /// Store write failures.
    pub store_errors: AtomicU64,
    /// Subscribers cut off for lagging.
    pub subscribers_cut_off: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    User,
    Timeout,
    Shutdown,
}

struct RunHandle {
    cancel: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
    finished: watch::Receiver<bool>,
}

struct Inner {
    record: DeploymentRecord,
    /// Contiguous most recent events, ending at `record.last_seq`.
    window: VecDeque<Arc<Published>>,
    credential: Option<Secret>,
    run: Option<RunHandle>,
    attempts: u32,
}

struct RunStart {
    cancel: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
    finished: watch::Sender<bool>,
}

struct Deployment {
    id: DeploymentId,
    inner: Mutex<Inner>,
    /// Serialises appends (sequence assignment + durable write + publish) per deployment.
    writer: tokio::sync::Mutex<()>,
    /// Bumped after every publish; subscribers wait on it.
    head: watch::Sender<u64>,
}

impl Deployment {
    fn new(record: DeploymentRecord, credential: Option<Secret>) -> Arc<Self> {
        let (head, _) = watch::channel(record.last_seq);
        Arc::new(Deployment {
            id: record.id.clone(),
            inner: Mutex::new(Inner {
                record,
                window: VecDeque::new(),
                credential,
                run: None,
                attempts: 1,
            }),
            writer: tokio::sync::Mutex::new(()),
            head,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a panic elsewhere; the data is still consistent because
        // every mutation below is a plain assignment.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn view(&self) -> DeploymentView {
        let inner = self.lock();
        DeploymentView {
            record: inner.record.clone(),
            done: inner.run.is_none() && inner.record.status.is_terminal(),
        }
    }
}

/// Sort key for listing: newest first.
type ListKey = (i64, DeploymentId);

/// The deployment service. Cheap to share behind an `Arc`.
pub struct DeploymentService {
    store: Arc<dyn DeploymentStore>,
    provisioner: Arc<dyn Provisioner>,
    config: ServiceConfig,
    deployments: RwLock<HashMap<DeploymentId, Arc<Deployment>>>,
    order: RwLock<BTreeSet<ListKey>>,
    shutdown: CancellationToken,
    metrics: ServiceMetrics,
    /// Pool-domain allocator; when unset, pool names are not reserved.
    names: OnceLock<Arc<dyn NameAllocator>>,
    /// Commits each deployment's bootstrap tree to Catalyst's Git before its run, when set.
    bootstrap: OnceLock<Arc<dyn crate::provisioner::BootstrapPublisher>>,
    /// The event spine every creation and status change is recorded on, when set.
    spine: OnceLock<Arc<dyn Spine>>,
    /// Leases and change notifications, when the store is shared with other servers.
    coordination: Option<Coordination>,
    /// Deployments this server holds the lease of (runs, or is about to, or is failing as
    /// orphans); changes the store reports about them are this server's own.
    local: Mutex<HashSet<DeploymentId>>,
}

fn list_key(record: &DeploymentRecord) -> ListKey {
    (record.started_at.timestamp_micros(), record.id.clone())
}

/// An opaque listing cursor: the sort key of the last item of the previous page.
pub fn encode_cursor(record: &DeploymentRecord) -> String {
    let (t, id) = list_key(record);
    format!("{t}-{id}")
}

/// Parses a cursor from [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Option<ListKey> {
    let (t, id) = cursor.rsplit_once('-')?;
    Some((t.parse().ok()?, DeploymentId::parse(id).ok()?))
}

impl DeploymentService {
    /// Loads every stored deployment (failing the ones a previous process left in flight) and
    /// returns the ready service.
    pub async fn start(
        store: Arc<dyn DeploymentStore>,
        provisioner: Arc<dyn Provisioner>,
        config: ServiceConfig,
    ) -> Result<Arc<Self>, StoreError> {
        Self::start_with(store, provisioner, config, None).await
    }

    /// Like [`DeploymentService::start`] on a store other servers share: only the deployments
    /// whose lease this server can take (its own from before a restart, or expired ones) are
    /// failed as orphans; the others are followed as they run elsewhere.
    pub async fn start_shared(
        store: Arc<dyn DeploymentStore>,
        provisioner: Arc<dyn Provisioner>,
        config: ServiceConfig,
        coordination: Coordination,
    ) -> Result<Arc<Self>, StoreError> {
        Self::start_with(store, provisioner, config, Some(coordination)).await
    }

    async fn start_with(
        store: Arc<dyn DeploymentStore>,
        provisioner: Arc<dyn Provisioner>,
        config: ServiceConfig,
        coordination: Option<Coordination>,
    ) -> Result<Arc<Self>, StoreError> {
        let loaded = store.load_all().await?;
        for w in &loaded.warnings {
            warn!(location = %w.location, problem = %w.message, "Skipped or repaired a stored deployment.");
        }
        let service = Arc::new(DeploymentService {
            store,
            provisioner,
            config,
            deployments: RwLock::new(HashMap::new()),
            order: RwLock::new(BTreeSet::new()),
            shutdown: CancellationToken::new(),
            metrics: ServiceMetrics::default(),
            names: OnceLock::new(),
            bootstrap: OnceLock::new(),
            spine: OnceLock::new(),
            coordination,
            local: Mutex::new(HashSet::new()),
        });
        let mut orphans = Vec::new();
        {
            let mut map = service
                .deployments
                .write()
                .unwrap_or_else(|p| p.into_inner());
            let mut order = service.order.write().unwrap_or_else(|p| p.into_inner());
            for record in loaded.records {
                order.insert(list_key(&record));
                let orphan = !record.status.is_terminal();
                let dep = Deployment::new(record, None);
                if orphan {
                    orphans.push(dep.clone());
                }
                map.insert(dep.id.clone(), dep);
            }
        }
        let restored = service.deployments.read().map(|m| m.len()).unwrap_or(0);
        for dep in orphans {
            if !service.take_lease(&dep.id).await? {
                info!(deployment = %dep.id, "Deployment in flight on another server; following it.");
                continue;
            }
            let failed = service.fail_orphan(&dep).await;
            service.release_lease(&dep.id).await;
            failed?;
        }
        if service.coordination.is_some() {
            service.follow_other_servers();
        }
        info!(
            count = restored,
            backend = service.store.backend(),
            "Restored deployments."
        );
        Ok(service)
    }

    /// Marks an in-flight deployment nobody runs any more failed, with the orphaned-resources
    /// message.
    async fn fail_orphan(&self, dep: &Deployment) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut record = dep.view().record;
        record.fail_orphaned(now);
        let message = record.error.clone().unwrap_or_default();
        warn!(deployment = %dep.id, "Deployment was in flight when the server running it stopped; marked failed.");
        let mut draft = EventDraft::new(now, "deployment", Level::Error, message);
        draft.status = Some(DeploymentStatus::Failed);
        self.commit(dep, vec![draft], move |r| {
            r.status = record.status;
            r.error = record.error.clone();
            r.finished_at = record.finished_at;
            true
        })
        .await
    }

    /// Wires the pool-domain allocator in (once; later calls are ignored).
    pub fn set_name_allocator(&self, names: Arc<dyn NameAllocator>) {
        let _ = self.names.set(names);
    }

    /// Records every creation and status change on `spine` from now on (once; later calls are
    /// ignored), after making sure the spine has each deployment's creation and current status
    /// (the deployment store is the outbox: a change stored but not yet recorded when the process
    /// stopped is recorded now, once — the spine knows the ids it has).
    pub async fn set_spine(&self, spine: Arc<dyn Spine>) -> Result<(), SpineError> {
        if self.spine.set(spine.clone()).is_err() {
            return Ok(());
        }
        let records: Vec<DeploymentRecord> = {
            let map = self.deployments.read().unwrap_or_else(|p| p.into_inner());
            let mut r: Vec<_> = map.values().map(|d| d.view().record).collect();
            r.sort_by_key(|r| (r.started_at, r.id.clone()));
            r
        };
        let missing: Vec<CloudEvent> = records
            .iter()
            .flat_map(spine_events_of)
            .filter(|e| !spine.contains(&e.id))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        info!(
            events = missing.len(),
            "Recording deployment changes the event spine does not have yet."
        );
        tokio::task::spawn_blocking(move || spine.append(missing))
            .await
            .map_err(|_| SpineError::Stopped("the recording task stopped".into()))??;
        Ok(())
    }

    /// Records `events` on the spine (when one is set); a failure is logged, never fatal: the
    /// deployment store holds the change and the next start-up records it.
    async fn record_on_spine(&self, events: Vec<CloudEvent>) {
        let Some(spine) = self.spine.get().cloned() else {
            return;
        };
        let result = tokio::task::spawn_blocking(move || spine.append(events)).await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                warn!(error = %e, "Recording a deployment change on the event spine failed; the next start-up records it.")
            }
            Err(_) => warn!("The task recording a deployment change on the event spine stopped."),
        }
    }

    /// Reserves the pool name of a `pool`-mode spec, when an allocator is wired in.
    async fn reserve_name(
        &self,
        spec: &DeploymentSpec,
        id: &DeploymentId,
    ) -> Result<Option<PoolReservation>, ServiceError> {
        let (Some(names), DomainMode::Pool, Some(pool), Some(sub)) = (
            self.names.get(),
            spec.domain_mode,
            &spec.pool_domain,
            &spec.subdomain,
        ) else {
            return Ok(None);
        };
        match names
            .reserve(pool, sub, &format!("catalyst/deployment-{id}"))
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(NameError::Conflict) => {
                Err(ServiceError::SubdomainConflict(spec.sovereign_fqdn.clone()))
            }
            Err(NameError::Unavailable(e)) => Err(ServiceError::NamesUnavailable(e)),
        }
    }

    /// Releases a held pool name; failures are logged (the allocator's sweeper or a later
    /// release finishes the job).
    async fn release_name(
        &self,
        id: &DeploymentId,
        reservation: &PoolReservation,
    ) -> Option<String> {
        let names = self.names.get()?;
        match names.release(reservation).await {
            Ok(()) => None,
            Err(e) => {
                warn!(deployment = %id, error = %e, "Releasing the pool name failed.");
                Some(e.to_string())
            }
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The provisioner's name (`tofu`, `dry-run`).
    pub fn provisioner_name(&self) -> &'static str {
        self.provisioner.name()
    }

    /// True when the provisioner applies nothing (the console offers to skip token checks).
    pub fn dry_run(&self) -> bool {
        self.provisioner.dry_run()
    }

    /// Metrics counters.
    pub fn metrics(&self) -> &ServiceMetrics {
        &self.metrics
    }

    /// The store (for readiness checks).
    pub fn store(&self) -> &Arc<dyn DeploymentStore> {
        &self.store
    }

    fn get(&self, id: &DeploymentId) -> Result<Arc<Deployment>, ServiceError> {
        self.deployments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or(ServiceError::NotFound)
    }

    /// The deployment that holds `fqdn`, if any: one that has not failed or been cancelled, and
    /// not a finished dry run (a dry run holds its name only while it runs; at its end the name
    /// is released and a real deployment may take it — the log says so).
    pub fn fqdn_in_use(&self, fqdn: &str) -> Option<DeploymentId> {
        let map = self.deployments.read().unwrap_or_else(|p| p.into_inner());
        map.values().find_map(|dep| {
            let inner = dep.lock();
            let status = inner.record.status;
            let released = matches!(
                status,
                DeploymentStatus::Failed | DeploymentStatus::Cancelled
            ) || (inner.record.dry_run && status.is_terminal());
            let holds = !released;
            (holds && inner.record.spec.sovereign_fqdn == fqdn).then(|| dep.id.clone())
        })
    }

    /// Counts deployments by status.
    pub fn count_by_status(&self) -> Vec<(DeploymentStatus, u64)> {
        let map = self.deployments.read().unwrap_or_else(|p| p.into_inner());
        let mut counts: HashMap<DeploymentStatus, u64> = HashMap::new();
        for dep in map.values() {
            *counts.entry(dep.lock().record.status).or_default() += 1;
        }
        DeploymentStatus::ALL
            .iter()
            .map(|s| (*s, counts.get(s).copied().unwrap_or(0)))
            .collect()
    }

    /// Creates a deployment, stores it durably and starts its pipeline.
    pub async fn create(
        self: &Arc<Self>,
        spec: DeploymentSpec,
        token: Secret,
    ) -> Result<DeploymentView, ServiceError> {
        let id = {
            let map = self.deployments.read().unwrap_or_else(|p| p.into_inner());
            loop {
                let id = DeploymentId::from_random_bytes(rand::random());
                if !map.contains_key(&id) {
                    break id;
                }
            }
        };
        // The lease exists before the row, so no other server ever sees this deployment
        // unleased (and fails it as an orphan).
        if !self.take_lease(&id).await? {
            return Err(ServiceError::InFlight);
        }
        let reservation = match self.reserve_name(&spec, &id).await {
            Ok(r) => r,
            Err(e) => {
                self.release_lease(&id).await;
                return Err(e);
            }
        };
        let record = {
            DeploymentRecord {
                id,
                status: DeploymentStatus::Pending,
                spec,
                result: None,
                error: None,
                started_at: Utc::now(),
                finished_at: None,
                last_seq: 0,
                dry_run: self.provisioner.dry_run(),
                reservation,
                status_seq: 0,
            }
        };
        if let Err(e) = self.store.create(&record).await {
            if let Some(r) = &record.reservation {
                self.release_name(&record.id, r).await;
            }
            self.release_lease(&record.id).await;
            return Err(e.into());
        }
        self.record_on_spine(vec![created_event(&record)]).await;
        let dep = Deployment::new(record.clone(), Some(token.clone()));
        let start = self.begin_run(&mut dep.lock());
        self.order
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(list_key(&record));
        self.deployments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dep.id.clone(), dep.clone());
        info!(deployment = %dep.id, fqdn = %record.spec.sovereign_fqdn, provisioner = self.provisioner.name(), "Deployment created.");
        self.spawn_run(&dep, token, 1, start);
        Ok(dep.view())
    }

    /// The current state.
    pub fn view(&self, id: &DeploymentId) -> Result<DeploymentView, ServiceError> {
        Ok(self.get(id)?.view())
    }

    /// Newest first, at most `limit`, after `cursor` (from [`encode_cursor`]).
    pub fn list(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Vec<DeploymentView>, ServiceError> {
        let keys: Vec<ListKey> = {
            let order = self.order.read().unwrap_or_else(|p| p.into_inner());
            match cursor {
                Some(c) => {
                    let Some(k) = decode_cursor(c) else {
                        return Ok(Vec::new());
                    };
                    order.range(..k).rev().take(limit).cloned().collect()
                }
                None => order.iter().rev().take(limit).cloned().collect(),
            }
        };
        Ok(keys
            .into_iter()
            .filter_map(|(_, id)| self.get(&id).ok().map(|d| d.view()))
            .collect())
    }

    /// Events with `seq > after`, at most `limit`, from memory when possible, else the store.
    pub async fn events_after(
        &self,
        id: &DeploymentId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, ServiceError> {
        let dep = self.get(id)?;
        Ok(self
            .read(&dep, after, limit, true)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.event.clone())
            .collect())
    }

    /// The most recent events (at most the window size) with the state, for `/events`.
    pub async fn recent_events(
        &self,
        id: &DeploymentId,
    ) -> Result<(DeploymentView, Vec<Event>), ServiceError> {
        let dep = self.get(id)?;
        let view = dep.view();
        let last = view.record.last_seq;
        let cap = self.config.event_window as u64;
        let after = last.saturating_sub(cap);
        let mut events = Vec::new();
        let mut cursor = after;
        while cursor < last {
            let batch = self
                .read(&dep, cursor, self.config.event_window, true)
                .await?
                .unwrap_or_default();
            let Some(e) = batch.last() else { break };
            cursor = e.event.seq;
            events.extend(
                batch
                    .iter()
                    .map(|p| &p.event)
                    .filter(|e| e.seq <= last)
                    .cloned(),
            );
        }
        Ok((view, events))
    }

    /// Reads events after `cursor`. `None` means the cursor fell out of the window and
    /// `allow_store` was false (the caller is a lagging live subscriber).
    async fn read(
        &self,
        dep: &Deployment,
        cursor: u64,
        limit: usize,
        allow_store: bool,
    ) -> Result<Option<Vec<Arc<Published>>>, StoreError> {
        {
            let inner = dep.lock();
            let head = inner.record.last_seq;
            if cursor >= head {
                return Ok(Some(Vec::new()));
            }
            let first = inner
                .window
                .front()
                .map(|e| e.event.seq)
                .unwrap_or(head + 1);
            if cursor + 1 >= first {
                let skip = (cursor + 1 - first) as usize;
                return Ok(Some(
                    inner.window.range(skip..).take(limit).cloned().collect(),
                ));
            }
            // Only a run of this server fills the window; another server's run is read from
            // the store, however far behind the reader is.
            if !allow_store && inner.run.is_some() {
                return Ok(None);
            }
        }
        let events = self.store.events_after(&dep.id, cursor, limit).await?;
        Ok(Some(events.into_iter().map(Published::new).collect()))
    }

    /// Subscribes to a deployment's events after `after` (0 = from the beginning).
    pub fn subscribe(
        self: &Arc<Self>,
        id: &DeploymentId,
        after: u64,
    ) -> Result<Subscription, ServiceError> {
        let dep = self.get(id)?;
        let rx = dep.head.subscribe();
        Ok(Subscription {
            service: self.clone(),
            dep,
            cursor: after,
            rx,
            caught_up: false,
            finished: false,
        })
    }

    /// Requests cancellation of an in-flight deployment and waits (up to `wait`) for it to stop.
    pub async fn cancel(
        &self,
        id: &DeploymentId,
        wait: Duration,
    ) -> Result<DeploymentView, ServiceError> {
        let dep = self.get(id)?;
        let here = {
            let inner = dep.lock();
            match &inner.run {
                Some(run) => {
                    let mut reason = run.reason.lock().unwrap_or_else(|p| p.into_inner());
                    reason.get_or_insert(StopReason::User);
                    run.cancel.cancel();
                    Ok(run.finished.clone())
                }
                None if inner.record.status.is_terminal() => {
                    return Err(ServiceError::Finished(inner.record.status))
                }
                // In flight, but not here: another server runs it.
                None => Err(()),
            }
        };
        let Ok(mut finished) = here else {
            return self.cancel_elsewhere(&dep, wait).await;
        };
        info!(deployment = %id, "Cancellation requested.");
        let _ = tokio::time::timeout(wait, finished.wait_for(|f| *f)).await;
        Ok(dep.view())
    }

    /// Deletes a finished deployment and its events.
    pub async fn delete(&self, id: &DeploymentId) -> Result<(), ServiceError> {
        let dep = self.get(id)?;
        {
            let inner = dep.lock();
            if inner.run.is_some() || !inner.record.status.is_terminal() {
                return Err(ServiceError::NotFinished(inner.record.status));
            }
        }
        let _w = dep.writer.lock().await;
        self.store.delete(id).await?;
        let record = dep.view().record;
        if let Some(r) = &record.reservation {
            self.release_name(id, r).await;
        }
        self.order
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&list_key(&record));
        self.deployments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        info!(deployment = %id, "Deployment deleted.");
        Ok(())
    }

    /// Retries a phase. Phase-0 phases re-run the OpenTofu pipeline (it is idempotent);
    /// phase-1 phases are Flux's business on the Sovereign and get an instruction event.
    pub async fn retry(
        self: &Arc<Self>,
        id: &DeploymentId,
        phase: &str,
        token: Option<Secret>,
    ) -> Result<RetryOutcome, ServiceError> {
        let dep = self.get(id)?;
        let phase0 = PHASE0_PHASES.contains(&phase);
        if !phase0 && !PHASE1_PHASES.contains(&phase) {
            return Err(ServiceError::UnknownPhase(phase.to_owned()));
        }
        if !phase0 {
            let status = dep.lock().record.status;
            if !status.is_terminal() {
                return Err(ServiceError::InFlight);
            }
        }
        if !phase0 {
            let draft = EventDraft::new(
                Utc::now(),
                phase,
                Level::Info,
                format!(
                    "Phase 1 retry: the {phase} HelmRelease is reconciled by Flux on the new Sovereign, not by this control plane. \
                     Flux retries failed installs on its own (install.remediation.retries); once those are exhausted, run \
                     `kubectl annotate --overwrite helmrelease/bp-{phase} -n flux-system reconcile.fluxcd.io/requestedAt=$(date +%s)` \
                     against the Sovereign's cluster."
                ),
            );
            self.commit(&dep, vec![draft], |_| false).await?;
            return Ok(RetryOutcome::ManualActionRequired(dep.view()));
        }
        // A failed or cancelled run released its pool name; take it again before re-running.
        let reservation = {
            let record = dep.view().record;
            match (&record.reservation, record.status) {
                (None, DeploymentStatus::Failed | DeploymentStatus::Cancelled) => {
                    self.reserve_name(&record.spec, id).await?
                }
                _ => None,
            }
        };
        // Another server may be retrying it too: the lease decides.
        if !self.take_lease(id).await? {
            if let Some(r) = &reservation {
                self.release_name(id, r).await;
            }
            return Err(ServiceError::InFlight);
        }
        // Check and claim the run slot in one critical section, so two retries cannot both start.
        let claimed = {
            let mut inner = dep.lock();
            if inner.run.is_some() || !inner.record.status.is_terminal() {
                Err(ServiceError::InFlight)
            } else if let Some(token) = token.filter(|t| !t.is_blank()).or(inner.credential.clone())
            {
                inner.credential = Some(token.clone());
                inner.attempts += 1;
                let status = inner.record.status;
                let attempt = inner.attempts;
                Ok((self.begin_run(&mut inner), token, status, attempt))
            } else {
                Err(ServiceError::CredentialRequired)
            }
        };
        let (start, token, status, attempt) = match claimed {
            Ok(c) => c,
            Err(e) => {
                // Do not hold the name for a retry that is not going to run.
                if let Some(r) = &reservation {
                    self.release_name(id, r).await;
                }
                // The lease stays with a run of this server, if one holds it.
                if dep.lock().run.is_none() {
                    self.release_lease(id).await;
                }
                return Err(e);
            }
        };
        let mut draft = EventDraft::new(
            Utc::now(),
            "retry",
            Level::Info,
            format!(
                "Retry initiated for phase \"{phase}\" (previous status {status}) — re-running the OpenTofu pipeline against the existing working directory (idempotent)."
            ),
        );
        draft.status = Some(DeploymentStatus::Pending);
        let committed = self
            .commit(&dep, vec![draft], |r| {
                r.status = DeploymentStatus::Pending;
                r.error = None;
                r.result = None;
                r.finished_at = None;
                if reservation.is_some() {
                    r.reservation = reservation.clone();
                }
                true
            })
            .await;
        if let Err(e) = committed {
            dep.lock().run = None;
            self.release_lease(id).await;
            return Err(e.into());
        }
        self.spawn_run(&dep, token, attempt, start);
        Ok(RetryOutcome::Rerun(dep.view()))
    }

    /// Cancels every run (their status becomes failed with the restart message) and ends every
    /// subscription; waits up to `wait` for the runs to record their end.
    pub async fn shutdown(&self, wait: Duration) {
        let deps: Vec<_> = self
            .deployments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut waits = Vec::new();
        for dep in deps {
            let inner = dep.lock();
            if let Some(run) = &inner.run {
                run.reason
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(StopReason::Shutdown);
                run.cancel.cancel();
                waits.push(run.finished.clone());
            }
        }
        // Only now the parent token: a run that saw its cancellation before its stop reason
        // was set would record `cancelled` (a user's cancel) instead of the restart message.
        self.shutdown.cancel();
        let all = futures::future::join_all(waits.into_iter().map(|mut rx| async move {
            let _ = rx.wait_for(|f| *f).await;
        }));
        let _ = tokio::time::timeout(wait, all).await;
    }

    fn begin_run(&self, inner: &mut Inner) -> RunStart {
        let cancel = self.shutdown.child_token();
        let reason = Arc::new(Mutex::new(None));
        let (finished_tx, finished_rx) = watch::channel(false);
        inner.run = Some(RunHandle {
            cancel: cancel.clone(),
            reason: reason.clone(),
            finished: finished_rx,
        });
        RunStart {
            cancel,
            reason,
            finished: finished_tx,
        }
    }

    fn spawn_run(
        self: &Arc<Self>,
        dep: &Arc<Deployment>,
        token: Secret,
        attempt: u32,
        start: RunStart,
    ) {
        let job = ProvisionJob {
            id: dep.id.clone(),
            spec: dep.lock().record.spec.clone(),
            hetzner_token: token,
            attempt,
            git: None,
        };
        let service = self.clone();
        let dep = dep.clone();
        tokio::spawn(async move {
            service.run(&dep, job, start.cancel, start.reason).await;
            // Before the run slot frees up: a retry claiming it takes the lease afresh.
            service.release_lease(&dep.id).await;
            dep.lock().run = None;
            let _ = start.finished.send(true);
            dep.head.send_modify(|_| {});
        });
    }

    async fn run(
        self: &Arc<Self>,
        dep: &Arc<Deployment>,
        job: ProvisionJob,
        cancel: CancellationToken,
        reason: Arc<Mutex<Option<StopReason>>>,
    ) {
        let (sink, rx) = EventSink::channel(4096);
        let recorder = {
            let service = self.clone();
            let dep = dep.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move { service.record(&dep, rx, cancel).await })
        };
        let timer = {
            let cancel = cancel.clone();
            let reason = reason.clone();
            let timeout = self.config.provision_timeout;
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                reason
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(StopReason::Timeout);
                cancel.cancel();
            })
        };
        let fqdn = job.spec.sovereign_fqdn.clone();
        let id = job.id.clone();
        let outcome = match self.publish_bootstrap(job, &sink).await {
            Ok(job) => self.provisioner.provision(job, sink, cancel.clone()).await,
            Err(e) => {
                // The recorder drains until every sink clone is gone.
                drop(sink);
                Err(e)
            }
        };
        timer.abort();
        // Every sink clone is gone once `provision` returned; the recorder drains what is left.
        let recorder_ok = recorder.await.unwrap_or(false);
        let stop = *reason.lock().unwrap_or_else(|p| p.into_inner());
        let now = Utc::now();
        let dry_run = self.provisioner.dry_run();
        let (status, result, error, message) = match (outcome, recorder_ok) {
            (_, false) => (
                DeploymentStatus::Failed,
                None,
                Some("the event store could not write; the run was stopped so that no event is lost".to_owned()),
                None,
            ),
            (Ok(out), true) => {
                let result = ProvisionResult::for_fqdn(&fqdn, out.control_plane_ip, out.load_balancer_ip, dry_run);
                let msg = if dry_run {
                    format!("Dry run complete for {fqdn}: every phase ran, nothing was applied.")
                } else {
                    format!("Sovereign {fqdn} is provisioned; console at {}.", result.console_url)
                };
                (DeploymentStatus::Ready, Some(result), None, Some(msg))
            }
            (Err(ProvisionError::Cancelled), true) => match stop {
                Some(StopReason::User) | None => (
                    DeploymentStatus::Cancelled,
                    None,
                    Some(format!(
                        "cancelled by request; cloud resources already created carry the label catalyst.openova.io/sovereign={fqdn}"
                    )),
                    None,
                ),
                Some(StopReason::Timeout) => (
                    DeploymentStatus::Failed,
                    None,
                    Some(format!(
                        "provisioning timed out after {}s; cloud resources already created carry the label catalyst.openova.io/sovereign={fqdn}",
                        self.config.provision_timeout.as_secs()
                    )),
                    None,
                ),
                Some(StopReason::Shutdown) => (
                    DeploymentStatus::Failed,
                    None,
                    Some(catalyst_core::deployment::restart_orphan_message(&id, &fqdn)),
                    None,
                ),
            },
            (Err(e), true) => (DeploymentStatus::Failed, None, Some(e.to_string()), None),
        };
        let (name_draft, keep_reservation) = self
            .settle_name(dep, status, result.as_ref(), &fqdn, now)
            .await;
        let level = if status == DeploymentStatus::Ready {
            Level::Info
        } else {
            Level::Error
        };
        let text = message
            .or_else(|| error.clone().map(|e| format!("Deployment {status}: {e}")))
            .unwrap_or_default();
        let mut draft = EventDraft::new(now, "deployment", level, text);
        draft.status = Some(status);
        let drafts: Vec<EventDraft> = name_draft.into_iter().chain([draft]).collect();
        let committed = self
            .commit_with(
                dep,
                drafts,
                |r| {
                    r.status = status;
                    r.result = result.clone();
                    r.error = error.clone();
                    r.finished_at = Some(now);
                    if !keep_reservation {
                        r.reservation = None;
                    }
                    true
                },
                true,
            )
            .await;
        match committed {
            Ok(()) => info!(deployment = %id, status = %status, "Deployment finished."),
            Err(e) => {
                // The terminal state could not be stored before shutdown: keep it in memory so
                // readers see the truth; the next start-up will mark the stored record failed.
                error!(deployment = %id, error = %e, "Storing the terminal state failed.");
                let mut inner = dep.lock();
                inner.record.status = status;
                inner.record.result = result;
                inner.record.error = error;
                inner.record.finished_at = Some(now);
            }
        }
    }

    /// At the end of a run: commit the pool name with the load-balancer address (ready) or
    /// release it (failed, cancelled, or a dry run with no address). Returns the event to record
    /// and whether the reservation is still held.
    async fn settle_name(
        &self,
        dep: &Deployment,
        status: DeploymentStatus,
        result: Option<&ProvisionResult>,
        fqdn: &str,
        now: chrono::DateTime<Utc>,
    ) -> (Option<EventDraft>, bool) {
        let Some(names) = self.names.get() else {
            return (None, true);
        };
        let Some(reservation) = dep.lock().record.reservation.clone() else {
            return (None, true);
        };
        let lb_ip = result.and_then(|r| r.load_balancer_ip.clone());
        if let (DeploymentStatus::Ready, Some(ip)) = (status, &lb_ip) {
            let (level, text) = match names.commit(&reservation, fqdn, ip).await {
                Ok(()) => (
                    Level::Info,
                    format!("{fqdn} now points at the load balancer {ip}."),
                ),
                Err(e) => {
                    warn!(deployment = %dep.id, error = %e, "Committing the pool name failed.");
                    (Level::Warn, format!("Could not publish {fqdn} → {ip}: {e}"))
                }
            };
            return (Some(EventDraft::new(now, "pool-domain", level, text)), true);
        }
        let dry_run = dep.lock().record.dry_run;
        let text = match self.release_name(&dep.id, &reservation).await {
            None if dry_run => format!(
                "Released the pool name {fqdn}: a dry run holds no name once it ends, so a real deployment may take it now."
            ),
            None => format!("Released the pool name {fqdn}."),
            Some(e) => {
                format!("Releasing the pool name {fqdn} failed ({e}); it lapses on its own.")
            }
        };
        (
            Some(EventDraft::new(now, "pool-domain", Level::Info, text)),
            false,
        )
    }

    /// Drains the sink in batches; returns false when the store failed (the run is cancelled).
    async fn record(
        self: &Arc<Self>,
        dep: &Arc<Deployment>,
        mut rx: mpsc::Receiver<SinkMessage>,
        cancel: CancellationToken,
    ) -> bool {
        let mut ok = true;
        let mut buf = Vec::with_capacity(1024);
        while rx.recv_many(&mut buf, 1024).await > 0 {
            if !ok {
                buf.clear();
                continue;
            }
            let mut drafts = Vec::with_capacity(buf.len());
            let mut new_status = None;
            for msg in buf.drain(..) {
                match msg {
                    SinkMessage::Event(d) => drafts.push(d),
                    SinkMessage::Status(s) => {
                        let mut d = EventDraft::new(
                            Utc::now(),
                            "status",
                            Level::Info,
                            format!("Status: {s}"),
                        );
                        d.status = Some(s);
                        drafts.push(d);
                        new_status = Some(s);
                    }
                }
            }
            let result = self
                .commit(dep, drafts, |r| match new_status {
                    Some(s) if r.status != s && r.status.can_move_to(s) => {
                        r.status = s;
                        true
                    }
                    _ => false,
                })
                .await;
            if let Err(e) = result {
                error!(deployment = %dep.id, error = %e, "Persisting events failed; stopping the run.");
                ok = false;
                cancel.cancel();
            }
        }
        ok
    }

    /// Appends `drafts` durably, applies `update` to the snapshot (stored when it returns true),
    /// then publishes both at once.
    async fn commit(
        &self,
        dep: &Deployment,
        drafts: Vec<EventDraft>,
        update: impl FnOnce(&mut DeploymentRecord) -> bool,
    ) -> Result<(), StoreError> {
        self.commit_with(dep, drafts, update, false).await
    }

    /// [`Self::commit`]; with `keep_trying` (a terminal state), events or a snapshot the store
    /// refuses are retried (with back-off, until shutdown) instead of returned as an error.
    async fn commit_with(
        &self,
        dep: &Deployment,
        drafts: Vec<EventDraft>,
        update: impl FnOnce(&mut DeploymentRecord) -> bool,
        keep_trying: bool,
    ) -> Result<(), StoreError> {
        let _w = dep.writer.lock().await;
        let mut record = dep.lock().record.clone();
        let first = record.last_seq + 1;
        let dry_run = record.dry_run;
        let events: Vec<Event> = drafts
            .into_iter()
            .enumerate()
            .map(|(i, mut d)| {
                d.dry_run |= dry_run;
                d.sequenced(first + i as u64)
            })
            .collect();
        if !events.is_empty() {
            let mut wait = Duration::from_millis(100);
            while let Err(e) = self.store.append_events(&dep.id, &events).await {
                self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                if !keep_trying || self.shutdown.is_cancelled() {
                    return Err(e);
                }
                // The terminal events themselves were refused (the database restarting, a full
                // disk): wait and try again, as for the snapshot below — found by the
                // PostgreSQL-restart fault test, where such a run stayed non-terminal for good.
                warn!(deployment = %dep.id, error = %e, "Storing the terminal events failed; retrying.");
                tokio::select! {
                    _ = self.shutdown.cancelled() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(5));
                // A write whose answer was lost may have landed: then it is done.
                if let Ok(stored) = self
                    .store
                    .events_after(&dep.id, first - 1, events.len())
                    .await
                {
                    if stored.len() == events.len()
                        && stored.iter().zip(&events).all(|(a, b)| a.seq == b.seq)
                    {
                        break;
                    }
                }
            }
            record.last_seq += events.len() as u64;
        }
        let status_event = events.iter().rev().find(|e| e.draft.status.is_some());
        let before = record.status;
        let changed = update(&mut record);
        let spine_event = match status_event {
            Some(e) if changed => {
                record.status_seq = e.seq;
                Some(status_event_of(&record, e, before))
            }
            _ => None,
        };
        if changed {
            let mut wait = Duration::from_millis(100);
            while let Err(e) = self.store.save_snapshot(&record).await {
                self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                if !keep_trying || !record.status.is_terminal() || self.shutdown.is_cancelled() {
                    // The events are durable; publish them even though the snapshot lags.
                    self.publish(dep, events, None);
                    return Err(e);
                }
                // A terminal state becomes visible (`done`) only once stored: a restart
                // before that fails the record as an orphan, and a delivered `ready` would be
                // lost (found by the fault campaign with a full disk). Its events are durable;
                // wait for the store (space comes back) and try again.
                warn!(deployment = %dep.id, error = %e, "Storing the terminal state failed; retrying.");
                tokio::select! {
                    _ = self.shutdown.cancelled() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
        self.publish(dep, events, Some(record));
        if let Some(e) = spine_event {
            self.record_on_spine(vec![e]).await;
        }
        Ok(())
    }

    fn publish(&self, dep: &Deployment, events: Vec<Event>, record: Option<DeploymentRecord>) {
        let n = events.len() as u64;
        let head = {
            let mut inner = dep.lock();
            if let Some(last) = events.last() {
                inner.record.last_seq = last.seq;
            }
            if let Some(r) = record {
                inner.record = r;
            }
            inner.window.extend(events.into_iter().map(Published::new));
            let excess = inner.window.len().saturating_sub(self.config.event_window);
            inner.window.drain(..excess);
            inner.record.last_seq
        };
        self.metrics.events_appended.fetch_add(n, Ordering::Relaxed);
        dep.head.send_replace(head);
    }
}

/// A published event, shared by every subscriber, with a memo slot for its encoded form so
/// that an event is encoded once however many subscribers send it (the service does not know
/// the encoding; the caller supplies it).
#[derive(Debug)]
pub struct Published {
    /// The event.
    pub event: Event,
    encoded: OnceLock<Bytes>,
}

impl Published {
    fn new(event: Event) -> Arc<Self> {
        Arc::new(Published {
            event,
            encoded: OnceLock::new(),
        })
    }

    /// The encoded form, computed by `encode` the first time it is asked for.
    pub fn encoded(&self, encode: impl FnOnce(&Event) -> Bytes) -> &Bytes {
        self.encoded.get_or_init(|| encode(&self.event))
    }
}

/// What a subscription yields next.
#[derive(Debug)]
pub enum SubscriptionItem {
    /// The next events, in order.
    Events(Vec<Arc<Published>>),
    /// The deployment has finished (its terminal state is stored); the stream ends.
    Done(Box<DeploymentView>),
    /// The subscriber fell behind the in-memory window while tailing; reconnect with
    /// `Last-Event-ID` to resume from the store.
    CutOff,
    /// The control plane is shutting down.
    Closed,
}

/// One subscriber's cursor into a deployment's log.
pub struct Subscription {
    service: Arc<DeploymentService>,
    dep: Arc<Deployment>,
    cursor: u64,
    rx: watch::Receiver<u64>,
    caught_up: bool,
    finished: bool,
}

impl Subscription {
    /// Sequence number of the last event handed out.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Waits for the next item; `None` after `Done`, `CutOff` or `Closed`.
    pub async fn next(&mut self) -> Option<SubscriptionItem> {
        if self.finished {
            return None;
        }
        loop {
            self.rx.borrow_and_update();
            let (done_view, head) = {
                let inner = self.dep.lock();
                let done = inner.run.is_none() && inner.record.status.is_terminal();
                (
                    done.then(|| DeploymentView {
                        record: inner.record.clone(),
                        done: true,
                    }),
                    inner.record.last_seq,
                )
            };
            if self.cursor < head {
                let batch = self.service.config.read_batch;
                match self
                    .service
                    .read(&self.dep, self.cursor, batch, !self.caught_up)
                    .await
                {
                    Ok(Some(events)) if !events.is_empty() => {
                        self.cursor = events.last().map(|e| e.event.seq).unwrap_or(self.cursor);
                        // Once it has reached the head, the subscriber is live: from now on it
                        // must keep up with the window or be cut off.
                        self.caught_up |= self.cursor >= head;
                        return Some(SubscriptionItem::Events(events));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        self.finished = true;
                        self.service
                            .metrics
                            .subscribers_cut_off
                            .fetch_add(1, Ordering::Relaxed);
                        warn!(deployment = %self.dep.id, cursor = self.cursor, head, "Slow subscriber cut off; it can resume with Last-Event-ID.");
                        return Some(SubscriptionItem::CutOff);
                    }
                    Err(e) => {
                        warn!(deployment = %self.dep.id, error = %e, "Reading events for a subscriber failed.");
                        self.finished = true;
                        return Some(SubscriptionItem::Closed);
                    }
                }
            }
            self.caught_up |= self.cursor >= head;
            if let Some(view) = done_view {
                if self.cursor >= view.record.last_seq {
                    self.finished = true;
                    return Some(SubscriptionItem::Done(Box::new(view)));
                }
                continue;
            }
            tokio::select! {
                changed = self.rx.changed() => {
                    if changed.is_err() {
                        self.finished = true;
                        return Some(SubscriptionItem::Closed);
                    }
                }
                _ = self.service.shutdown.cancelled() => {
                    self.finished = true;
                    return Some(SubscriptionItem::Closed);
                }
            }
        }
    }
}

/// What the spine holds of a stored record: its creation and its last status change.
fn spine_events_of(r: &DeploymentRecord) -> Vec<CloudEvent> {
    let mut out = vec![created_event(r)];
    if r.status_seq > 0 {
        out.push(status_event(
            r,
            r.status_seq,
            r.finished_at.unwrap_or(r.started_at),
            None,
        ));
    }
    out
}

/// `deployment.created`: a deployment was accepted (`deployment-<id>-created`).
fn created_event(r: &DeploymentRecord) -> CloudEvent {
    SpineDraft {
        id: format!("deployment-{}-created", r.id),
        kind: "deployment.created".into(),
        org: None,
        env: None,
        subject: r.id.to_string(),
        time: r.started_at,
        data: serde_json::json!({
            "status": DeploymentStatus::Pending.as_str(),
            "sovereignFQDN": r.spec.sovereign_fqdn,
            "orgName": r.spec.org_name,
            "dryRun": r.dry_run,
        }),
    }
    .into_event()
}

/// The status change stored as event `seq` of `r` (`deployment-<id>-<seq>`):
/// `deployment.finished` when it ends a run, else `deployment.status-changed`.
fn status_event(
    r: &DeploymentRecord,
    seq: u64,
    time: chrono::DateTime<Utc>,
    message: Option<&str>,
) -> CloudEvent {
    let kind = if r.status.is_terminal() {
        "deployment.finished"
    } else {
        "deployment.status-changed"
    };
    SpineDraft {
        id: format!("deployment-{}-{seq}", r.id),
        kind: kind.into(),
        org: None,
        env: None,
        subject: r.id.to_string(),
        time,
        data: serde_json::json!({
            "status": r.status.as_str(),
            "sovereignFQDN": r.spec.sovereign_fqdn,
            "dryRun": r.dry_run,
            "message": message,
            "error": r.error,
        }),
    }
    .into_event()
}

fn status_event_of(r: &DeploymentRecord, e: &Event, before: DeploymentStatus) -> CloudEvent {
    let mut event = status_event(r, e.seq, e.draft.time, Some(&e.draft.message));
    event.data["previous"] = serde_json::json!(before.as_str());
    event
}
