//! The harness's own record of what the server acknowledged (a 2xx answer received) and of
//! what is in doubt (a request sent whose answer never came because the server was killed).
//! Pure: no IO, no clock; the checks in `check.rs` compare it with what a restarted server
//! serves.

use std::collections::{BTreeMap, BTreeSet};

/// The kinds of acknowledged write, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `POST /api/v1/deployments` answered 201.
    Deployment,
    /// A deployment event delivered on its log stream (published only once durable).
    DeploymentEvent,
    /// A deployment's terminal state delivered on its log stream (`event: done`).
    DeploymentDone,
    /// Organization or Environment created.
    OrgEnv,
    /// Application installed.
    Install,
    /// Application upgraded.
    Upgrade,
    /// Application values changed.
    Values,
    /// Application uninstalled.
    Uninstall,
    /// Pool subdomain reserved.
    PoolReserve,
    /// Pool reservation committed.
    PoolCommit,
    /// Pool allocation released.
    PoolRelease,
    /// Member added (token issued).
    MemberAdd,
    /// Member removed (token revoked).
    MemberRemove,
}

impl Kind {
    /// Every kind, in summary order.
    pub const ALL: [Kind; 13] = [
        Kind::Deployment,
        Kind::DeploymentEvent,
        Kind::DeploymentDone,
        Kind::OrgEnv,
        Kind::Install,
        Kind::Upgrade,
        Kind::Values,
        Kind::Uninstall,
        Kind::PoolReserve,
        Kind::PoolCommit,
        Kind::PoolRelease,
        Kind::MemberAdd,
        Kind::MemberRemove,
    ];

    /// The summary's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "deployment created",
            Kind::DeploymentEvent => "deployment event delivered",
            Kind::DeploymentDone => "deployment end delivered",
            Kind::OrgEnv => "organization/environment created",
            Kind::Install => "application installed",
            Kind::Upgrade => "application upgraded",
            Kind::Values => "application values set",
            Kind::Uninstall => "application uninstalled",
            Kind::PoolReserve => "pool reserve",
            Kind::PoolCommit => "pool commit",
            Kind::PoolRelease => "pool release",
            Kind::MemberAdd => "member added (token)",
            Kind::MemberRemove => "member removed (token revoked)",
        }
    }
}

/// One event a log subscriber received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEvent {
    /// Its sequence number (the SSE `id:`).
    pub seq: u64,
    /// `phase`.
    pub phase: String,
    /// `message`.
    pub message: String,
}

/// What the harness knows of one deployment.
#[derive(Debug, Clone, Default)]
pub struct DeploymentEntry {
    /// Its subdomain label (`<label>.omani.works`).
    pub label: String,
    /// The cycle (server run) that created it.
    pub cycle: u32,
    /// Events delivered to a subscriber, in order.
    pub seen: Vec<SeenEvent>,
    /// The terminal status delivered with `event: done`, if any.
    pub terminal: Option<String>,
    /// Whether its creation was acknowledged (else it was found after an unanswered create).
    pub acknowledged: bool,
}

/// An Application slot's state in the Environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppState {
    /// Not installed.
    Absent,
    /// Installed at `version` with `values.instances = instances`.
    Installed {
        /// Blueprint version.
        version: String,
        /// The `instances` value.
        instances: u64,
    },
}

/// A pool allocation's state, as the harness made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolState {
    /// Not held (never reserved, or released).
    Absent,
    /// Reserved; the token when the answer brought it.
    Reserved {
        /// Reservation token.
        token: Option<String>,
    },
    /// Listed as `releasing`: a release cut short after the row was marked but before it was
    /// deleted (the store refused, or the server died). Releasing again, or the sweeper,
    /// finishes it.
    Releasing,
    /// Committed with `ip`.
    Active {
        /// The token (kept: a commit again is idempotent).
        token: Option<String>,
        /// `loadBalancerIP`.
        ip: String,
    },
}

/// What the list of allocations shows for one subdomain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolSeen {
    /// Not listed.
    Absent,
    /// `reserved`.
    Reserved,
    /// `active` with this address.
    Active(String),
    /// Any other state (`releasing`, …).
    Other(String),
}

impl PoolState {
    /// Whether `seen` is what this state looks like in the list.
    pub fn matches(&self, seen: &PoolSeen) -> bool {
        match (self, seen) {
            (PoolState::Absent, PoolSeen::Absent) => true,
            (PoolState::Reserved { .. }, PoolSeen::Reserved) => true,
            (PoolState::Releasing, PoolSeen::Absent) => true,
            (PoolState::Releasing, PoolSeen::Other(s)) => s == "releasing",
            (PoolState::Active { ip, .. }, PoolSeen::Active(seen_ip)) => ip == seen_ip,
            _ => false,
        }
    }
}

/// A member's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberState {
    /// Never added (or an unanswered add that left nothing).
    Absent,
    /// Listed, with a working token when the answer brought one.
    Active {
        /// The member's token.
        token: Option<String>,
    },
    /// Listed, but its token already revoked: a removal cut short between its two steps (the
    /// token goes first, then the Git commit). Safe (no access); removing again finishes it.
    Revoked {
        /// The revoked token.
        token: Option<String>,
    },
    /// Removed; its token must not work.
    Removed {
        /// The revoked token.
        token: Option<String>,
    },
}

/// A state plus the state an unanswered request would have led to.
#[derive(Debug, Clone)]
pub struct Slot<S> {
    /// The last acknowledged state.
    pub state: S,
    /// The target of a request sent whose answer never came.
    pub doubt: Option<S>,
    /// The cycle of the last change (recent ones are checked more closely).
    pub changed: u32,
}

impl<S> Slot<S> {
    /// A slot in `state`.
    pub fn new(state: S, cycle: u32) -> Slot<S> {
        Slot {
            state,
            doubt: None,
            changed: cycle,
        }
    }
}

/// Which of the two allowed states an observation matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// The acknowledged state: the unanswered request (if any) left nothing.
    Before,
    /// The unanswered request's target: it took effect completely.
    After,
}

/// Resolves an observation against a slot: the acknowledged state, or (only when a request was
/// in doubt) its target. `None` is a violation: something else is visible.
pub fn resolve<S>(slot: &Slot<S>, matches: impl Fn(&S) -> bool) -> Option<Resolved> {
    if matches(&slot.state) {
        Some(Resolved::Before)
    } else if slot.doubt.as_ref().is_some_and(matches) {
        Some(Resolved::After)
    } else {
        None
    }
}

/// One acknowledged Git commit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AckedCommit {
    /// `acme/pg0`, `system/catalyst-config`.
    pub repo: String,
    /// The branch it was made on.
    pub branch: String,
    /// The commit id.
    pub commit: String,
}

/// Everything the harness knows.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Acknowledged writes per kind.
    pub acked: BTreeMap<Kind, u64>,
    /// Definite refusals (non-2xx answers) per status, with one example each.
    pub refused: BTreeMap<u16, (u64, String)>,
    /// Definite refusals per kind of write.
    pub refused_kinds: BTreeMap<Kind, u64>,
    /// Deployments by id.
    pub deployments: BTreeMap<String, DeploymentEntry>,
    /// Labels of deployment creates sent without an answer.
    pub deployments_in_doubt: BTreeSet<String>,
    /// Whether the Organization and its Environment exist (acknowledged).
    pub org_ready: bool,
    /// Application slots by name.
    pub apps: BTreeMap<String, Slot<AppState>>,
    /// Pool allocations made by the harness, by subdomain.
    pub pool: BTreeMap<String, Slot<PoolState>>,
    /// Members by name.
    pub members: BTreeMap<String, Slot<MemberState>>,
    /// Acknowledged commits, in acknowledgement order.
    pub commits: Vec<AckedCommit>,
    /// Violations seen while the load ran (a stream that repeated or skipped an event, …).
    pub live_violations: Vec<String>,
    /// Revoked tokens the checks may still try against the running server process. Failed
    /// credential checks are rate-limited per client address (a burst of 10 per process, then
    /// one every 6 s), and a spent budget refuses the admin's requests too; reset at each start.
    pub probe_budget: usize,
}

/// The failed-credential tries the checks allow themselves per server process.
pub const PROBE_BUDGET: usize = 7;

impl Ledger {
    /// Counts one acknowledged write.
    pub fn ack(&mut self, kind: Kind) {
        *self.acked.entry(kind).or_default() += 1;
    }

    /// Counts a definite refusal.
    pub fn refuse(&mut self, status: u16, what: String) {
        let e = self.refused.entry(status).or_insert((0, what));
        e.0 += 1;
    }

    /// Every acknowledged write.
    pub fn total_acked(&self) -> u64 {
        self.acked.values().sum()
    }
}

/// Checks a deployment's stored events: sequence numbers exactly 1, 2, … (no gap, no
/// duplicate, strictly increasing), and every event a subscriber received is there, identical.
/// `stored` is (seq, phase, message). Returns the violations.
pub fn check_events(stored: &[(u64, String, String)], seen: &[SeenEvent]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (seq, _, _)) in stored.iter().enumerate() {
        let want = i as u64 + 1;
        if *seq != want {
            out.push(format!(
                "event at position {i} has seq {seq}, expected {want} (gap, duplicate or reorder)"
            ));
            break;
        }
    }
    for s in seen {
        match stored.get((s.seq as usize).wrapping_sub(1)) {
            None => out.push(format!(
                "delivered event seq {} is missing ({} stored)",
                s.seq,
                stored.len()
            )),
            Some((seq, phase, message)) => {
                if *seq != s.seq || *phase != s.phase || *message != s.message {
                    out.push(format!(
                        "delivered event seq {} changed: was {:?}/{:?}, now {seq} {phase:?}/{message:?}",
                        s.seq, s.phase, s.message
                    ));
                }
            }
        }
    }
    out
}

/// Checks the live order of one log stream: data events must arrive as 1, 2, 3, … The next
/// expected seq after `last` is `last + 1`.
pub fn next_in_stream(last: Option<u64>, got: u64) -> Result<(), String> {
    let want = last.map_or(1, |l| l + 1);
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "stream delivered seq {got} after {last:?} (expected {want})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, m: &str) -> (u64, String, String) {
        (seq, "tofu".into(), m.into())
    }

    fn seen(seq: u64, m: &str) -> SeenEvent {
        SeenEvent {
            seq,
            phase: "tofu".into(),
            message: m.into(),
        }
    }

    #[test]
    fn events_in_order_with_their_delivered_prefix_pass() {
        let stored = [ev(1, "a"), ev(2, "b"), ev(3, "c")];
        assert!(check_events(&stored, &[seen(1, "a"), seen(2, "b")]).is_empty());
        assert!(check_events(&stored, &[]).is_empty());
        assert!(check_events(&[], &[]).is_empty());
    }

    #[test]
    fn gaps_duplicates_and_reorders_are_violations() {
        for stored in [
            vec![ev(1, "a"), ev(3, "c")],
            vec![ev(1, "a"), ev(1, "a")],
            vec![ev(2, "b"), ev(1, "a")],
            vec![ev(0, "a")],
        ] {
            assert_eq!(check_events(&stored, &[]).len(), 1, "{stored:?}");
        }
    }

    #[test]
    fn a_lost_or_changed_delivered_event_is_a_violation() {
        let stored = [ev(1, "a"), ev(2, "b")];
        assert_eq!(check_events(&stored, &[seen(3, "c")]).len(), 1);
        assert_eq!(check_events(&stored, &[seen(2, "x")]).len(), 1);
        assert_eq!(check_events(&stored, &[seen(0, "a")]).len(), 1);
    }

    #[test]
    fn a_stream_must_count_up_by_one_from_one() {
        assert!(next_in_stream(None, 1).is_ok());
        assert!(next_in_stream(Some(4), 5).is_ok());
        assert!(next_in_stream(None, 2).is_err());
        assert!(next_in_stream(Some(4), 4).is_err());
        assert!(next_in_stream(Some(4), 6).is_err());
    }

    #[test]
    fn an_observation_resolves_to_the_acknowledged_state_or_the_doubted_target_only() {
        let mut slot = Slot::new(PoolState::Absent, 0);
        assert_eq!(
            resolve(&slot, |s| s.matches(&PoolSeen::Absent)),
            Some(Resolved::Before)
        );
        assert_eq!(resolve(&slot, |s| s.matches(&PoolSeen::Reserved)), None);
        slot.doubt = Some(PoolState::Reserved { token: None });
        assert_eq!(
            resolve(&slot, |s| s.matches(&PoolSeen::Reserved)),
            Some(Resolved::After)
        );
        assert_eq!(
            resolve(&slot, |s| s.matches(&PoolSeen::Other("releasing".into()))),
            None
        );
    }

    #[test]
    fn an_active_allocation_matches_only_its_own_address() {
        let s = PoolState::Active {
            token: None,
            ip: "192.0.2.1".into(),
        };
        assert!(s.matches(&PoolSeen::Active("192.0.2.1".into())));
        assert!(!s.matches(&PoolSeen::Active("192.0.2.2".into())));
        assert!(!s.matches(&PoolSeen::Reserved));
    }
}
