"""REST routes: exports of model versions, and single files of a version with HTTP Range (resumable
downloads). Thin: parse, call `services.export`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import FileResponse

from loraforge.api.deps import ClientIP, CurrentUser, SchedulerDep, SessionDep, SettingsDep
from loraforge.api.ids import Id
from loraforge.api.routes.models import version_public
from loraforge.api.schemas.exports import (
    ExportCreate,
    ExportEstimate,
    ExportFormat,
    ExportFormats,
    ExportStarted,
    FormatChoice,
    PushCreate,
    PushResult,
    Quantization,
    QuantizationChoice,
)
from loraforge.db.models import RegisteredModel
from loraforge.services.export import create, formats, push
from loraforge.services.export import files as version_files

router = APIRouter(tags=["exports"])

_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The whole file."},
    206: {"content": {"application/octet-stream": {}}, "description": "The requested byte range."},
    416: {"description": "The range starts past the end of the file (Content-Range: bytes */size)."},
}


@router.get("/exports/formats", response_model=ExportFormats, operation_id="exports_formats")
def list_formats(user: CurrentUser) -> ExportFormats:
    """Every format and quantization, with whether this server can write it and why not."""
    del user
    return ExportFormats(
        formats=[
            FormatChoice(
                name=f.name,
                available=f.available,
                reason=f.reason,
                needs_adapter=f.needs_adapter,
                default_quantization=f.default_quantization,
                quantizations=[
                    QuantizationChoice(name=q.name, available=q.available, reason=q.reason)
                    for q in f.quantizations
                ],
            )
            for f in formats.catalog()
        ]
    )


@router.get(
    "/models/versions/{version_id}/exports/estimate",
    response_model=ExportEstimate,
    operation_id="exports_estimate",
)
def estimate(
    version_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep,
    format: ExportFormat,
    quantization: Quantization | None = None,
    context_length: Annotated[
        int | None, Query(ge=1, le=1 << 22, description="Default: min(4096, the model's).")
    ] = None,
) -> ExportEstimate:  # fmt: skip
    """Estimated file size and memory to run this version exported as `format`/`quantization`."""
    found = create.estimate_version(
        session, settings=settings, actor=user, version_id=version_id, fmt=format, quantization=quantization,
        context=context_length,
    )  # fmt: skip
    chosen = create.check_choice(format, quantization, available_only=False, where="query.")
    return ExportEstimate(
        format=format, quantization=chosen, file_bytes=found.file_bytes, memory_bytes=found.memory_bytes,
        context_length=found.context_length, param_count=found.param_count, note=found.note,
    )  # fmt: skip


@router.post(
    "/models/versions/{version_id}/exports",
    response_model=ExportStarted,
    status_code=status.HTTP_201_CREATED,
    operation_id="exports_create",
)
def create_export(
    version_id: Id, body: ExportCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep,
    scheduler: SchedulerDep, ip: ClientIP,
) -> ExportStarted:  # fmt: skip
    """Queue a job that exports this version; the new version is listed at once as `exporting`. The
    model's owner (or an admin)."""
    job, version = create.request_export(
        session, settings=settings, actor=user, version_id=version_id, fmt=body.format,
        quantization=body.quantization, name=body.name, ip=ip,
    )  # fmt: skip
    scheduler.wake()
    model = session.get(RegisteredModel, version.model_id)
    assert model is not None
    return ExportStarted(job_id=job.id, version=version_public(session, model, version))


@router.post(
    "/models/versions/{version_id}/push",
    response_model=PushResult,
    responses={502: {"description": "The hub could not be reached or refused the upload."}},
    operation_id="models_version_push",
)
def push_version(
    version_id: Id, body: PushCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep,
    ip: ClientIP,
) -> PushResult:  # fmt: skip
    """Upload a ready version's files to the Hugging Face Hub or ModelScope with the caller's token (used
    for this request only). The model's owner (or an admin). A sync route: the upload runs in a worker
    thread, off the event loop. A refused token is a 422 naming `token`."""
    request = push.PushRequest(
        hub=body.hub, repo_id=body.repo_id, token=body.token.get_secret_value(), private=body.private
    )
    result = push.push_version(
        session, settings=settings, actor=user, version_id=version_id, request=request, ip=ip
    )
    return PushResult.model_validate(result)


@router.get(
    "/models/versions/{version_id}/files/{name}",
    response_class=FileResponse,
    responses=_FILE_RESPONSES,
    operation_id="models_version_file",
)
def download_file(
    version_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep,
    name: Annotated[str, Path(min_length=1, max_length=255, description="A file of the version's listing.")],
) -> FileResponse:  # fmt: skip
    """One file of a ready version, resumable: `Range: bytes=N-` answers 206 with `Content-Range`, a
    range past the end 416; `ETag` is the file's SHA-256 where the export recorded it."""
    found = version_files.find_file(session, settings=settings, actor=user, version_id=version_id, name=name)
    return FileResponse(
        found.path,
        media_type="application/octet-stream",
        filename=found.name,
        headers={"ETag": found.etag},
    )
