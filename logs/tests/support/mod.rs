//! What the log tests share: the analyzer run over a whole file as the agent
//! runs it. Where the real logs are is `bfp-testkit`'s.

use std::path::Path;

use bfp_logs::analyze::{Analyzer, AnalyzerConfig, LogFormat, Observation, ParseStats};

pub use bfp_testkit::{real_dir, REFERENCE};

/// Everything the analyzer makes of the log file at `path` (format detected
/// from its first bytes, lines fed as the agent feeds them, ready
/// observations drained after each, the rest at the end), with its stats.
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
