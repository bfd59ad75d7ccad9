"""Ingest: file → validated, normalized JSONL + row-offset index + statistics, in a staging folder.

One streaming pass after sniffing: rows are read, the first `SAMPLE_ROWS` decide the format, each row
is converted by the engine's row converter (a RowError becomes a `{row, field, message}` entry),
valid examples are written as JSON lines while their byte offsets go to `index.bin` and their
content feeds the statistics. The caller renames the staging folder into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraforge.datastore import choice, paths
from loraforge.datastore.detect import SAMPLE_ROWS, describe, detect
from loraforge.datastore.reading import RowIssue, iter_rows
from loraforge.datastore.sniffing import FileInfo, IngestError, safe_suffix, sniff, transcode
from loraforge.datastore.stats import StatsAccumulator
from loraforge.engine.data.formats import RowError, convert_row

MAX_ERRORS = 100
_INDEX_FLUSH = 65536


@dataclass
class WriteResult:
    rows: int = 0
    sha256: str = ""
    normalized_bytes: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class IngestResult:
    format: str
    mapping: dict[str, Any]
    detection: dict[str, Any]
    total_rows: int
    valid_rows: int
    invalid_rows: int
    errors: list[dict[str, Any]]
    sha256: str
    normalized_bytes: int
    source_bytes: int
    source_sha256: str
    stats: dict[str, Any]


def new_staging_dir(data_dir: Path) -> Path:
    folder = paths.staging_root(data_dir) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder


def _content_hash(line: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(line, digest_size=8).digest(), "little")


def write_examples(
    examples: Iterable[dict[str, Any]], folder: Path, *, kind: str, keep_row: bool = True
) -> WriteResult:
    """Write `normalized.jsonl`, `index.bin` and `stats.json` into `folder` from examples.

    Each example must carry its `row` (source row number); the content hash used for duplicate
    counting leaves `row` out so identical rows at different places count as duplicates.
    """
    sha = hashlib.sha256()
    stats = StatsAccumulator()
    offsets = array("Q")
    position = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with (folder / paths.NORMALIZED).open("wb") as out, (folder / paths.INDEX).open("wb") as index:
        for example in examples:
            row = example.get("row", 0)
            body = {k: v for k, v in example.items() if k != "row"}
            payload = dumps(body).encode("utf-8")
            line = (b'{"row":' + str(row).encode() + b"," + payload[1:] if keep_row else payload) + b"\n"
            offsets.append(position)
            out.write(line)
            sha.update(line)
            position += len(line)
            stats.add(example, _content_hash(payload))
            if len(offsets) >= _INDEX_FLUSH:
                offsets.tofile(index)
                del offsets[:]
        offsets.append(position)
        offsets.tofile(index)
    result = WriteResult(rows=stats.rows, sha256=sha.hexdigest(), normalized_bytes=position)
    result.stats = stats.as_dict(kind=kind)
    (folder / paths.STATS).write_text(json.dumps(result.stats), encoding="utf-8")
    return result


def ingest_file(
    source: Path,
    *,
    folder: Path,
    filename: str | None,
    source_sha256: str,
    override: str | None = None,
    mapping: dict[str, Any] | None = None,
    txt_mode: str = "lines",
    max_row_bytes: int = 8 * 1024 * 1024,
    max_errors: int = MAX_ERRORS,
) -> IngestResult:
    """Validate and normalize `source` into `folder` (moving `source` in as the original).

    Raises IngestError for a file that cannot be imported, including one without any valid row.
    """
    info = sniff(source, filename)
    readable = source
    if info.converted_from is not None and info.kind != "parquet":
        readable = folder / "utf8.tmp"
        transcode(source, info.encoding, readable)
        info = FileInfo(
            kind=info.kind, encoding="utf-8", converted_from=info.converted_from, notes=info.notes
        )
    rows = iter_rows(readable, info, max_row_bytes=max_row_bytes, txt_mode=txt_mode)

    errors: list[dict[str, Any]] = []
    counts = {"total": 0, "invalid": 0}

    def note(row: int, fld: str, message: str) -> None:
        counts["invalid"] += 1
        if len(errors) < max_errors:
            errors.append({"row": row, "field": fld, "message": message})

    # The first rows decide the format; they are replayed before the rest of the stream.
    sample: list[tuple[int, Any]] = []
    for item in rows:
        sample.append(item)
        if len(sample) >= SAMPLE_ROWS:
            break
    dict_rows = [(n, r) for n, r in sample if isinstance(r, dict)]
    if not dict_rows:
        first = next((r for _n, r in sample if isinstance(r, RowIssue)), None)
        if first is not None:
            raise IngestError(
                "no_valid_rows",
                f"no valid rows: row {sample[0][0]:,}: {first.field}: {first.message}",
                details=[{"field": f"row {n}", "message": f"{r.field}: {r.message}"} for n, r in sample[:10]],
            )
        raise IngestError("no_valid_rows", "the file holds no rows")
    fmt, attr, evidence = detect(dict_rows, override=override, mapping=mapping)
    evidence["encoding"] = info.converted_from or "UTF-8"
    evidence["file_type"] = info.kind
    evidence["notes"] = info.notes

    def examples() -> Iterator[dict[str, Any]]:
        for stream in (iter(sample), rows):
            for number, row in stream:
                counts["total"] += 1
                if isinstance(row, RowIssue):
                    note(number, row.field, row.message)
                    continue
                try:
                    if fmt == choice.FORMAT:
                        example = choice.convert(row, attr.columns)
                    else:
                        example = convert_row(row, attr)
                except RowError as exc:
                    note(number, exc.field, exc.message)
                    continue
                if fmt == "preference" and len(example["response"]) != 2:
                    note(number, "chosen", "a preference row needs a chosen and a rejected answer")
                    continue
                if fmt == "kto" and example["label"] is None:
                    note(number, attr.column("kto_tag") or "label", "missing KTO label")
                    continue
                example["row"] = number
                yield example

    written = write_examples(examples(), folder, kind=fmt)
    if readable != source:
        readable.unlink()
    if written.rows == 0:
        first_error = errors[0] if errors else None
        raise IngestError(
            "no_valid_rows",
            f"no valid rows among {counts['total']:,}"
            + (
                f"; row {first_error['row']:,}: {first_error['field']}: {first_error['message']}"
                if first_error
                else ""
            ),
            details=[{"field": f"row {e['row']}.{e['field']}", "message": e["message"]} for e in errors[:10]],
        )
    source_bytes = source.stat().st_size
    os.replace(source, folder / (paths.ORIGINAL + (safe_suffix(filename) or f".{info.kind}")))
    return IngestResult(
        format=fmt,
        mapping=describe(attr),
        detection=evidence,
        total_rows=counts["total"],
        valid_rows=written.rows,
        invalid_rows=counts["invalid"],
        errors=errors,
        sha256=written.sha256,
        normalized_bytes=written.normalized_bytes,
        source_bytes=source_bytes,
        source_sha256=source_sha256,
        stats=written.stats,
    )


def remove_tree(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def link_or_copy(src: Path, dst: Path) -> None:
    """Share an immutable file between versions (hard link), or copy where links are impossible."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
