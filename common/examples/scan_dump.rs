//! Dev aid: prints the stats and observations of one log file as JSON lines.
//! `cargo run -p bfp-common --example scan_dump -- FILE`
use bfp_common::{Analyzer, AnalyzerConfig, LogFormat};

fn main() {
    let path = std::env::args().nth(1).expect("usage: scan_dump FILE");
    let bytes = std::fs::read(&path).expect("read");
    let format = LogFormat::detect(&bytes);
    let mut a = Analyzer::new(AnalyzerConfig { reference_time: Some(1_795_000_000), ..Default::default() });
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Vec::new();
    for line in text.lines() {
        a.feed_line(line, format);
        out.extend(a.drain_ready());
    }
    out.extend(a.finish());
    for o in &out {
        println!("{}", serde_json::to_string(o).unwrap());
    }
    eprintln!("{}", serde_json::to_string_pretty(a.stats()).unwrap());
}
