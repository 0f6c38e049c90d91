//! The store: every prediction (single, CSV, agent) and the counters that
//! make analytics O(1).
//!
//! This module is the seam between the service and its database: the API
//! layer only sees [`Store`], [`NewPrediction`], [`ResultsQuery`] and the read
//! models below, never SQL, so a PostgreSQL backend can later sit behind the
//! same methods. SQLite (WAL) is the zero-set-up default.
//!
//! Writes: one writer thread owns the only write connection. Requests send
//! their rows over a bounded channel; the writer takes everything queued
//! (up to `max_batch` rows), inserts it in one transaction, updates the
//! counters in that same transaction, commits, and only then answers each
//! request. One commit (one fsync with `synchronous=FULL`) thus serves a whole
//! burst of requests: group commit.
//!
//! A CSV upload is scored and spooled to an anonymous temp file next to the
//! database while it streams in (memory stays flat); only when every row is
//! valid does the writer insert the spool in a single transaction, so a bad
//! row stores nothing.
//!
//! Reads use their own connections (WAL lets them run beside the writer).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bfp_common::{explain, Fingerprint, Protocol};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

pub mod devices;
pub mod feedback;
pub mod insights;

/// Version of the database schema below, kept in SQLite's `user_version`.
/// A later version adds a migration step in `migrate`.
pub const STORE_SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS predictions (
    id               INTEGER PRIMARY KEY,
    created_at       TEXT NOT NULL DEFAULT (datetime('now')),
    source           TEXT NOT NULL CHECK (source IN ('single', 'csv', 'agent')),
    prediction       TEXT NOT NULL CHECK (prediction IN ('Normal', 'Suspicious')),
    confidence       REAL NOT NULL,
    login_hour       INTEGER NOT NULL,
    session_duration REAL NOT NULL,
    commands_count   INTEGER NOT NULL,
    failed_logins    INTEGER NOT NULL,
    protocol         TEXT NOT NULL,
    typing_speed     REAL,
    risky_commands   INTEGER,
    commands         TEXT,
    model_version    TEXT NOT NULL,
    reasons          TEXT NOT NULL, -- JSON list: feature index (worded at read time) or text
    device           TEXT,
    kind             TEXT,
    source_ip        TEXT,
    user             TEXT,
    started_at       TEXT,
    ended_at         TEXT
);
-- Filtered pages walk these in id order, so a page costs the same at any
-- depth however rare the filtered value is. The device index is partial
-- since single and CSV rows have no device and should not pay for it. Only
-- Suspicious rows are indexed by label: the alert view must stay fast when
-- they are rare; a Normal filter walks ids (Normal is the common label), and a
-- full label index would cost every insert about half as much again.
CREATE INDEX IF NOT EXISTS predictions_source_id ON predictions (source, id);
CREATE INDEX IF NOT EXISTS predictions_suspicious_id ON predictions (id) WHERE prediction = 'Suspicious';
CREATE INDEX IF NOT EXISTS predictions_device_id ON predictions (device, id) WHERE device IS NOT NULL;
-- Kept in the same transactions as the rows: analytics and filtered counts
-- read a handful of counter rows instead of counting millions.
CREATE TABLE IF NOT EXISTS counters (
    source     TEXT NOT NULL,
    device     TEXT NOT NULL DEFAULT '',
    prediction TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (source, device, prediction)
) WITHOUT ROWID;
";

const INSERT_SQL: &str = "INSERT INTO predictions (source, prediction, confidence, login_hour, session_duration,
    commands_count, failed_logins, protocol, typing_speed, risky_commands, commands, model_version, reasons, device,
    kind, source_ip, user, started_at, ended_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

// `OR FAIL`: a failing row stops the statement without undoing the rows
// before it, so SQLite keeps no statement journal for these multi-row
// inserts; any failure drops the whole upload's transaction anyway.
const INSERT_CSV_HEAD: &str = "INSERT OR FAIL INTO predictions (created_at, model_version, source, prediction,
    confidence, login_hour, session_duration, commands_count, failed_logins, protocol, typing_speed, risky_commands,
    reasons) VALUES ";

/// Parameters per row of a CSV insert (see [`CsvRow::bind`]).
const CSV_COLUMNS: usize = 10;

/// Parameters shared by every row of a CSV insert: `?1` the upload's time,
/// `?2` the model version (bound once per statement, not per row).
const CSV_SHARED: usize = 2;

/// Rows per multi-row INSERT of a CSV commit: one statement step per chunk
/// instead of per row.
const CSV_CHUNK: usize = 128;

/// `INSERT ... VALUES (?1, ?2, 'csv', ?3, ...), ...` for `rows` rows: the
/// upload's time is stamped once rather than formatted by SQLite per row.
fn csv_insert_sql(rows: usize) -> String {
    let mut sql = String::from(INSERT_CSV_HEAD);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str("(?1, ?2, 'csv'");
        for column in 0..CSV_COLUMNS {
            sql.push_str(&format!(", ?{}", 1 + CSV_SHARED + row * CSV_COLUMNS + column));
        }
        sql.push(')');
    }
    sql
}

const COUNTER_SQL: &str = "INSERT INTO counters (source, device, prediction, n) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (source, device, prediction) DO UPDATE SET n = n + excluded.n";

const SELECT_COLUMNS: &str = "id, created_at, source, prediction, confidence, login_hour, session_duration,
    commands_count, failed_logins, protocol, typing_speed, risky_commands, commands, model_version, reasons, device,
    kind, source_ip, user, started_at, ended_at";

/// Where a prediction came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `POST /api/predict`.
    Single,
    /// `POST /api/predict-csv`.
    Csv,
    /// A fingerprint scored on a device and forwarded by its agent.
    Agent,
}

impl Source {
    /// The stored and public name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Single => "single",
            Source::Csv => "csv",
            Source::Agent => "agent",
        }
    }

    /// Parses `single`, `csv` or `agent`.
    pub fn parse(s: &str) -> Result<Source> {
        match s {
            "single" => Ok(Source::Single),
            "csv" => Ok(Source::Csv),
            "agent" => Ok(Source::Agent),
            other => Err(Error::BadInput(format!("source must be one of single, csv, agent, got {other:?}"))),
        }
    }
}

fn label(suspicious: bool) -> &'static str {
    if suspicious {
        "Suspicious"
    } else {
        "Normal"
    }
}

/// Confidence as stored and answered: 4 decimals, so `0.7` is not
/// `0.699999988` (an `f32` seen as `f64`).
pub fn round_confidence(c: f32) -> f64 {
    (f64::from(c) * 10_000.0).round() / 10_000.0
}

/// One reason of a stored prediction. Reasons the model's contributions give
/// are stored as the feature's index and worded at read time (a few bytes per
/// row instead of a sentence); other reasons (e.g. an agent's novelty
/// findings) are stored as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reason {
    /// A feature of the schema that drove the verdict (index into
    /// `bfp_common::FEATURE_NAMES`).
    Feature(u8),
    /// A sentence, stored as is.
    Text(String),
}

impl Reason {
    /// The reasons of a verdict, strongest first, at most `max`; the same
    /// sentences as `bfp_common::explain::reasons` once worded.
    pub fn from_verdict(fp: &Fingerprint, verdict: &bfp_common::Verdict, max: usize) -> Vec<Reason> {
        let mut out: Vec<Reason> = verdict.top_features(max).map(|(i, _)| Reason::Feature(i as u8)).collect();
        if out.is_empty() {
            out = explain::reasons(fp, verdict, max).into_iter().map(Reason::Text).collect();
        }
        out
    }

    /// Words a list of reasons for the fingerprint they explain.
    pub fn words(reasons: &[Reason], fp: &Fingerprint) -> Vec<String> {
        reasons
            .iter()
            .map(|r| match r {
                Reason::Feature(i) => explain::describe(fp, usize::from(*i)),
                Reason::Text(t) => t.clone(),
            })
            .collect()
    }
}

impl From<&str> for Reason {
    fn from(text: &str) -> Reason {
        Reason::Text(text.to_string())
    }
}

/// What an agent result carries beyond the fingerprint. All optional: single
/// and CSV predictions have none of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentContext {
    /// `session` (one login session) or `source` (one attacking address).
    pub kind: Option<String>,
    /// Remote address of the session or the source.
    pub source_ip: Option<String>,
    /// User name the session logged in as (or tried).
    pub user: Option<String>,
    /// Start of the session, `YYYY-MM-DD HH:MM:SS`.
    pub started_at: Option<String>,
    /// End of the session, `YYYY-MM-DD HH:MM:SS`.
    pub ended_at: Option<String>,
}

/// A scored fingerprint to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPrediction {
    /// Where it came from.
    pub source: Source,
    /// The features that were scored.
    pub fingerprint: Fingerprint,
    /// The verdict.
    pub suspicious: bool,
    /// Probability of the predicted class, in [0.5, 1].
    pub confidence: f32,
    /// The command strings, when the client sent them.
    pub commands: Option<Vec<String>>,
    /// Version of the model that scored it.
    pub model_version: Arc<str>,
    /// Why (see [`Reason`]).
    pub reasons: Vec<Reason>,
    /// Name of the device that sent it (agent results).
    pub device: Option<String>,
    /// Session/source context (agent results).
    pub agent: AgentContext,
}

/// Totals over every stored prediction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Predictions labelled Normal.
    pub normal: u64,
    /// Predictions labelled Suspicious.
    pub suspicious: u64,
}

impl Totals {
    /// All predictions.
    pub fn total(&self) -> u64 {
        self.normal + self.suspicious
    }
}

/// A page request for stored predictions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultsQuery {
    /// Page size (the API clamps it).
    pub limit: u32,
    /// Rows to skip after the cursor (O(offset): prefer `after_id`).
    pub offset: u64,
    /// Keyset cursor: only ids greater than this.
    pub after_id: Option<i64>,
    /// Only this source.
    pub source: Option<Source>,
    /// Only this device.
    pub device: Option<String>,
    /// Only this label (`true` = Suspicious).
    pub suspicious: Option<bool>,
    /// Only ids at least this (e.g. the first row of one CSV upload).
    pub min_id: Option<i64>,
    /// Only ids at most this.
    pub max_id: Option<i64>,
    /// Only rows stored at or after this time (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub from: Option<String>,
    /// Only rows stored at or before this time (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub to: Option<String>,
    /// Only rows an analyst labelled (`true`) or did not (`false`).
    pub labelled: Option<bool>,
}

/// One stored prediction as `/api/results` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPrediction {
    /// Row id, increasing in insertion order.
    pub id: i64,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub created_at: String,
    /// Where it came from.
    pub source: Source,
    /// The verdict.
    pub suspicious: bool,
    /// Probability of the predicted class (4 decimals).
    pub confidence: f64,
    /// The scored features.
    pub fingerprint: Fingerprint,
    /// Command strings, if they were given (a JSON list).
    pub commands: Option<Vec<String>>,
    /// Model version that scored it.
    pub model_version: String,
    /// Reasons in words.
    pub reasons: Vec<String>,
    /// Device name (agent results).
    pub device: Option<String>,
    /// Session/source context (agent results).
    pub agent: AgentContext,
    /// The analyst's label, if one was given (see [`feedback`]).
    pub analyst: Option<feedback::AnalystLabel>,
}

/// A page of stored predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsPage {
    /// Total rows matching the filters (not just this page).
    pub count: u64,
    /// The page, ordered by id.
    pub results: Vec<StoredPrediction>,
}

/// What one CSV upload stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvSummary {
    /// Rows stored.
    pub total: u64,
    /// Of which Normal.
    pub normal: u64,
    /// Of which Suspicious.
    pub suspicious: u64,
    /// Id of the upload's first stored row (`None` for an empty upload). One
    /// upload is one transaction of the only writer, so its ids are
    /// `first_id..=last_id` with no other row between them.
    pub first_id: Option<i64>,
    /// Id of the upload's last stored row.
    pub last_id: Option<i64>,
}

/// SQLite's `synchronous` setting for the write connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Synchronous {
    /// fsync at every commit: a reply means the row survives power loss.
    Full,
    /// fsync at checkpoints only: a reply means the row survives a crash of
    /// the process, not of the machine.
    Normal,
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Database file; its parent directory is created. CSV spools go there too.
    pub path: PathBuf,
    /// Durability of a commit. Default: `Full`.
    pub synchronous: Synchronous,
    /// Idle read connections kept open. Default: 4.
    pub read_connections: usize,
    /// Most rows one group commit takes. Default: 4096.
    pub max_batch: usize,
    /// Write requests that may wait for the writer before senders are
    /// slowed down (back-pressure). Default: 8192.
    pub queue: usize,
}

impl StoreConfig {
    /// The defaults above for a database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            path: path.into(),
            synchronous: Synchronous::Full,
            read_connections: 4,
            max_batch: 4096,
            queue: 8192,
        }
    }
}

/// Counters of the writer, for `/metrics`.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Rows committed.
    pub rows: AtomicU64,
    /// Time spent in committed write transactions, microseconds.
    pub busy_micros: AtomicU64,
    /// Transactions that failed and were rolled back.
    pub failures: AtomicU64,
}

enum WriteOp {
    Insert {
        rows: Vec<NewPrediction>,
        reply: oneshot::Sender<Result<Vec<i64>>>,
    },
    Csv {
        chunks: std::sync::mpsc::Receiver<CsvChunk>,
        model_version: Arc<str>,
        reply: oneshot::Sender<Result<CsvSummary>>,
    },
    Ingest(devices::IngestOp),
    Admin(devices::AdminOp),
    Feedback(feedback::FeedbackOp),
    Shutdown,
}

/// The store handle: cheap to share behind an `Arc`.
pub struct Store {
    tx: mpsc::Sender<WriteOp>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    reads: Arc<ReadPool>,
    stats: Arc<WriterStats>,
    dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database, applies the schema, and
    /// starts the writer thread.
    pub fn open(config: &StoreConfig) -> Result<Store> {
        let dir = match config.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)?;
        let mut conn = Connection::open(&config.path)?;
        // Bigger pages for a new database: fewer b-tree splits and WAL frames
        // per row on bulk inserts. Ignored for an existing file.
        conn.pragma_update(None, "page_size", 16_384)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match config.synchronous {
                Synchronous::Full => "FULL",
                Synchronous::Normal => "NORMAL",
            },
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // 8 MB: bulk inserts only touch the right edge of each b-tree, and a
        // 32 MB cache was no faster for a 1M-row upload but kept the process
        // at ~47 MB resident afterwards instead of ~21 MB (docs/benchmarks.md).
        conn.pragma_update(None, "cache_size", -8_192)?;
        conn.set_prepared_statement_cache_capacity(16);
        migrate(&mut conn)?;
        insights::ensure_schema(&mut conn)?;
        devices::ensure_schema(&mut conn)?;
        feedback::ensure_schema(&mut conn)?;

        let stats = Arc::new(WriterStats::default());
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let max_batch = config.max_batch.max(1);
        let writer_stats = stats.clone();
        let writer = std::thread::Builder::new()
            .name("bfp-writer".into())
            .spawn(move || writer_loop(conn, rx, max_batch, &writer_stats))?;
        let reads = Arc::new(ReadPool {
            path: config.path.clone(),
            idle: Mutex::new(Vec::new()),
            max_idle: config.read_connections.max(1),
        });
        // Open one read connection now so a bad path fails at start-up.
        let first = reads.get()?;
        reads.put(first);
        Ok(Store { tx, writer: Mutex::new(Some(writer)), reads, stats, dir })
    }

    /// Stores predictions atomically (one transaction, grouped with other
    /// requests'), returning their ids once committed.
    pub async fn insert(&self, rows: Vec<NewPrediction>) -> Result<Vec<i64>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(WriteOp::Insert { rows, reply }).await.map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Starts a CSV upload's transaction: the writer stores the rows sent
    /// to the returned sender as they come and commits them all once it gets
    /// [`CsvChunk::Done`], or rolls them all back if the sender is dropped
    /// first. Other writes wait meanwhile, so send from a local file, never
    /// straight from a (possibly slow) client.
    pub async fn begin_csv(
        &self,
        model_version: Arc<str>,
    ) -> Result<(CsvSender, impl std::future::Future<Output = Result<CsvSummary>>)> {
        let (sender, chunks) = std::sync::mpsc::sync_channel(CSV_QUEUE);
        let (reply, rx) = oneshot::channel();
        self.tx.send(WriteOp::Csv { chunks, model_version, reply }).await.map_err(|_| Error::ShuttingDown)?;
        Ok((sender, async move { rx.await.map_err(|_| Error::ShuttingDown)? }))
    }

    /// Directory of the database (where uploads are staged).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Normal/Suspicious totals, from the counters (O(number of counter rows)).
    pub async fn totals(&self) -> Result<Totals> {
        self.reads.run(|c| totals(c, &CounterFilter::default())).await
    }

    /// Counters per (source, prediction), for `/metrics`.
    pub async fn counters(&self) -> Result<Vec<(String, String, u64)>> {
        self.reads
            .run(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT source, prediction, SUM(n) FROM counters GROUP BY source, prediction ORDER BY 1, 2",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    /// One page of stored predictions with the filtered total.
    pub async fn results(&self, q: ResultsQuery) -> Result<ResultsPage> {
        self.reads.run(move |c| results(c, &q)).await
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Finishes every write already queued, commits it, and stops the
    /// writer. Writes sent afterwards fail with [`Error::ShuttingDown`].
    pub async fn shutdown(&self) {
        let _ = self.tx.send(WriteOp::Shutdown).await;
        let handle = self.writer.lock().map(|mut h| h.take()).unwrap_or(None);
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

#[cfg(test)]
impl Store {
    /// One CSV upload of `rows` (model version `m1`), as the API's parser
    /// would send it.
    pub(crate) async fn commit_csv_rows(&self, rows: Vec<CsvRow>) -> Result<CsvSummary> {
        let (sender, committed) = self.begin_csv(Arc::from("m1")).await?;
        let feeder = std::thread::spawn(move || {
            let _ = sender.send(CsvChunk::Rows(rows));
            let _ = sender.send(CsvChunk::Done);
        });
        let result = committed.await;
        let _ = feeder.join();
        result
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > STORE_SCHEMA_VERSION {
        return Err(Error::Config(format!(
            "database schema version {version} is newer than this collector's ({STORE_SCHEMA_VERSION})"
        )));
    }
    let tx = conn.transaction()?;
    if version < 1 {
        tx.execute_batch(SCHEMA_V1)?;
    }
    tx.pragma_update(None, "user_version", STORE_SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

// ---------------------------------------------------------------- writer ---

/// WAL pages after which the writer folds the WAL back into the database
/// (SQLite's own auto-checkpoint threshold).
const CHECKPOINT_PAGES: u64 = 1000;

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteOp>, max_batch: usize, stats: &WriterStats) {
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
                let rows = devices::run_ingests(&mut conn, group);
                account(stats, started, rows);
            }
            WriteOp::Admin(op) => devices::run_admin(&mut conn, op),
            WriteOp::Feedback(op) => feedback::run(&mut conn, op),
            WriteOp::Csv { chunks, model_version, reply } => {
                let started = Instant::now();
                let result = commit_csv(&mut conn, chunks, &model_version);
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
                    Ok(ids) => {
                        account(stats, started, Ok(n as u64));
                        for ((_, reply), ids) in batch.into_iter().zip(ids) {
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
        Ok(rows) => {
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats.rows.fetch_add(rows, Ordering::Relaxed);
            stats.busy_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        Err(()) => {
            stats.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Per-(source, device, label) increments of one transaction.
#[derive(Default)]
struct CounterDelta(Vec<(Source, String, bool, i64)>);

impl CounterDelta {
    fn add(&mut self, source: Source, device: Option<&str>, suspicious: bool, n: i64) {
        let device = device.unwrap_or("");
        match self.0.iter_mut().find(|(s, d, p, _)| *s == source && d == device && *p == suspicious) {
            Some(entry) => entry.3 += n,
            None => self.0.push((source, device.to_string(), suspicious, n)),
        }
    }

    fn apply(&self, tx: &Connection) -> rusqlite::Result<()> {
        let mut stmt = tx.prepare_cached(COUNTER_SQL)?;
        for (source, device, suspicious, n) in &self.0 {
            stmt.execute(params![source.as_str(), device, label(*suspicious), n])?;
        }
        Ok(())
    }
}

type Batch = [(Vec<NewPrediction>, oneshot::Sender<Result<Vec<i64>>>)];

fn insert_batch(conn: &mut Connection, batch: &Batch) -> rusqlite::Result<Vec<Vec<i64>>> {
    let tx = conn.transaction()?;
    let mut delta = CounterDelta::default();
    let mut rollup = insights::RollupDelta::default();
    let mut all = Vec::with_capacity(batch.len());
    for (rows, _) in batch {
        all.push(insert_rows(&tx, rows, &mut delta, &mut rollup)?);
    }
    delta.apply(&tx)?;
    rollup.apply(&tx)?;
    tx.commit()?;
    Ok(all)
}

/// Inserts rows inside `tx`, adding their counts to `delta` and `rollup`
/// (which the caller applies in the same transaction).
fn insert_rows(
    tx: &Connection,
    rows: &[NewPrediction],
    delta: &mut CounterDelta,
    rollup: &mut insights::RollupDelta,
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
        ])?;
        let id = tx.last_insert_rowid();
        ids.push(id);
        delta.add(p.source, p.device.as_deref(), p.suspicious, 1);
        rollup.add(id, p.source, fp.protocol, p.suspicious, p.agent.source_ip.as_deref());
    }
    Ok(ids)
}

// ------------------------------------------------------------ CSV upload ---

/// One scored CSV row, ready to bind. Built by the CSV parser (off the
/// writer thread) so the writer only binds and steps.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow {
    suspicious: bool,
    confidence: f64,
    login_hour: u8,
    duration: f64,
    commands: u32,
    failed_logins: u32,
    protocol: Protocol,
    protocol_name: &'static str,
    typing_speed: Option<f64>,
    risky_commands: Option<u32>,
    reasons: String,
}

impl CsvRow {
    /// A scored fingerprint of a CSV upload.
    pub fn new(fp: &Fingerprint, suspicious: bool, confidence: f32, reasons: &[Reason]) -> CsvRow {
        CsvRow {
            suspicious,
            confidence: round_confidence(confidence),
            login_hour: fp.login_hour,
            duration: f64::from(fp.session_duration_min),
            commands: fp.commands,
            failed_logins: fp.failed_logins,
            protocol: fp.protocol,
            protocol_name: fp.protocol.as_str(),
            typing_speed: fp.typing_speed_wpm.map(f64::from),
            risky_commands: fp.risky_commands,
            reasons: serde_json::to_string(reasons).unwrap_or_else(|_| "[]".into()),
        }
    }

    /// Appends this row's [`CSV_COLUMNS`] parameters in insert order.
    fn bind<'a>(&'a self, args: &mut Vec<&'a dyn rusqlite::ToSql>) {
        args.extend_from_slice(&[
            label_ref(self.suspicious) as &dyn rusqlite::ToSql,
            &self.confidence,
            &self.login_hour,
            &self.duration,
            &self.commands,
            &self.failed_logins,
            &self.protocol_name,
            &self.typing_speed,
            &self.risky_commands,
            &self.reasons,
        ]);
    }
}

fn label_ref(suspicious: bool) -> &'static &'static str {
    if suspicious {
        &"Suspicious"
    } else {
        &"Normal"
    }
}

/// What a CSV parser sends the writer: rows, then `Done` once every row of
/// the file was valid. A parser that stops without `Done` (a bad row, a
/// broken upload) makes the writer roll the whole upload back.
#[derive(Debug)]
pub enum CsvChunk {
    /// The next rows, in file order.
    Rows(Vec<CsvRow>),
    /// The file ended and every row was valid: commit.
    Done,
}

/// The sending side of a CSV upload's transaction (see [`Store::begin_csv`]).
pub type CsvSender = std::sync::mpsc::SyncSender<CsvChunk>;

/// Chunks in flight between a CSV parser and the writer: bounds memory.
const CSV_QUEUE: usize = 4;

fn commit_csv(
    conn: &mut Connection,
    chunks: std::sync::mpsc::Receiver<CsvChunk>,
    model_version: &str,
) -> Result<CsvSummary> {
    let tx = conn.transaction()?;
    let mut totals = Totals::default();
    let mut rollup = insights::RollupDelta::default();
    // Every row of one upload carries the time it started committing.
    let stamp: String = tx.query_row("SELECT datetime('now')", [], |r| r.get(0))?;
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
                    row.bind(&mut args);
                }
                many.execute(&*args)?;
            }
            for row in groups.remainder() {
                let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(CSV_SHARED + CSV_COLUMNS);
                args.extend_from_slice(&[&stamp as &dyn rusqlite::ToSql, &mv]);
                row.bind(&mut args);
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
                rollup.add(id, Source::Csv, row.protocol, row.suspicious, None);
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
    tx.commit()?;
    Ok(CsvSummary { total: totals.total(), normal: totals.normal, suspicious: totals.suspicious, first_id, last_id })
}

// ----------------------------------------------------------------- reads ---

struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl ReadPool {
    fn get(&self) -> Result<Connection> {
        if let Some(c) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(c);
        }
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        c.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(c)
    }

    fn put(&self, c: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.max_idle {
                idle.push(c);
            }
        }
    }

    /// Runs a read on a pooled connection off the async runtime.
    async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let c = pool.get()?;
            let r = f(&c);
            pool.put(c);
            r
        })
        .await
        .map_err(|e| Error::Internal(format!("read task: {e}")))?
    }
}

#[derive(Default)]
struct CounterFilter<'a> {
    source: Option<Source>,
    device: Option<&'a str>,
    suspicious: Option<bool>,
}

fn totals(c: &Connection, f: &CounterFilter<'_>) -> Result<Totals> {
    let mut stmt = c.prepare_cached(
        "SELECT prediction, COALESCE(SUM(n), 0) FROM counters
         WHERE (?1 IS NULL OR source = ?1) AND (?2 IS NULL OR device = ?2) AND (?3 IS NULL OR prediction = ?3)
         GROUP BY prediction",
    )?;
    let mut t = Totals::default();
    let rows = stmt.query_map(params![f.source.map(Source::as_str), f.device, f.suspicious.map(label)], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (prediction, n) = row?;
        match prediction.as_str() {
            "Suspicious" => t.suspicious += n as u64,
            _ => t.normal += n as u64,
        }
    }
    Ok(t)
}

fn results(c: &Connection, q: &ResultsQuery) -> Result<ResultsPage> {
    // One read transaction: the count and the page see the same snapshot.
    let tx = c.unchecked_transaction()?;
    let (filter, mut args) = insights::filter_sql(q, 3);
    // A label filter cannot come from the counters either.
    let (count, lo, hi) = if insights::is_ranged(q) || q.labelled.is_some() {
        // An id or time range: the counters cannot say, count in the range.
        match insights::resolve_range(&tx, q)? {
            Some((lo, hi)) => {
                let blocks = insights::BlockFilter::of(q);
                (insights::range_count(&tx, lo, hi, &filter, &args, blocks)?, lo, hi)
            }
            None => (0, 1, 0),
        }
    } else {
        let f = CounterFilter { source: q.source, device: q.device.as_deref(), suspicious: q.suspicious };
        (totals(&tx, &f)?.total(), 0, i64::MAX)
    };
    let mut after = q.after_id.unwrap_or(0).max(lo - 1);
    if let Some(f) = insights::BlockFilter::of(q).filter(|f| f.source.is_some() || f.suspicious.is_some()) {
        // Nothing matches before the first block that holds a match.
        after = match insights::first_possible_id(&tx, after.saturating_add(1), hi, f)? {
            Some(first) => first - 1,
            None => hi,
        };
    }
    let mut bind: Vec<rusqlite::types::Value> = vec![after.into(), hi.into()];
    bind.append(&mut args);
    bind.push(i64::from(q.limit).into());
    bind.push((q.offset.min(i64::MAX as u64) as i64).into());
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM predictions WHERE id > ?1 AND id <= ?2 {filter} ORDER BY id LIMIT ?{} OFFSET ?{}",
        bind.len() - 1,
        bind.len()
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(bind), row_to_stored)?;
    let mut results = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    drop(stmt);
    feedback::attach(&tx, &mut results)?;
    tx.finish()?;
    Ok(ResultsPage { count, results })
}

fn row_to_stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredPrediction> {
    let bad =
        |i: usize, what: String| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.into());
    let source: String = r.get(2)?;
    let protocol: String = r.get(9)?;
    let commands: Option<String> = r.get(12)?;
    let reasons: String = r.get(14)?;
    let reasons: Vec<Reason> = serde_json::from_str(&reasons).map_err(|e| bad(14, e.to_string()))?;
    let mut stored = StoredPrediction {
        id: r.get(0)?,
        created_at: r.get(1)?,
        source: Source::parse(&source).map_err(|e| bad(2, e.to_string()))?,
        suspicious: r.get::<_, String>(3)? == "Suspicious",
        confidence: r.get(4)?,
        fingerprint: Fingerprint {
            login_hour: r.get(5)?,
            session_duration_min: r.get::<_, f64>(6)? as f32,
            commands: r.get(7)?,
            failed_logins: r.get(8)?,
            protocol: Protocol::parse(&protocol).map_err(|e| bad(9, e.to_string()))?,
            typing_speed_wpm: r.get::<_, Option<f64>>(10)?.map(|v| v as f32),
            risky_commands: r.get(11)?,
        },
        commands: commands.map(|c| serde_json::from_str(&c)).transpose().map_err(|e| bad(12, e.to_string()))?,
        model_version: r.get(13)?,
        reasons: Vec::new(),
        device: r.get(15)?,
        agent: AgentContext {
            kind: r.get(16)?,
            source_ip: r.get(17)?,
            user: r.get(18)?,
            started_at: r.get(19)?,
            ended_at: r.get(20)?,
        },
        analyst: None,
    };
    stored.reasons = Reason::words(&reasons, &stored.fingerprint);
    Ok(stored)
}

/// The schema version recorded in a database file (for tests and tools).
pub fn schema_version_of(path: &Path) -> Result<Option<i64>> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0)).optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(failed: u32) -> Fingerprint {
        Fingerprint {
            login_hour: 3,
            session_duration_min: 5.0,
            commands: 3,
            failed_logins: failed,
            protocol: Protocol::Tor,
            typing_speed_wpm: Some(120.0),
            risky_commands: Some(0),
        }
    }

    fn prediction(source: Source, suspicious: bool, device: Option<&str>) -> NewPrediction {
        NewPrediction {
            source,
            fingerprint: fp(if suspicious { 8 } else { 0 }),
            suspicious,
            confidence: 0.7,
            commands: Some(vec!["ls".into()]),
            model_version: Arc::from("m1"),
            reasons: vec![Reason::Feature(3), Reason::Text("new source for this user".into())],
            device: device.map(str::to_string),
            agent: AgentContext { kind: device.map(|_| "session".to_string()), ..AgentContext::default() },
        }
    }

    fn open(dir: &tempfile::TempDir) -> Store {
        Store::open(&StoreConfig::new(dir.path().join("sub/app.db"))).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_inserts_are_all_committed_with_counters_in_step() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(&dir));
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let source = if i % 10 == 0 { Source::Agent } else { Source::Single };
                let device = (source == Source::Agent).then_some("pi-1");
                store.insert(vec![prediction(source, i % 4 == 0, device)]).await.unwrap()[0]
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 200);
        assert_eq!(store.totals().await.unwrap(), Totals { normal: 150, suspicious: 50 });
        assert_eq!(store.stats().rows.load(Ordering::Relaxed), 200);

        let page = store
            .results(ResultsQuery { limit: 1000, device: Some("pi-1".into()), ..ResultsQuery::default() })
            .await
            .unwrap();
        assert_eq!(page.count, 20);
        assert_eq!(page.results.len(), 20);
        assert!(page.results.iter().all(|r| r.source == Source::Agent && r.agent.kind.as_deref() == Some("session")));
        let first = &page.results[0];
        assert_eq!(first.fingerprint.protocol, Protocol::Tor);
        assert_eq!(first.commands.as_deref(), Some(&["ls".to_string()][..]));
        assert_eq!(first.confidence, 0.7);
        // Feature reasons are worded for the row's own fingerprint; text stays text.
        assert!(first.reasons[0].ends_with("failed logins before this session"), "{:?}", first.reasons);
        assert_eq!(first.reasons[1], "new source for this user");
        store.shutdown().await;
        assert!(matches!(store.insert(vec![prediction(Source::Single, false, None)]).await, Err(Error::ShuttingDown)));
    }

    #[tokio::test]
    async fn a_csv_upload_commits_whole_or_not_at_all_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let row = |i: usize| {
            let suspicious = i.is_multiple_of(5);
            CsvRow::new(&fp(if suspicious { 8 } else { 0 }), suspicious, 0.9, &[Reason::Feature(3)])
        };

        // A parser that gives up (sender dropped without Done) stores nothing.
        let (sender, committed) = store.begin_csv(Arc::from("m1")).await.unwrap();
        let feeder = std::thread::spawn(move || {
            sender.send(CsvChunk::Rows((0..100).map(row).collect())).unwrap();
        });
        assert!(matches!(committed.await, Err(Error::BadInput(_))));
        feeder.join().unwrap();
        assert_eq!(store.totals().await.unwrap(), Totals::default());

        // Chunks of 250 rows: a full multi-row group plus a remainder each.
        const { assert!(CSV_CHUNK < 250 && 250 % CSV_CHUNK != 0) };
        let (sender, committed) = store.begin_csv(Arc::from("m1")).await.unwrap();
        let feeder = std::thread::spawn(move || {
            for chunk in 0..4 {
                sender.send(CsvChunk::Rows((chunk * 250..chunk * 250 + 250).map(row).collect())).unwrap();
            }
            sender.send(CsvChunk::Done).unwrap();
        });
        let summary = committed.await.unwrap();
        feeder.join().unwrap();
        assert_eq!(
            summary,
            CsvSummary { total: 1000, normal: 800, suspicious: 200, first_id: Some(1), last_id: Some(1000) }
        );
        store.shutdown().await;
        drop(store);

        assert_eq!(schema_version_of(&dir.path().join("sub/app.db")).unwrap(), Some(STORE_SCHEMA_VERSION));
        let store = open(&dir);
        assert_eq!(store.totals().await.unwrap(), Totals { normal: 800, suspicious: 200 });
        let page = store
            .results(ResultsQuery {
                limit: 10,
                after_id: Some(995),
                suspicious: Some(false),
                ..ResultsQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.count, 800);
        assert_eq!(page.results.iter().map(|r| r.id).collect::<Vec<_>>(), vec![997, 998, 999, 1000]);
        assert!(page.results.iter().all(|r| r.source == Source::Csv && r.commands.is_none()));
        assert_eq!(page.results[0].reasons, vec!["no failed logins before this session"]);
        assert_eq!(page.results[0].model_version, "m1");
        // One upload, one time stamp (taken as its transaction began).
        let c = Connection::open(dir.path().join("sub/app.db")).unwrap();
        let stamps: i64 = c.query_row("SELECT COUNT(DISTINCT created_at) FROM predictions", [], |r| r.get(0)).unwrap();
        assert_eq!(stamps, 1);
        store.shutdown().await;
    }

    #[tokio::test]
    async fn the_writer_folds_the_wal_back_after_answering_and_keeps_it_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/app.db");
        let store = Store::open(&StoreConfig { synchronous: Synchronous::Normal, ..StoreConfig::new(&path) }).unwrap();
        let db_bytes = || std::fs::metadata(&path).unwrap().len();
        let wal_bytes = || std::fs::metadata(path.with_extension("db-wal")).map(|m| m.len()).unwrap_or(0);
        let empty = db_bytes();

        // A large upload (over CHECKPOINT_PAGES of 16 KB) commits into the
        // WAL; the checkpoint follows the reply, before the writer takes its
        // next request.
        let rows: Vec<CsvRow> = (0..150_000).map(|_| CsvRow::new(&fp(0), false, 0.9, &[Reason::Feature(3)])).collect();
        store.commit_csv_rows(rows).await.unwrap();
        store.insert(vec![prediction(Source::Single, false, None)]).await.unwrap();
        assert!(db_bytes() > empty + 150_000 * 40, "rows still only in the WAL: db {} bytes", db_bytes());
        let after_upload = wal_bytes();

        // Thousands of small commits reuse the WAL from its start instead
        // of growing it: it stays within one checkpoint interval.
        for _ in 0..3_000 {
            store.insert(vec![prediction(Source::Single, false, None)]).await.unwrap();
        }
        let interval = (CHECKPOINT_PAGES + 64) * 16_384;
        assert!(wal_bytes() <= after_upload.max(interval), "WAL grew to {} bytes", wal_bytes());
        store.shutdown().await;
    }

    #[test]
    fn refuses_a_database_from_a_newer_collector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(Store::open(&StoreConfig::new(&path)), Err(Error::Config(_))));
    }
}
