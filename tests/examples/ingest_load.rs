//! Load generator for `POST /api/ingest`: N simulated devices (one thread
//! each, one batch in flight per device, as real agents behave) send
//! postcard batches of R records with increasing sequence numbers for D
//! seconds, then print fingerprints stored per second and latency
//! percentiles. Used by `scripts/bench/forward.sh`.
//!
//! usage: ingest_load URL TOKENS_FILE SECONDS RECORDS_PER_BATCH

use std::time::{Duration, Instant};

use bfp_common::wire::CONTENT_TYPE;
use bfp_e2e::forward::sample_batch;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, tokens, secs, per_batch] = &args[..] else {
        eprintln!("usage: ingest_load URL TOKENS_FILE SECONDS RECORDS_PER_BATCH");
        std::process::exit(2);
    };
    let tokens: Vec<String> = std::fs::read_to_string(tokens).unwrap().lines().map(str::to_string).collect();
    let secs: u64 = secs.parse().unwrap();
    let per_batch: usize = per_batch.parse().unwrap();
    let url = format!("{}/api/ingest", url.trim_end_matches('/'));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let threads: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                let mut latencies = Vec::new();
                let mut stored = 0u64;
                // Above any earlier run's numbers on the same database.
                let mut seq =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
                while Instant::now() < deadline {
                    let body = sample_batch(seq, per_batch).encode().unwrap();
                    let t = Instant::now();
                    let mut r = agent
                        .post(&url)
                        .header("Content-Type", CONTENT_TYPE)
                        .header("Authorization", &format!("Bearer {token}"))
                        .send(&body[..])
                        .expect("request");
                    let text = r.body_mut().read_to_string().unwrap();
                    latencies.push(t.elapsed());
                    assert_eq!(r.status().as_u16(), 200, "{text}");
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    stored += v["stored"].as_u64().unwrap();
                    seq += 1;
                }
                (stored, latencies)
            })
        })
        .collect();
    let mut stored = 0;
    let mut latencies = Vec::new();
    for t in threads {
        let (s, l) = t.join().unwrap();
        stored += s;
        latencies.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "devices {}, records/batch {per_batch}, {:.1} s: {} batches, {stored} fingerprints stored, \
         {:.0} fingerprints/s, {:.0} batches/s; latency p50 {:?} p99 {:?} max {:?}",
        std::fs::read_to_string(&args[2]).unwrap().lines().count(),
        elapsed,
        latencies.len(),
        stored as f64 / elapsed,
        latencies.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99),
        latencies.last().unwrap()
    );
}
