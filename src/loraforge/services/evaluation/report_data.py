"""What a report shows, gathered once from the database and the runs' result files; `reports` renders it.

One evaluation's report covers its runs in model order (position 0 the baseline); a comparison's
covers the runs asked for, in that order, after `compare.select_runs` checked the actor may read them
and that they were scored on the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import Dataset, DatasetVersion, Evaluation, User
from loraforge.services.evaluation import compare, samples
from loraforge.services.evaluation.access import get_evaluation, run_files_dir, runs_of
from loraforge.settings import Settings


@dataclass
class ReportData:
    """Everything a report shows; built once, rendered in any format."""

    title: str
    evaluation: dict[str, Any] | None  # the evaluation's settings (None for a cross-evaluation comparison)
    dataset_version: dict[str, Any] | None
    comparison: dict[str, Any]  # compare.rank(...)
    sources: list[samples.RunSource]
    indices: list[int]
    per_run: list[dict[int, samples.Answer]]
    judge_results: dict[str, Any] | None = None
    generated_at: str = ""

    def records(self) -> Iterator[dict[str, Any]]:
        """Each sample as the sample browser shows it, in index order."""
        for index in self.indices:
            yield samples.sample_item(index, self.sources, self.per_run)

    def score_keys(self) -> list[str]:
        keys: list[str] = []
        for run in self.per_run:
            for answer in run.values():
                keys.extend(k for k in answer.scores if k not in keys)
        return keys


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _evaluation_info(session: Session, evaluation: Evaluation) -> dict[str, Any]:
    dataset = session.get(Dataset, evaluation.dataset_id) if evaluation.dataset_id is not None else None
    version = (
        session.get(DatasetVersion, evaluation.dataset_version_id)
        if evaluation.dataset_version_id is not None
        else None
    )
    owner = session.get(User, evaluation.owner_id)
    return {
        "id": evaluation.id,
        "name": evaluation.name,
        "description": evaluation.description,
        "owner": owner.username if owner else None,
        "dataset": {"id": dataset.id, "name": dataset.name} if dataset else None,
        "dataset_version": {"id": version.id, "number": version.number} if version else None,
        "split": evaluation.split,
        "metrics": list(evaluation.metrics or []),
        "generation": dict(evaluation.generation or {}),
        "options": dict(evaluation.options or {}),
        "judge": evaluation.judge,
        "shared": evaluation.shared,
        "source_job_id": evaluation.source_job_id,
        "created_at": _iso(evaluation.created_at),
    }


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def evaluation_report_data(
    session: Session, settings: Settings, *, actor: User, evaluation_id: int
) -> ReportData:
    evaluation = get_evaluation(session, actor=actor, evaluation_id=evaluation_id)
    runs = runs_of(session, evaluation)
    sources = [
        samples.RunSource(r.id, r.position, r.model_name, run_files_dir(session, settings, r)) for r in runs
    ]
    indices, per_run = samples.all_samples(sources)
    baseline = runs[0].id if runs else 0
    return ReportData(
        title=evaluation.name,
        evaluation=_evaluation_info(session, evaluation),
        dataset_version=compare.dataset_version_info(session, evaluation.dataset_version_id),
        comparison=compare.rank([compare.totals_of(r) for r in runs], baseline),
        sources=sources,
        indices=indices,
        per_run=per_run,
        judge_results=evaluation.judge_results,
        generated_at=_now(),
    )


def comparison_report_data(
    session: Session, settings: Settings, *, actor: User, run_ids: list[int], baseline: int | None
) -> ReportData:
    selection = compare.select_runs(session, actor=actor, run_ids=run_ids, baseline=baseline)
    sources = [
        samples.RunSource(r.id, i, r.model_name, run_files_dir(session, settings, r))
        for i, r in enumerate(selection.runs)
    ]
    indices, per_run = samples.all_samples(sources)
    first = selection.evaluations[selection.runs[0].evaluation_id]
    return ReportData(
        title="Comparison of runs " + ", ".join(str(r.id) for r in selection.runs),
        evaluation=None,
        dataset_version=compare.dataset_version_info(session, first.dataset_version_id),
        comparison=compare.rank([compare.totals_of(r) for r in selection.runs], selection.baseline),
        sources=sources,
        indices=indices,
        per_run=per_run,
        generated_at=_now(),
    )
