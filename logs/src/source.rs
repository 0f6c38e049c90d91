//! Per-source window fingerprints, and the device-wide aggregate.
//!
//! An attacking address may never get a session, so every address that shows
//! up (a connection, a probe, a failed or successful login) gets a window:
//! it opens at the address's first event and closes `source_window_secs`
//! later, or after `source_idle_secs` without activity, or at the end of the
//! input. The defaults (a day, six idle hours) keep a slow brute force of a
//! few attempts an hour inside one window, where a per-minute threshold sees
//! nothing.
//!
//! Attacks spread over many addresses (each trying once or twice) show in the
//! device-wide window instead: distinct failing sources, users tried, and how
//! many sources stayed under a per-address threshold.

use std::net::IpAddr;

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use crate::session::local_hour;
use bfp_common::{Fingerprint, Protocol};

/// How many distinct user names a window remembers (as hashes) exactly.
const MAX_USERS_TRACKED: usize = 4096;
/// How many user names a source observation lists, for the operator.
const USERS_SAMPLE: usize = 5;
/// How many distinct sources the device window remembers exactly.
const MAX_SOURCES_TRACKED: usize = 65_536;
/// A source with at most this many failures in its window is "low and slow":
/// below the 5-failure threshold of fail2ban-style tools.
pub const QUIET_SOURCE_FAILURES: u32 = 4;

/// What a source did in its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStats {
    /// Failed logins (each password tried counts once).
    pub failed_logins: u32,
    /// Failed logins and attempts for user names that do not exist.
    pub invalid_user_attempts: u32,
    /// Distinct user names tried (exact up to 4096).
    pub distinct_users: u32,
    /// The first few user names tried.
    pub users_sample: Vec<String>,
    /// Successful logins.
    pub successes: u32,
    /// A success came after at least one failure in the window.
    pub success_after_failures: bool,
    /// Failed logins per hour over the window's span (a span under a minute counts as a minute).
    pub attempts_per_hour: f32,
    /// Connections opened (sshd "Connection from", dropbear, FTP, Cowrie).
    pub connections: u32,
    /// Connections that never spoke the protocol (scanners).
    pub probes: u32,
    /// Protocols seen.
    pub protocols: Vec<Protocol>,
}

/// What the whole device saw in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceStats {
    /// Failed logins from all sources.
    pub failed_logins: u32,
    /// Distinct addresses with at least one failure.
    pub failing_sources: u32,
    /// Of those, how many stayed at or under [`QUIET_SOURCE_FAILURES`] failures.
    pub quiet_sources: u32,
    /// Distinct user names tried.
    pub distinct_users: u32,
    /// Successful logins.
    pub successes: u32,
    /// Successful logins from an address that had failed before in the window.
    pub successes_after_failures: u32,
    /// Failed logins per hour over the window's span.
    pub attempts_per_hour: f32,
}

#[derive(Debug)]
pub(crate) struct SourceWindow {
    pub ip: IpAddr,
    pub start_ms: i64,
    pub last_ms: i64,
    pub offset_secs: i32,
    failed: u32,
    invalid: u32,
    users: FxHashSet<u64>,
    sample: Vec<String>,
    successes: u32,
    success_after_failures: bool,
    connections: u32,
    probes: u32,
    protocols: u8,
    pub commands: u32,
    pub risky: u32,
}

impl SourceWindow {
    pub fn new(ip: IpAddr, ts_ms: i64, offset_secs: i32) -> SourceWindow {
        SourceWindow {
            ip,
            start_ms: ts_ms,
            last_ms: ts_ms,
            offset_secs,
            failed: 0,
            invalid: 0,
            users: FxHashSet::default(),
            sample: Vec::new(),
            successes: 0,
            success_after_failures: false,
            connections: 0,
            probes: 0,
            protocols: 0,
            commands: 0,
            risky: 0,
        }
    }

    pub fn touch(&mut self, ts_ms: i64, protocol: Protocol) {
        self.last_ms = self.last_ms.max(ts_ms);
        self.protocols |= 1 << protocol.code() as u8;
    }

    pub fn user(&mut self, user: Option<&str>, hash: u64) {
        if let Some(user) = user {
            if self.users.len() < MAX_USERS_TRACKED && self.users.insert(hash) && self.sample.len() < USERS_SAMPLE {
                self.sample.push(user.to_owned());
            }
        }
    }

    pub fn failed(&mut self, count: u32, invalid: bool) {
        self.failed = self.failed.saturating_add(count);
        if invalid {
            self.invalid = self.invalid.saturating_add(count);
        }
    }

    /// Takes back `count` failed attempts that turned out not to be failures
    /// (stacked PAM, see [`crate::session::FailureLog::retract`]).
    pub fn retract_failed(&mut self, count: u32) {
        self.failed = self.failed.saturating_sub(count);
    }

    pub fn invalid_user(&mut self) {
        self.invalid = self.invalid.saturating_add(1);
    }

    pub fn success(&mut self) -> bool {
        self.successes += 1;
        let after = self.failed > 0;
        self.success_after_failures |= after;
        after
    }

    pub fn connection(&mut self) {
        self.connections = self.connections.saturating_add(1);
    }

    pub fn probe(&mut self) {
        self.probes = self.probes.saturating_add(1);
    }

    pub fn stats(&self) -> SourceStats {
        SourceStats {
            failed_logins: self.failed,
            invalid_user_attempts: self.invalid,
            distinct_users: self.users.len() as u32,
            users_sample: self.sample.clone(),
            successes: self.successes,
            success_after_failures: self.success_after_failures,
            attempts_per_hour: per_hour(self.failed, self.last_ms - self.start_ms),
            connections: self.connections,
            probes: self.probes,
            protocols: Protocol::ALL.into_iter().filter(|p| self.protocols & (1 << p.code() as u8) != 0).collect(),
        }
    }

    /// The fingerprint the model scores for a source: the hour it started,
    /// the window's span, the commands of its sessions, its failed logins,
    /// its protocol (TOR wins), no typing speed.
    pub fn fingerprint(&self, tor: bool) -> Fingerprint {
        let protocol = if tor {
            Protocol::Tor
        } else if self.protocols & (1 << Protocol::Ssh.code() as u8) != 0 {
            Protocol::Ssh
        } else if self.protocols & (1 << Protocol::Ftp.code() as u8) != 0 {
            Protocol::Ftp
        } else if self.protocols & (1 << Protocol::Https.code() as u8) != 0 {
            Protocol::Https
        } else {
            Protocol::Ssh
        };
        Fingerprint {
            login_hour: local_hour(self.start_ms, self.offset_secs),
            session_duration_min: ((self.last_ms - self.start_ms).max(0) as f64 / 60_000.0) as f32,
            commands: self.commands,
            failed_logins: self.failed,
            protocol,
            typing_speed_wpm: None,
            risky_commands: Some(self.risky),
        }
    }
}

/// Failures per hour over `span_ms` (at least a minute).
fn per_hour(failures: u32, span_ms: i64) -> f32 {
    let hours = (span_ms.max(60_000) as f64) / 3_600_000.0;
    (f64::from(failures) / hours) as f32
}

#[derive(Debug)]
pub(crate) struct DeviceWindow {
    pub start_ms: i64,
    pub last_ms: i64,
    pub offset_secs: i32,
    failed: u32,
    sources: rustc_hash::FxHashMap<IpAddr, u32>,
    users: FxHashSet<u64>,
    successes: u32,
    successes_after_failures: u32,
}

impl DeviceWindow {
    pub fn new(ts_ms: i64, offset_secs: i32) -> DeviceWindow {
        DeviceWindow {
            start_ms: ts_ms,
            last_ms: ts_ms,
            offset_secs,
            failed: 0,
            sources: Default::default(),
            users: FxHashSet::default(),
            successes: 0,
            successes_after_failures: 0,
        }
    }

    pub fn failed(&mut self, ts_ms: i64, ip: Option<IpAddr>, user: Option<u64>, count: u32) {
        self.last_ms = self.last_ms.max(ts_ms);
        self.failed = self.failed.saturating_add(count);
        if let Some(ip) = ip {
            if self.sources.len() < MAX_SOURCES_TRACKED || self.sources.contains_key(&ip) {
                *self.sources.entry(ip).or_default() += count;
            }
        }
        if let Some(u) = user {
            if self.users.len() < MAX_USERS_TRACKED {
                self.users.insert(u);
            }
        }
    }

    /// Takes back `count` failed attempts from `ip` (see [`SourceWindow::retract_failed`]).
    pub fn retract_failed(&mut self, ip: Option<IpAddr>, count: u32) {
        self.failed = self.failed.saturating_sub(count);
        if let Some(ip) = ip {
            if let Some(n) = self.sources.get_mut(&ip) {
                *n = n.saturating_sub(count);
                if *n == 0 {
                    self.sources.remove(&ip);
                }
            }
        }
    }

    pub fn success(&mut self, ts_ms: i64, ip: Option<IpAddr>) {
        self.last_ms = self.last_ms.max(ts_ms);
        self.successes += 1;
        if ip.is_some_and(|ip| self.sources.contains_key(&ip)) {
            self.successes_after_failures += 1;
        }
    }

    pub fn has_failures(&self) -> bool {
        self.failed > 0
    }

    pub fn stats(&self) -> DeviceStats {
        DeviceStats {
            failed_logins: self.failed,
            failing_sources: self.sources.len() as u32,
            quiet_sources: self.sources.values().filter(|&&n| n <= QUIET_SOURCE_FAILURES).count() as u32,
            distinct_users: self.users.len() as u32,
            successes: self.successes,
            successes_after_failures: self.successes_after_failures,
            attempts_per_hour: per_hour(self.failed, self.last_ms - self.start_ms),
        }
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            login_hour: local_hour(self.start_ms, self.offset_secs),
            session_duration_min: ((self.last_ms - self.start_ms).max(0) as f64 / 60_000.0) as f32,
            commands: 0,
            failed_logins: self.failed,
            protocol: Protocol::Ssh,
            typing_speed_wpm: None,
            risky_commands: Some(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_window_counts_and_rates() {
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let mut w = SourceWindow::new(ip, 0, 0);
        w.touch(0, Protocol::Ssh);
        for (i, user) in ["root", "admin", "root", "a", "b", "c", "d"].iter().enumerate() {
            w.user(Some(user), crate::analyze::hash_user(user));
            w.failed(1, i == 1);
        }
        w.touch(2 * 3_600_000, Protocol::Ssh);
        assert!(w.success());
        let s = w.stats();
        assert_eq!((s.failed_logins, s.invalid_user_attempts, s.distinct_users, s.successes), (7, 1, 6, 1));
        assert_eq!(s.users_sample, vec!["root", "admin", "a", "b", "c"]);
        assert!(s.success_after_failures);
        assert_eq!(s.attempts_per_hour, 3.5);
        assert_eq!(s.protocols, vec![Protocol::Ssh]);
        assert_eq!(w.fingerprint(true).protocol, Protocol::Tor);
        assert_eq!(w.fingerprint(false).session_duration_min, 120.0);
    }

    #[test]
    fn device_window_sees_many_quiet_sources() {
        let mut d = DeviceWindow::new(0, 0);
        for i in 0..200u32 {
            let ip = IpAddr::from([198, 51, (i / 256) as u8, (i % 256) as u8]);
            d.failed(i64::from(i) * 1000, Some(ip), Some(7), 1);
        }
        d.success(300_000, Some(IpAddr::from([198, 51, 0, 3])));
        let s = d.stats();
        assert_eq!((s.failed_logins, s.failing_sources, s.quiet_sources, s.distinct_users), (200, 200, 200, 1));
        assert_eq!(s.successes_after_failures, 1);
    }
}
