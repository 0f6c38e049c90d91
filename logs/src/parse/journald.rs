//! `journalctl -o json` lines: one JSON object per entry. The fields used are
//! `__REALTIME_TIMESTAMP` (microseconds, UTC), `SYSLOG_IDENTIFIER` (else
//! `_COMM`), `SYSLOG_PID` (else `_PID`), `_HOSTNAME` and `MESSAGE`, which
//! journald writes as an array of bytes when it is not valid UTF-8.
//! `__CURSOR` is returned so a follower can save its place.

use std::borrow::Cow;

use serde::Deserialize;

/// One journal entry, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<'a> {
    /// Unix milliseconds.
    pub ts_ms: i64,
    /// The program (syslog identifier).
    pub program: Cow<'a, str>,
    /// Its process id.
    pub pid: Option<u32>,
    /// The host.
    pub host: Option<Cow<'a, str>>,
    /// The message text (lossy UTF-8 when journald gave bytes).
    pub message: Cow<'a, str>,
    /// The entry's cursor.
    pub cursor: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Message<'a> {
    #[serde(borrow)]
    Text(Cow<'a, str>),
    Bytes(Vec<u8>),
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "__REALTIME_TIMESTAMP", borrow)]
    realtime: Cow<'a, str>,
    #[serde(rename = "__CURSOR", borrow, default)]
    cursor: Option<Cow<'a, str>>,
    #[serde(rename = "SYSLOG_IDENTIFIER", borrow, default)]
    identifier: Option<Cow<'a, str>>,
    #[serde(rename = "_COMM", borrow, default)]
    comm: Option<Cow<'a, str>>,
    #[serde(rename = "SYSLOG_PID", borrow, default)]
    syslog_pid: Option<Cow<'a, str>>,
    #[serde(rename = "_PID", borrow, default)]
    pid: Option<Cow<'a, str>>,
    #[serde(rename = "_HOSTNAME", borrow, default)]
    host: Option<Cow<'a, str>>,
    #[serde(rename = "MESSAGE", borrow, default)]
    message: Option<Message<'a>>,
}

/// Parses one line; `None` when it is not a journal entry with a timestamp.
pub fn parse(line: &str) -> Option<Entry<'_>> {
    let raw: Raw<'_> = serde_json::from_str(line).ok()?;
    let micros: i64 = raw.realtime.parse().ok()?;
    let message = match raw.message {
        Some(Message::Text(t)) => t,
        Some(Message::Bytes(b)) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
        None => Cow::Borrowed(""),
    };
    Some(Entry {
        ts_ms: micros.div_euclid(1000),
        program: raw.identifier.or(raw.comm).unwrap_or(Cow::Borrowed("")),
        pid: raw.syslog_pid.or(raw.pid).and_then(|p| p.parse().ok()),
        host: raw.host,
        message,
        cursor: raw.cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_entry_and_byte_array_messages() {
        let e = parse(r#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1774613216250123","_HOSTNAME":"pi","SYSLOG_IDENTIFIER":"sshd-session","_PID":"812","_COMM":"sshd-session","MESSAGE":"Accepted publickey for pi from 2001:db8::2 port 50000 ssh2"}"#).unwrap();
        assert_eq!(e.ts_ms, 1_774_613_216_250);
        assert_eq!((e.program.as_ref(), e.pid, e.cursor.as_deref()), ("sshd-session", Some(812), Some("s=1;i=2")));
        assert!(e.message.starts_with("Accepted publickey"));
        let e = parse(r#"{"__REALTIME_TIMESTAMP":"1","_COMM":"sshd","MESSAGE":[70,97,105,108,255]}"#).unwrap();
        assert_eq!((e.program.as_ref(), e.message.as_ref()), ("sshd", "Fail\u{fffd}"));
        assert!(parse(r#"{"MESSAGE":"no time"}"#).is_none());
        assert!(parse("not json").is_none());
    }
}
