"""A training run survives a server crash: SIGKILL `loraforge serve` mid-run, start a new one on the
same data directory, and the job is re-attached and finishes with every event stored exactly once.

Real things only: two `loraforge serve` processes on loopback (stopped by PID), a SQLite file, the
engine subprocess on the tiny demo model (started by the first server, outliving it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

ADMIN = ("admin", "restart-Admin-Passw0rd!")
PASSWORD = "alice-Passw0rd-long!"
STEPS = 150
START_TIMEOUT_S = 60.0
JOB_TIMEOUT_S = 300.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One `python -m loraforge serve` on a free loopback port over `data_dir`."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LORAFORGE_")}
        env.update(
            LORAFORGE_DATA_DIR=str(data_dir),
            LORAFORGE_ADMIN_USERNAME=ADMIN[0],
            LORAFORGE_ADMIN_PASSWORD=ADMIN[1],
            LORAFORGE_LOG_LEVEL="warning",
            PYTHONUNBUFFERED="1",
        )
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "loraforge", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.log_path = log_path

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited:\n{self.log_path.read_text()[-4000:]}"
            try:
                if httpx.get(f"{self.base}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not healthy:\n{self.log_path.read_text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL by PID: a crash, not a shutdown (no lifespan code runs)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def data_dir(tmp_path: Path, demo_model_cache: Path) -> Path:
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    (data / "models" / "demo-tiny").symlink_to(demo_model_cache, target_is_directory=True)
    return data


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop()


def _token(base: str, username: str, password: str) -> dict[str, str]:
    response = httpx.post(
        f"{base}/api/auth/login", json={"username_or_email": username, "password": password}, timeout=30
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _job(base: str, headers: dict[str, str], job_id: int) -> dict[str, Any]:
    response = httpx.get(f"{base}/api/jobs/{job_id}", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def _events(base: str, headers: dict[str, str], job_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        response = httpx.get(
            f"{base}/api/jobs/{job_id}/events",
            params={"after": items[-1]["seq"] if items else 0, "limit": 1000},
            headers=headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        page = response.json()["items"]
        if not page:
            return items
        items.extend(page)


def _final_in_file(events_file: Path) -> bool:
    if not events_file.exists():
        return False
    lines = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    return any(e["type"] == "status" and e["status"] in {"succeeded", "failed", "cancelled"} for e in lines)


def test_server_killed_mid_run_job_is_reattached_and_finishes_without_missing_events(
    tmp_path: Path, data_dir: Path, servers: list[Server]
):
    first = Server(data_dir, tmp_path / "server-1.log")
    servers.append(first)
    first.wait_healthy()
    registered = httpx.post(
        f"{first.base}/api/auth/register",
        json={"username": "alice", "email": "alice@example.com", "password": PASSWORD},
        timeout=30,
    )
    assert registered.status_code == 201, registered.text
    alice = _token(first.base, "alice", PASSWORD)
    dataset = httpx.post(f"{first.base}/api/datasets/samples/forge-demo", headers=alice, timeout=60)
    assert dataset.status_code == 201, dataset.text
    spec = {
        "model_name_or_path": "demo-tiny",
        "stage": "sft",
        "finetuning_type": "lora",
        "dataset": dataset.json()["dataset"]["id"],
        "max_steps": STEPS,
        "logging_steps": 1,
        "cutoff_len": 128,
        "per_device_train_batch_size": 2,
        "save_strategy": "no",
        "save_every_minutes": None,
        "resource_interval_seconds": 0.5,
    }
    created = httpx.post(
        f"{first.base}/api/jobs",
        json={"name": "survivor", "spec": spec, "start": True},
        headers=alice,
        timeout=60,
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    events_file = data_dir / "runs" / str(job_id) / "events.jsonl"

    # Wait until the first server has stored some training metrics, then crash it.
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = _job(first.base, alice, job_id)
        assert job["status"] not in {"failed", "cancelled", "stopped", "succeeded"}, job
        if job["status"] == "running" and any(
            e["type"] == "metric" for e in _events(first.base, alice, job_id)
        ):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the job never started training")
    first.kill()
    assert not _final_in_file(events_file), "the run finished before the crash: make it longer"
    stored_before_crash = job["last_event_seq"]

    second = Server(data_dir, tmp_path / "server-2.log")
    servers.append(second)
    second.wait_healthy()
    alice = _token(second.base, "alice", PASSWORD)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = _job(second.base, alice, job_id)
        if job["status"] in {"succeeded", "failed", "cancelled", "stopped"}:
            break
        time.sleep(0.2)
    logs = httpx.get(f"{second.base}/api/jobs/{job_id}/logs", headers=alice, timeout=30).json()
    assert job["status"] == "succeeded", (job, logs)
    assert job["progress"] == 1.0

    events = _events(second.base, alice, job_id)
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))  # contiguous, each once
    assert len(seqs) > stored_before_crash
    assert job["last_event_seq"] == seqs[-1]
    steps = [e["step"] for e in events if e["type"] == "metric"]
    assert steps == list(range(1, STEPS + 1))
    statuses = [e["status"] for e in events if e["type"] == "status"]
    assert statuses[-1] == "succeeded" and statuses.count("training") == 1  # one run, not a restart
    # What the database holds is exactly what the engine wrote.
    in_file = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    assert [e["seq"] for e in in_file] == seqs
    assert _job(second.base, _token(second.base, *ADMIN), job_id)["status"] == "succeeded"
