"""Spec rules for the adapter variants and long context: PiSSA, LoRA+, new special tokens.

Torch-free like the rest of the spec (invariant 1): the server refuses bad combinations at submit
with the same messages the engine would give. What the keys do at run time is
`engine/adapter_options.py`.
"""

from __future__ import annotations

from typing import Any

MAX_NEW_TOKENS = 1024  # new_special_tokens: each one is an embedding row (and an LM-head row)
MAX_TOKEN_CHARS = 128


def split_tokens(text: str | None) -> list[str]:
    """`new_special_tokens` as a list, in order, without blanks or repeats."""
    seen: dict[str, None] = {}
    for part in (text or "").split(","):
        token = part.strip()
        if token:
            seen.setdefault(token, None)
    return list(seen)


def normalise_new_tokens(value: Any) -> Any:
    """LF writes `new_special_tokens` as one comma-separated string; a YAML list is accepted too.
    Kept as the canonical comma-separated string so a dumped spec reloads the same."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        return value  # pydantic reports the type
    tokens = split_tokens(value)
    if len(tokens) > MAX_NEW_TOKENS:
        raise ValueError(f"at most {MAX_NEW_TOKENS} new tokens (got {len(tokens)})")
    too_long = [t for t in tokens if len(t) > MAX_TOKEN_CHARS]
    if too_long:
        raise ValueError(f"token {too_long[0][:40]!r}… is longer than {MAX_TOKEN_CHARS} characters")
    return ",".join(tokens) or None


def adapter_problems(spec: Any) -> list[str]:
    """Combinations of the adapter keys that cannot work, each naming its keys."""
    problems: list[str] = []
    lora = spec.finetuning_type == "lora"
    if spec.pissa_init:
        if not lora:
            problems.append(f"pissa_init requires finetuning_type: lora, not {spec.finetuning_type}")
        if spec.quantization_bit is not None:
            # PiSSA rewrites the base weights as the residual W - BA, which a quantised base cannot hold.
            problems.append("pissa_init cannot be combined with quantization_bit (QLoRA)")
        if spec.use_dora:
            problems.append("pissa_init cannot be combined with use_dora")
        if spec.adapter_name_or_path:
            problems.append("pissa_init initialises a new adapter; it cannot continue adapter_name_or_path")
        if spec.pissa_iter == 0:
            problems.append("pissa_iter must be -1 (exact SVD) or a positive number of iterations")
        if not spec.pissa_convert:
            # Inference, merging and export apply adapters to the original base; an unconverted PiSSA
            # adapter only works over the residual base the run built in memory.
            problems.append(
                "pissa_convert: false is not supported; PiSSA adapters are always saved converted to "
                "plain LoRA so they apply to the original base model"
            )
    if spec.loraplus_lr_ratio is not None and not lora:
        problems.append(f"loraplus_lr_ratio requires finetuning_type: lora, not {spec.finetuning_type}")
    if spec.rope_scaling is not None and spec.stage == "merge":
        problems.append("rope_scaling applies to training stages, not stage: merge")
    return problems
