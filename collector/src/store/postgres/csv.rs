//! A CSV upload as one transaction: rows stream by binary `COPY` into a
//! temporary table while the parser produces them; `CsvChunk::Done` moves
//! them into `predictions` under one contiguous id range (taken only then,
//! when their number is known) with their counts, and commits. Anything
//! else (a bad row, a dropped sender) rolls the whole upload back.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::store::Pool;
use super::writer::{reserve_ids, BLOCK_SHIFT};
use crate::error::{Error, Result};
use crate::store::model::{label, CSV_QUEUE};
use crate::store::{CsvChunk, CsvCommit, CsvSender, CsvSummary, WriterStats};

pub(super) async fn begin(
    pool: Pool,
    model_version: Arc<str>,
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
        let result = commit(&pool, rx, &model_version).await;
        match &result {
            Ok(summary) => {
                stats.committed(started, summary.total);
            }
            Err(_) => stats.failed(),
        }
        result
    });
    let committed: CsvCommit =
        Box::pin(async move { task.await.map_err(|e| Error::Internal(format!("CSV upload task: {e}")))? });
    Ok((sender, committed))
}

const COPY_TYPES: &[Type] = &[
    Type::INT8,
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

async fn commit(pool: &Pool, mut rx: mpsc::Receiver<CsvChunk>, model_version: &str) -> Result<CsvSummary> {
    let mut client = super::store::conn(pool).await?;
    let tx = client.transaction().await?;
    tx.batch_execute(
        "CREATE TEMP TABLE csv_stage (ord BIGINT, prediction TEXT, confidence DOUBLE PRECISION, login_hour INTEGER,
             session_duration DOUBLE PRECISION, commands_count BIGINT, failed_logins BIGINT, protocol TEXT,
             typing_speed DOUBLE PRECISION, risky_commands BIGINT, reasons TEXT) ON COMMIT DROP",
    )
    .await?;
    let sink = tx.copy_in("COPY csv_stage FROM STDIN (FORMAT binary)").await?;
    let writer = BinaryCopyInWriter::new(sink, COPY_TYPES);
    tokio::pin!(writer);
    let (mut n, mut suspicious) = (0i64, 0u64);
    loop {
        let rows = match rx.recv().await {
            Some(CsvChunk::Rows(rows)) => rows,
            Some(CsvChunk::Done) => break,
            // The parser gave up: returning drops the COPY and the
            // transaction, which rolls everything back.
            None => return Err(Error::BadInput("the CSV upload was abandoned".into())),
        };
        for r in &rows {
            let login_hour = i32::from(r.login_hour);
            let commands = i64::from(r.commands);
            let failed = i64::from(r.failed_logins);
            let risky = r.risky_commands.map(i64::from);
            writer
                .as_mut()
                .write(&[
                    &n,
                    &label(r.suspicious),
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
            n += 1;
            suspicious += u64::from(r.suspicious);
        }
    }
    writer.finish().await?;
    if n == 0 {
        return Err(Error::BadInput("the CSV file has a header but no data rows".into()));
    }
    let first = reserve_ids(&tx, n).await?;
    tx.execute(
        "INSERT INTO predictions (id, model_version, source, prediction, confidence, login_hour, session_duration,
             commands_count, failed_logins, protocol, typing_speed, risky_commands, reasons)
         SELECT $1 + ord, $2, 'csv', prediction, confidence, login_hour, session_duration, commands_count,
             failed_logins, protocol, typing_speed, risky_commands, reasons
         FROM csv_stage ORDER BY ord",
        &[&first, &model_version],
    )
    .await?;
    // Counts in the writer's order of tables and keys (see `writer`).
    tx.execute(
        "INSERT INTO counters (source, device, prediction, n)
         SELECT 'csv', '', prediction, COUNT(*) FROM csv_stage GROUP BY prediction ORDER BY prediction
         ON CONFLICT (source, device, prediction) DO UPDATE SET n = counters.n + excluded.n",
        &[],
    )
    .await?;
    tx.execute(
        "INSERT INTO rollup_hourly (hour, source, protocol, prediction, n)
         SELECT date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 'csv', protocol, prediction, COUNT(*)
         FROM csv_stage GROUP BY protocol, prediction ORDER BY protocol, prediction
         ON CONFLICT (hour, source, protocol, prediction) DO UPDATE SET n = rollup_hourly.n + excluded.n",
        &[],
    )
    .await?;
    tx.execute(
        &format!(
            "INSERT INTO id_blocks (block, source, prediction, n)
             SELECT ($1 + ord) >> {BLOCK_SHIFT}, 'csv', prediction, COUNT(*) FROM csv_stage GROUP BY 1, 3 ORDER BY 1, 3
             ON CONFLICT (block, source, prediction) DO UPDATE SET n = id_blocks.n + excluded.n"
        ),
        &[&first],
    )
    .await?;
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
