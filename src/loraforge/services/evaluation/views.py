"""The Evaluation as the API shows it (`api/schemas/evaluations.py` `EvaluationPublic`), one typed
builder for every route that returns one (the reports and samples routes reuse `evaluation_view`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy.orm import Session

from loraforge.db.models import Dataset, DatasetVersion, Evaluation, EvaluationRun, ModelVersion, User
from loraforge.services.evaluation.access import runs_of
from loraforge.services.evaluation.status import Overview, overview


class RunView(TypedDict):
    id: int
    position: int
    model: str
    model_kind: str
    model_id: int | None
    model_version_id: int | None
    job_id: int | None
    job_status: str | None
    cached: bool
    progress: float | None
    eta_s: float | None
    error: dict[str, Any] | None
    results: dict[str, Any] | None


class EvaluationView(TypedDict):
    id: int
    name: str
    description: str
    owner: str
    owner_id: int
    dataset: dict[str, Any] | None
    dataset_version: dict[str, Any] | None
    split: str
    metrics: list[str]
    generation: dict[str, Any]
    options: dict[str, Any]
    judge: dict[str, Any] | None
    shared: bool
    source_job_id: int | None
    status: str
    progress: float | None
    runs: list[RunView]
    judge_job_id: int | None
    judge_results: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


def _model_id(session: Session, run: EvaluationRun) -> int | None:
    if run.model_version_id is None:
        return None
    version = session.get(ModelVersion, run.model_version_id)
    return version.model_id if version is not None else None


def run_view(session: Session, run: EvaluationRun, info: Overview) -> RunView:
    state = info.runs[run.id]
    return {
        "id": run.id,
        "position": run.position,
        "model": run.model_name,
        "model_kind": run.model_kind,
        "model_id": _model_id(session, run),
        "model_version_id": run.model_version_id,
        "job_id": run.job_id,
        "job_status": state.status,
        "cached": run.cached,
        "progress": state.progress,
        "eta_s": state.eta_s,
        "error": state.error,
        "results": run.results,
    }


def evaluation_view(session: Session, evaluation: Evaluation) -> EvaluationView:
    runs = runs_of(session, evaluation)
    info = overview(session, evaluation, runs)
    owner = session.get(User, evaluation.owner_id)
    dataset = session.get(Dataset, evaluation.dataset_id) if evaluation.dataset_id else None
    version = (
        session.get(DatasetVersion, evaluation.dataset_version_id) if evaluation.dataset_version_id else None
    )
    return {
        "id": evaluation.id,
        "name": evaluation.name,
        "description": evaluation.description,
        "owner": owner.username if owner is not None else "",
        "owner_id": evaluation.owner_id,
        "dataset": {"id": dataset.id, "name": dataset.name} if dataset is not None else None,
        "dataset_version": {"id": version.id, "number": version.number} if version is not None else None,
        "split": evaluation.split,
        "metrics": list(evaluation.metrics or []),
        "generation": dict(evaluation.generation or {}),
        "options": dict(evaluation.options or {}),
        "judge": evaluation.judge,
        "shared": evaluation.shared,
        "source_job_id": evaluation.source_job_id,
        "status": info.status,
        "progress": info.progress,
        "runs": [run_view(session, run, info) for run in runs],
        "judge_job_id": evaluation.judge_job_id,
        "judge_results": evaluation.judge_results,
        "created_at": evaluation.created_at,
        "updated_at": evaluation.updated_at,
    }
