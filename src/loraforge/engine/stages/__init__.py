"""Training stages. One file per stage, found by name: adding kto/orpo/grpo means adding
`stages/kto.py` (and the name in the spec's `stage` field), not branches elsewhere.

A stage module provides:
  NEEDS_CHAT_TEMPLATE: bool             - whether rows are rendered through a chat template
  build_trainer(ctx: StageContext) -> transformers.Trainer
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


@dataclass
class StageContext:
    spec: Any  # JobSpec
    model: Any  # PreTrainedModel or PeftModel, method already applied
    tokenizer: Any
    data: Any  # PreparedData: train_dataset, eval_dataset, collator, stats
    train_kwargs: dict[str, Any]  # TrainingArguments fields shared by every stage
    callbacks: list[Any] = field(default_factory=list)


def load_stage(name: str) -> ModuleType:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"invalid stage name {name!r}")
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{name}":
            raise ValueError(
                f"stage {name!r} is not implemented (no loraforge/engine/stages/{name}.py)"
            ) from exc
        raise
    if not hasattr(module, "build_trainer"):
        raise ValueError(f"stage module {module.__name__} has no build_trainer()")
    return module
