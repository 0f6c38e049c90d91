//! `bfp-agent run` left alone: a followed file that does not exist is said
//! (not waited on in silence) and followed once it appears; a token the
//! collector refuses (401) is said clearly and retried slowly, unlike a
//! collector that is down, which is retried with the network backoff; no
//! ANSI colour codes on a stderr that is not a terminal.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bfp_e2e::agent::{append, consumed, temp_dir, wait_until};
use bfp_e2e::binary;

/// `bfp-agent run --config CONFIG` with stderr to `log`.
fn start(config: &Path, log: &Path) -> Child {
    Command::new(binary("bfp-agent"))
        .args(["run", "--config", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn stop(mut child: Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exited = child.wait().unwrap();
    assert!(exited.success(), "{exited}");
}

#[test]
fn a_missing_followed_file_is_reported_then_followed_once_it_appears() {
    let dir = temp_dir();
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let config = dir.path().join("agent.toml");
    let results = dir.path().join("results.jsonl");
    fs::write(
        &config,
        format!("state_dir = {state:?}\noutput = {results:?}\npoll_interval_ms = 20\n[[source]]\npath = {log:?}\n"),
    )
    .unwrap();
    let stderr = dir.path().join("stderr.log");
    let agent = start(&config, &stderr);
    let said = || fs::read_to_string(&stderr).unwrap_or_default();
    wait_until(30, "the warning about the missing file", || said().contains("does not exist"));
    let warning = said().lines().find(|l| l.contains("does not exist")).unwrap().to_string();
    assert!(warning.contains(log.to_str().unwrap()) && warning.contains("journald"), "{warning}");
    assert_eq!(said().matches("does not exist").count(), 1, "said once, not at every poll");
    append(
        &log,
        &[
            "Mar 27 13:07:01 host sshd[77]: Accepted password for pi from 192.0.2.9 port 1 ssh2",
            "Mar 27 13:09:01 host sshd[77]: pam_unix(sshd:session): session closed for user pi",
        ],
    );
    wait_until(30, "the file read once it appeared", || consumed(&state, &log));
    stop(agent);
    assert!(said().contains("exists now"), "{}", said());
    assert!(fs::read_to_string(&results).unwrap().contains("\"user\":\"pi\""));
    assert!(!said().contains('\u{1b}'), "no escape codes on a non-terminal: {}", said());
}

/// A stand-in collector answering every request with `status`; counts them.
fn answering(status: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 65536];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = stream.read(&mut buf);
            seen.fetch_add(1, Ordering::SeqCst);
            let body = "{\"error\":\"unknown or revoked device token\"}";
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, count)
}

fn forwarding_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let log = dir.join("auth.log");
    fs::write(&log, "").unwrap();
    let config = dir.join("agent.toml");
    fs::write(
        &config,
        format!(
            "state_dir = {:?}\npoll_interval_ms = 20\n[collector]\nurl = {url:?}\ntoken = \"bfp_wrong\"\n\
             heartbeat_secs = 1\nbackoff_max_secs = 1\nmodel_check_secs = 0\nrefused_retry_secs = 600\n\
             [[source]]\npath = {log:?}\n",
            dir.join("state")
        ),
    )
    .unwrap();
    config
}

#[test]
fn a_refused_token_is_said_clearly_and_retried_slowly_unlike_an_outage() {
    let dir = temp_dir();
    let (url, refused) = answering("401 Unauthorized");
    let stderr = dir.path().join("refused.log");
    let agent = start(&forwarding_config(dir.path(), &url), &stderr);
    wait_until(30, "the first heartbeat", || refused.load(Ordering::SeqCst) >= 1);
    std::thread::sleep(Duration::from_secs(4));
    stop(agent);
    assert_eq!(refused.load(Ordering::SeqCst), 1, "a refused token is not retried within refused_retry_secs");
    let said = fs::read_to_string(&stderr).unwrap();
    let line = said.lines().find(|l| l.contains("refused this device's token")).unwrap_or_else(|| panic!("{said}"));
    assert!(line.contains("HTTP 401") && line.contains("bfp-collector device add"), "{line}");

    // A collector answering 503 is an outage: retried with the backoff (at
    // most 1 s here), several times in the same 4 seconds.
    let other = temp_dir();
    let (url, unavailable) = answering("503 Service Unavailable");
    let agent = start(&forwarding_config(other.path(), &url), &other.path().join("outage.log"));
    wait_until(30, "the first heartbeat", || unavailable.load(Ordering::SeqCst) >= 1);
    std::thread::sleep(Duration::from_secs(4));
    stop(agent);
    assert!(unavailable.load(Ordering::SeqCst) >= 3, "{} tries", unavailable.load(Ordering::SeqCst));
}
