"""How big an export will be and how much memory running it takes, from the safetensors headers
alone: torch-free and instant, so the platform can show it before anyone queues a job.

File size: the tensor data at the chosen type (the same per-tensor rules as the converter, norms
and vectors F32, rows that do not split into blocks F16), each tensor's header entry and alignment,
and the metadata: for a full model the vocabulary as `gguf_tokenizer` writes it (every token string,
its type, every merge, the chat template), counted from tokenizer.json. That metadata is most of a
small model's file (60 KB of a 320 KB demo model at Q8_0), so a flat allowance for it is badly off
on small models. Memory to run: the file (llama.cpp maps it) plus a KV cache of `context` tokens at
F16 and a fixed allowance for compute buffers.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

# bytes per block and values per block of each GGML type the estimates cover
_BLOCKS: dict[str, tuple[int, int]] = {
    "f32": (4, 1),
    "f16": (2, 1),
    "bf16": (2, 1),
    "q8_0": (34, 32),
    "q4_0": (18, 32),
    "q6_k": (210, 256),
    "q5_k_m": (176, 256),  # Q5_K; the _M mix keeps a few tensors higher: a slight underestimate
    "q4_k_m": (144, 256),  # Q4_K, likewise
}
_SAFETENSORS_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "I8": 1}
_COMPUTE_ALLOWANCE = 64 << 20
_ALIGN = 32  # GGUF's default alignment of the tensor data
# One tensor's header entry: name (u64 length + ~24 bytes: `blk.N.attn_q.weight`), u32 dims, u32 type,
# u64 offset (plus a u64 per dim); its data is padded to the alignment.
_TENSOR_INFO = 8 + 24 + 4 + 4 + 8
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx", ".onnx_data", ".h5", ".msgpack")
_HEADER = 24 + 2048  # magic, version, counts; the architecture's hyperparameters and general.* keys
_LORA_TYPES = {"f32": "f32", "f16": "f16", "q8_0": "q8_0"}


def safetensors_shapes(
    model_dir: Path, single: str = "model.safetensors"
) -> dict[str, tuple[list[int], str]]:
    """name -> (shape, dtype) of every tensor, reading only each file's JSON header."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    else:
        files = [single]
    out: dict[str, tuple[list[int], str]] = {}
    for name in files:
        with (model_dir / name).open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header: dict[str, Any] = json.loads(f.read(size))
        for key, meta in header.items():
            if key != "__metadata__":
                out[key] = (list(meta["shape"]), str(meta["dtype"]))
    return out


def _tensor_bytes(name: str, shape: list[int], quant: str) -> int:
    n = 1
    for d in shape:
        n *= d
    if len(shape) <= 1 or "norm" in name:
        return n * 4
    size, block = _BLOCKS[quant]
    if block > 1 and shape[-1] % block:
        return n * 2  # falls back to F16
    return n // block * size


def _string(text: str) -> int:
    return 8 + len(text.encode("utf-8"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _chat_template(model_dir: Path) -> str | None:
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8", errors="replace")
    template = _read_json(model_dir / "tokenizer_config.json").get("chat_template")
    return template if isinstance(template, str) else None


def tokenizer_metadata_bytes(model_dir: Path, vocab_size: int) -> int:
    """Bytes of the tokenizer keys `gguf_tokenizer.write_tokenizer` writes: `vocab_size` token strings
    (ids the tokenizer lacks become `[PAD<id>]`), an int32 type each, the merges and the chat template.
    Without a readable tokenizer.json: 24 bytes a token and 32 KiB, the average of common BPE vocabs."""
    data = _read_json(model_dir / "tokenizer.json")
    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("vocab"), dict):
        return vocab_size * 24 + (32 << 10)
    by_id: dict[int, str] = {i: t for t, i in model["vocab"].items() if isinstance(i, int)}
    for added in data.get("added_tokens") or []:
        if isinstance(added, dict) and isinstance(added.get("id"), int):
            by_id[added["id"]] = str(added.get("content", ""))
    tokens = sum(_string(by_id[i]) if i in by_id else _string(f"[PAD{i}]") for i in range(vocab_size))
    merges = sum(
        _string(m if isinstance(m, str) else " ".join(str(part) for part in m))
        for m in model.get("merges") or []
    )
    template = _chat_template(model_dir)
    arrays = 3 * (8 + 32 + 4 + 4 + 8)  # each array's key, type, item type and count
    return tokens + vocab_size * 4 + merges + arrays + (_string(template) if template else 0) + 512


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def gguf_lora_bytes(adapter_dir: Path, quant: str) -> int:
    """The adapter GGUF (`gguf_lora.write_gguf_lora`): lora_a/lora_b at `quant` (2-D always; rows that
    do not split into blocks, such as lora_b's rank-wide rows, fall back to F16), no vocabulary."""
    shapes = safetensors_shapes(adapter_dir, "adapter_model.safetensors")
    data = sum(_aligned(_tensor_bytes(k, s, _LORA_TYPES[quant])) for k, (s, _) in shapes.items())
    return 24 + 512 + len(shapes) * (_TENSOR_INFO + 8 * 2) + data


def gguf_bytes(model_dir: Path, quantization: str, config: dict[str, Any] | None = None) -> int:
    """The full-model GGUF of MODEL_DIR at QUANTIZATION (a key of the block table)."""
    config = config if config is not None else json.loads((model_dir / "config.json").read_text("utf-8"))
    shapes = safetensors_shapes(model_dir)
    tied = bool(config.get("tie_word_embeddings"))
    output = "model.embed_tokens.weight" if tied else "lm_head.weight"
    written = {k: s for k, (s, _) in shapes.items() if not (tied and k == "lm_head.weight")}
    data = sum(
        # Q4_0 keeps the output projection at Q8_0 (gguf_convert.choose_qtype)
        _aligned(_tensor_bytes(k, s, "q8_0" if quantization == "q4_0" and k == output else quantization))
        for k, s in written.items()
    )
    infos = sum(_TENSOR_INFO + 8 * len(s) for s in written.values())
    return _HEADER + infos + data + tokenizer_metadata_bytes(model_dir, int(config.get("vocab_size", 0)))


def merged_bytes(model_dir: Path) -> int:
    """Merged safetensors (`merge.merge_adapter`): the base's weights at their own width (the JSON
    header ~100 bytes a tensor) and the files saved beside them (config, tokenizer, chat template)."""
    shapes = safetensors_shapes(model_dir)
    weights = sum(_prod(s) * _SAFETENSORS_BYTES.get(dt, 4) + 100 for s, dt in shapes.values())
    companions = sum(
        p.stat().st_size
        for p in model_dir.iterdir()
        if p.is_file() and not p.name.endswith(_WEIGHT_SUFFIXES) and p.name != "model.safetensors.index.json"
    )
    return weights + companions


def estimate(model_dir: Path, fmt: str, quantization: str | None, *, context: int = 4096) -> dict[str, int]:
    """{"file_bytes", "memory_bytes"} for exporting MODEL_DIR as FMT at QUANTIZATION."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    shapes = safetensors_shapes(model_dir)
    if fmt in ("gguf", "ollama") and quantization in _BLOCKS:
        file_bytes = gguf_bytes(model_dir, quantization, config)
    elif fmt == "onnx" and quantization == "int4":
        file_bytes = sum(_tensor_bytes(k, s, "q4_0") for k, (s, _) in shapes.items())
    elif fmt == "merged":
        file_bytes = merged_bytes(model_dir)
    else:  # fp32 ONNX: the weights at fp32
        file_bytes = sum(_prod(s) * 4 for s, _ in shapes.values())
    heads = int(config.get("num_attention_heads", 1))
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or int(config.get("hidden_size", 0)) // max(heads, 1))
    kv_cache = 2 * int(config.get("num_hidden_layers", 0)) * context * kv_heads * head_dim * 2
    return {"file_bytes": file_bytes, "memory_bytes": file_bytes + kv_cache + _COMPUTE_ALLOWANCE}


def _prod(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
