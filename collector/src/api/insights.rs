//! Read endpoints the dashboard needs beyond the original contract:
//!
//! - `GET /api/insights?bucket=hour|day`: everything the analytics page
//!   charts (predictions over time, by protocol, by source, by device, top
//!   suspicious source addresses), read from roll-ups so it stays fast with
//!   millions of stored predictions;
//! - `GET /api/export.csv?...`: the stored predictions matching the same
//!   filters as `/api/results` (e.g. one CSV upload's `min_id`/`max_id`), as
//!   scored CSV, streamed (memory does not grow with the export).

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use super::extract::ApiQuery;
use super::results::ResultsParams;
use super::AppState;
use crate::error::{Error, Result};
use crate::store::insights::{Bucket, Split};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct InsightsParams {
    /// `over_time` covers the 48 hours (`hour`, default) or 30 days (`day`) up to the latest event
    /// stored (or `to`), by event time, gaps as zeros.
    #[param(value_type = Option<BucketName>)]
    bucket: Option<String>,
    /// Where the over-time window ends (event time, the `to` forms of
    /// `/api/results`); the latest event stored when absent.
    #[param(value_type = Option<String>)]
    to: Option<String>,
}

/// `bucket`'s values.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum BucketName {
    /// Hours.
    Hour,
    /// Days.
    Day,
}

/// Counts of one category, split by verdict.
#[derive(Serialize, ToSchema)]
pub struct SplitView<'a> {
    /// The category.
    #[schema(value_type = String)]
    key: &'a str,
    /// Normal predictions.
    normal: u64,
    /// Suspicious predictions.
    suspicious: u64,
}

/// Counts of one time bucket, split by verdict.
#[derive(Serialize, ToSchema)]
pub struct BucketView<'a> {
    /// The bucket's start, UTC.
    #[schema(value_type = String)]
    bucket: &'a str,
    /// Normal predictions.
    normal: u64,
    /// Suspicious predictions.
    suspicious: u64,
}

/// A source address with the most suspicious predictions.
#[derive(Serialize, ToSchema)]
pub struct TopSource<'a> {
    /// The address.
    #[schema(value_type = String)]
    key: &'a str,
    /// Its suspicious predictions.
    suspicious: u64,
    /// All its predictions.
    total: u64,
}

/// What the console's analytics page charts.
#[derive(Serialize, ToSchema)]
pub struct InsightsView<'a> {
    /// `hour` or `day`.
    #[schema(value_type = BucketName)]
    bucket: &'static str,
    /// The first and last bucket shown; null on an empty store.
    window: Option<String>,
    /// Buckets in time order, gaps as zeros.
    over_time: Vec<BucketView<'a>>,
    /// All-time counts per protocol.
    by_protocol: Vec<SplitView<'a>>,
    /// All-time counts per channel.
    by_source: Vec<SplitView<'a>>,
    /// The 10 devices with the most predictions.
    by_device: Vec<SplitView<'a>>,
    /// The 10 source addresses with the most suspicious predictions.
    top_suspicious_sources: Vec<TopSource<'a>>,
}

fn split_view(s: &Split) -> SplitView<'_> {
    SplitView { key: &s.key, normal: s.normal, suspicious: s.suspicious }
}

#[utoipa::path(get, path = "/api/insights", operation_id = "insights", tag = "triage",
    summary = "What the console's analytics page charts, read from roll-ups (cost independent of the number of stored predictions)",
    params(InsightsParams),
    responses(
        (status = 200, description = "Counts split Normal/Suspicious", body = InsightsView),
        (status = 400, description = "A bad or unknown parameter", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn insights(
    State(s): State<AppState>,
    ApiQuery(params): ApiQuery<InsightsParams>,
) -> Result<Response> {
    let bucket = match params.bucket.as_deref().map(str::trim) {
        None | Some("") | Some("hour") => Bucket::Hour,
        Some("day") => Bucket::Day,
        Some(other) => return Err(Error::BadInput(format!("bucket must be hour or day, got {other:?}"))),
    };
    let until = match params.to.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(crate::store::insights::parse_time("to", t, true)?),
    };
    let i = s.store.insights(bucket, until).await?;
    let body = InsightsView {
        bucket: if bucket == Bucket::Hour { "hour" } else { "day" },
        window: i.window.as_ref().map(|(a, b)| format!("{a} to {b} (UTC)")),
        over_time: i
            .over_time
            .iter()
            .map(|s| BucketView { bucket: &s.key, normal: s.normal, suspicious: s.suspicious })
            .collect(),
        by_protocol: i.by_protocol.iter().map(split_view).collect(),
        by_source: i.by_source.iter().map(split_view).collect(),
        by_device: i.by_device.iter().map(split_view).collect(),
        top_suspicious_sources: i
            .top_sources
            .iter()
            .map(|(ip, suspicious, total)| TopSource { key: ip, suspicious: *suspicious, total: *total })
            .collect(),
    };
    Ok(Json(body).into_response())
}

/// Sends what the export writes to the response body, chunk by chunk; the
/// bounded channel holds the reader back when the client reads slowly.
struct ChannelWriter(mpsc::Sender<std::result::Result<Bytes, std::io::Error>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[utoipa::path(get, path = "/api/export.csv", operation_id = "exportResults", tag = "triage",
    summary = "Stored predictions matching the /api/results filters (paging and order ignored: id order) as scored CSV, streamed",
    params(ResultsParams),
    responses(
        (status = 200, description = "Header LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed,Prediction,Confidence,Reasons,Id,CreatedAt,Source,Device,SourceIp,EventAt,User,Kind,Commands (Commands separated by \"; \")", content_type = "text/csv", body = String),
        (status = 400, description = "A bad or unknown filter", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn export_csv(
    State(s): State<AppState>,
    ApiQuery(params): ApiQuery<ResultsParams>,
) -> Result<Response> {
    let query = params.into_query()?;
    let (tx, mut rx) = mpsc::channel(8);
    let errors = tx.clone();
    let store = s.store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.export_csv(query, Box::new(ChannelWriter(tx))).await {
            // Headers are gone already: end the body with an error so the
            // client sees a broken transfer, not a short file that looks whole.
            tracing::warn!(error = %e, "csv export stopped");
            let _ = errors.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    h.insert(CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"bfp-scored.csv\""));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
