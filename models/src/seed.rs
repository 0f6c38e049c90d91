//! The original system's seed data (`shared/data/seed/`): its training set,
//! labelled "logged in at night", and its 3-row acceptance CSV.

use std::path::{Path, PathBuf};

use bfp_common::schema::PREDICT_FEATURE_COUNT;
use bfp_common::Fingerprint;

use crate::error::{Error, Result};

/// `$BFP_SEED_DIR`, else `seed/` of the shared data folder
/// ([`bfp_testkit::try_shared_data`]).
pub fn seed_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BFP_SEED_DIR") {
        return Some(PathBuf::from(dir));
    }
    bfp_testkit::try_shared_data().map(|d| d.join("seed")).filter(|d| d.join("behavior_dataset.csv").is_file())
}

/// Feature rows and, for a labelled file, their labels.
pub type Labelled = (Vec<[f32; PREDICT_FEATURE_COUNT]>, Option<Vec<bool>>);

/// Reads a seed CSV: the original six columns, plus `Label` (0/1) when
/// present. Rows are validated as the collector validates uploads.
pub fn read(path: &Path) -> Result<Labelled> {
    let err = |detail: String| Error::Seed { path: path.display().to_string(), detail };
    let mut reader = csv::Reader::from_path(path).map_err(|e| err(e.to_string()))?;
    let header = reader.headers().map_err(|e| err(e.to_string()))?.clone();
    let labelled = header.len() == 7 && header.get(6) == Some("Label");
    let six: csv::StringRecord = header.iter().take(6).collect();
    Fingerprint::check_csv_header(&six)?;
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| err(e.to_string()))?;
        let six: csv::StringRecord = record.iter().take(6).collect();
        rows.push(Fingerprint::from_csv_record(&six, i as u64 + 1)?.features());
        if labelled {
            match record.get(6).map(str::trim) {
                Some("0") => labels.push(false),
                Some("1") => labels.push(true),
                other => return Err(err(format!("row {}: bad label {other:?}", i + 1))),
            }
        }
    }
    Ok((rows, labelled.then_some(labels)))
}
