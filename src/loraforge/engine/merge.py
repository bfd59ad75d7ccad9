"""Merge a LoRA adapter into its base model -> a plain model folder that
`AutoModelForCausalLM.from_pretrained` loads without PEFT."""

from __future__ import annotations

import json
import os
from pathlib import Path

from loraforge.engine.failures import ModelNotFoundError


def _base_path(adapter_dir: Path, base: str | os.PathLike[str] | None) -> str:
    if base is not None:
        return str(base)
    cfg_path = adapter_dir / "adapter_config.json"
    if not cfg_path.is_file():
        raise ModelNotFoundError(
            f"{str(adapter_dir)!r} is not a PEFT adapter folder (no adapter_config.json).",
            suggestion="Pass the run's output/ folder of a LoRA run, or a checkpoint-N folder.",
        )
    name = json.loads(cfg_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not name:
        raise ModelNotFoundError("adapter_config.json does not name its base model; pass it explicitly.")
    return str(name)


def merge_adapter(
    adapter_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    base_model: str | os.PathLike[str] | None = None,
    dtype: str = "auto",
) -> Path:
    """Loads base (from adapter_config.json unless given) + adapter, merges the LoRA deltas into
    the weights, and saves safetensors + tokenizer to OUT_DIR. Returns OUT_DIR."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = Path(adapter_dir).resolve()
    out = Path(out_dir).resolve()
    base = _base_path(adapter, base_model)
    torch_dtype = {"auto": "auto", "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[
        dtype
    ]
    # Merge on CPU in the base model's own dtype: no GPU needed, and no precision is lost.
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
    from loraforge.engine.adapter_options import prepare_base

    prepare_base(model, adapter)  # new tokens' rows and the run's RoPE scaling
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out), safe_serialization=True)
    # The run saved the tokenizer next to the adapter (chat template included); else use base's.
    tok_src = adapter if (adapter / "tokenizer_config.json").exists() else Path(base)
    AutoTokenizer.from_pretrained(str(tok_src)).save_pretrained(str(out))
    return out
