//! The mixed load of one server run: four workers (deployment bursts, Application changes, pool
//! allocations, members) until the server is killed. Every request is put in the ledger as in
//! doubt before it is sent and settled when its answer arrives, so a kill at any moment leaves
//! the ledger exact: acknowledged, refused, or in doubt.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use tracing::warn;

use crate::api::{Answer, Api};
use crate::ledger::{
    next_in_stream, AckedCommit, AppState, DeploymentEntry, Kind, Ledger, MemberState, PoolState,
    SeenEvent, Slot,
};

/// The Organization and Environment the Application and member load runs in.
pub const ORG: &str = "acme";
/// The Environment type.
pub const ENV: &str = "dev";
/// The pool domain of deployments and pool allocations.
pub const POOL: &str = "omani.works";
/// How many Application slots (`pg0`…): a bounded set of repositories, installed, upgraded,
/// changed and uninstalled over and over.
pub const APP_SLOTS: usize = 6;
/// The Blueprint of the Application load (`examples/catalog`), its versions.
pub const BLUEPRINT: &str = "bp-postgres";
/// The version installed.
pub const FROM_VERSION: &str = "1.2.0";
/// The version upgraded to.
pub const TO_VERSION: &str = "1.3.0";

/// A fake Hetzner token: the OpenTofu stand-in only checks that one is set.
const HETZNER_TOKEN: &str = "chaos-campaign-not-a-real-token-0123456789abcdef0123456789abcdef";

/// What the workers of one run share.
pub struct Load {
    /// The server of this run.
    pub api: Api,
    /// The ledger.
    pub ledger: Arc<Mutex<Ledger>>,
    /// Set once the server is killed: workers stop after their current request.
    pub stop: Arc<AtomicBool>,
    /// The run number.
    pub cycle: u32,
    /// What names made by this load start with (unique per load: `c7`, `c7r`).
    pub prefix: String,
}

impl Load {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refused(&self, kind: Option<Kind>, what: &str, status: u16, body: &Value) {
        // A refusal while the server runs normally is worth a look; they are counted and the
        // summary prints them. They are not violations by themselves, but every one must say
        // what went wrong: `{"error", "detail"}`.
        warn!(what, status, answer = %body, "Refused.");
        let mut l = self.ledger();
        l.refuse(status, format!("{what}: {body}"));
        if let Some(k) = kind {
            *l.refused_kinds.entry(k).or_default() += 1;
        }
        if !(body["error"].is_string() && body["detail"].is_string()) {
            l.live_violations
                .push(format!("{what}: {status} without an error body ({body})"));
        }
    }

    fn record_commits(&self, body: &Value) {
        let mut l = self.ledger();
        for c in body["commits"].as_array().into_iter().flatten() {
            if let (Some(repo), Some(branch), Some(commit)) = (
                c["repo"].as_str(),
                c["branch"].as_str(),
                c["commit"].as_str(),
            ) {
                l.commits.push(AckedCommit {
                    repo: repo.into(),
                    branch: branch.into(),
                    commit: commit.into(),
                });
            }
        }
    }

    async fn pause(&self, rng: &mut StdRng, max_ms: u64) {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..=max_ms))).await;
    }
}

/// Runs the four workers until `load.stop` is set and their last requests have ended.
pub async fn run(load: Arc<Load>, seed: u64) {
    let worker = |i: u64| StdRng::seed_from_u64(seed ^ (u64::from(load.cycle) << 8) ^ i);
    let tasks = [
        tokio::spawn(deployments(load.clone(), worker(1))),
        tokio::spawn(applications(load.clone(), worker(2))),
        tokio::spawn(pool(load.clone(), worker(3))),
        tokio::spawn(members(load.clone(), worker(4))),
    ];
    for t in tasks {
        let _ = t.await;
    }
}

/// Creates the Organization and its Environment until both are acknowledged (an unanswered
/// create is retried; `409 already-exists` after one means it took effect).
pub async fn ensure_org(api: &Api, ledger: &Mutex<Ledger>) -> Result<(), String> {
    if ledger.lock().unwrap_or_else(|p| p.into_inner()).org_ready {
        return Ok(());
    }
    for (path, body) in [
        (
            "/api/v1/orgs".to_string(),
            json!({"name": ORG, "contact": "ops@acme.example"}),
        ),
        (
            format!("/api/v1/orgs/{ORG}/environments"),
            json!({"envType": ENV}),
        ),
    ] {
        match api.call(Method::POST, &path, Some(&body), None).await {
            Answer::Ok(_, v) => {
                let mut l = ledger.lock().unwrap_or_else(|p| p.into_inner());
                l.ack(Kind::OrgEnv);
                for c in v["commits"].as_array().into_iter().flatten() {
                    l.commits.push(AckedCommit {
                        repo: c["repo"].as_str().unwrap_or_default().into(),
                        branch: c["branch"].as_str().unwrap_or_default().into(),
                        commit: c["commit"].as_str().unwrap_or_default().into(),
                    });
                }
            }
            Answer::Refused(409, _) => {}
            Answer::Refused(s, v) => return Err(format!("POST {path}: {s} {v}")),
            Answer::None(e) => return Err(format!("POST {path}: no answer: {e}")),
        }
    }
    ledger.lock().unwrap_or_else(|p| p.into_inner()).org_ready = true;
    Ok(())
}

/// The body of `POST /api/v1/deployments` for `<label>.omani.works` (pool mode).
fn deployment_request(label: &str) -> Value {
    json!({
        "orgName": "Acme Financial",
        "orgEmail": "platform@acme.io",
        "sovereignFQDN": format!("{label}.{POOL}"),
        "sovereignDomainMode": "pool",
        "sovereignPoolDomain": POOL,
        "sovereignSubdomain": label,
        "hetznerProjectID": "4711",
        "hetznerToken": HETZNER_TOKEN,
        "regions": [{"provider": "hetzner", "cloudRegion": "fsn1", "controlPlaneSize": "cpx32", "workerSize": "cpx22", "workerCount": 2}],
        "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@acme"
    })
}

/// Bursts of 1–3 deployments through the OpenTofu stand-in, each followed on its log stream.
async fn deployments(load: Arc<Load>, mut rng: StdRng) {
    let mut n = 0u32;
    let mut dead = false;
    while !load.stopped() && !dead {
        let burst = rng.gen_range(1..=3);
        let mut followers = Vec::new();
        for _ in 0..burst {
            let label = format!("{}d{n}", load.prefix);
            n += 1;
            load.ledger().deployments_in_doubt.insert(label.clone());
            let answer = load
                .api
                .call(
                    Method::POST,
                    "/api/v1/deployments",
                    Some(&deployment_request(&label)),
                    None,
                )
                .await;
            match answer {
                Answer::Ok(_, v) => {
                    let Some(id) = v["id"].as_str().map(str::to_string) else {
                        load.ledger()
                            .live_violations
                            .push(format!("deployment create answered without an id: {v}"));
                        continue;
                    };
                    {
                        let mut l = load.ledger();
                        l.deployments_in_doubt.remove(&label);
                        l.ack(Kind::Deployment);
                        l.deployments.insert(
                            id.clone(),
                            DeploymentEntry {
                                label,
                                cycle: load.cycle,
                                acknowledged: true,
                                ..Default::default()
                            },
                        );
                    }
                    followers.push(tokio::spawn(follow(load.clone(), id)));
                }
                Answer::Refused(s, v) => {
                    if s < 500 {
                        load.ledger().deployments_in_doubt.remove(&label);
                    }
                    load.refused(Some(Kind::Deployment), "deployment create", s, &v);
                }
                Answer::None(_) => {
                    dead = true;
                    break;
                }
            }
        }
        for f in followers {
            let _ = f.await;
        }
        load.pause(&mut rng, 150).await;
    }
}

/// Follows one deployment's log stream from the start, recording every delivered event and the
/// terminal state, and checking the stream's own order.
async fn follow(load: Arc<Load>, id: String) {
    let path = format!("/api/v1/deployments/{id}/logs");
    let resp = match load
        .api
        .http
        .get(load.api.url(&path))
        .bearer_auth(&load.api.admin)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            load.refused(None, "deployment log stream", status, &body);
            return;
        }
        Err(_) => return,
    };
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut last: Option<u64> = None;
    while let Some(Ok(chunk)) = body.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(pos) = buf.find("\n\n") {
            let block: String = buf.drain(..pos + 2).collect();
            let (mut seq, mut event, mut data) = (None, None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    seq = v.trim().parse::<u64>().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            let mut l = load.ledger();
            match (event.as_deref(), seq) {
                (Some("done"), _) => {
                    let status = v["status"].as_str().unwrap_or_default().to_string();
                    if let Some(e) = l.deployments.get_mut(&id) {
                        e.terminal = Some(status);
                    }
                    l.ack(Kind::DeploymentDone);
                    return;
                }
                (None, Some(seq)) => {
                    if let Err(e) = next_in_stream(last, seq) {
                        l.live_violations.push(format!("deployment {id}: {e}"));
                    }
                    last = Some(seq);
                    if let Some(e) = l.deployments.get_mut(&id) {
                        e.seen.push(SeenEvent {
                            seq,
                            phase: v["phase"].as_str().unwrap_or_default().to_string(),
                            message: v["message"].as_str().unwrap_or_default().to_string(),
                        });
                    }
                    l.ack(Kind::DeploymentEvent);
                }
                _ => {}
            }
        }
    }
}

/// Application slots: install (1.2.0) → upgrade (1.3.0) → uninstall, values changes between.
async fn applications(load: Arc<Load>, mut rng: StdRng) {
    while !load.stopped() {
        let (name, state) = {
            let mut l = load.ledger();
            let free: Vec<String> = (0..APP_SLOTS)
                .map(|i| format!("pg{i}"))
                .filter(|n| l.apps.get(n).is_none_or(|s| s.doubt.is_none()))
                .collect();
            if free.is_empty() {
                return;
            }
            let name = free[rng.gen_range(0..free.len())].clone();
            let slot = l
                .apps
                .entry(name.clone())
                .or_insert_with(|| Slot::new(AppState::Absent, load.cycle));
            (name, slot.state.clone())
        };
        let instances = rng.gen_range(1..=5u64);
        let base = format!("/api/v1/orgs/{ORG}/applications");
        let (kind, method, path, body, target) = match &state {
            AppState::Absent => (
                Kind::Install,
                Method::POST,
                base.clone(),
                Some(
                    json!({"name": name, "environment": ENV, "blueprint": BLUEPRINT, "version": FROM_VERSION, "values": {"instances": instances}}),
                ),
                AppState::Installed {
                    version: FROM_VERSION.into(),
                    instances,
                },
            ),
            AppState::Installed {
                version,
                instances: was,
            } => {
                let roll = rng.gen_range(0..10);
                if version == FROM_VERSION && roll < 6 {
                    (
                        Kind::Upgrade,
                        Method::POST,
                        format!("{base}/{name}/upgrade"),
                        Some(json!({"environment": ENV, "version": TO_VERSION})),
                        AppState::Installed {
                            version: TO_VERSION.into(),
                            instances: *was,
                        },
                    )
                } else if version == TO_VERSION && roll < 5 {
                    (
                        Kind::Uninstall,
                        Method::DELETE,
                        format!("{base}/{name}?environment={ENV}"),
                        None,
                        AppState::Absent,
                    )
                } else {
                    (
                        Kind::Values,
                        Method::PUT,
                        format!("{base}/{name}/values"),
                        Some(json!({"environment": ENV, "values": {"instances": instances}})),
                        AppState::Installed {
                            version: version.clone(),
                            instances,
                        },
                    )
                }
            }
        };
        if let Some(s) = load.ledger().apps.get_mut(&name) {
            s.doubt = Some(target.clone());
        }
        match load.api.call(method, &path, body.as_ref(), None).await {
            Answer::Ok(_, v) => {
                load.record_commits(&v);
                let mut l = load.ledger();
                l.ack(kind);
                if let Some(s) = l.apps.get_mut(&name) {
                    s.state = target;
                    s.doubt = None;
                    s.changed = load.cycle;
                }
            }
            Answer::Refused(s, v) => {
                if s < 500 {
                    if let Some(slot) = load.ledger().apps.get_mut(&name) {
                        slot.doubt = None;
                    }
                }
                load.refused(Some(kind), kind.name(), s, &v);
            }
            Answer::None(_) => return,
        }
        load.pause(&mut rng, 100).await;
    }
}

/// Pool allocations: reserve new subdomains, commit or release them.
async fn pool(load: Arc<Load>, mut rng: StdRng) {
    let mut n = 0u32;
    while !load.stopped() {
        let live: Vec<(String, PoolState)> = load
            .ledger()
            .pool
            .iter()
            .filter(|(_, s)| s.doubt.is_none() && s.state != PoolState::Absent)
            .map(|(k, s)| (k.clone(), s.state.clone()))
            .collect();
        let (kind, sub, method, path, body, target) = if live.len() < 4 || rng.gen_bool(0.4) {
            let sub = format!("p{}x{n}", load.prefix);
            n += 1;
            load.ledger()
                .pool
                .insert(sub.clone(), Slot::new(PoolState::Absent, load.cycle));
            (
                Kind::PoolReserve,
                sub.clone(),
                Method::POST,
                format!("/api/v1/pool/{POOL}/reserve"),
                Some(json!({"subdomain": sub, "createdBy": "chaos"})),
                PoolState::Reserved { token: None },
            )
        } else {
            let (sub, state) = live[rng.gen_range(0..live.len())].clone();
            match state {
                PoolState::Reserved { token: Some(token) } if rng.gen_bool(0.7) => {
                    let ip = format!("192.0.2.{}", rng.gen_range(1..=254));
                    (
                        Kind::PoolCommit,
                        sub.clone(),
                        Method::POST,
                        format!("/api/v1/pool/{POOL}/commit"),
                        Some(
                            json!({"subdomain": sub, "reservationToken": token, "sovereignFQDN": format!("{sub}.{POOL}"), "loadBalancerIP": ip}),
                        ),
                        PoolState::Active {
                            token: Some(token),
                            ip,
                        },
                    )
                }
                _ => (
                    Kind::PoolRelease,
                    sub.clone(),
                    Method::DELETE,
                    format!("/api/v1/pool/{POOL}/release"),
                    Some(json!({ "subdomain": sub })),
                    PoolState::Absent,
                ),
            }
        };
        if let Some(s) = load.ledger().pool.get_mut(&sub) {
            s.doubt = Some(target.clone());
        }
        match load.api.call(method, &path, body.as_ref(), None).await {
            Answer::Ok(_, v) => {
                let mut l = load.ledger();
                l.ack(kind);
                if let Some(s) = l.pool.get_mut(&sub) {
                    s.state = match target {
                        PoolState::Reserved { .. } => PoolState::Reserved {
                            token: v["reservationToken"].as_str().map(str::to_string),
                        },
                        t => t,
                    };
                    s.doubt = None;
                    s.changed = load.cycle;
                }
            }
            Answer::Refused(s, v) => {
                if s < 500 {
                    if let Some(slot) = load.ledger().pool.get_mut(&sub) {
                        slot.doubt = None;
                    }
                }
                load.refused(Some(kind), kind.name(), s, &v);
            }
            Answer::None(_) => return,
        }
        load.pause(&mut rng, 100).await;
    }
}

/// A member's name and token (when the answer brought one).
type Holder = (String, Option<String>);

/// Members of the Organization: add (a token is issued, and must work at once) or remove.
async fn members(load: Arc<Load>, mut rng: StdRng) {
    let mut n = 0u32;
    while !load.stopped() {
        let (active, unfinished, cut_short): (Vec<Holder>, Vec<String>, Vec<Holder>) = {
            let l = load.ledger();
            let active = l
                .members
                .iter()
                .filter(|(_, s)| s.doubt.is_none())
                .filter_map(|(k, s)| match &s.state {
                    MemberState::Active { token } => Some((k.clone(), token.clone())),
                    _ => None,
                })
                .collect();
            // Listed after an unanswered add, without a token: adding again must issue one.
            let unfinished = l
                .members
                .iter()
                .filter(|(_, s)| {
                    s.doubt.is_none() && s.state == MemberState::Active { token: None }
                })
                .map(|(k, _)| k.clone())
                .collect();
            // Listed with the token revoked after an unanswered remove: removing again finishes.
            let cut_short = l
                .members
                .iter()
                .filter(|(_, s)| s.doubt.is_none())
                .filter_map(|(k, s)| match &s.state {
                    MemberState::Revoked { token } => Some((k.clone(), token.clone())),
                    _ => None,
                })
                .collect();
            (active, unfinished, cut_short)
        };
        let add = unfinished.first().cloned().or_else(|| {
            (cut_short.is_empty() && (active.len() < 3 || rng.gen_bool(0.5))).then(|| {
                n += 1;
                format!("m{}x{}", load.prefix, n - 1)
            })
        });
        if let Some(name) = add {
            {
                let mut l = load.ledger();
                let slot = l
                    .members
                    .entry(name.clone())
                    .or_insert_with(|| Slot::new(MemberState::Absent, load.cycle));
                slot.doubt = Some(MemberState::Active { token: None });
            }
            let body = json!({"name": name, "role": "org-viewer"});
            match load
                .api
                .call(
                    Method::POST,
                    &format!("/api/v1/orgs/{ORG}/members"),
                    Some(&body),
                    None,
                )
                .await
            {
                Answer::Ok(_, v) => {
                    load.record_commits(&v);
                    let token = v["token"].as_str().map(str::to_string);
                    {
                        let mut l = load.ledger();
                        l.ack(Kind::MemberAdd);
                        if let Some(s) = l.members.get_mut(&name) {
                            s.state = MemberState::Active {
                                token: token.clone(),
                            };
                            s.doubt = None;
                            s.changed = load.cycle;
                        }
                    }
                    // The token works at once.
                    let probe = load
                        .api
                        .call(
                            Method::GET,
                            &format!("/api/v1/orgs/{ORG}/members"),
                            None,
                            token.as_deref(),
                        )
                        .await;
                    if let Answer::Refused(s, v) = probe {
                        load.ledger().live_violations.push(format!(
                            "member {name}: its new token was refused at once ({s} {v})"
                        ));
                    }
                }
                Answer::Refused(s, v) => {
                    if s < 500 {
                        if let Some(slot) = load.ledger().members.get_mut(&name) {
                            slot.doubt = None;
                        }
                    }
                    load.refused(Some(Kind::MemberAdd), "member add", s, &v);
                }
                Answer::None(_) => return,
            }
        } else {
            let (name, token) = match cut_short.first() {
                Some(c) => c.clone(),
                None => active[rng.gen_range(0..active.len())].clone(),
            };
            if let Some(s) = load.ledger().members.get_mut(&name) {
                s.doubt = Some(MemberState::Removed {
                    token: token.clone(),
                });
            }
            match load
                .api
                .call(
                    Method::DELETE,
                    &format!("/api/v1/orgs/{ORG}/members/{name}"),
                    None,
                    None,
                )
                .await
            {
                Answer::Ok(_, v) => {
                    load.record_commits(&v);
                    let mut l = load.ledger();
                    l.ack(Kind::MemberRemove);
                    if let Some(s) = l.members.get_mut(&name) {
                        s.state = MemberState::Removed { token };
                        s.doubt = None;
                        s.changed = load.cycle;
                    }
                }
                Answer::Refused(s, v) => {
                    // The token goes first: a refused removal may have revoked it (the member
                    // stays listed). The doubt stays for the checks to resolve.
                    load.refused(Some(Kind::MemberRemove), "member remove", s, &v);
                }
                Answer::None(_) => return,
            }
        }
        load.pause(&mut rng, 200).await;
    }
}
