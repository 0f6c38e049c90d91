//! Dropbear SSH (OpenWrt, BusyBox systems) messages, 2012–2024 releases.
//!
//! Addresses come as `ip:port`, with IPv6 written `2001:db8::1:22` and,
//! in exits, inside `<...>`. Each connection is its own process, so the pid
//! keys the session as with sshd.

use std::borrow::Cow;

use super::{parse_ip_port, rsplit_once_str, split_once_str, AuthMethod, Event};

/// Parses one dropbear message.
pub fn parse(msg: &str) -> Option<Event<'_>> {
    if let Some(rest) = msg.strip_prefix("Child connection from ") {
        return parse_ip_port(rest.trim()).map(|ip| Event::Connected { ip });
    }
    if let Some(rest) =
        msg.strip_prefix("Bad password attempt for ").or_else(|| msg.strip_prefix("Bad PAM password attempt for "))
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
    if let Some(rest) = msg.strip_prefix("Login attempt for nonexistent user") {
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
        let (user, _) = rest.split_once(')')?;
        return Some(Event::SessionClosed { user: Some(Cow::Borrowed(user)), duration_secs: None });
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
    {
        return Some(Event::Noise);
    }
    None
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
            Some(Event::SessionClosed { user: Some("root".into()), duration_secs: None })
        );
        assert_eq!(parse("Early exit: Terminated by signal"), Some(Event::Noise));
        assert_eq!(parse("Unheard of"), None);
    }
}
