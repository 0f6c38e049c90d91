//! The packages `scripts/package.sh` builds, installed and opened as a user
//! would: the two `.deb`s installed with the real `dpkg` into a scratch root
//! (`--root`, maintainer scripts honouring `DPKG_ROOT`), their units verified
//! by `systemd-analyze`, removed again; the OpenWrt `.ipk` opened as opkg
//! opens it, with the agent built for its architecture inside.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use bfp_e2e::{binary, repo_root};
use tempfile::TempDir;

use crate::arm_qemu;
use crate::units::{copy_host_units, verify_unit_file};

fn package(args: &[&str], out: &Path) -> Vec<PathBuf> {
    let run = Command::new("bash")
        .arg(repo_root().join("scripts/package.sh"))
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run scripts/package.sh");
    assert!(run.status.success(), "package.sh {args:?}: {}", String::from_utf8_lossy(&run.stderr));
    String::from_utf8_lossy(&run.stdout).lines().map(PathBuf::from).collect()
}

fn dpkg(root: &Path, args: &[&str]) -> String {
    let out = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-script-chrootless", "--force-depends", "--log=/dev/null"])
        .args(args)
        .output()
        .expect("run dpkg");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "dpkg {args:?}: {text}");
    text
}

/// An empty root dpkg can install into, with the host's users (sysusers adds ours).
fn scratch_root() -> TempDir {
    let dir = TempDir::new().unwrap();
    let r = dir.path();
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    for f in ["passwd", "group"] {
        std::fs::copy(Path::new("/etc").join(f), r.join("etc").join(f)).unwrap();
    }
    dir
}

#[test]
fn debs_install_into_a_scratch_root_with_their_user_units_and_configs_then_remove() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        panic!("dpkg-deb is missing: Debian's dpkg package provides it");
    }
    let out = TempDir::new().unwrap();
    // The binaries the e2e suite already built (a release package takes the
    // release ones; the layout is the same).
    let bin_dir = binary("bfp-agent").parent().unwrap().to_path_buf();
    // Debug binaries are large: uncompressed, the test spends its time testing.
    let debs = package(&["deb", "--bin-dir", bin_dir.to_str().unwrap(), "--compression", "none"], out.path());
    assert_eq!(debs.len(), 2, "{debs:?}");
    for deb in &debs {
        let name = deb.file_name().unwrap().to_string_lossy();
        assert!(name.starts_with("bfp-agent_") || name.starts_with("bfp-collector_"), "{name}");
    }

    let root = scratch_root();
    let r = root.path();
    let deb_args: Vec<&str> = debs.iter().map(|d| d.to_str().unwrap()).collect();
    dpkg(r, &[&["-i"], deb_args.as_slice()].concat());
    let listed = dpkg(r, &["-l"]);
    assert!(listed.lines().any(|l| l.starts_with("ii  bfp-agent ")), "{listed}");
    assert!(listed.lines().any(|l| l.starts_with("ii  bfp-collector ")), "{listed}");

    // The installed binaries are the programs (they answer --help).
    for bin in ["bfp-agent", "bfp-collector"] {
        let path = r.join("usr/bin").join(bin);
        let help = Command::new(&path).arg("--help").output().unwrap();
        assert!(help.status.success(), "{} --help", path.display());
    }
    // The agent's system user exists and may read its config; nobody else may.
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    let uid_line = passwd.lines().find(|l| l.starts_with("bfp-agent:")).expect("bfp-agent user created");
    assert!(uid_line.ends_with(":/var/lib/bfp-agent:/usr/sbin/nologin"), "{uid_line}");
    let group = std::fs::read_to_string(r.join("etc/group")).unwrap();
    let gid: u32 =
        group.lines().find(|l| l.starts_with("bfp-agent:")).unwrap().split(':').nth(2).unwrap().parse().unwrap();
    use std::os::unix::fs::MetadataExt;
    let config = std::fs::metadata(r.join("etc/bfp-agent/bfp-agent.toml")).unwrap();
    assert_eq!((config.mode() & 0o777, config.uid(), config.gid()), (0o640, 0, gid));
    assert!(r.join("etc/default/bfp-collector").is_file());

    // The units as installed pass systemd-analyze with the host's own units beside them.
    if copy_host_units(r).is_some() {
        for unit in ["bfp-agent.service", "bfp-collector.service"] {
            verify_unit_file(r, &r.join("lib/systemd/system").join(unit)).unwrap();
        }
    } else {
        panic!("systemd-analyze or the host's units are missing: scripts/setup/deploy.sh installs them");
    }

    // Removal takes the programs and keeps the operator's configs (conffiles).
    dpkg(r, &["-r", "bfp-agent", "bfp-collector"]);
    assert!(!r.join("usr/bin/bfp-agent").exists() && !r.join("usr/bin/bfp-collector").exists());
    assert!(r.join("etc/bfp-agent/bfp-agent.toml").is_file());
}

/// The members of a gzipped tar, in order, with their bytes.
fn tar_gz_members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("a.tar.gz");
    std::fs::write(&file, bytes).unwrap();
    let list = Command::new("tar").arg("-tzf").arg(&file).output().unwrap();
    assert!(list.status.success(), "not a gzipped tar");
    let names: Vec<String> = String::from_utf8_lossy(&list.stdout).lines().map(str::to_owned).collect();
    let x = Command::new("tar").arg("-xzf").arg(&file).arg("-C").arg(dir.path()).output().unwrap();
    assert!(x.status.success());
    names
        .into_iter()
        .filter(|n| !n.ends_with('/'))
        .map(|n| {
            let mut data = Vec::new();
            std::fs::File::open(dir.path().join(&n)).unwrap().read_to_end(&mut data).unwrap();
            (n, data)
        })
        .collect()
}

#[test]
fn ipk_is_an_opkg_archive_with_the_aarch64_agent_its_init_script_and_configs() {
    if arm_qemu::skip() {
        return;
    }
    let agent = arm_qemu::arm_agent();
    let out = TempDir::new().unwrap();
    let ipks = package(&["ipk", "--arch", "aarch64_cortex-a53", "--bin", agent.to_str().unwrap()], out.path());
    assert_eq!(ipks.len(), 1);
    assert!(ipks[0].to_string_lossy().ends_with("bfp-agent_0.1.0_aarch64_cortex-a53.ipk"), "{ipks:?}");

    // opkg reads debian-binary, then control.tar.gz, then data.tar.gz.
    let outer = tar_gz_members(&std::fs::read(&ipks[0]).unwrap());
    let names: Vec<&str> = outer.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["./debian-binary", "./control.tar.gz", "./data.tar.gz"]);
    assert_eq!(outer[0].1, b"2.0\n");
    let control = tar_gz_members(&outer[1].1);
    let fields = String::from_utf8(control.iter().find(|(n, _)| n == "./control").unwrap().1.clone()).unwrap();
    for want in ["Package: bfp-agent", "Version: 0.1.0", "Architecture: aarch64_cortex-a53"] {
        assert!(fields.lines().any(|l| l == want), "{want} in\n{fields}");
    }
    let data = tar_gz_members(&outer[2].1);
    let file = |name: &str| &data.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} in the ipk")).1;
    // ELF, 64-bit, little endian, e_machine 183 = AArch64: the device's architecture.
    let elf = file("./usr/bin/bfp-agent");
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!((elf[4], elf[5], u16::from_le_bytes([elf[18], elf[19]])), (2, 1, 183));
    assert!(String::from_utf8_lossy(file("./etc/init.d/bfp-agent")).starts_with("#!/bin/sh /etc/rc.common"));
    assert!(!file("./etc/config/bfp-agent").is_empty());
    assert!(!file("./etc/bfp-agent/bfp-agent.toml").is_empty());

    // And it runs there: the packaged binary under qemu answers as the agent.
    let unpacked = TempDir::new().unwrap();
    let bin = unpacked.path().join("bfp-agent");
    std::fs::write(&bin, elf).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let help = Command::new(arm_qemu::QEMU).arg(&bin).arg("--help").output().unwrap();
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("bfp-agent"));
}
