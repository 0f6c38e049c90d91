//! The agent's output contract, docs/agent-record.schema.json: every line
//! `bfp-agent scan` prints on every real log (shared/data/real) and every
//! parser fixture (logs/testdata) validates against it (Python's
//! jsonschema, with format checks: scripts/setup/schema.sh); the RFC 3339
//! times say what the epoch fields say; the host comes from the log lines;
//! and `run` keeps local JSON lines while forwarding to the real collector.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bfp_e2e::agent::{agent, consumed, json_lines, real_log, temp_dir, wait_until, RunningAgent};
use bfp_e2e::forward::{agent_rows, device_add, key_of_row, key_of_scan, multiset, wait_drained};
use bfp_e2e::{repo_root, shared_data, Collector};
use serde_json::Value;

fn schema() -> PathBuf {
    repo_root().join("docs/agent-record.schema.json")
}

/// Validates JSON lines with the schema; panics with the validator's report.
fn validate(lines: &[u8], what: &str) -> u64 {
    let mut child = Command::new("python3")
        .arg(repo_root().join("tests/support/validate_jsonl.py"))
        .arg(schema())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/setup/schema.sh installs what the validator needs)");
    child.stdin.take().unwrap().write_all(lines).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{what}: lines outside the schema (or no validator: scripts/setup/schema.sh):\n{report}"
    );
    report.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect(&report)
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if !matches!(path.extension().and_then(|e| e.to_str()), Some("md" | "rst")) {
            out.push(path);
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of unix seconds, computed here independently.
fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[test]
fn every_line_scan_prints_on_every_real_log_matches_the_schema() {
    let mut files = Vec::new();
    files_under(&shared_data().join("real"), &mut files);
    let real = files.len();
    files_under(&repo_root().join("logs/testdata"), &mut files);
    assert!(real >= 7 && files.len() >= real + 20, "{real} real logs, {} files in all", files.len());
    let mut records = 0u64;
    let mut all = Vec::new();
    for file in &files {
        let out = agent(&["scan", "--format", "jsonl", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
        let objects = json_lines(&out.stdout);
        assert_eq!(objects.last().map(|o| o["kind"].clone()), Some(Value::from("summary")), "{}", file.display());
        for o in &objects[..objects.len() - 1] {
            let start = o["start"].as_i64().unwrap();
            assert_eq!(o["start_time"], rfc3339(start), "{o}");
            match o["end"].as_i64() {
                Some(end) => assert_eq!(o["end_time"], rfc3339(end), "{o}"),
                None => assert!(o["end_time"].is_null(), "{o}"),
            }
        }
        records += objects.len() as u64 - 1;
        all.extend_from_slice(&out.stdout);
    }
    let valid = validate(&all, "scan on every real log");
    assert_eq!(valid, records + files.len() as u64, "every record and every summary");
    assert!(records > 1000, "{records} records");
}

#[test]
fn the_host_is_the_one_the_log_lines_name() {
    // Each line of elastic/auth.log names its host (RFC 3164 header): the
    // records carry it, not the test machine's name.
    let log = real_log("elastic/auth.log");
    let text = fs::read_to_string(&log).unwrap();
    let hosts: std::collections::BTreeSet<&str> = text.lines().filter_map(|l| l.split_whitespace().nth(3)).collect();
    let out = agent(&["scan", log.to_str().unwrap()]);
    let objects = json_lines(&out.stdout);
    let records = &objects[..objects.len() - 1];
    assert!(!records.is_empty());
    for r in records {
        assert!(hosts.contains(r["host"].as_str().unwrap()), "{} not among {hosts:?}", r["host"]);
    }
    // Cowrie JSON names no host: the device's own name.
    let own = fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let out = agent(&["scan", real_log("cowrie/cowrie-telnet.json").to_str().unwrap()]);
    let objects = json_lines(&out.stdout);
    assert!(objects.len() > 1);
    assert!(objects[..objects.len() - 1].iter().all(|r| r["host"] == own.as_str()), "{own}");
}

#[test]
fn run_keeps_local_json_lines_while_forwarding() {
    let source = real_log("elastic/auth.log");
    let dir = temp_dir();
    let db = dir.path().join("app.db");
    let token = device_add(&db, "pi-local");
    let c = Collector::start(&db, &[]);
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let local = dir.path().join("results.jsonl");
    let config = dir.path().join("agent.toml");
    fs::write(
        &config,
        format!(
            "state_dir = {state:?}\npoll_interval_ms = 10\n[output]\npath = {local:?}\n\
             [collector]\nurl = {:?}\ntoken = {token:?}\nheartbeat_secs = 1\nbackoff_max_secs = 1\n\
             [[source]]\npath = {log:?}\n",
            c.url("")
        ),
    )
    .unwrap();
    fs::write(&log, fs::read(&source).unwrap()).unwrap();
    let running = RunningAgent::start(&["--config", config.to_str().unwrap()], None);
    wait_until(60, "the whole log", || consumed(&state, &log));
    wait_drained(&c, "pi-local", 60);
    running.stop();
    let rows = agent_rows(&c.url(""));
    let bytes = fs::read(&local).unwrap();
    let lines = json_lines(&bytes);
    assert!(lines.len() > 100, "{} local lines", lines.len());
    assert_eq!(lines.len(), rows.len(), "the same results kept locally as forwarded");
    // The same fingerprints with the same verdicts, each once on both sides.
    let local_keys = multiset(lines.iter().map(|l| key_of_scan(l, true)));
    let collected = multiset(rows.iter().map(|r| key_of_row(r, true)));
    assert_eq!(local_keys, collected);
    assert_eq!(validate(&bytes, "run's local output"), lines.len() as u64);
    c.stop();
}
