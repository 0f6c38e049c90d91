//! The command line, parsed with `lexopt` and described by hand.
//!
//! Why not clap, as the collector and the models use: on the agent's 3 MB
//! budget clap's builder, its derive code and its help renderer cost about
//! 190 KB of text on x86_64 (`cargo bloat`, docs/benchmarks.md "Agent binary
//! sizes"), more than the whole log reader. `lexopt` only splits the
//! arguments; the help texts below are written once, in the shape clap
//! prints. Usage mistakes exit 2, as before.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use bfp_agent::config::Flags;
use bfp_agent::scan::OutputFormat;
use bfp_logs::analyze::UtmpArch;
use lexopt::prelude::*;

const DEFAULT_CONFIG: &str = "/etc/bfp-agent/bfp-agent.toml";

const ABOUT: &str = "Behavioural fingerprints from the device's own auth logs, scored on the device.";

const MAIN_HELP: &str = "\
Usage: bfp-agent <COMMAND>

Commands:
  scan   Analyse log files offline and print the scored fingerprints
  check  Check a configuration before running it (exit 0 ready, 1 a problem)
  learn  Learn the baselines from the device's history before judging
  run    Follow logs and score as lines arrive (results as JSON lines)
  help   Print this message or the help of the given command

Options:
  -h, --help     Print help
  -V, --version  Print version

Examples:
  bfp-agent scan /var/log/auth.log              score a log once, JSON lines
  bfp-agent scan --format table auth.log wtmp   the same as a table
  bfp-agent check                               is /etc/bfp-agent/bfp-agent.toml ready?
  bfp-agent learn                               baselines from rotated logs and the journal
  bfp-agent run --config /etc/bfp-agent/bfp-agent.toml
  bfp-agent run --state-dir /tmp/st --follow /var/log/auth.log --output -

Exit status: 0 success; 1 a problem (named in the output); 2 a usage mistake.
Every TOML key and its default: deploy/bfp-agent.example.toml.
";

const ANALYSIS_HELP: &str = "      --tor-exit-list <FILE>
          Tor exit list (sessions from these addresses get protocol TOR)
      --model <PATH>
          A model artifact instead of the embedded one
      --source-window-secs <SECS>
          Source window length in seconds (default: the parser's)
      --utc-offset-secs <SECS>
          A fixed offset from UTC in seconds for timestamps without one; overrides the zone
      --time-zone <ZONE>
          The logs' time zone, daylight saving included: a name (Europe/Berlin), a TZif file or a
          POSIX TZ string (default: TZ, else /etc/TZ, else /etc/localtime, else UTC)
";

const SCAN_HELP: &str = "\
Analyse log files offline and print the scored fingerprints.

Usage: bfp-agent scan [OPTIONS] <FILE>...

Arguments:
  <FILE>...
          Log files; `-` reads standard input

Options:
      --config <PATH>
          A TOML configuration whose analysis settings (Tor list, windows, UTC
          offset, model, [detect]) apply; its sources are not read
      --format <FORMAT>
          Output: one JSON object per fingerprint then a summary, or a table
          [default: jsonl] [possible values: jsonl, table]
      --log-format <LOG_FORMAT>
          Log format of every file (default: detected per file)
          [possible values: syslog, cowrie, journald, utmp]
      --utmp-arch <ARCH>
          Layout of utmp/wtmp/btmp records (default: this machine's)
          [possible values: x86_64, aarch64, armv7]
";

const CHECK_HELP: &str = "\
Check a configuration before running it (exit 0 ready, 1 a problem).

Checks the config, each source (present and readable), the Tor list, the
model, the state directory (writable), and the collector (reachable, the
device token accepted). A missing log file is a warning; exit 0 means ready
(warnings allowed), 1 a problem.

Usage: bfp-agent check [OPTIONS]

Options:
      --config <PATH>
          The TOML configuration to check [default: /etc/bfp-agent/bfp-agent.toml]
  -h, --help
          Print help
";

const LEARN_HELP: &str = "\
Learn the baselines from the device's history before judging.

Reads the rotated logs beside each file source (`auth.log.1`, `auth.log.2.gz`,
`secure-YYYYMMDD`) and the journal's past, oldest first, reporting nothing;
with the config's [learn] table also the logins wtmp recorded before the logs
begin and users' last logins from lastlog. `run` does the same on its first
start. Sources already followed are not re-learnt. Prints what it learnt per
source.

Usage: bfp-agent learn [OPTIONS]

Options:
      --config <PATH>
          The TOML configuration (its sources and state directory)
          [default: /etc/bfp-agent/bfp-agent.toml]
      --journal-days <DAYS>
          How many days of the journal's past to read [default: the config's
          [learn] journal_days, 30]
      --wtmp <FILE>
          Also learn the logins this wtmp (e.g. /var/log/wtmp) recorded before
          the logs begin [default: the config's [learn] wtmp, none]
      --utmp-arch <ARCH>
          Layout of the wtmp records (default: this machine's)
          [possible values: x86_64, aarch64, armv7]
      --progress
          A progress line per megabyte read on standard error, also when it is
          not a terminal (on a terminal one line is rewritten anyway)
  -h, --help
          Print help
";

const RUN_HELP: &str = "\
Follow logs and score as lines arrive (results as JSON lines).

Usage: bfp-agent run [OPTIONS]

Options:
      --config <PATH>
          The TOML configuration (see deploy/bfp-agent.example.toml)
      --follow <PATH>
          Follow this log file (repeatable; added to the configured sources)
      --state-dir <DIR>
          Checkpoint directory (overrides the config's)
      --output <FILE|->
          Results file, or `-` for stdout (overrides the config's)
      --poll-interval-ms <MS>
          Poll interval in milliseconds (overrides the config's)
      --commit-interval-ms <MS>
          Least time between checkpoints in milliseconds (overrides the config's)
      --collector <URL>
          Forward results to this collector (http:// or https:// base URL)
          through the on-disk spool, instead of writing them to the output.
          Repeatable: further collectors on the same database, tried in turn
          when the current one fails
      --token <TOKEN>
          The device token from `bfp-collector device add NAME`
          [env: BFP_AGENT_TOKEN]
      --ca-file <PEM>
          Trust only this CA (or self-signed certificate) PEM for an https collector
      --spool-max-bytes <BYTES>
          Spool size cap in bytes (overrides the config's)
      --dry-run
          Turn the firewall response on, but only log what it would block (the
          [respond] table's dry_run)
";

/// What the command line asks for.
pub enum Parsed {
    /// Run this command (boxed: `run`'s flags dwarf a help text).
    Command(Box<Command>),
    /// Print this (help, version) on stdout and exit 0.
    Print(String),
}

/// The subcommands and their arguments.
pub enum Command {
    Scan {
        config: Option<PathBuf>,
        format: OutputFormat,
        log_format: Option<ScanLogFormat>,
        utmp_arch: Option<Arch>,
        analysis: Flags,
        files: Vec<PathBuf>,
    },
    Check {
        config: PathBuf,
    },
    Learn {
        config: PathBuf,
        journal_days: Option<u64>,
        wtmp: Option<PathBuf>,
        utmp_arch: Option<Arch>,
        progress: bool,
    },
    /// `run`'s flags are the config overrides themselves.
    Run {
        config: Option<PathBuf>,
        flags: Flags,
    },
}

#[derive(Clone, Copy)]
pub enum ScanLogFormat {
    Syslog,
    Cowrie,
    Journald,
    Utmp,
}

#[derive(Clone, Copy)]
pub enum Arch {
    X86_64,
    Aarch64,
    Armv7,
}

impl Arch {
    pub fn layout(self) -> UtmpArch {
        match self {
            Arch::X86_64 => UtmpArch::X86_64,
            Arch::Aarch64 => UtmpArch::Aarch64,
            Arch::Armv7 => UtmpArch::Armv7,
        }
    }
}

/// A usage mistake: what was wrong and where to read more.
#[derive(Debug)]
pub struct UsageError {
    message: String,
    command: Option<&'static str>,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bfp-agent: error: {}\n\n", self.message)?;
        match self.command {
            Some(name) => write!(f, "For more information, try 'bfp-agent {name} --help'."),
            None => write!(f, "For more information, try 'bfp-agent --help'."),
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, UsageError> {
    let mut parser = lexopt::Parser::from_args(args);
    let usage = |e: lexopt::Error| UsageError { message: e.to_string(), command: None };
    let name = match parser.next().map_err(usage)? {
        None => return Err(UsageError { message: "a command is required".into(), command: None }),
        Some(Short('h') | Long("help")) => return Ok(Parsed::Print(main_help())),
        Some(Short('V') | Long("version")) => return Ok(Parsed::Print(version())),
        Some(Value(name)) => name.string().map_err(usage)?,
        Some(other) => return Err(usage(other.unexpected())),
    };
    match name.as_str() {
        "scan" => scan(&mut parser),
        "check" => check(&mut parser),
        "learn" => learn(&mut parser),
        "run" => run(&mut parser),
        "help" => help(&mut parser),
        other => Err(UsageError { message: format!("unrecognized subcommand '{other}'"), command: None }),
    }
}

fn version() -> String {
    format!("bfp-agent {}\n", env!("CARGO_PKG_VERSION"))
}

fn main_help() -> String {
    format!("{ABOUT}\n\n{MAIN_HELP}")
}

fn command_help(name: &str) -> Option<String> {
    Some(match name {
        "scan" => format!("{SCAN_HELP}{ANALYSIS_HELP}  -h, --help\n          Print help\n"),
        "check" => CHECK_HELP.to_owned(),
        "learn" => LEARN_HELP.to_owned(),
        "run" => format!("{RUN_HELP}{ANALYSIS_HELP}  -h, --help\n          Print help\n"),
        _ => return None,
    })
}

fn help(parser: &mut lexopt::Parser) -> Result<Parsed, UsageError> {
    let fail = |e: lexopt::Error| UsageError { message: e.to_string(), command: None };
    match parser.next().map_err(fail)? {
        None => Ok(Parsed::Print(main_help())),
        Some(Value(name)) => {
            let name = name.string().map_err(fail)?;
            command_help(&name)
                .map(Parsed::Print)
                .ok_or_else(|| UsageError { message: format!("unrecognized subcommand '{name}'"), command: None })
        }
        Some(other) => Err(fail(other.unexpected())),
    }
}

/// Reads one option's value as `T`, naming the option when it does not parse.
fn value<T: FromStr>(parser: &mut lexopt::Parser, option: &str) -> Result<T, lexopt::Error> {
    let raw = parser.value()?;
    let text = raw.string()?;
    text.parse().map_err(|_| lexopt::Error::Custom(format!("invalid value '{text}' for '--{option}'").into()))
}

/// Reads one option's value as one of `choices`, naming them when it is none.
fn choice<T: Copy>(parser: &mut lexopt::Parser, option: &str, choices: &[(&str, T)]) -> Result<T, lexopt::Error> {
    let text = parser.value()?.string()?;
    choices.iter().find(|(name, _)| *name == text).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        lexopt::Error::Custom(
            format!("invalid value '{text}' for '--{option}' (possible values: {})", names.join(", ")).into(),
        )
    })
}

const ARCHES: &[(&str, Arch)] = &[("x86_64", Arch::X86_64), ("aarch64", Arch::Aarch64), ("armv7", Arch::Armv7)];

/// The options `scan` and `run` share; anything else is unexpected.
fn analysis_option(parser: &mut lexopt::Parser, option: &str, flags: &mut Flags) -> Result<(), lexopt::Error> {
    match option {
        "tor-exit-list" => flags.tor_exit_list = Some(parser.value()?.into()),
        "model" => flags.model = Some(parser.value()?.into()),
        "source-window-secs" => flags.source_window_secs = Some(value(parser, option)?),
        // `--utc-offset-secs -3600`: lexopt hands the next argument over as a
        // value even when it starts with a dash.
        "utc-offset-secs" => flags.utc_offset_secs = Some(value(parser, option)?),
        "time-zone" => flags.time_zone = Some(parser.value()?.string()?),
        _ => return Err(Long(option).unexpected()),
    }
    Ok(())
}

/// A subcommand's parse, its errors named after it.
fn in_command(name: &'static str, parse: impl FnOnce() -> Result<Parsed, lexopt::Error>) -> Result<Parsed, UsageError> {
    parse().map_err(|e| UsageError { message: e.to_string(), command: Some(name) })
}

fn help_of(name: &str) -> Parsed {
    Parsed::Print(command_help(name).unwrap_or_default())
}

fn scan(parser: &mut lexopt::Parser) -> Result<Parsed, UsageError> {
    in_command("scan", || {
        let mut config = None;
        let mut format = OutputFormat::Jsonl;
        let mut log_format = None;
        let mut utmp_arch = None;
        let mut analysis = Flags::default();
        let mut files = Vec::new();
        while let Some(arg) = parser.next()? {
            match arg {
                Short('h') | Long("help") => return Ok(help_of("scan")),
                Long("config") => config = Some(parser.value()?.into()),
                Long("format") => {
                    format =
                        choice(parser, "format", &[("jsonl", OutputFormat::Jsonl), ("table", OutputFormat::Table)])?
                }
                Long("log-format") => {
                    log_format = Some(choice(
                        parser,
                        "log-format",
                        &[
                            ("syslog", ScanLogFormat::Syslog),
                            ("cowrie", ScanLogFormat::Cowrie),
                            ("journald", ScanLogFormat::Journald),
                            ("utmp", ScanLogFormat::Utmp),
                        ],
                    )?)
                }
                Long("utmp-arch") => utmp_arch = Some(choice(parser, "utmp-arch", ARCHES)?),
                Long(other) => {
                    let other = other.to_owned();
                    analysis_option(parser, &other, &mut analysis)?
                }
                Value(file) => files.push(PathBuf::from(file)),
                other => return Err(other.unexpected()),
            }
        }
        if files.is_empty() {
            return Err("at least one <FILE> is required".into());
        }
        Ok(Parsed::Command(Box::new(Command::Scan { config, format, log_format, utmp_arch, analysis, files })))
    })
}

fn check(parser: &mut lexopt::Parser) -> Result<Parsed, UsageError> {
    in_command("check", || {
        let mut config = PathBuf::from(DEFAULT_CONFIG);
        while let Some(arg) = parser.next()? {
            match arg {
                Short('h') | Long("help") => return Ok(help_of("check")),
                Long("config") => config = parser.value()?.into(),
                other => return Err(other.unexpected()),
            }
        }
        Ok(Parsed::Command(Box::new(Command::Check { config })))
    })
}

fn learn(parser: &mut lexopt::Parser) -> Result<Parsed, UsageError> {
    in_command("learn", || {
        let mut config = PathBuf::from(DEFAULT_CONFIG);
        let mut journal_days = None;
        let mut wtmp = None;
        let mut utmp_arch = None;
        let mut progress = false;
        while let Some(arg) = parser.next()? {
            match arg {
                Short('h') | Long("help") => return Ok(help_of("learn")),
                Long("config") => config = parser.value()?.into(),
                Long("journal-days") => journal_days = Some(value(parser, "journal-days")?),
                Long("wtmp") => wtmp = Some(parser.value()?.into()),
                Long("utmp-arch") => utmp_arch = Some(choice(parser, "utmp-arch", ARCHES)?),
                Long("progress") => progress = true,
                other => return Err(other.unexpected()),
            }
        }
        Ok(Parsed::Command(Box::new(Command::Learn { config, journal_days, wtmp, utmp_arch, progress })))
    })
}

fn run(parser: &mut lexopt::Parser) -> Result<Parsed, UsageError> {
    in_command("run", || {
        let mut config = None;
        let mut flags = Flags::default();
        while let Some(arg) = parser.next()? {
            match arg {
                Short('h') | Long("help") => return Ok(help_of("run")),
                Long("config") => config = Some(parser.value()?.into()),
                Long("follow") => flags.follow.push(parser.value()?.into()),
                Long("state-dir") => flags.state_dir = Some(parser.value()?.into()),
                Long("output") => flags.output = Some(parser.value()?.into()),
                Long("poll-interval-ms") => flags.poll_interval_ms = Some(value(parser, "poll-interval-ms")?),
                Long("commit-interval-ms") => flags.commit_interval_ms = Some(value(parser, "commit-interval-ms")?),
                Long("collector") => flags.collector.push(parser.value()?.string()?),
                Long("token") => flags.token = Some(parser.value()?.string()?),
                Long("ca-file") => flags.ca_file = Some(parser.value()?.into()),
                Long("spool-max-bytes") => flags.spool_max_bytes = Some(value(parser, "spool-max-bytes")?),
                Long("dry-run") => flags.dry_run = true,
                Long(other) => {
                    let other = other.to_owned();
                    analysis_option(parser, &other, &mut flags)?
                }
                other => return Err(other.unexpected()),
            }
        }
        // The token from the environment keeps it out of `ps` output.
        if flags.token.is_none() {
            flags.token = std::env::var("BFP_AGENT_TOKEN").ok().filter(|t| !t.is_empty());
        }
        Ok(Parsed::Command(Box::new(Command::Run { config, flags })))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Parsed, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn command(args: &[&str]) -> Command {
        match parse_str(args) {
            Ok(Parsed::Command(c)) => *c,
            Ok(Parsed::Print(text)) => panic!("{args:?} printed {text}"),
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    fn mistake(args: &[&str]) -> String {
        match parse_str(args) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{args:?} was accepted"),
        }
    }

    #[test]
    fn run_takes_every_override_in_both_spellings() {
        let Command::Run { config, flags } = command(&[
            "run",
            "--config=/c.toml",
            "--follow",
            "/a.log",
            "--follow=/b.log",
            "--state-dir",
            "/st",
            "--output",
            "-",
            "--poll-interval-ms",
            "5",
            "--commit-interval-ms=7",
            "--collector",
            "http://a",
            "--collector",
            "http://b",
            "--token",
            "t",
            "--ca-file",
            "/ca.pem",
            "--spool-max-bytes",
            "1000",
            "--dry-run",
            "--utc-offset-secs",
            "-3600",
            "--source-window-secs",
            "60",
            "--model",
            "/m.bin",
            "--tor-exit-list",
            "/tor",
        ]) else {
            panic!("not run")
        };
        assert_eq!(config, Some(PathBuf::from("/c.toml")));
        assert_eq!(flags.follow, [PathBuf::from("/a.log"), PathBuf::from("/b.log")]);
        assert_eq!(flags.state_dir, Some(PathBuf::from("/st")));
        assert_eq!(flags.output, Some(PathBuf::from("-")));
        assert_eq!((flags.poll_interval_ms, flags.commit_interval_ms), (Some(5), Some(7)));
        assert_eq!(flags.collector, ["http://a", "http://b"]);
        assert_eq!(flags.token.as_deref(), Some("t"));
        assert_eq!(flags.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(flags.spool_max_bytes, Some(1000));
        assert!(flags.dry_run);
        assert_eq!(flags.utc_offset_secs, Some(-3600));
        assert_eq!(flags.source_window_secs, Some(60));
        assert_eq!(flags.model, Some(PathBuf::from("/m.bin")));
        assert_eq!(flags.tor_exit_list, Some(PathBuf::from("/tor")));
    }

    #[test]
    fn scan_reads_its_choices_and_needs_a_file() {
        let Command::Scan { format, log_format, utmp_arch, files, .. } =
            command(&["scan", "--format", "table", "--log-format", "utmp", "--utmp-arch", "armv7", "a", "-"])
        else {
            panic!("not scan")
        };
        assert_eq!(format, OutputFormat::Table);
        assert!(matches!(log_format, Some(ScanLogFormat::Utmp)));
        assert!(matches!(utmp_arch, Some(Arch::Armv7)));
        assert_eq!(files, [PathBuf::from("a"), PathBuf::from("-")]);
        assert!(mistake(&["scan"]).contains("<FILE>"));
        let wrong = mistake(&["scan", "--format", "xml", "a"]);
        assert!(wrong.contains("'xml'") && wrong.contains("jsonl, table"), "{wrong}");
    }

    #[test]
    fn check_and_learn_default_to_the_installed_config() {
        let Command::Check { config } = command(&["check"]) else { panic!("not check") };
        assert_eq!(config, PathBuf::from(DEFAULT_CONFIG));
        let Command::Learn { config, journal_days, wtmp, progress, .. } =
            command(&["learn", "--journal-days", "3", "--wtmp", "/var/log/wtmp", "--progress"])
        else {
            panic!("not learn")
        };
        assert_eq!(
            (config, journal_days, wtmp),
            (PathBuf::from(DEFAULT_CONFIG), Some(3), Some("/var/log/wtmp".into()))
        );
        assert!(progress);
        let Command::Learn { journal_days, wtmp, progress, .. } = command(&["learn"]) else { panic!("not learn") };
        assert_eq!((journal_days, wtmp, progress), (None, None, false), "the config's [learn] table decides");
    }

    #[test]
    fn mistakes_name_what_was_wrong() {
        assert!(mistake(&[]).contains("command is required"));
        assert!(mistake(&["frobnicate"]).contains("'frobnicate'"));
        let unknown = mistake(&["check", "--no-such-flag"]);
        assert!(unknown.contains("--no-such-flag") && unknown.contains("bfp-agent check --help"), "{unknown}");
        assert!(mistake(&["run", "--poll-interval-ms", "soon"]).contains("'soon'"));
        assert!(mistake(&["run", "--state-dir"]).contains("--state-dir"));
        assert!(mistake(&["run", "extra"]).contains("extra"));
    }

    #[test]
    fn help_and_version_are_printed_not_run() {
        for args in [&["--help"][..], &["-h"], &["help"]] {
            let Ok(Parsed::Print(text)) = parse_str(args) else { panic!("{args:?}") };
            assert!(text.contains("Examples:") && text.contains("Exit status"), "{text}");
        }
        for name in ["scan", "check", "learn", "run"] {
            let Ok(Parsed::Print(text)) = parse_str(&[name, "--help"]) else { panic!("{name}") };
            assert!(text.contains(&format!("Usage: bfp-agent {name}")), "{text}");
            let Ok(Parsed::Print(again)) = parse_str(&["help", name]) else { panic!("{name}") };
            assert_eq!(text, again);
        }
        let Ok(Parsed::Print(v)) = parse_str(&["--version"]) else { panic!("version") };
        assert_eq!(v, format!("bfp-agent {}\n", env!("CARGO_PKG_VERSION")));
    }
}
