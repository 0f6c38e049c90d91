#!/usr/bin/env bash
# Forwarding benchmarks (docs/benchmarks.md, "Ingest"):
#  1. ingest rate: 100 simulated devices (threads, one batch in flight each)
#     posting postcard batches to a release `bfp-collector`;
#  2. agent memory while the collector is away: `bfp-agent run` as shipped
#     (profile release-small, as scripts/build-arm.sh builds it)
#     pointed at a closed port spools LINES real auth-log lines (appended in
#     bursts), then stays in backoff for OUTAGE_SECS; max RSS from
#     /usr/bin/time -v, RSS sampled from /proc before and after the idle part.
#
# usage: scripts/bench/forward.sh [LINES] [OUTAGE_SECS] [INGEST_SECS]
set -euo pipefail
cd "$(dirname "$0")/../.."
LINES=${1:-1000000}
OUTAGE_SECS=${2:-60}
INGEST_SECS=${3:-20}
. scripts/lib/apt.sh
DATA=$(shared_data)
[ -x /usr/bin/time ] || apt_install time

cargo build --release -p bfp-collector --bins --quiet
cargo build --profile release-small -p bfp-agent --quiet
cargo build --release -p bfp-e2e --example ingest_load --quiet
T=${CARGO_TARGET_DIR:-target}/release
AGENT=${CARGO_TARGET_DIR:-target}/release-small/bfp-agent
WORK=$(mktemp -d)
cleanup() { [ -n "${CPID:-}" ] && kill "$CPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== ingest: 100 devices =="
for i in $(seq 1 100); do "$T/bfp-collector" device add "dev-$i" --create --db "$WORK/ingest.db" 2>/dev/null; done > "$WORK/tokens"
PORT=$(free_port)
"$T/bfp-collector" --listen "127.0.0.1:$PORT" --db "$WORK/ingest.db" > /dev/null 2>&1 &
CPID=$!
sleep 1
for per in 100 10; do
  "$T/examples/ingest_load" "http://127.0.0.1:$PORT" "$WORK/tokens" "$INGEST_SECS" "$per"
done
kill -TERM "$CPID"; wait "$CPID" || true; CPID=
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== agent spooling while the collector is away =="
real_log_input "$DATA" "$LINES" "$WORK"
TOTAL=$(stat -c %s "$WORK/input.log")
: > "$WORK/auth.log"
CLOSED=$(free_port)
/usr/bin/time -v -o "$WORK/time.txt" "$AGENT" run --follow "$WORK/auth.log" --state-dir "$WORK/state" \
  --collector "http://127.0.0.1:$CLOSED" --token bench --poll-interval-ms 50 2> "$WORK/agent.err" &
TIME_PID=$!
sleep 0.5
APID=$(pgrep -P "$TIME_PID")
for part in "$WORK"/part.*; do cat "$part" >> "$WORK/auth.log"; sleep 0.2; done
until python3 -c "import json,sys; cp=json.load(open('$WORK/state/checkpoint.json')); sys.exit(0 if cp['sources']['$WORK/auth.log']['current']['offset']==$TOTAL else 1)" 2>/dev/null; do
  sleep 0.1
done
RSS_START=$(grep VmRSS "/proc/$APID/status" | awk '{print $2}')
sleep "$OUTAGE_SECS"
RSS_END=$(grep VmRSS "/proc/$APID/status" | awk '{print $2}')
kill -TERM "$APID"
wait "$TIME_PID"
echo "lines: $LINES ($TOTAL bytes); outage held for $OUTAGE_SECS s after the last line"
echo "spool: $(cat "$WORK"/state/spool/*.seg | wc -c) bytes in $(ls "$WORK"/state/spool/*.seg | wc -l) segments; meta: $(cat "$WORK/state/spool/meta.json")"
echo "RSS when all lines were spooled: $RSS_START KB; after the idle outage: $RSS_END KB"
grep -E "Maximum resident set size|User time|System time" "$WORK/time.txt"
grep -c "collector:" "$WORK/agent.err" | sed 's/^/collector error lines logged: /'
tail -n 1 "$WORK/agent.err"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
