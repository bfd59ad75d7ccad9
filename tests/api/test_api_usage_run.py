"""Usage of a real run: a tiny-model job trains through the API (real scheduler, real engine subprocess,
accounting on the scheduler's tick), is stopped at a checkpoint and resumed; each attempt gets its own
`job_usage` row with wall time, CPU time, peak memory and tokens from the engine's own events."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api
from job_helpers import create_job, sample_dataset, tiny_spec, wait_for

from loraforge.db.base import utcnow

pytestmark = pytest.mark.slow


def _items_when(api: Api, who: Account, ready: Any, timeout: float = 60.0) -> list[dict[str, Any]]:
    """/api/usage/me's attempts, once `ready(items)` holds (accounting runs on the next tick)."""
    deadline = time.monotonic() + timeout
    while True:
        items: list[dict[str, Any]] = api.client.get("/api/usage/me", headers=who.headers).json()["items"]
        if ready(items) or time.monotonic() > deadline:
            return items
        time.sleep(0.2)


def _tokens_reported(api: Api, who: Account, job_id: int) -> int:
    """The trainer's token count in the job's last metric event."""
    last = 0
    after = 0
    while True:
        page = api.client.get(
            f"/api/jobs/{job_id}/events", params={"after": after}, headers=who.headers
        ).json()
        if not page["items"]:
            return last
        for event in page["items"]:
            if event["type"] == "metric" and event.get("tokens_total"):
                last = int(event["tokens_total"])
        after = page["last_seq"]


def test_a_real_run_and_its_resumed_attempt_are_accounted(api: Api, demo_model: Path):
    alice, admin = api.account("alice"), api.admin()
    prices = {"gpu_hour": 3.0, "cpu_hour": 0.25, "currency": "EUR"}
    assert api.client.put("/api/admin/usage/prices", json=prices, headers=admin.headers).status_code == 200
    dataset = sample_dataset(api.client, alice)
    spec = tiny_spec(
        dataset["id"], max_steps=30, save_strategy="steps", save_steps=5, resource_interval_seconds=0.2
    )
    job_id = create_job(api.client, alice, spec, start=True)["id"]
    wait_for(api.client, alice, job_id, {"running"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listing = api.client.get(f"/api/jobs/{job_id}/checkpoints", headers=alice.headers).json()["items"]
        if listing:
            break
        time.sleep(0.1)
    assert api.client.post(f"/api/jobs/{job_id}/stop", headers=alice.headers).status_code == 200
    stopped = wait_for(api.client, alice, job_id, {"stopped"})

    items = _items_when(api, alice, lambda got: any(i["finished_at"] for i in got))
    (first,) = items
    assert first["job_id"] == job_id and first["attempt"] == 1 and first["job_name"] == "job"
    assert first["finished_at"] == stopped["finished_at"] and first["started_at"] < first["finished_at"]
    assert first["wall_seconds"] > 0 and first["cpu_hours"] > 0
    assert first["cpu_hours"] * 3600 <= first["wall_seconds"] * (
        os.cpu_count() or 1
    )  # no core busier than busy
    assert first["peak_memory_bytes"] > 10 * 1024 * 1024  # a Python process with torch loaded
    assert first["tokens"] > 0
    assert first["gpu_count"] == 0 and first["gpu_hours"] == 0  # no GPU here: a CPU run
    assert first["cost"] == pytest.approx(0.25 * first["cpu_hours"], abs=1e-6)
    assert first["node_name"] is None or isinstance(first["node_name"], str)  # the local node, once placed

    response = api.client.post(f"/api/jobs/{job_id}/resume", json={}, headers=alice.headers)
    assert response.status_code == 200, response.text
    wait_for(api.client, alice, job_id, {"succeeded"}, timeout=180)
    items = _items_when(api, alice, lambda got: len(got) == 2 and all(i["finished_at"] for i in got))
    second, again = items  # newest first
    assert again == first  # the first attempt's row is final
    assert second["attempt"] == 2 and second["job_id"] == job_id
    assert second["started_at"] >= first["finished_at"]
    assert second["wall_seconds"] > 0 and second["cpu_hours"] > 0 and second["peak_memory_bytes"] > 0
    # The resumed trainer restores its token count from the checkpoint: the second attempt counts only
    # what it trained on, so the two attempts add up to the job's total.
    assert 0 < second["tokens"] < first["tokens"] + second["tokens"]
    assert first["tokens"] + second["tokens"] == _tokens_reported(api, alice, job_id)

    me = api.client.get("/api/usage/me", headers=alice.headers).json()
    assert me["month"] == utcnow().strftime("%Y-%m") == first["started_at"][:7]
    assert me["totals"]["jobs"] == 1 and me["totals"]["currency"] == "EUR"
    assert me["totals"]["tokens"] == first["tokens"] + second["tokens"]
    assert me["totals"]["cpu_hours"] == pytest.approx(first["cpu_hours"] + second["cpu_hours"], abs=1e-5)
    assert me["storage_bytes"] > 0  # the dataset and the run directory with its checkpoints
