//! The provisioning API driven over HTTP on a loopback port, with a scripted provisioner.
mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{all_files, valid_request, Script, ScriptedProvisioner, Server, TOKEN};
use tokio::sync::Semaphore;

fn data_frames(frames: &[support::Frame]) -> Vec<&support::Frame> {
    frames.iter().filter(|f| f.event.is_none()).collect()
}

#[tokio::test]
async fn create_follow_to_done_ready() {
    let dir = tempfile::tempdir().unwrap();
    let p = ScriptedProvisioner::new(Script::default());
    let s = Server::start(dir.path(), p.clone()).await;
    let (status, body) = s
        .post("/api/v1/deployments", valid_request("omantel"))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    assert_eq!(
        body["streamURL"],
        json!(format!("/api/v1/deployments/{id}/logs"))
    );

    let frames = s.follow(&id, None).await;
    let done = frames.last().expect("frames");
    assert_eq!(done.event.as_deref(), Some("done"));
    assert_eq!(done.data["status"], "ready");
    assert_eq!(done.data["result"]["loadBalancerIP"], "203.0.113.20");
    assert_eq!(
        done.data["result"]["consoleURL"],
        "https://console.omantel.omani.works"
    );
    let data = data_frames(&frames);
    let ids: Vec<u64> = data.iter().map(|f| f.id.unwrap()).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "ids are 1..n"
    );
    assert_eq!(done.data["numEvents"], json!(ids.len()));
    // Statuses are reported in pipeline order, ending in ready.
    let statuses: Vec<&str> = data
        .iter()
        .filter_map(|f| f.data["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        [
            "provisioning",
            "tofu-applying",
            "flux-bootstrapping",
            "ready"
        ]
    );
    for f in &data {
        for key in ["time", "phase", "level", "message"] {
            assert!(f.data.get(key).is_some(), "event has {key}: {}", f.data);
        }
    }

    let (status, state) = s.get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(state["status"], "ready");
    assert_eq!(state["sovereignFQDN"], "omantel.omani.works");
    assert_eq!(state["region"], "fsn1");
    assert!(state["finishedAt"].is_string());

    let events = s.wait_done(&id).await;
    assert_eq!(events["state"]["status"], "ready");
    assert_eq!(events["events"].as_array().unwrap().len(), ids.len());

    // The token never reaches a response, a frame or a file.
    let everything = format!("{body}{state}{events}{frames:?}");
    assert!(!everything.contains(TOKEN));
    for (path, bytes) in all_files(dir.path()) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(TOKEN),
            "token found in {path}"
        );
    }
    // But the provisioner got it.
    assert_eq!(p.tokens.lock().unwrap().as_slice(), [TOKEN]);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), ScriptedProvisioner::new(Script::default())).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("orgEmail", json!("nope"), "orgEmail"),
        ("sovereignFQDN", json!("Not A Domain"), "sovereignFQDN"),
        ("sshPublicKey", json!("ssh-rsa garbage"), "sshPublicKey"),
        ("sovereignDomainMode", json!("magic"), "sovereignDomainMode"),
        (
            "sovereignPoolDomain",
            json!("example.org"),
            "sovereignPoolDomain",
        ),
        (
            "regions",
            json!([{"provider":"hetzner","cloudRegion":"mars1","controlPlaneSize":"cpx32"}]),
            "regions[0].cloudRegion",
        ),
        (
            "regions",
            json!([{"provider":"hetzner","cloudRegion":"fsn1","controlPlaneSize":"huge"}]),
            "regions[0].controlPlaneSize",
        ),
        ("hetznerToken", json!(""), "hetznerToken"),
    ];
    for (key, value, field) in cases {
        let mut req = valid_request("omantel");
        req[key] = value;
        let (status, body) = s.post("/api/v1/deployments", req).await;
        assert_eq!(status, 422, "{key}: {body}");
        assert_eq!(body["error"], "invalid-field");
        assert_eq!(body["field"], field, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(field));
    }
    // Malformed JSON.
    let r = s
        .client
        .post(s.url("/api/v1/deployments"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid-body");
    // Too large.
    let r = s
        .client
        .post(s.url("/api/v1/deployments"))
        .body(vec![b' '; 70 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "request-too-large");
    // Nothing was created.
    let (_, list) = s.get("/api/v1/deployments").await;
    assert_eq!(list["deployments"], json!([]));
    // Unknown and malformed ids are JSON 404s.
    for path in [
        "/api/v1/deployments/0123456789abcdef",
        "/api/v1/deployments/..%2Fescape",
        "/api/v1/deployments/0123456789abcdef/logs",
        "/api/v1/deployments/0123456789abcdef/events",
        "/api/v1/nothing-here",
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            body["error"].is_string() && body["detail"].is_string(),
            "{path}: {body}"
        );
    }
    let r = s
        .client
        .put(s.url("/api/v1/deployments"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn two_hundred_subscribers_see_identical_complete_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let p = ScriptedProvisioner::new(Script {
        lines: 400,
        pace: Duration::from_micros(500),
        gate: Some(gate.clone()),
        ..Script::default()
    });
    let s = Arc::new(Server::start(dir.path(), p).await);
    // 200 streams of one holder: above the default cap (tested below) on purpose.
    s.auth.streams().set_max(250);
    let id = s.create("fanout").await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = s.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            // Stagger joins so some replay history and some tail live events.
            tokio::time::sleep(Duration::from_millis((i % 20) as u64 * 5)).await;
            s.follow(&id, None).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.add_permits(1);
    let mut sequences = Vec::new();
    for t in tasks {
        sequences.push(t.await.unwrap());
    }
    let first = &sequences[0];
    let n = data_frames(first).len();
    assert!(n >= 400, "at least the 400 lines: {n}");
    for seq in &sequences {
        assert_eq!(seq, first, "every subscriber saw the same frames");
        let done = seq.last().unwrap();
        assert_eq!(done.event.as_deref(), Some("done"));
        assert_eq!(
            done.data["status"], "ready",
            "done carries the stored terminal state"
        );
    }
    // Resume after event k: exactly k+1..n, no duplicates, no gaps.
    for k in [0u64, 1, 57, n as u64 - 1, n as u64] {
        let resumed = s.follow(&id, Some(k)).await;
        let ids: Vec<u64> = data_frames(&resumed)
            .iter()
            .map(|f| f.id.unwrap())
            .collect();
        assert_eq!(
            ids,
            ((k + 1)..=n as u64).collect::<Vec<_>>(),
            "resume after {k}"
        );
        assert_eq!(resumed.last().unwrap().event.as_deref(), Some("done"));
    }
    // ?lastEventId= works like the header.
    let resp = s
        .client
        .get(s.url(&format!("/api/v1/deployments/{id}/logs?lastEventId=100")))
        .send()
        .await
        .unwrap();
    let frames = support::read_sse(resp).await;
    assert_eq!(data_frames(&frames)[0].id, Some(101));
}

#[tokio::test]
async fn live_resume_mid_run_has_no_duplicates_or_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let p = ScriptedProvisioner::new(Script {
        lines: 50,
        gate: Some(gate.clone()),
        ..Script::default()
    });
    let s = Server::start(dir.path(), p).await;
    let id = s.create("resume").await;
    // Read a few frames live, then drop the connection.
    let resp = s
        .client
        .get(s.url(&format!("/api/v1/deployments/{id}/logs")))
        .send()
        .await
        .unwrap();
    let mut stream = futures::StreamExt::boxed(resp.bytes_stream());
    let mut buf = String::new();
    let mut seen = Vec::new();
    while seen.len() < 10 {
        let chunk = futures::StreamExt::next(&mut stream)
            .await
            .unwrap()
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(pos) = buf.find("\n\n") {
            let block: String = buf.drain(..pos + 2).collect();
            if let Some(f) = support::parse_block(&block) {
                seen.push(f.id.unwrap());
            }
        }
    }
    drop(stream);
    let last = *seen.last().unwrap();
    gate.add_permits(1);
    let rest = s.follow(&id, Some(last)).await;
    let mut all = seen.clone();
    all.extend(data_frames(&rest).iter().map(|f| f.id.unwrap()));
    let n = all.len() as u64;
    assert_eq!(all, (1..=n).collect::<Vec<_>>());
}

#[tokio::test]
async fn cancel_retry_delete_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let p = ScriptedProvisioner::new(Script {
        gate: Some(gate.clone()),
        ..Script::default()
    });
    let s = Server::start(dir.path(), p.clone()).await;
    let id = s.create("cancelme").await;
    // Wait until it is applying.
    for _ in 0..100 {
        let (_, st) = s.get(&format!("/api/v1/deployments/{id}")).await;
        if st["status"] == "tofu-applying" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // In flight: retry and delete are 409.
    let (status, body) = s
        .post(
            &format!("/api/v1/deployments/{id}/phases/tofu-apply/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("in-flight"));
    let r = s
        .client
        .delete(s.url(&format!("/api/v1/deployments/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // Same FQDN while it holds the name: 409.
    let (status, body) = s
        .post("/api/v1/deployments", valid_request("cancelme"))
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"], "subdomain-conflict");

    let (status, body) = s
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "cancelled");
    let (status, _) = s
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 409, "cancel of a finished deployment");

    // Unknown phase.
    let (status, body) = s
        .post(
            &format!("/api/v1/deployments/{id}/phases/moon-landing/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unknown-phase");
    // Phase-1 phase: manual action.
    let (status, body) = s
        .post(
            &format!("/api/v1/deployments/{id}/phases/cilium/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "manual-retry-required");

    // Phase-0 retry re-runs with the credential still in memory.
    gate.add_permits(1);
    let (status, body) = s
        .post(
            &format!("/api/v1/deployments/{id}/phases/tofu-apply/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["streamURL"],
        json!(format!("/api/v1/deployments/{id}/logs"))
    );
    let events = s.wait_done(&id).await;
    assert_eq!(events["state"]["status"], "ready");
    assert_eq!(p.runs.load(Ordering::SeqCst), 2);

    // Delete a finished deployment: 204, then 404.
    let r = s
        .client
        .delete(s.url(&format!("/api/v1/deployments/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, _) = s.get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn failed_deployment_and_restart_needs_the_credential_again() {
    let dir = tempfile::tempdir().unwrap();
    let p = ScriptedProvisioner::new(Script {
        fail: Some("exited with status 1: invalid token".into()),
        ..Script::default()
    });
    let id = {
        let s = Server::start(dir.path(), p.clone()).await;
        let id = s.create("failing").await;
        let frames = s.follow(&id, None).await;
        let done = frames.last().unwrap();
        assert_eq!(done.data["status"], "failed");
        assert!(done.data["error"]
            .as_str()
            .unwrap()
            .contains("invalid token"));
        id
    };
    // A new process on the same data dir: the deployment is there, the token is not.
    *p.script.lock().unwrap() = Script::default();
    let s = Server::start(dir.path(), p.clone()).await;
    let (status, st) = s.get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(st["status"], "failed");
    let (status, body) = s
        .post(
            &format!("/api/v1/deployments/{id}/phases/tofu-init/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "credential-required");
    assert_eq!(body["field"], "hetznerToken");
    let (status, body) = s
        .post(
            &format!("/api/v1/deployments/{id}/phases/tofu-init/retry"),
            json!({"hetznerToken": TOKEN}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let events = s.wait_done(&id).await;
    assert_eq!(events["state"]["status"], "ready");
    // History of both attempts is kept, ids continue.
    let ids: Vec<u64> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
}

#[tokio::test]
async fn list_is_newest_first_with_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), ScriptedProvisioner::new(Script::default())).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(s.create(&format!("list{i}")).await);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    ids.reverse();
    let (status, page1) = s.get("/api/v1/deployments?limit=2").await;
    assert_eq!(status, 200);
    let got: Vec<&str> = page1["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, &ids[..2]);
    let cursor = page1["nextCursor"].as_str().unwrap();
    let (_, page2) = s
        .get(&format!("/api/v1/deployments?limit=10&cursor={cursor}"))
        .await;
    let got: Vec<&str> = page2["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, &ids[2..]);
    assert!(page2.get("nextCursor").is_none());
    let (status, _) = s.get("/api/v1/deployments?limit=0").await;
    assert_eq!(status, 400);
    let (status, _) = s.get("/api/v1/deployments?cursor=garbage").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn health_ready_metrics_sshkey_subdomains() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), ScriptedProvisioner::new(Script::default())).await;
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Security headers on every response; HSTS only behind a TLS-terminating proxy.
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
    ] {
        assert_eq!(r.headers()[name], value, "{name}");
    }
    assert!(r.headers().get("strict-transport-security").is_none());
    assert_eq!(r.text().await.unwrap(), "ok");
    let r = s
        .client
        .get(s.url("/api/v1/nowhere"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let r = s.client.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = s.create("metrics").await;
    s.follow(&id, None).await;
    let text = s.metrics().await;
    assert!(
        text.contains("catalyst_deployments{status=\"ready\"} 1"),
        "{text}"
    );
    assert!(text.contains("catalyst_events_appended_total"));
    assert!(text.contains("catalyst_sse_subscribers 0"));
    assert!(
        text.contains("route=\"/api/v1/deployments\",status=\"201\""),
        "{text}"
    );

    let (status, key) = s
        .post(
            "/api/v1/sshkey/generate",
            json!({"fqdn": "omantel.omani.works"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(key["publicKey"]
        .as_str()
        .unwrap()
        .ends_with(" catalyst@omantel.omani.works"));
    assert!(key["privateKey"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    assert!(key["fingerprint"].as_str().unwrap().starts_with("SHA256:"));
    let r = s
        .client
        .post(s.url("/api/v1/sshkey/generate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "empty body is fine");

    let (status, body) = s
        .post(
            "/api/v1/subdomains/check",
            json!({"subdomain": "-bad-", "poolDomain": "omani.works"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["reason"], "invalid-format");
    let (_, body) = s
        .post(
            "/api/v1/subdomains/check",
            json!({"subdomain": "Metrics", "poolDomain": "omani.works"}),
        )
        .await;
    assert_eq!(
        body["available"], false,
        "held by a ready deployment: {body}"
    );
    assert_eq!(body["reason"], "active-state");
    let (_, body) = s
        .post(
            "/api/v1/subdomains/check",
            json!({"subdomain": "fresh", "poolDomain": "omani.works"}),
        )
        .await;
    assert_eq!(
        body,
        json!({"available": true, "fqdn": "fresh.omani.works"})
    );
    let (_, body) = s
        .post(
            "/api/v1/subdomains/check",
            json!({"subdomain": "console", "poolDomain": "omani.works"}),
        )
        .await;
    assert_eq!(body["reason"], "reserved");

    let (status, body) = s
        .post(
            "/api/v1/credentials/validate",
            json!({"token": "short", "provider": "hetzner"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["valid"], false);
    let (status, body) = s
        .post(
            "/api/v1/credentials/validate",
            json!({"token": "x".repeat(64), "provider": "hetzner"}),
        )
        .await;
    assert_eq!(
        status, 503,
        "nothing listens on the configured Hetzner URL: {body}"
    );
}

#[tokio::test]
async fn keepalive_comments_flow_while_nothing_happens() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let p = ScriptedProvisioner::new(Script {
        gate: Some(gate.clone()),
        ..Script::default()
    });
    let s = Server::start_full(
        dir.path(),
        p,
        catalyst_provision::service::ServiceConfig::default(),
        Duration::from_millis(100),
    )
    .await;
    let id = s.create("keepalive").await;
    let resp = s
        .client
        .get(s.url(&format!("/api/v1/deployments/{id}/logs")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut stream = futures::StreamExt::boxed(resp.bytes_stream());
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while text.matches(": keepalive").count() < 2 {
        let chunk = tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut stream))
            .await
            .expect("keepalives arrive")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    gate.add_permits(1);
}

#[tokio::test]
async fn a_lagging_subscriber_is_cut_off_and_resumes_from_the_store() {
    use catalyst_provision::service::{ServiceConfig, SubscriptionItem};
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let mid = Arc::new(Semaphore::new(0));
    let p = ScriptedProvisioner::new(Script {
        lines: 300,
        gate: Some(gate.clone()),
        mid_gate: Some((20, mid.clone())),
        ..Script::default()
    });
    let config = ServiceConfig {
        event_window: 50,
        read_batch: 10,
        ..ServiceConfig::default()
    };
    let s = Server::start_with(dir.path(), p, config).await;
    let id_text = s.create("laggard").await;
    let id = catalyst_core::DeploymentId::parse(&id_text).unwrap();
    // Wait for the run to pause at line 20, then catch up to the head: the subscriber is live.
    while s.service.view(&id).unwrap().record.last_seq < 24 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut sub = s.service.subscribe(&id, 0).unwrap();
    let mut cursor = 0;
    while cursor < s.service.view(&id).unwrap().record.last_seq {
        match sub.next().await {
            Some(SubscriptionItem::Events(batch)) => cursor = batch.last().unwrap().event.seq,
            other => panic!("unexpected {other:?}"),
        }
    }
    // Stop reading while 280 more lines pass: it falls out of the 50-event window.
    mid.add_permits(1);
    while s.service.view(&id).unwrap().record.last_seq < cursor + 100 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    match sub.next().await {
        Some(SubscriptionItem::CutOff) => {}
        other => panic!("expected a cut-off, got {other:?}"),
    }
    assert!(sub.next().await.is_none());
    // Resuming with its last id replays the rest from the store, without gaps.
    gate.add_permits(1);
    let rest = s.follow(&id_text, Some(cursor)).await;
    let ids: Vec<u64> = data_frames(&rest).iter().map(|f| f.id.unwrap()).collect();
    assert_eq!(ids.first().copied(), Some(cursor + 1));
    assert_eq!(
        ids,
        ((cursor + 1)..=*ids.last().unwrap()).collect::<Vec<_>>()
    );
    assert_eq!(rest.last().unwrap().data["status"], "ready");
}

#[tokio::test]
async fn readyz_fails_when_the_store_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), ScriptedProvisioner::new(Script::default())).await;
    let r = s.client.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Replace the store's directory with a plain file: nothing can be written there any more.
    let store_dir = dir.path().join("deployments");
    std::fs::remove_dir_all(&store_dir).unwrap();
    std::fs::write(&store_dir, b"not a directory").unwrap();
    let r = s.client.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "store-unavailable");
    // Liveness is unaffected.
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// One holder may have at most 64 streams open; the 65th is 429 `too-many-streams`, counted in
/// `/metrics`; closing one frees its place.
#[tokio::test]
async fn streams_per_holder_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let p = ScriptedProvisioner::new(Script {
        gate: Some(gate.clone()),
        ..Script::default()
    });
    let s = Server::start(dir.path(), p).await;
    let id = s.create("capped").await;
    let url = s.url(&format!("/api/v1/deployments/{id}/logs"));
    let mut open = Vec::new();
    for _ in 0..64 {
        let r = s.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        open.push(r);
    }
    let refused = s.client.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too-many-streams", "{body}");
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("catalyst_streams_refused_total 1"),
        "{metrics}"
    );
    drop(open.pop());
    // The server notices the closed connection when it next writes or polls; wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = s.client.get(&url).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the place was never given back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    gate.add_permits(1);
}

#[tokio::test]
async fn the_openapi_description_is_served_without_a_token_and_describes_itself() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), ScriptedProvisioner::new(Script::default())).await;
    let r = reqwest::get(s.url("/api/v1/openapi.json")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served: Value = r.json().await.unwrap();
    let printed: Value = serde_json::from_str(catalyst_api::openapi::json()).unwrap();
    assert_eq!(served, printed);
    assert_eq!(served["openapi"], "3.1.0");
    assert!(served["paths"]["/api/v1/openapi.json"]["get"].is_object());
    // Every operation names its tag and every body schema it refers to exists.
    let schemas = served["components"]["schemas"].as_object().unwrap();
    let text = served.to_string();
    for r in text.split("\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(
            schemas.contains_key(name),
            "{name} is referenced but not defined"
        );
    }
}
