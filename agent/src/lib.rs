//! `bfp-agent`: the program on the IoT device.
//!
//! One job: turn the device's own authentication logs into scored
//! behavioural fingerprints — follow the configured logs (files across
//! rotation, the journal) without re-reading or skipping a line across
//! restarts, let `bfp_logs::analyze` rebuild sessions and per-source
//! windows, score each fingerprint with the compact model built into the
//! binary, and write the results (with their reasons) to a sink. It links no
//! async runtime: one thread polls, which keeps it small for ARM devices.

pub mod check;
pub mod config;
pub mod error;
pub mod forward;
pub mod learn;
pub mod pipeline;
pub mod report;
pub mod respond;
pub mod run;
pub mod scan;
pub mod scoring;
pub mod sink;
pub mod source;
pub mod spool;
pub mod state;

pub use error::{Error, Result};

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh empty directory under the target dir's tmp (no tempfile crate
    /// needed for a handful of unit tests).
    pub fn tempdir(name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "bfp-agent-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
