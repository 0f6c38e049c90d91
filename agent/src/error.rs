//! The one error type of `bfp-agent`.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can stop the agent, each with what an operator needs to
/// fix it (the file, the key, the reason).
#[derive(Debug, Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The configuration file (or a flag) is invalid.
    #[error("config {path}: {detail}")]
    Config {
        /// The config file (or `<flags>`).
        path: PathBuf,
        /// What is wrong, naming the key.
        detail: String,
    },
    /// The model artifact (embedded or from `--model`) cannot be used.
    #[error("model {path}: {source}")]
    Model {
        /// Where the model came from (`<embedded>` for the built-in one).
        path: PathBuf,
        /// Why it was refused.
        source: bfp_common::Error,
    },
    /// The checkpoint in the state directory is unreadable.
    #[error("state {path}: {detail}")]
    State {
        /// The checkpoint file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// `journalctl` could not be started or stopped unexpectedly.
    #[error("journald source: {0}")]
    Journal(String),
    /// The spool (store-and-forward to the collector) failed.
    #[error("spool: {0}")]
    Spool(String),
    /// Forwarding to the collector is misconfigured (URL, token, CA file).
    #[error("collector: {0}")]
    Forward(String),
    /// The firewall response cannot work as configured (no firewall tool,
    /// no permission to change it, a bad `[respond]` value).
    #[error("respond: {0}")]
    Respond(String),
    /// An input file is compressed (rotated logs: `auth.log.2.gz`); the
    /// agent reads plain text and says so rather than miscount bytes.
    #[error("{path}: {format}-compressed; decompress it first, e.g. `{tool} {path} | bfp-agent scan -`")]
    Compressed {
        /// The file.
        path: PathBuf,
        /// gzip, bzip2, xz or zstd.
        format: &'static str,
        /// The command that decompresses it to standard output.
        tool: &'static str,
    },
    /// The output sink failed.
    #[error("output {path}: {source}")]
    Sink {
        /// The output file (`-` for stdout).
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// Result alias for `bfp-agent`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
