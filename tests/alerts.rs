//! Alerts: the real agent follows a real log with a brute force and forwards; the
//! real collector groups what it stores into one alert per source address
//! as its rules say, counts exactly what each groups (also across a
//! SIGKILL), lets an analyst acknowledge and resolve them, and refuses a bad
//! rule file at start.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use bfp_e2e::agent::{consumed, real_log, temp_dir, wait_until, RunningAgent};
use bfp_e2e::forward::{agent_config, agent_rows, device_add, wait_drained};
use bfp_e2e::{binary, get, operator_token, post_json, send, Backend, Collector};

/// One rule per kind of result: suspicious sessions grouped by the
/// attacking address, and suspicious source windows (the agent's own
/// aggregate of an address's attempts) grouped into one campaign alert.
const RULES: &str = r#"
[alert]
interval_secs = 1
max_rows_per_pass = 50

[[alert.rule]]
name = "suspicious-sessions"
kinds = ["session"]
group_by = "source_ip"
window_secs = 86400

[[alert.rule]]
name = "brute-force-campaign"
kinds = ["source"]
min_confidence = 0.5
group_by = "rule"
window_secs = 86400
"#;

fn alerts(c: &Collector) -> Vec<serde_json::Value> {
    c.get("/api/alerts?limit=1000").json()["alerts"].as_array().expect("alerts").clone()
}

/// (rule, address) -> matches, as the stored results say the rules should
/// group them.
fn expected(base: &str) -> BTreeMap<(String, String), u64> {
    let mut want = BTreeMap::new();
    for row in agent_rows(base) {
        if row["prediction"] != "Suspicious" {
            continue;
        }
        let ip = row["source_ip"].as_str().filter(|s| !s.is_empty()).unwrap_or("-");
        let (rule, key) = match row["kind"].as_str() {
            Some("session") => ("suspicious-sessions", ip),
            Some("source") if row["confidence"].as_f64().unwrap_or(0.0) >= 0.5 => ("brute-force-campaign", "*"),
            _ => continue,
        };
        *want.entry((rule.to_string(), key.to_string())).or_default() += 1;
    }
    want
}

fn grouped(list: &[serde_json::Value]) -> BTreeMap<(String, String), u64> {
    let mut got = BTreeMap::new();
    for a in list {
        let key = (a["rule"].as_str().unwrap().to_string(), a["group_key"].as_str().unwrap().to_string());
        assert!(got.insert(key.clone(), a["count"].as_u64().unwrap()).is_none(), "two alerts for {key:?}");
    }
    got
}

fn wait_for_alerts(c: &Collector, want: &BTreeMap<(String, String), u64>) -> Vec<serde_json::Value> {
    let mut list = Vec::new();
    wait_until(60, "the alerts to cover every stored result", || {
        list = alerts(c);
        grouped(&list).values().sum::<u64>() >= want.values().sum::<u64>()
    });
    list
}

#[test]
fn a_real_brute_force_forwarded_by_the_agent_is_one_alert_per_source_across_a_sigkill() {
    for backend in Backend::ALL {
        a_real_brute_force_forwarded_by_the_agent_is_one_alert_per_source_across_a_sigkill_on(backend);
    }
}

fn a_real_brute_force_forwarded_by_the_agent_is_one_alert_per_source_across_a_sigkill_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let db = dir.db().to_os_string();
    let rules = dir.path().join("collector.toml");
    fs::write(&rules, RULES).unwrap();
    let args = ["--config".to_string(), rules.to_str().unwrap().to_string()];
    let token = device_add(&db, "bastion");
    let c = Collector::start(&db, &args);
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let config = agent_config(dir.path(), &c.url(""), &token, &log, &state, 16 << 20);
    fs::write(&log, fs::read(real_log("exposed-rhel/secure")).unwrap()).unwrap();
    let running = RunningAgent::start(&["--config", config.to_str().unwrap()], None);
    wait_until(180, "the whole log", || consumed(&state, &log));
    wait_drained(&c, "bastion", 180);
    running.stop();

    let want = expected(&c.url(""));
    let matches: u64 = want.values().sum();
    let largest = want.values().max().copied().unwrap_or(0);
    eprintln!("alerts e2e: {matches} suspicious results, {} groups, largest {largest}", want.len());
    assert!(largest >= 10, "the log holds a brute force: largest group {largest}");
    assert_eq!(want.keys().filter(|(rule, _)| rule == "brute-force-campaign").count(), 1);
    // SIGKILL (wherever its passes of 50 results stand): a pass is one
    // transaction with the cursor, so the restarted collector counts every
    // match exactly once.
    drop(c); // SIGKILL
    let c = Collector::start(&db, &args);
    let list = wait_for_alerts(&c, &want);
    assert_eq!(grouped(&list), want, "one alert per rule and source address, counting each match once");
    assert!(list.len() < matches as usize / 2, "{} alerts for {matches} suspicious results", list.len());

    // Each alert links to its results: the range starts and ends with
    // matches of its rule, and holds at least as many rows as it counts.
    let top = list.iter().max_by_key(|a| a["count"].as_u64()).unwrap().clone();
    let link = format!("{}{}&source=agent&prediction=Suspicious&limit=1", c.url(""), top["results"].as_str().unwrap());
    let page = get(&link).json();
    assert!(page["count"].as_u64().unwrap() >= top["count"].as_u64().unwrap(), "{page}");
    for id in [&top["first_result_id"], &top["last_result_id"]] {
        let row = get(&c.url(&format!("/api/results?min_id={id}&max_id={id}"))).json()["results"][0].clone();
        assert_eq!((row["kind"].as_str(), row["prediction"].as_str()), (Some("source"), Some("Suspicious")), "{row}");
    }

    // Analysts move it forward; states are filtered and counted in /metrics.
    let id = top["id"].as_i64().unwrap();
    // The change is recorded under the analyst's own name; `by` only adds a note.
    let analyst = format!("Bearer {}", operator_token(&db, "ana", "analyst"));
    let as_analyst = |action: &str, id: i64, body: &str| {
        let headers = [("Authorization", analyst.as_str()), ("Content-Type", "application/json")];
        send("POST", &c.url(&format!("/api/alerts/{id}/{action}")), &headers, Some(body.as_bytes()))
    };
    let acked = as_analyst("ack", id, r#"{"by": "night shift"}"#);
    assert_eq!(acked.status, 200, "{}", acked.body);
    assert_eq!(acked.json()["acknowledged_by"], "ana (night shift)");
    let resolved = as_analyst("resolve", id, "{}");
    assert_eq!(
        (resolved.json()["state"].as_str(), resolved.json()["resolved_by"].as_str()),
        (Some("resolved"), Some("ana"))
    );
    let back = as_analyst("ack", id, "{}");
    assert_eq!((back.status, back.json()["error"].as_str()), (409, Some("Conflict")));
    assert_eq!(as_analyst("ack", 999999, "{}").status, 404);
    assert_eq!(post_json(&c.url(&format!("/api/alerts/{id}/ack")), &serde_json::json!({})).status, 401);
    let bad = c.get("/api/alerts?state=closed");
    assert_eq!(bad.status, 400);
    let resolved_list = c.get("/api/alerts?state=resolved").json();
    assert_eq!(resolved_list["alerts"].as_array().unwrap().len(), 1);
    let trail = c.get("/api/audit").json();
    let changes: Vec<String> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "alert.state")
        .map(|e| {
            format!(
                "{} {} {}",
                e["actor"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                e["detail"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(changes, [format!("ana alert {id} resolved"), format!("ana alert {id} acknowledged")]);
    let metrics = c.get("/metrics").body;
    let rule = top["rule"].as_str().unwrap();
    assert!(metrics.contains(&format!("bfp_alerts{{rule=\"{rule}\",state=\"resolved\"}} 1")), "{metrics}");
    c.stop();

    // The terminal sees the same alerts in the database file.
    let out = Command::new(binary("bfp-collector"))
        .args(["alerts", "list", "--json", "--state", "resolved", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed.as_array().map(|a| a.iter().map(|x| x["id"].clone()).collect::<Vec<_>>()),
        Some(vec![top["id"].clone()])
    );
}

/// Starts the collector with `text` as its `--config` (`bad.toml` in
/// `dir`), which must refuse to start: its standard error.
pub(crate) fn start_fails(dir: &Path, text: &str) -> String {
    let rules = dir.join("bad.toml");
    fs::write(&rules, text).unwrap();
    let out = Command::new(binary("bfp-collector"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join("app.db"))
        .arg("--config")
        .arg(&rules)
        .output()
        .unwrap();
    assert!(!out.status.success(), "started with {text:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_rule_file_with_an_unknown_key_or_a_bad_regex_stops_the_start_with_a_clear_error() {
    let dir = temp_dir();
    let err = start_fails(dir.path(), "[[alert.rule]]\nname = \"x\"\nmin_confidense = 0.9\n");
    assert!(err.contains("unknown field `min_confidense`") && err.contains("bad.toml"), "{err}");
    let err = start_fails(dir.path(), "[[alert.rule]]\nname = \"x\"\nreason = \"failed (logins\"\n");
    assert!(err.contains("bad reason regex"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
