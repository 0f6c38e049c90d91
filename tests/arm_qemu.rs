//! The agent cross-compiled for ARM (aarch64, static musl: the cheapest of the
//! four targets to build and run here, and the libc of OpenWrt) and run under
//! qemu-user: `bfp-agent scan --format jsonl` on the real logs prints exactly
//! what the x86_64 build prints, byte for byte.
//!
//! Needs `scripts/setup/arm.sh` (rustup target, cross linker, qemu-user-static;
//! scripts/test.sh runs it). Set BFP_SKIP_ARM=1 to skip on a machine without them.
//! All four targets with the size profile: scripts/build-arm.sh.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bfp_e2e::{binary, repo_root, shared_data};

const TARGET: &str = "aarch64-unknown-linux-musl";
const QEMU: &str = "qemu-aarch64-static";

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

fn skip() -> bool {
    if std::env::var_os("BFP_SKIP_ARM").is_some_and(|v| v == "1") {
        eprintln!("SKIP: BFP_SKIP_ARM=1");
        return true;
    }
    false
}

/// Builds bfp-agent for TARGET (debug: the comparison needs the same code,
/// not the size profile) in its own target dir below this build's, so it
/// neither waits for nor invalidates the outer cargo's lock and artifacts.
fn arm_agent() -> PathBuf {
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
