"""The evaluations' part of every scheduler tick (`sync`, registered by the app as a scheduler hook):

1. totals: a run whose job succeeded gets RUN_DIR/eval_results.json's totals in `results`
   (`{metrics: {key: number}, speed, test_set}`), once;
2. pairwise judging: when every run of a pairwise-judged evaluation has succeeded, its judging job is
   queued; when that job succeeded, RUN_DIR/pairwise.json becomes `judge_results`;
3. before/after: a training job that succeeded with an `evaluation` block gets its evaluation
   (`before_after.create_pending`).

Each step looks only at rows that still lack what it adds (NULL results), so a tick costs a few
indexed queries when nothing finished.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import Evaluation, EvaluationRun, Job, JobStatus
from loraforge.services.evaluation import before_after
from loraforge.services.evaluation import runs as run_jobs
from loraforge.services.evaluation.compare import flat_metrics
from loraforge.services.jobs.access import job_run_dir
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.evaluation")
RESULTS_FILE = "eval_results.json"
PAIRWISE_FILE = "pairwise.json"
_BATCH = 200


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def results_of(path: Path) -> dict[str, Any]:
    """A succeeded job's totals; empty ones when its file is unreadable (so it is not read every tick)."""
    data = _read_json(path) or {}
    return {
        "metrics": flat_metrics(data),
        "speed": data.get("speed") or {},
        "test_set": data.get("test_set") or {},
    }


def _copy_results(session: Session, settings: Settings) -> set[int]:
    """Fill the results of runs whose job succeeded; returns the evaluations touched."""
    rows = session.execute(
        select(EvaluationRun, Job)
        .join(Job, Job.id == EvaluationRun.job_id)
        .where(EvaluationRun.results.is_(None), Job.status == JobStatus.succeeded.value)
        .limit(_BATCH)
    ).all()
    touched: set[int] = set()
    by_job: dict[int, dict[str, Any]] = {}
    for run, job in rows:
        if job.id not in by_job:
            by_job[job.id] = results_of(job_run_dir(settings, job) / RESULTS_FILE)
        run.results = dict(by_job[job.id])
        touched.add(run.evaluation_id)
    return touched


def _judge_results(session: Session, settings: Settings) -> None:
    rows = session.execute(
        select(Evaluation, Job)
        .join(Job, Job.id == Evaluation.judge_job_id)
        .where(Evaluation.judge_results.is_(None), Job.status == JobStatus.succeeded.value)
        .limit(_BATCH)
    ).all()
    for evaluation, job in rows:
        evaluation.judge_results = _read_json(job_run_dir(settings, job) / PAIRWISE_FILE) or {}


def sync(session: Session, settings: Settings) -> None:
    """One pass (see the module docstring); commits what it changed."""
    touched = _copy_results(session, settings)
    for evaluation_id in sorted(touched):
        evaluation = session.get(Evaluation, evaluation_id)
        if evaluation is not None:
            run_jobs.maybe_queue_judging(session, settings, evaluation)
    _judge_results(session, settings)
    session.commit()
    before_after.create_pending(session, settings)
