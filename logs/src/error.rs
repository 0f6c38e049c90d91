//! The one error type of `bfp-logs`.

use thiserror::Error;

/// What can go wrong reading a log. The analyzer counts these per line and
/// goes on; it never stops on one.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A setting of the analyzer is not one it knows (a format name, a line
    /// of a Tor exit list).
    #[error("{field}: {detail}")]
    InvalidSetting {
        /// The setting's name.
        field: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// A log record that cannot be read at all (not JSON, a truncated wtmp
    /// record, ...).
    #[error("{format} record: {detail}")]
    LogRecord {
        /// The format (`cowrie`, `utmp`, ...).
        format: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// Result alias for `bfp-logs`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
