//! Helpers for the forwarding tests: device tokens from the real
//! `bfp-collector device` command, authenticated posts, agent batches.

use std::path::Path;
use std::process::Command;

use bfp_common::wire::{Batch, Heartbeat, Record, RecordKind};
use bfp_common::{Fingerprint, Protocol};

use crate::{binary, Reply};

/// `bfp-collector device add NAME --create --db DB`: the printed token
/// (`--create`: tests enrol devices before a collector has made the file).
pub fn device_add(db: impl AsRef<std::ffi::OsStr>, name: &str) -> String {
    let out = Command::new(binary("bfp-collector"))
        .args(["device", "add", name, "--create", "--db"])
        .arg(db.as_ref())
        .output()
        .expect("run bfp-collector device add");
    assert!(out.status.success(), "device add failed: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).expect("utf-8 token").trim().to_string();
    assert!(!token.is_empty(), "no token printed");
    token
}

/// `POST url` with a bearer token (if any), a content type and a body.
pub fn post_auth(url: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let mut req = agent.post(url).header("Content-Type", content_type);
    if let Some(token) = token {
        req = req.header("Authorization", &format!("Bearer {token}"));
    }
    let mut r = req.send(body).expect("HTTP request");
    let headers =
        r.headers().iter().map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or_default().to_string())).collect();
    let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = r.body_mut().read_to_string().expect("read body");
    Reply { status: r.status().as_u16(), content_type, headers, body }
}

/// A batch of `n` distinct session records.
pub fn sample_batch(seq: u64, n: usize) -> Batch {
    Batch {
        seq,
        heartbeat: Heartbeat {
            agent_version: "e2e".into(),
            model_version: "e2e-model".into(),
            spool_depth: 0,
            dropped: 0,
            lines_read: 10,
            last_error: None,
            response: None,
        },
        records: (0..n)
            .map(|i| Record {
                kind: RecordKind::Session,
                source_ip: Some(format!("192.0.2.{}", i % 250)),
                user: Some(format!("user{i}")),
                start: 1_700_000_000 + i as i64,
                end: Some(1_700_000_600 + i as i64),
                fingerprint: Fingerprint {
                    login_hour: (i % 24) as u8,
                    session_duration_min: 10.0,
                    commands: 2,
                    failed_logins: (i % 5) as u32,
                    protocol: Protocol::Ssh,
                    typing_speed_wpm: None,
                    risky_commands: Some(0),
                },
                commands: vec!["ls".into(), "uptime".into()],
                suspicious: i % 3 == 0,
                confidence: 0.75,
                reasons: vec!["e2e".into()],
                evidence: None,
            })
            .collect(),
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) from unix seconds, as the collector stores times.
pub fn format_unix(secs: i64) -> String {
    bfp_common::time::format_utc(secs)
}

/// Now, as the collector writes `last_seen`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    format_unix(secs as i64)
}

/// Every agent row the collector holds (paged by `after_id`).
pub fn agent_rows(base: &str) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    let mut after = 0i64;
    loop {
        let page = crate::get(&format!("{base}/api/results?source=agent&limit=1000&after_id={after}")).json();
        let results = page["results"].as_array().expect("results").clone();
        if results.is_empty() {
            return rows;
        }
        after = results.last().and_then(|r| r["id"].as_i64()).expect("id");
        rows.extend(results);
    }
}

/// Identity of a fingerprint, the same from a collector row and from a
/// `bfp-agent scan --format jsonl` object: kind, source, user, start, end,
/// failed logins, command count, protocol, and (if `verdict`) prediction.
pub fn key_of_row(row: &serde_json::Value, verdict: bool) -> String {
    let f = &row["features"];
    let mut key = format!(
        "{}|{}|{}|{}|{}|{}|{}|{}",
        row["kind"],
        row["source_ip"],
        row["user"],
        row["started_at"],
        row["ended_at"],
        f["failed_logins"],
        f["commands_count"],
        f["protocol"]
    );
    if verdict {
        key.push_str(&format!("|{}", row["prediction"]));
    }
    key
}

/// See [`key_of_row`].
pub fn key_of_scan(o: &serde_json::Value, verdict: bool) -> String {
    let time = |v: &serde_json::Value| v.as_i64().map(format_unix).map_or(serde_json::Value::Null, Into::into);
    let mut key = format!(
        "{}|{}|{}|{}|{}|{}|{}|{}",
        o["kind"],
        o["source_ip"],
        o["user"],
        time(&o["start"]),
        time(&o["end"]),
        o["failed_logins"],
        o["command_count"],
        o["protocol"]
    );
    if verdict {
        key.push_str(&format!("|{}", o["prediction"]));
    }
    key
}

/// Multiset of keys.
pub fn multiset(keys: impl IntoIterator<Item = String>) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for k in keys {
        *m.entry(k).or_default() += 1;
    }
    m
}

/// A `bfp-agent run` configuration forwarding to `url` with a 1-second
/// heartbeat (so tests see the spool drain quickly).
pub fn agent_config(
    dir: &Path,
    url: &str,
    token: &str,
    log: &Path,
    state: &Path,
    spool_max_bytes: u64,
) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    let text = format!(
        "state_dir = {state:?}\npoll_interval_ms = 10\n\n[collector]\nurl = {url:?}\ntoken = {token:?}\n\
         heartbeat_secs = 1\nbackoff_max_secs = 1\nspool_max_bytes = {spool_max_bytes}\nbatch_max_records = 200\n\n\
         [[source]]\npath = {log:?}\n"
    );
    std::fs::write(&path, text).expect("write agent config");
    path
}

/// Waits until the collector has heard from `device` after now (plus a
/// second of margin) with an empty spool: everything the agent spooled
/// until now has been acknowledged.
pub fn wait_drained(c: &crate::Collector, device: &str, secs: u64) -> serde_json::Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let after = format_unix(now as i64 + 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let fleet = c.get("/api/devices").json();
        if let Some(d) = fleet["devices"].as_array().and_then(|a| a.iter().find(|d| d["name"] == device)) {
            if d["spool_depth"] == 0 && d["last_seen"].as_str().is_some_and(|s| s > after.as_str()) {
                return d.clone();
            }
        }
        assert!(std::time::Instant::now() < deadline, "the agent's spool did not drain: {fleet}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
