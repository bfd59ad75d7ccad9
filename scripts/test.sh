#!/usr/bin/env bash
# One command to set up and run the whole test suite: lint, types, frontend checks and unit
# tests, then pytest (API, engine, browser end-to-end) on SQLite, then the database-backed
# tests again on a real PostgreSQL server.
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

step "ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
step "mypy"
.venv/bin/mypy
step "frontend: vue-tsc and vitest"
(cd frontend && npm run --silent typecheck && npm run --silent test:unit)

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

step "pytest on PostgreSQL (every API test again)"
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
LORAFORGE_TEST_DATABASE_URL="$PG_URL" run_pytest -q -p no:cacheprovider tests/api
step "all green"
