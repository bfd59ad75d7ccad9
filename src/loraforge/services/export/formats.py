"""What can be exported on this server, and the rules a request must follow.

GGUF (F32/F16/BF16/Q8_0/Q4_0) is written by the engine with the `gguf` package; llama.cpp's K-quants
need `llama-cpp-python` (the engine says whether it is usable: `loraforge.engine.export.kquants`);
ONNX needs `onnxruntime-genai`. A choice that cannot run here is listed with the reason and refused
at request time, never queued to fail later.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

from loraforge.engine.export import kquants
from loraforge.engine.export import spec as export_spec

# The engine's vocabulary (torch-free module): one list of formats, quantizations and defaults.
EXPORT_FORMATS = export_spec.FORMATS
K_QUANTS = export_spec.K_QUANTS
DEFAULT_QUANTIZATION: dict[str, str | None] = dict(export_spec.DEFAULT_QUANT)
# The `format` column of the version an export makes (merged weights are plain safetensors).
VERSION_FORMAT = {"gguf": "gguf", "gguf_lora": "gguf_lora", "ollama": "ollama", "onnx": "onnx",
                  "merged": "safetensors"}  # fmt: skip
# Formats made from a LoRA adapter version only (a full version has nothing to merge or to convert).
ADAPTER_ONLY = frozenset({"gguf_lora", "merged"})
KQUANT_REASON = "needs llama.cpp's quantizer: install the optional extra (pip install '.[gguf]')"


@dataclass(frozen=True)
class Choice:
    name: str
    available: bool
    reason: str | None = None


@dataclass(frozen=True)
class FormatInfo:
    name: str
    available: bool
    reason: str | None
    needs_adapter: bool
    default_quantization: str | None
    quantizations: list[Choice]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@functools.cache
def kquants_status() -> tuple[bool, str]:
    """The engine's answer: (True, "") when llama.cpp's quantizer is installed, else (False, the fix).
    Cached: it only changes when packages are installed, which restarts the server."""
    try:
        ok, why = kquants.available()
    except Exception:  # a broken optional build is "unavailable", not a server error
        return False, KQUANT_REASON
    return bool(ok), "" if ok else (why or KQUANT_REASON)


def format_reason(fmt: str) -> str | None:
    """Why a whole format cannot be exported here, or None."""
    if fmt in ("gguf", "gguf_lora", "ollama") and not _installed("gguf"):
        return "needs the gguf package"
    if fmt == "onnx" and not _installed("onnxruntime_genai"):
        return "needs onnxruntime-genai (pip install onnxruntime-genai)"
    return None


def quantization_reason(fmt: str, quantization: str) -> str | None:
    if quantization in K_QUANTS:
        ok, why = kquants_status()
        return None if ok else why
    return None


def quantizations(fmt: str) -> tuple[str, ...]:
    """Every quantization of a format, K-quants included (availability is `quantization_reason`'s)."""
    return export_spec.quantizations(fmt) if fmt in EXPORT_FORMATS else ()


def catalog() -> list[FormatInfo]:
    out: list[FormatInfo] = []
    for fmt in EXPORT_FORMATS:
        reason = format_reason(fmt)
        choices = []
        for quant in quantizations(fmt):
            why = reason or quantization_reason(fmt, quant)
            choices.append(Choice(name=quant, available=why is None, reason=why))
        out.append(
            FormatInfo(
                name=fmt,
                available=reason is None,
                reason=reason,
                needs_adapter=fmt in ADAPTER_ONLY,
                default_quantization=DEFAULT_QUANTIZATION[fmt],
                quantizations=choices,
            )
        )
    return out
