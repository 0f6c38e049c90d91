//! Analyst-labelled fingerprints (confirmed true or false positives) to add
//! to training. Read from CSV: the original six columns (`LoginHour,...,
//! TypingSpeed`), then `Label` (`0`/`1` or `Normal`/`Suspicious`), and
//! optionally `RiskyCommands`; other columns (e.g. those `bfp-models
//! dataset` writes) are ignored. `-1` or an empty cell means unknown for
//! `TypingSpeed` and `RiskyCommands`.
//!
//! These rows only ever join the training set: the held-out evaluation stays
//! the simulator's, so a card's figures remain comparable.

use std::path::Path;

use bfp_common::Fingerprint;

use crate::error::{Error, Result};

/// One labelled fingerprint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labelled {
    /// The fingerprint.
    pub fingerprint: Fingerprint,
    /// The analyst's verdict: true for Suspicious.
    pub suspicious: bool,
}

/// Reads labelled rows from a CSV file (see the module doc).
pub fn read(path: &Path) -> Result<Vec<Labelled>> {
    let err = |detail: String| Error::Seed { path: path.display().to_string(), detail };
    let file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    parse(file).map_err(|e| match e {
        Error::Seed { detail, .. } => err(detail),
        other => err(other.to_string()),
    })
}

/// Reads labelled rows from CSV text.
pub fn parse<R: std::io::Read>(input: R) -> Result<Vec<Labelled>> {
    let err = |detail: String| Error::Seed { path: "<input>".into(), detail };
    let mut reader = csv::Reader::from_reader(input);
    let header = reader.headers().map_err(|e| err(e.to_string()))?.clone();
    let six: csv::StringRecord = header.iter().take(6).collect();
    Fingerprint::check_csv_header(&six)?;
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let label_at = column("Label").ok_or_else(|| err("no `Label` column".into()))?;
    let risky_at = column("RiskyCommands");
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i as u64 + 1;
        let record = record.map_err(|e| err(e.to_string()))?;
        let unknown = |v: &str| v.trim().is_empty() || v.trim() == "-1";
        // The collector's validation reads the six columns; unknown typing
        // speed is not part of its contract, so it is mapped around it.
        let typing_unknown = record.get(5).is_some_and(unknown);
        let six: csv::StringRecord =
            record.iter().take(6).enumerate().map(|(k, v)| if k == 5 && typing_unknown { "0" } else { v }).collect();
        let mut fingerprint = Fingerprint::from_csv_record(&six, row)?;
        if typing_unknown {
            fingerprint.typing_speed_wpm = None;
        }
        if let Some(at) = risky_at {
            let v = record.get(at).unwrap_or("");
            fingerprint.risky_commands = if unknown(v) {
                None
            } else {
                let n: u32 = v.trim().parse().map_err(|_| err(format!("row {row}: bad RiskyCommands {v:?}")))?;
                if n > fingerprint.commands {
                    return Err(err(format!("row {row}: RiskyCommands {n} exceeds CommandsCount")));
                }
                Some(n)
            };
        }
        let suspicious = match record.get(label_at).map(|l| l.trim().to_ascii_lowercase()) {
            Some(l) if l == "1" || l == "suspicious" => true,
            Some(l) if l == "0" || l == "normal" => false,
            other => return Err(err(format!("row {row}: bad Label {other:?}"))),
        };
        out.push(Labelled { fingerprint, suspicious });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labels_unknowns_and_the_dataset_format() {
        let text =
            "LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed,RiskyCommands,Label,Scenario\n\
                    23,60,20,0,SSH,45,0,Normal,x\n\
                    3,2,6,0,SSH,-1,-1,1,y\n";
        let rows = parse(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(!rows[0].suspicious && rows[1].suspicious);
        assert_eq!(rows[0].fingerprint.risky_commands, Some(0));
        assert_eq!(rows[1].fingerprint.typing_speed_wpm, None);
        assert_eq!(rows[1].fingerprint.risky_commands, None);
    }

    #[test]
    fn refuses_rows_it_cannot_trust() {
        let head = "LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed,Label";
        for bad in [
            format!("{head}\n23,60,20,0,SSH,45,maybe\n"),
            format!("{head}\n25,60,20,0,SSH,45,0\n"),
            "LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed\n1,1,1,1,SSH,1\n".to_string(),
            format!("{head},RiskyCommands\n23,60,2,0,SSH,45,0,5\n"),
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
