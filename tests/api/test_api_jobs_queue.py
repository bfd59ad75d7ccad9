"""The scheduler with a fake executor: queue order, caps, watching, and a server restart."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from api_helpers import Account, Api
from job_helpers import create_job, get_job, sample_dataset, tiny_spec
from sqlalchemy import update

from loraforge.db.models import Job
from loraforge.db.session import Database
from loraforge.executors.base import ProcessRef, ProcessState
from loraforge.executors.local import LocalExecutor
from loraforge.services.jobs.scheduler import Scheduler
from loraforge.settings import Settings

HUB_MODEL = "Qwen/Qwen2.5-0.5B"  # never downloaded: the fake executor runs nothing


class FakeExecutor:
    name = "fake"

    def __init__(self) -> None:
        self.launched: list[int] = []
        self.dead: dict[int, int | None] = {}  # pid -> returncode
        self.signals: list[tuple[str, int]] = []

    def launch(self, *, job_id: int, run_dir: Path, env: dict[str, str]) -> ProcessRef:
        assert (run_dir / "spec.json").exists() and env["CUDA_VISIBLE_DEVICES"] == ""
        self.launched.append(job_id)
        return ProcessRef(pid=100_000 + job_id, started_at=1.0)

    def stop(self, ref: ProcessRef) -> None:
        self.signals.append(("stop", ref.pid))

    def cancel(self, ref: ProcessRef) -> None:
        self.signals.append(("cancel", ref.pid))

    def state(self, ref: ProcessRef) -> ProcessState:
        if ref.pid in self.dead:
            return ProcessState(alive=False, returncode=self.dead[ref.pid])
        return ProcessState(alive=True)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.scheduler_enabled = False  # the test drives `tick()` itself
    settings.max_running_jobs = 3
    return settings


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.sqlalchemy_url)
    yield db
    db.dispose()


def _queued(api: Api, account: Account, dataset_id: int, n: int) -> list[int]:
    spec = tiny_spec(dataset_id, model_name_or_path=HUB_MODEL)
    return [
        create_job(api.client, account, spec, start=True, name=f"{account.username}-{i}")["id"]
        for i in range(n)
    ]


def test_queue_order_priority_then_age_with_per_user_and_global_caps(
    api: Api, settings: Settings, database: Database
):
    a, b, c = api.account("anna"), api.account("ben"), api.account("cleo")
    a1, a2 = _queued(api, a, sample_dataset(api.client, a)["id"], 2)
    b1, b2 = _queued(api, b, sample_dataset(api.client, b)["id"], 2)
    (c1,) = _queued(api, c, sample_dataset(api.client, c)["id"], 1)
    with database.session() as session:
        session.execute(update(Job).where(Job.id == b2).values(priority=5))
        session.commit()
    queue = api.client.get("/api/queue", headers=api.admin().headers).json()
    assert [q["job"]["id"] for q in queue["queued"]] == [b2, a1, a2, b1, c1]
    assert [q["position"] for q in queue["queued"]] == [1, 2, 3, 4, 5]
    mine = api.client.get("/api/queue", headers=a.headers).json()
    assert [(q["position"], q["job"]["id"]) for q in mine["queued"]] == [(2, a1), (3, a2)]

    executor = FakeExecutor()
    scheduler = Scheduler(settings, database, executor)
    scheduler.tick()
    # Per-user cap 1: one job each; global cap 3.
    assert executor.launched == [b2, a1, c1]
    assert get_job(api.client, a, a1)["status"] == "starting"
    assert get_job(api.client, a, a2)["status"] == "queued"
    scheduler.tick()
    assert executor.launched == [b2, a1, c1]

    # a1's process dies without a word: failed, with the diagnosis; a2 takes its place.
    executor.dead[100_000 + a1] = 1
    scheduler.tick()
    failed = get_job(api.client, a, a1)
    assert failed["status"] == "failed" and failed["exit_code"] == 1
    assert failed["error"]["code"] == "internal_error"
    assert executor.launched == [b2, a1, c1, a2]

    # A process that vanished (exit code unknown) is `process_lost`; ben's b1 still waits for b2.
    executor.dead[100_000 + c1] = None
    scheduler.tick()
    assert get_job(api.client, c, c1)["error"]["code"] == "process_lost"
    assert executor.launched == [b2, a1, c1, a2]  # b1 waits: ben already runs b2
    data = json.loads((settings.runs_dir / str(a2) / "spec.json").read_text())
    assert data["output_dir"] == str(settings.runs_dir / str(a2) / "output")
    assert data["dataset"] == [str(settings.runs_dir / str(a2) / "data" / "train.jsonl")]
    assert data["model_name_or_path"] == HUB_MODEL


def _write_events(run_dir: Path, events: list[dict]) -> None:  # type: ignore[type-arg]
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "events.jsonl").open("w") as fh:
        for i, event in enumerate(events, 1):
            fh.write(json.dumps({"seq": i, "ts": time.time(), **event}) + "\n")


def _set_running(database: Database, job_id: int, pid: int, started_at: float) -> None:
    with database.session() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(status="running", pid=pid, pid_started_at=started_at)
        )
        session.commit()


def test_after_a_restart_jobs_are_reattached_or_finalized_from_events(
    api: Api, settings: Settings, database: Database
):
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)
    alive, finished, lost = (create_job(api.client, alice, tiny_spec(dataset["id"]))["id"] for _ in range(3))
    # A process that is still running (this test's own), one that ended, one PID now reused.
    me = psutil.Process(os.getpid())
    _set_running(database, alive, me.pid, me.create_time())
    ended = subprocess.Popen(["true"])
    ended.wait()
    _set_running(database, finished, ended.pid, 1.0)
    _set_running(database, lost, me.pid, me.create_time() - 1000)  # same PID, another process
    status = [{"type": "status", "status": "training"}]
    metric = [{"type": "metric", "step": 1, "loss": 2.5, "progress": 0.5}]
    _write_events(settings.runs_dir / str(alive), status + metric)
    _write_events(
        settings.runs_dir / str(finished), status + metric + [{"type": "status", "status": "succeeded"}]
    )
    _write_events(settings.runs_dir / str(lost), status)

    scheduler = Scheduler(settings, database, LocalExecutor())  # a fresh server: knows no process
    scheduler.tick()
    assert get_job(api.client, alice, alive)["status"] == "running"
    assert get_job(api.client, alice, alive)["progress"] == 0.5
    assert get_job(api.client, alice, finished)["status"] == "succeeded"
    gone = get_job(api.client, alice, lost)
    assert gone["status"] == "failed" and gone["error"]["code"] == "process_lost"
    events = api.client.get(f"/api/jobs/{finished}/events", headers=alice.headers).json()["items"]
    assert [e["seq"] for e in events] == [1, 2, 3]

    # New lines are picked up where the last tick stopped; nothing is stored twice.
    with (settings.runs_dir / str(alive) / "events.jsonl").open("a") as fh:
        fh.write(json.dumps({"seq": 3, "ts": time.time(), "type": "status", "status": "succeeded"}) + "\n")
    Scheduler(settings, database, LocalExecutor()).tick()  # another restart: re-reads from the start
    assert get_job(api.client, alice, alive)["status"] == "succeeded"
    events = api.client.get(f"/api/jobs/{alive}/events", headers=alice.headers).json()["items"]
    assert [e["seq"] for e in events] == [1, 2, 3]
