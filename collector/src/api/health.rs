//! `GET /health` (liveness: the original's answer, word for word, once a
//! round trip through the writer and the database succeeds), `GET
//! /health/ready` (readiness: migrations applied, the writer running, not
//! shutting down) and `GET /api/openapi.json` (the API's description).
//!
//! Both checks share one round trip a second at most ([`Health`]): a probe
//! flood cannot crowd the writer's queue.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::store::Store;

/// How long one writer round trip's outcome answers later checks.
const FRESH: Duration = Duration::from_secs(1);

/// Where the service is in its life, for `/health/ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// The store is being opened and migrated; not serving yet.
    Starting = 0,
    /// Serving.
    Ready = 1,
    /// Shutdown requested: finishing requests and queued writes.
    Draining = 2,
}

/// The service's phase and its last writer round trip.
#[derive(Debug)]
pub struct Health {
    phase: AtomicU8,
    /// Longest wait for the writer's answer (`--health-timeout`).
    timeout: Duration,
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Health {
    /// Starting, with `timeout` for the writer's round trip.
    pub fn new(timeout: Duration) -> Health {
        Health { phase: AtomicU8::new(Phase::Starting as u8), timeout, last: tokio::sync::Mutex::new(None) }
    }

    /// Moves to `phase`.
    pub fn set(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Starting,
            1 => Phase::Ready,
            _ => Phase::Draining,
        }
    }

    /// A round trip through the writer and the database, or the outcome of
    /// one less than [`FRESH`] old. Concurrent callers wait for the same one.
    pub async fn writer(&self, store: &dyn Store) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, outcome)) = &*last {
            if at.elapsed() < FRESH {
                return outcome.clone();
            }
        }
        let outcome = match tokio::time::timeout(self.timeout, store.ping_writer()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the writer failed: {e}")),
            Err(_) => Err(format!("the writer did not answer within {} s", self.timeout.as_secs_f64())),
        };
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, "health check failed");
        }
        *last = Some((Instant::now(), outcome.clone()));
        outcome
    }
}

impl Default for Health {
    fn default() -> Self {
        Health::new(Duration::from_secs(10))
    }
}

/// Why the service cannot serve (503).
#[derive(Serialize, ToSchema)]
pub struct Unavailable {
    /// `ERROR` (the writer failed or did not answer), `starting` or
    /// `shutting down`.
    #[schema(value_type = UnavailableStatus)]
    status: &'static str,
    /// Always `Service Unavailable`.
    #[schema(example = "Service Unavailable")]
    error: &'static str,
    /// What is wrong.
    #[schema(example = "the writer did not answer within 10 s")]
    detail: String,
}

/// [`Unavailable::status`]'s values.
#[derive(ToSchema)]
pub enum UnavailableStatus {
    /// The writer failed or did not answer in time.
    #[schema(rename = "ERROR")]
    Error,
    /// The store is being opened.
    #[schema(rename = "starting")]
    Starting,
    /// Finishing requests and queued writes.
    #[schema(rename = "shutting down")]
    ShuttingDown,
}

fn unavailable(status: &'static str, detail: &str) -> Response {
    let body = Unavailable { status, error: "Service Unavailable", detail: detail.to_string() };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// `GET /health`: the original answer, word for word.
#[derive(Serialize, ToSchema)]
pub struct Alive {
    /// `OK`.
    #[schema(value_type = String, pattern = "^OK$")]
    status: &'static str,
    /// `Backend is running`.
    #[schema(value_type = String, example = "Backend is running")]
    message: &'static str,
}

/// Liveness: the original body once the writer answers; 503 JSON if it
/// fails or does not answer in time.
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "health",
    summary = "Liveness: the original answer once a round trip through the writer and the database succeeds",
    responses(
        (status = 200, description = "Alive", body = Alive),
        (status = 503, description = "The writer failed or did not answer within --health-timeout", body = Unavailable),
    ))]
pub(super) async fn health(State(s): State<AppState>) -> Response {
    match s.health.writer(&*s.store).await {
        Ok(()) => Json(Alive { status: "OK", message: "Backend is running" }).into_response(),
        Err(detail) => unavailable("ERROR", &detail),
    }
}

/// `GET /health/ready` when ready.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    #[schema(value_type = String, pattern = "^ready$")]
    status: &'static str,
}

/// Readiness: ready to take traffic once started (store migrated, writer
/// running) and while the writer answers; not while shutting down.
#[utoipa::path(get, path = "/health/ready", operation_id = "ready", tag = "health",
    summary = "Readiness: store migrated, writer answering, not shutting down",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Starting, shutting down, or the writer failed", body = Unavailable),
    ))]
pub(super) async fn ready(State(s): State<AppState>) -> Response {
    match s.health.phase() {
        Phase::Starting => unavailable("starting", "the store is being opened"),
        Phase::Draining => unavailable("shutting down", "finishing requests and queued writes"),
        Phase::Ready => match s.health.writer(&*s.store).await {
            Ok(()) => Json(Ready { status: "ready" }).into_response(),
            Err(detail) => unavailable("ERROR", &detail),
        },
    }
}

/// The document, generated once from the code (see [`super::openapi`]).
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "openapi", tag = "service",
    summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub(super) async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi::DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::*;

    async fn get(app: &crate::api::Api, path: &str) -> (StatusCode, Value) {
        let req = Request::get(path).header("host", "localhost").header("authorization", "Bearer the-admin-token");
        let r = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn ready_follows_the_phase_and_both_fail_when_the_writer_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (app, store, health) = super::super::test_service_with_health(&dir).await;
        // Before Server::run marks it ready: alive, not ready.
        assert_eq!(get(&app, "/health").await, (StatusCode::OK, json!({"status":"OK","message":"Backend is running"})));
        let (status, body) = get(&app, "/health/ready").await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("starting")));
        health.set(Phase::Ready);
        assert_eq!(get(&app, "/health/ready").await, (StatusCode::OK, json!({"status":"ready"})));
        health.set(Phase::Draining);
        let (status, body) = get(&app, "/health/ready").await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("shutting down")));
        assert_eq!(get(&app, "/health").await.0, StatusCode::OK, "alive while draining");

        // The writer stopped: once the last good round trip is stale, both 503.
        health.set(Phase::Ready);
        store.shutdown().await;
        tokio::time::sleep(FRESH).await;
        let (status, body) = get(&app, "/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["status"], "ERROR");
        assert!(body["detail"].as_str().unwrap().contains("writer failed"), "{body}");
        assert_eq!(get(&app, "/health/ready").await.0, StatusCode::SERVICE_UNAVAILABLE);
    }

    /// A writer held by a job that does not end, standing in for one stuck
    /// on a disk: the check gives up at its timeout, and recovers after.
    #[tokio::test]
    async fn a_writer_that_does_not_answer_is_unhealthy_after_the_timeout() {
        use crate::store::sqlite::{SqliteConfig, SqliteStore};
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(&SqliteConfig::new(dir.path().join("a.db"))).unwrap());
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (running, started) = tokio::sync::oneshot::channel();
        let holder = store.clone();
        let job = tokio::spawn(async move {
            holder
                .exclusive(move |_| {
                    let _ = running.send(());
                    let _ = held.recv();
                    Ok(())
                })
                .await
        });
        started.await.unwrap();
        let health = Health::new(Duration::from_millis(300));
        let t0 = Instant::now();
        let outcome = health.writer(&*store).await;
        assert!(outcome.as_ref().is_err_and(|e| e.contains("did not answer within 0.3 s")), "{outcome:?}");
        assert!(t0.elapsed() >= Duration::from_millis(300));
        release.send(()).unwrap();
        job.await.unwrap().unwrap();
        tokio::time::sleep(FRESH).await;
        assert_eq!(health.writer(&*store).await, Ok(()));
    }
}
