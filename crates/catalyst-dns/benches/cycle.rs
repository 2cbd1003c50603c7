//! Reserve → commit → release cycles per second, against a private real PowerDNS (sqlite3
//! backend, DNSSEC on) with the SQLite and the PostgreSQL allocation store, and against the
//! stores alone (no DNS) for comparison.
//!
//! `cargo bench -p catalyst-dns --bench cycle` (env: `CYCLES`, default 200; `WORKERS`,
//! default 1 and 8). Each cycle creates a signed child zone, publishes NS+DS in the parent,
//! writes six A records, then deletes the zone and the delegation.
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use catalyst_dns::{AllocationStore, Allocator, PoolConfig, PowerDns, SqliteAllocationStore};

fn config() -> PoolConfig {
    PoolConfig {
        pool_domains: vec!["omani.works".into()],
        nameservers: vec!["ns1.openova.io".into(), "ns2.openova.io".into()],
        reservation_ttl: Duration::from_secs(600),
    }
}

async fn run(
    label: &str,
    store: Arc<dyn AllocationStore>,
    dns: Option<PowerDns>,
    cycles: usize,
    workers: usize,
) {
    let alloc = Arc::new(Allocator::new(config(), store, dns));
    alloc.bootstrap().await.expect("bootstrap");
    let per_worker = cycles.div_ceil(workers);
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let alloc = alloc.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_worker);
                for i in 0..per_worker {
                    let t = Instant::now();
                    let sub = format!("b{w}x{i}");
                    let r = alloc
                        .reserve("omani.works", &sub, "bench")
                        .await
                        .expect("reserve");
                    let token = r.reservation_token.expect("token");
                    alloc
                        .commit("omani.works", &sub, &token, "", "192.0.2.1")
                        .await
                        .expect("commit");
                    alloc.release("omani.works", &sub).await.expect("release");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("worker"));
    }
    let elapsed = start.elapsed();
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    println!(
        "{label:<34} workers={workers:<2} cycles={:<5} {:>8.1} cycles/s  p50={:>7.2}ms  p99={:>7.2}ms",
        lat.len(),
        lat.len() as f64 / elapsed.as_secs_f64(),
        p(0.5).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
    );
}

fn main() {
    let cycles: usize = std::env::var("CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let scratch =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
        std::fs::create_dir_all(&scratch).expect("scratch dir");
        let dir = tempfile::tempdir_in(&scratch).expect("tmp");
        for workers in [1usize, 8] {
            let sqlite = |n: &str| -> Arc<dyn AllocationStore> {
                Arc::new(
                    SqliteAllocationStore::open(dir.path().join(format!("{n}-{workers}.sqlite3")))
                        .expect("sqlite"),
                )
            };
            run(
                "sqlite store, no DNS",
                sqlite("nodns"),
                None,
                cycles * 5,
                workers,
            )
            .await;
            let pg = support::pg::store().await;
            if let Some((store, _guard)) = &pg {
                run(
                    "postgres store, no DNS",
                    Arc::new(store.clone()),
                    None,
                    cycles * 5,
                    workers,
                )
                .await;
            }
            let Some(pdns) = support::Pdns::start() else {
                continue;
            };
            run(
                "sqlite store + PowerDNS",
                sqlite("pdns"),
                Some(pdns.client()),
                cycles,
                workers,
            )
            .await;
            drop(pdns);
            if let Some((store, _guard)) = &pg {
                let pdns = support::Pdns::start().expect("pdns");
                run(
                    "postgres store + PowerDNS",
                    Arc::new(store.clone()),
                    Some(pdns.client()),
                    cycles,
                    workers,
                )
                .await;
            }
        }
    });
}
