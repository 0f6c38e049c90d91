//! Campaign detection: the brute force that per-address, per-minute counters
//! (fail2ban's "5 failures in 10 minutes") miss by construction.
//!
//! - **Slow brute force**: one address, a few attempts an hour, all day. Each
//!   source keeps a 24-slot ring of failures per hour, so a day of history
//!   costs under 400 bytes per source, and the number of sources is capped
//!   (the quietest, stalest is forgotten first, so a flood of one-shot
//!   addresses cannot push a patient attacker out).
//! - **Distributed brute force**: many addresses, each trying once or twice,
//!   against one device within an hour. A ring of twelve 5-minute buckets
//!   counts the distinct failing sources of the last hour; far above the
//!   device's usual count per hour (and above an absolute floor) it is one
//!   campaign, reported once, whatever the number of addresses.
//!
//! A user who mistypes a password and then logs in from the same address is
//! not an attacker: those failures are forgiven when the success arrives
//! (within [`CampaignConfig::typo_window_secs`], at most
//! [`CampaignConfig::typo_max_failures`] of them), so an office NAT where
//! everyone mistypes once a day never adds up to a campaign.
//!
//! [`ThresholdRule`] is the fail2ban-style rule itself, kept as the baseline
//! the model and these detectors are compared with.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use bfp_common::{Fingerprint, Protocol};
use bfp_logs::AuthAttempt;

/// Hours of history per source (the slow-brute-force window).
pub const SOURCE_HOURS: usize = 24;
/// Buckets of the distributed window.
const BUCKETS: usize = 12;
/// Seconds per bucket: 12 × 5 min = the last hour.
const BUCKET_SECS: i64 = 300;
/// The distributed window, seconds.
pub const DISTRIBUTED_WINDOW_SECS: i64 = BUCKETS as i64 * BUCKET_SECS;
/// Distinct users remembered per source (more are counted as "8+").
const USERS_PER_SOURCE: usize = 8;
/// Recent failures remembered per source for forgiving typos.
const RECENT_PER_SOURCE: usize = 8;
/// Failures per hour that count towards a slow brute force: above it, the
/// hour is a fast burst (fail2ban's job and the model's), and only this many
/// of its failures add to the slow tally.
const SLOW_HOURLY_CAP: u16 = 5;
/// Addresses listed in a distributed campaign's alert.
const SAMPLE_SOURCES: usize = 8;
/// Trackers looked at to choose one to forget when the table is full: the
/// weakest of a sample, so a flood of new addresses costs O(1) each, not a
/// scan of the whole table.
const EVICTION_SAMPLE: usize = 32;
/// Distinct users remembered for a distributed campaign.
const USERS_PER_CAMPAIGN: usize = 64;

/// Tuning of the campaign detectors (from the agent's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignConfig {
    /// Sources tracked at most (under 400 bytes each: 1024 cost under 0.4 MB).
    /// Default 1024.
    pub max_sources: usize,
    /// Slow brute force: fewest failed logins from one source in the last
    /// 24 hours. Default 10.
    pub slow_min_failures: u32,
    /// Slow brute force: fewest distinct hours (of the last 24) in which the
    /// source failed; spread, not a single burst. Default 4.
    pub slow_min_hours: u32,
    /// Slow brute force: an address whose logins succeed this often (share
    /// of successes among successes and counted failures in the window) is
    /// where people work from, not an attacker. Default 0.2.
    pub slow_max_success_share: f32,
    /// Failures of a user from an address followed within this many seconds
    /// by that user's success from the same address are typos. Default 600.
    pub typo_window_secs: i64,
    /// At most this many failures before a success are forgiven as typos;
    /// more is a guessed password. Default 5.
    pub typo_max_failures: u32,
    /// Distributed brute force: fewest distinct failing sources in one hour.
    /// Default 50.
    pub distributed_min_sources: u32,
    /// Distributed brute force: and at least this many times the device's
    /// usual number of failing sources per hour (an internet-facing host
    /// always has some). Default 4.0.
    pub distributed_factor: f32,
    /// Weight of the newest hour in the usual rate. Default 0.1.
    pub ewma_alpha: f32,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        CampaignConfig {
            max_sources: 1024,
            slow_min_failures: 10,
            slow_min_hours: 4,
            slow_max_success_share: 0.2,
            typo_window_secs: 600,
            typo_max_failures: 5,
            distributed_min_sources: 50,
            distributed_factor: 4.0,
            ewma_alpha: 0.1,
        }
    }
}

/// What kind of campaign an alert reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    /// One address, a few attempts an hour over many hours.
    SlowBruteForce,
    /// Many addresses against this device within an hour.
    DistributedBruteForce,
}

/// One detected campaign, reported once when it is detected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignAlert {
    /// Slow or distributed.
    pub kind: CampaignKind,
    /// The attacking address of a slow brute force; `None` for a distributed one.
    pub source_ip: Option<IpAddr>,
    /// First failed attempt counted, unix seconds.
    pub start: i64,
    /// Last failed attempt counted (at detection), unix seconds.
    pub end: i64,
    /// Failed logins counted.
    pub failed_logins: u32,
    /// Distinct addresses (1 for a slow brute force).
    pub sources: u32,
    /// Distinct user names tried (a floor: counting stops at a small bound).
    pub distinct_users: u32,
    /// Attempts for users that do not exist.
    pub invalid_user_attempts: u32,
    /// Distinct hours with failures.
    pub active_hours: u32,
    /// Some of the addresses (all of them when few).
    pub sample_sources: Vec<IpAddr>,
    /// Protocol of the first attempt.
    pub protocol: Protocol,
    /// Why, in an operator's words.
    pub reasons: Vec<String>,
}

impl CampaignAlert {
    /// A device- or source-level fingerprint of the campaign, so it can be
    /// scored, stored and listed like any other: the failed logins, over the
    /// campaign's span, no commands.
    pub fn fingerprint(&self, utc_offset_secs: i32) -> Fingerprint {
        let local = self.start + i64::from(utc_offset_secs);
        Fingerprint {
            login_hour: local.rem_euclid(86_400).div_euclid(3600) as u8,
            session_duration_min: ((self.end - self.start).max(0) as f64 / 60.0) as f32,
            commands: 0,
            failed_logins: self.failed_logins,
            protocol: self.protocol,
            typing_speed_wpm: None,
            risky_commands: Some(0),
        }
    }
}

fn unix_hour(t: i64) -> u32 {
    t.div_euclid(3600).clamp(0, i64::from(u32::MAX)) as u32
}

fn bucket_of(t: i64) -> u32 {
    t.div_euclid(BUCKET_SECS).clamp(0, i64::from(u32::MAX)) as u32
}

/// What the campaign detector holds against one source (see
/// [`CampaignDetector::source_summary`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceSummary {
    /// Failed logins in the current clock hour.
    pub failures_last_hour: u32,
    /// Failed logins in the last 24 hours.
    pub failures_last_day: u32,
    /// Distinct hours with failures in the last 24 hours.
    pub failure_hours: u32,
    /// Distinct user names tried (capped at 8).
    pub users_tried: u32,
    /// The campaign the source was judged part of.
    pub campaign: Option<CampaignKind>,
}

/// What is remembered of one source: under 400 bytes (see the test).
#[derive(Debug, Clone)]
struct SourceTrack {
    ip: IpAddr,
    first_failure: i64,
    last_failure: i64,
    /// Unix hour each slot counts (slot = hour % 24).
    slot_hour: [u32; SOURCE_HOURS],
    slot_failures: [u16; SOURCE_HOURS],
    slot_successes: [u16; SOURCE_HOURS],
    users: heapless::Vec<u32, USERS_PER_SOURCE>,
    invalid: u32,
    /// (time, user hash) of the latest failures, for forgiving typos.
    /// Times are unix seconds as u32 (good until 2106): half the bytes.
    recent: heapless::Deque<(u32, u32), RECENT_PER_SOURCE>,
    /// The distributed bucket this source was counted in (while in the window).
    counted_bucket: Option<u32>,
    protocol: Protocol,
    /// The campaign this source was judged part of.
    flagged: Option<CampaignKind>,
}

impl SourceTrack {
    fn new(ip: IpAddr, at: i64, protocol: Protocol) -> Self {
        SourceTrack {
            ip,
            first_failure: at,
            last_failure: at,
            slot_hour: [0; SOURCE_HOURS],
            slot_failures: [0; SOURCE_HOURS],
            slot_successes: [0; SOURCE_HOURS],
            users: heapless::Vec::new(),
            invalid: 0,
            recent: heapless::Deque::new(),
            counted_bucket: None,
            protocol,
            flagged: None,
        }
    }

    fn live(&self, now_hour: u32) -> impl Iterator<Item = usize> + '_ {
        let oldest = now_hour.saturating_sub(SOURCE_HOURS as u32 - 1);
        (0..SOURCE_HOURS).filter(move |&i| self.slot_hour[i] >= oldest && self.slot_hour[i] <= now_hour)
    }

    fn live_slots(&self, now_hour: u32) -> impl Iterator<Item = u16> + '_ {
        self.live(now_hour).map(|i| self.slot_failures[i])
    }

    /// Successful logins in the last 24 hours.
    fn successes(&self, now_hour: u32) -> u32 {
        self.live(now_hour).map(|i| u32::from(self.slot_successes[i])).sum()
    }

    /// Failures in the last 24 hours and the hours they fall in.
    fn window(&self, now_hour: u32) -> (u32, u32) {
        self.live_slots(now_hour).filter(|&n| n > 0).fold((0, 0), |(f, h), n| (f + u32::from(n), h + 1))
    }

    /// The slot of `at`'s hour, emptied if it held an older hour; `None`
    /// for a line more than a day late (outside the window).
    fn slot(&mut self, at: i64) -> Option<usize> {
        let hour = unix_hour(at);
        let slot = hour as usize % SOURCE_HOURS;
        if self.slot_hour[slot] != hour {
            if self.slot_hour[slot] > hour {
                return None;
            }
            self.slot_hour[slot] = hour;
            self.slot_failures[slot] = 0;
            self.slot_successes[slot] = 0;
        }
        Some(slot)
    }

    fn add_failures(&mut self, at: i64, n: u32) {
        if let Some(slot) = self.slot(at) {
            self.slot_failures[slot] = self.slot_failures[slot].saturating_add(n.min(u32::from(u16::MAX)) as u16);
        }
    }

    fn add_success(&mut self, at: i64) {
        if let Some(slot) = self.slot(at) {
            self.slot_successes[slot] = self.slot_successes[slot].saturating_add(1);
        }
    }

    fn remove_failure(&mut self, at: i64) {
        let hour = unix_hour(at);
        let slot = hour as usize % SOURCE_HOURS;
        if self.slot_hour[slot] == hour {
            self.slot_failures[slot] = self.slot_failures[slot].saturating_sub(1);
        }
    }
}

/// The live state of a distributed campaign.
#[derive(Debug, Clone)]
struct Active {
    alert: CampaignAlert,
    users: heapless::Vec<u32, USERS_PER_CAMPAIGN>,
}

/// The campaign detectors of one device. Feed every authentication attempt
/// with [`CampaignDetector::observe`]; take alerts with
/// [`CampaignDetector::drain_alerts`].
#[derive(Debug, Clone)]
pub struct CampaignDetector {
    config: CampaignConfig,
    /// Latest time seen (log time, not wall time).
    now: i64,
    sources: Vec<SourceTrack>,
    /// Where each source's tracker is in `sources`.
    index: rustc_hash::FxHashMap<IpAddr, u32>,
    /// Where the next eviction sample starts.
    cursor: usize,
    bucket_index: [u32; BUCKETS],
    bucket_sources: [u32; BUCKETS],
    bucket_failures: [u32; BUCKETS],
    /// Unix hour being counted for the usual rate, and its new failing sources.
    hour: u32,
    hour_sources: u32,
    hour_in_campaign: bool,
    usual_mean: f32,
    usual_hours: u32,
    active: Option<Active>,
    alerts: Vec<CampaignAlert>,
}

impl CampaignDetector {
    /// A detector with no history.
    pub fn new(config: CampaignConfig) -> Self {
        let mut config = config;
        config.max_sources = config.max_sources.max(1);
        CampaignDetector {
            config,
            now: i64::MIN,
            sources: Vec::new(),
            index: Default::default(),
            cursor: 0,
            bucket_index: [0; BUCKETS],
            bucket_sources: [0; BUCKETS],
            bucket_failures: [0; BUCKETS],
            hour: 0,
            hour_sources: 0,
            hour_in_campaign: false,
            usual_mean: 0.0,
            usual_hours: 0,
            active: None,
            alerts: Vec::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &CampaignConfig {
        &self.config
    }

    /// Sources tracked now (never more than `max_sources`).
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// Whether `ip` has been judged part of a campaign (slow brute force, or
    /// a failing address during a distributed one).
    pub fn is_suspicious_source(&self, ip: IpAddr) -> bool {
        self.campaign_of(ip).is_some()
    }

    /// The kind of campaign `ip` was judged part of, if any.
    pub fn campaign_of(&self, ip: IpAddr) -> Option<CampaignKind> {
        self.index.get(&ip).and_then(|&i| self.sources[i as usize].flagged)
    }

    /// The distributed campaign under way, with its counts so far.
    pub fn active_campaign(&self) -> Option<&CampaignAlert> {
        self.active.as_ref().map(|a| &a.alert)
    }

    /// What this detector holds against `ip` now (its clock is the latest
    /// attempt seen): the source context of feature schema 2. All zeros for
    /// an address it does not track (never failed, or forgotten). Failures
    /// forgiven as a user's typos are not counted.
    pub fn source_summary(&self, ip: IpAddr) -> SourceSummary {
        let Some(&i) = self.index.get(&ip) else { return SourceSummary::default() };
        let track = &self.sources[i as usize];
        let now_hour = unix_hour(self.now.max(0));
        let (failures_last_day, failure_hours) = track.window(now_hour);
        let slot = now_hour as usize % SOURCE_HOURS;
        let failures_last_hour =
            if track.slot_hour[slot] == now_hour { u32::from(track.slot_failures[slot]) } else { 0 };
        SourceSummary {
            failures_last_hour,
            failures_last_day,
            failure_hours,
            users_tried: track.users.len() as u32,
            campaign: track.flagged,
        }
    }

    /// Distinct failing sources in the last hour.
    pub fn failing_sources_last_hour(&self) -> u32 {
        self.live_buckets().map(|i| self.bucket_sources[i]).sum()
    }

    /// Alerts raised since the last call.
    pub fn drain_alerts(&mut self) -> Vec<CampaignAlert> {
        std::mem::take(&mut self.alerts)
    }

    fn live_buckets(&self) -> impl Iterator<Item = usize> + '_ {
        let now = bucket_of(self.now.max(0));
        let oldest = now.saturating_sub(BUCKETS as u32 - 1);
        (0..BUCKETS).filter(move |&i| self.bucket_index[i] >= oldest && self.bucket_index[i] <= now)
    }

    fn bucket_slot(&mut self, at: i64) -> Option<usize> {
        let b = bucket_of(at);
        let i = b as usize % BUCKETS;
        if self.bucket_index[i] != b {
            if self.bucket_index[i] > b {
                return None; // older than the window
            }
            self.bucket_index[i] = b;
            self.bucket_sources[i] = 0;
            self.bucket_failures[i] = 0;
        }
        Some(i)
    }

    /// Moves the clock to `at`, closing finished hours into the usual rate.
    fn advance(&mut self, at: i64) {
        if at <= self.now {
            return;
        }
        self.now = at;
        let hour = unix_hour(at);
        if hour > self.hour {
            if self.hour != 0 {
                // An hour under attack is not the usual; quiet hours in
                // between count as zeros (a day of them at most).
                if !self.hour_in_campaign {
                    self.learn_hour(self.hour_sources as f32);
                }
                for _ in 0..(hour - self.hour - 1).min(24) {
                    self.learn_hour(0.0);
                }
            }
            self.hour = hour;
            self.hour_sources = 0;
            self.hour_in_campaign = self.active.is_some();
        }
        // A campaign ends when the last hour falls back under half its threshold.
        if self.active.is_some() && self.failing_sources_last_hour() * 2 < self.distributed_threshold() {
            self.active = None;
        }
    }

    fn learn_hour(&mut self, x: f32) {
        let alpha = self.config.ewma_alpha;
        self.usual_mean = if self.usual_hours == 0 { x } else { self.usual_mean + alpha * (x - self.usual_mean) };
        self.usual_hours = self.usual_hours.saturating_add(1);
    }

    fn distributed_threshold(&self) -> u32 {
        let relative = (self.usual_mean * self.config.distributed_factor).ceil() as u32;
        self.config.distributed_min_sources.max(relative)
    }

    /// Feeds one attempt (any order within the last hour is fine; older
    /// lines count in the current hour's figures only where they still fit).
    pub fn observe(&mut self, attempt: &AuthAttempt) {
        self.advance(attempt.at);
        if attempt.success {
            self.success(attempt);
        } else {
            self.failure(attempt);
        }
    }

    fn success(&mut self, a: &AuthAttempt) {
        let idx = self.track(a);
        let cfg = &self.config;
        let track = &mut self.sources[idx];
        track.add_success(a.at);
        if track.flagged.is_some() {
            return; // a campaign that got in stays a campaign
        }
        let Some(user) = a.user else { return };
        let hash = user as u32;
        let typos: heapless::Vec<u32, RECENT_PER_SOURCE> = track
            .recent
            .iter()
            .filter(|(t, u)| *u == hash && a.at - i64::from(*t) <= cfg.typo_window_secs)
            .map(|(t, _)| *t)
            .collect();
        if typos.is_empty() || typos.len() as u32 > cfg.typo_max_failures {
            return;
        }
        for &t in &typos {
            track.remove_failure(i64::from(t));
        }
        let mut keep: heapless::Deque<(u32, u32), RECENT_PER_SOURCE> = heapless::Deque::new();
        for &(t, u) in track.recent.iter().filter(|(t, u)| !(*u == hash && typos.contains(t))) {
            let _ = keep.push_back((t, u)); // a subset of a deque of the same size: always fits
        }
        track.recent = keep;
        // Nothing left against this source: it was never an attacker, so it
        // leaves the distributed count too.
        if track.window(unix_hour(self.now)).0 == 0 {
            let counted = track.counted_bucket.take();
            let n = typos.len() as u32;
            if let Some(b) = counted {
                let i = b as usize % BUCKETS;
                if self.bucket_index[i] == b {
                    self.bucket_sources[i] = self.bucket_sources[i].saturating_sub(1);
                    self.bucket_failures[i] = self.bucket_failures[i].saturating_sub(n);
                }
                if unix_hour(i64::from(b) * BUCKET_SECS) == self.hour {
                    self.hour_sources = self.hour_sources.saturating_sub(1);
                }
            }
        }
    }

    /// The index of `a.source`'s tracker, made (forgetting another if full)
    /// when there is none.
    fn track(&mut self, a: &AuthAttempt) -> usize {
        if let Some(&i) = self.index.get(&a.source) {
            return i as usize;
        }
        let len = self.sources.len();
        if len >= self.config.max_sources {
            // Forget the source with the fewest failures in the window (then
            // the stalest) among a sample: one-shot addresses replace each
            // other, a patient attacker stays.
            let now_hour = unix_hour(self.now);
            let start = self.cursor % len;
            let victim = (0..EVICTION_SAMPLE.min(len))
                .map(|k| (start + k) % len)
                .min_by_key(|&i| {
                    let s = &self.sources[i];
                    (s.flagged.is_some(), s.window(now_hour).0, s.last_failure)
                })
                .unwrap_or(0);
            self.cursor = start + EVICTION_SAMPLE;
            let gone = self.sources.swap_remove(victim);
            self.index.remove(&gone.ip);
            if let Some(moved) = self.sources.get(victim) {
                self.index.insert(moved.ip, victim as u32);
            }
        }
        self.sources.push(SourceTrack::new(a.source, a.at, a.protocol));
        let i = self.sources.len() - 1;
        self.index.insert(a.source, i as u32);
        i
    }

    fn failure(&mut self, a: &AuthAttempt) {
        let n = a.count.max(1);
        let now_hour = unix_hour(self.now);
        let idx = self.track(a);

        // Distributed window: a source counts once per hour of activity.
        let bucket = self.bucket_slot(a.at);
        let track = &mut self.sources[idx];
        let newly_failing =
            track.counted_bucket.is_none_or(|b| i64::from(bucket_of(a.at)) - i64::from(b) >= BUCKETS as i64);
        if track.window(now_hour).0 == 0 {
            track.first_failure = a.at;
        }
        track.last_failure = track.last_failure.max(a.at);
        track.add_failures(a.at, n);
        if a.invalid_user {
            track.invalid = track.invalid.saturating_add(n);
        }
        let hash = a.user.map(|u| u as u32);
        if let Some(h) = hash {
            if !track.users.contains(&h) {
                let _ = track.users.push(h); // full: "8 or more" is enough to know
            }
            if track.recent.is_full() {
                track.recent.pop_front();
            }
            let _ = track.recent.push_back((a.at.clamp(0, i64::from(u32::MAX)) as u32, h));
        }
        if let Some(i) = bucket {
            self.bucket_failures[i] = self.bucket_failures[i].saturating_add(n);
            if newly_failing {
                self.bucket_sources[i] += 1;
                self.sources[idx].counted_bucket = Some(self.bucket_index[i]);
                if unix_hour(a.at) == self.hour {
                    self.hour_sources += 1;
                }
            }
        }

        self.check_slow(idx);
        self.check_distributed(idx, newly_failing, n, hash);
    }

    fn check_slow(&mut self, idx: usize) {
        let cfg = &self.config;
        let now_hour = unix_hour(self.now);
        let t = &self.sources[idx];
        if t.flagged.is_some() {
            return;
        }
        let (failures, hours) = t.window(now_hour);
        // Spread, not a burst: each hour adds at most SLOW_HOURLY_CAP.
        let slow: u32 = t.live_slots(now_hour).map(|n| u32::from(n.min(SLOW_HOURLY_CAP))).sum();
        if slow < cfg.slow_min_failures || hours < cfg.slow_min_hours {
            return;
        }
        let successes = t.successes(now_hour);
        if successes as f32 >= cfg.slow_max_success_share * (successes + slow) as f32 {
            return; // people log in from here all the time: their typos add up, no attack
        }
        let busiest = t.live_slots(now_hour).max().unwrap_or(0);
        let users = t.users.len();
        let users_text =
            if users >= USERS_PER_SOURCE { format!("{users}+ users") } else { plural(users as u32, "user") };
        let reasons = vec![
            format!(
                "slow brute force from {}: {failures} failed logins over {hours} distinct hours, at most {busiest} in one hour",
                t.ip
            ),
            format!("{users_text} tried; each hour stays under fail2ban's 5 failures in 10 minutes"),
        ];
        let reasons = if busiest >= 5 { reasons[..1].to_vec() } else { reasons };
        let alert = CampaignAlert {
            kind: CampaignKind::SlowBruteForce,
            source_ip: Some(t.ip),
            start: t.first_failure,
            end: t.last_failure,
            failed_logins: failures,
            sources: 1,
            distinct_users: users as u32,
            invalid_user_attempts: t.invalid,
            active_hours: hours,
            sample_sources: vec![t.ip],
            protocol: t.protocol,
            reasons,
        };
        self.sources[idx].flagged = Some(CampaignKind::SlowBruteForce);
        self.alerts.push(alert);
    }

    fn check_distributed(&mut self, idx: usize, newly_failing: bool, n: u32, user: Option<u32>) {
        if let Some(active) = &mut self.active {
            // Under way: count this attempt into the one campaign.
            let a = &mut active.alert;
            a.failed_logins = a.failed_logins.saturating_add(n);
            a.end = a.end.max(self.sources[idx].last_failure);
            if newly_failing {
                a.sources += 1;
                if a.sample_sources.len() < SAMPLE_SOURCES {
                    a.sample_sources.push(self.sources[idx].ip);
                }
            }
            if let Some(h) = user {
                if !active.users.contains(&h) && active.users.push(h).is_ok() {
                    active.alert.distinct_users += 1;
                }
            }
            self.sources[idx].flagged.get_or_insert(CampaignKind::DistributedBruteForce);
            return;
        }
        let sources = self.failing_sources_last_hour();
        let threshold = self.distributed_threshold();
        if sources < threshold {
            return;
        }
        let since = self.now - DISTRIBUTED_WINDOW_SECS;
        let failures: u32 = self.live_buckets().map(|i| self.bucket_failures[i]).sum();
        let mut users: heapless::Vec<u32, USERS_PER_CAMPAIGN> = heapless::Vec::new();
        let mut sample = Vec::new();
        let mut start = self.now;
        let mut invalid = 0u32;
        let mut protocol = self.sources[idx].protocol;
        for s in self.sources.iter_mut().filter(|s| s.last_failure > since) {
            s.flagged.get_or_insert(CampaignKind::DistributedBruteForce);
            if s.first_failure < start {
                start = s.first_failure.max(since);
                protocol = s.protocol;
            }
            invalid = invalid.saturating_add(s.invalid);
            if sample.len() < SAMPLE_SOURCES {
                sample.push(s.ip);
            }
            for &u in &s.users {
                if !users.contains(&u) {
                    let _ = users.push(u);
                }
            }
        }
        let minutes = ((self.now - start).max(60) + 59) / 60;
        let per_source = failures as f32 / sources.max(1) as f32;
        let usual = if self.usual_hours > 0 {
            format!("; this device usually sees about {} failing addresses an hour", self.usual_mean.round() as u32)
        } else {
            String::new()
        };
        let alert = CampaignAlert {
            kind: CampaignKind::DistributedBruteForce,
            source_ip: None,
            start,
            end: self.now,
            failed_logins: failures,
            sources,
            distinct_users: users.len() as u32,
            invalid_user_attempts: invalid,
            active_hours: 1,
            sample_sources: sample,
            protocol,
            reasons: vec![
                format!(
                    "distributed brute force: {sources} addresses failed to log in to this device within {minutes} min, \
                     {per_source:.1} attempts each on average{usual}"
                ),
                format!("{} tried across the campaign", plural(users.len() as u32, "user name")),
            ],
        };
        self.hour_in_campaign = true;
        self.alerts.push(alert.clone());
        self.active = Some(Active { alert, users });
    }
}

fn plural(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The fail2ban-style rule: an address is banned after `max_failures`
/// failed logins within `window_secs` (fail2ban's sshd defaults: 5 in 10
/// minutes). Kept as the baseline to compare the model and the campaign
/// detectors with; its memory is bounded by `max_sources`.
#[derive(Debug, Clone)]
pub struct ThresholdRule {
    max_failures: usize,
    window_secs: i64,
    max_sources: usize,
    /// Per source: the times of its latest failures (at most `max_failures`).
    recent: Vec<(IpAddr, std::collections::VecDeque<i64>, bool)>,
}

impl ThresholdRule {
    /// fail2ban's defaults: 5 failures in 600 seconds.
    pub fn fail2ban() -> Self {
        ThresholdRule::new(5, 600, 4096)
    }

    /// A rule of `max_failures` failures in `window_secs`, remembering at most
    /// `max_sources` addresses (the stalest is forgotten).
    pub fn new(max_failures: usize, window_secs: i64, max_sources: usize) -> Self {
        ThresholdRule {
            max_failures: max_failures.max(1),
            window_secs,
            max_sources: max_sources.max(1),
            recent: Vec::new(),
        }
    }

    /// Counts one failed login from `source` at `at`; returns whether the
    /// source is banned (now or before).
    pub fn failure(&mut self, source: IpAddr, at: i64) -> bool {
        let idx = match self.recent.iter().position(|(ip, _, _)| *ip == source) {
            Some(i) => i,
            None => {
                if self.recent.len() >= self.max_sources {
                    let victim = self
                        .recent
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (_, times, banned))| (*banned, times.back().copied().unwrap_or(i64::MIN)))
                        .map(|(i, _)| i)
                        .unwrap_or(0);
                    self.recent.swap_remove(victim);
                }
                self.recent.push((source, std::collections::VecDeque::new(), false));
                self.recent.len() - 1
            }
        };
        let (_, times, banned) = &mut self.recent[idx];
        times.push_back(at);
        while times.len() > self.max_failures {
            times.pop_front();
        }
        if times.len() == self.max_failures && at - times[0] <= self.window_secs {
            *banned = true;
        }
        *banned
    }

    /// Whether `source` has been banned.
    pub fn is_banned(&self, source: IpAddr) -> bool {
        self.recent.iter().any(|(ip, _, banned)| *ip == source && *banned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-02 00:00:00 UTC.
    const T0: i64 = 1_762_041_600;

    fn fail(at: i64, ip: IpAddr, user: &str) -> AuthAttempt {
        AuthAttempt {
            at,
            source: ip,
            user: Some(bfp_logs::analyze::hash_user(user)),
            success: false,
            invalid_user: false,
            count: 1,
            protocol: Protocol::Ssh,
        }
    }

    fn ok(at: i64, ip: IpAddr, user: &str) -> AuthAttempt {
        AuthAttempt { success: true, ..fail(at, ip, user) }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn slow_brute_force_of_two_attempts_an_hour_over_a_day_flags_its_source() {
        let mut d = CampaignDetector::new(CampaignConfig::default());
        let mut f2b = ThresholdRule::fail2ban();
        let attacker = ip("203.0.113.7");
        let users = ["root", "admin", "pi", "ubnt"];
        let mut alerts = Vec::new();
        for hour in 0..24 {
            for k in 0..2 {
                let at = T0 + hour * 3600 + k * 1800 + 17;
                d.observe(&fail(at, attacker, users[(hour * 2 + k) as usize % 4]));
                assert!(!f2b.failure(attacker, at), "two an hour never trips 5 in 10 minutes");
                alerts.extend(d.drain_alerts());
            }
        }
        assert!(d.is_suspicious_source(attacker));
        assert!(!f2b.is_banned(attacker));
        assert_eq!(alerts.len(), 1, "one alert for one source: {alerts:?}");
        let a = &alerts[0];
        assert_eq!(a.kind, CampaignKind::SlowBruteForce);
        assert_eq!(a.source_ip, Some(attacker));
        // Raised as soon as 10 failures spread over 4+ hours: after hour 5.
        assert_eq!((a.failed_logins, a.active_hours, a.distinct_users), (10, 5, 4));
        assert_eq!(a.start, T0 + 17);
        assert_eq!(
            a.reasons,
            vec![
                "slow brute force from 203.0.113.7: 10 failed logins over 5 distinct hours, at most 2 in one hour",
                "4 users tried; each hour stays under fail2ban's 5 failures in 10 minutes"
            ]
        );
        let fp = a.fingerprint(3600);
        assert_eq!((fp.login_hour, fp.failed_logins, fp.commands), (1, 10, 0));
        assert!(d.active_campaign().is_none(), "one address is not a distributed campaign");
    }

    #[test]
    fn two_hundred_addresses_trying_once_within_an_hour_are_one_campaign() {
        let mut d = CampaignDetector::new(CampaignConfig::default());
        // A day of an exposed host's usual background: 3 scanners an hour.
        for hour in 0..24 {
            for k in 0..3u32 {
                let at = T0 + hour * 3600 + i64::from(k) * 200; // first 10 minutes of each hour
                d.observe(&fail(
                    at,
                    IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, (hour as u8) * 3 + k as u8)),
                    "root",
                ));
            }
        }
        assert!(d.drain_alerts().is_empty());
        let start = T0 + 24 * 3600;
        let users = ["root", "admin", "user", "test", "oracle"];
        for i in 0..200u32 {
            let at = start + i64::from(i) * 17; // 200 addresses over 57 minutes
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0xC633_6400 + i)); // 198.51.100.0 + i
            d.observe(&fail(at, addr, users[i as usize % 5]));
        }
        let alerts = d.drain_alerts();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!(a.kind, CampaignKind::DistributedBruteForce);
        assert_eq!(a.source_ip, None);
        assert_eq!((a.sources, a.failed_logins), (50, 50), "raised at the threshold");
        assert_eq!(a.sample_sources.len(), 8);
        assert!(
            a.reasons[0].starts_with("distributed brute force: 50 addresses failed to log in to this device within")
        );
        // The campaign keeps counting as one.
        let live = d.active_campaign().unwrap();
        assert_eq!((live.sources, live.failed_logins, live.distinct_users), (200, 200, 5));
        assert!(d.is_suspicious_source(IpAddr::V4(std::net::Ipv4Addr::from(0xC633_6400 + 199))));
        assert!(!d.is_suspicious_source(ip("192.0.2.1")), "yesterday's scanner is not part of it");
        assert_eq!(d.failing_sources_last_hour(), 200);
        // Two hours later it is over; a new wave is a new campaign.
        let later = start + 3 * 3600;
        d.observe(&fail(later, ip("192.0.2.200"), "root"));
        assert!(d.active_campaign().is_none());
        assert!(d.drain_alerts().is_empty());
    }

    #[test]
    fn a_few_users_mistyping_once_each_over_a_day_is_no_campaign() {
        let mut d = CampaignDetector::new(CampaignConfig::default());
        // An office NAT: 12 colleagues, each mistypes once then logs in, from
        // 08:00 to 19:00; plus 5 people at home doing the same.
        let office = ip("198.51.100.1");
        for i in 0..12i64 {
            let user = format!("user{i}");
            let at = T0 + 8 * 3600 + i * 3300;
            d.observe(&fail(at, office, &user));
            d.observe(&ok(at + 20, office, &user));
        }
        for i in 0..5u8 {
            let home = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 10 + i));
            let at = T0 + 20 * 3600 + i64::from(i) * 600;
            d.observe(&fail(at, home, "alice"));
            d.observe(&fail(at + 5, home, "alice"));
            d.observe(&ok(at + 30, home, "alice"));
        }
        assert!(d.drain_alerts().is_empty());
        assert!(!d.is_suspicious_source(office));
        assert_eq!(d.failing_sources_last_hour(), 0, "forgiven typos leave no failing source behind");
    }

    #[test]
    fn without_the_success_the_same_office_failures_are_a_slow_brute_force() {
        // The negative above is not vacuous: the same failures, never
        // followed by a login, add up.
        let mut d = CampaignDetector::new(CampaignConfig::default());
        let office = ip("198.51.100.1");
        for i in 0..12i64 {
            d.observe(&fail(T0 + 8 * 3600 + i * 3300, office, &format!("user{i}")));
        }
        assert_eq!(d.drain_alerts().len(), 1);
        assert!(d.is_suspicious_source(office));
    }

    #[test]
    fn an_office_address_with_sparse_typos_and_a_fast_burst_is_no_slow_brute_force() {
        // The pattern of elastic/auth.log's 24.151.103.17: ten users log in
        // all day, a few give up after a typo (no success within minutes),
        // and one burst of 147 failures in 8 minutes (fast: fail2ban's and
        // the model's case, not this detector's).
        let mut d = CampaignDetector::new(CampaignConfig::default());
        let office = ip("24.151.103.17");
        let mut at = T0 + 10 * 3600;
        for i in 0..30 {
            d.observe(&ok(at, office, &format!("elastic_user_{}", i % 10)));
            if i % 5 == 2 {
                d.observe(&fail(at + 900, office, &format!("elastic_user_{}", (i + 3) % 10)));
                d.observe(&fail(at + 900, office, &format!("elastic_user_{}", (i + 3) % 10)));
            }
            at += 800;
        }
        for k in 0..147 {
            d.observe(&fail(at + k * 3, office, "elastic_user_0"));
        }
        d.observe(&ok(at + 450, office, "elastic_user_0"));
        assert!(d.drain_alerts().is_empty());
        assert!(!d.is_suspicious_source(office));
        // Without the day's successful logins, the same failures are spread
        // over enough hours to be a slow brute force.
        let mut d = CampaignDetector::new(CampaignConfig::default());
        let mut at = T0 + 10 * 3600;
        for i in 0..30 {
            if i % 5 == 2 {
                d.observe(&fail(at + 900, office, &format!("elastic_user_{}", (i + 3) % 10)));
                d.observe(&fail(at + 900, office, &format!("elastic_user_{}", (i + 3) % 10)));
            }
            at += 800;
        }
        assert_eq!(d.drain_alerts().len(), 1);
    }

    #[test]
    fn a_password_guessed_after_many_failures_is_not_forgiven() {
        let mut d = CampaignDetector::new(CampaignConfig::default());
        let attacker = ip("203.0.113.66");
        for hour in 0..6 {
            for k in 0..2 {
                let at = T0 + hour * 3600 + k * 60;
                d.observe(&fail(at, attacker, "root"));
            }
        }
        // Flagged at the 10th failure; a success afterwards changes nothing.
        assert_eq!(d.drain_alerts().len(), 1);
        d.observe(&ok(T0 + 5 * 3600 + 200, attacker, "root"));
        assert!(d.is_suspicious_source(attacker));
        // Six quick failures then a success: more than typos.
        let guesser = ip("203.0.113.67");
        for k in 0..6 {
            d.observe(&fail(T0 + 7 * 3600 + k, guesser, "admin"));
        }
        d.observe(&ok(T0 + 7 * 3600 + 10, guesser, "admin"));
        assert_eq!(d.failing_sources_last_hour(), 1, "the guesser's failures stay counted");
    }

    #[test]
    fn an_exposed_host_with_heavy_background_needs_a_bigger_wave() {
        let mut d = CampaignDetector::new(CampaignConfig::default());
        // 40 distinct scanners every hour for a day: usual ~40, threshold 160.
        let mut n = 0u32;
        for hour in 0..24 {
            for k in 0..40 {
                n += 1;
                d.observe(&fail(
                    T0 + hour * 3600 + k * 80,
                    IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + n)),
                    "root",
                ));
            }
        }
        assert!(d.drain_alerts().is_empty(), "the usual background is no campaign");
        let start = T0 + 24 * 3600;
        for i in 0..100u32 {
            d.observe(&fail(start + i64::from(i) * 30, IpAddr::V4(std::net::Ipv4Addr::from(0x0B00_0000 + i)), "root"));
        }
        assert!(d.drain_alerts().is_empty(), "100 is 2.5 times the usual: not yet");
        for i in 100..200u32 {
            let at = start + 3000 + i64::from(i - 100) * 5;
            d.observe(&fail(at, IpAddr::V4(std::net::Ipv4Addr::from(0x0B00_0000 + i)), "root"));
        }
        let alerts = d.drain_alerts();
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].sources >= 160, "{:?}", alerts[0]);
    }

    #[test]
    fn memory_stays_bounded_and_a_patient_attacker_survives_a_flood() {
        let cfg = CampaignConfig { max_sources: 256, distributed_min_sources: u32::MAX, ..CampaignConfig::default() };
        let mut d = CampaignDetector::new(cfg);
        let attacker = ip("203.0.113.7");
        let mut n = 0u32;
        let mut alerts = Vec::new();
        for hour in 0..12 {
            d.observe(&fail(T0 + hour * 3600, attacker, "root"));
            // 400 one-shot addresses an hour, 4,800 over the run, for 256
            // slots: more arrive between two of the attacker's attempts
            // than there are slots, so plain LRU would forget the attacker.
            for k in 0..400 {
                if k == 257 {
                    d.observe(&fail(T0 + hour * 3600 + 1800, attacker, "root"));
                }
                n += 1;
                d.observe(&fail(
                    T0 + hour * 3600 + 1 + k * 7,
                    IpAddr::V4(std::net::Ipv4Addr::from(0x6400_0000 + n)),
                    "admin",
                ));
            }
            alerts.extend(d.drain_alerts());
            assert!(d.tracked_sources() <= 256);
        }
        assert!(d.is_suspicious_source(attacker), "the slow attacker was not flushed out");
        assert_eq!(alerts.iter().filter(|a| a.source_ip == Some(attacker)).count(), 1);
    }

    #[test]
    fn a_tracked_source_costs_under_400_bytes() {
        let size = std::mem::size_of::<SourceTrack>();
        assert!(size < 400, "{size} bytes");
    }

    #[test]
    fn fail2ban_rule_bans_five_in_ten_minutes_only() {
        let mut r = ThresholdRule::fail2ban();
        let a = ip("203.0.113.1");
        for k in 0..4 {
            assert!(!r.failure(a, T0 + k * 60));
        }
        assert!(r.failure(a, T0 + 4 * 60));
        assert!(r.is_banned(a));
        let b = ip("203.0.113.2");
        for k in 0..20 {
            assert!(!r.failure(b, T0 + k * 200), "one every 200 s is 3 in 10 min");
        }
    }
}
