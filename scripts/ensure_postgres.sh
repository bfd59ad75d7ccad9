#!/usr/bin/env bash
# Prints a SQLAlchemy URL of a PostgreSQL database for the test suite, on stdout, last line.
#  1. $LORAFORGE_TEST_PG_URL when set;
#  2. else the server on 127.0.0.1:5432 when it accepts user postgres (database loraforge_test,
#     created fresh);
#  3. else (or with LORAFORGE_TEST_PG_OWN=1) a throw-away cluster of our own on 127.0.0.1:$PORT, started here; its PID file is
#     written to $PG_PIDFILE_OUT so the caller stops exactly that server when done.
# Never silently gives up: exits non-zero with a message if no PostgreSQL can be had.
set -euo pipefail
if [ -n "${LORAFORGE_TEST_PG_URL:-}" ]; then echo "$LORAFORGE_TEST_PG_URL"; exit 0; fi

DB=loraforge_test
if [ -z "${LORAFORGE_TEST_PG_OWN:-}" ] && pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1 \
   && psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1" >/dev/null 2>&1; then
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $DB" >/dev/null
  echo "postgresql+psycopg://postgres@127.0.0.1:5432/$DB"
  exit 0
fi

BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  echo "[postgres] no server reachable on 127.0.0.1:5432 and no PostgreSQL binaries installed" >&2
  echo "[postgres] run scripts/setup.sh --test (installs Debian's postgresql)" >&2
  exit 1
fi
PORT="${LORAFORGE_TEST_PG_PORT:-55432}"
DIR="$(mktemp -d /tmp/loraforge-pg.XXXXXX)"
RUN_AS=()
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$DIR"; RUN_AS=(runuser -u postgres --); fi
"${RUN_AS[@]}" "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >"$DIR/initdb.log" 2>&1
"${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off" start >&2
head -1 "$DIR/data/postmaster.pid" > "${PG_PIDFILE_OUT:-/dev/null}"
"$BIN/psql" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c "CREATE DATABASE $DB" >/dev/null
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
