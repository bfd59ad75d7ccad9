#!/usr/bin/env bash
# LLaMA-Factory's `do_predict` with `predict_with_generate` once (llamafactory-cli train lf_predict.yaml)
# under /usr/bin/time -v; prints one JSON line: wall_s, peak_rss_mb, LF's predict_results.json, out_dir.
# Usage: lf_predict.sh OUT_DIR [small|tiny|/abs/model/dir] [MAX_NEW_TOKENS=64] [BATCH=default]
# Needs ../shared/peer-bench/setup.sh (venv, models and data under PEERBENCH_ROOT, default /tmp/peerbench).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${PEERBENCH_ROOT:-/tmp/peerbench}"
OUT="$1"
MODEL="${2:-small}"
NEW_TOKENS="${3:-64}"
BATCH="${4:-default}"
case "$MODEL" in small|tiny) MODEL_DIR="$ROOT/models/llama-$MODEL" ;; *) MODEL_DIR="$MODEL" ;; esac
if [ ! -x "$ROOT/lf-venv/bin/llamafactory-cli" ] || [ ! -f "$MODEL_DIR/config.json" ]; then
  echo "lf_predict.sh: missing venv or model under $ROOT - run ../shared/peer-bench/setup.sh first" >&2; exit 2
fi
# LF's `predict_with_generate` metrics need its `metrics` extra, which setup.sh does not install.
if ! "$ROOT/lf-venv/bin/python" -c "import jieba, nltk, rouge_chinese" 2>/dev/null; then
  "$ROOT/lf-venv/bin/pip" install -q -c "$ROOT/constraints.txt" jieba nltk rouge-chinese >&2
fi
mkdir -p "$OUT"
sed -e "s#__MODEL__#$MODEL_DIR#" -e "s#__DATA_DIR__#$ROOT/data#" -e "s#__OUT__#$OUT/out#" \
    -e "s#^max_new_tokens: .*#max_new_tokens: $NEW_TOKENS#" "$HERE/lf_predict.yaml" > "$OUT/cfg.yaml"
if [ "$BATCH" != default ]; then echo "per_device_eval_batch_size: $BATCH" >> "$OUT/cfg.yaml"; fi
export CUDA_VISIBLE_DEVICES="" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
       HF_HOME="$ROOT/cache/hf" XDG_CACHE_HOME="$ROOT/cache" MPLCONFIGDIR="$ROOT/cache/mpl" \
       MODELSCOPE_CACHE="$ROOT/cache/modelscope" PYTHONWARNINGS=ignore
rc=0
/usr/bin/time -v -o "$OUT/time.txt" "$ROOT/lf-venv/bin/llamafactory-cli" train "$OUT/cfg.yaml" > "$OUT/predict.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then echo "lf_predict.sh: llamafactory-cli failed (rc=$rc), see $OUT/predict.log" >&2; tail -20 "$OUT/predict.log" >&2; exit "$rc"; fi
"$ROOT/lf-venv/bin/python" - "$OUT" <<'PYEOF'
import json, re, sys
out = sys.argv[1]
tv = open(f"{out}/time.txt").read()
w = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", tv).group(1).split(":")
wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(w)))
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv).group(1))
cpu = sum(float(re.search(rf"{k} time \(seconds\): (\S+)", tv).group(1)) for k in ("User", "System"))
results = json.load(open(f"{out}/out/predict_results.json"))
print(json.dumps({"peer": "llamafactory", "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(rss_kb / 1024),
                  "predict_results": results, "out_dir": f"{out}/out"}))
PYEOF
