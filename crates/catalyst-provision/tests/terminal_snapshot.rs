//! A deployment's terminal state is delivered (`done`) only once its events and snapshot are
//! stored: a
//! store that refuses it for a while (a full disk) delays `done`, and a restart afterwards
//! keeps the state that was delivered. (The fault campaign once saw `ready` delivered with the
//! snapshot refused, then `failed` as an orphan after the restart.)
mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use catalyst_core::{DeploymentId, DeploymentRecord, DeploymentStatus, Event, Secret};
use catalyst_provision::dry_run::DryRunProvisioner;
use catalyst_provision::service::{DeploymentService, ServiceConfig, SubscriptionItem};
use catalyst_store::file::FileStore;
use catalyst_store::{DeploymentStore, Loaded, StoreError};
use common::{settings, spec, TOKEN};

/// A `FileStore` that refuses the first `refusals` terminal snapshots with ENOSPC; and the first
/// `append_refusals` appends of terminal events, of which the first `lost_answers` are written
/// but answered with an error (a database whose answer was lost).
struct FullDiskStore {
    inner: FileStore,
    refusals: AtomicU32,
    append_refusals: AtomicU32,
    lost_answers: AtomicU32,
}

fn spend(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn enospc() -> StoreError {
    StoreError::Io {
        path: "events.log".into(),
        source: std::io::Error::from_raw_os_error(28),
    }
}

#[async_trait]
impl DeploymentStore for FullDiskStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn create(&self, record: &DeploymentRecord) -> Result<(), StoreError> {
        self.inner.create(record).await
    }
    async fn save_snapshot(&self, record: &DeploymentRecord) -> Result<(), StoreError> {
        let refuse = record.status.is_terminal()
            && self
                .refusals
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if refuse {
            return Err(StoreError::Io {
                path: "snapshot.json".into(),
                source: std::io::Error::from_raw_os_error(28),
            });
        }
        self.inner.save_snapshot(record).await
    }
    async fn append_events(&self, id: &DeploymentId, events: &[Event]) -> Result<(), StoreError> {
        let terminal = events
            .iter()
            .any(|e| e.draft.status.is_some_and(|s| s.is_terminal()));
        if terminal && spend(&self.append_refusals) {
            if spend(&self.lost_answers) {
                self.inner.append_events(id, events).await?;
            }
            return Err(enospc());
        }
        self.inner.append_events(id, events).await
    }
    async fn events_after(
        &self,
        id: &DeploymentId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.inner.events_after(id, after, limit).await
    }
    async fn load_all(&self) -> Result<Loaded, StoreError> {
        self.inner.load_all().await
    }
    async fn delete(&self, id: &DeploymentId) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }
    async fn check_writable(&self) -> Result<(), StoreError> {
        self.inner.check_writable().await
    }
}

async fn service(
    dir: &std::path::Path,
    refusals: u32,
) -> (Arc<DeploymentService>, Arc<FullDiskStore>) {
    service_refusing(dir, refusals, 0, 0).await
}

async fn service_refusing(
    dir: &std::path::Path,
    refusals: u32,
    append_refusals: u32,
    lost_answers: u32,
) -> (Arc<DeploymentService>, Arc<FullDiskStore>) {
    let store = Arc::new(FullDiskStore {
        inner: FileStore::open(dir.join("store")).unwrap(),
        refusals: AtomicU32::new(refusals),
        append_refusals: AtomicU32::new(append_refusals),
        lost_answers: AtomicU32::new(lost_answers),
    });
    let service = DeploymentService::start(
        store.clone(),
        Arc::new(DryRunProvisioner::new(settings(&dir.join("work")))),
        ServiceConfig::default(),
    )
    .await
    .unwrap();
    (service, store)
}

#[tokio::test]
async fn done_waits_for_the_terminal_snapshot_and_a_restart_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (svc, store) = service(tmp.path(), 3).await;
    let id = svc
        .create(spec(), Secret::new(TOKEN))
        .await
        .unwrap()
        .record
        .id;
    let mut sub = svc.subscribe(&id, 0).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match sub.next().await {
                Some(SubscriptionItem::Done(view)) => return view,
                Some(_) => {}
                None => panic!("the stream ended without done"),
            }
        }
    })
    .await
    .expect("done arrives once the store takes the snapshot");
    assert_eq!(done.record.status, DeploymentStatus::Ready);
    assert_eq!(
        store.refusals.load(Ordering::SeqCst),
        0,
        "done came only after every refusal"
    );
    drop(sub);
    drop(svc);

    // A restart (a fresh service on the same store) keeps the delivered state.
    let (svc, _) = service(tmp.path(), 0).await;
    let view = svc.view(&id).unwrap();
    assert_eq!(view.record.status, DeploymentStatus::Ready);
}

/// The terminal events themselves refused (a database restarting): retried until stored, once
/// — a refused write that landed anyway is not written twice — and only then `done`.
#[tokio::test]
async fn refused_terminal_events_are_retried_once_and_done_waits_for_them() {
    // Refused three times: retried until stored.
    terminal_events_refused(3, 0, 0).await;
    // Refused, but the first write landed (its answer lost): found stored, not written again.
    terminal_events_refused(3, 1, 2).await;
}

async fn terminal_events_refused(refusals: u32, lost_answers: u32, left_unspent: u32) {
    let tmp = tempfile::tempdir().unwrap();
    let (svc, store) = service_refusing(tmp.path(), 1, refusals, lost_answers).await;
    let id = svc
        .create(spec(), Secret::new(TOKEN))
        .await
        .unwrap()
        .record
        .id;
    let mut sub = svc.subscribe(&id, 0).unwrap();
    let mut seqs = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match sub.next().await {
                Some(SubscriptionItem::Done(view)) => return view,
                Some(SubscriptionItem::Events(batch)) => {
                    seqs.extend(batch.iter().map(|p| p.event.seq))
                }
                Some(_) => {}
                None => panic!("the stream ended without done"),
            }
        }
    })
    .await
    .expect("done arrives once the store takes the terminal events");
    assert_eq!(done.record.status, DeploymentStatus::Ready);
    assert_eq!(store.append_refusals.load(Ordering::SeqCst), left_unspent);
    let stored = store.inner.events_after(&id, 0, 10_000).await.unwrap();
    let stored: Vec<u64> = stored.iter().map(|e| e.seq).collect();
    assert_eq!(
        stored,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "no gap, no repeat"
    );
    assert_eq!(seqs, stored, "every stored event delivered once, in order");
    drop(sub);
    drop(svc);
    let (svc, _) = service(tmp.path(), 0).await;
    assert_eq!(
        svc.view(&id).unwrap().record.status,
        DeploymentStatus::Ready
    );
}
