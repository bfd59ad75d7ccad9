"""The evaluation vocabulary shared by jobs and evaluations, and the `evaluation` block of a training spec.

A training spec may ask for a before/after evaluation: `"evaluation": {"dataset": id, "dataset_version":
id?, "metrics": [...], "generation": {...}?, "max_samples": int?}`. It is checked here when the job is
submitted (field errors `spec.evaluation.*`), stored with the job (dataset version pinned), never passed to
the engine (`services.jobs.specs` leaves it out), and read by `services.evaluation.before_after` once the
job succeeded. The evaluation domain sits above jobs, so the shared names and bounds live here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import DatasetVersion, User
from loraforge.errors import FieldIssue, InvalidInput, NotFound
from loraforge.services.datasets import catalog as dataset_catalog

STAGE = "evaluation"
SPEC_KEY = "evaluation"  # the before/after block of a training spec
METRICS: tuple[str, ...] = (
    "bleu", "rouge", "sacrebleu", "chrf", "exact_match", "contains", "regex", "valid_json",
    "perplexity", "multiple_choice", "judge",
)  # fmt: skip
SPLITS: tuple[str, ...] = ("all", "test", "train")
MAX_NEW_TOKENS = 4096
GENERATION_DEFAULTS: dict[str, Any] = {"max_new_tokens": 256, "temperature": 0.0, "top_p": 1.0}
MAX_SAMPLES = 1_000_000


def is_evaluation(spec: dict[str, Any] | None) -> bool:
    return (spec or {}).get("stage") == STAGE


def _issue(field: str, message: str, *, prefix: str) -> InvalidInput:
    name = f"{prefix}{field}"
    return InvalidInput(f"{name}: {message}", code="invalid_evaluation", fields=[FieldIssue(name, message)])


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_generation(raw: Any, *, prefix: str = "") -> dict[str, Any]:
    """`generation` with its defaults filled in: max_new_tokens 1–4096, temperature 0–2, top_p in (0, 1]."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _issue("generation", "must be an object", prefix=prefix)
    unknown = sorted(set(raw) - set(GENERATION_DEFAULTS))
    if unknown:
        raise _issue(f"generation.{unknown[0]}", "unknown key", prefix=prefix)
    out = {**GENERATION_DEFAULTS, **raw}
    tokens = out["max_new_tokens"]
    if not isinstance(tokens, int) or isinstance(tokens, bool) or not 1 <= tokens <= MAX_NEW_TOKENS:
        raise _issue("generation.max_new_tokens", f"an integer from 1 to {MAX_NEW_TOKENS}", prefix=prefix)
    if not _number(out["temperature"]) or not 0 <= out["temperature"] <= 2:
        raise _issue("generation.temperature", "a number from 0 to 2", prefix=prefix)
    if not _number(out["top_p"]) or not 0 < out["top_p"] <= 1:
        raise _issue("generation.top_p", "a number above 0, at most 1", prefix=prefix)
    return {"max_new_tokens": tokens, "temperature": float(out["temperature"]), "top_p": float(out["top_p"])}


def check_metrics(raw: Any, *, prefix: str = "") -> list[str]:
    """At least one known metric, none twice; multiple_choice alone (it reads a question file)."""
    if not isinstance(raw, list) or not raw:
        raise _issue("metrics", f"name at least one of {', '.join(METRICS)}", prefix=prefix)
    for i, name in enumerate(raw):
        if name not in METRICS:
            raise _issue(
                f"metrics[{i}]", f"unknown metric {name!r}; use one of {', '.join(METRICS)}", prefix=prefix
            )
    if len(set(raw)) != len(raw):
        raise _issue("metrics", "a metric is listed twice", prefix=prefix)
    if "multiple_choice" in raw and len(raw) > 1:
        raise _issue(
            "metrics",
            "multiple_choice reads a question file; evaluate other metrics separately",
            prefix=prefix,
        )
    return [str(m) for m in raw]


def parse_row_id(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 2**63 - 1:
        return value
    return None


def resolve_test_set(
    session: Session, *, actor: User, dataset: Any, version: Any, prefix: str = ""
) -> DatasetVersion:
    """The dataset version `actor` may read: `version` of `dataset`, or its current one. A dataset the
    actor may not read answers like a missing one (404 naming the field)."""
    dataset_id = parse_row_id(dataset)
    if dataset_id is None:
        raise _issue("dataset", "the id of a dataset", prefix=prefix)
    try:
        found = dataset_catalog.get_dataset(session, actor=actor, dataset_id=dataset_id)
    except NotFound:
        raise NotFound(
            f"dataset {dataset_id} does not exist or you do not have access to it",
            code="dataset_not_found",
            fields=[FieldIssue(f"{prefix}dataset", "no such dataset that you may use")],
        ) from None
    version_id = found.current_version_id if version is None else parse_row_id(version)
    row = session.get(DatasetVersion, version_id) if version_id is not None else None
    if row is None or row.dataset_id != found.id:
        raise NotFound(
            f"dataset {dataset_id} has no version {version}",
            code="version_not_found",
            fields=[FieldIssue(f"{prefix}dataset_version", "not a version of this dataset")],
        )
    return row


def check_before_after(session: Session, *, actor: User, block: Any) -> dict[str, Any]:
    """The `evaluation` block of a training spec, checked and with the dataset version pinned."""
    prefix = "spec.evaluation."
    if not isinstance(block, dict):
        raise InvalidInput(
            "spec.evaluation: must be an object",
            code="invalid_spec",
            fields=[FieldIssue("spec.evaluation", "must be an object")],
        )
    allowed = {"dataset", "dataset_version", "metrics", "generation", "max_samples"}
    unknown = sorted(set(block) - allowed)
    if unknown:
        raise _issue(unknown[0], "unknown key", prefix=prefix)
    version = resolve_test_set(
        session,
        actor=actor,
        dataset=block.get("dataset"),
        version=block.get("dataset_version"),
        prefix=prefix,
    )
    metrics = check_metrics(block.get("metrics"), prefix=prefix)
    if "judge" in metrics or "regex" in metrics:
        # A before/after block has no judge model and no pattern: those need the evaluation form.
        raise _issue(
            "metrics", "judge and regex need options only an evaluation of its own takes", prefix=prefix
        )
    out: dict[str, Any] = {
        "dataset": version.dataset_id,
        "dataset_version": version.id,
        "metrics": metrics,
        "generation": check_generation(block.get("generation"), prefix=prefix),
    }
    max_samples = block.get("max_samples")
    if max_samples is not None:
        if parse_row_id(max_samples) is None or max_samples > MAX_SAMPLES:
            raise _issue("max_samples", f"an integer from 1 to {MAX_SAMPLES}", prefix=prefix)
        out["max_samples"] = max_samples
    return out
