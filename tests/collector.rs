//! The real `bfp-collector` binary on loopback with a temporary database:
//! the original system's acceptance tests, every bad input the contract names, paging
//! and filters, metrics/OpenAPI/CORS, and a restart that keeps the data.

use bfp_e2e::{get, post, post_json, request, shared_data, stand_in_model, upload, Backend, Collector, Reply, TestDb};
use serde_json::{json, Value};
use tempfile::TempDir;

const INVALID: &str = "Invalid or missing input data";

fn start(db: &TestDb, extra: &[&str]) -> Collector {
    let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Collector::start(db.db(), &args)
}

fn example() -> Value {
    json!({"login_time":"03:00","session_duration":5,"commands":["ls","sudo","chmod"],"failed_logins":4,"protocol":"TOR","typing_speed":120})
}

fn analytics(c: &Collector) -> Value {
    let r = get(&c.url("/api/analytics"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn total(c: &Collector) -> u64 {
    analytics(c)["total_predictions"].as_u64().expect("total_predictions")
}

fn assert_bad(r: &Reply, status: u16, detail_has: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r.content_type.as_deref().unwrap_or("").starts_with("application/json"), "{:?}", r.content_type);
    let body = r.json();
    assert!(body["error"].is_string(), "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(detail_has), "detail {detail:?} should mention {detail_has:?}");
}

/// `n` valid CSV rows; row i is Suspicious-looking when i % 3 == 0.
fn csv_rows(n: usize) -> String {
    let mut s = String::from("LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed\n");
    for i in 0..n {
        if i % 3 == 0 {
            s.push_str(&format!("{},{},{},{},TOR,{}\n", (i % 6) + 1, 3, 60, 8 + i % 5, 140 + i % 40));
        } else {
            s.push_str(&format!("{},{},{},{},SSH,{}\n", 9 + i % 8, 30 + i % 50, 5 + i % 20, 0, 35 + i % 20));
        }
    }
    s
}

#[test]
fn original_acceptance_tests() {
    for backend in Backend::ALL {
        original_acceptance_tests_on(backend);
    }
}

fn original_acceptance_tests_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let c = start(&dir, &[]);

    // Test 1: health, body exact.
    let r = get(&c.url("/health"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status":"OK","message":"Backend is running"}));

    // Test 2: the JSON example is Suspicious, confidence in [0.5, 1], with reasons.
    let r = post_json(&c.url("/api/predict"), &example());
    assert_eq!(r.status, 200, "{}", r.body);
    let p = r.json();
    assert_eq!(p["prediction"], "Suspicious", "{p}");
    let conf = p["confidence"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&conf), "{conf}");
    assert!(!p["reasons"].as_array().unwrap().is_empty(), "{p}");
    assert!(p["model_version"].is_string());
    assert_eq!(p["features"]["failed_logins"], 4);
    assert_eq!(p["features"]["protocol"], "TOR");
    let single_id = p["id"].as_i64().unwrap();

    // Test 3: only two fields is a 400 with `error`.
    let r = post_json(&c.url("/api/predict"), &json!({"login_time":"03:00","session_duration":5}));
    assert_bad(&r, 400, "commands");
    assert_eq!(r.json()["error"], INVALID);

    // Test 4: the original's 3-row CSV: 2 Normal, 1 Suspicious.
    let csv = std::fs::read(shared_data().join("seed/test.csv")).expect("shared seed/test.csv");
    let r = upload(&c.url("/api/predict-csv"), "file", &csv);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"total_records":3,"normal_users":2,"suspicious_users":1}));

    // Analytics agrees with what was stored: 1 single + 3 CSV rows.
    let a = analytics(&c);
    assert_eq!(
        a,
        json!({"total_predictions":4,"normal_users":2,"suspicious_users":2,"normal_percent":50.0,"suspicious_percent":50.0})
    );

    // Results list them, by id, with the original keys.
    let r = get(&c.url("/api/results"));
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["count"], 4);
    let rows = body["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["id"].as_i64().unwrap(), single_id);
    assert_eq!(rows[0]["source"], "single");
    assert_eq!(rows[0]["commands"], json!(["ls", "sudo", "chmod"]));
    let labels: Vec<&str> = rows.iter().map(|r| r["prediction"].as_str().unwrap()).collect();
    assert_eq!(labels, ["Suspicious", "Normal", "Suspicious", "Normal"]);
    let mut last = 0;
    for row in rows {
        let id = row["id"].as_i64().unwrap();
        assert!(id > last, "ordered by id");
        last = id;
        let conf = row["confidence"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&conf));
        let at = row["created_at"].as_str().unwrap();
        let b = at.as_bytes();
        assert!(
            at.len() == 19 && b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' && b[16] == b':',
            "created_at {at:?} is YYYY-MM-DD HH:MM:SS"
        );
        assert!(!row["reasons"].as_array().unwrap().is_empty());
    }
    assert!(rows[1..].iter().all(|r| r["source"] == "csv"));
    assert!(c.stop().success());
}

#[test]
fn every_bad_json_input_is_a_400_and_stores_nothing() {
    for backend in Backend::ALL {
        every_bad_json_input_is_a_400_and_stores_nothing_on(backend);
    }
}

fn every_bad_json_input_is_a_400_and_stores_nothing_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let c = start(&dir, &[]);
    let url = c.url("/api/predict");
    let with = |key: &str, value: Value| {
        let mut body = example();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = example();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let cases: Vec<(Reply, &str)> = vec![
        (post(&url, Some("application/json"), b"login_time=03:00"), "not valid JSON"),
        (post(&url, Some("application/json"), b""), "not valid JSON"),
        (post(&url, Some("application/json"), b"{\"login_time\": "), "not valid JSON"),
        (post(&url, Some("text/plain"), example().to_string().as_bytes()), "Content-Type"),
        (post(&url, Some("application/x-www-form-urlencoded"), b"login_time=03%3A00"), "Content-Type"),
        (post(&url, None, example().to_string().as_bytes()), "Content-Type"),
        (post_json(&url, &json!([1, 2, 3])), "body"),
        (post_json(&url, &without("protocol")), "protocol"),
        (post_json(&url, &without("typing_speed")), "typing_speed"),
        (post_json(&url, &with("login_time", json!(true))), "login_time"),
        (post_json(&url, &with("login_time", json!("25:00"))), "login_time"),
        (post_json(&url, &with("login_time", json!(24))), "login_time"),
        (post_json(&url, &with("session_duration", json!(-1))), "session_duration"),
        (post_json(&url, &with("session_duration", json!("5"))), "session_duration"),
        (post_json(&url, &with("commands", json!([1, 2]))), "commands"),
        (post_json(&url, &with("commands", json!(-3))), "commands"),
        (post_json(&url, &with("failed_logins", json!(1.5))), "failed_logins"),
        (post_json(&url, &with("failed_logins", json!(null))), "failed_logins"),
        (post_json(&url, &with("protocol", json!("SMTP"))), "protocol"),
        (post_json(&url, &with("protocol", json!(3))), "protocol"),
        (post_json(&url, &with("typing_speed", json!(-120))), "typing_speed"),
    ];
    for (r, detail) in &cases {
        assert_bad(r, 400, detail);
        assert_eq!(r.json()["error"], INVALID, "{}", r.body);
    }
    // Oversized body: 413, JSON.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(100 * 1024));
    assert_bad(&post(&url, Some("application/json"), big.as_bytes()), 413, "");
    assert_eq!(total(&c), 0, "no bad input stored anything");

    // Other mistakes are JSON too.
    assert_bad(&get(&c.url("/nope")), 404, "/nope");
    assert_bad(&get(&c.url("/api/predict")), 405, "");
    assert_bad(&get(&c.url("/api/results?limit=abc")), 400, "limit");
    assert_bad(&get(&c.url("/api/results?offset=-1")), 400, "offset");
    assert_bad(&get(&c.url("/api/results?source=web")), 400, "source");
    assert_bad(&get(&c.url("/api/results?prediction=maybe")), 400, "prediction");
    // A mistyped filter is refused by name, not ignored (it would answer every row).
    assert_bad(&get(&c.url("/api/results?usr=ubuntu")), 400, "usr");
    assert_bad(&get(&c.url("/api/results?kind=robot")), 400, "kind");
    assert_bad(&get(&c.url("/api/results?time=later")), 400, "time");
    assert_bad(&get(&c.url("/api/results?from=2026-12-05T15:00Z")), 400, "RFC 3339");
    assert_bad(&get(&c.url("/api/results?before_id=3")), 400, "order=newest");
    assert_bad(&get(&c.url("/api/results?min_confidence=2")), 400, "min_confidence");
    for fine in ["from=2026-12-05T15:00:00Z", "from=2026-12-05T15:00:00%2B02:00&time=ingest", "order=newest&user=u"] {
        assert_eq!(get(&c.url(&format!("/api/results?{fine}"))).status, 200, "{fine}");
    }

    // Case-insensitive protocol and the other input forms are accepted.
    let ok = post_json(
        &url,
        &json!({"login_time":14,"session_duration":2.5,"commands":7,"failed_logins":0,"protocol":"ssh","typing_speed":40}),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let ok = post(&url, Some("application/json; charset=utf-8"), example().to_string().as_bytes());
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(total(&c), 2);
}

#[test]
fn every_bad_csv_is_rejected_whole() {
    for backend in Backend::ALL {
        every_bad_csv_is_rejected_whole_on(backend);
    }
}

fn every_bad_csv_is_rejected_whole_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let c = start(&dir, &["--max-upload-bytes", "100000"]);
    let url = c.url("/api/predict-csv");
    let header = "LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed\n";

    assert_bad(&upload(&url, "file", b"Hour,Duration,Commands,Failed,Proto,Speed\n1,2,3,4,SSH,5\n"), 400, "header");
    assert_bad(&upload(&url, "file", b""), 400, "empty");
    assert_bad(&upload(&url, "file", header.as_bytes()), 400, "no data rows");
    assert_bad(&upload(&url, "upload", header.as_bytes()), 400, "`file`");
    assert_bad(&post(&url, Some("application/json"), b"{}"), 400, "multipart");
    assert_bad(&post(&url, None, b""), 400, "multipart");

    // A bad row anywhere: 400 naming it, and none of the good rows stored.
    let mut bad_row = csv_rows(50);
    bad_row.push_str("10,5,x,0,SSH,40\n");
    bad_row.push_str(&csv_rows(5)[header.len()..]);
    assert_bad(&upload(&url, "file", bad_row.as_bytes()), 400, "row 51");
    // ...also after thousands of good rows already went to the store.
    let mut late_bad_row = csv_rows(3000);
    late_bad_row.push_str("10,5,x,0,SSH,40\n");
    assert_bad(&upload(&url, "file", late_bad_row.as_bytes()), 400, "row 3001");
    let unknown_protocol = format!("{header}9,40,10,0,HTTPS,45\n2,5,80,4,SMTP,120\n");
    assert_bad(&upload(&url, "file", unknown_protocol.as_bytes()), 400, "row 2");
    let short_row = format!("{header}9,40,10,0,HTTPS,45\n2,5,80\n");
    assert_bad(&upload(&url, "file", short_row.as_bytes()), 400, "row 2");
    let out_of_range = format!("{header}24,40,10,0,HTTPS,45\n");
    assert_bad(&upload(&url, "file", out_of_range.as_bytes()), 400, "LoginHour");
    let not_utf8 = [header.as_bytes(), b"9,40,10,0,HTTP\xff,45\n"].concat();
    assert_bad(&upload(&url, "file", &not_utf8), 400, "row 1");

    // Oversized upload: 413, nothing stored.
    let big = csv_rows(8000);
    assert!(big.len() > 100000);
    assert_bad(&upload(&url, "file", big.as_bytes()), 413, "");
    assert_eq!(total(&c), 0, "no partial CSV stored");

    // The collector still works after all of that. SQLite gave a refused
    // upload's rows no id; PostgreSQL leaves the range a refused upload
    // reserved as a gap (given back after its rollback, a cursor reader
    // could have been told it was settled).
    let r = upload(&c.url("/api/predict-csv?ids=1"), "file", csv_rows(10).as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["total_records"], 10);
    let (first, last) = (r.json()["first_id"].as_i64().unwrap(), r.json()["last_id"].as_i64().unwrap());
    assert_eq!(last - first, 9, "{}", r.body);
    match backend {
        Backend::Sqlite => assert_eq!(first, 1, "{}", r.body),
        Backend::Postgres => assert!(first > 3000, "{}", r.body),
    }
    assert_eq!(total(&c), 10);
}

#[test]
fn results_page_by_offset_and_cursor_and_filter_with_filtered_counts() {
    for backend in Backend::ALL {
        results_page_by_offset_and_cursor_and_filter_with_filtered_counts_on(backend);
    }
}

fn results_page_by_offset_and_cursor_and_filter_with_filtered_counts_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let c = start(&dir, &[]);
    let r = upload(&c.url("/api/predict-csv"), "file", csv_rows(250).as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let summary = r.json();
    for _ in 0..2 {
        assert_eq!(post_json(&c.url("/api/predict"), &example()).status, 200);
    }

    let page = get(&c.url("/api/results")).json();
    assert_eq!(page["count"], 252);
    assert_eq!(page["results"].as_array().unwrap().len(), 100, "default page size");

    // Walk everything with the keyset cursor.
    let mut ids = Vec::new();
    let mut after = 0i64;
    loop {
        let page = get(&c.url(&format!("/api/results?limit=70&after_id={after}"))).json();
        assert_eq!(page["count"], 252, "count is the total, not the page");
        let rows = page["results"].as_array().unwrap();
        ids.extend(rows.iter().map(|r| r["id"].as_i64().unwrap()));
        match page["next_after_id"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(ids.len(), 252);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending, no duplicates");

    // Offset paging agrees with the cursor.
    let page = get(&c.url("/api/results?limit=10&offset=240")).json();
    let offset_ids: Vec<i64> = page["results"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(offset_ids, ids[240..250]);
    // Large limits are clamped, not refused.
    assert_eq!(get(&c.url("/api/results?limit=5000")).json()["results"].as_array().unwrap().len(), 252);

    // Filters, each with its filtered total.
    let count = |q: &str| {
        let page = get(&c.url(&format!("/api/results?limit=1000&{q}"))).json();
        let rows = page["results"].as_array().unwrap().clone();
        assert_eq!(page["count"].as_u64().unwrap() as usize, rows.len(), "{q}");
        rows
    };
    assert!(count("source=csv").iter().all(|r| r["source"] == "csv"));
    assert_eq!(count("source=csv").len(), 250);
    assert_eq!(count("source=single").len(), 2);
    assert_eq!(count("source=agent").len(), 0);
    assert_eq!(count("device=pi-1").len(), 0);
    let suspicious = count("prediction=Suspicious");
    assert!(suspicious.iter().all(|r| r["prediction"] == "Suspicious"));
    assert_eq!(suspicious.len() as u64, summary["suspicious_users"].as_u64().unwrap() + 2);
    assert_eq!(count("prediction=normal").len() as u64, summary["normal_users"].as_u64().unwrap());
    let both = count("source=csv&prediction=Suspicious");
    assert_eq!(both.len() as u64, summary["suspicious_users"].as_u64().unwrap());
    let a = analytics(&c);
    assert_eq!(a["total_predictions"], 252);
    assert_eq!(a["suspicious_users"].as_u64().unwrap() as usize, suspicious.len());
}

#[test]
fn a_restart_on_the_same_database_keeps_everything() {
    for backend in Backend::ALL {
        a_restart_on_the_same_database_keeps_everything_on(backend);
    }
}

fn a_restart_on_the_same_database_keeps_everything_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let c = start(&dir, &[]);
    assert_eq!(post_json(&c.url("/api/predict"), &example()).status, 200);
    assert_eq!(upload(&c.url("/api/predict-csv"), "file", csv_rows(30).as_bytes()).status, 200);
    let before_analytics = analytics(&c);
    let before_results = get(&c.url("/api/results?limit=1000")).body;
    assert!(c.stop().success(), "SIGTERM is a clean stop");

    let c = start(&dir, &[]);
    assert_eq!(analytics(&c), before_analytics);
    assert_eq!(get(&c.url("/api/results?limit=1000")).body, before_results);
    let next = post_json(&c.url("/api/predict"), &example()).json();
    assert_eq!(next["id"], 32, "ids continue after the 31 stored rows");
    assert_eq!(total(&c), 32);
    assert!(c.stop().success());
}

#[test]
fn metrics_openapi_and_cors() {
    for backend in Backend::ALL {
        metrics_openapi_and_cors_on(backend);
    }
}

fn metrics_openapi_and_cors_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let c = start(&dir, &["--cors-origin", "http://dashboard.test"]);
    assert_eq!(post_json(&c.url("/api/predict"), &example()).status, 200);

    let m = get(&c.url("/metrics"));
    assert_eq!(m.status, 200);
    assert!(m.body.contains("bfp_http_requests_total{route=\"/api/predict\",status=\"200\"} 1"), "{}", m.body);
    assert!(m.body.contains("bfp_predictions_stored{source=\"single\",prediction=\"Suspicious\"} 1"), "{}", m.body);
    assert!(m.body.contains("bfp_writer_rows_total 1"), "{}", m.body);

    let doc = get(&c.url("/api/openapi.json")).json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/health", "/api/predict", "/api/predict-csv", "/api/analytics", "/api/results", "/metrics"] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }

    let pre = request(
        "OPTIONS",
        &c.url("/api/predict"),
        &[("Origin", "http://dashboard.test"), ("Access-Control-Request-Method", "POST")],
    );
    assert_eq!(pre.header("access-control-allow-origin"), Some("http://dashboard.test"), "{pre:?}");
    let other = request("GET", &c.url("/health"), &[("Origin", "http://evil.test")]);
    assert_eq!(other.header("access-control-allow-origin"), None);
}

#[test]
fn port_env_sets_the_port_and_the_db_directory_is_created() {
    let dir = TempDir::new().unwrap();
    let port = bfp_e2e::free_port();
    let mut cmd = std::process::Command::new(bfp_e2e::binary("bfp-collector"));
    cmd.current_dir(dir.path()).env("PORT", port.to_string());
    let c = Collector::spawn(cmd);
    assert_eq!(c.addr.port(), port);
    assert_eq!(c.addr.ip().to_string(), "127.0.0.1");
    assert_eq!(get(&c.url("/health")).status, 200);
    assert!(dir.path().join("instance/app.db").is_file(), "default database instance/app.db");
    assert!(c.stop().success());
}

#[test]
fn model_flag_replaces_the_embedded_model_and_a_bad_one_is_refused() {
    // The model is not the store's: SQLite only.
    let dir = Backend::Sqlite.fresh();
    let embedded = start(&dir, &[]);
    let version = post_json(&embedded.url("/api/predict"), &example()).json()["model_version"].clone();
    assert!(embedded.stop().success());
    assert_ne!(version, "e2e-stand-in");

    let model = stand_in_model(dir.path());
    let c = start(&dir, &["--model", model.to_str().unwrap()]);
    let mut quiet = example();
    quiet["failed_logins"] = json!(0);
    let p = post_json(&c.url("/api/predict"), &quiet).json();
    assert_eq!((p["model_version"].as_str(), p["prediction"].as_str()), (Some("e2e-stand-in"), Some("Normal")));
    assert_eq!(p["reasons"], json!(["no failed logins before this session"]));
    drop(c);

    let garbage = dir.path().join("garbage.postcard");
    std::fs::write(&garbage, b"not a model").unwrap();
    let out = std::process::Command::new(bfp_e2e::binary("bfp-collector"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("x.db"))
        .arg("--model")
        .arg(&garbage)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("model"), "{}", String::from_utf8_lossy(&out.stderr));
}
