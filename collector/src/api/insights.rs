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
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::extract::ApiQuery;
use super::results::ResultsParams;
use super::AppState;
use crate::error::{Error, Result};
use crate::store::insights::{Bucket, Split};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InsightsParams {
    bucket: Option<String>,
    /// Where the over-time window ends (event time, the `to` forms of
    /// `/api/results`); the latest event stored when absent.
    to: Option<String>,
}

fn split_json(s: &Split, key: &str) -> Value {
    json!({ key: s.key, "normal": s.normal, "suspicious": s.suspicious })
}

pub(super) async fn insights(
    State(s): State<AppState>,
    ApiQuery(params): ApiQuery<InsightsParams>,
) -> Result<Json<Value>> {
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
    Ok(Json(json!({
        "bucket": if bucket == Bucket::Hour { "hour" } else { "day" },
        "window": i.window.as_ref().map(|(a, b)| format!("{a} to {b} (UTC)")),
        "over_time": i.over_time.iter().map(|s| split_json(s, "bucket")).collect::<Vec<_>>(),
        "by_protocol": i.by_protocol.iter().map(|s| split_json(s, "key")).collect::<Vec<_>>(),
        "by_source": i.by_source.iter().map(|s| split_json(s, "key")).collect::<Vec<_>>(),
        "by_device": i.by_device.iter().map(|s| split_json(s, "key")).collect::<Vec<_>>(),
        "top_suspicious_sources": i.top_sources.iter()
            .map(|(ip, suspicious, total)| json!({"key": ip, "suspicious": suspicious, "total": total}))
            .collect::<Vec<_>>(),
    })))
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
