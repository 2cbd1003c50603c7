//! A 5 000-line burst from `tofu apply` (the OpenTofu stand-in of the tests, driven by the real
//! binary): every line stored and delivered to every subscriber, in order, once; wall time from
//! the create request to the last subscriber's `done`.
//!
//! Run: `cargo bench -p catalyst --bench burst` (env `BURST_LINES` default 5000,
//! `BURST_SUBSCRIBERS` default 2, `BURST_RUNS` default 5).
mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn follow(client: reqwest::Client, url: String) -> (Vec<u64>, usize, bool, Instant) {
    let resp = client.get(url).send().await.unwrap();
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::<u8>::new();
    let (mut ids, mut lines, mut done) = (Vec::new(), 0usize, false);
    while let Some(Ok(chunk)) = stream.next().await {
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buf.drain(..pos + 2).collect();
            let text = String::from_utf8_lossy(&block);
            if text.contains("event: done") {
                done = text.contains("\"status\":\"ready\"");
            }
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    ids.push(v.parse::<u64>().unwrap());
                }
                if line.starts_with("data: ") && line.contains("\"phase\":\"tofu\"") {
                    lines += 1;
                }
            }
        }
    }
    (ids, lines, done, Instant::now())
}

#[tokio::main]
async fn main() {
    let lines = env_or("BURST_LINES", 5000);
    let subscribers = env_or("BURST_SUBSCRIBERS", 2);
    let runs = env_or("BURST_RUNS", 5);
    let dir = common::scratch();
    let bin = common::standin_tofu();
    let c = common::Catalyst::start(
        dir.path(),
        &["--provisioner", "tofu", "--tofu-bin", bin.to_str().unwrap()],
        &[
            ("STANDIN_TOFU_APPLY_LINES", lines.to_string()),
            common::quiet(),
        ],
    );
    c.wait_ready(Instant::now());
    let client = c.client();
    let mut walls = Vec::new();
    let mut total_events = 0;
    for run in 0..runs {
        let body = serde_json::json!({
            "orgName": "Bench", "orgEmail": "bench@example.com",
            "sovereignFQDN": format!("burst{run}.example.com"), "sovereignDomainMode": "byo-manual",
            "hetznerToken": "x".repeat(64), "hetznerProjectID": "1",
            "regions": [{"provider": "hetzner", "cloudRegion": "fsn1", "controlPlaneSize": "cpx32"}],
            "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl b@b"
        });
        let started = Instant::now();
        let created: serde_json::Value = client
            .post(format!("{}/api/v1/deployments", c.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        let tasks: Vec<_> = (0..subscribers)
            .map(|_| {
                tokio::spawn(follow(
                    client.clone(),
                    format!("{}/api/v1/deployments/{id}/logs", c.base),
                ))
            })
            .collect();
        let mut reference: Option<Vec<u64>> = None;
        let mut last_done = started;
        for t in tasks {
            let (ids, tofu_lines, ready, at) = t.await.unwrap();
            assert!(ready, "done with ready");
            assert!(
                tofu_lines >= lines,
                "every line delivered: {tofu_lines} < {lines}"
            );
            assert_eq!(
                ids,
                (1..=ids.len() as u64).collect::<Vec<_>>(),
                "in order, once"
            );
            match &reference {
                Some(r) => assert_eq!(r, &ids, "identical sequences"),
                None => reference = Some(ids),
            }
            last_done = last_done.max(at);
        }
        let stored: serde_json::Value = client
            .get(format!("{}/api/v1/deployments/{id}/events", c.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let n = stored["events"].as_array().unwrap().len();
        assert_eq!(
            Some(n),
            reference.as_ref().map(Vec::len),
            "every event stored"
        );
        total_events = n;
        walls.push(last_done - started);
    }
    let med: Duration = common::median(walls.clone());
    println!(
        "burst: {lines} apply lines ({total_events} events) to {subscribers} subscribers, all stored and delivered in order once; \
         create → last done: median {:.3} s (runs: {:?})",
        med.as_secs_f64(),
        walls.iter().map(|d| format!("{:.3}s", d.as_secs_f64())).collect::<Vec<_>>()
    );
    println!("command: cargo bench -p catalyst --bench burst");
}
