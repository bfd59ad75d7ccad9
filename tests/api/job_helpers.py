"""Helpers for the job API tests: a sample dataset, specs, waiting for a status."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from api_helpers import Account
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, Table, insert

from loraforge.db.base import utcnow
from loraforge.db.models import User
from loraforge.db.session import Database
from loraforge.executors.base import ProcessRef, ProcessState

FINAL = {"succeeded", "failed", "cancelled", "stopped"}


def insert_job(database: Database, status: str = "draft") -> int:
    """A job row (and its owner) written straight to the database, for state and migration tests."""
    with database.session() as session:
        user = User(username="u", email="u@example.com", password_hash="x", role="researcher")
        session.add(user)
        session.flush()
        # Through the table as it is in the database (reflected), not the ORM model: migration tests
        # insert at older revisions, before later columns existed.
        jobs = Table("jobs", MetaData(), autoload_with=session.connection())
        now = utcnow()
        job_id = session.execute(
            insert(jobs).values(
                owner_id=user.id, name="j", status=status, spec={}, executor="local", priority=0,
                last_event_seq=0, created_at=now, updated_at=now,
            ).returning(jobs.c.id)
        ).scalar_one()  # fmt: skip
        session.commit()
        return int(job_id)


HUB_MODEL = "Qwen/Qwen2.5-0.5B"  # never downloaded: RecordingExecutor runs nothing


class RecordingExecutor:
    name = "local"  # admission treats it as the local node (GPU fitting applies)

    def __init__(self) -> None:
        self.launched: list[int] = []
        self.env: dict[int, dict[str, str]] = {}
        self.num_gpus: dict[int, int] = {}

    def launch(self, *, job_id: int, run_dir: Path, env: dict[str, str], num_gpus: int = 0) -> ProcessRef:
        self.launched.append(job_id)
        self.env[job_id] = env
        self.num_gpus[job_id] = num_gpus
        return ProcessRef(pid=200_000 + job_id, started_at=1.0)

    def stop(self, ref: ProcessRef) -> None: ...

    def cancel(self, ref: ProcessRef) -> None: ...

    def state(self, ref: ProcessRef) -> ProcessState:
        return ProcessState(alive=True)


def sample_dataset(client: TestClient, account: Account) -> dict[str, Any]:
    """The project's demo SFT dataset, imported for `account` (POST /api/datasets/samples/forge-demo)."""
    response = client.post("/api/datasets/samples/forge-demo", headers=account.headers)
    assert response.status_code == 201, response.text
    dataset: dict[str, Any] = response.json()["dataset"]
    return dataset


def tiny_spec(dataset_id: int, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model_name_or_path": "demo-tiny",
        "stage": "sft",
        "finetuning_type": "lora",
        "dataset": dataset_id,
        "max_steps": 4,
        "logging_steps": 1,
        "cutoff_len": 128,
        "per_device_train_batch_size": 2,
        "save_strategy": "no",
        "save_every_minutes": None,
    }
    spec.update(overrides)
    return spec


def create_job(
    client: TestClient, account: Account, spec: dict[str, Any], *, start: bool = False, name: str = "job"
) -> dict[str, Any]:
    response = client.post(
        "/api/jobs", json={"name": name, "spec": spec, "start": start}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


def get_job(client: TestClient, account: Account, job_id: int) -> dict[str, Any]:
    response = client.get(f"/api/jobs/{job_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def wait_for(
    client: TestClient, account: Account, job_id: int, statuses: set[str], timeout: float = 90.0
) -> dict[str, Any]:
    """Poll the job until its status is one of `statuses` (fails early on an unexpected final one)."""
    deadline = time.monotonic() + timeout
    job = get_job(client, account, job_id)
    while time.monotonic() < deadline:
        job = get_job(client, account, job_id)
        if job["status"] in statuses:
            return job
        if job["status"] in FINAL:
            logs = client.get(f"/api/jobs/{job_id}/logs", headers=account.headers).json()
            raise AssertionError(f"job ended {job['status']}, expected {statuses}: {job['error']} {logs}")
        time.sleep(0.1)
    raise AssertionError(f"job still {job['status']} after {timeout}s, expected {statuses}")
