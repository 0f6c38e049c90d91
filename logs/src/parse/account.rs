//! Account management tools (shadow-utils and PAM): `useradd`, `userdel`,
//! `usermod`, `groupadd`, `groupdel`, `groupmod`, `gpasswd`, `passwd`, `chage`,
//! `chfn`, `chsh`. Each change is an [`Event::AccountChange`]: creating an
//! account, adding one to a group or setting a password is how an intruder
//! stays, so the analyst wants it next to the session. Debian's `adduser` and
//! `deluser` wrappers narrate what they are about to do; the tools they run
//! log the changes themselves, so the wrappers' lines are known noise.
//!
//! Forms read (real lines, `logs/testdata/unseen/SOURCES.md` and the shared
//! data's elastic host): `new user: name=X, UID=...`, `new group: name=X, GID=N`,
//! `group added to /etc/group: name=X, GID=N`, `failed adding user 'X', data
//! deleted`, `change user 'X' password`, `changed password expiry for X`,
//! `user X added by root to group G`, `members of group G set by root to X`,
//! `delete user 'X'`, `changed user 'X' information`, `pam_unix(passwd:chauthtok):
//! password changed for X`. A message that names no account is not guessed at: `None`.

use super::{pam, split_once_str, Event};

/// Is `program` one of the tools this module reads?
pub fn is_account_tool(program: &str) -> bool {
    matches!(
        program,
        "useradd"
            | "userdel"
            | "usermod"
            | "groupadd"
            | "groupdel"
            | "groupmod"
            | "gpasswd"
            | "passwd"
            | "chage"
            | "chfn"
            | "chsh"
            | "adduser"
            | "deluser"
    )
}

/// Parses one message of `tool` (one of [`is_account_tool`]'s programs).
pub fn parse<'a>(tool: &'a str, msg: &'a str) -> Option<Event<'a>> {
    let msg = msg.trim_end();
    if matches!(tool, "adduser" | "deluser") {
        return Some(Event::Noise);
    }
    if pam::is_pam(msg) {
        // passwd's PAM lines: the password change is the fact, the rest
        // (pam_pwquality's complaints, ...) is bookkeeping.
        return Some(match split_once_str(msg, "password changed for ") {
            Some((_, user)) => change(tool, Some(user.trim()), None, msg),
            None => Event::Noise,
        });
    }
    // gpasswd: "user X added by root to group G", "user X removed by root from group G".
    if let Some(rest) = msg.strip_prefix("user ") {
        if let Some((user, rest)) = split_once_str(rest, " added by ").or_else(|| split_once_str(rest, " removed by "))
        {
            let by = rest.split(' ').next().filter(|b| !b.is_empty());
            return Some(change(tool, Some(user), by, msg));
        }
    }
    // gpasswd -M: "members of group users set by root to alice[,bob]": the group changed.
    if let Some(rest) = msg.strip_prefix("members of group ") {
        let (group, rest) = split_once_str(rest, " set by ")?;
        let (by, _) = rest.split_once(' ')?;
        return Some(change(tool, Some(group), Some(by), msg));
    }
    if let Some((_, rest)) = split_once_str(msg, "name=") {
        let end = rest.find([',', ' ']).unwrap_or(rest.len());
        return Some(change(tool, Some(&rest[..end]), None, msg));
    }
    if let Some((_, rest)) = msg.split_once('\'') {
        let (name, _) = rest.split_once('\'')?;
        return Some(change(tool, Some(name), None, msg));
    }
    // chage: "changed password expiry for X".
    if let Some((_, user)) = split_once_str(msg, "password expiry for ") {
        return Some(change(tool, Some(user), None, msg));
    }
    None
}

fn change<'a>(tool: &'a str, account: Option<&'a str>, by: Option<&'a str>, detail: &'a str) -> Event<'a> {
    Event::AccountChange { tool, account: account.filter(|a| !a.is_empty()), by, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account<'a>(tool: &'a str, msg: &'a str) -> Option<(Option<&'a str>, Option<&'a str>)> {
        match parse(tool, msg)? {
            Event::AccountChange { account, by, .. } => Some((account, by)),
            other => panic!("{other:?}"),
        }
    }

    // Verbatim messages (logs/testdata/unseen/SOURCES.md, ../shared/data/real).
    #[test]
    fn every_tool_names_the_account_it_changed() {
        let cases = [
            (
                "useradd",
                "new user: name=elastic_user_0, UID=1001, GID=1002, home=/home/elastic_user_0, shell=/bin/bash",
                "elastic_user_0",
            ),
            ("useradd", "new group: name=elastic_user_0, GID=1002", "elastic_user_0"),
            ("useradd", "failed adding user 'ansible', data deleted", "ansible"),
            ("groupadd", "group added to /etc/gshadow: name=elastic_users", "elastic_users"),
            ("usermod", "change user 'dnsmasq' password", "dnsmasq"),
            ("chage", "changed password expiry for dnsmasq", "dnsmasq"),
            ("passwd", "pam_unix(passwd:chauthtok): password changed for tim", "tim"),
        ];
        for (tool, msg, user) in cases {
            assert_eq!(account(tool, msg), Some((Some(user), None)), "{msg}");
        }
        assert_eq!(
            account("gpasswd", "user binayakprashad added by root to group google-sudoers"),
            Some((Some("binayakprashad"), Some("root")))
        );
        assert_eq!(
            account("gpasswd", "user binayakprashad removed by root from group google-sudoers"),
            Some((Some("binayakprashad"), Some("root")))
        );
        assert_eq!(
            account("gpasswd", "members of group users set by root to testuser-kartavya"),
            Some((Some("users"), Some("root")))
        );
        assert_eq!(account("userdel", "delete user 'testuser-lowlevel'"), Some((Some("testuser-lowlevel"), None)));
        assert_eq!(
            account("chfn", "changed user 'testuser-kartavya' information"),
            Some((Some("testuser-kartavya"), None))
        );
    }

    #[test]
    fn bookkeeping_and_unknown_messages() {
        assert_eq!(parse("passwd", "pam_pwquality(passwd:chauthtok): password not acceptable"), Some(Event::Noise));
        assert_eq!(parse("useradd", "something else entirely"), None);
        assert_eq!(parse("useradd", "unbalanced 'quote"), None);
        assert!(is_account_tool("gpasswd") && !is_account_tool("chpasswd"));
        assert_eq!(parse("adduser", "Adding user `testuser-kartavya' to group `users' ..."), Some(Event::Noise));
    }
}
