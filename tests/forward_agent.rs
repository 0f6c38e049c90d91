//! The real `bfp-agent run` forwarding a real log into the real
//! `bfp-collector` on loopback: exactly once through kills, collector
//! outages and a full spool.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bfp_e2e::agent::{
    agent, append, assert_private_tree, consumed, feed_with_random_kills, json_lines, real_log, temp_dir, wait_until,
    KillPlan, RunningAgent,
};
use bfp_e2e::forward::{agent_config, agent_rows, device_add, key_of_row, key_of_scan, multiset, wait_drained};
use bfp_e2e::{binary, free_port, Collector};

/// What `bfp-agent scan` reports for `source`: closed sessions (multiset of
/// keys) and the set of sources.
fn scan(source: &Path, verdict: bool) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let out = agent(&["scan", "--format", "jsonl", source.to_str().unwrap()]);
    assert!(out.status.success());
    let objects = json_lines(&out.stdout);
    let closed = |kind: &str| {
        multiset(objects.iter().filter(|o| o["kind"] == kind && o["open"] == false).map(|o| key_of_scan(o, verdict)))
    };
    (closed("session"), closed("source"))
}

fn collected(base: &str, verdict: bool) -> (BTreeMap<String, usize>, BTreeMap<String, usize>, usize) {
    let rows = agent_rows(base);
    let of = |kind: &str| multiset(rows.iter().filter(|r| r["kind"] == kind).map(|r| key_of_row(r, verdict)));
    (of("session"), of("source"), rows.len())
}

/// Sessions exactly as scan has them; sources each once and each one scan
/// also finds (a source window still open when the file ends is reported by
/// scan at its end, by run only once it closes).
fn assert_same(
    got: &(BTreeMap<String, usize>, BTreeMap<String, usize>, usize),
    want: &(BTreeMap<String, usize>, BTreeMap<String, usize>),
    what: &str,
) {
    let doubled = got.0.values().filter(|&&n| n > 1).count();
    assert_eq!(doubled, 0, "{what}: sessions stored twice");
    let missing: Vec<_> = want.0.keys().filter(|k| !got.0.contains_key(*k)).collect();
    assert!(missing.is_empty(), "{what}: {} sessions missing, e.g. {:?}", missing.len(), missing.first());
    assert_eq!(got.0, want.0, "{what}");
    assert!(want.0.len() > 100, "the log has many sessions ({})", want.0.len());
    assert!(got.1.values().all(|&n| n == 1), "{what}: a source stored twice");
    for key in got.1.keys() {
        assert!(want.1.contains_key(key), "{what}: a source scan does not report: {key}");
    }
}

#[test]
fn a_real_log_replayed_through_the_agent_arrives_exactly_as_scan_reports_it() {
    let source = real_log("elastic/auth.log");
    let dir = temp_dir();
    let db = dir.path().join("app.db");
    let token = device_add(&db, "pi-replay");
    let c = Collector::start(&db, &[]);
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let config = agent_config(dir.path(), &c.url(""), &token, &log, &state, 16 << 20);
    fs::write(&log, fs::read(&source).unwrap()).unwrap();
    let running = RunningAgent::start(&["--config", config.to_str().unwrap()], None);
    wait_until(60, "the whole log", || consumed(&state, &log));
    let device = wait_drained(&c, "pi-replay", 60);
    running.stop();

    // One pass over the whole file: the verdicts match scan's too.
    let got = collected(&c.url(""), true);
    assert_same(&got, &scan(&source, true), "replay");
    let lines = fs::read_to_string(&source).unwrap().lines().count() as u64;
    assert_eq!(device["lines_read"].as_u64(), Some(lines));
    assert_eq!(device["records"].as_u64(), Some(got.2 as u64));
    assert_eq!(device["dropped"], 0);
    assert!(device["model_version"].as_str().is_some_and(|v| !v.is_empty()));
    c.stop();
}

#[test]
fn with_its_first_collector_down_the_agent_fails_over_to_the_next_and_delivers_everything_once() {
    let source = real_log("elastic/auth.log");
    let dir = temp_dir();
    let db = dir.path().join("app.db");
    let token = device_add(&db, "pi-failover");
    let c = Collector::start(&db, &[]);
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let config = agent_config(dir.path(), "http://file-url-replaced-by-flags:1", &token, &log, &state, 16 << 20);
    fs::write(&log, fs::read(&source).unwrap()).unwrap();
    // Nothing listens on the first URL: every batch must go to the second.
    let down = format!("http://127.0.0.1:{}", free_port());
    let args = ["--config", config.to_str().unwrap(), "--collector", &down, "--collector", &c.url("")];
    let running = RunningAgent::start(&args, None);
    wait_until(60, "the whole log", || consumed(&state, &log));
    let device = wait_drained(&c, "pi-failover", 60);
    running.stop();
    let got = collected(&c.url(""), true);
    assert_same(&got, &scan(&source, true), "failover");
    assert_eq!(device["records"].as_u64(), Some(got.2 as u64));
    c.stop();
}

#[test]
fn killed_at_random_moments_and_rotated_the_agent_delivers_every_fingerprint_once() {
    let source = real_log("elastic/auth.log");
    let text = fs::read_to_string(&source).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let dir = temp_dir();
    let db = dir.path().join("app.db");
    let token = device_add(&db, "pi-kill");
    let c = Collector::start(&db, &[]);
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let config = agent_config(dir.path(), &c.url(""), &token, &log, &state, 16 << 20);
    let plan = KillPlan { rounds: 12, append_pause_ms: 60, kill_pause_ms: 80 };
    let seed = feed_with_random_kills(&["--config", config.to_str().unwrap()], &state, &log, &lines, &plan);
    let last = RunningAgent::start(&["--config", config.to_str().unwrap()], None);
    wait_until(60, "the whole log", || consumed(&state, &log));
    let device = wait_drained(&c, "pi-kill", 60);
    last.stop();
    let got = collected(&c.url(""), false);
    assert_same(&got, &scan(&source, false), &format!("kills (seed {seed})"));
    assert_eq!(device["records"].as_u64(), Some(got.2 as u64));
    assert_eq!(device["dropped"], 0);
    c.stop();
}

struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_collector_on(db: &Path, port: u16) -> Collector {
    let mut cmd = Command::new(binary("bfp-collector"));
    cmd.arg("--listen").arg(format!("127.0.0.1:{port}")).arg("--db").arg(db);
    Collector::spawn(cmd).with_db(db)
}

#[test]
fn what_is_spooled_while_the_collector_is_down_arrives_after_it_restarts() {
    let source = real_log("elastic/auth.log");
    let text = fs::read_to_string(&source).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let dir = temp_dir();
    let db = dir.path().join("app.db");
    let token = device_add(&db, "pi-outage");
    let port = free_port();
    let c = start_collector_on(&db, port);
    let url = c.url("");
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let config = agent_config(dir.path(), &url, &token, &log, &state, 16 << 20);
    let (first, rest) = lines.split_at(lines.len() / 3);
    append(&log, first);
    let mut running = RunningAgent::start(&["--config", config.to_str().unwrap()], None);
    wait_until(60, "the first third", || consumed(&state, &log));
    wait_drained(&c, "pi-outage", 60);
    let before = agent_rows(&url).len();
    c.stop();

    // The collector is away: the agent keeps reading and spools.
    append(&log, rest);
    wait_until(60, "the rest, spooled", || consumed(&state, &log));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(running.alive());
    let c = start_collector_on(&db, port);
    let device = wait_drained(&c, "pi-outage", 60);
    running.stop();
    let got = collected(&url, false);
    assert!(got.2 > before, "nothing arrived after the restart");
    assert_same(&got, &scan(&source, false), "outage");
    assert_eq!(device["records"].as_u64(), Some(got.2 as u64));
    assert!(device["last_error"].is_null(), "the error clears once delivered: {device}");
    c.stop();
}

#[test]
fn a_full_spool_drops_the_oldest_counts_them_and_keeps_running() {
    let source = real_log("elastic/auth.log");
    let dir = temp_dir();
    let db = dir.path().join("app.db");
    let token = device_add(&db, "pi-full");
    // Nobody listens there until the end.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let cap = 48 << 10;
    let config = agent_config(dir.path(), &url, &token, &log, &state, cap);
    let agent_proc = Command::new(binary("bfp-agent"))
        .args(["run", "--config", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed if an assertion fails before the clean stop below.
    let mut agent_proc = KillOnDrop(Some(agent_proc));
    fs::write(&log, fs::read(&source).unwrap()).unwrap();
    wait_until(60, "the whole log", || consumed(&state, &log));
    let spooled: u64 = fs::read_dir(state.join("spool"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(spooled <= cap, "spool holds {spooled} bytes, cap {cap}");
    assert!(agent_proc.0.as_mut().unwrap().try_wait().unwrap().is_none(), "the agent died");

    let c = start_collector_on(&db, port);
    let device = wait_drained(&c, "pi-full", 60);
    let dropped = device["dropped"].as_u64().unwrap();
    let stored = device["records"].as_u64().unwrap();
    assert!(dropped > 0, "nothing dropped: {device}");
    assert!(stored > 0, "nothing delivered: {device}");
    // Stop the agent: it reports how many results it produced in all.
    let agent_proc = agent_proc.0.take().unwrap();
    let pid = agent_proc.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let out = agent_proc.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let produced: u64 = stderr
        .lines()
        .find(|l| l.contains("stopped after"))
        .and_then(|l| l.strip_suffix(" results"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line in {stderr}"));
    assert_eq!(stored + dropped, produced, "every result either delivered or counted as dropped");
    // The newest survived: the last session of the log is there.
    let rows = agent_rows(&url);
    assert_eq!(rows.len() as u64, stored);
    let (sessions, _) = scan(&source, false);
    let last_start = sessions.keys().filter_map(|k| k.split('|').nth(3).map(str::to_string)).max().unwrap();
    assert!(rows.iter().any(|r| r["started_at"].to_string() == last_start), "the newest session was dropped");
    c.stop();
}

#[test]
fn the_agent_takes_the_agents_model_from_the_collector_never_its_predict_model() {
    // The collector scores /api/predict with a schema-1 model; agents score
    // schema 3 (novelty, source and escalation features) and must get the
    // agents' model.
    let dir = temp_dir();
    let db = dir.path().join("app.db");
    let token = device_add(&db, "pi-model");
    let predict_model = bfp_e2e::stand_in_model(dir.path());
    let agents_model = bfp_e2e::stand_in_agent_model(dir.path());
    let c = Collector::start(
        &db,
        &[
            "--model".into(),
            predict_model.to_str().unwrap().into(),
            "--agent-model".into(),
            agents_model.to_str().unwrap().into(),
        ],
    );
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let config = agent_config(dir.path(), &c.url(""), &token, &log, &state, 16 << 20);
    fs::write(&log, "").unwrap();
    // Under a loose umask: the state (results, addresses, the model) is
    // still created readable by the agent's user only.
    let running = RunningAgent::start_with_umask(&["--config", config.to_str().unwrap()], 0o022);
    wait_until(60, "the agents' model in a heartbeat", || {
        c.get("/api/devices").json()["devices"][0]["model_version"] == "e2e-agent-stand-in"
    });
    let source = real_log("elastic/auth.log");
    fs::write(&log, fs::read(&source).unwrap()).unwrap();
    wait_until(60, "the whole log", || consumed(&state, &log));
    wait_drained(&c, "pi-model", 60);
    running.stop();
    let rows = agent_rows(&c.url(""));
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["model_version"] == "e2e-agent-stand-in"), "{}", rows[0]);
    let kept = fs::read(state.join("collector-model.postcard")).expect("the fetched model is kept");
    assert_eq!(kept, fs::read(&agents_model).unwrap());
    let files = assert_private_tree(&state);
    for expected in ["layout-version", "checkpoint.json", "collector-model.postcard", "spool/meta.json"] {
        assert!(files.iter().any(|f| f == expected), "{expected} missing from {files:?}");
    }
    assert!(files.iter().any(|f| f.starts_with("spool/") && f.ends_with(".seg")), "{files:?}");
    assert!(files.iter().any(|f| f.contains(".baselines.")), "{files:?}");
    let device = &c.get("/api/devices").json()["devices"][0];
    assert!(device["last_error"].is_null(), "{device}");
    c.stop();
}

#[test]
fn an_agent_scoring_a_schema_two_model_delivers_its_records_as_a_schema_three_one_does() {
    // The wire carries fingerprints, not feature vectors: the collector
    // takes an agent's records whatever the schema of the model it scores
    // with. This agent keeps the agents' model from before the escalation
    // features (it never asks the collector for another).
    let schema2 = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/testdata/bfp-edge-model-schema2.postcard");
    let dir = temp_dir();
    let db = dir.path().join("app.db");
    let token = device_add(&db, "pi-schema2");
    let c = Collector::start(&db, &[]);
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let config = dir.path().join("agent.toml");
    fs::write(
        &config,
        format!(
            "state_dir = {state:?}\npoll_interval_ms = 10\nmodel = {schema2:?}\n\n[collector]\nurl = {:?}\n\
             token = {token:?}\nheartbeat_secs = 1\nbackoff_max_secs = 1\nmodel_check_secs = 0\n\n\
             [[source]]\npath = {log:?}\n",
            c.url("")
        ),
    )
    .unwrap();
    fs::write(&log, "").unwrap();
    let running = RunningAgent::start(&["--config", config.to_str().unwrap()], None);
    let source = real_log("elastic/auth.log");
    fs::write(&log, fs::read(&source).unwrap()).unwrap();
    wait_until(60, "the whole log", || consumed(&state, &log));
    wait_drained(&c, "pi-schema2", 60);
    running.stop();
    let rows = agent_rows(&c.url(""));
    assert!(rows.iter().filter(|r| r["kind"] == "session").count() > 100, "{} rows", rows.len());
    assert!(rows.iter().all(|r| r["model_version"] == "bfp-edge-forest-2.1.0"), "{}", rows[0]);
    let device = &c.get("/api/devices").json()["devices"][0];
    assert!(device["last_error"].is_null(), "{device}");
    assert_eq!(device["model_version"], "bfp-edge-forest-2.1.0", "{device}");
    c.stop();
}
