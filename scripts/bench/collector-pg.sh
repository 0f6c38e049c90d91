#!/usr/bin/env bash
# scripts/bench/collector.sh against the PostgreSQL store: a throw-away
# cluster on loopback (Debian's server binaries, scripts/setup/postgres.sh)
# with durable settings (fsync and synchronous_commit on: a reply still
# means its row is committed), stopped and removed at the end.
#
# Then `bfp-collector migrate-store` of a SQLite store of MIGRATE_ROWS rows
# (made by the same collector from one CSV upload) into a second database
# of the cluster, timed.
#
#   scripts/bench/collector-pg.sh                      # as collector.sh, on PostgreSQL
#   ROWS_TOTAL=2000000 DURATION=10s scripts/bench/collector-pg.sh
#   # the harness itself in seconds (a debug build; no figures):
#   PROFILE=debug DURATION=2s PAGE_DURATION=1s ROWS_TOTAL=30000 CSV_ROWS=10000 MIGRATE_ROWS=10000 scripts/bench/collector-pg.sh
#
# Env: as collector.sh; PG_SHARED_BUFFERS (default 256MB); PG_SETTINGS (more
# server settings, as `-c name=value ...`, e.g. the bulk-load ones the README
# suggests: "-c wal_buffers=64MB -c max_wal_size=8GB"); MIGRATE_ROWS
# (default 1000000).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup/postgres.sh
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
# On disk (not /tmp, which may be RAM), readable by `nobody` when run as root
# (PostgreSQL refuses to run as root).
PGWORK=$(mktemp -d -p /var/tmp bench-pg.XXXXXX)
as_owner=()
if [ "$(id -u)" = 0 ]; then
  chown nobody:nogroup "$PGWORK"
  as_owner=(runuser -u nobody --)
fi
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
stop_pg() {
  "${as_owner[@]}" "$BIN/pg_ctl" -D "$PGWORK/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGWORK"
}
trap stop_pg EXIT
"${as_owner[@]}" "$BIN/initdb" -D "$PGWORK/data" -U bfp -A trust -E UTF8 --no-locale >/dev/null
"${as_owner[@]}" "$BIN/pg_ctl" -D "$PGWORK/data" -l "$PGWORK/server.log" -w -t 60 \
  -o "-h 127.0.0.1 -p $PGPORT -k $PGWORK -c shared_buffers=${PG_SHARED_BUFFERS:-256MB} -c max_connections=100 ${PG_SETTINGS:-}" \
  start >/dev/null
"${as_owner[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U bfp bfp
echo "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT (fsync on, synchronous_commit on; shared_buffers=${PG_SHARED_BUFFERS:-256MB} ${PG_SETTINGS:-})"
DB_URL="postgres://bfp@127.0.0.1:$PGPORT/bfp" scripts/bench/collector.sh

MIGRATE_ROWS=${MIGRATE_ROWS:-1000000}
COLLECTOR=${CARGO_TARGET_DIR:-target}/${PROFILE:-release}/bfp-collector
echo
echo "== migrate-store of a $MIGRATE_ROWS-row SQLite store (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
MWORK=$(mktemp -d -p "${CARGO_TARGET_DIR:-target}" bench-migrate.XXXXXX)
MPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$COLLECTOR" --listen 127.0.0.1:$MPORT --db "$MWORK/app.db" >"$MWORK/collector.out" 2>"$MWORK/collector.err" &
MPID=$!
stop_all() { kill "$MPID" 2>/dev/null || true; wait "$MPID" 2>/dev/null || true; rm -rf "$MWORK"; stop_pg; }
trap stop_all EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$MPORT/health" >/dev/null && break; sleep 0.1; done
python3 scripts/bench/gen_csv.py "$MIGRATE_ROWS" >"$MWORK/rows.csv"
curl -sf -o /dev/null -w "SQLite store made: %{http_code} in %{time_total} s\n" -F file=@"$MWORK/rows.csv" \
  "http://127.0.0.1:$MPORT/api/predict-csv"
kill "$MPID"
wait "$MPID" 2>/dev/null || true
"${as_owner[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U bfp bfp_copy
start=$(date +%s.%N)
"$COLLECTOR" migrate-store --from "$MWORK/app.db" --to "postgres://bfp@127.0.0.1:$PGPORT/bfp_copy" </dev/null \
  | grep -E '^(copied|predictions )'
echo "migrate-store: $(echo "$(date +%s.%N) - $start" | bc) s for $MIGRATE_ROWS rows (copied and verified)"
