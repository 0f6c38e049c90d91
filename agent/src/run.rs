//! `bfp-agent run`: follow the configured logs and score as lines arrive.
//!
//! One thread, one loop: poll every source, feed the lines to that source's
//! pipeline, write the completed records to the sink, commit the sink, then
//! save the checkpoint (source positions + sink mark) atomically. A crash at
//! any point leaves a checkpoint whose positions match the output it
//! describes; on restart the sink drops output past its mark and each source
//! re-reads (as replay) what its sessions need, so every result is written
//! exactly once (to a file; at least once to stdout).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bfp_detect::baseline::Baselines;
use bfp_detect::detector::{DetectConfig, Detector};
use bfp_logs::analyze::{AnalyzerConfig, LogFormat};

use crate::config::{Config, SourceConfig, SourceKind};
use crate::error::{Error, Result};
use crate::forward;
use crate::learn;
use crate::pipeline::{log_format, Pipeline};
use crate::report::{host_of_line, Record, RecordLine};
use crate::respond::Responder;
use crate::scoring::Scorer;
use crate::sink::{self, SinkMark};
use crate::source::file::FileFollower;
use crate::source::journald::{self, JournalCheckpoint, JournalFollower};
use crate::source::Line;
use crate::spool::{Spool, SpoolConfig, SpoolSink};
use crate::state::{Checkpoint, SourceCheckpoint, StateDir, CHECKPOINT_VERSION};

/// Results held before a checkpoint is forced (bounds memory in a burst).
const MAX_PENDING_RECORDS: usize = 256;
/// How long to wait before restarting a `journalctl` that exited.
const JOURNAL_RESTART: Duration = Duration::from_secs(5);
/// A followed file missing this long is reported (shorter gaps are a
/// rotation between rename and create).
const MISSING_GRACE: Duration = Duration::from_secs(10);
/// How often a file still missing is reported again.
const MISSING_REPEAT: Duration = Duration::from_secs(3600);

enum Follower {
    File(FileFollower),
    Journal {
        follower: Option<JournalFollower>,
        restart_at: Instant,
        /// Where it stands, kept across restarts of `journalctl`.
        last: JournalCheckpoint,
    },
}

struct RunSource {
    config: SourceConfig,
    key: String,
    follower: Follower,
    pipeline: Pipeline,
    /// `pipeline.detector().learnt()` when its baselines were last saved.
    baselines_saved: u64,
    /// The last read error, until the source reads again.
    last_error: Option<String>,
    /// The host name of the last line read that had one.
    host: Option<String>,
    /// Since when the followed file has been missing, and when that was
    /// last said.
    missing: Option<(Instant, Option<Instant>)>,
}

/// Counters for the operator (and the memory benchmark).
#[derive(Debug, Default, Clone, Copy)]
pub struct RunStats {
    /// Lines handed to the analyzers (replays included).
    pub lines: u64,
    /// Records written.
    pub records: u64,
    /// Lines the parser did not understand (counted by program in the
    /// analyzer's statistics).
    pub unknown_lines: u64,
}

/// Runs until `stop` is set (SIGTERM/SIGINT), then returns with everything
/// written committed.
pub fn run(
    config: &Config,
    state: &StateDir,
    analyzer_config: &AnalyzerConfig,
    scorer: &Scorer,
    stop: &Arc<AtomicBool>,
) -> Result<RunStats> {
    let mut checkpoint = state.load_checkpoint()?;
    let status = Arc::new(forward::Status::default());
    // Before anything is read: a response that cannot block stops the start.
    let mut responder =
        Responder::start(&config.respond, config.collector.as_ref().map(|c| c.url.as_str()), status.clone())?;
    if checkpoint.sources.is_empty() && checkpoint.baselines.is_empty() {
        // First start: learn the device's history before judging anything.
        let learnt = learn::learn(
            config,
            state,
            analyzer_config,
            scorer,
            &learn::LearnOptions::from_config(&config.learn),
            &mut learn::Progress::stderr(true, false),
        )?;
        for one in &learnt {
            eprintln!("bfp-agent: learnt {one}");
        }
        checkpoint = state.load_checkpoint()?;
    }
    // With a collector, results go to the spool and a forwarding thread
    // sends what the checkpoints cover.
    if let Ok(mut v) = status.model_version.lock() {
        *v = scorer.version().to_string();
    }
    let (mut sink, spool): (Box<dyn sink::Sink>, _) = match &config.collector {
        Some(cc) => {
            let spool = Spool::open(SpoolConfig::new(state.spool_dir(), cc.spool_max_bytes))?;
            let spool = Arc::new(Mutex::new(spool));
            let forward: Box<dyn sink::Sink> = Box::new(SpoolSink::new(spool.clone()));
            let sink = if config.output == std::path::Path::new("-") {
                forward
            } else {
                Box::new(sink::TeeSink::new(forward, sink::open(&config.output)?))
            };
            (sink, Some(spool))
        }
        None => (sink::open(&config.output)?, None),
    };
    sink.recover(&checkpoint.sink)?;
    if checkpoint.sink == SinkMark::None {
        // First start (or a new output): record where the output begins, so
        // results written before the first checkpoint can be cut back too.
        checkpoint.sink = sink.commit()?;
        state.save_checkpoint(&checkpoint)?;
    }
    sink.checkpointed(&checkpoint.sink);
    if let (Some(cc), Some(spool)) = (&config.collector, spool) {
        forward::Forwarder::new(cc.clone(), spool, status.clone(), state.clone())?
            .spawn(stop.clone())
            .map_err(|e| Error::Forward(format!("cannot start the forwarding thread: {e}")))?;
    }
    let mut current_scorer = scorer.clone();
    let mut sources = Vec::new();
    for sc in &config.sources {
        let key = sc.key();
        let generation = checkpoint.baselines.get(&key).copied();
        let mut detector = load_detector(state, &key, generation, &config.detect);
        if let Some(&saved) = checkpoint.learning.get(&key) {
            detector.resume_learning(saved);
        }
        sources.push(open_source(sc, state, checkpoint.sources.get(&key), detector, analyzer_config)?);
        state.remove_stale_baselines(&key, generation);
    }
    let poll_interval = Duration::from_millis(config.poll_interval_ms);
    let commit_interval = Duration::from_millis(config.commit_interval_ms);
    let mut last_commit = Instant::now();
    let mut stats = RunStats::default();
    let device_host = crate::report::device_host_name();
    let mut records: Vec<(Record, String)> = Vec::new();
    let mut drained = Vec::new();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        // A model the forwarder fetched and verified replaces ours between
        // two polls: every result is scored by exactly one model.
        if let Some(newer) = status.new_model.lock().ok().and_then(|mut m| m.take()) {
            if let Ok(mut v) = status.model_version.lock() {
                *v = newer.version().to_string();
            }
            current_scorer = newer;
        }
        let scorer = &current_scorer;
        let mut lines = 0u64;
        for source in &mut sources {
            lines += poll_source(source, state)?;
            warn_if_missing(source, Instant::now());
            source.pipeline.drain(scorer, &mut drained);
            // At once, not at the checkpoint: a block is worth most early,
            // and one repeated after a crash only renews its expiry.
            if let Some(responder) = &mut responder {
                responder.consider(&drained);
            }
            let host = source.host.as_deref().unwrap_or(&device_host);
            records.extend(drained.drain(..).map(|r| (r, host.to_string())));
        }
        if let Some(responder) = &mut responder {
            responder.expire();
            if let Some(pushed) = status.decisions.lock().ok().and_then(|mut d| d.take()) {
                responder.apply_decisions(&pushed);
            }
        }
        stats.lines += lines;
        let mut next = Checkpoint {
            version: CHECKPOINT_VERSION,
            sink: checkpoint.sink.clone(),
            sources: sources.iter().map(|s| (s.key.clone(), source_checkpoint(s))).collect(),
            generation: checkpoint.generation + 1,
            baselines: checkpoint.baselines.clone(),
            learning: sources.iter().map(|s| (s.key.clone(), s.pipeline.detector().learning())).collect(),
        };
        let learnt = sources.iter().any(|s| s.pipeline.detector().learnt() != s.baselines_saved);
        let dirty =
            !records.is_empty() || next.sources != checkpoint.sources || next.learning != checkpoint.learning || learnt;
        // Deferring is safe: until the checkpoint moves, a restart reads
        // these lines again and makes the same results.
        let due = stopping || records.len() >= MAX_PENDING_RECORDS || last_commit.elapsed() >= commit_interval;
        if dirty && due {
            last_commit = Instant::now();
            for (record, host) in records.drain(..) {
                sink.write(&RecordLine::new(&record, &host))?;
                stats.records += 1;
            }
            // Output first, then the baselines those results taught, then
            // the positions that produced both: one checkpoint names them
            // all, so a kill anywhere leaves a consistent set.
            let mark = sink.commit()?;
            for source in &mut sources {
                let learnt = source.pipeline.detector().learnt();
                if learnt != source.baselines_saved {
                    let saved = match source.pipeline.detector().baselines().to_bytes() {
                        Ok(bytes) => state.save_baselines(&source.key, next.generation, &bytes),
                        Err(e) => Err(Error::State { path: state.path().into(), detail: e.to_string() }),
                    };
                    match saved {
                        Ok(()) => {
                            next.baselines.insert(source.key.clone(), next.generation);
                        }
                        Err(e) => eprintln!("bfp-agent: warning: baselines of {}: {e}", source.key),
                    }
                    source.baselines_saved = learnt;
                }
            }
            let superseded: Vec<(String, u64)> = checkpoint
                .baselines
                .iter()
                .filter(|(key, gen)| next.baselines.get(*key) != Some(*gen))
                .map(|(key, gen)| (key.clone(), *gen))
                .collect();
            checkpoint = Checkpoint { sink: mark, ..next };
            state.save_checkpoint(&checkpoint)?;
            sink.checkpointed(&checkpoint.sink);
            for (key, gen) in superseded {
                state.remove_baselines(&key, gen);
            }
        }
        // Published once checkpointed (or when nothing is pending): the
        // heartbeat's count never runs ahead of the results of those lines.
        if !dirty || due {
            status.lines_read.store(stats.lines, Ordering::Relaxed);
        }
        if stopping {
            stats.unknown_lines = sources.iter().map(|s| s.pipeline.analyzer().stats().unknown_total()).sum();
            return Ok(stats);
        }
        if lines == 0 {
            std::thread::sleep(poll_interval);
        }
    }
}

/// A source's detectors, configured by `[detect]`, with the baselines
/// learnt before the restart (of the checkpoint's `generation`). A damaged
/// or unreadable file is reported and replaced by fresh baselines, never
/// fatal.
fn load_detector(state: &StateDir, key: &str, generation: Option<u64>, config: &DetectConfig) -> Detector {
    let loaded = state.load_baselines(key, generation).and_then(|bytes| {
        bytes
            .map(|bytes| Baselines::from_bytes(&bytes, config.baseline.clone()))
            .transpose()
            .map_err(|e| Error::State { path: state.path().into(), detail: format!("baselines of {key}: {e}") })
    });
    match loaded {
        Ok(Some(baselines)) => Detector::with_baselines(baselines, config.campaign.clone(), config.learning_hours),
        Ok(None) => Detector::new(config.clone()),
        Err(e) => {
            eprintln!("bfp-agent: warning: {e}; starting with fresh baselines");
            Detector::new(config.clone())
        }
    }
}

fn open_source(
    sc: &SourceConfig,
    state: &StateDir,
    checkpoint: Option<&SourceCheckpoint>,
    detector: Detector,
    analyzer_config: &AnalyzerConfig,
) -> Result<RunSource> {
    let key = sc.key();
    let (follower, format) = match sc.kind {
        SourceKind::File => {
            let path = sc.path.as_deref().expect("validated: file sources have a path");
            let cp = match checkpoint {
                Some(SourceCheckpoint::File(cp)) => Some(cp),
                _ => None,
            };
            let mut follower = FileFollower::new(path, cp).map_err(Error::io(path))?;
            for warning in follower.take_warnings() {
                eprintln!("bfp-agent: warning: {warning}");
            }
            (Follower::File(follower), log_format(sc.format))
        }
        SourceKind::Journald => {
            let last = match checkpoint {
                Some(SourceCheckpoint::Journald(cp)) => cp.clone(),
                _ => JournalCheckpoint::default(),
            };
            let mut pipeline =
                Pipeline::new(key.clone(), Some(LogFormat::Journald), analyzer_config.clone()).with_detector(detector);
            let replayed =
                journald::replay(&sc.journalctl, &sc.journalctl_args, &last, sc.journal_replay_secs, &mut |line| {
                    pipeline.feed(line)
                })?;
            if replayed > 0 {
                eprintln!("bfp-agent: {key}: re-read {replayed} journal entries to rebuild open sessions");
            }
            let follower = start_journal(sc, state, &key, &last)?;
            let follower = Follower::Journal { follower: Some(follower), restart_at: Instant::now(), last };
            return Ok(RunSource {
                config: sc.clone(),
                pipeline,
                key,
                follower,
                baselines_saved: 0,
                last_error: None,
                host: None,
                missing: None,
            });
        }
    };
    Ok(RunSource {
        config: sc.clone(),
        pipeline: Pipeline::new(key.clone(), format, analyzer_config.clone()).with_detector(detector),
        key,
        follower,
        baselines_saved: 0,
        last_error: None,
        host: None,
        missing: None,
    })
}

fn start_journal(sc: &SourceConfig, state: &StateDir, key: &str, last: &JournalCheckpoint) -> Result<JournalFollower> {
    JournalFollower::start(&sc.journalctl, &sc.journalctl_args, &state.journal_cursor(key), Some(last))
}

/// Polls one source; returns the number of lines it gave.
fn poll_source(source: &mut RunSource, state: &StateDir) -> Result<u64> {
    let mut lines = 0u64;
    let pipeline = &mut source.pipeline;
    let host = &mut source.host;
    let mut feed = |line: Line<'_>| {
        lines += 1;
        if let Some(name) = host_of_line(line.text) {
            if host.as_deref() != Some(name) {
                *host = Some(name.to_string());
            }
        }
        pipeline.feed(line);
    };
    match &mut source.follower {
        Follower::File(f) => {
            // A file that cannot be read now (permissions, a vanished
            // mount) is retried at the next poll; the others go on.
            match f.poll(&mut feed) {
                Ok(()) => {
                    if source.last_error.take().is_some() {
                        eprintln!("bfp-agent: {}: readable again", f.path().display());
                    }
                }
                Err(e) => {
                    let message = Error::Io { path: f.path().into(), source: e }.to_string();
                    if source.last_error.as_deref() != Some(message.as_str()) {
                        eprintln!("bfp-agent: {message}; retrying");
                    }
                    source.last_error = Some(message);
                }
            }
        }
        Follower::Journal { follower, restart_at, last } => {
            if follower.is_none() && Instant::now() >= *restart_at {
                // Resume after the last line fed, which the next checkpoint covers.
                match start_journal(&source.config, state, &source.key, last) {
                    Ok(f) => *follower = Some(f),
                    Err(e) => {
                        eprintln!("bfp-agent: {e}; retrying in {}s", JOURNAL_RESTART.as_secs());
                        *restart_at = Instant::now() + JOURNAL_RESTART;
                        source.last_error = Some(e.to_string());
                    }
                }
            }
            if let Some(f) = follower {
                if let Err(e) = f.poll(&mut feed) {
                    eprintln!("bfp-agent: {e}; restarting it in {}s", JOURNAL_RESTART.as_secs());
                    *restart_at = Instant::now() + JOURNAL_RESTART;
                    source.last_error = Some(e.to_string());
                }
                *last = f.checkpoint();
                if f.exited() {
                    *follower = None;
                }
            }
        }
    }
    Ok(lines)
}

/// Says (once past the grace, then every [`MISSING_REPEAT`]) that a
/// followed file does not exist, and when it appears.
fn warn_if_missing(source: &mut RunSource, now: Instant) {
    let Follower::File(f) = &source.follower else { return };
    let path = f.path();
    if path.exists() {
        if source.missing.take().is_some_and(|(_, said)| said.is_some()) {
            eprintln!("bfp-agent: {}: exists now, following it", path.display());
        }
        return;
    }
    let (since, said) = source.missing.get_or_insert((now, None));
    let due = match said {
        None => now.duration_since(*since) >= MISSING_GRACE,
        Some(at) => now.duration_since(*at) >= MISSING_REPEAT,
    };
    if due {
        let hint = if path.file_name().is_some_and(|n| n == "auth.log" || n == "secure") {
            "; a system without rsyslog (Debian 12 by default) has none: follow the journal \
             ([[source]] kind = \"journald\")"
        } else {
            ""
        };
        eprintln!(
            "bfp-agent: warning: {} does not exist (for {}s); waiting for it{hint}",
            path.display(),
            now.duration_since(*since).as_secs()
        );
        *said = Some(now);
    }
}

fn source_checkpoint(source: &RunSource) -> SourceCheckpoint {
    match &source.follower {
        Follower::File(f) => SourceCheckpoint::File(f.checkpoint()),
        Follower::Journal { last, .. } => SourceCheckpoint::Journald(last.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detectors_get_the_configured_settings_with_or_without_saved_baselines() {
        let dir = crate::testutil::tempdir("run-detector");
        let state = StateDir::open(&dir).unwrap();
        let mut config = DetectConfig::default();
        config.baseline.max_users = 8;
        config.baseline.min_sessions = 2;
        let fresh = load_detector(&state, "auth", None, &config);
        assert_eq!(fresh.baselines().config(), &config.baseline);
        state.save_baselines("auth", 3, &fresh.baselines().to_bytes().unwrap()).unwrap();
        let loaded = load_detector(&state, "auth", Some(3), &config);
        assert_eq!(loaded.baselines().config(), &config.baseline);
        // A damaged file: fresh baselines, still configured.
        state.save_baselines("auth", 4, b"BFPB\xff").unwrap();
        let damaged = load_detector(&state, "auth", Some(4), &config);
        assert_eq!(damaged.baselines().config(), &config.baseline);
        assert_eq!(damaged.baselines().user_count(), 0);
    }
}
