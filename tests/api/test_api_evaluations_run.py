"""Evaluations end to end with the real engine on the tiny demo model: demo-tiny against a LoRA trained
here, both runs generating for real and their totals copied in; the same evaluation again costs no job;
a cancelled evaluation started again continues; a training job with an `evaluation` block gets its
before/after evaluation, whose scores show on the model version with the delta against the base."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from api_helpers import Api
from dataset_helpers import create
from evaluation_helpers import (
    create_evaluation,
    evaluation_body,
    get_evaluation,
    tiny_test_set,
    wait_evaluation,
)
from fastapi.testclient import TestClient
from job_helpers import create_job, tiny_spec, wait_for

from loraforge.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.engine_heavy]


def test_demo_tiny_against_a_trained_lora_then_cached_then_resumed(
    api: Api, client: TestClient, settings: Settings, demo_model: Path
) -> None:
    alice = api.account("alice")
    dataset = tiny_test_set(client, alice)
    job = create_job(client, alice, tiny_spec(dataset["id"], max_steps=2), start=True, name="tiny")
    wait_for(client, alice, job["id"], {"succeeded"}, timeout=300)
    tuned = f"ft:demo-tiny:lf:{job['id']}"

    body = evaluation_body(dataset["id"], models=["demo-tiny", tuned], start=True)
    created = create_evaluation(client, alice, body)
    assert [r["model"] for r in created["runs"]] == ["demo-tiny", f"{tuned}@v1"]
    done = wait_evaluation(client, alice, created["id"], {"succeeded"})
    assert done["progress"] == 1.0
    for run in done["runs"]:
        assert run["job_status"] == "succeeded" and run["cached"] is False
        assert set(run["results"]["metrics"]) >= {"exact_match", "bleu-4"}, run["results"]
        assert run["results"]["test_set"]["rows"] == 4
        samples = settings.runs_dir / str(run["job_id"]) / "samples.jsonl"
        assert len(samples.read_text(encoding="utf-8").splitlines()) == 4

    # The same evaluation again: both runs reuse their jobs, nothing is queued.
    jobs_before = client.get("/api/jobs", headers=alice.headers).json()["total"]
    again = create_evaluation(client, alice, {**body, "name": "again"})
    assert again["status"] == "succeeded" and all(r["cached"] for r in again["runs"])
    assert [r["results"] for r in again["runs"]] == [r["results"] for r in done["runs"]]
    assert client.get("/api/jobs", headers=alice.headers).json()["total"] == jobs_before

    # Cancelled (queued or mid-run), then started again: the same job continues and succeeds.
    other = create_evaluation(
        client,
        alice,
        evaluation_body(dataset["id"], generation={"max_new_tokens": 6}, start=True, name="third"),
    )
    cancelled = client.post(f"/api/evaluations/{other['id']}/cancel", headers=alice.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert get_evaluation(client, alice, other["id"])["status"] == "cancelled"
    restarted = client.post(f"/api/evaluations/{other['id']}/start", headers=alice.headers)
    assert restarted.status_code == 200, restarted.text
    finished = wait_evaluation(client, alice, other["id"], {"succeeded"})
    assert finished["runs"][0]["job_id"] == other["runs"][0]["job_id"]
    assert finished["runs"][0]["results"]["test_set"]["rows"] == 4


def test_before_after_from_a_training_job(
    api: Api, client: TestClient, settings: Settings, demo_model: Path
) -> None:
    alice = api.account("alice")
    dataset = tiny_test_set(client, alice)
    block = {
        "dataset": dataset["id"],
        "metrics": ["exact_match"],
        "generation": {"max_new_tokens": 4},
        "max_samples": 3,
    }
    job = create_job(
        client, alice, tiny_spec(dataset["id"], max_steps=2, evaluation=block), start=True, name="ba"
    )
    wait_for(client, alice, job["id"], {"succeeded"}, timeout=300)
    evaluation = None
    for _ in range(600):
        items = client.get("/api/evaluations", headers=alice.headers).json()["items"]
        evaluation = next((e for e in items if e["source_job_id"] == job["id"]), None)
        if evaluation is not None:
            break
        time.sleep(0.2)
    assert evaluation is not None, "no before/after evaluation was created"
    done = wait_evaluation(client, alice, evaluation["id"], {"succeeded"})
    base, tuned = done["runs"]
    assert base["model"] == "demo-tiny" and tuned["model"] == f"ft:demo-tiny:lf:{job['id']}@v1"
    scores = client.get(
        f"/api/models/versions/{tuned['model_version_id']}/scores", headers=alice.headers
    ).json()
    (item,) = scores["items"]
    assert item["base"]["run_id"] == base["id"]
    assert item["delta"] == {
        "exact_match": round(item["metrics"]["exact_match"] - base["results"]["metrics"]["exact_match"], 6)
    }


MMLU_CSV = (
    "问题,A,B,C,D,答案,subject\n"
    "What is 2 + 2?,3,4,5,6,B,math\n"
    "Which is a prime?,4,6,7,9,2,math\n"
    "Capital of France?,Paris,Rome,Berlin,Madrid,A,geography\n"
    "Broken row?,x,y,z,w,Z,geography\n"
).encode()


def test_multiple_choice_on_an_uploaded_question_file(api: Api, client: TestClient, demo_model: Path) -> None:
    """Chinese column names, an index answer and a refused row: the engine gets ingest's questions."""
    alice = api.account("alice")
    body = create(client, alice, "ceval.csv", MMLU_CSV)
    dataset = body["dataset"]
    assert dataset["format"] == "multiple_choice" and dataset["valid_rows"] == 3

    wrong = client.post(
        "/api/evaluations", headers=alice.headers, json=evaluation_body(dataset["id"], metrics=["bleu"])
    )
    assert wrong.status_code == 422 and "metrics" in wrong.text, wrong.text

    created = create_evaluation(
        client, alice, evaluation_body(dataset["id"], metrics=["multiple_choice"], start=True, name="mc")
    )
    done = wait_evaluation(client, alice, created["id"], {"succeeded"})
    results = done["runs"][0]["results"]
    assert results["test_set"]["questions"] == 3, results
    assert 0.0 <= results["metrics"]["multiple_choice"] <= 100.0
    assert {"multiple_choice/math", "multiple_choice/geography"} <= set(results["metrics"]), results
