//! The audit trail, for administrators: `GET /api/audit?before_id=N&limit=N`
//! (newest first, JSON) and `GET /api/audit.csv` (the same lines as CSV,
//! cells a spreadsheet would take as formulas neutralised). There is no
//! route that edits or deletes a line, and the table refuses both.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Identified;
use super::extract::ApiQuery;
use super::AppState;
use crate::error::{Error, Result};
use crate::store::console::AuditEntry;
use crate::store::insights::spreadsheet_safe;

/// Appends what `who` did to the audit trail.
pub async fn record(
    s: &AppState,
    who: &Identified,
    action: &'static str,
    target: String,
    detail: String,
) -> Result<()> {
    let entry = crate::store::console::NewAuditEntry {
        actor: who.caller.name(),
        action,
        target,
        detail,
        client: who.client.map(|c| c.to_string()),
    };
    s.store.audit(entry).await
}

/// Most lines one CSV export holds (the newest).
pub const MAX_AUDIT_EXPORT: u32 = 100_000;

/// The query of `GET /api/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only lines with ids below this (the next page).
    before_id: Option<i64>,
    /// At most this many (default 100, 1-1000).
    #[param(maximum = 1000)]
    limit: Option<u32>,
}

/// Audit lines, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Lines listed.
    count: usize,
    /// The lines.
    entries: Vec<AuditEntry>,
}

#[utoipa::path(get, path = "/api/audit", operation_id = "listAudit", tag = "console",
    summary = "The audit trail, newest first: logins and failures, labels, device, token and user changes, alert state changes. Append-only: no route edits it",
    params(AuditParams),
    responses(
        (status = 200, description = "Audit lines", body = AuditPage),
        (status = 400, description = "A bad or unknown parameter", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn list(State(s): State<AppState>, ApiQuery(p): ApiQuery<AuditParams>) -> Result<Json<AuditPage>> {
    let limit = p.limit.unwrap_or(super::DEFAULT_PAGE).clamp(1, super::MAX_PAGE);
    let entries = s.store.audit_trail(p.before_id, limit).await?;
    Ok(Json(AuditPage { count: entries.len(), entries }))
}

#[utoipa::path(get, path = "/api/audit.csv", operation_id = "exportAudit", tag = "console",
    summary = "The audit trail as CSV (formula-like cells neutralised)",
    responses((status = 200, description = "Header Id,At,Actor,Action,Target,Detail,Client", content_type = "text/csv", body = String)))]
pub(super) async fn export_csv(State(s): State<AppState>) -> Result<Response> {
    let entries = s.store.audit_trail(None, MAX_AUDIT_EXPORT).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| Error::Internal(format!("audit CSV: {e}"));
    out.write_record(["Id", "At", "Actor", "Action", "Target", "Detail", "Client"]).map_err(csv_error)?;
    for e in entries {
        out.write_record([
            e.id.to_string(),
            e.at,
            spreadsheet_safe(e.actor),
            e.action,
            spreadsheet_safe(e.target),
            spreadsheet_safe(e.detail),
            e.client.unwrap_or_default(),
        ])
        .map_err(csv_error)?;
    }
    let body = out.into_inner().map_err(|e| Error::Internal(format!("audit CSV: {e}")))?;
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8"),
            (CONTENT_DISPOSITION, "attachment; filename=\"bfp-audit.csv\""),
            (CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}
