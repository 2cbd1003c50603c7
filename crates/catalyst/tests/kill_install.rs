//! SIGKILL during a multi-repository install (issue 14): the real `catalyst serve` is killed at
//! randomized moments while it installs `bp-shop` (shop → api → db: three Application
//! repositories plus the Environment's Flux plumbing in `system/catalyst-config`, four
//! repositories moved by one call), restarted on the same data directory, and then every
//! install is all or nothing across its four repositories, an acknowledged install is never
//! lost, the read side agrees with Git, and `git fsck --strict` is clean.
//!
//! The seed is printed; `CATALYST_KILL_SEED=<n>` repeats a run's delays.
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::Catalyst;

const ORG: &str = "acme";
/// `bp-shop` 1.1.0 → `bp-api` → `bp-db`.
const CATALOG: &str = "crates/catalyst-gitops/testdata/catalog";
/// The Applications one install of `<app>` creates, with their Blueprints.
const PARTS: [(&str, &str); 3] = [("", "bp-shop"), ("-api", "bp-api"), ("-db", "bp-db")];
const CONFIG: &str = "system/catalyst-config";

fn start(data: &Path) -> Catalyst {
    Catalyst::start_with(
        data,
        &["--provisioner", "dry-run", "--catalog", CATALOG],
        |cmd| {
            cmd.current_dir(support::repo());
        },
    )
}

fn repo_dir(data: &Path, repo: &str) -> PathBuf {
    data.join("git").join(format!("{repo}.git"))
}

/// Read-only `git --git-dir <repo> ARGS…`: stdout when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn head(dir: &Path, branch: &str) -> Option<String> {
    if !dir.is_dir() {
        return None;
    }
    git(
        dir,
        &[
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}^{{commit}}"),
        ],
    )
    .map(|s| s.trim().to_owned())
}

/// The `Catalyst-Request-Id` trailer of `commit`.
fn request_id(dir: &Path, commit: &str) -> Option<String> {
    let body = git(dir, &["log", "-1", "--format=%B", commit])?;
    body.lines()
        .find_map(|l| l.strip_prefix("Catalyst-Request-Id: "))
        .map(|s| s.trim().to_owned())
}

/// The request id of the install of `app` (sent as `X-Request-Id`, kept as a trailer).
fn rid(app: &str) -> String {
    format!("kill-install-{app}")
}

/// One Application repository of an install, as found on disk.
#[derive(Debug, Clone)]
struct RepoSeen {
    name: String,
    blueprint: &'static str,
    /// The repository directory exists.
    exists: bool,
    /// The `develop` head, with its request id and the branch's length.
    head: Option<(String, Option<String>, usize)>,
    /// Blueprint named by `catalyst.yaml` at the head.
    blueprint_at_head: Option<String>,
}

/// What Git holds of the install of one Application: its three repositories and its part of
/// the Environment's plumbing in `system/catalyst-config` (at `main`).
#[derive(Debug, Clone)]
struct Seen {
    app: String,
    repos: Vec<RepoSeen>,
    /// `environments/acme-dev/{applications,sources}/<shard>/<part>.yaml` present at `main`.
    config_files: Vec<(String, bool)>,
    /// Commits on `main` carrying the install's request id.
    config_commits: usize,
    /// The install's journal is still in `git/.pending` (before a restart only).
    journal: bool,
}

impl Seen {
    /// The refs of the call (three Application branches and `main` of the config) that are at
    /// the install's commits.
    fn refs_moved(&self) -> usize {
        let id = rid(&self.app);
        self.repos
            .iter()
            .filter(|r| matches!(&r.head, Some((_, Some(i), _)) if *i == id))
            .count()
            + usize::from(self.config_commits > 0)
    }

    /// Anything of the call on disk: a repository directory, a moved ref, its journal.
    fn traces(&self) -> bool {
        self.journal || self.refs_moved() > 0 || self.repos.iter().any(|r| r.exists)
    }
}

fn observe(data: &Path, app: &str) -> Seen {
    let config = repo_dir(data, CONFIG);
    let id = rid(app);
    let repos = PARTS
        .iter()
        .map(|(suffix, blueprint)| {
            let name = format!("{app}{suffix}");
            let dir = repo_dir(data, &format!("{ORG}/{name}"));
            let head = head(&dir, "develop").map(|h| {
                let n = git(&dir, &["rev-list", "--count", &h])
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                let r = request_id(&dir, &h);
                (h, r, n)
            });
            let blueprint_at_head = head.as_ref().and_then(|(h, _, _)| {
                let doc = git(&dir, &["show", &format!("{h}:catalyst.yaml")])?;
                doc.lines()
                    .map(str::trim)
                    .find_map(|l| l.strip_prefix("name: bp-"))
                    .map(|n| format!("bp-{n}"))
            });
            RepoSeen {
                name,
                blueprint,
                exists: dir.exists(),
                head,
                blueprint_at_head,
            }
        })
        .collect();
    let mut config_files = Vec::new();
    for (suffix, _) in PARTS {
        for file in catalyst_gitops::plumbing::app_paths(&format!("{app}{suffix}")) {
            let path = format!("environments/{ORG}-dev/{file}");
            let present = git(&config, &["cat-file", "-e", &format!("main:{path}")]).is_some();
            config_files.push((path, present));
        }
    }
    // (Whole trailer lines: `kill-install-kill1` must not count `kill-install-kill10`'s.)
    let trailer = format!("Catalyst-Request-Id: {id}");
    let config_commits = git(&config, &["log", "--format=%x1e%B", "main"])
        .map(|log| {
            log.split('\x1e')
                .filter(|m| m.lines().any(|l| l.trim() == trailer))
                .count()
        })
        .unwrap_or(0);
    let journal = has_journal_of(&data.join("git/.pending"), app);
    Seen {
        app: app.to_owned(),
        repos,
        config_files,
        config_commits,
        journal,
    }
}

/// The verdict on one install after a restart: `Ok(true)` fully at the new commits,
/// `Ok(false)` fully at the old state (no trace), or what is wrong. `cards` are the App cards
/// of `acme-dev` (the read side, built only from the event log).
fn verdict(seen: &Seen, acked: bool, cards: &BTreeMap<String, Value>) -> Result<bool, Vec<String>> {
    let id = rid(&seen.app);
    let mut parts: Vec<(String, bool)> = seen
        .repos
        .iter()
        .map(|r| (format!("{ORG}/{} develop", r.name), r.head.is_some()))
        .collect();
    parts.extend(seen.config_files.iter().cloned());
    parts.push((
        format!("{CONFIG} main: a commit of request {id}"),
        seen.config_commits > 0,
    ));
    let installed = parts.iter().all(|(_, p)| *p);
    let absent = parts.iter().all(|(_, p)| !*p);
    let mut problems = Vec::new();
    if !installed && !absent {
        let have: Vec<&str> = parts
            .iter()
            .filter(|(_, p)| *p)
            .map(|(n, _)| n.as_str())
            .collect();
        let lack: Vec<&str> = parts
            .iter()
            .filter(|(_, p)| !*p)
            .map(|(n, _)| n.as_str())
            .collect();
        problems.push(format!(
            "{}: half an install: has {have:?}, lacks {lack:?}",
            seen.app
        ));
    }
    if seen.journal {
        problems.push(format!(
            "{}: its journal is still in git/.pending after the restart",
            seen.app
        ));
    }
    if installed {
        // Fully at the new commits: each branch is exactly the install's one commit, all of
        // the same call, the config's too; each Application has its card at its head.
        for r in &seen.repos {
            let (h, r_id, n) = r.head.clone().unwrap();
            if r_id.as_deref() != Some(id.as_str()) || n != 1 {
                problems.push(format!(
                    "{ORG}/{} develop is at {h} (request {r_id:?}, {n} commits), not the install's one commit",
                    r.name
                ));
            }
            if r.blueprint_at_head.as_deref() != Some(r.blueprint) {
                problems.push(format!(
                    "{ORG}/{}: catalyst.yaml names {:?}, not {}",
                    r.name, r.blueprint_at_head, r.blueprint
                ));
            }
            match cards.get(&r.name) {
                None => problems.push(format!(
                    "{}: in Git but no App card (its event was lost)",
                    r.name
                )),
                Some(c) if c["commit"].as_str() != Some(h.as_str()) => problems.push(format!(
                    "{}: card at {}, branch at {h}",
                    r.name, c["commit"]
                )),
                Some(_) => {}
            }
        }
        if seen.config_commits != 1 {
            problems.push(format!(
                "{CONFIG}: {} commits of request {id}",
                seen.config_commits
            ));
        }
    }
    if absent {
        if acked {
            problems.push(format!(
                "{}: the install was acknowledged (201) and is gone",
                seen.app
            ));
        }
        for r in &seen.repos {
            if cards.contains_key(&r.name) {
                problems.push(format!("{}: absent from Git but has an App card", r.name));
            }
            if r.exists {
                problems.push(format!(
                    "{ORG}/{}: an empty repository is left of an install that was undone",
                    r.name
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(installed)
    } else {
        Err(problems)
    }
}

/// `git fsck --strict` on `repos`: the failures.
fn fsck(dirs: &[PathBuf]) -> Vec<String> {
    let mut bad = Vec::new();
    for d in dirs.iter().filter(|d| d.exists()) {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(d)
            .args(["fsck", "--strict", "--no-progress", "--no-dangling"])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        if !out.status.success() {
            bad.push(format!(
                "git fsck --strict {}: {}{}",
                d.display(),
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    bad
}

fn app_dirs(data: &Path, app: &str) -> Vec<PathBuf> {
    PARTS
        .iter()
        .map(|(s, _)| repo_dir(data, &format!("{ORG}/{app}{s}")))
        .collect()
}

/// Every bare repository under `<data-dir>/git`.
fn all_repos(data: &Path) -> Vec<PathBuf> {
    let mut out = vec![repo_dir(data, CONFIG)];
    if let Ok(rd) = std::fs::read_dir(data.join("git").join(ORG)) {
        out.extend(rd.flatten().map(|e| e.path()));
    }
    out.sort();
    out
}

async fn cards(server: &Catalyst) -> BTreeMap<String, Value> {
    let (status, v) = server
        .get_json(&format!("/api/v1/orgs/{ORG}/applications?environment=dev"))
        .await;
    assert_eq!(status, 200, "{v}");
    v["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

/// The install of `app` sent straight to the server (not through the test's OpenAPI proxy,
/// which would count the killed connection as an answer): the status, or `None` when the
/// connection died first.
async fn install(port: u16, token: &str, app: &str) -> Option<u16> {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/v1/orgs/{ORG}/applications"))
        .bearer_auth(token)
        .header("x-request-id", rid(app))
        .json(&json!({"name": app, "environment": "dev", "blueprint": "bp-shop", "values": {"replicas": 2}}))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    r.bytes().await.ok()?;
    Some(status)
}

/// xorshift64*: the delays, repeatable from the printed seed.
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// When a kill is sent.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// This long after the install request was started.
    AfterSend(Duration),
    /// This long after the install's journal appeared in `git/.pending`.
    AfterJournal(Duration),
    /// Once the install was answered (a landing after the acknowledgement, whatever the load).
    Answered,
}

fn has_journal(pending: &Path) -> bool {
    std::fs::read_dir(pending)
        .map(|mut rd| rd.next().is_some())
        .unwrap_or(false)
}

/// True when `pending` holds the journal of `app`'s install (answered calls' journals stay
/// until the background thread has made what they wrote durable, so any journal will not do).
fn has_journal_of(pending: &Path, app: &str) -> bool {
    std::fs::read_dir(pending)
        .map(|rd| rd.flatten().any(|e| is_journal_of(&e.path(), app)))
        .unwrap_or(false)
}

/// True when the journal file at `path` is `app`'s install's: its first line (the JSON
/// document; the object bytes it carries follow) names the Application's repository.
fn is_journal_of(path: &Path, app: &str) -> bool {
    let needle = format!("\"{ORG}/{app}\"");
    std::fs::read(path).is_ok_and(|b| {
        let doc = b.split(|c| *c == b'\n').next().unwrap_or_default();
        doc.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

/// Polls `pending` (every 100 µs) until `app`'s journal is there: when it appeared, if it did
/// within `within`.
fn wait_for_journal(pending: &Path, app: &str, within: Duration) -> Option<Instant> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if has_journal_of(pending, app) {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Landed {
    /// Nothing of the call on disk when it died.
    Before,
    /// Repositories created or the journal written, no ref moved yet.
    Prepared,
    /// Some but not all of the four refs moved.
    Partial,
    /// All four refs moved, no answer yet (the restart finishes the call).
    Moved,
    /// 201 received before the kill.
    Acked,
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_multi_repository_installs_leaves_each_all_or_nothing() {
    let started = Instant::now();
    let seed = std::env::var("CATALYST_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill_install: seed {seed} (CATALYST_KILL_SEED={seed} repeats the delays)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data);
    server
        .organization(ORG, &[("dev", json!({"rules": []}))])
        .await;

    // How long one install takes on this machine, and how long from its journal appearing in
    // `git/.pending` (written before the first ref moves) to the answer: the window in which
    // refs move.
    let mut took = Duration::ZERO;
    let mut window = Duration::ZERO;
    for app in ["calib0", "calib1"] {
        let t = Instant::now();
        let pending = data.join("git/.pending");
        let watch = tokio::task::spawn_blocking(move || {
            wait_for_journal(&pending, app, Duration::from_secs(10))
        });
        assert_eq!(install(server.port, &server.admin, app).await, Some(201));
        let answered = Instant::now();
        took = took.max(t.elapsed());
        if let Some(at) = watch.await.unwrap() {
            window = window.max(answered.saturating_duration_since(at));
        }
    }
    eprintln!("kill_install: one install takes {took:?}, its refs move within {window:?}");
    let mut acked: BTreeMap<String, bool> = [("calib0", true), ("calib1", true)]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b))
        .collect();
    let mut landed: Vec<(String, String, Landed, bool)> = Vec::new();

    // Ten kills stratified over [0, 1.5) × the install's duration after the request is sent,
    // four at a random moment of the journal's window (where refs move), then extra kills only
    // while a kind of landing is still missing (mid-install: around the middle; after the
    // answer: once the install is answered).
    const SPREAD: usize = 10;
    const IN_WINDOW: usize = 4;
    const EXTRA: usize = 6;
    for i in 0..SPREAD + IN_WINDOW + EXTRA {
        let seen_mid = landed
            .iter()
            .any(|(_, _, l, _)| matches!(l, Landed::Prepared | Landed::Partial | Landed::Moved));
        let seen_ack = landed.iter().any(|(_, _, l, _)| *l == Landed::Acked);
        let kill = if i < SPREAD {
            Kill::AfterSend(took.mul_f64((i as f64 + rng.unit()) / SPREAD as f64 * 1.5))
        } else if i < SPREAD + IN_WINDOW {
            Kill::AfterJournal(window.mul_f64(1.2 * rng.unit()))
        } else if !seen_mid {
            Kill::AfterSend(took.mul_f64(0.3 + 0.5 * rng.unit()))
        } else if !seen_ack {
            Kill::Answered
        } else {
            break;
        };
        let app = format!("kill{i}");
        let port = server.port;
        let token = server.admin.clone();
        let name = app.clone();
        let pending = data.join("git/.pending");
        let app_name = app.clone();
        let mut call = Some(tokio::spawn(
            async move { install(port, &token, &name).await },
        ));
        let mut answered = None;
        let when = match kill {
            Kill::Answered => {
                answered = Some(call.take().unwrap().await.unwrap());
                "after the answer".to_owned()
            }
            Kill::AfterSend(d) => {
                tokio::time::sleep(d).await;
                format!("{d:?} after the request")
            }
            Kill::AfterJournal(d) => tokio::task::spawn_blocking(move || {
                let seen = wait_for_journal(&pending, &app_name, Duration::from_secs(10));
                std::thread::sleep(d);
                if seen.is_some() {
                    format!("{d:?} after its journal appeared")
                } else {
                    format!("{d:?} after no journal appeared")
                }
            })
            .await
            .unwrap(),
        };
        server.signal(nix::sys::signal::Signal::SIGKILL);
        server.wait_exit(Duration::from_secs(10));
        let status = match call {
            Some(call) => call.await.unwrap(),
            None => answered.flatten(),
        };
        let ok = matches!(status, Some(s) if (200..300).contains(&s));
        assert!(
            status.is_none() || ok,
            "{app}: the install was refused ({status:?}) before the kill"
        );
        // What the kill left, before the restart repairs anything.
        let before = observe(&data, &app);
        let kind = if ok {
            Landed::Acked
        } else if before.refs_moved() == 4 {
            Landed::Moved
        } else if before.refs_moved() > 0 {
            Landed::Partial
        } else if before.traces() {
            Landed::Prepared
        } else {
            Landed::Before
        };
        acked.insert(app.clone(), ok);
        drop(server);

        server = start(&data);
        let cards = cards(&server).await;
        let mut problems = Vec::new();
        let mut installed = false;
        for (a, was_acked) in &acked {
            match verdict(&observe(&data, a), *was_acked, &cards) {
                Ok(yes) => {
                    if *a == app {
                        installed = yes;
                    }
                }
                Err(p) => problems.extend(p),
            }
        }
        let mut dirs = app_dirs(&data, &app);
        dirs.push(repo_dir(&data, CONFIG));
        problems.extend(fsck(&dirs));
        if has_journal(&data.join("git/.pending")) {
            problems.push("git/.pending still holds a journal after the restart".into());
        }
        eprintln!(
            "kill_install: {app}: killed {when} ({kind:?}; before the restart {} of 4 refs moved) → {}",
            before.refs_moved(),
            if installed { "installed" } else { "not installed" }
        );
        assert!(
            problems.is_empty(),
            "after killing {app} {when} ({kind:?}, seed {seed}):\n{}\nbefore the restart: {before:#?}\nlog:\n{}",
            problems.join("\n"),
            server.log()
        );
        // The restart finishes a call whose refs all moved (and one whose journal and objects
        // were durable: the call was decided, see ARCHITECTURE.md), and a call that left
        // nothing stays absent; either way all or nothing (checked above).
        match kind {
            Landed::Moved | Landed::Acked => {
                assert!(installed, "{app}: {kind:?} but not installed")
            }
            Landed::Before => assert!(!installed, "{app}: {kind:?} but installed"),
            Landed::Prepared | Landed::Partial => {}
        }
        landed.push((app, when, kind, installed));
    }

    // The Environment keeps working after all that: one more install goes through.
    assert_eq!(
        install(server.port, &server.admin, "after").await,
        Some(201)
    );
    acked.insert("after".into(), true);
    let cards = cards(&server).await;
    // A clean shutdown makes the last call's ref moves durable and removes its journal.
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    let mut problems = Vec::new();
    for (a, was_acked) in &acked {
        if let Err(p) = verdict(&observe(&data, a), *was_acked, &cards) {
            problems.extend(p);
        }
    }
    problems.extend(fsck(&all_repos(&data)));
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let count = |k: &[Landed]| landed.iter().filter(|(_, _, l, _)| k.contains(l)).count();
    eprintln!(
        "kill_install: {} kills: {} before the call wrote anything, {} mid-install ({} prepared, {} with some refs moved, {} with all refs moved unanswered), {} after the answer; {:?}",
        landed.len(),
        count(&[Landed::Before]),
        count(&[Landed::Prepared, Landed::Partial, Landed::Moved]),
        count(&[Landed::Prepared]),
        count(&[Landed::Partial]),
        count(&[Landed::Moved]),
        count(&[Landed::Acked]),
        started.elapsed()
    );
    assert!(
        count(&[Landed::Prepared, Landed::Partial, Landed::Moved]) > 0,
        "no kill landed mid-install (seed {seed}): {landed:?}"
    );
    assert!(
        count(&[Landed::Acked]) > 0,
        "no kill landed after an acknowledged install (seed {seed}): {landed:?}"
    );

    // Negative control: the same checker flags half an install made by hand (one dependency's
    // branch deleted behind the server's back).
    let victim = acked
        .iter()
        .find(|(a, _)| matches!(verdict(&observe(&data, a), true, &cards), Ok(true)))
        .map(|(a, _)| a.clone())
        .unwrap();
    let db = repo_dir(&data, &format!("{ORG}/{victim}-db"));
    git(&db, &["update-ref", "-d", "refs/heads/develop"]).unwrap();
    let flagged = verdict(&observe(&data, &victim), true, &cards).unwrap_err();
    assert!(
        flagged.iter().any(|p| p.contains("half an install")),
        "{flagged:?}"
    );
}

/// The checker itself: an inconsistent state is never taken for a consistent one.
#[test]
fn the_checker_flags_half_installs_and_lost_acknowledgements() {
    let id = rid("x");
    let repo = |suffix: &str, bp: &'static str, at: bool| RepoSeen {
        name: format!("x{suffix}"),
        blueprint: bp,
        exists: at,
        head: at.then(|| (format!("c{suffix}"), Some(id.clone()), 1)),
        blueprint_at_head: at.then(|| bp.to_owned()),
    };
    let seen = |app: bool, api: bool, db: bool, config: bool| Seen {
        app: "x".into(),
        repos: vec![
            repo("", "bp-shop", app),
            repo("-api", "bp-api", api),
            repo("-db", "bp-db", db),
        ],
        config_files: PARTS
            .iter()
            .map(|(s, _)| {
                (
                    format!("environments/acme-dev/applications/x{s}.yaml"),
                    config,
                )
            })
            .collect(),
        config_commits: usize::from(config),
        journal: false,
    };
    let all_cards: BTreeMap<String, Value> = PARTS
        .iter()
        .map(|(s, _)| (format!("x{s}"), json!({"commit": format!("c{s}")})))
        .collect();
    let none = BTreeMap::new();
    assert_eq!(
        verdict(&seen(true, true, true, true), true, &all_cards),
        Ok(true)
    );
    assert_eq!(
        verdict(&seen(false, false, false, false), false, &none),
        Ok(false)
    );
    for (a, b, c, d) in [
        (true, true, true, false),
        (true, false, false, false),
        (false, true, true, true),
        (false, false, false, true),
    ] {
        let e = verdict(&seen(a, b, c, d), false, &all_cards).unwrap_err();
        assert!(e[0].contains("half an install"), "{e:?}");
    }
    // Acknowledged but gone; installed without its events; undone with cards left.
    assert!(verdict(&seen(false, false, false, false), true, &none).is_err());
    assert!(verdict(&seen(true, true, true, true), false, &none).is_err());
    assert!(verdict(&seen(false, false, false, false), false, &all_cards).is_err());
    // A branch at another call's commit is not the install's.
    let mut other = seen(true, true, true, true);
    other.repos[1].head = Some(("c-api".into(), Some("someone-else".into()), 1));
    assert!(verdict(&other, false, &all_cards).is_err());
}
