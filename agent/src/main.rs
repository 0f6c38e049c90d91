//! The `bfp-agent` command line: `scan` (offline) and `run` (follow).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bfp_agent::forward::CollectorConfig;
use bfp_agent::run::{effective_config, run};
use bfp_agent::scan::{scan, OutputFormat, ScanOptions};
use bfp_agent::scoring::Scorer;
use bfp_agent::{analyzer_config, Result};
use bfp_logs::analyze::LogFormat;
use bfp_logs::analyze::UtmpArch;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "bfp-agent",
    version,
    about = "Behavioural fingerprints from the device's own auth logs, scored on the device."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse log files offline and print the scored fingerprints.
    Scan {
        /// Output: one JSON object per fingerprint then a summary, or a table.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: OutputFormat,
        /// Log format of every file (default: detected per file).
        #[arg(long, value_enum)]
        log_format: Option<ScanLogFormat>,
        /// Layout of utmp/wtmp/btmp records (default: this machine's).
        #[arg(long, value_enum)]
        utmp_arch: Option<Arch>,
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
        /// Log files; `-` reads standard input.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
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
        /// A model artifact instead of the embedded one (overrides the config's).
        #[arg(long, value_name = "PATH")]
        model: Option<PathBuf>,
        /// Tor exit list (overrides the config's).
        #[arg(long, value_name = "FILE")]
        tor_exit_list: Option<PathBuf>,
        /// Poll interval in milliseconds (overrides the config's).
        #[arg(long, value_name = "MS")]
        poll_interval_ms: Option<u64>,
        /// Least time between checkpoints in milliseconds (overrides the config's).
        #[arg(long, value_name = "MS")]
        commit_interval_ms: Option<u64>,
        /// Forward results to this collector (http:// or https:// base URL)
        /// through the on-disk spool, instead of writing them to the output.
        #[arg(long, value_name = "URL")]
        collector: Option<String>,
        /// The device token from `bfp-collector device add NAME`.
        #[arg(long, value_name = "TOKEN", env = "BFP_AGENT_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Trust only this CA (or self-signed certificate) PEM for an https collector.
        #[arg(long, value_name = "PEM")]
        ca_file: Option<PathBuf>,
        /// Spool size cap in bytes (overrides the config's).
        #[arg(long, value_name = "BYTES")]
        spool_max_bytes: Option<u64>,
    },
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

fn main() -> ExitCode {
    one_malloc_arena();
    let cli = Cli::parse();
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

fn execute(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Scan {
            format,
            log_format,
            utmp_arch,
            tor_exit_list,
            model,
            source_window_secs,
            utc_offset_secs,
            files,
        } => {
            let scorer = Scorer::load(model.as_deref())?;
            let opts = ScanOptions {
                files: &files,
                log_format: log_format.map(|f| match f {
                    ScanLogFormat::Syslog => LogFormat::Syslog,
                    ScanLogFormat::Cowrie => LogFormat::Cowrie,
                    ScanLogFormat::Journald => LogFormat::Journald,
                    ScanLogFormat::Utmp => LogFormat::Utmp,
                }),
                utmp_arch: match utmp_arch {
                    Some(Arch::X86_64) => UtmpArch::X86_64,
                    Some(Arch::Aarch64) => UtmpArch::Aarch64,
                    Some(Arch::Armv7) => UtmpArch::Armv7,
                    None => native_utmp_arch(),
                },
                analyzer: analyzer_config(tor_exit_list.as_deref(), source_window_secs, utc_offset_secs)?,
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
            model,
            tor_exit_list,
            poll_interval_ms,
            commit_interval_ms,
            collector,
            token,
            ca_file,
            spool_max_bytes,
        } => {
            // First thing: a stop request during start-up ends the loop cleanly.
            let stop = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(signal, Arc::clone(&stop))
                    .map_err(|e| bfp_agent::Error::Io { path: "<signals>".into(), source: e })?;
            }
            let mut config = effective_config(config.as_deref(), &follow, state_dir.as_deref(), output.as_deref())?;
            if model.is_some() {
                config.model = model;
            }
            if tor_exit_list.is_some() {
                config.tor_exit_list = tor_exit_list;
            }
            if let Some(ms) = poll_interval_ms {
                config.poll_interval_ms = ms;
            }
            if let Some(ms) = commit_interval_ms {
                config.commit_interval_ms = ms;
            }
            config.validate(std::path::Path::new("<flags>"))?;
            apply_collector_flags(&mut config, collector, token, ca_file, spool_max_bytes)?;
            let scorer = load_run_model(&config)?;
            let analyzer =
                analyzer_config(config.tor_exit_list.as_deref(), config.source_window_secs, config.utc_offset_secs)?;
            eprintln!(
                "bfp-agent: following {} source(s), model {}, state in {}",
                config.sources.len(),
                scorer.version(),
                config.state_dir.display()
            );
            let stats = run(&config, &analyzer, &scorer, &stop)?;
            eprintln!(
                "bfp-agent: stopped after {} lines ({} not understood), {} results",
                stats.lines, stats.unknown_lines, stats.records
            );
            Ok(())
        }
    }
}

/// `--collector`, `--token`, `--ca-file`, `--spool-max-bytes` over the
/// config's `[collector]` table.
fn apply_collector_flags(
    config: &mut bfp_agent::config::Config,
    url: Option<String>,
    token: Option<String>,
    ca_file: Option<PathBuf>,
    spool_max_bytes: Option<u64>,
) -> Result<()> {
    let flags = std::path::Path::new("<flags>");
    if let Some(url) = url {
        match &mut config.collector {
            Some(c) => c.url = url,
            None => {
                let token = token.clone().ok_or_else(|| bfp_agent::Error::Config {
                    path: flags.into(),
                    detail: "--collector needs --token TOKEN (from bfp-collector device add NAME)".into(),
                })?;
                config.collector = Some(CollectorConfig::new(url, token));
            }
        }
    }
    let given = token.is_some() || ca_file.is_some() || spool_max_bytes.is_some();
    match &mut config.collector {
        Some(c) => {
            if let Some(token) = token {
                c.token = token;
            }
            if ca_file.is_some() {
                c.ca_file = ca_file;
            }
            if let Some(bytes) = spool_max_bytes {
                c.spool_max_bytes = bytes;
            }
        }
        None if given => {
            return Err(bfp_agent::Error::Config {
                path: flags.into(),
                detail: "--token, --ca-file and --spool-max-bytes need --collector URL".into(),
            })
        }
        None => {}
    }
    config.validate(flags)
}

/// The configured model; else, when forwarding, the last model fetched from
/// the collector (if it still loads); else the embedded one.
fn load_run_model(config: &bfp_agent::config::Config) -> Result<Scorer> {
    if config.model.is_none() && config.collector.is_some() {
        let fetched = config.state_dir.join(bfp_agent::forward::MODEL_FILE);
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
