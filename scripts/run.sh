#!/usr/bin/env bash
# One command to set up and start LoRAForge on http://127.0.0.1:8000 with embedded defaults:
# SQLite in $LORAFORGE_DATA_DIR (default ./data), migrations applied, the demo model built.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export LORAFORGE_DATA_DIR="${LORAFORGE_DATA_DIR:-$ROOT/data}"
mkdir -p "$LORAFORGE_DATA_DIR"
DEMO="$LORAFORGE_DATA_DIR/models/demo-tiny"
if [ ! -f "$DEMO/config.json" ]; then
  echo "[run] building the demo model (demo-tiny) in $DEMO"
  .venv/bin/loraforge demo-model "$DEMO" --arch qwen2 --size tiny
fi
.venv/bin/loraforge migrate
exec .venv/bin/loraforge serve --host "${LORAFORGE_HOST:-127.0.0.1}" --port "${LORAFORGE_PORT:-8000}"
