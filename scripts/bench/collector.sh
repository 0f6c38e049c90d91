#!/usr/bin/env bash
# Load harness for bfp-collector (release build) with real load generators:
# wrk for /health, POST /api/predict (64 connections), /api/analytics and
# /api/results pages (cursor and offset, with filters) with ~10M stored rows;
# curl for 1M-row CSV uploads (also into the 10M-row store);
# /proc for resident memory. Prints a summary; docs/benchmarks.md has figures.
#
#   scripts/bench/collector.sh            # full run (~10M rows, a few GB of disk under target/)
#   ROWS_TOTAL=2000000 SYNC=normal scripts/bench/collector.sh
#
# Env: DB_URL (a postgres:// URL to bench the PostgreSQL store instead of a SQLite file
# under $CARGO_TARGET_DIR or target/; scripts/bench/collector-pg.sh sets it), SYNC=full|normal (collector --sync,
# SQLite only, default full), DURATION (wrk, default 15s), PAGE_DURATION (wrk on one
# connection per page path, default 5s),
# ROWS_TOTAL (rows to seed before the read benchmarks, default 10000000),
# CSV_ROWS (rows of the big CSV upload, default 1000000; smaller for a smoke run),
# PROFILE=release|debug (the collector's build, default release; debug only to
# check the harness itself, never for figures), CARGO_TARGET_DIR (as cargo's),
# NICE (niceness for the collector and the load generator, default 0; e.g. -10
# to measure on a machine busy with other work, as root).
# Every wrk run also reports the collector's CPU time per request (from
# /proc), which does not depend on what else the machine runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
SYNC=${SYNC:-full}
DURATION=${DURATION:-15s}
PAGE_DURATION=${PAGE_DURATION:-5s}
ROWS_TOTAL=${ROWS_TOTAL:-10000000}
NICE=${NICE:-0}
CSV_ROWS=${CSV_ROWS:-1000000}
PROFILE=${PROFILE:-release}
BENCH=scripts/bench

. scripts/lib/apt.sh
command -v wrk >/dev/null || apt_install wrk
command -v curl >/dev/null || apt_install curl
case "$PROFILE" in
  release) cargo build --release -p bfp-collector ;;
  debug) cargo build -p bfp-collector ;;
  *) echo "PROFILE must be release or debug" >&2; exit 2 ;;
esac
COLLECTOR=${CARGO_TARGET_DIR:-target}/$PROFILE/bfp-collector

# On disk under target/ (not /tmp, which may be RAM): the database grows to GBs.
mkdir -p "${CARGO_TARGET_DIR:-target}"
WORK=$(mktemp -d -p "${CARGO_TARGET_DIR:-target}" bench-collector.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
DB=${DB_URL:-$WORK/app.db}
nice -n "$NICE" "$COLLECTOR" --listen 127.0.0.1:$PORT --db "$DB" --sync "$SYNC" \
  >"$WORK/collector.out" 2>"$WORK/collector.err" &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null && break; sleep 0.1; done

rss() { awk '/^VmRSS/ {printf "%.1f MB", $2/1024}' /proc/$PID/status; }
hwm() { awk '/^VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$PID/status; }
cpu() { awk '{printf "%.2f", ($14+$15)/100}' /proc/$PID/stat; }
total() { curl -s "$URL/api/analytics" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_predictions"])'; }
section() { echo; echo "== $* (load average: $(cut -d' ' -f1-3 /proc/loadavg))"; }
# wrk plus the collector's CPU per answered request.
load() {
  local c0 out n
  c0=$(cpu)
  out=$(nice -n "$NICE" wrk "$@")
  echo "$out"
  n=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
  echo "collector CPU per request: $(echo "scale=1; ($(cpu) - $c0) * 1000000 / $n" | bc) us"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "collector: --sync $SYNC, niceness $NICE, store: $([ -n "${DB_URL:-}" ] && echo PostgreSQL || echo SQLite)"
section "idle resident memory"
sleep 1
echo "idle RSS: $(rss)"

section "GET /health, 64 connections, $DURATION"
load -t2 -c64 -d"$DURATION" --latency "$URL/health"

section "POST /api/predict, 64 connections, $DURATION"
before=$(total)
load -t2 -c64 -d"$DURATION" --latency -s $BENCH/predict.lua "$URL/api/predict" | tee "$WORK/predict.txt"
sleep 1
stored=$(( $(total) - before ))
answered=$(sed -n 's/^requests=\([0-9]*\).*/\1/p' "$WORK/predict.txt")
echo "answered 200: $answered; stored: $stored (stored >= answered: requests in flight when wrk stopped are stored too)"
curl -s "$URL/metrics" | grep -E '^bfp_writer_(commits|rows)_total'
echo "RSS after predict load: $(rss)"

section "CSV upload, $CSV_ROWS rows"
python3 $BENCH/gen_csv.py $((CSV_ROWS / 10)) >"$WORK/100k.csv"
python3 $BENCH/gen_csv.py "$CSV_ROWS" >"$WORK/1m.csv"
ls -l "$WORK/1m.csv" | awk '{print "file:", $5, "bytes"}'
cpu0=$(cpu)
curl -s -o /dev/null -w "POST $((CSV_ROWS / 10)) rows: %{http_code} in %{time_total} s\n" -F file=@"$WORK/100k.csv" "$URL/api/predict-csv"
echo "peak RSS after $((CSV_ROWS / 10)) rows: $(hwm)"
for i in 1 2; do
  cpu0=$(cpu)
  curl -s -w "\nPOST $CSV_ROWS rows #$i: %{http_code} in %{time_total} s" -F file=@"$WORK/1m.csv" "$URL/api/predict-csv"
  echo " (collector CPU $(echo "$(cpu) - $cpu0" | bc) s); peak RSS so far: $(hwm)"
done

section "seeding to $ROWS_TOTAL rows with $CSV_ROWS-row uploads"
while [ "$(total)" -lt "$ROWS_TOTAL" ]; do
  curl -s -o /dev/null -w "upload: %{http_code} %{time_total} s\n" -F file=@"$WORK/1m.csv" "$URL/api/predict-csv"
done
rows=$(total)
echo "stored rows: $rows; database: ${DB_URL:+(PostgreSQL)}$([ -n "${DB_URL:-}" ] || du -sh "$WORK" | cut -f1)"
# One client on a kept-alive connection: the latency one dashboard user sees.
for path in "/api/analytics" "/api/results?limit=100" "/api/results?limit=100&after_id=$((rows / 2))" \
  "/api/results?limit=100&source=single" "/api/results?limit=100&prediction=Suspicious" \
  "/api/results?limit=100&prediction=Normal" \
  "/api/results?limit=100&min_id=1000&max_id=$((rows * 3 / 4))&prediction=Normal" \
  "/api/results?limit=100&from=2000-01-01%2000:00:00&source=csv&prediction=Suspicious" \
  "/api/results?offset=$((rows / 2))&limit=100" "/api/results?offset=$((rows - 150))&limit=100" \
  "/api/results?offset=$((rows / 20))&limit=100&prediction=Suspicious" \
  "/api/results?offset=$((rows / 4))&limit=100&prediction=Normal&source=csv" \
  "/api/results?offset=100000&limit=100&min_id=1000&max_id=$((rows * 3 / 4))&prediction=Normal"; do
  section "GET $path with $rows rows, 1 connection, $PAGE_DURATION"
  load -t1 -c1 -d"$PAGE_DURATION" --latency "$URL$path" | grep -E '50%|90%|99%|Requests/sec|CPU per'
done

for path in "/api/analytics" "/api/results?limit=100&after_id=$((rows / 2))" "/api/results?limit=100&source=single"; do
  section "GET $path with $rows rows, 32 connections, $DURATION"
  load -t2 -c32 -d"$DURATION" --latency "$URL$path"
done

section "CSV upload, $CSV_ROWS rows, into $rows stored rows"
for i in 1 2 3; do
  cpu0=$(cpu)
  curl -s -o /dev/null -w "POST $CSV_ROWS rows #$i: %{http_code} in %{time_total} s" -F file=@"$WORK/1m.csv" "$URL/api/predict-csv"
  echo " (collector CPU $(echo "$(cpu) - $cpu0" | bc) s)"
done
grep 'CSV upload' "$WORK/collector.err" | tail -3 | sed 's/\x1b\[[0-9;]*m//g'

section "resident memory with $(total) rows stored"
echo "RSS now: $(rss); peak: $(hwm)"
