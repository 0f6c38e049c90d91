#!/usr/bin/env bash
# What the deploy tests (tests/install.rs, tests/units.rs) need, installed only if
# missing: BusyBox, to run install.sh and the OpenWrt init script with the shell and
# tools a router has; systemd-analyze (Debian's systemd package) to verify the units.
set -euo pipefail

need=()
command -v busybox >/dev/null || need+=(busybox)
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  echo "deploy setup: installing ${need[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update
  for i in 1 2 3; do
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${need[@]}" && break
    [ "$i" = 3 ] && exit 1
    echo "apt-get install failed (try $i), retrying" >&2
    sleep 3
  done
fi
echo "deploy setup: ok ($(command -v busybox), $(command -v systemd-analyze))"
