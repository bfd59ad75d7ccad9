"""Controlling jobs: stop (graceful), cancel (immediate), resume from a checkpoint, priority and
queue order (operators and admins), and delete. Who may do what is `services.jobs.access`'s; every
status change goes through `services.jobs.states.transition`.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import FINAL, RESUMABLE, Job, JobEvent, JobStatus, User
from loraforge.engine.events import EVENTS_FILE, read_events_file
from loraforge.errors import Conflict, FieldIssue, InvalidInput
from loraforge.executors.base import Executor
from loraforge.services.jobs import eval_request, metric_store
from loraforge.services.jobs import files as job_files
from loraforge.services.jobs.access import STAFF, get_job, job_run_dir, process_ref, run_dir_of
from loraforge.services.jobs.inputs_access import ensure_inputs_readable
from loraforge.services.jobs.states import transition
from loraforge.services.models.versions import job_output_needed
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction
from loraforge.services.usage import quotas
from loraforge.settings import Settings

# The range a priority may take (the API schema validates `priority` against it).
PRIORITY_MIN, PRIORITY_MAX = -1000, 1000


def stop_job(
    session: Session, *, settings: Settings, executor: Executor, actor: User, job_id: int, ip: str | None
) -> Job:
    """Graceful: the job is `stopping` until the engine has saved a checkpoint and exited, then
    `stopped` (resumable; see `finish_stop`). A queued job has no process to wait for: one that was
    resumed and waits again is `stopped` at once (its checkpoint still resumes it); one that never ran
    has nothing to resume, so it is `cancelled` ("stopped before it started")."""
    job = get_job(session, actor=actor, job_id=job_id)
    status = JobStatus(job.status)
    if status is JobStatus.queued and job.resume_from is not None:
        finish_stop(session, settings, job)
    elif status is JobStatus.queued:
        transition(
            session,
            job,
            JobStatus.cancelled,
            error={"code": "stopped", "message": "stopped before it started"},
        )
    elif status in (JobStatus.starting, JobStatus.running):
        transition(session, job, JobStatus.stopping)
    else:
        raise Conflict(f"a {status} job cannot be stopped", code="invalid_transition")
    audit.record(
        session, action=AuditAction.job_stopped, actor=actor, target_type="job", target_id=job.id, ip=ip
    )
    session.commit()
    ref = process_ref(job)
    if ref is not None and job.status == JobStatus.stopping.value:
        executor.stop(ref)
    return job


def finish_stop(session: Session, settings: Settings, job: Job, *, exit_code: int | None = None) -> None:
    """A stop the user asked for has ended: `stopped`, with `error` telling where (the last step the
    engine reported) and which checkpoint resumes it (the latest complete one; none: nothing to
    resume). Called when the engine reports the end of the stop, when its process is gone without
    reporting (the stop landed before it could checkpoint, or the stop timeout killed it), and for a
    resumed job stopped while it waits in the queue. The notification quotes the message."""
    found = job_files.find_checkpoint(job_run_dir(settings, job), None)
    # Metric events come every logging step; progress events (where the engine sends them) every step.
    last_report = session.scalar(
        select(JobEvent.data)
        .where(JobEvent.job_id == job.id, JobEvent.type.in_(("metric", "progress")))
        .order_by(JobEvent.seq.desc())
        .limit(1)
    )
    step = (last_report or {}).get("step")
    at = f"at step {step}" if isinstance(step, int) else "before training started"
    if job.requeue_on_stop:  # a drain or a migration: it goes on by itself on another node
        where = f"from {found.name}" if found is not None else "from the start (no checkpoint yet)"
        message = f"Moved off its node {at}; it continues {where} on another node."
    elif found is not None:
        message = f"Stopped {at}; resume it from {found.name}."
    else:
        message = f"Stopped {at}, before any checkpoint was saved: nothing to resume; clone it to rerun."
    details = {"step": step, "checkpoint": found.name if found else None}
    record = {"code": "stopped", "message": message, "suggestion": None, "details": details}
    transition(session, job, JobStatus.stopped, exit_code=exit_code, error=record)


def cancel_job(session: Session, *, executor: Executor, actor: User, job_id: int, ip: str | None) -> Job:
    """Immediate: the job is `cancelled` now and its process group is killed."""
    job = get_job(session, actor=actor, job_id=job_id)
    transition(
        session, job, JobStatus.cancelled,
        error={"code": "cancelled", "message": f"cancelled by {actor.username}"},
    )  # fmt: skip
    audit.record(
        session, action=AuditAction.job_cancelled, actor=actor, target_type="job", target_id=job.id, ip=ip
    )
    session.commit()
    ref = process_ref(job)
    if ref is not None:
        executor.cancel(ref)
    return job


def stop_by_system(session: Session, *, executor: Executor, job: Job, reason: str) -> bool:
    """A graceful stop the server itself decides on (a health rule: the job is hung), as `stop_job`
    does for a person: `stopping`, then `stopped` with its checkpoint. Audited with no actor and the
    reason; commits. False when the job is no longer starting or running (nothing was done)."""
    if job.status not in (JobStatus.starting.value, JobStatus.running.value):
        return False
    transition(session, job, JobStatus.stopping)
    audit.record(
        session, action=AuditAction.job_stopped, actor=None, target_type="job", target_id=job.id,
        details={"reason": reason},
    )  # fmt: skip
    session.commit()
    ref = process_ref(job)
    if ref is not None:
        executor.stop(ref)
    return True


def resume_job(
    session: Session, *, settings: Settings, actor: User, job_id: int, checkpoint: str | None, ip: str | None
) -> Job:
    """Put a failed, cancelled or stopped job back in the queue to continue from one of its
    checkpoints (`checkpoint` = a folder name from the listing; None = the latest). The same job
    continues: the engine resumes the Trainer's global step, optimizer and RNG state, and keeps
    counting event seqs, so the curve and the event stream continue where they were. Owner only."""
    job = get_job(session, actor=actor, job_id=job_id, staff_may=frozenset())
    if JobStatus(job.status) not in RESUMABLE:
        raise Conflict(f"a {job.status} job cannot be resumed", code="invalid_transition")
    # A resume queues work like a submit, so it meets the same quotas (a migration's requeue does not:
    # the platform moved the job, the user asked for nothing new).
    quotas.check_submit(session, settings, actor, job.spec or {})
    run_dir = job_run_dir(settings, job)
    if eval_request.is_evaluation(job.spec):
        # An evaluation keeps every scored sample in its run directory and skips them when it runs
        # again: nothing to pick, it continues where it stopped.
        return _requeue(session, job, run_dir=run_dir, actor=actor, ip=ip, checkpoint=None, step=None)
    found = job_files.find_checkpoint(run_dir, checkpoint)
    if found is None:
        if checkpoint is not None:
            raise InvalidInput(
                f"job {job.id} has no checkpoint {checkpoint!r}",
                code="checkpoint_not_found",
                fields=[FieldIssue(field="checkpoint", message="not one of the job's checkpoints")],
            )
        raise Conflict("the job has no checkpoint to resume from", code="no_checkpoint")
    return _requeue(session, job, run_dir=run_dir, actor=actor, ip=ip, checkpoint=found.name, step=found.step)


def _requeue(
    session: Session, job: Job, *, run_dir: Path, actor: User, ip: str | None, checkpoint: str | None,
    step: int | None,
) -> Job:  # fmt: skip
    """Back to the queue as the next attempt of the same job (`checkpoint`: where training resumes)."""
    ensure_inputs_readable(session, job, owner=actor)  # access may have ended since the job first ran
    # A person's resume places afresh: a node the job was once moved off may be back in service.
    _back_to_queue(session, job, run_dir=run_dir, checkpoint=checkpoint, excluded_nodes=None)
    audit.record(
        session, action=AuditAction.job_resumed, actor=actor, target_type="job", target_id=job.id, ip=ip,
        details={"checkpoint": checkpoint, "step": step, "attempt": job.attempt},
    )  # fmt: skip
    session.commit()
    return job


def _back_to_queue(
    session: Session, job: Job, *, run_dir: Path, checkpoint: str | None, **changes: Any
) -> None:
    # Events the engine wrote after the job was finalized here (e.g. after an immediate cancel) were
    # never stored; skip past them so the resumed run's stream starts above them (no stale final event).
    file_seq = max((e.seq or 0 for e in read_events_file(run_dir / EVENTS_FILE)), default=0)
    transition(
        session, job, JobStatus.queued,
        pid=None, pid_started_at=None, external_id=None, exit_code=None, error=None, started_at=None,
        finished_at=None, stop_requested_at=None, devices=None, attempt=job.attempt + 1,
        resume_from=checkpoint, last_event_seq=max(job.last_event_seq, file_seq), requeue_on_stop=False,
        **changes,
    )  # fmt: skip


def requeue_moved(session: Session, settings: Settings, job: Job) -> str | None:
    """Put a job that a drain or a migration stopped (`requeue_on_stop`, now `stopped`) back in the
    queue as its next attempt, without a person's resume: from its latest checkpoint, or from the
    start when it has none (an evaluation continues from its own files). Placement keeps it off its
    `excluded_nodes`. The caller audits and commits; returns the checkpoint it resumes from."""
    run_dir = job_run_dir(settings, job)
    found = None if eval_request.is_evaluation(job.spec) else job_files.find_checkpoint(run_dir, None)
    checkpoint = found.name if found is not None else None
    _back_to_queue(session, job, run_dir=run_dir, checkpoint=checkpoint)
    return checkpoint


# ---- priority and queue order (operators and admins) -------------------------------------------------


def set_priority(session: Session, *, actor: User, job_id: int, priority: int, ip: str | None) -> Job:
    """Change a queued or draft job's priority (higher is admitted first)."""
    ownership.ensure_role(actor, STAFF)
    job = get_job(session, actor=actor, job_id=job_id)
    if job.status not in (JobStatus.queued.value, JobStatus.draft.value):
        raise Conflict(f"a {job.status} job's priority cannot change", code="invalid_transition")
    previous = job.priority
    job.priority = priority
    audit.record(
        session, action=AuditAction.job_priority_changed, actor=actor, target_type="job", target_id=job.id,
        ip=ip, details={"from": previous, "to": priority},
    )  # fmt: skip
    session.commit()
    return job


def reorder_queue(session: Session, *, actor: User, job_ids: list[int], ip: str | None) -> None:
    """Reorder the given queued jobs among themselves; every other queued job keeps its place.

    The listed jobs occupy some positions ("slots") of the admission order (priority desc, queued_at,
    id). The first listed job moves into the earliest of those slots, the second into the next, and so
    on: each takes over its slot's priority and queued_at (queued_at nudged by a microsecond where two
    slots tie, so the new order is strict). So `[c, a]` on a queue `a, x, c` gives `c, x, a`.
    """
    ownership.ensure_role(actor, STAFF)
    issues = [
        FieldIssue(field=f"job_ids.{i}", message=f"job {job_id} is listed twice")
        for i, job_id in enumerate(job_ids)
        if job_id in job_ids[:i]
    ]
    if issues:
        raise InvalidInput("a job is listed twice", code="duplicate_job", fields=issues)
    rows = {
        job.id: job
        for job in session.scalars(select(Job).where(Job.id.in_(job_ids)).with_for_update())
    }  # fmt: skip
    not_queued = [
        FieldIssue(field=f"job_ids.{i}", message=f"job {job_id} is not queued")
        for i, job_id in enumerate(job_ids)
        if job_id not in rows or rows[job_id].status != JobStatus.queued.value
    ]
    if not_queued:
        raise InvalidInput(
            "only queued jobs can be reordered: " + ", ".join(i.message for i in not_queued),
            code="job_not_queued",
            fields=not_queued,
        )
    slots = sorted(rows.values(), key=lambda j: (-j.priority, j.queued_at or j.created_at, j.id))
    keys = [(j.priority, j.queued_at or j.created_at) for j in slots]
    previous: tuple[int, Any] | None = None
    for job_id, (priority, queued_at) in zip(job_ids, keys, strict=True):
        if previous is not None and previous[0] == priority and queued_at <= previous[1]:
            queued_at = previous[1] + timedelta(microseconds=1)
        rows[job_id].priority, rows[job_id].queued_at = priority, queued_at
        previous = (priority, queued_at)
    audit.record(
        session, action=AuditAction.queue_reordered, actor=actor, target_type="queue", ip=ip,
        details={"job_ids": job_ids},
    )  # fmt: skip
    session.commit()


def delete_job(session: Session, *, settings: Settings, actor: User, job_id: int, ip: str | None) -> None:
    job = get_job(session, actor=actor, job_id=job_id, staff_may=frozenset())
    if job.status != JobStatus.draft.value and JobStatus(job.status) not in FINAL:
        raise Conflict(f"a {job.status} job cannot be deleted; stop or cancel it first", code="job_active")
    if job_output_needed(session, job_id=job.id):
        raise Conflict(
            "a registered model version uses this job's output; delete the model (with its files) first",
            code="job_output_in_use",
        )
    folder = run_dir_of(settings, job.id)
    audit.record(
        session, action=AuditAction.job_deleted, actor=actor, target_type="job", target_id=job.id, ip=ip,
        details={"name": job.name, "owner_id": job.owner_id, "status": job.status},
    )  # fmt: skip
    session.delete(job)
    session.commit()
    shutil.rmtree(folder, ignore_errors=True)
    metric_store.delete(settings, job_id)
