//! Alert rules: what the operator writes in the collector's `--config`
//! file, and how one stored result is matched against them.
//!
//! ```toml
//! [alert]
//! interval_secs = 1            # how often new results are evaluated
//!
//! [[alert.rule]]
//! name = "ssh-brute-force"
//! verdict = "suspicious"
//! min_confidence = 0.8
//! kinds = ["source", "session"]
//! group_by = "source_ip"
//! window_secs = 3600
//! cooldown_secs = 600
//! ```
//!
//! Rules are evaluated after the results are committed, by a background task
//! that takes the results stored since its last pass (a cursor kept in the
//! database), so ingest never waits for them and a restart re-evaluates
//! nothing twice. On SQLite the writer hands the rows it committed to the
//! task in memory ([`AlertRow`]); what it does not hold is read back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::store::{Store, StoredPrediction};

/// Evaluates the rules over newly stored results until the store shuts
/// down: a full pass is followed at once by the next (a backlog drains), a
/// partial one waits `interval_secs`. Each pass is one short transaction
/// between the writer's group commits, so ingest never waits for more than
/// one pass.
pub async fn evaluate_forever(store: Arc<dyn Store>, config: Arc<AlertConfig>) {
    let interval = Duration::from_secs(config.interval_secs);
    loop {
        match store.evaluate_alerts(config.clone()).await {
            Ok(pass) if pass.results >= u64::from(config.max_rows_per_pass) => continue,
            Ok(pass) => {
                if pass.opened > 0 {
                    tracing::info!(opened = pass.opened, grouped = pass.grouped, "alerts raised");
                }
            }
            Err(Error::ShuttingDown) => return,
            Err(e) => tracing::warn!(error = %e, "alert evaluation failed; retried at the next interval"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// The collector's `--config` file. Unknown keys are refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// Alert rules and how they run. Default: no rules.
    #[serde(default)]
    pub alert: AlertConfig,
    /// Alerts that become decisions (`[decisions]`). Default: none.
    #[serde(default)]
    pub decisions: crate::auto_decisions::AutoDecisionsConfig,
    /// How notifications are delivered (`[notify]`). Default: see
    /// [`crate::notify::config::NotifyConfig`].
    #[serde(default)]
    pub notify: crate::notify::config::NotifyConfig,
    /// Where new and escalated alerts are sent (`[[destinations]]`).
    /// Default: nowhere.
    #[serde(default)]
    pub destinations: Vec<crate::notify::config::Destination>,
}

impl CollectorConfig {
    /// Reads and checks a config file: an unknown key, a bad value or a bad
    /// regex is an error naming the file.
    pub fn load(path: &Path) -> Result<CollectorConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read config {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::Config(format!("config {}: {e}", path.display())))
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> std::result::Result<CollectorConfig, String> {
        let mut config: CollectorConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.alert.check()?;
        config.decisions.check(&config.alert)?;
        config.notify.check()?;
        crate::notify::config::check_destinations(&config.destinations)?;
        config.alert.notify = config.destinations.iter().map(|d| d.name().to_string()).collect();
        Ok(config)
    }
}

/// The `[alert]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// Seconds between two evaluations of newly stored results. Default: 1.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Most results one evaluation pass reads (the rest waits for the next
    /// pass), so a pass never holds the writer long. Default: 5000.
    #[serde(default = "default_pass_rows")]
    pub max_rows_per_pass: u32,
    /// The rules (`[[alert.rule]]`), evaluated independently: a result may
    /// raise one alert per rule it matches. Default: none.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
    /// The names of the `[[destinations]]`: a pass that raises or escalates
    /// an alert writes one outbox row for each, in its own transaction.
    #[serde(skip)]
    pub notify: Vec<String>,
}

impl Default for AlertConfig {
    fn default() -> AlertConfig {
        AlertConfig {
            interval_secs: default_interval(),
            max_rows_per_pass: default_pass_rows(),
            rules: Vec::new(),
            notify: Vec::new(),
        }
    }
}

fn default_interval() -> u64 {
    1
}

fn default_pass_rows() -> u32 {
    5000
}

impl AlertConfig {
    /// Whether some rule matches on reasons (else a pass need not read
    /// them).
    pub fn reads_reasons(&self) -> bool {
        self.rules.iter().any(|r| r.reason.is_some())
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.interval_secs == 0 {
            return Err("alert.interval_secs must be at least 1".into());
        }
        if self.max_rows_per_pass == 0 {
            return Err("alert.max_rows_per_pass must be at least 1".into());
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.name.trim().is_empty() {
                return Err(format!("alert rule #{} has an empty name", i + 1));
            }
            if self.rules[..i].iter().any(|r| r.name == rule.name) {
                return Err(format!("alert rule name {:?} is used twice", rule.name));
            }
            if !(0.0..=1.0).contains(&rule.min_confidence) {
                return Err(format!("alert rule {:?}: min_confidence must be within 0..1", rule.name));
            }
        }
        Ok(())
    }
}

/// Which verdicts a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictMatch {
    /// Suspicious results only.
    Suspicious,
    /// Normal results only.
    Normal,
    /// Both.
    Any,
}

/// What one alert groups: the matches sharing this value (within the
/// rule's window) are one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The remote address (a brute force from one address is one alert).
    SourceIp,
    /// The user name tried.
    User,
    /// The device that reported it.
    Device,
    /// Everything the rule matches (one campaign-wide alert per window).
    Rule,
}

impl GroupBy {
    /// The group a result falls in; results without the field share `-`.
    pub fn key_of(self, p: &StoredPrediction) -> String {
        self.key_ref(p).to_string()
    }

    /// [`GroupBy::key_of`], borrowed from the result (no allocation per
    /// match in an evaluation pass).
    pub fn key_ref(self, p: &StoredPrediction) -> &str {
        self.pick(p.agent.source_ip.as_deref(), p.agent.user.as_deref(), p.device.as_deref())
    }

    /// [`GroupBy::key_ref`] of an [`AlertRow`].
    pub fn key_in(self, row: &AlertRow) -> &str {
        self.pick(row.source_ip.as_deref(), row.user.as_deref(), row.device.as_deref())
    }

    fn pick<'a>(self, source_ip: Option<&'a str>, user: Option<&'a str>, device: Option<&'a str>) -> &'a str {
        let value = match self {
            GroupBy::SourceIp => source_ip,
            GroupBy::User => user,
            GroupBy::Device => device,
            GroupBy::Rule => Some("*"),
        };
        value.filter(|v| !v.is_empty()).unwrap_or("-")
    }
}

/// What rules look at in one stored result, and no more: what an
/// evaluation pass keeps of a row, whether the writer handed it over after
/// its commit or the pass read it back from the database.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    /// The stored row's id.
    pub id: i64,
    /// When it was stored (ingest time), seconds since the epoch.
    pub seen: i64,
    /// Its verdict.
    pub suspicious: bool,
    /// Its confidence as stored (rounded to 4 places).
    pub confidence: f64,
    /// Result kind (`session`, `source`, ...).
    pub kind: Option<String>,
    /// Reporting device.
    pub device: Option<String>,
    /// Remote address.
    pub source_ip: Option<String>,
    /// User name.
    pub user: Option<String>,
    /// Its reasons as stored (worded only when a rule's regex reads them);
    /// empty when no rule has a `reason`.
    pub reasons: Vec<crate::store::Reason>,
    /// The fingerprint the reasons explain.
    pub fingerprint: bfp_common::Fingerprint,
}

impl AlertRow {
    /// What rules need of `p`, stored as row `id` at `seen`; moves its
    /// strings rather than copying them. Reasons are kept only if
    /// `reasons` (some rule reads them).
    pub fn from_new(id: i64, seen: i64, p: crate::store::NewPrediction, reasons: bool) -> AlertRow {
        AlertRow {
            id,
            seen,
            suspicious: p.suspicious,
            confidence: crate::store::round_confidence(p.confidence),
            kind: p.agent.kind,
            device: p.device,
            source_ip: p.agent.source_ip,
            user: p.agent.user,
            reasons: if reasons { p.reasons } else { Vec::new() },
            fingerprint: p.fingerprint,
        }
    }
}

/// One `[[alert.rule]]`: every condition given must hold (an empty list or a
/// missing field matches anything).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique name, shown on its alerts. Required.
    pub name: String,
    /// `suspicious`, `normal` or `any`. Default: `suspicious`.
    #[serde(default = "default_verdict")]
    pub verdict: VerdictMatch,
    /// Least confidence of the verdict, 0..1. Default: 0 (any).
    #[serde(default)]
    pub min_confidence: f64,
    /// Result kinds (`session`, `source`, ...; single and CSV predictions
    /// have none and match only an empty list). Default: any.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Devices (a device group is the list of its names). Default: any.
    #[serde(default)]
    pub devices: Vec<String>,
    /// User names. Default: any.
    #[serde(default)]
    pub users: Vec<String>,
    /// Regular expression one of the result's reasons must match (Rust
    /// `regex` syntax; checked at start). Default: none.
    #[serde(default, with = "optional_regex")]
    pub reason: Option<Regex>,
    /// What one alert groups. Default: `source_ip`.
    #[serde(default = "default_group_by")]
    pub group_by: GroupBy,
    /// A match joins its group's open alert when that alert's last match is
    /// at most this many seconds older; otherwise it opens a new alert.
    /// Default: 3600.
    #[serde(default = "default_window")]
    pub window_secs: u64,
    /// After an alert is resolved, matches of its group within this many
    /// seconds are counted on it instead of opening a new one. Default: 0.
    #[serde(default)]
    pub cooldown_secs: u64,
}

fn default_verdict() -> VerdictMatch {
    VerdictMatch::Suspicious
}

fn default_group_by() -> GroupBy {
    GroupBy::SourceIp
}

fn default_window() -> u64 {
    3600
}

impl Rule {
    /// Whether the stored result `p` matches every condition.
    pub fn matches(&self, p: &StoredPrediction) -> bool {
        self.matches_fields(
            p.suspicious,
            p.confidence,
            p.agent.kind.as_deref(),
            p.device.as_deref(),
            p.agent.user.as_deref(),
        ) && self.reason.as_ref().is_none_or(|re| p.reasons.iter().any(|r| re.is_match(r)))
    }

    /// [`Rule::matches`] for an [`AlertRow`]: the same conditions, on the
    /// reasons as stored (a model's reason is worded only when this rule's
    /// regex must read it).
    pub fn matches_row(&self, row: &AlertRow) -> bool {
        use crate::store::Reason;
        self.matches_fields(
            row.suspicious,
            row.confidence,
            row.kind.as_deref(),
            row.device.as_deref(),
            row.user.as_deref(),
        ) && self.reason.as_ref().is_none_or(|re| {
            row.reasons.iter().any(|r| match r {
                Reason::Text(t) => re.is_match(t),
                Reason::Feature(_) => {
                    Reason::words(std::slice::from_ref(r), &row.fingerprint).iter().any(|w| re.is_match(w))
                }
            })
        })
    }

    fn matches_fields(
        &self,
        suspicious: bool,
        confidence: f64,
        kind: Option<&str>,
        device: Option<&str>,
        user: Option<&str>,
    ) -> bool {
        let verdict = match self.verdict {
            VerdictMatch::Suspicious => suspicious,
            VerdictMatch::Normal => !suspicious,
            VerdictMatch::Any => true,
        };
        verdict
            && confidence >= self.min_confidence
            && listed(&self.kinds, kind)
            && listed(&self.devices, device)
            && listed(&self.users, user)
    }
}

fn listed(list: &[String], value: Option<&str>) -> bool {
    list.is_empty() || value.is_some_and(|v| list.iter().any(|l| l == v))
}

mod optional_regex {
    use regex::Regex;
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Regex>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else { return Ok(None) };
        Regex::new(&text).map(Some).map_err(|e| serde::de::Error::custom(format!("bad reason regex: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AgentContext, Source};

    fn result(suspicious: bool, ip: &str, user: &str, reason: &str) -> StoredPrediction {
        StoredPrediction {
            id: 1,
            created_at: "2026-01-01 00:00:00".into(),
            event_at: "2026-01-01 00:00:00".into(),
            source: Source::Agent,
            suspicious,
            confidence: 0.9,
            fingerprint: bfp_common::Fingerprint {
                login_hour: 3,
                session_duration_min: 0.0,
                commands: 0,
                failed_logins: 5,
                protocol: bfp_common::Protocol::Ssh,
                typing_speed_wpm: None,
                risky_commands: None,
            },
            commands: None,
            model_version: "m".into(),
            reasons: vec![reason.into()],
            device: Some("pi-1".into()),
            agent: AgentContext {
                kind: Some("source".into()),
                source_ip: Some(ip.into()),
                user: Some(user.into()),
                ..AgentContext::default()
            },
            analyst: None,
        }
    }

    #[test]
    fn defaults_and_matching() {
        let config = CollectorConfig::parse(
            "[[alert.rule]]\nname = \"brute\"\nmin_confidence = 0.8\nkinds = [\"source\"]\nreason = \"failed logins?\"\n",
        )
        .unwrap();
        assert_eq!(config.alert.interval_secs, 1);
        let rule = &config.alert.rules[0];
        assert_eq!(
            (rule.verdict, rule.group_by, rule.window_secs, rule.cooldown_secs),
            (VerdictMatch::Suspicious, GroupBy::SourceIp, 3600, 0)
        );
        assert!(rule.matches(&result(true, "10.0.0.1", "root", "12 failed logins from this address")));
        assert!(!rule.matches(&result(false, "10.0.0.1", "root", "12 failed logins from this address")));
        assert!(!rule.matches(&result(true, "10.0.0.1", "root", "new source for this user")));
        let mut low = result(true, "10.0.0.1", "root", "3 failed logins");
        low.confidence = 0.7;
        assert!(!rule.matches(&low));
        assert_eq!(rule.group_by.key_of(&low), "10.0.0.1");
        assert_eq!(GroupBy::User.key_of(&low), "root");
    }

    #[test]
    fn the_documented_example_parses() {
        let config = CollectorConfig::parse(include_str!("../testdata/alerts.toml")).unwrap();
        assert_eq!(config.alert.rules.len(), 2);
        assert_eq!(config.alert.rules[0].group_by, GroupBy::Rule);
        assert_eq!(config.alert.rules[1].window_secs, 3600);
    }

    #[test]
    fn unknown_keys_bad_regexes_and_duplicates_are_refused_with_their_name() {
        let err = CollectorConfig::parse("[[alert.rule]]\nname = \"a\"\nverdikt = \"normal\"\n").unwrap_err();
        assert!(err.contains("unknown field `verdikt`"), "{err}");
        let err = CollectorConfig::parse("[alarm]\n").unwrap_err();
        assert!(err.contains("unknown field `alarm`"), "{err}");
        let err = CollectorConfig::parse("[[alert.rule]]\nname = \"a\"\nreason = \"(unclosed\"\n").unwrap_err();
        assert!(err.contains("bad reason regex"), "{err}");
        let err = CollectorConfig::parse("[[alert.rule]]\nname = \"a\"\n[[alert.rule]]\nname = \"a\"\n").unwrap_err();
        assert!(err.contains("used twice"), "{err}");
        let err = CollectorConfig::parse("[[alert.rule]]\nname = \"a\"\ngroup_by = \"planet\"\n").unwrap_err();
        assert!(err.contains("planet"), "{err}");
    }
}
