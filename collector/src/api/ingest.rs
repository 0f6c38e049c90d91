//! Agent-facing routes: `POST /api/ingest` (batches of scored fingerprints),
//! the fleet (`GET /api/devices`, and device creation/revocation), and model
//! distribution (`GET /api/model`, `GET /api/model/version`).
//!
//! Ingest authenticates with the device's bearer token before it reads the
//! body; every refusal (401 for the token, 400 for the body) happens before
//! anything is written, and an accepted batch is stored in one transaction.
//!
//! Device administration over HTTP (`POST /api/devices`,
//! `DELETE /api/devices/{name}`) is allowed from a loopback peer (the
//! operator on the collector's machine, as with the `device` subcommand), or
//! from anywhere with `Authorization: Bearer <--admin-token>`. Everything
//! else is 401.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use bfp_common::wire::{self, Batch};
use bfp_common::CompactModel;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{body_error, AppState};
use crate::error::{Error, Result};
use crate::store::devices::{self, DeviceId};

/// Largest ingest body: `MAX_RECORDS_PER_BATCH` records of a few hundred
/// bytes each, with room for long command lists.
pub const MAX_INGEST_BYTES: usize = 16 * 1024 * 1024;

/// Header carrying the served model's version.
pub const MODEL_VERSION_HEADER: &str = "x-bfp-model-version";
/// Header carrying the served model's SHA-256 (hex).
pub const MODEL_SHA256_HEADER: &str = "x-bfp-model-sha256";

/// The agent-facing routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/ingest", post(ingest).layer(DefaultBodyLimit::max(MAX_INGEST_BYTES)))
        .route("/api/devices", get(list_devices).post(add_device))
        .route("/api/devices/{name}", delete(revoke_device))
        .route("/api/model", get(model))
        .route("/api/model/version", get(model_version))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

async fn device_of(s: &AppState, headers: &HeaderMap) -> Result<DeviceId> {
    let token = bearer(headers).ok_or_else(|| Error::Unauthorized("missing bearer token".into()))?;
    s.store.authenticate(token.to_string()).await?.ok_or_else(|| Error::Unauthorized("unknown or revoked token".into()))
}

fn mime(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decodes a batch body by its media type: postcard, or JSON for debugging.
pub fn decode_body(content_type: &str, body: &[u8]) -> Result<Batch> {
    let batch = match content_type {
        wire::CONTENT_TYPE => Batch::decode(body).map_err(|e| Error::BadInput(format!("batch: {e}")))?,
        "application/json" => {
            let batch: Batch =
                serde_json::from_slice(body).map_err(|e| Error::BadInput(format!("batch is not valid JSON: {e}")))?;
            if batch.records.len() > wire::MAX_RECORDS_PER_BATCH {
                return Err(Error::BadInput(format!("at most {} records per batch", wire::MAX_RECORDS_PER_BATCH)));
            }
            batch
        }
        other => {
            return Err(Error::BadInput(format!(
                "Content-Type must be {} or application/json, got {other:?}",
                wire::CONTENT_TYPE
            )))
        }
    };
    devices::validate_batch(&batch)?;
    Ok(batch)
}

async fn ingest(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    let device = device_of(&s, &headers).await?;
    let body = body.map_err(|r| body_error(r.status(), r.body_text()))?;
    let batch = decode_body(&mime(&headers), &body)?;
    let records = batch.records.len();
    let outcome = s.store.ingest(device, batch).await?;
    Ok(Json(json!({
        "duplicate": outcome.duplicate,
        "stored": outcome.stored,
        "records": records,
        "last_seq": outcome.last_seq,
    })))
}

async fn list_devices(State(s): State<AppState>) -> Result<Json<Value>> {
    let devices = s.store.devices().await?;
    Ok(Json(json!({ "count": devices.len(), "devices": devices })))
}

fn check_admin(s: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<()> {
    if peer.is_some_and(|p| p.ip().is_loopback()) {
        return Ok(());
    }
    match (&s.admin_token, bearer(headers)) {
        // Compared as hashes so the time taken does not leak a prefix.
        (Some(expected), Some(given)) if Sha256::digest(expected.as_bytes()) == Sha256::digest(given.as_bytes()) => {
            Ok(())
        }
        _ => Err(Error::Unauthorized(
            "device administration needs a loopback connection or the collector's --admin-token".into(),
        )),
    }
}

async fn add_device(
    State(s): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    check_admin(&s, &headers, peer.map(|Extension(ConnectInfo(a))| a))?;
    let body = body.map_err(|r| body_error(r.status(), r.body_text()))?;
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| Error::BadInput(format!("body is not valid JSON: {e}")))?;
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::BadInput("expected {\"name\": \"...\"}".into()))?
        .to_string();
    devices::check_name(&name)?;
    let token = s.store.add_device(name.clone()).await?;
    Ok((StatusCode::CREATED, Json(json!({ "name": name, "token": token }))).into_response())
}

async fn revoke_device(
    State(s): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>> {
    check_admin(&s, &headers, peer.map(|Extension(ConnectInfo(a))| a))?;
    s.store.revoke_device(name.clone()).await?;
    Ok(Json(json!({ "name": name, "revoked": true })))
}

/// `?schema=` of the model endpoints: which model is asked for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelQuery {
    /// 1 (the default, and what older agents get): the model `/api/predict`
    /// scores with; 2: the agents' model.
    schema: Option<String>,
}

/// The model `q` asks for, or a 400 naming the schemas served.
fn served_model(s: &AppState, q: std::result::Result<Query<ModelQuery>, QueryRejection>) -> Result<&CompactModel> {
    let Query(q) = q.map_err(|r| Error::BadInput(r.body_text()))?;
    let agents = s.agent_model.schema_version;
    match q.schema.as_deref().map(str::trim) {
        None | Some("1") => Ok(&s.model),
        Some(v) if v == agents.to_string() => Ok(&s.agent_model),
        Some(v) => Err(Error::BadInput(format!(
            "schema must be 1 (the /api/predict model) or {agents} (the agents' model), got {v:?}"
        ))),
    }
}

/// A model's bytes and SHA-256.
fn model_artifact(model: &CompactModel) -> Result<(Vec<u8>, String)> {
    let bytes = model.to_bytes()?;
    let sha = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    Ok((bytes, sha))
}

async fn model(
    State(s): State<AppState>,
    q: std::result::Result<Query<ModelQuery>, QueryRejection>,
) -> Result<Response> {
    let model = served_model(&s, q)?;
    let (bytes, sha) = model_artifact(model)?;
    let header_value = |v: &str| HeaderValue::from_str(v).map_err(|e| Error::Internal(e.to_string()));
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(MODEL_VERSION_HEADER, header_value(&model.model_version)?);
    h.insert(MODEL_SHA256_HEADER, header_value(&sha)?);
    Ok(response)
}

async fn model_version(
    State(s): State<AppState>,
    q: std::result::Result<Query<ModelQuery>, QueryRejection>,
) -> Result<Json<Value>> {
    let model = served_model(&s, q)?;
    let (bytes, sha) = model_artifact(model)?;
    Ok(Json(json!({
        "model_version": &model.model_version,
        "sha256": sha,
        "bytes": bytes.len(),
        "schema_version": model.schema_version,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_leniently_and_bodies_strictly() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  abc "));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        assert!(decode_body(wire::CONTENT_TYPE, b"\x01\xff\xff").is_err());
        assert!(decode_body("text/plain", b"{}").is_err());
        let empty = Batch { seq: 1, heartbeat: Default::default(), records: vec![] };
        assert_eq!(decode_body(wire::CONTENT_TYPE, &empty.encode().unwrap()).unwrap(), empty);
        assert_eq!(decode_body("application/json", &serde_json::to_vec(&empty).unwrap()).unwrap(), empty);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Whatever the bytes, decoding answers Ok or a 400, never panics.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            for ct in [wire::CONTENT_TYPE, "application/json"] {
                if let Err(e) = decode_body(ct, &body) {
                    proptest::prop_assert!(matches!(e, Error::BadInput(_)));
                }
            }
        }

        /// A valid body with one byte changed or cut short decodes to a
        /// valid batch or is refused; it is never accepted half-read.
        #[test]
        fn corrupted_valid_bodies_are_refused_or_whole(
            n in 0usize..20, at in proptest::num::usize::ANY, flip in 1u8..=255, cut in proptest::num::usize::ANY
        ) {
            let mut batch = Batch { seq: 3, heartbeat: Default::default(), records: vec![] };
            for i in 0..n {
                batch.records.push(wire::Record {
                    kind: wire::RecordKind::Source,
                    source_ip: Some(format!("198.51.100.{i}")),
                    user: None,
                    start: 1_700_000_000,
                    end: Some(1_700_003_600),
                    fingerprint: bfp_common::Fingerprint {
                        login_hour: 3,
                        session_duration_min: 0.0,
                        commands: 0,
                        failed_logins: 40,
                        protocol: bfp_common::Protocol::Ssh,
                        typing_speed_wpm: None,
                        risky_commands: None,
                    },
                    commands: vec![],
                    suspicious: true,
                    confidence: 0.9,
                    reasons: vec!["40 failed logins".into()],
                });
            }
            let bytes = batch.encode().unwrap();
            let mut flipped = bytes.clone();
            let i = at % flipped.len();
            flipped[i] ^= flip;
            if let Ok(b) = decode_body(wire::CONTENT_TYPE, &flipped) {
                proptest::prop_assert!(devices::validate_batch(&b).is_ok());
            }
            let cut = cut % bytes.len();
            proptest::prop_assert!(decode_body(wire::CONTENT_TYPE, &bytes[..cut]).is_err());
        }
    }
}
