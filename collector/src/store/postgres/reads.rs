//! Reads: the counters, pages of stored predictions, the roll-ups and the
//! export, each from one snapshot (a read-only REPEATABLE READ transaction).
//!
//! A page is found as in SQLite: a cursor (`after_id`) is a primary-key
//! seek; an `offset` sums the per-4,096-id block counts (`id_blocks`, in
//! the database, one query) to the block where the page starts and only
//! skips rows inside that block; an id or time range is turned into ids
//! first. Ids are not dense here (several collectors take ranges), so
//! nothing is computed from `max - min`.

use std::io::Write;

use bfp_common::{Fingerprint, Protocol};
use deadpool_postgres::{ClientWrapper, Transaction};
use tokio_postgres::types::ToSql;
use tokio_postgres::IsolationLevel;

use super::writer::BLOCK_SHIFT;
use crate::error::{Error, Result};
use crate::store::feedback::AnalystLabel;
use crate::store::insights::{
    commands_cell, spreadsheet_safe, Bucket, Insights, Split, DAYS_SHOWN, EXPORT_HEADER, HOURS_SHOWN, TOP_N,
};
use crate::store::model::{event_time_sql, label, EventRows};
use crate::store::{
    AgentContext, HourlySplit, Order, Reason, ResultsPage, ResultsQuery, Source, StoredPrediction, Totals,
};

/// A stored time as the API shows it: `YYYY-MM-DD HH:MM:SS`, UTC.
pub(super) fn ts(column: &str) -> String {
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')")
}

fn select_columns() -> String {
    format!(
        "id, {}, source, prediction, confidence, login_hour, session_duration, commands_count, failed_logins,
         protocol, typing_speed, risky_commands, commands, model_version, reasons, device, kind, source_ip, \"user\",
         started_at, ended_at, {}, evidence",
        ts("created_at"),
        ts("event_at")
    )
}

const TOTALS_SQL: &str = "SELECT prediction, COALESCE(SUM(n), 0)::int8 FROM counters
    WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR device = $2)
      AND ($3::text IS NULL OR prediction = $3)
    GROUP BY prediction";

fn totals_of(rows: Vec<tokio_postgres::Row>) -> Totals {
    let mut t = Totals::default();
    for r in rows {
        let n = r.get::<_, i64>(1).max(0) as u64;
        match r.get::<_, &str>(0) {
            "Suspicious" => t.suspicious += n,
            _ => t.normal += n,
        }
    }
    t
}

/// Totals from the counters, optionally of one source, device or label.
pub(super) async fn totals(
    c: &ClientWrapper,
    source: Option<Source>,
    device: Option<&str>,
    suspicious: Option<bool>,
) -> Result<Totals> {
    let stmt = c.prepare_cached(TOTALS_SQL).await?;
    Ok(totals_of(c.query(&stmt, &[&source.map(Source::as_str), &device, &suspicious.map(label)]).await?))
}

async fn totals_in(tx: &Transaction<'_>, q: &ResultsQuery) -> Result<Totals> {
    let stmt = tx.prepare_cached(TOTALS_SQL).await?;
    let rows =
        tx.query(&stmt, &[&q.source.map(Source::as_str), &q.device.as_deref(), &q.suspicious.map(label)]).await?;
    Ok(totals_of(rows))
}

/// Counters per (source, label), for `/metrics`.
pub(super) async fn counters(c: &ClientWrapper) -> Result<Vec<(String, String, u64)>> {
    let stmt = c
        .prepare_cached(
            "SELECT source, prediction, SUM(n)::int8 FROM counters GROUP BY source, prediction ORDER BY 1, 2",
        )
        .await?;
    Ok(c.query(&stmt, &[]).await?.iter().map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2).max(0) as u64)).collect())
}

async fn snapshot(c: &mut ClientWrapper) -> Result<Transaction<'_>> {
    Ok(c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?)
}

type Args = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(args: &Args) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect()
}

/// `AND ...` conditions for `q`'s filters, with their values (numbered from
/// `$first`). Source and label are literals (one of a few constants) so the
/// planner can use the partial indexes of their ids.
pub(super) fn filter_sql(q: &ResultsQuery, first: usize) -> (String, Vec<String>) {
    filter_sql_of(q, first, EventRows::All)
}

/// [`filter_sql`] for the rows of `rows`; the values are the same whatever
/// `rows`, in the same order.
fn filter_sql_of(q: &ResultsQuery, first: usize, rows: EventRows) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    if let Some(s) = q.source {
        sql.push_str(&format!(" AND source = '{}'", s.as_str()));
    }
    if let Some(d) = &q.device {
        args.push(d.clone());
        sql.push_str(&format!(" AND device = ${}", first + args.len() - 1));
    }
    if let Some(s) = q.suspicious {
        sql.push_str(if s { " AND prediction = 'Suspicious'" } else { " AND prediction = 'Normal'" });
    }
    match q.labelled {
        Some(true) => sql.push_str(" AND id IN (SELECT prediction_id FROM feedback)"),
        Some(false) => {
            sql.push_str(" AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.prediction_id = predictions.id)")
        }
        None => {}
    }
    let mut text = |sql: &mut String, value: String, condition: &str| {
        args.push(value);
        sql.push_str(&condition.replace('#', &format!("${}", first + args.len() - 1)));
    };
    if let Some(u) = &q.user {
        text(&mut sql, u.clone(), " AND \"user\" = #");
    }
    if let Some(ip) = &q.source_ip {
        text(&mut sql, ip.clone(), " AND source_ip = #");
    }
    if let Some(k) = &q.kind {
        text(&mut sql, k.clone(), " AND kind = #");
    }
    if let Some(p) = q.reason_pattern() {
        // SQLite's LIKE ignores ASCII case: ILIKE answers the same.
        text(&mut sql, p, " AND reasons ILIKE # ESCAPE '\\'");
    }
    if let Some((from, to)) = q.event_range() {
        let mut within = String::new();
        if let Some(f) = from {
            text(&mut within, f.to_string(), " AND event_at >= (#::text::timestamp AT TIME ZONE 'UTC')");
        }
        if let Some(t) = to {
            text(&mut within, t.to_string(), " AND event_at <= (#::text::timestamp AT TIME ZONE 'UTC')");
        }
        // Only an agent's or single rows: the index alone.
        let rows = if q.source.is_some() && rows == EventRows::All { EventRows::NotCsv } else { rows };
        sql.push_str(&event_time_sql(&within, rows));
    }
    if let Some(c) = q.min_confidence {
        // A literal: the filter's values are all text parameters.
        sql.push_str(&format!(" AND confidence >= {c:?}"));
    }
    (sql, args)
}

fn with(mut front: Args, filter_args: &[String]) -> Args {
    for a in filter_args {
        front.push(Box::new(a.clone()));
    }
    front
}

/// The filters `id_blocks` can answer: a source and a label, each optional.
#[derive(Debug, Clone, Copy)]
struct BlockFilter {
    source: Option<Source>,
    suspicious: Option<bool>,
}

impl BlockFilter {
    fn of(q: &ResultsQuery) -> Option<BlockFilter> {
        (q.device.is_none() && q.labelled.is_none() && !q.has_row_filters())
            .then_some(BlockFilter { source: q.source, suspicious: q.suspicious })
    }
}

fn is_ranged(q: &ResultsQuery) -> bool {
    let (from, to) = q.ingest_range();
    q.min_id.is_some() || q.max_id.is_some() || from.is_some() || to.is_some() || q.has_row_filters()
}

/// One page of `q` with its filtered total, from one snapshot.
pub(super) async fn results(c: &mut ClientWrapper, q: &ResultsQuery) -> Result<ResultsPage> {
    // A cursor page stops below ids still being written (an upload, another
    // collector's group): ranges commit in any order, and a client handed
    // an id above one committed later would step past that one for good.
    // Read before the snapshot (see `bfp_ids_settled`).
    let settled = match (q.after_id, q.order) {
        (Some(_), Order::Id) => {
            let stmt = c.prepare_cached("SELECT bfp_ids_settled()").await?;
            Some(c.query_one(&stmt, &[]).await?.get::<_, i64>(0))
        }
        _ => None,
    };
    let tx = snapshot(c).await?;
    let (filter, fargs) = filter_sql(q, 3);
    let ranged = is_ranged(q) || q.labelled.is_some();
    let (range_total, lo, hi) = if ranged {
        match resolve_range(&tx, q).await? {
            Some((lo, hi)) => match (q.hourly_split(), q.event_range_alone()) {
                (Some(split), _) => (hourly_count(&tx, &split).await?, lo, hi),
                // Less than an hour's range (or times the split does not take).
                (None, Some((from, to))) => (event_count(&tx, from, to, "<=", q.source, q.suspicious).await?, lo, hi),
                (None, None) => (range_count(&tx, lo, hi, &filter, &fargs, BlockFilter::of(q)).await?, lo, hi),
            },
            None => (0, 1, 0),
        }
    } else {
        (0, 0, i64::MAX)
    };
    // Unranged, the total comes from the counters: asked for beside the
    // page's first query (pipelined on the connection, one round trip).
    let total = async { Ok::<u64, Error>(if ranged { range_total } else { totals_in(&tx, q).await?.total() }) };
    if q.order == Order::Newest {
        let (count, mut results) = tokio::try_join!(total, newest_page(&tx, q, lo, hi, &fargs))?;
        attach(&tx, &mut results).await?;
        tx.commit().await?;
        return Ok(ResultsPage { count, results });
    }
    let hi = settled.map_or(hi, |settled| hi.min(settled));
    let after = q.after_id.unwrap_or(0).max(lo - 1);
    let offset = q.offset.min(i64::MAX as u64) as i64;
    let start = async {
        match BlockFilter::of(q) {
            Some(blocks) => seek(&tx, after.saturating_add(1), hi, offset, blocks, &filter, &fargs).await,
            None => Ok((after.saturating_add(1), offset)),
        }
    };
    let (count, (from, skip)) = tokio::try_join!(total, start)?;
    let n = 3 + fargs.len();
    let mut args: Args = with(vec![Box::new(from), Box::new(hi)], &fargs);
    args.push(Box::new(i64::from(q.limit)));
    // Rows skipped inside a block are stepped over by id alone (an index
    // walk, no columns read or formatted): `OFFSET` on the page itself
    // would build every skipped row (4.8 ms for 3,500 at 10 M rows, 1.4 ms
    // so).
    let sql = if skip == 0 {
        format!(
            "SELECT {} FROM predictions WHERE id >= $1 AND id <= $2 {filter} ORDER BY id LIMIT ${n}",
            select_columns()
        )
    } else {
        args.push(Box::new(skip));
        format!(
            "SELECT {} FROM predictions
             WHERE id >= (SELECT id FROM predictions WHERE id >= $1 AND id <= $2 {filter} ORDER BY id LIMIT 1 OFFSET ${})
               AND id <= $2 {filter} ORDER BY id LIMIT ${n}",
            select_columns(),
            n + 1
        )
    };
    let stmt = tx.prepare_cached(&sql).await?;
    let rows = tx.query(&stmt, &refs(&args)).await?;
    let mut results = rows.iter().map(row_to_stored).collect::<Result<Vec<_>>>()?;
    attach(&tx, &mut results).await?;
    tx.commit().await?;
    Ok(ResultsPage { count, results })
}

/// A page of `q` newest first (event time, then id, descending) among ids
/// `lo..=hi` passing its filters (their values `fargs`, from `$3`), as
/// SQLite's: a cursor (`before_id`) is one look-up and a seek, an offset
/// walks the rows it skips. Two ordered streams merged: the rows of no
/// upload walked backwards in `predictions_event`, and the uploads newest
/// first, each one's rows walked backwards by id (an upload's rows share
/// its time). Each gives at most the page's end; the merge sorts those.
async fn newest_page(
    tx: &Transaction<'_>,
    q: &ResultsQuery,
    lo: i64,
    hi: i64,
    fargs: &[String],
) -> Result<Vec<StoredPrediction>> {
    let mut args: Args = with(vec![Box::new(lo), Box::new(hi)], fargs);
    let ids = if lo <= 0 && hi == i64::MAX { "$1::int8 <= $2::int8" } else { "id >= $1 AND id <= $2" };
    let (mut cursor, mut upload_cursor, mut upload_below) = (String::new(), String::new(), "u.last_id".to_string());
    if let Some(before) = q.before_id {
        let row = tx.query_opt("SELECT event_at FROM predictions WHERE id = $1", &[&before]).await?;
        let Some(row) = row else {
            return Err(Error::BadInput(format!("before_id {before} is not a stored result")));
        };
        args.push(Box::new(row.get::<_, std::time::SystemTime>(0)));
        args.push(Box::new(before));
        let (at, id) = (format!("${}::timestamptz", args.len() - 1), format!("${}::int8", args.len()));
        cursor = format!(" AND (event_at, id) < ({at}, {id})");
        // An upload of the cursor's very time: only its ids below the cursor's.
        upload_cursor = format!(" AND u.uploaded_at <= {at}");
        upload_below = format!("CASE WHEN u.uploaded_at < {at} THEN u.last_id ELSE LEAST(u.last_id, {id} - 1) END");
    }
    args.push(Box::new(i64::from(q.limit)));
    args.push(Box::new(q.offset.min(i64::MAX as u64) as i64));
    let (limit, offset) = (args.len() - 1, args.len());
    let cols = select_columns();
    let mut streams = Vec::new();
    if q.source != Some(Source::Csv) {
        let (filter, _) = filter_sql_of(q, 3, EventRows::NotCsv);
        streams.push(format!(
            "(SELECT {cols}, event_at AS sort_at, id AS sort_id FROM predictions
              WHERE source <> 'csv' AND {ids} {filter}{cursor}
              ORDER BY event_at DESC, id DESC LIMIT ${limit}::int8 + ${offset}::int8)"
        ));
    }
    if q.csv_rows_can_match() {
        let (filter, _) = filter_sql_of(q, 3, EventRows::OfUpload);
        streams.push(format!(
            "(SELECT p.* FROM csv_uploads u CROSS JOIN LATERAL (
                  SELECT {cols}, event_at AS sort_at, id AS sort_id FROM predictions
                  WHERE id >= u.first_id AND id <= {upload_below} AND {ids} {filter}
                  ORDER BY id DESC LIMIT ${limit}::int8 + ${offset}::int8) p
              WHERE u.last_id >= $1 AND u.first_id <= $2{upload_cursor}
              ORDER BY u.uploaded_at DESC, u.first_id DESC, p.sort_id DESC LIMIT ${limit}::int8 + ${offset}::int8)"
        ));
    }
    if streams.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT * FROM ({}) page ORDER BY sort_at DESC, sort_id DESC LIMIT ${limit} OFFSET ${offset}",
        streams.join(" UNION ALL ")
    );
    let rows = tx.query(&tx.prepare_cached(&sql).await?, &refs(&args)).await?;
    rows.iter().map(row_to_stored).collect()
}

/// Up to `limit` rows with `after < id <= upto`, in id order, with their
/// labels (the alert evaluation's page).
pub(super) async fn page_after(
    tx: &Transaction<'_>,
    after: i64,
    upto: i64,
    limit: i64,
) -> Result<Vec<StoredPrediction>> {
    let sql = format!("SELECT {} FROM predictions WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3", select_columns());
    let rows = tx.query(&tx.prepare_cached(&sql).await?, &[&after, &upto, &limit]).await?;
    let mut results = rows.iter().map(row_to_stored).collect::<Result<Vec<_>>>()?;
    attach(tx, &mut results).await?;
    Ok(results)
}

/// Where a page starts: `(start, skip)` such that the page is the matching
/// rows with `id >= start` after skipping `skip` of them, `skip` being less
/// than one block's rows. The block is found by summing `id_chunks` and
/// `id_blocks` in the database (two queries at most), never by walking rows.
async fn seek(
    tx: &Transaction<'_>,
    from: i64,
    hi: i64,
    offset: i64,
    blocks: BlockFilter,
    filter: &str,
    fargs: &[String],
) -> Result<(i64, i64)> {
    let source = blocks.source.map(Source::as_str);
    let prediction = blocks.suspicious.map(label);
    let filtered = source.is_some() || prediction.is_some();
    if offset == 0 && !filtered {
        return Ok((from, 0));
    }
    let block_size = 1i64 << BLOCK_SHIFT;
    // Ids start at 1 (the sequence's first, as SQLite's rowids copied by
    // `migrate-store`): from 1 is from the start of block 0, no partial
    // block to count.
    let mut start = if from <= 1 { 0 } else { from };
    let mut remaining = offset;
    if offset > 0 && start % block_size != 0 {
        // The partial block at `from`: its matching rows.
        let block_end = (start | (block_size - 1)).min(hi);
        let counted = BlockCount { tx, filter, fargs, source, prediction };
        let n = counted.rows_in_block(start, block_end).await? as i64;
        if n > remaining {
            // Unfiltered rows as many as the ids: the page starts by arithmetic.
            return Ok(if !filtered && n == block_end - start + 1 {
                (start + remaining, 0)
            } else {
                (start, remaining)
            });
        }
        remaining -= n;
        start = block_end.saturating_add(1);
    }
    // The first whole block (ending at or before `hi`) whose running total
    // passes what is left to skip: found among the blocks of `start`'s
    // chunk, the whole chunks after it, and the blocks of the last, partial
    // chunk; inside a chunk, among its 64 blocks. What is read does not grow
    // with the offset (a chunk is 2^18 ids).
    let last_whole = (hi.saturating_add(1) >> BLOCK_SHIFT) - 1;
    let first = start >> BLOCK_SHIFT;
    if last_whole >= first {
        let r = tx
            .query_one(&tx.prepare_cached(SEEK_SQL).await?, &[&first, &last_whole, &source, &prediction, &remaining])
            .await?;
        let (lo, hi_block, before, total, unit_rows): (Option<i64>, Option<i64>, Option<i64>, i64, Option<i64>) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        if let (Some(lo), Some(hi_block), Some(before), Some(mut rows)) = (lo, hi_block, before, unit_rows) {
            let mut remaining = remaining - before;
            let mut block = lo;
            if hi_block > lo {
                let inside = tx
                    .query_opt(
                        &tx.prepare_cached(BLOCK_IN_CHUNK_SQL).await?,
                        &[&lo, &hi_block, &source, &prediction, &remaining],
                    )
                    .await?
                    .ok_or_else(|| Error::Internal(format!("id chunk of block {lo} disagrees with its blocks")))?;
                block = inside.get(0);
                remaining -= inside.get::<_, i64>(1);
                rows = inside.get(2);
            }
            let block_start = block << BLOCK_SHIFT;
            // A block of unfiltered rows holding every id it can (block 0
            // has no id 0): the page starts by arithmetic, no row stepped
            // over.
            let first_id = block_start.max(1);
            if !filtered && rows == block_start + block_size - first_id && block_start >= start {
                return Ok((first_id + remaining, 0));
            }
            return Ok((block_start.max(start), remaining));
        }
        // Every whole block was skipped: what is left lies in the partial
        // block at `hi` (or nowhere).
        remaining -= total;
        start = start.max((last_whole + 1) << BLOCK_SHIFT);
    }
    Ok((start, remaining.max(0)))
}

/// Blocks `$1..=$2` (whole ones) as units of [`seek`]: those of `$1`'s
/// chunk, then whole chunks (`id_chunks`), then the blocks of the last
/// chunk, each with its rows of source `$3` and label `$4`. Returns the first
/// unit whose running total passes `$5` (its first and last block, the
/// rows before it and its own; all `NULL` when none does) and the units'
/// total.
const SEEK_SQL: &str = "WITH units AS (
        SELECT block AS lo, block AS hi, SUM(n)::int8 AS n FROM id_blocks
        WHERE block >= $1 AND block <= LEAST($2, $1 | 63::int8)
          AND ($3::text IS NULL OR source = $3) AND ($4::text IS NULL OR prediction = $4)
        GROUP BY block
        UNION ALL
        SELECT chunk << 6, (chunk << 6) | 63::int8, SUM(n)::int8 FROM id_chunks
        WHERE chunk > ($1 >> 6) AND chunk < (($2 + 1) >> 6)
          AND ($3::text IS NULL OR source = $3) AND ($4::text IS NULL OR prediction = $4)
        GROUP BY chunk
        UNION ALL
        SELECT block, block, SUM(n)::int8 FROM id_blocks
        WHERE block > ($1 | 63::int8) AND block >= ((($2 + 1) >> 6) << 6) AND block <= $2
          AND ($3::text IS NULL OR source = $3) AND ($4::text IS NULL OR prediction = $4)
        GROUP BY block
    ), running AS (
        SELECT lo, hi, n, SUM(n) OVER (ORDER BY lo) AS cum FROM units
    )
    SELECT f.lo, f.hi, f.before, (SELECT COALESCE(SUM(n), 0)::int8 FROM units), f.n
    FROM (SELECT 1) one
    LEFT JOIN (SELECT lo, hi, (cum - n)::int8 AS before, n FROM running WHERE cum > $5::int8 ORDER BY lo LIMIT 1) f
        ON true";

/// The rows of block `$1` of source `$2` and label `$3`.
const BLOCK_ROWS_SQL: &str = "SELECT COALESCE(SUM(n), 0)::int8 FROM id_blocks
    WHERE block = $1 AND ($2::text IS NULL OR source = $2) AND ($3::text IS NULL OR prediction = $3)";

/// The block of chunk `$1..=$2` (blocks) whose running total of rows of
/// source `$3` and label `$4` passes `$5`, with the rows before it and its own.
const BLOCK_IN_CHUNK_SQL: &str = "SELECT block, (cum - n)::int8, n FROM (
        SELECT block, SUM(n)::int8 AS n, SUM(SUM(n)) OVER (ORDER BY block) AS cum
        FROM id_blocks WHERE block >= $1 AND block <= $2
          AND ($3::text IS NULL OR source = $3) AND ($4::text IS NULL OR prediction = $4)
        GROUP BY block) t
    WHERE cum > $5::int8 ORDER BY block LIMIT 1";

/// The inclusive id range `q`'s `min_id`/`max_id`/`from`/`to` allow, or
/// `None` when no stored row can match.
async fn resolve_range(tx: &Transaction<'_>, q: &ResultsQuery) -> Result<Option<(i64, i64)>> {
    let (mut lo, mut hi) = (q.min_id.unwrap_or(0).max(0), q.max_id.unwrap_or(i64::MAX));
    let (from, to) = q.ingest_range();
    if from.is_some() || to.is_some() {
        match id_range(tx, from, to).await? {
            Some((a, b)) => {
                lo = lo.max(a);
                hi = hi.min(b);
            }
            None => return Ok(None),
        }
    }
    Ok((lo <= hi).then_some((lo, hi)))
}

/// Rows with `lo <= id <= hi` passing `filter`: whole blocks summed from
/// `id_blocks` when the filter allows, the partial blocks at both ends
/// counted row by row.
async fn range_count(
    tx: &Transaction<'_>,
    lo: i64,
    hi: i64,
    filter: &str,
    fargs: &[String],
    by_blocks: Option<BlockFilter>,
) -> Result<u64> {
    let first_block = (lo.max(0) + (1 << BLOCK_SHIFT) - 1) >> BLOCK_SHIFT;
    let last_block = (hi.saturating_add(1) >> BLOCK_SHIFT) - 1;
    let Some(f) = by_blocks.filter(|_| first_block <= last_block) else {
        return count_rows(tx, lo, hi, filter, fargs).await;
    };
    let (source, prediction) = (f.source.map(Source::as_str), f.suspicious.map(label));
    let whole = async {
        let stmt = tx
            .prepare_cached(
                "SELECT COALESCE(SUM(n), 0)::int8 FROM id_blocks WHERE block BETWEEN $1 AND $2
                    AND ($3::text IS NULL OR source = $3) AND ($4::text IS NULL OR prediction = $4)",
            )
            .await?;
        let n: i64 = tx.query_one(&stmt, &[&first_block, &last_block, &source, &prediction]).await?.get(0);
        Ok::<u64, Error>(n.max(0) as u64)
    };
    let counted = BlockCount { tx, filter, fargs, source, prediction };
    let (whole, head, tail) = tokio::try_join!(
        whole,
        counted.rows_in_block(lo.max(0), (first_block << BLOCK_SHIFT) - 1),
        counted.rows_in_block((last_block + 1) << BLOCK_SHIFT, hi)
    )?;
    Ok(whole + head + tail)
}

/// Rows with `lo <= id <= hi` passing `filter`, counted row by row.
async fn count_rows(tx: &Transaction<'_>, lo: i64, hi: i64, filter: &str, fargs: &[String]) -> Result<u64> {
    let sql = format!("SELECT COUNT(*) FROM predictions WHERE id >= $1 AND id <= $2 {filter}");
    let args = with(vec![Box::new(lo), Box::new(hi)], fargs);
    let n: i64 = tx.query_one(&tx.prepare_cached(&sql).await?, &refs(&args)).await?.get(0);
    Ok(n.max(0) as u64)
}

/// Counts inside one id block for a filter `id_blocks` answers (`filter`
/// is its SQL, `source` and `prediction` its values).
struct BlockCount<'a> {
    tx: &'a Transaction<'a>,
    filter: &'a str,
    fargs: &'a [String],
    source: Option<&'static str>,
    prediction: Option<&'static str>,
}

impl BlockCount<'_> {
    /// The matching rows of `a..=b` (inside one block), counted on the
    /// shorter side: directly, or as the block's count less the rows of the
    /// rest of it (from 1 that is the block's count less nothing: ids start
    /// at 1).
    async fn rows_in_block(&self, a: i64, b: i64) -> Result<u64> {
        let BlockCount { tx, filter, fargs, source, prediction } = *self;
        if a > b {
            return Ok(0);
        }
        let block = a >> BLOCK_SHIFT;
        let (start, end) = (block << BLOCK_SHIFT, (block << BLOCK_SHIFT) + (1 << BLOCK_SHIFT) - 1);
        if (a - start) + (end - b) > b - a {
            return count_rows(tx, a, b, filter, fargs).await;
        }
        let stmt = tx.prepare_cached(BLOCK_ROWS_SQL).await?;
        let total: i64 = tx.query_one(&stmt, &[&block, &source, &prediction]).await?.get(0);
        let before = if a > start.max(1) { count_rows(tx, start, a - 1, filter, fargs).await? } else { 0 };
        let after = if b < end { count_rows(tx, b + 1, end, filter, fargs).await? } else { 0 };
        Ok((total.max(0) as u64).saturating_sub(before + after))
    }
}

/// The rows of an event-time range (see [`ResultsQuery::hourly_split`]):
/// its whole hours summed from `rollup_hourly`, which the writers keep by
/// event hour in the rows' transactions, and only the rows of its two edge
/// hours counted, through `predictions_event` and `csv_uploads`.
async fn hourly_count(tx: &Transaction<'_>, split: &HourlySplit) -> Result<u64> {
    let source = split.source.map(Source::as_str);
    let prediction = split.suspicious.map(label);
    let whole: i64 = tx
        .query_one(
            &tx.prepare_cached(
                "SELECT COALESCE(SUM(n), 0)::int8 FROM rollup_hourly
                 WHERE hour >= ($1::text::timestamp AT TIME ZONE 'UTC') AND hour < ($2::text::timestamp AT TIME ZONE 'UTC')
                   AND ($3::text IS NULL OR source = $3) AND ($4::text IS NULL OR prediction = $4)",
            )
            .await?,
            &[&split.hours.0, &split.hours.1, &source, &prediction],
        )
        .await?
        .get(0);
    let mut edges = 0;
    for (range, upper) in [(&split.head, "<"), (&split.tail, "<=")] {
        if let Some((lo, hi)) = range {
            edges += event_count(tx, Some(lo), Some(hi), upper, split.source, split.suspicious).await?;
        }
    }
    Ok(whole.max(0) as u64 + edges)
}

/// The rows with `from <= event_at` and `event_at {upper} to` (`<` or
/// `<=`; an open end is no bound) of `source` and label (each optional):
/// those of no upload counted through `predictions_event`, CSV rows by
/// their uploads of that time, each one's whole id blocks from `id_blocks`
/// and only the rows of its two edge blocks walked (an index count of a
/// few million CSV rows took seconds; these cost the same for any upload).
async fn event_count(
    tx: &Transaction<'_>,
    from: Option<&str>,
    to: Option<&str>,
    upper: &str,
    source: Option<Source>,
    suspicious: Option<bool>,
) -> Result<u64> {
    let (others_too, uploads_too) = (source != Some(Source::Csv), matches!(source, None | Some(Source::Csv)));
    let (source, prediction) = (source.map(Source::as_str), suspicious.map(label));
    // Open ends as the infinite times: bounds the index can always take.
    let (from, to) = (from.unwrap_or("-infinity"), to.unwrap_or("infinity"));
    let within = format!(
        " AND event_at >= ($1::text::timestamp AT TIME ZONE 'UTC')
              AND event_at {upper} ($2::text::timestamp AT TIME ZONE 'UTC')"
    );
    let others = async {
        if !others_too {
            return Ok::<i64, Error>(0);
        }
        let sql = format!(
            "SELECT COUNT(*) FROM predictions WHERE source <> 'csv'
                   AND ($3::text IS NULL OR source = $3) AND ($4::text IS NULL OR prediction = $4){within}"
        );
        Ok(tx.query_one(&tx.prepare_cached(&sql).await?, &[&from, &to, &source, &prediction]).await?.get(0))
    };
    let uploads = async {
        if !uploads_too {
            return Ok::<i64, Error>(0);
        }
        let (shift, of_uploads) = (BLOCK_SHIFT, within.replace("event_at", "uploaded_at"));
        let sql = format!(
            "WITH u AS (
                     SELECT first_id, last_id, ((first_id + (1 << {shift}) - 1) >> {shift}) << {shift} AS whole_from,
                            ((last_id + 1) >> {shift}) << {shift} AS whole_to
                     FROM csv_uploads WHERE true{of_uploads})
                 SELECT (SELECT COALESCE(SUM(b.n), 0)::int8 FROM u JOIN id_blocks b ON b.source = 'csv'
                             AND b.block >= u.whole_from >> {shift} AND b.block < u.whole_to >> {shift}
                             AND ($3::text IS NULL OR b.prediction = $3))
                      + (SELECT COALESCE(SUM(
                             (SELECT COUNT(*) FROM predictions p
                              WHERE p.id >= u.first_id AND p.id <= LEAST(u.last_id, u.whole_from - 1)
                                AND ($3::text IS NULL OR p.prediction = $3))
                           + (SELECT COUNT(*) FROM predictions p
                              WHERE p.id >= GREATEST(u.first_id, u.whole_from, u.whole_to) AND p.id <= u.last_id
                                AND ($3::text IS NULL OR p.prediction = $3))), 0)::int8 FROM u)"
        );
        Ok(tx.query_one(&tx.prepare_cached(&sql).await?, &[&from, &to, &prediction]).await?.get(0))
    };
    let (others, uploads) = tokio::try_join!(others, uploads)?;
    Ok((others.max(0) + uploads.max(0)) as u64)
}

/// The id range of the rows stored between `from` and `to` (inclusive,
/// `YYYY-MM-DD HH:MM:SS` UTC); `None` when no row falls inside. A binary
/// search over ids, as in SQLite: rows' times grow with their ids (each
/// transaction stamps its start and takes its ids as it commits), so a
/// boundary may be off by the rows of transactions running at that moment.
async fn id_range(tx: &Transaction<'_>, from: Option<&str>, to: Option<&str>) -> Result<Option<(i64, i64)>> {
    let r = tx.query_one("SELECT (SELECT MIN(id) FROM predictions), (SELECT MAX(id) FROM predictions)", &[]).await?;
    let (Some(min), Some(max)) = (r.get::<_, Option<i64>>(0), r.get::<_, Option<i64>>(1)) else { return Ok(None) };
    let at = tx
        .prepare_cached(&format!("SELECT id, {} FROM predictions WHERE id >= $1 ORDER BY id LIMIT 1", ts("created_at")))
        .await?;
    async fn search(
        tx: &Transaction<'_>,
        at: &tokio_postgres::Statement,
        min: i64,
        max: i64,
        pred: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Option<i64>> {
        let (mut lo, mut hi) = (min, max + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = tx.query_one(at, &[&mid]).await?;
            let (id, created): (i64, String) = (r.get(0), r.get(1));
            if pred(&created) {
                hi = mid.min(id);
            } else {
                lo = id + 1;
            }
        }
        Ok((lo <= max).then_some(lo))
    }
    let lo = match from {
        Some(f) => match search(tx, &at, min, max, &|t| t >= f).await? {
            Some(id) => id,
            None => return Ok(None),
        },
        None => min,
    };
    let hi = match to {
        Some(t) => match search(tx, &at, min, max, &|c| c > t).await? {
            Some(id) => id - 1,
            None => max,
        },
        None => max,
    };
    Ok((lo <= hi).then_some((lo, hi)))
}

fn row_to_stored(r: &tokio_postgres::Row) -> Result<StoredPrediction> {
    let bad = |what: String| Error::Internal(format!("stored row: {what}"));
    let reasons: Vec<Reason> = serde_json::from_str(r.get::<_, &str>(14)).map_err(|e| bad(e.to_string()))?;
    let commands: Option<&str> = r.get(12);
    let mut stored = StoredPrediction {
        id: r.get(0),
        created_at: r.get(1),
        event_at: r.get(21),
        source: Source::parse(r.get(2))?,
        suspicious: r.get::<_, &str>(3) == "Suspicious",
        confidence: r.get(4),
        fingerprint: Fingerprint {
            login_hour: r.get::<_, i32>(5).clamp(0, 255) as u8,
            session_duration_min: r.get::<_, f64>(6) as f32,
            commands: r.get::<_, i64>(7).clamp(0, u32::MAX as i64) as u32,
            failed_logins: r.get::<_, i64>(8).clamp(0, u32::MAX as i64) as u32,
            protocol: Protocol::parse(r.get(9)).map_err(|e| bad(e.to_string()))?,
            typing_speed_wpm: r.get::<_, Option<f64>>(10).map(|v| v as f32),
            risky_commands: r.get::<_, Option<i64>>(11).map(|v| v.clamp(0, u32::MAX as i64) as u32),
        },
        commands: commands.map(serde_json::from_str).transpose().map_err(|e| bad(e.to_string()))?,
        model_version: r.get(13),
        reasons: Vec::new(),
        device: r.get(15),
        agent: AgentContext {
            kind: r.get(16),
            source_ip: r.get(17),
            user: r.get(18),
            started_at: r.get(19),
            ended_at: r.get(20),
            evidence: r.get(22),
        },
        analyst: None,
    };
    stored.reasons = Reason::words(&reasons, &stored.fingerprint);
    Ok(stored)
}

/// Fills in the analyst labels of a page with one range read (over the
/// page's ids, in whatever order the page is).
async fn attach(tx: &Transaction<'_>, rows: &mut [StoredPrediction]) -> Result<()> {
    let (Some(first), Some(last)) = (rows.iter().map(|r| r.id).min(), rows.iter().map(|r| r.id).max()) else {
        return Ok(());
    };
    let by_id: std::collections::HashMap<i64, usize> = rows.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    let sql = format!(
        "SELECT prediction_id, analyst_label, {}, note FROM feedback
         WHERE prediction_id BETWEEN $1 AND $2 ORDER BY prediction_id",
        ts("labelled_at")
    );
    for r in tx.query(&tx.prepare_cached(&sql).await?, &[&first, &last]).await? {
        let id: i64 = r.get(0);
        if let Some(&at) = by_id.get(&id) {
            rows[at].analyst = Some(AnalystLabel {
                suspicious: r.get::<_, &str>(1) == "Suspicious",
                labelled_at: r.get(2),
                note: r.get(3),
            });
        }
    }
    Ok(())
}

fn splits(rows: Vec<tokio_postgres::Row>) -> Vec<Split> {
    rows.iter()
        .map(|r| Split {
            key: r.get(0),
            normal: r.get::<_, i64>(1).max(0) as u64,
            suspicious: r.get::<_, i64>(2).max(0) as u64,
        })
        .collect()
}

const SPLIT: &str = "COALESCE(SUM(n) FILTER (WHERE prediction = 'Normal'), 0)::int8,
    COALESCE(SUM(n) FILTER (WHERE prediction = 'Suspicious'), 0)::int8";

/// The analytics page's data, from the roll-ups and counters only.
pub(super) async fn insights(c: &mut ClientWrapper, bucket: Bucket, until: Option<&str>) -> Result<Insights> {
    let tx = snapshot(c).await?;
    let (unit, fmt, count) = match bucket {
        Bucket::Hour => ("hour", "YYYY-MM-DD HH24:00:00", HOURS_SHOWN),
        Bucket::Day => ("day", "YYYY-MM-DD", DAYS_SHOWN),
    };
    // Every bucket of the window ending at the latest roll-up, oldest first,
    // so gaps show as zeros.
    let sql = format!(
        "WITH latest AS (SELECT date_trunc('{unit}', COALESCE($2::text::timestamp, MAX(hour) AT TIME ZONE 'UTC')) AS t
                         FROM rollup_hourly),
              keys AS (SELECT g FROM latest,
                  generate_series(latest.t - ($1::int - 1) * interval '1 {unit}', latest.t, interval '1 {unit}') g)
         SELECT to_char(k.g, '{fmt}'), {SPLIT}
         FROM keys k LEFT JOIN rollup_hourly r
           ON r.hour >= (SELECT MIN(g) FROM keys) AT TIME ZONE 'UTC'
          AND date_trunc('{unit}', r.hour AT TIME ZONE 'UTC') = k.g
         GROUP BY k.g ORDER BY k.g"
    );
    let over_time = splits(tx.query(&tx.prepare_cached(&sql).await?, &[&(count as i32), &until]).await?);
    let window = match (over_time.first(), over_time.last()) {
        (Some(a), Some(b)) => Some((a.key.clone(), b.key.clone())),
        _ => None,
    };
    let found = splits(tx.query(&format!("SELECT protocol, {SPLIT} FROM rollup_hourly GROUP BY protocol"), &[]).await?);
    let by_protocol =
        Protocol::ALL.iter().filter_map(|p| found.iter().find(|s| s.key == p.as_str()).cloned()).collect();
    let found = splits(tx.query(&format!("SELECT source, {SPLIT} FROM counters GROUP BY source"), &[]).await?);
    let by_source =
        ["single", "csv", "agent"].iter().filter_map(|s| found.iter().find(|f| f.key == *s).cloned()).collect();
    let by_device = splits(
        tx.query(
            &format!(
                "SELECT device, {SPLIT} FROM counters WHERE device <> '' GROUP BY device
                 ORDER BY SUM(n) DESC, device LIMIT $1"
            ),
            &[&i64::from(TOP_N)],
        )
        .await?,
    );
    let top_sources = tx
        .query(
            "SELECT source_ip, suspicious, total FROM source_ips WHERE suspicious > 0
             ORDER BY suspicious DESC, source_ip LIMIT $1",
            &[&i64::from(TOP_N)],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64, r.get::<_, i64>(2).max(0) as u64))
        .collect();
    tx.commit().await?;
    Ok(Insights { over_time, window, by_protocol, by_source, by_device, top_sources })
}

/// Rows per read while exporting: bounds memory whatever the export's size.
const EXPORT_CHUNK: i64 = 2000;

/// `out` may block (it is a bounded channel to a slow client): every write
/// to it runs on a blocking thread, never on the runtime's.
struct BlockingOut(Option<Box<dyn Write + Send>>);

impl BlockingOut {
    async fn write(&mut self, bytes: Vec<u8>) -> Result<()> {
        let mut out = self.0.take().ok_or_else(|| Error::Internal("csv export: output lost".into()))?;
        let out = tokio::task::spawn_blocking(move || out.write_all(&bytes).and_then(|()| out.flush()).map(|()| out))
            .await
            .map_err(|e| Error::Internal(format!("csv export: {e}")))??;
        self.0 = Some(out);
        Ok(())
    }
}

/// Writes the predictions matching `q` (filters and ranges; paging ignored)
/// as scored CSV, in id order, from one snapshot.
pub(super) async fn export(c: &mut ClientWrapper, q: &ResultsQuery, out: Box<dyn Write + Send>) -> Result<u64> {
    let mut out = BlockingOut(Some(out));
    let tx = snapshot(c).await?;
    out.write(format!("{EXPORT_HEADER}\n").into_bytes()).await?;
    let Some((lo, hi)) = resolve_range(&tx, q).await? else {
        tx.commit().await?;
        return Ok(0);
    };
    let (filter, fargs) = filter_sql(q, 3);
    let sql = format!(
        "SELECT login_hour, session_duration, commands_count, failed_logins, protocol, typing_speed, prediction,
                confidence, reasons, id, {}, source, device, source_ip, {}, \"user\", kind, commands
         FROM predictions WHERE id > $1 AND id <= $2 {filter} ORDER BY id LIMIT {EXPORT_CHUNK}",
        ts("created_at"),
        ts("event_at")
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let mut after = lo - 1;
    let mut written = 0u64;
    loop {
        let args = with(vec![Box::new(after), Box::new(hi)], &fargs);
        let rows = tx.query(&stmt, &refs(&args)).await?;
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::with_capacity(1 << 16));
        for r in &rows {
            let reasons: Vec<String> = serde_json::from_str(r.get::<_, &str>(8)).unwrap_or_default();
            let typing: Option<f64> = r.get(5);
            let id: i64 = r.get(9);
            w.write_record([
                r.get::<_, i32>(0).to_string(),
                (r.get::<_, f64>(1) as f32).to_string(),
                r.get::<_, i64>(2).to_string(),
                r.get::<_, i64>(3).to_string(),
                r.get::<_, String>(4),
                typing.map(|t| (t as f32).to_string()).unwrap_or_default(),
                r.get::<_, String>(6),
                r.get::<_, f64>(7).to_string(),
                spreadsheet_safe(reasons.join("; ")),
                id.to_string(),
                spreadsheet_safe(r.get::<_, String>(10)),
                spreadsheet_safe(r.get::<_, String>(11)),
                spreadsheet_safe(r.get::<_, Option<String>>(12).unwrap_or_default()),
                spreadsheet_safe(r.get::<_, Option<String>>(13).unwrap_or_default()),
                r.get::<_, String>(14),
                spreadsheet_safe(r.get::<_, Option<String>>(15).unwrap_or_default()),
                r.get::<_, Option<String>>(16).unwrap_or_default(),
                commands_cell(r.get::<_, Option<&str>>(17)),
            ])
            .map_err(|e| Error::Internal(format!("csv export: {e}")))?;
            after = id;
        }
        written += rows.len() as u64;
        out.write(w.into_inner().map_err(|e| Error::Internal(format!("csv export: {e}")))?).await?;
        if (rows.len() as i64) < EXPORT_CHUNK {
            break;
        }
    }
    tx.commit().await?;
    Ok(written)
}
