"""A job's files in its run directory: checkpoints, artifacts, the engine log.

DB-free and torch-free; `services.jobs.outputs` does the access checks and hands in the run directory.
Every name a request carries (a checkpoint or artifact name) is looked up in the listing built here
from the directory itself, and every path is resolved and checked to stay under the run directory, so
a request can never name a file outside it (invariant: paths from IDs, never from users).
Listing, sizes, `.tar.gz` streams and byte ranges are `services.platform.archives`'.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loraforge.executors.base import LOG_FILE
from loraforge.services.platform.archives import contained, files_under, folder_size

CHECKPOINTS_DIR = "checkpoints"
OUTPUT_DIR = "output"
SUMMARY_FILE = "summary.json"
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
_MAX_SUMMARY_BYTES = 64 * 1024


# ---- checkpoints --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    name: str  # checkpoint-<step>, the folder name the Trainer writes
    step: int
    created_at: datetime  # the folder's mtime, in UTC (the API speaks ISO 8601 everywhere but /v1)
    size_bytes: int
    path: Path


def checkpoints(run_dir: Path) -> list[Checkpoint]:
    """The complete checkpoints in RUN_DIR/checkpoints, by step. A folder without trainer_state.json
    is still being written (the Trainer writes that file last) and is left out."""
    root = run_dir / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found: list[Checkpoint] = []
    for entry in root.iterdir():
        match = _CHECKPOINT_NAME.match(entry.name)
        if not match or entry.is_symlink() or not entry.is_dir():
            continue
        if not (entry / "trainer_state.json").is_file():
            continue
        found.append(
            Checkpoint(
                name=entry.name,
                step=int(match.group(1)),
                created_at=datetime.fromtimestamp(entry.stat().st_mtime, UTC),
                size_bytes=folder_size(entry),
                path=entry,
            )
        )
    return sorted(found, key=lambda c: c.step)


def find_checkpoint(run_dir: Path, name: str | None) -> Checkpoint | None:
    """The checkpoint called `name` (validated against the listing), or the latest for None."""
    listing = checkpoints(run_dir)
    if name is None:
        return listing[-1] if listing else None
    return next((c for c in listing if c.name == name), None)


# ---- artifacts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    name: str  # a top-level folder of the run directory (e.g. "output")
    kind: str  # adapter | full_model | ... (the engine's artifact kind)
    size_bytes: int
    files: list[tuple[str, int]] = field(default_factory=list)  # relative path, size
    summary: dict[str, Any] | None = None
    path: Path = Path()


def _kind_of(folder: Path) -> str:
    if (folder / "adapter_config.json").is_file():
        return "adapter"
    if (folder / "config.json").is_file():
        return "full_model"
    return "files"


def _read_summary(folder: Path) -> dict[str, Any] | None:
    path = folder / SUMMARY_FILE
    try:
        if path.stat().st_size > _MAX_SUMMARY_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def artifacts(run_dir: Path, events: list[dict[str, Any]]) -> list[Artifact]:
    """Output folders of the run: those named by the engine's artifact events (`kind`, `path`; a file
    path means its folder), plus RUN_DIR/output when it exists. Only folders directly under the run
    directory count (that is where the engine writes them); anything else is ignored."""
    root = run_dir.resolve() if run_dir.exists() else run_dir
    kinds: dict[str, str] = {}
    for event in events:
        raw = event.get("path")
        if not isinstance(raw, str) or not raw:
            continue
        path = contained(run_dir, Path(raw))
        if path is None:
            continue
        parts = path.relative_to(root).parts
        if not parts:
            continue
        kind = str(event.get("kind") or "files")
        if kind == "summary":  # a file inside a folder that has (or will get) its own kind
            kinds.setdefault(parts[0], kind)
        else:
            kinds[parts[0]] = kind
    if (run_dir / OUTPUT_DIR).is_dir():
        kinds.setdefault(OUTPUT_DIR, _kind_of(run_dir / OUTPUT_DIR))
    found: list[Artifact] = []
    for name, kind in sorted(kinds.items()):
        folder = run_dir / name
        if name == CHECKPOINTS_DIR or folder.is_symlink() or not folder.is_dir():
            continue
        if kind == "summary":
            kind = _kind_of(folder)
        files = [(str(p.relative_to(folder)), p.stat().st_size) for p in files_under(folder)]
        found.append(
            Artifact(
                name=name,
                kind=kind,
                size_bytes=sum(size for _, size in files),
                files=files,
                summary=_read_summary(folder),
                path=folder,
            )
        )
    return found


# ---- the engine log ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRange:
    """Raw complete lines of engine.log from `offset`; `next_offset` continues after them."""

    lines: list[str]
    offset: int
    next_offset: int
    size: int


def log_path(run_dir: Path) -> Path:
    return run_dir / LOG_FILE


def read_log_range(run_dir: Path, offset: int, limit: int) -> RawRange:
    """Up to `limit` bytes of engine.log from byte `offset`, cut after the last complete line (a line
    being written waits for the next call, unless it alone fills `limit`: then it comes in pieces).
    An offset past the end (the file is shorter than the caller thought) returns nothing and
    `next_offset` = the size, so a follower re-syncs."""
    path = log_path(run_dir)
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            if offset >= size:
                return RawRange(lines=[], offset=min(offset, size), next_offset=size, size=size)
            fh.seek(offset)
            data = fh.read(limit)
    except FileNotFoundError:
        return RawRange(lines=[], offset=0, next_offset=0, size=0)
    complete = data.rfind(b"\n") + 1
    if complete == 0 and len(data) >= limit:
        complete = len(data)
    # Split on newlines only: progress bars redraw with \r inside one line (`_readable` keeps the last).
    raw_lines = data[:complete].split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    lines = [line.decode("utf-8", errors="replace") for line in raw_lines]
    return RawRange(lines=lines, offset=offset, next_offset=offset + complete, size=size)


def tail_range(run_dir: Path, n: int, block: int = 64 * 1024) -> RawRange:
    """The last `n` complete raw lines and the byte offset where the first of them starts."""
    path = log_path(run_dir)
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return RawRange(lines=[], offset=0, next_offset=0, size=0)
    with fh:
        size = fh.seek(0, 2)
        data = b""
        start = size
        while start > 0 and data.count(b"\n") <= n:
            new_start = max(0, start - block)
            fh.seek(new_start)
            data = fh.read(start - new_start) + data
            start = new_start
    end = data.rfind(b"\n") + 1  # a torn last line is left for the follower
    body = data[:end]
    raw_lines = body.split(b"\n")[:-1] if body else []
    if start > 0 and raw_lines:
        raw_lines = raw_lines[1:]  # the first one may be cut in the middle
    keep = raw_lines[-n:] if n > 0 else []
    first = start + end - sum(len(line) + 1 for line in keep)
    text = [line.decode("utf-8", errors="replace") for line in keep]
    return RawRange(lines=text, offset=first, next_offset=start + end, size=size)
