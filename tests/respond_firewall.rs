//! The agent's opt-in response with real firewalls: in network namespaces
//! the test makes (a "device" and a "peer" joined by a veth pair), the real
//! `bfp-agent run` follows a log to which a real sshd brute force is
//! appended (its attacking address rewritten to the peer's documentation
//! address), blocks that address through nftables or iptables+ipset, and
//! the peer's packets are really dropped until the block expires. An
//! allow-listed network is never blocked; `--dry-run` changes nothing.
//! Nothing here touches the host's own firewall: every firewall command runs
//! inside the device namespace. Needs scripts/setup/respond.sh.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use bfp_common::wire::Batch;
use bfp_e2e::agent::{append, real_log, temp_dir, wait_until};
use bfp_e2e::forward::{agent_config, agent_rows, device_add, wait_drained};
use bfp_e2e::{binary, Collector};

/// The attacker: blocked.
pub(crate) const HOSTILE: &str = "198.51.100.66";
/// An IPv6 attacker: blocked (the IPv6 set and rule).
const HOSTILE6: &str = "2001:db8::66";
const DEVICE_V6: &str = "2001:db8::1";
/// An attacker inside an allow-listed network: never blocked.
pub(crate) const ALLOWED: &str = "192.0.2.77";
/// The device's addresses on the two networks.
const DEVICE_HOSTILE_NET: &str = "198.51.100.1";
const DEVICE_ALLOWED_NET: &str = "192.0.2.1";

fn ip(args: &[&str]) -> Output {
    Command::new("ip").args(args).output().expect("run ip (iproute2; scripts/setup/respond.sh)")
}

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace, deleted on drop.
pub(crate) struct Netns {
    pub(crate) name: String,
}

impl Netns {
    /// `None` (with the reason) when the kernel refuses to make one.
    fn new(role: &str, lab: usize) -> Result<Netns, String> {
        let name = format!("bfp-{role}-{}-{lab}", std::process::id());
        let _ = ip(&["netns", "del", &name]);
        let out = ip(&["netns", "add", &name]);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        let ns = Netns { name };
        ok(ns.exec(&["ip", "link", "set", "lo", "up"]), "lo up");
        Ok(ns)
    }

    pub(crate) fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    pub(crate) fn exec(&self, argv: &[&str]) -> Output {
        self.command(argv[0]).args(&argv[1..]).output().expect("ip netns exec")
    }

    /// One ping from `from` (an address of this namespace) to `to`
    /// answered within a second.
    fn ping(&self, from: &str, to: &str) -> bool {
        self.exec(&["ping", "-n", "-q", "-c", "1", "-W", "1", "-I", from, to]).status.success()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A device and a peer joined by a veth pair, each end with an address on
/// the hostile and the allow-listed network.
pub(crate) struct Lab {
    pub(crate) device: Netns,
    peer: Netns,
}

impl Lab {
    /// `None` when the kernel refuses network namespaces: the caller skips,
    /// saying why.
    pub(crate) fn new() -> Option<Lab> {
        assert!(
            Command::new("nft").arg("--version").output().is_ok_and(|o| o.status.success()),
            "nft is missing: run scripts/setup/respond.sh"
        );
        // Tests run in parallel threads of one process: a lab number each.
        static LABS: AtomicUsize = AtomicUsize::new(0);
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        let device = match Netns::new("dev", n) {
            Ok(ns) => ns,
            Err(e) => {
                eprintln!(
                    "SKIPPED: the kernel refuses network namespaces here ({e}); the firewall response is untested"
                );
                return None;
            }
        };
        let peer = Netns::new("peer", n).expect("a second namespace after a first");
        // Made in the test's namespace before moving: names unique there.
        let (dev_if, peer_if) = (format!("bd{}-{n}", std::process::id()), format!("bp{}-{n}", std::process::id()));
        ok(
            ip(&[
                "link",
                "add",
                &dev_if,
                "netns",
                &device.name,
                "type",
                "veth",
                "peer",
                "name",
                &peer_if,
                "netns",
                &peer.name,
            ]),
            "veth pair",
        );
        for (ns, dev, addrs) in
            [(&device, &dev_if, [DEVICE_HOSTILE_NET, DEVICE_ALLOWED_NET]), (&peer, &peer_if, [HOSTILE, ALLOWED])]
        {
            for (addr, len) in addrs.iter().zip(["24", "24"]) {
                ok(ns.exec(&["ip", "addr", "add", &format!("{addr}/{len}"), "dev", dev]), "address");
            }
            // nodad: usable at once, not after duplicate address detection.
            let v6 = if ns.name == device.name { DEVICE_V6 } else { HOSTILE6 };
            ok(ns.exec(&["ip", "-6", "addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"]), "IPv6 address");
            ok(ns.exec(&["ip", "link", "set", dev, "up"]), "link up");
        }
        let lab = Lab { device, peer };
        wait_until(10, "the veth pair to carry pings", || {
            lab.hostile_gets_through() && lab.allowed_gets_through() && lab.hostile6_gets_through()
        });
        Some(lab)
    }

    pub(crate) fn hostile_gets_through(&self) -> bool {
        self.peer.ping(HOSTILE, DEVICE_HOSTILE_NET)
    }

    fn hostile6_gets_through(&self) -> bool {
        self.peer.ping(HOSTILE6, DEVICE_V6)
    }

    pub(crate) fn allowed_gets_through(&self) -> bool {
        self.peer.ping(ALLOWED, DEVICE_ALLOWED_NET)
    }

    /// The device's whole ruleset, as `nft list ruleset` prints it.
    pub(crate) fn ruleset(&self) -> String {
        ok(self.device.exec(&["nft", "list", "ruleset"]), "nft list ruleset")
    }

    pub(crate) fn ipset(&self, set: &str) -> String {
        ok(self.device.exec(&["ipset", "list", set]), "ipset list")
    }
}

/// Real sshd brute forces (Loghub's lab server), their addresses rewritten
/// to the lab's, in log order: 5.188.10.180 (20 failed logins in two
/// minutes) from `HOSTILE6`, 187.141.143.180 (80) from `ALLOWED`, and
/// 183.62.140.253 (287 in ten minutes; its first 200 lines) from `HOSTILE`.
pub(crate) fn brute_force_lines() -> Vec<String> {
    let text = fs::read_to_string(real_log("loghub/OpenSSH_2k.log")).unwrap();
    let v6 = text.lines().filter(|l| l.contains("5.188.10.180")).map(|l| l.replace("5.188.10.180", HOSTILE6));
    let allowed = text
        .lines()
        .filter(|l| l.contains("187.141.143.180") || l.contains("187-141-143-180"))
        .map(|l| l.replace("187.141.143.180", ALLOWED).replace("187-141-143-180", "192-0-2-77"));
    let hostile =
        text.lines().filter(|l| l.contains("183.62.140.253")).take(200).map(|l| l.replace("183.62.140.253", HOSTILE));
    v6.chain(allowed).chain(hostile).collect()
}

/// `bfp-agent run` inside the device namespace, its standard error in a file.
struct Agent {
    child: Child,
    stderr: PathBuf,
}

impl Agent {
    fn start(lab: &Lab, args: &[&str], stderr: PathBuf) -> Agent {
        let file = fs::File::create(&stderr).unwrap();
        let child = lab
            .device
            .command(binary("bfp-agent").to_str().unwrap())
            .arg("run")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start bfp-agent in the namespace");
        Agent { child, stderr }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn wait_for(&mut self, secs: u64, needle: &str) {
        let mut exited = None;
        wait_until(secs, needle, || {
            if exited.is_none() {
                exited = self.child.try_wait().unwrap();
            }
            assert!(exited.is_none(), "the agent exited ({exited:?}):\n{}", self.log());
            self.log().contains(needle)
        });
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SIGTERM: `ip netns exec` execs the agent, so this is its pid.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn config(dir: &Path, log: &Path, respond: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    let text = format!(
        "state_dir = \"{state}\"\noutput = \"{out}\"\npoll_interval_ms = 50\ncommit_interval_ms = 0\n\
         # One-minute windows, so the brute force is judged while it goes on.\nsource_window_secs = 60\n\
         {respond}\n[[source]]\npath = \"{log}\"\n",
        state = dir.join("state").display(),
        out = dir.join("results.jsonl").display(),
        log = log.display(),
    );
    fs::write(&path, text).unwrap();
    path
}

/// Blocks the hostile peer through `firewall`, leaves the allow-listed one
/// alone, and lets the kernel lift the block at expiry.
fn blocks_drops_and_expires(firewall: &str) {
    let Some(lab) = Lab::new() else { return };
    let dir = temp_dir();
    let log = dir.path().join("auth.log");
    fs::write(&log, "").unwrap();
    let respond = format!(
        "[respond]\nenabled = true\nfirewall = \"{firewall}\"\nblock_secs = 8\nallow = [\"192.0.2.0/24\", \"10.9.0.0/16\"]\n"
    );
    let cfg = config(dir.path(), &log, &respond);
    let mut agent = Agent::start(&lab, &["--config", cfg.to_str().unwrap()], dir.path().join("agent.err"));
    agent.wait_for(20, "respond: blocking through");
    assert!(lab.hostile_gets_through() && lab.allowed_gets_through(), "before: both peers reach the device");

    let lines = brute_force_lines();
    append(&log, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    agent.wait_for(60, &format!("respond: blocked {HOSTILE}"));
    assert!(!lab.hostile_gets_through(), "blocked: the peer's pings are dropped\n{}", agent.log());
    agent.wait_for(10, &format!("respond: blocked {HOSTILE6}"));
    assert!(!lab.hostile6_gets_through(), "blocked: IPv6 too\n{}", agent.log());
    agent.wait_for(30, &format!("respond: not blocking {ALLOWED}: allow-list 192.0.2.0/24 covers it"));
    assert!(lab.allowed_gets_through(), "the allow-listed peer still gets through");
    match firewall {
        "nftables" => {
            let ruleset = lab.ruleset();
            assert!(ruleset.contains("table inet bfp") && ruleset.contains(HOSTILE), "{ruleset}");
            assert!(ruleset.contains(HOSTILE6), "{ruleset}");
            assert!(!ruleset.contains(ALLOWED), "{ruleset}");
        }
        _ => {
            let set = lab.ipset("bfp-blocked4");
            assert!(set.contains(HOSTILE) && !set.contains(ALLOWED), "{set}");
            let rules = ok(lab.device.exec(&["iptables", "-w", "-S", "INPUT"]), "iptables -S");
            assert!(rules.contains("--match-set bfp-blocked4 src -j DROP"), "{rules}");
            let set6 = lab.ipset("bfp-blocked6");
            assert!(set6.contains(HOSTILE6), "{set6}");
        }
    }

    // A restart lifts nothing: the kernel holds the block, and the new run
    // takes it over (to report it and log its end).
    drop(agent);
    assert!(!lab.hostile_gets_through(), "still dropped while the agent is stopped");
    let mut agent = Agent::start(&lab, &["--config", cfg.to_str().unwrap()], dir.path().join("agent2.err"));
    agent.wait_for(20, "2 address(es) still blocked from an earlier run");
    assert!(!lab.hostile_gets_through(), "still dropped after the restart");

    // The brute force is over; the last renewal expires within block_secs.
    agent.wait_for(30, &format!("respond: unblocked {HOSTILE} (expired)"));
    wait_until(10, "the kernel to lift the block", || lab.hostile_gets_through());
    agent.wait_for(10, &format!("respond: unblocked {HOSTILE6} (expired)"));
    wait_until(10, "the kernel to lift the IPv6 block", || lab.hostile6_gets_through());
    let log_text = fs::read_to_string(dir.path().join("agent.err")).unwrap() + &agent.log();
    eprintln!("{log_text}");
    assert!(!log_text.contains(&format!("blocked {ALLOWED}")), "{log_text}");
    let results = fs::read_to_string(dir.path().join("results.jsonl")).unwrap();
    assert!(results.contains(HOSTILE), "the records that proved it were written as ever");
}

#[test]
fn nftables_drops_a_brute_forcing_peer_until_expiry_and_never_an_allow_listed_one() {
    blocks_drops_and_expires("nftables");
}

#[test]
fn iptables_with_ipset_does_the_same_where_nft_is_missing() {
    blocks_drops_and_expires("iptables");
}

#[test]
fn a_dry_run_logs_what_it_would_block_and_changes_nothing() {
    let Some(lab) = Lab::new() else { return };
    let dir = temp_dir();
    let log = dir.path().join("auth.log");
    fs::write(&log, "").unwrap();
    // No [respond] table: --dry-run alone turns the response on.
    let cfg = config(dir.path(), &log, "");
    let mut agent = Agent::start(&lab, &["--config", cfg.to_str().unwrap(), "--dry-run"], dir.path().join("agent.err"));
    agent.wait_for(20, "respond: dry run");
    let lines = brute_force_lines();
    append(&log, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    agent.wait_for(60, &format!("respond: dry run: would block {HOSTILE}"));
    assert!(lab.hostile_gets_through(), "a dry run drops nothing");
    let ruleset = lab.ruleset();
    assert!(!ruleset.contains("bfp"), "a dry run creates no table:\n{ruleset}");
}

#[test]
fn the_heartbeat_reports_the_blocks_to_the_collector() {
    let Some(lab) = Lab::new() else { return };
    let dir = temp_dir();
    let log = dir.path().join("auth.log");
    fs::write(&log, "").unwrap();
    // A receiver in the device namespace that keeps every ingest body.
    let bodies = dir.path().join("bodies");
    fs::create_dir(&bodies).unwrap();
    let receiver = dir.path().join("receiver.py");
    fs::write(
        &receiver,
        "import http.server, sys, itertools\n\
         n = itertools.count()\n\
         class H(http.server.BaseHTTPRequestHandler):\n\
         \x20   def do_POST(self):\n\
         \x20       body = self.rfile.read(int(self.headers['Content-Length']))\n\
         \x20       open(f'{sys.argv[1]}/{next(n):06}.batch', 'wb').write(body)\n\
         \x20       self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'{}')\n\
         \x20   def log_message(self, *a): pass\n\
         s = http.server.HTTPServer(('127.0.0.1', 0), H)\n\
         print(s.server_address[1], flush=True)\n\
         s.serve_forever()\n",
    )
    .unwrap();
    let mut server = Receiver(
        lab.device
            .command("python3")
            .args([receiver.to_str().unwrap(), bodies.to_str().unwrap()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3"),
    );
    let mut port = String::new();
    let mut stdout = server.0.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        port.push(byte[0] as char);
    }
    let respond = format!(
        "[collector]\nurl = \"http://127.0.0.1:{port}\"\ntoken = \"t\"\nheartbeat_secs = 1\nmodel_check_secs = 0\n\
         [respond]\nenabled = true\nblock_secs = 600\nallow = [\"192.0.2.0/24\"]\n"
    );
    let cfg = config(dir.path(), &log, &respond);
    let mut agent = Agent::start(&lab, &["--config", cfg.to_str().unwrap()], dir.path().join("agent.err"));
    agent.wait_for(20, "respond: blocking through");
    let lines = brute_force_lines();
    append(&log, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    agent.wait_for(60, &format!("respond: blocked {HOSTILE}"));
    let mut report = None;
    wait_until(30, "a heartbeat listing the block", || {
        let mut names: Vec<_> = fs::read_dir(&bodies).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        report = names.iter().rev().find_map(|p| {
            let batch = Batch::decode(&fs::read(p).ok()?).expect("the agent sends valid batches");
            batch.heartbeat.response.filter(|r| r.active.iter().any(|b| b.address == HOSTILE) && r.allowed > 0)
        });
        report.is_some()
    });
    let report = report.unwrap();
    assert_eq!(report.firewall, "nftables");
    assert!(report.blocks >= 1 && report.failures == 0, "{report:?}");
    assert!(report.active.iter().all(|b| b.address != ALLOWED), "{report:?}");
    let block = report.active.iter().find(|b| b.address == HOSTILE).unwrap();
    assert_eq!(block.until - block.since, 600);
    assert!(block.reason.contains("failed logins"), "{block:?}");
}

/// The ingest receiver's process, stopped on drop (a failed test too).
struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn bad_respond_settings_and_a_missing_firewall_are_clear_errors_at_start() {
    let dir = temp_dir();
    let log = dir.path().join("auth.log");
    fs::write(&log, "").unwrap();
    let run = |respond: &str, path: Option<&Path>| {
        let cfg = config(dir.path(), &log, respond);
        let mut cmd = Command::new(binary("bfp-agent"));
        cmd.args(["run", "--config", cfg.to_str().unwrap()]);
        if let Some(path) = path {
            cmd.env("PATH", path);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{respond}: started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run("[respond]\nenabled = true\nblock_sec = 60\n", None);
    assert!(err.contains("agent.toml") && err.contains("unknown field `block_sec`"), "{err}");
    let err = run("[respond]\nenabled = true\nallow = [\"192.0.2.0/24\", \"10.1.2.3/40\"]\n", None);
    assert!(err.contains("[respond] allow") && err.contains("10.1.2.3/40"), "{err}");
    // No firewall tool on PATH (an empty directory): refused before any line
    // is read, naming what to install. Nothing is touched on the host: there
    // is nothing to touch it with.
    let empty = dir.path().join("empty-bin");
    fs::create_dir(&empty).unwrap();
    let err = run("[respond]\nenabled = true\n", Some(&empty));
    assert!(err.contains("respond: neither `nft` nor `iptables` with `ipset` is on PATH"), "{err}");
    let err = run("[respond]\nenabled = true\nfirewall = \"nftables\"\n", Some(&empty));
    assert!(err.contains("`nft` is not on PATH"), "{err}");
    assert!(!dir.path().join("results.jsonl").exists(), "nothing was read or written");
}

#[test]
fn the_collector_accepts_the_version_2_heartbeats_of_a_responding_agent() {
    // A dry run changes no firewall, so it may run in the test's own
    // namespace, beside a real collector on loopback.
    let dir = temp_dir();
    let db = dir.path().join("app.db");
    let token = device_add(&db, "pi-respond");
    let collector = Collector::start(&db, &[]);
    let log = dir.path().join("auth.log");
    fs::write(&log, "").unwrap();
    let state = dir.path().join("state");
    let cfg = agent_config(dir.path(), &collector.url(""), &token, &log, &state, 16 << 20);
    let text = format!("source_window_secs = 60\n{}", fs::read_to_string(&cfg).unwrap());
    fs::write(&cfg, text).unwrap();
    let stderr = dir.path().join("agent.err");
    let mut agent = Command::new(binary("bfp-agent"))
        .args(["run", "--config", cfg.to_str().unwrap(), "--dry-run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let lines = brute_force_lines();
    append(&log, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let agent_log = || fs::read_to_string(&stderr).unwrap_or_default();
    wait_until(60, "a dry-run block", || {
        assert!(agent.try_wait().unwrap().is_none(), "the agent exited:\n{}", agent_log());
        agent_log().contains(&format!("would block {HOSTILE}"))
    });
    // Heard from after the block with nothing left in the spool: every
    // batch, heartbeats with the response report included, was accepted.
    let device = wait_drained(&collector, "pi-respond", 60);
    let _ = Command::new("kill").arg(agent.id().to_string()).status();
    let _ = agent.wait();
    assert_eq!(device["last_error"], serde_json::Value::Null, "{device}");
    assert!(!agent_log().contains("HTTP 4"), "{}", agent_log());
    let rows = agent_rows(&collector.url(""));
    assert!(rows.iter().any(|r| r["source_ip"] == HOSTILE), "the records that proved it were stored");
    collector.stop();
}
