#!/usr/bin/env bash
# One command to set up and run the whole test suite: `make lint` (style, types and the layering of
# both the Python package and the frontend), frontend unit tests, then pytest (API, engine, browser
# end-to-end) on SQLite, then the database-backed API tests again on a real PostgreSQL server.
#
# The PostgreSQL phase runs every test under tests/api that asks for a database (the
# `database_url` / `empty_database_url` fixtures), with two exceptions, both printed as
# "deselected" in pytest's summary:
#   --database-tests-only  drops tests that never touch the configured database (pure functions,
#                          the state table, a restart test on its own SQLite file): on PostgreSQL
#                          they would repeat the SQLite run exactly;
#   -m "not engine_heavy"  drops the tests marked engine_heavy (pyproject.toml): runs spending their
#                          time in engine subprocesses or a Ray head over database paths that quicker
#                          tests cover too. Real engine runs still on PostgreSQL: submit -> train ->
#                          succeeded, cancel, kill -9 diagnosis, stop then resume; so do the queue,
#                          scheduler, migration, registry and every other API area's tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
START=$(date +%s)
step() { printf '\n=== %s (%ss) ===\n' "$*" "$(( $(date +%s) - START ))"; }

step "setup"
bash scripts/setup.sh --test

# Keep caches and downloads out of $HOME and away from any hub.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export HF_HOME="$ROOT/.cache/hf" MPLCONFIGDIR="$ROOT/.cache/mpl" TOKENIZERS_PARALLELISM=false

step "make lint (ruff, mypy, import-linter; eslint, prettier, dependency-cruiser, vue-tsc)"
make --no-print-directory lint
step "frontend: vitest"
(cd frontend && npm run --silent test:unit)

# pytest exits 5 when it collected nothing: for us that is a broken suite, never a pass.
run_pytest() {
  local rc=0
  .venv/bin/pytest "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then echo "pytest collected no tests for: $*" >&2; return 1; fi
  return "$rc"
}

step "pytest on SQLite (everything)"
unset LORAFORGE_TEST_DATABASE_URL
run_pytest -q -p no:cacheprovider tests

step "pytest on PostgreSQL (the API tests that use the database, engine-heavy ones aside)"
PIDFILE="$(mktemp)"
cleanup_pg() {
  if [ -s "$PIDFILE" ]; then
    local pid; pid="$(cat "$PIDFILE")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
}
trap cleanup_pg EXIT
PG_URL="$(PG_PIDFILE_OUT="$PIDFILE" bash scripts/ensure_postgres.sh | tail -1)"
echo "using $PG_URL"
LORAFORGE_TEST_DATABASE_URL="$PG_URL" run_pytest -q -p no:cacheprovider --database-tests-only \
  -m "not engine_heavy" tests/api
step "all green"
