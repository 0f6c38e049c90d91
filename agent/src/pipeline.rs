//! One log's way from lines to records: the detection engine of
//! `bfp-detect` (one per log, so re-reading a log after a restart rebuilds
//! exactly its state) scoring with the agent's model, and each judged
//! observation turned into the record the agent prints and forwards.

use bfp_detect::detector::{Assessment, DetectConfig, Detector, SessionRules};
use bfp_detect::engine::{Engine, Judged, Score, Scored};
use bfp_logs::analyze::{Analyzer, AnalyzerConfig, LogFormat, Observation};
use serde_json::Value;

use crate::config::FormatName;
use crate::report::Record;
use crate::scoring::Scorer;
use crate::source::Line;

/// Lines of one log → records.
pub struct Pipeline {
    log: String,
    engine: Engine,
    /// Judged observations between the engine and the records (kept to
    /// reuse its allocation).
    judged: Vec<Judged>,
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
        Pipeline::with_engine(log, Engine::with_detector(config, format, Detector::new(DetectConfig::default())))
    }

    fn with_engine(log: impl Into<String>, engine: Engine) -> Pipeline {
        Pipeline { log: log.into(), engine, judged: Vec::new() }
    }

    /// Uses `detector` (e.g. baselines loaded from the state directory).
    pub fn with_detector(self, detector: Detector) -> Pipeline {
        let config = self.engine.analyzer().config().clone();
        let format = self.engine.format();
        Pipeline::with_engine(self.log, Engine::with_detector(config, format, detector))
    }

    /// The baselines and campaign detectors (to save their state).
    pub fn detector(&self) -> &Detector {
        self.engine.detector()
    }

    /// Feeds one line. What a replayed line completes was reported before
    /// the restart, so it is dropped; the rest waits for [`drain`].
    ///
    /// [`drain`]: Pipeline::drain
    pub fn feed(&mut self, line: Line<'_>) {
        if line.replay {
            self.engine.replay(line.text);
        } else {
            self.engine.feed(line.text);
        }
    }

    /// Scores what the analyzer completed since the last call.
    pub fn drain(&mut self, scorer: &Scorer, out: &mut Vec<Record>) {
        self.engine.drain(&mut ModelScorer(scorer), &mut self.judged);
        self.emit(scorer, out);
    }

    /// End of input (scan): scores everything still pending, open sessions
    /// marked open.
    pub fn finish(&mut self, scorer: &Scorer, out: &mut Vec<Record>) {
        self.engine.finish(&mut ModelScorer(scorer), &mut self.judged);
        self.emit(scorer, out);
    }

    fn emit(&mut self, scorer: &Scorer, out: &mut Vec<Record>) {
        out.extend(self.judged.drain(..).map(|j| record(j, &self.log, scorer.version())));
    }

    /// The detectors, to learn a past login no log line holds (lastlog).
    pub fn detector_mut(&mut self) -> &mut Detector {
        self.engine.detector_mut()
    }

    /// The analyzer (for its statistics).
    pub fn analyzer(&self) -> &Analyzer {
        self.engine.analyzer()
    }

    /// The analyzer, to feed binary records directly.
    pub fn analyzer_mut(&mut self) -> &mut Analyzer {
        self.engine.analyzer_mut()
    }
}

/// The agent's model as the engine's scorer.
struct ModelScorer<'a>(&'a Scorer);

impl Score for ModelScorer<'_> {
    fn score(&mut self, observation: &Observation, assessment: &Assessment) -> Scored {
        self.0.score(&observation.fingerprint, assessment)
    }

    fn session_rules(&self) -> SessionRules {
        self.0.session_rules()
    }
}

/// The record that is printed and forwarded, from one judged observation.
pub fn record(judged: Judged, log: &str, model_version: &str) -> Record {
    let Judged { observation: obs, alert, prediction, confidence, reasons, judgement, learning, .. } = judged;
    let campaign = alert.as_ref().map(|a| a.kind).or(judgement.campaign);
    let fp = obs.fingerprint;
    let details = match &alert {
        Some(alert) => serde_json::to_value(alert).unwrap_or(Value::Null),
        None => details(&obs),
    };
    Record {
        kind: obs.kind,
        log: log.to_string(),
        source_ip: obs.source_ip,
        user: obs.user,
        start: obs.start,
        end: obs.end,
        open: obs.open,
        login_hour: fp.login_hour,
        duration_min: fp.session_duration_min,
        failed_logins: fp.failed_logins,
        commands: obs.commands,
        command_count: fp.commands,
        risky_commands: fp.risky_commands,
        protocol: fp.protocol,
        typing_speed: fp.typing_speed_wpm,
        prediction,
        confidence,
        reasons,
        model_version: model_version.to_string(),
        campaign,
        learning,
        details,
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

#[cfg(test)]
mod tests {
    use super::*;
    use bfp_common::wire::RecordKind;

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
        let session = out.iter().find(|r| r.kind == RecordKind::Session).expect("a session");
        let wire = session.to_wire(Some("host"));
        assert_eq!(wire.fingerprint, session.fingerprint());
        // The model scored the agent-schema vector the detectors assess: rebuild
        // it with a fresh detector fed the same lines up to the session.
        let mut detector = Detector::new(DetectConfig::default());
        let mut analyzer = Analyzer::new(AnalyzerConfig::default());
        analyzer.record_auth_attempts();
        for text in &lines[..lines.len() - 1] {
            analyzer.feed_line(text, LogFormat::Syslog);
        }
        detector.observe_attempts(&analyzer.drain_auth_attempts());
        analyzer.feed_line(lines[lines.len() - 1], LogFormat::Syslog);
        let obs = analyzer.drain_ready().into_iter().find(|o| o.kind == RecordKind::Session).unwrap();
        let model = scorer.score(&obs.fingerprint, &detector.assess(&obs)).verdict;
        // A fresh pipeline has no history: it is learning, so the detectors
        // leave the model's verdict alone and what is new is no news.
        assert_eq!((session.prediction.label(), session.confidence), (model.label(), model.confidence));
        assert_eq!(wire.confidence, session.confidence);
        assert_eq!(session.model_version, scorer.version());
        assert!(session.learning);
        assert!(!session.reasons.iter().any(|r| r.starts_with("first login")), "{:?}", session.reasons);
        let json = serde_json::to_value(session).unwrap();
        assert_eq!(json["learning"], true);
        assert_eq!(wire.user.as_deref(), Some("root"));
        // The evidence travels with it: the log, the host, the details.
        let evidence = wire.evidence.as_ref().expect("evidence");
        assert_eq!((evidence.log.as_str(), evidence.host.as_deref()), ("t", Some("host")));
        let details: serde_json::Value = serde_json::from_str(&evidence.details).unwrap();
        assert_eq!(details, serde_json::to_value(&session.details).unwrap());
        assert!(details["auth_method"].is_string(), "{details}");
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
        assert_eq!((a.kind.as_str(), a.prediction.label()), ("source", "Suspicious"));
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
        assert_eq!(
            out.iter().filter(|r| r.kind == RecordKind::Session).count(),
            1,
            "opened in the replay, closed live"
        );
    }
}
