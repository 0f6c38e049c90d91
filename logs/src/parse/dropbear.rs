//! Dropbear SSH (OpenWrt, BusyBox systems) messages, 2012–2024 releases.
//!
//! Addresses come as `ip:port`, with IPv6 written `2001:db8::1:22` and,
//! in exits, inside `<...>`. Each connection is its own process, so the pid
//! keys the session as with sshd.

use std::borrow::Cow;

use super::{parse_ip_port, rsplit_once_str, split_once_str, AuthMethod, Event};

/// Parses one dropbear message.
pub fn parse(msg: &str) -> Option<Event<'_>> {
    let msg = strip_stderr_prefix(msg);
    if let Some(rest) = msg.strip_prefix("Child connection from ") {
        return parse_ip_port(rest.trim()).map(|ip| Event::Connected { ip });
    }
    // Releases before 0.50 wrote "bad password attempt" and "login attempt" in lower case.
    if let Some(rest) = msg
        .strip_prefix("Bad password attempt for ")
        .or_else(|| msg.strip_prefix("Bad PAM password attempt for "))
        .or_else(|| msg.strip_prefix("bad password attempt for "))
    {
        let (user, from) = rsplit_once_str(rest, " from ")?;
        return Some(Event::AuthFailed {
            user: Some(Cow::Borrowed(quoted(user))),
            ip: parse_ip_port(from.trim()),
            invalid_user: false,
            count: 1,
            tentative: false,
        });
    }
    if let Some(rest) = msg
        .strip_prefix("Login attempt for nonexistent user")
        .or_else(|| msg.strip_prefix("login attempt for nonexistent user"))
    {
        // Old: "... user 'admin' from 1.2.3.4:5"; new: "... user from 1.2.3.4:5" (name withheld).
        let (user, from) = rsplit_once_str(rest, " from ")?;
        let user = quoted(user.trim());
        return Some(Event::AuthFailed {
            user: (!user.is_empty()).then_some(Cow::Borrowed(user)),
            ip: parse_ip_port(from.trim()),
            invalid_user: true,
            count: 1,
            tentative: false,
        });
    }
    if let Some(rest) =
        msg.strip_prefix("Password auth succeeded for ").or_else(|| msg.strip_prefix("Pubkey auth succeeded for "))
    {
        let method = if msg.starts_with("Password") { AuthMethod::Password } else { AuthMethod::Publickey };
        let (user, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let (_, from) = rsplit_once_str(rest, "from ")?;
        return Some(Event::Accepted { user: Cow::Borrowed(quoted(user)), ip: parse_ip_port(from.trim()), method });
    }
    if let Some(rest) = msg.strip_prefix("Exit before auth") {
        // "Exit before auth from <1.2.3.4:5>: ..." / "Exit before auth (user 'root', 3 fails): ..."
        return Some(Event::Disconnected { ip: angle_ip(rest), preauth: true });
    }
    if let Some(rest) = msg.strip_prefix("Exit (") {
        // Each connection is its own process, which logged the login under the same pid:
        // the close is matched by pid alone. With the user name the analyzer would fall back
        // to "the oldest open session of that user" when the login is not in the input
        // (rotated away), and end an unrelated session of root months earlier.
        rest.split_once(')')?;
        return Some(Event::SessionClosed { user: None, duration_secs: None });
    }
    if msg.starts_with("Max auth tries reached")
        || msg.starts_with("Early exit")
        || msg.starts_with("Running in background")
        || msg.starts_with("Not backgrounding")
        || msg.starts_with("Failed listening")
        || msg.starts_with("Generated hostkey")
        || msg.starts_with("Premature exit")
        || msg.starts_with("Pubkey auth attempt")
        || msg.starts_with("Failed loading")
        || msg.starts_with("Couldn't ")
    {
        return Some(Event::Noise);
    }
    None
}

/// Dropbear run with `-E` (logging to stderr) under a supervisor that forwards
/// stderr to syslog or the journal prefixes its own `[pid] Mon DD HH:MM:SS `.
fn strip_stderr_prefix(msg: &str) -> &str {
    let Some(rest) = msg.strip_prefix('[') else { return msg };
    let Some((pid, rest)) = rest.split_once("] ") else { return msg };
    if pid.is_empty() || !pid.bytes().all(|c| c.is_ascii_digit()) {
        return msg;
    }
    // "Jul 10 23:53:52 " is 16 bytes: month, day, clock.
    match rest.as_bytes() {
        [_, _, _, b' ', _, _, b' ', _, _, b':', _, _, b':', _, _, b' ', ..] => &rest[16..],
        _ => msg,
    }
}

fn quoted(s: &str) -> &str {
    s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')).unwrap_or(s)
}

fn angle_ip(s: &str) -> Option<std::net::IpAddr> {
    let (_, rest) = split_once_str(s, "<")?;
    let (addr, _) = rest.split_once('>')?;
    parse_ip_port(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn every_dropbear_message_kind() {
        assert_eq!(
            parse("Child connection from 192.168.1.5:51234"),
            Some(Event::Connected { ip: "192.168.1.5".parse().unwrap() })
        );
        assert_eq!(
            parse("Bad password attempt for 'root' from 2001:db8::5:40222"),
            Some(Event::AuthFailed {
                user: Some("root".into()),
                ip: ip("2001:db8::5"),
                invalid_user: false,
                count: 1,
                tentative: false
            })
        );
        assert!(matches!(parse("Bad PAM password attempt for 'pi' from 10.0.0.2:1"), Some(Event::AuthFailed { .. })));
        assert_eq!(
            parse("Login attempt for nonexistent user 'admin' from 203.0.113.5:2222"),
            Some(Event::AuthFailed {
                user: Some("admin".into()),
                ip: ip("203.0.113.5"),
                invalid_user: true,
                count: 1,
                tentative: false
            })
        );
        assert_eq!(
            parse("Login attempt for nonexistent user from 203.0.113.5:2222"),
            Some(Event::AuthFailed {
                user: None,
                ip: ip("203.0.113.5"),
                invalid_user: true,
                count: 1,
                tentative: false
            })
        );
        assert_eq!(
            parse("Password auth succeeded for 'root' from 192.168.1.5:51234"),
            Some(Event::Accepted { user: "root".into(), ip: ip("192.168.1.5"), method: AuthMethod::Password })
        );
        assert_eq!(
            parse("Pubkey auth succeeded for 'root' with ssh-ed25519 key SHA256:abc from 192.168.1.5:51234"),
            Some(Event::Accepted { user: "root".into(), ip: ip("192.168.1.5"), method: AuthMethod::Publickey })
        );
        assert_eq!(
            parse("Exit before auth from <203.0.113.5:2222>: Exited normally"),
            Some(Event::Disconnected { ip: ip("203.0.113.5"), preauth: true })
        );
        assert_eq!(
            parse(
                "Exit before auth (user 'root', 10 fails): Max auth tries reached - user 'root' from 203.0.113.5:2222"
            ),
            Some(Event::Disconnected { ip: None, preauth: true })
        );
        assert_eq!(
            parse("Exit (root) from <192.168.1.5:51234>: Disconnect received"),
            Some(Event::SessionClosed { user: None, duration_secs: None })
        );
        assert_eq!(parse("Early exit: Terminated by signal"), Some(Event::Noise));
        assert_eq!(parse("Unheard of"), None);
    }

    #[test]
    fn old_releases_and_stderr_forwarded_lines() {
        // Verbatim (logs/testdata/unseen/SOURCES.md).
        let root = |addr: &str| Event::AuthFailed {
            user: Some("root".into()),
            ip: ip(addr),
            invalid_user: false,
            count: 1,
            tentative: false,
        };
        assert_eq!(parse("bad password attempt for 'root' from 198.51.100.87:5543"), Some(root("198.51.100.87")));
        assert_eq!(
            parse("[825] Jul 10 23:53:52 Bad password attempt for 'root' from 1.2.3.4:52289"),
            Some(root("1.2.3.4"))
        );
        assert_eq!(
            parse("login attempt for nonexistent user from ::ffff:198.51.100.215:60495"),
            Some(Event::AuthFailed {
                user: None,
                ip: ip("198.51.100.215"),
                invalid_user: true,
                count: 1,
                tentative: false
            })
        );
        assert_eq!(
            parse("Exit before auth from <192.168.8.231:52482>: (user 'root', 3 fails): Max auth tries reached - user 'root'"),
            Some(Event::Disconnected { ip: ip("192.168.8.231"), preauth: true })
        );
        assert_eq!(
            parse("Couldn't create new file /etc/dropbear/dropbear_ed25519_host_key.tmp178: Read-only file system"),
            Some(Event::Noise)
        );
        // Not a stderr prefix: left alone.
        assert_eq!(parse("[x] Jul 10 23:53:52 Bad password attempt for 'root' from 1.2.3.4:1"), None);
    }
}
