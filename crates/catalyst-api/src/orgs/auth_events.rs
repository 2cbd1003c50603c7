//! Tokens and failed sign-ins on the spine.
//!
//! - **Tokens.** The token file (`<data-dir>/auth/tokens.json`) is its own outbox: the spine's
//!   projection knows which tokens exist ([`catalyst_spine::Projection::tokens`]), and
//!   [`AuthEvents::reconcile`] records the difference — `token.created` for a record the
//!   projection lacks (`token-<id>-created`), `token.revoked` for one that is gone
//!   (`token-<id>-revoked`), exactly once by id. The API reconciles right after each of its
//!   own token writes (with the caller as actor); a watcher reconciles within seconds of a
//!   change made offline by `catalyst token …`, and start-up reconciles whatever a crash left.
//! - **Failed sign-ins.** `signin.failed` with the reason, the route and the client address
//!   (never any part of the credential), at most one per reason and client every
//!   [`SIGN_IN_WINDOW`]; the next one says how many were folded into it (`suppressed`), so a
//!   flood of bad tokens cannot flood the log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use catalyst_spine::{CloudEvent, EventDraft, Projector, SpineError, TokenView};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::auth::{TokenInfo, TokenStore};

/// Failed sign-ins of one reason from one client within this window become one event.
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(10);

/// Most (reason, client) windows tracked; beyond it the oldest are dropped.
const MAX_WINDOWS: usize = 4096;

/// The actor of changes found in the token file (made by `catalyst token …` on this host).
pub const OFFLINE_ACTOR: &str = "catalyst token (offline)";

struct Window {
    opened: Instant,
    suppressed: u64,
}

/// Records token changes and failed sign-ins.
pub struct AuthEvents {
    read: Arc<Projector>,
    tokens: Arc<TokenStore>,
    windows: Mutex<HashMap<(&'static str, String), Window>>,
    /// Serialises reconciliations (two at once would both see the same difference; the ids
    /// make that harmless, this makes it rare).
    reconciling: Mutex<()>,
}

/// A sign-in that failed.
#[derive(Debug, Clone)]
pub struct FailedSignIn {
    /// Stable reason code: `unknown-token`, `expired-session`, `invalid-jwt`, `no-credential`.
    pub reason: &'static str,
    /// Human text.
    pub detail: String,
    /// `GET`, `POST`, ….
    pub method: String,
    /// The path asked for.
    pub path: String,
    /// The client's address, when the server knows it.
    pub client: Option<SocketAddr>,
}

impl AuthEvents {
    /// Records on the spine `read` follows; tokens from `tokens`.
    pub fn new(read: Arc<Projector>, tokens: Arc<TokenStore>) -> AuthEvents {
        AuthEvents {
            read,
            tokens,
            windows: Mutex::new(HashMap::new()),
            reconciling: Mutex::new(()),
        }
    }

    /// Records the token file's changes the spine lacks, attributed to `actor`; returns how
    /// many events were recorded. Blocking (reads a file, waits for the spine).
    pub fn reconcile(&self, actor: &str) -> Result<usize, ReconcileError> {
        let _one = self.reconciling.lock().unwrap_or_else(|p| p.into_inner());
        let records = self
            .tokens
            .list()
            .map_err(|e| ReconcileError::Tokens(e.to_string()))?;
        let known: Vec<TokenView> = self.read.read(|p| p.tokens().values().cloned().collect());
        let now = Utc::now();
        let spine = self.read.spine();
        let mut events: Vec<CloudEvent> = records
            .iter()
            .filter(|r| !known.iter().any(|k| k.id == r.id))
            .map(|r| created(r, actor, now))
            .collect();
        events.extend(
            known
                .iter()
                .filter(|k| !records.iter().any(|r| r.id == k.id))
                .map(|k| revoked(k, actor, now)),
        );
        events.retain(|e| !spine.contains(&e.id));
        if events.is_empty() {
            return Ok(0);
        }
        let n = spine.append(events).map_err(ReconcileError::Spine)?.len();
        self.read.catch_up();
        Ok(n)
    }

    /// Reconciles every `every` while the token file changes; stops with `stop`.
    pub fn spawn_watcher(
        self: &Arc<Self>,
        every: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let events = self.clone();
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.cancelled() => return,
                }
                let e = events.clone();
                match tokio::task::spawn_blocking(move || e.reconcile(OFFLINE_ACTOR)).await {
                    Ok(Ok(_)) => failing = false,
                    Ok(Err(e)) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "Recording token changes on the event log failed; retrying.");
                    }
                    _ => {}
                }
            }
        });
    }

    /// Records a failed sign-in, unless one of the same reason from the same client was
    /// recorded within [`SIGN_IN_WINDOW`] (then it is counted into the next one). Returns at
    /// once; the event is written in the background.
    pub fn sign_in_failed(self: &Arc<Self>, failure: FailedSignIn) {
        let client = failure
            .client
            .map(|c| c.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        let suppressed = {
            let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let key = (failure.reason, client.clone());
            match windows.get_mut(&key) {
                Some(w) if now.duration_since(w.opened) < SIGN_IN_WINDOW => {
                    w.suppressed += 1;
                    return;
                }
                Some(w) => {
                    let n = w.suppressed;
                    *w = Window {
                        opened: now,
                        suppressed: 0,
                    };
                    n
                }
                None => {
                    if windows.len() >= MAX_WINDOWS {
                        windows.retain(|_, w| now.duration_since(w.opened) < SIGN_IN_WINDOW);
                        if windows.len() >= MAX_WINDOWS {
                            windows.clear();
                        }
                    }
                    windows.insert(
                        key,
                        Window {
                            opened: now,
                            suppressed: 0,
                        },
                    );
                    0
                }
            }
        };
        let event = EventDraft {
            id: format!("signin-{}", hex::encode(rand::random::<[u8; 12]>())),
            kind: "signin.failed".into(),
            org: None,
            env: None,
            subject: client.clone(),
            time: Utc::now(),
            data: json!({
                "reason": failure.reason,
                "detail": failure.detail,
                "method": failure.method,
                "path": failure.path,
                "client": client,
                "suppressed": suppressed,
            }),
        }
        .into_event();
        let spine = self.read.spine().clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = spine.append(vec![event]) {
                tracing::warn!(error = %e, "Recording a failed sign-in on the event log failed.");
            }
        });
    }
}

/// Why a reconciliation did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The token file could not be read.
    #[error("cannot read the tokens: {0}")]
    Tokens(String),
    /// The spine refused.
    #[error(transparent)]
    Spine(SpineError),
}

fn scope(org: Option<&str>) -> &str {
    org.unwrap_or("sovereign")
}

fn created(r: &TokenInfo, actor: &str, now: DateTime<Utc>) -> CloudEvent {
    let time = DateTime::parse_from_rfc3339(&r.created)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    EventDraft {
        id: format!("token-{}-created", r.id),
        kind: "token.created".into(),
        org: r.org.clone(),
        env: None,
        subject: format!("{}/{}", scope(r.org.as_deref()), r.name),
        time,
        data: json!({
            "tokenId": r.id,
            "name": r.name,
            "role": r.role.as_str(),
            "org": r.org,
            "created": r.created,
            "actor": actor,
        }),
    }
    .into_event()
}

fn revoked(k: &TokenView, actor: &str, now: DateTime<Utc>) -> CloudEvent {
    EventDraft {
        id: format!("token-{}-revoked", k.id),
        kind: "token.revoked".into(),
        org: k.org.clone(),
        env: None,
        subject: format!("{}/{}", scope(k.org.as_deref()), k.name),
        time: now,
        data: json!({
            "tokenId": k.id,
            "name": k.name,
            "role": k.role,
            "org": k.org,
            "actor": actor,
        }),
    }
    .into_event()
}
