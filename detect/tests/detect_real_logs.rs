//! The baselines and campaign detectors on the real logs of
//! `../shared/data/real`, next to the shipped model alone: the same labelled
//! groups as the model card's "Real logs" table (models/src/real.rs, same
//! labels and caveats), each row scored as the agent scores it (model
//! verdict, raised by the detectors, judged in log order with learning).
//!
//! `cargo test -p bfp-detect --test detect_real_logs -- --nocapture` prints
//! the table that docs/detection.md records. The assertions pin what the
//! table shows and what must stay true on logs the detectors were not tuned
//! on: they never lower a verdict, and they add no false positive on the
//! hosts whose admins are known.

use std::net::IpAddr;

use bfp_common::artifacts::EMBEDDED_PREDICT_MODEL;
use bfp_common::CompactModel;
use bfp_detect::campaign::{CampaignAlert, CampaignKind};
use bfp_detect::detector::{Assessment, SessionRules};
use bfp_detect::engine::{Engine, EngineConfig, Score, Scored};
use bfp_logs::analyze::{AnalyzerConfig, LogFormat, Observation, RecordKind};
use bfp_testkit::{real_dir, REFERENCE};

/// One observation with the model's verdict and the agent's final one.
struct Row {
    obs: Observation,
    model: bool,
    agent: bool,
}

/// The collector's model on the seed features, with every session rule on
/// top (the agent's fallback for a predict-schema model).
struct SeedScorer<'a>(&'a CompactModel);

impl Score for SeedScorer<'_> {
    fn score(&mut self, obs: &Observation, _: &Assessment) -> Scored {
        Scored { verdict: self.0.score(&obs.fingerprint.features()), reasons: Vec::new() }
    }

    fn session_rules(&self) -> SessionRules {
        SessionRules::All
    }
}

/// Runs files through one engine, as `bfp-agent scan` does with one file.
fn run(files: &[&str], model: &CompactModel) -> (Vec<Row>, Vec<CampaignAlert>) {
    let analyzer = AnalyzerConfig { reference_time: Some(REFERENCE), ..AnalyzerConfig::default() };
    let mut engine = Engine::new(EngineConfig { analyzer, format: Some(LogFormat::Auto), ..EngineConfig::default() });
    let mut scorer = SeedScorer(model);
    let mut judged = Vec::new();
    for f in files {
        let path = real_dir().join(f);
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        engine.new_input();
        for (i, line) in String::from_utf8_lossy(&text).lines().enumerate() {
            engine.feed(line);
            if i % 4096 == 4095 {
                engine.drain(&mut scorer, &mut judged);
            }
        }
        engine.drain(&mut scorer, &mut judged);
    }
    engine.finish(&mut scorer, &mut judged);
    let mut rows = Vec::new();
    let mut alerts = Vec::new();
    for j in judged {
        match j.alert {
            // Campaigns are counted apart from the analyzer's windows.
            Some(alert) => alerts.push(alert),
            None => {
                rows.push(Row { model: j.model.suspicious, agent: j.prediction.is_suspicious(), obs: j.observation })
            }
        }
    }
    (rows, alerts)
}

fn tried(o: &Observation) -> bool {
    o.fingerprint.failed_logins > 0 || o.fingerprint.commands > 0 || o.source.as_ref().is_some_and(|s| s.successes > 0)
}

fn only_failed(o: &Observation) -> bool {
    o.fingerprint.failed_logins > 0 && o.source.as_ref().is_some_and(|s| s.successes == 0)
}

struct Group {
    name: &'static str,
    suspicious: bool,
    model: usize,
    agent: usize,
    rows: usize,
}

fn group(name: &'static str, suspicious: bool, rows: &[Row], keep: impl Fn(&Observation) -> bool) -> Group {
    let kept: Vec<&Row> = rows.iter().filter(|r| keep(&r.obs)).collect();
    Group {
        name,
        suspicious,
        model: kept.iter().filter(|r| r.model).count(),
        agent: kept.iter().filter(|r| r.agent).count(),
        rows: kept.len(),
    }
}

fn pct(n: usize, of: usize) -> String {
    format!("{:.1}% ({n})", 100.0 * n as f64 / of.max(1) as f64)
}

#[test]
fn detectors_on_the_real_logs() {
    let model = CompactModel::from_bytes(EMBEDDED_PREDICT_MODEL).unwrap();
    let session = |o: &Observation| o.kind == RecordKind::Session;
    let source = |o: &Observation| o.kind == RecordKind::Source;
    let mut groups = Vec::new();
    let mut campaigns = Vec::new();

    let (cowrie, alerts) = run(&["cowrie/cowrie.json.2018-05-19", "cowrie/cowrie-telnet.json"], &model);
    groups.push(group("Cowrie honeypot: sessions", true, &cowrie, session));
    groups.push(group("Cowrie honeypot: sources that tried to log in", true, &cowrie, |o| source(o) && tried(o)));
    campaigns.push(("Cowrie (both files)", alerts));

    let admin: IpAddr = "85.245.107.41".parse().unwrap();
    let (elastic, alerts) = run(&["elastic/auth.log"], &model);
    groups.push(group("elastic auth.log: sessions from the admins' address", false, &elastic, |o| {
        session(o) && o.source_ip == Some(admin)
    }));
    groups.push(group("elastic auth.log: the admins' address, source windows", false, &elastic, |o| {
        source(o) && o.source_ip == Some(admin)
    }));
    groups.push(group("elastic auth.log: other sources that only failed", true, &elastic, |o| {
        source(o) && o.source_ip != Some(admin) && only_failed(o)
    }));
    campaigns.push(("elastic auth.log", alerts));

    let owner: IpAddr = "35.235.244.33".parse().unwrap();
    let (rhel, alerts) = run(&["exposed-rhel/secure"], &model);
    groups.push(group("exposed RHEL secure: the owner's publickey session", false, &rhel, |o| {
        session(o) && o.source_ip == Some(owner)
    }));
    groups.push(group("exposed RHEL secure: sources that only failed", true, &rhel, |o| source(o) && only_failed(o)));
    campaigns.push(("exposed RHEL secure", alerts));

    let (loghub, alerts) = run(&["loghub/OpenSSH_2k.log"], &model);
    groups.push(group("Loghub OpenSSH: sources that only failed", true, &loghub, |o| source(o) && only_failed(o)));
    campaigns.push(("Loghub OpenSSH_2k", alerts));

    println!("| group | label | rows | model alone | model + baselines + campaigns (the agent) |");
    println!("|---|---|---|---|---|");
    for g in &groups {
        let label = if g.suspicious { "Suspicious" } else { "Normal" };
        println!("| {} | {label} | {} | {} | {} |", g.name, g.rows, pct(g.model, g.rows), pct(g.agent, g.rows));
    }
    println!();
    println!("| log | slow brute force alerts | distributed campaigns |");
    println!("|---|---|---|");
    for (log, alerts) in &campaigns {
        let slow = alerts.iter().filter(|a| a.kind == CampaignKind::SlowBruteForce).count();
        let dist: Vec<String> = alerts
            .iter()
            .filter(|a| a.kind == CampaignKind::DistributedBruteForce)
            .map(|a| format!("{} addresses at detection", a.sources))
            .collect();
        println!("| {log} | {slow} | {} |", if dist.is_empty() { "none".to_string() } else { dist.join("; ") });
    }

    let find = |name: &str| groups.iter().find(|g| g.name == name).unwrap();
    // The detectors only raise verdicts, but for source windows whose address
    // only logged in, no session of it flagged (its sessions decide): on the
    // honeypot, 4 of the 26 windows the model flagged, whose logins are judged
    // on the sessions' own records.
    for g in &groups {
        let cleared = if g.name == "Cowrie honeypot: sources that tried to log in" { 4 } else { 0 };
        assert!(g.agent + cleared >= g.model, "{}", g.name);
    }
    // No false positive added on the known admins' sessions and windows, nor
    // on the exposed host's owner.
    for name in [
        "elastic auth.log: sessions from the admins' address",
        "elastic auth.log: the admins' address, source windows",
        "exposed RHEL secure: the owner's publickey session",
    ] {
        let g = find(name);
        assert_eq!(g.agent, g.model, "{name}: the detectors raised a known-benign row");
    }
    // No campaign is raised against the elastic host's admins' address.
    let (_, elastic_alerts) = &campaigns[1];
    assert!(elastic_alerts.iter().all(|a| a.source_ip != Some(admin)), "{elastic_alerts:?}");
}
