//! A CSV upload as one transaction, each row written once: the upload takes
//! one contiguous id range up front (as many ids as the file has lines, an
//! upper bound of its rows), the rows stream by binary `COPY` straight into
//! `predictions` while the parser produces them, and their counts, roll-ups
//! and id blocks are added up in Rust on the way and upserted before the
//! commit, with the upload's row of `csv_uploads` (its rows' place in
//! event-time order). Whatever the range had beyond the rows is handed
//! back, in the upload's transaction, when no other writer took ids since.
//! Anything else than `CsvChunk::Done` (a bad row, a dropped sender) rolls
//! the whole upload back.

use std::sync::Arc;
use std::time::Instant;

use deadpool_postgres::Transaction;
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::store::Pool;
use super::writer::{reserve_ids, Delta, BLOCK_SHIFT, ID_LOCK};
use crate::error::{Error, Result};
use crate::store::model::{label, CSV_QUEUE};
use crate::store::{CsvChunk, CsvCommit, CsvSender, CsvSummary, WriterStats};

pub(super) async fn begin(
    pool: Pool,
    model_version: Arc<str>,
    rows_at_most: u64,
    stats: Arc<WriterStats>,
) -> Result<(CsvSender, CsvCommit)> {
    let (sender, chunks) = std::sync::mpsc::sync_channel(CSV_QUEUE);
    let (forward, rx) = mpsc::channel::<CsvChunk>(CSV_QUEUE);
    // The parser sends from a blocking thread; this one hands its chunks to
    // the async COPY, and its end (without `Done`) to the commit.
    std::thread::Builder::new().name("bfp-csv-copy".into()).spawn(move || {
        while let Ok(chunk) = chunks.recv() {
            let done = matches!(chunk, CsvChunk::Done);
            if forward.blocking_send(chunk).is_err() || done {
                break;
            }
        }
    })?;
    let task = tokio::spawn(async move {
        let started = Instant::now();
        let result = commit(&pool, rx, &model_version, rows_at_most).await;
        match &result {
            Ok(summary) => {
                stats.committed(started, summary.total);
                if summary.total >= ANALYZE_AFTER_ROWS {
                    tokio::spawn(analyze(pool));
                }
            }
            Err(_) => stats.failed(),
        }
        result
    });
    let committed: CsvCommit =
        Box::pin(async move { task.await.map_err(|e| Error::Internal(format!("CSV upload task: {e}")))? });
    Ok((sender, committed))
}

/// Uploads of at least this many rows refresh the planner's statistics.
const ANALYZE_AFTER_ROWS: u64 = 10_000;

/// A quick `ANALYZE` of `predictions`, off the upload's reply. A bulk
/// `COPY` leaves the planner's row estimates behind until autovacuum's next
/// analyze (a minute or more); meanwhile a page filtered by label,
/// estimated at a few hundred rows, was planned as a sort of its whole id
/// range instead of a walk of the primary key: seconds at a few million
/// rows. What the pages' plans need is the table's row count, the shares of
/// sources and labels (a few values each) and where ids and event times
/// end (a range past the last histogram has the planner probe the index):
/// a 3,000-row sample of those four columns, where the full `ANALYZE`
/// (30,000 rows, every column) took 3-3.6 s at 10 M rows beside the next
/// upload. Autovacuum's own analyze still refreshes every column.
async fn analyze(pool: Pool) {
    const QUICK_ANALYZE: &str = "BEGIN; SET LOCAL default_statistics_target = 10;
        ANALYZE predictions (id, event_at, source, prediction); COMMIT";
    let result = match super::store::conn(&pool).await {
        Ok(c) => c.batch_execute(QUICK_ANALYZE).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = result {
        tracing::warn!(%error, "ANALYZE after a CSV upload failed; autovacuum will do it later");
    }
}

const COPY_SQL: &str = "COPY predictions (id, model_version, source, prediction, confidence, login_hour,
    session_duration, commands_count, failed_logins, protocol, typing_speed, risky_commands, reasons)
    FROM STDIN (FORMAT binary)";

const COPY_TYPES: &[Type] = &[
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::FLOAT8,
    Type::INT4,
    Type::FLOAT8,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::FLOAT8,
    Type::INT8,
    Type::TEXT,
];

async fn commit(
    pool: &Pool,
    mut rx: mpsc::Receiver<CsvChunk>,
    model_version: &str,
    rows_at_most: u64,
) -> Result<CsvSummary> {
    let mut client = super::store::conn(pool).await?;
    let tx = client.transaction().await?;
    // Taken before the first row (ids are in the rows); the shared write
    // barrier it takes is held until this transaction ends.
    let reserved = rows_at_most.clamp(1, i64::MAX as u64) as i64;
    let first = reserve_ids(&tx, reserved).await?;
    match copy_rows(&tx, &mut rx, model_version, first, reserved).await {
        Ok((n, suspicious, delta)) => {
            // The upload's rows in event-time order: they have no entry in
            // `predictions_event`; this row stands for them (its time is
            // theirs, the transaction's start).
            let last = first + n - 1;
            let upload = async {
                let sql = "INSERT INTO csv_uploads (first_id, last_id, uploaded_at) VALUES ($1, $2, now())";
                Ok::<u64, Error>(tx.execute(sql, &[&first, &last]).await?)
            };
            tokio::try_join!(upload, delta.apply(&tx))?;
            if let Some(sql) = release_sql(first, reserved, n) {
                tx.batch_execute(&sql).await?;
            }
            tx.commit().await?;
            let total = n as u64;
            Ok(CsvSummary {
                total,
                normal: total - suspicious,
                suspicious,
                first_id: Some(first),
                last_id: Some(first + n - 1),
            })
        }
        // Nothing is kept, and the range stays a gap: given back after the
        // rollback, when its range is no longer open, a cursor reader could
        // meanwhile have been told those ids were settled, and a writer
        // taking them again would commit below what it was handed.
        Err(e) => Err(e),
    }
}

/// Streams the upload's rows into `predictions` under ids from `first`;
/// returns their number, how many are suspicious, and their counts.
async fn copy_rows(
    tx: &Transaction<'_>,
    rx: &mut mpsc::Receiver<CsvChunk>,
    model_version: &str,
    first: i64,
    reserved: i64,
) -> Result<(i64, u64, Delta)> {
    let sink = tx.copy_in(COPY_SQL).await?;
    let writer = BinaryCopyInWriter::new(sink, COPY_TYPES);
    tokio::pin!(writer);
    let (mut n, mut suspicious) = (0i64, 0u64);
    // Counted here per row, cheaply (a few protocols; ids in order, so one
    // block at a time), and put in a `Delta` at the end.
    let mut by_protocol: Vec<(&'static str, [i64; 2])> = Vec::new();
    let mut delta = Delta::default();
    let (mut block, mut in_block) = (first >> BLOCK_SHIFT, [0i64; 2]);
    loop {
        let rows = match rx.recv().await {
            Some(CsvChunk::Rows(rows)) => rows,
            Some(CsvChunk::Done) => break,
            // The parser gave up: returning drops the COPY, and the
            // transaction rolls everything back.
            None => return Err(Error::BadInput("the CSV upload was abandoned".into())),
        };
        if n + rows.len() as i64 > reserved {
            return Err(Error::Internal(format!("the CSV upload has more rows than the {reserved} it announced")));
        }
        for r in &rows {
            let id = first + n;
            let login_hour = i32::from(r.login_hour);
            let commands = i64::from(r.commands);
            let failed = i64::from(r.failed_logins);
            let risky = r.risky_commands.map(i64::from);
            let prediction = label(r.suspicious);
            writer
                .as_mut()
                .write(&[
                    &id,
                    &model_version,
                    &"csv",
                    &prediction,
                    &r.confidence,
                    &login_hour,
                    &r.duration,
                    &commands,
                    &failed,
                    &r.protocol_name,
                    &r.typing_speed,
                    &risky,
                    &r.reasons,
                ])
                .await?;
            let l = usize::from(r.suspicious);
            if id >> BLOCK_SHIFT != block {
                flush_block(&mut delta, block, &in_block);
                (block, in_block) = (id >> BLOCK_SHIFT, [0; 2]);
            }
            in_block[l] += 1;
            match by_protocol.iter_mut().find(|(p, _)| *p == r.protocol_name) {
                Some((_, counts)) => counts[l] += 1,
                None => by_protocol.push((r.protocol_name, [(l == 0).into(), (l == 1).into()])),
            }
            n += 1;
            suspicious += u64::from(r.suspicious);
        }
    }
    writer.finish().await?;
    if n == 0 {
        return Err(Error::BadInput("the CSV file has a header but no data rows".into()));
    }
    flush_block(&mut delta, block, &in_block);
    for (protocol, counts) in by_protocol {
        for (l, count) in counts.into_iter().enumerate() {
            if count > 0 {
                delta.add_csv(protocol, label(l == 1), count);
            }
        }
    }
    Ok((n, suspicious, delta))
}

fn flush_block(delta: &mut Delta, block: i64, counts: &[i64; 2]) {
    for (l, &count) in counts.iter().enumerate() {
        if count > 0 {
            delta.add_csv_block(block, label(l == 1), count);
        }
    }
}

/// Hands back the ids of `first..first + reserved` past the `used` first
/// ones, if no writer took ids since (else they stay unused: the pages count
/// rows by id block, so a gap costs nothing). Under the lock every id range
/// is taken with, held only for this statement.
fn release_sql(first: i64, reserved: i64, used: i64) -> Option<String> {
    if used >= reserved {
        return None;
    }
    let seq = "pg_get_serial_sequence('predictions', 'id')";
    let (last, to) = (first + reserved - 1, first + used - 1);
    // `setval(.., 0)` is out of range: an empty store's sequence goes back
    // to "not called" at 1 instead.
    let back = if to >= 1 { format!("setval({seq}, {to})") } else { format!("setval({seq}, 1, false)") };
    Some(format!(
        "DO $$ BEGIN
             PERFORM pg_advisory_lock({ID_LOCK});
             IF pg_sequence_last_value({seq}::regclass) = {last} THEN PERFORM {back}; END IF;
             PERFORM pg_advisory_unlock({ID_LOCK});
         END $$"
    ))
}
