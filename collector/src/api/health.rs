//! `GET /health` (the original's liveness answer, word for word) and
//! `GET /api/openapi.json` (the API's description).

use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

pub(super) const OPENAPI: &str = include_str!("../openapi.json");

pub(super) async fn health() -> Json<Value> {
    Json(json!({"status": "OK", "message": "Backend is running"}))
}

pub(super) async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
