//! Web logins: OpenWrt's LuCI, which `uhttpd` writes to syslog
//! (`uhttpd[11561]: [info] luci: failed login on / for root from 192.168.9.204`,
//! `luci: accepted login on /admin for root from 2001:db8::2`). A web login
//! has protocol HTTPS; the web UI logs no logout.

use std::borrow::Cow;

use super::{parse_ip, rsplit_once_str, split_once_str, AuthMethod, Event};

/// Parses one uhttpd/LuCI message; `None` for one it does not know.
pub fn parse(msg: &str) -> Option<Event<'_>> {
    let msg = msg.strip_prefix("[info] ").or_else(|| msg.strip_prefix("[error] ")).unwrap_or(msg);
    let Some(rest) = msg.strip_prefix("luci: ") else {
        // uhttpd's own start-up and CGI chatter.
        return (msg.starts_with("Listening") || msg.starts_with("[") || msg.starts_with("uhttpd"))
            .then_some(Event::Noise);
    };
    let (outcome, rest) = split_once_str(rest, " login on ")?;
    let (_, rest) = split_once_str(rest, " for ")?;
    let (user, addr) = rsplit_once_str(rest, " from ")?;
    let ip = parse_ip(addr.trim());
    let user = Cow::Borrowed(user);
    match outcome {
        "accepted" => Some(Event::Accepted { user, ip, method: AuthMethod::Password }),
        "failed" => Some(Event::AuthFailed { user: Some(user), ip, invalid_user: false, count: 1, tentative: false }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luci_logins() {
        assert_eq!(
            parse("[info] luci: failed login on / for root from 192.168.9.204"),
            Some(Event::AuthFailed {
                user: Some("root".into()),
                ip: "192.168.9.204".parse().ok(),
                invalid_user: false,
                count: 1,
                tentative: false
            })
        );
        assert_eq!(
            parse("luci: accepted login on /admin/status for admin from 2001:db8::2"),
            Some(Event::Accepted {
                user: "admin".into(),
                ip: "2001:db8::2".parse().ok(),
                method: AuthMethod::Password
            })
        );
        assert_eq!(parse("luci: weird login on / for x from y"), None);
        assert_eq!(parse("something else"), None);
    }
}
