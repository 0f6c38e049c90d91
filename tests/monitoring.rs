//! What the operator's monitoring reads: the real collector's `/metrics` passes
//! Prometheus' own linter (`promtool check metrics`) on both backends and
//! counts what was done to it (requests and their latency, commits and
//! theirs, agent ingest, each device's report, the database's size), the
//! shipped alert rules pass `promtool check rules`, and every metric the
//! rules and the Grafana dashboard (`deploy/monitoring/`) query is one the
//! collector exposes.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use bfp_common::wire::CONTENT_TYPE;
use bfp_e2e::forward::{device_add, post_auth, sample_batch};
use bfp_e2e::{post_json, repo_root, Backend, Collector};

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is missing: scripts/setup/monitoring.sh installs Debian's prometheus package");
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `bfp_...` metric names a query text mentions.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("bfp_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The value of the one sample `series` (name and labels exactly as
/// exposed, labels in the order the collector writes them).
fn sample(metrics: &str, series: &str) -> f64 {
    let values: Vec<f64> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix(series))
        .filter_map(|rest| rest.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{series}: not a number: {v}")))
        .collect();
    assert_eq!(values.len(), 1, "{series}: expected one sample, got {values:?} in\n{metrics}");
    values[0]
}

#[test]
fn metrics_pass_promtool_and_the_shipped_rules_and_dashboard_query_only_exposed_metrics() {
    for backend in Backend::ALL {
        metrics_pass_promtool_on(backend);
    }
}

fn metrics_pass_promtool_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let token = device_add(dir.db(), "pi-1");
    let collector = Collector::start(dir.db(), &[]);
    // The administrator's token is made by a command on the same file, which
    // checkpoints its WAL away: first, so the writes below stay in the WAL.
    collector.admin_token();
    // One stored prediction, so the labelled series exist.
    let body = serde_json::json!({"login_time":"03:00","session_duration":5,"commands":["ls"],
        "failed_logins":4,"protocol":"TOR","typing_speed":120});
    assert_eq!(post_json(&collector.url("/api/predict"), &body).status, 200);
    // One agent batch of three records with a heartbeat, then its retry.
    let mut batch = sample_batch(1, 3);
    batch.heartbeat.spool_depth = 7;
    batch.heartbeat.dropped = 2;
    batch.heartbeat.lines_read = 1234;
    for _ in 0..2 {
        let r = post_auth(&collector.url("/api/ingest"), Some(&token), CONTENT_TYPE, &batch.encode().unwrap());
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let metrics = collector.get("/metrics");
    assert_eq!(metrics.status, 200);
    let m = &metrics.body;

    let (ok, report) = promtool(&["check", "metrics"], Some(m));
    assert!(ok, "promtool check metrics:\n{report}");

    // Requests and their latency, by route.
    assert_eq!(sample(m, r#"bfp_http_requests_total{route="/api/predict",status="200"}"#), 1.0);
    assert_eq!(sample(m, r#"bfp_http_request_duration_seconds_count{route="/api/predict"}"#), 1.0);
    assert_eq!(sample(m, r#"bfp_http_request_duration_seconds_count{route="/api/ingest"}"#), 2.0);
    let predict_seconds = sample(m, r#"bfp_http_request_duration_seconds_sum{route="/api/predict"}"#);
    assert!(predict_seconds > 0.0 && predict_seconds < 30.0, "{predict_seconds}");
    assert_eq!(sample(m, r#"bfp_http_request_duration_seconds_bucket{route="/api/predict",le="+Inf"}"#), 1.0);
    // Every commit is in the commit-latency histogram: the prediction's and
    // the first batch's (the retry stores only its heartbeat).
    let commits = sample(m, "bfp_writer_commits_total");
    assert!(commits >= 2.0, "{commits}");
    assert_eq!(sample(m, "bfp_writer_commit_duration_seconds_count"), commits);
    assert_eq!(sample(m, r#"bfp_writer_commit_duration_seconds_bucket{le="+Inf"}"#), commits);
    assert_eq!(sample(m, "bfp_writer_queue_depth"), 0.0);
    assert!(sample(m, "bfp_writer_queue_capacity") >= 1.0);
    // Ingest: two batches answered, three records stored, one retry.
    assert_eq!(sample(m, "bfp_ingest_batches_total"), 2.0);
    assert_eq!(sample(m, "bfp_ingest_records_total"), 3.0);
    assert_eq!(sample(m, "bfp_ingest_duplicates_total"), 1.0);
    // The device's heartbeat, as it reported it, and when it arrived.
    assert_eq!(sample(m, r#"bfp_device_spool_depth{device="pi-1"}"#), 7.0);
    assert_eq!(sample(m, r#"bfp_device_dropped_total{device="pi-1"}"#), 2.0);
    assert_eq!(sample(m, r#"bfp_device_lines_read_total{device="pi-1"}"#), 1234.0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let seen = sample(m, r#"bfp_device_last_seen_timestamp_seconds{device="pi-1"}"#);
    assert!((now - seen).abs() < 120.0, "last seen {seen}, now {now}");
    // The database's size: the file (SQLite) or pg_database_size; SQLite's WAL.
    let size = sample(m, "bfp_database_size_bytes");
    match backend {
        Backend::Sqlite => {
            // Nothing wrote since the scrape, and no checkpoint ran (far
            // below its 1,000 pages): the files are as the collector saw them.
            let file = std::fs::metadata(dir.db()).unwrap().len() as f64;
            assert_eq!(size, file);
            let mut wal = dir.db().to_os_string();
            wal.push("-wal");
            let wal_now = std::fs::metadata(&wal).unwrap().len() as f64;
            assert!(wal_now > 0.0);
            assert_eq!(sample(m, "bfp_database_wal_bytes"), wal_now);
        }
        Backend::Postgres => {
            assert!(size > 1_000_000.0, "pg_database_size {size}");
            assert!(!m.contains("bfp_database_wal_bytes"), "no WAL size for PostgreSQL");
        }
    }
    let build = format!(r#"bfp_build_info{{version="{}",profile=""#, env!("CARGO_PKG_VERSION"));
    assert!(m.lines().any(|l| l.starts_with(&build) && l.ends_with("} 1")), "{build} in\n{m}");

    let rules = repo_root().join("deploy/monitoring/bfp-collector.rules.yml");
    let (ok, report) = promtool(&["check", "rules", rules.to_str().unwrap()], None);
    assert!(ok, "promtool check rules:\n{report}");

    let exposed: BTreeSet<String> = m
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    let dashboard = std::fs::read_to_string(repo_root().join("deploy/monitoring/grafana-bfp-collector.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("the Grafana dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| !p.is_empty()));
    let queried: BTreeSet<String> =
        metric_names(&std::fs::read_to_string(&rules).unwrap()).union(&metric_names(&dashboard)).cloned().collect();
    assert!(!queried.is_empty());
    // The WAL file is SQLite's; PostgreSQL's WAL belongs to its server.
    let sqlite_only = ["bfp_database_wal_bytes"];
    let missing: Vec<&String> = queried
        .difference(&exposed)
        .filter(|name| !(backend == Backend::Postgres && sqlite_only.contains(&name.as_str())))
        .collect();
    assert!(missing.is_empty(), "queried but not exposed: {missing:?}\nexposed: {exposed:?}");
}
