//! Durability work left after a call is answered, and the background thread that does it.
//!
//! A call is answered once its journal is durable (it carries the call's objects and planned
//! ref moves, see [`super::journal`]); the object files, new repositories' files, refs, reflogs
//! and the directories that gained entries are fsynced afterwards, many calls at a time (a
//! directory or ref that several calls touched is fsynced once), and only then are those
//! calls' journals unlinked. Until then each journal stands for its call: recovery at the next
//! open writes again whatever a power loss took (`Sovereign::recover`).
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::GitopsError;

#[cfg(not(target_os = "linux"))]
use super::{parallel, sync_if_there};
use super::{remove_if_there, sync_paths};

/// Where used journal files wait to be written again: a call renames one into the journals'
/// folder instead of creating a file, and the flusher renames it back instead of unlinking it,
/// so a call allocates and frees no inode for its journal (on ext4, allocating an inode next to
/// many recently freed ones scans them one by one). Without a folder, journals are unlinked.
#[derive(Debug, Default, Clone)]
pub struct Recycle {
    dir: Option<PathBuf>,
    free: Arc<Mutex<Vec<PathBuf>>>,
}

impl Recycle {
    /// Recycles through `dir` (made if missing), holding the files already there.
    pub fn at(dir: PathBuf) -> std::io::Result<Recycle> {
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir)?;
            if let Some(up) = dir.parent() {
                sync_paths(&[up.to_path_buf()])?;
            }
        }
        let free = std::fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        Ok(Recycle {
            dir: Some(dir),
            free: Arc::new(Mutex::new(free)),
        })
    }

    /// A used journal file to write the next journal into, if one waits.
    pub fn take(&self) -> Option<PathBuf> {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// Sets `journal` aside for a later call (or unlinks it without a folder); a journal gone
    /// already is skipped. Returns the directories that changed.
    pub fn put(&self, journal: &Path) -> std::io::Result<Vec<PathBuf>> {
        let mut changed: Vec<PathBuf> = journal
            .parent()
            .map(Path::to_path_buf)
            .into_iter()
            .collect();
        match &self.dir {
            Some(dir) => {
                let to = dir.join(hex::encode(rand::random::<[u8; 8]>()));
                match std::fs::rename(journal, &to) {
                    Ok(()) => {
                        self.free.lock().unwrap_or_else(|p| p.into_inner()).push(to);
                        changed.push(dir.clone());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            None => remove_if_there(journal)?,
        }
        Ok(changed)
    }
}

/// Durability work calls left: paths to fsync (a path gone since is skipped), then the
/// journals to unlink once those are durable. [`Deferred::flush`] does it at once.
#[derive(Debug, Default)]
pub struct Deferred {
    pub(super) paths: Vec<PathBuf>,
    pub(super) journals: Vec<PathBuf>,
}

impl Deferred {
    /// A journal to unlink once the paths before it are durable.
    pub fn journal(&mut self, path: PathBuf) {
        self.journals.push(path);
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.journals.is_empty()
    }

    /// fsyncs what waits (each path once), then unlinks the journals and fsyncs their
    /// directories. On an error nothing is unlinked: the journals stay for recovery.
    pub fn flush(&mut self) -> Result<(), GitopsError> {
        self.flush_into(&Recycle::default())
    }

    /// [`Deferred::flush`], setting the journals aside in `recycle` instead of unlinking them.
    pub fn flush_into(&mut self, recycle: &Recycle) -> Result<(), GitopsError> {
        self.paths.sort();
        self.paths.dedup();
        sync_file_systems(&self.paths)?;
        self.paths.clear();
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (i, j) in self.journals.iter().enumerate() {
            match recycle.put(j) {
                Ok(changed) => dirs.extend(changed),
                Err(e) => {
                    self.journals.drain(..i);
                    return Err(e.into());
                }
            }
        }
        self.journals.clear();
        dirs.sort();
        dirs.dedup();
        Ok(sync_paths(&dirs)?)
    }

    pub(super) fn append(&mut self, mut other: Deferred) {
        self.paths.append(&mut other.paths);
        self.journals.append(&mut other.journals);
    }
}

/// Makes every path durable (a path gone since is skipped). On Linux with one `syncfs` per file
/// system the paths are on: it writes back the file system's dirty data and commits its
/// journal once, where one fsync per path would commit it once per path (and a batch holds
/// hundreds); elsewhere path by path.
fn sync_file_systems(paths: &[PathBuf]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt as _;
        let mut seen: std::collections::HashMap<u64, &PathBuf> = Default::default();
        for p in paths {
            match std::fs::symlink_metadata(p) {
                Ok(m) => {
                    seen.entry(m.dev()).or_insert(p);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        for p in seen.into_values() {
            match std::fs::File::open(p) {
                Ok(f) => rustix::fs::syncfs(&f)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Gone since: its directory is on the same file system.
                    let dir = p.parent().unwrap_or(Path::new("/"));
                    rustix::fs::syncfs(&std::fs::File::open(dir)?)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    parallel(paths, sync_if_there)
}

/// Journals waiting beyond which a call waits for the background thread (bounds the work a
/// recovery may have to do and the memory the paths take).
const MAX_WAITING: usize = 2048;

struct State {
    pending: Deferred,
    /// A batch is being made durable (by the thread or [`Flusher::flush`]).
    busy: bool,
    stop: bool,
    /// How long the thread gathers calls before it makes them durable.
    interval: Duration,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.0.lock().unwrap_or_else(|p| p.into_inner())
}

/// Owns the background thread that makes [`Deferred`] work durable; dropping it stops the
/// thread and flushes what waits.
pub struct Flusher {
    shared: Shared,
    recycle: Recycle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The work waiting, held while a call adds to it (calls publish one at a time).
pub struct Pending<'a> {
    guard: MutexGuard<'a, State>,
    shared: &'a Shared,
}

impl std::ops::Deref for Pending<'_> {
    type Target = Deferred;
    fn deref(&self) -> &Deferred {
        &self.guard.pending
    }
}

impl std::ops::DerefMut for Pending<'_> {
    fn deref_mut(&mut self) -> &mut Deferred {
        &mut self.guard.pending
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.shared.1.notify_all();
    }
}

impl Default for Flusher {
    fn default() -> Self {
        Flusher::start(Duration::from_millis(20), Recycle::default())
    }
}

impl Flusher {
    /// Starts the thread; it gathers calls for `interval` after the first one waits, and sets
    /// their journals aside in `recycle` once they are durable.
    pub fn start(interval: Duration, recycle: Recycle) -> Flusher {
        let shared: Shared = Arc::new((
            Mutex::new(State {
                pending: Deferred::default(),
                busy: false,
                stop: false,
                interval,
            }),
            Condvar::new(),
        ));
        let thread = {
            let shared = shared.clone();
            let recycle = recycle.clone();
            std::thread::Builder::new()
                .name("catalyst-git-flusher".into())
                .spawn(move || run(&shared, &recycle))
                .ok()
        };
        if thread.is_none() {
            tracing::warn!("Could not start the Git flusher thread; calls flush their own work.");
        }
        Flusher {
            shared,
            recycle,
            thread,
        }
    }

    /// Where journal files are set aside to be written again.
    pub fn recycle(&self) -> &Recycle {
        &self.recycle
    }

    /// How long the thread gathers calls (a long one keeps journals around: tests).
    pub fn set_interval(&self, interval: Duration) {
        lock(&self.shared).interval = interval;
        self.shared.1.notify_all();
    }

    /// The waiting work, to add a call's to (the caller waits first when too much waits, or
    /// when no thread runs flushes it itself).
    pub fn pending(&self) -> Pending<'_> {
        let mut guard = lock(&self.shared);
        if self.thread.is_none() {
            drop(guard);
            if let Err(e) = self.flush() {
                tracing::warn!(error = %e, "Could not make earlier calls durable; their journals stay.");
            }
            guard = lock(&self.shared);
        }
        while guard.pending.journals.len() >= MAX_WAITING && !guard.stop {
            guard = self.shared.1.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
        Pending {
            guard,
            shared: &self.shared,
        }
    }

    /// Makes everything waiting durable now (after the batch in progress, if any).
    pub fn flush(&self) -> Result<(), GitopsError> {
        let mut batch = {
            let mut g = lock(&self.shared);
            while g.busy {
                g = self.shared.1.wait(g).unwrap_or_else(|p| p.into_inner());
            }
            g.busy = true;
            std::mem::take(&mut g.pending)
        };
        let done = batch.flush_into(&self.recycle);
        let mut g = lock(&self.shared);
        g.busy = false;
        if done.is_err() {
            // Tried again later; the journals stay meanwhile.
            g.pending.append(batch);
        }
        drop(g);
        self.shared.1.notify_all();
        done
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        lock(&self.shared).stop = true;
        self.shared.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "Could not make the last calls durable; the next start-up finishes them from their journals.");
        }
    }
}

/// The thread: waits for work, gathers for the interval, makes a batch durable, repeats.
fn run(shared: &Shared, recycle: &Recycle) {
    loop {
        let mut batch = {
            let mut g = lock(shared);
            while !g.stop && (g.pending.is_empty() || g.busy) {
                g = shared.1.wait(g).unwrap_or_else(|p| p.into_inner());
            }
            if g.stop {
                return;
            }
            // Gather the calls of the next moments too (one fsync per path for all of them),
            // unless too many wait already.
            let until = std::time::Instant::now() + g.interval;
            while !g.stop && g.pending.journals.len() < MAX_WAITING / 2 {
                let now = std::time::Instant::now();
                if now >= until {
                    break;
                }
                g = shared
                    .1
                    .wait_timeout(g, until - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if g.stop || g.busy {
                continue;
            }
            g.busy = true;
            std::mem::take(&mut g.pending)
        };
        let done = batch.flush_into(recycle);
        let mut g = lock(shared);
        g.busy = false;
        if let Err(e) = done {
            tracing::warn!(error = %e, "Could not make calls durable; trying again (their journals stay).");
            g.pending.append(batch);
            drop(g);
            shared.1.notify_all();
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        drop(g);
        shared.1.notify_all();
    }
}
