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
use super::{AppState, FeaturesView, DEFAULT_PAGE, MAX_PAGE};
use crate::error::{Error, Result};
use crate::store::{insights, Order, ResultsQuery, Source, StoredPrediction, TimeField};

/// Query string of `/api/results`; all text, parsed below for precise errors.
/// An unknown parameter is a 400 naming it: a mistyped filter must not
/// answer every row.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ResultsParams {
    /// Page size (default 100, at most 1000; larger is clamped).
    #[param(value_type = Option<u32>, maximum = 1000)]
    limit: Option<String>,
    /// Rows to skip (id order); a cursor is faster at depth.
    #[param(value_type = Option<u64>)]
    offset: Option<String>,
    /// Cursor of id order: rows with ids above it (`next_after_id`).
    #[param(value_type = Option<i64>)]
    after_id: Option<String>,
    /// Only this channel.
    #[param(value_type = Option<super::openapi::ResultSource>)]
    source: Option<String>,
    /// Only this device.
    #[param(value_type = Option<String>)]
    device: Option<String>,
    /// Only this verdict (case-insensitive).
    #[param(value_type = Option<super::openapi::Verdict>)]
    prediction: Option<String>,
    /// Only ids at least this (e.g. `first_id` of a CSV upload).
    #[param(value_type = Option<i64>)]
    min_id: Option<String>,
    /// Only ids at most this (e.g. `last_id` of a CSV upload).
    #[param(value_type = Option<i64>)]
    max_id: Option<String>,
    /// Only rows at or after this time (event time unless `time=ingest`): RFC 3339 with `Z` or an
    /// offset, or `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS` in UTC.
    #[param(value_type = Option<String>, example = "2026-11-25T07:00:00Z")]
    from: Option<String>,
    /// Only rows at or before this time (the forms of `from`; a date alone means its last second).
    #[param(value_type = Option<String>, example = "2026-11-25 23:59:59")]
    to: Option<String>,
    /// Only rows an analyst labelled (`true`) or did not (`false`).
    #[param(value_type = Option<bool>)]
    labelled: Option<String>,
    /// What `from`/`to` filter on: when it happened (`event`, default) or when it was stored (`ingest`).
    #[param(value_type = Option<TimeFieldName>)]
    time: Option<String>,
    /// `id` (default: oldest first, `after_id` cursor) or `newest` (newest event first, `before_id` cursor).
    #[param(value_type = Option<OrderName>)]
    order: Option<String>,
    /// Cursor of `order=newest` (`next_before_id`).
    #[param(value_type = Option<i64>)]
    before_id: Option<String>,
    /// Only this user name (exact).
    #[param(value_type = Option<String>, max_length = 256)]
    user: Option<String>,
    /// Only this source address (exact).
    #[param(value_type = Option<String>, max_length = 256)]
    source_ip: Option<String>,
    /// Only this record kind.
    #[param(value_type = Option<bfp_common::wire::RecordKind>)]
    kind: Option<String>,
    /// Only rows whose stored reasons contain this text (ASCII case ignored); reasons worded from
    /// model features at read time are not searched.
    #[param(value_type = Option<String>, max_length = 256)]
    reason: Option<String>,
    /// Only rows with at least this confidence.
    #[param(value_type = Option<f64>, minimum = 0, maximum = 1)]
    min_confidence: Option<String>,
}

/// `time`'s values.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum TimeFieldName {
    /// When it happened.
    Event,
    /// When it was stored.
    Ingest,
}

/// `order`'s values.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum OrderName {
    /// Id order, oldest first.
    Id,
    /// Newest event first.
    Newest,
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

/// One stored prediction, as `/api/results` lists it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = StoredPrediction)]
pub struct StoredView<'a> {
    /// Its id.
    id: i64,
    /// The verdict.
    #[schema(value_type = super::openapi::Verdict)]
    prediction: &'static str,
    /// Share of trees voting for it.
    confidence: f64,
    /// When it was stored, UTC.
    #[schema(value_type = String, example = "2026-11-25 07:40:00")]
    created_at: &'a str,
    /// When it happened, UTC: an agent record's start, else the time of ingest.
    #[schema(value_type = String, example = "2026-03-27 13:08:00")]
    event_at: &'a str,
    /// How it arrived.
    #[schema(value_type = super::openapi::ResultSource)]
    source: &'static str,
    /// The agent's device.
    #[schema(value_type = Option<String>)]
    device: Option<&'a str>,
    /// The features as scored.
    features: FeaturesView,
    /// The commands, where known.
    #[schema(value_type = Option<Vec<String>>)]
    commands: Option<&'a [String]>,
    /// Why, strongest first.
    #[schema(value_type = Vec<String>)]
    reasons: &'a [String],
    /// The strongest reason, for a list's column.
    #[schema(value_type = Option<String>)]
    top_reason: Option<&'a str>,
    /// The model that scored it.
    #[schema(value_type = String)]
    model_version: &'a str,
    /// An agent record's kind.
    #[schema(value_type = Option<bfp_common::wire::RecordKind>)]
    kind: Option<&'a str>,
    /// The remote address, where known.
    #[schema(value_type = Option<String>)]
    source_ip: Option<&'a str>,
    /// The account, for a session.
    #[schema(value_type = Option<String>)]
    user: Option<&'a str>,
    /// An agent record's start, UTC.
    #[schema(value_type = Option<String>)]
    started_at: Option<&'a str>,
    /// An agent record's end, UTC.
    #[schema(value_type = Option<String>)]
    ended_at: Option<&'a str>,
    /// What the agent found beyond the fingerprint (wire version 4 on; null before): `log`, `host`,
    /// `campaign`, `details` (the analyzer's: `auth_method`, `users_sample`, `distinct_users`, ...).
    #[schema(value_type = Option<Object>)]
    evidence: Option<serde_json::Value>,
    /// The analyst's true class, if labelled (`POST /api/results/{id}/feedback`).
    #[schema(value_type = Option<super::openapi::Verdict>)]
    analyst_label: Option<&'static str>,
    /// When it was labelled, UTC.
    #[schema(value_type = Option<String>)]
    labelled_at: Option<&'a str>,
    /// The analyst's note.
    #[schema(value_type = Option<String>)]
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
            features: FeaturesView::of(fp),
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

/// A page of `/api/results`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ResultsPage)]
pub struct Page<'a> {
    /// Rows matching the filters, all pages.
    count: u64,
    /// This page.
    results: Vec<StoredView<'a>>,
    /// The cursor of the next page in id order (null: last page); id order only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    next_after_id: Option<Option<i64>>,
    /// The cursor of the next page newest first (null: last page); `order=newest` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    next_before_id: Option<Option<i64>>,
}

#[utoipa::path(get, path = "/api/results", operation_id = "listResults", tag = "predictions",
    summary = "Pages of stored predictions, filtered, with the filtered total",
    params(ResultsParams),
    responses(
        (status = 200, description = "A page; count = total rows matching the filters", body = Page),
        (status = 400, description = "A bad or unknown query parameter (named in detail)", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn results(State(s): State<AppState>, ApiQuery(params): ApiQuery<ResultsParams>) -> Result<Response> {
    let query = params.into_query()?;
    let (limit, order) = (query.limit, query.order);
    let page = s.store.results(query).await?;
    let next = match page.results.last() {
        Some(last) if page.results.len() as u32 == limit => Some(last.id),
        _ => None,
    };
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
