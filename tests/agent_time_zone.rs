//! The agent reads local log times in the device's zone, daylight saving
//! included: an OpenWrt `logread` log (local time, no offset) scanned with
//! OpenWrt's POSIX `TZ` string, with Debian's TZif file for Europe/Berlin by
//! name (`--time-zone`), with a fixed `--utc-offset-secs` (which overrides
//! the zone, and is an hour wrong in summer), and in UTC. `check` says which
//! zone it found and where.

use std::process::Command;

use bfp_e2e::agent::{json_lines, temp_dir};
use bfp_e2e::binary;
use serde_json::Value;

const BERLIN_POSIX: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

/// (logread date, root's session start as local time, its UTC start, the
/// local login hour), 2026: winter, just after the spring change, summer.
const SESSIONS: [(&str, &str, i64, u64); 3] = [
    ("Thu Jan 15", "14:00:00", 1_768_482_000, 14), // 2026-01-15T13:00:00Z
    ("Sun Mar 29", "03:30:00", 1_774_747_800, 3),  // 2026-03-29T01:30:00Z (02:00-03:00 skipped)
    ("Wed Jul 15", "14:00:00", 1_784_116_800, 14), // 2026-07-15T12:00:00Z
];

fn write_log(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::new();
    for (i, (date, time, _, _)) in SESSIONS.iter().enumerate() {
        let pid = 2100 + i;
        let peer = format!("192.168.1.{}:5052{i}", 20 + i);
        let end = format!("{}:{}", &time[..2], "40:00");
        text.push_str(&format!(
            "{date} {time} 2026 authpriv.info dropbear[{pid}]: Child connection from {peer}\n\
             {date} {time} 2026 authpriv.notice dropbear[{pid}]: Password auth succeeded for 'root' from {peer}\n\
             {date} {end} 2026 authpriv.info dropbear[{pid}]: Exit (root) from <{peer}>: Disconnect received\n"
        ));
    }
    let path = dir.join("messages");
    std::fs::write(&path, text).unwrap();
    path
}

/// `bfp-agent scan --format jsonl LOG ARGS` with `TZ` set (or removed):
/// the sessions' (start, start_time, login_hour), in time order.
fn scan(log: &std::path::Path, tz: Option<&str>, args: &[&str]) -> Vec<(i64, String, u64)> {
    let mut cmd = Command::new(binary("bfp-agent"));
    cmd.args(["scan", "--format", "jsonl"]).args(args).arg(log);
    match tz {
        Some(tz) => cmd.env("TZ", tz),
        None => cmd.env_remove("TZ"),
    };
    let out = cmd.output().expect("run bfp-agent scan");
    assert!(out.status.success(), "scan {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let mut sessions: Vec<(i64, String, u64)> = json_lines(&out.stdout)
        .iter()
        .filter(|o| o["kind"] == "session")
        .map(|o: &Value| {
            (
                o["start"].as_i64().unwrap(),
                o["start_time"].as_str().unwrap().to_string(),
                o["login_hour"].as_u64().unwrap(),
            )
        })
        .collect();
    sessions.sort();
    sessions
}

fn rfc3339(secs: i64) -> String {
    let t = bfp_common::time::format_utc(secs);
    format!("{}T{}Z", &t[..10], &t[11..])
}

fn expected() -> Vec<(i64, String, u64)> {
    SESSIONS.iter().map(|(_, _, start, hour)| (*start, rfc3339(*start), *hour)).collect()
}

#[test]
fn local_times_are_read_in_the_devices_zone_with_daylight_saving() {
    let dir = temp_dir();
    let log = write_log(dir.path());

    // OpenWrt: the zone is a POSIX string (its /etc/TZ, here in TZ).
    assert_eq!(scan(&log, Some(BERLIN_POSIX), &[]), expected());
    // Debian: the zone by name, read from tzdata's TZif file.
    assert_eq!(scan(&log, None, &["--time-zone", "Europe/Berlin"]), expected());
    assert_eq!(scan(&log, Some("UTC"), &["--time-zone", "/usr/share/zoneinfo/Europe/Berlin"]), expected());

    // A fixed offset overrides the zone: right in winter, an hour late in summer.
    let fixed = scan(&log, Some(BERLIN_POSIX), &["--utc-offset-secs", "3600"]);
    let late: Vec<i64> = fixed.iter().zip(expected()).map(|(got, want)| got.0 - want.0).collect();
    assert_eq!(late, vec![0, 3600, 3600]);
    assert_eq!(fixed.iter().map(|s| s.2).collect::<Vec<_>>(), vec![14, 3, 14], "hours are the log's own");

    // UTC: the wall-clock times are the instants.
    let utc = scan(&log, Some("UTC"), &[]);
    let ahead: Vec<i64> = utc.iter().zip(expected()).map(|(got, want)| got.0 - want.0).collect();
    assert_eq!(ahead, vec![3600, 7200, 7200]);

    // A zone that does not exist is a clear error, naming it.
    let out = Command::new(binary("bfp-agent"))
        .args(["scan", "--time-zone", "Mars/Olympus_Mons"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Mars/Olympus_Mons"), "{err}");
}

#[test]
fn check_names_the_zone_it_found_and_where() {
    let dir = temp_dir();
    let log = write_log(dir.path());
    let config = dir.path().join("agent.toml");
    let state = dir.path().join("state");
    let out = dir.path().join("out.jsonl");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\noutput = {:?}\n[[source]]\npath = {:?}\n",
            state.to_str().unwrap(),
            out.to_str().unwrap(),
            log.to_str().unwrap()
        ),
    )
    .unwrap();
    let check = |tz: &str, extra: &str| {
        let config = if extra.is_empty() {
            config.clone()
        } else {
            let with = dir.path().join("agent-extra.toml");
            std::fs::write(&with, format!("{extra}\n{}", std::fs::read_to_string(&config).unwrap())).unwrap();
            with
        };
        let out =
            Command::new(binary("bfp-agent")).args(["check", "--config"]).arg(&config).env("TZ", tz).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (code, report) = check(BERLIN_POSIX, "");
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains(&format!("ok: local time: {BERLIN_POSIX} (from the TZ variable)")), "{report}");
    let (code, report) = check(BERLIN_POSIX, "time_zone = \"Europe/Berlin\"");
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("ok: local time: Europe/Berlin (from time_zone)"), "{report}");
    let (code, report) = check(BERLIN_POSIX, "utc_offset_secs = 3600");
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("ok: local time: UTC+01:00 (from utc_offset_secs)"), "{report}");
    let (code, report) = check("UTC", "time_zone = \"Nowhere/Atlantis\"");
    assert_ne!(code, Some(0), "{report}");
}
