//! The OpenTofu provisioner: stages `infra/hetzner` into a per-deployment working directory and
//! runs `tofu init`, `plan`, `apply` and `output` there, turning every line OpenTofu prints into
//! an event.
//!
//! Each tofu process runs in its own process group with the Hetzner token in its environment
//! only. Both output pipes are read to the end before the exit status counts, so no line is
//! lost; events are sent with back pressure, so none is dropped. On cancellation the whole
//! process group gets SIGTERM, then SIGKILL after a grace period.
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use catalyst_core::{DeploymentStatus, EventDraft, Level, ResourceProgress, ResourceState};
use chrono::Utc;
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::provisioner::{EventSink, ProvisionError, ProvisionJob, ProvisionOutput, Provisioner};
use crate::render::{self, TofuSettings};

/// Event phases of the pipeline (the upstream vocabulary).
pub mod phase {
    /// Staging and `tofu init`.
    pub const TOFU_INIT: &str = "tofu-init";
    /// `tofu plan`.
    pub const TOFU_PLAN: &str = "tofu-plan";
    /// `tofu apply`.
    pub const TOFU_APPLY: &str = "tofu-apply";
    /// A line printed by OpenTofu.
    pub const TOFU: &str = "tofu";
    /// `tofu output`.
    pub const TOFU_OUTPUT: &str = "tofu-output";
    /// The hand-over to cloud-init and Flux.
    pub const FLUX_BOOTSTRAP: &str = "flux-bootstrap";
}

/// How long a cancelled tofu process group gets between SIGTERM and SIGKILL.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

/// Longest output line kept; longer lines are cut (and say so).
const MAX_LINE: usize = 1 << 20;
/// Largest `tofu output -json` document accepted.
const MAX_OUTPUT_JSON: u64 = 16 << 20;
/// How long output is still read after a cancelled process group was killed.
const DRAIN_AFTER_KILL: Duration = Duration::from_secs(2);
/// Tokens shorter than this are not scrubbed from output (it would mangle ordinary text).
const MIN_SCRUB_LEN: usize = 8;

/// One tofu invocation of the pipeline.
struct Step {
    /// Names the step in errors.
    name: &'static str,
    /// Phase of the announcing event.
    phase: &'static str,
    /// The announcing event's message.
    announce: &'static str,
    /// Command-line arguments.
    args: &'static [&'static str],
}

const INIT: Step = Step {
    name: "tofu init",
    phase: phase::TOFU_INIT,
    announce: "Initialising OpenTofu working directory",
    args: &["init", "-input=false", "-no-color", "-json"],
};
const PLAN: Step = Step {
    name: "tofu plan",
    phase: phase::TOFU_PLAN,
    announce: "Planning Hetzner resources (network, firewall, SSH key, servers, load balancer)",
    // No `-out`: a saved plan file holds every input variable in clear text, the token
    // included, and the token must never reach disk. Apply plans again instead.
    args: &["plan", "-input=false", "-no-color", "-json"],
};
const APPLY: Step = Step {
    name: "tofu apply",
    phase: phase::TOFU_APPLY,
    announce: "Applying: this creates real Hetzner resources and takes a few minutes",
    args: &[
        "apply",
        "-input=false",
        "-no-color",
        "-json",
        "-auto-approve",
    ],
};
const OUTPUT: Step = Step {
    name: "tofu output",
    phase: phase::TOFU_OUTPUT,
    announce: "Reading OpenTofu outputs",
    args: &["output", "-json", "-no-color"],
};

/// What happens once the infrastructure exists, in the words of the `flux-bootstrap` event.
pub(crate) fn flux_bootstrap_message(job: &ProvisionJob, settings: &TofuSettings) -> String {
    let (url, branch, path) = crate::render::gitops_source(job, settings);
    format!(
        "The servers are up. Cloud-init on the first control-plane node is now installing k3s, \
         Cilium and Flux; Flux then reconciles {path} from {url} (branch {branch}) for {}, \
         installing the bootstrap kit in dependency order. Catalyst does not wait for this; \
         follow it on the new cluster's Flux Kustomizations.",
        job.spec.sovereign_fqdn
    )
}

/// Runs the OpenTofu configuration for real against Hetzner Cloud.
#[derive(Debug, Clone)]
pub struct TofuProvisioner {
    bin: PathBuf,
    settings: TofuSettings,
    kill_grace: Duration,
}

impl TofuProvisioner {
    /// A provisioner running the `tofu` executable `bin` (a path, or a name looked up on PATH).
    pub fn new(bin: impl Into<PathBuf>, settings: TofuSettings) -> Self {
        TofuProvisioner {
            bin: bin.into(),
            settings,
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }

    /// Sets the time between SIGTERM and SIGKILL when a run is cancelled.
    pub fn with_kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// The settings.
    pub fn settings(&self) -> &TofuSettings {
        &self.settings
    }

    /// Announces `step`, runs it and turns a failure into a [`ProvisionError`]. Returns the
    /// captured standard output when `capture_stdout` is set.
    async fn run_step(
        &self,
        step: &Step,
        job: &ProvisionJob,
        workdir: &Path,
        sink: &EventSink,
        cancel: &CancellationToken,
        capture_stdout: bool,
    ) -> Result<Vec<u8>, ProvisionError> {
        if cancel.is_cancelled() {
            return Err(ProvisionError::Cancelled);
        }
        sink.info(step.phase, step.announce).await;
        info!(deployment = %job.id, step = step.name, "Running OpenTofu.");
        let run = self
            .run_tofu(step, workdir, job, sink, cancel, capture_stdout)
            .await?;
        if run.status.success() {
            return Ok(run.stdout);
        }
        let how = match (run.status.code(), signal_of(&run.status)) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            (None, None) => "failed".to_owned(),
        };
        let message = match run.last_error {
            Some(err) => format!("{how}: {err}"),
            None => how,
        };
        warn!(deployment = %job.id, step = step.name, error = %message, "OpenTofu failed.");
        Err(ProvisionError::step(step.name, message))
    }

    /// Starts one tofu process and follows it to the end (or kills it on cancellation).
    async fn run_tofu(
        &self,
        step: &Step,
        workdir: &Path,
        job: &ProvisionJob,
        sink: &EventSink,
        cancel: &CancellationToken,
        capture_stdout: bool,
    ) -> Result<Run, ProvisionError> {
        let mut command = Command::new(&self.bin);
        // Secrets reach OpenTofu through its environment only.
        if let Some(g) = &job.git {
            command.env("TF_VAR_gitops_token", g.token.expose());
        }
        let mut child = command
            .args(step.args)
            .current_dir(workdir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("TF_VAR_hcloud_token", job.hetzner_token.expose())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                ProvisionError::step(
                    step.name,
                    format!(
                        "could not start {}: {e} (is OpenTofu installed?)",
                        self.bin.display()
                    ),
                )
            })?;
        let pid = child.id();
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(ProvisionError::step(step.name, "output pipes missing"));
        };
        let scrub = Scrubber::new(job);
        let readers = async {
            let out = async {
                if capture_stdout {
                    capture(stdout).await
                } else {
                    Ok(Captured::Lines(
                        pump(stdout, Stream::Stdout, sink, &scrub).await,
                    ))
                }
            };
            tokio::join!(out, pump(stderr, Stream::Stderr, sink, &scrub))
        };
        tokio::pin!(readers);

        let read = tokio::select! {
            biased;
            _ = cancel.cancelled() => None,
            r = &mut readers => Some(r),
        };
        let Some((out, err)) = read else {
            // Keep reading what the dying processes print, for a bounded time.
            let limit = self.kill_grace + DRAIN_AFTER_KILL;
            let drain = async {
                if tokio::time::timeout(limit, readers).await.is_err() {
                    warn!("Gave up reading output of the killed tofu process group.");
                }
            };
            tokio::join!(self.terminate(&mut child, pid), drain);
            return Err(ProvisionError::Cancelled);
        };
        let status = tokio::select! {
            biased;
            _ = cancel.cancelled() => None,
            s = child.wait() => Some(s),
        };
        let Some(status) = status else {
            self.terminate(&mut child, pid).await;
            return Err(ProvisionError::Cancelled);
        };
        let status = status
            .map_err(|e| ProvisionError::step(step.name, format!("waiting for tofu: {e}")))?;

        let (stdout, out_summary) = match out {
            Ok(Captured::Bytes(bytes)) => (bytes, Summary::default()),
            Ok(Captured::Lines(summary)) => (Vec::new(), summary),
            Err(e) => return Err(ProvisionError::step(step.name, e)),
        };
        let last_error = out_summary
            .last_error
            .or(err.last_error)
            .or(out_summary.last_stderr)
            .or(err.last_stderr);
        Ok(Run {
            status,
            stdout,
            last_error,
        })
    }

    /// Kills the process group of `child`: SIGTERM, then SIGKILL once the grace period is over
    /// and a member is still alive. Returns once the leader is reaped.
    async fn terminate(&self, child: &mut Child, pid: Option<u32>) {
        let Some(pgid) = pid.and_then(|p| i32::try_from(p).ok()).map(Pid::from_raw) else {
            // Already reaped: nothing left to signal.
            let _ = child.wait().await;
            return;
        };
        warn!(
            pgid = pgid.as_raw(),
            "Cancelling: sending SIGTERM to the tofu process group."
        );
        let _ = killpg(pgid, Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + self.kill_grace;
        loop {
            // Reap the leader as soon as it exits, so only live processes keep the group.
            let _ = child.try_wait();
            if !group_alive(pgid) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                warn!(
                    pgid = pgid.as_raw(),
                    "The tofu process group outlived SIGTERM; sending SIGKILL."
                );
                let _ = killpg(pgid, Signal::SIGKILL);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.wait().await;
        // SIGKILL is delivered asynchronously: wait (briefly) until no member is left running.
        let deadline = tokio::time::Instant::now() + DRAIN_AFTER_KILL;
        while group_alive(pgid) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[async_trait]
impl Provisioner for TofuProvisioner {
    fn name(&self) -> &'static str {
        "tofu"
    }

    fn dry_run(&self) -> bool {
        false
    }

    async fn provision(
        &self,
        job: ProvisionJob,
        sink: EventSink,
        cancel: CancellationToken,
    ) -> Result<ProvisionOutput, ProvisionError> {
        sink.status(DeploymentStatus::Provisioning).await;
        if cancel.is_cancelled() {
            return Err(ProvisionError::Cancelled);
        }
        let staged = {
            let settings = self.settings.clone();
            let job = job.clone();
            tokio::task::spawn_blocking(move || render::stage(&settings, &job)).await
        };
        let workdir = match staged {
            Ok(Ok(dir)) => dir,
            Ok(Err(e)) => return Err(ProvisionError::step("stage tofu module", e.to_string())),
            Err(e) => return Err(ProvisionError::step("stage tofu module", e.to_string())),
        };
        info!(deployment = %job.id, workdir = %workdir.display(), "Staged the OpenTofu configuration.");

        self.run_step(&INIT, &job, &workdir, &sink, &cancel, false)
            .await?;
        sink.status(DeploymentStatus::TofuApplying).await;
        self.run_step(&PLAN, &job, &workdir, &sink, &cancel, false)
            .await?;
        self.run_step(&APPLY, &job, &workdir, &sink, &cancel, false)
            .await?;
        let json = self
            .run_step(&OUTPUT, &job, &workdir, &sink, &cancel, true)
            .await?;
        let output = parse_outputs(&json).map_err(|e| ProvisionError::step(OUTPUT.name, e))?;

        if cancel.is_cancelled() {
            return Err(ProvisionError::Cancelled);
        }
        sink.status(DeploymentStatus::FluxBootstrapping).await;
        sink.info(
            phase::FLUX_BOOTSTRAP,
            flux_bootstrap_message(&job, &self.settings),
        )
        .await;
        info!(
            deployment = %job.id,
            control_plane_ip = output.control_plane_ip.as_deref().unwrap_or(""),
            load_balancer_ip = output.load_balancer_ip.as_deref().unwrap_or(""),
            "OpenTofu applied."
        );
        Ok(output)
    }
}

/// How a tofu process ended.
struct Run {
    status: ExitStatus,
    stdout: Vec<u8>,
    last_error: Option<String>,
}

fn signal_of(status: &ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

/// True while the process group has a member that is not a zombie.
fn group_alive(pgid: Pid) -> bool {
    if killpg(pgid, None) == Err(Errno::ESRCH) {
        return false;
    }
    // Members that died but were not reaped yet (orphans wait for init) still answer signals;
    // /proc tells them apart. Without /proc, trust the signal probe.
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|e| {
        let is_pid = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        is_pid
            && std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|stat| live_member_of(&stat))
                == Some(pgid.as_raw())
    })
}

/// The process group of a `/proc/<pid>/stat` line, unless the process is a zombie.
fn live_member_of(stat: &str) -> Option<i32> {
    // Fields after the command name (which may contain spaces) start at the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    (state != "Z" && state != "X").then_some(pgrp)
}

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// What a pipe said that matters for the step's error message.
#[derive(Debug, Default)]
struct Summary {
    /// The last error diagnostic (or other error-level line).
    last_error: Option<String>,
    /// The last plain line on stderr.
    last_stderr: Option<String>,
}

/// What was read from standard output.
enum Captured {
    Bytes(Vec<u8>),
    Lines(Summary),
}

/// Replaces the token in output with a marker; OpenTofu never prints it, this makes sure.
struct Scrubber<'a> {
    secrets: Vec<&'a str>,
}

impl<'a> Scrubber<'a> {
    /// Scrubs the run's Hetzner token and its Git read token.
    fn new(job: &'a ProvisionJob) -> Self {
        let mut secrets = vec![job.hetzner_token.expose()];
        if let Some(g) = &job.git {
            secrets.push(g.token.expose());
        }
        secrets.retain(|s| s.len() >= MIN_SCRUB_LEN);
        Scrubber { secrets }
    }

    fn scrub(&self, mut line: String) -> String {
        for s in &self.secrets {
            if line.contains(s) {
                line = line.replace(s, "<redacted>");
            }
        }
        line
    }
}

/// Reads a pipe line by line to its end, sending one event per non-empty line.
async fn pump<R: AsyncRead + Unpin>(
    pipe: R,
    stream: Stream,
    sink: &EventSink,
    scrub: &Scrubber<'_>,
) -> Summary {
    let mut lines = LineReader::new(pipe);
    let mut summary = Summary::default();
    loop {
        let (raw, cut) = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(error) => {
                warn!(%error, "Reading tofu output failed.");
                sink.log(
                    phase::TOFU,
                    Level::Warn,
                    format!("reading OpenTofu output failed: {error}"),
                )
                .await;
                break;
            }
        };
        let text = String::from_utf8_lossy(&raw);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let mut ui = parse_line(&scrub.scrub(text.to_owned()), stream);
        if cut {
            ui.message.push_str(" … [line cut at 1 MiB]");
        }
        if ui.level == Level::Error {
            summary.last_error = Some(ui.message.clone());
        } else if stream == Stream::Stderr && !ui.json {
            summary.last_stderr = Some(ui.message.clone());
        }
        let mut draft = EventDraft::new(Utc::now(), phase::TOFU, ui.level, ui.message);
        draft.resource = ui.resource;
        sink.emit(draft).await;
    }
    summary
}

/// Reads all of standard output (for `tofu output -json`), up to [`MAX_OUTPUT_JSON`].
async fn capture<R: AsyncRead + Unpin>(mut pipe: R) -> Result<Captured, String> {
    let mut bytes = Vec::new();
    let read = (&mut pipe)
        .take(MAX_OUTPUT_JSON + 1)
        .read_to_end(&mut bytes)
        .await;
    // Keep draining, so a chatty process never blocks on a full pipe.
    let _ = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await;
    read.map_err(|e| format!("reading output failed: {e}"))?;
    if bytes.len() as u64 > MAX_OUTPUT_JSON {
        return Err(format!("output is larger than {MAX_OUTPUT_JSON} bytes"));
    }
    Ok(Captured::Bytes(bytes))
}

/// Splits a pipe into lines of at most [`MAX_LINE`] bytes; the rest of a longer line is
/// skipped, and the line is reported as cut.
struct LineReader<R> {
    inner: BufReader<R>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(pipe: R) -> Self {
        LineReader {
            inner: BufReader::with_capacity(64 * 1024, pipe),
        }
    }

    async fn next_line(&mut self) -> io::Result<Option<(Vec<u8>, bool)>> {
        let mut line = Vec::new();
        let mut cut = false;
        let mut any = false;
        loop {
            let buf = self.inner.fill_buf().await?;
            if buf.is_empty() {
                return Ok(any.then_some((line, cut)));
            }
            any = true;
            let newline = buf.iter().position(|b| *b == b'\n');
            let chunk = &buf[..newline.unwrap_or(buf.len())];
            let room = MAX_LINE.saturating_sub(line.len());
            if chunk.len() > room {
                cut = true;
            }
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            let consumed = newline.map_or(buf.len(), |i| i + 1);
            self.inner.consume(consumed);
            if newline.is_some() {
                return Ok(Some((line, cut)));
            }
        }
    }
}

/// One output line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UiLine {
    level: Level,
    message: String,
    resource: Option<ResourceProgress>,
    /// True when the line was OpenTofu's machine-readable JSON.
    json: bool,
}

/// Understands a line of `tofu … -json` output: a JSON object with `@level` and `@message`
/// (plus `type`, `hook`, `diagnostic`), or else plain text (info on stdout, warn on stderr).
fn parse_line(text: &str, stream: Stream) -> UiLine {
    if text.starts_with('{') {
        if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) {
            if obj.contains_key("@message") {
                return parse_ui_object(&obj);
            }
        }
    }
    UiLine {
        level: match stream {
            Stream::Stdout => Level::Info,
            Stream::Stderr => Level::Warn,
        },
        message: text.to_owned(),
        resource: None,
        json: false,
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, key| v.get(key))?.as_str()
}

fn parse_ui_object(obj: &Map<String, Value>) -> UiLine {
    let level = match obj.get("@level").and_then(Value::as_str) {
        Some("error") => Level::Error,
        Some("warn" | "warning") => Level::Warn,
        _ => Level::Info,
    };
    let mut message = obj
        .get("@message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
    if kind == "diagnostic" {
        if let Some(diag) = obj.get("diagnostic") {
            let summary = str_at(diag, &["summary"]).unwrap_or_default();
            if !summary.is_empty() && !message.contains(summary) {
                message = if message.is_empty() {
                    summary.to_owned()
                } else {
                    format!("{message}: {summary}")
                };
            }
            let detail = str_at(diag, &["detail"]).unwrap_or_default().trim();
            if !detail.is_empty() {
                message = format!("{message} — {detail}");
            }
            if let Some(file) = str_at(diag, &["range", "filename"]) {
                match diag.pointer("/range/start/line").and_then(Value::as_u64) {
                    Some(line) => message.push_str(&format!(" ({file}:{line})")),
                    None => message.push_str(&format!(" ({file})")),
                }
            }
        }
    }
    let state = match kind {
        "apply_start" => Some(ResourceState::Applying),
        "apply_complete" => Some(ResourceState::Applied),
        "apply_errored" => Some(ResourceState::Errored),
        _ => None,
    };
    let resource = state.and_then(|state| {
        let hook = obj.get("hook")?;
        Some(ResourceProgress {
            address: str_at(hook, &["resource", "addr"])?.to_owned(),
            resource_type: str_at(hook, &["resource", "resource_type"])
                .unwrap_or_default()
                .to_owned(),
            action: str_at(hook, &["action"]).unwrap_or_default().to_owned(),
            state,
            elapsed_seconds: hook.get("elapsed_seconds").and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64))
            }),
        })
    });
    UiLine {
        level,
        message,
        resource,
        json: true,
    }
}

/// Reads the IPs out of `tofu output -json` (`{"name": {"value": …}, …}`); a missing or
/// non-string output is `None`.
fn parse_outputs(json: &[u8]) -> Result<ProvisionOutput, String> {
    let outputs: Map<String, Value> = serde_json::from_slice(json)
        .map_err(|e| format!("could not parse `tofu output -json`: {e}"))?;
    let get = |name: &str| {
        outputs
            .get(name)
            .and_then(|o| o.get("value"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(ProvisionOutput {
        control_plane_ip: get("control_plane_ip"),
        load_balancer_ip: get("load_balancer_ip"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_take_their_level_from_the_pipe() {
        let out = parse_line("Initializing the backend...", Stream::Stdout);
        assert_eq!((out.level, out.json), (Level::Info, false));
        let err = parse_line("{not json", Stream::Stderr);
        assert_eq!(
            (err.level, err.message.as_str()),
            (Level::Warn, "{not json")
        );
    }

    #[test]
    fn apply_hooks_become_resource_progress() {
        let line = r#"{"@level":"info","@message":"hcloud_network.main: Creation complete after 1s [id=42]","@module":"tofu.ui","@timestamp":"2026-04-29T10:00:01Z","hook":{"resource":{"addr":"hcloud_network.main","resource_type":"hcloud_network"},"action":"create","id_key":"id","id_value":"42","elapsed_seconds":1},"type":"apply_complete"}"#;
        let ui = parse_line(line, Stream::Stdout);
        assert_eq!(
            ui.resource,
            Some(ResourceProgress {
                address: "hcloud_network.main".into(),
                resource_type: "hcloud_network".into(),
                action: "create".into(),
                state: ResourceState::Applied,
                elapsed_seconds: Some(1),
            })
        );
        assert_eq!(
            ui.message,
            "hcloud_network.main: Creation complete after 1s [id=42]"
        );
    }

    #[test]
    fn diagnostics_carry_summary_detail_and_place() {
        let line = r#"{"@level":"error","@message":"Error: Invalid value for variable","type":"diagnostic","diagnostic":{"severity":"error","summary":"Invalid value for variable","detail":"region must be one of fsn1.","range":{"filename":"variables.tf","start":{"line":80,"column":1,"byte":0}}}}"#;
        let ui = parse_line(line, Stream::Stdout);
        assert_eq!(ui.level, Level::Error);
        assert_eq!(
            ui.message,
            "Error: Invalid value for variable — region must be one of fsn1. (variables.tf:80)"
        );
        let warn = parse_line(
            r#"{"@level":"warn","@message":"Warning: x","type":"diagnostic","diagnostic":{"summary":"x","detail":""}}"#,
            Stream::Stdout,
        );
        assert_eq!(
            (warn.level, warn.message.as_str()),
            (Level::Warn, "Warning: x")
        );
    }

    #[test]
    fn outputs_take_strings_only() {
        let out = parse_outputs(
            br#"{"control_plane_ip":{"sensitive":false,"type":"string","value":"203.0.113.10"},"load_balancer_ip":{"value":7}}"#,
        )
        .unwrap();
        assert_eq!(out.control_plane_ip.as_deref(), Some("203.0.113.10"));
        assert_eq!(out.load_balancer_ip, None);
        assert!(parse_outputs(b"not json").is_err());
        assert_eq!(parse_outputs(b"{}").unwrap(), ProvisionOutput::default());
    }

    #[test]
    fn proc_stat_parsing() {
        assert_eq!(live_member_of("123 (sleep) S 1 4242 4242 0 -1"), Some(4242));
        assert_eq!(live_member_of("123 (a) b) Z 1 4242 4242"), None);
        assert_eq!(live_member_of("garbage"), None);
    }

    #[tokio::test]
    async fn long_lines_are_cut_not_lost() {
        let mut input = vec![b'a'; MAX_LINE + 10];
        input.extend_from_slice(b"\nnext\nlast");
        let mut reader = LineReader::new(&input[..]);
        let (first, cut) = reader.next_line().await.unwrap().unwrap();
        assert_eq!((first.len(), cut), (MAX_LINE, true));
        assert_eq!(
            reader.next_line().await.unwrap(),
            Some((b"next".to_vec(), false))
        );
        assert_eq!(
            reader.next_line().await.unwrap(),
            Some((b"last".to_vec(), false))
        );
        assert_eq!(reader.next_line().await.unwrap(), None);
    }
}
