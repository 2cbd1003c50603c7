//! `git push` over smart HTTP: the receive-pack side, with the rules of the API.
//!
//! Protocol choice: the request is parsed here, in Rust — pkt-line commands (`old new ref\0caps`),
//! a flush, then the pack — and never handed to `git receive-pack`. The pack goes through
//! `git index-pack --stdin --fix-thin --strict` into a **quarantine** object directory inside the
//! repository (`catalyst-blobs-incoming-<nonce>`: `GIT_OBJECT_DIRECTORY` is the quarantine,
//! `GIT_ALTERNATE_OBJECT_DIRECTORIES` the repository's objects, so thin packs resolve); every
//! pushed commit is read from there (`ls-tree`, `cat-file --batch`) and checked; only when a
//! command is accepted are the pack files moved into `objects/pack` (index last), and the branch
//! moves through [`Sovereign::apply`] like any API write: a [`Write`] carrying the pushed
//! commit, compare-and-swap against the head it was checked against, the journal, the event on
//! the spine (`application.values-changed` / `application.upgraded`, the pusher as actor) and the
//! Environment's Flux plumbing. A killed push leaves only the quarantine directory, which
//! [`crate::Repo::clear_leftovers`] removes (it removes every `catalyst-blobs-*`).
//!
//! Rules, per command:
//! - only the env branches (`develop`, `uat`, `poc`, `staging`, `main`) of an Application that is
//!   installed there; no creation, no deletion, no non-fast-forward;
//! - `main` (prod) only when the prod Environment's EnvironmentPolicy has no unmet rule for the
//!   pushed commit (the promotion check: `catalyst app promote` is the way otherwise);
//! - each pushed commit (oldest first) is an API write of the same change: `catalyst.yaml`
//!   reads, names this Application and Environment; `values.yaml` and the overlay satisfy the
//!   configSchema; a new version is resolved, admitted and pinned exactly as `upgrade` does (and
//!   only in the push's last commit, and only when it moves no other Application); every
//!   generated file (`catalyst.yaml`, `kustomization.yaml`, `flux/*`, `CODEOWNERS`) must be what
//!   the API would write for those inputs, and no other file may appear;
//! - `system/catalyst-config` (the caller checks sovereign-admin): every resource is checked
//!   against its CRD (`catalyst-crds`), names match paths, EnvironmentPolicy rules validate, the
//!   Flux plumbing folders stay Catalyst's, one Organization per push; recorded with the kind
//!   the API's write of the same change records.
//!
//! A refusal is `ng <ref> <reason>` in report-status and, with `side-band-64k`, one
//! `<file>: <json-pointer>: <message>` line per problem on the progress channel (git prints
//! them as `remote: …`). Writers to one Organization are serialized by its lock, so a push and
//! an API write on one branch cannot both win.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::app::{self, AppDoc};
use crate::names::{env_name, AppName, EnvType, OrgName};
use crate::repo::{Repo, ZERO};
use crate::sovereign::{lock, parse_yaml, Call, Write, CONFIG_BRANCH, CONFIG_REPO};
use crate::{config, plumbing, policy, yaml, GitopsError, Sovereign, UpgradeRequest};

/// Capabilities the advertisement offers. No `delete-refs`: env branches are never deleted.
pub const CAPABILITIES: &str = "report-status side-band-64k quiet atomic ofs-delta agent=catalyst";
/// Most commits one push may carry per branch.
const MAX_COMMITS: usize = 100;
/// Largest file a pushed tree may hold.
const MAX_FILE: usize = 1024 * 1024;

/// One command of a push: move `refname` from `old` to `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushCommand {
    /// What the client believes the ref is at (`ZERO`: absent).
    pub old: String,
    /// Where it should move (`ZERO`: delete).
    pub new: String,
    /// `refs/heads/develop`.
    pub refname: String,
}

/// A parsed receive-pack request.
#[derive(Debug)]
pub struct PushRequest<'a> {
    /// The commands, in order.
    pub commands: Vec<PushCommand>,
    /// The capabilities the client asked for (on the first command).
    pub caps: BTreeSet<String>,
    /// The pack (may be empty).
    pub pack: &'a [u8],
}

fn bad(what: impl Into<String>) -> GitopsError {
    GitopsError::Invalid(format!(
        "malformed git-receive-pack request: {}",
        what.into()
    ))
}

fn is_oid(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Parses `pkt-line* flush pack`.
pub fn parse_request(body: &[u8]) -> Result<PushRequest<'_>, GitopsError> {
    let mut at = 0;
    let mut commands = Vec::new();
    let mut caps = BTreeSet::new();
    loop {
        let Some(len) = body.get(at..at + 4) else {
            return Err(bad("the command list has no flush"));
        };
        let len = std::str::from_utf8(len)
            .ok()
            .and_then(|l| usize::from_str_radix(l, 16).ok())
            .ok_or_else(|| bad("a pkt-line length is not hex"))?;
        if len == 0 {
            at += 4;
            break;
        }
        if len < 4 || at + len > body.len() {
            return Err(bad("a pkt-line length is out of range"));
        }
        let line = &body[at + 4..at + len];
        at += len;
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let (cmd, cap) = match line.iter().position(|b| *b == 0) {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        let cmd = std::str::from_utf8(cmd).map_err(|_| bad("a command is not UTF-8"))?;
        if cmd.starts_with("shallow ") || cmd.starts_with("push-cert") {
            return Err(bad("shallow pushes and signed pushes are not accepted"));
        }
        let mut parts = cmd.splitn(3, ' ');
        let (Some(old), Some(new), Some(refname)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("a command is not `old new ref`"));
        };
        if !is_oid(old) || !is_oid(new) || refname.is_empty() || refname.len() > 255 {
            return Err(bad("a command is not `old new ref`"));
        }
        if let (Some(cap), true) = (cap, commands.is_empty()) {
            caps = String::from_utf8_lossy(cap)
                .split(' ')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
        }
        commands.push(PushCommand {
            old: old.to_owned(),
            new: new.to_owned(),
            refname: refname.to_owned(),
        });
        if commands.len() > 64 {
            return Err(bad("more than 64 commands"));
        }
    }
    if commands.is_empty() {
        return Err(bad("no command"));
    }
    Ok(PushRequest {
        commands,
        caps,
        pack: &body[at..],
    })
}

/// One pkt-line of `data`.
fn pkt(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:04x}", data.len() + 4).as_bytes());
    out.extend_from_slice(data);
}

/// A command refused: the short reason for `ng`, the lines for the pusher's terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `ng <ref> <reason>`.
    pub reason: String,
    /// `<file>: <json-pointer>: <message>` each.
    pub lines: Vec<String>,
}

impl Refusal {
    fn new(reason: &str, line: String) -> Refusal {
        Refusal {
            reason: reason.to_owned(),
            lines: vec![line],
        }
    }
}

/// What a command came to.
type Outcome = Result<(), Refusal>;

/// A command judged: the write that makes it and its event kind, or why not.
type Judged = Result<(Write, &'static str), Refusal>;

/// The response body: the problems on band 2, report-status on band 1 (with `side-band-64k`),
/// else report-status alone.
fn response(caps: &BTreeSet<String>, unpack: &str, results: &[(String, Outcome)]) -> Vec<u8> {
    let mut status = Vec::new();
    pkt(&mut status, format!("unpack {unpack}\n").as_bytes());
    for (r, o) in results {
        match o {
            Ok(()) => pkt(&mut status, format!("ok {r}\n").as_bytes()),
            Err(e) => pkt(&mut status, format!("ng {r} {}\n", e.reason).as_bytes()),
        }
    }
    status.extend_from_slice(b"0000");
    let report = caps.contains("report-status");
    if !caps.contains("side-band-64k") && !caps.contains("side-band") {
        return if report { status } else { Vec::new() };
    }
    let max = if caps.contains("side-band-64k") {
        65515
    } else {
        995
    };
    let mut out = Vec::new();
    for (r, o) in results {
        if let Err(e) = o {
            for l in &e.lines {
                let mut msg = format!("{l}\n").into_bytes();
                msg.truncate(max);
                let mut d = vec![2u8];
                d.extend_from_slice(&msg);
                pkt(&mut out, &d);
            }
            let mut d = vec![2u8];
            d.extend_from_slice(format!("{r}: refused ({})\n", e.reason).as_bytes());
            pkt(&mut out, &d);
        }
    }
    if report {
        for chunk in status.chunks(max) {
            let mut d = vec![1u8];
            d.extend_from_slice(chunk);
            pkt(&mut out, &d);
        }
    }
    out.extend_from_slice(b"0000");
    out
}

/// The objects of a push, outside the repository until they are accepted.
struct Quarantine {
    repo: PathBuf,
    dir: PathBuf,
}

impl Drop for Quarantine {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One file of a pushed tree.
struct Entry {
    mode: String,
    kind: String,
    bytes: Vec<u8>,
}

impl Quarantine {
    fn new(repo: &Path) -> Result<Quarantine, GitopsError> {
        let dir = repo.join(format!(
            "catalyst-blobs-incoming-{}",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        std::fs::create_dir_all(dir.join("pack"))?;
        std::fs::create_dir_all(dir.join("info"))?;
        Ok(Quarantine {
            repo: repo.to_path_buf(),
            dir,
        })
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("git");
        c.arg("--git-dir")
            .arg(&self.repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OBJECT_DIRECTORY", &self.dir)
            .env(
                "GIT_ALTERNATE_OBJECT_DIRECTORIES",
                self.repo.join("objects"),
            )
            .env_remove("GIT_INDEX_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, String> {
        let mut c = self.cmd();
        c.args(args);
        if input.is_some() {
            c.stdin(Stdio::piped());
        }
        let mut child = c.spawn().map_err(|e| format!("cannot run git: {e}"))?;
        let feeder = match (input, child.stdin.take()) {
            (Some(bytes), Some(mut stdin)) => {
                let bytes = bytes.to_vec();
                Some(std::thread::spawn(move || {
                    let _ = stdin.write_all(&bytes);
                }))
            }
            _ => None,
        };
        let out = child
            .wait_with_output()
            .map_err(|e| format!("git {}: {e}", args[0]))?;
        if let Some(f) = feeder {
            let _ = f.join();
        }
        if !out.status.success() {
            return Err(format!(
                "git {}: {}",
                args[0],
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(out.stdout)
    }

    /// Stores the pack (thin packs completed from the repository), checking every object.
    fn index(&self, pack: &[u8]) -> Result<(), String> {
        if pack.is_empty() {
            return Ok(());
        }
        self.run(
            &["index-pack", "--stdin", "--fix-thin", "--strict"],
            Some(pack),
        )
        .map(|_| ())
    }

    /// True when `ancestor` is `rev` or one of its ancestors.
    fn is_ancestor(&self, ancestor: &str, rev: &str) -> bool {
        self.run(&["merge-base", "--is-ancestor", ancestor, rev], None)
            .is_ok()
    }

    /// The commits of `new` not in `old`, oldest first: (id, commit time, subject).
    fn commits(&self, old: &str, new: &str) -> Result<Vec<(String, i64, String)>, String> {
        let out = self.run(
            &[
                "log",
                "--no-decorate",
                "--format=%H%x00%ct%x00%s",
                &format!("-n{}", MAX_COMMITS + 1),
                new,
                &format!("^{old}"),
                "--",
            ],
            None,
        )?;
        let mut v: Vec<(String, i64, String)> = String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| {
                let mut p = l.splitn(3, '\0');
                Some((
                    p.next()?.to_owned(),
                    p.next()?.parse().ok()?,
                    p.next().unwrap_or_default().to_owned(),
                ))
            })
            .collect();
        v.reverse();
        Ok(v)
    }

    /// Every file of `rev`'s tree with its mode and content.
    fn tree(&self, rev: &str) -> Result<BTreeMap<String, Entry>, String> {
        let out = self.run(&["ls-tree", "-r", "-z", "--full-tree", rev], None)?;
        let mut listed = Vec::new();
        for rec in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let rec = String::from_utf8_lossy(rec);
            let Some((meta, path)) = rec.split_once('\t') else {
                continue;
            };
            let mut m = meta.split(' ');
            let (Some(mode), Some(kind), Some(oid)) = (m.next(), m.next(), m.next()) else {
                continue;
            };
            listed.push((
                path.to_owned(),
                mode.to_owned(),
                kind.to_owned(),
                oid.to_owned(),
            ));
        }
        let input: String = listed
            .iter()
            .filter(|(_, _, k, _)| k == "blob")
            .map(|(_, _, _, o)| format!("{o}\n"))
            .collect();
        let blobs = self.run(&["cat-file", "--batch"], Some(input.as_bytes()))?;
        let mut at = 0;
        let mut files = BTreeMap::new();
        for (path, mode, kind, _) in listed {
            let mut bytes = Vec::new();
            if kind == "blob" {
                let nl = blobs[at..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .ok_or("short cat-file output")?;
                let header = String::from_utf8_lossy(&blobs[at..at + nl]).into_owned();
                at += nl + 1;
                let size: usize = header
                    .rsplit(' ')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("{path}: object missing"))?;
                bytes = blobs
                    .get(at..at + size)
                    .ok_or("short cat-file output")?
                    .to_vec();
                at += size + 1;
            }
            files.insert(path, Entry { mode, kind, bytes });
        }
        Ok(files)
    }

    /// Moves the pack files into the repository (each index after its pack, so no index ever
    /// names a pack that is not there).
    fn migrate(&self) -> Result<(), GitopsError> {
        let to = self.repo.join("objects").join("pack");
        std::fs::create_dir_all(&to)?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("pack"))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("tmp_"))
            })
            .collect();
        files.sort_by_key(|p| p.extension().is_some_and(|x| x == "idx"));
        for f in &files {
            if let Some(name) = f.file_name() {
                std::fs::rename(f, to.join(name))?;
            }
        }
        if !files.is_empty() {
            std::fs::File::open(&to)?.sync_all()?;
        }
        Ok(())
    }
}

/// Which repository a push goes to.
enum Target {
    App(OrgName, AppName),
    Config,
}

/// `flux/helmrelease.yaml` etc.: files Catalyst generates (compared with what it would write).
fn is_input(path: &str, env: EnvType) -> bool {
    path == "values.yaml" || path == format!("overlays/{env}/values.yaml")
}

/// The first place two documents differ: (JSON pointer, pushed, generated).
fn first_difference(pushed: &Value, want: &Value, at: String) -> Option<(String, Value, Value)> {
    match (pushed, want) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => first_difference(x, y, p),
                    (x, y) => Some((
                        p,
                        x.cloned().unwrap_or(Value::Null),
                        y.cloned().unwrap_or(Value::Null),
                    )),
                }
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, format!("{at}/{i}"))),
        _ if pushed == want => None,
        _ => Some((
            if at.is_empty() { "/".into() } else { at },
            pushed.clone(),
            want.clone(),
        )),
    }
}

fn short(v: &Value) -> String {
    let mut s = if v.is_null() {
        "absent".to_owned()
    } else {
        v.to_string()
    };
    if s.len() > 120 {
        let mut cut = 117;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// The pushed tree against the files the API would write (`want`); `inputs` are not compared
/// (they are what `want` was made from).
fn compare(
    pushed: &BTreeMap<String, Entry>,
    want: &BTreeMap<String, Vec<u8>>,
    inputs: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, e) in pushed {
        if e.kind != "blob" || e.mode != "100644" {
            problems.push(format!(
                "{path}: /: only regular files (mode 100644) are accepted"
            ));
            continue;
        }
        if !want.contains_key(path) {
            problems.push(format!(
                "{path}: /: not a file of this repository; Catalyst writes only {}",
                want.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for (path, bytes) in want {
        let Some(e) = pushed.get(path) else {
            problems.push(format!("{path}: /: missing; Catalyst writes it"));
            continue;
        };
        if inputs(path) || e.bytes == *bytes {
            continue;
        }
        if !path.ends_with(".yaml") {
            problems.push(format!(
                "{path}: /: must stay as Catalyst writes it ({})",
                short(&json!(String::from_utf8_lossy(bytes)))
            ));
            continue;
        }
        let generated = yaml::parse(&String::from_utf8_lossy(bytes)).unwrap_or(Value::Null);
        match yaml::parse(&String::from_utf8_lossy(&e.bytes)) {
            Err(err) => problems.push(format!("{path}: /: not YAML: {err}")),
            Ok(v) => {
                if let Some((p, is, should)) = first_difference(&v, &generated, String::new()) {
                    problems.push(format!(
                        "{path}: {p}: is {}, Catalyst generates {} for this catalyst.yaml and these values",
                        short(&is),
                        short(&should)
                    ));
                }
            }
        }
    }
    problems
}

/// A values document of a pushed tree (`{}` when absent or empty).
fn values_of(tree: &BTreeMap<String, Entry>, path: &str) -> Result<Value, String> {
    let Some(e) = tree.get(path) else {
        return Ok(json!({}));
    };
    match yaml::parse(&String::from_utf8_lossy(&e.bytes)) {
        Ok(Value::Null) => Ok(json!({})),
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(format!("{path}: /: must be a mapping")),
        Err(err) => Err(format!("{path}: /: not YAML: {err}")),
    }
}

/// A write-path error of a pushed change as the pusher's problem lines (`None`: not the
/// pusher's fault — an internal failure).
fn problems_of(e: &GitopsError, overlay: &Value, env: EnvType) -> Option<Vec<String>> {
    Some(match e {
        GitopsError::InvalidValues(ps) => ps
            .iter()
            .map(|p| {
                let file = if p.pointer != "/" && overlay.pointer(&p.pointer).is_some() {
                    format!("overlays/{env}/values.yaml")
                } else {
                    "values.yaml".to_owned()
                };
                format!("{file}: {}: {}", p.pointer, p.message)
            })
            .collect(),
        GitopsError::Untrusted { .. } => vec![format!("catalyst.yaml: /spec/blueprint: {e}")],
        GitopsError::Resolve(_)
        | GitopsError::DependencyMismatch(_)
        | GitopsError::Invalid(_)
        | GitopsError::NotFound(_)
        | GitopsError::AlreadyExists(_)
        | GitopsError::Name(_) => vec![format!("catalyst.yaml: /spec/blueprint/version: {e}")],
        _ => return None,
    })
}

impl Sovereign {
    fn target(&self, org: &str, repo: &str) -> Result<(Target, Repo), GitopsError> {
        let name = repo.strip_suffix(".git").unwrap_or(repo);
        let (t, r) = if org == "system" && name == "catalyst-config" {
            (Target::Config, self.config())
        } else {
            let (o, a) = (OrgName::parse(org)?, AppName::parse(name)?);
            let r = self.app_repo(&o, &a);
            (Target::App(o, a), r)
        };
        if !r.exists() {
            return Err(GitopsError::NotFound(format!("repository {org}/{name}")));
        }
        Ok((t, r))
    }

    /// The ref advertisement of `git-receive-pack` for `<org>/<repo>` (without the smart HTTP
    /// `# service=` header).
    pub fn receive_pack_refs(&self, org: &str, repo: &str) -> Result<Vec<u8>, GitopsError> {
        let (_, r) = self.target(org, repo)?;
        let mut out = Vec::new();
        let branches = r.branches()?;
        if branches.is_empty() {
            pkt(
                &mut out,
                format!("{ZERO} capabilities^{{}}\0{CAPABILITIES}\n").as_bytes(),
            );
        }
        for (i, (b, c)) in branches.iter().enumerate() {
            let line = if i == 0 {
                format!("{c} refs/heads/{b}\0{CAPABILITIES}\n")
            } else {
                format!("{c} refs/heads/{b}\n")
            };
            pkt(&mut out, line.as_bytes());
        }
        out.extend_from_slice(b"0000");
        Ok(out)
    }

    /// Serves one `git-receive-pack` request (`body`, gunzipped) to `<org>/<repo>` for the
    /// caller of `call`, who is already authorized to write there (org-developer and above for
    /// an Application repository, sovereign-admin for `system/catalyst-config`). Returns the
    /// response body; `Err` only for a malformed request, a missing repository or an internal
    /// failure before any command was judged.
    pub fn receive_pack(
        &self,
        call: &Call,
        org: &str,
        repo: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, GitopsError> {
        let req = parse_request(body)?;
        let (target, r) = self.target(org, repo)?;
        let q = Quarantine::new(r.path())?;
        if let Err(e) = q.index(req.pack) {
            tracing::info!(repository = %r.path().display(), error = %e, "A pushed pack was refused.");
            let results: Vec<(String, Outcome)> = req
                .commands
                .iter()
                .map(|c| {
                    (
                        c.refname.clone(),
                        Err(Refusal::new("unpacker error", format!("pack: /: {e}"))),
                    )
                })
                .collect();
            let unpack = e.replace('\n', " ");
            return Ok(response(&req.caps, &unpack, &results));
        }
        let atomic = req.caps.contains("atomic") && req.commands.len() > 1;
        let results = match target {
            Target::App(o, a) => self.push_app(call, &q, &o, &a, &req.commands, atomic)?,
            Target::Config => self.push_config(call, &q, &req.commands)?,
        };
        Ok(response(&req.caps, "ok", &results))
    }

    /// The commands to an Application repository.
    fn push_app(
        &self,
        call: &Call,
        q: &Quarantine,
        org: &OrgName,
        app: &AppName,
        commands: &[PushCommand],
        atomic: bool,
    ) -> Result<Vec<(String, Outcome)>, GitopsError> {
        let ol = self.org_lock(org);
        let _o = lock(&ol);
        let mut checked: Vec<(String, Judged)> = Vec::new();
        for c in commands {
            let res = self.check_app(call, q, org, app, c)?;
            checked.push((c.refname.clone(), res));
        }
        let failed = checked.iter().any(|(_, r)| r.is_err());
        if atomic && failed {
            return Ok(checked
                .into_iter()
                .map(|(r, o)| {
                    let o = match o {
                        Ok(_) => Err(Refusal::new(
                            "atomic push failed",
                            format!(
                                "{r}: /: not moved: another ref of this atomic push is refused"
                            ),
                        )),
                        Err(e) => Err(e),
                    };
                    (r, o)
                })
                .collect());
        }
        if checked.iter().any(|(_, r)| r.is_ok()) {
            q.migrate()?;
        }
        let subject = format!("{org}/{app}");
        let mut out = Vec::new();
        if atomic {
            let mut writes = Vec::new();
            let mut kind = "application.values-changed";
            let mut refs = Vec::new();
            for (r, o) in checked {
                if let Ok((w, k)) = o {
                    if k == "application.upgraded" {
                        kind = k;
                    }
                    writes.push(w);
                    refs.push(r);
                }
            }
            let res: Outcome = match self.apply(writes, call, (kind, org, &subject)) {
                Ok(_) => Ok(()),
                Err(e) => applied(e, "atomic")?,
            };
            for r in refs {
                out.push((r, res.clone()));
            }
            return Ok(out);
        }
        for (r, o) in checked {
            let res = match o {
                Err(e) => Err(e),
                Ok((w, kind)) => {
                    let branch = w.branch.clone();
                    match self.apply(vec![w], call, (kind, org, &subject)) {
                        Ok(_) => Ok(()),
                        Err(e) => applied(e, &branch)?,
                    }
                }
            };
            out.push((r, res));
        }
        Ok(out)
    }

    /// Judges one command to an Application repository: the write that makes it, or why not.
    /// The caller holds the Organization's lock.
    fn check_app(
        &self,
        call: &Call,
        q: &Quarantine,
        org: &OrgName,
        app: &AppName,
        c: &PushCommand,
    ) -> Result<Judged, GitopsError> {
        let branch = c.refname.strip_prefix("refs/heads/").unwrap_or("");
        let Some(env) = EnvType::ALL.into_iter().find(|e| e.branch() == branch) else {
            let branches: Vec<&str> = EnvType::ALL.iter().map(|e| e.branch()).collect();
            return Ok(Err(Refusal::new(
                "unknown branch",
                format!(
                    "{}: /: only the env branches ({}) are accepted",
                    c.refname,
                    branches.join(", ")
                ),
            )));
        };
        if c.new == ZERO {
            return Ok(Err(Refusal::new(
                "deletion refused",
                format!("{branch}: /: env branches are never deleted; use `catalyst app uninstall {app} --env {env}`"),
            )));
        }
        let repo = self.app_repo(org, app);
        let head = repo.head(branch)?;
        let Some(head) = head else {
            return Ok(Err(Refusal::new(
                "not installed",
                format!("{branch}: /: {app} is not installed in {}; use `catalyst app install` (or promote)", env_name(org, env)),
            )));
        };
        if c.old != head {
            return Ok(Err(Refusal::new(
                "non-fast-forward",
                format!("{branch}: /: the branch moved to {head} since you fetched; fetch, rebase and push again"),
            )));
        }
        if !q.is_ancestor(&head, &c.new) {
            return Ok(Err(Refusal::new(
                "non-fast-forward",
                format!("{branch}: /: force pushes are refused; fetch, rebase onto {head} and push again"),
            )));
        }
        // The Environment exists: the Application is installed on its branch, and an
        // Environment with Applications is never deleted (API or push).
        let commits = q.commits(&head, &c.new).map_err(GitopsError::Git)?;
        if commits.len() > MAX_COMMITS {
            return Ok(Err(Refusal::new(
                "too many commits",
                format!("{branch}: /: at most {MAX_COMMITS} commits per push"),
            )));
        }
        let Some((tip, tip_time, tip_subject)) = commits.last().cloned() else {
            return Ok(Err(Refusal::new(
                "nothing to push",
                format!("{branch}: /: {} is already on {branch}", c.new),
            )));
        };
        if env == EnvType::Prod {
            let p = self.promotion_at(org, app, &tip, tip_time, env)?;
            if let Some((rule, detail)) = p.unmet {
                return Ok(Err(Refusal::new(
                    &format!("policy-unmet: {rule}"),
                    format!(
                        "{branch}: /: EnvironmentPolicy rule {rule} of {} is not met: {detail}; move {app} into prod with `catalyst app promote {app} --org {org} --from <env> --to prod` (and `catalyst app approve` where the policy asks)",
                        env_name(org, env)
                    ),
                )));
            }
        }
        let Some(mut prev) = self.app_doc_at(org, app, env, &head)? else {
            return Ok(Err(Refusal::new(
                "not installed",
                format!(
                    "{branch}: /: {app} is not installed in {}",
                    env_name(org, env)
                ),
            )));
        };
        let mut kind = "application.values-changed";
        for (i, (commit, _, _)) in commits.iter().enumerate() {
            let last = i + 1 == commits.len();
            let tree = q.tree(commit).map_err(GitopsError::Git)?;
            match self.check_app_tree(org, app, env, &prev, &tree, last)? {
                Ok((doc, k)) => {
                    if k == "application.upgraded" {
                        kind = k;
                    }
                    prev = doc;
                }
                Err(lines) => {
                    let lines = lines
                        .into_iter()
                        .map(|l| format!("{l} (commit {})", &commit[..12]))
                        .collect();
                    return Ok(Err(Refusal {
                        reason: "invalid change".into(),
                        lines,
                    }));
                }
            }
        }
        let w = Write {
            name: format!("{org}/{app}"),
            repo: repo.clone(),
            branch: branch.to_owned(),
            changes: Default::default(),
            // The plumbing reads `catalyst.yaml` from `tree`; a values change leaves it (and so
            // the plumbing) as it was, so none is given and the plumbing is not rewritten.
            tree: (kind == "application.upgraded").then(|| c.new.clone()),
            commit: Some(c.new.clone()),
            subject: format!(
                "Push to {app} in {} by {}: {tip_subject}",
                env_name(org, env),
                call.actor.name
            ),
            primary: true,
        };
        Ok(Ok((w, kind)))
    }

    /// One pushed tree against what the API would write after `prev` (the Application at the
    /// commit's parent): the new document and the kind of change, or the problems.
    #[allow(clippy::type_complexity)]
    fn check_app_tree(
        &self,
        org: &OrgName,
        app: &AppName,
        env: EnvType,
        prev: &AppDoc,
        tree: &BTreeMap<String, Entry>,
        last: bool,
    ) -> Result<Result<(AppDoc, &'static str), Vec<String>>, GitopsError> {
        if let Some((p, _)) = tree.iter().find(|(_, e)| e.bytes.len() > MAX_FILE) {
            return Ok(Err(vec![format!("{p}: /: larger than {MAX_FILE} bytes")]));
        }
        let Some(doc) = tree.get("catalyst.yaml") else {
            return Ok(Err(vec![format!(
                "catalyst.yaml: /: missing; an Application's branch keeps it (uninstall with `catalyst app uninstall`)"
            )]));
        };
        let doc = match yaml::parse(&String::from_utf8_lossy(&doc.bytes)) {
            Ok(v) => v,
            Err(e) => return Ok(Err(vec![format!("catalyst.yaml: /: not YAML: {e}")])),
        };
        let mut problems = Vec::new();
        for (p, want) in [
            ("/metadata/name", app.as_str().to_owned()),
            ("/spec/organization", org.to_string()),
            ("/spec/environment", env_name(org, env)),
        ] {
            if doc.pointer(p).and_then(Value::as_str) != Some(want.as_str()) {
                problems.push(format!("catalyst.yaml: {p}: must be {want:?}"));
            }
        }
        let new = match AppDoc::from_resource(&doc, env) {
            Ok(d) => Some(d),
            Err(e) => {
                problems.push(format!(
                    "catalyst.yaml: /spec: {}",
                    e.to_string().replace("stored document is unreadable: ", "")
                ));
                None
            }
        };
        let overlay_path = format!("overlays/{env}/values.yaml");
        let base = values_of(tree, "values.yaml");
        let overlay = values_of(tree, &overlay_path);
        let (Some(new), Ok(base), Ok(overlay)) = (new, base.clone(), overlay.clone()) else {
            problems.extend(base.err());
            problems.extend(overlay.err());
            return Ok(Err(problems));
        };
        if !problems.is_empty() {
            return Ok(Err(problems));
        }
        if new.blueprint != prev.blueprint {
            return Ok(Err(vec![format!(
                "catalyst.yaml: /spec/blueprint/name: an Application keeps its Blueprint ({}); install another Application instead",
                prev.blueprint
            )]));
        }
        let (want, kind) = if new.version != prev.version {
            if !last {
                return Ok(Err(vec![format!(
                    "catalyst.yaml: /spec/blueprint/version: an upgrade must be the last commit of a push"
                )]));
            }
            let req = UpgradeRequest {
                app: app.clone(),
                env,
                version: format!("={}", new.version),
                use_existing: BTreeMap::new(),
                dependency_values: BTreeMap::new(),
                with_dependencies: false,
            };
            let writes = match self.upgrade_writes(org, &req, Some((&base, &overlay))) {
                Ok(w) => w,
                Err(e) => {
                    return problems_of(&e, &overlay, env).map(Err).ok_or(e);
                }
            };
            if writes.len() != 1 {
                let others: Vec<&str> = writes[..writes.len() - 1]
                    .iter()
                    .map(|w| w.name.as_str())
                    .collect();
                return Ok(Err(vec![format!(
                    "catalyst.yaml: /spec/blueprint/version: {} {} also writes {}; use `catalyst app upgrade {app} --org {org} --env {env} --version {}`",
                    new.blueprint,
                    new.version,
                    others.join(", "),
                    new.version
                )]));
            }
            let files: BTreeMap<String, Vec<u8>> = writes[0]
                .changes
                .files
                .iter()
                .filter_map(|(p, b)| Some((p.clone(), b.clone()?)))
                .collect();
            (files, "application.upgraded")
        } else {
            let schema = match self.schema_of(org, prev) {
                Ok(s) => s,
                Err(e) => return problems_of(&e, &overlay, env).map(Err).ok_or(e),
            };
            match app::files(prev, &base, &overlay, schema.as_ref(), &self.render) {
                Ok(f) => (f, "application.values-changed"),
                Err(e) => return problems_of(&e, &overlay, env).map(Err).ok_or(e),
            }
        };
        let problems = compare(tree, &want, |p| is_input(p, env));
        if !problems.is_empty() {
            return Ok(Err(problems));
        }
        let doc = match want.get("catalyst.yaml") {
            Some(b) => AppDoc::from_resource(&parse_yaml(b, "catalyst.yaml")?, env)?,
            None => new,
        };
        Ok(Ok((doc, kind)))
    }

    /// The commands to `system/catalyst-config` (the caller checked sovereign-admin).
    fn push_config(
        &self,
        call: &Call,
        q: &Quarantine,
        commands: &[PushCommand],
    ) -> Result<Vec<(String, Outcome)>, GitopsError> {
        let mut out = Vec::new();
        for c in commands {
            let res = self.push_config_one(call, q, c)?;
            out.push((c.refname.clone(), res));
        }
        Ok(out)
    }

    fn push_config_one(
        &self,
        call: &Call,
        q: &Quarantine,
        c: &PushCommand,
    ) -> Result<Outcome, GitopsError> {
        let refuse = |reason: &str, line: String| Ok(Err(Refusal::new(reason, line)));
        if c.refname != format!("refs/heads/{CONFIG_BRANCH}") {
            return refuse(
                "unknown branch",
                format!(
                    "{}: /: system/catalyst-config has only {CONFIG_BRANCH}",
                    c.refname
                ),
            );
        }
        if c.new == ZERO {
            return refuse(
                "deletion refused",
                format!("{CONFIG_BRANCH}: /: never deleted"),
            );
        }
        let config = self.config();
        let Some(head) = config.head(CONFIG_BRANCH)? else {
            return refuse("no branch", format!("{CONFIG_BRANCH}: /: not created yet"));
        };
        if c.old != head || !q.is_ancestor(&head, &c.new) {
            return refuse(
                "non-fast-forward",
                format!("{CONFIG_BRANCH}: /: force pushes are refused; fetch, rebase onto {head} and push again"),
            );
        }
        let commits = q.commits(&head, &c.new).map_err(GitopsError::Git)?;
        if commits.is_empty() || commits.len() > MAX_COMMITS {
            return refuse(
                "invalid change",
                format!("{CONFIG_BRANCH}: /: push 1 to {MAX_COMMITS} new commits"),
            );
        }
        let old = q.tree(&head).map_err(GitopsError::Git)?;
        let new = q.tree(&c.new).map_err(GitopsError::Git)?;
        // The one Organization the push changes (found before its lock is taken, checked again
        // under it: the head must still be `old`).
        let changed: BTreeSet<&String> = old
            .keys()
            .chain(new.keys())
            .filter(|p| old.get(*p).map(|e| &e.bytes) != new.get(*p).map(|e| &e.bytes))
            .collect();
        let mut orgs = BTreeSet::new();
        for p in &changed {
            match org_of_path(p) {
                Some(o) => {
                    orgs.insert(o);
                }
                None => {
                    return refuse(
                        "invalid change",
                        format!("{p}: /: not a file of system/catalyst-config (organizations/, environments/, policies/, approvals/)"),
                    )
                }
            }
        }
        if orgs.len() != 1 {
            return refuse(
                "invalid change",
                format!(
                    "{CONFIG_BRANCH}: /: a push changes exactly one Organization (this one changes {})",
                    if orgs.is_empty() { "none".to_owned() } else { orgs.iter().cloned().collect::<Vec<_>>().join(", ") }
                ),
            );
        }
        let org_s = orgs.into_iter().next().unwrap_or_default();
        let Ok(org) = OrgName::parse(&org_s) else {
            return refuse(
                "invalid change",
                format!(
                    "organizations/{org_s}.yaml: /metadata/name: not a valid Organization name"
                ),
            );
        };
        let ol = self.org_lock(&org);
        let _o = lock(&ol);
        let _g = lock(&self.config_lock);
        if config.head(CONFIG_BRANCH)?.as_deref() != Some(head.as_str()) {
            return refuse(
                "non-fast-forward",
                format!("{CONFIG_BRANCH}: /: the branch moved since you fetched; fetch, rebase and push again"),
            );
        }
        let (kind, subject) = config_kind(&org, &old, &new);
        let mut prev = old;
        let mut problems = Vec::new();
        for (commit, _, _) in &commits {
            let tree = q.tree(commit).map_err(GitopsError::Git)?;
            let p = self.check_config_tree(&org, &prev, &tree)?;
            if !p.is_empty() {
                problems.extend(
                    p.into_iter()
                        .map(|l| format!("{l} (commit {})", &commit[..12])),
                );
                break;
            }
            prev = tree;
        }
        if !problems.is_empty() {
            return Ok(Err(Refusal {
                reason: "invalid change".into(),
                lines: problems,
            }));
        }
        q.migrate()?;
        let tip_subject = commits.last().map(|c| c.2.clone()).unwrap_or_default();
        let w = Write {
            name: CONFIG_REPO.into(),
            repo: config.clone(),
            branch: CONFIG_BRANCH.into(),
            changes: Default::default(),
            tree: Some(c.new.clone()),
            commit: Some(c.new.clone()),
            subject: format!(
                "Push to system/catalyst-config by {}: {tip_subject}",
                call.actor.name
            ),
            primary: true,
        };
        match self.apply(vec![w], call, (kind, &org, &subject)) {
            Ok(_) => Ok(Ok(())),
            Err(e) => applied(e, CONFIG_BRANCH),
        }
    }

    /// Every resource of a pushed `system/catalyst-config` tree that `org` owns, against its CRD
    /// and the API's rules; `prev` is the tree before.
    fn check_config_tree(
        &self,
        org: &OrgName,
        prev: &BTreeMap<String, Entry>,
        tree: &BTreeMap<String, Entry>,
    ) -> Result<Vec<String>, GitopsError> {
        let mut problems = Vec::new();
        for (path, e) in tree {
            if org_of_path(path).as_deref() != Some(org.as_str()) {
                continue;
            }
            if e.kind != "blob" || e.mode != "100644" {
                problems.push(format!(
                    "{path}: /: only regular files (mode 100644) are accepted"
                ));
                continue;
            }
            if plumbing_env(path).is_some() {
                continue;
            }
            let doc = match yaml::parse(&String::from_utf8_lossy(&e.bytes)) {
                Ok(v) => v,
                Err(err) => {
                    problems.push(format!("{path}: /: not YAML: {err}"));
                    continue;
                }
            };
            let (kind, name) = kind_of_path(path);
            problems.extend(check_resource(path, kind, &doc));
            if doc.pointer("/metadata/name").and_then(Value::as_str) != Some(name.as_str()) {
                problems.push(format!(
                    "{path}: /metadata/name: must be {name:?} (the file's name)"
                ));
            }
            if doc
                .pointer("/metadata/labels/catalyst.openova.io~1organization")
                .and_then(Value::as_str)
                != Some(org.as_str())
            {
                problems.push(format!(
                    "{path}: /metadata/labels/catalyst.openova.io~1organization: must be {:?}",
                    org.as_str()
                ));
            }
            if kind == "EnvironmentPolicy" {
                if let Err(err) =
                    policy::validate_rules(doc.pointer("/spec/rules").unwrap_or(&Value::Null))
                {
                    problems.push(format!("{path}: /spec/rules: {err}"));
                }
            }
        }
        // Environments: each one's document and policy together, its plumbing Catalyst's.
        for env in EnvType::ALL {
            let (ep, pp) = (config::env_path(org, env), config::policy_path(org, env));
            let (had, has) = (prev.contains_key(&ep), tree.contains_key(&ep));
            if has != tree.contains_key(&pp) {
                problems.push(format!(
                    "{pp}: /: an Environment and its EnvironmentPolicy come and go together"
                ));
            }
            if let Some(d) = tree.get(&ep) {
                let doc = yaml::parse(&String::from_utf8_lossy(&d.bytes)).unwrap_or(Value::Null);
                let want = config::environment(org, env);
                if let Some((p, is, should)) =
                    first_difference(&doc["spec"], &want["spec"], "/spec".into())
                {
                    problems.push(format!(
                        "{ep}: {p}: is {}, must be {}",
                        short(&is),
                        short(&should)
                    ));
                }
            }
            let dir = format!("{}/", plumbing::dir(org, env));
            let files = |t: &BTreeMap<String, Entry>| -> BTreeMap<String, Vec<u8>> {
                t.iter()
                    .filter(|(p, _)| p.starts_with(&dir))
                    .map(|(p, e)| (p.clone(), e.bytes.clone()))
                    .collect()
            };
            let (before, after) = (files(prev), files(tree));
            let want = match (had, has, &self.plumbing) {
                (true, true, _) => before.clone(),
                (false, true, Some(settings)) => plumbing::files(org, env, &[], settings)
                    .into_iter()
                    .map(|(p, b)| (format!("{dir}{p}"), b))
                    .collect(),
                _ => BTreeMap::new(),
            };
            if had && !has && !self.env_apps(org, env)?.is_empty() {
                problems.push(format!(
                    "{ep}: /: Applications are installed in {}; uninstall them first",
                    env_name(org, env)
                ));
            }
            if after != want {
                let p = after
                    .keys()
                    .chain(want.keys())
                    .find(|p| after.get(*p) != want.get(*p))
                    .cloned()
                    .unwrap_or(dir.clone());
                problems.push(format!(
                    "{p}: /: the Flux plumbing of an Environment is Catalyst's; it must be {}",
                    if want.contains_key(&p) {
                        "as Catalyst writes it"
                    } else {
                        "absent"
                    }
                ));
            }
        }
        if !tree.contains_key(&config::org_path(org)) {
            if tree
                .keys()
                .any(|p| org_of_path(p).as_deref() == Some(org.as_str()))
            {
                problems.push(format!(
                    "{}: /: an Organization's Environments, policies and approvals go with it",
                    config::org_path(org)
                ));
            } else if !self.list_apps(org)?.is_empty() {
                problems.push(format!(
                    "{}: /: {org} still has Applications; uninstall them first",
                    config::org_path(org)
                ));
            }
        }
        Ok(problems)
    }
}

/// The Organization a `system/catalyst-config` path belongs to (`None`: not a path Catalyst
/// keeps there).
fn org_of_path(path: &str) -> Option<String> {
    let strip_env = |s: &str| {
        EnvType::ALL
            .into_iter()
            .find_map(|e| s.strip_suffix(&format!("-{e}")).map(str::to_owned))
    };
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["organizations", f] => f.strip_suffix(".yaml").map(str::to_owned),
        ["environments", f] => f.strip_suffix(".yaml").and_then(strip_env),
        ["environments", d, _, ..] => strip_env(d),
        ["policies", f] => f.strip_suffix("-policy.yaml").and_then(strip_env),
        ["approvals", o, f] if f.ends_with(".yaml") => Some((*o).to_owned()),
        _ => None,
    }
}

/// True for a file of an Environment's Flux plumbing (`environments/<org>-<env>/…`).
fn plumbing_env(path: &str) -> Option<()> {
    (path.starts_with("environments/") && path.matches('/').count() >= 2).then_some(())
}

/// The kind of the resource at `path` and the name its file gives it.
fn kind_of_path(path: &str) -> (&'static str, String) {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.strip_suffix(".yaml").unwrap_or(file).to_owned();
    let kind = match path.split('/').next() {
        Some("organizations") => "Organization",
        Some("environments") => "Environment",
        Some("policies") => "EnvironmentPolicy",
        _ => "PromotionApprovals",
    };
    (kind, stem)
}

/// A CRD's schema made strict the way the API server behaves: unknown fields are refused (it
/// would prune them), `apiVersion` and `kind` pinned.
fn strict_schema(kind: &str) -> Option<Value> {
    let crd = catalyst_crds::documents()
        .into_iter()
        .find(|c| c["spec"]["names"]["kind"] == kind)?;
    let mut schema = catalyst_crds::strict_version_schema(&crd, catalyst_crds::VERSION)?;
    if let Some(req) = schema["required"].as_array_mut() {
        for k in ["apiVersion", "kind", "metadata"] {
            if !req.contains(&json!(k)) {
                req.push(json!(k));
            }
        }
    } else {
        schema["required"] = json!(["apiVersion", "kind", "metadata", "spec"]);
    }
    Some(schema)
}

/// The resource at `path` against its CRD: one line per error.
fn check_resource(path: &str, kind: &str, doc: &Value) -> Vec<String> {
    use std::sync::OnceLock;
    static VALIDATORS: OnceLock<BTreeMap<&'static str, jsonschema::Validator>> = OnceLock::new();
    let validators = VALIDATORS.get_or_init(|| {
        [
            "Organization",
            "Environment",
            "EnvironmentPolicy",
            "PromotionApprovals",
        ]
        .into_iter()
        .filter_map(|k| Some((k, jsonschema::validator_for(&strict_schema(k)?).ok()?)))
        .collect()
    });
    let Some(v) = validators.get(kind) else {
        return vec![format!("{path}: /: no CRD for {kind}")];
    };
    v.iter_errors(doc)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!(
                "{path}: {}: {e}",
                if at.is_empty() { "/".to_owned() } else { at }
            )
        })
        .collect()
}

/// The kind and subject the API records for the change `old` → `new` of `org`'s resources.
fn config_kind(
    org: &OrgName,
    old: &BTreeMap<String, Entry>,
    new: &BTreeMap<String, Entry>,
) -> (&'static str, String) {
    let op = config::org_path(org);
    match (old.contains_key(&op), new.contains_key(&op)) {
        (false, true) => return ("organization.created", org.to_string()),
        (true, false) => return ("organization.deleted", org.to_string()),
        _ => {}
    }
    for env in EnvType::ALL {
        let ep = config::env_path(org, env);
        match (old.contains_key(&ep), new.contains_key(&ep)) {
            (false, true) => return ("environment.created", env_name(org, env)),
            (true, false) => return ("environment.deleted", env_name(org, env)),
            _ => {}
        }
    }
    let members = |t: &BTreeMap<String, Entry>| {
        t.get(&op)
            .and_then(|e| yaml::parse(&String::from_utf8_lossy(&e.bytes)).ok())
            .and_then(|d| d.pointer("/spec/members").cloned())
    };
    if members(old) != members(new) {
        return ("member.set", org.to_string());
    }
    ("organization.updated", org.to_string())
}

/// A write-path failure of an accepted command as its outcome: a lost race is the pusher's
/// `non-fast-forward`; anything else is internal.
fn applied(e: GitopsError, what: &str) -> Result<Outcome, GitopsError> {
    match e {
        GitopsError::Conflict(detail) => Ok(Err(Refusal::new(
            "non-fast-forward",
            format!("{what}: /: {detail}"),
        ))),
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_malformed_ones_are_refused_not_panicked_on() {
        let mut body = Vec::new();
        let a = "1".repeat(40);
        let b = "2".repeat(40);
        pkt(
            &mut body,
            format!("{a} {b} refs/heads/develop\0report-status side-band-64k\n").as_bytes(),
        );
        body.extend_from_slice(b"0000PACKxyz");
        let r = parse_request(&body).unwrap();
        assert_eq!(r.commands.len(), 1);
        assert_eq!(r.commands[0].refname, "refs/heads/develop");
        assert!(r.caps.contains("side-band-64k"));
        assert_eq!(r.pack, b"PACKxyz");
        for bad in [
            &b""[..],
            b"00",
            b"zzzz",
            b"0003",
            b"0000",
            b"0010short",
            b"ffff",
        ] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_refusal_is_an_ng_line_and_its_problems_go_to_the_progress_band() {
        let caps: BTreeSet<String> = ["report-status", "side-band-64k"]
            .into_iter()
            .map(String::from)
            .collect();
        let out = response(
            &caps,
            "ok",
            &[(
                "refs/heads/develop".into(),
                Err(Refusal::new(
                    "invalid change",
                    "values.yaml: /replicas: bad".into(),
                )),
            )],
        );
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("\u{2}values.yaml: /replicas: bad\n"),
            "{text}"
        );
        assert!(
            text.contains("ng refs/heads/develop invalid change"),
            "{text}"
        );
        assert!(text.ends_with("0000"));
    }

    #[test]
    fn documents_differ_at_a_pointer() {
        let a = json!({"spec": {"values": {"x": 1, "y": [1, 2]}}});
        let b = json!({"spec": {"values": {"x": 1, "y": [1, 3]}}});
        assert_eq!(
            first_difference(&a, &b, String::new()).unwrap().0,
            "/spec/values/y/1"
        );
        assert!(first_difference(&a, &a, String::new()).is_none());
    }
}
