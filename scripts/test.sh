#!/usr/bin/env bash
# One command to set up and run the whole test suite: `make lint` (style, types and the layering of
# both the Python package and the frontend), frontend unit tests, then pytest in two lanes at once:
# the API and browser end-to-end tests on SQLite, beside the engine, inference and unit tests on SQLite
# followed by the database-backed API tests again on a real PostgreSQL server.
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

# Two lanes at once: the machine spends much of a test waiting (servers starting, engine
# subprocesses, a browser), so the API tests on SQLite run beside the other SQLite tests followed by
# the PostgreSQL phase. Each lane has its own pytest temp dir; every server a test starts picks a
# free port, and the PostgreSQL phase works in schemas of its own, so the lanes share nothing.
LANES="$(mktemp -d)"
PIDFILE="$(mktemp)"
cleanup() {
  if [ -s "$PIDFILE" ]; then
    local pid; pid="$(cat "$PIDFILE")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  rm -rf "$LANES"
}
trap cleanup EXIT

lane_other() {
  unset LORAFORGE_TEST_DATABASE_URL
  echo "--- pytest on SQLite: engine, inference, unit"
  run_pytest -q -p no:cacheprovider --basetemp="$LANES/other" tests/unit tests/engine tests/inference
  echo "--- pytest on PostgreSQL (the API tests that use the database, engine-heavy ones aside)"
  local pg_url
  pg_url="$(PG_PIDFILE_OUT="$PIDFILE" bash scripts/ensure_postgres.sh | tail -1)"
  echo "using $pg_url"
  LORAFORGE_TEST_DATABASE_URL="$pg_url" run_pytest -q -p no:cacheprovider --basetemp="$LANES/pg" \
    --database-tests-only -m "not engine_heavy" tests/api
}

step "pytest, two lanes: [api and browser end-to-end on SQLite] beside [engine, inference, unit on SQLite, then api on PostgreSQL]"
lane_other >"$LANES/other.log" 2>&1 &
OTHER=$!
API_RC=0
(unset LORAFORGE_TEST_DATABASE_URL; run_pytest -q -p no:cacheprovider --basetemp="$LANES/api" tests/api tests/e2e) || API_RC=$?
OTHER_RC=0
wait "$OTHER" || OTHER_RC=$?
step "the other lane's output"
cat "$LANES/other.log"
if [ "$API_RC" -ne 0 ] || [ "$OTHER_RC" -ne 0 ]; then
  echo "FAILED: api lane rc=$API_RC, other lane rc=$OTHER_RC" >&2
  exit 1
fi
step "all green"
