//! Alerts that become decisions: with `[decisions] from_alert_rules` in the
//! collector's `--config`, every alert those rules raise (not resolved) has
//! its address blocked on a device group, without an operator in the loop:
//!
//! ```toml
//! [decisions]
//! from_alert_rules = ["ssh-brute-force"]   # rules grouping by source_ip
//! duration = "4h"
//! group = "default"
//! ```
//!
//! An alert makes one decision at most (the store refuses a second), so a
//! restart or a grown alert never decides twice; a decision deleted by an
//! operator stays deleted.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::alerts::{AlertConfig, GroupBy};
use crate::error::{Error, Result};
use crate::store::alerts::{AlertQuery, AlertState};
use crate::store::decisions::{check_group, parse_duration, NewDecision, DEFAULT_GROUP};
use crate::store::Store;

/// Alerts of one rule looked at per pass (the newest).
const ALERTS_PER_PASS: u32 = 200;

/// The `[decisions]` section of the collector's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoDecisionsConfig {
    /// Alert rules whose alerts become decisions; each must group by
    /// `source_ip` (the address blocked is the alert's). Default: none
    /// (the collector decides nothing by itself).
    #[serde(default)]
    pub from_alert_rules: Vec<String>,
    /// How long each decision lasts: `90s`, `30m`, `4h`, `2d` or seconds,
    /// at most 30 days. Default `4h`.
    #[serde(default = "default_duration")]
    pub duration: String,
    /// The device group the decisions apply to. Default `default`.
    #[serde(default = "default_group")]
    pub group: String,
    /// Seconds between two looks at the alerts (1-3600). Default 5.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
}

fn default_duration() -> String {
    "4h".into()
}
fn default_group() -> String {
    DEFAULT_GROUP.into()
}
fn default_interval() -> u64 {
    5
}

impl Default for AutoDecisionsConfig {
    fn default() -> AutoDecisionsConfig {
        AutoDecisionsConfig {
            from_alert_rules: Vec::new(),
            duration: default_duration(),
            group: default_group(),
            interval_secs: default_interval(),
        }
    }
}

impl AutoDecisionsConfig {
    /// Every named rule exists and groups by source address; the duration,
    /// group and interval are valid.
    pub fn check(&self, alert: &AlertConfig) -> std::result::Result<(), String> {
        for name in &self.from_alert_rules {
            match alert.rules.iter().find(|r| &r.name == name) {
                None => return Err(format!("decisions.from_alert_rules: no alert rule named {name:?}")),
                Some(rule) if rule.group_by != GroupBy::SourceIp => {
                    return Err(format!(
                        "decisions.from_alert_rules: rule {name:?} must group_by = \"source_ip\" (its alerts' \
                         address is what is blocked)"
                    ))
                }
                Some(_) => {}
            }
        }
        parse_duration(&self.duration).map_err(|e| format!("decisions.duration: {e}"))?;
        check_group(&self.group).map_err(|e| format!("decisions.group: {e}"))?;
        if !(1..=3600).contains(&self.interval_secs) {
            return Err(format!("decisions.interval_secs must be 1-3600, got {}", self.interval_secs));
        }
        Ok(())
    }
}

/// Turns new alerts into decisions until the store shuts down.
pub async fn decide_forever(store: Arc<dyn Store>, config: Arc<AutoDecisionsConfig>) {
    let mut done = HashSet::new();
    loop {
        match decide_once(store.as_ref(), &config, &mut done).await {
            Ok(made) if made > 0 => tracing::info!(made, "decisions made from alerts"),
            Ok(_) => {}
            Err(Error::ShuttingDown) => return,
            Err(e) => tracing::warn!(error = %e, "deciding from alerts failed; retried at the next interval"),
        }
        tokio::time::sleep(Duration::from_secs(config.interval_secs)).await;
    }
}

/// One look at the alerts: a decision for each open or acknowledged alert
/// of the configured rules not seen before (`done`, which this fills).
/// Returns the decisions made.
pub async fn decide_once(store: &dyn Store, config: &AutoDecisionsConfig, done: &mut HashSet<i64>) -> Result<u64> {
    let mut made = 0;
    for rule in &config.from_alert_rules {
        let q = AlertQuery { rule: Some(rule.clone()), limit: ALERTS_PER_PASS, ..AlertQuery::default() };
        for alert in store.alerts(q).await? {
            if alert.state == AlertState::Resolved || done.contains(&alert.id) {
                continue;
            }
            let reason = format!("alert {} of rule {rule}: {} matching results", alert.id, alert.count);
            let mut new =
                match NewDecision::parse(&alert.group_key, &config.duration, &config.group, &reason, "collector") {
                    Ok(new) => new,
                    // Not an address (`-`: results without one): nothing to block.
                    Err(_) => {
                        done.insert(alert.id);
                        continue;
                    }
                };
            new.alert = Some(alert.id);
            match store.add_decision(new).await {
                Ok(decision) => {
                    made += 1;
                    tracing::info!(alert = alert.id, decision = decision.id, address = %decision.address, "decided");
                }
                // Decided before (by an earlier run): nothing to do.
                Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
            done.insert(alert.id);
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::CollectorConfig;
    use crate::store::decisions::DecisionQuery;
    use crate::store::{AgentContext, NewPrediction, Reason, Source};

    fn attempt(ip: &str) -> NewPrediction {
        NewPrediction {
            source: Source::Agent,
            fingerprint: bfp_common::Fingerprint {
                login_hour: 3,
                session_duration_min: 0.0,
                commands: 0,
                failed_logins: 40,
                protocol: bfp_common::Protocol::Ssh,
                typing_speed_wpm: None,
                risky_commands: None,
            },
            suspicious: true,
            confidence: 0.95,
            commands: None,
            model_version: Arc::from("m1"),
            reasons: vec![Reason::Text("40 failed logins from this address".into())],
            device: Some("pi-1".into()),
            agent: AgentContext { kind: Some("source".into()), source_ip: Some(ip.into()), ..AgentContext::default() },
        }
    }

    const RULES: &str = "[[alert.rule]]\nname = \"brute\"\ngroup_by = \"source_ip\"\n\
                         [[alert.rule]]\nname = \"per-user\"\ngroup_by = \"user\"\n";

    #[test]
    fn the_section_is_checked_against_the_rules() {
        let ok = CollectorConfig::parse(&format!("{RULES}[decisions]\nfrom_alert_rules = [\"brute\"]\n")).unwrap();
        assert_eq!((ok.decisions.duration.as_str(), ok.decisions.group.as_str()), ("4h", "default"));
        assert!(CollectorConfig::parse(RULES).unwrap().decisions.from_alert_rules.is_empty(), "off by default");
        for (section, needle) in [
            ("from_alert_rules = [\"nope\"]", "no alert rule named \"nope\""),
            ("from_alert_rules = [\"per-user\"]", "must group_by = \"source_ip\""),
            ("from_alert_rules = [\"brute\"]\nduration = \"forever\"", "decisions.duration"),
            ("from_alert_rules = [\"brute\"]\ngroup = \"a b\"", "decisions.group"),
            ("from_alert_rules = [\"brute\"]\ninterval_secs = 0", "interval_secs"),
            ("from_alert_rule = [\"brute\"]", "unknown field"),
        ] {
            let err = CollectorConfig::parse(&format!("{RULES}[decisions]\n{section}\n")).unwrap_err();
            assert!(err.contains(needle), "{section}: {err}");
        }
    }

    #[tokio::test]
    async fn each_alert_of_the_rules_becomes_one_decision_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open(&crate::store::sqlite::SqliteConfig::new(dir.path().join("a.db"))).unwrap();
        let config =
            CollectorConfig::parse(&format!("{RULES}[decisions]\nfrom_alert_rules = [\"brute\"]\ngroup = \"edge\"\n"))
                .unwrap();
        let alert_config = Arc::new(config.alert);
        store.insert((0..50).map(|_| attempt("203.0.113.7")).chain([attempt("198.51.100.2")]).collect()).await.unwrap();
        store.evaluate_alerts(alert_config.clone()).await.unwrap();

        let mut done = HashSet::new();
        assert_eq!(decide_once(store.as_ref(), &config.decisions, &mut done).await.unwrap(), 2);
        let made = store.decisions(DecisionQuery { limit: 10, ..DecisionQuery::default() }).await.unwrap();
        let mut addresses: Vec<&str> = made.iter().map(|d| d.address.as_str()).collect();
        addresses.sort();
        assert_eq!(addresses, ["198.51.100.2", "203.0.113.7"]);
        assert!(made
            .iter()
            .all(|d| d.group == "edge" && d.created_by == "collector" && d.until - d.created_at == 4 * 3600));
        assert!(made.iter().any(|d| d.reason.contains("of rule brute: 50 matching results")), "{made:?}");

        // Again, and as a restarted collector would (nothing remembered):
        // no second decision for the same alerts, even a deleted one.
        store.delete_decision(made[0].id, "root".into()).await.unwrap();
        assert_eq!(decide_once(store.as_ref(), &config.decisions, &mut done).await.unwrap(), 0);
        assert_eq!(decide_once(store.as_ref(), &config.decisions, &mut HashSet::new()).await.unwrap(), 0);
        let all = store.decisions(DecisionQuery { all: true, limit: 10, ..DecisionQuery::default() }).await.unwrap();
        assert_eq!(all.len(), 2);
        store.shutdown().await;
    }
}
