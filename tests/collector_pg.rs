//! Several collectors on one PostgreSQL (a throw-away cluster): the real
//! agent replaying a real log through two of them while one is SIGKILLed and
//! restarted and the agent is SIGKILLed again and again stores exactly what
//! one fault-free agent stores, each result once; and the counters agree
//! with the rows after concurrent writes through both collectors.

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;
use std::time::Duration;

use bfp_e2e::agent::{
    agent, consumed, feed_with_random_kills, json_lines, real_log, wait_until, KillPlan, RunningAgent,
};
use bfp_e2e::forward::sample_batch;
use bfp_e2e::forward::{
    agent_config, agent_rows, device_add, key_of_row, key_of_scan, multiset, post_auth, wait_drained,
};
use bfp_e2e::{binary, free_port, get, post_json, upload, Backend, Collector};
use bfp_testkit::pg::PgCluster;
use serde_json::json;

fn collector_on(db: &str, port: u16) -> Collector {
    let mut cmd = Command::new(binary("bfp-collector"));
    cmd.arg("--listen").arg(format!("127.0.0.1:{port}")).arg("--db").arg(db);
    Collector::spawn(cmd).with_db(db)
}

type Keys = BTreeMap<String, usize>;

/// Sessions and sources of the agent rows a collector serves, keyed without
/// the verdict (a killed agent may rescore a session with more context).
fn stored(c: &Collector) -> (Keys, Keys, usize) {
    let rows = agent_rows(&c.url(""));
    let of = |kind: &str| multiset(rows.iter().filter(|r| r["kind"] == kind).map(|r| key_of_row(r, false)));
    (of("session"), of("source"), rows.len())
}

/// What one agent without faults stores from `source` (through one collector
/// on a SQLite file).
fn fault_free(source: &std::path::Path) -> (Keys, Keys, usize) {
    let db = Backend::Sqlite.fresh();
    let token = device_add(db.db(), "pi-clean");
    let c = Collector::start(db.db(), &[]);
    let log = db.path().join("auth.log");
    let state = db.path().join("state");
    let config = agent_config(db.path(), &c.url(""), &token, &log, &state, 16 << 20);
    fs::write(&log, fs::read(source).unwrap()).unwrap();
    let running = RunningAgent::start(&["--config", config.to_str().unwrap()], None);
    wait_until(120, "the whole log", || consumed(&state, &log));
    wait_drained(&c, "pi-clean", 60);
    running.stop();
    stored(&c)
}

#[test]
fn two_collectors_one_killed_and_an_agent_killed_again_and_again_store_each_result_once() {
    let source = real_log("elastic/auth.log");
    let text = fs::read_to_string(&source).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cluster = PgCluster::start();
    let url = cluster.url();
    let dir = bfp_e2e::agent::temp_dir();
    let token = device_add(&url, "pi-fleet");
    let (port_a, port_b) = (free_port(), free_port());
    let a = collector_on(&url, port_a);
    let b = collector_on(&url, port_b);
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let config = agent_config(dir.path(), "http://replaced-by-flags:1", &token, &log, &state, 16 << 20);
    let args = ["--config", config.to_str().unwrap(), "--collector", &a.url(""), "--collector", &b.url("")];

    // Collector A dies mid-stream (SIGKILL) and comes back on its port later.
    let url_a = url.clone();
    let outage = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        a.kill();
        std::thread::sleep(Duration::from_millis(2_500));
        collector_on(&url_a, port_a)
    });
    let plan = KillPlan { rounds: 10, append_pause_ms: 80, kill_pause_ms: 120 };
    let seed = feed_with_random_kills(&args, &state, &log, &lines, &plan);
    let a = outage.join().expect("collector A restarted");
    let last = RunningAgent::start(&args, None);
    wait_until(120, "the whole log", || consumed(&state, &log));
    let device = wait_drained(&b, "pi-fleet", 60);
    last.stop();

    let got = stored(&b);
    assert_eq!(stored(&a), got, "both collectors serve the same rows");
    let want = fault_free(&source);
    let doubled: Vec<_> = got.0.iter().filter(|(_, &n)| n > 1).collect();
    assert!(doubled.is_empty(), "seed {seed}: sessions stored twice: {doubled:?}");
    assert!(want.0.len() > 100, "the log has many sessions ({})", want.0.len());
    assert_eq!(got.0, want.0, "seed {seed}: the sessions one fault-free agent stores");
    assert!(got.1.values().all(|&n| n == 1), "seed {seed}: a source stored twice");
    // Scan reports every source window; a killed agent may close a window
    // at a different line than the fault-free one, never twice.
    let scanned = {
        let out = agent(&["scan", "--format", "jsonl", source.to_str().unwrap()]);
        let objects = json_lines(&out.stdout);
        multiset(objects.iter().filter(|o| o["kind"] == "source").map(|o| key_of_scan(o, false)))
    };
    for key in got.1.keys() {
        assert!(scanned.contains_key(key), "seed {seed}: a source scan does not report: {key}");
    }
    // The database holds each row once, and the device's counts agree.
    let rows: usize = cluster.psql("SELECT count(*) FROM predictions WHERE source = 'agent'").parse().unwrap();
    assert_eq!(rows, got.2);
    assert_eq!(device["records"].as_u64(), Some(got.2 as u64));
    assert_eq!(device["dropped"], 0);
    let dup = "SELECT count(*) FROM (SELECT kind, source_ip, \"user\", started_at, ended_at FROM predictions
               WHERE kind = 'session' GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1) d";
    assert_eq!(cluster.psql(dup), "0", "seed {seed}");
    a.stop();
    b.stop();
}

#[test]
fn counters_equal_the_rows_after_concurrent_writes_through_two_collectors() {
    let cluster = PgCluster::start();
    let url = cluster.url();
    let token = device_add(&url, "pi-1");
    let a = Collector::start(&url, &[]);
    let b = Collector::start(&url, &[]);
    let bases = [a.url(""), b.url("")];
    let example = json!({"login_time":"03:00","session_duration":5,"commands":["ls","sudo"],"failed_logins":4,
                         "protocol":"TOR","typing_speed":120});
    let mut csv = String::from("LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed\n");
    for i in 0..500 {
        csv.push_str(&format!("{},{},{},{},SSH,{}\n", i % 24, 10 + i % 50, 5 + i % 20, i % 9, 35 + i % 20));
    }
    std::thread::scope(|s| {
        for t in 0..8 {
            let (base, example) = (&bases[t % 2], &example);
            s.spawn(move || {
                for _ in 0..150 {
                    assert_eq!(post_json(&format!("{base}/api/predict"), example).status, 200);
                }
            });
        }
        for t in 0..4 {
            let (base, csv) = (&bases[t % 2], &csv);
            s.spawn(move || {
                for _ in 0..3 {
                    let r = upload(&format!("{base}/api/predict-csv"), "file", csv.as_bytes());
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            });
        }
        // The same agent batches sent to both collectors at once: each once.
        for t in 0..2 {
            let (base, token) = (&bases[t % 2], &token);
            s.spawn(move || {
                for seq in 1..=40u64 {
                    let body = sample_batch(seq, 5).encode().unwrap();
                    let r =
                        post_auth(&format!("{base}/api/ingest"), Some(token), bfp_common::wire::CONTENT_TYPE, &body);
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            });
        }
    });
    let rows: u64 = cluster.psql("SELECT count(*) FROM predictions").parse().unwrap();
    assert_eq!(rows, 8 * 150 + 4 * 3 * 500 + 40 * 5, "every write once, each agent batch once");
    for c in [&a, &b] {
        let analytics = get(&c.url("/api/analytics")).json();
        assert_eq!(analytics["total_predictions"].as_u64(), Some(rows), "{analytics}");
        let suspicious: u64 =
            cluster.psql("SELECT count(*) FROM predictions WHERE prediction = 'Suspicious'").parse().unwrap();
        assert_eq!(analytics["suspicious_users"].as_u64(), Some(suspicious), "{analytics}");
    }
    for (what, sql) in [
        ("counters", "SELECT sum(n) FROM counters"),
        ("id blocks", "SELECT sum(n) FROM id_blocks"),
        ("hourly roll-ups", "SELECT sum(n) FROM rollup_hourly"),
    ] {
        assert_eq!(cluster.psql(sql), rows.to_string(), "{what}");
    }
    let mismatched = "SELECT count(*) FROM (SELECT source, COALESCE(device, '') AS d, prediction, count(*) AS n
                      FROM predictions GROUP BY 1, 2, 3) p FULL JOIN counters c
                      ON c.source = p.source AND c.device = p.d AND c.prediction = p.prediction
                      WHERE c.n IS DISTINCT FROM p.n";
    assert_eq!(cluster.psql(mismatched), "0", "each counter equals its rows");
    let blocks = "SELECT count(*) FROM (SELECT id >> 12 AS block, source, prediction, count(*) AS n
                  FROM predictions GROUP BY 1, 2, 3) p FULL JOIN id_blocks b
                  ON b.block = p.block AND b.source = p.source AND b.prediction = p.prediction
                  WHERE b.n IS DISTINCT FROM p.n";
    assert_eq!(cluster.psql(blocks), "0", "each id block's count equals its rows");
    let device = a.get("/api/devices").json();
    assert_eq!(device["devices"][0]["records"], 200, "{device}");
    a.stop();
    b.stop();
}
