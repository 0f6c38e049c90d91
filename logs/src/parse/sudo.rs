//! `sudo` messages: `alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update`
//! (the command line is everything after `COMMAND=`, which may contain ` ; `),
//! `alice : 3 incorrect password attempts ; TTY=...`, `alice : user NOT in sudoers ; ...`,
//! and sudo's PAM lines (noise: the `COMMAND=` line is the fact).

use std::borrow::Cow;

use super::{pam, split_once_str, tty_name, Event, Refusal};

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
    if let Some((n, fields)) = split_once_str(rest, " incorrect password attempt") {
        let count = n.trim().parse().unwrap_or(1);
        // With its command, the attempt is a refusal too (the failures are counted
        // from it all the same).
        if let Some((fields, command)) = split_once_str(fields, "COMMAND=") {
            return Some(Event::PrivilegeRefused {
                user,
                reason: Refusal::IncorrectPassword(count),
                tty: field(fields, "TTY=").and_then(tty_name),
                target: field(fields, "USER="),
                command,
            });
        }
        return Some(Event::AuthFailed {
            user: Some(Cow::Borrowed(user)),
            ip: None,
            invalid_user: false,
            count,
            tentative: false,
        });
    }
    if let Some((fields, command)) = split_once_str(rest, "COMMAND=") {
        // "user NOT in sudoers ; TTY=...", "command not allowed ; TTY=...": the refusal's
        // reason comes before the fields, which start at TTY=.
        if !fields.starts_with("TTY=") {
            if let Some((reason, _)) = split_once_str(fields, " ; ") {
                let reason = if reason.contains("command not allowed") {
                    Some(Refusal::CommandNotAllowed)
                } else if reason.contains("NOT in sudoers") {
                    Some(Refusal::NotInSudoers)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Some(Event::PrivilegeRefused {
                        user,
                        reason,
                        tty: field(fields, "TTY=").and_then(tty_name),
                        target: field(fields, "USER="),
                        command,
                    });
                }
            }
        }
        // The terminal tells the user's concurrent sessions apart; a command line's own
        // " ; " cannot be mistaken for a field: the fields end where COMMAND= starts.
        let tty = field(fields, "TTY=").and_then(tty_name);
        return Some(Event::Command { user: Some(user), tty, command: Cow::Borrowed(command) });
    }
    Some(Event::Noise)
}

/// The value of `key` (`TTY=`, `USER=`) in sudo's ` ; `-separated fields before `COMMAND=`.
fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    fields.split(" ; ").find_map(|f| f.trim().strip_prefix(key)).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_keep_their_whole_line() {
        assert_eq!(
            parse("  ubuntu : TTY=pts/0 ; PWD=/home/ubuntu ; USER=root ; COMMAND=/usr/bin/curl -L -O https://x/a.deb")
                .unwrap(),
            Event::Command {
                user: Some("ubuntu"),
                tty: Some("pts/0"),
                command: "/usr/bin/curl -L -O https://x/a.deb".into()
            }
        );
        assert_eq!(
            parse("bob : TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh -c echo a ; echo b").unwrap(),
            Event::Command { user: Some("bob"), tty: Some("pts/1"), command: "/bin/sh -c echo a ; echo b".into() }
        );
        // sudo run without a terminal (cron, a script) writes TTY=unknown.
        assert_eq!(
            parse("backup : TTY=unknown ; PWD=/ ; USER=root ; COMMAND=/usr/bin/rsync -a /srv /mnt").unwrap(),
            Event::Command { user: Some("backup"), tty: None, command: "/usr/bin/rsync -a /srv /mnt".into() }
        );
    }

    #[test]
    fn refusals_carry_user_tty_target_and_command() {
        // Verbatim (Wazuh's sudo rule tests).
        assert_eq!(
            parse("    ddp2 : user NOT in sudoers ; TTY=ttypZ ; PWD=/home/ddp2 ; USER=root ; COMMAND=/bin/ls").unwrap(),
            Event::PrivilegeRefused {
                user: "ddp2",
                reason: Refusal::NotInSudoers,
                tty: Some("ttypZ"),
                target: Some("root"),
                command: "/bin/ls"
            }
        );
        assert_eq!(
            parse("eve : command not allowed ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/usr/sbin/useradd -m x")
                .unwrap(),
            Event::PrivilegeRefused {
                user: "eve",
                reason: Refusal::CommandNotAllowed,
                tty: Some("pts/1"),
                target: Some("root"),
                command: "/usr/sbin/useradd -m x"
            }
        );
        // A command line that merely mentions the words is not a refusal.
        assert!(matches!(
            parse("bob : TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/echo user NOT in sudoers ; x"),
            Some(Event::Command { .. })
        ));
    }

    #[test]
    fn failures_and_pam() {
        // With its command, a refusal too (the analyzer counts its 3 failures).
        assert_eq!(
            parse("alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/ls"),
            Some(Event::PrivilegeRefused {
                user: "alice",
                reason: Refusal::IncorrectPassword(3),
                tty: Some("pts/0"),
                target: Some("root"),
                command: "/bin/ls"
            })
        );
        assert!(matches!(
            parse("alice : 2 incorrect password attempts ; TTY=pts/0 ; PWD=/ ; USER=root"),
            Some(Event::AuthFailed { count: 2, .. })
        ));
        assert_eq!(parse("pam_unix(sudo:session): session opened for user root by ubuntu(uid=0)"), Some(Event::Noise));
        assert_eq!(parse("no separator here"), None);
    }
}
