//! `bfp-agent scan --format jsonl` on the real logs of `shared/data/real`:
//! every fingerprint object has every documented key, the summary agrees
//! with the objects and with counts taken from the files independently.

use bfp_e2e::agent::{agent, json_lines, real_log, temp_dir};
use serde_json::Value;

const FINGERPRINT_KEYS: [&str; 14] = [
    "kind",
    "source_ip",
    "user",
    "start",
    "end",
    "login_hour",
    "duration_min",
    "failed_logins",
    "commands",
    "protocol",
    "typing_speed",
    "prediction",
    "confidence",
    "reasons",
];
const SUMMARY_KEYS: [&str; 7] =
    ["kind", "lines_read", "lines_by_kind", "unknown_lines", "sessions", "sources", "suspicious"];

const REAL_LOGS: [&str; 7] = [
    "loghub/OpenSSH_2k.log",
    "loghub/Linux_2k.log",
    "elastic/auth.log",
    "exposed-rhel/secure",
    "plesk-centos/secure",
    "cowrie/cowrie.json.2018-05-19",
    "cowrie/cowrie-telnet.json",
];

/// Runs a jsonl scan; returns (fingerprint objects, summary).
fn scan(args: &[&str]) -> (Vec<Value>, Value) {
    let out = agent(&[&["scan", "--format", "jsonl"], args].concat());
    assert!(out.status.success(), "scan {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut objects = json_lines(&out.stdout);
    let summary = objects.pop().expect("a summary line");
    (objects, summary)
}

fn check_shape(objects: &[Value], summary: &Value) {
    for key in SUMMARY_KEYS {
        assert!(summary.get(key).is_some(), "summary lacks {key}: {summary}");
    }
    assert_eq!(summary["kind"], "summary");
    for o in objects {
        for key in FINGERPRINT_KEYS {
            assert!(o.get(key).is_some(), "fingerprint lacks {key}: {o}");
        }
        let kind = o["kind"].as_str().unwrap();
        assert!(["session", "source", "device"].contains(&kind), "{o}");
        if kind != "session" {
            assert!(o["user"].is_null(), "a source has no user: {o}");
        }
        assert!(o["commands"].is_array() && o["reasons"].is_array(), "{o}");
        assert!(!o["reasons"].as_array().unwrap().is_empty(), "every verdict says why: {o}");
        let prediction = o["prediction"].as_str().unwrap();
        assert!(prediction == "Normal" || prediction == "Suspicious", "{o}");
        let confidence = o["confidence"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&confidence), "{o}");
        assert!(o["login_hour"].as_u64().unwrap() <= 23, "{o}");
        assert!(o["typing_speed"].is_null() || o["typing_speed"].as_f64().unwrap() >= 0.0, "{o}");
    }
    let count = |kind: &str| objects.iter().filter(|o| o["kind"] == kind).count() as u64;
    assert_eq!(summary["sessions"].as_u64().unwrap(), count("session"));
    assert_eq!(summary["sources"].as_u64().unwrap(), count("source"));
    assert_eq!(summary["devices"].as_u64().unwrap(), count("device"));
    let suspicious = objects.iter().filter(|o| o["prediction"] == "Suspicious").count() as u64;
    assert_eq!(summary["suspicious"].as_u64().unwrap(), suspicious);
}

#[test]
fn every_real_log_gives_complete_objects_and_a_matching_summary() {
    for rel in REAL_LOGS {
        let path = real_log(rel);
        let (objects, summary) = scan(&[path.to_str().unwrap()]);
        check_shape(&objects, &summary);
        // Independent count: the file's lines (`wc -l`, plus a last line
        // without newline).
        let bytes = std::fs::read(&path).unwrap();
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() + usize::from(bytes.last() != Some(&b'\n'));
        assert_eq!(summary["lines_read"].as_u64().unwrap(), lines as u64, "{rel}");
        assert!(!objects.is_empty(), "{rel}: no fingerprints at all");
    }
}

#[test]
fn each_accepted_ssh_login_is_one_session() {
    // `grep -c 'sshd\[[0-9]*\]: Accepted ' elastic/auth.log` = 224: each
    // accepted login opens exactly one session (closed or still open).
    let path = real_log("elastic/auth.log");
    let text = std::fs::read_to_string(&path).unwrap();
    let accepted = text.lines().filter(|l| l.contains("]: Accepted ")).count();
    let (objects, _) = scan(&[path.to_str().unwrap()]);
    let sessions = objects.iter().filter(|o| o["kind"] == "session").count();
    assert_eq!(sessions, accepted);
}

#[test]
fn stdin_gives_the_same_as_the_file_and_several_files_add_up() {
    let openssh = real_log("loghub/OpenSSH_2k.log");
    let linux = real_log("loghub/Linux_2k.log");
    let (from_file, _) = scan(&[openssh.to_str().unwrap()]);
    let out = std::process::Command::new(bfp_e2e::binary("bfp-agent"))
        .args(["scan", "--format", "jsonl", "-"])
        .stdin(std::fs::File::open(&openssh).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut from_stdin = json_lines(&out.stdout);
    from_stdin.pop();
    let strip_log = |v: &[Value]| {
        v.iter()
            .map(|o| {
                let mut o = o.clone();
                o.as_object_mut().unwrap().remove("log");
                o
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip_log(&from_stdin), strip_log(&from_file));

    let (_, one) = scan(&[openssh.to_str().unwrap()]);
    let (_, two) = scan(&[linux.to_str().unwrap()]);
    let (_, both) = scan(&[openssh.to_str().unwrap(), linux.to_str().unwrap()]);
    for key in ["lines_read", "sessions", "sources", "suspicious", "unknown_lines"] {
        assert_eq!(both[key].as_u64().unwrap(), one[key].as_u64().unwrap() + two[key].as_u64().unwrap(), "{key}");
    }
}

#[test]
fn table_output_lists_the_fingerprints() {
    let path = real_log("elastic/auth.log");
    let out = agent(&["scan", "--format", "table", path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let (objects, _) = scan(&[path.to_str().unwrap()]);
    // A header, one row per fingerprint, a blank line and the totals line.
    assert_eq!(text.lines().count(), objects.len() + 3, "{text}");
    assert!(text.lines().next().unwrap().starts_with("kind"));

    // A log with lines the agent does not read: one more line names their programs, most
    // first, with the counts of the jsonl summary (`grep -c ' kernel: '` = 76, `grep -c
    // ' klogind\['` = 46; the programs of an old Red Hat host's syslog, not auth programs).
    let path = real_log("loghub/Linux_2k.log");
    let out = agent(&["scan", "--format", "table", path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let (objects, summary) = scan(&[path.to_str().unwrap()]);
    assert_eq!(text.lines().count(), objects.len() + 4, "{text}");
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("unknown lines by program: kernel 76, klogind 46, "), "{last}");
    let by = summary["unknown_by_program"].as_object().unwrap();
    assert_eq!(last.matches(", ").count() + 1, by.len(), "{last}");
    for (program, n) in by {
        assert!(last.contains(&format!("{program} {n}")), "{program} {n}: {last}");
    }
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let dir = temp_dir();
    let missing = dir.path().join("nope.log");
    let out = agent(&["scan", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope.log"), "{err}");

    let bad_tor = dir.path().join("tor.txt");
    std::fs::write(&bad_tor, "1.2.3.4\n999.1.2.3\n").unwrap();
    let log = real_log("loghub/OpenSSH_2k.log");
    let out = agent(&["scan", "--tor-exit-list", bad_tor.to_str().unwrap(), log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));

    let bad_model = dir.path().join("model.postcard");
    std::fs::write(&bad_model, b"BFPM garbage").unwrap();
    let out = agent(&["scan", "--model", bad_model.to_str().unwrap(), log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("model"));

    // Binary garbage is counted, not fatal.
    let garbage = dir.path().join("garbage.log");
    std::fs::write(&garbage, (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>()).unwrap();
    let (_, summary) = scan(&["--log-format", "syslog", garbage.to_str().unwrap()]);
    assert!(summary["lines_read"].as_u64().unwrap() > 0);

    // A rotated, compressed log is refused with the command that reads it,
    // not miscounted as binary lines; decompressed on stdin it is the log.
    let gz = dir.path().join("auth.log.2.gz");
    let compressed = std::process::Command::new("gzip").arg("-c").arg(&log).output().expect("gzip");
    std::fs::write(&gz, compressed.stdout).unwrap();
    let out = agent(&["scan", gz.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gzip-compressed") && err.contains("zcat"), "{err}");
    assert!(out.stdout.is_empty(), "nothing reported from a file that was not read");
}

#[test]
fn a_tor_exit_list_marks_that_address_tor_and_only_it() {
    let log = real_log("loghub/OpenSSH_2k.log");
    let (plain, _) = scan(&[log.to_str().unwrap()]);
    // The address with the most fingerprints in the plain scan.
    let mut by_ip = std::collections::BTreeMap::<String, usize>::new();
    for o in &plain {
        if let Some(ip) = o["source_ip"].as_str() {
            *by_ip.entry(ip.to_string()).or_default() += 1;
        }
    }
    let (ip, _) = by_ip.iter().max_by_key(|(_, n)| **n).expect("fingerprints with addresses");
    assert!(plain.iter().all(|o| o["protocol"] != "TOR"), "no Tor list, no TOR");
    let dir = temp_dir();
    let list = dir.path().join("exits.txt");
    std::fs::write(&list, format!("# test list\n192.0.2.1\nExitAddress {ip} 2026-11-25 07:00:00\n")).unwrap();
    let (marked, _) = scan(&["--tor-exit-list", list.to_str().unwrap(), log.to_str().unwrap()]);
    assert_eq!(marked.len(), plain.len());
    for o in &marked {
        let from_exit = o["source_ip"].as_str() == Some(ip.as_str());
        assert_eq!(o["protocol"] == "TOR", from_exit, "{o}");
    }
}

#[test]
fn model_override_scores_with_the_given_artifact() {
    let dir = temp_dir();
    let model = bfp_e2e::stand_in_model(dir.path());
    let log = real_log("elastic/auth.log");
    let (embedded, summary) = scan(&[log.to_str().unwrap()]);
    assert_ne!(summary["model_version"], "e2e-stand-in");
    let (objects, summary) = scan(&["--model", model.to_str().unwrap(), log.to_str().unwrap()]);
    assert_eq!(summary["model_version"], "e2e-stand-in");
    assert_eq!(objects.len(), embedded.len());
    // The stand-in says Suspicious when more than 3 failed logins preceded
    // (the baselines may raise a verdict, never lower one), Normal otherwise.
    let sessions: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "session").collect();
    for o in &sessions {
        if o["failed_logins"].as_u64().unwrap() > 3 {
            assert_eq!(o["prediction"], "Suspicious", "{o}");
        }
    }
    assert!(sessions.iter().any(|o| o["failed_logins"].as_u64().unwrap() <= 3 && o["prediction"] == "Normal"));
    assert!(objects.iter().all(|o| o["model_version"] == "e2e-stand-in"));
}
