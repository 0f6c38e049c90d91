//! Benign behaviour: people and machines with their own habits.
//!
//! Each actor is drawn once (its habits) and then produces sessions around
//! those habits. Night work, travel, machine-speed automation and mistyped
//! passwords are all here on purpose: none of them is an attack.

use bfp_common::Protocol;

use super::rng::Rng;
use super::{pick_protocol, Actor, Draft};

/// Day-time staff: web or SSH logins within their own working day.
pub struct OfficeWorker {
    start: f64,
    day_len: f64,
    protocols: [f64; 4],
    duration_median: f64,
    command_rate: f64,
    wpm: f64,
    risky_p: f64,
    mistype_p: f64,
}

impl OfficeWorker {
    pub fn new(rng: &mut Rng) -> Self {
        let web = rng.chance(0.6);
        OfficeWorker {
            start: rng.uniform(6.5, 10.5),
            day_len: rng.uniform(7.0, 10.0),
            protocols: if web { [0.75, 0.2, 0.05, 0.0] } else { [0.2, 0.75, 0.05, 0.0] },
            duration_median: rng.uniform(12.0, 60.0),
            command_rate: rng.uniform(0.15, 1.0),
            wpm: rng.uniform(25.0, 70.0),
            risky_p: rng.uniform(0.0, 0.06),
            mistype_p: rng.uniform(0.02, 0.1),
        }
    }
}

impl Actor for OfficeWorker {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        // Mostly inside the working day; now and then an evening check-in.
        let hour = if rng.chance(0.06) {
            rng.int(18, 23) as u8
        } else {
            ((self.start + rng.uniform(0.0, self.day_len)) as u32 % 24) as u8
        };
        let protocol = pick_protocol(rng, &self.protocols);
        let duration = rng.log_normal(self.duration_median, 0.8, 0.5, 600.0);
        // A web login may run no shell command at all.
        let commands = if protocol == Protocol::Https && rng.chance(0.15) {
            0
        } else {
            commands_for(rng, duration, self.command_rate)
        };
        let failed = if rng.chance(self.mistype_p) { rng.int(1, 2) } else { 0 };
        let risky = if commands > 0 && rng.chance(self.risky_p) { 1 } else { 0 };
        Draft::session(hour, duration, commands, failed, protocol, Some(human_wpm(rng, self.wpm)), risky)
    }
}

/// Administrators whose shift is the night: 23:00 SSH work is their normal.
pub struct NightShiftAdmin {
    center: f64,
    duration_median: f64,
    command_rate: f64,
    wpm: f64,
    risky_p: f64,
}

impl NightShiftAdmin {
    pub fn new(rng: &mut Rng) -> Self {
        NightShiftAdmin {
            center: rng.uniform(20.0, 29.0),
            duration_median: rng.uniform(25.0, 120.0),
            command_rate: rng.uniform(0.2, 1.2),
            wpm: rng.uniform(35.0, 85.0),
            risky_p: rng.uniform(0.03, 0.2),
        }
    }
}

impl Actor for NightShiftAdmin {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let hour = rng.hour_around(self.center, 2.0);
        let protocol = pick_protocol(rng, &[0.15, 0.85, 0.0, 0.0]);
        let duration = rng.log_normal(self.duration_median, 0.7, 2.0, 720.0);
        let commands = commands_for(rng, duration, self.command_rate);
        let failed = if rng.chance(0.06) { 1 } else { 0 };
        // Admins do fetch packages and edit crontabs.
        let risky = if rng.chance(self.risky_p) { rng.int(1, 2).min(commands) } else { 0 };
        Draft::session(hour, duration, commands, failed, protocol, Some(human_wpm(rng, self.wpm)), risky)
    }
}

/// Administrators on the road: their home hours shifted by a time zone,
/// a laptop keyboard that costs a failed attempt now and then.
pub struct TravellingAdmin {
    home: f64,
    wpm: f64,
    duration_median: f64,
    command_rate: f64,
}

impl TravellingAdmin {
    pub fn new(rng: &mut Rng) -> Self {
        TravellingAdmin {
            home: rng.uniform(8.0, 16.0),
            wpm: rng.uniform(30.0, 75.0),
            duration_median: rng.uniform(10.0, 60.0),
            command_rate: rng.uniform(0.2, 1.0),
        }
    }
}

impl Actor for TravellingAdmin {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let offset = if rng.chance(0.4) { 0.0 } else { rng.uniform(-11.0, 11.0).round() };
        let hour = rng.hour_around(self.home + offset, 3.0);
        let protocol = pick_protocol(rng, &[0.3, 0.7, 0.0, 0.0]);
        let duration = rng.log_normal(self.duration_median, 0.9, 1.0, 480.0);
        let commands = commands_for(rng, duration, self.command_rate);
        let failed = match rng.unit() {
            x if x < 0.75 => 0,
            x if x < 0.93 => 1,
            _ => rng.int(2, 3),
        };
        let risky = if rng.chance(0.05) { 1 } else { 0 };
        let habit = self.wpm * rng.uniform(0.8, 1.0);
        let wpm = human_wpm(rng, habit);
        Draft::session(hour, duration, commands, failed, protocol, Some(wpm), risky)
    }
}

/// Cron jobs and configuration management: machine-speed commands at a fixed
/// time, short sessions, keys that never fail. Some fetch packages.
pub struct Automation {
    hour: Option<u8>,
    duration: f64,
    commands: u32,
    wpm: Option<f64>,
    risky: u32,
    protocol: Protocol,
}

impl Automation {
    pub fn new(rng: &mut Rng) -> Self {
        Automation {
            // Some jobs run hourly, the rest at one fixed hour.
            hour: if rng.chance(0.3) { None } else { Some(rng.int(0, 23) as u8) },
            duration: rng.log_normal(0.8, 1.0, 0.05, 10.0),
            commands: rng.int(1, 60),
            wpm: if rng.chance(0.3) { None } else { Some(rng.log_normal(900.0, 0.8, 150.0, 20_000.0)) },
            risky: if rng.chance(0.25) { rng.int(1, 3) } else { 0 },
            protocol: pick_protocol(rng, &[0.15, 0.85, 0.0, 0.0]),
        }
    }
}

impl Actor for Automation {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let hour = self.hour.unwrap_or_else(|| rng.int(0, 23) as u8);
        let duration = self.duration * rng.uniform(0.8, 1.25);
        let commands = (self.commands + rng.int(0, 2)).saturating_sub(1).max(1);
        let wpm = self.wpm.map(|w| w * rng.uniform(0.9, 1.1));
        Draft::session(hour, duration, commands, 0, self.protocol, wpm, self.risky.min(commands))
    }
}

/// Users who mistype their password a few times, then log in (or give up
/// and come back later): what fail2ban bans and should not.
pub struct Mistyper {
    start: f64,
    wpm: f64,
    duration_median: f64,
    command_rate: f64,
    protocols: [f64; 4],
}

impl Mistyper {
    pub fn new(rng: &mut Rng) -> Self {
        Mistyper {
            start: rng.uniform(7.0, 12.0),
            wpm: rng.uniform(18.0, 55.0),
            duration_median: rng.uniform(10.0, 50.0),
            command_rate: rng.uniform(0.1, 0.8),
            protocols: if rng.chance(0.5) { [0.7, 0.25, 0.05, 0.0] } else { [0.25, 0.7, 0.05, 0.0] },
        }
    }
}

impl Actor for Mistyper {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let hour = ((self.start + rng.uniform(-1.0, 12.0)) as u32 % 24) as u8;
        let protocol = pick_protocol(rng, &self.protocols);
        let failed = if rng.chance(0.7) { rng.int(1, 3) } else { rng.int(4, 7) };
        if rng.chance(0.1) {
            // Gave up: a short burst of failures, no session.
            let duration = rng.uniform(0.2, 3.0);
            return Draft::session(hour, duration, 0, failed, protocol, None, 0);
        }
        let duration = rng.log_normal(self.duration_median, 0.8, 1.0, 480.0);
        let commands = commands_for(rng, duration, self.command_rate);
        let risky = if rng.chance(0.03) { 1 } else { 0 };
        Draft::session(hour, duration, commands, failed, protocol, Some(human_wpm(rng, self.wpm)), risky)
    }
}

/// FTP users moving files: FTP commands, logs without keystroke timing.
pub struct FtpUser {
    center: f64,
    duration_median: f64,
}

impl FtpUser {
    pub fn new(rng: &mut Rng) -> Self {
        FtpUser { center: rng.uniform(7.0, 21.0), duration_median: rng.uniform(2.0, 30.0) }
    }
}

impl Actor for FtpUser {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let hour = rng.hour_around(self.center, 3.0);
        let duration = rng.log_normal(self.duration_median, 1.0, 0.2, 300.0);
        let commands = rng.int(2, 60);
        let failed = if rng.chance(0.1) { 1 } else { 0 };
        let wpm = if rng.chance(0.85) { None } else { Some(human_wpm(rng, 40.0)) };
        Draft::session(hour, duration, commands, failed, Protocol::Ftp, wpm, 0)
    }
}

/// The rare legitimate user who reaches the device through Tor (privacy
/// policy, censored network). Rare, but real: Tor alone is not a verdict.
pub struct TorPrivacyUser {
    center: f64,
    wpm: f64,
    duration_median: f64,
}

impl TorPrivacyUser {
    pub fn new(rng: &mut Rng) -> Self {
        TorPrivacyUser {
            center: rng.uniform(8.0, 22.0),
            wpm: rng.uniform(30.0, 70.0),
            duration_median: rng.uniform(10.0, 45.0),
        }
    }
}

impl Actor for TorPrivacyUser {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let hour = rng.hour_around(self.center, 2.5);
        let duration = rng.log_normal(self.duration_median, 0.7, 2.0, 300.0);
        let commands = commands_for(rng, duration, 0.5);
        let failed = if rng.chance(0.1) { 1 } else { 0 };
        Draft::session(hour, duration, commands, failed, Protocol::Tor, Some(human_wpm(rng, self.wpm)), 0)
    }
}

/// Commands in a human session: proportional to its length, noisy.
fn commands_for(rng: &mut Rng, duration_min: f64, rate_per_min: f64) -> u32 {
    (duration_min * rate_per_min * rng.uniform(0.5, 1.5)).round().clamp(1.0, 500.0) as u32
}

/// A human's typing speed on one day: their habit, give or take.
fn human_wpm(rng: &mut Rng, habit: f64) -> f64 {
    rng.normal(habit, 5.0).clamp(8.0, 140.0)
}

/// Short non-interactive sessions: scp/sftp/rsync copies, git over SSH,
/// monitoring checks. Key-based (no failures), seconds long, nothing typed,
/// at most one logged command. As a single session they look like a
/// credential-checking bot; only who and from where tells them apart.
pub struct ShortExec {
    hour: Option<u8>,
    start: f64,
    duration_median: f64,
    protocol: Protocol,
}

impl ShortExec {
    pub fn new(rng: &mut Rng) -> Self {
        ShortExec {
            // Monitoring runs around the clock at one hour; copies follow the working day.
            hour: if rng.chance(0.4) { Some(rng.int(0, 23) as u8) } else { None },
            start: rng.uniform(7.0, 11.0),
            duration_median: rng.log_normal(0.15, 0.8, 0.01, 2.0),
            protocol: pick_protocol(rng, &[0.1, 0.9, 0.0, 0.0]),
        }
    }
}

impl Actor for ShortExec {
    fn session(&mut self, rng: &mut Rng) -> Draft {
        let hour = self.hour.unwrap_or_else(|| ((self.start + rng.uniform(0.0, 10.0)) as u32 % 24) as u8);
        let duration = rng.log_normal(self.duration_median, 0.6, 0.005, 10.0);
        let commands = if rng.chance(0.8) { 0 } else { 1 };
        let failed = if rng.chance(0.03) { 1 } else { 0 };
        Draft::session(hour, duration, commands, failed, self.protocol, None, 0)
    }
}
