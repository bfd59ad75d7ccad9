"""Retention: pin/unpin a job (its files are then never removed), the storage report for operators
and admins, and an on-demand sweep for admins. Thin: `services.jobs.retention` does the work."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from loraforge.api.deps import AdminUser, ClientIP, CurrentUser, SessionDep, SettingsDep
from loraforge.api.ids import Id
from loraforge.api.schemas.jobs import JobPublic
from loraforge.api.schemas.retention import RemovedFiles, RetentionRun, StorageReport
from loraforge.services.jobs import retention

router = APIRouter(tags=["retention"])


@router.post("/jobs/{job_id}/pin", response_model=JobPublic, operation_id="jobs_pin")
def pin_job(job_id: Id, user: CurrentUser, session: SessionDep, ip: ClientIP) -> JobPublic:
    """Keep this job's checkpoints and outputs past the retention window (the owner only)."""
    return JobPublic.read(
        session, retention.set_pinned(session, actor=user, job_id=job_id, pinned=True, ip=ip)
    )


@router.post("/jobs/{job_id}/unpin", response_model=JobPublic, operation_id="jobs_unpin")
def unpin_job(job_id: Id, user: CurrentUser, session: SessionDep, ip: ClientIP) -> JobPublic:
    """Let retention remove this job's files again once it is older than the window (the owner only)."""
    return JobPublic.read(
        session, retention.set_pinned(session, actor=user, job_id=job_id, pinned=False, ip=ip)
    )


@router.get("/admin/storage", response_model=StorageReport, operation_id="admin_storage")
def storage(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    largest: Annotated[int, Query(ge=1, le=500, description="How many of the largest jobs to list.")] = 20,
) -> StorageReport:
    """Disk usage (operators and admins): data-dir areas, free space, per-user totals, largest jobs."""
    report = retention.storage_report(session, settings=settings, actor=user, largest=largest)
    return StorageReport.model_validate(report)


@router.post("/admin/retention/run", response_model=RetentionRun, operation_id="admin_retention_run")
def run_retention(user: AdminUser, session: SessionDep, settings: SettingsDep, ip: ClientIP) -> RetentionRun:
    """Run the retention sweep now (admins); returns what was removed."""
    removed = retention.run_now(session, settings=settings, actor=user, ip=ip)
    return RetentionRun(
        removed=[RemovedFiles.model_validate(r, from_attributes=True) for r in removed],
        bytes_freed=sum(r.bytes_freed for r in removed),
    )
