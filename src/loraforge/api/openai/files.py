"""/v1 files (OpenAI-compatible): upload, list, retrieve, content, delete. Thin: `services.openai.files`."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import StreamingResponse

from loraforge.api.body_limits import RouteBodyLimit
from loraforge.api.deps import ClientIP, CurrentUser, SessionDep, SettingsDep
from loraforge.api.openai.errors import OPENAI_ERROR_RESPONSES
from loraforge.api.openai.schemas.files import FileDeleted, FileList, FileObject
from loraforge.db.models import StoredFile
from loraforge.services.openai import files as openai_files
from loraforge.settings import Settings

router = APIRouter(tags=["openai"], responses=OPENAI_ERROR_RESPONSES)

_MULTIPART_OVERHEAD = 64 * 1024  # boundaries, headers and the purpose field around the file's bytes


def files_body_limits(settings: Settings) -> list[RouteBodyLimit]:
    """The body limit of `POST /v1/files` (app.py adds it to BodySizeLimitMiddleware's route limits):
    the file cap plus multipart framing; the service enforces the exact cap on the file's bytes."""
    limit = settings.files_max_upload_bytes + _MULTIPART_OVERHEAD
    return [RouteBodyLimit("POST", re.compile(r"/v1/files"), limit)]


def _view(stored: StoredFile) -> FileObject:
    return FileObject(
        id=openai_files.public_id(stored.id),
        bytes=stored.bytes,
        created_at=int(stored.created_at.timestamp()),
        filename=stored.filename,
        purpose=stored.purpose,
        status="processed" if stored.status == "processed" else "error",
        status_details=stored.status_details,
    )


@router.post(
    "/files", response_model=FileObject, status_code=status.HTTP_200_OK, operation_id="openai_files_create"
)
def create_file(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
    file: Annotated[UploadFile, File(description="The file; for purpose fine-tune, JSONL.")],
    purpose: Annotated[str, Form(max_length=32, description="fine-tune, assistants, batch, user_data…")],
) -> FileObject:
    """Upload a file. `fine-tune` files are checked line by line and become a dataset of yours."""
    stored = openai_files.upload_file(
        session,
        settings=settings,
        actor=user,
        source=file.file,
        filename=file.filename,
        purpose=purpose,
        ip=ip,
    )
    return _view(stored)


@router.get("/files", response_model=FileList, operation_id="openai_files_list")
def list_files(
    user: CurrentUser,
    session: SessionDep,
    purpose: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    after: Annotated[
        str | None, Query(max_length=64, description="The last id of the previous page.")
    ] = None,
    order: Literal["asc", "desc"] = "desc",
) -> FileList:
    """Your files, newest first by default."""
    page = openai_files.list_files(
        session, actor=user, purpose=purpose, after=after, limit=limit, order=order
    )
    data = [_view(f) for f in page.items]
    return FileList(
        data=data,
        has_more=page.has_more,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )


@router.get("/files/{file_id}", response_model=FileObject, operation_id="openai_files_retrieve")
def retrieve_file(file_id: str, user: CurrentUser, session: SessionDep) -> FileObject:
    return _view(openai_files.get_file(session, actor=user, file_id=file_id))


@router.get(
    "/files/{file_id}/content",
    response_class=StreamingResponse,
    operation_id="openai_files_content",
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The bytes as uploaded."}},
)
def file_content(
    file_id: str, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> StreamingResponse:
    """The original bytes, streamed in 1 MiB pieces."""
    path, _stored = openai_files.content(session, settings=settings, actor=user, file_id=file_id)
    return StreamingResponse(
        openai_files.iter_bytes(path),
        media_type="application/octet-stream",
        headers={"Content-Length": str(path.stat().st_size)},
    )


@router.delete("/files/{file_id}", response_model=FileDeleted, operation_id="openai_files_delete")
def delete_file(
    file_id: str, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> FileDeleted:
    """Delete the file. Its dataset goes too, unless a job used it or it has versions of its own."""
    public, _kept = openai_files.delete_file(session, settings=settings, actor=user, file_id=file_id, ip=ip)
    return FileDeleted(id=public)
