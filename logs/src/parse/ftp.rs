//! FTP servers: vsftpd (syslog and its own `vsftpd.log`), ProFTPD, and the
//! classic BSD/wu `ftpd` (`connection from 1.2.3.4 (host) at ...`).
//! Their PAM lines go to [`super::pam`].

use std::borrow::Cow;

use super::{pam, parse_ip, split_once_str, AuthMethod, Event};

/// Parses one message of an FTP server; `program` is the tag (`vsftpd`, `proftpd`, `ftpd`, ...).
pub fn parse<'a>(program: &str, msg: &'a str) -> Option<Event<'a>> {
    if pam::is_pam(msg) {
        return pam::parse(msg);
    }
    match program {
        "vsftpd" => vsftpd(msg),
        "proftpd" => proftpd(msg),
        "xferlog" => xferlog(msg),
        "pure-ftpd" => pure_ftpd(msg),
        _ => ftpd(msg),
    }
}

/// `[user] OK LOGIN: Client "1.2.3.4"`, `CONNECT: Client "..."`, `[user] OK UPLOAD: Client "...", "/path", 12 bytes`.
fn vsftpd(msg: &str) -> Option<Event<'_>> {
    let (user, rest) = match msg.strip_prefix('[') {
        Some(r) => {
            let (u, rest) = r.split_once("] ")?;
            (Some(u), rest)
        }
        None => (None, msg),
    };
    let (verb, args) = split_once_str(rest, ": Client \"")?;
    let (addr, tail) = args.split_once('"')?;
    let ip = parse_ip(addr);
    Some(match (verb, user) {
        ("CONNECT", _) => ip.map(|ip| Event::Connected { ip })?,
        ("OK LOGIN", Some(u)) => Event::Accepted { user: Cow::Borrowed(u), ip, method: AuthMethod::Password },
        ("FAIL LOGIN", u) => {
            Event::AuthFailed { user: u.map(Cow::Borrowed), ip, invalid_user: false, count: 1, tentative: false }
        }
        (v, Some(u)) if v.starts_with("OK ") || v.starts_with("FAIL ") => {
            // Transfers and file operations are what the FTP session did.
            let path = tail.trim_start_matches(", \"").split('"').next().unwrap_or("");
            Event::Command {
                user: Some(u),
                tty: None,
                command: Cow::Owned(format!("{} {path}", v.to_ascii_lowercase())),
            }
        }
        _ => Event::Noise,
    })
}

/// `host (1.2.3.4[1.2.3.4]) - USER alice: Login successful.` and friends; ProFTPD's
/// own log and some syslog setups write `host (client[addr]): USER ...` instead.
fn proftpd(msg: &str) -> Option<Event<'_>> {
    // TCP wrappers (mod_wrap): "refused connect from 192.168.1.2 (192.168.1.2)".
    if let Some(rest) = msg.strip_prefix("refused connect from ") {
        let ip = rest.rsplit_once('(').and_then(|(_, a)| a.trim_end().strip_suffix(')')).and_then(parse_ip);
        return ip.map(|ip| Event::Probe { ip });
    }
    let dash = memchr::memmem::find(msg.as_bytes(), b") - ").map(|at| (at, 4));
    let colon = memchr::memmem::find(msg.as_bytes(), b"): ").map(|at| (at, 3));
    let split = match (dash, colon) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let Some((at, len)) = split else {
        // "host: Fatal: unable to open incoming connection: ...": the client left before
        // ProFTPD could read its address.
        let known = msg.starts_with("ProFTPD") || msg.contains("FTP session") || msg.contains("Fatal: ");
        return known.then_some(Event::Noise);
    };
    let (client, what) = (&msg[..at], &msg[at + len..]);
    let ip = client.rsplit_once('[').and_then(|(_, a)| parse_ip(a.trim_end_matches(']')));
    if let Some(rest) = what.strip_prefix("USER ").or_else(|| what.strip_prefix("ANON ")) {
        let (user, outcome) = rest.split_once(':').unwrap_or((rest, ""));
        if let Some(user) = user.strip_suffix(" (Login failed)") {
            // "USER x (Login failed): No such user found" (mod_sql and others) is an unknown user.
            let invalid_user = outcome.trim_start().to_ascii_lowercase().starts_with("no such user");
            return Some(Event::AuthFailed {
                user: Some(Cow::Borrowed(user)),
                ip,
                invalid_user,
                count: 1,
                tentative: false,
            });
        }
        if outcome.trim_start().starts_with("no such user") {
            return Some(Event::AuthFailed {
                user: Some(Cow::Borrowed(user)),
                ip,
                invalid_user: true,
                count: 1,
                tentative: false,
            });
        }
        if outcome.trim_start().starts_with("Login successful") {
            return Some(Event::Accepted { user: Cow::Borrowed(user), ip, method: AuthMethod::Password });
        }
        return Some(Event::Noise);
    }
    if what.starts_with("FTP session opened") {
        return ip.map(|ip| Event::Connected { ip });
    }
    if what.starts_with("FTP session closed") {
        return Some(Event::Disconnected { ip, preauth: false });
    }
    // "Connection from HOST [ADDR] denied.": refused by the server's configuration.
    if what.starts_with("Connection from ") && what.trim_end().ends_with("denied.") {
        return ip.map(|ip| Event::Probe { ip });
    }
    Some(Event::Noise)
}

/// Pure-FTPd (NAS boxes, hosting panels): `(USER@HOST) [LEVEL] text`, USER `?` before the
/// login: `(?@1.2.3.4) [WARNING] Authentication failed for user [root]`, `(?@1.2.3.4) [INFO]
/// alice is now logged in`, `(?@1.2.3.4) [INFO] New connection from 1.2.3.4`.
fn pure_ftpd(msg: &str) -> Option<Event<'_>> {
    let rest = msg.strip_prefix('(')?;
    let (who, rest) = split_once_str(rest, ") [")?;
    let (_, host) = who.rsplit_once('@')?;
    let (_level, text) = rest.split_once("] ")?;
    let (ip, text) = (parse_ip(host), text.trim_end());
    if let Some(user) = text.strip_prefix("Authentication failed for user [").and_then(|u| u.strip_suffix(']')) {
        return Some(Event::AuthFailed {
            user: Some(Cow::Borrowed(user)),
            ip,
            invalid_user: false,
            count: 1,
            tentative: false,
        });
    }
    if let Some(user) = text.strip_suffix(" is now logged in") {
        return Some(Event::Accepted { user: Cow::Borrowed(user), ip, method: AuthMethod::Password });
    }
    if text.starts_with("New connection from ") {
        return ip.map(|ip| Event::Connected { ip });
    }
    None
}

/// One transfer of the xferlog (after its ctime stamp): `SECS HOST SIZE FILE TYPE ACTION
/// DIRECTION MODE USER SERVICE AUTH AUTHID STATUS`. The file name may hold spaces, so the nine
/// fixed fields are taken from the right. It becomes a command of the user's FTP session, worded
/// as vsftpd's own log words it (`ok download /path`).
fn xferlog(msg: &str) -> Option<Event<'_>> {
    let mut right = msg.rsplitn(10, ' ');
    let status = right.next()?;
    let (_authid, _auth, _service) = (right.next()?, right.next()?, right.next()?);
    let user = right.next()?;
    let (_mode, direction, _action, _type) = (right.next()?, right.next()?, right.next()?, right.next()?);
    let left = right.next()?;
    let mut fields = left.splitn(4, ' ');
    let (_secs, _host, _size) = (fields.next()?, fields.next()?, fields.next()?);
    let file = fields.next()?;
    let outcome = match status {
        "c" => "ok",
        "i" => "fail",
        _ => return None,
    };
    let what = match direction {
        "o" => "download",
        "i" => "upload",
        "d" => "delete",
        _ => return None,
    };
    Some(Event::Command { user: Some(user), tty: None, command: Cow::Owned(format!("{outcome} {what} {file}")) })
}

/// BSD/wu-ftpd: `connection from 1.2.3.4 (host) at Sun Jul 10 ...`.
fn ftpd(msg: &str) -> Option<Event<'_>> {
    if let Some(rest) = msg.strip_prefix("connection from ") {
        let addr = rest.split(' ').next().unwrap_or("");
        return parse_ip(addr).map(|ip| Event::Connected { ip });
    }
    if let Some(rest) = msg.strip_prefix("FTP LOGIN FROM ") {
        // "FTP LOGIN FROM host [1.2.3.4], alice"
        let ip = rest.split_once('[').and_then(|(_, r)| r.split_once(']')).and_then(|(a, _)| parse_ip(a));
        let user = rest.rsplit(", ").next().unwrap_or("").trim();
        return Some(Event::Accepted { user: Cow::Borrowed(user), ip, method: AuthMethod::Password });
    }
    if msg.starts_with("getpeername") || msg.starts_with("FTP session closed") || msg.starts_with("ANONYMOUS FTP LOGIN")
    {
        return Some(Event::Noise);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn proftpd_refusals_and_fatal_errors() {
        // Verbatim (Wazuh's ProFTPD rule tests).
        let probe = |a: &str| Some(Event::Probe { ip: a.parse().unwrap() });
        assert_eq!(parse("proftpd", "refused connect from 192.168.1.2 (192.168.1.2)"), probe("192.168.1.2"));
        assert_eq!(
            parse("proftpd", "valhalla (crawl-66-249-66-80.googlebot.com[66.249.66.80]) - Connection from crawl-66-249-66-80.googlebot.com [66.249.66.80] denied."),
            probe("66.249.66.80")
        );
        assert_eq!(
            parse(
                "proftpd",
                "server.example.net: Fatal: unable to open incoming connection: Der Socket ist nicht verbunden"
            ),
            Some(Event::Noise)
        );
        assert_eq!(parse("proftpd", "refused connect from nowhere"), None);
    }

    #[test]
    fn vsftpd_logins_failures_and_transfers() {
        assert_eq!(
            parse("vsftpd", r#"[alice] OK LOGIN: Client "::ffff:203.0.113.9""#),
            Some(Event::Accepted { user: "alice".into(), ip: ip("203.0.113.9"), method: AuthMethod::Password })
        );
        assert_eq!(
            parse("vsftpd", r#"[bob] FAIL LOGIN: Client "2001:db8::9""#),
            Some(Event::AuthFailed {
                user: Some("bob".into()),
                ip: ip("2001:db8::9"),
                invalid_user: false,
                count: 1,
                tentative: false
            })
        );
        assert_eq!(
            parse("vsftpd", r#"CONNECT: Client "203.0.113.9""#),
            Some(Event::Connected { ip: "203.0.113.9".parse().unwrap() })
        );
        assert_eq!(
            parse("vsftpd", r#"[alice] OK UPLOAD: Client "203.0.113.9", "/srv/x.sh", 120 bytes, 1.2Kbyte/sec"#),
            Some(Event::Command { user: Some("alice"), tty: None, command: "ok upload /srv/x.sh".into() })
        );
    }

    #[test]
    fn proftpd_and_bsd_ftpd() {
        assert_eq!(
            parse("proftpd", "web01 (203.0.113.7[203.0.113.7]) - USER alice: Login successful."),
            Some(Event::Accepted { user: "alice".into(), ip: ip("203.0.113.7"), method: AuthMethod::Password })
        );
        assert!(matches!(
            parse("proftpd", "web01 (203.0.113.7[203.0.113.7]) - USER root (Login failed): Incorrect password"),
            Some(Event::AuthFailed { invalid_user: false, .. })
        ));
        assert!(matches!(
            parse(
                "proftpd",
                "web01 (h[2001:db8::7]) - USER zz: no such user found from h [2001:db8::7] to 10.0.0.1:21"
            ),
            Some(Event::AuthFailed { invalid_user: true, ip: Some(_), .. })
        ));
        assert_eq!(
            parse("proftpd", "web01 (203.0.113.7[203.0.113.7]) - FTP session closed."),
            Some(Event::Disconnected { ip: ip("203.0.113.7"), preauth: false })
        );
        assert_eq!(
            parse("proftpd", "pam_unix(proftpd:session): session opened for user ftptangence by (uid=0)"),
            Some(Event::SessionOpened { user: "ftptangence".into(), by: None })
        );
        assert_eq!(
            parse(
                "ftpd",
                "connection from 24.54.76.216 (24-54-76-216.bflony.adelphia.net) at Fri Jun 17 20:55:07 2005 "
            ),
            Some(Event::Connected { ip: "24.54.76.216".parse().unwrap() })
        );
        assert_eq!(parse("ftpd", "unknown words"), None);
    }

    #[test]
    fn proftpd_colon_form_unknown_users_and_summaries() {
        // Verbatim (logs/testdata/unseen/SOURCES.md).
        assert_eq!(
            parse("proftpd", "mantis (192.168.1.142[192.168.1.142]): USER asd: no such user found from 192.168.1.142 [192.168.1.142] to ::ffff:192.168.1.23:21"),
            Some(Event::AuthFailed {
                user: Some("asd".into()),
                ip: ip("192.168.1.142"),
                invalid_user: true,
                count: 1,
                tentative: false
            })
        );
        assert_eq!(
            parse("proftpd", "localhost (2a02:8070:e186:16e1:1111:222:3333:b173[2a02:8070:e186:16e1:1111:222:3333:b173]): USER ccvv_ftp1 (Login failed): No such user found"),
            Some(Event::AuthFailed {
                user: Some("ccvv_ftp1".into()),
                ip: ip("2a02:8070:e186:16e1:1111:222:3333:b173"),
                invalid_user: true,
                count: 1,
                tentative: false
            })
        );
        // The address is the client's, not one written into the user name.
        let e = parse("proftpd", "platypus.ace-hosting.com.au (::ffff:59.167.242.100[::ffff:59.167.242.100]): USER platypus.ace-hosting.com.au proftpd[17424] platypus.ace-hosting.com.au (hihoinjection[1.2.3.44]): no such user found from ::ffff:59.167.242.100 [::ffff:59.167.242.100] to ::ffff:113.212.99.194:21").unwrap();
        assert!(
            matches!(e, Event::AuthFailed { ip: Some(a), invalid_user: true, .. } if Some(a) == ip("59.167.242.100")),
            "{e:?}"
        );
        for noise in [
            "platypus.ace-hosting.com.au (::ffff:59.167.242.100[::ffff:59.167.242.100]): SECURITY VIOLATION: root login attempted.",
            "xxxxxxxxxx (::ffff:1.2.3.4[::ffff:1.2.3.4]) - Maximum login attempts (3) exceeded ",
        ] {
            assert_eq!(parse("proftpd", noise), Some(Event::Noise), "{noise}");
        }
        assert!(matches!(
            parse("vsftpd", "(pam_unix) authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=209.67.1.67"),
            Some(Event::AuthFailed { tentative: true, .. })
        ));
    }

    #[test]
    fn xferlog_transfers_are_commands_of_the_user() {
        // Verbatim (logs/testdata/unseen/xferlog), after the header's ctime stamp.
        assert_eq!(
            parse("xferlog", "1 10.20.220.39 4609 /share/batch/Exclusion_Group/Archive/20151118-151104-703EXCL_GRP_S200_F4.txt b _ o r ftp_user ftp 0 * c"),
            Some(Event::Command {
                user: Some("ftp_user"),
                tty: None,
                command: "ok download /share/batch/Exclusion_Group/Archive/20151118-151104-703EXCL_GRP_S200_F4.txt".into()
            })
        );
        assert_eq!(
            parse("xferlog", "1 x.x.x.x 0 /home/byoungguk/3 b _ i r byoungguk ftp 0 * c"),
            Some(Event::Command { user: Some("byoungguk"), tty: None, command: "ok upload /home/byoungguk/3".into() })
        );
        // A file name with a space is one path.
        assert_eq!(
            parse("xferlog", "0 h 0 /pub/release notes.txt a _ o a guest ftp 0 * i"),
            Some(Event::Command {
                user: Some("guest"),
                tty: None,
                command: "fail download /pub/release notes.txt".into()
            })
        );
        assert_eq!(parse("xferlog", "0 h 0 /x b _ q r u ftp 0 * c"), None);
    }

    #[test]
    fn pure_ftpd_logins_and_failures() {
        // Verbatim (logs/testdata/unseen/pureftpd.log).
        assert_eq!(
            parse("pure-ftpd", "(?@60.211.252.98) [WARNING] Authentication failed for user [Administrador]"),
            Some(Event::AuthFailed {
                user: Some("Administrador".into()),
                ip: ip("60.211.252.98"),
                invalid_user: false,
                count: 1,
                tentative: false
            })
        );
        assert_eq!(
            parse("pure-ftpd", "(?@172.21.10.2) [INFO] user@test.com is now logged in"),
            Some(Event::Accepted { user: "user@test.com".into(), ip: ip("172.21.10.2"), method: AuthMethod::Password })
        );
        assert_eq!(
            parse("pure-ftpd", "(?@60.211.252.98) [INFO] New connection from 60.211.252.98"),
            Some(Event::Connected { ip: "60.211.252.98".parse().unwrap() })
        );
        // A trailing space, as one syslog wrote it.
        assert!(matches!(
            parse("pure-ftpd", "(?@68.4.142.211) [WARNING] Authentication failed for user [streetr1] "),
            Some(Event::AuthFailed { .. })
        ));
        // syslogd's "last message repeated" is not Pure-FTPd's own message: the
        // analyzer repeats the line before it (analyze.rs, replay_last_syslog).
        assert_eq!(parse("pure-ftpd", "last message repeated 4 times"), None);
    }
}
