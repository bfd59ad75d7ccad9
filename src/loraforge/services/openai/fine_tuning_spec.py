"""An OpenAI fine-tuning request in LoRAForge's terms: the request checks, the job spec derived from it,
and the way back (a spec's numbers as OpenAI hyperparameters, spec errors named as request fields).

Choices (the OpenAI API leaves them to the platform):
- "auto" hyperparameters: n_epochs 3 (the engine's default, and what OpenAI picks for small files),
  batch_size 4, learning_rate = 1e-4 × multiplier (multiplier "auto" = 1; 1e-4 is a usual LoRA rate),
  DPO beta 0.1. The resolved numbers are what the job object reports.
- LoRA always (`finetuning_type: lora`), metrics every step (OpenAI reports every step), a checkpoint
  per epoch (OpenAI keeps per-epoch checkpoints). `loraforge_spec` (a dict in the body, e.g. through the
  client's `extra_body`) is merged over the derived spec and validated like any job spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from loraforge.db.models import DatasetVersion
from loraforge.errors import FieldIssue, InvalidInput

BASE_LEARNING_RATE = 1e-4
AUTO_EPOCHS = 3
AUTO_BATCH_SIZE = 4
AUTO_BETA = 0.1
STAGES = {"supervised": "sft", "dpo": "dpo"}
# Keys the request itself decides; `loraforge_spec` may not override them.
_REQUEST_KEYS = ("model_name_or_path", "stage", "dataset", "dataset_version", "validation_dataset",
                 "validation_dataset_version")  # fmt: skip
# Error fields of the derived spec, named as the OpenAI request names them.
_FIELD_OF_SPEC_KEY = {
    "model_name_or_path": "model",
    "dataset": "training_file",
    "dataset_version": "training_file",
    "validation_dataset": "validation_file",
    "validation_dataset_version": "validation_file",
    "num_train_epochs": "hyperparameters.n_epochs",
    "per_device_train_batch_size": "hyperparameters.batch_size",
    "learning_rate": "hyperparameters.learning_rate_multiplier",
    "pref_beta": "hyperparameters.beta",
    "seed": "seed",
}
# Spec keys behind the OpenAI hyperparameters (a `loraforge_spec` that sets them wins; reported back).
_SPEC_HYPERPARAMETERS = {
    "num_train_epochs": "n_epochs",
    "per_device_train_batch_size": "batch_size",
    "learning_rate": "learning_rate_multiplier",
    "pref_beta": "beta",
}
_SUFFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def invalid(field: str, message: str, code: str = "invalid_request") -> InvalidInput:
    """An InvalidInput naming one request field (OpenAI's `param`)."""
    return InvalidInput(f"{field}: {message}", code=code, fields=[FieldIssue(field=field, message=message)])


@dataclass(frozen=True)
class FineTuneRequest:
    model: str
    training_file: str
    validation_file: str | None = None
    suffix: str | None = None
    seed: int | None = None
    metadata: dict[str, str] | None = None
    hyperparameters: dict[str, Any] | None = None  # legacy top-level form
    method: dict[str, Any] | None = None  # {type, supervised|dpo: {hyperparameters}}
    loraforge_spec: dict[str, Any] | None = None


def resolve_hyperparameters(method_type: str, given: dict[str, Any]) -> dict[str, Any]:
    """The numbers a job uses: the given ones, "auto" (or absent) replaced by the defaults above."""

    def pick(key: str, auto: Any) -> Any:
        value = given.get(key)
        return auto if value in (None, "auto") else value

    resolved: dict[str, Any] = {
        "n_epochs": int(pick("n_epochs", AUTO_EPOCHS)),
        "batch_size": int(pick("batch_size", AUTO_BATCH_SIZE)),
        "learning_rate_multiplier": float(pick("learning_rate_multiplier", 1.0)),
    }
    if method_type == "dpo":
        resolved["beta"] = float(pick("beta", AUTO_BETA))
    return resolved


def method_of(request: FineTuneRequest) -> tuple[str, dict[str, Any]]:
    """(method type, the hyperparameters as given), from `method` or the legacy `hyperparameters`."""
    method = request.method or {}
    method_type = str(method.get("type") or "supervised")
    if method_type not in STAGES:
        raise invalid(
            "method.type", f"{method_type!r} is not supported here; use 'supervised' or 'dpo'", "unsupported"
        )
    section = method.get(method_type) or {}
    given = dict(section.get("hyperparameters") or {}) if isinstance(section, dict) else {}
    where = f"method.{method_type}.hyperparameters"
    if not given and request.hyperparameters:
        given, where = dict(request.hyperparameters), "hyperparameters"
    if "beta" in given and method_type != "dpo":
        raise invalid(f"{where}.beta", "beta applies to the dpo method only")
    return method_type, given


def check_request(request: FineTuneRequest) -> None:
    """The request's own rules (suffix, metadata, keys `loraforge_spec` may not set)."""
    if request.suffix is not None and not _SUFFIX.fullmatch(request.suffix):
        raise invalid("suffix", "1 to 64 characters: letters, digits, '.', '_' or '-' (not first)")
    metadata = request.metadata or {}
    if len(metadata) > 16:
        raise invalid("metadata", "at most 16 keys")
    for key, value in metadata.items():
        if len(key) > 64 or len(value) > 512:
            raise invalid(f"metadata.{key}", "keys are at most 64 characters, values at most 512")
    for key in request.loraforge_spec or {}:
        if key in _REQUEST_KEYS:
            raise invalid(f"loraforge_spec.{key}", "set by the request (model, method, training_file)")


def check_training_rows(method_type: str, version: DatasetVersion, filename: str) -> None:
    """The method must fit the training file's rows (dpo: preference pairs; supervised: not)."""
    wants = "preference" if method_type == "dpo" else None
    if wants and version.format != wants:
        raise invalid("training_file", f"the dpo method needs preference rows; {filename} has "
                      f"{version.format} rows")  # fmt: skip
    if version.format == "multiple_choice":
        raise invalid("training_file", f"{filename} holds multiple-choice questions, for evaluation only")
    if method_type == "supervised" and version.format in ("preference", "kto"):
        raise invalid("training_file", f"{version.format} rows need method dpo, not supervised")


def derive_spec(
    *, model: str, method_type: str, resolved: dict[str, Any], version: DatasetVersion, seed: int
) -> dict[str, Any]:
    """The job spec before validation files and `loraforge_spec` are added."""
    spec: dict[str, Any] = {
        "model_name_or_path": model,
        "stage": STAGES[method_type],
        "finetuning_type": "lora",
        "dataset": version.dataset_id,
        "dataset_version": version.id,  # exactly the uploaded rows, even if the dataset changes later
        "num_train_epochs": resolved["n_epochs"],
        "per_device_train_batch_size": resolved["batch_size"],
        "learning_rate": BASE_LEARNING_RATE * resolved["learning_rate_multiplier"],
        "seed": seed,
        "logging_steps": 1,
        "save_strategy": "epoch",
    }
    if method_type == "dpo":
        spec["pref_beta"] = resolved["beta"]
    return spec


def report_overrides(resolved: dict[str, Any], spec: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Where `loraforge_spec` set a hyperparameter's spec key, report what the job really uses."""
    overridden = set(overrides) & set(_SPEC_HYPERPARAMETERS)
    if overridden:
        from_spec = spec_hyperparameters(spec)
        for key in overridden:
            if _SPEC_HYPERPARAMETERS[key] in from_spec:
                resolved[_SPEC_HYPERPARAMETERS[key]] = from_spec[_SPEC_HYPERPARAMETERS[key]]


def spec_hyperparameters(spec: dict[str, Any]) -> dict[str, Any]:
    """For jobs made elsewhere: the spec's numbers in OpenAI's terms."""
    epochs = float(spec.get("num_train_epochs") or AUTO_EPOCHS)
    out: dict[str, Any] = {
        "n_epochs": int(epochs) if epochs.is_integer() else epochs,
        "batch_size": int(spec.get("per_device_train_batch_size") or 1),
        "learning_rate_multiplier": float(spec.get("learning_rate") or 5e-5) / BASE_LEARNING_RATE,
    }
    if spec.get("stage") == "dpo":
        out["beta"] = float(spec.get("pref_beta") or AUTO_BETA)
    return out


def remap_spec_error(exc: InvalidInput) -> InvalidInput:
    """Name the OpenAI request's fields in errors from the spec check (`spec.num_train_epochs` →
    `hyperparameters.n_epochs`, other spec keys → `loraforge_spec.<key>`)."""

    def field(name: str) -> str:
        key = name.removeprefix("spec.")
        return _FIELD_OF_SPEC_KEY.get(key.split(".")[0], f"loraforge_spec.{key}") if key != name else name

    fields = [FieldIssue(field=field(issue.field), message=issue.message) for issue in exc.fields]
    message = exc.message
    for issue, new in zip(exc.fields, fields, strict=True):
        message = message.replace(issue.field, new.field)
    return InvalidInput(message.replace("invalid job spec", "invalid fine-tuning job"), code=exc.code,
                        fields=fields)  # fmt: skip
