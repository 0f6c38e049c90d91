#!/usr/bin/env bash
# Resident memory of `bfp-agent run` while a million real auth-log lines go
# through a followed file (appended in bursts while it runs), measured with
# /usr/bin/time -v. Prints the figures docs/benchmarks.md ("Agent") records.
#
# usage: scripts/bench/agent-memory.sh [LINES]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
LINES=${1:-1000000}
. scripts/lib/apt.sh
DATA=$(shared_data)
[ -x /usr/bin/time ] || apt_install time

# The profile the ARM builds and the installer ship (opt-level s, LTO,
# stripped): resident memory includes the executable's touched code pages.
cargo build --profile release-small -p bfp-agent --quiet
BIN=${CARGO_TARGET_DIR:-target}/release-small/bfp-agent
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The input: the real sshd-heavy logs, repeated to LINES lines.
real_log_input "$DATA" "$LINES" "$WORK"
TOTAL=$(stat -c %s "$WORK/input.log")

# Offline: the same lines through `scan` (whole process, one core).
/usr/bin/time -v -o "$WORK/scan-time.txt" "$BIN" scan --format jsonl "$WORK/input.log" > "$WORK/scan.jsonl"
echo "scan: $(grep -E "Elapsed" "$WORK/scan-time.txt" | sed 's/.*: //') elapsed, $(grep -E "User time" "$WORK/scan-time.txt" | sed 's/.*: //') s user, $(grep -E "Maximum resident" "$WORK/scan-time.txt" | sed 's/.*: //') KB max RSS, $(($(wc -l < "$WORK/scan.jsonl") - 1)) fingerprints"

: > "$WORK/auth.log"
/usr/bin/time -v -o "$WORK/time.txt" "$BIN" run --follow "$WORK/auth.log" --state-dir "$WORK/state" \
  --output "$WORK/results.jsonl" --poll-interval-ms 50 2> "$WORK/agent.err" &
TIME_PID=$!
sleep 0.5
START=$(date +%s.%N)
for part in "$WORK"/part.*; do
  cat "$part" >> "$WORK/auth.log"
  sleep 0.2
done
# Wait until the checkpoint covers the whole file.
until python3 -c "import json,sys; cp=json.load(open('$WORK/state/checkpoint.json')); sys.exit(0 if cp['sources']['$WORK/auth.log']['current']['offset']==$TOTAL else 1)" 2>/dev/null; do
  sleep 0.1
done
END=$(date +%s.%N)
kill -TERM "$(pgrep -P "$TIME_PID")"
wait "$TIME_PID"

echo "lines: $LINES ($TOTAL bytes), results: $(wc -l < "$WORK/results.jsonl")"
echo "wall (first append to fully checkpointed): $(python3 -c "print(round($END - $START, 2))") s"
grep -E "Maximum resident set size|User time|System time" "$WORK/time.txt"
tail -n 1 "$WORK/agent.err"
