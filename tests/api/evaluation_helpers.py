"""Helpers for the evaluation API tests: a tiny test set, creating evaluations, a job finished by hand."""

from __future__ import annotations

import json
import time
from typing import Any

from api_helpers import Account
from fastapi import FastAPI
from fastapi.testclient import TestClient

from loraforge.db.models import Job, JobStatus
from loraforge.services.jobs.states import transition
from loraforge.settings import Settings

TOTALS = {"exact_match": 0.5, "bleu-4": 12.5, "multiple_choice": {"accuracy": 0.25, "by_subject": {}}}


def tiny_test_set(client: TestClient, account: Account, rows: int = 6, name: str = "qa") -> dict[str, Any]:
    """A dataset of `rows` alpaca rows; returns the dataset (with `current_version_id`)."""
    lines = [
        {"instruction": f"What is {i} plus {i}?", "input": "", "output": f"{2 * i}"} for i in range(rows)
    ]
    content = "".join(json.dumps(r) + "\n" for r in lines).encode()
    response = client.post(
        "/api/datasets", files={"file": ("rows.jsonl", content)}, data={"name": name}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    dataset: dict[str, Any] = body.get("dataset", body)
    return dataset


def evaluation_body(dataset_id: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "sums",
        "models": ["demo-tiny"],
        "dataset": dataset_id,
        "metrics": ["exact_match", "bleu"],
        "generation": {"max_new_tokens": 8},
        "options": {"max_samples": 4},
        "start": False,
    }
    body.update(overrides)
    return body


def create_evaluation(client: TestClient, account: Account, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/evaluations", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    evaluation: dict[str, Any] = response.json()
    return evaluation


def get_evaluation(client: TestClient, account: Account, evaluation_id: int) -> dict[str, Any]:
    response = client.get(f"/api/evaluations/{evaluation_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    evaluation: dict[str, Any] = response.json()
    return evaluation


def finish_job_by_hand(
    app: FastAPI, settings: Settings, job_id: int, totals: dict[str, Any] | None = None
) -> None:
    """Move a queued evaluation job to succeeded and write the result files the engine would."""
    run_dir = settings.runs_dir / str(job_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    result = {"metrics": totals or TOTALS, "speed": {"tokens_per_s": 3.0}, "test_set": {"rows": 4}}
    (run_dir / "eval_results.json").write_text(json.dumps(result), encoding="utf-8")
    (run_dir / "samples.jsonl").write_text(
        json.dumps({"index": 0, "prompt": "q", "predict": "a", "label": "a"}) + "\n", encoding="utf-8"
    )
    with app.state.db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        if job.status == JobStatus.draft.value:
            transition(session, job, JobStatus.queued)
        for target in (JobStatus.starting, JobStatus.running, JobStatus.succeeded):
            transition(session, job, target)
        session.commit()


def run_sync(app: FastAPI) -> None:
    """One pass of the scheduler hooks (the evaluations' sync), as a tick runs them."""
    with app.state.db.session() as session:
        for hook in app.state.scheduler.hooks:
            hook(session)


def wait_evaluation(
    client: TestClient, account: Account, evaluation_id: int, statuses: set[str], timeout: float = 300.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    evaluation = get_evaluation(client, account, evaluation_id)
    while time.monotonic() < deadline:
        evaluation = get_evaluation(client, account, evaluation_id)
        if evaluation["status"] in statuses:
            return evaluation
        if evaluation["status"] in {"failed", "cancelled", "stopped"} - statuses:
            errors = [r["error"] for r in evaluation["runs"]]
            raise AssertionError(f"evaluation ended {evaluation['status']}: {errors}")
        time.sleep(0.2)
    raise AssertionError(f"evaluation still {evaluation['status']} after {timeout}s: {evaluation}")
