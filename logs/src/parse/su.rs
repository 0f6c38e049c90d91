//! `su` messages: util-linux and shadow-utils (`FAILED SU (to root) alice on
//! pts/2`, `FAILED su for root by alice`, `Successful su for root by alice`,
//! `+ /dev/pts/0 alice:root`, `(to root) alice on pts/5`), BSD and old Unix
//! (`BAD SU alice to root on /dev/ttyp0`, `alice to root on /dev/ttyp1`,
//! `failed: ttyq4 changing from alice to root`), and the PAM lines
//! (`pam_unix(su-l:session): session opened for user root by alice(uid=1000)`).
//!
//! A successful su is reported as a command (`su root`) of the invoking user,
//! from the PAM session line where the system writes one; the Linux lines that
//! repeat it are noise so the same su is not counted twice. BSD's `alice to
//! root on TTY` comes with no PAM session line: it is the command there.
//!
//! A failed su is one attempt however many lines describe it: su's own
//! failure line pairs (per process) with `pam_unix(su:auth): authentication
//! failure`, as sshd's `Failed password` does with its PAM line.

use std::borrow::Cow;

use super::{pam, rsplit_once_str, split_once_str, tty_name, word, Event, Refusal};

/// Parses one su message.
pub fn parse(msg: &str) -> Option<Event<'_>> {
    if pam::is_pam(msg) {
        return Some(from_pam(pam::parse(msg)?));
    }
    // "FAILED SU (to root) jsmith on pts/2" (util-linux).
    if let Some(rest) = msg.strip_prefix("FAILED SU (to ") {
        let (target, rest) = rest.split_once(')')?;
        let (by, on) = split_once_str(rest.trim_start(), " on ").unwrap_or((rest.trim(), ""));
        return Some(failed(target, by, tty_name(word(on).0)));
    }
    // "FAILED su for root by alice" (shadow-utils).
    if let Some(rest) = msg.strip_prefix("FAILED su for ") {
        let (target, by) = rsplit_once_str(rest, " by ").unwrap_or((rest, ""));
        return Some(failed(target, by.trim(), None));
    }
    // "BAD SU ger to fwmaster on /dev/ttyp0" (BSD).
    if let Some(rest) = msg.strip_prefix("BAD SU ") {
        let (by, rest) = split_once_str(rest, " to ")?;
        let (target, rest) = word(rest);
        let tty = rest.strip_prefix("on ").and_then(|on| tty_name(word(on).0));
        return Some(failed(target, by.trim(), tty));
    }
    // "failed: ttyq4 changing from ldap to root" (IRIX and other old su).
    if let Some(rest) = msg.strip_prefix("failed: ") {
        let (tty, rest) = split_once_str(rest, " changing from ")?;
        let (by, target) = rsplit_once_str(rest, " to ")?;
        return Some(failed(target.trim(), by.trim(), tty_name(tty.trim())));
    }
    if msg.starts_with("Successful su for ")
        || msg.starts_with("+ ")
        || msg.starts_with("- ")
        || msg.starts_with("(to ")
        || msg.starts_with("pam_authenticate")
    {
        return Some(Event::Noise);
    }
    // "dcid to root on /dev/ttyp1" (BSD: a successful su).
    let (by, rest) = word(msg);
    let (target, rest) = word(rest.strip_prefix("to ")?);
    if let (false, false, Some(on)) = (by.is_empty(), target.is_empty(), rest.strip_prefix("on ")) {
        let tty = tty_name(word(on).0);
        return Some(Event::Command { user: Some(by), tty, command: Cow::Owned(format!("su {target}")) });
    }
    None
}

/// The terminal su's own lines name: util-linux/shadow's `+ /dev/pts/0 alice:root`
/// (`-` when it failed) and Debian's `(to root) alice on pts/0`. The PAM session
/// line of the same process, which is the command, names none.
pub fn tty(msg: &str) -> Option<&str> {
    let t = match msg.as_bytes().first()? {
        b'+' | b'-' => word(msg.get(2..)?).0,
        b'(' => word(split_once_str(msg, " on ")?.1).0,
        _ => return None,
    };
    tty_name(t)
}

/// su's own failure line for `target`, asked by `by` on `tty`: a refused switch
/// of `by` (when the line names who) and a failure of `target` paired with the PAM
/// line of the same process.
fn failed<'a>(target: &'a str, by: &'a str, tty: Option<&'a str>) -> Event<'a> {
    if !by.is_empty() && !target.is_empty() && !by.contains(' ') {
        return Event::PrivilegeRefused {
            user: by,
            reason: Refusal::SuFailed,
            tty,
            target: Some(target),
            command: target,
        };
    }
    Event::AuthFailed {
        user: (!target.is_empty()).then_some(Cow::Borrowed(target)),
        ip: None,
        invalid_user: false,
        count: 1,
        tentative: false,
    }
}

/// su's PAM lines, or the body of an old `su(pam_unix)` tag.
pub fn from_pam(event: Event<'_>) -> Event<'_> {
    match event {
        Event::SessionOpened { user, by: Some(by) } => {
            // su's PAM line names no terminal (its "+ /dev/pts/0" line does, but by the
            // target's name, not the session's user).
            Event::Command { user: Some(by), tty: None, command: Cow::Owned(format!("su {user}")) }
        }
        // "by (uid=0)": a system job switching user (logrotate, cron), not a person.
        Event::SessionOpened { .. } | Event::SessionClosed { .. } => Event::Noise,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The target of a failed su, and who asked on which terminal when the line says.
    fn failed_for(line: &str) -> Option<String> {
        match parse(line) {
            Some(Event::AuthFailed { user, tentative: false, count: 1, .. }) => user.map(|u| u.into_owned()),
            Some(Event::PrivilegeRefused { user, reason: Refusal::SuFailed, tty, target, .. }) => {
                Some(format!("{} by {user} on {}", target?, tty.unwrap_or("-")))
            }
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn su_to_root_is_a_command_of_the_invoking_user() {
        assert_eq!(
            parse("pam_unix(su-l:session): session opened for user root by binayakprashad(uid=1000)").unwrap(),
            Event::Command { user: Some("binayakprashad"), tty: None, command: "su root".into() }
        );
        assert_eq!(parse("pam_unix(su:session): session closed for user root").unwrap(), Event::Noise);
        assert_eq!(from_pam(pam::parse_body("session opened for user news by (uid=0)")), Event::Noise);
        assert_eq!(parse("Successful su for root by root"), Some(Event::Noise));
        assert_eq!(parse("+ /dev/pts/0 root:root"), Some(Event::Noise));
        assert_eq!(parse("(to root) root on pts/5"), Some(Event::Noise));
        assert_eq!(parse("whatever"), None);
        // Verbatim (Wazuh's su rule tests): BSD's successful su.
        assert_eq!(
            parse("dcid to root on /dev/ttyp1"),
            Some(Event::Command { user: Some("dcid"), tty: Some("ttyp1"), command: "su root".into() })
        );
    }

    #[test]
    fn su_lines_name_the_terminal() {
        // Verbatim (shared data elastic/auth.log, logs/testdata/unseen/debian-sudo-su.log).
        assert_eq!(tty("+ /dev/pts/0 root:root"), Some("pts/0"));
        assert_eq!(tty("(to root) debian on pts/0"), Some("pts/0"));
        assert_eq!(tty("- /dev/pts/3 alice:root"), Some("pts/3"));
        assert_eq!(tty("pam_unix(su:session): session opened for user root by ubuntu(uid=0)"), None);
        assert_eq!(tty("Successful su for root by root"), None);
        assert_eq!(tty("+"), None);
    }

    #[test]
    fn every_failure_form_names_the_target_and_pairs_with_pam() {
        // Verbatim lines (logs/testdata/unseen/SOURCES.md) except the shadow-utils one.
        assert_eq!(failed_for("FAILED SU (to root) jsmith on pts/2").as_deref(), Some("root by jsmith on pts/2"));
        assert_eq!(failed_for("FAILED su for root by alice").as_deref(), Some("root by alice on -"));
        assert_eq!(failed_for("BAD SU ger to fwmaster on /dev/ttyp0").as_deref(), Some("fwmaster by ger on ttyp0"));
        assert_eq!(failed_for("BAD SU jpb to root on /dev/ttyp3").as_deref(), Some("root by jpb on ttyp3"));
        assert_eq!(failed_for("failed: ttyq4 changing from ldap to root").as_deref(), Some("root by ldap on ttyq4"));
        assert!(matches!(
            parse("pam_unix(su:auth): authentication failure; logname=alice uid=1000 euid=0 tty=pts/0 ruser=alice rhost=  user=root"),
            Some(Event::AuthFailed { tentative: true, .. })
        ));
        assert_eq!(parse("BAD SU nobody"), None);
        assert_eq!(parse("failed: nothing here"), None);
    }
}
