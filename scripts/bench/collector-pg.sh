#!/usr/bin/env bash
# scripts/bench/collector.sh against the PostgreSQL store: a throw-away
# cluster on loopback (Debian's server binaries, scripts/setup/postgres.sh)
# with durable settings (fsync and synchronous_commit on: a reply still
# means its row is committed), stopped and removed at the end.
#
#   scripts/bench/collector-pg.sh                      # as collector.sh, on PostgreSQL
#   ROWS_TOTAL=2000000 DURATION=10s scripts/bench/collector-pg.sh
#
# Env: as collector.sh; PG_SHARED_BUFFERS (default 256MB).
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
  -o "-h 127.0.0.1 -p $PGPORT -k $PGWORK -c shared_buffers=${PG_SHARED_BUFFERS:-256MB} -c max_connections=100" \
  start >/dev/null
"${as_owner[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U bfp bfp
echo "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT (fsync on, synchronous_commit on)"
DB_URL="postgres://bfp@127.0.0.1:$PGPORT/bfp" scripts/bench/collector.sh
