//! `bfp-detect`: judges what a device's logs show.
//!
//! One job: from the observations and login attempts `bfp-logs` reads, decide
//! what is suspicious and say why. [`engine::Engine`] is the only way from
//! lines to judged records, used alike by the agent, by training
//! (`bfp-models`), by the real-log tests and by the benchmarks, so what is
//! trained is what ships. Inside it:
//!
//! - [`baseline`]: per-user and per-device baselines (what is new for this
//!   user: a network, an hour, a command), learnt from sessions judged Normal;
//! - [`campaign`]: slow and distributed brute force, which per-address
//!   counters miss;
//! - [`features`]: the agent schema's feature vector (the one place it is
//!   built; names and order in `bfp_common::schema`);
//! - [`detector::Detector`]: the two above joined to one observation at a
//!   time (assess, then judge after the model scored);
//! - [`privilege`]: privilege escalation in a session's commands (sudo
//!   refusals, root shells, account changes), evidence without history;
//! - [`reasons`]: a verdict on an agent-schema vector in words.
//!
//! The scorer is a seam ([`engine::Score`]): the agent plugs in its compact
//! model, training an oracle that knows the simulated truth.

pub mod baseline;
pub mod campaign;
pub mod detector;
pub mod engine;
pub mod error;
pub mod features;
pub mod privilege;
pub mod reasons;

pub use detector::{DetectConfig, Detector};
pub use engine::{Engine, EngineConfig, Judged, Score, Scored};
pub use error::{Error, Result};
