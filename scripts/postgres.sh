#!/usr/bin/env bash
# A throwaway PostgreSQL server on the loopback interface, for the multi-worker tests and for
# trying the multi-node recipe on one machine.
#
#   eval "$(bash scripts/postgres.sh start)"   # exports ARCHSEARCH_TEST_POSTGRES=postgresql://...
#   bash scripts/postgres.sh stop              # stops it (its data stays for the next start)
#   bash scripts/postgres.sh destroy           # stops it and deletes its data and password
#
# Uses the system's PostgreSQL (Debian: apt-get install postgresql; installed here when missing
# and we are root). Run as root, the server runs as the postgres user. How it is locked down:
# - its folder is made by mktemp -d (a random name, created atomically with mode 0700, never an
#   existing path or a symlink), then handed to the server's owner; the data (initdb, 0700) and
#   the Unix socket live inside it, so only the server's owner (and root) can reach the socket;
# - no trust authentication: the superuser logs in only through that socket as the same OS user
#   (peer); over TCP (127.0.0.1:${ARCHSEARCH_PG_PORT:-54329} only) the one role allowed is
#   `archsearch`, with scram-sha-256 and a random password, to the one database it owns,
#   `archsearch`; that role is not a superuser and cannot create roles or databases;
# - the password and the server folder's path are kept in $ARCHSEARCH_PG_STATE (default
#   ~/.cache/archsearch-pg: 0700, owned by the caller, not a symlink; the password file 0600).
# The printed URL carries the password: eval it, do not echo it.
set -euo pipefail
umask 077
cmd=${1:-start}
port=${ARCHSEARCH_PG_PORT:-54329}
state=${ARCHSEARCH_PG_STATE:-${HOME:-/root}/.cache/archsearch-pg}
role=archsearch
db=archsearch

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null && dirname "$(command -v initdb)" && return
  return 1
}

if [ "$(id -u)" = 0 ]; then owner=postgres; else owner=$(id -un); fi

as_owner() {  # run a command as the server's owner
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

private_state() {  # the state folder: ours, 0700, no symlink
  if [ -L "$state" ]; then die "$state is a symlink: refusing it"; fi
  mkdir -p -m 700 "$state"
  [ -d "$state" ] && [ ! -L "$state" ] && [ -O "$state" ] || die "$state: not a folder of ours"
  chmod 700 "$state"
}

server_dir() {  # the server's folder (made once, safely); prints its path
  local base=""
  if [ -f "$state/base" ] && [ ! -L "$state/base" ]; then
    base=$(cat "$state/base")
    if [ -L "$base" ] || [ ! -d "$base" ] || [ "$(stat -c %U "$base")" != "$owner" ] ||
      [ ! -f "$base/data/PG_VERSION" ]; then
      base=""  # gone or tampered with: make a new one
    fi
  fi
  if [ -z "$base" ]; then
    base=$(mktemp -d "${TMPDIR:-/tmp}/archsearch-pg.XXXXXXXXXX")
    [ "$owner" = "$(id -un)" ] || chown -h "$owner:" "$base"
    printf '%s\n' "$base" >"$state/base.new" && mv -f "$state/base.new" "$state/base"
  fi
  echo "$base"
}

password() {  # the role's password, made once (hex: safe in a URL); kept 0600
  if [ ! -s "$state/password" ] || [ -L "$state/password" ]; then
    rm -f "$state/password"
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$state/password.new"
    chmod 600 "$state/password.new" && mv -f "$state/password.new" "$state/password"
  fi
  cat "$state/password"
}

start() {
  local bin base data pw
  if ! bin=$(bindir); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "postgres.sh: installing postgresql (system packages)" >&2
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
      bin=$(bindir)
    else
      die "PostgreSQL is not installed (apt-get install postgresql)"
    fi
  fi
  private_state
  base=$(server_dir)
  data=$base/data
  pw=$(password)
  if [ ! -f "$data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$data" -U "$owner" --auth-local=peer --auth-host=reject >/dev/null
    # the superuser only through the private socket; over TCP only the study role, by password
    printf '%s\n' "local all $owner peer" \
      "host $db $role 127.0.0.1/32 scram-sha-256" | as_owner tee "$data/pg_hba.conf" >/dev/null
  fi
  if ! as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_owner "$bin/pg_ctl" -D "$data" -w -l "$base/server.log" \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $base -c password_encryption=scram-sha-256" \
      start >/dev/null
  fi
  # the role and its database; the password goes through stdin (never a command line)
  printf '%s\n' \
    "SELECT 'CREATE ROLE $role' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role')\\gexec" \
    "ALTER ROLE $role WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '$pw';" \
    "SELECT 'CREATE DATABASE $db OWNER $role' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\\gexec" \
    "REVOKE ALL ON DATABASE $db FROM PUBLIC;" |
    as_owner "$bin/psql" -h "$base" -p "$port" -U "$owner" -d postgres -q -v ON_ERROR_STOP=1 >/dev/null
  echo "export ARCHSEARCH_TEST_POSTGRES=postgresql://$role:$pw@127.0.0.1:$port/$db"
}

stop() {
  local bin base
  [ -f "$state/base" ] || return 0
  base=$(cat "$state/base")
  if bin=$(bindir) && [ -f "$base/data/PG_VERSION" ] && [ ! -L "$base" ]; then
    as_owner "$bin/pg_ctl" -D "$base/data" -m fast stop >/dev/null 2>&1 || true
  fi
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  destroy)
    stop
    if [ -f "$state/base" ]; then
      base=$(cat "$state/base")
      case "$base" in
        "${TMPDIR:-/tmp}"/archsearch-pg.*) [ -L "$base" ] || rm -rf -- "$base" ;;
      esac
    fi
    rm -f -- "$state/base" "$state/password"
    ;;
  *)
    echo "usage: postgres.sh start|stop|destroy" >&2
    exit 2
    ;;
esac
