//! Per-Organization wake-ups for event streams: a stream of one Organization's events waits on
//! that Organization's watch, not on the spine's head, so an event of another Organization
//! wakes none of its subscribers. One dispatcher task follows the spine and bumps the watch of
//! each event's Organization (to the event's seq); it starts with the first subscription.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use catalyst_spine::Spine;
use tokio::sync::watch;

/// The watches, by Organization.
pub struct OrgWake {
    spine: Arc<dyn Spine>,
    senders: Arc<Mutex<HashMap<String, watch::Sender<u64>>>>,
    started: OnceLock<()>,
}

impl std::fmt::Debug for OrgWake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgWake").finish_non_exhaustive()
    }
}

impl OrgWake {
    /// Wake-ups for the events of `spine`.
    pub fn new(spine: Arc<dyn Spine>) -> OrgWake {
        OrgWake {
            spine,
            senders: Arc::default(),
            started: OnceLock::new(),
        }
    }

    /// A watch that changes whenever an event of `org` is recorded (its value: that event's
    /// seq). Must be called inside a Tokio runtime (the first call starts the dispatcher).
    pub fn subscribe(&self, org: &str) -> watch::Receiver<u64> {
        self.started.get_or_init(|| self.start());
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        // Organizations nobody follows any more are dropped here, not by the dispatcher.
        senders.retain(|_, tx| tx.receiver_count() > 0);
        senders
            .entry(org.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn start(&self) {
        let spine = self.spine.clone();
        let senders = self.senders.clone();
        let mut head = spine.watch();
        let mut after = spine.head();
        tokio::spawn(async move {
            loop {
                let batch = spine.read_after(after, 4096);
                let Some(last) = batch.last() else {
                    if head.changed().await.is_err() {
                        return;
                    }
                    continue;
                };
                after = last.catalystseq;
                let mut woken: HashMap<&str, u64> = HashMap::new();
                for e in &batch {
                    if let Some(org) = e.catalystorg.as_deref() {
                        woken.insert(org, e.catalystseq);
                    }
                }
                let senders = senders.lock().unwrap_or_else(|p| p.into_inner());
                for (org, seq) in woken {
                    if let Some(tx) = senders.get(org) {
                        tx.send_replace(seq);
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalyst_spine::EventDraft;
    use std::time::Duration;

    fn event(id: &str, org: Option<&str>) -> catalyst_spine::CloudEvent {
        EventDraft {
            id: id.into(),
            kind: "organization.updated".into(),
            org: org.map(Into::into),
            env: None,
            subject: org.unwrap_or("x").into(),
            time: chrono::Utc::now(),
            data: serde_json::json!({}),
        }
        .into_event()
    }

    #[tokio::test]
    async fn only_the_events_own_organization_wakes() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = catalyst_spine::FileLog::open(dir.path()).unwrap();
        let spine: Arc<dyn Spine> = Arc::new(log);
        let wake = OrgWake::new(spine.clone());
        let mut acme = wake.subscribe("acme");
        let mut globex = wake.subscribe("globex");
        spine
            .append(vec![event("g1", Some("globex")), event("d1", None)])
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), globex.changed())
            .await
            .expect("globex woken")
            .unwrap();
        assert_eq!(*globex.borrow_and_update(), 1);
        // Give the dispatcher time to (wrongly) wake acme too.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!acme.has_changed().unwrap(), "acme was not woken");
        spine.append(vec![event("a1", Some("acme"))]).unwrap();
        tokio::time::timeout(Duration::from_secs(5), acme.changed())
            .await
            .expect("acme woken")
            .unwrap();
        assert_eq!(*acme.borrow(), 3);
        drop(globex);
        let _again = wake.subscribe("acme");
        let n = wake.senders.lock().unwrap().len();
        assert_eq!(n, 1, "globex's watch dropped once nobody follows it");
    }
}
