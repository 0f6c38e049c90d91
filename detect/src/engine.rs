//! The detection engine: the one way from log lines to judged records.
//!
//! The analyzer (`bfp-logs`) hands out two things as lines arrive: finished
//! observations (sessions, source and device windows) and every login
//! attempt. The campaign detectors must see the attempts up to an
//! observation's end before it is judged, and not those after it, or a
//! session would be judged on a brute force that had not happened yet. The
//! engine does that merge in log-time order, once, for every caller: the
//! agent, training (`bfp-models`), the real-log tests and the benchmarks, so
//! what is trained is what ships.
//!
//! ```text
//! let mut engine = Engine::new(EngineConfig::default());
//! for line in lines { engine.feed(line); }
//! engine.drain(&mut scorer, &mut judged);     // as often as convenient
//! engine.finish(&mut scorer, &mut judged);    // end of input (scan)
//! ```
//!
//! For each observation: the detectors assess it (novelty against the user's
//! baseline, what the device holds against its address: the agent schema's
//! vector), the [`Score`]r gives the model's verdict, the detectors judge it
//! (raising it to Suspicious when a campaign or the session rules say so)
//! and learn it into the baselines when the final verdict is Normal. Each
//! campaign the detectors find becomes a judged record of its own.

use bfp_common::schema::AGENT_FEATURE_COUNT;
use bfp_common::{Prediction, Verdict};
use bfp_logs::{Analyzer, AnalyzerConfig, AuthAttempt, LogFormat, Observation};

use crate::campaign::CampaignAlert;
use crate::detector::{Assessment, DetectConfig, Detector, Judgement, SessionRules};

/// What the engine asks of the model that scores for it.
pub trait Score {
    /// The model's verdict on one observation and its reasons in words,
    /// strongest first. `assessment` holds the agent schema's vector.
    fn score(&mut self, observation: &Observation, assessment: &Assessment) -> Scored;

    /// Which session-level rules may raise the model's verdict on top of it
    /// (they depend on what the model already sees as features).
    fn session_rules(&self) -> SessionRules;

    /// Sees each login attempt, in log order, before the detectors do. The
    /// agent ignores them; training runs the fail2ban rule beside the model.
    fn attempt(&mut self, _attempt: &AuthAttempt) {}
}

/// A model's verdict with its reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The model's verdict.
    pub verdict: Verdict,
    /// Why, strongest first.
    pub reasons: Vec<String>,
}

/// Settings of one engine (one per log, so re-reading a log after a restart
/// rebuilds exactly its state).
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// How lines are read. Default: see [`AnalyzerConfig`].
    pub analyzer: AnalyzerConfig,
    /// Baselines and campaign detectors. Default: see [`DetectConfig`].
    pub detect: DetectConfig,
    /// The log's format; `None` (the default) tells it from the first line.
    pub format: Option<LogFormat>,
}

/// One observation, judged.
#[derive(Debug, Clone)]
pub struct Judged {
    /// What the analyzer (or a campaign detector) saw.
    pub observation: Observation,
    /// The campaign, when this record reports one rather than an analyzer window.
    pub alert: Option<CampaignAlert>,
    /// The agent schema's vector the model scored.
    pub features: [f32; AGENT_FEATURE_COUNT],
    /// The model's own verdict.
    pub model: Verdict,
    /// The final class: the model's, raised by the detectors, never lowered.
    pub prediction: Prediction,
    /// Probability of `prediction`, in [0.5, 1].
    pub confidence: f32,
    /// Why: the campaign's, then the detectors' when they decided, the
    /// model's, then what is new for the user as context.
    pub reasons: Vec<String>,
    /// What the detectors concluded (novelty, campaign, learnt).
    pub judgement: Judgement,
}

/// Analyzer, detectors and the session rules of one log.
#[derive(Debug)]
pub struct Engine {
    analyzer: Analyzer,
    detector: Detector,
    /// `None` until the first line shows an `auto` log's format.
    format: Option<LogFormat>,
    /// Offset of the log's local time, for campaign fingerprints' hours.
    utc_offset_secs: i32,
}

impl Engine {
    /// A fresh engine.
    pub fn new(config: EngineConfig) -> Engine {
        let detector = Detector::new(config.detect);
        Engine::with_detector(config.analyzer, config.format, detector)
    }

    /// An engine around `detector` (e.g. baselines loaded from the agent's
    /// state directory).
    pub fn with_detector(analyzer: AnalyzerConfig, format: Option<LogFormat>, detector: Detector) -> Engine {
        let utc_offset_secs = analyzer.utc_offset_secs;
        let mut analyzer = Analyzer::new(analyzer);
        analyzer.record_auth_attempts();
        Engine { analyzer, detector, format, utc_offset_secs }
    }

    /// Feeds one line.
    pub fn feed(&mut self, line: &str) {
        let format = *self.format.get_or_insert_with(|| format_of_first_line(line));
        self.analyzer.feed_line(line, format);
    }

    /// Feeds one line re-read after a restart: it rebuilds the analyzer's and
    /// the campaign windows' state, but what it completes was reported
    /// before the restart, so nothing is judged, learnt or counted again.
    pub fn replay(&mut self, line: &str) {
        self.feed(line);
        drop(self.analyzer.drain_ready());
        self.detector.replay_attempts(&self.analyzer.drain_auth_attempts());
    }

    /// Judges what the analyzer completed since the last call, in log-time
    /// order, appending to `out`.
    pub fn drain(&mut self, scorer: &mut dyn Score, out: &mut Vec<Judged>) {
        let observations = self.analyzer.drain_ready();
        self.judge_all(observations, scorer, out);
    }

    /// End of input: judges everything still pending, open sessions marked open.
    pub fn finish(&mut self, scorer: &mut dyn Score, out: &mut Vec<Judged>) {
        self.drain(scorer, out);
        let rest = self.analyzer.finish();
        self.judge_all(rest, scorer, out);
    }

    /// The next lines start another input (a rotated file, another log):
    /// see [`Analyzer::new_input`].
    pub fn new_input(&mut self) {
        self.analyzer.new_input();
    }

    /// The log's format, once known.
    pub fn format(&self) -> Option<LogFormat> {
        self.format
    }

    /// The analyzer (for its statistics).
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// The analyzer, to feed binary records (wtmp) directly.
    pub fn analyzer_mut(&mut self) -> &mut Analyzer {
        &mut self.analyzer
    }

    /// The baselines and campaign detectors (to save their state).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Each observation judged on the attempts up to its end, not on what the
    /// rest of the batch holds; the attempts after the last one go to the
    /// detectors at the end.
    fn judge_all(&mut self, mut observations: Vec<Observation>, scorer: &mut dyn Score, out: &mut Vec<Judged>) {
        let attempts = self.analyzer.drain_auth_attempts();
        self.detector.set_session_rules(scorer.session_rules());
        observations.sort_by_key(|o| o.end.unwrap_or(o.start));
        let mut next = 0;
        for observation in observations {
            let until = observation.end.unwrap_or(observation.start);
            let upto = next + attempts[next..].iter().take_while(|a| a.at <= until).count();
            self.observe_attempts(&attempts[next..upto], scorer, out);
            next = upto;
            out.push(self.judge(observation, None, scorer));
        }
        self.observe_attempts(&attempts[next..], scorer, out);
    }

    /// Feeds attempts to the campaign detectors; each campaign they detect
    /// is judged as a record of its own.
    fn observe_attempts(&mut self, attempts: &[AuthAttempt], scorer: &mut dyn Score, out: &mut Vec<Judged>) {
        for a in attempts {
            scorer.attempt(a);
        }
        for alert in self.detector.observe_attempts(attempts) {
            let observation = Detector::alert_observation(&alert, self.utc_offset_secs);
            out.push(self.judge(observation, Some(alert), scorer));
        }
    }

    /// Assess, score, judge (and learn if Normal); reasons merged.
    fn judge(&mut self, observation: Observation, alert: Option<CampaignAlert>, scorer: &mut dyn Score) -> Judged {
        let assessment = self.detector.assess(&observation);
        let features = assessment.features;
        let Scored { verdict, reasons: model_reasons } = scorer.score(&observation, &assessment);
        let judgement = self.detector.judge_assessed(&observation, &verdict, assessment);
        let mut reasons: Vec<String> = alert.iter().flat_map(|a| a.reasons.iter().cloned()).collect();
        let confidence;
        if judgement.escalated {
            // The detectors decided: their reasons lead. The model's own
            // reasons explained a Normal verdict ("0 failed logins ..."):
            // beside a Suspicious one they would contradict it, so they go.
            confidence = judgement.confidence;
            reasons.extend(judgement.reasons.iter().cloned());
            if verdict.suspicious {
                reasons.extend(model_reasons);
            }
        } else {
            // The model decided; what is new for this user is context after it.
            confidence = verdict.confidence;
            reasons.extend(model_reasons);
            reasons.extend(judgement.reasons.iter().cloned());
        }
        Judged {
            observation,
            alert,
            features,
            model: verdict,
            prediction: Prediction::from_suspicious(judgement.suspicious),
            confidence,
            reasons,
            judgement,
        }
    }
}

/// The format of a text log from its first line; when that says nothing
/// (`Auto`), the analyzer tells each line's format itself.
fn format_of_first_line(line: &str) -> LogFormat {
    match LogFormat::detect(line.as_bytes()) {
        LogFormat::Utmp => LogFormat::Auto,
        other => other,
    }
}
