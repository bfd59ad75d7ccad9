#!/usr/bin/env bash
# Run OUR engine (`python -m loraforge.engine run RUN_DIR`) once on exactly the peer harness's setup
# (../shared/peer-bench: same /tmp/peerbench model and data/, same hyperparameters) under
# /usr/bin/time -v, and print the harness's JSON line on stdout.
# Usage: run_engine.sh [small|tiny|/abs/model/dir] [none|packing|neat|grouped] [KEY=VALUE ...]
#   none     unpacked, the Trainer's seeded random sampler: the same batches as LLaMA-Factory
#   grouped  unpacked, length-grouped batches (group_by_length: true)
#   packing  LF-style packing (continuous positions, as LF's `packing: true`)
#   neat     padding-free packing, no cross-example attention (LF's `neat_packing: true`)
#   KEY=VALUE extra spec keys (JSON values, e.g. fast_loss=false) for ablations.
# Env: PEERBENCH_ROOT (default /tmp/peerbench), MAX_STEPS (default 100), LOGGING_STEPS (default 5),
#      LORAFORGE_PY (default: the repo's .venv python).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
ROOT="${PEERBENCH_ROOT:-/tmp/peerbench}"
MODEL="${1:-small}"
MODE="${2:-none}"
shift $(( $# >= 2 ? 2 : $# ))
STEPS="${MAX_STEPS:-100}"
LOG_STEPS="${LOGGING_STEPS:-5}"
PY="${LORAFORGE_PY:-$REPO/.venv/bin/python}"
case "$MODEL" in small|tiny) MODEL_DIR="$ROOT/models/llama-$MODEL" ;; *) MODEL_DIR="$MODEL" ;; esac
case "$MODE" in none|packing|neat|grouped) ;; *) echo "mode must be none|packing|neat|grouped" >&2; exit 2 ;; esac
if [ ! -f "$MODEL_DIR/config.json" ] || [ ! -f "$ROOT/data/dataset_info.json" ]; then
  echo "run_engine.sh: missing model or data under $ROOT - run ../shared/peer-bench/setup.sh first" >&2; exit 2
fi

RUN="$ROOT/runs/engine-$(basename "$MODEL_DIR")-$MODE-$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$RUN"
# The spec, in LLaMA-Factory's vocabulary, mirroring lf_sft_lora.yaml key for key.
"$PY" - "$RUN" "$MODEL_DIR" "$ROOT/data" "$MODE" "$STEPS" "$LOG_STEPS" "$@" <<'PYEOF'
import json, sys
run, model, data, mode, steps, log_steps, *extra = sys.argv[1:]
spec = {
    "model_name_or_path": model, "stage": "sft", "finetuning_type": "lora", "lora_rank": 8,
    "lora_alpha": 16, "lora_dropout": 0.0, "lora_target": "all", "gradient_checkpointing": False,
    "dataset": "identity,alpaca_en_demo", "dataset_dir": data, "template": "default",
    "cutoff_len": 512, "max_samples": 1000, "logging_steps": int(log_steps), "save_strategy": "no",
    "save_every_minutes": None, "report_to": "none", "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1, "learning_rate": 1e-3, "max_steps": int(steps),
    "lr_scheduler_type": "cosine", "warmup_ratio": 0.0, "bf16": False, "seed": 42, "devices": "cpu",
    "packing": mode in ("packing", "neat"), "neat_packing": mode == "neat",
    "group_by_length": mode == "grouped",
}
for kv in extra:
    k, _, v = kv.partition("=")
    spec[k] = json.loads(v)
json.dump(spec, open(f"{run}/spec.json", "w"), indent=1)
PYEOF

export CUDA_VISIBLE_DEVICES="" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
       HF_HOME="$ROOT/cache/hf" XDG_CACHE_HOME="$ROOT/cache" MPLCONFIGDIR="$ROOT/cache/mpl" PYTHONWARNINGS=ignore
rc=0
/usr/bin/time -v -o "$RUN/time.txt" "$PY" -m loraforge.engine run "$RUN" > "$RUN/train.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ] || [ ! -f "$RUN/output/summary.json" ]; then
  echo "run_engine.sh: engine failed (rc=$rc), see $RUN/train.log" >&2; tail -20 "$RUN/train.log" >&2; exit "${rc/#0/1}"
fi

"$PY" - "$RUN" "$MODEL_DIR" "$MODE" "$STEPS" <<'PYEOF'
import json, os, re, sys
from importlib.metadata import version
run, model_dir, mode, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = json.load(open(f"{run}/output/summary.json"))
tl = [json.loads(l) for l in open(f"{run}/trainer_log.jsonl")]
tv = open(f"{run}/time.txt").read()
w = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", tv).group(1).split(":")
wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(w)))
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv).group(1))
losses = [r["loss"] for r in tl if r.get("loss") is not None]
tokens, rt = s["tokens_trained"], s["runtime_s"]
print(json.dumps({
    "peer": "loraforge", "version": version("loraforge"), "transformers": version("transformers"),
    "torch": version("torch"), "model": os.path.basename(model_dir), "packing": mode, "grad_ckpt": False,
    "steps": steps, "wall_s": round(wall, 1), "train_runtime_s": round(rt, 1), "train_tokens": tokens,
    "tokens_per_s": round(tokens / rt, 1), "peak_rss_mb": round(rss_kb / 1024),
    "final_loss": round(losses[-1], 4), "train_loss": round(s["train_loss"], 4),
    "tokens_source": "trainer num_input_tokens_seen (non_padding; real tokens of packs)",
    "setup_s": s.get("setup_s"), "run_dir": run,
}))
PYEOF
