"""GPU fitting at admission. No GPU exists here: the node's inventory is `settings.gpu_count` (what an
operator sets as LORAFORGE_GPU_COUNT), and the executor records what it was asked to launch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from api_helpers import Api, assert_error
from job_helpers import HUB_MODEL, RecordingExecutor, create_job, get_job, sample_dataset, tiny_spec

from loraforge.db.session import Database
from loraforge.services.jobs import gpu_fit as gpus
from loraforge.services.jobs.scheduler import Scheduler
from loraforge.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.scheduler_enabled = False
    settings.max_running_jobs = 8
    settings.max_running_jobs_per_user = 8
    settings.gpu_count = 2
    return settings


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.sqlalchemy_url)
    yield db
    db.dispose()


def _spec(dataset_id: int, devices: Any) -> dict[str, Any]:
    return tiny_spec(dataset_id, model_name_or_path=HUB_MODEL, devices=devices)


def test_admission_hands_out_free_devices_and_later_jobs_that_fit_may_pass(
    api: Api, settings: Settings, database: Database
):
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)["id"]
    both = create_job(api.client, alice, _spec(dataset, [0, 1]), start=True, name="both")["id"]
    auto = create_job(api.client, alice, _spec(dataset, "auto"), start=True, name="auto")["id"]
    cpu = create_job(api.client, alice, _spec(dataset, "cpu"), start=True, name="cpu")["id"]
    second = create_job(api.client, alice, _spec(dataset, [1]), start=True, name="gpu1")["id"]

    executor = RecordingExecutor()
    scheduler = Scheduler(settings, database, executor)
    scheduler.tick()
    # `both` holds the two GPUs; `auto` and `gpu1` wait; the CPU job behind them starts.
    assert executor.launched == [both, cpu]
    assert get_job(api.client, alice, both)["devices"] == [0, 1]
    assert executor.env[both]["CUDA_VISIBLE_DEVICES"] == "0,1" and executor.num_gpus[both] == 2
    assert json.loads((settings.runs_dir / str(both) / "spec.json").read_text())["devices"] == [0, 1]
    assert executor.env[cpu]["CUDA_VISIBLE_DEVICES"] == "" and executor.num_gpus[cpu] == 0
    assert get_job(api.client, alice, cpu)["devices"] is None
    assert {get_job(api.client, alice, j)["status"] for j in (auto, second)} == {"queued"}

    # The devices come free when the job ends; the waiting ones get one each, `gpu1` its wish.
    assert api.client.post(f"/api/jobs/{both}/cancel", headers=alice.headers).status_code == 200
    scheduler.tick()
    assert executor.launched == [both, cpu, auto, second]
    assert get_job(api.client, alice, auto)["devices"] == [0]
    assert get_job(api.client, alice, second)["devices"] == [1]
    assert executor.env[second]["CUDA_VISIBLE_DEVICES"] == "1" and executor.num_gpus[auto] == 1


def test_a_job_needing_more_gpus_than_the_node_has_is_refused_or_failed(
    api: Api, settings: Settings, database: Database
):
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)["id"]
    response = api.client.post(
        "/api/jobs",
        json={"name": "big", "spec": _spec(dataset, [0, 1, 2]), "start": True},
        headers=alice.headers,
    )
    assert "3 GPU(s)" in assert_error(response, 422, "invalid_spec", field="body.spec.devices")["message"]

    # Accepted while the node had two, then the node shrank: it fails at admission, it does not wait.
    job = create_job(api.client, alice, _spec(dataset, [0, 1]), start=True)["id"]
    settings.gpu_count = 1
    executor = RecordingExecutor()
    Scheduler(settings, database, executor).tick()
    failed = get_job(api.client, alice, job)
    assert failed["status"] == "failed" and failed["error"]["code"] == "not_enough_gpus"
    assert executor.launched == []

    # Without GPUs, `auto` trains on the CPU and a device list is refused at submit.
    settings.gpu_count = 0
    auto = create_job(api.client, alice, _spec(dataset, "auto"), start=True)["id"]
    Scheduler(settings, database, executor).tick()
    assert executor.launched == [auto] and executor.env[auto]["CUDA_VISIBLE_DEVICES"] == ""
    clone = api.client.post(
        f"/api/jobs/{auto}/clone", json={"spec_patch": {"devices": [0]}}, headers=alice.headers
    )
    assert_error(clone, 422, "invalid_spec", field="body.spec.devices")


def test_demand_and_picking() -> None:
    assert gpus.demand({"devices": "cpu"}, 4) == 0
    assert gpus.demand({"use_cpu": True, "devices": [0]}, 4) == 0
    assert gpus.demand({}, 4) == 1 and gpus.demand({}, 0) == 0
    assert gpus.demand({"devices": "0,cuda:2"}, 4) == 2 and gpus.demand({"devices": 3}, 4) == 1
    assert gpus.pick(2, {0, 1, 3}, prefer=[3]) == [0, 3]
    assert gpus.pick(2, {1}) is None and gpus.pick(0, set()) == []
