//! The collector under abuse, on loopback, against the real binary: idle,
//! slow and stalled clients are capped and closed by their documented
//! timeouts while another client is still served within a second; login
//! and token guessing get 429 past their limits, per client; bad bodies
//! still get their JSON 4xx; with a 256-descriptor limit and more idle
//! connections than that, a new client is still served.
//!
//! Clients are told apart by their source address: Linux routes all of
//! 127.0.0.0/8 to loopback, so a socket bound to 127.0.0.2 is another client.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bfp_e2e::forward::{device_add, post_auth, sample_batch};
use bfp_e2e::{binary, post, post_json, upload, Collector};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A connection to `addr` from the loopback address `src`.
async fn connect_from(src: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(src.parse().unwrap(), 0)).unwrap();
    socket.connect(addr).await.unwrap_or_else(|e| panic!("connect from {src}: {e}"))
}

/// When the server closed `stream` (EOF or reset), measured from `since`;
/// `None` if it was still open after `wait`. Whatever the server sent first
/// is returned too.
async fn closed_at<R: tokio::io::AsyncRead + Unpin>(
    mut stream: R,
    since: Instant,
    wait: Duration,
) -> (Option<Duration>, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::from_std(since + wait);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (None, got),
            Ok(Ok(0)) | Ok(Err(_)) => return (Some(since.elapsed()), got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A raw HTTP reply.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn parse(bytes: &[u8]) -> Raw {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP reply: {text:?}"));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Raw { status, head: head.to_string(), body: body.to_string() }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `GET path` from `src` on a connection of its own, read to the end.
async fn get_from(src: &str, addr: SocketAddr, path: &str) -> Raw {
    let mut s = connect_from(src, addr).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let (closed, got) = closed_at(s, Instant::now(), Duration::from_secs(10)).await;
    assert!(closed.is_some(), "no complete reply to GET {path} in 10 s");
    Raw::parse(&got)
}

/// The value of one sample line of a Prometheus text.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{metrics}"))
}

fn metrics(c: &Collector) -> String {
    let m = bfp_e2e::get(&c.url("/metrics"));
    assert_eq!(m.status, 200);
    m.body
}

const SLOW_REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[test]
fn idle_and_slow_clients_neither_starve_another_nor_stay_past_their_timeouts() {
    let dir = TempDir::new().unwrap();
    let c = Collector::start(
        dir.path().join("app.db"),
        &args(&["--max-connections-per-client", "20", "--idle-timeout", "3s", "--header-read-timeout", "2s"]),
    );
    let addr = c.addr;
    runtime().block_on(async {
        let start = Instant::now();
        // 40 idle connections from one client: 20 past its cap.
        let mut idle = Vec::new();
        for _ in 0..40 {
            let s = connect_from("127.0.0.1", addr).await;
            idle.push(tokio::spawn(closed_at(s, start, Duration::from_secs(10))));
        }
        // A slow client sending its headers one byte a second.
        let slow = connect_from("127.0.0.3", addr).await;
        let (rd, mut wr) = slow.into_split();
        let slow_start = Instant::now();
        let slow_closed = tokio::spawn(closed_at(rd, slow_start, Duration::from_secs(10)));
        let dripping = tokio::spawn(async move {
            let mut sent = 0;
            for b in SLOW_REQUEST {
                if wr.write_all(&[*b]).await.is_err() {
                    break;
                }
                sent += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            sent
        });
        // Another client is served at once.
        let t = Instant::now();
        let health = get_from("127.0.0.2", addr, "/health").await;
        let took = t.elapsed();
        assert_eq!(health.status, 200, "{health:?}");
        assert!(took < Duration::from_secs(1), "/health took {took:?} beside idle and slow clients");

        let mut closed = Vec::new();
        for task in idle {
            closed.push(task.await.unwrap().0.expect("every idle connection is closed within 10 s"));
        }
        closed.sort();
        let at_once = closed.iter().filter(|t| **t < Duration::from_millis(1500)).count();
        assert_eq!(at_once, 20, "the 20 past the per-client cap are closed at once: {closed:?}");
        for t in &closed[20..] {
            assert!(
                *t >= Duration::from_millis(2900) && *t < Duration::from_millis(5500),
                "an idle connection closes after the 3 s idle timeout (and its 0.75 s sweep), not at {t:?}"
            );
        }
        let slow_closed = slow_closed.await.unwrap().0.expect("the slow client is closed within 10 s");
        assert!(
            slow_closed >= Duration::from_millis(1900) && slow_closed < Duration::from_secs(5),
            "the slow client is closed by the 2 s header timeout, not at {slow_closed:?}"
        );
        let sent = dripping.await.unwrap();
        assert!(sent < SLOW_REQUEST.len(), "the slow request never completed ({sent} bytes sent)");
        println!(
            "idle/slow: /health in {took:?}; 20 refused by {:?}; idle closed {:?}..{:?}; slow closed at {slow_closed:?}",
            closed[19],
            closed[20],
            closed[39]
        );
    });
    let m = metrics(&c);
    assert_eq!(sample(&m, "bfp_connections_refused_total{reason=\"per_client\"}"), 20.0);
    assert!(sample(&m, "bfp_timeouts_total{kind=\"idle\"}") >= 20.0, "{m}");
    assert!(
        sample(&m, "bfp_timeouts_total{kind=\"header\"}") + sample(&m, "bfp_timeouts_total{kind=\"idle\"}") >= 21.0,
        "{m}"
    );
}

#[test]
fn a_stalled_body_gets_408_and_its_connection_closed_and_so_does_a_request_past_its_time() {
    let dir = TempDir::new().unwrap();
    let c = Collector::start(
        dir.path().join("app.db"),
        &args(&["--body-read-timeout", "2s", "--request-timeout", "5s", "--idle-timeout", "60s"]),
    );
    let addr = c.addr;
    runtime().block_on(async {
        // A body promised and never sent.
        let mut s = connect_from("127.0.0.1", addr).await;
        let head = format!(
            "POST /api/predict HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        );
        let start = Instant::now();
        s.write_all(head.as_bytes()).await.unwrap();
        let (closed, got) = closed_at(s, start, Duration::from_secs(10)).await;
        let closed = closed.expect("the stalled request's connection is closed");
        let reply = Raw::parse(&got);
        assert_eq!(reply.status, 408, "{reply:?}");
        assert_eq!(reply.json()["error"], "Request timeout");
        assert!(reply.head.to_ascii_lowercase().contains("content-type: application/json"), "{reply:?}");
        assert!(
            closed >= Duration::from_millis(1900) && closed < Duration::from_secs(4),
            "closed by the 2 s body timeout, not at {closed:?}"
        );

        // A body sent a byte every 0.5 s: never stalled, but past the 5 s
        // whole-request timeout.
        let s = connect_from("127.0.0.1", addr).await;
        let (mut rd, mut wr) = s.into_split();
        let head = format!(
            "POST /api/predict HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        );
        let start = Instant::now();
        wr.write_all(head.as_bytes()).await.unwrap();
        let dripping = tokio::spawn(async move {
            for _ in 0..30 {
                if wr.write_all(b" ").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(12), rd.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            }
            if got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"}") {
                break;
            }
        }
        let took = start.elapsed();
        dripping.abort();
        let reply = Raw::parse(&got);
        assert_eq!(reply.status, 408, "{reply:?}");
        assert!(reply.json()["detail"].as_str().unwrap().contains("longer than 5"), "{reply:?}");
        assert!(took >= Duration::from_millis(4900) && took < Duration::from_secs(8), "answered at {took:?}");
    });
    let m = metrics(&c);
    assert_eq!(sample(&m, "bfp_timeouts_total{kind=\"body\"}"), 1.0);
    assert_eq!(sample(&m, "bfp_timeouts_total{kind=\"request\"}"), 1.0);
}

#[test]
fn login_and_token_guessing_get_429_past_their_limits_while_other_clients_are_served() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("app.db");
    let c = Collector::start(&db, &[]);
    let addr = c.addr;

    // Login: ten attempts a minute per address, then 429.
    // A name per attempt: the per-account lock-out (423 after five) is not
    // what this shows.
    let guess = |i: usize| serde_json::json!({"user": format!("guess{i}"), "password": "not the password"});
    // Ten at once, then one every six seconds: each wrong attempt costs an
    // Argon2 check (long in a debug build on a busy machine), so count on
    // one more allowed per six seconds taken.
    let start = Instant::now();
    let mut statuses = Vec::new();
    while !statuses.contains(&429) && statuses.len() < 40 {
        statuses.push(post_json(&c.url("/api/login"), &guess(statuses.len())).status);
    }
    let allowed = 10 + (start.elapsed().as_secs() / 6) as usize;
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert!(statuses.len() <= allowed + 1 && statuses.ends_with(&[429]), "{statuses:?} in {:?}", start.elapsed());
    // Refused attempts cost nothing, so the next ones come within the same
    // six seconds: refused too.
    let more: Vec<u16> = (0..4).map(|i| post_json(&c.url("/api/login"), &guess(100 + i)).status).collect();
    assert!(more.iter().filter(|s| **s == 429).count() >= 3, "{more:?}");
    let limited = post_json(&c.url("/api/login"), &guess(200));
    if limited.status == 429 {
        assert_eq!(limited.json()["error"], "Too many requests");
    }
    let login_limited = 1 + more.iter().chain([&limited.status]).filter(|s| **s == 429).count();

    // Wrong device tokens: thirty a minute per address (the default), then 429.
    let batch = sample_batch(1, 3).encode().unwrap();
    let ingest = c.url("/api/ingest");
    let flood: Vec<u16> = (0..100)
        .map(|i| {
            let token = format!("bfp_{i:064}");
            post_auth(&ingest, Some(&token), bfp_common::wire::CONTENT_TYPE, &batch).status
        })
        .collect();
    // Thirty at once, then one every two seconds.
    assert_eq!(flood[..30], [401; 30], "{flood:?}");
    assert_eq!(flood[90..], [429; 10], "{flood:?}");
    let flood_limited = flood.iter().filter(|s| **s == 429).count() + 1;
    assert!(flood_limited > 60, "{flood:?}");
    let refused = post_auth(&ingest, Some("bfp_wrong"), bfp_common::wire::CONTENT_TYPE, &batch);
    assert_eq!((refused.status, refused.json()["error"].as_str()), (429, Some("Too many requests")));
    assert!(refused.header("retry-after").and_then(|v| v.parse::<u64>().ok()).is_some_and(|s| s >= 1), "{refused:?}");

    // A right token from the same address still ingests.
    let token = device_add(&db, "pi-ok");
    let ok = post_auth(&ingest, Some(&token), bfp_common::wire::CONTENT_TYPE, &batch);
    assert_eq!(ok.status, 200, "{}", ok.body);

    runtime().block_on(async {
        // Another client is served, and its first wrong token is a plain 401.
        let t = Instant::now();
        let health = get_from("127.0.0.2", addr, "/health").await;
        assert_eq!(health.status, 200);
        assert!(t.elapsed() < Duration::from_secs(1));
        let mut s = connect_from("127.0.0.2", addr).await;
        let req = format!(
            "POST /api/ingest HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer bfp_wrong\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            bfp_common::wire::CONTENT_TYPE,
            batch.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        s.write_all(&batch).await.unwrap();
        let (_, got) = closed_at(s, Instant::now(), Duration::from_secs(10)).await;
        assert_eq!(Raw::parse(&got).status, 401);
        let wrong = guess(16);
        let login = format!(
            "POST /api/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{wrong}",
            wrong.to_string().len()
        );
        let mut s = connect_from("127.0.0.2", addr).await;
        s.write_all(login.as_bytes()).await.unwrap();
        let (_, got) = closed_at(s, Instant::now(), Duration::from_secs(10)).await;
        assert_eq!(Raw::parse(&got).status, 401, "another address has its own login budget");
    });
    let m = metrics(&c);
    assert_eq!(sample(&m, "bfp_requests_limited_total{route=\"/api/login\"}"), login_limited as f64);
    assert_eq!(sample(&m, "bfp_requests_limited_total{route=\"/api/ingest\"}"), flood_limited as f64);
}

#[test]
fn predictions_past_the_per_client_rate_get_429_outside_the_exempt_networks() {
    let dir = TempDir::new().unwrap();
    // No exemption: loopback is limited like any address.
    let c = Collector::start(dir.path().join("app.db"), &args(&["--predict-rate", "5", "--rate-limit-exempt", "none"]));
    let body = serde_json::json!({"login_time":"03:00","session_duration":5,"commands":["ls"],
        "failed_logins":4,"protocol":"TOR","typing_speed":120});
    let statuses: Vec<u16> = (0..20).map(|_| post_json(&c.url("/api/predict"), &body).status).collect();
    // A burst of five, then one more every 200 ms.
    assert_eq!(statuses[..5], [200; 5], "{statuses:?}");
    let answered = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(limited > 0 && answered + limited == 20, "{statuses:?}");
    let m = metrics(&c);
    assert_eq!(sample(&m, "bfp_requests_limited_total{route=\"/api/predict\"}"), limited as f64);
    // Only the answered ones were stored.
    assert_eq!(bfp_e2e::get(&c.url("/api/analytics")).json()["total_predictions"], answered);
}

#[test]
fn oversized_and_malformed_bodies_still_get_their_json_4xx() {
    let dir = TempDir::new().unwrap();
    let c = Collector::start(dir.path().join("app.db"), &args(&["--max-upload-bytes", "4096"]));
    let big = format!("{{\"login_time\":\"{}\"}}", "9".repeat(100 * 1024));
    for (reply, status) in [
        (post(&c.url("/api/predict"), Some("application/json"), big.as_bytes()), 413),
        (post(&c.url("/api/predict"), Some("application/json"), b"{\"login_time\": "), 400),
        (post(&c.url("/api/predict"), Some("application/json"), &[0xff, 0xfe, 0x00]), 400),
        (post(&c.url("/api/predict"), Some("application/json"), b"[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]"), 400),
        (upload(&c.url("/api/predict-csv"), "file", "LoginHour\n1\n".repeat(2000).as_bytes()), 413),
        (upload(&c.url("/api/predict-csv"), "file", b"not,a,csv\n\"unterminated"), 400),
    ] {
        assert_eq!(reply.status, status, "{}", reply.body);
        assert!(reply.content_type.as_deref().is_some_and(|t| t.starts_with("application/json")), "{reply:?}");
        assert!(reply.json()["error"].is_string());
    }
}

#[test]
fn under_a_256_descriptor_limit_more_idle_connections_than_that_leave_health_answering() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("app.db");
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=256:256").arg("--").arg(binary("bfp-collector"));
    cmd.args(["--listen", "127.0.0.1:0", "--db"]).arg(&db);
    let c = Collector::spawn(cmd).with_db(&db);
    let addr = c.addr;
    let m = metrics(&c);
    // The default cap, derived from the limit: 256 - max(64, 256 / 4).
    assert_eq!(sample(&m, "bfp_connections_max"), 192.0);
    runtime().block_on(async {
        // 300 idle connections from ten addresses (30 each, under the
        // per-client cap), more than the process has descriptors.
        let mut idle = Vec::new();
        for i in 0..300 {
            idle.push(connect_from(&format!("127.0.0.{}", 10 + i % 10), addr).await);
        }
        let t = Instant::now();
        let health = get_from("127.0.0.2", addr, "/health").await;
        let took = t.elapsed();
        assert_eq!(health.status, 200, "{health:?}");
        assert!(took < Duration::from_secs(1), "/health took {took:?}");
        println!("256 descriptors, 300 idle connections: /health in {took:?}");
        drop(idle);
    });
    let m = metrics(&c);
    assert!(sample(&m, "bfp_connections_open") <= 192.0, "{m}");
    assert!(sample(&m, "bfp_connections_evicted_total") >= 300.0 - 192.0, "{m}");
    assert_eq!(sample(&m, "bfp_accept_errors_total{kind=\"resources\"}"), 0.0, "{m}");
}
