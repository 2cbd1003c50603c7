//! Progress bars for long work — the blobs of `blueprint push|pull|mirror`, the phases of
//! `deployment watch` — drawn on stderr, and only when both stdout and stderr are terminals and
//! `--quiet` was not given: piped or redirected output never carries a bar or its escape codes.
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use catalyst_oci::store::Repo;
use catalyst_oci::{Digest, Result as OciResult};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// A bar, or nothing (not a terminal, or `--quiet`); and the bytes counted so far.
pub struct Progress(Option<ProgressBar>, AtomicU64);

/// Whether a bar would be seen.
pub fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

impl Progress {
    /// No bar.
    pub fn none() -> Progress {
        Progress(None, AtomicU64::new(0))
    }

    /// A spinner counting blobs and bytes sent to a destination.
    pub fn blobs(quiet: bool, what: &str) -> Progress {
        if !wanted(quiet) {
            return Progress::none();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {pos} blobs · {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(what.to_owned());
        bar.set_message("0 B");
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress(Some(bar), AtomicU64::new(0))
    }

    /// A bar over `phases` steps, the current one named in its message.
    pub fn phases(quiet: bool, phases: u64) -> Progress {
        if !wanted(quiet) {
            return Progress::none();
        }
        let bar = ProgressBar::new(phases);
        bar.set_style(
            ProgressStyle::with_template("{bar:24} {pos}/{len} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress(Some(bar), AtomicU64::new(0))
    }

    /// Moves the bar to step `pos`, named `phase`.
    pub fn phase(&self, pos: u64, phase: &str) {
        if let Some(bar) = &self.0 {
            bar.set_position(pos);
            bar.set_message(phase.to_owned());
        }
    }

    /// Runs `f` (which prints) with the bar out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.0 {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }

    fn blob_sent(&self, bytes: u64) {
        let total = self.1.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(bar) = &self.0 {
            bar.inc(1);
            bar.set_message(format!("{}", HumanBytes(total)));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A destination repository that moves `progress` for every blob written or mounted into it.
pub struct Tracked<'a> {
    inner: &'a dyn Repo,
    progress: &'a Progress,
}

impl<'a> Tracked<'a> {
    /// `inner`, reporting to `progress`.
    pub fn new(inner: &'a dyn Repo, progress: &'a Progress) -> Tracked<'a> {
        Tracked { inner, progress }
    }
}

#[async_trait]
impl Repo for Tracked<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }

    fn registry_location(&self) -> Option<(String, String)> {
        self.inner.registry_location()
    }

    async fn resolve_tag(&self, tag: &str) -> OciResult<Option<Digest>> {
        self.inner.resolve_tag(tag).await
    }

    async fn manifest(&self, digest: &Digest) -> OciResult<Option<Vec<u8>>> {
        self.inner.manifest(digest).await
    }

    async fn blob(&self, digest: &Digest) -> OciResult<Vec<u8>> {
        self.inner.blob(digest).await
    }

    async fn has_blob(&self, digest: &Digest) -> OciResult<bool> {
        self.inner.has_blob(digest).await
    }

    async fn put_blob(&self, digest: &Digest, bytes: Vec<u8>) -> OciResult<()> {
        let n = bytes.len() as u64;
        self.inner.put_blob(digest, bytes).await?;
        self.progress.blob_sent(n);
        Ok(())
    }

    async fn mount_blob(&self, digest: &Digest, from: &str) -> OciResult<bool> {
        let mounted = self.inner.mount_blob(digest, from).await?;
        if mounted {
            self.progress.blob_sent(0);
        }
        Ok(mounted)
    }

    async fn put_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> OciResult<Digest> {
        self.inner.put_manifest(media_type, bytes, tag).await
    }

    async fn tags(&self) -> OciResult<Vec<String>> {
        self.inner.tags().await
    }
}
