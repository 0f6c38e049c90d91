#!/usr/bin/env bash
# Installs Debian's PostgreSQL server binaries for the collector's PostgreSQL
# tests and benches (they start throw-away clusters with initdb from
# /usr/lib/postgresql/*/bin; no system cluster is needed or started).
# Idempotent: does nothing when initdb is there.
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi

. "$(dirname "$0")/../lib/apt.sh"
apt_install postgresql

ls /usr/lib/postgresql/*/bin/initdb >/dev/null
