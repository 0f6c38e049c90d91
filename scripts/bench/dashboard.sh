#!/usr/bin/env bash
# Dashboard benchmarks (figures in docs/benchmarks.md, section "Dashboard").
#
#   scripts/bench/dashboard.sh            # 1,000,000 stored predictions
#   UPLOADS=10 scripts/bench/dashboard.sh # 10 x 1,000,000
#
# Starts a release bfp-collector on a loopback port with a fresh database,
# stores UPLOADS x 1,000,000 CSV rows through POST /api/predict-csv (timed:
# the writer keeps the dashboard's roll-ups in the same transactions), then
# measures with wrk (2 threads, 32 connections, 10 s each): the page and its
# assets, /api/insights (hour and day), a ranged /api/results page (time
# range over half the rows: its count is a COUNT over the range), and the
# CSV export of every row with curl. Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."

UPLOADS="${UPLOADS:-1}"
DURATION="${DURATION:-10s}"
command -v wrk >/dev/null || { echo "needs wrk: apt-get install -y wrk" >&2; exit 1; }

cargo build --release -p bfp-collector >/dev/null
bin=target/release/bfp-collector
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# 1,000,000 varied rows in the original upload format (deterministic).
python3 - "$work/rows.csv" <<'EOF'
import sys
protocols = ["HTTPS", "SSH", "FTP", "TOR"]
with open(sys.argv[1], "w") as f:
    f.write("LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed\n")
    for i in range(1_000_000):
        f.write(f"{i % 24},{(i * 7) % 240},{(i * 13) % 90},{(i * 5) % 9},{protocols[i % 4]},{20 + (i * 11) % 160}\n")
EOF

"$bin" --listen 127.0.0.1:0 --db "$work/app.db" >"$work/out.log" 2>"$work/err.log" &
pid=$!
for _ in $(seq 100); do
  addr="$(sed -n 's#^bfp-collector listening on http://##p' "$work/out.log")"
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/err.log"; exit 1; }
base="http://$addr"
echo "collector on $base, db $work/app.db"
# The dashboard's read routes need a viewer: a token made on the database file.
echo "bench viewer password" | "$bin" user add bench --role viewer --db "$work/app.db" 2>/dev/null
token="$("$bin" token add --user bench --db "$work/app.db" 2>/dev/null)"
auth="Authorization: Bearer $token"

for n in $(seq "$UPLOADS"); do
  t=$( { /usr/bin/time -f %e curl -sf -o "$work/upload.json" -F "file=@$work/rows.csv" "$base/api/predict-csv?ids=1"; } 2>&1 )
  echo "upload $n: 1,000,000 rows in ${t}s -> $(cat "$work/upload.json")"
done
echo "analytics: $(curl -sf "$base/api/analytics")"

# A time range over about half the rows: from the created_at of the middle row.
mid_id=$(( UPLOADS * 500000 ))
from=$(curl -sf "$base/api/results?after_id=$((mid_id - 1))&limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["created_at"].replace(" ", "%20"))')

bench() {
  echo "== wrk $1"
  wrk -t2 -c32 -d"$DURATION" --latency -H "$auth" "$base$1" | grep -E "Requests/sec|Latency|50%|99%|Non-2xx" || true
}
bench "/"
bench "/assets/app.js"
bench "/assets/vendor/chart.umd.min.js"
bench "/api/insights?bucket=hour"
bench "/api/insights?bucket=day"
bench "/api/results?from=$from&limit=25"
bench "/api/results?from=$from&prediction=Suspicious&limit=25"

echo "== export of every row"
/usr/bin/time -f "%e s" curl -sf -H "$auth" -o "$work/export.csv" "$base/api/export.csv"
echo "exported $(($(wc -l <"$work/export.csv") - 1)) rows, $(du -m "$work/export.csv" | cut -f1) MB"
echo "collector RSS: $(awk '/VmRSS/ {print $2 " kB"}' "/proc/$pid/status"), peak $(awk '/VmHWM/ {print $2 " kB"}' "/proc/$pid/status")"
