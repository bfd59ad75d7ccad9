"""How large an export will be and how much memory running it takes, from the safetensors headers and
config.json alone (a few kilobytes read; no torch).

File size: GGUF (full model, Ollama, a LoRA adapter) and merged safetensors come from the engine's
own estimate (`engine.export.estimate`: the converter's per-tensor rules, each tensor's header entry
and alignment, and the vocabulary counted from tokenizer.json, which is most of a small model's
file); ONNX from every tensor at the bytes per weight of the quantization, block scales included.
A LoRA version exported to a full format is merged first, so it is sized as its base model; merged
safetensors also carry the config and tokenizer files. Memory to run ≈ the file plus
the KV cache for the context length (2 × layers × KV heads × head dim × context, F16 in llama.cpp,
F32 in ONNX Runtime's CPU graphs).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraforge.engine.export import estimate as engine_estimate
from loraforge.services.models import files as model_files

# bytes per weight, block scales included; (block size, bytes per block) where a block size applies
_BLOCK: dict[str, tuple[int, float]] = {
    "q8_0": (32, 34), "q4_0": (32, 18),
    "q4_k_m": (256, 4.89 * 256 / 8), "q5_k_m": (256, 5.69 * 256 / 8), "q6_k": (256, 210),
    "int4": (32, 16 + 4),  # MatMulNBits: 4-bit weights, an fp32 scale per block of 32
}  # fmt: skip
_PLAIN = {"f32": 4, "fp32": 4, "f16": 2, "bf16": 2}
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}  # fmt: skip
DEFAULT_CONTEXT = 4096  # llama.cpp's and Ollama's default context; capped at the model's own


@dataclass(frozen=True)
class Estimate:
    file_bytes: int | None
    memory_bytes: int | None
    context_length: int | None
    param_count: int | None
    note: str | None = None


def _tensors(folder: Path) -> list[tuple[str, str, list[int]]]:
    out: list[tuple[str, str, list[int]]] = []
    for path in sorted(folder.glob("*.safetensors")):
        found = model_files.safetensors_tensors(path)
        if found is None:
            return []
        out.extend((name, dtype, shape) for name, (dtype, shape) in found.items())
    return out


def _tensor_bytes(dtype: str, shape: list[int], quantization: str | None) -> float:
    count = math.prod(shape)
    if quantization is None:  # merged weights keep the source's dtype
        return count * _DTYPE_BYTES.get(dtype, 4)
    if len(shape) < 2:
        return count * 4.0
    if quantization in _PLAIN:
        return count * float(_PLAIN[quantization])
    block, per_block = _BLOCK[quantization]
    if shape[-1] % block:
        return count * 2.0  # rows that do not split into blocks: F16, as llama.cpp does
    return count / block * per_block


def _config(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / model_files.CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _int(config: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def kv_cache_bytes(config: dict[str, Any], context: int, bytes_per_value: int) -> int | None:
    layers = _int(config, "num_hidden_layers", "n_layer")
    heads = _int(config, "num_attention_heads", "n_head")
    hidden = _int(config, "hidden_size", "n_embd")
    if layers is None or heads is None or hidden is None:
        return None
    kv_heads = _int(config, "num_key_value_heads") or heads
    head_dim = _int(config, "head_dim") or hidden // heads
    return 2 * layers * kv_heads * head_dim * context * bytes_per_value


def _file_bytes(base: Path, adapter: Path | None, fmt: str, quantization: str | None) -> int | None:
    """The engine's size of the files it will write; None where it has no rule (ONNX) or the
    headers cannot be read (then the per-tensor sum here stands in)."""
    try:
        if fmt in ("gguf", "ollama") and quantization is not None:
            return engine_estimate.gguf_bytes(base, quantization)
        if fmt == "gguf_lora" and adapter is not None and quantization is not None:
            return engine_estimate.gguf_lora_bytes(adapter, quantization)
        if fmt == "merged":
            return engine_estimate.merged_bytes(base)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


def estimate(
    *, base: Path, adapter: Path | None, fmt: str, quantization: str | None, context: int | None = None
) -> Estimate:
    """`base`: the base model's folder; `adapter`: the LoRA folder for adapter versions (merged in
    memory for every format except `gguf_lora`, which converts the adapter alone)."""
    config = _config(base)
    model_context = _int(config, "max_position_embeddings", "n_positions")
    if context is None:
        context = min(DEFAULT_CONTEXT, model_context) if model_context else DEFAULT_CONTEXT
    source = adapter if fmt == "gguf_lora" and adapter is not None else base
    tensors = _tensors(source)
    if not tensors:
        return Estimate(None, None, context, None, note="the model's safetensors headers could not be read")
    params = sum(math.prod(shape) for _, _, shape in tensors)
    file_bytes = _file_bytes(base, adapter, fmt, quantization)
    if file_bytes is None:
        file_bytes = int(sum(_tensor_bytes(dtype, shape, quantization) for _, dtype, shape in tensors))
    if fmt == "gguf_lora":
        return Estimate(file_bytes, None, context, params, note="loaded on top of its base model")
    kv = kv_cache_bytes(config, context, 4 if fmt == "onnx" else 2)
    memory = file_bytes + kv if kv is not None else None
    return Estimate(file_bytes, memory, context, params)
