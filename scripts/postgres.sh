#!/usr/bin/env bash
# A throwaway PostgreSQL server on the loopback interface, for the multi-worker tests and for
# trying the multi-node recipe on one machine.
#
#   eval "$(bash scripts/postgres.sh start)"   # exports ARCHSEARCH_TEST_POSTGRES=postgresql://...
#   bash scripts/postgres.sh stop
#
# Uses the system's PostgreSQL (Debian: apt-get install postgresql; installed here when missing
# and we are root). The cluster lives in $ARCHSEARCH_PG_DIR (default /tmp/archsearch-pg), listens
# on 127.0.0.1:${ARCHSEARCH_PG_PORT:-54329} only, trusts local connections, and holds one
# database, archsearch. Run as root, the server runs as the postgres user.
set -euo pipefail
cmd=${1:-start}
dir=${ARCHSEARCH_PG_DIR:-/tmp/archsearch-pg}
port=${ARCHSEARCH_PG_PORT:-54329}

bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null && dirname "$(command -v initdb)" && return
  return 1
}

as_owner() {  # run a command as the server's owner
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  start)
    if ! bin=$(bindir); then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "postgres.sh: installing postgresql (system packages)" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
        bin=$(bindir)
      else
        echo "postgres.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2
        exit 1
      fi
    fi
    if [ ! -f "$dir/PG_VERSION" ]; then
      mkdir -p "$dir"
      [ "$(id -u)" = 0 ] && chown postgres "$dir"
      as_owner "$bin/initdb" -D "$dir" -A trust -U postgres >/dev/null
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      as_owner "$bin/pg_ctl" -D "$dir" -w -l "$dir/server.log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null
    fi
    as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = 'archsearch'" | grep -q 1 ||
      as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres archsearch
    echo "export ARCHSEARCH_TEST_POSTGRES=postgresql://postgres@127.0.0.1:$port/archsearch"
    ;;
  stop)
    if bin=$(bindir) && [ -f "$dir/PG_VERSION" ]; then
      as_owner "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
    fi
    ;;
  *)
    echo "usage: postgres.sh start|stop" >&2
    exit 2
    ;;
esac
