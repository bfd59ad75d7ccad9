"""Drain and migrate on a real two-node Ray cluster on 127.0.0.1 (a head and a second node joined to it,
one cluster for the module), through the REST API, with the tiny demo model.

The Ray nodes come into the `nodes` table from Ray's state API and the telemetry agent's reports (the
operations loop's Ray sync); a job is pinned to the node placement picks; draining that node `now`
stops it at a checkpoint and it resumes on the other node, its curve continuing step by step; a
migration moves it back once the first node is undrained.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from job_helpers import create_job, get_job, sample_dataset, tiny_spec, wait_for
from ray_head import RayHead, ray_head, ray_worker

from loraforge.db.models import Job, Node
from loraforge.db.session import Database
from loraforge.executors.ray_telemetry import SUBMISSION_PREFIX
from loraforge.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.engine_heavy]

RAY_TIMEOUT_S = 240.0  # a Ray job starts a worker, then the engine imports torch
NODE_LABEL = "loraforge-test-node"


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayHead]:
    with ray_head(labels={NODE_LABEL: "a"}) as head, ray_worker(head, labels={NODE_LABEL: "b"}):
        yield head


@pytest.fixture
def settings(settings: Settings, cluster: RayHead) -> Iterator[Settings]:
    yield settings.model_copy(
        update={"executor": "ray", "ray_address": cluster.address, "telemetry_interval_seconds": 1.0}
    )
    # This test's server is gone: stop the telemetry agent it submitted (it writes into its data dir).
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(cluster.address)
    for info in client.list_jobs():
        if (info.submission_id or "").startswith(SUBMISSION_PREFIX) and str(info.status.value) in {
            "PENDING",
            "RUNNING",
        }:
            client.stop_job(info.submission_id)


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.sqlalchemy_url)
    yield db
    db.dispose()


def _rows(database: Database, job_id: int) -> tuple[dict[str, Any], dict[int, str]]:
    """The job's placement columns, and Ray's node id of every `ray` node row."""
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        nodes = {n.id: n.external_id for n in session.query(Node).filter(Node.kind == "ray")}
        return {"node_id": job.node_id, "excluded": job.excluded_nodes, "submission": job.external_id}, nodes


def _ray_nodes_ready(api: Api, who: Account) -> dict[str, dict[str, Any]]:
    """The module's two Ray nodes listed `ready` with a reading from the agent, by their test label."""
    deadline = time.monotonic() + 120
    found: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        items = api.client.get("/api/nodes", headers=who.headers).json()["items"]
        found = {n["labels"].get(NODE_LABEL, "?"): n for n in items if n["kind"] == "ray"}
        found = {label: n for label, n in found.items() if label in {"a", "b"}}
        if set(found) == {"a", "b"} and all(n["status"] == "ready" and n["latest"] for n in found.values()):
            return found
        time.sleep(0.2)
    raise AssertionError(f"the Ray nodes never both reported: {found}")


def _attempt_running(api: Api, who: Account, job_id: int, attempt: int) -> dict[str, Any]:
    """The job once its `attempt` runs (it passes stopping, stopped and queued on the way)."""
    deadline = time.monotonic() + RAY_TIMEOUT_S
    job = get_job(api.client, who, job_id)
    while time.monotonic() < deadline:
        job = get_job(api.client, who, job_id)
        if job["attempt"] == attempt and job["status"] == "running":
            return job
        assert job["status"] in {"running", "stopping", "stopped", "queued", "starting"}, job
        time.sleep(0.2)
    raise AssertionError(f"attempt {attempt} never ran: {job}")


def _metric_after(api: Api, who: Account, job_id: int, step: int) -> int:
    """Wait until the job logged a metric beyond `step`; the highest step logged."""
    deadline = time.monotonic() + RAY_TIMEOUT_S
    while time.monotonic() < deadline:
        points = api.client.get(f"/api/jobs/{job_id}/metrics", headers=who.headers).json()["points"]
        steps = [p["step"] for p in points]
        if steps and max(steps) > step:
            return max(steps)
        time.sleep(0.2)
    raise AssertionError(f"no metric beyond step {step}")


def _driver_node(head: RayHead, submission_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    return str(JobSubmissionClient(head.address).get_job_info(submission_id).driver_node_id)


def test_drain_now_moves_the_job_to_the_other_node_and_migrate_moves_it_back(
    api: Api, settings: Settings, database: Database, cluster: RayHead, demo_model: Path
):
    alice, bob, olga = api.account("alice"), api.account("bob"), api.account("olga", role="operator")
    admin = api.admin()
    listed = _ray_nodes_ready(api, olga)
    for label, node in listed.items():
        assert node["address"] == "127.0.0.1" and node["cpus"] == 2 and node["gpus"] == []
        assert node["labels"]["ray.io/node-id"] and node["labels"][NODE_LABEL] == label
        assert node["latest"]["memory_total_bytes"] > 0 and node["latest"]["disk_free_bytes"] > 0

    dataset = sample_dataset(api.client, alice)["id"]
    spec = tiny_spec(dataset, max_steps=100_000, save_strategy="steps", save_steps=10)
    job_id = create_job(api.client, alice, spec, start=True, name="mover")["id"]
    _attempt_running(api, alice, job_id, 1)
    first, ray_ids = _rows(database, job_id)
    origin = first["node_id"]
    (other,) = set(ray_ids) - {origin}
    # Pinned: Ray ran it on the node placement chose.
    assert _driver_node(cluster, first["submission"]) == ray_ids[origin]
    _metric_after(api, alice, job_id, 0)

    response = api.client.post(f"/api/nodes/{origin}/drain", json={"mode": "now"}, headers=olga.headers)
    assert response.status_code == 200, response.text
    assert response.json()["drain_mode"] == "now"
    moved = _attempt_running(api, alice, job_id, 2)
    checkpoint = moved["resume_from"]
    assert checkpoint and checkpoint.startswith("checkpoint-")
    second, _ = _rows(database, job_id)
    assert second["node_id"] == other and second["excluded"] == [origin]
    assert _driver_node(cluster, second["submission"]) == ray_ids[other]
    resumed_at = int(checkpoint.removeprefix("checkpoint-"))
    _metric_after(api, alice, job_id, resumed_at)

    # Its first node is drained: nowhere else to go. Strangers learn nothing.
    assert_error(api.client.post(f"/api/jobs/{job_id}/migrate", headers=alice.headers), 409, "no_other_node")
    assert_error(api.client.post(f"/api/jobs/{job_id}/migrate", headers=bob.headers), 404, "job_not_found")
    assert api.client.post(f"/api/nodes/{origin}/undrain", headers=olga.headers).status_code == 200
    response = api.client.post(f"/api/jobs/{job_id}/migrate", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "stopping"
    back = _attempt_running(api, alice, job_id, 3)
    third, _ = _rows(database, job_id)
    assert third["node_id"] == origin and third["excluded"] == [other]
    assert _driver_node(cluster, third["submission"]) == ray_ids[origin]
    last = _metric_after(api, alice, job_id, int(back["resume_from"].removeprefix("checkpoint-")))

    assert api.client.post(f"/api/jobs/{job_id}/cancel", headers=alice.headers).status_code == 200
    wait_for(api.client, alice, job_id, {"cancelled"})
    points = api.client.get(
        f"/api/jobs/{job_id}/metrics", params={"downsample": 5000}, headers=alice.headers
    ).json()["points"]
    steps = [p["step"] for p in points]
    assert steps == list(range(1, max(steps) + 1)) and max(steps) >= last  # one curve, no step missing

    migrated = [(e["actor_username"], e["details"]["step"]) for e in api.audit(admin, action="job.migrated")]
    assert migrated == [(None, "requeued"), ("alice", "requested"), (None, "requeued")]
    drained = api.audit(admin, action="node.drained")
    assert drained[0]["details"]["jobs"] == [job_id] and drained[0]["target_id"] == str(origin)


def test_a_node_ray_reports_dead_turns_lost(api: Api, settings: Settings, cluster: RayHead):
    """A third node joins (listed once its agent reports), then stops: Ray reports it DEAD and its row
    is lost at once, whatever its last report said; the other nodes stay ready."""
    olga = api.account("olga", role="operator")
    _ray_nodes_ready(api, olga)
    with ray_worker(cluster, labels={NODE_LABEL: "c"}) as third:
        deadline = time.monotonic() + 120
        node: dict[str, Any] = {}
        while time.monotonic() < deadline and not (node.get("status") == "ready" and node.get("latest")):
            items = api.client.get("/api/nodes", headers=olga.headers).json()["items"]
            node = next((n for n in items if n["labels"].get(NODE_LABEL) == "c"), {})
            time.sleep(0.2)
        assert node.get("status") == "ready" and node["latest"], node
        third.stop()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and node["status"] != "lost":
            node = api.client.get(f"/api/nodes/{node['id']}", headers=olga.headers).json()
            time.sleep(0.2)
        assert node["status"] == "lost" and node["last_seen_at"] is None, node
    assert set(_ray_nodes_ready(api, olga)) == {"a", "b"}
