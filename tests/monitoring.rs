//! What the operator's monitoring reads: the real collector's `/metrics` passes
//! Prometheus' own linter (`promtool check metrics`), the shipped alert rules
//! pass `promtool check rules`, and every metric the rules and the Grafana
//! dashboard (`deploy/monitoring/`) query is one the collector exposes.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use bfp_e2e::{post_json, repo_root, Collector};
use tempfile::TempDir;

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

#[test]
fn metrics_pass_promtool_and_the_shipped_rules_and_dashboard_query_only_exposed_metrics() {
    let dir = TempDir::new().unwrap();
    let collector = Collector::start(dir.path().join("app.db"), &[]);
    // One stored prediction, so the labelled series exist.
    let body = serde_json::json!({"login_time":"03:00","session_duration":5,"commands":["ls"],
        "failed_logins":4,"protocol":"TOR","typing_speed":120});
    assert_eq!(post_json(&collector.url("/api/predict"), &body).status, 200);
    let metrics = collector.get("/metrics");
    assert_eq!(metrics.status, 200);

    let (ok, report) = promtool(&["check", "metrics"], Some(&metrics.body));
    assert!(ok, "promtool check metrics:\n{report}");

    let rules = repo_root().join("deploy/monitoring/bfp-collector.rules.yml");
    let (ok, report) = promtool(&["check", "rules", rules.to_str().unwrap()], None);
    assert!(ok, "promtool check rules:\n{report}");

    let exposed: BTreeSet<String> = metrics
        .body
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
    let missing: Vec<&String> = queried.difference(&exposed).collect();
    assert!(missing.is_empty(), "queried but not exposed: {missing:?}\nexposed: {exposed:?}");
}
