//! The agent-to-collector wire format: batches of scored fingerprints plus a
//! heartbeat, encoded with postcard.
//!
//! postcard is not self-describing, so every body starts with the wire
//! version (a varint) and the collector keeps a decoder for every version an
//! agent in the field may still speak. A newer agent never sends a version
//! the collector does not know without the collector being upgraded first.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;

/// The version this build writes.
pub const WIRE_VERSION: u16 = 1;

/// Largest batch the collector accepts, in records: bounds its memory per
/// request whatever the body claims.
pub const MAX_RECORDS_PER_BATCH: usize = 10_000;

/// Media type of a postcard batch body.
pub const CONTENT_TYPE: &str = "application/x-bfp-batch";

/// What a fingerprint describes: the kind of every observation, record and
/// stored row, from the analyzer to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// One login session.
    Session,
    /// One source address over a window (it may never have logged in).
    Source,
    /// The whole device over a window (distributed attacks).
    Device,
}

impl RecordKind {
    /// `session`, `source` or `device`, as the JSON forms write it.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Session => "session",
            RecordKind::Source => "source",
            RecordKind::Device => "device",
        }
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One scored fingerprint as the agent reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Session, source or device.
    pub kind: RecordKind,
    /// Remote address, as text (IPv4 or IPv6), when known.
    pub source_ip: Option<String>,
    /// Account name; `None` for a source or device record.
    pub user: Option<String>,
    /// Start, unix seconds UTC.
    pub start: i64,
    /// End, unix seconds UTC; `None` while still open.
    pub end: Option<i64>,
    /// The features that were scored.
    pub fingerprint: Fingerprint,
    /// Commands seen in the session (may be empty).
    pub commands: Vec<String>,
    /// The verdict: `true` for Suspicious.
    pub suspicious: bool,
    /// Share of trees voting for the verdict, in [0.5, 1].
    pub confidence: f32,
    /// Why, in an operator's words.
    pub reasons: Vec<String>,
}

/// The agent's state, sent with every batch (and alone as a heartbeat).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// `bfp-agent` version.
    pub agent_version: String,
    /// Version of the model the agent scores with.
    pub model_version: String,
    /// Records waiting in the spool.
    pub spool_depth: u64,
    /// Records dropped because the spool reached its cap, since install.
    pub dropped: u64,
    /// Log lines read, since install.
    pub lines_read: u64,
    /// The last error the agent hit, if any.
    pub last_error: Option<String>,
}

/// One delivery. `(device, seq)` is its idempotency key: a batch delivered
/// twice (a retry after a lost reply) is stored once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Per-device sequence number, strictly increasing.
    pub seq: u64,
    /// Agent state at send time.
    pub heartbeat: Heartbeat,
    /// The scored fingerprints (may be empty: a heartbeat).
    pub records: Vec<Record>,
}

impl Batch {
    /// Encodes with the version prefix.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let out = postcard::to_allocvec(&WIRE_VERSION).map_err(|e| Error::Wire(e.to_string()))?;
        postcard::to_extend(self, out).map_err(|e| Error::Wire(e.to_string()))
    }

    /// Decodes a body of any supported version. Truncated or garbage input is
    /// an error, never a panic; trailing bytes are refused so a corrupted
    /// length cannot smuggle a half-read batch in.
    pub fn decode(body: &[u8]) -> Result<Batch> {
        let (version, rest): (u16, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| Error::Wire(format!("version: {e}")))?;
        match version {
            1 => {
                let (batch, trailing): (Batch, &[u8]) =
                    postcard::take_from_bytes(rest).map_err(|e| Error::Wire(format!("batch: {e}")))?;
                if !trailing.is_empty() {
                    return Err(Error::Wire(format!("{} trailing bytes after the batch", trailing.len())));
                }
                if batch.records.len() > MAX_RECORDS_PER_BATCH {
                    return Err(Error::Wire(format!(
                        "{} records in one batch, at most {MAX_RECORDS_PER_BATCH}",
                        batch.records.len()
                    )));
                }
                Ok(batch)
            }
            other => Err(Error::Wire(format!("wire version {other} is not supported (this build reads 1)"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Protocol;

    fn sample() -> Batch {
        Batch {
            seq: 7,
            heartbeat: Heartbeat {
                agent_version: "0.1.0".into(),
                model_version: "forest-test".into(),
                spool_depth: 3,
                dropped: 1,
                lines_read: 1234,
                last_error: Some("collector unreachable".into()),
            },
            records: vec![Record {
                kind: RecordKind::Session,
                source_ip: Some("2001:db8::7".into()),
                user: Some("alice".into()),
                start: 1_700_000_000,
                end: Some(1_700_000_600),
                fingerprint: Fingerprint {
                    login_hour: 14,
                    session_duration_min: 10.0,
                    commands: 2,
                    failed_logins: 8,
                    protocol: Protocol::Tor,
                    typing_speed_wpm: None,
                    risky_commands: Some(1),
                },
                commands: vec!["uname -a".into(), "wget http://x/y".into()],
                suspicious: true,
                confidence: 0.9,
                reasons: vec!["8 failed logins before this session".into()],
            }],
        }
    }

    #[test]
    fn round_trips() {
        let batch = sample();
        assert_eq!(Batch::decode(&batch.encode().unwrap()).unwrap(), batch);
    }

    #[test]
    fn refuses_every_truncation_and_trailing_garbage() {
        let bytes = sample().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(Batch::decode(&bytes[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Batch::decode(&longer).is_err());
    }

    #[test]
    fn refuses_unknown_versions() {
        let mut bytes = postcard::to_allocvec(&2u16).unwrap();
        bytes.extend_from_slice(&sample().encode().unwrap()[1..]);
        assert!(Batch::decode(&bytes).unwrap_err().to_string().contains("version 2"));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap deterministic fuzz: xorshift bytes, plus every single-byte
        // corruption of a valid body.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..2_000usize {
            let body: Vec<u8> = (0..len % 300)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = Batch::decode(&body);
        }
        let bytes = sample().encode().unwrap();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut corrupted = bytes.clone();
                corrupted[i] ^= flip;
                let _ = Batch::decode(&corrupted);
            }
        }
    }
}
