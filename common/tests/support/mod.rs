//! Shared by common's integration tests and benches (benches include it with
//! `#[path]`): where the real logs of `../shared/data/real` are.

use std::path::{Path, PathBuf};

use bfp_common::analyze::{Analyzer, AnalyzerConfig, LogFormat, Observation, ParseStats};

/// 2026-11-25 00:00 UTC: the tests read year-less dates as the year before it.
#[allow(dead_code)] // used by the log tests, not by the benches
pub const REFERENCE: i64 = 1_795_564_800;

/// `$BFP_SHARED_DATA`, else the repository root's sibling `shared/data` (CI)
/// or the nearest ancestor's (worktrees).
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BFP_SHARED_DATA").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    root.ancestors().map(|a| a.join("shared/data")).find(|d| d.join("real").is_dir()).unwrap_or_else(|| {
        panic!("no shared/data/real beside {} or its ancestors; set BFP_SHARED_DATA", root.display())
    })
}

/// The lines of `files` (paths under `real/`), the whole list `repeat` times:
/// bench inputs built from the real logs.
#[allow(dead_code)] // used by the benches, not by every test
pub fn real_lines(files: &[&str], repeat: usize) -> Vec<String> {
    let mut one = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(data_dir().join("real").join(f)).unwrap();
        one.extend(text.lines().map(str::to_owned));
    }
    (0..repeat).flat_map(|_| one.iter().cloned()).collect()
}

/// Everything the analyzer makes of the log file at `path` (format detected
/// from its first bytes, lines fed as the agent feeds them, ready
/// observations drained after each, the rest at the end), with its stats.
#[allow(dead_code)] // used by the log tests, not by the benches
pub fn analyze_file(path: &Path, config: AnalyzerConfig) -> (Vec<Observation>, ParseStats) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let format = LogFormat::detect(&bytes);
    let mut a = Analyzer::new(config);
    let mut out = Vec::new();
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        a.feed_line(&String::from_utf8_lossy(line), format);
        out.extend(a.drain_ready());
    }
    out.extend(a.finish());
    (out, a.stats().clone())
}
