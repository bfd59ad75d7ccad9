"""GET /metrics with 8 nodes × 8 GPUs and 24 h of telemetry in SQLite. Prints one JSON object.

A real `loraforge serve` (`bench/live_server.py`: uvicorn, one process, scheduler off) on 127.0.0.1 with a
temp data dir. Before it starts, the database gets 8 Ray-kind nodes, each with 8 GPUs and 24 h of full-rate
readings at the default 5 s interval (8 × 17,280 = 138,240 rows; the gauges need only the newest reading
of each); the server's operations loop adds its own host as a ninth node and keeps sampling it.
Prometheus' view: sequential scrapes with the metrics token, after a warm-up; the median of many. Also
timed in-process: the node collector alone (`metrics_export.collect_from`, one session).
The server is stopped by PID. Goal: median scrape ≤ 50 ms.

Usage: .venv/bin/python bench/metrics_scrape.py [--nodes 8] [--gpus 8] [--hours 24] [--scrapes 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from live_server import LiveServer, percentile
from sqlalchemy import func, insert, select

from loraforge.db.base import utcnow
from loraforge.db.migrate import migrate
from loraforge.db.models import Node, NodeSample
from loraforge.db.session import Database
from loraforge.services.operations import metrics_export
from loraforge.settings import Settings

TOKEN = "bench-metrics-token-" + "x" * 24  # a throw-away server in a temp dir
INTERVAL_S = 5


def _reading(i: int, node: int, gpus: int) -> dict[str, Any]:
    return {
        "cpu_percent": float((i * 7 + node) % 100),
        "memory_used_bytes": (200 + i % 50) * 1024**3,
        "memory_total_bytes": 1024 * 1024**3,
        "disk_free_bytes": (3000 - i % 100) * 1024**3,
        "disk_total_bytes": 7000 * 1024**3,
        "gpus": [
            {
                "index": g,
                "name": "NVIDIA H100 80GB HBM3",
                "utilization": float((i + g) % 101),
                "memory_used_bytes": (40 + g) * 1024**3,
                "memory_total_bytes": 80 * 1024**3,
                "temperature_c": float(50 + (i + g) % 30),
                "power_w": float(300 + (i * g) % 400),
                "throttle": ["sw_power_cap"] if (i + g) % 17 == 0 else [],
            }
            for g in range(gpus)
        ],
    }


def _seed(url: str, nodes: int, gpus: int, hours: float) -> int:
    database = Database(url)
    per_node = int(hours * 3600 / INTERVAL_S)
    now = utcnow()
    start = now - timedelta(hours=hours)
    info = {
        "cpus": 128,
        "memory_total_bytes": 1024 * 1024**3,
        "disk_total_bytes": 7000 * 1024**3,
        "gpus": [
            {"index": g, "name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": 80 * 1024**3,
             "slowdown_temperature_c": 87.0}
            for g in range(gpus)
        ],
        "labels": {},
    }  # fmt: skip
    with database.session() as session:
        rows = [
            Node(name=f"gpu-node-{n}", kind="ray", external_id=f"ray-{n:02d}", info=info, health=[])
            for n in range(1, nodes + 1)
        ]
        session.add_all(rows)
        session.flush()
        for n, node in enumerate(rows):
            node.last_seen_at = now
            batch: list[dict[str, Any]] = []
            for i in range(per_node):
                ts = start + timedelta(seconds=INTERVAL_S * (i + 1))
                batch.append({"node_id": node.id, "ts": ts, "resolution": 0, "data": _reading(i, n, gpus)})
                if len(batch) == 5000:
                    session.execute(insert(NodeSample), batch)
                    batch = []
            if batch:
                session.execute(insert(NodeSample), batch)
        session.commit()
        total = int(session.scalar(select(func.count()).select_from(NodeSample)) or 0)
    database.dispose()
    return total


def _in_process(url: str, repeats: int) -> list[float]:
    database = Database(url)
    timings: list[float] = []
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            with database.session() as session:
                metrics_export.collect_from(session)
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        database.dispose()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lf-bench-metrics-") as tmp:
        data_dir = Path(tmp) / "data"
        url = Settings(data_dir=data_dir).sqlalchemy_url
        migrate(url)
        seeded_at = time.perf_counter()
        rows = _seed(url, args.nodes, args.gpus, args.hours)
        seed_s = time.perf_counter() - seeded_at
        db_bytes = sum(p.stat().st_size for p in data_dir.rglob("*.db*") if p.is_file())
        headers = {"Authorization": f"Bearer {TOKEN}"}
        timings: list[float] = []
        env = {"LORAFORGE_METRICS_TOKEN": TOKEN, "LORAFORGE_SCHEDULER_ENABLED": "false"}
        with LiveServer(env=env, keep=data_dir) as server:
            client = server.http
            for _ in range(10):  # warm-up
                client.get("/metrics", headers=headers).raise_for_status()
            body = ""
            for _ in range(args.scrapes):
                started = time.perf_counter()
                response = client.get("/metrics", headers=headers)
                timings.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                body = response.text
        gpu_series = sum(
            1 for line in body.splitlines() if line.startswith("loraforge_gpu_utilization_percent{")
        )
        node_series = sum(1 for line in body.splitlines() if line.startswith("loraforge_node_up{"))
        collector = _in_process(url, 50)
    print(
        json.dumps(
            {
                "bench": "metrics_scrape",
                "nodes": args.nodes,
                "gpus_per_node": args.gpus,
                "history_hours": args.hours,
                "sample_rows": rows,
                "database_mb": round(db_bytes / 1024**2, 1),
                "seed_s": round(seed_s, 1),
                "node_series": node_series,
                "gpu_series": gpu_series,
                "response_bytes": len(body.encode()),
                "scrapes": len(timings),
                "scrape_p50_ms": round(statistics.median(timings), 2),
                "scrape_p95_ms": round(percentile(timings, 95) or 0.0, 2),
                "scrape_max_ms": round(max(timings), 2),
                "collector_in_process_p50_ms": round(statistics.median(collector), 2),
                "goal_p50_ms": 50,
            }
        )
    )


if __name__ == "__main__":
    main()
