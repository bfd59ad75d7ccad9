#!/usr/bin/env bash
# Per-step loss parity with LLaMA-Factory, unpacked (same batches, |Δloss| ≤ 1e-3 per step).
# Runs LF (the harness's YAML with logging_steps 1) and our engine (mode none, logging_steps 1) on the
# same setup, then prints one JSON object: steps compared, max |Δ| per step, first-step token counts.
# Usage: parity_lf.sh [small|tiny] [STEPS=100]   (reuses LF_RUN=<dir> of an earlier LF run if given)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
ROOT="${PEERBENCH_ROOT:-/tmp/peerbench}"
HARNESS="${PEERBENCH_DIR:-$REPO/../shared/peer-bench}"
MODEL="${1:-small}"
STEPS="${2:-100}"
shift $(( $# >= 2 ? 2 : $# ))
MODEL_DIR="$ROOT/models/llama-$MODEL"
LF_RUN="${LF_RUN:-}"
if [ -z "$LF_RUN" ]; then
  LF_RUN="$ROOT/runs/lf-parity-$MODEL-$(date +%Y%m%d-%H%M%S)"
  mkdir -p "$LF_RUN"
  sed -e "s#__MODEL__#$MODEL_DIR#" -e "s#__DATA_DIR__#$ROOT/data#" -e "s#__OUT__#$LF_RUN/out#" \
      -e "s#^max_steps: .*#max_steps: $STEPS#" -e "s#^logging_steps: .*#logging_steps: 1#" \
      "$HARNESS/lf_sft_lora.yaml" > "$LF_RUN/cfg.yaml"
  CUDA_VISIBLE_DEVICES="" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    HF_HOME="$ROOT/cache/hf" XDG_CACHE_HOME="$ROOT/cache" MPLCONFIGDIR="$ROOT/cache/mpl" PYTHONWARNINGS=ignore \
    "$ROOT/lf-venv/bin/llamafactory-cli" train "$LF_RUN/cfg.yaml" > "$LF_RUN/train.log" 2>&1
fi
OURS="$(MAX_STEPS="$STEPS" LOGGING_STEPS=1 bash "$HERE/run_engine.sh" "$MODEL" none "$@" | tail -1)"
OUR_RUN="$(printf '%s' "$OURS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_dir"])')"
python3 - "$LF_RUN/out/trainer_log.jsonl" "$OUR_RUN/trainer_log.jsonl" <<'PYEOF'
import json, sys
def steps(p):
    return {r["current_steps"]: r for r in map(json.loads, open(p)) if r.get("loss") is not None}
lf, ours = steps(sys.argv[1]), steps(sys.argv[2])
common = sorted(set(lf) & set(ours))
d = [abs(lf[s]["loss"] - ours[s]["loss"]) for s in common]
print(json.dumps({
    "steps_compared": len(common), "max_abs_diff": round(max(d), 6), "mean_abs_diff": round(sum(d) / len(d), 6),
    "worst_step": common[d.index(max(d))], "within_1e-3": max(d) <= 1e-3,
    "lf_tokens_step1": lf[common[0]].get("total_tokens"), "ours_tokens_step1": ours[common[0]].get("total_tokens"),
    "lf_first5": [lf[s]["loss"] for s in common[:5]], "ours_first5": [ours[s]["loss"] for s in common[:5]],
    "lf_log": sys.argv[1], "ours_log": sys.argv[2],
}))
PYEOF
