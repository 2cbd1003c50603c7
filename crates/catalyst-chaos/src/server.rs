//! Starting, killing and stopping the real `catalyst serve`.
//!
//! The server runs in its own process group, so a kill can also take the OpenTofu stand-ins it
//! started (as a machine crash would) without touching anything else.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// How to start the server: the same every time, on the same data.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `catalyst` binary.
    pub bin: PathBuf,
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// Where each run's log goes (`serve-NNN.log`).
    pub log_dir: PathBuf,
    /// Flags after `serve --listen … --data-dir …`.
    pub args: Vec<String>,
    /// Extra environment (every inherited `CATALYST_*` variable is removed first).
    pub env: Vec<(String, String)>,
}

/// A free loopback port.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Launch {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CATALYST_") {
                cmd.env_remove(k);
            }
        }
        cmd
    }

    /// `catalyst token create --role sovereign-admin` on the data dir (offline): the token.
    pub fn admin_token(&self) -> Result<String> {
        let out = self
            .command()
            .args(["token", "create", "--data-dir"])
            .arg(&self.data_dir)
            .args(["--role", "sovereign-admin", "--name", "chaos-admin"])
            .output()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        if !out.status.success() {
            bail!(
                "catalyst token create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    /// Starts run number `n` on a free port.
    pub fn spawn(&self, n: u32) -> Result<Server> {
        let port = free_port()?;
        let log = self.log_dir.join(format!("serve-{n:03}.log"));
        let file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = self.command();
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            exited: None,
        })
    }
}

/// A running `catalyst serve`.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its log file.
    pub log: PathBuf,
    exited: Option<ExitStatus>,
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Server {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits until `GET /readyz` answers 200; how long that took.
    pub async fn wait_ready(
        &mut self,
        http: &reqwest::Client,
        within: Duration,
    ) -> Result<Duration> {
        let started = Instant::now();
        let url = format!("{}/readyz", self.base);
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = Some(status);
                bail!(
                    "catalyst serve exited before it was ready ({status}); log {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 30)
                );
            }
            if let Ok(r) = http.get(&url).timeout(Duration::from_secs(2)).send().await {
                if r.status().is_success() {
                    return Ok(started.elapsed());
                }
            }
            if started.elapsed() > within {
                bail!(
                    "catalyst serve not ready after {within:?}; log {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, then SIGKILL to what is left of its process group (the stand-ins it started).
    pub fn kill(&mut self) -> Result<()> {
        if self.exited.is_none() {
            let _ = kill(self.pid(), Signal::SIGKILL);
            self.exited = Some(self.child.wait()?);
        }
        // The group may be empty already (ESRCH): nothing to do then.
        let _ = killpg(self.pid(), Signal::SIGKILL);
        Ok(())
    }

    /// SIGTERM and wait (a graceful stop); the exit status.
    pub fn terminate(&mut self, within: Duration) -> Result<ExitStatus> {
        let _ = kill(self.pid(), Signal::SIGTERM);
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait()? {
                self.exited = Some(s);
                let _ = killpg(self.pid(), Signal::SIGKILL);
                return Ok(s);
            }
            if Instant::now() > deadline {
                self.kill()?;
                bail!("catalyst serve did not stop within {within:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
