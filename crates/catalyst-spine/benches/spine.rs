//! The event spine on a real disk (`target/bench-tmp`, fsync on):
//!
//! - **Append, batches of 1 000**: 100 000 realistic application events (50 Organizations × 3
//!   Environments × 72 Applications: installs of 3-deep chains with `dependsOn`, then upgrades
//!   and Flux status reports) appended 1 000 per `Spine::append` call.
//! - **Append, 8 threads × single events** (group commit) against **1 thread × single events**
//!   (one fsync each) in the same run.
//! - **Rebuild**: the 100 000-event log reopened — `FileLog::open` (read, checksum, decode,
//!   index) + `Projector::new` (the full replay into the projection) — 5 runs, median.
//! - **JetStream ingest** (when NATS answers at `$CATALYST_TEST_NATS_URL`, default
//!   127.0.0.1:4222): the same 100 000 events appended to a `JetStreamLog` on a stream of the
//!   bench's own (file storage, deleted after), 1 000 per call — each call returns once every
//!   event is acknowledged by JetStream and in the local mirror.
//!
//! `cargo bench -p catalyst-spine --bench spine`
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalyst_spine::{
    CloudEvent, EventDraft, FileLog, JetStreamConfig, JetStreamLog, Projector, Spine,
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

const ORGS: usize = 50;
const ENVS: [(&str, &str); 3] = [("dev", "develop"), ("stg", "staging"), ("prod", "main")];
/// Applications per Environment: 24 chains `svc-NN` → `svc-NN-api` → `svc-NN-db`.
const CHAINS: usize = 24;
const EVENTS: usize = 100_000;
const BATCH: usize = 1_000;
const RUNS: usize = 5;
const THREADS: usize = 8;
const PER_THREAD: usize = 1_000;
const SINGLE: usize = 1_000;

/// splitmix64: deterministic pseudo-random numbers.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A 40-hex-digit commit id.
fn commit(n: u64) -> String {
    format!(
        "{:016x}{:016x}{:08x}",
        mix(n),
        mix(n ^ 0xA5A5),
        mix(n ^ 0x5A5A) as u32
    )
}

fn time(n: u64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_796_547_600 + n as i64, (n % 1000) as u32 * 1_000_000).expect("time")
}

fn org(o: usize) -> String {
    format!("org-{o:02}")
}

/// The Applications of one chain: `(name, blueprint, depends on)`.
fn chain(c: usize) -> [(String, &'static str, Vec<String>); 3] {
    let shop = format!("svc-{c:02}");
    let api = format!("{shop}-api");
    let db = format!("{shop}-db");
    [
        (shop, "bp-shop", vec![api.clone()]),
        (api, "bp-api", vec![db.clone()]),
        (db, "bp-db", vec![]),
    ]
}

fn app_state(
    org: &str,
    env: (&str, &str),
    name: &str,
    blueprint: &str,
    version: &str,
    commit: &str,
    deps: &[String],
) -> Value {
    json!({"name": name, "environment": format!("{org}-{}", env.0), "envType": env.0,
           "branch": env.1, "commit": commit, "blueprint": blueprint, "version": version,
           "dependsOn": deps})
}

/// The `n`-th event of the workload (0-based), deterministic.
fn event(n: usize) -> CloudEvent {
    let per_org_setup = ORGS;
    let installs = ORGS * ENVS.len() * CHAINS;
    let n64 = n as u64;
    if n < per_org_setup {
        let o = org(n);
        let envs: Vec<Value> = ENVS
            .iter()
            .map(|(t, _)| {
                json!({"environment": {"apiVersion": "catalyst.openova.io/v1", "kind": "Environment",
                        "metadata": {"name": format!("{o}-{t}")}, "spec": {"envType": t}},
                       "policy": {"requireApproval": *t == "prod", "allowedBlueprints": ["*"]}})
            })
            .collect();
        return EventDraft {
            id: format!("git-{}", commit(n64)),
            kind: "organization.created".into(),
            org: Some(o.clone()),
            env: None,
            subject: o.clone(),
            time: time(n64),
            data: json!({"actor": "root", "requestId": format!("req-{n:08}"),
                "commits": [{"repo": "system/catalyst-config", "branch": "main", "commit": commit(n64)}],
                "organization": {"apiVersion": "catalyst.openova.io/v1", "kind": "Organization",
                    "metadata": {"name": o}, "spec": {"contact": format!("ops@{o}.example")}},
                "environments": envs}),
        }
        .into_event();
    }
    if n < per_org_setup + installs {
        // Install of one chain: three repositories, three commits, one event.
        let i = n - per_org_setup;
        let (o, rest) = (i / (ENVS.len() * CHAINS), i % (ENVS.len() * CHAINS));
        let (env, c) = (ENVS[rest / CHAINS], rest % CHAINS);
        let o = org(o);
        let apps = chain(c);
        let commits: Vec<String> = (0..3).map(|k| commit((1 << 40) + n64 * 4 + k)).collect();
        return EventDraft {
            id: format!("git-{}", commits[0]),
            kind: "application.installed".into(),
            org: Some(o.clone()),
            env: Some(format!("{o}-{}", env.0)),
            subject: format!("{o}/{}", apps[0].0),
            time: time(n64),
            data: json!({"actor": format!("dev@{o}.example"), "requestId": format!("req-{n:08}"),
                "commits": apps.iter().zip(&commits).map(|(a, c)| json!({"repo": format!("{o}/{}", a.0), "branch": env.1, "commit": c})).collect::<Vec<_>>(),
                "applications": apps.iter().zip(&commits).map(|(a, c)| app_state(&o, env, &a.0, a.1, "1.0.0", c, &a.2)).collect::<Vec<_>>()}),
        }
        .into_event();
    }
    // Then, for one pseudo-random Application: an upgrade (3 of 4) or Flux's report on it.
    let r = mix(n64);
    let o = org((r % ORGS as u64) as usize);
    let env = ENVS[((r >> 8) % ENVS.len() as u64) as usize];
    let c = ((r >> 16) % CHAINS as u64) as usize;
    let k = ((r >> 24) % 3) as usize;
    let (name, blueprint, deps) = chain(c)[k].clone();
    let envname = format!("{o}-{}", env.0);
    if n % 4 == 3 {
        let failed = (r >> 32).is_multiple_of(10);
        return EventDraft {
            id: format!("flux-{}", commit(n64)),
            kind: if failed { "flux.failed" } else { "flux.ready" }.into(),
            org: Some(o.clone()),
            env: Some(envname),
            subject: format!("{o}/{name}"),
            time: time(n64),
            data: json!({"application": name, "status": if failed { "failed" } else { "ready" },
                "revision": format!("{}@sha1:{}", env.1, commit(n64 - 1)),
                "message": if failed { "Helm upgrade failed: timed out waiting for the condition" } else { "Helm upgrade succeeded" }}),
        }
        .into_event();
    }
    let c = commit(n64);
    let version = format!("1.{}.{}", (n / 1000) % 50, n % 1000);
    EventDraft {
        id: format!("git-{c}"),
        kind: "application.upgraded".into(),
        org: Some(o.clone()),
        env: Some(envname),
        subject: format!("{o}/{name}"),
        time: time(n64),
        data: json!({"actor": format!("dev@{o}.example"), "requestId": format!("req-{n:08}"),
            "commits": [{"repo": format!("{o}/{name}"), "branch": env.1, "commit": c}],
            "applications": [app_state(&o, env, &name, blueprint, &version, &c, &deps)]}),
    }
    .into_event()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// `n` single-event appends from each of `threads` threads into a fresh log; events/s.
fn single_appends(dir: &Path, threads: usize, n: usize) -> f64 {
    let (log, _) = FileLog::open(dir).expect("open");
    let log = Arc::new(log);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..n {
                    let mut e = event(EVENTS + t * 1_000_000 + i);
                    e.id = format!("{}-{t}-{i}", e.id);
                    log.append(vec![e]).expect("append");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let took = start.elapsed();
    assert_eq!(log.head(), (threads * n) as u64);
    rate(threads * n, took)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
    std::fs::create_dir_all(&root).expect("bench dir");
    let tmp = tempfile::tempdir_in(&root).expect("tempdir");
    let dir = tmp.path().join("events");

    // Append 100 000 events, 1 000 per call (generating a batch is not timed).
    let (log, _) = FileLog::open(&dir).expect("open");
    let mut appending = Duration::ZERO;
    for b in 0..EVENTS / BATCH {
        let batch: Vec<CloudEvent> = (b * BATCH..(b + 1) * BATCH).map(event).collect();
        let t = Instant::now();
        let got = log.append(batch).expect("append");
        appending += t.elapsed();
        assert_eq!(got.len(), BATCH);
    }
    assert_eq!(log.head(), EVENTS as u64);
    let bytes = std::fs::metadata(log.path()).expect("log").len();
    drop(log);
    println!(
        "append, batches of {BATCH}: {EVENTS} events ({:.1} MB) in {:.2?} = {:.0} events/s",
        bytes as f64 / 1e6,
        appending,
        rate(EVENTS, appending)
    );

    // Rebuild: open (read + decode + index) and replay into a projection.
    let cards = ORGS * ENVS.len() * CHAINS * 3;
    let (mut opens, mut replays, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=RUNS {
        let t = Instant::now();
        let (log, report) = FileLog::open(&dir).expect("open");
        let opened = t.elapsed();
        let projector = Projector::new(Arc::new(log));
        let total = t.elapsed();
        assert_eq!(report.events, EVENTS as u64);
        let (seq, n) = projector.read(|p| {
            (
                p.seq(),
                p.orgs().values().map(|v| v.apps.len()).sum::<usize>(),
            )
        });
        assert_eq!((seq, n), (EVENTS as u64, cards));
        println!(
            "rebuild run {run}: open {opened:.2?} + replay {:.2?} = {total:.2?}",
            total - opened
        );
        opens.push(opened);
        replays.push(total - opened);
        totals.push(total);
        drop(projector);
    }
    let total = median(totals);
    println!(
        "rebuild of {EVENTS} events ({cards} App cards), median of {RUNS}: {total:.2?} (open {:.2?}, replay {:.2?}) = {:.0} events/s; target < 3 s",
        median(opens),
        median(replays),
        rate(EVENTS, total)
    );

    jetstream_ingest();

    // Single-event appends: one thread (one fsync each) vs 8 threads (group commit).
    let one = single_appends(&tmp.path().join("single"), 1, SINGLE);
    let many = single_appends(&tmp.path().join("group"), THREADS, PER_THREAD);
    println!("append, 1 thread × {SINGLE} single events: {one:.0} events/s");
    println!(
        "append, {THREADS} threads × {PER_THREAD} single events (group commit): {many:.0} events/s = {:.1}× one thread",
        many / one
    );
}

/// 100 000 events into JetStream, 1 000 per append; skipped (with the reason) without NATS.
fn jetstream_ingest() {
    let Some(stream) = catalyst_testkit::TestStream::new("bench") else {
        println!("jetstream ingest: skipped, NATS does not answer");
        return;
    };
    let mut config = JetStreamConfig::new(stream.url.clone());
    config.stream = stream.name.clone();
    config.subject_prefix = stream.prefix();
    config.kv_prefix = stream.kv_prefix();
    let log = JetStreamLog::open(config).expect("open the JetStream spine");
    let mut appending = Duration::ZERO;
    let mut batches = Vec::new();
    for b in 0..EVENTS / BATCH {
        let batch: Vec<CloudEvent> = (b * BATCH..(b + 1) * BATCH).map(event).collect();
        let t = Instant::now();
        let got = log.append(batch).expect("append");
        let took = t.elapsed();
        appending += took;
        batches.push(took);
        assert_eq!(got.len(), BATCH);
    }
    assert_eq!(log.head(), EVENTS as u64);
    println!(
        "jetstream ingest, batches of {BATCH}: {EVENTS} events in {:.2?} = {:.0} events/s (median batch {:.2?}); target >= 20 000 events/s",
        appending,
        rate(EVENTS, appending),
        median(batches)
    );
    drop(log);
}
