//! `bfp-agent scan`: offline analysis of log files (or stdin), each file's
//! format detected from its first bytes, one analyzer per file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use bfp_common::wire::RecordKind;
use bfp_detect::detector::{DetectConfig, Detector};
use bfp_logs::analyze::{AnalyzerConfig, LogFormat, ParseStats, UtmpArch};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::report::{host_of_line, write_table, Record, RecordLine};
use crate::scoring::Scorer;
use crate::source::Line;
use crate::source::{read_lines, UTMP_RECORD};

/// How `scan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// One JSON object per fingerprint, then a summary object.
    Jsonl,
    /// An aligned table for people.
    Table,
}

/// The last object of `scan --format jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Always `summary`.
    pub kind: &'static str,
    /// Files (or `-`) scanned.
    pub files: usize,
    /// Lines (and binary records) read.
    pub lines_read: u64,
    /// Lines by what the parser recognised (`sshd`, `sudo`, ...).
    pub lines_by_kind: BTreeMap<String, u64>,
    /// Lines the parser did not know.
    pub unknown_lines: u64,
    /// Unknown lines by program.
    pub unknown_by_program: BTreeMap<String, u64>,
    /// Session fingerprints reported.
    pub sessions: u64,
    /// Source (attacking address) fingerprints reported.
    pub sources: u64,
    /// Device-wide fingerprints reported.
    pub devices: u64,
    /// Failed login attempts read.
    pub failed_logins: u64,
    /// Accepted logins read.
    pub accepted_logins: u64,
    /// Of those, scored Suspicious.
    pub suspicious: u64,
    /// Version of the model used.
    pub model_version: String,
}

impl Summary {
    fn add_stats(&mut self, stats: &ParseStats) {
        self.lines_read += stats.lines;
        if let Ok(serde_json::Value::Object(kinds)) = serde_json::to_value(stats.by_kind) {
            for (kind, n) in kinds {
                *self.lines_by_kind.entry(kind).or_default() += n.as_u64().unwrap_or(0);
            }
        }
        self.unknown_lines += stats.unknown_total();
        for (program, n) in &stats.unknown {
            *self.unknown_by_program.entry(program.clone()).or_default() += n;
        }
        self.failed_logins += stats.failed_logins;
        self.accepted_logins += stats.accepted_logins;
    }

    fn add_records(&mut self, records: &[Record]) {
        for r in records {
            match r.kind {
                RecordKind::Session => self.sessions += 1,
                RecordKind::Source => self.sources += 1,
                RecordKind::Device => self.devices += 1,
            }
            self.suspicious += u64::from(r.prediction.is_suspicious());
        }
    }
}

/// Options of one scan.
pub struct ScanOptions<'a> {
    /// Files; `-` is standard input.
    pub files: &'a [PathBuf],
    /// Overrides detection for every file.
    pub log_format: Option<LogFormat>,
    /// Layout of utmp/wtmp/btmp records.
    pub utmp_arch: UtmpArch,
    /// The analyzer's settings (Tor list, windows).
    pub analyzer: AnalyzerConfig,
    /// The detectors' settings (`[detect]`).
    pub detect: DetectConfig,
    /// How to print.
    pub output: OutputFormat,
}

/// Scans the files and prints the records (as they complete, for jsonl:
/// memory stays flat on large files) and the summary.
pub fn scan(opts: &ScanOptions<'_>, scorer: &Scorer, out: &mut dyn Write) -> Result<Summary> {
    let mut summary = Summary { kind: "summary", model_version: scorer.version().to_string(), ..Summary::default() };
    let mut table = Vec::new();
    let device_host = crate::report::device_host_name();
    let out_err = |source| Error::Sink { path: "-".into(), source };
    for path in opts.files {
        let mut emit = |records: &mut Vec<Record>, host: Option<&str>, summary: &mut Summary| -> std::io::Result<()> {
            summary.add_records(records);
            match opts.output {
                OutputFormat::Jsonl => {
                    let host = host.unwrap_or(&device_host);
                    for r in records.drain(..) {
                        serde_json::to_writer(&mut *out, &RecordLine::new(&r, host))?;
                        out.write_all(b"\n")?;
                    }
                }
                OutputFormat::Table => table.append(records),
            }
            Ok(())
        };
        scan_one(path, opts, scorer, &mut summary, &mut emit)?;
        summary.files += 1;
    }
    match opts.output {
        OutputFormat::Jsonl => {
            serde_json::to_writer(&mut *out, &summary).map_err(|e| out_err(e.into()))?;
            out.write_all(b"\n").map_err(out_err)?;
        }
        OutputFormat::Table => {
            write_table(out, &table).map_err(out_err)?;
            writeln!(
                out,
                "\n{} files, {} lines ({} unknown), {} sessions, {} sources, {} device windows, {} suspicious (model {})",
                summary.files,
                summary.lines_read,
                summary.unknown_lines,
                summary.sessions,
                summary.sources,
                summary.devices,
                summary.suspicious,
                summary.model_version
            )
            .map_err(out_err)?;
            if !summary.unknown_by_program.is_empty() {
                // Which programs wrote them: what an operator checks first (a daemon at a
                // verbose log level, a program the agent does not read).
                let mut by: Vec<(&String, &u64)> = summary.unknown_by_program.iter().collect();
                by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let by: Vec<String> = by.iter().map(|(p, n)| format!("{p} {n}")).collect();
                writeln!(out, "unknown lines by program: {}", by.join(", ")).map_err(out_err)?;
            }
        }
    }
    out.flush().map_err(out_err)?;
    Ok(summary)
}

/// The compression format whose magic number `head` starts with, and the
/// tool that decompresses it to standard output.
fn compression(head: &[u8]) -> Option<(&'static str, &'static str)> {
    const MAGIC: [(&[u8], &str, &str); 4] = [
        (&[0x1f, 0x8b], "gzip", "zcat"),
        (b"BZh", "bzip2", "bzcat"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz", "xzcat"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd", "zstdcat"),
    ];
    MAGIC.iter().find(|(magic, _, _)| head.starts_with(magic)).map(|&(_, format, tool)| (format, tool))
}

/// How [`scan_one`] hands out completed records.
/// The host is the one the file's lines name (the last seen), if any.
type Emit<'a> = dyn FnMut(&mut Vec<Record>, Option<&str>, &mut Summary) -> std::io::Result<()> + 'a;

fn scan_one(
    path: &Path,
    opts: &ScanOptions<'_>,
    scorer: &Scorer,
    summary: &mut Summary,
    emit: &mut Emit<'_>,
) -> Result<()> {
    let out_err = |source| Error::Sink { path: "-".into(), source };
    let input: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(path).map_err(Error::io(path))?)
    };
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let head = reader.fill_buf().map_err(Error::io(path))?;
    if let Some((format, tool)) = compression(head) {
        return Err(Error::Compressed { path: path.into(), format, tool });
    }
    let format = match opts.log_format {
        Some(f) => f,
        None => LogFormat::detect(head),
    };
    let log = path.display().to_string();
    let mut records = Vec::new();
    let mut host: Option<String> = None;
    let mut pipeline =
        Pipeline::new(log, if format == LogFormat::Auto { None } else { Some(format) }, opts.analyzer.clone())
            .with_detector(Detector::new(opts.detect.clone()));
    if format == LogFormat::Utmp {
        let mut record = [0u8; UTMP_RECORD];
        loop {
            match reader.read_exact(&mut record) {
                Ok(()) => pipeline.analyzer_mut().feed_utmp(&record, opts.utmp_arch),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(Error::Io { path: path.into(), source: e }),
            }
            pipeline.drain(scorer, &mut records);
            emit(&mut records, None, summary).map_err(out_err)?;
        }
    } else {
        let mut n = 0u32;
        // The line callback cannot return an error: keep the first one.
        let mut failed = None;
        read_lines(&mut reader, &mut |line: Line<'_>| {
            if let Some(name) = host_of_line(line.text) {
                if host.as_deref() != Some(name) {
                    host = Some(name.to_string());
                }
            }
            pipeline.feed(line);
            n = n.wrapping_add(1);
            if n.is_multiple_of(4096) && failed.is_none() {
                pipeline.drain(scorer, &mut records);
                failed = emit(&mut records, host.as_deref(), summary).err();
            }
        })
        .map_err(Error::io(path))?;
        if let Some(e) = failed {
            return Err(out_err(e));
        }
    }
    pipeline.finish(scorer, &mut records);
    emit(&mut records, host.as_deref(), summary).map_err(out_err)?;
    summary.add_stats(pipeline.analyzer().stats());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bfp_logs::parse::utmp::{encode, DEAD_PROCESS, USER_PROCESS};

    fn scan_to_json(files: &[PathBuf]) -> Vec<serde_json::Value> {
        scan_with(files, DetectConfig::default())
    }

    fn scan_with(files: &[PathBuf], detect: DetectConfig) -> Vec<serde_json::Value> {
        let opts = ScanOptions {
            files,
            log_format: None,
            utmp_arch: UtmpArch::X86_64,
            analyzer: AnalyzerConfig::default(),
            detect,
            output: OutputFormat::Jsonl,
        };
        let mut out = Vec::new();
        scan(&opts, &Scorer::load(None).unwrap(), &mut out).unwrap();
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn a_wtmp_file_is_detected_and_read_record_by_record() {
        let dir = crate::testutil::tempdir("wtmp");
        let path = dir.join("wtmp");
        let ip = Some("203.0.113.9".parse().unwrap());
        let login = 1_700_000_000;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&encode(USER_PROCESS, 4242, "pts/0", "pi", "203.0.113.9", login, ip));
        bytes.extend_from_slice(&encode(DEAD_PROCESS, 4242, "pts/0", "", "", login + 600, None));
        bytes.extend_from_slice(&encode(USER_PROCESS, 4300, "pts/1", "root", "203.0.113.9", login + 700, ip));
        std::fs::write(&path, &bytes).unwrap();
        let objects = scan_to_json(&[path]);
        let summary = objects.last().unwrap();
        assert_eq!(summary["lines_read"], 3);
        assert_eq!(summary["lines_by_kind"]["utmp"], 3);
        let sessions: Vec<_> = objects.iter().filter(|o| o["kind"] == "session").collect();
        assert_eq!(sessions.len(), 2, "{objects:?}");
        let closed = sessions.iter().find(|o| o["user"] == "pi").unwrap();
        assert_eq!(closed["duration_min"], 10.0);
        assert_eq!(closed["open"], false);
        assert_eq!(closed["source_ip"], "203.0.113.9");
        let open = sessions.iter().find(|o| o["user"] == "root").unwrap();
        assert_eq!(open["open"], true, "still logged in at the end: reported as open");
    }

    #[test]
    fn json_lines_of_unknown_shape_are_counted_not_fatal() {
        let dir = crate::testutil::tempdir("json");
        let path = dir.join("odd.json");
        std::fs::write(&path, "{\"hello\":1}\n{\"eventid\":\"cowrie.session.connect\"}\nplain text\n").unwrap();
        let objects = scan_to_json(&[path]);
        assert_eq!(objects.last().unwrap()["lines_read"], 3);
    }

    #[test]
    fn the_detect_settings_reach_the_detectors() {
        // Twelve failures from one address spread over six hours: a slow
        // brute force by the default thresholds.
        let dir = crate::testutil::tempdir("scan-detect");
        let path = dir.join("slow.log");
        let mut text = String::new();
        for hour in 1..=6 {
            for minute in [10, 40] {
                text.push_str(&format!(
                    "2024-03-01T{hour:02}:{minute}:00+00:00 host sshd[{hour}{minute}]: Failed password for root \
                     from 198.51.100.7 port 40{minute} ssh2\n"
                ));
            }
        }
        std::fs::write(&path, text).unwrap();
        let slow_brute_force = |objects: &[serde_json::Value]| {
            objects.iter().any(|o| {
                o["reasons"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r.as_str().is_some_and(|r| r.starts_with("slow brute force"))))
            })
        };
        assert!(slow_brute_force(&scan_with(std::slice::from_ref(&path), DetectConfig::default())));
        let mut lenient = DetectConfig::default();
        lenient.campaign.slow_min_failures = 1000;
        assert!(!slow_brute_force(&scan_with(&[path], lenient)));
    }
}
