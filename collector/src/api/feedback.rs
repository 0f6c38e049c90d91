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
//! Both are an analyst's (see [`super::access::ROUTE_ACCESS`]): the
//! labelled export is what the next model trains on. Every label goes to
//! the audit trail.

use axum::extract::{FromRequestParts, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Identified;
use super::extract::{ApiPath, JsonBody, RequestBody};
use super::AppState;
use crate::error::{Error, Result};
use crate::store::feedback::{Feedback, FeedbackOutcome, MAX_NOTE_CHARS};

/// Largest feedback body: a label and a note of [`MAX_NOTE_CHARS`]
/// characters, each up to 12 bytes once JSON-escaped (a `\uXXXX` pair).
pub const MAX_FEEDBACK_BYTES: usize = 12 * MAX_NOTE_CHARS + 1024;

/// The body of a feedback request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    /// What the analyst says of the verdict.
    #[schema(value_type = FeedbackLabel)]
    label: String,
    /// Why, in the analyst's words.
    #[serde(default)]
    #[schema(max_length = 1000)]
    note: Option<String>,
}

/// [`FeedbackBody::label`]'s values.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum FeedbackLabel {
    /// The verdict is wrong (on a Normal result: a missed attack).
    FalsePositive,
    /// The verdict is right.
    TruePositive,
    /// Remove the label.
    Clear,
}

impl RequestBody for FeedbackBody {
    const WHAT: &'static str = "feedback";
}

/// The answer of a feedback request (also what `/api/results` shows).
/// A result's verdict and its label now.
#[derive(Serialize, ToSchema)]
pub struct FeedbackView<'a> {
    /// The result.
    id: i64,
    /// The model's verdict.
    #[schema(value_type = super::openapi::Verdict)]
    prediction: &'static str,
    /// The analyst's true class; null once cleared.
    #[schema(value_type = Option<super::openapi::Verdict>)]
    analyst_label: Option<&'static str>,
    /// When it was labelled, UTC.
    #[schema(value_type = Option<String>)]
    labelled_at: Option<&'a str>,
    /// The analyst's note.
    #[schema(value_type = Option<String>)]
    analyst_note: Option<&'a str>,
}

fn outcome_json(o: &FeedbackOutcome) -> FeedbackView<'_> {
    FeedbackView {
        id: o.id,
        prediction: if o.suspicious { "Suspicious" } else { "Normal" },
        analyst_label: o.analyst.as_ref().map(|a| a.label()),
        labelled_at: o.analyst.as_ref().map(|a| a.labelled_at.as_str()),
        analyst_note: o.analyst.as_ref().and_then(|a| a.note.as_deref()),
    }
}

/// The `{id}` of a feedback route: a positive integer, checked before the
/// body is read.
pub struct ResultId(i64);

impl<S: Send + Sync> FromRequestParts<S> for ResultId {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let ApiPath(id) = ApiPath::<String>::from_request_parts(parts, state).await?;
        id.trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .map(ResultId)
            .ok_or_else(|| Error::BadInput(format!("result id must be a positive integer, got {id:?}")))
    }
}

#[utoipa::path(post, path = "/api/results/{id}/feedback", operation_id = "setFeedback", tag = "triage",
    summary = "An analyst's true class for a stored result: false_positive (the verdict is wrong), true_positive (it is right), or clear",
    params(("id" = i64, Path, minimum = 1, description = "The result's id")),
    request_body(content = FeedbackBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The result's verdict and its label now", body = FeedbackView),
        (status = 400, description = "A bad id or body", body = super::openapi::ErrorBody),
        (status = 404, description = "No stored result with this id", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn feedback(
    State(s): State<AppState>,
    who: Identified,
    ResultId(id): ResultId,
    JsonBody(body): JsonBody<FeedbackBody>,
) -> Result<Response> {
    let feedback = Feedback::parse(body.label.trim())?;
    let label = body.label.trim().to_string();
    let outcome = s.store.set_feedback(id, feedback, body.note).await?;
    super::audit::record(&s, &who, "feedback.set", format!("result {id}"), label).await?;
    Ok(Json(outcome_json(&outcome)).into_response())
}

#[utoipa::path(get, path = "/api/export/labelled.csv", operation_id = "exportLabelled", tag = "triage",
    summary = "Every analyst-labelled result as CSV in the form `bfp-models train --extra-labelled FILE` reads",
    responses((status = 200, description = "Header LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed,Label,RiskyCommands,Id,Prediction,LabelledAt,Note (Label: the analyst's true class; TypingSpeed -1 and an empty RiskyCommands: unknown)", content_type = "text/csv", body = String)))]
pub(super) async fn export_labelled(State(s): State<AppState>) -> Result<Response> {
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
