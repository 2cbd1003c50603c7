//! The operations on Organizations, Environments and Applications. Each call becomes at most one
//! commit per repository it touches; the branches move all together or not at all (a later
//! repository's ref update failing undoes the earlier ones, and repositories created for the
//! call are removed). Writers to one Organization are serialized by an in-process lock; the ref
//! update itself is compare-and-swap against the parent commit, so `If-Match` (and any writer
//! outside this process) gets [`GitopsError::Conflict`] instead of a lost update.
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use catalyst_blueprint::render::RenderOptions;
use catalyst_blueprint::resolve::{resolve_plan, Options, Plan, Planned, Request, ResolveError};
use catalyst_blueprint::{BlueprintName, Catalog, VersionRange, Viewer};
use serde::Serialize;
use serde_json::{json, Value};

use crate::admission::{Admission, AdmissionError};
use crate::app::{self, AppDoc, DepRef};
use crate::names::{env_name, AppName, EnvType, OrgName};
use crate::plumbing::{self, PlumbedApp, PlumbingSettings};
use crate::policy;
use crate::repo::{message, Actor, Changes, Repo};
use crate::{config, yaml, GitopsError, ValueProblem};
use catalyst_spine::{CloudEvent, EventDraft, Spine};

/// Who calls, under which request id, and how.
#[derive(Debug, Clone)]
pub struct Call {
    /// The author of the commits.
    pub actor: Actor,
    /// Goes into the `Catalyst-Request-Id` trailer.
    pub request_id: String,
    /// Compute the diff, write nothing.
    pub dry_run: bool,
    /// The commit the primary branch must still be at (`If-Match`).
    pub if_match: Option<String>,
}

/// One commit written (or, in a dry run, that would be written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    /// Repository (`acme/web`, `system/catalyst-config`).
    pub repo: String,
    /// Branch.
    pub branch: String,
    /// The commit id (in a dry run: the id it would have had).
    pub commit: String,
    /// The diff (dry runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// The outcome of a mutation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    /// True when nothing was written.
    #[serde(rename = "dryRun")]
    pub dry_run: bool,
    /// The commits, one per repository touched.
    pub commits: Vec<CommitInfo>,
}

/// An install request.
#[derive(Debug, Clone)]
pub struct InstallRequest {
    /// The new Application.
    pub app: AppName,
    /// The Environment (env type within the Organization).
    pub env: EnvType,
    /// `NAME[@RANGE]` of the Blueprint.
    pub blueprint: String,
    /// Configuration values (validated against the configSchema).
    pub values: Value,
    /// Dependencies to satisfy with existing Applications: Blueprint name → Application.
    pub use_existing: BTreeMap<String, String>,
    /// Values for dependency Blueprints: Blueprint name → values (validated like the root's).
    pub dependency_values: BTreeMap<String, Value>,
}

/// An upgrade request: the Application in one Environment moves to the highest visible version
/// of its Blueprint in `version`; dependencies that version adds are satisfied like install's.
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    /// The Application.
    pub app: AppName,
    /// The Environment (env type within the Organization).
    pub env: EnvType,
    /// The version range (`2.1.0`, `^2`).
    pub version: String,
    /// New dependencies to satisfy with existing Applications: Blueprint name → Application.
    pub use_existing: BTreeMap<String, String>,
    /// Values for new dependency Blueprints: Blueprint name → values (validated).
    pub dependency_values: BTreeMap<String, Value>,
    /// Upgrade, in the same call, the existing dependency Applications whose version the new
    /// requirements reject (to the highest version that satisfies every constraint, never down).
    pub with_dependencies: bool,
}

/// Which Application stands for each Blueprint of a plan, and whether the call creates it.
type AppOf = BTreeMap<BlueprintName, (AppName, bool)>;

/// The `dependsOn` links and `values.dependencies.<alias>` of a planned Blueprint.
fn links(p: &Planned, plan: &Plan, app_of: &AppOf) -> (Vec<DepRef>, Value) {
    let mut depends_on = Vec::new();
    let mut dependencies = serde_json::Map::new();
    for e in &p.depends_on {
        let (Some(v), Some((dep_app, _))) = (&e.version, app_of.get(&e.name)) else {
            continue;
        };
        depends_on.push(DepRef {
            application: dep_app.to_string(),
            blueprint: e.name.to_string(),
            alias: e.alias.clone(),
        });
        if let Some(alias) = &e.alias {
            let mut d = json!({ "application": dep_app.as_str(), "blueprint": e.name.as_str(), "version": v.to_string(), "releaseName": dep_app.as_str(), "namespace": dep_app.as_str() });
            if let Some(Value::Object(outputs)) = plan.get(&e.name).map(|d| &d.outputs) {
                for (k, val) in outputs {
                    d[k] = val.clone();
                }
            }
            dependencies.insert(alias.clone(), d);
        }
    }
    (depends_on, Value::Object(dependencies))
}

/// A plan's values errors, one each, for the Blueprints `written` accepts.
fn value_errors(plan: &Plan, written: impl Fn(&BlueprintName) -> bool) -> Result<(), GitopsError> {
    let errors: Vec<ValueProblem> = plan
        .value_errors()
        .into_iter()
        .filter(|(n, _)| written(n))
        .map(|(n, e)| ValueProblem::of(n.to_string(), e))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(GitopsError::InvalidValues(errors))
    }
}

/// Refuses a plan that lacks Blueprints.
fn no_missing(plan: &Plan) -> Result<(), GitopsError> {
    if plan.missing.is_empty() {
        return Ok(());
    }
    Err(GitopsError::Resolve(format!(
        "not in the catalog: {}",
        plan.missing
            .iter()
            .map(|m| format!("{} (required by {})", m.name, m.required_by.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    )))
}

/// One commit a call writes on one branch (or, with `commit`, a commit that exists already —
/// a pushed one — becoming the branch head).
pub(crate) struct Write {
    pub(crate) name: String,
    pub(crate) repo: Repo,
    pub(crate) branch: String,
    pub(crate) changes: Changes,
    pub(crate) tree: Option<String>,
    /// An existing commit (whose parent is the branch head) to move the branch to, instead of
    /// writing one from `changes`/`tree` (`crate::push`).
    pub(crate) commit: Option<String>,
    pub(crate) subject: String,
    pub(crate) primary: bool,
}

/// What the event of a call says, fixed before its refs move (kept in the journal).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct EventMeta {
    kind: String,
    org: String,
    subject: String,
    actor: String,
    request_id: String,
    time: String,
    /// The subject of the call's main commit (absent in journals written before it was kept).
    #[serde(default)]
    message: String,
}

/// A ref a call moved: repository name, branch, new commit.
struct Move {
    name: String,
    branch: String,
    new: String,
}

/// The Sovereign's GitOps state: `system/catalyst-config` plus one repository per Application.
pub struct Sovereign {
    root: PathBuf,
    catalog: Arc<Catalog>,
    pub(crate) render: RenderOptions,
    admission: Option<Arc<dyn Admission>>,
    spine: Option<Arc<dyn Spine>>,
    pub(crate) config_lock: Mutex<()>,
    /// Where clusters find this Catalyst (the Environments' Flux plumbing points there);
    /// `None`: no plumbing is kept (the benchmark's baseline).
    pub(crate) plumbing: Option<PlumbingSettings>,
    org_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// How the repositories are read and written (in process unless benchmarking the CLI).
    git: crate::repo::Backend,
    /// What answered calls left to make durable (their objects, refs, reflogs, directories)
    /// and their journals, unlinked then: in the background, or when the Sovereign is dropped.
    flusher: crate::repo::Flusher,
    /// Orders the journals: recovery replays them in the order they were written.
    journal_seq: std::sync::atomic::AtomicU64,
}

impl Sovereign {
    /// Makes everything answered calls wrote durable now and removes their journals (else
    /// the background thread does within moments, or dropping the Sovereign does): for a clean
    /// shutdown.
    pub fn flush(&self) -> Result<(), GitopsError> {
        self.flusher.flush()
    }

    /// How long the background thread gathers answered calls before it makes their files
    /// durable (default 20 ms). A long one keeps their journals around: for crash tests.
    #[doc(hidden)]
    pub fn with_flush_interval(self, interval: std::time::Duration) -> Sovereign {
        self.flusher.set_interval(interval);
        self
    }
}

pub(crate) const CONFIG_BRANCH: &str = "main";
/// The name of the Sovereign's configuration repository.
pub(crate) const CONFIG_REPO: &str = "system/catalyst-config";
/// Where clusters reach Catalyst until [`Sovereign::with_public_url`] says otherwise.
pub const DEFAULT_PUBLIC_URL: &str = "http://catalyst.catalyst-system.svc:8080";

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How many files are under `dir` (recursively; 0 when it does not exist).
fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        files_under(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

pub(crate) fn parse_yaml(bytes: &[u8], what: &str) -> Result<Value, GitopsError> {
    yaml::parse(&String::from_utf8_lossy(bytes))
        .map_err(|e| GitopsError::Corrupt(format!("{what}: {e}")))
}

impl Sovereign {
    /// Opens (creating) the repositories under `root` (`<data-dir>/git`), recording no events.
    pub fn open(
        root: impl Into<PathBuf>,
        catalog: Arc<Catalog>,
        render: RenderOptions,
    ) -> Result<Sovereign, GitopsError> {
        Self::open_with_spine(root, catalog, render, None)
    }

    /// Opens (creating) the repositories under `root` (`<data-dir>/git`); every change is
    /// recorded on `spine` as one event, through the outbox: the call's journal (written and
    /// synced before any ref moves) names the event, so a crash between the commit and the
    /// record is finished at the next open — the event is recorded exactly once. Lock files
    /// a killed write left are removed, so the caller must be the only writer (`catalyst
    /// serve` holds the data directory's lock).
    pub fn open_with_spine(
        root: impl Into<PathBuf>,
        catalog: Arc<Catalog>,
        render: RenderOptions,
        spine: Option<Arc<dyn Spine>>,
    ) -> Result<Sovereign, GitopsError> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Repo::forget_open_under(&root);
        let plumbing = Some(PlumbingSettings::for_url(
            DEFAULT_PUBLIC_URL,
            &render.registry,
            &render.interval,
        ));
        // Used journal files wait in `.journals` to be written again (see `repo::Recycle`).
        let recycle = crate::repo::Recycle::at(root.join(".journals"))?;
        let s = Sovereign {
            root,
            catalog,
            plumbing,
            render,
            admission: None,
            spine,
            config_lock: Mutex::new(()),
            org_locks: Mutex::new(HashMap::new()),
            git: crate::repo::Backend::default(),
            flusher: crate::repo::Flusher::start(std::time::Duration::from_millis(20), recycle),
            journal_seq: std::sync::atomic::AtomicU64::new(0),
        };
        s.clear_leftovers()?;
        s.config().init()?;
        // The journals' folder, made once (durably), so a call only adds files to it.
        if !s.journal_dir().is_dir() {
            std::fs::create_dir_all(s.journal_dir())?;
            for d in [s.journal_dir(), s.root.clone()] {
                std::fs::File::open(d)?.sync_all()?;
            }
        }
        s.recover()?;
        // Recovery may have written files again that open handles read before.
        Repo::forget_open_under(&s.root);
        s.remove_unborn()?;
        Ok(s)
    }

    /// Removes every Application repository that holds no branch: a call creates its new
    /// repositories before any ref moves and removes them when it fails, but a crash skips
    /// that — it leaves them empty (or, killed inside `init`, without `HEAD`: not a
    /// repository at all, which `git fsck` and clients refuse), and `recover` may just have
    /// undone their only ref. A completed call never leaves an Application repository without
    /// a branch (an uninstall commits the empty tree), so such a repository is a trace of a
    /// call that did not happen. `system/…` is not touched.
    fn remove_unborn(&self) -> Result<(), GitopsError> {
        let Ok(owners) = std::fs::read_dir(&self.root) else {
            return Ok(());
        };
        for owner in owners.flatten().filter(|e| e.path().is_dir()) {
            let name = owner.file_name().to_string_lossy().into_owned();
            if name == "system" || OrgName::parse(&name).is_err() {
                continue;
            }
            let Ok(repos) = std::fs::read_dir(owner.path()) else {
                continue;
            };
            for e in repos.flatten() {
                if !e.file_name().to_string_lossy().ends_with(".git") || !e.path().is_dir() {
                    continue;
                }
                let repo = Repo::at(e.path());
                // Only a repository known to hold no branch; one that cannot be read is kept,
                // and so is a folder without `HEAD` that has any ref file.
                let unborn = if repo.exists() {
                    matches!(repo.branches(), Ok(b) if b.is_empty())
                } else {
                    !e.path().join("packed-refs").exists()
                        && files_under(&e.path().join("refs")) == 0
                };
                if !unborn {
                    continue;
                }
                std::fs::remove_dir_all(e.path())?;
                tracing::warn!(
                    repository = %e.path().display(),
                    "Removed a repository a call interrupted by a crash created and never committed to."
                );
            }
        }
        Ok(())
    }

    /// [`Repo::clear_leftovers`] on every repository (`system/…`, `<org>/…`): a write killed
    /// mid-way must not leave a repository that refuses every later write.
    fn clear_leftovers(&self) -> Result<(), GitopsError> {
        let Ok(owners) = std::fs::read_dir(&self.root) else {
            return Ok(());
        };
        for owner in owners.flatten().filter(|e| e.path().is_dir()) {
            let aside = Repo::clear_aside(&owner.path())?;
            if !aside.is_empty() {
                tracing::warn!(removed = ?aside, "Removed repositories a killed init left half-made.");
            }
            let Ok(repos) = std::fs::read_dir(owner.path()) else {
                continue;
            };
            for e in repos.flatten() {
                if !e.file_name().to_string_lossy().ends_with(".git") {
                    continue;
                }
                let repo = Repo::at(e.path());
                let removed = repo.clear_leftovers()?;
                if !removed.is_empty() {
                    tracing::warn!(
                        repository = %e.path().display(),
                        removed = ?removed,
                        "Removed what a write killed mid-way left behind."
                    );
                }
            }
        }
        Ok(())
    }

    /// The URL clusters reach this Catalyst at (`https://catalyst.example`): the Environments'
    /// `GitRepository` sources and notification `Provider` point there.
    pub fn with_public_url(mut self, url: &str) -> Self {
        self.plumbing = Some(PlumbingSettings::for_url(
            url,
            &self.render.registry,
            &self.render.interval,
        ));
        self
    }

    /// Keeps no Environment plumbing: only for measuring what keeping it costs
    /// (`benches/install.rs`); a Sovereign's clusters need it.
    #[doc(hidden)]
    pub fn without_plumbing(mut self) -> Self {
        self.plumbing = None;
        self
    }

    /// Reads and writes the repositories through the `git` CLI instead of in process: only
    /// for measuring what the in-process backend saves (`benches/install.rs`).
    #[doc(hidden)]
    pub fn with_git_cli(mut self) -> Self {
        self.git = crate::repo::Backend::Cli;
        self
    }

    /// Admits every Blueprint artifact an install, upgrade or promotion pins through
    /// `admission` (before anything is written); its digest is what the Flux source pins.
    /// Without it, the catalog's digest is pinned when it records one, else the exact tag.
    pub fn with_admission(mut self, admission: Arc<dyn Admission>) -> Self {
        self.admission = Some(admission);
        self
    }

    /// The digest to pin for `blueprint` `version`: the admitted one, else the one the catalog
    /// records (`known`; `None`: the exact tag is pinned).
    fn pin(
        &self,
        blueprint: &BlueprintName,
        version: &semver::Version,
        known: Option<&str>,
    ) -> Result<Option<String>, GitopsError> {
        let Some(admission) = &self.admission else {
            return Ok(known.map(str::to_string));
        };
        match admission.admit(blueprint.as_str(), &version.to_string(), known) {
            Ok(Some(digest)) => Ok(Some(digest)),
            Ok(None) => Ok(known.map(str::to_string)),
            Err(AdmissionError::Refused(detail)) => Err(GitopsError::Untrusted {
                blueprint: format!("{blueprint} {version}"),
                detail,
            }),
            Err(AdmissionError::Unavailable(detail)) => Err(GitopsError::ArtifactStore(detail)),
        }
    }

    /// The spine every change is recorded on, when there is one.
    pub fn spine(&self) -> Option<&Arc<dyn Spine>> {
        self.spine.as_ref()
    }

    /// The Blueprint catalog installs resolve against.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// `system/catalyst-config`.
    pub fn config(&self) -> Repo {
        Repo::at(self.root.join("system").join("catalyst-config.git")).with_backend(self.git)
    }

    /// The repository of an Application.
    pub fn app_repo(&self, org: &OrgName, app: &AppName) -> Repo {
        Repo::at(self.root.join(org.as_str()).join(format!("{app}.git"))).with_backend(self.git)
    }

    /// The directory of a repository served over smart HTTP (`<org>/<app>`,
    /// `system/catalyst-config` or a `system/sovereign-<deployment id>`), if it exists.
    pub fn git_dir(&self, org: &str, repo: &str) -> Option<PathBuf> {
        let r = if org == "system" && repo == "catalyst-config" {
            self.config()
        } else if let Some(id) = repo.strip_prefix("sovereign-").filter(|_| org == "system") {
            crate::sovereign_git::repo_name(id).ok()?;
            Repo::at(self.root.join("system").join(format!("{repo}.git")))
        } else {
            self.app_repo(&OrgName::parse(org).ok()?, &AppName::parse(repo).ok()?)
        };
        r.exists().then(|| r.path().to_path_buf())
    }

    /// Root of all repositories.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn org_lock(&self, org: &OrgName) -> Arc<Mutex<()>> {
        lock(&self.org_locks)
            .entry(org.to_string())
            .or_default()
            .clone()
    }

    pub(crate) fn config_read(&self, path: &str) -> Result<Option<Value>, GitopsError> {
        let c = self.config();
        if c.head(CONFIG_BRANCH)?.is_none() {
            return Ok(None);
        }
        match c.read(CONFIG_BRANCH, path)? {
            Some(b) => parse_yaml(&b, path).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn config_list(&self, prefix: &str) -> Result<Vec<String>, GitopsError> {
        let c = self.config();
        if c.head(CONFIG_BRANCH)?.is_none() {
            return Ok(Vec::new());
        }
        c.list(CONFIG_BRANCH, Some(prefix))
    }

    pub(crate) fn config_write(&self, changes: Changes, subject: String) -> Write {
        Write {
            name: CONFIG_REPO.into(),
            repo: self.config(),
            branch: CONFIG_BRANCH.into(),
            changes,
            tree: None,
            commit: None,
            subject,
            primary: true,
        }
    }

    /// The change to the Flux plumbing of the Environments `writes` touch (each Application
    /// write on an env branch: its new `catalyst.yaml`, or none when it is uninstalled), as
    /// one `system/catalyst-config` write; `None` when no Application changes. Reads only the
    /// folder's top-level `kustomization.yaml` and the listing of each shard it touches, never
    /// the other Applications, so its cost does not grow with the Environment (about N/256
    /// files per shard). The caller holds `config_lock`.
    fn plumbing_write(
        &self,
        org: &OrgName,
        writes: &[Write],
    ) -> Result<Option<Write>, GitopsError> {
        let Some(settings) = &self.plumbing else {
            return Ok(None);
        };
        // Per Environment: each Application written, as it is now (`None`: uninstalled).
        type Touched = Vec<(String, Option<PlumbedApp>)>;
        let mut by_env: BTreeMap<&'static str, (EnvType, Touched)> = BTreeMap::new();
        for w in writes {
            let Some((owner, app)) = w.name.split_once('/') else {
                continue;
            };
            let Some(env) = EnvType::ALL.into_iter().find(|e| e.branch() == w.branch) else {
                continue;
            };
            if owner != org.as_str() {
                continue;
            }
            let doc = match (&w.tree, w.changes.files.get("catalyst.yaml")) {
                (Some(tree), _) => w.repo.read(tree, "catalyst.yaml")?,
                (None, Some(content)) => content.clone(),
                (None, None) if w.changes.replace_all => None,
                (None, None) => continue,
            };
            let plumbed = match doc {
                Some(bytes) => {
                    let d = AppDoc::from_resource(&parse_yaml(&bytes, "catalyst.yaml")?, env)?;
                    Some(PlumbedApp {
                        name: app.to_owned(),
                        depends_on: d.depends_on.iter().map(|x| x.application.clone()).collect(),
                    })
                }
                None => None,
            };
            by_env
                .entry(env.as_str())
                .or_insert_with(|| (env, Vec::new()))
                .1
                .push((app.to_owned(), plumbed));
        }
        if by_env.is_empty() {
            return Ok(None);
        }
        let mut ch = Changes::default();
        // Every read below at the one commit the branch is at (the caller holds
        // `config_lock`): its ref is read once, not once per file and shard.
        let config = self.config();
        let head = config.head(CONFIG_BRANCH)?;
        for (env, apps) in by_env.into_values() {
            let dir = plumbing::dir(org, env);
            let at = |p: &str| format!("{dir}/{p}");
            // The top-level listing: the files outside the shards and the shard folders.
            let listing = match &head {
                Some(h) => config.read(h, &at("kustomization.yaml"))?,
                None => None,
            };
            let mut top: BTreeSet<String> = match listing {
                Some(bytes) => match plumbing::resources_of(&bytes) {
                    Some(listed) => listed.into_iter().collect(),
                    None => parse_yaml(&bytes, "kustomization.yaml")?["resources"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                },
                None => BTreeSet::new(),
            };
            if top.is_empty() {
                // An Environment made before its plumbing was kept: write the whole folder.
                for (path, bytes) in plumbing::files(org, env, &[], settings) {
                    if path != "kustomization.yaml" {
                        top.insert(path.clone());
                        ch.put(at(&path), bytes);
                    }
                }
            }
            // Per shard folder touched: the files it holds (read once, from its own listing).
            let mut shards: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (app, plumbed) in apps {
                // Files of the layout before shards go (the Application's are rewritten below).
                for old in plumbing::unsharded_app_paths(&app) {
                    if top.remove(&old) {
                        ch.delete(at(&old));
                    }
                }
                let files: Vec<(String, Option<Vec<u8>>)> = match plumbed {
                    Some(p) => plumbing::app_files(org, env, &p, settings)
                        .into_iter()
                        .map(|(path, b)| (path, Some(b)))
                        .collect(),
                    None => plumbing::app_paths(&app)
                        .into_iter()
                        .map(|path| (path, None))
                        .collect(),
                };
                for (path, bytes) in files {
                    let Some((folder, file)) = plumbing::in_shard(&path) else {
                        return Err(GitopsError::Git(format!(
                            "{path} is outside the plumbing's shards"
                        )));
                    };
                    if !shards.contains_key(folder) {
                        let prefix = at(&format!("{folder}/"));
                        let listed = match &head {
                            Some(h) => config.list(h, Some(&prefix))?,
                            None => Vec::new(),
                        };
                        let held = listed
                            .iter()
                            .filter_map(|p| p.strip_prefix(&prefix))
                            .filter(|p| *p != "kustomization.yaml")
                            .map(str::to_owned)
                            .collect();
                        shards.insert(folder.to_owned(), held);
                    }
                    let held = shards.entry(folder.to_owned()).or_default();
                    match bytes {
                        Some(b) => {
                            held.insert(file.to_owned());
                            ch.put(at(&path), b);
                        }
                        None => {
                            if held.remove(file) {
                                ch.delete(at(&path));
                            }
                        }
                    }
                }
            }
            for (folder, held) in shards {
                let listing = at(&format!("{folder}/kustomization.yaml"));
                if held.is_empty() {
                    // An emptied shard: its folder goes (with its listing) and leaves the top.
                    if top.remove(&folder) {
                        ch.delete(listing);
                    }
                } else {
                    top.insert(folder);
                    ch.put(
                        listing,
                        plumbing::kustomization(held.iter().map(String::as_str)),
                    );
                }
            }
            ch.put(
                at("kustomization.yaml"),
                plumbing::kustomization(top.iter().map(String::as_str)),
            );
        }
        let mut w = self.config_write(
            ch,
            format!("Update the Flux plumbing of {org}'s Environments"),
        );
        w.primary = false;
        Ok(Some(w))
    }

    /// Writes `writes` (one commit each) all or nothing; publishes `event` on success.
    pub(crate) fn apply(
        &self,
        writes: Vec<Write>,
        call: &Call,
        event: (&str, &OrgName, &str),
    ) -> Result<Written, GitopsError> {
        let mut created: Vec<PathBuf> = Vec::new();
        for w in &writes {
            if !w.repo.exists() {
                // Made durable with the call's first commit in it (`repo::publish`).
                w.repo.init_staged()?;
                created.push(w.repo.path().to_path_buf());
            }
        }
        let (kind, org, subject) = event;
        // A change to Applications also changes their Environments' Flux plumbing in
        // system/catalyst-config, in the same call (all or nothing).
        let mut writes = writes;
        let _config = if writes.iter().any(|w| w.name == CONFIG_REPO) {
            None
        } else {
            let guard = lock(&self.config_lock);
            if let Some(w) = self.plumbing_write(org, &writes)? {
                writes.push(w);
            }
            Some(guard)
        };
        let meta = EventMeta {
            kind: kind.to_string(),
            org: org.to_string(),
            subject: subject.to_string(),
            actor: call.actor.name.clone(),
            request_id: call.request_id.clone(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            message: writes
                .iter()
                .find(|w| w.primary)
                .or(writes.first())
                .map(|w| w.subject.clone())
                .unwrap_or_default(),
        };
        let result = self.apply_inner(&writes, call, &meta);
        if call.dry_run || result.is_err() {
            for dir in &created {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        result
    }

    fn apply_inner(
        &self,
        writes: &[Write],
        call: &Call,
        meta: &EventMeta,
    ) -> Result<Written, GitopsError> {
        let mut prepared: Vec<crate::repo::Prepared> = Vec::new();
        let result = self.apply_prepared(writes, call, meta, &mut prepared);
        // Commits prepared but not published (a failure, a dry run, nothing changed) are
        // dropped; a published one is not touched.
        for (w, p) in writes.iter().zip(&prepared) {
            w.repo.forget(p);
        }
        result
    }

    fn apply_prepared(
        &self,
        writes: &[Write],
        call: &Call,
        meta: &EventMeta,
        prepared: &mut Vec<crate::repo::Prepared>,
    ) -> Result<Written, GitopsError> {
        for w in writes {
            let head = w.repo.head(&w.branch)?;
            if w.primary {
                if let Some(expected) = &call.if_match {
                    if head.as_deref() != Some(expected.as_str()) {
                        return Err(GitopsError::Conflict(format!(
                            "If-Match {expected} is stale: {} {} is at {}",
                            w.name,
                            w.branch,
                            head.as_deref().unwrap_or("(no commit)")
                        )));
                    }
                }
            }
            if let Some(commit) = &w.commit {
                // A pushed commit: the branch moves to it from the head it was checked against.
                prepared.push(crate::repo::Prepared {
                    branch: w.branch.clone(),
                    old: head,
                    new: commit.clone(),
                    unchanged: false,
                });
                continue;
            }
            let msg = message(&w.subject, &call.request_id, &call.actor);
            let p = w.repo.prepare(
                &w.branch,
                head.as_deref(),
                &w.changes,
                w.tree.as_deref(),
                &call.actor,
                &msg,
            )?;
            prepared.push(p);
        }
        let mut out = Written {
            dry_run: call.dry_run,
            commits: Vec::new(),
        };
        if call.dry_run {
            for (w, p) in writes.iter().zip(prepared.iter()) {
                if p.unchanged {
                    continue;
                }
                w.repo.store(p)?;
                out.commits.push(CommitInfo {
                    repo: w.name.clone(),
                    branch: w.branch.clone(),
                    commit: p.new.clone(),
                    diff: Some(w.repo.diff(p.old.as_deref(), &p.new)?),
                });
            }
            return Ok(out);
        }
        let moving: Vec<(&Write, &crate::repo::Prepared)> = writes
            .iter()
            .zip(prepared.iter())
            .filter(|(_, p)| !p.unchanged)
            .collect();
        if moving.is_empty() {
            return Ok(out);
        }
        // Several repositories cannot move in one transaction: the journal of the planned
        // moves, durable with the objects before any ref moves (`repo::publish`), lets `open`
        // finish the call after a crash (or undo it when its objects are not all there). It
        // also stands for the ref moves until they are durable (the next call's first fsync
        // round), and with a spine it is the outbox (it names the call's event).
        let (journal, doc, aborted) = self.journal_doc(&moving, self.spine.as_ref().map(|_| meta));
        let items: Vec<(&Repo, &[crate::repo::Prepared], &str)> = moving
            .iter()
            .map(|(w, p)| (&w.repo, std::slice::from_ref(*p), w.subject.as_str()))
            .collect();
        let mut carry = self.flusher.pending();
        let j = crate::repo::Journal {
            path: &journal,
            doc: &doc,
            aborted: &aborted,
            reuse: self.flusher.recycle().take(),
        };
        if let Err(e) = crate::repo::publish(&items, Some(&j), Some(&mut carry)) {
            let _ = std::fs::remove_file(&journal);
            return Err(e);
        }
        let done = moving;
        for (w, p) in &done {
            out.commits.push(CommitInfo {
                repo: w.name.clone(),
                branch: w.branch.clone(),
                commit: p.new.clone(),
                diff: None,
            });
        }
        if let Some(spine) = &self.spine {
            let moves: Vec<Move> = done
                .iter()
                .map(|(w, p)| Move {
                    name: w.name.clone(),
                    branch: p.branch.clone(),
                    new: p.new.clone(),
                })
                .collect();
            let recorded = self.event_for(meta, &moves).and_then(|e| {
                spine
                    .append(vec![e])
                    .map_err(|e| GitopsError::Events(e.to_string()))
            });
            if let Err(e) = recorded {
                // Not recorded: the change is not made either (all or nothing). The journal
                // says so (durably) first, or recovery would finish the call.
                crate::repo::write_atomic(&journal, &aborted)?;
                for (dw, dp) in done.iter().rev() {
                    if let Err(undo) = dw.repo.undo_refs(std::slice::from_ref(*dp)) {
                        tracing::error!(repo = %dw.name, error = %undo, "Undoing a change whose event could not be recorded failed; the next start-up undoes it.");
                        return Err(e);
                    }
                }
                let _ = std::fs::remove_file(&journal);
                return Err(e);
            }
        }
        // Unlinked by the next call once these refs are durable (its first fsync round).
        carry.journal(journal);
        Ok(out)
    }

    /// The event of a call whose `moves` are made: what its objects are at the new commits.
    fn event_for(&self, meta: &EventMeta, moves: &[Move]) -> Result<CloudEvent, GitopsError> {
        let org = OrgName::parse(&meta.org)?;
        let mut data = json!({
            "actor": meta.actor,
            "requestId": meta.request_id,
            "commits": moves.iter().map(|m| json!({"repo": m.name, "branch": m.branch, "commit": m.new})).collect::<Vec<_>>(),
        });
        if !meta.message.is_empty() {
            data["message"] = json!(meta.message);
        }
        let mut env = meta
            .kind
            .starts_with("environment.")
            .then(|| meta.subject.clone());
        let mut apps = Vec::new();
        let mut removed = Vec::new();
        for m in moves {
            if m.name == CONFIG_REPO && meta.kind.starts_with("application.") {
                // An Application call moves system/catalyst-config only for its Environments'
                // Flux plumbing, which no view shows: the Organization is unchanged.
                continue;
            }
            if m.name == CONFIG_REPO {
                let c = self.config();
                let read = |path: String| -> Result<Value, GitopsError> {
                    match c.read(&m.new, &path)? {
                        Some(b) => parse_yaml(&b, &path),
                        None => Ok(Value::Null),
                    }
                };
                data["organization"] = read(config::org_path(&org))?;
                let mut envs = Vec::new();
                for e in EnvType::ALL {
                    let doc = read(config::env_path(&org, e))?;
                    if !doc.is_null() {
                        envs.push(json!({"environment": doc, "policy": read(config::policy_path(&org, e))?}));
                    }
                }
                data["environments"] = Value::Array(envs);
                continue;
            }
            let Some(app) = m
                .name
                .split_once('/')
                .and_then(|(_, a)| AppName::parse(a).ok())
            else {
                continue;
            };
            let Some(e) = EnvType::ALL.into_iter().find(|e| e.branch() == m.branch) else {
                continue;
            };
            env.get_or_insert_with(|| env_name(&org, e));
            match self.app_doc_at(&org, &app, e, &m.new)? {
                Some(doc) => {
                    let mut s = summary(&doc, &m.new);
                    s["values"] = self.shown_values(&org, &doc, &m.new)?;
                    apps.push(s)
                }
                None => {
                    removed.push(json!({"name": app.as_str(), "environment": env_name(&org, e)}))
                }
            }
        }
        if !apps.is_empty() {
            data["applications"] = Value::Array(apps);
        }
        if !removed.is_empty() {
            data["removed"] = Value::Array(removed);
        }
        let time = chrono::DateTime::parse_from_rfc3339(&meta.time)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(|_| chrono::Utc::now());
        Ok(EventDraft {
            id: format!(
                "git-{}",
                moves.first().map(|m| m.new.as_str()).unwrap_or("none")
            ),
            kind: meta.kind.clone(),
            org: Some(meta.org.clone()),
            env,
            subject: meta.subject.clone(),
            time,
            data,
        }
        .into_event())
    }

    /// One event per Organization describing everything Git holds now: what an empty spine is
    /// seeded with when Catalyst starts recording events on a data directory that has history.
    pub fn snapshot_events(&self) -> Result<Vec<CloudEvent>, GitopsError> {
        let Some(head) = self.config_head()? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for doc in self.list_orgs()? {
            let Some(org) = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .and_then(|n| OrgName::parse(n).ok())
            else {
                continue;
            };
            let envs: Vec<Value> = EnvType::ALL
                .into_iter()
                .filter_map(|e| self.get_env(&org, e).ok())
                .collect();
            let mut apps = Vec::new();
            for app in self.app_names(&org) {
                for env in EnvType::ALL {
                    if let Some((doc, head)) = self.app_doc(&org, &app, env)? {
                        let mut s = summary(&doc, &head);
                        s["values"] = self.shown_values(&org, &doc, &head)?;
                        apps.push(s);
                    }
                }
            }
            out.push(
                EventDraft {
                    id: format!("import-{org}-{head}"),
                    kind: "organization.imported".into(),
                    org: Some(org.to_string()),
                    env: None,
                    subject: org.to_string(),
                    time: chrono::Utc::now(),
                    data: json!({"actor": "catalyst", "organization": doc, "environments": envs, "applications": apps}),
                }
                .into_event(),
            );
        }
        Ok(out)
    }

    fn journal_dir(&self) -> PathBuf {
        self.root.join(".pending")
    }

    /// The journal of one call: its path in `git/.pending/` (named in the order calls write
    /// them), its content — the planned ref moves and the event to record once they are made
    /// (`{"moves": […], "event": {…}}`) — and the same marked `"aborted": true`. Written and
    /// made durable by `repo::publish`, before any ref moves.
    fn journal_doc(
        &self,
        moving: &[(&Write, &crate::repo::Prepared)],
        event: Option<&EventMeta>,
    ) -> (PathBuf, Vec<u8>, Vec<u8>) {
        let entries: Vec<Value> = moving
            .iter()
            .map(|(w, p)| {
                json!({ "name": w.name, "repo": w.repo.path(), "branch": p.branch, "old": p.old, "new": p.new })
            })
            .collect();
        let mut doc = json!({ "moves": entries, "event": event });
        let written = doc.to_string().into_bytes();
        doc["aborted"] = json!(true);
        let seq = self
            .journal_seq
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = self.journal_dir().join(format!(
            "{:020}-{}.json",
            seq,
            hex::encode(rand::random::<[u8; 4]>())
        ));
        (path, written, doc.to_string().into_bytes())
    }

    /// Finishes or undoes the calls a crash interrupted, in the order their journals were
    /// written. A journal that carries its call's objects (whole: its checksum holds) was
    /// decided: its repositories, objects and garbage refs a power loss took are written again
    /// from it (the files of an answered call are fsynced only afterwards, in the background),
    /// each of its branches still at its old commit moves to the new one, and its event is
    /// recorded (once: the spine knows the id when it was recorded before the crash). An older
    /// journal without objects was decided when its commits are all stored
    /// (`Repo::complete`). A call marked aborted, cut short while its journal was written, or
    /// whose commits are not all stored, is undone: each branch still at the call's new
    /// commit goes back to its old one, so a call is all or nothing.
    fn recover(&self) -> Result<usize, GitopsError> {
        let Ok(rd) = std::fs::read_dir(self.journal_dir()) else {
            return Ok(0);
        };
        let mut journals: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        journals.sort();
        let (mut undone, mut finished) = (0, 0);
        // The directories the journals left (made durable at the end).
        let mut changed: Vec<PathBuf> = Vec::new();
        for path in journals {
            let bytes = std::fs::read(&path).unwrap_or_default();
            // A journal carries the objects of its call (`Whole`), or it is the document alone
            // (written before journals carried objects, or marked aborted), or it was cut short
            // while written (`Torn`: the call was not answered and no ref moved; undone).
            let (doc, objects, torn) = match crate::repo::decode_journal(&bytes) {
                crate::repo::Decoded::Doc(d) => (d, None, false),
                crate::repo::Decoded::Whole(d, o) => (d, Some(o), false),
                crate::repo::Decoded::Torn => (&bytes[..0], None, true),
            };
            let doc: Value = serde_json::from_slice(doc).unwrap_or_default();
            // Journals before the outbox were a bare list of moves.
            let entries: Vec<Value> = match &doc {
                Value::Array(a) => a.clone(),
                _ => doc["moves"].as_array().cloned().unwrap_or_default(),
            };
            let moves: Vec<(Repo, crate::repo::Prepared, String)> = entries
                .iter()
                .filter_map(|entry| {
                    Some((
                        Repo::at(entry["repo"].as_str()?),
                        crate::repo::Prepared {
                            branch: entry["branch"].as_str()?.to_string(),
                            old: entry["old"].as_str().map(str::to_string),
                            new: entry["new"].as_str()?.to_string(),
                            unchanged: false,
                        },
                        // Journals before the outbox named no repository.
                        entry["name"].as_str().unwrap_or_default().to_string(),
                    ))
                })
                .collect();
            let meta: Option<EventMeta> = serde_json::from_value(doc["event"].clone()).ok();
            let aborted = torn || doc["aborted"] == json!(true);
            let carried = !aborted && objects.is_some() && moves.len() == entries.len();
            // Per move: its ref file held garbage and was removed (it is set again below).
            let mut repaired = vec![false; moves.len()];
            if carried {
                // The call was answered (or about to be): whatever a power loss took of its
                // repositories, objects and refs is written again from the journal.
                for ((repo, p, _), r) in moves.iter().zip(&mut repaired) {
                    if !repo.exists() {
                        repo.init()?;
                    }
                    *r = crate::repo::repair_ref(repo, &p.branch)?;
                }
                for (file, data) in objects.iter().flatten() {
                    crate::repo::restore_object(file, data)?;
                }
            }
            let mut heads = Vec::new();
            for (repo, p, _) in &moves {
                heads.push(repo.head(&p.branch)?);
            }
            let all_made = !moves.is_empty()
                && moves
                    .iter()
                    .zip(&heads)
                    .all(|((_, p, _), h)| h.as_deref() == Some(p.new.as_str()));
            let decided = carried
                || (!aborted
                    && !moves.is_empty()
                    && moves.len() == entries.len()
                    && moves.iter().all(|(repo, p, _)| {
                        repo.complete(&p.new, p.old.as_deref()).unwrap_or(false)
                    }));
            if !aborted && (all_made || decided) {
                for (((repo, p, _), head), repaired) in moves.iter().zip(&heads).zip(&repaired) {
                    if *head == p.old || *repaired && head.as_deref() != Some(p.new.as_str()) {
                        let from = crate::repo::Prepared {
                            old: head.clone(),
                            ..p.clone()
                        };
                        repo.update_refs(std::slice::from_ref(&from), "catalyst: finish")?;
                    }
                }
                if let (Some(meta), Some(spine)) = (&meta, &self.spine) {
                    let made: Vec<Move> = moves
                        .iter()
                        .map(|(_, p, name)| Move {
                            name: name.clone(),
                            branch: p.branch.clone(),
                            new: p.new.clone(),
                        })
                        .collect();
                    let event = self.event_for(meta, &made)?;
                    let fresh = !spine.contains(&event.id);
                    spine
                        .append(vec![event])
                        .map_err(|e| GitopsError::Events(e.to_string()))?;
                    tracing::warn!(kind = %meta.kind, subject = %meta.subject, recorded_now = fresh, "Finished a change a crash interrupted after its commits.");
                }
                finished += 1;
            } else {
                for ((repo, p, _), head) in moves.iter().zip(&heads) {
                    if head.as_deref() == Some(p.new.as_str()) {
                        repo.undo_refs(std::slice::from_ref(p))?;
                        undone += 1;
                    }
                }
            }
            changed.extend(self.flusher.recycle().put(&path)?);
        }
        changed.sort();
        changed.dedup();
        for dir in changed {
            std::fs::File::open(dir)?.sync_all()?;
        }
        if finished > 0 {
            tracing::info!(calls = finished, "Finished calls from their journals.");
        }
        if undone > 0 {
            tracing::warn!(
                refs = undone,
                "Undid the ref moves of calls a crash interrupted."
            );
        }
        Ok(undone)
    }

    // ---- Organizations ------------------------------------------------------------------

    /// Creates an Organization (`spec` keeps `displayName`, `contact`, `plan`, `labels`).
    pub fn create_org(
        &self,
        call: &Call,
        org: &OrgName,
        spec: &Value,
    ) -> Result<Written, GitopsError> {
        let _g = lock(&self.config_lock);
        if self.config_read(&config::org_path(org))?.is_some() {
            return Err(GitopsError::AlreadyExists(format!("Organization {org}")));
        }
        // The Organization CRD's types: text, and labels of text (a cluster refuses others).
        let mut clean = serde_json::Map::new();
        for k in ["displayName", "contact", "plan"] {
            match spec.get(k) {
                None | Some(Value::Null) => {}
                Some(Value::String(v)) => {
                    clean.insert(k.to_string(), json!(v));
                }
                Some(_) => return Err(GitopsError::Invalid(format!("{k} must be text"))),
            }
        }
        match spec.get("labels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.values().all(Value::is_string) => {
                clean.insert("labels".into(), Value::Object(m.clone()));
            }
            Some(_) => return Err(GitopsError::Invalid("labels must map names to text".into())),
        }
        clean.insert("members".into(), json!([]));
        let mut ch = Changes::default();
        ch.put(
            config::org_path(org),
            yaml::to_string(&config::organization(org, Value::Object(clean))),
        );
        self.apply(
            vec![self.config_write(ch, format!("Create Organization {org}"))],
            call,
            ("organization.created", org, org.as_str()),
        )
    }

    /// Every Organization resource.
    pub fn list_orgs(&self) -> Result<Vec<Value>, GitopsError> {
        let mut out = Vec::new();
        for p in self.config_list("organizations/")? {
            if let Some(v) = self.config_read(&p)? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// One Organization resource.
    pub fn get_org(&self, org: &OrgName) -> Result<Value, GitopsError> {
        self.config_read(&config::org_path(org))?
            .ok_or_else(|| GitopsError::NotFound(format!("Organization {org}")))
    }

    /// The head of `system/catalyst-config` (for `ETag`/`If-Match`).
    pub fn config_head(&self) -> Result<Option<String>, GitopsError> {
        self.config().head(CONFIG_BRANCH)
    }

    /// Deletes an Organization with its Environments and policies; refused while it has
    /// Applications.
    pub fn delete_org(&self, call: &Call, org: &OrgName) -> Result<Written, GitopsError> {
        let ol = self.org_lock(org);
        let _o = lock(&ol);
        let _g = lock(&self.config_lock);
        self.get_org(org)?;
        let apps = self.list_apps(org)?;
        if !apps.is_empty() {
            return Err(GitopsError::HasDependents(format!(
                "Organization {org} still has {} Application(s); uninstall them first",
                apps.len()
            )));
        }
        let mut ch = Changes::default();
        ch.delete(config::org_path(org));
        for e in EnvType::ALL {
            ch.delete(config::env_path(org, e));
            ch.delete(config::policy_path(org, e));
            for p in self.config_list(&format!("{}/", plumbing::dir(org, e)))? {
                ch.delete(p);
            }
        }
        for p in self.config_list(&format!("approvals/{org}/"))? {
            ch.delete(p);
        }
        self.apply(
            vec![self.config_write(ch, format!("Delete Organization {org}"))],
            call,
            ("organization.deleted", org, org.as_str()),
        )
    }

    // ---- Members ------------------------------------------------------------------------

    /// Members of an Organization (`[{name, role}]`).
    pub fn members(&self, org: &OrgName) -> Result<Vec<Value>, GitopsError> {
        Ok(self
            .get_org(org)?
            .pointer("/spec/members")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    fn edit_members(
        &self,
        call: &Call,
        org: &OrgName,
        subject: String,
        kind: &str,
        f: impl FnOnce(&mut Vec<Value>) -> Result<(), GitopsError>,
    ) -> Result<Written, GitopsError> {
        let _g = lock(&self.config_lock);
        let mut doc = self.get_org(org)?;
        let mut members = doc
            .pointer("/spec/members")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        f(&mut members)?;
        doc["spec"]["members"] = Value::Array(members);
        let mut ch = Changes::default();
        ch.put(config::org_path(org), yaml::to_string(&doc));
        self.apply(
            vec![self.config_write(ch, subject)],
            call,
            (kind, org, org.as_str()),
        )
    }

    /// Adds (or changes the role of) a member.
    pub fn set_member(
        &self,
        call: &Call,
        org: &OrgName,
        name: &str,
        role: &str,
    ) -> Result<Written, GitopsError> {
        let entry = json!({ "name": name, "role": role });
        self.edit_members(
            call,
            org,
            format!("Set member {name} of {org} to {role}"),
            "member.set",
            |m| {
                m.retain(|v| v.get("name").and_then(Value::as_str) != Some(name));
                m.push(entry);
                m.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                Ok(())
            },
        )
    }

    /// Removes a member.
    pub fn remove_member(
        &self,
        call: &Call,
        org: &OrgName,
        name: &str,
    ) -> Result<Written, GitopsError> {
        self.edit_members(
            call,
            org,
            format!("Remove member {name} from {org}"),
            "member.removed",
            |m| {
                let before = m.len();
                m.retain(|v| v.get("name").and_then(Value::as_str) != Some(name));
                if m.len() == before {
                    return Err(GitopsError::NotFound(format!("member {name}")));
                }
                Ok(())
            },
        )
    }

    // ---- Environments -------------------------------------------------------------------

    /// Creates Environment `{org}-{env}` and its EnvironmentPolicy (`rules`, default none).
    pub fn create_env(
        &self,
        call: &Call,
        org: &OrgName,
        env: EnvType,
        rules: &Value,
    ) -> Result<Written, GitopsError> {
        policy::validate_rules(rules).map_err(GitopsError::Invalid)?;
        let _g = lock(&self.config_lock);
        self.get_org(org)?;
        if self.config_read(&config::env_path(org, env))?.is_some() {
            return Err(GitopsError::AlreadyExists(format!(
                "Environment {}",
                env_name(org, env)
            )));
        }
        let mut ch = Changes::default();
        ch.put(
            config::env_path(org, env),
            yaml::to_string(&config::environment(org, env)),
        );
        ch.put(
            config::policy_path(org, env),
            yaml::to_string(&config::policy(org, env, rules.clone())),
        );
        if let Some(settings) = &self.plumbing {
            let dir = plumbing::dir(org, env);
            for (path, bytes) in plumbing::files(org, env, &[], settings) {
                ch.put(format!("{dir}/{path}"), bytes);
            }
        }
        let name = env_name(org, env);
        self.apply(
            vec![self.config_write(ch, format!("Create Environment {name}"))],
            call,
            ("environment.created", org, &name),
        )
    }

    /// The Environments of an Organization, each with its policy.
    pub fn list_envs(&self, org: &OrgName) -> Result<Vec<Value>, GitopsError> {
        self.get_org(org)?;
        let mut out = Vec::new();
        for e in EnvType::ALL {
            if let Ok(v) = self.get_env(org, e) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// One Environment: `{environment, policy}`.
    pub fn get_env(&self, org: &OrgName, env: EnvType) -> Result<Value, GitopsError> {
        let e = self
            .config_read(&config::env_path(org, env))?
            .ok_or_else(|| GitopsError::NotFound(format!("Environment {}", env_name(org, env))))?;
        let p = self
            .config_read(&config::policy_path(org, env))?
            .unwrap_or(Value::Null);
        Ok(json!({ "environment": e, "policy": p }))
    }

    /// Deletes an Environment; refused while Applications are installed in it.
    pub fn delete_env(
        &self,
        call: &Call,
        org: &OrgName,
        env: EnvType,
    ) -> Result<Written, GitopsError> {
        let ol = self.org_lock(org);
        let _o = lock(&ol);
        let _g = lock(&self.config_lock);
        self.get_env(org, env)?;
        let n = self
            .list_apps(org)?
            .iter()
            .filter(|a| a["environment"] == json!(env_name(org, env)))
            .count();
        if n > 0 {
            return Err(GitopsError::HasDependents(format!(
                "{n} Application(s) are installed in {}; uninstall them first",
                env_name(org, env)
            )));
        }
        let mut ch = Changes::default();
        ch.delete(config::env_path(org, env));
        ch.delete(config::policy_path(org, env));
        for p in self.config_list(&format!("{}/", plumbing::dir(org, env)))? {
            ch.delete(p);
        }
        let name = env_name(org, env);
        self.apply(
            vec![self.config_write(ch, format!("Delete Environment {name}"))],
            call,
            ("environment.deleted", org, &name),
        )
    }

    // ---- Applications -------------------------------------------------------------------

    pub(crate) fn app_doc(
        &self,
        org: &OrgName,
        app: &AppName,
        env: EnvType,
    ) -> Result<Option<(AppDoc, String)>, GitopsError> {
        let repo = self.app_repo(org, app);
        let Some(head) = repo.head(env.branch())? else {
            return Ok(None);
        };
        Ok(self.app_doc_at(org, app, env, &head)?.map(|d| (d, head)))
    }

    /// The Application document of `env` at commit `rev` (`None`: not installed there).
    pub(crate) fn app_doc_at(
        &self,
        org: &OrgName,
        app: &AppName,
        env: EnvType,
        rev: &str,
    ) -> Result<Option<AppDoc>, GitopsError> {
        let repo = self.app_repo(org, app);
        let Some(bytes) = repo.read(rev, "catalyst.yaml")? else {
            return Ok(None);
        };
        let v = parse_yaml(&bytes, "catalyst.yaml")?;
        Ok(Some(AppDoc::from_resource(&v, env)?))
    }

    /// The values of `doc`'s Application at `rev` as events and the API show them: secret
    /// properties of its configSchema redacted ([`app::redact`]).
    fn shown_values(&self, org: &OrgName, doc: &AppDoc, rev: &str) -> Result<Value, GitopsError> {
        let values = self.read_values(&self.app_repo(org, &doc.app), rev, "values.yaml")?;
        let schema = self.schema_of(org, doc).ok().flatten();
        Ok(app::redact(schema.as_ref(), values))
    }

    pub(crate) fn read_values(
        &self,
        repo: &Repo,
        rev: &str,
        path: &str,
    ) -> Result<Value, GitopsError> {
        match repo.read(rev, path)? {
            Some(b) => {
                let v = parse_yaml(&b, path)?;
                Ok(if v.is_null() { json!({}) } else { v })
            }
            None => Ok(json!({})),
        }
    }

    pub(crate) fn schema_of(
        &self,
        org: &OrgName,
        doc: &AppDoc,
    ) -> Result<Option<Value>, GitopsError> {
        let viewer = Viewer {
            organization: Some(org.to_string()),
        };
        match self.catalog.get(&doc.blueprint, &doc.version, &viewer) {
            Some(e) => Ok(e.blueprint.config_schema.clone()),
            None => Err(GitopsError::Invalid(format!(
                "{} {} is not in the catalog any more; upgrade the Application to a version that is",
                doc.blueprint, doc.version
            ))),
        }
    }

    fn app_write(
        &self,
        org: &OrgName,
        doc: &AppDoc,
        files: BTreeMap<String, Vec<u8>>,
        replace_all: bool,
        subject: String,
        primary: bool,
    ) -> Write {
        let mut changes = Changes {
            replace_all,
            ..Changes::default()
        };
        for (p, b) in files {
            changes.put(p, b);
        }
        Write {
            name: format!("{org}/{}", doc.app),
            repo: self.app_repo(org, &doc.app),
            branch: doc.env.branch().to_string(),
            changes,
            tree: None,
            commit: None,
            subject,
            primary,
        }
    }

    pub(crate) fn require_env(&self, org: &OrgName, env: EnvType) -> Result<(), GitopsError> {
        self.get_org(org)?;
        self.get_env(org, env).map(|_| ())
    }

    /// Installs a Blueprint: resolves its dependencies, validates every value against its
    /// configSchema, then writes one commit per Application repository (the Application and each
    /// new dependency Application `{app}-{dep}`); existing Applications named in
    /// `use_existing` are referenced instead.
    pub fn install(
        &self,
        call: &Call,
        org: &OrgName,
        req: &InstallRequest,
    ) -> Result<Written, GitopsError> {
        let ol = self.org_lock(org);
        let _o = lock(&ol);
        self.require_env(org, req.env)?;
        if self.app_doc(org, &req.app, req.env)?.is_some() {
            return Err(GitopsError::AlreadyExists(format!(
                "Application {org}/{} in {}",
                req.app,
                env_name(org, req.env)
            )));
        }
        let request = Request::parse(&req.blueprint)
            .map_err(|e| GitopsError::Invalid(format!("blueprint: {e}")))?;
        let root = request.name.clone();
        let mut values = BTreeMap::new();
        for (bp, v) in &req.dependency_values {
            let bp = BlueprintName::parse(bp).map_err(|e| GitopsError::Invalid(e.to_string()))?;
            values.insert(bp, v.clone());
        }
        if !req.values.is_null() {
            values.insert(root.clone(), req.values.clone());
        }
        let opts = Options {
            viewer: Viewer {
                organization: Some(org.to_string()),
            },
            values,
            ..Options::default()
        };
        let plan = resolve_plan(&self.catalog, &[request], &opts)
            .map_err(|e| GitopsError::Resolve(e.to_string()))?;
        no_missing(&plan)?;
        // Which Application stands for each planned Blueprint.
        let mut use_existing: BTreeMap<BlueprintName, AppName> = BTreeMap::new();
        for (bp, app) in &req.use_existing {
            let bp = BlueprintName::parse(bp).map_err(|e| GitopsError::Invalid(e.to_string()))?;
            use_existing.insert(bp, AppName::parse(app)?);
        }
        // An existing Application keeps its own values: only what is written is checked.
        value_errors(&plan, |n| !use_existing.contains_key(n))?;
        let mut app_of: AppOf = BTreeMap::new();
        for p in plan.iter() {
            if p.name == root {
                app_of.insert(p.name.clone(), (req.app.clone(), true));
                continue;
            }
            if let Some(existing) = use_existing.get(&p.name) {
                let Some((doc, _)) = self.app_doc(org, existing, req.env)? else {
                    return Err(GitopsError::Invalid(format!(
                        "{existing} is not installed in {}",
                        env_name(org, req.env)
                    )));
                };
                if doc.blueprint != p.name {
                    return Err(GitopsError::Invalid(format!(
                        "{existing} runs {}, not {}",
                        doc.blueprint, p.name
                    )));
                }
                app_of.insert(p.name.clone(), (existing.clone(), false));
                continue;
            }
            let name = AppName::parse(&format!("{}-{}", req.app, p.name.short())).map_err(|e| {
                GitopsError::Invalid(format!("dependency {}: {e}; pick a shorter Application name or use an existing Application", p.name))
            })?;
            if self.app_doc(org, &name, req.env)?.is_some() {
                return Err(GitopsError::AlreadyExists(format!(
                    "Application {org}/{name} (for dependency {}); pass it in useExisting to share it",
                    p.name
                )));
            }
            app_of.insert(p.name.clone(), (name, true));
        }
        // Every artifact this call pins is admitted before anything is written.
        let mut digests: BTreeMap<BlueprintName, Option<String>> = BTreeMap::new();
        for p in plan.iter() {
            if app_of[&p.name].1 {
                let pinned = self.pin(&p.name, &p.version, p.digest.as_deref())?;
                digests.insert(p.name.clone(), pinned);
            }
        }
        let mut writes = Vec::new();
        for p in plan.iter() {
            let (app, new) = &app_of[&p.name];
            if !new {
                continue;
            }
            let (depends_on, dependencies) = links(p, &plan, &app_of);
            let doc = AppDoc {
                org: org.clone(),
                app: app.clone(),
                env: req.env,
                blueprint: p.name.clone(),
                version: p.version.clone(),
                digest: digests.get(&p.name).cloned().flatten(),
                depends_on,
                dependencies,
            };
            let base = if p.name == root {
                if req.values.is_null() {
                    json!({})
                } else {
                    req.values.clone()
                }
            } else {
                p.values.clone()
            };
            let files = app::files(
                &doc,
                &base,
                &json!({}),
                p.config_schema.as_ref(),
                &self.render,
            )?;
            let subject = format!(
                "Install {} {} as {app} into {}",
                p.name,
                p.version,
                env_name(org, req.env)
            );
            writes.push(self.app_write(org, &doc, files, true, subject, p.name == root));
        }
        let subject = format!("{org}/{}", req.app);
        self.apply(writes, call, ("application.installed", org, &subject))
    }

    /// The names of an Organization's Application repositories, sorted.
    pub(crate) fn app_names(&self, org: &OrgName) -> Vec<AppName> {
        let dir = self.root.join(org.as_str());
        let mut names = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if let Some(app) = n.strip_suffix(".git").and_then(|a| AppName::parse(a).ok()) {
                    names.push(app);
                }
            }
        }
        names.sort();
        names
    }

    /// Every Application of an Organization, one entry per Environment it is installed in.
    pub fn list_apps(&self, org: &OrgName) -> Result<Vec<Value>, GitopsError> {
        let mut out = Vec::new();
        for app in self.app_names(org) {
            for env in EnvType::ALL {
                if let Some((doc, head)) = self.app_doc(org, &app, env)? {
                    out.push(summary(&doc, &head));
                }
            }
        }
        Ok(out)
    }

    /// The Applications installed in one Environment (who depends on whom: their `dependsOn`).
    pub(crate) fn env_apps(&self, org: &OrgName, env: EnvType) -> Result<Vec<AppDoc>, GitopsError> {
        let mut out = Vec::new();
        for app in self.app_names(org) {
            if let Some((doc, _)) = self.app_doc(org, &app, env)? {
                out.push(doc);
            }
        }
        Ok(out)
    }

    /// One Application: its state on every env branch.
    pub fn get_app(&self, org: &OrgName, app: &AppName) -> Result<Value, GitopsError> {
        let mut envs = Vec::new();
        for env in EnvType::ALL {
            if let Some((doc, head)) = self.app_doc(org, app, env)? {
                let mut s = summary(&doc, &head);
                s["values"] = self.shown_values(org, &doc, &head)?;
                envs.push(s);
            }
        }
        if envs.is_empty() {
            return Err(GitopsError::NotFound(format!("Application {org}/{app}")));
        }
        Ok(
            json!({ "name": app.as_str(), "organization": org.as_str(), "repository": format!("{org}/{app}"), "environments": envs }),
        )
    }

    fn installed(
        &self,
        org: &OrgName,
        app: &AppName,
        env: EnvType,
    ) -> Result<(AppDoc, String), GitopsError> {
        self.app_doc(org, app, env)?.ok_or_else(|| {
            GitopsError::NotFound(format!("Application {org}/{app} in {}", env_name(org, env)))
        })
    }

    fn rerender(
        &self,
        call: &Call,
        org: &OrgName,
        doc: &AppDoc,
        base: &Value,
        head: &str,
        (subject, kind): (String, &str),
    ) -> Result<Written, GitopsError> {
        let repo = self.app_repo(org, &doc.app);
        let overlay =
            self.read_values(&repo, head, &format!("overlays/{}/values.yaml", doc.env))?;
        let schema = self.schema_of(org, doc)?;
        let files = app::files(doc, base, &overlay, schema.as_ref(), &self.render)?;
        let w = self.app_write(org, doc, files, false, subject, true);
        let subj = format!("{org}/{}", doc.app);
        self.apply(vec![w], call, (kind, org, &subj))
    }

    /// Replaces the values of an Application in one Environment (validated first).
    pub fn set_values(
        &self,
        call: &Call,
        org: &OrgName,
        app: &AppName,
        env: EnvType,
        values: &Value,
    ) -> Result<Written, GitopsError> {
        let ol = self.org_lock(org);
        let _o = lock(&ol);
        let (doc, head) = self.installed(org, app, env)?;
        let subject = format!("Change values of {app} in {}", env_name(org, env));
        // Values read back redacted keep their stored secrets.
        let stored = self.read_values(&self.app_repo(org, app), &head, "values.yaml")?;
        let schema = self.schema_of(org, &doc).ok().flatten();
        let values = app::keep_secrets(schema.as_ref(), values.clone(), &stored);
        self.rerender(
            call,
            org,
            &doc,
            &values,
            &head,
            (subject, "application.values-changed"),
        )
    }

    /// Moves an Application to another version of its Blueprint (`range`, e.g. `2.1.0` or `^2`);
    /// [`Sovereign::upgrade_with`] without `useExisting` or dependency values.
    pub fn upgrade(
        &self,
        call: &Call,
        org: &OrgName,
        app: &AppName,
        env: EnvType,
        range: &str,
    ) -> Result<Written, GitopsError> {
        self.upgrade_with(
            call,
            org,
            &UpgradeRequest {
                app: app.clone(),
                env,
                version: range.to_string(),
                use_existing: BTreeMap::new(),
                dependency_values: BTreeMap::new(),
                with_dependencies: false,
            },
        )
    }

    /// Moves an Application to the highest visible version of its Blueprint in `req.version`.
    ///
    /// The new version is resolved with the Blueprint engine like an install, with every
    /// Application the upgraded one already depends on (transitively), and those named in
    /// `use_existing`, pinned at the version they run. A dependency the new version adds becomes
    /// that existing Application, or a new Application `{app}-{dep}` (values: the Blueprint's
    /// defaults ⊕ what dependents pass ⊕ `dependency_values`). Existing dependency Applications
    /// are not changed implicitly: when the new version (or a new dependency) needs a range the
    /// Application that stands for it does not satisfy, the call is refused with
    /// [`GitopsError::DependencyMismatch`] naming both. With `with_dependencies`, each such
    /// Application is upgraded in the same call instead (pinned at `>=` its version, so to the
    /// highest one the resolver finds that fits, never down; its values kept and re-validated).
    /// A dependency the new version drops is unlinked, not uninstalled.
    ///
    /// Every Application the call moves must stay in the range each Application depending on it
    /// declares (at its new version when it moves too): otherwise
    /// [`GitopsError::DependencyMismatch`] naming each dependent it would break.
    ///
    /// Every value is validated and every pinned artifact admitted before anything is written;
    /// the new, the upgraded-along and the upgraded Applications are one commit per repository,
    /// all or nothing (dependencies first), one `application.upgraded` event, and a dry run
    /// shows each diff.
    pub fn upgrade_with(
        &self,
        call: &Call,
        org: &OrgName,
        req: &UpgradeRequest,
    ) -> Result<Written, GitopsError> {
        let ol = self.org_lock(org);
        let _o = lock(&ol);
        let writes = self.upgrade_writes(org, req, None)?;
        let subj = format!("{org}/{}", req.app);
        self.apply(writes, call, ("application.upgraded", org, &subj))
    }

    /// The writes of [`Sovereign::upgrade_with`] (the caller holds the Organization's lock);
    /// `inputs`: the Application's `values.yaml` and overlay to render instead of its head's
    /// (a pushed upgrade's). The upgraded Application's write is the last.
    pub(crate) fn upgrade_writes(
        &self,
        org: &OrgName,
        req: &UpgradeRequest,
        inputs: Option<(&Value, &Value)>,
    ) -> Result<Vec<Write>, GitopsError> {
        let (app, env) = (&req.app, req.env);
        let (doc, head) = self.installed(org, app, env)?;
        let repo = self.app_repo(org, app);
        let (base, overlay) = match inputs {
            Some((b, o)) => (b.clone(), o.clone()),
            None => (
                self.read_values(&repo, &head, "values.yaml")?,
                self.read_values(&repo, &head, &format!("overlays/{env}/values.yaml"))?,
            ),
        };
        let range = VersionRange::parse(&req.version)
            .map_err(|e| GitopsError::Invalid(format!("version: {e}")))?;
        let viewer = Viewer {
            organization: Some(org.to_string()),
        };
        let target = self
            .catalog
            .versions_of(&doc.blueprint)
            .iter()
            .filter(|e| Catalog::visible(e, &viewer) && range.matches(&e.blueprint.version))
            .max_by(|a, b| a.blueprint.version.cmp(&b.blueprint.version))
            .ok_or_else(|| {
                GitopsError::Invalid(format!("no version of {} matches {range}", doc.blueprint))
            })?
            .blueprint
            .version
            .clone();
        let root = doc.blueprint.clone();

        // The Applications that already stand for a Blueprint: those named in useExisting,
        // then those the Application depends on, transitively.
        let mut existing: BTreeMap<BlueprintName, AppDoc> = BTreeMap::new();
        let mut heads: BTreeMap<BlueprintName, String> = BTreeMap::new();
        for (bp, name) in &req.use_existing {
            let bp = BlueprintName::parse(bp).map_err(|e| GitopsError::Invalid(e.to_string()))?;
            if bp == root {
                return Err(GitopsError::Invalid(format!(
                    "useExisting names {bp}, the Blueprint being upgraded"
                )));
            }
            let name = AppName::parse(name)?;
            let Some((d, h)) = self.app_doc(org, &name, env)? else {
                return Err(GitopsError::Invalid(format!(
                    "{name} is not installed in {}",
                    env_name(org, env)
                )));
            };
            if d.blueprint != bp {
                return Err(GitopsError::Invalid(format!(
                    "{name} runs {}, not {bp}",
                    d.blueprint
                )));
            }
            heads.insert(bp.clone(), h);
            existing.insert(bp, d);
        }
        let mut queue: VecDeque<String> = doc
            .depends_on
            .iter()
            .map(|d| d.application.clone())
            .collect();
        let mut seen = BTreeSet::new();
        while let Some(name) = queue.pop_front() {
            if !seen.insert(name.clone()) || name == app.as_str() {
                continue;
            }
            let Ok(name) = AppName::parse(&name) else {
                continue;
            };
            // A link to an Application no longer installed is dropped (the plan decides).
            let Some((d, h)) = self.app_doc(org, &name, env)? else {
                continue;
            };
            queue.extend(d.depends_on.iter().map(|x| x.application.clone()));
            if d.blueprint != root && !existing.contains_key(&d.blueprint) {
                heads.insert(d.blueprint.clone(), h);
                existing.insert(d.blueprint.clone(), d);
            }
        }

        // Values: the Application's own (with its overlay) and every existing one's decide the
        // `when` predicates as they did for them; dependencyValues only for new Applications.
        let mut values = BTreeMap::new();
        for (bp, v) in &req.dependency_values {
            let bp = BlueprintName::parse(bp).map_err(|e| GitopsError::Invalid(e.to_string()))?;
            if let Some(d) = existing.get(&bp) {
                return Err(GitopsError::Invalid(format!(
                    "dependencyValues for {bp}: {} (an existing Application) stands for it; change its values there",
                    d.app
                )));
            }
            values.insert(bp, v.clone());
        }
        let effective = |repo: &Repo, head: &str, env: EnvType, base: Value| {
            let mut v = if base.is_object() { base } else { json!({}) };
            let overlay = self.read_values(repo, head, &format!("overlays/{env}/values.yaml"))?;
            catalyst_blueprint::resolve::merge(&mut v, &overlay);
            Ok::<Value, GitopsError>(v)
        };
        for (bp, d) in &existing {
            let r = self.app_repo(org, &d.app);
            let b = self.read_values(&r, &heads[bp], "values.yaml")?;
            values.insert(bp.clone(), effective(&r, &heads[bp], env, b)?);
        }
        values.insert(root.clone(), effective(&repo, &head, env, base.clone())?);
        let opts = Options {
            viewer,
            values,
            ..Options::default()
        };
        // Existing Applications are pinned at their version; with withDependencies, each one the
        // requirements reject may move up (never down) to the version the resolver picks.
        let mut relaxed: BTreeSet<BlueprintName> = BTreeSet::new();
        let plan = loop {
            let mut requests = vec![Request {
                name: root.clone(),
                range: VersionRange::exact(&target),
            }];
            for (bp, d) in &existing {
                let range = if relaxed.contains(bp) {
                    VersionRange::parse(&format!(">={}", d.version))
                        .map_err(|e| GitopsError::Invalid(e.to_string()))?
                } else {
                    VersionRange::exact(&d.version)
                };
                requests.push(Request {
                    name: bp.clone(),
                    range,
                });
            }
            match resolve_plan(&self.catalog, &requests, &opts) {
                Ok(plan) => break plan,
                Err(ResolveError::Conflict(c))
                    if req.with_dependencies
                        && existing.contains_key(&c.name)
                        && relaxed.insert(c.name.clone()) => {}
                Err(e) => return Err(dependency_mismatch(e, &existing, &relaxed)),
            }
        };
        no_missing(&plan)?;
        // The existing Applications this call upgrades along.
        let moved: BTreeSet<BlueprintName> = relaxed
            .into_iter()
            .filter(|bp| {
                plan.get(bp)
                    .is_some_and(|p| p.version != existing[bp].version)
            })
            .collect();

        // Walk from the Application (and those upgraded along): each dependency is an existing
        // Application or a new one.
        let mut app_of: AppOf = BTreeMap::new();
        app_of.insert(root.clone(), (app.clone(), false));
        for bp in &moved {
            app_of.insert(bp.clone(), (existing[bp].app.clone(), false));
        }
        let mut stack: Vec<BlueprintName> = moved.iter().cloned().collect();
        stack.push(root.clone());
        while let Some(n) = stack.pop() {
            let Some(p) = plan.get(&n) else {
                continue;
            };
            for e in &p.depends_on {
                if app_of.contains_key(&e.name) {
                    continue;
                }
                if let Some(d) = existing.get(&e.name) {
                    app_of.insert(e.name.clone(), (d.app.clone(), false));
                    continue;
                }
                let name = AppName::parse(&format!("{app}-{}", e.name.short())).map_err(|err| {
                    GitopsError::Invalid(format!(
                        "dependency {}: {err}; use an existing Application (useExisting)",
                        e.name
                    ))
                })?;
                if self.app_doc(org, &name, env)?.is_some() {
                    return Err(GitopsError::AlreadyExists(format!(
                        "Application {org}/{name} (for dependency {}); pass it in useExisting to share it",
                        e.name
                    )));
                }
                app_of.insert(e.name.clone(), (name, true));
                stack.push(e.name.clone());
            }
        }
        value_errors(&plan, |n| {
            *n == root || moved.contains(n) || app_of.get(n).is_some_and(|(_, new)| *new)
        })?;
        let Some(planned) = plan.get(&root) else {
            return Err(GitopsError::Resolve(format!(
                "{root} {target} is not in the plan"
            )));
        };

        // No Application outside the call may end up on a version it does not accept.
        let mut moving: BTreeMap<AppName, (BlueprintName, semver::Version)> = BTreeMap::new();
        if planned.version != doc.version {
            moving.insert(app.clone(), (root.clone(), planned.version.clone()));
        }
        for p in plan.iter().filter(|p| moved.contains(&p.name)) {
            moving.insert(
                existing[&p.name].app.clone(),
                (p.name.clone(), p.version.clone()),
            );
        }
        self.keep_dependents(org, env, &opts.viewer, &moving)?;

        let mut writes = Vec::new();
        for p in plan.iter() {
            if moved.contains(&p.name) {
                let d = &existing[&p.name];
                let r = self.app_repo(org, &d.app);
                let h = &heads[&p.name];
                let values = (
                    &self.read_values(&r, h, "values.yaml")?,
                    &self.read_values(&r, h, &format!("overlays/{env}/values.yaml"))?,
                );
                let why = format!(" for {app} {root} {target}");
                let w = self.upgrade_write(org, d.clone(), p, (&plan, &app_of), values, &why)?;
                writes.push(w);
                continue;
            }
            let Some((name, true)) = app_of.get(&p.name) else {
                continue;
            };
            let (depends_on, dependencies) = links(p, &plan, &app_of);
            let dep_doc = AppDoc {
                org: org.clone(),
                app: name.clone(),
                env,
                blueprint: p.name.clone(),
                version: p.version.clone(),
                digest: self.pin(&p.name, &p.version, p.digest.as_deref())?,
                depends_on,
                dependencies,
            };
            let files = app::files(
                &dep_doc,
                &p.values,
                &json!({}),
                p.config_schema.as_ref(),
                &self.render,
            )?;
            let subject = format!(
                "Install {} {} as {name} into {} for {app} {} {}",
                p.name,
                p.version,
                env_name(org, env),
                root,
                target
            );
            writes.push(self.app_write(org, &dep_doc, files, true, subject, false));
        }
        let mut w =
            self.upgrade_write(org, doc, planned, (&plan, &app_of), (&base, &overlay), "")?;
        w.primary = true;
        writes.push(w);
        Ok(writes)
    }

    /// The commit that moves `doc` to the planned version `p`: relinked to the plan's
    /// Applications, its values and overlay kept and rendered with the new configSchema, the
    /// artifact admitted first.
    fn upgrade_write(
        &self,
        org: &OrgName,
        mut doc: AppDoc,
        p: &Planned,
        (plan, app_of): (&Plan, &AppOf),
        (base, overlay): (&Value, &Value),
        why: &str,
    ) -> Result<Write, GitopsError> {
        let from = doc.version.clone();
        (doc.depends_on, doc.dependencies) = links(p, plan, app_of);
        doc.version = p.version.clone();
        doc.digest = self.pin(&p.name, &p.version, p.digest.as_deref())?;
        let files = app::files(&doc, base, overlay, p.config_schema.as_ref(), &self.render)?;
        let subject = format!(
            "Upgrade {} in {} from {} {from} to {}{why}",
            doc.app,
            env_name(org, doc.env),
            p.name,
            doc.version
        );
        Ok(self.app_write(org, &doc, files, false, subject, false))
    }

    /// Refuses a call that would move an Application (`moving`: Application → its Blueprint and
    /// new version) out of a range another Application of the Environment declares on it; a
    /// dependent that moves in the same call is judged at its new version.
    /// [`GitopsError::DependencyMismatch`] names every dependent it would break.
    fn keep_dependents(
        &self,
        org: &OrgName,
        env: EnvType,
        viewer: &Viewer,
        moving: &BTreeMap<AppName, (BlueprintName, semver::Version)>,
    ) -> Result<(), GitopsError> {
        if moving.is_empty() {
            return Ok(());
        }
        let apps = self.env_apps(org, env)?;
        let mut broken = Vec::new();
        for (name, (bp, to)) in moving {
            for d in dependents_of(&apps, name.as_str()) {
                let (dbp, dv) = moving
                    .get(&d.app)
                    .map_or((&d.blueprint, &d.version), |(b, v)| (b, v));
                // A Blueprint version no longer in the catalog declares nothing to check.
                let Some(entry) = self.catalog.get(dbp, dv, viewer) else {
                    continue;
                };
                let ranges: Vec<&VersionRange> = entry
                    .blueprint
                    .depends
                    .iter()
                    .filter(|x| x.blueprint == *bp)
                    .map(|x| &x.version)
                    .collect();
                if ranges.iter().any(|r| r.matches(to)) {
                    continue;
                }
                if let Some(need) = ranges.first() {
                    let who = &d.app;
                    broken.push(format!(
                        "{who} ({dbp} {dv}) needs {bp} {need}; {bp} {to} would break it — upgrade {who} in the same call (withDependencies) or pick a version in {need}"
                    ));
                }
            }
        }
        if broken.is_empty() {
            Ok(())
        } else {
            Err(GitopsError::DependencyMismatch(broken.join("; ")))
        }
    }

    /// Uninstalls an Application from one Environment (a commit that empties its branch);
    /// refused while other Applications depend on it. With `cascade`, the dependency
    /// Applications created for it (`{app}-{dep}`, transitively) that nothing else depends on
    /// go in the same call, one commit per repository, all or nothing.
    pub fn uninstall(
        &self,
        call: &Call,
        org: &OrgName,
        app: &AppName,
        env: EnvType,
        cascade: bool,
    ) -> Result<Written, GitopsError> {
        let ol = self.org_lock(org);
        let _o = lock(&ol);
        self.installed(org, app, env)?;
        // Who depends on whom in this Environment.
        let apps = self.env_apps(org, env)?;
        let deps_of = |name: &str| -> Vec<String> {
            apps.iter()
                .find(|a| a.app.as_str() == name)
                .map(|a| a.depends_on.iter().map(|d| d.application.clone()).collect())
                .unwrap_or_default()
        };
        let dependents = dependents_of(&apps, app.as_str());
        if !dependents.is_empty() {
            return Err(GitopsError::HasDependents(format!(
                "{} depend(s) on {app}; uninstall them first",
                dependents
                    .iter()
                    .map(|d| d.app.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut remove = vec![app.to_string()];
        if cascade {
            // Grow the set while a created dependency's dependents are all inside it.
            let prefix = format!("{app}-");
            loop {
                let mut grew = false;
                for name in remove.clone() {
                    for dep in deps_of(&name) {
                        if dep.starts_with(&prefix)
                            && !remove.contains(&dep)
                            && dependents_of(&apps, &dep)
                                .iter()
                                .all(|d| remove.iter().any(|r| *r == d.app.as_str()))
                        {
                            remove.push(dep);
                            grew = true;
                        }
                    }
                }
                if !grew {
                    break;
                }
            }
        }
        let mut writes = Vec::new();
        for (i, name) in remove.iter().enumerate() {
            let name = AppName::parse(name)?;
            let Some((doc, _)) = self.app_doc(org, &name, env)? else {
                continue;
            };
            writes.push(Write {
                name: format!("{org}/{name}"),
                repo: self.app_repo(org, &name),
                branch: env.branch().into(),
                changes: Changes {
                    replace_all: true,
                    ..Changes::default()
                },
                tree: None,
                commit: None,
                subject: format!(
                    "Uninstall {name} ({} {}) from {}",
                    doc.blueprint,
                    doc.version,
                    env_name(org, env)
                ),
                primary: i == 0,
            });
        }
        let subj = format!("{org}/{app}");
        self.apply(writes, call, ("application.uninstalled", org, &subj))
    }

    /// Writes a commit whose tree is that of `to`, an earlier commit of the env branch.
    pub fn rollback(
        &self,
        call: &Call,
        org: &OrgName,
        app: &AppName,
        env: EnvType,
        to: &str,
    ) -> Result<Written, GitopsError> {
        let ol = self.org_lock(org);
        let _o = lock(&ol);
        let repo = self.app_repo(org, app);
        let head = repo.head(env.branch())?.ok_or_else(|| {
            GitopsError::NotFound(format!("Application {org}/{app} in {}", env_name(org, env)))
        })?;
        let target = repo
            .resolve_commit(to)?
            .filter(|t| repo.is_ancestor(t, &head).unwrap_or(false))
            .ok_or_else(|| {
                GitopsError::Invalid(format!(
                    "{to} is not a commit of {org}/{app} {}",
                    env.branch()
                ))
            })?;
        let w = Write {
            name: format!("{org}/{app}"),
            repo: repo.clone(),
            branch: env.branch().into(),
            changes: Changes::default(),
            tree: Some(repo.tree_of(&target)?),
            commit: None,
            subject: format!(
                "Roll {app} in {} back to {}",
                env_name(org, env),
                &target[..12]
            ),
            primary: true,
        };
        let subj = format!("{org}/{app}");
        self.apply(vec![w], call, ("application.rolled-back", org, &subj))
    }

    /// Where promoting `app` from `from` into `to` stands now: the source commit, the
    /// destination's EnvironmentPolicy rules, the approvals recorded for that commit and the
    /// first rule not met (none: a promotion would be allowed now).
    pub fn promotion(
        &self,
        org: &OrgName,
        app: &AppName,
        from: EnvType,
        to: EnvType,
    ) -> Result<Promotion, GitopsError> {
        let (_, source) = self.installed(org, app, from)?;
        self.require_env(org, to)?;
        self.promotion_of(org, app, &source, to)
    }

    fn promotion_of(
        &self,
        org: &OrgName,
        app: &AppName,
        source: &str,
        to: EnvType,
    ) -> Result<Promotion, GitopsError> {
        let changed = self.app_repo(org, app).commit_time(source)?;
        self.promotion_at(org, app, source, changed, to)
    }

    /// [`Sovereign::promotion_of`] for a `source` commit made at `changed` (Unix seconds),
    /// which need not be in the repository yet (a pushed one).
    pub(crate) fn promotion_at(
        &self,
        org: &OrgName,
        app: &AppName,
        source: &str,
        changed: i64,
        to: EnvType,
    ) -> Result<Promotion, GitopsError> {
        let rules = self
            .config_read(&config::policy_path(org, to))?
            .and_then(|p| p.pointer("/spec/rules").cloned())
            .unwrap_or(json!([]));
        let approvals: Vec<Value> = self
            .config_read(&config::approvals_path(org, app.as_str(), to))?
            .and_then(|d| {
                d.pointer("/spec/approvals")
                    .and_then(Value::as_array)
                    .cloned()
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["commit"] == json!(source))
            .collect();
        let facts = policy::Facts {
            now: chrono::Utc::now(),
            source_changed: chrono::DateTime::from_timestamp(changed, 0).unwrap_or_default(),
            approvals: approvals
                .iter()
                .filter_map(|a| a["by"].as_str().map(str::to_string))
                .collect(),
        };
        Ok(Promotion {
            unmet: policy::unmet(&rules, &facts),
            source: source.to_owned(),
            rules,
            approvals,
        })
    }

    /// Records an approval by the caller of promoting `app` from `from` into `to` (of the
    /// source's current commit).
    pub fn approve(
        &self,
        call: &Call,
        org: &OrgName,
        app: &AppName,
        from: EnvType,
        to: EnvType,
    ) -> Result<Written, GitopsError> {
        let ol = self.org_lock(org);
        let _o = lock(&ol);
        let (_, source) = self.installed(org, app, from)?;
        self.require_env(org, to)?;
        let _g = lock(&self.config_lock);
        let path = config::approvals_path(org, app.as_str(), to);
        let mut doc = self.config_read(&path)?.unwrap_or_else(|| json!({
            "apiVersion": crate::API_VERSION, "kind": "PromotionApprovals",
            "metadata": { "name": format!("{app}-{to}"), "namespace": "catalyst-system", "labels": { "catalyst.openova.io/organization": org.as_str() } },
            "spec": { "application": app.as_str(), "environment": env_name(org, to), "approvals": [] },
        }));
        let mut list = doc
            .pointer("/spec/approvals")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        list.retain(|a| !(a["by"] == json!(call.actor.name) && a["commit"] == json!(source)));
        list.push(json!({ "by": call.actor.name, "commit": source, "from": from.as_str(), "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) }));
        doc["spec"]["approvals"] = Value::Array(list);
        let mut ch = Changes::default();
        ch.put(path, yaml::to_string(&doc));
        let subj = format!("{org}/{app}");
        self.apply(
            vec![self.config_write(
                ch,
                format!("Approve promotion of {app} from {from} to {to}"),
            )],
            call,
            ("application.approved", org, &subj),
        )
    }

    /// Promotes the pinned version and values of `app` from one env branch to another, if the
    /// destination's EnvironmentPolicy allows it now.
    pub fn promote(
        &self,
        call: &Call,
        org: &OrgName,
        app: &AppName,
        from: EnvType,
        to: EnvType,
    ) -> Result<Written, GitopsError> {
        if from == to {
            return Err(GitopsError::Invalid(
                "from and to are the same env type".into(),
            ));
        }
        let ol = self.org_lock(org);
        let _o = lock(&ol);
        let (doc, source) = self.installed(org, app, from)?;
        self.require_env(org, to)?;
        let repo = self.app_repo(org, app);
        if let Some((rule, detail)) = self.promotion_of(org, app, &source, to)?.unmet {
            return Err(GitopsError::PolicyUnmet { rule, detail });
        }
        for d in &doc.depends_on {
            let dep = AppName::parse(&d.application)?;
            if self.app_doc(org, &dep, to)?.is_none() {
                return Err(GitopsError::Invalid(format!(
                    "{app} depends on {dep}, which is not in {} yet; promote it first",
                    env_name(org, to)
                )));
            }
        }
        let base = self.read_values(&repo, &source, "values.yaml")?;
        let dest_head = repo.head(to.branch())?;
        let overlay = match &dest_head {
            Some(h) => self.read_values(&repo, h, &format!("overlays/{to}/values.yaml"))?,
            None => json!({}),
        };
        let mut dest = doc.clone();
        dest.env = to;
        let current = self.app_doc(org, app, to)?.map(|(d, _)| d);
        let same_artifact = current.is_some_and(|c| {
            c.blueprint == dest.blueprint && c.version == dest.version && c.digest == dest.digest
        });
        if !same_artifact {
            dest.digest = self.pin(&dest.blueprint, &dest.version, dest.digest.as_deref())?;
        }
        let schema = self.schema_of(org, &dest)?;
        let files = app::files(&dest, &base, &overlay, schema.as_ref(), &self.render)?;
        let subject = format!(
            "Promote {app} {} {} from {} to {} ({})",
            doc.blueprint,
            doc.version,
            env_name(org, from),
            env_name(org, to),
            &source[..12]
        );
        let w = self.app_write(org, &dest, files, false, subject, true);
        let subj = format!("{org}/{app}");
        self.apply(vec![w], call, ("application.promoted", org, &subj))
    }
}

/// A resolution failure of an upgrade: when an existing dependency Application's version (one
/// not `relaxed` by withDependencies) is what does not fit, [`GitopsError::DependencyMismatch`]
/// naming the requirement and the Application; otherwise the resolver's explanation.
fn dependency_mismatch(
    e: ResolveError,
    existing: &BTreeMap<BlueprintName, AppDoc>,
    relaxed: &BTreeSet<BlueprintName>,
) -> GitopsError {
    if let ResolveError::Conflict(c) = &e {
        if let Some(d) = existing.get(&c.name).filter(|_| !relaxed.contains(&c.name)) {
            let need = c.sides.iter().filter_map(|s| s.last()).find_map(|s| {
                let (by, v) = s.from.as_ref()?;
                VersionRange::parse(&s.range)
                    .is_ok_and(|r| !r.matches(&d.version))
                    .then(|| format!("{by} {v} needs {} {}", c.name, s.range))
            });
            if let Some(need) = need {
                return GitopsError::DependencyMismatch(format!(
                    "{need}, but Application {} runs {} {}, which does not satisfy it; upgrade {} in the same call (withDependencies) — an existing dependency Application is never upgraded implicitly",
                    d.app, d.blueprint, d.version, d.app
                ));
            }
        }
    }
    GitopsError::Resolve(e.to_string())
}

/// The Applications of `apps` whose `dependsOn` names `name`.
fn dependents_of<'a>(apps: &'a [AppDoc], name: &str) -> Vec<&'a AppDoc> {
    apps.iter()
        .filter(|a| a.depends_on.iter().any(|d| d.application == name))
        .collect()
}

/// Where a promotion stands ([`Sovereign::promotion`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    /// The source Environment's commit a promotion would take.
    pub source: String,
    /// The destination's EnvironmentPolicy rules (`[]`: none).
    pub rules: Value,
    /// Approvals recorded for `source` (`{by, commit, from, time}` each).
    pub approvals: Vec<Value>,
    /// The first rule not met, `(rule, detail)`; `None`: allowed now.
    pub unmet: Option<(String, String)>,
}

fn summary(doc: &AppDoc, head: &str) -> Value {
    json!({
        "name": doc.app.as_str(),
        "environment": env_name(&doc.org, doc.env),
        "envType": doc.env.as_str(),
        "branch": doc.env.branch(),
        "commit": head,
        "blueprint": doc.blueprint.as_str(),
        "version": doc.version.to_string(),
        "dependsOn": doc.depends_on.iter().map(|d| d.application.clone()).collect::<Vec<_>>(),
    })
}
