"""The job spec: the engine's one input, in LLaMA-Factory's vocabulary.

Researchers already write LLaMA-Factory (LF) training YAMLs, so every concept LF has keeps LF's key
name and meaning, and LF's example YAMLs load unchanged. Concepts LF lacks get new keys in the same
flat style (`precision`, `devices`, `save_every_minutes`, `truncation`, `columns`, ...).

The keys themselves are in `spec_fields`; this module adds what ties them together: cross-field
checks, the resolution of LF's overlapping flags into one meaning each, and derived views. Reading
a spec from a file or a dict (unknown keys, LF aliases, `SpecError`) is `spec_loading`.

Torch-free on purpose: the server imports this module to validate jobs and to export the JSON
schema for the UI form.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import model_validator

from loraforge.engine.spec_adapters import adapter_problems
from loraforge.engine.spec_fields import JobSpecFields

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


class JobSpec(JobSpecFields):
    """A training job: model, method, data, hyperparameters, devices, logging and output."""

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
        if self.stage == "kto":  # unpaired examples with a true/false label, never packed or paired
            if self.ranking:
                problems.append(
                    "ranking: true contradicts stage: kto, which needs a KTO dataset (a label per example)"
                )
            for key in ("packing", "neat_packing"):
                if getattr(self, key):
                    problems.append(f"{key} is not supported with stage: kto (examples are scored whole)")
            if self.pref_ftx:
                problems.append("pref_ftx is not supported with stage: kto")
            if "lm_head" in self.lora_target.split(","):
                problems.append("lora_target cannot include lm_head with stage: kto (TRL never trains it)")
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
        problems.extend(adapter_problems(self))
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
