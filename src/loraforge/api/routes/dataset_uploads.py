"""Resumable dataset uploads: start a session, PUT chunks by offset, GET the missing ranges, complete
or abort. Thin: parse, call `services.datasets.uploads`. Included by `routes.datasets` under
/datasets, before the `/{dataset_id}` routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from loraforge.api.deps import ClientIP, CurrentUser, SessionDep, SettingsDep
from loraforge.api.ids import Offset
from loraforge.api.routes.dataset_views import created_view
from loraforge.api.schemas.datasets import ByteRange, DatasetCreated, UploadCreate, UploadPublic
from loraforge.errors import InvalidInput
from loraforge.services.datasets import uploads as dataset_uploads
from loraforge.settings import Settings

router = APIRouter()


# UploadPublic fields read straight off the session row; the others are computed.
_UPLOAD_COLUMNS = (
    "id",
    "filename",
    "name",
    "sha256",
    "chunk_size",
    "status",
    "dataset_id",
    "result_dataset_id",
    "result_version_id",
    "created_at",
    "expires_at",
)


def _upload_view(state: dataset_uploads.UploadState, settings: Settings) -> UploadPublic:
    upload = state.upload
    return UploadPublic.model_validate(
        {
            **{name: getattr(upload, name) for name in _UPLOAD_COLUMNS},
            "size": upload.total_size,
            "max_chunk_bytes": settings.dataset_chunk_max_bytes,
            "received_bytes": state.received_bytes,
            "missing": [ByteRange(start=r.start, end=r.end) for r in state.missing],
        }
    )


@router.post(
    "/uploads",
    response_model=UploadPublic,
    status_code=status.HTTP_201_CREATED,
    operation_id="datasets_create_upload",
)
def create_upload(
    body: UploadCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> UploadPublic:
    """Start a resumable upload: then PUT chunks, GET the missing ranges, POST complete."""
    upload = dataset_uploads.create_upload(
        session,
        settings=settings,
        actor=user,
        filename=body.filename,
        size=body.size,
        sha256=body.sha256,
        name=body.name,
        description=body.description,
        format=body.format,
        options={
            "mapping": body.mapping.model_dump(exclude_none=True) if body.mapping else None,
            "txt_mode": body.txt_mode,
        },
        dataset_id=body.dataset_id,
        message=body.message,
    )
    return _upload_view(dataset_uploads.upload_state(session, actor=user, upload_id=upload.id), settings)


@router.get("/uploads/{upload_id}", response_model=UploadPublic, operation_id="datasets_get_upload")
def get_upload(upload_id: str, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> UploadPublic:
    """The session with the byte ranges still `missing` (resume after a broken connection)."""
    return _upload_view(dataset_uploads.upload_state(session, actor=user, upload_id=upload_id), settings)


@router.put(
    "/uploads/{upload_id}/chunks",
    response_model=UploadPublic,
    operation_id="datasets_put_upload_chunk",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def put_chunk(
    upload_id: str,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    offset: Annotated[Offset, Query(description="Byte offset of this chunk in the file.")],
) -> UploadPublic:
    """Raw bytes at `offset` (Content-Length required). Any order; resending a chunk is harmless."""
    declared = request.headers.get("content-length")
    if declared is None or not (declared.isascii() and declared.isdigit()):
        raise InvalidInput("a chunk needs a Content-Length header", code="length_required")
    state = await dataset_uploads.receive_chunk(
        session, settings=settings, actor=user, upload_id=upload_id, offset=offset, length=int(declared),
        body=request.stream(),
    )  # fmt: skip
    return _upload_view(state, settings)


@router.post(
    "/uploads/{upload_id}/complete", response_model=DatasetCreated, operation_id="datasets_complete_upload"
)
def complete_upload(
    upload_id: str, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> DatasetCreated:
    """Check the sha256 and import: a new dataset, or a new version of the session's `dataset_id`."""
    dataset, version = dataset_uploads.complete_upload(
        session, settings=settings, actor=user, upload_id=upload_id, ip=ip
    )
    return created_view(dataset, version)


@router.delete(
    "/uploads/{upload_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="datasets_abort_upload"
)
def abort_upload(upload_id: str, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> None:
    dataset_uploads.abort_upload(session, settings=settings, actor=user, upload_id=upload_id)
