//! The agent's TOML configuration (`bfp-agent run --config PATH`), every key
//! documented with its default. `deploy/bfp-agent.example.toml` is the
//! commented example; a test parses it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory of the checkpoint (log offsets, journald cursors, output
    /// position). Created if missing. Default `/var/lib/bfp-agent`.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// A compact model artifact to use instead of the one built into the
    /// binary. Default: none (the embedded model).
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// A file of Tor exit addresses (one per line, `#` comments, or the
    /// `ExitAddress IP ...` lines of the Tor project's exit list). Sessions
    /// from these addresses get protocol TOR. Default: none.
    #[serde(default)]
    pub tor_exit_list: Option<PathBuf>,
    /// Where results go, as JSON lines: a file path (appended to), or `-`
    /// for standard output. Default `-`.
    #[serde(default = "default_output")]
    pub output: PathBuf,
    /// How often the sources are checked for new lines, rotation and
    /// truncation, in milliseconds (10–60000). Default 500.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Least time between two checkpoints, in milliseconds (0–600000): each
    /// costs three fsyncs, which flash storage pays in wear. Results wait in
    /// memory at most this long (or until 256 are pending); a crash in
    /// between only means the lines since the last checkpoint are read
    /// again. Default 1000.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// Length of a source (attacking address) window in seconds: attempts
    /// of one address are aggregated over this long. Default: the parser's
    /// own default.
    #[serde(default)]
    pub source_window_secs: Option<u64>,
    /// The device's offset from UTC in seconds (e.g. 3600 for CET), for log
    /// timestamps that do not carry one: login hours are local hours.
    /// Default 0 (UTC).
    #[serde(default)]
    pub utc_offset_secs: Option<i32>,
    /// Forward results to a collector (the `[collector]` table; see
    /// `crate::forward::CollectorConfig` for its keys) through an on-disk
    /// spool in `state_dir/spool`, instead of writing them to `output`.
    /// Default: none.
    #[serde(default)]
    pub collector: Option<crate::forward::CollectorConfig>,
    /// The logs to follow, as `[[source]]` tables. At least one.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
}

/// One followed log (`[[source]]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `file` (a log file, followed across rotation) or `journald` (the
    /// systemd journal through `journalctl -o json -f`). Default `file`.
    #[serde(default)]
    pub kind: SourceKind,
    /// The log file (kind `file` only; required there).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The file's format: `auto` (detected from its first line), `syslog`
    /// (RFC 3164/5424, BusyBox logread), `cowrie` (honeypot JSON) or
    /// `journald` (`journalctl -o json` lines). Default `auto`.
    #[serde(default)]
    pub format: FormatName,
    /// Name of this source in the checkpoint and in results. Must be unique.
    /// Default: the path, or `journald`.
    #[serde(default)]
    pub name: Option<String>,
    /// Extra `journalctl` arguments (kind `journald` only), e.g.
    /// `["_COMM=sshd", "_COMM=sudo"]`. Default: none (the whole journal).
    #[serde(default)]
    pub journalctl_args: Vec<String>,
    /// The `journalctl` program (kind `journald` only). Default `journalctl`
    /// (looked up on `PATH`).
    #[serde(default = "default_journalctl")]
    pub journalctl: PathBuf,
    /// After a restart, how much of the journal before the saved cursor is
    /// re-read (seconds) to rebuild the sessions open at the restart; 0
    /// turns it off (kind `journald` only). Default 86400 (a day).
    #[serde(default = "default_journal_replay_secs")]
    pub journal_replay_secs: u64,
}

/// What kind of log a source is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A log file.
    #[default]
    File,
    /// The systemd journal.
    Journald,
}

/// A text log format name as written in the config and on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FormatName {
    /// Detected from the first line.
    #[default]
    Auto,
    /// Syslog (RFC 3164/5424, BusyBox logread).
    Syslog,
    /// Cowrie honeypot JSON lines.
    Cowrie,
    /// `journalctl -o json` lines.
    Journald,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/bfp-agent")
}
fn default_output() -> PathBuf {
    PathBuf::from("-")
}
fn default_commit_interval_ms() -> u64 {
    1000
}
fn default_poll_interval_ms() -> u64 {
    500
}
fn default_journal_replay_secs() -> u64 {
    86_400
}
fn default_journalctl() -> PathBuf {
    PathBuf::from("journalctl")
}

impl SourceConfig {
    /// A file source with defaults (quick-start `--follow PATH`).
    pub fn file(path: impl Into<PathBuf>) -> SourceConfig {
        SourceConfig {
            kind: SourceKind::File,
            path: Some(path.into()),
            format: FormatName::Auto,
            name: None,
            journalctl_args: Vec::new(),
            journalctl: default_journalctl(),
            journal_replay_secs: default_journal_replay_secs(),
        }
    }

    /// The source's unique name (checkpoint key).
    pub fn key(&self) -> String {
        match (&self.name, &self.path) {
            (Some(name), _) => name.clone(),
            (None, Some(path)) => path.display().to_string(),
            (None, None) => "journald".to_string(),
        }
    }
}

impl Config {
    /// A configuration with every default and no sources.
    pub fn empty() -> Config {
        Config {
            state_dir: default_state_dir(),
            model: None,
            tor_exit_list: None,
            output: default_output(),
            poll_interval_ms: default_poll_interval_ms(),
            commit_interval_ms: default_commit_interval_ms(),
            source_window_secs: None,
            utc_offset_secs: None,
            collector: None,
            sources: Vec::new(),
        }
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        Config::parse(&text, path)
    }

    /// Parses and checks config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let config: Config =
            toml::from_str(text).map_err(|e| Error::Config { path: path.into(), detail: e.to_string() })?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges, required keys per kind, unique
    /// names, at least one source.
    pub fn validate(&self, path: &Path) -> Result<()> {
        if let Some(collector) = &self.collector {
            collector.validate().map_err(|e| Error::Config { path: path.into(), detail: e.to_string() })?;
        }
        let bad = |detail: String| Err(Error::Config { path: path.into(), detail });
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return bad(format!("poll_interval_ms must be 10-60000, got {}", self.poll_interval_ms));
        }
        if self.commit_interval_ms > 600_000 {
            return bad(format!("commit_interval_ms must be 0-600000, got {}", self.commit_interval_ms));
        }
        if self.source_window_secs == Some(0) {
            return bad("source_window_secs must be > 0".into());
        }
        if self.utc_offset_secs.is_some_and(|o| o.abs() > 14 * 3600) {
            return bad(format!("utc_offset_secs must be within ±50400, got {:?}", self.utc_offset_secs));
        }
        if self.sources.is_empty() {
            return bad("no sources: add a [[source]] table (or use --follow PATH)".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, source) in self.sources.iter().enumerate() {
            match (source.kind, &source.path) {
                (SourceKind::File, None) => return bad(format!("source {}: kind \"file\" needs a path", i + 1)),
                (SourceKind::Journald, Some(_)) => {
                    return bad(format!("source {}: kind \"journald\" takes no path", i + 1))
                }
                _ => {}
            }
            if source.kind == SourceKind::File && !source.journalctl_args.is_empty() {
                return bad(format!("source {}: journalctl_args only apply to kind \"journald\"", i + 1));
            }
            if !names.insert(source.key()) {
                return bad(format!("source {}: name {:?} is used twice (set `name`)", i + 1, source.key()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_a_minimal_file() {
        let config = Config::parse("[[source]]\npath = \"/var/log/auth.log\"\n", Path::new("t.toml")).unwrap();
        config.validate(Path::new("t.toml")).unwrap();
        assert_eq!(config.state_dir, PathBuf::from("/var/lib/bfp-agent"));
        assert_eq!(config.output, PathBuf::from("-"));
        assert_eq!(config.poll_interval_ms, 500);
        assert_eq!(config.commit_interval_ms, 1000);
        assert_eq!(config.model, None);
        assert_eq!(config.sources, vec![SourceConfig::file("/var/log/auth.log")]);
        assert_eq!(config.sources[0].key(), "/var/log/auth.log");
    }

    #[test]
    fn the_deploy_example_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/bfp-agent.example.toml");
        let config = Config::load(&path).unwrap();
        config.validate(&path).unwrap();
        assert!(config.sources.iter().any(|s| s.kind == SourceKind::Journald));
        assert!(config.sources.iter().any(|s| s.kind == SourceKind::File));
        assert!(config.tor_exit_list.is_some());
    }

    #[test]
    fn mistakes_are_named() {
        let p = Path::new("t.toml");
        let cases = [
            ("[[source]]\npath = \"/a\"\nformat = \"xml\"\n", "format"),
            ("stat_dir = \"/x\"\n[[source]]\npath = \"/a\"\n", "stat_dir"),
            ("poll_interval_ms = \"fast\"\n", "poll_interval_ms"),
        ];
        for (text, needle) in cases {
            let err = Config::parse(text, p).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?} -> {err}");
        }
        let invalid = [
            ("poll_interval_ms = 1\n[[source]]\npath = \"/a\"\n", "poll_interval_ms"),
            ("", "no sources"),
            ("[[source]]\nkind = \"file\"\n", "needs a path"),
            ("[[source]]\nkind = \"journald\"\npath = \"/a\"\n", "takes no path"),
            ("[[source]]\npath = \"/a\"\n[[source]]\npath = \"/a\"\n", "used twice"),
        ];
        for (text, needle) in invalid {
            let err = Config::parse(text, p).unwrap().validate(p).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?} -> {err}");
        }
    }
}
