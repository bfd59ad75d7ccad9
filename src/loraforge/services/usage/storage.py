"""What users keep on disk: their datasets (and uploads in progress), job run directories, model
folders and /v1 files, each found from the ids of the rows they own (invariant 5,
docs/architecture.md) and measured by walking the folder.

Sizes are file sizes (what the UI shows for datasets and checkpoints; a sparse upload in progress
counts its declared size), each file counted once per walk however many hard links it has (a
rollback version shares its target's files). Symbolic links are not followed:
`<data_dir>/models/demo-tiny` and registered server folders belong to no user.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.datastore.paths import dataset_dir, uploads_root
from loraforge.db.models import Dataset, DatasetUpload, Job, RegisteredModel, StoredFile
from loraforge.settings import Settings

# total_used_bytes walks everything below data_dir; the operators' summary asks for it every few
# seconds, so one walk is reused this long.
TOTAL_MAX_AGE_SECONDS = 60.0
_total_lock = threading.Lock()
_total_cache: dict[str, tuple[float, int]] = {}


def folder_bytes(paths: Iterable[Path], seen: set[tuple[int, int]] | None = None) -> int:
    """Bytes of the files below each path (a file or a folder; missing ones count 0). `seen` holds the
    (device, inode) pairs already counted, so a hard-linked file counts once."""
    seen = set() if seen is None else seen
    total = 0
    stack = [str(p) for p in paths]
    while stack:
        path = stack.pop()
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            stat = entry.stat(follow_symlinks=False)
                            key = (stat.st_dev, stat.st_ino)
                            if key not in seen:
                                seen.add(key)
                                total += int(stat.st_size)
                    except OSError:  # removed while walking
                        continue
        except NotADirectoryError:
            try:
                stat = os.stat(path, follow_symlinks=False)
            except OSError:
                continue
            key = (stat.st_dev, stat.st_ino)
            if key not in seen:
                seen.add(key)
                total += int(stat.st_size)
        except OSError:  # missing (never written, or removed by retention)
            continue
    return total


def user_paths(settings: Settings, session: Session, user_id: int) -> list[Path]:
    """The folders and files that hold what `user_id` owns."""
    data_dir = settings.data_dir
    datasets = session.scalars(select(Dataset.id).where(Dataset.owner_id == user_id))
    uploads = session.scalars(select(DatasetUpload.id).where(DatasetUpload.owner_id == user_id))
    jobs = session.scalars(select(Job.id).where(Job.owner_id == user_id))
    models = session.scalars(select(RegisteredModel.id).where(RegisteredModel.owner_id == user_id))
    files = session.scalars(select(StoredFile.id).where(StoredFile.owner_id == user_id))
    return [
        *(dataset_dir(i, data_dir) for i in datasets),
        *(uploads_root(data_dir) / str(int(i)) for i in uploads),
        *(settings.runs_dir / str(int(i)) for i in jobs),
        *(settings.models_dir / str(int(i)) for i in models),
        *(settings.files_dir / str(int(i)) for i in files),
    ]


def used_bytes(settings: Settings, session: Session, user_id: int) -> int:
    """Bytes of `user_id`'s datasets, uploads, runs, models and files (walked now)."""
    return folder_bytes(user_paths(settings, session, user_id))


def total_used_bytes(settings: Settings) -> int:
    """Bytes of everything below the data directory (the database file and caches included),
    measured at most once a minute."""
    key = str(settings.data_dir)
    now = time.monotonic()
    with _total_lock:
        cached = _total_cache.get(key)
        if cached is not None and now - cached[0] < TOTAL_MAX_AGE_SECONDS:
            return cached[1]
    total = folder_bytes([settings.data_dir])
    with _total_lock:
        _total_cache[key] = (time.monotonic(), total)
    return total
