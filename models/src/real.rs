//! Fingerprints from the real logs in `shared/data/real`, through common's
//! log analyzer (as the agent reads them), in labelled groups for
//! evaluation only: none of them is used in training.
//!
//! How each group is labelled, and its caveat, is stated beside it: honeypot
//! traffic is malicious by construction; on the hosts whose every accepted
//! login comes from one address, sessions from that address are taken as
//! the admin's (Normal) and sources that only ever failed as hostile.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bfp_common::Fingerprint;
use bfp_logs::analyze::{Analyzer, AnalyzerConfig, LogFormat, Observation, RecordKind};

use crate::error::{Error, Result};

/// One labelled group of real fingerprints.
#[derive(Debug, Clone)]
pub struct Group {
    /// What it is, for the tables.
    pub name: &'static str,
    /// Its label.
    pub suspicious: bool,
    /// Why it carries that label, and how sure that is.
    pub basis: &'static str,
    /// The fingerprints.
    pub rows: Vec<Fingerprint>,
}

/// `shared/data/real`, found as every test and bench finds it
/// ([`bfp_testkit::try_shared_data`]); `None` when there is none.
pub fn real_dir() -> Option<PathBuf> {
    bfp_testkit::try_shared_data().map(|d| d.join("real"))
}

/// Runs one log file through the analyzer.
pub fn observe(path: &Path) -> Result<Vec<Observation>> {
    let text = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    let text = String::from_utf8_lossy(&text);
    let mut analyzer = Analyzer::new(AnalyzerConfig::default());
    let mut out = Vec::new();
    for line in text.lines() {
        analyzer.feed_line(line, LogFormat::Auto);
        out.extend(analyzer.drain_ready());
    }
    out.extend(analyzer.finish());
    Ok(out)
}

fn tried(o: &Observation) -> bool {
    o.fingerprint.failed_logins > 0 || o.fingerprint.commands > 0 || o.source.as_ref().is_some_and(|s| s.successes > 0)
}

fn only_failed(o: &Observation) -> bool {
    o.fingerprint.failed_logins > 0 && o.source.as_ref().is_some_and(|s| s.successes == 0)
}

/// The labelled groups (files that are missing are skipped).
pub fn groups(real: &Path) -> Result<Vec<Group>> {
    let mut groups = Vec::new();
    let kind = |obs: &[Observation], k: RecordKind, keep: &dyn Fn(&Observation) -> bool| -> Vec<Fingerprint> {
        obs.iter().filter(|o| o.kind == k && keep(o)).map(|o| o.fingerprint).collect()
    };

    let mut cowrie = Vec::new();
    for f in ["cowrie/cowrie.json.2018-05-19", "cowrie/cowrie-telnet.json"] {
        let p = real.join(f);
        if p.is_file() {
            cowrie.extend(observe(&p)?);
        }
    }
    groups.push(Group {
        name: "Cowrie honeypot: sessions",
        suspicious: true,
        basis: "a honeypot has no legitimate users: every login is an intruder",
        rows: kind(&cowrie, RecordKind::Session, &|_| true),
    });
    groups.push(Group {
        name: "Cowrie honeypot: sources that tried to log in",
        suspicious: true,
        basis: "as above; sources that only connected (scans) are left out",
        rows: kind(&cowrie, RecordKind::Source, &tried),
    });

    let elastic = real.join("elastic/auth.log");
    if elastic.is_file() {
        let obs = observe(&elastic)?;
        let admin: IpAddr = "85.245.107.41".parse().expect("literal address");
        groups.push(Group {
            name: "elastic auth.log: sessions from the admins' address",
            suspicious: false,
            basis: "every accepted login on this host comes from 85.245.107.41 (users ubuntu and elastic_user_*): taken as its admins; unverified",
            rows: kind(&obs, RecordKind::Session, &|o| o.source_ip == Some(admin)),
        });
        groups.push(Group {
            name: "elastic auth.log: the admins' address, source windows",
            suspicious: false,
            basis:
                "the same address as a source over each window (all its users' logins, failures and commands together)",
            rows: kind(&obs, RecordKind::Source, &|o| o.source_ip == Some(admin)),
        });
        // Diagnostic twin of the sessions group: the same sessions with their
        // failed logins not counted, to show what that count alone adds.
        groups.push(Group {
            name: "what-if: the same admin sessions with failed_logins = 0",
            suspicious: false,
            basis: "diagnostic, not a result: what the sessions' own failed logins (password failures of the same user from this address before the login) add",
            rows: kind(&obs, RecordKind::Session, &|o| o.source_ip == Some(admin))
                .into_iter()
                .map(|f| Fingerprint { failed_logins: 0, ..f })
                .collect(),
        });
        groups.push(Group {
            name: "elastic auth.log: other sources that only failed",
            suspicious: true,
            basis: "never logged in on a host whose every login comes from one address; includes the injected brute force; unlabelled by the authors",
            rows: kind(&obs, RecordKind::Source, &|o| o.source_ip != Some(admin) && only_failed(o)),
        });
    }

    let rhel = real.join("exposed-rhel/secure");
    if rhel.is_file() {
        let obs = observe(&rhel)?;
        let owner: IpAddr = "35.235.244.33".parse().expect("literal address");
        groups.push(Group {
            name: "exposed RHEL secure: the owner's publickey session",
            suspicious: false,
            basis: "the host's only accepted login: a publickey login by its owner right after the account was created (Google Cloud guest agent); one row",
            rows: kind(&obs, RecordKind::Session, &|o| o.source_ip == Some(owner)),
        });
    }

    for (file, name) in [
        ("exposed-rhel/secure", "exposed RHEL secure: sources that only failed"),
        ("loghub/OpenSSH_2k.log", "Loghub OpenSSH: sources that only failed"),
    ] {
        let p = real.join(file);
        if p.is_file() {
            let obs = observe(&p)?;
            groups.push(Group {
                name,
                suspicious: true,
                basis:
                    "internet scanners and brute force against an exposed server: sources with failures and no success",
                rows: kind(&obs, RecordKind::Source, &only_failed),
            });
        }
    }
    groups.retain(|g| !g.rows.is_empty());
    Ok(groups)
}
