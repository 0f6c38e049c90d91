//! Each collector's writer task: requests queue on a bounded channel; the
//! task takes everything queued (up to `max_batch` rows), stores it in one
//! transaction with its counters, roll-ups and id blocks, commits, and only
//! then answers each request (group commit).
//!
//! Several collectors write at once: every count is an upsert adding to `n`
//! (`ON CONFLICT ... DO UPDATE SET n = t.n + excluded.n`), so they add up
//! exactly; the keys of each table are written in one global order (tables
//! in a fixed order, keys sorted) so two collectors' transactions cannot
//! deadlock on them, and a transaction that still fails on a deadlock or a
//! serialization error is retried whole.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bfp_common::wire::{Batch, Heartbeat, ResponseReport};
use deadpool_postgres::Transaction;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::store::{Conn, Pool};
use crate::error::{Error, Result};
use crate::store::model::label;
use crate::store::{round_confidence, DeviceId, IngestOutcome, NewPrediction, WriterStats};

/// Rows per 4,096-id block, as a shift (as SQLite's `id_blocks`).
pub(super) const BLOCK_SHIFT: u32 = 12;

/// The advisory lock every write transaction holds shared from before it
/// takes ids until it commits; the alert evaluation takes it exclusively for
/// a moment to know that every id taken so far is committed (or abandoned).
pub(super) const WRITE_BARRIER: i64 = 0x6266_705f_7772_6974; // "bfp_writ"

/// The advisory lock `bfp_reserve_ids` (schema step 10) takes ranges of ids
/// under; anything else moving the sequence takes it too.
pub(super) const ID_LOCK: i64 = 7100270443937212787;

/// Times a group is retried after a deadlock or serialization failure.
const RETRIES: usize = 5;

const INSERT_SQL: &str = "INSERT INTO predictions (id, source, prediction, confidence, login_hour, session_duration,
    commands_count, failed_logins, protocol, typing_speed, risky_commands, commands, model_version, reasons, device,
    kind, source_ip, \"user\", started_at, ended_at, evidence, event_at)
    SELECT u.*, COALESCE(u.c19::timestamp AT TIME ZONE 'UTC', now())
    FROM unnest($1::int8[], $2::text[], $3::text[], $4::float8[], $5::int4[], $6::float8[], $7::int8[],
        $8::int8[], $9::text[], $10::float8[], $11::int8[], $12::text[], $13::text[], $14::text[], $15::text[],
        $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[])
    AS u(c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, c20, c21)";

/// What the writer task is asked to do.
pub(super) enum WriteOp {
    /// Predictions to store; grouped with the other requests queued.
    Insert { rows: Vec<NewPrediction>, reply: oneshot::Sender<Result<Vec<i64>>> },
    /// An agent's batch; grouped with the other requests queued.
    Ingest(Box<IngestOp>),
    /// A health check: answered after the group it joins, with a query of
    /// the database on one of the pool's connections.
    Ping(oneshot::Sender<Result<()>>),
    /// Commit what is queued, then stop.
    Shutdown,
}

pub(super) struct IngestOp {
    pub(super) device: DeviceId,
    pub(super) batch: Batch,
    pub(super) reply: oneshot::Sender<Result<IngestOutcome>>,
}

impl WriteOp {
    fn rows(&self) -> usize {
        match self {
            WriteOp::Insert { rows, .. } => rows.len().max(1),
            WriteOp::Ingest(op) => op.batch.records.len().max(1),
            WriteOp::Ping(_) | WriteOp::Shutdown => 0,
        }
    }
}

/// The writer task's loop: runs until [`WriteOp::Shutdown`] or until every
/// sender is gone.
pub(super) async fn run(pool: Pool, mut rx: mpsc::Receiver<WriteOp>, max_batch: usize, stats: Arc<WriterStats>) {
    let mut stop = false;
    while !stop {
        let Some(first) = rx.recv().await else { break };
        if matches!(first, WriteOp::Shutdown) {
            break;
        }
        let mut n = first.rows();
        let mut group = vec![first];
        while n < max_batch {
            match rx.try_recv() {
                Ok(WriteOp::Shutdown) => {
                    stop = true;
                    break;
                }
                Ok(op) => {
                    n += op.rows();
                    group.push(op);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let mut inserts = Vec::new();
        let mut ingests = Vec::new();
        let mut pings = Vec::new();
        for op in group {
            match op {
                WriteOp::Insert { rows, reply } => inserts.push((rows, reply)),
                WriteOp::Ingest(op) => ingests.push(*op),
                WriteOp::Ping(reply) => pings.push(reply),
                WriteOp::Shutdown => {}
            }
        }
        if !pings.is_empty() {
            let answer = ping(&pool).await;
            for reply in pings {
                let _ = reply.send(answer.as_ref().map(|_| ()).map_err(|e| Error::Store(e.to_string())));
            }
            if inserts.is_empty() && ingests.is_empty() {
                continue;
            }
        }
        let mut attempt = 0;
        let outcome = loop {
            match store_group(&pool, &inserts, &ingests).await {
                Err(Error::Db(e)) if attempt < RETRIES && retryable(&*e) => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "write group retried");
                }
                other => break other,
            }
        };
        match outcome {
            Ok(Stored { ids, ingested, rows }) => {
                stats.committed(started, rows);
                for ((_, reply), ids) in inserts.into_iter().zip(ids) {
                    let _ = reply.send(Ok(ids));
                }
                for (op, answer) in ingests.into_iter().zip(ingested) {
                    let _ = op.reply.send(answer);
                }
            }
            Err(e) => {
                stats.failed();
                tracing::error!(error = %e, rows = n, "write group rolled back");
                let text = e.to_string();
                for (_, reply) in inserts {
                    let _ = reply.send(Err(Error::Store(text.clone())));
                }
                for op in ingests {
                    let _ = op.reply.send(Err(Error::Store(text.clone())));
                }
            }
        }
    }
}

/// A query the database must answer: a connection from the pool, a round trip.
async fn ping(pool: &Pool) -> Result<()> {
    super::store::conn(pool).await?.query_one("SELECT 1", &[]).await?;
    Ok(())
}

fn retryable(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    e.downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.code())
        .is_some_and(|c| *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

struct Stored {
    ids: Vec<Vec<i64>>,
    ingested: Vec<Result<IngestOutcome>>,
    rows: u64,
}

/// An insert request: its rows and where its ids go.
type InsertOp = (Vec<NewPrediction>, oneshot::Sender<Result<Vec<i64>>>);

/// One group in one transaction, committed: predictions and agents'
/// batches. On an error the transaction is rolled back before the
/// connection goes back to the pool.
async fn store_group(pool: &Pool, inserts: &[InsertOp], ingests: &[IngestOp]) -> Result<Stored> {
    let client = super::store::conn(pool).await?;
    let stored = if ingests.is_empty() {
        store_inserts(&client, inserts).await
    } else {
        store_batches(&client, inserts, ingests).await
    };
    if stored.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    stored
}

/// A group with agents' batches: their devices are locked and their
/// sequence numbers decided before their rows are inserted.
async fn store_batches(tx: &Conn, inserts: &[InsertOp], ingests: &[IngestOp]) -> Result<Stored> {
    tx.batch_execute("BEGIN").await?;
    // Devices first, locked in id order: a device's batches are decided one
    // transaction at a time, whichever collector received them.
    let mut state: BTreeMap<i64, (i64, bool)> = BTreeMap::new();
    if !ingests.is_empty() {
        let mut ids: Vec<i64> = ingests.iter().map(|op| op.device.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let rows = tx
            .query(
                "SELECT id, last_seq, revoked_at IS NOT NULL FROM devices WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                &[&ids],
            )
            .await?;
        for r in rows {
            state.insert(r.get(0), (r.get(1), r.get(2)));
        }
    }
    let mut ingested: Vec<Result<IngestOutcome>> = Vec::with_capacity(ingests.len());
    // Rows to store, in order: each insert request's, then each accepted batch's.
    let mut rows: Vec<&NewPrediction> = inserts.iter().flat_map(|(r, _)| r.iter()).collect();
    let mut agent_rows: Vec<Vec<NewPrediction>> = Vec::new();
    for op in ingests {
        let Some((last_seq, revoked)) = state.get_mut(&op.device.id) else {
            ingested.push(Err(Error::Unauthorized("the device was revoked".into())));
            continue;
        };
        if *revoked {
            ingested.push(Err(Error::Unauthorized("the device was revoked".into())));
            continue;
        }
        update_heartbeat(tx, op.device.id, &op.batch.heartbeat).await?;
        let seq = op.batch.seq.min(i64::MAX as u64) as i64;
        // A batch without records is a heartbeat: it never takes a sequence
        // number, so it cannot make a later record batch look like a retry.
        if op.batch.records.is_empty() {
            ingested.push(Ok(IngestOutcome { duplicate: false, stored: 0, last_seq: *last_seq as u64 }));
            continue;
        }
        // The database decides: a `(device, seq)` stored before (by this
        // collector or another) is refused by its primary key.
        let fresh = seq > *last_seq
            && tx
                .execute(
                    "INSERT INTO ingested_batches (device_id, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&op.device.id, &seq],
                )
                .await?
                == 1;
        if !fresh {
            ingested.push(Ok(IngestOutcome { duplicate: true, stored: 0, last_seq: *last_seq as u64 }));
            continue;
        }
        let records = crate::store::devices::batch_predictions(&op.device, op.batch.clone());
        let stored = records.len() as i64;
        tx.execute(
            "UPDATE devices SET last_seq = $2, batches = batches + 1, records = records + $3 WHERE id = $1",
            &[&op.device.id, &seq, &stored],
        )
        .await?;
        *last_seq = seq;
        ingested.push(Ok(IngestOutcome { duplicate: false, stored: stored as u64, last_seq: seq as u64 }));
        agent_rows.push(records);
    }
    rows.extend(agent_rows.iter().flatten());
    let ids = insert_rows(tx, &rows).await?;
    tx.batch_execute("COMMIT").await?;
    Ok(Stored { ids: ids_per_request(inserts, &ids), ingested, rows: rows.len() as u64 })
}

/// `ids` (of the group's rows, in order) split among its insert requests.
fn ids_per_request(inserts: &[InsertOp], ids: &[i64]) -> Vec<Vec<i64>> {
    let mut at = 0;
    inserts
        .iter()
        .map(|(r, _)| {
            let these = ids[at..at + r.len()].to_vec();
            at += r.len();
            these
        })
        .collect()
}

/// A group of predictions alone (no agent batch, so nothing to decide from
/// what the database holds) in two round trips instead of five: `BEGIN`
/// with the id reservation, then the insert, the four count upserts and
/// `COMMIT` sent together. Each round trip is two context switches, and
/// with the clients on the same cores those waits set how long a group
/// takes, so how long its requests wait.
///
/// tokio-postgres sends requests in the order their futures are first
/// polled (`try_join!` polls them in order), and every statement is
/// prepared before, so nothing else is sent between them. A statement that
/// fails aborts the transaction, and the `COMMIT` behind it then ends it as
/// a rollback.
async fn store_inserts(client: &Conn, inserts: &[InsertOp]) -> Result<Stored> {
    let rows: Vec<&NewPrediction> = inserts.iter().flat_map(|(r, _)| r.iter()).collect();
    let reserve = client.prepare_cached(RESERVE_SQL).await?;
    let n = rows.len() as i64;
    let reserve_args: [&(dyn ToSql + Sync); 2] = [&WRITE_BARRIER, &n];
    let (_, reserved) = tokio::try_join!(client.batch_execute("BEGIN"), client.query_one(&reserve, &reserve_args))?;
    let ids = write_rows(client, &rows, reserved.get(1), true).await?;
    Ok(Stored { ids: ids_per_request(inserts, &ids), ingested: Vec::new(), rows: n as u64 })
}

/// Inserts `rows` under the ids from `first` with their counts, in the
/// transaction open on `c`: the insert and the four count upserts sent
/// together, and `COMMIT` with them when `commit`. Returns the rows' ids.
async fn write_rows(c: &Conn, rows: &[&NewPrediction], first: i64, commit: bool) -> Result<Vec<i64>> {
    // Prepared before anything is sent, so nothing comes between them.
    let insert = c.prepare_cached(INSERT_SQL).await?;
    let delta_statements = DeltaStatements::prepare(c).await?;
    let ids: Vec<i64> = (first..first + rows.len() as i64).collect();
    let columns = Columns::new(&ids, rows);
    let mut delta = Delta::default();
    for (id, p) in ids.iter().zip(rows) {
        delta.add(*id, p);
    }
    let client: &tokio_postgres::Client = c;
    tokio::try_join!(
        async { Ok::<_, Error>(client.execute(&insert, &columns.params()).await?) },
        delta.run(client, &delta_statements),
        async {
            if commit {
                client.batch_execute("COMMIT").await?;
            }
            Ok::<_, Error>(())
        },
    )?;
    Ok(ids)
}

const RESERVE_SQL: &str = "SELECT pg_advisory_xact_lock_shared($1), bfp_reserve_ids($2)";

/// Takes one contiguous range of `n` ids (under the shared
/// [`WRITE_BARRIER`], held until `tx` ends); returns its first.
pub(super) async fn reserve_ids(tx: &Transaction<'_>, n: i64) -> Result<i64> {
    let stmt = tx.prepare_cached(RESERVE_SQL).await?;
    Ok(tx.query_one(&stmt, &[&WRITE_BARRIER, &n]).await?.get(1))
}

/// Inserts `rows` (one statement) with their counts, in the transaction
/// open on `c`; returns their ids.
async fn insert_rows(c: &Conn, rows: &[&NewPrediction]) -> Result<Vec<i64>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let n = rows.len() as i64;
    let reserve = c.prepare_cached(RESERVE_SQL).await?;
    let first: i64 = c.query_one(&reserve, &[&WRITE_BARRIER, &n]).await?.get(1);
    write_rows(c, rows, first, false).await
}

/// Rows as the columns of [`INSERT_SQL`], one array each.
struct Columns<'a> {
    ids: &'a [i64],
    source: Vec<&'a str>,
    prediction: Vec<&'static str>,
    confidence: Vec<f64>,
    login_hour: Vec<i32>,
    duration: Vec<f64>,
    commands_count: Vec<i64>,
    failed: Vec<i64>,
    protocol: Vec<&'a str>,
    typing: Vec<Option<f64>>,
    risky: Vec<Option<i64>>,
    commands: Vec<Option<String>>,
    model: Vec<&'a str>,
    reasons: Vec<String>,
    device: Vec<Option<String>>,
    kind: Vec<Option<String>>,
    source_ip: Vec<Option<String>>,
    user: Vec<Option<String>>,
    started: Vec<Option<String>>,
    ended: Vec<Option<String>>,
    evidence: Vec<Option<String>>,
}

impl<'a> Columns<'a> {
    fn new(ids: &'a [i64], rows: &[&'a NewPrediction]) -> Columns<'a> {
        let col = |f: &dyn Fn(&NewPrediction) -> Option<String>| -> Vec<Option<String>> {
            rows.iter().map(|p| f(p)).collect()
        };
        Columns {
            ids,
            source: rows.iter().map(|p| p.source.as_str()).collect(),
            prediction: rows.iter().map(|p| label(p.suspicious)).collect(),
            confidence: rows.iter().map(|p| round_confidence(p.confidence)).collect(),
            login_hour: rows.iter().map(|p| i32::from(p.fingerprint.login_hour)).collect(),
            duration: rows.iter().map(|p| f64::from(p.fingerprint.session_duration_min)).collect(),
            commands_count: rows.iter().map(|p| i64::from(p.fingerprint.commands)).collect(),
            failed: rows.iter().map(|p| i64::from(p.fingerprint.failed_logins)).collect(),
            protocol: rows.iter().map(|p| p.fingerprint.protocol.as_str()).collect(),
            typing: rows.iter().map(|p| p.fingerprint.typing_speed_wpm.map(f64::from)).collect(),
            risky: rows.iter().map(|p| p.fingerprint.risky_commands.map(i64::from)).collect(),
            commands: col(&|p| p.commands.as_ref().map(|c| serde_json::to_string(c).unwrap_or_default())),
            model: rows.iter().map(|p| &*p.model_version).collect(),
            reasons: rows.iter().map(|p| serde_json::to_string(&p.reasons).unwrap_or_else(|_| "[]".into())).collect(),
            device: col(&|p| p.device.clone()),
            kind: col(&|p| p.agent.kind.clone()),
            source_ip: col(&|p| p.agent.source_ip.clone()),
            user: col(&|p| p.agent.user.clone()),
            started: col(&|p| p.agent.started_at.clone()),
            ended: col(&|p| p.agent.ended_at.clone()),
            evidence: col(&|p| p.agent.evidence.clone()),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 21] {
        [
            &self.ids,
            &self.source,
            &self.prediction,
            &self.confidence,
            &self.login_hour,
            &self.duration,
            &self.commands_count,
            &self.failed,
            &self.protocol,
            &self.typing,
            &self.risky,
            &self.commands,
            &self.model,
            &self.reasons,
            &self.device,
            &self.kind,
            &self.source_ip,
            &self.user,
            &self.started,
            &self.ended,
            &self.evidence,
        ]
    }
}

/// The counts one transaction adds, keyed and sorted as the tables are (so
/// every collector locks their rows in the same order).
#[derive(Default)]
pub(super) struct Delta {
    counters: BTreeMap<(&'static str, String, &'static str), i64>,
    // (event hour or "" for now, source, protocol, label) -> n.
    rollup: BTreeMap<(String, &'static str, &'static str, &'static str), i64>,
    ips: BTreeMap<String, (i64, i64)>,
    blocks: BTreeMap<(i64, &'static str, &'static str), i64>,
}

impl Delta {
    /// `n` CSV rows of one protocol and label (no device, no address).
    pub(super) fn add_csv(&mut self, protocol: &'static str, label: &'static str, n: i64) {
        *self.counters.entry(("csv", String::new(), label)).or_default() += n;
        // A CSV row happened when it was stored: filed under the hour of now.
        *self.rollup.entry((String::new(), "csv", protocol, label)).or_default() += n;
    }

    /// `n` CSV rows of one label in id block `block`.
    pub(super) fn add_csv_block(&mut self, block: i64, label: &'static str, n: i64) {
        *self.blocks.entry((block, "csv", label)).or_default() += n;
    }

    fn add(&mut self, id: i64, p: &NewPrediction) {
        let l = label(p.suspicious);
        let s = p.source.as_str();
        *self.counters.entry((s, p.device.clone().unwrap_or_default(), l)).or_default() += 1;
        // Filed under the hour of the event: an agent record's start, else
        // the transaction's time (its ingest).
        let hour = p.agent.started_at.as_deref().and_then(|t| t.get(..13)).map(|h| format!("{h}:00:00"));
        *self.rollup.entry((hour.unwrap_or_default(), s, p.fingerprint.protocol.as_str(), l)).or_default() += 1;
        *self.blocks.entry((id >> BLOCK_SHIFT, s, l)).or_default() += 1;
        if let Some(ip) = p.agent.source_ip.as_deref().filter(|ip| !ip.is_empty()) {
            let e = self.ips.entry(ip.to_string()).or_default();
            e.0 += i64::from(p.suspicious);
            e.1 += 1;
        }
    }

    /// Writes the increments in `tx`: counters, roll-ups, source addresses,
    /// id blocks, in that order (every writer does, CSV uploads too).
    pub(super) async fn apply(&self, tx: &Transaction<'_>) -> Result<()> {
        let statements = DeltaStatements::prepare(tx).await?;
        self.run(&**tx, &statements).await
    }

    /// The four upserts, sent together (pipelined): the server still runs
    /// them in this order, but a commit waits for one round trip instead of
    /// eight (a parse and an execute each).
    async fn run<C: tokio_postgres::GenericClient>(&self, c: &C, statements: &DeltaStatements) -> Result<()> {
        let (cs, cd, cl, cn): (Vec<&str>, Vec<&str>, Vec<&str>, Vec<i64>) =
            unzip4(self.counters.iter().map(|((s, d, l), n)| (*s, d.as_str(), *l, *n)));
        let hours: Vec<&str> = self.rollup.keys().map(|k| k.0.as_str()).collect();
        let (rs, rp, rl, rn): (Vec<&str>, Vec<&str>, Vec<&str>, Vec<i64>) =
            unzip4(self.rollup.iter().map(|((_, s, p, l), n)| (*s, *p, *l, *n)));
        let ip: Vec<&str> = self.ips.keys().map(String::as_str).collect();
        let sus: Vec<i64> = self.ips.values().map(|v| v.0).collect();
        let total: Vec<i64> = self.ips.values().map(|v| v.1).collect();
        let (b, bs, bl, bn): (Vec<i64>, Vec<&str>, Vec<&str>, Vec<i64>) =
            unzip4(self.blocks.iter().map(|((b, s, l), n)| (*b, *s, *l, *n)));
        let counter_args: [&(dyn ToSql + Sync); 4] = [&cs, &cd, &cl, &cn];
        let rollup_args: [&(dyn ToSql + Sync); 5] = [&hours, &rs, &rp, &rl, &rn];
        let ip_args: [&(dyn ToSql + Sync); 3] = [&ip, &sus, &total];
        let block_args: [&(dyn ToSql + Sync); 4] = [&b, &bs, &bl, &bn];
        let DeltaStatements { counters, rollups, ips, blocks } = statements;
        tokio::try_join!(
            c.execute(counters, &counter_args),
            c.execute(rollups, &rollup_args),
            c.execute(ips, &ip_args),
            c.execute(blocks, &block_args),
        )?;
        Ok(())
    }
}

/// [`Delta`]'s four upserts, prepared (once per connection: the pool's
/// statement cache).
pub(super) struct DeltaStatements {
    counters: tokio_postgres::Statement,
    rollups: tokio_postgres::Statement,
    ips: tokio_postgres::Statement,
    blocks: tokio_postgres::Statement,
}

impl DeltaStatements {
    async fn prepare(c: &impl deadpool_postgres::GenericClient) -> Result<DeltaStatements> {
        let (counters, rollups, ips, blocks) = tokio::try_join!(
            c.prepare_cached(COUNTERS_SQL),
            c.prepare_cached(ROLLUPS_SQL),
            c.prepare_cached(IPS_SQL),
            c.prepare_cached(BLOCKS_SQL),
        )?;
        Ok(DeltaStatements { counters, rollups, ips, blocks })
    }
}

const COUNTERS_SQL: &str = "INSERT INTO counters (source, device, prediction, n)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[])
    ON CONFLICT (source, device, prediction) DO UPDATE SET n = counters.n + excluded.n";

// Summed again in SQL: "now" may be an hour an event also names, and one
// statement must not update a row twice; sorted, so collectors lock roll-up
// rows in one order.
const ROLLUPS_SQL: &str = "INSERT INTO rollup_hourly (hour, source, protocol, prediction, n)
    SELECT COALESCE(NULLIF(u.h, '')::timestamp, date_trunc('hour', now() AT TIME ZONE 'UTC')) AT TIME ZONE 'UTC',
           u.s, u.p, u.l, SUM(u.n)
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[]) AS u(h, s, p, l, n)
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (hour, source, protocol, prediction) DO UPDATE SET n = rollup_hourly.n + excluded.n";

// With no addresses the arrays are empty and nothing is written.
const IPS_SQL: &str = "INSERT INTO source_ips (source_ip, suspicious, total)
    SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[])
    ON CONFLICT (source_ip) DO UPDATE SET suspicious = source_ips.suspicious + excluded.suspicious,
        total = source_ips.total + excluded.total";

const BLOCKS_SQL: &str = "INSERT INTO id_blocks (block, source, prediction, n)
    SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[])
    ON CONFLICT (block, source, prediction) DO UPDATE SET n = id_blocks.n + excluded.n";

fn unzip4<A, B, C, D>(it: impl Iterator<Item = (A, B, C, D)>) -> (Vec<A>, Vec<B>, Vec<C>, Vec<D>) {
    let (mut a, mut b, mut c, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (w, x, y, z) in it {
        a.push(w);
        b.push(x);
        c.push(y);
        d.push(z);
    }
    (a, b, c, d)
}

async fn update_heartbeat(tx: &Conn, id: i64, hb: &Heartbeat) -> Result<()> {
    let clamp = |v: u64| v.min(i64::MAX as u64) as i64;
    tx.execute(
        "UPDATE devices SET last_seen = now(), agent_version = $2, model_version = $3, spool_depth = $4,
             dropped = $5, lines_read = $6, last_error = $7 WHERE id = $1",
        &[
            &id,
            &hb.agent_version,
            &hb.model_version,
            &clamp(hb.spool_depth),
            &clamp(hb.dropped),
            &clamp(hb.lines_read),
            &hb.last_error,
        ],
    )
    .await?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    record_response(tx, id, hb.response.as_ref(), now).await
}

/// Replaces what `device` reported of its response with `report`: the
/// heartbeat is the device's whole state (as in SQLite).
async fn record_response(tx: &Conn, device: i64, report: Option<&ResponseReport>, now: i64) -> Result<()> {
    tx.execute("DELETE FROM device_blocks WHERE device_id = $1", &[&device]).await?;
    tx.execute("DELETE FROM device_refusals WHERE device_id = $1", &[&device]).await?;
    let Some(report) = report else {
        tx.execute("DELETE FROM device_responses WHERE device_id = $1", &[&device]).await?;
        return Ok(());
    };
    tx.execute(
        "INSERT INTO device_responses (device_id, backend, reported_at) VALUES ($1, $2, $3)
         ON CONFLICT (device_id) DO UPDATE SET backend = excluded.backend, reported_at = excluded.reported_at",
        &[&device, &report.firewall, &now],
    )
    .await?;
    for b in &report.active {
        tx.execute(
            "INSERT INTO device_blocks (device_id, address, since, until, reason, origin, decision_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (device_id, address) DO UPDATE SET since = excluded.since, until = excluded.until,
                 reason = excluded.reason, origin = excluded.origin, decision_id = excluded.decision_id",
            &[&device, &b.address, &b.since, &b.until, &b.reason, &b.origin.as_str(), &b.decision],
        )
        .await?;
    }
    for r in &report.refused {
        tx.execute(
            "INSERT INTO device_refusals (device_id, decision_id, address, reason) VALUES ($1, $2, $3, $4)
             ON CONFLICT (device_id, decision_id) DO UPDATE SET address = excluded.address, reason = excluded.reason",
            &[&device, &r.decision, &r.address, &r.reason],
        )
        .await?;
    }
    Ok(())
}
