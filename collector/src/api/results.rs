//! `GET /api/results`: pages of stored predictions, by cursor (`after_id`
//! in id order, `before_id` newest first) or `offset`, filtered by source,
//! device, label, id or time range (event time unless `time=ingest`),
//! analyst label, user, address, kind, reason text and confidence, with the
//! filtered total. Every parameter is checked here and named in its 400, an
//! unknown one too; the store makes a cursor's page fast at any depth.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::ApiQuery;
use super::{AppState, DEFAULT_PAGE, MAX_PAGE};
use crate::error::{Error, Result};
use crate::store::{insights, Order, ResultsQuery, Source, StoredPrediction, TimeField};

/// Query string of `/api/results`; all text, parsed below for precise errors.
/// An unknown parameter is a 400 naming it: a mistyped filter must not
/// answer every row.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResultsParams {
    limit: Option<String>,
    offset: Option<String>,
    after_id: Option<String>,
    source: Option<String>,
    device: Option<String>,
    prediction: Option<String>,
    min_id: Option<String>,
    max_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    labelled: Option<String>,
    time: Option<String>,
    order: Option<String>,
    before_id: Option<String>,
    user: Option<String>,
    source_ip: Option<String>,
    kind: Option<String>,
    reason: Option<String>,
    min_confidence: Option<String>,
}

/// A text filter: trimmed, empty means none, bounded in length.
fn text_param(name: &str, value: Option<String>) -> Result<Option<String>> {
    match value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
        Some(v) if v.len() > 256 => Err(Error::BadInput(format!("{name} is longer than 256 bytes"))),
        v => Ok(v),
    }
}

fn number<T: std::str::FromStr>(name: &str, value: Option<&str>) -> Result<Option<T>> {
    value
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| Error::BadInput(format!("{name} must be a non-negative integer, got {v:?}")))
        })
        .transpose()
}

fn time_param(name: &str, value: Option<&str>, end: bool) -> Result<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => insights::parse_time(name, v, end).map(Some),
    }
}

impl ResultsParams {
    pub(crate) fn into_query(self) -> Result<ResultsQuery> {
        let prediction = match self.prediction.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) if p.eq_ignore_ascii_case("suspicious") => Some(true),
            Some(p) if p.eq_ignore_ascii_case("normal") => Some(false),
            Some(p) => return Err(Error::BadInput(format!("prediction must be Normal or Suspicious, got {p:?}"))),
        };
        if self.before_id.is_some() && self.order.as_deref().map(str::trim) != Some("newest") {
            return Err(Error::BadInput("before_id pages order=newest; use after_id in id order".into()));
        }
        if self.after_id.is_some() && self.order.as_deref().map(str::trim) == Some("newest") {
            return Err(Error::BadInput("after_id pages id order; use before_id with order=newest".into()));
        }
        Ok(ResultsQuery {
            limit: number::<u32>("limit", self.limit.as_deref())?.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE),
            offset: number::<u64>("offset", self.offset.as_deref())?.unwrap_or(0),
            after_id: number::<i64>("after_id", self.after_id.as_deref())?,
            source: self.source.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(Source::parse).transpose()?,
            device: self.device.filter(|d| !d.is_empty()),
            suspicious: prediction,
            min_id: number::<i64>("min_id", self.min_id.as_deref())?,
            max_id: number::<i64>("max_id", self.max_id.as_deref())?,
            from: time_param("from", self.from.as_deref(), false)?,
            to: time_param("to", self.to.as_deref(), true)?,
            labelled: match self.labelled.as_deref().map(str::trim) {
                None | Some("") => None,
                Some("true" | "1") => Some(true),
                Some("false" | "0") => Some(false),
                Some(l) => return Err(Error::BadInput(format!("labelled must be true or false, got {l:?}"))),
            },
            time: match self.time.as_deref().map(str::trim) {
                None | Some("" | "event") => TimeField::Event,
                Some("ingest") => TimeField::Ingest,
                Some(t) => return Err(Error::BadInput(format!("time must be event or ingest, got {t:?}"))),
            },
            order: match self.order.as_deref().map(str::trim) {
                None | Some("" | "id") => Order::Id,
                Some("newest") => Order::Newest,
                Some(o) => return Err(Error::BadInput(format!("order must be id or newest, got {o:?}"))),
            },
            before_id: number::<i64>("before_id", self.before_id.as_deref())?,
            user: text_param("user", self.user)?,
            source_ip: text_param("source_ip", self.source_ip)?,
            kind: match text_param("kind", self.kind)? {
                None => None,
                Some(k) if ["session", "source", "device"].contains(&k.as_str()) => Some(k),
                Some(k) => return Err(Error::BadInput(format!("kind must be session, source or device, got {k:?}"))),
            },
            reason: text_param("reason", self.reason)?,
            min_confidence: match self.min_confidence.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(c) => match c.parse::<f64>() {
                    Ok(v) if (0.0..=1.0).contains(&v) => Some(v),
                    _ => {
                        return Err(Error::BadInput(format!("min_confidence must be a number from 0 to 1, got {c:?}")))
                    }
                },
            },
        })
    }
}

/// The features of a stored row, serialized without building a `Value`
/// (a page has up to 1000 rows).
#[derive(Serialize)]
struct FeaturesView {
    login_hour: u8,
    session_duration: f32,
    commands_count: u32,
    failed_logins: u32,
    protocol: &'static str,
    typing_speed: Option<f32>,
    risky_commands: Option<u32>,
}

/// One row of `/api/results`.
#[derive(Serialize)]
struct StoredView<'a> {
    id: i64,
    prediction: &'static str,
    confidence: f64,
    created_at: &'a str,
    /// When it happened (an agent record's start, else ingest).
    event_at: &'a str,
    source: &'static str,
    device: Option<&'a str>,
    features: FeaturesView,
    commands: Option<&'a [String]>,
    reasons: &'a [String],
    /// The strongest reason, for a list's column.
    top_reason: Option<&'a str>,
    model_version: &'a str,
    kind: Option<&'a str>,
    source_ip: Option<&'a str>,
    user: Option<&'a str>,
    started_at: Option<&'a str>,
    ended_at: Option<&'a str>,
    /// The agent's evidence (`log`, `host`, `campaign`, `details`).
    evidence: Option<serde_json::Value>,
    /// The analyst's true class (`Normal`/`Suspicious`), if labelled.
    analyst_label: Option<&'static str>,
    labelled_at: Option<&'a str>,
    analyst_note: Option<&'a str>,
}

impl<'a> StoredView<'a> {
    fn new(p: &'a StoredPrediction) -> StoredView<'a> {
        let fp = &p.fingerprint;
        StoredView {
            id: p.id,
            prediction: if p.suspicious { "Suspicious" } else { "Normal" },
            confidence: p.confidence,
            created_at: &p.created_at,
            event_at: &p.event_at,
            source: p.source.as_str(),
            device: p.device.as_deref(),
            features: FeaturesView {
                login_hour: fp.login_hour,
                session_duration: fp.session_duration_min,
                commands_count: fp.commands,
                failed_logins: fp.failed_logins,
                protocol: fp.protocol.as_str(),
                typing_speed: fp.typing_speed_wpm,
                risky_commands: fp.risky_commands,
            },
            commands: p.commands.as_deref(),
            reasons: &p.reasons,
            top_reason: p.reasons.first().map(String::as_str),
            model_version: &p.model_version,
            kind: p.agent.kind.as_deref(),
            source_ip: p.agent.source_ip.as_deref(),
            user: p.agent.user.as_deref(),
            started_at: p.agent.started_at.as_deref(),
            ended_at: p.agent.ended_at.as_deref(),
            evidence: p.agent.evidence.as_deref().and_then(|e| serde_json::from_str(e).ok()),
            analyst_label: p.analyst.as_ref().map(|a| a.label()),
            labelled_at: p.analyst.as_ref().map(|a| a.labelled_at.as_str()),
            analyst_note: p.analyst.as_ref().and_then(|a| a.note.as_deref()),
        }
    }
}

pub(super) async fn results(State(s): State<AppState>, ApiQuery(params): ApiQuery<ResultsParams>) -> Result<Response> {
    let query = params.into_query()?;
    let (limit, order) = (query.limit, query.order);
    let page = s.store.results(query).await?;
    let next = match page.results.last() {
        Some(last) if page.results.len() as u32 == limit => Some(last.id),
        _ => None,
    };
    #[derive(Serialize)]
    struct Page<'a> {
        count: u64,
        results: Vec<StoredView<'a>>,
        /// The cursor of the next page in id order.
        #[serde(skip_serializing_if = "Option::is_none")]
        next_after_id: Option<Option<i64>>,
        /// The cursor of the next page newest first.
        #[serde(skip_serializing_if = "Option::is_none")]
        next_before_id: Option<Option<i64>>,
    }
    let (next_after_id, next_before_id) = match order {
        Order::Id => (Some(next), None),
        Order::Newest => (None, Some(next)),
    };
    let body = Page {
        count: page.count,
        results: page.results.iter().map(StoredView::new).collect(),
        next_after_id,
        next_before_id,
    };
    Ok(Json(body).into_response())
}
