#!/usr/bin/env bash
# Builds installable packages from built binaries:
#
#   scripts/package.sh deb [--arch DEB_ARCH] [--bin-dir DIR] [--out DIR] [--compression xz|gzip|none]
#       bfp-agent_VERSION_ARCH.deb and bfp-collector_VERSION_ARCH.deb (Debian,
#       Raspberry Pi OS): binaries in /usr/bin, units in /lib/systemd/system,
#       sysusers/tmpfiles for the agent's user, the example configs as conffiles.
#   scripts/package.sh ipk --arch OPKG_ARCH --bin FILE [--out DIR]
#       bfp-agent_VERSION_ARCH.ipk (OpenWrt): the agent, its procd init script,
#       its UCI and TOML configs.
#
# Without --bin-dir / --bin the binaries come from target/release (build them
# first: `cargo build --release -p bfp-collector` and
# `cargo build --profile release-small -p bfp-agent`, or scripts/build-arm.sh for
# ARM). Packages are built with dpkg-deb and tar, no other packaging tool:
# the layout below is all there is to them. Output: target/packages/.
set -euo pipefail
cd "$(dirname "$0")/.."

KIND=${1:-}
[ -n "$KIND" ] || { sed -n '2,17p' "$0"; exit 2; }
shift
ARCH=""
BIN_DIR=""
BIN=""
OUT=target/packages
COMPRESSION=xz
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH=$2; shift 2 ;;
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --compression) COMPRESSION=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ -n "$VERSION" ] || { echo "no version in Cargo.toml" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Files are owned by root in the archives whoever builds them.
tar_root() { tar --owner=0 --group=0 --numeric-owner "$@"; }

deb() {
  local name=$1 bin=$2 description=$3
  local root=$WORK/$name
  mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/usr/share/doc/$name"
  install -m 0755 "$bin" "$root/usr/bin/$name"
  install -m 0644 "deploy/systemd/$name.service" "$root/lib/systemd/system/$name.service"
  install -m 0644 LICENSE "$root/usr/share/doc/$name/copyright"
  case $name in
    bfp-agent)
      mkdir -p "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d" "$root/etc/bfp-agent"
      install -m 0644 deploy/systemd/bfp-agent.sysusers "$root/usr/lib/sysusers.d/bfp-agent.conf"
      install -m 0644 deploy/systemd/bfp-agent.tmpfiles "$root/usr/lib/tmpfiles.d/bfp-agent.conf"
      install -m 0640 deploy/systemd/bfp-agent.toml "$root/etc/bfp-agent/bfp-agent.toml"
      echo /etc/bfp-agent/bfp-agent.toml >"$root/DEBIAN/conffiles"
      ;;
    bfp-collector)
      mkdir -p "$root/etc/default"
      install -m 0644 deploy/bfp-collector.default "$root/etc/default/bfp-collector"
      echo /etc/default/bfp-collector >"$root/DEBIAN/conffiles"
      ;;
  esac
  local size
  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  cat >"$root/DEBIAN/control" <<EOF
Package: $name
Version: $VERSION
Architecture: $ARCH
Maintainer: Behavioral Fingerprinting developers <bfp@localhost>
Installed-Size: $size
Depends: systemd
Section: admin
Priority: optional
Homepage: https://localhost/bfp
Description: $description
EOF
  # Maintainer scripts honour DPKG_ROOT, so the package installs into a
  # scratch root (dpkg --root ... --force-script-chrootless) as into /.
  cat >"$root/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
  if [ -e "\${DPKG_ROOT:-}/usr/lib/sysusers.d/$name.conf" ] && command -v systemd-sysusers >/dev/null; then
    systemd-sysusers --root="\${DPKG_ROOT:-/}" "\${DPKG_ROOT:-}/usr/lib/sysusers.d/$name.conf"
  fi
  if [ -e "\${DPKG_ROOT:-}/usr/lib/tmpfiles.d/$name.conf" ] && command -v systemd-tmpfiles >/dev/null; then
    systemd-tmpfiles --root="\${DPKG_ROOT:-/}" --create "\${DPKG_ROOT:-}/usr/lib/tmpfiles.d/$name.conf" || true
  fi
  if [ -z "\${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
  fi
fi
EOF
  cat >"$root/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
if [ -z "\${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ] && [ "\$1" = remove ]; then
  systemctl stop $name.service || true
fi
EOF
  chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm"
  local file=$OUT/${name}_${VERSION}_${ARCH}.deb
  dpkg-deb --root-owner-group -Z"$COMPRESSION" --build "$root" "$file" >/dev/null
  echo "$file"
}

ipk() {
  local bin=$1
  local root=$WORK/ipk
  mkdir -p "$root/data/usr/bin" "$root/data/etc/init.d" "$root/data/etc/config" "$root/data/etc/bfp-agent" "$root/control"
  install -m 0755 "$bin" "$root/data/usr/bin/bfp-agent"
  install -m 0755 deploy/openwrt/bfp-agent.init "$root/data/etc/init.d/bfp-agent"
  install -m 0644 deploy/openwrt/bfp-agent.uci "$root/data/etc/config/bfp-agent"
  install -m 0640 deploy/openwrt/bfp-agent.toml "$root/data/etc/bfp-agent/bfp-agent.toml"
  local size
  size=$(du -sb "$root/data" | cut -f1)
  cat >"$root/control/control" <<EOF
Package: bfp-agent
Version: $VERSION
Architecture: $ARCH
Maintainer: Behavioral Fingerprinting developers <bfp@localhost>
Section: net
Installed-Size: $size
Description: Behavioral Fingerprinting agent: scores auth-log sessions on the device
EOF
  printf '/etc/config/bfp-agent\n/etc/bfp-agent/bfp-agent.toml\n' >"$root/control/conffiles"
  printf '2.0\n' >"$root/debian-binary"
  (cd "$root/control" && tar_root -czf ../control.tar.gz ./control ./conffiles)
  (cd "$root/data" && tar_root -czf ../data.tar.gz .)
  local file=$OUT/bfp-agent_${VERSION}_${ARCH}.ipk
  # opkg's own format: a gzipped tar of the three members, in this order.
  (cd "$root" && tar_root -czf "$file" ./debian-binary ./control.tar.gz ./data.tar.gz)
  echo "$file"
}

case $KIND in
  deb)
    command -v dpkg-deb >/dev/null || { echo "dpkg-deb is missing (apt-get install dpkg)" >&2; exit 1; }
    [ -n "$ARCH" ] || ARCH=$(dpkg --print-architecture)
    BIN_DIR=${BIN_DIR:-target/release}
    AGENT=$BIN_DIR/bfp-agent
    [ -x "$AGENT" ] || AGENT=target/release-small/bfp-agent
    for f in "$AGENT" "$BIN_DIR/bfp-collector"; do
      [ -x "$f" ] || { echo "$f is missing: build it first (see the top of this script)" >&2; exit 1; }
    done
    deb bfp-agent "$AGENT" "Behavioral Fingerprinting agent
 Follows the device's auth and session logs, rebuilds sessions, scores each
 session and attacking source with a compact model, forwards the results."
    deb bfp-collector "$BIN_DIR/bfp-collector" "Behavioral Fingerprinting collector
 Stores every prediction (SQLite), serves the prediction, analytics and
 results API, agent ingest and the operators' dashboard."
    ;;
  ipk)
    [ -n "$ARCH" ] || { echo "ipk needs --arch (e.g. aarch64_cortex-a53, arm_cortex-a7_neon-vfpv4)" >&2; exit 2; }
    [ -n "$BIN" ] && [ -x "$BIN" ] || { echo "ipk needs --bin FILE (the agent built for that architecture)" >&2; exit 2; }
    ipk "$BIN"
    ;;
  *) echo "unknown kind $KIND (deb or ipk)" >&2; exit 2 ;;
esac
