#!/usr/bin/env bash
# Entry point of the local postgres:15 stand-in. It follows the official
# image's docker-entrypoint.sh contract, in short:
#   POSTGRES_PASSWORD           required unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER               superuser name (default postgres)
#   POSTGRES_DB                 database created at init (default: the user)
#   POSTGRES_INITDB_ARGS        extra initdb arguments
#   POSTGRES_HOST_AUTH_METHOD   host auth in pg_hba.conf (default scram-sha-256)
#   PGDATA                      data directory (default /var/lib/postgresql/data)
#   /docker-entrypoint-initdb.d/*.sh, *.sql, *.sql.gz run once, after initdb
# initdb runs only when $PGDATA holds no cluster, so data survives restarts and
# re-created containers on the same volume. The server ends up as PID 1 (exec),
# running as postgres (uid 999).
set -Eeuo pipefail

# `docker run IMAGE -c foo=bar` means `postgres -c foo=bar`.
if [[ "${1:-}" == -* ]]; then
  set -- postgres "$@"
fi

# Any other command (bash, psql, pg_isready) runs as given.
if [[ "${1:-}" != postgres ]]; then
  exec "$@"
fi

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export POSTGRES_USER="${POSTGRES_USER:-postgres}"
export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
POSTGRES_HOST_AUTH_METHOD="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

log() { echo "docker-entrypoint: $*"; }
die() { echo "docker-entrypoint: error: $*" >&2; exit 1; }

# Directories. As root: create them and hand them to postgres (a fresh volume
# is owned by root). As uid 999 (Kubernetes runAsUser/fsGroup): use them as
# they are; chmod may fail on a volume we do not own, initdb then says why.
mkdir -p "$PGDATA" /var/run/postgresql
chmod 00700 "$PGDATA" 2>/dev/null || :
chmod 03775 /var/run/postgresql 2>/dev/null || :
if [[ "$(id -u)" == 0 ]]; then
  find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
  # Re-run this script as postgres; gosu execs, so PID 1 stays PID 1.
  exec gosu postgres "${BASH_SOURCE[0]}" "$@"
fi

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  # First start: check the environment before touching anything.
  if [[ -z "${POSTGRES_PASSWORD:-}" && "$POSTGRES_HOST_AUTH_METHOD" != trust ]]; then
    die "the database is uninitialized and POSTGRES_PASSWORD is not set.
  Set POSTGRES_PASSWORD to a non-empty value for the superuser, or set
  POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password
  (not recommended)."
  fi

  log "initdb in $PGDATA (user $POSTGRES_USER)"
  # The password goes through a pipe, never argv or a file. initdb refuses an
  # empty password file, and trust setups may have no password.
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a word list on purpose
  if [[ -n "${POSTGRES_PASSWORD:-}" ]]; then
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
      ${POSTGRES_INITDB_ARGS:-} >/dev/null
  else
    initdb --username="$POSTGRES_USER" ${POSTGRES_INITDB_ARGS:-} >/dev/null
  fi

  # initdb's own lines trust local sockets and loopback inside the container;
  # everything else (other containers, published ports) must authenticate.
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

  # A temporary server on the unix socket only, for database creation and the
  # init scripts; nobody can reach it from outside meanwhile.
  log "starting temporary server for initialisation"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start >/dev/null
  psql_init=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)

  if [[ "$POSTGRES_DB" != postgres ]]; then
    log "creating database $POSTGRES_DB"
    "${psql_init[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >/dev/null
  fi

  shopt -s nullglob
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        # Executable scripts run, others are sourced (as upstream does).
        # shellcheck disable=SC1090  # user-supplied init scripts
        if [[ -x "$f" ]]; then log "running $f"; "$f"; else log "sourcing $f"; . "$f"; fi ;;
      *.sql)    log "running $f"; "${psql_init[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | "${psql_init[@]}" --dbname "$POSTGRES_DB" ;;
      *)        log "ignoring $f" ;;
    esac
  done

  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  log "initialisation complete"
else
  log "$PGDATA holds a cluster already; skipping initialisation"
fi

exec "$@"
