"""The jobs behind an evaluation: one per model run (or a cached one reused), one more for pairwise
judging. Made through `services.jobs.submit.new_job` like every job, queued and resumed through the
jobs state machine; the scheduler launches them with `launch_spec.build`.

A run job's stored spec holds ids, not paths: `evaluation_id`, `evaluation_run_id`, the pinned model
name (`model_name_or_path`, so the jobs domain re-checks the owner's access to a registered model at
start, resume and launch), `devices`, and `seed_job_id` when the answers of an earlier job are reused.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import RESUMABLE, Evaluation, EvaluationRun, Job, JobStatus, User
from loraforge.executors.base import Executor
from loraforge.services.evaluation.access import runs_of
from loraforge.services.evaluation.targets import PROVIDER, stored_kind
from loraforge.services.jobs import eval_request, lifecycle
from loraforge.services.jobs.access import process_ref
from loraforge.services.jobs.inputs_access import ensure_inputs_readable
from loraforge.services.jobs.states import StaleJobState, transition
from loraforge.services.jobs.submit import new_job
from loraforge.services.platform.owner_names import clip_name
from loraforge.settings import Settings

RUN_KEY = "evaluation_run_id"
EVALUATION_KEY = "evaluation_id"
PAIRWISE_KEY = "pairwise"
SEED_KEY = "seed_job_id"
ACTIVE_STATUSES = frozenset({"queued", "starting", "running", "stopping"})


def job_name(evaluation: Evaluation, model: str) -> str:
    return clip_name(f"eval: {evaluation.name} · {model}")


def run_job(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    evaluation: Evaluation,
    run: EvaluationRun,
    ip: str | None,
    seed: Job | None = None,
) -> Job:
    """A draft job that scores `run` (the caller queues it)."""
    spec: dict[str, Any] = {
        "stage": eval_request.STAGE,
        EVALUATION_KEY: evaluation.id,
        RUN_KEY: run.id,
        "model_name_or_path": run.model_name,
        # A provider model runs nowhere here: the job needs no GPU.
        "devices": "cpu" if run.model_kind == PROVIDER else "auto",
    }
    if seed is not None:
        spec[SEED_KEY] = seed.id
    job = new_job(
        session, settings=settings, actor=actor, name=job_name(evaluation, run.model_name), spec=spec, ip=ip,
        details={"evaluation_id": evaluation.id, "run_id": run.id},
        dataset_id=evaluation.dataset_id, dataset_version_id=evaluation.dataset_version_id,
    )  # fmt: skip
    run.job_id = job.id
    return job


def judge_job(session: Session, *, settings: Settings, actor: User, evaluation: Evaluation) -> Job:
    """The pairwise judging job (A vs B in both orders over every run's answers), queued now."""
    judge = evaluation.judge or {}
    spec = {
        "stage": eval_request.STAGE,
        EVALUATION_KEY: evaluation.id,
        PAIRWISE_KEY: True,
        "model_name_or_path": judge.get("model"),
        "devices": "cpu" if stored_kind(str(judge.get("model"))) == PROVIDER else "auto",
    }
    job = new_job(
        session, settings=settings, actor=actor, name=job_name(evaluation, "judge"), spec=spec, ip=None,
        details={"evaluation_id": evaluation.id, "pairwise": True},
        dataset_id=evaluation.dataset_id, dataset_version_id=evaluation.dataset_version_id,
    )  # fmt: skip
    evaluation.judge_job_id = job.id
    transition(session, job, JobStatus.queued)
    return job


def queue(session: Session, *, settings: Settings, actor: User, job: Job, ip: str | None) -> bool:
    """A draft queued, or a failed / cancelled / stopped job resumed where it stopped; False when the
    job is in neither state (succeeded, or already on its way)."""
    status = JobStatus(job.status)
    if status is JobStatus.draft:
        ensure_inputs_readable(session, job, owner=actor)
        transition(session, job, JobStatus.queued)
        return True
    if status in RESUMABLE:
        # The jobs resume path (an evaluation needs no checkpoint); it commits.
        lifecycle.resume_job(session, settings=settings, actor=actor, job_id=job.id, checkpoint=None, ip=ip)
        return True
    return False


def cancel(session: Session, *, executor: Executor, job: Job) -> bool:
    """Cancel a queued or running job now (its samples so far stay for a resume); False if not active."""
    if job.status not in ACTIVE_STATUSES:
        return False
    try:
        transition(
            session, job, JobStatus.cancelled, error={"code": "cancelled", "message": "evaluation cancelled"}
        )
    except StaleJobState:
        return False
    session.commit()
    ref = process_ref(job)
    if ref is not None:
        executor.cancel(ref)
    return True


def all_runs_succeeded(session: Session, evaluation: Evaluation) -> bool:
    found = runs_of(session, evaluation)
    for run in found:
        job = session.get(Job, run.job_id) if run.job_id is not None else None
        if job is None or job.status != JobStatus.succeeded.value:
            return False
    return bool(found)


def maybe_queue_judging(session: Session, settings: Settings, evaluation: Evaluation) -> Job | None:
    """Queue the pairwise judging once every run succeeded (not again while a judging job exists)."""
    if (evaluation.judge or {}).get("mode") != "pairwise" or evaluation.judge_job_id is not None:
        return None
    if not all_runs_succeeded(session, evaluation):
        return None
    owner = session.get(User, evaluation.owner_id)
    if owner is None or owner.disabled:
        return None
    return judge_job(session, settings=settings, actor=owner, evaluation=evaluation)
