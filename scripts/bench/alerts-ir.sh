#!/usr/bin/env bash
# Instructions per stored result of ingest with the 20 bench rules against
# ingest without rules, in one run, counted by callgrind (independent of the
# machine's load; collector/benches/alerts_ir.rs). Each variant runs at two
# sizes; the difference divided by the rows between them is the cost per
# result, start-up cancelled out. The bar: at most +10 % with rules.
#
#   scripts/bench/alerts-ir.sh                 # build and measure
#   BIN=path/to/alerts_ir scripts/bench/alerts-ir.sh   # another build of the harness
#   SMALL=10000 LARGE=40000 EVERY="5000 1000"  # the defaults
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-target}
small=${SMALL:-10000}
large=${LARGE:-40000}
every=${EVERY:-5000 1000}
if [ -z "${BIN:-}" ]; then
    cargo bench -p bfp-collector --bench alerts_ir --no-run >&2
    BIN=$(ls -t "$target"/release/deps/alerts_ir-* | grep -v '\.d$' | head -1)
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
else
    echo "commit: not known (BIN was given; its build names its own)"
fi
out=$(mktemp -d)
echo "harness: $BIN"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
instructions() { # variant rows every
    local file="$out/$1-$2-$3.out"
    valgrind --tool=callgrind --callgrind-out-file="$file" "$BIN" "$1" "$2" "$3" >/dev/null 2>&1
    grep -E '^(summary|totals):' "$file" | head -1 | awk '{print $2}'
}
for e in $every; do
    declare -A per=()
    for variant in none rules; do
        a=$(instructions "$variant" "$small" "$e")
        b=$(instructions "$variant" "$large" "$e")
        per[$variant]=$(( (b - a) / (large - small) ))
        echo "pass every $e: $variant: $a instructions at $small rows, $b at $large: ${per[$variant]} per result"
    done
    python3 -c "import sys; n, r = map(int, sys.argv[1:]); print(f'pass every $e: with 20 rules {r:,} against {n:,} instructions per result: {(r / n - 1) * 100:+.1f} % (bar: at most +10 %)')" "${per[none]}" "${per[rules]}"
    unset per
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$out"
