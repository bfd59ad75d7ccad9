"""The keys a job spec may hold: each field's type, default and description, and per-key normalisation.

Every concept LLaMA-Factory (LF) has keeps LF's key name and meaning; concepts LF lacks get new keys
in the same flat style. `loraforge.engine.spec.JobSpec` adds the rules that tie keys together.
Torch-free: the server imports this to validate jobs and to export the JSON schema for the UI form.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loraforge.engine.chat_templates import TEMPLATE_NAMES
from loraforge.engine.spec_adapters import normalise_new_tokens

Stage = Literal["pt", "sft", "dpo", "kto", "merge"]
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
RopeScaling = Literal["linear", "dynamic", "yarn"]

# Upper bounds of the numeric keys: far above any real run, so they only stop typos and abuse (a
# `cutoff_len` of 1e9 or `dataloader_num_workers: 64` would be accepted, stored, then fail or thrash
# the host at launch). They appear in the JSON schema the form reads (/api/jobs/spec-schema).
MAX_TOKENS = 1_048_576  # cutoff_len: the longest context windows of current models
MAX_ROWS = 1_000_000_000  # max_samples, val_size as a row count
MAX_STEPS = 10_000_000  # optimiser steps (and step intervals)
MAX_BATCH = 4096  # per-device batch sizes, gradient accumulation
MAX_WORKERS = 256  # tokenisation processes
MAX_LOADER_WORKERS = 32  # DataLoader processes per device
MAX_DEVICE_INDEX = 1023


def did_you_mean(word: str, choices: Any) -> str:
    """` (did you mean 'x'?)` for the closest of `choices`, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


class JobSpecFields(BaseModel):
    """The fields of a job spec, in the order the UI form shows them (JobSpec holds the rules)."""

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
        description="Training stage: `pt` pretraining, `sft` supervised, `dpo` preference, `kto` "
        "desirable/undesirable labels; `merge` folds "
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
    lora_rank: int = Field(8, ge=1, le=1024, description="LoRA rank r.")
    lora_alpha: int | None = Field(
        None, ge=1, le=8192, description="LoRA alpha; default 2 × lora_rank (as LF)."
    )
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
    pissa_init: bool = Field(
        False,
        description="Initialise LoRA from the principal singular values/vectors of each weight (PiSSA); "
        "the saved adapter is converted to plain LoRA over the original base.",
    )
    pissa_iter: int = Field(
        16,
        ge=-1,
        le=1024,
        description="PiSSA: fast-SVD iterations; -1 computes the exact SVD (slow on large models).",
    )
    pissa_convert: bool = Field(
        True, description="PiSSA: save the adapter as plain LoRA over the original base (always on here)."
    )
    loraplus_lr_ratio: float | None = Field(
        None,
        gt=0.0,
        le=1000.0,
        description="LoRA+: the B matrices learn at learning_rate × this ratio (the paper suggests 16).",
    )
    loraplus_lr_embedding: float = Field(
        1e-6, gt=0.0, le=10.0, description="LoRA+: learning rate of LoRA embedding adapters (LF's default)."
    )
    freeze_trainable_layers: int = Field(
        2, ge=-1024, le=1024, description="freeze: train the last N layers (negative: the first |N|), as LF."
    )
    freeze_trainable_modules: str = Field(
        "all", description="freeze: comma-separated module names inside the trainable layers, or `all`."
    )
    freeze_extra_modules: str | None = Field(
        None,
        description="freeze: comma-separated modules outside the layers to train too (e.g. embed_tokens).",
    )
    pref_beta: float = Field(
        0.1, gt=0.0, le=100.0, description="DPO / KTO beta: strength of the preference term."
    )
    pref_loss: Literal["sigmoid", "hinge", "ipo", "orpo", "simpo"] = Field(
        "sigmoid", description="Preference loss: `sigmoid` is standard DPO."
    )
    pref_ftx: float = Field(
        0.0, ge=0.0, le=100.0, description="Weight of an added SFT loss on the chosen answer in DPO."
    )
    dpo_label_smoothing: float = Field(0.0, ge=0.0, le=0.5, description="Robust DPO label smoothing.")
    kto_chosen_weight: float = Field(
        1.0, gt=0.0, le=100.0, description="KTO: weight of the loss on desirable (label true) examples."
    )
    kto_rejected_weight: float = Field(
        1.0, gt=0.0, le=100.0, description="KTO: weight of the loss on undesirable (label false) examples."
    )

    # ---- template ----------------------------------------------------------------------------
    template: str = Field(
        "auto",
        description="Chat template: `auto` uses the tokenizer's own; or an LF name: "
        + ", ".join(n for n in TEMPLATE_NAMES if n != "auto")
        + ".",
    )
    default_system: str | None = Field(None, description="System prompt used when an example has none.")
    new_special_tokens: str | None = Field(
        None,
        max_length=8192,
        description="Comma-separated special tokens added to the tokenizer; the embeddings grow and "
        "(with LoRA, unless additional_target is set) the embedding and output layers train too.",
    )

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
    cutoff_len: int = Field(
        2048, ge=8, le=MAX_TOKENS, description="Maximum tokens per example (per row when packing)."
    )
    rope_scaling: RopeScaling | None = Field(
        None,
        description="Stretch RoPE for contexts longer than the model's max positions: the factor is "
        "cutoff_len / max_position_embeddings, rounded up (LF); no effect when cutoff_len fits.",
    )
    truncation: Truncation = Field(
        "right",
        description="Over-long examples: `right` cuts the end (LF's per-turn budget), `left` keeps the most "
        "recent turns, `drop` skips them.",
    )
    max_samples: int | None = Field(
        None, ge=1, le=MAX_ROWS, description="Use at most this many rows from each dataset (LF)."
    )
    val_size: float = Field(
        0.0,
        ge=0.0,
        le=MAX_ROWS,
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
        None,
        ge=1,
        le=MAX_WORKERS,
        description="Processes for tokenisation (default: a few, bounded by CPU count).",
    )
    data_cache_dir: str | None = Field(
        None, description="Where tokenised datasets are cached by content hash (default: the shared cache)."
    )

    # ---- hyperparameters ---------------------------------------------------------------------
    learning_rate: float = Field(5e-5, gt=0.0, le=10.0, description="Peak learning rate.")
    num_train_epochs: float = Field(
        3.0, gt=0.0, le=10_000.0, description="Epochs to train (ignored when max_steps > 0)."
    )
    max_steps: int = Field(
        -1, ge=-1, le=MAX_STEPS, description="Total optimiser steps; -1 means use num_train_epochs."
    )
    lr_scheduler_type: SchedulerType = Field("cosine", description="Learning-rate schedule.")
    warmup_ratio: float = Field(0.0, ge=0.0, le=1.0, description="Fraction of steps spent warming up.")
    warmup_steps: int = Field(
        0, ge=0, le=MAX_STEPS, description="Warm-up steps (wins over warmup_ratio when > 0)."
    )
    weight_decay: float = Field(0.0, ge=0.0, le=10.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, ge=0.0, le=1e6, description="Gradient clipping norm (0 disables).")
    per_device_train_batch_size: int = Field(
        1, ge=1, le=MAX_BATCH, description="Examples (or packed rows) per device per step."
    )
    per_device_eval_batch_size: int = Field(
        1, ge=1, le=MAX_BATCH, description="Examples per device per evaluation step."
    )
    gradient_accumulation_steps: int = Field(
        1, ge=1, le=MAX_BATCH, description="Micro-batches accumulated per optimiser step."
    )
    gradient_checkpointing: bool = Field(
        False,
        description="Recompute activations to save memory (slower). Off by default; LF's "
        "`disable_gradient_checkpointing` is accepted too.",
    )
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Seed for weights init, shuffling and dropout.")
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
    devices: Literal["auto", "cpu"] | list[Annotated[int, Field(le=MAX_DEVICE_INDEX)]] = Field(
        "auto", description="`cpu`, `auto` (all visible GPUs, else CPU), or CUDA device indices; >1 runs DDP."
    )
    use_cpu: bool | None = Field(None, description="HF/LF flag; true means devices: cpu.")
    dataloader_num_workers: int = Field(
        0, ge=0, le=MAX_LOADER_WORKERS, description="DataLoader worker processes."
    )

    # ---- speed switches; each keeps the per-example loss unchanged -----------------------------
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
        None,
        ge=1,
        le=1024,
        description="Round padded batch lengths up to a multiple (tensor-core friendly on GPU).",
    )

    # ---- logging, evaluation, checkpoints ----------------------------------------------------
    output_dir: str | None = Field(
        None, description="Where outputs go; executors use RUN_DIR/output and override this."
    )
    logging_steps: int = Field(10, ge=1, le=MAX_STEPS, description="Log metrics every N optimiser steps.")
    eval_strategy: Literal["no", "steps", "epoch"] | None = Field(
        None, description="When to evaluate; default: every eval_steps when there is validation data."
    )
    eval_steps: int | None = Field(
        None, ge=1, le=MAX_STEPS, description="Evaluate every N steps (default: logging_steps)."
    )
    save_strategy: Literal["no", "steps", "epoch"] = Field("steps", description="When to write checkpoints.")
    save_steps: int = Field(500, ge=1, le=MAX_STEPS, description="Checkpoint every N steps.")
    save_every_minutes: float | None = Field(
        10.0, le=7 * 24 * 60, description="Also checkpoint every M minutes of training (null disables)."
    )
    save_total_limit: int | None = Field(
        None, ge=1, le=10_000, description="Keep only the last K checkpoints."
    )
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
        le=3600,
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

    @field_validator("new_special_tokens", mode="before")
    @classmethod
    def _token_list(cls, v: Any) -> Any:
        return normalise_new_tokens(v)

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
            hint = did_you_mean(v, TEMPLATE_NAMES)
            raise ValueError(f"unknown template {v!r}{hint}; supported: {', '.join(TEMPLATE_NAMES)}")
        return v
