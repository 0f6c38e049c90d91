//! `login` (util-linux / shadow / BusyBox) messages: `LOGIN ON tty1 BY root`,
//! `ROOT LOGIN ON tty1 [FROM host]`, `FAILED LOGIN 1 FROM tty1 FOR root, Authentication failure`,
//! `FAILED LOGIN (1) on '/dev/tty1' FOR 'root', Authentication failure`, and its PAM lines
//! (the PAM session lines open and close the session).

use std::borrow::Cow;

use super::{pam, parse_ip, split_once_str, AuthMethod, Event};

/// Parses one login message.
pub fn parse(msg: &str) -> Option<Event<'_>> {
    if pam::is_pam(msg) {
        return pam::parse(msg);
    }
    // BusyBox login (routers, cameras: the telnet and serial-console login), which has no
    // PAM session lines: "invalid password for 'root' on 'console'", "root login on 'pts/0'",
    // both with " from 'HOST'" when telnetd passed the client's address.
    if let Some(rest) = msg.strip_prefix("invalid password for '") {
        let (user, rest) = rest.split_once('\'')?;
        return Some(Event::AuthFailed {
            user: Some(Cow::Borrowed(user)),
            ip: busybox_from(rest),
            invalid_user: false,
            count: 1,
            // BusyBox built with PAM logs pam_unix's line first: this one pairs with it.
            tentative: false,
        });
    }
    if let Some(rest) = msg.strip_prefix("root login") {
        if rest.is_empty() || rest.starts_with(" on '") || rest.starts_with(" from '") {
            return Some(Event::Accepted {
                user: Cow::Borrowed("root"),
                ip: busybox_from(rest),
                method: AuthMethod::Password,
            });
        }
    }
    if msg.starts_with("FAILED LOGIN") {
        // "... FROM tty1 FOR root, Authentication failure" / "... on '/dev/tty1' FOR 'root', ..."
        let (_, rest) = split_once_str(msg, " FOR ")?;
        let user = rest.split(',').next().unwrap_or(rest).trim().trim_matches('\'');
        let ip = split_once_str(msg, " FROM ")
            .and_then(|(_, r)| parse_ip(r.split(' ').next().unwrap_or("").trim_matches('\'')));
        return Some(Event::AuthFailed {
            user: Some(Cow::Borrowed(user)),
            ip,
            invalid_user: false,
            count: 1,
            tentative: true, // pam_unix(login:auth) usually says the same
        });
    }
    // "LOGIN ON tty1 BY root": the PAM session line is the session; this is its echo.
    if msg.starts_with("LOGIN ON ")
        || msg.starts_with("ROOT LOGIN ON ")
        || msg.starts_with("DIALUP")
        || msg.starts_with("TOO MANY LOGIN TRIES")
    {
        return Some(Event::Noise);
    }
    None
}

/// The address in BusyBox's ` on 'TTY' from 'HOST'` suffix, when it is one.
fn busybox_from(rest: &str) -> Option<std::net::IpAddr> {
    let (_, host) = split_once_str(rest, " from '")?;
    parse_ip(host.split('\'').next()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_failures_and_sessions() {
        assert!(matches!(
            parse("FAILED LOGIN 1 FROM tty1 FOR root, Authentication failure"),
            Some(Event::AuthFailed { user: Some(ref u), ip: None, .. }) if u == "root"
        ));
        assert!(matches!(
            parse("FAILED LOGIN (1) on '/dev/pts/3' FROM '198.51.100.4' FOR 'admin', Authentication failure"),
            Some(Event::AuthFailed { user: Some(ref u), .. }) if u == "admin"
        ));
        assert_eq!(
            parse("pam_unix(login:session): session opened for user root by LOGIN(uid=0)"),
            Some(Event::SessionOpened { user: "root".into(), by: Some("LOGIN") })
        );
        assert_eq!(parse("ROOT LOGIN ON tty1"), Some(Event::Noise));
        assert_eq!(parse("something else"), None);
    }

    #[test]
    fn busybox_login_without_pam() {
        // Verbatim, a BusyBox console (logs/testdata/unseen/busybox-login.log).
        assert_eq!(
            parse("invalid password for 'root' on 'console'"),
            Some(Event::AuthFailed {
                user: Some("root".into()),
                ip: None,
                invalid_user: false,
                count: 1,
                tentative: false
            })
        );
        assert_eq!(
            parse("root login on 'console'"),
            Some(Event::Accepted { user: "root".into(), ip: None, method: AuthMethod::Password })
        );
        // telnetd passes the client with -h: BusyBox appends " from 'HOST'".
        assert!(matches!(
            parse("invalid password for 'admin' on 'pts/0' from '192.0.2.7'"),
            Some(Event::AuthFailed { ip: Some(_), .. })
        ));
        assert_eq!(parse("root login onwards"), None);
    }
}
