//! `GET /metrics` (Prometheus text format): requests by route and status
//! with their latency, stored predictions by source and label, the writer's
//! commits, latency and queue, the database's size on disk, agent ingest,
//! each device's last report, the model and the build. Requests are counted
//! by [`super::edge`], around the router.
//!
//! What lives in memory (requests, latencies) is kept in `prometheus-client`
//! metrics and encoded by it; what is read from the store at scrape time
//! (stored counts, alerts, devices) is written here as text beside them.

use std::time::SystemTime;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::AppState;
use crate::error::{Error, Result};
use crate::store::model::LATENCY_BUCKETS;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

type LatencyFamily = Family<RouteLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Requests answered, by matched route and status, and their latency by
/// route (from the request reaching the router to its response's head).
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Family<RouteStatus, Counter>,
    latency: LatencyFamily,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics { requests: Family::default(), latency: Family::new_with_constructor(latency_histogram) }
    }
}

impl HttpMetrics {
    /// Counts one answered request of `route` (a
    /// [`super::access::ROUTE_ACCESS`] path, or `unmatched`) that took
    /// `seconds`. The labels are static: no allocation per request.
    pub fn record(&self, route: &'static str, status: u16, seconds: f64) {
        self.requests.get_or_create(&RouteStatus { route, status }).inc();
        self.latency.get_or_create(&RouteLabel { route }).observe(seconds);
    }

    /// The in-memory families, and the writer's commit latency, as text.
    fn encode(&self, out: &mut String, commit_seconds: &Histogram) -> std::fmt::Result {
        let mut registry = Registry::default();
        registry.register(
            "bfp_http_requests",
            "HTTP requests answered, by matched route and status",
            self.requests.clone(),
        );
        registry.register(
            "bfp_http_request_duration_seconds",
            "Time from a request reaching the router to its response, by matched route",
            self.latency.clone(),
        );
        registry.register(
            "bfp_writer_commit_duration_seconds",
            "Time each committed write transaction took, from its start to its commit",
            commit_seconds.clone(),
        );
        prometheus_client::encoding::prometheus_text::encode(out, &registry)
    }
}

#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "service",
    summary = "Prometheus metrics: request and commit latency, writer queue, database size, ingest, devices, rate limits, build",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)))]
pub(super) async fn metrics(State(s): State<AppState>) -> Result<Response> {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::with_capacity(8192);
    s.metrics
        .encode(&mut out, &s.store.stats().commit_seconds)
        .map_err(|_| Error::Internal("metrics encoding failed".into()))?;
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
        let families: [(&str, &str, &str, Value); 4] = [
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
            (
                "bfp_outbox_dead",
                "gauge",
                "Notifications given up on after notify.max_attempts failed attempts, by destination.",
                |d| d.counts.dead,
            ),
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
    let queue = s.store.writer_queue();
    let _ = writeln!(out, "# HELP bfp_writer_queue_depth Write requests waiting for the writer.");
    let _ = writeln!(out, "# TYPE bfp_writer_queue_depth gauge");
    let _ = writeln!(out, "bfp_writer_queue_depth {}", queue.depth);
    let _ = writeln!(out, "# HELP bfp_writer_queue_capacity Write requests that can wait before senders block.");
    let _ = writeln!(out, "# TYPE bfp_writer_queue_capacity gauge");
    let _ = writeln!(out, "bfp_writer_queue_capacity {}", queue.capacity);
    let storage = s.store.storage_bytes().await?;
    let _ = writeln!(out, "# HELP bfp_database_size_bytes The database's size (SQLite file, or pg_database_size).");
    let _ = writeln!(out, "# TYPE bfp_database_size_bytes gauge");
    let _ = writeln!(out, "bfp_database_size_bytes {}", storage.database);
    if let Some(wal) = storage.wal {
        let _ = writeln!(out, "# HELP bfp_database_wal_bytes SQLite's write-ahead log (the -wal file) on disk.");
        let _ = writeln!(out, "# TYPE bfp_database_wal_bytes gauge");
        let _ = writeln!(out, "bfp_database_wal_bytes {wal}");
    }
    let ingest: [(&str, &str, &std::sync::atomic::AtomicU64); 3] = [
        ("bfp_ingest_batches_total", "Agent batches answered (stored, or retries recognised).", &w.ingest_batches),
        ("bfp_ingest_records_total", "Records stored from agent batches.", &w.ingest_records),
        (
            "bfp_ingest_duplicates_total",
            "Agent batches stored before (retries): only their heartbeat was kept.",
            &w.ingest_duplicates,
        ),
    ];
    for (name, help, counter) in ingest {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {}", counter.load(Relaxed));
    }
    write_devices(&mut out, &s.store.devices().await?);
    let _ = writeln!(out, "# HELP bfp_build_info The running collector's build.");
    let _ = writeln!(out, "# TYPE bfp_build_info gauge");
    let _ = writeln!(
        out,
        "bfp_build_info{{version=\"{}\",profile=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    let _ = writeln!(out, "# HELP bfp_model_info The model that scores predictions.");
    let _ = writeln!(out, "# TYPE bfp_model_info gauge");
    let _ = writeln!(out, "bfp_model_info{{version=\"{}\",trees=\"{}\"}} 1", s.model_version, s.model.trees());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

/// What each active device last reported in its heartbeat (its spool, its
/// drops) and when it was last heard from. Revoked devices are left out.
fn write_devices(out: &mut String, devices: &[crate::store::DeviceInfo]) {
    use std::fmt::Write;
    let active: Vec<_> = devices.iter().filter(|d| d.revoked.is_none()).collect();
    type Value = fn(&crate::store::DeviceInfo) -> Option<u64>;
    let families: [(&str, &str, &str, Value); 4] = [
        (
            "bfp_device_last_seen_timestamp_seconds",
            "gauge",
            "When each device's last batch or heartbeat arrived (Unix time).",
            |d| d.last_seen.as_deref().and_then(unix_seconds),
        ),
        ("bfp_device_spool_depth", "gauge", "Records waiting in each device's spool, as it last reported.", |d| {
            Some(d.spool_depth)
        }),
        (
            "bfp_device_dropped_total",
            "counter",
            "Records each device's spool dropped at its size cap since install, as it last reported.",
            |d| Some(d.dropped),
        ),
        (
            "bfp_device_lines_read_total",
            "counter",
            "Log lines each device has read since install, as it last reported.",
            |d| Some(d.lines_read),
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for d in &active {
            if let Some(v) = value(d) {
                // Device names are letters, digits, '.', '_' and '-': nothing to escape.
                let _ = writeln!(out, "{name}{{device=\"{}\"}} {v}", d.name);
            }
        }
    }
}

/// A store time (`YYYY-MM-DD HH:MM:SS`, UTC) as Unix seconds.
fn unix_seconds(time: &str) -> Option<u64> {
    let at = humantime::parse_rfc3339_weak(time).ok()?;
    at.duration_since(SystemTime::UNIX_EPOCH).ok().map(|d| d.as_secs())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_times_are_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01 00:00:00"), Some(0));
        assert_eq!(unix_seconds("2026-12-07 16:00:00"), Some(1_796_659_200));
        assert_eq!(unix_seconds("not a time"), None);
    }

    #[test]
    fn requests_are_counted_and_timed_by_route_in_prometheus_text() {
        let m = HttpMetrics::default();
        m.record("/api/predict", 200, 0.0007);
        m.record("/api/predict", 200, 0.003);
        m.record("/api/predict", 400, 0.0001);
        let commits = Histogram::new(LATENCY_BUCKETS);
        commits.observe(0.02);
        let mut out = String::new();
        m.encode(&mut out, &commits).unwrap();
        for line in [
            "# TYPE bfp_http_requests_total counter",
            r#"bfp_http_requests_total{route="/api/predict",status="200"} 2"#,
            r#"bfp_http_requests_total{route="/api/predict",status="400"} 1"#,
            "# TYPE bfp_http_request_duration_seconds histogram",
            r#"bfp_http_request_duration_seconds_bucket{route="/api/predict",le="0.0005"} 1"#,
            r#"bfp_http_request_duration_seconds_bucket{route="/api/predict",le="0.001"} 2"#,
            r#"bfp_http_request_duration_seconds_bucket{route="/api/predict",le="0.005"} 3"#,
            r#"bfp_http_request_duration_seconds_count{route="/api/predict"} 3"#,
            r#"bfp_writer_commit_duration_seconds_bucket{le="0.01"} 0"#,
            r#"bfp_writer_commit_duration_seconds_bucket{le="0.025"} 1"#,
            "bfp_writer_commit_duration_seconds_count 1",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
    }
}
