//! PAM module messages, written by whichever program called PAM:
//! `pam_unix(sshd:auth): authentication failure; ... rhost=1.2.3.4  user=root`,
//! `pam_unix(sudo:session): session opened for user root by ubuntu(uid=0)`,
//! and the old Red Hat form where the module is in the tag
//! (`sshd(pam_unix)[19939]: session opened for user test by (uid=509)`).

use std::borrow::Cow;

use super::{parse_ip, split_once_str, word, Event};

/// Parses `pam_MODULE(SERVICE:TYPE): BODY`, and the older forms without the
/// service, `pam_MODULE: BODY` and PAM 0.7x's `(pam_MODULE) BODY`; `None` when
/// `msg` is not a PAM line.
pub fn parse(msg: &str) -> Option<Event<'_>> {
    if let Some(rest) = msg.strip_prefix("(pam_") {
        let (module, body) = rest.split_once(") ")?;
        return is_module_name(module).then(|| parse_body(body));
    }
    let rest = msg.strip_prefix("pam_")?;
    let i = rest.find(['(', ':'])?;
    let body = if rest.as_bytes()[i] == b'(' {
        split_once_str(&rest[i + 1..], "): ")?.1
    } else {
        rest[i + 1..].strip_prefix(' ')?
    };
    is_module_name(&rest[..i]).then(|| parse_body(body))
}

fn is_module_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// Is `msg` in one of the forms [`parse`] reads?
pub fn is_pam(msg: &str) -> bool {
    msg.starts_with("pam_") || msg.starts_with("(pam_")
}

/// The service of a `pam_MODULE(SERVICE:TYPE)` line (`sshd`, `su-l`, `proftpd`, ...).
pub fn service(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("pam_")?;
    let (_, rest) = rest.split_once('(')?;
    let (service, _) = rest.split_once([':', ')'])?;
    Some(service)
}

/// Parses the body of a PAM message. Bodies that carry no authentication or
/// session fact (`check pass; user unknown`, pam_env, pam_systemd, ...) are
/// known noise: a PAM line is never "unknown".
pub fn parse_body(body: &str) -> Event<'_> {
    if let Some(rest) = body.strip_prefix("authentication failure;") {
        let user = field(rest, "user=").filter(|u| !u.is_empty());
        let ip = field(rest, "rhost=").and_then(parse_ip);
        return Event::AuthFailed { user: user.map(Cow::Borrowed), ip, invalid_user: false, count: 1, tentative: true };
    }
    if let Some(rest) = body.strip_prefix("session opened for user ") {
        let (user, rest) = word(rest);
        // OpenSSH 9 era pam_unix: "user pi(uid=1000) by (uid=0)".
        let user = user.split_once('(').map_or(user, |(u, _)| u);
        let by = rest.strip_prefix("by ").map(|b| b.split_once('(').map_or(b, |(name, _)| name).trim());
        return Event::SessionOpened { user: Cow::Borrowed(user), by: by.filter(|b| !b.is_empty()) };
    }
    if let Some(rest) = body.strip_prefix("session closed for user ") {
        let (user, _) = word(rest.trim_end());
        return Event::SessionClosed { user: Some(Cow::Borrowed(user)), duration_secs: None };
    }
    // Bodies of other lines ("check pass; user unknown", ...) are frequent: look at the first
    // byte before trying the rarer forms.
    match body.as_bytes().first() {
        Some(b'0'..=b'9') => return more_failures(body).unwrap_or(Event::Noise),
        Some(b'C') => {}
        _ => return Event::Noise,
    }
    // pam_faillock: "Consecutive login failures for user root account temporarily locked".
    if let Some(rest) = body.strip_prefix("Consecutive login failures for user ") {
        if let Some((user, _)) = split_once_str(rest, " account temporarily locked") {
            return Event::AccountLocked { user: Cow::Borrowed(user) };
        }
    }
    Event::Noise
}

/// `N more authentication failures; logname= ... rhost=H  user=U`: the
/// failures of a connection after its first, which pam_unix logs only here
/// (sshd writes it as `PAM N more ...`, PAM 0.7x tags as `sshd(pam_unix)[pid]: N more ...`).
pub fn more_failures(body: &str) -> Option<Event<'_>> {
    let (n, rest) = word(body);
    let rest = rest.strip_prefix("more authentication failures;")?;
    let count: u32 = n.parse().ok()?;
    let user = field(rest, "user=").filter(|u| !u.is_empty());
    let ip = field(rest, "rhost=").and_then(parse_ip);
    Some(Event::PamMoreFailures { user: user.map(Cow::Borrowed), ip, count })
}

/// The value of `key` in PAM's `k=v k=v` list (empty values allowed);
/// `key` must start the list or follow a space or `;`, so `user=` is not
/// found inside `ruser=`.
fn field<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&b[from..], key.as_bytes()) {
        let at = from + i;
        if at == 0 || matches!(b[at - 1], b' ' | b';') {
            let rest = &s[at + key.len()..];
            let end = memchr::memchr2(b' ', b';', rest.as_bytes()).unwrap_or(rest.len());
            return Some(&rest[..end]);
        }
        from = at + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_carry_rhost_and_user_not_ruser() {
        let e = parse("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=218.60.136.106  user=root").unwrap();
        assert_eq!(
            e,
            Event::AuthFailed {
                user: Some("root".into()),
                ip: "218.60.136.106".parse().ok(),
                invalid_user: false,
                count: 1,
                tentative: true
            }
        );
        let e = parse_body(
            "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=n219076184117.netvigator.com",
        );
        assert!(matches!(e, Event::AuthFailed { user: None, ip: None, .. }), "{e:?}");
        let e = parse_body(
            "authentication failure; logname=ubuntu uid=1000 euid=0 tty=/dev/pts/0 ruser=ubuntu rhost=  user=root",
        );
        assert!(matches!(e, Event::AuthFailed { user: Some(ref u), ip: None, .. } if u == "root"), "{e:?}");
    }

    #[test]
    fn sessions_old_and_new_forms() {
        assert_eq!(
            parse("pam_unix(sudo:session): session opened for user root by ubuntu(uid=0)").unwrap(),
            Event::SessionOpened { user: "root".into(), by: Some("ubuntu") }
        );
        assert_eq!(
            parse("pam_unix(sshd:session): session opened for user pi(uid=1000) by (uid=0)").unwrap(),
            Event::SessionOpened { user: "pi".into(), by: None }
        );
        assert_eq!(
            parse_body("session opened for user root by LOGIN(uid=0)"),
            Event::SessionOpened { user: "root".into(), by: Some("LOGIN") }
        );
        assert_eq!(
            parse_body("session closed for user test "),
            Event::SessionClosed { user: Some("test".into()), duration_secs: None }
        );
        assert_eq!(service("pam_unix(su-l:session): session opened"), Some("su-l"));
        assert_eq!(parse("pam_env(proftpd:setcred): Unable to open config file").unwrap(), Event::Noise);
        assert_eq!(parse("not pam"), None);
    }

    #[test]
    fn more_failures_and_locked_accounts() {
        // Verbatim: Wazuh's ruleset tests (PAM 0.7x tag) and a PAM guide (pam_faillock).
        assert_eq!(
            parse_body(
                "2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.3.1  user=root"
            ),
            Event::PamMoreFailures { user: Some("root".into()), ip: "10.0.3.1".parse().ok(), count: 2 }
        );
        assert_eq!(
            parse("pam_faillock(sshd:auth): Consecutive login failures for user root account temporarily locked"),
            Some(Event::AccountLocked { user: "root".into() })
        );
        assert_eq!(more_failures("many more authentication failures;"), None);
        assert_eq!(parse_body("Consecutive login failures for user \"jdoe\" (3)"), Event::Noise);
    }

    #[test]
    fn old_pam_forms_without_service() {
        // Verbatim (logs/testdata/unseen/SOURCES.md): PAM 0.7x, and pam_unix without the service.
        let e = parse(
            "(pam_unix) authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=66.232.129.62  user=mark",
        )
        .unwrap();
        assert!(
            matches!(e, Event::AuthFailed { user: Some(ref u), ip: Some(_), tentative: true, .. } if u == "mark"),
            "{e:?}"
        );
        let e =
            parse("pam_unix: authentication failure; logname= uid=0 euid=0 tty=ftp ruser=an8767 rhost=www3.google.com")
                .unwrap();
        assert!(matches!(e, Event::AuthFailed { user: None, ip: None, .. }), "{e:?}");
        assert_eq!(
            parse("pam_sss(sshd:auth): authentication success; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.122.150.31 user=p515324"),
            Some(Event::Noise)
        );
        assert!(is_pam("(pam_unix) x") && is_pam("pam_unix: x") && !is_pam("(x) pam_unix"));
        assert_eq!(parse("(pam unix) authentication failure;"), None);
        assert_eq!(parse("pam_: x"), None);
    }
}
