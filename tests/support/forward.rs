//! Helpers for the forwarding tests: device tokens from the real
//! `bfp-collector device` command, authenticated posts, agent batches.

use std::path::Path;
use std::process::Command;

use bfp_common::wire::{Batch, Heartbeat, Record, RecordKind};
use bfp_common::{Fingerprint, Protocol};

use crate::{binary, Reply};

/// `bfp-collector device add NAME --db DB`: the printed token.
pub fn device_add(db: &Path, name: &str) -> String {
    let out = Command::new(binary("bfp-collector"))
        .args(["device", "add", name, "--db"])
        .arg(db)
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
            })
            .collect(),
    }
}
