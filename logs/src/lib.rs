//! `bfp-logs`: reads a device's auth and session logs.
//!
//! One job: turn log lines (syslog from sshd, dropbear, su, sudo, login, PAM,
//! FTP servers and LuCI; journald JSON; Cowrie JSON; wtmp/btmp records) into
//! what happened on the device, judging nothing. The data flows through it
//! in one direction:
//!
//! - [`parse`]: one pure, borrowing parser per program (no allocation on the
//!   common path), turning a line into a [`parse::Event`];
//! - [`session`]: login sessions rebuilt from events (open, commands, close);
//! - [`source`]: per-address and per-device windows, for sources that never
//!   log in;
//! - [`analyze::Analyzer`]: the one stateful façade over the three, which
//!   hands out finished [`Observation`]s (each with its fingerprint) and the
//!   [`AuthAttempt`]s the campaign detectors of `bfp-detect` count.
//!
//! Unknown lines are counted per program in [`ParseStats`], never guessed.

pub mod analyze;
pub mod attempt;
pub mod error;
pub mod parse;
pub mod session;
pub mod source;
pub mod zone;

pub use analyze::{Analyzer, AnalyzerConfig, LogFormat, Observation, ParseStats, UtmpArch};
pub use attempt::AuthAttempt;
pub use error::Error;
pub use zone::LocalZone;
