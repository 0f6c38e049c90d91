//! `GET /metrics` (Prometheus text format): requests by route and status,
//! stored predictions by source and label, the writer's commits, and the
//! model. Requests are counted by [`super::edge`], around the router.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::Result;

/// Requests answered, by matched route and status.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    counts: Mutex<BTreeMap<(&'static str, u16), u64>>,
}

impl HttpMetrics {
    /// Counts a reply of `route` (a [`super::access::ROUTE_ACCESS`] path, or
    /// `unmatched`).
    pub(crate) fn record(&self, route: &'static str, status: u16) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry((route, status)).or_default() += 1;
        }
    }

    fn snapshot(&self) -> Vec<((&'static str, u16), u64)> {
        self.counts.lock().map(|c| c.iter().map(|(k, v)| (*k, *v)).collect()).unwrap_or_default()
    }
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
    write_limits(&mut out, &s);
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

/// The accept loop's and the rate limits' counters.
fn write_limits(out: &mut String, s: &AppState) {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let n = &s.net;
    let mut one = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    };
    one("bfp_connections_open", "gauge", "Client connections open.", n.open.load(Relaxed));
    one("bfp_connections_max", "gauge", "The global connection cap (--max-connections).", n.max.load(Relaxed));
    one(
        "bfp_connections_evicted_total",
        "counter",
        "Idle connections closed to make room for a new one at the global cap.",
        n.evicted.load(Relaxed),
    );
    let _ = writeln!(out, "# HELP bfp_connections_refused_total New connections closed at once, by reason.");
    let _ = writeln!(out, "# TYPE bfp_connections_refused_total counter");
    let _ =
        writeln!(out, "bfp_connections_refused_total{{reason=\"per_client\"}} {}", n.refused_per_client.load(Relaxed));
    let _ = writeln!(out, "bfp_connections_refused_total{{reason=\"global\"}} {}", n.refused_global.load(Relaxed));
    let _ = writeln!(out, "# HELP bfp_accept_errors_total Accept errors, by kind (resources: the loop backed off).");
    let _ = writeln!(out, "# TYPE bfp_accept_errors_total counter");
    let _ = writeln!(out, "bfp_accept_errors_total{{kind=\"resources\"}} {}", n.accept_errors_resources.load(Relaxed));
    let _ = writeln!(out, "bfp_accept_errors_total{{kind=\"other\"}} {}", n.accept_errors_other.load(Relaxed));
    let _ = writeln!(out, "# HELP bfp_timeouts_total Connections or requests ended by a timeout, by kind.");
    let _ = writeln!(out, "# TYPE bfp_timeouts_total counter");
    for (kind, counter) in [
        ("header", &n.timeouts_header),
        ("idle", &n.timeouts_idle),
        ("body", &n.timeouts_body),
        ("request", &n.timeouts_request),
        ("tls_handshake", &n.timeouts_handshake),
    ] {
        let _ = writeln!(out, "bfp_timeouts_total{{kind=\"{kind}\"}} {}", counter.load(Relaxed));
    }
    let _ = writeln!(out, "# HELP bfp_requests_limited_total Requests refused by a rate limit (429), by route.");
    let _ = writeln!(out, "# TYPE bfp_requests_limited_total counter");
    for (route, count) in s.rate_limits.snapshot() {
        let _ = writeln!(out, "bfp_requests_limited_total{{route=\"{route}\"}} {count}");
    }
}
