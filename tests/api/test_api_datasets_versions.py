"""Preprocessing (each option, dry run), versions, rollback and compare."""

from __future__ import annotations

import json
import shutil

import pytest
from api_helpers import assert_error
from dataset_helpers import ALPACA_ROWS, create, dataset_files, jsonl

from loraforge.services.datasets import preprocessing


@pytest.fixture
def alice(api):
    return api.account("alice")


def _make(api, alice, rows):
    return create(api.client, alice, "d.jsonl", jsonl(rows))["dataset"]


def _process(api, alice, dataset, options, **extra):
    response = api.client.post(
        f"/api/datasets/{dataset['id']}/preprocess", json={"options": options, **extra}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def _rows(api, alice, dataset_id):
    body = api.client.get(
        f"/api/datasets/{dataset_id}/preview", params={"page_size": 100}, headers=alice.headers
    )
    return body.json()["items"]


def _row(instruction, output="ok"):
    return {"instruction": instruction, "input": "", "output": output}


def test_clean_text(api, alice):
    dataset = _make(
        api, alice, [_row("<p>Hello&nbsp;<b>world</b></p>\x07  \t again", "ｆｕｌｌ　width\n\n\n\nend")]
    )
    result = _process(api, alice, dataset, {"clean_text": True})
    assert result["report"] == {"original_rows": 1, "processed_rows": 1, "removed": {}}
    [row] = _rows(api, alice, dataset["id"])
    assert row["prompt"][0]["content"] == "Hello world again"
    assert row["response"][0]["content"] == "full width\n\nend"
    assert result["version"]["number"] == 2 and result["version"]["recipe"]["kind"] == "preprocess"
    assert result["version"]["recipe"]["options"]["clean_text"] is True
    assert result["dataset"]["current_version"] == 2


def test_remove_stopwords_english_and_chinese(api, alice):
    dataset = _make(api, alice, [_row("What is the capital of France", "我们的首都是巴黎")])
    _process(api, alice, dataset, {"remove_stopwords": True})
    [row] = _rows(api, alice, dataset["id"])
    assert row["prompt"][0]["content"] == "capital France"
    assert row["response"][0]["content"] == "首都是巴黎"
    only_en = _make(api, alice, [_row("the cat", "我们")])
    _process(api, alice, only_en, {"remove_stopwords": ["en"]})
    [row] = _rows(api, alice, only_en["id"])
    assert (row["prompt"][0]["content"], row["response"][0]["content"]) == ("cat", "我们")


def test_tokenize_with_a_local_tokenizer(api, alice, settings, demo_model_cache):
    # A real copy, not a link: the server only reads tokenizers that live inside its data dir.
    (settings.data_dir / "models" / "demo-tiny").mkdir(parents=True)
    shutil.copy(demo_model_cache / "tokenizer.json", settings.data_dir / "models" / "demo-tiny")
    dataset = _make(api, alice, ALPACA_ROWS[:3])
    result = _process(api, alice, dataset, {"tokenize": True, "tokenizer": "demo-tiny"})
    assert result["report"]["tokens"] > 0
    row = _rows(api, alice, dataset["id"])[0]
    assert len(row["token_ids"]) == 2 and all(isinstance(i, int) for i in row["token_ids"][0])
    missing = api.client.post(
        f"/api/datasets/{dataset['id']}/preprocess",
        json={"options": {"tokenize": True}},
        headers=alice.headers,
    )
    assert_error(missing, 422, field="body.options.tokenizer")


def test_dedupe_exact_and_normalized(api, alice):
    rows = [_row("Hello world"), _row("Hello world"), _row("hello,  WORLD!"), _row("other")]
    dataset = _make(api, alice, rows)
    exact = _process(api, alice, dataset, {"dedupe": "exact"}, dry_run=True)
    assert exact["report"]["removed"] == {"duplicate_exact": 1}
    both = _process(api, alice, dataset, {"dedupe": True})
    assert both["report"] == {
        "original_rows": 4,
        "processed_rows": 2,
        "removed": {"duplicate_exact": 1, "duplicate_normalized": 1},
    }


def test_min_and_max_length(api, alice):
    dataset = _make(api, alice, [_row("a", "b"), _row("medium question", "answer"), _row("x" * 500, "y")])
    result = _process(api, alice, dataset, {"min_length": 10, "max_length": 100})
    assert result["report"]["removed"] == {"too_short": 1, "too_long": 1}
    assert result["report"]["processed_rows"] == 1
    tokens = _process(
        api, alice, dataset, {"min_length": 3, "length_unit": "tokens"}, dry_run=True,
        version_id=dataset["current_version_id"],
    )  # fmt: skip
    assert tokens["report"]["removed"] == {"too_short": 1}


def test_drop_empty(api, alice):
    dataset = _make(api, alice, [_row("q1", ""), _row("q2", "a2"), _row("q3", "   ")])
    result = _process(api, alice, dataset, {"drop_empty": True})
    assert result["report"]["removed"] == {"empty": 2}


def test_mask_pii(api, alice):
    text = "Mail jane.doe@example.com or call +1 415-555-2671; ID 11010519491231002X, SSN 123-45-6789."
    dataset = _make(api, alice, [_row(text)])
    _process(api, alice, dataset, {"mask_pii": True})
    content = _rows(api, alice, dataset["id"])[0]["prompt"][0]["content"]
    assert content == "Mail [EMAIL] or call [PHONE]; ID [ID], SSN [ID]."


def test_split_is_seeded_and_exact(api, alice):
    dataset = _make(api, alice, ALPACA_ROWS)
    result = _process(api, alice, dataset, {"split": {"val_ratio": 0.2, "seed": 7}})
    assert result["report"]["splits"] == {"train": 24, "validation": 6}
    first = [r["row"] for r in _rows(api, alice, dataset["id"]) if r["split"] == "validation"]
    again = _make(api, alice, ALPACA_ROWS)
    _process(api, alice, again, {"split": {"val_ratio": 0.2, "seed": 7}})
    assert [r["row"] for r in _rows(api, alice, again["id"]) if r["split"] == "validation"] == first
    stats = api.client.get(f"/api/datasets/{dataset['id']}/stats", headers=alice.headers).json()
    assert stats["splits"] == {"train": 24, "validation": 6}


def test_dry_run_shows_before_and_after_and_creates_nothing(api, alice, settings):
    dataset = _make(api, alice, [_row("<i>x</i> mail a@b.co", "a")] * 3 + ALPACA_ROWS[:5])
    files_before = sorted(dataset_files(settings.data_dir))
    result = _process(
        api,
        alice,
        dataset,
        {"clean_text": True, "mask_pii": True, "dedupe": True},
        dry_run=True,
        dry_run_rows=4,
    )
    assert result["dry_run"] is True and result["version"] is None and result["dataset"] is None
    assert len(result["samples"]) == 4
    first = result["samples"][0]
    assert first["before"]["prompt"][0]["content"] == "<i>x</i> mail a@b.co"
    assert first["after"]["prompt"][0]["content"] == "x mail [EMAIL]"
    assert result["samples"][1]["after"] is None and result["samples"][1]["removed"] == "duplicate_exact"
    # The counts are for all 8 rows, not for the 4 shown.
    assert result["report"] == {"original_rows": 8, "processed_rows": 6, "removed": {"duplicate_exact": 2}}
    versions = api.client.get(f"/api/datasets/{dataset['id']}/versions", headers=alice.headers).json()
    assert len(versions) == 1
    assert sorted(dataset_files(settings.data_dir)) == files_before
    assert api.audit(api.admin(), action="dataset.preprocessed") == []


def test_dry_run_counts_are_the_real_run_counts(api, alice, monkeypatch):
    # Duplicates far from what they repeat (rows 51, 52 and 55), too short and too long rows: 10 rows
    # are shown, but the counts must be those of the real run over all 60.
    rows = [_row(f"question {i}", f"answer {i}") for i in range(1, 51)]
    rows += [rows[2], rows[40], _row("q", "a"), _row("q" * 300), _row("Question  7!", "ANSWER 7")]
    rows += [_row(f"late question {i}", "fine") for i in range(5)]
    dataset = _make(api, alice, rows)
    options = {"dedupe": True, "min_length": 5, "max_length": 200, "split": {"val_ratio": 0.1, "seed": 3}}
    dry = _process(api, alice, dataset, options, dry_run=True, dry_run_rows=10)
    assert len(dry["samples"]) == 10
    real = _process(api, alice, dataset, options)
    removed = {"duplicate_exact": 2, "duplicate_normalized": 1, "too_short": 1, "too_long": 1}
    assert (
        dry["report"]
        == real["report"]
        == {
            "original_rows": 60,
            "processed_rows": 55,
            "removed": removed,
            "splits": {"train": 49, "validation": 6},
        }
    )
    assert dry["estimate"] == {
        "rows_in": 60,
        "rows_out": 55,
        "removed": removed,
        "sample_rows": 60,
        "extrapolated": False,
    }
    assert real["estimate"] is None

    # Past the scan limit the dry run says it extrapolated from the first rows, and from which.
    monkeypatch.setattr(preprocessing, "DRY_RUN_SCAN_ROWS", 30)
    v1 = api.client.get(f"/api/datasets/{dataset['id']}/versions", headers=alice.headers).json()[-1]
    # "question N\nanswer N" is 19 characters up to N = 9: 21 of the first 30 rows are too long.
    scaled = _process(
        api, alice, dataset, {"max_length": 19}, dry_run=True, dry_run_rows=5, version_id=v1["id"]
    )
    assert scaled["estimate"] == {
        "rows_in": 60, "rows_out": 18, "removed": {"too_long": 42}, "sample_rows": 30, "extrapolated": True,
    }  # fmt: skip
    assert scaled["report"] == {"original_rows": 60, "processed_rows": 18, "removed": {"too_long": 42}}


def test_preprocess_removing_everything_creates_nothing(api, alice):
    dataset = _make(api, alice, ALPACA_ROWS[:3])
    response = api.client.post(
        f"/api/datasets/{dataset['id']}/preprocess",
        json={"options": {"min_length": 10_000}},
        headers=alice.headers,
    )
    assert_error(response, 422, "no_rows_left")
    assert len(api.client.get(f"/api/datasets/{dataset['id']}/versions", headers=alice.headers).json()) == 1


def test_versions_rollback_and_compare(api, alice, settings):
    rows = [_row(f"question {i}", f"answer {i}") for i in range(1, 11)] + [_row("question 1", "answer 1")]
    dataset = _make(api, alice, rows)
    v1 = api.client.get(f"/api/datasets/{dataset['id']}/versions", headers=alice.headers).json()[0]
    assert (v1["number"], v1["parent_id"], v1["author_username"]) == (1, None, "alice")
    assert len(v1["sha256"]) == 64 and v1["recipe"]["kind"] == "upload"

    v2 = _process(api, alice, dataset, {"dedupe": True, "max_length": 30}, message="dedupe")["version"]
    assert (v2["number"], v2["parent_id"], v2["message"], v2["rows"]) == (2, v1["id"], "dedupe", 10)
    v3 = _process(api, alice, dataset, {"mask_pii": False, "clean_text": True, "remove_stopwords": ["en"]})[
        "version"
    ]
    assert v3["number"] == 3

    compare = api.client.get(
        f"/api/datasets/{dataset['id']}/compare", params={"a": v1["id"], "b": v2["id"]}, headers=alice.headers
    ).json()
    assert (compare["added"], compare["removed"], compare["changed"], compare["unchanged"]) == (0, 1, 0, 10)
    assert compare["samples"]["removed"][0]["row"] == 11
    changed = api.client.get(
        f"/api/datasets/{dataset['id']}/compare", params={"a": v2["id"], "b": v3["id"]}, headers=alice.headers
    ).json()
    assert changed["changed"] == 0  # "question N" / "answer N" hold no English stopwords

    rollback = api.client.post(
        f"/api/datasets/versions/{v1['id']}/rollback", json={"message": "back"}, headers=alice.headers
    )
    assert rollback.status_code == 201, rollback.text
    v4 = rollback.json()["version"]
    assert (v4["number"], v4["parent_id"], v4["sha256"], v4["rows"]) == (4, v3["id"], v1["sha256"], 11)
    assert v4["recipe"] == {"kind": "rollback", "of_version": 1, "of_version_id": v1["id"]}
    assert rollback.json()["dataset"]["current_version"] == 4
    assert len(_rows(api, alice, dataset["id"])) == 11
    original = api.client.get(f"/api/datasets/{dataset['id']}/download", headers=alice.headers)
    assert original.content == jsonl(rows)

    listed = api.client.get(f"/api/datasets/{dataset['id']}/versions", headers=alice.headers).json()
    assert [v["number"] for v in listed] == [4, 3, 2, 1]
    got = api.client.get(f"/api/datasets/versions/{v2['id']}", headers=alice.headers).json()
    assert got["recipe"]["options"]["dedupe"] is True and got["recipe"]["from_version"] == 1
    old = api.client.get(
        f"/api/datasets/{dataset['id']}/preview",
        params={"version": v2["id"], "page_size": 100},
        headers=alice.headers,
    ).json()
    assert len(old["items"]) == 10 and old["version_id"] == v2["id"]
    no_original = api.client.get(
        f"/api/datasets/{dataset['id']}/download", params={"version": v2["id"]}, headers=alice.headers
    )
    assert_error(no_original, 404, "no_original")

    actions = [e["action"] for e in api.audit(api.admin(), action="dataset.")]
    assert actions == [
        "dataset.rolled_back",
        "dataset.preprocessed",
        "dataset.preprocessed",
        "dataset.created",
    ]


def test_new_version_from_an_upload_and_compare_changed_rows(api, alice):
    dataset = _make(api, alice, ALPACA_ROWS[:5])
    changed = [*ALPACA_ROWS[:2], _row("changed"), *ALPACA_ROWS[3:5], *ALPACA_ROWS[5:7]]
    response = api.client.post(
        f"/api/datasets/{dataset['id']}/versions",
        files={"file": ("v2.jsonl", jsonl(changed))},
        data={"message": "second upload"},
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    v2 = response.json()["version"]
    assert v2["number"] == 2 and v2["message"] == "second upload"
    v1_id = v2["parent_id"]
    body = api.client.get(
        f"/api/datasets/{dataset['id']}/compare", params={"a": v1_id, "b": v2["id"]}, headers=alice.headers
    ).json()
    assert (body["added"], body["removed"], body["changed"]) == (2, 0, 1)
    sample = body["samples"]["changed"][0]
    assert sample["row"] == 3 and sample["after"]["prompt"][0]["content"] == "changed"
    assert sample["before"]["prompt"][0]["content"] == "Question number 3?"
    assert json.dumps(body["samples"]["added"])
