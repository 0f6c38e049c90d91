//! Privilege escalation in a session's commands: sudo and su refusals (the
//! analyzer records them as `sudo(denied: WHY) COMMAND`, WHY being sudo's own
//! words, and `su(denied) TARGET`), root shells (`su -`, `sudo -i`,
//! `sudo bash`), account changes (`useradd`, `usermod -aG sudo`, `passwd
//! root`, and the account tools' own lines) and risky commands attempted
//! through a refused sudo.
//!
//! This is evidence that needs no history: a refused `sudo passwd root` is
//! worth an analyst's look on the first day as on any other. What needs
//! history (a root shell by an account that never opened one) is judged
//! against the user's baseline in [`crate::baseline`].

use bfp_common::fingerprint::is_risky_command;

/// Prefix the analyzer gives a command sudo refused (`sudo(denied) CMD`, or
/// with sudo's reason `sudo(denied: user NOT in sudoers) CMD`).
pub const REFUSED_PREFIX: &str = "sudo(denied";
/// Prefix the analyzer gives a user switch su refused (`su(denied) root`).
pub const SU_REFUSED_PREFIX: &str = "su(denied) ";

/// Whether a session's command line is a refusal rather than a command that ran.
pub fn is_refused(line: &str) -> bool {
    line.starts_with(REFUSED_PREFIX) || line.starts_with(SU_REFUSED_PREFIX)
}

/// A refusal's parts: the tool (`sudo`, `su`), why (sudo's words, when
/// recorded) and the command attempted (`su TARGET` for su).
fn refusal(line: &str) -> Option<(&'static str, Option<&str>, String)> {
    if let Some(target) = line.strip_prefix(SU_REFUSED_PREFIX) {
        return Some(("su", Some("authentication failure"), format!("su {}", target.trim())));
    }
    let rest = line.strip_prefix(REFUSED_PREFIX)?;
    if let Some(command) = rest.strip_prefix(") ") {
        return Some(("sudo", None, command.to_string()));
    }
    let (why, command) = rest.strip_prefix(": ")?.split_once(") ")?;
    Some(("sudo", Some(why), command.to_string()))
}

/// Refused commands quoted in a reason, at most.
const QUOTED: usize = 2;

/// What a session's commands show of privilege escalation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Escalation {
    /// Commands sudo or su refused.
    pub refused: u32,
    /// Of them, refused by sudo.
    pub refused_by_sudo: u32,
    /// Of them, user switches su refused.
    pub refused_by_su: u32,
    /// Refused commands that would have given root, changed accounts or
    /// were risky (a download, `chmod +x` in /tmp, ...).
    pub refused_dangerous: u32,
    /// The first refused commands, as attempted (for the reasons).
    pub refused_sample: Vec<String>,
    /// Which tools refused (`sudo`, `su`, in order of first refusal).
    pub refused_by: Vec<&'static str>,
    /// Why the first refusal that says was refused, in the tool's words
    /// (`user NOT in sudoers`, `command not allowed`, `3 incorrect password
    /// attempts`, `authentication failure`).
    pub refused_why: Option<String>,
    /// A root shell ran (`sudo -i`, `sudo su -`, `sudo bash`).
    pub root_shell: bool,
    /// An account was created or changed, or given a privileged group, or
    /// root's password changed (through sudo or the account tools' lines).
    pub account_change: bool,
    /// How many such account-changing lines ran.
    pub account_changes: u32,
}

impl Escalation {
    /// The escalation in `commands` (a session's, in log order).
    pub fn of(commands: &[String]) -> Escalation {
        let mut e = Escalation::default();
        for line in commands {
            if let Some((tool, why, command)) = refusal(line) {
                e.refused += 1;
                match tool {
                    "su" => e.refused_by_su += 1,
                    _ => e.refused_by_sudo += 1,
                }
                if is_dangerous(&command) {
                    e.refused_dangerous += 1;
                }
                if e.refused_sample.len() < QUOTED {
                    e.refused_sample.push(short_command(&command));
                }
                if !e.refused_by.contains(&tool) {
                    e.refused_by.push(tool);
                }
                if e.refused_why.is_none() {
                    e.refused_why = why.map(str::to_string);
                }
                continue;
            }
            e.root_shell |= is_root_shell(line);
            if is_account_change(line) {
                e.account_change = true;
                e.account_changes += 1;
            }
        }
        e
    }

    /// Whether the session is Suspicious on this alone, history or not: a
    /// dangerous command attempted through a refused sudo, or sudo refused
    /// again and again (a user probing what they may run). One refused
    /// harmless command is a user who forgot they are not an admin.
    pub fn is_evidence(&self) -> bool {
        self.refused_dangerous > 0 || self.refused >= 3
    }

    /// Nothing refused, no root shell, no account change.
    pub fn is_clean(&self) -> bool {
        self.refused == 0 && !self.root_shell && !self.account_change
    }

    /// The escalation in an operator's words (empty when there is none),
    /// e.g. "sudo refused 2 times (user NOT in sudoers), tried `passwd root`, `su -`".
    pub fn reasons(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.refused > 0 {
            let times = if self.refused == 1 { String::new() } else { format!(" {} times", self.refused) };
            let why = self.refused_why.as_ref().map_or(String::new(), |w| format!(" ({w})"));
            let tried: Vec<String> = self.refused_sample.iter().map(|c| format!("`{c}`")).collect();
            out.push(format!("{} refused{times}{why}, tried {}", self.refused_by.join("/"), tried.join(", ")));
        }
        if self.root_shell {
            out.push("opened a root shell".to_string());
        }
        if self.account_change {
            out.push("changed accounts or passwords".to_string());
        }
        out
    }
}

/// A command that would give root, change accounts, or is risky by itself.
pub fn is_dangerous(command: &str) -> bool {
    is_root_shell(command) || is_account_change(command) || is_risky_command(command)
}

/// A root shell: `su` (any form), `sudo -i`/`-s`, a shell run through sudo.
/// Commands run through sudo are logged without the `sudo` (its `COMMAND=`).
pub fn is_root_shell(command: &str) -> bool {
    let mut words = command.split_whitespace();
    let Some(first) = words.next() else { return false };
    let program = first.rsplit('/').next().unwrap_or(first);
    match program {
        "su" | "bash" | "sh" | "dash" | "zsh" | "ash" | "ksh" => {
            // `sh -c 'cmd'` runs one command, not a shell to stay in.
            !words.any(|w| w == "-c")
        }
        "sudo" => words.any(|w| matches!(w, "-i" | "-s" | "su" | "bash" | "sh" | "-su")),
        _ => false,
    }
}

/// An account change: the account tools run (or attempted), or their own
/// log lines (`useradd: new user: ...`, as the analyzer records them).
pub fn is_account_change(command: &str) -> bool {
    let mut words = command.split_whitespace();
    let Some(first) = words.next() else { return false };
    let program = first.trim_end_matches(':');
    let program = program.rsplit('/').next().unwrap_or(program);
    match program {
        "useradd" | "adduser" | "usermod" | "groupadd" | "gpasswd" | "visudo" | "chpasswd" | "userdel" => true,
        // `passwd` alone changes one's own password; naming root (or
        // another account) is the escalation.
        "passwd" => words.any(|w| !w.starts_with('-') && !w.is_empty()),
        _ => false,
    }
}

/// A command shortened for a reason: its program without the path, and its
/// arguments up to 60 characters.
fn short_command(command: &str) -> String {
    let command = command.trim();
    let (program, rest) = command.split_once(char::is_whitespace).unwrap_or((command, ""));
    let program = program.rsplit('/').next().unwrap_or(program);
    let mut out = if rest.is_empty() { program.to_string() } else { format!("{program} {}", rest.trim()) };
    if out.chars().count() > 60 {
        out = out.chars().take(57).collect::<String>() + "...";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_refused_passwd_root_is_evidence_with_its_reason() {
        let e = Escalation::of(&cmds(&["sudo(denied) /usr/bin/passwd root"]));
        assert_eq!((e.refused, e.refused_dangerous), (1, 1));
        assert!(e.is_evidence());
        assert_eq!(e.reasons(), vec!["sudo refused, tried `passwd root`"]);
        // With sudo's reason, as the analyzer records it.
        let e = Escalation::of(&cmds(&["sudo(denied: user NOT in sudoers) /usr/bin/passwd root"]));
        assert_eq!(e.reasons(), vec!["sudo refused (user NOT in sudoers), tried `passwd root`"]);
        let e = Escalation::of(&cmds(&["sudo(denied: 3 incorrect password attempts) /usr/sbin/useradd -m helpdesk"]));
        assert!(e.is_evidence());
        assert_eq!(e.reasons(), vec!["sudo refused (3 incorrect password attempts), tried `useradd -m helpdesk`"]);
    }

    #[test]
    fn a_refused_su_is_a_refused_root_shell() {
        let e = Escalation::of(&cmds(&["su(denied) root", "sudo(denied: user NOT in sudoers) /usr/bin/su -"]));
        assert_eq!((e.refused, e.refused_dangerous), (2, 2));
        assert_eq!((e.refused_by_sudo, e.refused_by_su), (1, 1));
        assert!(e.is_evidence());
        assert_eq!(e.reasons(), vec!["su/sudo refused 2 times (authentication failure), tried `su root`, `su -`"]);
        assert!(is_refused("su(denied) root") && is_refused("sudo(denied) /bin/ls") && !is_refused("su root"));
    }

    #[test]
    fn risky_commands_and_root_shells_through_a_refused_sudo_are_evidence() {
        for refused in [
            "/bin/bash",
            "/usr/bin/su -",
            "/usr/sbin/useradd -m x",
            "/usr/bin/wget http://h/x -O /tmp/.x",
            "/bin/chmod +x /tmp/.x",
        ] {
            let e = Escalation::of(&cmds(&[&format!("{REFUSED_PREFIX}) {refused}")]));
            assert!(e.is_evidence(), "{refused}");
        }
    }

    #[test]
    fn one_refused_harmless_command_is_not_evidence_three_are() {
        let one = Escalation::of(&cmds(&["sudo(denied) /usr/bin/apt update"]));
        assert!(!one.is_evidence());
        assert_eq!(one.reasons(), vec!["sudo refused, tried `apt update`"]);
        let three = Escalation::of(&cmds(&[
            "sudo(denied) /usr/bin/apt update",
            "sudo(denied) /usr/bin/systemctl restart nginx",
            "sudo(denied) /usr/bin/cat /etc/shadow",
        ]));
        assert!(three.is_evidence());
        assert_eq!(three.reasons(), vec!["sudo refused 3 times, tried `apt update`, `systemctl restart nginx`"]);
    }

    #[test]
    fn root_shells_and_account_changes_that_ran_are_recognised() {
        assert!(is_root_shell("/bin/bash"));
        assert!(is_root_shell("/usr/bin/su -"));
        assert!(is_root_shell("sudo -i"));
        assert!(!is_root_shell("/bin/sh -c echo a"));
        assert!(!is_root_shell("/usr/bin/systemctl restart sshd"));
        assert!(is_account_change("/usr/sbin/usermod -aG sudo mallory"));
        assert!(is_account_change("useradd: new user: name=backup2, UID=1001"));
        assert!(is_account_change("/usr/bin/passwd root"));
        assert!(!is_account_change("/usr/bin/passwd"));
        let e = Escalation::of(&cmds(&["/bin/bash", "/usr/sbin/useradd -m x", "/usr/bin/ls"]));
        assert!(e.root_shell && e.account_change && e.refused == 0 && !e.is_evidence());
        let e =
            Escalation::of(&cmds(&["/usr/sbin/useradd -m x", "useradd: new user: name=x, UID=1001", "/usr/bin/ls"]));
        assert_eq!(e.account_changes, 2);
    }
}
