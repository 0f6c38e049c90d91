#!/usr/bin/env bash
# Alert rules' cost, in one run (collector/benches/alerts.rs): a result
# matched against 20 rules, a whole evaluation pass per result, and the
# ingest rate without rules against the rate with 20 rules (evaluated in the
# background as in the service, and serially as the worst case). Prints the
# figures, the slowdowns and the load average; the bar is at most 10 %
# slower with 20 rules active.
#
#   scripts/bench/alerts.sh            # full criterion run (a few minutes)
#   QUICK=1 scripts/bench/alerts.sh    # criterion --quick (a check, not figures)
#
# Figures go to docs/benchmarks.md only when the load average was below 3.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-target}
args=()
[ -n "${QUICK:-}" ] && args+=(--quick)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench -p bfp-collector --bench alerts -- "${args[@]}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$target/criterion" <<'PY'
import json, sys, os
root = sys.argv[1]
def ns(group, name):
    with open(os.path.join(root, group, name, "new", "estimates.json")) as f:
        e = json.load(f)
    return (e.get("median") or e["mean"])["point_estimate"]
per = lambda v, n: v / n
print(f"alerts/match_20_rules:         {per(ns('alerts', 'match_20_rules'), 1000):9.1f} ns per result")
print(f"alerts/evaluate_pass_20_rules: {per(ns('alerts', 'evaluate_pass_20_rules'), 5000):9.1f} ns per result")
base = per(ns('ingest', 'no_rules'), 1000)
ruled = per(ns('ingest', '20_rules'), 1000)
serial = per(ns('ingest', '20_rules_then_evaluated'), 1000)
print(f"ingest/no_rules:               {base:9.1f} ns per result ({1e9 / base:,.0f} results/s)")
print(f"ingest/20_rules:               {ruled:9.1f} ns per result ({1e9 / ruled:,.0f} results/s)")
print(f"ingest/20_rules_then_evaluated:{serial:9.1f} ns per result ({1e9 / serial:,.0f} results/s)")
print(f"ingest with 20 rules active is {(ruled / base - 1) * 100:+.1f} % vs without (bar: at most +10 %)")
print(f"ingest then evaluating every row serially is {(serial / base - 1) * 100:+.1f} % (the worst case)")
PY
