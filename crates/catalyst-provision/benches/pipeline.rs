//! Event persistence through the real deployment service, against the upstream baseline.
//!
//! Run with: `cargo bench -p catalyst-provision --bench pipeline`
//!
//! A bench-only provisioner emits a burst of realistic `tofu apply` lines through the
//! `EventSink` as fast as it can, then succeeds. The clock runs from `create` until a subscriber
//! sees `Done`: every event durable in a `FileStore` (fsync on) under `target/bench-tmp` (a real
//! disk) and published. The baseline (upstream design: the whole record, all events so far,
//! rewritten with temp file + fsync + rename per event) writes the same events in the same run.
//! Each measurement runs 3 times; medians are printed.

#[path = "../../catalyst-store/benches/support/mod.rs"]
mod support;

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use catalyst_core::{DeploymentId, DeploymentRecord, DeploymentStatus, Event, EventDraft, Secret};
use catalyst_provision::service::{DeploymentService, ServiceConfig, SubscriptionItem};
use catalyst_provision::{EventSink, ProvisionError, ProvisionJob, ProvisionOutput, Provisioner};
use catalyst_store::file::FileStore;
use catalyst_store::{DeploymentStore, Loaded, StoreError};
use support::{events, fresh, id, median, record, run_baseline, BASELINE_BUDGET};
use tokio_util::sync::CancellationToken;

const EVENTS: u64 = 10_000;
const REPEATS: usize = 3;

/// Emits its drafts as one burst, then succeeds.
struct BurstProvisioner {
    drafts: Arc<Vec<EventDraft>>,
}

#[async_trait]
impl Provisioner for BurstProvisioner {
    fn name(&self) -> &'static str {
        "bench-burst"
    }

    fn dry_run(&self) -> bool {
        false
    }

    async fn provision(
        &self,
        _job: ProvisionJob,
        sink: EventSink,
        _cancel: CancellationToken,
    ) -> Result<ProvisionOutput, ProvisionError> {
        for d in self.drafts.iter() {
            sink.emit(d.clone()).await;
        }
        Ok(ProvisionOutput::default())
    }
}

/// Delegates to a `FileStore`, counting the durable writes the service asks for.
struct CountingStore {
    inner: FileStore,
    appends: AtomicU64,
    snapshots: AtomicU64,
}

#[async_trait]
impl DeploymentStore for CountingStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn create(&self, record: &DeploymentRecord) -> Result<(), StoreError> {
        self.inner.create(record).await
    }

    async fn save_snapshot(&self, record: &DeploymentRecord) -> Result<(), StoreError> {
        self.snapshots.fetch_add(1, Ordering::Relaxed);
        self.inner.save_snapshot(record).await
    }

    async fn append_events(&self, id: &DeploymentId, events: &[Event]) -> Result<(), StoreError> {
        self.appends.fetch_add(1, Ordering::Relaxed);
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

struct PipelineRun {
    elapsed: Duration,
    /// `append_events` calls (one fsync batch each), the final status event included.
    appends: u64,
    snapshots: u64,
    received: u64,
}

async fn run_pipeline(dir: &Path, drafts: Arc<Vec<EventDraft>>) -> Result<PipelineRun, String> {
    let store = Arc::new(CountingStore {
        inner: FileStore::open(dir).map_err(|e| e.to_string())?,
        appends: AtomicU64::new(0),
        snapshots: AtomicU64::new(0),
    });
    let service = DeploymentService::start(
        store.clone(),
        Arc::new(BurstProvisioner { drafts }),
        ServiceConfig::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let spec = record(&id(1)).spec;

    let start = Instant::now();
    let view = service
        .create(spec, Secret::new("bench-token"))
        .await
        .map_err(|e| e.to_string())?;
    let dep = view.record.id;
    let mut sub = service.subscribe(&dep, 0).map_err(|e| e.to_string())?;
    let mut received = 0u64;
    let done = loop {
        match sub.next().await {
            Some(SubscriptionItem::Events(evs)) => received += evs.len() as u64,
            Some(SubscriptionItem::Done(view)) => break view,
            // Resume from the store, as a client would with Last-Event-ID.
            Some(SubscriptionItem::CutOff) => {
                let cursor = sub.cursor();
                sub = service.subscribe(&dep, cursor).map_err(|e| e.to_string())?;
            }
            Some(SubscriptionItem::Closed) | None => return Err("subscription closed".into()),
        }
    };
    let elapsed = start.elapsed();

    let expected = EVENTS + 1; // the burst plus the terminal status event
    if done.record.status != DeploymentStatus::Ready
        || done.record.last_seq != expected
        || received != expected
        || !service.view(&dep).map_err(|e| e.to_string())?.done
    {
        return Err(format!(
            "unexpected end: status {}, last_seq {}, received {received}, expected {expected}",
            done.record.status, done.record.last_seq
        ));
    }
    let stored = store
        .events_after(&dep, 0, usize::MAX)
        .await
        .map_err(|e| e.to_string())?;
    if stored.len() as u64 != expected {
        return Err(format!(
            "{} events stored, expected {expected}",
            stored.len()
        ));
    }
    service.shutdown(Duration::from_secs(5)).await;
    Ok(PipelineRun {
        elapsed,
        appends: store.appends.load(Ordering::Relaxed),
        snapshots: store.snapshots.load(Ordering::Relaxed),
        received,
    })
}

fn main() -> Result<(), String> {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(Path::new("target"))
        .join("bench-tmp");
    fs::create_dir_all(&base).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let evs = events(EVENTS);
    let drafts: Arc<Vec<EventDraft>> = Arc::new(evs.iter().map(|e| e.draft.clone()).collect());
    let avg = serde_json::to_vec(&evs[EVENTS as usize / 2])
        .map(|b| b.len())
        .unwrap_or(0);
    println!("command: cargo bench -p catalyst-provision --bench pipeline");
    println!(
        "dir: {} | {EVENTS} events of ~{avg} bytes JSON | fsync on | {REPEATS} runs, medians",
        base.display()
    );

    let mut ours = Vec::new();
    let mut baseline = Vec::new();
    for run in 0..REPEATS {
        let dir = fresh(&base, &format!("pipeline-{run}"));
        let r = rt.block_on(run_pipeline(&dir, drafts.clone()))?;
        let _ = fs::remove_dir_all(&dir);
        let dir = fresh(&base, &format!("pipeline-baseline-{run}"));
        baseline.push(run_baseline(&dir, &evs).map_err(|e| e.to_string())?);
        let _ = fs::remove_dir_all(&dir);
        ours.push(r);
    }

    let ours_rates: Vec<f64> = ours
        .iter()
        .map(|r| EVENTS as f64 / r.elapsed.as_secs_f64())
        .collect();
    let ro = median(ours_rates);
    println!(
        "{:<58} {ro:>10.0} events/s   [{}]",
        "service: create -> Done, burst through EventSink, FileStore",
        ours.iter()
            .map(|r| format!(
                "{EVENTS} ev in {:.3}s, {} appends, {} snapshots, {} received",
                r.elapsed.as_secs_f64(),
                r.appends,
                r.snapshots,
                r.received
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let appends = median(ours.iter().map(|r| r.appends as f64).collect());
    println!(
        "    fsync batches (append_events calls, terminal event included): median {appends:.0} \
         (~{:.0} events per batch)",
        (EVENTS + 1) as f64 / appends
    );

    let rb = median(
        baseline
            .iter()
            .map(|(n, t)| *n as f64 / t.as_secs_f64())
            .collect(),
    );
    println!(
        "{:<58} {rb:>10.0} events/s   [{}]",
        "baseline: rewrite whole record per event",
        baseline
            .iter()
            .map(|(n, t)| format!("{n} ev in {:.2}s", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join("; ")
    );
    if baseline.iter().all(|(n, _)| *n == EVENTS) {
        println!("    baseline ran the full {EVENTS} events in every run");
    } else {
        let counts: Vec<String> = baseline.iter().map(|(n, _)| n.to_string()).collect();
        println!(
            "    baseline stopped at the {}s budget: measured {} of {EVENTS} events \
             (rate over what it wrote; it only gets slower as the record grows)",
            BASELINE_BUDGET.as_secs(),
            counts.join("/")
        );
    }
    println!("ratio ours/baseline: {:.1}x", ro / rb);
    Ok(())
}
