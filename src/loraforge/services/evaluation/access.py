"""Finding an evaluation: the access rule every evaluation operation starts with.

Owner: everything. Shared: every active user reads it (results, samples, reports), nobody else
changes it. Operators and admins read every evaluation (they see the queue its jobs sit in) and may
cancel one; only the owner starts, edits, shares or deletes it.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import Evaluation, EvaluationRun, Job, User
from loraforge.errors import NotFound
from loraforge.services.jobs.access import job_run_dir
from loraforge.services.platform import ownership
from loraforge.settings import Settings

RESOURCE = "evaluation"
CODE = "evaluation_not_found"


def get_evaluation(
    session: Session, *, actor: User, evaluation_id: int, write: bool = False, staff_may_write: bool = False
) -> Evaluation:
    """The evaluation if `actor` may read it (or change it with `write`); 404 otherwise."""
    evaluation = session.get(Evaluation, evaluation_id)
    if evaluation is None:
        raise NotFound("evaluation not found", code=CODE)
    if write:
        staff = ownership.STAFF if staff_may_write else frozenset()
        ownership.ensure_access(actor, evaluation.owner_id, staff_may=staff, resource=RESOURCE, code=CODE)
    else:
        ownership.ensure_readable(
            actor, evaluation.owner_id, shared=evaluation.shared, staff_may=ownership.STAFF,
            resource=RESOURCE, code=CODE,
        )  # fmt: skip
    return evaluation


def runs_of(session: Session, evaluation: Evaluation) -> list[EvaluationRun]:
    """The evaluation's runs in model order (position 0 is the default baseline)."""
    query = (
        select(EvaluationRun)
        .where(EvaluationRun.evaluation_id == evaluation.id)
        .order_by(EvaluationRun.position)
    )
    return list(session.scalars(query))


def run_files_dir(session: Session, settings: Settings, run: EvaluationRun) -> Path | None:
    """Where the run's result files are (its job's run directory); None before a job exists or after
    its job was deleted. Derived from the job id, never from a name."""
    if run.job_id is None:
        return None
    job = session.get(Job, run.job_id)
    return None if job is None else job_run_dir(settings, job)
