//! `bfp-agent check` as the systemd unit's ExecStartPre and the OpenWrt init
//! script run it: every shipped config passes once its files exist (paths
//! moved into a temp dir), broken ones fail with the problem named, and the
//! collector check talks to the real collector on loopback (token accepted,
//! token refused, collector down).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use bfp_e2e::agent::{agent, temp_dir, write_script};
use bfp_e2e::forward::device_add;
use bfp_e2e::{free_port, repo_root, Collector};

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn check(config: &Path) -> Output {
    agent(&["check", "--config", config.to_str().unwrap()])
}

/// A stand-in `journalctl` that prints one journal entry (what the check
/// asks the real one for).
fn fake_journalctl(dir: &Path) -> PathBuf {
    let path = dir.join("journalctl");
    write_script(&path, "#!/bin/sh\necho '{\"MESSAGE\":\"x\",\"__REALTIME_TIMESTAMP\":\"1\"}'\n");
    path
}

/// `shipped` with every absolute path it names (state dir, logs, Tor list)
/// moved under `dir`, the files it reads created there, and journald
/// sources pointed at a stand-in journalctl.
fn moved_into(shipped: &str, dir: &Path) -> String {
    let journalctl = fake_journalctl(dir);
    let mut out = String::new();
    for line in shipped.lines() {
        let trimmed = line.trim_start();
        let key = trimmed.split('=').next().unwrap_or("").trim();
        let value = trimmed.split_once('=').map(|(_, v)| v.trim().trim_matches('"'));
        match (key, value) {
            ("state_dir", Some(v)) | ("path", Some(v)) | ("tor_exit_list", Some(v)) if v.starts_with('/') => {
                let moved = dir.join(v.trim_start_matches('/'));
                if key != "state_dir" {
                    fs::create_dir_all(moved.parent().unwrap()).unwrap();
                    fs::write(&moved, if key == "tor_exit_list" { "192.0.2.1\n" } else { "" }).unwrap();
                }
                out.push_str(&format!("{key} = {moved:?}\n"));
            }
            ("journalctl", Some(_)) => {}
            ("kind", Some("journald")) => {
                out.push_str(line);
                out.push_str(&format!("\njournalctl = {journalctl:?}\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn every_shipped_config_passes_once_its_files_exist() {
    for file in ["deploy/bfp-agent.example.toml", "deploy/systemd/bfp-agent.toml", "deploy/openwrt/bfp-agent.toml"] {
        let dir = temp_dir();
        let shipped = fs::read_to_string(repo_root().join(file)).unwrap();
        let config = dir.path().join("agent.toml");
        fs::write(&config, moved_into(&shipped, dir.path())).unwrap();
        let out = check(&config);
        assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out));
        let report = text(&out);
        assert!(report.contains("ok: config valid"), "{file}: {report}");
        assert!(report.contains("writable"), "{file}: {report}");
        assert!(!report.contains("problem"), "{file}: {report}");
        assert!(report.trim_end().ends_with("ready"), "{file}: {report}");
    }
}

#[test]
fn broken_configs_fail_and_name_the_problem() {
    let dir = temp_dir();
    let log = dir.path().join("auth.log");
    fs::write(&log, "").unwrap();
    let a_file = dir.path().join("a-file");
    fs::write(&a_file, "").unwrap();
    let state = dir.path().join("state");
    let cases: Vec<(String, &str)> = vec![
        (format!("stat_dir = {state:?}\n[[source]]\npath = {log:?}\n"), "stat_dir"),
        (format!("state_dir = {state:?}\npoll_interval_ms = 1\n[[source]]\npath = {log:?}\n"), "poll_interval_ms"),
        (format!("state_dir = {state:?}\n"), "no sources"),
        (
            format!(
                "state_dir = {state:?}\ntor_exit_list = \"/nonexistent/tor-exits.txt\"\n[[source]]\npath = {log:?}\n"
            ),
            "/nonexistent/tor-exits.txt",
        ),
        // A directory where the log should be: present but not readable as a log.
        (format!("state_dir = {state:?}\n[[source]]\npath = {:?}\n", dir.path()), "cannot read it"),
        (format!("state_dir = {:?}\n[[source]]\npath = {log:?}\n", a_file.join("state")), "state directory"),
        (
            format!(
                "state_dir = {state:?}\n[[source]]\nkind = \"journald\"\njournalctl = \"/nonexistent/journalctl\"\n"
            ),
            "cannot run /nonexistent/journalctl",
        ),
        (format!("state_dir = {state:?}\nmodel = {a_file:?}\n[[source]]\npath = {log:?}\n"), "a-file"),
    ];
    for (i, (toml, named)) in cases.iter().enumerate() {
        let config = dir.path().join(format!("broken-{i}.toml"));
        fs::write(&config, toml).unwrap();
        let out = check(&config);
        let report = text(&out);
        assert_eq!(out.status.code(), Some(1), "{toml}: {report}");
        let problem = report.lines().find(|l| l.starts_with("problem:")).unwrap_or_else(|| panic!("{report}"));
        assert!(problem.contains(named), "{toml}: expected {named:?} in {problem:?}");
    }
    // A missing config file, and a usage mistake (exit 2).
    let out = check(&dir.path().join("nope.toml"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("nope.toml"), "{}", text(&out));
    let out = agent(&["check", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_missing_auth_log_is_a_warning_that_points_to_the_journal() {
    let dir = temp_dir();
    let config = dir.path().join("agent.toml");
    let log = dir.path().join("auth.log");
    fs::write(&config, format!("state_dir = {:?}\n[[source]]\npath = {log:?}\n", dir.path().join("state"))).unwrap();
    let out = check(&config);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let warning = report.lines().find(|l| l.starts_with("warning:") && l.contains("auth.log")).expect(&report);
    assert!(warning.contains("does not exist") && warning.contains("journald"), "{warning}");
}

#[test]
fn the_collector_check_sends_the_token_to_the_real_collector() {
    let dir = temp_dir();
    let db = dir.path().join("app.db");
    let token = device_add(&db, "pi-check");
    let c = Collector::start(&db, &[]);
    let log = dir.path().join("auth.log");
    fs::write(&log, "").unwrap();
    let config_with = |name: &str, url: &str, token: &str| {
        let path = dir.path().join(name);
        let state = dir.path().join("state");
        fs::write(
            &path,
            format!("state_dir = {state:?}\n[collector]\nurl = {url:?}\ntoken = {token:?}\ntimeout_secs = 5\n[[source]]\npath = {log:?}\n"),
        )
        .unwrap();
        path
    };
    let out = check(&config_with("good.toml", &c.url(""), &token));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("token accepted"), "{}", text(&out));

    let out = check(&config_with("refused.toml", &c.url(""), "bfp_not-a-real-token"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let problem = text(&out).lines().find(|l| l.starts_with("problem:")).map(str::to_string).expect("a problem");
    assert!(problem.contains("token was refused (HTTP 401)"), "{problem}");

    // Down (nothing listens): a warning only, results would wait in the spool.
    let down = format!("http://127.0.0.1:{}", free_port());
    let out = check(&config_with("down.toml", &down, &token));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("unreachable now"), "{}", text(&out));

    // The check stored no record; the device was seen, with the model the
    // agent scores with.
    let fleet = c.get("/api/devices").json();
    let device = fleet["devices"].as_array().unwrap().iter().find(|d| d["name"] == "pi-check").unwrap().clone();
    assert_eq!(device["records"], 0, "{device}");
    assert!(device["model_version"].as_str().is_some_and(|v| v.starts_with("bfp-")), "{device}");
    c.stop();
}
