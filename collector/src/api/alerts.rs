//! Alert routes:
//!
//! - `GET /api/alerts?state=open|acknowledged|resolved&rule=NAME&before_id=N&limit=N`:
//!   alerts, newest first, each with a `results` link to the results it
//!   groups (`/api/results?min_id=..&max_id=..`; the rule's other
//!   conditions still apply to the rows between them).
//! - `POST /api/alerts/{id}/ack` and `POST /api/alerts/{id}/resolve`, with an
//!   optional JSON body `{"by": "who"}`: 404 for an unknown id, 409 when
//!   resolved alerts are acknowledged. The change is recorded under the
//!   authenticated operator's name (`by` may only add to it, for a shared
//!   `--admin-token`), and goes to the audit trail.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{Caller, Identified};
use super::extract::{ApiPath, ApiQuery, RawBody};
use super::AppState;
use crate::error::{Error, Result};
use crate::store::alerts::{Alert, AlertQuery, AlertState};

/// Largest body of an alert action.
pub const MAX_ACTION_BYTES: usize = 4096;

/// The query of `GET /api/alerts`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertsParams {
    /// Only this state.
    #[param(value_type = Option<AlertState>)]
    state: Option<String>,
    /// Only this rule.
    rule: Option<String>,
    /// Only alerts with ids below this (the next page).
    before_id: Option<i64>,
    /// At most this many (default 100, 1-1000).
    #[param(maximum = 1000)]
    limit: Option<u32>,
}

/// An alert as the API shows it: the record plus the link to its results.
#[derive(Serialize, ToSchema)]
#[schema(as = AlertView)]
pub struct AlertJson<'a> {
    /// The stored alert.
    #[serde(flatten)]
    alert: &'a Alert,
    /// Its results: `/api/results?min_id=FIRST&max_id=LAST`.
    results: String,
}

/// The alert as the API shows it: the record plus the link to its results.
pub fn alert_json(a: &Alert) -> AlertJson<'_> {
    AlertJson { alert: a, results: format!("/api/results?min_id={}&max_id={}", a.first_result_id, a.last_result_id) }
}

/// Alerts, newest first.
#[derive(Serialize, ToSchema)]
pub struct AlertList<'a> {
    /// The alerts.
    alerts: Vec<AlertJson<'a>>,
}

#[utoipa::path(get, path = "/api/alerts", operation_id = "listAlerts", tag = "alerts",
    summary = "Alerts, newest first",
    params(AlertsParams),
    responses(
        (status = 200, description = "Alerts", body = AlertList),
        (status = 400, description = "A bad or unknown parameter", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn list(State(s): State<AppState>, ApiQuery(p): ApiQuery<AlertsParams>) -> Result<Response> {
    let q = AlertQuery {
        state: p.state.as_deref().map(AlertState::parse).transpose()?,
        rule: p.rule,
        before_id: p.before_id,
        limit: p.limit.unwrap_or(super::DEFAULT_PAGE).clamp(1, super::MAX_PAGE),
    };
    let alerts = s.store.alerts(q).await?;
    Ok(Json(AlertList { alerts: alerts.iter().map(alert_json).collect() }).into_response())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// Who, as the caller says (recorded beside the caller's own name).
    #[schema(max_length = 128)]
    by: Option<String>,
}

fn who_said(body: &[u8]) -> Result<String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok("api".into());
    }
    let b: ActionBody =
        serde_json::from_slice(body).map_err(|e| Error::BadInput(format!("bad alert action body: {e}")))?;
    let by = b.by.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).unwrap_or_else(|| "api".into());
    if by.chars().count() > 128 {
        return Err(Error::BadInput("`by` is longer than 128 characters".into()));
    }
    Ok(by)
}

#[utoipa::path(post, path = "/api/alerts/{id}/ack", operation_id = "acknowledgeAlert", tag = "alerts",
    summary = "Acknowledge an alert; recorded under the operator's name",
    params(("id" = i64, Path, description = "The alert")),
    request_body(content = Option<ActionBody>, content_type = "application/json", description = "None, or who"),
    responses(
        (status = 200, description = "The alert now", body = AlertJson),
        (status = 400, description = "A bad id or body", body = super::openapi::ErrorBody),
        (status = 404, description = "No such alert", body = super::openapi::ErrorBody),
        (status = 409, description = "Not in a state to acknowledge", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn ack(s: State<AppState>, who: Identified, id: ApiPath<i64>, body: RawBody) -> Result<Response> {
    act(s, who, id, body, AlertState::Acknowledged).await
}

#[utoipa::path(post, path = "/api/alerts/{id}/resolve", operation_id = "resolveAlert", tag = "alerts",
    summary = "Resolve an alert; recorded under the operator's name",
    params(("id" = i64, Path, description = "The alert")),
    request_body(content = Option<ActionBody>, content_type = "application/json", description = "None, or who"),
    responses(
        (status = 200, description = "The alert now", body = AlertJson),
        (status = 400, description = "A bad id or body", body = super::openapi::ErrorBody),
        (status = 404, description = "No such alert", body = super::openapi::ErrorBody),
        (status = 409, description = "Already resolved", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn resolve(s: State<AppState>, who: Identified, id: ApiPath<i64>, body: RawBody) -> Result<Response> {
    act(s, who, id, body, AlertState::Resolved).await
}

/// The name an alert change is recorded under: the operator's own; a
/// `by` in the body is kept only as a note after it, so nobody acts in
/// another's name.
fn recorded_by(caller: &Caller, said: String) -> String {
    let name = caller.name();
    if said == "api" || said == name {
        name
    } else {
        format!("{name} ({said})")
    }
}

async fn act(
    State(s): State<AppState>,
    who: Identified,
    ApiPath(id): ApiPath<i64>,
    RawBody(body): RawBody,
    to: AlertState,
) -> Result<Response> {
    let by = recorded_by(&who.caller, who_said(&body)?);
    let alert = s.store.set_alert_state(id, to, by).await?;
    super::audit::record(&s, &who, "alert.state", format!("alert {id}"), format!("{to:?}").to_lowercase()).await?;
    Ok(Json(alert_json(&alert)).into_response())
}
