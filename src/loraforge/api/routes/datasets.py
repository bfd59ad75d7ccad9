"""Datasets: list, one-shot upload, versions, edit, delete. Thin: parse, authorise, call
`services.datasets`. The resumable uploads, the imports and the routes inside one dataset have
modules of their own (`dataset_uploads`, `dataset_imports`, `dataset_contents`), included into this
router in the order the paths must be matched."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from pydantic import ValidationError
from sqlalchemy import select

from loraforge.api.body_limits import RouteBodyLimit
from loraforge.api.deps import ClientIP, CurrentUser, SessionDep, SettingsDep
from loraforge.api.ids import Id
from loraforge.api.paging import Page, PageSize
from loraforge.api.routes import dataset_contents, dataset_imports, dataset_uploads
from loraforge.api.routes.dataset_views import created_view, current_view, dataset_view
from loraforge.api.schemas.datasets import (
    DatasetCreated,
    DatasetFormat,
    DatasetMapping,
    DatasetPage,
    DatasetPublic,
    DatasetUpdate,
    DatasetVersionPublic,
    RollbackRequest,
)
from loraforge.datastore.sniffing import clean_filename
from loraforge.db.models import DatasetVersion
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.datasets import catalog as datasets
from loraforge.services.datasets import versions as dataset_versions
from loraforge.services.datasets.staging import stage_upload
from loraforge.services.platform.owner_names import NAME_MAX_LENGTH, clip_name
from loraforge.settings import Settings

router = APIRouter(prefix="/datasets", tags=["datasets"])

_CHUNK_PATH = re.compile(r"/api/datasets/uploads/[^/]+/chunks")


def upload_body_limits(settings: Settings) -> list[RouteBodyLimit]:
    """Body limits of the upload routes (the global limit, for JSON, is far smaller)."""
    form = settings.dataset_form_max_bytes
    return [
        RouteBodyLimit("PUT", _CHUNK_PATH, settings.dataset_chunk_max_bytes),
        RouteBodyLimit("POST", re.compile(r"/api/datasets"), form),
        RouteBodyLimit("POST", re.compile(r"/api/datasets/\d+/versions"), form),
        RouteBodyLimit("POST", re.compile(r"/api/datasets/import/dataset-info"), form),
    ]


def _mapping(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        return DatasetMapping.model_validate(json.loads(raw)).model_dump(exclude_none=True)
    except (json.JSONDecodeError, ValidationError) as exc:
        raise InvalidInput(
            "mapping must be a JSON object like a dataset_info.json entry",
            code="validation_error",
            fields=[FieldIssue(field="mapping", message=str(exc).splitlines()[0])],
        ) from None


def _ingest_options(
    format: DatasetFormat | None, mapping: dict[str, Any] | None, txt_mode: str
) -> dataset_versions.IngestOptions:
    return dataset_versions.IngestOptions(format=format, mapping=mapping, txt_mode=txt_mode)


# ---- list / one-shot upload ---------------------------------------------------------------------


@router.get("", response_model=DatasetPage, operation_id="datasets_list")
def list_datasets(
    user: CurrentUser,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name or description.")] = None,
    format: DatasetFormat | None = None,
    sort: Annotated[
        str,
        Query(
            pattern="^-?(name|created_at|updated_at|rows|size_bytes|format)$", description="`-` = descending."
        ),
    ] = "-updated_at",
    page: Page = 1,
    page_size: PageSize = 20,
) -> DatasetPage:
    """Your datasets (operators and admins: everyone's)."""
    found = datasets.list_datasets(
        session,
        actor=user,
        q=q,
        format=format,
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    ids = [d.current_version_id for d in found.items if d.current_version_id]
    versions = {v.id: v for v in session.scalars(select(DatasetVersion).where(DatasetVersion.id.in_(ids)))}
    return DatasetPage(
        items=[dataset_view(d, versions.get(d.current_version_id or 0)) for d in found.items],
        total=found.total,
        page=page,
        page_size=page_size,
    )


@router.post(
    "", response_model=DatasetCreated, status_code=status.HTTP_201_CREATED, operation_id="datasets_create"
)
def create_dataset(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
    file: Annotated[UploadFile, File(description="JSON, JSONL, CSV, TSV, Parquet or TXT.")],
    name: Annotated[str | None, Form(max_length=NAME_MAX_LENGTH)] = None,
    description: Annotated[str, Form(max_length=10_000)] = "",
    format: Annotated[DatasetFormat | None, Form(description="Override the detected format.")] = None,
    mapping: Annotated[str | None, Form(description="JSON: a dataset_info.json-style entry.")] = None,
    txt_mode: Annotated[str, Form(pattern="^(lines|document)$")] = "lines",
) -> DatasetCreated:
    """Upload a small file in one request (multipart). Large files: use the resumable upload."""
    options = _ingest_options(format, _mapping(mapping), txt_mode)
    staged, sha, _size = stage_upload(settings, file.file)
    dataset_name = (name or "").strip() or clean_filename(file.filename)
    dataset, version = dataset_versions.create_from_file(
        session, settings=settings, actor=user, source=staged, filename=file.filename, source_sha256=sha,
        name=clip_name(dataset_name), description=description, options=options, ip=ip,
    )  # fmt: skip
    return created_view(dataset, version)


# Fixed paths before "/{dataset_id}", which would capture them (422: not an integer); the include
# order is also the order of the paths in the OpenAPI document.
router.include_router(dataset_uploads.router)
router.include_router(dataset_imports.router)


# ---- versions by id -----------------------------------------------------------------------------------


@router.get(
    "/versions/{version_id}", response_model=DatasetVersionPublic, operation_id="datasets_get_version"
)
def get_version(version_id: Id, user: CurrentUser, session: SessionDep) -> DatasetVersionPublic:
    return DatasetVersionPublic.model_validate(
        datasets.get_version(session, actor=user, version_id=version_id)
    )


@router.post(
    "/versions/{version_id}/rollback",
    response_model=DatasetCreated,
    status_code=201,
    operation_id="datasets_rollback_version",
)
def rollback_version(
    version_id: Id,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
    body: RollbackRequest | None = None,
) -> DatasetCreated:
    """Make that version's content current again, as a new version (history stays linear)."""
    dataset, version = dataset_versions.rollback(
        session,
        settings=settings,
        actor=user,
        version_id=version_id,
        message=body.message if body else "",
        ip=ip,
    )
    return created_view(dataset, version)


# ---- one dataset ----------------------------------------------------------------------------------------


@router.get("/{dataset_id}", response_model=DatasetPublic, operation_id="datasets_get")
def get_dataset(dataset_id: Id, user: CurrentUser, session: SessionDep) -> DatasetPublic:
    return current_view(session, datasets.get_dataset(session, actor=user, dataset_id=dataset_id))


@router.patch("/{dataset_id}", response_model=DatasetPublic, operation_id="datasets_update")
def update_dataset(
    dataset_id: Id, body: DatasetUpdate, user: CurrentUser, session: SessionDep, ip: ClientIP
) -> DatasetPublic:
    dataset = datasets.update_dataset(
        session, actor=user, dataset_id=dataset_id, name=body.name, description=body.description, ip=ip
    )
    return current_view(session, dataset)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="datasets_delete")
def delete_dataset(
    dataset_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> None:
    """Delete the dataset, every version and their files (409 while a job uses it)."""
    datasets.delete_dataset(session, settings=settings, actor=user, dataset_id=dataset_id, ip=ip)


@router.get(
    "/{dataset_id}/versions", response_model=list[DatasetVersionPublic], operation_id="datasets_list_versions"
)
def list_versions(dataset_id: Id, user: CurrentUser, session: SessionDep) -> list[DatasetVersionPublic]:
    """Newest first."""
    return [
        DatasetVersionPublic.model_validate(v)
        for v in dataset_versions.list_versions(session, actor=user, dataset_id=dataset_id)
    ]


@router.post(
    "/{dataset_id}/versions",
    response_model=DatasetCreated,
    status_code=201,
    operation_id="datasets_create_version",
)
def create_version(
    dataset_id: Id,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
    file: Annotated[UploadFile, File()],
    message: Annotated[str, Form(max_length=2000)] = "",
    format: Annotated[DatasetFormat | None, Form()] = None,
    mapping: Annotated[str | None, Form()] = None,
    txt_mode: Annotated[str, Form(pattern="^(lines|document)$")] = "lines",
) -> DatasetCreated:
    """A new version from an uploaded file (large files: a resumable upload with `dataset_id`)."""
    datasets.get_dataset(session, actor=user, dataset_id=dataset_id, write=True)
    options = _ingest_options(format, _mapping(mapping), txt_mode)
    staged, sha, _size = stage_upload(settings, file.file)
    dataset, version = dataset_versions.create_from_file(
        session, settings=settings, actor=user, source=staged, filename=file.filename, source_sha256=sha,
        name="", options=options, message=message, dataset_id=dataset_id, ip=ip,
    )  # fmt: skip
    return created_view(dataset, version)


# Preview, stats, preprocess, compare, download: after the dataset's own routes, as in the document.
router.include_router(dataset_contents.router)
