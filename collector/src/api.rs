//! The HTTP API: the original Flask contract (`/health`, `/api/predict`,
//! `/api/predict-csv`, `/api/analytics`, `/api/results`) plus `/metrics` and
//! `/api/openapi.json`. Every error is a JSON body (see [`crate::error`]).

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bfp_common::{explain, CompactModel, Fingerprint};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::{Error, Result};
use crate::store::{
    self, AgentContext, CsvChunk, CsvRow, CsvSender, NewPrediction, Reason, ResultsQuery, Source, Store,
    StoredPrediction,
};

/// Reasons given per prediction.
pub const MAX_REASONS: usize = 3;
/// `/api/results` page size when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 100;
/// Largest `/api/results` page; larger `limit`s are clamped to it.
pub const MAX_PAGE: u32 = 1000;

pub mod feedback;
pub mod ingest;
pub mod insights;

const OPENAPI: &str = include_str!("openapi.json");

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Store>,
    /// The model that scores single and CSV predictions.
    pub model: Arc<CompactModel>,
    /// `model.model_version`, shared without copying per row.
    pub model_version: Arc<str>,
    /// The model served to agents (feature schema 2, `GET /api/model?schema=2`);
    /// the collector never scores with it.
    pub agent_model: Arc<CompactModel>,
    /// Request counters for `/metrics`.
    pub metrics: Arc<HttpMetrics>,
    /// Bearer token that allows device administration from a non-loopback
    /// peer (`--admin-token`); `None`: loopback only.
    pub admin_token: Option<Arc<str>>,
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
}

/// Requests answered, by matched route and status.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    counts: Mutex<BTreeMap<(String, u16), u64>>,
}

impl HttpMetrics {
    fn record(&self, route: &str, status: u16) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry((route.to_string(), status)).or_default() += 1;
        }
    }

    fn snapshot(&self) -> Vec<((String, u16), u64)> {
        self.counts.lock().map(|c| c.iter().map(|(k, v)| (k.clone(), *v)).collect()).unwrap_or_default()
    }
}

/// The service's router.
pub fn router(state: AppState, config: &ApiConfig) -> Result<Router> {
    let mut app = Router::new()
        .route("/health", get(health))
        .route("/api/predict", post(predict).layer(DefaultBodyLimit::max(config.max_body_bytes)))
        .route("/api/predict-csv", post(predict_csv).layer(DefaultBodyLimit::max(config.max_upload_bytes)))
        .route("/api/analytics", get(analytics))
        .route("/api/results", get(results))
        .route("/api/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .merge(ingest::router())
        .merge(feedback::router())
        .merge(insights::router())
        .merge(crate::dashboard::router())
        .fallback(not_found)
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.metrics.clone(), track))
        .with_state(state);
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
                .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
                .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]),
        );
    }
    Ok(app)
}

async fn track(State(metrics): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let response = next.run(req).await;
    metrics.record(route.as_deref().unwrap_or("unmatched"), response.status().as_u16());
    response
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Error {
    Error::NotFound(format!("no route for {method} {}", uri.path()))
}

async fn health() -> Json<Value> {
    Json(json!({"status": "OK", "message": "Backend is running"}))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// The features as the API shows them (input names of the original JSON).
pub fn features_json(fp: &Fingerprint) -> Value {
    json!({
        "login_hour": fp.login_hour,
        "session_duration": fp.session_duration_min,
        "commands_count": fp.commands,
        "failed_logins": fp.failed_logins,
        "protocol": fp.protocol.as_str(),
        "typing_speed": fp.typing_speed_wpm,
        "risky_commands": fp.risky_commands,
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn body_error(status: StatusCode, text: String) -> Error {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Error::TooLarge(text)
    } else {
        Error::BadInput(text)
    }
}

async fn predict(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    let body = body.map_err(|r| body_error(r.status(), r.body_text()))?;
    if !is_json(&headers) {
        return Err(Error::BadInput("Content-Type must be application/json".into()));
    }
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| Error::BadInput(format!("body is not valid JSON: {e}")))?;
    let (fp, command_list) = Fingerprint::from_json(&value).map_err(|e| Error::BadInput(e.to_string()))?;
    let verdict = s.model.score(&fp.features());
    let reasons = explain::reasons(&fp, &verdict, MAX_REASONS);
    let commands = value.get("commands").is_some_and(Value::is_array).then_some(command_list);
    let prediction = NewPrediction {
        source: Source::Single,
        fingerprint: fp,
        suspicious: verdict.suspicious,
        confidence: verdict.confidence,
        commands,
        model_version: s.model_version.clone(),
        reasons: Reason::from_verdict(&fp, &verdict, MAX_REASONS),
        device: None,
        agent: AgentContext::default(),
    };
    let ids = s.store.insert(vec![prediction]).await?;
    Ok(Json(json!({
        "prediction": verdict.label(),
        "confidence": store::round_confidence(verdict.confidence),
        "features": features_json(&fp),
        "reasons": reasons,
        "model_version": &*s.model_version,
        "id": ids.first().copied(),
    })))
}

fn multipart_error(e: MultipartError) -> Error {
    body_error(e.status(), format!("upload failed: {}", e.body_text()))
}

/// `?ids=1` on `/api/predict-csv` adds `first_id`/`last_id` (the stored
/// rows' ids, for the dashboard); without it the answer is the original's.
#[derive(Debug, Default, Deserialize)]
struct CsvParams {
    ids: Option<String>,
}

async fn predict_csv(
    State(s): State<AppState>,
    csv_params: std::result::Result<Query<CsvParams>, axum::extract::rejection::QueryRejection>,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>> {
    let Query(csv_params) = csv_params.map_err(|r| Error::BadInput(r.body_text()))?;
    let mut multipart = multipart.map_err(|r| {
        Error::BadInput(format!("expected a multipart/form-data upload with a field `file`: {}", r.body_text()))
    })?;
    let mut field = loop {
        match multipart.next_field().await.map_err(multipart_error)? {
            Some(field) if field.name() == Some("file") => break field,
            Some(_) => continue,
            None => return Err(Error::BadInput("missing multipart field `file`".into())),
        }
    };

    // Stage the upload in an anonymous temp file next to the database (not in
    // memory, not in a tmpfs): memory stays flat whatever the file's size,
    // and a slow client never holds the writer.
    let started = std::time::Instant::now();
    let mut staged = tokio::fs::File::from_std(tempfile::tempfile_in(s.store.staging_dir())?);
    let mut size = 0usize;
    while let Some(bytes) = field.chunk().await.map_err(multipart_error)? {
        size += bytes.len();
        staged.write_all(&bytes).await?;
    }
    if size == 0 {
        return Err(Error::BadInput("the uploaded file is empty".into()));
    }
    staged.flush().await?;
    let mut staged = staged.into_std().await;
    staged.rewind()?;

    // Parse, score and insert in one pass: the parser (a blocking task) feeds
    // the writer's open transaction, which commits only if every row is valid.
    let staged_in = started.elapsed();
    let (rows, committed) = s.store.begin_csv(s.model_version.clone()).await?;
    let model = s.model.clone();
    let parsed = tokio::task::spawn_blocking(move || parse_csv(std::io::BufReader::new(staged), rows, &model))
        .await
        .map_err(|e| Error::Internal(format!("CSV parser: {e}")))?;
    let parsed_in = started.elapsed();
    let committed = committed.await;
    tracing::info!(
        bytes = size,
        ok = committed.is_ok(),
        staged_ms = staged_in.as_millis() as u64,
        parsed_ms = parsed_in.as_millis() as u64,
        committed_ms = started.elapsed().as_millis() as u64,
        "CSV upload"
    );
    let summary = match (parsed, committed) {
        (Ok(()), committed) => committed?,
        // The client's mistake is the answer; the writer rolled back.
        (Err(e @ Error::BadInput(_)), _) => return Err(e),
        // The parser stopped because the writer failed: the writer says why.
        (Err(_), Err(e)) => return Err(e),
        (Err(e), Ok(_)) => return Err(e),
    };
    let mut answer = json!({
        "total_records": summary.total,
        "normal_users": summary.normal,
        "suspicious_users": summary.suspicious,
    });
    if matches!(csv_params.ids.as_deref(), Some("1" | "true")) {
        answer["first_id"] = json!(summary.first_id);
        answer["last_id"] = json!(summary.last_id);
    }
    Ok(Json(answer))
}

/// Rows per message from the CSV parser to the writer.
const PARSE_CHUNK: usize = 1024;

fn parse_csv(input: impl Read, rows: CsvSender, model: &CompactModel) -> Result<()> {
    let csv_error = |e: csv::Error, row: u64| match e.kind() {
        csv::ErrorKind::Utf8 { .. } => Error::BadInput(format!("CSV row {row}: not valid UTF-8")),
        csv::ErrorKind::Io(e) => Error::Io(std::io::Error::new(e.kind(), e.to_string())),
        _ => Error::BadInput(format!("CSV row {row}: {e}")),
    };
    let writer_gone = || Error::Store("the writer stopped during the upload".into());
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(input);
    let header = reader.headers().map_err(|e| csv_error(e, 0))?.clone();
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err(Error::BadInput("the uploaded file is empty".into()));
    }
    Fingerprint::check_csv_header(&header).map_err(|e| Error::BadInput(e.to_string()))?;
    let mut record = csv::StringRecord::new();
    let mut row = 0u64;
    let mut batch = Vec::with_capacity(PARSE_CHUNK);
    while reader.read_record(&mut record).map_err(|e| csv_error(e, row + 1))? {
        row += 1;
        let fp = Fingerprint::from_csv_record(&record, row).map_err(|e| Error::BadInput(e.to_string()))?;
        let verdict = model.score(&fp.features());
        let reasons = Reason::from_verdict(&fp, &verdict, MAX_REASONS);
        batch.push(CsvRow::new(&fp, verdict.suspicious, verdict.confidence, &reasons));
        if batch.len() == PARSE_CHUNK {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(PARSE_CHUNK));
            rows.send(CsvChunk::Rows(full)).map_err(|_| writer_gone())?;
        }
    }
    if row == 0 {
        return Err(Error::BadInput("the CSV file has a header but no data rows".into()));
    }
    if !batch.is_empty() {
        rows.send(CsvChunk::Rows(batch)).map_err(|_| writer_gone())?;
    }
    rows.send(CsvChunk::Done).map_err(|_| writer_gone())
}

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / total as f64).round() / 10.0
    }
}

async fn analytics(State(s): State<AppState>) -> Result<Json<Value>> {
    let t = s.store.totals().await?;
    Ok(Json(json!({
        "total_predictions": t.total(),
        "normal_users": t.normal,
        "suspicious_users": t.suspicious,
        "normal_percent": percent(t.normal, t.total()),
        "suspicious_percent": percent(t.suspicious, t.total()),
    })))
}

/// Query string of `/api/results`; all text, parsed below for precise errors.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResultsParams {
    limit: Option<String>,
    offset: Option<String>,
    after_id: Option<String>,
    source: Option<String>,
    device: Option<String>,
    prediction: Option<String>,
    min_id: Option<String>,
    max_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    labelled: Option<String>,
}

fn number<T: std::str::FromStr>(name: &str, value: Option<&str>) -> Result<Option<T>> {
    value
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| Error::BadInput(format!("{name} must be a non-negative integer, got {v:?}")))
        })
        .transpose()
}

fn time_param(name: &str, value: Option<&str>, end: bool) -> Result<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => store::insights::parse_time(name, v, end).map(Some),
    }
}

impl ResultsParams {
    pub(crate) fn into_query(self) -> Result<ResultsQuery> {
        let prediction = match self.prediction.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) if p.eq_ignore_ascii_case("suspicious") => Some(true),
            Some(p) if p.eq_ignore_ascii_case("normal") => Some(false),
            Some(p) => return Err(Error::BadInput(format!("prediction must be Normal or Suspicious, got {p:?}"))),
        };
        Ok(ResultsQuery {
            limit: number::<u32>("limit", self.limit.as_deref())?.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE),
            offset: number::<u64>("offset", self.offset.as_deref())?.unwrap_or(0),
            after_id: number::<i64>("after_id", self.after_id.as_deref())?,
            source: self.source.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(Source::parse).transpose()?,
            device: self.device.filter(|d| !d.is_empty()),
            suspicious: prediction,
            min_id: number::<i64>("min_id", self.min_id.as_deref())?,
            max_id: number::<i64>("max_id", self.max_id.as_deref())?,
            from: time_param("from", self.from.as_deref(), false)?,
            to: time_param("to", self.to.as_deref(), true)?,
            labelled: match self.labelled.as_deref().map(str::trim) {
                None | Some("") => None,
                Some("true" | "1") => Some(true),
                Some("false" | "0") => Some(false),
                Some(l) => return Err(Error::BadInput(format!("labelled must be true or false, got {l:?}"))),
            },
        })
    }
}

/// The features of a stored row, serialized without building a `Value`
/// (a page has up to 1000 rows).
#[derive(Serialize)]
struct FeaturesView {
    login_hour: u8,
    session_duration: f32,
    commands_count: u32,
    failed_logins: u32,
    protocol: &'static str,
    typing_speed: Option<f32>,
    risky_commands: Option<u32>,
}

/// One row of `/api/results`.
#[derive(Serialize)]
struct StoredView<'a> {
    id: i64,
    prediction: &'static str,
    confidence: f64,
    created_at: &'a str,
    source: &'static str,
    device: Option<&'a str>,
    features: FeaturesView,
    commands: Option<&'a [String]>,
    reasons: &'a [String],
    model_version: &'a str,
    kind: Option<&'a str>,
    source_ip: Option<&'a str>,
    user: Option<&'a str>,
    started_at: Option<&'a str>,
    ended_at: Option<&'a str>,
    /// The analyst's true class (`Normal`/`Suspicious`), if labelled.
    analyst_label: Option<&'static str>,
    labelled_at: Option<&'a str>,
    analyst_note: Option<&'a str>,
}

impl<'a> StoredView<'a> {
    fn new(p: &'a StoredPrediction) -> StoredView<'a> {
        let fp = &p.fingerprint;
        StoredView {
            id: p.id,
            prediction: if p.suspicious { "Suspicious" } else { "Normal" },
            confidence: p.confidence,
            created_at: &p.created_at,
            source: p.source.as_str(),
            device: p.device.as_deref(),
            features: FeaturesView {
                login_hour: fp.login_hour,
                session_duration: fp.session_duration_min,
                commands_count: fp.commands,
                failed_logins: fp.failed_logins,
                protocol: fp.protocol.as_str(),
                typing_speed: fp.typing_speed_wpm,
                risky_commands: fp.risky_commands,
            },
            commands: p.commands.as_deref(),
            reasons: &p.reasons,
            model_version: &p.model_version,
            kind: p.agent.kind.as_deref(),
            source_ip: p.agent.source_ip.as_deref(),
            user: p.agent.user.as_deref(),
            started_at: p.agent.started_at.as_deref(),
            ended_at: p.agent.ended_at.as_deref(),
            analyst_label: p.analyst.as_ref().map(|a| a.label()),
            labelled_at: p.analyst.as_ref().map(|a| a.labelled_at.as_str()),
            analyst_note: p.analyst.as_ref().and_then(|a| a.note.as_deref()),
        }
    }
}

async fn results(
    State(s): State<AppState>,
    params: std::result::Result<Query<ResultsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let Query(params) = params.map_err(|r| Error::BadInput(r.body_text()))?;
    let query = params.into_query()?;
    let limit = query.limit;
    let page = s.store.results(query).await?;
    let next_after_id = match page.results.last() {
        Some(last) if page.results.len() as u32 == limit => Some(last.id),
        _ => None,
    };
    #[derive(Serialize)]
    struct Page<'a> {
        count: u64,
        results: Vec<StoredView<'a>>,
        next_after_id: Option<i64>,
    }
    let body = Page { count: page.count, results: page.results.iter().map(StoredView::new).collect(), next_after_id };
    Ok(Json(body).into_response())
}

async fn metrics(State(s): State<AppState>) -> Result<Response> {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::with_capacity(2048);
    let _ = writeln!(out, "# HELP bfp_http_requests_total HTTP requests answered, by matched route and status.");
    let _ = writeln!(out, "# TYPE bfp_http_requests_total counter");
    for ((route, status), n) in s.metrics.snapshot() {
        let _ = writeln!(out, "bfp_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP bfp_predictions_stored Predictions in the database, by source and label.");
    let _ = writeln!(out, "# TYPE bfp_predictions_stored gauge");
    for (source, prediction, n) in s.store.counters().await? {
        let _ = writeln!(out, "bfp_predictions_stored{{source=\"{source}\",prediction=\"{prediction}\"}} {n}");
    }
    let w = s.store.stats();
    let _ = writeln!(out, "# HELP bfp_writer_commits_total Write transactions committed (each a group of requests).");
    let _ = writeln!(out, "# TYPE bfp_writer_commits_total counter");
    let _ = writeln!(out, "bfp_writer_commits_total {}", w.commits.load(Relaxed));
    let _ = writeln!(out, "# HELP bfp_writer_rows_total Rows committed by the writer.");
    let _ = writeln!(out, "# TYPE bfp_writer_rows_total counter");
    let _ = writeln!(out, "bfp_writer_rows_total {}", w.rows.load(Relaxed));
    let _ = writeln!(out, "# HELP bfp_writer_busy_seconds_total Time spent in committed write transactions.");
    let _ = writeln!(out, "# TYPE bfp_writer_busy_seconds_total counter");
    let _ = writeln!(out, "bfp_writer_busy_seconds_total {}", w.busy_micros.load(Relaxed) as f64 / 1e6);
    let _ = writeln!(out, "# HELP bfp_writer_failures_total Write transactions rolled back after an error.");
    let _ = writeln!(out, "# TYPE bfp_writer_failures_total counter");
    let _ = writeln!(out, "bfp_writer_failures_total {}", w.failures.load(Relaxed));
    let _ = writeln!(out, "# HELP bfp_model_info The model that scores predictions.");
    let _ = writeln!(out, "# TYPE bfp_model_info gauge");
    let _ = writeln!(out, "bfp_model_info{{version=\"{}\",trees=\"{}\"}} 1", s.model_version, s.model.trees());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
