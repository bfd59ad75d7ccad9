"""A seeded corpus of broken dataset files, for `malformed_uploads.py` and the API test that replays a
sample of it (tests/api/test_api_malformed_corpus.py).

Every accepted file type (JSON, JSONL, CSV, TSV, Parquet, TXT) and row shape (alpaca, sharegpt,
messages, preference, kto) broken the ways real uploads break: cut off, empty or BOM only, in the
wrong encoding, binary, with NUL bytes, rows over the row limit (`ROW_LIMIT`), nesting 10,000 deep,
wrong types, shapes mixed, ragged CSV, unclosed quotes, Parquet with a damaged footer. The same seed
gives the same bytes; each case says what a good answer is (`corpus_files.Case`). File-type specific
damage (encodings, binary, Parquet, CSV quoting) is in `corpus_damage.py`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from corpus_damage import DAMAGE_MAKERS
from corpus_files import (
    FLAT_SHAPES,
    ROW_LIMIT,
    SHAPES,
    SUFFIXES,
    TEXT_KINDS,
    WIDE,
    Case,
    deep,
    dump,
    form_for,
    json_array,
    jsonl,
    make_row,
    parquet,
    parquet_columns,
    serialize,
    shape_rows,
)

Maker = Callable[[random.Random], Iterator[Case]]
N = 12  # good rows per file


def build(seed: int = 13) -> list[Case]:
    """Every case, in a fixed order. Each category draws from its own random stream, so adding cases
    to one leaves the bytes of the others alone."""
    cases: list[Case] = []
    for fn in [*MAKERS, *DAMAGE_MAKERS]:
        cases += list(fn(random.Random(f"{seed}:{fn.__name__}")))
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def sample(cases: list[Case], n: int, seed: int = 13) -> list[Case]:
    """`n` cases covering every category: round robin over the categories, seeded order in each."""
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(case.category, []).append(case)
    rng = random.Random(seed)
    queues = [rng.sample(group, len(group)) for group in groups.values()]
    picked: list[Case] = []
    while len(picked) < n and any(queues):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop())
    return picked


def empty(rng: random.Random) -> Iterator[Case]:
    for kind in SUFFIXES:
        yield Case(f"empty/{kind}", "empty", f"empty.{kind}", b"", "file")
    for kind in ("json", "jsonl", "csv", "txt"):
        yield Case(f"empty/whitespace/{kind}", "empty", f"blank.{kind}", b"\n \n\t\r\n", "file")
    yield Case("empty/parquet-no-rows", "empty", "none.parquet", parquet([], _alpaca_schema()), "file")
    yield Case("empty/csv-header-only", "empty", "header.csv", b"instruction,input,output\n", "file")
    yield Case("empty/json-array", "empty", "none.json", b"[]\n", "file")
    yield Case("empty/json-object", "empty", "none.json", b'{"data": []}\n', "file")


def _alpaca_schema() -> Any:
    import pyarrow as pa

    return pa.schema([("instruction", pa.string()), ("input", pa.string()), ("output", pa.string())])


def bom_only(rng: random.Random) -> Iterator[Case]:
    for kind in TEXT_KINDS:
        yield Case(f"bom_only/utf8/{kind}", "bom_only", f"bom.{kind}", b"\xef\xbb\xbf", "file")
        yield Case(f"bom_only/utf8-newline/{kind}", "bom_only", f"bom2.{kind}", b"\xef\xbb\xbf\r\n", "file")
    for kind in ("jsonl", "json", "txt"):
        yield Case(f"bom_only/utf16le/{kind}", "bom_only", f"bom16.{kind}", b"\xff\xfe", "file")
        yield Case(f"bom_only/utf16be/{kind}", "bom_only", f"bom16be.{kind}", b"\xfe\xff", "file")


def truncated(rng: random.Random) -> Iterator[Case]:
    """Cut inside a chosen row: JSON/JSONL name that row; CSV/TSV cut in the first field, so the row
    has too few fields; TXT cut inside a three-byte character; Parquet loses its footer."""
    for kind in ("jsonl", "json"):
        for shape in SHAPES:
            data, spans = serialize(kind, shape_rows(kind, shape, N, rng))
            for row in sorted(rng.sample(range(2, N + 1), 2)):
                start, end = spans[row - 1]
                cut = rng.randint(start + 2, end - 2)
                yield Case(
                    f"truncated/{kind}/{shape}/{row}",
                    "truncated",
                    f"{shape}.{kind}",
                    data[:cut],
                    "row",
                    (row,),
                )
    for kind in ("csv", "tsv"):
        for shape in FLAT_SHAPES:
            rows = shape_rows(kind, shape, N, rng)
            data, spans = serialize(kind, rows)
            row = rng.randint(2, N)
            start = spans[row - 1][0]
            cut = start + rng.randint(1, len(next(iter(rows[row - 1].values()))) - 1)
            name = f"truncated/{kind}/{shape}/{row}"
            yield Case(
                name, "truncated", f"{shape}.{kind}", data[:cut], "row", (row,), form=form_for(kind, shape)
            )
    for shape in SHAPES:
        data = parquet(shape_rows("parquet", shape, N, rng))
        cut = rng.randint(len(data) // 4, len(data) - 2)
        yield Case(f"truncated/parquet/{shape}", "truncated", f"{shape}.parquet", data[:cut], "file")
    for n in range(2):
        data, spans = serialize("txt", shape_rows("txt", "text", N, rng, WIDE))
        row = rng.randint(2, N)
        start, end = spans[row - 1]
        cut = start + 3 * rng.randint(1, (end - start) // 3 - 1) + 1  # one byte into a character
        yield Case(f"truncated/txt/{n}", "truncated", "wide.txt", data[:cut], "any")


def huge_rows(rng: random.Random) -> Iterator[Case]:
    """One row over the row limit among good rows (the others import), or every row over it."""

    def big() -> str:
        return "x" * (ROW_LIMIT + rng.randint(1, ROW_LIMIT))

    for kind in ("jsonl", "json"):
        for shape in ("alpaca", "messages"):
            rows = shape_rows(kind, shape, N, rng)
            row = rng.randint(1, N)
            if shape == "alpaca":
                rows[row - 1]["output"] = big()
            else:
                rows[row - 1]["messages"][1]["content"] = big()
            yield Case(
                f"huge_row/{kind}/{shape}/{row}",
                "huge_row",
                f"{shape}.{kind}",
                serialize(kind, rows)[0],
                "row",
                (row,),
            )
        every = [{"instruction": big(), "output": "a"} for _ in range(3)]
        yield Case(
            f"huge_row/{kind}/every", "huge_row", f"every.{kind}", serialize(kind, every)[0], "row", (1,)
        )
    last = jsonl(shape_rows("jsonl", "alpaca", 3, rng))[0] + dump({"instruction": big(), "output": "y"})
    yield Case("huge_row/jsonl/last-line-no-newline", "huge_row", "last.jsonl", last, "row", (4,))
    for kind in ("csv", "tsv"):
        rows = shape_rows(kind, "alpaca", N, rng)
        row = rng.randint(1, N)
        rows[row - 1]["output"] = big()
        yield Case(
            f"huge_row/{kind}/{row}", "huge_row", f"alpaca.{kind}", serialize(kind, rows)[0], "row", (row,)
        )
    rows = shape_rows("txt", "text", N, rng)
    row = rng.randint(1, N)
    rows[row - 1]["text"] = big()
    yield Case(f"huge_row/txt/{row}", "huge_row", "lines.txt", serialize("txt", rows)[0], "row", (row,))
    rows = shape_rows("parquet", "alpaca", N, rng)
    rows[rng.randint(0, N - 1)]["output"] = big()
    yield Case("huge_row/parquet", "huge_row", "alpaca.parquet", parquet(rows), "any")
    whole = dump({"data": [{"instruction": big(), "output": "z"}, {"instruction": "q", "output": "a"}]})
    yield Case("huge_row/json-object", "huge_row", "object.json", whole, "any")


def deep_nesting(rng: random.Random) -> Iterator[Case]:
    """JSON nested 10,000 deep (deeper than any parser's recursion), in a field, as a whole row, as the
    whole file; and 900 deep, which parses and must still be converted or refused cleanly."""
    for kind, writer in (("jsonl", jsonl), ("json", json_array)):
        rows: list[Any] = shape_rows(kind, "alpaca", N, rng)
        row = rng.randint(1, N)
        rows[row - 1] = b'{"instruction": ' + deep().encode() + b', "output": "x"}'
        yield Case(
            f"deep/{kind}/field/{row}", "deep_nesting", f"alpaca.{kind}", writer(rows)[0], "row", (row,)
        )
        rows = shape_rows(kind, "messages", N, rng)
        row = rng.randint(1, N)
        rows[row - 1] = deep().encode()
        yield Case(
            f"deep/{kind}/row/{row}", "deep_nesting", f"messages.{kind}", writer(rows)[0], "row", (row,)
        )
        rows = shape_rows(kind, "messages", N, rng)
        row = rng.randint(1, N)
        content = deep(DEEP_OBJECTS, '{"a": ', "}").replace('{"a": }', '{"a": 1}')
        rows[row - 1] = b'{"messages": [{"role": "user", "content": ' + content.encode() + b"}]}"
        yield Case(
            f"deep/{kind}/objects/{row}", "deep_nesting", f"objects.{kind}", writer(rows)[0], "row", (row,)
        )
        for depth in (900, 990):
            rows = shape_rows(kind, "alpaca", N, rng)
            row = rng.randint(1, N)
            rows[row - 1] = b'{"instruction": "q", "input": ' + deep(depth).encode() + b', "output": "x"}'
            name = f"deep/{kind}/parses-{depth}/{row}"
            yield Case(name, "deep_nesting", f"alpaca.{kind}", writer(rows)[0], "any")
    yield Case("deep/json/whole-file", "deep_nesting", "deep.json", deep().encode(), "row", (1,))
    yield Case(
        "deep/json/object-file", "deep_nesting", "deep.json", b'{"data": ' + deep().encode() + b"}", "file"
    )
    tools = dump({**make_row("messages", 1, rng), "tools": "x"}).replace(b'"x"', deep(950).encode())
    yield Case("deep/jsonl/tools-950", "deep_nesting", "tools.jsonl", tools + b"\n", "any")
    cell = shape_rows("csv", "alpaca", 3, rng)
    cell[1]["instruction"] = deep()
    yield Case("deep/csv/cell", "deep_nesting", "alpaca.csv", serialize("csv", cell)[0], "any")


DEEP_OBJECTS = 10_000


def _turns(row: dict[str, Any], key: str, second: Any) -> dict[str, Any]:
    """`row` with its second turn (of `conversations` or `messages`) replaced."""
    return {key: [row[key][0], second]}


def _raw(line: str) -> bytes:
    return line.encode()


# (shape, what to break, the field the error should name). Objects where text is expected are not
# broken: like LLaMA-Factory, they become their JSON text ("any").
ANY = "*any*"
MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], Any], str | None]] = [
    ("alpaca", lambda r: {**r, "instruction": None}, "instruction"),
    ("alpaca", lambda r: {**r, "instruction": "", "input": ""}, "instruction"),
    ("alpaca", lambda r: {**r, "instruction": {"an": "object"}}, ANY),
    ("alpaca", lambda r: {**r, "output": ["a", "list"]}, ANY),
    ("alpaca", lambda r: b'{"instruction": ' + b"9" * 5000 + b', "output": "a"}', None),
    ("sharegpt", lambda r: {"conversations": {}}, "conversations"),
    ("sharegpt", lambda r: _turns(r, "conversations", "a string"), "conversations[1]"),
    ("sharegpt", lambda r: _turns(r, "conversations", {"from": 7, "value": "x"}), "conversations[1].from"),
    (
        "sharegpt",
        lambda r: _turns(r, "conversations", {"from": "gpt", "value": None}),
        "conversations[1].value",
    ),
    ("sharegpt", lambda r: {"conversations": r["conversations"][:1]}, "conversations"),
    ("messages", lambda r: {"messages": "hello"}, "messages"),
    ("messages", lambda r: {"messages": []}, "messages"),
    ("messages", lambda r: {"messages": [{"role": 5, "content": "q"}, r["messages"][1]]}, "messages[0].role"),
    (
        "messages",
        lambda r: _turns(r, "messages", {"role": "assistant", "content": None}),
        "messages[1].content",
    ),
    ("preference", lambda r: {**r, "chosen": None}, "chosen"),
    ("preference", lambda r: {k: v for k, v in r.items() if k != "rejected"}, "rejected"),
    ("kto", lambda r: {**r, "label": "maybe"}, "label"),
    ("kto", lambda r: {**r, "label": 1}, "label"),
    ("alpaca", lambda r: 42, None),
    ("messages", lambda r: ["a", "list"], None),
    ("alpaca", lambda r: _raw('{"instruction": "\\ud800 alone", "output": "a"}'), None),
    ("messages", lambda r: _raw('{"messages": [{"role": "user", "content": "\\udfff"}, {}]}'), None),
]


# Where every row has the problem, these make a good file of a plainer format (alpaca with a `chosen`
# column, messages with a `label` column): not broken.
PLAINER_WHEN_EVERY = {15, 16, 17}


def wrong_types(rng: random.Random) -> Iterator[Case]:
    """One row with a wrong type among good rows (the others import; that row is named), and files in
    which every row has it (refused, naming the first)."""
    for n, (shape, mutate, fld) in enumerate(MUTATIONS):
        level = "any" if fld == ANY else "row"
        field = None if fld == ANY else fld
        for kind in ("jsonl", "json"):
            rows = shape_rows(kind, shape, N, rng)
            row = rng.randint(1, N)
            rows[row - 1] = mutate(rows[row - 1])
            content = serialize(kind, rows)[0]
            name = f"wrong_types/{kind}/{n}/{row}"
            yield Case(name, "wrong_types", f"{shape}.{kind}", content, level, (row,), field)
        every = jsonl([mutate(r) for r in shape_rows("jsonl", shape, 4, rng)])[0]
        level = "any" if n in PLAINER_WHEN_EVERY else level
        yield Case(f"wrong_types/jsonl/{n}/every", "wrong_types", f"{shape}.jsonl", every, level, (1,), field)
    import pyarrow as pa

    two_chats = pa.array([make_row("messages", i, rng)["messages"] for i in (1, 2)])
    typed: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
        ("messages-as-text", {"messages": pa.array(["hi", "there"])}, {"format": "messages"}, "messages"),
        ("label-as-int", {"messages": two_chats, "label": pa.array([1, 0])}, {"format": "kto"}, "label"),
        (
            "conversations-of-strings",
            {"conversations": pa.array([["a"], ["c"]])},
            {"format": "sharegpt"},
            "[0]",
        ),
        (
            "nested-lists",
            {"messages": pa.array([[[["x"]]], [[["y"]]]])},
            {"format": "messages"},
            "messages[0]",
        ),
        (
            "null-instruction",
            {"instruction": pa.array([None, None], pa.string()), "output": pa.array(["a", "b"])},
            {},
            "instruction",
        ),
    ]
    for name, columns, form, fld in typed:
        content = parquet_columns(columns)
        yield Case(
            f"wrong_types/parquet/{name}", "wrong_types", f"{name}.parquet", content, "row", (1,), fld, form
        )


PAIRS = [
    ("alpaca", "sharegpt"),
    ("messages", "alpaca"),
    ("sharegpt", "messages"),
    ("preference", "messages"),
    ("kto", "alpaca"),
    ("alpaca", "text"),
]


def mixed_shapes(rng: random.Random) -> Iterator[Case]:
    """Rows of one shape, then of another from a chosen row on: that row is named."""
    for first, second in PAIRS:
        for kind in ("jsonl", "json"):
            row = rng.randint(2, N - 1)
            rows: list[Any] = shape_rows(kind, first, row - 1, rng)
            rest = (
                [{"text": f"plain text {i}"} for i in range(N - row + 1)]
                if second == "text"
                else shape_rows(kind, second, N - row + 1, rng)
            )
            name = f"mixed/{kind}/{first}+{second}"
            yield Case(name, "mixed_shapes", f"mixed.{kind}", serialize(kind, rows + rest)[0], "row", (row,))
    for first, second in PAIRS[:2]:
        row = rng.randint(2, N - 1)
        rows = shape_rows("parquet", first, row - 1, rng) + shape_rows("parquet", second, N - row + 1, rng)
        yield Case(
            f"mixed/parquet/{first}+{second}", "mixed_shapes", "mixed.parquet", parquet(rows), "row", (row,)
        )
    rows = shape_rows("jsonl", "alpaca", 3, rng) + shape_rows("jsonl", "alpaca", 3, rng)
    rows[4] = {"instruction": "q", "output": "a", "chosen": "c", "rejected": "r"}
    yield Case(
        "mixed/jsonl/alpaca+preference-row", "mixed_shapes", "mixed.jsonl", jsonl(rows)[0], "row", (5,)
    )


def forced_format(rng: random.Random) -> Iterator[Case]:
    """Good rows uploaded as the wrong format: every row fails, naming the missing field (the /v1 path
    has no format override: the file is fine there)."""
    for shape, fmt, fld in (
        ("alpaca", "kto", "label"),
        ("alpaca", "sharegpt", "conversations"),
        ("messages", "preference", "messages"),
        ("sharegpt", "alpaca", "instruction"),
        ("preference", "kto", "label"),
        ("kto", "preference", "messages"),
    ):
        for kind in ("jsonl", "parquet"):
            data = serialize(kind, shape_rows(kind, shape, N, rng))[0]
            name = f"forced/{kind}/{shape}-as-{fmt}"
            yield Case(
                name,
                "forced_format",
                f"{shape}.{kind}",
                data,
                "row",
                (1,),
                fld,
                {"format": fmt},
                v1_level="any",
            )


MAKERS: list[Maker] = [
    empty,
    bom_only,
    truncated,
    huge_rows,
    deep_nesting,
    wrong_types,
    mixed_shapes,
    forced_format,
]
