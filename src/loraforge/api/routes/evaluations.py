"""Evaluations: create, list, read, edit, start, cancel, delete; a model version's scores.
Thin: parse, authorise, call `services.evaluation`; the scheduler runs the jobs (samples, compare and
reports are in `evaluation_reports.py`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from loraforge.api.deps import ClientIP, CurrentUser, SchedulerDep, SessionDep, SettingsDep
from loraforge.api.ids import Id
from loraforge.api.paging import Page, PageSize
from loraforge.api.schemas.evaluations import (
    EvaluationCreate,
    EvaluationPage,
    EvaluationPublic,
    EvaluationUpdate,
    VersionScores,
)
from loraforge.services.evaluation import create, manage, scores
from loraforge.services.evaluation.access import get_evaluation
from loraforge.services.evaluation.views import evaluation_view

router = APIRouter(tags=["evaluations"])


@router.post(
    "/evaluations",
    response_model=EvaluationPublic,
    status_code=status.HTTP_201_CREATED,
    operation_id="evaluations_create",
)
def create_evaluation(
    body: EvaluationCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep,
    scheduler: SchedulerDep, ip: ClientIP,
) -> EvaluationPublic:  # fmt: skip
    """Score 1–8 models on one dataset version: one job per model (a run identical to an earlier
    succeeded one of yours reuses its job: `cached`). `start: true` queues the jobs; otherwise a draft."""
    request = create.EvaluationRequest(
        name=body.name,
        description=body.description,
        models=list(body.models),
        dataset=body.dataset,
        dataset_version=body.dataset_version,
        split=body.split,
        metrics=list(body.metrics),
        generation=body.generation.model_dump() if body.generation else None,
        options=body.options.model_dump(exclude_none=True) if body.options else {},
        judge=body.judge.model_dump() if body.judge else None,
        shared=body.shared,
        start=body.start,
    )
    evaluation = create.create_evaluation(session, settings=settings, actor=user, request=request, ip=ip)
    if body.start:
        scheduler.wake()
    return EvaluationPublic.model_validate(evaluation_view(session, evaluation))


@router.get("/evaluations", response_model=EvaluationPage, operation_id="evaluations_list")
def list_evaluations(
    user: CurrentUser,
    session: SessionDep,
    dataset: Annotated[Id | None, Query(description="Only evaluations of this dataset.")] = None,
    model_version: Annotated[
        Id | None, Query(description="Only evaluations that scored this model version.")
    ] = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> EvaluationPage:
    """Your evaluations and the shared ones, newest first (operators and admins: everyone's)."""
    found = manage.list_evaluations(
        session, actor=user, dataset_id=dataset, model_version_id=model_version,
        offset=(page - 1) * page_size, limit=page_size,
    )  # fmt: skip
    items = [EvaluationPublic.model_validate(evaluation_view(session, e)) for e in found.items]
    return EvaluationPage(items=items, total=found.total, page=page, page_size=page_size)


@router.get("/evaluations/{evaluation_id}", response_model=EvaluationPublic, operation_id="evaluations_get")
def get_evaluation_route(evaluation_id: Id, user: CurrentUser, session: SessionDep) -> EvaluationPublic:
    evaluation = get_evaluation(session, actor=user, evaluation_id=evaluation_id)
    return EvaluationPublic.model_validate(evaluation_view(session, evaluation))


@router.patch(
    "/evaluations/{evaluation_id}", response_model=EvaluationPublic, operation_id="evaluations_update"
)
def update_evaluation(
    evaluation_id: Id, body: EvaluationUpdate, user: CurrentUser, session: SessionDep, ip: ClientIP
) -> EvaluationPublic:
    """Rename, describe, share or unshare (owner only; shared = read-only for every user)."""
    evaluation = manage.update_evaluation(
        session, actor=user, evaluation_id=evaluation_id, name=body.name, description=body.description,
        shared=body.shared, ip=ip,
    )  # fmt: skip
    return EvaluationPublic.model_validate(evaluation_view(session, evaluation))


@router.post(
    "/evaluations/{evaluation_id}/start", response_model=EvaluationPublic, operation_id="evaluations_start"
)
def start_evaluation(
    evaluation_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
    ip: ClientIP,
) -> EvaluationPublic:  # fmt: skip
    """Queue a draft; failed, cancelled or stopped runs continue where they stopped."""
    evaluation = manage.start_evaluation(
        session, settings=settings, actor=user, evaluation_id=evaluation_id, ip=ip
    )
    scheduler.wake()
    return EvaluationPublic.model_validate(evaluation_view(session, evaluation))


@router.post(
    "/evaluations/{evaluation_id}/cancel", response_model=EvaluationPublic, operation_id="evaluations_cancel"
)
def cancel_evaluation(
    evaluation_id: Id, user: CurrentUser, session: SessionDep, scheduler: SchedulerDep, ip: ClientIP
) -> EvaluationPublic:
    """Cancel every queued or running run now; the answers so far are kept for a later start."""
    evaluation = manage.cancel_evaluation(
        session, executor=scheduler.executor, actor=user, evaluation_id=evaluation_id, ip=ip
    )
    return EvaluationPublic.model_validate(evaluation_view(session, evaluation))


@router.delete(
    "/evaluations/{evaluation_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="evaluations_delete"
)
def delete_evaluation(
    evaluation_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
    ip: ClientIP,
) -> Response:  # fmt: skip
    """Cancel its running jobs, then delete it and the jobs no other evaluation reuses."""
    manage.delete_evaluation(
        session,
        settings=settings,
        executor=scheduler.executor,
        actor=user,
        evaluation_id=evaluation_id,
        ip=ip,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/models/versions/{version_id}/scores", response_model=VersionScores, operation_id="models_version_scores"
)
def version_scores(version_id: Id, user: CurrentUser, session: SessionDep) -> VersionScores:
    """The evaluations you may read that scored this version, with the delta against its base model
    where the same evaluation scored that too."""
    items = scores.version_scores(session, actor=user, version_id=version_id)
    return VersionScores.model_validate({"items": items})
