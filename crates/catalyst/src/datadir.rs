//! One server per data directory.
//!
//! `catalyst serve` takes an exclusive `flock` on `<data-dir>/catalyst.lock` before it reads,
//! repairs or writes anything there, and holds it until the process ends (the kernel drops it
//! on exit, `kill -9` included, so there is never a stale lock to clean up). A second server
//! finds the lock taken, reads who holds it from the file and stops with that in the error —
//! without writing a byte: it opens the file without truncating it and never writes unless it
//! holds the lock.
//!
//! The holder keeps `key=value` lines in the file (`pid`, `started`, then `listen` once the
//! socket is bound), only for the error message of the next server and for operators; the
//! lock, not the content, is what counts.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "catalyst.lock";

/// The file holding the data directory's server identity ([`DataDirLock::replica_id`]).
pub const REPLICA_ID_FILE: &str = "replica-id";

fn is_replica_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why the data directory could not be had.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock.
    InUse {
        /// The data directory.
        dir: PathBuf,
        /// What the holder wrote about itself (`pid=…`, `listen=…`), when readable.
        holder: Holder,
    },
    /// The lock file could not be opened or locked.
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// What the lock holder says about itself.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its process id.
    pub pid: Option<u32>,
    /// Where it listens, once bound.
    pub listen: Option<String>,
    /// When it took the lock (RFC 3339).
    pub started: Option<String>,
}

impl Holder {
    fn parse(text: &str) -> Holder {
        let mut h = Holder::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim();
            match k.trim() {
                "pid" => h.pid = v.parse().ok(),
                "listen" if !v.is_empty() => h.listen = Some(v.to_string()),
                "started" if !v.is_empty() => h.started = Some(v.to_string()),
                _ => {}
            }
        }
        h
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if let Some(pid) = self.pid {
            out.push_str(&format!("pid={pid}\n"));
        }
        if let Some(s) = &self.started {
            out.push_str(&format!("started={s}\n"));
        }
        if let Some(l) = &self.listen {
            out.push_str(&format!("listen={l}\n"));
        }
        out
    }
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::InUse { dir, holder } => {
                write!(
                    f,
                    "the data directory {} is in use by another Catalyst server",
                    dir.display()
                )?;
                let mut about = Vec::new();
                if let Some(pid) = holder.pid {
                    about.push(format!("pid {pid}"));
                }
                if let Some(l) = &holder.listen {
                    about.push(format!("listening on {l}"));
                }
                if let Some(s) = &holder.started {
                    about.push(format!("since {s}"));
                }
                if !about.is_empty() {
                    write!(f, " ({})", about.join(", "))?;
                }
                write!(
                    f,
                    "; nothing was changed. Stop that server first, or give this one another --data-dir"
                )
            }
            LockError::Io { path, source } => {
                write!(f, "cannot lock {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for LockError {}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
    holder: Holder,
}

impl DataDirLock {
    /// Takes the lock on `dir` (which must exist) without waiting, then records this process
    /// in the file.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // No truncate: a process that does not get the lock must not change the file.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::InUse {
                    dir: dir.to_path_buf(),
                    holder: Holder::parse(&text),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let mut lock = DataDirLock {
            file,
            path: path.clone(),
            holder: Holder {
                pid: Some(std::process::id()),
                listen: None,
                started: Some(
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ),
            },
        };
        lock.write_holder().map_err(io_err)?;
        Ok(lock)
    }

    /// Adds the bound listen address to what the file says.
    pub fn record_listen(&mut self, listen: impl fmt::Display) -> io::Result<()> {
        self.holder.listen = Some(listen.to_string());
        self.write_holder()
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This data directory's server identity (`<data-dir>/replica-id`, 16 hex digits, made on
    /// first use): the owner of its deployment leases on a shared store, the same across
    /// restarts, so a restarted server takes back (and fails) what it was running. Only the
    /// lock holder asks, so two processes never race to make it.
    pub fn replica_id(&self) -> io::Result<String> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let path = dir.join(REPLICA_ID_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) if is_replica_id(text.trim()) => return Ok(text.trim().to_owned()),
            Ok(_) | Err(_) if path.exists() => {
                tracing::warn!(file = %path.display(), "The replica id file is unreadable or malformed; making a new one.");
            }
            _ => {}
        }
        let id = format!("{:016x}", rand::random::<u64>());
        let tmp = dir.join(format!("{REPLICA_ID_FILE}.tmp"));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(format!("{id}\n").as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        File::open(dir)?.sync_all()?;
        Ok(id)
    }

    fn write_holder(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(self.holder.render().as_bytes())?;
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out: Vec<_> = walkdir::WalkDir::new(dir)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| (e.path().to_path_buf(), std::fs::read(e.path()).unwrap()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_second_lock_fails_names_the_holder_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = DataDirLock::acquire(dir.path()).unwrap();
        first.record_listen("127.0.0.1:8080").unwrap();
        let before = tree(dir.path());
        // flock locks belong to the open file description, so a second open in the same
        // process contends exactly as another process would.
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("is in use by another Catalyst server"),
            "{text}"
        );
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("listening on 127.0.0.1:8080"), "{text}");
        assert_eq!(tree(dir.path()), before, "the loser changed nothing");
        drop(first);
        let again = DataDirLock::acquire(dir.path()).unwrap();
        let content = std::fs::read_to_string(again.path()).unwrap();
        assert!(content.starts_with(&format!("pid={}\n", std::process::id())));
        assert!(
            !content.contains("listen="),
            "a new holder rewrites the file"
        );
    }

    #[test]
    fn holder_parsing_tolerates_anything() {
        assert_eq!(Holder::parse(""), Holder::default());
        assert_eq!(Holder::parse("garbage\n=\npid=x"), Holder::default());
        let h = Holder::parse("pid=42\nlisten=0.0.0.0:1\nstarted=t\n");
        assert_eq!(h.pid, Some(42));
        assert_eq!(Holder::parse(&h.render()), h);
        let e = LockError::InUse {
            dir: "/d".into(),
            holder: Holder::default(),
        };
        assert!(e.to_string().starts_with(
            "the data directory /d is in use by another Catalyst server; nothing was changed"
        ));
    }
}
