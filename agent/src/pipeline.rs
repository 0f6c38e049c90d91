//! One log's way from lines to scored records: the analyzer of
//! `bfp_common::analyze` (one per log, so re-reading a log after a restart
//! rebuilds exactly its state), then the model.

use bfp_common::analyze::{Analyzer, AnalyzerConfig, LogFormat, Observation, ObservationKind};
use serde_json::Value;

use crate::config::FormatName;
use crate::report::Record;
use crate::scoring::Scorer;
use crate::source::Line;

/// Lines of one log → records.
pub struct Pipeline {
    log: String,
    analyzer: Analyzer,
    /// `None` until the first line shows an `auto` log's format.
    format: Option<LogFormat>,
}

/// The analyzer format a config/CLI name stands for (`None` = detect).
pub fn log_format(name: FormatName) -> Option<LogFormat> {
    match name {
        FormatName::Auto => None,
        FormatName::Syslog => Some(LogFormat::Syslog),
        FormatName::Cowrie => Some(LogFormat::Cowrie),
        FormatName::Journald => Some(LogFormat::Journald),
    }
}

impl Pipeline {
    /// A pipeline for the log named `log`.
    pub fn new(log: impl Into<String>, format: Option<LogFormat>, config: AnalyzerConfig) -> Pipeline {
        Pipeline { log: log.into(), analyzer: Analyzer::new(config), format }
    }

    /// Feeds one line. What a replayed line completes was reported before
    /// the restart, so it is dropped here; the rest waits for [`drain`].
    ///
    /// [`drain`]: Pipeline::drain
    pub fn feed(&mut self, line: Line<'_>) {
        let format = *self.format.get_or_insert_with(|| detect(line.text));
        self.analyzer.feed_line(line.text, format);
        if line.replay {
            drop(self.analyzer.drain_ready());
        }
    }

    /// Scores what the analyzer completed since the last call.
    pub fn drain(&mut self, scorer: &Scorer, out: &mut Vec<Record>) {
        for obs in self.analyzer.drain_ready() {
            out.push(record(&obs, &self.log, scorer));
        }
    }

    /// End of input (scan): scores everything still pending, open sessions
    /// marked open.
    pub fn finish(&mut self, scorer: &Scorer, out: &mut Vec<Record>) {
        self.drain(scorer, out);
        for obs in self.analyzer.finish() {
            out.push(record(&obs, &self.log, scorer));
        }
    }

    /// The analyzer (for its statistics).
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// The analyzer, to feed binary records directly.
    pub fn analyzer_mut(&mut self) -> &mut Analyzer {
        &mut self.analyzer
    }
}

/// The format of a text log from its first line; when that says nothing
/// (`Auto`), the analyzer tells each line's format itself.
fn detect(first_line: &str) -> LogFormat {
    match LogFormat::detect(first_line.as_bytes()) {
        LogFormat::Utmp => LogFormat::Auto,
        other => other,
    }
}

/// Scores one observation into the record that is printed and forwarded.
pub fn record(obs: &Observation, log: &str, scorer: &Scorer) -> Record {
    let fp = &obs.fingerprint;
    let scored = scorer.score(fp);
    Record {
        kind: kind_name(&obs.kind),
        log: log.to_string(),
        source_ip: obs.source_ip,
        user: obs.user.clone(),
        start: obs.start,
        end: obs.end,
        open: obs.open,
        login_hour: fp.login_hour,
        duration_min: fp.session_duration_min,
        failed_logins: fp.failed_logins,
        commands: obs.commands.clone(),
        command_count: fp.commands,
        risky_commands: fp.risky_commands,
        protocol: fp.protocol,
        typing_speed: fp.typing_speed_wpm,
        prediction: scored.verdict.label().to_string(),
        confidence: scored.verdict.confidence,
        reasons: scored.reasons,
        model_version: scorer.version().to_string(),
        details: details(obs),
    }
}

/// The analyzer's kind-specific details, as one JSON object.
fn details(obs: &Observation) -> Value {
    let value = match (&obs.session, &obs.source, &obs.device) {
        (Some(s), _, _) => serde_json::to_value(s),
        (_, Some(s), _) => serde_json::to_value(s),
        (_, _, Some(d)) => serde_json::to_value(d),
        _ => return Value::Null,
    };
    value.unwrap_or(Value::Null)
}

/// `session`, `source`, ...: the kind's serde name, so a kind the analyzer
/// adds later is printed under its own name.
fn kind_name(kind: &ObservationKind) -> String {
    match serde_json::to_value(kind) {
        Ok(Value::String(name)) => name.to_ascii_lowercase(),
        _ => format!("{kind:?}").to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_rebuild_the_scored_fingerprint_and_convert_to_the_wire_form() {
        let scorer = Scorer::load(None).unwrap();
        let mut pipeline = Pipeline::new("t", Some(LogFormat::Syslog), AnalyzerConfig::default());
        let lines = [
            "Mar 27 13:06:56 host sshd[1291]: Failed password for root from 192.0.2.4 port 4242 ssh2",
            "Mar 27 13:07:01 host sshd[1291]: Accepted password for root from 192.0.2.4 port 4242 ssh2",
            "Mar 27 13:07:01 host sshd[1291]: pam_unix(sshd:session): session opened for user root by (uid=0)",
            "Mar 27 13:07:30 host sudo:     root : TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/usr/bin/wget http://x/y",
            "Mar 27 13:17:01 host sshd[1291]: pam_unix(sshd:session): session closed for user root",
        ];
        for text in lines {
            pipeline.feed(Line { text, replay: false });
        }
        let mut out = Vec::new();
        pipeline.finish(&scorer, &mut out);
        let session = out.iter().find(|r| r.kind == "session").expect("a session");
        let wire = session.to_wire();
        assert_eq!(wire.fingerprint, session.fingerprint());
        assert_eq!(scorer.score(&wire.fingerprint).verdict.confidence, session.confidence);
        assert_eq!(wire.user.as_deref(), Some("root"));
        assert_eq!(wire.source_ip.as_deref(), Some("192.0.2.4"));
        assert_eq!(session.duration_min, 10.0);
        assert_eq!(session.failed_logins, 1);
    }

    #[test]
    fn replayed_lines_rebuild_state_but_report_nothing() {
        let scorer = Scorer::load(None).unwrap();
        let mut pipeline = Pipeline::new("t", Some(LogFormat::Syslog), AnalyzerConfig::default());
        let open = "Mar 27 13:07:01 host sshd[77]: Accepted password for pi from 192.0.2.9 port 1 ssh2";
        let close = "Mar 27 13:09:01 host sshd[77]: pam_unix(sshd:session): session closed for user pi";
        pipeline.feed(Line { text: open, replay: true });
        pipeline.feed(Line { text: close, replay: true });
        let mut out = Vec::new();
        pipeline.drain(&scorer, &mut out);
        assert!(out.is_empty(), "closed during the replay: reported before the restart");
        let open2 = "Mar 27 13:10:01 host sshd[78]: Accepted password for pi from 192.0.2.9 port 2 ssh2";
        let close2 = "Mar 27 13:12:01 host sshd[78]: pam_unix(sshd:session): session closed for user pi";
        pipeline.feed(Line { text: open2, replay: true });
        pipeline.feed(Line { text: close2, replay: false });
        pipeline.drain(&scorer, &mut out);
        assert_eq!(out.iter().filter(|r| r.kind == "session").count(), 1, "opened in the replay, closed live");
    }
}
