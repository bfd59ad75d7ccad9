"""A multiple-choice CSV through the real upload route: detected, bad rows named, and refused for training."""

from __future__ import annotations

import pytest
from api_helpers import assert_error
from dataset_helpers import ALPACA_ROWS, create, jsonl
from job_helpers import tiny_spec

MMLU_CSV = (
    b"question,A,B,C,D,answer,subject\n"
    b"What is 2 + 2?,3,4,5,6,B,math\n"
    b"Which is a prime?,4,6,7,9,2,math\n"
    b"Capital of France?,Paris,Rome,Berlin,Madrid,Z,geography\n"
)


NOT_AN_ANSWER = "answer 'Z' is neither an option letter, a 0-based index nor an option's text"


@pytest.fixture
def alice(api):
    return api.account("alice")


def test_an_mmlu_csv_uploads_as_multiple_choice(api, alice):
    body = create(api.client, alice, "mmlu.csv", MMLU_CSV)
    dataset, version = body["dataset"], body["version"]
    assert dataset["format"] == version["format"] == "multiple_choice"
    assert version["mapping"]["formatting"] == "multiple_choice"
    assert version["mapping"]["columns"]["question"] == "question"
    assert version["mapping"]["columns"]["A"] == "A" and version["mapping"]["columns"]["D"] == "D"
    assert dataset["valid_rows"] == 2 and dataset["invalid_rows"] == 1
    assert dataset["errors"] == [
        {"row": 3, "field": "answer", "message": NOT_AN_ANSWER},
    ]
    assert dataset["detection"]["votes"] == {"multiple_choice": 3}

    page = api.client.get(f"/api/datasets/{dataset['id']}/preview", headers=alice.headers)
    assert page.status_code == 200, page.text
    first = page.json()["items"][0]  # the question as the prompt, the letter as the answer
    assert first["prompt"][0]["content"].startswith("What is 2 + 2?\nA. 3\nB. 4")
    assert first["response"] == [{"role": "assistant", "content": "B"}]
    assert first["choice"] == {"question": "What is 2 + 2?", "options": ["3", "4", "5", "6"], "answer": "B",
                               "subject": "math"}  # fmt: skip
    stats = api.client.get(f"/api/datasets/{dataset['id']}/stats", headers=alice.headers)
    assert stats.status_code == 200 and stats.json()["subjects"] == {"math": 2}

    listed = api.client.get("/api/datasets?format=multiple_choice", headers=alice.headers)
    assert listed.status_code == 200 and listed.json()["total"] == 1


def test_a_multiple_choice_dataset_cannot_train(api, alice):
    questions = create(api.client, alice, "mmlu.csv", MMLU_CSV)["dataset"]
    response = api.client.post(
        "/api/jobs",
        json={"name": "j", "spec": tiny_spec(questions["id"]), "start": False},
        headers=alice.headers,
    )
    assert_error(response, 422, "invalid_spec", "body.spec.dataset")
    assert "multiple-choice" in response.json()["error"]["message"]

    alpaca = create(api.client, alice, "a.jsonl", jsonl(ALPACA_ROWS))["dataset"]
    spec = tiny_spec(alpaca["id"], validation_dataset=questions["id"])
    response = api.client.post(
        "/api/jobs", json={"name": "j", "spec": spec, "start": False}, headers=alice.headers
    )
    assert_error(response, 422, "invalid_spec", "body.spec.validation_dataset")


def test_alpaca_with_an_input_column_stays_alpaca(api, alice):
    rows = [{"instruction": "Pick", "input": "A or B", "output": "A"} for _ in range(3)]
    assert create(api.client, alice, "a.jsonl", jsonl(rows))["dataset"]["format"] == "alpaca"


def test_the_format_override_accepts_multiple_choice(api, alice):
    body = create(api.client, alice, "q.csv", MMLU_CSV, format="multiple_choice")
    assert body["dataset"]["format"] == "multiple_choice"
    response = api.client.post(
        "/api/datasets",
        files={"file": ("a.jsonl", jsonl(ALPACA_ROWS))},
        data={"format": "multiple_choice"},
        headers=alice.headers,
    )
    assert_error(response, 422, "unknown_format")
