//! The agent forwarding over HTTPS to the real collector serving rustls with
//! a certificate from a private CA (generated here with rcgen): trusted with
//! `--ca-file`, refused without it.

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
