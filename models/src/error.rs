//! The one error type of `bfp-models`.

use thiserror::Error;

/// Everything that can go wrong while building data, training, evaluating or
/// exporting.
#[derive(Debug, Error)]
pub enum Error {
    /// smartcore refused to fit or predict.
    #[error("smartcore: {0}")]
    Learner(String),
    /// The trained model could not be read back or exported.
    #[error("export: {0}")]
    Export(String),
    /// A shared-type error (fingerprint validation, model container).
    #[error(transparent)]
    Common(#[from] bfp_common::Error),
    /// A seed CSV could not be read.
    #[error("seed data {path}: {detail}")]
    Seed {
        /// The file being read.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Result alias for `bfp-models`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
