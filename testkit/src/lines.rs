//! Log lines for tests of what reads them (the detector's tests, the agent's
//! behaviour tests): one place that writes a realistic sshd + sudo login, so
//! the pinned detection behaviours are fed the same lines everywhere.

/// sshd and sudo syslog lines of one login of `user` from `ip` on
/// 2026-11-`day` at `hh:mm`: `typos` failed passwords, the login, the sudo
/// `commands` a minute in, and the close 20 minutes later.
pub fn sshd_session(
    day: u32,
    (hh, mm): (u32, u32),
    pid: u32,
    user: &str,
    ip: &str,
    typos: u32,
    commands: &[&str],
) -> Vec<String> {
    let at = |m: u32| format!("Nov {day:2} {:02}:{:02}:{:02}", hh + (mm + m) / 60, (mm + m) % 60, 5);
    let mut v = Vec::new();
    for _ in 0..typos {
        v.push(format!("{} host sshd[{pid}]: Failed password for {user} from {ip} port 50000 ssh2", at(0)));
    }
    v.push(format!("{} host sshd[{pid}]: Accepted password for {user} from {ip} port 50000 ssh2", at(0)));
    v.push(format!("{} host sshd[{pid}]: pam_unix(sshd:session): session opened for user {user} by (uid=0)", at(0)));
    for c in commands {
        v.push(format!("{} host sudo:   {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND={c}", at(1)));
    }
    v.push(format!("{} host sshd[{pid}]: pam_unix(sshd:session): session closed for user {user}", at(20)));
    v
}

/// Two weeks of alice logging in from her home network (a new address of
/// 198.51.100.0/24 each day) in office hours, running the same two commands.
pub fn alice_history() -> Vec<String> {
    let mut lines = Vec::new();
    for day in 1..=14 {
        let ip = format!("198.51.100.{}", 20 + day);
        let commands = ["/usr/bin/apt update", "/bin/systemctl restart nginx"];
        lines.extend(sshd_session(day, (9 + day % 7, 0), 1000 + day, "alice", &ip, 0, &commands));
    }
    lines
}
