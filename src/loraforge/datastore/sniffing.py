"""What an uploaded file is before any row is read: a safe display name and suffix, the file type
and text encoding (`sniff`), and a streaming conversion to UTF-8 (`transcode`).

`IngestError` is raised for problems with the file as a whole (empty, binary, undecodable, malformed);
`loraforge.datastore.reading` streams the rows once a file is sniffed.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraforge.engine.data.readers import SUPPORTED_SUFFIXES

_BLOCK = 4 * 1024 * 1024


class IngestError(Exception):
    """The file cannot be imported. `code` is the API error code, `status` the HTTP status to use."""

    def __init__(
        self, code: str, message: str, *, status: int = 422, details: list[dict[str, Any]] | None = None
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details or []


@dataclass
class FileInfo:
    """What sniffing learned about a file: its type and text encoding."""

    kind: str  # json | jsonl | csv | tsv | parquet | txt
    encoding: str = "utf-8"
    bom: bool = False
    converted_from: str | None = None
    notes: list[str] = field(default_factory=list)


def safe_suffix(filename: str | None) -> str:
    """The file-type suffix of a user-supplied name, or "" (names are metadata, never paths)."""
    if not filename:
        return ""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].replace("\x00", "")
    suffix = Path(base).suffix.lower()
    return suffix if suffix in SUPPORTED_SUFFIXES else ""


def clean_filename(filename: str | None) -> str:
    """A display-only name: no directories, no control characters, at most 255 characters."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable())
    base = base.strip().lstrip(".") or "upload"
    return base[:255]


# ---- encoding ------------------------------------------------------------------------------------


def _first_bad_utf8(path: Path, start: int) -> tuple[int, int] | None:
    """(byte offset, byte value) of the first invalid UTF-8 byte, or of a NUL byte; None if clean."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = start
    with path.open("rb") as f:
        f.seek(start)
        while True:
            block = f.read(_BLOCK)
            nul = block.find(b"\x00")
            if nul >= 0:
                return offset + nul, 0
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                # exc.start counts from the decoder's carried-over bytes plus this block
                pending = exc.object[exc.start : exc.start + 1]
                return max(start, offset + exc.start - (len(exc.object) - len(block))), pending[0]
            if not block:
                return None
            offset += len(block)


def _looks_like_gbk(sample: bytes) -> bool:
    """CJK text in GBK comes in runs of paired high bytes; Latin-1 accents come alone."""
    runs = [len(run) for run in re.findall(rb"[\x80-\xff]+", sample)]
    if not runs:
        return False
    paired = sum(1 for n in runs if n % 2 == 0)
    return paired / len(runs) >= 0.8 and sum(runs) / len(runs) >= 2


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with path.open("rb") as f:
        while True:
            block = f.read(_BLOCK)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError:
                return False
            if not block:
                return True


def sniff(path: Path, filename: str | None, *, txt_mode: str = "lines") -> FileInfo:
    """Type and encoding of `path`; raises IngestError for empty, binary or undecodable files."""
    size = path.stat().st_size
    if size == 0:
        raise IngestError("empty_file", "the file is empty (0 bytes)")
    with path.open("rb") as f:
        head = f.read(65536)
    suffix = safe_suffix(filename)
    if head.startswith(b"PAR1"):
        return FileInfo(kind="parquet", encoding="binary")
    if suffix == ".parquet":
        raise IngestError(
            "invalid_parquet", "the file is named .parquet but does not start with the PAR1 magic"
        )

    info = FileInfo(kind=_kind_from(suffix, head))
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        info.encoding, info.converted_from = "utf-16", "UTF-16"
        if not _decodes(path, "utf-16"):
            raise IngestError(
                "bad_encoding", "the file starts with a UTF-16 byte-order mark but is not valid UTF-16"
            )
        return info
    if head.startswith(codecs.BOM_UTF8):
        info.bom = True
        info.notes.append("UTF-8 byte-order mark removed")
    bad = _first_bad_utf8(path, 3 if info.bom else 0)
    if bad is None:
        return info
    offset, value = bad
    wide = _utf16_without_bom(head)
    if wide is not None:
        raise IngestError(
            "bad_encoding",
            f"the file looks like {wide} text without a byte-order mark; save it as UTF-8 (or as UTF-16 "
            "with a byte-order mark) and upload again",
        )
    named = f" (the name says {suffix})" if suffix else ""
    if _binary(head):
        raise IngestError(
            "binary_file",
            f"this is a binary file, not text: byte 0x{value:02x} at byte offset {offset:,}{named}",
        )
    if value == 0:  # text with a stray NUL byte (a damaged save): say which line holds it
        raise IngestError(
            "binary_file",
            f"the file holds a NUL byte (0x00) at byte offset {offset:,}, line {_line_at(path, offset):,}: "
            f"text files cannot contain NUL bytes{named}",
        )
    with path.open("rb") as f:
        f.seek(max(0, offset - 4096))
        sample = f.read(1 << 20)
    candidates = ["gb18030", "cp1252"] if _looks_like_gbk(sample) else ["cp1252", "gb18030"]
    for encoding in candidates:
        if _decodes(path, encoding):
            info.encoding = encoding
            info.converted_from = {"gb18030": "GBK/GB18030", "cp1252": "Windows-1252/Latin-1"}[encoding]
            info.notes.append(
                f"not UTF-8 (invalid byte 0x{value:02x} at byte offset {offset:,}); "
                f"decoded as {info.converted_from} and converted to UTF-8"
            )
            return info
    raise IngestError(
        "bad_encoding",
        f"the file is not UTF-8: invalid byte 0x{value:02x} at byte offset {offset:,} "
        f"(line {_line_at(path, offset):,}), and it is not "
        "valid GBK/GB18030 or Windows-1252 either; save it as UTF-8 and upload again",
    )


def _line_at(path: Path, offset: int) -> int:
    """The 1-based line of a byte offset (read again only on this error path)."""
    lines = 1
    with path.open("rb") as f:
        while offset > 0:
            block = f.read(min(_BLOCK, offset))
            if not block:
                break
            lines += block.count(b"\n")
            offset -= len(block)
    return lines


def _utf16_without_bom(head: bytes) -> str | None:
    """ "UTF-16 little-endian" or "big-endian" when the head is ASCII-range text in UTF-16 without a BOM:
    nearly every other byte NUL, on one side only."""
    sample = head[: len(head) & ~1]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    for name, zeros, chars in (("UTF-16 little-endian", odd, even), ("UTF-16 big-endian", even, odd)):
        if zeros.count(0) >= 0.9 * len(zeros) and chars.count(0) <= 0.1 * len(chars):
            return name
    return None


def _binary(head: bytes) -> bool:
    if not head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13, 12))
    return controls / len(head) > 0.05


def _kind_from(suffix: str, head: bytes) -> str:
    if suffix:
        return suffix[1:]
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "jsonl"
    return "txt"


def transcode(path: Path, encoding: str, out: Path) -> None:
    """Write `path` (in `encoding`) to `out` as UTF-8, streaming."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with path.open("rb") as src, out.open("wb") as dst:
        while True:
            block = src.read(_BLOCK)
            text = decoder.decode(block, final=not block)
            if text:
                dst.write(text.encode("utf-8"))
            if not block:
                break
