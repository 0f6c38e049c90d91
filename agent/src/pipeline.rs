//! One log's way from lines to scored records: the analyzer of
//! `bfp_common::analyze` (one per log, so re-reading a log after a restart
//! rebuilds exactly its state), then the model.

use bfp_common::analyze::{Analyzer, AnalyzerConfig, LogFormat, Observation, ObservationKind};
use bfp_common::campaign::AuthAttempt;
use bfp_common::detect::{DetectConfig, Detector};
use serde_json::Value;

use crate::config::FormatName;
use crate::report::Record;
use crate::scoring::{Scored, Scorer};
use crate::source::Line;

/// Lines of one log → records.
pub struct Pipeline {
    log: String,
    analyzer: Analyzer,
    /// `None` until the first line shows an `auto` log's format.
    format: Option<LogFormat>,
    /// Per-user baselines and campaign detection over this log's lines.
    detector: Detector,
    /// Offset of the log's local time, for campaign fingerprints' hours.
    utc_offset_secs: i32,
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
        let utc_offset_secs = config.utc_offset_secs;
        let mut analyzer = Analyzer::new(config);
        analyzer.record_auth_attempts();
        Pipeline {
            log: log.into(),
            analyzer,
            format,
            detector: Detector::new(DetectConfig::default()),
            utc_offset_secs,
        }
    }

    /// Uses `detector` (e.g. baselines loaded from the state directory).
    pub fn with_detector(mut self, detector: Detector) -> Pipeline {
        self.detector = detector;
        self
    }

    /// The baselines and campaign detectors (to save their state).
    pub fn detector(&self) -> &Detector {
        &self.detector
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
            self.detector.replay_attempts(&self.analyzer.drain_auth_attempts());
        }
    }

    /// Scores what the analyzer completed since the last call.
    pub fn drain(&mut self, scorer: &Scorer, out: &mut Vec<Record>) {
        let attempts = self.analyzer.drain_auth_attempts();
        let mut observations = self.analyzer.drain_ready();
        // In log-time order: an observation is judged on the attempts up to
        // its end, not on what the rest of the batch holds.
        observations.sort_by_key(|o| o.end.unwrap_or(o.start));
        let mut next = 0;
        for obs in observations {
            let until = obs.end.unwrap_or(obs.start);
            let upto = next + attempts[next..].iter().take_while(|a| a.at <= until).count();
            self.observe_attempts(&attempts[next..upto], scorer, out);
            next = upto;
            out.push(judged_record(&obs, &self.log, scorer, &mut self.detector));
        }
        self.observe_attempts(&attempts[next..], scorer, out);
    }

    /// Feeds attempts to the campaign detectors; each campaign they detect
    /// becomes a Suspicious record of its own.
    fn observe_attempts(&mut self, attempts: &[AuthAttempt], scorer: &Scorer, out: &mut Vec<Record>) {
        for alert in self.detector.observe_attempts(attempts) {
            let obs = Detector::alert_observation(&alert, self.utc_offset_secs);
            let mut r = judged_record(&obs, &self.log, scorer, &mut self.detector);
            r.reasons.splice(0..0, alert.reasons.iter().cloned());
            r.details = serde_json::to_value(&alert).unwrap_or(Value::Null);
            out.push(r);
        }
    }

    /// End of input (scan): scores everything still pending, open sessions
    /// marked open.
    pub fn finish(&mut self, scorer: &Scorer, out: &mut Vec<Record>) {
        self.drain(scorer, out);
        for obs in self.analyzer.finish() {
            out.push(judged_record(&obs, &self.log, scorer, &mut self.detector));
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

/// The record that is printed and forwarded, from one observation and the
/// model's verdict on it.
pub fn record(obs: &Observation, log: &str, scorer: &Scorer, scored: Scored) -> Record {
    let fp = &obs.fingerprint;
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

/// Scores one observation (its fingerprint with the detectors' novelty and
/// source context: the schema-2 vector), then lets the detectors raise the
/// verdict (their reasons first when they do, after the model's otherwise)
/// and learn it if Normal.
pub fn judged_record(obs: &Observation, log: &str, scorer: &Scorer, detector: &mut Detector) -> Record {
    detector.set_session_rules(scorer.session_rules());
    let assessment = detector.assess(obs);
    let scored = scorer.score(&obs.fingerprint, &assessment);
    let verdict = scored.verdict;
    let mut r = record(obs, log, scorer, scored);
    let j = detector.judge_assessed(obs, &verdict, assessment);
    if j.escalated {
        // The detectors decided: their reasons lead. The model's own reasons
        // explained a Normal verdict ("0 failed logins ..."): beside a
        // Suspicious one they would contradict it, so they go.
        r.prediction = "Suspicious".to_string();
        r.confidence = j.confidence;
        if !verdict.suspicious {
            r.reasons.clear();
        }
        r.reasons.splice(0..0, j.reasons);
    } else {
        // The model decided; what is new for this user is context after it.
        r.reasons.extend(j.reasons);
    }
    r
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
        // The model scored the schema-2 vector the detectors assess: rebuild
        // it with a fresh detector fed the same lines up to the session.
        let mut detector = Detector::new(DetectConfig::default());
        let mut analyzer = Analyzer::new(AnalyzerConfig::default());
        analyzer.record_auth_attempts();
        for text in &lines[..lines.len() - 1] {
            analyzer.feed_line(text, LogFormat::Syslog);
        }
        detector.observe_attempts(&analyzer.drain_auth_attempts());
        analyzer.feed_line(lines[lines.len() - 1], LogFormat::Syslog);
        let obs = analyzer.drain_ready().into_iter().find(|o| o.kind == ObservationKind::Session).unwrap();
        let model = scorer.score(&obs.fingerprint, &detector.assess(&obs)).verdict;
        // A fresh pipeline has no history, so the detectors leave the
        // model's verdict alone and add what is new as context.
        assert_eq!((session.prediction.as_str(), session.confidence), (model.label(), model.confidence));
        assert_eq!(wire.confidence, session.confidence);
        assert_eq!(session.model_version, scorer.version());
        assert!(session.reasons.iter().any(|r| r == "first login by root on this device"), "{:?}", session.reasons);
        assert_eq!(wire.user.as_deref(), Some("root"));
        assert_eq!(wire.source_ip.as_deref(), Some("192.0.2.4"));
        assert_eq!(session.duration_min, 10.0);
        assert_eq!(session.failed_logins, 1);
    }

    #[test]
    fn a_slow_brute_force_becomes_a_suspicious_record_of_its_own() {
        let scorer = Scorer::load(None).unwrap();
        let mut pipeline = Pipeline::new("t", Some(LogFormat::Syslog), AnalyzerConfig::default());
        let mut out = Vec::new();
        for hour in 0..8 {
            for minute in [5, 35] {
                let text = format!(
                    "Mar 27 {hour:02}:{minute:02}:00 host sshd[{}]: Failed password for root from 203.0.113.7 port 1 ssh2",
                    100 + hour * 60 + minute
                );
                pipeline.feed(Line { text: &text, replay: false });
                pipeline.drain(&scorer, &mut out);
            }
        }
        let alerts: Vec<_> = out.iter().filter(|r| r.details["kind"] == "slow_brute_force").collect();
        assert_eq!(alerts.len(), 1, "{out:?}");
        let a = alerts[0];
        assert_eq!((a.kind.as_str(), a.prediction.as_str()), ("source", "Suspicious"));
        assert_eq!(a.source_ip, Some("203.0.113.7".parse().unwrap()));
        assert!(a.reasons[0].starts_with("slow brute force from 203.0.113.7: 10 failed logins over 5 distinct hours"));
        assert!((0.5..=1.0).contains(&a.confidence));
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
