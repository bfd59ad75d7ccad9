"""A model folder's facts, read without torch: weights kind, architecture, parameter count, context
length, chat template. Sizes and `.tar.gz` streams are `services.platform.archives`'.

The parameter count comes from the safetensors headers (8-byte little-endian header length, then a
JSON header naming each tensor's shape), so a 70B model is counted by reading a few kilobytes.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"
CONFIG = "config.json"
# A header this large would be a broken or hostile file, not a model: stop reading there.
_MAX_HEADER_BYTES = 100 * 1024 * 1024
_MAX_JSON_BYTES = 4 * 1024 * 1024


def weights_kind(folder: Path) -> str | None:
    """`adapter` (a PEFT adapter), `full` (config.json and weights), or None (not a model folder)."""
    if (folder / ADAPTER_CONFIG).is_file():
        return "adapter"
    if (folder / CONFIG).is_file() and any(
        any(folder.glob(pattern)) for pattern in ("*.safetensors", "*.bin", "*.pt")
    ):
        return "full"
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        if not path.is_file() or path.stat().st_size > _MAX_JSON_BYTES:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def safetensors_tensors(path: Path) -> dict[str, tuple[str, list[int]]] | None:
    """Each tensor of one safetensors file as (dtype, shape), from its header; None if unreadable."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                return None
            (length,) = struct.unpack("<Q", raw)
            if length > _MAX_HEADER_BYTES:
                return None
            header = json.loads(fh.read(length))
    except (OSError, ValueError, struct.error):
        return None
    if not isinstance(header, dict):
        return None
    tensors: dict[str, tuple[str, list[int]]] = {}
    for name, entry in header.items():
        if name == "__metadata__" or not isinstance(entry, dict):
            continue
        shape = entry.get("shape")
        if isinstance(shape, list) and all(isinstance(d, int) for d in shape):
            tensors[name] = (str(entry.get("dtype", "")), shape)
    return tensors


def safetensors_params(path: Path) -> int | None:
    """Sum of the element counts of every tensor in one safetensors file; None if unreadable."""
    tensors = safetensors_tensors(path)
    if tensors is None:
        return None
    return sum(math.prod(shape) for _, shape in tensors.values())


def param_count(folder: Path) -> int | None:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    counts = [safetensors_params(f) for f in files]
    if any(c is None for c in counts):
        return None
    return sum(c for c in counts if c is not None)


def detect_info(folder: Path) -> dict[str, Any]:
    """What the registry shows about a model folder. Keys absent when unknown."""
    info: dict[str, Any] = {}
    kind = weights_kind(folder)
    if kind is not None:
        info["weights"] = kind
    config = _read_json(folder / CONFIG)
    adapter = _read_json(folder / ADAPTER_CONFIG)
    architectures = config.get("architectures")
    if isinstance(architectures, list) and architectures and isinstance(architectures[0], str):
        info["architecture"] = architectures[0]
    elif isinstance(config.get("model_type"), str):
        info["architecture"] = config["model_type"]
    if isinstance(config.get("model_type"), str):
        info["model_type"] = config["model_type"]
    context = config.get("max_position_embeddings")
    if isinstance(context, int) and not isinstance(context, bool):
        info["context_length"] = context
    if adapter:
        info["peft_type"] = adapter.get("peft_type")
        if isinstance(adapter.get("r"), int):
            info["lora_rank"] = adapter["r"]
        if isinstance(adapter.get("base_model_name_or_path"), str):
            info["adapter_base"] = adapter["base_model_name_or_path"]
    count = param_count(folder)
    if count is not None:
        info["param_count"] = count
    tokenizer_config = _read_json(folder / "tokenizer_config.json")
    info["chat_template"] = (
        bool(tokenizer_config.get("chat_template")) or (folder / "chat_template.jinja").is_file()
    )
    return info
