//! FTP servers: vsftpd (syslog and its own `vsftpd.log`), ProFTPD, and the
//! classic BSD/wu `ftpd` (`connection from 1.2.3.4 (host) at ...`).
//! Their PAM lines go to [`super::pam`].

use std::borrow::Cow;

use super::{pam, parse_ip, split_once_str, AuthMethod, Event};

/// Parses one message of an FTP server; `program` is the tag (`vsftpd`, `proftpd`, `ftpd`, ...).
pub fn parse<'a>(program: &str, msg: &'a str) -> Option<Event<'a>> {
    if msg.starts_with("pam_") {
        return pam::parse(msg);
    }
    match program {
        "vsftpd" => vsftpd(msg),
        "proftpd" => proftpd(msg),
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
            Event::Command { user: Some(u), command: Cow::Owned(format!("{} {path}", v.to_ascii_lowercase())) }
        }
        _ => Event::Noise,
    })
}

/// `host (1.2.3.4[1.2.3.4]) - USER alice: Login successful.` and friends.
fn proftpd(msg: &str) -> Option<Event<'_>> {
    let Some((client, what)) = split_once_str(msg, ") - ") else {
        return (msg.starts_with("ProFTPD") || msg.contains("FTP session")).then_some(Event::Noise);
    };
    let ip = client.rsplit_once('[').and_then(|(_, a)| parse_ip(a.trim_end_matches(']')));
    if let Some(rest) = what.strip_prefix("USER ").or_else(|| what.strip_prefix("ANON ")) {
        let (user, outcome) = rest.split_once(':').unwrap_or((rest, ""));
        if let Some(user) = user.strip_suffix(" (Login failed)") {
            return Some(Event::AuthFailed {
                user: Some(Cow::Borrowed(user)),
                ip,
                invalid_user: false,
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
    Some(Event::Noise)
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
            Some(Event::Command { user: Some("alice"), command: "ok upload /srv/x.sh".into() })
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
}
