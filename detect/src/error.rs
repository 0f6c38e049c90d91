//! The one error type of `bfp-detect`.

use thiserror::Error;

/// What can go wrong in detection: only its persisted state can be wrong.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A baseline state file could not be written or read back.
    #[error("baseline state: {0}")]
    Baseline(String),
}

/// Result alias for `bfp-detect`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
