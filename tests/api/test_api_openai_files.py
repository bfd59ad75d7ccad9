"""/v1/files with the official `openai` client against a real server: upload (fine-tune files become
datasets, checked line by line), list and paging, retrieve, content, delete; size cap; strangers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from ft_helpers import chat_rows, jsonl
from live_server import LiveServer, live_server
from sqlalchemy import func, select

from loraforge.datastore import paths
from loraforge.db.models import Dataset, StoredFile
from loraforge.db.session import Database
from loraforge.services.openai import files as openai_files
from loraforge.settings import Settings


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    with live_server(settings) as live:
        yield live


def _counts(settings: Settings) -> tuple[int, int]:
    database = Database(settings.sqlalchemy_url)
    try:
        with database.session() as session:
            files = session.scalar(select(func.count(StoredFile.id))) or 0
            sets = session.scalar(select(func.count(Dataset.id))) or 0
            return files, sets
    finally:
        database.dispose()


def _leftover_bytes(settings: Settings) -> list[Path]:
    """Every regular file under the places an upload writes to (none may stay after a refusal)."""
    roots = [
        settings.files_dir,
        paths.uploads_root(settings.data_dir),
        paths.datasets_root(settings.data_dir),
    ]
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


def test_upload_list_retrieve_content_delete(server: LiveServer, settings: Settings):
    alice = server.account("alice")
    client = server.openai(alice)
    data = jsonl(chat_rows())
    uploaded = client.files.create(file=("train.jsonl", data), purpose="fine-tune")
    assert uploaded.id.startswith("file-") and uploaded.object == "file"
    assert uploaded.bytes == len(data) and uploaded.filename == "train.jsonl"
    assert uploaded.purpose == "fine-tune" and uploaded.status == "processed"
    assert isinstance(uploaded.created_at, int) and uploaded.created_at > 1_600_000_000

    # The fine-tune file is a dataset of alice's, in the Datasets UI, with the detected format.
    listed = server.http.get("/api/datasets", headers=alice.headers).json()["items"]
    assert [(d["name"], d["format"], d["rows"]) for d in listed] == [("train.jsonl", "messages", 6)]
    assert uploaded.id in listed[0]["description"]

    assert client.files.retrieve(uploaded.id).model_dump() == uploaded.model_dump()
    assert client.files.content(uploaded.id).content == data
    assert (settings.files_dir / uploaded.id.removeprefix("file-")).read_bytes() == data

    other = client.files.create(file=("notes.txt", b"just some notes\n"), purpose="assistants")
    third = client.files.create(file=("more.jsonl", jsonl(chat_rows(2))), purpose="fine-tune")
    assert client.files.content(other.id).content == b"just some notes\n"
    assert len(server.http.get("/api/datasets", headers=alice.headers).json()["items"]) == 2  # not notes.txt

    page = client.files.list(limit=2)
    assert [f.id for f in page.data] == [third.id, other.id] and page.has_more
    rest = client.files.list(limit=2, after=other.id)
    assert [f.id for f in rest.data] == [uploaded.id] and not rest.has_more
    assert [f.id for f in client.files.list()] == [third.id, other.id, uploaded.id]  # auto-paging
    assert [f.id for f in client.files.list(order="asc")] == [uploaded.id, other.id, third.id]
    assert [f.id for f in client.files.list(purpose="fine-tune")] == [third.id, uploaded.id]
    raw = server.http.get("/v1/files", params={"limit": 1}, headers=alice.headers).json()
    assert raw["object"] == "list" and raw["first_id"] == raw["last_id"] == third.id

    deleted = client.files.delete(uploaded.id)
    assert deleted.id == uploaded.id and deleted.deleted and deleted.object == "file"
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    assert not (settings.files_dir / uploaded.id.removeprefix("file-")).exists()
    # No job used its dataset: the dataset went with it.
    names = [d["name"] for d in server.http.get("/api/datasets", headers=alice.headers).json()["items"]]
    assert names == ["more.jsonl"]

    admin = server.login("admin", "admin-password-for-tests")
    audit = server.http.get("/api/admin/audit", params={"action": "file."}, headers=admin.headers).json()
    actions = sorted(entry["action"] for entry in audit["items"])
    assert actions == ["file.deleted", "file.uploaded", "file.uploaded", "file.uploaded"]


def test_deleting_a_file_keeps_the_dataset_a_job_uses(server: LiveServer):
    alice = server.account("alice")
    client = server.openai(alice)
    uploaded = client.files.create(file=("train.jsonl", jsonl(chat_rows())), purpose="fine-tune")
    dataset = server.http.get("/api/datasets", headers=alice.headers).json()["items"][0]
    spec = {
        "model_name_or_path": "demo-tiny",
        "stage": "sft",
        "finetuning_type": "lora",
        "dataset": dataset["id"],
    }
    response = server.http.post("/api/jobs", json={"name": "draft", "spec": spec}, headers=alice.headers)
    assert response.status_code == 201, response.text
    assert client.files.delete(uploaded.id).deleted
    kept = server.http.get(f"/api/datasets/{dataset['id']}", headers=alice.headers)
    assert kept.status_code == 200, kept.text


def test_preference_files_in_openai_and_loraforge_shapes(server: LiveServer):
    alice = server.account("alice")
    client = server.openai(alice)
    openai_dpo = [
        {
            "input": {"messages": [{"role": "user", "content": f"Say {i}"}]},
            "preferred_output": [{"role": "assistant", "content": f"{i}"}],
            "non_preferred_output": [{"role": "assistant", "content": "no"}],
        }
        for i in range(3)
    ]
    data = jsonl(openai_dpo)
    uploaded = client.files.create(file=("dpo.jsonl", data), purpose="fine-tune")
    assert client.files.content(uploaded.id).content == data  # as uploaded, not as rewritten
    loraforge_pairs = [
        {"messages": [{"role": "user", "content": "Hi"}], "chosen": "Hello!", "rejected": "Go away."}
    ] * 2
    client.files.create(file=("pairs.jsonl", jsonl(loraforge_pairs)), purpose="fine-tune")
    listed = server.http.get("/api/datasets", headers=alice.headers).json()["items"]
    assert sorted((d["name"], d["format"], d["rows"]) for d in listed) == [
        ("dpo.jsonl", "preference", 3),
        ("pairs.jsonl", "preference", 2),
    ]


GOOD = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
BAD_ROLE = {"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        (jsonl([GOOD]) + b"{oops\n", 2, "invalid JSON"),
        (jsonl([*chat_rows(2), BAD_ROLE]), 3, "role"),
        (jsonl([*chat_rows(1), {"instruction": "x", "output": "y"}]), 2, "line 1 set the format"),
        (jsonl([*chat_rows(1), {"messages": []}]), 2, "messages"),
    ],
)
def test_an_invalid_fine_tune_file_is_refused_naming_the_line_and_nothing_stays(
    server: LiveServer, settings: Settings, content: bytes, line: int, words: str
):
    alice = server.account("alice")
    client = server.openai(alice)
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("train.jsonl", content), purpose="fine-tune")
    error = caught.value.body
    assert isinstance(error, dict)
    assert f"line {line}" in error["message"] and words in error["message"], error
    assert error["param"] == "file" and error["code"] == "invalid_file"
    assert _counts(settings) == (0, 0)
    assert _leftover_bytes(settings) == []


def test_a_failure_after_the_dataset_was_made_leaves_nothing(
    server: LiveServer, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    def broken_disk(_settings: Settings, _file_id: int) -> Path:
        raise OSError("disk on fire")

    monkeypatch.setattr(openai_files, "bytes_path", broken_disk)  # the server runs in this process
    client = server.openai(server.account("alice"))
    with pytest.raises(openai.InternalServerError):
        client.files.create(file=("train.jsonl", jsonl(chat_rows())), purpose="fine-tune")
    assert _counts(settings) == (0, 0)
    assert _leftover_bytes(settings) == []


def test_fine_tune_files_must_be_jsonl_and_purposes_are_checked(server: LiveServer, settings: Settings):
    client = server.openai(server.account("alice"))
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("train.json", json.dumps(chat_rows()).encode()), purpose="fine-tune")
    assert "JSONL" in str(caught.value)
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("empty.jsonl", b""), purpose="fine-tune")
    assert "empty" in str(caught.value)
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("train.jsonl", jsonl(chat_rows())), purpose="homework")  # type: ignore[arg-type]
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "purpose"
    assert _counts(settings) == (0, 0)
    assert _leftover_bytes(settings) == []


def test_the_size_cap_refuses_large_files_with_413(settings: Settings):
    small = settings.model_copy(update={"files_max_upload_bytes": 100})
    with live_server(small) as server:
        client = server.openai(server.account("alice"))
        with pytest.raises(openai.APIStatusError) as caught:
            client.files.create(file=("train.jsonl", jsonl(chat_rows())), purpose="fine-tune")
        assert caught.value.status_code == 413
        assert client.files.create(file=("tiny.txt", b"x" * 100), purpose="user_data").bytes == 100
    assert _counts(small) == (1, 0)


def test_files_larger_than_the_json_body_limit_upload(server: LiveServer, settings: Settings):
    """POST /v1/files has its own body limit (`files_body_limits`, wired in app.py), not the JSON one."""
    rows = chat_rows(800)
    data = jsonl(rows)
    assert len(data) > settings.max_body_bytes
    client = server.openai(server.account("alice"))
    uploaded = client.files.create(file=("big.jsonl", data), purpose="fine-tune")
    assert uploaded.bytes == len(data)
    assert client.files.content(uploaded.id).content == data


def test_files_are_private_to_their_owner(server: LiveServer):
    alice, bob = server.account("alice"), server.account("bob")
    as_alice, as_bob = server.openai(alice), server.openai(bob)
    uploaded = as_alice.files.create(file=("train.jsonl", jsonl(chat_rows())), purpose="fine-tune")
    for call in (
        lambda: as_bob.files.retrieve(uploaded.id),
        lambda: as_bob.files.content(uploaded.id),
        lambda: as_bob.files.delete(uploaded.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert list(as_bob.files.list()) == []
    # Not even operators see another user's files.
    operator = server.openai(server.account("olga", role="operator"))
    with pytest.raises(openai.NotFoundError):
        operator.files.retrieve(uploaded.id)
    # Nor can bob train on it.
    with pytest.raises(openai.BadRequestError) as caught:
        as_bob.fine_tuning.jobs.create(model="demo-tiny", training_file=uploaded.id)
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "training_file"
    assert as_alice.files.retrieve(uploaded.id).id == uploaded.id
    for bad in ("file-x", "12", "file-99999"):
        with pytest.raises(openai.NotFoundError):
            as_alice.files.retrieve(bad)
