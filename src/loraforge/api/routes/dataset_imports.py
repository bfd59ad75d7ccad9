"""Dataset imports: the entries of an uploaded dataset_info.json, a server path, a Hugging Face Hub
dataset, the demo sample. Thin: parse, call `services.datasets.imports`. Included by
`routes.datasets` under /datasets, before the `/{dataset_id}` routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from sqlalchemy.orm import Session

from loraforge.api.deps import ClientIP, CurrentUser, SessionDep, SettingsDep
from loraforge.api.routes.dataset_views import created_view, current_view
from loraforge.api.schemas.datasets import DatasetCreated, HubImport, ImportResult, PathImport
from loraforge.datastore.sniffing import clean_filename
from loraforge.services.datasets import imports
from loraforge.services.datasets.versions import IngestOptions

router = APIRouter()


def _import_view(session: Session, report: imports.ImportReport) -> ImportResult:
    return ImportResult.model_validate(
        {
            "items": [current_view(session, d) for d in report.created],
            "skipped": report.skipped,
            "failed": report.failed,
        }
    )


def _ingest_options(body: PathImport | HubImport) -> IngestOptions:
    mapping = body.mapping.model_dump(exclude_none=True) if body.mapping else None
    return IngestOptions(format=body.format, mapping=mapping, txt_mode="lines")


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
    info = imports.parse_dataset_info(dataset_info.file.read(4 * 1024 * 1024))
    by_name = {clean_filename(f.filename): f for f in files}

    def open_file(file_name: str) -> _Unclosable | None:
        upload = by_name.get(clean_filename(file_name))
        if upload is None:
            return None
        upload.file.seek(0)
        return _Unclosable(upload.file)

    wanted = [n.strip() for n in names.split(",") if n.strip()] if names else None
    report = imports.import_entries(
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
    """Operators and admins: import a file, or a folder with a dataset_info.json, from inside the
    admin-allowed roots (`LORAFORGE_DATASET_IMPORT_ROOTS`); 403 `forbidden` for other roles."""
    report = imports.import_server_path(
        session,
        settings=settings,
        actor=user,
        path=body.path,
        name=body.name,
        description=body.description,
        options=_ingest_options(body),
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
    dataset, version = imports.import_hub(
        session,
        settings=settings,
        actor=user,
        repo_id=body.repo_id,
        revision=body.revision,
        split=body.split,
        name=body.name,
        description=body.description,
        options=_ingest_options(body),
        ip=ip,
    )
    return created_view(dataset, version)


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
    dataset, version = imports.import_sample(session, settings=settings, actor=user, ip=ip)
    return created_view(dataset, version)
