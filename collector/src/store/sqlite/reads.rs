//! Reads: a small pool of read-only connections (WAL lets them run beside
//! the writer), the counters, and pages of stored predictions.
//!
//! A page is found by id, never by walking rows it skips: a cursor
//! (`after_id`) is a primary-key seek; an `offset` walks the per-4,096-id
//! block counts (`id_blocks`) to the block where the page starts and only
//! counts rows inside that block; an id or time range is turned into ids
//! first (time grows with id, see [`id_range`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bfp_common::{Fingerprint, Protocol};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::feedback;
use crate::error::{Error, Result};
use crate::store::model::{event_time_sql, label, EventRows};
use crate::store::{
    AgentContext, HourlySplit, Order, Reason, ResultsPage, ResultsQuery, Source, StoredPrediction, Totals,
};

const SELECT_COLUMNS: &str = "id, created_at, source, prediction, confidence, login_hour, session_duration,
    commands_count, failed_logins, protocol, typing_speed, risky_commands, commands, model_version, reasons, device,
    kind, source_ip, user, started_at, ended_at, event_at, evidence";

pub(super) struct ReadPool {
    pub(super) path: PathBuf,
    pub(super) idle: Mutex<Vec<Connection>>,
    pub(super) max_idle: usize,
}

impl ReadPool {
    pub(super) fn get(&self) -> Result<Connection> {
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

    pub(super) fn put(&self, c: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.max_idle {
                idle.push(c);
            }
        }
    }

    /// Runs a read on a pooled connection off the async runtime.
    pub(super) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
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
pub(super) struct CounterFilter<'a> {
    source: Option<Source>,
    device: Option<&'a str>,
    suspicious: Option<bool>,
}

pub(super) fn totals(c: &Connection, f: &CounterFilter<'_>) -> Result<Totals> {
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

/// Counters per (source, label), for `/metrics`.
pub(super) fn counters(c: &Connection) -> Result<Vec<(String, String, u64)>> {
    let mut stmt =
        c.prepare_cached("SELECT source, prediction, SUM(n) FROM counters GROUP BY source, prediction ORDER BY 1, 2")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// One page of `q` with its filtered total, from one snapshot.
pub(super) fn results(c: &Connection, q: &ResultsQuery) -> Result<ResultsPage> {
    // One read transaction: the count and the page see the same snapshot.
    let tx = c.unchecked_transaction()?;
    let (filter, mut args) = filter_sql(q, 3);
    // A label filter cannot come from the counters either.
    let (count, lo, hi) = if is_ranged(q) || q.labelled.is_some() {
        // An id or time range: the counters cannot say, count in the range.
        match resolve_range(&tx, q)? {
            Some((lo, hi)) => match (q.hourly_split(), q.event_range_alone()) {
                (Some(split), _) => (hourly_count(&tx, &split)?, lo, hi),
                // Less than an hour's range (or times the split does not take).
                (None, Some((from, to))) => (event_count(&tx, from, to, "<=", q.source, q.suspicious)?, lo, hi),
                (None, None) => (range_count(&tx, lo, hi, &filter, &args, BlockFilter::of(q))?, lo, hi),
            },
            None => (0, 1, 0),
        }
    } else {
        let f = CounterFilter { source: q.source, device: q.device.as_deref(), suspicious: q.suspicious };
        (totals(&tx, &f)?.total(), 0, i64::MAX)
    };
    if q.order == Order::Newest {
        let mut results = newest_page(&tx, q, lo, hi, args)?;
        feedback::attach(&tx, &mut results)?;
        tx.finish()?;
        return Ok(ResultsPage { count, results });
    }
    let after = q.after_id.unwrap_or(0).max(lo - 1);
    let offset = q.offset.min(i64::MAX as u64) as i64;
    // Where the page's rows may start (`id >= from`), and how many matching
    // rows from there SQLite still skips (fewer than one block's worth once
    // the blocks found it).
    let (from, skip) = match BlockFilter::of(q) {
        Some(blocks) => seek(&tx, after.saturating_add(1), hi, offset, blocks, &filter, &args)?,
        // A device or analyst-label filter: id_blocks cannot count it, so
        // SQLite walks its index (the cursor, `after_id`, stays a seek).
        None => (after.saturating_add(1), offset),
    };
    let mut bind: Vec<rusqlite::types::Value> = vec![from.into(), hi.into()];
    bind.append(&mut args);
    bind.push(i64::from(q.limit).into());
    bind.push(skip.into());
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM predictions WHERE id >= ?1 AND id <= ?2 {filter} ORDER BY id LIMIT ?{} OFFSET ?{}",
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

/// A page of `q` newest first (event time, then id, descending) among ids
/// `lo..=hi` passing its filters (their values in `args`, numbered from
/// `?3`).
///
/// Two streams merged in that order: the rows of no upload, walking
/// `predictions_event (event_at, id)` backwards, and the uploads newest
/// first (`csv_uploads_time`), each one's rows backwards by id (an upload's
/// rows share its time). A cursor (`before_id`: one look-up of its event
/// time) is a seek in both; an offset walks the rows it skips. A user or
/// address filter walks that value's own index in the same order.
fn newest_page(
    c: &Connection,
    q: &ResultsQuery,
    lo: i64,
    hi: i64,
    mut args: Vec<rusqlite::types::Value>,
) -> Result<Vec<StoredPrediction>> {
    let mut bind: Vec<rusqlite::types::Value> = vec![lo.into(), hi.into()];
    bind.append(&mut args);
    // Without an id range the ids are not named at all: a range on the
    // rowid would tempt the planner away from the event-time index.
    let ids = if lo <= 0 && hi == i64::MAX { "?1 <= ?2" } else { "id >= ?1 AND id <= ?2" };
    let mut cursor = None;
    if let Some(before) = q.before_id {
        let at: Option<String> = c
            .prepare_cached("SELECT event_at FROM predictions WHERE id = ?1")?
            .query_row([before], |r| r.get(0))
            .optional()?;
        let Some(at) = at else {
            return Err(Error::BadInput(format!("before_id {before} is not a stored result")));
        };
        bind.push(at.into());
        bind.push(before.into());
        cursor = Some(bind.len() - 1);
    }
    bind.push(i64::from(q.limit).into());
    bind.push((q.offset.min(i64::MAX as u64) as i64).into());
    let streams = NewestStreams::of(q);
    let sql = newest_sql(q, ids, streams, cursor, bind.len() - 1);
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(bind), row_to_stored)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Which streams of [`newest_page`] can hold rows of `q`.
#[derive(Debug, Clone, Copy)]
struct NewestStreams {
    others: bool,
    uploads: bool,
}

impl NewestStreams {
    fn of(q: &ResultsQuery) -> NewestStreams {
        NewestStreams { others: q.source != Some(Source::Csv), uploads: q.csv_rows_can_match() }
    }
}

/// The statement of [`newest_page`]: the cursor's time and id at
/// `?cursor` and the one after it, limit and offset at `?limit_at` and the
/// one after it. Both streams give `(time, upload, id)` after the columns,
/// in which order SQLite merges them: a row of no upload gives its id as
/// its upload (it lies in no upload's range, so it sorts among uploads of
/// its time as its id does).
fn newest_sql(q: &ResultsQuery, ids: &str, streams: NewestStreams, cursor: Option<usize>, limit_at: usize) -> String {
    let mut arms = Vec::new();
    if streams.others {
        let (filter, _) = filter_sql_of(q, 3, EventRows::NotCsv);
        let cursor = cursor.map(|at| format!(" AND (event_at, id) < (?{at}, ?{})", at + 1)).unwrap_or_default();
        arms.push(format!(
            "SELECT {SELECT_COLUMNS}, event_at AS sort_at, id AS sort_upload, id AS sort_id FROM predictions
             WHERE source <> 'csv' AND {ids} {filter}{cursor}"
        ));
    }
    if streams.uploads {
        let (filter, _) = filter_sql_of(q, 3, EventRows::OfUpload);
        // An upload of the cursor's very time: only its ids below the cursor's.
        let (after, below) = match cursor {
            Some(at) => (
                format!(" AND u.uploaded_at <= ?{at}"),
                format!("CASE WHEN u.uploaded_at < ?{at} THEN u.last_id ELSE MIN(u.last_id, ?{} - 1) END", at + 1),
            ),
            None => (String::new(), "u.last_id".to_string()),
        };
        arms.push(format!(
            "SELECT {SELECT_COLUMNS}, u.uploaded_at AS sort_at, u.first_id AS sort_upload, id AS sort_id FROM csv_uploads u
             JOIN predictions ON id >= u.first_id AND id <= {below}
             WHERE u.last_id >= ?1 AND u.first_id <= ?2{after} AND {ids} {filter}"
        ));
    }
    if arms.is_empty() {
        arms.push(format!(
            "SELECT {SELECT_COLUMNS}, NULL AS sort_at, NULL AS sort_upload, NULL AS sort_id FROM predictions WHERE 0"
        ));
    }
    format!(
        "{} ORDER BY sort_at DESC, sort_upload DESC, sort_id DESC LIMIT ?{limit_at} OFFSET ?{}",
        arms.join(" UNION ALL "),
        limit_at + 1
    )
}

/// Finds where a page starts: the `offset`-th row (from 0) matching `blocks`
/// (and `filter_sql`, the same conditions as SQL) among ids `from..=hi`.
/// Returns `(start, skip)`: the page is the matching rows with `id >= start`
/// after skipping `skip` of them, where `skip` is less than the rows of one
/// block, so SQLite never walks more than one block of skipped rows.
///
/// Whole blocks are skipped by their counts in `id_blocks`; only a partial
/// block at `from` is counted row by row. With no filter and dense ids (the
/// normal case: nothing deletes predictions) the start is arithmetic.
fn seek(
    c: &Connection,
    from: i64,
    hi: i64,
    offset: i64,
    blocks: BlockFilter,
    filter_sql: &str,
    args: &[rusqlite::types::Value],
) -> Result<(i64, i64)> {
    let filtered = blocks.source.is_some() || blocks.suspicious.is_some();
    if offset == 0 {
        if !filtered {
            return Ok((from, 0));
        }
        // Nothing matches before the first block that holds a match: a long
        // run of the other label is skipped in one look-up.
        return Ok(match first_possible_id(c, from, hi, blocks)? {
            Some(first) => (first, 0),
            None => (hi.saturating_add(1), 0),
        });
    }
    if !filtered {
        let (min, max, total): (Option<i64>, Option<i64>, i64) = c.query_row(
            "SELECT (SELECT MIN(id) FROM predictions), (SELECT MAX(id) FROM predictions),
                    (SELECT COALESCE(SUM(n), 0) FROM counters)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let (Some(min), Some(max)) = (min, max) else { return Ok((from, 0)) };
        if max - min + 1 == total {
            return Ok((from.max(min).saturating_add(offset), 0));
        }
    }
    let block_size = 1i64 << BLOCK_SHIFT;
    let mut start = from;
    let mut remaining = offset;
    if start % block_size != 0 {
        // The partial block at `from`: count its matching rows.
        let block_end = (start | (block_size - 1)).min(hi);
        let mut bind: Vec<rusqlite::types::Value> = vec![start.into(), block_end.into()];
        bind.extend(args.iter().cloned());
        let sql = format!("SELECT COUNT(*) FROM predictions WHERE id >= ?1 AND id <= ?2 {filter_sql}");
        let n: i64 = c.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(bind), |r| r.get(0))?;
        if n > remaining {
            return Ok((start, remaining));
        }
        remaining -= n;
        start = block_end.saturating_add(1);
    }
    // Whole blocks that end at or before `hi`, in order; entries of one
    // block (one per source and label) are adjacent in the primary key.
    let last_whole = (hi.saturating_add(1) >> BLOCK_SHIFT) - 1;
    let mut stmt = c.prepare_cached(
        "SELECT block, n FROM id_blocks WHERE block >= ?1 AND block <= ?2
            AND (?3 IS NULL OR source = ?3) AND (?4 IS NULL OR prediction = ?4) ORDER BY block",
    )?;
    let mut rows = stmt.query(params![
        start >> BLOCK_SHIFT,
        last_whole,
        blocks.source.map(Source::as_str),
        blocks.suspicious.map(label)
    ])?;
    let mut current: Option<(i64, i64)> = None;
    loop {
        let next: Option<(i64, i64)> = match rows.next()? {
            Some(r) => Some((r.get(0)?, r.get(1)?)),
            None => None,
        };
        match (current, next) {
            (Some((block, n)), Some((b, more))) if b == block => current = Some((block, n + more)),
            (done, next) => {
                if let Some((block, n)) = done {
                    if n > remaining {
                        return Ok((block << BLOCK_SHIFT, remaining));
                    }
                    remaining -= n;
                    start = (block + 1) << BLOCK_SHIFT;
                }
                match next {
                    Some(entry) => current = Some(entry),
                    None => break,
                }
            }
        }
    }
    // Every whole block was skipped: what is left lies in the partial block
    // at `hi` (or nowhere), past the last whole block.
    if last_whole >= start >> BLOCK_SHIFT {
        start = start.max((last_whole + 1) << BLOCK_SHIFT);
    }
    Ok((start, remaining))
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
        event_at: r.get(21)?,
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
            evidence: r.get(22)?,
        },
        analyst: None,
    };
    stored.reasons = Reason::words(&reasons, &stored.fingerprint);
    Ok(stored)
}

/// Whether `q` restricts ids or time (so its count cannot come from the
/// counters table).
pub(super) fn is_ranged(q: &ResultsQuery) -> bool {
    let (from, to) = q.ingest_range();
    q.min_id.is_some() || q.max_id.is_some() || from.is_some() || to.is_some() || q.has_row_filters()
}

/// The inclusive id range `q`'s `min_id`/`max_id`/`from`/`to` allow, or
/// `None` when no stored row can match.
pub(super) fn resolve_range(c: &Connection, q: &ResultsQuery) -> Result<Option<(i64, i64)>> {
    let (mut lo, mut hi) = (q.min_id.unwrap_or(0).max(0), q.max_id.unwrap_or(i64::MAX));
    let (from, to) = q.ingest_range();
    if from.is_some() || to.is_some() {
        match id_range(c, from, to)? {
            Some((a, b)) => {
                lo = lo.max(a);
                hi = hi.min(b);
            }
            None => return Ok(None),
        }
    }
    Ok((lo <= hi).then_some((lo, hi)))
}

/// Rows with `lo <= id <= hi` passing `filter_sql` (numbered from `?3`).
///
/// Nothing deletes predictions and SQLite gives each new row the next id, so
/// ids are normally dense: then an unfiltered range is counted by arithmetic,
/// checked against the counters' total. Otherwise, when the filter is at most
/// a source and a label (`by_blocks`), whole blocks of 4,096 ids are summed
/// from `id_blocks` and only the partial blocks at the two ends are counted
/// row by row; other filters (device, analyst label) count the range.
pub(super) fn range_count(
    c: &Connection,
    lo: i64,
    hi: i64,
    filter_sql: &str,
    args: &[rusqlite::types::Value],
    by_blocks: Option<BlockFilter>,
) -> Result<u64> {
    if filter_sql.is_empty() {
        let (min, max, total): (Option<i64>, Option<i64>, i64) = c.query_row(
            // Separate sub-queries: SQLite answers a lone MIN or MAX from the
            // b-tree's end, but scans the table for both in one SELECT.
            "SELECT (SELECT MIN(id) FROM predictions), (SELECT MAX(id) FROM predictions),
                    (SELECT COALESCE(SUM(n), 0) FROM counters)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let (Some(min), Some(max)) = (min, max) else { return Ok(0) };
        if max - min + 1 == total {
            return Ok((hi.min(max) - lo.max(min) + 1).max(0) as u64);
        }
    }
    let count_rows = |lo: i64, hi: i64| -> Result<u64> {
        let mut bind: Vec<rusqlite::types::Value> = vec![(lo - 1).into(), hi.into()];
        bind.extend(args.iter().cloned());
        let sql = count_sql(lo <= 0 && hi == i64::MAX, filter_sql);
        let n: i64 = c.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(bind), |r| r.get(0))?;
        Ok(n as u64)
    };
    // Whole blocks inside the range: from the first block starting at or
    // after `lo` to the last one ending at or before `hi`.
    let first_block = (lo.max(0) + (1 << BLOCK_SHIFT) - 1) >> BLOCK_SHIFT;
    let last_block = (hi.saturating_add(1) >> BLOCK_SHIFT) - 1;
    let Some(filter) = by_blocks.filter(|_| first_block <= last_block) else {
        return count_rows(lo, hi);
    };
    let whole: i64 = c
        .prepare_cached(
            "SELECT COALESCE(SUM(n), 0) FROM id_blocks WHERE block BETWEEN ?1 AND ?2
                AND (?3 IS NULL OR source = ?3) AND (?4 IS NULL OR prediction = ?4)",
        )?
        .query_row(
            params![first_block, last_block, filter.source.map(Source::as_str), filter.suspicious.map(label)],
            |r| r.get(0),
        )?;
    let head = count_rows(lo, (first_block << BLOCK_SHIFT) - 1)?;
    let tail = count_rows((last_block + 1) << BLOCK_SHIFT, hi)?;
    Ok(whole as u64 + head + tail)
}

/// The rows of an event-time range (see [`ResultsQuery::hourly_split`]):
/// its whole hours summed from `rollup_hourly`, which the writer keeps by
/// event hour in the rows' transactions, and only the rows of its two edge
/// hours counted, through `predictions_event` and `csv_uploads`.
pub(super) fn hourly_count(c: &Connection, split: &HourlySplit) -> Result<u64> {
    let whole: i64 = c
        .prepare_cached(
            "SELECT COALESCE(SUM(n), 0) FROM rollup_hourly WHERE hour >= ?1 AND hour < ?2
                AND (?3 IS NULL OR source = ?3) AND (?4 IS NULL OR prediction = ?4)",
        )?
        .query_row(
            params![split.hours.0, split.hours.1, split.source.map(Source::as_str), split.suspicious.map(label)],
            |r| r.get(0),
        )?;
    let edge = |range: &Option<(String, String)>, upper: &str| -> Result<u64> {
        let Some((lo, hi)) = range else { return Ok(0) };
        event_count(c, Some(lo), Some(hi), upper, split.source, split.suspicious)
    };
    Ok(whole as u64 + edge(&split.head, "<")? + edge(&split.tail, "<=")?)
}

/// The rows with `from <= event_at` and `event_at {upper} to` (`<` or
/// `<=`; an open end is no bound) of `source` and label (each optional):
/// those of no upload counted through `predictions_event`, CSV rows by
/// their uploads of that time, each one's whole id blocks from `id_blocks`
/// and only the rows of its two edge blocks walked.
fn event_count(
    c: &Connection,
    from: Option<&str>,
    to: Option<&str>,
    upper: &str,
    source: Option<Source>,
    suspicious: Option<bool>,
) -> Result<u64> {
    // Open ends as times every stored one sorts after or before.
    let (from, to) = (from.unwrap_or(""), to.unwrap_or("~"));
    let (source, prediction) = (source.map(Source::as_str), suspicious.map(label));
    let others: i64 = if source == Some("csv") {
        0
    } else {
        c.prepare_cached(&edge_count_sql(upper))?.query_row(params![from, to, source, prediction], |r| r.get(0))?
    };
    let uploads: i64 = if source.is_some_and(|s| s != "csv") {
        0
    } else {
        c.prepare_cached(&upload_count_sql(upper))?.query_row(params![from, to, prediction], |r| r.get(0))?
    };
    Ok((others + uploads) as u64)
}

/// Counts the rows of no upload with `?1 <= event_at` and `event_at {upper}
/// ?2` of source `?3` and label `?4` (each optional). `+source`,
/// `+prediction`: not the source's or the label's partial id index (every
/// row of that source), the event-time index (an hour's rows).
fn edge_count_sql(upper: &str) -> String {
    format!(
        "SELECT COUNT(*) FROM predictions WHERE source <> 'csv' AND event_at >= ?1 AND event_at {upper} ?2
            AND (?3 IS NULL OR +source = ?3) AND (?4 IS NULL OR +prediction = ?4)"
    )
}

/// Counts the CSV rows of label `?3` (optional) uploaded with `?1 <=
/// uploaded_at` and `uploaded_at {upper} ?2`: each upload's whole id blocks
/// from `id_blocks` (every id of them is the upload's), the rows of its
/// partial blocks at both ends walked by id.
fn upload_count_sql(upper: &str) -> String {
    let shift = BLOCK_SHIFT;
    format!(
        "WITH u AS (
             SELECT first_id, last_id, ((first_id + (1 << {shift}) - 1) >> {shift}) << {shift} AS whole_from,
                    ((last_id + 1) >> {shift}) << {shift} AS whole_to
             FROM csv_uploads WHERE uploaded_at >= ?1 AND uploaded_at {upper} ?2)
         SELECT (SELECT COALESCE(SUM(b.n), 0) FROM u JOIN id_blocks b ON b.source = 'csv'
                     AND b.block >= u.whole_from >> {shift} AND b.block < u.whole_to >> {shift}
                     AND (?3 IS NULL OR b.prediction = ?3))
              + (SELECT COALESCE(SUM(
                     (SELECT COUNT(*) FROM predictions p
                      WHERE p.id >= u.first_id AND p.id <= MIN(u.last_id, u.whole_from - 1)
                        AND (?3 IS NULL OR p.prediction = ?3))
                   + (SELECT COUNT(*) FROM predictions p
                      WHERE p.id >= MAX(u.first_id, u.whole_from, u.whole_to) AND p.id <= u.last_id
                        AND (?3 IS NULL OR p.prediction = ?3))), 0) FROM u)"
    )
}

/// Counts the rows with `?1 < id <= ?2` passing `filter_sql`; `whole`: the
/// range is every id, so ids are not named and the filter's own index (user,
/// address, event time) does the counting rather than a walk of the table.
fn count_sql(whole: bool, filter_sql: &str) -> String {
    let ids = if whole { "?1 < ?2" } else { "id > ?1 AND id <= ?2" };
    format!("SELECT COUNT(*) FROM predictions WHERE {ids} {filter_sql}")
}

/// Where a page of rows matching `filter` with ids in `from..=hi` can start:
/// `from`, or the first id of the first block after it that holds a
/// matching row; `None` when no block up to `hi` does. A page of a label
/// filter walks ids, so this skips long runs of the other label (a burst of
/// a million Suspicious rows before the next Normal one) in one look-up.
pub(super) fn first_possible_id(c: &Connection, from: i64, hi: i64, filter: BlockFilter) -> Result<Option<i64>> {
    let block: Option<i64> = c
        .prepare_cached(
            "SELECT block FROM id_blocks WHERE block BETWEEN ?1 AND ?2
                AND (?3 IS NULL OR source = ?3) AND (?4 IS NULL OR prediction = ?4) ORDER BY block LIMIT 1",
        )?
        .query_row(
            params![
                from >> BLOCK_SHIFT,
                hi >> BLOCK_SHIFT,
                filter.source.map(Source::as_str),
                filter.suspicious.map(label)
            ],
            |r| r.get(0),
        )
        .optional()?;
    Ok(block.map(|b| from.max(b << BLOCK_SHIFT)))
}

/// The filters `id_blocks` can answer: a source and a label, each optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BlockFilter {
    /// Only this source.
    pub source: Option<Source>,
    /// Only this label (`true` = Suspicious).
    pub suspicious: Option<bool>,
}

impl BlockFilter {
    /// `q`'s filters, if `id_blocks` can count them (no device, no analyst
    /// label, none of the row filters).
    pub(super) fn of(q: &ResultsQuery) -> Option<BlockFilter> {
        (q.device.is_none() && q.labelled.is_none() && !q.has_row_filters())
            .then_some(BlockFilter { source: q.source, suspicious: q.suspicious })
    }
}

/// `AND ...` conditions for `q`'s source/device/prediction filters, with
/// their values, numbering parameters from `?first`.
pub(super) fn filter_sql(q: &ResultsQuery, first: usize) -> (String, Vec<rusqlite::types::Value>) {
    filter_sql_of(q, first, EventRows::All)
}

/// [`filter_sql`] for the rows of `rows`; the values are the same whatever
/// `rows`, in the same order.
fn filter_sql_of(q: &ResultsQuery, first: usize, rows: EventRows) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = String::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(s) = q.source {
        // A literal (one of three constants), not a parameter: only then can
        // SQLite use the partial index of that source's ids.
        sql.push_str(&format!(" AND source = '{}'", s.as_str()));
    }
    if let Some(d) = &q.device {
        args.push(d.clone().into());
        sql.push_str(&format!(" AND device = ?{}", first + args.len() - 1));
    }
    if let Some(s) = q.suspicious {
        // A literal, not a parameter: only then can SQLite use the partial
        // index of Suspicious rows (the value is one of two constants).
        sql.push_str(if s { " AND prediction = 'Suspicious'" } else { " AND prediction = 'Normal'" });
    }
    if let Some(l) = q.labelled {
        sql.push_str(feedback::filter_clause(l));
    }
    let mut text = |sql: &mut String, value: &str, condition: &str| {
        args.push(value.to_string().into());
        sql.push_str(&condition.replace('#', &format!("?{}", first + args.len() - 1)));
    };
    if let Some(u) = &q.user {
        text(&mut sql, u, " AND user = #");
    }
    if let Some(ip) = &q.source_ip {
        text(&mut sql, ip, " AND source_ip = #");
    }
    if let Some(k) = &q.kind {
        text(&mut sql, k, " AND kind = #");
    }
    if let Some(p) = q.reason_pattern() {
        text(&mut sql, &p, " AND reasons LIKE # ESCAPE '\\'");
    }
    if let Some((from, to)) = q.event_range() {
        let mut within = String::new();
        if let Some(f) = from {
            text(&mut within, f, " AND event_at >= #");
        }
        if let Some(t) = to {
            text(&mut within, t, " AND event_at <= #");
        }
        // Only an agent's or single rows: the index alone.
        let rows = if q.source.is_some() && rows == EventRows::All { EventRows::NotCsv } else { rows };
        sql.push_str(&event_time_sql(&within, rows));
    }
    if let Some(c) = q.min_confidence {
        args.push(c.into());
        sql.push_str(&format!(" AND confidence >= ?{}", first + args.len() - 1));
    }
    (sql, args)
}

/// Rows per id block of [`ID_BLOCKS`], as a shift: 4,096 ids.
pub(super) const BLOCK_SHIFT: u32 = 12;

/// The id range `[lo, hi]` of the rows stored between `from` and `to`
/// (inclusive, `created_at` form); `None` when no row falls inside.
///
/// Rows are stored by one writer in time order, so `created_at` grows with
/// `id`: a binary search over ids (a few dozen primary-key look-ups) finds the
/// bounds without an index on time. A wall clock stepped backwards can put a
/// boundary off by the rows stored during the step.
pub(super) fn id_range(c: &Connection, from: Option<&str>, to: Option<&str>) -> Result<Option<(i64, i64)>> {
    let (min, max): (Option<i64>, Option<i64>) =
        c.query_row("SELECT (SELECT MIN(id) FROM predictions), (SELECT MAX(id) FROM predictions)", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(min), Some(max)) = (min, max) else { return Ok(None) };
    let mut at = c.prepare_cached("SELECT id, created_at FROM predictions WHERE id >= ?1 ORDER BY id LIMIT 1")?;
    let mut first_at = |id: i64| -> Result<(i64, String)> { Ok(at.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?) };
    // Smallest id whose created_at satisfies `pred` (monotone: false..true), or None.
    let mut search = |pred: &dyn Fn(&str) -> bool| -> Result<Option<i64>> {
        let (mut lo, mut hi) = (min, max + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (id, created) = first_at(mid)?;
            if pred(&created) {
                hi = mid.min(id);
            } else {
                lo = id + 1;
            }
        }
        Ok((lo <= max).then_some(lo))
    };
    let lo = match from {
        Some(f) => match search(&|t| t >= f)? {
            Some(id) => id,
            None => return Ok(None),
        },
        None => min,
    };
    let hi = match to {
        Some(t) => match search(&|c| c > t)? {
            Some(id) => id - 1,
            None => max,
        },
        None => max,
    };
    Ok((lo <= hi).then_some((lo, hi)))
}

#[cfg(test)]
mod tests {
    use super::super::{SqliteConfig, SqliteStore};
    use super::*;
    use crate::store::backends::{fingerprint, prediction};
    use crate::store::{CsvRow, NewPrediction, Predictions, Store};

    /// The ids of the page `q` asks for, found by walking the rows in SQL.
    fn walked(path: &std::path::Path, q: &ResultsQuery) -> Vec<i64> {
        let c = Connection::open(path).unwrap();
        let (lo, hi) = match resolve_range(&c, q).unwrap() {
            Some(range) => range,
            None => return Vec::new(),
        };
        let (filter, args) = filter_sql(q, 3);
        let mut bind: Vec<rusqlite::types::Value> = vec![lo.max(q.after_id.unwrap_or(0) + 1).into(), hi.into()];
        bind.extend(args);
        let sql = format!(
            "SELECT id FROM predictions WHERE id >= ?1 AND id <= ?2 {filter} ORDER BY id LIMIT {} OFFSET {}",
            q.limit, q.offset
        );
        let mut stmt = c.prepare(&sql).unwrap();
        let ids = stmt.query_map(rusqlite::params_from_iter(bind), |r| r.get(0)).unwrap();
        ids.collect::<rusqlite::Result<_>>().unwrap()
    }

    /// Every combination of offset (around block boundaries), filter and
    /// range gives the page that walking the rows gives.
    async fn check_offset_pages(store: &SqliteStore, path: &std::path::Path, dense: bool) {
        let offsets =
            [0, 1, 99, 4_095, 4_096, 4_097, 5_000, 8_190, 8_191, 8_192, 12_000, 16_000, 18_999, 19_000, 25_000];
        let sources = [None, Some(Source::Csv), Some(Source::Single), Some(Source::Agent)];
        let mut pages = 0;
        for offset in offsets {
            for source in sources {
                for suspicious in [None, Some(true), Some(false)] {
                    for (after_id, min_id, max_id) in
                        [(None, None, None), (Some(4_000), None, None), (None, Some(3), Some(13_000))]
                    {
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
                        let got: Vec<i64> =
                            store.results(q.clone()).await.unwrap().results.iter().map(|r| r.id).collect();
                        assert_eq!(got, walked(path, &q), "dense {dense}: {q:?}");
                        pages += 1;
                    }
                }
            }
        }
        assert_eq!(pages, offsets.len() * 4 * 3 * 3);
    }

    /// A newest-first page walks an index in its order, never sorts the
    /// table: with no filter, a cursor, a user or an address filter.
    #[test]
    fn newest_first_pages_walk_an_index_in_order() {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::migrations::migrate(&mut c).unwrap();
        // SQLite's plan of `sql`, its steps joined, every parameter unbound.
        let plan_of = |sql: &str| -> String {
            let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let unbound = vec![rusqlite::types::Value::Null; stmt.parameter_count()];
            let steps: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(unbound), |r| r.get::<_, String>(3))
                .unwrap()
                .map(|d| d.unwrap())
                .collect();
            steps.join(" / ")
        };
        let cases: [(ResultsQuery, &str); 4] = [
            (ResultsQuery::default(), "predictions_event"),
            (ResultsQuery { kind: Some("source".into()), ..ResultsQuery::default() }, "predictions_event"),
            (ResultsQuery { user: Some("root".into()), ..ResultsQuery::default() }, "predictions_user_event"),
            (ResultsQuery { source_ip: Some("192.0.2.1".into()), ..ResultsQuery::default() }, "predictions_ip_event"),
        ];
        for (q, index) in cases {
            let (_, args) = filter_sql(&q, 3);
            let streams = NewestStreams::of(&q);
            for cursor in [false, true] {
                let at = 3 + args.len();
                let limit_at = at + if cursor { 2 } else { 0 };
                let plan = plan_of(&newest_sql(&q, "?1 <= ?2", streams, cursor.then_some(at), limit_at));
                assert!(plan.contains(index), "{q:?} cursor {cursor}: {plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{q:?} cursor {cursor}: sorts: {plan}");
                // The uploads newest first, each one's rows by id.
                assert_eq!(plan.contains("csv_uploads_time"), streams.uploads, "{q:?} cursor {cursor}: {plan}");
            }
        }
        // Their counts use the same indexes (an event-time range too).
        let ranged = ResultsQuery {
            from: Some("2026-03-27 00:00:00".into()),
            to: Some("2026-03-28 00:00:00".into()),
            ..ResultsQuery::default()
        };
        let counts: [(ResultsQuery, &str); 3] = [
            (ranged, "predictions_event"),
            (ResultsQuery { user: Some("root".into()), ..ResultsQuery::default() }, "predictions_user_event"),
            (ResultsQuery { source_ip: Some("192.0.2.1".into()), ..ResultsQuery::default() }, "predictions_ip_event"),
        ];
        for (q, index) in counts {
            let (filter, _) = filter_sql(&q, 3);
            let plan = plan_of(&count_sql(true, &filter));
            assert!(plan.contains(index), "count {q:?}: {plan}");
        }
        // The edge hours of an event-time count walk event time, whatever
        // the source and label.
        for upper in ["<", "<="] {
            let plan = plan_of(&edge_count_sql(upper));
            assert!(plan.contains("predictions_event"), "edge {upper}: {plan}");
            // Uploads by their time, their rows by id: no row walked in order
            // of anything else.
            let plan = plan_of(&upload_count_sql(upper));
            assert!(plan.contains("csv_uploads_time"), "uploads {upper}: {plan}");
            assert!(!plan.contains("SCAN p"), "uploads {upper}: {plan}");
        }
    }

    #[tokio::test]
    async fn offset_pages_found_by_block_counts_equal_walking_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let store = SqliteStore::open(&SqliteConfig::new(&path)).unwrap();
        // CSV uploads and grouped single/agent writes over five blocks of
        // 4,096 ids, with runs of one label longer than a block.
        let csv = |n: usize, suspicious: &dyn Fn(usize) -> bool| -> Vec<CsvRow> {
            (0..n).map(|i| CsvRow::new(&fingerprint(suspicious(i)), suspicious(i), 0.9, &[])).collect()
        };
        store.commit_csv_rows(csv(5_000, &|i| i % 7 < 3)).await.unwrap();
        let mixed = |n: usize| -> Vec<NewPrediction> {
            (0..n)
                .map(|i| match i % 3 {
                    0 => prediction(Source::Single, i % 2 == 0, None),
                    _ => prediction(Source::Agent, i % 5 == 0, Some("pi-1")),
                })
                .collect()
        };
        store.insert(mixed(700)).await.unwrap();
        store.commit_csv_rows(csv(6_000, &|_| true)).await.unwrap();
        store.insert(mixed(300)).await.unwrap();
        store.commit_csv_rows(csv(7_000, &|i| i % 11 == 0)).await.unwrap();
        let total = 5_000 + 700 + 6_000 + 300 + 7_000;

        check_offset_pages(&store, &path, true).await;

        // A device filter is not in the block counts: SQLite walks it.
        for offset in [0, 150, 466, 467, 1_000] {
            let q = ResultsQuery { limit: 5, offset, device: Some("pi-1".into()), ..ResultsQuery::default() };
            let got: Vec<i64> = store.results(q.clone()).await.unwrap().results.iter().map(|r| r.id).collect();
            assert_eq!(got, walked(&path, &q), "{q:?}");
        }

        // Ids with a gap (rows purged, the counts kept in step): the
        // unfiltered offset cannot be arithmetic and walks the blocks too.
        store.shutdown().await;
        drop(store);
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "DELETE FROM predictions WHERE id BETWEEN 4000 AND 9000;
                 DELETE FROM id_blocks;
                 INSERT INTO id_blocks SELECT id >> 12, source, prediction, COUNT(*) FROM predictions GROUP BY 1, 2, 3;
                 DELETE FROM counters;
                 INSERT INTO counters SELECT source, COALESCE(device, ''), prediction, COUNT(*)
                     FROM predictions GROUP BY 1, 2, 3;",
            )
            .unwrap();
        let store = SqliteStore::open(&SqliteConfig::new(&path)).unwrap();
        assert_eq!(store.totals().await.unwrap().total(), total - 5_001);
        check_offset_pages(&store, &path, false).await;
        store.shutdown().await;
    }
}
