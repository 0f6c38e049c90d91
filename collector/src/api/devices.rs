//! The fleet: `GET /api/devices` lists the devices and their last
//! heartbeat; `POST /api/devices` (`{"name": "...", "group": "..."}`, group
//! optional, default `default`) creates one and answers its token once;
//! `DELETE /api/devices/{name}` revokes one. Both changes are an
//! administrator's (see [`super::access::ROUTE_ACCESS`]) and go to the audit
//! trail.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::Identified;
use super::extract::{ApiPath, JsonBody, RequestBody};
use super::AppState;
use crate::error::Result;
use crate::store::decisions::{check_group, DEFAULT_GROUP};
use crate::store::devices;

pub(super) async fn list_devices(State(s): State<AppState>) -> Result<Json<Value>> {
    let devices = s.store.devices().await?;
    Ok(Json(json!({ "count": devices.len(), "devices": devices })))
}

/// `POST /api/devices`'s body.
#[derive(Debug, Deserialize)]
pub struct NewDevice {
    name: String,
    /// The decisions it applies; default `default`.
    #[serde(default)]
    group: Option<String>,
}

impl RequestBody for NewDevice {
    const WHAT: &'static str = "device";
}

pub(super) async fn add_device(
    State(s): State<AppState>,
    who: Identified,
    JsonBody(NewDevice { name, group }): JsonBody<NewDevice>,
) -> Result<Response> {
    devices::check_name(&name)?;
    let group = group.unwrap_or_else(|| DEFAULT_GROUP.to_string());
    // Checked before the device exists, so a bad group creates nothing.
    check_group(&group)?;
    let token = s.store.add_device(name.clone()).await?;
    s.store.set_device_group(name.clone(), group.clone()).await?;
    super::audit::record(&s, &who, "device.add", name.clone(), format!("group {group}")).await?;
    Ok((StatusCode::CREATED, Json(json!({ "name": name, "group": group, "token": token }))).into_response())
}

pub(super) async fn revoke_device(
    State(s): State<AppState>,
    who: Identified,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>> {
    s.store.revoke_device(name.clone()).await?;
    super::audit::record(&s, &who, "device.revoke", name.clone(), String::new()).await?;
    Ok(Json(json!({ "name": name, "revoked": true })))
}
