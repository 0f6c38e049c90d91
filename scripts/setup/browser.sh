#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the dashboard's browser tests
# (tests/dashboard_browser.rs). Idempotent: does nothing when both are there.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi

. "$(dirname "$0")/../lib/apt.sh"
# With recommends, as a desktop install has them (fonts for the pages).
apt_install --with-recommends chromium chromium-driver

command -v chromium >/dev/null && command -v chromedriver >/dev/null
