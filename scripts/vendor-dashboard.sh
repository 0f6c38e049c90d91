#!/usr/bin/env bash
# Reproduces the dashboard's vendored files from the npm lockfile: the chart
# library the collector embeds, and axe-core, which the browser tests inject.
#
#   scripts/vendor-dashboard.sh          # npm ci, then check vendor/ is byte-identical
#   scripts/vendor-dashboard.sh --update # npm ci, then copy the dist files into vendor/
#
# The collector embeds collector/dashboard/vendor/* with include_bytes!, and the
# tests read tests/testdata/axe.min.js, so neither the build nor the tests
# need npm or the network; this script is how the committed files are proven
# to be exactly the pinned packages'.
set -euo pipefail
cd "$(dirname "$0")/../collector/dashboard"

mode="${1:---check}"
case "$mode" in --check | --update) ;; *) echo "usage: $0 [--check|--update]" >&2; exit 2 ;; esac

npm ci --no-audit --no-fund --ignore-scripts >/dev/null

# source in node_modules -> file in vendor/
files=(
  "node_modules/chart.js/dist/chart.umd.min.js:vendor/chart.umd.min.js"
  "node_modules/chart.js/LICENSE.md:vendor/chart.js.LICENSE.md"
  # The accessibility engine the browser tests inject (never served).
  "node_modules/axe-core/axe.min.js:../../tests/testdata/axe.min.js"
  "node_modules/axe-core/LICENSE:../../tests/testdata/axe-core.LICENSE"
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
    pkg="${src#node_modules/}"
    pkg="${pkg%%/*}"
    echo "ok $dst is identical to $src ($pkg $(node -p "require('./node_modules/$pkg/package.json').version"))"
  else
    echo "MISMATCH: $dst differs from $src (run $0 --update and commit)" >&2
    status=1
  fi
done
exit "$status"
