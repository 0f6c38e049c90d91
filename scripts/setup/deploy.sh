#!/usr/bin/env bash
# What the deploy tests (tests/install.rs, tests/units.rs) need, installed only if
# missing: BusyBox, to run install.sh and the OpenWrt init script with the shell and
# tools a router has; systemd-analyze (Debian's systemd package) to verify the units.
set -euo pipefail
. "$(dirname "$0")/../lib/apt.sh"

need=()
command -v busybox >/dev/null || need+=(busybox)
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  echo "deploy setup: installing ${need[*]}"
  apt_install "${need[@]}"
fi
echo "deploy setup: ok ($(command -v busybox), $(command -v systemd-analyze))"
