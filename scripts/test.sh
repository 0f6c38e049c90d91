#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian 12 machine: installs what
# is missing (each scripts/setup/*.sh is idempotent), builds the binaries the
# end-to-end tests start, then runs the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

for step in scripts/setup/*.sh; do
  [ -e "$step" ] || continue
  echo "== setup: $step"
  bash "$step"
done

echo "== build binaries for the end-to-end tests"
cargo build --workspace --bins --locked

echo "== tests"
cargo test --workspace --locked
