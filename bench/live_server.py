"""A real `loraforge serve` for the live-monitoring benches (ws_latency.py, submit_start.py).

Temporary data directory, the demo model built into it once, a free loopback port, its own admin;
stopped by PID. Prints nothing: the benches print one JSON object each.
"""

from __future__ import annotations

import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

# Throwaway accounts on a throwaway data directory: fresh random passwords per run.
ADMIN = ("admin", "Aa1-" + secrets.token_urlsafe(18))
PASSWORD = "Bb2-" + secrets.token_urlsafe(18)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    def __init__(self, env: dict[str, str] | None = None, keep: Path | None = None) -> None:
        self._tmp = None if keep else tempfile.TemporaryDirectory(prefix="loraforge-bench-")
        self.data_dir = keep or Path(self._tmp.name) / "data"  # type: ignore[union-attr]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.base, timeout=60)

    def __enter__(self) -> LiveServer:
        model = self.data_dir / "models" / "demo-tiny"
        if not model.exists():  # built once, outside any measurement
            subprocess.run(
                [sys.executable, "-m", "loraforge", "demo-model", str(model)], check=True, capture_output=True
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("LORAFORGE_")}
        env.update(
            LORAFORGE_DATA_DIR=str(self.data_dir),
            LORAFORGE_ADMIN_USERNAME=ADMIN[0],
            LORAFORGE_ADMIN_PASSWORD=ADMIN[1],
            LORAFORGE_LOG_LEVEL="warning",
            PYTHONUNBUFFERED="1",
            **self.extra_env,
        )
        log = (self.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "loraforge", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {(self.data_dir / 'server.log').read_text()[-2000:]}")
            try:
                if self.http.get("/api/health").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server not healthy after 60 s")

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()

    # ---- API helpers -------------------------------------------------------------------------

    def user(self, username: str) -> dict[str, str]:
        """Register `username` and return its Authorization headers."""
        response = self.http.post(
            "/api/auth/register",
            json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
        )
        response.raise_for_status()
        return self.login(username, PASSWORD)

    def login(self, username: str, password: str) -> dict[str, str]:
        response = self.http.post(
            "/api/auth/login", json={"username_or_email": username, "password": password}
        )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def sample_dataset(self, headers: dict[str, str]) -> int:
        response = self.http.post("/api/datasets/samples/forge-demo", headers=headers)
        response.raise_for_status()
        return int(response.json()["dataset"]["id"])

    def create_job(self, headers: dict[str, str], spec: dict[str, Any], *, start: bool) -> dict[str, Any]:
        response = self.http.post(
            "/api/jobs", json={"name": "bench", "spec": spec, "start": start}, headers=headers
        )
        response.raise_for_status()
        job: dict[str, Any] = response.json()
        return job

    def job(self, headers: dict[str, str], job_id: int) -> dict[str, Any]:
        response = self.http.get(f"/api/jobs/{job_id}", headers=headers)
        response.raise_for_status()
        job: dict[str, Any] = response.json()
        return job

    def wait_final(self, headers: dict[str, str], job_id: int, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(headers, job_id)
            if job["status"] in {"succeeded", "failed", "cancelled"}:
                return job
            time.sleep(0.1)
        raise RuntimeError(f"job {job_id} not final after {timeout} s")


def tiny_spec(dataset_id: int, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model_name_or_path": "demo-tiny",
        "stage": "sft",
        "finetuning_type": "lora",
        "dataset": dataset_id,
        "max_steps": 20,
        "logging_steps": 1,
        "cutoff_len": 128,
        "per_device_train_batch_size": 2,
        "save_strategy": "no",
        "save_every_minutes": None,
    }
    spec.update(overrides)
    return spec


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
