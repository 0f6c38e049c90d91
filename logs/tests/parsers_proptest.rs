//! Property tests: no input makes a line parser or the analyzer panic.
//! Inputs are arbitrary strings, and arbitrary message tails behind valid
//! headers and known message prefixes (so the deep branches are reached).

use bfp_logs::analyze::{Analyzer, AnalyzerConfig, LogFormat};
use bfp_logs::parse::{cowrie, dropbear, ftp, journald, login, pam, sshd, su, sudo, syslog, utmp, web};
use proptest::prelude::*;

const PREFIXES: &[&str] = &[
    "Failed password for ",
    "Failed publickey for invalid user ",
    "Accepted password for ",
    "Invalid user ",
    "message repeated 3 times: [ Failed password for ",
    "Connection closed by ",
    "Connection reset by authenticating user ",
    "Received disconnect from ",
    "Disconnected from user ",
    "Did not receive identification string from ",
    "Bad protocol version identification ",
    "error: maximum authentication attempts exceeded for ",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 rhost=",
    "pam_unix(sshd:session): session opened for user ",
    "pam_unix(sshd:session): session closed for user ",
    "Bad password attempt for '",
    "Login attempt for nonexistent user ",
    "Password auth succeeded for '",
    "Exit before auth",
    "Exit (",
    "Child connection from ",
    "FAILED LOGIN ",
    "[alice] OK LOGIN: Client \"",
    "h (1.2.3.4[",
    "connection from ",
    "Timeout before authentication for ",
    "[info] luci: failed login on ",
    "luci: accepted login on / for ",
    // Shapes met in logs never seen before (logs/testdata/unseen).
    "error: PAM: Authentication failure for ",
    "(pam_unix) authentication failure; rhost=",
    "pam_unix: authentication failure; ",
    "[825] Jul 10 23:53:52 ",
    "invalid password for '",
    "root login on '",
    "Failed password for user from 127.0.0.1 port 1 ssh2: ruser from ",
    "[SSHService 'ssh-userauth' on HoneyPotSSHTransport,1,",
    "login attempt [",
];

const HEADERS: &[&str] = &[
    "Nov 24 10:00:00 host sshd[1]: ",
    "Jan  1 00:00:00 host sshd(pam_unix)[2]: ",
    "<38>Nov 24 10:00:00 host dropbear[3]: ",
    "Tue Nov 24 10:00:00 2026 authpriv.info dropbear[4]: ",
    "2026-11-24T10:00:00.5+01:00 host sudo: ",
    "<34>1 2026-11-24T10:00:00Z host su 5 - - ",
    "Nov 24 10:00:00 host login[6]: ",
    "Nov 24 10:00:00 host proftpd[7]: ",
    "Mon Nov 23 10:00:01 2026 [pid 8] ",
    "Mon Nov 23 10:00:01 2026 daemon.err uhttpd[9]: ",
    "2021-05-28 18:08:01,124 mantis proftpd[498625] ",
    "Jan 10 00:00:00 myhost proftpd[12345] ",
    "2018-05-19T00:03:09.084318+0000 [HoneyPotSSHTransport,3261,1.2.3.4] ",
    "Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] ",
    "Mar  3 00:17:22 [sshd]: ",
    "2025-02-19T22:48:41.710776+00:00 sonic auth.info inbandmgr#sshd[2566322]: ",
    "Fri Mar 15 17:22:05 2024 0 10.10.14.119 2863 /x b _ o r u ftp 0 * c ",
];

fn parse_all(s: &str) {
    let _ = syslog::parse(s);
    let _ = syslog::parse_rfc3339(s);
    let _ = sshd::parse(s);
    let _ = dropbear::parse(s);
    let _ = su::parse(s);
    let _ = sudo::parse(s);
    let _ = login::parse(s);
    let _ = pam::parse(s);
    let _ = pam::parse_body(s);
    for p in ["vsftpd", "proftpd", "ftpd"] {
        let _ = ftp::parse(p, s);
    }
    let _ = web::parse(s);
    let _ = journald::parse(s);
    let _ = cowrie::parse(s);
    let _ = cowrie::parse_text(s);
}

fn analyzer() -> Analyzer {
    Analyzer::new(AnalyzerConfig { reference_time: Some(1_795_564_800), ..AnalyzerConfig::default() })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings(s in "\\PC{0,200}") {
        parse_all(&s);
        let mut a = analyzer();
        for f in [LogFormat::Auto, LogFormat::Syslog, LogFormat::Journald, LogFormat::Cowrie] {
            a.feed_line(&s, f);
        }
        a.finish();
    }

    #[test]
    fn known_prefixes_with_arbitrary_tails(h in 0..HEADERS.len(), p in 0..PREFIXES.len(), tail in "[ -~]{0,80}") {
        let msg = format!("{}{}", PREFIXES[p], tail);
        parse_all(&msg);
        let line = format!("{}{}", HEADERS[h], msg);
        parse_all(&line);
        let mut a = analyzer();
        a.feed_line(&line, LogFormat::Auto);
        a.feed_line(&line, LogFormat::Syslog);
        a.finish();
    }

    #[test]
    fn json_shaped_lines(id in "(session\\.connect|login\\.failed|login\\.success|command\\.input|session\\.closed|session\\.file_download|x)",
                         v in "[ -~]{0,30}", n in proptest::num::f64::ANY) {
        let line = format!(r#"{{"eventid":"cowrie.{id}","session":"{v:?}","src_ip":{v:?},"duration":{n},"timestamp":{v:?},"input":{v:?}}}"#);
        let mut a = analyzer();
        a.feed_line(&line, LogFormat::Auto);
        let j = format!(r#"{{"__REALTIME_TIMESTAMP":{v:?},"MESSAGE":{v:?},"_PID":{v:?},"SYSLOG_IDENTIFIER":"sshd"}}"#);
        a.feed_line(&j, LogFormat::Auto);
        a.finish();
    }

    #[test]
    fn arbitrary_utmp_records(bytes in proptest::collection::vec(any::<u8>(), 0..800)) {
        let _ = utmp::parse(&bytes, utmp::UtmpArch::Armv7);
        let mut a = analyzer();
        for rec in bytes.chunks(utmp::RECORD_SIZE) {
            a.feed_utmp(rec, utmp::UtmpArch::X86_64);
        }
        let _ = LogFormat::detect(&bytes);
        a.finish();
    }
}
