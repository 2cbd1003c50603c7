//! One suite, both backends: the embedded log and NATS JetStream (127.0.0.1:4222, or
//! `CATALYST_TEST_NATS_URL`; each test on a stream and subject prefix of its own, deleted after).
//! A missing NATS skips the JetStream half visibly, and fails it under
//! `CATALYST_REQUIRE_SERVICES=1`.

use std::sync::Arc;
use std::time::Duration;

use catalyst_spine::{
    CloudEvent, EventDraft, FileLog, JetStreamConfig, JetStreamLog, Projector, Spine,
};
use serde_json::json;

/// Opens the same spine again (a restart, or a second replica).
type Reopen = Box<dyn Fn() -> Arc<dyn Spine>>;

/// A backend under test (its JetStream stream, if any, is deleted when it is dropped).
struct Backend {
    name: &'static str,
    reopen: Reopen,
    _stream: Option<catalyst_testkit::TestStream>,
    _dir: tempfile::TempDir,
}

fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events");
    let mut out = vec![Backend {
        name: "file",
        reopen: Box::new(move || Arc::new(FileLog::open(&path).unwrap().0)),
        _stream: None,
        _dir: dir,
    }];
    let Some(stream) = catalyst_testkit::TestStream::new(&format!(
        "spine_{:016x}",
        catalyst_testkit::unique_suffix()
    )) else {
        return out;
    };
    let mut config = JetStreamConfig::new(stream.url.clone());
    config.stream = stream.name.clone();
    config.subject_prefix = stream.prefix();
    config.kv_prefix = stream.kv_prefix();
    let first = std::sync::Mutex::new(Some(JetStreamLog::open(config.clone()).unwrap()));
    out.push(Backend {
        name: "jetstream",
        reopen: Box::new(move || match first.lock().unwrap().take() {
            Some(log) => Arc::new(log),
            None => Arc::new(JetStreamLog::open(config.clone()).unwrap()),
        }),
        _stream: Some(stream),
        _dir: tempfile::tempdir().unwrap(),
    });
    out
}

fn ev(id: &str, kind: &str, app: &str) -> CloudEvent {
    EventDraft {
        id: id.into(),
        kind: kind.into(),
        org: Some("acme".into()),
        env: Some("acme-dev".into()),
        subject: format!("acme/{app}"),
        time: chrono::Utc::now(),
        data: json!({"actor": "ann", "applications": [{"name": app, "environment": "acme-dev", "envType": "dev",
            "branch": "develop", "commit": format!("c-{id}"), "blueprint": "bp-web", "version": "1.0.0", "dependsOn": []}]}),
    }
    .into_event()
}

fn seqs(events: &[Arc<CloudEvent>]) -> Vec<u64> {
    events.iter().map(|e| e.catalystseq).collect()
}

#[test]
fn appends_are_ordered_durable_and_recorded_once() {
    for b in backends() {
        let spine = (b.reopen)();
        let mut head = spine.watch();
        let got = spine
            .append(vec![
                ev("a", "application.installed", "web"),
                ev("b", "application.installed", "api"),
            ])
            .unwrap();
        assert_eq!(seqs(&got), [1, 2], "{}", b.name);
        assert_eq!(*head.borrow_and_update(), 2, "{}", b.name);
        // A replay of the same ids (an outbox after a crash) and a repeat inside one call.
        let got = spine
            .append(vec![
                ev("b", "application.installed", "api"),
                ev("c", "application.upgraded", "web"),
                ev("c", "application.upgraded", "web"),
            ])
            .unwrap();
        assert_eq!(seqs(&got), [2, 3, 3], "{}", b.name);
        assert_eq!(spine.head(), 3, "{}", b.name);
        assert!(spine.contains("a") && !spine.contains("z"), "{}", b.name);
        assert_eq!(
            spine
                .read_after(1, 10)
                .iter()
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>(),
            ["b", "c"],
            "{}",
            b.name
        );
        assert_eq!(
            spine.counts_by_type(),
            [
                ("application.installed".to_owned(), 2),
                ("application.upgraded".to_owned(), 1)
            ],
            "{}",
            b.name
        );
        let live =
            Projector::new(spine.clone()).read(|p| serde_json::to_vec(&p.to_json()).unwrap());
        drop(spine);

        // Reopened (a restart, or another replica): the same events in the same order, and the
        // same projection byte for byte.
        let again = (b.reopen)();
        assert_eq!(again.head(), 3, "{}", b.name);
        assert_eq!(
            again
                .read_after(0, 10)
                .iter()
                .map(|e| (e.id.as_str(), e.catalystseq))
                .collect::<Vec<_>>(),
            [("a", 1), ("b", 2), ("c", 3)],
            "{}",
            b.name
        );
        let rebuilt =
            Projector::new(again.clone()).read(|p| serde_json::to_vec(&p.to_json()).unwrap());
        assert_eq!(rebuilt, live, "{}", b.name);
        assert_eq!(
            seqs(
                &again
                    .append(vec![ev("a", "application.installed", "web")])
                    .unwrap()
            ),
            [1]
        );
    }
}

#[test]
fn concurrent_appends_are_numbered_without_gaps() {
    for b in backends() {
        let spine = (b.reopen)();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let spine = spine.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        spine
                            .append(vec![ev(
                                &format!("{t}-{i}"),
                                "application.installed",
                                "web",
                            )])
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let all = spine.read_after(0, usize::MAX);
        assert_eq!(all.len(), 100, "{}", b.name);
        assert_eq!(seqs(&all), (1..=100).collect::<Vec<_>>(), "{}", b.name);
    }
}

#[test]
fn a_second_replica_sees_the_first_ones_events_within_a_second() {
    for b in backends().into_iter().filter(|b| b.name == "jetstream") {
        let a = (b.reopen)();
        let other = (b.reopen)();
        let mut seen = other.watch();
        a.append(vec![ev("x", "application.installed", "web")])
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(1), seen.wait_for(|h| *h >= 1))
                .await
                .expect("replica B saw A's event within a second")
                .unwrap();
        });
        let on_b = other.read_after(0, 10);
        assert_eq!(on_b.len(), 1);
        assert_eq!(on_b[0].id, "x");
        // B's replay of the same change is recorded once.
        assert_eq!(
            seqs(
                &other
                    .append(vec![ev("x", "application.installed", "web")])
                    .unwrap()
            ),
            [1]
        );
        assert_eq!(a.head(), 1);
    }
}

#[test]
fn jetstream_keeps_kv_buckets_of_current_state() {
    let Some(stream) = catalyst_testkit::TestStream::new(&format!(
        "kv_{:016x}",
        catalyst_testkit::unique_suffix()
    )) else {
        return;
    };
    let mut config = JetStreamConfig::new(stream.url.clone());
    config.stream = stream.name.clone();
    config.subject_prefix = stream.prefix();
    config.kv_prefix = stream.kv_prefix();
    let spine = JetStreamLog::open(config.clone()).unwrap();
    spine
        .append(vec![
            ev("k1", "application.installed", "web"),
            ev("k2", "application.installed", "api"),
        ])
        .unwrap();
    let mut removed = ev("k3", "application.uninstalled", "api");
    removed.data = json!({"removed": [{"name": "api", "environment": "acme-dev"}]});
    spine.append(vec![removed]).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(stream.url.clone()).await.unwrap());
        let bucket = format!("{}ws-acme-dev-state", config.kv_prefix);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(kv) = js.get_key_value(bucket.clone()).await {
                let web = kv.get("application/web").await.unwrap();
                let api = kv.get("application/api").await.unwrap();
                if let (Some(web), None) = (&web, &api) {
                    let card: serde_json::Value = serde_json::from_slice(web).unwrap();
                    assert_eq!(card["name"], "web");
                    assert_eq!(card["status"], "committed");
                    assert_eq!(card["commit"], "c-k1");
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the KV bucket {bucket} never showed the cards"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The durable consumer `projector` acknowledged everything.
        let mut s = js.get_stream(config.stream.clone()).await.unwrap();
        let mut c: async_nats::jetstream::consumer::PullConsumer =
            s.get_consumer("projector").await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while c.info().await.unwrap().num_ack_pending > 0 || c.info().await.unwrap().num_pending > 0
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "projector consumer never caught up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = &mut s;
    });
}
