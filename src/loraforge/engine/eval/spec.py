"""The evaluation spec: one model × one test set × metrics × generation parameters.

Keys follow LLaMA-Factory's `do_predict` YAML where LF has the concept (`model_name_or_path`,
`eval_dataset`, `predict_with_generate`, `max_new_tokens`, `per_device_eval_batch_size`, ...), so an
LF prediction config runs unchanged; `metrics` and the metric options are ours. Unknown keys are
refused with a did-you-mean, exactly as job specs are (`spec_loading.SpecError`).

Torch-free: a future evaluation service validates specs with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loraforge.engine.chat_templates import TEMPLATE_NAMES
from loraforge.engine.eval.batching import BatchPlan
from loraforge.engine.spec_fields import MAX_BATCH, MAX_ROWS, MAX_TOKENS, Formatting, did_you_mean
from loraforge.engine.spec_loading import FieldProblem, SpecError, shape_problem, shown_key

Metric = Literal[
    "bleu",
    "rouge",
    "sacrebleu",
    "chrf",
    "exact_match",
    "contains",
    "regex",
    "valid_json",
    "perplexity",
    "multiple_choice",
    "judge",
]
GENERATION_METRICS: frozenset[str] = frozenset(
    {"bleu", "rouge", "sacrebleu", "chrf", "exact_match", "contains", "regex", "valid_json", "judge"}
)
# Metrics read from the model's logits: a provider model (an HTTP endpoint) cannot give them.
LOGIT_METRICS: frozenset[str] = frozenset({"perplexity", "multiple_choice"})

# LF prediction keys that steer LF's own machinery; accepted so LF configs load, and without effect.
LF_IGNORED_KEYS: dict[str, str] = {
    "stage": "an evaluation has no training stage",
    "do_predict": "an evaluation always predicts",
    "do_train": "an evaluation never trains",
    "finetuning_type": "the adapter (if any) is merged for inference",
    "overwrite_output_dir": "results are resumed, never silently overwritten",
    "overwrite_cache": "prompts are rendered on every run",
    "preprocessing_num_workers": "prompts are rendered in the evaluating process",
    "dataloader_num_workers": "batches are built in the evaluating process",
    "report_to": "results are written to output_dir",
    "plot_loss": "nothing to plot",
    "ddp_timeout": "evaluations run on one device",
    "include_num_input_tokens_seen": "token counts are always reported",
    "use_fast_tokenizer": "fast tokenizers are always used",
    "skip_special_tokens": "special tokens are always left out of predictions (LF's default)",
    "length_penalty": "only used by beam search, which is not supported",
    "infer_backend": "evaluations generate with transformers",
    "flash_attn": "the model's default attention is used",
}


class EvalSpecError(SpecError):
    """A spec problem list, as job specs report them, headed as an evaluation spec's."""

    def __init__(self, problems: list[FieldProblem], source: str | None = None) -> None:
        super().__init__(problems, source)
        self.args = (str(self).replace("invalid job spec", "invalid evaluation spec", 1),)


def _default_metrics() -> list[Metric]:
    return ["bleu", "rouge"]  # what LLaMA-Factory's predict_with_generate reports


class EvalSpec(BaseModel):
    """An evaluation run; `load_eval_spec` reads it from YAML/JSON or a dict."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    # ---- model -------------------------------------------------------------------------------
    model_name_or_path: str = Field(description="A local model folder or a Hub id (as for training).")
    adapter_name_or_path: str | None = Field(None, description="A LoRA adapter folder, merged for inference.")
    template: str = Field("auto", description="Chat template, as for training (`auto`: the tokenizer's own).")
    default_system: str | None = Field(None, description="System prompt used when an example has none.")
    trust_remote_code: bool = False

    # ---- data --------------------------------------------------------------------------------
    eval_dataset: list[str] = Field(
        description="The test set: comma-separated names from dataset_dir/dataset_info.json, or file paths."
    )
    dataset_dir: str = Field("data", description="Folder holding dataset_info.json and the files it names.")
    formatting: Formatting | None = Field(None, description="Row format of file-path datasets (detected).")
    columns: dict[str, str] | None = Field(None, description="Column mapping for file-path datasets.")
    cutoff_len: int = Field(2048, ge=8, le=MAX_TOKENS, description="Prompt + answer token budget (LF).")
    max_samples: int | None = Field(
        None, ge=1, le=MAX_ROWS, description="At most this many rows per dataset."
    )
    train_on_prompt: bool = Field(False, description="Perplexity labels: as the training run had them.")
    mask_history: bool = Field(False, description="Perplexity labels: as the training run had them.")

    # ---- generation --------------------------------------------------------------------------
    predict_with_generate: bool = Field(True, description="Generate answers (needed by text metrics).")
    max_new_tokens: int = Field(1024, ge=1, le=MAX_TOKENS, description="Longest answer generated (LF: 1024).")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0, description="Top-k when sampling (None: no top-k).")
    do_sample: bool | None = Field(None, description="LF flag: false forces greedy decoding.")
    num_beams: int = Field(1, ge=1, le=1, description="Beam search is not supported.")
    repetition_penalty: float = Field(1.0, gt=0.0, le=10.0)
    per_device_eval_batch_size: int | None = Field(
        None, ge=1, le=MAX_BATCH, description="Rows per batch; unset: as many as fit max_batch_tokens."
    )
    max_batch_tokens: int = Field(
        16384, ge=64, le=MAX_TOKENS, description="Token budget of a batch (prompts + answers) when unset."
    )
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Seed for sampling.")
    provider_concurrency: int = Field(
        4, ge=1, le=32, description="A provider model (or judge): requests in flight at once."
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    bf16: bool | None = None
    fp16: bool | None = None
    use_cpu: bool | None = Field(None, description="Run on the CPU even when a GPU is present.")

    # ---- metrics -----------------------------------------------------------------------------
    metrics: list[Metric] = Field(default_factory=_default_metrics)
    case_sensitive: bool = Field(False, description="exact_match / contains compare letter case.")
    regex_pattern: str | None = Field(None, max_length=1000, description="The pattern of the `regex` metric.")
    json_schema: dict[str, Any] | None = Field(None, description="`valid_json` also checks this schema.")
    n_shot: int = Field(0, ge=0, le=32, description="Solved examples before each multiple-choice question.")
    dev_dataset: str | None = Field(None, description="Multiple choice: the file the shots come from.")

    # ---- output ------------------------------------------------------------------------------
    output_dir: str | None = Field(None, description="Where the result files go (resumed when present).")
    compat_ignored: dict[str, Any] = Field(default_factory=dict)

    @field_validator("eval_dataset", "metrics", mode="before")
    @classmethod
    def _comma_list(cls, v: Any) -> Any:
        return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _cross_checks(self) -> EvalSpec:
        from loraforge.engine.eval.matching import check_schema, compile_pattern

        problems: list[str] = []
        if self.template not in TEMPLATE_NAMES:
            hint = did_you_mean(self.template, TEMPLATE_NAMES)
            problems.append(
                f"template: unknown {self.template!r}{hint}, use one of {', '.join(TEMPLATE_NAMES)}"
            )
        if not self.eval_dataset:
            problems.append("eval_dataset: name at least one test set")
        if not self.metrics:
            problems.append("metrics: name at least one metric")
        if len(set(self.metrics)) != len(self.metrics):
            problems.append("metrics: a metric is listed twice")
        text_metrics = sorted(GENERATION_METRICS & set(self.metrics))
        if text_metrics and not self.predict_with_generate:
            problems.append(
                f"predict_with_generate: false, but {', '.join(text_metrics)} score generated text"
            )
        if "regex" in self.metrics:
            if not self.regex_pattern:
                problems.append("regex_pattern: the regex metric needs a pattern")
            else:
                try:
                    compile_pattern(self.regex_pattern)
                except ValueError as exc:
                    problems.append(f"regex_pattern: {exc}")
        if self.json_schema is not None:
            try:
                check_schema(self.json_schema)
            except ValueError as exc:
                problems.append(f"json_schema: {exc}")
        if "multiple_choice" in self.metrics and len(self.metrics) > 1:
            problems.append(
                "metrics: multiple_choice reads a question file; evaluate other metrics separately"
            )
        if (self.n_shot or self.dev_dataset) and "multiple_choice" not in self.metrics:
            problems.append("n_shot / dev_dataset only apply to the multiple_choice metric")
        if problems:
            raise ValueError("; ".join(problems))
        if self.precision == "auto":
            self.precision = "bf16" if self.bf16 else "fp16" if self.fp16 else self.precision
        return self

    # ---- derived views -------------------------------------------------------------------------
    @property
    def greedy(self) -> bool:
        return self.do_sample is False or self.temperature == 0.0

    @property
    def devices(self) -> str:
        """`cpu` or `auto`, as `engine.model_loading` and the runtime read it."""
        return "cpu" if self.use_cpu else "auto"

    def batch_plan(self) -> BatchPlan:
        return BatchPlan(self.per_device_eval_batch_size, self.max_batch_tokens)

    def dataset_dir_path(self, base: str | os.PathLike[str] | None = None) -> Path:
        p = Path(os.path.expanduser(self.dataset_dir))
        return p if p.is_absolute() or base is None else Path(base) / p

    def generation_fingerprint(self) -> dict[str, Any]:
        """What decides the answers: a resumed run must match it, or its old answers mean nothing."""
        return self.model_dump(
            include={
                "model_name_or_path",
                "adapter_name_or_path",
                "template",
                "default_system",
                "eval_dataset",
                "dataset_dir",
                "formatting",
                "columns",
                "cutoff_len",
                "max_samples",
                "max_new_tokens",
                "temperature",
                "top_p",
                "top_k",
                "do_sample",
                "repetition_penalty",
                "seed",
                "precision",
                "train_on_prompt",
                "mask_history",
                "n_shot",
                "dev_dataset",
            }
        )


def _known() -> set[str]:
    return set(EvalSpec.model_fields) | set(LF_IGNORED_KEYS)


def load_eval_spec(source: str | os.PathLike[str] | dict[str, Any]) -> EvalSpec:
    """Read and validate an evaluation spec; `EvalSpecError` names every problem by key."""
    origin = None if isinstance(source, dict) else str(source)
    raw = dict(source) if isinstance(source, dict) else _read(Path(source))
    too_big = shape_problem(raw)
    if too_big is not None:
        raise EvalSpecError([too_big], origin)
    fields = set(EvalSpec.model_fields) - {"compat_ignored"}
    data: dict[str, Any] = {}
    ignored: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for key, value in raw.items():
        if key in fields:
            data[key] = value
        elif key in LF_IGNORED_KEYS:
            ignored[key] = value
        else:
            problems.append(
                FieldProblem(key=shown_key(key), message=f"unknown key{did_you_mean(str(key), _known())}")
            )
    if raw.get("stage") not in (None, "sft"):
        problems.append(FieldProblem(key="stage", message="an evaluation predicts like LF's `stage: sft`"))
    if raw.get("do_train"):
        problems.append(FieldProblem(key="do_train", message="an evaluation never trains; remove do_train"))
    data["compat_ignored"] = ignored
    try:
        spec = EvalSpec.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "required"
            if err["loc"]:
                problems.append(FieldProblem(key=".".join(str(p) for p in err["loc"]), message=msg))
            else:  # cross-field checks arrive as one message of "key: problem" parts
                for part in msg.split("; "):
                    key, colon, rest = part.partition(": ")
                    if colon and " " not in key:
                        problems.append(FieldProblem(key=key, message=rest))
                    else:
                        problems.append(FieldProblem(key=part.split(" ", 1)[0], message=part))
        raise EvalSpecError(problems, origin) from None
    if problems:
        raise EvalSpecError(problems, origin)
    return spec


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise EvalSpecError([FieldProblem(key="<file>", message=f"no such file: {path}")], str(path))
    import json

    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise EvalSpecError(
            [FieldProblem(key="<file>", message=f"not valid YAML/JSON: {exc}")], str(path)
        ) from None
    if not isinstance(data, dict):
        raise EvalSpecError(
            [FieldProblem(key="<root>", message="the spec must be a mapping of keys to values")], str(path)
        )
    return data
