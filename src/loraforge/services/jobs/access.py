"""Finding a job: the access rule every job operation starts with, its run directory, and how its
executor finds its process again.

Access (`services.platform.ownership`): the owner; operators and admins may read, stop and cancel anyone's
job, download its files, and change priorities and the queue order (researchers may not); only the
owner starts, resumes, clones into their own drafts, or deletes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import Job, User
from loraforge.errors import Forbidden, NotFound
from loraforge.executors.base import ProcessRef
from loraforge.services.platform import ownership
from loraforge.settings import Settings

STAFF = ownership.STAFF


def run_dir_of(settings: Settings, job_id: int) -> Path:
    return settings.runs_dir / str(int(job_id))


def job_run_dir(settings: Settings, job: Job) -> Path:
    """The job's run directory: the one stored at creation, else the id-derived one."""
    return Path(job.run_dir or run_dir_of(settings, job.id))


def get_job(session: Session, *, actor: User, job_id: int, staff_may: frozenset[Any] = STAFF) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound("job not found", code="job_not_found")
    ownership.ensure_access(actor, job.owner_id, staff_may=STAFF, resource="job")
    if not ownership.can_access(actor, job.owner_id, staff_may=staff_may):
        raise Forbidden("only the owner may do this with the job", code="not_owner")
    return job


def process_ref(job: Job) -> ProcessRef | None:
    """How the job's executor finds its process again; None while nothing was launched."""
    if job.external_id is not None:
        return ProcessRef(pid=job.pid or 0, started_at=job.pid_started_at or 0.0, external_id=job.external_id)
    if job.pid is None:
        return None
    return ProcessRef(pid=job.pid, started_at=job.pid_started_at or 0.0)
