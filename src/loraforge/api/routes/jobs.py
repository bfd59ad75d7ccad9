"""Jobs: create, list, read, start, stop, cancel, clone, delete; events, metrics, logs; the queue.
Thin: parse, authorise, call `services.jobs`; the scheduler launches and watches."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from loraforge.api.deps import ClientIP, CurrentUser, SessionDep, SettingsDep
from loraforge.api.schemas import (
    JobCreate,
    JobEventPublic,
    JobEvents,
    JobLogs,
    JobMetrics,
    JobPage,
    JobPublic,
    JobStatusName,
    QueueItem,
    QueueView,
)
from loraforge.services import jobs
from loraforge.services.scheduler import Scheduler

router = APIRouter(tags=["jobs"])


def _scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.scheduler
    return scheduler


SchedulerDep = Annotated[Scheduler, Depends(_scheduler)]
Page = Annotated[int, Query(ge=1, le=10_000_000, description="1-based page number.")]
PageSize = Annotated[int, Query(ge=1, le=100, description="Items per page (at most 100).")]


@router.post(
    "/jobs", response_model=JobPublic, status_code=status.HTTP_201_CREATED, operation_id="jobs_create"
)
def create_job(
    body: JobCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
    ip: ClientIP,
) -> JobPublic:  # fmt: skip
    """Create a job from a spec (validated by the engine's schema; the dataset version is pinned).
    `start: true` queues it; otherwise it is a draft."""
    job = jobs.create_job(
        session, settings=settings, actor=user, name=body.name, spec=body.spec, start=body.start, ip=ip
    )
    if body.start:
        scheduler.wake()
    return JobPublic.model_validate(job)


@router.get("/jobs", response_model=JobPage, operation_id="jobs_list")
def list_jobs(
    user: CurrentUser,
    session: SessionDep,
    status_: Annotated[
        list[JobStatusName] | None, Query(alias="status", description="Repeat for several.")
    ] = None,
    owner_id: Annotated[int | None, Query(description="Operators and admins: one user's jobs.")] = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> JobPage:
    """Your jobs, newest first (operators and admins: everyone's, or `owner_id`'s)."""
    found = jobs.list_jobs(
        session, actor=user, statuses=list(status_ or []), owner_id=owner_id,
        offset=(page - 1) * page_size, limit=page_size,
    )  # fmt: skip
    return JobPage(
        items=[JobPublic.model_validate(j) for j in found.items],
        total=found.total,
        page=page,
        page_size=page_size,
    )


@router.get("/jobs/{job_id}", response_model=JobPublic, operation_id="jobs_get")
def get_job(job_id: int, user: CurrentUser, session: SessionDep) -> JobPublic:
    return JobPublic.model_validate(jobs.get_job(session, actor=user, job_id=job_id))


@router.post("/jobs/{job_id}/start", response_model=JobPublic, operation_id="jobs_start")
def start_job(
    job_id: int, user: CurrentUser, session: SessionDep, scheduler: SchedulerDep, ip: ClientIP
) -> JobPublic:
    """Queue a draft."""
    job = jobs.start_job(session, actor=user, job_id=job_id, ip=ip)
    scheduler.wake()
    return JobPublic.model_validate(job)


@router.post("/jobs/{job_id}/stop", response_model=JobPublic, operation_id="jobs_stop")
def stop_job(
    job_id: int, user: CurrentUser, session: SessionDep, scheduler: SchedulerDep, ip: ClientIP
) -> JobPublic:
    """Graceful stop: the engine saves a checkpoint, then the job is `cancelled`."""
    job = jobs.stop_job(session, executor=scheduler.executor, actor=user, job_id=job_id, ip=ip)
    return JobPublic.model_validate(job)


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic, operation_id="jobs_cancel")
def cancel_job(
    job_id: int, user: CurrentUser, session: SessionDep, scheduler: SchedulerDep, ip: ClientIP
) -> JobPublic:
    """Immediate: the job is `cancelled` and its processes are killed."""
    job = jobs.cancel_job(session, executor=scheduler.executor, actor=user, job_id=job_id, ip=ip)
    return JobPublic.model_validate(job)


@router.post(
    "/jobs/{job_id}/clone",
    response_model=JobPublic,
    status_code=status.HTTP_201_CREATED,
    operation_id="jobs_clone",
)
def clone_job(
    job_id: int, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> JobPublic:
    """A new draft with this job's spec and pinned dataset version."""
    return JobPublic.model_validate(
        jobs.clone_job(session, settings=settings, actor=user, job_id=job_id, ip=ip)
    )


@router.delete("/jobs/{job_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="jobs_delete")
def delete_job(
    job_id: int, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> None:
    """Delete a draft or finished job and its run directory."""
    jobs.delete_job(session, settings=settings, actor=user, job_id=job_id, ip=ip)


@router.get("/jobs/{job_id}/events", response_model=JobEvents, operation_id="jobs_events")
def job_events(
    job_id: int,
    user: CurrentUser,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, description="Only events with a larger seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> JobEvents:
    rows = jobs.events_after(session, actor=user, job_id=job_id, after=after, limit=limit)
    items = [JobEventPublic.model_validate(jobs.event_json(e)) for e in rows]
    return JobEvents(items=items, last_seq=rows[-1].seq if rows else after)


@router.get("/jobs/{job_id}/metrics", response_model=JobMetrics, operation_id="jobs_metrics")
def job_metrics(
    job_id: int,
    user: CurrentUser,
    session: SessionDep,
    downsample: Annotated[int, Query(ge=3, le=100_000, description="At most about this many points.")] = 2000,
) -> JobMetrics:
    """Training metrics, downsampled keeping each bucket's lowest and highest loss; eval points."""
    return JobMetrics.model_validate(jobs.metrics(session, actor=user, job_id=job_id, target=downsample))


@router.get("/jobs/{job_id}/logs", response_model=JobLogs, operation_id="jobs_logs")
def job_logs(
    job_id: int,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    tail: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> JobLogs:
    """The last lines of the engine's output (library logs, warnings, tracebacks, engine messages)."""
    return JobLogs(lines=jobs.logs(session, settings=settings, actor=user, job_id=job_id, tail=tail))


@router.get("/queue", response_model=QueueView, operation_id="jobs_queue")
def get_queue(user: CurrentUser, session: SessionDep) -> QueueView:
    """Queued jobs in admission order with positions (researchers: their own), and the active jobs."""
    entries, active = jobs.queue(session, actor=user)
    return QueueView(
        queued=[QueueItem(position=e.position, job=JobPublic.model_validate(e.job)) for e in entries],
        active=[JobPublic.model_validate(j) for j in active],
    )
