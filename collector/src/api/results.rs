//! `GET /api/results`: pages of stored predictions, by cursor (`after_id`)
//! or `offset`, filtered by source, device, label, id or time range and
//! analyst label, with the filtered total. Every parameter is checked here
//! and named in its 400; the store makes any page fast.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::ApiQuery;
use super::{AppState, DEFAULT_PAGE, MAX_PAGE};
use crate::error::{Error, Result};
use crate::store::{insights, ResultsQuery, Source, StoredPrediction};

/// Query string of `/api/results`; all text, parsed below for precise errors.
#[derive(Debug, Default, Deserialize)]
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
    source: &'static str,
    device: Option<&'a str>,
    features: FeaturesView,
    commands: Option<&'a [String]>,
    reasons: &'a [String],
    model_version: &'a str,
    kind: Option<&'a str>,
    source_ip: Option<&'a str>,
    user: Option<&'a str>,
    started_at: Option<&'a str>,
    ended_at: Option<&'a str>,
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
            model_version: &p.model_version,
            kind: p.agent.kind.as_deref(),
            source_ip: p.agent.source_ip.as_deref(),
            user: p.agent.user.as_deref(),
            started_at: p.agent.started_at.as_deref(),
            ended_at: p.agent.ended_at.as_deref(),
            analyst_label: p.analyst.as_ref().map(|a| a.label()),
            labelled_at: p.analyst.as_ref().map(|a| a.labelled_at.as_str()),
            analyst_note: p.analyst.as_ref().and_then(|a| a.note.as_deref()),
        }
    }
}

pub(super) async fn results(State(s): State<AppState>, ApiQuery(params): ApiQuery<ResultsParams>) -> Result<Response> {
    let query = params.into_query()?;
    let limit = query.limit;
    let page = s.store.results(query).await?;
    let next_after_id = match page.results.last() {
        Some(last) if page.results.len() as u32 == limit => Some(last.id),
        _ => None,
    };
    #[derive(Serialize)]
    struct Page<'a> {
        count: u64,
        results: Vec<StoredView<'a>>,
        next_after_id: Option<i64>,
    }
    let body = Page { count: page.count, results: page.results.iter().map(StoredView::new).collect(), next_after_id };
    Ok(Json(body).into_response())
}
