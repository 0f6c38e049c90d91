//! `login` (util-linux / shadow / BusyBox) messages: `LOGIN ON tty1 BY root`,
//! `ROOT LOGIN ON tty1 [FROM host]`, `FAILED LOGIN 1 FROM tty1 FOR root, Authentication failure`,
//! `FAILED LOGIN (1) on '/dev/tty1' FOR 'root', Authentication failure`, and its PAM lines
//! (the PAM session lines open and close the session).

use std::borrow::Cow;

use super::{pam, parse_ip, split_once_str, Event};

/// Parses one login message.
pub fn parse(msg: &str) -> Option<Event<'_>> {
    if pam::is_pam(msg) {
        return pam::parse(msg);
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
}
