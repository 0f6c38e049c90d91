//! Counts N requests in `/metrics`' request metrics, for instruction counting:
//! `valgrind --tool=callgrind` on N = 0 and N = 1000000, the difference
//! divided by N is what the metrics middleware adds to each request
//! (independent of machine load). Mode `record` (default) is the real
//! `HttpMetrics::record` (request counter and latency histogram); mode
//! `counter` is the counting the collector did before the histograms (a
//! mutex-guarded map keyed by an owned route and status), kept here only as
//! the reference it is compared with. See docs/benchmarks.md, "Metrics".

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;

use bfp_collector::api::HttpMetrics;

/// Routes of a realistic mix: mostly predictions, some ingest and reads.
const ROUTES: [&str; 8] = [
    "/api/predict",
    "/api/predict",
    "/api/predict",
    "/api/predict",
    "/api/ingest",
    "/api/results",
    "/health",
    "/api/analytics",
];

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let mode = std::env::args().nth(2).unwrap_or_else(|| "record".into());
    match mode.as_str() {
        "record" => {
            let metrics = HttpMetrics::default();
            for i in 0..n {
                let route = ROUTES[i as usize % ROUTES.len()];
                metrics.record(black_box(route), 200, black_box(f64::from(i % 1000) * 1e-5));
            }
            black_box(&metrics);
        }
        "counter" => {
            let counts: Mutex<BTreeMap<(String, u16), u64>> = Mutex::default();
            for i in 0..n {
                let route = black_box(ROUTES[i as usize % ROUTES.len()]).to_string();
                if let Ok(mut c) = counts.lock() {
                    *c.entry((route.to_string(), 200)).or_default() += 1;
                }
            }
            black_box(&counts);
        }
        other => panic!("mode {other}: record or counter"),
    }
}
