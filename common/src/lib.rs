//! `bfp-common`: the contract between the agent and the collector.
//!
//! One job: define what must mean the same thing on the device and on the
//! server, and nothing else:
//!
//! - [`fingerprint`]: the behavioural fingerprint and its validation (the
//!   original system's JSON and CSV forms, so every entry point validates alike);
//! - [`schema`]: the feature schemas (which features, in which order, under
//!   which names) of the collector's model and of the agents' model;
//! - [`model`]: the compact model format and its allocation-free inference;
//!   [`artifacts`]: the two trained models the programs embed;
//! - [`explain`]: a verdict's reasons in an operator's words (seed features);
//! - [`wire`]: the agent-to-collector batch format;
//! - [`time`]: the one text form of a time both sides print.
//!
//! Reading logs is `bfp-logs`' job and judging them `bfp-detect`'s; the
//! collector depends on this crate only. It never links tokio, axum,
//! rusqlite or smartcore: the agent must stay small, and a model must load
//! without the training library.

pub mod artifacts;
pub mod error;
pub mod explain;
pub mod fingerprint;
pub mod model;
pub mod schema;
pub mod time;
pub mod wire;

pub use error::Error;
pub use fingerprint::{Fingerprint, Protocol, UNKNOWN};
pub use model::{CompactModel, Prediction, Verdict};
