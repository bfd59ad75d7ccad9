"""The model under evaluation: base folder (or Hub id), optional LoRA adapter merged in, KV cache on.

Paths, tokenizer and precision come from `engine.model_loading`, the same rules as training; what
differs is the model's use. Training wraps the model for gradients and turns the KV cache off;
evaluation merges the adapter (one plain model: no per-layer LoRA detour on every token, as
LLaMA-Factory does for inference) and generates with the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraforge.engine.failures import ModelNotFoundError, ModelUnreadableError
from loraforge.engine.model_loading import choose_precision, load_tokenizer, resolve_model_path

if TYPE_CHECKING:
    from loraforge.engine.eval.spec import EvalSpec


def pick_device(spec: EvalSpec) -> str:
    import torch

    return "cuda" if spec.devices != "cpu" and torch.cuda.is_available() else "cpu"


def load_eval_model(spec: EvalSpec, device: str) -> tuple[Any, Any]:
    """(model in eval mode on `device`, tokenizer). A fine-tuned adapter's own tokenizer wins."""
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(spec)
    adapter = Path(spec.adapter_name_or_path).expanduser() if spec.adapter_name_or_path else None
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        raise ModelNotFoundError(
            f"adapter_name_or_path {str(adapter)!r} is not a LoRA adapter folder (no adapter_config.json).",
            suggestion="Point it at a training run's output folder, or leave it out to evaluate the base.",
        )
    tokenizer_dir = adapter if adapter is not None and (adapter / "tokenizer_config.json").is_file() else path
    tokenizer = load_tokenizer(tokenizer_dir, spec)
    precision = choose_precision(spec, device)
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(
            path, dtype=precision.dtype, trust_remote_code=spec.trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise ModelUnreadableError(f"Could not load the model from {str(path)!r}: {exc}") from exc
    if adapter is not None:
        from peft import PeftModel

        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))  # the run added tokens (template stop words)
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    model.config.use_cache = True
    model.to(device)
    model.eval()
    return model, tokenizer


def stop_token_ids(model: Any, tokenizer: Any, template: Any) -> list[int]:
    """Tokens that end an answer: eos (tokenizer's and generation config's) and the template's stop words."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (tokenizer.eos_token_id, configured):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(v for v in value if isinstance(v, int))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[word] for word in getattr(template, "stop_words", ()) if word in vocab)
    return sorted(ids)
