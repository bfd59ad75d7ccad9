"""Placement, drain and migrate through the REST API, without engines: the scheduler is ticked by the
test with an executor that records what it was asked to launch (and where). Ray nodes are rows as the
Ray node sync writes them; a real two-node Ray cluster is `test_api_drain_ray.py`."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from job_helpers import HUB_MODEL, RecordingExecutor, create_job, get_job, sample_dataset, tiny_spec
from sqlalchemy import update

from loraforge.db.base import utcnow
from loraforge.db.models import Job, Node
from loraforge.db.session import Database
from loraforge.executors.base import ProcessRef
from loraforge.services.jobs.scheduler import Scheduler
from loraforge.settings import Settings


class RayRecordingExecutor(RecordingExecutor):
    """Records the node each job was pinned to, as the Ray executor would pass it to Ray."""

    name = "ray"

    def __init__(self) -> None:
        super().__init__()
        self.nodes: dict[int, str | None] = {}

    def launch(
        self, *, job_id: int, run_dir: Path, env: dict[str, str], num_gpus: int = 0, node: str | None = None
    ) -> ProcessRef:
        self.nodes[job_id] = node
        return super().launch(job_id=job_id, run_dir=run_dir, env=env, num_gpus=num_gpus)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.scheduler_enabled = False  # the test ticks
    settings.max_running_jobs = 20
    settings.max_running_jobs_per_user = 20
    settings.gpu_count = 1
    return settings


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.sqlalchemy_url)
    yield db
    db.dispose()


def _local_node(api: Api, who: Account) -> dict[str, Any]:
    """The server's own node, listed once the operations loop's first round has run."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = api.client.get("/api/nodes", headers=who.headers).json()["items"]
        local = [n for n in items if n["kind"] == "local"]
        if local:
            return local[0]
        time.sleep(0.1)
    raise AssertionError("the local node was never listed")


def _ray_node(database: Database, name: str, *, gpus: int = 0) -> tuple[int, str]:
    """A Ray node row as the node sync writes it (reporting now, ready)."""
    external = secrets.token_hex(28)
    with database.session() as session:
        node = Node(
            name=name, kind="ray", external_id=external, status="ready", health=[], last_seen_at=utcnow(),
            info={"cpus": 2, "gpus": [{"index": i} for i in range(gpus)], "labels": {}},
        )  # fmt: skip
        session.add(node)
        session.commit()
        return node.id, external


def _job_row(database: Database, job_id: int) -> Job:
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _cpu_job(api: Api, who: Account, dataset: int, name: str) -> int:
    spec = tiny_spec(dataset, model_name_or_path=HUB_MODEL, devices="cpu")
    return int(create_job(api.client, who, spec, start=True, name=name)["id"])


def test_ray_placement_spreads_jobs_and_honours_drain_exclusions_and_gpus(
    api: Api, settings: Settings, database: Database
):
    alice, olga = api.account("alice"), api.account("olga", role="operator")
    dataset = sample_dataset(api.client, alice)["id"]
    executor = RayRecordingExecutor()
    scheduler = Scheduler(settings, database, executor)

    # No Ray node known yet (the node sync has not run): launched unpinned, as before nodes existed.
    first = _cpu_job(api, alice, dataset, "unpinned")
    scheduler.tick()
    assert executor.nodes[first] is None and _job_row(database, first).node_id is None

    (a, a_ext), (b, b_ext) = _ray_node(database, "a"), _ray_node(database, "b")
    gpu_node, gpu_ext = _ray_node(database, "g", gpus=1)
    jobs = [_cpu_job(api, alice, dataset, f"cpu{i}") for i in range(4)]
    wants_gpu = create_job(
        api.client, alice, tiny_spec(dataset, model_name_or_path=HUB_MODEL, devices="auto"), start=True
    )["id"]
    scheduler.tick()
    # The least busy node each time (ties: the lowest id); the GPU job only fits the node with a GPU.
    assert [executor.nodes[j] for j in jobs] == [a_ext, b_ext, gpu_ext, a_ext]
    assert executor.nodes[wants_gpu] == gpu_ext and executor.num_gpus[wants_gpu] == 1
    assert [_job_row(database, j).node_id for j in jobs] == [a, b, gpu_node, a]

    # A drained node gets nothing new; the job goes to the least busy of the others.
    response = api.client.post(f"/api/nodes/{b}/drain", json={"mode": "finish"}, headers=olga.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "draining" and response.json()["drain_mode"] == "finish"
    after_drain = _cpu_job(api, alice, dataset, "after drain")
    scheduler.tick()
    assert executor.nodes[after_drain] == a_ext

    # Excluded from the only other ready nodes: it waits; undraining a node it may use lets it start.
    waiting = _cpu_job(api, alice, dataset, "excluded")
    with database.session() as session:
        session.execute(update(Job).where(Job.id == waiting).values(excluded_nodes=[a, gpu_node]))
        session.commit()
    scheduler.tick()
    assert waiting not in executor.launched and get_job(api.client, alice, waiting)["status"] == "queued"
    response = api.client.post(f"/api/nodes/{b}/undrain", headers=olga.headers)
    assert response.status_code == 200 and response.json()["drain_mode"] is None
    scheduler.tick()
    assert executor.nodes[waiting] == b_ext and _job_row(database, waiting).node_id == b

    # Every node lost (no report for long): nothing is placed, nothing launched unpinned either.
    with database.session() as session:
        session.execute(update(Node).where(Node.kind == "ray").values(status="lost", last_seen_at=None))
        session.commit()
    stuck = _cpu_job(api, alice, dataset, "no node")
    scheduler.tick()
    assert stuck not in executor.launched


def test_a_drained_local_node_holds_the_queue_until_undrained(
    api: Api, settings: Settings, database: Database
):
    alice, olga = api.account("alice"), api.account("olga", role="operator")
    dataset = sample_dataset(api.client, alice)["id"]
    node = _local_node(api, alice)
    executor = RecordingExecutor()
    scheduler = Scheduler(settings, database, executor)

    response = api.client.post(
        f"/api/nodes/{node['id']}/drain", json={"mode": "finish"}, headers=olga.headers
    )
    assert response.status_code == 200, response.text
    drained = response.json()
    assert drained["status"] == "drained" and drained["schedulable"] is False and drained["drained_at"]
    job = _cpu_job(api, alice, dataset, "waits")
    scheduler.tick()
    assert executor.launched == [] and get_job(api.client, alice, job)["status"] == "queued"

    response = api.client.post(f"/api/nodes/{node['id']}/undrain", headers=olga.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready" and response.json()["drained_at"] is None
    scheduler.tick()
    assert executor.launched == [job] and _job_row(database, job).node_id == node["id"]
    listed = api.client.get(f"/api/nodes/{node['id']}", headers=alice.headers).json()
    assert [j["id"] for j in listed["jobs"]] == [job]


def test_node_actions_roles_errors_and_audit(api: Api, settings: Settings, database: Database):
    alice, bob = api.account("alice"), api.account("bob")
    olga, admin = api.account("olga", role="operator"), api.admin()
    dataset = sample_dataset(api.client, alice)["id"]
    node = _local_node(api, alice)
    drain_url, undrain_url = f"/api/nodes/{node['id']}/drain", f"/api/nodes/{node['id']}/undrain"

    # Researchers may read nodes but not drain them; staff may.
    assert_error(api.client.post(drain_url, json={"mode": "now"}, headers=alice.headers), 403, "forbidden")
    assert_error(api.client.post(undrain_url, headers=alice.headers), 403, "forbidden")
    assert_error(
        api.client.post(drain_url, json={"mode": "later"}, headers=olga.headers), 422, field="body.mode"
    )
    assert_error(api.client.post("/api/nodes/987654/drain", headers=olga.headers), 404, "node_not_found")
    assert_error(api.client.post(undrain_url, headers=olga.headers), 409, "node_not_drained")
    response = api.client.post(drain_url, headers=admin.headers)  # no body: mode finish
    assert response.status_code == 200 and response.json()["drain_mode"] == "finish"
    response = api.client.post(drain_url, json={"mode": "now"}, headers=olga.headers)  # a mode change
    assert response.status_code == 200 and response.json()["drain_mode"] == "now"
    assert api.client.post(undrain_url, headers=olga.headers).status_code == 200

    # Migrate: the owner or staff; a stranger learns nothing; only a running job; one node: refused.
    job = _cpu_job(api, alice, dataset, "mine")
    migrate = f"/api/jobs/{job}/migrate"
    assert_error(api.client.post(migrate, headers=bob.headers), 404, "job_not_found")
    assert_error(api.client.post(migrate, headers=alice.headers), 409, "invalid_transition")
    Scheduler(settings, database, RecordingExecutor()).tick()
    assert get_job(api.client, alice, job)["status"] == "starting"
    assert_error(api.client.post(migrate, headers=bob.headers), 404, "job_not_found")
    for who in (alice, olga):
        assert_error(api.client.post(migrate, headers=who.headers), 409, "no_other_node")
    assert get_job(api.client, alice, job)["status"] == "starting"
    assert_error(api.client.post("/api/jobs/987654/migrate", headers=alice.headers), 404, "job_not_found")

    drained = api.audit(admin, action="node.drained")
    assert [(e["actor_username"], e["details"]["mode"]) for e in drained] == [
        ("olga", "now"),
        ("admin", "finish"),
    ]
    assert all(e["target_type"] == "node" and e["target_id"] == str(node["id"]) for e in drained)
    undrained = api.audit(admin, action="node.undrained")
    assert [(e["actor_username"], e["details"]["previous_mode"]) for e in undrained] == [("olga", "now")]
    assert api.audit(admin, action="job.migrated") == []
