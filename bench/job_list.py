"""GET /api/jobs with 10,000 jobs in SQLite under 100 concurrent clients. Prints one JSON object.

A real `loraforge serve` (uvicorn, one process) in a subprocess on 127.0.0.1 with a temp data dir and
the scheduler off; 10,000 jobs (realistic specs, 20 owners) inserted directly; 100 httpx AsyncClient
tasks send `--requests` requests in all (default 2,000), as the admin (everyone's jobs: the largest
count) and as a researcher (own jobs), alternating. The server is stopped by PID. Goal: p95 <= 50 ms.

Usage: .venv/bin/python bench/job_list.py [--jobs 10000] [--clients 100] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import insert

from loraforge.db.base import utcnow
from loraforge.db.migrate import migrate
from loraforge.db.models import Job, User
from loraforge.db.session import Database
from loraforge.settings import Settings

PASSWORD = "bench-password-123"  # noqa: S105  (a throw-away admin in a temp dir)
STATUSES = ["succeeded"] * 6 + ["failed", "cancelled", "queued", "draft"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _seed(database_url: str, jobs: int, researcher_id: int) -> None:
    database = Database(database_url)
    spec = {
        "model_name_or_path": "Qwen/Qwen2.5-0.5B", "stage": "sft", "finetuning_type": "lora", "dataset": 1,
        "dataset_version": 1, "max_steps": 1000, "learning_rate": 1e-4, "lora_rank": 8,
        "per_device_train_batch_size": 4, "cutoff_len": 1024, "template": "qwen",
    }  # fmt: skip
    with database.session() as session:
        users = [
            User(username=f"r{i}", email=f"r{i}@example.com", password_hash="!", role="researcher")  # noqa: S106
            for i in range(20)
        ]
        session.add_all(users)
        session.flush()
        owners = [researcher_id] + [u.id for u in users[1:]]  # the benchmark's researcher owns 1/20
        now = utcnow()
        rows = [
            {
                "owner_id": owners[i % 20],
                "name": f"job {i}",
                "status": STATUSES[i % len(STATUSES)],
                "priority": 0,
                "spec": spec,
                "executor": "local",
                "last_event_seq": 100,
                "progress": 1.0,
                "created_at": now,
                "updated_at": now,
                "queued_at": now,
            }
            for i in range(jobs)
        ]
        session.execute(insert(Job), rows)
        session.commit()
    database.dispose()


def _wait_up(base: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/api/health", timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not come up")


TRANSPORT_ERRORS: list[str] = []  # connections the server reset under load (reported, not hidden)


async def _load(base: str, headers: list[dict[str, str]], clients: int, requests: int) -> list[float]:
    timings: list[float] = []
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as client:

        async def worker() -> None:
            for i in counter:
                started = time.perf_counter()
                try:
                    response = await client.get("/api/jobs", headers=headers[i % len(headers)])
                except httpx.TransportError as exc:
                    TRANSPORT_ERRORS.append(type(exc).__name__)
                    continue
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text

        await asyncio.gather(*(worker() for _ in range(clients)))
    return timings


def _token(base: str, username: str, password: str) -> dict[str, str]:
    response = httpx.post(
        f"{base}/api/auth/login", json={"username_or_email": username, "password": password}, timeout=30
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lf-bench-jobs-") as tmp:
        data_dir = Path(tmp) / "data"
        url = Settings(data_dir=data_dir).sqlalchemy_url
        migrate(url)
        port = _free_port()
        server_log = (Path(tmp) / "server.log").open("wb")
        env = {
            **os.environ,
            "LORAFORGE_DATA_DIR": str(data_dir),
            "LORAFORGE_JWT_SECRET": "bench-signing-key-" + "x" * 32,
            "LORAFORGE_ADMIN_USERNAME": "admin",
            "LORAFORGE_ADMIN_EMAIL": "admin@example.com",
            "LORAFORGE_ADMIN_PASSWORD": PASSWORD,
            "LORAFORGE_SCHEDULER_ENABLED": "false",
            "LORAFORGE_LOG_LEVEL": "warning",
        }
        proc = subprocess.Popen(  # an argument list, never a shell
            [sys.executable, "-m", "loraforge", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_up(base, proc)
            admin = _token(base, "admin", PASSWORD)
            registered = httpx.post(
                f"{base}/api/auth/register",
                json={"username": "bench", "email": "bench@example.com", "password": PASSWORD},
                timeout=30,
            )
            registered.raise_for_status()
            _seed(url, args.jobs, registered.json()["id"])
            headers = [admin, _token(base, "bench", PASSWORD)]
            asyncio.run(_load(base, headers, args.clients, min(200, args.requests)))  # warm-up
            started = time.perf_counter()
            timings = asyncio.run(_load(base, headers, args.clients, args.requests))
            wall = time.perf_counter() - started
        except Exception:
            server_log.flush()
            sys.stderr.write((Path(tmp) / "server.log").read_text(errors="replace")[-4000:])
            raise
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            server_log.close()
    timings.sort()
    print(
        json.dumps(
            {
                "bench": "job_list",
                "jobs": args.jobs,
                "clients": args.clients,
                "requests": args.requests,
                "views": ["admin (all jobs)", "researcher (own jobs)"],
                "p50_ms": round(statistics.median(timings), 1),
                "p95_ms": round(timings[max(0, math.ceil(0.95 * len(timings)) - 1)], 1),
                "max_ms": round(timings[-1], 1),
                "throughput_rps": round(len(timings) / wall, 1),
                "transport_errors": len(TRANSPORT_ERRORS),
                "goal_p95_ms": 50,
                "cpu_count": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
