"""A PEFT LoRA adapter -> a GGUF LoRA adapter for `llama-cli --lora` (llama.cpp's adapter layout).

Metadata: `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`; each adapted
weight `W` becomes `<gguf name of W>.lora_a` (A, rank x in) and `.lora_b` (B, out x rank). llama.cpp
scales by alpha / rank; an rsLoRA adapter (alpha / sqrt(rank)) is written with the alpha that gives
the same scale. Llama-family q/k rows are permuted as in the full model: the permutation reorders
output rows, so it applies to B alone (P(BA) = (PB)A).

Refused: adapters that change the vocabulary (new tokens, embeddings or the LM head saved whole
through `modules_to_save`, trainable token indices): llama.cpp applies an adapter to the base
model's own vocabulary, so the new tokens could not exist there. Also refused: DoRA and per-module
rank/alpha patterns, which llama.cpp's adapter format cannot express.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraforge.engine.export.errors import (
    AdapterAddsTokensError,
    ExportCancelled,
    ExportError,
)
from loraforge.engine.export.gguf_convert import check_disk, tensor_nbytes
from loraforge.engine.export.gguf_names import NameMapper, qk_heads, read_model_info

LORA_QUANTS: dict[str, str] = {"f32": "F32", "f16": "F16", "q8_0": "Q8_0"}
_LORA_FILE_TYPES = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "q8_0": "MOSTLY_Q8_0"}
_EMBEDDING_MODULES = ("embed_tokens", "lm_head", "wte", "embed_out")


@dataclass(frozen=True)
class LoraPair:
    base_name: str  # the base model's tensor name, e.g. model.layers.0.self_attn.q_proj.weight
    a_key: str
    b_key: str


def adapter_config(adapter_dir: Path) -> dict[str, Any]:
    path = adapter_dir / "adapter_config.json"
    if not path.is_file():
        raise ExportError(f"{str(adapter_dir)!r} is not a PEFT adapter folder (no adapter_config.json)")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def check_adapter(
    config: dict[str, Any], keys: list[str], base_vocab: int | None, adapter_vocab: int | None
) -> None:
    """Refuse what llama.cpp's LoRA adapter format cannot carry (see the module doc)."""
    saved = [m for m in (config.get("modules_to_save") or []) if any(e in m for e in _EMBEDDING_MODULES)]
    whole = [k for k in keys if "lora_" not in k and any(e in k for e in _EMBEDDING_MODULES)]
    grows = adapter_vocab is not None and base_vocab is not None and adapter_vocab > base_vocab
    if saved or whole or config.get("trainable_token_indices") or grows:
        why = (
            f"its tokenizer has {adapter_vocab} tokens, the base model {base_vocab}"
            if grows
            else "it saves the embeddings / LM head whole (modules_to_save or trainable tokens)"
        )
        raise AdapterAddsTokensError(
            f"this adapter changes the vocabulary ({why}); a GGUF LoRA adapter is applied to the base "
            "model's own vocabulary, so new or retrained tokens cannot be expressed",
            suggestion="Export the merged model as GGUF instead (format `gguf` from the LoRA version).",
        )
    if config.get("use_dora"):
        raise ExportError("DoRA adapters cannot be written as a GGUF LoRA adapter; export the merged model")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ExportError("per-module rank/alpha patterns cannot be written as one GGUF adapter alpha")
    others = [k for k in keys if ".lora_A." not in k and ".lora_B." not in k]
    if others:
        raise ExportError(f"unexpected tensors in the adapter (not LoRA A/B): {', '.join(others[:5])}")


def pair_keys(keys: list[str]) -> list[LoraPair]:
    """Group PEFT's `...<module>.lora_A.weight` / `.lora_B.weight` keys by base tensor name."""
    pairs: dict[str, dict[str, str]] = {}
    for key in keys:
        part = "A" if ".lora_A." in key else "B"
        base = key.replace("base_model.model.", "", 1).replace(f".lora_{part}.weight", ".weight")
        pairs.setdefault(base, {})[part] = key
    out = []
    for base, ab in sorted(pairs.items()):
        if set(ab) != {"A", "B"}:
            raise ExportError(f"adapter tensor {base!r} lacks its lora_A or lora_B half")
        out.append(LoraPair(base, ab["A"], ab["B"]))
    return out


def effective_alpha(config: dict[str, Any]) -> float:
    """The alpha llama.cpp needs to reproduce PEFT's scale (alpha / r, or alpha / sqrt(r) for rsLoRA)."""
    alpha, rank = float(config.get("lora_alpha") or 8), int(config.get("r") or 8)
    return alpha * math.sqrt(rank) if config.get("use_rslora") else alpha


def write_gguf_lora(
    adapter_dir: Path,
    base_dir: Path,
    out_path: Path,
    quant: str = "f16",
    *,
    name: str = "adapter",
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    free_bytes: int | None = None,
) -> int:
    """Write the adapter GGUF; returns the number of tensors written."""
    import gguf
    import numpy as np
    import torch
    from safetensors import safe_open

    from loraforge.engine.export.gguf_convert import choose_qtype
    from loraforge.engine.export.gguf_names import permute_rows

    if quant not in LORA_QUANTS:
        raise ExportError(f"LoRA quantization must be one of {', '.join(LORA_QUANTS)}, got {quant!r}")
    config = adapter_config(adapter_dir)
    info = read_model_info(base_dir)
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        raise ExportError(f"{str(adapter_dir)!r} has no adapter_model.safetensors")
    with safe_open(str(weights), framework="pt") as f:
        keys = list(f.keys())
    check_adapter(config, keys, _tokenizer_size(base_dir), _tokenizer_size(adapter_dir))
    names = NameMapper(info)
    pairs = pair_keys(keys)
    if any(p.base_name == "lm_head.weight" and info.tied_embeddings for p in pairs):
        raise ExportError("the adapter adapts lm_head, which the base model ties to its embeddings")

    writer = gguf.GGUFWriter(None, info.arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, effective_alpha(config))
    writer.add_name(name)
    writer.add_file_type(int(gguf.LlamaFileType[_LORA_FILE_TYPES[quant]]))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    plan: list[tuple[str, str, Any, int | None]] = []  # (gguf name, adapter key, qtype, heads)
    with safe_open(str(weights), framework="pt") as f:
        for p in pairs:
            gname = names.gguf_name(p.base_name)
            for suffix, key in ((".lora_a", p.a_key), (".lora_b", p.b_key)):
                shape = tuple(int(d) for d in f.get_slice(key).get_shape())
                heads = qk_heads(info, p.base_name) if suffix == ".lora_b" else None
                qtype = choose_qtype(gname + suffix, shape, quant, is_output=False)
                plan.append((gname + suffix, key, qtype, heads))
                writer.add_tensor_info(
                    gname + suffix, shape, np.dtype(np.float32), tensor_nbytes(shape, qtype), raw_dtype=qtype
                )
        needed = sum(ti.nbytes + 32 for t in writer.tensors for ti in t.values()) + (1 << 20)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        check_disk(out_path.parent, needed, free_bytes)
        part = out_path.with_name(out_path.name + ".part")
        try:
            writer.write_header_to_file(part)
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for i, (_gname, key, qtype, heads) in enumerate(plan):
                if stop is not None and stop():
                    raise ExportCancelled()
                t = f.get_tensor(key)
                data = (t if t.dtype in (torch.float16, torch.float32) else t.to(torch.float32)).numpy()
                if heads is not None:
                    data = permute_rows(data, heads)
                writer.write_tensor_data(gguf.quants.quantize(data, qtype))
                if progress is not None:
                    progress(i + 1, len(plan))
            writer.close()
            part.replace(out_path)
        except BaseException:
            writer.close()
            part.unlink(missing_ok=True)
            raise
    return len(plan)


def _tokenizer_size(folder: Path) -> int | None:
    """How many tokens the folder's tokenizer has (None when it has none)."""
    if not (folder / "tokenizer_config.json").is_file() and not (folder / "tokenizer.json").is_file():
        return None
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(str(folder)))
