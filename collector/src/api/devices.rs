//! The fleet: `GET /api/devices` lists the devices and their last
//! heartbeat; `POST /api/devices` (`{"name": "..."}`) creates one and
//! answers its token once; `DELETE /api/devices/{name}` revokes one. Both
//! changes need [`AdminAuth`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{AdminAuth, ApiPath, JsonBody, RequestBody};
use super::AppState;
use crate::error::Result;
use crate::store::devices;

pub(super) async fn list_devices(State(s): State<AppState>) -> Result<Json<Value>> {
    let devices = s.store.devices().await?;
    Ok(Json(json!({ "count": devices.len(), "devices": devices })))
}

/// `POST /api/devices`'s body.
#[derive(Debug, Deserialize)]
pub struct NewDevice {
    name: String,
}

impl RequestBody for NewDevice {
    const WHAT: &'static str = "device";
}

pub(super) async fn add_device(
    State(s): State<AppState>,
    _admin: AdminAuth,
    JsonBody(NewDevice { name }): JsonBody<NewDevice>,
) -> Result<Response> {
    devices::check_name(&name)?;
    let token = s.store.add_device(name.clone()).await?;
    Ok((StatusCode::CREATED, Json(json!({ "name": name, "token": token }))).into_response())
}

pub(super) async fn revoke_device(
    State(s): State<AppState>,
    _admin: AdminAuth,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>> {
    s.store.revoke_device(name.clone()).await?;
    Ok(Json(json!({ "name": name, "revoked": true })))
}
