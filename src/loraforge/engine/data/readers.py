"""Read data files into lists of row dicts: JSON (array, object, lines), JSONL, CSV/TSV, Parquet, TXT."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

SUPPORTED_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".parquet", ".txt")


class DataFileError(ValueError):
    """A data file is missing, of an unknown type, or unreadable."""


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """All rows of one file (or of every supported file inside a folder, in name order)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in SUPPORTED_SUFFIXES)
        if not files:
            raise DataFileError(f"{p} holds no {'/'.join(SUPPORTED_SUFFIXES)} files")
        return [row for f in files for row in read_rows(f)]
    if not p.exists():
        raise DataFileError(f"data file not found: {p}")
    suffix = p.suffix.lower()
    try:
        if suffix == ".json":
            return _read_json(p)
        if suffix == ".jsonl":
            return _read_jsonl(p)
        if suffix in (".csv", ".tsv"):
            with p.open(encoding="utf-8", newline="") as f:
                return [dict(r) for r in csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")]
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_table(p).to_pylist())
        if suffix == ".txt":
            # one example per non-empty line, like LLaMA-Factory's text loader
            with p.open(encoding="utf-8") as f:
                return [{"text": line.rstrip("\n")} for line in f if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise DataFileError(f"cannot read {p}: {exc}") from exc
    raise DataFileError(
        f"unsupported data file type {suffix!r} ({p}); use one of {', '.join(SUPPORTED_SUFFIXES)}"
    )


def _read_json(p: Path) -> list[dict[str, Any]]:
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # many ".json" files are really JSON lines
        return _parse_lines(text, p)
    if isinstance(data, list):
        return [_as_row(r) for r in data]
    if isinstance(data, dict):
        # {"data": [...]} / {"train": [...]}: the single list value holds the rows; else one row
        lists = [v for v in data.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
        if len(lists) == 1:
            return [_as_row(r) for r in lists[0]]
        return [data]
    raise DataFileError(f"{p}: expected a JSON array or object, got {type(data).__name__}")


def _read_jsonl(p: Path) -> list[dict[str, Any]]:
    return _parse_lines(p.read_text(encoding="utf-8"), p)


def _parse_lines(text: str, p: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(_as_row(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{p}, line {n}: invalid JSON ({exc.msg})") from exc
    return rows


def _as_row(r: Any) -> dict[str, Any]:
    return r if isinstance(r, dict) else {"text": r} if isinstance(r, str) else {"value": r}
