//! The fault campaign: runs mixed load against the real `catalyst serve`, SIGKILLs it at
//! random moments (seeded) and restarts it on the same data, and after every restart checks
//! that every acknowledged write is there, that nothing unacknowledged is half-visible, that no
//! event is duplicated and that every Git repository passes `git fsck --strict`.
#![forbid(unsafe_code)]

mod api;
mod check;
mod disk;
mod ledger;
mod load;
mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing::{info, warn};

use crate::api::Api;
use crate::check::{Report, Scope};
use crate::disk::SmallDisk;
use crate::ledger::{Kind, Ledger};
use crate::load::Load;
use crate::server::{Launch, Server};

/// The OpenTofu stand-in (a shell script; not OpenTofu): written into the work directory.
const STANDIN_TOFU: &str = include_str!("../standin/tofu");

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// Files under the data directory (deployments), SQLite (pool).
    Embedded,
    /// PostgreSQL (deployments and pool) in a fresh schema of --database-url.
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SpineKind {
    /// The event log under the data directory.
    File,
    /// A fresh JetStream stream (and subject/KV prefix) on --nats-url.
    Jetstream,
}

/// Fault campaign against the real `catalyst serve`.
#[derive(Debug, Parser)]
#[command(name = "catalyst-chaos", version)]
struct Args {
    /// How many times to SIGKILL the server (each followed by a restart and the checks).
    #[arg(long, default_value_t = 10)]
    kills: u32,

    /// Where deployments and pool allocations are stored.
    #[arg(long, value_enum, default_value = "embedded")]
    backend: Backend,

    /// The event spine.
    #[arg(long, value_enum, default_value = "file")]
    spine: SpineKind,

    /// Seed of every random choice (kill moments, load mix); random when not given. Printed.
    #[arg(long)]
    seed: Option<u64>,

    /// The `catalyst` binary. Default: `catalyst` next to this binary (same target dir).
    #[arg(long)]
    bin: Option<PathBuf>,

    /// PostgreSQL for --backend postgres (a fresh schema is created there, dropped after a
    /// clean run).
    #[arg(
        long,
        env = "CATALYST_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database_url: String,

    /// NATS for --spine jetstream (a fresh stream and prefix, deleted after a clean run).
    #[arg(
        long,
        env = "CATALYST_TEST_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats_url: String,

    /// Blueprint catalog the server installs from (default: the repository's examples/catalog).
    #[arg(long)]
    catalog: Option<PathBuf>,

    /// Work directory (data dir, logs, stand-in). Default: a fresh one under the temp dir,
    /// removed after a clean run and kept after a failing one.
    #[arg(long)]
    work_dir: Option<PathBuf>,

    /// Shortest load period before a kill, in milliseconds.
    #[arg(long, default_value_t = 300)]
    min_uptime_ms: u64,

    /// Longest load period before a kill, in milliseconds.
    #[arg(long, default_value_t = 2500)]
    max_uptime_ms: u64,

    /// Share of kills (0–1) aimed at start-up (while the server restores and repairs) instead
    /// of under load.
    #[arg(long, default_value_t = 0.1)]
    startup_kill_share: f64,

    /// Extra progress lines per apply in the OpenTofu stand-in (more events per deployment).
    #[arg(long, default_value_t = 40)]
    apply_lines: u32,

    /// Disk full: the data directory is a small tmpfs (needs root or CAP_SYS_ADMIN); every
    /// other run fills it under load, checks the server once the space is back, loads it again
    /// (each kind of write must succeed) and then kills it.
    #[arg(long)]
    disk_full: bool,

    /// Size of the --disk-full tmpfs, in MiB.
    #[arg(long, default_value_t = 256)]
    disk_size_mb: u64,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn default_bin() -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let bin = me
        .parent()
        .context("the harness binary has no directory")?
        .join("catalyst");
    if !bin.is_file() {
        bail!(
            "{} not found: build it first (`cargo build -p catalyst`) or pass --bin",
            bin.display()
        );
    }
    Ok(bin)
}

/// A name no other run uses.
fn unique() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// What the backends need set up and torn down.
enum Resources {
    None,
    Schema { url: String, schema: String },
}

async fn pg_client(url: &str) -> Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {url}"))?;
    tokio::spawn(conn);
    Ok(client)
}

/// Deletes the stream and every KV bucket of `prefix` (best effort: a failure is logged).
async fn delete_jetstream(url: &str, stream: &str, kv_prefix: &str) {
    let Ok(client) = async_nats::connect(url).await else {
        warn!(url, "Cannot reach NATS to delete the campaign's stream.");
        return;
    };
    let js = async_nats::jetstream::new(client);
    let _ = js.delete_stream(stream).await;
    let mut names = js.stream_names();
    let mut doomed = Vec::new();
    use futures::StreamExt;
    while let Some(Ok(name)) = names.next().await {
        if name.starts_with(&format!("KV_{kv_prefix}")) {
            doomed.push(name);
        }
    }
    for name in doomed {
        let _ = js.delete_stream(&name).await;
    }
}

#[derive(Default)]
struct Totals {
    kills: u32,
    disk_fulls: u32,
    startup_kills: u32,
    restarts: u32,
    report: Report,
    worst_ready: Duration,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CATALYST_CHAOS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal (and never with NO_COLOR): a CI log stays plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(rand::random);
    println!(
        "catalyst-chaos: seed {seed} (repeat with --seed {seed}), {} kills, backend {:?}, spine {:?}",
        args.kills, args.backend, args.spine
    );
    let started = Instant::now();
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => default_bin()?,
    };
    let work = match &args.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => std::env::temp_dir().join(format!("catalyst-chaos-{:016x}", unique())),
    };
    let data_dir = work.join("data");
    let log_dir = work.join("logs");
    std::fs::create_dir_all(&data_dir)?;
    std::fs::create_dir_all(&log_dir)?;
    let standin = work.join("standin-tofu");
    std::fs::write(&standin, STANDIN_TOFU)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&standin, std::fs::Permissions::from_mode(0o755))?;
    }
    let catalog = args
        .catalog
        .clone()
        .unwrap_or_else(|| repo_root().join("examples/catalog"));
    let mut serve_args: Vec<String> = vec![
        "--provisioner".into(),
        "tofu".into(),
        "--tofu-bin".into(),
        standin.display().to_string(),
        "--catalog".into(),
        catalog.display().to_string(),
        // The campaign may outlive the default 10 minutes; an expired reservation is not a loss.
        "--reservation-ttl".into(),
        "24h".into(),
        "--shutdown-grace".into(),
        "2s".into(),
    ];
    let suffix = format!("{:016x}", unique());
    let mut resources = Resources::None;
    if args.backend == Backend::Postgres {
        let schema = format!("chaos_{suffix}");
        pg_client(&args.database_url)
            .await?
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .context("cannot create the campaign's schema")?;
        let sep = if args.database_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{sep}options=-csearch_path%3D{schema}", args.database_url);
        serve_args.extend(["--database-url".into(), url]);
        println!("catalyst-chaos: PostgreSQL schema {schema}");
        resources = Resources::Schema {
            url: args.database_url.clone(),
            schema,
        };
    }
    let (stream, prefix) = (format!("chaos_{suffix}"), format!("chaos{suffix}."));
    if args.spine == SpineKind::Jetstream {
        serve_args.extend([
            "--nats-url".into(),
            args.nats_url.clone(),
            "--nats-stream".into(),
            stream.clone(),
            "--nats-subject-prefix".into(),
            prefix.clone(),
        ]);
        println!("catalyst-chaos: JetStream stream {stream}, subject prefix {prefix}");
    }
    let launch = Launch {
        bin,
        data_dir: data_dir.clone(),
        log_dir,
        args: serve_args,
        env: vec![(
            "STANDIN_TOFU_APPLY_LINES".into(),
            args.apply_lines.to_string(),
        )],
    };
    println!("catalyst-chaos: work directory {}", work.display());
    let disk = if args.disk_full {
        Some(SmallDisk::mount(&data_dir, args.disk_size_mb)?)
    } else {
        None
    };
    let outcome = campaign(&args, seed, &launch, disk.as_ref()).await;
    let keep_disk = |why: &str| {
        if let Some(d) = &disk {
            let to = work.join("data-kept");
            match d.keep_copy(&to) {
                Ok(()) => println!(
                    "catalyst-chaos: {why}: the data directory is copied to {}",
                    to.display()
                ),
                Err(e) => {
                    println!("catalyst-chaos: {why}: could not copy the data directory: {e:#}")
                }
            }
        }
    };
    let wall = started.elapsed();

    let (totals, ledger) = match outcome {
        Ok(x) => x,
        Err(e) => {
            keep_disk("aborted");
            drop(disk);
            println!("catalyst-chaos: ABORTED after {wall:.1?}: {e:#}");
            println!("catalyst-chaos: kept {} for inspection", work.display());
            std::process::exit(2);
        }
    };
    let violations = {
        let l = ledger.lock().unwrap_or_else(|p| p.into_inner());
        let mut violations = totals.report.violations.clone();
        violations.extend(l.live_violations.iter().cloned());
        println!("\n== catalyst-chaos summary ==");
        println!("seed                 {seed}");
        println!(
            "backend              {:?}, spine {:?}",
            args.backend, args.spine
        );
        println!(
            "kills                {} ({} under load, {} during start-up); restarts {}",
            totals.kills,
            totals.kills - totals.startup_kills,
            totals.startup_kills,
            totals.restarts
        );
        if args.disk_full {
            println!(
                "disk full            {} times ({} MiB tmpfs), space returned each time",
                totals.disk_fulls, args.disk_size_mb
            );
        }
        println!("acknowledged writes  {}", l.total_acked());
        for k in Kind::ALL {
            println!(
                "  {:<34} {}",
                k.name(),
                l.acked.get(&k).copied().unwrap_or(0)
            );
        }
        println!(
            "deployments          {} ({} found after an unanswered create)",
            l.deployments.len(),
            l.deployments.values().filter(|d| !d.acknowledged).count()
        );
        println!("acknowledged commits {}", l.commits.len());
        println!(
        "in doubt             {} applied in full, {} not applied, {} cut short in the safe order (finished by the load)",
        totals.report.doubts_applied, totals.report.doubts_void, totals.report.doubts_partial
    );
        println!("                     (requests without an answer, or answered 5xx)");
        if totals.report.unprobed > 0 {
            println!(
                "unprobed             {} cut-short removals not told apart (failure budget spent)",
                totals.report.unprobed
            );
        }
        println!("checks run           {}", totals.report.checks);
        println!("slowest restart      {:.2?} to ready", totals.worst_ready);
        if !l.refused.is_empty() {
            println!("refused (non-2xx)    (counted, not violations)");
            for (status, (n, example)) in &l.refused {
                println!("  {status}: {n}, e.g. {}", truncate(example, 200));
            }
        }
        println!("violations           {}", violations.len());
        for v in &violations {
            println!("  - {v}");
        }
        println!("wall time            {wall:.1?}");
        violations
    };
    if violations.is_empty() {
        match resources {
            Resources::Schema { url, schema } => {
                if let Ok(c) = pg_client(&url).await {
                    let _ = c
                        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                        .await;
                }
            }
            Resources::None => {}
        }
        if args.spine == SpineKind::Jetstream {
            delete_jetstream(&args.nats_url, &stream, &prefix.replace('.', "-")).await;
        }
        drop(disk);
        if args.work_dir.is_none() {
            let _ = std::fs::remove_dir_all(&work);
        }
        println!("result               PASS");
        Ok(())
    } else {
        keep_disk("failed");
        drop(disk);
        println!(
            "result               FAIL (kept {} and the backend's schema/stream)",
            work.display()
        );
        std::process::exit(1);
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Kill, restart, check — `args.kills` times; then a last full round and a graceful stop.
/// With a small disk, every other run fills it under load, checks the same process once the
/// space is back, and loads it again before the kill.
async fn campaign(
    args: &Args,
    seed: u64,
    launch: &Launch,
    disk: Option<&SmallDisk>,
) -> Result<(Totals, Arc<Mutex<Ledger>>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()?;
    let admin = launch.admin_token()?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut totals = Totals::default();
    let mut run = 0u32;
    let mut stuck = [0u32; RECOVERY.len()];
    let mut server = launch.spawn(run)?;
    loop {
        // Start-up (maybe killed while it restores), then the checks of everything so far.
        let ready = server
            .wait_ready(&http, Duration::from_secs(120))
            .await
            .with_context(|| format!("run {run}"))?;
        totals.worst_ready = totals.worst_ready.max(ready);
        lock(&ledger).probe_budget = ledger::PROBE_BUDGET;
        let api = Api {
            http: http.clone(),
            base: server.base.clone(),
            admin: admin.clone(),
        };
        let last = totals.kills >= args.kills;
        if run > 0 {
            let scope = Scope {
                cycle: run,
                full: last,
                restarted: true,
            };
            let r = check::after_restart(&api, &ledger, &launch.data_dir, &scope, &mut rng).await;
            note(run, "Checked after restart.", ready, &r);
            totals.report.merge(r);
        }
        if last {
            let status = server.terminate(Duration::from_secs(30))?;
            totals.report.checks += 1;
            if !status.success() {
                totals
                    .report
                    .violations
                    .push(format!("graceful stop at the end exited with {status}"));
            }
            let f = check::fsck(&launch.data_dir);
            totals.report.merge(f);
            return Ok((totals, ledger));
        }
        load::ensure_org(&api, &ledger)
            .await
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("run {run}: cannot create the Organization"))?;

        let before = {
            let l = lock(&ledger);
            (l.acked.clone(), l.refused_kinds.clone())
        };
        let mut load = start_load(&api, &ledger, run, format!("c{run}"), seed);
        if let Some(disk) = disk.filter(|_| run % 2 == 1) {
            // Fill the disk under load, keep loading it full, then give the space back.
            tokio::time::sleep(Duration::from_millis(rng.gen_range(200..800))).await;
            let bytes = disk.fill()?;
            totals.disk_fulls += 1;
            tokio::time::sleep(Duration::from_millis(rng.gen_range(1000..2000))).await;
            let survived = server.running();
            totals.report.check(survived, || {
                format!(
                    "run {run}: catalyst serve exited on a full disk; log {}:\n{}",
                    server.log.display(),
                    server::tail(&server.log, 20)
                )
            });
            load.stop(run).await;
            disk.free()?;
            info!(
                run,
                filler_bytes = bytes,
                survived,
                "Disk was full; space is back."
            );
            if !survived {
                // Restart it below like after a kill (not counted as one).
                server.kill()?;
                run += 1;
                server = launch.spawn(run)?;
                totals.restarts += 1;
                continue;
            }
            // The same process, space back: everything acknowledged is there, every request
            // refused or unanswered while full either took effect completely or not at all.
            let scope = Scope {
                cycle: run + 1,
                full: false,
                restarted: false,
            };
            let r = check::after_restart(&api, &ledger, &launch.data_dir, &scope, &mut rng).await;
            note(run, "Checked after the disk was full.", Duration::ZERO, &r);
            totals.report.merge(r);
            // Recovery: each kind of write is acknowledged again.
            let before = lock(&ledger).acked.clone();
            load = start_load(&api, &ledger, run, format!("c{run}r"), seed ^ 0x5eed);
            tokio::time::sleep(Duration::from_millis(rng.gen_range(1500..2500))).await;
            let after = lock(&ledger).acked.clone();
            let grew = |kinds: &[Kind]| {
                kinds.iter().any(|k| {
                    after.get(k).copied().unwrap_or(0) > before.get(k).copied().unwrap_or(0)
                })
            };
            for (what, kinds) in RECOVERY {
                totals.report.check(grew(kinds), || {
                    format!("run {run}: no {what} acknowledged after the space returned")
                });
            }
        } else {
            let uptime =
                rng.gen_range(args.min_uptime_ms..=args.max_uptime_ms.max(args.min_uptime_ms));
            tokio::time::sleep(Duration::from_millis(uptime)).await;
        }
        if !server.running() {
            bail!(
                "run {run}: catalyst serve died on its own; log {}:\n{}",
                server.log.display(),
                server::tail(&server.log, 40)
            );
        }
        kill(&mut server, &mut totals)?;
        load.stop(run).await;
        stuck_writes(run, &ledger, &before, &mut stuck, &mut totals.report);
        let f = check::fsck(&launch.data_dir);
        totals.report.merge(f);
        info!(run, kills = totals.kills, "Killed under load.");

        // Restart; sometimes kill it again while it restores.
        run += 1;
        server = launch.spawn(run)?;
        totals.restarts += 1;
        if totals.kills < args.kills && rng.gen_bool(args.startup_kill_share.clamp(0.0, 1.0)) {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..400))).await;
            kill(&mut server, &mut totals)?;
            totals.startup_kills += 1;
            let f = check::fsck(&launch.data_dir);
            totals.report.merge(f);
            info!(run, kills = totals.kills, "Killed during start-up.");
            run += 1;
            server = launch.spawn(run)?;
            totals.restarts += 1;
        }
    }
}

/// The kinds of write that must work again once the space returns.
const RECOVERY: [(&str, &[Kind]); 4] = [
    ("deployment", &[Kind::Deployment]),
    (
        "application change",
        &[Kind::Install, Kind::Upgrade, Kind::Values, Kind::Uninstall],
    ),
    (
        "pool change",
        &[Kind::PoolReserve, Kind::PoolCommit, Kind::PoolRelease],
    ),
    ("member change", &[Kind::MemberAdd, Kind::MemberRemove]),
];

/// Runs in a row in which a kind of write was only ever refused before that is a violation:
/// the server does not recover from something (a stale lock, a broken store).
const STUCK_RUNS: u32 = 3;

/// Counts, per kind of write, the runs in a row with refusals and no acknowledgement.
fn stuck_writes(
    run: u32,
    ledger: &Mutex<Ledger>,
    (acked, refused): &(BTreeMap<Kind, u64>, BTreeMap<Kind, u64>),
    stuck: &mut [u32; RECOVERY.len()],
    report: &mut Report,
) {
    let l = lock(ledger);
    let delta = |now: &BTreeMap<Kind, u64>, then: &BTreeMap<Kind, u64>, kinds: &[Kind]| -> u64 {
        kinds
            .iter()
            .map(|k| now.get(k).copied().unwrap_or(0) - then.get(k).copied().unwrap_or(0))
            .sum()
    };
    for (i, (what, kinds)) in RECOVERY.iter().enumerate() {
        let (a, r) = (
            delta(&l.acked, acked, kinds),
            delta(&l.refused_kinds, refused, kinds),
        );
        stuck[i] = if a == 0 && r > 0 { stuck[i] + 1 } else { 0 };
        report.check(stuck[i] != STUCK_RUNS, || {
            format!(
                "run {run}: every {what} refused for {STUCK_RUNS} runs in a row; the server does not recover"
            )
        });
    }
}

fn lock(l: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

fn note(run: u32, what: &'static str, ready: Duration, r: &Report) {
    for v in &r.violations {
        warn!(run, violation = %v, "Check failed.");
    }
    info!(
        run,
        checks = r.checks,
        violations = r.violations.len(),
        ready_ms = ready.as_millis() as u64,
        "{what}"
    );
}

/// The load of one run, running.
struct Running {
    stop: Arc<AtomicBool>,
    workers: tokio::task::JoinHandle<()>,
}

fn start_load(
    api: &Api,
    ledger: &Arc<Mutex<Ledger>>,
    cycle: u32,
    prefix: String,
    seed: u64,
) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Load {
        api: api.clone(),
        ledger: ledger.clone(),
        stop: stop.clone(),
        cycle,
        prefix,
    });
    Running {
        stop,
        workers: tokio::spawn(load::run(load, seed)),
    }
}

impl Running {
    /// Stops the workers after their current requests.
    async fn stop(self, run: u32) {
        self.stop.store(true, Ordering::Relaxed);
        if tokio::time::timeout(Duration::from_secs(60), self.workers)
            .await
            .is_err()
        {
            warn!(run, "The load did not stop within 60 s.");
        }
    }
}

fn kill(server: &mut Server, totals: &mut Totals) -> Result<()> {
    server.kill()?;
    totals.kills += 1;
    Ok(())
}
