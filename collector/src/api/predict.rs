//! `POST /api/predict`: one fingerprint in the original Flask JSON form,
//! scored, stored (committed before the reply, grouped with concurrent
//! requests), and answered with the verdict, its confidence and reasons.

use axum::extract::State;
use axum::Json;
use bfp_common::{explain, Fingerprint};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::extract::{JsonBody, RequestBody};
use super::{AppState, FeaturesView, MAX_REASONS};
use crate::error::{Error, Result};
use crate::store::{round_confidence, AgentContext, NewPrediction, Reason, Source};

/// The body as JSON; its fields are checked by `Fingerprint::from_json`,
/// which names the field that is wrong.
#[derive(serde::Deserialize)]
#[serde(transparent)]
pub struct PredictBody(Value);

impl RequestBody for PredictBody {
    const WHAT: &'static str = "prediction";
}

/// `POST /api/predict`'s body, the original system's form.
#[allow(dead_code)] // Read as JSON by `Fingerprint::from_json`; this type documents it.
#[derive(serde::Deserialize, ToSchema)]
#[schema(example = json!({"login_time": "03:00", "session_duration": 5, "commands": ["ls", "sudo", "chmod"], "failed_logins": 4, "protocol": "TOR", "typing_speed": 120}))]
pub struct FingerprintInput {
    /// `HH:MM` or an hour 0-23.
    login_time: LoginTime,
    /// Minutes.
    #[schema(minimum = 0)]
    session_duration: f64,
    /// The commands, or how many.
    commands: Commands,
    /// Failed logins before the session.
    failed_logins: u32,
    /// How it arrived (case-insensitive).
    protocol: bfp_common::Protocol,
    /// Words per minute.
    #[schema(minimum = 0)]
    typing_speed: f64,
}

/// `HH:MM` or an hour.
#[allow(dead_code)]
#[derive(serde::Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LoginTime {
    /// `03:00`.
    Clock(String),
    /// 0-23.
    Hour(u8),
}

/// The commands run, or their count.
#[allow(dead_code)]
#[derive(serde::Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Commands {
    /// Each command line.
    List(Vec<String>),
    /// How many.
    Count(u32),
}

/// A scored, stored prediction.
#[derive(Serialize, ToSchema)]
pub struct Prediction<'a> {
    /// The verdict.
    #[schema(value_type = super::openapi::Verdict)]
    prediction: &'static str,
    /// Share of trees voting for it, 0.5-1.
    #[schema(minimum = 0.5, maximum = 1)]
    confidence: f64,
    /// The features as scored.
    features: FeaturesView,
    /// Why, strongest first.
    #[schema(example = json!(["4 failed logins before this session", "arrived over Tor"]))]
    reasons: Vec<String>,
    /// The model that scored it.
    #[schema(value_type = String)]
    model_version: &'a str,
    /// Its id in `/api/results`.
    id: Option<i64>,
}

#[utoipa::path(post, path = "/api/predict", operation_id = "predict", tag = "predictions",
    summary = "Score one fingerprint, store it and answer the verdict with its reasons",
    request_body(content = FingerprintInput, content_type = "application/json"),
    responses(
        (status = 200, description = "Scored and stored", body = Prediction),
        (status = 400, description = "A field is missing or wrong (named in detail)", body = super::openapi::ErrorBody),
        (status = 429, description = "More than --predict-rate predictions a second from this client", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn predict(
    State(s): State<AppState>,
    JsonBody(PredictBody(value)): JsonBody<PredictBody>,
) -> Result<axum::response::Response> {
    let (fp, command_list) = Fingerprint::from_json(&value).map_err(|e| Error::BadInput(e.to_string()))?;
    let verdict = s.model.score(&fp.features());
    let reasons = explain::reasons(&fp, &verdict, MAX_REASONS);
    let commands = value.get("commands").is_some_and(Value::is_array).then_some(command_list);
    let prediction = NewPrediction {
        source: Source::Single,
        fingerprint: fp,
        suspicious: verdict.suspicious,
        confidence: verdict.confidence,
        commands,
        model_version: s.model_version.clone(),
        reasons: Reason::from_verdict(&fp, &verdict, MAX_REASONS),
        device: None,
        agent: AgentContext::default(),
    };
    let ids = s.store.insert(vec![prediction]).await?;
    let body = Prediction {
        prediction: verdict.label(),
        confidence: round_confidence(verdict.confidence),
        features: FeaturesView::of(&fp),
        reasons,
        model_version: &s.model_version,
        id: ids.first().copied(),
    };
    Ok(axum::response::IntoResponse::into_response(Json(body)))
}
