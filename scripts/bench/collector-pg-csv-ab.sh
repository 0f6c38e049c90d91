#!/usr/bin/env bash
# A/B of PostgreSQL CSV uploads between two collector binaries (e.g. main's release build
# against a branch's), interleaved, on one throw-away cluster on loopback (fsync on), each
# collector on a database of its own. Per upload: the HTTP time, the collector's CPU time and
# the cluster's (its backends' /proc times), tuples inserted and WAL written.
#
#   scripts/bench/collector-pg-csv-ab.sh OLD_BINARY NEW_BINARY      # ROWS=300000 by default
#
# Run as root (PostgreSQL runs as nobody) with scripts/setup/postgres.sh done.
set -euo pipefail
OLD=${1:?old bfp-collector binary}
NEW=${2:?new bfp-collector binary}
ROWS=${ROWS:-300000}
cd "$(dirname "$0")/../.."
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
W=$(mktemp -d -p /var/tmp csv-ab.XXXXXX)
chown nobody:nogroup "$W"
as=(runuser -u nobody --)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PGPORT=$(free_port)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  "${as[@]}" "$BIN/pg_ctl" -D "$W/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
"${as[@]}" "$BIN/initdb" -D "$W/data" -U bfp -A trust -E UTF8 --no-locale >/dev/null
"${as[@]}" "$BIN/pg_ctl" -D "$W/data" -l "$W/server.log" -w -t 60 \
  -o "-h 127.0.0.1 -p $PGPORT -k $W -c shared_buffers=256MB" start >/dev/null
POSTMASTER=$(head -1 "$W/data/postmaster.pid")
for db in old new; do "${as[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U bfp "$db"; done
python3 scripts/bench/gen_csv.py "$ROWS" >"$W/rows.csv"
q() { "${as[@]}" psql -h 127.0.0.1 -p "$PGPORT" -U bfp -d "$1" -XAtq -c "$2"; }
cpu_of() { for p in "$@"; do cat "/proc/$p/stat"; done 2>/dev/null | awk '{s += $14 + $15} END {printf "%.2f", s / 100}'; }
declare -A URL PID
for v in old new; do
  port=$(free_port)
  bin=$OLD
  [ "$v" = new ] && bin=$NEW
  "$bin" --listen "127.0.0.1:$port" --db "postgres://bfp@127.0.0.1:$PGPORT/$v" >"$W/$v.out" 2>"$W/$v.err" &
  PID[$v]=$!
  PIDS+=($!)
  URL[$v]=http://127.0.0.1:$port
  for _ in $(seq 100); do curl -sf "${URL[$v]}/health" >/dev/null && break; sleep 0.1; done
done
echo "rows per upload: $ROWS; $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in 1 2 3; do
  for v in old new; do
    c0=$(cpu_of "${PID[$v]}")
    p0=$(cpu_of $(pgrep -P "$POSTMASTER"))
    t0=$(q "$v" "SELECT tup_inserted FROM pg_stat_database WHERE datname = '$v'")
    l0=$(q "$v" "SELECT pg_current_wal_lsn()")
    s=$(curl -s -o /dev/null -w "%{http_code} in %{time_total} s" -F file=@"$W/rows.csv" "${URL[$v]}/api/predict-csv")
    sleep 0.6 # statistics reach pg_stat_database at most every 500 ms
    c1=$(cpu_of "${PID[$v]}")
    p1=$(cpu_of $(pgrep -P "$POSTMASTER"))
    t1=$(q "$v" "SELECT tup_inserted FROM pg_stat_database WHERE datname = '$v'")
    wal=$(q "$v" "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$l0')")
    echo "$v #$i: $s; collector CPU $(echo "$c1 - $c0" | bc) s; PostgreSQL CPU $(echo "$p1 - $p0" | bc) s;" \
      "tuples inserted $((t1 - t0)); WAL $((${wal%.*} / 1048576)) MiB; load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
for v in old new; do
  echo "$v: $(q "$v" "SELECT count(*) || ' rows, ids ' || min(id) || '..' || max(id) FROM predictions")"
done
