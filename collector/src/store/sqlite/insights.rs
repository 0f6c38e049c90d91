//! The dashboard's charts and the scored CSV export, read from SQLite: the
//! roll-up tables the writer keeps (see `writer::RollupDelta`) and the
//! counters, never the predictions table, except for the export itself.

use std::collections::HashMap;
use std::io::Write;

use bfp_common::Protocol;
use rusqlite::{params, Connection};

use super::reads::{filter_sql, resolve_range};
use crate::error::{Error, Result};
use crate::store::insights::{
    commands_cell, spreadsheet_safe, Bucket, Insights, Split, DAYS_SHOWN, EXPORT_HEADER, HOURS_SHOWN, TOP_N,
};
use crate::store::ResultsQuery;

fn splits(stmt: &mut rusqlite::CachedStatement<'_>, args: impl rusqlite::Params) -> Result<Vec<Split>> {
    let rows = stmt.query_map(args, |r| {
        Ok(Split { key: r.get(0)?, normal: r.get::<_, i64>(1)? as u64, suspicious: r.get::<_, i64>(2)? as u64 })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Reads the analytics page's data from the roll-ups and counters; the cost
/// grows with hours and devices, not with stored predictions.
pub(super) fn insights(c: &Connection, bucket: Bucket, until: Option<&str>) -> Result<Insights> {
    let tx = c.unchecked_transaction()?;
    let latest: Option<String> = tx.query_row("SELECT MAX(hour) FROM rollup_hourly", [], |r| r.get(0))?;
    // A window asked to end elsewhere ends there (when anything is stored).
    let latest = latest.map(|l| until.map(|u| format!("{}:00:00", &u[..13.min(u.len())])).unwrap_or(l));
    let (over_time, window) = match latest {
        None => (Vec::new(), None),
        Some(latest) => {
            let (key, step, count) = match bucket {
                Bucket::Hour => ("hour", "hours", HOURS_SHOWN),
                Bucket::Day => ("substr(hour, 1, 10)", "days", DAYS_SHOWN),
            };
            let anchor = match bucket {
                Bucket::Hour => latest.clone(),
                Bucket::Day => latest[..10].to_string(),
            };
            // Every bucket of the window, oldest first, so gaps show as zeros.
            let fmt = if bucket == Bucket::Hour { "%Y-%m-%d %H:00:00" } else { "%Y-%m-%d" };
            let mut stmt = tx.prepare_cached(
                "WITH RECURSIVE back(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM back WHERE i + 1 < ?3)
                 SELECT strftime(?1, ?2, '-' || i || ' ' || ?4) FROM back ORDER BY i DESC",
            )?;
            let keys = stmt
                .query_map(params![fmt, anchor, count, step], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            drop(stmt);
            let since = keys[0].clone();
            let sql = format!(
                "SELECT {key} AS k, SUM(CASE WHEN prediction = 'Normal' THEN n ELSE 0 END),
                        SUM(CASE WHEN prediction = 'Suspicious' THEN n ELSE 0 END)
                 FROM rollup_hourly WHERE hour >= ?1 GROUP BY k"
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            let found: HashMap<String, Split> =
                splits(&mut stmt, params![since])?.into_iter().map(|s| (s.key.clone(), s)).collect();
            let series: Vec<Split> = keys
                .iter()
                .map(|k| found.get(k).cloned().unwrap_or(Split { key: k.clone(), normal: 0, suspicious: 0 }))
                .collect();
            let window = Some((keys[0].clone(), keys[keys.len() - 1].clone()));
            (series, window)
        }
    };

    let mut stmt = tx.prepare_cached(
        "SELECT protocol, SUM(CASE WHEN prediction = 'Normal' THEN n ELSE 0 END),
                SUM(CASE WHEN prediction = 'Suspicious' THEN n ELSE 0 END)
         FROM rollup_hourly GROUP BY protocol",
    )?;
    let found = splits(&mut stmt, [])?;
    let by_protocol =
        Protocol::ALL.iter().filter_map(|p| found.iter().find(|s| s.key == p.as_str()).cloned()).collect::<Vec<_>>();
    drop(stmt);

    let mut stmt = tx.prepare_cached(
        "SELECT source, SUM(CASE WHEN prediction = 'Normal' THEN n ELSE 0 END),
                SUM(CASE WHEN prediction = 'Suspicious' THEN n ELSE 0 END)
         FROM counters GROUP BY source",
    )?;
    let found = splits(&mut stmt, [])?;
    let by_source = ["single", "csv", "agent"]
        .iter()
        .filter_map(|s| found.iter().find(|f| f.key == *s).cloned())
        .collect::<Vec<_>>();
    drop(stmt);

    let mut stmt = tx.prepare_cached(
        "SELECT device, SUM(CASE WHEN prediction = 'Normal' THEN n ELSE 0 END) AS normal,
                SUM(CASE WHEN prediction = 'Suspicious' THEN n ELSE 0 END) AS suspicious
         FROM counters WHERE device <> '' GROUP BY device ORDER BY normal + suspicious DESC, device LIMIT ?1",
    )?;
    let by_device = splits(&mut stmt, params![TOP_N])?;
    drop(stmt);

    let mut stmt = tx.prepare_cached(
        "SELECT source_ip, suspicious, total FROM source_ips WHERE suspicious > 0
         ORDER BY suspicious DESC, source_ip LIMIT ?1",
    )?;
    let top_sources = stmt
        .query_map(params![TOP_N], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    drop(stmt);
    tx.finish()?;
    Ok(Insights { over_time, window, by_protocol, by_source, by_device, top_sources })
}

/// Writes the predictions matching `q` (its filters and ranges; paging
/// ignored) to `out` as scored CSV, in id order, from one snapshot.
pub(super) fn export(c: &Connection, q: &ResultsQuery, mut out: Box<dyn Write + Send>) -> Result<u64> {
    let tx = c.unchecked_transaction()?;
    let n = match resolve_range(&tx, q)? {
        Some((lo, hi)) => {
            let (filter, args) = filter_sql(q, 3);
            export_csv(&tx, lo, hi, &filter, &args, &mut out)?
        }
        None => {
            out.write_all(EXPORT_HEADER.as_bytes())?;
            out.write_all(b"\n")?;
            0
        }
    };
    tx.finish()?;
    Ok(n)
}

/// Rows per read while exporting: bounds memory whatever the export's size.
const EXPORT_CHUNK: i64 = 2000;

/// Writes every row with `lo <= id <= hi` passing `filter_sql` (an `AND ...`
/// fragment over `args`) as scored CSV to `out`, chunk by chunk. Returns the
/// number of rows written. `out` returning an error (the client went away)
/// stops the export.
fn export_csv(
    c: &Connection,
    lo: i64,
    hi: i64,
    filter_sql: &str,
    args: &[rusqlite::types::Value],
    out: &mut dyn Write,
) -> Result<u64> {
    let sql = format!(
        "SELECT login_hour, session_duration, commands_count, failed_logins, protocol, typing_speed, prediction,
                confidence, reasons, id, created_at, source, device, source_ip, event_at, user, kind, commands
         FROM predictions WHERE id > ?1 AND id <= ?2 {filter_sql} ORDER BY id LIMIT {EXPORT_CHUNK}"
    );
    let mut stmt = c.prepare(&sql)?;
    out.write_all(EXPORT_HEADER.as_bytes())?;
    out.write_all(b"\n")?;
    // The writer's buffer is the unit sent on: 64 KiB chunks.
    let mut w = csv::WriterBuilder::new().has_headers(false).buffer_capacity(1 << 16).from_writer(out);
    let mut after = lo - 1;
    let mut written = 0u64;
    loop {
        let mut bind: Vec<rusqlite::types::Value> = vec![after.into(), hi.into()];
        bind.extend_from_slice(args);
        let mut rows = stmt.query(rusqlite::params_from_iter(bind))?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let reasons: String = r.get(8)?;
            let reasons: Vec<String> = serde_json::from_str(&reasons).unwrap_or_default();
            let typing: Option<f64> = r.get(5)?;
            let id: i64 = r.get(9)?;
            w.write_record([
                r.get::<_, i64>(0)?.to_string(),
                (r.get::<_, f64>(1)? as f32).to_string(),
                r.get::<_, i64>(2)?.to_string(),
                r.get::<_, i64>(3)?.to_string(),
                r.get::<_, String>(4)?,
                typing.map(|t| (t as f32).to_string()).unwrap_or_default(),
                r.get::<_, String>(6)?,
                r.get::<_, f64>(7)?.to_string(),
                spreadsheet_safe(reasons.join("; ")),
                id.to_string(),
                spreadsheet_safe(r.get::<_, String>(10)?),
                spreadsheet_safe(r.get::<_, String>(11)?),
                spreadsheet_safe(r.get::<_, Option<String>>(12)?.unwrap_or_default()),
                spreadsheet_safe(r.get::<_, Option<String>>(13)?.unwrap_or_default()),
                r.get::<_, String>(14)?,
                spreadsheet_safe(r.get::<_, Option<String>>(15)?.unwrap_or_default()),
                r.get::<_, Option<String>>(16)?.unwrap_or_default(),
                commands_cell(r.get::<_, Option<String>>(17)?.as_deref()),
            ])
            .map_err(|e| Error::Internal(format!("csv export: {e}")))?;
            after = id;
            n += 1;
        }
        written += n;
        if n < EXPORT_CHUNK as u64 {
            break;
        }
    }
    w.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::super::{SqliteConfig, SqliteStore};
    use super::*;
    use crate::store::model::label;
    use crate::store::{AgentContext, CsvRow, NewPrediction, Predictions, ResultsPage, Source, Store};
    use bfp_common::Fingerprint;
    use std::sync::Arc;

    fn row(
        source: Source,
        protocol: Protocol,
        suspicious: bool,
        device: Option<&str>,
        ip: Option<&str>,
    ) -> NewPrediction {
        NewPrediction {
            source,
            fingerprint: Fingerprint {
                login_hour: 14,
                session_duration_min: 2.5,
                commands: 3,
                failed_logins: if suspicious { 8 } else { 0 },
                protocol,
                typing_speed_wpm: Some(40.0),
                risky_commands: Some(0),
            },
            suspicious,
            confidence: 0.75,
            commands: None,
            model_version: Arc::from("m1"),
            reasons: vec!["8 failed logins before this session".into(), "arrived over Tor".into()],
            device: device.map(str::to_string),
            agent: AgentContext { source_ip: ip.map(str::to_string), ..AgentContext::default() },
        }
    }

    fn open(path: &std::path::Path) -> SqliteStore {
        SqliteStore::open(&SqliteConfig::new(path)).unwrap()
    }

    /// Sets `created_at` of ids `lo..=hi` (the writer stamps "now"; tests
    /// need a spread of times).
    fn ids(page: &ResultsPage) -> Vec<i64> {
        page.results.iter().map(|r| r.id).collect()
    }

    #[tokio::test]
    async fn filtered_counts_and_pages_from_id_blocks_equal_walking_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let store = open(&path);
        let csv_row = |i: usize| {
            let suspicious = i % 7 < 3;
            let fp = row(Source::Csv, Protocol::Ssh, suspicious, None, None).fingerprint;
            CsvRow::new(&fp, suspicious, 0.9, &[])
        };
        // CSV uploads and grouped single/agent writes, across several blocks.
        for (upload, size) in [5_000, 7_000, 1_234].into_iter().enumerate() {
            store.commit_csv_rows((0..size).map(|i| csv_row(i + upload)).collect()).await.unwrap();
            let mixed = (0..300)
                .map(|i| match i % 3 {
                    0 => row(Source::Single, Protocol::Tor, i % 2 == 0, None, None),
                    _ => row(Source::Agent, Protocol::Ssh, i % 5 == 0, Some("pi-1"), Some("192.0.2.1")),
                })
                .collect();
            store.insert(mixed).await.unwrap();
        }
        let total = 5_000 + 7_000 + 1_234 + 900;

        let rows_counted = |lo: i64, hi: i64, source: Option<Source>, suspicious: Option<bool>| -> u64 {
            let c = Connection::open(&path).unwrap();
            c.query_row(
                "SELECT COUNT(*) FROM predictions WHERE id BETWEEN ?1 AND ?2
                    AND (?3 IS NULL OR source = ?3) AND (?4 IS NULL OR prediction = ?4)",
                params![lo, hi, source.map(Source::as_str), suspicious.map(label)],
                |r| r.get::<_, i64>(0),
            )
            .unwrap() as u64
        };
        let ranges = [(1, total), (1, 4095), (4096, 8191), (4095, 8192), (100, 9_000), (5_000, 5_000), (3_000, total)];
        let sources = [None, Some(Source::Csv), Some(Source::Single), Some(Source::Agent)];
        let mut checked = 0;
        for (lo, hi) in ranges {
            for source in sources {
                for suspicious in [None, Some(true), Some(false)] {
                    let q = ResultsQuery {
                        limit: 1,
                        min_id: Some(lo),
                        max_id: Some(hi),
                        source,
                        suspicious,
                        ..ResultsQuery::default()
                    };
                    let page = store.results(q).await.unwrap();
                    assert_eq!(
                        page.count,
                        rows_counted(lo, hi, source, suspicious),
                        "{lo}..={hi} {source:?} {suspicious:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 7 * 4 * 3);

        // Pages of a filter start at the first block holding a match: a long
        // run of the other label is skipped, and nothing matching is.
        let all_suspicious: Vec<_> = (0..9_000).map(|_| csv_row(0)).collect();
        assert!(all_suspicious.iter().all(|r| r.suspicious));
        store.commit_csv_rows(all_suspicious).await.unwrap();
        store.insert((0..3).map(|_| row(Source::Single, Protocol::Ssh, false, None, None)).collect()).await.unwrap();
        let page_ids = |after: i64, source: Option<Source>, suspicious: Option<bool>| -> Vec<i64> {
            let c = Connection::open(&path).unwrap();
            let mut stmt = c
                .prepare(
                    "SELECT id FROM predictions WHERE id > ?1 AND (?2 IS NULL OR source = ?2)
                        AND (?3 IS NULL OR prediction = ?3) ORDER BY id LIMIT 5",
                )
                .unwrap();
            stmt.query_map(params![after, source.map(Source::as_str), suspicious.map(label)], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        for after in [0, 4_000, 5_100, 9_000, 14_000, 20_000, 23_134, 30_000] {
            for source in sources {
                for suspicious in [None, Some(true), Some(false)] {
                    let q =
                        ResultsQuery { limit: 5, after_id: Some(after), source, suspicious, ..ResultsQuery::default() };
                    let got: Vec<i64> = store.results(q).await.unwrap().results.iter().map(|r| r.id).collect();
                    assert_eq!(got, page_ids(after, source, suspicious), "after {after} {source:?} {suspicious:?}");
                }
            }
        }

        // A database from before id_blocks (schema version 2) is back-filled
        // when opened.
        store.shutdown().await;
        drop(store);
        Connection::open(&path).unwrap().execute_batch("DROP TABLE id_blocks; PRAGMA user_version = 2").unwrap();
        let store = open(&path);
        let q = ResultsQuery {
            limit: 1,
            min_id: Some(10),
            max_id: Some(12_000),
            suspicious: Some(true),
            ..ResultsQuery::default()
        };
        assert_eq!(store.results(q).await.unwrap().count, rows_counted(10, 12_000, None, Some(true)));
        store.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn roll_ups_follow_every_write_path_and_add_up_to_the_totals() {
        for fresh in crate::store::backends::each().await {
            eprintln!("backend: {}", fresh.name);
            let store = fresh.store.clone();
            let empty = store.insights(Bucket::Hour, None).await.unwrap();
            assert!(empty.over_time.is_empty() && empty.window.is_none() && empty.by_source.is_empty());

            store
                .insert(vec![
                    row(Source::Single, Protocol::Tor, true, None, None),
                    row(Source::Agent, Protocol::Ssh, true, Some("pi-1"), Some("203.0.113.9")),
                    row(Source::Agent, Protocol::Ssh, true, Some("pi-1"), Some("203.0.113.9")),
                    row(Source::Agent, Protocol::Ssh, false, Some("pi-2"), Some("198.51.100.4")),
                    row(Source::Agent, Protocol::Ssh, true, Some("pi-2"), Some("198.51.100.4")),
                ])
                .await
                .unwrap();
            let csv = (0..10)
                .map(|i| {
                    let p =
                        row(Source::Csv, if i % 2 == 0 { Protocol::Https } else { Protocol::Ftp }, i == 3, None, None);
                    CsvRow::new(&p.fingerprint, p.suspicious, p.confidence, &p.reasons)
                })
                .collect();
            let summary = crate::store::backends::commit_csv_rows(&*store, csv).await.unwrap();
            assert_eq!((summary.first_id, summary.last_id), (Some(6), Some(15)));

            let i = store.insights(Bucket::Hour, None).await.unwrap();
            assert_eq!(i.over_time.len(), HOURS_SHOWN as usize);
            let total: u64 = i.over_time.iter().map(|s| s.normal + s.suspicious).sum();
            assert_eq!(total, 15);
            // Only the newest bucket holds rows; the older ones are zero-filled.
            assert_eq!(i.over_time.iter().filter(|s| s.normal + s.suspicious > 0).count(), 1);
            assert_eq!(i.window.as_ref().unwrap().1, i.over_time.last().unwrap().key);
            let split = |v: &[Split], k: &str| v.iter().find(|s| s.key == k).map(|s| (s.normal, s.suspicious));
            assert_eq!(split(&i.by_protocol, "TOR"), Some((0, 1)));
            assert_eq!(split(&i.by_protocol, "SSH"), Some((1, 3)));
            assert_eq!(split(&i.by_protocol, "HTTPS"), Some((5, 0)));
            assert_eq!(split(&i.by_protocol, "FTP"), Some((4, 1)));
            assert_eq!(
                i.by_protocol.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(),
                ["HTTPS", "SSH", "FTP", "TOR"]
            );
            assert_eq!(split(&i.by_source, "single"), Some((0, 1)));
            assert_eq!(split(&i.by_source, "csv"), Some((9, 1)));
            assert_eq!(split(&i.by_source, "agent"), Some((1, 3)));
            assert_eq!(split(&i.by_device, "pi-1"), Some((0, 2)));
            assert_eq!(split(&i.by_device, "pi-2"), Some((1, 1)));
            assert_eq!(i.top_sources, vec![("203.0.113.9".to_string(), 2, 2), ("198.51.100.4".to_string(), 1, 2)]);

            // Dense ids: ranged counts by arithmetic agree with the rows.
            let ranged = |from: &str, min_id, max_id| ResultsQuery {
                limit: 100,
                from: Some(from.to_string()),
                min_id,
                max_id,
                ..ResultsQuery::default()
            };
            let page = store.results(ranged("2000-01-01 00:00:00", None, None)).await.unwrap();
            assert_eq!((page.count, page.results.len()), (15, 15));
            let page = store.results(ranged("2000-01-01 00:00:00", Some(3), Some(7))).await.unwrap();
            assert_eq!((page.count, ids(&page)), (5, vec![3, 4, 5, 6, 7]));
            let page = store.results(ranged("2000-01-01 00:00:00", Some(14), Some(99))).await.unwrap();
            assert_eq!((page.count, ids(&page)), (2, vec![14, 15]));

            let d = store.insights(Bucket::Day, None).await.unwrap();
            assert_eq!(d.over_time.len(), DAYS_SHOWN as usize);
            assert_eq!(d.over_time.last().unwrap().key.len(), 10, "day keys are YYYY-MM-DD");
            assert_eq!(d.over_time.iter().map(|s| s.normal + s.suspicious).sum::<u64>(), 15);
            store.shutdown().await;
        }
    }

    #[tokio::test]
    async fn an_older_database_is_back_filled_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let store = open(&path);
        store.insert(vec![row(Source::Agent, Protocol::Tor, true, Some("pi-1"), Some("192.0.2.1"))]).await.unwrap();
        store.shutdown().await;
        drop(store);
        // As if written by a collector without roll-ups (schema version 1).
        let c = Connection::open(&path).unwrap();
        c.execute_batch("DROP TABLE rollup_hourly; DROP TABLE source_ips; PRAGMA user_version = 1").unwrap();
        c.execute("UPDATE predictions SET created_at = '2026-01-02 03:04:05'", []).unwrap();
        drop(c);

        let store = open(&path);
        let i = store.insights(Bucket::Hour, None).await.unwrap();
        assert_eq!(i.over_time.last().unwrap(), &Split { key: "2026-01-02 03:00:00".into(), normal: 0, suspicious: 1 });
        assert_eq!(i.top_sources, vec![("192.0.2.1".to_string(), 1, 1)]);
        store.shutdown().await;
        drop(store);
        // Opening again does not count the old rows twice.
        let store = open(&path);
        let i = store.insights(Bucket::Hour, None).await.unwrap();
        assert_eq!(i.over_time.iter().map(|s| s.suspicious).sum::<u64>(), 1);
        store.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn time_and_id_ranges_filter_pages_and_counts() {
        for fresh in crate::store::backends::each().await {
            let (name, store) = (fresh.name, &fresh.store);
            let rows: Vec<_> = (0..30).map(|i| row(Source::Single, Protocol::Ssh, i % 3 == 0, None, None)).collect();
            store.insert(rows).await.unwrap();
            // Ten rows per day, with a gap in the ids (rows 11..=12 deleted).
            let zone = if name == "sqlite" { "" } else { "+00" };
            for (lo, hi, at) in [(1, 10, "2026-03-01"), (11, 20, "2026-03-02"), (21, 30, "2026-03-03")] {
                fresh
                    .execute(&format!(
                        "UPDATE predictions SET created_at = '{at} 10:00:00{zone}' WHERE id BETWEEN {lo} AND {hi}"
                    ))
                    .await;
            }
            // A purge keeps the counts in step (rows 11 and 12 are Normal).
            fresh
                .execute(
                    "DELETE FROM predictions WHERE id IN (11, 12);
                     UPDATE counters SET n = n - 2 WHERE source = 'single' AND prediction = 'Normal';
                     UPDATE id_blocks SET n = n - 2 WHERE block = 0 AND source = 'single' AND prediction = 'Normal';",
                )
                .await;

            let q = |from: Option<&str>, to: Option<&str>| ResultsQuery {
                limit: 100,
                from: from.map(str::to_string),
                to: to.map(str::to_string),
                time: crate::store::TimeField::Ingest,
                ..ResultsQuery::default()
            };
            let page = store.results(q(Some("2026-03-02 00:00:00"), Some("2026-03-02 23:59:59"))).await.unwrap();
            assert_eq!(ids(&page), (13..=20).collect::<Vec<_>>(), "{name}");
            assert_eq!(page.count, 8, "{name}");
            let page = store.results(q(Some("2026-03-02 10:00:00"), None)).await.unwrap();
            assert_eq!((page.count, page.results[0].id), (18, 13), "{name}");
            let page = store.results(q(None, Some("2026-03-01 10:00:00"))).await.unwrap();
            assert_eq!(ids(&page), (1..=10).collect::<Vec<_>>(), "{name}");
            for (from, to) in [(Some("2027-01-01 00:00:00"), None), (None, Some("2026-02-28 23:59:59"))] {
                let page = store.results(q(from, to)).await.unwrap();
                assert_eq!((page.count, page.results.len()), (0, 0), "{name}: {from:?} {to:?}");
            }
            // With a label filter and keyset paging inside the range.
            let mut query = q(Some("2026-03-01 00:00:00"), Some("2026-03-02 23:59:59"));
            query.suspicious = Some(true);
            query.limit = 2;
            let page = store.results(query.clone()).await.unwrap();
            assert_eq!((page.count, ids(&page)), (7, vec![1, 4]), "{name}");
            query.after_id = Some(4);
            assert_eq!(ids(&store.results(query).await.unwrap()), vec![7, 10], "{name}");
            // An id range (one CSV upload's) combined with a time range.
            let mut query = q(Some("2026-03-03 00:00:00"), None);
            query.min_id = Some(5);
            query.max_id = Some(24);
            let page = store.results(query).await.unwrap();
            assert_eq!((page.count, ids(&page)), (4, vec![21, 22, 23, 24]), "{name}");
            store.shutdown().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn single_and_csv_rows_happen_when_they_are_stored_so_their_event_ranges_are_id_ranges() {
        use crate::store::{backends::commit_csv_rows, TimeField};
        for fresh in crate::store::backends::each().await {
            let (name, store) = (fresh.name, &fresh.store);
            // Agent events of March, then single rows and an upload now.
            let mut old = row(Source::Agent, Protocol::Ssh, true, Some("pi-1"), Some("192.0.2.1"));
            old.agent.started_at = Some("2026-03-27 13:08:00".into());
            store.insert(vec![old]).await.unwrap();
            let singles = store
                .insert((0..4).map(|i| row(Source::Single, Protocol::Ssh, i % 2 == 0, None, None)).collect())
                .await
                .unwrap();
            let fp = row(Source::Single, Protocol::Ssh, true, None, None).fingerprint;
            let csv =
                commit_csv_rows(&**store, (0..3).map(|_| CsvRow::new(&fp, true, 0.9, &[])).collect()).await.unwrap();
            // What the shortcut rests on, for every stored single and CSV row.
            let differing =
                fresh.count("SELECT COUNT(*) FROM predictions WHERE source <> 'agent' AND event_at <> created_at");
            assert_eq!(differing.await, 0, "{name}");

            let all = store.results(ResultsQuery { limit: 100, ..ResultsQuery::default() }).await.unwrap();
            let now = all.results.iter().find(|r| r.id == singles[0]).unwrap().event_at.clone();
            let range = |source, from: &str, to: &str, time| ResultsQuery {
                limit: 100,
                source: Some(source),
                from: Some(from.into()),
                to: Some(to.into()),
                time,
                ..ResultsQuery::default()
            };
            let day = (format!("{} 00:00:00", &now[..10]), format!("{} 23:59:59", &now[..10]));
            // Answered from ids and block counts, not by walking the rows.
            assert!(!range(Source::Single, &day.0, &day.1, TimeField::Event).has_row_filters());
            assert!(!range(Source::Csv, &day.0, &day.1, TimeField::Event).has_row_filters());
            assert!(range(Source::Agent, &day.0, &day.1, TimeField::Event).has_row_filters());
            for time in [TimeField::Event, TimeField::Ingest] {
                let page = store.results(range(Source::Single, &day.0, &day.1, time)).await.unwrap();
                assert_eq!((page.count, ids(&page)), (4, singles.clone()), "{name} {time:?}");
                let page = store.results(range(Source::Csv, &day.0, &day.1, time)).await.unwrap();
                assert_eq!(page.count, csv.total, "{name} {time:?}");
                let march = store.results(range(Source::Single, "2026-03-27 00:00:00", "2026-03-27 23:59:59", time));
                assert_eq!(march.await.unwrap().count, 0, "{name} {time:?}");
            }
            // The agent's row is still found by when it happened.
            let march = range(Source::Agent, "2026-03-27 00:00:00", "2026-03-27 23:59:59", TimeField::Event);
            assert_eq!(store.results(march).await.unwrap().count, 1, "{name}");
            store.shutdown().await;
        }
    }

    /// An agent row that happened at `at` (its record's start), from `ip` as `user`.
    fn event(at: &str, user: &str, ip: &str, kind: &str, suspicious: bool, reason: &str) -> NewPrediction {
        let mut p = row(Source::Agent, Protocol::Ssh, suspicious, Some("pi-1"), Some(ip));
        p.confidence = if suspicious { 0.9 } else { 0.6 };
        p.reasons = vec![reason.into()];
        p.agent.user = Some(user.into());
        p.agent.kind = Some(kind.into());
        p.agent.started_at = Some(at.into());
        p.agent.evidence = Some(format!(r#"{{"log":"auth.log","details":{{"users_sample":["{user}"]}}}}"#));
        p
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn event_time_orders_filters_and_rolls_up_what_agents_report() {
        use crate::store::{Feedback, Order, TimeField};
        for fresh in crate::store::backends::each().await {
            let name = fresh.name;
            let store = fresh.store.clone();
            // Weeks-old events from an agent, in log order (not newest first),
            // then a single prediction stored now.
            let events = vec![
                event("2026-03-27 13:08:00", "ubuntu", "203.0.113.5", "session", true, "8 failed logins before"),
                event("2026-03-27 09:00:00", "admin", "203.0.113.5", "session", false, "usual hour"),
                event("2026-03-28 02:00:00", "root", "198.51.100.7", "source", true, "40 failed logins"),
                event("2026-03-26 23:59:59", "ubuntu", "192.0.2.1", "session", false, "known address"),
                event("2026-03-28 02:00:00", "ubuntu", "198.51.100.7", "source", true, "Tried 9 users"),
            ];
            let agent_ids = store.insert(events).await.unwrap();
            let single = store.insert(vec![row(Source::Single, Protocol::Tor, true, None, None)]).await.unwrap()[0];
            let all = store.results(ResultsQuery { limit: 100, ..ResultsQuery::default() }).await.unwrap();
            let now = all.results.iter().find(|r| r.id == single).unwrap();
            assert_eq!(now.event_at, now.created_at, "{name}: a single prediction happened when it was stored");
            let first = all.results.iter().find(|r| r.id == agent_ids[0]).unwrap();
            assert_eq!(first.event_at, "2026-03-27 13:08:00", "{name}");
            assert_ne!(first.created_at, first.event_at, "{name}");
            assert_eq!(
                first.agent.evidence.as_deref(),
                Some(r#"{"log":"auth.log","details":{"users_sample":["ubuntu"]}}"#),
                "{name}: the evidence is kept as sent"
            );
            assert_eq!(now.agent.evidence, None, "{name}");

            // Newest first: by event time, ties by id, and the cursor pages
            // through the same order.
            let newest = |limit: u32, before_id: Option<i64>| ResultsQuery {
                limit,
                order: Order::Newest,
                before_id,
                ..ResultsQuery::default()
            };
            let order = ids(&store.results(newest(100, None)).await.unwrap());
            let expected = vec![single, agent_ids[4], agent_ids[2], agent_ids[0], agent_ids[1], agent_ids[3]];
            assert_eq!(order, expected, "{name}");
            let mut paged = Vec::new();
            let mut cursor = None;
            loop {
                let page = store.results(newest(2, cursor)).await.unwrap();
                assert_eq!(page.count, 6, "{name}");
                paged.extend(ids(&page));
                match page.results.last() {
                    Some(last) if page.results.len() == 2 => cursor = Some(last.id),
                    _ => break,
                }
            }
            assert_eq!(paged, expected, "{name}: keyset pages");
            let mut q = newest(2, None);
            q.offset = 3;
            assert_eq!(ids(&store.results(q).await.unwrap()), expected[3..5], "{name}: offset pages");
            assert!(store.results(newest(2, Some(999_999))).await.is_err(), "{name}: unknown cursor");

            // `from`/`to` are event time unless asked otherwise.
            let range = |from: &str, to: &str, time| ResultsQuery {
                limit: 100,
                from: Some(from.into()),
                to: Some(to.into()),
                time,
                ..ResultsQuery::default()
            };
            let day = store.results(range("2026-03-27 00:00:00", "2026-03-27 23:59:59", TimeField::Event)).await;
            let day = day.unwrap();
            assert_eq!((day.count, ids(&day)), (2, vec![agent_ids[0], agent_ids[1]]), "{name}");
            let ingest = store.results(range("2026-03-27 00:00:00", "2026-03-28 23:59:59", TimeField::Ingest)).await;
            assert_eq!(ingest.unwrap().count, 0, "{name}: nothing was stored in March");

            // Each filter gives exactly its rows, with their count.
            let filtered = |f: &dyn Fn(&mut ResultsQuery)| {
                let mut q = newest(100, None);
                f(&mut q);
                q
            };
            let cases: Vec<(ResultsQuery, Vec<i64>)> = vec![
                (filtered(&|q| q.user = Some("ubuntu".into())), vec![agent_ids[4], agent_ids[0], agent_ids[3]]),
                (filtered(&|q| q.source_ip = Some("203.0.113.5".into())), vec![agent_ids[0], agent_ids[1]]),
                (filtered(&|q| q.kind = Some("source".into())), vec![agent_ids[4], agent_ids[2]]),
                // The single row's stored reasons name failed logins too.
                (filtered(&|q| q.reason = Some("FAILED LOGINS".into())), vec![single, agent_ids[2], agent_ids[0]]),
                (filtered(&|q| q.reason = Some("%".into())), vec![]),
                (filtered(&|q| q.min_confidence = Some(0.8)), vec![agent_ids[4], agent_ids[2], agent_ids[0]]),
                (
                    filtered(&|q| {
                        q.user = Some("ubuntu".into());
                        q.source_ip = Some("198.51.100.7".into());
                        q.suspicious = Some(true);
                    }),
                    vec![agent_ids[4]],
                ),
            ];
            for (q, want) in cases {
                let page = store.results(q.clone()).await.unwrap();
                assert_eq!((page.count, ids(&page)), (want.len() as u64, want.clone()), "{name}: {q:?}");
                // The same filter in id order gives the same rows.
                let by_id = store.results(ResultsQuery { order: Order::Id, ..q.clone() }).await.unwrap();
                let mut sorted = want;
                sorted.sort();
                assert_eq!(ids(&by_id), sorted, "{name}: {q:?} in id order");
            }

            // Labels reach a page in any order.
            store.set_feedback(agent_ids[2], Feedback::FalsePositive, None).await.unwrap();
            let page = store.results(newest(100, None)).await.unwrap();
            let labelled: Vec<i64> = page.results.iter().filter(|r| r.analyst.is_some()).map(|r| r.id).collect();
            assert_eq!(labelled, vec![agent_ids[2]], "{name}");

            // The chart files each event under its own day.
            let days = store.insights(Bucket::Day, Some("2026-03-28 23:59:59".into())).await.unwrap();
            let on = |day: &str| days.over_time.iter().find(|s| s.key == day).map(|s| s.normal + s.suspicious);
            assert_eq!(
                (on("2026-03-26"), on("2026-03-27"), on("2026-03-28")),
                (Some(1), Some(2), Some(2)),
                "{name}: {:?}",
                days.over_time
            );
            store.shutdown().await;
        }
    }

    /// Seconds since the epoch of a `YYYY-MM-DD HH:MM:SS` time.
    fn epoch(t: &str) -> i64 {
        let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
        let days = bfp_common::time::days_from_civil(n(0..4) as i32, n(5..7) as u8, n(8..10) as u8);
        days * 86_400 + n(11..13) * 3_600 + n(14..16) * 60 + n(17..19)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uploads_take_their_place_in_event_time_among_the_other_rows() {
        use crate::store::{backends::commit_csv_rows, Order, StoredPrediction};
        for fresh in crate::store::backends::each().await {
            let (name, store) = (fresh.name, &fresh.store);
            let csv = |n: usize, salt: usize| -> Vec<CsvRow> {
                (0..n)
                    .map(|i| {
                        let s = (i + salt).is_multiple_of(3);
                        let fp = row(Source::Csv, Protocol::Https, s, None, None).fingerprint;
                        CsvRow::new(&fp, s, if s { 0.9 } else { 0.6 }, &[])
                    })
                    .collect()
            };
            let singles =
                |n: usize| (0..n).map(|i| row(Source::Single, Protocol::Tor, i % 2 == 0, None, None)).collect();
            // An agent's events from long before and from a clock ahead,
            // around two uploads with single predictions between them, and
            // an event one second after the first upload (the second upload
            // waits for the clock to pass it).
            store
                .insert(vec![
                    event("2026-03-27 13:08:00", "ubuntu", "203.0.113.5", "session", true, "8 failed logins before"),
                    event("2030-01-01 00:00:00", "root", "198.51.100.7", "source", false, "clock ahead"),
                ])
                .await
                .unwrap();
            let first = commit_csv_rows(&**store, csv(20, 0)).await.unwrap();
            store.insert(singles(3)).await.unwrap();
            let by_id = |limit| ResultsQuery { limit, ..ResultsQuery::default() };
            let stored = store.results(by_id(1000)).await.unwrap().results;
            let first_at = stored.iter().find(|r| Some(r.id) == first.first_id).unwrap().event_at.clone();
            let next = bfp_common::time::format_utc(epoch(&first_at) + 1);
            store.insert(vec![event(&next, "admin", "192.0.2.9", "session", true, "8 failed logins")]).await.unwrap();
            loop {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
                if bfp_common::time::format_utc(now.as_secs() as i64) > next {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            commit_csv_rows(&**store, csv(15, 1)).await.unwrap();
            store.insert(singles(2)).await.unwrap();

            let all: Vec<StoredPrediction> = store.results(by_id(1000)).await.unwrap().results;
            assert_eq!(all.len(), 2 + 20 + 3 + 1 + 15 + 2, "{name}");
            // What each query must give: the rows passing `keep`, newest first.
            let expect = |keep: &dyn Fn(&StoredPrediction) -> bool| -> Vec<i64> {
                let mut rows: Vec<&StoredPrediction> = all.iter().filter(|r| keep(r)).collect();
                rows.sort_by(|a, b| (&b.event_at, b.id).cmp(&(&a.event_at, a.id)));
                rows.iter().map(|r| r.id).collect()
            };
            let newest = |q: &ResultsQuery| ResultsQuery { order: Order::Newest, ..q.clone() };
            let everything = expect(&|_| true);
            assert_eq!(ids(&store.results(newest(&by_id(1000))).await.unwrap()), everything, "{name}");

            type Keep = Box<dyn Fn(&StoredPrediction) -> bool>;
            let filters: Vec<(ResultsQuery, Keep)> = vec![
                (by_id(1000), Box::new(|_| true)),
                (ResultsQuery { suspicious: Some(true), ..by_id(1000) }, Box::new(|r| r.suspicious)),
                (ResultsQuery { suspicious: Some(false), ..by_id(1000) }, Box::new(|r| !r.suspicious)),
                (ResultsQuery { source: Some(Source::Csv), ..by_id(1000) }, Box::new(|r| r.source == Source::Csv)),
                (
                    ResultsQuery { source: Some(Source::Single), ..by_id(1000) },
                    Box::new(|r| r.source == Source::Single),
                ),
                (ResultsQuery { source: Some(Source::Agent), ..by_id(1000) }, Box::new(|r| r.source == Source::Agent)),
                (ResultsQuery { min_confidence: Some(0.8), ..by_id(1000) }, Box::new(|r| r.confidence >= 0.8)),
                // Event-time ranges over every source: lower bounds at whole
                // seconds compare alike on stored text and on finer times.
                (
                    ResultsQuery { from: Some(next.clone()), ..by_id(1000) },
                    Box::new({
                        let next = next.clone();
                        move |r| r.event_at >= next
                    }),
                ),
                (
                    ResultsQuery {
                        from: Some(first_at.clone()),
                        to: Some("2029-12-31 23:59:59".into()),
                        ..by_id(1000)
                    },
                    Box::new({
                        let first_at = first_at.clone();
                        move |r| r.event_at >= first_at && r.event_at.as_str() < "2030"
                    }),
                ),
                (
                    ResultsQuery {
                        from: Some("2026-03-27 13:08:00".into()),
                        to: Some("2029-12-31 23:59:59".into()),
                        ..by_id(1000)
                    },
                    Box::new(|r| r.event_at.as_str() >= "2026-03-27 13:08:00" && r.event_at.as_str() < "2030"),
                ),
                (
                    ResultsQuery { from: Some(first_at.clone()), suspicious: Some(true), ..by_id(1000) },
                    Box::new({
                        let first_at = first_at.clone();
                        move |r| r.event_at >= first_at && r.suspicious
                    }),
                ),
                (
                    ResultsQuery { from: Some(first_at.clone()), min_confidence: Some(0.8), ..by_id(1000) },
                    Box::new({
                        let first_at = first_at.clone();
                        move |r| r.event_at >= first_at && r.confidence >= 0.8
                    }),
                ),
            ];
            for (q, keep) in &filters {
                let want = expect(keep);
                assert!(!want.is_empty(), "{name}: {q:?} keeps some rows");
                let page = store.results(newest(q)).await.unwrap();
                assert_eq!((page.count, ids(&page)), (want.len() as u64, want.clone()), "{name}: newest {q:?}");
                let mut sorted = want.clone();
                sorted.sort();
                let page = store.results(q.clone()).await.unwrap();
                assert_eq!((page.count, ids(&page)), (want.len() as u64, sorted), "{name}: by id {q:?}");
                // Cursor pages small enough to end inside an upload.
                let mut paged = Vec::new();
                let mut cursor = None;
                loop {
                    let page = store.results(ResultsQuery { limit: 4, before_id: cursor, ..newest(q) }).await;
                    let page = page.unwrap();
                    paged.extend(ids(&page));
                    assert!(paged.len() <= want.len(), "{name}: cursor pages of {q:?} repeat rows: {paged:?}");
                    match page.results.last() {
                        Some(last) if page.results.len() == 4 => cursor = Some(last.id),
                        _ => break,
                    }
                }
                assert_eq!(paged, want, "{name}: cursor pages of {q:?}");
                for offset in (0..=want.len()).step_by(3) {
                    let page = store.results(ResultsQuery { limit: 5, offset: offset as u64, ..newest(q) }).await;
                    let end = (offset + 5).min(want.len());
                    assert_eq!(ids(&page.unwrap()), want[offset..end], "{name}: offset {offset} of {q:?}");
                }
            }
            store.shutdown().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn export_writes_every_matching_row_as_scored_csv() {
        for fresh in crate::store::backends::each().await {
            eprintln!("backend: {}", fresh.name);
            let store = fresh.store.clone();
            // More rows than one read chunk, so the export pages internally.
            let n = EXPORT_CHUNK as usize * 2 + 7;
            let rows: Vec<_> = (0..n)
                .map(|i| row(Source::Agent, Protocol::Tor, i % 2 == 0, Some("pi,\"1\""), Some("192.0.2.7")))
                .collect();
            store.insert(rows).await.unwrap();
            let q = ResultsQuery { suspicious: Some(true), ..ResultsQuery::default() };
            let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
            struct Sink(std::sync::mpsc::Sender<Vec<u8>>);
            impl Write for Sink {
                fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                    self.0.send(b.to_vec()).unwrap();
                    Ok(b.len())
                }
                fn flush(&mut self) -> std::io::Result<()> {
                    Ok(())
                }
            }
            let written = store.export_csv(q, Box::new(Sink(tx))).await.unwrap();
            let text = String::from_utf8(rx.try_iter().flatten().collect()).unwrap();
            assert_eq!(written as usize, n / 2 + 1);
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>().join(","), EXPORT_HEADER);
            let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
            assert_eq!(records.len(), n / 2 + 1);
            let first = &records[0];
            assert_eq!(
                &first.iter().take(8).collect::<Vec<_>>(),
                &["14", "2.5", "3", "8", "TOR", "40", "Suspicious", "0.75"]
            );
            assert_eq!(&first[8], "8 failed logins before this session; arrived over Tor");
            assert_eq!((&first[9], &first[11], &first[12], &first[13]), ("1", "agent", "pi,\"1\"", "192.0.2.7"));
            let ids: Vec<i64> = records.iter().map(|r| r[9].parse().unwrap()).collect();
            assert!(ids.windows(2).all(|w| w[1] == w[0] + 2), "every suspicious row once, in id order");
            // Nothing matches: just the header.
            let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
            let none = ResultsQuery { min_id: Some(1_000_000), ..ResultsQuery::default() };
            assert_eq!(store.export_csv(none, Box::new(Sink(tx))).await.unwrap(), 0);
            assert_eq!(String::from_utf8(rx.try_iter().flatten().collect()).unwrap(), format!("{EXPORT_HEADER}\n"));
            store.shutdown().await;
        }
    }
}
