//! File-backend-only behaviour: torn-tail repair, garbage and stray files, upstream import.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use catalyst_core::{DeploymentStatus, Level};
use catalyst_store::{DeploymentStore, FileStore};
use common::{events, id, record};
use proptest::prelude::*;

fn log_path(root: &Path, n: u64) -> PathBuf {
    root.join(id(n).as_str()).join("events.log")
}

/// A store under `dir/store` holding deployment `n` with events `1..=count`.
async fn seeded(dir: &Path, n: u64, count: u64) -> PathBuf {
    let root = dir.join("store");
    let store = FileStore::open(&root).unwrap();
    store.create(&record(&id(n))).await.unwrap();
    if count > 0 {
        store
            .append_events(&id(n), &events(1, count))
            .await
            .unwrap();
    }
    root
}

#[tokio::test]
async fn torn_half_line_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let root = seeded(dir.path(), 1, 5).await;
    let log = log_path(&root, 1);
    let good_len = fs::metadata(&log).unwrap().len();
    let mut bytes = fs::read(&log).unwrap();
    bytes.extend_from_slice(br#"0badc0de {"seq":6,"time":"2025-01-0"#);
    fs::write(&log, &bytes).unwrap();

    let store = FileStore::open(&root).unwrap();
    let loaded = store.load_all().await.unwrap();
    assert_eq!(loaded.records.len(), 1);
    assert_eq!(loaded.records[0].last_seq, 5);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].location.ends_with("events.log"));
    assert!(loaded.warnings[0].message.contains("torn tail cut"));
    assert_eq!(fs::metadata(&log).unwrap().len(), good_len);

    store.append_events(&id(1), &events(6, 7)).await.unwrap();
    drop(store);
    let store = FileStore::open(&root).unwrap();
    let loaded = store.load_all().await.unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.records[0].last_seq, 7);
    assert_eq!(
        store.events_after(&id(1), 0, 100).await.unwrap(),
        events(1, 7)
    );
}

#[tokio::test]
async fn flipped_byte_cuts_from_the_damaged_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = seeded(dir.path(), 2, 5).await;
    let log = log_path(&root, 2);
    let mut bytes = fs::read(&log).unwrap();
    // Damage the message of event 3.
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let at = line_starts[3] - 10;
    bytes[at] ^= 0x20;
    fs::write(&log, &bytes).unwrap();

    let store = FileStore::open(&root).unwrap();
    let loaded = store.load_all().await.unwrap();
    assert_eq!(loaded.records[0].last_seq, 2);
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].message.contains("checksum"));
    assert_eq!(fs::metadata(&log).unwrap().len(), line_starts[2] as u64);
    // Complete lines followed the damaged one: the whole log was kept aside first.
    let aside = root.join(id(2).as_str()).join("events.log.conflict");
    assert_eq!(fs::read(&aside).unwrap(), bytes);
    store.append_events(&id(2), &events(3, 4)).await.unwrap();
    assert_eq!(
        store.events_after(&id(2), 0, 100).await.unwrap(),
        events(1, 4)
    );
}

/// Two servers appending to one log leave two complete lines with the same `seq`: not a torn
/// tail. The valid prefix stays in the log, the whole original log goes aside, nothing is lost.
#[tokio::test]
async fn two_writers_same_seq_is_a_conflict_kept_aside_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let root = seeded(dir.path(), 4, 5).await;
    let log = log_path(&root, 4);
    // The second writer believed the log ended at 4 and appended its own 5 and 6; the first
    // then appended its 6.
    let theirs = {
        let other = dir.path().join("other");
        let store = FileStore::open(&other).unwrap();
        store.create(&record(&id(4))).await.unwrap();
        let mut mine = events(1, 6);
        for e in &mut mine {
            e.draft.message = format!("second writer {}", e.seq);
        }
        store.append_events(&id(4), &mine).await.unwrap();
        drop(store);
        let bytes = fs::read(log_path(&other, 4)).unwrap();
        let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
        lines[4..6].concat()
    };
    let mut original = fs::read(&log).unwrap();
    let mut first_six = Vec::new();
    {
        let other = dir.path().join("first");
        let store = FileStore::open(&other).unwrap();
        store.create(&record(&id(4))).await.unwrap();
        store.append_events(&id(4), &events(1, 6)).await.unwrap();
        drop(store);
        let bytes = fs::read(log_path(&other, 4)).unwrap();
        first_six.extend_from_slice(bytes.split_inclusive(|b| *b == b'\n').nth(5).unwrap());
    }
    original.extend_from_slice(&theirs);
    original.extend_from_slice(&first_six);
    fs::write(&log, &original).unwrap();

    let store = FileStore::open(&root).unwrap();
    let loaded = store.load_all().await.unwrap();
    assert_eq!(loaded.records[0].last_seq, 5);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let w = &loaded.warnings[0].message;
    assert!(w.contains("written by two servers"), "{w}");
    assert!(w.contains("sequence 5 does not follow 5"), "{w}");
    assert!(!w.contains("torn tail"), "{w}");
    let aside = root.join(id(4).as_str()).join("events.log.conflict");
    assert!(w.contains(&aside.display().to_string()), "{w}");
    // Nothing acknowledged is gone: the whole original log is kept aside, byte for byte, and
    // every one of its lines is in the log or in that copy.
    assert_eq!(fs::read(&aside).unwrap(), original);
    assert_eq!(
        store.events_after(&id(4), 0, 100).await.unwrap(),
        events(1, 5)
    );
    // The store goes on; a second repair of the same log picks a fresh name.
    store.append_events(&id(4), &events(6, 6)).await.unwrap();
    drop(store);
    let mut again = fs::read(&log).unwrap();
    again.extend_from_slice(&theirs);
    fs::write(&log, &again).unwrap();
    let store = FileStore::open(&root).unwrap();
    let loaded = store.load_all().await.unwrap();
    assert_eq!(loaded.records[0].last_seq, 6);
    assert!(root
        .join(id(4).as_str())
        .join("events.log.conflict.2")
        .exists());
    assert_eq!(
        fs::read(&aside).unwrap(),
        original,
        "the first copy is untouched"
    );
}

#[tokio::test]
async fn torn_tail_is_cut_by_an_append_without_a_load() {
    let dir = tempfile::tempdir().unwrap();
    let root = seeded(dir.path(), 3, 2).await;
    let log = log_path(&root, 3);
    let mut bytes = fs::read(&log).unwrap();
    bytes.extend_from_slice(b"garbage");
    fs::write(&log, &bytes).unwrap();
    let store = FileStore::open(&root).unwrap();
    store.append_events(&id(3), &events(3, 3)).await.unwrap();
    assert_eq!(
        store.events_after(&id(3), 0, 100).await.unwrap(),
        events(1, 3)
    );
    assert!(!fs::read_to_string(&log).unwrap().contains("garbage"));
}

#[tokio::test]
async fn garbage_snapshot_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = FileStore::open(&root).unwrap();
    for n in 1..=3 {
        store.create(&record(&id(n))).await.unwrap();
        store.append_events(&id(n), &events(1, 2)).await.unwrap();
    }
    let bad = root.join(id(2).as_str()).join("snapshot.json");
    fs::write(&bad, b"{\"id\": \"00").unwrap();
    // A snapshot whose id does not match its folder is garbage too.
    let other = root.join(id(3).as_str()).join("snapshot.json");
    fs::write(&other, serde_json::to_vec(&record(&id(9))).unwrap()).unwrap();

    let loaded = FileStore::open(&root).unwrap().load_all().await.unwrap();
    let ids: Vec<_> = loaded.records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, vec![id(1)]);
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(loaded
        .warnings
        .iter()
        .all(|w| w.location.ends_with("snapshot.json")));
    assert!(bad.exists(), "garbage is left in place");
}

#[tokio::test]
async fn stray_hidden_and_temp_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let root = seeded(dir.path(), 4, 3).await;
    fs::write(root.join("README.txt"), b"hello").unwrap();
    fs::write(root.join(".hidden.json"), b"{").unwrap();
    fs::write(root.join(".0123456789abcdef.42.json.tmp"), b"{").unwrap();
    fs::create_dir(root.join(".cache")).unwrap();
    let d = root.join(id(4).as_str());
    fs::write(d.join(".snapshot.json.1.0.tmp"), b"{ half").unwrap();
    fs::write(d.join("notes.txt"), b"x").unwrap();
    fs::create_dir(root.join("lost+found")).unwrap();

    let loaded = FileStore::open(&root).unwrap().load_all().await.unwrap();
    assert_eq!(loaded.records.len(), 1);
    assert_eq!(loaded.records[0].last_seq, 3);
    // Only the folder that is not a deployment id is reported.
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].location.ends_with("lost+found"));
}

#[tokio::test]
async fn missing_snapshot_folder_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = seeded(dir.path(), 5, 0).await;
    fs::create_dir(root.join(id(6).as_str())).unwrap();
    let loaded = FileStore::open(&root).unwrap().load_all().await.unwrap();
    assert_eq!(loaded.records.len(), 1);
    assert_eq!(loaded.warnings.len(), 1);
}

const UPSTREAM: &str = r#"{
  "id": "a1b2c3d4e5f60718",
  "status": "tofu-applying",
  "request": {
    "orgName": "Omantel",
    "orgEmail": "ops@omantel.example",
    "sovereignFQDN": "omantel.omani.works",
    "sovereignDomainMode": "pool",
    "sovereignPoolDomain": "omani.works",
    "sovereignSubdomain": "omantel",
    "hetznerToken": "<redacted>",
    "hetznerProjectID": "proj-7",
    "region": "fsn1",
    "controlPlaneSize": "cpx32",
    "workerSize": "cpx42",
    "workerCount": 2,
    "haEnabled": true,
    "regions": [{"provider": "hetzner", "cloudRegion": "fsn1", "controlPlaneSize": "cpx32",
                 "workerSize": "cpx42", "workerCount": 2},
                {"provider": "", "cloudRegion": "nbg1", "controlPlaneSize": "cpx32",
                 "workerSize": "", "workerCount": 0}],
    "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx test",
    "dynadotKey": "<redacted>",
    "dynadotSecret": "<redacted>"
  },
  "startedAt": "2025-03-04T05:06:07.123456789Z",
  "finishedAt": "0001-01-01T00:00:00Z",
  "events": [
    {"time": "2025-03-04T05:06:08Z", "phase": "tofu-init", "level": "info", "message": "tofu init"},
    {"time": "2025-03-04T05:06:09Z", "phase": "tofu", "level": "warn", "message": "Warning: deprecated"},
    {"time": "2025-03-04T05:06:10Z", "phase": "tofu", "level": "info", "message": "hcloud_network.main: Creating..."}
  ],
  "pdmReservationToken": "res-123",
  "pdmPoolDomain": "omani.works",
  "pdmSubdomain": "omantel"
}
"#;

fn all_bytes_under(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes_under(&path));
        } else {
            out.extend(fs::read(&path).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn upstream_record_is_imported_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = FileStore::open(&root).unwrap();
    fs::write(root.join("legacy-record.json"), UPSTREAM).unwrap();
    fs::write(root.join("broken.json"), b"{\"id\": ").unwrap();
    fs::write(root.join("noid.json"), br#"{"id": "", "status": "ready"}"#).unwrap();
    fs::write(root.join("escape.json"), br#"{"id": "../../etc"}"#).unwrap();

    let loaded = store.load_all().await.unwrap();
    assert_eq!(loaded.records.len(), 1);
    let r = &loaded.records[0];
    assert_eq!(r.id.as_str(), "a1b2c3d4e5f60718");
    assert_eq!(
        r.status,
        DeploymentStatus::TofuApplying,
        "upstream status kept"
    );
    assert_eq!(r.last_seq, 3);
    assert_eq!(r.spec.sovereign_fqdn, "omantel.omani.works");
    assert_eq!(r.spec.pool_domain.as_deref(), Some("omani.works"));
    assert_eq!(r.spec.regions.len(), 2);
    assert_eq!(r.spec.regions[1].provider, "hetzner");
    assert!(r.spec.ha_enabled);
    assert_eq!(r.finished_at, None);
    assert_eq!(
        r.reservation.as_ref().map(|p| p.reservation_token.as_str()),
        Some("res-123")
    );
    let evs = store.events_after(&r.id, 0, 10).await.unwrap();
    assert_eq!(evs.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(evs[1].draft.level, Level::Warn);
    assert_eq!(evs[2].draft.message, "hcloud_network.main: Creating...");

    // Garbage is reported and left in place; the record was moved aside.
    assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
    for name in ["broken.json", "noid.json", "escape.json"] {
        assert!(root.join(name).exists(), "{name} left in place");
    }
    assert!(!root.join("legacy-record.json").exists());
    assert!(root.join(".imported/legacy-record.json").exists());

    // No credential, not even the marker, reached the new files.
    let written = String::from_utf8(all_bytes_under(&root.join(r.id.as_str()))).unwrap();
    for needle in [
        "<redacted>",
        "redacted",
        "hetznerToken",
        "hetzner_token",
        "dynadot",
    ] {
        assert!(
            !written.contains(needle),
            "{needle} found in imported files"
        );
    }

    // Appends continue the imported log.
    store.append_events(&r.id, &events(4, 4)).await.unwrap();

    // A second load (same store, then a fresh one) does not import again.
    let again = store.load_all().await.unwrap();
    assert_eq!(again.records.len(), 1);
    assert_eq!(again.records[0].last_seq, 4);
    let again = FileStore::open(&root).unwrap().load_all().await.unwrap();
    assert_eq!(again.records.len(), 1);
    assert_eq!(again.records[0].last_seq, 4);
    assert_eq!(fs::read_dir(root.join(".imported")).unwrap().count(), 1);
}

#[tokio::test]
async fn import_interrupted_before_the_move_is_finished_later() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = FileStore::open(&root).unwrap();
    fs::write(root.join("x.json"), UPSTREAM).unwrap();
    store.load_all().await.unwrap();
    // As if the process died after writing the new layout but before moving the original.
    fs::rename(root.join(".imported/x.json"), root.join("x.json")).unwrap();
    store
        .append_events(
            &catalyst_core::DeploymentId::parse("a1b2c3d4e5f60718").unwrap(),
            &events(4, 4),
        )
        .await
        .unwrap();
    let loaded = store.load_all().await.unwrap();
    assert_eq!(loaded.records.len(), 1);
    assert_eq!(
        loaded.records[0].last_seq, 4,
        "the new log was not overwritten"
    );
    assert!(!root.join("x.json").exists());
}

/// The log of one deployment with 12 events, as bytes, plus its snapshot (built once).
fn template() -> &'static (Vec<u8>, Vec<u8>, Vec<usize>) {
    static T: std::sync::OnceLock<(Vec<u8>, Vec<u8>, Vec<usize>)> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let root = rt.block_on(async {
            let root = seeded(dir.path(), 42, 6).await;
            let store = FileStore::open(&root).unwrap();
            store.append_events(&id(42), &events(7, 12)).await.unwrap();
            root
        });
        let log = fs::read(log_path(&root, 42)).unwrap();
        let snap = fs::read(root.join(id(42).as_str()).join("snapshot.json")).unwrap();
        let ends = log
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        (log, snap, ends)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_cut_leaves_a_prefix_of_whole_events(cut_frac in 0.0f64..=1.0) {
        let (log, snap, ends) = template();
        let cut = ((log.len() as f64) * cut_frac) as usize;
        let whole = ends.iter().filter(|&&e| e <= cut).count() as u64;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let d = root.join(id(42).as_str());
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("snapshot.json"), snap).unwrap();
        fs::write(d.join("events.log"), &log[..cut]).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let store = FileStore::open(&root).unwrap();
            let loaded = store.load_all().await.unwrap();
            prop_assert_eq!(loaded.records.len(), 1);
            prop_assert_eq!(loaded.records[0].last_seq, whole);
            let torn = !(cut == 0 || ends.contains(&cut));
            prop_assert_eq!(loaded.warnings.len(), usize::from(torn));
            prop_assert_eq!(store.events_after(&id(42), 0, 100).await.unwrap(), events(1, whole));
            store.append_events(&id(42), &events(whole + 1, whole + 1)).await.unwrap();
            prop_assert_eq!(store.events_after(&id(42), 0, 100).await.unwrap(), events(1, whole + 1));
            Ok(())
        })?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_logs_than_open_handles() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = std::sync::Arc::new(FileStore::open(&root).unwrap());
    const N: u64 = 300;
    for n in 0..N {
        store.create(&record(&id(1000 + n))).await.unwrap();
    }
    for round in 0..3u64 {
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..N {
            let store = std::sync::Arc::clone(&store);
            tasks.spawn(async move {
                let s = round * 2 + 1;
                store.append_events(&id(1000 + n), &events(s, s + 1)).await
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
    }
    let loaded = FileStore::open(&root).unwrap().load_all().await.unwrap();
    assert_eq!(loaded.records.len(), N as usize);
    assert!(loaded.records.iter().all(|r| r.last_seq == 6));
    assert!(loaded.warnings.is_empty());
}
