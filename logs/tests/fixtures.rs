//! The analyzer on hand-written fixtures for formats the real data lacks
//! (dropbear under OpenWrt `logread`, journald JSON with OpenSSH 9.8's
//! `sshd-session`, New Year in a year-less log, IPv6, vsftpd, wtmp/btmp
//! binary records) and on generated scenarios (slow and distributed brute
//! force, Tor exits, a user who mistypes).

use std::net::IpAddr;
use std::path::Path;

use bfp_common::Protocol;
use bfp_logs::analyze::{Analyzer, AnalyzerConfig, LogFormat, Observation, RecordKind};
use bfp_logs::parse::utmp::{self, UtmpArch};
use bfp_logs::parse::AuthMethod;
use bfp_logs::session::Program;

/// 2026-11-25 00:00 UTC.
const NOV_25_2026: i64 = 1_795_564_800;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn run(text: &str, format: LogFormat, config: AnalyzerConfig) -> (Vec<Observation>, Analyzer) {
    let mut a = Analyzer::new(config);
    let mut out = Vec::new();
    for line in text.lines() {
        a.feed_line(line, format);
        out.extend(a.drain_ready());
    }
    out.extend(a.finish());
    (out, a)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)).unwrap()
}

fn config() -> AnalyzerConfig {
    AnalyzerConfig { reference_time: Some(NOV_25_2026), ..AnalyzerConfig::default() }
}

fn of_kind(obs: &[Observation], kind: RecordKind) -> Vec<&Observation> {
    obs.iter().filter(|o| o.kind == kind).collect()
}

#[test]
fn dropbear_sessions_under_openwrt_logread() {
    let text = fixture("dropbear-logread.log");
    assert_eq!(LogFormat::detect(text.as_bytes()), LogFormat::Syslog);
    let (obs, a) = run(&text, LogFormat::Auto, config());
    let stats = a.stats();
    assert_eq!(stats.by_kind[Program::Dropbear], 13);
    assert_eq!(stats.unknown_total(), 2, "procd and kernel: {:?}", stats.unknown);
    assert_eq!(stats.failed_logins, 4);

    let sessions = of_kind(&obs, RecordKind::Session);
    assert_eq!(sessions.len(), 2);
    let lan = sessions.iter().find(|o| o.source_ip == Some(ip("192.168.1.20"))).unwrap();
    assert_eq!(lan.user.as_deref(), Some("root"));
    assert!(!lan.open);
    assert_eq!(lan.end.unwrap() - lan.start, 12 * 60 + 30);
    assert_eq!(lan.fingerprint.session_duration_min, 12.5);
    assert_eq!(lan.fingerprint.login_hour, 21);
    assert_eq!(lan.fingerprint.failed_logins, 1, "one mistyped password first");
    assert_eq!(lan.session.as_ref().unwrap().auth_method, AuthMethod::Password);

    // The IPv6 attacker failed three times in another connection, then got in with a key.
    let v6 = sessions.iter().find(|o| o.source_ip == Some(ip("2001:db8:85a3::8a2e:370:7334"))).unwrap();
    assert!(v6.open && v6.end.is_none(), "no Exit line: still open");
    // Only root's two count for root's session; `admin` is the source's business.
    assert_eq!(v6.fingerprint.failed_logins, 2, "two of them for root");
    assert_eq!(v6.session.as_ref().unwrap().failed_source_and_user, 2);
    assert_eq!(v6.session.as_ref().unwrap().failed_from_source, 3);

    let sources = of_kind(&obs, RecordKind::Source);
    let src = sources.iter().find(|o| o.source_ip == Some(ip("2001:db8:85a3::8a2e:370:7334"))).unwrap();
    let s = src.source.as_ref().unwrap();
    assert_eq!((s.failed_logins, s.invalid_user_attempts, s.distinct_users, s.successes), (3, 1, 2, 1));
    assert!(s.success_after_failures);
    assert_eq!(s.connections, 2);
    // A connection that left before authenticating is a source too.
    assert!(sources.iter().any(|o| o.source_ip == Some(ip("203.0.113.66"))));
}

#[test]
fn journald_json_with_sshd_session_and_byte_messages() {
    let text = fixture("journald-sshd.jsonl");
    assert_eq!(LogFormat::detect(text.as_bytes()), LogFormat::Journald);
    let (obs, a) = run(&text, LogFormat::Journald, config());
    let stats = a.stats();
    assert_eq!(stats.lines, 12);
    // logind's "New session 14 of user pi." is known (and judges nothing): nothing unknown.
    assert_eq!((stats.by_kind[Program::Logind], stats.unknown_total()), (1, 0));
    let sessions = of_kind(&obs, RecordKind::Session);
    assert_eq!(sessions.len(), 1);
    let pi = sessions[0];
    assert_eq!((pi.user.as_deref(), pi.source_ip), (Some("pi"), Some(ip("2001:db8::50"))));
    // 07:00:09 → 07:10:00.1 UTC.
    assert_eq!((pi.start, pi.end), (NOV_25_2026 + 7 * 3600 + 9, Some(NOV_25_2026 + 7 * 3600 + 600)));
    assert_eq!(pi.fingerprint.login_hour, 7);
    assert_eq!(pi.fingerprint.failed_logins, 1);
    assert_eq!(pi.commands.len(), 2);
    assert_eq!(pi.commands[0], "/usr/bin/apt update");
    assert!(pi.commands[1].starts_with("/usr/bin/wget http://x/"), "byte-array MESSAGE read lossily");
    assert_eq!(pi.fingerprint.risky_commands, Some(1));
    assert_eq!(pi.fingerprint.typing_speed_wpm, None, "sudo lines are not every keystroke");
    // The same log with the device at UTC+2: the login hour is local.
    let (obs, _) = run(&text, LogFormat::Auto, AnalyzerConfig { utc_offset_secs: 7200, ..config() });
    assert_eq!(of_kind(&obs, RecordKind::Session)[0].fingerprint.login_hour, 9);
}

#[test]
fn year_less_log_across_new_year_with_ipv6() {
    let text = fixture("auth-newyear-ipv6.log");
    // Read in January 2027: December is last year.
    let cfg = AnalyzerConfig { reference_time: Some(NOV_25_2026 + 46 * 86_400), ..AnalyzerConfig::default() };
    let (obs, a) = run(&text, LogFormat::Syslog, cfg);
    assert_eq!(a.stats().unknown_total(), 0);
    let sessions = of_kind(&obs, RecordKind::Session);
    assert_eq!(sessions.len(), 1);
    let alice = sessions[0];
    // 2026-12-31 23:50:02 UTC = 1798761002.
    assert_eq!(alice.start, 1_798_761_002);
    assert_eq!(alice.end, Some(1_798_761_002 + 30 * 60), "closes 30 minutes later, in 2027");
    assert_eq!(alice.fingerprint.login_hour, 23);
    assert_eq!(alice.commands, vec!["/usr/bin/systemctl restart nginx"]);
    assert_eq!(alice.fingerprint.failed_logins, 0, "the other address's failure is not hers");
    let bad = of_kind(&obs, RecordKind::Source)
        .into_iter()
        .find(|o| o.source_ip == Some(ip("2001:db8:bad::9")))
        .unwrap()
        .source
        .clone()
        .unwrap();
    assert_eq!((bad.failed_logins, bad.invalid_user_attempts, bad.probes), (1, 2, 1));
    assert_eq!(bad.users_sample, vec!["oracle"]);
}

#[test]
fn vsftpd_own_log() {
    let (obs, a) = run(&fixture("vsftpd.log"), LogFormat::Auto, config());
    assert_eq!(a.stats().by_kind[Program::Ftp], 4);
    let s = of_kind(&obs, RecordKind::Session);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].fingerprint.protocol, Protocol::Ftp);
    assert_eq!(s[0].source_ip, Some(ip("198.51.100.23")), "IPv4-mapped addresses are the IPv4 source");
    assert_eq!(s[0].fingerprint.failed_logins, 1);
    assert_eq!(s[0].commands, vec!["ok upload /srv/ftp/report.pdf"]);
    assert!(s[0].open, "vsftpd logs no logout");
}

#[test]
fn wtmp_and_btmp_records_on_every_arch() {
    let base = (NOV_25_2026 + 8 * 3600) as i32;
    let mut wtmp = Vec::new();
    wtmp.extend(utmp::encode(utmp::BOOT_TIME, 0, "~", "reboot", "6.1.0", base - 600, None));
    wtmp.extend(utmp::encode(
        utmp::LOGIN_PROCESS,
        1,
        "ssh:notty",
        "admin",
        "2001:db8::66",
        base - 60,
        Some(ip("2001:db8::66")),
    ));
    wtmp.extend(utmp::encode(
        utmp::LOGIN_PROCESS,
        1,
        "ssh:notty",
        "admin",
        "2001:db8::66",
        base - 50,
        Some(ip("2001:db8::66")),
    ));
    wtmp.extend(utmp::encode(utmp::LOGIN_PROCESS, 600, "tty1", "LOGIN", "", base - 40, None));
    wtmp.extend(utmp::encode(utmp::USER_PROCESS, 4242, "pts/0", "pi", "2001:db8::66", base, Some(ip("2001:db8::66"))));
    wtmp.extend(utmp::encode(
        utmp::USER_PROCESS,
        4300,
        "pts/1",
        "ops",
        "198.51.100.4",
        base + 60,
        Some(ip("198.51.100.4")),
    ));
    wtmp.extend(utmp::encode(utmp::DEAD_PROCESS, 4242, "pts/0", "", "", base + 45 * 60, None));
    assert_eq!(LogFormat::detect(&wtmp), LogFormat::Utmp);
    for arch in [UtmpArch::X86_64, UtmpArch::Aarch64, UtmpArch::Armv7] {
        let mut a = Analyzer::new(config());
        for rec in wtmp.chunks(arch.record_size()) {
            a.feed_utmp(rec, arch);
        }
        let obs = a.finish();
        assert_eq!(a.stats().by_kind[Program::Utmp], 7);
        assert_eq!(a.stats().failed_logins, 2, "btmp-style records; getty's LOGIN is not a failure");
        let s = of_kind(&obs, RecordKind::Session);
        assert_eq!(s.len(), 2);
        let pi = s.iter().find(|o| o.user.as_deref() == Some("pi")).unwrap();
        assert_eq!((pi.start, pi.end, pi.open), (i64::from(base), Some(i64::from(base) + 2700), false));
        assert_eq!(pi.fingerprint.session_duration_min, 45.0);
        // The two failures were for `admin`: the source's evidence, not pi's session's.
        assert_eq!(pi.fingerprint.failed_logins, 0);
        assert_eq!(pi.session.as_ref().unwrap().failed_from_source, 2);
        assert!(s.iter().any(|o| o.user.as_deref() == Some("ops") && o.open));
    }
    // A truncated record is counted, not a panic.
    let mut a = Analyzer::new(config());
    a.feed_utmp(&wtmp[..100], UtmpArch::Armv7);
    assert_eq!(a.stats().unknown.get("<bad utmp record>"), Some(&1));
}

/// `Nov 25 HH:MM:SS` lines of sshd from a generator.
fn sshd_line(secs: i64, pid: u32, msg: &str) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("Nov 24 {h:02}:{m:02}:{s:02} dev sshd[{pid}]: {msg}")
}

#[test]
fn slow_brute_force_stays_in_one_source_window() {
    // Two attempts an hour for a day: no minute ever sees more than one.
    let mut text = String::new();
    for i in 0..47u32 {
        let t = i64::from(i) * 1800 + 5;
        text += &sshd_line(t, 1000 + i, &format!("Failed password for root from 203.0.113.50 port {} ssh2", 40000 + i));
        text.push('\n');
    }
    let (obs, _) = run(&text, LogFormat::Syslog, config());
    let src = of_kind(&obs, RecordKind::Source);
    assert_eq!(src.len(), 1, "one window, not 47");
    let s = src[0].source.as_ref().unwrap();
    assert_eq!(s.failed_logins, 47);
    assert!((s.attempts_per_hour - 2.0).abs() < 0.05, "{}", s.attempts_per_hour);
    assert_eq!(src[0].fingerprint.failed_logins, 47);
    assert_eq!(src[0].fingerprint.session_duration_min, 46.0 * 30.0);
    // With windows cut after an idle hour, the same attack falls apart: the default matters.
    let cfg = AnalyzerConfig { source_idle_secs: 1200, ..config() };
    let (obs, _) = run(&text, LogFormat::Syslog, cfg);
    assert_eq!(of_kind(&obs, RecordKind::Source).len(), 47);
}

#[test]
fn distributed_brute_force_shows_in_the_device_window() {
    // 200 addresses, each trying once, within an hour.
    let mut text = String::new();
    for i in 0..200u32 {
        let addr = format!("198.51.{}.{}", 100 + i / 200, i % 200 + 1);
        text += &sshd_line(
            3600 + i64::from(i) * 17,
            2000 + i,
            &format!("Failed password for invalid user u{i} from {addr} port 4000 ssh2"),
        );
        text.push('\n');
    }
    let (obs, _) = run(&text, LogFormat::Syslog, config());
    assert_eq!(of_kind(&obs, RecordKind::Source).len(), 200);
    assert!(of_kind(&obs, RecordKind::Source).iter().all(|o| o.source.as_ref().unwrap().failed_logins == 1));
    let dev = of_kind(&obs, RecordKind::Device);
    assert_eq!(dev.len(), 1);
    let d = dev[0].device.as_ref().unwrap();
    assert_eq!((d.failed_logins, d.failing_sources, d.quiet_sources, d.distinct_users), (200, 200, 200, 200));
    assert!(d.attempts_per_hour > 200.0);
}

#[test]
fn tor_exit_sources_and_sessions_have_protocol_tor() {
    let list = "# exit list\nExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E\nExitAddress 185.220.101.5 2026-11-24 09:12:03\n2001:db8:70::1\n";
    let tor = AnalyzerConfig::parse_tor_exit_list(list).unwrap();
    assert_eq!(tor.len(), 2);
    assert!(AnalyzerConfig::parse_tor_exit_list("not-an-ip\n").unwrap_err().to_string().contains("line 1"));
    let text = [
        sshd_line(100, 10, "Failed password for root from 185.220.101.5 port 1 ssh2"),
        sshd_line(110, 11, "Accepted password for root from 185.220.101.5 port 2 ssh2"),
        sshd_line(120, 12, "Accepted password for bob from 198.51.100.9 port 3 ssh2"),
    ]
    .join("\n");
    let (obs, _) = run(&text, LogFormat::Syslog, AnalyzerConfig { tor_exit_list: tor, ..config() });
    let by_ip =
        |k, a: &str| obs.iter().find(|o| o.kind == k && o.source_ip == Some(ip(a))).unwrap().fingerprint.protocol;
    assert_eq!(by_ip(RecordKind::Session, "185.220.101.5"), Protocol::Tor);
    assert_eq!(by_ip(RecordKind::Source, "185.220.101.5"), Protocol::Tor);
    assert_eq!(by_ip(RecordKind::Session, "198.51.100.9"), Protocol::Ssh);
}

#[test]
fn closed_sessions_are_ready_before_the_end_and_memory_stays_bounded() {
    let mut a = Analyzer::new(AnalyzerConfig { max_open_sessions: 4, max_connections: 8, max_sources: 16, ..config() });
    a.feed_line(&sshd_line(10, 7, "Accepted password for ann from 198.51.100.2 port 5 ssh2"), LogFormat::Syslog);
    a.feed_line(&sshd_line(70, 7, "pam_unix(sshd:session): session closed for user ann"), LogFormat::Syslog);
    let ready = a.drain_ready();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].fingerprint.session_duration_min, 1.0);
    assert!(a.drain_ready().is_empty(), "moved out once");
    for i in 0..100u32 {
        let line = sshd_line(
            100 + i64::from(i),
            100 + i,
            &format!("Accepted password for u{i} from 10.0.{}.{} port 5 ssh2", i / 200, i % 200),
        );
        a.feed_line(&line, LogFormat::Syslog);
    }
    let total = a.drain_ready().len() + a.finish().len();
    assert!(a.stats().evicted > 0);
    assert_eq!(a.stats().sessions, 101, "evicted sessions are reported, not lost");
    assert!(total >= 101 + 16);
}

#[test]
fn cowrie_typing_speed_comes_from_command_times() {
    let lines = [
        r#"{"eventid":"cowrie.session.connect","src_ip":"203.0.113.8","session":"abc","timestamp":"2026-11-24T03:00:00.000Z"}"#,
        r#"{"eventid":"cowrie.login.failed","username":"root","src_ip":"203.0.113.8","session":"abc","timestamp":"2026-11-24T03:00:01.000Z"}"#,
        r#"{"eventid":"cowrie.login.success","username":"root","src_ip":"203.0.113.8","session":"abc","timestamp":"2026-11-24T03:00:02.000Z"}"#,
        r#"{"eventid":"cowrie.command.input","input":"uname -a","src_ip":"203.0.113.8","session":"abc","timestamp":"2026-11-24T03:00:32.000Z"}"#,
        r#"{"eventid":"cowrie.command.input","input":"wget http://x/a","src_ip":"203.0.113.8","session":"abc","timestamp":"2026-11-24T03:01:02.000Z"}"#,
        r#"{"eventid":"cowrie.session.closed","duration":"70.0","src_ip":"203.0.113.8","session":"abc","timestamp":"2026-11-24T03:01:10.000Z"}"#,
    ]
    .join("\n");
    let (obs, _) = run(&lines, LogFormat::Auto, config());
    let s = of_kind(&obs, RecordKind::Session);
    assert_eq!(s.len(), 1);
    let fp = s[0].fingerprint;
    // "uname -a" + Enter + "wget http://x/a" + Enter = 25 keystrokes = 5 words in one minute.
    assert_eq!(fp.typing_speed_wpm, Some(5.0));
    assert_eq!((fp.commands, fp.failed_logins, fp.risky_commands, fp.login_hour), (2, 1, Some(1), 3));
    assert!((fp.session_duration_min - 70.0 / 60.0).abs() < 1e-6);
    assert_eq!(s[0].session.as_ref().unwrap().session_id.as_deref(), Some("abc"));
}

#[test]
fn luci_web_logins_are_https_sessions_reported_at_once() {
    let (obs, a) = run(&fixture("luci-logread.log"), LogFormat::Auto, config());
    assert_eq!(a.stats().by_kind[Program::Web], 5);
    assert_eq!(a.stats().unknown.get("dnsmasq-dhcp"), Some(&1));
    let s = of_kind(&obs, RecordKind::Session);
    assert_eq!(s.len(), 2);
    let night = s.iter().find(|o| o.source_ip == Some(ip("203.0.113.77"))).unwrap();
    assert_eq!(night.fingerprint.protocol, Protocol::Https);
    // root failed twice before root got in; the `admin` attempt counts for the source only.
    assert_eq!((night.fingerprint.failed_logins, night.fingerprint.login_hour), (2, 2));
    assert_eq!(night.session.as_ref().unwrap().failed_source_and_user, 2);
    assert!(night.open && night.end.is_none(), "the web UI logs no logout");
    let src = of_kind(&obs, RecordKind::Source);
    let s77 = src.iter().find(|o| o.source_ip == Some(ip("203.0.113.77"))).unwrap().source.as_ref().unwrap();
    assert_eq!((s77.failed_logins, s77.distinct_users, s77.successes), (3, 2, 1));
    assert!(s77.success_after_failures);
    assert_eq!(s77.protocols, vec![Protocol::Https]);
    let src77 = src.iter().find(|o| o.source_ip == Some(ip("203.0.113.77"))).unwrap();
    assert_eq!(src77.fingerprint.protocol, Protocol::Https);
    // Reported as soon as it is seen (a follower needs no end of input for it).
    let mut a = Analyzer::new(config());
    a.feed_line(
        "Mon Nov 23 09:30:00 2026 daemon.err uhttpd[1561]: [info] luci: accepted login on / for root from fd00::10",
        LogFormat::Syslog,
    );
    assert_eq!(a.drain_ready().len(), 1);
}

#[test]
fn observations_round_trip_as_json_with_stable_keys() {
    let (obs, _) = run(&fixture("dropbear-logread.log"), LogFormat::Auto, config());
    for o in &obs {
        let json = serde_json::to_value(o).unwrap();
        for key in ["kind", "source_ip", "user", "start", "end", "open", "fingerprint", "commands"] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
        let back: Observation = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(&back, o);
    }
    let session = obs.iter().find(|o| o.kind == RecordKind::Session).unwrap();
    let json = serde_json::to_value(session).unwrap();
    assert_eq!(json["kind"], "session");
    assert_eq!(json["fingerprint"]["protocol"], "SSH");
    assert_eq!(json["session"]["program"], "dropbear");
}

#[test]
fn rfc5424_and_rfc3339_syslog_through_the_analyzer() {
    let text = [
        "<38>1 2026-11-24T22:15:03.120+01:00 edge sshd 812 - - Failed password for pi from 2001:db8::9 port 3 ssh2",
        "<38>1 2026-11-24T22:15:09.000+01:00 edge sshd 812 - - Accepted password for pi from 2001:db8::9 port 3 ssh2",
        "2026-11-24T22:45:09.000+01:00 edge sshd[812]: pam_unix(sshd:session): session closed for user pi",
    ]
    .join("\n");
    let (obs, a) = run(&text, LogFormat::Auto, config());
    assert_eq!(a.stats().unknown_total(), 0);
    let s = of_kind(&obs, RecordKind::Session);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].fingerprint.login_hour, 22, "the line's own offset gives the local hour");
    assert_eq!(s[0].start, NOV_25_2026 - 86_400 + 21 * 3600 + 15 * 60 + 9);
    assert_eq!(s[0].fingerprint.session_duration_min, 30.0);
    assert_eq!(s[0].fingerprint.failed_logins, 1);
}
