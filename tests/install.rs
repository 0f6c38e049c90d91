//! `deploy/install.sh` against temporary root directories: install, a rerun
//! that changes nothing, an upgrade that keeps the operator's config,
//! uninstall and purge, for systemd and for OpenWrt (run by BusyBox's own
//! shell and tools, as on a router), target detection, and proof that nothing
//! outside the temporary root is touched (no service manager or user tool is
//! run, no host path changes).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bfp_e2e::{binary, repo_root};
use tempfile::TempDir;

/// Programs that change a live system. install.sh must not run any of them
/// with --root: each is replaced by a shim that records the call and fails.
const SYSTEM_TOOLS: &[&str] =
    &["systemctl", "systemd-sysusers", "systemd-tmpfiles", "useradd", "groupadd", "uci", "logger", "chgrp", "chown"];

/// Host paths install.sh would write on a live system: they must be exactly
/// as they were (present or not, same mtime) after every test run.
const HOST_PATHS: &[&str] = &[
    "/usr/bin/bfp-agent",
    "/usr/bin/bfp-collector",
    "/usr/share/bfp-agent",
    "/etc/bfp-agent",
    "/etc/systemd/system/bfp-agent.service",
    "/etc/systemd/system/bfp-collector.service",
    "/etc/systemd/system/multi-user.target.wants",
    "/usr/lib/sysusers.d/bfp-agent.conf",
    "/usr/lib/tmpfiles.d/bfp-agent.conf",
    "/etc/default/bfp-collector",
    "/etc/init.d/bfp-agent",
    "/etc/config/bfp-agent",
    "/etc/rc.d",
];

fn host_state() -> Vec<(String, Option<(i64, i64, u64)>)> {
    HOST_PATHS
        .iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(p).ok().map(|m| (m.mtime(), m.mtime_nsec(), m.ino()));
            (p.to_string(), m)
        })
        .collect()
}

/// One test's sandbox: the root to install into, the shims, the call log.
struct Sandbox {
    dir: TempDir,
    /// PATH for install.sh: shims first, then `tools` (or the host PATH).
    path: String,
    calls: PathBuf,
    host_before: Vec<(String, Option<(i64, i64, u64)>)>,
}

impl Sandbox {
    /// `busybox`: run the script with BusyBox's shell and only BusyBox's applets
    /// on PATH, as on OpenWrt.
    fn new(busybox: bool) -> Sandbox {
        let dir = TempDir::new().unwrap();
        let shims = dir.path().join("shims");
        std::fs::create_dir_all(&shims).unwrap();
        let calls = dir.path().join("calls.log");
        for tool in SYSTEM_TOOLS {
            let shim = shims.join(tool);
            std::fs::write(&shim, format!("#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 1\n", calls.display())).unwrap();
            std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = if busybox {
            let tools = dir.path().join("busybox-bin");
            std::fs::create_dir_all(&tools).unwrap();
            let bb = which("busybox").expect("busybox (scripts/setup/deploy.sh installs it)");
            let list = Command::new(&bb).arg("--list").output().expect("busybox --list");
            for applet in String::from_utf8_lossy(&list.stdout).lines() {
                if !SYSTEM_TOOLS.contains(&applet) {
                    std::os::unix::fs::symlink(&bb, tools.join(applet)).unwrap();
                }
            }
            format!("{}:{}", shims.display(), tools.display())
        } else {
            format!("{}:{}", shims.display(), std::env::var("PATH").unwrap_or_default())
        };
        Sandbox { dir, path, calls, host_before: host_state() }
    }

    fn root(&self) -> PathBuf {
        let root = self.dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    /// Runs `sh install.sh ARGS` (BusyBox's sh when PATH is BusyBox's) from `script_dir`.
    fn run_in(&self, script_dir: &Path, args: &[&str]) -> Output {
        let out = Command::new("sh")
            .arg(script_dir.join("install.sh"))
            .args(args)
            .env_clear()
            .env("PATH", &self.path)
            .env("HOME", self.dir.path())
            .output()
            .expect("run install.sh");
        eprintln!(
            "install.sh {args:?}\n--- stdout\n{}--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_in(&repo_root().join("deploy"), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "install.sh {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let calls = std::fs::read_to_string(&self.calls).unwrap_or_default();
        assert!(calls.is_empty(), "install.sh with --root ran system tools:\n{calls}");
        assert_eq!(host_state(), self.host_before, "a host path changed");
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Every entry below `root`: relative path -> (kind, mode, mtime, content or link target).
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            let desc = if m.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                walk(root, &p, out);
                format!("dir {mode:o}")
            } else {
                let bytes = std::fs::read(&p).unwrap();
                format!("file {mode:o} {}.{} {} bytes {:x}", m.mtime(), m.mtime_nsec(), bytes.len(), fnv(&bytes))
            };
            out.insert(rel, desc);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

fn files(root: &Path) -> Vec<String> {
    snapshot(root).into_iter().filter(|(_, d)| !d.starts_with("dir ")).map(|(p, _)| p).collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn systemd_install_is_idempotent_keeps_config_and_uninstalls_cleanly() {
    let sb = Sandbox::new(false);
    let root = sb.root();
    let agent = binary("bfp-agent");
    let collector = binary("bfp-collector");
    let args = ["--root", s(&root), "--init", "systemd", "--binary", s(&agent), "--collector-binary", s(&collector)];

    let first = sb.ok(&args);
    assert!(first.contains("installed"), "{first}");
    assert_eq!(std::fs::read(root.join("usr/bin/bfp-agent")).unwrap(), std::fs::read(&agent).unwrap());
    assert_eq!(mode(&root.join("usr/bin/bfp-agent")), 0o755);
    assert_eq!(std::fs::read(root.join("usr/bin/bfp-collector")).unwrap(), std::fs::read(&collector).unwrap());
    let deploy = repo_root().join("deploy");
    for (installed, shipped, m) in [
        ("etc/systemd/system/bfp-agent.service", "systemd/bfp-agent.service", 0o644),
        ("etc/systemd/system/bfp-collector.service", "systemd/bfp-collector.service", 0o644),
        ("usr/lib/sysusers.d/bfp-agent.conf", "systemd/bfp-agent.sysusers", 0o644),
        ("usr/lib/tmpfiles.d/bfp-agent.conf", "systemd/bfp-agent.tmpfiles", 0o644),
        ("etc/bfp-agent/bfp-agent.toml", "systemd/bfp-agent.toml", 0o640),
        ("etc/default/bfp-collector", "bfp-collector.default", 0o644),
        ("usr/share/bfp-agent/bfp-agent.example.toml", "bfp-agent.example.toml", 0o644),
    ] {
        let p = root.join(installed);
        assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(deploy.join(shipped)).unwrap(), "{installed}");
        assert_eq!(mode(&p), m, "mode of {installed}");
    }
    // Enabled the way `systemctl enable` does it.
    for unit in ["bfp-agent.service", "bfp-collector.service"] {
        let link = root.join("etc/systemd/system/multi-user.target.wants").join(unit);
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("..").join(unit));
        assert!(link.is_file(), "{unit} link resolves inside the root");
    }

    // A rerun changes nothing: same bytes, modes and mtimes.
    let before = snapshot(&root);
    let again = sb.ok(&args);
    assert!(again.contains("nothing changed"), "{again}");
    assert_eq!(snapshot(&root), before);

    // The operator edits the config; an upgrade replaces the binary, not the config.
    let config = root.join("etc/bfp-agent/bfp-agent.toml");
    std::fs::write(&config, "# mine\nstate_dir = \"/srv/bfp\"\n").unwrap();
    let newer = sb.dir.path().join("bfp-agent-newer");
    let mut bytes = std::fs::read(&agent).unwrap();
    bytes.extend_from_slice(b"\0upgrade");
    std::fs::write(&newer, &bytes).unwrap();
    let upgrade =
        sb.ok(&["--root", s(&root), "--init", "systemd", "--binary", s(&newer), "--collector-binary", s(&collector)]);
    assert!(upgrade.contains(&format!("installed {}", root.join("usr/bin/bfp-agent").display())), "{upgrade}");
    assert_eq!(std::fs::read(root.join("usr/bin/bfp-agent")).unwrap(), bytes);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\nstate_dir = \"/srv/bfp\"\n");
    assert!(!root.join("usr/bin").read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".new.")));

    // Uninstall: everything goes but the operator's config; --purge takes that too.
    std::fs::create_dir_all(root.join("var/lib/bfp-agent")).unwrap();
    std::fs::write(root.join("var/lib/bfp-agent/checkpoint"), "offsets").unwrap();
    // Without --collector the collector stays (a server may run it alone).
    let out = sb.ok(&["--root", s(&root), "--uninstall"]);
    assert!(out.contains("left bfp-collector installed"), "{out}");
    assert!(root.join("usr/bin/bfp-collector").is_file() && !root.join("usr/bin/bfp-agent").exists());
    let out = sb.ok(&["--root", s(&root), "--uninstall", "--collector"]);
    assert!(out.contains("kept"), "{out}");
    assert_eq!(
        files(&root),
        ["etc/bfp-agent/bfp-agent.toml", "etc/default/bfp-collector", "var/lib/bfp-agent/checkpoint"]
    );
    sb.ok(&["--root", s(&root), "--uninstall", "--purge", "--collector"]);
    assert_eq!(snapshot(&root), BTreeMap::new(), "purge leaves an empty root");
}

#[test]
fn openwrt_install_under_busybox_from_a_release_bundle() {
    let sb = Sandbox::new(true);
    let root = sb.root();
    // A router's root: OpenWrt's release file makes it procd + musl.
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/openwrt_release"), "DISTRIB_ID='OpenWrt'\nDISTRIB_ARCH='arm_cortex-a7_neon-vfpv4'\n")
        .unwrap();
    // A release bundle: the deploy folder with the binaries under bin/<target>/.
    let bundle = sb.dir.path().join("bundle");
    copy_dir(&repo_root().join("deploy"), &bundle);
    let bin = bundle.join("bin/armv7-unknown-linux-musleabihf/bfp-agent");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::write(&bin, b"\x7fELF stand-in for the armv7 musl build").unwrap();

    let target = sb.run_in(&bundle, &["--root", s(&root), "--arch", "armv7l", "--print-target"]);
    assert_eq!(String::from_utf8_lossy(&target.stdout).trim(), "armv7-unknown-linux-musleabihf");

    let args = ["--root", s(&root), "--arch", "armv7l"];
    let out = sb.run_in(&bundle, &args);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("armv7-unknown-linux-musleabihf (procd)"), "{stdout}");
    assert_eq!(std::fs::read(root.join("usr/bin/bfp-agent")).unwrap(), std::fs::read(&bin).unwrap());
    let deploy = repo_root().join("deploy");
    for (installed, shipped, m) in [
        ("etc/init.d/bfp-agent", "openwrt/bfp-agent.init", 0o755),
        ("etc/config/bfp-agent", "openwrt/bfp-agent.uci", 0o644),
        ("etc/bfp-agent/bfp-agent.toml", "openwrt/bfp-agent.toml", 0o640),
    ] {
        let p = root.join(installed);
        assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(deploy.join(shipped)).unwrap(), "{installed}");
        assert_eq!(mode(&p), m, "mode of {installed}");
    }
    for link in ["etc/rc.d/S95bfp-agent", "etc/rc.d/K10bfp-agent"] {
        assert_eq!(std::fs::read_link(root.join(link)).unwrap(), Path::new("../init.d/bfp-agent"));
    }
    assert!(!root.join("etc/systemd").exists(), "no systemd files on a router");

    let before = snapshot(&root);
    let again = sb.run_in(&bundle, &args);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing changed"));
    assert_eq!(snapshot(&root), before);

    assert!(sb.run_in(&bundle, &["--root", s(&root), "--uninstall", "--purge"]).status.success());
    assert_eq!(files(&root), ["etc/openwrt_release"], "only the router's own file is left");
}

#[test]
fn target_detection_and_bad_arguments() {
    let sb = Sandbox::new(false);
    let root = sb.root();
    let target = |args: &[&str]| {
        let mut all = vec!["--root", s(&root), "--print-target"];
        all.extend_from_slice(args);
        let out = sb.run(&all);
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(target(&["--arch", "aarch64"]), "aarch64-unknown-linux-gnu");
    assert_eq!(target(&["--arch", "arm64", "--libc", "musl"]), "aarch64-unknown-linux-musl");
    assert_eq!(target(&["--arch", "armv7l"]), "armv7-unknown-linux-gnueabihf");
    assert_eq!(target(&["--arch", "armv7l", "--libc", "musl"]), "armv7-unknown-linux-musleabihf");
    // This machine, by uname -m.
    let native = std::env::consts::ARCH;
    assert!(target(&[]).starts_with(native), "{native}");
    // A musl root (Alpine-like) is detected from its loader.
    std::fs::create_dir_all(root.join("lib")).unwrap();
    std::fs::write(root.join("lib/ld-musl-aarch64.so.1"), b"").unwrap();
    assert_eq!(target(&["--arch", "aarch64"]), "aarch64-unknown-linux-musl");

    for (args, says) in [
        (vec!["--arch", "mips"], "unsupported architecture mips"),
        (vec!["--libc", "uclibc"], "--libc must be gnu or musl"),
        (vec!["--init", "runit"], "--init must be systemd, procd or none"),
        (vec!["--bogus"], "unknown option: --bogus"),
        (vec!["--binary", "/nonexistent/bfp-agent"], "not found"),
        (vec!["--init", "procd", "--collector"], "not for OpenWrt"),
    ] {
        let mut all = vec!["--root", s(&root)];
        all.extend_from_slice(&args);
        let out = sb.run(&all);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // No binary for the device: a clear error naming the target and the fix. (A copy
    // of deploy/ outside the repository, so no local target/ build can be found.)
    let bundle = sb.dir.path().join("bundle");
    copy_dir(&repo_root().join("deploy"), &bundle);
    let out = sb.run_in(&bundle, &["--root", s(&root), "--arch", "armv7l", "--libc", "musl", "--init", "none"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scripts/build-arm.sh armv7-unknown-linux-musleabihf"));
    assert_eq!(files(&root), ["lib/ld-musl-aarch64.so.1"], "a failed run installs nothing");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}
