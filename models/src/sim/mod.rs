//! The scenario simulator: labelled fingerprints from benign habits and
//! attack campaigns, deterministic for a seed.
//!
//! Concerns, one module each: [`rng`] (the seeded random source), [`normal`]
//! (benign actors), [`attack`] (campaigns), [`logsource`] (what a log can
//! tell: unknown typing speed, unknown commands).
//!
//! Structure: every [`Scenario`] has `populations` independent populations
//! (a team of users with their own habits, or a set of campaigns with their
//! own tools), each drawn from its own seed, each read from its own kind of
//! log. The label is the scenario's: a benign scenario's sessions are Normal
//! whatever the hour, an attack's are Suspicious whatever the hour.
//! Evaluation holds out whole populations ([`split`]), never random rows.

pub mod attack;
pub mod logsource;
pub mod normal;
pub mod rng;

use bfp_common::{Fingerprint, Protocol};

use self::logsource::LogSource;
use self::rng::Rng;

/// A session before the log source decides what can be observed.
#[derive(Debug, Clone, Copy)]
pub struct Draft {
    /// Login hour 0–23.
    pub hour: u8,
    /// Session (or attempt window) length, minutes.
    pub duration_min: f64,
    /// Commands run.
    pub commands: u32,
    /// Failed logins before (or instead of) the session.
    pub failed: u32,
    /// How it arrived.
    pub protocol: Protocol,
    /// Typing/command speed, if the log tells.
    pub typing_wpm: Option<f64>,
    /// Risky commands among `commands`, if the log tells.
    pub risky: Option<u32>,
}

impl Draft {
    /// A session that got in.
    pub fn session(
        hour: u8,
        duration_min: f64,
        commands: u32,
        failed: u32,
        protocol: Protocol,
        typing_wpm: Option<f64>,
        risky: u32,
    ) -> Draft {
        Draft { hour, duration_min, commands, failed, protocol, typing_wpm, risky: Some(risky.min(commands)) }
    }

    /// A source that only failed: no session, no commands, nothing typed.
    pub fn attempts_only(hour: u8, duration_min: f64, failed: u32, protocol: Protocol) -> Draft {
        Draft { hour, duration_min, commands: 0, failed, protocol, typing_wpm: None, risky: Some(0) }
    }

    fn fingerprint(&self) -> Fingerprint {
        // Rounded as the agent reports them (minutes to 0.1, wpm to 1).
        Fingerprint {
            login_hour: self.hour,
            session_duration_min: ((self.duration_min * 10.0).round() / 10.0) as f32,
            commands: self.commands,
            failed_logins: self.failed,
            protocol: self.protocol,
            typing_speed_wpm: self.typing_wpm.map(|w| w.round() as f32),
            risky_commands: self.risky,
        }
    }
}

/// One actor (a user, a job, a campaign) producing sessions.
pub trait Actor {
    /// The next session of this actor.
    fn session(&mut self, rng: &mut Rng) -> Draft;
}

/// Picks a protocol with weights in [`Protocol::ALL`] order.
pub fn pick_protocol(rng: &mut Rng, weights: &[f64; 4]) -> Protocol {
    Protocol::ALL[rng.weighted(weights)]
}

/// The scenarios. Benign ones first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// Day-time staff, web and SSH.
    OfficeWorker,
    /// Night-shift administrators (benign night work).
    NightShiftAdmin,
    /// Travelling administrators (shifted hours, occasional failure).
    TravellingAdmin,
    /// Cron / configuration management at machine speed, no failures.
    Automation,
    /// Users who mistype their password, then log in (or give up).
    Mistyper,
    /// FTP file transfers.
    FtpUser,
    /// Legitimate users behind Tor (rare).
    TorPrivacyUser,
    /// scp/sftp/git/monitoring: seconds long, no command typed.
    ShortExec,
    /// Fast brute force, per source.
    FastBruteForce,
    /// Slow brute force, per source, over long windows.
    SlowBruteForce,
    /// Credential stuffing that succeeds.
    CredentialStuffing,
    /// Bots sending command chains at machine speed.
    MachineSpeedBot,
    /// Human operators behind Tor.
    TorOperator,
    /// Download-and-run, persistence, history wiping.
    PostCompromise,
    /// Bots that log in, check the login works, and leave.
    CredentialCheckBot,
}

impl Scenario {
    /// Every scenario, benign first.
    pub const ALL: [Scenario; 15] = [
        Scenario::OfficeWorker,
        Scenario::NightShiftAdmin,
        Scenario::TravellingAdmin,
        Scenario::Automation,
        Scenario::Mistyper,
        Scenario::FtpUser,
        Scenario::TorPrivacyUser,
        Scenario::ShortExec,
        Scenario::FastBruteForce,
        Scenario::SlowBruteForce,
        Scenario::CredentialStuffing,
        Scenario::MachineSpeedBot,
        Scenario::TorOperator,
        Scenario::PostCompromise,
        Scenario::CredentialCheckBot,
    ];

    /// Whether the scenario's sessions are attacks (label Suspicious).
    pub fn is_attack(self) -> bool {
        self >= Scenario::FastBruteForce
    }

    /// Short snake_case name used in tables.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::OfficeWorker => "office_worker",
            Scenario::NightShiftAdmin => "night_shift_admin",
            Scenario::TravellingAdmin => "travelling_admin",
            Scenario::Automation => "automation",
            Scenario::Mistyper => "mistyping_user",
            Scenario::FtpUser => "ftp_user",
            Scenario::TorPrivacyUser => "tor_privacy_user",
            Scenario::ShortExec => "short_exec_session",
            Scenario::FastBruteForce => "fast_brute_force",
            Scenario::SlowBruteForce => "slow_brute_force",
            Scenario::CredentialStuffing => "credential_stuffing",
            Scenario::MachineSpeedBot => "machine_speed_bot",
            Scenario::TorOperator => "tor_operator",
            Scenario::PostCompromise => "post_compromise",
            Scenario::CredentialCheckBot => "credential_check_bot",
        }
    }

    /// Actors per population and sessions per population: benign volume
    /// dominates, as on a real device, and rare things stay rare.
    fn shape(self) -> (u32, u32) {
        match self {
            Scenario::OfficeWorker => (12, 300),
            Scenario::NightShiftAdmin => (6, 200),
            Scenario::TravellingAdmin => (6, 150),
            Scenario::Automation => (8, 200),
            Scenario::Mistyper => (10, 150),
            Scenario::FtpUser => (6, 100),
            Scenario::TorPrivacyUser => (3, 40),
            Scenario::ShortExec => (6, 150),
            _ => (3, 150),
        }
    }

    fn actor(self, rng: &mut Rng) -> Box<dyn Actor> {
        match self {
            Scenario::OfficeWorker => Box::new(normal::OfficeWorker::new(rng)),
            Scenario::NightShiftAdmin => Box::new(normal::NightShiftAdmin::new(rng)),
            Scenario::TravellingAdmin => Box::new(normal::TravellingAdmin::new(rng)),
            Scenario::Automation => Box::new(normal::Automation::new(rng)),
            Scenario::Mistyper => Box::new(normal::Mistyper::new(rng)),
            Scenario::FtpUser => Box::new(normal::FtpUser::new(rng)),
            Scenario::TorPrivacyUser => Box::new(normal::TorPrivacyUser::new(rng)),
            Scenario::ShortExec => Box::new(normal::ShortExec::new(rng)),
            Scenario::FastBruteForce => Box::new(attack::FastBruteForce::new(rng)),
            Scenario::SlowBruteForce => Box::new(attack::SlowBruteForce::new(rng)),
            Scenario::CredentialStuffing => Box::new(attack::CredentialStuffing::new(rng)),
            Scenario::MachineSpeedBot => Box::new(attack::MachineSpeedBot::new(rng)),
            Scenario::TorOperator => Box::new(attack::TorOperator::new(rng)),
            Scenario::PostCompromise => Box::new(attack::PostCompromise::new(rng)),
            Scenario::CredentialCheckBot => Box::new(attack::CredentialCheckBot::new(rng)),
        }
    }
}

/// One labelled fingerprint and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// The fingerprint as the agent would report it.
    pub fingerprint: Fingerprint,
    /// The label: true for Suspicious.
    pub suspicious: bool,
    /// The scenario that produced it.
    pub scenario: Scenario,
    /// Population index within the scenario.
    pub population: u32,
}

/// Simulator settings.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    /// Master seed. Default 2026.
    pub seed: u64,
    /// Populations per scenario. Default 10.
    pub populations: u32,
    /// Populations per scenario held out for evaluation (the last ones).
    /// Default 2.
    pub holdout: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig { seed: 2026, populations: 10, holdout: 2 }
    }
}

/// Generates every scenario's populations.
pub fn simulate(cfg: &SimConfig) -> Vec<Sample> {
    let mut out = Vec::new();
    for (s, scenario) in Scenario::ALL.into_iter().enumerate() {
        for population in 0..cfg.populations {
            // Each population has its own seed: holding one out removes its
            // users' habits or its campaigns' tools from training entirely.
            let mut rng =
                Rng::new(cfg.seed ^ ((s as u64) << 32 | u64::from(population)).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let source = LogSource::new(&mut rng);
            let (actors, sessions) = scenario.shape();
            let mut actors: Vec<Box<dyn Actor>> = (0..actors).map(|_| scenario.actor(&mut rng)).collect();
            for _ in 0..sessions {
                let i = rng.int(0, actors.len() as u32 - 1) as usize;
                let session = actors[i].session(&mut rng);
                let draft = source.observe(&mut rng, session);
                out.push(Sample {
                    fingerprint: draft.fingerprint(),
                    suspicious: scenario.is_attack(),
                    scenario,
                    population,
                });
            }
        }
    }
    out
}

/// Splits by population: the last `holdout` populations of every scenario
/// are the evaluation set. Returns (train, eval).
pub fn split(samples: &[Sample], cfg: &SimConfig) -> (Vec<Sample>, Vec<Sample>) {
    let first_held_out = cfg.populations - cfg.holdout;
    samples.iter().partition(|s| s.population < first_held_out)
}

/// Header of [`write_csv`]: the original six columns, then what the
/// simulator knows. Unknown values are written as -1, as the model sees them.
pub const DATASET_HEADER: [&str; 11] = [
    "LoginHour",
    "SessionDuration",
    "CommandsCount",
    "FailedLogins",
    "Protocol",
    "TypingSpeed",
    "RiskyCommands",
    "Label",
    "Scenario",
    "Population",
    "Split",
];

/// Writes samples as CSV (see [`DATASET_HEADER`]); `Split` is `train` or
/// `eval` as [`split`] assigns it.
pub fn write_csv<W: std::io::Write>(samples: &[Sample], cfg: &SimConfig, out: W) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(DATASET_HEADER)?;
    for s in samples {
        let f = s.fingerprint;
        let held_out = s.population >= cfg.populations - cfg.holdout;
        w.write_record([
            f.login_hour.to_string(),
            f.session_duration_min.to_string(),
            f.commands.to_string(),
            f.failed_logins.to_string(),
            f.protocol.as_str().to_string(),
            f.typing_speed_wpm.map_or("-1".into(), |v| v.to_string()),
            f.risky_commands.map_or("-1".into(), |v| v.to_string()),
            u8::from(s.suspicious).to_string(),
            s.scenario.name().to_string(),
            s.population.to_string(),
            if held_out { "eval" } else { "train" }.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_labelled_and_valid() {
        let cfg = SimConfig { populations: 3, holdout: 1, ..SimConfig::default() };
        let a = simulate(&cfg);
        let b = simulate(&cfg);
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.fingerprint == y.fingerprint));
        for s in &a {
            let fp = s.fingerprint;
            assert!(fp.login_hour < 24 && fp.session_duration_min >= 0.0);
            assert!(fp.risky_commands.is_none_or(|r| r <= fp.commands));
            assert_eq!(s.suspicious, s.scenario.is_attack());
        }
        // Night work is in the benign data, day-time attacks in the attacks.
        assert!(a.iter().any(|s| !s.suspicious && (s.fingerprint.login_hour >= 22 || s.fingerprint.login_hour < 5)));
        assert!(a.iter().any(|s| s.suspicious && (9..17).contains(&s.fingerprint.login_hour)));
        // Unknown typing speed and unknown commands occur in both classes.
        for label in [false, true] {
            assert!(a.iter().any(|s| s.suspicious == label && s.fingerprint.typing_speed_wpm.is_none()));
            assert!(a.iter().any(|s| s.suspicious == label && s.fingerprint.risky_commands.is_none()));
        }
    }

    #[test]
    fn split_holds_out_whole_populations() {
        let cfg = SimConfig { populations: 4, holdout: 1, ..SimConfig::default() };
        let all = simulate(&cfg);
        let (train, eval) = split(&all, &cfg);
        assert_eq!(train.len() + eval.len(), all.len());
        assert!(train.iter().all(|s| s.population < 3) && eval.iter().all(|s| s.population == 3));
        for scenario in Scenario::ALL {
            assert!(eval.iter().any(|s| s.scenario == scenario), "{scenario:?} not evaluated");
        }
    }

    #[test]
    fn dataset_csv_has_a_row_per_sample_and_the_split() {
        let cfg = SimConfig { populations: 2, holdout: 1, ..SimConfig::default() };
        let all = simulate(&cfg);
        let mut buf = Vec::new();
        write_csv(&all, &cfg, &mut buf).unwrap();
        let mut r = csv::Reader::from_reader(buf.as_slice());
        assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), DATASET_HEADER);
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), all.len());
        let eval_rows = rows.iter().filter(|r| &r[10] == "eval").count();
        assert_eq!(eval_rows, all.iter().filter(|s| s.population == 1).count());
        // The original six columns read back through the collector's CSV validation.
        let six: csv::StringRecord = rows[0].iter().take(6).collect();
        Fingerprint::from_csv_record(&six, 1).unwrap();
    }
}
