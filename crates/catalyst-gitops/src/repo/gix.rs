//! The in-process backend (the default): gitoxide reads objects and refs, edits trees and runs
//! the compare-and-swap ref transaction (git-compatible `refs/heads/<branch>.lock` files, the
//! reflog); objects are written here. No `git` process.
//!
//! Objects: a commit's new objects go into one pack (`objects/pack/pack-<checksum>.pack` and
//! its `.idx`, version 2, no deltas) while the repository holds no pack — a new
//! repository's first commit, most of its objects in two files instead of one per object —
//! and loose otherwise, so the packs of a repository stay few without a repack.
//!
//! Durability (gitoxide never fsyncs), per call however many repositories it moves
//! ([`publish`]): [`Gix::prepare`] writes a commit's objects to `objects/xx/tmp_obj_*` (or
//! `objects/pack/tmp_pack_*` and `tmp_idx_*`) and [`Gix::init_staged`] a new repository's `config`
//! and `HEAD`, none fsynced yet; `publish` locks and checks every ref first (compare-and-swap).
//! With the caller's journal (what `Sovereign::apply` uses), it writes the journal carrying the
//! bytes of every staged object file and fsyncs it and its directory — one round, the only one
//! before the call is answered — then renames the objects into place and moves the refs (renames
//! the locks, appends the reflogs); everything else the call wrote goes to the carry
//! ([`super::Deferred`], made durable by [`super::Flusher`]'s thread), and until then the journal
//! stands for it: recovery writes again what a power loss took. Without a journal, it fsyncs
//! every staged object file, new repository file and ref lock file in one round, renames the
//! objects, fsyncs every directory that gained an entry in a second round, moves the refs and
//! fsyncs their directories and reflogs. Either way no ref points at an object that is neither
//! durable nor carried by a durable journal.
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
/// Handles a thread keeps ([`LOCAL`]; each holds its object store's caches and zlib state, and
/// a server has many blocking threads); the thread's are all dropped when it is full.
const LOCAL_MAX: usize = 32;
/// Staged commits and repositories kept waiting for their [`publish`]; beyond, the oldest
/// are dropped (their temporary files removed).
const STAGED_MAX: usize = 1024;

/// The config of a new repository (what `git init --bare` writes, plus the settings of
/// [`super::configure`]).
pub(super) const CONFIG: &str = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n\tlogAllRefUpdates = always\n\tfsync = objects,reference\n";

fn lock<T>(m: &'static OnceLock<Mutex<T>>, init: fn() -> T) -> MutexGuard<'static, T> {
    m.get_or_init(|| Mutex::new(init()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Open repositories by path: opening reads the config and sets up the object store, which
/// every call on the write path would otherwise repeat. Each with the number it was opened
/// under ([`OPENED`]), which tells a thread's handle of it ([`LOCAL`]) from one of a
/// repository forgotten since.
static OPEN: OnceLock<Mutex<HashMap<PathBuf, (gix::ThreadSafeRepository, u64)>>> = OnceLock::new();
/// Counts the repositories opened into [`OPEN`].
static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// This thread's handles of repositories of [`OPEN`] (see [`Gix::local`]), with the number
    /// each was opened under: making a handle sets up its object store's caches and zlib state,
    /// which costs more than most reads.
    static LOCAL: std::cell::RefCell<HashMap<PathBuf, (u64, gix::Repository)>> =
        std::cell::RefCell::new(HashMap::new());
}

/// A thread's handle of a repository, back in [`LOCAL`] when dropped.
struct Local {
    path: PathBuf,
    opened: u64,
    repo: Option<gix::Repository>,
}

impl std::ops::Deref for Local {
    type Target = gix::Repository;
    fn deref(&self) -> &gix::Repository {
        self.repo.as_ref().expect("a handle until dropped")
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(repo) = self.repo.take() {
            let path = std::mem::take(&mut self.path);
            let _ = LOCAL.try_with(|l| {
                let mut l = l.borrow_mut();
                if l.len() >= LOCAL_MAX {
                    l.clear();
                }
                l.insert(path, (self.opened, repo));
            });
        }
    }
}

/// Forgets the open handle of `path` (a repository renamed into place there).
pub(super) fn forget(path: &Path) {
    lock(&OPEN, HashMap::new).remove(path);
}

/// Forgets the open handles of every repository under `root`: what they keep (mapped packs,
/// the list of packs) may be stale once recovery has written files again.
pub(super) fn forget_under(root: &Path) {
    lock(&OPEN, HashMap::new).retain(|p, _| !p.starts_with(root));
}

/// Per (repository, commit): the loose objects [`Gix::prepare`] wrote, not yet fsynced nor
/// renamed into place (not readable either) until [`publish`] or [`Gix::store`].
type Staged = HashMap<(PathBuf, ObjectId), Batch>;
static STAGED: OnceLock<Mutex<Staged>> = OnceLock::new();
/// Per repository made by [`Gix::init_staged`]: its files and directories, not fsynced yet.
static INITED: OnceLock<Mutex<HashMap<PathBuf, Batch>>> = OnceLock::new();

/// Trees, commits and small blobs by id, read or written by any repository: objects never
/// change, and every write reads the same few trees again (the path to the folder it edits,
/// the listings of `system/catalyst-config`), each otherwise a loose object to open and
/// inflate. Only ever asked for an object by an id that something in the repository at hand
/// names (a ref, a tree, a commit), never whether an object exists: [`Gix::write_object`] and
/// [`Gix::complete`] look at the repository itself.
static OBJECTS: OnceLock<Mutex<Objects>> = OnceLock::new();
/// The bytes [`OBJECTS`] holds at most; it is emptied when full.
const OBJECTS_MAX: usize = 64 << 20;
/// The largest blob [`OBJECTS`] keeps.
const OBJECT_BLOB_MAX: usize = 16 << 10;

#[derive(Default)]
struct Objects {
    map: HashMap<ObjectId, (Kind, std::sync::Arc<[u8]>)>,
    bytes: usize,
}

/// Keeps a copy of the object `id` in [`OBJECTS`] (trees, commits and small blobs).
fn remember(id: ObjectId, kind: Kind, data: &[u8]) {
    let keep = match kind {
        Kind::Tree | Kind::Commit => true,
        Kind::Blob => data.len() <= OBJECT_BLOB_MAX,
        Kind::Tag => false,
    };
    if !keep {
        return;
    }
    let mut objects = lock(&OBJECTS, Objects::default);
    if objects.map.contains_key(&id) {
        return;
    }
    if objects.bytes + data.len() > OBJECTS_MAX {
        objects.map.clear();
        objects.bytes = 0;
    }
    objects.bytes += data.len();
    objects.map.insert(id, (kind, data.into()));
}

/// Objects of a repository through [`OBJECTS`].
struct Cached<'r>(&'r gix::Repository);

impl Cached<'_> {
    /// The object `id` (`None`: not in the repository).
    fn get(&self, id: &gix::hash::oid) -> gix::Result<Option<(Kind, std::sync::Arc<[u8]>)>> {
        if id == ObjectId::empty_tree(HASH) {
            // Git knows it without its object.
            return Ok(Some((Kind::Tree, std::sync::Arc::from(&[][..]))));
        }
        if let Some(o) = lock(&OBJECTS, Objects::default).map.get(id) {
            return Ok(Some(o.clone()));
        }
        let mut buf = Vec::new();
        let Some(d) = gix::objs::Find::try_find(&self.0.objects, id, &mut buf)? else {
            return Ok(None);
        };
        remember(id.to_owned(), d.kind, d.data);
        Ok(Some((d.kind, d.data.into())))
    }

    /// The tree of the commit `id`.
    fn commit_tree(&self, id: ObjectId) -> Result<ObjectId, GitopsError> {
        match self.get(&id).map_err(fail("reading a commit"))? {
            Some((Kind::Commit, data)) => gix::objs::CommitRefIter::from_bytes(&data, HASH)
                .tree_id()
                .map_err(fail("reading a commit")),
            _ => Err(GitopsError::Git(format!(
                "reading a commit failed: {id} is not a commit"
            ))),
        }
    }

    /// The entry at `path` under the tree `tree`.
    fn entry(
        &self,
        tree: ObjectId,
        path: &str,
    ) -> Result<Option<gix::objs::tree::Entry>, GitopsError> {
        let Some((Kind::Tree, data)) = self.get(&tree).map_err(fail("reading a tree"))? else {
            return Err(GitopsError::Git(format!("{tree} is not a tree")));
        };
        let mut buf = Vec::new();
        gix::objs::TreeRefIter::from_bytes(&data, HASH)
            .lookup_entry_by_path(self, &mut buf, path)
            .map_err(fail("reading a tree"))
    }

    /// The tree `id`, decoded.
    fn tree(&self, id: ObjectId) -> Result<gix::objs::Tree, GitopsError> {
        match self.get(&id).map_err(fail("reading a tree"))? {
            Some((Kind::Tree, data)) => Ok(gix::objs::TreeRef::from_bytes(&data, HASH)
                .map_err(fail("reading a tree"))?
                .into()),
            _ => Err(GitopsError::Git(format!(
                "reading a tree failed: {id} is not a tree"
            ))),
        }
    }
}

impl gix::objs::Find for Cached<'_> {
    fn try_find<'a>(
        &self,
        id: &gix::hash::oid,
        buffer: &'a mut Vec<u8>,
    ) -> gix::Result<Option<gix::objs::Data<'a>>> {
        Ok(self.get(id)?.map(|(kind, data)| {
            buffer.clear();
            buffer.extend_from_slice(&data);
            gix::objs::Data::new(buffer, kind, HASH)
        }))
    }
}

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

/// Files written by one call, not yet durable.
#[derive(Default)]
struct Batch {
    /// (temporary file, its handle, final path, its bytes): renamed once durable (fsynced, or
    /// carried by the call's journal).
    files: Vec<(PathBuf, std::fs::File, PathBuf, Vec<u8>)>,
    /// Files in place already, to fsync (a new repository's `config` and `HEAD`).
    placed: Vec<PathBuf>,
    /// Directories whose entries changed.
    dirs: Vec<PathBuf>,
    /// The objects of a commit written as one pack (see [`Gix::packs`]) instead of loose:
    /// gathered here by [`Gix::write_object`], then written by [`Gix::write_pack`].
    pack: Option<Pack>,
}

/// Objects bound for one pack: each id and its pack entry (type and size header, zlib data).
#[derive(Default)]
struct Pack {
    entries: Vec<(ObjectId, Vec<u8>)>,
    ids: HashSet<ObjectId>,
}

/// The header of a pack entry: the object's type and its inflated size.
fn entry_header(kind: Kind, size: usize, out: &mut Vec<u8>) {
    let t: u8 = match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    };
    let mut byte = (t << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
}

/// A pack (version 2, no deltas) of `entries` and its index (version 2): the bytes of both
/// and the pack's checksum, which names them (`pack-<checksum>.pack`, `.idx`), as git does.
fn pack_and_index(
    entries: &[(ObjectId, Vec<u8>)],
) -> Result<(Vec<u8>, Vec<u8>, ObjectId), GitopsError> {
    let count = u32::try_from(entries.len())
        .map_err(|_| GitopsError::Git("too many objects for one pack".into()))?;
    let size: usize = entries.iter().map(|(_, e)| e.len()).sum();
    let mut pack = Vec::with_capacity(12 + size + HASH.len_in_bytes());
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&count.to_be_bytes());
    let mut index: Vec<(ObjectId, u32, u32)> = Vec::with_capacity(entries.len());
    for (id, entry) in entries {
        let offset = u32::try_from(pack.len())
            .ok()
            .filter(|o| *o < 0x8000_0000)
            .ok_or_else(|| GitopsError::Git("a pack of 2 GiB or more".into()))?;
        let mut crc = flate2::Crc::new();
        crc.update(entry);
        index.push((*id, crc.sum(), offset));
        pack.extend_from_slice(entry);
    }
    let mut h = gix::hash::hasher(HASH);
    h.update(&pack);
    let sum = h.try_finalize().map_err(fail("hashing a pack"))?;
    pack.extend_from_slice(sum.as_bytes());

    index.sort_by_key(|(id, _, _)| *id);
    let n = index.len();
    let mut idx = Vec::with_capacity(8 + 1024 + n * (HASH.len_in_bytes() + 8) + 40);
    idx.extend_from_slice(&[0xff, b't', b'O', b'c']);
    idx.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for (id, _, _) in &index {
        fanout[id.as_bytes()[0] as usize] += 1;
    }
    let mut total = 0u32;
    for f in fanout {
        total += f;
        idx.extend_from_slice(&total.to_be_bytes());
    }
    for (id, _, _) in &index {
        idx.extend_from_slice(id.as_bytes());
    }
    for (_, crc, _) in &index {
        idx.extend_from_slice(&crc.to_be_bytes());
    }
    for (_, _, offset) in &index {
        idx.extend_from_slice(&offset.to_be_bytes());
    }
    idx.extend_from_slice(sum.as_bytes());
    let mut h = gix::hash::hasher(HASH);
    h.update(&idx);
    let idx_sum = h.try_finalize().map_err(fail("hashing a pack index"))?;
    idx.extend_from_slice(idx_sum.as_bytes());
    Ok((pack, idx, sum))
}

impl Batch {
    /// Removes the temporary files (a batch that will not be published).
    fn discard(self) {
        for (tmp, _, _, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Keeps `batch` under `key` until it is published; a full map is emptied first.
fn stage<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Batch>, key: K, batch: Batch) {
    if map.len() >= STAGED_MAX {
        for (_, b) in map.drain() {
            b.discard();
        }
    }
    if let Some(old) = map.insert(key, batch) {
        old.discard();
    }
}

/// `head` and `data` as one zlib stream, at git's level for loose objects
/// (`core.looseCompression`, default 1: best speed), with gitoxide's zlib (zlib-rs, several
/// times faster than flate2's default miniz backend on small objects). One compressor per
/// thread, reset for each object: a new one allocates and zeroes a few hundred KiB, more than
/// compressing a small object costs.
fn deflate(head: &[u8], data: &[u8]) -> std::io::Result<Vec<u8>> {
    use gix::zlib::stream::deflate::{Compress, FlushCompress};
    use gix::zlib::{Compression, Status};
    thread_local! {
        static Z: std::cell::RefCell<Compress> =
            std::cell::RefCell::new(Compress::new(Compression::BEST_SPEED));
    }
    Z.with(|z| {
        let mut z = z.borrow_mut();
        z.reset();
        // zlib's bound for a stored (incompressible) stream, so one call normally does it all.
        let len = head.len() + data.len();
        let mut out = vec![0u8; len + len / 1000 + 64];
        let (start_in, start_out) = (z.total_in(), z.total_out());
        loop {
            let done = (z.total_in() - start_in) as usize;
            let (input, flush) = match done.checked_sub(head.len()) {
                None => (&head[done..], FlushCompress::None),
                Some(d) => (&data[d..], FlushCompress::Finish),
            };
            let written = (z.total_out() - start_out) as usize;
            if out.len() - written < 64 {
                out.resize(out.len() * 2, 0);
            }
            match z.compress(input, &mut out[written..], flush) {
                Ok(Status::StreamEnd) => {
                    out.truncate((z.total_out() - start_out) as usize);
                    return Ok(out);
                }
                Ok(_) => {}
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
    })
}

/// Something to fsync: an open file or a path.
enum ToSync<'a> {
    File(&'a std::fs::File),
    Path(&'a Path),
}

fn sync_all(items: &[ToSync<'_>]) -> std::io::Result<()> {
    super::parallel(items, |i| match i {
        ToSync::File(f) => f.sync_all(),
        ToSync::Path(p) => std::fs::File::open(p)?.sync_all(),
    })
}

/// A repository seen through gitoxide.
pub(super) struct Gix<'a> {
    pub(super) path: &'a Path,
}

impl Gix<'_> {
    fn open(&self) -> Result<gix::Repository, GitopsError> {
        self.open_numbered().map(|(r, _)| r)
    }

    /// A handle of the repository and the number it was opened under (see [`OPEN`]).
    fn open_numbered(&self) -> Result<(gix::Repository, u64), GitopsError> {
        if let Some((r, n)) = lock(&OPEN, HashMap::new).get(self.path) {
            return Ok((r.to_thread_local(), *n));
        }
        let opts = gix::open::Options::isolated().open_path_as_is(true);
        let r = gix::ThreadSafeRepository::open_opts(self.path, opts)
            .map_err(fail(&format!("opening {}", self.path.display())))?;
        let n = OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut open = lock(&OPEN, HashMap::new);
        if open.len() >= OPEN_MAX {
            open.clear();
        }
        open.insert(self.path.to_path_buf(), (r.clone(), n));
        Ok((r.to_thread_local(), n))
    }

    /// This thread's handle of the repository, kept for its next call (reads and
    /// [`Gix::prepare`]; a handle sees the refs and objects on disk as a new one would: refs
    /// are read from their files, loose objects looked up, new packs found on a miss). One
    /// of a repository forgotten since ([`forget`], [`Gix::init_staged`]) is not used.
    fn local(&self) -> Result<Local, GitopsError> {
        let current = lock(&OPEN, HashMap::new).get(self.path).map(|(_, n)| *n);
        let kept = current.and_then(|n| {
            LOCAL
                .try_with(|l| l.borrow_mut().remove(self.path))
                .ok()
                .flatten()
                .filter(|(opened, _)| *opened == n)
        });
        let (opened, repo) = match kept {
            Some(k) => k,
            None => {
                let (r, n) = self.open_numbered()?;
                (n, r)
            }
        };
        Ok(Local {
            path: self.path.to_path_buf(),
            opened,
            repo: Some(repo),
        })
    }

    /// Creates the bare repository's files (the directory exists) in two fsync rounds: the
    /// files of [`Gix::init_staged`] fsynced, then every directory that gained an entry.
    pub(super) fn init(&self) -> Result<(), GitopsError> {
        self.init_staged()?;
        if let Some(b) = lock(&INITED, HashMap::new).remove(self.path) {
            let files: Vec<ToSync> = b.placed.iter().map(|p| ToSync::Path(p)).collect();
            sync_all(&files)?;
            let dirs: Vec<ToSync> = b.dirs.iter().map(|p| ToSync::Path(p)).collect();
            sync_all(&dirs)?;
        }
        Ok(())
    }

    /// Creates the bare repository's files (the directory exists), none fsynced: the
    /// [`publish`] of its first commit makes them durable (with its fsync rounds, or after its
    /// journal, in the background: recovery makes the repository again from the journal), and a
    /// repository whose `config` or `HEAD` a power loss emptied before then (no ref can have
    /// moved) is repaired by [`super::Repo::clear_leftovers`]. `config` and `HEAD` are written
    /// to their lock files and renamed (`HEAD` last, so a repository
    /// [`super::Repo::exists`] only once it is whole).
    pub(super) fn init_staged(&self) -> Result<(), GitopsError> {
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
        let mut batch = Batch::default();
        for (name, text) in [("config", CONFIG), ("HEAD", "ref: refs/heads/main\n")] {
            let lock = self.path.join(format!("{name}.lock"));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)?;
            f.write_all(text.as_bytes())?;
            let target = self.path.join(name);
            std::fs::rename(&lock, &target)?;
            batch.placed.push(target);
        }
        batch.dirs = ["", "objects", "refs", "logs", "logs/refs"]
            .iter()
            .map(|d| self.path.join(d))
            .collect();
        // The repository's folder in its owner's, and the owner's in the root when new.
        batch
            .dirs
            .extend(self.path.ancestors().skip(1).take(2).map(Path::to_path_buf));
        stage(
            &mut lock(&INITED, HashMap::new),
            self.path.to_path_buf(),
            batch,
        );
        Ok(())
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
        // Commits and trees through the cache; anything else (a tag) peeled by gitoxide.
        let cached = Cached(repo);
        match (kind, cached.get(&id).ok()??.0) {
            (Kind::Tree, Kind::Tree) | (Kind::Commit, Kind::Commit) => Some(id),
            (Kind::Tree, Kind::Commit) => cached.commit_tree(id).ok(),
            _ => Some(repo.find_object(id).ok()?.peel_to_kind(kind).ok()?.id),
        }
    }

    fn must(repo: &gix::Repository, rev: &str, kind: Kind) -> Result<ObjectId, GitopsError> {
        Self::peeled(repo, rev, kind).ok_or_else(|| {
            GitopsError::Git(format!("{rev} does not name a {kind} in the repository"))
        })
    }

    pub(super) fn head(&self, branch: &str) -> Result<Option<String>, GitopsError> {
        let repo = self.local()?;
        Ok(Self::ref_target(&repo, &format!("refs/heads/{branch}")).map(|id| id.to_string()))
    }

    pub(super) fn branches(&self) -> Result<BTreeMap<String, String>, GitopsError> {
        let repo = self.local()?;
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
        let repo = self.local()?;
        let Some(tree) = Self::peeled(&repo, rev, Kind::Tree) else {
            return Ok(None);
        };
        let cached = Cached(&repo);
        let Ok(Some(entry)) = cached.entry(tree, path) else {
            return Ok(None);
        };
        if !entry.mode.is_blob() {
            return Ok(None);
        }
        match cached.get(&entry.oid).map_err(fail("reading a blob"))? {
            Some((Kind::Blob, data)) => Ok(Some(data.to_vec())),
            _ => Err(GitopsError::Git(format!(
                "reading a blob failed: {} is not a blob",
                entry.oid
            ))),
        }
    }

    pub(super) fn list(&self, rev: &str, prefix: Option<&str>) -> Result<Vec<String>, GitopsError> {
        /// Every file under `tree`, its path prefixed with `base`.
        fn walk(
            objects: &Cached<'_>,
            tree: ObjectId,
            base: &str,
            out: &mut Vec<String>,
        ) -> Result<(), GitopsError> {
            for e in &objects.tree(tree)?.entries {
                let path = format!("{base}{}", e.filename.to_str_lossy());
                if e.mode.is_tree() {
                    walk(objects, e.oid, &format!("{path}/"), out)?;
                } else {
                    out.push(path);
                }
            }
            Ok(())
        }
        let repo = self.local()?;
        let tree = Self::must(&repo, rev, Kind::Tree)?;
        let cached = Cached(&repo);
        let prefix = prefix.map(|p| p.trim_end_matches('/'));
        let mut out = Vec::new();
        match prefix.filter(|p| !p.is_empty()) {
            // Straight to the prefix's entry: a listing costs what is under it, not its
            // siblings.
            Some(p) => match cached.entry(tree, p)? {
                Some(e) if e.mode.is_tree() => walk(&cached, e.oid, &format!("{p}/"), &mut out)?,
                Some(_) => out.push(p.to_owned()),
                None => {}
            },
            None => walk(&cached, tree, "", &mut out)?,
        }
        Ok(out)
    }

    /// See [`super::Repo::complete`].
    pub(super) fn complete(&self, new: &str, old: Option<&str>) -> Result<bool, GitopsError> {
        fn tree_complete(repo: &gix::Repository, tree: ObjectId, old: Option<ObjectId>) -> bool {
            if Some(tree) == old || tree == ObjectId::empty_tree(HASH) {
                return true;
            }
            let Ok(t) = repo.find_tree(tree) else {
                return false;
            };
            let Ok(decoded) = t.decode() else {
                return false;
            };
            let before: HashMap<Vec<u8>, ObjectId> = old
                .and_then(|o| repo.find_tree(o).ok())
                .and_then(|o| {
                    o.decode().ok().map(|d| {
                        d.entries
                            .iter()
                            .map(|e| (e.filename.to_vec(), e.oid.to_owned()))
                            .collect()
                    })
                })
                .unwrap_or_default();
            decoded.entries.iter().all(|e| {
                let was = before.get(e.filename.as_bytes()).copied();
                if e.mode.is_tree() {
                    tree_complete(repo, e.oid.to_owned(), was)
                } else {
                    was == Some(e.oid.to_owned()) || e.mode.is_commit() || repo.has_object(e.oid)
                }
            })
        }
        let repo = self.local()?;
        let tree_of = |id: &str| -> Option<ObjectId> {
            let c = repo.find_commit(oid(id).ok()?).ok()?;
            c.tree_id().ok().map(|t| t.detach())
        };
        let Some(tree) = tree_of(new) else {
            return Ok(false);
        };
        Ok(tree_complete(&repo, tree, old.and_then(tree_of)))
    }

    fn commit_of<'r>(
        repo: &'r gix::Repository,
        id: ObjectId,
    ) -> Result<gix::Commit<'r>, GitopsError> {
        repo.find_commit(id).map_err(fail("reading a commit"))
    }

    pub(super) fn commit_time(&self, rev: &str) -> Result<i64, GitopsError> {
        let repo = self.local()?;
        let id = Self::must(&repo, rev, Kind::Commit)?;
        let commit = Self::commit_of(&repo, id)?;
        Ok(commit
            .committer()
            .map_err(|_| GitopsError::Git(format!("cannot read the time of {rev}")))?
            .seconds())
    }

    pub(super) fn is_ancestor(&self, ancestor: &str, rev: &str) -> Result<bool, GitopsError> {
        let repo = self.local()?;
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
        let repo = self.local()?;
        Ok(Self::peeled(&repo, rev, Kind::Commit).map(|id| id.to_string()))
    }

    pub(super) fn tree_of(&self, rev: &str) -> Result<String, GitopsError> {
        let repo = self.local()?;
        Ok(Self::must(&repo, rev, Kind::Tree)?.to_string())
    }

    pub(super) fn show(&self, rev: &str) -> Result<String, GitopsError> {
        let repo = self.local()?;
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
        let repo = self.local()?;
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

    /// True when the repository's objects go into a pack per commit: while it holds no pack
    /// yet (a new repository, whose first commit is most of its objects). Later commits are
    /// written loose, so the number of packs stays bounded without a repack (a lookup looks
    /// at every pack's index) and small commits cost no pack files.
    fn packs(&self) -> bool {
        let Ok(rd) = std::fs::read_dir(self.path.join("objects/pack")) else {
            return false;
        };
        !rd.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("pack-") && name.ends_with(".pack")
        })
    }

    /// Writes the objects gathered for a pack to `objects/pack/tmp_pack_*` and
    /// `tmp_idx_*` (read-only, not fsynced, not readable), renamed by [`publish`] or
    /// [`Gix::store`] into `pack-<checksum>.pack` and then `.idx` (the index last: git reads a
    /// pack only through its index).
    fn write_pack(&self, batch: &mut Batch) -> Result<(), GitopsError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let Some(pack) = batch.pack.take() else {
            return Ok(());
        };
        if pack.entries.is_empty() {
            return Ok(());
        }
        let (data, idx, sum) = pack_and_index(&pack.entries)?;
        let dir = self.path.join("objects/pack");
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir)?;
            batch.dirs.push(self.path.join("objects"));
        }
        let nonce = hex::encode(rand::random::<[u8; 6]>());
        for (tmp, bytes, ext) in [
            (format!("tmp_pack_{nonce}"), &data, "pack"),
            (format!("tmp_idx_{nonce}"), &idx, "idx"),
        ] {
            let tmp = dir.join(tmp);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(&tmp)?;
            file.write_all(bytes)?;
            batch.files.push((
                tmp,
                file,
                dir.join(format!("pack-{sum}.{ext}")),
                bytes.clone(),
            ));
        }
        batch.dirs.push(dir);
        Ok(())
    }

    fn object_path(&self, id: &ObjectId) -> PathBuf {
        let hex = id.to_string();
        self.path.join("objects").join(&hex[..2]).join(&hex[2..])
    }

    /// Writes one loose object (compressed, read-only, under a temporary name until
    /// [`publish`]) unless it is stored already, or adds it to the batch's pack.
    fn write_object(
        &self,
        batch: &mut Batch,
        kind: Kind,
        data: &[u8],
    ) -> Result<ObjectId, GitopsError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let id = gix::objs::compute_hash(HASH, kind, data).map_err(fail("hashing"))?;
        if kind != Kind::Blob {
            // The next write reads it again (a tree on the path it edits, its parent commit).
            remember(id, kind, data);
        }
        let path = self.object_path(&id);
        // An empty file is what a crash between a rename and its writeback can leave.
        if path.metadata().is_ok_and(|m| m.len() > 0) || batch.files.iter().any(|f| f.2 == path) {
            return Ok(id);
        }
        if let Some(pack) = &mut batch.pack {
            if pack.ids.insert(id) {
                let mut entry = Vec::with_capacity(data.len() / 2 + 16);
                entry_header(kind, data.len(), &mut entry);
                entry.extend_from_slice(&deflate(&[], data)?);
                pack.entries.push((id, entry));
            }
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
        let mut file = file;
        let bytes = deflate(
            &gix::objs::encode::loose_header(kind, data.len() as u64),
            data,
        )?;
        file.write_all(&bytes)?;
        batch.files.push((tmp, file, path, bytes));
        Ok(id)
    }

    /// Makes the objects of the staged commit `new` durable and readable without moving any
    /// ref (dry runs, whose diff reads them): files fsynced, renamed, directories fsynced.
    pub(super) fn store(&self, new: &str) -> Result<(), GitopsError> {
        let key = (self.path.to_path_buf(), oid(new)?);
        let Some(batch) = lock(&STAGED, HashMap::new).remove(&key) else {
            return Ok(());
        };
        let files: Vec<ToSync> = batch.files.iter().map(|f| ToSync::File(&f.1)).collect();
        sync_all(&files)?;
        for (tmp, _, path, _) in &batch.files {
            std::fs::rename(tmp, path)?;
        }
        let dirs: Vec<ToSync> = batch.dirs.iter().map(|d| ToSync::Path(d)).collect();
        Ok(sync_all(&dirs)?)
    }

    /// Drops the staged commit `new` (never to be published): its temporary files go.
    pub(super) fn forget(&self, new: &str) {
        if let Ok(id) = oid(new) {
            let key = (self.path.to_path_buf(), id);
            if let Some(batch) = lock(&STAGED, HashMap::new).remove(&key) {
                batch.discard();
            }
        }
    }

    fn write_tree(
        &self,
        repo: &gix::Repository,
        batch: &mut Batch,
        parent: Option<ObjectId>,
        changes: &Changes,
    ) -> Result<ObjectId, GitopsError> {
        let cached = Cached(repo);
        let base = match parent {
            Some(p) if !changes.replace_all => cached.commit_tree(p)?,
            _ => ObjectId::empty_tree(HASH),
        };
        let mut editor = gix::objs::tree::Editor::new(cached.tree(base)?, &cached, HASH);
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
        let repo = self.local()?;
        let parent_id = parent.map(oid).transpose()?;
        let mut batch = Batch {
            pack: self.packs().then(Pack::default),
            ..Batch::default()
        };
        let result = (|| {
            let tree = match tree {
                Some(t) => oid(t)?,
                None => self.write_tree(&repo, &mut batch, parent_id, changes)?,
            };
            let unchanged = match parent_id {
                Some(p) => Cached(&repo).commit_tree(p)? == tree,
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
            if !unchanged {
                self.write_pack(&mut batch)?;
            }
            Ok::<_, GitopsError>((id, unchanged))
        })();
        let (new, unchanged) = match result {
            Ok(r) => r,
            Err(e) => {
                batch.discard();
                return Err(e);
            }
        };
        if unchanged {
            // Nothing to commit: the commit is never moved to, so it is not stored.
            batch.discard();
        } else {
            let mut dirs = std::mem::take(&mut batch.dirs);
            dirs.sort();
            dirs.dedup();
            batch.dirs = dirs;
            stage(
                &mut lock(&STAGED, HashMap::new),
                (self.path.to_path_buf(), new),
                batch,
            );
        }
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
        publish(&[(self.path, prepared, reason)], None, None)
    }

    /// The ref edits moving each prepared branch from its old commit to its new one, and
    /// `(branch, expected, new)` per edit.
    fn update_edits<'p>(
        &self,
        prepared: &'p [Prepared],
        reason: &str,
    ) -> Result<(Vec<RefEdit>, Expected<'p>), GitopsError> {
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
        Ok((edits, expected))
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

    /// The error of a ref transaction that could not lock or check its refs: a conflict when
    /// a ref moved (or is held by another writer) and `cas_conflict`.
    fn lock_failed(
        &self,
        repo: &gix::Repository,
        expected: &[(&str, Option<ObjectId>, ObjectId)],
        e: impl std::fmt::Display + std::fmt::Debug,
        cas_conflict: bool,
    ) -> GitopsError {
        let stale = expected.iter().any(|(branch, old, _)| {
            Self::ref_target(repo, &format!("refs/heads/{branch}")) != *old
        });
        let text = format!("{e:?}");
        if cas_conflict && (stale || text.contains("lock") || text.contains("Lock")) {
            return conflict(self.path);
        }
        GitopsError::Git(format!("update-ref failed: {e}"))
    }

    /// The lock files of a prepared transaction (to fsync before they are renamed).
    fn lock_files(&self, expected: &[(&str, Option<ObjectId>, ObjectId)]) -> Vec<PathBuf> {
        let heads = self.path.join("refs/heads");
        expected
            .iter()
            .map(|(branch, _, _)| heads.join(format!("{branch}.lock")))
            .filter(|p| p.exists())
            .collect()
    }

    /// What a committed transaction changed, to fsync: the refs' directories, the reflogs and
    /// their directories (`logs_existed`: `logs/refs/heads` was there before).
    fn after_commit(
        &self,
        expected: &[(&str, Option<ObjectId>, ObjectId)],
        logs_existed: bool,
        out: &mut Vec<PathBuf>,
    ) {
        let heads = self.path.join("refs/heads");
        let logs = self.path.join("logs/refs/heads");
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
        out.extend(
            after
                .into_iter()
                .filter_map(|p| p.ancestors().find(|a| a.exists()).map(Path::to_path_buf)),
        );
    }

    /// One ref transaction (undo): every ref locked and checked against its expected value
    /// (`old`, `None`: must not exist) or none changes; lock files fsynced before they are
    /// renamed into place, then the refs' directories and reflogs. `(branch, expected, new)`
    /// per edit.
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
            Err(e) => return Err(self.lock_failed(&repo, expected, e, cas_conflict)),
        };
        sync_paths(&self.lock_files(expected))?;
        let logs_existed = self.path.join("logs/refs/heads").is_dir();
        let now = chrono::Utc::now().timestamp();
        let sig = committer(now);
        let mut time = gix::date::parse::TimeBuf::default();
        tx.commit(Some(sig.to_ref(&mut time)))
            .map_err(fail("update-ref"))?;
        let mut after = Vec::new();
        self.after_commit(expected, logs_existed, &mut after);
        after.sort();
        after.dedup();
        sync_paths(&after)?;
        tracing::debug!(repository = %self.path.display(), refs = expected.len(), "Moved refs.");
        Ok(())
    }
}

/// `(branch, expected old commit, new commit)` of each edit of a ref transaction.
type Expected<'p> = Vec<(&'p str, Option<ObjectId>, ObjectId)>;

/// Moves the prepared branches of several repositories — `(repository, commits, reflog
/// message)` each — all or none (see [`super::publish`]). Round 1 fsyncs the staged object
/// files, new repositories' files, ref lock files, the journal and what `carry` holds from the
/// previous call, whose journals are unlinked then; round 2 the directories that gained an
/// entry (the journal's too, which makes those unlinks durable); then the refs move, and
/// round 3 (the refs' directories and reflogs) runs at once or is left in `carry`.
pub(super) fn publish(
    items: &[(&Path, &[Prepared], &str)],
    journal: Option<&super::Journal<'_>>,
    carry: Option<&mut super::Deferred>,
) -> Result<(), GitopsError> {
    let gixes: Vec<Gix> = items.iter().map(|(path, _, _)| Gix { path }).collect();
    let repos: Vec<gix::Repository> = gixes.iter().map(Gix::open).collect::<Result<_, _>>()?;
    // Every ref locked and checked before anything else; on a conflict the commits stay
    // staged (the caller may publish them once the lock is gone, or forget them).
    let fail_mode = gix::lock::acquire::Fail::AfterDurationWithBackoff(LOCK_WAIT);
    let mut txs = Vec::new();
    let mut expected_all = Vec::new();
    for ((g, repo), (_, prepared, reason)) in gixes.iter().zip(&repos).zip(items) {
        let (edits, expected) = g.update_edits(prepared, reason)?;
        match repo.refs.transaction().prepare(edits, fail_mode, fail_mode) {
            Ok(tx) => txs.push(tx),
            Err(e) => return Err(g.lock_failed(repo, &expected, e, true)),
        }
        expected_all.push(expected);
    }
    // The staged objects and new repositories of every commit published.
    let mut batches: Vec<Batch> = Vec::new();
    {
        let mut staged = lock(&STAGED, HashMap::new);
        for (path, prepared, _) in items {
            for p in prepared.iter() {
                if let Some(b) = staged.remove(&(path.to_path_buf(), oid(&p.new)?)) {
                    batches.push(b);
                }
            }
        }
        let mut inited = lock(&INITED, HashMap::new);
        for (path, _, _) in items {
            batches.extend(inited.remove(*path));
        }
    }
    let discard = |batches: Vec<Batch>| batches.into_iter().for_each(Batch::discard);
    // What is made durable after the refs move (by `carry`'s owner, or at once).
    let mut later = super::Deferred::default();
    // From the moment the objects are placed, a failure before the refs move marks the
    // journal aborted (best effort), so that recovery does not finish the call.
    let abandon = |e: GitopsError| {
        if let Some(j) = journal {
            let _ = super::write_atomic(j.path, j.aborted);
        }
        e
    };
    match journal {
        Some(j) => {
            // Round 1, the only one before the call is answered: the journal, carrying every
            // object file's bytes, and its directory. The objects, new repositories' files,
            // refs and directories are fsynced afterwards (`later`): until then the journal
            // stands for them, and recovery writes again whatever a power loss took.
            let objects: Vec<(&Path, &[u8])> = batches
                .iter()
                .flat_map(|b| &b.files)
                .map(|(_, _, path, bytes)| (path.as_path(), bytes.as_slice()))
                .collect();
            let bytes = super::journal::encode(j.doc, &objects);
            // A used journal file renamed into place and written over: no inode allocated.
            let reused = j.reuse.as_ref().and_then(|used| {
                std::fs::rename(used, j.path).ok()?;
                std::fs::OpenOptions::new().write(true).open(j.path).ok()
            });
            let opened = match reused {
                Some(f) => Ok(f),
                None => std::fs::File::create(j.path),
            };
            let written = opened.and_then(|mut f| {
                f.write_all(&bytes)?;
                f.set_len(bytes.len() as u64)?;
                f.sync_all()?;
                match j.path.parent() {
                    Some(dir) => std::fs::File::open(dir)?.sync_all(),
                    None => Ok(()),
                }
            });
            if let Err(e) = written {
                drop(txs);
                discard(batches);
                return Err(e.into());
            }
            for b in &batches {
                for (tmp, _, path, _) in &b.files {
                    if let Err(e) = std::fs::rename(tmp, path) {
                        drop(txs);
                        discard(batches);
                        return Err(abandon(e.into()));
                    }
                    later.paths.push(path.clone());
                }
                later.paths.extend(b.placed.iter().cloned());
                later.paths.extend(b.dirs.iter().cloned());
            }
        }
        None => {
            // Round 1: the files (objects, new repositories' files, ref lock files).
            let locks: Vec<PathBuf> = gixes
                .iter()
                .zip(&expected_all)
                .flat_map(|(g, e)| g.lock_files(e))
                .collect();
            let mut files: Vec<ToSync> = Vec::new();
            for b in &batches {
                files.extend(b.files.iter().map(|f| ToSync::File(&f.1)));
                files.extend(b.placed.iter().map(|p| ToSync::Path(p)));
            }
            files.extend(locks.iter().map(|p| ToSync::Path(p)));
            let renamed = sync_all(&files).and_then(|()| {
                batches
                    .iter()
                    .flat_map(|b| &b.files)
                    .try_for_each(|(tmp, _, path, _)| std::fs::rename(tmp, path))
            });
            drop(files);
            if let Err(e) = renamed {
                drop(txs);
                discard(batches);
                return Err(e.into());
            }
            // Round 2: the directories that gained an entry.
            let mut dirs: Vec<PathBuf> = batches.iter().flat_map(|b| b.dirs.clone()).collect();
            dirs.sort();
            dirs.dedup();
            sync_paths(&dirs).map_err(|e| abandon(e.into()))?;
        }
    }
    // The refs move, repository by repository.
    let logs_existed: Vec<bool> = gixes
        .iter()
        .map(|g| g.path.join("logs/refs/heads").is_dir())
        .collect();
    let now = chrono::Utc::now().timestamp();
    let sig = committer(now);
    let mut time = gix::date::parse::TimeBuf::default();
    let sig = sig.to_ref(&mut time);
    for (i, tx) in txs.into_iter().enumerate() {
        if let Err(e) = tx.commit(Some(sig)) {
            // The journal is durable: it says "abandoned" before any move is undone, or
            // recovery would finish the call.
            if let Some(j) = journal {
                super::write_atomic(j.path, j.aborted)?;
            }
            for (g, (_, prepared, _)) in gixes.iter().zip(items).take(i).rev() {
                if let Err(undo) = g.undo_refs(prepared) {
                    tracing::error!(repository = %g.path.display(), error = %undo, "Undoing a partial change failed.");
                }
            }
            return Err(GitopsError::Git(format!("update-ref failed: {e}")));
        }
    }
    // The refs' directories and reflogs (and, with a journal, the refs themselves, whose lock
    // files were not fsynced), now or by `carry`'s owner.
    for ((g, e), existed) in gixes.iter().zip(&expected_all).zip(logs_existed) {
        g.after_commit(e, existed, &mut later.paths);
        if journal.is_some() {
            let heads = g.path.join("refs/heads");
            later
                .paths
                .extend(e.iter().map(|(branch, _, _)| heads.join(branch)));
        }
    }
    match carry {
        Some(c) => c.append(later),
        None => later.flush()?,
    }
    tracing::debug!(repositories = items.len(), "Moved refs.");
    Ok(())
}
