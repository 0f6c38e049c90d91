//! Notifications: the real agent follows a real log with a brute force and
//! forwards; the real collector groups it into one alert and tells three
//! real receivers the test runs itself (an HTTP server that records what it
//! gets and can hang or answer 500 on purpose, a TCP syslog server, and
//! Python's aiosmtpd): each gets every message exactly once (by id), also
//! across a SIGKILL while a delivery is in flight and a webhook answering
//! 500 for a while; a hung receiver does not hold ingest back; an
//! unreachable destination shows its error; a bad destination stops the
//! start. The delivery e2e runs on both backends.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bfp_e2e::agent::{consumed, real_log, temp_dir, wait_until, RunningAgent};
use bfp_e2e::forward::{agent_config, device_add, post_auth, sample_batch, wait_drained};
use bfp_e2e::{operator_token, send, Backend, Collector};
use hmac::{Hmac, Mac};
use serde_json::Value;

use crate::alerts::start_fails;

const SECRET: &str = "e2e webhook secret";

/// What the HTTP receiver does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answer200,
    Answer500,
    /// Reads the request and never answers (until the client gives up).
    Hang,
}

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    /// The status it was answered with; `None` while hanging or never.
    answered: Option<u16>,
}

/// A webhook receiver on loopback: one thread per connection, one request
/// per connection.
struct Hook {
    addr: std::net::SocketAddr,
    mode: Arc<Mutex<Mode>>,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Hook {
    fn start(mode: Mode) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (m, l) = (mode.clone(), log.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (m, l) = (m.clone(), l.clone());
                thread::spawn(move || serve_one(stream, &m, &l));
            }
        });
        Hook { addr, mode, log }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
}

fn serve_one(mut stream: TcpStream, mode: &Mutex<Mode>, log: &Mutex<Vec<Received>>) {
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next().unwrap_or_default().split(' ').nth(1).unwrap_or_default().to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[head_end..head_end + length].to_vec();
    let index = {
        let mut log = log.lock().unwrap();
        log.push(Received { path, headers, body, answered: None });
        log.len() - 1
    };
    let status = match *mode.lock().unwrap() {
        Mode::Answer200 => 200,
        Mode::Answer500 => 500,
        Mode::Hang => {
            // Hold the request unanswered until the client hangs up.
            stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                match stream.read(&mut chunk) {
                    Ok(0) => return,
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
                    _ => return,
                }
            }
            return;
        }
    };
    let reason = if status == 200 { "OK" } else { "Internal Server Error" };
    let reply = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    if stream.write_all(reply.as_bytes()).and_then(|()| stream.flush()).is_ok() {
        log.lock().unwrap()[index].answered = Some(status);
    }
}

/// A syslog receiver on loopback: RFC 6587 octet-counted frames, every
/// message of every connection.
struct Syslog {
    addr: std::net::SocketAddr,
    messages: Arc<Mutex<Vec<String>>>,
}

impl Syslog {
    fn start() -> Syslog {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let messages: Arc<Mutex<Vec<String>>> = Arc::default();
        let m = messages.clone();
        thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let m = m.clone();
                thread::spawn(move || {
                    let mut bytes = Vec::new();
                    let _ = stream.read_to_end(&mut bytes);
                    m.lock().unwrap().extend(frames(&bytes));
                });
            }
        });
        Syslog { addr, messages }
    }

    fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

/// Splits `LEN SP MSG LEN SP MSG ...`; panics on a bad frame.
fn frames(mut bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let space = bytes.iter().position(|&b| b == b' ').expect("octet count");
        let len: usize = std::str::from_utf8(&bytes[..space]).unwrap().parse().expect("octet count is a number");
        let msg = &bytes[space + 1..space + 1 + len];
        out.push(String::from_utf8(msg.to_vec()).expect("UTF-8 message"));
        bytes = &bytes[space + 1 + len..];
    }
    out
}

/// RFC 5424 `<PRI>1 TS HOST APP PROCID MSGID SD MSG`: (PRI, APP, MSGID, MSG).
fn rfc5424(line: &str) -> (u32, String, String, String) {
    let parts: Vec<&str> = line.splitn(8, ' ').collect();
    assert_eq!(parts.len(), 8, "{line}");
    let pri = parts[0].strip_prefix('<').and_then(|p| p.strip_suffix(">1")).expect("<PRI>1");
    assert!(parts[1].ends_with('Z') && parts[1].contains('T'), "RFC 3339 timestamp: {line}");
    assert_eq!(parts[6], "-", "no structured data: {line}");
    (pri.parse().unwrap(), parts[3].to_string(), parts[5].to_string(), parts[7].to_string())
}

/// Python's aiosmtpd on a free loopback port, writing mail to a maildir.
struct Smtp {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl Smtp {
    fn start(dir: &Path) -> Smtp {
        Smtp::start_with(dir, &[])
    }

    /// With `extra` arguments (`--tlscert F --tlskey K`: STARTTLS required).
    fn start_with(dir: &Path, extra: &[&str]) -> Smtp {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let maildir = dir.join("maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(extra)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 -m aiosmtpd (scripts/setup/notify.sh installs it)");
        let smtp = Smtp { port, dir: maildir, child };
        wait_until(30, "aiosmtpd to listen", || TcpStream::connect(("127.0.0.1", port)).is_ok());
        smtp
    }

    /// (Message-ID, Subject, body) of every mail received.
    fn mails(&self) -> Vec<(String, String, String)> {
        let Ok(entries) = fs::read_dir(self.dir.join("new")) else { return Vec::new() };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let text = fs::read_to_string(e.path()).unwrap();
            let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            out.push((header("Message-ID"), header("Subject"), body.to_string()));
        }
        out
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hmac_hex(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn config(hook: &Hook, syslog: &Syslog, smtp: &Smtp, dead_port: u16) -> String {
    format!(
        r#"
[alert]
interval_secs = 1
max_rows_per_pass = 50

[[alert.rule]]
name = "brute-force-campaign"
kinds = ["source"]
min_confidence = 0.5
group_by = "rule"
window_secs = 86400

[notify]
interval_secs = 1
max_per_tick = 5
backoff_base_secs = 1
backoff_max_secs = 2

[[destinations]]
name = "hook"
type = "webhook"
url = "http://{hook}/bfp"
secret = "{SECRET}"
timeout_secs = 3

[[destinations]]
name = "chat"
type = "webhook"
url = "http://{hook}/slack"
format = "slack"
timeout_secs = 3

[[destinations]]
name = "siem"
type = "syslog"
address = "{syslog}"
format = "ecs"

[[destinations]]
name = "mail"
type = "email"
host = "127.0.0.1"
port = {smtp}
security = "plaintext"
from = "bfp <bfp@example.org>"
to = ["oncall@example.org"]

[[destinations]]
name = "nowhere"
type = "syslog"
address = "127.0.0.1:{dead_port}"
timeout_secs = 2
"#,
        hook = hook.addr,
        syslog = syslog.addr,
        smtp = smtp.port,
    )
}

fn destinations(c: &Collector) -> BTreeMap<String, Value> {
    let list = c.get("/api/destinations").json();
    list["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .map(|d| (d["name"].as_str().unwrap().to_string(), d.clone()))
        .collect()
}

/// A `name{destination="d"} V` line of /metrics.
fn metric(c: &Collector, name: &str, destination: &str) -> u64 {
    let text = c.get("/metrics").body;
    let prefix = format!("{name}{{destination=\"{destination}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
        .parse()
        .unwrap()
}

/// Ids the webhook receiver acknowledged (answered 200) on `path`, with how
/// often each was acknowledged.
fn acknowledged(hook: &Hook, path: &str) -> BTreeMap<String, u32> {
    let mut ids = BTreeMap::new();
    for r in hook.requests().iter().filter(|r| r.path == path && r.answered == Some(200)) {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let id = match path {
            "/bfp" => body["id"].as_str().unwrap().to_string(),
            _ => r.headers["x-bfp-notification-id"].clone(),
        };
        if !id.starts_with("test-") {
            *ids.entry(id).or_default() += 1;
        }
    }
    ids
}

fn counted<I: IntoIterator<Item = String>>(ids: I) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for id in ids.into_iter().filter(|id| !id.starts_with("test-")) {
        *out.entry(id).or_default() += 1;
    }
    out
}

#[test]
fn one_grouped_alert_reaches_webhook_syslog_and_mail_exactly_once_across_a_sigkill_and_a_500() {
    for backend in Backend::ALL {
        one_grouped_alert_reaches_every_receiver_exactly_once_on(backend);
    }
}

fn one_grouped_alert_reaches_every_receiver_exactly_once_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let db = dir.db().to_os_string();
    let hook = Hook::start(Mode::Hang);
    let syslog = Syslog::start();
    let smtp = Smtp::start(dir.path());
    let dead_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = dir.path().join("collector.toml");
    fs::write(&conf, config(&hook, &syslog, &smtp, dead_port)).unwrap();
    let args = ["--config".to_string(), conf.to_str().unwrap().to_string()];
    let token = device_add(&db, "bastion");
    let c = Collector::start(&db, &args);

    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let agent = agent_config(dir.path(), &c.url(""), &token, &log, &state, 16 << 20);
    fs::write(&log, fs::read(real_log("exposed-rhel/secure")).unwrap()).unwrap();
    let running = RunningAgent::start(&["--config", agent.to_str().unwrap()], None);
    wait_until(180, "the whole log", || consumed(&state, &log));
    wait_drained(&c, "bastion", 180);
    running.stop();

    // Every stored result evaluated: the alert counts every match.
    let matches = bfp_e2e::forward::agent_rows(&c.url(""))
        .iter()
        .filter(|r| {
            r["prediction"] == "Suspicious" && r["kind"] == "source" && r["confidence"].as_f64().unwrap_or(0.0) >= 0.5
        })
        .count() as u64;
    assert!(matches >= 10, "the log holds a brute force: {matches} suspicious source windows");
    let mut alerts = Vec::new();
    wait_until(60, "one alert counting every match", || {
        alerts = c.get("/api/alerts").json()["alerts"].as_array().unwrap().clone();
        alerts.len() == 1 && alerts[0]["count"].as_u64() == Some(matches)
    });
    let alert_id = alerts[0]["id"].as_i64().unwrap();
    let raised = format!("alert-{alert_id}-raised");

    // Syslog and mail deliver everything while the webhooks hang: their
    // queues grow, ingest does not wait for them.
    wait_until(60, "syslog and mail to deliver every message", || {
        let d = destinations(&c);
        d["siem"]["pending"] == 0 && d["mail"]["pending"] == 0 && d["siem"]["delivered"].as_u64().unwrap_or(0) > 0
    });
    let d = destinations(&c);
    let total = d["siem"]["delivered"].as_u64().unwrap();
    assert_eq!(d["mail"]["delivered"].as_u64(), Some(total), "{d:?}");
    let backlog = metric(&c, "bfp_outbox_pending", "hook");
    assert_eq!(backlog, total, "the hung webhook holds every message back");
    let stored = post_auth(
        &c.url("/api/ingest"),
        Some(&token),
        bfp_common::wire::CONTENT_TYPE,
        &sample_batch(1_000_000, 50).encode().unwrap(),
    );
    assert_eq!(stored.status, 200, "ingest answers while a receiver hangs: {}", stored.body);
    assert_eq!(stored.json()["stored"], 50);
    assert!(metric(&c, "bfp_outbox_pending", "hook") >= backlog);

    // SIGKILL while a webhook request is in flight (unanswered).
    let seen = hook.requests().len();
    wait_until(30, "a webhook request in flight", || hook.requests().len() > seen);
    drop(c);
    hook.set(Mode::Answer500);
    let c = Collector::start(&db, &args);
    wait_until(60, "the webhook's 500 on its status and in metrics", || {
        let d = destinations(&c);
        d["hook"]["last_error"].as_str().is_some_and(|e| e.starts_with("HTTP 500"))
            && d["hook"]["retrying"].as_u64().unwrap_or(0) >= 1
    });
    assert!(metric(&c, "bfp_notifications_failed_total", "hook") >= 1);
    assert!(metric(&c, "bfp_outbox_pending", "hook") >= 1);
    // The unreachable destination says why.
    let nowhere = &destinations(&c)["nowhere"];
    assert!(nowhere["last_error"].as_str().is_some_and(|e| e.contains("connect")), "{nowhere}");
    // Still queued, or (on a slow run, after notify.max_attempts) dead.
    assert!(nowhere["pending"].as_u64().unwrap() + nowhere["dead"].as_u64().unwrap() >= 1, "{nowhere}");

    // The receiver comes back: everything is delivered, in order.
    hook.set(Mode::Answer200);
    wait_until(90, "the webhooks to catch up", || {
        let d = destinations(&c);
        d["hook"]["pending"] == 0 && d["chat"]["pending"] == 0
    });
    assert_eq!(metric(&c, "bfp_notifications_sent_total", "hook"), total);
    assert_eq!(metric(&c, "bfp_outbox_pending", "hook"), 0);

    // Exactly once per receiver, by id: the same ids everywhere, the raise
    // first, then escalations as the count doubled.
    let json_ids = acknowledged(&hook, "/bfp");
    let slack_ids = acknowledged(&hook, "/slack");
    let syslog_messages = syslog.messages();
    let syslog_ids = counted(syslog_messages.iter().map(|m| {
        let (_, _, _, msg) = rfc5424(m);
        serde_json::from_str::<Value>(&msg).unwrap()["event"]["id"].as_str().unwrap().to_string()
    }));
    let mails = smtp.mails();
    let mail_ids =
        counted(mails.iter().map(|(id, _, _)| id.trim_start_matches('<').split('@').next().unwrap().to_string()));
    eprintln!(
        "notify e2e: {matches} matches, {total} messages per destination; webhook requests {} (acknowledged {})",
        hook.requests().len(),
        json_ids.len() + slack_ids.len()
    );
    assert_eq!(json_ids.len() as u64, total, "{json_ids:?}");
    for (name, ids) in [("webhook", &json_ids), ("slack", &slack_ids), ("syslog", &syslog_ids), ("mail", &mail_ids)] {
        assert!(ids.values().all(|&n| n == 1), "{name} got a message twice: {ids:?}");
        assert_eq!(ids.keys().collect::<Vec<_>>(), json_ids.keys().collect::<Vec<_>>(), "{name}");
    }
    assert!(json_ids.contains_key(&raised), "{json_ids:?}");
    let mut escalations: Vec<u64> = json_ids
        .keys()
        .filter_map(|id| id.strip_prefix(&format!("alert-{alert_id}-escalated-")))
        .map(|n| n.parse().unwrap())
        .collect();
    escalations.sort_unstable();
    assert_eq!(escalations.len() as u64 + 1, total, "{json_ids:?}");
    // Unanswered and 500 attempts were retried: more requests than messages.
    assert!(hook.requests().iter().filter(|r| r.path == "/bfp").count() as u64 > total);

    // What each receiver got: signed JSON, Slack blocks, ECS, a mail.
    for r in hook.requests().iter().filter(|r| r.path == "/bfp") {
        let signature = r.headers.get("x-bfp-signature").expect("signed");
        assert_eq!(signature, &format!("sha256={}", hmac_hex(&r.body)), "HMAC of the exact body");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.headers["x-bfp-notification-id"], body["id"].as_str().unwrap());
    }
    let first = hook.requests().into_iter().find(|r| r.path == "/bfp" && r.answered == Some(200)).unwrap();
    let body: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!((body["id"].as_str(), body["event"].as_str()), (Some(raised.as_str()), Some("raised")), "in order");
    assert_eq!(body["alert"]["rule"], "brute-force-campaign");
    assert_eq!(body["alert"]["id"], alert_id);
    assert!(body["alert"]["results"].as_str().unwrap().starts_with("/api/results?min_id="));
    let slack = hook.requests().into_iter().find(|r| r.path == "/slack").unwrap();
    assert!(!slack.headers.contains_key("x-bfp-signature"), "no secret, no signature");
    let slack: Value = serde_json::from_slice(&slack.body).unwrap();
    assert!(slack["text"].as_str().unwrap().contains("brute-force-campaign"), "{slack}");
    assert!(slack["blocks"].as_array().is_some_and(|b| !b.is_empty()), "{slack}");

    let raised_line =
        syslog_messages.iter().find(|m| m.contains(&format!("\"id\":\"{raised}\""))).expect("the raise over syslog");
    let (pri, app, msgid, msg) = rfc5424(raised_line);
    assert_eq!((pri, app.as_str(), msgid.as_str()), (132, "bfp-collector", "alert"));
    let ecs: Value = serde_json::from_str(&msg).unwrap();
    assert_eq!(ecs["event"]["kind"], "alert");
    assert_eq!(ecs["event"]["action"], "alert-raised");
    assert_eq!(ecs["event"]["outcome"], "unknown");
    assert_eq!(ecs["rule"]["name"], "brute-force-campaign");
    assert_eq!(ecs["host"]["name"], "bastion");
    assert_eq!(ecs["source"]["ip"], alerts[0]["source_ip"]);
    assert!(ecs["source"]["ip"].as_str().is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok()), "{ecs}");
    let (_, subject, text) = mails.iter().find(|(id, _, _)| id.starts_with(&format!("<{raised}@"))).unwrap();
    assert!(subject.contains("raised") && subject.contains("brute-force-campaign"), "{subject}");
    assert!(text.contains(&format!("Id: {raised}")), "{text}");

    // The test button: the real path, its outcome returned and shown.
    let admin = c.admin_token().to_string();
    let test = |name: &str| {
        let auth = format!("Bearer {admin}");
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        send("POST", &c.url(&format!("/api/destinations/{name}/test")), &headers, Some(b"{}"))
    };
    let ok = test("hook");
    assert_eq!((ok.status, ok.json()["ok"].as_bool()), (200, Some(true)), "{}", ok.body);
    let test_id = ok.json()["id"].as_str().unwrap().to_string();
    let got = hook.requests().into_iter().find(|r| r.headers["x-bfp-notification-id"] == test_id).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&got.body).unwrap()["event"], "test");
    let failed = test("nowhere");
    assert_eq!(failed.json()["ok"], false);
    assert!(failed.json()["error"].as_str().unwrap().contains("connect"), "{}", failed.body);
    assert_eq!(test("missing").status, 404);
    let analyst = format!("Bearer {}", operator_token(&db, "ana", "analyst"));
    let headers = [("Authorization", analyst.as_str()), ("Content-Type", "application/json")];
    let r = send("POST", &c.url("/api/destinations/hook/test"), &headers, Some(b"{}"));
    assert_eq!(r.status, 403);
    let r = send("GET", &c.url("/api/destinations"), &[("Authorization", &analyst)], None);
    assert_eq!(r.status, 200);
    c.stop();
}

/// Two collectors on one PostgreSQL database, both configured with the
/// same webhook: each message reaches it once, from one of them at a time,
/// and when that one is killed the other takes the destination over.
#[test]
fn two_collectors_on_one_postgres_database_send_each_message_once() {
    let store = Backend::Postgres.fresh();
    let db = store.db().to_os_string();
    let cluster = store.cluster().expect("a PostgreSQL store");
    let hook = Hook::start(Mode::Answer200);
    let conf = store.path().join("collector.toml");
    fs::write(
        &conf,
        format!(
            "[alert]\ninterval_secs = 1\n[[alert.rule]]\nname = \"any\"\nverdict = \"any\"\n\
             [notify]\ninterval_secs = 1\nmax_per_tick = 5\n\
             [[destinations]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{}/bfp\"\n",
            hook.addr
        ),
    )
    .unwrap();
    let args = ["--config".to_string(), conf.to_str().unwrap().to_string()];
    let token = device_add(&db, "edge-1");
    let one = Collector::start(&db, &args);
    let two = Collector::start(&db, &args);
    let holders = || cluster.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1650880354");

    // 50 records from 50 addresses: 50 alerts, 50 messages.
    let batch = |seq| sample_batch(seq, 50).encode().unwrap();
    let stored = post_auth(&one.url("/api/ingest"), Some(&token), bfp_common::wire::CONTENT_TYPE, &batch(1));
    assert_eq!(stored.status, 200, "{}", stored.body);
    wait_until(90, "50 raises acknowledged", || acknowledged(&hook, "/bfp").len() == 50);
    assert_eq!(holders(), "1", "one collector sends the destination");
    // Every delivered mark committed before the kill: what follows must
    // then be sent once too (a mark lost to a kill is resent, by design).
    wait_until(30, "the marks", || destinations(&one)["hook"]["pending"] == 0);

    // Kill one of them (the sender or not); the same 50 addresses again
    // through the survivor double every alert's count: 50 escalations.
    drop(one);
    let stored = post_auth(&two.url("/api/ingest"), Some(&token), bfp_common::wire::CONTENT_TYPE, &batch(2));
    assert_eq!(stored.status, 200, "{}", stored.body);
    wait_until(90, "50 escalations acknowledged", || acknowledged(&hook, "/bfp").len() == 100);
    let ids = acknowledged(&hook, "/bfp");
    assert!(ids.values().all(|&n| n == 1), "a message acknowledged twice: {ids:?}");
    let requests = hook.requests().into_iter().filter(|r| r.path == "/bfp").count();
    assert_eq!(requests, 100, "no message sent twice, even unacknowledged");
    assert_eq!(ids.keys().filter(|id| id.contains("-escalated-2")).count(), 50);
    let d = destinations(&two);
    assert_eq!((d["hook"]["delivered"].as_u64(), d["hook"]["pending"].as_u64()), (Some(100), Some(0)), "{d:?}");
    assert_eq!(holders(), "1", "the survivor sends the destination");
    two.stop();
}

#[test]
fn a_bad_destination_stops_the_start_naming_the_key() {
    let dir = temp_dir();
    let err = start_fails(
        dir.path(),
        "[[destinations]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"http://x/\"\nsecrt = \"s\"\n",
    );
    assert!(err.contains("unknown field `secrt`") && err.contains("bad.toml"), "{err}");
    let err = start_fails(dir.path(), "[[destinations]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"htp:/nowhere\"\n");
    assert!(err.contains("destination \"h\": bad url"), "{err}");
    let err = start_fails(
        dir.path(),
        "[[destinations]]\nname = \"m\"\ntype = \"email\"\nhost = \"smtp.example.org\"\nsecurity = \"plaintext\"\n\
         from = \"a@example.org\"\nto = [\"b@example.org\"]\n",
    );
    assert!(err.contains("loopback only"), "{err}");
}

/// The Destinations section of the Alerts page in headless Chromium: an
/// analyst sees the status (and the unreachable one's error) but no Test
/// button; an administrator's Test button sends through the real path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_page_shows_destinations_and_tests_one_for_administrators() {
    use bfp_e2e::add_operator;
    use bfp_e2e::browser::Browser;
    let dir = temp_dir();
    let db = dir.path().join("app.db");
    add_operator(&db, "ana", "analyst");
    add_operator(&db, "root", "admin");
    let hook = Hook::start(Mode::Answer200);
    let dead_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = dir.path().join("collector.toml");
    fs::write(
        &conf,
        format!(
            "[[destinations]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{}/bfp\"\nformat = \"teams\"\n\
             [[destinations]]\nname = \"nowhere\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{dead_port}/\"\n",
            hook.addr
        ),
    )
    .unwrap();
    let c = Collector::start(&db, &["--config".to_string(), conf.to_str().unwrap().to_string()]);
    let base = c.url("");
    // A failed test leaves the unreachable one's error on its status.
    let admin = format!("Bearer {}", c.admin_token());
    let headers = [("Authorization", admin.as_str()), ("Content-Type", "application/json")];
    assert_eq!(send("POST", &c.url("/api/destinations/nowhere/test"), &headers, Some(b"{}")).json()["ok"], false);

    let b = Browser::start().await;
    b.log_in(&base, "ana", &bfp_e2e::password_of("ana")).await;
    b.goto(&format!("{base}/#/alerts")).await;
    b.wait_visible("#destinations-table tbody tr").await;
    let rows = b.text("#destinations-table tbody").await;
    assert!(rows.contains("hook") && rows.contains("webhook") && rows.contains("never"), "{rows}");
    assert!(rows.contains("nowhere") && rows.contains("Connection refused"), "{rows}");
    assert!(!b.visible("#destinations-table button").await, "an analyst sees a Test button");
    b.click("#logout").await;
    b.wait_visible("#login-form").await;

    b.log_in(&base, "root", &bfp_e2e::password_of("root")).await;
    b.goto(&format!("{base}/#/alerts")).await;
    b.wait_visible("#destinations-table tbody tr button").await;
    b.click("#destinations-table tbody tr:first-child button").await;
    let status = b.wait_text("#destinations-status", "the test's outcome", |t| t.contains("delivered")).await;
    assert!(status.contains("to hook"), "{status}");
    let got = hook.requests();
    assert_eq!(got.len(), 1);
    let card: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!((card["@type"].as_str(), got[0].answered), (Some("MessageCard"), Some(200)));
    b.wait_text("#destinations-table tbody tr:first-child", "the success on the status", |t| !t.contains("never"))
        .await;
    b.close().await;
    c.stop();
}

/// E-mail over STARTTLS to aiosmtpd with a certificate from a private CA:
/// delivered with the CA as `ca_file`, refused with the built-in roots.
#[test]
fn mail_goes_over_starttls_to_a_server_whose_ca_is_given() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = temp_dir();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (ca_file, cert_file, key_file) =
        (dir.path().join("ca.pem"), dir.path().join("cert.pem"), dir.path().join("key.pem"));
    fs::write(&ca_file, ca_cert.pem()).unwrap();
    fs::write(&cert_file, cert.pem()).unwrap();
    fs::write(&key_file, key.serialize_pem()).unwrap();
    let smtp = Smtp::start_with(
        dir.path(),
        &["--tlscert", cert_file.to_str().unwrap(), "--tlskey", key_file.to_str().unwrap()],
    );
    let conf = dir.path().join("collector.toml");
    let mail = |name: &str, ca: &str| {
        format!(
            "[[destinations]]\nname = \"{name}\"\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {}\n\
             security = \"starttls\"\n{ca}from = \"bfp@example.org\"\nto = [\"oncall@example.org\"]\n",
            smtp.port
        )
    };
    let text = mail("private-ca", &format!("ca_file = {:?}\n", ca_file.to_str().unwrap())) + &mail("public-roots", "");
    fs::write(&conf, text).unwrap();
    let db = dir.path().join("app.db");
    let c = Collector::start(&db, &["--config".to_string(), conf.to_str().unwrap().to_string()]);
    let admin = format!("Bearer {}", c.admin_token());
    let headers = [("Authorization", admin.as_str()), ("Content-Type", "application/json")];
    let ok = send("POST", &c.url("/api/destinations/private-ca/test"), &headers, Some(b"{}")).json();
    assert_eq!(ok["ok"], true, "{ok}");
    let refused = send("POST", &c.url("/api/destinations/public-roots/test"), &headers, Some(b"{}")).json();
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(refused["error"].as_str().unwrap().to_lowercase().contains("certificate"), "{refused}");
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let id = ok["id"].as_str().unwrap();
    assert!(mails[0].0.starts_with(&format!("<{id}@")), "{mails:?}");
    assert!(mails[0].1.contains("test"), "{mails:?}");
    c.stop();
}

/// A webhook that hangs, then one that answers 500, while agents keep
/// sending: every batch is acknowledged and stored while the receiver still
/// holds its first request, and the backlog shows in `/metrics` and
/// `/api/destinations` rather than in ingest.
#[test]
fn a_hung_or_failing_webhook_never_holds_back_ingest_and_its_backlog_shows_in_metrics() {
    for backend in Backend::ALL {
        eprintln!("backend: {backend:?}");
        let dir = backend.fresh();
        let db = dir.db().to_os_string();
        let hook = Hook::start(Mode::Hang);
        let conf = dir.path().join("collector.toml");
        fs::write(
            &conf,
            format!(
                "[alert]\ninterval_secs = 1\n\
                 [[alert.rule]]\nname = \"per-source\"\ngroup_by = \"source_ip\"\n\
                 [notify]\ninterval_secs = 1\nbackoff_base_secs = 1\nbackoff_max_secs = 2\n\
                 [[destinations]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{}/bfp\"\ntimeout_secs = 120\n",
                hook.addr
            ),
        )
        .unwrap();
        let args = ["--config".to_string(), conf.to_str().unwrap().to_string()];
        let token = device_add(&db, "edge");
        let c = Collector::start(&db, &args);
        let ingest = |c: &Collector, seq: u64| {
            let reply = post_auth(
                &c.url("/api/ingest"),
                Some(&token),
                bfp_common::wire::CONTENT_TYPE,
                &sample_batch(seq, 50).encode().unwrap(),
            );
            assert_eq!(reply.status, 200, "batch {seq} answered while the webhook misbehaves: {}", reply.body);
            assert_eq!(reply.json()["stored"], 50, "batch {seq}");
        };
        // The first alert's message reaches the receiver, which holds it.
        ingest(&c, 1);
        wait_until(30, "the webhook to hold a request", || hook.requests().len() == 1);
        for seq in 2..=20 {
            ingest(&c, seq);
        }
        // 17 suspicious sources per batch: 17 alerts of 20 matches each,
        // all evaluated, all told to a queue that does not move.
        wait_until(60, "every batch evaluated", || {
            let alerts = c.get("/api/alerts").json()["alerts"].as_array().unwrap().clone();
            alerts.len() == 17 && alerts.iter().all(|a| a["count"] == 20)
        });
        let requests = hook.requests();
        assert_eq!(requests.len(), 1, "the receiver still holds its first request");
        assert_eq!(requests[0].answered, None, "and has not answered it");
        let pending = metric(&c, "bfp_outbox_pending", "hook");
        assert!(pending >= 17, "every alert waits in the outbox: {pending}");
        let d = &destinations(&c)["hook"];
        assert_eq!((d["pending"].as_u64(), d["delivered"].as_u64()), (Some(pending), Some(0)), "{d}");
        eprintln!("hung webhook: 1,000 results acknowledged, {pending} notifications waiting");

        // Now it answers 500 to everything: ingest still goes through, the
        // failures and the backlog show.
        drop(c);
        hook.set(Mode::Answer500);
        let c = Collector::start(&db, &args);
        for seq in 21..=40 {
            ingest(&c, seq);
        }
        wait_until(60, "the 500s on the destination's status", || {
            let d = &destinations(&c)["hook"];
            d["last_error"].as_str().is_some_and(|e| e.starts_with("HTTP 500")) && d["retrying"].as_u64() >= Some(1)
        });
        wait_until(60, "the second 1,000 results evaluated", || {
            let alerts = c.get("/api/alerts").json()["alerts"].as_array().unwrap().clone();
            alerts.len() == 17 && alerts.iter().all(|a| a["count"] == 40)
        });
        assert!(metric(&c, "bfp_notifications_failed_total", "hook") >= 1);
        assert!(metric(&c, "bfp_outbox_pending", "hook") >= pending, "the backlog stays visible");
        assert_eq!(metric(&c, "bfp_notifications_sent_total", "hook"), 0);
        assert!(hook.requests().iter().skip(1).all(|r| r.answered == Some(500)));
    }
}
