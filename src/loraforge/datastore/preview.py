"""Read a version's normalized rows: pages by the offset index (one seek), search, compare."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraforge.datastore import paths


def row_count(folder: Path) -> int:
    return max(0, (folder / paths.INDEX).stat().st_size // 8 - 1)


def page(folder: Path, *, start: int, count: int) -> list[dict[str, Any]]:
    """Rows [start, start+count) of the version, each with its 0-based `index`. Seeks, never scans."""
    total = row_count(folder)
    if start >= total or count <= 0:
        return []
    stop = min(total, start + count)
    with (folder / paths.INDEX).open("rb") as index:
        index.seek(start * 8)
        raw = index.read((stop - start + 1) * 8)
    offsets = [int.from_bytes(raw[i : i + 8], "little") for i in range(0, len(raw), 8)]
    fd = os.open(folder / paths.NORMALIZED, os.O_RDONLY)
    try:
        data = os.pread(fd, offsets[-1] - offsets[0], offsets[0])
    finally:
        os.close(fd)
    items = []
    base = offsets[0]
    for i in range(len(offsets) - 1):
        item = json.loads(data[offsets[i] - base : offsets[i + 1] - base])
        item["index"] = start + i
        items.append(item)
    return items


@dataclass
class SearchResult:
    items: list[dict[str, Any]]
    matched: int
    scanned: int
    complete: bool


def search(folder: Path, *, q: str, skip: int, limit: int, scan_limit: int) -> SearchResult:
    """Rows whose text contains `q` (case-insensitive): a streaming scan that stops after `scan_limit` rows.

    `matched` counts the matches in the scanned rows; `complete` is False when the scan stopped early.
    """
    needle = q.casefold()
    raw_needle = q.encode("utf-8")
    items: list[dict[str, Any]] = []
    matched = scanned = 0
    complete = True
    with (folder / paths.NORMALIZED).open("rb") as f:
        for index, line in enumerate(f):
            if scanned >= scan_limit:
                complete = False
                break
            scanned += 1
            if raw_needle not in line and needle not in line.decode("utf-8").casefold():
                continue
            item = json.loads(line)
            if needle not in _searchable(item).casefold():
                continue
            matched += 1
            if matched > skip and len(items) < limit:
                item["index"] = index
                items.append(item)
    return SearchResult(items=items, matched=matched, scanned=scanned, complete=complete)


def _searchable(item: dict[str, Any]) -> str:
    parts = [item.get("system") or ""]
    parts += [t.get("content", "") for t in item.get("prompt", []) + item.get("response", [])]
    return "\n".join(parts)


def _iter_keyed(folder: Path) -> Iterator[tuple[int, bytes, bytes]]:
    """(source row, content digest, line) for each row; the digest leaves the row number out."""
    with (folder / paths.NORMALIZED).open("rb") as f:
        for line in f:
            head, _, rest = line.partition(b",")
            row = int(head[len(b'{"row":') :])
            yield row, hashlib.blake2b(rest, digest_size=16).digest(), line


@dataclass
class Comparison:
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    samples: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"added": [], "removed": [], "changed": []}
    )


def compare(folder_a: Path, folder_b: Path, *, samples: int) -> Comparison:
    """Rows are matched by source row number: only in b → added, only in a → removed, both but
    different content → changed. Memory: one digest per row of `a`."""
    digests: dict[int, bytes] = {}
    for row, digest, _line in _iter_keyed(folder_a):
        digests[row] = digest
    result = Comparison()
    seen: set[int] = set()
    for row, digest, line in _iter_keyed(folder_b):
        seen.add(row)
        old = digests.get(row)
        if old is None:
            result.added += 1
            if len(result.samples["added"]) < samples:
                result.samples["added"].append({"row": row, "after": json.loads(line)})
        elif old != digest:
            result.changed += 1
            if len(result.samples["changed"]) < samples:
                result.samples["changed"].append(
                    {"row": row, "before": _find(folder_a, row), "after": json.loads(line)}
                )
        else:
            result.unchanged += 1
    for row in digests:
        if row not in seen:
            result.removed += 1
            if len(result.samples["removed"]) < samples:
                result.samples["removed"].append({"row": row, "before": _find(folder_a, row)})
    return result


def _find(folder: Path, row: int) -> dict[str, Any] | None:
    # Only for a handful of samples: a scan of `a` per sample keeps memory flat.
    for r, _digest, line in _iter_keyed(folder):
        if r == row:
            value: dict[str, Any] = json.loads(line)
            return value
    return None
