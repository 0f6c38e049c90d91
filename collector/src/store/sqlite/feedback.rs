//! Analyst feedback in SQLite: the `feedback` table keyed by the
//! prediction's id, so the predictions table and its write paths stay as
//! they are, and the labelled rows (a few, chosen by people) are found
//! without scanning millions.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Error, Result};
use crate::store::feedback::{AnalystLabel, Feedback, FeedbackOutcome, LABELLED_HEADER};
use crate::store::model::label;
use crate::store::StoredPrediction;

pub(super) fn apply(conn: &mut Connection, id: i64, feedback: Feedback, note: Option<&str>) -> Result<FeedbackOutcome> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let prediction: Option<String> =
        tx.query_row("SELECT prediction FROM predictions WHERE id = ?1", [id], |r| r.get(0)).optional()?;
    let Some(prediction) = prediction else {
        return Err(Error::NotFound(format!("no stored result with id {id}")));
    };
    let suspicious = prediction == "Suspicious";
    match feedback.true_class(suspicious) {
        Some(class) => {
            tx.execute(
                "INSERT INTO feedback (prediction_id, analyst_label, note) VALUES (?1, ?2, ?3)
                 ON CONFLICT (prediction_id) DO UPDATE SET analyst_label = excluded.analyst_label,
                     labelled_at = excluded.labelled_at, note = excluded.note",
                params![id, label(class), note],
            )?;
        }
        None => {
            tx.execute("DELETE FROM feedback WHERE prediction_id = ?1", [id])?;
        }
    }
    let analyst = label_of(&tx, id)?;
    tx.commit()?;
    Ok(FeedbackOutcome { id, suspicious, analyst })
}

fn label_of(c: &Connection, id: i64) -> Result<Option<AnalystLabel>> {
    Ok(c.query_row("SELECT analyst_label, labelled_at, note FROM feedback WHERE prediction_id = ?1", [id], |r| {
        Ok(AnalystLabel { suspicious: r.get::<_, String>(0)? == "Suspicious", labelled_at: r.get(1)?, note: r.get(2)? })
    })
    .optional()?)
}

/// The SQL condition (on `predictions.id`) for a `labelled` filter.
/// `labelled=true` is driven by the feedback table (SQLite looks each
/// labelled id up by rowid: O(labels), checked with EXPLAIN QUERY PLAN);
/// `labelled=false` has to walk the predictions in range, O(rows).
pub(super) fn filter_clause(labelled: bool) -> &'static str {
    if labelled {
        " AND id IN (SELECT prediction_id FROM feedback)"
    } else {
        " AND id NOT IN (SELECT prediction_id FROM feedback)"
    }
}

/// Fills in the analyst labels of a page: one range read when the page is
/// in id order, else one primary-key look-up per row (a newest-first page
/// may span any range of ids).
pub(super) fn attach(c: &Connection, rows: &mut [StoredPrediction]) -> Result<()> {
    let (Some(first), Some(last)) = (rows.first().map(|r| r.id), rows.last().map(|r| r.id)) else {
        return Ok(());
    };
    let label = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, AnalystLabel)> {
        Ok((
            r.get::<_, i64>(0)?,
            AnalystLabel {
                suspicious: r.get::<_, String>(1)? == "Suspicious",
                labelled_at: r.get(2)?,
                note: r.get(3)?,
            },
        ))
    };
    if !rows.windows(2).all(|w| w[0].id < w[1].id) {
        let mut stmt = c.prepare_cached(
            "SELECT prediction_id, analyst_label, labelled_at, note FROM feedback WHERE prediction_id = ?1",
        )?;
        for row in rows.iter_mut() {
            if let Some((_, analyst)) = stmt.query_row([row.id], label).optional()? {
                row.analyst = Some(analyst);
            }
        }
        return Ok(());
    }
    let mut stmt = c.prepare_cached(
        "SELECT prediction_id, analyst_label, labelled_at, note FROM feedback
         WHERE prediction_id BETWEEN ?1 AND ?2 ORDER BY prediction_id",
    )?;
    let labels = stmt.query_map([first, last], label)?;
    for item in labels {
        let (id, analyst) = item?;
        if let Ok(at) = rows.binary_search_by_key(&id, |r| r.id) {
            rows[at].analyst = Some(analyst);
        }
    }
    Ok(())
}

pub(super) fn export_labelled(c: &Connection) -> Result<String> {
    let mut stmt = c.prepare(
        "SELECT p.login_hour, p.session_duration, p.commands_count, p.failed_logins, p.protocol, p.typing_speed,
                f.analyst_label, p.risky_commands, p.id, p.prediction, f.labelled_at, f.note
         FROM feedback f JOIN predictions p ON p.id = f.prediction_id ORDER BY f.prediction_id",
    )?;
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Internal(format!("labelled export: {e}"));
    w.write_record(LABELLED_HEADER.split(',')).map_err(csv_err)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        // Values as the collector took them in (f32), so the export reads
        // back to the same fingerprint; -1 / empty = unknown, as the models
        // reader expects.
        let typing: Option<f64> = r.get(5)?;
        let risky: Option<i64> = r.get(7)?;
        w.write_record([
            r.get::<_, i64>(0)?.to_string(),
            (r.get::<_, f64>(1)? as f32).to_string(),
            r.get::<_, i64>(2)?.to_string(),
            r.get::<_, i64>(3)?.to_string(),
            r.get::<_, String>(4)?,
            typing.map(|t| (t as f32).to_string()).unwrap_or_else(|| "-1".into()),
            r.get::<_, String>(6)?,
            risky.map(|n| n.to_string()).unwrap_or_default(),
            r.get::<_, i64>(8)?.to_string(),
            r.get::<_, String>(9)?,
            r.get::<_, String>(10)?,
            crate::store::insights::spreadsheet_safe(r.get::<_, Option<String>>(11)?.unwrap_or_default()),
        ])
        .map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::Internal(format!("labelled export: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::Internal(format!("labelled export: {e}")))
}

#[cfg(test)]
mod tests {
    use super::super::{SqliteConfig, SqliteStore};
    use super::*;
    use crate::store::feedback::MAX_NOTE_CHARS;
    use crate::store::{AgentContext, AnalystFeedback, NewPrediction, Predictions, ResultsQuery, Source, Store};
    use bfp_common::{Fingerprint, Protocol};
    use std::sync::Arc;

    fn row(suspicious: bool, typing: Option<f32>, risky: Option<u32>) -> NewPrediction {
        NewPrediction {
            source: Source::Single,
            fingerprint: Fingerprint {
                login_hour: 3,
                session_duration_min: 2.5,
                commands: 4,
                failed_logins: if suspicious { 9 } else { 0 },
                protocol: Protocol::Ssh,
                typing_speed_wpm: typing,
                risky_commands: risky,
            },
            suspicious,
            confidence: 0.8,
            commands: None,
            model_version: Arc::from("m1"),
            reasons: vec![],
            device: None,
            agent: AgentContext::default(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn labels_show_in_pages_filter_them_and_export_as_training_rows() {
        for fresh in crate::store::backends::each().await {
            eprintln!("backend: {}", fresh.name);
            let store = fresh.store.clone();
            store
                .insert(vec![row(true, Some(40.0), Some(1)), row(false, None, None), row(true, Some(12.5), Some(0))])
                .await
                .unwrap();
            assert!(matches!(store.set_feedback(99, Feedback::TruePositive, None).await, Err(Error::NotFound(_))));
            let long = "x".repeat(MAX_NOTE_CHARS + 1);
            assert!(matches!(store.set_feedback(1, Feedback::TruePositive, Some(long)).await, Err(Error::BadInput(_))));

            let fp = store.set_feedback(1, Feedback::FalsePositive, Some("admin, \"known\"".into())).await.unwrap();
            assert_eq!((fp.suspicious, fp.analyst.as_ref().map(|a| a.suspicious)), (true, Some(false)));
            // A missed attack: a false positive on a Normal verdict is Suspicious.
            let missed = store.set_feedback(2, Feedback::FalsePositive, None).await.unwrap();
            assert_eq!(missed.analyst.map(|a| a.suspicious), Some(true));
            store.set_feedback(3, Feedback::TruePositive, None).await.unwrap();
            let cleared = store.set_feedback(3, Feedback::Clear, None).await.unwrap();
            assert_eq!(cleared.analyst, None);

            let all = store.results(ResultsQuery { limit: 10, ..ResultsQuery::default() }).await.unwrap();
            let labels: Vec<_> = all.results.iter().map(|r| r.analyst.as_ref().map(AnalystLabel::label)).collect();
            assert_eq!(labels, [Some("Normal"), Some("Suspicious"), None]);
            assert_eq!(all.results[0].analyst.as_ref().unwrap().note.as_deref(), Some("admin, \"known\""));
            let q = |labelled| ResultsQuery { limit: 10, labelled: Some(labelled), ..ResultsQuery::default() };
            let labelled = store.results(q(true)).await.unwrap();
            assert_eq!((labelled.count, labelled.results.iter().map(|r| r.id).collect::<Vec<_>>()), (2, vec![1, 2]));
            let unlabelled = store.results(q(false)).await.unwrap();
            assert_eq!((unlabelled.count, unlabelled.results[0].id), (1, 3));

            let csv = store.export_labelled().await.unwrap();
            let mut lines = csv.lines();
            assert_eq!(lines.next(), Some(LABELLED_HEADER));
            let first = lines.next().unwrap();
            assert!(first.starts_with("3,2.5,4,9,SSH,40,Normal,1,1,Suspicious,"), "{first}");
            assert!(first.ends_with(",\"admin, \"\"known\"\"\""), "{first}");
            assert!(lines.next().unwrap().starts_with("3,2.5,4,0,SSH,-1,Suspicious,,2,Normal,"));
            assert_eq!(lines.next(), None);
            store.shutdown().await;
        }
    }

    /// Another process (a `bfp-collector` command on the same file) holds
    /// the write lock when a label is set and commits a moment later: the
    /// label waits for it and is stored, not refused with "database is locked".
    #[tokio::test]
    async fn a_label_waits_for_another_process_writing_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let store = Arc::new(SqliteStore::open(&SqliteConfig::new(&path)).unwrap());
        store.insert(vec![row(true, None, None)]).await.unwrap();

        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("BEGIN IMMEDIATE; CREATE TABLE other_process (x); INSERT INTO other_process VALUES (1);")
            .unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            held.recv().unwrap();
            other.execute_batch("COMMIT").unwrap();
        });
        let label = tokio::spawn({
            let store = store.clone();
            async move { store.set_feedback(1, Feedback::TruePositive, None).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        release.send(()).unwrap();
        holder.join().unwrap();
        let stored = label.await.unwrap().expect("the label waits for the other writer");
        assert_eq!(stored.analyst.map(|a| a.suspicious), Some(true));
        store.shutdown().await;
    }
}
