"""Looking inside a dataset version: preview pages and search, statistics (token lengths with a local
model's tokenizer, cached), comparing two versions, and the file to download. Read-only: open to the
owner and to staff, like every read (see `catalog.get_dataset`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from loraforge.datastore import paths, preview
from loraforge.datastore.sniffing import clean_filename
from loraforge.datastore.stats import read_examples, tokenizer_stats
from loraforge.db.models import DatasetVersion, User
from loraforge.errors import InvalidInput, NotFound
from loraforge.services.datasets.catalog import folder_of, get_dataset, version_of
from loraforge.settings import Settings

SEARCH_SCAN_LIMIT = 1_000_000
_TOKENIZER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


@dataclass(frozen=True)
class PreviewPage:
    items: list[dict[str, Any]]
    total: int
    version: DatasetVersion
    scanned: int | None
    complete: bool


def preview_rows(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    dataset_id: int,
    version_id: int | None,
    page: int,
    page_size: int,
    q: str | None,
) -> PreviewPage:
    dataset = get_dataset(session, actor=actor, dataset_id=dataset_id)
    version = version_of(session, dataset, version_id)
    folder = folder_of(settings, version)
    start = (page - 1) * page_size
    if q:
        found = preview.search(folder, q=q, skip=start, limit=page_size, scan_limit=SEARCH_SCAN_LIMIT)
        return PreviewPage(found.items, found.matched, version, found.scanned, found.complete)
    return PreviewPage(
        preview.page(folder, start=start, count=page_size), preview.row_count(folder), version, None, True
    )


def tokenizer_file(settings: Settings, name: str) -> Path:
    """`<data_dir>/models/<name>/tokenizer.json` of a locally registered model (never outside)."""
    models = (settings.data_dir / "models").resolve()
    if not _TOKENIZER_NAME.fullmatch(name) or ".." in name:
        raise InvalidInput(
            "tokenizer must be the name of a model folder under the data dir's models/",
            code="invalid_tokenizer",
        )
    candidate = (models / name / "tokenizer.json").resolve()
    if not candidate.is_relative_to(models) or not candidate.is_file():
        raise NotFound(f"no tokenizer.json for a local model named {name!r}", code="tokenizer_not_found")
    return candidate


def dataset_stats(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    dataset_id: int,
    version_id: int | None,
    tokenizer: str | None,
) -> tuple[DatasetVersion, dict[str, Any]]:
    """Statistics computed at ingest; with `tokenizer`, exact token lengths (computed once, cached)."""
    dataset = get_dataset(session, actor=actor, dataset_id=dataset_id)
    version = version_of(session, dataset, version_id)
    folder = folder_of(settings, version)
    stats: dict[str, Any] = json.loads((folder / paths.STATS).read_text("utf-8"))
    if tokenizer:
        source = tokenizer_file(settings, tokenizer)
        cache = folder / f"stats-tokens-{hashlib.sha256(tokenizer.encode()).hexdigest()[:16]}.json"
        if cache.is_file():
            stats["tokens"] = json.loads(cache.read_text("utf-8"))
        else:
            stats["tokens"] = tokenizer_stats(read_examples(folder / paths.NORMALIZED), source, tokenizer)
            temporary = cache.with_suffix(".tmp")
            temporary.write_text(json.dumps(stats["tokens"]), encoding="utf-8")
            os.replace(temporary, cache)
    return version, stats


@dataclass(frozen=True)
class Comparison:
    a: DatasetVersion
    b: DatasetVersion
    result: preview.Comparison


def compare_versions(
    session: Session, *, settings: Settings, actor: User, dataset_id: int, a: int, b: int, samples: int
) -> Comparison:
    dataset = get_dataset(session, actor=actor, dataset_id=dataset_id)
    version_a = version_of(session, dataset, a)
    version_b = version_of(session, dataset, b)
    result = preview.compare(folder_of(settings, version_a), folder_of(settings, version_b), samples=samples)
    return Comparison(version_a, version_b, result)


def download(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    dataset_id: int,
    version_id: int | None,
    normalized: bool,
) -> tuple[Path, str]:
    """(file to stream, download name)."""
    dataset = get_dataset(session, actor=actor, dataset_id=dataset_id)
    version = version_of(session, dataset, version_id)
    folder = folder_of(settings, version)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset.name).strip("._") or "dataset"
    if normalized:
        return folder / paths.NORMALIZED, f"{stem}-v{version.number}.normalized.jsonl"
    original = paths.original_path(folder)
    if original is None:
        raise NotFound(
            "this version was made by preprocessing and has no original file; "
            "download it with normalized=true",
            code="no_original",
        )
    return original, clean_filename(version.original_filename or f"{stem}-v{version.number}{original.suffix}")
