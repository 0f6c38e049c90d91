//! `bfp-agent learn` (and `run`'s first start): the baselines from the
//! history the device already has, before anything is judged.
//!
//! For each configured source that the state directory knows nothing of
//! (no checkpoint position, no baselines: a source `run` already follows is
//! never re-learnt), it reads that source's past oldest first through the
//! same [`Pipeline`] `run` uses, reporting and forwarding nothing:
//!
//! - a file: the rotated files beside it — `auth.log.N` and `auth.log.N.gz`
//!   (highest N first), RHEL's `secure-YYYYMMDD` (and `.gz`, oldest date
//!   first); gzip is decompressed in-process. The live file itself is left
//!   to `run`, which reports it.
//! - the journal: `journalctl -o json --since=@T` (T = `journal_days` ago),
//!   up to the first entry of the current boot, which `run` reads.
//! - with a wtmp file given (`learn --wtmp FILE`), a file source with no
//!   rotated history learns the logins recorded there instead (never both:
//!   they are the same sessions).
//!
//! The baselines are then saved under a new checkpoint generation, exactly
//! as `run` saves them, so `run` starts from them.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bfp_common::wire::RecordKind;
use bfp_detect::detector::Detector;
use bfp_logs::analyze::{AnalyzerConfig, LogFormat, UtmpArch};

use crate::config::{Config, SourceConfig, SourceKind};
use crate::error::{Error, Result};
use crate::pipeline::{log_format, Pipeline};
use crate::report::Record;
use crate::scoring::Scorer;
use crate::source::{journald, read_lines, Line, UTMP_RECORD};
use crate::state::StateDir;

/// How far back the journal is read by default, in days.
pub const JOURNAL_DAYS: u64 = 30;

/// Lines between two drains of the pipeline (bounds the records held).
const DRAIN_EVERY: u64 = 4096;

/// What was learnt from one source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Learnt {
    /// The source's name.
    pub source: String,
    /// The history files read, oldest first (empty for the journal).
    pub files: Vec<PathBuf>,
    /// Why nothing was read (already followed, no history), if so.
    pub skipped: Option<String>,
    /// Lines (journal entries) read.
    pub lines: u64,
    /// Bytes read (decompressed).
    pub bytes: u64,
    /// Sessions completed in the history.
    pub sessions: u64,
    /// Distinct users of those sessions.
    pub users: BTreeSet<String>,
    /// Distinct networks they came from (IPv4 /24, IPv6 /48).
    pub networks: BTreeSet<String>,
    /// First and last time covered, unix seconds.
    pub span: Option<(i64, i64)>,
}

impl Learnt {
    /// Days between the first and the last event, rounded up.
    pub fn days(&self) -> i64 {
        self.span.map_or(0, |(first, last)| (last - first + 86_399) / 86_400)
    }

    fn add(&mut self, records: &mut Vec<Record>) {
        for r in records.drain(..) {
            let end = r.end.unwrap_or(r.start);
            self.span = Some(match self.span {
                Some((first, last)) => (first.min(r.start), last.max(end)),
                None => (r.start, end),
            });
            if r.kind != RecordKind::Session {
                continue;
            }
            self.sessions += 1;
            if let Some(user) = r.user {
                self.users.insert(user);
            }
            if let Some(ip) = r.source_ip {
                self.networks.insert(network(ip));
            }
        }
    }
}

impl std::fmt::Display for Learnt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(why) = &self.skipped {
            return write!(f, "{}: nothing learnt ({why})", self.source);
        }
        write!(
            f,
            "{}: {} users, {} networks, {} sessions over {} days ({} lines, {} files)",
            self.source,
            self.users.len(),
            self.networks.len(),
            self.sessions,
            self.days(),
            self.lines,
            self.files.len()
        )
    }
}

fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// The rotated files of `path`, oldest first: `NAME-YYYYMMDD[.gz]` by date,
/// then `NAME.N[.gz]` from the highest N down.
pub fn history_files(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut dated = Vec::new();
    let mut numbered = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else { continue };
        let Some(rest) = file_name.strip_prefix(name) else { continue };
        let rest = rest.strip_suffix(".gz").unwrap_or(rest);
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if let Some(n) = rest.strip_prefix('.').filter(|n| digits(n)) {
            if let Ok(n) = n.parse::<u32>() {
                numbered.push((n, entry.path()));
            }
        } else if let Some(date) = rest.strip_prefix('-').filter(|d| d.len() == 8 && digits(d)) {
            dated.push((date.to_string(), entry.path()));
        }
    }
    dated.sort();
    numbered.sort_by_key(|n| std::cmp::Reverse(n.0));
    dated.into_iter().map(|(_, p)| p).chain(numbered.into_iter().map(|(_, p)| p)).collect()
}

/// Reports reading progress on standard error: on a terminal one line
/// rewritten every megabyte, elsewhere (a journal, a log file) a line every
/// 64 MB, so a service log is not flooded.
pub struct Progress {
    terminal: bool,
    enabled: bool,
    next: u64,
}

impl Progress {
    /// Progress on stderr (`enabled` false: silent, for `run`'s tests).
    pub fn stderr(enabled: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let mut progress = Progress { terminal, enabled, next: 0 };
        progress.next = progress.step();
        progress
    }

    fn step(&self) -> u64 {
        if self.terminal {
            1 << 20
        } else {
            64 << 20
        }
    }

    fn update(&mut self, what: &str, bytes: u64, lines: u64) {
        if !self.enabled || bytes < self.next {
            return;
        }
        self.next = bytes + self.step();
        let mb = bytes as f64 / 1_048_576.0;
        if self.terminal {
            eprint!("\rbfp-agent learn: {what}: {mb:.0} MB, {lines} lines\x1b[K");
        } else {
            eprintln!("bfp-agent learn: {what}: {mb:.0} MB, {lines} lines");
        }
    }

    fn done(&mut self) {
        if self.enabled && self.terminal {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
        }
        self.next = self.step();
    }
}

/// What `learn` reads beyond each source's own history.
#[derive(Debug, Clone)]
pub struct LearnOptions {
    /// How far back the journal is read, days.
    pub journal_days: u64,
    /// A wtmp file (and its record layout) for file sources without rotated
    /// files. Default: none.
    pub wtmp: Option<(PathBuf, UtmpArch)>,
}

impl Default for LearnOptions {
    fn default() -> LearnOptions {
        LearnOptions { journal_days: JOURNAL_DAYS, wtmp: None }
    }
}

/// Learns every source the state directory knows nothing of and saves the
/// baselines (one new checkpoint generation).
pub fn learn(
    config: &Config,
    state: &StateDir,
    analyzer: &AnalyzerConfig,
    scorer: &Scorer,
    options: &LearnOptions,
    progress: &mut Progress,
) -> Result<Vec<Learnt>> {
    let mut checkpoint = state.load_checkpoint()?;
    let mut learnt = Vec::new();
    let mut baselines = Vec::new();
    for source in &config.sources {
        let key = source.key();
        if checkpoint.sources.contains_key(&key) || checkpoint.baselines.contains_key(&key) {
            learnt.push(Learnt {
                source: key,
                skipped: Some("already followed: its checkpoint wins".into()),
                ..Learnt::default()
            });
            continue;
        }
        let (one, pipeline) = learn_source(source, config, analyzer, scorer, options, progress)?;
        if one.skipped.is_none() && pipeline.detector().learnt() > 0 {
            let bytes = pipeline
                .detector()
                .baselines()
                .to_bytes()
                .map_err(|e| Error::State { path: state.path().into(), detail: format!("baselines of {key}: {e}") })?;
            baselines.push((key, bytes));
        }
        learnt.push(one);
    }
    if !baselines.is_empty() {
        let generation = checkpoint.generation + 1;
        for (key, bytes) in baselines {
            state.save_baselines(&key, generation, &bytes)?;
            checkpoint.baselines.insert(key, generation);
        }
        checkpoint.generation = generation;
        state.save_checkpoint(&checkpoint)?;
    }
    Ok(learnt)
}

/// Reads one source's history into a fresh pipeline.
fn learn_source(
    source: &SourceConfig,
    config: &Config,
    analyzer: &AnalyzerConfig,
    scorer: &Scorer,
    options: &LearnOptions,
    progress: &mut Progress,
) -> Result<(Learnt, Pipeline)> {
    let key = source.key();
    let format = match source.kind {
        SourceKind::File => log_format(source.format),
        SourceKind::Journald => Some(LogFormat::Journald),
    };
    let mut pipeline =
        Pipeline::new(key.clone(), format, analyzer.clone()).with_detector(Detector::new(config.detect.clone()));
    let mut learnt = Learnt { source: key.clone(), ..Learnt::default() };
    let mut records = Vec::new();
    match source.kind {
        SourceKind::File => {
            let path = source.path.as_deref().expect("validated: file sources have a path");
            learnt.files = history_files(path);
            if learnt.files.is_empty() {
                match &options.wtmp {
                    Some((wtmp, arch)) if wtmp.is_file() => {
                        learn_wtmp(wtmp, *arch, &mut pipeline, scorer, &mut learnt)?;
                        progress.done();
                        return Ok((learnt, pipeline));
                    }
                    _ => learnt.skipped = Some(format!("no rotated files beside {}", path.display())),
                }
            }
            for file in learnt.files.clone() {
                let input = open_maybe_gzip(&file)?;
                let count = std::rc::Rc::new(std::cell::Cell::new(0u64));
                let counting = CountingReader { inner: input, count: count.clone() };
                let mut reader = BufReader::with_capacity(64 * 1024, counting);
                let name = file.display().to_string();
                let base_bytes = learnt.bytes;
                let base_lines = learnt.lines;
                let mut lines_here = 0u64;
                read_lines(&mut reader, &mut |line: Line<'_>| {
                    pipeline.feed(line);
                    lines_here += 1;
                    if lines_here.is_multiple_of(DRAIN_EVERY) {
                        pipeline.drain(scorer, &mut records);
                        learnt.add(&mut records);
                        progress.update(&name, base_bytes + count.get(), base_lines + lines_here);
                    }
                })
                .map_err(Error::io(&file))?;
                learnt.lines += lines_here;
                learnt.bytes = base_bytes + count.get();
                pipeline.drain(scorer, &mut records);
                learnt.add(&mut records);
            }
        }
        SourceKind::Journald => {
            let since = now_secs().saturating_sub(options.journal_days.saturating_mul(86_400));
            let boot = current_boot_id();
            let mut in_this_boot = false;
            let mut bytes = 0u64;
            let mut lines = 0u64;
            journald::history(&source.journalctl, &source.journalctl_args, since, &mut |line: Line<'_>| {
                // The current boot is `run`'s to read (it follows with -b).
                in_this_boot = in_this_boot
                    || boot.as_deref().is_some_and(|b| line.text.contains(&format!("\"_BOOT_ID\":\"{b}\"")));
                if in_this_boot {
                    return;
                }
                bytes += line.text.len() as u64 + 1;
                lines += 1;
                pipeline.feed(line);
                if lines.is_multiple_of(DRAIN_EVERY) {
                    pipeline.drain(scorer, &mut records);
                    learnt.add(&mut records);
                    progress.update("journal", bytes, lines);
                }
            })?;
            learnt.lines = lines;
            learnt.bytes = bytes;
            pipeline.drain(scorer, &mut records);
            learnt.add(&mut records);
            if lines == 0 {
                learnt.skipped = Some("no journal entries before this boot".into());
            }
        }
    }
    progress.done();
    Ok((learnt, pipeline))
}

/// The logins a wtmp file recorded, record by record.
fn learn_wtmp(
    path: &Path,
    arch: UtmpArch,
    pipeline: &mut Pipeline,
    scorer: &Scorer,
    learnt: &mut Learnt,
) -> Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, File::open(path).map_err(Error::io(path))?);
    let mut record = [0u8; UTMP_RECORD];
    let mut records = Vec::new();
    loop {
        match reader.read_exact(&mut record) {
            Ok(()) => pipeline.analyzer_mut().feed_utmp(&record, arch),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(Error::Io { path: path.into(), source: e }),
        }
        learnt.lines += 1;
        learnt.bytes += UTMP_RECORD as u64;
        if learnt.lines.is_multiple_of(DRAIN_EVERY) {
            pipeline.drain(scorer, &mut records);
            learnt.add(&mut records);
        }
    }
    pipeline.drain(scorer, &mut records);
    learnt.add(&mut records);
    learnt.files = vec![path.to_path_buf()];
    Ok(())
}

/// A file, decompressed in-process when it starts with the gzip magic.
fn open_maybe_gzip(path: &Path) -> Result<Box<dyn Read>> {
    let mut file = BufReader::new(File::open(path).map_err(Error::io(path))?);
    let gzip = file.fill_buf().map_err(Error::io(path))?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip { Box::new(flate2::bufread::MultiGzDecoder::new(file)) } else { Box::new(file) })
}

/// Counts the bytes read through it (shared, so the line callback can
/// report progress while the reader is borrowed).
struct CountingReader<R> {
    inner: R,
    count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The running boot's id as the journal writes it (32 hex digits).
fn current_boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id: String = id.trim().chars().filter(|c| *c != '-').collect();
    (id.len() == 32).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_come_oldest_first() {
        let dir = crate::testutil::tempdir("learn-history");
        for name in
            ["auth.log", "auth.log.1", "auth.log.2.gz", "auth.log.10.gz", "auth.log.bak", "other.log.1", "auth.logx.1"]
        {
            std::fs::write(dir.join(name), "").unwrap();
        }
        let names = |path: &Path| -> Vec<String> {
            history_files(path).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
        };
        assert_eq!(names(&dir.join("auth.log")), ["auth.log.10.gz", "auth.log.2.gz", "auth.log.1"]);
        for name in ["secure", "secure-20240310", "secure-20240303.gz", "secure-2024"] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        assert_eq!(names(&dir.join("secure")), ["secure-20240303.gz", "secure-20240310"]);
    }

    #[test]
    fn networks_group_addresses() {
        assert_eq!(network("192.0.2.77".parse().unwrap()), "192.0.2.0/24");
        assert_eq!(network("2001:db8:1:2::5".parse().unwrap()), "2001:db8:1::/48");
    }
}
