//! Bare Git repositories: ordinary ones that real `git` reads (and serves over smart HTTP).
//!
//! Two backends behind one [`Repo`]:
//! - [`gix`] (the default): everything an install, upgrade, set-values, uninstall or rollback
//!   does — init, reads, blob/tree/commit writes (the empty tree object too), the
//!   compare-and-swap ref transaction with its reflog, undo — runs in process with gitoxide:
//!   **no `git` process on the write path**. Loose objects and refs are fsynced (file before
//!   its rename, then the directory) before [`Repo::update_refs`] returns; gitoxide itself does
//!   not fsync. Only [`Repo::diff`] (dry runs) still runs `git diff-tree`.
//! - [`cli`]: the `git` CLI plumbing this replaced, about ten processes per repository write;
//!   kept only to measure the difference in the same run (`benches/install.rs`), selected with
//!   the hidden [`Repo::with_backend`] / `Sovereign::with_git_cli`.
//!
//! Both keep git's lock files (`refs/heads/<branch>.lock`) and the repository settings
//! (`core.logAllRefUpdates always`, `core.fsync objects,reference`) so the real `git` also
//! fsyncs and logs when it writes.
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::GitopsError;

mod cli;
mod flusher;
mod gix;
mod journal;
mod repair;

pub use flusher::{Deferred, Flusher, Pending, Recycle};
pub(crate) use journal::{decode as decode_journal, Decoded};
pub(crate) use repair::{repair_ref, restore_object};

/// The all-zero object id: "this ref must not exist yet".
pub const ZERO: &str = "0000000000000000000000000000000000000000";
/// The id of the empty tree.
const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// Who made a change, and why: becomes the commit's author and trailers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Display name (token name or user).
    pub name: String,
    /// E-mail for the commit author.
    pub email: String,
}

/// A set of file changes on one branch: `Some(bytes)` writes, `None` deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Path → new content, or deletion.
    pub files: BTreeMap<String, Option<Vec<u8>>>,
    /// Delete every file not written by this change set (replace the whole tree).
    pub replace_all: bool,
}

impl Changes {
    /// Writes `path`.
    pub fn put(&mut self, path: impl Into<String>, content: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), Some(content.into()));
    }
    /// Deletes `path`.
    pub fn delete(&mut self, path: impl Into<String>) {
        self.files.insert(path.into(), None);
    }
}

/// One commit waiting for its ref update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The branch (`develop`).
    pub branch: String,
    /// The commit the branch must still point at (`None`: must not exist).
    pub old: Option<String>,
    /// The new commit.
    pub new: String,
    /// True when the tree did not change (nothing to commit).
    pub unchanged: bool,
}

/// How a [`Repo`] reads and writes.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// In process, with gitoxide (the product).
    #[default]
    Gix,
    /// Through the `git` CLI's plumbing (benchmark comparison only).
    Cli,
}

/// A bare repository.
#[derive(Debug, Clone)]
pub struct Repo {
    path: PathBuf,
    backend: Backend,
}

/// The name prefix of a repository being made aside by [`Repo::init`].
const INIT_ASIDE: &str = ".init-";

/// Calls `$m` on the backend of `$self`.
macro_rules! dispatch {
    ($self:ident . $m:ident ( $($a:expr),* )) => {
        match $self.backend {
            Backend::Gix => gix::Gix { path: &$self.path }.$m($($a),*),
            Backend::Cli => cli::Cli { path: &$self.path }.$m($($a),*),
        }
    };
}

/// The error of a compare-and-swap ref update whose expectation is stale.
fn conflict(path: &Path) -> GitopsError {
    GitopsError::Conflict(format!(
        "{} moved while this change was being written; read it again and retry",
        path.display()
    ))
}

/// The settings every repository has (an init cut short is finished by
/// [`Repo::clear_leftovers`]): reflogs, so a bad update can be traced; fsync of objects
/// (loose ones too, which git skips by default) and refs, so what real `git` writes survives a
/// power loss too. Appended as a `[core]` section through git's `config.lock`.
fn configure(path: &Path) -> Result<(), GitopsError> {
    let config = path.join("config");
    let mut text = std::fs::read(&config).unwrap_or_default();
    if !text.is_empty() && !text.ends_with(b"\n") {
        text.push(b'\n');
    }
    text.extend_from_slice(b"[core]\n\tlogAllRefUpdates = always\n\tfsync = objects,reference\n");
    Ok(write_atomic(&config, &text)?)
}

/// Replaces `target` the way git does: through `<target>.lock` (created exclusively), fsynced,
/// renamed into place, and the directory fsynced.
pub(crate) fn write_atomic(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut lock = target.as_os_str().to_owned();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&lock)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = written.and_then(|()| std::fs::rename(&lock, target)) {
        let _ = std::fs::remove_file(&lock);
        return Err(e);
    }
    match target.parent() {
        Some(dir) => sync_paths(&[dir.to_path_buf()]),
        None => Ok(()),
    }
}

/// Runs `f` on every item, in parallel when there are several: concurrent fsyncs share the
/// file system's journal commits, so a batch costs about one fsync, not one per file.
fn parallel<T: Sync>(
    items: &[T],
    f: impl Fn(&T) -> std::io::Result<()> + Sync,
) -> std::io::Result<()> {
    const THREADS: usize = 16;
    match items {
        [] => Ok(()),
        [one] => f(one),
        _ => std::thread::scope(|s| {
            let f = &f;
            let handles: Vec<_> = items
                .chunks(items.len().div_ceil(THREADS))
                .map(|chunk| s.spawn(move || chunk.iter().try_for_each(f)))
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("an fsync thread panicked")))
            })
        }),
    }
}

/// fsyncs files and directories by path (in parallel).
fn sync_paths(paths: &[PathBuf]) -> std::io::Result<()> {
    parallel(paths, |p| std::fs::File::open(p)?.sync_all())
}

impl Repo {
    /// Opens (without checking) the repository at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Repo {
        Repo {
            path: path.into(),
            backend: Backend::default(),
        }
    }

    /// The same repository, read and written through `backend` (benchmark comparison only).
    #[doc(hidden)]
    pub fn with_backend(mut self, backend: Backend) -> Repo {
        self.backend = backend;
        self
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the directory holds a repository.
    pub fn exists(&self) -> bool {
        self.path.join("HEAD").is_file()
    }

    /// Creates the bare repository if it does not exist (HEAD → `main`). It is made aside, in
    /// `<parent>/.init-<random>`, and renamed into place, so a kill mid-way never leaves a
    /// half-made repository (no `HEAD`, which `git` refuses) under the real name; the aside
    /// folder is [`Repo::clear_aside`]'s. A folder already there without `HEAD` is such a
    /// leftover of an older init and is replaced.
    pub fn init(&self) -> Result<(), GitopsError> {
        if self.exists() {
            return Ok(());
        }
        let parent = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        let aside = Repo {
            path: parent.join(format!(
                "{INIT_ASIDE}{}",
                hex::encode(rand::random::<[u8; 8]>())
            )),
            backend: self.backend,
        };
        std::fs::create_dir_all(&aside.path)?;
        let made = dispatch!(aside.init());
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&aside.path);
            return Err(e);
        }
        if self.path.exists() {
            std::fs::remove_dir_all(&self.path)?;
        }
        std::fs::rename(&aside.path, &self.path)?;
        gix::forget(&self.path);
        Ok(sync_paths(&[parent.to_path_buf()])?)
    }

    /// Drops the handles kept open on the repositories under `root` (at open: recovery may
    /// write their files again).
    pub fn forget_open_under(root: &Path) {
        gix::forget_under(root);
    }

    /// Removes the folders of inits a kill cut short under `dir` (an owner's folder of
    /// repositories); returns them. Only for the one process that writes there.
    pub fn clear_aside(dir: &Path) -> Result<Vec<PathBuf>, GitopsError> {
        let mut removed = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(INIT_ASIDE) && e.path().is_dir() {
                std::fs::remove_dir_all(e.path())?;
                removed.push(e.path());
            }
        }
        Ok(removed)
    }

    /// Creates the bare repository if it does not exist, leaving its durability to the
    /// [`publish`] of its first commit (the CLI backend: [`Repo::init`]). For a repository
    /// made by a call that moves its first branch in the same call.
    pub fn init_staged(&self) -> Result<(), GitopsError> {
        if self.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.path)?;
        match self.backend {
            Backend::Gix => gix::Gix { path: &self.path }.init_staged(),
            Backend::Cli => cli::Cli { path: &self.path }.init(),
        }
    }

    /// Makes the objects of a prepared commit durable and readable without moving any ref
    /// (dry runs, whose diff reads them). A no-op once published, and with the CLI backend.
    pub fn store(&self, prepared: &Prepared) -> Result<(), GitopsError> {
        match self.backend {
            Backend::Gix => gix::Gix { path: &self.path }.store(&prepared.new),
            Backend::Cli => Ok(()),
        }
    }

    /// Drops a prepared commit that will not be published (its objects are not kept).
    /// A no-op once published, and with the CLI backend.
    pub fn forget(&self, prepared: &Prepared) {
        if self.backend == Backend::Gix {
            gix::Gix { path: &self.path }.forget(&prepared.new);
        }
    }

    /// Removes what a killed write leaves behind — git's lock files (a SIGKILL skips git's own
    /// clean-up, and a stale `refs/heads/<branch>.lock` refuses every later update of that
    /// branch), the CLI backend's private index files and blob staging, loose objects never
    /// renamed into place — and finishes an init cut short. Only for the one process that
    /// writes the repository, before it writes (`catalyst serve` holds the data directory's
    /// lock). Returns the paths removed.
    pub fn clear_leftovers(&self) -> Result<Vec<PathBuf>, GitopsError> {
        fn locks_under(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    locks_under(&p, out);
                } else if p.extension().is_some_and(|x| x == "lock") {
                    out.push(p);
                }
            }
        }
        fn temporary_objects(objects: &Path, out: &mut Vec<PathBuf>) {
            let Ok(rd) = std::fs::read_dir(objects) else {
                return;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp") || name.starts_with("tmp_obj_") {
                    out.push(e.path());
                } else if name.len() == 2 && e.path().is_dir() {
                    temporary_objects(&e.path(), out);
                }
            }
        }
        /// Pack files never renamed into place, and a pack whose index never was (a kill
        /// between the two renames: no ref can name its objects yet, and git ignores it).
        fn temporary_packs(pack: &Path, out: &mut Vec<PathBuf>) {
            let Ok(rd) = std::fs::read_dir(pack) else {
                return;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let orphan = name
                    .strip_suffix(".pack")
                    .filter(|n| n.starts_with("pack-"))
                    .is_some_and(|n| !pack.join(format!("{n}.idx")).exists());
                if name.starts_with("tmp_pack_") || name.starts_with("tmp_idx_") || orphan {
                    out.push(e.path());
                }
            }
        }
        let mut found = Vec::new();
        for name in ["HEAD.lock", "config.lock", "packed-refs.lock", "index.lock"] {
            let p = self.path.join(name);
            if p.exists() {
                found.push(p);
            }
        }
        locks_under(&self.path.join("refs"), &mut found);
        locks_under(&self.path.join("logs"), &mut found);
        temporary_objects(&self.path.join("objects"), &mut found);
        temporary_packs(&self.path.join("objects/pack"), &mut found);
        if let Ok(rd) = std::fs::read_dir(&self.path) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("catalyst-index-") || name.starts_with("catalyst-blobs-") {
                    found.push(e.path());
                }
            }
        }
        for p in &found {
            if p.is_dir() {
                std::fs::remove_dir_all(p)?;
            } else {
                std::fs::remove_file(p)?;
            }
        }
        // A repository made by `init_staged` whose files a power loss emptied before its
        // first commit was published (no ref can have moved): its files written again.
        if self.exists() && std::fs::read(self.path.join("HEAD")).is_ok_and(|h| h.is_empty()) {
            write_atomic(&self.path.join("HEAD"), b"ref: refs/heads/main\n")?;
            found.push(self.path.join("HEAD"));
        }
        let config = std::fs::read_to_string(self.path.join("config")).unwrap_or_default();
        if self.exists() && config.trim().is_empty() {
            // Emptied (or taken) by a power loss before it was fsynced: written again whole.
            write_atomic(&self.path.join("config"), gix::CONFIG.as_bytes())?;
            found.push(self.path.join("config"));
        } else if self.exists() && !config.contains("fsync") {
            configure(&self.path)?;
        }
        Ok(found)
    }

    /// The commit `branch` points at, if the branch exists.
    pub fn head(&self, branch: &str) -> Result<Option<String>, GitopsError> {
        if !self.exists() {
            return Ok(None);
        }
        dispatch!(self.head(branch))
    }

    /// Every branch with its commit.
    pub fn branches(&self) -> Result<BTreeMap<String, String>, GitopsError> {
        if !self.exists() {
            return Ok(BTreeMap::new());
        }
        dispatch!(self.branches())
    }

    /// The content of `path` at `rev` (a branch, a commit or a tree), if it exists there.
    pub fn read(&self, rev: &str, path: &str) -> Result<Option<Vec<u8>>, GitopsError> {
        dispatch!(self.read(rev, path))
    }

    /// Every file path at `rev` (recursively), optionally under `prefix`.
    pub fn list(&self, rev: &str, prefix: Option<&str>) -> Result<Vec<String>, GitopsError> {
        dispatch!(self.list(rev, prefix))
    }

    /// Commit time (Unix seconds) of `rev`.
    pub fn commit_time(&self, rev: &str) -> Result<i64, GitopsError> {
        dispatch!(self.commit_time(rev))
    }

    /// True when `ancestor` is `rev` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: &str, rev: &str) -> Result<bool, GitopsError> {
        dispatch!(self.is_ancestor(ancestor, rev))
    }

    /// Resolves `rev` to a full commit id, if it names a commit here.
    pub fn resolve_commit(&self, rev: &str) -> Result<Option<String>, GitopsError> {
        if !rev.bytes().all(|b| b.is_ascii_hexdigit()) || rev.len() < 7 || rev.len() > 40 {
            return Ok(None);
        }
        dispatch!(self.resolve_commit(rev))
    }

    /// The tree of `rev`.
    pub fn tree_of(&self, rev: &str) -> Result<String, GitopsError> {
        dispatch!(self.tree_of(rev))
    }

    /// Writes the objects of a commit of `changes` on top of `parent` (no ref moves yet).
    /// `tree` overrides the tree (used by rollback).
    pub fn prepare(
        &self,
        branch: &str,
        parent: Option<&str>,
        changes: &Changes,
        tree: Option<&str>,
        actor: &Actor,
        message: &str,
    ) -> Result<Prepared, GitopsError> {
        dispatch!(self.prepare(branch, parent, changes, tree, actor, message))
    }

    /// True when `new` names a commit whose tree and every object below it are stored, looking
    /// only at what differs from `old`'s tree (what a call wrote): whether a journal's commit
    /// can be moved to after a crash.
    pub fn complete(&self, new: &str, old: Option<&str>) -> Result<bool, GitopsError> {
        gix::Gix { path: &self.path }.complete(new, old)
    }

    /// Moves every prepared branch in one ref transaction: all move or none does. A branch
    /// that moved since it was read is [`GitopsError::Conflict`]. `reason` is the reflog
    /// message.
    pub fn update_refs(&self, prepared: &[Prepared], reason: &str) -> Result<(), GitopsError> {
        dispatch!(self.update_refs(prepared, reason))
    }

    /// Restores branches to their previous commits (undoing [`Repo::update_refs`]), best effort.
    pub fn undo_refs(&self, prepared: &[Prepared]) -> Result<(), GitopsError> {
        dispatch!(self.undo_refs(prepared))
    }

    /// A unified diff between two commits (`None`: the empty tree), with `--stat` first. Dry
    /// runs only; this one still runs `git diff-tree` with either backend.
    pub fn diff(&self, old: Option<&str>, new: &str) -> Result<String, GitopsError> {
        cli::Cli { path: &self.path }.diff(old, new)
    }

    /// The commit message and author of `rev` (`%an <%ae>\n%P\n%B`).
    pub fn show(&self, rev: &str) -> Result<String, GitopsError> {
        dispatch!(self.show(rev))
    }

    /// Commit ids on `branch`, newest first.
    pub fn log(&self, branch: &str) -> Result<Vec<String>, GitopsError> {
        if self.head(branch)?.is_none() {
            return Ok(Vec::new());
        }
        dispatch!(self.log(branch))
    }
}

/// fsyncs `path` unless it is gone (a repository removed since its ref moved).
#[cfg(not(target_os = "linux"))]
fn sync_if_there(path: &PathBuf) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(f) => f.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A call's journal for [`publish`]: where, what, and what to write over it (durably) before
/// undoing refs that moved when the call fails after it became durable (`aborted`).
pub struct Journal<'a> {
    /// Its path, in an existing directory.
    pub path: &'a Path,
    /// The planned moves (and whatever the caller keeps with them).
    pub doc: &'a [u8],
    /// The same, marked as abandoned: recovery undoes it instead of finishing it.
    pub aborted: &'a [u8],
    /// A used journal file to rename to `path` and write over instead of creating one
    /// ([`Recycle`]).
    pub reuse: Option<PathBuf>,
}

/// Moves the prepared branches of several repositories — `(repository, commits, reflog
/// message)` each — all or none, and writes the call's `journal` durably before any ref
/// moves. With gitoxide: every ref locked and checked first; with a journal, it carries the
/// bytes of every object file the call adds ([`journal`]) and is the only thing fsynced before
/// the refs move — the objects, refs, reflogs and directories are left in `carry` (a
/// [`Flusher`]'s, made durable in the background) or fsynced at once without one; without a
/// journal, two fsync rounds (files; directories) come before the refs move and a third after
/// (see [`gix`]). A stale expectation is [`GitopsError::Conflict`] and nothing moves; a later
/// failure marks the journal aborted and undoes the refs already moved. The journal is the
/// caller's to remove (once `carry` is flushed), whatever the outcome.
pub fn publish(
    items: &[(&Repo, &[Prepared], &str)],
    journal: Option<&Journal<'_>>,
    carry: Option<&mut Deferred>,
) -> Result<(), GitopsError> {
    if items.iter().all(|(r, _, _)| r.backend == Backend::Gix) {
        let items: Vec<(&Path, &[Prepared], &str)> = items
            .iter()
            .map(|(r, p, reason)| (r.path.as_path(), *p, *reason))
            .collect();
        return gix::publish(&items, journal, carry);
    }
    // The CLI backend: the journal made durable, then one repository after the other.
    if let Some(carry) = carry {
        carry.flush()?;
    }
    if let Some(j) = journal {
        let mut f = std::fs::File::create(j.path)?;
        f.write_all(j.doc)?;
        f.sync_all()?;
        if let Some(dir) = j.path.parent() {
            sync_paths(&[dir.to_path_buf()])?;
        }
    }
    for (i, (repo, prepared, reason)) in items.iter().enumerate() {
        if let Err(e) = repo.update_refs(prepared, reason) {
            if let Some(j) = journal {
                write_atomic(j.path, j.aborted)?;
            }
            for (done, p, _) in items[..i].iter().rev() {
                if let Err(undo) = done.undo_refs(p) {
                    tracing::error!(repository = %done.path.display(), error = %undo, "Undoing a partial change failed.");
                }
            }
            return Err(e);
        }
    }
    Ok(())
}

/// The commit message with Catalyst's trailers.
pub fn message(subject: &str, request_id: &str, actor: &Actor) -> String {
    format!(
        "{subject}\n\nCatalyst-Request-Id: {request_id}\nCatalyst-Actor: {}\n",
        actor.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> Actor {
        Actor {
            name: "ada".into(),
            email: "ada@acme.example".into(),
        }
    }

    fn git(repo: &Repo, args: &[&str]) -> std::process::Output {
        std::process::Command::new("git")
            .arg("--git-dir")
            .arg(repo.path())
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap()
    }

    fn fsck(repo: &Repo) {
        let out = git(repo, &["fsck", "--strict", "--no-dangling"]);
        assert!(
            out.status.success(),
            "git fsck --strict: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// An init is made aside and renamed into place: what a killed init left (a half-made
    /// folder under the real name, an aside folder) neither blocks the next init nor stays.
    #[test]
    fn an_init_cut_short_leaves_nothing_half_made() {
        let dir = tempfile::tempdir().unwrap();
        let owner = dir.path().join("system");
        for backend in [Backend::Gix, Backend::Cli] {
            let repo =
                Repo::at(owner.join(format!("sovereign-{backend:?}.git"))).with_backend(backend);
            // What a kill during an older, in-place init left: objects/ but no HEAD.
            std::fs::create_dir_all(repo.path().join("objects/pack")).unwrap();
            std::fs::create_dir_all(owner.join(".init-0011223344556677/refs")).unwrap();
            assert!(!repo.exists());
            repo.init().unwrap();
            assert!(repo.exists());
            fsck(&repo);
            let removed = Repo::clear_aside(&owner).unwrap();
            assert_eq!(removed, [owner.join(".init-0011223344556677")]);
            let left: Vec<String> = std::fs::read_dir(&owner)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect();
            assert!(left.is_empty(), "{left:?}");
            // A second init of an existing repository changes nothing.
            repo.init().unwrap();
            fsck(&repo);
        }
    }

    fn new_repo(dir: &Path, backend: Backend) -> Repo {
        let r = Repo::at(dir.join("r.git")).with_backend(backend);
        r.init().unwrap();
        r
    }

    /// Commits `changes` on `branch` (on top of its head) and moves the branch.
    fn commit(r: &Repo, branch: &str, changes: &Changes) -> Prepared {
        let head = r.head(branch).unwrap();
        let p = r
            .prepare(
                branch,
                head.as_deref(),
                changes,
                None,
                &actor(),
                &message("a change", "req-1", &actor()),
            )
            .unwrap();
        r.update_refs(std::slice::from_ref(&p), "a change").unwrap();
        p
    }

    /// Prepares `list` on `branch` on top of `parent`, with the message `msg`; moves nothing.
    fn stage(
        r: &Repo,
        branch: &str,
        parent: Option<&str>,
        list: &[(&str, &str)],
        msg: &str,
    ) -> Prepared {
        r.prepare(branch, parent, &files(list), None, &actor(), msg)
            .unwrap()
    }

    fn files(list: &[(&str, &str)]) -> Changes {
        let mut c = Changes::default();
        for (p, v) in list {
            c.put(*p, v.as_bytes());
        }
        c
    }

    #[test]
    fn gix_writes_read_back_through_git_and_fsck_clean() {
        let d = tempfile::tempdir().unwrap();
        let r = new_repo(d.path(), Backend::Gix);
        let p = commit(
            &r,
            "develop",
            &files(&[("catalyst.yaml", "a: 1\n"), ("flux/hr.yaml", "kind: X\n")]),
        );
        assert!(!p.unchanged);
        assert_eq!(r.head("develop").unwrap().as_deref(), Some(p.new.as_str()));
        // The first commit of a new repository is one pack (commit, two trees, two blobs),
        // which git verifies; nothing loose.
        let packs = |ext: &str| -> Vec<PathBuf> {
            let mut v: Vec<PathBuf> = std::fs::read_dir(r.path().join("objects/pack"))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect();
            v.sort();
            v
        };
        let [pack] = &packs("pack")[..] else {
            panic!("one pack expected: {:?}", packs("pack"));
        };
        assert_eq!(packs("idx"), [pack.with_extension("idx")]);
        let out = git(&r, &["verify-pack", "-v", pack.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(listed.contains("non delta: 5 objects"), "{listed}");
        let loose = git(&r, &["count-objects", "-v"]);
        assert!(
            String::from_utf8_lossy(&loose.stdout).contains("count: 0\n"),
            "{loose:?}"
        );
        let out = git(&r, &["cat-file", "blob", "develop:flux/hr.yaml"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "kind: X\n");
        let out = git(
            &r,
            &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%B", "develop"],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("ada <ada@acme.example>|Catalyst <catalyst@localhost>|a change\n\nCatalyst-Request-Id: req-1\nCatalyst-Actor: ada"),
            "{text}"
        );
        // The reflog keeps the reason; the settings real git needs are there.
        let out = git(
            &r,
            &["reflog", "show", "--format=%gs", "refs/heads/develop"],
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "a change");
        let out = git(&r, &["config", "core.fsync"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "objects,reference"
        );
        let out = git(&r, &["symbolic-ref", "HEAD"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "refs/heads/main"
        );
        // Reads in process agree with git.
        assert_eq!(
            r.read("develop", "catalyst.yaml").unwrap().unwrap(),
            b"a: 1\n"
        );
        assert_eq!(r.read(&p.new, "missing").unwrap(), None);
        assert_eq!(r.read(&p.new, "flux").unwrap(), None, "a tree is no blob");
        assert_eq!(
            r.list("develop", None).unwrap(),
            vec!["catalyst.yaml", "flux/hr.yaml"]
        );
        assert_eq!(
            r.list("develop", Some("flux")).unwrap(),
            vec!["flux/hr.yaml"]
        );
        let tree = String::from_utf8_lossy(&git(&r, &["rev-parse", "develop^{tree}"]).stdout)
            .trim()
            .to_string();
        assert_eq!(r.tree_of(&p.new).unwrap(), tree);
        assert_eq!(r.read(&tree, "catalyst.yaml").unwrap().unwrap(), b"a: 1\n");
        assert_eq!(
            r.resolve_commit(&p.new[..8]).unwrap().as_deref(),
            Some(p.new.as_str())
        );
        assert_eq!(
            r.resolve_commit(&tree).unwrap(),
            None,
            "a tree is no commit"
        );
        let ct =
            String::from_utf8_lossy(&git(&r, &["show", "-s", "--format=%ct", "develop"]).stdout)
                .trim()
                .parse::<i64>()
                .unwrap();
        assert_eq!(r.commit_time("develop").unwrap(), ct);
        let q = commit(&r, "develop", &files(&[("catalyst.yaml", "a: 2\n")]));
        // Later commits are loose: the repository keeps its one pack.
        assert_eq!(packs("pack").len(), 1);
        assert_eq!(
            r.log("develop").unwrap(),
            vec![q.new.clone(), p.new.clone()]
        );
        assert!(r.is_ancestor(&p.new, &q.new).unwrap());
        assert!(!r.is_ancestor(&q.new, &p.new).unwrap());
        assert!(r
            .show(&q.new)
            .unwrap()
            .starts_with(&format!("ada <ada@acme.example>\n{}\na change", p.new)));
        assert_eq!(
            r.branches().unwrap(),
            BTreeMap::from([("develop".to_string(), q.new.clone())])
        );
        // Nothing changes: the same tree.
        let same = stage(
            &r,
            "develop",
            Some(&q.new),
            &[("catalyst.yaml", "a: 2\n")],
            "m",
        );
        assert!(same.unchanged);
        fsck(&r);
    }

    #[test]
    fn an_emptied_tree_is_stored_and_fsck_clean() {
        for backend in [Backend::Gix, Backend::Cli] {
            let d = tempfile::tempdir().unwrap();
            let r = new_repo(d.path(), backend);
            commit(
                &r,
                "develop",
                &files(&[("a/b.yaml", "x\n"), ("c.yaml", "y\n")]),
            );
            let mut del = Changes::default();
            del.delete("a/b.yaml");
            commit(&r, "develop", &del);
            assert_eq!(
                r.list("develop", None).unwrap(),
                vec!["c.yaml"],
                "{backend:?}"
            );
            let p = commit(
                &r,
                "develop",
                &Changes {
                    replace_all: true,
                    ..Changes::default()
                },
            );
            assert_eq!(r.tree_of(&p.new).unwrap(), EMPTY_TREE);
            assert!(r.list("develop", None).unwrap().is_empty());
            let out = git(&r, &["cat-file", "-t", EMPTY_TREE]);
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tree");
            fsck(&r);
        }
    }

    #[test]
    fn a_stale_expectation_is_a_conflict_and_overwrites_nothing() {
        let d = tempfile::tempdir().unwrap();
        let r = new_repo(d.path(), Backend::Gix);
        let first = commit(&r, "develop", &files(&[("a", "1")]));
        // Two writers prepared on the same head; the second to move loses.
        let a = stage(&r, "develop", Some(&first.new), &[("a", "2")], "a");
        let b = stage(&r, "develop", Some(&first.new), &[("a", "3")], "b");
        r.update_refs(std::slice::from_ref(&a), "a").unwrap();
        let e = r.update_refs(std::slice::from_ref(&b), "b").unwrap_err();
        assert!(
            matches!(&e, GitopsError::Conflict(m) if m.ends_with("moved while this change was being written; read it again and retry")),
            "{e:?}"
        );
        assert_eq!(r.head("develop").unwrap().as_deref(), Some(a.new.as_str()));
        // A branch that must not exist, but does.
        let fresh = Prepared {
            old: None,
            ..b.clone()
        };
        let e = r.update_refs(&[fresh], "c").unwrap_err();
        assert!(matches!(e, GitopsError::Conflict(_)), "{e:?}");
        assert_eq!(r.head("develop").unwrap().as_deref(), Some(a.new.as_str()));
        // A held lock (another writer mid-update) is a conflict too, not a wait forever.
        std::fs::write(r.path().join("refs/heads/develop.lock"), "").unwrap();
        let c = stage(&r, "develop", Some(&a.new), &[("a", "4")], "c");
        let e = r.update_refs(std::slice::from_ref(&c), "c").unwrap_err();
        assert!(matches!(e, GitopsError::Conflict(_)), "{e:?}");
        // The losers' staged objects are dropped (as `Sovereign::apply` does), what a SIGKILL
        // leaves is cleared, and the update goes through then.
        r.forget(&b);
        r.forget(&c);
        let removed = r.clear_leftovers().unwrap();
        assert_eq!(removed, vec![r.path().join("refs/heads/develop.lock")]);
        let c = stage(&r, "develop", Some(&a.new), &[("a", "4")], "c");
        r.update_refs(std::slice::from_ref(&c), "c").unwrap();
        fsck(&r);
    }

    /// A kill before a new repository's pack is renamed (or between its pack and its index)
    /// leaves files `clear_leftovers` removes; git never saw them.
    #[test]
    fn a_pack_cut_short_is_cleared() {
        let d = tempfile::tempdir().unwrap();
        let r = new_repo(d.path(), Backend::Gix);
        let staged = stage(&r, "develop", None, &[("a", "1")], "m");
        let dir = r.path().join("objects/pack");
        let orphan = dir.join(format!("pack-{}.pack", "0".repeat(40)));
        std::fs::write(&orphan, "PACK").unwrap();
        let mut removed = r.clear_leftovers().unwrap();
        removed.sort();
        let names: Vec<String> = removed
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(removed[0], orphan);
        assert!(names[1].starts_with("tmp_idx_"), "{names:?}");
        assert!(names[2].starts_with("tmp_pack_"), "{names:?}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        r.forget(&staged);
        let p = commit(&r, "develop", &files(&[("a", "1")]));
        assert_eq!(r.read(&p.new, "a").unwrap().unwrap(), b"1");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        fsck(&r);
    }

    #[test]
    fn several_refs_move_all_or_none_and_undo() {
        let d = tempfile::tempdir().unwrap();
        let r = new_repo(d.path(), Backend::Gix);
        let dev = commit(&r, "develop", &files(&[("a", "1")]));
        let p1 = stage(&r, "develop", Some(&dev.new), &[("a", "2")], "m");
        let p2 = stage(&r, "staging", None, &[("a", "s")], "m");
        // One stale expectation: neither branch moves.
        let stale = Prepared {
            old: Some(p1.new.clone()),
            ..p1.clone()
        };
        let e = r.update_refs(&[p2.clone(), stale], "both").unwrap_err();
        assert!(matches!(e, GitopsError::Conflict(_)), "{e:?}");
        assert_eq!(
            r.head("develop").unwrap().as_deref(),
            Some(dev.new.as_str())
        );
        assert_eq!(r.head("staging").unwrap(), None);
        assert!(!r.path().join("refs/heads/staging.lock").exists());
        // Both expectations hold: both move.
        r.update_refs(&[p1.clone(), p2.clone()], "both").unwrap();
        assert_eq!(r.head("develop").unwrap().as_deref(), Some(p1.new.as_str()));
        assert_eq!(r.head("staging").unwrap().as_deref(), Some(p2.new.as_str()));
        fsck(&r);
        // Undo: develop back to its old commit, staging (new) gone.
        r.undo_refs(&[p1, p2]).unwrap();
        assert_eq!(
            r.head("develop").unwrap().as_deref(),
            Some(dev.new.as_str())
        );
        assert_eq!(r.head("staging").unwrap(), None);
        let out = git(
            &r,
            &["reflog", "show", "--format=%gs", "refs/heads/develop"],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "catalyst: undo\nboth\na change"
        );
        fsck(&r);
    }

    #[test]
    fn both_backends_read_what_the_other_wrote() {
        let d = tempfile::tempdir().unwrap();
        let g = new_repo(d.path(), Backend::Gix);
        let c = Repo::at(g.path()).with_backend(Backend::Cli);
        let p = commit(&g, "develop", &files(&[("x/y.yaml", "1\n")]));
        assert_eq!(c.read("develop", "x/y.yaml").unwrap().unwrap(), b"1\n");
        assert_eq!(c.show(&p.new).unwrap(), g.show(&p.new).unwrap());
        let q = commit(&c, "develop", &files(&[("x/z.yaml", "2\n")]));
        assert_eq!(
            g.list("develop", None).unwrap(),
            c.list("develop", None).unwrap()
        );
        assert_eq!(g.log("develop").unwrap(), c.log("develop").unwrap());
        assert_eq!(g.tree_of(&q.new).unwrap(), c.tree_of(&q.new).unwrap());
        assert_eq!(g.branches().unwrap(), c.branches().unwrap());
        fsck(&g);
    }
}
