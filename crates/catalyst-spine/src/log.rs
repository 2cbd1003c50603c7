//! The embedded spine: one append-only log, `<data-dir>/events/events.log`, in the [`codec`]
//! line format.
//!
//! - **Durable before acknowledged.** [`Spine::append`] returns only after the lines are written
//!   and `fdatasync`ed. One writer thread does all writes; appends that arrive while it syncs
//!   are written and synced together (group commit), so a burst costs one sync, not one each.
//! - **Exactly once, in order.** Events are numbered 1, 2, 3, … (`catalystseq`) in the order
//!   they are written; an event whose id the log already holds is not written again — its
//!   stored copy is returned — so a producer may safely publish a change again after a crash.
//! - **Repair.** At open, a torn tail (a partial last line: a crash mid-append, never
//!   acknowledged) is cut; a complete line that is damaged or out of sequence sets the whole
//!   file aside in `events.log.conflict[.N]` (synced) before the cut, with a warning: nothing
//!   acknowledged is dropped silently.
//! - Readers see every recorded event from memory ([`Spine::read_after`]) and learn of new ones
//!   through a [`tokio::sync::watch`] of the head.
//!
//! [`codec`]: crate::codec

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, RwLock};

use tokio::sync::watch;

use crate::codec;
use crate::event::CloudEvent;
use crate::SpineError;

/// The spine as producers and readers see it; the embedded [`FileLog`] and the shared
/// (JetStream) backend both implement it.
pub trait Spine: Send + Sync {
    /// Records `events` durably, in order, each once: an event whose id is already recorded is
    /// not written again. Returns every event as recorded (with its `catalystseq`). Blocks until
    /// the events are durable.
    fn append(&self, events: Vec<CloudEvent>) -> Result<Vec<Arc<CloudEvent>>, SpineError>;

    /// Every recorded event, in memory: what the reads below serve from.
    fn memory(&self) -> &Memory;

    /// `file` or `jetstream`.
    fn backend(&self) -> &'static str;

    /// Whether an event with this id is recorded.
    fn contains(&self, id: &str) -> bool {
        read(&self.memory().recorded).contains(id)
    }

    /// The sequence number of the last recorded event (0: none).
    fn head(&self) -> u64 {
        *self.memory().head.borrow()
    }

    /// Up to `limit` recorded events after sequence `after`, in order.
    fn read_after(&self, after: u64, limit: usize) -> Vec<Arc<CloudEvent>> {
        read(&self.memory().recorded).read_after(after, limit)
    }

    /// The head, updated after every append.
    fn watch(&self) -> watch::Receiver<u64> {
        self.memory().head.subscribe()
    }

    /// How many recorded events there are of each type (short kind), sorted by type.
    fn counts_by_type(&self) -> Vec<(String, u64)> {
        read(&self.memory().recorded).counts()
    }
}

/// The recorded events of a spine in memory, and a watch of their head: both backends keep one,
/// and every read is served from it.
#[derive(Clone)]
pub struct Memory {
    pub(crate) recorded: Arc<RwLock<Recorded>>,
    pub(crate) head: watch::Sender<u64>,
}

impl Memory {
    pub(crate) fn new(recorded: Recorded) -> Memory {
        let head = recorded.head();
        Memory {
            recorded: Arc::new(RwLock::new(recorded)),
            head: watch::channel(head).0,
        }
    }
}

/// The log's file name inside its directory.
pub const LOG_FILE: &str = "events.log";

fn io_err(path: &Path, source: io::Error) -> SpineError {
    SpineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Every recorded event in memory, in order, with its id index: what readers of either backend
/// read.
#[derive(Default)]
pub(crate) struct Recorded {
    events: Vec<Arc<CloudEvent>>,
    /// Id → position in `events`.
    ids: HashMap<String, usize>,
    by_type: std::collections::BTreeMap<String, u64>,
}

impl Recorded {
    /// Adds an event that carries its `catalystseq` (greater than every one before).
    pub(crate) fn push(&mut self, e: CloudEvent) {
        self.ids.insert(e.id.clone(), self.events.len());
        *self.by_type.entry(e.short_kind().to_owned()).or_default() += 1;
        self.events.push(Arc::new(e));
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<CloudEvent>> {
        self.events.get(*self.ids.get(id)?).cloned()
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    pub(crate) fn head(&self) -> u64 {
        self.events.last().map_or(0, |e| e.catalystseq)
    }

    pub(crate) fn read_after(&self, after: u64, limit: usize) -> Vec<Arc<CloudEvent>> {
        let start = self.events.partition_point(|e| e.catalystseq <= after);
        self.events[start..].iter().take(limit).cloned().collect()
    }

    pub(crate) fn counts(&self) -> Vec<(String, u64)> {
        self.by_type.iter().map(|(k, n)| (k.clone(), *n)).collect()
    }
}

type Reply = mpsc::SyncSender<Result<Vec<Arc<CloudEvent>>, String>>;

struct Batch {
    events: Vec<CloudEvent>,
    reply: Reply,
}

/// The embedded spine (see the module documentation).
pub struct FileLog {
    path: PathBuf,
    memory: Memory,
    tx: mpsc::Sender<Batch>,
}

impl std::fmt::Debug for FileLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLog").field("path", &self.path).finish()
    }
}

/// What opening found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Events recorded.
    pub events: u64,
    /// Bytes of a torn tail cut off.
    pub torn_bytes: u64,
    /// Where a damaged or conflicting log was set aside, when it was.
    pub set_aside: Option<PathBuf>,
}

fn fsync_dir(dir: &Path) -> Result<(), SpineError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Keeps `bytes` (a log's whole content) in a new `<file name>.conflict[.N]` beside `path`,
/// synced with its directory, and returns that path: what a repair does before it cuts a log
/// whose damage may hold acknowledged entries (this log's and each deployment's).
pub fn set_aside(path: &Path, bytes: &[u8]) -> Result<PathBuf, SpineError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let base = format!(
        "{}.conflict",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| LOG_FILE.to_owned())
    );
    for n in 1u32..10_000 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}.{n}")
        };
        let candidate = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&candidate)
        {
            Ok(mut f) => {
                f.write_all(bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| io_err(&candidate, e))?;
                fsync_dir(dir)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(&candidate, e)),
        }
    }
    Err(io_err(
        path,
        io::Error::other("too many conflict copies beside the log"),
    ))
}

impl FileLog {
    /// Opens (creating) the log in `dir`, repairing what a crash left, and starts its writer.
    pub fn open(dir: impl AsRef<Path>) -> Result<(FileLog, OpenReport), SpineError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let path = dir.join(LOG_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&path, e)),
        };
        let mut recorded = Recorded::default();
        let scan = codec::scan(
            &bytes,
            |e: &CloudEvent| e.catalystseq,
            |e| {
                recorded.push(e);
                true
            },
        );
        let mut report = OpenReport {
            events: scan.last_seq,
            ..OpenReport::default()
        };
        if let Some(problem) = &scan.problem {
            if scan.torn {
                report.torn_bytes = bytes.len() as u64 - scan.good_len;
                tracing::warn!(log = %path.display(), %problem, bytes = report.torn_bytes, "Event log: torn tail cut (a crash mid-append; never acknowledged).");
            } else {
                let aside = set_aside(&path, &bytes)?;
                tracing::warn!(log = %path.display(), %problem, kept = scan.last_seq, aside = %aside.display(), "Event log: a damaged or conflicting line; the whole log was set aside before the cut.");
                report.set_aside = Some(aside);
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        if scan.problem.is_some() {
            file.set_len(scan.good_len)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_err(&path, e))?;
        }
        if bytes.is_empty() {
            fsync_dir(dir)?;
        }
        let memory = Memory::new(recorded);
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            path: path.clone(),
            file,
            len: scan.good_len,
            recorded: memory.recorded.clone(),
            head: memory.head.clone(),
            stopped: None,
        };
        std::thread::Builder::new()
            .name("event-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| io_err(&path, e))?;
        Ok((FileLog { path, memory, tx }, report))
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Spine for FileLog {
    fn append(&self, events: Vec<CloudEvent>) -> Result<Vec<Arc<CloudEvent>>, SpineError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = mpsc::sync_channel(1);
        self.tx
            .send(Batch { events, reply })
            .map_err(|_| SpineError::Stopped("the writer thread is gone".into()))?;
        rx.recv()
            .map_err(|_| SpineError::Stopped("the writer thread is gone".into()))?
            .map_err(SpineError::Stopped)
    }

    fn memory(&self) -> &Memory {
        &self.memory
    }

    fn backend(&self) -> &'static str {
        "file"
    }
}

pub(crate) fn read(r: &RwLock<Recorded>) -> std::sync::RwLockReadGuard<'_, Recorded> {
    r.read().unwrap_or_else(|p| p.into_inner())
}

struct Writer {
    path: PathBuf,
    file: File,
    len: u64,
    recorded: Arc<RwLock<Recorded>>,
    head: watch::Sender<u64>,
    /// Why writes are refused (a failed write could not be undone).
    stopped: Option<String>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Batch>) {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while let Ok(more) = rx.try_recv() {
                group.push(more);
            }
            self.commit(group);
        }
    }

    /// Writes every new event of `group` with one sync, then answers each batch.
    fn commit(&mut self, group: Vec<Batch>) {
        if let Some(why) = &self.stopped {
            for b in group {
                let _ = b.reply.send(Err(why.clone()));
            }
            return;
        }
        let mut next = read(&self.recorded).events.len() as u64 + 1;
        // Number the events no batch of the group recorded before.
        let mut fresh: Vec<CloudEvent> = Vec::new();
        let mut fresh_ids: HashMap<String, u64> = HashMap::new();
        let mut answers: Vec<Vec<Answer>> = Vec::with_capacity(group.len());
        {
            let r = read(&self.recorded);
            for b in &group {
                let mut answer = Vec::with_capacity(b.events.len());
                for e in &b.events {
                    if let Some(stored) = r.get(&e.id) {
                        answer.push(Answer::Stored(stored));
                    } else if let Some(&seq) = fresh_ids.get(&e.id) {
                        answer.push(Answer::Fresh(seq));
                    } else {
                        let mut e = e.clone();
                        e.catalystseq = next;
                        fresh_ids.insert(e.id.clone(), next);
                        answer.push(Answer::Fresh(next));
                        fresh.push(e);
                        next += 1;
                    }
                }
                answers.push(answer);
            }
        }
        if !fresh.is_empty() {
            if let Err(why) = self.write(&fresh) {
                for b in group {
                    let _ = b.reply.send(Err(why.clone()));
                }
                return;
            }
            let mut w = self.recorded.write().unwrap_or_else(|p| p.into_inner());
            for e in fresh {
                w.push(e);
            }
            let head = w.events.len() as u64;
            drop(w);
            self.head.send_replace(head);
        }
        let r = read(&self.recorded);
        for (b, answer) in group.into_iter().zip(answers) {
            let out = answer
                .into_iter()
                .map(|a| match a {
                    Answer::Stored(e) => e,
                    Answer::Fresh(seq) => r.events[(seq - 1) as usize].clone(),
                })
                .collect();
            let _ = b.reply.send(Ok(out));
        }
    }

    /// Appends and syncs; on failure cuts the file back to its last good length (or, when even
    /// that fails, refuses every later write).
    fn write(&mut self, events: &[CloudEvent]) -> Result<(), String> {
        let bytes = codec::encode(events).map_err(|e| format!("cannot encode an event: {e}"))?;
        let result = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let why = format!("{}: {e}", self.path.display());
                tracing::error!(log = %self.path.display(), error = %e, "Appending to the event log failed; the append is undone.");
                if let Err(undo) = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_all())
                {
                    let stop = format!("{why}; undoing it failed too ({undo}): restart the server");
                    tracing::error!(log = %self.path.display(), error = %undo, "The event log cannot be cut back; it refuses writes until restarted.");
                    self.stopped = Some(stop.clone());
                    return Err(stop);
                }
                Err(why)
            }
        }
    }
}

enum Answer {
    Stored(Arc<CloudEvent>),
    Fresh(u64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventDraft;
    use serde_json::json;

    pub(crate) fn ev(id: &str) -> CloudEvent {
        EventDraft {
            id: id.into(),
            kind: "organization.created".into(),
            org: Some("acme".into()),
            env: None,
            subject: "acme".into(),
            time: chrono::Utc::now(),
            data: json!({"n": id}),
        }
        .into_event()
    }

    #[test]
    fn appends_in_order_once_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (log, report) = FileLog::open(dir.path()).unwrap();
        assert_eq!(report, OpenReport::default());
        let mut head = log.watch();
        let got = log.append(vec![ev("a"), ev("b")]).unwrap();
        assert_eq!(
            got.iter().map(|e| e.catalystseq).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(head.has_changed().unwrap());
        assert_eq!(*head.borrow_and_update(), 2);
        // The same ids again (an outbox replay), plus one new and a repeat inside the batch.
        let got = log.append(vec![ev("b"), ev("c"), ev("c")]).unwrap();
        assert_eq!(
            got.iter()
                .map(|e| (e.id.as_str(), e.catalystseq))
                .collect::<Vec<_>>(),
            [("b", 2), ("c", 3), ("c", 3)]
        );
        assert_eq!(log.head(), 3);
        assert!(log.contains("a") && !log.contains("z"));
        assert_eq!(log.read_after(1, 10).len(), 2);
        assert_eq!(log.read_after(3, 10).len(), 0);
        assert_eq!(log.read_after(99, 10).len(), 0);
        drop(log);
        let (log, report) = FileLog::open(dir.path()).unwrap();
        assert_eq!(report.events, 3);
        assert_eq!(
            log.read_after(0, 10)
                .iter()
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(log.append(vec![ev("a")]).unwrap()[0].catalystseq, 1);
        assert_eq!(log.head(), 3);
    }

    #[test]
    fn concurrent_appends_are_numbered_without_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = FileLog::open(dir.path()).unwrap();
        let log = Arc::new(log);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        log.append(vec![ev(&format!("{t}-{i}"))]).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let all = log.read_after(0, usize::MAX);
        assert_eq!(all.len(), 400);
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.catalystseq, i as u64 + 1);
        }
        drop(log);
        let (_, report) = FileLog::open(dir.path()).unwrap();
        assert_eq!(report.events, 400);
    }

    #[test]
    fn a_torn_tail_is_cut_and_a_conflict_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = FileLog::open(dir.path()).unwrap();
        log.append(vec![ev("a"), ev("b")]).unwrap();
        drop(log);
        let path = dir.path().join(LOG_FILE);
        let good = std::fs::read(&path).unwrap();
        // A crash mid-append.
        let mut torn = good.clone();
        torn.extend_from_slice(b"deadbeef {\"specversion\":\"1.0\",\"id\":\"c\"");
        std::fs::write(&path, &torn).unwrap();
        let (log, report) = FileLog::open(dir.path()).unwrap();
        assert_eq!((report.events, report.set_aside), (2, None));
        assert!(report.torn_bytes > 0);
        assert_eq!(std::fs::read(&path).unwrap(), good);
        assert_eq!(log.append(vec![ev("c")]).unwrap()[0].catalystseq, 3);
        drop(log);
        // A second writer's complete `seq 3` after ours: both kept aside, ours kept in place.
        let ours = std::fs::read(&path).unwrap();
        let mut theirs = ev("other");
        theirs.catalystseq = 3;
        let mut two = ours.clone();
        two.extend(codec::encode(&[theirs]).unwrap());
        std::fs::write(&path, &two).unwrap();
        let (log, report) = FileLog::open(dir.path()).unwrap();
        assert_eq!(report.events, 3);
        let aside = report.set_aside.expect("set aside");
        assert_eq!(std::fs::read(&aside).unwrap(), two, "nothing lost");
        assert_eq!(std::fs::read(&path).unwrap(), ours);
        assert_eq!(log.head(), 3);
    }
}
