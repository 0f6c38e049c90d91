//! Model distribution: `GET /api/model` (the artifact's bytes, with its
//! version and SHA-256 in headers) and `GET /api/model/version`;
//! `?schema=3` asks for the agents' model, without it (or `schema=1`) the
//! model `/api/predict` scores with. An agent asks for the schema it
//! scores: one of an older schema (2) is refused with a 400 naming the
//! schemas served, never handed a model it would score wrongly.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bfp_common::CompactModel;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::access::{Caller, Identified};
use super::extract::ApiQuery;
use super::AppState;
use crate::error::{Error, Result};

/// Header carrying the served model's version.
pub const MODEL_VERSION_HEADER: &str = "x-bfp-model-version";
/// Header carrying the served model's SHA-256 (hex).
pub const MODEL_SHA256_HEADER: &str = "x-bfp-model-sha256";

/// `?schema=` of the model endpoints: which model is asked for.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ModelQuery {
    /// 1 (the default, and what older agents get): the model `/api/predict`
    /// scores with; 3: the agents' model (a device token fetches only this
    /// one; an older agent asking for 2 is told to keep its own).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 3)]
    schema: Option<String>,
}

/// The model `q` asks for, or a 400 naming the schemas served. A device
/// gets only the agents' model (403 for the other).
fn served_model<'a>(s: &'a AppState, who: &Identified, q: ModelQuery) -> Result<&'a CompactModel> {
    let agents = s.agent_model.schema_version;
    let model = match q.schema.as_deref().map(str::trim) {
        None | Some("1") => &s.model,
        Some(v) if v == agents.to_string() => &s.agent_model,
        // An agent of an older feature schema: a model of another schema
        // would score its vectors wrongly, so it keeps its own.
        Some(v) if v.parse::<u16>().is_ok_and(|n| n != 1 && n < agents) => {
            return Err(Error::BadInput(format!(
                "this collector serves the agents' model of feature schema {agents}, not {v}: an agent that scores \
                 schema {v} keeps its own model until it is upgraded"
            )))
        }
        Some(v) => {
            return Err(Error::BadInput(format!(
                "schema must be 1 (the /api/predict model) or {agents} (the agents' model), got {v:?}"
            )))
        }
    };
    if matches!(who.caller, Caller::Device(_)) && model.schema_version != agents {
        return Err(Error::Forbidden(format!("a device token fetches only the agents' model (schema={agents})")));
    }
    Ok(model)
}

/// A model's bytes and SHA-256.
fn model_artifact(model: &CompactModel) -> Result<(Vec<u8>, String)> {
    let bytes = model.to_bytes()?;
    let sha = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    Ok((bytes, sha))
}

#[utoipa::path(get, path = "/api/model", operation_id = "getModel", tag = "agents",
    summary = "The served model artifact (postcard), with its version and SHA-256 in X-BFP-Model-Version and X-BFP-Model-Sha256",
    params(ModelQuery),
    responses(
        (status = 200, description = "The artifact", content_type = "application/octet-stream", body = super::openapi::Binary,
            headers(("x-bfp-model-version" = String, description = "Its version"), ("x-bfp-model-sha256" = String, description = "SHA-256 of the body, hex"))),
        (status = 400, description = "A bad schema", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn model(
    State(s): State<AppState>,
    who: Identified,
    ApiQuery(q): ApiQuery<ModelQuery>,
) -> Result<Response> {
    let model = served_model(&s, &who, q)?;
    let (bytes, sha) = model_artifact(model)?;
    let header_value = |v: &str| HeaderValue::from_str(v).map_err(|e| Error::Internal(e.to_string()));
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(MODEL_VERSION_HEADER, header_value(&model.model_version)?);
    h.insert(MODEL_SHA256_HEADER, header_value(&sha)?);
    Ok(response)
}

/// What `GET /api/model` would send.
#[derive(Serialize, ToSchema)]
pub struct ModelVersion<'a> {
    /// The model's version.
    #[schema(value_type = String)]
    model_version: &'a str,
    /// SHA-256 of the artifact, hex.
    sha256: String,
    /// The artifact's size.
    bytes: usize,
    /// Its feature schema.
    schema_version: u16,
}

#[utoipa::path(get, path = "/api/model/version", operation_id = "getModelVersion", tag = "agents",
    summary = "The served model's version, size and SHA-256 (agents poll this)",
    params(ModelQuery),
    responses(
        (status = 200, description = "The model's identity", body = ModelVersion),
        (status = 400, description = "A bad schema", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn model_version(
    State(s): State<AppState>,
    who: Identified,
    ApiQuery(q): ApiQuery<ModelQuery>,
) -> Result<Response> {
    let model = served_model(&s, &who, q)?;
    let (bytes, sha) = model_artifact(model)?;
    let body = ModelVersion {
        model_version: &model.model_version,
        sha256: sha,
        bytes: bytes.len(),
        schema_version: model.schema_version,
    };
    Ok(Json(body).into_response())
}
