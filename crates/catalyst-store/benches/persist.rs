//! Event persistence benchmark: our append-only FileStore against the upstream design (rewrite
//! the whole record, all events so far, with temp file + fsync + rename on every event).
//!
//! Run with: `cargo bench -p catalyst-store --bench persist`
//!
//! Everything is written under `target/bench-tmp` (a real disk, not a tmpfs), with fsync on.
//! Each measurement runs 3 times; medians are printed.

mod support;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalyst_core::{DeploymentStatus, Event};
use catalyst_store::{DeploymentStore, FileStore};
use chrono::Utc;
use support::{events, fresh, id, median, record, run_baseline, BASELINE_BUDGET};

const EVENTS: u64 = 10_000;
const REPEATS: usize = 3;
const LOAD_DEPLOYMENTS: u64 = 10_000;
const LOAD_EVENTS: u64 = 20;

async fn run_ours(dir: &Path, evs: &[Event], batch: usize) -> Result<Duration, String> {
    let store = FileStore::open(dir).map_err(|e| e.to_string())?;
    let d = id(1);
    store.create(&record(&d)).await.map_err(|e| e.to_string())?;
    let start = Instant::now();
    for chunk in evs.chunks(batch) {
        store
            .append_events(&d, chunk)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(start.elapsed())
}

/// 20 deployments, each appending one event per call, all at once: group commit at work.
async fn run_concurrent(dir: &Path, evs: &[Event]) -> Result<Duration, String> {
    const N: u64 = 20;
    let store = Arc::new(FileStore::open(dir).map_err(|e| e.to_string())?);
    for n in 0..N {
        store
            .create(&record(&id(n)))
            .await
            .map_err(|e| e.to_string())?;
    }
    let per = evs.len() / N as usize;
    let evs = Arc::new(evs[..per].to_vec());
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..N {
        let store = Arc::clone(&store);
        let evs = Arc::clone(&evs);
        tasks.spawn(async move {
            for e in evs.iter() {
                store.append_events(&id(n), std::slice::from_ref(e)).await?;
            }
            Ok::<_, catalyst_store::StoreError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    }
    Ok(start.elapsed())
}

/// Lays out `LOAD_DEPLOYMENTS` finished deployments by copying one written by the store.
async fn populate(dir: &Path) -> Result<(), String> {
    let template = dir.join("template");
    let store = FileStore::open(&template).map_err(|e| e.to_string())?;
    let t = id(u64::MAX);
    let mut r = record(&t);
    store.create(&r).await.map_err(|e| e.to_string())?;
    store
        .append_events(&t, &events(LOAD_EVENTS))
        .await
        .map_err(|e| e.to_string())?;
    r.status = DeploymentStatus::Failed;
    r.error = Some("tofu apply failed".into());
    r.finished_at = Some(Utc::now());
    r.last_seq = LOAD_EVENTS;
    store.save_snapshot(&r).await.map_err(|e| e.to_string())?;
    let snap = fs::read_to_string(template.join(t.as_str()).join("snapshot.json"))
        .map_err(|e| e.to_string())?;
    let log = fs::read(template.join(t.as_str()).join("events.log")).map_err(|e| e.to_string())?;
    let root = dir.join("store");
    for n in 0..LOAD_DEPLOYMENTS {
        let d = root.join(id(n).as_str());
        fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        fs::write(
            d.join("snapshot.json"),
            snap.replace(t.as_str(), id(n).as_str()),
        )
        .map_err(|e| e.to_string())?;
        fs::write(d.join("events.log"), &log).map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn run_load(root: &Path) -> Result<(Duration, usize), String> {
    let start = Instant::now();
    let store = FileStore::open(root).map_err(|e| e.to_string())?;
    let loaded = store.load_all().await.map_err(|e| e.to_string())?;
    Ok((start.elapsed(), loaded.records.len()))
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
    let avg = serde_json::to_vec(&evs[EVENTS as usize / 2])
        .map(|b| b.len())
        .unwrap_or(0);
    println!("command: cargo bench -p catalyst-store --bench persist");
    println!(
        "dir: {} | {EVENTS} events of ~{avg} bytes JSON | fsync on | {REPEATS} runs, medians",
        base.display()
    );

    let rates = |label: &str, runs: Vec<(u64, Duration)>| -> f64 {
        let per_run: Vec<f64> = runs
            .iter()
            .map(|(n, t)| *n as f64 / t.as_secs_f64())
            .collect();
        let m = median(per_run.clone());
        let detail: Vec<String> = runs
            .iter()
            .map(|(n, t)| format!("{n} ev in {:.2}s", t.as_secs_f64()))
            .collect();
        println!("{label:<52} {m:>10.0} events/s   [{}]", detail.join("; "));
        m
    };

    let mut a = Vec::new();
    let mut b = Vec::new();
    let mut c = Vec::new();
    let mut e = Vec::new();
    for run in 0..REPEATS {
        let dir = fresh(&base, &format!("ours-1-{run}"));
        a.push((EVENTS, rt.block_on(run_ours(&dir, &evs, 1))?));
        let _ = fs::remove_dir_all(&dir);
        let dir = fresh(&base, &format!("ours-64-{run}"));
        b.push((EVENTS, rt.block_on(run_ours(&dir, &evs, 64))?));
        let _ = fs::remove_dir_all(&dir);
        let dir = fresh(&base, &format!("ours-conc-{run}"));
        e.push((EVENTS, rt.block_on(run_concurrent(&dir, &evs))?));
        let _ = fs::remove_dir_all(&dir);
        let dir = fresh(&base, &format!("baseline-{run}"));
        c.push(run_baseline(&dir, &evs).map_err(|e| e.to_string())?);
        let _ = fs::remove_dir_all(&dir);
    }
    let ra = rates("(a) FileStore, 1 event per append call", a);
    let rb = rates("(b) FileStore, batches of 64", b);
    let re = rates("(e) FileStore, 20 deployments x 500, 1 per call", e);
    let complete = c.iter().all(|(n, _)| *n == EVENTS);
    let rc = rates("(c) baseline: rewrite whole record per event", c.clone());
    if complete {
        println!("    baseline ran the full {EVENTS} events in every run");
    } else {
        let counts: Vec<String> = c.iter().map(|(n, _)| n.to_string()).collect();
        println!(
            "    baseline stopped at the {}s budget: measured {} of {EVENTS} events \
             (rate over what it wrote; it only gets slower as the record grows)",
            BASELINE_BUDGET.as_secs(),
            counts.join("/")
        );
    }
    println!("ratio (a)/(c): {:.1}x", ra / rc);
    println!("ratio (b)/(c): {:.1}x", rb / rc);
    println!("ratio (e)/(c): {:.1}x", re / rc);

    let load_dir = fresh(&base, "load");
    rt.block_on(populate(&load_dir))?;
    let mut loads = Vec::new();
    let mut count = 0;
    for _ in 0..REPEATS {
        let (t, n) = rt.block_on(run_load(&load_dir.join("store")))?;
        loads.push(t.as_secs_f64() * 1000.0);
        count = n;
    }
    println!(
        "(d) load_all: {count} finished deployments x {LOAD_EVENTS} events: median {:.0} ms \
         (page cache warm) [{}]",
        median(loads.clone()),
        loads
            .iter()
            .map(|ms| format!("{ms:.0} ms"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let _ = fs::remove_dir_all(&load_dir);
    Ok(())
}
