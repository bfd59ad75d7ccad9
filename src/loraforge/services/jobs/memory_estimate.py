"""A rough training-memory estimate for the job form: how many GB a spec needs on one device.

Rough on purpose: it exists so a user sees "7B full fine-tune ≈ 130 GB" before queueing, not to
predict an allocator. All sizes are in GB = 10^9 bytes, per device (DDP replicates everything).

    params        P from the model's config.json (local models), else a table of known families,
                  else the size in the hub id ("Qwen2.5-7B" → 7e9); unknown → no estimate.
    weights       LoRA: P × bytes of the compute dtype (bf16/fp16: 2, fp32: 4); QLoRA: the decoder
                  layers' linear weights at 0.5 byte (4-bit) or 1 byte (8-bit), the rest (embeddings,
                  norms, LM head) in the compute dtype. Full / freeze: P × 4 (fp32 master weights;
                  the engine trains them in fp32 under autocast).
    adapters      LoRA parameters × 4 (PEFT keeps adapters in fp32); r × (in + out) per adapted linear.
    optimizer     trainable parameters × 12: an fp32 gradient (4) plus AdamW's two moments (8).
    activations   per layer 17 × c bytes per token per hidden unit (Korthikanti et al. 2022: 34·s·b·h
                  bytes in 16-bit, attention scores excluded since SDPA / FlashAttention never store
                  them), c = compute-dtype bytes; with gradient checkpointing each layer keeps only its
                  input (c bytes) plus one layer's full set. Plus fp32 logits: tokens × vocab × 4
                  (halved with sparse_lm_head: prompt positions produce no logits; with fused_lm_loss
                  only one block of rows exists at a time: the GPU block and its 16-bit copy).
                  tokens = per_device_train_batch_size × cutoff_len (the worst case: full rows).
    total         the sum; the CUDA context, allocator fragmentation and the data pipeline are not
                  counted (typically another 1–2 GB).

Torch-free and network-free: the server never downloads a config to answer this.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraforge.engine.fused_loss import GPU_BLOCK_ELEMENTS

GB = 1e9
ADAM_BYTES_PER_TRAINABLE = 12  # fp32 grad + exp_avg + exp_avg_sq
ADAPTER_BYTES = 4  # PEFT upcasts adapter weights to fp32
ACTIVATION_FACTOR = 17  # × compute bytes per token per hidden unit per layer (34 in 16-bit)
LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a Llama/Qwen2-style decoder (what the estimate needs)."""

    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    tied: bool
    qkv_bias: bool = False
    head_dim: int | None = None

    @property
    def kv_dim(self) -> int:
        return (self.head_dim or self.hidden // self.heads) * self.kv_heads

    @property
    def q_dim(self) -> int:
        return (self.head_dim or self.hidden // self.heads) * self.heads

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear module in one decoder layer."""
        h, i = self.hidden, self.intermediate
        return {
            "q_proj": (h, self.q_dim),
            "k_proj": (h, self.kv_dim),
            "v_proj": (h, self.kv_dim),
            "o_proj": (self.q_dim, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    def layer_linear_params(self) -> int:
        weights = sum(a * b for a, b in self.linears().values())
        bias = self.q_dim + 2 * self.kv_dim if self.qkv_bias else 0
        return weights + bias

    def layer_params(self) -> int:
        return self.layer_linear_params() + 2 * self.hidden  # two RMSNorm weights

    def params(self) -> int:
        embeddings = self.vocab * self.hidden
        head = 0 if self.tied else self.vocab * self.hidden
        return self.layers * self.layer_params() + embeddings + head + self.hidden  # + final norm

    def lora_params(self, rank: int, targets: list[str]) -> int:
        linears = self.linears()
        return self.layers * sum(rank * (a + b) for name, (a, b) in linears.items() if name in targets)


# Shapes of the families the presets ship (from each model's config.json), matched by the name part
# of a hub id (case-insensitive prefix, so "-Instruct" and base models match alike).
_QWEN_05 = ModelShape(151936, 896, 4864, 24, 14, 2, tied=True, qkv_bias=True)
_QWEN_15 = ModelShape(151936, 1536, 8960, 28, 12, 2, tied=True, qkv_bias=True)
_QWEN_3 = ModelShape(151936, 2048, 11008, 36, 16, 2, tied=True, qkv_bias=True)
_QWEN_7 = ModelShape(152064, 3584, 18944, 28, 28, 4, tied=False, qkv_bias=True)
KNOWN_SHAPES: dict[str, ModelShape] = {
    "qwen2.5-0.5b": _QWEN_05,
    "qwen2.5-1.5b": _QWEN_15,
    "qwen2.5-3b": _QWEN_3,
    "qwen2.5-7b": _QWEN_7,
    "deepseek-r1-distill-qwen-1.5b": ModelShape(151936, 1536, 8960, 28, 12, 2, tied=False, qkv_bias=True),
    "deepseek-r1-distill-qwen-7b": _QWEN_7,
    "llama-3.2-1b": ModelShape(128256, 2048, 8192, 16, 32, 8, tied=True, head_dim=64),
    "llama-3.2-3b": ModelShape(128256, 3072, 8192, 28, 24, 8, tied=True, head_dim=128),
    "llama-3.1-8b": ModelShape(128256, 4096, 14336, 32, 32, 8, tied=False),
    "meta-llama-3.1-8b": ModelShape(128256, 4096, 14336, 32, 32, 8, tied=False),
    "meta-llama-3-8b": ModelShape(128256, 4096, 14336, 32, 32, 8, tied=False),
}
_SIZE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", re.IGNORECASE)


def shape_from_config(config: dict[str, Any]) -> ModelShape | None:
    """A ModelShape from a Hugging Face config.json (Llama / Qwen2 / Mistral style), or None."""
    try:
        hidden = int(config["hidden_size"])
        heads = int(config["num_attention_heads"])
        return ModelShape(
            vocab=int(config["vocab_size"]),
            hidden=hidden,
            intermediate=int(config["intermediate_size"]),
            layers=int(config["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(config.get("num_key_value_heads") or heads),
            tied=bool(config.get("tie_word_embeddings", False)),
            qkv_bias=config.get("model_type") == "qwen2" or bool(config.get("attention_bias", False)),
            head_dim=int(config["head_dim"]) if config.get("head_dim") else None,
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def known_shape(model: str) -> ModelShape | None:
    name = model.rsplit("/", 1)[-1].lower()
    for key, shape in KNOWN_SHAPES.items():
        if name.startswith(key):
            return shape
    return None


def size_from_name(model: str) -> float | None:
    """Parameters in billions parsed from a hub id ("Qwen2.5-7B-Instruct" → 7.0), or None."""
    name = model.rsplit("/", 1)[-1]
    for number, unit in reversed(_SIZE.findall(name)):
        value = float(number)
        return value if unit.lower() == "b" else value / 1000
    return None


def nearest_shape(params_b: float) -> tuple[str, ModelShape]:
    """The known shape closest in size (log scale): stands in for dimensions a name does not give."""
    return min(
        KNOWN_SHAPES.items(), key=lambda item: abs(math.log(item[1].params() / 1e9) - math.log(params_b))
    )


def lora_targets(spec: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(adapted modules we can size, names we cannot) for `lora_target` (`all` = every linear)."""
    raw = spec.get("lora_target", "all")
    names = [
        s.strip() for s in (",".join(raw) if isinstance(raw, list) else str(raw)).split(",") if s.strip()
    ]
    if not names or "all" in names:
        return list(LINEAR_MODULES), []
    return [n for n in names if n in LINEAR_MODULES], [n for n in names if n not in LINEAR_MODULES]


def compute_bytes(spec: dict[str, Any], device: str) -> int:
    """Bytes per value of the compute dtype, as the engine chooses it (`auto`: bf16 on GPU, fp32 on CPU)."""
    precision = str(spec.get("precision") or "auto")
    if precision == "auto":
        if spec.get("bf16"):
            precision = "bf16"
        elif spec.get("fp16"):
            precision = "fp16"
        elif spec.get("bf16") is False or spec.get("fp16") is False:
            precision = "fp32"
        else:
            precision = "bf16" if device == "gpu" else "fp32"
    if precision == "fp16" and device == "cpu":
        precision = "fp32"  # the engine has no fp16 autocast on CPU
    return 4 if precision == "fp32" else 2


@dataclass(frozen=True)
class Estimate:
    params_b: float | None
    weights: float
    adapters: float
    optimizer: float
    activations: float
    device: str
    notes: list[str]

    @property
    def total(self) -> float:
        return self.weights + self.adapters + self.optimizer + self.activations

    def as_dict(self) -> dict[str, Any]:
        parts = {
            "weights": self.weights,
            "adapters": self.adapters,
            "optimizer": self.optimizer,
            "activations": self.activations,
            "total": self.total,
        }
        return {
            "params_b": None if self.params_b is None else round(self.params_b, 4),
            "estimate_gb": {k: round(v, 4) for k, v in parts.items()},
            "device": self.device,
            "notes": self.notes,
        }


def _int(spec: dict[str, Any], key: str, default: int) -> int:
    try:
        value = int(spec.get(key) or default)
    except (TypeError, ValueError):
        return default
    return value if value > 0 else default


def estimate(
    spec: dict[str, Any], *, shape: ModelShape | None, params_b: float | None, device: str
) -> Estimate:
    """The estimate for `spec` on a model of `shape` (dimensions) and `params_b` (billions)."""
    notes: list[str] = []
    if params_b is None:
        return Estimate(None, 0.0, 0.0, 0.0, 0.0, device, ["unknown model size: no estimate"])
    if shape is None:
        ref, shape = nearest_shape(params_b)
        notes.append(f"layer shapes assumed from {ref} (the nearest known model in size)")
    params = params_b * 1e9
    c = compute_bytes(spec, device)
    method = str(spec.get("finetuning_type") or "lora")
    qbit = spec.get("quantization_bit")
    rank = _int(spec, "lora_rank", 8)
    batch = _int(spec, "per_device_train_batch_size", 1)
    cutoff = _int(spec, "cutoff_len", 2048)
    scale = params / shape.params()  # 1.0 when the shape is the model's own

    adapters = optimizer = 0.0
    if method == "lora":
        linear = shape.layers * shape.layer_linear_params() * scale
        if qbit in (4, 8):
            weights = linear * (0.5 if qbit == 4 else 1.0) + (params - linear) * c
            notes.append(f"QLoRA: decoder linear layers in {qbit}-bit (block scales add a few %)")
            if device == "cpu":
                notes.append("QLoRA needs a CUDA GPU; the engine refuses it on CPU")
        else:
            weights = params * c
        targets, unknown = lora_targets(spec)
        if unknown:
            notes.append("not sized (unknown module names): " + ", ".join(unknown))
        trainable = shape.lora_params(rank, targets) * scale
        adapters = trainable * ADAPTER_BYTES
    else:
        weights = params * 4
        if method == "freeze":
            n = abs(_int(spec, "freeze_trainable_layers", 2))
            trainable = min(n, shape.layers) * shape.layer_params() * scale
        else:
            trainable = params
    optimizer = trainable * ADAM_BYTES_PER_TRAINABLE

    tokens = batch * cutoff
    per_layer = tokens * shape.hidden * c
    if spec.get("gradient_checkpointing"):
        layer_acts = per_layer * shape.layers + per_layer * ACTIVATION_FACTOR
    else:
        layer_acts = per_layer * shape.layers * ACTIVATION_FACTOR
    sparse = spec.get("sparse_lm_head", True)
    fused = sparse and spec.get("fused_lm_loss", True)
    logits: float
    if fused:
        logits = min(tokens * shape.vocab, GPU_BLOCK_ELEMENTS) * (4 + 2)
    else:
        logits = tokens * shape.vocab * 4 * (0.5 if sparse else 1.0)
    activations = layer_acts + logits
    notes.append(f"activations for {batch} × {cutoff} tokens per device step")
    return Estimate(
        params_b=params_b,
        weights=weights / GB,
        adapters=adapters / GB,
        optimizer=optimizer / GB,
        activations=activations / GB,
        device=device,
        notes=notes,
    )


def read_local_config(folder: Path) -> dict[str, Any] | None:
    """config.json of a local model folder, or None (missing, unreadable, not a mapping)."""
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe_model(model: str, *, local_folder: Path | None) -> tuple[ModelShape | None, float | None, str]:
    """(shape, params in billions, where that came from) for a model name or local folder."""
    if local_folder is not None:
        config = read_local_config(local_folder)
        shape = shape_from_config(config) if config is not None else None
        if shape is not None:
            return shape, shape.params() / 1e9, "the model's config.json"
    shape = known_shape(model)
    if shape is not None:
        return shape, shape.params() / 1e9, "the table of known models"
    size = size_from_name(model)
    if size is not None:
        return None, size, "the size in the model's name"
    return None, None, "unknown"


def spec_device(spec: dict[str, Any], *, host_has_gpu: bool) -> str:
    """Where the engine would run the spec: `cpu` when asked for or when the host has no GPU."""
    devices = spec.get("devices", "auto")
    if spec.get("use_cpu") or devices == "cpu":
        return "cpu"
    if isinstance(devices, list | int) and not isinstance(devices, bool):
        return "gpu"
    if spec.get("quantization_bit") in (4, 8):
        return "gpu"  # QLoRA exists only on CUDA; estimate for the device it needs
    return "gpu" if host_has_gpu else "cpu"


def estimate_spec(
    spec: dict[str, Any], *, models_dir: Path, demo_model: str, local_paths: bool, host_has_gpu: bool
) -> dict[str, Any]:
    """The estimate for a user's spec, as the API returns it (plus `source`: where params came from).

    Only the demo model's folder is read, and absolute server paths only when `local_paths` (staff):
    a researcher must not learn which server paths exist from this endpoint.
    """
    model = spec.get("model_name_or_path")
    device = spec_device(spec, host_has_gpu=host_has_gpu)
    if not isinstance(model, str) or not model.strip():
        result = estimate(spec, shape=None, params_b=None, device=device).as_dict()
        result.update(notes=["model_name_or_path is not set: no estimate"], source="unknown")
        return result
    folder: Path | None = None
    if model == demo_model:
        folder = models_dir / demo_model
    elif local_paths and Path(model).is_absolute():
        folder = Path(model)
    shape, params_b, source = describe_model(model, local_folder=folder)
    result = estimate(spec, shape=shape, params_b=params_b, device=device).as_dict()
    if params_b is None and model == demo_model:
        result["notes"] = ["the demo model is built on first use; no estimate before that"]
    result["source"] = source
    return result
