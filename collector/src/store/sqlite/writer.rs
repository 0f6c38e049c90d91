//! The writer: one thread owns the only write connection. Requests send
//! their work over a bounded channel; the writer takes everything queued (up
//! to `max_batch` rows), runs it in one transaction, updates the counters,
//! roll-ups and id blocks in that same transaction, commits, and only then
//! answers each request. One commit (one fsync with `synchronous=FULL`) thus
//! serves a whole burst of requests: group commit.
//!
//! A CSV upload's rows are streamed into one transaction of their own while
//! the parser produces them; only `CsvChunk::Done` commits it, so a bad row
//! stores nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bfp_common::Protocol;
use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::alerts::AlertTail;
use super::devices;
use super::reads::BLOCK_SHIFT;
use crate::error::{Error, Result};
use crate::store::model::label;
use crate::store::{round_confidence, CsvChunk, CsvRow, CsvSummary, NewPrediction, Source, Totals, WriterStats};

// `?21`: the transaction's time, stamped once, so a row's ingest (and
// event) time and the hour its roll-up is filed under are the same clock
// reading even when the group's statements straddle an hour.
const INSERT_SQL: &str = "INSERT INTO predictions (source, prediction, confidence, login_hour, session_duration,
    commands_count, failed_logins, protocol, typing_speed, risky_commands, commands, model_version, reasons, device,
    kind, source_ip, user, started_at, ended_at, event_at, evidence, created_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
        COALESCE(?18, ?21), ?20, ?21)";

/// The time a write transaction stamps its rows with (`created_at`, and
/// the event time of rows without their own): one clock reading per
/// transaction, which the writer also hands to the alert evaluation with
/// the rows (see [`super::alerts::AlertTail`]).
pub(super) fn stamp(tx: &Connection) -> rusqlite::Result<String> {
    tx.prepare_cached("SELECT datetime('now')")?.query_row([], |r| r.get(0))
}

// `OR FAIL`: a failing row stops the statement without undoing the rows
// before it, so SQLite keeps no statement journal for these multi-row
// inserts; any failure drops the whole upload's transaction anyway.
const INSERT_CSV_HEAD: &str =
    "INSERT OR FAIL INTO predictions (created_at, event_at, model_version, source, prediction,
    confidence, login_hour, session_duration, commands_count, failed_logins, protocol, typing_speed, risky_commands,
    reasons) VALUES ";

/// Parameters per row of a CSV insert (see [`bind_csv_row`]).
const CSV_COLUMNS: usize = 10;

/// Parameters shared by every row of a CSV insert: `?1` the upload's time,
/// `?2` the model version (bound once per statement, not per row).
const CSV_SHARED: usize = 2;

/// Rows per multi-row INSERT of a CSV commit: one statement step per chunk
/// instead of per row.
pub(super) const CSV_CHUNK: usize = 128;

/// `INSERT ... VALUES (?1, ?2, 'csv', ?3, ...), ...` for `rows` rows: the
/// upload's time is stamped once rather than formatted by SQLite per row.
fn csv_insert_sql(rows: usize) -> String {
    let mut sql = String::from(INSERT_CSV_HEAD);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        // A CSV row happened when it was uploaded: its event time is the
        // upload's.
        sql.push_str("(?1, ?1, ?2, 'csv'");
        for column in 0..CSV_COLUMNS {
            sql.push_str(&format!(", ?{}", 1 + CSV_SHARED + row * CSV_COLUMNS + column));
        }
        sql.push(')');
    }
    sql
}

const COUNTER_SQL: &str = "INSERT INTO counters (source, device, prediction, n) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (source, device, prediction) DO UPDATE SET n = n + excluded.n";

const ID_BLOCK_SQL: &str = "INSERT INTO id_blocks (block, source, prediction, n) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (block, source, prediction) DO UPDATE SET n = n + excluded.n";

const ROLLUP_SQL: &str = "INSERT INTO rollup_hourly (hour, source, protocol, prediction, n)
    VALUES (strftime('%Y-%m-%d %H:00:00', ?5), ?1, ?2, ?3, ?4)
    ON CONFLICT (hour, source, protocol, prediction) DO UPDATE SET n = n + excluded.n";

const SOURCE_IP_SQL: &str = "INSERT INTO source_ips (source_ip, suspicious, total) VALUES (?1, ?2, ?3)
    ON CONFLICT (source_ip) DO UPDATE SET suspicious = suspicious + excluded.suspicious, total = total + excluded.total";

/// What the writer thread is asked to do.
pub(super) enum WriteOp {
    /// Predictions to store; grouped with the other inserts queued.
    Insert { rows: Vec<NewPrediction>, reply: oneshot::Sender<Result<Vec<i64>>> },
    /// A CSV upload: its own transaction, fed chunk by chunk.
    Csv {
        chunks: std::sync::mpsc::Receiver<CsvChunk>,
        model_version: Arc<str>,
        reply: oneshot::Sender<Result<CsvSummary>>,
    },
    /// An agent's batch; grouped with the other batches queued.
    Ingest(devices::IngestOp),
    /// Any other write, run alone on the connection (see
    /// [`super::SqliteStore::exclusive`]); it answers its own caller.
    Exclusive(Box<dyn FnOnce(&mut Connection) + Send>),
    /// Commit what is queued, then stop.
    Shutdown,
}
// ---------------------------------------------------------------- writer ---

/// WAL pages after which the writer folds the WAL back into the database
/// (SQLite's own auto-checkpoint threshold).
pub(super) const CHECKPOINT_PAGES: u64 = 1000;

/// The writer thread's loop: runs until [`WriteOp::Shutdown`] or until
/// every sender is gone.
pub(super) fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<WriteOp>,
    max_batch: usize,
    stats: &WriterStats,
    tail: &Mutex<AlertTail>,
) {
    // SQLite's auto-checkpoint runs inside COMMIT, so a large transaction
    // (a million-row CSV) would copy its whole WAL back before its reply.
    // The hook replaces it: it only notes the WAL's size, and the writer
    // checkpoints after it has answered. It still does so itself, between
    // two transactions, so the WAL is fully folded back and restarts.
    let wal_pages = Arc::new(AtomicU64::new(0));
    let noted = wal_pages.clone();
    let hook = conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
        noted.store(pages.max(0) as u64, Ordering::Relaxed);
        Ok(())
    }));
    if let Err(e) = hook {
        tracing::warn!(error = %e, "WAL hook not set: SQLite checkpoints inside commits");
    }
    let mut pending: Option<WriteOp> = None;
    loop {
        if wal_pages.load(Ordering::Relaxed) >= CHECKPOINT_PAGES {
            if let Err(e) = conn.wal_checkpoint_v2(None::<&str>, rusqlite::wal::CheckpointMode::PASSIVE) {
                tracing::warn!(error = %e, "checkpoint failed; retried after the next commit");
            }
            wal_pages.store(0, Ordering::Relaxed);
        }
        let op = match pending.take().or_else(|| rx.blocking_recv()) {
            Some(op) => op,
            None => break,
        };
        match op {
            WriteOp::Shutdown => break,
            WriteOp::Ingest(op) => {
                // Group commit for agents too: every batch already queued
                // goes into the same transaction (each in its savepoint).
                let mut n = op.records();
                let mut group = vec![op];
                while n < max_batch {
                    match rx.try_recv() {
                        Ok(WriteOp::Ingest(op)) => {
                            n += op.records();
                            group.push(op);
                        }
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let started = Instant::now();
                let rows = devices::run_ingests(&mut conn, group, tail);
                account(stats, started, rows);
            }
            WriteOp::Exclusive(work) => work(&mut conn),
            WriteOp::Csv { chunks, model_version, reply } => {
                let started = Instant::now();
                let result = commit_csv(&mut conn, chunks, &model_version);
                if result.is_ok() {
                    // Its rows are read back by the evaluation.
                    tail.lock().unwrap_or_else(|e| e.into_inner()).interrupt();
                }
                account(stats, started, result.as_ref().map(|s| s.total).map_err(|_| ()));
                let _ = reply.send(result);
            }
            WriteOp::Insert { rows, reply } => {
                let mut n = rows.len();
                let mut batch = vec![(rows, reply)];
                while n < max_batch {
                    match rx.try_recv() {
                        Ok(WriteOp::Insert { rows, reply }) => {
                            n += rows.len();
                            batch.push((rows, reply));
                        }
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let started = Instant::now();
                match insert_batch(&mut conn, &batch) {
                    Ok((ids, seen)) => {
                        account(stats, started, Ok(n as u64));
                        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                        for ((rows, reply), ids) in batch.into_iter().zip(ids) {
                            for (&id, row) in ids.iter().zip(rows) {
                                tail.feed(id, seen, row);
                            }
                            let _ = reply.send(Ok(ids));
                        }
                    }
                    Err(e) => {
                        account(stats, started, Err(()));
                        tracing::error!(error = %e, rows = n, "write batch rolled back");
                        for (_, reply) in batch {
                            let _ = reply.send(Err(Error::Store(e.to_string())));
                        }
                    }
                }
            }
        }
    }
    // Fold the WAL back into the database so a stopped collector leaves one
    // self-contained file.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(error = %e, "final checkpoint failed");
    }
}

fn account(stats: &WriterStats, started: Instant, rows: std::result::Result<u64, ()>) {
    match rows {
        Ok(rows) => stats.committed(started, rows),
        Err(()) => stats.failed(),
    }
}

/// Per-(source, device, label) increments of one transaction.
#[derive(Default)]
pub(super) struct CounterDelta(Vec<(Source, String, bool, i64)>);

impl CounterDelta {
    pub(super) fn add(&mut self, source: Source, device: Option<&str>, suspicious: bool, n: i64) {
        let device = device.unwrap_or("");
        match self.0.iter_mut().find(|(s, d, p, _)| *s == source && d == device && *p == suspicious) {
            Some(entry) => entry.3 += n,
            None => self.0.push((source, device.to_string(), suspicious, n)),
        }
    }

    pub(super) fn apply(&self, tx: &Connection) -> rusqlite::Result<()> {
        let mut stmt = tx.prepare_cached(COUNTER_SQL)?;
        for (source, device, suspicious, n) in &self.0 {
            stmt.execute(params![source.as_str(), device, label(*suspicious), n])?;
        }
        Ok(())
    }
}

type Batch = [(Vec<NewPrediction>, oneshot::Sender<Result<Vec<i64>>>)];

/// Stores a group of requests' rows in one transaction; returns each
/// request's ids and the rows' time of ingest (seconds since the epoch).
fn insert_batch(conn: &mut Connection, batch: &Batch) -> rusqlite::Result<(Vec<Vec<i64>>, i64)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stamp = stamp(&tx)?;
    let mut delta = CounterDelta::default();
    let mut rollup = RollupDelta::default();
    let mut all = Vec::with_capacity(batch.len());
    for (rows, _) in batch {
        all.push(insert_rows(&tx, rows, &stamp, &mut delta, &mut rollup)?);
    }
    delta.apply(&tx)?;
    rollup.apply_at(&tx, &stamp)?;
    tx.commit()?;
    Ok((all, super::alerts::unix_seconds(&stamp)))
}

/// Inserts rows inside `tx`, stamped `stamp` (see [`stamp`]), adding their
/// counts to `delta` and `rollup` (which the caller applies in the same
/// transaction).
pub(super) fn insert_rows(
    tx: &Connection,
    rows: &[NewPrediction],
    stamp: &str,
    delta: &mut CounterDelta,
    rollup: &mut RollupDelta,
) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = tx.prepare_cached(INSERT_SQL)?;
    let mut ids = Vec::with_capacity(rows.len());
    for p in rows {
        let fp = &p.fingerprint;
        let commands = p.commands.as_ref().map(|c| serde_json::to_string(c).unwrap_or_default());
        let reasons = serde_json::to_string(&p.reasons).unwrap_or_else(|_| "[]".into());
        stmt.execute(params![
            p.source.as_str(),
            label(p.suspicious),
            round_confidence(p.confidence),
            fp.login_hour,
            f64::from(fp.session_duration_min),
            fp.commands,
            fp.failed_logins,
            fp.protocol.as_str(),
            fp.typing_speed_wpm.map(f64::from),
            fp.risky_commands,
            commands,
            &*p.model_version,
            reasons,
            p.device,
            p.agent.kind,
            p.agent.source_ip,
            p.agent.user,
            p.agent.started_at,
            p.agent.ended_at,
            p.agent.evidence,
            stamp,
        ])?;
        let id = tx.last_insert_rowid();
        ids.push(id);
        delta.add(p.source, p.device.as_deref(), p.suspicious, 1);
        rollup.add(
            id,
            p.agent.started_at.as_deref(),
            p.source,
            fp.protocol,
            p.suspicious,
            p.agent.source_ip.as_deref(),
        );
    }
    Ok(ids)
}

/// Appends `row`'s [`CSV_COLUMNS`] parameters in insert order.
fn bind_csv_row<'a>(row: &'a CsvRow, args: &mut Vec<&'a dyn rusqlite::ToSql>) {
    args.extend_from_slice(&[
        label_ref(row.suspicious) as &dyn rusqlite::ToSql,
        &row.confidence,
        &row.login_hour,
        &row.duration,
        &row.commands,
        &row.failed_logins,
        &row.protocol_name,
        &row.typing_speed,
        &row.risky_commands,
        &row.reasons,
    ]);
}

fn label_ref(suspicious: bool) -> &'static &'static str {
    if suspicious {
        &"Suspicious"
    } else {
        &"Normal"
    }
}

fn commit_csv(
    conn: &mut Connection,
    chunks: std::sync::mpsc::Receiver<CsvChunk>,
    model_version: &str,
) -> Result<CsvSummary> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut totals = Totals::default();
    let mut rollup = RollupDelta::default();
    // Every row of one upload carries the time it started committing.
    let stamp: String = stamp(&tx)?;
    {
        let mut one = tx.prepare_cached(&csv_insert_sql(1))?;
        let mut many = tx.prepare_cached(&csv_insert_sql(CSV_CHUNK))?;
        let mv: &str = model_version;
        loop {
            // A closed channel without `Done` means the parser gave up:
            // returning drops `tx`, which rolls everything back.
            let rows = match chunks.recv() {
                Ok(CsvChunk::Rows(rows)) => rows,
                Ok(CsvChunk::Done) => break,
                Err(_) => return Err(Error::BadInput("the CSV upload was abandoned".into())),
            };
            let mut groups = rows.chunks_exact(CSV_CHUNK);
            for group in groups.by_ref() {
                let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(CSV_SHARED + CSV_CHUNK * CSV_COLUMNS);
                args.extend_from_slice(&[&stamp as &dyn rusqlite::ToSql, &mv]);
                for row in group {
                    bind_csv_row(row, &mut args);
                }
                many.execute(&*args)?;
            }
            for row in groups.remainder() {
                let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(CSV_SHARED + CSV_COLUMNS);
                args.extend_from_slice(&[&stamp as &dyn rusqlite::ToSql, &mv]);
                bind_csv_row(row, &mut args);
                one.execute(&*args)?;
            }
            // The only writer inserted this chunk: its ids end at the last one.
            let first_id = tx.last_insert_rowid() - rows.len() as i64 + 1;
            for (id, row) in (first_id..).zip(&rows) {
                if row.suspicious {
                    totals.suspicious += 1;
                } else {
                    totals.normal += 1;
                }
                rollup.add(id, None, Source::Csv, row.protocol, row.suspicious, None);
            }
        }
    }
    if totals.total() == 0 {
        return Err(Error::BadInput("the CSV file has a header but no data rows".into()));
    }
    let mut delta = CounterDelta::default();
    delta.add(Source::Csv, None, false, totals.normal as i64);
    delta.add(Source::Csv, None, true, totals.suspicious as i64);
    delta.apply(&tx)?;
    rollup.apply_at(&tx, &stamp)?;
    let last_id = (totals.total() > 0).then(|| tx.last_insert_rowid());
    let first_id = last_id.map(|last| last - totals.total() as i64 + 1);
    // The upload's rows in event-time order: they have no entry in
    // `predictions_event`; this row (their stamp) stands for them.
    tx.prepare_cached("INSERT INTO csv_uploads (first_id, last_id, uploaded_at) VALUES (?1, ?2, ?3)")?
        .execute(rusqlite::params![first_id, last_id, stamp])?;
    tx.commit()?;
    Ok(CsvSummary { total: totals.total(), normal: totals.normal, suspicious: totals.suspicious, first_id, last_id })
}

/// Roll-up increments of one write transaction, filed under the hour of
/// each row's event time: an agent record's start, else the time of ingest
/// (the transaction's one [`stamp`], which those rows' `created_at` and
/// `event_at` also hold, so an event-time count may take whole hours from
/// the roll-ups).
#[derive(Default)]
pub(crate) struct RollupDelta {
    // (event hour or None for now, source, protocol, suspicious) -> n: a
    // few entries per hour an agent's batch spans.
    counts: Vec<(Option<String>, Source, Protocol, bool, i64)>,
    ips: HashMap<String, (i64, i64)>,
    // (block, source, suspicious) -> n, blocks ascending: ids only grow, so
    // a row's entry is among the last few.
    blocks: Vec<(i64, Source, bool, i64)>,
}

impl RollupDelta {
    /// Counts one stored prediction (row `id`) that happened at `event_at`
    /// (`None`: now).
    pub(super) fn add(
        &mut self,
        id: i64,
        event_at: Option<&str>,
        source: Source,
        protocol: Protocol,
        suspicious: bool,
        source_ip: Option<&str>,
    ) {
        // The hour is all the roll-up keeps: `YYYY-MM-DD HH`.
        let hour = event_at.map(|t| t.get(..13).unwrap_or(t));
        let same_hour = |h: &Option<String>| match (h, hour) {
            (Some(h), Some(hour)) => h.starts_with(hour),
            (None, None) => true,
            _ => false,
        };
        match self
            .counts
            .iter_mut()
            .find(|(h, s, p, l, _)| same_hour(h) && *s == source && *p == protocol && *l == suspicious)
        {
            Some(entry) => entry.4 += 1,
            None => self.counts.push((hour.map(|h| format!("{h}:00:00")), source, protocol, suspicious, 1)),
        }
        let block = id >> BLOCK_SHIFT;
        match self.blocks.iter_mut().rev().take_while(|e| e.0 == block).find(|e| e.1 == source && e.2 == suspicious) {
            Some(entry) => entry.3 += 1,
            None => self.blocks.push((block, source, suspicious, 1)),
        }
        if let Some(ip) = source_ip.filter(|ip| !ip.is_empty()) {
            let e = self.ips.entry(ip.to_string()).or_default();
            e.0 += i64::from(suspicious);
            e.1 += 1;
        }
    }

    /// Writes the increments inside the rows' transaction; rows without an
    /// event time are filed under the hour of `at` (the `created_at` value
    /// they were stamped with, see [`stamp`]).
    pub(super) fn apply_at(&self, tx: &rusqlite::Connection, at: &str) -> rusqlite::Result<()> {
        let mut stmt = tx.prepare_cached(ROLLUP_SQL)?;
        for (hour, source, protocol, suspicious, n) in &self.counts {
            let at = hour.as_deref().unwrap_or(at);
            stmt.execute(params![source.as_str(), protocol.as_str(), label(*suspicious), n, at])?;
        }
        if !self.ips.is_empty() {
            let mut stmt = tx.prepare_cached(SOURCE_IP_SQL)?;
            for (ip, (suspicious, total)) in &self.ips {
                stmt.execute(params![ip, suspicious, total])?;
            }
        }
        let mut stmt = tx.prepare_cached(ID_BLOCK_SQL)?;
        for (block, source, suspicious, n) in &self.blocks {
            stmt.execute(params![block, source.as_str(), label(*suspicious), n])?;
        }
        Ok(())
    }
}
