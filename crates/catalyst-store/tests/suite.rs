//! One behaviour suite, run against every backend: the file store on a temp dir and PostgreSQL
//! in a fresh schema per test (skipped when PostgreSQL is unreachable, unless
//! `CATALYST_REQUIRE_SERVICES=1`, which makes that a failure).

mod common;

use std::sync::Arc;

use catalyst_core::{DeploymentStatus, ProvisionResult};
use catalyst_store::{
    Change, DeploymentStore, FileStore, LeaseOwner, PgStore, SharedStore, StoreError,
};
use common::{events, id, record};

type Store = Arc<dyn DeploymentStore>;

async fn create_load_round_trip(store: Store) {
    let a = record(&id(1));
    let mut b = record(&id(2));
    b.status = DeploymentStatus::Ready;
    b.result = Some(ProvisionResult::for_fqdn(
        "k8s.omantel.example",
        Some("10.0.0.1".into()),
        None,
        false,
    ));
    store.create(&a).await.unwrap();
    store.create(&b).await.unwrap();
    assert!(
        store.create(&a).await.is_err(),
        "creating an existing deployment must fail"
    );
    let loaded = store.load_all().await.unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let mut got = loaded.records;
    got.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(got, vec![a, b]);
    assert!(store.events_after(&id(1), 0, 10).await.unwrap().is_empty());
}

async fn append_batches_and_read_in_order(store: Store) {
    let d = id(7);
    store.create(&record(&d)).await.unwrap();
    store.append_events(&d, &events(1, 5)).await.unwrap();
    store.append_events(&d, &events(6, 6)).await.unwrap();
    store.append_events(&d, &[]).await.unwrap();
    store.append_events(&d, &events(7, 30)).await.unwrap();
    assert_eq!(store.events_after(&d, 0, 100).await.unwrap(), events(1, 30));
    assert_eq!(store.events_after(&d, 5, 10).await.unwrap(), events(6, 15));
    assert_eq!(
        store.events_after(&d, 29, 10).await.unwrap(),
        events(30, 30)
    );
    assert!(store.events_after(&d, 30, 10).await.unwrap().is_empty());
    assert!(store.events_after(&d, 0, 0).await.unwrap().is_empty());
    let unknown = id(8);
    assert!(matches!(
        store.events_after(&unknown, 0, 10).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.append_events(&unknown, &events(1, 1)).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn gaps_and_duplicates_rejected(store: Store) {
    let d = id(9);
    store.create(&record(&d)).await.unwrap();
    let gap = |r: Result<(), StoreError>, last: u64, got: u64| match r {
        Err(StoreError::SequenceGap {
            last: l, got: g, ..
        }) => {
            assert_eq!((l, g), (last, got));
        }
        other => panic!("expected a sequence gap ({last}, {got}), got {other:?}"),
    };
    gap(store.append_events(&d, &events(2, 3)).await, 0, 2);
    store.append_events(&d, &events(1, 3)).await.unwrap();
    gap(store.append_events(&d, &events(5, 5)).await, 3, 5);
    gap(store.append_events(&d, &events(3, 3)).await, 3, 3);
    gap(store.append_events(&d, &events(2, 4)).await, 3, 2);
    let mut skipping = events(4, 4);
    skipping.extend(events(6, 6));
    gap(store.append_events(&d, &skipping).await, 4, 6);
    store.append_events(&d, &events(4, 4)).await.unwrap();
    assert_eq!(store.events_after(&d, 0, 100).await.unwrap(), events(1, 4));
}

async fn snapshot_replace(store: Store) {
    let d = id(10);
    let mut r = record(&d);
    store.create(&r).await.unwrap();
    r.status = DeploymentStatus::Failed;
    r.error = Some("tofu apply failed".into());
    r.finished_at = Some(r.started_at + chrono::Duration::seconds(90));
    store.save_snapshot(&r).await.unwrap();
    let loaded = store.load_all().await.unwrap();
    assert_eq!(loaded.records, vec![r]);
    assert!(matches!(
        store.save_snapshot(&record(&id(11))).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn delete_is_idempotent(store: Store) {
    let d = id(12);
    store.create(&record(&d)).await.unwrap();
    store.append_events(&d, &events(1, 4)).await.unwrap();
    store.delete(&d).await.unwrap();
    store.delete(&d).await.unwrap();
    store.delete(&id(13)).await.unwrap();
    assert!(store.load_all().await.unwrap().records.is_empty());
    assert!(matches!(
        store.events_after(&d, 0, 10).await,
        Err(StoreError::NotFound(_))
    ));
    // The id can be used again, with a fresh log.
    store.create(&record(&d)).await.unwrap();
    store.append_events(&d, &events(1, 2)).await.unwrap();
    assert_eq!(store.events_after(&d, 0, 10).await.unwrap(), events(1, 2));
}

async fn concurrent_appends_stay_intact(store: Store) {
    const DEPLOYMENTS: u64 = 20;
    const EVENTS: u64 = 120;
    for n in 0..DEPLOYMENTS {
        store.create(&record(&id(100 + n))).await.unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..DEPLOYMENTS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let d = id(100 + n);
            let mut next = 1;
            let mut batch = 1 + n % 5;
            while next <= EVENTS {
                let end = (next + batch - 1).min(EVENTS);
                store.append_events(&d, &events(next, end)).await.unwrap();
                next = end + 1;
                batch = batch % 7 + 1;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    for n in 0..DEPLOYMENTS {
        let d = id(100 + n);
        assert_eq!(
            store.events_after(&d, 0, 1000).await.unwrap(),
            events(1, EVENTS)
        );
    }
    let loaded = store.load_all().await.unwrap();
    assert_eq!(loaded.records.len(), DEPLOYMENTS as usize);
    assert!(loaded.records.iter().all(|r| r.last_seq == EVENTS));
}

async fn load_all_takes_last_seq_from_the_log(store: Store) {
    let d = id(14);
    let mut r = record(&d);
    store.create(&r).await.unwrap();
    store.append_events(&d, &events(1, 12)).await.unwrap();
    // The snapshot is behind (as after a crash between an append and a snapshot).
    r.last_seq = 3;
    store.save_snapshot(&r).await.unwrap();
    let loaded = store.load_all().await.unwrap();
    assert_eq!(loaded.records.len(), 1);
    assert_eq!(loaded.records[0].last_seq, 12);
    store.append_events(&d, &events(13, 13)).await.unwrap();
}

async fn writable(store: Store) {
    store.check_writable().await.unwrap();
    store.check_writable().await.unwrap();
    assert!(!store.backend().is_empty());
}

mod pg {
    use super::*;

    /// Drops the test's schema, even when the test panicked.
    pub struct SchemaGuard {
        url: String,
        schema: String,
    }

    impl Drop for SchemaGuard {
        fn drop(&mut self) {
            let url = self.url.clone();
            let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
            catalyst_testkit::clean_up(async move {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&sql).await;
                }
            });
        }
    }

    /// A PgStore in a fresh schema, or `None` (after printing why) when PostgreSQL is not
    /// reachable and services are not required.
    pub async fn store() -> Option<(Store, SchemaGuard)> {
        let (store, guard) = pg_store().await?;
        Some((store, guard))
    }

    /// The same, as the concrete type (for what only PostgreSQL does).
    pub async fn pg_store() -> Option<(Arc<PgStore>, SchemaGuard)> {
        let (url, source) = match std::env::var("CATALYST_TEST_DATABASE_URL") {
            Ok(u) if !u.trim().is_empty() => (u, "$CATALYST_TEST_DATABASE_URL".to_owned()),
            _ => {
                let u = "postgres://postgres@127.0.0.1:5432/test".to_owned();
                (u.clone(), u)
            }
        };
        let schema = format!("catalyst_test_{:016x}", catalyst_testkit::unique_suffix());
        let guard = SchemaGuard {
            url: url.clone(),
            schema: schema.clone(),
        };
        match PgStore::connect_in_schema(&url, &schema).await {
            Ok(s) => Some((Arc::new(s), guard)),
            Err(e) => {
                catalyst_testkit::skip_or_fail(
                    catalyst_testkit::Need::Postgres,
                    format!("{source} is unreachable ({e})"),
                );
                None
            }
        }
    }
}

macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod file_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = catalyst_store::FileStore::open(dir.path().join("store")).unwrap();
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some((store, _guard)) = super::pg::store().await else { return };
                    super::$name(store).await;
                }
            )*
        }
    };
}

on_every_backend!(
    create_load_round_trip,
    append_batches_and_read_in_order,
    gaps_and_duplicates_rejected,
    snapshot_replace,
    delete_is_idempotent,
    concurrent_appends_stay_intact,
    load_all_takes_last_seq_from_the_log,
    writable,
);

#[test]
fn file_store_rejects_an_unusable_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    assert!(FileStore::open(file.join("store")).is_err());
    assert!(FileStore::open("").is_err());
}

fn owner(name: &str) -> LeaseOwner {
    LeaseOwner {
        id: name.into(),
        about: format!("server {name}"),
    }
}

async fn next_change(rx: &mut tokio::sync::mpsc::Receiver<Change>) -> Change {
    tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
        .await
        .expect("a change within 5 s")
        .expect("the listener runs")
}

/// Leases on PostgreSQL's clock and the change notifications servers follow each other by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_leases_and_changes() {
    use std::time::Duration;
    let Some((s, _guard)) = pg::pg_store().await else {
        return;
    };
    let Some((other, _other_guard)) = pg::pg_store().await else {
        return;
    };
    let mut changes = s.changes();
    let mut elsewhere = other.changes();
    assert_eq!(next_change(&mut changes).await, Change::Resync);
    assert_eq!(next_change(&mut elsewhere).await, Change::Resync);
    let (a, b) = (owner("a"), owner("b"));
    let ttl = Duration::from_millis(400);
    let d = id(1);

    // One holder at a time; the holder renews by taking again.
    assert!(s.take_lease(&d, &a, ttl).await.unwrap());
    assert!(!s.take_lease(&d, &b, ttl).await.unwrap());
    assert!(s.take_lease(&d, &a, ttl).await.unwrap());
    assert_eq!(
        s.lease_holder(&d).await.unwrap().as_deref(),
        Some("server a")
    );

    // Every write is announced, on this store's channel only.
    s.create(&record(&d)).await.unwrap();
    assert_eq!(next_change(&mut changes).await, Change::Snapshot(d.clone()));
    s.append_events(&d, &events(1, 3)).await.unwrap();
    assert_eq!(
        next_change(&mut changes).await,
        Change::Events {
            id: d.clone(),
            last_seq: 3
        }
    );
    assert_eq!(s.load(&d).await.unwrap().unwrap().last_seq, 3);

    // A live lease keeps it off the unleased list; an expired one puts it there until its
    // holder renews or another server takes it.
    assert!(s.unleased().await.unwrap().is_empty());
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    assert_eq!(s.unleased().await.unwrap(), vec![d.clone()]);
    assert_eq!(s.renew_leases(&a, ttl).await.unwrap(), vec![d.clone()]);
    assert!(s.unleased().await.unwrap().is_empty());
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    assert!(s.take_lease(&d, &b, ttl).await.unwrap());
    assert!(
        s.renew_leases(&a, ttl).await.unwrap().is_empty(),
        "a lost it"
    );
    assert!(!s.take_lease(&d, &a, ttl).await.unwrap());

    // A finished deployment is never unleased, whatever its lease.
    let mut done = s.load(&d).await.unwrap().unwrap();
    done.status = DeploymentStatus::Failed;
    s.save_snapshot(&done).await.unwrap();
    assert_eq!(next_change(&mut changes).await, Change::Snapshot(d.clone()));
    s.release_lease(&d, &b).await.unwrap();
    assert!(s.unleased().await.unwrap().is_empty());
    let pending = id(2);
    s.create(&record(&pending)).await.unwrap();
    assert_eq!(
        next_change(&mut changes).await,
        Change::Snapshot(pending.clone())
    );
    assert_eq!(
        s.unleased().await.unwrap(),
        vec![pending.clone()],
        "no lease at all"
    );

    // Cancellation requests and deletions travel too; a deletion drops the lease.
    s.request_cancel(&d).await.unwrap();
    assert_eq!(
        next_change(&mut changes).await,
        Change::CancelRequested(d.clone())
    );
    assert!(s.take_lease(&pending, &a, ttl).await.unwrap());
    s.delete(&pending).await.unwrap();
    assert_eq!(
        next_change(&mut changes).await,
        Change::Deleted(pending.clone())
    );
    assert!(s.load(&pending).await.unwrap().is_none());
    assert!(s.lease_holder(&pending).await.unwrap().is_none());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), elsewhere.recv())
            .await
            .is_err(),
        "another schema hears nothing"
    );
}
