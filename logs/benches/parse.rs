//! Parse + fingerprint throughput on real auth logs: every line goes through
//! header parsing, the program's parser, session reconstruction and the
//! source/device windows, and the observations are drained as they are ready.
//! Target: ≥ 1,000,000 auth-log lines per second on one core.
//!
//! Input: the real sshd logs of `../shared/data/real` (OpenSSH_2k, the elastic
//! Ubuntu host, the exposed RHEL host: 34,421 lines) repeated 4 times
//! (137,684 lines per iteration). `BFP_SHARED_DATA` overrides the data folder.

use bfp_testkit::real_lines;
use std::hint::black_box;

use bfp_logs::analyze::{Analyzer, AnalyzerConfig, LogFormat};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn run(lines: &[String], format: LogFormat) -> usize {
    let mut a = Analyzer::new(AnalyzerConfig { reference_time: Some(1_795_564_800), ..AnalyzerConfig::default() });
    let mut n = 0;
    for line in lines {
        a.feed_line(line, format);
        n += a.drain_ready().len();
    }
    n + a.finish().len()
}

fn bench(c: &mut Criterion) {
    let auth = real_lines(&["loghub/OpenSSH_2k.log", "elastic/auth.log", "exposed-rhel/secure"], 4);
    let cowrie = real_lines(&["cowrie/cowrie.json.2018-05-19"], 4);
    let mut g = c.benchmark_group("parse_fingerprint");
    g.sample_size(20);
    g.throughput(Throughput::Elements(auth.len() as u64));
    g.bench_function("auth_logs_syslog", |b| b.iter(|| black_box(run(&auth, LogFormat::Syslog))));
    g.bench_function("auth_logs_auto", |b| b.iter(|| black_box(run(&auth, LogFormat::Auto))));
    g.throughput(Throughput::Elements(cowrie.len() as u64));
    g.bench_function("cowrie_json", |b| b.iter(|| black_box(run(&cowrie, LogFormat::Cowrie))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
