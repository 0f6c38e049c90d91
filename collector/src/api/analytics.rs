//! `GET /api/analytics`: the original's totals and percentages, from the
//! store's counters (never a count of the rows).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::error::Result;

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / total as f64).round() / 10.0
    }
}

pub(super) async fn analytics(State(s): State<AppState>) -> Result<Json<Value>> {
    let t = s.store.totals().await?;
    Ok(Json(json!({
        "total_predictions": t.total(),
        "normal_users": t.normal,
        "suspicious_users": t.suspicious,
        "normal_percent": percent(t.normal, t.total()),
        "suspicious_percent": percent(t.suspicious, t.total()),
    })))
}
