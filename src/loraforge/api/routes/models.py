"""REST routes: the model registry. Thin: parse, authorise, call `services.models` (catalog, manage,
versions).

The version routes (`/models/versions/...`) are declared before `/models/{model_id}` so the literal
segment is never read as a model id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from loraforge.api.deps import ClientIP, CurrentUser, DatabaseDep, SchedulerDep, SessionDep, SettingsDep
from loraforge.api.downloads import ARCHIVE_RESPONSES, archive_response
from loraforge.api.ids import Id
from loraforge.api.paging import Page, PageSize
from loraforge.api.schemas.jobs import JobPublic
from loraforge.api.schemas.models import (
    ModelCreate,
    ModelKind,
    ModelMergeStarted,
    ModelPage,
    ModelPublic,
    ModelUpdate,
    ModelVersionCreate,
    ModelVersionList,
    ModelVersionPublic,
    ModelVersionUpdate,
)
from loraforge.db.models import ModelVersion, RegisteredModel, User
from loraforge.services.jobs import merge
from loraforge.services.models import catalog as registry
from loraforge.services.models import manage, results

router = APIRouter(tags=["models"])


def version_public(session: Session, model: RegisteredModel, version: ModelVersion) -> ModelVersionPublic:
    return ModelVersionPublic.model_validate(registry.version_view(session, model=model, version=version))


def _model(session: Session, user: User, model: RegisteredModel) -> ModelPublic:
    versions = registry.versions_of(session, model)
    current = next((v for v in versions if v.id == model.current_version_id), None)
    return ModelPublic(
        id=model.id, name=model.name, kind=model.kind,
        description=model.description, shared=model.shared, source=model.source, source_ref=model.source_ref,
        owner_id=model.owner_id, owner=registry.owner_name(session, model.owner_id),
        can_edit=registry.can_change(user, model), current_version_id=model.current_version_id,
        current_version=version_public(session, model, current) if current is not None else None,
        version_count=len(versions), created_at=model.created_at, updated_at=model.updated_at,
    )  # fmt: skip


# ---- versions ---------------------------------------------------------------------------------------------


@router.get(
    "/models/versions/{version_id}", response_model=ModelVersionPublic, operation_id="models_version_get"
)
def get_version(version_id: Id, user: CurrentUser, session: SessionDep) -> ModelVersionPublic:
    """A version with its lineage (base, source job, dataset version), metrics, spec and detected info."""
    model, version = registry.get_version(session, actor=user, version_id=version_id)
    return version_public(session, model, version)


@router.patch(
    "/models/versions/{version_id}", response_model=ModelVersionPublic, operation_id="models_version_update"
)
def update_version(
    version_id: Id, body: ModelVersionUpdate, user: CurrentUser, session: SessionDep, ip: ClientIP
) -> ModelVersionPublic:
    """Tags (replaced as a whole) and notes. The model's owner (or an admin)."""
    model, version = manage.update_version(
        session, actor=user, version_id=version_id, tags=body.tags, notes=body.notes, ip=ip
    )
    return version_public(session, model, version)


@router.get(
    "/models/versions/{version_id}/download",
    response_class=StreamingResponse,
    responses=ARCHIVE_RESPONSES,
    operation_id="models_version_download",
)
def download_version(
    version_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> StreamingResponse:
    """The version's files as a `.tar.gz` (adapter or full weights with the tokenizer)."""
    filename, chunks = registry.archive(session, settings=settings, actor=user, version_id=version_id)
    return archive_response(chunks, filename)


@router.post(
    "/models/versions/{version_id}/merge",
    response_model=ModelMergeStarted,
    status_code=status.HTTP_201_CREATED,
    operation_id="models_version_merge",
)
def merge_version(
    version_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
    ip: ClientIP,
) -> ModelMergeStarted:  # fmt: skip
    """Queue a job that merges this adapter version into its base. The new full version is listed at
    once as `merging`; it turns `ready` (and current) when the job succeeds."""
    job, version = merge.request_merge(session, settings=settings, actor=user, version_id=version_id, ip=ip)
    scheduler.wake()
    model = session.get(RegisteredModel, version.model_id)
    assert model is not None
    return ModelMergeStarted(
        job=JobPublic.read(session, job), version=version_public(session, model, version)
    )


# ---- models -----------------------------------------------------------------------------------------------


@router.get("/models", response_model=ModelPage, operation_id="models_list")
def list_models(
    user: CurrentUser,
    session: SessionDep,
    kind: ModelKind | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Name contains (case-insensitive).")] = None,
    job_id: Annotated[Id | None, Query(description="Models with a version produced by this job.")] = None,
    dataset_version_id: Annotated[
        Id | None, Query(description="Models with a version trained on this dataset version.")
    ] = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> ModelPage:
    """Models you may read (yours, shared ones; operators and admins: all), newest first. The built-in
    `demo-tiny` is not a row here (it is always listed by GET /v1/models)."""
    found = registry.list_models(
        session, actor=user, kind=kind, q=q, job_id=job_id, dataset_version_id=dataset_version_id,
        offset=(page - 1) * page_size, limit=page_size,
    )  # fmt: skip
    return ModelPage(
        items=[_model(session, user, m) for m in found.items],
        total=found.total,
        page=page,
        page_size=page_size,
    )


@router.post(
    "/models", response_model=ModelPublic, status_code=status.HTTP_201_CREATED, operation_id="models_create"
)
def create_model(
    body: ModelCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep, database: DatabaseDep,
    ip: ClientIP,
) -> ModelPublic:  # fmt: skip
    """Register a base model: a hub id (files fetched in the background unless `download: false`) or a
    server folder (operators and admins; inside the configured import roots)."""
    model = manage.register_base(
        session, settings=settings, database=database, actor=user, name=body.name, source=body.source,
        ref=body.ref, description=body.description, shared=body.shared, download=body.download, ip=ip,
    )  # fmt: skip
    return _model(session, user, model)


@router.get("/models/{model_id}", response_model=ModelPublic, operation_id="models_get")
def get_model(model_id: Id, user: CurrentUser, session: SessionDep) -> ModelPublic:
    return _model(session, user, registry.get_model(session, actor=user, model_id=model_id))


@router.patch("/models/{model_id}", response_model=ModelPublic, operation_id="models_update")
def update_model(
    model_id: Id, body: ModelUpdate, user: CurrentUser, session: SessionDep, ip: ClientIP
) -> ModelPublic:
    """Rename, describe, share or unshare. The owner (or an admin)."""
    model = manage.update_model(
        session, actor=user, model_id=model_id, name=body.name, description=body.description,
        shared=body.shared, ip=ip,
    )  # fmt: skip
    return _model(session, user, model)


@router.delete("/models/{model_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="models_delete")
def delete_model(
    model_id: Id,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
    files: Annotated[
        bool, Query(description="Also remove the files the registry owns (downloads, job outputs).")
    ] = False,
) -> None:
    """Refused (409 `model_in_use`) while a deployment serves it or an unfinished job uses it."""
    manage.delete_model(session, settings=settings, actor=user, model_id=model_id, files=files, ip=ip)


@router.get(
    "/models/{model_id}/versions", response_model=ModelVersionList, operation_id="models_versions_list"
)
def list_versions(model_id: Id, user: CurrentUser, session: SessionDep) -> ModelVersionList:
    model = registry.get_model(session, actor=user, model_id=model_id)
    return ModelVersionList(
        items=[version_public(session, model, v) for v in registry.versions_of(session, model)]
    )


@router.post(
    "/models/{model_id}/versions",
    response_model=ModelVersionPublic,
    status_code=status.HTTP_201_CREATED,
    operation_id="models_versions_create",
)
def create_version(
    model_id: Id, body: ModelVersionCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep,
    ip: ClientIP,
) -> ModelVersionPublic:  # fmt: skip
    """A succeeded training job's output as the next version (it becomes current). The owner."""
    version = results.add_job_version(
        session, settings=settings, actor=user, model_id=model_id, job_id=body.job_id, ip=ip
    )
    model = registry.get_model(session, actor=user, model_id=model_id)
    return version_public(session, model, version)
