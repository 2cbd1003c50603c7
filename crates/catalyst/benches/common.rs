//! Shared helpers of the binary benchmarks; starting the binary is the tests' support code.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

#[path = "../tests/support/mod.rs"]
mod support;

#[allow(unused_imports)]
pub use support::{repo, standin_tofu, Catalyst};

/// A bench scratch directory on the real disk (not tmpfs).
pub fn scratch() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
    std::fs::create_dir_all(&root).unwrap();
    tempfile::tempdir_in(root).unwrap()
}

/// Median of a few durations.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Environment for a quiet server.
pub fn quiet() -> (&'static str, String) {
    ("CATALYST_LOG", "warn".to_owned())
}
