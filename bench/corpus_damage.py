"""File-type damage for the malformed-upload corpus (`corpus.py`): wrong encodings, binary bytes, NUL
bytes, broken JSON structure, ragged and badly quoted CSV/TSV, Parquet with a damaged footer."""

from __future__ import annotations

import gzip
import random
import struct
from collections.abc import Callable, Iterator
from typing import Any

from corpus_files import (
    ACCENTED,
    FLAT_SHAPES,
    SHAPES,
    SUFFIXES,
    TEXT_KINDS,
    Case,
    form_for,
    jsonl,
    parquet,
    parquet_columns,
    serialize,
    shape_rows,
)

N = 12
BAD_BYTES = b"\x81\xff\xc3\x28"  # not UTF-8, not Windows-1252 (0x81), not GB18030 (0x81 0xff)


def _shape_for(kind: str, n: int) -> str:
    shapes = FLAT_SHAPES if kind in ("csv", "tsv") else SHAPES
    return "text" if kind == "txt" else shapes[n % len(shapes)]


def _file(kind: str, shape: str, rng: random.Random, words: tuple[str, ...] | None = None) -> bytes:
    rows = shape_rows(kind, shape, N, rng, words) if words else shape_rows(kind, shape, N, rng)
    return serialize(kind, rows)[0]


def encodings(rng: random.Random) -> Iterator[Case]:
    """UTF-16/32 without a byte-order mark, Latin-1 (converted on upload, refused by /v1/files),
    bytes no supported encoding decodes, and JSON escapes of lone UTF-16 surrogates (no UTF-8 form)."""
    for n, kind in enumerate(TEXT_KINDS):
        shape = _shape_for(kind, n)
        text = _file(kind, shape, rng).decode()
        form = form_for(kind, shape)
        for codec in ("utf-16-le", "utf-16-be"):
            name = f"encoding/{codec}/{kind}"
            yield Case(name, "encoding", f"{shape}.{kind}", text.encode(codec), "file", form=form)
        latin = _file(kind, shape, rng, ACCENTED).decode().encode("latin-1")
        yield Case(
            f"encoding/latin-1/{kind}",
            "encoding",
            f"{shape}.{kind}",
            latin,
            "any",
            form=form,
            v1_level="file",
        )
        for variant in range(2):
            data, spans = serialize(kind, shape_rows(kind, shape, N, rng))
            row = rng.randint(1, N)
            at = spans[row - 1][0] + 1 + variant
            bad = data[:at] + BAD_BYTES + data[at:]
            yield Case(
                f"encoding/undecodable/{kind}/{variant}",
                "encoding",
                f"{shape}.{kind}",
                bad,
                "file",
                form=form,
            )
    yield Case(
        "encoding/utf-32/jsonl",
        "encoding",
        "x.jsonl",
        _file("jsonl", "alpaca", rng).decode().encode("utf-32-le"),
        "file",
    )
    for kind in ("jsonl", "json"):
        rows: list[Any] = shape_rows(kind, "alpaca", N, rng)
        row = rng.randint(1, N)
        rows[row - 1] = b'{"instruction": "high \\ud83d alone", "output": "x"}'
        content = serialize(kind, rows)[0]
        yield Case(f"encoding/lone-surrogate/{kind}", "encoding", f"alpaca.{kind}", content, "row", (row,))
    import pyarrow as pa

    texts = [row["output"].encode() for row in shape_rows("parquet", "alpaca", N, rng)]
    row = rng.randint(1, N)
    texts[row - 1] = b"not UTF-8: " + BAD_BYTES
    column = pa.array(texts, pa.binary()).view(pa.string())  # a string column Arrow never checked
    table = {"instruction": pa.array([f"q{i}" for i in range(N)]), "output": column}
    yield Case(
        "encoding/parquet-not-utf8",
        "encoding",
        "bytes.parquet",
        parquet_columns(table),
        "row",
        (row,),
        "output",
    )


def binary(rng: random.Random) -> Iterator[Case]:
    """Random bytes under every name; Parquet magic around garbage; a gzip, a PNG, an ELF header."""
    for kind in SUFFIXES:
        for n in range(3):
            size = rng.choice((64, 700, 8192))
            yield Case(f"binary/random/{kind}/{n}", "binary", f"blob.{kind}", rng.randbytes(size), "file")
    for n in range(3):
        garbage = b"PAR1" + rng.randbytes(rng.randint(16, 4096)) + b"PAR1"
        yield Case(f"binary/par1-garbage/{n}", "binary", "fake.parquet", garbage, "file")
    footer = rng.randbytes(64)
    yield Case(
        "binary/par1-lying-length",
        "binary",
        "lie.parquet",
        b"PAR1" + footer + struct.pack("<I", 60) + b"PAR1",
        "file",
    )
    yield Case(
        "binary/gzip-jsonl",
        "binary",
        "packed.jsonl",
        gzip.compress(_file("jsonl", "alpaca", rng), mtime=0),
        "file",
    )
    yield Case(
        "binary/png-as-json", "binary", "image.json", b"\x89PNG\r\n\x1a\n" + rng.randbytes(512), "file"
    )
    yield Case("binary/elf-as-txt", "binary", "program.txt", b"\x7fELF\x02\x01\x01" + bytes(100), "file")
    yield Case("binary/nul-only", "binary", "zeros.jsonl", bytes(4096), "file")


def nul_bytes(rng: random.Random) -> Iterator[Case]:
    """A NUL byte inside one row of an otherwise good text file (a corrupted save): line-based files
    must name the line; the others the place in the file."""
    for n, kind in enumerate((*TEXT_KINDS, "jsonl", "txt")):
        shape = _shape_for(kind, n)
        data, spans = serialize(kind, shape_rows(kind, shape, N, rng))
        row = rng.randint(1, N)
        start, end = spans[row - 1]
        at = rng.randint(start + 1, end - 1)
        level, rows = ("row", (row,)) if kind in ("jsonl", "txt") else ("file", ())
        name = f"nul/{kind}/{n}/{row}"
        yield Case(
            name,
            "nul_bytes",
            f"{shape}.{kind}",
            data[:at] + b"\x00" + data[at:],
            level,
            rows,
            form=form_for(kind, shape),
        )


def json_structure(rng: random.Random) -> Iterator[Case]:
    """JSON that is not rows: prose, a scalar, scalars in an array, trailing garbage, a missing comma
    after a chosen row, invalid lines in JSON lines, arrays as lines."""
    for name, content in (
        ("prose", b"This is not JSON at all, just a sentence.\n"),
        ("number", b"42\n"),
        ("null", b"null\n"),
        ("string", b'"a lonely string"\n'),
        ("unclosed-object", b'{"data": [{"instruction": "q", "output": "a"}\n'),
        ("two-lists", b'{"a": [{"instruction": "q"}], "b": [{"instruction": "r"}]}\n'),
    ):
        yield Case(f"json/{name}", "json_structure", f"{name}.json", content, "file")
    yield Case("json/array-of-numbers", "json_structure", "numbers.json", b"[1, 2, 3]\n", "row", (1,))
    data, spans = serialize("json", shape_rows("json", "alpaca", N, rng))
    yield Case("json/trailing-garbage", "json_structure", "tail.json", data + b"garbage\n", "file")
    for shape in ("alpaca", "messages", "sharegpt"):
        data, spans = serialize("json", shape_rows("json", shape, N, rng))
        row = rng.randint(1, N - 1)
        end = spans[row - 1][1]
        name = f"json/missing-comma/{shape}/{row}"
        yield Case(
            name, "json_structure", f"{shape}.json", data[:end] + data[end + 1 :], "row", (row, row + 1)
        )
    for shape in SHAPES:
        rows: list[Any] = shape_rows("jsonl", shape, N, rng)
        row = rng.randint(1, N)
        rows[row - 1] = rng.choice(
            (b"{not json}", b'{"instruction": "q",}', b"{'single': 'quotes'}", b"[1, 2")
        )
        name = f"jsonl/invalid-line/{shape}/{row}"
        yield Case(name, "json_structure", f"{shape}.jsonl", jsonl(rows)[0], "row", (row,), "json")
    yield Case("jsonl/all-arrays", "json_structure", "arrays.jsonl", b"[1, 2]\n[3, 4]\n", "row", (1,))
    yield Case(
        "jsonl/one-json-array",
        "json_structure",
        "array.jsonl",
        serialize("json", shape_rows("json", "alpaca", 3, rng))[0],
        "row",
        (1,),
    )


def csv_damage(rng: random.Random) -> Iterator[Case]:
    """Ragged records (a field too many or too few), every record ragged, an unclosed quote that would
    swallow the rest of the file, quotes in odd places."""
    for kind in ("csv", "tsv"):
        sep = "," if kind == "csv" else "\t"
        for shape in FLAT_SHAPES:
            form = form_for(kind, shape)
            data, spans = serialize(kind, shape_rows(kind, shape, N, rng))
            row = rng.randint(1, N)
            end = spans[row - 1][1]
            extra = data[:end] + f"{sep}extra".encode() + data[end:]
            yield Case(
                f"csv/extra-field/{kind}/{shape}/{row}",
                "csv_ragged",
                f"{shape}.{kind}",
                extra,
                "row",
                (row,),
                form=form,
            )
            row = rng.randint(1, N)
            start, end = spans[row - 1]
            cut = data.rindex(sep.encode(), start, end)
            fewer = data[:cut] + data[end:]
            yield Case(
                f"csv/fewer-fields/{kind}/{shape}/{row}",
                "csv_ragged",
                f"{shape}.{kind}",
                fewer,
                "row",
                (row,),
                form=form,
            )
        ragged = "instruction" + sep + "output\n" + "".join(f"only one field {i}\n" for i in range(5))
        yield Case(f"csv/all-ragged/{kind}", "csv_ragged", f"ragged.{kind}", ragged.encode(), "row", (1,))
        for shape in ("alpaca", "preference"):
            data, spans = serialize(kind, shape_rows(kind, shape, N, rng))
            row = rng.randint(1, N - 1)
            start, end = spans[row - 1]
            for where, at in (
                ("first-field", start),
                ("last-field", data.rindex(sep.encode(), start, end) + 1),
            ):
                unclosed = data[:at] + b'"' + data[at:]
                name = f"csv/unclosed-quote/{kind}/{shape}/{where}/{row}"
                yield Case(name, "csv_quotes", f"{shape}.{kind}", unclosed, "row", (row,))
        odd = f'instruction{sep}output\n"q1"x{sep}a1\nq"2{sep}a2\n"q3"{sep}"a""3"\n'.encode()
        yield Case(f"csv/odd-quotes/{kind}", "csv_quotes", f"odd.{kind}", odd, "any")
    yield Case("csv/no-header-fields", "csv_ragged", "blank-header.csv", b"\n\nq,a\n", "any")
    yield Case(
        "csv/duplicate-header", "csv_ragged", "dup.csv", b"instruction,instruction,output\nq,r,a\n", "any"
    )


def parquet_footer(rng: random.Random) -> Iterator[Case]:
    """Parquet with the end of the file damaged: the magic, the footer length, the metadata bytes."""

    def damaged(data: bytes, how: str) -> bytes:
        length = struct.unpack("<I", data[-8:-4])[0]
        meta = len(data) - 8 - length
        if how == "magic":
            return data[:-4] + b"PAR2"
        if how == "length-huge":
            return data[:-8] + struct.pack("<I", 0xFFFFFFF0) + b"PAR1"
        if how == "length-zero":
            return data[:-8] + struct.pack("<I", 0) + b"PAR1"
        if how == "length-short":
            return data[:-8] + struct.pack("<I", max(1, length // 3)) + b"PAR1"
        if how == "footer-zeroed":
            return data[:meta] + bytes(length) + data[-8:]
        if how == "footer-cut":
            return data[: meta + length // 2] + data[-8:]
        flipped = bytearray(data)
        for _ in range(8):
            flipped[rng.randint(meta, meta + length - 1)] ^= 0xFF
        return bytes(flipped)

    hows = ("magic", "length-huge", "length-zero", "length-short", "footer-zeroed", "footer-cut", "flipped")
    for n, how in enumerate(hows):
        shape = SHAPES[n % len(SHAPES)]
        data = parquet(shape_rows("parquet", shape, N, rng))
        yield Case(f"parquet/{how}/{shape}", "parquet_footer", f"{shape}.parquet", damaged(data, how), "file")
    for n in range(3):
        data = parquet(shape_rows("parquet", SHAPES[n], N, rng))
        yield Case(f"parquet/flipped/{n}", "parquet_footer", "flip.parquet", damaged(data, "flipped"), "file")
    yield Case("parquet/magic-only", "parquet_footer", "magic.parquet", b"PAR1", "file")
    yield Case("parquet/two-magics", "parquet_footer", "magic2.parquet", b"PAR1PAR1", "file")


DAMAGE_MAKERS: list[Callable[[random.Random], Iterator[Case]]] = [
    encodings,
    binary,
    nul_bytes,
    json_structure,
    csv_damage,
    parquet_footer,
]
