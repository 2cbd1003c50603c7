//! The disk-full scenario's file system: a small tmpfs mounted on the data directory (needs
//! root or CAP_SYS_ADMIN), filled to the last byte with a filler file and freed again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A tmpfs mounted at `dir`; unmounted when dropped.
pub struct SmallDisk {
    dir: PathBuf,
    filler: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size_mb` MiB on `dir` (which must exist and be empty).
    pub fn mount(dir: &Path, size_mb: u64) -> Result<SmallDisk> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(dir)
            .output()
            .context("cannot run mount")?;
        if !out.status.success() {
            bail!(
                "cannot mount a tmpfs on {} (the disk-full scenario needs root or CAP_SYS_ADMIN): {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(SmallDisk {
            dir: dir.to_path_buf(),
            filler: dir.join("chaos-filler"),
        })
    }

    /// Writes the filler until the file system refuses (ENOSPC); the bytes written.
    pub fn fill(&self) -> Result<u64> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.filler)?;
        let mut written = 0u64;
        for chunk in [1 << 20, 64 << 10, 4 << 10, 512, 1] {
            let buf = vec![0u8; chunk];
            loop {
                match f.write(&buf) {
                    Ok(0) => break,
                    Ok(n) => written += n as u64,
                    Err(e) if e.raw_os_error() == Some(28) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(written)
    }

    /// Removes the filler: the space returns.
    pub fn free(&self) -> Result<()> {
        match std::fs::remove_file(&self.filler) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Copies the data directory (without the filler) to `to`, for inspection after a failure.
    pub fn keep_copy(&self, to: &Path) -> Result<()> {
        let _ = self.free();
        let status = Command::new("cp")
            .arg("-a")
            .arg(&self.dir)
            .arg(to)
            .status()?;
        if !status.success() {
            bail!("cp -a {} {} failed", self.dir.display(), to.display());
        }
        Ok(())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}
