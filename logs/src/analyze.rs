//! The façade: lines and records in, fingerprints (observations) out.
//!
//! ```text
//! feed_line / feed_utmp ─► parse::* (borrowed Event) ─► sessions + source windows ─► drain_ready / finish
//! ```
//!
//! Times: every observation carries unix seconds (UTC). Syslog lines without
//! an offset are read as the device's local time: in
//! [`AnalyzerConfig::time_zone`] (daylight saving included, see
//! [`crate::zone`]) or at [`AnalyzerConfig::utc_offset_secs`] from UTC
//! (default 0: UTC); the login hour of a fingerprint is the hour in the log's
//! own local time (the line's offset when it writes one, else the zone's
//! offset at that moment). Year-less syslog dates get
//! their year from [`AnalyzerConfig::reference_time`] (see [`crate::parse::syslog`]).
//!
//! Nothing here panics on any input; lines that are not understood are
//! counted in [`ParseStats::unknown`] by program.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use rustc_hash::{FxHashMap, FxHasher};
use serde::{Deserialize, Serialize};

use crate::attempt::AuthAttempt;
use crate::error::{Error, Result};
use crate::parse::{self, cowrie, journald, syslog, utmp, AuthMethod, Event, Refusal};
use crate::session::{Attribution, ClosedSession, FailureLog, Key, OpenSession, Program, SessionDetail, Sessions};
use crate::source::{DeviceStats, DeviceWindow, SourceStats, SourceWindow};
use crate::zone::{LocalZone, ZoneCache};
pub use bfp_common::wire::RecordKind;
use bfp_common::{Fingerprint, Protocol};

pub use crate::parse::utmp::UtmpArch;

/// The input's format. `Syslog` covers RFC 3164/5424, rsyslog's RFC 3339
/// form, BusyBox/OpenWrt `logread` and vsftpd's own log, whatever the program
/// (sshd, dropbear, su, sudo, login, PAM, FTP servers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Decide per line (text) — JSON lines by their keys, else syslog.
    Auto,
    /// Syslog-style text lines.
    Syslog,
    /// `journalctl -o json` lines.
    Journald,
    /// Cowrie JSON lines.
    Cowrie,
    /// Binary wtmp/btmp records (use [`Analyzer::feed_utmp`]).
    Utmp,
}

impl LogFormat {
    /// Guesses a file's format from its first bytes (a few KB is plenty).
    pub fn detect(first_bytes: &[u8]) -> LogFormat {
        let head = &first_bytes[..first_bytes.len().min(4096)];
        // wtmp: fixed records, a small ut_type, and NUL padding text never has.
        if head.len() >= utmp::RECORD_SIZE
            && head[0] <= 9
            && head[1] == 0
            && head[2] == 0
            && head[3] == 0
            && memchr::memchr(0, &head[8..40]).is_some()
        {
            return LogFormat::Utmp;
        }
        let first_line = head.split(|&b| b == b'\n').next().unwrap_or(head);
        let trimmed = first_line.trim_ascii_start();
        if trimmed.first() == Some(&b'{') {
            if memchr::memmem::find(first_line, b"\"eventid\"").is_some() {
                return LogFormat::Cowrie;
            }
            if memchr::memmem::find(first_line, b"__REALTIME_TIMESTAMP").is_some() {
                return LogFormat::Journald;
            }
            return LogFormat::Auto;
        }
        LogFormat::Syslog
    }

    /// Parses a format name (`auto`, `syslog`, `journald`, `cowrie`, `utmp`/`wtmp`/`btmp`).
    pub fn from_name(name: &str) -> Result<LogFormat> {
        match name.to_ascii_lowercase().as_str() {
            "auto" => Ok(LogFormat::Auto),
            "syslog" | "auth" | "logread" => Ok(LogFormat::Syslog),
            "journald" | "journal" => Ok(LogFormat::Journald),
            "cowrie" => Ok(LogFormat::Cowrie),
            "utmp" | "wtmp" | "btmp" => Ok(LogFormat::Utmp),
            _ => Err(Error::InvalidSetting {
                field: "format",
                detail: format!("must be one of auto, syslog, journald, cowrie, utmp; got {name:?}"),
            }),
        }
    }
}

/// How the analyzer reads logs and cuts windows. Every field has a default
/// ([`AnalyzerConfig::default`]) suited to a small device.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzerConfig {
    /// Tor exit addresses; a session or source from one of them has protocol
    /// `TOR`. Default: empty. Load with [`AnalyzerConfig::parse_tor_exit_list`].
    pub tor_exit_list: HashSet<IpAddr>,
    /// Length of a source (and device) window, seconds. Default 86 400 (a day:
    /// a slow brute force of two attempts an hour still adds up to 48).
    pub source_window_secs: i64,
    /// A source window also ends after this many seconds without activity from
    /// the source. Default 21 600 (six hours).
    pub source_idle_secs: i64,
    /// How far back failed logins count towards a session's `failed_logins`,
    /// seconds. Default 86 400 (a day, as the source window). The count
    /// already restarts at each success of the user from that source, so this
    /// only bounds how long the failures of an account that has not logged in
    /// are held against its next login: a slow guess of one account (two
    /// attempts an hour) that finally gets in shows its whole day in that session.
    pub failure_lookback_secs: i64,
    /// Unix time (seconds) that year-less syslog lines are read against: a line
    /// is never dated more than a week after it. Default `None`: the current time.
    pub reference_time: Option<i64>,
    /// Offset of the device's local time from UTC, seconds, for timestamps that
    /// do not carry one, when [`AnalyzerConfig::time_zone`] is `None`. Default 0.
    pub utc_offset_secs: i32,
    /// The device's time zone with its daylight-saving rules (see
    /// [`crate::zone`]); when set, it replaces `utc_offset_secs`. Default `None`.
    pub time_zone: Option<LocalZone>,
    /// Commands kept per session (more are counted, not kept). Default 256.
    pub max_commands_per_session: usize,
    /// Open sessions kept at most; beyond it the oldest is reported as open.
    /// Default 1024.
    pub max_open_sessions: usize,
    /// Connections in progress tracked at most (pid → address). Default 4096.
    pub max_connections: usize,
    /// Source windows kept at most; beyond it the least recently active is
    /// closed early. Default 16 384.
    pub max_sources: usize,
    /// Recent failures and successes remembered for `failed_logins`. Default 8192.
    pub max_recent_failures: usize,
    /// Report a device-wide observation per window (kind `device`). Default true.
    pub device_observations: bool,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            tor_exit_list: HashSet::new(),
            source_window_secs: 86_400,
            source_idle_secs: 21_600,
            failure_lookback_secs: 86_400,
            reference_time: None,
            utc_offset_secs: 0,
            time_zone: None,
            max_commands_per_session: 256,
            max_open_sessions: 1024,
            max_connections: 4096,
            max_sources: 16_384,
            max_recent_failures: 8192,
            device_observations: true,
        }
    }
}

impl AnalyzerConfig {
    /// The zone local times are read in: [`AnalyzerConfig::time_zone`], else
    /// the fixed `utc_offset_secs`.
    pub fn local_zone(&self) -> LocalZone {
        self.time_zone.clone().unwrap_or(LocalZone::Fixed(self.utc_offset_secs))
    }

    /// Reads a Tor exit list: one address per line, or the Tor Project's
    /// `ExitAddress 1.2.3.4 2026-11-25 07:00:00` lines; `#` comments and other
    /// lines of that format (`ExitNode`, `Published`, ...) are skipped. An
    /// unreadable address is an error naming its line.
    pub fn parse_tor_exit_list(text: &str) -> Result<HashSet<IpAddr>> {
        let mut set = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let addr = match line.strip_prefix("ExitAddress ") {
                Some(rest) => rest.split_whitespace().next().unwrap_or(""),
                None if line.contains(' ') => continue, // ExitNode / Published / LastStatus
                None => line,
            };
            let ip = parse::parse_ip(addr).ok_or_else(|| Error::InvalidSetting {
                field: "tor_exit_list",
                detail: format!("line {}: not an IP address: {addr:?}", n + 1),
            })?;
            set.insert(ip);
        }
        Ok(set)
    }
}

/// One fingerprint with its context: what the agent scores, prints and forwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Session, source or device.
    pub kind: RecordKind,
    /// The remote address (a session's, or the source itself); `None` when the log has none.
    pub source_ip: Option<IpAddr>,
    /// The session's user; `None` for sources and devices.
    pub user: Option<String>,
    /// Start, unix seconds (UTC).
    pub start: i64,
    /// End, unix seconds (UTC); `None` while open.
    pub end: Option<i64>,
    /// The session was still open at the end of the input.
    pub open: bool,
    /// What the model scores.
    pub fingerprint: Fingerprint,
    /// The session's commands (up to the configured bound), in order.
    pub commands: Vec<String>,
    /// Session details (sessions only).
    pub session: Option<SessionDetail>,
    /// Source statistics (sources only).
    pub source: Option<SourceStats>,
    /// Device statistics (devices only).
    pub device: Option<DeviceStats>,
}

/// Known lines per program, indexed by [`Program`]; written as a map from
/// the program's name (`sshd`, `sudo`, ...) to its count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgramCounts([u64; Program::ALL.len()]);

impl ProgramCounts {
    /// Every program with its count, in [`Program::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Program, u64)> + '_ {
        Program::ALL.iter().map(|&p| (p, self[p]))
    }
}

impl std::ops::Index<Program> for ProgramCounts {
    type Output = u64;
    fn index(&self, program: Program) -> &u64 {
        &self.0[program as usize]
    }
}

impl std::ops::IndexMut<Program> for ProgramCounts {
    fn index_mut(&mut self, program: Program) -> &mut u64 {
        &mut self.0[program as usize]
    }
}

impl Serialize for ProgramCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter().map(|(p, n)| (p.name(), n)))
    }
}

impl<'de> Deserialize<'de> for ProgramCounts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let map = BTreeMap::<String, u64>::deserialize(deserializer)?;
        let mut counts = ProgramCounts::default();
        for (name, n) in map {
            let program = Program::ALL
                .iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown program {name:?}")))?;
            counts[*program] = n;
        }
        Ok(counts)
    }
}

/// What the analyzer has read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParseStats {
    /// Lines (and records) read.
    pub lines: u64,
    /// Understood lines, by program.
    pub by_kind: ProgramCounts,
    /// Lines not understood, by program (`<no header>` for lines without a
    /// syslog header, `<bad json>`, `cowrie:<eventid>` for unknown Cowrie events).
    pub unknown: BTreeMap<String, u64>,
    /// Failed login attempts counted.
    pub failed_logins: u64,
    /// Successful logins.
    pub accepted_logins: u64,
    /// Sessions reported (closed and open).
    pub sessions: u64,
    /// Of those, still open at the end.
    pub open_sessions: u64,
    /// Source windows reported.
    pub sources: u64,
    /// Device windows reported.
    pub devices: u64,
    /// Commands attributed to a session.
    pub commands: u64,
    /// Commands whose user had no open session (a session that began before the log).
    pub commands_outside_sessions: u64,
    /// Of the commands attributed, those whose session was chosen by the
    /// line's terminal (`TTY=pts/1`, wtmp's line).
    #[serde(default)]
    pub commands_by_tty: u64,
    /// Of the commands attributed, those that went to the newest of several
    /// open sessions of the user because neither terminal nor time told them apart.
    #[serde(default)]
    pub commands_guessed: u64,
    /// Session closes with no open session to match.
    pub unmatched_closes: u64,
    /// Sessions, connections or sources dropped early because a bound was hit.
    pub evicted: u64,
    /// Debug-level lines (`debug1:` ...): known, ignored (also counted by kind).
    pub debug_lines: u64,
    /// sudo refusals (`user NOT in sudoers`, `command not allowed`).
    pub privilege_refusals: u64,
    /// Accounts and groups created or changed, passwords set (`useradd`, `passwd`, ...).
    pub account_changes: u64,
    /// Accounts locked after consecutive failures (`pam_faillock`).
    pub accounts_locked: u64,
}

impl ParseStats {
    /// Lines not understood, all programs together.
    pub fn unknown_total(&self) -> u64 {
        self.unknown.values().sum()
    }
}

/// At most this many distinct programs are named in `unknown`; the rest are `<other>`.
const MAX_UNKNOWN_PROGRAMS: usize = 64;
/// Most repeats one "last message repeated N times" line expands to: a bound
/// on the work one line can cause.
const MAX_REPEATS: u32 = 10_000;
/// A disconnected session waits this long for its PAM close line before it is closed.
const CLOSE_GRACE_MS: i64 = 60_000;
/// Housekeeping runs when log time has moved on by this much.
const SWEEP_EVERY_MS: i64 = 60_000;
/// A connection (pid) with no news for this long is forgotten.
const CONNECTION_IDLE_MS: i64 = 3_600_000;
/// PAM's closing line of a connection comes within this long of its end.
const ENDED_CONNECTION_MS: i64 = 60_000;

/// Takes up to `want` from `pool`; returns what was taken.
fn take_up_to(pool: &mut u32, want: u32) -> u32 {
    let n = (*pool).min(want);
    *pool -= n;
    n
}

/// Per-connection state between a process's lines (pid → address, user).
#[derive(Debug, Clone)]
struct Conn {
    ip: Option<IpAddr>,
    user: Option<u64>,
    invalid: bool,
    pam_pending: u32,
    /// Of those, how many had no address yet (rhost was a host name).
    pam_unsourced: u32,
    /// Failure lines of any kind seen for this connection.
    failure_lines: u32,
    /// Attempts counted from sshd's own lines with no PAM line to pair with: what a
    /// later "PAM N more authentication failures" of the connection already stands for.
    failed_unpaired: u32,
    /// sshd refused the user by configuration (AllowUsers, DenyGroups, ...): its
    /// failures are worded "for invalid user" but the user exists.
    not_allowed: bool,
    last_ms: i64,
}

/// What kind of failed attempt a line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// A failure line of its own (`Failed password`, dropbear, FTP, ...).
    Failed,
    /// PAM's failure line, usually repeated by sshd's own line (counted once).
    Pam,
    /// A refused key or `none` probe: not held against a login of the same connection.
    KeyProbe,
}

impl Attempt {
    fn from_tentative(tentative: bool) -> Attempt {
        if tentative {
            Attempt::Pam
        } else {
            Attempt::Failed
        }
    }
}

/// Where a line came from, for the state machine.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    ts_ms: i64,
    offset_secs: i32,
    program: Program,
    key: Option<Key>,
}

/// The keys of the oldest quarter (at least one) of `items` by time.
fn oldest_quarter<K>(items: impl Iterator<Item = (i64, K)>) -> Vec<K> {
    let mut all: Vec<(i64, K)> = items.collect();
    if all.is_empty() {
        return Vec::new();
    }
    let n = (all.len() / 4).max(1);
    all.select_nth_unstable_by_key(n - 1, |e| e.0);
    all.truncate(n);
    all.into_iter().map(|e| e.1).collect()
}

/// Stable hash of a user name (sources remember users as hashes).
pub fn hash_user(user: &str) -> u64 {
    let mut h = FxHasher::default();
    user.hash(&mut h);
    h.finish()
}

fn hash_str(program: Program, s: &str) -> Key {
    (program, hash_user(s))
}

/// Logs in, observations out. See the module doc.
#[derive(Debug)]
pub struct Analyzer {
    config: AnalyzerConfig,
    stats: ParseStats,
    years: syslog::YearResolver,
    now_ms: i64,
    next_sweep_ms: i64,
    conns: FxHashMap<Key, Conn>,
    /// Connections ended in the last minute whose sshd lines counted attempts that
    /// PAM's closing "N more authentication failures" (written after the end) repeats.
    ended_unpaired: FxHashMap<Key, (u32, i64)>,
    sessions: Sessions,
    failures: FailureLog,
    sources: FxHashMap<IpAddr, SourceWindow>,
    device: Option<DeviceWindow>,
    ready: Vec<Observation>,
    pidless: u64,
    /// Authentication attempts for the campaign detectors, when recorded.
    attempts: Option<Vec<AuthAttempt>>,
    /// The last syslog line, for syslogd's "last message repeated N times"
    /// (reused: no allocation per line once it has grown).
    last_syslog: String,
    /// The last syslog date and its day count: consecutive lines share
    /// their date, and counting its days is most of a line's time arithmetic.
    last_day: Option<((i32, u8, u8), i64)>,
    /// The terminal the latest su process named (`+ /dev/pts/0 a:b`), by its key:
    /// su's PAM session line, the command, follows it and names none.
    su_tty: Option<(Key, String)>,
    /// The device's local time ([`AnalyzerConfig::local_zone`]).
    zone: ZoneCache,
}

impl Analyzer {
    /// A new analyzer.
    pub fn new(config: AnalyzerConfig) -> Self {
        let reference = config.reference_time.unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
        });
        Analyzer {
            sessions: Sessions { open: Vec::new(), max_commands: config.max_commands_per_session },
            failures: FailureLog::new(config.max_recent_failures),
            years: syslog::YearResolver::new(reference),
            stats: ParseStats::default(),
            now_ms: i64::MIN,
            next_sweep_ms: i64::MIN,
            conns: FxHashMap::default(),
            ended_unpaired: FxHashMap::default(),
            sources: FxHashMap::default(),
            device: None,
            ready: Vec::new(),
            pidless: 0,
            attempts: None,
            last_syslog: String::new(),
            last_day: None,
            su_tty: None,
            zone: ZoneCache::new(config.local_zone()),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AnalyzerConfig {
        &self.config
    }

    /// Marks the start of another file: its first year-less date is resolved
    /// afresh against the reference time. Sessions and windows carry on.
    pub fn new_input(&mut self) {
        let reference = self.config.reference_time.unwrap_or(self.now_ms.div_euclid(1000));
        self.years = syslog::YearResolver::new(reference);
    }

    /// The time of the latest line understood, unix seconds (`None` before
    /// the first): where a log begins, for what is learnt from before it.
    pub fn latest_secs(&self) -> Option<i64> {
        (self.now_ms != i64::MIN).then(|| self.now_ms.div_euclid(1000))
    }

    /// What has been read so far.
    pub fn stats(&self) -> &ParseStats {
        &self.stats
    }

    /// Feeds one text line (without its trailing newline). Never panics;
    /// lines not understood are counted by program.
    pub fn feed_line(&mut self, line: &str, format: LogFormat) {
        self.stats.lines += 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let format = match format {
            LogFormat::Auto | LogFormat::Utmp => {
                if line.trim_start().starts_with('{') {
                    if memchr::memmem::find(line.as_bytes(), b"\"eventid\"").is_some() {
                        LogFormat::Cowrie
                    } else {
                        LogFormat::Journald
                    }
                } else {
                    LogFormat::Syslog
                }
            }
            f => f,
        };
        match format {
            LogFormat::Cowrie => self.feed_cowrie(line),
            LogFormat::Journald => self.feed_journald(line),
            _ => self.feed_syslog(line),
        }
    }

    /// Feeds one binary utmp/wtmp/btmp record.
    pub fn feed_utmp(&mut self, record: &[u8], arch: UtmpArch) {
        self.stats.lines += 1;
        let rec = match utmp::parse(record, arch) {
            Ok(r) => r,
            Err(_) => return self.unknown("<bad utmp record>"),
        };
        self.stats.by_kind[Program::Utmp] += 1;
        let ctx = Ctx {
            ts_ms: rec.ts_ms,
            offset_secs: self.zone.offset_at(rec.ts_ms),
            program: Program::Utmp,
            key: Some(hash_str(Program::Utmp, &rec.line)),
        };
        let event = match rec.ut_type {
            utmp::USER_PROCESS if !rec.user.is_empty() => {
                self.apply(ctx, Event::Accepted { user: rec.user.clone(), ip: rec.ip, method: AuthMethod::Unknown });
                // wtmp names the session's terminal: its sudo lines will name the same.
                if let (Some(i), Some(tty)) = (ctx.key.and_then(|k| self.sessions.find(k)), parse::tty_name(&rec.line))
                {
                    self.sessions.open[i].detail.tty = Some(tty.to_owned());
                }
                return;
            }
            utmp::DEAD_PROCESS => Event::SessionClosed { user: None, duration_secs: None },
            utmp::LOGIN_PROCESS if !rec.user.is_empty() && rec.user != "LOGIN" => Event::AuthFailed {
                user: Some(rec.user.clone()),
                ip: rec.ip,
                invalid_user: false,
                count: 1,
                tentative: false,
            },
            _ => Event::Noise,
        };
        self.apply(ctx, event);
    }

    /// From now on, also record every authentication attempt with a source
    /// address (failures and successes, in log order) for
    /// the campaign detectors of `bfp-detect`. Take them with
    /// [`Analyzer::drain_auth_attempts`] after each batch of lines: they
    /// accumulate until then.
    pub fn record_auth_attempts(&mut self) {
        self.attempts.get_or_insert_with(Vec::new);
    }

    /// The authentication attempts recorded since the last call (empty
    /// unless [`Analyzer::record_auth_attempts`] was called).
    pub fn drain_auth_attempts(&mut self) -> Vec<AuthAttempt> {
        self.attempts.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn record_attempt(
        &mut self,
        ctx: &Ctx,
        ip: Option<IpAddr>,
        user: Option<u64>,
        success: bool,
        invalid: bool,
        count: u32,
    ) {
        let Some(source) = ip else { return };
        if self.attempts.is_none() {
            return;
        }
        let protocol = self.protocol_for(ctx.program, ip);
        let Some(list) = self.attempts.as_mut() else { return };
        list.push(AuthAttempt {
            at: ctx.ts_ms.div_euclid(1000),
            source,
            user,
            success,
            invalid_user: invalid,
            count,
            protocol,
        });
    }

    /// Tells the analyzer the current time (unix seconds) while no line
    /// arrives: a follower calls it now and then so the windows of sources
    /// that went quiet end, and disconnected sessions close, without waiting
    /// for the next line. Times before the latest line's are ignored.
    pub fn tick(&mut self, now_secs: i64) {
        let now_ms = now_secs.saturating_mul(1000);
        if now_ms > self.now_ms {
            self.now_ms = now_ms;
            self.sweep();
            self.next_sweep_ms = now_ms.saturating_add(SWEEP_EVERY_MS);
        }
    }

    /// Observations that are complete (closed sessions, ended windows), moved out.
    pub fn drain_ready(&mut self) -> Vec<Observation> {
        std::mem::take(&mut self.ready)
    }

    /// End of input: everything still pending. Sessions still open are
    /// reported with `open: true` and no end; windows end at their last event.
    pub fn finish(&mut self) -> Vec<Observation> {
        let mut open = std::mem::take(&mut self.sessions.open);
        for s in open.drain(..) {
            let end = s.disconnected_ms;
            let closed = ClosedSession { session: s, end_ms: end };
            self.emit_session(closed);
        }
        let mut ips: Vec<IpAddr> = self.sources.keys().copied().collect();
        ips.sort_by_key(|ip| self.sources[ip].start_ms);
        for ip in ips {
            if let Some(w) = self.sources.remove(&ip) {
                self.emit_source(w);
            }
        }
        if let Some(d) = self.device.take() {
            self.emit_device(d);
        }
        self.conns.clear();
        self.ended_unpaired.clear();
        std::mem::take(&mut self.ready)
    }

    // ---- input formats ----

    fn feed_syslog(&mut self, line: &str) {
        let Some(h) = syslog::parse(line) else { return self.unknown("<no header>") };
        if let Some(times) = syslog::repeated_times(&h) {
            return self.replay_last_syslog(h.program, times);
        }
        self.last_syslog.clear();
        self.last_syslog.push_str(line);
        self.dispatch_syslog(&h);
    }

    /// sysklogd, macOS and some BusyBox builds fold identical lines into
    /// "last message repeated N times": the previous line counts N more times
    /// (a brute force would otherwise lose most of its failures). Only when
    /// that line came from the same program, if the repeat names one.
    fn replay_last_syslog(&mut self, program: &str, times: u32) {
        let last = std::mem::take(&mut self.last_syslog);
        match syslog::parse(&last) {
            Some(h) if program.is_empty() || h.program == program => {
                for _ in 0..times.min(MAX_REPEATS) {
                    self.dispatch_syslog(&h);
                }
            }
            _ => self.unknown(if program.is_empty() { "<repeat of nothing known>" } else { program }),
        }
        self.last_syslog = last;
    }

    fn dispatch_syslog(&mut self, h: &syslog::Header<'_>) {
        let year = match h.time.year {
            Some(y) => y,
            None => self.years.year_for(h.time.month, h.time.day),
        };
        // A line with its own offset is read with it; one without, in the
        // device's zone at that wall-clock time.
        let date = (year, h.time.month, h.time.day);
        let days = match self.last_day {
            Some((last, days)) if last == date => days,
            _ => {
                let days = bfp_common::time::days_from_civil(year, h.time.month, h.time.day);
                self.last_day = Some((date, days));
                days
            }
        };
        let wall_ms = h.time.wall_clock_ms_on(days);
        let offset_secs = match h.time.offset_secs {
            Some(own) => own,
            None => self.zone.offset_of_local(wall_ms),
        };
        let ts_ms = wall_ms - i64::from(offset_secs) * 1000;
        self.dispatch(h.program, h.pid, h.message, ts_ms, offset_secs);
    }

    fn feed_journald(&mut self, line: &str) {
        let Some(e) = journald::parse(line) else { return self.unknown("<bad json>") };
        let offset_secs = self.zone.offset_at(e.ts_ms);
        self.dispatch(&e.program, e.pid, &e.message, e.ts_ms, offset_secs);
    }

    fn feed_cowrie(&mut self, line: &str) {
        let Ok(rec) = cowrie::parse(line) else { return self.unknown("<bad json>") };
        let Some(event) = rec.event else {
            let id = format!("cowrie:{}", rec.event_id);
            return self.unknown(&id);
        };
        self.stats.by_kind[Program::Cowrie] += 1;
        let ts_ms = rec.ts_ms.unwrap_or(self.now_ms.max(0));
        let key = rec.session.as_deref().map(|s| hash_str(Program::Cowrie, s));
        let ctx = Ctx { ts_ms, offset_secs: self.zone.offset_at(ts_ms), program: Program::Cowrie, key };
        if let (Event::Accepted { .. }, Some(sid)) = (&event, rec.session.as_deref()) {
            let sid = sid.to_owned();
            self.apply(ctx, event);
            if let Some(i) = key.and_then(|k| self.sessions.find(k)) {
                self.sessions.open[i].detail.session_id = Some(sid);
            }
            return;
        }
        // Cowrie names the address on every event; a connection keyed by session id carries it.
        if let (Some(ip), Some(k)) = (rec.ip, key) {
            if !matches!(event, Event::Connected { .. }) {
                self.conn(k, ts_ms).ip.get_or_insert(ip);
            }
        }
        self.apply(ctx, event);
    }

    /// Routes one syslog-style message to its program's parser.
    fn dispatch(&mut self, program: &str, pid: Option<u32>, message: &str, ts_ms: i64, offset_secs: i32) {
        // Old Red Hat tags: "sshd(pam_unix)", "su(pam_unix)".
        let (base, pam_tag) = match memchr::memchr(b'(', program.as_bytes()) {
            Some(i) if program[i + 1..].starts_with("pam_") => (&program[..i], true),
            _ => (program, false),
        };
        let (prog, event) = match base {
            "sshd" | "sshd-session" | "sshd-auth" => {
                let e = if pam_tag { Some(parse::pam::parse_body(message)) } else { parse::sshd::parse(message) };
                (Program::Sshd, e)
            }
            "dropbear" => (Program::Dropbear, parse::dropbear::parse(message)),
            "su" => {
                let e = if pam_tag {
                    Some(parse::su::from_pam(parse::pam::parse_body(message)))
                } else {
                    parse::su::parse(message)
                };
                if let (Some(pid), Some(tty)) = (pid, parse::su::tty(message)) {
                    self.su_tty = Some(((Program::Su, u64::from(pid)), tty.to_owned()));
                }
                (Program::Su, e)
            }
            "sudo" => (Program::Sudo, parse::sudo::parse(message)),
            "login" => {
                let e = if pam_tag { Some(parse::pam::parse_body(message)) } else { parse::login::parse(message) };
                (Program::Login, e)
            }
            "vsftpd" | "proftpd" | "ftpd" | "in.ftpd" | "pure-ftpd" | "xferlog" => {
                let e = if pam_tag { Some(parse::pam::parse_body(message)) } else { parse::ftp::parse(base, message) };
                (Program::Ftp, e)
            }
            "twistd" => {
                // Cowrie's text log (see parse::syslog): keyed by its transport number.
                (Program::Cowrie, parse::cowrie::parse_text(message))
            }
            "uhttpd" | "luci" => (Program::Web, parse::web::parse(message)),
            "CRON" | "cron" | "crond" => (Program::Cron, Some(Event::Noise)),
            "systemd-logind" => (Program::Logind, parse::logind::parse(message)),
            // pam_unix's helper when the caller is not root: "password check failed for
            // user (U)". The caller's own pam_unix line reports the same attempt.
            "unix_chkpwd" => {
                (Program::Pam, message.starts_with("password check failed for user").then_some(Event::Noise))
            }
            _ if parse::account::is_account_tool(base) => (Program::Account, parse::account::parse(base, message)),
            _ if !pam_tag && syslog::program_in_container(base).is_some() => {
                // SONiC's "container#program" tags (only programs not matched above get here).
                let inner = syslog::program_in_container(base).unwrap_or(base);
                return self.dispatch(inner, pid, message, ts_ms, offset_secs);
            }
            _ if pam_tag || message.starts_with("pam_") => {
                // Other programs' PAM lines (systemd-user, chpasswd, gdm): known, no session of interest.
                (Program::Pam, Some(Event::Noise))
            }
            _ => {
                let name = if base.is_empty() { "<no program>" } else { base };
                return self.unknown(name);
            }
        };
        let Some(event) = event else {
            return self.unknown(base);
        };
        self.stats.by_kind[prog] += 1;
        let key = pid.map(|pid| (prog, u64::from(pid))).or_else(|| match (&event, prog) {
            // sudo logs without a pid by default: its PAM failure and its "N incorrect
            // password attempts" pair by the user who asked instead (and the command
            // that ran, or was refused, ends that user's attempt).
            (Event::AuthFailed { user: Some(u), .. }, Program::Sudo) => Some((prog, hash_user(u))),
            (Event::Command { user: Some(u), .. } | Event::PrivilegeRefused { user: u, .. }, Program::Sudo) => {
                Some((prog, hash_user(u)))
            }
            _ => None,
        });
        self.apply(Ctx { ts_ms, offset_secs, program: prog, key }, event);
    }

    fn unknown(&mut self, program: &str) {
        if let Some(n) = self.stats.unknown.get_mut(program) {
            *n += 1;
        } else if self.stats.unknown.len() < MAX_UNKNOWN_PROGRAMS {
            self.stats.unknown.insert(program.chars().take(64).collect(), 1);
        } else {
            *self.stats.unknown.entry("<other>".into()).or_default() += 1;
        }
    }

    // ---- the state machine ----

    fn conn(&mut self, key: Key, ts_ms: i64) -> &mut Conn {
        if self.conns.len() >= self.config.max_connections && !self.conns.contains_key(&key) {
            // Bounded: forget the stalest quarter at once (amortised, not a scan per line).
            for k in oldest_quarter(self.conns.iter().map(|(k, c)| (c.last_ms, *k))) {
                self.conns.remove(&k);
                self.stats.evicted += 1;
            }
        }
        let c = self.conns.entry(key).or_insert(Conn {
            ip: None,
            user: None,
            invalid: false,
            pam_pending: 0,
            failure_lines: 0,
            pam_unsourced: 0,
            failed_unpaired: 0,
            not_allowed: false,
            last_ms: ts_ms,
        });
        c.last_ms = ts_ms;
        c
    }

    fn protocol_for(&self, program: Program, ip: Option<IpAddr>) -> Protocol {
        match ip {
            Some(ip) if self.config.tor_exit_list.contains(&ip) => Protocol::Tor,
            _ => program.protocol(),
        }
    }

    fn source(&mut self, ip: IpAddr, ctx: &Ctx) -> &mut SourceWindow {
        let window_ms = self.config.source_window_secs.saturating_mul(1000);
        let expired = self.sources.get(&ip).is_some_and(|w| ctx.ts_ms - w.start_ms >= window_ms);
        if expired {
            if let Some(w) = self.sources.remove(&ip) {
                self.emit_source(w);
            }
        }
        if !self.sources.contains_key(&ip) && self.sources.len() >= self.config.max_sources {
            // Bounded: the least recently active quarter ends its windows early (reported, not lost).
            for old in oldest_quarter(self.sources.values().map(|w| (w.last_ms, w.ip))) {
                if let Some(w) = self.sources.remove(&old) {
                    self.stats.evicted += 1;
                    self.emit_source(w);
                }
            }
        }
        let protocol = self.protocol_for(ctx.program, Some(ip));
        let w = self.sources.entry(ip).or_insert_with(|| SourceWindow::new(ip, ctx.ts_ms, ctx.offset_secs));
        w.touch(ctx.ts_ms, protocol);
        w
    }

    fn device(&mut self, ctx: &Ctx) -> Option<&mut DeviceWindow> {
        if !self.config.device_observations {
            return None;
        }
        let window_ms = self.config.source_window_secs.saturating_mul(1000);
        if self.device.as_ref().is_some_and(|d| ctx.ts_ms - d.start_ms >= window_ms) {
            if let Some(d) = self.device.take() {
                self.emit_device(d);
            }
        }
        Some(self.device.get_or_insert_with(|| DeviceWindow::new(ctx.ts_ms, ctx.offset_secs)))
    }

    fn apply(&mut self, ctx: Ctx, event: Event<'_>) {
        if ctx.ts_ms > self.now_ms {
            self.now_ms = ctx.ts_ms;
            if self.now_ms >= self.next_sweep_ms {
                self.sweep();
                self.next_sweep_ms = self.now_ms + SWEEP_EVERY_MS;
            }
        }
        match event {
            Event::Noise => {}
            Event::Debug => self.stats.debug_lines += 1,
            Event::PamMoreFailures { user, ip, count } => {
                // What sshd's own lines of the connection counted beyond PAM's first
                // failure are these same attempts.
                let repeated = match ctx.key {
                    Some(k) => match self.conns.get_mut(&k) {
                        Some(c) => take_up_to(&mut c.failed_unpaired, count),
                        None => self.ended_unpaired.get_mut(&k).map_or(0, |(n, _)| take_up_to(n, count)),
                    },
                    None => 0,
                };
                if count > repeated {
                    self.on_failure(&ctx, user.as_deref(), ip, false, count - repeated, Attempt::Pam);
                }
            }
            Event::NotAllowed { user, ip } => {
                let hash = hash_user(&user);
                if let Some(k) = ctx.key {
                    let c = self.conn(k, ctx.ts_ms);
                    c.user = Some(hash);
                    c.not_allowed = true;
                    if ip.is_some() {
                        c.ip = ip;
                    }
                }
                if let Some(ip) = ip {
                    self.source(ip, &ctx).user(Some(&user), hash);
                }
            }
            Event::PrivilegeRefused { user, reason, tty, target, command } => {
                // The failures a wrong password or a failed su are, counted as before.
                let failed = match reason {
                    Refusal::IncorrectPassword(count) => Some((Some(user), count)),
                    Refusal::SuFailed => Some((target, 1)),
                    Refusal::NotInSudoers | Refusal::CommandNotAllowed => None,
                };
                if let Some((who, count)) = failed {
                    let user = who.map(Cow::Borrowed);
                    self.apply(ctx, Event::AuthFailed { user, ip: None, invalid_user: false, count, tentative: false });
                }
                self.end_sudo_attempt(&ctx);
                self.stats.privilege_refusals += 1;
                // sudo's reason in its own words, for the analyst.
                let attempted = match reason {
                    Refusal::SuFailed => format!("su(denied) {command}"),
                    Refusal::NotInSudoers => format!("sudo(denied: user NOT in sudoers) {command}"),
                    Refusal::CommandNotAllowed => format!("sudo(denied: command not allowed) {command}"),
                    Refusal::IncorrectPassword(1) => format!("sudo(denied: 1 incorrect password attempt) {command}"),
                    Refusal::IncorrectPassword(n) => format!("sudo(denied: {n} incorrect password attempts) {command}"),
                };
                self.on_command(&ctx, Some(user), tty, &attempted);
            }
            Event::AccountChange { tool, account: _, by, detail } => {
                self.stats.account_changes += 1;
                // Into the session of whoever made it, when the line names someone logged
                // in (not counted outside sessions: most changes are made by root or tools).
                if let Some(u) = by {
                    if let Some((i, how)) = self.sessions.for_command(u, None, ctx.ts_ms) {
                        self.attributed(i, how, ctx.ts_ms, &format!("{tool}: {detail}"));
                    }
                }
            }
            Event::AccountLocked { user: _ } => self.stats.accounts_locked += 1,
            Event::AuthFailed { user, ip, invalid_user, count, tentative } => {
                self.on_failure(&ctx, user.as_deref(), ip, invalid_user, count, Attempt::from_tentative(tentative))
            }
            Event::KeyRejected { user, ip, invalid_user, count } => {
                self.on_failure(&ctx, user.as_deref(), ip, invalid_user, count, Attempt::KeyProbe)
            }
            Event::InvalidUser { user, ip } => {
                let hash = hash_user(&user);
                if let Some(k) = ctx.key {
                    let c = self.conn(k, ctx.ts_ms);
                    c.user = Some(hash);
                    c.invalid = true;
                    if ip.is_some() {
                        c.ip = ip;
                    }
                }
                if let Some(ip) = ip {
                    let w = self.source(ip, &ctx);
                    w.user(Some(&user), hash);
                    w.invalid_user();
                }
            }
            Event::Accepted { user, ip, method } => self.on_login(&ctx, &user, ip, method),
            Event::SessionOpened { user, by: _ } => {
                if !ctx.program.opens_sessions() {
                    return;
                }
                let existing = ctx.key.and_then(|k| self.sessions.find(k));
                match existing {
                    Some(i) if self.sessions.open[i].user == user.as_ref() => {}
                    _ => {
                        let ip = ctx.key.and_then(|k| self.conns.get(&k)).and_then(|c| c.ip);
                        self.on_login(&ctx, &user, ip, AuthMethod::Unknown);
                    }
                }
            }
            Event::SessionClosed { user, duration_secs } => self.on_close(&ctx, user.as_deref(), duration_secs),
            Event::TooManyFailures { user, ip, invalid_user } => {
                // Failures sshd logged for this connection were counted as they
                // came; when it logged none (keys or `none` tried), the
                // connection still failed: one failure stands for the lot.
                let logged = ctx.key.and_then(|k| self.conns.get(&k)).is_some_and(|c| c.failure_lines > 0);
                if !logged {
                    self.on_failure(&ctx, user.as_deref(), ip, invalid_user, 1, Attempt::Failed);
                }
                self.apply(ctx, Event::Disconnected { ip, preauth: true });
            }
            Event::Disconnected { ip, preauth } => {
                let conn = ctx.key.and_then(|k| self.conns.remove(&k));
                if let (Some(k), Some(c)) = (ctx.key, conn.as_ref().filter(|c| c.failed_unpaired > 0)) {
                    if self.ended_unpaired.len() >= self.config.max_connections {
                        self.ended_unpaired.clear(); // bounded; the sweep normally empties it first
                    }
                    self.ended_unpaired.insert(k, (c.failed_unpaired, ctx.ts_ms));
                }
                // A refusal that named no address ("User root not allowed because account
                // is locked") said nothing about the source either.
                let addressless_refusal = conn.as_ref().is_some_and(|c| c.not_allowed && c.ip.is_none());
                if let (true, Some(ip)) = (conn.is_none() || addressless_refusal, ip) {
                    // A connection that ends before saying anything else is still
                    // a source that showed up (port scanners, key probes).
                    if ctx.key.and_then(|k| self.sessions.find(k)).is_none() {
                        self.source(ip, &ctx).connection();
                    }
                }
                let ip = ip.or(conn.and_then(|c| c.ip));
                let index = ctx.key.and_then(|k| self.sessions.find_process(k)).or_else(|| {
                    // Another process of the same connection (OpenSSH's session child).
                    if preauth {
                        None
                    } else {
                        ip.and_then(|ip| self.sessions.only_one_from(ip, ctx.program))
                    }
                });
                if let Some(i) = index {
                    let s = &mut self.sessions.open[i];
                    s.disconnected_ms.get_or_insert(ctx.ts_ms);
                    s.last_ms = s.last_ms.max(ctx.ts_ms);
                }
            }
            Event::Connected { ip } => {
                if let Some(k) = ctx.key {
                    self.conn(k, ctx.ts_ms).ip = Some(ip);
                }
                self.source(ip, &ctx).connection();
            }
            Event::Probe { ip } => self.source(ip, &ctx).probe(),
            Event::Command { user, tty, command } => {
                self.end_sudo_attempt(&ctx);
                // su's terminal line stands for its one PAM session line: used once.
                let su_tty = match (&self.su_tty, ctx.program) {
                    (Some((k, _)), Program::Su) if ctx.key == Some(*k) => self.su_tty.take().map(|(_, t)| t),
                    _ => None,
                };
                self.on_command(&ctx, user, tty.or(su_tty.as_deref()), &command)
            }
            Event::SessionChild { pid } => {
                if let Some(i) = ctx.key.and_then(|k| self.sessions.find(k)) {
                    self.sessions.open[i].child = Some(u64::from(pid));
                }
            }
            Event::SessionStarted { user, ip, tty } => {
                // By the process (the session's child, named by its monitor), else the
                // only session of this user from there whose terminal is not known (an
                // sshd that does not name its child).
                let index = ctx.key.and_then(|k| self.sessions.find_process(k)).or_else(|| {
                    let i = self.sessions.only_one_without_tty(user, ip, ctx.program)?;
                    self.sessions.open[i].child = ctx.key.map(|(_, pid)| pid);
                    Some(i)
                });
                if let (Some(i), Some(tty)) = (index, tty) {
                    if self.sessions.open[i].user == user {
                        self.sessions.open[i].detail.tty = Some(tty.to_owned());
                    }
                }
            }
            Event::Download { url: _ } => {
                if let Some(i) = ctx.key.and_then(|k| self.sessions.find(k)) {
                    let s = &mut self.sessions.open[i];
                    s.detail.downloads += 1;
                    s.last_ms = s.last_ms.max(ctx.ts_ms);
                }
            }
        }
    }

    fn on_failure(
        &mut self,
        ctx: &Ctx,
        user: Option<&str>,
        ip: Option<IpAddr>,
        invalid: bool,
        count: u32,
        attempt: Attempt,
    ) {
        let mut ip = ip;
        let mut user_hash = user.map(hash_user);
        let mut invalid = invalid;
        let mut count = count;
        // PAM attempts that had no address, now attributed to this line's source.
        let mut late_sourced = 0;
        if let Some(k) = ctx.key {
            let c = self.conn(k, ctx.ts_ms);
            c.failure_lines = c.failure_lines.saturating_add(1);
            if ip.is_none() {
                ip = c.ip;
            } else {
                c.ip = ip;
            }
            if user_hash.is_none() {
                user_hash = c.user;
                invalid |= c.invalid;
            } else if c.user.is_none() {
                c.user = user_hash;
            }
            if c.not_allowed {
                invalid = false;
            }
            // PAM's failure line and sshd's "Failed password" are one attempt
            // (a refused key has no PAM line to pair with).
            match attempt {
                Attempt::KeyProbe => {}
                Attempt::Pam => {
                    c.pam_pending += count;
                    if ip.is_none() {
                        c.pam_unsourced += count;
                    }
                }
                Attempt::Failed => {
                    let paired = c.pam_pending.min(count);
                    c.pam_pending -= paired;
                    count -= paired;
                    c.failed_unpaired = c.failed_unpaired.saturating_add(count);
                    if ip.is_some() {
                        late_sourced = c.pam_unsourced.min(paired);
                        c.pam_unsourced -= late_sourced;
                    }
                }
            }
        }
        let user_name = user.filter(|u| !u.is_empty());
        if let Some(ip) = ip {
            let w = self.source(ip, ctx);
            if let Some(h) = user_hash {
                w.user(user_name, h);
            }
            w.failed(count + late_sourced, invalid);
        }
        if count == 0 {
            return;
        }
        self.record_attempt(ctx, ip, user_hash, false, invalid, count);
        self.stats.failed_logins += u64::from(count);
        self.failures.push(ctx.ts_ms, ip, user_hash.unwrap_or(0), count, ctx.key, attempt == Attempt::KeyProbe);
        if let Some(d) = self.device(ctx) {
            d.failed(ctx.ts_ms, ip, user_hash, count);
        }
    }

    fn on_login(&mut self, ctx: &Ctx, user: &str, ip: Option<IpAddr>, method: AuthMethod) {
        self.stats.accepted_logins += 1;
        let key = match ctx.key {
            Some(k) => k,
            None => {
                // No pid: a key of its own, closed by user (see the session module).
                self.pidless += 1;
                (ctx.program, u64::MAX - self.pidless)
            }
        };
        let conn = self.conns.remove(&key);
        let stacked_pam =
            |c: &&Conn| ctx.program == Program::Sshd && c.pam_pending > 0 && c.user == Some(hash_user(user));
        if let Some(c) = conn.as_ref().filter(stacked_pam) {
            // Stacked PAM: pam_unix failed for this very user, pam_sss/pam_ldap accepted the
            // same password, and sshd never said "Failed". Failures that named no user, or
            // another one, stay failures.
            self.retract_pam_failures(key, c);
        }
        let ip = ip.or(conn.and_then(|c| c.ip));
        // A second login on the same key (pid reuse, wtmp line reuse) ends the first.
        if let Some(i) = self.sessions.find(key) {
            let closed = self.sessions.close(i, Some(ctx.ts_ms));
            self.emit_session(closed);
        }
        if self.sessions.open.len() >= self.config.max_open_sessions {
            let oldest = self.sessions.close(0, None);
            self.stats.evicted += 1;
            self.emit_session(oldest);
        }
        let since = ctx.ts_ms - self.config.failure_lookback_secs.saturating_mul(1000);
        let prior = self.failures.prior(since, ip, hash_user(user), ctx.key);
        self.failures.success(ctx.ts_ms, ip, hash_user(user));
        self.record_attempt(ctx, ip, Some(hash_user(user)), true, false, 1);
        if let Some(ip) = ip {
            let w = self.source(ip, ctx);
            w.user(Some(user), hash_user(user));
            w.success();
        }
        if let Some(d) = self.device(ctx) {
            d.success(ctx.ts_ms, ip);
        }
        let session_id = match ctx.program {
            Program::Cowrie | Program::Utmp => None, // set by the caller / not meaningful
            _ => ctx.key.map(|(_, pid)| pid.to_string()),
        };
        self.sessions.open.push(OpenSession {
            key,
            user: user.to_owned(),
            ip,
            start_ms: ctx.ts_ms,
            offset_secs: ctx.offset_secs,
            last_ms: ctx.ts_ms,
            disconnected_ms: None,
            protocol: self.protocol_for(ctx.program, ip),
            detail: SessionDetail {
                program: ctx.program,
                session_id,
                auth_method: method,
                failed_from_source: prior.from_source,
                failed_for_user: prior.for_user,
                failed_source_and_user: prior.source_and_user,
                downloads: 0,
                commands_total: 0,
                duration_reported: false,
                tty: None,
            },
            commands: Vec::new(),
            risky: 0,
            typed_chars: 0,
            last_command_ms: None,
            reported_secs: None,
            child: None,
        });
        if ctx.program.logs_no_logout() {
            // Nothing will close it: report it now, as open.
            let last = self.sessions.open.len() - 1;
            let session = self.sessions.close(last, None);
            self.emit_session(session);
        }
    }

    /// Takes back the PAM failures of a connection that logged in without sshd
    /// confirming any of them (see `FailureLog::retract`): totals, source and
    /// device windows, and recorded attempts.
    fn retract_pam_failures(&mut self, key: Key, conn: &Conn) {
        let n = self.failures.retract(key, conn.pam_pending);
        self.stats.failed_logins = self.stats.failed_logins.saturating_sub(u64::from(n));
        let sourced = n.saturating_sub(conn.pam_unsourced);
        if let (Some(ip), true) = (conn.ip, sourced > 0) {
            if let Some(w) = self.sources.get_mut(&ip) {
                w.retract_failed(sourced);
            }
            if let Some(list) = self.attempts.as_mut() {
                // Newest first: the connection's own attempts are the latest from that address.
                let (mut left, mut i) = (sourced, list.len());
                while left > 0 && i > 0 {
                    i -= 1;
                    if !list[i].success && list[i].source == ip && list[i].count <= left {
                        left -= list[i].count;
                        list.remove(i);
                    }
                }
            }
        }
        if let Some(d) = self.device.as_mut() {
            d.retract_failed(conn.ip, n);
        }
    }

    fn on_close(&mut self, ctx: &Ctx, user: Option<&str>, duration_secs: Option<f64>) {
        let by_key = ctx.key.and_then(|k| self.sessions.find(k));
        let index = match (by_key, user) {
            (Some(i), _) => Some(i),
            // No pid, or a pid that logged no login (old sshd child): the oldest session of that user.
            (None, Some(u)) => self.sessions.oldest_of_user(u, ctx.program),
            (None, None) => None,
        };
        match index {
            Some(i) => {
                let mut closed = self.sessions.close(i, Some(ctx.ts_ms));
                if let Some(secs) = duration_secs {
                    closed.session.reported_secs = Some(secs);
                    closed.session.detail.duration_reported = true;
                }
                self.emit_session(closed);
            }
            None => {
                if ctx.program.opens_sessions() && ctx.program != Program::Cowrie {
                    self.stats.unmatched_closes += 1;
                }
            }
        }
        if let Some(k) = ctx.key {
            self.conns.remove(&k);
        }
    }

    /// sudo got as far as running (or refusing) the command: a PAM failure of this
    /// attempt that sudo's "N incorrect password attempts" never confirmed (a mistyped
    /// password, then the right one) must not pair with the user's next attempt.
    fn end_sudo_attempt(&mut self, ctx: &Ctx) {
        if let (Program::Sudo, Some(k)) = (ctx.program, ctx.key) {
            self.conns.remove(&k);
        }
    }

    /// A command (or refused sudo) of `user` on terminal `tty`: into the session it
    /// belongs to (see `Sessions::for_command`), or counted outside sessions.
    fn on_command(&mut self, ctx: &Ctx, user: Option<&str>, tty: Option<&str>, command: &str) {
        let chosen = match (ctx.program, user) {
            (Program::Cowrie, _) => ctx.key.and_then(|k| self.sessions.find(k)).map(|i| (i, Attribution::Key)),
            (_, Some(u)) => self.sessions.for_command(u, tty, ctx.ts_ms),
            _ => None,
        };
        match chosen {
            Some((i, how)) => self.attributed(i, how, ctx.ts_ms, command),
            None => self.stats.commands_outside_sessions += 1,
        }
    }

    fn attributed(&mut self, index: usize, how: Attribution, ts_ms: i64, command: &str) {
        self.stats.commands += 1;
        match how {
            Attribution::Tty => self.stats.commands_by_tty += 1,
            Attribution::Guessed => self.stats.commands_guessed += 1,
            Attribution::Key | Attribution::Time => {}
        }
        self.sessions.command(index, ts_ms, command);
    }

    /// Housekeeping at most once a minute of log time: ends idle and full
    /// windows, closes disconnected sessions whose close line never came,
    /// forgets stale connections and old failures.
    fn sweep(&mut self) {
        let now = self.now_ms;
        let mut i = 0;
        while i < self.sessions.open.len() {
            if self.sessions.open[i].disconnected_ms.is_some_and(|d| now - d >= CLOSE_GRACE_MS) {
                let end = self.sessions.open[i].disconnected_ms;
                let closed = self.sessions.close(i, end);
                self.emit_session(closed);
            } else {
                i += 1;
            }
        }
        let window_ms = self.config.source_window_secs.saturating_mul(1000);
        let idle_ms = self.config.source_idle_secs.saturating_mul(1000);
        let mut ended: Vec<IpAddr> = self
            .sources
            .values()
            .filter(|w| now - w.start_ms >= window_ms || now - w.last_ms >= idle_ms)
            .map(|w| w.ip)
            .collect();
        ended.sort_by_key(|ip| self.sources[ip].start_ms);
        for ip in ended {
            if let Some(w) = self.sources.remove(&ip) {
                self.emit_source(w);
            }
        }
        if self.device.as_ref().is_some_and(|d| now - d.start_ms >= window_ms) {
            if let Some(d) = self.device.take() {
                self.emit_device(d);
            }
        }
        self.conns.retain(|_, c| now - c.last_ms < CONNECTION_IDLE_MS);
        self.ended_unpaired.retain(|_, (_, ended)| now - *ended < ENDED_CONNECTION_MS);
        self.failures.expire(now - self.config.failure_lookback_secs.saturating_mul(1000));
    }

    fn emit_session(&mut self, closed: ClosedSession) {
        let fingerprint = closed.fingerprint();
        let s = closed.session;
        let open = closed.end_ms.is_none();
        self.stats.sessions += 1;
        if open {
            self.stats.open_sessions += 1;
        }
        if let Some(w) = s.ip.and_then(|ip| self.sources.get_mut(&ip)) {
            w.commands = w.commands.saturating_add(s.detail.commands_total);
            w.risky = w.risky.saturating_add(s.risky);
        }
        self.ready.push(Observation {
            kind: RecordKind::Session,
            source_ip: s.ip,
            user: Some(s.user),
            start: s.start_ms.div_euclid(1000),
            end: closed.end_ms.map(|e| e.div_euclid(1000)),
            open,
            fingerprint,
            commands: s.commands,
            session: Some(s.detail),
            source: None,
            device: None,
        });
    }

    fn emit_source(&mut self, w: SourceWindow) {
        self.stats.sources += 1;
        let tor = self.config.tor_exit_list.contains(&w.ip);
        self.ready.push(Observation {
            kind: RecordKind::Source,
            source_ip: Some(w.ip),
            user: None,
            start: w.start_ms.div_euclid(1000),
            end: Some(w.last_ms.div_euclid(1000)),
            open: false,
            fingerprint: w.fingerprint(tor),
            commands: Vec::new(),
            session: None,
            source: Some(w.stats()),
            device: None,
        });
    }

    fn emit_device(&mut self, d: DeviceWindow) {
        if !d.has_failures() {
            return;
        }
        self.stats.devices += 1;
        self.ready.push(Observation {
            kind: RecordKind::Device,
            source_ip: None,
            user: None,
            start: d.start_ms.div_euclid(1000),
            end: Some(d.last_ms.div_euclid(1000)),
            open: false,
            fingerprint: d.fingerprint(),
            commands: Vec::new(),
            session: None,
            source: None,
            device: Some(d.stats()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_from_first_bytes() {
        assert_eq!(LogFormat::detect(b"Mar 27 13:06:56 host sshd[1]: x\n"), LogFormat::Syslog);
        assert_eq!(LogFormat::detect(br#"{"eventid": "cowrie.session.connect"}"#), LogFormat::Cowrie);
        assert_eq!(LogFormat::detect(br#"{"__CURSOR":"s","__REALTIME_TIMESTAMP":"1"}"#), LogFormat::Journald);
        assert_eq!(LogFormat::detect(br#"{"other":1}"#), LogFormat::Auto);
        let rec = utmp::encode(utmp::USER_PROCESS, 1, "pts/0", "pi", "", 0, None);
        assert_eq!(LogFormat::detect(&rec), LogFormat::Utmp);
        assert_eq!(LogFormat::detect(b""), LogFormat::Syslog);
        assert_eq!(LogFormat::from_name("WTMP").unwrap(), LogFormat::Utmp);
        assert!(LogFormat::from_name("xml").unwrap_err().to_string().contains("format"));
    }

    #[test]
    fn sudo_tries_without_a_pid_pair_by_user_and_end_with_the_command() {
        // qiita-sudo.log's lines (logs/testdata/unseen): pam_unix's failure, sudo's count of
        // the same three tries, the command that then ran.
        let pam = "Apr 25 15:29:19 ohtsuka-qradar-target01 sudo: pam_unix(sudo:auth): authentication failure; logname=test uid=1000 euid=0 tty=/dev/pts/4 ruser=test rhost=  user=test";
        let three = "Apr 25 15:29:28 ohtsuka-qradar-target01 sudo:     test : 3 incorrect password attempts ; TTY=pts/4 ; PWD=/home/test ; USER=root ; COMMAND=/usr/bin/su -";
        let ran = "Apr 25 15:30:10 ohtsuka-qradar-target01 sudo:     test : TTY=pts/4 ; PWD=/home/test ; USER=root ; COMMAND=/usr/bin/su -";
        let mut a = Analyzer::new(AnalyzerConfig { reference_time: Some(1_795_564_800), ..AnalyzerConfig::default() });
        for line in [pam, three] {
            a.feed_line(line, LogFormat::Syslog);
        }
        assert_eq!(a.stats().failed_logins, 3, "one PAM line for three tries");
        // Replayed: a mistyped password then the right one (PAM's line, then the command),
        // then three wrong ones: 1 + 3, not 1 + 1 + 2 (the first PAM line must not pair
        // with the second attempt's count).
        for line in [pam, ran, pam, three] {
            a.feed_line(line, LogFormat::Syslog);
        }
        assert_eq!(a.stats().failed_logins, 3 + 1 + 3);
    }

    #[test]
    fn wtmp_names_each_sessions_terminal_for_the_sudo_lines() {
        // 2 Jan 1970 10:00 UTC: pi logs in on pts/1, then on pts/0 (wtmp records), and runs
        // sudo on pts/1, the older session's terminal.
        let mut a = Analyzer::new(AnalyzerConfig { reference_time: Some(86_400 * 30), ..AnalyzerConfig::default() });
        let at = 86_400 + 36_000;
        for (pid, line, secs) in [(700, "pts/1", at), (800, "pts/0", at + 60)] {
            let rec = utmp::encode(utmp::USER_PROCESS, pid, line, "pi", "203.0.113.4", secs, None);
            a.feed_utmp(&rec, UtmpArch::X86_64);
        }
        a.feed_line(
            "Jan  2 10:05:00 h sudo:       pi : TTY=pts/1 ; PWD=/home/pi ; USER=root ; COMMAND=/usr/bin/id",
            LogFormat::Syslog,
        );
        let obs = a.finish();
        let with: Vec<(Option<&str>, usize)> =
            obs.iter().filter_map(|o| o.session.as_ref().map(|d| (d.tty.as_deref(), o.commands.len()))).collect();
        assert_eq!(with, vec![(Some("pts/1"), 1), (Some("pts/0"), 0)]);
        assert_eq!((a.stats().commands_by_tty, a.stats().commands_guessed), (1, 0));
    }

    /// The elastic host's lines (shared/data/real/elastic/auth.log, 28 Mar 19:13), in the
    /// forms it wrote them: ubuntu's first session (monitor 29543, child 29582, pts/0)
    /// and, before it ends, a second one from the same address (monitor 29700, child
    /// 29711, pts/1); pids and times of the second are this test's.
    const TWO_SESSIONS: [&str; 12] = [
        "Mar 28 19:13:32 ip-10-77-20-248 sshd[29543]: Accepted publickey for ubuntu from 85.245.107.41 port 61663 ssh2: RSA SHA256:Kl8kPGZrTiz7g4FO1hyqHdsSBBb5Fge6NWOobN03XJg",
        "Mar 28 19:13:32 ip-10-77-20-248 sshd[29543]: pam_unix(sshd:session): session opened for user ubuntu by (uid=0)",
        "Mar 28 19:13:32 ip-10-77-20-248 systemd-logind[1118]: New session 45 of user ubuntu.",
        "Mar 28 19:13:32 ip-10-77-20-248 sshd[29543]: User child is on pid 29582",
        "Mar 28 19:13:32 ip-10-77-20-248 sshd[29582]: Starting session: shell on pts/0 for ubuntu from 85.245.107.41 port 61663 id 0",
        "Mar 28 19:14:02 ip-10-77-20-248 sshd[29700]: Accepted publickey for ubuntu from 85.245.107.41 port 61667 ssh2: RSA SHA256:Kl8kPGZrTiz7g4FO1hyqHdsSBBb5Fge6NWOobN03XJg",
        "Mar 28 19:14:02 ip-10-77-20-248 sshd[29700]: pam_unix(sshd:session): session opened for user ubuntu by (uid=0)",
        "Mar 28 19:14:02 ip-10-77-20-248 systemd-logind[1118]: New session 46 of user ubuntu.",
        "Mar 28 19:14:02 ip-10-77-20-248 sshd[29700]: User child is on pid 29711",
        "Mar 28 19:14:02 ip-10-77-20-248 sshd[29711]: Starting session: shell on pts/1 for ubuntu from 85.245.107.41 port 61667 id 0",
        // The older session's sudo, after the newer one opened.
        "Mar 28 19:14:37 ip-10-77-20-248 sudo:   ubuntu : TTY=pts/0 ; PWD=/home/ubuntu ; USER=root ; COMMAND=/usr/bin/vim /etc/ssh/sshd_config",
        "Mar 28 19:14:44 ip-10-77-20-248 sudo:   ubuntu : TTY=pts/1 ; PWD=/home/ubuntu ; USER=root ; COMMAND=/usr/sbin/service ssh restart",
    ];

    const TWO_SESSIONS_END: [&str; 6] = [
        "Mar 28 19:15:48 ip-10-77-20-248 sshd[29582]: Received disconnect from 85.245.107.41 port 61663:11: disconnected by user",
        "Mar 28 19:15:48 ip-10-77-20-248 sshd[29582]: Disconnected from 85.245.107.41 port 61663",
        "Mar 28 19:15:48 ip-10-77-20-248 sshd[29543]: pam_unix(sshd:session): session closed for user ubuntu",
        "Mar 28 19:16:10 ip-10-77-20-248 sshd[29711]: Received disconnect from 85.245.107.41 port 61667:11: disconnected by user",
        "Mar 28 19:16:10 ip-10-77-20-248 sshd[29711]: Disconnected from 85.245.107.41 port 61667",
        "Mar 28 19:16:10 ip-10-77-20-248 sshd[29700]: pam_unix(sshd:session): session closed for user ubuntu",
    ];

    /// A session as the attribution tests see it: (session id, terminal, commands, end).
    type Seen = (String, Option<String>, Vec<String>, Option<i64>);

    /// ubuntu's sessions in login order.
    fn sessions_of(lines: &[&str]) -> (Vec<Seen>, ParseStats) {
        let mut a = Analyzer::new(AnalyzerConfig { reference_time: Some(1_774_742_400), ..AnalyzerConfig::default() });
        for line in lines {
            a.feed_line(line, LogFormat::Syslog);
        }
        let mut obs: Vec<Observation> = a.finish().into_iter().filter(|o| o.kind == RecordKind::Session).collect();
        obs.sort_by_key(|o| o.start);
        let sessions = obs
            .into_iter()
            .map(|o| {
                let d = o.session.unwrap();
                (d.session_id.unwrap_or_default(), d.tty, o.commands, o.end)
            })
            .collect();
        (sessions, a.stats().clone())
    }

    #[test]
    fn a_command_goes_to_the_session_whose_child_named_its_terminal_not_the_newest() {
        let lines: Vec<&str> = TWO_SESSIONS.iter().chain(&TWO_SESSIONS_END).copied().collect();
        let (sessions, stats) = sessions_of(&lines);
        let vim = "/usr/bin/vim /etc/ssh/sshd_config".to_string();
        let restart = "/usr/sbin/service ssh restart".to_string();
        assert_eq!(sessions.len(), 2, "{sessions:?}");
        assert_eq!((sessions[0].0.as_str(), sessions[0].1.as_deref()), ("29543", Some("pts/0")));
        assert_eq!(sessions[0].2, vec![vim.clone()], "the older session's sudo is the older session's");
        assert_eq!((sessions[1].0.as_str(), sessions[1].1.as_deref()), ("29700", Some("pts/1")));
        assert_eq!(sessions[1].2, vec![restart.clone()]);
        assert_eq!((stats.commands_by_tty, stats.commands_guessed), (2, 0));
        // Each child's disconnect ends its own session (both from one address).
        assert_eq!(
            sessions.iter().map(|s| s.3).collect::<Vec<_>>(),
            vec![Some(1_774_725_348), Some(1_774_725_370)],
            "closed 19:15:48 and 19:16:10 UTC"
        );

        // Without the sshd lines that name the terminals (LogLevel INFO), nothing tells
        // the two apart: the newest takes the older session's sudo, counted as a guess.
        let info: Vec<&str> =
            lines.iter().copied().filter(|l| !l.contains("Starting session") && !l.contains("User child")).collect();
        let (sessions, stats) = sessions_of(&info);
        assert_eq!(sessions[1].2.first(), Some(&vim), "{sessions:?}");
        assert!(stats.commands_guessed >= 1, "{stats:?}");

        // An sshd that does not say which pid is the child (no "User child is on pid"):
        // the session of that user and address whose terminal is not known yet.
        let no_child: Vec<&str> = lines.iter().copied().filter(|l| !l.contains("User child")).collect();
        let (sessions, stats) = sessions_of(&no_child);
        assert_eq!((sessions[0].1.as_deref(), &sessions[0].2), (Some("pts/0"), &vec![vim.clone()]));
        assert_eq!((sessions[1].1.as_deref(), &sessions[1].2), (Some("pts/1"), &vec![restart.clone()]));
        assert_eq!(stats.commands_guessed, 0);
    }

    #[test]
    fn a_late_line_goes_to_the_session_open_at_its_time() {
        // Two files read out of time order: the older session's sudo (19:13:50, on
        // no terminal sudo could name) arrives after the newer session (19:14:02) opened.
        let late = "Mar 28 19:13:50 ip-10-77-20-248 sudo:   ubuntu : TTY=unknown ; PWD=/home/ubuntu ; USER=root ; COMMAND=/usr/bin/id";
        let mut lines: Vec<&str> = TWO_SESSIONS[..10].to_vec();
        lines.push(late);
        lines.extend(TWO_SESSIONS_END);
        let (sessions, stats) = sessions_of(&lines);
        assert_eq!(sessions[0].2, vec!["/usr/bin/id".to_string()], "{sessions:?}");
        assert!(sessions[1].2.is_empty());
        assert_eq!(stats.commands_guessed, 0);
    }

    #[test]
    fn last_message_repeated_counts_the_previous_line_again_from_the_same_program() {
        let mut a = Analyzer::new(AnalyzerConfig { reference_time: Some(86_400 * 30), ..AnalyzerConfig::default() });
        // A repeat before any line repeats nothing known.
        a.feed_line("Jan  2 00:00:00 h last message repeated 2 times", LogFormat::Syslog);
        assert_eq!(a.stats().failed_logins, 0);
        a.feed_line(
            "Jan  2 00:00:01 h sshd[9]: Failed password for root from 203.0.113.4 port 1 ssh2",
            LogFormat::Syslog,
        );
        a.feed_line("Jan  2 00:00:31 h last message repeated 4 times", LogFormat::Syslog);
        assert_eq!(a.stats().failed_logins, 5);
        a.feed_line("Jan  2 00:00:40 h sshd[9]: last message repeated 1 time", LogFormat::Syslog);
        assert_eq!(a.stats().failed_logins, 6);
        // Another program's repeat does not repeat sshd's line.
        a.feed_line("Jan  2 00:00:50 h sudo: last message repeated 3 times", LogFormat::Syslog);
        assert_eq!(a.stats().failed_logins, 6);
        assert_eq!(a.stats().unknown.get("<repeat of nothing known>"), Some(&1));
        assert_eq!(a.stats().unknown.get("sudo"), Some(&1));
        let source = a.finish().into_iter().find(|o| o.kind == RecordKind::Source).expect("a source window");
        assert_eq!(source.fingerprint.failed_logins, 6);
    }

    #[test]
    fn tick_ends_quiet_windows_without_a_new_line() {
        let mut a = Analyzer::new(AnalyzerConfig { reference_time: Some(86_400 * 30), ..AnalyzerConfig::default() });
        a.feed_line(
            "Jan  2 00:00:00 h sshd[9]: Failed password for root from 203.0.113.4 port 1 ssh2",
            LogFormat::Syslog,
        );
        assert!(a.drain_ready().is_empty());
        a.tick(86_400 + 3600);
        assert!(a.drain_ready().is_empty(), "an hour of quiet is not the end of a slow attack");
        a.tick(86_400 + 7 * 3600);
        let ready = a.drain_ready();
        assert_eq!(ready.len(), 1, "six idle hours end the source window: {ready:?}");
        assert_eq!(ready[0].kind, RecordKind::Source);
        a.tick(2 * 86_400);
        assert_eq!(a.drain_ready()[0].kind, RecordKind::Device, "the device window ends after a day");
        a.tick(0);
        assert!(a.finish().is_empty());
    }

    /// Feeds sshd lines (`MM:SS message`, pid given per line) on 2 Jan and
    /// returns the sessions' `failed_logins` by user in login order, and the observations.
    fn sshd(lines: &[(&str, u32, &str)]) -> (Vec<(String, u32)>, Vec<Observation>) {
        let mut a = Analyzer::new(AnalyzerConfig { reference_time: Some(86_400 * 30), ..AnalyzerConfig::default() });
        for (time, pid, msg) in lines {
            a.feed_line(&format!("Jan  2 10:{time} h sshd[{pid}]: {msg}"), LogFormat::Syslog);
        }
        let mut obs = a.drain_ready();
        obs.extend(a.finish());
        let mut sessions: Vec<&Observation> = obs.iter().filter(|o| o.kind == RecordKind::Session).collect();
        sessions.sort_by_key(|o| o.start);
        let counts =
            sessions.iter().map(|o| (o.user.clone().unwrap_or_default(), o.fingerprint.failed_logins)).collect();
        (counts, obs)
    }

    const IP: &str = "from 198.51.100.7 port 50690 ssh2";

    #[test]
    fn key_probes_of_the_connection_that_logs_in_are_not_failed_logins() {
        let key = format!("Failed publickey for alice {IP}: RSA SHA256:aC2U");
        let (counts, _) = sshd(&[
            ("00:00", 7, &key),
            ("00:00", 7, &key),
            ("00:01", 7, &key),
            ("00:02", 7, &format!("Accepted password for alice {IP}")),
        ]);
        assert_eq!(counts, vec![("alice".to_string(), 0)]);
    }

    #[test]
    fn key_probes_of_a_connection_that_gave_up_count() {
        let (counts, _) = sshd(&[
            ("00:00", 7, &format!("Failed publickey for alice {IP}: RSA SHA256:aC2U")),
            ("00:01", 7, "Connection closed by authenticating user alice 198.51.100.7 port 50690 [preauth]"),
            ("00:05", 8, &format!("Failed publickey for alice {IP}: RSA SHA256:aC2U")),
            ("00:06", 8, &format!("Accepted password for alice {IP}")),
        ]);
        assert_eq!(counts, vec![("alice".to_string(), 1)], "the first connection's refused key only");
    }

    #[test]
    fn mistyped_passwords_before_the_login_count() {
        let (counts, _) = sshd(&[
            (
                "00:00",
                7,
                "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7  user=alice",
            ),
            ("00:02", 7, &format!("Failed password for alice {IP}")),
            ("00:05", 7, &format!("Failed password for alice {IP}")),
            ("00:09", 7, &format!("Accepted password for alice {IP}")),
        ]);
        assert_eq!(counts, vec![("alice".to_string(), 2)], "PAM's line and sshd's are one attempt");
    }

    #[test]
    fn another_users_failures_are_the_sources_not_the_session() {
        let root = format!("Failed password for root {IP}");
        let (counts, obs) = sshd(&[
            ("00:00", 5, &root),
            ("00:01", 5, &root),
            ("00:02", 6, &root),
            ("00:09", 7, &format!("Accepted password for alice {IP}")),
        ]);
        assert_eq!(counts, vec![("alice".to_string(), 0)]);
        let source = obs.iter().find(|o| o.kind == RecordKind::Source).unwrap();
        assert_eq!(source.fingerprint.failed_logins, 3, "the source window still sees them");
        let detail = obs.iter().find_map(|o| o.session.as_ref()).unwrap();
        assert_eq!((detail.failed_from_source, detail.failed_source_and_user), (3, 0));
    }

    #[test]
    fn a_success_settles_earlier_failures_and_new_ones_count_again() {
        let failed = format!("Failed password for alice {IP}");
        let accepted = format!("Accepted password for alice {IP}");
        let (counts, _) = sshd(&[
            ("00:00", 7, &failed),
            ("00:01", 7, &failed),
            ("00:02", 7, &accepted),
            ("05:00", 7, "pam_unix(sshd:session): session closed for user alice"),
            ("10:00", 8, &accepted),
            ("15:00", 8, "pam_unix(sshd:session): session closed for user alice"),
            ("20:00", 9, &failed),
            ("20:05", 9, &accepted),
        ]);
        let expect = [("alice", 2), ("alice", 0), ("alice", 1)];
        assert_eq!(counts, expect.map(|(u, n)| (u.to_string(), n)).to_vec());
    }

    #[test]
    fn failures_older_than_the_look_back_are_forgotten() {
        let mut a = Analyzer::new(AnalyzerConfig {
            reference_time: Some(86_400 * 30),
            failure_lookback_secs: 3600,
            ..AnalyzerConfig::default()
        });
        a.feed_line(&format!("Jan  2 08:00:00 h sshd[7]: Failed password for alice {IP}"), LogFormat::Syslog);
        a.feed_line(&format!("Jan  2 09:30:00 h sshd[8]: Failed password for alice {IP}"), LogFormat::Syslog);
        a.feed_line(&format!("Jan  2 10:00:00 h sshd[8]: Accepted password for alice {IP}"), LogFormat::Syslog);
        let obs = a.finish();
        let session = obs.iter().find(|o| o.kind == RecordKind::Session).unwrap();
        assert_eq!(session.fingerprint.failed_logins, 1, "08:00 is more than an hour before 10:00");
    }

    #[test]
    fn oldest_quarter_picks_the_stalest() {
        let mut got = oldest_quarter((0..8i64).rev().map(|t| (t, t)));
        got.sort();
        assert_eq!(got, vec![0, 1]);
        assert_eq!(oldest_quarter([(5i64, 'a')].into_iter()), vec!['a']);
        assert!(oldest_quarter(std::iter::empty::<(i64, u8)>()).is_empty());
    }

    #[test]
    fn unknown_programs_are_counted_and_bounded() {
        let mut a = Analyzer::new(AnalyzerConfig { reference_time: Some(0), ..AnalyzerConfig::default() });
        for i in 0..100 {
            a.feed_line(&format!("Jan  1 00:00:00 h prog{i}[1]: hello"), LogFormat::Syslog);
        }
        a.feed_line("garbage", LogFormat::Syslog);
        a.feed_line("Jan  1 00:00:00 h sshd[2]: a message sshd never wrote", LogFormat::Syslog);
        let s = a.stats();
        assert_eq!(s.lines, 102);
        assert_eq!(s.unknown_total(), 102);
        assert_eq!(s.unknown.len(), MAX_UNKNOWN_PROGRAMS + 1, "64 names and <other>");
        assert_eq!(s.by_kind[Program::Sshd], 0, "an unknown sshd message is not a known sshd line");
    }
}
