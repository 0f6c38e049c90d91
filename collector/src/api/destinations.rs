//! Notification destinations:
//!
//! - `GET /api/destinations` (analyst): every configured destination with
//!   its delivered and failed counts, messages pending and their attempts,
//!   last success and last error.
//! - `POST /api/destinations/{name}/test` (admin, empty body or `{}`): sends
//!   a test message through the destination's real sender at once (beside
//!   its queue) and answers `{"destination", "id", "ok", "error"}`; the
//!   outcome also shows on the destination's status. 404 for an unknown
//!   name.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::access::Identified;
use super::extract::{ApiPath, RawBody};
use super::AppState;
use crate::error::{Error, Result};

/// Largest body of a test request (it takes none).
pub const MAX_TEST_BYTES: usize = 1024;

pub(super) async fn list(State(s): State<AppState>) -> Result<Json<Value>> {
    let list = s.notifier.status(&*s.store).await?;
    Ok(Json(json!({ "destinations": list })))
}

pub(super) async fn test(
    State(s): State<AppState>,
    who: Identified,
    ApiPath(name): ApiPath<String>,
    RawBody(body): RawBody,
) -> Result<Json<Value>> {
    let trimmed: Vec<u8> = body.into_iter().filter(|b| !b.is_ascii_whitespace()).collect();
    if !trimmed.is_empty() && trimmed != b"{}" {
        return Err(Error::BadInput("a destination test takes no body (or {})".into()));
    }
    let (id, outcome) = s.notifier.test(&*s.store, &name).await?;
    let detail = match &outcome {
        Ok(()) => "delivered".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    super::audit::record(&s, &who, "destination.test", format!("destination {name}"), detail).await?;
    Ok(Json(json!({
        "destination": name,
        "id": id,
        "ok": outcome.is_ok(),
        "error": outcome.err(),
    })))
}
