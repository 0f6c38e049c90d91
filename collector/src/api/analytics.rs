//! `GET /api/analytics`: the original's totals and percentages, from the
//! store's counters (never a count of the rows).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::error::Result;

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / total as f64).round() / 10.0
    }
}

/// The original's totals.
#[derive(Serialize, ToSchema)]
pub struct Analytics {
    /// Stored predictions.
    total_predictions: u64,
    /// Of which Normal.
    normal_users: u64,
    /// Of which Suspicious.
    suspicious_users: u64,
    /// Normal share, percent with one decimal.
    normal_percent: f64,
    /// Suspicious share, percent with one decimal.
    suspicious_percent: f64,
}

#[utoipa::path(get, path = "/api/analytics", operation_id = "analytics", tag = "predictions",
    summary = "Totals of the stored predictions (the original's analytics)",
    responses((status = 200, description = "Totals", body = Analytics)))]
pub(super) async fn analytics(State(s): State<AppState>) -> Result<Json<Analytics>> {
    let t = s.store.totals().await?;
    Ok(Json(Analytics {
        total_predictions: t.total(),
        normal_users: t.normal,
        suspicious_users: t.suspicious,
        normal_percent: percent(t.normal, t.total()),
        suspicious_percent: percent(t.suspicious, t.total()),
    }))
}
