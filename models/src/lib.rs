//! `bfp-models`: builds the labelled data, trains with smartcore, evaluates, and
//! exports the compact model the agent and the collector embed.
//!
//! One job: produce `models/artifacts/bfp-model.postcard` and its model card
//! from a documented scenario simulator, reproducibly. The pipeline is
//! [`sim`] (labelled fingerprints) → [`train`] (smartcore random forest) →
//! [`export`] (common's [`CompactModel`]) → [`eval`] (held-out populations,
//! against the original approach and a fail2ban-style rule) → [`card`].
//! `bfp-models train` runs it all, and also builds the agent's schema-2
//! model: [`timeline`] (device timelines rendered as syslog, read through
//! common's analyzer and detectors) → [`edge`] (training, export to
//! `models/artifacts/bfp-edge-model.postcard`, comparison, card section).

pub mod calibrate;
pub mod card;
pub mod edge;
pub mod error;
pub mod eval;
pub mod export;
pub mod feedback;
pub mod real;
pub mod seed;
pub mod sim;
pub mod timeline;
pub mod train;

use bfp_common::artifacts::EMBEDDED_PREDICT_MODEL;
use bfp_common::schema::PREDICT_FEATURE_COUNT;
use bfp_common::CompactModel;

pub use error::{Error, Result};
use sim::{Sample, SimConfig};
use train::{Forest, TrainConfig};

/// Version of the trained model (not of the container or the schema).
/// Bump when the simulator, the features or the training settings change.
pub const MODEL_VERSION: &str = "bfp-sim-forest-1.2.0";

/// The committed predict-schema artifact, decoded and checked.
pub fn embedded() -> Result<CompactModel> {
    Ok(CompactModel::from_bytes(EMBEDDED_PREDICT_MODEL)?)
}

/// Training populations (per scenario, the last before the held-out ones)
/// that calibrate the model's confidence.
pub const VALIDATION_POPULATIONS: u32 = 2;

/// Feature rows and labels of samples.
pub fn features(samples: &[Sample]) -> (Vec<[f32; PREDICT_FEATURE_COUNT]>, Vec<bool>) {
    samples.iter().map(|s| (s.fingerprint.features(), s.suspicious)).unzip()
}

/// Everything one training run produces.
pub struct Built {
    /// Training populations.
    pub train: Vec<Sample>,
    /// Held-out populations.
    pub eval: Vec<Sample>,
    /// The smartcore forest.
    pub forest: Forest,
    /// Its compact export.
    pub model: CompactModel,
    /// Analyst-labelled rows added to training (0 for the committed model).
    pub extra: usize,
}

/// Simulates, splits by population, trains and exports. Deterministic.
pub fn build(sim_cfg: &SimConfig, train_cfg: &TrainConfig) -> Result<Built> {
    build_with(sim_cfg, train_cfg, &[])
}

/// As [`build`], with analyst-labelled rows added to training only. The
/// model version then says so (`+feedback.N`).
pub fn build_with(sim_cfg: &SimConfig, train_cfg: &TrainConfig, extra: &[feedback::Labelled]) -> Result<Built> {
    let all = sim::simulate(sim_cfg);
    let (train_set, eval_set) = sim::split(&all, sim_cfg);
    let (mut x, mut y) = features(&train_set);
    x.extend(extra.iter().map(|l| l.fingerprint.features()));
    y.extend(extra.iter().map(|l| l.suspicious));
    let forest = train::fit(&x, &y, train_cfg)?;
    let version =
        if extra.is_empty() { MODEL_VERSION.to_string() } else { format!("{MODEL_VERSION}+feedback.{}", extra.len()) };
    let mut model = export::export(&forest, &version, &x, &y)?;
    // Calibrated on the last training populations by a sibling forest
    // trained without them (see `calibrate`); the held-out ones stay unseen.
    let first_validation = sim_cfg.populations - sim_cfg.holdout - VALIDATION_POPULATIONS;
    let (fit_set, val_set): (Vec<Sample>, Vec<Sample>) =
        train_set.iter().cloned().partition(|s| s.population < first_validation);
    let (mut fx, mut fy) = features(&fit_set);
    fx.extend(extra.iter().map(|l| l.fingerprint.features()));
    fy.extend(extra.iter().map(|l| l.suspicious));
    let (vx, vy) = features(&val_set);
    model.calibration = Some(calibrate::fit_on_sibling(&fx, &fy, &vx, &vy, train_cfg)?);
    Ok(Built { train: train_set, eval: eval_set, forest, model, extra: extra.len() })
}
