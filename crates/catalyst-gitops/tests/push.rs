//! `git push` (receive-pack) racing API writes on one branch: exactly one of two writers from
//! the same head wins; 64 concurrent writers lose no acknowledged update.
mod push_support;

use std::sync::{Arc, Barrier, Mutex};

use catalyst_gitops::{AppName, EnvType, GitopsError};
use push_support::*;
use serde_json::json;

fn head(s: &catalyst_gitops::Sovereign) -> String {
    String::from_utf8(git(&bare(s), &["rev-parse", "develop"], None))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn a_push_and_an_api_write_from_the_same_head_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(sovereign(dir.path()));
    let work = working_copy(&s, &dir.path().join("work"));
    let app = AppName::parse(APP).unwrap();
    for round in 0..4u32 {
        let before = head(&s);
        let (old, new, body) = values_push(&s, &work, 20 + round, true);
        assert_eq!(old, before);
        let barrier = Arc::new(Barrier::new(2));
        let (s1, b1) = (s.clone(), barrier.clone());
        let pusher = std::thread::spawn(move || {
            b1.wait();
            let out = s1
                .receive_pack(
                    &call("dana", format!("push-{round}"), None),
                    "acme",
                    APP,
                    &body,
                )
                .unwrap();
            accepted(&out)
        });
        let (s2, b2, app2, h) = (s.clone(), barrier, app.clone(), before.clone());
        let api = std::thread::spawn(move || {
            b2.wait();
            match s2.set_values(
                &call("api", format!("api-{round}"), Some(h)),
                &org(),
                &app2,
                EnvType::Dev,
                &json!({"storageGi": 900 + round}),
            ) {
                Ok(_) => true,
                Err(GitopsError::Conflict(_)) => false,
                Err(e) => panic!("{e}"),
            }
        });
        let (pushed, written) = (pusher.join().unwrap(), api.join().unwrap());
        assert!(
            pushed ^ written,
            "round {round}: push {pushed}, API {written}"
        );
        let now = head(&s);
        assert_ne!(now, before);
        assert_eq!(now == new, pushed, "round {round}");
    }
}

#[test]
fn sixty_four_concurrent_writers_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(sovereign(dir.path()));
    let start = head(&s);
    const PUSHERS: usize = 16;
    const API: usize = 48;
    let works: Vec<_> = (0..PUSHERS)
        .map(|i| working_copy(&s, &dir.path().join(format!("work-{i}"))))
        .collect();
    let barrier = Arc::new(Barrier::new(PUSHERS + API));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut threads = Vec::new();
    for (i, work) in works.into_iter().enumerate() {
        let (s, barrier, acked) = (s.clone(), barrier.clone(), acked.clone());
        threads.push(std::thread::spawn(move || {
            barrier.wait();
            for attempt in 0..500 {
                let (_, new, body) = values_push(&s, &work, 100 + i as u32, true);
                let out = s
                    .receive_pack(
                        &call("dana", format!("push-{i}-{attempt}"), None),
                        "acme",
                        APP,
                        &body,
                    )
                    .unwrap();
                if accepted(&out) {
                    acked.lock().unwrap().push(new);
                    return;
                }
                assert!(
                    String::from_utf8_lossy(&out).contains("non-fast-forward"),
                    "{}",
                    String::from_utf8_lossy(&out)
                );
                // Undo the refused commit before building on the new head.
                git(&work, &["reset", "--quiet", "--hard", "HEAD~1"], None);
            }
            panic!("pusher {i} never got through");
        }));
    }
    for i in 0..API {
        let (s, barrier, acked) = (s.clone(), barrier.clone(), acked.clone());
        threads.push(std::thread::spawn(move || {
            barrier.wait();
            let app = AppName::parse(APP).unwrap();
            let w = s
                .set_values(
                    &call("api", format!("api-{i}"), None),
                    &org(),
                    &app,
                    EnvType::Dev,
                    &json!({"storageGi": 500 + i}),
                )
                .unwrap();
            let c = w
                .commits
                .iter()
                .find(|c| c.repo == format!("acme/{APP}"))
                .unwrap();
            acked.lock().unwrap().push(c.commit.clone());
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), PUSHERS + API);
    let history: Vec<String> = String::from_utf8(git(
        &bare(&s),
        &["rev-list", "--first-parent", &format!("{start}..develop")],
        None,
    ))
    .unwrap()
    .lines()
    .map(str::to_owned)
    .collect();
    assert_eq!(
        history.len(),
        acked.len(),
        "one commit per acknowledged write"
    );
    for c in &acked {
        assert!(
            history.contains(c),
            "{c} was acknowledged but is not on develop"
        );
    }
    git(&bare(&s), &["fsck", "--strict", "--no-progress"], None);
}
