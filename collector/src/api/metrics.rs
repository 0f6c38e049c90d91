//! `GET /metrics` (Prometheus text format): requests by route and status,
//! stored predictions by source and label, the writer's commits, and the
//! model. Request counting is a middleware (`track`) on every route.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::Result;

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

/// Counts every answered request under its matched route.
pub(super) async fn track(State(metrics): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let response = next.run(req).await;
    metrics.record(route.as_deref().unwrap_or("unmatched"), response.status().as_u16());
    response
}

pub(super) async fn metrics(State(s): State<AppState>) -> Result<Response> {
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
    let _ = writeln!(out, "# HELP bfp_alerts Alerts in the database, by rule and state.");
    let _ = writeln!(out, "# TYPE bfp_alerts gauge");
    for (rule, state, n) in s.store.alert_counts().await? {
        let _ = writeln!(out, "bfp_alerts{{rule=\"{}\",state=\"{state}\"}} {n}", rule.replace(['\\', '"', '\n'], "_"));
    }
    if !s.notifier.is_empty() {
        let status = s.notifier.status(&*s.store).await?;
        type Value = fn(&crate::notify::DestinationStatus) -> u64;
        let families: [(&str, &str, &str, Value); 3] = [
            (
                "bfp_notifications_sent_total",
                "counter",
                "Notifications delivered (acknowledged), by destination.",
                |d| d.counts.delivered,
            ),
            ("bfp_notifications_failed_total", "counter", "Failed delivery attempts, by destination.", |d| {
                d.counts.failed
            }),
            ("bfp_outbox_pending", "gauge", "Notifications waiting in the outbox, by destination.", |d| {
                d.counts.pending
            }),
        ];
        for (name, kind, help, value) in families {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for d in &status {
                let _ = writeln!(out, "{name}{{destination=\"{}\"}} {}", d.name, value(d));
            }
        }
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
