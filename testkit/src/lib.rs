//! `bfp-testkit`: what the project's tests, benches and model card share.
//!
//! One job: find the shared data (the real logs and the original data set,
//! kept beside the repository, not in it) by one rule, and write the log
//! lines that several crates' tests feed their readers, and start throw-away
//! PostgreSQL clusters ([`pg::PgCluster`]) for the collector's second backend. It depends on no
//! crate of the project, so any of them can use it without a cycle.

pub mod lines;
pub mod pg;

use std::path::{Path, PathBuf};

pub use lines::{alice_history, sshd_session};

/// 2026-11-25 00:00 UTC: the real-log tests read year-less dates as the year
/// before it, so their counts do not move with the calendar.
pub const REFERENCE: i64 = 1_795_564_800;

/// The repository root (this crate's parent folder).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit/ has a parent").to_path_buf()
}

/// The shared data folder: `$BFP_SHARED_DATA` when set and not empty, else
/// the nearest `shared/data` holding `real/` beside the repository root or
/// beside one of its ancestors (CI clones beside `shared/`; worktrees may sit
/// deeper). `None` when there is none.
pub fn try_shared_data() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BFP_SHARED_DATA").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    repo_root().ancestors().skip(1).map(|a| a.join("shared/data")).find(|d| d.join("real").is_dir())
}

/// [`try_shared_data`], or a panic that says where it looked and how to set it.
pub fn shared_data() -> PathBuf {
    try_shared_data().unwrap_or_else(|| {
        panic!("no shared/data/real beside {} or its ancestors; set BFP_SHARED_DATA", repo_root().display())
    })
}

/// `shared/data/real`: the real logs written by others.
pub fn real_dir() -> PathBuf {
    shared_data().join("real")
}

/// The lines of `files` (paths under `real/`), the whole list `repeat` times:
/// bench inputs built from the real logs.
pub fn real_lines(files: &[&str], repeat: usize) -> Vec<String> {
    let mut one = Vec::new();
    for f in files {
        let path = real_dir().join(f);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        one.extend(text.lines().map(str::to_owned));
    }
    (0..repeat).flat_map(|_| one.iter().cloned()).collect()
}
