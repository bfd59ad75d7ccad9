"""Files of the OpenAI-compatible API (`/v1/files`): upload, list, read, content, delete.

Bytes live at `<files_dir>/<file id>` (the id, never the user's file name, makes the path), copied in
1 MiB blocks with the size cap `files_max_upload_bytes` and a sha256. A `fine-tune` file is also a
LoRAForge dataset of the uploader (name = the file name), so it shows up in the Datasets UI and jobs
pin its exact version. Fine-tune files are checked strictly (`fine_tune_files`): a refused upload
keeps nothing (no file row, no dataset, no bytes). `/content` always returns the bytes as uploaded.

Files are private: only the owner sees them (strangers, staff included, get 404), as with OpenAI keys.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.datastore.sniffing import clean_filename
from loraforge.db.models import Dataset, DatasetVersion, Job, StoredFile, User
from loraforge.errors import FieldIssue, InvalidInput, NotFound, ServiceError
from loraforge.services.datasets.catalog import delete_dataset
from loraforge.services.datasets.staging import COPY_BLOCK, copy_capped
from loraforge.services.openai.fine_tune_files import check_fine_tune_file, drop_dataset, make_dataset
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

FINE_TUNE = "fine-tune"
# What OpenAI accepts for uploads; only fine-tune files are interpreted, the others are stored as is.
PURPOSES = ("fine-tune", "assistants", "batch", "user_data", "vision", "evals")
_FILE_ID = re.compile(r"^file-([0-9]{1,18})$")


def public_id(file_id: int) -> str:
    return f"file-{file_id}"


def parse_id(raw: str) -> int | None:
    """The numeric id of "file-<n>", or None for anything else (never an exception: ids are input)."""
    match = _FILE_ID.fullmatch(raw.strip())
    return int(match.group(1)) if match else None


def bytes_path(settings: Settings, file_id: int) -> Path:
    return settings.files_dir / str(int(file_id))


def _staging_dir(settings: Settings) -> Path:
    return settings.files_dir / ".staging"


# ---- access ---------------------------------------------------------------------------------------


def get_file(session: Session, *, actor: User, file_id: str) -> StoredFile:
    numeric = parse_id(file_id)
    found = session.get(StoredFile, numeric) if numeric is not None else None
    if found is None:
        raise NotFound(f"no such file: {file_id}", code="file_not_found")
    ownership.ensure_access(actor, found.owner_id, resource="file")  # strangers and staff: 404
    return found


def training_version(
    session: Session, *, actor: User, file_id: str, field: str
) -> tuple[StoredFile, Dataset, DatasetVersion]:
    """The dataset version a fine-tune file became, for a job. Problems are 400s naming `field`."""

    def invalid(message: str) -> InvalidInput:
        return InvalidInput(
            f"{field}: {message}", code="invalid_file", fields=[FieldIssue(field=field, message=message)]
        )

    try:
        stored = get_file(session, actor=actor, file_id=file_id)
    except NotFound:
        raise invalid(f"no file {file_id!r} of yours (upload one with purpose 'fine-tune')") from None
    if stored.purpose != FINE_TUNE:
        raise invalid(f"{file_id} was uploaded with purpose {stored.purpose!r}, not 'fine-tune'")
    dataset = session.get(Dataset, stored.dataset_id) if stored.dataset_id else None
    version = session.get(DatasetVersion, stored.dataset_version_id) if stored.dataset_version_id else None
    if dataset is None or version is None or version.dataset_id != dataset.id:
        raise invalid(f"the dataset made from {file_id} was deleted; upload the file again")
    return stored, dataset, version


# ---- upload ---------------------------------------------------------------------------------------


def _stage(settings: Settings, source: BinaryIO) -> tuple[Path, str, int]:
    """Copy the upload in 1 MiB blocks into `<files_dir>/.staging/<random>` (size cap, sha256)."""
    staging = _staging_dir(settings)
    staging.mkdir(parents=True, exist_ok=True)
    target = staging / uuid.uuid4().hex
    try:
        sha, size = copy_capped(source, target, limit=settings.files_max_upload_bytes, code="file_too_large")
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if size == 0:
        target.unlink(missing_ok=True)
        raise InvalidInput(
            "the file is empty (0 bytes)", code="empty_file", fields=[FieldIssue("file", "empty")]
        )
    return target, sha, size


def upload_file(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    source: BinaryIO,
    filename: str | None,
    purpose: str,
    ip: str | None,
) -> StoredFile:
    if purpose not in PURPOSES:
        raise InvalidInput(
            f"purpose must be one of {', '.join(PURPOSES)}",
            code="invalid_purpose",
            fields=[FieldIssue(field="purpose", message=f"unknown purpose {purpose!r}")],
        )
    name = clean_filename(filename)
    staged, sha256, size = _stage(settings, source)
    dataset: Dataset | None = None
    made_dataset: int | None = None  # kept apart: a rollback expires `dataset`
    final: Path | None = None
    try:
        version: DatasetVersion | None = None
        if purpose == FINE_TUNE:
            checked = check_fine_tune_file(settings, staged, name, work_dir=_staging_dir(settings))
            dataset, version = make_dataset(
                session, settings=settings, actor=actor, staged=staged, checked=checked, filename=name,
                sha256=sha256, ip=ip,
            )  # fmt: skip
            made_dataset = dataset.id
        stored = StoredFile(
            owner_id=actor.id,
            purpose=purpose,
            filename=name,
            bytes=size,
            sha256=sha256,
            dataset_id=dataset.id if dataset else None,
            dataset_version_id=version.id if version else None,
            status="processed",
        )
        session.add(stored)
        session.flush()
        if dataset is not None:
            dataset.description = f"Uploaded through the OpenAI files API as {public_id(stored.id)}."
        audit.record(
            session, action=AuditAction.file_uploaded, actor=actor, target_type="file", target_id=stored.id,
            ip=ip, details={"purpose": purpose, "filename": name, "bytes": size, "sha256": sha256,
                            "dataset_id": stored.dataset_id},
        )  # fmt: skip
        final = bytes_path(settings, stored.id)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        session.commit()
    except BaseException:
        session.rollback()
        staged.unlink(missing_ok=True)
        if final is not None:
            final.unlink(missing_ok=True)
        if made_dataset is not None:
            drop_dataset(session, settings=settings, dataset_id=made_dataset)
        raise
    return stored


# ---- list / content / delete ------------------------------------------------------------------------


@dataclass(frozen=True)
class FilePage:
    items: list[StoredFile]
    has_more: bool


def list_files(
    session: Session, *, actor: User, purpose: str | None, after: str | None, limit: int, order: str
) -> FilePage:
    """The caller's files, newest first (`order=desc`, OpenAI's default) or oldest first; `after` is
    the last id of the previous page. Ids grow with creation time, so they are the cursor."""
    query = select(StoredFile).where(StoredFile.owner_id == actor.id)
    if purpose:
        query = query.where(StoredFile.purpose == purpose)
    descending = order != "asc"
    if after:
        cursor = parse_id(after)
        if cursor is None:
            raise InvalidInput(
                "after must be a file id like file-12", code="invalid_cursor",
                fields=[FieldIssue(field="after", message="not a file id")],
            )  # fmt: skip
        query = query.where(StoredFile.id < cursor if descending else StoredFile.id > cursor)
    query = query.order_by(StoredFile.id.desc() if descending else StoredFile.id.asc()).limit(limit + 1)
    rows = list(session.scalars(query))
    return FilePage(items=rows[:limit], has_more=len(rows) > limit)


def content(session: Session, *, settings: Settings, actor: User, file_id: str) -> tuple[Path, StoredFile]:
    """The stored bytes (as uploaded) and the file row; the route streams the path."""
    stored = get_file(session, actor=actor, file_id=file_id)
    path = bytes_path(settings, stored.id)
    if not path.is_file():
        raise NotFound(f"the content of {file_id} is gone", code="file_content_not_found")
    return path, stored


def iter_bytes(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(COPY_BLOCK):
            yield block


def _dataset_kept(session: Session, stored: StoredFile) -> bool:
    """Whether the file's dataset outlives the file: a job (any status: its lineage and clones need the
    pinned version) uses it, or its owner has since added versions of their own in the Datasets UI."""
    if stored.dataset_id is None:
        return True  # nothing to delete (already deleted in the Datasets UI)
    used = session.scalar(select(Job.id).where(Job.dataset_id == stored.dataset_id).limit(1))
    if used is not None:
        return True
    versions = session.scalar(
        select(func.count(DatasetVersion.id)).where(DatasetVersion.dataset_id == stored.dataset_id)
    )
    return (versions or 0) > 1


def delete_file(
    session: Session, *, settings: Settings, actor: User, file_id: str, ip: str | None
) -> tuple[str, bool]:
    """Delete the file row and bytes. A fine-tune file's dataset goes too unless a job uses it or it has
    versions of its own (see `_dataset_kept`). Returns (public id, whether the dataset was kept)."""
    stored = get_file(session, actor=actor, file_id=file_id)
    public = public_id(stored.id)
    dataset_id = stored.dataset_id
    keep = _dataset_kept(session, stored)
    audit.record(
        session, action=AuditAction.file_deleted, actor=actor, target_type="file", target_id=stored.id, ip=ip,
        details={"filename": stored.filename, "purpose": stored.purpose, "dataset_id": dataset_id,
                 "dataset_kept": keep},
    )  # fmt: skip
    session.delete(stored)
    session.commit()
    bytes_path(settings, stored.id).unlink(missing_ok=True)
    if not keep and dataset_id is not None:
        try:
            delete_dataset(session, settings=settings, actor=actor, dataset_id=dataset_id, ip=ip)
        except ServiceError:
            session.rollback()  # e.g. a job pinned it in the meantime: then it stays, as designed
            keep = True
    return public, keep
