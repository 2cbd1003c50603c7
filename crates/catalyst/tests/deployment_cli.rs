//! `catalyst deployment …` against the real server (dry-run and the OpenTofu stand-in), and
//! `watch` against a stand-in SSE server that drops the connection mid-stream.
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use support::{standin_tofu, Catalyst};

const HETZNER: &str = "hz-secret-4d1c9b7e-never-printed";

/// The create request of `binary.rs`, without the Hetzner token (the CLI adds it).
fn request(label: &str) -> Value {
    support::deployment_request(label, None)
}

/// Runs the CLI with `CATALYST_SERVER`/`CATALYST_TOKEN` (and nothing of the caller's
/// environment that could change it), feeding `stdin`.
struct Cli<'a> {
    server: &'a str,
    token: &'a str,
    /// Every stdout and stderr so far, to check the Hetzner token never shows.
    seen: std::cell::RefCell<String>,
}

impl Cli<'_> {
    fn run(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_catalyst"));
        cmd.args(args)
            .env("CATALYST_SERVER", self.server)
            .env("CATALYST_TOKEN", self.token)
            .env_remove("CATALYST_HETZNER_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        let out = child.wait_with_output().unwrap();
        let mut seen = self.seen.borrow_mut();
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        seen.push_str(&String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Runs and expects success; stdout.
    fn ok(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> String {
        let out = self.run(args, env, stdin);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects failure; stderr.
    fn fails(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env, None);
        assert!(!out.status.success(), "{args:?}: {}", describe(&out));
        String::from_utf8(out.stderr).unwrap()
    }
}

fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The seqs of `[seq] phase level message` lines.
fn seqs(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix('[')?.split_once(']')?.0.parse().ok())
        .collect()
}

#[test]
fn create_watch_list_get_and_errors_on_a_dry_run_server() {
    let dir = tempfile::tempdir().unwrap();
    let c = Catalyst::start(dir.path(), &["--provisioner", "dry-run"], &[]);
    let cli = Cli {
        server: &c.base,
        token: &c.admin,
        seen: Default::default(),
    };
    let req = dir.path().join("req.json");
    std::fs::write(&req, request("clidemo").to_string()).unwrap();
    let req_s = req.to_str().unwrap();
    // `create --file req.json --hetzner-token-env VAR`.
    let create = |var| {
        [
            "deployment",
            "create",
            "--file",
            req_s,
            "--hetzner-token-env",
            var,
        ]
    };

    // create --watch: the id, every event once, then ready and exit 0.
    let out = cli.ok(
        &[&create("MY_HZ")[..], &["--watch"]].concat(),
        &[("MY_HZ", HETZNER)],
        None,
    );
    let id = out.lines().next().unwrap().to_owned();
    assert_eq!(id.len(), 16, "{out}");
    let created = seqs(&out);
    assert!(!created.is_empty(), "{out}");
    assert_eq!(created, (1..=created.len() as u64).collect::<Vec<_>>());
    assert!(out.lines().any(|l| l.contains(" tofu-apply ")), "{out}");
    // Messages of several lines (the dry run's cloud-init) continue indented.
    let body: Vec<&str> = out.lines().skip(1).collect();
    assert!(body.len() > created.len(), "{out}");
    for line in &body[..body.len() - 1] {
        assert!(
            line.starts_with('[') || line.starts_with("    "),
            "{line:?}"
        );
    }
    let last = out.lines().last().unwrap();
    assert!(last.starts_with(&format!("deployment {id} ready")), "{out}");
    assert!(last.contains("dry run"), "{out}");

    // A second one from stdin, the token from CATALYST_HETZNER_TOKEN; -o json is the answer.
    let out = cli.ok(
        &["deployment", "create", "--file", "-", "-o", "json"],
        &[("CATALYST_HETZNER_TOKEN", HETZNER)],
        Some(&request("clistdin").to_string()),
    );
    let answer: Value = serde_json::from_str(&out).unwrap();
    let id2 = answer["id"].as_str().unwrap().to_owned();
    assert_eq!(
        answer["streamURL"],
        json!(format!("/api/v1/deployments/{id2}/logs"))
    );
    // watch it to the end (it may still be running): exit 0.
    cli.ok(&["deployment", "watch", &id2], &[], None);

    // Without any token the CLI refuses before sending.
    let err = cli.fails(&["deployment", "create", "--file", req_s], &[]);
    assert!(err.contains("hetznerToken"), "{err}");
    let err = cli.fails(&create("UNSET_HZ"), &[]);
    assert!(err.contains("UNSET_HZ"), "{err}");

    // list: a table with both, newest first.
    let out = cli.ok(&["deployment", "list"], &[], None);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for h in ["ID", "STATUS", "FQDN", "CREATED", "DRY-RUN"] {
        assert!(lines[0].contains(h), "{out}");
    }
    assert!(lines[1].starts_with(&id2), "{out}");
    assert!(lines[2].starts_with(&id), "{out}");
    assert!(lines[2].contains("ready") && lines[2].contains("clidemo.omani.works"));
    assert!(lines[2].ends_with("yes"), "{out}");
    let out = cli.ok(&["deployment", "list", "--limit", "1"], &[], None);
    assert_eq!(out.lines().count(), 2, "{out}");
    let page: Value =
        serde_json::from_str(&cli.ok(&["deployment", "list", "-o", "json"], &[], None)).unwrap();
    assert_eq!(page["deployments"].as_array().unwrap().len(), 2);

    // get -o json parses; yaml goes through the workspace's YAML module.
    let state: Value =
        serde_json::from_str(&cli.ok(&["deployment", "get", &id, "-o", "json"], &[], None))
            .unwrap();
    assert_eq!(state["id"], json!(id));
    assert_eq!(state["status"], "ready");
    assert_eq!(state["dryRun"], true);
    let yaml = cli.ok(&["deployment", "get", &id, "-o", "yaml"], &[], None);
    assert!(yaml.contains("status: ready"), "{yaml}");

    // watch on a finished deployment: every event once, in order, exit 0.
    let out = cli.ok(&["deployment", "watch", &id], &[], None);
    let all = seqs(&out);
    assert_eq!(
        all,
        (1..=state["numEvents"].as_u64().unwrap()).collect::<Vec<_>>()
    );
    assert_eq!(all, created);
    // -o json: raw JSON lines, one per event.
    let out = cli.ok(&["deployment", "watch", &id, "-o", "json"], &[], None);
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let json_seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(json_seqs, all);

    // API errors: `error: <code>: <detail>`, non-zero.
    let err = cli.fails(&["deployment", "cancel", &id], &[]);
    assert!(err.starts_with("error: "), "{err}");
    let err = cli.fails(&["deployment", "get", "0123456789abcdef"], &[]);
    assert!(err.starts_with("error: not-found: "), "{err}");
    let err = cli.fails(&["deployment", "get", "../orgs"], &[]);
    assert!(err.contains("not a deployment id"), "{err}");
    let wrong = Cli {
        server: &c.base,
        token: "cat_wrong",
        seen: Default::default(),
    };
    for args in [
        &["deployment", "list"][..],
        &["deployment", "get", &id],
        &["deployment", "watch", &id],
    ] {
        let err = wrong.fails(args, &[]);
        assert!(err.starts_with("error: unauthorized: "), "{args:?}: {err}");
    }
    let err = wrong.fails(&create("MY_HZ"), &[("MY_HZ", HETZNER)]);
    assert!(err.contains("unauthorized"), "{err}");

    // delete, then it is gone.
    assert_eq!(
        cli.ok(&["deployment", "delete", &id2], &[], None).trim(),
        format!("deleted {id2}")
    );
    let err = cli.fails(&["deployment", "get", &id2], &[]);
    assert!(err.contains("not-found"), "{err}");

    let seen = cli.seen.borrow().clone() + &wrong.seen.borrow();
    assert!(!seen.contains(HETZNER), "the Hetzner token was printed");
    assert!(!c.log().contains(HETZNER), "the Hetzner token was logged");
}

#[test]
fn a_failed_deployment_exits_non_zero_and_retry_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let bin = standin_tofu();
    let c = Catalyst::start(
        dir.path(),
        &["--provisioner", "tofu", "--tofu-bin", bin.to_str().unwrap()],
        &[("STANDIN_TOFU_FAIL_AT", "apply".to_owned())],
    );
    let cli = Cli {
        server: &c.base,
        token: &c.admin,
        seen: Default::default(),
    };
    let out = cli.run(
        &["deployment", "create", "--file", "-", "--watch"],
        &[("CATALYST_HETZNER_TOKEN", HETZNER)],
        Some(&request("clifail").to_string()),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout.lines().next().unwrap().to_owned();
    let first = seqs(&stdout);
    assert_eq!(first, (1..=first.len() as u64).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("error: deployment {id} failed")),
        "{stderr}"
    );

    // Retry (the server still holds the token; sending it again is fine too).
    let out = cli.ok(
        &["deployment", "retry", &id, "--hetzner-token-env", "MY_HZ"],
        &[("MY_HZ", HETZNER)],
        None,
    );
    assert!(out.starts_with(&id), "{out}");
    // The rerun fails the same way: watch exits 1, each event printed once.
    let out = cli.run(&["deployment", "watch", &id], &[], None);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let again = seqs(&String::from_utf8_lossy(&out.stdout));
    assert!(again.len() > first.len());
    assert_eq!(again, (1..=again.len() as u64).collect::<Vec<_>>());
    let err = cli.fails(&["deployment", "retry", &id, "--phase", "no/such"], &[]);
    assert!(err.contains("not a phase name"), "{err}");

    assert!(!cli.seen.borrow().contains(HETZNER));
}

/// Answers one HTTP request on `listener` with an SSE body, then closes; returns the request
/// head.
fn serve_once(listener: &TcpListener, body: &str) -> String {
    let (mut s, _) = listener.accept().unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{body}"
    );
    let _ = s.flush();
    let _ = s.shutdown(std::net::Shutdown::Both);
    head
}

fn event(seq: u64) -> String {
    format!(
        "id: {seq}\ndata: {{\"seq\":{seq},\"time\":\"t\",\"phase\":\"tofu-apply\",\"level\":\"info\",\"message\":\"step {seq}\"}}\n\n"
    )
}

#[test]
fn watch_resumes_after_a_drop_without_printing_twice() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    let id = "00112233445566ff";
    let heads = std::thread::spawn(move || {
        // First connection: two events, then the connection drops (no `done`).
        let first = serve_once(&listener, &(event(1) + &event(2)));
        // Second: resumes; sends 2 again (the CLI must not print it twice), 3, then done.
        let second = serve_once(
            &listener,
            &format!(
                ": keepalive\n\n{}{}event: done\ndata: {{\"id\":\"{id}\",\"status\":\"cancelled\"}}\n\n",
                event(2),
                event(3)
            ),
        );
        (first, second)
    });
    let cli = Cli {
        server: &server,
        token: "t",
        seen: Default::default(),
    };
    let out = cli.run(&["deployment", "watch", id], &[], None);
    let (first, second) = heads.join().unwrap();
    assert!(first.starts_with(&format!("GET /api/v1/deployments/{id}/logs ")));
    assert!(first
        .to_ascii_lowercase()
        .contains("authorization: bearer t\r\n"));
    assert!(
        !first.to_ascii_lowercase().contains("last-event-id"),
        "{first}"
    );
    assert!(
        second.to_ascii_lowercase().contains("last-event-id: 2\r\n"),
        "{second}"
    );
    // Cancelled: non-zero; every event exactly once.
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "[1] tofu-apply info step 1\n[2] tofu-apply info step 2\n[3] tofu-apply info step 3\n"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("error: deployment {id} cancelled")),
        "{stderr}"
    );
}
