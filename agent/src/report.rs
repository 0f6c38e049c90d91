//! What the agent prints and writes: one record per scored fingerprint, a
//! summary at the end of a scan, and the table for people.

use std::io::Write;
use std::net::IpAddr;

use bfp_common::wire::{self, RecordKind};
use bfp_common::{Fingerprint, Prediction, Protocol};
use bfp_detect::campaign::CampaignKind;
use serde::{Deserialize, Serialize};

/// One scored fingerprint (a JSON line of `scan --format jsonl` and `run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// `session`, `source` (an attacking address over a window) or `device`.
    pub kind: RecordKind,
    /// The log it came from (file path or configured source name).
    pub log: String,
    /// The remote address, when the log gives one.
    pub source_ip: Option<IpAddr>,
    /// The account (null for a source).
    pub user: Option<String>,
    /// Start, unix seconds (UTC).
    pub start: i64,
    /// End, unix seconds (UTC); null while open.
    pub end: Option<i64>,
    /// The session was still open when the input ended.
    pub open: bool,
    /// Login hour, 0–23, in the log's local time.
    pub login_hour: u8,
    /// Duration in minutes.
    pub duration_min: f32,
    /// Failed attempts that preceded it.
    pub failed_logins: u32,
    /// The commands run, in order (at most the analyzer's per-session cap).
    pub commands: Vec<String>,
    /// How many commands ran (may exceed the list when the cap was hit).
    pub command_count: u32,
    /// How many commands are risky (downloads, chmod +x, ...); null if unknown.
    pub risky_commands: Option<u32>,
    /// SSH, FTP, HTTPS or TOR.
    pub protocol: Protocol,
    /// Words per minute from command timing; null when the log has none.
    pub typing_speed: Option<f32>,
    /// `Normal` or `Suspicious`.
    pub prediction: Prediction,
    /// Probability of the predicted class, 0.5–1.
    pub confidence: f32,
    /// Why, strongest first.
    pub reasons: Vec<String>,
    /// Version of the model that scored it.
    pub model_version: String,
    /// The brute-force campaign the record's address belongs to, as the
    /// campaign detectors found it (for a campaign's own record, its kind);
    /// absent when none. What the firewall response acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<CampaignKind>,
    /// Judged in the detectors' learning period (a device without history):
    /// novelty did not count. Written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub learning: bool,
    /// Kind-specific details from the analyzer (a source's attempts,
    /// distinct users, rate, ...).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl Record {
    /// The fingerprint that was scored, rebuilt from the flat fields.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            login_hour: self.login_hour,
            session_duration_min: self.duration_min,
            commands: self.command_count,
            failed_logins: self.failed_logins,
            protocol: self.protocol,
            typing_speed_wpm: self.typing_speed,
            risky_commands: self.risky_commands,
        }
    }

    /// The record as it travels to the collector (`bfp_common::wire`),
    /// with its evidence; `host` is the one its JSON line names.
    pub fn to_wire(&self, host: Option<&str>) -> wire::Record {
        wire::Record {
            kind: self.kind,
            source_ip: self.source_ip.map(|ip| ip.to_string()),
            user: self.user.clone(),
            start: self.start,
            end: self.end,
            fingerprint: self.fingerprint(),
            commands: self.commands.clone(),
            suspicious: self.prediction.is_suspicious(),
            confidence: self.confidence,
            reasons: self.reasons.clone(),
            evidence: Some(self.evidence(host)),
        }
    }

    /// What the analyst needs beyond the fingerprint: the log, the host,
    /// the campaign and the analyzer's details, bounded as the wire says
    /// (details too large to send are replaced by a note saying so).
    pub fn evidence(&self, host: Option<&str>) -> wire::Evidence {
        let details = match &self.details {
            serde_json::Value::Null => "{}".to_string(),
            d => serde_json::to_string(d).unwrap_or_else(|_| "{}".into()),
        };
        let details = if details.len() > wire::MAX_DETAILS_BYTES {
            format!(r#"{{"omitted":"{} bytes of details, over the wire's bound"}}"#, details.len())
        } else {
            details
        };
        wire::Evidence {
            log: self.log.clone(),
            host: host.map(str::to_string),
            campaign: self
                .campaign
                .and_then(|c| serde_json::to_value(c).ok())
                .and_then(|v| v.as_str().map(str::to_string)),
            details,
        }
    }
}

/// A record as written to JSON lines (`scan`, `run`'s output): its fields,
/// then `start_time`/`end_time` (RFC 3339, UTC) beside the epoch seconds and
/// the `host` it happened on. The documented contract is
/// `docs/agent-record.schema.json`.
#[derive(Debug, Serialize)]
pub struct RecordLine<'a> {
    #[serde(flatten)]
    pub record: &'a Record,
    /// `start` as RFC 3339 (UTC, `Z`).
    pub start_time: String,
    /// `end` as RFC 3339 (UTC, `Z`); null while open.
    pub end_time: Option<String>,
    /// The host name the log lines carry, else the device's own.
    pub host: &'a str,
}

impl<'a> RecordLine<'a> {
    /// The line of `record`, which happened on `host`.
    pub fn new(record: &'a Record, host: &'a str) -> RecordLine<'a> {
        RecordLine { record, start_time: rfc3339(record.start), end_time: record.end.map(rfc3339), host }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of unix seconds.
pub fn rfc3339(secs: i64) -> String {
    let mut text = bfp_common::time::format_utc(secs);
    text.replace_range(10..11, "T");
    text.push('Z');
    text
}

/// The host name field of a log line, where its format has one: syslog
/// (`Mar 27 13:06:56 HOST prog:`, RFC 3339 or RFC 5424 headers) and
/// `journalctl -o json` (`_HOSTNAME`). Cowrie lines and utmp records have
/// none.
pub fn host_of_line(line: &str) -> Option<&str> {
    let line = line.trim_start();
    if line.starts_with('{') {
        // Journal JSON: a cheap field scan; the analyzer parses the rest.
        let rest = &line[line.find("\"_HOSTNAME\":\"")? + "\"_HOSTNAME\":\"".len()..];
        return valid_host(&rest[..rest.find('"')?]);
    }
    let mut words = line.split_ascii_whitespace();
    let first = words.next()?;
    let host = if first.starts_with('<') {
        // RFC 5424: <PRI>VERSION TIMESTAMP HOST ...
        words.nth(1)?
    } else if first.len() >= 19 && first.as_bytes()[4] == b'-' && first.as_bytes()[10] == b'T' {
        // RFC 3339 timestamp (rsyslog's high-precision format).
        words.next()?
    } else if first.len() == 3 && first.bytes().all(|b| b.is_ascii_alphabetic()) {
        // RFC 3164: Mmm dd hh:mm:ss HOST
        let _day = words.next()?;
        let time = words.next()?;
        if time.len() != 8 || time.as_bytes()[2] != b':' {
            return None;
        }
        words.next()?
    } else {
        return None;
    };
    valid_host(host)
}

/// A host name is a word of letters, digits, `-`, `.` and `_` (not a
/// program tag such as `sshd[12]:`, nor the nil value `-`).
fn valid_host(host: &str) -> Option<&str> {
    let ok = !host.is_empty()
        && host != "-"
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'))
        && !host.ends_with(':');
    ok.then_some(host)
}

/// This device's host name (`/proc/sys/kernel/hostname`, else
/// `/etc/hostname`, else `localhost`).
pub fn device_host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Writes records as an aligned table for people.
pub fn write_table(out: &mut dyn Write, records: &[Record]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<7} {:<10} {:<39} {:<16} {:<16} {:>4} {:>9} {:>6} {:>4} {:<5} {:>6}  reasons",
        "kind", "verdict", "source", "user", "start (UTC)", "hour", "dur(min)", "failed", "cmds", "proto", "conf"
    )?;
    for r in records {
        writeln!(
            out,
            "{:<7} {:<10} {:<39} {:<16} {:<16} {:>4} {:>9.1} {:>6} {:>4} {:<5} {:>6.2}  {}",
            r.kind,
            r.prediction,
            r.source_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into()),
            truncate(r.user.as_deref().unwrap_or("-"), 16),
            format_time(r.start),
            r.login_hour,
            r.duration_min,
            r.failed_logins,
            r.commands.len(),
            r.protocol.as_str(),
            r.confidence,
            r.reasons.join("; ")
        )?;
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

/// `YYYY-MM-DD HH:MM` (UTC) from unix seconds.
pub fn format_time(secs: i64) -> String {
    let mut text = bfp_common::time::format_utc(secs);
    text.truncate("YYYY-MM-DD HH:MM".len());
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_time(0), "1970-01-01 00:00");
        assert_eq!(format_time(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn host_names_come_from_each_log_form_that_has_one() {
        let cases = [
            ("Mar 27 13:06:56 web-1 sshd[1291]: Failed password", Some("web-1")),
            ("Mar  7 13:06:56 gw.lan sshd[1291]: x", Some("gw.lan")),
            ("2024-03-01T01:10:00+00:00 host sshd[1]: Failed", Some("host")),
            ("<38>1 2024-03-01T01:10:00Z box sshd 12 - - msg", Some("box")),
            ("<38>1 2024-03-01T01:10:00Z - sshd 12 - - msg", None),
            (r#"{"_HOSTNAME":"pi4","MESSAGE":"x"}"#, Some("pi4")),
            (r#"{"eventid":"cowrie.login.failed"}"#, None),
            ("Mar 27 13:06:56 sshd[1291]: no host field", None),
            ("plain text", None),
        ];
        for (line, host) in cases {
            assert_eq!(host_of_line(line), host, "{line}");
        }
    }
}
