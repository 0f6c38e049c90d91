//! [`PgStore`]: the pool, the writer task, and every trait of the seam.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bfp_common::wire::Batch;
use tokio::sync::{mpsc, oneshot};

use super::writer::{self, WriteOp};
use super::{csv, outbox, reads, resources};
use crate::error::{Error, Result};
use crate::store::alerts::{Alert, AlertQuery, AlertState, EvaluationPass};
use crate::store::console::{AuditEntry, Console, LockState, NewAuditEntry, SessionPolicy};
use crate::store::decisions::{Decision, DecisionQuery, DeviceBlocks, NewDecision};
use crate::store::outbox::{DestinationCounts, OutboxMessage};
use crate::store::{
    AnalystFeedback, ApiTokenInfo, Bucket, CsvCommit, CsvSender, DeviceId, DeviceInfo, Devices, Feedback,
    FeedbackOutcome, IngestOutcome, Insights, NewApiToken, NewPrediction, Operator, Predictions, ResultsPage,
    ResultsQuery, Role, StorageBytes, Store, Totals, UserInfo, Users, WriterQueue, WriterStats,
};

/// How to open the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgres://user[:password]@host[:port]/database`.
    pub url: String,
    /// Connections this collector keeps open at most (reads, the writer,
    /// CSV uploads). Default: 16.
    pub pool_size: usize,
    /// Most rows one group commit takes. Default: 4096.
    pub max_batch: usize,
    /// Write requests that may wait for the writer before senders are
    /// slowed down (back-pressure). Default: 8192.
    pub queue: usize,
    /// Directory where CSV uploads are staged before they are parsed (on
    /// disk, not a tmpfs). Default: `/var/tmp` where it exists (on disk by
    /// the filesystem hierarchy standard), else the temporary directory.
    pub staging_dir: PathBuf,
}

impl PgConfig {
    /// The defaults above for the database at `url`.
    pub fn new(url: impl Into<String>) -> PgConfig {
        // `/tmp` is often a tmpfs: an upload staged there would sit in memory.
        let var_tmp = Path::new("/var/tmp");
        let staging_dir = if var_tmp.is_dir() { var_tmp.to_path_buf() } else { std::env::temp_dir() };
        PgConfig { url: url.into(), pool_size: 16, max_batch: 4096, queue: 8192, staging_dir }
    }
}

/// The PostgreSQL store: cheap to share behind an `Arc`.
pub struct PgStore {
    pool: deadpool_postgres::Pool,
    tx: mpsc::Sender<WriteOp>,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    stats: Arc<WriterStats>,
    dir: PathBuf,
    /// For the connections holding a destination's advisory lock.
    url: String,
    /// The destinations this collector sends (see `outbox`).
    senders: outbox::Senders,
}

pub(super) type Pool = deadpool_postgres::Pool;
pub(super) type Conn = deadpool_postgres::Object;

/// A pooled connection; an exhausted or broken pool is a store error.
pub(super) async fn conn(pool: &Pool) -> Result<Conn> {
    pool.get().await.map_err(|e| Error::Store(format!("no database connection: {e}")))
}

impl PgStore {
    /// Connects, brings the schema up to [`super::SCHEMA_VERSION`] (safe with
    /// several collectors starting at once) and starts the writer task.
    pub async fn open(config: &PgConfig) -> Result<PgStore> {
        let mut client = super::connect(&config.url).await?;
        super::migrate(&mut client).await?;
        drop(client);
        let pg: tokio_postgres::Config = config
            .url
            .parse()
            .map_err(|e| Error::Config(format!("database URL {}: {e}", super::redact(&config.url))))?;
        let manager = deadpool_postgres::Manager::from_config(
            pg,
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig { recycling_method: deadpool_postgres::RecyclingMethod::Fast },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(config.pool_size.max(2))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::Config(format!("database pool: {e}")))?;
        // One connection now, so a bad URL fails at start-up.
        drop(conn(&pool).await?);
        let stats = Arc::new(WriterStats::default());
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let writer = tokio::spawn(writer::run(pool.clone(), rx, config.max_batch.max(1), stats.clone()));
        Ok(PgStore {
            pool,
            tx,
            writer: Mutex::new(Some(writer)),
            stats,
            dir: config.staging_dir.clone(),
            url: config.url.clone(),
            senders: outbox::Senders::default(),
        })
    }

    async fn send<T>(&self, op: impl FnOnce(oneshot::Sender<Result<T>>) -> WriteOp) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(op(reply)).await.map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    async fn conn(&self) -> Result<Conn> {
        conn(&self.pool).await
    }
}

#[async_trait]
impl Predictions for PgStore {
    async fn insert(&self, rows: Vec<NewPrediction>) -> Result<Vec<i64>> {
        crate::store::model::refuse_csv_rows(&rows)?;
        self.send(|reply| WriteOp::Insert { rows, reply }).await
    }

    async fn begin_csv(&self, model_version: Arc<str>, rows_at_most: u64) -> Result<(CsvSender, CsvCommit)> {
        if self.tx.is_closed() {
            return Err(Error::ShuttingDown);
        }
        csv::begin(self.pool.clone(), model_version, rows_at_most, self.stats.clone()).await
    }

    fn staging_dir(&self) -> &Path {
        &self.dir
    }

    async fn totals(&self) -> Result<Totals> {
        reads::totals(&*self.conn().await?, None, None, None).await
    }

    async fn counters(&self) -> Result<Vec<(String, String, u64)>> {
        reads::counters(&*self.conn().await?).await
    }

    async fn results(&self, q: ResultsQuery) -> Result<ResultsPage> {
        reads::results(&mut *self.conn().await?, &q).await
    }

    async fn insights(&self, bucket: Bucket, until: Option<String>) -> Result<Insights> {
        reads::insights(&mut *self.conn().await?, bucket, until.as_deref()).await
    }

    async fn export_csv(&self, q: ResultsQuery, out: Box<dyn std::io::Write + Send>) -> Result<u64> {
        reads::export(&mut *self.conn().await?, &q, out).await
    }
}

#[async_trait]
impl Devices for PgStore {
    async fn authenticate(&self, token: String) -> Result<Option<DeviceId>> {
        resources::authenticate_device(&*self.conn().await?, &token).await
    }

    async fn devices(&self) -> Result<Vec<DeviceInfo>> {
        resources::list_devices(&*self.conn().await?).await
    }

    async fn add_device(&self, name: String) -> Result<String> {
        resources::add_device(&mut *self.conn().await?, &name).await
    }

    async fn revoke_device(&self, name: String) -> Result<()> {
        resources::revoke_device(&*self.conn().await?, &name).await
    }

    async fn ingest(&self, device: DeviceId, batch: Batch) -> Result<IngestOutcome> {
        let outcome = self.send(|reply| WriteOp::Ingest(Box::new(writer::IngestOp { device, batch, reply }))).await?;
        self.stats.ingested(&outcome);
        Ok(outcome)
    }
}

#[async_trait]
impl AnalystFeedback for PgStore {
    async fn set_feedback(&self, id: i64, label: Feedback, note: Option<String>) -> Result<FeedbackOutcome> {
        let note = crate::store::feedback::clean_note(note)?;
        resources::set_feedback(&mut *self.conn().await?, id, label, note.as_deref()).await
    }

    async fn export_labelled(&self) -> Result<String> {
        resources::export_labelled(&*self.conn().await?).await
    }
}

#[async_trait]
impl crate::store::Alerts for PgStore {
    async fn evaluate_alerts(&self, config: Arc<crate::alerts::AlertConfig>) -> Result<EvaluationPass> {
        resources::evaluate_alerts(&mut *self.conn().await?, &config).await
    }

    async fn alerts(&self, q: AlertQuery) -> Result<Vec<Alert>> {
        resources::list_alerts(&*self.conn().await?, &q).await
    }

    async fn set_alert_state(&self, id: i64, to: AlertState, by: String) -> Result<Alert> {
        resources::set_alert_state(&mut *self.conn().await?, id, to, &by).await
    }

    async fn alert_counts(&self) -> Result<Vec<(String, String, u64)>> {
        resources::alert_counts(&*self.conn().await?).await
    }
}

#[async_trait]
impl crate::store::Outbox for PgStore {
    async fn outbox_head(&self, destination: String, limit: u32, max_attempts: u32) -> Result<Vec<OutboxMessage>> {
        outbox::head(&self.senders, &self.url, &destination, limit, max_attempts).await
    }

    async fn outbox_delivered(&self, row: i64, now: i64) -> Result<()> {
        outbox::delivered(&mut *self.conn().await?, row, now).await
    }

    async fn outbox_failed(&self, row: i64, error: String, next_attempt: i64, now: i64) -> Result<()> {
        outbox::failed(&mut *self.conn().await?, row, &error, next_attempt, now).await
    }

    async fn destination_tested(
        &self,
        destination: String,
        outcome: std::result::Result<(), String>,
        now: i64,
    ) -> Result<()> {
        outbox::tested(&mut *self.conn().await?, &destination, &outcome, now).await
    }

    async fn destination_counts(&self, max_attempts: u32) -> Result<Vec<DestinationCounts>> {
        outbox::counts(&*self.conn().await?, max_attempts).await
    }

    async fn outbox_prune(&self, before: i64, max_attempts: u32) -> Result<u64> {
        outbox::prune(&*self.conn().await?, before, max_attempts).await
    }
}

#[async_trait]
impl Users for PgStore {
    async fn add_user(&self, name: String, role: Role, password_hash: String) -> Result<()> {
        resources::add_user(&*self.conn().await?, &name, role, &password_hash).await
    }

    async fn users(&self) -> Result<Vec<UserInfo>> {
        resources::list_users(&*self.conn().await?).await
    }

    async fn delete_user(&self, name: String) -> Result<()> {
        resources::delete_user(&mut *self.conn().await?, &name).await
    }

    async fn set_password(&self, name: String, password_hash: String) -> Result<()> {
        resources::set_password(&mut *self.conn().await?, &name, &password_hash).await
    }

    async fn user_credentials(&self, name: String) -> Result<Option<(Operator, String)>> {
        resources::credentials(&*self.conn().await?, &name).await
    }

    async fn add_api_token(&self, user: String, expires_at: Option<i64>) -> Result<NewApiToken> {
        resources::add_api_token(&*self.conn().await?, &user, expires_at).await
    }

    async fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>> {
        resources::list_api_tokens(&*self.conn().await?).await
    }

    async fn revoke_api_token(&self, id: i64) -> Result<()> {
        resources::revoke_api_token(&*self.conn().await?, id).await
    }

    async fn authenticate_operator(&self, token: String) -> Result<Option<Operator>> {
        resources::authenticate_operator(&*self.conn().await?, &token).await
    }
}

#[async_trait]
impl crate::store::Decisions for PgStore {
    async fn add_decision(&self, new: NewDecision) -> Result<Decision> {
        resources::add_decision(&*self.conn().await?, &new, unix_now()).await
    }

    async fn decisions(&self, q: DecisionQuery) -> Result<Vec<Decision>> {
        resources::list_decisions(&*self.conn().await?, &q, unix_now()).await
    }

    async fn delete_decision(&self, id: i64, by: String) -> Result<Decision> {
        resources::delete_decision(&*self.conn().await?, id, &by, unix_now()).await
    }

    async fn pushed_decisions(&self, device: DeviceId) -> Result<bfp_common::wire::PushedDecisions> {
        resources::pushed_decisions(&*self.conn().await?, &device, unix_now()).await
    }

    async fn set_device_group(&self, name: String, group: String) -> Result<()> {
        resources::set_group(&*self.conn().await?, &name, &group).await
    }

    async fn device_blocks(&self, name: String) -> Result<DeviceBlocks> {
        resources::device_blocks(&*self.conn().await?, &name).await
    }
}

#[async_trait]
impl Console for PgStore {
    async fn create_session(&self, user_id: i64, policy: SessionPolicy) -> Result<String> {
        resources::create_session(&*self.conn().await?, user_id, policy).await
    }

    async fn session(&self, id: String, policy: SessionPolicy) -> Result<Option<Operator>> {
        resources::session(&*self.conn().await?, &id, policy).await
    }

    async fn end_session(&self, id: String) -> Result<()> {
        resources::end_session(&*self.conn().await?, &id).await
    }

    async fn lock_state(&self, name: String) -> Result<LockState> {
        resources::lock_state(&*self.conn().await?, &name).await
    }

    async fn login_failed(&self, name: String, policy: SessionPolicy) -> Result<LockState> {
        resources::login_failed(&mut *self.conn().await?, &name, policy).await
    }

    async fn login_succeeded(&self, name: String) -> Result<()> {
        resources::login_succeeded(&*self.conn().await?, &name).await
    }

    async fn audit(&self, entry: NewAuditEntry) -> Result<()> {
        resources::audit(&*self.conn().await?, &entry).await
    }

    async fn audit_trail(&self, before_id: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>> {
        resources::audit_trail(&*self.conn().await?, before_id, limit).await
    }
}

#[async_trait]
impl Store for PgStore {
    fn stats(&self) -> &WriterStats {
        &self.stats
    }

    fn writer_queue(&self) -> WriterQueue {
        WriterQueue::of(&self.tx)
    }

    async fn ping_writer(&self) -> Result<()> {
        self.send(WriteOp::Ping).await
    }

    async fn storage_bytes(&self) -> Result<StorageBytes> {
        let row = self.conn().await?.query_one("SELECT pg_database_size(current_database())", &[]).await?;
        Ok(StorageBytes { database: row.get::<_, i64>(0).max(0) as u64, wal: None })
    }

    async fn shutdown(&self) {
        let _ = self.tx.send(WriteOp::Shutdown).await;
        let handle = self.writer.lock().map(|mut h| h.take()).unwrap_or(None);
        if let Some(handle) = handle {
            let _ = handle.await;
        }
        // Other collectors may take this one's destinations over.
        self.senders.release().await;
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bfp_testkit::pg::PgCluster;

    use super::*;
    use crate::store::backends::{fingerprint, prediction};
    use crate::store::{CsvChunk, CsvRow, Source};

    async fn upload(store: &PgStore, rows: Vec<CsvRow>) -> crate::store::CsvSummary {
        let (sender, committed) = store.begin_csv(Arc::from("m1"), rows.len() as u64).await.unwrap();
        let feeder = std::thread::spawn(move || {
            for chunk in rows.chunks(1000) {
                let _ = sender.send(CsvChunk::Rows(chunk.to_vec()));
            }
            let _ = sender.send(CsvChunk::Done);
        });
        let summary = committed.await.unwrap();
        feeder.join().unwrap();
        summary
    }

    /// Rows where `id_chunks` and the sums of `id_blocks` per chunk differ.
    const CHUNKS_DIFFER: &str = "SELECT count(*) FROM (
        (SELECT block >> 6, source, prediction, SUM(n)::int8 FROM id_blocks GROUP BY 1, 2, 3
         EXCEPT SELECT chunk, source, prediction, n FROM id_chunks WHERE n <> 0)
        UNION ALL
        (SELECT chunk, source, prediction, n FROM id_chunks WHERE n <> 0
         EXCEPT SELECT block >> 6, source, prediction, SUM(n)::int8 FROM id_blocks GROUP BY 1, 2, 3)) d";

    /// CSV rows outside an upload's range of `csv_uploads` (or of another
    /// time than its), other rows inside one, and ranges that overlap.
    const UPLOADS_DIFFER: &str = "SELECT
        (SELECT count(*) FROM predictions p WHERE source = 'csv' AND NOT EXISTS (SELECT 1 FROM csv_uploads u
            WHERE p.id BETWEEN u.first_id AND u.last_id AND u.uploaded_at = p.event_at))
        + (SELECT count(*) FROM predictions p JOIN csv_uploads u ON p.id BETWEEN u.first_id AND u.last_id
            WHERE p.source <> 'csv')
        + (SELECT count(*) FROM csv_uploads a JOIN csv_uploads b ON a.first_id < b.first_id AND b.first_id <= a.last_id)";

    /// Event-time counts take CSV rows from their uploads' block counts and
    /// edge blocks: they must equal counting the rows, for uploads that
    /// start and end inside blocks and span whole ones, around other rows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn event_time_counts_equal_counting_the_rows() {
        let cluster = PgCluster::start();
        let store = PgStore::open(&PgConfig::new(cluster.url())).await.unwrap();
        let rows = |n: usize, every: usize| {
            (0..n).map(|i| CsvRow::new(&fingerprint(i % every == 0), i % every == 0, 0.9, &[])).collect()
        };
        let mut old = prediction(Source::Agent, true, Some("pi-1"));
        old.agent.started_at = Some("2026-03-27 13:08:00".into());
        store.insert(vec![old.clone(), prediction(Source::Agent, false, Some("pi-1"))]).await.unwrap();
        upload(&store, rows(5_000, 3)).await;
        store.insert((0..40).map(|i| prediction(Source::Single, i % 2 == 0, None)).collect()).await.unwrap();
        upload(&store, rows(9_000, 4)).await;
        store.insert(vec![old, prediction(Source::Agent, true, Some("pi-1"))]).await.unwrap();
        upload(&store, rows(300, 2)).await;
        let second = |id: i64| {
            cluster.psql(&format!(
                "SELECT to_char(event_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM predictions WHERE id = {id}"
            ))
        };
        let (first, last) = (second(3), second(14_000));
        let hour = format!("{}:00:00", &first[..13]);
        let ranges: Vec<(Option<String>, Option<String>)> = vec![
            (Some(first.clone()), None),
            (None, Some(first.clone())),
            (Some(first.clone()), Some(last.clone())),
            (Some(last.clone()), None),
            (Some("2026-03-27 13:08:00".into()), Some(first.clone())),
            (Some("2020-01-01 00:00:00".into()), Some("2035-06-01 10:30:00".into())),
            (Some(hour.clone()), None),
            (None, Some(hour)),
        ];
        let mut asked = 0;
        for (from, to) in &ranges {
            // (A range of single or CSV rows alone is read on ids.)
            for source in [None, Some(Source::Agent)] {
                for suspicious in [None, Some(true), Some(false)] {
                    let q = ResultsQuery {
                        limit: 1,
                        from: from.clone(),
                        to: to.clone(),
                        source,
                        suspicious,
                        ..ResultsQuery::default()
                    };
                    let mut sql = String::from("SELECT count(*) FROM predictions WHERE true");
                    if let Some(f) = from {
                        sql += &format!(" AND event_at >= (timestamp '{f}' AT TIME ZONE 'UTC')");
                    }
                    if let Some(t) = to {
                        sql += &format!(" AND event_at <= (timestamp '{t}' AT TIME ZONE 'UTC')");
                    }
                    if let Some(s) = source {
                        sql += &format!(" AND source = '{}'", s.as_str());
                    }
                    if let Some(s) = suspicious {
                        sql += &format!(" AND prediction = '{}'", crate::store::model::label(s));
                    }
                    assert_eq!(store.results(q.clone()).await.unwrap().count.to_string(), cluster.psql(&sql), "{q:?}");
                    asked += 1;
                }
            }
        }
        assert_eq!(asked, ranges.len() * 6);
        store.shutdown().await;
    }

    /// A store of schema 16 gets `csv_uploads` found in its rows (one per
    /// upload, whatever lies between them), and CSV rows leave the
    /// event-time index; uploads after keep the table whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn csv_uploads_are_found_in_the_rows_of_an_older_store_and_kept_after() {
        let cluster = PgCluster::start();
        let store = PgStore::open(&PgConfig::new(cluster.url())).await.unwrap();
        let rows = |n: usize| (0..n).map(|i| CsvRow::new(&fingerprint(i % 4 == 0), i % 4 == 0, 0.9, &[])).collect();
        upload(&store, rows(30)).await;
        upload(&store, rows(20)).await; // right after the first: one range each all the same
        store.insert((0..5).map(|i| prediction(Source::Single, i % 2 == 0, None)).collect()).await.unwrap();
        cluster.psql("SELECT bfp_reserve_ids(100)"); // a gap
        upload(&store, rows(7)).await;
        store.insert(vec![prediction(Source::Agent, true, Some("pi-1"))]).await.unwrap();
        upload(&store, rows(1)).await;
        let uploads = "SELECT string_agg(first_id || '-' || last_id, ' ' ORDER BY first_id) FROM csv_uploads";
        let made = cluster.psql(uploads);
        assert_eq!(made, "1-30 31-50 156-162 164-164");
        assert_eq!(cluster.psql(UPLOADS_DIFFER), "0");
        store.shutdown().await;
        // Back to schema 16, as an older collector left it.
        cluster.psql(
            "DROP TABLE csv_uploads; DROP INDEX predictions_event;
             CREATE INDEX predictions_event ON predictions (event_at, id);
             DELETE FROM schema_migrations WHERE version >= 17",
        );
        let store = PgStore::open(&PgConfig::new(cluster.url())).await.unwrap();
        assert_eq!(cluster.psql(uploads), made);
        assert_eq!(cluster.psql(UPLOADS_DIFFER), "0");
        let index = cluster.psql("SELECT indexdef FROM pg_indexes WHERE indexname = 'predictions_event'");
        assert!(index.ends_with("WHERE (source <> 'csv'::text)"), "{index}");
        upload(&store, rows(3)).await;
        store.insert(vec![prediction(Source::Single, true, None)]).await.unwrap();
        assert_eq!(cluster.psql("SELECT count(*) FROM csv_uploads"), "5");
        assert_eq!(cluster.psql(UPLOADS_DIFFER), "0");
        // A CSV row one by one would have no upload: refused.
        let err = store.insert(vec![prediction(Source::Csv, true, None)]).await.unwrap_err();
        assert!(matches!(err, Error::Internal(_)), "{err}");
        store.shutdown().await;
    }

    /// A store of schema 13 gets `id_chunks` summed from its blocks (and
    /// loses the CSV rows' id index), and the trigger keeps them after:
    /// inserts, an upload, a block's count changed, moved and deleted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn id_chunks_are_back_filled_and_follow_the_block_counts() {
        let cluster = PgCluster::start();
        let store = PgStore::open(&PgConfig::new(cluster.url())).await.unwrap();
        store.insert((0..50).map(|i| prediction(Source::Single, i % 2 == 0, None)).collect()).await.unwrap();
        cluster.psql("SELECT bfp_reserve_ids(300000)");
        upload(&store, (0..500).map(|i| CsvRow::new(&fingerprint(i % 3 == 0), i % 3 == 0, 0.9, &[])).collect()).await;
        store.shutdown().await;
        // Back to schema 13, as an older collector left it.
        cluster.psql(
            "DROP TRIGGER id_blocks_chunks ON id_blocks; DROP FUNCTION id_chunks_follow(); DROP TABLE id_chunks;
             CREATE INDEX predictions_csv_id ON predictions (id) WHERE source = 'csv';
             DROP TABLE csv_uploads; DROP INDEX predictions_event;
             CREATE INDEX predictions_event ON predictions (event_at, id);
             DELETE FROM schema_migrations WHERE version >= 14",
        );
        let store = PgStore::open(&PgConfig::new(cluster.url())).await.unwrap();
        assert_eq!(cluster.psql("SELECT count(*) FROM pg_indexes WHERE indexname = 'predictions_csv_id'"), "0");
        assert_eq!(cluster.psql("SELECT sum(n) FROM id_chunks"), "550");
        assert_eq!(cluster.psql(CHUNKS_DIFFER), "0");
        store.insert((0..70).map(|i| prediction(Source::Agent, i % 5 == 0, Some("pi-1"))).collect()).await.unwrap();
        upload(&store, (0..300).map(|_| CsvRow::new(&fingerprint(true), true, 0.9, &[])).collect()).await;
        cluster.psql("UPDATE id_blocks SET n = n + 5 WHERE block = 0 AND source = 'single' AND prediction = 'Normal'");
        cluster
            .psql("UPDATE id_blocks SET block = 200 WHERE block = 0 AND source = 'single' AND prediction = 'Normal'");
        cluster.psql("DELETE FROM id_blocks WHERE source = 'agent' AND prediction = 'Suspicious'");
        assert_eq!(cluster.psql(CHUNKS_DIFFER), "0");
        assert_eq!(cluster.psql("SELECT sum(n) FROM id_chunks"), cluster.psql("SELECT sum(n) FROM id_blocks"));
        store.shutdown().await;
    }

    /// The ids of the page `q` asks for, by walking the rows in SQL.
    async fn walked(cluster: &PgCluster, q: &ResultsQuery) -> Vec<i64> {
        let (filter, _) = reads::filter_sql(q, 3);
        let filter = filter.replace("$3", &format!("'{}'", q.device.clone().unwrap_or_default()));
        let sql = format!(
            "SELECT id FROM predictions WHERE id > {} AND id >= {} AND id <= {} {filter} ORDER BY id LIMIT {} OFFSET {}",
            q.after_id.unwrap_or(0),
            q.min_id.unwrap_or(0),
            q.max_id.unwrap_or(i64::MAX),
            q.limit,
            q.offset
        );
        let client = crate::store::postgres::connect(&cluster.url()).await.unwrap();
        client.query(&sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
    }

    /// A group's insert, count upserts and `COMMIT` go to the server
    /// together: a row the server refuses must still leave nothing of its
    /// group (no row, no count), and the connection must go back to the
    /// pool idle, not inside the aborted transaction.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_the_server_refuses_leaves_no_row_and_no_count_and_its_connection_works() {
        let cluster = PgCluster::start();
        let config = PgConfig { pool_size: 2, ..PgConfig::new(cluster.url()) };
        let store = PgStore::open(&config).await.unwrap();
        store.insert(vec![prediction(Source::Single, true, None)]).await.unwrap();
        let counts = "SELECT (SELECT count(*) FROM predictions) || ' ' || (SELECT sum(n) FROM counters) || ' '
            || (SELECT sum(n) FROM id_blocks) || ' ' || (SELECT sum(n) FROM rollup_hourly)";
        assert_eq!(cluster.psql(counts), "1 1 1 1");
        for _ in 0..3 {
            // PostgreSQL's text holds no NUL byte: the insert fails on the server.
            let mut refused = prediction(Source::Single, false, None);
            refused.model_version = Arc::from("m\0");
            store.insert(vec![prediction(Source::Single, false, None), refused]).await.unwrap_err();
            assert_eq!(cluster.psql(counts), "1 1 1 1");
        }
        // Every pooled connection has been through a refused group: each
        // still takes a new one.
        for _ in 0..4 {
            store.insert(vec![prediction(Source::Single, false, None)]).await.unwrap();
        }
        assert_eq!(cluster.psql(counts), "5 5 5 5");
        assert_eq!(store.totals().await.unwrap().total(), 5);
        store.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn offset_pages_found_by_block_counts_equal_walking_the_rows_with_gaps_in_the_ids() {
        let cluster = PgCluster::start();
        let store = PgStore::open(&PgConfig::new(cluster.url())).await.unwrap();
        let csv = |n: usize, suspicious: &dyn Fn(usize) -> bool| -> Vec<CsvRow> {
            (0..n).map(|i| CsvRow::new(&fingerprint(suspicious(i)), suspicious(i), 0.9, &[])).collect()
        };
        let mixed = |n: usize| -> Vec<NewPrediction> {
            (0..n)
                .map(|i| match i % 3 {
                    0 => prediction(Source::Single, i % 2 == 0, None),
                    _ => prediction(Source::Agent, i % 5 == 0, Some("pi-1")),
                })
                .collect()
        };
        let first = upload(&store, csv(5_000, &|i| i % 7 < 3)).await;
        assert_eq!((first.first_id, first.last_id), (Some(1), Some(5_000)));
        store.insert(mixed(700)).await.unwrap();
        // Ids another collector took and never used: a gap of 3,000.
        cluster.psql("SELECT bfp_reserve_ids(3000)");
        upload(&store, csv(6_000, &|_| true)).await;
        // And a gap of over two chunks of 2^18 ids: the rows after it are a
        // whole chunk that offsets skip by its count in `id_chunks`.
        cluster.psql("SELECT bfp_reserve_ids(600000)");
        store.insert(mixed(300)).await.unwrap();
        upload(&store, csv(7_000, &|i| i % 11 == 0)).await;
        // Blocks holding all their 4,096 ids: an unfiltered page starts in
        // them by arithmetic.
        upload(&store, csv(9_000, &|i| i % 2 == 0)).await;
        let total = 5_000 + 700 + 6_000 + 300 + 7_000 + 9_000;
        assert_eq!(store.totals().await.unwrap().total(), total);
        assert_eq!(cluster.psql("SELECT count(*) FROM predictions"), total.to_string());
        assert_eq!(cluster.psql("SELECT sum(n) FROM id_blocks"), total.to_string());
        assert_eq!(cluster.psql(CHUNKS_DIFFER), "0", "id_chunks sums id_blocks");
        assert_eq!(cluster.psql("SELECT array_agg(DISTINCT chunk ORDER BY chunk) FROM id_chunks"), "{0,2}");

        let mut pages = 0;
        for offset in
            [0, 1, 99, 4_095, 4_096, 4_097, 5_000, 8_191, 8_192, 12_000, 16_000, 18_999, 19_000, 20_500, 24_000, 27_990]
        {
            // (with max_id 13,000 no chunk is whole; without, chunk 2 is.)
            for source in [None, Some(Source::Csv), Some(Source::Single), Some(Source::Agent)] {
                for suspicious in [None, Some(true), Some(false)] {
                    for (after_id, min_id, max_id) in [
                        (None, None, None),
                        (Some(4_000), None, None),
                        (None, Some(3), Some(13_000)),
                        (None, Some(4_000), Some(618_000)),
                    ] {
                        let q = ResultsQuery {
                            limit: 7,
                            offset,
                            after_id,
                            min_id,
                            max_id,
                            source,
                            suspicious,
                            ..ResultsQuery::default()
                        };
                        let page = store.results(q.clone()).await.unwrap();
                        let got: Vec<i64> = page.results.iter().map(|r| r.id).collect();
                        assert_eq!(got, walked(&cluster, &q).await, "{q:?}");
                        // The filtered total: of the id range, whatever the cursor.
                        let (filter, _) = reads::filter_sql(&q, 3);
                        let counted = cluster.psql(&format!(
                            "SELECT count(*) FROM predictions WHERE id >= {} AND id <= {} {filter}",
                            q.min_id.unwrap_or(0),
                            q.max_id.unwrap_or(i64::MAX)
                        ));
                        assert_eq!(page.count.to_string(), counted, "count of {q:?}");
                        pages += 1;
                    }
                }
            }
        }
        assert_eq!(pages, 16 * 4 * 3 * 4);
        for offset in [0, 150, 466, 467, 1_000] {
            let q = ResultsQuery { limit: 5, offset, device: Some("pi-1".into()), ..ResultsQuery::default() };
            let got: Vec<i64> = store.results(q.clone()).await.unwrap().results.iter().map(|r| r.id).collect();
            assert_eq!(got, walked(&cluster, &q).await, "{q:?}");
        }
        store.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_alert_pass_leaves_a_long_upload_to_the_next_tick_without_holding_up_writers() {
        use crate::store::alerts::AlertQuery;
        use crate::store::Alerts;
        let cluster = PgCluster::start();
        let store = Arc::new(PgStore::open(&PgConfig::new(cluster.url())).await.unwrap());
        let text = "[[alert.rule]]\nname = \"brute\"\nreason = \"failed logins\"\n";
        let config = Arc::new(crate::alerts::CollectorConfig::parse(text).unwrap().alert);
        let attempt = || {
            let mut p = prediction(Source::Agent, true, Some("pi-1"));
            p.reasons = vec![crate::store::Reason::Text("6 failed logins from this address".into())];
            p.agent.source_ip = Some("203.0.113.7".into());
            p
        };
        store.insert(vec![attempt(), attempt(), attempt()]).await.unwrap();

        // An upload under way: it holds the write barrier until it commits.
        let (sender, committed) = store.begin_csv(Arc::from("m1"), 10).await.unwrap();
        let committed = tokio::spawn(committed);
        let rows: Vec<CsvRow> = (0..5).map(|_| CsvRow::new(&fingerprint(false), false, 0.9, &[])).collect();
        sender.send(CsvChunk::Rows(rows)).unwrap();
        let held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND mode = 'ShareLock'";
        while cluster.psql(held) == "0" {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;

        // A watcher counts lock requests left waiting while the pass runs.
        let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let watcher = {
            let (url, watching) = (cluster.url(), watching.clone());
            tokio::spawn(async move {
                let client = crate::store::postgres::connect(&url).await.unwrap();
                let mut waited = 0i64;
                while watching.load(std::sync::atomic::Ordering::Relaxed) {
                    let row = client.query_one("SELECT count(*) FROM pg_locks WHERE NOT granted", &[]).await.unwrap();
                    waited = waited.max(row.get(0));
                }
                waited
            })
        };
        let mut skipped = store.evaluate_alerts(config.clone()).await.unwrap();
        skipped.results += store.evaluate_alerts(config.clone()).await.unwrap().results;
        let during = store.insert(vec![attempt()]).await.unwrap();
        watching.store(false, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(watcher.await.unwrap(), 0, "no lock request waited behind the upload");
        assert_eq!(skipped.results, 0, "the passes left the committed rows to a later tick");

        sender.send(CsvChunk::Done).unwrap();
        let upload = committed.await.unwrap().unwrap();
        assert_eq!((upload.first_id, upload.last_id), (Some(4), Some(8)));
        assert_eq!(during, vec![14], "taken after the upload's ten");
        let pass = store.evaluate_alerts(config.clone()).await.unwrap();
        assert_eq!((pass.results, pass.opened), (3 + 5 + 1, 1));
        let alerts = store.alerts(AlertQuery { limit: 10, ..AlertQuery::default() }).await.unwrap();
        assert_eq!((alerts[0].count, alerts[0].last_result_id), (4, 14));
        store.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn alert_passes_of_two_collectors_evaluate_each_result_once_while_both_write() {
        use crate::store::Alerts;
        let cluster = PgCluster::start();
        let a = Arc::new(PgStore::open(&PgConfig::new(cluster.url())).await.unwrap());
        let b = Arc::new(PgStore::open(&PgConfig::new(cluster.url())).await.unwrap());
        let text = "[alert]\nmax_rows_per_pass = 50\n[[alert.rule]]\nname = \"brute\"\nreason = \"failed logins\"\n";
        let config = Arc::new(crate::alerts::CollectorConfig::parse(text).unwrap().alert);
        let attempt = |ip: &str| {
            let mut p = prediction(Source::Agent, true, Some("pi-1"));
            p.reasons = vec![crate::store::Reason::Text("6 failed logins from this address".into())];
            p.agent.source_ip = Some(ip.into());
            p.agent.user = Some("root".into());
            p
        };
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let store = if w % 2 == 0 { a.clone() } else { b.clone() };
                let rows = vec![attempt("203.0.113.7"), attempt("198.51.100.2"), attempt("203.0.113.7")];
                tokio::spawn(async move {
                    for _ in 0..150 {
                        store.insert(rows.clone()).await.unwrap();
                    }
                })
            })
            .collect();
        let evaluators: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|store| {
                let config = config.clone();
                tokio::spawn(async move {
                    let mut seen = 0;
                    for _ in 0..200 {
                        seen += store.evaluate_alerts(config.clone()).await.unwrap().results;
                    }
                    seen
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        let mut evaluated = 0;
        for e in evaluators {
            evaluated += e.await.unwrap();
        }
        loop {
            let pass = a.evaluate_alerts(config.clone()).await.unwrap();
            if pass.results == 0 {
                break;
            }
            evaluated += pass.results;
        }
        let rows = 4 * 150 * 3;
        assert_eq!(evaluated, rows, "every result evaluated once");
        let alerts = a.alerts(crate::store::alerts::AlertQuery { limit: 10, ..Default::default() }).await.unwrap();
        let counts: Vec<(String, u64)> = alerts.iter().map(|x| (x.group_key.clone(), x.count)).collect();
        assert_eq!(counts, [("198.51.100.2".to_string(), rows / 3), ("203.0.113.7".to_string(), 2 * rows / 3)]);
        a.shutdown().await;
        b.shutdown().await;
    }

    /// A CSV upload with `rows` sent, having announced `at_most`; `gap`
    /// runs once the upload has taken its ids, before any row is sent.
    async fn upload_announcing(
        store: &PgStore,
        cluster: &PgCluster,
        rows: Vec<CsvRow>,
        at_most: u64,
        done: bool,
        gap: Option<&str>,
    ) -> crate::error::Result<crate::store::CsvSummary> {
        let last_id = "SELECT coalesce(pg_sequence_last_value('predictions_id_seq'), 0)";
        let before = cluster.psql(last_id);
        let (sender, committed) = store.begin_csv(Arc::from("m1"), at_most).await.unwrap();
        let committed = tokio::spawn(committed);
        if let Some(sql) = gap {
            while cluster.psql(last_id) == before {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            cluster.psql(sql);
        }
        let feeder = std::thread::spawn(move || {
            let _ = sender.send(CsvChunk::Rows(rows));
            if done {
                let _ = sender.send(CsvChunk::Done);
            }
        });
        let result = committed.await.unwrap();
        feeder.join().unwrap();
        result
    }

    /// Ranges commit in any order: an upload takes its ids as it starts and
    /// commits seconds later, while predictions take higher ids and commit
    /// at once. A client following `after_id` must not be handed those
    /// higher ids before the upload's: it would step past the upload's rows
    /// for good.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cursor_page_stops_below_an_upload_still_being_written() {
        let cluster = PgCluster::start();
        let store = PgStore::open(&PgConfig::new(cluster.url())).await.unwrap();
        let single = || vec![prediction(Source::Single, false, None)];
        for _ in 0..3 {
            store.insert(single()).await.unwrap();
        }
        let (sender, committed) = store.begin_csv(Arc::from("m1"), 10).await.unwrap();
        let committed = tokio::spawn(committed);
        let rows: Vec<CsvRow> = (0..5).map(|_| CsvRow::new(&fingerprint(false), false, 0.9, &[])).collect();
        sender.send(CsvChunk::Rows(rows)).unwrap();
        while cluster.psql("SELECT coalesce(pg_sequence_last_value('predictions_id_seq'), 0)") != "13" {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Committed after the upload took 4..=13.
        assert_eq!(store.insert(single()).await.unwrap(), vec![14]);
        let ids = |after: i64| {
            let store = &store;
            async move {
                let q = ResultsQuery { limit: 100, after_id: Some(after), ..ResultsQuery::default() };
                store.results(q).await.unwrap().results.iter().map(|r| r.id).collect::<Vec<i64>>()
            }
        };
        assert_eq!(ids(0).await, vec![1, 2, 3], "14 is held back while 4..=13 may still commit");
        // An offset page is not a cursor: it shows what is committed.
        let q = ResultsQuery { limit: 100, ..ResultsQuery::default() };
        let all: Vec<i64> = store.results(q).await.unwrap().results.iter().map(|r| r.id).collect();
        assert_eq!(all, vec![1, 2, 3, 14]);

        sender.send(CsvChunk::Done).unwrap();
        let summary = committed.await.unwrap().unwrap();
        assert_eq!((summary.first_id, summary.last_id), (Some(4), Some(8)));
        assert_eq!(ids(3).await, vec![4, 5, 6, 7, 8, 14]);
        // An abandoned upload's range closes with its rollback.
        let (sender, committed) = store.begin_csv(Arc::from("m1"), 10).await.unwrap();
        drop(sender);
        assert!(committed.await.is_err());
        assert_eq!(store.insert(single()).await.unwrap(), vec![25]);
        assert_eq!(ids(14).await, vec![25]);
        store.shutdown().await;
    }

    /// A large upload is followed by a quick analyze of the columns the
    /// page plans depend on: the planner's row count, label shares and id
    /// range are current without waiting for autovacuum (off here, to tell
    /// them apart), and the other columns are left to autovacuum.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_upload_refreshes_the_planner_estimates_of_sources_and_labels() {
        let cluster = PgCluster::start();
        let store = PgStore::open(&PgConfig::new(cluster.url())).await.unwrap();
        cluster.psql("ALTER TABLE predictions SET (autovacuum_enabled = false)");
        let stats = "SELECT (SELECT reltuples::int8 FROM pg_class WHERE relname = 'predictions') || ' '
            || (SELECT count(*) FROM pg_stats WHERE tablename = 'predictions'
                AND attname IN ('id', 'event_at', 'source', 'prediction'))
            || ' ' || (SELECT count(*) FROM pg_stats WHERE tablename = 'predictions' AND attname = 'reasons')";
        assert_eq!(cluster.psql(stats), "-1 0 0", "never analyzed");
        upload(&store, (0..9_000).map(|i| CsvRow::new(&fingerprint(i % 3 == 0), i % 3 == 0, 0.9, &[])).collect()).await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(cluster.psql(stats), "-1 0 0", "a small upload leaves it to autovacuum");
        upload(&store, (0..12_000).map(|i| CsvRow::new(&fingerprint(i % 3 == 0), i % 3 == 0, 0.9, &[])).collect())
            .await;
        let mut waited = 0;
        while cluster.psql(stats) != "21000 4 0" {
            assert!(waited < 100, "no analyze after the upload: {}", cluster.psql(stats));
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            waited += 1;
        }
        let shares =
            "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'predictions' AND attname = 'prediction'";
        assert_eq!(cluster.psql(shares), "{Normal,Suspicious}");
        store.shutdown().await;
    }

    #[test]
    fn uploads_are_staged_on_disk_by_default() {
        let config = PgConfig::new("postgres://bfp@db/bfp");
        assert_eq!((config.pool_size, config.max_batch, config.queue), (16, 4096, 8192));
        if Path::new("/var/tmp").is_dir() {
            assert_eq!(config.staging_dir, Path::new("/var/tmp"));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_takes_ids_for_its_lines_up_front_and_gives_back_those_it_did_not_use() {
        let cluster = PgCluster::start();
        let store = PgStore::open(&PgConfig::new(cluster.url())).await.unwrap();
        let csv = |n: usize| -> Vec<CsvRow> {
            (0..n).map(|i| CsvRow::new(&fingerprint(i % 4 == 0), i % 4 == 0, 0.9, &[])).collect()
        };
        let single = || vec![prediction(Source::Single, false, None)];
        let rows = "SELECT count(*) FROM predictions";

        // A bad row (the parser stops): nothing stored; its range stays a
        // gap (given back after the rollback, a cursor reader could have
        // been told it was settled).
        let abandoned = upload_announcing(&store, &cluster, csv(300), 1_000, false, None).await;
        assert!(matches!(abandoned, Err(Error::BadInput(_))), "{abandoned:?}");
        assert_eq!(cluster.psql(rows), "0");
        // The file announced a header line and a blank one more than its rows.
        let first = upload_announcing(&store, &cluster, csv(100), 102, true, None).await.unwrap();
        assert_eq!((first.first_id, first.last_id, first.suspicious), (Some(1_001), Some(1_100), 25));
        assert_eq!(store.insert(single()).await.unwrap(), vec![1_101], "the two unused ids were given back");

        // More rows than announced: refused whole, counts untouched.
        let over = upload_announcing(&store, &cluster, csv(50), 40, true, None).await;
        assert!(matches!(over, Err(Error::Internal(_))), "{over:?}");
        assert_eq!(cluster.psql(rows), "101");
        assert_eq!(store.insert(single()).await.unwrap(), vec![1_102 + 40]);

        // Another writer took ids after the upload's: its unused ids stay a
        // gap, its rows stay contiguous, and every count follows the rows.
        let gapped =
            upload_announcing(&store, &cluster, csv(60), 64, true, Some("SELECT bfp_reserve_ids(5)")).await.unwrap();
        assert_eq!((gapped.first_id, gapped.last_id), (Some(1_143), Some(1_202)));
        assert_eq!(store.insert(single()).await.unwrap(), vec![1_143 + 64 + 5]);
        let total = 100 + 2 + 60 + 1;
        assert_eq!(cluster.psql(rows), total.to_string());
        assert_eq!(store.totals().await.unwrap().total(), total);
        for (what, sql) in [
            ("counters", "SELECT sum(n) FROM counters"),
            ("id blocks", "SELECT sum(n) FROM id_blocks"),
            ("roll-ups", "SELECT sum(n) FROM rollup_hourly"),
        ] {
            assert_eq!(cluster.psql(sql), total.to_string(), "{what}");
        }
        let csv_counts = "SELECT string_agg(prediction || ' ' || n, ', ' ORDER BY prediction) FROM counters
                          WHERE source = 'csv'";
        assert_eq!(cluster.psql(csv_counts), "Normal 120, Suspicious 40");
        let rolled = "SELECT string_agg(protocol || ' ' || prediction || ' ' || n, ', ' ORDER BY prediction)
                      FROM rollup_hourly WHERE source = 'csv'";
        assert_eq!(cluster.psql(rolled), "SSH Normal 120, SSH Suspicious 40");
        store.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_uploads_ids_are_contiguous_while_another_collector_writes() {
        let cluster = PgCluster::start();
        let a = Arc::new(PgStore::open(&PgConfig::new(cluster.url())).await.unwrap());
        let b = Arc::new(PgStore::open(&PgConfig::new(cluster.url())).await.unwrap());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (b, done) = (b.clone(), done.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    b.insert(vec![prediction(Source::Single, false, None)]).await.unwrap();
                    n += 1;
                }
                n
            })
        };
        let mut uploads = Vec::new();
        for _ in 0..3 {
            let rows: Vec<CsvRow> =
                (0..20_000).map(|i| CsvRow::new(&fingerprint(i % 3 == 0), i % 3 == 0, 0.9, &[])).collect();
            uploads.push(upload(&a, rows).await);
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let singles = writer.await.unwrap();
        assert!(singles > 10, "the other collector wrote meanwhile ({singles} rows)");
        for u in uploads {
            let (first, last) = (u.first_id.unwrap(), u.last_id.unwrap());
            assert_eq!(last - first + 1, 20_000);
            let inside = cluster.psql(&format!(
                "SELECT count(*) FILTER (WHERE source = 'csv') || ' ' || count(*) FROM predictions
                 WHERE id BETWEEN {first} AND {last}"
            ));
            assert_eq!(inside, "20000 20000", "only the upload's rows between its first and last id");
        }
        assert_eq!(a.totals().await.unwrap().total(), 60_000 + singles);
        a.shutdown().await;
        b.shutdown().await;
    }
}
