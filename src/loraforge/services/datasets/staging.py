"""Incoming files before they become a version: copying a stream into `<data_dir>/uploads/<random>/data`
under a size cap with its sha256, removing such a staged file, and turning the file and disk errors
of ingest into service errors (413, 422, 507).

A staged file is consumed by `versions.create_from_file`, which removes its folder whatever happens.
"""

from __future__ import annotations

import errno
import hashlib
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from loraforge.datastore import paths
from loraforge.datastore.sniffing import IngestError
from loraforge.errors import FieldIssue, InsufficientStorage, InvalidInput, PayloadTooLarge, ServiceError
from loraforge.settings import Settings

COPY_BLOCK = 1024 * 1024


def from_ingest_error(exc: IngestError) -> ServiceError:
    fields = [FieldIssue(field="file", message=f"{d.get('field')}: {d.get('message')}") for d in exc.details]
    if exc.status == 413:
        return PayloadTooLarge(exc.message, code=exc.code)
    if exc.status == 507:
        return InsufficientStorage(exc.message, code=exc.code)
    return InvalidInput(exc.message, code=exc.code, fields=fields)


def disk_full(exc: OSError) -> bool:
    """Whether the error means the disk (or the user's quota) is full."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_error(exc: OSError) -> ServiceError | None:
    if disk_full(exc):
        return InsufficientStorage(
            "the server ran out of disk space while storing the dataset; nothing was kept. "
            "Free some space or ask an administrator.",
        )
    return None


def new_upload_folder(settings: Settings) -> Path:
    """A new, empty `<data_dir>/uploads/<random>/`: a staged file is its `data`."""
    folder = paths.uploads_root(settings.data_dir) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder


def copy_capped(source: BinaryIO, target: Path, *, limit: int, code: str | None = None) -> tuple[str, int]:
    """Copy a stream into the new file `target` in 1 MiB blocks: (sha256, size). Raises PayloadTooLarge
    (with `code`, if given) as soon as more than `limit` bytes arrive; the caller removes `target`."""
    sha = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        while block := source.read(COPY_BLOCK):
            size += len(block)
            if size > limit:
                raise PayloadTooLarge(f"the file is larger than the limit of {limit:,} bytes", code=code)
            sha.update(block)
            out.write(block)
    return sha.hexdigest(), size


def stage_upload(
    settings: Settings, source: BinaryIO, *, max_bytes: int | None = None
) -> tuple[Path, str, int]:
    """Copy a stream into `<data_dir>/uploads/<random>/data` in 1 MiB blocks: (path, sha256, size)."""
    limit = settings.dataset_max_upload_bytes if max_bytes is None else max_bytes
    folder = new_upload_folder(settings)
    target = folder / "data"
    try:
        sha, size = copy_capped(source, target, limit=limit)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise disk_error(exc) or exc from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return target, sha, size


def is_staged(settings: Settings, path: Path) -> bool:
    """Whether `path` is a staged upload (`.../uploads/<id>/data`) rather than a file to keep."""
    return path.parent.parent == paths.uploads_root(settings.data_dir)


def discard_staged(path: Path) -> None:
    """Remove a staged upload folder (`.../uploads/<id>/data` → its folder)."""
    shutil.rmtree(path.parent, ignore_errors=True)


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(4 * COPY_BLOCK):
            sha.update(block)
    return sha.hexdigest()
