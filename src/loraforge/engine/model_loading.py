"""Model and tokenizer loading: where the weights come from, in which precision, which
parameters train (LoRA / rsLoRA / DoRA / QLoRA / full / freeze).

Hub ids are resolved into a local folder *before* anything is loaded (the shared cache, then
offline loading), so the Trainer never reaches for the network on its own.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from loraforge.engine import adapter_options
from loraforge.engine.failures import (
    ChatTemplateMissingError,
    MissingDependencyError,
    ModelNotFoundError,
    ModelUnreadableError,
    qlora_without_cuda,
)

# Files worth downloading from a model repository (no *.bin when safetensors exist, no
# onnx/gguf/original checkpoints).
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.tiktoken", "*.txt", "*.py", "*.jinja"]
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def _opt(spec: Any, name: str, default: Any = None) -> Any:
    """Spec fields that are ours rather than LLaMA-Factory's may not exist in every spec version."""
    value = getattr(spec, name, default)
    return default if value is None else value


def model_cache_dir() -> Path:
    """The shared model cache (one per host; executors point LORAFORGE_MODEL_CACHE at data_dir/cache)."""
    root = os.environ.get("LORAFORGE_MODEL_CACHE") or os.environ.get("HF_HUB_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "loraforge" / "models"


def resolve_model_path(spec: Any) -> Path:
    """A local folder for `model_name_or_path`: itself if it exists, else a Hub / ModelScope
    snapshot in the shared cache (downloaded once; later runs resolve offline)."""
    name = str(spec.model_name_or_path)
    local = Path(name).expanduser()
    if local.exists():
        return _check_model_dir(local.resolve())
    if not _HUB_ID.match(name) or name.startswith((".", "/", "~")):
        raise ModelNotFoundError(
            f"Model folder {name!r} does not exist.",
            suggestion="Point model_name_or_path at a folder with config.json and *.safetensors, "
            "or at a Hub id such as Qwen/Qwen2.5-0.5B-Instruct.",
        )
    hub = str(_opt(spec, "model_hub", "") or os.environ.get("LORAFORGE_MODEL_HUB", "huggingface")).lower()
    if os.environ.get("USE_MODELSCOPE_HUB", "0").lower() in {"1", "true"}:  # LLaMA-Factory's switch
        hub = "modelscope"
    revision = _opt(spec, "model_revision", None) or None
    cache = model_cache_dir()
    try:
        if hub == "modelscope":
            try:
                from modelscope import snapshot_download as ms_download
            except ImportError as exc:
                raise MissingDependencyError(
                    "ModelScope was requested but the modelscope package is not installed.",
                    suggestion="pip install modelscope, or use a Hugging Face id / local path.",
                ) from exc
            path = ms_download(name, revision=revision or "master", cache_dir=str(cache / "modelscope"))
        else:
            from huggingface_hub import snapshot_download

            path = snapshot_download(
                name, revision=revision, cache_dir=str(cache / "huggingface"), allow_patterns=_HUB_PATTERNS
            )
    except (MissingDependencyError, ModelNotFoundError):
        raise
    except Exception as exc:
        raise ModelNotFoundError(
            f"Could not fetch model {name!r} from {hub}: {exc}",
            suggestion="Check the id and network access, or download the model and use its local path.",
        ) from exc
    return _check_model_dir(Path(path))


def _check_model_dir(path: Path) -> Path:
    if not path.is_dir():
        raise ModelNotFoundError(f"Model path {str(path)!r} is not a folder.")
    if not (path / "config.json").is_file():
        raise ModelUnreadableError(
            f"Model folder {str(path)!r} has no config.json.",
            suggestion="A model folder needs config.json, the weights (*.safetensors) and tokenizer files.",
        )
    weights = [
        p for p in path.iterdir() if p.suffix in {".safetensors", ".bin"} or p.name.endswith(".index.json")
    ]
    if not weights:
        raise ModelUnreadableError(
            f"Model folder {str(path)!r} has no weight files (*.safetensors).",
            suggestion="Copy or download the model's *.safetensors files into the folder.",
        )
    return path


# -- precision ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Precision:
    name: str  # bf16 | fp16 | fp32
    dtype: torch.dtype
    bf16: bool  # TrainingArguments flags (mixed precision via autocast)
    fp16: bool


def choose_precision(spec: Any, device: str) -> Precision:
    """`auto` picks bf16 on GPUs that support it, fp16 on older GPUs, fp32 on CPU (CPU autocast
    in bf16 is slower than fp32 on most hosts and changes the loss)."""
    wanted = str(_opt(spec, "precision", "auto"))
    if wanted == "auto":
        if getattr(spec, "bf16", False):
            wanted = "bf16"
        elif getattr(spec, "fp16", False):
            wanted = "fp16"
        elif device == "cuda":
            wanted = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            wanted = "fp32"
    if wanted == "bf16":
        return Precision("bf16", torch.bfloat16, bf16=True, fp16=False)
    if wanted == "fp16":
        if device != "cuda":
            return Precision("fp32", torch.float32, bf16=False, fp16=False)  # fp16 autocast is CUDA-only
        return Precision("fp16", torch.float16, bf16=False, fp16=True)
    return Precision("fp32", torch.float32, bf16=False, fp16=False)


# -- tokenizer ----------------------------------------------------------------------------------


def load_tokenizer(path: Path, spec: Any) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(
            path, trust_remote_code=bool(_opt(spec, "trust_remote_code", False))
        )
    except (OSError, ValueError) as exc:
        raise ModelUnreadableError(f"Could not load the tokenizer from {str(path)!r}: {exc}") from exc
    if tok.pad_token_id is None:
        # Padding positions are masked out of attention and loss, so eos is a safe stand-in.
        tok.pad_token = tok.eos_token
    adapter_options.add_new_tokens(tok, spec)  # before any row is tokenised
    return tok


def require_chat_template(tokenizer: Any, spec: Any) -> None:
    if str(_opt(spec, "template", "auto")) == "auto" and not getattr(tokenizer, "chat_template", None):
        from loraforge.engine.failures import _no_chat_template

        f = _no_chat_template(spec)
        raise ChatTemplateMissingError(f.message, suggestion=f.suggestion)


# -- model --------------------------------------------------------------------------------------


def load_model(path: Path, spec: Any, precision: Precision, device: str, tokenizer: Any = None) -> Any:
    """The base model in the right dtype (quantised for QLoRA), with the fine-tuning method
    applied (embeddings grown to `tokenizer` when it gained tokens). Returns the trainable model."""
    from transformers import AutoConfig, AutoModelForCausalLM

    qbit = _opt(spec, "quantization_bit", None)
    ft = str(_opt(spec, "finetuning_type", "lora"))
    kwargs: dict[str, Any] = {"trust_remote_code": bool(_opt(spec, "trust_remote_code", False))}
    rope_note = None
    if _opt(spec, "rope_scaling", None):
        kwargs["config"] = AutoConfig.from_pretrained(path, trust_remote_code=kwargs["trust_remote_code"])
        rope_note = adapter_options.apply_rope_scaling(kwargs["config"], spec)
    if qbit:
        if device != "cuda" or not torch.cuda.is_available():
            raise qlora_without_cuda(spec)
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                "QLoRA needs the bitsandbytes package.", suggestion="pip install bitsandbytes"
            ) from exc
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = (
            BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type=str(_opt(spec, "quantization_type", "nf4")),
                bnb_4bit_compute_dtype=precision.dtype,
                bnb_4bit_use_double_quant=bool(_opt(spec, "double_quantization", True)),
                bnb_4bit_quant_storage=precision.dtype,
            )
            if int(qbit) == 4
            else BitsAndBytesConfig(load_in_8bit=True)
        )
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    # LoRA: frozen base in the compute dtype, adapters upcast to fp32 by PEFT. Full / freeze:
    # trainable weights stay fp32 and autocast does the low-precision math (pure-bf16 AdamW loses
    # small updates).
    kwargs["dtype"] = precision.dtype if ft == "lora" else torch.float32
    attn = _opt(spec, "attn_implementation", None) or _opt(spec, "flash_attn", None)
    if attn and attn not in {"auto", "disabled"}:
        kwargs["attn_implementation"] = {"fa2": "flash_attention_2", "sdpa": "sdpa"}.get(attn, attn)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        if "attn_implementation" in kwargs and "flash" in str(exc).lower():
            kwargs.pop("attn_implementation")  # FlashAttention missing: fall back to SDPA
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        else:
            raise ModelUnreadableError(f"Could not load the model from {str(path)!r}: {exc}") from exc
    model.config.use_cache = False  # the KV cache is useless (and costs memory) in training
    adapter_options.add_note(model, rope_note)
    if adapter_options.resize_for_tokenizer(model, tokenizer):
        adapter_options.add_note(model, f"embeddings resized to {len(tokenizer)} rows (new_special_tokens)")

    if qbit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing(spec)
        )
    if ft == "lora":
        return _apply_lora(model, spec)
    if ft == "freeze":
        _apply_freeze(model, spec)
        if _opt(spec, "new_special_tokens", None):
            adapter_options.unfreeze_embeddings(model)
    return model


def gradient_checkpointing(spec: Any) -> bool:
    if _opt(spec, "disable_gradient_checkpointing", False):
        return False
    return bool(_opt(spec, "gradient_checkpointing", False))


def _lora_targets(spec: Any) -> str | list[str]:
    target = _opt(spec, "lora_target", "all")
    if isinstance(target, list | tuple):
        names = [str(t).strip() for t in target]
    else:
        names = [t.strip() for t in str(target).split(",") if t.strip()]
    return "all-linear" if names in ([], ["all"]) else names


def _apply_lora(model: Any, spec: Any) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    adapter = _opt(spec, "adapter_name_or_path", None)
    if adapter:  # continue training an existing adapter
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
    rank = int(_opt(spec, "lora_rank", 8))
    extra = adapter_options.lora_kwargs(model, spec)  # PiSSA init, modules_to_save
    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=rank,
        lora_alpha=int(_opt(spec, "lora_alpha", None) or rank * 2),  # LLaMA-Factory's default
        lora_dropout=float(_opt(spec, "lora_dropout", 0.0)),
        target_modules=_lora_targets(spec),
        use_rslora=bool(_opt(spec, "use_rslora", False)),
        use_dora=bool(_opt(spec, "use_dora", False)),
        **extra,
    )
    peft_model = get_peft_model(model, config)
    adapter_options.after_lora(peft_model, spec)
    return peft_model


def _apply_freeze(model: Any, spec: Any) -> None:
    """LLaMA-Factory's freeze tuning: train the last N decoder layers (first N when negative)."""
    n_layers = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    k = int(_opt(spec, "freeze_trainable_layers", 2))
    layer_ids = range(n_layers - k, n_layers) if k > 0 else range(-k)
    modules = str(_opt(spec, "freeze_trainable_modules", "all"))
    wanted = None if modules == "all" else [m.strip() for m in modules.split(",")]
    extra = [m.strip() for m in str(_opt(spec, "freeze_extra_modules", "") or "").split(",") if m.strip()]
    pattern = re.compile(r"\.layers\.(\d+)\.")
    for name, param in model.named_parameters():
        m = pattern.search(name)
        trainable = bool(
            m and int(m.group(1)) in layer_ids and (wanted is None or any(w in name for w in wanted))
        )
        if any(e in name for e in extra):
            trainable = True
        param.requires_grad_(trainable)


def count_params(model: Any) -> tuple[int, int]:
    trainable = total = 0
    for p in model.parameters():
        n = p.numel()
        total += n
        if p.requires_grad:
            trainable += n
    return trainable, total
