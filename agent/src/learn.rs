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
//! - a wtmp file (`[learn] wtmp`, or `learn --wtmp FILE`) and its rotated
//!   files (`wtmp.1`, `.gz`): the logins they
//!   recorded before the source's logs begin (the first line of its oldest
//!   rotated file, else of the live file; for the journal, the start of the
//!   past read), learnt first. Later logins are the logs' own sessions and
//!   are not learnt twice.
//! - a lastlog file (`[learn] lastlog`): each user of the account database
//!   (`[learn] passwd`) that the history did not show, whose last login was
//!   before the logs begin, is learnt from it (hour, network; no length).
//!
//! `run` on its first start and `learn` read the same configuration, so they
//! learn the same baselines. A wtmp or lastlog file that cannot be read, or
//! holds records that are not records, is counted and said in the summary,
//! never a failure.
//!
//! The baselines are then saved under a new checkpoint generation, exactly
//! as `run` saves them, so `run` starts from them.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bfp_common::wire::RecordKind;
use bfp_common::{Fingerprint, Protocol};
use bfp_detect::detector::Detector;
use bfp_logs::analyze::{Analyzer, AnalyzerConfig, LogFormat, Observation, UtmpArch};
use bfp_logs::parse::utmp;

use crate::config::{Config, LearnConfig, SourceConfig, SourceKind};
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
    /// wtmp records read from before the logs begin (logins, logouts).
    pub wtmp_records: u64,
    /// Users learnt from lastlog (their last login only).
    pub lastlog_users: u64,
    /// wtmp and lastlog records that are not records (wrong type, a cut
    /// record at the end, a time in the future): skipped.
    pub bad_records: u64,
    /// What could not be read (a missing or unreadable wtmp, lastlog or
    /// account database), in words.
    pub notes: Vec<String>,
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
            write!(f, "{}: nothing learnt ({why}", self.source)?;
            for note in &self.notes {
                write!(f, "; {note}")?;
            }
            return write!(f, ")");
        }
        write!(
            f,
            "{}: {} users, {} networks, {} sessions over {} days ({} lines, {} files",
            self.source,
            self.users.len(),
            self.networks.len(),
            self.sessions,
            self.days(),
            self.lines,
            self.files.len()
        )?;
        if self.wtmp_records > 0 {
            write!(f, "; {} wtmp records before the logs", self.wtmp_records)?;
        }
        if self.lastlog_users > 0 {
            write!(f, "; {} users' last login from lastlog", self.lastlog_users)?;
        }
        if self.bad_records > 0 {
            write!(f, "; {} bad wtmp/lastlog records skipped", self.bad_records)?;
        }
        for note in &self.notes {
            write!(f, "; {note}")?;
        }
        write!(f, ")")
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
/// rewritten every megabyte; elsewhere (a journal, a log file) a line every
/// 64 MB, so a service log is not flooded, or every megabyte when asked
/// (`learn --progress`).
pub struct Progress {
    terminal: bool,
    enabled: bool,
    asked: bool,
    next: u64,
}

impl Progress {
    /// Progress on stderr (`enabled` false: silent); `asked`: a line every
    /// megabyte even when stderr is not a terminal.
    pub fn stderr(enabled: bool, asked: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let mut progress = Progress { terminal, enabled, asked, next: 0 };
        progress.next = progress.step();
        progress
    }

    fn step(&self) -> u64 {
        if self.terminal || self.asked {
            1 << 20
        } else {
            64 << 20
        }
    }

    fn update(&mut self, what: &str, bytes: u64, lines: u64) {
        if !self.enabled || bytes < self.next {
            return;
        }
        // The next whole step: one line per megabyte passed, whatever the
        // size of the reads.
        self.next = (bytes / self.step() + 1) * self.step();
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

/// What `learn` reads beyond each source's own history (see
/// [`LearnConfig`], whose defaults these are).
#[derive(Debug, Clone)]
pub struct LearnOptions {
    /// How far back the journal is read, days.
    pub journal_days: u64,
    /// A wtmp file (and its record layout): the logins before the logs.
    pub wtmp: Option<(PathBuf, UtmpArch)>,
    /// A lastlog file: users the history did not show.
    pub lastlog: Option<PathBuf>,
    /// The account database naming lastlog's uids.
    pub passwd: PathBuf,
}

impl Default for LearnOptions {
    fn default() -> LearnOptions {
        LearnOptions::from_config(&LearnConfig::default())
    }
}

impl LearnOptions {
    /// The options the configuration's `[learn]` table gives (`run` uses
    /// them as they are; `learn`'s flags override them).
    pub fn from_config(config: &LearnConfig) -> LearnOptions {
        LearnOptions {
            journal_days: config.journal_days,
            wtmp: config.wtmp.clone().map(|path| (path, config.utmp_arch.unwrap_or_else(native_utmp_arch))),
            lastlog: config.lastlog.clone(),
            passwd: config.passwd.clone(),
        }
    }
}

/// The utmp layout of the machine the agent runs on.
pub fn native_utmp_arch() -> UtmpArch {
    if cfg!(target_arch = "aarch64") {
        UtmpArch::Aarch64
    } else if cfg!(target_arch = "arm") {
        UtmpArch::Armv7
    } else {
        UtmpArch::X86_64
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
            let begins = logs_begin(learnt.files.first().map_or(path, PathBuf::as_path), format, analyzer);
            if let Some((wtmp, arch)) = &options.wtmp {
                learn_wtmp(wtmp, *arch, begins, &mut pipeline, scorer, &mut learnt, progress);
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
                    }
                    progress.update(&name, base_bytes + count.get(), base_lines + lines_here);
                })
                .map_err(Error::io(&file))?;
                learnt.lines += lines_here;
                learnt.bytes = base_bytes + count.get();
                pipeline.drain(scorer, &mut records);
                learnt.add(&mut records);
            }
            if let Some(lastlog) = &options.lastlog {
                learn_lastlog(lastlog, &options.passwd, begins, &mut pipeline, analyzer, &mut learnt);
            }
            if learnt.files.is_empty() && learnt.wtmp_records == 0 && learnt.lastlog_users == 0 {
                learnt.skipped = Some(format!("no rotated files beside {}", path.display()));
            }
        }
        SourceKind::Journald => {
            let since = now_secs().saturating_sub(options.journal_days.saturating_mul(86_400));
            let begins = Some(i64::try_from(since).unwrap_or(i64::MAX));
            if let Some((wtmp, arch)) = &options.wtmp {
                learn_wtmp(wtmp, *arch, begins, &mut pipeline, scorer, &mut learnt, progress);
            }
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
                }
                progress.update("journal", bytes, lines);
            })?;
            learnt.lines = lines;
            learnt.bytes = bytes;
            pipeline.drain(scorer, &mut records);
            learnt.add(&mut records);
            if let Some(lastlog) = &options.lastlog {
                learn_lastlog(lastlog, &options.passwd, begins, &mut pipeline, analyzer, &mut learnt);
            }
            if lines == 0 && learnt.wtmp_records == 0 && learnt.lastlog_users == 0 {
                learnt.skipped = Some("no journal entries before this boot".into());
            }
        }
    }
    progress.done();
    Ok((learnt, pipeline))
}

/// Where the log at `path` begins: the time of its first line understood
/// (within its first lines), by a scratch analyzer of the same settings.
fn logs_begin(path: &Path, format: Option<LogFormat>, analyzer: &AnalyzerConfig) -> Option<i64> {
    const LOOK_AT: usize = 10_000;
    let input = open_maybe_gzip(path).ok()?;
    let mut reader = BufReader::new(input);
    let mut scratch = Analyzer::new(analyzer.clone());
    let mut buf = Vec::new();
    for _ in 0..LOOK_AT {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).ok()? == 0 {
            return None;
        }
        let line = String::from_utf8_lossy(buf.strip_suffix(b"\n").unwrap_or(&buf)).into_owned();
        scratch.feed_line(&line, format.unwrap_or(LogFormat::Auto));
        if let Some(at) = scratch.latest_secs() {
            return Some(at);
        }
    }
    None
}

/// The logins a wtmp file (and its rotated files) recorded before `before`
/// (all without it), record by record. What cannot be read is noted, never an error: the
/// logs themselves are still learnt.
fn learn_wtmp(
    path: &Path,
    arch: UtmpArch,
    before: Option<i64>,
    pipeline: &mut Pipeline,
    scorer: &Scorer,
    learnt: &mut Learnt,
    progress: &mut Progress,
) {
    // logrotate keeps last month's as `wtmp.1` (`.gz` if compressed): oldest first.
    for rotated in history_files(path) {
        learn_wtmp_file(&rotated, arch, before, pipeline, scorer, learnt, progress);
    }
    learn_wtmp_file(path, arch, before, pipeline, scorer, learnt, progress);
}

/// One wtmp file's records (see [`learn_wtmp`]).
fn learn_wtmp_file(
    path: &Path,
    arch: UtmpArch,
    before: Option<i64>,
    pipeline: &mut Pipeline,
    scorer: &Scorer,
    learnt: &mut Learnt,
    progress: &mut Progress,
) {
    let file = match open_maybe_gzip(path) {
        Ok(file) => file,
        Err(e) => return learnt.notes.push(format!("wtmp {e}")),
    };
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut record = [0u8; UTMP_RECORD];
    let mut records = Vec::new();
    let mut read = 0u64;
    loop {
        match read_record(&mut reader, &mut record) {
            Ok(0) => break,
            Ok(n) if n < UTMP_RECORD => {
                learnt.bad_records += 1; // cut short: a write interrupted, or not a wtmp
                break;
            }
            Ok(_) => {}
            Err(e) => {
                learnt.notes.push(format!("wtmp {}: {e}", path.display()));
                break;
            }
        }
        read += UTMP_RECORD as u64;
        match utmp::parse(&record, arch) {
            Ok(r) if before.is_none_or(|b| r.ts_ms.div_euclid(1000) < b) => {}
            Ok(_) => continue,
            Err(_) => {
                learnt.bad_records += 1;
                continue;
            }
        }
        pipeline.analyzer_mut().feed_utmp(&record, arch);
        learnt.wtmp_records += 1;
        if learnt.wtmp_records.is_multiple_of(DRAIN_EVERY) {
            pipeline.drain(scorer, &mut records);
            learnt.add(&mut records);
            progress.update(&path.display().to_string(), read, learnt.wtmp_records);
        }
    }
    pipeline.drain(scorer, &mut records);
    learnt.add(&mut records);
    progress.done();
}

/// Fills `buf` as far as the reader goes: the bytes read (less than its
/// length only at the end).
fn read_record(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// glibc's `struct lastlog`: a 32-bit time, the terminal (32 bytes), the
/// host (256 bytes), at `uid × 292` in the file. The same on x86_64,
/// aarch64 and armv7.
const LASTLOG_RECORD: u64 = 292;

/// The last logins lastlog recorded of users the history did not show, from
/// before the logs begin: one login each (its hour and network), as if a
/// log line had shown it.
fn learn_lastlog(
    path: &Path,
    passwd: &Path,
    before: Option<i64>,
    pipeline: &mut Pipeline,
    analyzer: &AnalyzerConfig,
    learnt: &mut Learnt,
) {
    use std::io::{Seek, SeekFrom};
    let accounts = match std::fs::read_to_string(passwd) {
        Ok(text) => text,
        Err(e) => return learnt.notes.push(format!("lastlog not read: {}: {e}", passwd.display())),
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) => return learnt.notes.push(format!("lastlog {}: {e}", path.display())),
    };
    let size = file.metadata().map_or(0, |m| m.len());
    if size % LASTLOG_RECORD != 0 {
        learnt.bad_records += 1; // a cut last record: the others still stand
    }
    let now = i64::try_from(now_secs()).unwrap_or(i64::MAX);
    let zone = analyzer.local_zone();
    let mut logins = Vec::new();
    for entry in accounts.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let mut fields = entry.split(':');
        let (Some(user), Some(uid)) = (fields.next(), fields.nth(1).and_then(|u| u.parse::<u64>().ok())) else {
            continue;
        };
        if (uid + 1) * LASTLOG_RECORD > size {
            continue; // beyond the file: never logged in
        }
        let mut record = [0u8; LASTLOG_RECORD as usize];
        if file.seek(SeekFrom::Start(uid * LASTLOG_RECORD)).and_then(|_| file.read_exact(&mut record)).is_err() {
            learnt.bad_records += 1;
            continue;
        }
        let at = i64::from(u32::from_le_bytes([record[0], record[1], record[2], record[3]]));
        if at == 0 {
            continue; // never logged in
        }
        if at > now + 86_400 {
            learnt.bad_records += 1; // not a time this device has seen
            continue;
        }
        if before.is_some_and(|b| at >= b) || pipeline.detector().baselines().sessions_of(user) > 0 {
            continue; // the logs hold it, or the user is known from them
        }
        let text = |bytes: &[u8]| {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            String::from_utf8_lossy(&bytes[..end]).into_owned()
        };
        let host = text(&record[36..]);
        let ip = host.parse::<IpAddr>().ok();
        logins.push((at, user.to_owned(), ip));
    }
    // Oldest first, as the logs are read.
    logins.sort();
    for (at, user, ip) in logins {
        let offset = zone.offset_at(at.saturating_mul(1000));
        let login = Observation {
            kind: RecordKind::Session,
            source_ip: ip,
            user: Some(user.clone()),
            start: at,
            end: None,
            open: true,
            fingerprint: Fingerprint {
                login_hour: ((at + i64::from(offset)).rem_euclid(86_400) / 3600) as u8,
                session_duration_min: 0.0,
                commands: 0,
                failed_logins: 0,
                protocol: Protocol::Ssh,
                typing_speed_wpm: None,
                risky_commands: Some(0),
            },
            commands: Vec::new(),
            session: None,
            source: None,
            device: None,
        };
        if pipeline.detector_mut().learn_past(&login) {
            learnt.lastlog_users += 1;
            learnt.users.insert(user);
            if let Some(ip) = ip {
                learnt.networks.insert(network(ip));
            }
        }
    }
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
