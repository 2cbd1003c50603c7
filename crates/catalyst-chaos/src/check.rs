//! The checks after every restart (server up, before new load) and while the server is down
//! (`git fsck`). Each compares what the restarted server serves with the ledger; anything in
//! doubt is resolved to "left nothing" or "took effect completely" (anything else is a
//! violation) and the ledger moves on from there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use reqwest::Method;
use serde_json::Value;

use crate::api::{Answer, Api};
use crate::ledger::{
    check_events, resolve, AppState, DeploymentEntry, Ledger, MemberState, PoolSeen, PoolState,
    Resolved,
};
use crate::load::{ENV, ORG, POOL};

/// What one round of checks found.
#[derive(Debug, Default)]
pub struct Report {
    /// Individual checks made.
    pub checks: u64,
    /// What was wrong.
    pub violations: Vec<String>,
    /// Requests in doubt resolved as "took effect" / "left nothing".
    pub doubts_applied: u64,
    /// See `doubts_applied`.
    pub doubts_void: u64,
    /// Requests in doubt found cut short between two steps in the safe order (a member listed
    /// without a token, or listed with its token already revoked); the load finishes them.
    pub doubts_partial: u64,
    /// Listed members whose cut-short removal could not be told apart (no failure budget
    /// left): removed again by the load.
    pub unprobed: u64,
}

impl Report {
    /// Counts one check; a violation (described by `what`) unless `ok`.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.checks += 1;
        if !ok {
            self.violations.push(what());
        }
    }

    fn fail(&mut self, what: String) {
        self.checks += 1;
        self.violations.push(what);
    }

    fn resolved(&mut self, r: Resolved) {
        match r {
            Resolved::Before => self.doubts_void += 1,
            Resolved::After => self.doubts_applied += 1,
        }
    }

    /// Adds another report's findings.
    pub fn merge(&mut self, other: Report) {
        self.checks += other.checks;
        self.violations.extend(other.violations);
        self.doubts_applied += other.doubts_applied;
        self.doubts_void += other.doubts_void;
        self.doubts_partial += other.doubts_partial;
        self.unprobed += other.unprobed;
    }
}

fn lock(l: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

/// How much to check.
pub struct Scope {
    /// The run that just started (things changed in the previous run are checked in full).
    pub cycle: u32,
    /// Check every deployment's events and every member's token (the last round).
    pub full: bool,
    /// The server was just restarted (else: the same process, after a full disk): nothing of
    /// before may still be in flight.
    pub restarted: bool,
}

/// Every check against the restarted server.
pub async fn after_restart(
    api: &Api,
    ledger: &Mutex<Ledger>,
    data_dir: &Path,
    scope: &Scope,
    rng: &mut StdRng,
) -> Report {
    let mut r = Report::default();
    deployments(api, ledger, scope, rng, &mut r).await;
    applications(api, ledger, data_dir, &mut r).await;
    commits(api, ledger, data_dir, &mut r).await;
    pool(api, ledger, &mut r).await;
    members(api, ledger, scope, rng, &mut r).await;
    r
}

/// Every deployment record, through the paged list.
async fn list_deployments(api: &Api, r: &mut Report) -> Option<Vec<Value>> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/api/v1/deployments?limit=500&cursor={cursor}");
        match api.get(&path).await {
            Ok((200, v)) => {
                let Some(page) = v["deployments"].as_array() else {
                    r.fail(format!("GET {path}: no deployments array: {v}"));
                    return None;
                };
                all.extend(page.iter().cloned());
                match v["nextCursor"].as_str() {
                    Some(c) if !c.is_empty() => cursor = c.to_string(),
                    _ => return Some(all),
                }
            }
            Ok((s, v)) => {
                r.fail(format!("GET {path}: {s} {v}"));
                return None;
            }
            Err(e) => {
                r.fail(e);
                return None;
            }
        }
    }
}

const TERMINAL: [&str; 3] = ["ready", "failed", "cancelled"];

/// Checks one deployment's record and stored events against what was delivered.
async fn one_deployment(
    api: &Api,
    id: &str,
    e: &DeploymentEntry,
    listed: &Value,
    restarted: bool,
    r: &mut Report,
) {
    let status = listed["status"].as_str().unwrap_or_default();
    let terminal = TERMINAL.contains(&status);
    // Right after a restart nothing of before the kill may still be in flight.
    if restarted {
        r.check(terminal, || {
            format!(
                "deployment {id} ({}) is {status:?} after the restart",
                e.label
            )
        });
    }
    if let Some(t) = &e.terminal {
        r.check(t == status, || {
            format!("deployment {id}: delivered end {t:?}, now {status:?}")
        });
    }
    let path = format!("/api/v1/deployments/{id}/events");
    let (s, v) = match api.get(&path).await {
        Ok(x) => x,
        Err(err) => return r.fail(err),
    };
    let Some(events) = v["events"].as_array().filter(|_| s == 200) else {
        return r.fail(format!("GET {path}: {s} {v}"));
    };
    let stored: Vec<(u64, String, String)> = events
        .iter()
        .map(|ev| {
            (
                ev["seq"].as_u64().unwrap_or(0),
                ev["phase"].as_str().unwrap_or_default().to_string(),
                ev["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    if !terminal {
        // Still running (the same process after a full disk): only the order is checked.
        let found = check_events(&stored, &e.seen);
        r.checks += 1;
        for f in found {
            r.violations
                .push(format!("deployment {id} ({}): {f}", e.label));
        }
        return;
    }
    r.check(v["done"] == Value::Bool(true), || {
        format!(
            "deployment {id}: events not done after the restart: {}",
            v["done"]
        )
    });
    r.check(
        listed["numEvents"].as_u64() == Some(stored.len() as u64),
        || {
            format!(
                "deployment {id}: numEvents {} but {} events stored",
                listed["numEvents"],
                stored.len()
            )
        },
    );
    let found = check_events(&stored, &e.seen);
    r.checks += 1 + e.seen.len() as u64;
    for f in found {
        r.violations
            .push(format!("deployment {id} ({}): {f}", e.label));
    }
}

async fn deployments(
    api: &Api,
    ledger: &Mutex<Ledger>,
    scope: &Scope,
    rng: &mut StdRng,
    r: &mut Report,
) {
    let Some(listed) = list_deployments(api, r).await else {
        return;
    };
    let by_id: BTreeMap<String, Value> = listed
        .iter()
        .filter_map(|d| Some((d["id"].as_str()?.to_string(), d.clone())))
        .collect();
    // Unanswered creates: present completely (a record that lists and reads) or absent.
    let (known, doubts): (BTreeSet<String>, BTreeSet<String>) = {
        let l = lock(ledger);
        (
            l.deployments.keys().cloned().collect(),
            l.deployments_in_doubt.clone(),
        )
    };
    for (id, d) in &by_id {
        if known.contains(id) {
            continue;
        }
        let fqdn = d["sovereignFQDN"].as_str().unwrap_or_default();
        let label = fqdn.strip_suffix(&format!(".{POOL}")).unwrap_or_default();
        if doubts.contains(label) {
            r.resolved(Resolved::After);
            lock(ledger).deployments.insert(
                id.clone(),
                DeploymentEntry {
                    label: label.to_string(),
                    cycle: scope.cycle.saturating_sub(1),
                    acknowledged: false,
                    ..Default::default()
                },
            );
        } else {
            r.fail(format!(
                "deployment {id} ({fqdn}) is listed but nobody created it"
            ));
        }
    }
    let found: BTreeSet<String> = {
        let mut l = lock(ledger);
        let present: BTreeSet<String> = l.deployments.values().map(|e| e.label.clone()).collect();
        let doubts = std::mem::take(&mut l.deployments_in_doubt);
        for label in doubts {
            if !present.contains(&label) {
                r.resolved(Resolved::Before);
            }
        }
        l.deployments.keys().cloned().collect()
    };
    // Every acknowledged deployment is listed; events are checked for recent ones, a sample
    // of older ones, or all of them in a full round.
    let entries: Vec<(String, DeploymentEntry)> = {
        let l = lock(ledger);
        found
            .iter()
            .filter_map(|id| Some((id.clone(), l.deployments.get(id)?.clone())))
            .collect()
    };
    let (recent, mut older): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|(_, e)| scope.full || e.cycle + 1 >= scope.cycle);
    older.shuffle(rng);
    older.truncate(10);
    for (id, e) in recent.iter().chain(older.iter()) {
        let Some(d) = by_id.get(id) else {
            r.fail(format!(
                "acknowledged deployment {id} ({}) is gone from the list",
                e.label
            ));
            continue;
        };
        r.checks += 1;
        one_deployment(api, id, e, d, scope.restarted, r).await;
    }
}

/// What `GET /orgs/acme/applications/{name}` shows: (version, instances) in the Environment.
async fn app_seen(api: &Api, name: &str, r: &mut Report) -> Option<AppState> {
    let path = format!("/api/v1/orgs/{ORG}/applications/{name}");
    match api.get(&path).await {
        Ok((404, _)) => Some(AppState::Absent),
        Ok((200, v)) => {
            let envs = v["environments"].as_array().cloned().unwrap_or_default();
            let Some(env) = envs
                .iter()
                .find(|e| {
                    e["envType"] == ENV
                        || e["environment"] == format!("{ORG}-{ENV}")
                        || e["environment"] == ENV
                })
                .or(envs.first())
            else {
                r.fail(format!("GET {path}: no environment: {v}"));
                return None;
            };
            let version = env["version"]
                .as_str()
                .or_else(|| env["blueprint"]["version"].as_str())
                .unwrap_or_default()
                .to_string();
            let instances = env["values"]["instances"].as_u64().unwrap_or(0);
            Some(AppState::Installed { version, instances })
        }
        Ok((s, v)) => {
            r.fail(format!("GET {path}: {s} {v}"));
            None
        }
        Err(e) => {
            r.fail(e);
            None
        }
    }
}

async fn applications(api: &Api, ledger: &Mutex<Ledger>, data_dir: &Path, r: &mut Report) {
    let names: Vec<String> = lock(ledger).apps.keys().cloned().collect();
    for name in &names {
        let Some(seen) = app_seen(api, name, r).await else {
            continue;
        };
        let mut l = lock(ledger);
        let Some(slot) = l.apps.get_mut(name) else {
            continue;
        };
        r.checks += 1;
        match resolve(slot, |s| *s == seen) {
            Some(res) => {
                if slot.doubt.take().is_some() {
                    r.resolved(res);
                }
                slot.state = seen;
            }
            None => {
                r.violations.push(format!(
                    "application {name}: Git shows {seen:?}, acknowledged {:?}, in doubt {:?}",
                    slot.state, slot.doubt
                ));
                slot.state = seen;
                slot.doubt = None;
            }
        }
    }
    // The read side (App cards, built only from the spine) agrees with Git: same
    // Applications, same versions, each card at its branch's head commit.
    let path = format!("/api/v1/orgs/{ORG}/applications?environment={ENV}");
    let cards = match api.get(&path).await {
        Ok((200, v)) => v["applications"].as_array().cloned().unwrap_or_default(),
        Ok((s, v)) => return r.fail(format!("GET {path}: {s} {v}")),
        Err(e) => return r.fail(e),
    };
    let by_name: BTreeMap<String, Value> = cards
        .iter()
        .filter_map(|c| Some((c["name"].as_str()?.to_string(), c.clone())))
        .collect();
    let apps: Vec<(String, AppState)> = lock(ledger)
        .apps
        .iter()
        .map(|(k, s)| (k.clone(), s.state.clone()))
        .collect();
    for (name, state) in apps {
        let card = by_name.get(&name);
        match (&state, card) {
            (AppState::Absent, None) => r.checks += 1,
            (AppState::Absent, Some(c)) => r.fail(format!(
                "application {name} is absent from Git but has a card: {c}"
            )),
            (AppState::Installed { .. }, None) => r.fail(format!(
                "application {name} is in Git but has no card (the spine missed its event)"
            )),
            (AppState::Installed { version, .. }, Some(c)) => {
                r.check(c["version"].as_str() == Some(version.as_str()), || {
                    format!(
                        "application {name}: Git at {version}, card says {}",
                        c["version"]
                    )
                });
                let branch = c["branch"].as_str().unwrap_or("develop");
                let head = git_head(data_dir, &format!("{ORG}/{name}"), branch);
                r.check(head.as_deref() == c["commit"].as_str(), || {
                    format!(
                        "application {name}: card at commit {}, branch {branch} at {head:?}",
                        c["commit"]
                    )
                });
            }
        }
    }
    for name in by_name.keys() {
        r.check(names.contains(name), || {
            format!("a card for {name}, which nobody installed")
        });
    }
}

/// The bare repository of `repo` (`acme/pg0`, `system/catalyst-config`).
pub fn repo_dir(data_dir: &Path, repo: &str) -> PathBuf {
    data_dir.join("git").join(format!("{repo}.git"))
}

fn git_head(data_dir: &Path, repo: &str, branch: &str) -> Option<String> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(repo_dir(data_dir, repo))
        .args([
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}"),
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Every acknowledged commit is on its branch (an ancestor of the branch head) and on the
/// audit log (the spine recorded its call) exactly once.
async fn commits(api: &Api, ledger: &Mutex<Ledger>, data_dir: &Path, r: &mut Report) {
    let acked = lock(ledger).commits.clone();
    let mut by_branch: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for c in &acked {
        by_branch
            .entry((c.repo.clone(), c.branch.clone()))
            .or_default()
            .push(c.commit.clone());
    }
    for ((repo, branch), want) in by_branch {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(repo_dir(data_dir, &repo))
            .args(["rev-list", &format!("refs/heads/{branch}"), "--"])
            .output();
        let have: BTreeSet<String> = match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect(),
            Ok(o) => {
                r.fail(format!(
                    "{repo} {branch}: git rev-list failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                BTreeSet::new()
            }
            Err(e) => {
                r.fail(format!("git: {e}"));
                BTreeSet::new()
            }
        };
        for c in want {
            r.check(have.contains(&c), || {
                format!("acknowledged commit {c} is not on {repo} {branch}")
            });
        }
    }
    // The audit log: seqs strictly increasing, each commit on exactly one entry.
    let mut after = 0u64;
    let mut on_audit: BTreeMap<String, u32> = BTreeMap::new();
    let mut last_seq = 0u64;
    loop {
        let path = format!("/api/v1/audit?limit=1000&after={after}");
        let (s, v) = match api.get(&path).await {
            Ok(x) => x,
            Err(e) => return r.fail(e),
        };
        let Some(entries) = v["entries"].as_array().filter(|_| s == 200) else {
            return r.fail(format!("GET {path}: {s} {v}"));
        };
        for e in entries {
            let seq = e["seq"].as_u64().unwrap_or(0);
            r.check(seq > last_seq, || {
                format!("audit log: seq {seq} after {last_seq} (duplicate or reorder)")
            });
            last_seq = seq;
            // `repo@branch:commit`.
            for c in e["commits"].as_array().into_iter().flatten() {
                let s = c.as_str().unwrap_or_default();
                let id = s.rsplit(':').next().unwrap_or(s);
                *on_audit.entry(id.to_string()).or_default() += 1;
            }
        }
        match v["nextCursor"].as_u64() {
            Some(n) => after = n,
            None => break,
        }
    }
    for (c, n) in &on_audit {
        r.check(*n == 1, || {
            format!("commit {c} is on the audit log {n} times (a duplicated event)")
        });
    }
    for c in &acked {
        let n = on_audit.get(&c.commit).copied().unwrap_or(0);
        r.check(n == 1, || {
            format!(
                "acknowledged commit {} ({} {}) is on the audit log {n} times",
                c.commit, c.repo, c.branch
            )
        });
    }
}

async fn pool(api: &Api, ledger: &Mutex<Ledger>, r: &mut Report) {
    let path = format!("/api/v1/pool/{POOL}/list");
    let rows = match api.get(&path).await {
        Ok((200, v)) => v["allocations"].as_array().cloned().unwrap_or_default(),
        Ok((s, v)) => return r.fail(format!("GET {path}: {s} {v}")),
        Err(e) => return r.fail(e),
    };
    let seen: BTreeMap<String, PoolSeen> = rows
        .iter()
        .filter_map(|a| {
            let sub = a["subdomain"].as_str()?.to_string();
            let s = match a["state"].as_str().unwrap_or_default() {
                "reserved" => PoolSeen::Reserved,
                "active" => {
                    PoolSeen::Active(a["loadBalancerIP"].as_str().unwrap_or_default().into())
                }
                other => PoolSeen::Other(other.into()),
            };
            Some((sub, s))
        })
        .collect();
    let mut l = lock(ledger);
    for (sub, slot) in l.pool.iter_mut() {
        let s = seen.get(sub).cloned().unwrap_or(PoolSeen::Absent);
        r.checks += 1;
        if s == PoolSeen::Other("releasing".into()) && matches!(slot.doubt, Some(PoolState::Absent))
        {
            // The documented intermediate state of a release cut short; the load finishes it.
            r.doubts_partial += 1;
            slot.doubt = None;
            slot.state = PoolState::Releasing;
            continue;
        }
        match resolve(slot, |st| st.matches(&s)) {
            Some(res) => {
                if let Some(target) = slot.doubt.take() {
                    r.resolved(res);
                    if res == Resolved::After {
                        slot.state = target;
                    }
                }
            }
            None => {
                r.violations.push(format!(
                    "pool {sub}: listed as {s:?}, acknowledged {:?}, in doubt {:?}",
                    slot.state, slot.doubt
                ));
                slot.doubt = None;
                slot.state = match s {
                    PoolSeen::Absent | PoolSeen::Other(_) => PoolState::Absent,
                    PoolSeen::Reserved => PoolState::Reserved { token: None },
                    PoolSeen::Active(ip) => PoolState::Active { token: None, ip },
                };
            }
        }
    }
    // Subdomains the harness never asked for (`p…`) must not appear.
    for sub in seen.keys().filter(|s| s.starts_with('p')) {
        r.check(l.pool.contains_key(sub), || {
            format!("pool {sub} is listed but nobody reserved it")
        });
    }
}

/// Takes one try from the failed-credential budget of the running server process (see
/// [`Ledger::probe_budget`]); false when it is spent.
fn spend(ledger: &Mutex<Ledger>) -> bool {
    let mut l = lock(ledger);
    if l.probe_budget == 0 {
        return false;
    }
    l.probe_budget -= 1;
    true
}

/// `GET /orgs/acme/members` as `token`: 200, or the refusal's status.
async fn probe(api: &Api, token: &str) -> Result<u16, String> {
    match api
        .call(
            Method::GET,
            &format!("/api/v1/orgs/{ORG}/members"),
            None,
            Some(token),
        )
        .await
    {
        Answer::Ok(s, _) | Answer::Refused(s, _) => Ok(s),
        Answer::None(e) => Err(e),
    }
}

async fn members(
    api: &Api,
    ledger: &Mutex<Ledger>,
    scope: &Scope,
    rng: &mut StdRng,
    r: &mut Report,
) {
    let path = format!("/api/v1/orgs/{ORG}/members");
    let listed: BTreeSet<String> = match api.get(&path).await {
        Ok((200, v)) => v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["name"].as_str().or(m.as_str()).map(str::to_string))
            .collect(),
        Ok((404, _)) if !lock(ledger).org_ready => return,
        Ok((s, v)) => return r.fail(format!("GET {path}: {s} {v}")),
        Err(e) => return r.fail(e),
    };
    let slots: Vec<(String, crate::ledger::Slot<MemberState>)> = lock(ledger)
        .members
        .iter()
        .map(|(k, s)| (k.clone(), s.clone()))
        .collect();
    let mut revoked_probes: Vec<(String, String, bool)> = Vec::new(); // (name, token, in doubt)
    for (name, slot) in &slots {
        let is_listed = listed.contains(name);
        let token = match &slot.state {
            MemberState::Active { token }
            | MemberState::Removed { token }
            | MemberState::Revoked { token } => token.clone(),
            MemberState::Absent => None,
        };
        let recent = scope.full || slot.changed + 1 >= scope.cycle || slot.doubt.is_some();
        let removing = matches!(slot.doubt, Some(MemberState::Removed { .. }));
        // A listed member whose removal was cut short may hold a revoked token: trying it may
        // spend the failure budget.
        let risky = removing || matches!(slot.state, MemberState::Revoked { .. });
        let works = match (&token, is_listed) {
            (Some(_), true) if risky && !spend(ledger) => {
                // No budget left to tell: remove it again (that finishes either state).
                r.unprobed += 1;
                Some(false)
            }
            (Some(t), true) if risky || recent || rng.gen_bool(0.2) => match probe(api, t).await {
                Ok(s) => Some(s == 200),
                Err(e) => {
                    r.fail(format!("member {name}: token probe: {e}"));
                    continue;
                }
            },
            (Some(t), false) => {
                revoked_probes.push((name.clone(), t.clone(), slot.doubt.is_some()));
                None
            }
            _ => None,
        };
        let seen = match (&slot.state, is_listed, works) {
            // The removal's first step (the token) done, its second (the commit) not.
            (MemberState::Active { .. }, true, Some(false)) if removing => MemberState::Revoked {
                token: token.clone(),
            },
            (MemberState::Revoked { .. }, true, _) => MemberState::Revoked {
                token: token.clone(),
            },
            (_, true, _) => MemberState::Active {
                token: token.clone(),
            },
            (MemberState::Absent, false, _) => MemberState::Absent,
            (_, false, _) => MemberState::Removed {
                token: token.clone(),
            },
        };
        r.checks += 1;
        let same = |s: &MemberState| std::mem::discriminant(s) == std::mem::discriminant(&seen);
        let partial = matches!(seen, MemberState::Revoked { .. }) && removing
            || seen == (MemberState::Active { token: None })
                && matches!(slot.doubt, Some(MemberState::Active { .. }));
        let res = resolve(slot, same);
        if res.is_none() && !partial {
            r.violations.push(format!(
                "member {name}: listed={is_listed}, token works={works:?}, acknowledged {:?}, in doubt {:?}",
                slot.state.kind(),
                slot.doubt.as_ref().map(MemberState::kind)
            ));
        }
        if works == Some(false) && !matches!(seen, MemberState::Revoked { .. }) {
            r.fail(format!("member {name} is listed but its token is refused"));
        }
        let mut l = lock(ledger);
        if let Some(s) = l.members.get_mut(name) {
            if s.doubt.take().is_some() {
                if partial {
                    r.doubts_partial += 1;
                } else if let Some(res) = res {
                    r.resolved(res);
                }
            }
            s.state = seen;
        }
    }
    // Revoked tokens stop working: those whose removal was in doubt first, then a sample.
    revoked_probes.sort_by_key(|(_, _, doubt)| !doubt);
    let (doubted, mut rest): (Vec<_>, Vec<_>) =
        revoked_probes.into_iter().partition(|(_, _, d)| *d);
    rest.shuffle(rng);
    for (name, token, _) in doubted.into_iter().chain(rest) {
        if !spend(ledger) {
            break;
        }
        match probe(api, &token).await {
            Ok(s) => r.check(s == 401, || {
                format!("member {name} is removed but its token still answers {s}")
            }),
            Err(e) => r.fail(format!("member {name}: token probe: {e}")),
        }
    }
}

impl MemberState {
    fn kind(&self) -> &'static str {
        match self {
            MemberState::Absent => "absent",
            MemberState::Active { .. } => "active",
            MemberState::Revoked { .. } => "listed, token revoked",
            MemberState::Removed { .. } => "removed",
        }
    }
}

/// Every bare repository under `<data-dir>/git`: each `<name>.git` folder (a half-made one, no
/// `HEAD` yet, included: the server must not leave one behind, and `git fsck` refuses it) and
/// any other folder holding `HEAD` and `objects`.
pub fn bare_repos(data_dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if !p.is_dir() {
                continue;
            }
            let named = p.extension().is_some_and(|x| x == "git");
            if named || (p.join("HEAD").is_file() && p.join("objects").is_dir()) {
                out.push(p);
            } else {
                walk(&p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&data_dir.join("git"), &mut out);
    out.sort();
    out
}

/// `git fsck --strict` on every bare repository (the server is down).
pub fn fsck(data_dir: &Path) -> Report {
    let mut r = Report::default();
    for repo in bare_repos(data_dir) {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&repo)
            .args(["fsck", "--strict", "--no-progress", "--no-dangling"])
            .output();
        match out {
            Ok(o) => r.check(o.status.success(), || {
                format!(
                    "git fsck --strict {}: {}{}",
                    repo.display(),
                    String::from_utf8_lossy(&o.stdout).trim(),
                    String::from_utf8_lossy(&o.stderr).trim()
                )
            }),
            Err(e) => r.fail(format!("git fsck {}: {e}", repo.display())),
        }
    }
    r
}
