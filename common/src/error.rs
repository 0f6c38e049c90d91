//! The one error type of `bfp-common`.

use thiserror::Error;

/// Everything that can go wrong in the shared code. Each variant carries enough
/// detail for an operator (or an API client) to fix the input.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A fingerprint field is missing.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A fingerprint field has the wrong JSON/CSV type or cannot be parsed.
    #[error("field `{field}`: {detail}")]
    InvalidField {
        /// The field's public name.
        field: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// The CSV header is not the one the original system defined.
    #[error("CSV header must be `{expected}`, got `{got}`")]
    CsvHeader {
        /// The header the contract fixes.
        expected: &'static str,
        /// The header that was sent.
        got: String,
    },
    /// A CSV row could not be read (wrong number of columns, bad UTF-8, ...).
    #[error("CSV row {row}: {detail}")]
    CsvRow {
        /// 1-based data row number (the header is row 0).
        row: u64,
        /// What was wrong with it.
        detail: String,
    },
    /// A model artifact could not be decoded or does not fit this build.
    #[error("model artifact: {0}")]
    Model(String),
    /// An agent batch could not be encoded or decoded.
    #[error("wire format: {0}")]
    Wire(String),
}

/// Result alias for `bfp-common`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
