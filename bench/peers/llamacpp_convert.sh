#!/usr/bin/env bash
# llama.cpp's own converter (`convert_hf_to_gguf.py`, as shipped inside the llama-cpp-python 0.3.36 source
# distribution) once, under /usr/bin/time -v; prints one JSON line: wall_s, cpu_s, peak_rss_mb, size_bytes.
#   llamacpp_convert.sh setup                         venv + converter under LCPP_CONVERT_ROOT (idempotent)
#   llamacpp_convert.sh MODEL_DIR OUT.gguf f16|q8_0   one conversion (runs setup first if needed)
# LCPP_CONVERT_ROOT defaults to /tmp/lcpp-convert: dl/ keeps the downloaded sdist, src/ the unpacked
# converter, venv/ its own virtualenv (CPU torch, transformers, sentencepiece, safetensors, the vendored
# gguf-py). The conversion goes through `llamacpp_convert_pre.py`, which only overrides the BPE
# pre-tokenizer identification (see that file).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${LCPP_CONVERT_ROOT:-/tmp/lcpp-convert}"
VERSION=0.3.36
SRC="$ROOT/src/llama_cpp_python-$VERSION/vendor/llama.cpp"
VENV="$ROOT/venv"

setup() {
  mkdir -p "$ROOT/dl" "$ROOT/src"
  local sdist="$ROOT/dl/llama_cpp_python-$VERSION.tar.gz"
  if [ ! -f "$sdist" ]; then
    pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$ROOT/dl" >&2
  fi
  if [ ! -f "$SRC/convert_hf_to_gguf.py" ]; then
    # Only the converter, its `conversion` package and gguf-py: the C++ sources are not needed.
    tar xzf "$sdist" -C "$ROOT/src" --wildcards \
      "llama_cpp_python-$VERSION/vendor/llama.cpp/convert_hf_to_gguf.py" \
      "llama_cpp_python-$VERSION/vendor/llama.cpp/conversion/*" \
      "llama_cpp_python-$VERSION/vendor/llama.cpp/gguf-py/*" \
      "llama_cpp_python-$VERSION/vendor/llama.cpp/requirements/*"
  fi
  if [ ! -f "$VENV/.ready" ]; then
    python3 -m venv "$VENV"
    # CPU torch first (the converter only uses it to read and cast tensors), then the rest of
    # requirements-convert_hf_to_gguf.txt; transformers at the converter's own pin.
    "$VENV/bin/pip" install -q torch==2.13.0 >&2
    "$VENV/bin/pip" install -q numpy sentencepiece safetensors "transformers==4.57.6" "protobuf>=4.21.0,<5.0.0" >&2
    "$VENV/bin/pip" install -q "$SRC/gguf-py" >&2
    touch "$VENV/.ready"
  fi
}

if [ "${1:-}" = setup ]; then setup; exit 0; fi
if [ $# -lt 3 ]; then echo "usage: $0 setup | MODEL_DIR OUT.gguf f16|q8_0" >&2; exit 2; fi
MODEL="$1"; OUT="$2"; QUANT="$3"
setup
mkdir -p "$(dirname "$OUT")"
TIME_FILE="$OUT.time.txt"; LOG="$OUT.log"
rc=0
CUDA_VISIBLE_DEVICES="" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONWARNINGS=ignore \
  /usr/bin/time -v -o "$TIME_FILE" "$VENV/bin/python" "$HERE/llamacpp_convert_pre.py" "$SRC" \
  "$MODEL" --outfile "$OUT" --outtype "$QUANT" > "$LOG" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then echo "llamacpp_convert.sh: converter failed (rc=$rc), see $LOG" >&2; tail -20 "$LOG" >&2; exit "$rc"; fi
"$VENV/bin/python" - "$TIME_FILE" "$OUT" <<'PYEOF'
import json, os, re, sys
tv = open(sys.argv[1]).read()
w = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", tv).group(1).split(":")
wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(w)))
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv).group(1))
cpu = sum(float(re.search(rf"{k} time \(seconds\): (\S+)", tv).group(1)) for k in ("User", "System"))
print(json.dumps({"peer": "llama.cpp", "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                  "peak_rss_mb": round(rss_kb / 1024), "size_bytes": os.path.getsize(sys.argv[2]), "out": sys.argv[2]}))
PYEOF
