//! `catalyst projection rebuild --data-dir DIR`: replays the event log under `<data-dir>/events`
//! into a fresh projection, offline, and prints it as canonical JSON (the same bytes the running
//! server's projection has for the same events). It takes the data directory's lock, because
//! opening the log repairs what a crash left: it refuses while a server runs on the directory.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

/// `catalyst projection …`.
#[derive(Debug, clap::Args)]
pub struct ProjectionArgs {
    #[command(subcommand)]
    cmd: ProjectionCmd,
}

#[derive(Debug, clap::Subcommand)]
enum ProjectionCmd {
    /// Replay the event log into a fresh projection and print it (JSON); offline.
    Rebuild {
        /// The server's data directory.
        #[arg(long, env = "CATALYST_DATA_DIR", default_value = "./catalyst-data")]
        data_dir: PathBuf,
        /// Write the projection to this file instead of stdout.
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
}

/// Runs `catalyst projection …`.
pub fn run(a: ProjectionArgs) -> Result<()> {
    match a.cmd {
        ProjectionCmd::Rebuild { data_dir, out } => {
            let _lock = crate::datadir::DataDirLock::acquire(&data_dir)?;
            let started = std::time::Instant::now();
            let (log, report) = catalyst_spine::FileLog::open(data_dir.join("events"))
                .context("cannot open the event log")?;
            let projector = catalyst_spine::Projector::new(Arc::new(log));
            let json = projector.read(|p| serde_json::to_string_pretty(&p.to_json()))?;
            match out {
                Some(path) => std::fs::write(&path, format!("{json}\n"))
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => outln!("{json}"),
            }
            eprintln!(
                "rebuilt from {} events in {:.1?}",
                report.events,
                started.elapsed()
            );
            Ok(())
        }
    }
}
