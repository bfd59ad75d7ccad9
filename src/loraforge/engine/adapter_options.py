"""The adapter variants and long context at run time: PiSSA, LoRA+, new special tokens, RoPE scaling.

Each follows LLaMA-Factory (LF) so its YAMLs mean the same thing here:
- `new_special_tokens` are added to the tokenizer before the data is tokenised; the embeddings grow
  only when the tokenizer outgrows them (exactly to `len(tokenizer)`, so a loader that resizes to the
  saved tokenizer rebuilds the same shapes), and with LoRA the input and output embedding modules
  train whole (`modules_to_save`), LF's `resize_vocab` behaviour, unless `additional_target` says
  otherwise.
- `rope_scaling` sets `config.rope_parameters` (transformers 5's home for RoPE settings) with
  factor ceil(cutoff_len / max_position_embeddings), and raises max_position_embeddings to cutoff_len.
- `pissa_init` uses PEFT's PiSSA initialisation; the final adapter is saved converted to plain
  LoRA (rank 2r) over the original base, because every loader here applies adapters to that base.
- `loraplus_lr_ratio` builds LF's LoRA+ parameter groups and hands the optimizer to the Trainer
  before training, so every stage (sft, pt, dpo) gets it through the Trainer's own path.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from loraforge.engine.spec_adapters import split_tokens

_NOTES = "_loraforge_notes"
_PISSA_INIT = "_loraforge_pissa_init"


def _get(spec: Any, name: str, default: Any = None) -> Any:
    value = getattr(spec, name, default)
    return default if value is None else value


# -- tokens ---------------------------------------------------------------------------------------


def add_new_tokens(tokenizer: Any, spec: Any) -> int:
    """Adds `new_special_tokens` to the tokenizer (before tokenisation); returns how many were new."""
    tokens = split_tokens(_get(spec, "new_special_tokens", None))
    if not tokens:
        return 0
    # transformers 5 renamed LF's `additional_special_tokens` to `extra_special_tokens`; keep the
    # tokenizer's own extra tokens (LF's replace_additional_special_tokens=False).
    return int(
        tokenizer.add_special_tokens({"extra_special_tokens": tokens}, replace_extra_special_tokens=False)
    )


def resize_for_tokenizer(model: Any, tokenizer: Any) -> bool:
    """Grows the embeddings (and an untied head) to the tokenizer when it outgrew them; new rows
    start at the mean of the old ones (transformers' mean resizing, as LF's noisy mean)."""
    if tokenizer is None:
        return False
    rows = int(model.get_input_embeddings().weight.shape[0])
    if len(tokenizer) <= rows:
        return False
    model.resize_token_embeddings(len(tokenizer))
    return True


def embedding_module_names(model: Any) -> list[str]:
    """The short names (e.g. embed_tokens, lm_head) of the input and output embedding modules."""
    wanted = [m for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None]
    names: list[str] = []
    for name, module in model.named_modules():
        if any(module is w for w in wanted):
            short = name.rsplit(".", 1)[-1]
            if short not in names:
                names.append(short)
    return names


# -- RoPE -----------------------------------------------------------------------------------------


def apply_rope_scaling(config: Any, spec: Any) -> str | None:
    """Writes the RoPE scaling into `config` before the model is built; returns a note for the log."""
    kind = _get(spec, "rope_scaling", None)
    if not kind:
        return None
    current = int(getattr(config, "max_position_embeddings", 0) or 0)
    wanted = int(_get(spec, "cutoff_len", 0))
    if not current or wanted <= current:
        return f"rope_scaling: {kind} not applied: cutoff_len {wanted} fits max_position_embeddings {current}"
    factor = float(math.ceil(wanted / current))
    params = dict(getattr(config, "rope_parameters", None) or {})
    params.update(rope_type=kind, factor=factor)
    if kind in ("dynamic", "yarn"):
        params["original_max_position_embeddings"] = current
    config.rope_parameters = params
    config.max_position_embeddings = wanted
    return f"rope_scaling: {kind} × {factor:g} (max positions {current} → {wanted})"


def prepare_base(model: Any, adapter_dir: Path) -> list[str]:
    """Makes a freshly loaded base fit an adapter trained here before merging it: embeddings grown
    to the adapter's tokenizer, and the run's RoPE scaling (from its spec.json) in the config that
    the merged model is saved with. Returns notes."""
    import json
    from types import SimpleNamespace

    done: list[str] = []
    if (adapter_dir / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        if resize_for_tokenizer(model, AutoTokenizer.from_pretrained(str(adapter_dir))):
            done.append("embeddings grown to the adapter's tokenizer")
    spec_file = adapter_dir / "spec.json"
    if spec_file.is_file():
        raw = json.loads(spec_file.read_text(encoding="utf-8"))
        if isinstance(raw, dict) and raw.get("rope_scaling"):
            run = SimpleNamespace(rope_scaling=raw["rope_scaling"], cutoff_len=raw.get("cutoff_len", 0))
            note = apply_rope_scaling(model.config, run)
            if note:
                done.append(note)
    return done


# -- LoRA config ------------------------------------------------------------------------------------


def lora_kwargs(model: Any, spec: Any) -> dict[str, Any]:
    """Extra LoraConfig arguments: PiSSA initialisation and the modules trained whole."""
    kwargs: dict[str, Any] = {}
    if _get(spec, "pissa_init", False):
        n_iter = int(_get(spec, "pissa_iter", 16))
        kwargs["init_lora_weights"] = "pissa" if n_iter == -1 else f"pissa_niter_{n_iter}"
    extra = [m.strip() for m in str(_get(spec, "additional_target", "") or "").split(",") if m.strip()]
    if not extra and split_tokens(_get(spec, "new_special_tokens", None)):
        extra = embedding_module_names(model)  # LF: a resized vocabulary trains its embeddings
    if extra:
        kwargs["modules_to_save"] = extra
        if getattr(model.config, "tie_word_embeddings", False) and set(extra) & set(
            embedding_module_names(model)
        ):
            # One shared matrix keeps training: an untied copy of each would be dropped again by
            # any save (or merge) that ties them by the config.
            kwargs["ensure_weight_tying"] = True
    return kwargs


def after_lora(model: Any, spec: Any) -> None:
    """Keeps PiSSA's initial adapter (in memory) for the conversion at save time."""
    if not _get(spec, "pissa_init", False):
        return
    from peft import get_peft_model_state_dict

    state = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
    object.__setattr__(model, _PISSA_INIT, state)


def unfreeze_embeddings(model: Any) -> None:
    """freeze tuning with new tokens: the new rows must learn, so the embeddings train."""
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        if module is not None:
            for p in module.parameters():
                p.requires_grad_(True)


def add_note(model: Any, note: str | None) -> None:
    if note:
        notes = list(getattr(model, _NOTES, []))
        object.__setattr__(model, _NOTES, [*notes, note])


def notes(model: Any) -> list[str]:
    return list(getattr(model, _NOTES, []))


# -- LoRA+ --------------------------------------------------------------------------------------------


def loraplus_optimizer(trainer: Any, spec: Any) -> Any | None:
    """LF's LoRA+ groups: A (and other weights) at lr, B and 1-d params at lr × ratio, LoRA
    embedding B at loraplus_lr_embedding. None when LoRA+ is off."""
    ratio = _get(spec, "loraplus_lr_ratio", None)
    if ratio is None:
        return None
    from transformers import Trainer

    model = trainer.model
    args = trainer.args
    decay = set(trainer.get_decay_parameter_names(model))
    groups: dict[str, list[Any]] = {"lora_a": [], "lora_b": [], "lora_b_nodecay": [], "embedding": []}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if "lora_embedding_B" in name:
            groups["embedding"].append(param)
        elif "lora_B" in name or param.ndim == 1:
            groups["lora_b" if name in decay else "lora_b_nodecay"].append(param)
        else:
            groups["lora_a"].append(param)
    lr = float(args.learning_rate)
    wd = float(args.weight_decay)
    param_groups = [
        {"params": groups["lora_a"], "lr": lr, "weight_decay": wd},
        {"params": groups["lora_b"], "lr": lr * float(ratio), "weight_decay": wd},
        {"params": groups["lora_b_nodecay"], "lr": lr * float(ratio), "weight_decay": 0.0},
        {
            "params": groups["embedding"],
            "lr": float(_get(spec, "loraplus_lr_embedding", 1e-6)),
            "weight_decay": wd,
        },
    ]
    param_groups = [g for g in param_groups if g["params"]]
    optim_cls, optim_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    optim_kwargs = {k: v for k, v in optim_kwargs.items() if k != "lr"}
    return optim_cls(param_groups, lr=lr, **optim_kwargs)


def prepare_trainer(trainer: Any, spec: Any) -> str | None:
    """Installs the LoRA+ optimizer (the Trainer keeps an optimizer it already has); returns a note."""
    optimizer = loraplus_optimizer(trainer, spec)
    if optimizer is None:
        return None
    trainer.optimizer = optimizer
    lrs = sorted({float(g["lr"]) for g in optimizer.param_groups})
    return f"LoRA+: ratio {spec.loraplus_lr_ratio:g}, learning rates {', '.join(f'{x:g}' for x in lrs)}"


# -- output -----------------------------------------------------------------------------------------


def finish_output(model: Any, spec: Any, out: Path) -> str | None:
    """Rewrites a PiSSA adapter in `out` as plain LoRA over the original base; returns a note."""
    initial = getattr(model, _PISSA_INIT, None)
    if initial is None:
        return None
    from safetensors.torch import load_file, save_file

    weights = out / "adapter_model.safetensors"
    # PEFT's conversion keeps only the LoRA matrices; the modules trained whole (modules_to_save,
    # e.g. the embeddings of new tokens) are the same in both forms, so they are kept as saved.
    whole = {k: v for k, v in load_file(str(weights)).items() if "lora_" not in k}
    with tempfile.TemporaryDirectory(prefix="pissa-init-") as tmp:
        # Only A0/B0 matter to the conversion, but PEFT loads the initial adapter like any other, so
        # it must carry the whole modules too (their values are not used).
        model.peft_config["default"].save_pretrained(tmp)
        init = {**whole, **{k: v.contiguous() for k, v in initial.items() if "lora_" in k}}
        save_file(init, str(Path(tmp) / "adapter_model.safetensors"))
        model.save_pretrained(str(out), path_initial_model_for_weight_conversion=tmp)
    if whole:
        converted = load_file(str(weights))
        converted.update(whole)
        save_file(converted, str(weights), metadata={"format": "pt"})
    return "pissa_convert: the adapter was saved as plain LoRA (rank 2r) over the original base"
