//! The analyzer on the real logs of `../shared/data/real` (relative to the
//! repository root; `BFP_SHARED_DATA` overrides the `data` folder).
//!
//! Every expected number is justified by a command run on the file itself,
//! written next to it, so it does not come from the code under test.
//! `FAILS_AWK` below is the one used for failed attempts: per sshd process,
//! PAM's "authentication failure" and sshd's "Failed …" (with "message
//! repeated N times") describe the same attempts, so each pid counts the
//! larger of the two:
//!
//! ```sh
//! awk 'match($0, /sshd(\(pam_unix\))?\[[0-9]+\]: /) { t=substr($0,RSTART,RLENGTH); sub(/.*\[/,"",t); pid=t+0;
//!   if ($0 ~ /: (pam_unix\(sshd:auth\): )?authentication failure;/) pam[pid]++;
//!   else if ($0 ~ /\]: Failed /) f[pid]++;
//!   else if (match($0, /message repeated [0-9]+ times: \[ Failed/)) { split(substr($0,RSTART,RLENGTH),a," "); f[pid]+=a[3] } }
//!   END { for (p in pam) if (!(p in f)) f[p]=0; for (p in f) s += (pam[p]>f[p]?pam[p]:f[p]); print s+0 }' FILE
//! ```

use crate::support::{analyze_file, real_dir, REFERENCE};

use std::collections::BTreeMap;

use bfp_common::Protocol;
use bfp_logs::analyze::{Analyzer, AnalyzerConfig, LogFormat, Observation, ParseStats, RecordKind};
use bfp_logs::session::Program;

fn config() -> AnalyzerConfig {
    AnalyzerConfig { reference_time: Some(REFERENCE), ..AnalyzerConfig::default() }
}

fn analyze_with(rel: &str, config: AnalyzerConfig) -> (Vec<Observation>, ParseStats) {
    analyze_file(&real_dir().join(rel), config)
}

fn analyze(rel: &str) -> (Vec<Observation>, ParseStats) {
    analyze_with(rel, config())
}

fn sessions(obs: &[Observation]) -> Vec<&Observation> {
    obs.iter().filter(|o| o.kind == RecordKind::Session).collect()
}

/// Closed sessions: each has an end and its duration is end − start.
fn check_closed(sessions: &[&Observation]) -> usize {
    let closed: Vec<_> = sessions.iter().filter(|o| !o.open).collect();
    for o in &closed {
        let end = o.end.expect("closed sessions have an end");
        assert!(end >= o.start, "{o:?}");
        if !o.session.as_ref().unwrap().duration_reported {
            let minutes = (end - o.start) as f32 / 60.0;
            assert!((o.fingerprint.session_duration_min - minutes).abs() < 0.02, "{o:?}");
        }
    }
    closed.len()
}

#[test]
fn loghub_openssh() {
    let (obs, stats) = analyze("loghub/OpenSSH_2k.log");
    assert_eq!(stats.lines, 2000);
    // `grep -c ' sshd\[' OpenSSH_2k.log` = 2000, all understood.
    assert_eq!(stats.by_kind[Program::Sshd], 2000);
    assert_eq!(stats.unknown_total(), 0, "{:?}", stats.unknown);
    // FAILS_AWK (module doc) = 533.
    assert_eq!(stats.failed_logins, 533);
    // `grep -c ': Accepted ' OpenSSH_2k.log` = 1; its pam session closes at 09:45:06.
    assert_eq!(stats.accepted_logins, 1);
    let s = sessions(&obs);
    assert_eq!(s.len(), 1);
    assert_eq!(check_closed(&s), 1);
    let fztu = s[0];
    assert_eq!(fztu.user.as_deref(), Some("fztu"));
    assert_eq!(fztu.source_ip, "119.137.62.142".parse().ok());
    // Dec 10 09:32:20 → 09:45:06 (Dec 10 of 2025: the reference is November 2026).
    assert_eq!(fztu.start, 1_765_359_140);
    assert_eq!(fztu.end, Some(1_765_359_906));
    assert_eq!(fztu.fingerprint.login_hour, 9);
    // `grep 119.137.62.142 OpenSSH_2k.log | grep -c Failed` = 0.
    assert_eq!(fztu.fingerprint.failed_logins, 0);
    assert_eq!(fztu.fingerprint.typing_speed_wpm, None, "sshd logs no command timing");
    // Sources: one window each for the 30 addresses that show up (the 2,000
    // lines span 10 hours), `grep -oE '([0-9]{1,3}\.){3}[0-9]{1,3}' | sort -u | wc -l` = 30,
    // three of which only connected and left before authenticating.
    let sources: Vec<_> = obs.iter().filter(|o| o.kind == RecordKind::Source).collect();
    assert_eq!(sources.len(), 30);
    let total: u32 = sources.iter().map(|o| o.source.as_ref().unwrap().failed_logins).sum();
    assert_eq!(u64::from(total), stats.failed_logins, "every failure here names its address");
}

#[test]
fn loghub_linux() {
    let (obs, stats) = analyze("loghub/Linux_2k.log");
    assert_eq!(stats.lines, 2000);
    // `grep -c 'sshd(pam_unix)' Linux_2k.log` = 677; `grep -c ' ftpd\[' ` = 916, of which one
    // ("ftpd[..]: ... wrong") is not a known ftpd message; `grep -c 'su(pam_unix)'` = 172.
    assert_eq!(stats.by_kind[Program::Sshd], 677);
    assert_eq!(stats.by_kind[Program::Ftp], 915);
    assert_eq!(stats.unknown.get("ftpd"), Some(&1));
    assert_eq!(stats.by_kind[Program::Su], 172);
    // kernel, named, logrotate, ... are other programs: counted, not dropped.
    // `grep -c ' kernel: ' Linux_2k.log` = 76.
    assert_eq!(stats.unknown.get("kernel"), Some(&76));
    assert_eq!(stats.lines, stats.unknown_total() + known(&stats));
    // FAILS_AWK = 489 (PAM lines only: this old sshd logs no "Failed password").
    assert_eq!(stats.failed_logins, 489);
    // `grep -c 'sshd(pam_unix).*session opened'` = 36, `... session closed` = 36, plus one
    // console login (`grep -c 'login(pam_unix).*session opened'` = 1, closed too).
    let s = sessions(&obs);
    assert_eq!(s.len(), 37);
    assert_eq!(check_closed(&s), 37);
    assert_eq!(s.iter().filter(|o| o.fingerprint.protocol == Protocol::Ssh).count(), 37);
    // su by uid 0 (logrotate, cron) is no person's command.
    assert_eq!(stats.commands + stats.commands_outside_sessions, 0);
}

fn known(stats: &ParseStats) -> u64 {
    stats.by_kind.iter().map(|(_, n)| n).sum()
}

#[test]
fn elastic_ubuntu_host() {
    let (obs, stats) = analyze("elastic/auth.log");
    assert_eq!(stats.lines, 7121);
    // `grep -c ' sshd\[' auth.log` = 4095, `grep -c ' sudo: '` = 557, `grep -c ' CRON\['` = 1264.
    assert_eq!(
        (stats.by_kind[Program::Sshd], stats.by_kind[Program::Sudo], stats.by_kind[Program::Cron]),
        (4095, 557, 1264)
    );
    // logind's lines are known noise: `grep -c 'systemd-logind\['` = 452 (226 "New session",
    // 223 "Removed session", "New seat seat0.", two "Watching system buttons"); nothing is
    // unknown any more. Account management is read (it was counted unknown before):
    // `grep -cE ' (useradd|groupadd)\['` = 50 + 3, each line an account change (30 of them
    // `failed adding user`: the attempt is the evidence).
    assert_eq!(stats.by_kind[Program::Logind], 452);
    assert_eq!(stats.unknown, BTreeMap::new());
    assert_eq!((stats.by_kind[Program::Account], stats.account_changes), (53, 53));
    assert_eq!(stats.lines, stats.unknown_total() + known(&stats));
    // FAILS_AWK = 1042 = `grep -c 'sshd.*: Failed '` 632 + the "message repeated" counts 410,
    // plus 57 connections closed by "maximum authentication attempts exceeded" that logged no
    // failure before it (keys or `none` tried), one failure each:
    // `awk '/sshd\[/ {match($0,/sshd\[[0-9]+\]/); p=substr($0,RSTART,RLENGTH);
    //   if (/: Failed / || /authentication failure/) f[p]++;
    //   if (/maximum authentication attempts exceeded/ && !f[p]) n++} END {print n}'` = 57.
    assert_eq!(stats.failed_logins, 1042 + 57);
    // `grep -c ': Accepted '` = 226; `grep -c 'sshd.*session closed'` = 225: one still open.
    assert_eq!(stats.accepted_logins, 226);
    let s = sessions(&obs);
    assert_eq!(s.len(), 226);
    assert_eq!(check_closed(&s), 225);
    assert_eq!(stats.unmatched_closes, 0);
    // `grep -c 'sudo.*COMMAND='` = 186 sudo commands, and su by a named user
    // (`grep -c 'su\[[0-9]*\]: pam_unix(su.*session opened for user [^ ]* by [a-z]'`) = 9:
    // each is in a session or counted outside one (sessions that began before the log).
    assert_eq!(stats.commands + stats.commands_outside_sessions, 186 + 9);
    assert!(stats.commands >= 186, "{}", stats.commands);
    let in_sessions: u32 = s.iter().map(|o| o.fingerprint.commands).sum();
    assert_eq!(u64::from(in_sessions), stats.commands);
    // Mar 29 10:42:43–10:43:01, sshd[1193]: one failed password for elastic_user_7 from
    // 127.0.0.1, then success (`grep 'sshd\[1193\]' auth.log`).
    let u7 = s
        .iter()
        .find(|o| o.session.as_ref().unwrap().session_id.as_deref() == Some("1193"))
        .expect("session of pid 1193");
    assert_eq!(u7.user.as_deref(), Some("elastic_user_7"));
    assert_eq!(u7.fingerprint.failed_logins, 1);
    assert_eq!(u7.fingerprint.login_hour, 10);
    assert_eq!(u7.end.unwrap() - u7.start, 2);
    // The curl of the first session is a risky command (download).
    let first = s.iter().find(|o| o.commands.iter().any(|c| c.contains("curl -L -O"))).unwrap();
    assert!(first.fingerprint.risky_commands.unwrap() >= 1);
}

#[test]
fn exposed_rhel_host() {
    let (obs, stats) = analyze("exposed-rhel/secure");
    assert_eq!(stats.lines, 25_300);
    // `grep -c ' sshd\['` = 25295; `grep -c ' gpasswd\['` = 2 (binayakprashad added to and
    // removed from google-sudoers `by root`, who has no session here: counted, not attached).
    assert_eq!(stats.by_kind[Program::Sshd], 25_295);
    assert_eq!(stats.unknown_total(), 0);
    assert_eq!((stats.by_kind[Program::Account], stats.account_changes), (2, 2));
    // FAILS_AWK = 4495.
    assert_eq!(stats.failed_logins, 4495);
    // One publickey login (`grep -c Accepted` = 1), never closed in the file.
    let s = sessions(&obs);
    assert_eq!(s.len(), 1);
    assert!(s[0].open && s[0].end.is_none());
    assert_eq!(s[0].session.as_ref().unwrap().auth_method, bfp_logs::parse::AuthMethod::Publickey);
    // `grep -c 'COMMAND='` = 1 (sudo su) plus su's own session line: two commands.
    assert_eq!(s[0].commands, vec!["/bin/su -".to_string(), "su root".to_string()]);
    // Scanners: `grep -c 'Did not receive identification string'` = 51 and
    // `grep -c 'Bad protocol version identification'` = 5 probes.
    let probes: u32 = obs.iter().filter_map(|o| o.source.as_ref()).map(|s| s.probes).sum();
    assert_eq!(probes, 56);
    // Invalid users: `grep -c 'Invalid user'` = 2698 announcements.
    let invalid: u32 = obs.iter().filter_map(|o| o.source.as_ref()).map(|s| s.invalid_user_attempts).sum();
    assert!(invalid >= 2698, "{invalid}");
}

#[test]
fn plesk_proftpd_sessions_without_pids() {
    let (obs, stats) = analyze("plesk-centos/secure");
    assert_eq!(stats.lines, 719);
    assert_eq!(stats.unknown_total(), 0);
    // `grep -c 'proftpd:session): session opened'` = 179 = `... session closed`; plus one
    // sshd login (`grep -c Accepted` = 1) that never closes.
    let s = sessions(&obs);
    assert_eq!(s.len(), 180);
    assert_eq!(s.iter().filter(|o| o.fingerprint.protocol == Protocol::Ftp).count(), 179);
    assert_eq!(check_closed(&s), 179);
    assert_eq!(stats.unmatched_closes, 0);
}

#[test]
fn cowrie_2018_day() {
    // One window per address for the day: idle windows are not cut here.
    let cfg = AnalyzerConfig { source_idle_secs: 86_400, ..config() };
    let (obs, stats) = analyze_with("cowrie/cowrie.json.2018-05-19", cfg);
    // `wc -l` = 2004 events, every id known.
    assert_eq!((stats.lines, stats.by_kind[Program::Cowrie], stats.unknown_total()), (2004, 2004, 0));
    // `grep -c cowrie.login.failed` = 254; `grep -c cowrie.login.success` = 48.
    assert_eq!(stats.failed_logins, 254);
    let s = sessions(&obs);
    assert_eq!(s.len(), 48);
    // Every logged-in session has its session.closed (python: set of login.success
    // sessions ⊆ set of session.closed sessions), with Cowrie's own float duration.
    assert_eq!(check_closed(&s), 48);
    assert!(s.iter().all(|o| o.session.as_ref().unwrap().duration_reported));
    // `grep -c cowrie.command.input` = 33.
    assert_eq!(s.iter().map(|o| o.fingerprint.commands).sum::<u32>(), 33);
    // `grep -c cowrie.session.file_download"` = 1.
    assert_eq!(s.iter().map(|o| o.session.as_ref().unwrap().downloads).sum::<u32>(), 1);
    // Typing speed exists exactly where commands were typed after the login.
    for o in &s {
        assert_eq!(o.fingerprint.typing_speed_wpm.is_some(), o.fingerprint.commands > 0, "{o:?}");
    }
    // `grep -o '"src_ip": *"[^"]*"' | sort -u | wc -l` = 58 addresses.
    assert_eq!(obs.iter().filter(|o| o.kind == RecordKind::Source).count(), 58);
}

#[test]
fn cowrie_telnet_new_format() {
    let (obs, stats) = analyze("cowrie/cowrie-telnet.json");
    assert_eq!((stats.lines, stats.unknown_total()), (150, 0));
    // `grep -c login.success` = 3, `grep -c command.input` = 70, `grep -c login.failed` = 1.
    let s = sessions(&obs);
    assert_eq!(s.len(), 3);
    assert_eq!(stats.failed_logins, 1);
    assert_eq!(s.iter().map(|o| o.fingerprint.commands).sum::<u32>(), 70);
    // duration_ms 8486 for session 3e69b5b3b281.
    let first = s.iter().find(|o| o.session.as_ref().unwrap().session_id.as_deref() == Some("3e69b5b3b281")).unwrap();
    assert!((first.fingerprint.session_duration_min - 8.486 / 60.0).abs() < 1e-4);
    // Its wget/curl chains are risky.
    assert!(s.iter().any(|o| o.fingerprint.risky_commands.unwrap() >= 2));
    // `grep -c session.file_download\"` = 13.
    assert_eq!(s.iter().map(|o| o.session.as_ref().unwrap().downloads).sum::<u32>(), 13);
}

/// No line of any file makes any parser panic, in any format.
#[test]
fn no_real_line_panics_in_any_format() {
    let mut files = Vec::new();
    let mut dirs = vec![real_dir()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p)
            } else {
                files.push(p)
            }
        }
    }
    assert!(files.len() >= 8, "{files:?}");
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        for format in [LogFormat::Auto, LogFormat::Syslog, LogFormat::Journald, LogFormat::Cowrie] {
            let mut a = Analyzer::new(config());
            for line in bytes.split(|&b| b == b'\n') {
                a.feed_line(&String::from_utf8_lossy(line), format);
            }
            a.finish();
            assert_eq!(a.stats().lines, bytes.split(|&b| b == b'\n').count() as u64);
        }
        let mut a = Analyzer::new(config());
        for record in bytes.chunks(384) {
            a.feed_utmp(record, bfp_logs::UtmpArch::X86_64);
        }
        a.finish();
    }
}
