//! Which records prove an address hostile enough to block. Only evidence
//! the detectors already stand behind: a brute-force campaign, a source
//! window judged Suspicious for its failed logins, a login from a
//! campaign's address. A single odd session of a known user never blocks.

use std::net::IpAddr;

use bfp_common::wire::RecordKind;

use crate::report::Record;

use super::RespondConfig;

/// An address to block and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The address.
    pub ip: IpAddr,
    /// Why, in an operator's words.
    pub reason: String,
}

/// The addresses `record` proves hostile (none for most records).
pub fn hostile(record: &Record, config: &RespondConfig) -> Vec<Verdict> {
    let first_reason = || record.reasons.first().cloned().unwrap_or_default();
    match (record.kind, record.campaign, record.source_ip) {
        // A campaign's own record (details.kind says which): its address,
        // or for a distributed one the addresses it names.
        (RecordKind::Source | RecordKind::Device, Some(_), _) if is_campaign_alert(record) => {
            let mut ips: Vec<IpAddr> = record.source_ip.into_iter().collect();
            if ips.is_empty() {
                ips = sample_sources(record);
            }
            let reason = first_reason();
            ips.into_iter().map(|ip| Verdict { ip, reason: reason.clone() }).collect()
        }
        // A source window or a session from an address in a campaign.
        (RecordKind::Source | RecordKind::Session, Some(_), Some(ip)) => {
            let reason =
                record.reasons.iter().find(|r| r.contains("brute force")).cloned().unwrap_or_else(first_reason);
            vec![Verdict { ip, reason }]
        }
        // A source window judged Suspicious for its failed logins.
        (RecordKind::Source, None, Some(ip))
            if record.prediction.is_suspicious()
                && record.failed_logins >= config.min_failed_logins
                && record.confidence >= config.min_confidence =>
        {
            let reason = format!(
                "{} failed logins in one window, Suspicious at {:.2}: {}",
                record.failed_logins,
                record.confidence,
                first_reason()
            );
            vec![Verdict { ip, reason }]
        }
        _ => Vec::new(),
    }
}

/// A record a campaign detector raised (not an analyzer window).
fn is_campaign_alert(record: &Record) -> bool {
    matches!(record.details.get("kind").and_then(|k| k.as_str()), Some("slow_brute_force" | "distributed_brute_force"))
}

/// The addresses a distributed campaign names (some of them when many).
fn sample_sources(record: &Record) -> Vec<IpAddr> {
    record
        .details
        .get("sample_sources")
        .and_then(|v| v.as_array())
        .map(|list| list.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bfp_common::{Prediction, Protocol};
    use bfp_detect::campaign::CampaignKind;
    use serde_json::json;

    fn record(kind: RecordKind, ip: Option<&str>) -> Record {
        Record {
            kind,
            log: "auth".into(),
            source_ip: ip.map(|s| s.parse().unwrap()),
            user: None,
            start: 0,
            end: Some(60),
            open: false,
            login_hour: 3,
            duration_min: 1.0,
            failed_logins: 0,
            commands: Vec::new(),
            command_count: 0,
            risky_commands: Some(0),
            protocol: Protocol::Ssh,
            typing_speed: None,
            prediction: Prediction::Normal,
            confidence: 0.9,
            reasons: vec!["first reason".into()],
            model_version: "m".into(),
            campaign: None,
            learning: false,
            details: serde_json::Value::Null,
        }
    }

    fn ips(verdicts: &[Verdict]) -> Vec<String> {
        verdicts.iter().map(|v| v.ip.to_string()).collect()
    }

    #[test]
    fn a_slow_campaign_blocks_its_address_and_a_distributed_one_the_addresses_it_names() {
        let config = RespondConfig::default();
        let mut slow = record(RecordKind::Source, Some("203.0.113.7"));
        slow.campaign = Some(CampaignKind::SlowBruteForce);
        slow.details = json!({"kind": "slow_brute_force", "sample_sources": ["203.0.113.7"]});
        slow.reasons = vec!["slow brute force from 203.0.113.7: 10 failed logins over 5 distinct hours".into()];
        let verdicts = hostile(&slow, &config);
        assert_eq!(ips(&verdicts), ["203.0.113.7"]);
        assert!(verdicts[0].reason.starts_with("slow brute force"));
        let mut distributed = record(RecordKind::Device, None);
        distributed.campaign = Some(CampaignKind::DistributedBruteForce);
        distributed.details =
            json!({"kind": "distributed_brute_force", "sample_sources": ["198.51.100.1", "2001:db8::9", "junk"]});
        assert_eq!(ips(&hostile(&distributed, &config)), ["198.51.100.1", "2001:db8::9"]);
    }

    #[test]
    fn a_login_or_a_window_from_a_campaigns_address_blocks_it_whatever_the_verdict() {
        let config = RespondConfig::default();
        let mut login = record(RecordKind::Session, Some("203.0.113.7"));
        login.user = Some("root".into());
        login.campaign = Some(CampaignKind::SlowBruteForce);
        login.reasons = vec![
            "first login by root on this device".into(),
            "login from 203.0.113.7, which ran a slow brute force against this device".into(),
        ];
        let verdicts = hostile(&login, &config);
        assert_eq!(ips(&verdicts), ["203.0.113.7"]);
        assert!(verdicts[0].reason.starts_with("login from 203.0.113.7"), "{verdicts:?}");
        let mut window = record(RecordKind::Source, Some("203.0.113.8"));
        window.campaign = Some(CampaignKind::DistributedBruteForce);
        assert_eq!(ips(&hostile(&window, &config)), ["203.0.113.8"]);
    }

    #[test]
    fn a_suspicious_source_window_blocks_only_past_both_thresholds() {
        let config = RespondConfig::default();
        let mut window = record(RecordKind::Source, Some("198.51.100.66"));
        window.prediction = Prediction::Suspicious;
        window.failed_logins = config.min_failed_logins;
        window.confidence = config.min_confidence;
        let verdicts = hostile(&window, &config);
        assert_eq!(ips(&verdicts), ["198.51.100.66"]);
        assert!(verdicts[0].reason.contains("failed logins in one window"));
        let few = Record { failed_logins: config.min_failed_logins - 1, ..window.clone() };
        let unsure = Record { confidence: config.min_confidence - 0.01, ..window.clone() };
        let normal = Record { prediction: Prediction::Normal, ..window.clone() };
        for r in [few, unsure, normal] {
            assert!(hostile(&r, &config).is_empty(), "{r:?}");
        }
    }

    #[test]
    fn ordinary_sessions_and_device_windows_block_nothing() {
        let config = RespondConfig::default();
        let mut session = record(RecordKind::Session, Some("192.0.2.4"));
        session.prediction = Prediction::Suspicious;
        session.failed_logins = 50;
        assert!(hostile(&session, &config).is_empty());
        let mut device = record(RecordKind::Device, None);
        device.prediction = Prediction::Suspicious;
        device.failed_logins = 500;
        assert!(hostile(&device, &config).is_empty());
    }
}
