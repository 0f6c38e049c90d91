//! The store seam: everything the routes keep and read goes through the
//! [`Store`] trait, and nothing above it knows which database is behind it.
//!
//! The seam is a small set of traits, one per resource, all async and
//! object-safe so the service holds one `Arc<dyn Store>`:
//!
//! - [`Predictions`]: storing predictions (grouped commits), a CSV upload's
//!   single transaction, the counters behind analytics, pages of results at
//!   any offset or cursor, the dashboard's roll-ups and the scored export;
//! - [`Devices`]: device tokens, the fleet, and idempotent agent ingest;
//! - [`AnalystFeedback`]: analysts' labels and their training export;
//! - [`Users`]: operators, their roles and API tokens;
//! - [`console::Console`]: dashboard sessions, lock-outs, the audit trail;
//! - [`Store`]: all of them plus the writer's statistics and shutdown.
//!
//! The values crossing it ([`model`], [`devices`], [`feedback`],
//! [`insights`]) are plain Rust types; no driver type appears above it.
//! [`sqlite`] is the implementation (and the zero-set-up default); a new
//! backend implements the same traits, and a new resource (users, alerts)
//! adds a trait here, a supertrait of [`Store`], with its tables appended to
//! each backend's migration ladder.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bfp_common::wire::Batch;
use futures_util::future::BoxFuture;

use crate::error::Result;

pub mod alerts;
pub mod console;
pub mod decisions;
pub mod devices;
pub mod feedback;
pub mod insights;
pub mod model;
pub mod outbox;
pub mod postgres;
pub mod sqlite;
pub mod users;

pub use devices::{DeviceId, DeviceInfo, IngestOutcome};
pub use feedback::{Feedback, FeedbackOutcome};
pub use insights::{Bucket, Insights};
pub use model::{
    round_confidence, AgentContext, CsvChunk, CsvRow, CsvSender, CsvSummary, HourlySplit, NewPrediction, Order, Reason,
    ResultsPage, ResultsQuery, Source, StorageBytes, StoredPrediction, TimeField, Totals, WriterQueue, WriterStats,
};
pub use users::{ApiTokenInfo, NewApiToken, Operator, Role, UserInfo, Users};

/// Resolves once a CSV upload's transaction has committed (or rolled back).
pub type CsvCommit = BoxFuture<'static, Result<CsvSummary>>;

/// Stored predictions and what is read from them.
#[async_trait]
pub trait Predictions: Send + Sync {
    /// Stores predictions atomically (one transaction, grouped with other
    /// requests'), returning their ids once committed.
    async fn insert(&self, rows: Vec<NewPrediction>) -> Result<Vec<i64>>;

    /// Starts a CSV upload's transaction: the store keeps the rows sent to
    /// the returned sender as they come and commits them all once it gets
    /// [`CsvChunk::Done`], or rolls them all back if the sender is dropped
    /// first. Other writes may wait meanwhile, so send from a local file,
    /// never straight from a (possibly slow) client. `rows_at_most` bounds
    /// the rows that will be sent (the file's lines; PostgreSQL takes that
    /// many ids up front): more is an error that rolls the upload back.
    async fn begin_csv(&self, model_version: Arc<str>, rows_at_most: u64) -> Result<(CsvSender, CsvCommit)>;

    /// A directory on the collector's disk (not a tmpfs) where uploads are
    /// staged before they are parsed.
    fn staging_dir(&self) -> &Path;

    /// Normal/Suspicious totals over every stored prediction, from counters
    /// (never a count of the rows).
    async fn totals(&self) -> Result<Totals>;

    /// Stored predictions per (source, label), for `/metrics`.
    async fn counters(&self) -> Result<Vec<(String, String, u64)>>;

    /// One page of stored predictions with the filtered total; fast at any
    /// `offset` or `after_id`.
    async fn results(&self, q: ResultsQuery) -> Result<ResultsPage>;

    /// What the analytics page charts; the over-time window ends at the
    /// bucket holding `until` (`YYYY-MM-DD HH:MM:SS`, event time), else at
    /// the latest event stored.
    async fn insights(&self, bucket: Bucket, until: Option<String>) -> Result<Insights>;

    /// Writes the predictions matching `q` (its filters and ranges; paging
    /// ignored) to `out` as scored CSV, in id order, from one snapshot.
    /// Returns the rows written.
    async fn export_csv(&self, q: ResultsQuery, out: Box<dyn Write + Send>) -> Result<u64>;
}

/// Devices (agents), their tokens, and their batches.
#[async_trait]
pub trait Devices: Send + Sync {
    /// The active device holding `token`, if any.
    async fn authenticate(&self, token: String) -> Result<Option<DeviceId>>;

    /// The fleet, by name.
    async fn devices(&self) -> Result<Vec<DeviceInfo>>;

    /// Creates a device (or re-keys a revoked one, keeping its history);
    /// returns its token, which the store does not keep.
    async fn add_device(&self, name: String) -> Result<String>;

    /// Revokes a device: its token stops working at once.
    async fn revoke_device(&self, name: String) -> Result<()>;

    /// Stores a device's batch: its records and its heartbeat in one
    /// transaction, or only the heartbeat if the batch was stored before.
    async fn ingest(&self, device: DeviceId, batch: Batch) -> Result<IngestOutcome>;
}

/// Analysts' labels on stored predictions.
#[async_trait]
pub trait AnalystFeedback: Send + Sync {
    /// Records (or clears) an analyst's feedback on prediction `id`;
    /// [`crate::Error::NotFound`] if no such prediction exists.
    async fn set_feedback(&self, id: i64, feedback: Feedback, note: Option<String>) -> Result<FeedbackOutcome>;

    /// Every labelled prediction as CSV (see [`feedback::LABELLED_HEADER`]),
    /// in id order.
    async fn export_labelled(&self) -> Result<String>;
}

/// Alerts raised from stored results by the operator's rules.
#[async_trait]
pub trait Alerts: Send + Sync {
    /// Reads the results stored since the last pass (at most
    /// `config.max_rows_per_pass`) and opens or grows alerts as the rules
    /// say, moving the cursor in the same transaction.
    async fn evaluate_alerts(&self, config: Arc<crate::alerts::AlertConfig>) -> Result<alerts::EvaluationPass>;

    /// Alerts, newest first.
    async fn alerts(&self, q: alerts::AlertQuery) -> Result<Vec<alerts::Alert>>;

    /// Moves an alert to `to` on behalf of `by`; [`crate::Error::NotFound`]
    /// for an unknown id, [`crate::Error::Conflict`] for a move backwards.
    async fn set_alert_state(&self, id: i64, to: alerts::AlertState, by: String) -> Result<alerts::Alert>;

    /// Alerts per (rule, state).
    async fn alert_counts(&self) -> Result<Vec<(String, String, u64)>>;
}

/// The notification outbox: rows are written by
/// [`Alerts::evaluate_alerts`] in the pass's own transaction (one per
/// destination named in `AlertConfig::notify`); the delivery task reads and
/// marks them here.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// The oldest undelivered messages of `destination`, at most `limit`, in
    /// row order (due or not: the caller stops at the first not yet due, so
    /// one destination's messages go out in order). Messages already tried
    /// `max_attempts` times are dead and left out: the queue moves on.
    async fn outbox_head(
        &self,
        destination: String,
        limit: u32,
        max_attempts: u32,
    ) -> Result<Vec<outbox::OutboxMessage>>;

    /// Marks row `row` delivered at `now` (seconds since the epoch).
    async fn outbox_delivered(&self, row: i64, now: i64) -> Result<()>;

    /// Records a failed attempt on row `row`: its error, one more attempt,
    /// and the time of the next.
    async fn outbox_failed(&self, row: i64, error: String, next_attempt: i64, now: i64) -> Result<()>;

    /// Records the outcome of a test message sent to `destination`.
    async fn destination_tested(
        &self,
        destination: String,
        outcome: std::result::Result<(), String>,
        now: i64,
    ) -> Result<()>;

    /// Counts and last outcomes per destination that has any; a message
    /// tried `max_attempts` times counts as dead, not pending.
    async fn destination_counts(&self, max_attempts: u32) -> Result<Vec<outbox::DestinationCounts>>;

    /// Deletes delivered messages delivered before `before`, and dead ones
    /// (tried `max_attempts` times) created before it (seconds since the
    /// epoch). Returns the rows deleted.
    async fn outbox_prune(&self, before: i64, max_attempts: u32) -> Result<u64>;
}

/// Decisions (blocks pushed to a device group), device groups, and the
/// blocks devices report.
#[async_trait]
pub trait Decisions: Send + Sync {
    /// Stores a checked decision; it is in force from now.
    async fn add_decision(&self, new: decisions::NewDecision) -> Result<decisions::Decision>;

    /// Decisions, newest first.
    async fn decisions(&self, q: decisions::DecisionQuery) -> Result<Vec<decisions::Decision>>;

    /// Revokes a decision; [`crate::Error::NotFound`] for an unknown id,
    /// [`crate::Error::Conflict`] for one deleted already.
    async fn delete_decision(&self, id: i64, by: String) -> Result<decisions::Decision>;

    /// The decisions in force for `device`'s group, as agents fetch them.
    async fn pushed_decisions(&self, device: DeviceId) -> Result<bfp_common::wire::PushedDecisions>;

    /// Puts a device in a group; [`crate::Error::NotFound`] for an unknown
    /// device.
    async fn set_device_group(&self, name: String, group: String) -> Result<()>;

    /// What a device last reported of its blocks; [`crate::Error::NotFound`]
    /// for an unknown device.
    async fn device_blocks(&self, name: String) -> Result<decisions::DeviceBlocks>;
}

/// The whole store, as the service holds it (`Arc<dyn Store>`).
#[async_trait]
pub trait Store:
    Predictions + Devices + AnalystFeedback + Alerts + Outbox + Users + Decisions + console::Console
{
    /// The writer's counters.
    fn stats(&self) -> &WriterStats;

    /// Requests queued for the writer now, and the queue's capacity (a
    /// full queue makes requests wait before they are even grouped).
    fn writer_queue(&self) -> WriterQueue;

    /// A round trip through the writer and the database: queued behind the
    /// writes waiting, answered once the writer has run a query. What
    /// `/health` waits for (with a timeout).
    async fn ping_writer(&self) -> Result<()>;

    /// Bytes the database takes on disk (and SQLite's WAL).
    async fn storage_bytes(&self) -> Result<StorageBytes>;

    /// Finishes every write already queued, commits it, and stops taking
    /// writes: later ones fail with [`crate::Error::ShuttingDown`].
    async fn shutdown(&self);
}

/// Opens a SQLite store (creating and migrating it as needed).
pub fn open(config: &sqlite::SqliteConfig) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(sqlite::SqliteStore::open(config)?))
}

/// Which backend a `--db` value names, with that backend's settings.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// A SQLite file (any value that is not a PostgreSQL URL).
    Sqlite(sqlite::SqliteConfig),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(postgres::PgConfig),
}

impl StoreConfig {
    /// The backend `db` names, with its defaults.
    pub fn for_db(db: &str) -> StoreConfig {
        if postgres::is_postgres_url(db) {
            StoreConfig::Postgres(postgres::PgConfig::new(db))
        } else {
            StoreConfig::Sqlite(sqlite::SqliteConfig::new(db))
        }
    }

    /// `db` as logs may show it (a URL's password hidden).
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::Sqlite(c) => c.path.display().to_string(),
            StoreConfig::Postgres(c) => postgres::redact(&c.url),
        }
    }
}

/// Opens the store `config` names, creating and migrating it as needed: the
/// one way the service and every command taking `--db` open either backend.
pub async fn connect(config: &StoreConfig) -> Result<Arc<dyn Store>> {
    match config {
        StoreConfig::Sqlite(c) => open(c),
        StoreConfig::Postgres(c) => Ok(Arc::new(postgres::PgStore::open(c).await?)),
    }
}

/// [`connect`] with the defaults for `db` (a SQLite path or a PostgreSQL URL).
pub async fn open_db(db: &str) -> Result<Arc<dyn Store>> {
    connect(&StoreConfig::for_db(db)).await
}

/// The store's behaviour tests run against every backend: a fresh store of
/// each, SQLite (a temporary file) then PostgreSQL (a throw-away cluster).
#[cfg(test)]
pub(crate) mod backends {
    use std::sync::Arc;

    use super::{CsvChunk, CsvRow, CsvSummary, Store};
    use crate::error::Result;

    /// A fingerprint of 14:00, 2.5 minutes and 3 commands by SSH; with 8 failed
    /// logins when `suspicious`.
    pub(crate) fn fingerprint(suspicious: bool) -> bfp_common::Fingerprint {
        bfp_common::Fingerprint {
            login_hour: 14,
            session_duration_min: 2.5,
            commands: 3,
            failed_logins: if suspicious { 8 } else { 0 },
            protocol: bfp_common::Protocol::Ssh,
            typing_speed_wpm: Some(40.0),
            risky_commands: Some(0),
        }
    }

    /// A row of `source` with [`fingerprint`], confidence 0.75, no reasons.
    pub(crate) fn prediction(source: super::Source, suspicious: bool, device: Option<&str>) -> super::NewPrediction {
        super::NewPrediction {
            source,
            fingerprint: fingerprint(suspicious),
            suspicious,
            confidence: 0.75,
            commands: None,
            model_version: Arc::from("m1"),
            reasons: vec![],
            device: device.map(str::to_string),
            agent: super::AgentContext::default(),
        }
    }

    /// An agent's row of 6 failed logins as `root` from `ip` on `pi-1`,
    /// Suspicious: what the alert and notification tests group.
    pub(crate) fn failed_login_attempt(ip: &str) -> super::NewPrediction {
        super::NewPrediction {
            source: super::Source::Agent,
            fingerprint: bfp_common::Fingerprint {
                login_hour: 3,
                session_duration_min: 0.0,
                commands: 0,
                failed_logins: 6,
                protocol: bfp_common::Protocol::Ssh,
                typing_speed_wpm: None,
                risky_commands: None,
            },
            suspicious: true,
            confidence: 0.95,
            commands: None,
            model_version: Arc::from("m1"),
            reasons: vec![super::Reason::Text("6 failed logins".into())],
            device: Some("pi-1".into()),
            agent: super::AgentContext {
                source_ip: Some(ip.into()),
                user: Some("root".into()),
                ..super::AgentContext::default()
            },
        }
    }

    /// One fresh, empty store; its file or cluster goes when it is dropped.
    pub(crate) struct Fresh {
        /// `sqlite` or `postgres`, for failure messages.
        pub name: &'static str,
        /// The store.
        pub store: Arc<dyn Store>,
        /// Its `--db`: the file's path or the database's URL.
        pub db: String,
        _dir: tempfile::TempDir,
        _cluster: Option<bfp_testkit::pg::PgCluster>,
    }

    /// A fresh store of each backend.
    pub(crate) async fn each() -> Vec<Fresh> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.db").to_string_lossy().into_owned();
        let sqlite = super::connect(&super::StoreConfig::for_db(&file)).await.unwrap();
        let cluster = bfp_testkit::pg::PgCluster::start();
        let pg = super::connect(&super::StoreConfig::for_db(&cluster.url())).await.unwrap();
        vec![
            Fresh { name: "sqlite", store: sqlite, db: file, _dir: dir, _cluster: None },
            Fresh {
                name: "postgres",
                store: pg,
                db: cluster.url(),
                _dir: tempfile::tempdir().unwrap(),
                _cluster: Some(cluster),
            },
        ]
    }

    impl Fresh {
        /// The same store opened again (after [`Store::shutdown`]), as a
        /// restarted collector opens it.
        pub(crate) async fn reopen(&self) -> Arc<dyn Store> {
            super::connect(&super::StoreConfig::for_db(&self.db)).await.unwrap()
        }

        /// The one integer `sql` (a statement both backends read alike)
        /// answers, from a connection of its own.
        pub(crate) async fn count(&self, sql: &str) -> i64 {
            if self._cluster.is_some() {
                let client = super::postgres::connect(&self.db).await.unwrap();
                client.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
            } else {
                let conn = rusqlite::Connection::open(&self.db).unwrap();
                conn.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        }

        /// Runs `sql` (statements both backends take alike) on the store.
        pub(crate) async fn execute(&self, sql: &str) {
            if self._cluster.is_some() {
                let client = super::postgres::connect(&self.db).await.unwrap();
                client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            } else {
                let conn = rusqlite::Connection::open(&self.db).unwrap();
                conn.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }
    }

    /// `at` (`YYYY-MM-DD HH:MM:SS`, UTC) as a literal both backends compare
    /// with `event_at` and `rollup_hourly.hour` alike.
    pub(crate) fn time_literal(fresh: &Fresh, at: &str) -> String {
        if fresh._cluster.is_some() {
            format!("(timestamp '{at}' AT TIME ZONE 'UTC')")
        } else {
            format!("'{at}'")
        }
    }

    /// One CSV upload of `rows` (model version `m1`), as the API's parser
    /// would send it.
    pub(crate) async fn commit_csv_rows(store: &dyn Store, rows: Vec<CsvRow>) -> Result<CsvSummary> {
        let (sender, committed) = store.begin_csv(Arc::from("m1"), rows.len() as u64).await?;
        let feeder = std::thread::spawn(move || {
            let _ = sender.send(CsvChunk::Rows(rows));
            let _ = sender.send(CsvChunk::Done);
        });
        let result = committed.await;
        let _ = feeder.join();
        result
    }

    #[cfg(test)]
    mod tests {
        use bfp_common::Protocol;

        use super::*;
        use crate::store::devices::format_unix;
        use crate::store::{ResultsQuery, Source};

        /// 2026-03-27 00:00:00 UTC.
        const MARCH_27: i64 = 1_774_569_600;

        /// `q`'s count as a plain `COUNT(*)` over the rows.
        async fn counted(fresh: &Fresh, q: &ResultsQuery) -> i64 {
            let mut sql = String::from("SELECT COUNT(*) FROM predictions WHERE 1 = 1");
            if let Some(f) = &q.from {
                sql.push_str(&format!(" AND event_at >= {}", time_literal(fresh, f)));
            }
            if let Some(t) = &q.to {
                sql.push_str(&format!(" AND event_at <= {}", time_literal(fresh, t)));
            }
            if let Some(s) = q.source {
                sql.push_str(&format!(" AND source = '{}'", s.as_str()));
            }
            if let Some(s) = q.suspicious {
                sql.push_str(if s { " AND prediction = 'Suspicious'" } else { " AND prediction = 'Normal'" });
            }
            fresh.count(&sql).await
        }

        /// Adds `n` to the roll-up of agent SSH Suspicious rows in `hour`.
        async fn bump_rollup(fresh: &Fresh, hour: &str, n: i64) {
            let row = format!(
                "hour = {} AND source = 'agent' AND protocol = 'SSH' AND prediction = 'Suspicious'",
                time_literal(fresh, hour)
            );
            let found = fresh.count(&format!("SELECT COUNT(*) FROM rollup_hourly WHERE {row}")).await;
            assert_eq!(found, 1, "a roll-up row at {hour}");
            fresh.execute(&format!("UPDATE rollup_hourly SET n = n + {n} WHERE {row}")).await;
        }

        /// An event-time range's count equals counting its rows, for random
        /// ranges and filters over agent events spread across three days
        /// (with single and CSV rows stored now); and its whole hours come
        /// from the roll-ups, only its two edge hours from the rows.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn event_time_counts_take_whole_hours_from_the_roll_ups() {
            let mut rng = fastrand::Rng::with_seed(15);
            for fresh in each().await {
                let (name, store) = (fresh.name, &fresh.store);
                let protocols = [Protocol::Ssh, Protocol::Https, Protocol::Ftp, Protocol::Tor];
                for _ in 0..6 {
                    let rows: Vec<_> = (0..400)
                        .map(|_| {
                            let mut p = prediction(Source::Agent, rng.bool(), Some("pi-1"));
                            p.fingerprint.protocol = protocols[rng.usize(..protocols.len())];
                            p.agent.started_at = Some(format_unix(MARCH_27 + rng.i64(0..72 * 3_600)));
                            p
                        })
                        .collect();
                    store.insert(rows).await.unwrap();
                }
                // Events at the very edges of hours.
                let edges: Vec<_> = [0, 3_599, 3_600, 7_199, 36 * 3_600, 36 * 3_600 - 1]
                    .iter()
                    .map(|s| {
                        let mut p = prediction(Source::Agent, true, Some("pi-1"));
                        p.agent.started_at = Some(format_unix(MARCH_27 + s));
                        p
                    })
                    .collect();
                store.insert(edges).await.unwrap();
                store.insert((0..50).map(|i| prediction(Source::Single, i % 3 == 0, None)).collect()).await.unwrap();
                let csv = (0..200).map(|i| CsvRow::new(&fingerprint(i % 4 == 0), i % 4 == 0, 0.9, &[])).collect();
                commit_csv_rows(&**store, csv).await.unwrap();

                // A time within the three days (and a little outside), on an
                // hour, a second before one, or anywhere.
                let time = |rng: &mut fastrand::Rng| {
                    let hour = MARCH_27 + rng.i64(-2..75) * 3_600;
                    format_unix(match rng.u8(..3) {
                        0 => hour,
                        1 => hour - 1,
                        _ => hour + rng.i64(0..3_600),
                    })
                };
                let (mut split, mut checked) = (0, 0);
                for _ in 0..150 {
                    let (a, b) = (time(&mut rng), time(&mut rng));
                    let (a, b) = if a <= b { (a, b) } else { (b, a) };
                    let q = ResultsQuery {
                        limit: 5,
                        from: (rng.u8(..5) > 0).then_some(a),
                        to: (rng.u8(..5) > 0).then_some(b),
                        source: [None, Some(Source::Agent)][rng.usize(..2)],
                        suspicious: [None, Some(true), Some(false)][rng.usize(..3)],
                        ..ResultsQuery::default()
                    };
                    if q.from.is_none() && q.to.is_none() {
                        continue;
                    }
                    split += usize::from(q.hourly_split().is_some());
                    checked += 1;
                    let page = store.results(q.clone()).await.unwrap();
                    assert_eq!(page.count as i64, counted(&fresh, &q).await, "{name}: {q:?}");
                }
                assert!(split * 2 > checked, "{name}: only {split} of {checked} ranges had whole hours");

                // Whole hours are read from the roll-ups: a count changed
                // there shows; in the two edge hours it does not (their rows
                // are counted).
                let q = ResultsQuery {
                    limit: 5,
                    from: Some(format_unix(MARCH_27 + 10 * 3_600 + 1_800)),
                    to: Some(format_unix(MARCH_27 + 20 * 3_600 + 600)),
                    ..ResultsQuery::default()
                };
                let before = store.results(q.clone()).await.unwrap().count;
                assert_eq!(before as i64, counted(&fresh, &q).await, "{name}");
                bump_rollup(&fresh, &format_unix(MARCH_27 + 15 * 3_600), 1_000).await;
                assert_eq!(store.results(q.clone()).await.unwrap().count, before + 1_000, "{name}: an inner hour");
                bump_rollup(&fresh, &format_unix(MARCH_27 + 15 * 3_600), -1_000).await;
                for edge in [10, 20] {
                    bump_rollup(&fresh, &format_unix(MARCH_27 + edge * 3_600), 1_000).await;
                    assert_eq!(store.results(q.clone()).await.unwrap().count, before, "{name}: edge hour {edge}");
                    bump_rollup(&fresh, &format_unix(MARCH_27 + edge * 3_600), -1_000).await;
                }
                // A device filter is not in the roll-ups: its rows are counted.
                let by_device = ResultsQuery { device: Some("pi-1".into()), ..q.clone() };
                assert!(by_device.hourly_split().is_none());
                assert_eq!(store.results(by_device).await.unwrap().count, before, "{name}: all agent rows are pi-1's");
                store.shutdown().await;
            }
        }
    }
}
