//! `systemd-logind` messages, which Debian and Ubuntu write to `auth.log`
//! around every login: `New session 37 of user root.`, `Session 37 logged
//! out. Waiting for processes to exit.`, `Removed session 37.`, and at boot
//! `New seat seat0.`, `Watching system buttons on /dev/input/event0 (Power
//! Button)`.
//!
//! They are known and bear on nothing the analyzer judges: the PAM session
//! lines of the same login (`pam_unix(sshd:session): session opened ...`)
//! already open and close its session, with the process id that ties them to
//! the connection, which logind's session number does not. So every form here
//! is [`Event::Noise`]; a logind message of any other form stays unknown.

use super::Event;

/// Parses one systemd-logind message.
pub fn parse(msg: &str) -> Option<Event<'_>> {
    let known = if let Some(rest) = msg.strip_prefix("New session ") {
        // "New session 37 of user root." / "New session c1 of user gdm."
        rest.split_once(" of user ").is_some_and(|(id, user)| is_id(id) && user.ends_with('.'))
    } else if let Some(rest) = msg.strip_prefix("Removed session ") {
        rest.strip_suffix('.').is_some_and(is_id)
    } else if let Some(rest) = msg.strip_prefix("Session ") {
        // "Session 37 logged out. Waiting for processes to exit."
        rest.split_once(' ').is_some_and(|(id, what)| is_id(id) && what == "logged out. Waiting for processes to exit.")
    } else if let Some(rest) = msg.strip_prefix("New seat ").or_else(|| msg.strip_prefix("Removed seat ")) {
        rest.ends_with('.')
    } else {
        msg.starts_with("Watching system buttons on ")
    };
    known.then_some(Event::Noise)
}

/// A logind session id: a number, or `c` and a number for sessions without a
/// login process behind them (display managers' greeters).
fn is_id(s: &str) -> bool {
    let digits = s.strip_prefix('c').unwrap_or(s);
    !digits.is_empty() && digits.len() <= 10 && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_and_seat_lines_are_known_noise() {
        // Verbatim from shared/data/real/elastic/auth.log (Ubuntu).
        for msg in [
            "New session 1 of user ubuntu.",
            "Removed session 1.",
            "New seat seat0.",
            "Watching system buttons on /dev/input/event0 (Power Button)",
            "Watching system buttons on /dev/input/event1 (Sleep Button)",
            "New session 12 of user elastic_user_7.",
        ] {
            assert_eq!(parse(msg), Some(Event::Noise), "{msg}");
        }
        // The logged-out line of systemd >= 230 (Debian 12, Ubuntu 22.04) and a
        // display manager's session id.
        assert_eq!(parse("Session 37 logged out. Waiting for processes to exit."), Some(Event::Noise));
        assert_eq!(parse("New session c1 of user gdm."), Some(Event::Noise));
        assert_eq!(parse("Removed session c1."), Some(Event::Noise));
    }

    #[test]
    fn other_forms_stay_unknown() {
        for msg in [
            "Power key pressed.",
            "New session of user root.",
            "Removed session .",
            "Removed session 37",
            "Session 37 logged in.",
            "Session x7 logged out. Waiting for processes to exit.",
            "New session 37 for user root.",
            "",
        ] {
            assert_eq!(parse(msg), None, "{msg}");
        }
    }
}
