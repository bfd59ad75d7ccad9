"""Not generating twice: a run whose whole setup matches a succeeded run of the same owner reuses that
run's job (its files and totals); one whose generation matches but whose metrics differ gets a new job
that starts from the old answers (`seed_samples`) and only scores them again.

Keys are sha256 over canonical JSON (sorted keys, no spaces) of what decides the result:
- generation key: model identity (version id, `demo-tiny`, provider id + model), dataset version, split,
  generation parameters, and the options that change which prompts are asked (max_samples, n_shot);
- cache key: the generation key's parts plus the sorted metrics, every option and the judge config.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import Evaluation, EvaluationRun, Job, JobStatus

# Options that change the prompts themselves (and so the answers), not only their scoring.
_PROMPT_OPTIONS = ("max_samples", "n_shot")


def _digest(parts: dict[str, Any]) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _generation_parts(
    identity: str,
    dataset_version_id: int | None,
    split: str,
    generation: dict[str, Any],
    options: dict[str, Any],
) -> dict[str, Any]:
    return {
        "model": identity,
        "dataset_version": dataset_version_id,
        "split": split,
        "generation": generation,
        "prompts": {k: options.get(k) for k in _PROMPT_OPTIONS},
    }


def generation_key(
    identity: str,
    dataset_version_id: int | None,
    split: str,
    generation: dict[str, Any],
    options: dict[str, Any],
) -> str:
    return _digest(_generation_parts(identity, dataset_version_id, split, generation, options))


def cache_key(
    identity: str,
    dataset_version_id: int | None,
    split: str,
    generation: dict[str, Any],
    options: dict[str, Any],
    metrics: list[str],
    judge: dict[str, Any] | None,
) -> str:
    parts = _generation_parts(identity, dataset_version_id, split, generation, options)
    parts.update(metrics=sorted(metrics), options=options, judge=judge)
    return _digest(parts)


def succeeded_run(session: Session, *, owner_id: int, key: str) -> EvaluationRun | None:
    """The newest run of the owner with this cache key whose job succeeded (its files are there)."""
    query = (
        select(EvaluationRun)
        .join(Job, Job.id == EvaluationRun.job_id)
        .where(
            EvaluationRun.owner_id == owner_id,
            EvaluationRun.cache_key == key,
            Job.status == JobStatus.succeeded.value,
            Job.files_removed_at.is_(None),
        )
        .order_by(EvaluationRun.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def seed_job(session: Session, *, owner_id: int, key: str) -> Job | None:
    """A succeeded job of the owner whose answers were generated exactly as a new run's would be. The
    generation key is not stored: it is recomputed from each candidate run's evaluation (the newest
    500 succeeded runs of the owner are enough to find a recent one)."""
    query = (
        select(EvaluationRun, Evaluation, Job)
        .join(Evaluation, Evaluation.id == EvaluationRun.evaluation_id)
        .join(Job, Job.id == EvaluationRun.job_id)
        .where(
            EvaluationRun.owner_id == owner_id,
            Job.status == JobStatus.succeeded.value,
            Job.files_removed_at.is_(None),
        )
        .order_by(EvaluationRun.id.desc())
        .limit(500)
    )
    for run, evaluation, job in session.execute(query).all():
        identity = run_identity(run)
        other = generation_key(
            identity,
            evaluation.dataset_version_id,
            evaluation.split,
            evaluation.generation,
            evaluation.options,
        )
        if other == key:
            return job
    return None


def run_identity(run: EvaluationRun) -> str:
    if run.model_kind == "registered":
        return f"version:{run.model_version_id}"
    if run.model_kind == "provider":
        return f"provider:{run.provider_id}:{run.model_name.partition('/')[2]}"
    return "demo-tiny"
