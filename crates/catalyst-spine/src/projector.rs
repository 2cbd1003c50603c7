//! The in-process projector: one [`Projection`] kept level with a [`Spine`]. Every read first
//! applies what the log has that the projection has not ([`Projector::read`]), so a caller that
//! wrote and then reads sees its own write, and every reader of one process sees one state.

use std::sync::{Arc, RwLock};

use crate::log::Spine;
use crate::projection::Projection;

/// Applies at most this many events per catch-up step (readers wait no longer than that).
const STEP: usize = 4096;

/// A projection that follows a spine.
pub struct Projector {
    spine: Arc<dyn Spine>,
    state: RwLock<Projection>,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("backend", &self.spine.backend())
            .finish()
    }
}

impl Projector {
    /// A projector over `spine`, level with it (it replays the whole log).
    pub fn new(spine: Arc<dyn Spine>) -> Projector {
        let p = Projector {
            spine,
            state: RwLock::new(Projection::new()),
        };
        p.catch_up();
        p
    }

    /// The spine it follows.
    pub fn spine(&self) -> &Arc<dyn Spine> {
        &self.spine
    }

    /// Applies every event the spine has recorded since the last call.
    pub fn catch_up(&self) {
        loop {
            let seq = self.state.read().unwrap_or_else(|p| p.into_inner()).seq();
            if seq >= self.spine.head() {
                return;
            }
            let mut w = self.state.write().unwrap_or_else(|p| p.into_inner());
            let events = self.spine.read_after(w.seq(), STEP);
            if events.is_empty() {
                return;
            }
            for e in &events {
                w.apply(e);
            }
        }
    }

    /// Reads the projection, level with the spine.
    pub fn read<T>(&self, f: impl FnOnce(&Projection) -> T) -> T {
        self.catch_up();
        f(&self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// How many events the projection is behind the head of the spine.
    pub fn lag(&self) -> u64 {
        let seq = self.state.read().unwrap_or_else(|p| p.into_inner()).seq();
        self.spine.head().saturating_sub(seq)
    }
}
