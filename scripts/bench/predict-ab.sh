#!/usr/bin/env bash
# POST /api/predict on the collector of another revision against this
# checkout's, in the same run, so that a regression shows as a ratio:
#
#   scripts/bench/predict-ab.sh 55f4664              # wrk, 3 alternating rounds
#   MODE=callgrind scripts/bench/predict-ab.sh 55f4664
#
# MODE=wrk (default): wrk -t2 -c64 for DURATION against each collector
# (release builds, --sync full, their own database), alternating ROUNDS
# times; prints req/s, p99 and the collector's CPU time per request.
# MODE=callgrind: instructions per request under valgrind: the total of a
# run with DURATION of wrk, less that of a run with no request, divided by
# the requests. Slow, but it does not depend on what else the machine runs.
#
# The base revision is built in a worktree under target/predict-ab (its own
# target directory, kept for the next run).
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=${1:?usage: predict-ab.sh BASE_REVISION}
MODE=${MODE:-wrk}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
. scripts/lib/apt.sh
command -v wrk >/dev/null || apt_install wrk
[ "$MODE" = callgrind ] && { command -v valgrind >/dev/null || apt_install valgrind; }

ROOT=$PWD
AB=$ROOT/target/predict-ab
mkdir -p "$AB"
rm -rf "$AB/base-src"
git worktree prune
git worktree add --detach "$AB/base-src" "$BASE" >/dev/null
trap 'git -C "$ROOT" worktree remove --force "$AB/base-src" >/dev/null 2>&1 || true' EXIT
(cd "$AB/base-src" && CARGO_TARGET_DIR=$AB/target cargo build --release -p bfp-collector -q)
cargo build --release -p bfp-collector -q
OLD=$AB/target/release/bfp-collector
NEW=$ROOT/target/release/bfp-collector
WORK=$(mktemp -d -p "$AB" run.XXXX)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$1/health" && return; sleep 0.2; done; echo "collector on $1 did not start" >&2; exit 1; }

wrk_round() { # name binary
  local port pid out reqs t0 t1
  port=$(free_port)
  "$2" --listen "127.0.0.1:$port" --db "$WORK/$1-$port.db" --sync full >"$WORK/$1-$port.log" 2>&1 &
  pid=$!
  wait_up "$port"
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  out=$(wrk -t2 -c64 -d"$DURATION" --latency -s scripts/bench/predict.lua "http://127.0.0.1:$port/api/predict")
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  reqs=$(echo "$out" | awk -F'[= ]' '/^requests=/ {print $2}')
  echo "$1 req/s=$(echo "$out" | awk '/Requests\/sec/ {print $2}') p99=$(echo "$out" | awk '$1=="99%" {print $2}')" \
    "cpu_us/req=$(awk -v a="$t0" -v b="$t1" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", (b-a)*1e6/hz/n}')" \
    "load=$(cut -d' ' -f1 /proc/loadavg)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

callgrind_total() { # binary load|idle -> "instructions requests"
  local port vp reqs=1
  port=$(free_port)
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" -- "$1" --listen "127.0.0.1:$port" \
    --db "$WORK/cg-$2-$port.db" --sync full >"$WORK/cg.log" 2>&1 &
  vp=$!
  wait_up "$port"
  if [ "$2" = load ]; then
    reqs=$(wrk -t1 -c16 -d"$DURATION" -s scripts/bench/predict.lua "http://127.0.0.1:$port/api/predict" |
      awk -F'[= ]' '/^requests=/ {print $2}')
  else
    sleep 3
  fi
  kill -INT "$vp"; wait "$vp" 2>/dev/null || true
  echo "$(awk '/^(summary|totals):/ {print $2; exit}' "$WORK/cg.out") $reqs"
  rm -f "$WORK"/cg.out*
}

callgrind_round() { # name binary
  local idle busy reqs
  read -r idle _ < <(callgrind_total "$2" idle)
  read -r busy reqs < <(callgrind_total "$2" load)
  echo "$1 requests=$reqs instructions/request=$(((busy - idle) / reqs))"
}

echo "base $(git rev-parse --short "$BASE") against $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes'), $MODE, $ROUNDS rounds"
for _ in $(seq "$ROUNDS"); do
  "${MODE}_round" base "$OLD"
  "${MODE}_round" this "$NEW"
done
rm -rf "$WORK"
