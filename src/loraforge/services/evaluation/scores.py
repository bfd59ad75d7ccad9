"""A model version's scores: every evaluation the reader may see that scored the version, with its
totals and, where the same evaluation also scored the version's base model, the base's totals and
the delta (this version − base) per metric."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from loraforge.db.models import Dataset, DatasetVersion, Evaluation, EvaluationRun, ModelVersion, User
from loraforge.services.models.catalog import get_version
from loraforge.services.models.refs import DEMO_MODEL
from loraforge.services.platform import ownership


class ScoreItem(TypedDict):
    evaluation_id: int
    evaluation_name: str
    dataset: dict[str, Any] | None
    dataset_version: dict[str, Any] | None
    run_id: int
    metrics: dict[str, float]
    base: dict[str, Any] | None
    delta: dict[str, float] | None
    created_at: datetime


def _base_run(version: ModelVersion, others: list[EvaluationRun]) -> EvaluationRun | None:
    for run in others:
        if version.base_version_id is not None and run.model_version_id == version.base_version_id:
            return run
        if (
            version.base_version_id is None
            and version.base_ref == DEMO_MODEL
            and run.model_name == DEMO_MODEL
        ):
            return run
    return None


def _metrics(run: EvaluationRun) -> dict[str, float]:
    return dict((run.results or {}).get("metrics") or {})


def version_scores(session: Session, *, actor: User, version_id: int, limit: int = 100) -> list[ScoreItem]:
    _, version = get_version(session, actor=actor, version_id=version_id)
    query = (
        select(EvaluationRun, Evaluation)
        .join(Evaluation, Evaluation.id == EvaluationRun.evaluation_id)
        .where(EvaluationRun.model_version_id == version.id, EvaluationRun.results.is_not(None))
        .order_by(Evaluation.created_at.desc(), Evaluation.id.desc())
        .limit(limit)
    )
    owner_id = ownership.owner_scope(actor, staff_may=ownership.STAFF)
    if owner_id is not None:
        query = query.where(or_(Evaluation.owner_id == owner_id, Evaluation.shared.is_(True)))
    items: list[ScoreItem] = []
    for run, evaluation in session.execute(query).all():
        others = list(
            session.scalars(
                select(EvaluationRun)
                .where(EvaluationRun.evaluation_id == evaluation.id, EvaluationRun.id != run.id)
                .order_by(EvaluationRun.position)
            )
        )
        base = _base_run(version, others)
        mine = _metrics(run)
        base_view = delta = None
        if base is not None and base.results is not None:
            theirs = _metrics(base)
            base_view = {"model": base.model_name, "run_id": base.id, "metrics": theirs}
            delta = {k: round(v - theirs[k], 6) for k, v in mine.items() if k in theirs}
        dataset = session.get(Dataset, evaluation.dataset_id) if evaluation.dataset_id else None
        dv = (
            session.get(DatasetVersion, evaluation.dataset_version_id)
            if evaluation.dataset_version_id
            else None
        )
        items.append({
            "evaluation_id": evaluation.id,
            "evaluation_name": evaluation.name,
            "dataset": {"id": dataset.id, "name": dataset.name} if dataset is not None else None,
            "dataset_version": {"id": dv.id, "number": dv.number} if dv is not None else None,
            "run_id": run.id,
            "metrics": mine,
            "base": base_view,
            "delta": delta,
            "created_at": evaluation.created_at,
        })  # fmt: skip
    return items
