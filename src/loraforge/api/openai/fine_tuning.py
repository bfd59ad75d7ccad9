"""/v1 fine tuning (OpenAI-compatible): jobs create/list/retrieve/cancel, events, checkpoints.

Thin: parse, authorise, call `services.openai.fine_tuning` and `fine_tuning_events` (which map LoRAForge
jobs to OpenAI objects).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from loraforge.api.deps import ClientIP, CurrentUser, SchedulerDep, SessionDep, SettingsDep
from loraforge.api.openai.errors import OPENAI_ERROR_RESPONSES
from loraforge.api.openai.schemas.fine_tuning import (
    FineTuningJob,
    FineTuningJobCheckpoint,
    FineTuningJobCheckpointList,
    FineTuningJobCreate,
    FineTuningJobEvent,
    FineTuningJobEventList,
    FineTuningJobList,
)
from loraforge.db.models import Job
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.openai import fine_tuning, fine_tuning_events
from loraforge.services.openai.fine_tuning_spec import FineTuneRequest

router = APIRouter(tags=["openai"], responses=OPENAI_ERROR_RESPONSES)

_METADATA_PARAM = re.compile(r"^metadata\[(.{1,64})\]$")
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (at most 100).")]
After = Annotated[str | None, Query(max_length=64, description="The last id of the previous page.")]


def _job(session: Session, job: Job) -> FineTuningJob:
    return FineTuningJob.model_validate(fine_tuning.job_object(session, job=job))


@router.post("/fine_tuning/jobs", response_model=FineTuningJob, operation_id="openai_fine_tuning_jobs_create")
def create_job(
    body: FineTuningJobCreate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    scheduler: SchedulerDep,
    ip: ClientIP,
) -> FineTuningJob:
    """Queue a LoRA fine-tuning job on an uploaded `fine-tune` file (the job is a LoRAForge job)."""
    if body.integrations:
        raise InvalidInput(
            "integrations are not supported (metrics are in the job's events and the Jobs UI)",
            code="unsupported",
            fields=[FieldIssue(field="integrations", message="must be empty")],
        )
    request = FineTuneRequest(
        model=body.model,
        training_file=body.training_file,
        validation_file=body.validation_file,
        suffix=body.suffix,
        seed=body.seed,
        metadata=body.metadata,
        hyperparameters=body.hyperparameters.model_dump(exclude_none=True) if body.hyperparameters else None,
        method=body.method.model_dump(exclude_none=True) if body.method else None,
        loraforge_spec=body.loraforge_spec,
    )
    job = fine_tuning.create(session, settings=settings, actor=user, request=request, ip=ip)
    scheduler.wake()
    return _job(session, job)


@router.get(
    "/fine_tuning/jobs", response_model=FineTuningJobList, operation_id="openai_fine_tuning_jobs_list"
)
def list_jobs(
    request: Request, user: CurrentUser, session: SessionDep, after: After = None, limit: Limit = 20
) -> FineTuningJobList:
    """Your jobs created through this API, newest first; filter with `metadata[key]=value`."""
    metadata: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        match = _METADATA_PARAM.fullmatch(key)
        if match:
            metadata[match.group(1)] = value
    page = fine_tuning.list_jobs(session, actor=user, after=after, limit=limit, metadata=metadata)
    return FineTuningJobList(data=[_job(session, j) for j in page.items], has_more=page.has_more)


@router.get(
    "/fine_tuning/jobs/{job_id}",
    response_model=FineTuningJob,
    operation_id="openai_fine_tuning_jobs_retrieve",
)
def retrieve_job(job_id: str, user: CurrentUser, session: SessionDep) -> FineTuningJob:
    return _job(session, fine_tuning.get(session, actor=user, job_id=job_id))


@router.post(
    "/fine_tuning/jobs/{job_id}/cancel",
    response_model=FineTuningJob,
    operation_id="openai_fine_tuning_jobs_cancel",
)
def cancel_job(
    job_id: str, user: CurrentUser, session: SessionDep, scheduler: SchedulerDep, ip: ClientIP
) -> FineTuningJob:
    """Cancel now (the training process is killed)."""
    job = fine_tuning.cancel(session, executor=scheduler.executor, actor=user, job_id=job_id, ip=ip)
    scheduler.announce(job)
    return _job(session, job)


@router.get(
    "/fine_tuning/jobs/{job_id}/events",
    response_model=FineTuningJobEventList,
    operation_id="openai_fine_tuning_jobs_events",
)
def list_events(
    job_id: str, user: CurrentUser, session: SessionDep, after: After = None, limit: Limit = 20
) -> FineTuningJobEventList:
    """Status, log and error messages and per-step metrics, newest first."""
    page = fine_tuning_events.events(session, actor=user, job_id=job_id, after=after, limit=limit)
    return FineTuningJobEventList(
        data=[FineTuningJobEvent.model_validate(e) for e in page.data], has_more=page.has_more
    )


@router.get(
    "/fine_tuning/jobs/{job_id}/checkpoints",
    response_model=FineTuningJobCheckpointList,
    operation_id="openai_fine_tuning_jobs_checkpoints",
)
def list_checkpoints(
    job_id: str,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> FineTuningJobCheckpointList:
    """The job's complete checkpoints, newest first."""
    page = fine_tuning_events.checkpoints(
        session, settings=settings, actor=user, job_id=job_id, after=after, limit=limit
    )
    data = [FineTuningJobCheckpoint.model_validate(c) for c in page.data]
    return FineTuningJobCheckpointList(
        data=data,
        has_more=page.has_more,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )
