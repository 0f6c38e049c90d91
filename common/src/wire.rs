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

/// The newest version this build writes: 2 adds the agent's firewall
/// response ([`ResponseReport`]) to the heartbeat; 3 adds where each block
/// came from (the agent's own detectors or a collector decision, which may
/// name a network) and the decisions the agent refused; 4 adds each
/// record's [`Evidence`] (its log, host, campaign and the analyzer's
/// details). A batch is written in the oldest version that holds it:
/// without evidence or a response report as version 1, with a response but
/// nothing of version 3 or 4 in it as version 2, so an agent keeps working
/// with a collector from before the version it does not need; older bodies
/// are read with the newer fields empty.
pub const WIRE_VERSION: u16 = 4;

/// Largest [`Evidence::details`], in bytes: the analyzer's details are a
/// few hundred bytes (its user-name samples and command lists are bounded);
/// this bounds what one record can make the collector store.
pub const MAX_DETAILS_BYTES: usize = 16 * 1024;

/// Largest batch the collector accepts, in records: bounds its memory per
/// request whatever the body claims.
pub const MAX_RECORDS_PER_BATCH: usize = 10_000;

/// Media type of a postcard batch body.
pub const CONTENT_TYPE: &str = "application/x-bfp-batch";

/// What a fingerprint describes: the kind of every observation, record and
/// stored row, from the analyzer to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// What the analyst needs beyond the fingerprint (wire version 4);
    /// `None` from agents before it.
    #[serde(default)]
    pub evidence: Option<Evidence>,
}

/// A record's evidence as the agent found it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evidence {
    /// The log it came from (file path or configured source name).
    pub log: String,
    /// The host the log lines name, else the device's own name.
    pub host: Option<String>,
    /// The brute-force campaign the record belongs to, or is
    /// (`slow_brute_force`, `distributed_brute_force`).
    pub campaign: Option<String>,
    /// The analyzer's kind-specific details as a JSON object (text, since
    /// postcard is not self-describing): for a session its auth method,
    /// failures and tty; for a source the user names tried, attempts and
    /// rate; for a campaign its member addresses. At most
    /// [`MAX_DETAILS_BYTES`]; `{}` when there are none.
    pub details: String,
}

/// A record of wire versions 1 to 3: no evidence.
#[derive(Deserialize, Serialize)]
struct RecordV1 {
    kind: RecordKind,
    source_ip: Option<String>,
    user: Option<String>,
    start: i64,
    end: Option<i64>,
    fingerprint: Fingerprint,
    commands: Vec<String>,
    suspicious: bool,
    confidence: f32,
    reasons: Vec<String>,
}

impl From<RecordV1> for Record {
    fn from(r: RecordV1) -> Record {
        Record {
            kind: r.kind,
            source_ip: r.source_ip,
            user: r.user,
            start: r.start,
            end: r.end,
            fingerprint: r.fingerprint,
            commands: r.commands,
            suspicious: r.suspicious,
            confidence: r.confidence,
            reasons: r.reasons,
            evidence: None,
        }
    }
}

impl From<&Record> for RecordV1 {
    fn from(r: &Record) -> RecordV1 {
        RecordV1 {
            kind: r.kind,
            source_ip: r.source_ip.clone(),
            user: r.user.clone(),
            start: r.start,
            end: r.end,
            fingerprint: r.fingerprint,
            commands: r.commands.clone(),
            suspicious: r.suspicious,
            confidence: r.confidence,
            reasons: r.reasons.clone(),
        }
    }
}

impl Record {
    /// Encodes one record alone (a spool frame), in the newest form.
    pub fn encode_frame(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|e| Error::Wire(e.to_string()))
    }

    /// Decodes a frame of [`Record::encode_frame`], or one written before
    /// records carried evidence (read with none).
    pub fn decode_frame(bytes: &[u8]) -> Result<Record> {
        match whole::<Record>(bytes) {
            Ok(r) => Ok(r),
            Err(_) => whole::<RecordV1>(bytes).map(Record::from),
        }
    }
}

/// The agent's state, sent with every batch (and alone as a heartbeat).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// What the agent's firewall response did (wire version 2); `None` when
    /// the response is off, or the agent predates it.
    #[serde(default)]
    pub response: Option<ResponseReport>,
}

/// Most active blocks one heartbeat lists (the counters count them all):
/// bounds a heartbeat's size however many addresses a device blocks.
pub const MAX_REPORTED_BLOCKS: usize = 256;

/// The agent's firewall response, as the heartbeat reports it: counters
/// since the agent started, and the blocks in force now. State rather than
/// events, so a heartbeat sent twice or lost on the way tells the collector
/// nothing wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponseReport {
    /// `nftables` or `iptables` (iptables with ipset), or `dry-run` when the
    /// agent only logs what it would block.
    pub firewall: String,
    /// Addresses blocked (or, in a dry run, that would have been).
    pub blocks: u64,
    /// Blocks lifted (expired).
    pub unblocks: u64,
    /// Flagged addresses left alone because the allow-list covers them.
    pub allowed: u64,
    /// Blocks the firewall refused (the error is in `last_error`).
    pub failures: u64,
    /// The blocks in force, newest first, at most [`MAX_REPORTED_BLOCKS`].
    pub active: Vec<ActiveBlock>,
    /// Collector decisions the agent would not apply (an allow-listed
    /// network, a bad network), at most [`MAX_REPORTED_BLOCKS`] (wire
    /// version 3).
    #[serde(default)]
    pub refused: Vec<RefusedDecision>,
}

/// Where a block came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BlockOrigin {
    /// The agent's own detectors proved the address hostile.
    #[default]
    Agent,
    /// A decision the collector pushed to the device's group.
    Collector,
}

impl BlockOrigin {
    /// `agent` or `collector`, as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockOrigin::Agent => "agent",
            BlockOrigin::Collector => "collector",
        }
    }
}

/// A collector decision the agent did not apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefusedDecision {
    /// The decision's id at the collector.
    pub decision: i64,
    /// The address or network it named, as the collector sent it.
    pub address: String,
    /// Why not, in an operator's words.
    pub reason: String,
}

/// One address blocked on the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActiveBlock {
    /// The address, as text (IPv4 or IPv6).
    pub address: String,
    /// When the block was set, unix seconds UTC.
    pub since: i64,
    /// When it expires, unix seconds UTC.
    pub until: i64,
    /// Why, in an operator's words (the record's first reason).
    pub reason: String,
    /// The agent's detectors or a collector decision (wire version 3).
    #[serde(default)]
    pub origin: BlockOrigin,
    /// The collector decision's id, for a block of origin `collector`.
    #[serde(default)]
    pub decision: Option<i64>,
}

/// Decisions the collector pushes to an agent (`GET /api/agent/decisions`,
/// JSON): every decision in force for the device's group, whole each time,
/// so a lost reply or a revocation while the agent was away needs no
/// replay; an agent applies what is new and lifts what is gone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushedDecisions {
    /// The device's group.
    pub group: String,
    /// The decisions in force, at most [`MAX_PUSHED_DECISIONS`].
    pub decisions: Vec<PushedDecision>,
}

/// Most decisions one push carries (the newest): bounds an agent's memory
/// and its firewall sets whatever the collector holds.
pub const MAX_PUSHED_DECISIONS: usize = 1000;

/// One decision in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushedDecision {
    /// Its id at the collector.
    pub id: i64,
    /// An address or a network in CIDR form.
    pub address: String,
    /// When it ends, unix seconds UTC.
    pub until: i64,
    /// Why, as the operator (or the collector) gave it.
    pub reason: String,
}

/// The heartbeat of wire version 1: no response report.
#[derive(Deserialize, Serialize)]
struct HeartbeatV1 {
    agent_version: String,
    model_version: String,
    spool_depth: u64,
    dropped: u64,
    lines_read: u64,
    last_error: Option<String>,
}

/// The response report of wire version 2: no origins, nothing refused.
#[derive(Deserialize, Serialize)]
struct ResponseReportV2 {
    firewall: String,
    blocks: u64,
    unblocks: u64,
    allowed: u64,
    failures: u64,
    active: Vec<ActiveBlockV2>,
}

/// A block of wire version 2.
#[derive(Deserialize, Serialize)]
struct ActiveBlockV2 {
    address: String,
    since: i64,
    until: i64,
    reason: String,
}

/// The heartbeat of wire version 2.
#[derive(Deserialize, Serialize)]
struct HeartbeatV2 {
    agent_version: String,
    model_version: String,
    spool_depth: u64,
    dropped: u64,
    lines_read: u64,
    last_error: Option<String>,
    response: Option<ResponseReportV2>,
}

/// A batch of wire version 2.
#[derive(Deserialize, Serialize)]
struct BatchV2 {
    seq: u64,
    heartbeat: HeartbeatV2,
    records: Vec<RecordV1>,
}

/// A batch of wire version 3: today's heartbeat, records without evidence.
#[derive(Deserialize, Serialize)]
struct BatchV3 {
    seq: u64,
    heartbeat: Heartbeat,
    records: Vec<RecordV1>,
}

impl ResponseReport {
    /// Holds something only version 3 carries.
    fn needs_version_3(&self) -> bool {
        !self.refused.is_empty() || self.active.iter().any(|b| b.origin != BlockOrigin::Agent || b.decision.is_some())
    }
}

/// A batch of wire version 1.
#[derive(Deserialize, Serialize)]
struct BatchV1 {
    seq: u64,
    heartbeat: HeartbeatV1,
    records: Vec<RecordV1>,
}

/// One delivery. `(device, seq)` is its idempotency key: a batch delivered
/// twice (a retry after a lost reply) is stored once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Batch {
    /// Per-device sequence number, strictly increasing.
    pub seq: u64,
    /// Agent state at send time.
    pub heartbeat: Heartbeat,
    /// The scored fingerprints (may be empty: a heartbeat).
    pub records: Vec<Record>,
}

impl Batch {
    /// Encodes with the version prefix, in the oldest version that holds
    /// the batch (see [`WIRE_VERSION`]).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let wire = |e: postcard::Error| Error::Wire(e.to_string());
        if self.records.iter().any(|r| r.evidence.is_some()) {
            let out = postcard::to_allocvec(&WIRE_VERSION).map_err(wire)?;
            return postcard::to_extend(self, out).map_err(wire);
        }
        let records = || self.records.iter().map(RecordV1::from).collect::<Vec<_>>();
        if self.heartbeat.response.is_none() {
            let out = postcard::to_allocvec(&1u16).map_err(wire)?;
            let hb = &self.heartbeat;
            let v1 = BatchV1 {
                seq: self.seq,
                heartbeat: HeartbeatV1 {
                    agent_version: hb.agent_version.clone(),
                    model_version: hb.model_version.clone(),
                    spool_depth: hb.spool_depth,
                    dropped: hb.dropped,
                    lines_read: hb.lines_read,
                    last_error: hb.last_error.clone(),
                },
                records: records(),
            };
            return postcard::to_extend(&v1, out).map_err(wire);
        }
        let report = self.heartbeat.response.as_ref().filter(|r| !r.needs_version_3());
        if let Some(r) = report {
            let out = postcard::to_allocvec(&2u16).map_err(wire)?;
            let hb = &self.heartbeat;
            let v2 = BatchV2 {
                seq: self.seq,
                heartbeat: HeartbeatV2 {
                    agent_version: hb.agent_version.clone(),
                    model_version: hb.model_version.clone(),
                    spool_depth: hb.spool_depth,
                    dropped: hb.dropped,
                    lines_read: hb.lines_read,
                    last_error: hb.last_error.clone(),
                    response: Some(ResponseReportV2 {
                        firewall: r.firewall.clone(),
                        blocks: r.blocks,
                        unblocks: r.unblocks,
                        allowed: r.allowed,
                        failures: r.failures,
                        active: r
                            .active
                            .iter()
                            .map(|b| ActiveBlockV2 {
                                address: b.address.clone(),
                                since: b.since,
                                until: b.until,
                                reason: b.reason.clone(),
                            })
                            .collect(),
                    }),
                },
                records: records(),
            };
            return postcard::to_extend(&v2, out).map_err(wire);
        }
        let out = postcard::to_allocvec(&3u16).map_err(wire)?;
        let v3 = BatchV3 { seq: self.seq, heartbeat: self.heartbeat.clone(), records: records() };
        postcard::to_extend(&v3, out).map_err(wire)
    }

    /// Decodes a body of any supported version. Truncated or garbage input is
    /// an error, never a panic; trailing bytes are refused so a corrupted
    /// length cannot smuggle a half-read batch in.
    pub fn decode(body: &[u8]) -> Result<Batch> {
        let (version, rest): (u16, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| Error::Wire(format!("version: {e}")))?;
        let batch = match version {
            1 => {
                let v1: BatchV1 = whole(rest)?;
                let hb = v1.heartbeat;
                Batch {
                    seq: v1.seq,
                    heartbeat: Heartbeat {
                        agent_version: hb.agent_version,
                        model_version: hb.model_version,
                        spool_depth: hb.spool_depth,
                        dropped: hb.dropped,
                        lines_read: hb.lines_read,
                        last_error: hb.last_error,
                        response: None,
                    },
                    records: v1.records.into_iter().map(Record::from).collect(),
                }
            }
            2 => {
                let v2: BatchV2 = whole(rest)?;
                let hb = v2.heartbeat;
                Batch {
                    seq: v2.seq,
                    heartbeat: Heartbeat {
                        agent_version: hb.agent_version,
                        model_version: hb.model_version,
                        spool_depth: hb.spool_depth,
                        dropped: hb.dropped,
                        lines_read: hb.lines_read,
                        last_error: hb.last_error,
                        response: hb.response.map(|r| ResponseReport {
                            firewall: r.firewall,
                            blocks: r.blocks,
                            unblocks: r.unblocks,
                            allowed: r.allowed,
                            failures: r.failures,
                            active: r
                                .active
                                .into_iter()
                                .map(|b| ActiveBlock {
                                    address: b.address,
                                    since: b.since,
                                    until: b.until,
                                    reason: b.reason,
                                    origin: BlockOrigin::Agent,
                                    decision: None,
                                })
                                .collect(),
                            refused: Vec::new(),
                        }),
                    },
                    records: v2.records.into_iter().map(Record::from).collect(),
                }
            }
            3 => {
                let v3: BatchV3 = whole(rest)?;
                Batch {
                    seq: v3.seq,
                    heartbeat: v3.heartbeat,
                    records: v3.records.into_iter().map(Record::from).collect(),
                }
            }
            4 => whole(rest)?,
            other => {
                return Err(Error::Wire(format!("wire version {other} is not supported (this build reads 1 to 4)")))
            }
        };
        if let Some(r) = &batch.heartbeat.response {
            if r.active.len() > MAX_REPORTED_BLOCKS || r.refused.len() > MAX_REPORTED_BLOCKS {
                return Err(Error::Wire(format!(
                    "more than {MAX_REPORTED_BLOCKS} active blocks or refused decisions in one heartbeat"
                )));
            }
        }
        if batch.records.len() > MAX_RECORDS_PER_BATCH {
            return Err(Error::Wire(format!(
                "{} records in one batch, at most {MAX_RECORDS_PER_BATCH}",
                batch.records.len()
            )));
        }
        Ok(batch)
    }
}

/// Decodes `bytes` as one `T`, refusing trailing bytes.
fn whole<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let (value, trailing): (T, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| Error::Wire(format!("batch: {e}")))?;
    if !trailing.is_empty() {
        return Err(Error::Wire(format!("{} trailing bytes after the batch", trailing.len())));
    }
    Ok(value)
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
                response: None,
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
                evidence: None,
            }],
        }
    }

    fn with_evidence() -> Batch {
        let mut batch = with_decisions();
        batch.records[0].evidence = Some(Evidence {
            log: "/var/log/auth.log".into(),
            host: Some("gw-1".into()),
            campaign: Some("slow_brute_force".into()),
            details: r#"{"auth_method":"password","users_sample":["root","admin"]}"#.into(),
        });
        batch
    }

    #[test]
    fn evidence_travels_as_version_4_and_only_then() {
        let batch = with_evidence();
        let bytes = batch.encode().unwrap();
        assert_eq!(bytes[0], 4);
        assert_eq!(Batch::decode(&bytes).unwrap(), batch);
        for cut in 0..bytes.len() {
            assert!(Batch::decode(&bytes[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
        // Without evidence, what older collectors read, as before.
        assert_eq!(with_decisions().encode().unwrap()[0], 3);
        assert_eq!(Batch::decode(&with_decisions().encode().unwrap()).unwrap(), with_decisions());
    }

    #[test]
    fn a_version_3_body_of_an_older_agent_still_decodes() {
        // Written field by field as agents before version 4 did: records
        // end with their reasons.
        let batch = with_decisions();
        let r = &batch.records[0];
        let old_record = (
            r.kind,
            &r.source_ip,
            &r.user,
            r.start,
            r.end,
            r.fingerprint,
            &r.commands,
            r.suspicious,
            r.confidence,
            &r.reasons,
        );
        let mut bytes = postcard::to_allocvec(&3u16).unwrap();
        bytes = postcard::to_extend(&(batch.seq, &batch.heartbeat, vec![old_record]), bytes).unwrap();
        assert_eq!(Batch::decode(&bytes).unwrap(), batch);
    }

    #[test]
    fn spool_frames_of_either_form_decode() {
        let new = with_evidence().records.remove(0);
        assert_eq!(Record::decode_frame(&new.encode_frame().unwrap()).unwrap(), new);
        let mut old = new.clone();
        old.evidence = None;
        let old_bytes = postcard::to_allocvec(&RecordV1::from(&old)).unwrap();
        assert_eq!(Record::decode_frame(&old_bytes).unwrap(), old);
        assert!(Record::decode_frame(&old_bytes[..old_bytes.len() - 1]).is_err());
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

    fn with_response() -> Batch {
        let mut batch = sample();
        batch.heartbeat.response = Some(ResponseReport {
            firewall: "nftables".into(),
            blocks: 3,
            unblocks: 2,
            allowed: 1,
            failures: 0,
            active: vec![ActiveBlock {
                address: "198.51.100.66".into(),
                since: 1_700_000_000,
                until: 1_700_003_600,
                reason: "287 failed logins".into(),
                origin: BlockOrigin::Agent,
                decision: None,
            }],
            refused: Vec::new(),
        });
        batch
    }

    fn with_decisions() -> Batch {
        let mut batch = with_response();
        let report = batch.heartbeat.response.as_mut().unwrap();
        report.active.push(ActiveBlock {
            address: "203.0.113.0/24".into(),
            since: 1_700_000_100,
            until: 1_700_003_700,
            reason: "campaign seen on pi-2".into(),
            origin: BlockOrigin::Collector,
            decision: Some(4),
        });
        report.refused.push(RefusedDecision {
            decision: 5,
            address: "192.0.2.0/24".into(),
            reason: "allow-list 192.0.2.0/24 covers it".into(),
        });
        batch
    }

    #[test]
    fn decisions_travel_as_version_3_and_only_then() {
        let batch = with_decisions();
        let bytes = batch.encode().unwrap();
        assert_eq!(bytes[0], 3);
        assert_eq!(Batch::decode(&bytes).unwrap(), batch);
        for cut in 0..bytes.len() {
            assert!(Batch::decode(&bytes[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
        // Only the agent's own blocks: a version 2 body, which a version 2
        // collector reads, and which reads back the same here.
        let plain = with_response();
        let bytes = plain.encode().unwrap();
        assert_eq!(bytes[0], 2);
        assert_eq!(Batch::decode(&bytes).unwrap(), plain);
    }

    #[test]
    fn a_version_2_body_of_an_older_agent_still_decodes() {
        // Written field by field as agents before version 3 did.
        let batch = with_response();
        let hb = &batch.heartbeat;
        let r = hb.response.as_ref().unwrap();
        let b = &r.active[0];
        let mut bytes = postcard::to_allocvec(&2u16).unwrap();
        let old = (
            batch.seq,
            (
                &hb.agent_version,
                &hb.model_version,
                hb.spool_depth,
                hb.dropped,
                hb.lines_read,
                &hb.last_error,
                Some((
                    &r.firewall,
                    r.blocks,
                    r.unblocks,
                    r.allowed,
                    r.failures,
                    vec![(&b.address, b.since, b.until, &b.reason)],
                )),
            ),
            batch.records.iter().map(RecordV1::from).collect::<Vec<_>>(),
        );
        bytes = postcard::to_extend(&old, bytes).unwrap();
        assert_eq!(Batch::decode(&bytes).unwrap(), batch);
    }

    #[test]
    fn a_heartbeat_without_a_response_is_written_as_version_1_and_with_one_as_version_2() {
        let plain = sample().encode().unwrap();
        assert_eq!(plain[0], 1, "readable by collectors from before version 2");
        let batch = with_response();
        let bytes = batch.encode().unwrap();
        assert_eq!(bytes[0], 2);
        assert_eq!(Batch::decode(&bytes).unwrap(), batch);
    }

    #[test]
    fn a_version_1_body_of_an_old_agent_still_decodes() {
        // Written field by field as agents before version 2 did.
        let batch = sample();
        let hb = &batch.heartbeat;
        let mut bytes = postcard::to_allocvec(&1u16).unwrap();
        let old = (
            batch.seq,
            (&hb.agent_version, &hb.model_version, hb.spool_depth, hb.dropped, hb.lines_read, &hb.last_error),
            batch.records.iter().map(RecordV1::from).collect::<Vec<_>>(),
        );
        bytes = postcard::to_extend(&old, bytes).unwrap();
        assert_eq!(Batch::decode(&bytes).unwrap(), batch);
    }

    #[test]
    fn version_2_bodies_are_bounded_and_checked_whole() {
        let bytes = with_response().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(Batch::decode(&bytes[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
        let mut many = with_response();
        let report = many.heartbeat.response.as_mut().unwrap();
        report.active = vec![report.active[0].clone(); MAX_REPORTED_BLOCKS + 1];
        assert!(Batch::decode(&many.encode().unwrap()).unwrap_err().to_string().contains("active blocks"));
    }

    #[test]
    fn json_batches_of_old_agents_have_no_response() {
        let json = r#"{"seq":1,"heartbeat":{"agent_version":"a","model_version":"m","spool_depth":0,"dropped":0,"lines_read":0,"last_error":null},"records":[]}"#;
        let batch: Batch = serde_json::from_str(json).unwrap();
        assert_eq!(batch.heartbeat.response, None);
    }

    #[test]
    fn refuses_unknown_versions() {
        let mut bytes = postcard::to_allocvec(&5u16).unwrap();
        bytes.extend_from_slice(&sample().encode().unwrap()[1..]);
        assert!(Batch::decode(&bytes).unwrap_err().to_string().contains("version 5"));
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
