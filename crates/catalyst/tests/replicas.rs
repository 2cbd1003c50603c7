//! Two `catalyst serve` processes on one JetStream spine (NATS at 127.0.0.1:4222, or
//! `CATALYST_TEST_NATS_URL`; a stream and subject prefix of this test's own, deleted after): a
//! change on one is in the other's projection and event stream within a second, and a restarted
//! replica reads the same history. Skipped visibly without NATS (a failure in CI).
mod support;

use std::time::Duration;

use serde_json::json;
use support::Catalyst;

#[tokio::test]
async fn two_replicas_share_one_spine() {
    let Some(stream) = catalyst_testkit::TestStream::new("replicas") else {
        return;
    };
    let prefix = stream.prefix();
    let catalog = support::repo().join("examples/catalog");
    let args = [
        "--catalog",
        catalog.to_str().unwrap(),
        "--provisioner",
        "dry-run",
        "--nats-url",
        stream.url.as_str(),
        "--nats-stream",
        stream.name.as_str(),
        "--nats-subject-prefix",
        prefix.as_str(),
    ];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = Catalyst::start(dir_a.path(), &args, &[]);
    let b = Catalyst::start(dir_b.path(), &args, &[]);
    let second = Duration::from_secs(1);

    // An Organization created on A is in B's list within a second.
    let (s, v) = a.post_json("/api/v1/orgs", &json!({"name": "acme"})).await;
    assert_eq!(s, 201, "{v}");
    b.poll_json("/api/v1/orgs", second, |v| {
        v["organizations"][0]["metadata"]["name"] == "acme"
    })
    .await;

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
    let apps = b
        .poll_json(
            "/api/v1/orgs/acme/applications?environment=dev",
            second,
            |v| {
                v["applications"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|c| c["name"] == "auth"))
            },
        )
        .await;
    let card = &apps["applications"][0];
    assert_eq!(
        (card["status"].as_str(), card["blueprint"].as_str()),
        (Some("committed"), Some("bp-keycloak")),
        "{apps}"
    );

    // A deployment run by A is in B's event stream, start to finish.
    let (s, v) = a
        .post_json(
            "/api/v1/deployments",
            &support::deployment_request("replica", Some("hz")),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let on_b = b
        .events_until("", |t| {
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
    let ids = |t: &str| -> Vec<String> {
        t.lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .map(str::to_owned)
            .collect()
    };
    let before = ids(&a
        .events_until("", |t| t.contains("deployment.finished"))
        .await);
    a.signal(nix::sys::signal::Signal::SIGKILL);
    a.wait_exit(Duration::from_secs(5));
    drop(a);
    let a = Catalyst::start(dir_a.path(), &args, &[]);
    let after = ids(&a
        .events_until("", |t| t.contains("deployment.finished"))
        .await);
    let n = before.len().min(after.len());
    assert!(
        n >= 3 && before[..n] == after[..n],
        "{before:?} vs {after:?}"
    );
    drop((a, b));
}
