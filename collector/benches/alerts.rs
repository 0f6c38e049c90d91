//! What alert rules cost the collector.
//!
//! - `alerts/match_20_rules`: one stored result matched against 20 rules
//!   (verdict, confidence, kinds, devices, users, reason regexes), CPU only;
//!   per result.
//! - `alerts/evaluate_pass_20_rules`: a whole evaluation pass as the
//!   collector runs it on the writer's connection: 5,000 stored results read
//!   after the cursor, grouped into alerts, outbox rows for two
//!   destinations, the cursor moved, one commit; per result.
//! - `ingest/no_rules`, `ingest/20_rules` and `ingest/20_rules_then_evaluated`,
//!   in one run: 1,000 results stored per iteration as 10 grouped inserts of
//!   100 (what agents' batches become), without rules; with 20 rules
//!   evaluated in the background as the service does (the bar: at most 10 %
//!   slower; how far evaluation lagged at the end is printed); and, the worst
//!   case, with each iteration also evaluating everything it stored before
//!   the next, serially. `scripts/bench/alerts.sh` prints the slowdowns.

// `is_multiple_of` is newer than the workspace's rust-version (1.85).
#![allow(clippy::manual_is_multiple_of)]

use std::hint::black_box;
use std::sync::Arc;

use bfp_collector::store::sqlite::{SqliteConfig, SqliteStore};
use bfp_collector::store::{Alerts, NewPrediction, Predictions, Store, StoredPrediction};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

mod support;
use support::{config, result};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn bench_match(c: &mut Criterion) {
    let config = config();
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&SqliteConfig::new(dir.path().join("m.db"))).expect("store");
    let stored: Vec<StoredPrediction> = rt.block_on(async {
        store.insert((0..1000).map(result).collect()).await.expect("insert");
        let q = bfp_collector::store::ResultsQuery { limit: 1000, ..Default::default() };
        store.results(q).await.expect("read").results
    });
    let mut group = c.benchmark_group("alerts");
    group.throughput(Throughput::Elements(stored.len() as u64));
    group.bench_function("match_20_rules", |b| {
        b.iter(|| {
            let mut n = 0u32;
            for p in &stored {
                for rule in &config.rules {
                    if rule.matches(black_box(p)) {
                        n += 1;
                        black_box(rule.group_by.key_of(p));
                    }
                }
            }
            n
        })
    });
    group.finish();
    rt.block_on(store.shutdown());
}

fn bench_pass(c: &mut Criterion) {
    const ROWS: usize = 5000;
    let config = config();
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("p.db");
    let store = SqliteStore::open(&SqliteConfig::new(&path)).expect("store");
    rt.block_on(async {
        for chunk in (0..ROWS).map(result).collect::<Vec<_>>().chunks(1000) {
            store.insert(chunk.to_vec()).await.expect("insert");
        }
    });
    // Each pass starts from no alerts and the cursor at 0, so every
    // iteration does the same work.
    let reset = rusqlite::Connection::open(&path).expect("second connection");
    reset.busy_timeout(std::time::Duration::from_secs(30)).expect("busy timeout");
    let mut group = c.benchmark_group("alerts");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(20);
    group.bench_function("evaluate_pass_20_rules", |b| {
        b.iter_batched(
            || {
                reset
                    .execute_batch("DELETE FROM alerts; DELETE FROM outbox; DELETE FROM alert_cursor;")
                    .expect("reset");
            },
            |()| {
                let pass = rt.block_on(store.evaluate_alerts(config.clone())).expect("pass");
                assert_eq!(pass.results, ROWS as u64);
                pass
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    rt.block_on(store.shutdown());
}

fn bench_ingest(c: &mut Criterion) {
    const PER_ITER: usize = 1000;
    let rt = runtime();
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(PER_ITER as u64));
    group.sample_size(20);
    let variants = [
        ("no_rules", None, false),
        ("20_rules", Some(config()), false),
        ("20_rules_then_evaluated", Some(config()), true),
    ];
    for (name, rules, drain) in variants {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("i.db");
        let store: Arc<SqliteStore> = Arc::new(SqliteStore::open(&SqliteConfig::new(&path)).expect("store"));
        let rows: Vec<Vec<NewPrediction>> =
            (0..PER_ITER / 100).map(|c| (c * 100..(c + 1) * 100).map(result).collect()).collect();
        // The rules active as in the service: evaluated in the background,
        // between the writer's group commits.
        let evaluator = rules
            .clone()
            .filter(|_| !drain)
            .map(|config| rt.spawn(bfp_collector::alerts::evaluate_forever(store.clone() as Arc<dyn Store>, config)));
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    for chunk in &rows {
                        store.insert(chunk.clone()).await.expect("insert");
                    }
                    if let (Some(config), true) = (&rules, drain) {
                        // The worst case: every row also evaluated before
                        // the next iteration, serially.
                        while store.evaluate_alerts(config.clone()).await.expect("pass").results > 0 {}
                    }
                })
            })
        });
        if let Some(task) = evaluator {
            let conn = rusqlite::Connection::open(&path).expect("second connection");
            let (stored, evaluated): (i64, i64) = conn
                .query_row(
                    "SELECT (SELECT MAX(id) FROM predictions), (SELECT last_result_id FROM alert_cursor)",
                    [],
                    // Both are NULL when a filter skipped this variant.
                    |r| Ok((r.get::<_, Option<i64>>(0)?.unwrap_or(0), r.get::<_, Option<i64>>(1)?.unwrap_or(0))),
                )
                .expect("cursor");
            // The evaluation is at most one interval (1 s) behind ingest.
            eprintln!("ingest/{name}: {evaluated} of {stored} stored results evaluated when ingest stopped");
            task.abort();
        }
        rt.block_on(store.shutdown());
    }
    group.finish();
}

criterion_group!(benches, bench_match, bench_pass, bench_ingest);
criterion_main!(benches);
