"""What a live job stream (`WS /ws/jobs/{id}`) reads from the database, in short blocking calls.

Each function opens its own session and closes it before returning: a WebSocket lives for hours and
awaits between reads, so it must never hold a session (and with it a connection from the pool, or a
SQLite read transaction) across an await. Access goes through `services.jobs.access.get_job` every time, so
a job deleted while the socket is open ends the stream with NotFound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from loraforge.db.models import Job, JobEvent, User
from loraforge.db.session import Database
from loraforge.services.jobs import reads
from loraforge.services.jobs.access import get_job

EVENT_PAGE = 1000


@dataclass(frozen=True)
class StreamSnapshot:
    """The job row (detached), its owner's name and produced model, and its latest `resource` event,
    read in one session."""

    job: Job
    context: reads.JobContext
    resources: dict[str, Any] | None


def snapshot(database: Database, *, actor: User, job_id: int) -> StreamSnapshot:
    """The job as the actor may see it (NotFound for strangers) and its latest resource sample."""
    with database.session() as session:
        job = get_job(session, actor=actor, job_id=job_id)
        latest = session.scalars(
            select(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.type == "resource")
            .order_by(JobEvent.seq.desc())
            .limit(1)
        ).first()
        context = reads.context(session, [job])
        session.expunge(job)
        resources = reads.event_json(latest) if latest is not None else None
        return StreamSnapshot(job=job, context=context, resources=resources)


def read_job(database: Database, *, actor: User, job_id: int) -> tuple[Job, reads.JobContext]:
    """The job row, detached (its attributes stay loaded: the factory does not expire on commit), and
    its `reads.context`."""
    with database.session() as session:
        job = get_job(session, actor=actor, job_id=job_id)
        context = reads.context(session, [job])
        session.expunge(job)
        return job, context


def events_after(database: Database, *, actor: User, job_id: int, after: int) -> list[dict[str, Any]]:
    """Up to EVENT_PAGE stored events with seq > after, oldest first, as GET /events items."""
    with database.session() as session:
        rows = reads.events_after(session, actor=actor, job_id=job_id, after=after, limit=EVENT_PAGE)
        return [reads.event_json(row) for row in rows]
