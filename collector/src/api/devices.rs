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
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Identified;
use super::extract::{ApiPath, JsonBody, RequestBody};
use super::AppState;
use crate::error::Result;
use crate::store::decisions::{check_group, DEFAULT_GROUP};
use crate::store::devices::{self, DeviceInfo};

/// The fleet.
#[derive(Serialize, ToSchema)]
pub struct DeviceList {
    /// Devices listed.
    count: usize,
    /// Every device, with its last heartbeat.
    devices: Vec<DeviceInfo>,
}

#[utoipa::path(get, path = "/api/devices", operation_id = "listDevices", tag = "fleet",
    summary = "The fleet: every device with its last heartbeat",
    responses((status = 200, description = "Devices", body = DeviceList)))]
pub(super) async fn list_devices(State(s): State<AppState>) -> Result<Json<DeviceList>> {
    let devices = s.store.devices().await?;
    Ok(Json(DeviceList { count: devices.len(), devices }))
}

/// `POST /api/devices`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewDevice {
    /// 1-64 letters, digits, `.`, `_`, `-`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    name: String,
    /// The decisions it applies; default `default`.
    #[serde(default)]
    group: Option<String>,
}

/// A new device and its token.
#[derive(Serialize, ToSchema)]
pub struct NewDeviceToken {
    /// Its name.
    name: String,
    /// Its group.
    group: String,
    /// Its token (`bfp_...`), shown this once.
    token: String,
}

/// A revoked device.
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    /// Its name.
    name: String,
    /// Always true.
    revoked: bool,
}

impl RequestBody for NewDevice {
    const WHAT: &'static str = "device";
}

#[utoipa::path(post, path = "/api/devices", operation_id = "addDevice", tag = "fleet",
    summary = "Create a device; its token is answered once",
    request_body(content = NewDevice, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = NewDeviceToken),
        (status = 400, description = "A bad name or group", body = super::openapi::ErrorBody),
        (status = 409, description = "A device of this name exists", body = super::openapi::ErrorBody),
    ))]
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
    Ok((StatusCode::CREATED, Json(NewDeviceToken { name, group, token })).into_response())
}

#[utoipa::path(delete, path = "/api/devices/{name}", operation_id = "revokeDevice", tag = "fleet",
    summary = "Revoke a device's token; its stored records stay",
    params(("name" = String, Path, description = "The device")),
    responses(
        (status = 200, description = "Revoked", body = Revoked),
        (status = 404, description = "No such device", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn revoke_device(
    State(s): State<AppState>,
    who: Identified,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Revoked>> {
    s.store.revoke_device(name.clone()).await?;
    super::audit::record(&s, &who, "device.revoke", name.clone(), String::new()).await?;
    Ok(Json(Revoked { name, revoked: true }))
}
