#!/usr/bin/env bash
# Issue 7 side-by-side: LLaMA-Factory (unpacked, packing, neat_packing), the harness's TRL baselines
# and our engine in every batching mode, interleaved round by round, medians at the end.
# Usage: compare_all.sh [small|tiny] [REPEAT=3]
#   Default: runs the harness's compare.sh (LF unpacked + TRL newest + TRL at LF's pins) with
#   LF packing, LF neat and our engine's four modes as extra peers.
#   NO_TRL=1: the same interleaving without the two TRL peers (each costs ~3 + ~1.7 min a round on
#   2 cores), with the same median table; lines go to $ROOT/results.jsonl as compare.sh does.
# Env: PEERBENCH_ROOT (default /tmp/peerbench), PEERBENCH_DIR (the harness, default ../shared/peer-bench).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
HARNESS="${PEERBENCH_DIR:-$REPO/../shared/peer-bench}"
ROOT="${PEERBENCH_ROOT:-/tmp/peerbench}"
MODEL="${1:-small}"
REPEAT="${2:-3}"
EXTRA=(
  "bash $HARNESS/run_lf.sh $MODEL packing"
  "bash $HARNESS/run_lf.sh $MODEL neat"
  "bash $HERE/run_engine.sh $MODEL none"
  "bash $HERE/run_engine.sh $MODEL grouped"
  "bash $HERE/run_engine.sh $MODEL packing"
  "bash $HERE/run_engine.sh $MODEL neat"
)
if [ "${NO_TRL:-0}" != 1 ]; then
  exec bash "$HARNESS/compare.sh" "$MODEL" "$REPEAT" "${EXTRA[@]}"
fi

PEERS=("bash $HARNESS/run_lf.sh $MODEL none" "${EXTRA[@]}")
OUT="$ROOT/results-all-$(date +%Y%m%d-%H%M%S).jsonl"
for i in $(seq 1 "$REPEAT"); do
  for cmd in "${PEERS[@]}"; do
    echo "[compare_all] round $i: $cmd" >&2
    # shellcheck disable=SC2086
    $cmd | tail -1 | tee -a "$OUT" "$ROOT/results.jsonl"
  done
done
python3 "$HERE/medians.py" "$OUT"
