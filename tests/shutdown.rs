//! A clean stop of the real collector as a load balancer sees it: after
//! SIGTERM `/health/ready` answers 503 `shutting down` for `--drain-delay`
//! while a slow request already under way is still answered in full.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bfp_e2e::Collector;

#[test]
fn after_sigterm_ready_says_shutting_down_and_a_slow_upload_under_way_completes() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--drain-delay".to_string(), "3s".to_string()];
    let c = Collector::start(dir.path().join("app.db"), &args);
    assert_eq!(bfp_e2e::get(&c.url("/health/ready")).status, 200);

    // A CSV upload whose body arrives slowly: half of it now.
    let csv = std::fs::read(bfp_e2e::shared_data().join("seed/test.csv")).expect("seed CSV");
    let (content_type, body) = bfp_e2e::multipart("file", "test.csv", &csv);
    let mut upload = TcpStream::connect(c.addr).unwrap();
    upload.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "POST /api/predict-csv HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        c.addr,
        body.len()
    );
    upload.write_all(head.as_bytes()).unwrap();
    let half = body.len() / 2;
    upload.write_all(&body[..half]).unwrap();
    upload.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let stopped_at = Instant::now();
    c.terminate();
    // Readiness says so at once (the reply is checked against the document
    // like every other: 503 with the Unavailable body).
    let ready = loop {
        let r = bfp_e2e::get(&c.url("/health/ready"));
        if r.status != 200 || stopped_at.elapsed() > Duration::from_secs(2) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.json()["status"], "shutting down");
    // Liveness stays up while draining.
    assert_eq!(bfp_e2e::get(&c.url("/health")).status, 200);

    // Past the drain delay the listener is closed, and the upload under way
    // still gets its whole answer.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(stopped_at.elapsed()) + Duration::from_millis(500));
    assert!(TcpStream::connect(c.addr).is_err(), "still accepting after --drain-delay");
    upload.write_all(&body[half..]).unwrap();
    let mut answer = String::new();
    upload.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let json: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let rows = json["total_records"].as_i64().unwrap_or_default();
    assert!(rows > 0, "{json}");

    // And the collector stops cleanly with the rows committed.
    let status = c.stop();
    assert!(status.success(), "{status:?}");
    let stored: i64 = rusqlite::Connection::open(dir.path().join("app.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM predictions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, rows);
}
