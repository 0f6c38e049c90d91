//! `bfp-agent check`: is this configuration ready to run unattended? Run by
//! the systemd unit's `ExecStartPre` and the OpenWrt init script before
//! `run`, and by hand after editing the config.
//!
//! It checks, in order: the config itself (syntax, keys, ranges), each
//! source (a file present and readable, `journalctl` able to read the
//! journal), the `[learn]` table's wtmp and lastlog (readable: else a
//! warning), the Tor exit list and the model (readable and well-formed), the
//! state directory (writable), and the collector (reachable, and the device
//! token accepted: an empty heartbeat to `POST /api/ingest`, which the
//! collector answers 401 for an unknown or revoked token; it stores no
//! record, only the device's last-seen time and versions).
//!
//! A missing log file is a warning, not a problem: `run` waits for it (on a
//! fresh system rsyslog may not have written it yet). So is an unreachable
//! collector (the network may come up later; results wait in the spool); a
//! refused token, an unreadable file or Tor list, a state directory that
//! cannot be written are problems. Exit codes: 0 nothing wrong (warnings
//! allowed), 1 a problem, 2 a usage mistake.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use bfp_common::wire::{self, Batch, Heartbeat};

use crate::config::{CollectorConfig, Config, SourceConfig, SourceKind};
use crate::scoring::Scorer;
use crate::state::StateDir;

/// One finding of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// What was checked and found fine.
    Ok(String),
    /// Worth the operator's attention, but `run` works.
    Warning(String),
    /// `run` would fail or do nothing useful.
    Problem(String),
}

/// Each finding is one line (`grep '^problem'` finds them all): messages
/// that span lines (a TOML parse error shows the line and a caret) are
/// joined with ` | `.
impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (label, message) = match self {
            Finding::Ok(m) => ("ok", m),
            Finding::Warning(m) => ("warning", m),
            Finding::Problem(m) => ("problem", m),
        };
        let lines: Vec<&str> = message.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
        write!(f, "{label}: {}", lines.join(" | "))
    }
}

/// Every finding for `config` (already parsed and validated), in order.
pub fn check(config: &Config) -> Vec<Finding> {
    let mut findings = vec![Finding::Ok(format!("config valid, {} source(s)", config.sources.len()))];
    let mut usable = 0usize;
    for source in &config.sources {
        let finding = check_source(source);
        usable += usize::from(matches!(finding, Finding::Ok(_)));
        findings.push(finding);
    }
    if usable == 0 && !config.sources.is_empty() {
        findings.push(Finding::Warning(
            "no configured source can be read now: the agent reads nothing until one appears".into(),
        ));
    }
    // What the first start learns from beyond the logs: unreadable is only a
    // warning (learning goes on without it).
    for (what, path) in [("wtmp", &config.learn.wtmp), ("lastlog", &config.learn.lastlog)] {
        if let Some(path) = path {
            findings.push(match std::fs::File::open(path) {
                Ok(_) => Finding::Ok(format!("learn: {what} {} readable", path.display())),
                Err(e) => Finding::Warning(format!(
                    "learn: {what} {} cannot be read ({e}): the first start learns without it",
                    path.display()
                )),
            });
        }
    }
    match &config.tor_exit_list {
        Some(path) => findings.push(match config.analyzer_config() {
            Ok(analyzer) => {
                Finding::Ok(format!("Tor exit list {} ({} addresses)", path.display(), analyzer.tor_exit_list.len()))
            }
            Err(e) => Finding::Problem(format!("Tor exit list: {e}")),
        }),
        None => findings.push(Finding::Ok("no Tor exit list configured".into())),
    }
    findings.push(match config.local_zone() {
        Ok((zone, origin)) => Finding::Ok(format!("local time: {} (from {origin})", zone.describe())),
        Err(e) => Finding::Problem(e.to_string()),
    });
    if let Some(path) = &config.model {
        findings.push(match Scorer::load(Some(path)) {
            Ok(scorer) => Finding::Ok(format!("model {} ({})", path.display(), scorer.version())),
            Err(e) => Finding::Problem(e.to_string()),
        });
    }
    findings.push(check_state_dir(&config.state_dir));
    if config.collector.is_none() && config.output != Path::new("-") {
        findings.push(check_output(&config.output));
    }
    if let Some(collector) = &config.collector {
        if config.output != Path::new("-") {
            findings.push(check_output(&config.output));
        }
        // The heartbeat names the model the agent will score with, so the
        // collector's fleet view does not show a blank in between.
        let model_version = Scorer::load(config.model.as_deref()).map(|s| s.version().to_string()).unwrap_or_default();
        findings.push(check_collector(collector, &model_version));
    }
    findings
}

fn check_source(source: &SourceConfig) -> Finding {
    match source.kind {
        SourceKind::File => {
            let path = source.path.as_deref().expect("validated: file sources have a path");
            match std::fs::File::open(path).and_then(|mut f| f.read(&mut [0u8; 1])) {
                Ok(_) => Finding::Ok(format!("source {} readable", path.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let hint = if path.file_name().is_some_and(|n| n == "auth.log" || n == "secure") {
                        " (a system without rsyslog, e.g. Debian 12 by default, has no auth log file: \
                         use a [[source]] with kind = \"journald\")"
                    } else {
                        ""
                    };
                    Finding::Warning(format!(
                        "source {} does not exist; the agent will wait for it{hint}",
                        path.display()
                    ))
                }
                Err(e) => Finding::Problem(format!("source {}: cannot read it: {e}", path.display())),
            }
        }
        SourceKind::Journald => {
            // One entry, no pager: fails if journalctl is missing or the
            // agent's user may not read the journal.
            let output = Command::new(&source.journalctl)
                .args(["--no-pager", "-q", "-n", "1", "-o", "json"])
                .stdin(Stdio::null())
                .output();
            match output {
                Ok(out) if out.status.success() => {
                    Finding::Ok(format!("journal readable through {}", source.journalctl.display()))
                }
                Ok(out) => Finding::Problem(format!(
                    "journal source {}: {} failed ({}): {}",
                    source.key(),
                    source.journalctl.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(e) => Finding::Problem(format!(
                    "journal source {}: cannot run {}: {e}",
                    source.key(),
                    source.journalctl.display()
                )),
            }
        }
    }
}

fn check_state_dir(dir: &Path) -> Finding {
    let state = match StateDir::open(dir) {
        Ok(state) => state,
        Err(e) => return Finding::Problem(format!("state directory: {e}")),
    };
    // Opening may have changed nothing: prove a write goes through.
    let probe = state.path().join(format!("check-{}.tmp", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            Finding::Ok(format!("state directory {} writable", dir.display()))
        }
        Err(e) => Finding::Problem(format!("state directory {} not writable: {e}", dir.display())),
    }
}

fn check_output(path: &Path) -> Finding {
    let opened = std::fs::OpenOptions::new().append(true).open(path);
    match opened {
        Ok(_) => Finding::Ok(format!("output {} writable", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Finding::Ok(format!("output {} will be created", path.display()))
        }
        Err(e) => Finding::Problem(format!("output {}: {e}", path.display())),
    }
}

/// An empty heartbeat: the collector authenticates it like any batch and
/// stores no record (a batch without records consumes no sequence number);
/// it refreshes the device's last-seen time and versions.
fn check_collector(config: &CollectorConfig, model_version: &str) -> Finding {
    let client = match crate::forward::client(config) {
        Ok(client) => client,
        Err(e) => return Finding::Problem(e.to_string()),
    };
    let heartbeat = Heartbeat {
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        model_version: model_version.to_string(),
        ..Heartbeat::default()
    };
    let body = match (Batch { seq: 0, heartbeat, records: Vec::new() }).encode() {
        Ok(body) => body,
        Err(e) => return Finding::Problem(format!("collector: {e}")),
    };
    let url = format!("{}/api/ingest", config.url.trim_end_matches('/'));
    let response = client
        .post(&url)
        .bearer_auth(&config.token)
        .header(reqwest::header::CONTENT_TYPE, wire::CONTENT_TYPE)
        .body(body)
        .send();
    match response {
        Ok(r) if r.status().is_success() => Finding::Ok(format!("collector {} reachable, token accepted", config.url)),
        Ok(r) if matches!(r.status().as_u16(), 401 | 403) => Finding::Problem(format!(
            "collector {}: the token was refused (HTTP {}); make a new one with `bfp-collector device add NAME`",
            config.url,
            r.status().as_u16()
        )),
        Ok(r) => {
            let status = r.status();
            let text = r.text().unwrap_or_default();
            Finding::Problem(format!("collector {url}: HTTP {status}: {}", text.chars().take(200).collect::<String>()))
        }
        // Transient (the network may come up after the agent): results wait
        // in the spool, so it does not stop a start.
        Err(e) => Finding::Warning(format!(
            "collector {} unreachable now ({}); results wait in the spool",
            config.url,
            crate::forward::error_chain(&e)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let path = Path::new("t.toml");
        let config = Config::parse(text, path).unwrap();
        config.validate(path).unwrap();
        config
    }

    fn problems(findings: &[Finding]) -> Vec<String> {
        findings.iter().filter(|f| matches!(f, Finding::Problem(_))).map(|f| f.to_string()).collect()
    }

    #[test]
    fn a_missing_auth_log_is_a_warning_that_suggests_the_journal() {
        let dir = crate::testutil::tempdir("check-missing");
        let present = dir.join("present.log");
        std::fs::write(&present, "x\n").unwrap();
        let text = format!(
            "state_dir = {:?}\n[[source]]\npath = {:?}\n[[source]]\npath = {:?}\n",
            dir.join("state"),
            present,
            dir.join("auth.log")
        );
        let findings = check(&config(&text));
        assert!(problems(&findings).is_empty(), "{findings:?}");
        let warning = findings.iter().find(|f| matches!(f, Finding::Warning(_))).expect("a warning").to_string();
        assert!(warning.contains("auth.log") && warning.contains("journald"), "{warning}");
    }

    #[test]
    fn a_missing_tor_list_is_a_problem_and_no_readable_source_a_warning() {
        let dir = crate::testutil::tempdir("check-problems");
        let text = format!(
            "state_dir = {:?}\ntor_exit_list = {:?}\n[[source]]\npath = {:?}\n",
            dir.join("state"),
            dir.join("no-tor-list"),
            dir.join("gone.log")
        );
        let findings = check(&config(&text));
        let problems = problems(&findings);
        assert_eq!(problems.len(), 1, "{findings:?}");
        assert!(problems[0].contains("Tor exit list") && problems[0].contains("no-tor-list"), "{problems:?}");
        assert!(findings.iter().any(|f| matches!(f, Finding::Warning(w) if w.contains("no configured source"))));
    }

    #[test]
    fn an_unreadable_wtmp_or_lastlog_is_a_warning() {
        let dir = crate::testutil::tempdir("check-learn");
        let log = dir.join("auth.log");
        std::fs::write(&log, "").unwrap();
        std::fs::write(dir.join("wtmp"), "").unwrap();
        let text = format!(
            "state_dir = {:?}\n[[source]]\npath = {log:?}\n[learn]\nwtmp = {:?}\nlastlog = {:?}\n",
            dir.join("state"),
            dir.join("wtmp"),
            dir.join("no-lastlog")
        );
        let findings = check(&config(&text));
        assert!(problems(&findings).is_empty(), "{findings:?}");
        assert!(findings.iter().any(|f| matches!(f, Finding::Ok(m) if m.starts_with("learn: wtmp"))), "{findings:?}");
        assert!(
            findings
                .iter()
                .any(|f| matches!(f, Finding::Warning(m) if m.contains("learn: lastlog") && m.contains("no-lastlog"))),
            "{findings:?}"
        );
    }
}
