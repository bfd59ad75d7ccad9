"""Listing, editing, starting, cancelling and deleting evaluations (creating is `create`'s).

Access is `access.get_evaluation`'s: the owner does everything; shared evaluations are read-only for
every user; operators and admins read all and may cancel. Every change is audited like a job's.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from sqlalchemy import func, null, or_, select, update
from sqlalchemy.orm import Session

from loraforge.db.models import Evaluation, EvaluationRun, Job, User
from loraforge.errors import Conflict
from loraforge.executors.base import Executor
from loraforge.services.evaluation import runs as run_jobs
from loraforge.services.evaluation.access import get_evaluation, runs_of
from loraforge.services.jobs import lifecycle
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings


@dataclass(frozen=True)
class EvaluationPage:
    items: list[Evaluation]
    total: int


def list_evaluations(
    session: Session,
    *,
    actor: User,
    dataset_id: int | None = None,
    model_version_id: int | None = None,
    offset: int = 0,
    limit: int = 20,
) -> EvaluationPage:
    """The actor's own and shared evaluations (staff: every one), newest first."""
    query = select(Evaluation)
    owner_id = ownership.owner_scope(actor, staff_may=ownership.STAFF)
    if owner_id is not None:  # researchers: their own and the shared ones
        query = query.where(or_(Evaluation.owner_id == owner_id, Evaluation.shared.is_(True)))
    if dataset_id is not None:
        query = query.where(Evaluation.dataset_id == dataset_id)
    if model_version_id is not None:
        runs = select(EvaluationRun.evaluation_id).where(EvaluationRun.model_version_id == model_version_id)
        query = query.where(Evaluation.id.in_(runs))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(Evaluation.created_at.desc(), Evaluation.id.desc()).offset(offset).limit(limit)
    ).all()
    return EvaluationPage(items=list(items), total=total)


def update_evaluation(
    session: Session,
    *,
    actor: User,
    evaluation_id: int,
    name: str | None,
    description: str | None,
    shared: bool | None,
    ip: str | None,
) -> Evaluation:
    evaluation = get_evaluation(session, actor=actor, evaluation_id=evaluation_id, write=True)
    changed: dict[str, object] = {}
    if name is not None and name != evaluation.name:
        evaluation.name = changed["name"] = name
    if description is not None and description != evaluation.description:
        evaluation.description = changed["description"] = description
    if shared is not None and shared != evaluation.shared:
        evaluation.shared = changed["shared"] = shared
    if changed:
        audit.record(
            session, action=AuditAction.evaluation_updated, actor=actor, target_type="evaluation",
            target_id=evaluation.id, ip=ip, details={"changed": sorted(changed)},
        )  # fmt: skip
    session.commit()
    return evaluation


def _jobs(session: Session, evaluation: Evaluation, *, cached: bool = False) -> list[Job]:
    """The evaluation's jobs; a cached run's job (another evaluation's answers) only with `cached`."""
    ids = [
        r.job_id for r in runs_of(session, evaluation) if r.job_id is not None and (cached or not r.cached)
    ]
    if evaluation.judge_job_id is not None:
        ids.append(evaluation.judge_job_id)
    return [job for job_id in dict.fromkeys(ids) if (job := session.get(Job, job_id)) is not None]


def start_evaluation(
    session: Session, *, settings: Settings, actor: User, evaluation_id: int, ip: str | None
) -> Evaluation:
    """Queue the drafts; resume failed, cancelled or stopped jobs where they stopped; queue the judging
    when only it is missing. 409 when there is nothing to start."""
    evaluation = get_evaluation(session, actor=actor, evaluation_id=evaluation_id, write=True)
    started = 0
    for run in runs_of(session, evaluation):
        if run.job_id is None:  # its job was deleted (jobs API, retention): score it again
            # SQL NULL, not JSON null: the sync fills the results of runs whose results are NULL.
            session.execute(update(EvaluationRun).where(EvaluationRun.id == run.id).values(results=null()))
            run.cached = False
            run_jobs.run_job(session, settings=settings, actor=actor, evaluation=evaluation, run=run, ip=ip)
    session.flush()
    for job in _jobs(session, evaluation):
        started += run_jobs.queue(session, settings=settings, actor=actor, job=job, ip=ip)
    if run_jobs.maybe_queue_judging(session, settings, evaluation) is not None:
        started += 1
    if not started:
        session.rollback()
        raise Conflict("nothing to start: every run is queued, running or done", code="invalid_transition")
    audit.record(
        session, action=AuditAction.evaluation_started, actor=actor, target_type="evaluation",
        target_id=evaluation.id, ip=ip,
    )  # fmt: skip
    session.commit()
    return evaluation


def cancel_evaluation(
    session: Session, *, executor: Executor, actor: User, evaluation_id: int, ip: str | None
) -> Evaluation:
    """Cancel every queued or running job now (answers so far are kept: start resumes them)."""
    evaluation = get_evaluation(
        session, actor=actor, evaluation_id=evaluation_id, write=True, staff_may_write=True
    )
    jobs = [job for job in _jobs(session, evaluation) if job.status in run_jobs.ACTIVE_STATUSES]
    if not jobs:
        raise Conflict("nothing to cancel: no run is queued or running", code="invalid_transition")
    for job in jobs:
        run_jobs.cancel(session, executor=executor, job=job)
    audit.record(
        session, action=AuditAction.evaluation_cancelled, actor=actor, target_type="evaluation",
        target_id=evaluation.id, ip=ip, details={"job_ids": [j.id for j in jobs]},
    )  # fmt: skip
    session.commit()
    return evaluation


def delete_evaluation(
    session: Session,
    *,
    settings: Settings,
    executor: Executor,
    actor: User,
    evaluation_id: int,
    ip: str | None,
) -> None:
    """Cancel its running jobs, delete it, and delete its jobs that no other evaluation uses."""
    evaluation = get_evaluation(session, actor=actor, evaluation_id=evaluation_id, write=True)
    for job in _jobs(session, evaluation):
        run_jobs.cancel(session, executor=executor, job=job)
    job_ids = [job.id for job in _jobs(session, evaluation, cached=True)]
    audit.record(
        session, action=AuditAction.evaluation_deleted, actor=actor, target_type="evaluation",
        target_id=evaluation.id, ip=ip, details={"name": evaluation.name, "job_ids": job_ids},
    )  # fmt: skip
    session.delete(evaluation)
    session.commit()
    used = set(
        session.scalars(select(EvaluationRun.job_id).where(EvaluationRun.job_id.in_(job_ids))).all()
    ) | set(
        session.scalars(select(Evaluation.judge_job_id).where(Evaluation.judge_job_id.in_(job_ids))).all()
    )
    for job_id in job_ids:
        if job_id in used:
            continue  # another evaluation reuses these answers (cache)
        with contextlib.suppress(Conflict):  # a job that another request moved on meanwhile stays
            lifecycle.delete_job(session, settings=settings, actor=actor, job_id=job_id, ip=ip)
