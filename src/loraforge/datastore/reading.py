"""Stream rows out of an uploaded file: encoding checks, then JSON / JSONL / CSV / TSV / Parquet / TXT.

Constant memory for every type except a top-level JSON object (`{"data": [...]}`), which is parsed
whole up to `MAX_JSON_OBJECT_BYTES`. Problems with the file as a whole raise `IngestError`; problems
with one row are yielded as `RowIssue` so the rest of the file still imports.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

SUPPORTED_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".parquet", ".txt")
MAX_JSON_OBJECT_BYTES = 512 * 1024 * 1024
_BLOCK = 4 * 1024 * 1024
_WS = re.compile(r"[ \t\r\n]*")


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


@dataclass(frozen=True)
class RowIssue:
    field: str
    message: str


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
    if value == 0 or _binary(head):
        raise IngestError(
            "binary_file",
            f"this is a binary file, not text: byte 0x{value:02x} at byte offset {offset:,}"
            + (f" (the name says {suffix})" if suffix else ""),
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
        f"the file is not UTF-8: invalid byte 0x{value:02x} at byte offset {offset:,}, and it is not "
        "valid GBK/GB18030 or Windows-1252 either; save it as UTF-8 and upload again",
    )


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


# ---- rows ----------------------------------------------------------------------------------------

Row = dict[str, Any] | RowIssue


def as_row(value: Any) -> Row:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        return {"text": value}
    return RowIssue("<row>", f"expected a JSON object, got {type(value).__name__}")


def iter_rows(
    path: Path, info: FileInfo, *, max_row_bytes: int, txt_mode: str = "lines"
) -> Iterator[tuple[int, Row]]:
    """(1-based row number, row or RowIssue). Row numbers are lines for JSONL/TXT, records otherwise."""
    if info.kind == "parquet":
        yield from _iter_parquet(path)
        return
    with path.open("rb") as f:
        if info.bom:
            f.seek(3)
        if info.kind == "jsonl":
            yield from _iter_jsonl(f, max_row_bytes)
        elif info.kind == "json":
            yield from _iter_json(path, f, max_row_bytes)
        elif info.kind in ("csv", "tsv"):
            yield from _iter_csv(f, "\t" if info.kind == "tsv" else ",", max_row_bytes)
        elif txt_mode == "document":
            data = f.read(MAX_JSON_OBJECT_BYTES + 1)
            if len(data) > MAX_JSON_OBJECT_BYTES:
                raise IngestError("too_large", "a whole-file text document is limited to 512 MiB", status=413)
            yield 1, {"text": data.decode("utf-8")}
        else:
            for line_no, line in _lines(f, max_row_bytes):
                if isinstance(line, RowIssue):
                    yield line_no, line
                    continue
                text = line.decode("utf-8").rstrip("\r\n")
                if text.strip():
                    yield line_no, {"text": text}


def _lines(f: BinaryIO, max_row_bytes: int) -> Iterator[tuple[int, bytes | RowIssue]]:
    line_no = 0
    while True:
        line = f.readline(max_row_bytes + 1)
        if not line:
            return
        line_no += 1
        if len(line) > max_row_bytes and not line.endswith(b"\n"):
            size = len(line)
            while True:  # skip the rest of the line without holding it
                more = f.readline(1 << 20)
                size += len(more)
                if not more or more.endswith(b"\n"):
                    break
            yield (
                line_no,
                RowIssue("<row>", f"line is {size:,} bytes, above the limit of {max_row_bytes:,} per row"),
            )
            continue
        yield line_no, line


def _iter_jsonl(f: BinaryIO, max_row_bytes: int) -> Iterator[tuple[int, Row]]:
    loads = json.loads
    for line_no, line in _lines(f, max_row_bytes):
        if isinstance(line, RowIssue):
            yield line_no, line
            continue
        if not line.strip():
            continue
        try:
            value = loads(line)
        except json.JSONDecodeError as exc:
            yield line_no, RowIssue("<json>", f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        yield line_no, as_row(value)


def _iter_json(path: Path, f: BinaryIO, max_row_bytes: int) -> Iterator[tuple[int, Row]]:
    text = io.TextIOWrapper(f, encoding="utf-8", newline="")
    buf = text.read(1 << 20)
    pos = _WS.match(buf, 0).end()  # type: ignore[union-attr]
    if pos >= len(buf):
        raise IngestError("invalid_json", "the file holds only whitespace, no JSON value")
    if buf[pos] == "{":
        yield from _iter_json_object(path, f, text, buf, max_row_bytes)
        return
    if buf[pos] != "[":
        raise IngestError("invalid_json", f"expected a JSON array or object, found {buf[pos]!r} at the start")
    decoder = json.JSONDecoder()
    consumed = 0  # bytes before buf[0]
    pos += 1
    row = 0
    eof = False
    state = "first"  # first: a value or ']'; next: ',' or ']'; value: a value

    def offset(at: int) -> int:
        return consumed + len(buf[:at].encode("utf-8"))

    while True:
        pos = _WS.match(buf, pos).end()  # type: ignore[union-attr]
        if pos >= len(buf) - 1 and not eof:
            more = text.read(1 << 20)
            eof = not more
            buf += more
            continue
        if pos >= len(buf):
            raise IngestError(
                "invalid_json",
                f"truncated JSON: the array is not closed (file ends at byte offset {offset(pos):,}, "
                f"after {row:,} rows)",
            )
        if state != "value" and buf[pos] == "]":
            rest = buf[pos + 1 :] + text.read()
            if rest.strip():
                raise IngestError(
                    "invalid_json", f"extra data after the JSON array at byte offset {offset(pos + 1):,}"
                )
            return
        if state == "next":
            if buf[pos] != ",":
                raise IngestError(
                    "invalid_json",
                    f"invalid JSON: expected ',' or ']' at byte offset {offset(pos):,} (after row {row:,})",
                )
            pos += 1
            state = "value"
            continue
        try:
            value, end = decoder.raw_decode(buf, pos)
            if end >= len(buf) and not eof:
                raise json.JSONDecodeError("value may continue", buf, end)
        except json.JSONDecodeError as exc:
            if not eof:
                if len(buf) - pos > max_row_bytes:
                    raise IngestError(
                        "invalid_json",
                        f"row {row + 1:,} (byte offset {offset(pos):,}) is larger than the limit of "
                        f"{max_row_bytes:,} bytes per row, or is not valid JSON",
                    ) from None
                more = text.read(1 << 20)
                eof = not more
                buf += more
                continue
            if exc.pos >= len(buf.rstrip()) - 1 or "Unterminated" in exc.msg:
                raise IngestError(
                    "invalid_json",
                    f"truncated JSON: row {row + 1:,} starting at byte offset {offset(pos):,} is cut off "
                    f"at the end of the file ({exc.msg})",
                ) from None
            raise IngestError(
                "invalid_json",
                f"invalid JSON in row {row + 1:,}: {exc.msg} at byte offset {offset(exc.pos):,}",
            ) from None
        row += 1
        yield row, as_row(value)
        pos = end
        state = "next"
        if pos > (1 << 20):
            consumed += len(buf[:pos].encode("utf-8"))
            buf = buf[pos:]
            pos = 0


def _iter_json_object(
    path: Path, f: BinaryIO, text: io.TextIOWrapper, buf: str, max_row_bytes: int
) -> Iterator[tuple[int, Row]]:
    if path.stat().st_size > MAX_JSON_OBJECT_BYTES:
        # A huge file starting with '{' is JSON lines with a .json name.
        f.seek(0)
        yield from _iter_jsonl_with_bom(f, max_row_bytes)
        return
    whole = buf + text.read()
    try:
        data = json.loads(whole)
    except json.JSONDecodeError as exc:
        first_line = whole.split("\n", 1)[0]
        try:
            json.loads(first_line)
        except json.JSONDecodeError:
            position = len(whole[: exc.pos].encode("utf-8"))
            if exc.pos >= len(whole.rstrip()) - 1:
                raise IngestError(
                    "invalid_json",
                    f"truncated JSON: the object is cut off at byte offset {position:,} ({exc.msg})",
                ) from None
            raise IngestError(
                "invalid_json", f"invalid JSON: {exc.msg} at byte offset {position:,}"
            ) from None
        f.seek(0)
        yield from _iter_jsonl_with_bom(f, max_row_bytes)
        return
    lists = [v for v in data.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
    rows = lists[0] if len(lists) == 1 else [data]
    for n, value in enumerate(rows, 1):
        yield n, as_row(value)


def _iter_jsonl_with_bom(f: BinaryIO, max_row_bytes: int) -> Iterator[tuple[int, Row]]:
    if f.read(3) != codecs.BOM_UTF8:
        f.seek(0)
    yield from _iter_jsonl(f, max_row_bytes)


def _iter_csv(f: BinaryIO, delimiter: str, max_row_bytes: int) -> Iterator[tuple[int, Row]]:
    text = io.TextIOWrapper(f, encoding="utf-8", newline="")
    csv.field_size_limit(max_row_bytes)
    reader = csv.DictReader(text, delimiter=delimiter)
    n = 0
    try:
        for record in reader:
            n += 1
            if None in record:
                yield n, RowIssue("<row>", f"{len(record[None])} more field(s) than the header has")
                continue
            if any(value is None for value in record.values()):
                yield n, RowIssue("<row>", "fewer fields than the header has")
                continue
            yield n, dict(record)
    except csv.Error as exc:
        raise IngestError(
            "invalid_csv", f"CSV error in record {n + 1:,} (line {reader.line_num:,}): {exc}"
        ) from None
    if reader.fieldnames is None:
        raise IngestError("invalid_csv", "the CSV file has no header row")


def _iter_parquet(path: Path) -> Iterator[tuple[int, Row]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        n = 0
        for batch in parquet.iter_batches(batch_size=1024):
            for value in batch.to_pylist():
                n += 1
                yield n, as_row(value)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise IngestError("invalid_parquet", f"cannot read the Parquet file: {exc}") from None
