#!/usr/bin/env bash
# What the monitoring test (tests/monitoring.rs) needs: promtool, from Debian's
# prometheus package, to lint /metrics and the shipped alert rules. Installed
# only if missing; the package's own service is not needed by the tests.
set -euo pipefail
. "$(dirname "$0")/../lib/apt.sh"

if ! command -v promtool >/dev/null; then
  echo "monitoring setup: installing prometheus (for promtool)"
  apt_install prometheus
fi
echo "monitoring setup: ok ($(command -v promtool))"
