//! The agent's TOML configuration (`bfp-agent run --config PATH`), every key
//! documented with its default, and the command-line flags that override it
//! ([`Flags`], merged in one place: [`Config::apply_flags`]). Precedence:
//! a flag, else the file's key, else the default. `deploy/bfp-agent.example.toml`
//! is the commented example; a test loads it and every other shipped config.

use std::path::{Path, PathBuf};

use bfp_common::wire;
use bfp_detect::detector::DetectConfig;
use bfp_logs::analyze::AnalyzerConfig;
use bfp_logs::LocalZone;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::respond::RespondConfig;

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
    /// for standard output; written `output = "PATH"` or as a table,
    /// `[output]` with `path = "PATH"`. With a `[collector]`, a file named
    /// here also gets every result (a local copy for Filebeat, Vector, ...)
    /// and `-` means no local copy. Default `-`.
    #[serde(default = "default_output", deserialize_with = "output_path")]
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
    /// The device's time zone, for log timestamps that do not carry an
    /// offset, daylight saving included: an IANA name found under
    /// `/usr/share/zoneinfo` (`Europe/Berlin`), a TZif file's path, or a
    /// POSIX `TZ` string (`CET-1CEST,M3.5.0,M10.5.0/3`). Default: the
    /// device's own (the `TZ` variable, else OpenWrt's `/etc/TZ`, else
    /// `/etc/localtime`, else UTC). `utc_offset_secs`, when set, overrides it
    /// with a fixed offset.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Forward results to a collector (the `[collector]` table; see
    /// [`CollectorConfig`] for its keys) through an on-disk spool in
    /// `state_dir/spool`, instead of writing them to `output`. Default: none.
    #[serde(default)]
    pub collector: Option<CollectorConfig>,
    /// The detectors beyond the model: per-user and per-device baselines
    /// (`[detect.baseline]`) and slow or distributed brute-force campaigns
    /// (`[detect.campaign]`); every key and its default is documented on
    /// `bfp_detect::baseline::BaselineConfig` and
    /// `bfp_detect::campaign::CampaignConfig`, and in the example config.
    /// Default: every default.
    #[serde(default)]
    pub detect: DetectConfig,
    /// The opt-in firewall response (the `[respond]` table; see
    /// [`RespondConfig`] for its keys). Default: off.
    #[serde(default)]
    pub respond: RespondConfig,
    /// What `learn` and `run`'s first start read beyond each source's own
    /// rotated logs and the journal (the `[learn]` table; see
    /// [`LearnConfig`] for its keys). Default: no wtmp, no lastlog.
    #[serde(default)]
    pub learn: LearnConfig,
    /// The logs to follow, as `[[source]]` tables. At least one.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
}

/// The `[learn]` table: the device's history beyond each source's rotated
/// logs, read by `bfp-agent learn` and by `run` on its first start alike
/// (so both learn the same baselines). The packaged configurations for
/// systemd hosts name `/var/log/wtmp` and `/var/log/lastlog`; the code's
/// defaults read neither (a log copied from another machine must not be
/// mixed with this machine's logins).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LearnConfig {
    /// Days of the journal's past read for `journald` sources. Default 30.
    /// `learn --journal-days` overrides it.
    pub journal_days: u64,
    /// A wtmp file (its rotated `wtmp.1`, `.gz`, read too): the logins they
    /// recorded before the first line of a file
    /// source's logs (its oldest rotated file, else the live file; all of
    /// them when both are empty) are learnt first, so sessions the logs
    /// still hold are not learnt twice. Default: none. `learn --wtmp`
    /// overrides it.
    pub wtmp: Option<PathBuf>,
    /// Layout of the wtmp records: `x86_64`, `aarch64` or `armv7`. Default:
    /// this machine's. `learn --utmp-arch` overrides it.
    pub utmp_arch: Option<bfp_logs::UtmpArch>,
    /// A lastlog file (each user's last login: time, terminal, host): a user
    /// of the account database that the history did not show, whose last
    /// login was before the logs begin, is learnt from it (one login, no
    /// length). Default: none.
    pub lastlog: Option<PathBuf>,
    /// The account database that names lastlog's uids. Default `/etc/passwd`.
    pub passwd: PathBuf,
}

impl Default for LearnConfig {
    fn default() -> LearnConfig {
        LearnConfig {
            journal_days: 30,
            wtmp: None,
            utmp_arch: None,
            lastlog: None,
            passwd: PathBuf::from("/etc/passwd"),
        }
    }
}

/// The `[collector]` table of the agent's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// Base URL of the collector, `http://` or `https://` (required), e.g.
    /// `http://127.0.0.1:5000`.
    pub url: String,
    /// Further collectors writing to the same database (PostgreSQL), tried
    /// in turn when the current one fails; the agent stays on whichever
    /// answers. Same forms as `url`. Default: none.
    #[serde(default)]
    pub failover_urls: Vec<String>,
    /// The device token printed by `bfp-collector device add NAME`
    /// (required).
    pub token: String,
    /// PEM file of the certificate authority (or the self-signed
    /// certificate) that the collector's HTTPS certificate must chain to.
    /// Default: none (the system's roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Size cap of the on-disk spool in bytes; past it the oldest results
    /// are dropped and counted. Default 16777216 (16 MiB).
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: u64,
    /// Most records per batch (1-10000). Default 500.
    #[serde(default = "default_batch_max_records")]
    pub batch_max_records: usize,
    /// Heartbeat interval when there is nothing to send, seconds. Default 30.
    #[serde(default = "default_heartbeat_secs")]
    pub heartbeat_secs: u64,
    /// How often to ask the collector for a newer model, seconds; 0 never.
    /// Default 300.
    #[serde(default = "default_model_check_secs")]
    pub model_check_secs: u64,
    /// Longest wait between retries, seconds (the wait doubles from 0.5 s up
    /// to this, with jitter). Default 60.
    #[serde(default = "default_backoff_max_secs")]
    pub backoff_max_secs: u64,
    /// Timeout of one request, seconds. Default 20.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Wait between retries after the collector refused the token (HTTP
    /// 401/403), seconds: only a new token helps, so no fast retries.
    /// Default 300.
    #[serde(default = "default_refused_retry_secs")]
    pub refused_retry_secs: u64,
}

/// `output = "PATH"` or `[output] path = "PATH"`.
fn output_path<'de, D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<PathBuf, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Output {
        Path(PathBuf),
        Table(OutputTable),
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct OutputTable {
        path: PathBuf,
    }
    match Output::deserialize(deserializer) {
        Ok(Output::Path(path)) | Ok(Output::Table(OutputTable { path })) => Ok(path),
        Err(_) => Err(serde::de::Error::custom("output must be a path, or a table with one key: path")),
    }
}

fn default_spool_max_bytes() -> u64 {
    16 << 20
}
fn default_batch_max_records() -> usize {
    500
}
fn default_heartbeat_secs() -> u64 {
    30
}
fn default_model_check_secs() -> u64 {
    300
}
fn default_backoff_max_secs() -> u64 {
    60
}
fn default_timeout_secs() -> u64 {
    20
}
fn default_refused_retry_secs() -> u64 {
    300
}

impl CollectorConfig {
    /// The defaults for `url` and `token` (quick start flags).
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> CollectorConfig {
        CollectorConfig {
            url: url.into(),
            failover_urls: Vec::new(),
            token: token.into(),
            ca_file: None,
            spool_max_bytes: default_spool_max_bytes(),
            batch_max_records: default_batch_max_records(),
            heartbeat_secs: default_heartbeat_secs(),
            model_check_secs: default_model_check_secs(),
            backoff_max_secs: default_backoff_max_secs(),
            timeout_secs: default_timeout_secs(),
            refused_retry_secs: default_refused_retry_secs(),
        }
    }

    /// `url`, then the failover URLs, in the order they are tried.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.url.as_str()).chain(self.failover_urls.iter().map(String::as_str))
    }

    /// Checks ranges and forms.
    pub fn validate(&self) -> Result<()> {
        let bad = |d: String| Err(Error::Forward(d));
        for url in self.urls() {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad(format!("url must start with http:// or https://, got {url:?}"));
            }
        }
        if self.token.trim().is_empty() {
            return bad("token is empty (bfp-collector device add NAME prints one)".into());
        }
        if !(1..=wire::MAX_RECORDS_PER_BATCH).contains(&self.batch_max_records) {
            return bad(format!("batch_max_records must be 1-{}", wire::MAX_RECORDS_PER_BATCH));
        }
        if self.spool_max_bytes < 32 << 10 {
            return bad("spool_max_bytes must be at least 32768".into());
        }
        if self.heartbeat_secs == 0 || self.backoff_max_secs == 0 || self.timeout_secs == 0 {
            return bad("heartbeat_secs, backoff_max_secs and timeout_secs must be > 0".into());
        }
        if self.refused_retry_secs == 0 {
            return bad("refused_retry_secs must be > 0".into());
        }
        Ok(())
    }
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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

/// Label of errors in settings given on the command line.
const FLAGS: &str = "<flags>";

/// Settings given on the command line (`bfp-agent run` and `scan`); each
/// overrides the file's key of the same name. `None` (or empty): not given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    /// `--follow PATH`: file sources added to the configured ones.
    pub follow: Vec<PathBuf>,
    /// `--state-dir DIR`.
    pub state_dir: Option<PathBuf>,
    /// `--output FILE|-`.
    pub output: Option<PathBuf>,
    /// `--model PATH`.
    pub model: Option<PathBuf>,
    /// `--tor-exit-list FILE`.
    pub tor_exit_list: Option<PathBuf>,
    /// `--poll-interval-ms MS`.
    pub poll_interval_ms: Option<u64>,
    /// `--commit-interval-ms MS`.
    pub commit_interval_ms: Option<u64>,
    /// `--source-window-secs SECS`.
    pub source_window_secs: Option<u64>,
    /// `--utc-offset-secs SECS`.
    pub utc_offset_secs: Option<i32>,
    /// `--time-zone ZONE`.
    pub time_zone: Option<String>,
    /// `--collector URL` (repeatable): the first is the `[collector]`
    /// table's `url`, the others its `failover_urls`.
    pub collector: Vec<String>,
    /// `--token TOKEN` (or `BFP_AGENT_TOKEN`): the `[collector]` table's `token`.
    pub token: Option<String>,
    /// `--ca-file PEM`: the `[collector]` table's `ca_file`.
    pub ca_file: Option<PathBuf>,
    /// `--spool-max-bytes BYTES`: the `[collector]` table's `spool_max_bytes`.
    pub spool_max_bytes: Option<u64>,
    /// `--dry-run`: the `[respond]` table's `dry_run`, and the response on.
    pub dry_run: bool,
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
            time_zone: None,
            collector: None,
            detect: DetectConfig::default(),
            respond: RespondConfig::default(),
            learn: LearnConfig::default(),
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

    /// The configuration `bfp-agent run` uses: the file at `path` (or, with
    /// no file, the defaults, which then need `--state-dir` so state never
    /// lands somewhere unintended), the flags over it, checked whole.
    pub fn for_run(path: Option<&Path>, flags: Flags) -> Result<Config> {
        if path.is_none() && flags.state_dir.is_none() {
            return Err(Error::Config {
                path: FLAGS.into(),
                detail: "give --config PATH, or --state-dir DIR with --follow PATH".into(),
            });
        }
        let mut config = Config::load_or_defaults(path)?;
        config.apply_flags(flags)?;
        config.validate(Path::new(FLAGS))?;
        Ok(config)
    }

    /// The configuration `bfp-agent scan` uses: as [`Config::for_run`], but
    /// the sources (scan reads the files it is given) and the state
    /// directory (scan keeps none) are not needed.
    pub fn for_scan(path: Option<&Path>, flags: Flags) -> Result<Config> {
        let mut config = Config::load_or_defaults(path)?;
        config.apply_flags(flags)?;
        config.validate_settings(Path::new(FLAGS))?;
        Ok(config)
    }

    fn load_or_defaults(path: Option<&Path>) -> Result<Config> {
        match path {
            Some(path) => {
                let config = Config::load(path)?;
                // The file's own mistakes are named with the file (its
                // sources may still come from --follow).
                config.validate_settings(path)?;
                config.validate_sources(path, false)?;
                Ok(config)
            }
            None => Ok(Config::empty()),
        }
    }

    /// Puts the flags given over the file's settings: the one place where
    /// flags and file meet. `--follow` adds sources; `--collector` with
    /// `--token` makes a `[collector]` table when the file has none; the
    /// other collector flags need one (from the file or `--collector`).
    pub fn apply_flags(&mut self, flags: Flags) -> Result<()> {
        let Flags {
            follow,
            state_dir,
            output,
            model,
            tor_exit_list,
            poll_interval_ms,
            commit_interval_ms,
            source_window_secs,
            utc_offset_secs,
            time_zone,
            collector,
            token,
            ca_file,
            spool_max_bytes,
            dry_run,
        } = flags;
        if dry_run {
            // Safe to turn on from the command line: it changes nothing.
            self.respond.enabled = true;
            self.respond.dry_run = true;
        }
        self.sources.extend(follow.into_iter().map(SourceConfig::file));
        let set = |slot: &mut PathBuf, value: Option<PathBuf>| {
            if let Some(value) = value {
                *slot = value;
            }
        };
        set(&mut self.state_dir, state_dir);
        set(&mut self.output, output);
        self.model = model.or(self.model.take());
        self.tor_exit_list = tor_exit_list.or(self.tor_exit_list.take());
        self.poll_interval_ms = poll_interval_ms.unwrap_or(self.poll_interval_ms);
        self.commit_interval_ms = commit_interval_ms.unwrap_or(self.commit_interval_ms);
        self.source_window_secs = source_window_secs.or(self.source_window_secs);
        self.utc_offset_secs = utc_offset_secs.or(self.utc_offset_secs);
        self.time_zone = time_zone.or(self.time_zone.take());
        let flag_error = |detail: &str| Error::Config { path: FLAGS.into(), detail: detail.into() };
        let mut urls = collector.into_iter();
        if let Some(url) = urls.next() {
            match &mut self.collector {
                Some(c) => c.url = url,
                None => {
                    let token = token.clone().ok_or_else(|| {
                        flag_error("--collector needs --token TOKEN (from bfp-collector device add NAME)")
                    })?;
                    self.collector = Some(CollectorConfig::new(url, token));
                }
            }
            if let Some(c) = &mut self.collector {
                c.failover_urls = urls.collect();
            }
        }
        match &mut self.collector {
            Some(c) => {
                c.token = token.unwrap_or(std::mem::take(&mut c.token));
                c.ca_file = ca_file.or(c.ca_file.take());
                c.spool_max_bytes = spool_max_bytes.unwrap_or(c.spool_max_bytes);
            }
            None if token.is_some() || ca_file.is_some() || spool_max_bytes.is_some() => {
                return Err(flag_error("--token, --ca-file and --spool-max-bytes need --collector URL"));
            }
            None => {}
        }
        Ok(())
    }

    /// The analyzer's settings: the Tor list (read now), the window length
    /// and the device's UTC offset; everything else keeps the parser's
    /// defaults.
    pub fn analyzer_config(&self) -> Result<AnalyzerConfig> {
        let mut config = AnalyzerConfig::default();
        if let Some(path) = &self.tor_exit_list {
            let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
            config.tor_exit_list = AnalyzerConfig::parse_tor_exit_list(&text)
                .map_err(|e| Error::Config { path: path.into(), detail: format!("tor exit list: {e}") })?;
        }
        if let Some(secs) = self.source_window_secs {
            config.source_window_secs = i64::try_from(secs).unwrap_or(i64::MAX);
        }
        let (zone, _) = self.local_zone()?;
        match zone {
            LocalZone::Fixed(offset) => config.utc_offset_secs = offset,
            rules => config.time_zone = Some(rules),
        }
        Ok(config)
    }

    /// The zone the logs' local times are read in, and where it came from:
    /// `utc_offset_secs` (a fixed override), else `time_zone`, else the
    /// device's own ([`LocalZone::detect`]; places naming a zone that cannot
    /// be read are warned about and skipped).
    pub fn local_zone(&self) -> Result<(LocalZone, String)> {
        if let Some(offset) = self.utc_offset_secs {
            return Ok((LocalZone::Fixed(offset), "utc_offset_secs".into()));
        }
        if let Some(spec) = &self.time_zone {
            let zone = LocalZone::parse(spec)
                .map_err(|e| Error::Config { path: FLAGS.into(), detail: format!("time_zone: {e}") })?;
            return Ok((zone, "time_zone".into()));
        }
        let found = LocalZone::detect(std::env::var("TZ").ok().as_deref());
        for problem in &found.problems {
            eprintln!("bfp-agent: warning: time zone: {problem}; skipped");
        }
        Ok((found.zone, found.origin))
    }

    /// Checks what serde cannot: ranges, required keys per kind, unique
    /// names, at least one source.
    pub fn validate(&self, path: &Path) -> Result<()> {
        self.validate_settings(path)?;
        self.validate_sources(path, true)
    }

    /// Required keys per kind, unique names, and (`at_least_one`) a source.
    fn validate_sources(&self, path: &Path, at_least_one: bool) -> Result<()> {
        let bad = |detail: String| Err(Error::Config { path: path.into(), detail });
        if at_least_one && self.sources.is_empty() {
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

    /// The checks of [`Config::validate`] that do not concern sources.
    pub fn validate_settings(&self, path: &Path) -> Result<()> {
        if let Some(collector) = &self.collector {
            collector.validate().map_err(|e| Error::Config { path: path.into(), detail: e.to_string() })?;
        }
        let bad = |detail: String| Err(Error::Config { path: path.into(), detail });
        if let Err(detail) = self.respond.validate() {
            return bad(detail);
        }
        if let Some(Err(e)) = self.time_zone.as_deref().map(LocalZone::parse) {
            return bad(format!("time_zone: {e}"));
        }
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
        // It starts as shipped: one source (the file and the journal both
        // enabled would count every event twice), no Tor list that may not
        // exist.
        assert_eq!(config.sources.len(), 1);
        assert_eq!(config.sources[0].kind, SourceKind::File);
        assert_eq!(config.tor_exit_list, None);
        // The commented journal source is valid once uncommented.
        let text = std::fs::read_to_string(&path).unwrap();
        let commented = &text[text.find("# [[source]]").expect("a commented journal source")..];
        let block: String = commented
            .lines()
            .filter(|l| !l.starts_with("# #"))
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        let journal = Config::parse(&block, &path).unwrap();
        journal.validate(&path).unwrap();
        assert_eq!(journal.sources[0].kind, SourceKind::Journald);
        assert!(text.contains("# tor_exit_list = "), "the Tor list is shown as an example");
    }

    #[test]
    fn every_shipped_config_loads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for file in ["deploy/bfp-agent.example.toml", "deploy/systemd/bfp-agent.toml", "deploy/openwrt/bfp-agent.toml"]
        {
            let path = root.join(file);
            Config::for_run(Some(&path), Flags::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }

    #[test]
    fn learn_settings_default_to_no_wtmp_and_the_systemd_config_names_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let example = Config::load(&root.join("deploy/bfp-agent.example.toml")).unwrap();
        assert_eq!(example.learn, LearnConfig::default(), "a value shown is not the default");
        assert_eq!((example.learn.wtmp, example.learn.lastlog), (None, None));
        let systemd = Config::load(&root.join("deploy/systemd/bfp-agent.toml")).unwrap();
        assert_eq!(systemd.learn.wtmp.as_deref(), Some(Path::new("/var/log/wtmp")));
        assert_eq!(systemd.learn.lastlog.as_deref(), Some(Path::new("/var/log/lastlog")));
        let path = Path::new("t.toml");
        let config = Config::parse("[learn]\nutmp_arch = \"armv7\"\njournal_days = 7\n", path).unwrap();
        assert_eq!((config.learn.utmp_arch, config.learn.journal_days), (Some(bfp_logs::UtmpArch::Armv7), 7));
        let typo = Config::parse("[learn]\nwtmpp = \"/var/log/wtmp\"\n", path).unwrap_err().to_string();
        assert!(typo.contains("wtmpp"), "{typo}");
    }

    #[test]
    fn the_example_documents_every_detector_setting_with_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/bfp-agent.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let config = Config::parse(&text, &path).unwrap();
        assert_eq!(config.detect, DetectConfig::default(), "a value shown is not the default");
        // Every key is written out (none left to a silent default).
        let shown: toml::Table = toml::from_str(&text).unwrap();
        let default = toml::Table::try_from(DetectConfig::default()).unwrap();
        for (name, value) in &default {
            match value.as_table() {
                Some(keys) => {
                    let listed = shown["detect"][name].as_table().unwrap();
                    for key in keys.keys() {
                        assert!(listed.contains_key(key), "[detect.{name}] does not show {key}");
                    }
                }
                None => {
                    assert!(shown["detect"].as_table().unwrap().contains_key(name), "[detect] does not show {name}")
                }
            }
        }
    }

    #[test]
    fn detect_settings_reach_the_config_and_typos_are_named() {
        let p = Path::new("t.toml");
        let text = "[detect.baseline]\nmax_users = 8\n[detect.campaign]\nslow_min_failures = 3\n";
        let config = Config::parse(text, p).unwrap();
        assert_eq!(config.detect.baseline.max_users, 8);
        assert_eq!(config.detect.baseline.min_sessions, DetectConfig::default().baseline.min_sessions);
        assert_eq!(config.detect.campaign.slow_min_failures, 3);
        let err = Config::parse("[detect.baseline]\nmax_user = 8\n", p).unwrap_err().to_string();
        assert!(err.contains("max_user"), "{err}");
    }

    /// A config file setting every key the flags can override.
    fn file_with_every_overridable_key(dir: &Path) -> PathBuf {
        let path = dir.join("agent.toml");
        let text = "state_dir = \"/file/state\"\noutput = \"/file/out\"\nmodel = \"/file/model\"\n\
                    tor_exit_list = \"/file/tor\"\npoll_interval_ms = 100\ncommit_interval_ms = 200\n\
                    source_window_secs = 300\nutc_offset_secs = 3600\n\
                    [collector]\nurl = \"http://file:1\"\ntoken = \"file-token\"\nca_file = \"/file/ca\"\n\
                    spool_max_bytes = 65536\n[[source]]\npath = \"/file/log\"\n";
        std::fs::write(&path, text).unwrap();
        path
    }

    fn every_flag() -> Flags {
        Flags {
            follow: vec!["/flag/log".into()],
            state_dir: Some("/flag/state".into()),
            output: Some("/flag/out".into()),
            model: Some("/flag/model".into()),
            tor_exit_list: Some("/flag/tor".into()),
            poll_interval_ms: Some(40),
            commit_interval_ms: Some(50),
            source_window_secs: Some(60),
            utc_offset_secs: Some(-7200),
            time_zone: Some("Europe/Berlin".into()),
            collector: vec!["https://flag:2".into()],
            token: Some("flag-token".into()),
            ca_file: Some("/flag/ca".into()),
            spool_max_bytes: Some(1 << 20),
            dry_run: true,
        }
    }

    #[test]
    fn a_flag_wins_over_the_file() {
        let dir = crate::testutil::tempdir("flags-win");
        let config = Config::for_run(Some(&file_with_every_overridable_key(&dir)), every_flag()).unwrap();
        assert_eq!(config.state_dir, PathBuf::from("/flag/state"));
        assert_eq!(config.output, PathBuf::from("/flag/out"));
        assert_eq!(config.model, Some("/flag/model".into()));
        assert_eq!(config.tor_exit_list, Some("/flag/tor".into()));
        assert_eq!((config.poll_interval_ms, config.commit_interval_ms), (40, 50));
        assert_eq!((config.source_window_secs, config.utc_offset_secs), (Some(60), Some(-7200)));
        let c = config.collector.unwrap();
        assert_eq!((c.url.as_str(), c.token.as_str()), ("https://flag:2", "flag-token"));
        assert_eq!((c.ca_file, c.spool_max_bytes), (Some("/flag/ca".into()), 1 << 20));
        assert!(config.respond.enabled && config.respond.dry_run, "--dry-run turns a dry response on");
        // --follow adds to the file's sources rather than replacing them.
        let paths: Vec<_> = config.sources.iter().filter_map(|s| s.path.clone()).collect();
        assert_eq!(paths, vec![PathBuf::from("/file/log"), PathBuf::from("/flag/log")]);
    }

    #[test]
    fn the_file_wins_over_the_default_when_no_flag_is_given() {
        let dir = crate::testutil::tempdir("file-wins");
        let config = Config::for_run(Some(&file_with_every_overridable_key(&dir)), Flags::default()).unwrap();
        assert_eq!(config.state_dir, PathBuf::from("/file/state"));
        assert_eq!(config.output, PathBuf::from("/file/out"));
        assert_eq!(config.model, Some("/file/model".into()));
        assert_eq!(config.tor_exit_list, Some("/file/tor".into()));
        assert_eq!((config.poll_interval_ms, config.commit_interval_ms), (100, 200));
        assert_eq!((config.source_window_secs, config.utc_offset_secs), (Some(300), Some(3600)));
        let c = config.collector.unwrap();
        assert_eq!((c.url.as_str(), c.token.as_str()), ("http://file:1", "file-token"));
        assert_eq!((c.ca_file, c.spool_max_bytes), (Some("/file/ca".into()), 65536));
    }

    #[test]
    fn the_default_holds_when_neither_file_nor_flag_sets_a_key() {
        let flags = Flags { follow: vec!["/a".into()], state_dir: Some("/s".into()), ..Flags::default() };
        let config = Config::for_run(None, flags).unwrap();
        let default = Config::empty();
        assert_eq!(config.output, default.output);
        assert_eq!((config.model, config.tor_exit_list), (None, None));
        assert_eq!(config.poll_interval_ms, default.poll_interval_ms);
        assert_eq!(config.commit_interval_ms, default.commit_interval_ms);
        assert_eq!((config.source_window_secs, config.utc_offset_secs), (None, None));
        assert_eq!(config.collector, None);
        assert_eq!(config.detect, DetectConfig::default());
        // A collector made from flags alone gets the table's defaults.
        let flags = Flags {
            collector: vec!["http://127.0.0.1:5000".into()],
            token: Some("t".into()),
            follow: vec!["/a".into()],
            state_dir: Some("/s".into()),
            ..Flags::default()
        };
        let config = Config::for_run(None, flags).unwrap();
        assert_eq!(config.collector, Some(CollectorConfig::new("http://127.0.0.1:5000", "t")));
    }

    #[test]
    fn a_flag_overrides_one_key_of_the_collector_table_and_keeps_the_others() {
        let dir = crate::testutil::tempdir("flags-collector");
        let flags = Flags { token: Some("rotated".into()), ..Flags::default() };
        let config = Config::for_run(Some(&file_with_every_overridable_key(&dir)), flags).unwrap();
        let c = config.collector.unwrap();
        assert_eq!((c.url.as_str(), c.token.as_str()), ("http://file:1", "rotated"));
        assert_eq!(c.spool_max_bytes, 65536);
    }

    #[test]
    fn several_collectors_come_from_repeated_flags_or_the_table_and_are_tried_in_order() {
        let flags = Flags {
            collector: vec!["http://a:5000".into(), "https://b:5000".into(), "http://c:5000".into()],
            token: Some("t".into()),
            follow: vec!["/a".into()],
            state_dir: Some("/s".into()),
            ..Flags::default()
        };
        let c = Config::for_run(None, flags).unwrap().collector.unwrap();
        assert_eq!(c.urls().collect::<Vec<_>>(), ["http://a:5000", "https://b:5000", "http://c:5000"]);

        let dir = crate::testutil::tempdir("failover-urls");
        let path = dir.join("agent.toml");
        let table = "state_dir = \"/s\"\n[[source]]\nkind = \"file\"\npath = \"/a\"\n[collector]\n\
                     url = \"http://a:5000\"\nfailover_urls = [\"http://b:5000\"]\ntoken = \"t\"\n";
        std::fs::write(&path, table).unwrap();
        let c = Config::for_run(Some(&path), Flags::default()).unwrap().collector.unwrap();
        assert_eq!(c.urls().collect::<Vec<_>>(), ["http://a:5000", "http://b:5000"]);

        let bad = CollectorConfig { failover_urls: vec!["ftp://b".into()], ..CollectorConfig::new("http://a", "t") };
        assert!(bad.validate().unwrap_err().to_string().contains("\"ftp://b\""));
    }

    #[test]
    fn flags_that_cannot_stand_alone_are_refused() {
        let run = |flags: Flags| Config::for_run(None, flags).unwrap_err().to_string();
        let base = Flags { follow: vec!["/a".into()], state_dir: Some("/s".into()), ..Flags::default() };
        assert!(run(Flags { follow: vec!["/a".into()], ..Flags::default() }).contains("--state-dir"));
        let no_token = Flags { collector: vec!["http://x".into()], ..base.clone() };
        assert!(run(no_token).contains("--collector needs --token"));
        let no_collector = Flags { token: Some("t".into()), ..base.clone() };
        assert!(run(no_collector).contains("need --collector"));
        let bad_value = Flags { poll_interval_ms: Some(1), ..base };
        assert!(run(bad_value).contains("poll_interval_ms"));
    }

    #[test]
    fn a_mistake_in_the_file_is_named_with_the_file_and_one_in_a_flag_with_flags() {
        let dir = crate::testutil::tempdir("config-origin");
        let path = dir.join("agent.toml");
        std::fs::write(&path, "[[source]]\npath = \"/a\"\n[[source]]\npath = \"/a\"\n").unwrap();
        let err = Config::for_run(Some(&path), Flags::default()).unwrap_err().to_string();
        assert!(err.contains("agent.toml") && err.contains("used twice"), "{err}");
        std::fs::write(&path, "[[source]]\npath = \"/a\"\n").unwrap();
        let flags = Flags { follow: vec!["/a".into()], ..Flags::default() };
        let err = Config::for_run(Some(&path), flags).unwrap_err().to_string();
        assert!(err.contains("<flags>") && err.contains("used twice"), "{err}");
    }

    #[test]
    fn scan_takes_the_analysis_settings_without_sources() {
        let dir = crate::testutil::tempdir("scan-config");
        let path = dir.join("scan.toml");
        std::fs::write(&path, "utc_offset_secs = 3600\n[detect.baseline]\nmin_sessions = 9\n").unwrap();
        let flags = Flags { source_window_secs: Some(120), ..Flags::default() };
        let config = Config::for_scan(Some(&path), flags).unwrap();
        assert_eq!(config.detect.baseline.min_sessions, 9);
        let analyzer = config.analyzer_config().unwrap();
        assert_eq!((analyzer.utc_offset_secs, analyzer.source_window_secs), (3600, 120));
        assert!(Config::for_scan(None, Flags::default()).is_ok(), "no file: the defaults");
    }

    #[test]
    fn collector_mistakes_are_named() {
        assert!(CollectorConfig::new("http://127.0.0.1:5000", "bfp_x").validate().is_ok());
        assert!(CollectorConfig::new("ftp://x", "t").validate().unwrap_err().to_string().contains("url"));
        assert!(CollectorConfig::new("http://x", " ").validate().unwrap_err().to_string().contains("token"));
        let mut c = CollectorConfig::new("http://x", "t");
        c.batch_max_records = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn the_documented_collector_tables_parse_once_uncommented() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for file in ["deploy/bfp-agent.example.toml", "deploy/systemd/bfp-agent.toml", "deploy/openwrt/bfp-agent.toml"]
        {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            // The commented example: "# [collector]" then "# key = value"
            // lines ("# #" lines are comments about them).
            let mut table = String::new();
            let mut inside = false;
            for line in text.lines() {
                if line.trim() == "# [collector]" {
                    inside = true;
                } else if inside && (line.trim().is_empty() || !line.starts_with("# ")) {
                    break;
                }
                if inside && !line.starts_with("# #") {
                    table.push_str(line.trim_start_matches("# "));
                    table.push('\n');
                }
            }
            assert!(table.contains("url"), "{file}: no commented [collector] table");
            let toml = format!("{table}\n[[source]]\npath = \"/var/log/auth.log\"\n");
            let config = Config::parse(&toml, Path::new(file)).unwrap();
            config.validate(Path::new(file)).unwrap();
            assert!(config.collector.is_some(), "{file}");
        }
    }

    #[test]
    fn the_output_is_a_path_or_an_output_table_beside_the_collector() {
        let p = Path::new("t.toml");
        let plain = Config::parse("output = \"/var/log/bfp.jsonl\"\n", p).unwrap();
        let table =
            "[output]\npath = \"/var/log/bfp.jsonl\"\n[collector]\nurl = \"http://127.0.0.1:1\"\ntoken = \"t\"\n";
        let table = Config::parse(table, p).unwrap();
        assert_eq!(plain.output, PathBuf::from("/var/log/bfp.jsonl"));
        assert_eq!(table.output, plain.output);
        assert!(table.collector.is_some());
        let err = Config::parse("[output]\nfile = \"/x\"\n", p).unwrap_err().to_string();
        assert!(err.contains("output"), "{err}");
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

#[cfg(test)]
mod respond_tests {
    use super::*;

    #[test]
    fn the_respond_table_is_off_by_default_and_its_mistakes_are_named_with_the_file() {
        let p = Path::new("agent.toml");
        let source = "[[source]]\npath = \"/a\"\n";
        let config = Config::parse(source, p).unwrap();
        assert_eq!(config.respond, RespondConfig::default());
        assert!(!config.respond.enabled);
        let text = format!("{source}[respond]\nenabled = true\nblock_secs = 60\nallow = [\"192.0.2.0/24\"]\n");
        let config = Config::parse(&text, p).unwrap();
        config.validate(p).unwrap();
        assert_eq!((config.respond.block_secs, config.respond.allow.len()), (60, 1));
        let unknown = format!("{source}[respond]\nenabled = true\nblock_sec = 60\n");
        let err = Config::parse(&unknown, p).unwrap_err().to_string();
        assert!(err.contains("agent.toml") && err.contains("block_sec"), "{err}");
        let malformed = format!("{source}[respond]\nenabled = true\nallow = [\"10.0.0.0/8\", \"10.1.2/24\"]\n");
        let err = Config::parse(&malformed, p).unwrap().validate(p).unwrap_err().to_string();
        assert!(err.contains("agent.toml") && err.contains("allow") && err.contains("10.1.2/24"), "{err}");
        let firewall = format!("{source}[respond]\nfirewall = \"pf\"\n");
        assert!(Config::parse(&firewall, p).unwrap_err().to_string().contains("pf"));
    }
}

#[cfg(test)]
mod respond_example_tests {
    use super::*;

    #[test]
    fn the_example_shows_every_respond_setting_at_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/bfp-agent.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(Config::parse(&text, &path).unwrap().respond, RespondConfig::default());
        let shown: toml::Table = toml::from_str(&text).unwrap();
        let listed = shown["respond"].as_table().expect("a [respond] table");
        for key in [
            "enabled",
            "dry_run",
            "block_secs",
            "allow",
            "firewall",
            "min_failed_logins",
            "min_confidence",
            "max_blocks",
            "decisions",
        ] {
            assert!(listed.contains_key(key), "[respond] does not show {key}");
        }
        assert_eq!(listed.len(), 9, "a key the test does not know: {listed:?}");
    }

    #[test]
    fn the_commented_respond_tables_of_the_shipped_configs_parse_once_uncommented() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for file in ["deploy/systemd/bfp-agent.toml", "deploy/openwrt/bfp-agent.toml"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let table: String = text
                .lines()
                .skip_while(|l| l.trim() != "# [respond]")
                .take_while(|l| l.starts_with("# "))
                .map(|l| format!("{}\n", l.trim_start_matches("# ")))
                .collect();
            let config = Config::parse(&format!("{table}[[source]]\npath = \"/a\"\n"), Path::new(file)).unwrap();
            config.validate(Path::new(file)).unwrap();
            assert!(config.respond.enabled && !config.respond.allow.is_empty(), "{file}");
        }
    }
}
