//! Faults the server must ride out: its PostgreSQL restarting under load. A private PostgreSQL
//! (initdb into a temporary directory, its own port) so that restarting it disturbs no other
//! test; deployments are created continuously through the dry-run provisioner while it restarts.
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use catalyst_testkit::{skip_or_fail, Need};
use serde_json::Value;
use support::{deployment_request, free_port, Catalyst};

const TOKEN: &str = "hcloud-faults-token-0123456789abcdef0123456789abcdef0123456789abcdef";

/// A PostgreSQL of this test's own.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

fn tool(name: &str) -> Option<PathBuf> {
    let found = Command::new("sh")
        .args([
            "-c",
            &format!(
                "command -v {name} || ls /usr/lib/postgresql/*/bin/{name} 2>/dev/null | tail -1"
            ),
        ])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()?
        .trim()
        .to_owned();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

impl PrivatePostgres {
    fn start() -> Option<PrivatePostgres> {
        let (Some(initdb), Some(_)) = (tool("initdb"), tool("pg_ctl")) else {
            skip_or_fail(
                Need::Postgres,
                "initdb/pg_ctl are not installed (a private PostgreSQL is needed to restart it)",
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        // PostgreSQL refuses to run as root: run it as `postgres` then.
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                skip_or_fail(
                    Need::Postgres,
                    "cannot hand a directory to the postgres user",
                );
                return None;
            }
        }
        let pg = PrivatePostgres {
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = pg.data();
        let out = pg
            .run(
                &initdb,
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ],
            )
            .output()
            .unwrap();
        if !out.status.success() {
            skip_or_fail(
                Need::Postgres,
                format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)),
            );
            return None;
        }
        pg.ctl(&["start"]);
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("pg")
    }

    fn run(&self, bin: &Path, args: &[&str]) -> Command {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin);
            c
        } else {
            Command::new(bin)
        };
        cmd.args(args).current_dir(self.dir.path());
        cmd
    }

    fn ctl(&self, verb: &[&str]) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        let log = self.dir.path().join("pg.log");
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-o",
            &opts,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-t",
            "60",
        ];
        args.extend_from_slice(verb);
        let out = self.run(&tool("pg_ctl").unwrap(), &args).output().unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {verb:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .run(
                &tool("pg_ctl").unwrap_or_else(|| "pg_ctl".into()),
                &[
                    "-D",
                    self.data().to_str().unwrap(),
                    "-m",
                    "immediate",
                    "stop",
                ],
            )
            .output();
    }
}

/// What the load saw: acknowledged deployment ids, and every refusal (status, body).
#[derive(Default)]
struct Seen {
    acked: Vec<String>,
    refused: Vec<(u16, Value)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarting_under_load_loses_no_acknowledged_deployment() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url();
    let c = Arc::new(Catalyst::start(
        dir.path(),
        &["--provisioner", "dry-run", "--database-url", &url],
        &[],
    ));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (c, seen, stop) = (c.clone(), seen.clone(), stop.clone());
        tokio::spawn(async move {
            let client = c.client();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let r = client
                    .post(c.url("/api/v1/deployments"))
                    .json(&deployment_request(&format!("pgr{n}"), Some(TOKEN)))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .expect("the server answers while its database restarts");
                let status = r.status().as_u16();
                let body: Value = r.json().await.expect("every answer is JSON");
                {
                    let mut s = seen.lock().unwrap();
                    if status == 201 {
                        s.acked.push(body["id"].as_str().unwrap().to_owned());
                    } else {
                        s.refused.push((status, body));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Some writes acknowledged, then the database restarts under them.
    let t = Instant::now();
    while seen.lock().unwrap().acked.len() < 5 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no deployment was acknowledged: {:?}\n{}",
            seen.lock().unwrap().refused.last(),
            c.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Three restarts, each under load; a fast restart drops every connection.
    let mut before = 0;
    for _ in 0..3 {
        before = seen.lock().unwrap().acked.len();
        tokio::task::block_in_place(|| pg.ctl(&["-m", "fast", "restart"]));
        // The server keeps answering, and accepts writes again once the database is back.
        let back = Instant::now();
        loop {
            let acked = seen.lock().unwrap().acked.len();
            if acked >= before + 5 {
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(30),
                "writes did not resume after the database restarted: {} refused, last {:?}",
                seen.lock().unwrap().refused.len(),
                seen.lock().unwrap().refused.last()
            );
            let h = c.client().get(c.url("/healthz")).send().await.unwrap();
            assert_eq!(h.status(), 200);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();

    let (acked, refused) = {
        let s = seen.lock().unwrap();
        (s.acked.clone(), s.refused.clone())
    };
    // A refusal while the database was away is a clear JSON 503, never a 500.
    for (status, body) in &refused {
        assert_eq!(*status, 503, "{body}");
        assert!(
            body["error"].is_string() && body["detail"].is_string(),
            "{body}"
        );
    }
    // Every acknowledged deployment is there, finishes, and its events have no gap or repeat.
    for id in &acked {
        let t = Instant::now();
        let state = loop {
            let (status, v) = get(&c, &format!("/api/v1/deployments/{id}/events")).await;
            assert_eq!(status, 200, "{id}: {v}");
            if v["done"] == true {
                break v;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "{id} never finished: {v}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let seqs: Vec<u64> = state["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "{id}");
        assert!(
            ["ready", "failed"].contains(&state["state"]["status"].as_str().unwrap()),
            "{state}"
        );
    }
    // And the list shows every one of them.
    let (_, list) = get(&c, "/api/v1/deployments?limit=500").await;
    let listed: Vec<&str> = list["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    for id in &acked {
        assert!(listed.contains(&id.as_str()), "{id} is not listed");
    }
    eprintln!(
        "postgres restarts: {} deployments acknowledged ({} before the last restart), {} refused with 503 while it was away",
        acked.len(),
        before,
        refused.len()
    );
}

async fn get(c: &Catalyst, path: &str) -> (u16, Value) {
    let r = c.client().get(c.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}
