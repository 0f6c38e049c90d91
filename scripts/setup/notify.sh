#!/usr/bin/env bash
# What the notification end-to-end test (tests/notify.rs) needs, installed
# only if missing: Python's aiosmtpd, the SMTP server the test starts on a
# free loopback port (`python3 -m aiosmtpd`). Idempotent: a second run
# installs nothing. The webhook and syslog receivers are the test's own.
set -euo pipefail

. "$(dirname "$0")/../lib/apt.sh"

if ! command -v python3 >/dev/null; then
  apt_install python3
fi
if python3 -c 'import aiosmtpd' 2>/dev/null; then
  echo "notify setup: ok (aiosmtpd $(python3 -c 'import aiosmtpd; print(aiosmtpd.__version__)'))"
  exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  apt_install python3-pip
fi
echo "notify setup: pip install aiosmtpd"
# Debian 12's python3 is "externally managed" (PEP 668): the flag lets pip
# add this one test-only package beside Debian's own.
if ! python3 -m pip install --quiet aiosmtpd 2>/dev/null; then
  python3 -m pip install --quiet --break-system-packages aiosmtpd
fi
python3 -c 'import aiosmtpd' || { echo "notify setup: aiosmtpd still missing" >&2; exit 1; }
echo "notify setup: ok (aiosmtpd $(python3 -c 'import aiosmtpd; print(aiosmtpd.__version__)'))"
