//! Helpers for the agent's end-to-end tests: the real `bfp-agent` binary,
//! the shared real logs, JSON-lines output, a running `bfp-agent run`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{binary, shared_data};

/// A real log under `shared/data/real/`.
pub fn real_log(rel: &str) -> PathBuf {
    let path = shared_data().join("real").join(rel);
    assert!(path.exists(), "{} is missing (set BFP_SHARED_DATA)", path.display());
    path
}

/// A fresh temporary directory, removed on drop.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("bfp-e2e-agent-").tempdir().expect("create temp dir")
}

/// Writes `text` to `path` as an executable script (a stand-in for a
/// system tool such as `journalctl`).
pub fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write script");
    let mut perms = std::fs::metadata(path).expect("script metadata").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(path, perms).expect("make script executable");
}

/// Runs `bfp-agent ARGS` to completion.
pub fn agent(args: &[&str]) -> Output {
    Command::new(binary("bfp-agent")).args(args).output().expect("start bfp-agent")
}

/// Parses JSON lines (panics on a line that is not JSON: the agent must
/// never print one).
pub fn json_lines(text: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A running `bfp-agent run`.
pub struct RunningAgent {
    child: Child,
}

impl RunningAgent {
    /// Starts `bfp-agent run ARGS` with `path_prefix` put first on `PATH`
    /// (for a fake `journalctl`).
    pub fn start(args: &[&str], path_prefix: Option<&Path>) -> RunningAgent {
        let mut cmd = Command::new(binary("bfp-agent"));
        cmd.arg("run").args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
        if let Some(prefix) = path_prefix {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", prefix.display()));
        }
        RunningAgent { child: cmd.spawn().expect("start bfp-agent run") }
    }

    /// Starts `bfp-agent run ARGS` with its standard error written to `stderr`.
    pub fn start_with_stderr(args: &[&str], stderr: &Path) -> RunningAgent {
        let file = fs::File::create(stderr).expect("create the stderr file");
        let mut cmd = Command::new(binary("bfp-agent"));
        cmd.arg("run").args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(file);
        RunningAgent { child: cmd.spawn().expect("start bfp-agent run") }
    }

    /// Starts `bfp-agent run ARGS` under `umask` (through `sh`, which
    /// `exec`s the agent: same process, same signals).
    pub fn start_with_umask(args: &[&str], umask: u32) -> RunningAgent {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("umask {umask:03o} && exec \"$0\" run \"$@\""))
            .arg(binary("bfp-agent"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        RunningAgent { child: cmd.spawn().expect("start bfp-agent run under a umask") }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM, then waits for it to exit: cleanly, or by the signal itself
    /// when it arrived before the agent installed its handler (nothing is
    /// lost either way: every state on disk is a consistent checkpoint).
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                use std::os::unix::process::ExitStatusExt;
                assert!(status.success() || status.signal() == Some(15), "bfp-agent exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "bfp-agent did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `cond` holds (polling), failing after `secs`.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Appends `lines` to `path` (created if missing), as a logger would.
pub fn append(path: &Path, lines: &[&str]) {
    let mut f = OpenOptions::new().append(true).create(true).open(path).unwrap();
    for line in lines {
        writeln!(f, "{line}").unwrap();
    }
    f.sync_data().unwrap();
}

/// The agent's checkpoint (in `state`) says everything in `log`, as it is
/// now, was processed.
pub fn consumed(state: &Path, log: &Path) -> bool {
    let Ok(bytes) = fs::read(state.join("checkpoint.json")) else { return false };
    let Ok(cp) = serde_json::from_slice::<Value>(&bytes) else { return false };
    let Ok(meta) = fs::metadata(log) else { return false };
    let cur = &cp["sources"][log.to_str().unwrap()]["current"];
    cur["ino"].as_u64() == Some(meta.ino()) && cur["offset"].as_u64() == Some(meta.len())
}

/// How [`feed_with_random_kills`] spaces its writes and kills.
pub struct KillPlan {
    /// Rounds: one agent start and one SIGKILL each.
    pub rounds: usize,
    /// Longest random pause after each of a round's three appends, ms.
    pub append_pause_ms: u64,
    /// Longest random pause before the round's kill, ms.
    pub kill_pause_ms: u64,
}

/// Writes `lines` to the followed `log` over `plan.rounds` rounds: each
/// round starts `bfp-agent run` with `args`, appends its share in three
/// pieces at random moments and SIGKILLs the agent at a random moment. At
/// the middle round `log` is rotated by rename (to `<log>.1`) once the agent
/// has checkpointed it: a file rotated away before the agent ever saw it
/// cannot be found. Returns the random seed, for failure messages.
pub fn feed_with_random_kills(args: &[&str], state: &Path, log: &Path, lines: &[&str], plan: &KillPlan) -> u64 {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut rng = seed | 1;
    let mut next = move |n: u64| {
        // xorshift64: enough to spread kill moments.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n.max(1)
    };
    let chunk = lines.len().div_ceil(plan.rounds);
    for (round, part) in lines.chunks(chunk).enumerate() {
        let running = RunningAgent::start(args, None);
        if round == plan.rounds / 2 {
            wait_until(60, "a checkpoint before the rotation", || consumed(state, log));
            let mut rotated = log.as_os_str().to_owned();
            rotated.push(".1");
            fs::rename(log, rotated).unwrap();
        }
        for piece in part.chunks(part.len().div_ceil(3)) {
            append(log, piece);
            std::thread::sleep(Duration::from_millis(next(plan.append_pause_ms)));
        }
        std::thread::sleep(Duration::from_millis(next(plan.kill_pause_ms)));
        running.kill();
    }
    seed
}

/// Asserts that `dir` and everything in it is its owner's only: directories
/// 0700, files 0600. Returns the files seen (relative names), for checking
/// that the ones expected were there.
pub fn assert_private_tree(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut seen = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let mode = fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}: mode {mode:o}", d.display());
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                pending.push(path);
                continue;
            }
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}: mode {mode:o}", path.display());
            seen.push(path.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    seen.sort();
    seen
}
