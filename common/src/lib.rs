//! `bfp-common`: what the agent and the collector share.
//!
//! One job: define the behavioural fingerprint and everything that must mean
//! the same thing on the device and on the server — the feature schema and its
//! validation ([`fingerprint`]), the compact model format and its
//! allocation-free inference ([`model`]), log parsing ([`parse`]), session
//! reconstruction ([`session`]) and source windows ([`source`]) behind one
//! façade ([`analyze::Analyzer`]), and the agent-to-collector wire format.
//!
//! This crate never links tokio, axum, rusqlite or smartcore: the agent must
//! stay small, and the model must load without the training library.

pub mod analyze;
pub mod baseline;
pub mod campaign;
pub mod detect;
pub mod error;
pub mod explain;
pub mod features;
pub mod fingerprint;
pub mod model;
pub mod parse;
pub mod session;
pub mod source;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod wire;

pub use analyze::{Analyzer, AnalyzerConfig, LogFormat, Observation, ObservationKind, ParseStats, UtmpArch};
pub use error::Error;
pub use fingerprint::{Fingerprint, Protocol, FEATURE_COUNT, FEATURE_NAMES, SCHEMA_VERSION};
pub use model::{CompactModel, Verdict};
