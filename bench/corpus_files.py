"""Rows and file writers for the malformed-upload corpus (`corpus.py`): seeded rows of every shape
(alpaca, sharegpt, messages, preference, kto, text) and writers that also return each row's byte span,
so a case can cut or damage one chosen row and name it."""

from __future__ import annotations

import dataclasses
import io
import json
import random
from dataclasses import dataclass
from typing import Any

ROW_LIMIT = 64 * 1024  # LORAFORGE_DATASET_MAX_ROW_BYTES for the corpus runs: huge rows stay small
SHAPES = ("alpaca", "sharegpt", "messages", "preference", "kto")
FLAT_SHAPES = ("alpaca", "preference", "kto")  # the ones a CSV/TSV header can hold
SUFFIXES = ("json", "jsonl", "csv", "tsv", "parquet", "txt")
TEXT_KINDS = ("json", "jsonl", "csv", "tsv", "txt")
WORDS = ("model", "data", "train", "token", "layer", "weight", "answer", "question", "forge", "adapter")
ACCENTED = ("café", "naïve", "Müller", "straße", "señor", "déjà")
WIDE = ("数据", "模型", "训练", "回答", "问题")  # three UTF-8 bytes per character

Spans = list[tuple[int, int]]


@dataclass(frozen=True)
class Case:
    """One broken file and what a good answer to it looks like.

    level "row": the problem is in one row; an error (or, for a dataset upload that also has good rows,
    the version's row errors) must name that row (`rows`: the acceptable numbers; JSONL/TXT count lines,
    JSON/CSV/Parquet count records) and, where set, the `field`. "file": the file as a whole is wrong; a
    4xx naming the cause. "any": broken for some readers, fine for others (Latin-1 is converted on
    upload); any answer but a 5xx. `v1_level`: the same for `POST /v1/files` (fine-tune files are JSONL
    only, checked strictly, with no format override); None = `level` for .jsonl files, "file" otherwise.
    """

    name: str
    category: str
    filename: str
    content: bytes
    level: str
    rows: tuple[int, ...] = ()
    field: str | None = None
    form: dict[str, str] = dataclasses.field(default_factory=dict)
    v1_level: str | None = None

    @property
    def v1_expect(self) -> str:
        if self.v1_level is not None:
            return self.v1_level
        return self.level if self.filename.endswith(".jsonl") else "file"


def text(rng: random.Random, i: int, words: tuple[str, ...] = WORDS) -> str:
    return f"{rng.choice(words)} {i} " + " ".join(rng.choice(words) for _ in range(rng.randint(2, 6)))


def make_row(shape: str, i: int, rng: random.Random, words: tuple[str, ...] = WORDS) -> dict[str, Any]:
    q, a = text(rng, i, words), text(rng, i, words)
    if shape == "alpaca":
        return {"instruction": q, "input": "", "output": a}
    if shape == "sharegpt":
        return {"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
    turns = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    if shape == "messages":
        return {"messages": turns}
    if shape == "preference":
        return {"instruction": q, "chosen": a, "rejected": text(rng, i, words)}
    return {"messages": turns, "label": i % 2 == 0}  # kto


def flat_row(shape: str, i: int, rng: random.Random, words: tuple[str, ...] = WORDS) -> dict[str, str]:
    """A CSV/TSV row: KTO as prompt/completion/label text (uploaded with format=kto)."""
    if shape == "kto":
        return {
            "prompt": text(rng, i, words),
            "completion": text(rng, i, words),
            "label": str(i % 2 == 0).lower(),
        }
    return {k: str(v) for k, v in make_row(shape, i, rng, words).items()}


def shape_rows(
    kind: str, shape: str, n: int, rng: random.Random, words: tuple[str, ...] = WORDS
) -> list[Any]:
    """`n` good rows of `shape`, as `kind` files hold them (flat for CSV/TSV, text lines for TXT)."""
    if kind in ("csv", "tsv"):
        return [flat_row(shape, i, rng, words) for i in range(1, n + 1)]
    if kind == "txt":
        return [{"text": text(rng, i, words)} for i in range(1, n + 1)]
    return [make_row(shape, i, rng, words) for i in range(1, n + 1)]


def form_for(kind: str, shape: str) -> dict[str, str]:
    """CSV/TSV KTO rows carry the label as text: the upload says the format."""
    return {"format": "kto"} if kind in ("csv", "tsv") and shape == "kto" else {}


def dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def jsonl(rows: list[Any]) -> tuple[bytes, Spans]:
    """Rows (or raw bytes lines) as JSON lines: (bytes, byte span of each row)."""
    out, spans = bytearray(), []
    for row in rows:
        line = row if isinstance(row, bytes) else dump(row)
        spans.append((len(out), len(out) + len(line)))
        out += line + b"\n"
    return bytes(out), spans


def json_array(rows: list[Any]) -> tuple[bytes, Spans]:
    """Rows (or raw bytes items) as a JSON array, one per line."""
    out, spans = bytearray(b"[\n"), []
    for n, row in enumerate(rows):
        item = row if isinstance(row, bytes) else dump(row)
        spans.append((len(out), len(out) + len(item)))
        out += item + (b",\n" if n < len(rows) - 1 else b"\n")
    return bytes(out + b"]\n"), spans


def delimited(rows: list[dict[str, str]], delimiter: str) -> tuple[bytes, Spans]:
    """CSV/TSV with a header; spans are the records' lines (the rows here need no quoting)."""
    header = list(rows[0])
    out = bytearray((delimiter.join(header) + "\n").encode())
    spans = []
    for row in rows:
        line = delimiter.join(row[k] for k in header).encode()
        spans.append((len(out), len(out) + len(line)))
        out += line + b"\n"
    return bytes(out), spans


def txt(rows: list[dict[str, str]]) -> tuple[bytes, Spans]:
    out, spans = bytearray(), []
    for row in rows:
        line = row["text"].encode()
        spans.append((len(out), len(out) + len(line)))
        out += line + b"\n"
    return bytes(out), spans


def parquet(rows: list[dict[str, Any]], schema: Any = None) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink)
    return sink.getvalue()


def parquet_columns(columns: dict[str, Any]) -> bytes:
    """A Parquet file from Arrow arrays (types chosen by the caller, wrong ones included)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def serialize(kind: str, rows: list[Any]) -> tuple[bytes, Spans]:
    if kind == "jsonl":
        return jsonl(rows)
    if kind == "json":
        return json_array(rows)
    if kind in ("csv", "tsv"):
        return delimited(rows, "," if kind == "csv" else "\t")
    if kind == "parquet":
        return parquet(rows), []
    return txt(rows)


def deep(depth: int = 10_000, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth
