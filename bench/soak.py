"""Soak: a real server under steady mixed load for a fixed time. Prints one JSON object.

A real `loraforge serve` on 127.0.0.1 (temporary data directory, SQLite, local executor), 4 users:
- training: 8 tiny demo-model jobs in the system at all times (2 per user; at most `--running` run at
  once, the rest queue); when one ends another is submitted; at the end the rest are stopped;
- 50 WebSocket clients (token as the `loraforge.bearer` subprotocol), spread over the users' job slots;
  each follows its slot's job from seq 0 to its final status, then the slot's next job;
- a steady mix of API calls (job list, one job, datasets, metrics, events, notifications, queue, logs,
  health) from `--api-workers` clients.
Figures: 5xx responses (must be 0), the server's RSS (psutil, the server process only) after warm-up
vs at the end (growth must stay under 10 %), and for every job whether every event seq 1..last reached
each client that followed it exactly once and in order (compared with GET /api/jobs/{id}/events).

Usage: .venv/bin/python bench/soak.py [--seconds 600] [--clients 50] [--steps 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_server import PASSWORD, LiveServer, percentile, tiny_spec
from soak_ws import FINAL, Follow, difference, follow

USERS = 4
SLOTS_PER_USER = 2  # 4 users x 2 = 8 jobs in the system at all times
MIX = ("jobs_list", "job", "datasets", "metrics", "events", "notifications", "queue", "logs", "health")


@dataclass
class User:
    name: str
    headers: dict[str, str]
    dataset: int = 0
    jobs: list[int] = field(default_factory=list)

    @property
    def token(self) -> str:
        return self.headers["Authorization"].split(" ", 1)[1]


@dataclass
class Slot:
    user: User
    job_id: int | None = None


class Soak:
    def __init__(self, server: LiveServer, args: argparse.Namespace) -> None:
        self.server = server
        self.args = args
        self.http = httpx.AsyncClient(base_url=server.base, timeout=120)
        self.rng = random.Random(args.seed)
        self.statuses: Counter[int] = Counter()
        self.by_endpoint: dict[str, list[float]] = defaultdict(list)
        self.five_xx: list[str] = []
        self.transport_errors: list[str] = []
        self.users: list[User] = []
        self.slots: list[Slot] = []
        self.job_owner: dict[int, User] = {}
        self.follows: list[Follow] = []
        self.ending = False
        self.rss: list[tuple[float, int]] = []
        self.t0 = time.monotonic()

    # ---- HTTP ---------------------------------------------------------------------------------------

    async def call(
        self, method: str, path: str, user: User | None, name: str, **kw: Any
    ) -> httpx.Response | None:
        """Every request of the soak goes through here: counted by status, 5xx kept, timed."""
        started = time.monotonic()
        try:
            response = await self.http.request(method, path, headers=user.headers if user else None, **kw)
        except httpx.TransportError as exc:
            self.transport_errors.append(f"{method} {name}: {exc!r}")
            return None
        self.by_endpoint[name].append((time.monotonic() - started) * 1000)
        self.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.five_xx.append(f"{method} {path} {response.status_code} {response.text[:200]}")
        if response.status_code == 401 and user is not None:  # the 15-minute access token ran out
            await self.login(user)
        return response

    async def login(self, user: User) -> None:
        body = {"username_or_email": user.name, "password": PASSWORD}
        response = await self.http.post("/api/auth/login", json=body)
        if response.status_code == 200:
            user.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    # ---- jobs ---------------------------------------------------------------------------------------

    async def submit(self, slot: Slot) -> None:
        spec = tiny_spec(slot.user.dataset, max_steps=self.args.steps, logging_steps=self.args.logging_steps)
        body = {"name": f"soak-{len(self.job_owner) + 1}", "spec": spec, "start": True}
        response = await self.call("POST", "/api/jobs", slot.user, "submit", json=body)
        if response is not None and response.status_code == 201:
            job_id = int(response.json()["id"])
            self.job_owner[job_id] = slot.user
            slot.user.jobs.append(job_id)
            slot.job_id = job_id

    async def keep_jobs(self, deadline: float) -> None:
        """8 jobs in the system: a slot whose job ended gets a new one until the deadline."""
        for slot in self.slots:
            await self.submit(slot)
        while time.monotonic() < deadline:
            await asyncio.sleep(2)
            for slot in self.slots:
                if slot.job_id is None:
                    continue
                response = await self.call("GET", f"/api/jobs/{slot.job_id}", slot.user, "submitter_poll")
                ended = response is not None and response.is_success and response.json()["status"] in FINAL
                if ended and time.monotonic() < deadline:
                    await self.submit(slot)

    async def stop_all(self) -> None:
        self.ending = True
        for job_id, user in self.job_owner.items():
            await self.call("POST", f"/api/jobs/{job_id}/stop", user, "stop")  # 409 when already final
        deadline = time.monotonic() + self.args.stop_timeout
        while time.monotonic() < deadline:
            states = []
            for job_id, user in self.job_owner.items():
                response = await self.call("GET", f"/api/jobs/{job_id}", user, "final_poll")
                states.append(
                    response.json()["status"] if response is not None and response.is_success else "?"
                )
            if all(s in FINAL for s in states):
                return
            await asyncio.sleep(2)

    # ---- WebSocket clients --------------------------------------------------------------------------

    async def client(self, n: int, slot: Slot) -> None:
        followed: int | None = None
        while True:
            while slot.job_id == followed and not self.ending:
                await asyncio.sleep(0.5)
            if slot.job_id == followed or slot.job_id is None:
                return
            followed = slot.job_id
            url = f"{self.server.ws_base}/ws/jobs/{followed}"
            self.follows.append(await follow(url, n, followed, lambda: slot.user.token))

    # ---- steady API mix and memory --------------------------------------------------------------------

    async def api_worker(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            user = self.rng.choice(self.users)
            name = self.rng.choice(MIX)
            job = self.rng.choice(user.jobs) if user.jobs else None
            paths = {
                "jobs_list": "/api/jobs?page_size=20",
                "datasets": "/api/datasets",
                "notifications": "/api/notifications",
                "queue": "/api/queue",
                "health": "/api/health",
            }
            if name in paths:
                await self.call("GET", paths[name], user, name)
            elif job is not None:
                path = {
                    "job": f"/api/jobs/{job}",
                    "metrics": f"/api/jobs/{job}/metrics?downsample=200",
                    "events": f"/api/jobs/{job}/events?after={self.rng.randint(0, 50)}&limit=200",
                    "logs": f"/api/jobs/{job}/logs?tail=50",
                }[name]
                await self.call("GET", path, user, name)
            await asyncio.sleep(self.rng.uniform(0.05, 0.25))

    async def sample_rss(self, until: asyncio.Event) -> None:
        assert self.server.process is not None
        process = psutil.Process(self.server.process.pid)
        while not until.is_set():
            self.rss.append((time.monotonic() - self.t0, process.memory_info().rss))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), timeout=5)

    # ---- the run --------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        for i in range(USERS):
            user = User(f"soaker{i}", _register(self.server, f"soaker{i}"))
            user.dataset = self.server.sample_dataset(user.headers)
            self.users.append(user)
            self.slots += [Slot(user) for _ in range(SLOTS_PER_USER)]
        load_start = os.getloadavg()
        self.t0 = time.monotonic()
        started = self.t0
        deadline = started + self.args.seconds
        done = asyncio.Event()
        sampler = asyncio.create_task(self.sample_rss(done))
        submitter = asyncio.create_task(self.keep_jobs(deadline))
        await asyncio.sleep(1)  # the first jobs exist before the clients look for them
        clients = [
            asyncio.create_task(self.client(n, self.slots[n % len(self.slots)]))
            for n in range(self.args.clients)
        ]
        workers = [asyncio.create_task(self.api_worker(deadline)) for _ in range(self.args.api_workers)]
        await asyncio.gather(submitter, *workers)
        steady_end = time.monotonic() - self.t0
        await self.stop_all()
        await asyncio.wait_for(asyncio.gather(*clients), timeout=self.args.stop_timeout + 60)
        done.set()
        await sampler
        result = await self.figures(steady_end)
        result["load_average"] = {
            "start": [round(x, 2) for x in load_start],
            "end": [round(x, 2) for x in os.getloadavg()],
        }
        await self.http.aclose()
        return result

    async def stored_seqs(self, job_id: int, user: User) -> list[int]:
        seqs: list[int] = []
        while True:
            path = f"/api/jobs/{job_id}/events?after={seqs[-1] if seqs else 0}&limit=5000"
            response = await self.call("GET", path, user, "verify_events")
            items = response.json()["items"] if response is not None and response.is_success else []
            seqs += [int(item["seq"]) for item in items]
            if len(items) < 5000:
                return seqs

    async def figures(self, steady_end: float) -> dict[str, Any]:
        jobs: dict[str, Any] = {}
        failures: list[str] = []
        complete = 0
        for job_id, user in sorted(self.job_owner.items()):
            response = await self.call("GET", f"/api/jobs/{job_id}", user, "verify_job")
            job = response.json() if response is not None and response.is_success else {}
            last = int(job.get("last_event_seq") or 0)
            expected = list(range(1, last + 1))
            stored = await self.stored_seqs(job_id, user)
            mine = [f for f in self.follows if f.job_id == job_id]
            jobs[str(job_id)] = {
                "status": job.get("status"),
                "events": last,
                "followers": len(mine),
                "stored_contiguous": stored == expected,
            }
            if job.get("status") == "failed":
                jobs[str(job_id)]["error"] = str((job.get("error") or {}).get("message"))[:200]
            if stored != expected:
                failures.append(f"job {job_id}: stored seqs are not 1..{last}")
            for f in mine:
                if f.seqs == expected:
                    complete += 1
                else:
                    failures.append(f"job {job_id} client {f.client}: {difference(f.seqs, expected)}")
        rss = self._rss_figures(steady_end)
        five_xx = sum(n for status, n in self.statuses.items() if status >= 500)
        latency = {
            name: {
                "n": len(v),
                "p50": round(percentile(v, 50) or 0, 1),
                "p95": round(percentile(v, 95) or 0, 1),
            }
            for name, v in sorted(self.by_endpoint.items())
        }
        args = self.args
        return {
            "bench": "soak",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "seconds": args.seconds,
            "setup": {
                "users": USERS,
                "jobs_in_system": len(self.slots),
                "max_running": args.running,
                "steps_per_job": args.steps,
                "logging_steps": args.logging_steps,
                "ws_clients": args.clients,
                "api_workers": args.api_workers,
            },
            "jobs": {
                "submitted": len(self.job_owner),
                "by_status": dict(Counter(str(j["status"]) for j in jobs.values())),
                "events_total": sum(j["events"] for j in jobs.values()),
                "each": jobs,
            },
            "http": {
                "requests": sum(self.statuses.values()),
                "by_status": {str(k): v for k, v in sorted(self.statuses.items())},
                "responses_5xx": five_xx,
                "five_xx_examples": self.five_xx[:20],
                "transport_errors": len(self.transport_errors),
                "transport_error_examples": self.transport_errors[:10],
                "latency_ms": latency,
            },
            "websocket": {
                "clients": args.clients,
                "follows": len(self.follows),
                "follows_complete_once_in_order": complete,
                "messages": sum(f.messages for f in self.follows),
                "reconnects": sum(f.reconnects for f in self.follows),
                "close_examples": [c for f in self.follows for c in f.closes][:10],
                "failures": failures[:30],
            },
            "server_rss": rss,
            "verdict": {
                "no_5xx": five_xx == 0 and not self.transport_errors,
                "rss_growth_under_10pct": rss["growth_pct"] is not None and rss["growth_pct"] < 10,
                "every_event_delivered_once_in_order": not failures and complete == len(self.follows) > 0,
            },
        }

    def _rss_figures(self, steady_end: float) -> dict[str, Any]:
        """Start = mean of the first three samples after warm-up, end = mean of the last three samples
        of the steady period (before the stop phase)."""
        warm = [rss for t, rss in self.rss if self.args.warmup <= t <= steady_end]
        if len(warm) < 6:
            return {"start_mb": None, "end_mb": None, "growth_pct": None, "samples": len(self.rss)}
        start, end = sum(warm[:3]) / 3, sum(warm[-3:]) / 3
        return {
            "warmup_s": self.args.warmup,
            "start_mb": round(start / 2**20, 1),
            "end_mb": round(end / 2**20, 1),
            "max_mb": round(max(warm) / 2**20, 1),
            "growth_pct": round((end / start - 1) * 100, 2),
            "every_30s_mb": [round(rss / 2**20, 1) for t, rss in self.rss if int(t) % 30 < 5],
        }


def _register(server: LiveServer, name: str) -> dict[str, str]:
    """Register (waiting out a registration rate limit, if the server has one) and log in."""
    for _ in range(30):
        try:
            return server.user(name)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 429:
                raise
            time.sleep(float(exc.response.headers.get("retry-after") or 2))
    raise RuntimeError(f"could not register {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--running", type=int, default=4, help="LORAFORGE_MAX_RUNNING_JOBS")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--logging-steps", type=int, default=2)
    parser.add_argument("--api-workers", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=30)
    parser.add_argument("--stop-timeout", type=float, default=180)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    env = {
        "LORAFORGE_MAX_RUNNING_JOBS": str(args.running),
        "LORAFORGE_MAX_RUNNING_JOBS_PER_USER": str(SLOTS_PER_USER),
    }
    with LiveServer(env=env) as server:
        result = asyncio.run(Soak(server, args).run())
    print(json.dumps(result, indent=1))
    return 0 if all(result["verdict"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
