//! The rules and results the alert benchmarks share.

// `is_multiple_of` is newer than the workspace's rust-version (1.85).
#![allow(clippy::manual_is_multiple_of)]

use std::sync::Arc;

use bfp_collector::alerts::{AlertConfig, CollectorConfig};
use bfp_collector::store::{AgentContext, NewPrediction, Reason, Source};
use bfp_common::{Fingerprint, Protocol};

/// 20 rules of the shapes operators write: brute force per source, per
/// user, campaign-wide, per device, by reason, with and without kinds.
pub fn rules() -> String {
    let mut text = String::from(
        "[alert]\nmax_rows_per_pass = 5000\n\
         [[destinations]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\
         [[destinations]]\nname = \"siem\"\ntype = \"syslog\"\naddress = \"127.0.0.1:9\"\n",
    );
    let group = ["source_ip", "user", "rule", "device"];
    let kinds = ["[]", "[\"session\"]", "[\"source\"]", "[\"session\", \"source\"]"];
    let reasons = ["failed logins?", "new source", "unusual hour|odd time", "risky command", "campaign"];
    for i in 0..20 {
        text.push_str(&format!(
            "[[alert.rule]]\nname = \"rule-{i}\"\nmin_confidence = {}\nkinds = {}\ngroup_by = \"{}\"\n{}",
            0.5 + (i % 5) as f64 * 0.1,
            kinds[i % 4],
            group[i % 4],
            if i % 2 == 0 { format!("reason = \"{}\"\n", reasons[i % 5]) } else { String::new() },
        ));
    }
    text
}

/// [`rules`], parsed.
pub fn config() -> Arc<AlertConfig> {
    Arc::new(CollectorConfig::parse(&rules()).expect("bench rules parse").alert)
}

/// Result `i`: a third suspicious, addresses and users from small pools (a
/// brute force's shape), kinds alternating.
pub fn result(i: usize) -> NewPrediction {
    NewPrediction {
        source: Source::Agent,
        fingerprint: Fingerprint {
            login_hour: (i % 24) as u8,
            session_duration_min: 0.0,
            commands: 0,
            failed_logins: (i % 7) as u32,
            protocol: Protocol::Ssh,
            typing_speed_wpm: None,
            risky_commands: None,
        },
        suspicious: i % 3 == 0,
        confidence: 0.5 + (i % 50) as f32 / 100.0,
        commands: None,
        model_version: Arc::from("bench"),
        reasons: vec![Reason::Text(format!("{} failed logins from this address", i % 7))],
        device: Some(format!("pi-{}", i % 8)),
        agent: AgentContext {
            kind: Some(if i % 2 == 0 { "session" } else { "source" }.into()),
            source_ip: Some(format!("203.0.113.{}", i % 200)),
            user: Some(format!("user{}", i % 30)),
            ..AgentContext::default()
        },
    }
}
