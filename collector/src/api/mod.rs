//! The HTTP API: the original Flask contract (`/health`, `/api/predict`,
//! `/api/predict-csv`, `/api/analytics`, `/api/results`), agent ingest, the
//! fleet, model distribution, analyst feedback, the dashboard's read models,
//! `/metrics` and `/api/openapi.json`. Every error is a JSON body (see
//! [`crate::error`]).
//!
//! One module per resource, each with its handlers; [`router`] lists every
//! route in one table. Handlers take their input through the extractors of
//! [`extract`] (JSON bodies, queries, paths, device and admin
//! authentication), which answer the 4xx themselves, and reach the database
//! only through [`crate::store::Store`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::connect_info::Connected;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{header, HeaderValue, Method};
use axum::routing::{delete, get, post};
use axum::Router;
use bfp_common::{CompactModel, Fingerprint};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::{Error, Result};
use crate::store::Store;

pub mod access;
pub mod alerts;
pub mod analytics;
pub mod audit;
pub mod decisions;
pub mod destinations;
pub mod devices;
pub mod edge;
pub mod extract;
pub mod feedback;
pub mod health;
pub mod ingest;
pub mod insights;
pub mod limits;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod predict;
pub mod predict_csv;
pub mod results;
pub mod session;

pub use edge::Api;
pub use metrics::HttpMetrics;

/// Reasons given per prediction.
pub const MAX_REASONS: usize = 3;
/// `/api/results` page size when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 100;
/// Largest `/api/results` page; larger `limit`s are clamped to it.
pub const MAX_PAGE: u32 = 1000;

/// Everything the handlers share, behind one `Arc`: axum clones the state
/// for every request and layer, and one reference count is cheaper than a
/// dozen (a measured cost on the `/api/predict` path).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl From<SharedState> for AppState {
    fn from(shared: SharedState) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct SharedState {
    /// The database.
    pub store: Arc<dyn Store>,
    /// The model that scores single and CSV predictions.
    pub model: Arc<CompactModel>,
    /// `model.model_version`, shared without copying per row.
    pub model_version: Arc<str>,
    /// The model served to agents (feature schema 3, `GET /api/model?schema=3`);
    /// the collector never scores with it.
    pub agent_model: Arc<CompactModel>,
    /// Request counters for `/metrics`.
    pub metrics: Arc<HttpMetrics>,
    /// Bearer token that stands for an administrator (`--admin-token`);
    /// `None`: administrators use their own API tokens or log in.
    pub admin_token: Option<Arc<str>>,
    /// Legacy listeners, allowed hosts, sessions (see [`access::ConsoleConfig`]).
    pub console: Arc<access::ConsoleConfig>,
    /// Login attempts per client address.
    pub login_limiter: session::LoginLimiter,
    /// Per-client rate limits and their refusals.
    pub rate_limits: Arc<limits::RateLimits>,
    /// The accept loop's counters (connections, timeouts), for `/metrics`.
    pub net: Arc<crate::net::NetMetrics>,
    /// Bearer tokens verified in the last second.
    pub tokens: Arc<access::TokenCache>,
    /// The notification destinations (status and test messages).
    pub notifier: Arc<crate::notify::Notifier>,
    /// The service's phase and writer round trips, for `/health` and
    /// `/health/ready`.
    pub health: Arc<health::Health>,
}

/// The two ends of a connection: the client's address and the address of
/// this service it reached (what decides whether the legacy routes are open
/// and which `Host` addresses are this service's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// The client.
    pub peer: SocketAddr,
    /// The local address of the accepted socket; `None` where the server
    /// does not say (then the bound address is used, see [`ApiConfig::bound`]).
    pub local: Option<SocketAddr>,
}

impl Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for ConnInfo {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        ConnInfo { peer: *stream.remote_addr(), local: stream.io().local_addr().ok() }
    }
}

impl Connected<SocketAddr> for ConnInfo {
    fn connect_info(peer: SocketAddr) -> Self {
        ConnInfo { peer, local: None }
    }
}

/// Limits and browser access of the router.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest JSON body, bytes.
    pub max_body_bytes: usize,
    /// Largest CSV upload, bytes.
    pub max_upload_bytes: usize,
    /// Origins allowed by CORS (`*` = any); empty = no CORS layer.
    pub cors_origins: Vec<String>,
    /// The address the listener is bound to, for connections whose local
    /// address the server does not report (the collector's accept loop
    /// always does). Default: none.
    pub bound: Option<SocketAddr>,
    /// Longest a request may take, body and handler (`--request-timeout`);
    /// past it the client gets 408 with a JSON body. Default: 120 s.
    pub request_timeout: std::time::Duration,
}

/// The service's router: every route, its body limit, and the layers
/// (request metrics, CORS) around them.
pub fn router(state: AppState, config: &ApiConfig) -> Result<Api> {
    let mut app = Router::new()
        .route("/health", get(health::health))
        .route("/health/ready", get(health::ready))
        .route("/api/openapi.json", get(health::openapi))
        .route("/api/predict", post(predict::predict).layer(DefaultBodyLimit::max(config.max_body_bytes)))
        .route("/api/predict-csv", post(predict_csv::predict_csv).layer(DefaultBodyLimit::max(config.max_upload_bytes)))
        .route("/api/analytics", get(analytics::analytics))
        .route("/api/results", get(results::results))
        .route(
            "/api/results/{id}/feedback",
            post(feedback::feedback).layer(DefaultBodyLimit::max(feedback::MAX_FEEDBACK_BYTES)),
        )
        .route("/api/export/labelled.csv", get(feedback::export_labelled))
        .route("/api/insights", get(insights::insights))
        .route("/api/export.csv", get(insights::export_csv))
        .route("/api/ingest", post(ingest::ingest).layer(DefaultBodyLimit::max(ingest::MAX_INGEST_BYTES)))
        .route(
            "/api/devices",
            get(devices::list_devices).post(devices::add_device).layer(DefaultBodyLimit::max(config.max_body_bytes)),
        )
        .route("/api/devices/{name}", delete(devices::revoke_device))
        .route("/api/devices/{name}/blocks", get(decisions::device_blocks))
        .route(
            "/api/decisions",
            get(decisions::list).post(decisions::add).layer(DefaultBodyLimit::max(decisions::MAX_DECISION_BYTES)),
        )
        .route("/api/decisions/{id}", delete(decisions::delete))
        .route("/api/agent/decisions", get(decisions::for_agent))
        .route("/api/model", get(models::model))
        .route("/api/model/version", get(models::model_version))
        .route("/api/alerts", get(alerts::list))
        .route("/api/alerts/{id}/ack", post(alerts::ack).layer(DefaultBodyLimit::max(alerts::MAX_ACTION_BYTES)))
        .route("/api/alerts/{id}/resolve", post(alerts::resolve).layer(DefaultBodyLimit::max(alerts::MAX_ACTION_BYTES)))
        .route("/api/destinations", get(destinations::list))
        .route(
            "/api/destinations/{name}/test",
            post(destinations::test).layer(DefaultBodyLimit::max(destinations::MAX_TEST_BYTES)),
        )
        .route("/metrics", get(metrics::metrics))
        .route("/api/login", post(session::login).layer(DefaultBodyLimit::max(config.max_body_bytes)))
        .route("/api/logout", post(session::logout).layer(DefaultBodyLimit::max(config.max_body_bytes)))
        .route("/api/session", get(session::session))
        .route("/api/audit", get(audit::list))
        .route("/api/audit.csv", get(audit::export_csv))
        .merge(crate::dashboard::router())
        // Every route above, and only routes, pass the access table.
        .route_layer(access::EnforceLayer(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    if !config.cors_origins.is_empty() {
        let origin = if config.cors_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            let list = config
                .cors_origins
                .iter()
                .map(|o| HeaderValue::from_str(o).map_err(|_| Error::Config(format!("bad --cors-origin {o:?}"))))
                .collect::<Result<Vec<_>>>()?;
            AllowOrigin::list(list)
        };
        app = app.layer(
            CorsLayer::new()
                .allow_origin(origin)
                // No allow_credentials: a cross-origin page may use an API
                // token, never the dashboard's cookie (and a wildcard origin
                // with credentials is never sent).
                .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
                .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]),
        );
    }
    Ok(Api::new(app, state, config.bound, config.request_timeout))
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Error {
    Error::NotFound(format!("no route for {method} {}", uri.path()))
}

/// A route's 405, counted under the route.
async fn method_not_allowed(matched: Option<MatchedPath>) -> axum::response::Response {
    let mut response = axum::response::IntoResponse::into_response(Error::MethodNotAllowed);
    if let Some(m) = matched {
        response.extensions_mut().insert(access::RouteLabel(access::static_path(m.as_str())));
    }
    response
}

/// The features as the API shows them (input names of the original JSON),
/// serialized without building a `Value` (a page has up to 1000 rows).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Features)]
pub struct FeaturesView {
    /// Hour of the login, 0-23, device local time.
    #[schema(maximum = 23)]
    pub login_hour: u8,
    /// Minutes.
    pub session_duration: f32,
    /// Commands run.
    pub commands_count: u32,
    /// Failed logins before the session.
    pub failed_logins: u32,
    /// How it arrived.
    #[schema(value_type = bfp_common::Protocol)]
    pub protocol: &'static str,
    /// Words per minute; null when unknown.
    pub typing_speed: Option<f32>,
    /// Risky commands among them; null when only a count is known.
    pub risky_commands: Option<u32>,
}

impl FeaturesView {
    /// The view of `fp`.
    pub fn of(fp: &Fingerprint) -> FeaturesView {
        FeaturesView {
            login_hour: fp.login_hour,
            session_duration: fp.session_duration_min,
            commands_count: fp.commands,
            failed_logins: fp.failed_logins,
            protocol: fp.protocol.as_str(),
            typing_speed: fp.typing_speed_wpm,
            risky_commands: fp.risky_commands,
        }
    }
}

/// The router over a real SQLite file in `dir`, for the handlers' unit tests:
/// `--admin-token` is `the-admin-token`, `localhost` is the allowed host, and
/// requests carry no peer address, as from another machine.
#[cfg(test)]
pub(crate) async fn test_service(dir: &tempfile::TempDir) -> (Api, Arc<dyn Store>) {
    let (router, store, health) = test_service_with_health(dir).await;
    health.set(health::Phase::Ready);
    (router, store)
}

/// [`test_service`], still starting, with its health state to move.
#[cfg(test)]
pub(crate) async fn test_service_with_health(dir: &tempfile::TempDir) -> (Api, Arc<dyn Store>, Arc<health::Health>) {
    let store = crate::store::open(&crate::store::sqlite::SqliteConfig::new(dir.path().join("a.db"))).unwrap();
    let model = crate::load_model(None).unwrap();
    let health = Arc::new(health::Health::default());
    let state = SharedState {
        store: store.clone(),
        model_version: Arc::from(model.model_version.as_str()),
        model: Arc::new(model),
        agent_model: Arc::new(crate::load_agent_model(None).unwrap()),
        metrics: Arc::default(),
        admin_token: Some(Arc::from("the-admin-token")),
        console: Arc::new(access::ConsoleConfig {
            allowed_hosts: ["localhost".to_string()].into(),
            ..access::ConsoleConfig::default()
        }),
        login_limiter: session::login_limiter(),
        notifier: Arc::new(crate::notify::Notifier::none()),
        rate_limits: Arc::default(),
        net: Arc::default(),
        tokens: Arc::default(),
        health: health.clone(),
    };
    let config = ApiConfig {
        max_body_bytes: 65536,
        max_upload_bytes: 65536,
        cors_origins: vec![],
        bound: None,
        request_timeout: std::time::Duration::from_secs(120),
    };
    (router(state.into(), &config).unwrap(), store, health)
}
