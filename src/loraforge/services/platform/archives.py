"""Serving folders and files the server owns: safe listing, sizes, `.tar.gz` streams, byte ranges.

Shared by job files (checkpoints, artifacts, the engine log) and model files (version downloads).
DB-free and torch-free. Listings never follow symlinks and every path is resolved and checked to
stay under its folder, so a link planted in a run or model folder cannot expose another file.

Archives are `.tar.gz` streams generated on the fly: per file a tar header, then the file in 1 MiB
pieces through one gzip compressor, so memory stays flat whatever the folder's size and no temp
file of the whole archive is ever written.
"""

from __future__ import annotations

import os
import tarfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE  # 512


def contained(root: Path, path: Path) -> Path | None:
    """`path` resolved, or None when it leaves `root` (a symlink pointing out, `..`)."""
    try:
        resolved = path.resolve()
        resolved.relative_to(root.resolve())
    except (OSError, ValueError):
        return None
    return resolved


def files_under(folder: Path) -> Iterator[Path]:
    """Regular files under `folder` (symlinks not followed), in a stable order."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def folder_size(folder: Path) -> int:
    total = 0
    for path in files_under(folder):
        try:
            total += path.stat().st_size
        except OSError:
            continue
    return total


def tar_gz_stream(folder: Path, arcname: str, *, level: int = 1) -> Iterator[bytes]:
    """`folder` as a .tar.gz, yielded in pieces as it is made. Level 1: weights barely compress, so
    spending CPU on it only slows the download. A file that shrinks while being read is padded with
    zeros (the header already promised its size); one that grows is cut at the promised size."""
    gzip = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    now = time.time()
    root = contained(folder, folder)
    if root is None:
        return
    top = tarfile.TarInfo(arcname)
    top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, int(now)
    yield gzip.compress(top.tobuf(format=tarfile.PAX_FORMAT))
    seen_dirs: set[str] = {arcname}
    for path in files_under(folder):
        if contained(root, path) is None:
            continue
        relative = path.relative_to(folder)
        for parent in reversed(relative.parents[:-1] if len(relative.parts) > 1 else []):
            dirname = f"{arcname}/{parent.as_posix()}"
            if dirname not in seen_dirs:
                seen_dirs.add(dirname)
                info = tarfile.TarInfo(dirname)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(now)
                yield gzip.compress(info.tobuf(format=tarfile.PAX_FORMAT))
        try:
            fh = path.open("rb")
        except OSError:
            continue
        with fh:
            stat = os.fstat(fh.fileno())
            info = tarfile.TarInfo(f"{arcname}/{relative.as_posix()}")
            info.size, info.mode, info.mtime = stat.st_size, 0o644, int(stat.st_mtime)
            yield gzip.compress(info.tobuf(format=tarfile.PAX_FORMAT))
            left = info.size
            while left > 0:
                chunk = fh.read(min(CHUNK, left)) or b"\0" * min(CHUNK, left)
                left -= len(chunk)
                out = gzip.compress(chunk)
                if out:
                    yield out
            remainder = info.size % _BLOCK
            if remainder:
                yield gzip.compress(b"\0" * (_BLOCK - remainder))
    yield gzip.compress(b"\0" * (2 * _BLOCK)) + gzip.flush()


def file_chunks(path: Path, start: int, end: int) -> Iterator[bytes]:
    """Bytes [start, end) of `path` in 1 MiB pieces (the log download, Range requests)."""
    with path.open("rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b` / `bytes=a-` / `bytes=-n` range as [start, end); None = whole file.
    Raises ValueError for an unsatisfiable or multi-part range (the route answers 416)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        raise ValueError("only a single bytes range is supported")
    first, dash, last = spec.strip().partition("-")
    if not dash:
        raise ValueError("malformed range")
    if not first:
        if not _digits(last) or int(last) == 0:
            raise ValueError("malformed range")
        return max(0, size - int(last)), size
    if not _digits(first) or (last and not _digits(last)):
        raise ValueError("malformed range")
    start = int(first)
    end = min(size, int(last) + 1) if last else size
    if start >= size or end <= start:
        raise ValueError("range not satisfiable")
    return start, end


def _digits(text: str) -> bool:
    """ASCII digits only: `str.isdigit` also accepts "²" and "٣", which `int` then refuses or misreads."""
    return text.isascii() and text.isdigit()
