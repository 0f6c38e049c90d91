//! The `bfp-agent` program: `scan` (offline), `check`, `learn` and `run`
//! (follow); the arguments are read in `cli`.

mod cli;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bfp_agent::config::{Config, Flags};
use bfp_agent::learn::native_utmp_arch;
use bfp_agent::run::run;
use bfp_agent::scan::{scan, ScanOptions};
use bfp_agent::scoring::Scorer;
use bfp_agent::state::StateDir;
use bfp_agent::Result;
use bfp_logs::analyze::LogFormat;
use cli::{Arch, Command, ScanLogFormat};

fn main() -> ExitCode {
    one_malloc_arena();
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli::Parsed::Command(command)) => *command,
        Ok(cli::Parsed::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    if let Command::Check { config } = &command {
        return run_check(config);
    }
    match execute(command) {
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

fn execute(command: Command) -> Result<()> {
    match command {
        Command::Check { .. } => unreachable!("handled in main"),
        Command::Learn { config: path, journal_days, wtmp, utmp_arch, progress } => {
            let config = Config::for_run(Some(&path), Flags::default())?;
            let state = StateDir::open(&config.state_dir)?;
            let scorer = load_run_model(&config, &state)?;
            let analyzer = config.analyzer_config()?;
            let mut progress = bfp_agent::learn::Progress::stderr(true, progress);
            let mut options = bfp_agent::learn::LearnOptions::from_config(&config.learn);
            if let Some(days) = journal_days {
                options.journal_days = days;
            }
            let arch = utmp_arch.map(Arch::layout).or(config.learn.utmp_arch).unwrap_or_else(native_utmp_arch);
            if let Some(path) = wtmp.or_else(|| options.wtmp.take().map(|(path, _)| path)) {
                options.wtmp = Some((path, arch));
            }
            let learnt = bfp_agent::learn::learn(&config, &state, &analyzer, &scorer, &options, &mut progress)?;
            for one in &learnt {
                println!("{one}");
            }
            Ok(())
        }
        Command::Scan { config, format, log_format, utmp_arch, analysis, files } => {
            let config = Config::for_scan(config.as_deref(), analysis)?;
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
        Command::Run { config, flags } => {
            // First thing: a stop request during start-up ends the loop cleanly.
            let stop = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(signal, Arc::clone(&stop))
                    .map_err(|e| bfp_agent::Error::Io { path: "<signals>".into(), source: e })?;
            }
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
