"""The LLM judge and provider models through /api/evaluations with the real engine: a second builtin
inference worker on 127.0.0.1 serves the demo model as a provider (the operator allows loopback), and

- demo-tiny scored by that provider's model as a single-mode judge (`judge_score` /
  `judge_unparseable` totals, a verdict on every sample);
- demo-tiny against the provider model itself (generated over HTTP, with its speed figures), then
  judged pairwise by the provider: the judging job runs after both runs and fills `judge_results`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api
from evaluation_helpers import create_evaluation, evaluation_body, tiny_test_set, wait_evaluation
from fastapi.testclient import TestClient
from openai_live import Worker

from loraforge.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.engine_heavy]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The provider is a model server on loopback: the operator allows that address.
    return settings.model_copy(update={"outbound_allow": "127.0.0.1"})


@pytest.fixture(scope="module")
def worker(demo_model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """`python -m loraforge.inference.worker` serving the demo model as `demo`; stopped by its PID."""
    with Worker({"demo": demo_model_cache}, tmp_path_factory.mktemp("worker")) as running:
        yield running


def _provider(client: TestClient, account: Account, worker: Worker) -> str:
    """A provider of `account` backed by the worker (its token as the key); returns `<provider>/<model>`."""
    created = client.post(
        "/api/providers",
        json={"name": "local", "base_url": worker.url, "api_key": worker.token},
        headers=account.headers,
    )
    assert created.status_code == 201, created.text
    refreshed = client.post(f"/api/providers/{created.json()['id']}/refresh-models", headers=account.headers)
    assert refreshed.status_code == 200 and refreshed.json()["models"] == ["demo"], refreshed.text
    return "local/demo"


def _samples(client: TestClient, account: Account, evaluation_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/evaluations/{evaluation_id}/samples", headers=account.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_provider_model_judges_every_answer(
    api: Api, client: TestClient, settings: Settings, demo_model: Path, worker: Worker
) -> None:
    alice = api.account("alice")
    judge_model = _provider(client, alice, worker)
    dataset = tiny_test_set(client, alice)
    body = evaluation_body(
        dataset["id"], metrics=["exact_match", "judge"], judge={"model": judge_model, "mode": "single"},
        start=True,
    )  # fmt: skip
    created = create_evaluation(client, alice, body)
    assert created["judge"] == {"model": judge_model, "mode": "single", "prompt": None}
    done = wait_evaluation(client, alice, created["id"], {"succeeded"})

    (run,) = done["runs"]
    metrics = run["results"]["metrics"]
    assert "exact_match" in metrics and "judge_unparseable" in metrics, metrics
    items = _samples(client, alice, created["id"])
    assert len(items) == 4
    verdicts = [item["answers"][0]["judge"] for item in items]
    assert all(isinstance(v, dict) and isinstance(v["reason"], str) for v in verdicts), verdicts
    parsed = [v["score"] for v in verdicts if v["score"] is not None]
    assert metrics["judge_unparseable"] == len(verdicts) - len(parsed)
    # A verdict the judge's text did not yield a score for counts as unparseable, not as a score.
    assert ("judge_score" in metrics) == bool(parsed), metrics
    assert all(1.0 <= score <= 10.0 for score in parsed)
    assert done["judge_job_id"] is None and done["judge_results"] is None


def test_a_provider_model_evaluated_then_judged_pairwise(
    api: Api, client: TestClient, settings: Settings, demo_model: Path, worker: Worker
) -> None:
    alice = api.account("alice")
    provider_model = _provider(client, alice, worker)
    dataset = tiny_test_set(client, alice)
    body = evaluation_body(
        dataset["id"], models=["demo-tiny", provider_model], metrics=["exact_match", "bleu"],
        judge={"model": provider_model, "mode": "pairwise"}, start=True,
    )  # fmt: skip
    created = create_evaluation(client, alice, body)
    assert [r["model_kind"] for r in created["runs"]] == ["demo", "provider"]
    done = wait_evaluation(client, alice, created["id"], {"succeeded"})

    local, remote = done["runs"]
    for run in (local, remote):
        assert run["job_status"] == "succeeded" and run["results"]["test_set"]["rows"] == 4, run
        assert {"exact_match", "bleu-4"} <= set(run["results"]["metrics"]), run
    # The provider model generated over HTTP: its own timing and the worker's token counts.
    speed = remote["results"]["speed"]
    assert speed["runtime_s"] > 0 and speed["latency_p50_s"] > 0, speed
    assert speed["completion_tokens"] >= 1, speed
    answers = [item["answers"][1] for item in _samples(client, alice, created["id"])]
    assert all(a["model"] == provider_model and isinstance(a["completion_tokens"], int) for a in answers)

    # The judging job came after both runs and succeeded; its verdicts are the evaluation's.
    judge_job = client.get(f"/api/jobs/{done['judge_job_id']}", headers=alice.headers).json()
    assert judge_job["status"] == "succeeded" and judge_job["name"] == "eval: sums · judge"
    run_jobs = [client.get(f"/api/jobs/{r['job_id']}", headers=alice.headers).json() for r in done["runs"]]
    assert all(judge_job["id"] > job["id"] for job in run_jobs)
    assert judge_job["started_at"] >= max(job["finished_at"] for job in run_jobs)
    results = done["judge_results"]
    assert results["baseline"] == "demo-tiny", results
    (versus,) = results["vs"]
    assert versus["model"] == provider_model
    assert versus["n"] + versus["unparseable"] == 4
    rates = versus["win"] + versus["tie"] + versus["loss"]
    assert versus["n"] == 0 or rates == pytest.approx(100), versus
