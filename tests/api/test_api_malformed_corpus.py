"""Malformed uploads: a fixed sample of the seeded corpus (bench/corpus.py; the full run is
bench/malformed_uploads.py) through the one-shot dataset upload and /v1/files, and one test per way
a broken file used to get a 500 or an answer that did not say where the problem is."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from api_helpers import Account, assert_error
from dataset_helpers import ALPACA_ROWS, jsonl, upload
from fastapi import FastAPI
from fastapi.testclient import TestClient

from loraforge.engine.data.formats import RowError, convert_row
from loraforge.engine.data.registry import DatasetAttr
from loraforge.settings import Settings

# The corpus lives with the benchmark that runs all of it (bench/ is not a package). bench/ is on the
# path only while importing it: it has a live_server.py of its own, which must not shadow the tests'.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
try:
    from corpus import build, sample
    from corpus_check import DATASETS, V1_FILES, judge, summary
    from corpus_files import ROW_LIMIT, Case
finally:
    del sys.path[0]

SAMPLE_SIZE = 60


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The corpus's row limit (its huge rows are a little above it)."""
    return settings.model_copy(update={"dataset_max_row_bytes": ROW_LIMIT})


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """Server errors come back as responses (counted), not as exceptions in the test."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def alice(api) -> Account:
    return api.account("alice")


def _post(client: TestClient, alice: Account, case: Case, endpoint: str):
    if endpoint == DATASETS:
        return upload(client, alice, case.filename, case.content, **case.form)
    return client.post(
        "/v1/files",
        files={"file": (case.filename, case.content)},
        data={"purpose": "fine-tune"},
        headers=alice.headers,
    )


def test_a_sample_of_the_corpus_gets_no_5xx_and_every_row_error_names_its_row(client, alice, settings):
    cases = sample(build(), SAMPLE_SIZE)
    assert len(cases) == SAMPLE_SIZE
    assert {c.category for c in cases} == {c.category for c in build()}  # every category
    paths = (str(settings.data_dir), str(settings.data_dir.resolve()))
    verdicts = []
    for case in cases:
        for endpoint in (DATASETS, V1_FILES):
            response = _post(client, alice, case, endpoint)
            try:
                body = response.json()
            except ValueError:
                body = None
            verdicts.append(
                judge(case, endpoint, response.status_code, body, response.text, server_paths=paths)
            )
    figures = summary(verdicts)
    assert figures["responses_5xx"] == 0, figures["problems"]
    assert figures["problems"] == []
    assert figures["row_level_4xx"]["count"] > 20
    assert figures["row_level_4xx"]["fraction"] == 1.0, figures["row_level_4xx"]["not_naming_the_row"]
    assert figures["row_level_accepted_with_row_errors"]["count"] > 5


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_nested_10000_deep_is_a_row_error_not_a_500(client, alice):
    line = b'{"instruction": ' + _deep(10_000).encode() + b', "output": "x"}\n'
    dataset = upload(client, alice, "deep.jsonl", jsonl(ALPACA_ROWS[:2]) + line).json()["dataset"]
    assert (dataset["valid_rows"], dataset["invalid_rows"]) == (2, 1)
    assert dataset["errors"][0]["row"] == 3 and "nested too deeply" in dataset["errors"][0]["message"]
    array = json.dumps(ALPACA_ROWS[:2])[:-1].encode() + b", " + line.strip() + b"]"
    error = assert_error(upload(client, alice, "deep.json", array), 422, "invalid_json")
    assert "row 3" in error["message"] and "nested too deeply" in error["message"]
    whole = b'{"data": ' + _deep(10_000).encode() + b"}"
    assert_error(upload(client, alice, "deep.json", whole), 422, "invalid_json")
    response = client.post(
        "/v1/files",
        files={"file": ("deep.jsonl", line)},
        data={"purpose": "fine-tune"},
        headers=alice.headers,
    )
    assert response.status_code == 400 and "line 1" in response.json()["error"]["message"], response.text


def test_a_value_nested_near_the_limit_is_refused_by_the_row_converter():
    # Parsed, but turning it into text (json.dumps, str) recurses once per level: a RowError, not a crash.
    value: list = []
    for _ in range(50_000):
        value = [value]
    attr = DatasetAttr(name="", path=None, formatting="alpaca")  # type: ignore[arg-type]
    with pytest.raises(RowError) as caught:
        convert_row({"instruction": value, "output": "x"}, attr)
    assert "nested too deeply" in caught.value.message


def test_integers_of_more_than_4300_digits_and_lone_surrogates_are_row_errors(client, alice):
    big = b'{"instruction": ' + b"9" * 5000 + b', "output": "a"}\n'
    lone = b'{"instruction": "\\ud800 alone", "output": "a"}\n'
    dataset = upload(client, alice, "odd.jsonl", jsonl(ALPACA_ROWS[:1]) + big + lone).json()["dataset"]
    assert [(e["row"], e["field"]) for e in dataset["errors"]] == [(2, "<json>"), (3, "<json>")]
    assert "4,300 digits" in dataset["errors"][0]["message"]
    assert "surrogate" in dataset["errors"][1]["message"]
    array = b"[" + json.dumps(ALPACA_ROWS[0]).encode() + b", " + lone.strip() + b"]"
    dataset = upload(client, alice, "odd.json", array).json()["dataset"]
    assert [(e["row"], e["field"]) for e in dataset["errors"]] == [(2, "<json>")]
    response = client.post(
        "/v1/files", files={"file": ("odd.jsonl", lone)}, data={"purpose": "fine-tune"}, headers=alice.headers
    )
    assert response.status_code == 400 and "line 1" in response.json()["error"]["message"], response.text


def test_parquet_text_that_is_not_utf8_names_the_row_and_column(client, alice):
    texts = pa.array([b"fine", b"not UTF-8: \x81\xff", b"also fine"], pa.binary()).view(pa.string())
    buffer = io.BytesIO()
    pq.write_table(pa.table({"instruction": pa.array(["q1", "q2", "q3"]), "output": texts}), buffer)
    dataset = upload(client, alice, "bytes.parquet", buffer.getvalue()).json()["dataset"]
    assert (dataset["valid_rows"], dataset["invalid_rows"]) == (2, 1)
    assert dataset["errors"][0]["row"] == 2 and dataset["errors"][0]["field"] == "output"


def test_a_json_array_row_over_the_row_limit_is_a_row_error(client, alice):
    rows = [*ALPACA_ROWS[:2], {"instruction": "q", "output": "x" * (ROW_LIMIT + 10)}]
    dataset = upload(client, alice, "big.json", json.dumps(rows).encode()).json()["dataset"]
    assert (dataset["valid_rows"], dataset["invalid_rows"]) == (2, 1)
    assert dataset["errors"][0]["row"] == 3 and "above the limit" in dataset["errors"][0]["message"]


def test_an_unclosed_csv_quote_names_its_record_instead_of_swallowing_the_rest(client, alice):
    content = b'instruction,output\nq1,a1\nq2,"a2\nq3,a3\nq4,a4\n'
    error = assert_error(upload(client, alice, "open.csv", content), 422, "invalid_csv")
    assert "record 2 (line 3)" in error["message"] and "never closed" in error["message"]
    # Text after a closing quote spoils that record only; the reader goes on with the next line.
    dataset = upload(client, alice, "odd.csv", b'instruction,output\n"q1"x,a1\nq2,a2\n').json()["dataset"]
    assert (dataset["valid_rows"], dataset["invalid_rows"]) == (1, 1)
    assert dataset["errors"][0]["row"] == 1


def test_a_stray_nul_byte_names_its_line_and_utf16_without_bom_is_named(client, alice):
    content = jsonl(ALPACA_ROWS[:3])
    at = content.index(b"\n", content.index(b"\n") + 1) + 5  # inside line 3
    error = assert_error(upload(client, alice, "nul.jsonl", content[:at] + b"\x00" + content[at:]), 422)
    assert "line 3" in error["message"] and "NUL" in error["message"]
    error = assert_error(upload(client, alice, "wide.jsonl", content.decode().encode("utf-16-le")), 422)
    assert error["code"] == "bad_encoding" and "UTF-16 little-endian" in error["message"]


def test_format_errors_name_the_field_the_rows_lack(client, alice):
    chats = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
        for i in range(4)
    ]
    kto = [{**row, "label": True} for row in chats[:3]] + [{**chats[3], "label": "maybe"}]
    error = assert_error(upload(client, alice, "kto.jsonl", jsonl(kto)), 422, "mixed_formats")
    assert "first at row 4; these rows have no true/false `label`" in error["message"]
    broken = [{"conversations": {"from": "human"}}] * 3
    error = assert_error(upload(client, alice, "chat.jsonl", jsonl(broken)), 422, "unknown_format")
    assert (
        "row 1: `conversations` must be a non-empty list of message objects, not an object"
        in error["message"]
    )
