//! `sudo` messages: `alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update`
//! (the command line is everything after `COMMAND=`, which may contain ` ; `),
//! `alice : 3 incorrect password attempts ; TTY=...`, `alice : user NOT in sudoers ; ...`,
//! and sudo's PAM lines (noise: the `COMMAND=` line is the fact).

use std::borrow::Cow;

use super::{pam, split_once_str, Event};

/// Parses one sudo message.
pub fn parse(msg: &str) -> Option<Event<'_>> {
    let msg = msg.trim_start();
    if let Some(e) = pam::parse(msg) {
        return Some(match e {
            Event::AuthFailed { .. } => e,
            _ => Event::Noise,
        });
    }
    let (user, rest) = split_once_str(msg, " : ")?;
    let user = user.trim();
    if user.is_empty() || user.contains(' ') {
        return None;
    }
    if let Some((n, _)) = split_once_str(rest, " incorrect password attempt") {
        let count = n.trim().parse().unwrap_or(1);
        return Some(Event::AuthFailed {
            user: Some(Cow::Borrowed(user)),
            ip: None,
            invalid_user: false,
            count,
            tentative: false,
        });
    }
    if let Some((_, command)) = split_once_str(rest, "COMMAND=") {
        let denied = rest.contains("NOT in sudoers") || rest.contains("command not allowed");
        let command = if denied { Cow::Owned(format!("sudo(denied) {command}")) } else { Cow::Borrowed(command) };
        return Some(Event::Command { user: Some(user), command });
    }
    Some(Event::Noise)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_keep_their_whole_line() {
        assert_eq!(
            parse("  ubuntu : TTY=pts/0 ; PWD=/home/ubuntu ; USER=root ; COMMAND=/usr/bin/curl -L -O https://x/a.deb")
                .unwrap(),
            Event::Command { user: Some("ubuntu"), command: "/usr/bin/curl -L -O https://x/a.deb".into() }
        );
        assert_eq!(
            parse("bob : TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh -c echo a ; echo b").unwrap(),
            Event::Command { user: Some("bob"), command: "/bin/sh -c echo a ; echo b".into() }
        );
        assert_eq!(
            parse("eve : user NOT in sudoers ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/bash").unwrap(),
            Event::Command { user: Some("eve"), command: "sudo(denied) /bin/bash".into() }
        );
    }

    #[test]
    fn failures_and_pam() {
        assert!(matches!(
            parse("alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/ls"),
            Some(Event::AuthFailed { count: 3, tentative: false, .. })
        ));
        assert!(matches!(
            parse("alice : 2 incorrect password attempts ; TTY=pts/0 ; PWD=/ ; USER=root"),
            Some(Event::AuthFailed { count: 2, .. })
        ));
        assert_eq!(parse("pam_unix(sudo:session): session opened for user root by ubuntu(uid=0)"), Some(Event::Noise));
        assert_eq!(parse("no separator here"), None);
    }
}
