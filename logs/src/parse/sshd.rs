//! OpenSSH `sshd` (and `sshd-session`, OpenSSH 9.8+) messages, OpenSSH 6 to 9.
//!
//! PAM lines that sshd writes (`pam_unix(sshd:auth): ...`) are handed to
//! [`super::pam`]. Returns `None` for a message this parser does not know.

use std::borrow::Cow;

use super::{pam, parse_ip, rsplit_once_str, split_once_str, word, AuthMethod, Event};

/// "shell on pts/0 for U from H port P id N" (also "command for ...",
/// "subsystem 'sftp' for ...", "forced-command (key-option) '...' on pts/1
/// for ..."): the user, address and terminal.
fn starting_session(rest: &str) -> Option<Event<'_>> {
    let (what, rest) = rsplit_once_str(rest, " for ")?;
    let (user, rest) = word(rest);
    let (ip, _) = word(rest.strip_prefix("from ")?);
    let tty = rsplit_once_str(what, " on ").map(|(_, tty)| tty).filter(|t| !t.is_empty() && !t.contains(' '));
    Some(Event::SessionStarted { user, ip: parse_ip(ip), tty: tty.and_then(super::tty_name) })
}

/// Parses one sshd message.
pub fn parse(msg: &str) -> Option<Event<'_>> {
    let b = msg.as_bytes();
    match b.first()? {
        b'F' => {
            if let Some(rest) = msg.strip_prefix("Failed ") {
                return failed(rest, 1);
            }
        }
        b'A' => {
            // Key lines at debug level; "Accepted certificate ID "x" (serial 2) signed by ... CA"
            // precedes the "Accepted publickey for" line of a certificate login.
            if msg.starts_with("Accepted key ")
                || msg.starts_with("Accepted certificate ")
                || msg.starts_with("Authentication refused")
            {
                return Some(Event::Noise); // debug-level key lines
            }
            if let Some(rest) = msg.strip_prefix("Accepted ") {
                let (method, rest) = word(rest);
                let rest = rest.strip_prefix("for ")?;
                let (user, rest) = rsplit_once_str(rest, " from ")?;
                let (ip, _) = word(rest);
                return Some(Event::Accepted {
                    user: Cow::Borrowed(user),
                    ip: parse_ip(ip),
                    method: AuthMethod::from_sshd(method),
                });
            }
            if msg.starts_with("Address ") || msg.starts_with("AuthorizedKeysCommand") {
                // "Address X maps to Y, but this does not map back"; AuthorizedKeysCommand errors.
                return Some(Event::Noise);
            }
        }
        b'I' => {
            if let Some(rest) = msg.strip_prefix("Invalid user ") {
                let (user, rest) = rsplit_once_str(rest, " from ")?;
                let (ip, _) = word(rest);
                return Some(Event::InvalidUser { user: Cow::Borrowed(user), ip: parse_ip(ip) });
            }
        }
        b'p'
            if msg.starts_with("pam_") => {
                return pam::parse(msg);
            }
        // PAM before 0.99 (Red Hat 9, Fedora Core): "(pam_unix) authentication failure; ...".
        b'(' if msg.starts_with("(pam_") => return pam::parse(msg),
        b'P'
            // "PAM 5 more authentication failures; ..." (the connection's failures
            // after the first, as PAM saw them); "PAM service(sshd) ignoring max retries".
            if (msg.starts_with("PAM ") || msg.starts_with("Postponed ")) => {
                return Some(msg.strip_prefix("PAM ").and_then(pam::more_failures).unwrap_or(Event::Noise));
            }
        b'C' => {
            if let Some(rest) =
                msg.strip_prefix("Connection closed by ").or_else(|| msg.strip_prefix("Connection reset by "))
            {
                return Some(closed_by(rest));
            }
            if let Some(rest) = msg.strip_prefix("Connection from ") {
                let (ip, _) = word(rest);
                return parse_ip(ip).map(|ip| Event::Connected { ip });
            }
            if msg.starts_with("Close session")
                || msg.starts_with("Changed root directory")
                || msg.starts_with("Certificate ")
                // A damaged or hostile packet: the connection's other lines carry its address.
                || msg.starts_with("Corrupted MAC on input")
            {
                return Some(Event::Noise);
            }
        }
        b'D' => {
            if let Some(rest) = msg.strip_prefix("Did not receive identification string from ") {
                let (ip, _) = word(rest);
                return parse_ip(ip).map(|ip| Event::Probe { ip });
            }
            if let Some(rest) = msg.strip_prefix("Disconnected from ") {
                return Some(disconnected_from(rest, msg.ends_with("[preauth]")));
            }
            if msg.starts_with("Disconnecting") {
                // "Disconnecting: Too many authentication failures [for root] [preauth]"
                return Some(Event::Noise);
            }
        }
        b'R' => {
            if let Some(rest) = msg.strip_prefix("Received disconnect from ") {
                let (ip, _) = rest.split_once([' ', ']']).map_or((rest, ""), |x| x);
                let ip = ip.strip_suffix(':').unwrap_or(ip);
                return Some(Event::Disconnected { ip: parse_ip(ip), preauth: msg.ends_with("[preauth]") });
            }
            // "Read error from remote host 192.168.1.1[ port 22]: Connection reset by peer [preauth]"
            if let Some(rest) = msg.strip_prefix("Read error from remote host ") {
                let (ip, _) = word(rest);
                let ip = ip.strip_suffix(':').unwrap_or(ip);
                return Some(Event::Disconnected { ip: parse_ip(ip), preauth: msg.ends_with("[preauth]") });
            }
            if msg.starts_with("Received signal") || msg.starts_with("Received SIGHUP") || msg.starts_with("ROOT LOGIN REFUSED") {
                return Some(Event::Noise);
            }
        }
        b'm' | b'M' => {
            // Without "error: " (some builds and relays), capitalised by others.
            if let Some(rest) = msg
                .strip_prefix("maximum authentication attempts exceeded for ")
                .or_else(|| msg.strip_prefix("Maximum authentication attempts exceeded for "))
            {
                return too_many_failures(rest);
            }
            // "message repeated 5 times: [ Failed password for root from ...]"
            if let Some(rest) = msg.strip_prefix("message repeated ") {
                let (n, rest) = word(rest);
                let n: u32 = n.parse().ok()?;
                let inner = rest.strip_prefix("times: [ ")?;
                let inner = inner.strip_suffix(']').unwrap_or(inner);
                if let Some(f) = inner.strip_prefix("Failed ") {
                    return failed(f, n);
                }
                return Some(Event::Noise);
            }
        }
        b'B' => {
            if let Some(rest) = msg.strip_prefix("Bad protocol version identification ") {
                let (_, rest) = rsplit_once_str(rest, " from ")?;
                let (ip, _) = word(rest);
                return parse_ip(ip).map(|ip| Event::Probe { ip });
            }
            if msg.starts_with("Bad packet length ") {
                return Some(Event::Noise); // as "Corrupted MAC on input"
            }
        }
        b'e' => {
            // "error: maximum authentication attempts exceeded for [invalid user] X from IP port N ssh2 [preauth]"
            if let Some(rest) = msg.strip_prefix("error: maximum authentication attempts exceeded for ") {
                return too_many_failures(rest);
            }
            if let Some(rest) = msg.strip_prefix("error: Received disconnect from ") {
                let (ip, _) = rest.split_once([' ', ':']).map_or((rest, ""), |x| x);
                return Some(Event::Disconnected { ip: parse_ip(ip), preauth: msg.ends_with("[preauth]") });
            }
            // OpenSSH's PAM glue (macOS, old Linux, keyboard-interactive): "error: PAM:
            // Authentication failure for [illegal user ]X from HOST[ via ADDR]". sshd's own
            // "Failed ..." line of the same attempt pairs with it, as with pam_unix's line.
            if let Some(rest) = msg.strip_prefix("error: PAM: ") {
                return Some(pam_glue_failure(rest).unwrap_or(Event::Noise));
            }
            if msg.starts_with("error: ") {
                return Some(Event::Noise);
            }
        }
        b'f' if msg.starts_with("fatal: ") => {
            // LoginGraceTime expired: "fatal: Timeout before authentication for ADDR port N".
            if let Some(rest) = msg.strip_prefix("fatal: Timeout before authentication for ") {
                let (ip, _) = word(rest);
                return Some(Event::Disconnected { ip: parse_ip(ip), preauth: true });
            }
            return Some(Event::Noise);
        }
        b'r' if msg.starts_with("reverse mapping checking") => return Some(Event::Noise),
        b'i' if msg.starts_with("input_userauth_request") || msg.starts_with("invalid public DH") => {
            return Some(Event::Noise)
        }
        b'S' if msg.starts_with("Starting session: ") => {
            return Some(starting_session(&msg["Starting session: ".len()..]).unwrap_or(Event::Noise))
        }
        b'S' if msg.starts_with("Server listening") || msg.starts_with("ssh_dispatch_run_fatal") => {
            return Some(Event::Noise)
        }
        b'U' if msg.starts_with("User child is on pid ") => {
            let (pid, _) = word(&msg["User child is on pid ".len()..]);
            return Some(pid.parse().map_or(Event::Noise, |pid| Event::SessionChild { pid }));
        }
        b'T' if msg.starts_with("Timeout before authentication") => {
            let (_, rest) = rsplit_once_str(msg, " for ")?;
            let (ip, _) = word(rest);
            return Some(Event::Disconnected { ip: parse_ip(ip), preauth: true });
        }
        b's' if msg.starts_with("ssh_dispatch_run_fatal") || msg.starts_with("subsystem request") => {
            return Some(Event::Noise)
        }
        b'N' if msg.starts_with("NOTICE:") => return Some(Event::Noise),
        // A patched sshd's connection summaries ("SSH: Server;Ltype: Version;Remote: ...").
        b'S' if msg.starts_with("SSH: Server;") => return Some(Event::Noise),
        // OpenSSH 9.8+ sshd-session refusing a key type, and AuthorizedKeysCommand errors.
        b'u' if msg.starts_with("userauth_") => return Some(Event::Noise),
        // Scanners that never get to authentication.
        b'U' if msg.starts_with("Unable to negotiate with ") => {
            let (ip, _) = word(&msg["Unable to negotiate with ".len()..]);
            return parse_ip(ip).map(|ip| Event::Probe { ip });
        }
        b'b' if msg.starts_with("banner exchange: Connection from ") => {
            let (ip, _) = word(&msg["banner exchange: Connection from ".len()..]);
            return parse_ip(ip).map(|ip| Event::Probe { ip });
        }
        b'P' if msg.starts_with("Protocol major versions differ for ") => {
            let (ip, _) = word(&msg["Protocol major versions differ for ".len()..]);
            return parse_ip(ip.trim_end_matches(':')).map(|ip| Event::Probe { ip });
        }
        b'k' if msg.starts_with("kex_exchange_identification") || msg.starts_with("kex_protocol_error") => {
            return Some(Event::Noise)
        }
        b'd' if msg.starts_with("drop connection #") => {
            // "drop connection #3 from [203.0.113.5]:40000 on [10.0.0.1]:22 past MaxStartups"
            let (_, rest) = split_once_str(msg, " from [")?;
            let (ip, _) = rest.split_once(']')?;
            return parse_ip(ip).map(|ip| Event::Probe { ip });
        }
        b'r' if msg.starts_with("refused connect from ") => {
            // tcp_wrappers: "refused connect from host (203.0.113.5)"
            let ip = msg.rsplit_once('(').and_then(|(_, r)| r.strip_suffix(')')).and_then(parse_ip);
            return ip.map(|ip| Event::Probe { ip });
        }
        // PerSourcePenalties (OpenSSH 9.8); AllowUsers/DenyUsers refusals; debug-level lines.
        b's' if msg.starts_with("srclimit_penalise") => return Some(Event::Noise),
        b'U' if msg.starts_with("User ") => return not_allowed(&msg["User ".len()..]),
        b'd' if msg.starts_with("debug") => return Some(Event::Debug),

        _ => {}
    }
    None
}

/// Splits `USER from IP port N sshN[: auth info]` into the user and the address.
/// Both ends can hold text the client chose (a user name with " from " in it, a
/// hostbased `ruser`), so the address is the first ` from IP port N sshN` that
/// ends the line or is followed by sshd's `: ` before the auth info; lines of
/// old sshd without `port` fall back to the last ` from `.
fn user_and_address(s: &str) -> Option<(&str, Option<std::net::IpAddr>)> {
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&s.as_bytes()[from..], b" from ") {
        let at = from + i;
        let after = &s[at + 6..];
        let (ip, tail) = word(after);
        if let Some(tail) = tail.strip_prefix("port ") {
            let (port, tail) = word(tail);
            let (proto, tail) = word(tail);
            let ends = tail.is_empty() || proto.ends_with(':');
            let proto = proto.strip_suffix(':').unwrap_or(proto);
            if ends && port.bytes().all(|c| c.is_ascii_digit()) && proto.starts_with("ssh") {
                if let Some(ip) = parse_ip(ip) {
                    return Some((&s[..at], Some(ip)));
                }
            }
        }
        from = at + 1;
    }
    let (user, rest) = rsplit_once_str(s, " from ")?;
    let (ip, _) = word(rest);
    Some((user, parse_ip(ip)))
}

fn last_word(s: &str) -> &str {
    memchr::memrchr(b' ', s.as_bytes()).map_or(s, |i| &s[i + 1..])
}

/// After "Failed ": `METHOD for [invalid user ]USER from IP port N ssh2[: key]`.
fn failed(rest: &str, count: u32) -> Option<Event<'_>> {
    let (method, rest) = word(rest);
    if method.is_empty() {
        return None;
    }
    let rest = rest.strip_prefix("for ")?;
    let (user, invalid_user) = match rest.strip_prefix("invalid user ") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let (user, ip) = user_and_address(user)?;
    let user = Some(Cow::Borrowed(user));
    // A refused key (or the `none` method, or a host key for `hostbased`) is a client
    // trying what it has, not a password guess: the analyzer decides once it knows how
    // the connection ended.
    if matches!(method, "publickey" | "none" | "hostbased") {
        return Some(Event::KeyRejected { user, ip, invalid_user, count });
    }
    Some(Event::AuthFailed { user, ip, invalid_user, count, tentative: false })
}

/// `[invalid user ]X from IP port N ssh2 [preauth]` after "maximum authentication
/// attempts exceeded for ".
fn too_many_failures(rest: &str) -> Option<Event<'_>> {
    let (who, rest) = rsplit_once_str(rest, " from ")?;
    let (ip, _) = word(rest);
    let (user, invalid_user) = match who.strip_prefix("invalid user ") {
        Some(user) => (user, true),
        None => (who, false),
    };
    Some(Event::TooManyFailures {
        user: (!user.is_empty()).then_some(Cow::Borrowed(user)),
        ip: parse_ip(ip),
        invalid_user,
    })
}

/// After "User ": `X from HOST not allowed because REASON` (`not listed in AllowUsers`,
/// `listed in DenyUsers`, `none of user's groups are listed in AllowGroups`, ...) or
/// `X not allowed because account is locked`.
fn not_allowed(rest: &str) -> Option<Event<'_>> {
    let (who, _reason) = split_once_str(rest, " not allowed because ")?;
    let (user, ip) = match rsplit_once_str(who, " from ") {
        Some((user, host)) => (user, parse_ip(host)),
        None => (who, None),
    };
    Some(Event::NotAllowed { user: Cow::Borrowed(user), ip })
}

/// After "error: PAM: ": `Authentication failure for [illegal user ]X from HOST[ via ADDR]`,
/// `User not known to the underlying authentication module for illegal user X from HOST`.
fn pam_glue_failure(rest: &str) -> Option<Event<'_>> {
    let (what, who) = split_once_str(rest, " for ")?;
    // "unknown user for illegal user X from HOST" (macOS, PAM glue): sshd's "Invalid user"
    // in other words, not a failure (the attempt's own failure line follows).
    if what == "unknown user" {
        let who = who.strip_prefix("illegal user ").unwrap_or(who);
        let (user, host) = rsplit_once_str(who, " from ")?;
        let (host, _) = word(host.trim_end());
        return Some(Event::InvalidUser { user: Cow::Borrowed(user), ip: parse_ip(host) });
    }
    let what = what.to_ascii_lowercase();
    let unknown_user = what.starts_with("user not known");
    if !(unknown_user || what.starts_with("authentication failure") || what.starts_with("authentication error")) {
        return None;
    }
    let (user, host) = rsplit_once_str(who, " from ")?;
    let (user, invalid_user) = match user.strip_prefix("illegal user ").or_else(|| user.strip_prefix("invalid user ")) {
        Some(u) => (u, true),
        None => (user, unknown_user),
    };
    let (host, _) = word(host.trim_end());
    Some(Event::AuthFailed {
        user: Some(Cow::Borrowed(user)),
        ip: parse_ip(host),
        invalid_user,
        count: 1,
        tentative: true,
    })
}

/// After "Connection closed by " / "Connection reset by ":
/// `[authenticating user X |invalid user X ]IP [port N] [[preauth]]`.
fn closed_by(rest: &str) -> Event<'_> {
    let preauth = rest.ends_with("[preauth]");
    let rest = rest.strip_suffix(" [preauth]").unwrap_or(rest);
    let rest = match rest.strip_suffix(|c: char| c.is_ascii_digit()) {
        Some(_) => match rsplit_once_str(rest, " port ") {
            Some((head, _)) => head,
            None => rest,
        },
        None => rest,
    };
    // The address is the last word of what is left.
    let ip = last_word(rest);
    Event::Disconnected { ip: parse_ip(ip), preauth }
}

/// After "Disconnected from ": `[authenticating |invalid ][user X ]IP port N`.
fn disconnected_from(rest: &str, preauth: bool) -> Event<'_> {
    let head = match split_once_str(rest, " port ") {
        Some((head, _)) => head,
        None => rest.strip_suffix(" [preauth]").unwrap_or(rest),
    };
    let ip = last_word(head);
    Event::Disconnected { ip: parse_ip(ip), preauth }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    fn failed_user(e: Event<'_>) -> (Option<String>, Option<IpAddr>, bool, u32) {
        match e {
            Event::AuthFailed { user, ip, invalid_user, count, tentative: false }
            | Event::KeyRejected { user, ip, invalid_user, count } => {
                (user.map(|u| u.into_owned()), ip, invalid_user, count)
            }
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn failures_of_every_method_and_form() {
        let cases = [
            ("Failed password for root from 218.60.136.106 port 56338 ssh2", "root", "218.60.136.106", false, 1),
            (
                "Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
                "webmaster",
                "173.234.31.186",
                true,
                1,
            ),
            (
                "Failed publickey for elastic_user_2 from 85.245.107.41 port 50690 ssh2: RSA SHA256:aC2U",
                "elastic_user_2",
                "85.245.107.41",
                false,
                1,
            ),
            (
                "Failed keyboard-interactive/pam for invalid user admin from 2001:db8::7 port 2200 ssh2",
                "admin",
                "2001:db8::7",
                true,
                1,
            ),
            ("Failed none for invalid user  from 1.2.3.4 port 5 ssh2", "", "1.2.3.4", true, 1),
            (
                "message repeated 5 times: [ Failed password for root from 218.60.136.106 port 56338 ssh2]",
                "root",
                "218.60.136.106",
                false,
                5,
            ),
            ("Failed password for invalid user a from b from 9.9.9.9 port 1 ssh2", "a from b", "9.9.9.9", true, 1),
        ];
        for (line, user, addr, invalid, count) in cases {
            assert_eq!(failed_user(parse(line).unwrap()), (Some(user.to_string()), ip(addr), invalid, count), "{line}");
        }
    }

    #[test]
    fn refused_keys_are_told_apart_from_password_failures() {
        let key = parse("Failed publickey for alice from 203.0.113.9 port 50690 ssh2: RSA SHA256:aC2U").unwrap();
        assert!(matches!(key, Event::KeyRejected { count: 1, invalid_user: false, .. }), "{key:?}");
        let none = parse("Failed none for invalid user x from 203.0.113.9 port 1 ssh2").unwrap();
        assert!(matches!(none, Event::KeyRejected { invalid_user: true, .. }), "{none:?}");
        let pw = parse("Failed password for alice from 203.0.113.9 port 50690 ssh2").unwrap();
        assert!(matches!(pw, Event::AuthFailed { .. }), "{pw:?}");
        let ki = parse("Failed keyboard-interactive/pam for alice from 203.0.113.9 port 1 ssh2").unwrap();
        assert!(matches!(ki, Event::AuthFailed { .. }), "{ki:?}");
    }

    #[test]
    fn accepted_logins() {
        let e = parse("Accepted publickey for ubuntu from 85.245.107.41 port 54259 ssh2: RSA SHA256:Kl8k").unwrap();
        assert_eq!(
            e,
            Event::Accepted { user: "ubuntu".into(), ip: ip("85.245.107.41"), method: AuthMethod::Publickey }
        );
        let e = parse("Accepted keyboard-interactive/pam for pi from fe80::1%eth0 port 2 ssh2").unwrap();
        // A link-local address with its zone: the address without the zone.
        assert!(
            matches!(e, Event::Accepted { method: AuthMethod::KeyboardInteractive, ip: Some(a), .. } if a == ip("fe80::1").unwrap()),
            "{e:?}"
        );
    }

    #[test]
    fn connection_ends_and_probes() {
        let d = |s: &str, p: bool| Event::Disconnected { ip: ip(s), preauth: p };
        assert_eq!(parse("Connection closed by 1.2.3.4 port 22 [preauth]"), Some(d("1.2.3.4", true)));
        assert_eq!(parse("Connection closed by 1.2.3.4 [preauth]"), Some(d("1.2.3.4", true)));
        assert_eq!(
            parse("Connection closed by authenticating user root 1.2.3.4 port 41234 [preauth]"),
            Some(d("1.2.3.4", true))
        );
        assert_eq!(
            parse("Connection reset by invalid user x 2001:db8::2 port 1 [preauth]"),
            Some(d("2001:db8::2", true))
        );
        assert_eq!(
            parse("Received disconnect from 119.137.62.142: 11: disconnected by user"),
            Some(d("119.137.62.142", false))
        );
        assert_eq!(parse("Received disconnect from 1.2.3.4 port 5:11: Bye Bye [preauth]"), Some(d("1.2.3.4", true)));
        assert_eq!(parse("Disconnected from user pi 2001:db8::3 port 50000"), Some(d("2001:db8::3", false)));
        assert_eq!(parse("Disconnected from 1.2.3.4 port 5 [preauth]"), Some(d("1.2.3.4", true)));
        assert_eq!(
            parse(
                "error: maximum authentication attempts exceeded for invalid user x from 1.2.3.4 port 5 ssh2 [preauth]"
            ),
            Some(Event::TooManyFailures {
                user: Some("x".into()),
                ip: Some("1.2.3.4".parse().unwrap()),
                invalid_user: true
            })
        );
        // Seen without the "error: " prefix and capitalised in other tools' test logs.
        for line in [
            "maximum authentication attempts exceeded for root from 1.2.3.4 port 22 ssh2 [preauth]",
            "Maximum authentication attempts exceeded for root from 1.2.3.4 port 41240 ssh2 [preauth]",
        ] {
            assert_eq!(
                parse(line),
                Some(Event::TooManyFailures {
                    user: Some("root".into()),
                    ip: Some("1.2.3.4".parse().unwrap()),
                    invalid_user: false
                }),
                "{line}"
            );
        }
        // elastic auth.log, line 86: no failure of this connection was logged before it.
        assert_eq!(
            parse("error: maximum authentication attempts exceeded for root from 122.176.37.221 port 37107 ssh2 [preauth]"),
            Some(Event::TooManyFailures {
                user: Some("root".into()),
                ip: Some("122.176.37.221".parse().unwrap()),
                invalid_user: false
            })
        );
        assert_eq!(
            parse("Did not receive identification string from 5.6.7.8 port 9"),
            Some(Event::Probe { ip: "5.6.7.8".parse().unwrap() })
        );
        assert_eq!(
            parse("Bad protocol version identification 'GET / HTTP/1.1' from 5.6.7.8 port 9"),
            Some(Event::Probe { ip: "5.6.7.8".parse().unwrap() })
        );
    }

    #[test]
    fn invalid_users_pam_and_noise() {
        assert_eq!(
            parse("Invalid user printer from 152.89.198.106 port 30262"),
            Some(Event::InvalidUser { user: "printer".into(), ip: ip("152.89.198.106") })
        );
        assert!(matches!(
            parse("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root"),
            Some(Event::AuthFailed { tentative: true, .. })
        ));
        for noise in [
            "Disconnecting: Too many authentication failures [preauth]",
            "reverse mapping checking getaddrinfo for x [1.2.3.4] failed - POSSIBLE BREAK-IN ATTEMPT!",
            "Server listening on :: port 22.",
            "input_userauth_request: invalid user x [preauth]",
        ] {
            assert_eq!(parse(noise), Some(Event::Noise), "{noise}");
        }
        let probe = |s: &str| Some(Event::Probe { ip: s.parse().unwrap() });
        assert_eq!(
            parse("Unable to negotiate with 203.0.113.5 port 40000: no matching key exchange method found."),
            probe("203.0.113.5")
        );
        assert_eq!(parse("banner exchange: Connection from 2001:db8::5 port 1: invalid format"), probe("2001:db8::5"));
        assert_eq!(
            parse("Protocol major versions differ for 203.0.113.5 port 2: SSH-2.0-OpenSSH_9 vs. SSH-1.5-x"),
            probe("203.0.113.5")
        );
        assert_eq!(
            parse("drop connection #3 from [203.0.113.5]:40000 on [10.0.0.1]:22 past MaxStartups"),
            probe("203.0.113.5")
        );
        assert_eq!(parse("refused connect from scan.example (203.0.113.5)"), probe("203.0.113.5"));
        assert_eq!(
            parse("srclimit_penalise: ipv4: new 203.0.113.5/32 deferred penalty of 10 seconds"),
            Some(Event::Noise)
        );
        assert_eq!(
            parse("User root from 203.0.113.5 not allowed because not listed in AllowUsers"),
            Some(Event::NotAllowed { user: "root".into(), ip: ip("203.0.113.5") })
        );
        assert_eq!(parse("kex_exchange_identification: Connection closed by remote host"), Some(Event::Noise));
        assert_eq!(parse("Accepted key RSA SHA256:abc found at /home/pi/.ssh/authorized_keys:1"), Some(Event::Noise));
        assert_eq!(parse("ROOT LOGIN REFUSED FROM 203.0.113.5 port 3"), Some(Event::Noise));
        assert_eq!(parse("Something sshd never said"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("Failed "), None);
        assert_eq!(parse("Accepted password for"), None);
    }

    // The lines below are verbatim from logs nobody here wrote (logs/testdata/unseen/SOURCES.md).

    #[test]
    fn address_is_not_taken_from_text_the_client_chose() {
        // fail2ban's injection cases: a user name or a hostbased `ruser` holding " from ADDR".
        let cases = [
            ("Failed password for user from 127.0.0.1 port 20000 ssh1: ruser from 1.2.3.4", "user", false),
            ("Failed password for invalid user from 10.10.1.1 from 127.0.0.1 port 58946 ssh2", "from 10.10.1.1", true),
            (
                "Failed password for invalid user test from 10.10.1.2 port 55555 ssh2 from 127.0.0.1 port 58946 ssh2",
                "test from 10.10.1.2 port 55555 ssh2",
                true,
            ),
            (
                "Failed password for invalid user test from 127.0.0.1 port 58946 ssh2: from 10.10.1.2 port 55555 ssh2",
                "test",
                true,
            ),
        ];
        for (line, user, invalid) in cases {
            assert_eq!(failed_user(parse(line).unwrap()), (Some(user.into()), ip("127.0.0.1"), invalid, 1), "{line}");
        }
        // Old sshd wrote no port: the last " from " still finds the address.
        assert_eq!(
            failed_user(parse("Failed password for invalid user ROOT from aaaa:bbbb:cccc:1234::1:1").unwrap()),
            (Some("ROOT".into()), ip("aaaa:bbbb:cccc:1234::1:1"), true, 1)
        );
    }

    #[test]
    fn openssh_pam_glue_failures_pair_like_pam_lines() {
        let e = parse("error: PAM: Authentication failure for james from 205.186.180.99 via 192.168.1.201").unwrap();
        assert_eq!(
            e,
            Event::AuthFailed {
                user: Some("james".into()),
                ip: ip("205.186.180.99"),
                invalid_user: false,
                count: 1,
                tentative: true
            }
        );
        let e = parse("error: PAM: authentication error for james from 205.186.180.103").unwrap();
        assert!(matches!(e, Event::AuthFailed { tentative: true, ip: Some(_), .. }), "{e:?}");
        let e = parse("error: PAM: Authentication failure for stefanor from example.com").unwrap();
        assert!(matches!(e, Event::AuthFailed { ip: None, .. }), "{e:?}");
        let e = parse("error: PAM: User not known to the underlying authentication module for illegal user kernelitshell from 10.215.4.227 ").unwrap();
        assert_eq!(
            e,
            Event::AuthFailed {
                user: Some("kernelitshell".into()),
                ip: ip("10.215.4.227"),
                invalid_user: true,
                count: 1,
                tentative: true
            }
        );
        assert!(matches!(
            parse("(pam_unix) authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=71-13-115-12.static.mdsn.wi.charter.com  user=root"),
            Some(Event::AuthFailed { tentative: true, ip: None, .. })
        ));
    }

    #[test]
    fn hostbased_keys_are_key_probes_and_new_noise_is_known() {
        let e = parse("Failed hostbased for dan from 127.0.0.1 port 45785 ssh2: RSA 8c:e3:aa:0f:64:51:02:f7:14:79:89:3f:65:84:7c:30, client user \"dan\", client host \"localhost.localdomain\"").unwrap();
        assert!(matches!(e, Event::KeyRejected { ip: Some(_), .. }), "{e:?}");
        for noise in [
            "userauth_pubkey: signature algorithm ssh-rsa not in PubkeyAcceptedAlgorithms [preauth]",
            "AuthorizedKeysCommand ... failed, status 22",
            "SSH: Server;Ltype: Kex;Remote: 127.0.0.1-1780;Enc: aes128-ctr;MAC: hmac-sha1;Comp: none [preauth]",
        ] {
            assert_eq!(parse(noise), Some(Event::Noise), "{noise}");
        }
        // A method name sshd reports for RFC 5424 senders it cannot name ("unknown").
        let e = parse("Failed unknown for invalid user redmond from 192.0.2.1 port 59197 ssh2").unwrap();
        assert!(matches!(e, Event::AuthFailed { invalid_user: true, .. }), "{e:?}");
    }

    // Verbatim from Wazuh's and fail2ban's sshd rule tests (logs/testdata/unseen/SOURCES.md).
    #[test]
    fn refusals_connection_errors_and_debug_lines() {
        let refused = |u: &str, a: Option<IpAddr>| Some(Event::NotAllowed { user: u.to_owned().into(), ip: a });
        assert_eq!(
            parse("User root from 10.0.0.40 not allowed because none of user's groups are listed in AllowGroups"),
            refused("root", ip("10.0.0.40"))
        );
        assert_eq!(
            parse("User root from 172.18.1.100 not allowed because listed in DenyUsers"),
            refused("root", ip("172.18.1.100"))
        );
        assert_eq!(
            parse("User root from example.com not allowed because not listed in AllowUsers"),
            refused("root", None)
        );
        assert_eq!(parse("User root not allowed because account is locked"), refused("root", None));
        assert_eq!(parse("User root logged in somehow"), None);
        assert_eq!(
            parse("error: PAM: unknown user for illegal user badguy from 192.168.33.1"),
            Some(Event::InvalidUser { user: "badguy".into(), ip: ip("192.168.33.1") })
        );
        assert_eq!(
            parse("Read error from remote host 192.168.1.1: Connection reset by peer"),
            Some(Event::Disconnected { ip: ip("192.168.1.1"), preauth: false })
        );
        for noise in ["Corrupted MAC on input. [preauth]", "Corrupted MAC on input.", "Bad packet length 4081586742."] {
            assert_eq!(parse(noise), Some(Event::Noise), "{noise}");
        }
        assert_eq!(parse("debug1: channel 5: connection failed: Connection refused"), Some(Event::Debug));
        assert_eq!(parse("debug1: get_remote_port failed"), Some(Event::Debug));
        assert_eq!(
            parse("PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=61.178.85.205  user=root"),
            Some(Event::PamMoreFailures { user: Some("root".into()), ip: ip("61.178.85.205"), count: 5 })
        );
        assert_eq!(parse("PAM service(sshd) ignoring max retries; 6 > 3"), Some(Event::Noise));
    }

    #[test]
    fn certificate_lines_and_grace_timeouts() {
        // Message shapes from a network OS's log-parser tests (logs/testdata/unseen/SOURCES.md).
        assert_eq!(
            parse("Accepted certificate ID \"good@gnxi\" (serial 2) signed by RSA CA SHA256:4 via /dir"),
            Some(Event::Noise)
        );
        assert_eq!(parse("Certificate extension \"nope@gnxi.com\" is not supported"), Some(Event::Noise));
        assert_eq!(
            parse("fatal: Timeout before authentication for 2001:db8::4 port 1"),
            Some(Event::Disconnected { ip: ip("2001:db8::4"), preauth: true })
        );
    }

    #[test]
    fn the_session_child_and_its_terminal() {
        // The elastic host's lines (shared/data/real/elastic/auth.log, LogLevel VERBOSE).
        assert_eq!(parse("User child is on pid 29582"), Some(Event::SessionChild { pid: 29582 }));
        let ip = "85.245.107.41".parse().ok();
        assert_eq!(
            parse("Starting session: shell on pts/0 for ubuntu from 85.245.107.41 port 61663 id 0"),
            Some(Event::SessionStarted { user: "ubuntu", ip, tty: Some("pts/0") })
        );
        // `ssh host cmd`: no terminal.
        assert_eq!(
            parse("Starting session: command for elastic_user_8 from 85.245.107.41 port 50696 id 0"),
            Some(Event::SessionStarted { user: "elastic_user_8", ip, tty: None })
        );
        assert_eq!(parse("User child is on pid x"), Some(Event::Noise));
        assert_eq!(parse("Starting session: shell"), Some(Event::Noise), "cut short: known, no use");
    }
}
