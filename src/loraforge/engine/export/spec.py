"""The `export` block of an export job's spec.json, checked before any work starts.

    {"model_name_or_path": str, "adapter_name_or_path": str | null,
     "format": "gguf" | "gguf_lora" | "ollama" | "onnx" | "merged", "quantization": str | null,
     "template": "auto" | <chat template name>, "verify": true, "name": str}

Every rejection is an `invalid_input` error naming the field; a K-quant without llama.cpp's quantizer
is `quantization_unavailable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loraforge.engine.export.errors import ExportError, QuantizationUnavailableError

FORMATS = ("gguf", "gguf_lora", "ollama", "onnx", "merged")
GGUF_FULL = ("f32", "f16", "bf16", "q8_0", "q4_0")
K_QUANTS = ("q4_k_m", "q5_k_m", "q6_k")
LORA = ("f32", "f16", "q8_0")
ONNX = ("fp32", "int4")
DEFAULT_QUANT = {"gguf": "q8_0", "ollama": "q8_0", "gguf_lora": "f16", "onnx": "fp32", "merged": None}


@dataclass(frozen=True)
class ExportSpec:
    model_name_or_path: str
    adapter_name_or_path: str | None
    format: str
    quantization: str | None
    template: str = "auto"
    verify: bool = True
    name: str = "model"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def quantizations(fmt: str) -> tuple[str, ...]:
    """Every quantization a format can take (K-quants included: availability is checked apart)."""
    return {
        "gguf": GGUF_FULL + K_QUANTS,
        "ollama": GGUF_FULL + K_QUANTS,
        "gguf_lora": LORA,
        "onnx": ONNX,
        "merged": (),
    }[fmt]


def _str(block: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = block.get(key)
    if value is None or value == "":
        if required:
            raise ExportError(f"export.{key} is required", field=key)
        return None
    if not isinstance(value, str):
        raise ExportError(f"export.{key} must be a string", field=key)
    return value


def parse_export_spec(raw: dict[str, Any]) -> ExportSpec:
    """The job's `export` block (`raw` is the whole spec.json, or the block itself)."""
    block = raw.get("export", raw)
    if not isinstance(block, dict):
        raise ExportError("spec.json has no `export` object", field="export")
    fmt = _str(block, "format", required=True)
    if fmt not in FORMATS:
        raise ExportError(f"export.format must be one of {', '.join(FORMATS)}, got {fmt!r}", field="format")
    model = _str(block, "model_name_or_path", required=True)
    adapter = _str(block, "adapter_name_or_path")
    quant = (_str(block, "quantization") or DEFAULT_QUANT[fmt] or "").lower() or None
    allowed = quantizations(fmt)
    if fmt == "merged" and quant is not None:
        raise ExportError("merged safetensors take no quantization", field="quantization")
    if fmt != "merged" and quant not in allowed:
        raise ExportError(
            f"quantization for {fmt} must be one of {', '.join(allowed)}, got {quant!r}", field="quantization"
        )
    if quant in K_QUANTS:
        from loraforge.engine.export import kquants

        ok, why = kquants.available()
        if not ok:
            raise QuantizationUnavailableError(f"{quant} needs llama.cpp's quantizer: {why}")
    if fmt in ("gguf_lora", "merged") and not adapter:
        raise ExportError(f"format {fmt} needs a LoRA adapter source", field="adapter_name_or_path")
    template = _str(block, "template") or "auto"
    verify = block.get("verify", True)
    if not isinstance(verify, bool):
        raise ExportError("export.verify must be true or false", field="verify")
    name = _str(block, "name") or "model"
    assert model is not None and fmt is not None  # required above
    return ExportSpec(model, adapter, fmt, quant, template, verify, name)
