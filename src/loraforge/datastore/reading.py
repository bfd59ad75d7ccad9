"""Stream rows out of a sniffed file (see `loraforge.datastore.sniffing`): JSON / JSONL / CSV / TSV /
Parquet / TXT.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from loraforge.datastore.sniffing import FileInfo, IngestError

MAX_JSON_OBJECT_BYTES = 512 * 1024 * 1024
_WS = re.compile(r"[ \t\r\n]*")
# A JSON escape of a UTF-16 surrogate: only these can give a string that has no UTF-8 form.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")
TOO_DEEP = "nested too deeply (arrays and objects more than about 1,000 levels deep)"
LONE_SURROGATE = "a string holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair)"


@dataclass(frozen=True)
class RowIssue:
    field: str
    message: str


Row = dict[str, Any] | RowIssue


def _json_problem(exc: ValueError | RecursionError) -> str:
    """What is wrong with JSON the parser refused: Python's parser recurses once per level, and
    refuses integers longer than 4,300 digits with a ValueError that is not a JSONDecodeError."""
    if isinstance(exc, RecursionError):
        return TOO_DEEP
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    return "invalid JSON: a number has more than 4,300 digits"


def _unencodable(value: Any) -> bool:
    """Whether a parsed value holds a lone surrogate, which UTF-8 cannot store (checked only where
    the text holds a surrogate escape, so ordinary rows pay one regex search)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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
        except (ValueError, RecursionError) as exc:
            yield line_no, RowIssue("<json>", _json_problem(exc))
            continue
        if b"\\u" in line and _SURROGATE_ESCAPE_BYTES.search(line) and _unencodable(value):
            yield line_no, RowIssue("<json>", LONE_SURROGATE)
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
        except RecursionError:
            # Where the row ends is unknown without a parser that goes that deep: refuse the file.
            raise IngestError(
                "invalid_json", f"row {row + 1:,} (byte offset {offset(pos):,}): {TOO_DEEP}"
            ) from None
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
        except ValueError as exc:
            raise IngestError("invalid_json", f"row {row + 1:,}: {_json_problem(exc)}") from None
        row += 1
        yield row, _array_item(buf, pos, end, value, max_row_bytes)
        pos = end
        state = "next"
        if pos > (1 << 20):
            consumed += len(buf[:pos].encode("utf-8"))
            buf = buf[pos:]
            pos = 0


def _array_item(buf: str, start: int, end: int, value: Any, max_row_bytes: int) -> Row:
    """One decoded array element, held to the rules a JSON line is held to: the row limit (a small
    file is read whole, so the buffer alone does not enforce it) and text UTF-8 can store."""
    if end - start > max_row_bytes // 4:  # a character is at most 4 bytes: only then count them
        size = len(buf[start:end].encode("utf-8"))
        if size > max_row_bytes:
            return RowIssue("<row>", f"row is {size:,} bytes, above the limit of {max_row_bytes:,} per row")
    if buf.find("\\u", start, end) >= 0 and _SURROGATE_ESCAPE.search(buf, start, end) and _unencodable(value):
        return RowIssue("<json>", LONE_SURROGATE)
    return as_row(value)


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
    except RecursionError:
        raise IngestError("invalid_json", f"the JSON object is {TOO_DEEP}") from None
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
    except ValueError as exc:
        raise IngestError("invalid_json", _json_problem(exc)) from None
    lists = [v for v in data.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
    rows = lists[0] if len(lists) == 1 else [data]
    check = _SURROGATE_ESCAPE.search(whole) is not None
    for n, value in enumerate(rows, 1):
        yield n, RowIssue("<json>", LONE_SURROGATE) if check and _unencodable(value) else as_row(value)


def _iter_jsonl_with_bom(f: BinaryIO, max_row_bytes: int) -> Iterator[tuple[int, Row]]:
    if f.read(3) != codecs.BOM_UTF8:
        f.seek(0)
    yield from _iter_jsonl(f, max_row_bytes)


def _iter_csv(f: BinaryIO, delimiter: str, max_row_bytes: int) -> Iterator[tuple[int, Row]]:
    text = io.TextIOWrapper(f, encoding="utf-8", newline="")
    csv.field_size_limit(max_row_bytes)
    # Strict, so that a quote that is never closed is an error naming its record, rather than the
    # rest of the file read silently into one field.
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    header: list[str] | None = None
    n = 0
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if header is not None and "expected after" in str(exc):
                # Text after a closing quote: the field is complete, the reader resumes on the next line.
                n += 1
                yield n, RowIssue("<row>", f"line {start:,}: {exc} (a quoted field must end at a delimiter)")
                continue
            where = f"record {n + 1:,} (line {start:,})" if header is not None else "the header row"
            raise IngestError(
                "invalid_csv", f"CSV error in {where}: {_csv_reason(exc, max_row_bytes)}"
            ) from None
        if not values:
            continue
        if header is None:
            header = values
            continue
        n += 1
        if len(values) > len(header):
            yield n, RowIssue("<row>", f"{len(values) - len(header)} more field(s) than the header has")
        elif len(values) < len(header):
            yield n, RowIssue("<row>", "fewer fields than the header has")
        else:
            yield n, dict(zip(header, values, strict=True))
    if header is None:
        raise IngestError("invalid_csv", "the CSV file has no header row")


def _csv_reason(exc: csv.Error, max_row_bytes: int) -> str:
    reason = str(exc)
    if reason == "unexpected end of data":
        return "a quoted field that starts here is never closed (the file ends inside it)"
    if reason.startswith("field larger than field limit"):
        return f"a field is larger than the limit of {max_row_bytes:,} bytes per row"
    return reason


def _iter_parquet(path: Path) -> Iterator[tuple[int, Row]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        n = 0
        for batch in parquet.iter_batches(batch_size=1024):
            for value in _batch_rows(batch):
                n += 1
                yield n, value if isinstance(value, RowIssue) else as_row(value)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise IngestError("invalid_parquet", f"cannot read the Parquet file: {exc}") from None


def _batch_rows(batch: Any) -> list[Any]:
    """A record batch as Python rows. A value Python cannot hold (text that is not UTF-8, a date past
    the year 9999) makes its row a RowIssue naming the column, instead of failing the whole file."""
    try:
        return list(batch.to_pylist())
    except (ValueError, OverflowError):  # UnicodeDecodeError and ArrowInvalid are ValueErrors
        pass
    rows: list[Any] = []
    for i in range(batch.num_rows):
        one = batch.slice(i, 1)
        try:
            rows.append(one.to_pylist()[0])
            continue
        except (ValueError, OverflowError):
            pass
        issue = RowIssue("<row>", "a value cannot be read")
        for name, column in zip(batch.schema.names, one.columns, strict=True):
            try:
                column.to_pylist()
            except (ValueError, OverflowError) as exc:
                reason = "text that is not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
                issue = RowIssue(str(name), f"cannot be read: {reason}")
                break
        rows.append(issue)
    return rows
