//! `POST /api/predict`: one fingerprint in the original Flask JSON form,
//! scored, stored (committed before the reply, grouped with concurrent
//! requests), and answered with the verdict, its confidence and reasons.

use axum::extract::State;
use axum::Json;
use bfp_common::{explain, Fingerprint};
use serde_json::{json, Value};

use super::extract::{JsonBody, RequestBody};
use super::{features_json, AppState, MAX_REASONS};
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

pub(super) async fn predict(
    State(s): State<AppState>,
    JsonBody(PredictBody(value)): JsonBody<PredictBody>,
) -> Result<Json<Value>> {
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
    Ok(Json(json!({
        "prediction": verdict.label(),
        "confidence": round_confidence(verdict.confidence),
        "features": features_json(&fp),
        "reasons": reasons,
        "model_version": &*s.model_version,
        "id": ids.first().copied(),
    })))
}
