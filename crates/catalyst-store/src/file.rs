//! File backend: one folder per deployment holding an atomically replaced `snapshot.json` and an
//! append-only, checksummed `events.log`, whose appends go through one group-commit writer thread.
//!
//! Layout under the store directory:
//! - `<id>/snapshot.json`: the [`DeploymentRecord`] (replaced by temp file + fsync + rename +
//!   directory fsync);
//! - `<id>/events.log`: one event per line, `<crc32 of the json, 8 lowercase hex> <event json>\n`;
//! - `<name>.json` at the top level: an upstream (Go) record, imported by [`FileStore::load_all`]
//!   and then moved to `.imported/<name>.json`.
//!
//! Every path is built from the store directory plus a [`DeploymentId`] (16 hex characters) and
//! fixed file names, so nothing read from a request can reach outside the store.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use catalyst_core::{DeploymentId, DeploymentRecord, Event};
use catalyst_spine::codec::{self, Scan};
use tokio::sync::oneshot;

use crate::upstream;
use crate::{DeploymentStore, LoadWarning, Loaded, StoreError};

const SNAPSHOT: &str = "snapshot.json";
const EVENTS: &str = "events.log";
const IMPORTED: &str = ".imported";
/// Most log files the writer keeps open at once; the least recently used is closed beyond it.
const MAX_OPEN_LOGS: usize = 256;
/// Most queued requests one group commit takes before it writes and syncs.
const MAX_BATCH: usize = 4096;
/// Most threads one group commit uses to fdatasync its files in parallel.
const SYNC_THREADS: usize = 16;

fn io_err(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn writer_gone(root: &Path) -> StoreError {
    io_err(
        root,
        io::Error::other("the store's writer thread has stopped"),
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// fsyncs a directory so that entries created, renamed or removed in it are durable.
fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(dir, e))
}

fn mkdir_private(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Writes `bytes` to `dir/name` atomically and durably: a temp file in the same directory,
/// write, fsync, rename over the target, fsync the directory.
fn write_atomic(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    counter: &AtomicU64,
) -> Result<(), StoreError> {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let target = dir.join(name);
    let written = (|| -> Result<(), (PathBuf, io::Error)> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| (tmp.clone(), e))?;
        f.write_all(bytes).map_err(|e| (tmp.clone(), e))?;
        f.sync_all().map_err(|e| (tmp.clone(), e))?;
        drop(f);
        fs::rename(&tmp, &target).map_err(|e| (target.clone(), e))
    })();
    if let Err((path, e)) = written {
        // Best effort: the temp name is hidden and skipped at load anyway.
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&path, e));
    }
    fsync_dir(dir)
}

/// Encodes events as log lines (the spine's line format, `<crc32 hex> <json>\n` each).
pub(crate) fn encode_log_lines(events: &[Event]) -> Result<Vec<u8>, StoreError> {
    codec::encode(events).map_err(StoreError::Encoding)
}

/// Scans a deployment's log (see [`codec::scan`]): events numbered 1, 2, 3, ….
fn scan_log(bytes: &[u8], visit: impl FnMut(Event) -> bool) -> Scan {
    codec::scan(bytes, |e: &Event| e.seq, visit)
}

/// Cuts the log at `path` back to `good_len`, its last good line. A torn tail is dropped: it was
/// never acknowledged. Anything else is first copied, with the whole log verbatim, to a new
/// `events.log.conflict[.N]` beside it and synced, so nothing acknowledged is lost; that copy's
/// path is returned.
fn repair_log(path: &Path, good_len: u64, torn: bool) -> Result<Option<PathBuf>, StoreError> {
    let aside = if torn {
        None
    } else {
        let bytes = fs::read(path).map_err(|e| io_err(path, e))?;
        Some(
            catalyst_spine::log::set_aside(path, &bytes).map_err(|e| match e {
                catalyst_spine::SpineError::Io { path, source } => io_err(&path, source),
                other => StoreError::Encoding(other.to_string()),
            })?,
        )
    };
    truncate_log(path, good_len)?;
    Ok(aside)
}

fn read_or_empty(path: &Path) -> Result<Vec<u8>, StoreError> {
    match fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(path, e)),
    }
}

fn truncate_log(path: &Path, len: u64) -> Result<(), StoreError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    f.set_len(len).map_err(|e| io_err(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))
}

/// fdatasyncs files, several at once on scoped threads (inline when a thread cannot start).
fn sync_data_all(files: &[(usize, &File)]) -> Vec<(usize, io::Result<()>)> {
    let sync = |part: &[(usize, &File)]| -> Vec<(usize, io::Result<()>)> {
        part.iter().map(|(i, f)| (*i, f.sync_data())).collect()
    };
    if files.len() <= 1 {
        return sync(files);
    }
    let chunk = files.len().div_ceil(SYNC_THREADS);
    std::thread::scope(|scope| {
        let mut out = Vec::with_capacity(files.len());
        let mut handles = Vec::new();
        for part in files.chunks(chunk) {
            match std::thread::Builder::new().spawn_scoped(scope, move || sync(part)) {
                Ok(h) => handles.push((part, h)),
                Err(_) => out.extend(sync(part)),
            }
        }
        for (part, h) in handles {
            match h.join() {
                Ok(results) => out.extend(results),
                Err(_) => out.extend(
                    part.iter()
                        .map(|(i, _)| (*i, Err(io::Error::other("fdatasync thread panicked")))),
                ),
            }
        }
        out
    })
}

type Ack = oneshot::Sender<Result<(), StoreError>>;

/// A log that `load_all` scanned; the writer cuts it (if torn) and adopts its sequence number.
#[derive(Debug)]
struct Adopt {
    id: DeploymentId,
    scanned_len: u64,
    good_len: u64,
    last_seq: u64,
    /// See [`Scan::torn`].
    torn: bool,
}

/// What the writer made of an [`Adopt`]: the log's last sequence number and where it set the
/// log aside (when it did), or why the repair failed.
type Adopted = (DeploymentId, Result<(u64, Option<PathBuf>), StoreError>);

enum Msg {
    Append {
        id: DeploymentId,
        first: u64,
        last: u64,
        bytes: Vec<u8>,
        ack: Ack,
    },
    Adopt {
        logs: Vec<Adopt>,
        ack: oneshot::Sender<Vec<Adopted>>,
    },
    Delete {
        id: DeploymentId,
        ack: Ack,
    },
}

/// The writer's knowledge of one deployment's log.
struct LogState {
    last_seq: u64,
    len: u64,
    file: Option<File>,
    used: u64,
}

/// Appends staged for one log in the current group commit.
struct Staged {
    bytes: Vec<u8>,
    last: u64,
    acks: Vec<Ack>,
}

/// The single owner of every log mutation.
struct Writer {
    root: PathBuf,
    logs: HashMap<DeploymentId, LogState>,
    open: usize,
    tick: u64,
    durable: Arc<Mutex<HashMap<DeploymentId, u64>>>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        while let Ok(first) = rx.recv() {
            let mut staged: HashMap<DeploymentId, Staged> = HashMap::new();
            let mut requests = 0usize;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                requests += 1;
                match msg {
                    Msg::Append {
                        id,
                        first,
                        last,
                        bytes,
                        ack,
                    } => self.stage(&mut staged, id, first, last, bytes, ack),
                    other => {
                        // Keep order: what was queued before is committed first.
                        self.commit(&mut staged);
                        self.control(other);
                    }
                }
                if requests < MAX_BATCH && staged.len() < MAX_OPEN_LOGS {
                    next = rx.try_recv().ok();
                }
            }
            self.commit(&mut staged);
        }
        tracing::debug!(dir = %self.root.display(), "store writer stopped");
    }

    fn stage(
        &mut self,
        staged: &mut HashMap<DeploymentId, Staged>,
        id: DeploymentId,
        first: u64,
        last: u64,
        bytes: Vec<u8>,
        ack: Ack,
    ) {
        let current = match staged.get(&id) {
            Some(s) => s.last,
            None => match self.state(&id) {
                Ok(state) => state.last_seq,
                Err(e) => {
                    let _ = ack.send(Err(e));
                    return;
                }
            },
        };
        if current.checked_add(1) != Some(first) {
            let _ = ack.send(Err(StoreError::SequenceGap {
                id,
                last: current,
                got: first,
            }));
            return;
        }
        let entry = staged.entry(id).or_insert_with(|| Staged {
            bytes: Vec::new(),
            last: current,
            acks: Vec::new(),
        });
        entry.bytes.extend_from_slice(&bytes);
        entry.last = last;
        entry.acks.push(ack);
    }

    /// The writer's state for a log, scanning (and repairing) the file the first time.
    fn state(&mut self, id: &DeploymentId) -> Result<&mut LogState, StoreError> {
        if !self.logs.contains_key(id) {
            let dir = self.root.join(id.as_str());
            let snapshot = dir.join(SNAPSHOT);
            match fs::metadata(&snapshot) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(StoreError::NotFound(id.clone()))
                }
                Err(e) => return Err(io_err(&snapshot, e)),
            }
            let path = dir.join(EVENTS);
            let bytes = read_or_empty(&path)?;
            let scan = scan_log(&bytes, |_| true);
            if let Some(problem) = &scan.problem {
                let aside = repair_log(&path, scan.good_len, scan.torn)?;
                let dropped_bytes = bytes.len() as u64 - scan.good_len;
                match aside {
                    None => tracing::warn!(
                        deployment = %id,
                        path = %path.display(),
                        problem = %problem,
                        kept_events = scan.last_seq,
                        dropped_bytes,
                        "cut a torn event-log tail"
                    ),
                    Some(aside) => tracing::error!(
                        deployment = %id,
                        path = %path.display(),
                        problem = %problem,
                        kept_events = scan.last_seq,
                        set_aside_bytes = dropped_bytes,
                        aside = %aside.display(),
                        "event log damaged or written by two servers; kept its valid prefix and set the whole log aside"
                    ),
                }
            }
            lock(&self.durable).insert(id.clone(), scan.last_seq);
            self.logs.insert(
                id.clone(),
                LogState {
                    last_seq: scan.last_seq,
                    len: scan.good_len,
                    file: None,
                    used: 0,
                },
            );
        }
        self.logs
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.clone()))
    }

    /// Writes every staged log, fdatasyncs each touched file once (several in parallel, so the
    /// file system can fold them into one journal commit), then answers every request.
    fn commit(&mut self, staged: &mut HashMap<DeploymentId, Staged>) {
        if staged.is_empty() {
            return;
        }
        let batch: Vec<(DeploymentId, Staged)> = staged.drain().collect();
        // The batch's logs are the most recently used, so opening one never closes another.
        self.tick += 1;
        for (id, _) in &batch {
            if let Some(state) = self.logs.get_mut(id) {
                state.used = self.tick;
            }
        }
        // 1. Write (page cache only).
        let mut outcome: Vec<Result<bool, (PathBuf, io::Error)>> = batch
            .iter()
            .map(|(id, s)| self.write_log(id, &s.bytes))
            .collect();
        // 2. fdatasync every file written.
        let targets: Vec<(usize, &File)> = batch
            .iter()
            .enumerate()
            .filter(|(i, _)| outcome[*i].is_ok())
            .filter_map(|(i, (id, _))| Some((i, self.logs.get(id)?.file.as_ref()?)))
            .collect();
        let synced = sync_data_all(&targets);
        for (i, result) in synced {
            if let (Err(e), Ok(_)) = (result, &outcome[i]) {
                let path = self.root.join(batch[i].0.as_str()).join(EVENTS);
                outcome[i] = Err((path, e));
            }
        }
        // 3. Make newly created log files' directory entries durable.
        for (i, (id, _)) in batch.iter().enumerate() {
            if let Ok(true) = outcome[i] {
                let dir = self.root.join(id.as_str());
                if let Err(e) = File::open(&dir).and_then(|d| d.sync_all()) {
                    outcome[i] = Err((dir, e));
                }
            }
        }
        // 4. Answer.
        let (files, mut requests, mut bytes) = (batch.len(), 0usize, 0usize);
        for ((id, s), result) in batch.into_iter().zip(outcome) {
            requests += s.acks.len();
            bytes += s.bytes.len();
            match result {
                Ok(_) => {
                    if let Some(state) = self.logs.get_mut(&id) {
                        state.last_seq = s.last;
                        state.len += s.bytes.len() as u64;
                    }
                    lock(&self.durable).insert(id, s.last);
                    for ack in s.acks {
                        let _ = ack.send(Ok(()));
                    }
                }
                Err((path, e)) => {
                    tracing::error!(
                        deployment = %id,
                        path = %path.display(),
                        error = %e,
                        "event-log append failed"
                    );
                    // Cut whatever part of the batch reached the file, then forget the log so
                    // the next append rescans it (and cuts it, should this cut have failed too).
                    if let Some(state) = self.logs.remove(&id) {
                        if let Some(file) = state.file {
                            self.open -= 1;
                            let _ = file.set_len(state.len).and_then(|()| file.sync_all());
                        }
                    }
                    for ack in s.acks {
                        let copy = io::Error::new(e.kind(), e.to_string());
                        let _ = ack.send(Err(io_err(&path, copy)));
                    }
                }
            }
        }
        tracing::trace!(files, requests, bytes, "event-log group commit");
    }

    /// Appends `bytes` to a log (opening it when needed, closing the least recently used log
    /// beyond the cap). Returns whether the file had to be created.
    fn write_log(&mut self, id: &DeploymentId, bytes: &[u8]) -> Result<bool, (PathBuf, io::Error)> {
        let path = self.root.join(id.as_str()).join(EVENTS);
        let needs_open = self.logs.get(id).is_some_and(|s| s.file.is_none());
        let mut created = false;
        if needs_open {
            if self.open >= MAX_OPEN_LOGS {
                self.close_least_recent();
            }
            let existing = OpenOptions::new().append(true).open(&path);
            let file = match existing {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    created = true;
                    OpenOptions::new()
                        .append(true)
                        .create(true)
                        .mode(0o600)
                        .open(&path)
                        .map_err(|e| (path.clone(), e))?
                }
                Err(e) => return Err((path, e)),
            };
            if let Some(state) = self.logs.get_mut(id) {
                state.file = Some(file);
                self.open += 1;
            }
        }
        let file = self
            .logs
            .get_mut(id)
            .and_then(|s| s.file.as_mut())
            .ok_or_else(|| (path.clone(), io::Error::other("log file not open")))?;
        file.write_all(bytes).map_err(|e| (path, e))?;
        Ok(created)
    }

    fn close_least_recent(&mut self) {
        let victim = self
            .logs
            .iter()
            .filter(|(_, s)| s.file.is_some())
            .min_by_key(|(_, s)| s.used)
            .map(|(id, _)| id.clone());
        if let Some(state) = victim.and_then(|id| self.logs.get_mut(&id)) {
            state.file = None;
            self.open -= 1;
        }
    }

    fn forget(&mut self, id: &DeploymentId) {
        if self.logs.remove(id).is_some_and(|s| s.file.is_some()) {
            self.open -= 1;
        }
        lock(&self.durable).remove(id);
    }

    fn control(&mut self, msg: Msg) {
        match msg {
            Msg::Append { ack, .. } => {
                // Not reached: appends are staged by `run`.
                let _ = ack.send(Err(writer_gone(&self.root)));
            }
            Msg::Adopt { logs, ack } => {
                let mut out = Vec::with_capacity(logs.len());
                for a in logs {
                    if let Some(state) = self.logs.get(&a.id) {
                        // Appended to since the scan: the writer knows better.
                        out.push((a.id, Ok((state.last_seq, None))));
                        continue;
                    }
                    let mut aside = None;
                    if a.good_len < a.scanned_len {
                        let path = self.root.join(a.id.as_str()).join(EVENTS);
                        match repair_log(&path, a.good_len, a.torn) {
                            Ok(p) => aside = p,
                            Err(e) => {
                                out.push((a.id, Err(e)));
                                continue;
                            }
                        }
                    }
                    lock(&self.durable).insert(a.id.clone(), a.last_seq);
                    self.logs.insert(
                        a.id.clone(),
                        LogState {
                            last_seq: a.last_seq,
                            len: a.good_len,
                            file: None,
                            used: 0,
                        },
                    );
                    out.push((a.id, Ok((a.last_seq, aside))));
                }
                let _ = ack.send(out);
            }
            Msg::Delete { id, ack } => {
                self.forget(&id);
                let dir = self.root.join(id.as_str());
                let result = match fs::remove_dir_all(&dir) {
                    Ok(()) => fsync_dir(&self.root),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(io_err(&dir, e)),
                };
                let _ = ack.send(result);
            }
        }
    }
}

/// The file-system store (the default backend).
///
/// Snapshots are replaced atomically; events are appended to a per-deployment log by one
/// writer thread that batches every queued append into a single write and fdatasync per file
/// (group commit), and acknowledges an append only once it is on stable storage.
pub struct FileStore {
    dir: PathBuf,
    tx: mpsc::Sender<Msg>,
    durable: Arc<Mutex<HashMap<DeploymentId, u64>>>,
    counter: Arc<AtomicU64>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// Opens (creating it with mode 0700 when missing) a store directory, proves it writable
    /// and starts the writer thread.
    pub fn open(dir: impl Into<PathBuf>) -> Result<FileStore, StoreError> {
        let dir = dir.into();
        if dir.as_os_str().is_empty() {
            return Err(io_err(
                &dir,
                io::Error::new(io::ErrorKind::InvalidInput, "empty store directory"),
            ));
        }
        mkdir_private(&dir).map_err(|e| io_err(&dir, e))?;
        let counter = Arc::new(AtomicU64::new(0));
        probe(&dir, &counter)?;
        let durable = Arc::new(Mutex::new(HashMap::new()));
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            root: dir.clone(),
            logs: HashMap::new(),
            open: 0,
            tick: 0,
            durable: Arc::clone(&durable),
        };
        std::thread::Builder::new()
            .name("catalyst-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| io_err(&dir, e))?;
        tracing::info!(dir = %dir.display(), "file store opened");
        Ok(FileStore {
            dir,
            tx,
            durable,
            counter,
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn deployment_dir(&self, id: &DeploymentId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        tokio::task::spawn_blocking(f).await.map_err(|e| {
            io_err(
                &self.dir,
                io::Error::other(format!("store task failed: {e}")),
            )
        })?
    }

    async fn request<T>(&self, msg: Msg, rx: oneshot::Receiver<T>) -> Result<T, StoreError> {
        self.tx.send(msg).map_err(|_| writer_gone(&self.dir))?;
        rx.await.map_err(|_| writer_gone(&self.dir))
    }
}

/// Creates, fsyncs and removes a uniquely named hidden probe file.
fn probe(dir: &Path, counter: &AtomicU64) -> Result<(), StoreError> {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!(".write-probe.{}.{n}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(b"probe")?;
        f.sync_all()?;
        drop(f);
        fs::remove_file(&path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&path);
    }
    result.map_err(|e| io_err(&path, e))
}

fn encode_snapshot(record: &DeploymentRecord) -> Result<Vec<u8>, StoreError> {
    let mut bytes =
        serde_json::to_vec_pretty(record).map_err(|e| StoreError::Encoding(e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn snapshot_exists(dir: &Path, id: &DeploymentId) -> Result<(), StoreError> {
    let path = dir.join(SNAPSHOT);
    match fs::metadata(&path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound(id.clone())),
        Err(e) => Err(io_err(&path, e)),
    }
}

fn warning(location: &Path, message: impl Into<String>) -> LoadWarning {
    LoadWarning {
        location: location.display().to_string(),
        message: message.into(),
    }
}

/// One deployment folder, read: its record (with `last_seq` from the log), what the writer must
/// adopt, and a warning when the log had a torn tail.
type LoadedOne = (DeploymentRecord, Adopt, Option<LoadWarning>);

fn load_one(root: &Path, id: &DeploymentId) -> Result<LoadedOne, LoadWarning> {
    let dir = root.join(id.as_str());
    let snap_path = dir.join(SNAPSHOT);
    let snap = match fs::read(&snap_path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(warning(
                &dir,
                "no snapshot.json (creation never completed); skipped",
            ))
        }
        Err(e) => return Err(warning(&snap_path, format!("unreadable: {e}; skipped"))),
    };
    let mut record: DeploymentRecord = serde_json::from_slice(&snap)
        .map_err(|e| warning(&snap_path, format!("undecodable snapshot: {e}; skipped")))?;
    if &record.id != id {
        return Err(warning(
            &snap_path,
            format!("snapshot is for deployment {}; skipped", record.id),
        ));
    }
    let log_path = dir.join(EVENTS);
    let log = match read_or_empty(&log_path) {
        Ok(b) => b,
        Err(e) => return Err(warning(&log_path, format!("unreadable: {e}; skipped"))),
    };
    let scan = scan_log(&log, |_| true);
    let dropped = log.len() as u64 - scan.good_len;
    let torn = scan.problem.map(|problem| {
        let message = if scan.torn {
            format!(
                "torn tail cut: {problem}; kept {} events ({} bytes), dropped {dropped} bytes",
                scan.last_seq, scan.good_len,
            )
        } else {
            format!(
                "event log damaged or written by two servers at once: {problem}; kept {} events ({} bytes); the {dropped} bytes after them, which may hold acknowledged events, were set aside",
                scan.last_seq, scan.good_len,
            )
        };
        warning(&log_path, message)
    });
    record.last_seq = scan.last_seq;
    let adopt = Adopt {
        id: id.clone(),
        scanned_len: log.len() as u64,
        good_len: scan.good_len,
        last_seq: scan.last_seq,
        torn: scan.torn,
    };
    Ok((record, adopt, torn))
}

/// Imports one upstream record file; returns its id once it is in the new layout and the
/// original has been moved to `.imported/`.
fn import_upstream(
    root: &Path,
    path: &Path,
    name: &str,
    counter: &AtomicU64,
) -> Result<DeploymentId, LoadWarning> {
    let bytes =
        fs::read(path).map_err(|e| warning(path, format!("unreadable upstream record: {e}")))?;
    let (record, events) = upstream::convert(&bytes).map_err(|m| warning(path, m))?;
    let id = record.id.clone();
    let dir = root.join(id.as_str());
    let durable_err = |e: StoreError| warning(path, format!("import failed: {e}; left in place"));
    if dir.join(SNAPSHOT).exists() {
        tracing::info!(deployment = %id, file = %path.display(),
            "upstream record already imported; moving it aside");
    } else {
        mkdir_private(&dir).map_err(|e| durable_err(io_err(&dir, e)))?;
        let log = encode_log_lines(&events).map_err(durable_err)?;
        write_atomic(&dir, EVENTS, &log, counter).map_err(durable_err)?;
        let snap = encode_snapshot(&record).map_err(durable_err)?;
        write_atomic(&dir, SNAPSHOT, &snap, counter).map_err(durable_err)?;
        fsync_dir(root).map_err(durable_err)?;
        tracing::info!(deployment = %id, file = %path.display(), events = events.len(),
            status = %record.status, "imported upstream deployment record");
    }
    let imported = root.join(IMPORTED);
    mkdir_private(&imported).map_err(|e| durable_err(io_err(&imported, e)))?;
    let target = imported.join(name);
    fs::rename(path, &target).map_err(|e| durable_err(io_err(&target, e)))?;
    fsync_dir(&imported).map_err(durable_err)?;
    fsync_dir(root).map_err(durable_err)?;
    Ok(id)
}

/// Everything `load_all` does off the async runtime, except adopting logs in the writer.
fn load_blocking(
    root: &Path,
    counter: &AtomicU64,
) -> Result<(Vec<LoadedOne>, Vec<LoadWarning>), StoreError> {
    let mut warnings = Vec::new();
    let mut dirs = BTreeSet::new();
    let mut imports = Vec::new();
    let entries = fs::read_dir(root).map_err(|e| io_err(root, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(root, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            warnings.push(warning(&path, "name is not UTF-8; ignored"));
            continue;
        };
        if name.starts_with('.') {
            continue; // hidden, temp, probe, .imported
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            dirs.insert(name);
        } else if kind.is_file() && name.ends_with(".json") {
            imports.push((path, name));
        }
    }
    for (path, name) in imports {
        match import_upstream(root, &path, &name, counter) {
            Ok(id) => {
                dirs.insert(id.as_str().to_owned());
            }
            Err(w) => warnings.push(w),
        }
    }
    let mut ids = Vec::with_capacity(dirs.len());
    for name in dirs {
        match DeploymentId::parse(&name) {
            Ok(id) => ids.push(id),
            Err(_) => warnings.push(warning(
                &root.join(&name),
                "folder name is not a deployment id; ignored",
            )),
        }
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let chunk = ids.len().div_ceil(threads).max(64);
    let results: Vec<Result<LoadedOne, LoadWarning>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|id| load_one(root, id)).collect()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![Err(warning(root, "a loader thread panicked; records lost"))]
                })
            })
            .collect::<Vec<_>>()
    });
    let mut loaded = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(one) => loaded.push(one),
            Err(w) => warnings.push(w),
        }
    }
    Ok((loaded, warnings))
}

#[async_trait]
impl DeploymentStore for FileStore {
    fn backend(&self) -> &'static str {
        "file"
    }

    async fn create(&self, record: &DeploymentRecord) -> Result<(), StoreError> {
        let root = self.dir.clone();
        let dir = self.deployment_dir(&record.id);
        let id = record.id.clone();
        let snap = encode_snapshot(record)?;
        let counter = Arc::clone(&self.counter);
        self.blocking(move || {
            if dir.join(SNAPSHOT).exists() {
                return Err(io_err(
                    &dir,
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("deployment {id} already exists"),
                    ),
                ));
            }
            mkdir_private(&dir).map_err(|e| io_err(&dir, e))?;
            let log = dir.join(EVENTS);
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&log)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_err(&log, e))?;
            write_atomic(&dir, SNAPSHOT, &snap, &counter)?;
            fsync_dir(&root)?;
            tracing::debug!(deployment = %id, "deployment created in file store");
            Ok(())
        })
        .await
    }

    async fn save_snapshot(&self, record: &DeploymentRecord) -> Result<(), StoreError> {
        let dir = self.deployment_dir(&record.id);
        let id = record.id.clone();
        let snap = encode_snapshot(record)?;
        let counter = Arc::clone(&self.counter);
        self.blocking(move || {
            snapshot_exists(&dir, &id)?;
            write_atomic(&dir, SNAPSHOT, &snap, &counter)
        })
        .await
    }

    async fn append_events(&self, id: &DeploymentId, events: &[Event]) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        for w in events.windows(2) {
            if w[0].seq.checked_add(1) != Some(w[1].seq) {
                return Err(StoreError::SequenceGap {
                    id: id.clone(),
                    last: w[0].seq,
                    got: w[1].seq,
                });
            }
        }
        let bytes = encode_log_lines(events)?;
        let (ack, rx) = oneshot::channel();
        let msg = Msg::Append {
            id: id.clone(),
            first: first.seq,
            last: last.seq,
            bytes,
            ack,
        };
        self.request(msg, rx).await?
    }

    async fn events_after(
        &self,
        id: &DeploymentId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let dir = self.deployment_dir(id);
        let id = id.clone();
        // Events written but not yet fsynced are not shown: a crash could still take them.
        let cap = lock(&self.durable).get(&id).copied().unwrap_or(u64::MAX);
        self.blocking(move || {
            snapshot_exists(&dir, &id)?;
            let mut out = Vec::new();
            if limit == 0 {
                return Ok(out);
            }
            let bytes = read_or_empty(&dir.join(EVENTS))?;
            scan_log(&bytes, |event| {
                if event.seq > cap {
                    return false;
                }
                if event.seq > after {
                    out.push(event);
                }
                out.len() < limit
            });
            Ok(out)
        })
        .await
    }

    async fn load_all(&self) -> Result<Loaded, StoreError> {
        let root = self.dir.clone();
        let counter = Arc::clone(&self.counter);
        let started = std::time::Instant::now();
        let (loaded, mut warnings) = self
            .blocking(move || load_blocking(&root, &counter))
            .await?;
        let mut records = Vec::with_capacity(loaded.len());
        let mut adopts = Vec::with_capacity(loaded.len());
        // The repair warning of each log, completed once the writer says where it set it aside.
        let mut repairs = HashMap::new();
        for (record, adopt, torn) in loaded {
            if let Some(w) = torn {
                repairs.insert(record.id.clone(), warnings.len());
                warnings.push(w);
            }
            records.push(record);
            adopts.push(adopt);
        }
        let (ack, rx) = oneshot::channel();
        let adopted = self.request(Msg::Adopt { logs: adopts, ack }, rx).await?;
        let outcome: HashMap<DeploymentId, Result<(u64, Option<PathBuf>), StoreError>> =
            adopted.into_iter().collect();
        let mut kept = Vec::with_capacity(records.len());
        for mut record in records {
            match outcome.get(&record.id) {
                Some(Ok((seq, aside))) => {
                    if let (Some(aside), Some(&w)) = (aside, repairs.get(&record.id)) {
                        warnings[w].message.push_str(&format!(
                            " in {} (a verbatim copy of the whole log)",
                            aside.display()
                        ));
                    }
                    record.last_seq = *seq;
                    kept.push(record);
                }
                Some(Err(e)) => warnings.push(LoadWarning {
                    location: self
                        .deployment_dir(&record.id)
                        .join(EVENTS)
                        .display()
                        .to_string(),
                    message: format!("could not cut torn tail: {e}; skipped"),
                }),
                None => kept.push(record),
            }
        }
        kept.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        for w in &warnings {
            tracing::warn!(location = %w.location, problem = %w.message, "store load warning");
        }
        tracing::info!(
            dir = %self.dir.display(),
            records = kept.len(),
            warnings = warnings.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "file store loaded"
        );
        Ok(Loaded {
            records: kept,
            warnings,
        })
    }

    async fn delete(&self, id: &DeploymentId) -> Result<(), StoreError> {
        let (ack, rx) = oneshot::channel();
        self.request(
            Msg::Delete {
                id: id.clone(),
                ack,
            },
            rx,
        )
        .await??;
        tracing::debug!(deployment = %id, "deployment deleted from file store");
        Ok(())
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        let dir = self.dir.clone();
        let counter = Arc::clone(&self.counter);
        self.blocking(move || probe(&dir, &counter)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalyst_core::{EventDraft, Level};

    fn event(seq: u64) -> Event {
        EventDraft::new(
            chrono::Utc::now(),
            "tofu",
            Level::Info,
            format!("line {seq}"),
        )
        .sequenced(seq)
    }

    #[test]
    fn lines_round_trip_and_detect_damage() {
        let events: Vec<Event> = (1..=3).map(event).collect();
        let bytes = encode_log_lines(&events).unwrap();
        let mut seen = Vec::new();
        let scan = scan_log(&bytes, |e| {
            seen.push(e);
            true
        });
        assert_eq!(seen, events);
        assert_eq!(scan.good_len, bytes.len() as u64);
        assert!(scan.problem.is_none());

        let mut flipped = bytes.clone();
        let at = flipped.len() - 5;
        flipped[at] ^= 0x01;
        let scan = scan_log(&flipped, |_| true);
        assert_eq!(scan.last_seq, 2);
        assert!(!scan.torn, "a complete damaged line is not a torn tail");
        assert!(scan.problem.unwrap().contains("checksum"));

        let scan = scan_log(&bytes[..bytes.len() - 1], |_| true);
        assert_eq!(scan.last_seq, 2);
        assert!(scan.torn);
        assert!(scan.problem.unwrap().contains("newline"));

        // Two complete lines with the same sequence number.
        let mut twice = encode_log_lines(&events[..2]).unwrap();
        twice.extend(encode_log_lines(&events[1..]).unwrap());
        let scan = scan_log(&twice, |_| true);
        assert_eq!(scan.last_seq, 2);
        assert!(!scan.torn);
        assert!(scan
            .problem
            .unwrap()
            .contains("sequence 2 does not follow 2"));
    }
}
