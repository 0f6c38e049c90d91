//! The agent cross-compiled for ARM (aarch64, static musl: the cheapest of the
//! four targets to build and run here, and the libc of OpenWrt) and run under
//! qemu-user: `bfp-agent scan --format jsonl` on the real logs prints exactly
//! what the x86_64 build prints, byte for byte; and `bfp-agent run` under qemu
//! forwards a real log to the real `bfp-collector` on loopback, which then
//! holds exactly the sessions the host's scan reports.
//!
//! Needs `scripts/setup/arm.sh` (rustup target, cross linker, qemu-user-static;
//! scripts/test.sh runs it). Set BFP_SKIP_ARM=1 to skip on a machine without them.
//! All four targets with the size profile: scripts/build-arm.sh.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use bfp_e2e::agent::wait_until;
use bfp_e2e::forward::{agent_config, agent_rows, device_add, key_of_row, key_of_scan, multiset, wait_drained};
use bfp_e2e::{binary, repo_root, shared_data, Collector};
use serde_json::Value;
use tempfile::TempDir;

const TARGET: &str = "aarch64-unknown-linux-musl";
pub(crate) const QEMU: &str = "qemu-aarch64-static";

/// The real logs of ../shared/data/real that the agent reads (every text log there).
const LOGS: &[&str] = &[
    "real/loghub/OpenSSH_2k.log",
    "real/loghub/Linux_2k.log",
    "real/elastic/auth.log",
    "real/exposed-rhel/secure",
    "real/plesk-centos/secure",
    "real/cowrie/cowrie.json.2018-05-19",
    "real/cowrie/cowrie-telnet.json",
];

pub(crate) fn skip() -> bool {
    if std::env::var_os("BFP_SKIP_ARM").is_some_and(|v| v == "1") {
        eprintln!("SKIP: BFP_SKIP_ARM=1");
        return true;
    }
    false
}

/// Builds bfp-agent for TARGET (debug: the comparison needs the same code,
/// not the size profile) in its own target dir below this build's, so it
/// neither waits for nor invalidates the outer cargo's lock and artifacts.
pub(crate) fn arm_agent() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build_arm_agent).clone()
}

fn build_arm_agent() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/arm_qemu-xxxx -> target
    let target_dir = exe.ancestors().nth(3).unwrap().join("arm-e2e");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(repo_root())
        .args(["build", "--locked", "-p", "bfp-agent", "--bin", "bfp-agent", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .expect("run cargo build");
    assert!(
        out.status.success(),
        "cross build for {TARGET} failed (run scripts/setup/arm.sh, or BFP_SKIP_ARM=1 to skip):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = target_dir.join(TARGET).join("debug/bfp-agent");
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

fn run(cmd: &mut Command) -> Output {
    // Same environment for both builds: local time is UTC, no colour, no extra logging.
    let out = cmd.env_remove("RUST_LOG").env("TZ", "UTC").output().expect("start bfp-agent");
    assert!(out.status.success(), "{cmd:?}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

fn elf_machine(path: &Path) -> u16 {
    let head = std::fs::read(path).unwrap();
    assert_eq!(&head[..4], b"\x7fELF");
    u16::from_le_bytes([head[18], head[19]])
}

#[test]
fn aarch64_agent_under_qemu_scans_real_logs_exactly_like_the_host_build() {
    if skip() {
        return;
    }
    let arm = arm_agent();
    assert_eq!(elf_machine(&arm), 183, "EM_AARCH64");
    let host = binary("bfp-agent");
    let data = shared_data();
    let logs: Vec<PathBuf> = LOGS.iter().map(|l| data.join(l)).collect();
    for l in &logs {
        assert!(l.is_file(), "{} missing (set BFP_SHARED_DATA)", l.display());
    }

    // --version first: the emulated binary starts and says what it is.
    let v = run(Command::new(QEMU).arg(&arm).arg("--version"));
    let hv = run(Command::new(&host).arg("--version"));
    assert_eq!(v.stdout, hv.stdout);

    // All logs in one run, and each log on its own (per-file format detection).
    let mut runs: Vec<Vec<&Path>> = vec![logs.iter().map(PathBuf::as_path).collect()];
    runs.extend(logs.iter().map(|l| vec![l.as_path()]));
    for files in runs {
        let on_arm = run(Command::new(QEMU).arg(&arm).args(["scan", "--format", "jsonl"]).args(&files));
        let on_host = run(Command::new(&host).args(["scan", "--format", "jsonl"]).args(&files));
        let (a, h) = (String::from_utf8(on_arm.stdout).unwrap(), String::from_utf8(on_host.stdout).unwrap());

        // Not vacuous: fingerprints and a summary that counted the lines.
        let lines: Vec<&str> = h.lines().collect();
        assert!(lines.len() >= 2, "{files:?}: host printed {h:?}");
        let summary: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
        assert_eq!(summary["kind"], "summary", "{summary}");
        let fingerprints = lines.len() - 1;
        assert!(fingerprints > 0, "{files:?}: no fingerprints");

        if a != h {
            let first = a.lines().zip(h.lines()).position(|(x, y)| x != y);
            let at = first.unwrap_or(a.lines().count().min(h.lines().count()));
            panic!(
                "{files:?}: aarch64 and x86_64 differ at line {}:\narm:  {:?}\nhost: {:?}",
                at + 1,
                a.lines().nth(at),
                h.lines().nth(at)
            );
        }
        eprintln!("{files:?}: {fingerprints} fingerprints, identical on aarch64 (qemu) and x86_64");
    }
}

#[test]
fn aarch64_agent_under_qemu_forwards_a_real_log_to_the_collector() {
    if skip() {
        return;
    }
    let arm = arm_agent();
    let source = shared_data().join("real/elastic/auth.log");
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("app.db");
    let token = device_add(&db, "pi-qemu");
    let c = Collector::start(&db, &[]);
    let log = dir.path().join("auth.log");
    let state = dir.path().join("state");
    let config = agent_config(dir.path(), &c.url(""), &token, &log, &state, 16 << 20);
    std::fs::copy(&source, &log).unwrap();

    let mut agent = Command::new(QEMU)
        .arg(&arm)
        .args(["run", "--config", config.to_str().unwrap()])
        .env("TZ", "UTC")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start bfp-agent under qemu");
    let lines = std::fs::read_to_string(&source).unwrap().lines().count() as u64;
    wait_until(180, "the emulated agent to read the whole log", || {
        let fleet = c.get("/api/devices").json();
        let device = fleet["devices"].as_array().and_then(|a| a.iter().find(|d| d["name"] == "pi-qemu").cloned());
        device.is_some_and(|d| d["lines_read"].as_u64() == Some(lines))
    });
    // Then a heartbeat from after now with an empty spool: everything acknowledged.
    let device = wait_drained(&c, "pi-qemu", 120);
    // SIGTERM: the agent stops cleanly (through qemu, which passes the signal on).
    let _ = Command::new("kill").args(["-TERM", &agent.id().to_string()]).status();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = agent.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the emulated agent did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "bfp-agent under qemu: {status}");

    // What the host build's scan reports for the same file: its closed sessions, with verdicts.
    let scan = run(Command::new(binary("bfp-agent")).args(["scan", "--format", "jsonl"]).arg(&source));
    let objects: Vec<Value> =
        String::from_utf8(scan.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let closed = |kind: &str| {
        multiset(objects.iter().filter(|o| o["kind"] == kind && o["open"] == false).map(|o| key_of_scan(o, true)))
    };
    let rows = agent_rows(&c.url(""));
    let stored = |kind: &str| multiset(rows.iter().filter(|r| r["kind"] == kind).map(|r| key_of_row(r, true)));
    let (want, got) = (closed("session"), stored("session"));
    assert!(want.len() > 100, "the log has many sessions ({})", want.len());
    assert_eq!(got, want, "sessions stored from the emulated agent = the host's scan");
    // Sources: each stored once, each one the host's scan also reports (a window still
    // open at the end of the file is reported by scan at once, by run when it closes).
    let (want_src, got_src) = (closed("source"), stored("source"));
    assert!(got_src.values().all(|&n| n == 1), "a source stored twice");
    assert!(got_src.keys().all(|k| want_src.contains_key(k)), "a source the host's scan does not report");
    assert_eq!(device["records"].as_u64(), Some(rows.len() as u64));
    assert_eq!(device["dropped"], 0);
    eprintln!("{} sessions, {} sources forwarded from aarch64 under qemu", got.len(), got_src.len());
    c.stop();
}
