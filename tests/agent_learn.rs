//! `bfp-agent learn`: the baselines from the device's history (rotated and
//! gzip-compressed logs, RHEL's dated files, the journal's past) equal, byte
//! for byte, those `run` saves after reading the same history; it reports
//! nothing; a source `run` already follows is not re-learnt; and `run`
//! learns by itself on its first start.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bfp_e2e::agent::{agent, real_log, temp_dir, wait_until, RunningAgent};
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
    let path = dir.join("agent.toml");
    fs::write(
        &path,
        format!(
            "state_dir = {state:?}\noutput = {output:?}\npoll_interval_ms = 10\n[[source]]\npath = {log:?}\nname = \"auth\"\n"
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
    fs::write(&fake, format!("#!/bin/sh\necho \"$@\" >> {calls:?}\ncat {journal:?}\n")).unwrap();
    let mut perms = fs::metadata(&fake).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(&fake, perms).unwrap();
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
fn utmp(kind: i32, pid: i32, line: &str, user: &str, host: &str, secs: i32, ip: [u8; 4]) -> Vec<u8> {
    let mut r = vec![0u8; 384];
    r[0..4].copy_from_slice(&kind.to_le_bytes());
    r[4..8].copy_from_slice(&pid.to_le_bytes());
    r[8..8 + line.len()].copy_from_slice(line.as_bytes());
    r[44..44 + user.len()].copy_from_slice(user.as_bytes());
    r[76..76 + host.len()].copy_from_slice(host.as_bytes());
    r[340..344].copy_from_slice(&secs.to_le_bytes());
    r[348..352].copy_from_slice(&ip);
    r
}

#[test]
fn without_rotated_files_the_logins_in_wtmp_are_learnt_when_asked() {
    let dir = temp_dir();
    let log = dir.path().join("auth.log");
    fs::write(&log, "").unwrap();
    let state = dir.path().join("state");
    let config = config(dir.path(), &log, &state, &dir.path().join("out.jsonl"));
    let wtmp = dir.path().join("wtmp");
    let mut bytes = Vec::new();
    let start = 1_700_000_000;
    for (i, user) in ["pi", "pi", "alice"].iter().enumerate() {
        let (pid, at) = (4000 + i as i32, start + i as i32 * 86_400);
        bytes.extend(utmp(7, pid, "pts/0", user, "192.0.2.9", at, [192, 0, 2, 9]));
        bytes.extend(utmp(8, pid, "pts/0", "", "", at + 600, [0; 4]));
    }
    fs::write(&wtmp, bytes).unwrap();
    // Not asked: nothing learnt from wtmp.
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
    assert!(summary.contains("auth: 2 users, 1 networks, 3 sessions over 3 days (6 lines, 1 files)"), "{summary}");
    assert!(!baselines(&state, "auth").is_empty());
}
