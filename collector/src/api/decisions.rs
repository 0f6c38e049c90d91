//! Decision routes: blocks pushed to every device of a group.
//!
//! - `GET /api/decisions?group=G&all=true&limit=N` (analyst or above):
//!   decisions in force (`all`: expired and deleted ones too), newest first.
//! - `POST /api/decisions` (administrator), JSON
//!   `{"address": "198.51.100.66" | "203.0.113.0/24", "duration": "4h",
//!   "group": "default", "reason": "..."}`: 201 with the decision.
//! - `DELETE /api/decisions/{id}` (administrator): revokes it; 404 for an
//!   unknown id, 409 for one deleted already. Agents lift it at their next
//!   fetch.
//! - `GET /api/agent/decisions` (a device's token): the decisions in force
//!   for the calling device's group ([`bfp_common::wire::PushedDecisions`]).
//! - `GET /api/devices/{name}/blocks`: what a device reported blocking in
//!   its last heartbeat, and the decisions it refused.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bfp_common::wire::PushedDecisions;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{Admin, Analyst, Identified, RequireRole};
use super::extract::{ApiPath, ApiQuery, DeviceAuth, JsonBody, RequestBody};
use super::AppState;
use crate::error::Result;
use crate::store::decisions::{Decision, DecisionQuery, DeviceBlocks, NewDecision, DEFAULT_GROUP};

/// Largest body of `POST /api/decisions`.
pub const MAX_DECISION_BYTES: usize = 4096;

/// The query of `GET /api/decisions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DecisionsParams {
    /// Only this device group.
    group: Option<String>,
    /// Also expired and deleted decisions (default: in force only).
    all: Option<bool>,
    /// At most this many (default 100, 1-1000).
    #[param(maximum = 1000)]
    limit: Option<u32>,
}

/// Decisions, newest first.
#[derive(Serialize, ToSchema)]
pub struct DecisionList {
    /// Decisions listed.
    count: usize,
    /// The decisions.
    decisions: Vec<Decision>,
}

#[utoipa::path(get, path = "/api/decisions", operation_id = "listDecisions", tag = "decisions",
    summary = "Decisions, newest first: those in force, or all",
    params(DecisionsParams),
    responses(
        (status = 200, description = "Decisions", body = DecisionList),
        (status = 400, description = "A bad or unknown parameter", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn list(
    State(s): State<AppState>,
    _analyst: RequireRole<Analyst>,
    ApiQuery(p): ApiQuery<DecisionsParams>,
) -> Result<Json<DecisionList>> {
    let q = DecisionQuery {
        group: p.group,
        all: p.all.unwrap_or(false),
        limit: p.limit.unwrap_or(super::DEFAULT_PAGE).clamp(1, super::MAX_PAGE),
    };
    let decisions = s.store.decisions(q).await?;
    Ok(Json(DecisionList { count: decisions.len(), decisions }))
}

/// `POST /api/decisions`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDecisionBody {
    /// An address (`198.51.100.66`) or a network in CIDR form (`203.0.113.0/24`).
    #[schema(example = "198.51.100.66")]
    address: String,
    /// How long: seconds, or a duration such as `90m`, `4h`, `2d` (at most 30 days).
    #[schema(example = "4h")]
    duration: String,
    /// The device group (default `default`).
    #[serde(default)]
    group: Option<String>,
    /// Why (default: `decision by USER`).
    #[serde(default)]
    #[schema(max_length = 200)]
    reason: Option<String>,
}

impl RequestBody for NewDecisionBody {
    const WHAT: &'static str = "decision";
}

#[utoipa::path(post, path = "/api/decisions", operation_id = "addDecision", tag = "decisions",
    summary = "Block an address or network on a device group's agents for a while",
    request_body(content = NewDecisionBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Made; agents of the group apply it at their next fetch", body = Decision),
        (status = 400, description = "A bad address, duration, group or field (named in detail)", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn add(
    State(s): State<AppState>,
    admin: RequireRole<Admin>,
    who: Identified,
    JsonBody(body): JsonBody<NewDecisionBody>,
) -> Result<Response> {
    let new = NewDecision::parse(
        &body.address,
        &body.duration,
        body.group.as_deref().unwrap_or(DEFAULT_GROUP),
        body.reason.as_deref().unwrap_or(""),
        &admin.0.name,
    )?;
    let decision = s.store.add_decision(new).await?;
    let detail = format!("group {} until {} ({})", decision.group, decision.until, decision.reason);
    super::audit::record(&s, &who, "decision.add", decision.address.clone(), detail).await?;
    Ok((StatusCode::CREATED, Json(decision)).into_response())
}

#[utoipa::path(delete, path = "/api/decisions/{id}", operation_id = "deleteDecision", tag = "decisions",
    summary = "Revoke a decision; agents lift it at their next fetch",
    params(("id" = i64, Path, description = "The decision")),
    responses(
        (status = 200, description = "The decision, now deleted", body = Decision),
        (status = 400, description = "A bad id", body = super::openapi::ErrorBody),
        (status = 404, description = "No such decision", body = super::openapi::ErrorBody),
        (status = 409, description = "Already deleted", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn delete(
    State(s): State<AppState>,
    admin: RequireRole<Admin>,
    who: Identified,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Decision>> {
    let decision = s.store.delete_decision(id, admin.0.name).await?;
    let detail = format!("decision {id}, group {}", decision.group);
    super::audit::record(&s, &who, "decision.delete", decision.address.clone(), detail).await?;
    Ok(Json(decision))
}

#[utoipa::path(get, path = "/api/agent/decisions", operation_id = "agentDecisions", tag = "agents",
    summary = "Every decision in force for the calling device's group, whole each time",
    responses((status = 200, description = "The device's group and its decisions", body = PushedDecisions)))]
pub(super) async fn for_agent(
    State(s): State<AppState>,
    DeviceAuth(device): DeviceAuth,
) -> Result<Json<PushedDecisions>> {
    Ok(Json(s.store.pushed_decisions(device).await?))
}

#[utoipa::path(get, path = "/api/devices/{name}/blocks", operation_id = "deviceBlocks", tag = "fleet",
    summary = "What a device reported blocking in its last heartbeat (its own blocks and collector decisions) and the decisions it refused",
    params(("name" = String, Path, description = "The device")),
    responses(
        (status = 200, description = "The device's blocks", body = DeviceBlocks),
        (status = 404, description = "No such device", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn device_blocks(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<DeviceBlocks>> {
    Ok(Json(s.store.device_blocks(name).await?))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use crate::store::Role;

    use super::super::test_service as service;

    async fn call(app: &crate::api::Api, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = axum::http::Request::builder().method(method).uri(path).header("host", "localhost");
        if !token.is_empty() {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                axum::body::Body::from(b.to_string())
            }
            None => axum::body::Body::empty(),
        };
        let reply = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = reply.status().as_u16();
        let bytes = axum::body::to_bytes(reply.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn administrators_decide_analysts_read_and_devices_fetch_their_groups() {
        let dir = tempfile::tempdir().unwrap();
        let (app, store) = service(&dir).await;
        store.add_user("root".into(), Role::Admin, "h".into()).await.unwrap();
        store.add_user("ana".into(), Role::Analyst, "h".into()).await.unwrap();
        store.add_user("vic".into(), Role::Viewer, "h".into()).await.unwrap();
        let admin = store.add_api_token("root".into(), None).await.unwrap().token;
        let analyst = store.add_api_token("ana".into(), None).await.unwrap().token;
        let viewer = store.add_api_token("vic".into(), None).await.unwrap().token;
        let edge = store.add_device("pi-edge".into()).await.unwrap();
        store.set_device_group("pi-edge".into(), "edge".into()).await.unwrap();
        let other = store.add_device("pi-core".into()).await.unwrap();

        let body = json!({"address": "203.0.113.0/24", "duration": "2h", "group": "edge", "reason": "campaign"});
        assert_eq!(call(&app, "POST", "/api/decisions", "", Some(body.clone())).await.0, 401);
        assert_eq!(call(&app, "POST", "/api/decisions", &analyst, Some(body.clone())).await.0, 403);
        assert_eq!(call(&app, "POST", "/api/decisions", &edge, Some(body.clone())).await.0, 403);
        let (status, made) = call(&app, "POST", "/api/decisions", &admin, Some(body)).await;
        assert_eq!(status, 201, "{made}");
        assert_eq!(
            (made["created_by"].as_str(), made["until"].as_i64().unwrap() - made["created_at"].as_i64().unwrap()),
            (Some("root"), 7200)
        );

        for (bad, needle) in [
            (json!({"address": "10.1.2.3/8", "duration": "1h"}), "host bits"),
            (json!({"address": "198.51.100.66", "duration": "forever"}), "duration"),
            (json!({"address": "198.51.100.66", "duration": "1h", "group": "no such/group"}), "group"),
            (json!({"address": "198.51.100.66", "duration": "1h", "ttl": 3}), "unknown field"),
        ] {
            let (status, reply) = call(&app, "POST", "/api/decisions", &admin, Some(bad)).await;
            assert_eq!(status, 400, "{reply}");
            assert!(reply.to_string().contains(needle), "{needle}: {reply}");
        }

        assert_eq!(call(&app, "GET", "/api/decisions", &viewer, None).await.0, 403);
        let (status, listed) = call(&app, "GET", "/api/decisions?group=edge", &analyst, None).await;
        assert_eq!((status, listed["count"].as_u64()), (200, Some(1)));
        assert_eq!(call(&app, "GET", "/api/decisions?colour=red", &analyst, None).await.0, 400);

        let (status, pushed) = call(&app, "GET", "/api/agent/decisions", &edge, None).await;
        assert_eq!((status, pushed["group"].as_str()), (200, Some("edge")));
        assert_eq!(pushed["decisions"][0]["address"], "203.0.113.0/24");
        let (_, core) = call(&app, "GET", "/api/agent/decisions", &other, None).await;
        assert_eq!(core["decisions"].as_array().map(Vec::len), Some(0), "another group's decision is not pushed");
        assert_eq!(call(&app, "GET", "/api/agent/decisions", &admin, None).await.0, 403, "operators are not devices");

        let id = made["id"].as_i64().unwrap();
        assert_eq!(call(&app, "DELETE", &format!("/api/decisions/{id}"), &analyst, None).await.0, 403);
        let (status, gone) = call(&app, "DELETE", &format!("/api/decisions/{id}"), &admin, None).await;
        assert_eq!((status, gone["state"].as_str()), (200, Some("deleted")));
        assert_eq!(call(&app, "DELETE", &format!("/api/decisions/{id}"), &admin, None).await.0, 409);
        assert_eq!(call(&app, "DELETE", "/api/decisions/999", &admin, None).await.0, 404);
        assert_eq!(call(&app, "DELETE", "/api/decisions/abc", &admin, None).await.0, 400);
        let (_, pushed) = call(&app, "GET", "/api/agent/decisions", &edge, None).await;
        assert_eq!(pushed["decisions"].as_array().map(Vec::len), Some(0), "a deleted decision is no longer pushed");

        // A device gets its group at creation; a bad group creates nothing.
        let (status, made) =
            call(&app, "POST", "/api/devices", &admin, Some(json!({"name": "pi-new", "group": "edge"}))).await;
        assert_eq!((status, made["group"].as_str()), (201, Some("edge")), "{made}");
        let (status, _) =
            call(&app, "POST", "/api/devices", &admin, Some(json!({"name": "pi-bad", "group": "a b"}))).await;
        assert_eq!(status, 400);
        let fleet = store.devices().await.unwrap();
        assert!(fleet.iter().all(|d| d.name != "pi-bad"));
        assert_eq!(fleet.iter().find(|d| d.name == "pi-new").map(|d| d.group.as_str()), Some("edge"));

        let (status, blocks) = call(&app, "GET", "/api/devices/pi-edge/blocks", &viewer, None).await;
        assert_eq!((status, blocks["group"].as_str()), (200, Some("edge")));
        assert_eq!(call(&app, "GET", "/api/devices/nobody/blocks", &viewer, None).await.0, 404);
        store.shutdown().await;
    }
}
