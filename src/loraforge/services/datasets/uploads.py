"""Resumable dataset uploads: a session with the total size and sha256, chunks by offset, complete.

The file is `<data_dir>/uploads/<upload_id>/data`, created sparse at its full size; each chunk is
written in place at its offset, as its body streams in, so memory stays constant and chunks may
arrive in any order. A chunk resent with the same offset and length is accepted again (idempotent
retry); one that overlaps a different received chunk, or ends beyond the declared size, is refused.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.datastore import paths
from loraforge.datastore.sniffing import clean_filename
from loraforge.db.base import utcnow
from loraforge.db.models import Dataset, DatasetUpload, DatasetUploadChunk, DatasetVersion, User
from loraforge.errors import Conflict, InsufficientStorage, InvalidInput, NotFound, PayloadTooLarge
from loraforge.services.datasets.catalog import get_dataset
from loraforge.services.datasets.staging import disk_full, file_sha256
from loraforge.services.datasets.versions import IngestOptions, create_from_file
from loraforge.services.platform import ownership
from loraforge.services.platform.owner_names import clip_name
from loraforge.settings import Settings

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_SPACE_FACTOR = 2.2  # the original, its normalized copy and the index must fit


@dataclass(frozen=True)
class Range:
    start: int
    end: int


@dataclass(frozen=True)
class UploadState:
    upload: DatasetUpload
    received_bytes: int
    missing: list[Range]


def _folder(settings: Settings, upload_id: str) -> Path:
    return paths.uploads_root(settings.data_dir) / upload_id


def data_file(settings: Settings, upload_id: str) -> Path:
    return _folder(settings, upload_id) / "data"


def purge_expired(session: Session, *, settings: Settings) -> int:
    """Remove sessions past their expiry (rows and files). Called when sessions are created."""
    now = utcnow()
    expired = list(session.scalars(select(DatasetUpload).where(DatasetUpload.expires_at < now)))
    for upload in expired:
        shutil.rmtree(_folder(settings, upload.id), ignore_errors=True)
        session.delete(upload)
    if expired:
        session.commit()
    return len(expired)


def create_upload(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    filename: str,
    size: int,
    sha256: str,
    name: str | None,
    description: str,
    format: str | None,
    options: dict[str, Any],
    dataset_id: int | None,
    message: str,
) -> DatasetUpload:
    purge_expired(session, settings=settings)
    if size > settings.dataset_max_upload_bytes:
        raise PayloadTooLarge(
            f"the file ({size:,} bytes) is larger than the limit of "
            f"{settings.dataset_max_upload_bytes:,} bytes"
        )
    if size <= 0:
        raise InvalidInput("the file is empty (0 bytes)", code="empty_file")
    sha256 = sha256.lower()
    if not SHA256_HEX.fullmatch(sha256):
        raise InvalidInput("sha256 must be 64 hexadecimal characters", code="validation_error")
    if dataset_id is not None:
        get_dataset(session, actor=actor, dataset_id=dataset_id, write=True)
    root = paths.uploads_root(settings.data_dir)
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if free < size * _SPACE_FACTOR:
        raise InsufficientStorage(
            f"not enough disk space for this upload: {free:,} bytes free, "
            f"about {int(size * _SPACE_FACTOR):,} needed"
        )
    upload = DatasetUpload(
        id=uuid.uuid4().hex,
        owner_id=actor.id,
        dataset_id=dataset_id,
        filename=clean_filename(filename),
        name=clip_name(name or clean_filename(filename)),
        description=description,
        message=message,
        format=format,
        options=options,
        total_size=size,
        chunk_size=min(settings.dataset_chunk_size, settings.dataset_chunk_max_bytes),
        sha256=sha256,
        status="open",
        expires_at=utcnow() + timedelta(seconds=settings.dataset_upload_ttl_seconds),
    )
    folder = _folder(settings, upload.id)
    folder.mkdir(parents=True)
    with (folder / "data").open("wb") as f:
        f.truncate(size)  # sparse: blocks are allocated as chunks arrive
    session.add(upload)
    session.commit()
    return upload


def get_upload(session: Session, *, actor: User, upload_id: str) -> DatasetUpload:
    upload = session.get(DatasetUpload, upload_id) if len(upload_id) <= 32 else None
    if upload is None or upload.expires_at < utcnow():
        raise NotFound(
            "upload session not found (it may have expired or been aborted)", code="upload_not_found"
        )
    ownership.ensure_access(actor, upload.owner_id, resource="upload session", code="upload_not_found")
    return upload


def _chunks(session: Session, upload_id: str) -> list[DatasetUploadChunk]:
    return list(
        session.scalars(
            select(DatasetUploadChunk)
            .where(DatasetUploadChunk.upload_id == upload_id)
            .order_by(DatasetUploadChunk.start)
        )
    )


def missing_ranges(chunks: list[DatasetUploadChunk], total: int) -> list[Range]:
    missing: list[Range] = []
    position = 0
    for chunk in chunks:
        if chunk.start > position:
            missing.append(Range(position, chunk.start))
        position = max(position, chunk.end)
    if position < total:
        missing.append(Range(position, total))
    return missing


def upload_state(session: Session, *, actor: User, upload_id: str) -> UploadState:
    upload = get_upload(session, actor=actor, upload_id=upload_id)
    chunks = _chunks(session, upload.id)
    return UploadState(
        upload, sum(c.end - c.start for c in chunks), missing_ranges(chunks, upload.total_size)
    )


def begin_chunk(
    session: Session, *, settings: Settings, actor: User, upload_id: str, offset: int, length: int
) -> tuple[Path, bool]:
    """Check a chunk before its bytes are written: (file to write into, whether it is a retry)."""
    upload = get_upload(session, actor=actor, upload_id=upload_id)
    if upload.status != "open":
        raise Conflict("the upload is already complete", code="upload_completed")
    if length <= 0:
        raise InvalidInput("a chunk must not be empty", code="empty_chunk")
    end = offset + length
    if end > upload.total_size:
        raise InvalidInput(
            f"the chunk [{offset:,}, {end:,}) goes beyond the declared size of {upload.total_size:,} bytes",
            code="chunk_out_of_range",
        )
    for chunk in _chunks(session, upload.id):
        if chunk.start == offset and chunk.end == end:
            return data_file(settings, upload.id), True
        if chunk.start < end and offset < chunk.end:
            raise Conflict(
                f"the chunk [{offset:,}, {end:,}) overlaps the received chunk "
                f"[{chunk.start:,}, {chunk.end:,})",
                code="chunk_overlap",
            )
    return data_file(settings, upload.id), False


async def receive_chunk(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    upload_id: str,
    offset: int,
    length: int,
    body: AsyncIterable[bytes],
) -> UploadState:
    """Check a chunk, write its `body` at `offset` as it streams in, record it: the session's new state.

    `length` is the declared Content-Length; a body of any other length is refused. The database work
    runs in a worker thread, the writes in the event loop between the body's pieces."""
    target, _retry = await anyio.to_thread.run_sync(
        functools.partial(
            begin_chunk,
            session,
            settings=settings,
            actor=actor,
            upload_id=upload_id,
            offset=offset,
            length=length,
        )
    )
    await _write_body(target, body, offset=offset, length=length)
    return await anyio.to_thread.run_sync(
        functools.partial(
            record_chunk, session, actor=actor, upload_id=upload_id, offset=offset, length=length
        )
    )


async def _write_body(target: Path, body: AsyncIterable[bytes], *, offset: int, length: int) -> None:
    received = 0
    fd = os.open(target, os.O_WRONLY)
    try:
        async for piece in body:
            if received + len(piece) > length:
                raise InvalidInput("the body is longer than its Content-Length", code="chunk_length_mismatch")
            _write_chunk_part(fd, piece, offset + received)
            received += len(piece)
    except OSError as exc:
        if disk_full(exc):
            raise InsufficientStorage("the server ran out of disk space; this chunk was not stored") from None
        raise
    finally:
        os.close(fd)
    if received != length:
        raise InvalidInput(
            f"received {received:,} bytes but Content-Length said {length:,}", code="chunk_length_mismatch"
        )


def _write_chunk_part(fd: int, data: bytes, position: int) -> None:
    """pwrite all of `data` at `position` (a short write continues where it stopped)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        view = view[written:]
        position += written


def record_chunk(session: Session, *, actor: User, upload_id: str, offset: int, length: int) -> UploadState:
    upload = get_upload(session, actor=actor, upload_id=upload_id)
    exists = session.scalar(
        select(DatasetUploadChunk).where(
            DatasetUploadChunk.upload_id == upload.id, DatasetUploadChunk.start == offset
        )
    )
    if exists is None:
        session.add(DatasetUploadChunk(upload_id=upload.id, start=offset, end=offset + length))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()  # the same chunk, recorded by a concurrent retry
    return upload_state(session, actor=actor, upload_id=upload_id)


def abort_upload(session: Session, *, settings: Settings, actor: User, upload_id: str) -> None:
    upload = get_upload(session, actor=actor, upload_id=upload_id)
    if upload.status == "completing":
        raise Conflict("the upload is being completed", code="upload_completing")
    session.delete(upload)
    session.commit()
    shutil.rmtree(_folder(settings, upload_id), ignore_errors=True)


def complete_upload(
    session: Session, *, settings: Settings, actor: User, upload_id: str, ip: str | None
) -> tuple[Dataset, DatasetVersion]:
    """Check completeness and the sha256, then ingest. A second complete gets 409."""
    upload = get_upload(session, actor=actor, upload_id=upload_id)
    if upload.status != "open":
        raise Conflict("the upload was already completed", code="upload_already_completed")
    state = upload_state(session, actor=actor, upload_id=upload_id)
    if state.missing:
        first = state.missing[0]
        raise Conflict(
            f"the upload is incomplete: {upload.total_size - state.received_bytes:,} bytes missing, "
            f"first at [{first.start:,}, {first.end:,}); ask for the missing ranges and send them",
            code="upload_incomplete",
        )
    # Claim the session atomically so two concurrent completes cannot both ingest.
    claimed = session.execute(
        update(DatasetUpload)
        .where(DatasetUpload.id == upload.id, DatasetUpload.status == "open")
        .values(status="completing")
    )
    session.commit()
    if getattr(claimed, "rowcount", 1) != 1:
        raise Conflict("the upload was already completed", code="upload_already_completed")
    source = data_file(settings, upload.id)
    try:
        digest = file_sha256(source)
        if digest != upload.sha256:
            session.execute(delete(DatasetUploadChunk).where(DatasetUploadChunk.upload_id == upload.id))
            upload.status = "open"
            session.commit()
            raise InvalidInput(
                f"sha256 mismatch: the received bytes hash to {digest}, not {upload.sha256}; every chunk "
                "was discarded, send the file again",
                code="hash_mismatch",
            )
        options = IngestOptions(
            format=upload.format,
            mapping=upload.options.get("mapping") or None,
            txt_mode=upload.options.get("txt_mode") or "lines",
        )
        dataset, version = create_from_file(
            session, settings=settings, actor=actor, source=source, filename=upload.filename,
            source_sha256=digest, name=upload.name, description=upload.description, options=options,
            message=upload.message, dataset_id=upload.dataset_id, recipe={"upload_id": upload.id}, ip=ip,
        )  # fmt: skip
    except BaseException:
        session.rollback()
        fresh = session.get(DatasetUpload, upload_id)
        if fresh is not None and fresh.status == "completing":
            # The file could not be imported: the session is spent (its data was consumed or refused).
            session.delete(fresh)
            session.commit()
            shutil.rmtree(_folder(settings, upload_id), ignore_errors=True)
        raise
    fresh = session.get(DatasetUpload, upload_id)
    if fresh is not None:
        fresh.status = "completed"
        fresh.result_dataset_id = dataset.id
        fresh.result_version_id = version.id
        session.commit()
    shutil.rmtree(_folder(settings, upload_id), ignore_errors=True)
    return dataset, version
