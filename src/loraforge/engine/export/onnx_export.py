"""ONNX export (fp32 / int4, KV cache in the graph) through onnxruntime-genai's model builder.

Why the builder and not our own `torch.onnx.export`: the builder writes the graph ONNX Runtime
runs fastest on CPU (GroupQueryAttention with `past_key_values.N.key/value` inputs and `present.N.*`
outputs, rotary caches, MatMulNBits for int4) plus `genai_config.json`, so `onnxruntime_genai`
generates with the cache out of the box. It works with transformers 5 for the Qwen2, Llama, Mistral
and Phi-3 families (checked on the demo models: fp32 greedy tokens identical to transformers),
where optimum's exporter cannot even install beside transformers 5.

The builder runs in a child process: it puts its own top-level modules (`builders`, `quantization`)
on `sys.path`, which must not leak into the engine, and a child is killed cleanly on SIGTERM.
Torch-free at import: the platform asks `available()` without loading the engine's heavy stack.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loraforge.engine.events import EventWriter
from loraforge.engine.export.errors import (
    DiskFullError,
    ExportError,
    UnsupportedArchitectureError,
)
from loraforge.engine.failures import MissingDependencyError

QUANTIZATIONS = ("fp32", "int4")
# `model_type`s the builder maps to a graph (its builder.py dispatch); the first four are the ones
# our tests verify on demo models. Anything else is refused before a minute is spent on it.
SUPPORTED_MODEL_TYPES = frozenset(
    {"qwen2", "llama", "mistral", "phi3", "qwen3", "gemma", "gemma2", "gemma3_text", "granite", "olmo", "phi"}
)
_REQUIRED_MODULES = ("onnxruntime_genai", "onnxruntime", "onnx", "onnx_ir")
_PARTIAL = ".onnx-partial"
# tqdm's "k/T [" while the builder saves tensors: the progress we report (step = tensors written).
_TQDM = re.compile(r"(\d+)/(\d+) \[")


def available() -> tuple[bool, str]:
    """(True, "") when the builder and the runtime import here; else (False, why + how to fix)."""
    missing = [m for m in _REQUIRED_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return False, (
            f"ONNX export needs {', '.join(missing)}: install the ml extra (pip install '.[ml]'), "
            "which brings onnxruntime-genai, onnxruntime, onnx and onnx-ir"
        )
    return True, ""


def estimate_onnx_bytes(model_dir: Path, quant: str) -> int:
    """About how many bytes the ONNX export of MODEL_DIR writes (torch-free: safetensors headers).

    fp32: every weight at 4 bytes plus the rotary cos/sin tables. int4: MatMulNBits stores 4 bits
    per weight plus a scale per block of 32 (~0.65 byte/weight, measured on the demo models); a tied
    embedding is quantized with the head, an untied one stays fp32 for its Gather.
    """
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    hidden, vocab = int(config["hidden_size"]), int(config["vocab_size"])
    head_dim = int(config.get("head_dim") or hidden // int(config["num_attention_heads"]))
    rope = int(config.get("max_position_embeddings", 4096)) * head_dim * 4
    params = sum(_safetensors_params(p) for p in sorted(model_dir.glob("*.safetensors")))
    if quant == "fp32":
        return params * 4 + rope
    embed = vocab * hidden
    tied = bool(config.get("tie_word_embeddings", False))
    return int((params - (0 if tied else embed)) * 0.65) + (0 if tied else embed * 4) + rope


def _safetensors_params(path: Path) -> int:
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    total = 0
    for name, meta in header.items():
        if name != "__metadata__":
            n = 1
            for dim in meta["shape"]:
                n *= int(dim)
            total += n
    return total


def export_onnx(spec: dict[str, Any], output_dir: Path, writer: EventWriter) -> dict[str, Any]:
    """Builds the ONNX model of `spec` (the `export` block) into OUTPUT_DIR and verifies it.

    Returns the export.json fields this format owns: `files` and `verification`. On any failure
    (SIGTERM included) the partial build is removed and the exception propagates.
    """
    quant = spec.get("quantization") or "fp32"
    if quant not in QUANTIZATIONS:
        raise ExportError(
            f"ONNX quantization must be one of {', '.join(QUANTIZATIONS)}, not {quant!r}.",
            field="quantization",
        )
    ok, why = available()
    if not ok:
        raise MissingDependencyError(why)
    output_dir.mkdir(parents=True, exist_ok=True)
    partial = output_dir / _PARTIAL
    with tempfile.TemporaryDirectory(prefix="onnx-", dir=output_dir.parent) as scratch:
        try:
            source = _source_folder(spec, Path(scratch), writer)
            _check_architecture(source)
            _check_disk(source, output_dir, quant)
            _build(source, partial, Path(scratch) / "cache", quant, writer)
            names = _move_up(partial, output_dir)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        verification: dict[str, Any] = {
            "ok": False, "reader": "", "prompt": "", "tokens_compared": 0, "agreement": 0.0,
            "identical": False, "detail": "verification skipped (verify: false)",
        }  # fmt: skip
        if spec.get("verify", True):
            from loraforge.engine.export.onnx_verify import verify_onnx

            writer.status("verifying")
            try:
                verification = verify_onnx(source, output_dir, quant)
            except BaseException:  # cancelled while verifying: the files go too
                for name in names:
                    (output_dir / name).unlink(missing_ok=True)
                raise
    return {"files": [_file_entry(output_dir / n) for n in names], "verification": verification}


def _source_folder(spec: dict[str, Any], scratch: Path, writer: EventWriter) -> Path:
    """The model folder the builder reads: the source itself, or the LoRA merged into a scratch copy
    (the builder reads a HF folder, so "merged in memory" means a temporary folder here)."""
    model = Path(str(spec.get("model_name_or_path") or ""))
    if not (model / "config.json").is_file():
        raise ExportError(
            f"{str(model)!r} is not a model folder (no config.json).", field="model_name_or_path"
        )
    adapter = spec.get("adapter_name_or_path")
    if not adapter:
        return model
    from loraforge.engine.merge import merge_adapter

    writer.log("merging the LoRA adapter into its base model for the ONNX build")
    return merge_adapter(adapter, scratch / "merged", base_model=model, dtype="fp32")


def _check_architecture(source: Path) -> None:
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    model_type = str(config.get("model_type", ""))
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedArchitectureError(
            f"ONNX export does not support model_type {model_type!r} "
            f"(supported: {', '.join(sorted(SUPPORTED_MODEL_TYPES))}).",
            model_type=model_type,
        )


def _check_disk(source: Path, output_dir: Path, quant: str) -> None:
    # the estimate plus room for the graph, the tokenizer and the builder's own slack
    need = int(estimate_onnx_bytes(source, quant) * 1.2) + (16 << 20)
    free = shutil.disk_usage(output_dir).free
    if need > free:
        raise DiskFullError(
            f"the ONNX {quant} export needs about {need >> 20} MiB and {free >> 20} MiB are free.",
            need_bytes=need,
            free_bytes=free,
        )


def _build(source: Path, out: Path, cache: Path, quant: str, writer: EventWriter) -> None:
    cmd = [
        sys.executable, "-m", "onnxruntime_genai.models.builder",
        "-i", str(source), "-o", str(out), "-p", quant, "-e", "cpu", "-c", str(cache),
    ]  # fmt: skip
    # Nothing may be downloaded at run time: the folder holds everything the builder needs.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    writer.log(f"building ONNX {quant} with onnxruntime-genai's model builder")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    tail: list[str] = []
    try:
        _follow(proc, writer, tail)
        rc = proc.wait()
    finally:
        # SIGTERM arrives here as an exception: the child must not outlive the job.
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if rc != 0 or not (out / "model.onnx").is_file():
        detail = "\n".join(tail[-15:])
        if "NotImplementedError" in detail or "not currently supported" in detail:
            raise UnsupportedArchitectureError(f"onnxruntime-genai cannot build this model:\n{detail}")
        raise ExportError(f"the ONNX model builder failed (exit {rc}):\n{detail}")


def _follow(proc: subprocess.Popen[bytes], writer: EventWriter, tail: list[str]) -> None:
    """Relays the builder's output: tqdm counters become progress metrics, other lines logs."""
    assert proc.stdout is not None
    started = time.monotonic()
    last_emit, last_step = 0.0, -1
    buf = b""
    while chunk := os.read(proc.stdout.fileno(), 4096):
        buf += chunk
        *parts, buf = re.split(rb"[\r\n]", buf)
        for raw in parts:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            match = _TQDM.search(line)
            if match is None:
                tail.append(line)
                del tail[:-50]
                # the int4 quantizer logs two INFO lines per matrix: debug, not the job's log
                writer.log(line, level="debug" if "[INFO]" in line else "info")
                continue
            step, total = int(match.group(1)), int(match.group(2))
            now = time.monotonic()
            due = step == total or now - last_emit >= 1.0
            if total > 0 and line.startswith("Saving") and step != last_step and due:
                last_emit, last_step = now, step
                writer.emit(
                    "metric", step=step, total_steps=total, progress=step / total, elapsed_s=now - started
                )


def _move_up(partial: Path, output_dir: Path) -> list[str]:
    """Moves the finished build into OUTPUT_DIR; graph first (it names the weights file), then the
    rest sorted. Only a complete build is moved, so a cancelled one leaves nothing behind."""
    names = sorted(p.name for p in partial.iterdir() if p.is_file())
    for name in names:
        os.replace(partial / name, output_dir / name)
    return sorted(names, key=lambda n: (n != "model.onnx", n != "model.onnx.data", n))


def _file_entry(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return {"name": path.name, "size": path.stat().st_size, "sha256": digest.hexdigest()}
