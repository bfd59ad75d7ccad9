"""Live-stream latency and concurrency on a real server. Prints one JSON object.

1. latency: a real tiny job with logging_steps 1 watched by N WebSocket clients (default 50); for
   every metric event each client records receive time - the event's `ts` (the engine's emit time,
   same machine clock). p50 / p95 / max over all (client, event) pairs, and whether every client got
   every event exactly once and in order.
2. concurrency: 8 tiny jobs submitted at once (LORAFORGE_MAX_RUNNING_JOBS=8, per-user cap 8): all
   succeeded? wall time from the first submit to the last final status.

Usage: .venv/bin/python bench/ws_latency.py [--clients 50] [--steps 200] [--jobs 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_server import LiveServer, percentile, tiny_spec

FINAL = {"succeeded", "failed", "cancelled"}


async def _watch(url: str, token: str, ready: asyncio.Event, counter: list[int], n: int) -> dict[str, Any]:
    """One client: the snapshot, then events until the final job message."""
    lat_ms: list[float] = []
    seqs: list[int] = []
    async with connect(
        url,
        subprotocols=[Subprotocol("loraforge.bearer"), Subprotocol(token)],
        max_size=None,
        open_timeout=60,
    ) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "snapshot", first
        counter[0] += 1
        if counter[0] == n:
            ready.set()
        while True:
            message = json.loads(await ws.recv())
            now = time.time()
            if "seq" in message:
                seqs.append(message["seq"])
                if message["type"] == "metric":
                    lat_ms.append((now - message["ts"]) * 1000)
            elif message["type"] == "job" and message["job"]["status"] in FINAL:
                return {"latencies_ms": lat_ms, "seqs": seqs, "status": message["job"]["status"]}


async def latency(server: LiveServer, clients: int, steps: int) -> dict[str, Any]:
    headers = server.user("watcher")
    dataset = server.sample_dataset(headers)
    job = server.create_job(headers, tiny_spec(dataset, max_steps=steps, logging_steps=1), start=False)
    token = headers["Authorization"].split(" ", 1)[1]
    url = f"{server.ws_base}/ws/jobs/{job['id']}"
    ready = asyncio.Event()
    counter = [0]
    tasks = [asyncio.create_task(_watch(url, token, ready, counter, clients)) for _ in range(clients)]
    await asyncio.wait_for(ready.wait(), timeout=120)
    started = await asyncio.to_thread(server.http.post, f"/api/jobs/{job['id']}/start", headers=headers)
    started.raise_for_status()
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=900)
    all_ms = [ms for r in results for ms in r["latencies_ms"]]
    final = server.job(headers, job["id"])
    expected = list(range(1, final["last_event_seq"] + 1))
    return {
        "clients": clients,
        "steps": steps,
        "job_status": final["status"],
        "metric_events_per_client": len(results[0]["latencies_ms"]),
        "samples": len(all_ms),
        "p50_ms": round(percentile(all_ms, 50) or 0, 2),
        "p95_ms": round(percentile(all_ms, 95) or 0, 2),
        "max_ms": round(max(all_ms), 2) if all_ms else None,
        "every_client_got_every_event_once_in_order": all(r["seqs"] == expected for r in results),
    }


def concurrency(server: LiveServer, jobs: int, steps: int) -> dict[str, Any]:
    headers = server.user("crowd")
    dataset = server.sample_dataset(headers)
    t0 = time.monotonic()
    ids = [
        server.create_job(headers, tiny_spec(dataset, max_steps=steps), start=True)["id"] for _ in range(jobs)
    ]
    finals = [server.wait_final(headers, job_id) for job_id in ids]
    wall = time.monotonic() - t0
    return {
        "jobs": jobs,
        "steps_each": steps,
        "all_succeeded": all(j["status"] == "succeeded" for j in finals),
        "statuses": sorted({j["status"] for j in finals}),
        "wall_s": round(wall, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--job-steps", type=int, default=20)
    args = parser.parse_args()
    env = {
        "LORAFORGE_MAX_RUNNING_JOBS": str(args.jobs),
        "LORAFORGE_MAX_RUNNING_JOBS_PER_USER": str(args.jobs),
    }
    with LiveServer(env=env) as server:
        result = {
            "bench": "ws_latency",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "latency": asyncio.run(latency(server, args.clients, args.steps)),
            "concurrent_jobs": concurrency(server, args.jobs, args.job_steps),
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
