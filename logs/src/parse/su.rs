//! `su` messages (shadow-utils and util-linux): `Successful su for root by alice`,
//! `FAILED su for root by alice`, `+ /dev/pts/0 alice:root`, and the PAM lines
//! (`pam_unix(su-l:session): session opened for user root by alice(uid=1000)`).
//!
//! A successful su is reported as a command (`su root`) of the invoking user,
//! from the PAM session line, which every variant writes; the others are noise
//! so the same su is not counted twice.

use std::borrow::Cow;

use super::{pam, rsplit_once_str, Event};

/// Parses one su message.
pub fn parse(msg: &str) -> Option<Event<'_>> {
    if pam::is_pam(msg) {
        return Some(from_pam(pam::parse(msg)?));
    }
    if let Some(rest) = msg.strip_prefix("FAILED su for ").or_else(|| msg.strip_prefix("FAILED SU (to ")) {
        let (target, _by) = rsplit_once_str(rest, " by ").unwrap_or((rest, ""));
        let target = target.trim_end_matches(')');
        return Some(Event::AuthFailed {
            user: Some(Cow::Borrowed(target)),
            ip: None,
            invalid_user: false,
            count: 1,
            tentative: true, // pam_unix(su:auth) may say the same
        });
    }
    if msg.starts_with("Successful su for ")
        || msg.starts_with("+ ")
        || msg.starts_with("- ")
        || msg.starts_with("(to ")
        || msg.starts_with("pam_authenticate")
    {
        return Some(Event::Noise);
    }
    None
}

/// su's PAM lines, or the body of an old `su(pam_unix)` tag.
pub fn from_pam(event: Event<'_>) -> Event<'_> {
    match event {
        Event::SessionOpened { user, by: Some(by) } => {
            Event::Command { user: Some(by), command: Cow::Owned(format!("su {user}")) }
        }
        // "by (uid=0)": a system job switching user (logrotate, cron), not a person.
        Event::SessionOpened { .. } | Event::SessionClosed { .. } => Event::Noise,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn su_to_root_is_a_command_of_the_invoking_user() {
        assert_eq!(
            parse("pam_unix(su-l:session): session opened for user root by binayakprashad(uid=1000)").unwrap(),
            Event::Command { user: Some("binayakprashad"), command: "su root".into() }
        );
        assert_eq!(parse("pam_unix(su:session): session closed for user root").unwrap(), Event::Noise);
        assert_eq!(from_pam(pam::parse_body("session opened for user news by (uid=0)")), Event::Noise);
        assert!(matches!(parse("FAILED su for root by alice"), Some(Event::AuthFailed { .. })));
        assert_eq!(parse("Successful su for root by root"), Some(Event::Noise));
        assert_eq!(parse("+ /dev/pts/0 root:root"), Some(Event::Noise));
        assert_eq!(parse("whatever"), None);
    }
}
