//! Dev aid and whole-process benchmark: streams one log file (or `-` for
//! stdin) through the analyzer and prints each observation as a JSON line,
//! then the stats on stderr. The format is detected from the first 4 KB.
//!
//! `cargo run --release -p bfp-logs --example scan_dump -- FILE > obs.jsonl`
//! (`BFP_TIME_ZONE=Europe/Berlin` reads local times in that zone; default UTC)
use std::io::{BufRead, BufReader, BufWriter, Read, Write};

use bfp_logs::{Analyzer, AnalyzerConfig, LogFormat};

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "-".into());
    let input: Box<dyn Read> =
        if path == "-" { Box::new(std::io::stdin()) } else { Box::new(std::fs::File::open(&path)?) };
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let format = LogFormat::detect(reader.fill_buf()?);
    let reference = std::env::var("BFP_REFERENCE_TIME").ok().and_then(|t| t.parse().ok());
    // `BFP_TIME_ZONE=Europe/Berlin`: local times read in that zone (as the
    // agent does with the device's), to measure what a zone costs per line.
    let time_zone = std::env::var("BFP_TIME_ZONE").ok().map(|z| bfp_logs::LocalZone::parse(&z).expect("BFP_TIME_ZONE"));
    let mut a = Analyzer::new(AnalyzerConfig { reference_time: reference, time_zone, ..Default::default() });
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let bytes = line.strip_suffix(b"\n").unwrap_or(&line);
        // Valid UTF-8 (nearly every line) is borrowed; only broken lines are copied.
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(bytes),
        };
        a.feed_line(&text, format);
        for o in a.drain_ready() {
            serde_json::to_writer(&mut out, &o)?;
            out.write_all(b"\n")?;
        }
    }
    for o in a.finish() {
        serde_json::to_writer(&mut out, &o)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprintln!("{}", serde_json::to_string_pretty(a.stats()).unwrap_or_default());
    Ok(())
}
