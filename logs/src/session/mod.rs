//! Session reconstruction: a login opens a session, keyed by the process id
//! that logged it (sshd, dropbear, login, FTP servers), Cowrie's session id,
//! or the wtmp tty line; the matching close (PAM "session closed", dropbear
//! "Exit", Cowrie `session.closed`, wtmp DEAD_PROCESS) ends it. Lines without
//! a pid (ProFTPD on Plesk) close the oldest open session of that user and
//! program; a "Disconnected"/"Received disconnect" from another process of the
//! same sshd connection ends the open session from that address if there is
//! only one (with several, their own close lines decide). A session whose
//! disconnect was seen is closed at that time if no close line follows
//! within a minute.
//!
//! Between open and close the session collects commands: sudo `COMMAND=` and
//! `su` by the session's user, Cowrie input, FTP transfers. Which of a user's
//! open sessions takes a command (or a refused sudo) is decided by
//! [`Sessions::for_command`]: the terminal first, then the line's time, and
//! only when neither tells them apart the newest (counted as a guess). A
//! session learns its terminal from wtmp, or from the first sudo/su line that
//! names one while it is the only session of its user that could have written
//! it (see docs/log-parsing.md, "Which session a command belongs to").
//!
//! Failed logins before the success are looked up in a bounded log of recent
//! failures and successes ([`FailureLog`]): the fingerprint's `failed_logins`
//! counts those from the same source and for the same user since that user's
//! previous success from that source, within the look-back window, leaving
//! out the keys the session's own connection tried before it got in.
//! Attempts for other users from the same address are source-level evidence
//! (the source window counts them); [`SessionDetail`] also carries the
//! per-source and per-user counts for context.

use std::collections::VecDeque;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::parse::AuthMethod;
use bfp_common::fingerprint::is_risky_command;
use bfp_common::{Fingerprint, Protocol};

/// Which log a session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Program {
    /// OpenSSH sshd / sshd-session.
    Sshd,
    /// Dropbear.
    Dropbear,
    /// login (console, telnet).
    Login,
    /// vsftpd, ProFTPD, ftpd.
    Ftp,
    /// Cowrie honeypot.
    Cowrie,
    /// wtmp records.
    Utmp,
    /// Web logins (OpenWrt LuCI through uhttpd).
    Web,
    /// su.
    Su,
    /// sudo.
    Sudo,
    /// cron (PAM sessions of jobs: not people).
    Cron,
    /// Any other program's PAM lines.
    Pam,
    /// Account management tools (useradd, passwd, ...).
    Account,
    /// systemd-logind's session and seat lines (known, judged by nothing).
    Logind,
}

impl Program {
    /// Every program, in declaration order (the index of each).
    pub const ALL: [Program; 13] = [
        Program::Sshd,
        Program::Dropbear,
        Program::Login,
        Program::Ftp,
        Program::Cowrie,
        Program::Utmp,
        Program::Web,
        Program::Su,
        Program::Sudo,
        Program::Cron,
        Program::Pam,
        Program::Account,
        Program::Logind,
    ];

    /// Its lowercase name, as counts and records write it.
    pub fn name(self) -> &'static str {
        match self {
            Program::Sshd => "sshd",
            Program::Dropbear => "dropbear",
            Program::Login => "login",
            Program::Ftp => "ftp",
            Program::Cowrie => "cowrie",
            Program::Utmp => "utmp",
            Program::Web => "web",
            Program::Su => "su",
            Program::Sudo => "sudo",
            Program::Cron => "cron",
            Program::Pam => "pam",
            Program::Account => "account",
            Program::Logind => "logind",
        }
    }

    /// The protocol a session of this program arrived over.
    pub fn protocol(self) -> Protocol {
        match self {
            Program::Ftp => Protocol::Ftp,
            Program::Web => Protocol::Https,
            _ => Protocol::Ssh,
        }
    }

    /// Whether its sessions are logins of a person or a bot (not cron jobs,
    /// not sudo/su, which run inside another session).
    pub fn opens_sessions(self) -> bool {
        matches!(
            self,
            Program::Sshd | Program::Dropbear | Program::Login | Program::Ftp | Program::Cowrie | Program::Utmp
        )
    }

    /// Whether its log writes no logout: a login is reported at once, as open.
    pub fn logs_no_logout(self) -> bool {
        matches!(self, Program::Web)
    }

    /// Whether every command of its sessions is logged with its time, which
    /// is what a typing speed needs (a few sudo lines are not a typing speed).
    pub fn logs_every_command(self) -> bool {
        matches!(self, Program::Cowrie)
    }
}

/// What keys an open session or connection: the program and its pid, a
/// hashed Cowrie session id, or a hashed tty line.
pub type Key = (Program, u64);

/// Details of a session beyond the fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionDetail {
    /// Which log it came from.
    pub program: Program,
    /// The pid, Cowrie session id or tty that keyed it.
    pub session_id: Option<String>,
    /// How the user authenticated (`unknown` when only a PAM or wtmp line opened it).
    pub auth_method: AuthMethod,
    /// Failed logins from the same address, any user, in the look-back window
    /// (context: the source window scores these).
    pub failed_from_source: u32,
    /// Failed logins for the same user name, from anywhere, in the look-back window.
    pub failed_for_user: u32,
    /// Failed logins from the same address (none: local) for the same user
    /// since that user's previous success from there, in the look-back
    /// window: the fingerprint's `failed_logins`.
    pub failed_source_and_user: u32,
    /// Files downloaded (Cowrie).
    pub downloads: u32,
    /// Commands seen, including any beyond the kept list's bound.
    pub commands_total: u32,
    /// The duration comes from the log's own figure (Cowrie) rather than open/close times.
    pub duration_reported: bool,
    /// The session's terminal (`pts/0`), when wtmp or a sudo/su line of it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<String>,
}

/// An open session.
#[derive(Debug, Clone)]
pub(crate) struct OpenSession {
    pub key: Key,
    pub user: String,
    pub ip: Option<IpAddr>,
    pub start_ms: i64,
    pub offset_secs: i32,
    pub last_ms: i64,
    pub disconnected_ms: Option<i64>,
    pub protocol: Protocol,
    pub detail: SessionDetail,
    pub commands: Vec<String>,
    pub risky: u32,
    pub typed_chars: u64,
    pub last_command_ms: Option<i64>,
    pub reported_secs: Option<f64>,
    /// The process that runs the session (OpenSSH's child, "User child is on
    /// pid N"), whose lines are the session's too.
    pub child: Option<u64>,
}

/// A finished (or still open) session, ready to become an observation.
#[derive(Debug, Clone)]
pub(crate) struct ClosedSession {
    pub session: OpenSession,
    pub end_ms: Option<i64>,
}

impl ClosedSession {
    /// The fingerprint of the session (see the module doc of [`crate::analyze`]).
    pub fn fingerprint(&self) -> Fingerprint {
        let s = &self.session;
        let end = self.end_ms.unwrap_or(s.last_ms.max(s.start_ms));
        let duration_min = match s.reported_secs {
            Some(secs) => secs / 60.0,
            None => (end - s.start_ms).max(0) as f64 / 60_000.0,
        };
        let typing_speed_wpm = if s.detail.program.logs_every_command() {
            typing_speed(s.typed_chars, s.start_ms, s.last_command_ms)
        } else {
            None
        };
        Fingerprint {
            login_hour: local_hour(s.start_ms, s.offset_secs),
            session_duration_min: duration_min.min(525_600.0) as f32,
            commands: s.detail.commands_total,
            failed_logins: s.detail.failed_source_and_user,
            protocol: s.protocol,
            typing_speed_wpm,
            risky_commands: Some(s.risky),
        }
    }
}

/// Words per minute of `chars` typed between the login and the last command
/// (a word is five characters, the usual convention); `None` without a
/// command or a measurable span.
pub fn typing_speed(chars: u64, login_ms: i64, last_command_ms: Option<i64>) -> Option<f32> {
    let span_ms = last_command_ms? - login_ms;
    if chars == 0 || span_ms <= 0 {
        return None;
    }
    let wpm = (chars as f64 / 5.0) / (span_ms as f64 / 60_000.0);
    Some(wpm.min(1_000_000.0) as f32)
}

/// Local hour (0–23) of a unix-milliseconds instant at `offset_secs` from UTC.
pub fn local_hour(ms: i64, offset_secs: i32) -> u8 {
    ((ms.div_euclid(1000) + i64::from(offset_secs)).rem_euclid(86_400) / 3600) as u8
}

/// How [`Sessions::for_command`] chose a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attribution {
    /// The line names the session's own key (Cowrie's session id).
    Key,
    /// The session is on the line's terminal (known before, or learnt now).
    Tty,
    /// The only session of the user open at the line's time.
    Time,
    /// The newest of several that nothing told apart.
    Guessed,
}

/// The open sessions. Few at a time on a device, so a vector.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    pub open: Vec<OpenSession>,
    pub max_commands: usize,
}

impl Sessions {
    pub fn find(&self, key: Key) -> Option<usize> {
        self.open.iter().rposition(|s| s.key == key)
    }

    /// The session whose process logged a line keyed `key`: its own key, or
    /// the child process that runs it.
    pub fn find_process(&self, key: Key) -> Option<usize> {
        self.find(key).or_else(|| self.open.iter().rposition(|s| s.detail.program == key.0 && s.child == Some(key.1)))
    }

    /// The one open session of `user` from `ip` of `program` whose terminal
    /// is not known yet; `None` when there are none or several.
    pub fn only_one_without_tty(&self, user: &str, ip: Option<IpAddr>, program: Program) -> Option<usize> {
        let mut found = None;
        for (i, s) in self.open.iter().enumerate() {
            if s.user == user && s.ip == ip && s.detail.program == program && s.detail.tty.is_none() {
                if found.is_some() {
                    return None;
                }
                found = Some(i);
            }
        }
        found
    }

    /// The open session of `user` that a command (or a refusal) logged at
    /// `ts_ms` on terminal `tty` belongs to; Cowrie's sessions are left out
    /// (their commands come by session id). In order:
    ///
    /// 1. of the sessions open at `ts_ms` (started by then, not disconnected
    ///    before), the one on `tty`;
    /// 2. else, of those, the only one whose terminal is not known yet: it
    ///    learns `tty` (another user's session cannot have written the line,
    ///    and a session on another terminal did not);
    /// 3. else the only one open at `ts_ms`;
    /// 4. else the newest of those open at `ts_ms` that could be on `tty`, or
    ///    of all the user's open sessions when none was open then (a line
    ///    older than every open session): a guess, [`Attribution::Guessed`]
    ///    when there was more than one to choose from.
    pub fn for_command(&mut self, user: &str, tty: Option<&str>, ts_ms: i64) -> Option<(usize, Attribution)> {
        let takes = |s: &OpenSession| s.user == user && s.detail.program != Program::Cowrie;
        let open_then = |s: &OpenSession| s.start_ms <= ts_ms && s.disconnected_ms.is_none_or(|d| d >= ts_ms);
        // Few sessions per user: one pass keeps what each rule needs.
        let (mut on_tty, mut unknown_tty, mut unknown_count) = (None, None, 0u32);
        let (mut newest_then, mut then_count, mut newest_any, mut any_count) = (None, 0u32, None, 0u32);
        let newer = |best: Option<usize>, i: usize, open: &[OpenSession]| {
            best.is_none_or(|b: usize| open[i].start_ms >= open[b].start_ms)
        };
        for (i, s) in self.open.iter().enumerate() {
            if !takes(s) {
                continue;
            }
            any_count += 1;
            if newer(newest_any, i, &self.open) {
                newest_any = Some(i);
            }
            if !open_then(s) {
                continue;
            }
            then_count += 1;
            if newer(newest_then, i, &self.open) {
                newest_then = Some(i);
            }
            match (&s.detail.tty, tty) {
                (Some(known), Some(t)) if known == t && newer(on_tty, i, &self.open) => on_tty = Some(i),
                (Some(_), _) => {}
                (None, _) => {
                    unknown_count += 1;
                    if newer(unknown_tty, i, &self.open) {
                        unknown_tty = Some(i);
                    }
                }
            }
        }
        if let Some(i) = on_tty {
            return Some((i, Attribution::Tty));
        }
        if let (Some(t), Some(i), 1) = (tty, unknown_tty, unknown_count) {
            self.open[i].detail.tty = Some(t.to_owned());
            return Some((i, Attribution::Tty));
        }
        if then_count == 1 {
            return newest_then.map(|i| (i, Attribution::Time));
        }
        let (pick, choices) = match (unknown_tty, newest_then) {
            (Some(i), _) if tty.is_some() => (Some(i), unknown_count),
            (_, Some(i)) => (Some(i), then_count),
            (_, None) => (newest_any, any_count),
        };
        pick.map(|i| (i, if choices > 1 { Attribution::Guessed } else { Attribution::Time }))
    }

    /// The oldest open session of `user` from `program` (pid-less closes).
    pub fn oldest_of_user(&self, user: &str, program: Program) -> Option<usize> {
        self.open.iter().position(|s| s.user == user && s.detail.program == program)
    }

    /// The one open, not yet disconnected session from `ip` of `program`;
    /// `None` when there are several (which one ended is then unknown, and
    /// their own close lines will tell).
    pub fn only_one_from(&self, ip: IpAddr, program: Program) -> Option<usize> {
        let mut found = None;
        for (i, s) in self.open.iter().enumerate() {
            if s.ip == Some(ip) && s.detail.program == program && s.disconnected_ms.is_none() {
                if found.is_some() {
                    return None;
                }
                found = Some(i);
            }
        }
        found
    }

    pub fn close(&mut self, index: usize, end_ms: Option<i64>) -> ClosedSession {
        let session = self.open.remove(index);
        ClosedSession { session, end_ms }
    }

    /// Adds a command to session `index`.
    pub fn command(&mut self, index: usize, ts_ms: i64, command: &str) {
        let s = &mut self.open[index];
        s.detail.commands_total = s.detail.commands_total.saturating_add(1);
        s.last_ms = s.last_ms.max(ts_ms);
        if is_risky_command(command) {
            s.risky += 1;
        }
        // One keystroke per character plus Enter.
        s.typed_chars += command.chars().count() as u64 + 1;
        s.last_command_ms = Some(ts_ms);
        if s.commands.len() < self.max_commands {
            s.commands.push(command.to_owned());
        }
    }
}

/// A bounded log of recent failed logins and successes, for "failed attempts
/// before the success". Users are kept as hashes: no allocation per failure.
///
/// A session's own count ([`PriorFailures::source_and_user`], its
/// `failed_logins`) takes the failures from the same source (no address:
/// local failures) for the same user since that user's previous success from
/// that source, within the look-back; a refused key of the session's own
/// connection is the client trying its keys and is not counted.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    entries: VecDeque<Entry>,
    cap: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    /// A failed password (or equivalent) attempt.
    Failure,
    /// A refused key or `none` probe (sshd `Failed publickey`).
    KeyProbe,
    /// A successful login: the user's earlier failures from that source are settled.
    Success,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    ts_ms: i64,
    ip: Option<IpAddr>,
    user: u64,
    count: u32,
    /// The connection (program and pid) that logged it, when known.
    key: Option<Key>,
    kind: EntryKind,
}

/// Failure counts before a login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PriorFailures {
    /// From the same address, any user, within the look-back.
    pub from_source: u32,
    /// For the same user, from anywhere, within the look-back.
    pub for_user: u32,
    /// From the same address for the same user, since that user's previous
    /// success from there: the session's `failed_logins`.
    pub source_and_user: u32,
}

impl FailureLog {
    pub fn new(cap: usize) -> FailureLog {
        FailureLog { entries: VecDeque::new(), cap: cap.max(1) }
    }

    fn push_entry(&mut self, entry: Entry) {
        if self.entries.len() == self.cap {
            self.entries.pop_front(); // bounded: the oldest entry is forgotten
        }
        self.entries.push_back(entry);
    }

    /// Records `count` failed attempts (`key_probe`: refused keys, which do
    /// not count against a login of the same connection `key`).
    pub fn push(&mut self, ts_ms: i64, ip: Option<IpAddr>, user: u64, count: u32, key: Option<Key>, key_probe: bool) {
        let kind = if key_probe { EntryKind::KeyProbe } else { EntryKind::Failure };
        self.push_entry(Entry { ts_ms, ip, user, count, key, kind });
    }

    /// Takes back up to `count` failed attempts (not refused keys) that
    /// connection `key` recorded, newest first; returns how many it found.
    /// For stacked PAM: `pam_unix` fails and `pam_sss`/`pam_ldap` then
    /// accepts the same password, and sshd logs `Accepted` with no `Failed`
    /// line: those PAM failures were never failed logins.
    pub fn retract(&mut self, key: Key, count: u32) -> u32 {
        let mut left = count;
        for f in self.entries.iter_mut().rev() {
            if left == 0 {
                break;
            }
            if f.key == Some(key) && f.kind == EntryKind::Failure {
                let n = f.count.min(left);
                f.count -= n;
                left -= n;
            }
        }
        count - left
    }

    /// Records a successful login of `user` from `ip`.
    pub fn success(&mut self, ts_ms: i64, ip: Option<IpAddr>, user: u64) {
        self.push_entry(Entry { ts_ms, ip, user, count: 0, key: None, kind: EntryKind::Success });
    }

    /// Drops entries older than `oldest_ms`.
    pub fn expire(&mut self, oldest_ms: i64) {
        while self.entries.front().is_some_and(|f| f.ts_ms < oldest_ms) {
            self.entries.pop_front();
        }
    }

    /// Counts failures since `since_ms` before a login of `user` from `ip` on
    /// connection `key` (see the type's doc).
    pub fn prior(&self, since_ms: i64, ip: Option<IpAddr>, user: u64, key: Option<Key>) -> PriorFailures {
        let mut p = PriorFailures::default();
        let mut settled = false;
        for f in self.entries.iter().rev().take_while(|f| f.ts_ms >= since_ms) {
            // No address on either side: a local login, whose source is "local".
            let same_source = f.ip == ip;
            let same_user = f.user == user;
            match f.kind {
                EntryKind::Success => {
                    if same_source && same_user {
                        settled = true;
                    }
                    continue;
                }
                EntryKind::KeyProbe if key.is_some() && f.key == key => continue,
                EntryKind::KeyProbe | EntryKind::Failure => {}
            }
            if same_source && ip.is_some() {
                p.from_source += f.count;
            }
            if same_user {
                p.for_user += f.count;
            }
            if same_source && same_user && !settled {
                p.source_and_user += f.count;
            }
        }
        p
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_is_listed_once_at_its_own_index() {
        for (i, p) in Program::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i, "{p:?}");
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
        }
    }

    fn open_session(pid: u64, user: &str, start_ms: i64, tty: Option<&str>) -> OpenSession {
        OpenSession {
            key: (Program::Sshd, pid),
            user: user.to_owned(),
            ip: None,
            start_ms,
            offset_secs: 0,
            last_ms: start_ms,
            disconnected_ms: None,
            protocol: Protocol::Ssh,
            detail: SessionDetail {
                program: Program::Sshd,
                session_id: Some(pid.to_string()),
                auth_method: AuthMethod::Publickey,
                failed_from_source: 0,
                failed_for_user: 0,
                failed_source_and_user: 0,
                downloads: 0,
                commands_total: 0,
                duration_reported: false,
                tty: tty.map(str::to_owned),
            },
            commands: Vec::new(),
            risky: 0,
            typed_chars: 0,
            last_command_ms: None,
            reported_secs: None,
            child: None,
        }
    }

    fn sessions(open: Vec<OpenSession>) -> Sessions {
        Sessions { open, max_commands: 8 }
    }

    #[test]
    fn the_terminal_decides_first_and_is_learnt_only_when_one_session_could_have_it() {
        let mut s = sessions(vec![open_session(1, "alice", 0, None), open_session(2, "alice", 100, None)]);
        // Two open, neither terminal known: nothing tells them apart.
        assert_eq!(s.for_command("alice", Some("pts/0"), 200), Some((1, Attribution::Guessed)));
        assert_eq!(s.open[1].detail.tty, None, "a guess teaches no terminal");
        // At 50 only the first was open: it learns pts/0.
        assert_eq!(s.for_command("alice", Some("pts/0"), 50), Some((0, Attribution::Tty)));
        assert_eq!(s.open[0].detail.tty.as_deref(), Some("pts/0"));
        // Now pts/0 is known, so pts/1 can only be the other one's.
        assert_eq!(s.for_command("alice", Some("pts/0"), 300), Some((0, Attribution::Tty)));
        assert_eq!(s.for_command("alice", Some("pts/1"), 300), Some((1, Attribution::Tty)));
        assert_eq!(s.open[1].detail.tty.as_deref(), Some("pts/1"));
        // A third terminal neither is on: the newest of them, a guess.
        assert_eq!(s.for_command("alice", Some("pts/7"), 300), Some((1, Attribution::Guessed)));
        // No terminal: both open at 300, a guess; at 50 only the first.
        assert_eq!(s.for_command("alice", None, 300), Some((1, Attribution::Guessed)));
        assert_eq!(s.for_command("alice", None, 50), Some((0, Attribution::Time)));
        assert_eq!(s.for_command("bob", Some("pts/0"), 300), None);
    }

    #[test]
    fn a_line_older_than_every_open_session_still_reaches_one() {
        let mut s = sessions(vec![open_session(1, "alice", 1_000, None), open_session(2, "alice", 2_000, None)]);
        assert_eq!(s.for_command("alice", Some("pts/0"), 10), Some((1, Attribution::Guessed)));
        assert_eq!(s.open.iter().filter(|o| o.detail.tty.is_some()).count(), 0);
        let mut one = sessions(vec![open_session(1, "alice", 1_000, None)]);
        assert_eq!(one.for_command("alice", None, 10), Some((0, Attribution::Time)), "the only one");
    }

    #[test]
    fn a_disconnected_session_did_not_run_what_came_after_its_end() {
        let mut gone = open_session(1, "alice", 0, Some("pts/0"));
        gone.disconnected_ms = Some(500);
        let mut s = sessions(vec![gone, open_session(2, "alice", 100, None)]);
        assert_eq!(s.for_command("alice", Some("pts/0"), 600), Some((1, Attribution::Tty)), "pts/0 reused");
        assert_eq!(s.for_command("alice", None, 400), Some((1, Attribution::Guessed)));
        // Cowrie's sessions take commands by session id only.
        let mut cowrie = open_session(3, "alice", 0, None);
        cowrie.detail.program = Program::Cowrie;
        assert_eq!(sessions(vec![cowrie]).for_command("alice", None, 10), None);
    }

    #[test]
    fn typing_speed_needs_commands_and_time() {
        assert_eq!(typing_speed(0, 0, Some(60_000)), None);
        assert_eq!(typing_speed(50, 0, None), None);
        assert_eq!(typing_speed(50, 10, Some(10)), None);
        assert_eq!(typing_speed(100, 0, Some(60_000)), Some(20.0), "100 chars = 20 words in a minute");
    }

    #[test]
    fn local_hour_applies_the_offset() {
        assert_eq!(local_hour(0, 0), 0);
        assert_eq!(local_hour(23 * 3_600_000, 3600), 0);
        assert_eq!(local_hour(0, -3600), 23);
    }

    #[test]
    fn retract_takes_back_only_that_connections_failures() {
        // Stacked PAM (sssd-secure.log in logs/testdata/unseen): pam_unix's failure, then
        // pam_sss's success and "Accepted password" on pid 120959.
        let a: IpAddr = "10.122.150.31".parse().unwrap();
        let (conn, other) = ((Program::Sshd, 120_959), (Program::Sshd, 1));
        let mut log = FailureLog::new(16);
        log.push(0, Some(a), 7, 1, Some(other), false);
        log.push(1, Some(a), 7, 1, Some(conn), true); // a refused key is not taken back
        log.push(2, Some(a), 7, 1, Some(conn), false);
        assert_eq!(log.retract(conn, 3), 1, "one failure of that connection");
        assert_eq!(log.prior(0, Some(a), 7, Some(conn)).source_and_user, 1, "the other connection's failure stays");
        assert_eq!(log.retract((Program::Sshd, 99), 1), 0);
    }

    #[test]
    fn failure_log_counts_by_source_user_and_both_within_the_window() {
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        let mut log = FailureLog::new(3);
        log.push(0, Some(a), 1, 1, None, false); // dropped by the bound below
        log.push(10, Some(a), 1, 2, None, false);
        log.push(20, Some(b), 1, 1, None, false);
        log.push(30, Some(a), 2, 1, None, false);
        assert_eq!(log.len(), 3);
        assert_eq!(log.prior(0, Some(a), 1, None), PriorFailures { from_source: 3, for_user: 3, source_and_user: 2 });
        assert_eq!(log.prior(15, Some(a), 1, None), PriorFailures { from_source: 1, for_user: 1, source_and_user: 0 });
        log.expire(25);
        assert_eq!(log.prior(0, None, 1, None), PriorFailures { from_source: 0, for_user: 0, source_and_user: 0 });
    }

    #[test]
    fn a_success_settles_the_users_earlier_failures_from_that_source_only() {
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        let mut log = FailureLog::new(16);
        log.push(0, Some(a), 1, 3, None, false);
        log.push(1, Some(b), 1, 1, None, false);
        log.success(2, Some(a), 1);
        log.success(3, Some(b), 2); // another user from b: settles nothing of user 1
        log.push(4, Some(a), 1, 1, None, false);
        assert_eq!(log.prior(0, Some(a), 1, None).source_and_user, 1, "only the failure after the success");
        assert_eq!(log.prior(0, Some(b), 1, None).source_and_user, 1, "b's failure was not settled by a's success");
        assert_eq!(log.prior(0, Some(a), 1, None).from_source, 4, "the source count is not reset");
    }

    #[test]
    fn refused_keys_count_only_when_another_connection_logs_in() {
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let mut log = FailureLog::new(16);
        let first = Some((Program::Sshd, 100));
        let second = Some((Program::Sshd, 101));
        log.push(0, Some(a), 1, 2, first, true);
        assert_eq!(log.prior(0, Some(a), 1, first).source_and_user, 0, "its own connection's key probes");
        assert_eq!(log.prior(0, Some(a), 1, second).source_and_user, 2, "a connection that tried keys and left");
    }

    #[test]
    fn local_logins_count_local_failures() {
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let mut log = FailureLog::new(16);
        log.push(0, None, 1, 2, None, false);
        log.push(1, Some(a), 1, 5, None, false);
        assert_eq!(log.prior(0, None, 1, None), PriorFailures { from_source: 0, for_user: 7, source_and_user: 2 });
    }
}
