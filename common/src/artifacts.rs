//! The trained models the programs embed, built by `bfp-models train` into
//! `models/artifacts/` (each with its card, `models/MODEL_CARD.md`). Named
//! here once, so every crate and test means the same bytes.

/// The collector's model ([`crate::schema::PREDICT_SCHEMA`]): scores
/// `/api/predict` bodies and CSV rows.
pub const EMBEDDED_PREDICT_MODEL: &[u8] = include_bytes!("../../models/artifacts/bfp-model.postcard");

/// The agents' model ([`crate::schema::AGENT_SCHEMA`]): embedded in the
/// agent and served to agents by the collector.
pub const EMBEDDED_AGENT_MODEL: &[u8] = include_bytes!("../../models/artifacts/bfp-edge-model.postcard");
