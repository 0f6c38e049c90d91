//! Attack campaigns. Each actor is one campaign (a tool with its settings,
//! an operator with their habits) and produces per-session or per-source
//! fingerprints. Attack hours are uniform over the day on purpose: attackers
//! do not keep office hours, nor avoid them.

use bfp_common::Protocol;

use super::rng::Rng;
use super::{pick_protocol, Actor, Draft};

/// Fast brute force: a source hammering passwords, tens to thousands of
/// failures per window at machine rate. One fingerprint per source window;
/// a few campaigns eventually get in and run a handful of commands.
pub struct FastBruteForce {
    rate_per_min: f64,
    protocols: [f64; 4],
    success_p: f64,
}

impl FastBruteForce {
    pub fn new(rng: &mut Rng) -> Self {
        FastBruteForce {
            rate_per_min: rng.log_normal(20.0, 1.0, 3.0, 300.0),
            protocols: [[0.0, 0.9, 0.05, 0.05], [0.0, 0.1, 0.85, 0.05], [0.0, 0.2, 0.0, 0.8]]
                [rng.weighted(&[0.7, 0.1, 0.2])],
            success_p: rng.uniform(0.0, 0.2),
        }
    }
}

impl Actor for FastBruteForce {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let failed = rng.log_normal(120.0, 1.1, 10.0, 20_000.0).round() as u32;
        let duration = f64::from(failed) / (self.rate_per_min * rng.uniform(0.7, 1.3));
        let protocol = pick_protocol(rng, &self.protocols);
        let hour = rng.int(0, 23) as u8;
        if rng.chance(self.success_p) {
            let commands = rng.int(1, 10);
            let wpm = if rng.chance(0.5) { None } else { Some(rng.log_normal(1500.0, 0.8, 200.0, 50_000.0)) };
            return Draft::session(
                hour,
                duration + rng.uniform(0.1, 5.0),
                commands,
                failed,
                protocol,
                wpm,
                rng.int(0, 3),
            );
        }
        Draft::attempts_only(hour, duration, failed, protocol)
    }
}

/// Slow brute force: a few attempts an hour, under any per-minute threshold,
/// seen over a long window.
pub struct SlowBruteForce {
    interval_min: f64,
    protocols: [f64; 4],
}

impl SlowBruteForce {
    pub fn new(rng: &mut Rng) -> Self {
        SlowBruteForce {
            interval_min: rng.log_normal(25.0, 0.8, 4.0, 180.0),
            protocols: [[0.0, 0.9, 0.05, 0.05], [0.0, 0.2, 0.0, 0.8], [0.0, 0.1, 0.9, 0.0]]
                [rng.weighted(&[0.7, 0.2, 0.1])],
        }
    }
}

impl Actor for SlowBruteForce {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let failed = rng.int(3, 48);
        let duration = f64::from(failed) * self.interval_min * rng.uniform(0.8, 1.2);
        let protocol = pick_protocol(rng, &self.protocols);
        Draft::attempts_only(rng.int(0, 23) as u8, duration, failed, protocol)
    }
}

/// Credential stuffing that succeeds: leaked passwords, so few or no failures,
/// then a short scripted look around.
pub struct CredentialStuffing {
    protocols: [f64; 4],
    wpm: f64,
}

impl CredentialStuffing {
    pub fn new(rng: &mut Rng) -> Self {
        CredentialStuffing {
            protocols: [[0.1, 0.8, 0.0, 0.1], [0.6, 0.2, 0.0, 0.2], [0.0, 0.2, 0.0, 0.8]]
                [rng.weighted(&[0.55, 0.2, 0.25])],
            wpm: rng.log_normal(500.0, 0.8, 120.0, 10_000.0),
        }
    }
}

impl Actor for CredentialStuffing {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let failed = if rng.chance(0.45) { 0 } else { rng.int(1, 3) };
        let duration = rng.log_normal(2.0, 1.0, 0.1, 30.0);
        let commands = rng.int(1, 15);
        let wpm = if rng.chance(0.4) { None } else { Some(self.wpm * rng.uniform(0.8, 1.25)) };
        let risky = if rng.chance(0.5) { 0 } else { rng.int(1, 2).min(commands) };
        let protocol = pick_protocol(rng, &self.protocols);
        Draft::session(rng.int(0, 23) as u8, duration, commands, failed, protocol, wpm, risky)
    }
}

/// Bots (Mirai and friends): default-credential dictionaries, then a command
/// chain sent at machine speed, usually fetching and running a binary.
pub struct MachineSpeedBot {
    max_failed: u32,
    protocols: [f64; 4],
    dropper_p: f64,
}

impl MachineSpeedBot {
    pub fn new(rng: &mut Rng) -> Self {
        MachineSpeedBot {
            max_failed: rng.int(0, 25),
            protocols: if rng.chance(0.8) { [0.0, 0.95, 0.0, 0.05] } else { [0.0, 0.3, 0.0, 0.7] },
            dropper_p: rng.uniform(0.5, 0.95),
        }
    }
}

impl Actor for MachineSpeedBot {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let failed = rng.int(0, self.max_failed);
        let duration = rng.log_normal(0.8, 0.8, 0.05, 5.0);
        let commands = rng.int(3, 40);
        let wpm = if rng.chance(0.3) { None } else { Some(rng.log_normal(2000.0, 0.8, 300.0, 50_000.0)) };
        let risky = if rng.chance(self.dropper_p) { rng.int(1, 10).min(commands) } else { 0 };
        let protocol = pick_protocol(rng, &self.protocols);
        Draft::session(rng.int(0, 23) as u8, duration, commands, failed, protocol, wpm, risky)
    }
}

/// A human operator hiding behind Tor: guesses a few passwords, types like a
/// person, looks around and sometimes drops tools.
pub struct TorOperator {
    wpm: f64,
    max_failed: u32,
}

impl TorOperator {
    pub fn new(rng: &mut Rng) -> Self {
        TorOperator { wpm: rng.uniform(40.0, 160.0), max_failed: rng.int(2, 12) }
    }
}

impl Actor for TorOperator {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let failed = rng.int(0, self.max_failed);
        let duration = rng.log_normal(10.0, 1.0, 0.5, 120.0);
        let commands = rng.int(2, 100);
        let wpm = if rng.chance(0.25) { None } else { Some(rng.normal(self.wpm, 10.0).clamp(20.0, 300.0)) };
        let risky = rng.int(0, 5).min(commands);
        Draft::session(rng.int(0, 23) as u8, duration, commands, failed, Protocol::Tor, wpm, risky)
    }
}

/// Post-compromise sessions: download-and-run, persistence (crontab,
/// authorized_keys), history wiping. Few or no failures: the way in was
/// already known.
pub struct PostCompromise {
    protocols: [f64; 4],
    wpm: f64,
}

impl PostCompromise {
    pub fn new(rng: &mut Rng) -> Self {
        PostCompromise {
            protocols: [[0.05, 0.9, 0.0, 0.05], [0.0, 0.2, 0.0, 0.8], [0.7, 0.3, 0.0, 0.0]]
                [rng.weighted(&[0.7, 0.2, 0.1])],
            wpm: rng.log_normal(150.0, 0.8, 40.0, 3000.0),
        }
    }
}

impl Actor for PostCompromise {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let failed = if rng.chance(0.6) { 0 } else { rng.int(1, 5) };
        let duration = rng.log_normal(6.0, 1.0, 0.3, 60.0);
        let commands = rng.int(4, 30);
        let risky = rng.int(2, 8).min(commands);
        let wpm = if rng.chance(0.35) { None } else { Some(self.wpm * rng.uniform(0.8, 1.25)) };
        let protocol = pick_protocol(rng, &self.protocols);
        Draft::session(rng.int(0, 23) as u8, duration, commands, failed, protocol, wpm, risky)
    }
}

/// Credential-checking bots: log in, maybe send one probe (`uname`, `echo`),
/// leave within seconds; the working login is sold or added to a botnet's
/// list. Half arrive with valid credentials (no failure); the rest guessed
/// them from the same address first.
pub struct CredentialCheckBot {
    guesses: bool,
    protocols: [f64; 4],
}

impl CredentialCheckBot {
    pub fn new(rng: &mut Rng) -> Self {
        CredentialCheckBot {
            guesses: rng.chance(0.5),
            protocols: if rng.chance(0.85) { [0.0, 0.95, 0.0, 0.05] } else { [0.0, 0.3, 0.0, 0.7] },
        }
    }
}

impl Actor for CredentialCheckBot {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let failed = if self.guesses { rng.log_normal(5.0, 1.0, 1.0, 60.0).round() as u32 } else { 0 };
        let duration = rng.log_normal(0.1, 1.0, 0.005, 1.0);
        let commands = if rng.chance(0.7) { 0 } else { rng.int(1, 2) };
        let wpm =
            if commands == 0 || rng.chance(0.5) { None } else { Some(rng.log_normal(3000.0, 0.8, 300.0, 50_000.0)) };
        let protocol = pick_protocol(rng, &self.protocols);
        Draft::session(rng.int(0, 23) as u8, duration, commands, failed, protocol, wpm, 0)
    }
}
