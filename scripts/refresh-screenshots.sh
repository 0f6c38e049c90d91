#!/usr/bin/env bash
# Refreshes the README's dashboard screenshots (docs/screenshots/) from the
# browser test, on purpose: a normal test run writes them to target/screenshots/
# so that it changes no tracked file. Commit the result if it looks right.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup/browser.sh
cargo build --workspace --bins --locked
BFP_SCREENSHOTS="$PWD/docs/screenshots" cargo test -p bfp-e2e --test e2e --locked dashboard_browser
git status --short docs/screenshots
