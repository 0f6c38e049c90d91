//! `bfp-agent learn`: the baselines from the device's history (rotated and
//! gzip-compressed logs, RHEL's dated files, the journal's past, wtmp's
//! logins from before the logs, lastlog's last logins) equal, byte for byte,
//! those `run` saves after reading the same history (or learns on its first
//! start); it reports nothing; a source `run` already follows is not
//! re-learnt; bad wtmp/lastlog files are counted and said, never a failure;
//! the progress line and the summary say what was read.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bfp_e2e::agent::{agent, real_log, temp_dir, wait_until, write_script, RunningAgent};
use serde_json::Value;

fn checkpoint(state: &Path) -> Value {
    serde_json::from_slice(&fs::read(state.join("checkpoint.json")).unwrap()).unwrap()
}

/// The bytes of the baselines the checkpoint names for `key`.
fn baselines(state: &Path, key: &str) -> Vec<u8> {
    let cp = checkpoint(state);
    let generation = cp["baselines"][key].as_u64().unwrap_or_else(|| panic!("no baselines for {key}: {cp}"));
    let name: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    fs::read(state.join(format!("{name}.baselines.{generation}"))).unwrap()
}

fn config(dir: &Path, log: &Path, state: &Path, output: &Path) -> PathBuf {
    config_with(dir, log, state, output, "")
}

/// The same with more TOML at the end (a `[learn]` table).
fn config_with(dir: &Path, log: &Path, state: &Path, output: &Path, more: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    fs::write(
        &path,
        format!(
            "state_dir = {state:?}\noutput = {output:?}\npoll_interval_ms = 10\n[[source]]\npath = {log:?}\nname = \"auth\"\n{more}"
        ),
    )
    .unwrap();
    path
}

fn gzip(path: &Path) {
    let status = Command::new("gzip").arg("-9").arg(path).status().expect("gzip");
    assert!(status.success());
}

fn learn(config: &Path) -> Output {
    let out = agent(&["learn", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The checkpoint says source `auth` was read up to `offset`.
fn read_up_to(state: &Path, offset: u64) -> bool {
    fs::read(state.join("checkpoint.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|cp| cp["sources"]["auth"]["current"]["offset"].as_u64() == Some(offset))
}

/// `run` reads `history` as one live file, from the start, and stops:
/// the baselines it saved.
fn baselines_through_run(history: &str) -> Vec<u8> {
    let dir = temp_dir();
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    fs::write(&log, history).unwrap();
    let config = config(dir.path(), &log, &state, &dir.path().join("results.jsonl"));
    let running = RunningAgent::start(&["--config", config.to_str().unwrap()], None);
    wait_until(60, "the history read by run", || read_up_to(&state, history.len() as u64));
    running.stop();
    baselines(&state, "auth")
}

#[test]
fn learnt_from_rotated_and_compressed_logs_the_baselines_equal_runs() {
    let text = fs::read_to_string(real_log("elastic/auth.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (older, newer) = lines.split_at(lines.len() / 2);
    let (oldest, older) = older.split_at(older.len() / 2);
    let join = |part: &[&str]| part.iter().map(|l| format!("{l}\n")).collect::<String>();

    let dir = temp_dir();
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let output = dir.path().join("results.jsonl");
    // logrotate's layout with delaycompress: .3.gz oldest, .1 plain; the
    // live file is empty (just rotated).
    fs::write(dir.path().join("auth.log.3"), join(oldest)).unwrap();
    gzip(&dir.path().join("auth.log.3"));
    fs::write(dir.path().join("auth.log.2"), join(older)).unwrap();
    gzip(&dir.path().join("auth.log.2"));
    fs::write(dir.path().join("auth.log.1"), join(newer)).unwrap();
    fs::write(&log, "").unwrap();
    let config = config(dir.path(), &log, &state, &output);
    let out = learn(&config);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("auth: ") && summary.contains("3 files"), "{summary}");
    let sessions: u64 =
        summary.split(" sessions").next().and_then(|s| s.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(sessions > 100, "{summary}");
    assert!(!output.exists() || fs::read(&output).unwrap().is_empty(), "learn reports nothing");
    let learnt = baselines(&state, "auth");

    // The same history, oldest first, through run.
    let through_run = baselines_through_run(&text);
    assert_eq!(learnt.len(), through_run.len());
    assert!(learnt == through_run, "learn and run learnt different baselines");

    // Learning again changes nothing: the source's baselines are known.
    let out = learn(&config);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(baselines(&state, "auth"), learnt);
}

#[test]
fn rhel_dated_files_are_learnt_in_date_order() {
    // A CentOS /var/log/secure with sessions (the exposed RHEL host's has
    // failed logins only: nothing to learn a user from).
    let text = fs::read_to_string(real_log("plesk-centos/secure")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let dir = temp_dir();
    let log = dir.path().join("secure");
    let state = dir.path().join("state");
    // The later week is plain, the earlier compressed: the date orders them.
    fs::write(dir.path().join("secure-20240303"), first.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    gzip(&dir.path().join("secure-20240303"));
    fs::write(dir.path().join("secure-20240310"), second.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    fs::write(&log, "").unwrap();
    let config = config(dir.path(), &log, &state, &dir.path().join("out.jsonl"));
    let out = learn(&config);
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 files"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(baselines(&state, "auth"), baselines_through_run(&text));
}

#[test]
fn run_learns_on_its_first_start_and_followed_files_are_not_relearnt() {
    let text = fs::read_to_string(real_log("elastic/auth.log")).unwrap();
    let dir = temp_dir();
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let output = dir.path().join("results.jsonl");
    fs::write(dir.path().join("auth.log.1"), &text).unwrap();
    fs::write(&log, "").unwrap();
    let config = config(dir.path(), &log, &state, &output);
    let running = RunningAgent::start(&["--config", config.to_str().unwrap()], None);
    wait_until(60, "the first checkpoint", || read_up_to(&state, 0));
    running.stop();
    let learnt = baselines(&state, "auth");
    assert!(learnt == baselines_through_run(&text), "run's first start learnt the rotated file");
    assert_eq!(fs::read_to_string(&output).unwrap_or_default(), "", "history is learnt, not reported");
    // Now followed: learn leaves it alone.
    let out = learn(&config);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already followed"));
    assert_eq!(baselines(&state, "auth"), learnt);
}

#[test]
fn the_journals_past_is_learnt_up_to_the_current_boot() {
    let dir = temp_dir();
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim().replace('-', "");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let entry = |i: u64, boot: &str, pid: u32, message: &str| {
        serde_json::json!({
            "__CURSOR": format!("s=fake;i={i:x}"),
            "__REALTIME_TIMESTAMP": ((now - 86_400 * 3 + i * 60) * 1_000_000).to_string(),
            "_BOOT_ID": boot,
            "_HOSTNAME": "pi4",
            "SYSLOG_IDENTIFIER": "sshd",
            "_COMM": "sshd",
            "_PID": pid.to_string(),
            "MESSAGE": message,
        })
        .to_string()
    };
    let old_boot = "0123456789abcdef0123456789abcdef";
    let entries = [
        entry(1, old_boot, 70, "Accepted password for pi from 192.0.2.9 port 1 ssh2"),
        entry(2, old_boot, 70, "pam_unix(sshd:session): session closed for user pi"),
        entry(3, old_boot, 71, "Accepted publickey for alice from 198.51.100.4 port 2 ssh2"),
        entry(4, old_boot, 71, "pam_unix(sshd:session): session closed for user alice"),
        // This boot's entries are run's to read and report.
        entry(5, &boot, 72, "Accepted password for mallory from 203.0.113.66 port 3 ssh2"),
        entry(6, &boot, 72, "pam_unix(sshd:session): session closed for user mallory"),
    ];
    let journal = dir.path().join("journal.jsonl");
    fs::write(&journal, entries.join("\n") + "\n").unwrap();
    let fake = dir.path().join("journalctl");
    let calls = dir.path().join("calls.log");
    write_script(&fake, &format!("#!/bin/sh\necho \"$@\" >> {calls:?}\ncat {journal:?}\n"));
    let state = dir.path().join("state");
    let config = dir.path().join("agent.toml");
    fs::write(
        &config,
        format!(
            "state_dir = {state:?}\n[[source]]\nkind = \"journald\"\nname = \"journal\"\njournalctl = {fake:?}\n\
             journalctl_args = [\"_COMM=sshd\"]\n"
        ),
    )
    .unwrap();
    let out = agent(&["learn", "--config", config.to_str().unwrap(), "--journal-days", "7"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("journal: 2 users, 2 networks, 2 sessions"), "{summary}");
    assert!(summary.contains("(4 lines"), "the current boot's 2 entries are left to run: {summary}");
    let call = fs::read_to_string(&calls).unwrap();
    let since: u64 = call.split("--since=@").nth(1).and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
    assert!(since.abs_diff(now - 7 * 86_400) < 60, "{call}");
    assert!(call.trim_end().ends_with("--until=now _COMM=sshd"), "{call}");
    assert!(!baselines(&state, "journal").is_empty());
}

/// One x86_64 utmp record (glibc's `struct utmp`, 384 bytes).
fn utmp(kind: i32, pid: i32, line: &str, user: &str, host: &str, secs: i64, ip: [u8; 4]) -> Vec<u8> {
    let mut r = vec![0u8; 384];
    r[0..4].copy_from_slice(&kind.to_le_bytes());
    r[4..8].copy_from_slice(&pid.to_le_bytes());
    r[8..8 + line.len()].copy_from_slice(line.as_bytes());
    r[44..44 + user.len()].copy_from_slice(user.as_bytes());
    r[76..76 + host.len()].copy_from_slice(host.as_bytes());
    r[340..344].copy_from_slice(&(secs as i32).to_le_bytes());
    r[348..352].copy_from_slice(&ip);
    r
}

/// A login and its logout a minute later (USER_PROCESS, DEAD_PROCESS).
fn utmp_session(pid: i32, user: &str, ip: [u8; 4], at: i64) -> Vec<u8> {
    let host = format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]);
    let mut r = utmp(7, pid, "pts/3", user, &host, at, ip);
    r.extend(utmp(8, pid, "pts/3", "", "", at + 60, [0; 4]));
    r
}

/// glibc's `struct lastlog` records (292 bytes, at `uid × 292`): `(uid,
/// time, line, host)`.
fn lastlog(entries: &[(u64, i64, &str, &str)]) -> Vec<u8> {
    let size = entries.iter().map(|e| e.0 + 1).max().unwrap_or(0) * 292;
    let mut bytes = vec![0u8; size as usize];
    for &(uid, at, line, host) in entries {
        let r = &mut bytes[uid as usize * 292..][..292];
        r[0..4].copy_from_slice(&(at as u32).to_le_bytes());
        r[4..4 + line.len()].copy_from_slice(line.as_bytes());
        r[36..36 + host.len()].copy_from_slice(host.as_bytes());
    }
    bytes
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The summary's figures: users, networks, sessions.
fn figures(summary: &str) -> (u64, u64, u64) {
    let rest = summary.split("auth: ").nth(1).unwrap_or_else(|| panic!("no summary in {summary}"));
    let words: Vec<&str> = rest.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    assert_eq!((words[1], words[3], words[5]), ("users", "networks", "sessions"), "{summary}");
    (words[0].parse().unwrap(), words[2].parse().unwrap(), words[4].parse().unwrap())
}

/// A device's history: the elastic host's log rotated into `auth.log.2.gz`
/// and `auth.log.1` (live file empty), wtmp (`wtmp.1.gz` and `wtmp`) with two
/// logins from before the logs (frank, from 198.51.100.0/24) and one from
/// after (the logs' own: not learnt), a lastlog whose carol (unseen in the logs) last logged
/// in before them from 203.0.113.7, and a passwd naming them.
fn device(dir: &Path) -> (PathBuf, String) {
    let text = fs::read_to_string(real_log("elastic/auth.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (older, newer) = lines.split_at(lines.len() / 2);
    let join = |part: &[&str]| part.iter().map(|l| format!("{l}\n")).collect::<String>();
    fs::write(dir.join("auth.log.2"), join(older)).unwrap();
    gzip(&dir.join("auth.log.2"));
    fs::write(dir.join("auth.log.1"), join(newer)).unwrap();
    let log = dir.join("auth.log");
    fs::write(&log, "").unwrap();
    // The log begins on Mar 27 (of this year or the last): 2026-01-01 and
    // the day after are before it, an hour ago after it.
    let before = 1_767_225_600;
    // Last month's wtmp rotated and compressed, this month's live.
    fs::write(dir.join("wtmp.1"), utmp_session(4001, "frank", [198, 51, 100, 20], before)).unwrap();
    gzip(&dir.join("wtmp.1"));
    let mut wtmp = utmp_session(4002, "frank", [198, 51, 100, 21], before + 86_400);
    wtmp.extend(utmp_session(4003, "mallory", [203, 0, 113, 66], now() - 3600));
    fs::write(dir.join("wtmp"), wtmp).unwrap();
    fs::write(
        dir.join("lastlog"),
        lastlog(&[
            (0, 0, "", ""),                                 // root: never
            (1000, before, "pts/0", "192.0.2.99"),          // ubuntu: known from the logs
            (1001, before + 7200, "pts/1", "203.0.113.7"),  // carol: learnt
            (1002, now() - 3600, "pts/2", "198.51.100.77"), // dave: the logs' own time
        ]),
    )
    .unwrap();
    fs::write(
        dir.join("passwd"),
        "root:x:0:0:root:/root:/bin/bash\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n\
         carol:x:1001:1001::/home/carol:/bin/bash\ndave:x:1002:1002::/home/dave:/bin/bash\n\
         erin:x:1003:1003::/home/erin:/bin/bash\n",
    )
    .unwrap();
    let learn = format!(
        "[learn]\nwtmp = {:?}\nutmp_arch = \"x86_64\"\nlastlog = {:?}\npasswd = {:?}\n",
        dir.join("wtmp"),
        dir.join("lastlog"),
        dir.join("passwd")
    );
    (log, learn)
}

#[test]
fn with_wtmp_and_lastlog_learn_and_runs_first_start_learn_the_same() {
    // learn, with the [learn] table.
    let a = temp_dir();
    let (log, more) = device(a.path());
    let state = a.path().join("state");
    let with_history = config_with(a.path(), &log, &state, &a.path().join("out.jsonl"), &more);
    let out = learn(&with_history);
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        summary.contains("2 files; 4 wtmp records before the logs; 1 users' last login from lastlog)"),
        "{summary}"
    );
    let learnt = baselines(&state, "auth");

    // The same history without wtmp and lastlog: the logs alone.
    let c = temp_dir();
    let (log_c, _) = device(c.path());
    let state_c = c.path().join("state");
    let plain_config = config(c.path(), &log_c, &state_c, &c.path().join("out.jsonl"));
    let out = learn(&plain_config);
    let plain = String::from_utf8_lossy(&out.stdout).into_owned();
    let (users, networks, sessions) = figures(&plain);
    // frank (2 sessions, one new /24) from wtmp, carol (one login, a new /24) from lastlog.
    assert_eq!(figures(&summary), (users + 2, networks + 2, sessions + 2), "{plain}\n{summary}");
    assert_ne!(baselines(&state_c, "auth"), learnt, "wtmp and lastlog added to the baselines");

    // run's first start on the same device, same configuration.
    let b = temp_dir();
    let (log_b, more_b) = device(b.path());
    let state_b = b.path().join("state");
    let output_b = b.path().join("out.jsonl");
    let config_b = config_with(b.path(), &log_b, &state_b, &output_b, &more_b);
    let stderr = b.path().join("stderr.log");
    let running = RunningAgent::start_with_stderr(&["--config", config_b.to_str().unwrap()], &stderr);
    wait_until(60, "the first checkpoint", || read_up_to(&state_b, 0));
    running.stop();
    assert!(learnt == baselines(&state_b, "auth"), "learn and run's first start learnt different baselines");
    let said = fs::read_to_string(&stderr).unwrap();
    assert!(said.contains(&format!("bfp-agent: learnt {}", summary.trim_end())), "{said}\n{summary}");
    assert_eq!(fs::read_to_string(&output_b).unwrap_or_default(), "", "history is learnt, not reported");
}

#[test]
fn without_rotated_files_the_logins_in_wtmp_are_learnt() {
    let dir = temp_dir();
    let log = dir.path().join("auth.log");
    fs::write(&log, "").unwrap();
    let state = dir.path().join("state");
    let config = config(dir.path(), &log, &state, &dir.path().join("out.jsonl"));
    let wtmp = dir.path().join("wtmp");
    let mut bytes = Vec::new();
    let start = 1_700_000_000;
    for (i, user) in ["pi", "pi", "alice"].iter().enumerate() {
        bytes.extend(utmp_session(4000 + i as i32, user, [192, 0, 2, 9], start + i as i64 * 86_400));
    }
    fs::write(&wtmp, bytes).unwrap();
    // Not configured: nothing learnt from wtmp.
    let out = learn(&config);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing learnt"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = agent(&[
        "learn",
        "--config",
        config.to_str().unwrap(),
        "--wtmp",
        wtmp.to_str().unwrap(),
        "--utmp-arch",
        "x86_64",
    ]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        summary.contains("auth: 2 users, 1 networks, 3 sessions over 3 days (0 lines, 0 files; 6 wtmp records"),
        "{summary}"
    );
    assert!(!baselines(&state, "auth").is_empty());
}

#[test]
fn bad_wtmp_and_lastlog_files_are_counted_and_said_never_a_failure() {
    let dir = temp_dir();
    let log = dir.path().join("auth.log");
    fs::write(&log, "").unwrap();
    let state = dir.path().join("state");
    let wtmp = dir.path().join("wtmp");
    // One good session, a record whose ut_type is no type, and a record cut
    // short at the end (a write interrupted).
    let mut bytes = utmp_session(4000, "pi", [192, 0, 2, 9], 1_700_000_000);
    let mut junk = utmp(7, 1, "pts/0", "x", "", 1_700_000_100, [0; 4]);
    junk[0..4].copy_from_slice(&0x7f00_0000_i32.to_le_bytes());
    junk[0] = 0x7f;
    bytes.extend(junk);
    bytes.extend(&utmp(7, 2, "pts/1", "pi", "", 1_700_000_200, [0; 4])[..100]);
    fs::write(&wtmp, bytes).unwrap();
    // lastlog: a time in the future, and 10 bytes of a cut record.
    let mut last = lastlog(&[(1000, now() + 30 * 86_400, "pts/0", "192.0.2.1")]);
    last.extend([0u8; 10]);
    fs::write(dir.path().join("lastlog"), last).unwrap();
    fs::write(dir.path().join("passwd"), "pi:x:1000:1000::/home/pi:/bin/sh\nnot a passwd line\n").unwrap();
    let more = format!(
        "[learn]\nwtmp = {wtmp:?}\nlastlog = {:?}\npasswd = {:?}\n",
        dir.path().join("lastlog"),
        dir.path().join("passwd")
    );
    let config = config_with(dir.path(), &log, &state, &dir.path().join("out.jsonl"), &more);
    let out = learn(&config);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("auth: 1 users, 1 networks, 1 sessions over 1 days (0 lines, 0 files; 2 wtmp records before the logs; 4 bad wtmp/lastlog records skipped)"),
        "{summary}"
    );

    // Missing files: said, and the agent still starts.
    let dir = temp_dir();
    let log = dir.path().join("auth.log");
    fs::write(&log, "").unwrap();
    let state = dir.path().join("state");
    let more =
        format!("[learn]\nwtmp = {:?}\nlastlog = {:?}\n", dir.path().join("no-wtmp"), dir.path().join("no-lastlog"));
    let config = config_with(dir.path(), &log, &state, &dir.path().join("out.jsonl"), &more);
    let stderr = dir.path().join("stderr.log");
    let running = RunningAgent::start_with_stderr(&["--config", config.to_str().unwrap()], &stderr);
    wait_until(60, "the first checkpoint", || read_up_to(&state, 0));
    running.stop();
    let said = fs::read_to_string(&stderr).unwrap();
    assert!(said.contains("auth: nothing learnt (no rotated files beside"), "{said}");
    assert!(said.contains("no-wtmp: No such file or directory") && said.contains("no-lastlog: No such file"), "{said}");
}

#[test]
fn the_progress_line_and_the_summary_say_what_was_read() {
    // 3.2 MB of a real RHEL secure log, rotated into a dated file.
    let text = fs::read_to_string(real_log("exposed-rhel/secure")).unwrap();
    let dir = temp_dir();
    let log = dir.path().join("secure");
    fs::write(dir.path().join("secure-20240303"), &text).unwrap();
    gzip(&dir.path().join("secure-20240303"));
    fs::write(&log, "").unwrap();
    let state = dir.path().join("state");
    let asked = config(dir.path(), &log, &state, &dir.path().join("out.jsonl"));
    let out = agent(&["learn", "--config", asked.to_str().unwrap(), "--progress"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // "bfp-agent learn: DIR/secure-20240303.gz: 2 MB, 12345 lines"
    let progress: Vec<(u64, u64)> = stderr
        .lines()
        .filter(|l| l.starts_with("bfp-agent learn: ") && l.contains("secure-20240303.gz: "))
        .map(|l| {
            let words: Vec<&str> = l.rsplit("secure-20240303.gz: ").next().unwrap().split([' ', ',']).collect();
            assert_eq!((words[1], words[4]), ("MB", "lines"), "{l}");
            (words[0].parse().unwrap(), words[3].parse().unwrap())
        })
        .collect();
    let lines = text.lines().count() as u64;
    let mb = text.len() as u64 >> 20;
    assert!(progress.len() as u64 >= mb.max(2), "a line per megabyte of {mb}: {stderr}");
    assert!(progress.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "growing: {progress:?}");
    assert!(progress.iter().all(|&(m, l)| m <= mb && l <= lines), "{progress:?} within {mb} MB, {lines} lines");
    // The summary: every line of the file, in one file.
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains(&format!("({lines} lines, 1 files)")), "{summary}");

    // Not asked and not on a terminal: no progress line for a few megabytes.
    let dir = temp_dir();
    let log = dir.path().join("secure");
    fs::write(dir.path().join("secure-20240303"), &text).unwrap();
    fs::write(&log, "").unwrap();
    let config = config(dir.path(), &log, &dir.path().join("state"), &dir.path().join("out.jsonl"));
    let out = learn(&config);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("bfp-agent learn:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn for_the_journal_wtmp_gives_the_logins_before_the_days_read() {
    let dir = temp_dir();
    let now = now();
    // The journal's past: one session of pi three days ago (an old boot's).
    let entry = |i: i64, message: &str| {
        serde_json::json!({
            "__CURSOR": format!("s=fake;i={i:x}"),
            "__REALTIME_TIMESTAMP": ((now - 86_400 * 3 + i * 60) * 1_000_000).to_string(),
            "_BOOT_ID": "0123456789abcdef0123456789abcdef",
            "SYSLOG_IDENTIFIER": "sshd",
            "_PID": "70",
            "MESSAGE": message,
        })
        .to_string()
    };
    let journal = dir.path().join("journal.jsonl");
    fs::write(
        &journal,
        [
            entry(1, "Accepted password for pi from 192.0.2.9 port 1 ssh2"),
            entry(2, "pam_unix(sshd:session): session closed for user pi"),
        ]
        .join("\n")
            + "\n",
    )
    .unwrap();
    let fake = dir.path().join("journalctl");
    write_script(&fake, &format!("#!/bin/sh\ncat {journal:?}\n"));
    // wtmp: alice ten days ago (before the 7 days read: learnt), pi three days ago (the
    // journal's own session: not learnt twice).
    let wtmp = dir.path().join("wtmp");
    let mut bytes = utmp_session(500, "alice", [198, 51, 100, 4], now - 10 * 86_400);
    bytes.extend(utmp_session(501, "pi", [192, 0, 2, 9], now - 3 * 86_400 + 60));
    fs::write(&wtmp, bytes).unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("agent.toml");
    fs::write(
        &config,
        format!(
            "state_dir = {state:?}\n[[source]]\nkind = \"journald\"\nname = \"journal\"\njournalctl = {fake:?}\n\
             [learn]\njournal_days = 7\nwtmp = {wtmp:?}\nutmp_arch = \"x86_64\"\n"
        ),
    )
    .unwrap();
    let out = learn(&config);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(
            "journal: 2 users, 2 networks, 2 sessions over 8 days (2 lines, 0 files; 2 wtmp records before the logs)"
        ),
        "{summary}"
    );
}
