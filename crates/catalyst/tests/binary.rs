//! End-to-end tests of the real `catalyst` binary: dry-run, OpenTofu through the test stand-in,
//! SIGKILL mid-run and restart, SIGTERM, `--help`.
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{serve_help, standin_tofu, Catalyst};

use futures::StreamExt;
use serde_json::{json, Value};

const TOKEN: &str = "hcloud-e2e-token-0123456789abcdef0123456789abcdef0123456789abcdef-SECRET";

fn request(label: &str) -> Value {
    support::deployment_request(label, Some(TOKEN))
}

async fn create(c: &Catalyst, label: &str) -> String {
    let r = c
        .client()
        .post(c.url("/api/v1/deployments"))
        .json(&request(label))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[derive(Debug, Clone)]
struct Frame {
    id: Option<u64>,
    event: Option<String>,
    data: Value,
}

fn parse_frames(buf: &mut String, out: &mut Vec<Frame>) {
    while let Some(pos) = buf.find("\n\n") {
        let block: String = buf.drain(..pos + 2).collect();
        let (mut id, mut event, mut data) = (None, None, String::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("event:") {
                event = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        if !data.is_empty() {
            out.push(Frame {
                id,
                event,
                data: serde_json::from_str(&data).unwrap(),
            });
        }
    }
}

/// Follows the log stream until it closes or `stop` says so.
async fn follow(c: &Catalyst, id: &str, stop: impl Fn(&[Frame]) -> bool) -> Vec<Frame> {
    let resp = c
        .client()
        .get(c.url(&format!("/api/v1/deployments/{id}/logs")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let (mut buf, mut frames) = (String::new(), Vec::new());
    while let Some(Ok(chunk)) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        parse_frames(&mut buf, &mut frames);
        if stop(&frames) {
            break;
        }
    }
    frames
}

async fn get(c: &Catalyst, path: &str) -> (u16, Value) {
    let r = c.client().get(c.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn assert_no_token_on_disk(dir: &Path) {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, found);
            } else if std::fs::read(&p)
                .map(|b| String::from_utf8_lossy(&b).contains(TOKEN))
                .unwrap_or(false)
            {
                found.push(p);
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, &mut found);
    assert!(found.is_empty(), "token on disk in {found:?}");
}

fn kill_standin(pidfile: &Path) {
    if let Ok(pid) = std::fs::read_to_string(pidfile) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[tokio::test]
async fn dry_run_follows_to_done_ready() {
    let dir = tempfile::tempdir().unwrap();
    let c = Catalyst::start(dir.path(), &["--provisioner", "dry-run"], &[]);
    let id = create(&c, "dryrun").await;
    let frames = follow(&c, &id, |_| false).await;
    let done = frames.last().unwrap();
    assert_eq!(done.event.as_deref(), Some("done"));
    assert_eq!(done.data["status"], "ready");
    assert_eq!(done.data["dryRun"], true);
    assert_eq!(done.data["result"]["dryRun"], true);
    assert!(
        done.data["result"].get("loadBalancerIP").is_none(),
        "no invented IPs"
    );
    assert!(
        done.data["result"].get("controlPlaneIP").is_none(),
        "no invented IPs"
    );
    for f in frames.iter().filter(|f| f.event.is_none()) {
        assert_eq!(f.data["dryRun"], true, "{:?}", f.data);
    }
    let text = format!("{frames:?}");
    assert!(
        text.contains("tofu.auto.tfvars.json") || text.contains("tfvars"),
        "tfvars rendered"
    );
    assert!(!text.contains(TOKEN));
    // A finished dry run frees its pool name, says so, and the API agrees: the check answers
    // available and the next deployment of the same name is accepted.
    assert!(
        text.contains(
            "Released the pool name dryrun.omani.works: a dry run holds no name once it ends"
        ),
        "{text}"
    );
    let (_, check) = c
        .post_json(
            "/api/v1/subdomains/check",
            &json!({"subdomain": "dryrun", "poolDomain": "omani.works"}),
        )
        .await;
    assert_eq!(check["available"], true, "{check}");
    let again = create(&c, "dryrun").await;
    assert_ne!(again, id);
    let frames = follow(&c, &again, |_| false).await;
    assert_eq!(frames.last().unwrap().data["status"], "ready");
    assert_no_token_on_disk(dir.path());
}

#[tokio::test]
async fn tofu_pipeline_through_the_standin() {
    let dir = tempfile::tempdir().unwrap();
    let bin = standin_tofu();
    let c = Catalyst::start(
        dir.path(),
        &["--provisioner", "tofu", "--tofu-bin", bin.to_str().unwrap()],
        &[("STANDIN_TOFU_APPLY_LINES", "300".into())],
    );
    let id = create(&c, "tofu").await;
    let frames = follow(&c, &id, |_| false).await;
    let done = frames.last().unwrap();
    assert_eq!(done.data["status"], "ready", "{:?}", done.data);
    assert_eq!(done.data["result"]["loadBalancerIP"], "203.0.113.20");
    let data: Vec<&Frame> = frames.iter().filter(|f| f.event.is_none()).collect();
    assert!(data
        .iter()
        .any(|f| f.data["resource"]["state"] == "applied"));
    let ids: Vec<u64> = data.iter().map(|f| f.id.unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    assert_no_token_on_disk(dir.path());
}

#[tokio::test]
async fn sigkill_mid_run_then_restart_keeps_every_event_and_fails_the_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("standin.pid");
    let bin = standin_tofu();
    let args = ["--provisioner", "tofu", "--tofu-bin", bin.to_str().unwrap()];
    let env = [
        ("STANDIN_TOFU_HANG_AT", "apply".to_owned()),
        ("STANDIN_TOFU_PIDFILE", pidfile.display().to_string()),
    ];
    let mut c = Catalyst::start(dir.path(), &args, &env);
    let id = create(&c, "killed").await;
    // Follow until apply is under way (status tofu-applying and some apply output seen).
    let seen = follow(&c, &id, |frames| {
        frames.iter().any(|f| f.data["phase"] == "tofu-apply")
            && frames.iter().filter(|f| f.data["phase"] == "tofu").count() >= 3
    })
    .await;
    assert!(!seen.is_empty());
    c.signal(nix::sys::signal::Signal::SIGKILL);
    c.wait_exit(Duration::from_secs(5));
    kill_standin(&pidfile);
    drop(c);

    let c = Catalyst::start(dir.path(), &args, &[]);
    let (status, state) = get(&c, &format!("/api/v1/deployments/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(state["status"], "failed");
    let err = state["error"].as_str().unwrap();
    assert!(err.contains("restarted during provisioning"), "{err}");
    assert!(
        err.contains("catalyst.openova.io/sovereign=killed.omani.works"),
        "{err}"
    );
    assert!(err.contains("orphan"), "{err}");
    assert!(err.contains(&id), "{err}");
    // Every event the subscriber saw is still there, identical.
    let (_, events) = get(&c, &format!("/api/v1/deployments/{id}/events")).await;
    assert_eq!(events["done"], true);
    let stored = events["events"].as_array().unwrap();
    for f in seen.iter().filter(|f| f.event.is_none()) {
        let seq = f.id.unwrap();
        let e = &stored[(seq - 1) as usize];
        assert_eq!(e["seq"], json!(seq));
        assert_eq!(e["message"], f.data["message"]);
        assert_eq!(e["phase"], f.data["phase"]);
    }
    // The replayed stream ends with done/failed.
    let frames = follow(&c, &id, |_| false).await;
    assert_eq!(frames.last().unwrap().data["status"], "failed");
    assert_no_token_on_disk(dir.path());
}

#[tokio::test]
async fn sigterm_stops_runs_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("standin.pid");
    let bin = standin_tofu();
    let args = ["--provisioner", "tofu", "--tofu-bin", bin.to_str().unwrap()];
    let env = [
        ("STANDIN_TOFU_HANG_AT", "apply".to_owned()),
        ("STANDIN_TOFU_PIDFILE", pidfile.display().to_string()),
    ];
    let mut c = Catalyst::start(dir.path(), &args, &env);
    let id = create(&c, "termed").await;
    follow(&c, &id, |frames| {
        frames.iter().any(|f| f.data["phase"] == "tofu-apply")
    })
    .await;
    // The stand-in prints its line before it starts the `sleep` child and writes its pid: wait
    // for the pid, so the signal lands while the child runs (and the check below means something).
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        let text = std::fs::read_to_string(&pidfile).unwrap_or_default();
        if let Ok(pid) = text.trim().parse::<i32>() {
            break nix::unistd::Pid::from_raw(pid);
        }
        assert!(
            Instant::now() < deadline,
            "the stand-in never wrote its child's pid"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    // Open event streams end with where to resume; they do not hold the shutdown up.
    let events = c
        .client()
        .get(c.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let stream = tokio::spawn(async move { events.text().await.unwrap_or_default() });
    c.signal(nix::sys::signal::Signal::SIGTERM);
    let status = c.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "graceful exit: {status}");
    let text = tokio::time::timeout(Duration::from_secs(5), stream)
        .await
        .expect("the event stream ended")
        .unwrap();
    assert!(
        text.contains(": shutting down; reconnect with Last-Event-ID: "),
        "{text:?}"
    );
    // The stand-in's process group was killed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while nix::sys::signal::kill(pid, None).is_ok() {
        assert!(Instant::now() < deadline, "stand-in child still alive");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(c);
    let c = Catalyst::start(dir.path(), &args, &[]);
    let (_, state) = get(&c, &format!("/api/v1/deployments/{id}")).await;
    assert_eq!(state["status"], "failed");
    assert!(state["error"].as_str().unwrap().contains("orphan"));
}

#[test]
fn help_explains_every_flag() {
    let text = serve_help();
    for flag in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--deployment-lease-ttl",
        "--provisioner",
        "--tofu-bin",
        "--provision-timeout",
        "CATALYST_LISTEN",
        "CATALYST_DATA_DIR",
        "CATALYST_DATABASE_URL",
        "CATALYST_DEPLOYMENT_LEASE_TTL",
        "CATALYST_PROVISIONER",
        "CATALYST_TOFU_BIN",
    ] {
        assert!(text.contains(flag), "--help mentions {flag}:\n{text}");
    }
}

fn database_url() -> String {
    std::env::var("CATALYST_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Creates a fresh schema; `None` (after printing why) when PostgreSQL is not reachable outside CI.
async fn fresh_schema() -> Option<String> {
    let url = database_url();
    match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            let schema = format!("bin_{:016x}", catalyst_testkit::unique_suffix());
            client
                .batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .unwrap();
            Some(schema)
        }
        Err(e) => {
            catalyst_testkit::skip_or_fail(
                catalyst_testkit::Need::Postgres,
                format!("{url} is not reachable: {e}"),
            );
            None
        }
    }
}

#[tokio::test]
async fn postgres_backend_survives_a_sigkill() {
    let Some(schema) = fresh_schema().await else {
        return;
    };
    let url = format!("{}?options=-csearch_path%3D{schema}", database_url());
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("standin.pid");
    let bin = standin_tofu();
    let args = [
        "--provisioner",
        "tofu",
        "--tofu-bin",
        bin.to_str().unwrap(),
        "--database-url",
        url.as_str(),
    ];
    // One finished deployment, one killed mid-apply.
    let mut c = Catalyst::start(dir.path(), &args, &[]);
    let done_id = create(&c, "pgdone").await;
    let frames = follow(&c, &done_id, |_| false).await;
    assert_eq!(frames.last().unwrap().data["status"], "ready");
    drop(c);
    let env = [
        ("STANDIN_TOFU_HANG_AT", "apply".to_owned()),
        ("STANDIN_TOFU_PIDFILE", pidfile.display().to_string()),
    ];
    c = Catalyst::start(dir.path(), &args, &env);
    let killed_id = create(&c, "pgkilled").await;
    let seen = follow(&c, &killed_id, |f| {
        f.iter().any(|f| f.data["phase"] == "tofu-apply")
    })
    .await;
    c.signal(nix::sys::signal::Signal::SIGKILL);
    c.wait_exit(Duration::from_secs(5));
    kill_standin(&pidfile);
    drop(c);

    let c = Catalyst::start(dir.path(), &args, &[]);
    let (_, state) = get(&c, &format!("/api/v1/deployments/{done_id}")).await;
    assert_eq!(state["status"], "ready");
    let (_, state) = get(&c, &format!("/api/v1/deployments/{killed_id}")).await;
    assert_eq!(state["status"], "failed");
    assert!(state["error"].as_str().unwrap().contains("orphan"));
    let (_, events) = get(&c, &format!("/api/v1/deployments/{killed_id}/events")).await;
    let stored = events["events"].as_array().unwrap();
    for f in seen.iter().filter(|f| f.event.is_none()) {
        assert_eq!(
            stored[(f.id.unwrap() - 1) as usize]["message"],
            f.data["message"]
        );
    }
    // Nothing of the deployments landed under --data-dir, and no token anywhere on disk.
    assert!(!dir.path().join("deployments").exists());
    assert_no_token_on_disk(dir.path());
    // The token is not in the database either.
    let (client, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows = client
        .query(
            &format!(
                "SELECT count(*) FROM {schema}.catalyst_deployment_events WHERE event::text LIKE $1"
            ),
            &[&format!("%{TOKEN}%")],
        )
        .await
        .unwrap();
    let n: i64 = rows[0].get(0);
    assert_eq!(n, 0);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

#[tokio::test]
async fn metrics_cover_the_console_and_organization_routes() {
    let dir = tempfile::tempdir().unwrap();
    let c = Catalyst::start(dir.path(), &["--provisioner", "dry-run"], &[]);
    let status = reqwest::get(c.url("/api/v1/orgs")).await.unwrap().status();
    assert_eq!(status, 401, "Organizations need a token");
    let status = reqwest::get(c.url("/api/v1/deployments"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "deployments need a token");
    let r = c
        .client()
        .get(c.url("/sovereign/deployments"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = c.metrics().await;
    assert!(
        text.contains("route=\"/api/v1/orgs\",status=\"401\""),
        "{text}"
    );
    assert!(
        text.contains("route=\"/sovereign/deployments\",status=\"200\""),
        "{text}"
    );
}

/// Half an OIDC configuration stops start-up with a message naming the missing flag; issuer and
/// audience alone start (the JWKS URL is discovered on first use, so an identity provider that
/// is down does not keep Catalyst from starting).
#[test]
fn partial_oidc_flags_stop_start_up_and_issuer_with_audience_starts() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_catalyst"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", support::free_port()))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args);
        for v in [
            "CATALYST_OIDC_JWKS_URL",
            "CATALYST_OIDC_ISSUER",
            "CATALYST_OIDC_AUDIENCE",
        ] {
            cmd.env_remove(v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--oidc-issuer", "https://idp.example.test"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--oidc-audience"), "{err}");
    let (code, err) = run(&[], &[("CATALYST_OIDC_AUDIENCE", "catalyst")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--oidc-issuer"), "{err}");
    let (code, err) = run(
        &["--oidc-jwks-url", "https://idp.example.test/jwks"],
        &[("CATALYST_OIDC_ISSUER", "https://idp.example.test")],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--oidc-audience"), "{err}");
    let (code, err) = run(
        &["--oidc-issuer", "idp.example.test", "--oidc-audience", "c"],
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not an http:// or https:// URL"), "{err}");

    // Nothing listens at this issuer: start-up still succeeds.
    let issuer = format!("http://127.0.0.1:{}", support::free_port());
    let mut c = Catalyst::start(
        dir.path(),
        &["--oidc-issuer", &issuer, "--oidc-audience", "catalyst"],
        &[],
    );
    // The socket is bound before start-up finishes; ready means it has logged its set-up.
    c.wait_ready(Instant::now());
    assert!(
        c.log().contains("discovered from the issuer on first use"),
        "{}",
        c.log()
    );
    c.signal(nix::sys::signal::Signal::SIGTERM);
    c.wait_exit(Duration::from_secs(30));
}

#[tokio::test]
async fn tokens_are_listed_without_secrets_and_a_revoked_one_stops_working_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = Catalyst::start(dir.path(), &["--provisioner", "dry-run"], &[]);
    let data = dir.path().to_str().unwrap();
    let ops = support::create_token(dir.path(), "sovereign-admin", None, "ops");
    let as_ops = |path: &str| {
        reqwest::Client::new()
            .get(c.url(path))
            .bearer_auth(&ops)
            .send()
    };
    assert_eq!(as_ops("/api/v1/deployments").await.unwrap().status(), 200);
    // A console session made with the token.
    let r = reqwest::Client::new()
        .post(c.url("/api/v1/session"))
        .json(&serde_json::json!({ "token": ops }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();

    let (code, out, err) = support::cli(
        dir.path(),
        &["token", "list", "--data-dir", data, "-o", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = listed.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["test-admin", "ops"]);
    assert!(!out.contains("cat_") && !out.contains("sha256"), "{out}");
    let (code, out, _) = support::cli(dir.path(), &["token", "list", "--data-dir", data]);
    assert_eq!(code, 0);
    assert!(
        out.contains("ops") && out.contains("sovereign-admin"),
        "{out}"
    );

    // Revoked offline, refused by the running server at once, session included.
    let (code, out, err) = support::cli(
        dir.path(),
        &["token", "revoke", "--data-dir", data, "--name", "ops"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked 1"), "{out}");
    assert_eq!(as_ops("/api/v1/deployments").await.unwrap().status(), 401);
    let r = reqwest::Client::new()
        .get(c.url("/api/v1/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (code, _, err) = support::cli(
        dir.path(),
        &["token", "revoke", "--data-dir", data, "--name", "ops"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("no token matches"), "{err}");
    // By id; the other admin token keeps working until then.
    assert_eq!(
        c.client()
            .get(c.url("/api/v1/deployments"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let id = listed[0]["id"].as_str().unwrap();
    let (code, _, err) = support::cli(
        dir.path(),
        &["token", "revoke", "--data-dir", data, "--id", id],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        c.client()
            .get(c.url("/api/v1/deployments"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

/// Every file under `dir` with its bytes, for a byte-for-byte comparison.
fn snapshot_dir(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_path_buf(), std::fs::read(e.path()).unwrap()))
        .collect()
}

/// `catalyst serve --listen ADDR ARGS…` run to completion (it is expected to refuse): (exit code,
/// stderr, how long it took).
fn serve_refused(listen: &str, args: &[&str]) -> (i32, String, Duration) {
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .args(["serve", "--listen", listen])
        .args(args)
        .env_remove("CATALYST_DATABASE_URL")
        .env_remove("CATALYST_CATALOG")
        .env_remove("CATALYST_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the second server did not refuse: it is still running");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code().unwrap_or(-1), err, took)
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_refuses_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let side = tempfile::tempdir().unwrap();
    let pidfile = side.path().join("standin.pid");
    let bin = standin_tofu();
    let args = ["--provisioner", "tofu", "--tofu-bin", bin.to_str().unwrap()];
    let env = [
        ("STANDIN_TOFU_HANG_AT", "apply".to_owned()),
        ("STANDIN_TOFU_PIDFILE", pidfile.display().to_string()),
    ];
    let mut a = Catalyst::start(dir.path(), &args, &env);
    let id = create(&a, "inflight").await;
    let seen = follow(&a, &id, |frames| {
        frames.iter().any(|f| f.data["phase"] == "tofu-apply")
    })
    .await;
    // Let A's writes for the frames seen settle, then take the picture.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = snapshot_dir(dir.path());
    let data_dir = dir.path().to_str().unwrap();
    let other = format!("127.0.0.1:{}", support::free_port());
    let same = format!("127.0.0.1:{}", a.port);
    for listen in [other.as_str(), same.as_str()] {
        let mut second = vec!["--data-dir", data_dir];
        second.extend_from_slice(&args);
        let (code, err, took) = serve_refused(listen, &second);
        assert_ne!(code, 0, "{err}");
        assert!(took < Duration::from_secs(1), "refused after {took:?}");
        assert!(
            err.contains("is in use by another Catalyst server"),
            "{err}"
        );
        assert!(err.contains(&format!("pid {}", a.child.id())), "{err}");
        assert_eq!(
            snapshot_dir(dir.path()),
            before,
            "the second server on {listen} changed the data directory"
        );
    }
    // A is unaffected: its deployment is still running and answers.
    let (status, state) = get(&a, &format!("/api/v1/deployments/{id}")).await;
    assert_eq!(status, 200);
    assert_ne!(state["status"], "failed", "{state}");
    a.signal(nix::sys::signal::Signal::SIGKILL);
    a.wait_exit(Duration::from_secs(5));
    kill_standin(&pidfile);
    drop(a);

    // A restart loads the store with no repair: every event A acknowledged is there.
    let c = Catalyst::start(dir.path(), &args, &[]);
    let (_, events) = get(&c, &format!("/api/v1/deployments/{id}/events")).await;
    let stored = events["events"].as_array().unwrap();
    for f in seen.iter().filter(|f| f.event.is_none()) {
        assert_eq!(
            stored[(f.id.unwrap() - 1) as usize]["message"],
            f.data["message"]
        );
    }
    let log = c.log();
    assert!(!log.contains("store load warning"), "{log}");
    assert!(!log.contains("torn tail"), "{log}");
}

/// Two servers on one PostgreSQL schema (separate data directories): each follows the
/// deployments the other runs (state, live log, cancel), and when the runner is killed the
/// other one fails its deployment once its lease has expired — exactly once, and the restarted
/// server does not run it again.
#[tokio::test]
async fn servers_on_one_postgres_schema_share_deployments_and_fail_a_dead_ones_once() {
    let Some(schema) = fresh_schema().await else {
        return;
    };
    let url = format!("{}?options=-csearch_path%3D{schema}", database_url());
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pidfile = dir_a.path().join("standin.pid");
    let bin = standin_tofu();
    let lease = [
        "--deployment-lease-ttl",
        "1s",
        "--database-url",
        url.as_str(),
    ];
    let args_a: Vec<&str> = ["--provisioner", "tofu", "--tofu-bin", bin.to_str().unwrap()]
        .into_iter()
        .chain(lease)
        .collect();
    let env = [
        ("STANDIN_TOFU_HANG_AT", "apply".to_owned()),
        ("STANDIN_TOFU_PIDFILE", pidfile.display().to_string()),
    ];
    let mut a = Catalyst::start(dir_a.path(), &args_a, &env);
    let args_b: Vec<&str> = ["--provisioner", "dry-run"]
        .into_iter()
        .chain(lease)
        .collect();
    let b = Catalyst::start(dir_b.path(), &args_b, &[]);
    let applying = |f: &[Frame]| f.iter().any(|f| f.data["phase"] == "tofu-apply");

    // A cancellation asked of B reaches the run on A.
    let cancelled = create(&a, "leasecancel").await;
    follow(&a, &cancelled, applying).await;
    let r = b
        .client()
        .post(b.url(&format!("/api/v1/deployments/{cancelled}/cancel")))
        .send()
        .await
        .unwrap();
    assert!(r.status() == 200 || r.status() == 202, "{}", r.status());
    b.poll_json(
        &format!("/api/v1/deployments/{cancelled}"),
        Duration::from_secs(10),
        |v| v["status"] == "cancelled",
    )
    .await;

    // A deployment run by A is in B's list within a second, with A's log.
    let id = create(&a, "leased").await;
    let on_a = follow(&a, &id, applying).await;
    let listed = b
        .poll_json("/api/v1/deployments", Duration::from_secs(1), |v| {
            v["deployments"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["id"] == id.as_str()))
        })
        .await;
    assert!(
        listed.to_string().contains("leased.omani.works"),
        "{listed}"
    );
    let seen_on_b = follow(&b, &id, applying).await;
    assert_eq!(
        seen_on_b.iter().map(|f| f.id).collect::<Vec<_>>()[..on_a.len()],
        on_a.iter().map(|f| f.id).collect::<Vec<_>>()[..],
        "B replays A's log"
    );
    // Leases are renewed: several TTLs later B has not failed A's live run.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, state) = get(&b, &format!("/api/v1/deployments/{id}")).await;
    assert_eq!(state["status"], "tofu-applying", "{state}");

    // A dies; B's live log of the deployment ends with it failed, once the lease expired.
    let follow_b = follow(&b, &id, |_| false);
    let kill = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        a.signal(nix::sys::signal::Signal::SIGKILL);
        a.wait_exit(Duration::from_secs(5));
        kill_standin(&pidfile);
    };
    let (frames, ()) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(follow_b, kill)
    })
    .await
    .expect("B fails the dead server's deployment within 20 s");
    let done = frames.last().unwrap();
    assert_eq!(done.event.as_deref(), Some("done"), "{frames:?}");
    assert_eq!(done.data["status"], "failed");
    let err = done.data["error"].as_str().unwrap();
    assert!(err.contains("orphan") && err.contains(&id), "{err}");
    drop(a);

    // Restarted on its data directory, A finds it failed and runs nothing; one failure only.
    let a = Catalyst::start(dir_a.path(), &args_a, &[]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    for c in [&a, &b] {
        let (_, events) = get(c, &format!("/api/v1/deployments/{id}/events")).await;
        let failed = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == "failed")
            .count();
        assert_eq!(failed, 1, "{events}");
        assert_eq!(events["state"]["status"], "failed");
    }
    assert!(
        !a.log().contains("marked failed"),
        "B failed it already: {}",
        a.log()
    );
    drop((a, b));
    let (client, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

/// The read side through the binary: Applications are listed from the projection of the event
/// log under the data dir; after a kill -9 the restarted server has the same cards (the log is
/// the truth), and `catalyst projection rebuild` gives the same projection offline, but refuses
/// while a server holds the directory.
#[tokio::test]
async fn the_projection_survives_a_kill_and_rebuilds_offline() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--provisioner",
        "dry-run",
        "--catalog",
        support::repo().join("examples/catalog").to_str().unwrap(),
    ]
    .map(str::to_owned);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c = Catalyst::start(dir.path(), &args, &[]);
    for (path, body) in [
        ("/api/v1/orgs", json!({"name": "acme"})),
        ("/api/v1/orgs/acme/environments", json!({"envType": "dev"})),
        (
            "/api/v1/orgs/acme/applications",
            json!({"name": "auth", "blueprint": "bp-keycloak", "environment": "dev", "values": {"realm": "acme"}}),
        ),
    ] {
        let (s, v) = c.post_json(path, &body).await;
        assert!(s == 201 || s == 200, "{path}: {s} {v}");
    }
    let (s, before) = get(&c, "/api/v1/orgs/acme/applications").await;
    assert_eq!(s, 200);
    let names: Vec<&str> = before["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"auth"), "{before}");
    let data = dir.path().to_str().unwrap();
    let (code, _, err) = support::cli(dir.path(), &["projection", "rebuild", "--data-dir", data]);
    assert_ne!(code, 0);
    assert!(
        err.contains("is in use by another Catalyst server"),
        "{err}"
    );

    c.signal(nix::sys::signal::Signal::SIGKILL);
    c.wait_exit(Duration::from_secs(5));
    let (code, out, err) = support::cli(dir.path(), &["projection", "rebuild", "--data-dir", data]);
    assert_eq!(code, 0, "{err}");
    let rebuilt: Value = serde_json::from_str(&out).unwrap();
    let cards = rebuilt["organizations"]["acme"]["applications"]
        .as_array()
        .unwrap();
    assert!(cards.iter().any(|a| a["name"] == "auth"), "{rebuilt}");
    drop(c);
    let c = Catalyst::start(dir.path(), &args, &[]);
    let (_, after) = get(&c, "/api/v1/orgs/acme/applications").await;
    assert_eq!(after, before);
}

/// Deployments are on the spine (created, each status change, finished), and the stores are
/// the outbox: with the event log lost, a restart records every deployment's creation and
/// current status again from the deployment store, and every Organization from Git.
#[tokio::test]
async fn deployments_are_on_the_spine_and_the_stores_refill_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Catalyst::start(dir.path(), &["--provisioner", "dry-run"], &[]);
    let id = create(&c, "spined").await;
    let done = format!("\"subject\":\"{id}\"");
    let text = c
        .events_until("?type=deployment", |t| {
            t.contains("io.openova.catalyst.deployment.finished") && t.contains(&done)
        })
        .await;
    assert!(
        text.contains("event: io.openova.catalyst.deployment.created"),
        "{text}"
    );
    assert!(
        text.contains("event: io.openova.catalyst.deployment.status-changed"),
        "{text}"
    );
    assert!(!text.contains("organization."), "filtered by type: {text}");
    // The pool name's life is there too (a dry run frees its name when it ends).
    let pool = c
        .events_until("?type=pool", |t| t.contains("pool.released"))
        .await;
    assert!(
        pool.contains("event: io.openova.catalyst.pool.reserved"),
        "{pool}"
    );
    assert!(
        pool.contains("\"subject\":\"spined.omani.works\""),
        "{pool}"
    );
    assert!(
        !pool.contains("token"),
        "no reservation token in events: {pool}"
    );
    let metrics = c
        .client()
        .get(c.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "catalyst_spine_events_total{type=\"deployment.created\",backend=\"file\"} 1",
        "catalyst_spine_events_total{type=\"pool.reserved\",backend=\"file\"} 1",
        "catalyst_projector_lag_events ",
        "catalyst_event_stream_subscribers ",
        "catalyst_flux_webhook_calls_total{outcome=\"invalid-signature\"} 0",
    ] {
        assert!(metrics.contains(needle), "{needle}: {metrics}");
    }
    let (s, _) = c.post_json("/api/v1/orgs", &json!({"name": "acme"})).await;
    assert_eq!(s, 201);

    c.signal(nix::sys::signal::Signal::SIGKILL);
    c.wait_exit(Duration::from_secs(5));
    std::fs::remove_file(dir.path().join("events/events.log")).unwrap();
    drop(c);
    let c = Catalyst::start(dir.path(), &["--provisioner", "dry-run"], &[]);
    let text = c
        .events_until("", |t| {
            t.contains("io.openova.catalyst.deployment.finished")
                && t.contains("organization.imported")
        })
        .await;
    assert_eq!(
        text.matches("deployment.created").count(),
        2,
        "event and data lines: {text}"
    );
    let (_, orgs) = get(&c, "/api/v1/orgs").await;
    assert_eq!(
        orgs["organizations"][0]["metadata"]["name"], "acme",
        "{orgs}"
    );
}

/// Tokens and failed sign-ins reach the audit log: a token made offline while the server is
/// down is recorded at start-up, one made or revoked offline while it runs within seconds, a
/// member's token with the caller as actor; a burst of bad tokens is one `signin.failed` with
/// the client's address and the count folded in, and no credential is in any of it.
#[tokio::test]
async fn tokens_and_failed_sign_ins_are_on_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let before = support::create_token(dir.path(), "org-viewer", Some("acme"), "early");
    let mut c = Catalyst::start(dir.path(), &["--provisioner", "dry-run"], &[]);
    let audit = |t: &'static str| {
        let c = &c;
        async move {
            let (s, v) = get(c, &format!("/api/v1/audit?type={t}&limit=500")).await;
            assert_eq!(s, 200, "{v}");
            v["entries"].as_array().unwrap().clone()
        }
    };
    let created = audit("token.created").await;
    let subjects: Vec<&str> = created
        .iter()
        .filter_map(|e| e["subject"].as_str())
        .collect();
    assert!(subjects.contains(&"acme/early"), "{created:?}");

    // Made and revoked offline while the server runs.
    let late = support::create_token(dir.path(), "org-admin", Some("acme"), "late");
    c.poll_json(
        "/api/v1/audit?type=token.created",
        Duration::from_secs(5),
        |v| v.to_string().contains("acme/late"),
    )
    .await;
    let data = dir.path().to_str().unwrap();
    let (code, _, err) = support::cli(
        dir.path(),
        &[
            "token",
            "revoke",
            "--data-dir",
            data,
            "--name",
            "early",
            "--org",
            "acme",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let revoked = c
        .poll_json(
            "/api/v1/audit?type=token.revoked",
            Duration::from_secs(5),
            |v| v.to_string().contains("acme/early"),
        )
        .await;
    assert!(
        revoked.to_string().contains("catalyst token (offline)"),
        "{revoked}"
    );

    // A member added through the API: its token is recorded with the caller as actor.
    for (path, body) in [
        ("/api/v1/orgs", json!({"name": "acme"})),
        (
            "/api/v1/orgs/acme/members",
            json!({"name": "dana", "role": "org-developer"}),
        ),
    ] {
        let (s, v) = c.post_json(path, &body).await;
        assert_eq!(s, 201, "{path}: {v}");
    }
    let created = audit("token.created").await;
    let dana = created
        .iter()
        .find(|e| e["subject"] == "acme/dana")
        .unwrap_or_else(|| panic!("{created:?}"));
    assert_eq!(dana["actor"], "test-admin", "{dana}");

    // Twenty bad tokens in a second from 127.0.0.3: the first ten are checked (401), the rest
    // refused unchecked (429 with Retry-After); one event, from that address. The admin on
    // 127.0.0.1 is unaffected throughout.
    let bad = "cat_0000000000000000000000000000000000000000000000000000000000000bad";
    let elsewhere = reqwest::Client::builder()
        .local_address(Some("127.0.0.3".parse().unwrap()))
        .build()
        .unwrap();
    let mut codes = Vec::new();
    for _ in 0..20 {
        let r = elsewhere
            .get(c.url("/api/v1/orgs"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=6).contains(&wait), "Retry-After {wait}");
        }
        codes.push(r.status().as_u16());
        let (s, _) = get(&c, "/api/v1/orgs").await;
        assert_eq!(s, 200, "the admin elsewhere is unaffected");
    }
    assert_eq!(codes[..10], [401; 10], "{codes:?}");
    assert_eq!(codes[10..], [429; 10], "{codes:?}");
    let metrics = c.metrics().await;
    assert!(
        metrics.contains("catalyst_sign_in_limited_total{by=\"client\"} 10"),
        "{metrics}"
    );
    let failed = c
        .poll_json(
            "/api/v1/audit?type=signin.failed",
            Duration::from_secs(5),
            |v| !v["entries"].as_array().unwrap().is_empty(),
        )
        .await;
    let entries = failed["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{failed}");
    assert_eq!(entries[0]["subject"], "127.0.0.3", "{failed}");
    // Everything the log holds, and the audit API, are free of any credential.
    c.stop();
    let log = std::fs::read_to_string(dir.path().join("events/events.log")).unwrap();
    assert!(log.contains("\"reason\":\"unknown-token\""), "{log}");
    for secret in [bad, before.as_str(), late.as_str()] {
        assert!(!log.contains(secret), "a token is on the event log");
        assert!(!failed.to_string().contains(secret));
    }
    assert!(!log.contains("sha256"), "no token hash on the event log");
    // Restarted: nothing is recorded twice.
    let c = Catalyst::start(dir.path(), &["--provisioner", "dry-run"], &[]);
    let created = {
        let (_, v) = get(&c, "/api/v1/audit?type=token.created&limit=500").await;
        v["entries"].as_array().unwrap().clone()
    };
    let early = created
        .iter()
        .filter(|e| e["subject"] == "acme/early")
        .count();
    assert_eq!(early, 1, "{created:?}");
}

/// `catalyst doctor` checks what `serve` with the same flags would need and says what to fix;
/// `catalyst completion` prints a completion script.
#[tokio::test]
async fn doctor_says_what_works_and_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let catalog = support::repo().join("examples/catalog");
    let Some(stream) = catalyst_testkit::TestStream::new("doctor") else {
        return;
    };
    let pg = database_url();
    let (code, out, err) = support::cli(
        dir.path(),
        &[
            "doctor",
            "--data-dir",
            data,
            "--database-url",
            pg.as_str(),
            "--nats-url",
            stream.url.as_str(),
            "--provisioner",
            "dry-run",
            "--catalog",
            catalog.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    for line in [
        "ok    data directory:",
        "ok    PostgreSQL: PostgreSQL ",
        "ok    NATS JetStream: ",
        "-     OpenTofu: not needed (--provisioner dry-run)",
        "ok    catalog: 1 root(s) load",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }

    // What is broken fails, with the fix under it; exit 1.
    let (code, out, err) = support::cli(
        dir.path(),
        &[
            "doctor",
            "--data-dir",
            data,
            "--nats-url",
            "nats://127.0.0.1:1",
            "--pdns-url",
            "http://127.0.0.1:1",
            "--provisioner",
            "tofu",
            "--tofu-bin",
            "/nonexistent/tofu",
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    for line in [
        "FAIL  NATS JetStream: cannot connect to nats://127.0.0.1:1",
        "fix: start nats-server with -js",
        "FAIL  PowerDNS: http://127.0.0.1:1/api/v1/servers/localhost",
        "Connection refused",
        "FAIL  OpenTofu: /nonexistent/tofu not found",
        "-     PostgreSQL: not configured",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    assert!(err.contains("3 check(s) failed"), "{err}");

    // A data directory a server holds is a warning naming it, not a failure.
    let c = Catalyst::start(Path::new(data), &["--provisioner", "dry-run"], &[]);
    let (code, out, _) = support::cli(
        dir.path(),
        &["doctor", "--data-dir", data, "--provisioner", "dry-run"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("in use by a running server")
            && out.contains(&format!("pid={}", c.child.id())),
        "{out}"
    );
    drop(c);

    let (code, bash, _) = support::cli(dir.path(), &["completion", "bash"]);
    assert_eq!(code, 0);
    assert!(
        bash.contains("_catalyst()") && bash.contains("doctor"),
        "{bash}"
    );
    let (code, zsh, _) = support::cli(dir.path(), &["completion", "zsh"]);
    assert_eq!((code, zsh.lines().next()), (0, Some("#compdef catalyst")));
    let (code, _, err) = support::cli(dir.path(), &["completion", "tcsh"]);
    assert_eq!(code, 2, "{err}");
}

/// A client that does not finish its request headers is disconnected after
/// `--header-read-timeout`; everyone else is served meanwhile.
#[tokio::test]
async fn a_client_that_does_not_finish_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let c = Catalyst::start(
        dir.path(),
        &["--provisioner", "dry-run", "--header-read-timeout", "1s"],
        &[],
    );
    // Straight to the server (the tests' checking proxy would hold the connection itself).
    let addr = format!("127.0.0.1:{}", c.port);
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: catalyst\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (s, _) = get(&c, "/api/v1/orgs").await;
    assert_eq!(s, 200, "others are served while the slow client waits");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection within 5 s")
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed after {took:?}, before the timeout"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(!text.contains("200 OK"), "{text}");
}
