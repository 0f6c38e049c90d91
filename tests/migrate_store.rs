//! `bfp-collector migrate-store`: a SQLite store made by the real collector
//! (100,000 CSV rows, predictions, a device with its token and a batch,
//! labels, an operator) copied into a throw-away PostgreSQL cluster, the
//! copy SIGKILLed once mid-way and resumed; then a collector on each
//! database answers the same.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bfp_e2e::forward::{device_add, post_auth, sample_batch};
use bfp_e2e::{binary, post_json, upload, Backend, Collector};
use bfp_testkit::pg::PgCluster;
use serde_json::json;

const ROWS: usize = 100_000;

fn migrate_store(from: &std::ffi::OsStr, to: &str) -> Command {
    let mut cmd = Command::new(binary("bfp-collector"));
    cmd.args(["migrate-store", "--chunk", "2000", "--from"]).arg(from).args(["--to", to]);
    cmd
}

#[test]
fn a_sqlite_store_is_copied_interrupted_once_resumed_and_verified() {
    let sqlite = Backend::Sqlite.fresh();
    let db = sqlite.db().to_os_string();
    let token = device_add(&db, "pi-1");
    let c = Collector::start(&db, &["--max-upload-bytes".into(), "16000000".into()]);
    let example = json!({"login_time":"03:00","session_duration":5,"commands":["ls","sudo"],"failed_logins":4,
                         "protocol":"TOR","typing_speed":120});
    let first = post_json(&c.url("/api/predict"), &example).json()["id"].as_i64().unwrap();
    let mut csv = String::from("LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed\n");
    for i in 0..ROWS {
        csv.push_str(&format!("{},{},{},{},SSH,{}\n", i % 24, 10 + i % 50, 5 + i % 20, i % 9, 35 + i % 20));
    }
    let r = upload(&c.url("/api/predict-csv"), "file", csv.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let body = sample_batch(1, 5).encode().unwrap();
    assert_eq!(post_auth(&c.url("/api/ingest"), Some(&token), bfp_common::wire::CONTENT_TYPE, &body).status, 200);
    let label =
        c.post_json(&format!("/api/results/{first}/feedback"), &json!({"label": "false_positive", "note": "n"}));
    assert_eq!(label.status, 200, "{}", label.body);
    let total = ROWS + 1 + 5;
    // Newest first too: the copied upload's rows are placed in event time
    // by an upload the copy finds in them.
    let pages = [
        "/api/results?limit=100",
        "/api/results?limit=50&offset=60000",
        "/api/results?labelled=true",
        "/api/results?order=newest&limit=100",
        "/api/results?order=newest&limit=20&offset=99990",
        "/api/results?order=newest&limit=20&before_id=50000",
    ];
    let before: Vec<String> = pages.iter().map(|p| c.get(p).body).collect();
    let analytics = c.get("/api/analytics").json();
    assert_eq!(analytics["total_predictions"], total as u64);
    assert!(c.stop().success());
    // The notification outbox and a destination's status (schema step 11).
    sqlite.execute(
        "INSERT INTO outbox (destination, event_id, alert_id, payload, created_at, attempts, next_attempt,
             last_error, delivered_at)
         VALUES ('hook', 'alert-1-raised', 1, '{\"id\":\"alert-1-raised\"}', 1700000000, 3, 1700000060, 'HTTP 500',
                 1700000090),
                ('hook', 'alert-1-escalated-4', 1, '{}', 1700000100, 0, 1700000100, NULL, NULL);
         INSERT INTO destination_status (name, delivered, failed, last_success_at, last_error, last_error_at)
         VALUES ('hook', 1, 2, 1700000090, 'HTTP 500', 1700000050);",
    );

    let cluster = PgCluster::start();
    let url = cluster.url();
    // Killed once it has committed some chunks of the predictions.
    let mut child = migrate_store(&db, &url).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let exists = cluster.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'migrate_store_progress'") == "1";
        if exists {
            let got = cluster.psql(
                "SELECT COALESCE((SELECT last_key FROM migrate_store_progress WHERE table_name = 'predictions'), 0)",
            );
            if got.parse::<i64>().is_ok_and(|k| k >= 10_000) {
                break;
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "migrate-store ended before it could be interrupted");
        assert!(Instant::now() < deadline, "no progress recorded");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial: usize = cluster.psql("SELECT count(*) FROM predictions").parse().unwrap();
    assert!(partial > 0 && partial < total, "interrupted mid-way: {partial} of {total} rows");
    let recorded: usize =
        cluster.psql("SELECT last_key FROM migrate_store_progress WHERE table_name = 'predictions'").parse().unwrap();
    assert_eq!(partial, recorded, "rows and recorded progress committed together");

    let out = migrate_store(&db, &url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let copied: usize = text.trim_start_matches("copied ").split(' ').next().unwrap().parse().unwrap();
    assert!(copied >= total - partial && copied < total, "only what was left is copied: {text}");
    let line = |table: &str| text.lines().find(|l| l.starts_with(&format!("{table} "))).unwrap_or("").to_string();
    assert!(line("predictions").contains(&format!(" {total} rows  sha256 ")), "{text}");
    for table in ["devices", "feedback", "counters", "id_blocks", "rollup_hourly", "users"] {
        assert!(line(table).contains(" sha256 "), "{table} verified: {text}");
    }
    assert_eq!(cluster.psql("SELECT count(*) FROM predictions"), total.to_string());
    // The per-chunk counts PostgreSQL keeps beside the block counts follow them.
    let chunks_differ = "SELECT count(*) FROM (
        SELECT block >> 6, source, prediction, SUM(n)::int8 FROM id_blocks GROUP BY 1, 2, 3
        EXCEPT SELECT chunk, source, prediction, n FROM id_chunks) d";
    assert_eq!(cluster.psql(chunks_differ), "0");
    assert_eq!(cluster.psql("SELECT sum(n) FROM id_chunks"), total.to_string());
    assert_eq!(cluster.psql("SELECT first_id || '-' || last_id FROM csv_uploads"), format!("2-{}", ROWS + 1));
    assert!(line("outbox").contains(" 2 rows  sha256 "), "{text}");
    assert!(line("destination_status").contains(" 1 rows  sha256 "), "{text}");

    // A second run has nothing left to copy and verifies again.
    let again = migrate_store(&db, &url).output().unwrap();
    let again_text = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(again.status.success() && again_text.starts_with("copied 0 rows now"), "{again_text}");

    // A collector on the copy answers as the original did, takes the device's
    // token (its history and sequence kept), and continues the ids.
    let pg = Collector::start(&url, &[]);
    let after: Vec<String> = pages.iter().map(|p| pg.get(p).body).collect();
    assert_eq!(after, before);
    assert_eq!(pg.get("/api/analytics").json(), analytics);
    let retry = post_auth(&pg.url("/api/ingest"), Some(&token), bfp_common::wire::CONTENT_TYPE, &body).json();
    assert_eq!(retry["duplicate"], true, "{retry}");
    let next = post_json(&pg.url("/api/predict"), &example).json();
    assert_eq!(next["id"], total as u64 + 1, "{next}");
    assert!(pg.stop().success());
}
