"""Datasets: uploads (one-shot multipart and resumable chunks), imports, versions, preview, stats,
preprocess, compare, download. Thin: parse, authorise, call `services.datasets.catalog` /
`dataset_uploads`."""

from __future__ import annotations

import errno
import json
import os
import re
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile, status
from fastapi.responses import FileResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from loraforge.api.body_limits import RouteBodyLimit
from loraforge.api.deps import ClientIP, CurrentUser, SessionDep, SettingsDep
from loraforge.api.paging import Page, PageSize
from loraforge.api.schemas import (
    ByteRange,
    CompareResult,
    DatasetCreated,
    DatasetFormat,
    DatasetMapping,
    DatasetPage,
    DatasetPublic,
    DatasetStats,
    DatasetUpdate,
    DatasetVersionPublic,
    HubImport,
    ImportResult,
    PathImport,
    PreprocessRequest,
    PreprocessResult,
    PreviewPage,
    RollbackRequest,
    UploadCreate,
    UploadPublic,
)
from loraforge.datastore import preprocess as prep
from loraforge.datastore.reading import clean_filename
from loraforge.db.models import Dataset, DatasetVersion
from loraforge.errors import FieldIssue, InsufficientStorage, InvalidInput
from loraforge.services.datasets import catalog as datasets
from loraforge.services.datasets import uploads as dataset_uploads
from loraforge.settings import Settings

router = APIRouter(prefix="/datasets", tags=["datasets"])

VersionParam = Annotated[int | None, Query(description="A version id of this dataset (default: current).")]
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


# ---- views -------------------------------------------------------------------------------------


def _dataset_view(dataset: Dataset, version: DatasetVersion | None) -> DatasetPublic:
    return DatasetPublic(
        id=dataset.id,
        owner_id=dataset.owner_id,
        name=dataset.name,
        description=dataset.description,
        format=dataset.format,
        rows=dataset.rows,
        valid_rows=dataset.valid_rows,
        invalid_rows=dataset.invalid_rows,
        errors=version.errors if version else [],
        current_version=version.number if version else None,
        current_version_id=dataset.current_version_id,
        size_bytes=dataset.size_bytes,
        created_at=dataset.created_at,
        updated_at=dataset.updated_at,
        detection=version.detection if version else {},
        mapping=version.mapping if version else {},
    )


def _view(session: Session, dataset: Dataset) -> DatasetPublic:
    version = session.get(DatasetVersion, dataset.current_version_id) if dataset.current_version_id else None
    return _dataset_view(dataset, version)


def _created(dataset: Dataset, version: DatasetVersion) -> DatasetCreated:
    return DatasetCreated(
        dataset=_dataset_view(dataset, version), version=DatasetVersionPublic.model_validate(version)
    )


def _upload_view(state: dataset_uploads.UploadState, settings: Settings) -> UploadPublic:
    upload = state.upload
    return UploadPublic(
        id=upload.id,
        filename=upload.filename,
        name=upload.name,
        size=upload.total_size,
        sha256=upload.sha256,
        chunk_size=upload.chunk_size,
        max_chunk_bytes=settings.dataset_chunk_max_bytes,
        status=upload.status,
        received_bytes=state.received_bytes,
        missing=[ByteRange(start=r.start, end=r.end) for r in state.missing],
        dataset_id=upload.dataset_id,
        result_dataset_id=upload.result_dataset_id,
        result_version_id=upload.result_version_id,
        created_at=upload.created_at,
        expires_at=upload.expires_at,
    )


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
) -> datasets.IngestOptions:
    return datasets.IngestOptions(format=format, mapping=mapping, txt_mode=txt_mode)


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
        items=[_dataset_view(d, versions.get(d.current_version_id or 0)) for d in found.items],
        total=found.total,
        page=page,
        page_size=page_size,
    )


def _stage_form_file(settings: Settings, file: UploadFile) -> tuple[Any, str, int]:
    return datasets.stage_upload(settings, file.file)


@router.post(
    "", response_model=DatasetCreated, status_code=status.HTTP_201_CREATED, operation_id="datasets_create"
)
def create_dataset(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
    file: Annotated[UploadFile, File(description="JSON, JSONL, CSV, TSV, Parquet or TXT.")],
    name: Annotated[str | None, Form(max_length=200)] = None,
    description: Annotated[str, Form(max_length=10_000)] = "",
    format: Annotated[DatasetFormat | None, Form(description="Override the detected format.")] = None,
    mapping: Annotated[str | None, Form(description="JSON: a dataset_info.json-style entry.")] = None,
    txt_mode: Annotated[str, Form(pattern="^(lines|document)$")] = "lines",
) -> DatasetCreated:
    """Upload a small file in one request (multipart). Large files: use the resumable upload."""
    options = _ingest_options(format, _mapping(mapping), txt_mode)
    staged, sha, _size = _stage_form_file(settings, file)
    dataset_name = (name or "").strip() or clean_filename(file.filename)
    dataset, version = datasets.create_from_file(
        session, settings=settings, actor=user, source=staged, filename=file.filename, source_sha256=sha,
        name=dataset_name[:200], description=description, options=options, ip=ip,
    )  # fmt: skip
    return _created(dataset, version)


# ---- resumable uploads ----------------------------------------------------------------------------


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
    offset: Annotated[int, Query(ge=0, description="Byte offset of this chunk in the file.")],
) -> UploadPublic:
    """Raw bytes at `offset` (Content-Length required). Any order; resending a chunk is harmless."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise InvalidInput("a chunk needs a Content-Length header", code="length_required")
    length = int(declared)
    target, _retry = await run_in_threadpool(
        dataset_uploads.begin_chunk,
        session,
        settings=settings,
        actor=user,
        upload_id=upload_id,
        offset=offset,
        length=length,
    )
    received = 0
    fd = os.open(target, os.O_WRONLY)
    try:
        async for piece in request.stream():
            if received + len(piece) > length:
                raise InvalidInput("the body is longer than its Content-Length", code="chunk_length_mismatch")
            dataset_uploads.write_chunk_part(fd, piece, offset + received)
            received += len(piece)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage("the server ran out of disk space; this chunk was not stored") from None
        raise
    finally:
        os.close(fd)
    if received != length:
        raise InvalidInput(
            f"received {received:,} bytes but Content-Length said {length:,}", code="chunk_length_mismatch"
        )
    state = await run_in_threadpool(
        dataset_uploads.record_chunk, session, actor=user, upload_id=upload_id, offset=offset, length=length
    )
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
    return _created(dataset, version)


@router.delete(
    "/uploads/{upload_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="datasets_abort_upload"
)
def abort_upload(upload_id: str, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> None:
    dataset_uploads.abort_upload(session, settings=settings, actor=user, upload_id=upload_id)


# ---- imports and samples ------------------------------------------------------------------------------


def _import_view(session: Session, report: datasets.ImportReport) -> ImportResult:
    return ImportResult.model_validate(
        {
            "items": [_view(session, d) for d in report.created],
            "skipped": report.skipped,
            "failed": report.failed,
        }
    )


@router.post("/import/dataset-info", response_model=ImportResult, operation_id="datasets_import_dataset_info")
def import_dataset_info(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
    dataset_info: Annotated[UploadFile, File(description="LLaMA-Factory dataset_info.json.")],
    files: Annotated[list[UploadFile], File(description="The data files its entries name.")],
    names: Annotated[
        str | None, Form(description="Comma-separated entries to import (default: all).")
    ] = None,
) -> ImportResult:
    """Import the entries of a dataset_info.json whose files are attached (matched by file name)."""
    info = datasets.parse_dataset_info(dataset_info.file.read(4 * 1024 * 1024))
    by_name = {clean_filename(f.filename): f for f in files}

    def open_file(file_name: str) -> _Unclosable | None:
        upload = by_name.get(clean_filename(file_name))
        if upload is None:
            return None
        upload.file.seek(0)
        return _Unclosable(upload.file)

    wanted = [n.strip() for n in names.split(",") if n.strip()] if names else None
    report = datasets.import_entries(
        session, settings=settings, actor=user, info=info, open_file=open_file, names=wanted,
        source="dataset_info", ip=ip,
    )  # fmt: skip
    return _import_view(session, report)


class _Unclosable:
    """A context manager over an upload's file that leaves it open (one file may serve two entries)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.handle.read(size)
        return data

    def __enter__(self) -> _Unclosable:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


@router.post("/import/path", response_model=ImportResult, operation_id="datasets_import_path")
def import_path(
    body: PathImport, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> ImportResult:
    """Import a file, or a folder with a dataset_info.json, from inside the admin-allowed roots."""
    report = datasets.import_server_path(
        session,
        settings=settings,
        actor=user,
        path=body.path,
        name=body.name,
        description=body.description,
        options=_ingest_options(
            body.format, body.mapping.model_dump(exclude_none=True) if body.mapping else None, "lines"
        ),
        names=body.names,
        ip=ip,
    )
    return _import_view(session, report)


@router.post(
    "/import/hub", response_model=DatasetCreated, status_code=201, operation_id="datasets_import_hub"
)
def import_hub(
    body: HubImport, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> DatasetCreated:
    """Import a Hugging Face Hub dataset (its json/jsonl/csv/parquet files for `split`). 503 offline."""
    dataset, version = datasets.import_hub(
        session,
        settings=settings,
        actor=user,
        repo_id=body.repo_id,
        revision=body.revision,
        split=body.split,
        name=body.name,
        description=body.description,
        options=_ingest_options(
            body.format, body.mapping.model_dump(exclude_none=True) if body.mapping else None, "lines"
        ),
        ip=ip,
    )
    return _created(dataset, version)


@router.post(
    "/samples/forge-demo",
    response_model=DatasetCreated,
    status_code=201,
    operation_id="datasets_import_sample",
)
def import_forge_demo(
    user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> DatasetCreated:
    """One click: the project's small demo SFT dataset (alpaca) as a dataset of yours."""
    dataset, version = datasets.import_sample(session, settings=settings, actor=user, ip=ip)
    return _created(dataset, version)


# ---- versions by id -----------------------------------------------------------------------------------


@router.get(
    "/versions/{version_id}", response_model=DatasetVersionPublic, operation_id="datasets_get_version"
)
def get_version(version_id: int, user: CurrentUser, session: SessionDep) -> DatasetVersionPublic:
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
    version_id: int,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
    body: RollbackRequest | None = None,
) -> DatasetCreated:
    """Make that version's content current again, as a new version (history stays linear)."""
    dataset, version = datasets.rollback(
        session,
        settings=settings,
        actor=user,
        version_id=version_id,
        message=body.message if body else "",
        ip=ip,
    )
    return _created(dataset, version)


# ---- one dataset ----------------------------------------------------------------------------------------


@router.get("/{dataset_id}", response_model=DatasetPublic, operation_id="datasets_get")
def get_dataset(dataset_id: int, user: CurrentUser, session: SessionDep) -> DatasetPublic:
    return _view(session, datasets.get_dataset(session, actor=user, dataset_id=dataset_id))


@router.patch("/{dataset_id}", response_model=DatasetPublic, operation_id="datasets_update")
def update_dataset(
    dataset_id: int, body: DatasetUpdate, user: CurrentUser, session: SessionDep, ip: ClientIP
) -> DatasetPublic:
    dataset = datasets.update_dataset(
        session, actor=user, dataset_id=dataset_id, name=body.name, description=body.description, ip=ip
    )
    return _view(session, dataset)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="datasets_delete")
def delete_dataset(
    dataset_id: int, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> None:
    """Delete the dataset, every version and their files (409 while a job uses it)."""
    datasets.delete_dataset(session, settings=settings, actor=user, dataset_id=dataset_id, ip=ip)


@router.get(
    "/{dataset_id}/versions", response_model=list[DatasetVersionPublic], operation_id="datasets_list_versions"
)
def list_versions(dataset_id: int, user: CurrentUser, session: SessionDep) -> list[DatasetVersionPublic]:
    """Newest first."""
    return [
        DatasetVersionPublic.model_validate(v)
        for v in datasets.list_versions(session, actor=user, dataset_id=dataset_id)
    ]


@router.post(
    "/{dataset_id}/versions",
    response_model=DatasetCreated,
    status_code=201,
    operation_id="datasets_create_version",
)
def create_version(
    dataset_id: int,
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
    staged, sha, _size = _stage_form_file(settings, file)
    dataset, version = datasets.create_from_file(
        session, settings=settings, actor=user, source=staged, filename=file.filename, source_sha256=sha,
        name="", options=options, message=message, dataset_id=dataset_id, ip=ip,
    )  # fmt: skip
    return _created(dataset, version)


@router.get("/{dataset_id}/preview", response_model=PreviewPage, operation_id="datasets_preview")
def preview(
    dataset_id: int,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    page: Page = 1,
    page_size: PageSize = 20,
    q: Annotated[
        str | None, Query(max_length=200, description="Text to search for (case-insensitive).")
    ] = None,
    version: VersionParam = None,
) -> PreviewPage:
    """Rows in normalized form (turns). Pages seek through the row index; `q` scans (≤ 1M rows)."""
    found = datasets.preview_rows(
        session, settings=settings, actor=user, dataset_id=dataset_id, version_id=version,
        page=page, page_size=page_size, q=q or None,
    )  # fmt: skip
    return PreviewPage.model_validate(
        {
            "items": found.items,
            "total": found.total,
            "page": page,
            "page_size": page_size,
            "version_id": found.version.id,
            "q": q or None,
            "scanned": found.scanned,
            "complete": found.complete,
        }
    )


@router.get("/{dataset_id}/stats", response_model=DatasetStats, operation_id="datasets_stats")
def stats(
    dataset_id: int,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    version: VersionParam = None,
    tokenizer: Annotated[
        str | None,
        Query(max_length=200, description="A model folder under `<data_dir>/models`, e.g. `demo-tiny`."),
    ] = None,
) -> DatasetStats:
    found, values = datasets.dataset_stats(
        session, settings=settings, actor=user, dataset_id=dataset_id, version_id=version, tokenizer=tokenizer
    )
    return DatasetStats.model_validate({**values, "version_id": found.id, "format": found.format})


@router.post("/{dataset_id}/preprocess", response_model=PreprocessResult, operation_id="datasets_preprocess")
def preprocess(
    dataset_id: int,
    body: PreprocessRequest,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
) -> PreprocessResult:
    """Clean, filter, dedupe, mask, tokenize, split → a new version and a report. `dry_run`: the
    first `dry_run_rows` rows before/after, nothing created."""
    o = body.options
    if o.tokenize and not o.tokenizer:
        raise InvalidInput(
            "tokenize needs a tokenizer", code="validation_error",
            fields=[FieldIssue(field="options.tokenizer", message="required when tokenize is true")],
        )  # fmt: skip
    languages: list[str] = ["en", "zh"] if o.remove_stopwords is True else list(o.remove_stopwords or [])
    options = prep.Options(
        clean_text=o.clean_text,
        remove_stopwords=languages,
        tokenize=o.tokenize,
        tokenizer=o.tokenizer if (o.tokenize or o.length_unit == "tokens") else None,
        dedupe=None if o.dedupe is False else ("normalized" if o.dedupe is True else o.dedupe),
        min_length=o.min_length,
        max_length=o.max_length,
        length_unit=o.length_unit,
        drop_empty=o.drop_empty,
        mask_pii=o.mask_pii,
        val_ratio=o.split.val_ratio if o.split else None,
        seed=o.split.seed if o.split else 42,
    )
    outcome = datasets.preprocess(
        session, settings=settings, actor=user, dataset_id=dataset_id, version_id=body.version_id,
        options=options, dry_run=body.dry_run, dry_run_rows=body.dry_run_rows, message=body.message,
        recipe_options=o.model_dump(), ip=ip,
    )  # fmt: skip
    return PreprocessResult.model_validate(
        {
            "dry_run": body.dry_run,
            "report": outcome.report,
            "samples": outcome.samples,
            "dataset": _dataset_view(outcome.dataset, outcome.version)
            if outcome.dataset and outcome.version
            else None,
            "version": DatasetVersionPublic.model_validate(outcome.version) if outcome.version else None,
        }
    )


@router.get("/{dataset_id}/compare", response_model=CompareResult, operation_id="datasets_compare_versions")
def compare(
    dataset_id: int,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    a: Annotated[int, Query(description="Version id (the older one).")],
    b: Annotated[int, Query(description="Version id (the newer one).")],
    samples: Annotated[int, Query(ge=0, le=50)] = 5,
) -> CompareResult:
    """Rows added, removed and changed from a to b (rows matched by their source row number)."""
    found = datasets.compare_versions(
        session, settings=settings, actor=user, dataset_id=dataset_id, a=a, b=b, samples=samples
    )
    r = found.result
    return CompareResult(
        a=DatasetVersionPublic.model_validate(found.a),
        b=DatasetVersionPublic.model_validate(found.b),
        added=r.added,
        removed=r.removed,
        changed=r.changed,
        unchanged=r.unchanged,
        samples=r.samples,
    )


@router.get(
    "/{dataset_id}/download",
    response_class=FileResponse,
    operation_id="datasets_download",
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file, streamed."}},
)
def download(
    dataset_id: int,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    version: VersionParam = None,
    normalized: bool = False,
) -> FileResponse:
    """The original file, or with `normalized=true` the normalized JSONL, streamed."""
    path, filename = datasets.download(
        session,
        settings=settings,
        actor=user,
        dataset_id=dataset_id,
        version_id=version,
        normalized=normalized,
    )
    media = "application/x-ndjson" if normalized else "application/octet-stream"
    return FileResponse(path, filename=filename, media_type=media)
