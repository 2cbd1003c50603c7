//! `catalyst deployment create|get|list|watch|cancel|retry|delete`: a thin client of
//! `/api/v1/deployments` (sovereign-admin), sharing the server, token, output and error handling
//! of `org_cli`.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use catalyst_core::DeploymentId;
use reqwest::Method;
use serde_json::{json, Value};

use crate::org_cli::{check, Client, Output};
use crate::progress::Progress;

/// `catalyst deployment …`.
#[derive(Debug, clap::Args)]
pub struct DeploymentArgs {
    #[command(flatten)]
    client: Client,
    #[command(subcommand)]
    cmd: DeploymentCmd,
}

#[derive(Debug, clap::Subcommand)]
enum DeploymentCmd {
    /// Create a deployment; prints its id (`-o json|yaml`: the API's answer).
    Create {
        /// The request, as the body of `POST /api/v1/deployments` (JSON); `-` reads stdin.
        #[arg(long, short = 'f', value_name = "FILE")]
        file: PathBuf,
        /// Environment variable holding the Hetzner token, used when the request has no
        /// `hetznerToken` (default: CATALYST_HETZNER_TOKEN). The token is never printed.
        #[arg(long, value_name = "VAR")]
        hetzner_token_env: Option<String>,
        /// Then follow its log as `watch` does (and exit as `watch` does).
        #[arg(long)]
        watch: bool,
        /// With --watch: no progress bar.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show a deployment's state.
    Get {
        /// Deployment id.
        id: String,
    },
    /// List deployments, newest first: id, status, FQDN, created, dry run.
    List {
        /// At most this many (1–500; the server's default is 50).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=500))]
        limit: Option<u16>,
        /// Continue after a previous page (the cursor it printed).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Follow a deployment's log until it ends (resuming after a dropped connection); exits 0
    /// when it ends `ready`, 1 when `failed` or `cancelled`. `-o json`: one event per line.
    Watch {
        /// Deployment id.
        id: String,
        /// No progress bar (there is none anyway when stdout or stderr is not a terminal).
        #[arg(short, long)]
        quiet: bool,
    },
    /// Cancel a running deployment.
    Cancel {
        /// Deployment id.
        id: String,
    },
    /// Run a phase again (a finished deployment; then `watch` it).
    Retry {
        /// Deployment id.
        id: String,
        /// The phase to retry.
        #[arg(long, default_value = "tofu-apply")]
        phase: String,
        /// Environment variable holding the Hetzner token, needed when the server restarted
        /// since the deployment ran (default: CATALYST_HETZNER_TOKEN, when set).
        #[arg(long, value_name = "VAR")]
        hetzner_token_env: Option<String>,
    },
    /// Delete a finished deployment (`-o json|yaml`: `{"id", "deleted": true}`).
    Delete {
        /// Deployment id.
        id: String,
    },
}

/// The variable the Hetzner token is read from without `--hetzner-token-env`.
const DEFAULT_TOKEN_ENV: &str = "CATALYST_HETZNER_TOKEN";

/// Runs `catalyst deployment …`.
pub async fn run(a: DeploymentArgs) -> Result<()> {
    let c = &a.client;
    match a.cmd {
        DeploymentCmd::Create {
            file,
            hetzner_token_env,
            watch,
            quiet,
        } => {
            let mut body = read_request(&file)?;
            if body
                .get("hetznerToken")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                let Some(token) = hetzner_token(hetzner_token_env.as_deref())? else {
                    bail!("the request has no hetznerToken: set {DEFAULT_TOKEN_ENV} or pass --hetzner-token-env VAR");
                };
                body["hetznerToken"] = json!(token);
            }
            let v = c.call(Method::POST, "/deployments", Some(body)).await?;
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            match (c.output, watch) {
                (Output::Text, _) => outln!("{id}"),
                (Output::Json, true) => outln!("{v}"),
                (Output::Yaml, true) => out!("---\n{}", catalyst_blueprint::yaml::to_string(&v)),
                (_, false) => c.print(&v),
            }
            if watch {
                follow(
                    c,
                    &parse_id(&id).context("the server answered without an id")?,
                    quiet,
                )
                .await?;
            }
            Ok(())
        }
        DeploymentCmd::Get { id } => {
            let v = c
                .call(
                    Method::GET,
                    &format!("/deployments/{}", parse_id(&id)?),
                    None,
                )
                .await?;
            c.print(&v);
            Ok(())
        }
        DeploymentCmd::List { limit, cursor } => {
            let mut query = Vec::new();
            if let Some(n) = limit {
                query.push(format!("limit={n}"));
            }
            if let Some(cur) = cursor.filter(|s| !s.is_empty()) {
                if !cur
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.=".contains(&b))
                {
                    bail!("--cursor {cur:?} is not a cursor this server prints");
                }
                query.push(format!("cursor={cur}"));
            }
            let path = match query.is_empty() {
                true => "/deployments".to_owned(),
                false => format!("/deployments?{}", query.join("&")),
            };
            let v = c.call(Method::GET, &path, None).await?;
            if c.output != Output::Text {
                c.print(&v);
                return Ok(());
            }
            out!("{}", list_table(&v));
            if let Some(next) = v["nextCursor"].as_str() {
                eprintln!("more: catalyst deployment list --cursor {next}");
            }
            Ok(())
        }
        DeploymentCmd::Watch { id, quiet } => follow(c, &parse_id(&id)?, quiet).await,
        DeploymentCmd::Cancel { id } => {
            let id = parse_id(&id)?;
            let v = c
                .call(Method::POST, &format!("/deployments/{id}/cancel"), None)
                .await?;
            match c.output {
                Output::Text => outln!("{id} {}", text(&v["status"])),
                _ => c.print(&v),
            }
            Ok(())
        }
        DeploymentCmd::Retry {
            id,
            phase,
            hetzner_token_env,
        } => {
            let id = parse_id(&id)?;
            if phase.is_empty()
                || !phase
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                bail!("--phase {phase:?} is not a phase name (e.g. tofu-apply)");
            }
            let body = match hetzner_token(hetzner_token_env.as_deref())? {
                Some(token) => json!({ "hetznerToken": token }),
                None => json!({}),
            };
            let path = format!("/deployments/{id}/phases/{phase}/retry");
            let v = c.call(Method::POST, &path, Some(body)).await?;
            match c.output {
                Output::Text => {
                    outln!("{id} {}: {}", text(&v["status"]), text(&v["message"]))
                }
                _ => c.print(&v),
            }
            Ok(())
        }
        DeploymentCmd::Delete { id } => {
            let id = parse_id(&id)?;
            c.call(Method::DELETE, &format!("/deployments/{id}"), None)
                .await?;
            match c.output {
                Output::Text => outln!("deleted {id}"),
                _ => c.print(&json!({ "id": id.to_string(), "deleted": true })),
            }
            Ok(())
        }
    }
}

/// A deployment id as the server spells them (16 lowercase hex), so nothing else reaches the URL.
fn parse_id(id: &str) -> Result<DeploymentId> {
    DeploymentId::parse(id.trim())
        .map_err(|_| anyhow::anyhow!("{id:?} is not a deployment id (16 hex digits)"))
}

/// A JSON string as text, anything else as JSON (`""` for null).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The create request from FILE or stdin (`-`): a JSON object.
fn read_request(file: &std::path::Path) -> Result<Value> {
    let (name, raw) = if file.as_os_str() == "-" {
        let raw = std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?;
        ("stdin".to_owned(), raw)
    } else {
        let raw = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        (file.display().to_string(), raw)
    };
    // serde_json's errors name a line and column, never the text (which may hold the token).
    let v: Value =
        serde_json::from_str(&raw).with_context(|| format!("{name} is not valid JSON"))?;
    if !v.is_object() {
        bail!("{name}: the request must be a JSON object");
    }
    Ok(v)
}

/// The Hetzner token from the variable `--hetzner-token-env` names (which must be set), else
/// from CATALYST_HETZNER_TOKEN when that is set.
fn hetzner_token(var: Option<&str>) -> Result<Option<String>> {
    let value = |name: &str| std::env::var(name).ok().filter(|t| !t.trim().is_empty());
    match var {
        Some(name) => match value(name) {
            Some(t) => Ok(Some(t)),
            None => bail!("--hetzner-token-env {name}: that environment variable is not set"),
        },
        None => Ok(value(DEFAULT_TOKEN_ENV)),
    }
}

/// The text table of `list`.
fn list_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let dry = d["dryRun"].as_bool().unwrap_or(false);
            vec![
                text(&d["id"]),
                text(&d["status"]),
                text(&d["sovereignFQDN"]),
                text(&d["startedAt"]),
                if dry { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    crate::table::render(&["ID", "STATUS", "FQDN", "CREATED", "DRY-RUN"], &rows)
}

/// How often `watch` reconnects in a row without receiving anything before it gives up.
const MAX_RECONNECTS: u32 = 20;

/// Follows `/deployments/{id}/logs` to its `event: done`, printing each event once. A dropped
/// connection (or a server restart, or a 5xx) is resumed with `Last-Event-ID`; the exit is 0
/// when the deployment ends `ready` and an error otherwise.
async fn follow(c: &Client, id: &DeploymentId, quiet: bool) -> Result<()> {
    let path = format!("/deployments/{id}/logs");
    // A bar over the pipeline's phases (pending … ready) while events print above it.
    let progress = if c.output == Output::Text {
        Progress::phases(quiet, PHASES.len() as u64)
    } else {
        Progress::none()
    };
    let mut last_seq = 0u64;
    let mut failures = 0u32;
    loop {
        let mut req = c
            .request(Method::GET, &path)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if last_seq > 0 {
            req = req.header("Last-Event-ID", last_seq.to_string());
        }
        let why = match req.send().await {
            Err(e) => format!("{:#}", c.unreachable(e)),
            Ok(resp) => match check(resp).await {
                // Answers that another attempt cannot change end the watch.
                Err(e) if !(e.status.is_server_error() || e.status.as_u16() == 429) => {
                    return Err(e.into())
                }
                Err(e) => e.to_string(),
                Ok(resp) => {
                    let (end, received) = read_stream(c, resp, &mut last_seq, &progress).await;
                    if received {
                        failures = 0;
                    }
                    match end {
                        StreamEnd::Done(state) => {
                            progress.finish();
                            return finish(c, id, &state);
                        }
                        StreamEnd::Dropped(why) => why,
                    }
                }
            },
        };
        failures += 1;
        if failures > MAX_RECONNECTS {
            bail!("lost the log of {id} ({why}); gave up after {MAX_RECONNECTS} attempts — `catalyst deployment watch {id}` resumes");
        }
        let backoff = Duration::from_millis(250 * 2u64.pow(failures.min(5)));
        tokio::time::sleep(backoff.min(Duration::from_secs(5))).await;
    }
}

/// How one connection of `watch` ended.
enum StreamEnd {
    /// `event: done` with the deployment's final state.
    Done(Value),
    /// The connection ended without it (why, for the message if we give up).
    Dropped(String),
}

/// Reads one SSE connection, printing events after `last_seq` (and moving it); also says
/// whether anything at all arrived (so a live but slow stream is not counted as a failure).
async fn read_stream(
    c: &Client,
    mut resp: reqwest::Response,
    last_seq: &mut u64,
    progress: &Progress,
) -> (StreamEnd, bool) {
    let mut parser = SseParser::default();
    let mut received = false;
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return (StreamEnd::Dropped("the stream ended".into()), received),
            Err(e) => return (StreamEnd::Dropped(format!("{e}")), received),
        };
        received = true;
        for frame in parser.feed(&chunk) {
            if frame.event == "done" {
                let state = serde_json::from_str(&frame.data).unwrap_or(Value::Null);
                return (StreamEnd::Done(state), received);
            }
            progress.suspend(|| print_event(c.output, &frame, last_seq, progress));
        }
    }
}

/// The pipeline's phases in order, as the bar of `watch` counts them.
const PHASES: [&str; 5] = [
    "pending",
    "provisioning",
    "tofu-applying",
    "flux-bootstrapping",
    "ready",
];

/// Prints one event unless its seq was printed already; a status change moves the bar.
fn print_event(output: Output, frame: &Frame, last_seq: &mut u64, progress: &Progress) {
    let v: Value = serde_json::from_str(&frame.data).unwrap_or(Value::Null);
    if let Some(status) = v["status"].as_str() {
        if let Some(i) = PHASES.iter().position(|p| *p == status) {
            progress.phase(i as u64 + 1, status);
        }
    }
    let seq = frame.id.or_else(|| v["seq"].as_u64());
    if let Some(seq) = seq {
        if seq <= *last_seq {
            return;
        }
        *last_seq = seq;
    }
    match output {
        Output::Json => outln!("{}", frame.data),
        Output::Yaml => out!("---\n{}", catalyst_blueprint::yaml::to_string(&v)),
        // A message of several lines (a rendered cloud-init, say) continues indented, so every
        // line that starts with `[` starts an event.
        Output::Text if v.is_object() => outln!(
            "[{}] {} {} {}",
            seq.map_or_else(|| "?".to_owned(), |s| s.to_string()),
            text(&v["phase"]),
            text(&v["level"]),
            text(&v["message"]).trim_end().replace('\n', "\n    ")
        ),
        Output::Text => outln!("[?] {}", frame.data.replace('\n', "\n    ")),
    }
}

/// The end of `watch`: 0 for `ready`, an error naming the status (and the deployment's error)
/// otherwise.
fn finish(c: &Client, id: &DeploymentId, state: &Value) -> Result<()> {
    let status = state["status"].as_str().unwrap_or("unknown");
    if status != "ready" {
        match state["error"].as_str() {
            Some(e) => bail!("deployment {id} {status}: {e}"),
            None => bail!("deployment {id} {status}"),
        }
    }
    if c.output == Output::Text {
        let dry = if state["dryRun"].as_bool().unwrap_or(false) {
            " (dry run: nothing was provisioned)"
        } else {
            ""
        };
        match state["result"]["consoleURL"].as_str() {
            Some(url) => outln!("deployment {id} ready{dry}: {url}"),
            None => outln!("deployment {id} ready{dry}"),
        }
    }
    Ok(())
}

/// One server-sent event.
#[derive(Debug, Default, PartialEq)]
struct Frame {
    /// `id:` when it is a number.
    id: Option<u64>,
    /// `event:` (`message` when absent).
    event: String,
    /// The `data:` lines, joined by newlines.
    data: String,
}

/// An incremental `text/event-stream` parser (comments and `retry:` are skipped).
#[derive(Debug, Default)]
struct SseParser {
    pending: Vec<u8>,
    frame: Frame,
    has_data: bool,
}

impl SseParser {
    /// Feeds bytes; returns the events they complete.
    fn feed(&mut self, bytes: &[u8]) -> Vec<Frame> {
        self.pending.extend_from_slice(bytes);
        let mut frames = Vec::new();
        let mut start = 0;
        while let Some(n) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + n;
            let raw = &self.pending[start..end];
            let line = String::from_utf8_lossy(raw.strip_suffix(b"\r").unwrap_or(raw)).into_owned();
            start = end + 1;
            if line.is_empty() {
                let frame = std::mem::take(&mut self.frame);
                if std::mem::take(&mut self.has_data) || !frame.event.is_empty() {
                    frames.push(Frame {
                        event: match frame.event.is_empty() {
                            true => "message".to_owned(),
                            false => frame.event,
                        },
                        ..frame
                    });
                }
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "id" => self.frame.id = value.trim().parse().ok(),
                "event" => self.frame.event = value.to_owned(),
                "data" => {
                    if self.has_data {
                        self.frame.data.push('\n');
                    }
                    self.frame.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        self.pending.drain(..start);
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_frames_across_chunks() {
        let mut p = SseParser::default();
        let stream = b": keepalive\n\nid: 1\ndata: {\"seq\":1}\n\nid: 2\r\ndata: {\"seq\":2}\r\n\r\nevent: done\ndata: {\"status\":\"ready\"}\n\n";
        let mut frames = Vec::new();
        for chunk in stream.chunks(7) {
            frames.extend(p.feed(chunk));
        }
        assert_eq!(
            frames,
            vec![
                Frame {
                    id: Some(1),
                    event: "message".into(),
                    data: "{\"seq\":1}".into()
                },
                Frame {
                    id: Some(2),
                    event: "message".into(),
                    data: "{\"seq\":2}".into()
                },
                Frame {
                    id: None,
                    event: "done".into(),
                    data: "{\"status\":\"ready\"}".into()
                },
            ]
        );
    }

    #[test]
    fn events_print_once() {
        let mut last = 0;
        let f = |seq: u64| Frame {
            id: Some(seq),
            event: "message".into(),
            data: format!("{{\"seq\":{seq},\"phase\":\"p\",\"level\":\"info\",\"message\":\"m\"}}"),
        };
        print_event(Output::Text, &f(1), &mut last, &Progress::none());
        print_event(Output::Text, &f(2), &mut last, &Progress::none());
        print_event(Output::Text, &f(2), &mut last, &Progress::none());
        assert_eq!(last, 2);
        // Garbage from the server is printed, not a panic.
        let junk = Frame {
            id: None,
            event: "message".into(),
            data: "not json".into(),
        };
        print_event(Output::Text, &junk, &mut last, &Progress::none());
        assert_eq!(last, 2);
    }

    #[test]
    fn table_and_ids() {
        let v = json!({"deployments": [
            {"id": "0123456789abcdef", "status": "ready", "sovereignFQDN": "a.omani.works", "startedAt": "2026-01-01T00:00:00Z", "dryRun": true},
            {"id": "fedcba9876543210", "status": "failed", "sovereignFQDN": "b.omani.works", "startedAt": "2026-01-02T00:00:00Z"},
        ]});
        let t = list_table(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID "));
        assert!(lines[1].contains("ready") && lines[1].ends_with("yes"));
        assert!(lines[2].ends_with("no"));
        assert_eq!(list_table(&json!(null)).lines().count(), 1);
        assert!(parse_id("../orgs").is_err());
        assert!(parse_id("0123456789abcdef").is_ok());
    }
}
