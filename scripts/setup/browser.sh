#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the dashboard's browser tests
# (tests/dashboard_browser.rs). Idempotent: does nothing when both are there.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# apt on this machine sometimes fails once with "cannot access archive": retry once.
install() {
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver
}
install || { echo "browser.sh: apt failed, retrying once" >&2; sleep 5; install; }

command -v chromium >/dev/null && command -v chromedriver >/dev/null
