//! The SQLite store (WAL), the zero-set-up default behind the [`Store`]
//! seam.
//!
//! - [`migrations`]: the schema as one numbered ladder, applied at open;
//! - `writer`: the one writer thread and its group commits (predictions,
//!   CSV uploads, ingest; counters, roll-ups and id blocks in the same
//!   transactions), and [`SqliteStore::exclusive`], the one way any other
//!   write reaches it;
//! - `reads`: read-only connections, counters and pages at any depth;
//! - `devices`, `feedback`, `insights`: each resource's SQL.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bfp_common::wire::Batch;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use super::{
    AnalystFeedback, ApiTokenInfo, Bucket, CsvCommit, CsvSender, DeviceId, DeviceInfo, Devices, Feedback,
    FeedbackOutcome, IngestOutcome, Insights, NewApiToken, NewPrediction, Operator, Predictions, ResultsPage,
    ResultsQuery, Role, StorageBytes, Store, Totals, UserInfo, Users, WriterQueue, WriterStats,
};
use crate::error::{Error, Result};
use crate::store::console::{AuditEntry, Console, LockState, NewAuditEntry, SessionPolicy};

mod alerts;
mod console;
mod decisions;
mod devices;
mod feedback;
mod insights;
pub mod migrations;
mod outbox;
mod reads;
mod users;
mod writer;

pub use migrations::SCHEMA_VERSION;
use reads::ReadPool;
use writer::WriteOp;

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
pub struct SqliteConfig {
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

impl SqliteConfig {
    /// The defaults above for a database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> SqliteConfig {
        SqliteConfig {
            path: path.into(),
            synchronous: Synchronous::Full,
            read_connections: 4,
            max_batch: 4096,
            queue: 8192,
        }
    }
}

/// The SQLite store: cheap to share behind an `Arc`.
pub struct SqliteStore {
    tx: mpsc::Sender<WriteOp>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    reads: Arc<ReadPool>,
    stats: Arc<WriterStats>,
    dir: PathBuf,
    /// The alert groups the writer remembers between evaluation passes.
    alert_cache: Arc<Mutex<alerts::AlertCache>>,
    /// The rows the writer hands to the evaluation after its commits.
    alert_tail: Arc<Mutex<alerts::AlertTail>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database, brings its schema up to
    /// [`SCHEMA_VERSION`], and starts the writer thread.
    pub fn open(config: &SqliteConfig) -> Result<SqliteStore> {
        let dir = match config.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        create_private(&dir, &config.path)?;
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
        // Another process (the `device`, `user`, `alerts` and `decisions`
        // commands) may write the file while this one runs: every write
        // transaction here begins IMMEDIATE, so it waits for that process's
        // lock up to this timeout instead of failing at once when a read
        // snapshot it took first can no longer be upgraded (SQLITE_BUSY_SNAPSHOT).
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // 8 MB: bulk inserts only touch the right edge of each b-tree, and a
        // 32 MB cache was no faster for a 1M-row upload but kept the process
        // at ~47 MB resident afterwards instead of ~21 MB (docs/benchmarks.md).
        conn.pragma_update(None, "cache_size", -8_192)?;
        // Room for every statement the writer runs (inserts, counters,
        // roll-ups, ingest, alert passes, outbox marks): with fewer, an
        // alert pass evicts the insert statements and every batch after it
        // prepares them again.
        conn.set_prepared_statement_cache_capacity(64);
        migrations::migrate(&mut conn)?;

        let stats = Arc::new(WriterStats::default());
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let max_batch = config.max_batch.max(1);
        let writer_stats = stats.clone();
        let alert_tail = Arc::new(Mutex::new(alerts::AlertTail::default()));
        let writer_tail = alert_tail.clone();
        let writer = std::thread::Builder::new()
            .name("bfp-writer".into())
            .spawn(move || writer::run(conn, rx, max_batch, &writer_stats, &writer_tail))?;
        let reads = Arc::new(ReadPool {
            path: config.path.clone(),
            idle: Mutex::new(Vec::new()),
            max_idle: config.read_connections.max(1),
        });
        // Open one read connection now so a bad path fails at start-up.
        let first = reads.get()?;
        reads.put(first);
        Ok(SqliteStore {
            tx,
            writer: Mutex::new(Some(writer)),
            reads,
            stats,
            dir,
            alert_cache: Arc::new(Mutex::new(alerts::AlertCache::default())),
            alert_tail,
        })
    }

    /// Sends one operation to the writer and waits for its answer.
    async fn send<T>(&self, op: impl FnOnce(oneshot::Sender<Result<T>>) -> WriteOp) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(op(reply)).await.map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Runs `work` on the writer's connection, between two group commits
    /// (it opens its own transaction if it needs one). Every write that is
    /// not a grouped insert goes this way.
    pub async fn exclusive<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.send(|reply| {
            WriteOp::Exclusive(Box::new(move |conn| {
                let _ = reply.send(work(conn).map_err(Error::into_store));
            }))
        })
        .await
    }
}

#[async_trait]
impl Predictions for SqliteStore {
    async fn insert(&self, rows: Vec<NewPrediction>) -> Result<Vec<i64>> {
        crate::store::model::refuse_csv_rows(&rows)?;
        self.send(|reply| WriteOp::Insert { rows, reply }).await
    }

    // One writer holds the file's write lock for the whole upload: its ids
    // are contiguous without reserving them, so the bound is not needed.
    async fn begin_csv(&self, model_version: Arc<str>, _rows_at_most: u64) -> Result<(CsvSender, CsvCommit)> {
        let (sender, chunks) = std::sync::mpsc::sync_channel(super::model::CSV_QUEUE);
        let (reply, rx) = oneshot::channel();
        self.tx.send(WriteOp::Csv { chunks, model_version, reply }).await.map_err(|_| Error::ShuttingDown)?;
        Ok((sender, Box::pin(async move { rx.await.map_err(|_| Error::ShuttingDown)? })))
    }

    fn staging_dir(&self) -> &Path {
        &self.dir
    }

    async fn totals(&self) -> Result<Totals> {
        self.reads.run(|c| reads::totals(c, &reads::CounterFilter::default())).await
    }

    async fn counters(&self) -> Result<Vec<(String, String, u64)>> {
        self.reads.run(reads::counters).await
    }

    async fn results(&self, q: ResultsQuery) -> Result<ResultsPage> {
        self.reads.run(move |c| reads::results(c, &q)).await
    }

    async fn insights(&self, bucket: Bucket, until: Option<String>) -> Result<Insights> {
        self.reads.run(move |c| insights::insights(c, bucket, until.as_deref())).await
    }

    async fn export_csv(&self, q: ResultsQuery, out: Box<dyn std::io::Write + Send>) -> Result<u64> {
        self.reads.run(move |c| insights::export(c, &q, out)).await
    }
}

#[async_trait]
impl Devices for SqliteStore {
    async fn authenticate(&self, token: String) -> Result<Option<DeviceId>> {
        self.reads.run(move |c| devices::authenticate(c, &token)).await
    }

    async fn devices(&self) -> Result<Vec<DeviceInfo>> {
        self.reads.run(devices::list_devices).await
    }

    async fn add_device(&self, name: String) -> Result<String> {
        self.exclusive(move |conn| devices::add_device(conn, &name)).await
    }

    async fn revoke_device(&self, name: String) -> Result<()> {
        self.exclusive(move |conn| devices::revoke_device(conn, &name)).await
    }

    async fn ingest(&self, device: DeviceId, batch: Batch) -> Result<IngestOutcome> {
        let outcome = self.send(|reply| WriteOp::Ingest(devices::IngestOp { device, batch, reply })).await?;
        self.stats.ingested(&outcome);
        Ok(outcome)
    }
}

#[async_trait]
impl AnalystFeedback for SqliteStore {
    async fn set_feedback(&self, id: i64, label: Feedback, note: Option<String>) -> Result<FeedbackOutcome> {
        let note = super::feedback::clean_note(note)?;
        self.exclusive(move |conn| feedback::apply(conn, id, label, note.as_deref())).await
    }

    async fn export_labelled(&self) -> Result<String> {
        self.reads.run(feedback::export_labelled).await
    }
}

#[async_trait]
impl super::Alerts for SqliteStore {
    async fn evaluate_alerts(&self, config: Arc<crate::alerts::AlertConfig>) -> Result<super::alerts::EvaluationPass> {
        // The rows the writer handed over after its commits, if they are
        // all the pass needs.
        let (cache, tail, cfg) = (self.alert_cache.clone(), self.alert_tail.clone(), config.clone());
        if let Some(pass) = self.exclusive(move |conn| alerts::evaluate_from_memory(conn, &cfg, &cache, &tail)).await? {
            return Ok(pass);
        }
        // Catching up: read (and decode) the page off the writer; only the
        // grouping and its writes take the writer's time.
        let reading = config.clone();
        let page = self.reads.run(move |c| alerts::read_page(c, &reading)).await?;
        let cache = self.alert_cache.clone();
        self.exclusive(move |conn| alerts::evaluate_page(conn, &config, page, &cache)).await
    }

    async fn alerts(&self, q: super::alerts::AlertQuery) -> Result<Vec<super::alerts::Alert>> {
        self.reads.run(move |c| alerts::list(c, &q)).await
    }

    async fn set_alert_state(
        &self,
        id: i64,
        to: super::alerts::AlertState,
        by: String,
    ) -> Result<super::alerts::Alert> {
        let cache = self.alert_cache.clone();
        self.exclusive(move |conn| {
            // A resolved alert groups differently: the next pass reads it anew.
            cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
            alerts::transition(conn, id, to, &by)
        })
        .await
    }

    async fn alert_counts(&self) -> Result<Vec<(String, String, u64)>> {
        self.reads.run(alerts::counts).await
    }
}

#[async_trait]
impl super::Outbox for SqliteStore {
    async fn outbox_head(
        &self,
        destination: String,
        limit: u32,
        max_attempts: u32,
    ) -> Result<Vec<super::outbox::OutboxMessage>> {
        self.reads.run(move |c| outbox::head(c, &destination, limit, max_attempts)).await
    }

    async fn outbox_delivered(&self, row: i64, now: i64) -> Result<()> {
        self.exclusive(move |conn| outbox::delivered(conn, row, now)).await
    }

    async fn outbox_failed(&self, row: i64, error: String, next_attempt: i64, now: i64) -> Result<()> {
        self.exclusive(move |conn| outbox::failed(conn, row, &error, next_attempt, now)).await
    }

    async fn destination_tested(
        &self,
        destination: String,
        outcome: std::result::Result<(), String>,
        now: i64,
    ) -> Result<()> {
        self.exclusive(move |conn| outbox::tested(conn, &destination, &outcome, now)).await
    }

    async fn destination_counts(&self, max_attempts: u32) -> Result<Vec<super::outbox::DestinationCounts>> {
        self.reads.run(move |c| outbox::counts(c, max_attempts)).await
    }

    async fn outbox_prune(&self, before: i64, max_attempts: u32) -> Result<u64> {
        self.exclusive(move |conn| outbox::prune(conn, before, max_attempts)).await
    }
}

#[async_trait]
impl Users for SqliteStore {
    async fn add_user(&self, name: String, role: Role, password_hash: String) -> Result<()> {
        self.exclusive(move |conn| users::add_user(conn, &name, role, &password_hash)).await
    }

    async fn users(&self) -> Result<Vec<UserInfo>> {
        self.reads.run(users::list_users).await
    }

    async fn delete_user(&self, name: String) -> Result<()> {
        self.exclusive(move |conn| users::delete_user(conn, &name)).await
    }

    async fn set_password(&self, name: String, password_hash: String) -> Result<()> {
        self.exclusive(move |conn| users::set_password(conn, &name, &password_hash)).await
    }

    async fn user_credentials(&self, name: String) -> Result<Option<(Operator, String)>> {
        self.reads.run(move |c| users::credentials(c, &name)).await
    }

    async fn add_api_token(&self, user: String, expires_at: Option<i64>) -> Result<NewApiToken> {
        self.exclusive(move |conn| users::add_api_token(conn, &user, expires_at)).await
    }

    async fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>> {
        self.reads.run(users::list_api_tokens).await
    }

    async fn revoke_api_token(&self, id: i64) -> Result<()> {
        self.exclusive(move |conn| users::revoke_api_token(conn, id)).await
    }

    async fn authenticate_operator(&self, token: String) -> Result<Option<Operator>> {
        self.reads.run(move |c| users::authenticate(c, &token)).await
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[async_trait]
impl super::Decisions for SqliteStore {
    async fn add_decision(&self, new: super::decisions::NewDecision) -> Result<super::decisions::Decision> {
        self.exclusive(move |conn| decisions::add(conn, &new, unix_now())).await
    }

    async fn decisions(&self, q: super::decisions::DecisionQuery) -> Result<Vec<super::decisions::Decision>> {
        self.reads.run(move |c| decisions::list(c, &q, unix_now())).await
    }

    async fn delete_decision(&self, id: i64, by: String) -> Result<super::decisions::Decision> {
        self.exclusive(move |conn| decisions::delete(conn, id, &by, unix_now())).await
    }

    async fn pushed_decisions(&self, device: DeviceId) -> Result<bfp_common::wire::PushedDecisions> {
        self.reads.run(move |c| decisions::pushed(c, &device, unix_now())).await
    }

    async fn set_device_group(&self, name: String, group: String) -> Result<()> {
        self.exclusive(move |conn| decisions::set_group(conn, &name, &group)).await
    }

    async fn device_blocks(&self, name: String) -> Result<super::decisions::DeviceBlocks> {
        self.reads.run(move |c| decisions::device_blocks(c, &name)).await
    }
}

#[async_trait]
impl Console for SqliteStore {
    async fn create_session(&self, user_id: i64, policy: SessionPolicy) -> Result<String> {
        self.exclusive(move |conn| console::create_session(conn, user_id, policy)).await
    }

    async fn session(&self, id: String, policy: SessionPolicy) -> Result<Option<Operator>> {
        let found = {
            let id = id.clone();
            self.reads.run(move |c| console::session(c, &id, policy)).await?
        };
        match found {
            Some((op, true)) => {
                self.exclusive(move |conn| console::touch_session(conn, &id)).await?;
                Ok(Some(op))
            }
            Some((op, false)) => Ok(Some(op)),
            None => Ok(None),
        }
    }

    async fn end_session(&self, id: String) -> Result<()> {
        self.exclusive(move |conn| console::end_session(conn, &id)).await
    }

    async fn lock_state(&self, name: String) -> Result<LockState> {
        self.reads.run(move |c| console::lock_state(c, &name)).await
    }

    async fn login_failed(&self, name: String, policy: SessionPolicy) -> Result<LockState> {
        self.exclusive(move |conn| console::login_failed(conn, &name, policy)).await
    }

    async fn login_succeeded(&self, name: String) -> Result<()> {
        self.exclusive(move |conn| console::login_succeeded(conn, &name)).await
    }

    async fn audit(&self, entry: NewAuditEntry) -> Result<()> {
        self.exclusive(move |conn| console::audit(conn, &entry)).await
    }

    async fn audit_trail(&self, before_id: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>> {
        self.reads.run(move |c| console::audit_trail(c, before_id, limit)).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn stats(&self) -> &WriterStats {
        &self.stats
    }

    fn writer_queue(&self) -> WriterQueue {
        WriterQueue::of(&self.tx)
    }

    async fn ping_writer(&self) -> Result<()> {
        // The schema version is in the file's header: a read of the file
        // on the writer's own connection, between two group commits.
        self.exclusive(|conn| Ok(conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?)).await?;
        Ok(())
    }

    async fn storage_bytes(&self) -> Result<StorageBytes> {
        let size = |path: &Path| match std::fs::metadata(path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        };
        let mut wal = self.reads.path.clone().into_os_string();
        wal.push("-wal");
        Ok(StorageBytes { database: size(&self.reads.path)?, wal: Some(size(Path::new(&wal))?) })
    }

    async fn shutdown(&self) {
        let _ = self.tx.send(WriteOp::Shutdown).await;
        let handle = self.writer.lock().map(|mut h| h.take()).unwrap_or(None);
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

#[cfg(test)]
impl SqliteStore {
    /// One CSV upload of `rows` (model version `m1`), as the API's parser
    /// would send it.
    pub(crate) async fn commit_csv_rows(&self, rows: Vec<super::CsvRow>) -> Result<super::CsvSummary> {
        let (sender, committed) = self.begin_csv(Arc::from("m1"), rows.len() as u64).await?;
        let feeder = std::thread::spawn(move || {
            let _ = sender.send(super::CsvChunk::Rows(rows));
            let _ = sender.send(super::CsvChunk::Done);
        });
        let result = committed.await;
        let _ = feeder.join();
        result
    }
}

/// Creates the database's directory (0700) and file (0600) if missing,
/// whatever the umask: the results, tokens' hashes and password hashes are
/// the service user's alone. SQLite gives the WAL and shared-memory files
/// the database file's mode. Existing files and directories keep theirs
/// (the operator chose them).
fn create_private(dir: &Path, file: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
            // The mode given to mkdir is still masked by the umask.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        if !file.exists() {
            match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(file) {
                // Another process created it meanwhile: it chose its mode.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
                other => drop(other?),
            }
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        std::fs::create_dir_all(dir)?;
    }
    Ok(())
}

/// The schema version recorded in a database file (for tests and tools).
pub fn schema_version_of(path: &Path) -> Result<Option<i64>> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0)).optional()?)
}

/// Brings the SQLite file at `path` up to [`SCHEMA_VERSION`] without
/// starting a store (for `migrate-store`, which then reads it).
pub fn upgrade_file(path: &Path) -> Result<()> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    migrations::migrate(&mut conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AgentContext, CsvChunk, CsvRow, CsvSummary, Reason, Source};
    use bfp_common::{Fingerprint, Protocol};
    use std::sync::atomic::Ordering;

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

    /// A store of schema 14 gets `csv_uploads` found in its rows (one per
    /// upload, whatever lies between them), and CSV rows leave the
    /// event-time index; uploads after keep the table whole.
    #[tokio::test]
    async fn csv_uploads_are_found_in_the_rows_of_an_older_store_and_kept_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let rows = |n: usize| -> Vec<CsvRow> {
            (0..n).map(|i| CsvRow::new(&fp(if i % 4 == 0 { 8 } else { 0 }), i % 4 == 0, 0.9, &[])).collect()
        };
        let store = SqliteStore::open(&SqliteConfig::new(&path)).unwrap();
        store.commit_csv_rows(rows(30)).await.unwrap();
        store.commit_csv_rows(rows(20)).await.unwrap();
        store.insert((0..5).map(|i| prediction(Source::Single, i % 2 == 0, None)).collect()).await.unwrap();
        store.commit_csv_rows(rows(7)).await.unwrap();
        store.insert(vec![prediction(Source::Agent, true, Some("pi-1"))]).await.unwrap();
        store.commit_csv_rows(rows(1)).await.unwrap();
        store.shutdown().await;
        let uploads = |c: &Connection| -> Vec<(i64, i64, String)> {
            let mut stmt =
                c.prepare("SELECT first_id, last_id, uploaded_at FROM csv_uploads ORDER BY first_id").unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(|r| r.unwrap()).collect()
        };
        let made = uploads(&Connection::open(&path).unwrap());
        assert_eq!(made.len(), 4, "{made:?}");
        assert_eq!((made[3].0, made[3].1), (64, 64));
        // Back to schema 14, as an older collector left it.
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "DROP TABLE csv_uploads; DROP INDEX predictions_event;
                 CREATE INDEX predictions_event ON predictions (event_at, id); PRAGMA user_version = 14;",
            )
            .unwrap();
        let store = SqliteStore::open(&SqliteConfig::new(&path)).unwrap();
        let c = Connection::open(&path).unwrap();
        // Adjacent uploads of one stamp (within a second) are one run of
        // rows in a store: found as one.
        let joined = made.iter().fold(Vec::<(i64, i64, String)>::new(), |mut v, (a, b, at)| {
            match v.last_mut() {
                Some(last) if last.1 + 1 == *a && last.2 == *at => last.1 = *b,
                _ => v.push((*a, *b, at.clone())),
            }
            v
        });
        assert_eq!(uploads(&c), joined);
        // Every CSV row in one upload of its time, no other row in one.
        let differ: i64 = c
            .query_row(
                "SELECT (SELECT count(*) FROM predictions p WHERE source = 'csv' AND NOT EXISTS (SELECT 1
                    FROM csv_uploads u WHERE p.id BETWEEN u.first_id AND u.last_id AND u.uploaded_at = p.event_at))
                  + (SELECT count(*) FROM predictions p JOIN csv_uploads u ON p.id BETWEEN u.first_id AND u.last_id
                     WHERE p.source <> 'csv')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(differ, 0);
        let index: String =
            c.query_row("SELECT sql FROM sqlite_master WHERE name = 'predictions_event'", [], |r| r.get(0)).unwrap();
        assert!(index.ends_with("WHERE source <> 'csv'"), "{index}");
        store.commit_csv_rows(rows(3)).await.unwrap();
        assert_eq!(uploads(&c).last().map(|u| (u.0, u.1)), Some((65, 67)));
        let err = store.insert(vec![prediction(Source::Csv, true, None)]).await.unwrap_err();
        assert!(matches!(err, Error::Internal(_)), "{err}");
        store.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_answers_pings_among_writes_and_reports_its_queue_and_size() {
        for fresh in crate::store::backends::each().await {
            eprintln!("backend: {}", fresh.name);
            let store = fresh.store.clone();
            let mut tasks = Vec::new();
            for i in 0..60 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    if i % 10 == 0 {
                        store.ping_writer().await.map(|_| 0)
                    } else {
                        store.insert(vec![prediction(Source::Single, false, None)]).await.map(|ids| ids.len())
                    }
                }));
            }
            let mut stored = 0;
            for t in tasks {
                stored += t.await.unwrap().unwrap();
            }
            assert_eq!(stored, 54);
            assert_eq!(store.stats().rows.load(Ordering::Relaxed), 54, "pings store nothing");
            let queue = store.writer_queue();
            assert_eq!(queue.depth, 0);
            assert!(queue.capacity >= 1);
            let size = store.storage_bytes().await.unwrap();
            assert!(size.database > 0);
            assert_eq!(size.wal.is_some(), fresh.name == "sqlite");
            store.shutdown().await;
            assert!(matches!(store.ping_writer().await, Err(Error::ShuttingDown)));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_inserts_are_all_committed_with_counters_in_step() {
        for fresh in crate::store::backends::each().await {
            eprintln!("backend: {}", fresh.name);
            let store = fresh.store.clone();
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
            assert!(page
                .results
                .iter()
                .all(|r| r.source == Source::Agent && r.agent.kind.as_deref() == Some("session")));
            let first = &page.results[0];
            assert_eq!(first.fingerprint.protocol, Protocol::Tor);
            assert_eq!(first.commands.as_deref(), Some(&["ls".to_string()][..]));
            assert_eq!(first.confidence, 0.7);
            // Feature reasons are worded for the row's own fingerprint; text stays text.
            assert!(first.reasons[0].ends_with("failed logins before this session"), "{:?}", first.reasons);
            assert_eq!(first.reasons[1], "new source for this user");
            store.shutdown().await;
            assert!(matches!(
                store.insert(vec![prediction(Source::Single, false, None)]).await,
                Err(Error::ShuttingDown)
            ));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_csv_upload_commits_whole_or_not_at_all_and_survives_reopening() {
        for fresh in crate::store::backends::each().await {
            let (name, store) = (fresh.name, fresh.store.clone());
            let row = |i: usize| {
                let suspicious = i.is_multiple_of(5);
                CsvRow::new(&fp(if suspicious { 8 } else { 0 }), suspicious, 0.9, &[Reason::Feature(3)])
            };

            // A parser that gives up (sender dropped without Done) stores nothing.
            let (sender, committed) = store.begin_csv(Arc::from("m1"), 100).await.unwrap();
            let feeder = std::thread::spawn(move || {
                sender.send(CsvChunk::Rows((0..100).map(row).collect())).unwrap();
            });
            assert!(matches!(committed.await, Err(Error::BadInput(_))), "{name}");
            feeder.join().unwrap();
            assert_eq!(store.totals().await.unwrap(), Totals::default(), "{name}");

            // Chunks of 250 rows: a full multi-row group plus a remainder each
            // (in SQLite); the file announced a line more than its rows.
            const { assert!(writer::CSV_CHUNK < 250 && 250 % writer::CSV_CHUNK != 0) };
            let (sender, committed) = store.begin_csv(Arc::from("m1"), 1001).await.unwrap();
            let feeder = std::thread::spawn(move || {
                for chunk in 0..4 {
                    sender.send(CsvChunk::Rows((chunk * 250..chunk * 250 + 250).map(row).collect())).unwrap();
                }
                sender.send(CsvChunk::Done).unwrap();
            });
            let summary = committed.await.unwrap();
            feeder.join().unwrap();
            // The abandoned upload's ids: none kept in SQLite (its rows were
            // never given ids); in PostgreSQL its reserved range stays a gap
            // (given back after the rollback, a cursor reader could have been
            // told it was settled).
            let first_id = if name == "postgres" { 101 } else { 1 };
            assert_eq!(
                summary,
                CsvSummary {
                    total: 1000,
                    normal: 800,
                    suspicious: 200,
                    first_id: Some(first_id),
                    last_id: Some(first_id + 999)
                },
                "{name}: the abandoned upload's ids"
            );
            store.shutdown().await;
            drop(store);

            if name == "sqlite" {
                assert_eq!(schema_version_of(Path::new(&fresh.db)).unwrap(), Some(SCHEMA_VERSION));
            }
            let store = fresh.reopen().await;
            assert_eq!(store.totals().await.unwrap(), Totals { normal: 800, suspicious: 200 }, "{name}");
            let page = store
                .results(ResultsQuery {
                    limit: 10,
                    after_id: Some(first_id + 994),
                    suspicious: Some(false),
                    ..ResultsQuery::default()
                })
                .await
                .unwrap();
            assert_eq!(page.count, 800, "{name}");
            let ids: Vec<i64> = (first_id + 996..=first_id + 999).collect();
            assert_eq!(page.results.iter().map(|r| r.id).collect::<Vec<_>>(), ids, "{name}");
            assert!(page.results.iter().all(|r| r.source == Source::Csv && r.commands.is_none()), "{name}");
            assert_eq!(page.results[0].reasons, vec!["no failed logins before this session"], "{name}");
            assert_eq!(page.results[0].model_version, "m1", "{name}");
            // One upload, one time stamp (taken as its transaction began).
            let first = store.results(ResultsQuery { limit: 1, ..ResultsQuery::default() }).await.unwrap();
            assert_eq!(first.results[0].id, first_id, "{name}");
            assert_eq!(first.results[0].created_at, page.results[3].created_at, "{name}");
            assert_eq!(
                store.insert(vec![prediction(Source::Single, false, None)]).await.unwrap(),
                vec![first_id + 1000],
                "{name}"
            );
            store.shutdown().await;
        }
    }

    #[tokio::test]
    async fn the_writer_folds_the_wal_back_after_answering_and_keeps_it_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/app.db");
        let store =
            SqliteStore::open(&SqliteConfig { synchronous: Synchronous::Normal, ..SqliteConfig::new(&path) }).unwrap();
        let db_bytes = || std::fs::metadata(&path).unwrap().len();
        let wal_bytes = || std::fs::metadata(path.with_extension("db-wal")).map(|m| m.len()).unwrap_or(0);
        let empty = db_bytes();

        // A large upload (over CHECKPOINT_PAGES of 16 KB) commits into the
        // WAL; the checkpoint follows the reply, before the writer takes its
        // next request.
        let rows: Vec<CsvRow> = (0..250_000).map(|_| CsvRow::new(&fp(0), false, 0.9, &[Reason::Feature(3)])).collect();
        store.commit_csv_rows(rows).await.unwrap();
        store.insert(vec![prediction(Source::Single, false, None)]).await.unwrap();
        assert!(db_bytes() > empty + 250_000 * 40, "rows still only in the WAL: db {} bytes", db_bytes());
        let after_upload = wal_bytes();

        // Thousands of small commits reuse the WAL from its start instead
        // of growing it: it stays within one checkpoint interval.
        for _ in 0..3_000 {
            store.insert(vec![prediction(Source::Single, false, None)]).await.unwrap();
        }
        let interval = (writer::CHECKPOINT_PAGES + 64) * 16_384;
        assert!(wal_bytes() <= after_upload.max(interval), "WAL grew to {} bytes", wal_bytes());
        store.shutdown().await;
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_its_wal_and_directory_are_private_under_umask_022() {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: umask only swaps the process's file-creation mask.
        let previous = unsafe { libc::umask(0o022) };
        let dir = tempfile::tempdir().unwrap();
        let db_dir = dir.path().join("instance");
        let path = db_dir.join("app.db");
        let store = SqliteStore::open(&SqliteConfig::new(&path)).unwrap();
        store.insert(vec![prediction(Source::Single, false, None)]).await.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&db_dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        let wal = path.with_file_name("app.db-wal");
        assert!(wal.exists(), "the WAL exists while the store is open");
        assert_eq!(mode(&wal), 0o600);
        store.shutdown().await;
        unsafe { libc::umask(previous) };
    }

    #[test]
    fn refuses_a_database_from_a_newer_collector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(SqliteStore::open(&SqliteConfig::new(&path)), Err(Error::Config(_))));
    }

    /// The token `testdata/store-v1.sql` gave device `pi-1`.
    const V1_PI_1_TOKEN: &str = "bfp_2335e9d419fb51f1dc7067b81765de93734bbfcb402e277fe944d07cdc9232bf";

    #[tokio::test]
    async fn a_database_made_before_the_ladder_upgrades_with_everything_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(include_str!("../../../testdata/store-v1.sql")).unwrap();
        drop(old);
        assert_eq!(schema_version_of(&path).unwrap(), Some(1));

        let store = SqliteStore::open(&SqliteConfig::new(&path)).unwrap();
        assert_eq!(schema_version_of(&path).unwrap(), Some(SCHEMA_VERSION));
        // The rows, the counters, the roll-ups (not back-filled a second
        // time), the devices with their tokens and sequence numbers, and the
        // analyst's label all survive.
        assert_eq!(store.totals().await.unwrap(), Totals { normal: 4, suspicious: 2 });
        let page = store.results(ResultsQuery { limit: 10, ..ResultsQuery::default() }).await.unwrap();
        assert_eq!(page.results.iter().map(|r| r.id).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(
            page.results[0].analyst.as_ref().map(|a| (a.suspicious, a.note.as_deref())),
            Some((false, Some("admin")))
        );
        let charted: u64 = store
            .insights(crate::store::Bucket::Day, None)
            .await
            .unwrap()
            .over_time
            .iter()
            .map(|s| s.normal + s.suspicious)
            .sum();
        assert_eq!(charted, 6);
        let pi_1 = store.authenticate(V1_PI_1_TOKEN.into()).await.unwrap().expect("pi-1's token still works");
        assert_eq!(pi_1.name, "pi-1");
        let fleet = store.devices().await.unwrap();
        assert_eq!(
            fleet.iter().map(|d| (d.name.as_str(), d.last_seq, d.records)).collect::<Vec<_>>(),
            [("pi-1", 0, 0), ("pi-2", 1, 1)]
        );
        // Block counts still page by offset.
        let q = ResultsQuery { limit: 2, offset: 3, suspicious: Some(false), ..ResultsQuery::default() };
        assert_eq!(store.results(q).await.unwrap().results.iter().map(|r| r.id).collect::<Vec<_>>(), vec![6]);

        // It keeps working: a new row is counted once everywhere.
        store.insert(vec![prediction(Source::Single, true, None)]).await.unwrap();
        assert_eq!(store.totals().await.unwrap().total(), 7);
        store.shutdown().await;
        drop(store);
        let store = SqliteStore::open(&SqliteConfig::new(&path)).unwrap();
        let charted: u64 = store
            .insights(crate::store::Bucket::Day, None)
            .await
            .unwrap()
            .over_time
            .iter()
            .map(|s| s.normal + s.suspicious)
            .sum();
        assert_eq!(charted, 7);
        store.shutdown().await;
    }
}
