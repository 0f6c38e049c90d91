//! Decisions across the fleet, with the real binaries: two agents enrolled
//! in one group of a real collector on loopback. Agent A follows a real
//! sshd brute force and blocks its address (a dry run: it runs in the
//! test's own namespace, whose firewall must stay untouched). The operator
//! then decides from the collector (`bfp-collector decisions add`), and
//! agent B, which never saw the attacker, blocks it through real nftables
//! (and, in a second test, iptables with ipset) in a network namespace the
//! test makes, so the peer's packets are dropped; `decisions delete` makes
//! B lift it. A decision naming a network drops the whole network. An allow-listed address
//! pushed as a decision is refused by B and shows as refused. Every block
//! shows per device in the collector's API. The collector also turns the
//! brute force's alert into a decision by itself (`[decisions]` of its
//! config), for a group of its own so it does not mix with the operator's.
//!
//! Agent B talks to the collector on the host's loopback, while its
//! firewall is the device namespace's: the `nft` (`iptables`, `ipset`) on
//! its `PATH` is a two-line script that runs the real tool inside that
//! namespace (`ip netns exec`), so every rule it writes, and every dropped
//! packet, is in the namespace, and nothing touches the host's firewall.
//! Needs scripts/setup/respond.sh.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bfp_e2e::agent::{append, temp_dir, wait_until};
use bfp_e2e::forward::agent_config;
use bfp_e2e::{binary, operator_token, send, Backend, Collector};
use serde_json::Value;

use crate::respond_firewall::{brute_force_lines, Lab, ALLOWED, HOSTILE};

/// `bfp-collector ARGS --db DB`, which must succeed: its standard output.
fn collector_cli(db: &OsStr, args: &[&str]) -> String {
    bfp_e2e::collector_cli(db, args, "")
}

/// A `bfp-agent run` with its standard error in a file, stopped on drop.
struct Agent {
    child: Child,
    stderr: PathBuf,
}

impl Agent {
    fn start(config: &Path, extra: &[&str], path_prefix: Option<&Path>, stderr: PathBuf) -> Agent {
        let mut cmd = Command::new(binary("bfp-agent"));
        cmd.args(["run", "--config", config.to_str().unwrap()]).args(extra);
        if let Some(dir) = path_prefix {
            let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
            cmd.env("PATH", path);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start bfp-agent");
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
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// The blocks device `name` reported, once `ready` holds of them, read
/// with viewer token `viewer`.
fn blocks_when(base: &str, viewer: &str, name: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let auth = format!("Bearer {viewer}");
    wait_until(30, what, || {
        let reply = send("GET", &format!("{base}/api/devices/{name}/blocks"), &[("Authorization", &auth)], None);
        assert_eq!(reply.status, 200, "{}", reply.body);
        last = reply.json();
        ready(&last)
    });
    last
}

fn lists(blocks: &Value, address: &str, origin: &str) -> bool {
    blocks["blocks"].as_array().unwrap().iter().any(|b| b["address"] == address && b["origin"] == origin)
}

/// What the device namespace's firewall holds, as its tool lists it.
fn firewall_state(lab: &Lab, firewall: &str) -> String {
    match firewall {
        "nftables" => lab.ruleset(),
        _ => ["bfp-blocked4", "bfp-nets4"].iter().map(|set| lab.ipset(set)).collect::<Vec<_>>().join("\n"),
    }
}

/// A directory of scripts named after the firewall tools, each running the
/// real one inside namespace `ns`.
fn tools_in_namespace(dir: &Path, ns: &str) -> PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    for tool in ["nft", "iptables", "ip6tables", "ipset"] {
        let real = ["/usr/sbin", "/sbin", "/usr/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} is missing: run scripts/setup/respond.sh"));
        let script = bin.join(tool);
        fs::write(&script, format!("#!/bin/sh\nexec ip netns exec {ns} {} \"$@\"\n", real.display())).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

#[test]
fn a_decision_reaches_every_agent_of_the_group_is_applied_with_nftables_and_lifted_when_deleted() {
    for backend in Backend::ALL {
        decisions_across_the_fleet("nftables", backend);
    }
}

#[test]
fn iptables_with_ipset_applies_and_lifts_decisions_the_same_way() {
    for backend in Backend::ALL {
        decisions_across_the_fleet("iptables", backend);
    }
}

fn decisions_across_the_fleet(firewall: &str, backend: Backend) {
    let Some(lab) = Lab::new() else { return };
    eprintln!("backend: {backend:?}, firewall: {firewall}");
    let dir = temp_dir();
    let store = backend.fresh();
    let db = store.db();
    let token_of =
        |name: &str| collector_cli(db, &["device", "add", name, "--group", "edge", "--create"]).trim().to_string();
    let (token_a, token_b) = (token_of("pi-a"), token_of("pi-b"));
    let viewer = operator_token(db, "vera", "viewer");
    let rules = dir.path().join("collector.toml");
    fs::write(
        &rules,
        "[alert]\ninterval_secs = 1\n[[alert.rule]]\nname = \"brute\"\nkinds = [\"source\"]\n\
         verdict = \"suspicious\"\ngroup_by = \"source_ip\"\n\
         [decisions]\nfrom_alert_rules = [\"brute\"]\nduration = \"1h\"\ngroup = \"watch\"\ninterval_secs = 1\n",
    )
    .unwrap();
    let collector = Collector::start(db, &["--config".to_string(), rules.to_str().unwrap().to_string()]);
    let base = collector.url("");

    // Agent A: follows the brute force; a dry run, in the test's namespace.
    let dir_a = dir.path().join("a");
    fs::create_dir(&dir_a).unwrap();
    let log_a = dir_a.join("auth.log");
    fs::write(&log_a, "").unwrap();
    let cfg_a = agent_config(&dir_a, &base, &token_a, &log_a, &dir_a.join("state"), 16 << 20);
    let text = format!("source_window_secs = 60\n{}", fs::read_to_string(&cfg_a).unwrap());
    fs::write(&cfg_a, text).unwrap();
    let mut agent_a = Agent::start(&cfg_a, &["--dry-run"], None, dir_a.join("agent.err"));

    // Agent B: an empty log; blocks through `firewall` in the device namespace.
    let dir_b = dir.path().join("b");
    let bin = tools_in_namespace(&dir_b, &lab.device.name);
    let log_b = dir_b.join("auth.log");
    fs::write(&log_b, "").unwrap();
    let cfg_b = agent_config(&dir_b, &base, &token_b, &log_b, &dir_b.join("state"), 16 << 20);
    let respond = format!("\n[respond]\nenabled = true\nfirewall = \"{firewall}\"\nallow = [\"192.0.2.0/24\"]\n");
    fs::write(&cfg_b, fs::read_to_string(&cfg_b).unwrap() + &respond).unwrap();
    let mut agent_b = Agent::start(&cfg_b, &[], Some(&bin), dir_b.join("agent.err"));
    agent_b.wait_for(20, "respond: blocking through");
    let state = firewall_state(&lab, firewall);
    assert!(state.contains("table inet bfp") || state.contains("Name: bfp-nets4"), "B's firewall is in the namespace");
    assert!(lab.hostile_gets_through() && lab.allowed_gets_through(), "before: both peers reach the device");

    // A proves the attacker hostile itself, and says so in its heartbeat.
    let lines = brute_force_lines();
    append(&log_a, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    agent_a.wait_for(60, &format!("respond: dry run: would block {HOSTILE}"));
    let a = blocks_when(&base, &viewer, "pi-a", "A's own block reported", |b| lists(b, HOSTILE, "agent"));
    assert_eq!(
        (a["backend"].as_str(), a["dry_run"].as_bool(), a["group"].as_str()),
        (Some("dry-run"), Some(true), Some("edge"))
    );
    assert!(lab.hostile_gets_through(), "B has not blocked anything of its own");
    // The collector decided by itself, from the rule's alert, for group watch.
    let mut auto = Value::Null;
    wait_until(30, "a decision made from the alert", || {
        auto = serde_json::from_str(&collector_cli(db, &["decisions", "list", "--group", "watch", "--json"])).unwrap();
        auto.as_array().unwrap().iter().any(|d| d["address"] == HOSTILE)
    });
    let made = auto.as_array().unwrap().iter().find(|d| d["address"] == HOSTILE).unwrap();
    assert_eq!(made["created_by"], "collector", "{made}");
    assert!(made["reason"].as_str().unwrap().contains("of rule brute"), "{made}");

    // The operator decides for the group, and pushes an allow-listed one too.
    let add = |address: &str| -> i64 {
        let out = collector_cli(
            db,
            &[
                "decisions",
                "add",
                address,
                "--duration",
                "10m",
                "--group",
                "edge",
                "--reason",
                "brute force on pi-a",
                "--json",
            ],
        );
        let decision: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(decision["state"], "active", "{decision}");
        decision["id"].as_i64().unwrap()
    };
    let hostile_id = add(HOSTILE);
    let allowed_id = add(ALLOWED);
    let listed: Value =
        serde_json::from_str(&collector_cli(db, &["decisions", "list", "--group", "edge", "--json"])).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");

    agent_b.wait_for(30, &format!("respond: blocked {HOSTILE} for"));
    wait_until(10, "the peer's packets to be dropped", || !lab.hostile_gets_through());
    agent_b.wait_for(
        10,
        &format!("respond: not applying decision {allowed_id} for {ALLOWED}: allow-list 192.0.2.0/24 covers it"),
    );
    assert!(lab.allowed_gets_through(), "the allow-listed peer still gets through");
    let state = firewall_state(&lab, firewall);
    assert!(state.contains(HOSTILE) && !state.contains(ALLOWED), "{state}");

    let b = blocks_when(&base, &viewer, "pi-b", "B's decision block and refusal reported", |b| {
        lists(b, HOSTILE, "collector") && !b["refused"].as_array().unwrap().is_empty()
    });
    assert_eq!((b["backend"].as_str(), b["dry_run"].as_bool()), (Some(firewall), Some(false)));
    let block = b["blocks"].as_array().unwrap().iter().find(|x| x["address"] == HOSTILE).unwrap();
    assert_eq!(block["decision"].as_i64(), Some(hostile_id), "{b}");
    assert!(block["until"].as_i64().unwrap() - block["since"].as_i64().unwrap() <= 600, "{b}");
    let refused = &b["refused"][0];
    assert_eq!((refused["decision"].as_i64(), refused["address"].as_str()), (Some(allowed_id), Some(ALLOWED)));
    assert!(!lists(&b, ALLOWED, "collector"), "a refused decision is never listed as a block: {b}");
    // A, of the same group, got the decision as well (it logs, being a dry run).
    blocks_when(&base, &viewer, "pi-a", "A's copy of the decision", |b| lists(b, HOSTILE, "collector"));

    // Revoked: B lifts the block at its next fetch, well before the expiry.
    let deleted: Value =
        serde_json::from_str(&collector_cli(db, &["decisions", "delete", &hostile_id.to_string(), "--json"])).unwrap();
    assert_eq!(deleted["state"], "deleted");
    agent_b.wait_for(30, &format!("respond: unblocked {HOSTILE} (decision {hostile_id} revoked)"));
    wait_until(10, "the peer to get through again", || lab.hostile_gets_through());
    assert!(!firewall_state(&lab, firewall).contains(HOSTILE), "{}", firewall_state(&lab, firewall));
    blocks_when(&base, &viewer, "pi-b", "B's block gone from its report", |b| !lists(b, HOSTILE, "collector"));
    // A network: its own interval set; the whole /26 around the peer is dropped.
    let net_id = add("198.51.100.64/26");
    agent_b.wait_for(30, "respond: blocked 198.51.100.64/26 for");
    wait_until(10, "the network's packets to be dropped", || !lab.hostile_gets_through());
    assert!(firewall_state(&lab, firewall).contains("198.51.100.64/26"), "{}", firewall_state(&lab, firewall));
    blocks_when(&base, &viewer, "pi-b", "B's network block reported", |b| lists(b, "198.51.100.64/26", "collector"));
    collector_cli(db, &["decisions", "delete", &net_id.to_string()]);
    agent_b.wait_for(30, &format!("respond: unblocked 198.51.100.64/26 (decision {net_id} revoked)"));
    wait_until(10, "the network to get through again", || lab.hostile_gets_through());

    // A mistaken decision is refused whole, naming the mistake; nothing is stored.
    let out = Command::new(binary("bfp-collector"))
        .args(["decisions", "add", "198.51.100.66/24", "--group", "edge", "--db"])
        .arg(db)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("host bits set: did you mean 198.51.100.0/24?"), "{err}");
    let all: Value =
        serde_json::from_str(&collector_cli(db, &["decisions", "list", "--group", "edge", "--all", "--json"])).unwrap();
    assert_eq!(all.as_array().map(Vec::len), Some(3), "{all}");

    // Both commands went to the audit trail, under the command line's name.
    let admin = operator_token(db, "root", "admin");
    let trail =
        send("GET", &format!("{base}/api/audit?limit=1000"), &[("Authorization", &format!("Bearer {admin}"))], None);
    let entries = trail.json()["entries"].as_array().cloned().unwrap_or_default();
    let by_cli = |action: &str, target: &str| {
        entries.iter().any(|e| {
            e["action"] == action && e["target"] == target && e["actor"].as_str().is_some_and(|a| a.starts_with("cli:"))
        })
    };
    assert!(by_cli("decision.add", HOSTILE) && by_cli("decision.delete", "198.51.100.64/26"), "{}", trail.body);

    let log_b = agent_b.log();
    eprintln!("agent B:\n{log_b}");
    assert!(!log_b.contains(&format!("blocked {ALLOWED}")), "{log_b}");
    drop(agent_a);
    drop(agent_b);
    collector.stop();
}
