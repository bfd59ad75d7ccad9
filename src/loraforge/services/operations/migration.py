"""Moving a running job to another node: stop it at a checkpoint, put it back in the queue with the node
it left excluded, and let placement start it elsewhere, where it resumes from that checkpoint.

Three steps, each in the place that owns it:
1. `stop_to_move` (a migration here, or a "drain now" in `operations.drain`): the job goes `stopping`
   with `requeue_on_stop` set and `excluded_nodes` = the node it leaves; the executor's graceful stop
   follows the commit (the engine checkpoints at the step it stops at, as for a person's stop).
2. The watcher ends the stop as usual: `stopped` (`services.jobs.lifecycle.finish_stop`, whose message
   says the job moves on by itself).
3. `after_tick` (a scheduler tick hook) re-queues every `stopped` job with the flag, from its latest
   checkpoint (none: from the start, as a fresh attempt), clears the flag and audits `job.migrated`;
   the next admission places it on another node (`services.jobs.placement`).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import Job, JobStatus, Node, NodeStatus, User
from loraforge.errors import Conflict
from loraforge.executors.base import Executor
from loraforge.services.jobs import gpu_fit, lifecycle, placement
from loraforge.services.jobs.access import get_job, process_ref
from loraforge.services.jobs.states import StaleJobState, transition
from loraforge.services.operations import node_status
from loraforge.services.platform import audit
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.operations")

# A job moves only while it runs (or is starting: the stop then lands once it has a process).
MOVABLE = frozenset({JobStatus.starting.value, JobStatus.running.value})
# A stop that ended any other way than `stopped` (it failed, or was cancelled meanwhile) moves nothing.
_NOT_MOVED = (JobStatus.succeeded.value, JobStatus.failed.value, JobStatus.cancelled.value)


def stop_to_move(session: Session, job: Job, *, away_from: int | None) -> None:
    """`stopping`, to be re-queued once stopped and placed anywhere but `away_from` (the caller
    commits, then calls `signal_stop`). Raises StaleJobState when the job changed meanwhile.

    The exclusion replaces the job's earlier ones: each served the placement that followed its move,
    and piling them up would in the end leave a job that moved twice nowhere to go."""
    excluded = [away_from] if away_from is not None else None
    transition(session, job, JobStatus.stopping, requeue_on_stop=True, excluded_nodes=excluded)


def signal_stop(executor: Executor, job: Job) -> None:
    """The graceful stop of the job's process (none yet: `admission.launch` stops it once launched)."""
    ref = process_ref(job)
    if ref is not None:
        executor.stop(ref)


def migrate_job(
    session: Session, *, settings: Settings, executor: Executor, actor: User, job_id: int, ip: str | None
) -> Job:
    """Move a running job to another node (its owner, or an operator or admin). Refused with 409
    `no_other_node` when no other node could take it now, so a migration never strands a job that
    is running fine where it is."""
    job = get_job(session, actor=actor, job_id=job_id)
    if job.status not in MOVABLE:
        raise Conflict(
            f"a {job.status} job cannot be migrated: only a running job moves", code="invalid_transition"
        )
    need = gpu_fit.demand(job.spec or {}, settings.gpu_count or 0)
    if not placement.other_node_exists(session, executor.name, job, need):
        raise Conflict(
            "no other node can take this job now (each other node is drained, unhealthy, lost, too small, "
            "or there is no other node)",
            code="no_other_node",
        )
    origin = job.node_id
    stop_to_move(session, job, away_from=origin)
    audit.record(
        session, action=AuditAction.job_migrated, actor=actor, target_type="job", target_id=job.id, ip=ip,
        details={"step": "requested", "from_node": origin},
    )  # fmt: skip
    session.commit()
    signal_stop(executor, job)
    return job


def after_tick(session: Session, *, settings: Settings) -> None:
    """Per scheduler tick: re-queue the jobs a drain or a migration stopped, forget the flag of those
    whose stop ended otherwise, and move draining nodes whose last job ended to `drained`."""
    # One query per tick, whatever the size of the jobs table: only moving jobs carry the flag.
    flagged = session.scalars(select(Job).where(Job.requeue_on_stop.is_(True)).order_by(Job.id)).all()
    stranded = [job for job in flagged if job.status in _NOT_MOVED]
    for job in stranded:
        job.requeue_on_stop = False
    if stranded:
        session.commit()
    for job in flagged:
        if job.status != JobStatus.stopped.value or not job.requeue_on_stop:
            continue
        origin = job.node_id
        try:
            checkpoint = lifecycle.requeue_moved(session, settings, job)
        except StaleJobState:
            continue  # a person resumed or deleted it meanwhile
        details = {"step": "requeued", "from_node": origin, "checkpoint": checkpoint, "attempt": job.attempt}
        audit.record(
            session, action=AuditAction.job_migrated, actor=None, target_type="job", target_id=job.id,
            details=details,
        )  # fmt: skip
        session.commit()
        logger.info("job %s re-queued off node %s from %s", job.id, origin, checkpoint or "the start")
    draining = session.scalars(select(Node).where(Node.status == NodeStatus.draining.value)).all()
    for node in draining:
        node_status.refresh(session, node, lost_after_s=settings.node_lost_seconds)
    session.commit()
