#!/usr/bin/env bash
# Idempotent setup: Python venv at .venv (torch pinned first), the web UI build, and with
# --test the system packages the test suite needs (Debian's chromium; PostgreSQL when no
# server is reachable). A second run with nothing changed takes a few seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WITH_TEST=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 ;;
    *) echo "usage: scripts/setup.sh [--test]" >&2; exit 2 ;;
  esac
done

# torch first and pinned: an open range would pull a multi-GB CUDA build. GPU users install the
# torch build for their CUDA into .venv before running this script; an importable torch is kept.
TORCH_SPEC="${LORAFORGE_TORCH_SPEC:-torch==2.13.0}"
PY="${PYTHON:-python3}"
log() { printf '[setup] %s\n' "$*"; }

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "[setup] missing Debian packages: ${missing[*]} (run as root or install them)" >&2
    exit 1
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- system packages -----------------------------------------------------------------------
command -v npm >/dev/null 2>&1 || apt_install nodejs npm
if [ "$WITH_TEST" -eq 1 ]; then
  apt_install chromium
  # PostgreSQL: a server on 127.0.0.1:5432 is used when reachable; otherwise the test script
  # starts its own cluster, for which the server binaries must be installed.
  if ! pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
    apt_install postgresql
  fi
fi

# --- Python ------------------------------------------------------------------------------
[ -x .venv/bin/python ] || { log "creating .venv"; "$PY" -m venv .venv; }
EXTRAS="ml"
# The tests run the Ray executor against a real head; a server configured for Ray needs the client.
[ "${LORAFORGE_EXECUTOR:-local}" = "ray" ] && EXTRAS="ml,ray"
[ "$WITH_TEST" -eq 1 ] && EXTRAS="ml,dev,ray"
PY_STAMP=".venv/.loraforge-$EXTRAS"
PY_HASH="$(hash_of pyproject.toml scripts/setup.sh)"
# A test setup (ml,dev,ray) also satisfies a run setup (ml, or ml,ray).
if [ "$(cat "$PY_STAMP" 2>/dev/null)" != "$PY_HASH" ] && [ "$(cat .venv/.loraforge-ml,dev,ray 2>/dev/null)" != "$PY_HASH" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    log "installing $TORCH_SPEC"
    .venv/bin/pip install -q "$TORCH_SPEC"
  fi
  log "installing loraforge[$EXTRAS]"
  .venv/bin/pip install -q -e ".[$EXTRAS]"
  echo "$PY_HASH" > "$PY_STAMP"
else
  log "python environment up to date"
fi

# --- web UI ------------------------------------------------------------------------------
if [ -f frontend/package.json ]; then
  NPM_HASH="$(hash_of frontend/package.json frontend/package-lock.json)"
  if [ ! -d frontend/node_modules ] || [ "$(cat frontend/node_modules/.loraforge-stamp 2>/dev/null)" != "$NPM_HASH" ]; then
    log "npm ci"
    (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
    echo "$NPM_HASH" > frontend/node_modules/.loraforge-stamp
  fi
  # Rebuild only when a source of the UI changed.
  UI_HASH="$(cd frontend && { ls index.html package-lock.json vite.config.* tsconfig*.json; find src public -type f 2>/dev/null || true; } | sort | xargs sha256sum | sha256sum | cut -c1-16)"
  DIST=src/loraforge/web/dist
  if [ ! -f "$DIST/index.html" ] || [ "$(cat "$DIST/.loraforge-stamp" 2>/dev/null)" != "$UI_HASH" ]; then
    log "building the web UI"
    (cd frontend && npm run --silent build)
    echo "$UI_HASH" > "$DIST/.loraforge-stamp"
  else
    log "web UI up to date"
  fi
fi
log "ready"
