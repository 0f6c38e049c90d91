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
use serde::Serialize;
use utoipa::ToSchema;

use super::access::Identified;
use super::extract::{ApiPath, RawBody};
use super::AppState;
use crate::error::{Error, Result};
use crate::notify::DestinationStatus;

/// Largest body of a test request (it takes none).
pub const MAX_TEST_BYTES: usize = 1024;

/// The configured destinations.
#[derive(Serialize, ToSchema)]
pub struct DestinationList {
    /// Each with its delivery status.
    destinations: Vec<DestinationStatus>,
}

/// The outcome of a test message.
#[derive(Serialize, ToSchema)]
pub struct TestOutcome {
    /// The destination.
    destination: String,
    /// The test message's id.
    id: String,
    /// Delivered.
    ok: bool,
    /// Why not, if not.
    error: Option<String>,
}

#[utoipa::path(get, path = "/api/destinations", operation_id = "listDestinations", tag = "alerts",
    summary = "Notification destinations with their delivery status: delivered, failed attempts, pending messages and their retries, dead messages, last success, last error",
    responses((status = 200, description = "Destinations", body = DestinationList)))]
pub(super) async fn list(State(s): State<AppState>) -> Result<Json<DestinationList>> {
    let destinations = s.notifier.status(&*s.store).await?;
    Ok(Json(DestinationList { destinations }))
}

#[utoipa::path(post, path = "/api/destinations/{name}/test", operation_id = "testDestination", tag = "alerts",
    summary = "Send a test message to a destination through its real sender now and answer the outcome (also shown on its status)",
    params(("name" = String, Path, description = "The destination")),
    request_body(content = Option<Object>, content_type = "application/json", description = "None, or {}"),
    responses(
        (status = 200, description = "The outcome", body = TestOutcome),
        (status = 400, description = "A body other than none or {}", body = super::openapi::ErrorBody),
        (status = 404, description = "No such destination", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn test(
    State(s): State<AppState>,
    who: Identified,
    ApiPath(name): ApiPath<String>,
    RawBody(body): RawBody,
) -> Result<Json<TestOutcome>> {
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
    Ok(Json(TestOutcome { destination: name, id, ok: outcome.is_ok(), error: outcome.err() }))
}
