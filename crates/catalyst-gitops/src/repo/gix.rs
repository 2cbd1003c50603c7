//! The in-process backend (the default): gitoxide reads objects and refs, edits trees and runs
//! the compare-and-swap ref transaction (git-compatible `refs/heads/<branch>.lock` files, the
//! reflog); loose objects are written here. No `git` process.
//!
//! Durability (gitoxide never fsyncs): a loose object is written to `objects/xx/tmp_obj_*`,
//! fsynced (every object of one [`Gix::prepare`] together, in parallel) and renamed into place;
//! its directory is fsynced by the [`Gix::update_refs`] that publishes the commit, together with
//! the ref lock files (written by gitoxide's prepare step), before the locks are renamed into
//! place; then the refs' directories and reflogs are fsynced. So when `update_refs` returns, the
//! commit, everything it references and the ref survive a power loss, and a crash before never
//! leaves a ref pointing at a missing or empty object.
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use gix::bstr::ByteSlice;
use gix::hash::ObjectId;
use gix::objs::tree::EntryKind;
use gix::objs::{Kind, WriteTo as _};
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::Target;

use super::{conflict, sync_paths, Actor, Changes, Prepared};
use crate::GitopsError;

const HASH: gix::hash::Kind = gix::hash::Kind::Sha1;
/// What git waits for a held ref lock by default (`core.filesRefLockTimeout`).
const LOCK_WAIT: Duration = Duration::from_millis(100);
/// Open repositories kept (each a few KiB); the whole cache is dropped when it is full.
const OPEN_MAX: usize = 512;
/// Commits whose object directories still await their fsync (see [`Gix::update_refs`]).
const PENDING_MAX: usize = 4096;

/// The config of a new repository (what `git init --bare` writes, plus the settings of
/// [`super::configure`]).
const CONFIG: &str = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n\tlogAllRefUpdates = always\n\tfsync = objects,reference\n";

fn lock<T>(m: &'static OnceLock<Mutex<T>>, init: fn() -> T) -> MutexGuard<'static, T> {
    m.get_or_init(|| Mutex::new(init()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Open repositories by path: opening reads the config and sets up the object store, which
/// every call on the write path would otherwise repeat.
static OPEN: OnceLock<Mutex<HashMap<PathBuf, gix::ThreadSafeRepository>>> = OnceLock::new();

/// Forgets the open handle of `path` (a repository renamed into place there).
pub(super) fn forget(path: &Path) {
    lock(&OPEN, HashMap::new).remove(path);
}
/// Per (repository, commit): object directories renamed into but not fsynced yet.
type Pending = HashMap<(PathBuf, ObjectId), Vec<PathBuf>>;
static PENDING: OnceLock<Mutex<Pending>> = OnceLock::new();

fn fail<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> GitopsError + '_ {
    move |e| GitopsError::Git(format!("{what} failed: {e}"))
}

fn oid(hex: &str) -> Result<ObjectId, GitopsError> {
    ObjectId::from_hex(hex.as_bytes())
        .map_err(|e| GitopsError::Git(format!("{hex} is not an object id: {e}")))
}

/// Git refuses `<`, `>` and line breaks in a signature's name and e-mail.
fn signature(name: &str, email: &str, seconds: i64) -> gix::actor::Signature {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '<' | '>' | '\n' | '\r' | '\0'))
            .collect::<String>()
            .trim()
            .to_string()
    };
    gix::actor::Signature {
        name: clean(name).into(),
        email: clean(email).into(),
        time: gix::date::Time { seconds, offset: 0 },
    }
}

fn committer(seconds: i64) -> gix::actor::Signature {
    signature("Catalyst", "catalyst@localhost", seconds)
}

/// Loose objects written by one call, not yet durable.
#[derive(Default)]
struct Batch {
    /// (temporary file, its handle, final path)
    files: Vec<(PathBuf, std::fs::File, PathBuf)>,
    /// Directories whose entries changed.
    dirs: Vec<PathBuf>,
}

/// A repository seen through gitoxide.
pub(super) struct Gix<'a> {
    pub(super) path: &'a Path,
}

impl Gix<'_> {
    fn open(&self) -> Result<gix::Repository, GitopsError> {
        if let Some(r) = lock(&OPEN, HashMap::new).get(self.path) {
            return Ok(r.to_thread_local());
        }
        let opts = gix::open::Options::isolated().open_path_as_is(true);
        let r = gix::ThreadSafeRepository::open_opts(self.path, opts)
            .map_err(fail(&format!("opening {}", self.path.display())))?;
        let mut open = lock(&OPEN, HashMap::new);
        if open.len() >= OPEN_MAX {
            open.clear();
        }
        open.insert(self.path.to_path_buf(), r.clone());
        Ok(r.to_thread_local())
    }

    /// Creates the bare repository's files (the directory exists) in two fsync rounds: `config`
    /// and `HEAD` written to their lock files and fsynced, renamed (`HEAD` last, so a
    /// repository [`super::Repo::exists`] only once it is whole), then every directory that
    /// gained an entry fsynced together.
    pub(super) fn init(&self) -> Result<(), GitopsError> {
        lock(&OPEN, HashMap::new).remove(self.path);
        for d in [
            "objects/info",
            "objects/pack",
            "refs/heads",
            "refs/tags",
            "logs/refs/heads",
        ] {
            std::fs::create_dir_all(self.path.join(d))?;
        }
        std::fs::write(
            self.path.join("description"),
            "Unnamed repository; edit this file 'description' to name the repository.\n",
        )?;
        let files = [("config", CONFIG), ("HEAD", "ref: refs/heads/main\n")];
        let mut locks = Vec::new();
        for (name, text) in files {
            let path = self.path.join(format!("{name}.lock"));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            f.write_all(text.as_bytes())?;
            locks.push((path, f, self.path.join(name)));
        }
        let handles: Vec<&std::fs::File> = locks.iter().map(|l| &l.1).collect();
        super::parallel(&handles, |f| f.sync_all())?;
        for (lock, _, target) in &locks {
            std::fs::rename(lock, target)?;
        }
        let mut dirs: Vec<PathBuf> = ["", "objects", "refs", "logs", "logs/refs"]
            .iter()
            .map(|d| self.path.join(d))
            .collect();
        dirs.extend(self.path.parent().map(Path::to_path_buf));
        Ok(sync_paths(&dirs)?)
    }

    fn ref_target(repo: &gix::Repository, name: &str) -> Option<ObjectId> {
        let r = repo.try_find_reference(name).ok()??;
        r.target().try_id().map(ToOwned::to_owned)
    }

    /// A branch, a full object id or an unambiguous abbreviation.
    fn resolve(repo: &gix::Repository, rev: &str) -> Option<ObjectId> {
        let hex = rev.bytes().all(|b| b.is_ascii_hexdigit());
        if hex && rev.len() == HASH.len_in_hex() {
            let id = ObjectId::from_hex(rev.as_bytes()).ok()?;
            return repo.has_object(id).then_some(id);
        }
        let name = if rev.starts_with("refs/") {
            rev.to_string()
        } else {
            format!("refs/heads/{rev}")
        };
        if let Some(id) = Self::ref_target(repo, &name) {
            return Some(id);
        }
        if hex && rev.len() >= 4 {
            let prefix = gix::hash::Prefix::from_hex(rev).ok()?;
            if let Ok(Some(Ok(id))) = repo.objects.lookup_prefix(prefix, None) {
                return Some(id);
            }
        }
        None
    }

    /// `rev` peeled to an object of `kind` (`rev^{tree}`, `rev^{commit}`).
    fn peeled(repo: &gix::Repository, rev: &str, kind: Kind) -> Option<ObjectId> {
        let id = Self::resolve(repo, rev)?;
        if kind == Kind::Tree && id == ObjectId::empty_tree(HASH) {
            return Some(id);
        }
        Some(repo.find_object(id).ok()?.peel_to_kind(kind).ok()?.id)
    }

    fn must(repo: &gix::Repository, rev: &str, kind: Kind) -> Result<ObjectId, GitopsError> {
        Self::peeled(repo, rev, kind).ok_or_else(|| {
            GitopsError::Git(format!("{rev} does not name a {kind} in the repository"))
        })
    }

    pub(super) fn head(&self, branch: &str) -> Result<Option<String>, GitopsError> {
        let repo = self.open()?;
        Ok(Self::ref_target(&repo, &format!("refs/heads/{branch}")).map(|id| id.to_string()))
    }

    pub(super) fn branches(&self) -> Result<BTreeMap<String, String>, GitopsError> {
        let repo = self.open()?;
        let refs = repo.references().map_err(fail("listing refs"))?;
        let mut out = BTreeMap::new();
        for r in refs.prefixed("refs/heads/").map_err(fail("listing refs"))? {
            let r = r.map_err(fail("reading a ref"))?;
            let name = r.name().as_bstr().to_str_lossy().into_owned();
            if let (Some(branch), Some(id)) =
                (name.strip_prefix("refs/heads/"), r.target().try_id())
            {
                out.insert(branch.to_string(), id.to_string());
            }
        }
        Ok(out)
    }

    pub(super) fn read(&self, rev: &str, path: &str) -> Result<Option<Vec<u8>>, GitopsError> {
        let repo = self.open()?;
        let Some(tree) = Self::peeled(&repo, rev, Kind::Tree) else {
            return Ok(None);
        };
        let Ok(tree) = repo.find_tree(tree) else {
            return Ok(None);
        };
        let Ok(Some(entry)) = tree.lookup_entry_by_path(path) else {
            return Ok(None);
        };
        if !entry.mode().is_blob() {
            return Ok(None);
        }
        let blob = repo
            .find_blob(entry.object_id())
            .map_err(fail("reading a blob"))?;
        Ok(Some(blob.detach().data))
    }

    pub(super) fn list(&self, rev: &str, prefix: Option<&str>) -> Result<Vec<String>, GitopsError> {
        fn walk(
            repo: &gix::Repository,
            tree: ObjectId,
            base: &str,
            prefix: Option<&str>,
            out: &mut Vec<String>,
        ) -> Result<(), GitopsError> {
            let tree = repo.find_tree(tree).map_err(fail("reading a tree"))?;
            let decoded = tree.decode().map_err(fail("reading a tree"))?;
            for e in &decoded.entries {
                let path = format!("{base}{}", e.filename.to_str_lossy());
                // A pathspec matches the path itself and everything under it.
                let under = |p: &str, dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
                if e.mode.is_tree() {
                    if prefix.is_none_or(|p| under(p, &path) || under(&path, p)) {
                        walk(repo, e.oid.to_owned(), &format!("{path}/"), prefix, out)?;
                    }
                } else if prefix.is_none_or(|p| under(&path, p)) {
                    out.push(path);
                }
            }
            Ok(())
        }
        let repo = self.open()?;
        let tree = Self::must(&repo, rev, Kind::Tree)?;
        let prefix = prefix.map(|p| p.trim_end_matches('/'));
        let mut out = Vec::new();
        walk(&repo, tree, "", prefix.filter(|p| !p.is_empty()), &mut out)?;
        Ok(out)
    }

    fn commit_of<'r>(
        repo: &'r gix::Repository,
        id: ObjectId,
    ) -> Result<gix::Commit<'r>, GitopsError> {
        repo.find_commit(id).map_err(fail("reading a commit"))
    }

    pub(super) fn commit_time(&self, rev: &str) -> Result<i64, GitopsError> {
        let repo = self.open()?;
        let id = Self::must(&repo, rev, Kind::Commit)?;
        let commit = Self::commit_of(&repo, id)?;
        Ok(commit
            .committer()
            .map_err(|_| GitopsError::Git(format!("cannot read the time of {rev}")))?
            .seconds())
    }

    pub(super) fn is_ancestor(&self, ancestor: &str, rev: &str) -> Result<bool, GitopsError> {
        let repo = self.open()?;
        let (Some(target), Some(tip)) = (
            Self::peeled(&repo, ancestor, Kind::Commit),
            Self::peeled(&repo, rev, Kind::Commit),
        ) else {
            return Ok(false);
        };
        let mut seen = HashSet::new();
        let mut queue = vec![tip];
        while let Some(id) = queue.pop() {
            if id == target {
                return Ok(true);
            }
            if seen.insert(id) {
                queue.extend(Self::commit_of(&repo, id)?.parent_ids().map(|p| p.detach()));
            }
        }
        Ok(false)
    }

    pub(super) fn resolve_commit(&self, rev: &str) -> Result<Option<String>, GitopsError> {
        let repo = self.open()?;
        Ok(Self::peeled(&repo, rev, Kind::Commit).map(|id| id.to_string()))
    }

    pub(super) fn tree_of(&self, rev: &str) -> Result<String, GitopsError> {
        let repo = self.open()?;
        Ok(Self::must(&repo, rev, Kind::Tree)?.to_string())
    }

    pub(super) fn show(&self, rev: &str) -> Result<String, GitopsError> {
        let repo = self.open()?;
        let commit = Self::commit_of(&repo, Self::must(&repo, rev, Kind::Commit)?)?;
        let c = commit.decode().map_err(fail("reading a commit"))?;
        let author = c.author().map_err(fail("reading a commit"))?;
        let parents: Vec<String> = c.parents().map(|p| p.to_string()).collect();
        Ok(format!(
            "{} <{}>\n{}\n{}",
            author.name,
            author.email,
            parents.join(" "),
            c.message
        )
        .trim()
        .to_string())
    }

    /// Newest first by committer time, like `git rev-list`.
    pub(super) fn log(&self, branch: &str) -> Result<Vec<String>, GitopsError> {
        let repo = self.open()?;
        let Some(tip) = Self::ref_target(&repo, &format!("refs/heads/{branch}")) else {
            return Ok(Vec::new());
        };
        let time = |id: ObjectId| -> Result<i64, GitopsError> {
            Ok(Self::commit_of(&repo, id)?
                .committer()
                .map(|s| s.seconds())
                .unwrap_or(0))
        };
        let mut seen = HashSet::from([tip]);
        let mut queue = BinaryHeap::from([(time(tip)?, tip)]);
        let mut out = Vec::new();
        while let Some((_, id)) = queue.pop() {
            out.push(id.to_string());
            for p in Self::commit_of(&repo, id)?.parent_ids() {
                let p = p.detach();
                if seen.insert(p) {
                    queue.push((time(p)?, p));
                }
            }
        }
        Ok(out)
    }

    fn object_path(&self, id: &ObjectId) -> PathBuf {
        let hex = id.to_string();
        self.path.join("objects").join(&hex[..2]).join(&hex[2..])
    }

    /// Writes one loose object (compressed, read-only, under a temporary name until
    /// [`Gix::finish`]) unless it is stored already.
    fn write_object(
        &self,
        batch: &mut Batch,
        kind: Kind,
        data: &[u8],
    ) -> Result<ObjectId, GitopsError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let id = gix::objs::compute_hash(HASH, kind, data).map_err(fail("hashing"))?;
        let path = self.object_path(&id);
        // An empty file is what a crash between a rename and its writeback can leave.
        if path.metadata().is_ok_and(|m| m.len() > 0) || batch.files.iter().any(|f| f.2 == path) {
            return Ok(id);
        }
        let Some(dir) = path.parent() else {
            return Err(GitopsError::Git("object path without a directory".into()));
        };
        if !dir.is_dir() {
            std::fs::create_dir_all(dir)?;
            batch.dirs.push(self.path.join("objects"));
        }
        batch.dirs.push(dir.to_path_buf());
        let tmp = dir.join(format!(
            "tmp_obj_{}",
            hex::encode(rand::random::<[u8; 6]>())
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&tmp)?;
        let mut z = flate2::write::ZlibEncoder::new(file, flate2::Compression::default());
        z.write_all(&gix::objs::encode::loose_header(kind, data.len() as u64))?;
        z.write_all(data)?;
        let file = z.finish()?;
        batch.files.push((tmp, file, path));
        Ok(id)
    }

    /// Makes the batch's objects durable and visible: all files fsynced, then renamed into
    /// place; the directories are left for the `update_refs` that publishes `commit`.
    fn finish(&self, batch: Batch, commit: ObjectId) -> Result<(), GitopsError> {
        let files: Vec<&std::fs::File> = batch.files.iter().map(|f| &f.1).collect();
        super::parallel(&files, |f| f.sync_all())?;
        for (tmp, _, path) in &batch.files {
            std::fs::rename(tmp, path)?;
        }
        let mut dirs = batch.dirs;
        dirs.sort();
        dirs.dedup();
        if dirs.is_empty() {
            return Ok(());
        }
        let mut pending = lock(&PENDING, HashMap::new);
        if pending.len() >= PENDING_MAX {
            // Calls that never published (dry runs, failures) are not remembered forever.
            drop(pending);
            return Ok(sync_paths(&dirs)?);
        }
        pending.insert((self.path.to_path_buf(), commit), dirs);
        Ok(())
    }

    fn write_tree(
        &self,
        repo: &gix::Repository,
        batch: &mut Batch,
        parent: Option<ObjectId>,
        changes: &Changes,
    ) -> Result<ObjectId, GitopsError> {
        let base = match parent {
            Some(p) if !changes.replace_all => Self::commit_of(repo, p)?
                .tree_id()
                .map_err(fail("reading a commit"))?
                .detach(),
            _ => ObjectId::empty_tree(HASH),
        };
        let mut editor = repo
            .edit_tree(base)
            .map_err(fail("reading a tree"))?
            .detach();
        for (path, content) in &changes.files {
            match content {
                Some(bytes) => {
                    let id = self.write_object(batch, Kind::Blob, bytes)?;
                    editor
                        .upsert(path.split('/'), EntryKind::Blob, id)
                        .map_err(fail(&format!("writing {path}")))?;
                }
                None => {
                    editor
                        .remove_if_leaf(path.split('/'))
                        .map_err(fail(&format!("deleting {path}")))?;
                }
            }
        }
        let mut buf = Vec::new();
        let tree = editor.write(|tree| {
            buf.clear();
            tree.write_to(&mut buf).map_err(fail("encoding a tree"))?;
            self.write_object(batch, Kind::Tree, &buf)
        })?;
        if tree == ObjectId::empty_tree(HASH) {
            // Git knows the empty tree without its object, but a commit of it (an uninstall's)
            // then fails `git fsck` ("missing tree") and clients that do not know it cannot
            // check the commit out: store it.
            self.write_object(batch, Kind::Tree, &[])?;
        }
        Ok(tree)
    }

    pub(super) fn prepare(
        &self,
        branch: &str,
        parent: Option<&str>,
        changes: &Changes,
        tree: Option<&str>,
        actor: &Actor,
        message: &str,
    ) -> Result<Prepared, GitopsError> {
        let repo = self.open()?;
        let parent_id = parent.map(oid).transpose()?;
        let mut batch = Batch::default();
        let result = (|| {
            let tree = match tree {
                Some(t) => oid(t)?,
                None => self.write_tree(&repo, &mut batch, parent_id, changes)?,
            };
            let unchanged = match parent_id {
                Some(p) => {
                    Self::commit_of(&repo, p)?
                        .tree_id()
                        .map(|t| t.detach())
                        .ok()
                        == Some(tree)
                }
                None => false,
            };
            let now = chrono::Utc::now().timestamp();
            let commit = gix::objs::Commit {
                tree,
                parents: parent_id.into_iter().collect(),
                author: signature(&actor.name, &actor.email, now),
                committer: committer(now),
                encoding: None,
                message: message.into(),
                extra_headers: Vec::new(),
            };
            let mut buf = Vec::new();
            commit
                .write_to(&mut buf)
                .map_err(fail("encoding a commit"))?;
            let id = self.write_object(&mut batch, Kind::Commit, &buf)?;
            Ok::<_, GitopsError>((id, unchanged))
        })();
        let (new, unchanged) = match result {
            Ok(r) => r,
            Err(e) => {
                for (tmp, _, _) in &batch.files {
                    let _ = std::fs::remove_file(tmp);
                }
                return Err(e);
            }
        };
        self.finish(batch, new)?;
        tracing::trace!(repository = %self.path.display(), branch, commit = %new, unchanged, "Prepared a commit.");
        Ok(Prepared {
            branch: branch.to_string(),
            old: parent.map(str::to_string),
            new: new.to_string(),
            unchanged,
        })
    }

    pub(super) fn update_refs(
        &self,
        prepared: &[Prepared],
        reason: &str,
    ) -> Result<(), GitopsError> {
        let mut edits = Vec::new();
        let mut expected = Vec::new();
        for p in prepared {
            let new = oid(&p.new)?;
            let old = p.old.as_deref().map(oid).transpose()?;
            edits.push(self.edit(
                &p.branch,
                Change::Update {
                    log: LogChange {
                        mode: RefLog::AndReference,
                        force_create_reflog: false,
                        message: reason.replace(['\n', '\r'], " ").into(),
                    },
                    expected: match old {
                        Some(o) => PreviousValue::MustExistAndMatch(Target::Object(o)),
                        None => PreviousValue::MustNotExist,
                    },
                    new: Target::Object(new),
                },
            )?);
            expected.push((p.branch.as_str(), old, new));
        }
        self.transact(edits, &expected, true)
    }

    pub(super) fn undo_refs(&self, prepared: &[Prepared]) -> Result<(), GitopsError> {
        let mut edits = Vec::new();
        let mut expected = Vec::new();
        for p in prepared {
            let new = oid(&p.new)?;
            let old = p.old.as_deref().map(oid).transpose()?;
            let current = PreviousValue::MustExistAndMatch(Target::Object(new));
            let change = match old {
                Some(o) => Change::Update {
                    log: LogChange {
                        mode: RefLog::AndReference,
                        force_create_reflog: false,
                        message: "catalyst: undo".into(),
                    },
                    expected: current,
                    new: Target::Object(o),
                },
                None => Change::Delete {
                    expected: current,
                    log: RefLog::AndReference,
                },
            };
            edits.push(self.edit(&p.branch, change)?);
            expected.push((p.branch.as_str(), Some(new), new));
        }
        self.transact(edits, &expected, false)
    }

    fn edit(&self, branch: &str, change: Change) -> Result<RefEdit, GitopsError> {
        let name = format!("refs/heads/{branch}");
        Ok(RefEdit {
            change,
            name: name
                .as_str()
                .try_into()
                .map_err(fail(&format!("the ref name {name}")))?,
            deref: false,
        })
    }

    /// One ref transaction: every ref locked and checked against its expected value (`old`,
    /// `None`: must not exist) or none changes; lock files fsynced (with the pending object
    /// directories of the commits published) before they are renamed into place, then the
    /// refs' directories and reflogs. `(branch, expected, new)` per edit.
    fn transact(
        &self,
        edits: Vec<RefEdit>,
        expected: &[(&str, Option<ObjectId>, ObjectId)],
        cas_conflict: bool,
    ) -> Result<(), GitopsError> {
        let repo = self.open()?;
        let fail_mode = gix::lock::acquire::Fail::AfterDurationWithBackoff(LOCK_WAIT);
        let tx = match repo.refs.transaction().prepare(edits, fail_mode, fail_mode) {
            Ok(tx) => tx,
            Err(e) => {
                let stale = expected.iter().any(|(branch, old, _)| {
                    Self::ref_target(&repo, &format!("refs/heads/{branch}")) != *old
                });
                let text = format!("{e:?}");
                if cas_conflict && (stale || text.contains("lock") || text.contains("Lock")) {
                    return Err(conflict(self.path));
                }
                return Err(GitopsError::Git(format!("update-ref failed: {e}")));
            }
        };
        let heads = self.path.join("refs/heads");
        let logs = self.path.join("logs/refs/heads");
        let mut before: Vec<PathBuf> = expected
            .iter()
            .map(|(branch, _, _)| heads.join(format!("{branch}.lock")))
            .filter(|p| p.exists())
            .collect();
        {
            let mut pending = lock(&PENDING, HashMap::new);
            for (_, _, new) in expected {
                if let Some(dirs) = pending.remove(&(self.path.to_path_buf(), *new)) {
                    before.extend(dirs);
                }
            }
        }
        sync_paths(&before)?;
        let logs_existed = logs.is_dir();
        let now = chrono::Utc::now().timestamp();
        let sig = committer(now);
        let mut time = gix::date::parse::TimeBuf::default();
        tx.commit(Some(sig.to_ref(&mut time)))
            .map_err(fail("update-ref"))?;
        let mut after = vec![heads.clone()];
        for (branch, _, _) in expected {
            let log = logs.join(branch);
            if log.exists() {
                after.push(log);
            }
            if let Some(dir) = heads.join(branch).parent().filter(|d| *d != heads) {
                after.push(dir.to_path_buf());
            }
        }
        if logs.is_dir() {
            after.push(logs.clone());
            if !logs_existed {
                after.extend([self.path.join("logs/refs"), self.path.join("logs")]);
            }
        }
        // A deletion removes the reflog and, when they are left empty, its directories: the
        // nearest remaining directory holds the change then.
        let mut after: Vec<PathBuf> = after
            .into_iter()
            .filter_map(|p| p.ancestors().find(|a| a.exists()).map(Path::to_path_buf))
            .collect();
        after.sort();
        after.dedup();
        sync_paths(&after)?;
        tracing::debug!(repository = %self.path.display(), refs = expected.len(), "Moved refs.");
        Ok(())
    }
}
