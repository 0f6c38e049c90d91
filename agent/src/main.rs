//! The `bfp-agent` command line: `scan` (offline) and `run` (follow).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bfp_agent::config::{Config, Flags};
use bfp_agent::run::run;
use bfp_agent::scan::{scan, OutputFormat, ScanOptions};
use bfp_agent::scoring::Scorer;
use bfp_agent::state::StateDir;
use bfp_agent::Result;
use bfp_logs::analyze::LogFormat;
use bfp_logs::analyze::UtmpArch;
use clap::{Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  bfp-agent scan /var/log/auth.log              score a log once, JSON lines
  bfp-agent scan --format table auth.log wtmp   the same as a table
  bfp-agent check                               is /etc/bfp-agent/bfp-agent.toml ready?
  bfp-agent learn                               baselines from rotated logs and the journal
  bfp-agent run --config /etc/bfp-agent/bfp-agent.toml
  bfp-agent run --state-dir /tmp/st --follow /var/log/auth.log --output -

Exit status: 0 success; 1 a problem (named in the output); 2 a usage mistake.
Every TOML key and its default: deploy/bfp-agent.example.toml.";

#[derive(Parser)]
#[command(
    name = "bfp-agent",
    version,
    about = "Behavioural fingerprints from the device's own auth logs, scored on the device.",
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse log files offline and print the scored fingerprints.
    Scan {
        /// A TOML configuration whose analysis settings (Tor list, windows,
        /// UTC offset, model, [detect]) apply; its sources are not read.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Output: one JSON object per fingerprint then a summary, or a table.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: OutputFormat,
        /// Log format of every file (default: detected per file).
        #[arg(long, value_enum)]
        log_format: Option<ScanLogFormat>,
        /// Layout of utmp/wtmp/btmp records (default: this machine's).
        #[arg(long, value_enum)]
        utmp_arch: Option<Arch>,
        #[command(flatten)]
        analysis: AnalysisFlags,
        /// Log files; `-` reads standard input.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Check a configuration before running it (exit 0 ready, 1 a problem).
    ///
    /// Checks the config, each source (present and readable), the Tor list,
    /// the model, the state directory (writable), and the collector
    /// (reachable, the device token accepted). A missing log file is a
    /// warning; exit 0 means ready (warnings allowed), 1 a problem.
    Check {
        /// The TOML configuration to check.
        #[arg(long, value_name = "PATH", default_value = "/etc/bfp-agent/bfp-agent.toml")]
        config: PathBuf,
    },
    /// Learn the baselines from the device's history before judging.
    ///
    /// Reads the rotated logs beside each file source (`auth.log.1`,
    /// `auth.log.2.gz`, `secure-YYYYMMDD`) and the journal's past, oldest
    /// first, reporting nothing; `run` does it on its first start. Sources
    /// already followed are not re-learnt.
    Learn {
        /// The TOML configuration (its sources and state directory).
        #[arg(long, value_name = "PATH", default_value = "/etc/bfp-agent/bfp-agent.toml")]
        config: PathBuf,
        /// How many days of the journal's past to read.
        #[arg(long, value_name = "DAYS", default_value_t = bfp_agent::learn::JOURNAL_DAYS)]
        journal_days: u64,
        /// Learn file sources that have no rotated files from this wtmp
        /// (e.g. /var/log/wtmp) instead.
        #[arg(long, value_name = "FILE")]
        wtmp: Option<PathBuf>,
        /// Layout of the wtmp records (default: this machine's).
        #[arg(long, value_enum)]
        utmp_arch: Option<Arch>,
    },
    /// Follow logs and score as lines arrive (results as JSON lines).
    Run {
        /// The TOML configuration (see deploy/bfp-agent.example.toml).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Follow this log file (repeatable; added to the configured sources).
        #[arg(long, value_name = "PATH")]
        follow: Vec<PathBuf>,
        /// Checkpoint directory (overrides the config's).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Results file, or `-` for stdout (overrides the config's).
        #[arg(long, value_name = "FILE|-")]
        output: Option<PathBuf>,
        #[command(flatten)]
        analysis: AnalysisFlags,
        /// Poll interval in milliseconds (overrides the config's).
        #[arg(long, value_name = "MS")]
        poll_interval_ms: Option<u64>,
        /// Least time between checkpoints in milliseconds (overrides the config's).
        #[arg(long, value_name = "MS")]
        commit_interval_ms: Option<u64>,
        /// Forward results to this collector (http:// or https:// base URL)
        /// through the on-disk spool, instead of writing them to the output.
        /// Repeatable: further collectors on the same database, tried in turn
        /// when the current one fails.
        #[arg(long, value_name = "URL")]
        collector: Vec<String>,
        /// The device token from `bfp-collector device add NAME`.
        #[arg(long, value_name = "TOKEN", env = "BFP_AGENT_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Trust only this CA (or self-signed certificate) PEM for an https collector.
        #[arg(long, value_name = "PEM")]
        ca_file: Option<PathBuf>,
        /// Spool size cap in bytes (overrides the config's).
        #[arg(long, value_name = "BYTES")]
        spool_max_bytes: Option<u64>,
        /// Turn the firewall response on, but only log what it would block
        /// (the [respond] table's dry_run).
        #[arg(long)]
        dry_run: bool,
    },
}

/// Settings of `scan` and `run` alike; each overrides the config's.
#[derive(clap::Args)]
struct AnalysisFlags {
    /// Tor exit list (sessions from these addresses get protocol TOR).
    #[arg(long, value_name = "FILE")]
    tor_exit_list: Option<PathBuf>,
    /// A model artifact instead of the embedded one.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Source window length in seconds (default: the parser's).
    #[arg(long, value_name = "SECS")]
    source_window_secs: Option<u64>,
    /// The logs' offset from UTC in seconds, for timestamps without one (default 0).
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    utc_offset_secs: Option<i32>,
}

impl AnalysisFlags {
    fn into_flags(self) -> Flags {
        Flags {
            tor_exit_list: self.tor_exit_list,
            model: self.model,
            source_window_secs: self.source_window_secs,
            utc_offset_secs: self.utc_offset_secs,
            ..Flags::default()
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ScanLogFormat {
    Syslog,
    Cowrie,
    Journald,
    Utmp,
}

#[derive(Clone, Copy, ValueEnum)]
enum Arch {
    #[value(name = "x86_64")]
    X86_64,
    Aarch64,
    Armv7,
}

impl Arch {
    fn layout(self) -> UtmpArch {
        match self {
            Arch::X86_64 => UtmpArch::X86_64,
            Arch::Aarch64 => UtmpArch::Aarch64,
            Arch::Armv7 => UtmpArch::Armv7,
        }
    }
}

fn main() -> ExitCode {
    one_malloc_arena();
    let cli = Cli::parse();
    if let Command::Check { config } = &cli.command {
        return run_check(config);
    }
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `bfp-agent scan ... | head`: the reader left, nothing to report.
        Err(bfp_agent::Error::Sink { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bfp-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates its own malloc arena; the agent's
/// three threads (reading, forwarding, the HTTP client's) then hold about
/// 0.4 MB more resident memory than with one shared arena, and they allocate
/// too little to contend for it (docs/benchmarks.md, "Agent").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    // SAFETY: mallopt only sets an allocator parameter; called first thing in
    // main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

/// `bfp-agent check`: every finding on stdout, the verdict as exit status.
fn run_check(path: &std::path::Path) -> ExitCode {
    let config = match Config::load(path).and_then(|c| c.validate(path).map(|()| c)) {
        Ok(config) => config,
        Err(e) => {
            println!("{}", bfp_agent::check::Finding::Problem(e.to_string()));
            return ExitCode::FAILURE;
        }
    };
    let findings = bfp_agent::check::check(&config);
    for finding in &findings {
        println!("{finding}");
    }
    let problems = findings.iter().filter(|f| matches!(f, bfp_agent::check::Finding::Problem(_))).count();
    if problems == 0 {
        println!("{}: ready", path.display());
        ExitCode::SUCCESS
    } else {
        println!("{}: {problems} problem(s)", path.display());
        ExitCode::FAILURE
    }
}

fn execute(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Check { .. } => unreachable!("handled in main"),
        Command::Learn { config: path, journal_days, wtmp, utmp_arch } => {
            let config = Config::for_run(Some(&path), Flags::default())?;
            let state = StateDir::open(&config.state_dir)?;
            let scorer = load_run_model(&config, &state)?;
            let analyzer = config.analyzer_config()?;
            let mut progress = bfp_agent::learn::Progress::stderr(true);
            let options = bfp_agent::learn::LearnOptions {
                journal_days,
                wtmp: wtmp.map(|path| (path, utmp_arch.map_or_else(native_utmp_arch, Arch::layout))),
            };
            let learnt = bfp_agent::learn::learn(&config, &state, &analyzer, &scorer, &options, &mut progress)?;
            for one in &learnt {
                println!("{one}");
            }
            Ok(())
        }
        Command::Scan { config, format, log_format, utmp_arch, analysis, files } => {
            let config = Config::for_scan(config.as_deref(), analysis.into_flags())?;
            let scorer = Scorer::load(config.model.as_deref())?;
            let opts = ScanOptions {
                files: &files,
                log_format: log_format.map(|f| match f {
                    ScanLogFormat::Syslog => LogFormat::Syslog,
                    ScanLogFormat::Cowrie => LogFormat::Cowrie,
                    ScanLogFormat::Journald => LogFormat::Journald,
                    ScanLogFormat::Utmp => LogFormat::Utmp,
                }),
                utmp_arch: utmp_arch.map_or_else(native_utmp_arch, Arch::layout),
                analyzer: config.analyzer_config()?,
                detect: config.detect.clone(),
                output: format,
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            scan(&opts, &scorer, &mut out)?;
            Ok(())
        }
        Command::Run {
            config,
            follow,
            state_dir,
            output,
            analysis,
            poll_interval_ms,
            commit_interval_ms,
            collector,
            token,
            ca_file,
            spool_max_bytes,
            dry_run,
        } => {
            // First thing: a stop request during start-up ends the loop cleanly.
            let stop = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(signal, Arc::clone(&stop))
                    .map_err(|e| bfp_agent::Error::Io { path: "<signals>".into(), source: e })?;
            }
            let flags = Flags {
                follow,
                state_dir,
                output,
                poll_interval_ms,
                commit_interval_ms,
                collector,
                token,
                ca_file,
                spool_max_bytes,
                dry_run,
                ..analysis.into_flags()
            };
            let config = Config::for_run(config.as_deref(), flags)?;
            let state = StateDir::open(&config.state_dir)?;
            let scorer = load_run_model(&config, &state)?;
            let analyzer = config.analyzer_config()?;
            eprintln!(
                "bfp-agent: following {} source(s), model {}, state in {}",
                config.sources.len(),
                scorer.version(),
                config.state_dir.display()
            );
            let stats = run(&config, &state, &analyzer, &scorer, &stop)?;
            eprintln!(
                "bfp-agent: stopped after {} lines ({} not understood), {} results",
                stats.lines, stats.unknown_lines, stats.records
            );
            Ok(())
        }
    }
}

/// The configured model; else, when forwarding, the last model fetched from
/// the collector (if it still loads); else the embedded one.
fn load_run_model(config: &Config, state: &StateDir) -> Result<Scorer> {
    if config.model.is_none() && config.collector.is_some() {
        let fetched = state.fetched_model();
        if fetched.is_file() {
            match Scorer::load(Some(&fetched)) {
                Ok(scorer) => return Ok(scorer),
                Err(e) => eprintln!("bfp-agent: warning: {e}; using the embedded model"),
            }
        }
    }
    Scorer::load(config.model.as_deref())
}

/// The utmp layout of the machine the agent runs on.
fn native_utmp_arch() -> UtmpArch {
    if cfg!(target_arch = "aarch64") {
        UtmpArch::Aarch64
    } else if cfg!(target_arch = "arm") {
        UtmpArch::Armv7
    } else {
        UtmpArch::X86_64
    }
}
