#!/usr/bin/env bash
# Reproduces the dashboard's vendored chart library from the npm lockfile.
#
#   scripts/vendor-dashboard.sh          # npm ci, then check vendor/ is byte-identical
#   scripts/vendor-dashboard.sh --update # npm ci, then copy the dist files into vendor/
#
# The collector embeds collector/dashboard/vendor/* with include_bytes!, so the
# Rust build needs neither npm nor the network; this script is how the
# committed files are proven to be exactly the pinned package's.
set -euo pipefail
cd "$(dirname "$0")/../collector/dashboard"

mode="${1:---check}"
case "$mode" in --check | --update) ;; *) echo "usage: $0 [--check|--update]" >&2; exit 2 ;; esac

npm ci --no-audit --no-fund --ignore-scripts >/dev/null

# source in node_modules -> file in vendor/
files=(
  "node_modules/chart.js/dist/chart.umd.min.js:vendor/chart.umd.min.js"
  "node_modules/chart.js/LICENSE.md:vendor/chart.js.LICENSE.md"
)

status=0
for pair in "${files[@]}"; do
  src="${pair%%:*}"
  dst="${pair#*:}"
  if [ "$mode" = --update ]; then
    mkdir -p "$(dirname "$dst")"
    cp "$src" "$dst"
    echo "vendored $dst ($(sha256sum "$dst" | cut -c1-16)...)"
  elif cmp -s "$src" "$dst"; then
    echo "ok $dst is identical to $src (chart.js $(node -p "require('./node_modules/chart.js/package.json').version"))"
  else
    echo "MISMATCH: $dst differs from $src (run $0 --update and commit)" >&2
    status=1
  fi
done
exit "$status"
