#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 with trust auth
# for local TCP connections and a database named `test` — what the Postgres
# checkpoint-store and catalog tests connect to
# (postgres://postgres@127.0.0.1:5432/test). Skips everything when something
# already listens there (a server of the machine's own, or one started by an
# earlier run). Otherwise installs Debian's `postgresql` when missing, creates
# a cluster when there is none, switches local TCP auth to trust (a test
# server on loopback only), starts it, and creates the database.
set -euo pipefail

log() { echo "postgres: $*" >&2; }

listening() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

if listening; then
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "nothing listens on 127.0.0.1:5432 and this user cannot install PostgreSQL:"
  log "start a server there with trust auth and a database 'test', or set TRIBUTARY_SKIP_POSTGRES=1"
  exit 1
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  log "installing PostgreSQL (Debian's postgresql package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
fi

version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | grep -qx "$version main"; then
  log "creating the PostgreSQL $version cluster 'main'"
  pg_createcluster "$version" main >&2
fi

conf="/etc/postgresql/$version/main"
# Trust auth for loopback TCP only, written as the first lines so they win
# over the package's scram-sha-256 defaults. Idempotent.
if ! grep -q '^# tributary tests' "$conf/pg_hba.conf"; then
  tmp="$(mktemp)"
  {
    echo '# tributary tests: trust on loopback (a test server, never exposed)'
    echo 'host all all 127.0.0.1/32 trust'
    echo 'host all all ::1/128 trust'
    cat "$conf/pg_hba.conf"
  } > "$tmp"
  cat "$tmp" > "$conf/pg_hba.conf"
  rm -f "$tmp"
fi
# Listen on loopback at 5432 whatever the cluster was created with.
printf "listen_addresses = '127.0.0.1'\nport = 5432\n" > "$conf/conf.d/tributary.conf"

log "starting PostgreSQL $version on 127.0.0.1:5432"
pg_ctlcluster "$version" main start >&2 || pg_ctlcluster "$version" main restart >&2

for _ in $(seq 1 60); do
  listening && break
  sleep 0.5
done
if ! listening; then
  log "PostgreSQL did not start; its log:"
  tail -n 30 "/var/log/postgresql/postgresql-$version-main.log" >&2 || true
  exit 1
fi

if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname = 'test'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc "create database test" >&2
fi
log "ready: postgres://postgres@127.0.0.1:5432/test"
