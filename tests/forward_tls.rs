//! The agent forwarding over HTTPS to the real collector serving rustls with
//! a certificate from a private CA (generated here with rcgen): trusted with
//! `--ca-file`, refused without it; a client that never finishes its
//! handshake is closed by the header-read timeout.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bfp_e2e::agent::{real_log, temp_dir, RunningAgent};
use bfp_e2e::forward::device_add;
use bfp_e2e::{binary, Collector};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::Value;

/// Writes `ca.pem`, `server.pem` and `server.key` (for 127.0.0.1 and localhost).
fn certificates(dir: &Path) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
    fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
}

/// The device as `bfp-collector device list` reads it from the database.
fn device(db: &Path) -> Value {
    let out = Command::new(binary("bfp-collector")).args(["device", "list", "--db"]).arg(db).output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone()
}

#[test]
fn the_agent_trusts_the_collector_through_its_ca_file_only() {
    let dir = temp_dir();
    certificates(dir.path());
    let db = dir.path().join("app.db");
    let token = device_add(&db, "pi-tls");
    let pem = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let c = Collector::start(&db, &["--tls-cert".into(), pem("server.pem"), "--tls-key".into(), pem("server.key")]);
    let url = format!("https://127.0.0.1:{}", c.addr.port());
    let log = dir.path().join("auth.log");
    fs::write(&log, fs::read(real_log("elastic/auth.log")).unwrap()).unwrap();

    // Without the CA: the certificate is refused, nothing is delivered.
    let mut untrusting = Command::new(binary("bfp-agent"))
        .args(["run", "--follow", log.to_str().unwrap(), "--collector", &url, "--token", &token, "--state-dir"])
        .arg(dir.path().join("state-untrusting"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    untrusting.kill().unwrap();
    let out = untrusting.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.to_ascii_lowercase().contains("certificate"), "{stderr}");
    assert_eq!(device(&db)["records"], 0);

    // With it: everything arrives.
    let state = dir.path().join("state");
    let running = RunningAgent::start(
        &[
            "--follow",
            log.to_str().unwrap(),
            "--collector",
            &url,
            "--token",
            &token,
            "--ca-file",
            &pem("ca.pem"),
            "--state-dir",
            state.to_str().unwrap(),
        ],
        None,
    );
    let lines = fs::read_to_string(&log).unwrap().lines().count() as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // A heartbeat counting every line with nothing left in the spool
        // came with (or after) the batch holding the last results.
        let d = device(&db);
        if d["lines_read"].as_u64() == Some(lines) && d["spool_depth"] == 0 && d["records"].as_u64() > Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "nothing arrived over HTTPS: {d}");
        std::thread::sleep(Duration::from_millis(200));
    }
    running.stop();
    c.stop();
}

#[test]
fn under_tls_a_silent_client_is_closed_by_the_handshake_timeout_and_others_are_served() {
    use std::io::Read;
    let dir = temp_dir();
    certificates(dir.path());
    let db = dir.path().join("app.db");
    let pem = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let c = Collector::start(
        &db,
        &[
            "--tls-cert".into(),
            pem("server.pem"),
            "--tls-key".into(),
            pem("server.key"),
            "--header-read-timeout".into(),
            "2s".into(),
        ],
    );
    let url = format!("https://127.0.0.1:{}", c.addr.port());
    // Connects and never says hello.
    let mut silent = std::net::TcpStream::connect(c.addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    // Meanwhile another client is served, with the legacy routes open on
    // this loopback listener as without TLS.
    let curl = |path: &str| {
        let out = Command::new("curl")
            // No verification: the agent's test above checks trust (curl's
            // OpenSSL takes rcgen's leaf, named like its CA, for self-signed).
            .args(["-sSk", "--max-time", "5", "-w", "\n%{http_code}"])
            .arg(format!("{url}{path}"))
            .output()
            .expect("curl");
        format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout))
    };
    let health = curl("/health");
    assert!(health.ends_with("\n200"), "/health over TLS: {health}");
    let mut buf = [0u8; 16];
    let read = silent.read(&mut buf);
    let closed = start.elapsed();
    assert!(matches!(read, Ok(0)) || read.is_err() && closed < Duration::from_secs(9), "{read:?}");
    assert!(
        closed >= Duration::from_millis(1900) && closed < Duration::from_secs(5),
        "closed by the 2 s handshake timeout, not at {closed:?}"
    );
    let metrics = curl("/metrics");
    assert!(metrics.contains("bfp_timeouts_total{kind=\"tls_handshake\"} 1\n"), "{metrics}");
    c.stop();
}
