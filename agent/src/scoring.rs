//! The model the agent scores with: the compact forest built into the binary
//! (`models/artifacts/bfp-model.postcard`), or a newer artifact from a file.

use std::path::{Path, PathBuf};

use bfp_common::{CompactModel, Fingerprint, Verdict};

use crate::error::{Error, Result};

/// The artifact built into the binary (a few tens of KB).
pub static EMBEDDED_MODEL: &[u8] = include_bytes!("../../models/artifacts/bfp-model.postcard");

/// How many reasons each verdict carries.
pub const MAX_REASONS: usize = 3;

/// A loaded, checked model.
#[derive(Debug, Clone)]
pub struct Scorer {
    model: CompactModel,
}

/// A verdict with its reasons in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The model's verdict.
    pub verdict: Verdict,
    /// Why, strongest first (see `bfp_common::explain`).
    pub reasons: Vec<String>,
}

impl Scorer {
    /// The embedded model, or the artifact at `path` when given.
    pub fn load(path: Option<&Path>) -> Result<Scorer> {
        match path {
            None => Scorer::from_bytes(EMBEDDED_MODEL, Path::new("<embedded>")),
            Some(path) => {
                let bytes = std::fs::read(path).map_err(Error::io(path))?;
                Scorer::from_bytes(&bytes, path)
            }
        }
    }

    /// Checks and loads artifact bytes; `origin` names them in errors.
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Scorer> {
        let model = CompactModel::from_bytes_of_schema(bytes, bfp_common::SCHEMA_VERSION, "the agent")
            .map_err(|source| Error::Model { path: PathBuf::from(origin), source })?;
        Ok(Scorer { model })
    }

    /// The model's version string.
    pub fn version(&self) -> &str {
        &self.model.model_version
    }

    /// Scores one fingerprint and explains the verdict.
    pub fn score(&self, fp: &Fingerprint) -> Scored {
        let verdict = self.model.score(&fp.features());
        Scored { verdict, reasons: bfp_common::explain::reasons(fp, &verdict, MAX_REASONS) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_model_loads_and_scores() {
        let scorer = Scorer::load(None).unwrap();
        assert!(!scorer.version().is_empty());
        let fp = Fingerprint {
            login_hour: 3,
            session_duration_min: 5.0,
            commands: 3,
            failed_logins: 4,
            protocol: bfp_common::Protocol::Tor,
            typing_speed_wpm: Some(120.0),
            risky_commands: Some(0),
        };
        let scored = scorer.score(&fp);
        assert!((0.5..=1.0).contains(&scored.verdict.confidence));
        assert!(!scored.reasons.is_empty());
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
