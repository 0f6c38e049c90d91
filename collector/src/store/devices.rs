//! Devices (agents) as the store keeps them: identity by bearer token, the
//! fleet view, and what one ingest did. The tokens' form and the checks on a
//! batch live here, the same for every backend.
//!
//! A device's token is shown once at creation; a store keeps only its
//! SHA-256, so a copy of the database does not let anyone speak for a
//! device. Batches are idempotent per device by sequence number: an agent
//! sends its batches one at a time in increasing `seq` order and retries the
//! same bytes until acknowledged, so remembering the highest stored `seq`
//! (`last_seq`) is enough to recognise a retry, in O(1) space per device.

use bfp_common::wire::{self, Batch};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Prefix of every device token (recognisable in logs and secret scanners).
pub const TOKEN_PREFIX: &str = "bfp_";

/// A device as `GET /api/devices` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct DeviceInfo {
    /// Its name.
    pub name: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub created: String,
    /// When it was revoked, if it was.
    pub revoked: Option<String>,
    /// Last authenticated batch or heartbeat.
    pub last_seen: Option<String>,
    /// `bfp-agent` version from its last heartbeat.
    pub agent_version: Option<String>,
    /// Model version it scores with.
    pub model_version: Option<String>,
    /// Records waiting in its spool.
    pub spool_depth: u64,
    /// Records its spool dropped at its size cap, since install.
    pub dropped: u64,
    /// Log lines it has read, since install.
    pub lines_read: u64,
    /// Its last error, if any.
    pub last_error: Option<String>,
    /// Highest batch sequence number stored.
    pub last_seq: u64,
    /// Record batches stored.
    pub batches: u64,
    /// Records stored.
    pub records: u64,
    /// Its group: the decisions it applies (default `default`).
    pub group: String,
}

/// An authenticated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId {
    /// Row id.
    pub id: i64,
    /// Name.
    pub name: String,
}

/// What one ingest did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The batch had been stored before (a retry): nothing new was stored.
    pub duplicate: bool,
    /// Records stored by this request.
    pub stored: u64,
    /// The device's highest stored sequence number after this request.
    pub last_seq: u64,
}

/// Checks a device name: 1–64 characters of letters, digits, `.`, `_`, `-`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadInput(format!("device name must be 1-64 letters, digits, '.', '_' or '-', got {name:?}")))
    }
}

/// SHA-256 of a token, hex.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A fresh token: 32 bytes from the OS's generator, hex.
pub fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("random token: {e}")))?;
    Ok(format!("{TOKEN_PREFIX}{}", hex(&bytes)))
}

/// Checks what postcard cannot: numbers in range, so a bad agent cannot
/// store a NaN or a 99 o'clock login.
pub fn validate_batch(batch: &Batch) -> Result<()> {
    for (i, r) in batch.records.iter().enumerate() {
        let fp = &r.fingerprint;
        let bad = |what: &str| Err(Error::BadInput(format!("record {i}: {what}")));
        if fp.login_hour > 23 {
            return bad("login hour must be 0-23");
        }
        if !(fp.session_duration_min.is_finite() && fp.session_duration_min >= 0.0) {
            return bad("session duration must be a finite number >= 0");
        }
        if fp.typing_speed_wpm.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
            return bad("typing speed must be a finite number >= 0");
        }
        if !(r.confidence.is_finite() && (0.0..=1.0).contains(&r.confidence)) {
            return bad("confidence must be in [0, 1]");
        }
        if r.end.is_some_and(|end| end < r.start) {
            return bad("end is before start");
        }
        // Agents send parsed addresses; anything else is planted text (a
        // formula for an analyst's spreadsheet, a fake address to blame).
        if let Some(ip) = &r.source_ip {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(Error::BadInput(format!("record {i}: source_ip is not an IP address: {ip:?}")));
            }
        }
        if let Some(e) = &r.evidence {
            if e.log.len() > 4096 || e.host.as_ref().is_some_and(|h| h.len() > 253) {
                return bad("evidence: log path or host name too long");
            }
            if e.campaign
                .as_ref()
                .is_some_and(|c| c.len() > 64 || !c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            {
                return bad("evidence: campaign must be a short snake_case name");
            }
            if e.details.len() > wire::MAX_DETAILS_BYTES {
                return bad("evidence: details over the wire's bound");
            }
            match serde_json::from_str::<serde_json::Value>(&e.details) {
                Ok(serde_json::Value::Object(_)) => {}
                _ => return bad("evidence: details must be a JSON object"),
            }
        }
    }
    Ok(())
}

/// A record's evidence as stored: one JSON object (`log`, `host`,
/// `campaign`, `details`), from a batch [`validate_batch`] accepted.
fn evidence_json(e: &wire::Evidence) -> Option<String> {
    let details: serde_json::Value = serde_json::from_str(&e.details).ok()?;
    let value = serde_json::json!({"log": e.log, "host": e.host, "campaign": e.campaign, "details": details});
    serde_json::to_string(&value).ok()
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) from unix seconds.
pub fn format_unix(secs: i64) -> String {
    bfp_common::time::format_utc(secs)
}

/// The predictions a device's batch stores (agent rows, with the device's
/// name and each record's session context), as every backend stores them.
pub fn batch_predictions(device: &DeviceId, batch: Batch) -> Vec<crate::store::NewPrediction> {
    use crate::store::{AgentContext, NewPrediction, Reason, Source};
    let model_version: std::sync::Arc<str> = std::sync::Arc::from(batch.heartbeat.model_version.as_str());
    batch
        .records
        .into_iter()
        .map(|r| NewPrediction {
            agent: AgentContext {
                kind: Some(r.kind.as_str().to_string()),
                source_ip: r.source_ip,
                user: r.user,
                started_at: Some(format_unix(r.start)),
                ended_at: r.end.map(format_unix),
                evidence: r.evidence.as_ref().and_then(evidence_json),
            },
            source: Source::Agent,
            fingerprint: r.fingerprint,
            suspicious: r.suspicious,
            confidence: r.confidence,
            commands: Some(r.commands),
            model_version: model_version.clone(),
            reasons: r.reasons.into_iter().map(Reason::Text).collect(),
            device: Some(device.name.clone()),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bfp_common::wire::{Heartbeat, Record, RecordKind};
    use bfp_common::{Fingerprint, Protocol};

    /// A session record of `user`: what an agent sends, for the store's tests.
    pub(crate) fn session_record(user: &str) -> Record {
        Record {
            kind: RecordKind::Session,
            source_ip: Some("192.0.2.7".into()),
            user: Some(user.into()),
            start: 1_700_000_000,
            end: Some(1_700_000_600),
            fingerprint: Fingerprint {
                login_hour: 22,
                session_duration_min: 10.0,
                commands: 1,
                failed_logins: 0,
                protocol: Protocol::Ssh,
                typing_speed_wpm: None,
                risky_commands: Some(0),
            },
            commands: vec!["ls".into()],
            suspicious: false,
            confidence: 0.8,
            reasons: vec!["usual".into()],
            evidence: None,
        }
    }

    fn batch(n: usize) -> Batch {
        let record = session_record("alice");
        Batch { seq: 1, heartbeat: Heartbeat::default(), records: vec![record; n] }
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        let mut b = batch(1);
        b.records[0].confidence = f32::NAN;
        assert!(validate_batch(&b).is_err());
        let mut b = batch(1);
        b.records[0].fingerprint.login_hour = 24;
        assert!(validate_batch(&b).is_err());
        let mut b = batch(1);
        b.records[0].end = Some(b.records[0].start - 1);
        assert!(validate_batch(&b).is_err());
        assert!(validate_batch(&batch(2)).is_ok());
        for bad in ["=HYPERLINK(\"http://x\")", "host.example", "192.0.2.300", ""] {
            let mut b = batch(2);
            b.records[1].source_ip = Some(bad.into());
            let Err(Error::BadInput(detail)) = validate_batch(&b) else { panic!("{bad:?} accepted") };
            assert!(detail.contains("record 1: source_ip"), "{detail}");
        }
        let mut b = batch(1);
        b.records[0].source_ip = Some("2001:db8::7".into());
        assert!(validate_batch(&b).is_ok());
        assert_eq!(format_unix(0), "1970-01-01 00:00:00");
    }

    fn with_evidence(details: &str) -> Batch {
        let mut b = batch(1);
        b.records[0].evidence = Some(wire::Evidence {
            log: "/var/log/auth.log".into(),
            host: Some("gw-1".into()),
            campaign: None,
            details: details.into(),
        });
        b
    }

    #[test]
    fn evidence_is_checked_and_stored_as_one_object() {
        assert!(validate_batch(&with_evidence(r#"{"auth_method":"password"}"#)).is_ok());
        for bad in ["[1]", "\"text\"", "{", &format!(r#"{{"x":"{}"}}"#, "y".repeat(wire::MAX_DETAILS_BYTES))] {
            let Err(Error::BadInput(detail)) = validate_batch(&with_evidence(bad)) else { panic!("{bad:?} accepted") };
            assert!(detail.contains("record 0: evidence"), "{detail}");
        }
        let mut b = with_evidence("{}");
        b.records[0].evidence.as_mut().unwrap().campaign = Some("=cmd|' /C calc'!A0".into());
        assert!(validate_batch(&b).is_err());

        let device = DeviceId { id: 1, name: "pi-1".into() };
        let rows = batch_predictions(&device, with_evidence(r#"{"users_sample":["root","pi"]}"#));
        let stored: serde_json::Value = serde_json::from_str(rows[0].agent.evidence.as_deref().unwrap()).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({"log": "/var/log/auth.log", "host": "gw-1", "campaign": null,
                               "details": {"users_sample": ["root", "pi"]}})
        );
        // An older agent's record has none.
        assert_eq!(batch_predictions(&device, batch(1))[0].agent.evidence, None);
    }

    #[test]
    fn names_are_checked_and_tokens_random() {
        assert!(check_name("pi-1.lab_2").is_ok());
        for bad in ["", "bad name", "a/b", &"x".repeat(65)] {
            assert!(matches!(check_name(bad), Err(Error::BadInput(_))), "{bad:?}");
        }
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(token_hash(&a), a);
    }
}
