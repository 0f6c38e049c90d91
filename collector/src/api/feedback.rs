//! Analyst feedback routes:
//!
//! - `POST /api/results/{id}/feedback` with `{"label": "false_positive" |
//!   "true_positive" | "clear", "note": "optional text"}` labels a stored
//!   result with the analyst's true class (see [`crate::store::feedback`]:
//!   a false positive on a Normal verdict is a missed attack, Suspicious).
//!   404 JSON for an unknown id, 400 JSON for a bad id or body.
//! - `GET /api/export/labelled.csv`: every labelled result in the CSV form
//!   `bfp-models train --extra-labelled FILE` reads, to retrain a site model.
//!
//! Like the rest of the dashboard's API these are open to whoever reaches
//! the collector; put it behind the same network controls.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{body_error, is_json, AppState};
use crate::error::{Error, Result};
use crate::store::feedback::{Feedback, FeedbackOutcome, MAX_NOTE_CHARS};

/// Largest feedback body: a label and a note of [`MAX_NOTE_CHARS`]
/// characters, each up to 12 bytes once JSON-escaped (a `\uXXXX` pair).
const MAX_FEEDBACK_BYTES: usize = 12 * MAX_NOTE_CHARS + 1024;

/// The feedback routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/results/{id}/feedback", post(feedback).layer(DefaultBodyLimit::max(MAX_FEEDBACK_BYTES)))
        .route("/api/export/labelled.csv", get(export_labelled))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    label: String,
    #[serde(default)]
    note: Option<String>,
}

/// The answer of a feedback request (also what `/api/results` shows).
fn outcome_json(o: &FeedbackOutcome) -> Value {
    json!({
        "id": o.id,
        "prediction": if o.suspicious { "Suspicious" } else { "Normal" },
        "analyst_label": o.analyst.as_ref().map(|a| a.label()),
        "labelled_at": o.analyst.as_ref().map(|a| a.labelled_at.as_str()),
        "analyst_note": o.analyst.as_ref().and_then(|a| a.note.as_deref()),
    })
}

async fn feedback(
    State(s): State<AppState>,
    id: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    let Path(id) = id.map_err(|r| Error::BadInput(r.body_text()))?;
    let id: i64 = id
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::BadInput(format!("result id must be a positive integer, got {id:?}")))?;
    let body = body.map_err(|r| body_error(r.status(), r.body_text()))?;
    if !is_json(&headers) {
        return Err(Error::BadInput("Content-Type must be application/json".into()));
    }
    let body: FeedbackBody =
        serde_json::from_slice(&body).map_err(|e| Error::BadInput(format!("bad feedback body: {e}")))?;
    let feedback = Feedback::parse(body.label.trim())?;
    let outcome = s.store.set_feedback(id, feedback, body.note).await?;
    Ok(Json(outcome_json(&outcome)))
}

async fn export_labelled(State(s): State<AppState>) -> Result<Response> {
    let csv = s.store.export_labelled().await?;
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8"),
            (CONTENT_DISPOSITION, "attachment; filename=\"bfp-labelled.csv\""),
            (CACHE_CONTROL, "no-store"),
        ],
        csv,
    )
        .into_response())
}
