"""Dataset ingest: every LLaMA-Factory sample, formats, detection, encodings and every bad input."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from api_helpers import assert_error
from dataset_helpers import (
    ALPACA_ROWS,
    EXPECTED_FORMATS,
    LLAMAFACTORY,
    create,
    dataset_files,
    jsonl,
    upload,
)


@pytest.fixture
def alice(api):
    return api.account("alice")


def _nothing_left(settings, api, alice) -> None:
    assert dataset_files(settings.data_dir) == []
    listed = api.client.get("/api/datasets", headers=alice.headers).json()
    assert listed["total"] == 0


@pytest.mark.parametrize("filename", sorted(EXPECTED_FORMATS))
def test_every_llamafactory_sample_uploads_with_the_right_format(api, alice, filename):
    body = create(api.client, alice, filename, (LLAMAFACTORY / filename).read_bytes())
    dataset = body["dataset"]
    assert dataset["format"] == EXPECTED_FORMATS[filename]
    assert dataset["rows"] > 0 and dataset["invalid_rows"] == 0 and dataset["errors"] == []
    assert dataset["valid_rows"] == dataset["rows"]
    assert dataset["current_version"] == 1
    assert dataset["detection"]["sampled_rows"] > 0
    assert body["version"]["recipe"]["kind"] == "upload"


def test_dataset_info_json_import_gives_every_sample_its_format(api, alice):
    files = [("dataset_info", ("dataset_info.json", (LLAMAFACTORY / "dataset_info.json").read_bytes()))]
    files += [("files", (name, (LLAMAFACTORY / name).read_bytes())) for name in EXPECTED_FORMATS]
    response = api.client.post("/api/datasets/import/dataset-info", files=files, headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    got = {item["name"]: item["format"] for item in body["items"]}
    expected = {name.rsplit(".", 1)[0]: fmt for name, fmt in EXPECTED_FORMATS.items()}
    assert got == expected
    assert body["failed"] == []
    assert all(item["invalid_rows"] == 0 for item in body["items"])
    assert {"name": "mllm_demo", "reason": "file 'mllm_demo.json' was not provided"} in body["skipped"]
    kto = next(i for i in body["items"] if i["name"] == "kto_en_demo")
    assert kto["mapping"]["columns"]["kto_tag"] == "label"


def test_detection_shows_its_evidence(api, alice):
    dataset = create(api.client, alice, "a.jsonl", jsonl(ALPACA_ROWS))["dataset"]
    detection = dataset["detection"]
    assert detection["source"] == "detected"
    assert detection["votes"] == {"alpaca": 30}
    assert {"instruction", "input", "output"} <= set(detection["matched_keys"])
    assert detection["sampled_rows"] == 30 and detection["file_type"] == "jsonl"


def test_messages_format_and_row_errors_with_field_paths(api, alice):
    rows = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]},
    ]
    dataset = create(api.client, alice, "chat.jsonl", jsonl(rows))["dataset"]
    assert dataset["format"] == "messages"
    assert (dataset["rows"], dataset["valid_rows"], dataset["invalid_rows"]) == (3, 2, 1)
    [error] = dataset["errors"]
    assert error["row"] == 2 and error["field"] == "messages[1].role"
    assert "'bot'" in error["message"]


def test_format_override_and_column_mapping(api, alice):
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(5)]
    mapping = json.dumps({"formatting": "alpaca", "columns": {"prompt": "question", "response": "answer"}})
    dataset = create(api.client, alice, "qa.jsonl", jsonl(rows), mapping=mapping, format="alpaca")["dataset"]
    assert dataset["format"] == "alpaca" and dataset["valid_rows"] == 5
    assert dataset["mapping"]["columns"]["prompt"] == "question"
    page = api.client.get(f"/api/datasets/{dataset['id']}/preview", headers=alice.headers).json()
    assert page["items"][0]["prompt"][0]["content"] == "q0"
    assert page["items"][0]["response"][0]["content"] == "a0"

    sharegpt = [
        {"dialog": [{"speaker": "U", "text": "hi"}, {"speaker": "A", "text": "yo"}]},
    ]
    mapping = json.dumps(
        {
            "formatting": "sharegpt",
            "columns": {"messages": "dialog"},
            "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "U", "assistant_tag": "A"},
        }
    )
    dataset = create(api.client, alice, "d.jsonl", jsonl(sharegpt), mapping=mapping)["dataset"]
    assert dataset["format"] == "sharegpt" and dataset["valid_rows"] == 1


def test_text_file_lines_or_whole_document(api, alice):
    content = b"first document\n\nsecond document\nthird\n"
    lines = create(api.client, alice, "t.txt", content)["dataset"]
    assert (lines["format"], lines["rows"]) == ("text", 3)
    whole = create(api.client, alice, "t.txt", content, txt_mode="document")["dataset"]
    assert whole["rows"] == 1


def test_json_object_with_a_list_of_rows(api, alice):
    content = json.dumps({"data": ALPACA_ROWS[:4]}).encode()
    dataset = create(api.client, alice, "o.json", content)["dataset"]
    assert (dataset["format"], dataset["rows"]) == ("alpaca", 4)


def test_csv_with_quoted_newlines_and_tsv(api, alice):
    csv_text = 'instruction,input,output\n"line one\nline two","","an ""answer"""\nq2,,a2\n'
    dataset = create(api.client, alice, "d.csv", csv_text.encode())["dataset"]
    assert (dataset["format"], dataset["rows"], dataset["invalid_rows"]) == ("alpaca", 2, 0)
    first = api.client.get(f"/api/datasets/{dataset['id']}/preview", headers=alice.headers).json()["items"][0]
    assert first["prompt"][0]["content"] == "line one\nline two"
    assert first["response"][0]["content"] == 'an "answer"'
    tsv = create(api.client, alice, "d.tsv", b"text\nhello world\nsecond\n")["dataset"]
    assert (tsv["format"], tsv["rows"]) == ("text", 2)


def test_parquet(api, alice):
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(ALPACA_ROWS), buffer)
    dataset = create(api.client, alice, "d.parquet", buffer.getvalue())["dataset"]
    assert (dataset["format"], dataset["rows"]) == ("alpaca", 30)
    assert dataset["detection"]["file_type"] == "parquet"


def test_utf8_bom_is_accepted(api, alice):
    dataset = create(api.client, alice, "bom.jsonl", b"\xef\xbb\xbf" + jsonl(ALPACA_ROWS[:3]))["dataset"]
    assert dataset["rows"] == 3 and dataset["invalid_rows"] == 0
    assert any("byte-order mark" in note for note in dataset["detection"]["notes"])
    bom_json = create(api.client, alice, "bom.json", b"\xef\xbb\xbf" + json.dumps(ALPACA_ROWS[:2]).encode())
    assert bom_json["dataset"]["rows"] == 2


def test_latin1_text_is_detected_and_converted(api, alice):
    rows = [{"instruction": "Où est le café ?", "input": "", "output": "À côté de la gare, señor."}] * 3
    content = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("latin-1")
    dataset = create(api.client, alice, "fr.jsonl", content)["dataset"]
    assert dataset["detection"]["encoding"] == "Windows-1252/Latin-1"
    assert "byte offset" in dataset["detection"]["notes"][0]
    item = api.client.get(f"/api/datasets/{dataset['id']}/preview", headers=alice.headers).json()["items"][0]
    assert item["prompt"][0]["content"] == "Où est le café ?"


def test_gbk_text_is_detected_and_converted(api, alice):
    rows = [{"instruction": "你好，请介绍一下你自己。", "input": "", "output": "我是一个语言模型助手。"}] * 3
    content = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("gbk")
    dataset = create(api.client, alice, "zh.jsonl", content)["dataset"]
    assert dataset["detection"]["encoding"] == "GBK/GB18030"
    item = api.client.get(f"/api/datasets/{dataset['id']}/preview", headers=alice.headers).json()["items"][0]
    assert item["response"][0]["content"] == "我是一个语言模型助手。"


def test_undecodable_text_is_refused_naming_the_byte_offset(api, alice, settings):
    # 0x81 0x20: not UTF-8, not GB18030 (bad trail byte), not Windows-1252 (0x81 is undefined).
    content = b'{"text": "abc"}\n{"text": "x\x81 y"}\n'
    error = assert_error(upload(api.client, alice, "bad.jsonl", content), 422, "bad_encoding")
    assert "byte offset 27" in error["message"] and "0x81" in error["message"]
    _nothing_left(settings, api, alice)


def test_truncated_json_is_refused(api, alice, settings):
    content = json.dumps(ALPACA_ROWS)[:-40].encode()
    error = assert_error(upload(api.client, alice, "cut.json", content), 422, "invalid_json")
    assert "truncated" in error["message"]
    _nothing_left(settings, api, alice)


def test_jsonl_mixing_two_schemas_is_refused_with_evidence(api, alice, settings):
    mixed = (
        ALPACA_ROWS[:5]
        + [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}] * 5
    )
    error = assert_error(upload(api.client, alice, "mixed.jsonl", jsonl(mixed)), 422, "mixed_formats")
    assert "alpaca (5 rows, first at row 1)" in error["message"]
    assert "messages (5 rows, first at row 6)" in error["message"]
    _nothing_left(settings, api, alice)
    # Choosing a format imports the matching rows and reports the others.
    dataset = create(api.client, alice, "mixed.jsonl", jsonl(mixed), format="alpaca")["dataset"]
    assert (dataset["valid_rows"], dataset["invalid_rows"]) == (5, 5)


def test_binary_file_named_jsonl_is_refused(api, alice, settings):
    content = bytes(range(256)) * 64
    error = assert_error(upload(api.client, alice, "model.jsonl", content), 422, "binary_file")
    assert "byte offset 0" in error["message"] and ".jsonl" in error["message"]
    _nothing_left(settings, api, alice)


def test_a_10_mb_single_line_is_a_row_error(api, alice, settings):
    huge = json.dumps({"text": "x" * (10 * 1024 * 1024)}).encode() + b"\n"
    error = assert_error(upload(api.client, alice, "huge.jsonl", huge), 422, "no_valid_rows")
    assert "above the limit" in error["message"]
    _nothing_left(settings, api, alice)
    # Next to good rows it is one invalid row; the others import.
    dataset = create(api.client, alice, "huge.jsonl", jsonl(ALPACA_ROWS[:2]) + huge)["dataset"]
    assert (dataset["valid_rows"], dataset["invalid_rows"]) == (2, 1)
    assert dataset["errors"][0]["row"] == 3


def test_zero_byte_file_is_refused(api, alice, settings):
    assert_error(upload(api.client, alice, "empty.jsonl", b""), 422, "empty_file")
    _nothing_left(settings, api, alice)


@pytest.mark.parametrize(
    "filename", ["../../etc/passwd", "..\\..\\evil.jsonl", "a\x00b.jsonl", "/etc/shadow"]
)
def test_filenames_are_metadata_never_paths(api, alice, settings, filename):
    response = upload(api.client, alice, filename, jsonl(ALPACA_ROWS[:2]))
    assert response.status_code == 201, response.text
    version = response.json()["version"]
    assert "/" not in version["original_filename"] and "\x00" not in version["original_filename"]
    assert ".." not in version["original_filename"].split("/")
    data_dir = settings.data_dir.resolve()
    for path in dataset_files(settings.data_dir):
        assert path.resolve().is_relative_to(data_dir / "datasets")
    assert not (settings.data_dir / "etc").exists() and not (settings.data_dir.parent / "etc").exists()


def test_rows_that_are_not_objects_and_invalid_json_lines_are_row_errors(api, alice):
    content = jsonl(ALPACA_ROWS[:2]) + b"[1, 2]\n{not json}\n"
    dataset = create(api.client, alice, "d.jsonl", content)["dataset"]
    assert (dataset["valid_rows"], dataset["invalid_rows"]) == (2, 2)
    assert [e["row"] for e in dataset["errors"]] == [3, 4]
    assert "invalid JSON" in dataset["errors"][1]["message"]


def test_unknown_format_is_refused(api, alice, settings):
    error = assert_error(
        upload(api.client, alice, "x.jsonl", jsonl([{"a": 1}, {"a": 2}])), 422, "unknown_format"
    )
    assert "['a']" in error["message"]
    _nothing_left(settings, api, alice)


def test_upload_beyond_the_cap_is_413(api, alice, settings, app):
    settings.dataset_max_upload_bytes = 1000
    assert_error(upload(api.client, alice, "big.jsonl", jsonl(ALPACA_ROWS)), 413, "payload_too_large")
    _nothing_left(settings, api, alice)


def test_disk_full_leaves_nothing_behind(api, alice, settings, monkeypatch):
    from loraforge.datastore import ingest

    real = ingest.write_examples

    def full(*args, **kwargs):
        real(*args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ingest, "write_examples", full)
    error = assert_error(
        upload(api.client, alice, "d.jsonl", jsonl(ALPACA_ROWS)), 507, "insufficient_storage"
    )
    assert "disk space" in error["message"]
    _nothing_left(settings, api, alice)


def test_forge_demo_sample_in_one_click(api, alice):
    response = api.client.post("/api/datasets/samples/forge-demo", headers=alice.headers)
    assert response.status_code == 201, response.text
    dataset = response.json()["dataset"]
    assert dataset["name"] == "forge_demo" and dataset["format"] == "alpaca" and dataset["invalid_rows"] == 0
    packaged = Path(__file__).resolve().parents[2] / "examples" / "data" / "forge_demo.json"
    assert dataset["rows"] == len(json.loads(packaged.read_text("utf-8")))


def test_server_path_import_only_inside_allowed_roots(api, alice, settings, tmp_path):
    staff = api.admin()
    assert_error(
        api.client.post("/api/datasets/import/path", json={"path": str(LLAMAFACTORY)}, headers=staff.headers),
        403,
        "import_disabled",
    )
    root = tmp_path / "shared"
    root.mkdir()
    (root / "one.jsonl").write_bytes(jsonl(ALPACA_ROWS[:3]))
    outside = tmp_path / "secret.jsonl"
    outside.write_bytes(jsonl(ALPACA_ROWS[:1]))
    (root / "link.jsonl").symlink_to(outside)
    settings.dataset_import_roots = f"{root},{LLAMAFACTORY}"
    # Inside the roots too, reading the server's disk is for operators and admins only.
    by_researcher = {"path": str(root / "one.jsonl")}
    refused = api.client.post("/api/datasets/import/path", json=by_researcher, headers=alice.headers)
    assert_error(refused, 403, "forbidden")

    ok = api.client.post(
        "/api/datasets/import/path", json={"path": str(root / "one.jsonl")}, headers=staff.headers
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["items"][0]["rows"] == 3
    for bad in (str(outside), str(root / "link.jsonl"), str(root / ".." / "secret.jsonl"), "/etc/passwd"):
        response = api.client.post("/api/datasets/import/path", json={"path": bad}, headers=staff.headers)
        assert_error(response, 404, "path_not_found")

    folder = api.client.post(
        "/api/datasets/import/path",
        json={"path": str(LLAMAFACTORY), "names": ["identity", "kto_en_demo", "alpaca_en"]},
        headers=staff.headers,
    )
    assert folder.status_code == 200, folder.text
    body = folder.json()
    assert [(i["name"], i["format"]) for i in body["items"]] == [
        ("identity", "alpaca"),
        ("kto_en_demo", "kto"),
    ]
    assert body["skipped"][0]["name"] == "alpaca_en"


def test_the_server_with_dataset_routes_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, loraforge.app, loraforge.api.routes.datasets; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
