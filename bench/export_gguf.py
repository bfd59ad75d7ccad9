"""GGUF export of a 0.5B-shaped model: `loraforge export` vs llama.cpp's own `convert_hf_to_gguf.py`.

The model is Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14 heads, 2 KV heads, intermediate 4864,
vocab 151936, tied embeddings, q/k/v biases) with random weights (seed 0) saved as one bf16
safetensors file (what Qwen2.5-0.5B itself ships), and LoRAForge's demo Qwen2 tokenizer (2048 ids;
both converters pad the vocabulary to the config's 151936 with `[PAD<id>]` entries). It is built
once under --work and reused.

For each quantization (F16, Q8_0) the two tools run interleaved (llama.cpp, ours, llama.cpp, ours,
...) so that load from other work falls on both; each process is timed whole under `/usr/bin/time -v`
(wall, user+system CPU, peak RSS) and our side runs with `--no-verify` (the verification is timed
once, separately, with --verify-once). Then both files are read with gguf-py's GGUFReader and every
tensor is matched by name: shape, GGML type and raw bytes; metadata keys that differ are listed too.
Prints one JSON object.

llama.cpp's side is `bench/peers/llamacpp_convert.sh` (its own venv under /tmp/lcpp-convert, set up
on first use; it overrides only the BPE pre-tokenizer identification, see llamacpp_convert_pre.py).

Usage: .venv/bin/python bench/export_gguf.py [--rounds 2] [--quants f16 q8_0] [--work /tmp/export-bench]
       [--verify-once]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from time_v import parse_time_v

REPO = Path(__file__).resolve().parents[1]
PEER = REPO / "bench" / "peers" / "llamacpp_convert.sh"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")
# Qwen2.5-0.5B's config.json, less the ids of its own tokenizer (the demo tokenizer's are kept).
QWEN25_05B: dict[str, Any] = {
    "hidden_size": 896,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "intermediate_size": 4864,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
    "max_position_embeddings": 32768,
    "max_window_layers": 21,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "hidden_act": "silu",
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CUDA_VISIBLE_DEVICES="",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONWARNINGS="ignore",
    )
    return env


def build_model(model_dir: Path) -> None:
    """The 0.5B-shaped random Qwen2 model with the demo tokenizer (skipped when already built)."""
    if (model_dir / "model.safetensors").is_file() and (model_dir / ".complete").is_file():
        return
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    with tempfile.TemporaryDirectory() as demo:
        subprocess.run(
            [str(REPO / ".venv" / "bin" / "loraforge"), "demo-model", "--arch", "qwen2", demo],
            check=True,
            env=_env(),
            capture_output=True,
        )
        base = json.loads((Path(demo) / "config.json").read_text())
        shutil.rmtree(model_dir, ignore_errors=True)
        model_dir.mkdir(parents=True)
        for name in TOKENIZER_FILES:
            if (Path(demo) / name).is_file():
                shutil.copy(Path(demo) / name, model_dir / name)
    _portable_tokenizer_config(model_dir / "tokenizer_config.json")
    ids = {k: base.get(k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    config = Qwen2Config(**QWEN25_05B, **ids, architectures=["Qwen2ForCausalLM"])
    torch.manual_seed(0)
    model: Any = Qwen2ForCausalLM(config)
    model = model.to(torch.bfloat16)
    model.save_pretrained(model_dir, safe_serialization=True)
    (model_dir / ".complete").write_text("")


def _portable_tokenizer_config(path: Path) -> None:
    """The demo's tokenizer_config.json in the form transformers 4 reads too (llama.cpp's converter pins
    transformers 4.57.6, which knows neither `TokenizersBackend` nor a list of `extra_special_tokens`).
    The same tokenizer.json, the same ids: only the class name and the key of the extra special tokens."""
    config = json.loads(path.read_text())
    config.pop("backend", None)
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    if isinstance(config.get("extra_special_tokens"), list):
        config["additional_special_tokens"] = config.pop("extra_special_tokens")
    path.write_text(json.dumps(config, indent=2))


def run_llamacpp(model_dir: Path, out: Path, quant: str) -> dict[str, Any]:
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        ["bash", str(PEER), str(model_dir), str(out), quant],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
    )
    line: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {k: line[k] for k in ("wall_s", "cpu_s", "peak_rss_mb", "size_bytes")}


def run_ours(model_dir: Path, out_dir: Path, quant: str, *, verify: bool = False) -> dict[str, Any]:
    shutil.rmtree(out_dir, ignore_errors=True)
    time_file = out_dir.with_name(out_dir.name + ".time.txt")
    cmd = [str(REPO / ".venv" / "bin" / "loraforge"), "export", str(model_dir), str(out_dir)]
    cmd += ["--format", "gguf", "--quant", quant] + ([] if verify else ["--no-verify"])
    proc = subprocess.run(
        ["/usr/bin/time", "-v", "-o", str(time_file), *cmd], capture_output=True, text=True, env=_env()
    )
    if proc.returncode != 0:
        raise RuntimeError(f"loraforge export failed ({proc.returncode}): {proc.stderr[-2000:]}")
    files = sorted(out_dir.glob("*.gguf"))
    assert len(files) == 1, files
    result = {
        **parse_time_v(time_file.read_text()),
        "size_bytes": files[0].stat().st_size,
        "file": str(files[0]),
    }
    if verify:
        result["verification"] = json.loads((out_dir / "export.json").read_text()).get("verification")
    return result


def _field_value(field: Any) -> Any:
    import gguf

    if not field.types:
        return None
    if field.types[0] == gguf.GGUFValueType.ARRAY:
        return ("array", len(field.data))  # token lists etc.: length only
    return field.contents()


def compare_files(ours: Path, theirs: Path) -> dict[str, Any]:
    """Tensors matched by name: shape, type and raw bytes; metadata keys that differ."""
    import gguf
    import numpy as np

    a, b = gguf.GGUFReader(str(ours)), gguf.GGUFReader(str(theirs))
    ta = {t.name: t for t in a.tensors}
    tb = {t.name: t for t in b.tensors}
    raw_a = np.memmap(ours, dtype=np.uint8, mode="r")
    raw_b = np.memmap(theirs, dtype=np.uint8, mode="r")
    identical = 0
    diffs: list[dict[str, Any]] = []
    for name in sorted(set(ta) & set(tb)):
        x, y = ta[name], tb[name]
        same_shape = [int(d) for d in x.shape] == [int(d) for d in y.shape]
        same_type = x.tensor_type == y.tensor_type
        same_bytes = (
            same_shape
            and same_type
            and x.n_bytes == y.n_bytes
            and np.array_equal(
                raw_a[x.data_offset : x.data_offset + x.n_bytes],
                raw_b[y.data_offset : y.data_offset + y.n_bytes],
            )
        )
        if same_bytes:
            identical += 1
            continue
        diffs.append(
            {
                "name": name,
                "ours": {"type": x.tensor_type.name, "shape": [int(d) for d in x.shape]},
                "llama_cpp": {"type": y.tensor_type.name, "shape": [int(d) for d in y.shape]},
                "bytes_equal": bool(same_bytes),
            }
        )
    fa = {k: _field_value(f) for k, f in a.fields.items() if not k.startswith("GGUF.")}
    fb = {k: _field_value(f) for k, f in b.fields.items() if not k.startswith("GGUF.")}
    kv_diff = {
        k: {"ours": fa.get(k, "<absent>"), "llama_cpp": fb.get(k, "<absent>")}
        for k in sorted(set(fa) | set(fb))
        if fa.get(k, "<absent>") != fb.get(k, "<absent>")
    }
    return {
        "tensors_ours": len(ta),
        "tensors_llama_cpp": len(tb),
        "only_ours": sorted(set(ta) - set(tb)),
        "only_llama_cpp": sorted(set(tb) - set(ta)),
        "identical": identical,
        "differences": diffs,
        "types_ours": _type_counts(ta.values()),
        "types_llama_cpp": _type_counts(tb.values()),
        "metadata_differences": json.loads(json.dumps(kv_diff, default=str)),
    }


def _type_counts(tensors: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in tensors:
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    return counts


def _median(runs: list[dict[str, Any]], key: str) -> float:
    value = statistics.median(r[key] for r in runs)
    return int(value) if float(value).is_integer() else round(value, 2)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quants", nargs="+", default=["f16", "q8_0"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/export-bench"))
    parser.add_argument("--verify-once", action="store_true", help="also time one export with verification")
    args = parser.parse_args()

    model_dir = args.work / "model"
    started = time.monotonic()
    build_model(model_dir)
    subprocess.run(["bash", str(PEER), "setup"], check=True, env=_env())
    report: dict[str, Any] = {
        "model": {
            "shape": "Qwen2.5-0.5B (random init, seed 0)",
            "dtype": "bf16",
            "safetensors_bytes": (model_dir / "model.safetensors").stat().st_size,
            "tokenizer": "loraforge demo-model --arch qwen2 (2048 ids, padded to 151936)",
        },
        "quants": {},
    }
    for quant in args.quants:
        runs: dict[str, list[dict[str, Any]]] = {"llama_cpp": [], "ours": []}
        loads = []
        theirs_file = args.work / f"llamacpp-{quant}.gguf"
        ours_dir = args.work / f"ours-{quant}"
        for _ in range(args.rounds):
            loads.append(round(os.getloadavg()[0], 2))
            runs["llama_cpp"].append(run_llamacpp(model_dir, theirs_file, quant))
            loads.append(round(os.getloadavg()[0], 2))
            runs["ours"].append(run_ours(model_dir, ours_dir, quant))
        loads.append(round(os.getloadavg()[0], 2))
        entry: dict[str, Any] = {"load_avg_1min": loads, "runs": runs}
        for side, rs in runs.items():
            entry[side] = {k: _median(rs, k) for k in ("wall_s", "cpu_s", "peak_rss_mb", "size_bytes")}
        entry["compare"] = compare_files(Path(runs["ours"][-1]["file"]), theirs_file)
        if args.verify_once:
            entry["ours_with_verify"] = run_ours(
                model_dir, args.work / f"ours-{quant}-verify", quant, verify=True
            )
        report["quants"][quant] = entry
    report["bench_wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
