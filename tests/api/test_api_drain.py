"""Draining the local node with real engine subprocesses on the tiny demo model: `finish` lets the running
job end and then reads `drained`; `now` stops the job at a checkpoint and re-queues it, where it waits
while the only node is drained and resumes from that checkpoint once it is undrained (one curve)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api
from job_helpers import create_job, get_job, sample_dataset, tiny_spec, wait_for

pytestmark = pytest.mark.slow

NOW_STEPS = 30


def _local_node(api: Api, who: Account) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        local = [
            n
            for n in api.client.get("/api/nodes", headers=who.headers).json()["items"]
            if n["kind"] == "local"
        ]
        if local:
            return local[0]
        time.sleep(0.1)
    raise AssertionError("the local node was never listed")


def _node_status(api: Api, who: Account, node_id: int, wanted: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    node: dict[str, Any] = {}
    while time.monotonic() < deadline:
        node = api.client.get(f"/api/nodes/{node_id}", headers=who.headers).json()
        if node["status"] == wanted:
            return node
        time.sleep(0.1)
    raise AssertionError(f"node still {node.get('status')}, expected {wanted}")


def _first_metric(api: Api, who: Account, job_id: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        events = api.client.get(f"/api/jobs/{job_id}/events", headers=who.headers).json()["items"]
        if any(e["type"] == "metric" for e in events):
            return
        time.sleep(0.1)
    raise AssertionError("the job never logged a metric")


def test_drain_finish_lets_the_running_job_end_and_holds_new_ones(api: Api, demo_model: Path):
    alice, bob, olga = api.account("alice"), api.account("bob"), api.account("olga", role="operator")
    node = _local_node(api, olga)
    dataset = sample_dataset(api.client, alice)["id"]
    running = create_job(api.client, alice, tiny_spec(dataset, max_steps=12), start=True)["id"]
    wait_for(api.client, alice, running, {"running"})

    response = api.client.post(
        f"/api/nodes/{node['id']}/drain", json={"mode": "finish"}, headers=olga.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "draining"
    assert [j["id"] for j in response.json()["jobs"]] == [running]
    bobs = create_job(
        api.client, bob, tiny_spec(sample_dataset(api.client, bob)["id"], max_steps=2), start=True
    )

    assert wait_for(api.client, alice, running, {"succeeded"})["progress"] == 1.0
    drained = _node_status(api, olga, node["id"], "drained")
    assert drained["jobs"] == [] and drained["drain_mode"] == "finish"
    # Ticks have run since the node was drained (its status moves on a tick): the new job waited.
    assert get_job(api.client, bob, bobs["id"])["status"] == "queued"

    assert api.client.post(f"/api/nodes/{node['id']}/undrain", headers=olga.headers).status_code == 200
    wait_for(api.client, bob, bobs["id"], {"succeeded"})


def test_drain_now_requeues_the_job_which_resumes_after_undrain(api: Api, demo_model: Path):
    alice, olga, admin = api.account("alice"), api.account("olga", role="operator"), api.admin()
    node = _local_node(api, olga)
    dataset = sample_dataset(api.client, alice)["id"]
    spec = tiny_spec(dataset, max_steps=NOW_STEPS, save_strategy="steps", save_steps=5)
    job_id = create_job(api.client, alice, spec, start=True)["id"]
    wait_for(api.client, alice, job_id, {"running"})
    _first_metric(api, alice, job_id)

    response = api.client.post(f"/api/nodes/{node['id']}/drain", json={"mode": "now"}, headers=olga.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "draining"  # the job is still stopping there
    assert get_job(api.client, alice, job_id)["status"] in {"stopping", "stopped", "queued"}

    # Stopped at a checkpoint, then back in the queue as its next attempt by itself.
    deadline = time.monotonic() + 120
    job = get_job(api.client, alice, job_id)
    while not (job["status"] == "queued" and job["attempt"] == 2) and time.monotonic() < deadline:
        assert job["status"] in {"running", "stopping", "stopped", "queued"}, job
        time.sleep(0.1)
        job = get_job(api.client, alice, job_id)
    assert job["status"] == "queued" and job["attempt"] == 2, job
    checkpoint = job["resume_from"]
    assert checkpoint and checkpoint.startswith("checkpoint-")
    notes = api.client.get("/api/notifications", headers=alice.headers).json()["items"]
    stopped_note = next(n for n in notes if n["kind"] == "job.stopped")
    assert stopped_note["body"].startswith("Moved off its node at step")

    # The only node is drained: the job waits there (ticks run: the node turned drained on one).
    _node_status(api, olga, node["id"], "drained")
    assert get_job(api.client, alice, job_id)["status"] == "queued"

    assert api.client.post(f"/api/nodes/{node['id']}/undrain", headers=olga.headers).status_code == 200
    done = wait_for(api.client, alice, job_id, {"succeeded"}, timeout=180)
    assert done["attempt"] == 2 and done["progress"] == 1.0
    metrics = api.client.get(
        f"/api/jobs/{job_id}/metrics", params={"downsample": 5000}, headers=alice.headers
    )
    assert [p["step"] for p in metrics.json()["points"]] == list(range(1, NOW_STEPS + 1))

    drained = api.audit(admin, action="node.drained")
    assert drained[0]["details"]["mode"] == "now" and drained[0]["details"]["jobs"] == [job_id]
    migrated = api.audit(admin, action="job.migrated")
    assert [(e["actor_username"], e["target_id"], e["details"]["step"]) for e in migrated] == [
        (None, str(job_id), "requeued")
    ]
    assert migrated[0]["details"]["checkpoint"] == checkpoint
    assert migrated[0]["details"]["from_node"] == node["id"]
