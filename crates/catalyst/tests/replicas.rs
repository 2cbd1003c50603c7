//! Two `catalyst serve` processes on one JetStream spine (NATS at 127.0.0.1:4222, or
//! `CATALYST_TEST_NATS_URL`; a stream and subject prefix of this test's own, deleted after): a
//! change on one is in the other's projection and event stream within a second, and a restarted
//! replica reads the same history. Skipped visibly without NATS (a failure in CI).
mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use support::Catalyst;

struct Stream {
    url: String,
    name: String,
}

impl Drop for Stream {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(client) = async_nats::connect(url).await {
                    let _ = async_nats::jetstream::new(client).delete_stream(name).await;
                }
            });
        })
        .join();
    }
}

fn nats_reachable(url: &str) -> bool {
    let addr = url.trim_start_matches("nats://");
    std::net::TcpStream::connect(addr).is_ok()
}

async fn first_events_until(c: &Catalyst, until: impl Fn(&str) -> bool) -> String {
    let resp = c
        .client()
        .get(c.url("/api/v1/events"))
        .header("last-event-id", "0")
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !until(&text) {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .unwrap_or_else(|_| panic!("timed out; so far: {text}"))
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

#[tokio::test]
async fn two_replicas_share_one_spine() {
    let url = catalyst_testkit::nats_url();
    if !nats_reachable(&url) {
        catalyst_testkit::skip_or_fail(
            catalyst_testkit::Need::Nats,
            format!("{url} does not answer"),
        );
        return;
    }
    let tag = format!("r{}", std::process::id());
    let stream = Stream {
        url: url.clone(),
        name: format!("catalyst_replicas_{tag}"),
    };
    let prefix = format!("{tag}.");
    let catalog = support::repo().join("examples/catalog");
    let args = [
        "--catalog",
        catalog.to_str().unwrap(),
        "--provisioner",
        "dry-run",
        "--nats-url",
        url.as_str(),
        "--nats-stream",
        stream.name.as_str(),
        "--nats-subject-prefix",
        prefix.as_str(),
    ];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = Catalyst::start(dir_a.path(), &args, &[]);
    let b = Catalyst::start(dir_b.path(), &args, &[]);

    let (s, v) = a.post_json("/api/v1/orgs", &json!({"name": "acme"})).await;
    assert_eq!(s, 201, "{v}");
    let written = Instant::now();
    loop {
        let orgs: Value = b
            .client()
            .get(b.url("/api/v1/orgs"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if orgs["organizations"][0]["metadata"]["name"] == "acme" {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(1),
            "B never saw A's Organization: {orgs}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // An install on A is a card in B's list.
    for (path, body) in [
        ("/api/v1/orgs/acme/environments", json!({"envType": "dev"})),
        (
            "/api/v1/orgs/acme/applications",
            json!({"name": "auth", "blueprint": "bp-keycloak", "environment": "dev", "values": {"realm": "acme"}}),
        ),
    ] {
        let (s, v) = a.post_json(path, &body).await;
        assert_eq!(s, 201, "{path}: {v}");
    }
    let installed = Instant::now();
    loop {
        let apps: Value = b
            .client()
            .get(b.url("/api/v1/orgs/acme/applications?environment=dev"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let card = apps["applications"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == "auth").cloned());
        if let Some(card) = card {
            assert_eq!(card["status"], "committed", "{card}");
            assert_eq!(card["blueprint"], "bp-keycloak", "{card}");
            break;
        }
        assert!(
            installed.elapsed() < Duration::from_secs(1),
            "B never showed A's install: {apps}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A deployment run by A is in B's event stream, start to finish.
    let (s, v) = a
        .post_json(
            "/api/v1/deployments",
            &support::deployment_request("replica", Some("hz")),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let on_b = first_events_until(&b, |t| {
        t.contains("deployment.finished") && t.contains(&format!("\"subject\":\"{id}\""))
    })
    .await;
    assert!(
        on_b.contains("event: io.openova.catalyst.organization.created"),
        "{on_b}"
    );
    assert!(
        on_b.contains("event: io.openova.catalyst.deployment.created"),
        "{on_b}"
    );

    // A restarted replica reads the same history from the stream.
    let before = first_events_until(&a, |t| t.contains("deployment.finished")).await;
    a.signal(nix::sys::signal::Signal::SIGKILL);
    a.wait_exit(Duration::from_secs(5));
    drop(a);
    let a = Catalyst::start(dir_a.path(), &args, &[]);
    let after = first_events_until(&a, |t| t.contains("deployment.finished")).await;
    let ids = |t: &str| -> Vec<String> {
        t.lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .map(str::to_owned)
            .collect()
    };
    assert!(ids(&after).starts_with(&ids(&before)[..ids(&before).len().min(3)]));
    drop(stream);
}
