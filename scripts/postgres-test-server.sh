#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: `initdb` in a fresh temporary directory, listening on
# 127.0.0.1 only (a free port) and a unix socket in the same directory, trust authentication, no
# fsync (a test cluster need not survive a power cut). Debian's server binaries
# (/usr/lib/postgresql/*/bin; `scripts/setup.sh --test` installs the `postgresql` package).
#
#   eval "$(bash scripts/postgres-test-server.sh start)"   # exports ATELIER_TEST_POSTGRES_URL and
#                                                          # ATELIER_TEST_POSTGRES_DIR
#   bash scripts/postgres-test-server.sh stop "$ATELIER_TEST_POSTGRES_DIR"
#
# PostgreSQL refuses to run as root: as root the cluster is owned by and run as `nobody`.
set -euo pipefail
command=${1:-start}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "postgres-test-server: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin; run scripts/setup.sh --test (installs postgresql)" >&2
  exit 1
fi
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; else "$@"; fi
}
case "$command" in
start)
  dir=$(mktemp -d /tmp/atelier-pg.XXXXXX)
  chmod 755 "$dir"
  [ "$(id -u)" -eq 0 ] && chown nobody:nogroup "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  as_owner "$bin/initdb" -D "$dir/data" -U atelier --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  echo "export ATELIER_TEST_POSTGRES_URL='postgres://atelier@127.0.0.1:$port/postgres'"
  echo "export ATELIER_TEST_POSTGRES_DIR='$dir'"
  ;;
stop)
  dir=${2:?usage: postgres-test-server.sh stop DIR}
  as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: postgres-test-server.sh start | stop DIR" >&2
  exit 2
  ;;
esac
