"""The job spec: the engine's one input, in LLaMA-Factory's vocabulary.

Researchers already write LLaMA-Factory (LF) training YAMLs, so every concept LF has keeps LF's key
name and meaning, and LF's example YAMLs load unchanged. Concepts LF lacks get new keys in the same
flat style (`precision`, `devices`, `save_every_minutes`, `truncation`, `columns`, ...).

Torch-free on purpose: the server imports this module to validate jobs and to export the JSON
schema for the UI form.

Unknown keys are never ignored silently: `load_spec` names each one with a did-you-mean. LF keys that
are harmless here (they tune LF's own machinery, e.g. `overwrite_cache`, `plot_loss`) are accepted
and kept in `compat_ignored`, so cloning a job reproduces what the user wrote.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loraforge.engine.chat_templates import TEMPLATE_NAMES

Stage = Literal["pt", "sft", "dpo", "merge"]
FinetuningType = Literal["lora", "full", "freeze"]
Precision = Literal["auto", "bf16", "fp16", "fp32"]
Truncation = Literal["right", "left", "drop"]
Formatting = Literal["alpaca", "sharegpt", "openai", "text"]
SchedulerType = Literal[
    "linear",
    "cosine",
    "cosine_with_restarts",
    "cosine_with_min_lr",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "warmup_stable_decay",
]
ReportTarget = Literal["none", "all", "tensorboard", "wandb", "mlflow", "swanlab"]
AttnImpl = Literal["auto", "eager", "sdpa", "flash_attention_2"]

# LF keys accepted for compatibility that steer LF's own machinery and have no effect here.
# key -> why it is harmless. Values are kept verbatim in `JobSpec.compat_ignored`.
LF_IGNORED_KEYS: dict[str, str] = {
    "overwrite_output_dir": "each run writes into its own run directory",
    "overwrite_cache": "the tokenisation cache is keyed by content hash, so it is never stale",
    "plot_loss": "loss curves come from the event stream and TensorBoard",
    "ddp_timeout": "the engine sets its own process-group timeout",
    "save_only_model": "checkpoints always hold what resuming needs",
    "include_num_input_tokens_seen": "the engine always counts non-padding tokens",
    "use_fast_tokenizer": "fast tokenizers are always used",
    "do_eval": "evaluation runs whenever validation data exists (see eval_strategy)",
    "do_predict": "prediction is not a training-engine job",
    "predict_with_generate": "prediction is not a training-engine job",
    "tokenized_path": "the engine caches tokenised data itself",
    "deepspeed": "DeepSpeed is not used; multi-device runs use DDP",
    "ddp_find_unused_parameters": "set by the engine",
    "logging_first_step": "the first step is always logged",
    "enable_thinking": "thinking-mode templates are not among the supported templates",
    "tool_format": "tool calls are rendered as plain text by the supported templates",
    "image_max_pixels": "multimodal inputs are not supported",
    "video_max_pixels": "multimodal inputs are not supported",
    "freeze_vision_tower": "multimodal inputs are not supported",
    "freeze_multi_modal_projector": "multimodal inputs are not supported",
    "upcast_layernorm": "layer norms run in the model's own precision",
    "upcast_lmhead_output": "the loss is computed in float32",
    "mix_strategy": "datasets are concatenated (LF's default `concat`)",
    "streaming": "datasets are read in full and cached",
    "buffer_size": "datasets are read in full and cached",
    "print_param_status": "parameter counts are logged anyway",
    "infer_backend": "inference is not a training-engine job",
    "model_revision": "local paths are used; the hub revision is part of the model id resolution",
}

# LF aliases we translate (LF key -> our key), applied before validation.
_NEGATED_ALIASES = {"disable_gradient_checkpointing": "gradient_checkpointing"}


def _d(text: str) -> Any:
    """Shorthand for a field description (keeps the field lines readable)."""
    return {"description": text}


class JobSpec(BaseModel):
    """A training job: model, method, data, hyperparameters, devices, logging and output."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False, protected_namespaces=())

    # ---- model -------------------------------------------------------------------------------
    model_name_or_path: str = Field(
        description="A local model folder or a Hugging Face Hub / ModelScope id, cached in the shared cache."
    )
    adapter_name_or_path: str | None = Field(
        None, description="An existing LoRA adapter folder to continue training from (LF key)."
    )
    cache_dir: str | None = Field(None, description="Where downloaded models and datasets are cached.")
    trust_remote_code: bool = Field(
        False, description="Allow model repositories to run their own Python code."
    )

    # ---- method ------------------------------------------------------------------------------
    stage: Stage = Field(
        "sft",
        description="Training stage: `pt` pretraining, `sft` supervised, `dpo` preference; `merge` folds "
        "adapter_name_or_path into the model and saves full weights (no training, no dataset; the model "
        "registry queues these).",
    )
    do_train: bool = Field(True, description="LF key; the engine always trains (false is rejected).")
    finetuning_type: FinetuningType = Field(
        "lora", description="`lora` adapters (QLoRA with quantization_bit), `full` weights, or `freeze`."
    )
    quantization_bit: Literal[4, 8] | None = Field(
        None, description="Quantise the base model to 4 (QLoRA, NF4) or 8 bits with bitsandbytes. CUDA only."
    )
    quantization_method: Literal["bnb"] = Field(
        "bnb", description="Quantisation backend (only bitsandbytes)."
    )
    quantization_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type for bitsandbytes.")
    double_quantization: bool = Field(True, description="Quantise the quantisation constants too (QLoRA).")
    lora_rank: int = Field(8, ge=1, description="LoRA rank r.")
    lora_alpha: int | None = Field(None, ge=1, description="LoRA alpha; default 2 × lora_rank (as LF).")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA path.")
    lora_target: str = Field(
        "all",
        description="Comma-separated module names to adapt, or `all`: every linear layer but the LM head.",
    )
    additional_target: str | None = Field(
        None,
        description="Comma-separated extra modules trained fully, saved with the adapter (embed_tokens).",
    )
    use_rslora: bool = Field(False, description="Rank-stabilised LoRA scaling (alpha / sqrt(r)).")
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA).")
    freeze_trainable_layers: int = Field(
        2, description="freeze: train the last N layers (negative: the first |N|), as LF."
    )
    freeze_trainable_modules: str = Field(
        "all", description="freeze: comma-separated module names inside the trainable layers, or `all`."
    )
    freeze_extra_modules: str | None = Field(
        None,
        description="freeze: comma-separated modules outside the layers to train too (e.g. embed_tokens).",
    )
    pref_beta: float = Field(0.1, gt=0.0, description="DPO beta: strength of the preference term.")
    pref_loss: Literal["sigmoid", "hinge", "ipo", "orpo", "simpo"] = Field(
        "sigmoid", description="Preference loss: `sigmoid` is standard DPO."
    )
    pref_ftx: float = Field(
        0.0, ge=0.0, description="Weight of an added SFT loss on the chosen answer in DPO."
    )
    dpo_label_smoothing: float = Field(0.0, ge=0.0, le=0.5, description="Robust DPO label smoothing.")

    # ---- template ----------------------------------------------------------------------------
    template: str = Field(
        "auto",
        description="Chat template: `auto` uses the tokenizer's own; or an LF name: "
        + ", ".join(n for n in TEMPLATE_NAMES if n != "auto")
        + ".",
    )
    default_system: str | None = Field(None, description="System prompt used when an example has none.")

    # ---- data --------------------------------------------------------------------------------
    dataset: list[str] | None = Field(
        None,
        description="Training data: comma-separated names from dataset_dir/dataset_info.json, or file paths.",
    )
    eval_dataset: list[str] | None = Field(
        None,
        description="Validation data by name or path (LF key); alternative to val_size / validation_file.",
    )
    validation_file: str | None = Field(
        None, description="A validation file (same format as the training data)."
    )
    dataset_dir: str = Field("data", description="Folder holding dataset_info.json and the files it names.")
    formatting: Formatting | None = Field(
        None,
        description="Format of datasets given as file paths: alpaca, sharegpt, openai (messages) or text; "
        "detected from the first row when unset. Names from dataset_info.json carry their own.",
    )
    columns: dict[str, str] | None = Field(
        None, description="Column mapping for file-path datasets, as dataset_info.json `columns`."
    )
    tags: dict[str, str] | None = Field(
        None, description="Role/content tags for sharegpt file-path datasets, as dataset_info.json `tags`."
    )
    ranking: bool | None = Field(
        None, description="File-path datasets are preference pairs (chosen/rejected); default: stage == dpo."
    )
    cutoff_len: int = Field(2048, ge=8, description="Maximum tokens per example (per row when packing).")
    truncation: Truncation = Field(
        "right",
        description="Over-long examples: `right` cuts the end (LF's per-turn budget), `left` keeps the most "
        "recent turns, `drop` skips them.",
    )
    max_samples: int | None = Field(
        None, ge=1, description="Use at most this many rows from each dataset (LF)."
    )
    val_size: float = Field(
        0.0,
        ge=0.0,
        description="Validation split: a fraction (< 1) or a row count (≥ 1) of the training data.",
    )
    packing: bool | None = Field(
        None,
        description="Concatenate examples into cutoff_len rows (LF). Default: on for pt, off otherwise.",
    )
    neat_packing: bool = Field(
        False,
        description="Padding-free packing, no cross-example attention (position ids restart per example).",
    )
    train_on_prompt: bool = Field(False, description="Also compute the loss on prompt tokens (LF).")
    mask_history: bool = Field(False, description="Train only on the last assistant turn (LF).")
    group_by_length: bool = Field(
        False, description="Batch examples of similar length together to cut padding (speed; unpacked only)."
    )
    preprocessing_num_workers: int | None = Field(
        None, ge=1, description="Processes for tokenisation (default: a few, bounded by CPU count)."
    )
    data_cache_dir: str | None = Field(
        None, description="Where tokenised datasets are cached by content hash (default: the shared cache)."
    )

    # ---- hyperparameters ---------------------------------------------------------------------
    learning_rate: float = Field(5e-5, gt=0.0, description="Peak learning rate.")
    num_train_epochs: float = Field(3.0, gt=0.0, description="Epochs to train (ignored when max_steps > 0).")
    max_steps: int = Field(-1, description="Total optimiser steps; -1 means use num_train_epochs.")
    lr_scheduler_type: SchedulerType = Field("cosine", description="Learning-rate schedule.")
    warmup_ratio: float = Field(0.0, ge=0.0, le=1.0, description="Fraction of steps spent warming up.")
    warmup_steps: int = Field(0, ge=0, description="Warm-up steps (wins over warmup_ratio when > 0).")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, ge=0.0, description="Gradient clipping norm (0 disables).")
    per_device_train_batch_size: int = Field(
        1, ge=1, description="Examples (or packed rows) per device per step."
    )
    per_device_eval_batch_size: int = Field(1, ge=1, description="Examples per device per evaluation step.")
    gradient_accumulation_steps: int = Field(
        1, ge=1, description="Micro-batches accumulated per optimiser step."
    )
    gradient_checkpointing: bool = Field(
        False,
        description="Recompute activations to save memory (slower). Off by default; LF's "
        "`disable_gradient_checkpointing` is accepted too.",
    )
    seed: int = Field(42, description="Seed for weights init, shuffling and dropout.")
    optim: str = Field("adamw_torch", description="Optimiser name as transformers accepts it.")

    # ---- precision and devices ---------------------------------------------------------------
    precision: Precision = Field(
        "auto",
        description="Numeric precision: `auto` picks bf16 where supported, else fp16 on CUDA, fp32 on CPU. "
        "LF's bf16 / fp16 flags set it too.",
    )
    bf16: bool | None = Field(
        None, description="LF flag: train in bfloat16 (false with fp16 unset means fp32)."
    )
    fp16: bool | None = Field(None, description="LF flag: train in float16 mixed precision.")
    devices: Literal["auto", "cpu"] | list[int] = Field(
        "auto", description="`cpu`, `auto` (all visible GPUs, else CPU), or CUDA device indices; >1 runs DDP."
    )
    use_cpu: bool | None = Field(None, description="HF/LF flag; true means devices: cpu.")
    dataloader_num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")

    # ---- speed switches (issue 7); each keeps the per-example loss unchanged --------------------
    attn_implementation: AttnImpl = Field(
        "auto",
        description="Attention kernel; auto: flash-attention 2 on CUDA when installed, else sdpa.",
    )
    flash_attn: Literal["auto", "disabled", "sdpa", "fa2"] | None = Field(
        None, description="LF's attention switch; mapped onto attn_implementation."
    )
    enable_liger_kernel: bool = Field(False, description="Use Liger fused kernels when installed (CUDA).")
    torch_compile: bool = Field(False, description="Compile the model with torch.compile.")
    padding_free: bool = Field(
        True,
        description="sft/pt: feed each batch as one concatenated row with no padding and attention "
        "restricted to each example (each pack with LF `packing`) by variable-length attention; "
        "positions restart per example, so the per-example loss equals the padded batch's. Same rows "
        "per step as with padding. Falls back to padded batches for models without transformers' "
        "attention interface.",
    )
    sparse_lm_head: bool = Field(
        True,
        description="sft/pt: compute LM-head logits and the cross-entropy only at positions whose next token "
        "has a label (prompt and padding positions cannot change the loss), instead of full-vocabulary "
        "logits for every position. Exact; off for models that reshape their logits.",
    )
    fused_lm_loss: bool = Field(
        True,
        description="sft/pt, with sparse_lm_head: compute the output layer and cross-entropy a block of "
        "rows at a time, taking the gradient on the way, so full logits never exist. Same loss up to "
        "float summation order; off for heads with a bias or models that scale/soft-cap logits.",
    )
    fused_lora: bool = Field(
        True,
        description="sft/pt: run each LoRA layer (fp32 base, no dropout, one plain adapter) as one "
        "matmul with W + scaling*B@A rebuilt on the fly, instead of PEFT's three matmuls plus scale "
        "and add. Same function up to float rounding; other layers keep PEFT's forward.",
    )
    pad_to_multiple_of: int | None = Field(
        None, ge=1, description="Round padded batch lengths up to a multiple (tensor-core friendly on GPU)."
    )

    # ---- logging, evaluation, checkpoints ----------------------------------------------------
    output_dir: str | None = Field(
        None, description="Where outputs go; executors use RUN_DIR/output and override this."
    )
    logging_steps: int = Field(10, ge=1, description="Log metrics every N optimiser steps.")
    eval_strategy: Literal["no", "steps", "epoch"] | None = Field(
        None, description="When to evaluate; default: every eval_steps when there is validation data."
    )
    eval_steps: int | None = Field(None, ge=1, description="Evaluate every N steps (default: logging_steps).")
    save_strategy: Literal["no", "steps", "epoch"] = Field("steps", description="When to write checkpoints.")
    save_steps: int = Field(500, ge=1, description="Checkpoint every N steps.")
    save_every_minutes: float | None = Field(
        10.0, description="Also checkpoint every M minutes of training (null disables)."
    )
    save_total_limit: int | None = Field(None, ge=1, description="Keep only the last K checkpoints.")
    resume_from_checkpoint: str | bool | None = Field(
        None, description="A checkpoint folder to resume from (or true: the latest in the run)."
    )
    report_to: list[ReportTarget] = Field(
        default_factory=lambda: list[ReportTarget](["none"]),
        description="Extra trackers (mlflow, swanlab, wandb); TensorBoard files are always written.",
    )
    run_name: str | None = Field(None, description="A display name for trackers.")
    resource_interval_seconds: float = Field(
        5.0,
        ge=0,
        description="Emit a `resource` event (CPU, memory, GPU utilisation/memory/temperature) every N "
        "seconds while the run lives; 0 disables.",
    )

    compat_ignored: dict[str, Any] = Field(
        default_factory=dict,
        description="LLaMA-Factory keys accepted for compatibility that have no effect here (kept verbatim).",
    )

    # ---- normalisation -------------------------------------------------------------------------
    @field_validator("dataset", "eval_dataset", mode="before")
    @classmethod
    def _split_names(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()] or None
        return v

    @field_validator("lora_target", "additional_target", "freeze_trainable_modules", mode="before")
    @classmethod
    def _join_list(cls, v: Any) -> Any:
        if isinstance(v, list | tuple):
            return ",".join(str(x).strip() for x in v)
        return v

    @field_validator("report_to", mode="before")
    @classmethod
    def _report_list(cls, v: Any) -> Any:
        if v is None:
            return ["none"]
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    @field_validator("devices", mode="before")
    @classmethod
    def _devices(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return [v]
        if isinstance(v, str) and v not in ("auto", "cpu"):
            # "0,1" or "cuda:0,cuda:1"
            try:
                return [int(s.strip().removeprefix("cuda:")) for s in v.split(",") if s.strip()]
            except ValueError:
                return v
        return v

    @field_validator("template")
    @classmethod
    def _known_template(cls, v: str) -> str:
        if v not in TEMPLATE_NAMES:
            hint = _did_you_mean(v, TEMPLATE_NAMES)
            raise ValueError(f"unknown template {v!r}{hint}; supported: {', '.join(TEMPLATE_NAMES)}")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> JobSpec:
        problems: list[str] = []
        if not self.do_train:
            problems.append("do_train: false is not supported; the engine only trains")
        if self.quantization_bit is not None and self.finetuning_type != "lora":
            problems.append(
                f"quantization_bit: {self.quantization_bit} (QLoRA) requires finetuning_type: lora, "
                f"not {self.finetuning_type}"
            )
        if self.use_dora and self.finetuning_type != "lora":
            problems.append("use_dora requires finetuning_type: lora")
        if self.bf16 and self.fp16:
            problems.append("bf16 and fp16 are both true; choose one (or set precision)")
        if self.precision != "auto" and (
            (self.bf16 and self.precision != "bf16") or (self.fp16 and self.precision != "fp16")
        ):
            problems.append(f"precision: {self.precision} contradicts bf16/fp16: true")
        if self.stage == "merge":
            if not self.adapter_name_or_path:
                problems.append("stage: merge needs adapter_name_or_path (the LoRA adapter to merge)")
        elif not self.dataset:
            problems.append("dataset is required (names from dataset_info.json or file paths)")
        if self.val_size and (self.eval_dataset or self.validation_file):
            problems.append("val_size cannot be combined with eval_dataset or validation_file; pick one")
        if self.eval_dataset and self.validation_file:
            problems.append("eval_dataset and validation_file both set; pick one")
        if self.val_size >= 1 and self.val_size != int(self.val_size):
            problems.append(f"val_size {self.val_size} must be a fraction < 1 or a whole row count")
        if self.stage == "dpo" and self.ranking is False:
            problems.append("stage: dpo needs a preference dataset, but ranking is false")
        if self.stage == "dpo" and (self.packing or self.neat_packing):
            problems.append("packing / neat_packing are not supported with stage: dpo")
        if self.stage == "pt" and self.neat_packing and self.packing is False:
            problems.append("neat_packing needs packing (do not set packing: false)")
        if self.max_steps <= 0 and self.max_steps != -1:
            problems.append("max_steps must be positive, or -1 to train for num_train_epochs")
        if self.eval_strategy in ("steps", "epoch") and not (
            self.val_size or self.eval_dataset or self.validation_file
        ):
            problems.append(
                f"eval_strategy: {self.eval_strategy} needs val_size, eval_dataset or validation_file"
            )
        if isinstance(self.devices, list) and (not self.devices or any(d < 0 for d in self.devices)):
            problems.append("devices must be `cpu`, `auto` or non-negative CUDA indices")
        if self.use_cpu and isinstance(self.devices, list):
            problems.append("use_cpu: true contradicts a list of CUDA devices")
        if self.save_every_minutes is not None and self.save_every_minutes <= 0:
            problems.append("save_every_minutes must be positive (or null to disable)")
        if "none" in self.report_to and len(self.report_to) > 1:
            problems.append("report_to lists `none` with other trackers")
        if problems:
            raise ValueError("; ".join(problems))

        # Resolve LF-style flags into one meaning each (idempotent, so a dumped spec reloads the same).
        if self.lora_alpha is None:
            self.lora_alpha = self.lora_rank * 2
        if self.precision == "auto":
            if self.bf16:
                self.precision = "bf16"
            elif self.fp16:
                self.precision = "fp16"
            elif self.bf16 is False or self.fp16 is False:
                self.precision = "fp32"  # LF: bf16: false and no fp16 means plain fp32
        if self.use_cpu:
            self.devices = "cpu"
        if self.flash_attn is not None and self.attn_implementation == "auto":
            self.attn_implementation = {
                "auto": "auto",
                "disabled": "eager",
                "sdpa": "sdpa",
                "fa2": "flash_attention_2",
            }[self.flash_attn]  # type: ignore[assignment]
        if self.packing is None:
            self.packing = self.stage == "pt"
        if self.neat_packing:
            self.packing = True  # LF: neat_packing implies packing
        if self.eval_steps is None:
            self.eval_steps = self.logging_steps
        return self

    # ---- derived views -------------------------------------------------------------------------
    @property
    def has_validation(self) -> bool:
        """True when the job has validation data (split, file or named dataset)."""
        return bool(self.val_size or self.eval_dataset or self.validation_file)

    @property
    def effective_eval_strategy(self) -> str:
        """`steps` when validation data exists and eval_strategy is unset, else eval_strategy or `no`."""
        if self.eval_strategy is not None:
            return self.eval_strategy
        return "steps" if self.has_validation else "no"

    @property
    def effective_batch_size(self) -> int:
        """Examples per optimiser step on one device (batch × accumulation)."""
        return self.per_device_train_batch_size * self.gradient_accumulation_steps

    def dataset_dir_path(self, base: str | os.PathLike[str] | None = None) -> Path:
        """dataset_dir resolved against `base` (e.g. the spec file's folder) when relative."""
        p = Path(os.path.expanduser(self.dataset_dir))
        return p if p.is_absolute() or base is None else Path(base) / p

    def notes(self) -> list[str]:
        """Human-readable notes about accepted-but-ignored LF keys (for the run log)."""
        return [f"{k}: ignored ({LF_IGNORED_KEYS.get(k, 'no effect')})" for k in self.compat_ignored]


class FieldProblem(BaseModel):
    """One problem with one key of a spec."""

    key: str
    message: str


class SpecError(ValueError):
    """A spec that cannot be used; `problems` lists each one by key, the message reads as a list."""

    def __init__(self, problems: list[FieldProblem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        head = f"invalid job spec{f' {source}' if source else ''}: {len(problems)} problem(s)"
        super().__init__("\n".join([head, *(f"  - {p.key}: {p.message}" for p in problems)]))

    @property
    def unknown_keys(self) -> list[str]:
        return [p.key for p in self.problems if p.message.startswith("unknown key")]


def _did_you_mean(word: str, choices: Any) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def known_keys() -> set[str]:
    """Every key a spec may contain: our fields, LF aliases and LF keys accepted as no-ops."""
    return set(JobSpec.model_fields) | set(_NEGATED_ALIASES) | set(LF_IGNORED_KEYS)


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(
            [FieldProblem(key="<root>", message="the spec must be a mapping of keys to values")], str(path)
        )
    return data


def load_spec(source: str | os.PathLike[str] | dict[str, Any]) -> JobSpec:
    """Read a spec from a YAML/JSON file or a dict and validate it.

    Raises `SpecError` naming every problem by key (unknown keys with a did-you-mean, type errors,
    cross-field conflicts) rather than stopping at the first.
    """
    origin = None if isinstance(source, dict) else str(source)
    raw = dict(source) if isinstance(source, dict) else _read(Path(source))
    problems: list[FieldProblem] = []
    data: dict[str, Any] = {}
    ignored: dict[str, Any] = dict(raw.pop("compat_ignored", None) or {})

    fields = set(JobSpec.model_fields)
    for key, value in raw.items():
        if key in fields:
            data[key] = value
        elif key in _NEGATED_ALIASES:
            target = _NEGATED_ALIASES[key]
            if value is None:
                continue
            if target in raw and bool(raw[target]) == bool(value):
                problems.append(FieldProblem(key=key, message=f"contradicts {target}: {raw[target]}"))
                continue
            data[target] = not bool(value)
        elif key in LF_IGNORED_KEYS:
            ignored[key] = value
        else:
            problems.append(
                FieldProblem(key=str(key), message=f"unknown key{_did_you_mean(str(key), known_keys())}")
            )
    if ignored:
        data["compat_ignored"] = ignored

    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems_from(exc))
        raise SpecError(problems, origin) from None
    if problems:
        raise SpecError(problems, origin)
    return spec


def _problems_from(exc: ValidationError) -> list[FieldProblem]:
    out: list[FieldProblem] = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<spec>"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required"
        if not err["loc"]:
            # cross-field problems arrive as one message; split them back into items
            for part in msg.split("; "):
                k = part.split(" ", 1)[0].rstrip(":")
                out.append(FieldProblem(key=k if k in known_keys() else "<spec>", message=part))
            continue
        out.append(FieldProblem(key=key, message=msg))
    return out


def spec_json_schema() -> dict[str, Any]:
    """The JSON schema of JobSpec (for the UI form and the REST API docs)."""
    return JobSpec.model_json_schema()


def dump_spec(spec: JobSpec) -> dict[str, Any]:
    """A JSON-ready dict that `load_spec` reads back to an equal spec."""
    return spec.model_dump(mode="json")
