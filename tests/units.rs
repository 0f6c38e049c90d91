//! The service definitions in deploy/: the systemd units pass
//! `systemd-analyze verify` (and keep a low `systemd-analyze security`
//! exposure) in a throw-away root, carry the hardening the design asks for,
//! and start the real binaries with a command line they accept; the OpenWrt
//! procd init script starts the agent as its UCI config says (run under
//! BusyBox's shell with procd's functions recorded); the shipped configs are
//! accepted by the agent's own config loader.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bfp_agent::config::{Config, SourceKind};
use bfp_e2e::{binary, repo_root};
use tempfile::TempDir;

fn deploy(rel: &str) -> PathBuf {
    repo_root().join("deploy").join(rel)
}

/// `[Section] Key=Value` lines of a unit file; repeated keys keep every value.
fn unit_keys(path: &Path) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut section = String::new();
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{}: not key=value: {line}", path.display()));
        keys.entry(format!("{section}.{}", k.trim())).or_default().push(v.trim().to_string());
    }
    keys
}

fn one<'a>(keys: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    match keys.get(key).map(Vec::as_slice) {
        Some([v]) => v,
        other => panic!("{key}: expected one value, got {other:?}"),
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[test]
fn agent_unit_is_hardened_and_runs_as_its_own_user_with_log_groups() {
    let k = unit_keys(&deploy("systemd/bfp-agent.service"));
    assert_eq!(one(&k, "Service.ExecStart"), "/usr/bin/bfp-agent run --config /etc/bfp-agent/bfp-agent.toml");
    assert_eq!(one(&k, "Service.User"), "bfp-agent");
    let groups: Vec<&str> = one(&k, "Service.SupplementaryGroups").split_whitespace().collect();
    assert!(groups.contains(&"adm") && groups.contains(&"systemd-journal"), "{groups:?}");
    for (key, want) in [
        ("Service.NoNewPrivileges", "yes"),
        ("Service.ProtectSystem", "strict"),
        ("Service.ProtectHome", "yes"),
        ("Service.PrivateTmp", "yes"),
        ("Service.StateDirectory", "bfp-agent"),
        ("Service.CapabilityBoundingSet", ""),
        ("Service.RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("Install.WantedBy", "multi-user.target"),
    ] {
        assert_eq!(one(&k, key), want, "{key}");
    }
    // The user exists through sysusers.d and can read its config through tmpfiles.d.
    let sysusers = std::fs::read_to_string(deploy("systemd/bfp-agent.sysusers")).unwrap();
    assert!(sysusers.lines().any(|l| l.starts_with("u bfp-agent ")), "{sysusers}");
    let tmpfiles = std::fs::read_to_string(deploy("systemd/bfp-agent.tmpfiles")).unwrap();
    assert!(tmpfiles.contains("d /etc/bfp-agent 0750 root bfp-agent"), "{tmpfiles}");

    // The config the unit starts with writes its state where the unit allows it.
    let cfg = Config::load(&deploy("systemd/bfp-agent.toml")).unwrap();
    cfg.validate(&deploy("systemd/bfp-agent.toml")).unwrap();
    assert_eq!(cfg.state_dir, Path::new("/var/lib").join(one(&k, "Service.StateDirectory")));
    assert_eq!(cfg.sources.len(), 1);
    assert_eq!(cfg.sources[0].kind, SourceKind::Journald);

    let c = unit_keys(&deploy("systemd/bfp-collector.service"));
    assert_eq!(one(&c, "Service.DynamicUser"), "yes");
    assert_eq!(one(&c, "Service.StateDirectory"), "bfp-collector");
    assert_eq!(one(&c, "Service.NoNewPrivileges"), "yes");
    assert_eq!(one(&c, "Service.ProtectSystem"), "strict");
    assert!(one(&c, "Service.ExecStart").contains("--db /var/lib/bfp-collector/"));
}

/// A root with the host's own systemd units (targets, sockets) and the
/// project's units and stand-in binaries, for `systemd-analyze --root`.
fn analyze_root() -> Option<(TempDir, PathBuf)> {
    let dir = TempDir::new().unwrap();
    let root = dir.path().to_path_buf();
    copy_host_units(&root)?;
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    for (bin, unit) in [("bfp-agent", "bfp-agent.service"), ("bfp-collector", "bfp-collector.service")] {
        std::fs::copy(binary(bin), root.join("usr/bin").join(bin)).unwrap();
        std::fs::copy(deploy(&format!("systemd/{unit}")), root.join("etc/systemd/system").join(unit)).unwrap();
    }
    Some((dir, root))
}

/// Copies the host's own systemd units (targets, sockets) into `root`, so
/// `systemd-analyze --root` finds what our units refer to. `None` when the
/// host has no units or no systemd-analyze.
pub(crate) fn copy_host_units(root: &Path) -> Option<()> {
    let host_units =
        ["/usr/lib/systemd/system", "/lib/systemd/system"].iter().map(PathBuf::from).find(|d| d.is_dir())?;
    which("systemd-analyze")?;
    let lib = root.join("usr/lib/systemd/system");
    std::fs::create_dir_all(&lib).unwrap();
    for e in std::fs::read_dir(&host_units).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), lib.join(e.file_name())).unwrap();
        }
    }
    Some(())
}

/// `systemd-analyze verify`: exit 0 and not one complaint about our units
/// (it only warns, with exit 0, about unknown keys and bad values).
fn verify(root: &Path, unit: &str) -> Result<(), String> {
    verify_unit_file(root, &root.join("etc/systemd/system").join(unit))
}

/// `systemd-analyze verify --root=ROOT UNIT_FILE`, as [`verify`] judges it.
pub(crate) fn verify_unit_file(root: &Path, unit_file: &Path) -> Result<(), String> {
    let unit = unit_file.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg(unit_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains("bfp-")).collect();
    if out.status.success() && complaints.is_empty() {
        Ok(())
    } else {
        Err(format!("{unit}: {}\n{stderr}", out.status))
    }
}

fn exposure(root: &Path, unit: &str) -> f64 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(format!("--root={}", root.display()))
        .arg(root.join("etc/systemd/system").join(unit))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure line:\n{text}{}", String::from_utf8_lossy(&out.stderr)));
    let after = line.rsplit_once(": ").unwrap().1;
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn systemd_analyze_verifies_units_and_rates_them_well_hardened() {
    let Some((_dir, root)) = analyze_root() else {
        // The structural test above still checks the units; say why this one could not.
        eprintln!("SKIP: systemd-analyze or the host's unit directory is missing");
        return;
    };
    for unit in ["bfp-agent.service", "bfp-collector.service"] {
        verify(&root, unit).unwrap();
        // 0 is a fully sandboxed unit, 10 a plain root service; both units measured 1.5
        // with systemd 252. Losing a block of hardening pushes this past 2.
        let score = exposure(&root, unit);
        assert!(score <= 2.0, "{unit}: exposure {score}");
    }
    // The check can fail: a misspelt setting and a bad value are caught.
    let broken = root.join("etc/systemd/system/bfp-agent.service");
    let text = std::fs::read_to_string(&broken).unwrap();
    std::fs::write(&broken, text.replace("ProtectSystem=strict", "ProtectSytem=strict")).unwrap();
    assert!(verify(&root, "bfp-agent.service").is_err());
    std::fs::write(&broken, text.replace("SystemCallFilter=@system-service", "SystemCallFilter=@system-servic"))
        .unwrap();
    assert!(verify(&root, "bfp-agent.service").is_err());
}

/// The units' ExecStart lines, run for real (paths moved into a temp dir):
/// the binaries accept them and keep running.
#[test]
fn unit_command_lines_start_the_real_binaries() {
    let dir = TempDir::new().unwrap();
    let c = unit_keys(&deploy("systemd/bfp-collector.service"));
    let exec = one(&c, "Service.ExecStart").replace("${BFP_LISTEN}", "127.0.0.1:0");
    let exec = exec.replace("/var/lib/bfp-collector/", &format!("{}/", dir.path().display()));
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/bin/bfp-collector"));
    let mut child = Command::new(binary("bfp-collector"))
        .args(words)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines.next().and_then(Result::ok).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening.contains("listening on http://127.0.0.1:"), "collector said {listening:?}");

    // The agent: the unit's ExecStart with a config following a temp file.
    let k = unit_keys(&deploy("systemd/bfp-agent.service"));
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").unwrap();
    let config = dir.path().join("bfp-agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\noutput = {:?}\n[[source]]\npath = {:?}\nformat = \"syslog\"\n",
            dir.path().join("state"),
            dir.path().join("results.jsonl"),
            log
        ),
    )
    .unwrap();
    // ExecStartPre: the config check passes on this config, and names a
    // broken one (exit 1), which stops the start.
    let pre = one(&k, "Service.ExecStartPre").replace("/etc/bfp-agent/bfp-agent.toml", config.to_str().unwrap());
    let mut words = pre.split_whitespace();
    assert_eq!(words.next(), Some("/usr/bin/bfp-agent"));
    let args: Vec<&str> = words.collect();
    let out = Command::new(binary("bfp-agent")).args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "poll_interval_ms = 1\n[[source]]\npath = \"/x\"\n").unwrap();
    let pre_broken = pre.replace(config.to_str().unwrap(), broken.to_str().unwrap());
    let out = Command::new(binary("bfp-agent")).args(pre_broken.split_whitespace().skip(1)).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("poll_interval_ms"));

    let exec = one(&k, "Service.ExecStart").replace("/etc/bfp-agent/bfp-agent.toml", config.to_str().unwrap());
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/bin/bfp-agent"));
    let mut child = Command::new(binary("bfp-agent")).args(words).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("bfp-agent exited early ({status}): {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(dir.path().join("state").is_dir(), "the agent created its state directory");
}

/// Runs deploy/openwrt/bfp-agent.init's start_service and service_triggers
/// with procd's and UCI's shell functions replaced by recorders.
fn procd_start(enabled: &str, config: &Path, system_log_file: &str) -> (bool, String) {
    let dir = TempDir::new().unwrap();
    let harness = dir.path().join("harness.sh");
    std::fs::write(
        &harness,
        format!(
            r#"
config_load() {{ echo "config_load $1"; }}
config_get() {{ case "$3" in config) eval "$1=\"{config}\"";; *) eval "$1=\"$4\"";; esac; }}
config_get_bool() {{ eval "$1={enabled}"; }}
uci() {{ echo "{system_log_file}"; }}
logger() {{ echo "logger $*"; }}
procd_open_instance() {{ echo "open $*"; }}
procd_set_param() {{ echo "param $*"; }}
procd_close_instance() {{ echo "close"; }}
procd_add_reload_trigger() {{ echo "trigger $*"; }}
. "$1"
check_config() {{ "{agent}" check --config "$1"; }}
start_service && echo "start ok"
service_triggers
"#,
            config = config.display(),
            agent = binary("bfp-agent").display()
        ),
    )
    .unwrap();
    let shell = which("busybox").map(|b| (b, vec!["sh".to_string()])).unwrap_or((PathBuf::from("sh"), vec![]));
    let out = Command::new(shell.0).args(shell.1).arg(&harness).arg(deploy("openwrt/bfp-agent.init")).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (text.contains("start ok"), text)
}

#[test]
fn openwrt_init_script_starts_the_agent_as_uci_says() {
    let dir = TempDir::new().unwrap();
    // The shipped config with its paths moved into the temp dir (the check
    // that runs before the start must find the log and the state dir).
    let config = dir.path().join("bfp-agent.toml");
    let messages = dir.path().join("messages");
    std::fs::write(&messages, "").unwrap();
    let shipped = std::fs::read_to_string(deploy("openwrt/bfp-agent.toml")).unwrap();
    let moved = shipped
        .replace("\"/var/lib/bfp-agent\"", &format!("{:?}", dir.path().join("state")))
        .replace("\"/var/log/messages\"", &format!("{messages:?}"));
    assert_ne!(moved, shipped);
    std::fs::write(&config, moved).unwrap();

    let (ok, out) = procd_start("1", &config, "/var/log/messages");
    assert!(ok, "{out}");
    assert!(out.contains("open agent"), "{out}");
    assert!(out.contains(&format!("param command /usr/bin/bfp-agent run --config {}", config.display())), "{out}");
    assert!(out.contains("param respawn"), "{out}");
    assert!(out.contains("trigger bfp-agent"), "{out}");
    assert!(!out.contains("logger"), "no warning when the system log file is set: {out}");

    // Disabled: nothing started, and it says how to enable it.
    let (ok, out) = procd_start("0", &config, "/var/log/messages");
    assert!(ok && !out.contains("open"), "{out}");
    assert!(out.contains("uci set bfp-agent.main.enabled=1"), "{out}");

    // No system log file: still starts, with a warning in the log saying what to set.
    let (ok, out) = procd_start("1", &config, "");
    assert!(ok && out.contains("open agent"), "{out}");
    assert!(out.contains("logger") && out.contains("log_file=/var/log/messages"), "{out}");

    // A config with a problem: not started, the problem named.
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        format!(
            "state_dir = {:?}\ntor_exit_list = \"/nonexistent/tor\"\n[[source]]\npath = {messages:?}\n",
            dir.path().join("state")
        ),
    )
    .unwrap();
    let (ok, out) = procd_start("1", &broken, "/var/log/messages");
    assert!(!ok && !out.contains("open"), "{out}");
    assert!(out.contains("not started") && out.contains("/nonexistent/tor"), "{out}");

    // A missing config is an error, not a crash loop.
    let (ok, out) = procd_start("1", &dir.path().join("nope.toml"), "/var/log/messages");
    assert!(!ok && !out.contains("open"), "{out}");
    assert!(out.contains("nope.toml is missing"), "{out}");

    // The OpenWrt config follows the file the init script tells the system log to write.
    let cfg = Config::load(&deploy("openwrt/bfp-agent.toml")).unwrap();
    cfg.validate(&deploy("openwrt/bfp-agent.toml")).unwrap();
    assert_eq!(cfg.sources.len(), 1);
    assert_eq!(cfg.sources[0].path.as_deref(), Some(Path::new("/var/log/messages")));
    let init = std::fs::read_to_string(deploy("openwrt/bfp-agent.init")).unwrap();
    assert!(init.contains("log_file=/var/log/messages"));
    let uci = std::fs::read_to_string(deploy("openwrt/bfp-agent.uci")).unwrap();
    assert!(uci.contains("option config '/etc/bfp-agent/bfp-agent.toml'"), "{uci}");
}
