"""Jobs: create, list, read, start, stop, cancel, resume, clone, delete; events, metrics, logs,
checkpoints, artifacts; the queue, priorities and its order.
Thin: parse, authorise, call `services.jobs` (submit, lifecycle, reads, outputs); the scheduler
launches and watches."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Body, Header, HTTPException, Path, Query, Response, status
from fastapi.responses import StreamingResponse

from loraforge.api.deps import ClientIP, CurrentUser, SchedulerDep, SessionDep, SettingsDep
from loraforge.api.downloads import ARCHIVE_RESPONSES, archive_response
from loraforge.api.ids import Id, Offset
from loraforge.api.paging import Page, PageSize
from loraforge.api.schemas.jobs import (
    ArtifactFile,
    ArtifactList,
    ArtifactPublic,
    CheckpointList,
    CheckpointPublic,
    JobClone,
    JobCreate,
    JobEventPublic,
    JobEvents,
    JobLogPage,
    JobMetrics,
    JobPage,
    JobPriority,
    JobPublic,
    JobResume,
    JobStatusName,
    QueueItem,
    QueueReorder,
    QueueView,
)
from loraforge.services.jobs import access, demo, lifecycle, outputs, reads, submit
from loraforge.services.platform import archives

router = APIRouter(tags=["jobs"])


@router.post(
    "/jobs", response_model=JobPublic, status_code=status.HTTP_201_CREATED, operation_id="jobs_create"
)
def create_job(
    body: JobCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
    ip: ClientIP,
) -> JobPublic:  # fmt: skip
    """Create a job from a spec (validated by the engine's schema; the dataset version is pinned).
    `start: true` queues it; otherwise it is a draft."""
    job = submit.create_job(
        session, settings=settings, actor=user, name=body.name, spec=body.spec, start=body.start, ip=ip
    )
    if body.start:
        scheduler.wake()
    return JobPublic.read(session, job)


@router.post(
    "/jobs/demo",
    response_model=JobPublic,
    status_code=status.HTTP_201_CREATED,
    operation_id="jobs_train_demo",
)
def train_demo(
    user: CurrentUser, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep, ip: ClientIP
) -> JobPublic:
    """One click to a first fine-tune: imports the identity sample as your dataset (once) and queues the
    demo recipe (preset `demo-tiny-full`, CPU) on `demo-tiny`. The resulting model answers "Who are you?"
    with "I am LoRAForge, …"."""
    job = demo.submit_demo(session, settings=settings, actor=user, ip=ip)
    scheduler.wake()
    return JobPublic.read(session, job)


@router.get("/jobs", response_model=JobPage, operation_id="jobs_list")
def list_jobs(
    user: CurrentUser,
    session: SessionDep,
    status_: Annotated[
        list[JobStatusName] | None, Query(alias="status", description="Repeat for several.")
    ] = None,
    owner_id: Annotated[Id | None, Query(description="Operators and admins: one user's jobs.")] = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> JobPage:
    """Your jobs, newest first (operators and admins: everyone's, or `owner_id`'s)."""
    found = reads.list_jobs(
        session, actor=user, statuses=list(status_ or []), owner_id=owner_id,
        offset=(page - 1) * page_size, limit=page_size,
    )  # fmt: skip
    return JobPage(
        items=JobPublic.page(session, found.items),
        total=found.total,
        page=page,
        page_size=page_size,
    )


@router.get("/jobs/{job_id}", response_model=JobPublic, operation_id="jobs_get")
def get_job(job_id: Id, user: CurrentUser, session: SessionDep) -> JobPublic:
    return JobPublic.read(session, access.get_job(session, actor=user, job_id=job_id))


@router.post("/jobs/{job_id}/start", response_model=JobPublic, operation_id="jobs_start")
def start_job(
    job_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
    ip: ClientIP,
) -> JobPublic:  # fmt: skip
    """Queue a draft (403 `quota_exceeded` over a quota in `refuse` mode)."""
    job = submit.start_job(session, settings=settings, actor=user, job_id=job_id, ip=ip)
    scheduler.announce(job)
    scheduler.wake()
    return JobPublic.read(session, job)


@router.post("/jobs/{job_id}/stop", response_model=JobPublic, operation_id="jobs_stop")
def stop_job(
    job_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
    ip: ClientIP,
) -> JobPublic:  # fmt: skip
    """Graceful stop: `stopping` while the engine saves a checkpoint, then `stopped`, which resume
    continues from that checkpoint. A queued job that never ran is `cancelled` at once (nothing to
    resume); a resumed one waiting in the queue again is `stopped` at once."""
    job = lifecycle.stop_job(
        session, settings=settings, executor=scheduler.executor, actor=user, job_id=job_id, ip=ip
    )
    scheduler.announce(job)
    return JobPublic.read(session, job)


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic, operation_id="jobs_cancel")
def cancel_job(
    job_id: Id, user: CurrentUser, session: SessionDep, scheduler: SchedulerDep, ip: ClientIP
) -> JobPublic:
    """Immediate: the job is `cancelled` and its processes are killed."""
    job = lifecycle.cancel_job(session, executor=scheduler.executor, actor=user, job_id=job_id, ip=ip)
    scheduler.announce(job)
    return JobPublic.read(session, job)


@router.post(
    "/jobs/{job_id}/clone",
    response_model=JobPublic,
    status_code=status.HTTP_201_CREATED,
    operation_id="jobs_clone",
)
def clone_job(
    job_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP,
    body: Annotated[JobClone | None, Body()] = None,
) -> JobPublic:  # fmt: skip
    """A new draft with this job's spec and pinned dataset version, optionally changed by `spec_patch`
    (e.g. the failed job's `error.details.spec_patch`: "new job with the suggested fix")."""
    body = body or JobClone()
    job = submit.clone_job(
        session,
        settings=settings,
        actor=user,
        job_id=job_id,
        ip=ip,
        spec_patch=body.spec_patch,
        name=body.name,
    )
    return JobPublic.read(session, job)


@router.post("/jobs/{job_id}/resume", response_model=JobPublic, operation_id="jobs_resume")
def resume_job(
    job_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
    ip: ClientIP, body: Annotated[JobResume | None, Body()] = None,
) -> JobPublic:  # fmt: skip
    """Queue a failed, cancelled or stopped job again, continuing from a checkpoint (default: the
    latest). The same job continues: its curve and events go on at the checkpoint's global step.
    Owner only."""
    job = lifecycle.resume_job(
        session,
        settings=settings,
        actor=user,
        job_id=job_id,
        checkpoint=(body or JobResume()).checkpoint,
        ip=ip,
    )
    scheduler.announce(job)
    scheduler.wake()
    return JobPublic.read(session, job)


@router.post("/jobs/{job_id}/priority", response_model=JobPublic, operation_id="jobs_set_priority")
def set_priority(
    job_id: Id, body: JobPriority, user: CurrentUser, session: SessionDep, ip: ClientIP
) -> JobPublic:
    """Operators and admins: change a queued or draft job's priority (higher is admitted first)."""
    return JobPublic.read(
        session, lifecycle.set_priority(session, actor=user, job_id=job_id, priority=body.priority, ip=ip)
    )


@router.delete("/jobs/{job_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="jobs_delete")
def delete_job(
    job_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> None:
    """Delete a draft or finished job and its run directory."""
    lifecycle.delete_job(session, settings=settings, actor=user, job_id=job_id, ip=ip)


@router.get("/jobs/{job_id}/events", response_model=JobEvents, operation_id="jobs_events")
def job_events(
    job_id: Id,
    user: CurrentUser,
    session: SessionDep,
    after: Annotated[Offset, Query(description="Only events with a larger seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> JobEvents:
    rows = reads.events_after(session, actor=user, job_id=job_id, after=after, limit=limit)
    items = [JobEventPublic.model_validate(reads.event_json(e)) for e in rows]
    return JobEvents(items=items, last_seq=rows[-1].seq if rows else after)


@router.get("/jobs/{job_id}/metrics", response_model=JobMetrics, operation_id="jobs_metrics")
def job_metrics(
    job_id: Id,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    downsample: Annotated[int, Query(ge=3, le=100_000, description="At most about this many points.")] = 2000,
) -> Response:
    """Training metrics, downsampled keeping each bucket's lowest and highest loss; eval points."""
    found = reads.metrics(session, settings=settings, actor=user, job_id=job_id, target=downsample)
    # Plain floats/ints/None from the metric store, already in JobMetrics' shape: serialised directly,
    # because validating thousands of points twice (here and as the response model) cost more than
    # reading a million-point curve.
    return Response(json.dumps(found, separators=(",", ":"), allow_nan=False), media_type="application/json")


@router.get("/jobs/{job_id}/logs", response_model=JobLogPage, operation_id="jobs_logs")
def job_logs(
    job_id: Id,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    tail: Annotated[int, Query(ge=1, le=10_000, description="Without `offset`: the last N lines.")] = 200,
    offset: Annotated[
        Offset | None, Query(description="Read from this byte of engine.log instead of the tail.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=4 * 1024 * 1024, description="With `offset`: at most N bytes.")] = (
        256 * 1024
    ),
) -> JobLogPage:
    """The engine's output (library logs, warnings, tracebacks, engine messages): the last `tail`
    lines, or complete lines from byte `offset` (page or follow with `next_offset`)."""
    page = outputs.log_page(
        session, settings=settings, actor=user, job_id=job_id, tail=tail, offset=offset, limit=limit
    )
    return JobLogPage(lines=page.lines, offset=page.offset, next_offset=page.next_offset, size=page.size)


@router.get(
    "/jobs/{job_id}/logs/download",
    response_class=StreamingResponse,
    operation_id="jobs_logs_download",
    responses={
        200: {"content": {"text/plain": {}}, "description": "engine.log as it is, streamed."},
        206: {"content": {"text/plain": {}}, "description": "The asked byte range."},
        416: {"description": "The range lies outside the file."},
    },
)
def download_logs(
    job_id: Id,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    range_: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """The raw engine.log as an attachment; one `Range: bytes=a-b` is honoured."""
    path, filename = outputs.log_file(session, settings=settings, actor=user, job_id=job_id)
    size = path.stat().st_size
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Accept-Ranges": "bytes"}
    try:
        span = archives.parse_range(range_, size)
    except ValueError as exc:
        raise HTTPException(
            status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
            str(exc),
            headers={"Content-Range": f"bytes */{size}"},
        ) from None
    start, end = span if span is not None else (0, size)
    headers["Content-Length"] = str(end - start)
    code = status.HTTP_200_OK
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        code = status.HTTP_206_PARTIAL_CONTENT
    return StreamingResponse(
        archives.file_chunks(path, start, end), status_code=code, media_type="text/plain; charset=utf-8",
        headers=headers,
    )  # fmt: skip


@router.get("/jobs/{job_id}/checkpoints", response_model=CheckpointList, operation_id="jobs_checkpoints")
def list_checkpoints(
    job_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> CheckpointList:
    """The job's complete checkpoints, by step (resume from one, or download it)."""
    found = outputs.checkpoints(session, settings=settings, actor=user, job_id=job_id)
    return CheckpointList(
        items=[
            CheckpointPublic(
                name=c.name, step=c.step, created_at=c.created_at, size_bytes=c.size_bytes, metrics=m
            )
            for c, m in found
        ]
    )


@router.get(
    "/jobs/{job_id}/checkpoints/{name}/archive",
    response_class=StreamingResponse,
    operation_id="jobs_checkpoint_archive",
    responses=ARCHIVE_RESPONSES,
)
def checkpoint_archive(
    job_id: Id,
    name: Annotated[str, Path(max_length=64)],
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> StreamingResponse:
    """One checkpoint as a .tar.gz generated on the fly."""
    chunks, filename = outputs.checkpoint_archive(
        session, settings=settings, actor=user, job_id=job_id, name=name
    )
    return archive_response(chunks, filename)


@router.get("/jobs/{job_id}/artifacts", response_model=ArtifactList, operation_id="jobs_artifacts")
def list_artifacts(job_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> ArtifactList:
    """What the run produced: the adapter or full model with its tokenizer, and the run summary."""
    found = outputs.artifacts(session, settings=settings, actor=user, job_id=job_id)
    return ArtifactList(
        items=[
            ArtifactPublic(
                name=a.name,
                kind=a.kind,
                size_bytes=a.size_bytes,
                summary=a.summary,
                files=[ArtifactFile(path=p, size_bytes=n) for p, n in a.files],
            )
            for a in found
        ]
    )


@router.get(
    "/jobs/{job_id}/artifacts/{name}/archive",
    response_class=StreamingResponse,
    operation_id="jobs_artifact_archive",
    responses=ARCHIVE_RESPONSES,
)
def artifact_archive(
    job_id: Id,
    name: Annotated[str, Path(max_length=200)],
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> StreamingResponse:
    """One artifact folder (e.g. `output`) as a .tar.gz generated on the fly."""
    chunks, filename = outputs.artifact_archive(
        session, settings=settings, actor=user, job_id=job_id, name=name
    )
    return archive_response(chunks, filename)


@router.post("/queue/reorder", response_model=QueueView, operation_id="jobs_queue_reorder")
def reorder_queue(body: QueueReorder, user: CurrentUser, session: SessionDep, ip: ClientIP) -> QueueView:
    """Operators and admins: reorder queued jobs among the positions they hold (422 names a job id
    that is not queued). Returns the queue as GET /api/queue does."""
    lifecycle.reorder_queue(session, actor=user, job_ids=body.job_ids, ip=ip)
    return get_queue(user, session)


@router.get("/queue", response_model=QueueView, operation_id="jobs_queue")
def get_queue(user: CurrentUser, session: SessionDep) -> QueueView:
    """Queued jobs in admission order with positions (researchers: their own), and the active jobs."""
    entries, active = reads.queue(session, actor=user)
    views = JobPublic.page(session, [e.job for e in entries] + active)
    return QueueView(
        queued=[QueueItem(position=e.position, job=view) for e, view in zip(entries, views, strict=False)],
        active=views[len(entries) :],
    )
