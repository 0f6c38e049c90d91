//! The values that cross the store seam: what the API hands a store to keep
//! and what a store answers. Nothing here knows which database holds them.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bfp_common::{explain, Fingerprint, Protocol};
use serde::{Deserialize, Serialize};

use super::feedback::AnalystLabel;
use crate::error::{Error, Result};

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

pub(crate) fn label(suspicious: bool) -> &'static str {
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Reason {
    /// A feature of the schema that drove the verdict (index into
    /// `bfp_common::FEATURE_NAMES`).
    Feature(u8),
    /// A sentence, stored as is.
    Text(String),
}

// By hand rather than `#[serde(untagged)]`: untagged buffers each value and
// tries `Feature` first, so every text reason cost a formatted error message
// (the larger part of decoding a row's reasons when alerts read pages).
impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Reason, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Reason;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a feature index (0-255) or a sentence")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Reason, E> {
                u8::try_from(v)
                    .map(Reason::Feature)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Reason, E> {
                u8::try_from(v)
                    .map(Reason::Feature)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Reason, E> {
                Ok(Reason::Text(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> std::result::Result<Reason, E> {
                Ok(Reason::Text(v))
            }
        }
        d.deserialize_any(Visit)
    }
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
    /// What the agent found beyond the fingerprint, as a JSON object
    /// (`log`, `host`, `campaign`, `details`: user names tried, auth method,
    /// campaign members, ...); `None` from agents before wire version 4.
    pub evidence: Option<String>,
}

/// Which time `from`/`to` filter on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimeField {
    /// When it happened: an agent record's start, else the time of ingest.
    #[default]
    Event,
    /// When the collector stored it (`created_at`).
    Ingest,
}

/// The order of a page of results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// By id, oldest stored first: the original system's order, paged with
    /// `after_id`.
    #[default]
    Id,
    /// By event time, newest first (ties by id, newest first), paged with
    /// `before_id`.
    Newest,
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
    /// Only rows at or after this time (`YYYY-MM-DD HH:MM:SS`, UTC), of
    /// the event or of ingest as `time` says.
    pub from: Option<String>,
    /// Only rows at or before this time (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub to: Option<String>,
    /// Which time `from` and `to` mean (event time unless asked).
    pub time: TimeField,
    /// The page's order.
    pub order: Order,
    /// Keyset cursor of [`Order::Newest`]: only rows after this one in that
    /// order (older event time, or the same and a smaller id).
    pub before_id: Option<i64>,
    /// Only rows an analyst labelled (`true`) or did not (`false`).
    pub labelled: Option<bool>,
    /// Only this user name (exact).
    pub user: Option<String>,
    /// Only this source address (exact, as stored).
    pub source_ip: Option<String>,
    /// Only this record kind (`session`, `source`, `device`).
    pub kind: Option<String>,
    /// Only rows whose stored reasons contain this text (case-insensitive
    /// for ASCII). Reasons the model's features gave are stored as feature
    /// indexes and worded when read, so this finds the agent's and other
    /// stored sentences, not those.
    pub reason: Option<String>,
    /// Only rows with at least this confidence.
    pub min_confidence: Option<f64>,
}

impl ResultsQuery {
    /// Whether a filter the counters and block counts cannot answer is set
    /// (user, address, kind, reason, confidence, event time): then counts
    /// and offsets are found in the rows.
    pub fn has_row_filters(&self) -> bool {
        self.user.is_some()
            || self.source_ip.is_some()
            || self.kind.is_some()
            || self.reason.is_some()
            || self.min_confidence.is_some()
            || self.event_range().is_some()
    }

    /// Whether `from`/`to` can be read as ingest time: asked for, or only
    /// single and CSV rows are wanted, whose event time is their time of
    /// ingest (stored from the same clock in the same statement), so the
    /// range is answered from ids instead of walking the event-time index.
    fn range_is_ingest_time(&self) -> bool {
        self.time == TimeField::Ingest || matches!(self.source, Some(Source::Single | Source::Csv))
    }

    /// `from`/`to` when they must be read on the event time.
    pub fn event_range(&self) -> Option<(Option<&str>, Option<&str>)> {
        (!self.range_is_ingest_time() && (self.from.is_some() || self.to.is_some()))
            .then_some((self.from.as_deref(), self.to.as_deref()))
    }

    /// `from`/`to` when they can be read on the ingest time (answered from
    /// ids, as rows are stored in time order).
    pub fn ingest_range(&self) -> (Option<&str>, Option<&str>) {
        if self.range_is_ingest_time() {
            (self.from.as_deref(), self.to.as_deref())
        } else {
            (None, None)
        }
    }

    /// Whether CSV rows can pass the filters: they have no device, user,
    /// address or kind.
    pub fn csv_rows_can_match(&self) -> bool {
        matches!(self.source, None | Some(Source::Csv))
            && self.device.is_none()
            && self.user.is_none()
            && self.source_ip.is_none()
            && self.kind.is_none()
    }

    /// `from`/`to` read on the event time when the only other filters are a
    /// source and a label (what the roll-ups and block counts keep).
    pub fn event_range_alone(&self) -> Option<(Option<&str>, Option<&str>)> {
        let other_filters = self.min_id.is_some()
            || self.max_id.is_some()
            || self.device.is_some()
            || self.labelled.is_some()
            || self.user.is_some()
            || self.source_ip.is_some()
            || self.kind.is_some()
            || self.reason.is_some()
            || self.min_confidence.is_some();
        self.event_range().filter(|_| !other_filters)
    }

    /// How the count of an event-time range can come from the hourly
    /// roll-ups: when `from`/`to` are read on the event time and the only
    /// other filters are a source and a label (what `rollup_hourly` keeps,
    /// by event hour), whole hours are summed from the roll-ups and only the
    /// rows of the two edge hours are counted. `None`: the rows are counted.
    pub fn hourly_split(&self) -> Option<HourlySplit> {
        let (from, to) = self.event_range_alone()?;
        // Hours are cut from the `YYYY-MM-DD HH:MM:SS` form (the API's);
        // years whose next hour would leave four digits keep the walk.
        let usable = |t: &str| {
            t.len() == 19
                && t.is_char_boundary(13)
                && t.get(..4).is_some_and(|y| y < "9999")
                && next_hour(&format!("{}:00:00", &t[..13])).is_some()
        };
        if !from.is_none_or(usable) || !to.is_none_or(usable) {
            return None;
        }
        let first_hour = match from {
            Some(f) => {
                let floor = format!("{}:00:00", &f[..13]);
                if floor == f {
                    floor
                } else {
                    next_hour(&floor)?
                }
            }
            None => OPEN_START.to_string(),
        };
        let end_hour = match to {
            Some(t) => format!("{}:00:00", &t[..13]),
            None => OPEN_END.to_string(),
        };
        if first_hour >= end_hour {
            // No whole hour inside: the range is at most two hours' rows.
            return None;
        }
        Some(HourlySplit {
            head: from.filter(|f| *f < first_hour.as_str()).map(|f| (f.to_string(), first_hour.clone())),
            tail: to.map(|t| (end_hour.clone(), t.to_string())),
            hours: (first_hour, end_hour),
            source: self.source,
            suspicious: self.suspicious,
        })
    }

    /// The reason search as a SQL `LIKE` pattern (`\` escapes).
    pub fn reason_pattern(&self) -> Option<String> {
        self.reason.as_ref().map(|r| {
            let mut p = String::from("%");
            for ch in r.chars() {
                if matches!(ch, '%' | '_' | '\\') {
                    p.push('\\');
                }
                p.push(ch);
            }
            p.push('%');
            p
        })
    }
}

/// Refuses CSV rows stored one by one: a CSV row is placed in event-time
/// order by its upload's row of `csv_uploads`, which only an upload
/// (`begin_csv`) writes.
pub(crate) fn refuse_csv_rows(rows: &[NewPrediction]) -> Result<()> {
    if rows.iter().any(|p| p.source == Source::Csv) {
        return Err(Error::Internal("CSV rows are stored by an upload, not one by one".into()));
    }
    Ok(())
}

/// The rows an event-time filter is written for. `predictions_event` holds
/// every row but those of CSV uploads, whose place in event-time order is
/// their upload's row in `csv_uploads`: an event-time range is read on the
/// index for the others and on the uploads' id ranges for CSV rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventRows {
    /// Any row.
    All,
    /// Rows of no upload (the statement says `source <> 'csv'`).
    NotCsv,
    /// The rows of the upload `u` (a `csv_uploads` row the statement joins).
    OfUpload,
}

/// `within` (`AND` conditions on `event_at`, with their placeholders) for
/// `rows`, as SQL both backends take. For any row, as two arms the planner
/// can each read by an index: rows of no upload through `predictions_event`,
/// CSV rows by id between the first and last ids of the uploads of that time
/// (every CSV row of that time is in one of them; the conditions still hold
/// row by row). For an upload's rows, a condition on the upload alone: the
/// planner skips an upload outside the range without reading its rows.
pub(crate) fn event_time_sql(within: &str, rows: EventRows) -> String {
    let of_uploads = within.replace("event_at", "uploaded_at");
    match rows {
        EventRows::NotCsv => format!(" AND source <> 'csv'{within}"),
        EventRows::OfUpload => within.replace("event_at", "u.uploaded_at"),
        EventRows::All => format!(
            " AND ((source <> 'csv'{within}) OR (source = 'csv'{within}
                AND id >= COALESCE((SELECT MIN(first_id) FROM csv_uploads WHERE true{of_uploads}), 1)
                AND id <= COALESCE((SELECT MAX(last_id) FROM csv_uploads WHERE true{of_uploads}), 0)))"
        ),
    }
}

/// The lowest hour an open `from` stands for (a time both backends take).
const OPEN_START: &str = "0001-01-01 00:00:00";

/// Past the highest hour an open `to` stands for.
const OPEN_END: &str = "9999-12-31 23:59:59";

/// The hour after `hour` (`YYYY-MM-DD HH:00:00`), or `None` if it is not a
/// valid time of that form.
fn next_hour(hour: &str) -> Option<String> {
    let num = |r: std::ops::Range<usize>| hour.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?);
    let days = bfp_common::time::days_from_civil(i32::try_from(y).ok()?, u8::try_from(mo).ok()?, u8::try_from(d).ok()?);
    // A day the calendar does not have (the API takes 31 for every month)
    // keeps the walk: text and timestamps would order it differently.
    let same_day = bfp_common::time::format_utc(days * 86_400).get(..10) == hour.get(..10);
    (same_day && (0..24).contains(&h)).then(|| bfp_common::time::format_utc(days * 86_400 + (h + 1) * 3_600))
}

/// An event-time range's count split by [`ResultsQuery::hourly_split`]:
/// times are `YYYY-MM-DD HH:MM:SS`, UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlySplit {
    /// Rows with `head.0 <= event_at < head.1` are counted in the rows: the
    /// part of `from`'s hour after `from`.
    pub head: Option<(String, String)>,
    /// Whole hours with `hours.0 <= hour < hours.1`, summed from the
    /// roll-ups (an open end is a time no row reaches).
    pub hours: (String, String),
    /// Rows with `tail.0 <= event_at <= tail.1` are counted in the rows:
    /// `to`'s hour up to `to`.
    pub tail: Option<(String, String)>,
    /// Only this source.
    pub source: Option<Source>,
    /// Only this label (`true` = Suspicious).
    pub suspicious: Option<bool>,
}

/// One stored prediction as `/api/results` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPrediction {
    /// Row id, increasing in insertion order.
    pub id: i64,
    /// When it was stored, `YYYY-MM-DD HH:MM:SS`, UTC.
    pub created_at: String,
    /// When it happened, `YYYY-MM-DD HH:MM:SS`, UTC: an agent record's
    /// start, else the time of ingest.
    pub event_at: String,
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
    /// The analyst's label, if one was given (see [`super::feedback`]).
    pub analyst: Option<AnalystLabel>,
}

/// A page of stored predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsPage {
    /// Total rows matching the filters (not just this page).
    pub count: u64,
    /// The page, in the query's order.
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

/// Counters of the writer, for `/metrics`.
#[derive(Debug)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Rows committed.
    pub rows: AtomicU64,
    /// Time spent in committed write transactions, microseconds.
    pub busy_micros: AtomicU64,
    /// Transactions that failed and were rolled back.
    pub failures: AtomicU64,
    /// Seconds each committed write transaction took, from its start to its
    /// commit (a group of requests, an agents' group, or one CSV upload).
    pub commit_seconds: prometheus_client::metrics::histogram::Histogram,
    /// Agent batches answered by ingest (stored or recognised as retries).
    pub ingest_batches: AtomicU64,
    /// Records stored from agent batches.
    pub ingest_records: AtomicU64,
    /// Agent batches that had been stored before (retries): only their
    /// heartbeat was kept.
    pub ingest_duplicates: AtomicU64,
}

/// Upper bounds (seconds) of the latency histograms' buckets: from a
/// sub-millisecond commit or request on a quiet disk to a large upload.
pub const LATENCY_BUCKETS: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            commits: AtomicU64::default(),
            rows: AtomicU64::default(),
            busy_micros: AtomicU64::default(),
            failures: AtomicU64::default(),
            commit_seconds: prometheus_client::metrics::histogram::Histogram::new(LATENCY_BUCKETS),
            ingest_batches: AtomicU64::default(),
            ingest_records: AtomicU64::default(),
            ingest_duplicates: AtomicU64::default(),
        }
    }
}

impl WriterStats {
    /// Counts a committed transaction of `rows` rows that began at `started`.
    pub fn committed(&self, started: std::time::Instant, rows: u64) {
        let elapsed = started.elapsed();
        self.commits.fetch_add(1, Relaxed);
        self.rows.fetch_add(rows, Relaxed);
        self.busy_micros.fetch_add(elapsed.as_micros() as u64, Relaxed);
        self.commit_seconds.observe(elapsed.as_secs_f64());
    }

    /// Counts a transaction rolled back after an error.
    pub fn failed(&self) {
        self.failures.fetch_add(1, Relaxed);
    }

    /// Counts one answered ingest.
    pub fn ingested(&self, outcome: &super::IngestOutcome) {
        self.ingest_batches.fetch_add(1, Relaxed);
        self.ingest_records.fetch_add(outcome.stored, Relaxed);
        if outcome.duplicate {
            self.ingest_duplicates.fetch_add(1, Relaxed);
        }
    }
}

/// The writer's request queue, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterQueue {
    /// Requests waiting for the writer.
    pub depth: u64,
    /// Most requests that can wait; past it senders wait for room.
    pub capacity: u64,
}

impl WriterQueue {
    /// The queue behind a channel's sender.
    pub fn of<T>(tx: &tokio::sync::mpsc::Sender<T>) -> WriterQueue {
        let capacity = tx.max_capacity() as u64;
        WriterQueue { depth: capacity.saturating_sub(tx.capacity() as u64), capacity }
    }
}

/// Storage the database takes on disk, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageBytes {
    /// The database: the SQLite file, or PostgreSQL's `pg_database_size`.
    pub database: u64,
    /// SQLite's write-ahead log (`-wal` file); `None` for PostgreSQL, whose
    /// WAL is the cluster's, not one database's.
    pub wal: Option<u64>,
}

// ------------------------------------------------------------ CSV upload ---

/// One scored CSV row, ready to bind. Built by the CSV parser (off the
/// writer thread) so the writer only binds and steps.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow {
    pub(in crate::store) suspicious: bool,
    pub(in crate::store) confidence: f64,
    pub(in crate::store) login_hour: u8,
    pub(in crate::store) duration: f64,
    pub(in crate::store) commands: u32,
    pub(in crate::store) failed_logins: u32,
    pub(in crate::store) protocol: Protocol,
    pub(in crate::store) protocol_name: &'static str,
    pub(in crate::store) typing_speed: Option<f64>,
    pub(in crate::store) risky_commands: Option<u32>,
    pub(in crate::store) reasons: String,
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

/// The sending side of a CSV upload's transaction (see
/// [`super::Predictions::begin_csv`]).
pub type CsvSender = std::sync::mpsc::SyncSender<CsvChunk>;

/// Chunks in flight between a CSV parser and the writer: bounds memory.
pub const CSV_QUEUE: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_back_as_stored_and_bad_ones_are_refused() {
        let reasons = vec![Reason::Feature(3), Reason::Text("new source for this user".into()), Reason::Feature(0)];
        let text = serde_json::to_string(&reasons).unwrap();
        assert_eq!(text, r#"[3,"new source for this user",0]"#);
        assert_eq!(serde_json::from_str::<Vec<Reason>>(&text).unwrap(), reasons);
        for bad in ["[256]", "[-1]", "[1.5]", "[null]", r#"[{"a":1}]"#] {
            assert!(serde_json::from_str::<Vec<Reason>>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_event_range_splits_into_whole_hours_and_two_edges() {
        let q = |from: Option<&str>, to: Option<&str>| ResultsQuery {
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            ..ResultsQuery::default()
        };
        let pair = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        let split = q(Some("2026-03-27 10:30:00"), Some("2026-03-27 20:10:00")).hourly_split().unwrap();
        assert_eq!(split.head, pair("2026-03-27 10:30:00", "2026-03-27 11:00:00"));
        assert_eq!(split.hours, ("2026-03-27 11:00:00".to_string(), "2026-03-27 20:00:00".to_string()));
        assert_eq!(split.tail, pair("2026-03-27 20:00:00", "2026-03-27 20:10:00"));
        // On the hour: no head; open ends: no edge there.
        let split = q(Some("2026-03-27 10:00:00"), None).hourly_split().unwrap();
        assert_eq!((split.head, split.tail), (None, None));
        assert_eq!(split.hours, ("2026-03-27 10:00:00".to_string(), OPEN_END.to_string()));
        let split = q(None, Some("2026-03-27 23:59:59")).hourly_split().unwrap();
        assert_eq!(split.hours, (OPEN_START.to_string(), "2026-03-27 23:00:00".to_string()));
        // The next hour across a year's end and a leap day.
        let split = q(Some("2025-12-31 23:00:01"), Some("2026-01-01 05:00:00")).hourly_split().unwrap();
        assert_eq!(split.hours.0, "2026-01-01 00:00:00");
        assert_eq!(next_hour("2028-02-28 23:00:00").as_deref(), Some("2028-02-29 00:00:00"));
        // No whole hour inside, a day the calendar lacks, or another filter: counted in the rows.
        assert_eq!(q(Some("2026-03-27 10:30:00"), Some("2026-03-27 11:20:00")).hourly_split(), None);
        assert_eq!(q(Some("2026-02-31 10:30:00"), None).hourly_split(), None);
        let by_user = ResultsQuery { user: Some("root".into()), ..q(Some("2026-03-27 10:00:00"), None) };
        assert_eq!(by_user.hourly_split(), None);
        // Single and CSV rows' ranges are id ranges already.
        let single = ResultsQuery { source: Some(Source::Single), ..q(Some("2026-03-27 10:00:00"), None) };
        assert_eq!(single.hourly_split(), None);
    }
}
