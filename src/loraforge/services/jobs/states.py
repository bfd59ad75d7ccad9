"""THE job state machine: every status change of a job goes through `transition` (invariant 6,
docs/architecture.md).

    draft ──▶ queued ──▶ starting ──▶ running ──▶ succeeded
                │            │           │   ╲──▶ failed
                │            │           ▼
                │            └──────▶ stopping ──▶ stopped (graceful: checkpoint first)
                ├──▶ cancelled (and from starting / running / stopping: immediate)
                └──▶ stopped (a resumed job stopped while it waits again; see lifecycle.stop_job)
    failed / cancelled / stopped ──resume──▶ queued (same job, from a checkpoint)

Stop and cancel end differently on purpose: `stopped` is the end of a stop the user asked for (the
engine saved a checkpoint at a step boundary, or was stopped before it had one), meant to be resumed;
`cancelled` is an immediate kill (or an engine that reported `cancelled` without being asked to stop).

`transition` checks the table and writes the change as a conditional UPDATE (`WHERE status = <the
status read>`), so the scheduler thread and a request can never both move a job from one state: the
loser gets `StaleJobState` (409) and the row keeps the winner's status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from loraforge.db.base import utcnow
from loraforge.db.models import FINAL, Job, JobStatus
from loraforge.errors import Conflict
from loraforge.services.platform import notifications

S = JobStatus
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    S.draft: frozenset({S.queued}),
    S.queued: frozenset({S.starting, S.cancelled, S.stopped}),
    S.starting: frozenset({S.running, S.stopping, S.succeeded, S.failed, S.cancelled}),
    S.running: frozenset({S.stopping, S.succeeded, S.failed, S.cancelled}),
    # stopped: the engine finished the stop; cancelled: the user cancelled while it was stopping.
    S.stopping: frozenset({S.succeeded, S.failed, S.cancelled, S.stopped}),
    S.succeeded: frozenset(),
    # Resume only (services.jobs.lifecycle.resume_job): the same job goes back to the queue and continues
    # from a checkpoint, so its curve and events continue at the same global step and seq.
    S.failed: frozenset({S.queued}),
    S.cancelled: frozenset({S.queued}),
    S.stopped: frozenset({S.queued}),
}


class InvalidTransition(Conflict):
    default_code = "invalid_transition"


class StaleJobState(Conflict):
    default_code = "job_state_changed"


def is_allowed(current: JobStatus | str, target: JobStatus | str) -> bool:
    return JobStatus(target) in ALLOWED[JobStatus(current)]


def check(current: JobStatus | str, target: JobStatus | str) -> None:
    """Raise InvalidTransition unless the table allows `current → target`."""
    if not is_allowed(current, target):
        raise InvalidTransition(f"a {current} job cannot become {target}")


def transition(
    session: Session, job: Job, target: JobStatus, *, now: datetime | None = None, **changes: Any
) -> None:
    """Move `job` to `target` (plus column `changes`) in the session's transaction; the caller commits.

    Sets the timestamps the state implies (queued_at, started_at, finished_at, stop_requested_at).
    """
    current = JobStatus(job.status)
    check(current, target)
    now = now or utcnow()
    values: dict[str, Any] = {"status": target.value, "updated_at": now, **changes}
    if target is S.queued:
        values.setdefault("queued_at", now)
    elif target is S.starting:
        values.setdefault("started_at", now)
    elif target is S.stopping:
        values.setdefault("stop_requested_at", now)
    elif target in FINAL:
        values.setdefault("finished_at", now)
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == current.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise StaleJobState("the job changed state meanwhile; reload it and try again")
    for key, value in values.items():
        set_committed_value(job, key, value)  # already written; no second UPDATE on flush
    notifications.job_status_changed(session, job, current, target)
