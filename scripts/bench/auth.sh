#!/usr/bin/env bash
# POST /api/predict with authentication on against off, in the same run, on
# one collector (release build) and one database, with wrk at 64 connections:
#
#   open:  http://127.0.0.1:PORT  a legacy listener (--legacy-listener
#          127.0.0.1), no credential, as the original system's clients call it
#   token: http://127.0.0.2:PORT  not a legacy listener: the route needs an
#          analyst's API token (`bfp-collector token add`), sent as
#          Authorization: Bearer, checked on every request
#
# The two alternate ROUNDS times so a drift of the machine's load hits both.
# Besides requests/s (which depends on what else the machine runs) each run
# reports the collector's CPU time per request (from /proc), which does not.
# The bar (docs/benchmarks.md): with the token within 10 % of without.
#
#   scripts/bench/auth.sh                      # 3 rounds of 10 s each way
#   ROUNDS=5 DURATION=20s scripts/bench/auth.sh
#
# Env: DURATION (per wrk run, default 10s), ROUNDS (default 3), CONNECTIONS
# (default 64), SYNC=full|normal (collector --sync, default full).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
SYNC=${SYNC:-full}
BENCH=scripts/bench

. scripts/lib/apt.sh
command -v wrk >/dev/null || apt_install wrk
command -v curl >/dev/null || apt_install curl
cargo build --release -p bfp-collector
BIN=${CARGO_TARGET_DIR:-target}/release/bfp-collector

# On disk under target/ (not /tmp, which may be RAM): commits cost what they cost.
mkdir -p target
WORK=$(mktemp -d -p target bench-auth.XXXXXX)
DB=$WORK/app.db
printf 'bench password 1234\n' | "$BIN" user add bench --role analyst --db "$DB" >/dev/null
TOKEN=$("$BIN" token add --user bench --db "$DB")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Every loopback address, so 127.0.0.2 reaches it too; only 127.0.0.1 is a
# legacy listener (open without a credential).
"$BIN" --listen 0.0.0.0:$PORT --legacy-listener 127.0.0.1 --db "$DB" --sync "$SYNC" \
  >"$WORK/collector.out" 2>"$WORK/collector.err" &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
OPEN=http://127.0.0.1:$PORT
AUTH=http://127.0.0.2:$PORT
for _ in $(seq 100); do curl -sf "$OPEN/health" >/dev/null && break; sleep 0.1; done

BODY='{"login_time":"03:00","session_duration":5,"commands":["ls"],"failed_logins":4,"protocol":"TOR","typing_speed":120}'
# The token route really is closed without the token, and open with it.
without=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$BODY" "$AUTH/api/predict")
with=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \
  -d "$BODY" "$AUTH/api/predict")
echo "check: $AUTH/api/predict without a token: $without (expect 401); with it: $with (expect 200)"
[ "$without" = 401 ] && [ "$with" = 200 ] || { echo "the token route is not what it should be" >&2; exit 1; }

cpu() { awk '{printf "%.2f", ($14+$15)/100}' /proc/$PID/stat; }
# run NAME URL [TOKEN]: one wrk run; prints "NAME rps p99 cpu_us non2xx load".
run() {
  local name=$1 url=$2 c0 out n rps p99 bad load
  load=$(cut -d' ' -f1 /proc/loadavg)
  c0=$(cpu)
  out=$(BFP_TOKEN=${3:-} wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s $BENCH/predict.lua "$url/api/predict")
  n=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  bad=$(echo "$out" | sed -n 's/.*non2xx_seen_by_script=\([0-9]*\).*/\1/p')
  echo "$name $rps $p99 $(echo "scale=1; ($(cpu) - $c0) * 1000000 / $n" | bc) ${bad:-?} $load"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); collector --sync $SYNC"
echo "wrk -t2 -c$CONNECTIONS -d$DURATION, $ROUNDS rounds each way, alternating"
printf '%-6s %12s %10s %14s %8s %6s\n' run 'requests/s' p99 'CPU us/req' non-200 load1
results=()
for r in $(seq "$ROUNDS"); do
  for side in open token; do
    if [ $side = open ]; then line=$(run open "$OPEN"); else line=$(run token "$AUTH" "$TOKEN"); fi
    results+=("$line")
    # shellcheck disable=SC2086
    printf '%-6s %12s %10s %14s %8s %6s\n' $line
  done
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
def med(side, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == side)
o, t = med("open", 1), med("token", 1)
oc, tc = med("open", 3), med("token", 3)
print(f"median requests/s: open {o:,.0f}, token {t:,.0f}: token/open = {t / o:.3f} ({(t / o - 1) * 100:+.1f} %)")
print(f"median CPU per request: open {oc:.1f} us, token {tc:.1f} us: {(tc / oc - 1) * 100:+.1f} %")
print("bar (within 10 %):", "met" if t >= 0.9 * o else "NOT met")
'
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
