//! Ingest with and without alert rules, deterministically, for counting
//! instructions under callgrind (`scripts/bench/alerts-ir.sh`): the count
//! does not depend on the machine's load, so it can be taken on a shared
//! machine, where wall-clock figures cannot.
//!
//! `alerts_ir VARIANT ROWS PASS_EVERY` stores `ROWS` results (those of
//! `collector/benches/alerts.rs`) as inserts of 100, each its own group
//! commit, into a fresh SQLite store. `VARIANT` is `none` (no rules) or
//! `rules` (the 20 rules): then after every `PASS_EVERY` results stored it
//! evaluates as the service's evaluation task does when it wakes up (a pass;
//! another at once while a pass comes back full). With `PASS_EVERY` at
//! `max_rows_per_pass` (5,000) that is the service under sustained ingest,
//! where the evaluation drains a backlog in full passes; at 1,000 it is
//! ingest of 1,000 results a second with the 1 s interval. The script runs
//! two sizes per variant and divides the difference by the rows between
//! them, so start-up (runtime, schema, first alerts) cancels out.

use std::sync::Arc;

use bfp_collector::store::sqlite::{SqliteConfig, SqliteStore};
use bfp_collector::store::{Alerts, NewPrediction, Predictions, Store};

mod support;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: alerts_ir none|rules ROWS PASS_EVERY";
    let (variant, rows, every) = match &args[1..] {
        [v, r, e] => (v.as_str(), r.parse::<usize>().expect(usage), e.parse::<usize>().expect(usage)),
        _ => panic!("{usage}"),
    };
    let config = match variant {
        "none" => None,
        "rules" => Some(support::config()),
        _ => panic!("{usage}"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(&SqliteConfig::new(dir.path().join("i.db"))).expect("store"));
    let (stored, evaluated) = rt.block_on(async {
        let mut evaluated = 0;
        if let Some(config) = &config {
            // The evaluation task's first pass, at start.
            evaluated += store.evaluate_alerts(config.clone()).await.expect("pass").results;
        }
        let mut stored = 0;
        while stored < rows {
            let chunk: Vec<NewPrediction> = (stored..stored + 100).map(support::result).collect();
            store.insert(chunk).await.expect("insert");
            stored += 100;
            if let Some(config) = config.as_ref().filter(|_| stored % every == 0) {
                loop {
                    let pass = store.evaluate_alerts(config.clone()).await.expect("pass");
                    evaluated += pass.results;
                    if pass.results < u64::from(config.max_rows_per_pass) {
                        break;
                    }
                }
            }
        }
        (stored, evaluated)
    });
    rt.block_on(store.shutdown());
    println!("{variant}: {stored} results stored, {evaluated} evaluated");
}
