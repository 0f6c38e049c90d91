//! The model the agent scores with: the feature-schema-3 forest built into
//! the binary (`models/artifacts/bfp-edge-model.postcard`: the session's
//! fingerprint, its novelty against the user's baseline, what the device
//! holds against its address, and the privilege escalation in its
//! commands), or an artifact from a file.
//!
//! A schema-2 artifact (an agents' model from before the escalation
//! features) still scores: schema 3 extends schema 2 at its end, so it
//! scores the first 25 features of the vector. A schema-1 artifact (the
//! collector's `/api/predict` model, or a site model retrained from analyst
//! labels) is a documented fallback: it loads, with a note, and scores the
//! seven seed features only; the detectors' rules still carry novelty and
//! campaigns. Any other schema is refused.

use std::path::{Path, PathBuf};

use bfp_common::artifacts::EMBEDDED_AGENT_MODEL;
use bfp_common::schema::{AGENT_SCHEMA, AGENT_SCHEMA_V2, PREDICT_SCHEMA};
use bfp_common::{CompactModel, Fingerprint};
use bfp_detect::detector::{Assessment, SessionRules};
use bfp_detect::engine::Scored;

use crate::error::{Error, Result};

/// How many reasons each verdict carries.
pub const MAX_REASONS: usize = 3;

/// A loaded, checked model.
#[derive(Debug, Clone)]
pub struct Scorer {
    model: CompactModel,
}

impl Scorer {
    /// The embedded model, or the artifact at `path` when given.
    pub fn load(path: Option<&Path>) -> Result<Scorer> {
        match path {
            None => Scorer::from_bytes(EMBEDDED_AGENT_MODEL, Path::new("<embedded>")),
            Some(path) => {
                let bytes = std::fs::read(path).map_err(Error::io(path))?;
                Scorer::from_bytes(&bytes, path)
            }
        }
    }

    /// Checks and loads artifact bytes; `origin` names them in errors.
    /// Schema 3 is the agent's; schema 2 scores the prefix of its vector,
    /// schema 1 loads as a fallback (see the module documentation).
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Scorer> {
        let model =
            CompactModel::from_bytes(bytes).map_err(|source| Error::Model { path: PathBuf::from(origin), source })?;
        // from_bytes knows schemas 1 to 3 today; a later schema needs a
        // later agent, so say so rather than score it wrongly.
        if ![AGENT_SCHEMA, AGENT_SCHEMA_V2, PREDICT_SCHEMA].contains(&model.schema_version) {
            return Err(Error::Model {
                path: PathBuf::from(origin),
                source: bfp_common::Error::Model(format!(
                    "feature schema {} is not one the agent scores (3 or 2, or 1 as a fallback)",
                    model.schema_version
                )),
            });
        }
        Ok(Scorer { model })
    }

    /// The feature schema of the loaded model (3 or 2, or 1 for the fallback).
    pub fn schema(&self) -> u16 {
        self.model.schema_version
    }

    /// The session rules that go on top of this model: only the
    /// account-churn rule for an agents' model (it sees the rest as
    /// features), all of them for a schema-1 model (see docs/detection.md).
    pub fn session_rules(&self) -> SessionRules {
        if self.model.schema_version == PREDICT_SCHEMA {
            SessionRules::All
        } else {
            SessionRules::AccountChurn
        }
    }

    /// The model's version string.
    pub fn version(&self) -> &str {
        &self.model.model_version
    }

    /// Scores one observation: its fingerprint and the detectors'
    /// assessment of it ([`bfp_detect::detector::Detector::assess`]), and
    /// explains the verdict.
    pub fn score(&self, fp: &Fingerprint, assessment: &Assessment) -> Scored {
        if self.model.schema_version != PREDICT_SCHEMA {
            // The calibrated probability decides (see `score_calibrated`). A
            // schema-2 model scores the schema-2 prefix of the vector.
            let verdict = self.model.score_calibrated(&assessment.features[..self.model.feature_count()]);
            let reasons = bfp_detect::reasons::reasons(
                fp,
                assessment.novelty.as_ref(),
                &assessment.context,
                &assessment.escalation,
                assessment.window,
                &verdict,
                MAX_REASONS,
            );
            Scored { verdict, reasons }
        } else {
            let verdict = self.model.score_calibrated(&fp.features());
            Scored { verdict, reasons: bfp_common::explain::reasons(fp, &verdict, MAX_REASONS) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assessment(fp: &Fingerprint) -> Assessment {
        let context = bfp_detect::features::SourceContext::default();
        let escalation = bfp_detect::privilege::Escalation::default();
        let features = bfp_detect::features::vector(fp, None, &context, &escalation);
        Assessment { novelty: None, context, escalation, features, window: false, learning: false, newcomer: false }
    }

    /// The original README's `/api/predict` example, as a fingerprint.
    fn readme_example() -> Fingerprint {
        Fingerprint {
            login_hour: 3,
            session_duration_min: 5.0,
            commands: 3,
            failed_logins: 4,
            protocol: bfp_common::Protocol::Tor,
            typing_speed_wpm: Some(120.0),
            risky_commands: Some(0),
        }
    }

    #[test]
    fn the_embedded_model_is_schema_three_and_scores() {
        let scorer = Scorer::load(None).unwrap();
        assert!(!scorer.version().is_empty());
        assert_eq!(scorer.schema(), AGENT_SCHEMA);
        let fp = readme_example();
        let scored = scorer.score(&fp, &assessment(&fp));
        assert!((0.5..=1.0).contains(&scored.verdict.confidence));
        assert!(!scored.reasons.is_empty());
    }

    #[test]
    fn a_schema_two_artifact_still_scores_the_schema_two_prefix_of_the_vector() {
        // The agents' model as committed before the escalation features (bfp-edge-forest-2.1.0).
        let path =
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/testdata/bfp-edge-model-schema2.postcard"));
        let scorer = Scorer::load(Some(path)).unwrap();
        assert_eq!((scorer.schema(), scorer.version()), (AGENT_SCHEMA_V2, "bfp-edge-forest-2.1.0"));
        assert_eq!(scorer.session_rules(), SessionRules::AccountChurn);
        let fp = readme_example();
        let a = assessment(&fp);
        let scored = scorer.score(&fp, &a);
        assert_eq!(scored.verdict.contributions().len(), bfp_common::schema::AGENT_V2_FEATURE_COUNT);
        let model = CompactModel::from_bytes(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(scored.verdict, model.score_calibrated(&a.features[..bfp_common::schema::AGENT_V2_FEATURE_COUNT]));
    }

    #[test]
    fn a_schema_one_model_is_the_documented_fallback_and_scores_the_seed_features() {
        let dir = crate::testutil::tempdir("model1");
        let path = dir.join("schema1.postcard");
        std::fs::write(&path, bfp_common::artifacts::EMBEDDED_PREDICT_MODEL).unwrap();
        let scorer = Scorer::load(Some(&path)).unwrap();
        assert_eq!(scorer.schema(), 1);
        let fp = Fingerprint {
            login_hour: 14,
            session_duration_min: 3.0,
            commands: 0,
            failed_logins: 8,
            protocol: bfp_common::Protocol::Tor,
            typing_speed_wpm: Some(150.0),
            risky_commands: Some(0),
        };
        let scored = scorer.score(&fp, &assessment(&fp));
        assert_eq!(scored.verdict.contributions().len(), bfp_common::schema::PREDICT_FEATURE_COUNT);
    }

    #[test]
    fn a_bad_model_file_is_a_clear_error() {
        let dir = crate::testutil::tempdir("model");
        let path = dir.join("m.postcard");
        std::fs::write(&path, b"not a model").unwrap();
        let err = Scorer::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("m.postcard") && err.contains("bad magic"), "{err}");
        assert!(Scorer::load(Some(&dir.join("missing"))).is_err());
    }
}
