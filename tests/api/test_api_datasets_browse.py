"""Datasets: list, preview, search, stats, download, edit, delete, access across users, audit."""

from __future__ import annotations

import shutil

import pytest
from api_helpers import assert_error
from dataset_helpers import ALPACA_ROWS, create, dataset_files, jsonl

ROWS = [
    {
        "instruction": f"Question {i} about {'llamas' if i % 10 == 0 else 'forges'}",
        "input": "",
        "output": f"A{i}",
    }
    for i in range(1, 96)
]


@pytest.fixture
def alice(api):
    return api.account("alice")


@pytest.fixture
def dataset(api, alice):
    return create(api.client, alice, "rows.jsonl", jsonl(ROWS), name="Forge rows", description="demo")[
        "dataset"
    ]


def test_preview_pages_seek_to_any_page(api, alice, dataset):
    first = api.client.get(
        f"/api/datasets/{dataset['id']}/preview", params={"page_size": 10}, headers=alice.headers
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["total"], body["page"], body["page_size"], len(body["items"])) == (95, 1, 10, 10)
    last = api.client.get(
        f"/api/datasets/{dataset['id']}/preview", params={"page": 10, "page_size": 10}, headers=alice.headers
    ).json()
    assert [i["index"] for i in last["items"]] == [90, 91, 92, 93, 94]
    item = last["items"][0]
    assert item["row"] == 91
    assert item["prompt"] == [{"role": "user", "content": "Question 91 about forges"}]
    assert item["response"] == [{"role": "assistant", "content": "A91"}]
    beyond = api.client.get(
        f"/api/datasets/{dataset['id']}/preview", params={"page": 11, "page_size": 10}, headers=alice.headers
    )
    assert beyond.json()["items"] == []
    assert_error(
        api.client.get(
            f"/api/datasets/{dataset['id']}/preview", params={"page_size": 101}, headers=alice.headers
        ),
        422,
    )


def test_preview_search(api, alice, dataset):
    body = api.client.get(
        f"/api/datasets/{dataset['id']}/preview",
        params={"q": "LLAMAS", "page_size": 5},
        headers=alice.headers,
    ).json()
    assert body["total"] == 9 and body["complete"] is True and body["scanned"] == 95
    assert [i["row"] for i in body["items"]] == [10, 20, 30, 40, 50]
    page2 = api.client.get(
        f"/api/datasets/{dataset['id']}/preview",
        params={"q": "llamas", "page": 2, "page_size": 5},
        headers=alice.headers,
    ).json()
    assert [i["row"] for i in page2["items"]] == [60, 70, 80, 90]


def test_stats_approximate_and_with_a_local_tokenizer(api, alice, settings, demo_model_cache):
    rows = ROWS[:10] + ROWS[:2] + [{"instruction": "q", "input": "", "output": ""}]
    chat = [
        {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                      {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"},
                      {"role": "assistant", "content": ""}]},
    ]  # fmt: skip
    dataset = create(api.client, alice, "s.jsonl", jsonl(rows))["dataset"]
    stats = api.client.get(f"/api/datasets/{dataset['id']}/stats", headers=alice.headers).json()
    assert stats["rows"] == 13 and stats["characters"] > 0
    assert stats["tokens"]["approximate"] is True and stats["tokens"]["tokenizer"] is None
    assert sum(b["count"] for b in stats["tokens"]["histogram"]) == 13
    assert stats["duplicates"] == {"rows": 2, "groups": 2}
    assert stats["roles"] == {"user": 13, "assistant": 12}
    assert stats["turns"] == {"1": 1, "2": 12}

    chat_stats = api.client.get(
        f"/api/datasets/{create(api.client, alice, 'c.jsonl', jsonl(chat))['dataset']['id']}/stats",
        headers=alice.headers,
    ).json()
    assert chat_stats["turns"] == {"4": 1} and chat_stats["roles"]["system"] == 1
    assert chat_stats["empty_fields"] == {"response": 1}

    # A real copy, not a link: the server only reads tokenizers that live inside its data dir.
    (settings.data_dir / "models" / "demo-tiny").mkdir(parents=True)
    shutil.copy(demo_model_cache / "tokenizer.json", settings.data_dir / "models" / "demo-tiny")
    exact = api.client.get(
        f"/api/datasets/{dataset['id']}/stats", params={"tokenizer": "demo-tiny"}, headers=alice.headers
    )
    assert exact.status_code == 200, exact.text
    assert (
        exact.json()["tokens"]["approximate"] is False and exact.json()["tokens"]["tokenizer"] == "demo-tiny"
    )
    assert exact.json()["tokens"]["total"] > 0
    for bad in ("../secrets", "missing"):
        response = api.client.get(
            f"/api/datasets/{dataset['id']}/stats", params={"tokenizer": bad}, headers=alice.headers
        )
        assert response.status_code in (404, 422)


def test_download_original_and_normalized(api, alice, dataset):
    original = api.client.get(f"/api/datasets/{dataset['id']}/download", headers=alice.headers)
    assert original.status_code == 200
    assert original.content == jsonl(ROWS)
    assert "rows.jsonl" in original.headers["content-disposition"]
    normalized = api.client.get(
        f"/api/datasets/{dataset['id']}/download", params={"normalized": "true"}, headers=alice.headers
    )
    assert normalized.status_code == 200
    lines = normalized.content.splitlines()
    assert len(lines) == 95 and lines[0].startswith(b'{"row":1,"prompt":')


def test_list_search_sort_and_pagination(api, alice):
    for name, rows in [("beta", 3), ("alpha", 5), ("gamma", 1)]:
        create(api.client, alice, "x.jsonl", jsonl(ALPACA_ROWS[:rows]), name=name)
    by_name = api.client.get("/api/datasets", params={"sort": "name"}, headers=alice.headers).json()
    assert [d["name"] for d in by_name["items"]] == ["alpha", "beta", "gamma"]
    by_rows = api.client.get(
        "/api/datasets", params={"sort": "-rows", "page_size": 2}, headers=alice.headers
    ).json()
    assert [d["name"] for d in by_rows["items"]] == ["alpha", "beta"]
    assert (by_rows["total"], by_rows["page"], by_rows["page_size"]) == (3, 1, 2)
    found = api.client.get("/api/datasets", params={"q": "AMM"}, headers=alice.headers).json()
    assert [d["name"] for d in found["items"]] == ["gamma"]
    keys = {
        "id",
        "name",
        "format",
        "rows",
        "valid_rows",
        "invalid_rows",
        "errors",
        "current_version",
        "size_bytes",
    }
    assert keys <= set(found["items"][0])
    assert_error(api.client.get("/api/datasets", params={"sort": "password"}, headers=alice.headers), 422)


def test_patch_and_delete_with_audit(api, alice, dataset, settings):
    patched = api.client.patch(
        f"/api/datasets/{dataset['id']}",
        json={"name": "Renamed", "description": "new"},
        headers=alice.headers,
    )
    assert patched.status_code == 200 and patched.json()["name"] == "Renamed"
    assert_error(
        api.client.patch(f"/api/datasets/{dataset['id']}", json={"name": ""}, headers=alice.headers), 422
    )
    assert api.client.delete(f"/api/datasets/{dataset['id']}", headers=alice.headers).status_code == 204
    assert_error(api.client.get(f"/api/datasets/{dataset['id']}", headers=alice.headers), 404)
    assert dataset_files(settings.data_dir) == []
    actions = [e["action"] for e in api.audit(api.admin(), action="dataset.")]
    assert actions == ["dataset.deleted", "dataset.updated", "dataset.created"]


def test_delete_refuses_while_a_job_uses_the_dataset(api, alice, dataset, monkeypatch):
    from loraforge.services.datasets import catalog as datasets

    monkeypatch.setattr(datasets, "dataset_in_use", lambda session, *, dataset_id: True)
    assert_error(
        api.client.delete(f"/api/datasets/{dataset['id']}", headers=alice.headers), 409, "dataset_in_use"
    )


def test_other_users_get_404_and_operators_may_read(api, alice, dataset):
    bob = api.account("bob")
    operator = api.account("olga", role="operator")
    version_id = dataset["current_version_id"]
    base = f"/api/datasets/{dataset['id']}"
    reads = [
        ("GET", base, None),
        ("GET", f"{base}/preview", None),
        ("GET", f"{base}/stats", None),
        ("GET", f"{base}/download", None),
        ("GET", f"{base}/versions", None),
        ("GET", f"/api/datasets/versions/{version_id}", None),
        ("GET", f"{base}/compare?a={version_id}&b={version_id}", None),
    ]
    writes = [
        ("PATCH", base, {"name": "mine"}),
        ("DELETE", base, None),
        ("POST", f"{base}/preprocess", {"options": {"clean_text": True}}),
        ("POST", f"{base}/preprocess", {"options": {"clean_text": True}, "dry_run": True}),
        ("POST", f"/api/datasets/versions/{version_id}/rollback", {}),
    ]
    for method, url, body in reads + writes:
        response = api.client.request(method, url, json=body, headers=bob.headers)
        assert_error(response, 404)
    upload = api.client.post(
        f"{base}/versions", files={"file": ("x.jsonl", jsonl(ALPACA_ROWS))}, headers=bob.headers
    )
    assert_error(upload, 404)
    assert api.client.get("/api/datasets", headers=bob.headers).json()["total"] == 0

    for method, url, _body in reads:
        assert api.client.request(method, url, headers=operator.headers).status_code == 200, url
    assert api.client.get("/api/datasets", headers=operator.headers).json()["total"] == 1
    for method, url, body in writes[:3] + writes[4:]:
        assert_error(api.client.request(method, url, json=body, headers=operator.headers), 403, "not_owner")
    assert api.client.get(base, headers=alice.headers).json()["name"] == "Forge rows"
